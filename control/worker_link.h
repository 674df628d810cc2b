/*
 * worker_link.h - a worker's side of its typed link to the supervisor
 * (control/link.h): a thread answering the supervisor's requests about
 * this worker's domain, and the events the worker sends it.  Used by
 * commands.c, the sockets' life; private to control/.
 */
#ifndef FOLDVM_CONTROL_WORKER_LINK_H
#define FOLDVM_CONTROL_WORKER_LINK_H

#include "control/link.h"
#include "runner/runner.h"

struct worker_link;

/* Serve the link fd (taken: closed by worker_link_stop) for the run ctx. */
int worker_link_start(struct worker_link **out, struct run_ctx *ctx, int fd,
		      struct fv_error *err);
/* The thread ends and the link closes. */
void worker_link_stop(struct worker_link *l);

/* The command line's guests exist: say so, then wait for the supervisor's
 * word to start them; -1 with err when it gave up the start. */
int worker_link_ready(struct worker_link *l, struct fv_error *err);
/* LINK_EV_GUEST_ADDED or LINK_EV_GUEST_REMOVED (uuid may be NULL). */
void worker_link_guest(struct worker_link *l, enum link_event ev,
		       const char *name, const char *uuid);
/* One of the engine's events. */
void worker_link_engine(struct worker_link *l, enum engine_event ev,
			const struct dedup_host_stats *st);

#endif
