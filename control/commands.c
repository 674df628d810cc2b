/*
 * commands.c - the QMP commands of foldvm's control sockets.
 *
 * Per guest (RUNDIR/NAME.qmp, and RUNDIR/by-uuid/UUID.qmp for a libvirt
 * domain): query-status, stop, cont, quit, query-name, query-uuid,
 * query-dedup, dedup-set, dedup-unmerge.  Host (RUNDIR/host.qmp): query-vms,
 * query-dedup-host, vm-create, vm-destroy, dedup-unmerge.  Both: qmp_capabilities and
 * query-commands (built into control/qmp.c).  Events: STOP, RESUME and
 * SHUTDOWN on a guest's socket; DEDUP_PASS_COMPLETE (at most one a second)
 * and DEDUP_BUDGET_EXHAUSTED on every socket.  docs/qmp.md lists it all.
 *
 * Handlers run on the QMP server thread.  They see the guests through the
 * runner's records and held guests (runner.h), never wait for long and do
 * nothing slow under the run's lock: vm-destroy and quit stop the guest
 * and return; the main loop frees it.  The guest commands are in
 * guest_commands.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>
#include "config.h"
#include "control/commands_int.h"
#include "control/commands.h"
#include "dedup/census.h"
#include "lib/fileutil.h"
#include "control/vm_create.h"
#include "control/unmerge.h"
#include "lib/timeutil.h"

#define PASS_EVENT_INTERVAL_NS 1000000000ull

/* QMP's RunState names. */
const char *qmp_status(enum guest_state s)
{
	switch (s) {
	case GUEST_CREATED: return "prelaunch";
	case GUEST_RUNNING: return "running";
	case GUEST_PAUSED: return "paused";
	case GUEST_SHUTDOWN: return "shutdown";
	case GUEST_STOPPED: return "shutdown";
	case GUEST_FAILED: return "internal-error";
	}
	return "debug";
}

/* ---- host commands ---- */

static int cmd_query_vms(void *opaque, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err)
{
	struct control *c = opaque;
	struct runner_guest_info in[CLI_MAX_VMS];
	unsigned n;

	(void)args;
	(void)err;
	/* Records taken under the run's lock; the kernel is asked about
	 * each guest's RAM (dedup_json) after it is dropped. */
	n = runner_snapshot_guests(c->ctx, in, CLI_MAX_VMS);
	*ret = json_object_new_array();
	for (unsigned i = 0; i < n; i++) {
		struct json_object *vm = json_object_new_object();

		jadd_str(vm, "name", in[i].name);
		if (in[i].uuid[0])
			jadd_str(vm, "uuid", in[i].uuid);
		jadd_str(vm, "status", in[i].destroying ? "destroying" :
			 qmp_status(in[i].state));
		jadd_int(vm, "memory", in[i].mem_size);
		jadd_int(vm, "vcpus", in[i].nr_vcpus);
		json_object_object_add(vm, "dedup", dedup_json(&in[i]));
		json_object_array_add(*ret, vm);
	}
	return 0;
}

/* The engine's memory-pressure figures (PSI, hundredths of a percent). */
static void pressure_json(struct json_object *o, const struct dedup_host_stats *h)
{
	jadd_bool(o, "memory-pressure-paused", h->pressure_paused);
	jadd_bool(o, "memory-pressure-known", h->pressure_known);
	jadd_bool(o, "memory-pressure-cgroup", h->pressure_cgroup);
	jadd_int(o, "memory-pressure-some-avg10", h->pressure_some_avg10);
	jadd_int(o, "memory-pressure-full-avg10", h->pressure_full_avg10);
	jadd_int(o, "memory-pressure-threshold", h->pressure_pct * 100);
	jadd_int(o, "memory-pressure-pauses", h->pressure_pauses);
}

static struct json_object *host_json(struct run_ctx *ctx)
{
	struct json_object *o = json_object_new_object();
	struct dedup_engine *engine = runner_dedup(ctx);
	struct procstat_rollup r = { 0 };
	struct dedup_host_stats h;

	procstat_rollup(0, &r, NULL);
	jadd_int(o, "process-rss-bytes", r.rss);
	jadd_int(o, "process-pss-bytes", r.pss);
	jadd_bool(o, "enabled", engine != NULL);
	if (!engine)
		return o;
	dedup_get_host_stats(engine, &h);
	jadd_int(o, "guests", h.guests);
	jadd_int(o, "store-frames", h.store_frames);
	jadd_int(o, "pages-in-place", h.pages_in_place);
	jadd_int(o, "store-bytes", h.store_bytes);
	jadd_int(o, "saved-bytes", h.saved_bytes);
	jadd_int(o, "vma-budget", h.vma_budget);
	jadd_int(o, "vmas-used", h.vmas_used);
	jadd_int(o, "max-map-count", h.max_map_count);
	jadd_bool(o, "vma-budget-exhausted", h.budget_exhausted);
	jadd_int(o, "passes", h.passes);
	jadd_int(o, "merges", h.merges);
	jadd_int(o, "unmerges", h.unmerges);
	jadd_int(o, "scanner-cpu-ns", h.cpu_ns);
	jadd_int(o, "pass-cpu-max-ns", h.pass_cpu_max_ns);
	jadd_int(o, "pass-cpu-last-ns", h.pass_cpu_last_ns);
	pressure_json(o, &h);
	return o;
}

static int cmd_query_dedup_host(void *opaque, struct json_object *args,
				struct json_object **ret, struct qmp_error *err)
{
	struct control *c = opaque;

	(void)args;
	(void)err;
	*ret = host_json(c->ctx);
	return 0;
}

/* The guests a census reads.  Hashing every guest's RAM is slow, so the
 * run's lock is not held: each guest is held instead
 * (runner_guest_get_all), and a held guest is not freed, not even by
 * vm-destroy or the end of the run, until runner_guest_put; its RAM stays
 * mapped while its vCPUs may still write it, as they did when this ran
 * under the lock. */
struct census_guests {
	struct guest_slot *held[CLI_MAX_VMS];
	struct runner_guest_info in[CLI_MAX_VMS];
	struct guest_mem *gms[CLI_MAX_VMS];
	uint64_t npages[CLI_MAX_VMS];
	uint32_t doms[CLI_MAX_VMS];
	unsigned n;
};

static void census_hold(struct control *c, struct census_guests *cg)
{
	cg->n = runner_guest_get_all(c->ctx, cg->held, cg->in, CLI_MAX_VMS);
	for (unsigned i = 0; i < cg->n; i++) {
		/* Equal domain names get equal numbers. */
		cg->doms[i] = i + 1;
		for (unsigned k = 0; k < i; k++)
			if (!strcmp(cg->in[i].domain, cg->in[k].domain)) {
				cg->doms[i] = cg->doms[k];
				break;
			}
		cg->gms[i] = &runner_guest(cg->held[i])->mem;
		cg->npages[i] = gmem_pages(cg->gms[i]);
	}
}

static void census_put(struct census_guests *cg)
{
	for (unsigned i = 0; i < cg->n; i++)
		runner_guest_put(cg->held[i]);
}

/* The census: the most full-page dedup could save on the guests now. */
static int cmd_query_dedup_ideal(void *opaque, struct json_object *args,
				 struct json_object **ret, struct qmp_error *err)
{
	struct census_guests cg;
	struct dedup_ideal id;
	struct fv_error e = { 0 };
	int r;

	(void)args;
	census_hold(opaque, &cg);
	r = dedup_ideal(cg.gms, cg.doms, cg.n, &id, &e);
	census_put(&cg);
	if (r)
		return qmp_error_set(err, "GenericError", "%s", e.msg);
	*ret = json_object_new_object();
	jadd_int(*ret, "pages", id.pages);
	jadd_int(*ret, "zero-pages", id.zero_pages);
	jadd_int(*ret, "nonzero-pages", id.nonzero_pages);
	jadd_int(*ret, "distinct-contents", id.distinct);
	jadd_int(*ret, "ideal-bytes", id.ideal_bytes);
	return 0;
}

/* census_src's view: page gfn of guest i of the held guests. */
static const void *census_view(void *opaque, unsigned i, uint64_t gfn)
{
	struct guest_mem *const *gms = opaque;

	return gmem_page_view(gms[i], gfn);
}

/* The census by kind (dedup/census.h): zero, same-address, runs, unique. */
static int cmd_query_dedup_census(void *opaque, struct json_object *args,
				  struct json_object **ret, struct qmp_error *err)
{
	static const char *const run_keys[CENSUS_RUNS] = {
		"run-1-pages", "run-2-15-pages", "run-16-511-pages", "run-512-pages",
	};
	struct census_guests cg;
	struct dedup_census cs;
	struct census_src src = { .npages = cg.npages, .domains = cg.doms,
				  .view = census_view, .opaque = cg.gms };
	struct fv_error e = { 0 };
	int r;

	(void)args;
	census_hold(opaque, &cg);
	src.n = cg.n;
	r = dedup_census(&src, &cs, &e);
	census_put(&cg);
	if (r)
		return qmp_error_set(err, "GenericError", "%s", e.msg);
	*ret = json_object_new_object();
	jadd_int(*ret, "pages", cs.pages);
	jadd_int(*ret, "zero-pages", cs.zero);
	jadd_int(*ret, "same-address-pages", cs.same_address);
	for (unsigned k = 0; k < CENSUS_RUNS; k++)
		jadd_int(*ret, run_keys[k], cs.run[k]);
	jadd_int(*ret, "unique-pages", cs.unique);
	return 0;
}

static int cmd_vm_create(void *opaque, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err)
{
	struct control *c = opaque;

	return vm_create(c->ctx, args, ret, err);
}


static int cmd_vm_destroy(void *opaque, struct json_object *args,
			  struct json_object **ret, struct qmp_error *err)
{
	struct control *c = opaque;
	struct fv_error e = { 0 };
	struct json_object *name;

	(void)ret;
	json_object_object_get_ex(args, "name", &name);
	if (runner_destroy_guest(c->ctx, json_object_get_string(name), &e))
		return qmp_error_set(err, "DeviceNotFound", "%s", e.msg);
	return 0;
}

static int cmd_dedup_unmerge(void *opaque, struct json_object *args,
			     struct json_object **ret, struct qmp_error *err)
{
	struct control *c = opaque;

	return unmerge_command(c->ctx, NULL, args, ret, err);
}

/* ---- a worker's link to its supervisor (supervisor/) ---- */

/* Has every guest of the worker's command line been created?  Asked once
 * after negotiating: WORKER_READY is only sent to a negotiated client, so
 * a worker that got ready before that is found here. */
static int cmd_query_worker(void *opaque, struct json_object *args,
			    struct json_object **ret, struct qmp_error *err)
{
	struct control *c = opaque;

	(void)args;
	(void)err;
	*ret = json_object_new_object();
	pthread_mutex_lock(&c->ev_lock);
	jadd_bool(*ret, "ready", c->ready);
	pthread_mutex_unlock(&c->ev_lock);
	jadd_int(*ret, "pid", (uint64_t)getpid());
	return 0;
}

static const struct qmp_arg worker_start_args[] = {
	{ "go", QMP_T_BOOL, false },
	{ NULL, QMP_T_ANY, false },
};

/* Start the guests (go) or give up the start (another domain's guest could
 * not be created). */
static int cmd_worker_start(void *opaque, struct json_object *args,
			    struct json_object **ret, struct qmp_error *err)
{
	struct control *c = opaque;
	struct json_object *go;
	int r = 0;

	(void)ret;
	json_object_object_get_ex(args, "go", &go);
	pthread_mutex_lock(&c->ev_lock);
	if (!c->ready || c->start_decided) {
		r = qmp_error_set(err, "GenericError", "%s",
				  c->ready ? "already started" : "not ready");
	} else {
		c->start_decided = true;
		c->start_go = json_object_get_boolean(go);
		pthread_cond_broadcast(&c->start_cond);
	}
	pthread_mutex_unlock(&c->ev_lock);
	return r;
}

/* The runner's ready hook: every guest of the command line exists; the
 * supervisor says when to start them. */
static int control_ready(void *data, struct fv_error *err)
{
	struct control *c = data;
	bool go;

	if (!c || !c->ctx->opt->worker)
		return 0;
	pthread_mutex_lock(&c->ev_lock);
	c->ready = true;
	pthread_mutex_unlock(&c->ev_lock);
	qmp_endpoint_event(c->host_ep, "WORKER_READY", NULL);
	pthread_mutex_lock(&c->ev_lock);
	while (!c->start_decided)
		pthread_cond_wait(&c->start_cond, &c->ev_lock);
	go = c->start_go;
	pthread_mutex_unlock(&c->ev_lock);
	if (!go)
		return fv_err(err, FV_E_STATE,
			      "start cancelled: a guest of another trust domain could not be created");
	return 0;
}

/* What the supervisor keeps its table of guest names from. */
static void worker_guest_event(struct control *c, const char *event,
			       const char *name, const char *uuid)
{
	struct json_object *data;

	if (!c->ctx->opt->worker)
		return;
	data = json_object_new_object();
	jadd_str(data, "name", name);
	if (uuid && uuid[0])
		jadd_str(data, "uuid", uuid);
	qmp_endpoint_event(c->host_ep, event, data);
}

#define HOST_COMMAND_ROWS \
	{ "query-vms", cmd_query_vms, NULL, 0, "every guest: state, memory, dedup" }, \
	{ "query-dedup-host", cmd_query_dedup_host, NULL, 0, "host-wide dedup state" }, \
	{ "query-dedup-ideal", cmd_query_dedup_ideal, NULL, 0, \
	  "census: the most full-page dedup could save now" }, \
	{ "query-dedup-census", cmd_query_dedup_census, NULL, 0, \
	  "census by kind: zero, same address, runs, unique" }, \
	{ "vm-create", cmd_vm_create, vm_create_args, 0, "start a guest (--vm keys)" }, \
	{ "vm-destroy", cmd_vm_destroy, vm_destroy_args, 0, "stop and free a guest" }, \
	{ "dedup-unmerge", cmd_dedup_unmerge, unmerge_host_args, 0, \
	  "give a guest (vm) or trust domain (domain) private copies of its shared pages" }

static const struct qmp_command host_commands[] = {
	HOST_COMMAND_ROWS,
	{ NULL, NULL, NULL, 0, NULL },
};

/* A worker's link: the host commands for its own domain, and the start. */
static const struct qmp_command worker_commands[] = {
	HOST_COMMAND_ROWS,
	{ "query-worker", cmd_query_worker, NULL, 0, "are the guests created" },
	{ "worker-start", cmd_worker_start, worker_start_args, 0,
	  "start the guests, or give up" },
	{ NULL, NULL, NULL, 0, NULL },
};

/* ---- events ---- */

/* Send one event to the host socket and every guest socket. */
static void broadcast(struct control *c, const char *name, struct json_object *data)
{
	/* ev_lock keeps every listed socket alive: guest_removed takes a
	 * guest's off the list under it before removing it. */
	pthread_mutex_lock(&c->ev_lock);
	for (struct control_guest *cg = c->guests; cg; cg = cg->next)
		if (cg->ep)
			qmp_endpoint_event(cg->ep, name, json_object_get(data));
	pthread_mutex_unlock(&c->ev_lock);
	qmp_endpoint_event(c->host_ep, name, data);
}

static void dedup_event(void *opaque, const struct dedup_host_stats *st,
			unsigned events)
{
	struct control *c = opaque;
	uint64_t now = fv_mono_ns();
	bool pass_due;
	struct json_object *data;

	if (events & DEDUP_EVENT_PRESSURE) {
		data = json_object_new_object();
		pressure_json(data, st);
		broadcast(c, "MEMORY_PRESSURE", data);
	}
	if (events & DEDUP_EVENT_BUDGET) {
		data = json_object_new_object();
		jadd_int(data, "vma-budget", st->vma_budget);
		jadd_int(data, "vmas-used", st->vmas_used);
		jadd_int(data, "max-map-count", st->max_map_count);
		broadcast(c, "DEDUP_BUDGET_EXHAUSTED", data);
	}
	/* Passes can come every few ms: at most one event a second. */
	pthread_mutex_lock(&c->ev_lock);
	pass_due = now - c->last_pass_event_ns >= PASS_EVENT_INTERVAL_NS;
	if (pass_due)
		c->last_pass_event_ns = now;
	pthread_mutex_unlock(&c->ev_lock);
	if (!pass_due)
		return;
	data = json_object_new_object();
	jadd_int(data, "passes", st->passes);
	jadd_int(data, "saved-bytes", st->saved_bytes);
	jadd_int(data, "store-frames", st->store_frames);
	jadd_int(data, "merges", st->merges);
	jadd_int(data, "unmerges", st->unmerges);
	broadcast(c, "DEDUP_PASS_COMPLETE", data);
}

/* ---- lifecycle ---- */

static void endpoint_config(struct qmp_endpoint_config *cfg, const char *path,
			    const struct qmp_command *cmds, void *ctx)
{
	int major = 0, minor = 0, micro = 0;

	sscanf(PACKAGE_VERSION, "%d.%d.%d", &major, &minor, &micro);
	*cfg = (struct qmp_endpoint_config){
		.path = path, .commands = cmds, .ctx = ctx,
		.major = major, .minor = minor, .micro = micro,
		.package = "foldvm " PACKAGE_VERSION,
	};
}

static int control_start(struct run_ctx *ctx, void **data, struct fv_error *err)
{
	struct dedup_engine *engine = runner_dedup(ctx);
	struct control *c;

	if (!ctx->opt->control && !ctx->opt->worker)
		return 0;
	if (ctx->opt->control &&
	    fv_private_dir(ctx->opt->run_dir, "run directory", err))
		return -1;
	c = calloc(1, sizeof(*c));
	if (!c)
		return fv_err(err, FV_E_NOMEM, "control");
	c->ctx = ctx;
	c->stdio_fd = ctx->opt->console_stdio ? ctx->opt->console_fd : -1;
	pthread_mutex_init(&c->ev_lock, NULL);
	pthread_cond_init(&c->start_cond, NULL);
	if (ctx->opt->worker) {
		snprintf(c->host_path, sizeof(c->host_path), "supervisor link");
		endpoint_config(&c->host_cfg, c->host_path, worker_commands, c);
	} else {
		snprintf(c->host_path, sizeof(c->host_path), "%s/host.qmp",
			 ctx->opt->run_dir);
		endpoint_config(&c->host_cfg, c->host_path, host_commands, c);
	}
	if (qmp_server_create(&c->server, err))
		goto fail;
	if (ctx->opt->worker ?
	    qmp_endpoint_add_connected(c->server, &c->host_cfg,
				       ctx->opt->worker_fd, &c->host_ep, err) :
	    qmp_endpoint_add(c->server, &c->host_cfg, &c->host_ep, err)) {
		fv_err_prefix(err, "host control socket: ");
		qmp_server_destroy(c->server);
		goto fail;
	}
	if ((ctx->opt->control || c->stdio_fd >= 0) &&
	    console_server_create(&c->consoles, err)) {
		qmp_server_destroy(c->server);
		goto fail;
	}
	*data = c;
	if (engine)
		dedup_set_event_callback(engine, dedup_event, c);
	return 0;
fail:
	if (c->stdio_fd >= 0)
		close(c->stdio_fd);
	pthread_cond_destroy(&c->start_cond);
	pthread_mutex_destroy(&c->ev_lock);
	free(c);
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
	qmp_server_destroy(c->server); /* unlinks host.qmp */
	console_server_destroy(c->consoles);
	if (c->stdio_fd >= 0)
		close(c->stdio_fd);     /* its guest never came */
	pthread_cond_destroy(&c->start_cond);
	pthread_mutex_destroy(&c->ev_lock);
	free(c);
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
		endpoint_config(&cg->cfg, cg->path, guest_commands, cg);
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
	worker_guest_event(c, "WORKER_GUEST_ADDED", name, uuid);
	return 0;
}

static void control_guest_removed(void *data, struct guest *g, void *gdata)
{
	struct control *c = data;
	struct control_guest *cg = gdata, **pp;

	if (!c || !cg)
		return;         /* never added (its creation failed first) */
	worker_guest_event(c, "WORKER_GUEST_REMOVED", cg->name, NULL);
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
