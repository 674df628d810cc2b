#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include "vmm/x86_cpl3.h"
#include "vmm/x86_seg.h"
#include "guest-tools/testdev_abi.h"

#define X86_CR0_PE (1ull << 0)
#define X86_CR0_MP (1ull << 1)
#define X86_CR0_ET (1ull << 4)
#define X86_CR0_NE (1ull << 5)
#define X86_CR0_WP (1ull << 16)
#define X86_CR0_PG (1ull << 31)
#define X86_CR4_PAE (1ull << 5)
#define X86_CR4_OSFXSR (1ull << 9)
#define X86_CR4_OSXMMEXCPT (1ull << 10)
#define X86_EFER_SCE (1ull << 0)
#define X86_EFER_LME (1ull << 8)
#define X86_EFER_LMA (1ull << 10)
#define X86_RFLAGS_RESERVED (1ull << 1)
#define X86_RFLAGS_IOPL3 (3ull << 12)
#define MSR_STAR 0xc0000081u

#define PTE_P (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_US (1ull << 2)
#define PTE_PWT (1ull << 3)
#define PTE_PCD (1ull << 4)
#define PTE_PS (1ull << 7)
#define PAGE_2M (2ull << 20)
#define PAGE_1G (1ull << 30)

/* 64-bit TSS (0x68 bytes) followed by an I/O permission bitmap that
 * allows every port, plus the all-ones byte the CPU reads past its end. */
#define TSS_IOMAP_OFFSET 0x68u
#define TSS_IOMAP_BYTES (65536u / 8)
#define TSS_LIMIT (TSS_IOMAP_OFFSET + TSS_IOMAP_BYTES)
#define GDT_ENTRIES 10u /* null, k32, k64, kdata, u32, udata, u64, -, tss(2) */

/* Flat 4 GiB segment descriptors; the L bit (bit 53) marks 64-bit code. */
static const uint64_t gdt_flat[7] = {
	0,
	0x00cf9b000000ffffull, /* 0x08 kernel code, 32-bit */
	0x00af9b000000ffffull, /* 0x10 kernel code, 64-bit */
	0x00cf93000000ffffull, /* 0x18 kernel data */
	0x00cffb000000ffffull, /* 0x20 user code, 32-bit (SYSRET base) */
	0x00cff3000000ffffull, /* 0x28 user data, DPL 3 */
	0x00affb000000ffffull, /* 0x30 user code, 64-bit, DPL 3 */
};

static int x86_write_gdt(struct guest_mem *gm, struct fv_error *err)
{
	uint64_t gdt[GDT_ENTRIES] = { 0 };
	uint64_t base = FV_TSS_GPA;

	memcpy(gdt, gdt_flat, sizeof(gdt_flat));
	/* 16-byte available 64-bit TSS descriptor (type 9) at 0x40. */
	gdt[FV_SEL_TSS / 8] = TSS_LIMIT | ((base & 0xffffff) << 16) |
			      (0x89ull << 40) | (((base >> 24) & 0xff) << 56);
	gdt[FV_SEL_TSS / 8 + 1] = base >> 32;
	uint16_t iomap = TSS_IOMAP_OFFSET;
	uint8_t end = 0xff;

	if (gmem_write(gm, FV_GDT_GPA, gdt, sizeof(gdt), err))
		return -1;
	/*
	 * IOPL=3 alone does not let CPL3 code reach ports on PVM, which
	 * checks the TSS I/O permission bitmap; an all-zero bitmap allows
	 * every port.  Nothing ever switches stacks (no IDT), so the rest of
	 * the TSS stays zero.
	 */
	if (gmem_fill(gm, FV_TSS_GPA, 0, TSS_LIMIT, err) ||
	    gmem_write(gm, FV_TSS_GPA + 0x66, &iomap, sizeof(iomap), err))
		return -1;
	return gmem_write(gm, FV_TSS_GPA + TSS_LIMIT, &end, 1, err);
}

/*
 * Identity-map all guest RAM with 2 MiB pages.  Every level carries the U
 * bit: CPL3 code must reach everything, page tables and mailboxes included.
 * Layout: PML4 at FV_PT_GPA, PDPT next, then one PD page per GiB.
 */
static int x86_write_page_tables(struct guest_mem *gm, uint64_t mmio_gpa,
				 struct fv_error *err)
{
	const uint64_t flags = PTE_P | PTE_RW | PTE_US;
	uint64_t pml4 = FV_PT_GPA, pdpt = FV_PT_GPA + FV_PAGE_SIZE;
	uint64_t pd0 = pdpt + FV_PAGE_SIZE;
	uint64_t gigs = (gm->size + PAGE_1G - 1) / PAGE_1G;
	uint64_t entry;

	/* The device windows' GiB needs its PD too. */
	if (mmio_gpa && mmio_gpa / PAGE_1G + 1 > gigs)
		gigs = mmio_gpa / PAGE_1G + 1;

	if (pd0 + gigs * FV_PAGE_SIZE > FV_PT_END)
		return fv_err(err, FV_E_RANGE,
			      "page tables for %llu GiB do not fit below 0x%llx",
			      (unsigned long long)gigs,
			      (unsigned long long)FV_PT_END);
	if (gmem_fill(gm, FV_PT_GPA, 0, pd0 + gigs * FV_PAGE_SIZE - FV_PT_GPA,
		      err))
		return -1;
	entry = pdpt | flags;
	if (gmem_write(gm, pml4, &entry, sizeof(entry), err))
		return -1;
	for (uint64_t g = 0; g < gigs; g++) {
		entry = (pd0 + g * FV_PAGE_SIZE) | flags;
		if (gmem_write(gm, pdpt + g * 8, &entry, sizeof(entry), err))
			return -1;
	}
	for (uint64_t addr = 0; addr < gm->size; addr += PAGE_2M) {
		entry = addr | flags | PTE_PS;
		if (gmem_write(gm, pd0 + addr / PAGE_2M * 8, &entry,
			       sizeof(entry), err))
			return -1;
	}
	/* Device registers: uncached (PCD, PWT), as firmware maps MMIO. */
	if (mmio_gpa) {
		entry = mmio_gpa | flags | PTE_PS | PTE_PWT | PTE_PCD;
		if (gmem_write(gm, pd0 + mmio_gpa / PAGE_2M * 8, &entry,
			       sizeof(entry), err))
			return -1;
	}
	return 0;
}

int x86_cpl3_setup_memory(struct guest_mem *gm, uint64_t mmio_gpa,
			  struct fv_error *err)
{
	if (gm->size % PAGE_2M)
		return fv_err(err, FV_E_INVAL,
			      "test guests need memory in 2 MiB multiples (%llu KiB given)",
			      (unsigned long long)(gm->size >> 10));
	if (mmio_gpa && (mmio_gpa % PAGE_2M || mmio_gpa < gm->size))
		return fv_err(err, FV_E_INVAL,
			      "device windows at 0x%llx overlap RAM (%llu MiB)",
			      (unsigned long long)mmio_gpa,
			      (unsigned long long)(gm->size >> 20));
	if (x86_write_gdt(gm, err) || x86_write_page_tables(gm, mmio_gpa, err))
		return -1;
	return 0;
}

static int x86_setup_sregs(int fd, struct fv_error *err)
{
	struct kvm_sregs s;
	struct kvm_segment data = x86_flat_segment(FV_SEL_USER_DS, false, 3);

	if (ioctl(fd, KVM_GET_SREGS, &s) < 0)
		return fv_err_errno(err, FV_E_KVM, errno, "KVM_GET_SREGS");
	s.cs = x86_flat_segment(FV_SEL_USER_CS, true, 3);
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.tr = (struct kvm_segment){
		.base = FV_TSS_GPA, .limit = TSS_LIMIT, .selector = FV_SEL_TSS,
		.type = 11, /* busy 64-bit TSS, as after LTR */
		.present = 1,
	};
	s.ldt = (struct kvm_segment){ .type = 2, .unusable = 1 };
	s.gdt.base = FV_GDT_GPA;
	s.gdt.limit = GDT_ENTRIES * 8 - 1;
	s.idt.base = 0;
	s.idt.limit = 0;
	s.cr0 = X86_CR0_PE | X86_CR0_MP | X86_CR0_ET | X86_CR0_NE |
		X86_CR0_WP | X86_CR0_PG;
	s.cr3 = FV_PT_GPA;
	s.cr4 = X86_CR4_PAE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;
	s.efer = X86_EFER_SCE | X86_EFER_LME | X86_EFER_LMA;
	if (ioctl(fd, KVM_SET_SREGS, &s) < 0)
		return fv_err_errno(err, FV_E_KVM, errno, "KVM_SET_SREGS");
	return 0;
}

static int x86_setup_msrs(int fd, struct fv_error *err)
{
	/* struct kvm_msrs ends in a flexible array: one entry after it. */
	union {
		struct kvm_msrs hdr;
		uint8_t bytes[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	} msrs;

	memset(&msrs, 0, sizeof(msrs));
	/* SYSRET would load CS = 0x20+16|3 = 0x33, SS = 0x20+8|3 = 0x2b: the
	 * same user segments the vCPU starts with. */
	msrs.hdr.nmsrs = 1;
	msrs.hdr.entries[0].index = MSR_STAR;
	msrs.hdr.entries[0].data = ((uint64_t)(0x20 | 3) << 48) |
				   ((uint64_t)FV_SEL_KERNEL_CS << 32);
	if (ioctl(fd, KVM_SET_MSRS, &msrs.hdr) != 1)
		return fv_err(err, FV_E_KVM, "KVM_SET_MSRS(STAR) failed");
	return 0;
}

int x86_cpl3_setup_vcpu(int fd, const struct kvm_cpuid2 *cpuid,
			unsigned index, uint64_t entry, uint64_t stack_top,
			uint64_t arg, struct fv_error *err)
{
	struct kvm_regs regs = { 0 };

	/* CPUID first: KVM refuses EFER.LME unless CPUID reports long mode. */
	if (ioctl(fd, KVM_SET_CPUID2, cpuid) < 0)
		return fv_err_errno(err, FV_E_KVM, errno, "KVM_SET_CPUID2");
	if (x86_setup_sregs(fd, err) || x86_setup_msrs(fd, err))
		return -1;
	regs.rip = entry;
	regs.rsp = stack_top;
	regs.rdi = index;
	regs.rsi = arg;
	regs.rflags = X86_RFLAGS_RESERVED | X86_RFLAGS_IOPL3;
	if (ioctl(fd, KVM_SET_REGS, &regs) < 0)
		return fv_err_errno(err, FV_E_KVM, errno, "KVM_SET_REGS");
	return 0;
}
