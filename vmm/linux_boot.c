#include <elf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/fileutil.h"
#include "vmm/linux_boot.h"

/* Offsets in a bzImage (and in the zero page, which mirrors its first
 * sectors), from the boot protocol's setup header table. */
#define BZ_SETUP_SECTS    0x1f1
#define BZ_SYSSIZE        0x1f4
#define BZ_BOOT_FLAG      0x1fe
#define BZ_JUMP_LEN       0x201  /* the header ends at 0x202 + this byte */
#define BZ_HEADER         0x202
#define BZ_VERSION        0x206
#define BZ_LOADFLAGS      0x211
#define BZ_INITRD_MAX     0x22c
#define BZ_ALIGNMENT      0x230
#define BZ_XLOADFLAGS     0x236
#define BZ_CMDLINE_SIZE   0x238
#define BZ_PAYLOAD_OFFSET 0x248
#define BZ_PAYLOAD_LENGTH 0x24c
#define BZ_PREF_ADDRESS   0x258
#define BZ_INIT_SIZE      0x260
#define BZ_HEADER_MIN_END 0x264  /* every field a 2.12 header has that we read */
#define BZ_MAGIC          0x53726448u /* "HdrS" */
#define BZ_BOOT_FLAG_MAGIC 0xaa55u
#define BZ_ENTRY_64       0x200  /* 64-bit entry: load address + 0x200 */
#define BZ_DEFAULT_SECTS  4      /* setup_sects 0 means 4 */

/* x86 COMMAND_LINE_SIZE: what a vmlinux (which has no header) accepts. */
#define ELF_CMDLINE_MAX   2047u
/* The protocol's default for kernels that do not say. */
#define DEFAULT_INITRD_MAX 0x37ffffffull
#define ELF_MAX_PHDRS     64u

#define E820_RAM      1u
#define E820_RESERVED 2u

#define PAGE_4K  0x1000ull
#define PAGE_2M  (2ull << 20)
#define PTE_P    (1ull << 0)
#define PTE_RW   (1ull << 1)
#define PTE_PS   (1ull << 7)
#define IDENTITY_MAP_GIB 4u

/* The legacy entries and one per RAM range above the first. */
_Static_assert(LINUX_E820_MAX >= 3 + GMEM_MAX_RANGES - 1, "e820 map too small");
/* What foldvm loads is below the hole, which the boot page tables map. */
_Static_assert(LINUX_LOW_MEM_END <= (uint64_t)IDENTITY_MAP_GIB << 30,
	       "low RAM beyond the boot page tables");

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static double to_mib(uint64_t bytes)
{
	return (double)bytes / (1024.0 * 1024.0);
}

/* a + b > limit, without overflowing. */
static int exceeds(uint64_t a, uint64_t b, uint64_t limit)
{
	return a > limit || b > limit - a;
}

static int bzimage_parse(const uint8_t *buf, size_t len, struct linux_image *img,
			 struct fv_error *err)
{
	/* The header ends at 0x202 + the jump's displacement byte. */
	size_t hdr_end = BZ_HEADER + (size_t)buf[BZ_JUMP_LEN];
	uint32_t sects, syssize, init_size;
	uint64_t kernel_bytes, pref, need;

	if (get16(buf + BZ_BOOT_FLAG) != BZ_BOOT_FLAG_MAGIC)
		return fv_err(err, FV_E_INVAL,
			      "bzImage boot flag is 0x%04x, not 0xaa55",
			      get16(buf + BZ_BOOT_FLAG));
	img->kind = LINUX_IMAGE_BZIMAGE;
	/* The caller saw "HdrS" (0x202..0x205); the version follows it. */
	if (len < BZ_VERSION + 2)
		return fv_err(err, FV_E_INVAL,
			      "bzImage setup header truncated: the file is %zu bytes",
			      len);
	img->protocol = get16(buf + BZ_VERSION);
	if (img->protocol < LINUX_MIN_PROTOCOL)
		return fv_err(err, FV_E_INVAL,
			      "bzImage boot protocol %u.%02u is older than 2.12: it has no 64-bit entry point",
			      img->protocol >> 8, img->protocol & 0xff);
	if (hdr_end < BZ_HEADER_MIN_END || hdr_end > len)
		return fv_err(err, FV_E_INVAL,
			      "bzImage setup header ends at 0x%zx: truncated or corrupt (file is %zu bytes)",
			      hdr_end, len);
	if (!(get16(buf + BZ_XLOADFLAGS) & XLF_KERNEL_64))
		return fv_err(err, FV_E_INVAL,
			      "bzImage has no 64-bit entry point (xloadflags 0x%04x)",
			      get16(buf + BZ_XLOADFLAGS));
	if (!(buf[BZ_LOADFLAGS] & LOADED_HIGH))
		return fv_err(err, FV_E_INVAL,
			      "image is a zImage (loads below 1 MiB), not a bzImage");
	sects = buf[BZ_SETUP_SECTS] ? buf[BZ_SETUP_SECTS] : BZ_DEFAULT_SECTS;
	img->setup_size = (sects + 1) * 512u;
	if (img->setup_size >= len)
		return fv_err(err, FV_E_INVAL,
			      "bzImage truncated: its setup code takes %u bytes, the file has %zu",
			      img->setup_size, len);
	kernel_bytes = len - img->setup_size;
	if (kernel_bytes <= BZ_ENTRY_64)
		return fv_err(err, FV_E_INVAL,
			      "bzImage kernel is %" PRIu64 " bytes: too short to hold its 64-bit entry point at offset 0x%x",
			      kernel_bytes, (unsigned)BZ_ENTRY_64);
	syssize = get32(buf + BZ_SYSSIZE);
	if ((uint64_t)syssize * 16 > kernel_bytes)
		return fv_err(err, FV_E_INVAL,
			      "bzImage truncated: the header says the kernel has %" PRIu64 " bytes, the file holds %" PRIu64,
			      (uint64_t)syssize * 16, kernel_bytes);
	img->payload_offset = get32(buf + BZ_PAYLOAD_OFFSET);
	img->payload_length = get32(buf + BZ_PAYLOAD_LENGTH);
	if (exceeds(img->payload_offset, img->payload_length, kernel_bytes))
		return fv_err(err, FV_E_INVAL,
			      "bzImage payload (offset %u, %u bytes) lies outside its %" PRIu64 "-byte kernel",
			      img->payload_offset, img->payload_length, kernel_bytes);
	pref = get64(buf + BZ_PREF_ADDRESS);
	if (pref < LINUX_HIGH_GPA || pref % PAGE_4K)
		return fv_err(err, FV_E_INVAL,
			      "bzImage preferred load address 0x%" PRIx64 " is below 1 MiB or not page-aligned",
			      pref);
	init_size = get32(buf + BZ_INIT_SIZE);
	img->load_start = pref;
	/* The decompressor needs init_size bytes from the load address. */
	need = init_size > kernel_bytes ? init_size : kernel_bytes;
	if (exceeds(pref, need, LINUX_LOW_MEM_END))
		return fv_err(err, FV_E_INVAL,
			      "bzImage at 0x%" PRIx64 " needs %" PRIu64 " bytes, beyond the %" PRIu64 " MiB of RAM below the 32-bit hole where a kernel loads",
			      pref, need, (uint64_t)(LINUX_LOW_MEM_END >> 20));
	img->load_end = pref + need;
	img->entry = pref + BZ_ENTRY_64;
	img->initrd_addr_max = get32(buf + BZ_INITRD_MAX);
	img->cmdline_max = get32(buf + BZ_CMDLINE_SIZE);
	if (img->cmdline_max > LINUX_CMDLINE_MAX)
		img->cmdline_max = LINUX_CMDLINE_MAX;
	img->nr_segments = 1;
	img->seg[0] = (struct linux_segment){
		.file_offset = img->setup_size, .file_size = kernel_bytes,
		.gpa = pref, .mem_size = kernel_bytes,
	};
	return 0;
}

static int elf_check_header(const Elf64_Ehdr *eh, size_t len, struct fv_error *err)
{
	if (eh->e_ident[EI_CLASS] != ELFCLASS64)
		return fv_err(err, FV_E_INVAL,
			      "ELF class %u: only 64-bit (ELFCLASS64) kernels boot",
			      eh->e_ident[EI_CLASS]);
	if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return fv_err(err, FV_E_INVAL, "ELF kernel is not little-endian");
	if (eh->e_machine != EM_X86_64)
		return fv_err(err, FV_E_INVAL,
			      "ELF kernel is for machine %u, not x86-64 (%u)",
			      eh->e_machine, EM_X86_64);
	if (eh->e_type != ET_EXEC)
		return fv_err(err, FV_E_INVAL,
			      "ELF type %u: a vmlinux is an executable (ET_EXEC)",
			      eh->e_type);
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 ||
	    eh->e_phnum > ELF_MAX_PHDRS)
		return fv_err(err, FV_E_INVAL,
			      "ELF program headers: %u of %u bytes (want 1..%u of %zu)",
			      eh->e_phnum, eh->e_phentsize, ELF_MAX_PHDRS,
			      sizeof(Elf64_Phdr));
	if (exceeds(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), len))
		return fv_err(err, FV_E_INVAL,
			      "ELF program headers at offset %" PRIu64 " run past the end of the %zu-byte file",
			      (uint64_t)eh->e_phoff, len);
	return 0;
}

static int elf_add_segment(struct linux_image *img, const Elf64_Phdr *ph,
			   unsigned index, size_t len, struct fv_error *err)
{
	if (ph->p_filesz > ph->p_memsz)
		return fv_err(err, FV_E_INVAL,
			      "ELF segment %u has more file bytes (%" PRIu64 ") than memory (%" PRIu64 ")",
			      index, (uint64_t)ph->p_filesz, (uint64_t)ph->p_memsz);
	if (exceeds(ph->p_offset, ph->p_filesz, len))
		return fv_err(err, FV_E_INVAL,
			      "ELF segment %u (offset %" PRIu64 ", %" PRIu64 " bytes) runs past the end of the %zu-byte file",
			      index, (uint64_t)ph->p_offset, (uint64_t)ph->p_filesz, len);
	if (ph->p_paddr < LINUX_HIGH_GPA)
		return fv_err(err, FV_E_INVAL,
			      "ELF segment %u loads at 0x%" PRIx64 ", below 1 MiB where foldvm keeps boot data",
			      index, (uint64_t)ph->p_paddr);
	if (exceeds(ph->p_paddr, ph->p_memsz, LINUX_LOW_MEM_END))
		return fv_err(err, FV_E_INVAL,
			      "ELF segment %u (0x%" PRIx64 " + %" PRIu64 " bytes) ends beyond the %" PRIu64 " MiB of RAM below the 32-bit hole where a kernel loads",
			      index, (uint64_t)ph->p_paddr, (uint64_t)ph->p_memsz,
			      (uint64_t)(LINUX_LOW_MEM_END >> 20));
	if (img->nr_segments == LINUX_MAX_SEGMENTS)
		return fv_err(err, FV_E_INVAL, "ELF kernel has more than %u loadable segments",
			      LINUX_MAX_SEGMENTS);
	img->seg[img->nr_segments++] = (struct linux_segment){
		.file_offset = ph->p_offset, .file_size = ph->p_filesz,
		.gpa = ph->p_paddr, .mem_size = ph->p_memsz,
	};
	if (img->nr_segments == 1 || ph->p_paddr < img->load_start)
		img->load_start = ph->p_paddr;
	if (ph->p_paddr + ph->p_memsz > img->load_end)
		img->load_end = ph->p_paddr + ph->p_memsz;
	return 0;
}

/*
 * A vmlinux's e_entry is the physical address of startup_64 (its linker
 * script says ENTRY(phys_startup_64)); an ELF built otherwise may give a
 * virtual one, which the segment that holds it translates.
 */
static int elf_find_entry(struct linux_image *img, const Elf64_Phdr *ph,
			  unsigned nr, uint64_t entry, struct fv_error *err)
{
	for (unsigned i = 0; i < img->nr_segments; i++) {
		const struct linux_segment *s = &img->seg[i];

		if (entry >= s->gpa && entry - s->gpa < s->mem_size) {
			img->entry = entry;
			return 0;
		}
	}
	for (unsigned i = 0; i < nr; i++) {
		if (ph[i].p_type == PT_LOAD && entry >= ph[i].p_vaddr &&
		    entry - ph[i].p_vaddr < ph[i].p_memsz &&
		    ph[i].p_paddr >= LINUX_HIGH_GPA) {
			img->entry = ph[i].p_paddr + (entry - ph[i].p_vaddr);
			return 0;
		}
	}
	return fv_err(err, FV_E_INVAL,
		      "ELF entry point 0x%" PRIx64 " is in no loadable segment", entry);
}

static int elf_parse(const uint8_t *buf, size_t len, struct linux_image *img,
		     struct fv_error *err)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph[ELF_MAX_PHDRS];

	if (len < sizeof(eh))
		return fv_err(err, FV_E_INVAL,
			      "ELF kernel truncated: %zu bytes, the ELF header alone is %zu",
			      len, sizeof(eh));
	memcpy(&eh, buf, sizeof(eh)); /* the buffer need not be aligned */
	if (elf_check_header(&eh, len, err))
		return -1;
	img->kind = LINUX_IMAGE_ELF;
	memcpy(ph, buf + eh.e_phoff, eh.e_phnum * sizeof(Elf64_Phdr));
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0)
			continue;
		if (elf_add_segment(img, &ph[i], i, len, err))
			return -1;
	}
	if (img->nr_segments == 0)
		return fv_err(err, FV_E_INVAL, "ELF kernel has no loadable segment");
	img->initrd_addr_max = DEFAULT_INITRD_MAX;
	img->cmdline_max = ELF_CMDLINE_MAX;
	return elf_find_entry(img, ph, eh.e_phnum, eh.e_entry, err);
}

int linux_image_parse(const uint8_t *buf, size_t len, struct linux_image *img,
		      struct fv_error *err)
{
	memset(img, 0, sizeof(*img));
	if (len >= SELFMAG && !memcmp(buf, ELFMAG, SELFMAG))
		return elf_parse(buf, len, img, err);
	if (len >= BZ_HEADER + 4 && get32(buf + BZ_HEADER) == BZ_MAGIC)
		return bzimage_parse(buf, len, img, err);
	if (len < BZ_HEADER + 4)
		return fv_err(err, FV_E_INVAL,
			      "not a Linux kernel: %zu bytes is too short for a bzImage header or ELF kernel",
			      len);
	return fv_err(err, FV_E_INVAL,
		      "not a Linux kernel: no ELF magic and no bzImage 'HdrS' signature at 0x202");
}

/* Where low RAM ends: the guest's RAM below the 32-bit hole. */
static uint64_t low_mem_end(uint64_t mem_size)
{
	return mem_size < LINUX_LOW_MEM_END ? mem_size : LINUX_LOW_MEM_END;
}

int linux_image_check_fit(const struct linux_image *img, uint64_t mem_size,
			  struct fv_error *err)
{
	if (mem_size < LINUX_MEM_MIN || mem_size > LINUX_MEM_MAX)
		return fv_err(err, FV_E_INVAL,
			      "a Linux guest needs %" PRIu64 " MiB to %" PRIu64 " MiB of memory, not %.1f MiB",
			      (uint64_t)(LINUX_MEM_MIN >> 20),
			      (uint64_t)(LINUX_MEM_MAX >> 20), to_mib(mem_size));
	if (img->load_end > low_mem_end(mem_size))
		return fv_err(err, FV_E_RANGE,
			      "kernel too large: it needs memory up to 0x%" PRIx64 " (%.1f MiB) and the guest has %.1f MiB below the 32-bit hole",
			      img->load_end, to_mib(img->load_end),
			      to_mib(low_mem_end(mem_size)));
	return 0;
}

int linux_initrd_place(const struct linux_image *img, uint64_t mem_size,
		       uint64_t size, uint64_t *gpa, struct fv_error *err)
{
	uint64_t top = low_mem_end(mem_size);
	uint64_t floor = (img->load_end + PAGE_4K - 1) & ~(PAGE_4K - 1);

	/* initrd_addr_max is the address of the last byte it may use. */
	if (img->initrd_addr_max + 1 < top)
		top = img->initrd_addr_max + 1;
	if (size == 0 || size > top || ((top - size) & ~(PAGE_4K - 1)) < floor)
		return fv_err(err, FV_E_RANGE,
			      "initrd of %.1f MiB does not fit between the kernel's end (0x%" PRIx64 ") and 0x%" PRIx64 " (the lower of the guest's %.1f MiB below the 32-bit hole and the kernel's initrd limit)",
			      to_mib(size), floor, top, to_mib(low_mem_end(mem_size)));
	*gpa = (top - size) & ~(PAGE_4K - 1);
	return 0;
}

unsigned linux_e820_build(uint64_t mem_size, struct boot_e820_entry *out,
			  unsigned max)
{
	struct gmem_range r[GMEM_MAX_RANGES];
	struct boot_e820_entry map[LINUX_E820_MAX];
	unsigned nr = gmem_layout_ranges(GMEM_LAYOUT_PC, mem_size, r), n = 0;

	/* Low RAM must reach past 1 MiB: the legacy hole is carved out of it. */
	if (nr == 0 || r[0].gpa != 0 || r[0].size <= LINUX_HIGH_GPA)
		return 0;
	map[n++] = (struct boot_e820_entry){ 0, LINUX_EBDA_GPA, E820_RAM };
	map[n++] = (struct boot_e820_entry){ LINUX_EBDA_GPA,
					     LINUX_HIGH_GPA - LINUX_EBDA_GPA, E820_RESERVED };
	map[n++] = (struct boot_e820_entry){ LINUX_HIGH_GPA,
					     r[0].size - LINUX_HIGH_GPA, E820_RAM };
	for (unsigned i = 1; i < nr; i++)
		map[n++] = (struct boot_e820_entry){ r[i].gpa, r[i].size, E820_RAM };
	if (n > max)
		n = max;
	memcpy(out, map, n * sizeof(*out));
	return n;
}

/* The setup header of a vmlinux, which has none: what a boot loader must
 * say (Firecracker and Cloud Hypervisor fill the same fields). */
static void elf_setup_header(struct setup_header *h, const struct linux_image *img)
{
	h->boot_flag = BZ_BOOT_FLAG_MAGIC;
	h->header = BZ_MAGIC;
	h->loadflags = LOADED_HIGH;
	h->kernel_alignment = 0x1000000;
	h->cmdline_size = img->cmdline_max;
}

int linux_zero_page_build(struct boot_params *bp, const struct linux_image *img,
			  const uint8_t *buf, size_t len, uint64_t mem_size,
			  uint64_t cmdline_gpa, uint32_t cmdline_len,
			  uint64_t initrd_gpa, uint64_t initrd_size,
			  struct fv_error *err)
{
	memset(bp, 0, sizeof(*bp));
	if (img->kind == LINUX_IMAGE_BZIMAGE) {
		size_t start = offsetof(struct boot_params, hdr);
		/* A buffer without the length byte has no header: end 0. */
		size_t end = len > BZ_JUMP_LEN ?
			     BZ_HEADER + (size_t)buf[BZ_JUMP_LEN] : 0;

		/* Copy the image's header as it is, bounded by both the
		 * file and the structure we know. */
		if (end > start + sizeof(bp->hdr))
			end = start + sizeof(bp->hdr);
		if (end > len || end < BZ_HEADER_MIN_END)
			return fv_err(err, FV_E_INVAL, "bzImage setup header truncated");
		memcpy((uint8_t *)bp + start, buf + start, end - start);
	} else {
		elf_setup_header(&bp->hdr, img);
	}
	if (cmdline_len > img->cmdline_max)
		return fv_err(err, FV_E_INVAL,
			      "command line is %u bytes; this kernel takes at most %u",
			      cmdline_len, img->cmdline_max);
	bp->hdr.type_of_loader = 0xff; /* a loader with no assigned id */
	bp->hdr.cmd_line_ptr = (uint32_t)cmdline_gpa;
	bp->ext_cmd_line_ptr = (uint32_t)(cmdline_gpa >> 32);
	bp->hdr.ramdisk_image = (uint32_t)initrd_gpa;
	bp->ext_ramdisk_image = (uint32_t)(initrd_gpa >> 32);
	bp->hdr.ramdisk_size = (uint32_t)initrd_size;
	bp->ext_ramdisk_size = (uint32_t)(initrd_size >> 32);
	bp->e820_entries = (uint8_t)linux_e820_build(mem_size, bp->e820_table,
						     E820_MAX_ENTRIES_ZEROPAGE);
	return 0;
}

/* Identity-map the first 4 GiB with 2 MiB pages: the 64-bit boot protocol
 * wants the kernel, zero page, command line and initrd mapped, all of which
 * are in low RAM; the kernel builds its own tables at once, for all of RAM
 * (above 4 GiB too) from the e820 map. */
static int linux_write_page_tables(struct guest_mem *gm, struct fv_error *err)
{
	uint64_t pml4 = LINUX_PDPT_GPA | PTE_P | PTE_RW;
	uint64_t pdpt[IDENTITY_MAP_GIB];
	uint64_t *pd = calloc(IDENTITY_MAP_GIB * 512, sizeof(*pd));
	int r;

	if (!pd)
		return fv_err(err, FV_E_NOMEM, "page tables");
	for (unsigned i = 0; i < IDENTITY_MAP_GIB; i++)
		pdpt[i] = (LINUX_PD_GPA + i * PAGE_4K) | PTE_P | PTE_RW;
	for (unsigned i = 0; i < IDENTITY_MAP_GIB * 512; i++)
		pd[i] = (uint64_t)i * PAGE_2M | PTE_P | PTE_RW | PTE_PS;
	r = gmem_fill(gm, LINUX_PML4_GPA, 0, 2 * PAGE_4K, err) ||
	    gmem_write(gm, LINUX_PML4_GPA, &pml4, sizeof(pml4), err) ||
	    gmem_write(gm, LINUX_PDPT_GPA, pdpt, sizeof(pdpt), err) ||
	    gmem_write(gm, LINUX_PD_GPA, pd, IDENTITY_MAP_GIB * 512 * sizeof(*pd), err);
	free(pd);
	return r ? -1 : 0;
}

/* __BOOT_CS (0x10) and __BOOT_DS (0x18), as the protocol asks. */
static int linux_write_gdt(struct guest_mem *gm, struct fv_error *err)
{
	static const uint64_t gdt[4] = {
		0, 0,
		0x00af9b000000ffffull, /* 0x10: 64-bit code, DPL 0 */
		0x00cf93000000ffffull, /* 0x18: flat data, DPL 0 */
	};

	return gmem_write(gm, LINUX_GDT_GPA, gdt, sizeof(gdt), err);
}

static int linux_load_segments(struct guest_mem *gm, const struct linux_image *img,
			       const uint8_t *buf, struct fv_error *err)
{
	for (unsigned i = 0; i < img->nr_segments; i++) {
		const struct linux_segment *s = &img->seg[i];

		if (gmem_write(gm, s->gpa, buf + s->file_offset, s->file_size, err) ||
		    gmem_fill(gm, s->gpa + s->file_size, 0,
			      s->mem_size - s->file_size, err))
			return -1;
	}
	return 0;
}

static int linux_load_initrd(struct guest_mem *gm, const struct linux_image *img,
			     const char *path, struct linux_boot_info *out,
			     struct fv_error *err)
{
	uint64_t max = gm->size < LINUX_INITRD_MAX ? gm->size : LINUX_INITRD_MAX;
	uint8_t *buf;
	size_t len;
	int r;

	/* Place it from its size before reading it all. */
	if (fv_check_file(path, max, "initrd", &out->initrd_size, err) ||
	    linux_initrd_place(img, gm->size, out->initrd_size, &out->initrd_gpa, err) ||
	    fv_read_file(path, max, "initrd", &buf, &len, err))
		return -1;
	/* The placement holds only for the size it was made for. */
	r = (len != out->initrd_size &&
	     fv_err(err, FV_E_IO, "initrd '%s' changed size while read", path)) ||
	    gmem_write(gm, out->initrd_gpa, buf, len, err);
	free(buf);
	return r ? -1 : 0;
}

static int linux_write_zero_page(struct guest_mem *gm, const struct linux_image *img,
				 const uint8_t *buf, size_t len,
				 const struct linux_boot_info *info,
				 const char *cmdline, uint64_t acpi_rsdp,
				 struct fv_error *err)
{
	struct boot_params *bp = malloc(sizeof(*bp));
	size_t cl = strlen(cmdline);
	int r;

	if (!bp)
		return fv_err(err, FV_E_NOMEM, "zero page");
	r = linux_zero_page_build(bp, img, buf, len, gm->size, LINUX_CMDLINE_GPA,
				  (uint32_t)cl, info->initrd_gpa, info->initrd_size,
				  err);
	/* Where the kernel finds the RSDP without scanning (protocol 2.14;
	 * older kernels scan the BIOS area, where it is too). */
	bp->acpi_rsdp_addr = acpi_rsdp;
	r = r || gmem_write(gm, LINUX_CMDLINE_GPA, cmdline, cl + 1, err) ||
	    gmem_write(gm, LINUX_ZERO_PAGE_GPA, bp, sizeof(*bp), err);
	free(bp);
	return r ? -1 : 0;
}

int linux_boot_load(struct guest_mem *gm, const struct linux_boot_config *cfg,
		    struct linux_boot_info *out, struct fv_error *err)
{
	const char *cmdline = cfg->cmdline ? cfg->cmdline : "";
	uint8_t *buf;
	size_t len;
	int r;

	memset(out, 0, sizeof(*out));
	if (strlen(cmdline) > LINUX_CMDLINE_MAX)
		return fv_err(err, FV_E_INVAL, "command line longer than %u bytes",
			      LINUX_CMDLINE_MAX);
	if (fv_read_file(cfg->kernel, LINUX_KERNEL_MAX, "kernel", &buf, &len, err))
		return -1;
	/* Everything is checked before the first byte goes to the guest. */
	r = linux_image_parse(buf, len, &out->img, err) ||
	    linux_image_check_fit(&out->img, gm->size, err) ||
	    (strlen(cmdline) > out->img.cmdline_max &&
	     fv_err(err, FV_E_INVAL, "command line is %zu bytes; this kernel takes at most %u",
		    strlen(cmdline), out->img.cmdline_max)) ||
	    (cfg->initrd && *cfg->initrd &&
	     linux_load_initrd(gm, &out->img, cfg->initrd, out, err)) ||
	    linux_load_segments(gm, &out->img, buf, err) ||
	    linux_write_zero_page(gm, &out->img, buf, len, out, cmdline,
				  cfg->acpi_rsdp, err) ||
	    linux_write_page_tables(gm, err) || linux_write_gdt(gm, err);
	free(buf);
	if (r) {
		fv_err_prefix(err, "%s: ", cfg->kernel);
		return -1;
	}
	out->entry = out->img.entry;
	out->zero_page = LINUX_ZERO_PAGE_GPA;
	return 0;
}

void linux_image_describe(const struct linux_image *img, char *buf, size_t len)
{
	if (img->kind == LINUX_IMAGE_BZIMAGE)
		snprintf(buf, len,
			 "bzImage, boot protocol %u.%02u, loads at 0x%" PRIx64 ", needs %.1f MiB, 64-bit entry 0x%" PRIx64 ", payload at file offset %u (%u bytes)",
			 img->protocol >> 8, img->protocol & 0xff, img->load_start,
			 to_mib(img->load_end - img->load_start), img->entry,
			 img->setup_size + img->payload_offset, img->payload_length);
	else
		snprintf(buf, len,
			 "ELF vmlinux, %u segments at 0x%" PRIx64 "-0x%" PRIx64 ", entry 0x%" PRIx64,
			 img->nr_segments, img->load_start, img->load_end, img->entry);
}
