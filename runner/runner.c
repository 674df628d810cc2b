#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "runner/runner.h"
#include "runner/domlock.h"
#include "runner/hooks.h"
#include "vmm/vcpu.h"

/* File content kept for guests created at runtime (--persist --files). */
#define RUNNER_PERSIST_BLOB_MAX (256ull << 20)

/* No single guest command should take longer on any sane host. */
#define COMMAND_TIMEOUT_MS (10 * 60 * 1000)
#define EXIT_TIMEOUT_MS 10000

static double run_elapsed(const struct run_ctx *ctx)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - ctx->t0.tv_sec) +
	       (double)(now.tv_nsec - ctx->t0.tv_nsec) / 1e9;
}

/* The kernel's count of one guest's private pages (its RAM's VMAs). */
static uint64_t guest_private_bytes(struct guest *g)
{
	const uint8_t *start = gmem_page_hva(&g->mem, 0);
	struct procstat_mem m = { 0 };

	if (start)
		procstat_range((uintptr_t)start, (uintptr_t)start + g->mem.size,
			       &m, NULL);
	return m.anon;
}

/* Taken by one thread while every driver waits at the barrier. */
static void run_snapshot(struct run_ctx *ctx)
{
	struct run_result *res = ctx->res;
	bool first = res->syncs == 0;
	struct mem_snapshot *snap = first ? &res->first : &res->last;

	snap->taken = true;
	snap->t = run_elapsed(ctx);
	procstat_rollup(0, &snap->rollup, NULL);
	if (ctx->dedup)
		dedup_get_host_stats(ctx->dedup, &snap->host);
	pthread_mutex_lock(&ctx->lock);
	for (unsigned i = 0; i < CLI_MAX_VMS; i++) {
		struct guest_report *r = ctx->drv[i].rep;

		if (!driver_has_guest(&ctx->drv[i]))
			continue;
		if (first)
			r->anon_before = guest_private_bytes(ctx->drv[i].guest);
		else
			r->anon_after = guest_private_bytes(ctx->drv[i].guest);
	}
	pthread_mutex_unlock(&ctx->lock);
	if (first)
		res->last = res->first;
	res->syncs++;
	/* The baseline is taken: from here on the engine may merge. */
	if (ctx->dedup)
		dedup_set_paused(ctx->dedup, false);
}

static int step_sync(struct driver *d)
{
	if (pthread_barrier_wait(&d->ctx->barrier) == PTHREAD_BARRIER_SERIAL_THREAD)
		run_snapshot(d->ctx);
	/* Nobody leaves before the snapshot is complete. */
	pthread_barrier_wait(&d->ctx->barrier);
	return 0;
}

static int run_cmd(struct driver *d, unsigned vcpu, uint32_t cmd,
		   const uint64_t arg[8], struct testdev_result *res,
		   struct fv_error *err)
{
	struct testdev *td = &d->guest->testdev;

	if (testdev_submit(td, vcpu, cmd, arg, err) ||
	    testdev_wait(td, vcpu, COMMAND_TIMEOUT_MS, res, err))
		return -1;
	if (res->cmd != cmd)
		return fv_err(err, FV_E_GUEST, "vCPU %u answered command %u to %u",
			      vcpu, res->cmd, cmd);
	if (res->status == FV_STATUS_BAD_COMMAND || res->status == FV_STATUS_BAD_ARGS)
		return fv_err(err, FV_E_GUEST, "guest refused command %u (status %u)",
			      cmd, res->status);
	return 0;
}

static int step_fill(struct driver *d, struct fv_error *err)
{
	struct testdev_result r;

	if (run_cmd(d, 0, FV_CMD_FILL, NULL, &r, err))
		return -1;
	if (r.result[1])
		return fv_err(err, FV_E_GUEST, "blob checksum mismatch in guest");
	d->rep->filled = true;
	d->rep->pages_zero = r.result[2];
	d->rep->pages_shared = r.result[3];
	d->rep->pages_blob = r.result[4];
	d->rep->pages_unique = r.result[5];
	return 0;
}

static int step_verify(struct driver *d, struct fv_error *err)
{
	struct testdev_result r;

	if (run_cmd(d, 0, FV_CMD_VERIFY, NULL, &r, err))
		return -1;
	d->rep->verified = true;
	d->rep->verify_checked = r.result[0];
	d->rep->verify_mismatches = r.result[1];
	d->rep->verify_first_bad = r.result[2];
	if (r.result[1])
		return fv_err(err, FV_E_GUEST,
			      "verify: %llu of %llu pages differ (first at gpa 0x%llx)",
			      (unsigned long long)r.result[1],
			      (unsigned long long)r.result[0],
			      (unsigned long long)r.result[2]);
	return 0;
}

static int step_churn(struct driver *d, uint64_t pages, struct fv_error *err)
{
	static uint64_t round;
	uint64_t arg[8] = { pages, 0, 0x0c4u ^ __atomic_add_fetch(&round, 1, __ATOMIC_RELAXED) };
	struct testdev_result r;

	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (run_cmd(d, 0, FV_CMD_CHURN, arg, &r, err))
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	d->rep->churned += r.result[0];
	d->rep->churn_ns += (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000ull +
			    (uint64_t)(t1.tv_nsec - t0.tv_nsec);
	return 0;
}

/* Every vCPU races on the counters; then vCPU 0 learns the totals. */
static int step_race(struct driver *d, uint64_t iters, struct fv_error *err)
{
	struct testdev *td = &d->guest->testdev;
	unsigned n = d->guest->cfg.nr_vcpus;
	uint64_t arg[8] = { iters };
	struct testdev_result r;

	for (unsigned i = 0; i < n; i++)
		if (testdev_submit(td, i, FV_CMD_RACE, arg, err))
			return -1;
	for (unsigned i = 0; i < n; i++)
		if (testdev_wait(td, i, COMMAND_TIMEOUT_MS, &r, err))
			return -1;
	arg[1] = n;
	if (run_cmd(d, 0, FV_CMD_RACE_SETTLE, arg, &r, err))
		return -1;
	d->rep->race_iterations += iters * n;
	return 0;
}

/*
 * `measure` writes one pattern word to each untouched probe page: the
 * first-write cost of fresh memory, and it leaves all probe pages (of
 * every guest) identical, so the engine merges them.  `measure-merged`
 * then rewrites the same value (the guest reads the word first, outside
 * the timed window): the first-write cost of a merged page.
 */
static int step_measure(struct driver *d, bool merged, struct fv_error *err)
{
	const struct fv_guest_config *l = &d->guest->layout;
	uint64_t arg[8] = { l->probe_gpa, l->probe_pages, FV_PAGE_SIZE, merged };
	struct guest_report *rep = d->rep;
	struct testdev_result r;

	if (run_cmd(d, 0, FV_CMD_MEASURE_WRITE, arg, &r, err))
		return -1;
	rep->tsc_khz = l->tsc_khz;
	if (merged) {
		rep->measured_merged = true;
		rep->mw_median = r.result[0];
		rep->mw_p99 = r.result[1];
		rep->mw_mean = r.result[2];
	} else {
		rep->measured = true;
		rep->fw_median = r.result[0];
		rep->fw_p99 = r.result[1];
		rep->fw_mean = r.result[2];
	}
	return 0;
}

/* One 0.1 s slice of an idle step: 1 to go on, 0 to end the step, -1 when
 * the guest failed. */
static int idle_slice(struct driver *d, struct fv_error *err)
{
	struct timespec ts = { 0, 100 * 1000000L };
	enum guest_state st;

	/* SIGINT/SIGTERM end the waiting; the steps after it (a final verify,
	 * say) still run. */
	if (*d->stop)
		return 0;
	st = guest_get_state(d->guest, NULL, 0);
	if (!guest_state_is_live(st)) {
		/* A kernel may power off or be stopped: only a failure is an
		 * error.  A test guest must live to its end. */
		if (d->rep->linux_guest && st != GUEST_FAILED)
			return 0;
		/* The report adds the guest's own reason. */
		return fv_err(err, FV_E_GUEST, "guest %s while idle",
			      guest_state_name(st));
	}
	nanosleep(&ts, NULL);
	return 1;
}

/* Sleep in short slices so an interrupt or a guest failure ends it. */
static int step_sleep(struct driver *d, uint64_t seconds, bool forever,
		      struct fv_error *err)
{
	uint64_t slices = seconds * 10;
	int rc = 1;

	for (uint64_t i = 0; rc == 1 && (forever || i < slices); i++)
		rc = idle_slice(d, err);
	return rc < 0 ? -1 : 0;
}

/* A settle that sees no pass end for this long reports the engine stuck
 * (a pass over a test guest takes well under a second). */
#define SETTLE_STUCK_SLICES (10 * 60 * 10)      /* 10 minutes of 0.1 s */

static uint64_t engine_passes(struct dedup_engine *e)
{
	struct dedup_host_stats hs;

	dedup_get_host_stats(e, &hs);
	return hs.passes;
}

/* settle:N waits for N engine passes that all start after the step does,
 * so the engine has seen what the guests hold now N times (idle guests
 * converge in two).  It counts passes, not seconds: a loaded host makes it
 * slower, never wrong, which is what tests and demos that assert a saving
 * need.  Without an engine there is nothing to wait for. */
static int step_settle(struct driver *d, uint64_t passes, struct fv_error *err)
{
	struct dedup_engine *e = d->ctx->dedup;
	uint64_t seen, now, target, idle = 0;
	int rc = 1;

	if (!e)
		return 0;
	/* the pass under way may have started before this step */
	seen = engine_passes(e);
	target = seen + passes + 1;
	while (rc == 1 && (now = engine_passes(e)) < target) {
		idle = now == seen ? idle + 1 : 0;
		seen = now;
		if (idle == SETTLE_STUCK_SLICES)
			return fv_err(err, FV_E_STATE,
				      "settle: the dedup engine ended no pass in 10 minutes");
		rc = idle_slice(d, err);
	}
	return rc < 0 ? -1 : 0;
}

static int step_fault(struct driver *d, struct fv_error *err)
{
	struct testdev_result r;

	/* The guest is expected to die here; run_cmd reports how. */
	if (run_cmd(d, 0, FV_CMD_FAULT, NULL, &r, err))
		return -1;
	return fv_err(err, FV_E_GUEST, "guest survived a fault it should not have");
}

static int run_step(struct driver *d, const struct step *st, struct fv_error *err)
{
	switch (st->kind) {
	case STEP_FILL: return step_fill(d, err);
	case STEP_VERIFY: return step_verify(d, err);
	case STEP_CHURN: return step_churn(d, st->arg, err);
	case STEP_RACE: return step_race(d, st->arg, err);
	case STEP_MEASURE: return step_measure(d, false, err);
	case STEP_MEASURE_MERGED: return step_measure(d, true, err);
	case STEP_SLEEP: return step_sleep(d, st->arg, false, err);
	case STEP_WAIT: return step_sleep(d, 0, true, err);
	case STEP_FAULT: return step_fault(d, err);
	case STEP_SYNC: return step_sync(d);
	case STEP_SETTLE: return step_settle(d, st->arg, err);
	}
	return fv_err(err, FV_E_INVAL, "unknown step");
}

/* Run the host's libvirt qemu hooks of one lifecycle point for a guest
 * defined by domain XML (docs/libvirt.md); other guests have none. */
static int driver_hook(const struct driver *d, const char *op,
		       const char *subop, struct fv_error *err)
{
	const struct hooks_config *h = &d->ctx->opt->hooks;

	if (!d->spec.domain_xml || !h->dir[0])
		return 0;
	return hooks_run(h, d->spec.cfg.name, op, subop, d->spec.domain_xml, err);
}

/* The hooks whose result libvirt ignores (stopped, release): a failure
 * is worth a line on stderr, nothing more. */
static void driver_hook_cleanup(const struct driver *d, const char *op)
{
	struct fv_error err = { 0 };

	if (driver_hook(d, op, "end", &err))
		fprintf(stderr, "foldvm: guest %s: %s (ignored)\n",
			d->spec.cfg.name, err.msg);
}

/* Ask every vCPU to leave, then wait for the threads.  A kernel has no
 * such request (no ACPI): foldvm stops it, as a power switch would. */
static void driver_shutdown_guest(struct driver *d)
{
	struct testdev *td = &d->guest->testdev;

	if (d->rep->linux_guest)
		guest_stop(d->guest, "stopped by foldvm: its steps are done");
	else
		for (unsigned i = 0; i < d->guest->cfg.nr_vcpus; i++)
			testdev_submit(td, i, FV_CMD_EXIT, NULL, NULL);
	if (guest_wait(d->guest, EXIT_TIMEOUT_MS)) {
		guest_stop(d->guest, "did not exit when asked");
		guest_wait(d->guest, -1);
	}
}

/* The engine's and the kernel's numbers for this guest, while it lives. */
static void driver_final_stats(struct driver *d)
{
	struct guest *g = d->guest;

	if (g->dedup_guest) {
		d->rep->dedup = true;
		dedup_get_guest_stats(g->dedup, g->dedup_guest, &d->rep->dstats);
	}
	if (d->ctx->res->syncs < 2)
		d->rep->anon_after = guest_private_bytes(g);
	d->rep->console_bytes = __atomic_load_n(&g->serial.tx_bytes, __ATOMIC_RELAXED);
}

static void *driver_thread(void *arg)
{
	struct driver *d = arg;
	struct fv_error err = { 0 };
	bool ok = true;

	for (unsigned i = 0; i < d->spec.nr_steps; i++) {
		const struct step *st = &d->spec.steps[i];

		/* After a failure only the syncs are kept: the other guests
		 * wait for this one there. */
		if (!ok && st->kind != STEP_SYNC)
			continue;
		__atomic_store_n(&d->cur_step, (int)i, __ATOMIC_RELAXED);
		if (run_step(d, st, &err)) {
			snprintf(d->rep->error, sizeof(d->rep->error), "%s: %s",
				 step_name(st->kind), err.msg);
			ok = false;
		}
	}
	__atomic_store_n(&d->cur_step, -1, __ATOMIC_RELAXED);
	driver_final_stats(d);
	driver_shutdown_guest(d);
	driver_hook_cleanup(d, "stopped");
	d->rep->state = guest_get_state(d->guest, d->rep->reason,
					sizeof(d->rep->reason));
	/* A test guest must exit when told; a kernel must not have failed. */
	d->rep->ok = ok && (d->rep->linux_guest ? d->rep->state != GUEST_FAILED :
			    d->rep->state == GUEST_SHUTDOWN);
	pthread_mutex_lock(&d->ctx->lock);
	d->finished = true;
	pthread_mutex_unlock(&d->ctx->lock);
	return NULL;
}

static int runner_load_blob(const struct cli_options *opt, struct blob *blob,
			    struct fv_error *err)
{
	uint64_t max_pages = 0;

	memset(blob, 0, sizeof(*blob));
	if (!opt->nr_files)
		return 0;
	/* Enough for the biggest guest's share; smaller guests take a prefix.
	 * Guests created later (--persist) get at most the default cap. */
	if (opt->persist)
		max_pages = RUNNER_PERSIST_BLOB_MAX / FV_PAGE_SIZE;
	for (unsigned i = 0; i < opt->nr_vms; i++) {
		const struct guest_config *c = &opt->vms[i].cfg;
		uint64_t pages = c->mem_size / FV_PAGE_SIZE * c->content.pct_blob / 100;

		if (pages > max_pages)
			max_pages = pages;
	}
	return blob_load(blob, opt->files, opt->nr_files, max_pages, err);
}

static void report_init(struct guest_report *rep, const struct vm_spec *vm)
{
	memset(rep, 0, sizeof(*rep));
	snprintf(rep->name, sizeof(rep->name), "%s", vm->cfg.name);
	rep->mem_size = vm->cfg.mem_size;
	rep->nr_vcpus = vm->cfg.nr_vcpus;
	rep->state = GUEST_CREATED;
	rep->linux_guest = guest_config_is_linux(&vm->cfg);
}

static void runner_sample(struct run_ctx *ctx)
{
	struct run_result *res = ctx->res;
	struct dedup_host_stats hs;

	if (!ctx->dedup || res->nr_samples == RUN_MAX_SAMPLES)
		return;
	dedup_get_host_stats(ctx->dedup, &hs);
	res->sample_t[res->nr_samples] = run_elapsed(ctx);
	res->sample_saved[res->nr_samples++] = hs.saved_bytes;
	res->final_host = hs;
}

/* --max-map-count: raise the host-wide sysctl, loudly, only when asked. */
static int runner_raise_max_map_count(uint64_t want, struct fv_error *err)
{
	uint64_t now;
	FILE *f;

	if (!want)
		return 0;
	if (procstat_max_map_count(&now, err))
		return -1;
	if (now >= want)
		return 0;
	f = fopen("/proc/sys/vm/max_map_count", "w");
	if (!f || fprintf(f, "%llu\n", (unsigned long long)want) < 0 || fclose(f)) {
		int e = errno;

		return fv_err_errno(err, FV_E_SYS, e,
				    "cannot raise vm.max_map_count to %llu (root needed)",
				    (unsigned long long)want);
	}
	fprintf(stderr, "foldvm: raised vm.max_map_count (host-wide) from %llu to %llu, as asked by --max-map-count\n",
		(unsigned long long)now, (unsigned long long)want);
	return 0;
}

static bool runner_wants_dedup(const struct cli_options *opt, bool *has_sync)
{
	/* guests may come later, unless KSM does the merging */
	bool any = opt->control && opt->persist && !opt->ksm;

	*has_sync = false;
	for (unsigned i = 0; i < opt->nr_vms; i++) {
		any |= opt->vms[i].cfg.dedup;
		for (unsigned k = 0; k < opt->vms[i].nr_steps; k++)
			*has_sync |= opt->vms[i].steps[k].kind == STEP_SYNC;
	}
	return any;
}

static int runner_start_dedup(const struct cli_options *opt,
			      struct dedup_engine **engine, bool paused,
			      struct fv_error *err)
{
	struct dedup_config cfg;

	dedup_config_defaults(&cfg);
	cfg.rate = opt->dedup_rate;
	cfg.cpu_pct = opt->dedup_cpu;
	cfg.vma_budget = opt->dedup_vma_budget;
	if (runner_raise_max_map_count(opt->max_map_count, err) ||
	    dedup_create(engine, &cfg, err))
		return -1;
	/* With sync steps the first one measures the no-dedup baseline, so
	 * the engine waits for it. */
	if (paused)
		dedup_set_paused(*engine, true);
	return 0;
}

struct driver *runner_find_locked(struct run_ctx *ctx, const char *name)
{
	for (unsigned i = 0; i < CLI_MAX_VMS; i++)
		if (ctx->drv[i].used && !strcmp(ctx->drv[i].spec.cfg.name, name))
			return &ctx->drv[i];
	return NULL;
}

/* Everything a guest slot holds goes, in libvirt's order for a domain:
 * the guest ('stopped end' hooks for one that never ran, as libvirt does
 * after a failed start), its resources, the 'release end' hooks, and last
 * the domain lock, so no second foldvm starts it before cleanup is done. */
static void driver_release(struct driver *d)
{
	const struct runner_observer *obs = d->ctx->observer;

	if (obs && obs->guest_removed)
		obs->guest_removed(d->ctx, d);
	if (d->prepared && !d->started)
		driver_hook_cleanup(d, "stopped");
	guest_destroy(d->guest);
	d->guest = NULL;
	if (d->prepared)
		driver_hook_cleanup(d, "release");
	d->prepared = false;
	domlock_release(d->ctx->opt->lock_dir, d->spec.uuid, d->lock_fd);
	d->lock_fd = -1;
}

/* A domain guest, before anything is built: its lock (one domain runs
 * once), then the 'prepare begin' hooks, which may refuse it. */
static int driver_prepare_domain(struct driver *d, struct fv_error *err)
{
	const struct cli_options *opt = d->ctx->opt;

	if (!d->spec.uuid[0])
		return 0;
	if (domlock_acquire(opt->lock_dir, d->spec.uuid, d->spec.cfg.name,
			    &d->lock_fd, err))
		return -1;
	d->prepared = true;
	if (driver_hook(d, "prepare", "begin", err)) {
		driver_release(d);
		return -1;
	}
	return 0;
}

/* Build a guest into a free slot (ctx->lock held); not started yet. */
static struct driver *runner_create_locked(struct run_ctx *ctx,
					   const struct vm_spec *spec,
					   bool initial, struct fv_error *err)
{
	struct driver *d = NULL;

	if (runner_find_locked(ctx, spec->cfg.name)) {
		fv_err(err, FV_E_INVAL, "a guest named '%s' exists already",
		       spec->cfg.name);
		return NULL;
	}
	for (unsigned i = 0; i < CLI_MAX_VMS && !d; i++)
		if (!ctx->drv[i].used)
			d = &ctx->drv[i];
	if (!d) {
		fv_err(err, FV_E_INVAL, "at most %d guests", CLI_MAX_VMS);
		return NULL;
	}
	if (spec->cfg.dedup && !ctx->dedup) {
		fv_err(err, FV_E_STATE, "dedup=on needs foldvm started with --dedup or --persist");
		return NULL;
	}
	memset(d, 0, sizeof(*d));
	d->spec = *spec;
	d->rep = &ctx->res->reports[d - ctx->drv];
	d->ctx = ctx;
	d->stop = ctx->stop;
	d->initial = initial;
	d->lock_fd = -1;
	report_init(d->rep, spec);
	if (driver_prepare_domain(d, err))
		return NULL;
	if (guest_create(&d->guest, ctx->kvm, &spec->cfg, ctx->blob, ctx->dedup,
			 ctx->opt->log_dir, err) ||
	    driver_hook(d, "start", "begin", err)) {
		driver_release(d);
		return NULL;
	}
	if (ctx->observer && ctx->observer->guest_added &&
	    ctx->observer->guest_added(ctx, d, err)) {
		driver_release(d);
		return NULL;
	}
	d->rep->created = true;
	d->used = true;
	if ((unsigned)(d - ctx->drv) + 1 > ctx->res->nr)
		ctx->res->nr = (unsigned)(d - ctx->drv) + 1;
	return d;
}

/* Start a created guest and its driver (ctx->lock held). */
static void runner_start_locked(struct driver *d)
{
	struct fv_error err;

	/* A guest that cannot start still gets its driver: its steps fail at
	 * once, it passes its syncs, and it is reported. */
	if (guest_start(d->guest, &err))
		guest_stop(d->guest, "start failed");
	/* libvirt: a failing 'started begin' hook stops the guest again. */
	else if (driver_hook(d, "started", "begin", &err))
		guest_stop(d->guest, err.msg);
	if (pthread_create(&d->thread, NULL, driver_thread, d)) {
		guest_stop(d->guest, "no driver thread");
		d->finished = true;
		return;
	}
	d->started = true;
}

int runner_add_guest(struct run_ctx *ctx, const struct vm_spec *spec,
		     struct fv_error *err)
{
	struct driver *d;
	int ret = -1;

	for (unsigned i = 0; i < spec->nr_steps; i++)
		if (spec->steps[i].kind == STEP_SYNC)
			return fv_err(err, FV_E_INVAL,
				      "guests created at runtime cannot have sync steps");
	pthread_mutex_lock(&ctx->lock);
	d = runner_create_locked(ctx, spec, false, err);
	if (d) {
		runner_start_locked(d);
		ret = 0;
	}
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

int runner_destroy_guest(struct run_ctx *ctx, const char *name,
			 struct fv_error *err)
{
	struct driver *d;
	struct guest *g = NULL;

	pthread_mutex_lock(&ctx->lock);
	d = runner_find_locked(ctx, name);
	if (d && !d->destroying) {
		d->destroying = true;
		g = d->guest;
	}
	pthread_mutex_unlock(&ctx->lock);
	if (!d)
		return fv_err(err, FV_E_INVAL, "no guest named '%s'", name);
	if (g)
		guest_stop(g, "destroyed on request");
	return 0;
}

/* Free the slots of destroyed guests whose drivers are done. */
static void runner_reap(struct run_ctx *ctx)
{
	for (unsigned i = 0; i < CLI_MAX_VMS; i++) {
		struct driver *d = &ctx->drv[i];
		bool reap;

		pthread_mutex_lock(&ctx->lock);
		reap = d->used && d->destroying && d->finished && !d->releasing;
		/* From here, control threads that hold the lock (query-vms,
		 * say) leave the guest alone: it is freed without the lock,
		 * since destroying it waits for its vCPUs. */
		d->releasing |= reap;
		pthread_mutex_unlock(&ctx->lock);
		if (!reap)
			continue;
		if (d->started)
			pthread_join(d->thread, NULL);
		driver_release(d);
		pthread_mutex_lock(&ctx->lock);
		d->used = false;
		d->releasing = false;
		d->rep->created = false;
		pthread_mutex_unlock(&ctx->lock);
	}
}

/* Is any guest still working (its driver not finished)? */
static bool runner_busy(struct run_ctx *ctx)
{
	bool busy = false;

	pthread_mutex_lock(&ctx->lock);
	for (unsigned i = 0; i < CLI_MAX_VMS; i++)
		busy |= ctx->drv[i].used && !ctx->drv[i].finished;
	pthread_mutex_unlock(&ctx->lock);
	return busy;
}

static void runner_stop_all(struct run_ctx *ctx, const char *why)
{
	pthread_mutex_lock(&ctx->lock);
	for (unsigned i = 0; i < CLI_MAX_VMS; i++)
		if (driver_has_guest(&ctx->drv[i]))
			guest_stop(ctx->drv[i].guest, why);
	pthread_mutex_unlock(&ctx->lock);
}

#define GRACE_TICKS 100  /* 10 s of 100 ms ticks after the first signal */

/* The main thread: sample savings, reap destroyed guests, take signals,
 * until no guest works any more (or, with --persist, a signal). */
static void runner_main_loop(struct run_ctx *ctx, bool *interrupted)
{
	struct timespec tick = { 0, 100 * 1000000L };
	unsigned grace = 0;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	for (;;) {
		runner_reap(ctx);
		if (!runner_busy(ctx) && !(ctx->opt->persist && !*ctx->stop))
			break;
		runner_sample(ctx);
		/*
		 * The first signal ends wait/sleep steps and lets the guests
		 * finish (final verify included); a second one, or 10 s
		 * later, stops whatever still runs.
		 */
		if (sigtimedwait(&set, NULL, &tick) > 0) {
			if (*ctx->stop)
				runner_stop_all(ctx, "interrupted by a second signal");
			*ctx->stop = 1;
			*interrupted = true;
		} else if (*ctx->stop && ++grace == GRACE_TICKS) {
			runner_stop_all(ctx, "still running 10 s after the signal");
		}
	}
	for (unsigned i = 0; i < CLI_MAX_VMS; i++)
		if (ctx->drv[i].used && ctx->drv[i].started)
			pthread_join(ctx->drv[i].thread, NULL);
	runner_sample(ctx);
}

static int runner_create_initial(struct run_ctx *ctx, struct fv_error *err)
{
	int ret = 0;

	pthread_mutex_lock(&ctx->lock);
	for (unsigned i = 0; i < ctx->opt->nr_vms && !ret; i++)
		if (!runner_create_locked(ctx, &ctx->opt->vms[i], true, err))
			ret = -1;
	for (unsigned i = 0; i < CLI_MAX_VMS && !ret; i++)
		if (ctx->drv[i].used)
			runner_start_locked(&ctx->drv[i]);
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

int runner_run(const struct cli_options *opt,
	       const struct runner_observer *observer, struct run_result *res,
	       struct fv_error *err)
{
	static volatile sig_atomic_t stop;
	static struct run_ctx ctx;
	struct kvm_sys kvm;
	struct blob blob;
	sigset_t set, old;
	bool has_sync;
	int ret = -1;

	memset(res, 0, sizeof(*res));
	memset(&ctx, 0, sizeof(ctx));
	memset(&blob, 0, sizeof(blob));
	stop = 0;
	ctx.stop = &stop;
	ctx.opt = opt;
	ctx.observer = observer;
	ctx.res = res;
	ctx.kvm = &kvm;
	ctx.blob = &blob;
	ctx.nr_initial = opt->nr_vms;
	pthread_mutex_init(&ctx.lock, NULL);
	clock_gettime(CLOCK_MONOTONIC, &ctx.t0);
	pthread_barrier_init(&ctx.barrier, NULL, opt->nr_vms ? opt->nr_vms : 1);
	/* SIGINT/SIGTERM are collected by sigtimedwait in the main thread. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	vcpu_init_signals();
	if (kvm_sys_open(&kvm, "/dev/kvm", err))
		goto out_sig;
	res->dedup = runner_wants_dedup(opt, &has_sync);
	if (res->dedup && runner_start_dedup(opt, &ctx.dedup, has_sync, err))
		goto out_kvm;
	if (runner_load_blob(opt, &blob, err) ||
	    (observer && observer->start && observer->start(&ctx, err)) ||
	    runner_create_initial(&ctx, err))
		goto out_guests;
	runner_main_loop(&ctx, &res->interrupted);
	ret = 0;
out_guests:
	if (ret) {
		runner_stop_all(&ctx, "start failed");
		for (unsigned i = 0; i < CLI_MAX_VMS; i++)
			if (ctx.drv[i].used && ctx.drv[i].started)
				pthread_join(ctx.drv[i].thread, NULL);
	}
	for (unsigned i = 0; i < CLI_MAX_VMS; i++)
		if (ctx.drv[i].used)
			driver_release(&ctx.drv[i]);
	if (observer && observer->stop)
		observer->stop(&ctx);
	blob_free(&blob);
	dedup_destroy(ctx.dedup);
out_kvm:
	kvm_sys_close(&kvm);
out_sig:
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_barrier_destroy(&ctx.barrier);
	pthread_mutex_destroy(&ctx.lock);
	return ret;
}

static double cycles_to_us(uint64_t cycles, uint64_t tsc_khz)
{
	return tsc_khz ? (double)cycles * 1000.0 / (double)tsc_khz : 0.0;
}

static double mib(uint64_t bytes)
{
	return (double)bytes / (1024.0 * 1024.0);
}

/* A Linux guest has no content counts or verification: its row says how
 * much it wrote to its console and how it ended. */
static void print_linux_row(const struct guest_report *r, FILE *out)
{
	fprintf(out, "%-12s %7lluM %5u %-9s %8s %8s %8s %8s %14s  kernel: %llu console bytes%s%s\n",
		r->name, (unsigned long long)(r->mem_size >> 20), r->nr_vcpus,
		guest_state_name(r->state), "-", "-", "-", "-", "-",
		(unsigned long long)r->console_bytes, r->reason[0] ? "; " : "",
		r->reason);
}

static void print_guest_row(const struct guest_report *r, FILE *out)
{
	char fw[40] = "-", verify[64];

	if (r->linux_guest) {
		print_linux_row(r, out);
		return;
	}
	if (r->measured)
		snprintf(fw, sizeof(fw), "%.2f/%.2f",
			 cycles_to_us(r->fw_median, r->tsc_khz),
			 cycles_to_us(r->fw_p99, r->tsc_khz));
	if (r->verified)
		snprintf(verify, sizeof(verify), "%s (%llu pages, %llu bad)",
			 r->verify_mismatches ? "MISMATCH" : "OK",
			 (unsigned long long)r->verify_checked,
			 (unsigned long long)r->verify_mismatches);
	else
		snprintf(verify, sizeof(verify), "not run");
	fprintf(out, "%-12s %7lluM %5u %-9s %8llu %8llu %8llu %8llu %14s  %s\n",
		r->name, (unsigned long long)(r->mem_size >> 20),
		r->nr_vcpus, guest_state_name(r->state),
		(unsigned long long)r->pages_zero,
		(unsigned long long)r->pages_shared,
		(unsigned long long)r->pages_blob,
		(unsigned long long)r->pages_unique, fw, verify);
}

/* Per guest: what the kernel says its RAM costs, and the engine's counts. */
static void print_dedup_row(const struct run_result *res,
			    const struct guest_report *r, FILE *out)
{
	const struct dedup_guest_stats *s = &r->dstats;
	char before[24] = "-", mw[40] = "-";

	if (res->syncs >= 2)
		snprintf(before, sizeof(before), "%.1f", mib(r->anon_before));
	if (r->measured_merged)
		snprintf(mw, sizeof(mw), "%.2f/%.2f",
			 cycles_to_us(r->mw_median, r->tsc_khz),
			 cycles_to_us(r->mw_p99, r->tsc_khz));
	fprintf(out, "%-12s %12s %11.1f %9.1f %8llu %8llu %7llu %8llu %14s\n",
		r->name, before, mib(r->anon_after), mib(s->bytes_saved),
		(unsigned long long)s->pages_merged, (unsigned long long)s->pages_zero,
		(unsigned long long)s->frames_referenced,
		(unsigned long long)s->unmerges, mw);
}

/* Seconds from the first sync until the engine had 90% of its final
 * saving (negative when it cannot be told). */
static double time_to_90(const struct run_result *res)
{
	uint64_t final = res->syncs >= 2 ? res->last.host.saved_bytes :
					   res->final_host.saved_bytes;
	double start = res->syncs ? res->first.t : 0.0;

	if (!final)
		return -1.0;
	for (unsigned i = 0; i < res->nr_samples; i++)
		if (res->sample_t[i] >= start &&
		    res->sample_saved[i] * 10 >= final * 9)
			return res->sample_t[i] - start;
	return -1.0;
}

static void print_host_summary(const struct run_result *res, FILE *out)
{
	const struct dedup_host_stats *h = &res->final_host;
	double cpu = (double)h->cpu_ns / 1e9, t90 = time_to_90(res);

	if (res->syncs >= 2) {
		uint64_t b = 0, a = res->last.host.store_bytes, priv = 0;

		for (unsigned i = 0; i < res->nr; i++) {
			if (!res->reports[i].created || !res->reports[i].dedup)
				continue;
			b += res->reports[i].anon_before;
			priv += res->reports[i].anon_after;
		}
		a += priv;
		fprintf(out, "host (kernel): guest memory %.1f MiB before dedup; after: "
			"%.1f MiB private + %.1f MiB store = %.1f MiB: saved %.1f MiB (%.1f%%)\n",
			mib(b), mib(priv), mib(res->last.host.store_bytes), mib(a),
			b > a ? mib(b - a) : 0.0,
			b ? 100.0 * (double)(b > a ? b - a : 0) / (double)b : 0.0);
	}
	fprintf(out, "host (engine): saved %.1f MiB; store %llu frames, %.1f MiB; "
		"%llu merges, %llu unmerges, %llu passes\n",
		mib(h->saved_bytes), (unsigned long long)h->store_frames,
		mib(h->store_bytes), (unsigned long long)h->merges,
		(unsigned long long)h->unmerges, (unsigned long long)h->passes);
	fprintf(out, "host (engine): scanner CPU %.2f s (%.0f merges per CPU-second); ",
		cpu, cpu > 0 ? (double)h->merges / cpu : 0.0);
	if (t90 >= 0)
		fprintf(out, "90%% of the saving %.1f s after dedup started\n", t90);
	else
		fprintf(out, "time to 90%% not measured\n");
	fprintf(out, "host (engine): VMAs added %llu of a budget of %llu (vm.max_map_count %llu)%s\n",
		(unsigned long long)h->vmas_used, (unsigned long long)h->vma_budget,
		(unsigned long long)h->max_map_count,
		h->budget_exhausted ? ": vma_budget_exhausted, some merges skipped "
				      "(see --max-map-count)" : "");
}

bool runner_print_table(const struct run_result *res, FILE *out)
{
	bool all_ok = true;

	fprintf(out, "\n%-12s %8s %5s %-9s %8s %8s %8s %8s %14s  %s\n",
		"GUEST", "MEM", "VCPUS", "STATE", "ZERO", "SHARED", "FILE",
		"UNIQUE", "1ST-WRITE(us)", "VERIFY");
	for (unsigned i = 0; i < res->nr; i++) {
		const struct guest_report *r = &res->reports[i];

		if (!r->created)
			continue;
		print_guest_row(r, out);
		if (!r->ok) {
			all_ok = false;
			fprintf(out, "  %s: FAILED: %s%s%s\n", r->name,
				r->error[0] ? r->error : "",
				r->error[0] && r->reason[0] ? "; guest " : "",
				r->reason[0] ? r->reason : "");
		}
	}
	fprintf(out, "(ZERO..UNIQUE: data pages by content; 1ST-WRITE: guest-measured "
		"median/p99 cost of a first write to an untouched page)\n");
	if (!res->dedup)
		return all_ok;
	fprintf(out, "\n%-12s %12s %11s %9s %8s %8s %7s %8s %14s\n",
		"DEDUP", "PRIV-BEFORE", "PRIV-NOW", "SAVED", "MERGED", "ZERO",
		"FRAMES", "UNMERGES", "MERGED-1ST-WR");
	for (unsigned i = 0; i < res->nr; i++)
		if (res->reports[i].created && res->reports[i].dedup)
			print_dedup_row(res, &res->reports[i], out);
	fprintf(out, "(MiB; PRIV: the kernel's count of the guest's private pages, "
		"before dedup started and at the last sync; SAVED: the engine's "
		"count, its share of shared frames deducted; MERGED-1ST-WR: "
		"median/p99 us of a first write to a merged page)\n");
	print_host_summary(res, out);
	return all_ok;
}
