/*
 * replies.c - foldvm's answers and events in JSON, from typed figures
 * (replies.h).  docs/qmp.md lists every field.
 */
#include <stdio.h>
#include <string.h>
#include "config.h"
#include "control/replies.h"

void vm_figures_read(struct vm_figures *f, const struct runner_guest_info *in)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", in->name);
	snprintf(f->uuid, sizeof(f->uuid), "%s", in->uuid);
	snprintf(f->domain, sizeof(f->domain), "%s", in->domain);
	f->state = in->state;
	f->destroying = in->destroying;
	f->mem_size = in->mem_size;
	f->nr_vcpus = in->nr_vcpus;
	f->dedup = in->dedup;
	f->merging = in->merging;
	f->dstats = in->dstats;
	f->balloon = in->balloon;
	f->balloon_c = in->balloon_c;
	/* Without the run's lock, and the guest may be gone by now: safe,
	 * since the range is only numbers that the kernel is asked about,
	 * never memory that is read.  A guest freed meanwhile has its range
	 * unmapped (zeros) or reused by a later mapping (that one's counts):
	 * a stale answer, as any answer about a guest being destroyed is. */
	if (in->ram_start)
		procstat_range(in->ram_start, in->ram_end, &f->ram, NULL);
}

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

struct json_object *replies_vm(const struct vm_figures *f)
{
	struct json_object *vm = json_object_new_object();

	jadd_str(vm, "name", f->name);
	if (f->uuid[0])
		jadd_str(vm, "uuid", f->uuid);
	jadd_str(vm, "status", f->destroying ? "destroying" : qmp_status(f->state));
	jadd_int(vm, "memory", f->mem_size);
	jadd_int(vm, "vcpus", f->nr_vcpus);
	json_object_object_add(vm, "dedup", replies_vm_dedup(f));
	return vm;
}

/* Every per-guest statistic, pages and bytes, plus the kernel's view. */
struct json_object *replies_vm_dedup(const struct vm_figures *f)
{
	struct json_object *o = json_object_new_object();
	const struct dedup_guest_stats *s = &f->dstats;

	jadd_bool(o, "enabled", f->dedup && f->merging);
	jadd_str(o, "domain", f->domain);
	/* The kernel's view of the guest's RAM (see procstat.h for why a
	 * guest's own cost is anon-bytes plus its share of the store). */
	jadd_int(o, "rss-bytes", f->ram.rss);
	jadd_int(o, "pss-bytes", f->ram.pss);
	jadd_int(o, "anon-bytes", f->ram.anon);
	/* What the guest gave back through its balloon (docs/virtio.md). */
	if (f->balloon) {
		jadd_int(o, "reported-free-bytes", f->balloon_c.reported_bytes);
		jadd_int(o, "balloon-inflated-bytes", f->balloon_c.inflated_pages * 4096);
	}
	if (!f->dedup)
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

/* The engine's memory-pressure figures (PSI, hundredths of a percent). */
static void pressure_json(struct json_object *o, const struct dedup_host_stats *h)
{
	jadd_bool(o, "memory-pressure-paused", h->pressure_paused);
	jadd_bool(o, "memory-pressure-known", h->pressure_known);
	jadd_bool(o, "memory-pressure-cgroup", h->pressure_cgroup);
	jadd_int(o, "memory-pressure-some-avg10", h->pressure_some_avg10);
	jadd_int(o, "memory-pressure-full-avg10", h->pressure_full_avg10);
	jadd_int(o, "memory-pressure-threshold", (uint64_t)h->pressure_pct * 100);
	jadd_int(o, "memory-pressure-pauses", h->pressure_pauses);
}

struct json_object *replies_host(const struct host_figures *hf)
{
	struct json_object *o = json_object_new_object();
	const struct dedup_host_stats *h = &hf->engine;

	jadd_int(o, "process-rss-bytes", hf->rss);
	jadd_int(o, "process-pss-bytes", hf->pss);
	jadd_bool(o, "enabled", hf->enabled);
	if (!hf->enabled)
		return o;
	jadd_int(o, "guests", h->guests);
	jadd_int(o, "store-frames", h->store_frames);
	jadd_int(o, "pages-in-place", h->pages_in_place);
	jadd_int(o, "store-bytes", h->store_bytes);
	jadd_int(o, "saved-bytes", h->saved_bytes);
	jadd_int(o, "vma-budget", h->vma_budget);
	jadd_int(o, "vmas-used", h->vmas_used);
	jadd_int(o, "max-map-count", h->max_map_count);
	jadd_bool(o, "vma-budget-exhausted", h->budget_exhausted);
	jadd_int(o, "passes", h->passes);
	jadd_int(o, "merges", h->merges);
	jadd_int(o, "unmerges", h->unmerges);
	jadd_int(o, "scanner-cpu-ns", h->cpu_ns);
	jadd_int(o, "pass-cpu-max-ns", h->pass_cpu_max_ns);
	jadd_int(o, "pass-cpu-last-ns", h->pass_cpu_last_ns);
	pressure_json(o, h);
	return o;
}

struct json_object *replies_ideal(const struct dedup_ideal *id)
{
	struct json_object *o = json_object_new_object();

	jadd_int(o, "pages", id->pages);
	jadd_int(o, "zero-pages", id->zero_pages);
	jadd_int(o, "nonzero-pages", id->nonzero_pages);
	jadd_int(o, "distinct-contents", id->distinct);
	jadd_int(o, "ideal-bytes", id->ideal_bytes);
	return o;
}

struct json_object *replies_census(const struct dedup_census *cs)
{
	static const char *const run_keys[CENSUS_RUNS] = {
		"run-1-pages", "run-2-15-pages", "run-16-511-pages", "run-512-pages",
	};
	struct json_object *o = json_object_new_object();

	jadd_int(o, "pages", cs->pages);
	jadd_int(o, "zero-pages", cs->zero);
	jadd_int(o, "same-address-pages", cs->same_address);
	for (unsigned k = 0; k < CENSUS_RUNS; k++)
		jadd_int(o, run_keys[k], cs->run[k]);
	jadd_int(o, "unique-pages", cs->unique);
	return o;
}

static const char *const engine_event_names[ENGINE_NR_EVENTS] = {
	[ENGINE_EVENT_PASS] = "DEDUP_PASS_COMPLETE",
	[ENGINE_EVENT_BUDGET] = "DEDUP_BUDGET_EXHAUSTED",
	[ENGINE_EVENT_PRESSURE] = "MEMORY_PRESSURE",
};

const char *replies_engine_event_name(enum engine_event ev)
{
	return (unsigned)ev < ENGINE_NR_EVENTS ? engine_event_names[ev] : NULL;
}

struct json_object *replies_engine_event(enum engine_event ev,
					 const struct dedup_host_stats *st)
{
	struct json_object *data = json_object_new_object();

	switch (ev) {
	case ENGINE_EVENT_PRESSURE:
		pressure_json(data, st);
		break;
	case ENGINE_EVENT_BUDGET:
		jadd_int(data, "vma-budget", st->vma_budget);
		jadd_int(data, "vmas-used", st->vmas_used);
		jadd_int(data, "max-map-count", st->max_map_count);
		break;
	case ENGINE_EVENT_PASS:
	default:
		jadd_int(data, "passes", st->passes);
		jadd_int(data, "saved-bytes", st->saved_bytes);
		jadd_int(data, "store-frames", st->store_frames);
		jadd_int(data, "merges", st->merges);
		jadd_int(data, "unmerges", st->unmerges);
		break;
	}
	return data;
}

struct json_object *replies_shutdown(bool by_guest, const char *reason,
				     const char *name, const char *domain,
				     const char *detail)
{
	struct json_object *data = json_object_new_object();

	jadd_bool(data, "guest", by_guest);
	jadd_str(data, "reason", reason);
	if (name)
		jadd_str(data, "name", name);
	if (domain)
		jadd_str(data, "domain", domain);
	jadd_str(data, "detail", detail ? detail : "");
	return data;
}

void replies_endpoint_config(struct qmp_endpoint_config *cfg, const char *path,
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
