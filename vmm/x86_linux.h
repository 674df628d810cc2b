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
#include "memory/guest_mem.h"
#include "vmm/acpi.h"

struct kvm_cpuid2;

/* vCPU `index` of nr_vcpus: the CPUID vmm/cpuid.c builds from what KVM
 * supports (hypervisor bit, KVM's leaves, its APIC id, the topology). */
int x86_linux_setup_cpuid(int vcpu_fd, const struct kvm_cpuid2 *supported,
			  unsigned index, unsigned nr_vcpus, struct fv_error *err);

/* Registers, MSRs and LAPIC of the boot vCPU. */
int x86_linux_setup_vcpu(int vcpu_fd, uint64_t entry, uint64_t zero_page,
			 struct fv_error *err);

/* An application processor: no registers of ours; it waits in KVM for
 * the INIT and SIPI its LAPIC gets from the boot vCPU (MP state
 * "uninitialized", which KVM gives it anyway: said here explicitly). */
int x86_linux_setup_ap(int vcpu_fd, struct fv_error *err);

/* In-kernel interrupt controllers and PIT for a VM (before any vCPU), and
 * the GSI routing the MADT describes: ISA IRQ 0 (the PIT) on IOAPIC pin 2,
 * every other GSI on its own pin (0..23) and, below 16, the PIC's. */
int x86_linux_setup_vm(int vm_fd, struct fv_error *err);

/* Build the ACPI tables (vmm/acpi.c) and write them at ACPI_AREA_GPA, in
 * the legacy hole the e820 map reserves; the RSDP is at its start. */
int x86_linux_write_acpi(struct guest_mem *gm, const struct acpi_config *cfg,
			 struct acpi_tables *out, struct fv_error *err);

#endif
