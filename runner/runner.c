/*
 * runner.c - a run's life: the engine and the guests of the command line
 * come up, the main thread samples savings, reaps destroyed guests and
 * takes signals until no guest works any more, and everything goes down
 * in order.  Guests added and destroyed at runtime (vm-create,
 * vm-destroy) go through the same slots.  The driver threads are in
 * steps.c, what front-ends see of a run in query.c, the table in report.c.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include "runner/run_ctx.h"
#include "vmm/vcpu.h"

/* File content kept for guests created at runtime (--persist --files). */
#define RUNNER_PERSIST_BLOB_MAX (256ull << 20)

int runner_load_blob(const struct cli_options *opt, struct blob *blob,
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
	struct run_result *res = ctx->st->res;
	struct dedup_host_stats hs;

	if (!ctx->st->dedup || res->nr_samples == RUN_MAX_SAMPLES)
		return;
	dedup_get_host_stats(ctx->st->dedup, &hs);
	res->sample_t[res->nr_samples] = run_elapsed(ctx);
	res->sample_saved[res->nr_samples++] = hs.saved_bytes;
	res->final_host = hs;
}

/* --max-map-count: raise the host-wide sysctl, loudly, only when asked. */
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
	cfg.in_place = !opt->dedup_no_in_place;
	if (opt->dedup_pressure_set)
		cfg.pressure_pct = opt->dedup_pressure;
	if (dedup_create(engine, &cfg, err))
		return -1;
	/* With sync steps the first one measures the no-dedup baseline, so
	 * the engine waits for it. */
	if (paused)
		dedup_set_paused(*engine, true);
	return 0;
}

struct guest_slot *runner_find_locked(struct run_ctx *ctx, const char *name)
{
	for (unsigned i = 0; i < CLI_MAX_VMS; i++)
		if (ctx->st->slot[i].used && !strcmp(ctx->st->slot[i].spec.cfg.name, name))
			return &ctx->st->slot[i];
	return NULL;
}

/* Everything a guest slot holds goes, in libvirt's order for a domain:
 * the guest ('stopped end' hooks for one that never ran, as libvirt does
 * after a failed start), its resources, the 'release end' hooks, and last
 * the domain lock, so no second foldvm starts it before cleanup is done. */
static void slot_release(struct guest_slot *d)
{
	const struct run_state *st = d->ctx->st;

	if (st->observer && st->observer->guest_removed)
		st->observer->guest_removed(st->observer_data, d->guest,
					    d->observer_data);
	d->observer_data = NULL;
	if (d->prepared && !d->started)
		driver_point_cleanup(d, DOMAIN_STOPPED);
	guest_destroy(d->guest);
	d->guest = NULL;
	if (d->prepared) {
		driver_point_cleanup(d, DOMAIN_RELEASE);
		driver_point_cleanup(d, DOMAIN_UNLOCK);
	}
	d->prepared = false;
}

/* A domain guest, before anything is built: its lock (one domain runs
 * once), then the 'prepare begin' hooks, which may refuse it. */
static int driver_prepare_domain(struct guest_slot *d, struct fv_error *err)
{
	if (driver_point(d, DOMAIN_LOCK, err))
		return -1;
	d->prepared = d->spec.uuid[0] && d->vm_index >= 0;
	if (driver_point(d, DOMAIN_PREPARE, err)) {
		slot_release(d);
		return -1;
	}
	return 0;
}

/* Build a guest into a free slot (ctx->st->lock held); not started yet. */
static struct guest_slot *runner_create_locked(struct run_ctx *ctx,
					       const struct vm_spec *spec,
					       bool initial, struct fv_error *err)
{
	struct guest_slot *d = NULL;

	if (runner_find_locked(ctx, spec->cfg.name)) {
		fv_err(err, FV_E_INVAL, "a guest named '%s' exists already",
		       spec->cfg.name);
		return NULL;
	}
	for (unsigned i = 0; i < CLI_MAX_VMS && !d; i++)
		if (!ctx->st->slot[i].used)
			d = &ctx->st->slot[i];
	if (!d) {
		fv_err(err, FV_E_INVAL, "at most %d guests", CLI_MAX_VMS);
		return NULL;
	}
	if (spec->cfg.dedup && !ctx->st->dedup) {
		fv_err(err, FV_E_STATE, "dedup=on needs foldvm started with --dedup or --persist");
		return NULL;
	}
	memset(d, 0, sizeof(*d));
	d->spec = *spec;
	d->rep = &ctx->st->res->reports[d - ctx->st->slot];
	d->ctx = ctx;
	d->stop = ctx->st->stop;
	d->initial = initial;
	d->vm_index = initial ? (int)(spec - ctx->opt->vms) : -1;
	report_init(d->rep, spec);
	if (driver_prepare_domain(d, err))
		return NULL;
	if (guest_create(&d->guest, ctx->st->kvm, &spec->cfg, ctx->st->blob, ctx->st->dedup,
			 ctx->opt->log_dir, err) ||
	    driver_point(d, DOMAIN_START, err)) {
		slot_release(d);
		return NULL;
	}
	if (ctx->st->observer && ctx->st->observer->guest_added &&
	    ctx->st->observer->guest_added(ctx->st->observer_data, d->guest,
					   spec->cfg.name, spec->uuid,
					   &d->observer_data, err)) {
		slot_release(d);
		return NULL;
	}
	d->rep->created = true;
	d->used = true;
	if ((unsigned)(d - ctx->st->slot) + 1 > ctx->st->res->nr)
		ctx->st->res->nr = (unsigned)(d - ctx->st->slot) + 1;
	return d;
}

/* Start a created guest and its driver (ctx->st->lock held). */
static void runner_start_locked(struct guest_slot *d)
{
	struct fv_error err;

	/* A guest that cannot start still gets its driver: its steps fail at
	 * once, it passes its syncs, and it is reported. */
	if (guest_start(d->guest, &err))
		guest_stop(d->guest, "start failed");
	/* libvirt: a failing 'started begin' hook stops the guest again. */
	else if (driver_point(d, DOMAIN_STARTED, &err))
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
	struct guest_slot *d;
	int ret = -1;

	for (unsigned i = 0; i < spec->nr_steps; i++)
		if (spec->steps[i].kind == STEP_SYNC)
			return fv_err(err, FV_E_INVAL,
				      "guests created at runtime cannot have sync steps");
	pthread_mutex_lock(&ctx->st->lock);
	d = runner_create_locked(ctx, spec, false, err);
	if (d) {
		runner_start_locked(d);
		ret = 0;
	}
	pthread_mutex_unlock(&ctx->st->lock);
	return ret;
}

int runner_destroy_guest(struct run_ctx *ctx, const char *name,
			 struct fv_error *err)
{
	struct guest_slot *d;
	struct guest *g = NULL;

	pthread_mutex_lock(&ctx->st->lock);
	d = runner_find_locked(ctx, name);
	if (d && !d->destroying) {
		d->destroying = true;
		g = d->guest;
	}
	pthread_mutex_unlock(&ctx->st->lock);
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
		struct guest_slot *d = &ctx->st->slot[i];
		bool reap;

		pthread_mutex_lock(&ctx->st->lock);
		/* A pinned slot (runner_guest_get) waits for a later round. */
		reap = d->used && d->destroying && d->finished && !d->releasing &&
		       !d->pins;
		/* From here, control threads that hold the lock (query-vms,
		 * say) leave the guest alone and nobody pins it again: it is
		 * freed without the lock, since destroying it waits for its
		 * vCPUs. */
		d->releasing |= reap;
		pthread_mutex_unlock(&ctx->st->lock);
		if (!reap)
			continue;
		if (d->started)
			pthread_join(d->thread, NULL);
		slot_release(d);
		pthread_mutex_lock(&ctx->st->lock);
		d->used = false;
		d->releasing = false;
		d->rep->created = false;
		pthread_mutex_unlock(&ctx->st->lock);
	}
}

/* Is any guest still working (its driver not finished)? */
static bool runner_busy(struct run_ctx *ctx)
{
	bool busy = false;

	pthread_mutex_lock(&ctx->st->lock);
	for (unsigned i = 0; i < CLI_MAX_VMS; i++)
		busy |= ctx->st->slot[i].used && !ctx->st->slot[i].finished;
	pthread_mutex_unlock(&ctx->st->lock);
	return busy;
}

static void runner_stop_all(struct run_ctx *ctx, const char *why)
{
	pthread_mutex_lock(&ctx->st->lock);
	for (unsigned i = 0; i < CLI_MAX_VMS; i++)
		if (slot_has_guest(&ctx->st->slot[i]))
			guest_stop(ctx->st->slot[i].guest, why);
	pthread_mutex_unlock(&ctx->st->lock);
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
		if (!runner_busy(ctx) && !(ctx->opt->persist && !*ctx->st->stop))
			break;
		runner_sample(ctx);
		/*
		 * The first signal ends wait/sleep steps and lets the guests
		 * finish (final verify included); a second one, or 10 s
		 * later, stops whatever still runs.
		 */
		if (sigtimedwait(&set, NULL, &tick) > 0) {
			if (*ctx->st->stop)
				runner_stop_all(ctx, "interrupted by a second signal");
			*ctx->st->stop = 1;
			*interrupted = true;
		} else if (*ctx->st->stop && ++grace == GRACE_TICKS) {
			runner_stop_all(ctx, "still running 10 s after the signal");
		}
	}
	for (unsigned i = 0; i < CLI_MAX_VMS; i++)
		if (ctx->st->slot[i].used && ctx->st->slot[i].started)
			pthread_join(ctx->st->slot[i].thread, NULL);
	runner_sample(ctx);
}

static int runner_create_initial(struct run_ctx *ctx, struct fv_error *err)
{
	int ret = 0;

	const struct runner_observer *obs = ctx->st->observer;

	pthread_mutex_lock(&ctx->st->lock);
	for (unsigned i = 0; i < ctx->opt->nr_vms && !ret; i++)
		if (!runner_create_locked(ctx, &ctx->opt->vms[i], true, err))
			ret = -1;
	pthread_mutex_unlock(&ctx->st->lock);
	/* A worker's supervisor starts no domain's guests until every
	 * domain's were created (a bad guest fails the whole start). */
	if (!ret && obs && obs->ready && obs->ready(ctx->st->observer_data, err))
		ret = -1;
	pthread_mutex_lock(&ctx->st->lock);
	/* Only the command line's: a guest vm-create added while the ready
	 * hook waited was started by runner_add_guest. */
	for (unsigned i = 0; i < CLI_MAX_VMS && !ret; i++)
		if (ctx->st->slot[i].used && ctx->st->slot[i].initial)
			runner_start_locked(&ctx->st->slot[i]);
	pthread_mutex_unlock(&ctx->st->lock);
	return ret;
}

/* The end of a run: every slot goes, each once nobody holds it (a QMP
 * handler may still be working on a guest outside the lock). */
static void runner_release_all(struct run_ctx *ctx)
{
	struct run_state *st = ctx->st;

	for (unsigned i = 0; i < CLI_MAX_VMS; i++) {
		struct guest_slot *d = &st->slot[i];

		if (!d->used)
			continue;
		pthread_mutex_lock(&st->lock);
		d->releasing = true;    /* no new pin, no new snapshot */
		while (d->pins)
			pthread_cond_wait(&st->unpinned, &st->lock);
		pthread_mutex_unlock(&st->lock);
		slot_release(d);
	}
}

int runner_run(const struct cli_options *opt,
	       const struct runner_observer *observer, struct run_result *res,
	       struct fv_error *err)
{
	static volatile sig_atomic_t stop;
	static struct run_state st;
	static struct run_ctx ctx;
	struct kvm_sys kvm;
	struct blob blob;
	sigset_t set, old;
	bool has_sync;
	int ret = -1;

	memset(res, 0, sizeof(*res));
	memset(&st, 0, sizeof(st));
	memset(&ctx, 0, sizeof(ctx));
	memset(&blob, 0, sizeof(blob));
	stop = 0;
	ctx.opt = opt;
	ctx.st = &st;
	st.stop = &stop;
	st.observer = observer;
	st.res = res;
	st.kvm = &kvm;
	st.blob = opt->blob ? opt->blob : &blob;
	st.nr_initial = opt->nr_vms;
	pthread_mutex_init(&st.lock, NULL);
	pthread_cond_init(&st.unpinned, NULL);
	if (opt->start.tv_sec || opt->start.tv_nsec)
		st.t0 = opt->start;     /* a worker: the supervisor's clock */
	else
		clock_gettime(CLOCK_MONOTONIC, &st.t0);
	pthread_barrier_init(&st.barrier, NULL, opt->nr_vms ? opt->nr_vms : 1);
	/* SIGINT/SIGTERM are collected by sigtimedwait in the main thread. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	vcpu_init_signals();
	if (kvm_sys_open(&kvm, "/dev/kvm", err))
		goto out_sig;
	res->dedup = runner_wants_dedup(opt, &has_sync);
	if (res->dedup && runner_start_dedup(opt, &st.dedup, has_sync, err))
		goto out_kvm;
	if ((!opt->blob && runner_load_blob(opt, &blob, err)) ||
	    (observer && observer->start && observer->start(&ctx, &st.observer_data, err)) ||
	    runner_create_initial(&ctx, err))
		goto out_guests;
	runner_main_loop(&ctx, &res->interrupted);
	ret = 0;
out_guests:
	if (ret) {
		runner_stop_all(&ctx, "start failed");
		for (unsigned i = 0; i < CLI_MAX_VMS; i++)
			if (st.slot[i].used && st.slot[i].started)
				pthread_join(st.slot[i].thread, NULL);
	}
	runner_release_all(&ctx);
	if (observer && observer->stop)
		observer->stop(&ctx, st.observer_data);
	blob_free(&blob);
	dedup_destroy(st.dedup);
out_kvm:
	kvm_sys_close(&kvm);
out_sig:
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_barrier_destroy(&st.barrier);
	pthread_cond_destroy(&st.unpinned);
	pthread_mutex_destroy(&st.lock);
	return ret;
}
