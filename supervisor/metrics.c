/*
 * metrics.c - --metrics ADDR: /metrics over HTTP for Prometheus, served
 * by a thread of its own as host.qmp's server is (one thread polling the
 * listening socket, every client and a wakeup eventfd; nonblocking
 * sockets), so neither a slow client nor a scrape holds up host.qmp, the
 * links or the main thread.  What a scrape shows is asked of the workers
 * by host.c (sup_host_figures: typed figures over the links) and written
 * by control/metrics.c, which also reads the requests.
 *
 * Against hostile clients: at most METRICS_MAX_CLIENTS at once (more are
 * closed at once), a request's head at most METRICS_REQ_MAX bytes, and
 * METRICS_DEADLINE_MS from accept to the last byte of the response, so
 * a client that sends or reads too slowly is dropped; one request per
 * connection (Connection: close).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include "control/metrics.h"
#include "supervisor/sup_int.h"

#define METRICS_MAX_CLIENTS 8
#define METRICS_DEADLINE_MS 10000
#define METRICS_BACKLOG 16

struct metrics_client {
	int fd;                         /* -1: a free slot */
	int64_t deadline;               /* CLOCK_MONOTONIC, ms */
	char req[METRICS_REQ_MAX];
	size_t req_len;
	char *out;                      /* the response, once there is one */
	size_t out_len, out_off;
};

struct sup_metrics {
	struct supervisor *sup;
	int listen_fd, wake_fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* unix: ours */
	pthread_t thread;
	struct metrics_client c[METRICS_MAX_CLIENTS];
	struct metrics_input in;        /* the scrape being written */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void client_close(struct metrics_client *c)
{
	close(c->fd);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Queue the answer to what the client asked; the figures are asked of
 * the workers here, on this thread. */
static void client_answer(struct sup_metrics *m, struct metrics_client *c,
			  enum metrics_req r)
{
	char *body = NULL;
	size_t body_len = 0;

	if (r == METRICS_REQ_OK) {
		if (sup_host_figures(m->sup, &m->in) == 0)
			body = metrics_render(&m->in, &body_len);
		if (!body) {
			client_close(c);
			return;
		}
	}
	c->out = metrics_response(r, body, body_len, &c->out_len);
	free(body);
	if (!c->out)
		client_close(c);
}

static void client_read(struct sup_metrics *m, struct metrics_client *c)
{
	ssize_t n = recv(c->fd, c->req + c->req_len, sizeof(c->req) - c->req_len,
			 MSG_DONTWAIT);
	enum metrics_req r;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {                   /* gone before its request ended */
		client_close(c);
		return;
	}
	c->req_len += (size_t)n;
	r = metrics_request(c->req, c->req_len);
	if (r != METRICS_REQ_MORE)
		client_answer(m, c, r);
}

static void client_write(struct metrics_client *c)
{
	ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
			 MSG_DONTWAIT | MSG_NOSIGNAL);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		client_close(c);
		return;
	}
	c->out_off += (size_t)n;
	if (c->out_off == c->out_len)
		client_close(c);
}

static void accept_clients(struct sup_metrics *m)
{
	for (int k = 0; k < METRICS_BACKLOG; k++) {
		int fd = accept4(m->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct metrics_client *c = NULL;

		if (fd < 0)
			return;
		for (unsigned i = 0; i < METRICS_MAX_CLIENTS && !c; i++)
			if (m->c[i].fd < 0)
				c = &m->c[i];
		if (!c) {                       /* too many at once */
			close(fd);
			continue;
		}
		c->fd = fd;
		c->deadline = now_ms() + METRICS_DEADLINE_MS;
	}
}

/* Past its deadline: a client still sending gets 408 once, best effort;
 * one that does not read its answer is dropped. */
static void expire(struct metrics_client *c)
{
	char *r;
	size_t len;

	if (!c->out && (r = metrics_response(METRICS_REQ_MORE, NULL, 0, &len))) {
		if (send(c->fd, r, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			/* it is dropped either way */
		}
		free(r);
	}
	client_close(c);
}

static void *metrics_thread(void *arg)
{
	struct sup_metrics *m = arg;
	struct pollfd pfd[2 + METRICS_MAX_CLIENTS];
	struct metrics_client *who[2 + METRICS_MAX_CLIENTS];

	for (;;) {
		int64_t now = now_ms(), wait = -1;
		nfds_t n = 2;

		pfd[0] = (struct pollfd){ .fd = m->wake_fd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = m->listen_fd, .events = POLLIN };
		for (unsigned i = 0; i < METRICS_MAX_CLIENTS; i++) {
			struct metrics_client *c = &m->c[i];

			if (c->fd < 0)
				continue;
			if (now >= c->deadline) {
				expire(c);
				continue;
			}
			if (wait < 0 || c->deadline - now < wait)
				wait = c->deadline - now;
			who[n] = c;
			pfd[n++] = (struct pollfd){ .fd = c->fd,
						    .events = c->out ? POLLOUT : POLLIN };
		}
		if (poll(pfd, n, (int)wait) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			break;                  /* stop */
		for (nfds_t i = 2; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			if (who[i]->out)
				client_write(who[i]);
			else
				client_read(m, who[i]);
		}
		if (pfd[1].revents & POLLIN)
			accept_clients(m);
	}
	return NULL;
}

static int metrics_listen(struct sup_metrics *m, const char *addr, struct fv_error *err)
{
	struct sockaddr_storage sa;
	socklen_t len;
	int one = 1;

	if (metrics_addr_parse(addr, &sa, &len, err))
		return -1;
	m->listen_fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (m->listen_fd < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "--metrics %s: socket", addr);
	if (sa.ss_family == AF_UNIX) {
		struct stat st;

		/* a stale socket is replaced; a live one or anything else
		 * is refused (bind fails on it) */
		if (lstat(addr, &st) == 0 && S_ISSOCK(st.st_mode)) {
			int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			bool live = probe >= 0 &&
				    connect(probe, (struct sockaddr *)&sa, len) == 0;

			if (probe >= 0)
				close(probe);
			if (live)
				return fv_err(err, FV_E_INVAL,
					      "--metrics %s: something answers there already", addr);
			unlink(addr);
		}
		/* it fits: metrics_addr_parse checked */
		memcpy(m->path, ((struct sockaddr_un *)&sa)->sun_path, sizeof(m->path));
	} else {
		setsockopt(m->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	}
	if (bind(m->listen_fd, (struct sockaddr *)&sa, len) < 0) {
		m->path[0] = '\0';
		return fv_err_errno(err, FV_E_SYS, errno, "--metrics %s: bind", addr);
	}
	if (sa.ss_family == AF_UNIX && chmod(addr, 0600) < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "--metrics %s: chmod", addr);
	if (listen(m->listen_fd, METRICS_BACKLOG) < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "--metrics %s: listen", addr);
	return 0;
}

static void metrics_free(struct sup_metrics *m)
{
	for (unsigned i = 0; i < METRICS_MAX_CLIENTS; i++)
		if (m->c[i].fd >= 0)
			client_close(&m->c[i]);
	if (m->listen_fd >= 0)
		close(m->listen_fd);
	if (m->wake_fd >= 0)
		close(m->wake_fd);
	if (m->path[0])
		unlink(m->path);
	free(m);
}

int sup_metrics_start(struct supervisor *sup, struct fv_error *err)
{
	struct sup_metrics *m;
	sigset_t all, old;
	int rc;

	if (!sup->opt->metrics[0])
		return 0;
	m = calloc(1, sizeof(*m));
	if (!m)
		return fv_err(err, FV_E_NOMEM, "--metrics: out of memory");
	m->sup = sup;
	m->listen_fd = -1;
	for (unsigned i = 0; i < METRICS_MAX_CLIENTS; i++)
		m->c[i].fd = -1;
	m->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->wake_fd < 0) {
		metrics_free(m);
		return fv_err_errno(err, FV_E_SYS, errno, "--metrics: eventfd");
	}
	if (metrics_listen(m, sup->opt->metrics, err)) {
		metrics_free(m);
		return -1;
	}
	/* Signals stay the main thread's (its signalfd). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&m->thread, NULL, metrics_thread, m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		metrics_free(m);
		return fv_err_errno(err, FV_E_SYS, rc, "--metrics: thread");
	}
	sup->metrics = m;
	return 0;
}

void sup_metrics_stop(struct supervisor *sup)
{
	struct sup_metrics *m = sup->metrics;
	uint64_t one = 1;

	if (!m)
		return;
	if (write(m->wake_fd, &one, sizeof(one)) < 0) {
		/* the counter is full: the thread wakes anyway */
	}
	pthread_join(m->thread, NULL);
	metrics_free(m);
	sup->metrics = NULL;
}
