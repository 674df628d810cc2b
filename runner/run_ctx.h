/*
 * run_ctx.h - the inside of a run: its guest slots and what they share.
 * Private to runner/: front-ends see a run through runner.h only (the
 * snapshot records, guest handles and observer callbacks there).
 *
 * Locking: run_state.lock guards every slot's bookkeeping (used, started,
 * finished, destroying, releasing, pins) and the slots' guests against
 * being freed: a holder of the lock may use d->guest while
 * slot_has_guest(d); a pinned slot (pins > 0) is not released, so a
 * pin holder may use its guest without the lock.
 */
#ifndef FOLDVM_RUNNER_RUN_CTX_H
#define FOLDVM_RUNNER_RUN_CTX_H

#include "runner/runner.h"

/* One guest slot: the guest, its spec, its driver thread, its report. */
struct guest_slot {
	bool used;
	struct guest *guest;
	struct vm_spec spec;
	struct guest_report *rep;
	pthread_t thread;
	bool started;
	bool finished;              /* the driver thread is done with its steps */
	bool destroying;            /* vm-destroy/quit: reap when finished */
	bool releasing;             /* being reaped: its guest is destroyed
				       outside the lock, so nobody may touch
				       `guest` any more (the slot stays
				       `used`, so its name stays taken) */
	unsigned pins;              /* runner_guest_get() holders: the slot
				       is not released while > 0 */
	int cur_step;               /* step being run, -1 when done (atomic) */
	bool initial;               /* from the command line (takes part in syncs) */
	volatile sig_atomic_t *stop;
	struct run_ctx *ctx;
	void *observer_data;        /* the observer's, from guest_added */
	int vm_index;               /* in opt->vms, -1 for vm-create's */
	/* A libvirt domain guest (spec.uuid set; opt->domain_host): */
	bool prepared;              /* its lock is held: 'release end' and the
				       unlock are due */
};

/* May a holder of the lock use d->guest?  Not once the slot is being
 * released: slot_release destroys the guest without the lock. */
static inline bool slot_has_guest(const struct guest_slot *d)
{
	return d->used && !d->releasing && d->guest;
}

/* Everything a run shares: the guests (slots, under `lock`), the engine,
 * the sync barrier of the guests started from the command line. */
struct run_state {
	pthread_mutex_t lock;
	pthread_cond_t unpinned;    /* a slot's pins dropped to 0 */
	pthread_barrier_t barrier;
	unsigned nr_initial;
	struct guest_slot slot[CLI_MAX_VMS];
	struct kvm_sys *kvm;
	const struct blob *blob;
	struct dedup_engine *dedup;
	struct run_result *res;
	struct timespec t0;
	volatile sig_atomic_t *stop;
	const struct runner_observer *observer; /* or NULL */
	void *observer_data;        /* the observer's, from start */
};

/* The slot of a guest by name (lock held), or NULL. */
struct guest_slot *runner_find_locked(struct run_ctx *ctx, const char *name);

/* steps.c: a guest's driver thread, and the libvirt points of its slot. */
void *driver_thread(void *arg);
int driver_point(const struct guest_slot *d, enum domain_point p,
		 struct fv_error *err);
void driver_point_cleanup(const struct guest_slot *d, enum domain_point p);
double run_elapsed(const struct run_ctx *ctx);

#endif
