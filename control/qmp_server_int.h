/*
 * qmp_server_int.h - the QMP server's insides, shared by its two files:
 * qmp_server.c (the thread: poll, accept, client I/O, freeing what it
 * reaps) and qmp_endpoint.c (listening sockets and events), which calls
 * the former and is not called by it.  Private to control/.
 */
#ifndef FOLDVM_CONTROL_QMP_SERVER_INT_H
#define FOLDVM_CONTROL_QMP_SERVER_INT_H

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
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

/* qmp_server.c, for qmp_endpoint.c (calls go that way only) */
void qmp_wake_locked(struct qmp_server *srv);
void qmp_client_queue(struct qmp_client *c, const char *data, size_t len);
/* Serve fd (connected, nonblocking) as a client of ep: greeting first.
 * Over the client limit or out of memory, fd is closed. */
void qmp_accept_one(struct qmp_server *srv, struct qmp_endpoint *ep, int fd);
/* Unlink ep's socket file, once, and only if it is still the one bound. */
void qmp_unlink_own(struct qmp_endpoint *ep);
void qmp_endpoint_free(struct qmp_endpoint *ep);

#endif
