/*
 * vcpu.h - one vCPU: its KVM fd, its shared kvm_run page and its thread.
 * The run loop is one switch on the exit reason; each case hands off.
 */
#ifndef FOLDVM_VCPU_H
#define FOLDVM_VCPU_H

#include "vmm/guest.h"

int vcpu_create(struct vcpu *v, struct guest *g, unsigned index,
		struct fv_error *err);
int vcpu_start(struct vcpu *v, struct fv_error *err);

/* Make the vCPU leave KVM_RUN (or not enter it); caller holds the guest
 * lock, which orders this against the vCPU's own check of the state. */
void vcpu_kick_locked(struct vcpu *v);

/* Join (the thread must be leaving) and release. */
void vcpu_destroy(struct vcpu *v);

/* Install the kick signal handler once per process. */
void vcpu_init_signals(void);

#endif
