#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include "vmm/cpuid.h"
#include "vmm/linux_boot.h"
#include "vmm/x86_linux.h"
#include "vmm/x86_seg.h"

#define X86_CR0_PE (1ull << 0)
#define X86_CR0_ET (1ull << 4)
#define X86_CR0_NE (1ull << 5)
#define X86_CR0_PG (1ull << 31)
#define X86_CR4_PAE (1ull << 5)
#define X86_EFER_LME (1ull << 8)
#define X86_EFER_LMA (1ull << 10)
#define X86_RFLAGS_RESERVED (1ull << 1)

#define BOOT_CS 0x10
#define BOOT_DS 0x18

#define MSR_IA32_MISC_ENABLE 0x1a0u
#define MISC_ENABLE_FAST_STRING 1ull
#define MSR_MTRR_DEF_TYPE 0x2ffu
#define MTRR_ENABLE_WB ((1ull << 11) | 6ull) /* MTRRs on, default write-back */

#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_MASK 0x700u
#define APIC_MODE_NMI 0x400u
#define APIC_MODE_EXTINT 0x700u

/* In the 32-bit hole (no RAM: low RAM ends at 3 GiB at most, high RAM
 * starts at 4 GiB), above the LAPIC window, where a PC has its firmware:
 * three pages KVM needs for real-mode emulation on VMX. */
#define KVM_TSS_GPA 0xfffbd000ul

int x86_linux_setup_cpuid(int fd, const struct kvm_cpuid2 *supported,
			  unsigned index, unsigned nr_vcpus, struct fv_error *err)
{
	struct kvm_cpuid2 *c = malloc(sizeof(*c) +
				      CPUID_MAX_ENTRIES * sizeof(c->entries[0]));
	unsigned n;
	int r = 0;

	if (!c)
		return fv_err(err, FV_E_NOMEM, "CPUID table");
	memset(c, 0, sizeof(*c));
	if (cpuid_build(supported->entries, supported->nent, index, nr_vcpus,
			c->entries, CPUID_MAX_ENTRIES, &n, err)) {
		free(c);
		return -1;
	}
	c->nent = n;
	if (ioctl(fd, KVM_SET_CPUID2, c) < 0)
		r = fv_err_errno(err, FV_E_KVM, errno, "KVM_SET_CPUID2");
	free(c);
	return r;
}

static int x86_linux_sregs(int fd, struct fv_error *err)
{
	struct kvm_sregs s;

	if (ioctl(fd, KVM_GET_SREGS, &s) < 0)
		return fv_err_errno(err, FV_E_KVM, errno, "KVM_GET_SREGS");
	s.cs = x86_flat_segment(BOOT_CS, true, 0);
	s.ds = s.es = s.fs = s.gs = s.ss = x86_flat_segment(BOOT_DS, false, 0);
	/* VM entry wants a usable busy TSS; the kernel loads its own. */
	s.tr = (struct kvm_segment){ .limit = 0x67, .type = 11, .present = 1 };
	s.ldt = (struct kvm_segment){ .type = 2, .unusable = 1 };
	s.gdt.base = LINUX_GDT_GPA;
	s.gdt.limit = 4 * 8 - 1;
	s.idt.base = 0;
	s.idt.limit = 0;
	s.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
	s.cr3 = LINUX_PML4_GPA;
	s.cr4 = X86_CR4_PAE;
	s.efer = X86_EFER_LME | X86_EFER_LMA;
	if (ioctl(fd, KVM_SET_SREGS, &s) < 0)
		return fv_err_errno(err, FV_E_KVM, errno, "KVM_SET_SREGS");
	return 0;
}

static int x86_linux_msrs(int fd, struct fv_error *err)
{
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) + 2 * sizeof(struct kvm_msr_entry)];
	} m;

	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 2;
	m.hdr.entries[0].index = MSR_IA32_MISC_ENABLE;
	m.hdr.entries[0].data = MISC_ENABLE_FAST_STRING;
	m.hdr.entries[1].index = MSR_MTRR_DEF_TYPE;
	m.hdr.entries[1].data = MTRR_ENABLE_WB;
	if (ioctl(fd, KVM_SET_MSRS, &m.hdr) != 2)
		return fv_err(err, FV_E_KVM, "KVM_SET_MSRS (MISC_ENABLE, MTRRdefType) failed");
	return 0;
}

static void lapic_set_mode(struct kvm_lapic_state *l, unsigned reg, uint32_t mode)
{
	uint32_t v;

	memcpy(&v, &l->regs[reg], sizeof(v));
	v = (v & ~APIC_MODE_MASK) | mode;
	memcpy(&l->regs[reg], &v, sizeof(v));
}

static int x86_linux_lapic(int fd, struct fv_error *err)
{
	struct kvm_lapic_state l;

	if (ioctl(fd, KVM_GET_LAPIC, &l) < 0)
		return fv_err_errno(err, FV_E_KVM, errno, "KVM_GET_LAPIC");
	lapic_set_mode(&l, APIC_LVT0, APIC_MODE_EXTINT);
	lapic_set_mode(&l, APIC_LVT1, APIC_MODE_NMI);
	if (ioctl(fd, KVM_SET_LAPIC, &l) < 0)
		return fv_err_errno(err, FV_E_KVM, errno, "KVM_SET_LAPIC");
	return 0;
}

int x86_linux_setup_vcpu(int fd, uint64_t entry, uint64_t zero_page,
			 struct fv_error *err)
{
	struct kvm_regs regs = { 0 };

	if (x86_linux_sregs(fd, err) || x86_linux_msrs(fd, err) ||
	    x86_linux_lapic(fd, err))
		return -1;
	regs.rip = entry;
	regs.rsi = zero_page;
	regs.rsp = LINUX_BOOT_STACK_TOP;
	regs.rflags = X86_RFLAGS_RESERVED; /* IF clear */
	if (ioctl(fd, KVM_SET_REGS, &regs) < 0)
		return fv_err_errno(err, FV_E_KVM, errno, "KVM_SET_REGS");
	return 0;
}

int x86_linux_setup_ap(int fd, struct fv_error *err)
{
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_UNINITIALIZED };

	if (ioctl(fd, KVM_SET_MP_STATE, &mp) < 0)
		return fv_err_errno(err, FV_E_KVM, errno,
				    "KVM_SET_MP_STATE (an application processor waits for INIT/SIPI)");
	return 0;
}

#define NR_PIC_GSIS    16u
#define NR_ROUTES      (NR_PIC_GSIS - 1 + ACPI_IOAPIC_PINS - 1)
#define PIT_GSI        0u
#define PIT_IOAPIC_PIN 2u   /* the MADT's override IRQ0 -> GSI 2 */
#define CASCADE_GSI    2u   /* the slave PIC's line: nobody raises it */

/* QEMU's routing for a PC with the in-kernel irqchip: KVM's default has
 * GSI 0 on IOAPIC pin 0, which would contradict the MADT. */
static int x86_linux_routing(int vm_fd, struct fv_error *err)
{
	union {
		struct kvm_irq_routing hdr;
		uint8_t bytes[sizeof(struct kvm_irq_routing) +
			      NR_ROUTES * sizeof(struct kvm_irq_routing_entry)];
	} r;
	struct kvm_irq_routing_entry *e = r.hdr.entries;
	unsigned n = 0;

	memset(&r, 0, sizeof(r));
	for (unsigned gsi = 0; gsi < ACPI_IOAPIC_PINS; gsi++) {
		if (gsi == CASCADE_GSI)
			continue;
		if (gsi < NR_PIC_GSIS)
			e[n++] = (struct kvm_irq_routing_entry){
				.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = { .irqchip = gsi < 8 ? KVM_IRQCHIP_PIC_MASTER :
							    KVM_IRQCHIP_PIC_SLAVE,
					       .pin = gsi % 8 } };
		e[n++] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC,
				       .pin = gsi == PIT_GSI ? PIT_IOAPIC_PIN : gsi } };
	}
	r.hdr.nr = n;
	if (ioctl(vm_fd, KVM_SET_GSI_ROUTING, &r.hdr) < 0)
		return fv_err_errno(err, FV_E_KVM, errno, "KVM_SET_GSI_ROUTING");
	return 0;
}

int x86_linux_setup_vm(int vm_fd, struct fv_error *err)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	/* Only VMX needs it; elsewhere KVM accepts and ignores it. */
	if (ioctl(vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_GPA) < 0 && errno != EINVAL &&
	    errno != ENOTTY)
		return fv_err_errno(err, FV_E_KVM, errno, "KVM_SET_TSS_ADDR");
	if (ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return fv_err_errno(err, FV_E_KVM, errno,
				    "KVM_CREATE_IRQCHIP (in-kernel PIC, IOAPIC, LAPIC)");
	if (x86_linux_routing(vm_fd, err))
		return -1;
	if (ioctl(vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return fv_err_errno(err, FV_E_KVM, errno, "KVM_CREATE_PIT2");
	return 0;
}

/* The tables live in the legacy hole, which the e820 map reserves. */
_Static_assert(KVM_TSS_GPA >= GMEM_HOLE_START && KVM_TSS_GPA + 3 * 4096 <= GMEM_HIGH_START,
	       "KVM's TSS pages outside the 32-bit hole");
_Static_assert(ACPI_AREA_GPA >= LINUX_EBDA_GPA &&
	       ACPI_AREA_GPA + ACPI_AREA_SIZE <= LINUX_HIGH_GPA,
	       "ACPI tables outside the reserved legacy hole");

int x86_linux_write_acpi(struct guest_mem *gm, const struct acpi_config *cfg,
			 struct acpi_tables *out, struct fv_error *err)
{
	uint8_t *buf = malloc(ACPI_AREA_SIZE);
	int r;

	if (!buf)
		return fv_err(err, FV_E_NOMEM, "ACPI tables");
	r = acpi_build(cfg, ACPI_AREA_GPA, buf, ACPI_AREA_SIZE, out, err) ||
	    gmem_write(gm, ACPI_AREA_GPA, buf, out->used, err);
	free(buf);
	return r ? -1 : 0;
}
