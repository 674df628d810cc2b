/*
 * linux_boot.h - load a Linux kernel for its 64-bit entry point, as the x86
 * boot protocol (Documentation/arch/x86/boot.rst) describes it.
 *
 * Two image formats: a bzImage (setup header "HdrS", protocol 2.12 or later
 * so it has a 64-bit entry) and an uncompressed ELF vmlinux (ELF64, x86-64,
 * PT_LOAD segments at their physical addresses).  Either way foldvm writes
 * a boot_params "zero page" (setup header, e820 map, command line pointer,
 * initramfs), identity-mapping page tables and a boot GDT, and the vCPU
 * starts in long mode at CPL0 with RSI pointing at the zero page.
 *
 * The parsing and planning functions work on plain buffers, so the unit
 * tests and the fuzzer reach every check without KVM.  Every malformed
 * image is refused with a message that names the problem before anything
 * is written to guest memory.
 */
#ifndef FOLDVM_LINUX_BOOT_H
#define FOLDVM_LINUX_BOOT_H

#include <stddef.h>
#include <stdint.h>
#include <asm/bootparam.h>
#include "lib/error.h"
#include "memory/guest_mem.h"

/* Guest-physical layout of what foldvm writes for the kernel (below the
 * EBDA, in memory the e820 map reports as usable: the kernel copies the
 * zero page and command line before it reuses low memory). */
#define LINUX_GDT_GPA        0x0500ull
#define LINUX_ZERO_PAGE_GPA  0x7000ull
#define LINUX_BOOT_STACK_TOP 0x8ff0ull
#define LINUX_PML4_GPA       0x9000ull
#define LINUX_PDPT_GPA       0xa000ull
#define LINUX_PD_GPA         0xb000ull   /* four pages: the first 4 GiB */
#define LINUX_CMDLINE_GPA    0x20000ull
#define LINUX_EBDA_GPA       0x9fc00ull  /* end of usable low memory */
#define LINUX_HIGH_GPA       0x100000ull /* 1 MiB: where "high" RAM starts */

/* Limits on what foldvm accepts from outside. */
#define LINUX_CMDLINE_MAX    4095u           /* bytes, without the NUL */
#define LINUX_KERNEL_MAX     (512ull << 20)  /* a kernel file */
#define LINUX_INITRD_MAX     (2ull << 30)    /* an initramfs file */
#define LINUX_MEM_MIN        (16ull << 20)
/* A Linux guest's RAM is laid out as on a PC (GMEM_LAYOUT_PC): up to
 * 3 GiB from 0, the 32-bit hole [3 GiB, 4 GiB) for the virtio-mmio
 * windows, IOAPIC and LAPIC, the rest from 4 GiB; up to the size any
 * guest may have. */
#define LINUX_MEM_MAX        GMEM_MAX_SIZE
/* Everything foldvm loads (kernel, initrd, boot data) goes below the
 * hole, in RAM the boot page tables map. */
#define LINUX_LOW_MEM_END    GMEM_HOLE_START
#define LINUX_MIN_PROTOCOL   0x020c          /* 2.12: XLF_KERNEL_64 */
#define LINUX_MAX_SEGMENTS   16u

enum linux_image_kind {
	LINUX_IMAGE_BZIMAGE,
	LINUX_IMAGE_ELF,
};

/* One piece of the file that goes to guest memory. */
struct linux_segment {
	uint64_t file_offset;
	uint64_t file_size;
	uint64_t gpa;
	uint64_t mem_size;   /* >= file_size; the rest is zeroed */
};

/* What a kernel file says about itself, before anything is loaded. */
struct linux_image {
	enum linux_image_kind kind;
	uint16_t protocol;        /* bzImage boot protocol (0x20f = 2.15); 0 for ELF */
	uint64_t entry;           /* guest-physical 64-bit entry point */
	uint64_t load_start;      /* lowest guest-physical byte the kernel uses */
	uint64_t load_end;        /* one past the highest (init_size for a bzImage) */
	uint64_t initrd_addr_max; /* highest address an initrd byte may have */
	uint32_t cmdline_max;     /* longest command line it takes, without NUL */
	uint32_t setup_size;      /* bzImage: bytes of real-mode setup code */
	uint32_t payload_offset;  /* bzImage: compressed payload, file offset */
	uint32_t payload_length;
	unsigned nr_segments;
	struct linux_segment seg[LINUX_MAX_SEGMENTS];
};

/* Which format is this, and is it one foldvm can boot?  Checks magic,
 * class, machine, protocol version, 64-bit entry and that every segment
 * lies inside the file.  buf must hold the whole file. */
int linux_image_parse(const uint8_t *buf, size_t len, struct linux_image *img,
		      struct fv_error *err);

/* Does the kernel fit in the low RAM (below the hole) of a guest of
 * mem_size bytes (and is mem_size one foldvm can give a Linux guest)? */
int linux_image_check_fit(const struct linux_image *img, uint64_t mem_size,
			  struct fv_error *err);

/* Where an initrd of `size` bytes goes: as high as the kernel allows
 * (initrd_addr_max) and low RAM holds (below the hole, so below 4 GiB
 * whatever the guest's size), page-aligned, above the kernel. */
int linux_initrd_place(const struct linux_image *img, uint64_t mem_size,
		       uint64_t size, uint64_t *gpa, struct fv_error *err);

/* The e820 map of a guest of mem_size bytes, from its RAM ranges
 * (gmem_layout_ranges, GMEM_LAYOUT_PC): low RAM up to the EBDA, the legacy
 * hole reserved (it holds the ACPI tables, vmm/acpi.h), RAM from 1 MiB to
 * the end of low RAM (3 GiB at most) and, for a guest above 3 GiB, RAM
 * from 4 GiB on; the 32-bit hole between is in no entry.  Returns the
 * count (at most LINUX_E820_MAX). */
#define LINUX_E820_MAX 4u
unsigned linux_e820_build(uint64_t mem_size, struct boot_e820_entry *out,
			  unsigned max);

/* Fill the zero page.  For a bzImage the setup header is copied from the
 * image (as the protocol asks); for an ELF vmlinux foldvm writes one. */
int linux_zero_page_build(struct boot_params *bp, const struct linux_image *img,
			  const uint8_t *buf, size_t len, uint64_t mem_size,
			  uint64_t cmdline_gpa, uint32_t cmdline_len,
			  uint64_t initrd_gpa, uint64_t initrd_size,
			  struct fv_error *err);

/* What a Linux guest is started with. */
struct linux_boot_config {
	const char *kernel;    /* bzImage or ELF vmlinux */
	const char *initrd;    /* NULL or "" = none */
	const char *cmdline;   /* NULL = "" */
	uint64_t acpi_rsdp;    /* where foldvm put the ACPI RSDP (0: none):
				* the zero page's acpi_rsdp_addr */
};

struct linux_boot_info {
	struct linux_image img;
	uint64_t entry;        /* RIP */
	uint64_t zero_page;    /* RSI */
	uint64_t initrd_gpa, initrd_size;
};

/* Read the files, check everything, then write kernel, initrd, command
 * line, zero page, page tables and GDT into guest memory. */
int linux_boot_load(struct guest_mem *gm, const struct linux_boot_config *cfg,
		    struct linux_boot_info *out, struct fv_error *err);

/* A one-line description ("bzImage, boot protocol 2.15, ...") for logs. */
void linux_image_describe(const struct linux_image *img, char *buf, size_t len);

#endif
