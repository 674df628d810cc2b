/*
 * runner.h - run a set of test guests through their steps and report.
 *
 * Used by `foldvm run` and `foldvm demo`.  Every guest gets a driver thread
 * that walks its step list through the test device; the main thread only
 * waits for the drivers and for SIGINT/SIGTERM.
 */
#ifndef FOLDVM_RUNNER_H
#define FOLDVM_RUNNER_H

#include <stdbool.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include "vmm/blob.h"
#include "runner/spec.h"
#include "lib/procstat.h"

struct guest_report {
	char name[GUEST_NAME_MAX + 1];
	uint64_t mem_size;
	unsigned nr_vcpus;
	enum guest_state state;
	char reason[512];
	bool created;
	bool linux_guest;       /* boots a kernel, not the test payload */
	uint64_t console_bytes; /* bytes it wrote to its serial port */
	/* fill */
	bool filled;
	uint64_t pages_zero, pages_shared, pages_blob, pages_unique;
	/* verify (last run) */
	bool verified;
	uint64_t verify_checked, verify_mismatches, verify_first_bad;
	/* churn / race */
	uint64_t churned, race_iterations;
	uint64_t churn_ns;      /* host-measured time of the churn steps */
	/* first write to an untouched page, cycles */
	bool measured;
	uint64_t fw_median, fw_p99, fw_mean, tsc_khz;
	/* first write to the same pages once merged (measure-merged) */
	bool measured_merged;
	uint64_t mw_median, mw_p99, mw_mean;
	/* dedup: the engine's counters and the kernel's view of its RAM */
	bool dedup;
	struct dedup_guest_stats dstats;
	/* the kernel's "Anonymous" bytes of its RAM: its private pages */
	uint64_t anon_before;             /* at the first sync (if any) */
	uint64_t anon_after;              /* at the last sync, or the end */
	/* the driver's own verdict */
	bool ok;
	char error[600];        /* step name + an fv_error message */
};

/* The whole process as the kernel sees it, at a sync step. */
struct mem_snapshot {
	bool taken;
	double t;                        /* seconds since the run started */
	struct procstat_rollup rollup;   /* /proc/self/smaps_rollup */
	struct dedup_host_stats host;    /* engine's view (if dedup) */
};

#define RUN_MAX_SAMPLES 4096

struct run_result {
	unsigned nr;
	struct guest_report reports[CLI_MAX_VMS];
	bool interrupted;
	bool dedup;
	struct mem_snapshot first, last; /* first and last sync */
	unsigned syncs;
	/* engine savings over time, sampled every 100 ms */
	unsigned nr_samples;
	double sample_t[RUN_MAX_SAMPLES];
	uint64_t sample_saved[RUN_MAX_SAMPLES];
	struct dedup_host_stats final_host; /* engine, just before guests exit */
};

struct run_ctx;
struct driver;
struct control;

/*
 * What a front-end that serves a run while it lasts (the QMP control
 * sockets, control/commands.c) hooks into it.  The runner calls these and
 * knows nothing of what they do; the front-end keeps its state in
 * run_ctx.control and driver.control.  Any of them may be NULL.
 *  start:         the engine is up, no guest yet; failing fails the run;
 *  stop:          every guest is gone (also after a failed start);
 *  guest_added:   a slot was filled (ctx->lock held); failing fails the
 *                 guest;
 *  guest_removed: a slot is about to be freed (ctx->lock not held).
 */
struct runner_observer {
	int (*start)(struct run_ctx *ctx, struct fv_error *err);
	void (*stop)(struct run_ctx *ctx);
	int (*guest_added)(struct run_ctx *ctx, struct driver *d,
			   struct fv_error *err);
	void (*guest_removed)(struct run_ctx *ctx, struct driver *d);
};

/* One guest slot: the guest, its spec, its driver thread, its report. */
struct driver {
	bool used;
	struct guest *guest;
	struct vm_spec spec;
	struct guest_report *rep;
	pthread_t thread;
	bool started;
	bool finished;              /* the driver thread is done with its steps */
	bool destroying;            /* vm-destroy/quit: reap when finished */
	bool releasing;             /* being reaped: its guest is destroyed
				       outside ctx->lock, so nobody may
				       touch `guest` any more (the slot stays
				       `used`, so its name stays taken) */
	int cur_step;               /* step being run, -1 when done (atomic) */
	bool initial;               /* from the command line (takes part in syncs) */
	volatile sig_atomic_t *stop;
	struct run_ctx *ctx;
	void *control;              /* the observer's: the guest's control
				       endpoint, if any */
	/* A libvirt domain guest (spec.domain_xml set): */
	int lock_fd;                /* its domain lock, -1 = none */
	bool prepared;              /* 'prepare begin' ran: 'release end' is due */
};

/* May a holder of ctx->lock use d->guest?  Not once the slot is being
 * released: driver_release destroys the guest without the lock. */
static inline bool driver_has_guest(const struct driver *d)
{
	return d->used && !d->releasing && d->guest;
}

/* Everything a run shares: the guests (slots, under `lock`), the engine,
 * the sync barrier of the guests started from the command line. */
struct run_ctx {
	pthread_mutex_t lock;
	pthread_barrier_t barrier;
	unsigned nr_initial;
	struct driver drv[CLI_MAX_VMS];
	struct kvm_sys *kvm;
	struct blob *blob;
	const struct cli_options *opt;
	struct dedup_engine *dedup;
	struct run_result *res;
	struct timespec t0;
	volatile sig_atomic_t *stop;
	const struct runner_observer *observer; /* or NULL */
	struct control *control;    /* the observer's: the control sockets,
				       or NULL */
};

/* Create and start a guest at runtime (vm-create): same validation and
 * the same engine as guests from the command line; no sync steps. */
int runner_add_guest(struct run_ctx *ctx, const struct vm_spec *spec,
		     struct fv_error *err);

/* Stop a guest; the main loop frees it once its driver finished
 * (vm-destroy, quit).  Returns at once. */
int runner_destroy_guest(struct run_ctx *ctx, const char *name,
			 struct fv_error *err);

/* The slot of a guest by name (ctx->lock held), or NULL. */
struct driver *runner_find_locked(struct run_ctx *ctx, const char *name);

/* Create every guest first (a bad one fails the whole start: exit 2), then
 * run them all; observer (may be NULL) is told of the run and its guests.
 * Returns 0 when the run happened (reports tell how each guest did), -1
 * with err when the guests could not be created. */
int runner_run(const struct cli_options *opt,
	       const struct runner_observer *observer, struct run_result *res,
	       struct fv_error *err);

/* Print the per-guest table; returns true if every guest is OK. */
bool runner_print_table(const struct run_result *res, FILE *out);

#endif
