/*
 * guest_commands.c - the commands of a guest's control socket
 * (RUNDIR/NAME.qmp): query-status, stop, cont, quit, query-name,
 * query-uuid, query-dedup, dedup-set, dedup-unmerge, balloon, query-balloon;
 * and the STOP, RESUME and SHUTDOWN
 * events it sends.  docs/qmp.md lists them.
 *
 * A handler finds its guest by name every time (a slot may be reaped
 * between two requests), through the runner: a record copied under the
 * run's lock, or a held guest (runner_guest_get) for the commands that act
 * on it.  Nothing slow runs under the run's lock.
 */
#include <string.h>
#include "control/commands_int.h"
#include "control/unmerge.h"
#include "devices/virtio_balloon.h"

/* The guest's record now; DeviceNotFound once it is being destroyed. */
static int guest_info(struct control_guest *cg, struct runner_guest_info *in,
		      struct qmp_error *err)
{
	struct fv_error e = { 0 };
	struct driver *d = runner_guest_get(cg->c->ctx, cg->name, in, &e);

	if (!d)
		return qmp_error_set(err, "DeviceNotFound", "%s", e.msg);
	runner_guest_put(d);
	return 0;
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
	/* measure-merging: merged-write-* as soon as the pages were merged */
	jadd_int(o, "merging-write-median-ns",
		 r->measured_merging ? cycles_ns(r->mg_median, r->tsc_khz) : 0);
	jadd_int(o, "merging-write-p99-ns",
		 r->measured_merging ? cycles_ns(r->mg_p99, r->tsc_khz) : 0);
	jadd_int(o, "merging-wait-ns", r->measured_merging ? r->mg_wait_ns : 0);
	jadd_int(o, "merging-done-mono-ns", r->measured_merging ? r->mg_done_ns : 0);
	json_object_object_add(o, "merging-engine-merges", json_object_new_int64(
		r->measured_merging ? r->mg_merges : -1));
	jadd_int(o, "churn-pages", r->churned);
	jadd_int(o, "churn-ns", r->churn_ns);
	return o;
}

static int cmd_query_status(void *opaque, struct json_object *args,
			    struct json_object **ret, struct qmp_error *err)
{
	struct runner_guest_info in;

	(void)args;
	if (guest_info(opaque, &in, err))
		return -1;
	*ret = json_object_new_object();
	jadd_str(*ret, "status", qmp_status(in.state));
	jadd_bool(*ret, "running", in.state == GUEST_RUNNING);
	jadd_bool(*ret, "singlestep", false);
	/* foldvm's own: what the test payload is doing (its current step)
	 * and what it measured */
	jadd_str(*ret, "foldvm-step", in.step);
	json_object_object_add(*ret, "foldvm-measure", measure_json(&in.rep));
	return 0;
}

static int cmd_stop_cont(struct control_guest *cg, bool stop, struct qmp_error *err)
{
	struct fv_error e = { 0 };
	struct driver *d = runner_guest_get(cg->c->ctx, cg->name, NULL, &e);
	int r;

	if (!d)
		return qmp_error_set(err, "DeviceNotFound", "%s", e.msg);
	/* Held, so the guest lives; pausing waits for its vCPUs, which is
	 * why it runs without the run's lock. */
	r = stop ? guest_pause(runner_guest(d), &e) : guest_resume(runner_guest(d), &e);
	runner_guest_put(d);
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
struct json_object *dedup_json(const struct runner_guest_info *in)
{
	struct json_object *o = json_object_new_object();
	const struct dedup_guest_stats *s = &in->dstats;
	struct procstat_mem m = { 0 };

	jadd_bool(o, "enabled", in->dedup && in->merging);
	jadd_str(o, "domain", in->domain);
	/* Without the run's lock, and the guest may be gone by now: safe,
	 * since the range is only numbers that the kernel is asked about,
	 * never memory that is read.  A guest freed meanwhile has its range
	 * unmapped (zeros) or reused by a later mapping (that one's counts):
	 * a stale answer, as any answer about a guest being destroyed is. */
	if (in->ram_start)
		procstat_range(in->ram_start, in->ram_end, &m, NULL);
	/* The kernel's view of the guest's RAM (see procstat.h for why a
	 * guest's own cost is anon-bytes plus its share of the store). */
	jadd_int(o, "rss-bytes", m.rss);
	jadd_int(o, "pss-bytes", m.pss);
	jadd_int(o, "anon-bytes", m.anon);
	/* What the guest gave back through its balloon (docs/virtio.md). */
	if (in->balloon) {
		jadd_int(o, "reported-free-bytes", in->balloon_c.reported_bytes);
		jadd_int(o, "balloon-inflated-bytes", in->balloon_c.inflated_pages * 4096);
	}
	if (!in->dedup)
		return o;
	jadd_int(o, "pages", s->pages);
	jadd_int(o, "pages-scanned", s->pages_scanned);
	jadd_int(o, "pages-hashed", s->pages_hashed);
	jadd_int(o, "pages-merged", s->pages_merged);
	jadd_int(o, "bytes-merged", s->pages_merged * 4096);
	jadd_int(o, "pages-in-place", s->pages_in_place);
	jadd_int(o, "pages-zero", s->pages_zero);
	jadd_int(o, "bytes-zero", s->pages_zero * 4096);
	jadd_int(o, "frames-referenced", s->frames_referenced);
	jadd_int(o, "merge-attempts", s->merge_attempts);
	jadd_int(o, "merges", s->merges);
	jadd_int(o, "merges-in-place", s->merges_in_place);
	jadd_int(o, "merge-races", s->merge_races);
	jadd_int(o, "unmerges", s->unmerges);
	jadd_int(o, "volatile-skipped", s->volatile_skipped);
	jadd_int(o, "budget-skipped", s->budget_skipped);
	jadd_int(o, "bytes-saved", s->bytes_saved);
	jadd_int(o, "vmas", s->vmas);
	jadd_int(o, "full-passes", s->full_passes);
	jadd_int(o, "scanner-cpu-ns", s->cpu_ns);
	jadd_int(o, "scan-rate", s->rate);
	jadd_bool(o, "unmerging", s->unmerging);
	jadd_int(o, "unmerge-pages-left", s->unmerge_left);
	jadd_int(o, "unmerge-pages-done", s->unmerge_done);
	jadd_int(o, "store-pages", s->store_pages);
	jadd_int(o, "store-pages-content", s->store_content);
	jadd_int(o, "store-pages-same-address", s->store_same_address);
	jadd_int(o, "store-pages-zero-frame", s->store_zero_frame);
	jadd_int(o, "store-pages-private", s->store_private);
	jadd_int(o, "store-pages-private-zero", s->store_private_zero);
	jadd_int(o, "pages-rehomed", s->rehomed);
	return o;
}

static int cmd_query_dedup(void *opaque, struct json_object *args,
			   struct json_object **ret, struct qmp_error *err)
{
	struct runner_guest_info in;

	(void)args;
	if (guest_info(opaque, &in, err))
		return -1;
	*ret = dedup_json(&in);
	return 0;
}

/* dedup-set: switch merging, change the (host-wide) scan rate and CPU cap.
 * A trust domain is fixed for a guest's life: changing it under a running
 * guest would leave frames shared across domains. */
static int cmd_dedup_set(void *opaque, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err)
{
	struct control_guest *cg = opaque;
	struct dedup_engine *engine = runner_dedup(cg->c->ctx);
	struct fv_error e = { 0 };
	struct json_object *v;
	struct driver *d;
	uint64_t rate;
	unsigned cpu;
	int r = 0;

	(void)ret;
	if (!engine)
		return qmp_error_set(err, "GenericError",
				     "foldvm runs without the dedup engine (start it with --dedup or --persist)");
	if (json_object_object_get_ex(args, "domain", &v))
		return qmp_error_set(err, "GenericError",
				     "the trust domain of a running guest cannot change; destroy and re-create it");
	dedup_get_limits(engine, &rate, &cpu);
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
	if (!(d = runner_guest_get(cg->c->ctx, cg->name, NULL, &e)))
		return qmp_error_set(err, "DeviceNotFound", "%s", e.msg);
	if (json_object_object_get_ex(args, "enabled", &v) &&
	    runner_guest_set_merging(d, json_object_get_boolean(v), &e))
		r = qmp_error_set(err, "GenericError", "%s", e.msg);
	runner_guest_put(d);
	if (!r)
		dedup_set_limits(engine, rate, cpu);
	return r;
}

/* dedup-unmerge: this guest's shared pages made private (control/unmerge.h). */
static int cmd_dedup_unmerge(void *opaque, struct json_object *args,
			     struct json_object **ret, struct qmp_error *err)
{
	struct control_guest *cg = opaque;

	return unmerge_command(cg->c->ctx, cg->name, args, ret, err);
}

/* The guest's balloon, held: DeviceNotActive when it has none (QEMU's
 * answer), DeviceNotFound when the guest is going. */
static struct driver *balloon_get(struct control_guest *cg,
				  struct virtio_balloon **b, struct qmp_error *err)
{
	struct fv_error e = { 0 };
	struct driver *d = runner_guest_get(cg->c->ctx, cg->name, NULL, &e);

	if (!d) {
		qmp_error_set(err, "DeviceNotFound", "%s", e.msg);
		return NULL;
	}
	*b = runner_guest(d)->balloon;
	if (!*b) {
		runner_guest_put(d);
		qmp_error_set(err, "DeviceNotActive",
			      "No balloon device has been activated (balloon=on)");
		return NULL;
	}
	return d;
}

/* balloon: the guest should hold `value` bytes of RAM (QEMU's command). */
static int cmd_balloon(void *opaque, struct json_object *args,
		       struct json_object **ret, struct qmp_error *err)
{
	struct json_object *v = NULL;
	struct virtio_balloon *b;
	struct fv_error e = { 0 };
	struct driver *d;
	int64_t value;
	int r;

	(void)ret;
	json_object_object_get_ex(args, "value", &v);
	value = json_object_get_int64(v);
	if (value <= 0)
		return qmp_error_set(err, "GenericError",
				     "Parameter 'value' must be a positive number of bytes");
	d = balloon_get(opaque, &b, err);
	if (!d)
		return -1;
	r = virtio_balloon_set_target(b, (uint64_t)value, &e);
	runner_guest_put(d);
	if (r)
		return qmp_error_set(err, "GenericError", "%s", e.msg);
	return 0;
}

/* query-balloon: QEMU's `actual`, and what foldvm counts besides. */
static int cmd_query_balloon(void *opaque, struct json_object *args,
			     struct json_object **ret, struct qmp_error *err)
{
	struct virtio_balloon_info in;
	struct virtio_balloon *b;
	struct json_object *stats;
	struct driver *d;

	(void)args;
	d = balloon_get(opaque, &b, err);
	if (!d)
		return -1;
	virtio_balloon_query(b, &in);
	runner_guest_put(d);
	*ret = json_object_new_object();
	jadd_int(*ret, "actual", in.actual_bytes);
	jadd_int(*ret, "target", in.target_bytes);
	jadd_int(*ret, "inflated-pages", in.c.inflated_pages);
	jadd_int(*ret, "deflated-pages", in.c.deflated_pages);
	jadd_int(*ret, "reported-free-bytes", in.c.reported_bytes);
	jadd_int(*ret, "reported-ranges", in.c.reports);
	jadd_int(*ret, "released-written-pages", in.c.released_written);
	jadd_int(*ret, "bad-pfns", in.c.bad_pfns);
	jadd_int(*ret, "stats-updates", in.c.stats_updates);
	/* The guest's last statistics, by QEMU's names; absent ones left out. */
	stats = json_object_new_object();
	for (unsigned t = 0; t < VIRTIO_BALLOON_S_NR; t++)
		if (in.stat_seen & (1u << t))
			jadd_int(stats, virtio_balloon_stat_name(t), in.stat[t]);
	json_object_object_add(*ret, "stats", stats);
	return 0;
}

static const struct qmp_arg balloon_args[] = {
	{ "value", QMP_T_INT, false },
	{ NULL, QMP_T_ANY, false },
};

static const struct qmp_arg dedup_set_args[] = {
	{ "enabled", QMP_T_BOOL, true },
	{ "rate", QMP_T_INT, true },
	{ "cpu-pct", QMP_T_INT, true },
	{ "domain", QMP_T_STR, true },
	{ NULL, QMP_T_ANY, false },
};

const struct qmp_command guest_commands[] = {
	{ "query-status", cmd_query_status, NULL, 0, "run state of the guest" },
	{ "stop", cmd_stop, NULL, 0, "pause every vCPU" },
	{ "cont", cmd_cont, NULL, 0, "resume" },
	{ "quit", cmd_quit, NULL, QMP_CMD_CLOSE_AFTER, "stop and remove the guest" },
	{ "query-name", cmd_query_name, NULL, 0, "the guest's name" },
	{ "query-uuid", cmd_query_uuid, NULL, 0, "the libvirt domain's uuid" },
	{ "query-dedup", cmd_query_dedup, NULL, 0, "dedup statistics of the guest" },
	{ "dedup-set", cmd_dedup_set, dedup_set_args, 0,
	  "merging on/off; scan rate and CPU cap (host-wide)" },
	{ "dedup-unmerge", cmd_dedup_unmerge, unmerge_guest_args, 0,
	  "merging off, and a private copy of every shared page (rate: pages/s)" },
	{ "balloon", cmd_balloon, balloon_args, 0,
	  "the RAM the guest should keep, in bytes (virtio-balloon)" },
	{ "query-balloon", cmd_query_balloon, NULL, 0,
	  "the guest's RAM less its balloon, and the balloon's figures" },
	{ NULL, NULL, NULL, 0, NULL },
};

/* A guest's state changes as QMP events on its socket. */
void guest_state_event(void *opaque, struct guest *g, enum guest_state old_state,
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
