/*
 * console.c - guests' interactive serial consoles, served by one thread
 * per worker (what a console is: console.h; for operators:
 * docs/console.md).
 *
 * Locks, in this order only:
 *   cs->lock       the list of consoles, each one's removal, every peer
 *                  (peers are touched by the server thread alone, which
 *                  holds it while it works)
 *   serial lock    the device's (serial_input is called under cs->lock)
 *   cg->ring_lock  the output ring; taken by the device's output callback
 *                  with the serial lock held, so no serial call is ever
 *                  made with it held.
 * The server thread builds its poll set and works under cs->lock and
 * polls without it.  A console is freed only after the thread has let go
 * of it (console_remove waits for `gone`), so the pointers in the poll set
 * stay valid from one lock to the next.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include "control/console.h"

#define CONSOLE_PEERS 2         /* [0] the terminal's channel, [1] a client */
#define PEER_STDIO 0
#define PEER_CLIENT 1
#define PEER_IN 1024            /* bytes read from a peer at a time */
#define SEND_CHUNK 4096
#define SEND_ROUND 65536        /* bytes sent to one peer per wakeup */
#define CONSOLE_LISTEN_BACKLOG 4

_Static_assert((CONSOLE_RING & (CONSOLE_RING - 1)) == 0, "ring size");
_Static_assert(CONSOLE_BACKLOG <= CONSOLE_RING, "backlog");

struct peer {
	int fd;                 /* -1: none */
	uint64_t sent;          /* output sent to it, as a ring position */
	bool rd_eof;            /* it sends nothing more */
	uint8_t in[PEER_IN];    /* read from it, not yet taken by the guest */
	size_t in_off, in_len;
};

struct console_guest {
	struct console_guest *next;     /* on cs->guests */
	struct console_server *cs;
	struct serial16550 *serial;
	char name[64];
	char path[PATH_MAX];            /* "" = no socket */
	int listen_fd;
	dev_t dev;                      /* the socket file we made */
	ino_t ino;
	struct peer peer[CONSOLE_PEERS];
	bool removing, gone;            /* under cs->lock */
	pthread_mutex_t ring_lock;
	bool want_wake;                 /* under ring_lock: the thread sleeps */
	uint64_t head;                  /* under ring_lock: bytes ever output */
	uint8_t ring[CONSOLE_RING];
};

struct console_server {
	pthread_t thread;
	bool running;
	pthread_mutex_t lock;
	pthread_cond_t cond;            /* a console is gone */
	int wake_fd;
	bool stop;
	struct console_guest *guests;
};

static void wake(struct console_server *cs)
{
	uint64_t one = 1;

	if (write(cs->wake_fd, &one, sizeof(one)) < 0) {
		/* the counter is full: the thread wakes anyway */
	}
}

/* ---- the device's side (vCPU threads, serial lock held) ---- */

static void console_output(void *opaque, uint8_t c)
{
	struct console_guest *cg = opaque;
	bool w;

	pthread_mutex_lock(&cg->ring_lock);
	cg->ring[cg->head & (CONSOLE_RING - 1)] = c;
	cg->head++;
	w = cg->want_wake;
	cg->want_wake = false;
	pthread_mutex_unlock(&cg->ring_lock);
	if (w)
		wake(cg->cs);
}

/* The guest read enough for input refused before to fit. */
static void console_rx_space(void *opaque)
{
	struct console_guest *cg = opaque;

	wake(cg->cs);
}

/* ---- peers (the server thread, cs->lock held) ---- */

static void peer_close(struct peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	p->in_len = 0;
	p->in_off = 0;
	p->rd_eof = false;
}

static uint64_t ring_head(struct console_guest *cg)
{
	uint64_t h;

	pthread_mutex_lock(&cg->ring_lock);
	h = cg->head;
	pthread_mutex_unlock(&cg->ring_lock);
	return h;
}

/* Send what the peer has not had yet, as much as it takes without
 * blocking.  A peer more than a ring behind lost the oldest bytes. */
static void peer_send(struct console_guest *cg, struct peer *p)
{
	uint8_t buf[SEND_CHUNK];
	size_t total = 0;

	while (p->fd >= 0 && total < SEND_ROUND) {
		size_t off, len;
		ssize_t n;

		pthread_mutex_lock(&cg->ring_lock);
		if (cg->head - p->sent > CONSOLE_RING)
			p->sent = cg->head - CONSOLE_RING;
		off = (size_t)(p->sent & (CONSOLE_RING - 1));
		len = (size_t)(cg->head - p->sent);
		if (len > CONSOLE_RING - off)
			len = CONSOLE_RING - off;
		if (len > sizeof(buf))
			len = sizeof(buf);
		memcpy(buf, cg->ring + off, len);
		pthread_mutex_unlock(&cg->ring_lock);
		if (len == 0)
			return;
		n = send(p->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			peer_close(p);      /* gone (EPIPE, ECONNRESET) */
			return;
		}
		p->sent += (uint64_t)n;
		total += (size_t)n;
	}
}

/* Hand the guest what was read from the peer, as far as its queue takes
 * it; the rest waits for console_rx_space. */
static void peer_feed(struct console_guest *cg, struct peer *p)
{
	while (p->in_len) {
		size_t n = serial_input(cg->serial, p->in + p->in_off, p->in_len);

		if (n == 0)
			return;
		p->in_off += n;
		p->in_len -= n;
	}
	p->in_off = 0;
}

static void peer_read(struct console_guest *cg, struct peer *p, bool client)
{
	ssize_t n;

	if (p->fd < 0 || p->rd_eof || p->in_len)
		return;
	n = read(p->fd, p->in, sizeof(p->in));
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		/* A client that is done has detached; the terminal's channel
		 * still takes output when its input ended (stdin at EOF). */
		if (client || n < 0)
			peer_close(p);
		else
			p->rd_eof = true;
		return;
	}
	p->in_len = (size_t)n;
	p->in_off = 0;
	peer_feed(cg, p);
}

/* One client at a time: a second one is told so and closed. */
static void console_accept(struct console_guest *cg)
{
	struct peer *p = &cg->peer[PEER_CLIENT];
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	char msg[160];
	int fd, n;

	fd = accept4(cg->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	/* The socket is 0600 already; the peer's uid is checked as QMP's. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
	    (cred.uid != geteuid() && cred.uid != 0)) {
		close(fd);
		return;
	}
	/* A client that detached a moment ago (closed, nothing of its
	 * input left unread) may not have been seen going yet: it goes now,
	 * so attaching again at once works. */
	if (p->fd >= 0 && !p->in_len &&
	    recv(p->fd, msg, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
		peer_close(p);
	if (p->fd >= 0) {
		n = snprintf(msg, sizeof(msg),
			     "foldvm: the console of guest %s is in use by another client (one at a time)\r\n",
			     cg->name);
		if (send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			/* it is closed either way */
		}
		close(fd);
		return;
	}
	p->fd = fd;
	p->rd_eof = false;
	p->in_len = 0;
	p->in_off = 0;
	p->sent = ring_head(cg);
	p->sent -= p->sent < CONSOLE_BACKLOG ? p->sent : CONSOLE_BACKLOG;
}

/* ---- the listening socket ---- */

/* A socket left at the path by a foldvm that was killed is stale (nobody
 * answers it); anything else there is refused. */
static int console_clear_stale(const struct sockaddr_un *addr,
			       struct fv_error *err)
{
	const char *path = addr->sun_path;
	struct stat st;
	int fd, rc, e;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 :
		       fv_err_errno(err, FV_E_IO, errno, "console: %s", path);
	if (!S_ISSOCK(st.st_mode))
		return fv_err(err, FV_E_INVAL, "console: %s exists and is not a socket", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "console: socket");
	rc = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	e = errno;
	close(fd);
	if (rc == 0 || e == EAGAIN)
		return fv_err(err, FV_E_STATE, "console: %s is in use by a running foldvm", path);
	if (e != ECONNREFUSED)
		return fv_err_errno(err, FV_E_IO, e, "console: probing %s", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return fv_err_errno(err, FV_E_IO, errno, "console: removing stale %s", path);
	return 0;
}

/* bind, chmod 0600, listen: as the QMP sockets (qmp_endpoint.c). */
static int console_listen(struct console_guest *cg, struct fv_error *err)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, e;

	if (strlen(cg->path) >= sizeof(addr.sun_path))
		return fv_err(err, FV_E_INVAL, "console: socket path longer than %zu bytes: %.200s",
			      sizeof(addr.sun_path) - 1, cg->path);
	memcpy(addr.sun_path, cg->path, strlen(cg->path) + 1);
	if (console_clear_stale(&addr, err))
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "console: socket");
	if (bind(fd, (const struct sockaddr *)&addr, sizeof(addr)) < 0) {
		e = errno;
		close(fd);
		return fv_err_errno(err, FV_E_IO, e, "console: bind %s", cg->path);
	}
	if (lstat(cg->path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		e = errno;
		close(fd);
		return fv_err_errno(err, FV_E_IO, e ? e : EEXIST,
				    "console: %s changed under us", cg->path);
	}
	cg->dev = st.st_dev;
	cg->ino = st.st_ino;
	if (chmod(cg->path, 0600) < 0 || listen(fd, CONSOLE_LISTEN_BACKLOG) < 0) {
		e = errno;
		unlink(cg->path);
		close(fd);
		return fv_err_errno(err, FV_E_IO, e, "console: listen %s", cg->path);
	}
	cg->listen_fd = fd;
	return 0;
}

/* Remove the socket file if it is still the one we made. */
static void console_unlink_own(struct console_guest *cg)
{
	struct stat st;

	if (cg->path[0] && lstat(cg->path, &st) == 0 &&
	    st.st_dev == cg->dev && st.st_ino == cg->ino)
		unlink(cg->path);
}

static void console_close(struct console_guest *cg)
{
	for (unsigned i = 0; i < CONSOLE_PEERS; i++)
		peer_close(&cg->peer[i]);
	if (cg->listen_fd >= 0) {
		console_unlink_own(cg);
		close(cg->listen_fd);
		cg->listen_fd = -1;
	}
}

/* ---- the server thread ---- */

#define CONSOLE_MAX 64          /* consoles per worker (guests: 16) */
#define MAX_POLL (1 + CONSOLE_MAX * (1 + CONSOLE_PEERS))

struct poll_ref {
	struct console_guest *cg;
	int peer;                       /* -1: the listening socket */
};

/* cs->lock held: consoles being removed are closed and let go. */
static void reap_removed(struct console_server *cs)
{
	struct console_guest **pp = &cs->guests;

	while (*pp) {
		struct console_guest *cg = *pp;

		if (!cg->removing) {
			pp = &cg->next;
			continue;
		}
		/* What the guest wrote last still goes out, as far as the
		 * peers take it without waiting. */
		for (int i = 0; i < CONSOLE_PEERS; i++)
			peer_send(cg, &cg->peer[i]);
		console_close(cg);
		*pp = cg->next;
		cg->gone = true;
		pthread_cond_broadcast(&cs->cond);
	}
}

/* cs->lock held: what to wait for. */
static nfds_t build_poll(struct console_server *cs, struct pollfd *pfd,
			 struct poll_ref *ref)
{
	nfds_t n = 1;

	pfd[0] = (struct pollfd){ .fd = cs->wake_fd, .events = POLLIN };
	for (struct console_guest *cg = cs->guests; cg; cg = cg->next) {
		uint64_t head;

		if (n + 1 + CONSOLE_PEERS > MAX_POLL)
			break;
		/* Whatever the guest writes from here wakes us. */
		pthread_mutex_lock(&cg->ring_lock);
		cg->want_wake = true;
		head = cg->head;
		pthread_mutex_unlock(&cg->ring_lock);
		if (cg->listen_fd >= 0) {
			pfd[n] = (struct pollfd){ .fd = cg->listen_fd, .events = POLLIN };
			ref[n++] = (struct poll_ref){ cg, -1 };
		}
		for (int i = 0; i < CONSOLE_PEERS; i++) {
			struct peer *p = &cg->peer[i];
			short ev = 0;

			if (p->fd < 0)
				continue;
			/* Read only what the guest can take: a full queue
			 * leaves the bytes in the socket (back-pressure). */
			if (!p->rd_eof && !p->in_len)
				ev |= POLLIN;
			if (p->sent != head)
				ev |= POLLOUT;
			pfd[n] = (struct pollfd){ .fd = p->fd, .events = ev };
			ref[n++] = (struct poll_ref){ cg, i };
		}
	}
	return n;
}

/* cs->lock held: act on what poll said, then on what the wakeup may mean
 * (new output, room in a guest's queue). */
static void serve(struct console_server *cs, const struct pollfd *pfd,
		  const struct poll_ref *ref, nfds_t n)
{
	for (nfds_t i = 1; i < n; i++) {
		struct console_guest *cg = ref[i].cg;
		struct peer *p;

		if (!pfd[i].revents || cg->removing)
			continue;
		if (ref[i].peer < 0) {
			console_accept(cg);
			continue;
		}
		p = &cg->peer[ref[i].peer];
		if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
			peer_read(cg, p, ref[i].peer == PEER_CLIENT);
		if (p->fd >= 0 && (pfd[i].revents & (POLLERR | POLLNVAL)))
			peer_close(p);
		/* Hung up with nothing left to read: gone. */
		if (p->fd >= 0 && (pfd[i].revents & POLLHUP) &&
		    !(pfd[i].revents & POLLIN))
			peer_close(p);
	}
	for (struct console_guest *cg = cs->guests; cg; cg = cg->next)
		for (int i = 0; i < CONSOLE_PEERS; i++) {
			peer_feed(cg, &cg->peer[i]);
			peer_send(cg, &cg->peer[i]);
		}
}

static void *console_thread(void *arg)
{
	struct console_server *cs = arg;
	struct pollfd pfd[MAX_POLL];
	struct poll_ref ref[MAX_POLL];
	uint64_t drain;

	pthread_mutex_lock(&cs->lock);
	while (!cs->stop) {
		nfds_t n;

		reap_removed(cs);
		n = build_poll(cs, pfd, ref);
		pthread_mutex_unlock(&cs->lock);
		if (poll(pfd, n, -1) < 0 && errno != EINTR)
			usleep(10000);  /* cannot happen with valid fds; never spin */
		if (pfd[0].revents && read(cs->wake_fd, &drain, sizeof(drain)) < 0) {
			/* nothing pending */
		}
		pthread_mutex_lock(&cs->lock);
		if (!cs->stop)
			serve(cs, pfd, ref, n);
	}
	pthread_mutex_unlock(&cs->lock);
	return NULL;
}

/* ---- public ---- */

int console_server_create(struct console_server **out, struct fv_error *err)
{
	struct console_server *cs = calloc(1, sizeof(*cs));
	int e;

	*out = NULL;
	if (!cs)
		return fv_err(err, FV_E_NOMEM, "console server");
	pthread_mutex_init(&cs->lock, NULL);
	pthread_cond_init(&cs->cond, NULL);
	cs->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (cs->wake_fd < 0) {
		fv_err_errno(err, FV_E_SYS, errno, "console: eventfd");
		goto fail;
	}
	e = pthread_create(&cs->thread, NULL, console_thread, cs);
	if (e) {
		fv_err_errno(err, FV_E_SYS, e, "console: thread");
		goto fail;
	}
	cs->running = true;
	*out = cs;
	return 0;
fail:
	if (cs->wake_fd >= 0)
		close(cs->wake_fd);
	pthread_cond_destroy(&cs->cond);
	pthread_mutex_destroy(&cs->lock);
	free(cs);
	return -1;
}

void console_server_destroy(struct console_server *cs)
{
	if (!cs)
		return;
	pthread_mutex_lock(&cs->lock);
	cs->stop = true;
	pthread_mutex_unlock(&cs->lock);
	wake(cs);
	if (cs->running)
		pthread_join(cs->thread, NULL);
	/* Every console was removed (console.h); any left is closed. */
	for (struct console_guest *cg = cs->guests; cg; cg = cg->next)
		console_close(cg);
	close(cs->wake_fd);
	pthread_cond_destroy(&cs->cond);
	pthread_mutex_destroy(&cs->lock);
	free(cs);
}

int console_add(struct console_server *cs, struct serial16550 *serial,
		const char *name, const char *path, int stdio_fd,
		struct console_guest **out, struct fv_error *err)
{
	struct serial_host host = {
		.output = console_output, .rx_space = console_rx_space,
	};
	struct console_guest *cg;
	unsigned count = 0;

	*out = NULL;
	pthread_mutex_lock(&cs->lock);
	for (struct console_guest *g = cs->guests; g; g = g->next)
		count++;
	pthread_mutex_unlock(&cs->lock);
	if (count >= CONSOLE_MAX) {
		if (stdio_fd >= 0)
			close(stdio_fd);
		return fv_err(err, FV_E_INVAL, "console: at most %d consoles", CONSOLE_MAX);
	}
	cg = calloc(1, sizeof(*cg));
	if (!cg) {
		if (stdio_fd >= 0)
			close(stdio_fd);
		return fv_err(err, FV_E_NOMEM, "console");
	}
	cg->cs = cs;
	cg->serial = serial;
	cg->listen_fd = -1;
	for (unsigned i = 0; i < CONSOLE_PEERS; i++)
		cg->peer[i].fd = -1;
	cg->peer[PEER_STDIO].fd = stdio_fd;
	snprintf(cg->name, sizeof(cg->name), "%s", name);
	pthread_mutex_init(&cg->ring_lock, NULL);
	if (stdio_fd >= 0 &&
	    fcntl(stdio_fd, F_SETFL, fcntl(stdio_fd, F_GETFL) | O_NONBLOCK) < 0) {
		fv_err_errno(err, FV_E_SYS, errno, "console: the terminal's channel");
		goto fail;
	}
	if (path && snprintf(cg->path, sizeof(cg->path), "%s", path) >= (int)sizeof(cg->path)) {
		fv_err(err, FV_E_INVAL, "console: socket path too long");
		goto fail;
	}
	if (path && console_listen(cg, err))
		goto fail;
	host.opaque = cg;
	serial_attach(serial, &host);
	pthread_mutex_lock(&cs->lock);
	cg->next = cs->guests;
	cs->guests = cg;
	pthread_mutex_unlock(&cs->lock);
	wake(cs);
	*out = cg;
	return 0;
fail:
	cg->path[0] = '\0';
	console_close(cg);
	pthread_mutex_destroy(&cg->ring_lock);
	free(cg);
	return -1;
}

void console_remove(struct console_server *cs, struct console_guest *cg)
{
	if (!cs || !cg)
		return;
	/* From here on the device calls nothing of ours. */
	serial_attach(cg->serial, NULL);
	pthread_mutex_lock(&cs->lock);
	cg->removing = true;
	if (cs->running && !cs->stop) {
		wake(cs);
		while (!cg->gone)
			pthread_cond_wait(&cs->cond, &cs->lock);
	} else {
		struct console_guest **pp = &cs->guests;

		while (*pp && *pp != cg)
			pp = &(*pp)->next;
		if (*pp)
			*pp = cg->next;
		console_close(cg);
	}
	pthread_mutex_unlock(&cs->lock);
	pthread_mutex_destroy(&cg->ring_lock);
	free(cg);
}
