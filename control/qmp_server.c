/*
 * qmp_server.c - the QMP server: one thread polling every listening socket,
 * every client and a wakeup eventfd, accepting clients and moving their
 * bytes; sessions (qmp_session.c) and line framing (qmp_linebuf.c) do the
 * protocol, qmp_endpoint.c the listening sockets and events.  Locking:
 * qmp_server_int.h.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <json-c/json.h>
#include "control/qmp_server_int.h"


/* Lock held.  One write per batch of queued output is enough. */
void qmp_wake_locked(struct qmp_server *srv)
{
	uint64_t one = 1;

	if (srv->wake_pending)
		return;
	srv->wake_pending = true;
	if (write(srv->wake_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, so it is readable. */
	}
}

static void qmp_wake_drain(struct qmp_server *srv)
{
	uint64_t v;

	if (read(srv->wake_fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: already drained */
	}
	pthread_mutex_lock(&srv->lock);
	srv->wake_pending = false;
	pthread_mutex_unlock(&srv->lock);
}

/* Lock held.  Appends, or drops a client that fell too far behind: a
 * client that does not read must never make anyone wait. */
void qmp_client_queue(struct qmp_client *c, const char *data, size_t len)
{
	size_t pending = c->out_len - c->out_off, cap;
	char *p;

	if (c->dead)
		return;
	if (len > QMP_OUTQ_MAX - pending) {
		c->dead = true;
		return;
	}
	if (c->out_len + len > c->out_cap && c->out_off) {
		memmove(c->out, c->out + c->out_off, pending);
		c->out_off = 0;
		c->out_len = pending;
	}
	if (c->out_len + len > c->out_cap) {
		cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_len + len)
			cap *= 2;
		if (cap > QMP_OUTQ_MAX)
			cap = QMP_OUTQ_MAX;
		p = realloc(c->out, cap);
		if (!p) {
			c->dead = true;
			return;
		}
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
}

/* Lock held.  Non-blocking, so holding the lock across it is cheap. */
static void qmp_client_flush(struct qmp_client *c)
{
	ssize_t n;

	while (!c->dead && c->out_off < c->out_len) {
		n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				c->dead = true;
			return;
		}
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	if (c->closing)
		c->dead = true;
}

/* Unlink ep's socket file if it is still the one we bound. */
void qmp_unlink_own(struct qmp_endpoint *ep)
{
	struct stat st;

	if (ep->unlinked)
		return;
	ep->unlinked = true;
	if (lstat(ep->cfg.path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == ep->dev && st.st_ino == ep->ino)
		unlink(ep->cfg.path);
}

void qmp_endpoint_free(struct qmp_endpoint *ep)
{
	free((char *)ep->cfg.path);
	free((char *)ep->cfg.package);
	free(ep);
}

static void qmp_client_free(struct qmp_client *c)
{
	close(c->fd);
	qmp_linebuf_destroy(&c->lb);
	free(c->out);
	free(c);
}

/* Lock held.  all: the endpoint goes away; give each client's last reply a
 * chance to leave (best effort, never waiting). */
static void qmp_reap_clients(struct qmp_endpoint *ep, bool all)
{
	struct qmp_client **pc = &ep->clients, *c;

	while ((c = *pc)) {
		if (!all && !c->dead) {
			pc = &c->next;
			continue;
		}
		if (!c->dead)
			qmp_client_flush(c);
		*pc = c->next;
		qmp_client_free(c);
	}
}


/* Lock held, server thread: free what was marked dead or removed. */
static void qmp_reap(struct qmp_server *srv)
{
	struct qmp_endpoint **pep = &srv->endpoints, *ep;

	while ((ep = *pep)) {
		qmp_reap_clients(ep, ep->removed);
		if (!ep->removed) {
			pep = &ep->next;
			continue;
		}
		*pep = ep->next;
		if (ep->listen_fd >= 0)
			close(ep->listen_fd);
		ep->listen_fd = -1;
		ep->reaped = true;
		if (ep->waited)
			pthread_cond_broadcast(&srv->reaped);
		else
			qmp_endpoint_free(ep);
	}
}

static bool qmp_pollset_add(struct qmp_server *srv, size_t *n, int fd,
			    short events, enum qmp_ref_kind kind, void *p)
{
	size_t cap;
	void *np;

	if (*n == srv->cap) {
		cap = srv->cap ? srv->cap * 2 : 32;
		np = realloc(srv->pfd, cap * sizeof(*srv->pfd));
		if (!np)
			return false;
		srv->pfd = np;
		np = realloc(srv->ref, cap * sizeof(*srv->ref));
		if (!np)
			return false;
		srv->ref = np;
		srv->cap = cap;
	}
	srv->pfd[*n] = (struct pollfd){ .fd = fd, .events = events };
	srv->ref[*n] = (struct qmp_ref){ .kind = kind, .p = p };
	(*n)++;
	return true;
}

/* Lock held.  Out of memory, the set is cut short: what is left out waits
 * for a later round rather than failing. */
static size_t qmp_pollset_build(struct qmp_server *srv)
{
	struct qmp_endpoint *ep;
	struct qmp_client *c;
	size_t n = 0;
	short ev;

	if (!qmp_pollset_add(srv, &n, srv->wake_fd, POLLIN, QMP_REF_WAKE, srv))
		return 0;
	for (ep = srv->endpoints; ep; ep = ep->next) {
		if (!srv->accept_paused && ep->listen_fd >= 0 &&
		    !qmp_pollset_add(srv, &n, ep->listen_fd, POLLIN,
				     QMP_REF_LISTEN, ep))
			return n;
		for (c = ep->clients; c; c = c->next) {
			ev = c->closing ? 0 : POLLIN;
			if (c->out_off < c->out_len)
				ev |= POLLOUT;
			if (!qmp_pollset_add(srv, &n, c->fd, ev,
					     QMP_REF_CLIENT, c))
				return n;
		}
	}
	return n;
}

static bool qmp_peer_allowed(const struct qmp_server *srv, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    len != sizeof(cred))
		return false;
	return cred.uid == srv->euid || cred.uid == 0;
}

/* Lock held.  Clients marked dead but not reaped yet do not count. */
static unsigned qmp_live_clients(const struct qmp_endpoint *ep)
{
	const struct qmp_client *c;
	unsigned n = 0;

	for (c = ep->clients; c; c = c->next)
		n += !c->dead;
	return n;
}

void qmp_accept_one(struct qmp_server *srv, struct qmp_endpoint *ep, int fd)
{
	struct qmp_client *c = calloc(1, sizeof(*c));
	char *greeting = NULL;
	bool ok = false;

	if (c && qmp_linebuf_init(&c->lb, 0) == 0) {
		c->fd = fd;
		c->ep = ep;
		qmp_session_init(&c->sess, &ep->cfg);
		greeting = qmp_session_greeting(&c->sess);
	}
	pthread_mutex_lock(&srv->lock);
	if (greeting && !ep->removed &&
	    qmp_live_clients(ep) < QMP_MAX_CLIENTS) {
		c->next = ep->clients;
		ep->clients = c;
		qmp_client_queue(c, greeting, strlen(greeting));
		qmp_client_flush(c);
		ok = true;
	}
	pthread_mutex_unlock(&srv->lock);
	free(greeting);
	if (ok)
		return;
	/* Over the limit or out of memory: the peer just sees EOF. */
	if (c)
		qmp_linebuf_destroy(&c->lb);
	free(c);
	close(fd);
}

static void qmp_accept(struct qmp_server *srv, struct qmp_endpoint *ep)
{
	int i, fd;

	for (i = 0; i < QMP_ACCEPT_BATCH; i++) {
		fd = accept4(ep->listen_fd, NULL, NULL,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			/* The pending connection stays readable; without a
			 * pause the loop would spin until an fd frees up. */
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM)
				srv->accept_paused = true;
			return;
		}
		if (!qmp_peer_allowed(srv, fd)) {
			close(fd);
			continue;
		}
		qmp_accept_one(srv, ep, fd);
	}
}

/* Whether this client's input should still be executed. */
static bool qmp_client_active(struct qmp_server *srv, struct qmp_client *c)
{
	bool active;

	pthread_mutex_lock(&srv->lock);
	active = !c->dead && !c->closing && !c->ep->removed;
	pthread_mutex_unlock(&srv->lock);
	return active;
}

static void qmp_client_reply(struct qmp_server *srv, struct qmp_client *c,
			     char *reply, bool close_after)
{
	pthread_mutex_lock(&srv->lock);
	/* Published together with the reply, so events emitted from now on
	 * follow the "return" of qmp_capabilities, never precede it. */
	c->negotiated = c->sess.negotiated;
	if (reply)
		qmp_client_queue(c, reply, strlen(reply));
	if (close_after)
		c->closing = true;
	pthread_mutex_unlock(&srv->lock);
	free(reply);
}

static void qmp_client_line(struct qmp_server *srv, struct qmp_client *c,
			    const char *line, size_t len)
{
	bool close_after;
	char *reply;

	reply = qmp_session_handle_line(&c->sess, line, len, &close_after);
	qmp_client_reply(srv, c, reply, close_after);
}

static void qmp_client_input(struct qmp_server *srv, struct qmp_client *c,
			     const char *buf, size_t len)
{
	enum qmp_line kind;
	const char *line;
	size_t off = 0, llen;

	/* Pipelined requests run in order, each after the previous reply
	 * is queued; a "quit" or a removal stops the rest. */
	while (off < len && qmp_client_active(srv, c)) {
		off += qmp_linebuf_feed(&c->lb, buf + off, len - off, &kind,
					&line, &llen);
		if (kind == QMP_LINE_OK)
			qmp_client_line(srv, c, line, llen);
		else if (kind == QMP_LINE_TOO_LONG)
			qmp_client_reply(srv, c, qmp_session_too_long(&c->sess),
					 false);
		else if (kind == QMP_LINE_TOO_DEEP)
			qmp_client_reply(srv, c, qmp_session_too_deep(&c->sess),
					 false);
	}
}

/* The peer will send no more (it may still read: socat half-closes after
 * its last request and waits for the replies). */
static void qmp_client_eof(struct qmp_server *srv, struct qmp_client *c)
{
	const char *line;
	size_t len;

	if (qmp_linebuf_flush(&c->lb, &line, &len) == QMP_LINE_OK &&
	    qmp_client_active(srv, c))
		qmp_client_line(srv, c, line, len);
	pthread_mutex_lock(&srv->lock);
	c->closing = true;
	pthread_mutex_unlock(&srv->lock);
}

static void qmp_client_read(struct qmp_server *srv, struct qmp_client *c)
{
	char buf[QMP_READ_CHUNK];
	ssize_t n;

	n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n > 0) {
		qmp_client_input(srv, c, buf, (size_t)n);
	} else if (n == 0) {
		qmp_client_eof(srv, c);
	} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		pthread_mutex_lock(&srv->lock);
		c->dead = true;
		pthread_mutex_unlock(&srv->lock);
	}
	pthread_mutex_lock(&srv->lock);
	qmp_client_flush(c);
	pthread_mutex_unlock(&srv->lock);
}

static void qmp_client_service(struct qmp_server *srv, struct qmp_client *c,
			       short revents)
{
	bool readable;

	pthread_mutex_lock(&srv->lock);
	if (revents & (POLLERR | POLLNVAL))
		c->dead = true;
	if (revents & POLLOUT)
		qmp_client_flush(c);
	/* Closing and hung up: the rest of the output can never leave. */
	if (c->closing && (revents & POLLHUP))
		c->dead = true;
	readable = !c->dead && !c->closing && !c->ep->removed &&
		   (revents & (POLLIN | POLLHUP));
	pthread_mutex_unlock(&srv->lock);
	if (readable)
		qmp_client_read(srv, c);
}

static void qmp_service(struct qmp_server *srv, struct qmp_ref *ref,
			short revents)
{
	struct qmp_endpoint *ep;
	bool removed;

	switch (ref->kind) {
	case QMP_REF_WAKE:
		qmp_wake_drain(srv);
		break;
	case QMP_REF_LISTEN:
		ep = ref->p;
		pthread_mutex_lock(&srv->lock);
		removed = ep->removed;
		pthread_mutex_unlock(&srv->lock);
		if (!removed)
			qmp_accept(srv, ep);
		break;
	case QMP_REF_CLIENT:
		qmp_client_service(srv, ref->p, revents);
		break;
	}
}

static void *qmp_server_main(void *arg)
{
	struct qmp_server *srv = arg;
	size_t i, n;
	int timeout;

	for (;;) {
		pthread_mutex_lock(&srv->lock);
		qmp_reap(srv);
		if (srv->stop) {
			pthread_mutex_unlock(&srv->lock);
			break;
		}
		n = qmp_pollset_build(srv);
		pthread_mutex_unlock(&srv->lock);
		/* n == 0 only when out of memory: retry soon. */
		timeout = (n == 0 || srv->accept_paused) ? 100 : -1;
		srv->accept_paused = false;
		if (poll(srv->pfd, n, timeout) < 0)
			continue;
		for (i = 0; i < n; i++)
			if (srv->pfd[i].revents)
				qmp_service(srv, &srv->ref[i],
					    srv->pfd[i].revents);
	}
	return NULL;
}

int qmp_server_create(struct qmp_server **out, struct fv_error *err)
{
	struct qmp_server *srv;
	sigset_t all, old;
	int rc;

	*out = NULL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return fv_err(err, FV_E_NOMEM, "qmp: server");
	srv->euid = geteuid();
	srv->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (srv->wake_fd < 0) {
		rc = errno;
		free(srv);
		return fv_err_errno(err, FV_E_SYS, rc, "qmp: eventfd");
	}
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->reaped, NULL);
	/* Signals are for the main and vCPU threads; the server thread
	 * inherits a full mask, but for a sandbox filter's SIGSYS (the
	 * kernel would kill the process without its report if blocked). */
	sigfillset(&all);
	sigdelset(&all, SIGSYS);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&srv->thread, NULL, qmp_server_main, srv);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		pthread_cond_destroy(&srv->reaped);
		pthread_mutex_destroy(&srv->lock);
		close(srv->wake_fd);
		free(srv);
		return fv_err_errno(err, FV_E_SYS, rc, "qmp: server thread");
	}
	pthread_setname_np(srv->thread, "qmp");
	*out = srv;
	return 0;
}

void qmp_server_destroy(struct qmp_server *srv)
{
	struct qmp_endpoint *ep;

	if (!srv)
		return;
	pthread_mutex_lock(&srv->lock);
	srv->stop = true;
	qmp_wake_locked(srv);
	pthread_mutex_unlock(&srv->lock);
	pthread_join(srv->thread, NULL);
	/* The thread reaped every removed endpoint before it stopped. */
	while ((ep = srv->endpoints)) {
		srv->endpoints = ep->next;
		qmp_unlink_own(ep);
		qmp_reap_clients(ep, true);
		if (ep->listen_fd >= 0)
			close(ep->listen_fd);
		qmp_endpoint_free(ep);
	}
	close(srv->wake_fd);
	pthread_cond_destroy(&srv->reaped);
	pthread_mutex_destroy(&srv->lock);
	free(srv->pfd);
	free(srv->ref);
	free(srv);
}
