#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "vmm/runner.h"
#include "vmm/vcpu.h"

/* No single guest command should take longer on any sane host. */
#define COMMAND_TIMEOUT_MS (10 * 60 * 1000)
#define EXIT_TIMEOUT_MS 10000

struct run_ctx;

struct driver {
	struct guest *guest;
	const struct vm_spec *spec;
	struct guest_report *rep;
	pthread_t thread;
	bool started;
	volatile sig_atomic_t *stop;
	struct run_ctx *ctx;
};

/* What the drivers share: the sync barrier and the snapshots. */
struct run_ctx {
	pthread_barrier_t barrier;
	struct driver *drv;
	unsigned nr;
	struct dedup_engine *dedup;
	struct run_result *res;
	struct timespec t0;
};

static double run_elapsed(const struct run_ctx *ctx)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - ctx->t0.tv_sec) +
	       (double)(now.tv_nsec - ctx->t0.tv_nsec) / 1e9;
}

/* The kernel's count of one guest's RAM (its VMAs), bytes. */
static void guest_mem_usage(struct guest *g, uint64_t *rss, uint64_t *pss)
{
	const uint8_t *start = gmem_page_hva(&g->mem, 0);

	*rss = *pss = 0;
	if (start)
		procstat_range((uintptr_t)start, (uintptr_t)start + g->mem.size,
			       rss, pss, NULL);
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
	for (unsigned i = 0; i < ctx->nr; i++) {
		struct guest_report *r = ctx->drv[i].rep;

		if (!ctx->drv[i].guest)
			continue;
		if (first)
			guest_mem_usage(ctx->drv[i].guest, &r->rss_before, &r->pss_before);
		else
			guest_mem_usage(ctx->drv[i].guest, &r->rss_after, &r->pss_after);
	}
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

	if (run_cmd(d, 0, FV_CMD_CHURN, arg, &r, err))
		return -1;
	d->rep->churned += r.result[0];
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

/* Sleep in short slices so an interrupt or a guest failure ends it. */
static int step_sleep(struct driver *d, uint64_t seconds, bool forever,
		      struct fv_error *err)
{
	uint64_t slices = seconds * 10;

	for (uint64_t i = 0; forever || i < slices; i++) {
		struct timespec ts = { 0, 100 * 1000000L };

		if (*d->stop)
			return forever ? 0 : fv_err(err, FV_E_GUEST, "interrupted");
		if (!guest_state_is_live(guest_get_state(d->guest, NULL, 0)))
			return fv_err(err, FV_E_GUEST, "guest stopped while idle");
		nanosleep(&ts, NULL);
	}
	return 0;
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
	}
	return fv_err(err, FV_E_INVAL, "unknown step");
}

/* Ask every vCPU to leave, then wait for the threads. */
static void driver_shutdown_guest(struct driver *d)
{
	struct testdev *td = &d->guest->testdev;

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
		guest_mem_usage(g, &d->rep->rss_after, &d->rep->pss_after);
}

static void *driver_thread(void *arg)
{
	struct driver *d = arg;
	struct fv_error err = { 0 };
	bool ok = true;

	for (unsigned i = 0; i < d->spec->nr_steps; i++) {
		const struct step *st = &d->spec->steps[i];

		/* After a failure only the syncs are kept: the other guests
		 * wait for this one there. */
		if (!ok && st->kind != STEP_SYNC)
			continue;
		if (run_step(d, st, &err)) {
			snprintf(d->rep->error, sizeof(d->rep->error), "%s: %s",
				 step_name(st->kind), err.msg);
			ok = false;
		}
	}
	driver_final_stats(d);
	driver_shutdown_guest(d);
	d->rep->state = guest_get_state(d->guest, d->rep->reason,
					sizeof(d->rep->reason));
	d->rep->ok = ok && d->rep->state == GUEST_SHUTDOWN;
	return NULL;
}

static int runner_load_blob(const struct cli_options *opt, struct blob *blob,
			    struct fv_error *err)
{
	uint64_t max_pages = 0;

	memset(blob, 0, sizeof(*blob));
	if (!opt->nr_files)
		return 0;
	/* Enough for the biggest guest's share; smaller guests take a prefix. */
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

static void runner_wait_drivers(struct run_ctx *ctx, struct driver *drv, unsigned n,
				volatile sig_atomic_t *stop, bool *interrupted)
{
	sigset_t set;
	struct timespec tick = { 0, 100 * 1000000L };

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	for (;;) {
		bool alive = false;

		for (unsigned i = 0; i < n; i++)
			if (drv[i].started && guest_wait(drv[i].guest, 0) != 0)
				alive = true;
		if (!alive)
			break;
		runner_sample(ctx);
		if (sigtimedwait(&set, NULL, &tick) > 0 && !*stop) {
			*stop = 1;
			*interrupted = true;
			for (unsigned i = 0; i < n; i++)
				guest_stop(drv[i].guest, "interrupted by signal");
		}
	}
	for (unsigned i = 0; i < n; i++)
		if (drv[i].started)
			pthread_join(drv[i].thread, NULL);
	runner_sample(ctx);
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
	bool any = false;

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

static int runner_create_guests(const struct cli_options *opt, struct kvm_sys *kvm,
				const struct blob *blob, struct dedup_engine *dedup,
				struct driver *drv, struct run_result *res,
				struct fv_error *err)
{
	res->nr = opt->nr_vms;
	for (unsigned i = 0; i < opt->nr_vms; i++) {
		report_init(&res->reports[i], &opt->vms[i]);
		if (guest_create(&drv[i].guest, kvm, &opt->vms[i].cfg, blob, dedup,
				 opt->log_dir, err))
			return -1;
		res->reports[i].created = true;
	}
	return 0;
}

static void runner_start_drivers(const struct cli_options *opt, struct run_ctx *ctx,
				 struct driver *drv, volatile sig_atomic_t *stop)
{
	struct fv_error err;

	for (unsigned i = 0; i < opt->nr_vms; i++) {
		struct driver *d = &drv[i];

		d->spec = &opt->vms[i];
		d->rep = &ctx->res->reports[i];
		d->stop = stop;
		d->ctx = ctx;
		if (guest_start(d->guest, &err) ||
		    pthread_create(&d->thread, NULL, driver_thread, d)) {
			/* Its syncs are never reached: the others must not
			 * wait for it forever. */
			guest_stop(d->guest, "start failed");
			continue;
		}
		d->started = true;
	}
}

int runner_run(const struct cli_options *opt, struct run_result *res,
	       struct fv_error *err)
{
	static volatile sig_atomic_t stop;
	struct driver drv[CLI_MAX_VMS];
	struct dedup_engine *dedup = NULL;
	struct run_ctx ctx;
	struct kvm_sys kvm;
	struct blob blob;
	sigset_t set, old;
	bool has_sync;
	int ret = -1;

	memset(res, 0, sizeof(*res));
	memset(drv, 0, sizeof(drv));
	memset(&ctx, 0, sizeof(ctx));
	memset(&blob, 0, sizeof(blob));
	stop = 0;
	ctx.drv = drv;
	ctx.nr = opt->nr_vms;
	ctx.res = res;
	clock_gettime(CLOCK_MONOTONIC, &ctx.t0);
	pthread_barrier_init(&ctx.barrier, NULL, opt->nr_vms);
	/* SIGINT/SIGTERM are collected by sigtimedwait in the main thread. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	vcpu_init_signals();
	if (kvm_sys_open(&kvm, "/dev/kvm", err))
		goto out_sig;
	res->dedup = runner_wants_dedup(opt, &has_sync);
	if (res->dedup && runner_start_dedup(opt, &dedup, has_sync, err))
		goto out_kvm;
	ctx.dedup = dedup;
	if (runner_load_blob(opt, &blob, err) ||
	    runner_create_guests(opt, &kvm, &blob, dedup, drv, res, err))
		goto out_guests;
	runner_start_drivers(opt, &ctx, drv, &stop);
	runner_wait_drivers(&ctx, drv, opt->nr_vms, &stop, &res->interrupted);
	ret = 0;
out_guests:
	for (unsigned i = 0; i < opt->nr_vms; i++)
		guest_destroy(drv[i].guest);
	blob_free(&blob);
	dedup_destroy(dedup);
out_kvm:
	kvm_sys_close(&kvm);
out_sig:
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_barrier_destroy(&ctx.barrier);
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

static void print_guest_row(const struct guest_report *r, FILE *out)
{
	char fw[40] = "-", verify[64];

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
	char before[24] = "-", saved[24] = "-", mw[40] = "-";

	if (res->syncs >= 2) {
		snprintf(before, sizeof(before), "%.1f", mib(r->pss_before));
		snprintf(saved, sizeof(saved), "%.1f",
			 r->pss_before > r->pss_after ?
			 mib(r->pss_before - r->pss_after) : 0.0);
	}
	if (r->measured_merged)
		snprintf(mw, sizeof(mw), "%.2f/%.2f",
			 cycles_to_us(r->mw_median, r->tsc_khz),
			 cycles_to_us(r->mw_p99, r->tsc_khz));
	fprintf(out, "%-12s %10s %9.1f %12s %9.1f %8llu %8llu %7llu %8llu %14s\n",
		r->name, before, mib(r->pss_after), saved, mib(s->bytes_saved),
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
		uint64_t b = res->first.rollup.pss, a = res->last.rollup.pss;

		fprintf(out, "host (kernel): foldvm Pss %.1f MiB before dedup, %.1f MiB after: "
			"saved %.1f MiB (%.1f%%)\n", mib(b), mib(a),
			b > a ? mib(b - a) : 0.0, b ? 100.0 * (double)(b > a ? b - a : 0) / (double)b : 0.0);
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
	fprintf(out, "\n%-12s %10s %9s %12s %9s %8s %8s %7s %8s %14s\n",
		"DEDUP", "PSS-BEFORE", "PSS-NOW", "SAVED(kern)", "SAVED(eng)",
		"MERGED", "ZERO", "FRAMES", "UNMERGES", "MERGED-1ST-WR");
	for (unsigned i = 0; i < res->nr; i++)
		if (res->reports[i].dedup)
			print_dedup_row(res, &res->reports[i], out);
	fprintf(out, "(MiB; PSS: the kernel's proportional count of the guest's RAM "
		"mappings, before dedup started and at the last sync; SAVED(eng): the "
		"engine's count; MERGED-1ST-WR: median/p99 us of a first write to a "
		"merged page)\n");
	print_host_summary(res, out);
	return all_ok;
}
