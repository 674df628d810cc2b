/*
 * steps.c - a guest's driver thread: it walks the guest's step list
 * through the test device (fill, verify, churn, race, measure, sleep,
 * settle, fault) and the syncs shared by the command-line guests, then
 * stops the guest and writes its report.  Also the points of a domain
 * guest's life it reports to its domain host (runner/spec.h).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "runner/run_ctx.h"
#include "lib/timeutil.h"

/* No single guest command should take longer on any sane host. */
#define COMMAND_TIMEOUT_MS (10 * 60 * 1000)
#define EXIT_TIMEOUT_MS 10000

double run_elapsed(const struct run_ctx *ctx)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - ctx->st->t0.tv_sec) +
	       (double)(now.tv_nsec - ctx->st->t0.tv_nsec) / 1e9;
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
	struct run_result *res = ctx->st->res;
	bool first = res->syncs == 0;
	struct mem_snapshot *snap = first ? &res->first : &res->last;

	snap->taken = true;
	snap->t = run_elapsed(ctx);
	procstat_rollup(0, &snap->rollup, NULL);
	if (ctx->st->dedup)
		dedup_get_host_stats(ctx->st->dedup, &snap->host);
	pthread_mutex_lock(&ctx->st->lock);
	for (unsigned i = 0; i < CLI_MAX_VMS; i++) {
		struct guest_report *r = ctx->st->slot[i].rep;

		if (!slot_has_guest(&ctx->st->slot[i]))
			continue;
		if (first)
			r->anon_before = guest_private_bytes(ctx->st->slot[i].guest);
		else
			r->anon_after = guest_private_bytes(ctx->st->slot[i].guest);
	}
	pthread_mutex_unlock(&ctx->st->lock);
	if (first)
		res->last = res->first;
	res->syncs++;
	/* The baseline is taken: from here on the engine may merge. */
	if (ctx->st->dedup)
		dedup_set_paused(ctx->st->dedup, false);
}

static int step_sync(struct guest_slot *d)
{
	if (pthread_barrier_wait(&d->ctx->st->barrier) == PTHREAD_BARRIER_SERIAL_THREAD)
		run_snapshot(d->ctx);
	/* Nobody leaves before the snapshot is complete. */
	pthread_barrier_wait(&d->ctx->st->barrier);
	return 0;
}

static int run_cmd(struct guest_slot *d, unsigned vcpu, uint32_t cmd,
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

static int step_fill(struct guest_slot *d, struct fv_error *err)
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

static int step_verify(struct guest_slot *d, struct fv_error *err)
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

static int step_churn(struct guest_slot *d, uint64_t pages, struct fv_error *err)
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
static int step_race(struct guest_slot *d, uint64_t iters, struct fv_error *err)
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
static int step_measure(struct guest_slot *d, bool merged, struct fv_error *err)
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

/* The guest's place in the engine, or NULL: `dedup-set enabled` may
 * attach it at any time (under the run lock, runner_guest_set_merging). */
static struct dedup_guest *engine_entry(struct guest_slot *d)
{
	struct dedup_guest *dg;

	pthread_mutex_lock(&d->ctx->st->lock);
	dg = d->guest->dedup_guest;
	pthread_mutex_unlock(&d->ctx->st->lock);
	return dg;
}

/* Is page gfn of this guest merged, by whoever merges its memory: the
 * engine's per-page state, or the kernel's KSM flag of its frame (read
 * through pm, open for KSM guests)?  1 yes, 0 no (also while the guest is
 * not attached to the engine yet), -1 when nobody can tell (err set). */
static int page_merged(struct guest_slot *d, const struct procstat_pagemap *pm,
		       uint64_t gfn, struct fv_error *err)
{
	struct dedup_guest *dg = engine_entry(d);
	struct guest *g = d->guest;
	bool ksm;

	if (dg)
		return dedup_page_state(g->dedup, dg, gfn) == DEDUP_PAGE_MERGED;
	if (pm->fd < 0)
		return 0;
	if (procstat_page_ksm(pm, gmem_page_hva(&g->mem, gfn), &ksm, err))
		return -1;
	return ksm;
}

static uint64_t engine_merges(struct dedup_engine *e)
{
	struct dedup_host_stats hs;

	dedup_get_host_stats(e, &hs);
	return hs.merges;
}

#define MERGING_POLL_NS (10 * 1000000L)           /* 10 ms */
#define MERGING_TIMEOUT_NS (600ull * 1000000000ull) /* 10 minutes */

/* Wait until every probe page of the guest is merged: 0, or -1 (err set)
 * on an interrupt, a guest that died, or after 10 minutes. */
static int wait_probes_merged(struct guest_slot *d, const struct procstat_pagemap *pm,
			      struct fv_error *err)
{
	const struct fv_guest_config *l = &d->guest->layout;
	uint64_t gfn0, next = 0;
	uint64_t t0 = fv_mono_ns();

	/* The engine counts RAM pages: the probe area's first one. */
	if (gmem_gpa_to_page(&d->guest->mem, l->probe_gpa, &gfn0, err))
		return -1;

	for (;;) {
		struct timespec ts = { 0, MERGING_POLL_NS };
		enum guest_state st;
		bool confirmed;
		int m = 1;

		/* new pages first; once all were seen merged, check them all
		 * again (a page only unmerges when the guest writes it, and
		 * this guest waits, but the check is cheap) */
		while (next < l->probe_pages &&
		       (m = page_merged(d, pm, gfn0 + next, err)) == 1)
			next++;
		if (m < 0)
			return -1;
		if (next == l->probe_pages) {
			confirmed = true;
			for (uint64_t i = 0; confirmed && i < l->probe_pages; i++) {
				m = page_merged(d, pm, gfn0 + i, err);
				if (m < 0)
					return -1;
				if (!m) {
					confirmed = false;
					next = i;
				}
			}
			if (confirmed)
				return 0;
		}
		if (*d->stop)
			return fv_err(err, FV_E_STATE,
				      "measure-merging interrupted: %llu of %llu probe pages merged",
				      (unsigned long long)next,
				      (unsigned long long)l->probe_pages);
		if (fv_mono_ns() - t0 > MERGING_TIMEOUT_NS)
			return fv_err(err, FV_E_STATE,
				      "measure-merging: %llu of %llu probe pages merged after 10 minutes",
				      (unsigned long long)next,
				      (unsigned long long)l->probe_pages);
		st = guest_get_state(d->guest, NULL, 0);
		if (!guest_state_is_live(st))
			return fv_err(err, FV_E_GUEST, "guest %s while waiting for merges",
				      guest_state_name(st));
		nanosleep(&ts, NULL);
	}
}

/*
 * measure-merging: the first-write cost of merged pages while merging
 * goes on.  After `measure` the probe pages of every guest hold one
 * content, so the engine (or KSM) merges them wherever its scan reaches
 * them, usually long before it is done with the rest of memory.  The step
 * polls, every 10 ms, until every probe page of this guest is merged, then
 * has the guest time its first writes to them at once, as measure-merged
 * does.  It reports how long it waited and how many merges the engine
 * made during the timed writes: more than 0 means the scanner was busy
 * merging (other memory) while the guest wrote.  A guest that merging
 * has not reached yet (created with dedup=off, before `dedup-set
 * enabled`; KSM not running yet) just waits longer.
 */
static int step_measure_merging(struct guest_slot *d, struct fv_error *err)
{
	const struct fv_guest_config *l = &d->guest->layout;
	uint64_t arg[8] = { l->probe_gpa, l->probe_pages, FV_PAGE_SIZE, 1 };
	struct dedup_engine *e;
	struct procstat_pagemap pm = { .fd = -1 };
	struct guest_report *rep = d->rep;
	uint64_t t0 = fv_mono_ns(), merges = 0;
	struct testdev_result r;
	int rc;

	if (!rep->measured)
		return fv_err(err, FV_E_STATE,
			      "measure-merging needs a measure step before it (the probe pages are still zero)");
	if (d->ctx->opt->ksm) {
		if (procstat_pagemap_open(&pm, err))
			return -1;
	} else if (!d->ctx->st->dedup) {
		return fv_err(err, FV_E_STATE,
			      "nothing merges this guest's memory (no dedup engine, no --ksm)");
	}
	rc = wait_probes_merged(d, &pm, err);
	procstat_pagemap_close(&pm);
	if (rc)
		return -1;
	e = engine_entry(d) ? d->guest->dedup : NULL;
	rep->mg_done_ns = fv_mono_ns();
	rep->mg_wait_ns = rep->mg_done_ns - t0;
	if (e)
		merges = engine_merges(e);
	if (run_cmd(d, 0, FV_CMD_MEASURE_WRITE, arg, &r, err))
		return -1;
	rep->mg_merges = e ? (int64_t)(engine_merges(e) - merges) : -1;
	rep->tsc_khz = l->tsc_khz;
	rep->measured_merging = true;
	rep->mg_median = r.result[0];
	rep->mg_p99 = r.result[1];
	rep->mg_mean = r.result[2];
	return 0;
}

/* One 0.1 s slice of an idle step: 1 to go on, 0 to end the step, -1 when
 * the guest failed. */
static int idle_slice(struct guest_slot *d, struct fv_error *err)
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
static int step_sleep(struct guest_slot *d, uint64_t seconds, bool forever,
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
static int step_settle(struct guest_slot *d, uint64_t passes, struct fv_error *err)
{
	struct dedup_engine *e = d->ctx->st->dedup;
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

static int step_fault(struct guest_slot *d, struct fv_error *err)
{
	struct testdev_result r;

	/* The guest is expected to die here; run_cmd reports how. */
	if (run_cmd(d, 0, FV_CMD_FAULT, NULL, &r, err))
		return -1;
	return fv_err(err, FV_E_GUEST, "guest survived a fault it should not have");
}

/* The guest asks its worker for a call the sandbox must stop (the test
 * build's device only; docs/sandbox.md).  An execve the filter stops
 * ends the whole worker, so only a refused open comes back here. */
static int step_sandbox_probe(struct guest_slot *d, uint64_t probe,
			      struct fv_error *err)
{
	uint64_t arg[8] = { probe };
	struct testdev_result r;
	int64_t answer;

	if (run_cmd(d, 0, FV_CMD_SANDBOX_PROBE, arg, &r, err))
		return -1;
	answer = (int64_t)r.result[1];
	if (answer == -EACCES || answer == -EPERM) {
		fprintf(stderr, "foldvm: guest %s: sandbox probe %llu refused (%s), as it should be\n",
			d->spec.cfg.name, (unsigned long long)probe, strerror((int)-answer));
		return 0;
	}
	if (answer < 0)
		return fv_err(err, FV_E_STATE, "sandbox probe %llu failed otherwise: %s",
			      (unsigned long long)probe, strerror((int)-answer));
	return fv_err(err, FV_E_STATE, "sandbox probe %llu was allowed: the worker is not sandboxed",
		      (unsigned long long)probe);
}

/* echo:N - the guest reads N lines from its serial console and writes
 * each back uppercased; a byte it lost (LSR.OE) fails the step. */
static int step_echo(struct guest_slot *d, uint64_t lines, struct fv_error *err)
{
	uint64_t arg[8] = { lines };
	struct testdev_result r;

	if (run_cmd(d, 0, FV_CMD_ECHO, arg, &r, err))
		return -1;
	if (r.result[0] != lines)
		return fv_err(err, FV_E_GUEST, "echo: the guest read %llu lines of %llu",
			      (unsigned long long)r.result[0], (unsigned long long)lines);
	if (r.result[2])
		return fv_err(err, FV_E_GUEST, "echo: the guest's UART overran %llu times (input lost)",
			      (unsigned long long)r.result[2]);
	return 0;
}

static int run_step(struct guest_slot *d, const struct step *st, struct fv_error *err)
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
	case STEP_SANDBOX_PROBE: return step_sandbox_probe(d, st->arg, err);
	case STEP_ECHO: return step_echo(d, st->arg, err);
	case STEP_SYNC: return step_sync(d);
	case STEP_SETTLE: return step_settle(d, st->arg, err);
	case STEP_MEASURE_MERGING: return step_measure_merging(d, err);
	}
	return fv_err(err, FV_E_INVAL, "unknown step");
}

/* Tell whoever holds a domain guest's lock and runs its libvirt hooks
 * (opt->domain_host) that it reached point p; other guests have none. */
int driver_point(const struct guest_slot *d, enum domain_point p,
		 struct fv_error *err)
{
	const struct domain_host *h = d->ctx->opt->domain_host;

	if (!d->spec.uuid[0] || d->vm_index < 0)
		return 0;
	if (!h)
		return fv_err(err, FV_E_STATE,
			      "a domain guest needs a supervisor for its lock and hooks");
	return h->point(h, (unsigned)d->vm_index, p, err);
}

/* The points that cannot refuse (STOPPED, RELEASE, UNLOCK): a failure to
 * report one is worth a line on stderr, nothing more. */
void driver_point_cleanup(const struct guest_slot *d, enum domain_point p)
{
	struct fv_error err = { 0 };

	if (driver_point(d, p, &err))
		fprintf(stderr, "foldvm: guest %s: %s (ignored)\n",
			d->spec.cfg.name, err.msg);
}

/* Ask every vCPU to leave, then wait for the threads.  A kernel has no
 * such request (no ACPI): foldvm stops it, as a power switch would. */
static void driver_shutdown_guest(struct guest_slot *d)
{
	struct testdev *td = &d->guest->testdev;

	/* A kernel's steps end early when foldvm is interrupted (a signal,
	 * Ctrl-A x on its console): say which. */
	if (d->rep->linux_guest)
		guest_stop(d->guest, d->ctx->st->stop && *d->ctx->st->stop ?
			   "stopped by foldvm: it was interrupted (a signal or Ctrl-A x)" :
			   "stopped by foldvm: its steps are done");
	else
		for (unsigned i = 0; i < d->guest->cfg.nr_vcpus; i++)
			testdev_submit(td, i, FV_CMD_EXIT, NULL, NULL);
	if (guest_wait(d->guest, EXIT_TIMEOUT_MS)) {
		guest_stop(d->guest, "did not exit when asked");
		guest_wait(d->guest, -1);
	}
}

/* The engine's and the kernel's numbers for this guest, while it lives. */
static void driver_final_stats(struct guest_slot *d)
{
	struct guest *g = d->guest;

	if (g->dedup_guest) {
		d->rep->dedup = true;
		dedup_get_guest_stats(g->dedup, g->dedup_guest, &d->rep->dstats);
	}
	if (d->ctx->st->res->syncs < 2)
		d->rep->anon_after = guest_private_bytes(g);
	d->rep->console_bytes = __atomic_load_n(&g->serial.tx_bytes, __ATOMIC_RELAXED);
}

void *driver_thread(void *arg)
{
	struct guest_slot *d = arg;
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
	driver_point_cleanup(d, DOMAIN_STOPPED);
	d->rep->state = guest_get_state(d->guest, d->rep->reason,
					sizeof(d->rep->reason));
	/* A test guest must exit when told; a kernel must not have failed. */
	d->rep->ok = ok && (d->rep->linux_guest ? d->rep->state != GUEST_FAILED :
			    d->rep->state == GUEST_SHUTDOWN);
	pthread_mutex_lock(&d->ctx->st->lock);
	d->finished = true;
	pthread_mutex_unlock(&d->ctx->st->lock);
	return NULL;
}
