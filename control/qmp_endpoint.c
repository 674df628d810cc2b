/*
 * qmp_endpoint.c - the QMP server's endpoints: a listening socket each
 * (bound safely over a stale file, unlinked only if still ours), added
 * and removed while the server runs, and the events sent to their
 * negotiated clients.  Locking: qmp_server_int.h.  It calls into
 * qmp_server.c (accepting a connected client, queueing output, waking the
 * thread, freeing an endpoint), never the other way.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <json-c/json.h>
#include "control/qmp_server_int.h"

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
