/*
 * commands.h - foldvm's control sockets: one QMP endpoint per guest
 * (RUNDIR/NAME.qmp) and one for the host (RUNDIR/host.qmp), served by one
 * thread (control/qmp.c).  Commands are data tables in commands.c; every
 * one validates its input and answers with a QMP error class on failure.
 */
#ifndef FOLDVM_CONTROL_COMMANDS_H
#define FOLDVM_CONTROL_COMMANDS_H

#include "lib/error.h"

struct run_ctx;
struct driver;
struct control;

/* With opt->control: create the run directory, the server and the host
 * endpoint, and subscribe to the engine's events.  No-op otherwise. */
int control_start(struct run_ctx *ctx, struct fv_error *err);
void control_stop(struct run_ctx *ctx);

/* A guest slot was filled / is about to be freed (ctx->lock held for
 * added; not held for removed).  c may be NULL (no control sockets). */
int control_guest_added(struct control *c, struct driver *d, struct fv_error *err);
void control_guest_removed(struct control *c, struct driver *d);

#endif
