/*
 * kvm.h - the host's /dev/kvm handle, shared by every guest of a process.
 */
#ifndef FOLDVM_KVM_H
#define FOLDVM_KVM_H

#include <stdbool.h>
#include <stdint.h>
#include "lib/error.h"

struct kvm_cpuid2;

struct kvm_sys {
	int fd;                     /* /dev/kvm */
	int run_size;               /* KVM_GET_VCPU_MMAP_SIZE */
	int max_vcpus;              /* KVM_CAP_MAX_VCPUS */
	struct kvm_cpuid2 *cpuid;   /* KVM_GET_SUPPORTED_CPUID, owned */
};

/* Open /dev/kvm and check the API version and the capabilities foldvm uses.
 * FV_E_KVM with a message naming what is missing otherwise. */
int kvm_sys_open(struct kvm_sys *kvm, const char *path, struct fv_error *err);
void kvm_sys_close(struct kvm_sys *kvm);

/* New VM fd (KVM_CREATE_VM), close-on-exec. */
int kvm_vm_create(struct kvm_sys *kvm, struct fv_error *err);

/* Does KVM offer capability `cap` (KVM_CAP_*)? */
bool kvm_has_cap(const struct kvm_sys *kvm, int cap);

/* Is /dev/kvm there and usable by us? (for tests that must SKIP without it) */
int kvm_available(const char *path);

#endif
