/*
 * commands.c - the QMP commands of foldvm's control sockets.
 *
 * Per guest (RUNDIR/NAME.qmp, and RUNDIR/by-uuid/UUID.qmp for a libvirt
 * domain): query-status, stop, cont, quit, query-name, query-uuid,
 * query-dedup, dedup-set.  Host (RUNDIR/host.qmp): query-vms,
 * query-dedup-host, vm-create, vm-destroy.  Both: qmp_capabilities and
 * query-commands (built into control/qmp.c).  Events: STOP, RESUME and
 * SHUTDOWN on a guest's socket; DEDUP_PASS_COMPLETE (at most one a second)
 * and DEDUP_BUDGET_EXHAUSTED on every socket.  docs/qmp.md lists it all.
 *
 * Handlers run on the QMP server thread.  They find their guest by name
 * under ctx->lock every time (a slot may be reaped between two requests)
 * and never wait for long: vm-destroy and quit stop the guest and return;
 * the main loop frees it.
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
#include "control/qmp.h"
#include "control/commands.h"
#include "control/vm_create.h"
#include "runner/runner.h"
#include "lib/timeutil.h"

#define PASS_EVENT_INTERVAL_NS 1000000000ull

struct control_guest {
	struct control *c;
	char name[GUEST_NAME_MAX + 1];
	char path[PATH_MAX + GUEST_NAME_MAX + 8];  /* run dir + "/NAME.qmp" */
	char uuid[SPEC_UUID_LEN + 1];            /* "" = not a libvirt domain */
	char uuid_path[PATH_MAX + 64];  /* run dir + "/by-uuid/UUID.qmp" link */
	struct qmp_endpoint_config cfg;
	struct qmp_endpoint *ep;
};

struct control {
	struct run_ctx *ctx;
	struct qmp_server *server;
	struct qmp_endpoint_config host_cfg;
	struct qmp_endpoint *host_ep;
	char host_path[PATH_MAX + 16];
	pthread_mutex_t ev_lock;        /* last_pass_event_ns */
	uint64_t last_pass_event_ns;
};

/* ---- helpers ---- */

static void jadd_int(struct json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_int64((int64_t)v));
}

static void jadd_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

static void jadd_bool(struct json_object *o, const char *k, bool v)
{
	json_object_object_add(o, k, json_object_new_boolean(v));
}

/* QMP's RunState names. */
static const char *qmp_status(enum guest_state s)
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

/* The guest of a handler, still alive; ctx->lock held on success. */
static struct driver *guest_lock(struct control_guest *cg, struct qmp_error *err)
{
	struct run_ctx *ctx = cg->c->ctx;
	struct driver *d;

	pthread_mutex_lock(&ctx->lock);
	d = runner_find_locked(ctx, cg->name);
	if (d && !d->destroying)
		return d;
	pthread_mutex_unlock(&ctx->lock);
	qmp_error_set(err, "DeviceNotFound", "guest '%s' is being destroyed", cg->name);
	return NULL;
}

static void guest_unlock(struct control_guest *cg)
{
	pthread_mutex_unlock(&cg->c->ctx->lock);
}

static uint64_t cycles_ns(uint64_t cycles, uint64_t tsc_khz)
{
	return tsc_khz ? cycles * 1000000ull / tsc_khz : 0;
}

/* The payload's measurements so far (0 = not measured yet). */
static struct json_object *measure_json(const struct guest_report *r)
{
	struct json_object *o = json_object_new_object();

	jadd_int(o, "tsc-khz", r->tsc_khz);
	jadd_int(o, "first-write-median-ns", r->measured ? cycles_ns(r->fw_median, r->tsc_khz) : 0);
	jadd_int(o, "first-write-p99-ns", r->measured ? cycles_ns(r->fw_p99, r->tsc_khz) : 0);
	jadd_int(o, "merged-write-median-ns",
		 r->measured_merged ? cycles_ns(r->mw_median, r->tsc_khz) : 0);
	jadd_int(o, "merged-write-p99-ns",
		 r->measured_merged ? cycles_ns(r->mw_p99, r->tsc_khz) : 0);
	jadd_int(o, "churn-pages", r->churned);
	jadd_int(o, "churn-ns", r->churn_ns);
	return o;
}

/* ---- guest commands ---- */

static int cmd_query_status(void *opaque, struct json_object *args,
			    struct json_object **ret, struct qmp_error *err)
{
	struct control_guest *cg = opaque;
	struct driver *d = guest_lock(cg, err);
	enum guest_state s;
	int step;
	const char *step_str;

	(void)args;
	if (!d)
		return -1;
	s = guest_get_state(d->guest, NULL, 0);
	step = __atomic_load_n(&d->cur_step, __ATOMIC_RELAXED);
	step_str = step >= 0 && (unsigned)step < d->spec.nr_steps ?
		   step_name(d->spec.steps[step].kind) : "done";
	*ret = json_object_new_object();
	jadd_str(*ret, "status", qmp_status(s));
	jadd_bool(*ret, "running", s == GUEST_RUNNING);
	jadd_bool(*ret, "singlestep", false);
	/* foldvm's own: what the test payload is doing (its current step)
	 * and what it measured */
	jadd_str(*ret, "foldvm-step", step_str);
	json_object_object_add(*ret, "foldvm-measure", measure_json(d->rep));
	guest_unlock(cg);
	return 0;
}

static int cmd_stop_cont(struct control_guest *cg, bool stop, struct qmp_error *err)
{
	struct driver *d = guest_lock(cg, err);
	struct fv_error e = { 0 };
	int r;

	if (!d)
		return -1;
	r = stop ? guest_pause(d->guest, &e) : guest_resume(d->guest, &e);
	guest_unlock(cg);
	return r ? qmp_error_set(err, "GenericError", "%s", e.msg) : 0;
}

static int cmd_stop(void *opaque, struct json_object *args,
		    struct json_object **ret, struct qmp_error *err)
{
	(void)args;
	(void)ret;
	return cmd_stop_cont(opaque, true, err);
}

static int cmd_cont(void *opaque, struct json_object *args,
		    struct json_object **ret, struct qmp_error *err)
{
	(void)args;
	(void)ret;
	return cmd_stop_cont(opaque, false, err);
}

/* quit: as in QEMU the guest ends; foldvm and the other guests go on. */
static int cmd_quit(void *opaque, struct json_object *args,
		    struct json_object **ret, struct qmp_error *err)
{
	struct control_guest *cg = opaque;
	struct fv_error e = { 0 };

	(void)args;
	(void)ret;
	if (runner_destroy_guest(cg->c->ctx, cg->name, &e))
		return qmp_error_set(err, "GenericError", "%s", e.msg);
	return 0;
}

static int cmd_query_name(void *opaque, struct json_object *args,
			  struct json_object **ret, struct qmp_error *err)
{
	struct control_guest *cg = opaque;

	(void)args;
	(void)err;
	*ret = json_object_new_object();
	jadd_str(*ret, "name", cg->name);
	return 0;
}

/* QEMU's query-uuid: the domain's uuid (all zeros when it has none). */
static int cmd_query_uuid(void *opaque, struct json_object *args,
			  struct json_object **ret, struct qmp_error *err)
{
	struct control_guest *cg = opaque;

	(void)args;
	(void)err;
	*ret = json_object_new_object();
	jadd_str(*ret, "UUID", cg->uuid[0] ? cg->uuid :
		 "00000000-0000-0000-0000-000000000000");
	return 0;
}

/* Every per-guest statistic, pages and bytes, plus the kernel's view. */
static struct json_object *dedup_json(struct driver *d, struct dedup_engine *e)
{
	struct json_object *o = json_object_new_object();
	struct dedup_guest_stats s;
	const uint8_t *hva = gmem_page_hva(&d->guest->mem, 0);
	struct procstat_mem m = { 0 };

	jadd_bool(o, "enabled", d->guest->dedup_guest &&
		  dedup_guest_merging(e, d->guest->dedup_guest));
	jadd_str(o, "domain", d->guest->cfg.domain[0] ? d->guest->cfg.domain :
		 d->guest->cfg.name);
	if (hva)
		procstat_range((uintptr_t)hva, (uintptr_t)hva + d->guest->mem.size,
			       &m, NULL);
	/* The kernel's view of the guest's RAM (see procstat.h for why a
	 * guest's own cost is anon-bytes plus its share of the store). */
	jadd_int(o, "rss-bytes", m.rss);
	jadd_int(o, "pss-bytes", m.pss);
	jadd_int(o, "anon-bytes", m.anon);
	if (!d->guest->dedup_guest)
		return o;
	dedup_get_guest_stats(e, d->guest->dedup_guest, &s);
	jadd_int(o, "pages", s.pages);
	jadd_int(o, "pages-scanned", s.pages_scanned);
	jadd_int(o, "pages-hashed", s.pages_hashed);
	jadd_int(o, "pages-merged", s.pages_merged);
	jadd_int(o, "bytes-merged", s.pages_merged * 4096);
	jadd_int(o, "pages-zero", s.pages_zero);
	jadd_int(o, "bytes-zero", s.pages_zero * 4096);
	jadd_int(o, "frames-referenced", s.frames_referenced);
	jadd_int(o, "merge-attempts", s.merge_attempts);
	jadd_int(o, "merges", s.merges);
	jadd_int(o, "merge-races", s.merge_races);
	jadd_int(o, "unmerges", s.unmerges);
	jadd_int(o, "volatile-skipped", s.volatile_skipped);
	jadd_int(o, "budget-skipped", s.budget_skipped);
	jadd_int(o, "bytes-saved", s.bytes_saved);
	jadd_int(o, "vmas", s.vmas);
	jadd_int(o, "full-passes", s.full_passes);
	jadd_int(o, "scanner-cpu-ns", s.cpu_ns);
	jadd_int(o, "scan-rate", s.rate);
	return o;
}

static int cmd_query_dedup(void *opaque, struct json_object *args,
			   struct json_object **ret, struct qmp_error *err)
{
	struct control_guest *cg = opaque;
	struct driver *d = guest_lock(cg, err);

	(void)args;
	if (!d)
		return -1;
	*ret = dedup_json(d, cg->c->ctx->dedup);
	guest_unlock(cg);
	return 0;
}

/* dedup-set: switch merging, change the (host-wide) scan rate and CPU cap.
 * A trust domain is fixed for a guest's life: changing it under a running
 * guest would leave frames shared across domains. */
static int dedup_set_enabled(struct run_ctx *ctx, struct driver *d, bool on,
			     struct qmp_error *err)
{
	struct guest *g = d->guest;
	struct fv_error e = { 0 };

	if (g->dedup_guest) {
		dedup_guest_set_merging(ctx->dedup, g->dedup_guest, on);
		return 0;
	}
	if (!on)
		return 0;
	g->cfg.dedup = true;
	if (guest_join_dedup(g, ctx->dedup, &e)) {
		g->cfg.dedup = false;
		return qmp_error_set(err, "GenericError", "%s", e.msg);
	}
	d->rep->dedup = true;
	return 0;
}

static int cmd_dedup_set(void *opaque, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err)
{
	struct control_guest *cg = opaque;
	struct run_ctx *ctx = cg->c->ctx;
	struct json_object *v;
	struct driver *d;
	uint64_t rate;
	unsigned cpu;
	int r = 0;

	(void)ret;
	if (!ctx->dedup)
		return qmp_error_set(err, "GenericError",
				     "foldvm runs without the dedup engine (start it with --dedup or --persist)");
	if (json_object_object_get_ex(args, "domain", &v))
		return qmp_error_set(err, "GenericError",
				     "the trust domain of a running guest cannot change; destroy and re-create it");
	dedup_get_limits(ctx->dedup, &rate, &cpu);
	if (json_object_object_get_ex(args, "rate", &v)) {
		if (json_object_get_int64(v) < 0)
			return qmp_error_set(err, "GenericError", "rate must be >= 0 pages/s");
		rate = (uint64_t)json_object_get_int64(v);
	}
	if (json_object_object_get_ex(args, "cpu-pct", &v)) {
		int64_t x = json_object_get_int64(v);

		if (x < 0 || x > 100)
			return qmp_error_set(err, "GenericError", "cpu-pct must be 0..100");
		cpu = (unsigned)x;
	}
	if (!(d = guest_lock(cg, err)))
		return -1;
	if (json_object_object_get_ex(args, "enabled", &v))
		r = dedup_set_enabled(ctx, d, json_object_get_boolean(v), err);
	guest_unlock(cg);
	if (!r)
		dedup_set_limits(ctx->dedup, rate, cpu);
	return r;
}

static const struct qmp_arg dedup_set_args[] = {
	{ "enabled", QMP_T_BOOL, true },
	{ "rate", QMP_T_INT, true },
	{ "cpu-pct", QMP_T_INT, true },
	{ "domain", QMP_T_STR, true },
	{ NULL, QMP_T_ANY, false },
};

static const struct qmp_command guest_commands[] = {
	{ "query-status", cmd_query_status, NULL, 0, "run state of the guest" },
	{ "stop", cmd_stop, NULL, 0, "pause every vCPU" },
	{ "cont", cmd_cont, NULL, 0, "resume" },
	{ "quit", cmd_quit, NULL, QMP_CMD_CLOSE_AFTER, "stop and remove the guest" },
	{ "query-name", cmd_query_name, NULL, 0, "the guest's name" },
	{ "query-uuid", cmd_query_uuid, NULL, 0, "the libvirt domain's uuid" },
	{ "query-dedup", cmd_query_dedup, NULL, 0, "dedup statistics of the guest" },
	{ "dedup-set", cmd_dedup_set, dedup_set_args, 0,
	  "merging on/off; scan rate and CPU cap (host-wide)" },
	{ NULL, NULL, NULL, 0, NULL },
};

/* ---- host commands ---- */

static int cmd_query_vms(void *opaque, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err)
{
	struct control *c = opaque;
	struct run_ctx *ctx = c->ctx;

	(void)args;
	(void)err;
	*ret = json_object_new_array();
	pthread_mutex_lock(&ctx->lock);
	for (unsigned i = 0; i < CLI_MAX_VMS; i++) {
		struct driver *d = &ctx->drv[i];
		struct json_object *vm;

		/* a slot being released is as good as gone */
		if (!driver_has_guest(d))
			continue;
		vm = json_object_new_object();
		jadd_str(vm, "name", d->spec.cfg.name);
		if (d->spec.uuid[0])
			jadd_str(vm, "uuid", d->spec.uuid);
		jadd_str(vm, "status", d->destroying ? "destroying" :
			 qmp_status(guest_get_state(d->guest, NULL, 0)));
		jadd_int(vm, "memory", d->spec.cfg.mem_size);
		jadd_int(vm, "vcpus", d->spec.cfg.nr_vcpus);
		json_object_object_add(vm, "dedup", dedup_json(d, ctx->dedup));
		json_object_array_add(*ret, vm);
	}
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

static struct json_object *host_json(struct run_ctx *ctx)
{
	struct json_object *o = json_object_new_object();
	struct procstat_rollup r = { 0 };
	struct dedup_host_stats h;

	procstat_rollup(0, &r, NULL);
	jadd_int(o, "process-rss-bytes", r.rss);
	jadd_int(o, "process-pss-bytes", r.pss);
	jadd_bool(o, "enabled", ctx->dedup != NULL);
	if (!ctx->dedup)
		return o;
	dedup_get_host_stats(ctx->dedup, &h);
	jadd_int(o, "guests", h.guests);
	jadd_int(o, "store-frames", h.store_frames);
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

/* The census: the most full-page dedup could save on the guests now. */
static int cmd_query_dedup_ideal(void *opaque, struct json_object *args,
				 struct json_object **ret, struct qmp_error *err)
{
	struct control *c = opaque;
	struct run_ctx *ctx = c->ctx;
	struct guest_mem *gms[CLI_MAX_VMS];
	uint32_t doms[CLI_MAX_VMS];
	const char *names[CLI_MAX_VMS];
	struct dedup_ideal id;
	struct fv_error e = { 0 };
	unsigned n = 0;
	int r;

	(void)args;
	pthread_mutex_lock(&ctx->lock);
	for (unsigned i = 0; i < CLI_MAX_VMS; i++) {
		struct driver *d = &ctx->drv[i];
		const char *dom;

		if (!driver_has_guest(d) || d->destroying)
			continue;
		dom = d->spec.cfg.domain[0] ? d->spec.cfg.domain : d->spec.cfg.name;
		/* Equal domain names get equal numbers. */
		doms[n] = n + 1;
		for (unsigned k = 0; k < n; k++)
			if (!strcmp(dom, names[k])) {
				doms[n] = doms[k];
				break;
			}
		names[n] = dom;
		gms[n++] = &d->guest->mem;
	}
	r = dedup_ideal(gms, doms, n, &id, &e);
	pthread_mutex_unlock(&ctx->lock);
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

static int cmd_vm_create(void *opaque, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err)
{
	struct control *c = opaque;

	return vm_create(c->ctx, args, ret, err);
}

static const struct qmp_arg vm_destroy_args[] = {
	{ "name", QMP_T_STR, false },
	{ NULL, QMP_T_ANY, false },
};

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

static const struct qmp_command host_commands[] = {
	{ "query-vms", cmd_query_vms, NULL, 0, "every guest: state, memory, dedup" },
	{ "query-dedup-host", cmd_query_dedup_host, NULL, 0, "host-wide dedup state" },
	{ "query-dedup-ideal", cmd_query_dedup_ideal, NULL, 0,
	  "census: the most full-page dedup could save now" },
	{ "vm-create", cmd_vm_create, vm_create_args, 0, "start a guest (--vm keys)" },
	{ "vm-destroy", cmd_vm_destroy, vm_destroy_args, 0, "stop and free a guest" },
	{ NULL, NULL, NULL, 0, NULL },
};

/* ---- events ---- */

static void guest_state_event(void *opaque, struct guest *g, enum guest_state old_state,
			      enum guest_state new_state, const char *reason)
{
	struct control_guest *cg = opaque;
	struct json_object *data = NULL;
	const char *name = NULL;

	(void)g;
	if (new_state == GUEST_PAUSED) {
		name = "STOP";
	} else if (new_state == GUEST_RUNNING && old_state == GUEST_PAUSED) {
		name = "RESUME";
	} else if (!guest_state_is_live(new_state)) {
		name = "SHUTDOWN";
		data = json_object_new_object();
		jadd_bool(data, "guest", new_state == GUEST_SHUTDOWN);
		jadd_str(data, "reason", new_state == GUEST_SHUTDOWN ? "guest-shutdown" :
			 new_state == GUEST_FAILED ? "guest-panic" : "host-qmp-quit");
		jadd_str(data, "detail", reason ? reason : "");
	}
	if (name)
		qmp_endpoint_event(cg->ep, name, data);
	else
		json_object_put(data);
}

/* Send one event to the host socket and every guest socket. */
static void broadcast(struct control *c, const char *name, struct json_object *data)
{
	struct run_ctx *ctx = c->ctx;

	pthread_mutex_lock(&ctx->lock);
	for (unsigned i = 0; i < CLI_MAX_VMS; i++) {
		struct control_guest *cg = ctx->drv[i].control;

		if (driver_has_guest(&ctx->drv[i]) && cg && cg->ep)
			qmp_endpoint_event(cg->ep, name, json_object_get(data));
	}
	pthread_mutex_unlock(&ctx->lock);
	qmp_endpoint_event(c->host_ep, name, data);
}

static void dedup_event(void *opaque, const struct dedup_host_stats *st,
			bool budget_exhausted)
{
	struct control *c = opaque;
	uint64_t now = fv_mono_ns();
	bool pass_due;
	struct json_object *data;

	if (budget_exhausted) {
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

static int control_start(struct run_ctx *ctx, struct fv_error *err)
{
	struct control *c;

	if (!ctx->opt->control)
		return 0;
	if (mkdir(ctx->opt->run_dir, 0700) < 0 && errno != EEXIST)
		return fv_err_errno(err, FV_E_IO, errno, "cannot create run directory %s",
				    ctx->opt->run_dir);
	c = calloc(1, sizeof(*c));
	if (!c)
		return fv_err(err, FV_E_NOMEM, "control");
	c->ctx = ctx;
	pthread_mutex_init(&c->ev_lock, NULL);
	snprintf(c->host_path, sizeof(c->host_path), "%s/host.qmp", ctx->opt->run_dir);
	endpoint_config(&c->host_cfg, c->host_path, host_commands, c);
	if (qmp_server_create(&c->server, err)) {
		free(c);
		return -1;
	}
	if (qmp_endpoint_add(c->server, &c->host_cfg, &c->host_ep, err)) {
		fv_err_prefix(err, "host control socket: ");
		qmp_server_destroy(c->server);
		free(c);
		return -1;
	}
	ctx->control = c;
	if (ctx->dedup)
		dedup_set_event_callback(ctx->dedup, dedup_event, c);
	return 0;
}

static void control_stop(struct run_ctx *ctx)
{
	struct control *c = ctx->control;

	if (!c)
		return;
	if (ctx->dedup)
		dedup_set_event_callback(ctx->dedup, NULL, NULL);
	qmp_server_destroy(c->server); /* unlinks host.qmp */
	pthread_mutex_destroy(&c->ev_lock);
	free(c);
	ctx->control = NULL;
}

/* RUNDIR/by-uuid/UUID.qmp -> ../NAME.qmp: a libvirt domain's socket is
 * found by its uuid as well as by its name.  Relative, so the run
 * directory can move (a bind mount into a container) with its links. */
static int control_link_uuid(struct control_guest *cg, const char *run_dir,
			     struct fv_error *err)
{
	char dir[PATH_MAX + 16], target[GUEST_NAME_MAX + 16];

	snprintf(dir, sizeof(dir), "%s/by-uuid", run_dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return fv_err_errno(err, FV_E_IO, errno, "%s", dir);
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

static int control_guest_added(struct run_ctx *ctx, struct driver *d,
			       struct fv_error *err)
{
	struct control *c = ctx->control;
	struct control_guest *cg;

	if (!c)
		return 0;
	cg = calloc(1, sizeof(*cg));
	if (!cg)
		return fv_err(err, FV_E_NOMEM, "control endpoint");
	cg->c = c;
	snprintf(cg->name, sizeof(cg->name), "%s", d->spec.cfg.name);
	snprintf(cg->uuid, sizeof(cg->uuid), "%s", d->spec.uuid);
	snprintf(cg->path, sizeof(cg->path), "%s/%s.qmp", c->ctx->opt->run_dir, cg->name);
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
	d->control = cg;
	d->guest->on_state = guest_state_event;
	d->guest->on_state_opaque = cg;
	return 0;
}

static void control_guest_removed(struct run_ctx *ctx, struct driver *d)
{
	struct control *c = ctx->control;
	struct control_guest *cg = d->control;

	if (!c || !cg)
		return;
	/* No more state events into an endpoint that is going away. */
	d->guest->on_state = NULL;
	if (cg->uuid_path[0])
		unlink(cg->uuid_path);
	qmp_endpoint_remove(c->server, cg->ep);
	d->control = NULL;
	free(cg);
}

const struct runner_observer control_observer = {
	.start = control_start,
	.stop = control_stop,
	.guest_added = control_guest_added,
	.guest_removed = control_guest_removed,
};
