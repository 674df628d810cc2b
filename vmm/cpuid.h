/*
 * cpuid.h - the CPUID a Linux guest's vCPU sees, built from what KVM
 * supports (KVM_GET_SUPPORTED_CPUID) the way a VMM owes it:
 *
 *  - the hypervisor bit (leaf 1 ECX[31]), which KVM leaves clear and
 *    without which Linux never looks at KVM's leaves (no kvm-clock);
 *  - KVM's paravirtual leaves (0x40000000: "KVMKVMKVM", 0x40000001: its
 *    features) as KVM reports them; a table without them is refused;
 *  - each vCPU's APIC id (its index): leaf 1 EBX[31:24], the x2APIC id in
 *    EDX of every subleaf of 0xB and 0x1F, AMD's 0x8000001E EAX;
 *  - one package of nr_vcpus cores with one thread each, said the same way
 *    everywhere a kernel looks: leaf 1 (logical count, HTT), the levels
 *    of 0xB/0x1F (SMT: 1, core: nr_vcpus), leaf 4 (cores per package,
 *    threads sharing each cache), AMD's 0x80000008 ECX and 0x8000001E.
 *
 * Pure functions on entry arrays: the unit tests check them without KVM.
 */
#ifndef FOLDVM_CPUID_H
#define FOLDVM_CPUID_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>
#include "lib/error.h"

/* Entries a built table may have (KVM's own limit is 256). */
#define CPUID_MAX_ENTRIES 256u
/* Largest guest foldvm describes: APIC ids fit leaf 1's 8 bits. */
#define CPUID_MAX_VCPUS 255u

#define CPUID_HYPERVISOR_LEAF 0x40000000u
#define CPUID_ECX_HYPERVISOR  (1u << 31)
#define CPUID_EDX_HTT         (1u << 28)

/*
 * vCPU `index` (0..nr_vcpus-1) of a guest of nr_vcpus: its table from
 * KVM's `sup` (nsup entries) into out (room for max), its count in *nout.
 * Refuses a supported table without KVM's signature leaf, a vCPU count
 * out of 1..CPUID_MAX_VCPUS, an index past it, and a result that would
 * not fit.
 */
int cpuid_build(const struct kvm_cpuid_entry2 *sup, unsigned nsup,
		unsigned index, unsigned nr_vcpus,
		struct kvm_cpuid_entry2 *out, unsigned max, unsigned *nout,
		struct fv_error *err);

/* The entry for (function, index) in a table, or NULL. */
const struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid_entry2 *e,
					  unsigned n, uint32_t function,
					  uint32_t index);

/* Bits needed to number n things (0 for n <= 1): the topology shift. */
unsigned cpuid_order(unsigned n);

#endif
