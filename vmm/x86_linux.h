/*
 * x86_linux.h - a vCPU as the Linux 64-bit boot protocol wants it: long
 * mode at CPL0, paging on with foldvm's identity map, __BOOT_CS/__BOOT_DS
 * loaded, interrupts off, RSI = the zero page.  The in-kernel local APIC
 * gets LINT0 = ExtINT and LINT1 = NMI (virtual-wire mode, as a BIOS leaves
 * it) so the PIC's interrupts reach a kernel that finds no MP table.
 */
#ifndef FOLDVM_X86_LINUX_H
#define FOLDVM_X86_LINUX_H

#include <stdint.h>
#include "lib/error.h"

struct kvm_cpuid2;

/* The host-supported CPUID with this vCPU's APIC id written in. */
int x86_linux_setup_cpuid(int vcpu_fd, const struct kvm_cpuid2 *supported,
			  unsigned index, struct fv_error *err);

/* Registers, MSRs and LAPIC of the boot vCPU. */
int x86_linux_setup_vcpu(int vcpu_fd, uint64_t entry, uint64_t zero_page,
			 struct fv_error *err);

/* In-kernel interrupt controllers and PIT for a VM (before any vCPU). */
int x86_linux_setup_vm(int vm_fd, struct fv_error *err);

#endif
