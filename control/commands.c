/*
 * commands.c - a worker's control sockets through a run: one QMP socket
 * per guest (RUNDIR/NAME.qmp, and RUNDIR/by-uuid/UUID.qmp for a libvirt
 * domain; its commands are guest_commands.c's), each guest's serial
 * console (console.c) and the worker's link to the supervisor
 * (worker_link.c: the host commands for this domain, which the supervisor
 * asks for host.qmp, supervisor/host.c).  Events: STOP, RESUME and
 * SHUTDOWN on a guest's socket; the engine's DEDUP_PASS_COMPLETE (at most
 * one a second), DEDUP_BUDGET_EXHAUSTED and MEMORY_PRESSURE on every
 * guest socket and, typed, over the link.  docs/qmp.md lists it all.
 *
 * It follows the run as the runner's observer (control_observer): the
 * runner never calls into control/.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "control/commands_int.h"
#include "control/commands.h"
#include "control/worker_link.h"
#include "lib/fileutil.h"
#include "lib/timeutil.h"

#define PASS_EVENT_INTERVAL_NS 1000000000ull

/* ---- events ---- */

/* The runner's ready hook: every guest of the command line exists; the
 * supervisor says when to start them. */
static int control_ready(void *data, struct fv_error *err)
{
	struct control *c = data;

	return c ? worker_link_ready(c->link, err) : 0;
}

/* One of the engine's events to every guest socket and the supervisor. */
static void engine_event(struct control *c, enum engine_event ev,
			 const struct dedup_host_stats *st)
{
	const char *name = replies_engine_event_name(ev);

	/* ev_lock keeps every listed socket alive: guest_removed takes a
	 * guest's off the list under it before removing it. */
	pthread_mutex_lock(&c->ev_lock);
	for (struct control_guest *cg = c->guests; cg; cg = cg->next)
		if (cg->ep)
			qmp_endpoint_event(cg->ep, name, replies_engine_event(ev, st));
	pthread_mutex_unlock(&c->ev_lock);
	worker_link_engine(c->link, ev, st);
}

static void dedup_event(void *opaque, const struct dedup_host_stats *st,
			unsigned events)
{
	struct control *c = opaque;
	uint64_t now = fv_mono_ns();
	bool pass_due;

	if (events & DEDUP_EVENT_PRESSURE)
		engine_event(c, ENGINE_EVENT_PRESSURE, st);
	if (events & DEDUP_EVENT_BUDGET)
		engine_event(c, ENGINE_EVENT_BUDGET, st);
	/* Passes can come every few ms: at most one event a second. */
	pthread_mutex_lock(&c->ev_lock);
	pass_due = now - c->last_pass_event_ns >= PASS_EVENT_INTERVAL_NS;
	if (pass_due)
		c->last_pass_event_ns = now;
	pthread_mutex_unlock(&c->ev_lock);
	if (pass_due)
		engine_event(c, ENGINE_EVENT_PASS, st);
}

/* ---- lifecycle ---- */

static void control_free(struct control *c)
{
	if (c->stdio_fd >= 0)
		close(c->stdio_fd);     /* its guest never came */
	pthread_mutex_destroy(&c->ev_lock);
	free(c);
}

static int control_start(struct run_ctx *ctx, void **data, struct fv_error *err)
{
	struct dedup_engine *engine = runner_dedup(ctx);
	struct control *c;

	if (ctx->opt->control &&
	    fv_private_dir(ctx->opt->run_dir, "run directory", err))
		return -1;
	c = calloc(1, sizeof(*c));
	if (!c)
		return fv_err(err, FV_E_NOMEM, "control");
	c->ctx = ctx;
	c->stdio_fd = ctx->opt->console_stdio ? ctx->opt->console_fd : -1;
	pthread_mutex_init(&c->ev_lock, NULL);
	if (ctx->opt->control && qmp_server_create(&c->server, err))
		goto fail;
	if ((ctx->opt->control || c->stdio_fd >= 0) &&
	    console_server_create(&c->consoles, err))
		goto fail;
	if (worker_link_start(&c->link, ctx, ctx->opt->worker_fd, err))
		goto fail;
	*data = c;
	if (engine)
		dedup_set_event_callback(engine, dedup_event, c);
	return 0;
fail:
	console_server_destroy(c->consoles);
	qmp_server_destroy(c->server);
	control_free(c);
	return -1;
}

static void control_stop(struct run_ctx *ctx, void *data)
{
	struct dedup_engine *engine = runner_dedup(ctx);
	struct control *c = data;

	if (!c)
		return;
	if (engine)
		dedup_set_event_callback(engine, NULL, NULL);
	worker_link_stop(c->link);
	qmp_server_destroy(c->server);
	console_server_destroy(c->consoles);
	control_free(c);
}

/* RUNDIR/by-uuid/UUID.qmp -> ../NAME.qmp: a libvirt domain's socket is
 * found by its uuid as well as by its name.  Relative, so the run
 * directory can move (a bind mount into a container) with its links. */
static int control_link_uuid(struct control_guest *cg, const char *run_dir,
			     struct fv_error *err)
{
	char dir[PATH_MAX + 16], target[GUEST_NAME_MAX + 16];

	snprintf(dir, sizeof(dir), "%s/by-uuid", run_dir);
	if (fv_private_dir(dir, "run directory", err))
		return -1;
	snprintf(cg->uuid_path, sizeof(cg->uuid_path), "%s/%s.qmp", dir, cg->uuid);
	snprintf(target, sizeof(target), "../%s.qmp", cg->name);
	/* A link left by a foldvm that was killed: the domain lock says
	 * no other foldvm runs this uuid now, so it is stale. */
	unlink(cg->uuid_path);
	if (symlink(target, cg->uuid_path) < 0) {
		fv_err_errno(err, FV_E_IO, errno, "%s", cg->uuid_path);
		cg->uuid_path[0] = '\0';
		return -1;
	}
	return 0;
}

/* The guest's serial console: RUNDIR/NAME.console with control sockets,
 * and the foreground terminal's channel if it is this guest's. */
static int control_console_add(struct control *c, struct control_guest *cg,
			       struct guest *g, struct fv_error *err)
{
	const struct cli_options *opt = c->ctx->opt;
	int fd = -1;

	if (!c->consoles)
		return 0;
	if (c->stdio_fd >= 0 && !strcmp(opt->console_vm, cg->name)) {
		fd = c->stdio_fd;
		c->stdio_fd = -1;       /* the console owns it now */
	}
	if (opt->control)
		snprintf(cg->console_path, sizeof(cg->console_path), "%s/%s" CONSOLE_SUFFIX,
			 opt->run_dir, cg->name);
	else if (fd < 0)
		return 0;
	if (console_add(c->consoles, &g->serial, cg->name,
			cg->console_path[0] ? cg->console_path : NULL, fd,
			&cg->console, err)) {
		fv_err_prefix(err, "guest %s console: ", cg->name);
		return -1;
	}
	return 0;
}

static int control_guest_added(void *data, struct guest *g, const char *name,
			       const char *uuid, void **gdata,
			       struct fv_error *err)
{
	struct control *c = data;
	struct control_guest *cg;

	if (!c)
		return 0;
	cg = calloc(1, sizeof(*cg));
	if (!cg)
		return fv_err(err, FV_E_NOMEM, "control endpoint");
	cg->c = c;
	snprintf(cg->name, sizeof(cg->name), "%s", name);
	snprintf(cg->uuid, sizeof(cg->uuid), "%s", uuid);
	/* A worker without guest sockets (--no-control) keeps only the
	 * record, for the supervisor's list of names. */
	if (c->ctx->opt->control) {
		snprintf(cg->path, sizeof(cg->path), "%s/%s.qmp",
			 c->ctx->opt->run_dir, cg->name);
		replies_endpoint_config(&cg->cfg, cg->path, guest_commands, cg);
		if (qmp_endpoint_add(c->server, &cg->cfg, &cg->ep, err)) {
			fv_err_prefix(err, "guest %s control socket: ", cg->name);
			free(cg);
			return -1;
		}
		if (cg->uuid[0] && control_link_uuid(cg, c->ctx->opt->run_dir, err)) {
			fv_err_prefix(err, "guest %s control socket by uuid: ", cg->name);
			qmp_endpoint_remove(c->server, cg->ep);
			free(cg);
			return -1;
		}
	}
	if (control_console_add(c, cg, g, err)) {
		if (cg->uuid_path[0])
			unlink(cg->uuid_path);
		if (cg->ep)
			qmp_endpoint_remove(c->server, cg->ep);
		free(cg);
		return -1;
	}
	if (c->ctx->opt->control) {
		g->on_state = guest_state_event;
		g->on_state_opaque = cg;
	}
	*gdata = cg;
	pthread_mutex_lock(&c->ev_lock);
	cg->next = c->guests;
	c->guests = cg;
	pthread_mutex_unlock(&c->ev_lock);
	worker_link_guest(c->link, LINK_EV_GUEST_ADDED, name, uuid);
	return 0;
}

static void control_guest_removed(void *data, struct guest *g, void *gdata)
{
	struct control *c = data;
	struct control_guest *cg = gdata, **pp;

	if (!c || !cg)
		return;         /* never added (its creation failed first) */
	worker_link_guest(c->link, LINK_EV_GUEST_REMOVED, cg->name, NULL);
	/* No more state events into an endpoint that is going away. */
	g->on_state = NULL;
	pthread_mutex_lock(&c->ev_lock);
	for (pp = &c->guests; *pp != cg; pp = &(*pp)->next)
		;
	*pp = cg->next;
	pthread_mutex_unlock(&c->ev_lock);
	console_remove(c->consoles, cg->console);
	if (cg->uuid_path[0])
		unlink(cg->uuid_path);
	if (cg->ep)
		qmp_endpoint_remove(c->server, cg->ep);
	free(cg);
}

const struct runner_observer control_observer = {
	.start = control_start,
	.stop = control_stop,
	.guest_added = control_guest_added,
	.guest_removed = control_guest_removed,
	.ready = control_ready,
};
