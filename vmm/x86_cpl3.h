/*
 * x86_cpl3.h - start a vCPU directly in 64-bit mode at CPL3.
 *
 * On this platform (nested PVM, see docs/platform.md) guest code at CPL0 is
 * emulated instruction by instruction while CPL3 code runs natively, so test
 * payloads run in user mode from their first instruction: user segments,
 * the U bit at every page-table level, RFLAGS.IOPL=3 so port I/O still
 * reaches the host.  There is no IDT: a guest exception triple-faults.
 */
#ifndef FOLDVM_X86_CPL3_H
#define FOLDVM_X86_CPL3_H

#include <stdint.h>
#include "lib/error.h"
#include "memory/guest_mem.h"

struct kvm_cpuid2;

/* Write the GDT, TSS and identity-mapping page tables into guest memory;
 * mmio_gpa (0: none) is a 2 MiB area of device windows above RAM, mapped
 * too, uncached. */
int x86_cpl3_setup_memory(struct guest_mem *gm, uint64_t mmio_gpa,
			  struct fv_error *err);

/* Load CPUID, MSRs, segment/control registers and GPRs of one vCPU:
 * RIP = entry, RSP = stack_top, RDI = index, RSI = arg. */
int x86_cpl3_setup_vcpu(int vcpu_fd, const struct kvm_cpuid2 *cpuid,
			unsigned index, uint64_t entry, uint64_t stack_top,
			uint64_t arg, struct fv_error *err);

#endif
