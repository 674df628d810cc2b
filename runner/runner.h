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
#include <stdio.h>
#include <stdint.h>
#include "devices/virtio_balloon.h"
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
	/* measure-merging: the same as soon as every probe page is merged */
	bool measured_merging;
	uint64_t mg_median, mg_p99, mg_mean;
	uint64_t mg_wait_ns;    /* from the step's start until all were merged */
	uint64_t mg_done_ns;    /* then, on CLOCK_MONOTONIC (for a bench's timeline) */
	int64_t mg_merges;      /* engine merges during the timed writes (-1:
				   not known, KSM) */
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

/*
 * A run as a front-end sees it: its options, read-only for the whole run.
 * Everything else (the guest slots, their lock, the engine) is runner/'s
 * own (runner/run_ctx.h); front-ends reach it through the functions
 * below, which take the lock themselves.
 */
struct run_state;
struct run_ctx {
	const struct cli_options *opt;
	struct run_state *st;       /* private to runner/ */
};

/* A guest slot (opaque): a handle from runner_guest_get(). */
struct guest_slot;

/*
 * What a front-end that serves a run while it lasts (the QMP control
 * sockets, control/commands.c) hooks into it.  The runner calls these and
 * knows nothing of what they do; it keeps the pointers they hand back for
 * them.  Any of them may be NULL.
 *  start:         the engine is up, no guest yet; *data is passed to the
 *                 others; failing fails the run;
 *  stop:          every guest is gone (also after a failed start);
 *  guest_added:   a slot was filled with guest g, not started yet (the
 *                 run's lock held: take no runner_* call); *gdata is
 *                 passed to guest_removed; failing fails the guest;
 *  guest_removed: the slot is about to be freed; no runner_* call holds
 *                 its guest any more (the lock not held);
 *  ready:         every guest of the command line was created and none
 *                 started yet (the lock not held); failing fails the run's
 *                 start as a guest that could not be created does.
 */
struct runner_observer {
	int (*start)(struct run_ctx *ctx, void **data, struct fv_error *err);
	void (*stop)(struct run_ctx *ctx, void *data);
	int (*guest_added)(void *data, struct guest *g, const char *name,
			   const char *uuid, void **gdata, struct fv_error *err);
	void (*guest_removed)(void *data, struct guest *g, void *gdata);
	int (*ready)(void *data, struct fv_error *err);
};

/*
 * One guest as it was when the record was taken: a copy, owned by the
 * caller, valid after the run's lock is dropped and after the guest is
 * gone.  ram_start..ram_end is where its RAM was mapped in this process:
 * numbers only, to ask the kernel about (procstat_range), never to read.
 */
struct runner_guest_info {
	char name[GUEST_NAME_MAX + 1];
	char uuid[SPEC_UUID_LEN + 1];           /* "" = not a libvirt domain */
	char domain[DEDUP_DOMAIN_MAX + 1];      /* trust domain (its name if none) */
	enum guest_state state;
	bool destroying;                        /* vm-destroy/quit under way */
	uint64_t mem_size;
	unsigned nr_vcpus;
	const char *step;                       /* its current step, or "done" */
	bool dedup;                             /* a guest of the engine */
	bool merging;                           /* ... and merging is on */
	struct dedup_guest_stats dstats;        /* the engine's (if dedup) */
	uintptr_t ram_start, ram_end;           /* 0, 0 = no RAM */
	struct guest_report rep;                /* the driver's report so far */
	bool balloon;                           /* it has a virtio-balloon */
	struct virtio_balloon_counters balloon_c;
};

/* Every live guest (not being released), at most max, into out; returns
 * how many.  Taken under the run's lock, which is dropped on return. */
unsigned runner_snapshot_guests(struct run_ctx *ctx,
				struct runner_guest_info *out, unsigned max);

/* Hold guest `name` (not being destroyed) for work outside the run's
 * lock: its slot, and so its guest, is not freed until runner_guest_put().
 * info (may be NULL) gets its record.  NULL with err when there is no such
 * guest or it is being destroyed.  Hold it briefly: vm-destroy waits. */
struct guest_slot *runner_guest_get(struct run_ctx *ctx, const char *name,
				    struct runner_guest_info *info,
				    struct fv_error *err);
void runner_guest_put(struct guest_slot *d);
/* The held guest (valid until runner_guest_put). */
struct guest *runner_guest(struct guest_slot *d);

/* Hold every guest not being destroyed (at most max), as above. */
unsigned runner_guest_get_all(struct run_ctx *ctx, struct guest_slot **out,
			      struct runner_guest_info *info, unsigned max);

/* dedup-set enabled=on/off for a held guest: a guest outside the engine
 * joins it. */
int runner_guest_set_merging(struct guest_slot *d, bool on, struct fv_error *err);

/* Unmerge held guests (dedup_guest_unmerge, at most rate pages/s each)
 * if the memory their copies take at most is there (lib/memroom.h), else
 * FV_E_NOMEM saying what is needed and what is left, and nothing starts.
 * *pages: the pages to copy. */
int runner_guests_unmerge(struct guest_slot **ds, unsigned n, uint64_t rate,
			  uint64_t *pages, struct fv_error *err);

/* The run's dedup engine, or NULL; it lives as long as the run. */
struct dedup_engine *runner_dedup(struct run_ctx *ctx);

/* Create and start a guest at runtime (vm-create): same validation and
 * the same engine as guests from the command line; no sync steps. */
int runner_add_guest(struct run_ctx *ctx, const struct vm_spec *spec,
		     struct fv_error *err);

/* Stop a guest; the main loop frees it once its driver finished
 * (vm-destroy, quit).  Returns at once. */
int runner_destroy_guest(struct run_ctx *ctx, const char *name,
			 struct fv_error *err);

/* Create every guest first (a bad one fails the whole start: exit 2), then
 * run them all; observer (may be NULL) is told of the run and its guests.
 * Returns 0 when the run happened (reports tell how each guest did), -1
 * with err when the guests could not be created. */
int runner_run(const struct cli_options *opt,
	       const struct runner_observer *observer, struct run_result *res,
	       struct fv_error *err);

/* ---- a run split over worker processes (result.c) ---- */

/* Make a result written by another process safe to read: strings
 * terminated, counts and states in range. */
void run_result_check(struct run_result *res);
/* Did every guest that was created end OK? */
bool run_result_all_ok(const struct run_result *res);
/* Its process died: every guest not yet ended OK failed, for `why`. */
void run_result_lost(struct run_result *res, const char *why);
/* Add src's guests, snapshots, samples and engine counts to dst; returns
 * how many guests did not fit (CLI_MAX_VMS). */
unsigned run_result_merge(struct run_result *dst, const struct run_result *src);

/* The file contents (--files) a run's guests take: as much as its
 * biggest command-line guest needs, and with --persist at least 256 MiB
 * for guests created later.  Empty without --files. */
int runner_load_blob(const struct cli_options *opt, struct blob *blob,
		     struct fv_error *err);

/* Print the per-guest table; returns true if every guest is OK. */
bool runner_print_table(const struct run_result *res, FILE *out);

#endif
