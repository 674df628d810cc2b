/*
 * qmp_server.c - the QMP server: one thread polling every listening socket,
 * every client and a wakeup eventfd; sessions (qmp_session.c) and line
 * framing (qmp_linebuf.c) do the protocol.
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
#include "control/qmp.h"

#define QMP_READ_CHUNK   16384  /* bytes read from one client per poll round */
#define QMP_BACKLOG      16
#define QMP_ACCEPT_BATCH 16     /* connections accepted per poll round */

/*
 * Locking: srv->lock guards the endpoint list, each endpoint's client list
 * and flags, and each client's output queue and flags.  A client's session
 * and line buffer belong to the server thread alone, so handlers run with
 * the lock released and may emit events or add and remove endpoints.
 * Only the server thread frees clients and endpoints, and only at the top
 * of a poll round (qmp_reap), so the pointers of a round stay valid while
 * it is being served even if another thread marks them dead meanwhile.
 */

struct qmp_client {
	struct qmp_client *next;
	struct qmp_endpoint *ep;
	int fd;
	struct qmp_session sess;     /* server thread only */
	struct qmp_linebuf lb;       /* server thread only */
	char *out;                   /* unsent bytes: out[out_off..out_len) */
	size_t out_off, out_len, out_cap;
	bool negotiated;             /* copy of sess.negotiated for emitters */
	bool closing;                /* no more input; close once flushed */
	bool dead;                   /* close at the next reap */
};

struct qmp_endpoint {
	struct qmp_endpoint *next;
	struct qmp_server *srv;
	struct qmp_endpoint_config cfg;  /* path and package are ours */
	int listen_fd;
	dev_t dev;                   /* the socket file we bound, so we */
	ino_t ino;                   /* never unlink someone else's */
	bool unlinked;
	struct qmp_client *clients;
	bool removed;                /* qmp_endpoint_remove() was called */
	bool waited;                 /* its caller waits and frees ep */
	bool reaped;                 /* sockets closed, off the list */
};

enum qmp_ref_kind { QMP_REF_WAKE, QMP_REF_LISTEN, QMP_REF_CLIENT };

struct qmp_ref {
	enum qmp_ref_kind kind;
	void *p;
};

struct qmp_server {
	pthread_mutex_t lock;
	pthread_cond_t reaped;       /* a waited-for removal completed */
	pthread_t thread;
	int wake_fd;                 /* eventfd */
	bool wake_pending;
	bool stop;
	bool accept_paused;          /* out of fds: listeners rest a round */
	uid_t euid;
	struct qmp_endpoint *endpoints;
	struct pollfd *pfd;          /* the poll set: server thread only */
	struct qmp_ref *ref;
	size_t cap;
};

/* Lock held.  One write per batch of queued output is enough. */
static void qmp_wake_locked(struct qmp_server *srv)
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
static void qmp_client_queue(struct qmp_client *c, const char *data,
			     size_t len)
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

static void qmp_unlink_own(struct qmp_endpoint *ep)
{
	struct stat st;

	if (ep->unlinked)
		return;
	ep->unlinked = true;
	if (lstat(ep->cfg.path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == ep->dev && st.st_ino == ep->ino)
		unlink(ep->cfg.path);
}

static void qmp_endpoint_free(struct qmp_endpoint *ep)
{
	free((char *)ep->cfg.path);
	free((char *)ep->cfg.package);
	free(ep);
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
		if (!srv->accept_paused &&
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

static void qmp_accept_one(struct qmp_server *srv, struct qmp_endpoint *ep,
			   int fd)
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
	 * inherits a full mask. */
	sigfillset(&all);
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

static void qmp_sockaddr(struct sockaddr_un *addr, const char *path)
{
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	memcpy(addr->sun_path, path, strlen(path) + 1);
}

/* A socket file nobody answers on is left over from a crashed run and may
 * go; anything else at the path is refused. */
static int qmp_clear_stale(const struct sockaddr_un *addr,
			   struct fv_error *err)
{
	const char *path = addr->sun_path;
	struct stat st;
	int fd, rc, e;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return fv_err_errno(err, FV_E_IO, errno, "qmp: %s", path);
	}
	if (!S_ISSOCK(st.st_mode))
		return fv_err(err, FV_E_INVAL,
			      "qmp: %s exists and is not a socket", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "qmp: socket");
	rc = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	e = errno;
	close(fd);
	/* EAGAIN: a live listener with a full backlog. */
	if (rc == 0 || e == EAGAIN)
		return fv_err(err, FV_E_STATE,
			      "qmp: %s is in use by a running server", path);
	if (e != ECONNREFUSED)
		return fv_err_errno(err, FV_E_IO, e, "qmp: probing %s", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return fv_err_errno(err, FV_E_IO, errno,
				    "qmp: removing stale %s", path);
	return 0;
}

/*
 * bind, chmod 0600, listen.  Until listen() every connect() is refused, so
 * tightening the mode between the two leaves no window in which another
 * user could get in, and needs no umask change (umask is process-wide and
 * would race with other threads creating files).  SO_PEERCRED is checked
 * on accept as well.
 */
static int qmp_listen(struct qmp_endpoint *ep, struct fv_error *err)
{
	const char *path = ep->cfg.path;
	struct sockaddr_un addr;
	struct stat st;
	int fd, e;

	qmp_sockaddr(&addr, path);
	if (qmp_clear_stale(&addr, err))
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "qmp: socket");
	if (bind(fd, (const struct sockaddr *)&addr, sizeof(addr)) < 0) {
		e = errno;
		close(fd);
		return fv_err_errno(err, FV_E_IO, e, "qmp: bind %s", path);
	}
	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		e = errno;
		close(fd);
		return fv_err_errno(err, FV_E_IO, e ? e : EEXIST,
				    "qmp: %s changed under us", path);
	}
	ep->dev = st.st_dev;
	ep->ino = st.st_ino;
	if (chmod(path, 0600) < 0 || listen(fd, QMP_BACKLOG) < 0) {
		e = errno;
		qmp_unlink_own(ep);
		close(fd);
		return fv_err_errno(err, FV_E_IO, e, "qmp: listen %s", path);
	}
	ep->listen_fd = fd;
	return 0;
}

int qmp_endpoint_add(struct qmp_server *srv,
		     const struct qmp_endpoint_config *cfg,
		     struct qmp_endpoint **out, struct fv_error *err)
{
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
	struct qmp_endpoint *ep;

	*out = NULL;
	if (!srv || !cfg || !cfg->path || !cfg->path[0])
		return fv_err(err, FV_E_INVAL, "qmp: no socket path");
	if (strlen(cfg->path) > max)
		return fv_err(err, FV_E_INVAL,
			      "qmp: socket path longer than %zu bytes: %.200s",
			      max, cfg->path);
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return fv_err(err, FV_E_NOMEM, "qmp: endpoint");
	ep->cfg = *cfg;
	ep->cfg.path = strdup(cfg->path);
	ep->cfg.package = strdup(cfg->package ? cfg->package : "");
	ep->srv = srv;
	ep->listen_fd = -1;
	if (!ep->cfg.path || !ep->cfg.package) {
		qmp_endpoint_free(ep);
		return fv_err(err, FV_E_NOMEM, "qmp: endpoint");
	}
	if (qmp_listen(ep, err)) {
		qmp_endpoint_free(ep);
		return -1;
	}
	pthread_mutex_lock(&srv->lock);
	ep->next = srv->endpoints;
	srv->endpoints = ep;
	qmp_wake_locked(srv);
	pthread_mutex_unlock(&srv->lock);
	*out = ep;
	return 0;
}

void qmp_endpoint_remove(struct qmp_server *srv, struct qmp_endpoint *ep)
{
	bool own_thread;

	if (!srv || !ep)
		return;
	own_thread = pthread_equal(pthread_self(), srv->thread);
	pthread_mutex_lock(&srv->lock);
	qmp_unlink_own(ep);
	ep->removed = true;
	if (own_thread) {
		/* Inside a handler: the round in progress may still hold
		 * pointers to ep and its clients; the reap at the top of
		 * the next round frees them. */
		pthread_mutex_unlock(&srv->lock);
		return;
	}
	ep->waited = true;
	qmp_wake_locked(srv);
	while (!ep->reaped)
		pthread_cond_wait(&srv->reaped, &srv->lock);
	pthread_mutex_unlock(&srv->lock);
	qmp_endpoint_free(ep);
}

/* Lock held.  Clients that would take an event. */
static bool qmp_listening(const struct qmp_endpoint *ep)
{
	const struct qmp_client *c;

	for (c = ep->clients; c; c = c->next)
		if (c->negotiated && !c->closing && !c->dead)
			return true;
	return false;
}

int qmp_endpoint_event(struct qmp_endpoint *ep, const char *name,
		       struct json_object *data)
{
	bool listening, queued = false;
	struct qmp_server *srv;
	struct qmp_client *c;
	char *line;
	size_t len;

	if (!ep || !name) {
		json_object_put(data);
		return -1;
	}
	/* Nobody listening, the common case: skip building the line.  A
	 * client negotiating meanwhile just missed an earlier event. */
	srv = ep->srv;
	pthread_mutex_lock(&srv->lock);
	listening = qmp_listening(ep);
	pthread_mutex_unlock(&srv->lock);
	if (!listening) {
		json_object_put(data);
		return 0;
	}
	line = qmp_event_line(name, data);
	if (!line)
		return -1;
	len = strlen(line);
	pthread_mutex_lock(&srv->lock);
	for (c = ep->clients; c; c = c->next) {
		if (!c->negotiated || c->closing || c->dead)
			continue;
		qmp_client_queue(c, line, len);
		queued = true;
	}
	if (queued)
		qmp_wake_locked(srv);
	pthread_mutex_unlock(&srv->lock);
	free(line);
	return 0;
}
