/* test_linux_boot.c - the Linux kernel loader on synthetic images: a
 * minimal bzImage and ELF vmlinux built here, every way to break them, the
 * placement and zero-page helpers, and linux_boot_load() into guest memory
 * mapped without KVM. */
#include <elf.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <CUnit/CUnit.h>
#include "tests/unit/unit.h"
#include "vmm/linux_boot.h"

/* Setup header offsets (boot protocol, Documentation/arch/x86/boot.rst). */
#define OFF_SETUP_SECTS    0x1f1
#define OFF_SYSSIZE        0x1f4
#define OFF_BOOT_FLAG      0x1fe
#define OFF_JUMP           0x200
#define OFF_HEADER         0x202
#define OFF_VERSION        0x206
#define OFF_LOADFLAGS      0x211
#define OFF_INITRD_MAX     0x22c
#define OFF_ALIGNMENT      0x230
#define OFF_XLOADFLAGS     0x236
#define OFF_CMDLINE_SIZE   0x238
#define OFF_PAYLOAD_OFFSET 0x248
#define OFF_PAYLOAD_LENGTH 0x24c
#define OFF_PREF_ADDRESS   0x258
#define OFF_INIT_SIZE      0x260
#define OFF_KERNEL_INFO    0x268 /* first field past our header's end */

#define PREF        0x1000000ull   /* 16 MiB */
#define INIT_SIZE   0x2000000u     /* 32 MiB */
#define BZ_KERNEL   0x400u         /* bytes of protected-mode kernel */
#define BZ_PAYLOAD_OFF 0x100u
#define BZ_PAYLOAD_LEN 0x200u
#define BZ_CMDLINE  255u
#define BZ_INITRD_MAX 0x7fffffffu

#define VIRT_BASE   0xffffffff81000000ull
#define ELF_LEN     0x400u
#define ELF_SEG1_GPA (PREF + 0x200000)
#define ELF_BSS     0x1000u

#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define BUF_MAX 8192u

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint8_t kernel_byte(size_t i)
{
	return (uint8_t)(i * 7 + 3);
}

/* A minimal bzImage: (setup_sects + 1) sectors of setup (0 means 4), then
 * kernel_len bytes of "kernel".  Returns the file length. */
static size_t make_bzimage(uint8_t *buf, unsigned setup_sects, size_t kernel_len)
{
	size_t setup = ((setup_sects ? setup_sects : 4) + 1) * 512u;

	memset(buf, 0, setup + kernel_len);
	buf[OFF_SETUP_SECTS] = (uint8_t)setup_sects;
	put32(buf + OFF_SYSSIZE, (uint32_t)(kernel_len / 16));
	put16(buf + OFF_BOOT_FLAG, 0xaa55);
	buf[OFF_JUMP] = 0xeb;
	buf[OFF_JUMP + 1] = OFF_KERNEL_INFO - OFF_HEADER; /* header ends at 0x268 */
	memcpy(buf + OFF_HEADER, "HdrS", 4);
	put16(buf + OFF_VERSION, 0x020f);
	buf[OFF_LOADFLAGS] = LOADED_HIGH;
	put32(buf + OFF_INITRD_MAX, BZ_INITRD_MAX);
	put32(buf + OFF_ALIGNMENT, 0x200000);
	put16(buf + OFF_XLOADFLAGS, XLF_KERNEL_64);
	put32(buf + OFF_CMDLINE_SIZE, BZ_CMDLINE);
	put32(buf + OFF_PAYLOAD_OFFSET, BZ_PAYLOAD_OFF);
	put32(buf + OFF_PAYLOAD_LENGTH, BZ_PAYLOAD_LEN);
	put64(buf + OFF_PREF_ADDRESS, PREF);
	put32(buf + OFF_INIT_SIZE, INIT_SIZE);
	for (size_t i = 0; i < kernel_len; i++)
		buf[setup + i] = kernel_byte(i);
	return setup + kernel_len;
}

static void elf_get_eh(const uint8_t *buf, Elf64_Ehdr *eh)
{
	memcpy(eh, buf, sizeof(*eh));
}

static void elf_set_eh(uint8_t *buf, const Elf64_Ehdr *eh)
{
	memcpy(buf, eh, sizeof(*eh));
}

static void elf_get_ph(const uint8_t *buf, unsigned i, Elf64_Phdr *ph)
{
	memcpy(ph, buf + sizeof(Elf64_Ehdr) + i * sizeof(*ph), sizeof(*ph));
}

static void elf_set_ph(uint8_t *buf, unsigned i, const Elf64_Phdr *ph)
{
	memcpy(buf + sizeof(Elf64_Ehdr) + i * sizeof(*ph), ph, sizeof(*ph));
}

static void elf_ident(Elf64_Ehdr *eh)
{
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_phoff = sizeof(Elf64_Ehdr);
	eh->e_ehsize = sizeof(Elf64_Ehdr);
	eh->e_phentsize = sizeof(Elf64_Phdr);
}

/*
 * A minimal vmlinux: text (0x100 bytes at PREF), a PT_NOTE at paddr 0 that
 * must be ignored, and data with bss (0x80 file bytes, 0x1000 in memory) at
 * PREF + 2 MiB.  The entry is PREF + 0x10, given physically or virtually.
 */
static size_t make_elf(uint8_t *buf, int virt_entry)
{
	Elf64_Ehdr eh = { 0 };
	Elf64_Phdr text = {
		.p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = 0x200,
		.p_vaddr = VIRT_BASE, .p_paddr = PREF,
		.p_filesz = 0x100, .p_memsz = 0x100, .p_align = 0x200000,
	};
	Elf64_Phdr note = {
		.p_type = PT_NOTE, .p_flags = PF_R, .p_offset = 0x200,
		.p_filesz = 0x10, .p_memsz = 0x10, .p_align = 4,
	};
	Elf64_Phdr data = {
		.p_type = PT_LOAD, .p_flags = PF_R | PF_W, .p_offset = 0x300,
		.p_vaddr = VIRT_BASE + 0x200000, .p_paddr = ELF_SEG1_GPA,
		.p_filesz = 0x80, .p_memsz = ELF_BSS, .p_align = 0x200000,
	};

	memset(buf, 0, ELF_LEN);
	elf_ident(&eh);
	eh.e_entry = (virt_entry ? VIRT_BASE : PREF) + 0x10;
	eh.e_phnum = 3;
	elf_set_eh(buf, &eh);
	elf_set_ph(buf, 0, &text);
	elf_set_ph(buf, 1, &note);
	elf_set_ph(buf, 2, &data);
	for (size_t i = 0x200; i < 0x380; i++)
		buf[i] = kernel_byte(i);
	return ELF_LEN;
}

/* Parse a copy of exactly len bytes on the heap, so that the sanitizer
 * build catches a read past the end of the file. */
static int parse_exact(const uint8_t *buf, size_t len, struct fv_error *err)
{
	struct linux_image img;
	uint8_t *copy = malloc(len ? len : 1);
	int r;

	if (!copy)
		return fv_err(err, FV_E_NOMEM, "test copy");
	memcpy(copy, buf, len);
	r = linux_image_parse(copy, len, &img, err);
	free(copy);
	return r;
}

/* Is the image refused as invalid, with a message that contains want? */
static int parse_fails_with(const uint8_t *buf, size_t len, const char *want)
{
	struct fv_error err;

	memset(&err, 0, sizeof(err));
	if (parse_exact(buf, len, &err) != -1) {
		fprintf(stderr, "\n    image of %zu bytes accepted, expected '%s'\n",
			len, want);
		return 0;
	}
	if (err.code != FV_E_INVAL || !strstr(err.msg, want)) {
		fprintf(stderr, "\n    error %d '%s' does not mention '%s'\n",
			err.code, err.msg, want);
		return 0;
	}
	return 1;
}

#define CHECK_REJECT(buf, len, want) \
	CU_ASSERT_TRUE(parse_fails_with((buf), (len), (want)))

static int parses_ok(const uint8_t *buf, size_t len)
{
	struct fv_error err;

	if (parse_exact(buf, len, &err) == 0)
		return 1;
	fprintf(stderr, "\n    image refused: %s\n", err.msg);
	return 0;
}

static int msg_has(const struct fv_error *err, const char *want)
{
	if (strstr(err->msg, want))
		return 1;
	fprintf(stderr, "\n    error '%s' does not mention '%s'\n", err->msg, want);
	return 0;
}

static void test_header_offsets(void)
{
	/* The offsets this file writes are those of asm/bootparam.h (the
	 * setup header sits at 0x1f1 in both the image and the zero page). */
	CU_ASSERT_EQUAL(offsetof(struct boot_params, hdr.setup_sects), OFF_SETUP_SECTS);
	CU_ASSERT_EQUAL(offsetof(struct boot_params, hdr.syssize), OFF_SYSSIZE);
	CU_ASSERT_EQUAL(offsetof(struct boot_params, hdr.boot_flag), OFF_BOOT_FLAG);
	CU_ASSERT_EQUAL(offsetof(struct boot_params, hdr.header), OFF_HEADER);
	CU_ASSERT_EQUAL(offsetof(struct boot_params, hdr.version), OFF_VERSION);
	CU_ASSERT_EQUAL(offsetof(struct boot_params, hdr.loadflags), OFF_LOADFLAGS);
	CU_ASSERT_EQUAL(offsetof(struct boot_params, hdr.initrd_addr_max), OFF_INITRD_MAX);
	CU_ASSERT_EQUAL(offsetof(struct boot_params, hdr.xloadflags), OFF_XLOADFLAGS);
	CU_ASSERT_EQUAL(offsetof(struct boot_params, hdr.cmdline_size), OFF_CMDLINE_SIZE);
	CU_ASSERT_EQUAL(offsetof(struct boot_params, hdr.payload_offset), OFF_PAYLOAD_OFFSET);
	CU_ASSERT_EQUAL(offsetof(struct boot_params, hdr.pref_address), OFF_PREF_ADDRESS);
	CU_ASSERT_EQUAL(offsetof(struct boot_params, hdr.init_size), OFF_INIT_SIZE);
	CU_ASSERT_EQUAL(offsetof(struct boot_params, hdr.kernel_info_offset), OFF_KERNEL_INFO);
}

static void test_bzimage_parse(void)
{
	uint8_t buf[BUF_MAX];
	size_t len = make_bzimage(buf, 1, BZ_KERNEL);
	struct linux_image img;
	struct fv_error err;

	CU_ASSERT_EQUAL(len, 1024 + BZ_KERNEL);
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(img.kind, LINUX_IMAGE_BZIMAGE);
	CU_ASSERT_EQUAL(img.protocol, 0x020f);
	CU_ASSERT_EQUAL(img.entry, PREF + 0x200);
	CU_ASSERT_EQUAL(img.setup_size, 1024);
	CU_ASSERT_EQUAL(img.load_start, PREF);
	CU_ASSERT_EQUAL(img.load_end, PREF + INIT_SIZE);
	CU_ASSERT_EQUAL(img.initrd_addr_max, BZ_INITRD_MAX);
	CU_ASSERT_EQUAL(img.cmdline_max, BZ_CMDLINE);
	CU_ASSERT_EQUAL(img.payload_offset, BZ_PAYLOAD_OFF);
	CU_ASSERT_EQUAL(img.payload_length, BZ_PAYLOAD_LEN);
	CU_ASSERT_EQUAL_FATAL(img.nr_segments, 1);
	CU_ASSERT_EQUAL(img.seg[0].file_offset, 1024);
	CU_ASSERT_EQUAL(img.seg[0].file_size, BZ_KERNEL);
	CU_ASSERT_EQUAL(img.seg[0].gpa, PREF);
	CU_ASSERT_EQUAL(img.seg[0].mem_size, BZ_KERNEL);

	/* setup_sects 0 means 4: five sectors before the kernel */
	len = make_bzimage(buf, 0, BZ_KERNEL);
	CU_ASSERT_EQUAL(len, 2560 + BZ_KERNEL);
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(img.setup_size, 2560);
	CU_ASSERT_EQUAL(img.seg[0].file_offset, 2560);
	CU_ASSERT_EQUAL(img.seg[0].file_size, BZ_KERNEL);

	/* setup_sects 3: four sectors */
	len = make_bzimage(buf, 3, BZ_KERNEL);
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(img.setup_size, 2048);
	CU_ASSERT_EQUAL(img.seg[0].file_offset, 2048);
}

static void test_bzimage_load_end(void)
{
	uint8_t buf[BUF_MAX];
	size_t len = make_bzimage(buf, 1, BZ_KERNEL);
	struct linux_image img;
	struct fv_error err;

	/* init_size smaller than the file's kernel: the kernel's size counts */
	put32(buf + OFF_INIT_SIZE, 0x10);
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(img.load_end, PREF + BZ_KERNEL);
	/* a larger one sets the end */
	put32(buf + OFF_INIT_SIZE, 0x123000);
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(img.load_end, PREF + 0x123000);
	/* a command line limit above foldvm's is clamped */
	put32(buf + OFF_CMDLINE_SIZE, 0x100000);
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(img.cmdline_max, LINUX_CMDLINE_MAX);
	/* protocol 2.12 (the first with XLF_KERNEL_64) is accepted */
	put16(buf + OFF_VERSION, 0x020c);
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(img.protocol, 0x020c);
	/* a preferred address elsewhere moves the entry with it */
	put64(buf + OFF_PREF_ADDRESS, 0x200000);
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(img.entry, 0x200200);
	CU_ASSERT_EQUAL(img.seg[0].gpa, 0x200000);
	/* a payload that ends exactly at the kernel's end is inside it */
	put32(buf + OFF_PAYLOAD_OFFSET, 0x200);
	put32(buf + OFF_PAYLOAD_LENGTH, BZ_KERNEL - 0x200);
	CU_ASSERT_TRUE(parses_ok(buf, len));
}

static void test_bzimage_truncated(void)
{
	uint8_t buf[BUF_MAX];
	size_t len = make_bzimage(buf, 1, BZ_KERNEL);

	CHECK_REJECT(buf, 0, "too short");
	CHECK_REJECT(buf, 10, "too short");
	CHECK_REJECT(buf, 0x205, "too short");
	/* "HdrS" but not the version after it (read out of bounds once) */
	CHECK_REJECT(buf, 0x206, "setup header truncated");
	CHECK_REJECT(buf, 0x207, "setup header truncated");
	/* the header itself cut short */
	CHECK_REJECT(buf, 0x240, "ends at 0x268: truncated");
	CHECK_REJECT(buf, OFF_KERNEL_INFO - 1, "truncated");
	/* the whole header, but not past the setup code */
	CHECK_REJECT(buf, 1023, "setup code takes 1024 bytes, the file has 1023");
	CHECK_REJECT(buf, 1024, "setup code takes 1024 bytes");
	/* setup_sects 0 means four sectors, so 2560 bytes of setup */
	len = make_bzimage(buf, 0, BZ_KERNEL);
	CHECK_REJECT(buf, 2559, "setup code takes 2560 bytes");
	/* a kernel too short for its own entry point */
	len = make_bzimage(buf, 1, BZ_KERNEL);
	put32(buf + OFF_SYSSIZE, 0);
	put32(buf + OFF_PAYLOAD_OFFSET, 0);
	put32(buf + OFF_PAYLOAD_LENGTH, 0);
	CHECK_REJECT(buf, 1024 + 0x200, "too short to hold its 64-bit entry point");
	CU_ASSERT_EQUAL(make_bzimage(buf, 1, BZ_KERNEL), len);
	/* syssize (16-byte units) beyond the file */
	put32(buf + OFF_SYSSIZE, BZ_KERNEL / 16 + 1);
	CHECK_REJECT(buf, len, "kernel has 1040 bytes, the file holds 1024");
	/* the same file cut by one byte */
	make_bzimage(buf, 1, BZ_KERNEL);
	CHECK_REJECT(buf, len - 1, "the file holds 1023");
	/* a header that claims to end before the fields we read */
	make_bzimage(buf, 1, BZ_KERNEL);
	buf[OFF_JUMP + 1] = 0x40;
	CHECK_REJECT(buf, len, "ends at 0x242: truncated or corrupt");
}

static void test_bzimage_rejected(void)
{
	uint8_t buf[BUF_MAX];
	size_t len = make_bzimage(buf, 1, BZ_KERNEL);

	/* neither ELF nor HdrS */
	memcpy(buf + OFF_HEADER, "HdrX", 4);
	CHECK_REJECT(buf, len, "no ELF magic and no bzImage 'HdrS'");
	memcpy(buf, "\177ELG", 4);
	CHECK_REJECT(buf, len, "no ELF magic");

	make_bzimage(buf, 1, BZ_KERNEL);
	put16(buf + OFF_BOOT_FLAG, 0x1234);
	CHECK_REJECT(buf, len, "boot flag is 0x1234, not 0xaa55");

	make_bzimage(buf, 1, BZ_KERNEL);
	put16(buf + OFF_VERSION, 0x020b);
	CHECK_REJECT(buf, len, "protocol 2.11 is older than 2.12");
	put16(buf + OFF_VERSION, 0x0200);
	CHECK_REJECT(buf, len, "protocol 2.00 is older");

	make_bzimage(buf, 1, BZ_KERNEL);
	put16(buf + OFF_XLOADFLAGS, 0x0002);
	CHECK_REJECT(buf, len, "no 64-bit entry point (xloadflags 0x0002)");

	make_bzimage(buf, 1, BZ_KERNEL);
	buf[OFF_LOADFLAGS] = 0;
	CHECK_REJECT(buf, len, "zImage");

	make_bzimage(buf, 1, BZ_KERNEL);
	put32(buf + OFF_PAYLOAD_OFFSET, 0x300);
	put32(buf + OFF_PAYLOAD_LENGTH, 0x101);
	CHECK_REJECT(buf, len, "payload (offset 768, 257 bytes) lies outside its 1024-byte kernel");
	put32(buf + OFF_PAYLOAD_OFFSET, BZ_KERNEL + 1);
	put32(buf + OFF_PAYLOAD_LENGTH, 0);
	CHECK_REJECT(buf, len, "lies outside");
	/* offset + length wraps 32 bits */
	put32(buf + OFF_PAYLOAD_OFFSET, 0x10);
	put32(buf + OFF_PAYLOAD_LENGTH, 0xfffffff8);
	CHECK_REJECT(buf, len, "lies outside");

	make_bzimage(buf, 1, BZ_KERNEL);
	put64(buf + OFF_PREF_ADDRESS, 0xff000);
	CHECK_REJECT(buf, len, "0xff000 is below 1 MiB");
	put64(buf + OFF_PREF_ADDRESS, 0);
	CHECK_REJECT(buf, len, "below 1 MiB");
	put64(buf + OFF_PREF_ADDRESS, PREF + 0x800);
	CHECK_REJECT(buf, len, "not page-aligned");
	/* beyond low RAM (the 32-bit hole, and high RAM, where no kernel
	 * loads), including addresses near 2^64 whose end would wrap around */
	put64(buf + OFF_PREF_ADDRESS, LINUX_LOW_MEM_END);
	CHECK_REJECT(buf, len, "beyond the 3072 MiB of RAM below the 32-bit hole");
	put64(buf + OFF_PREF_ADDRESS, LINUX_LOW_MEM_END - INIT_SIZE + 0x1000);
	CHECK_REJECT(buf, len, "beyond the 3072 MiB");
	put64(buf + OFF_PREF_ADDRESS, GMEM_HIGH_START);
	CHECK_REJECT(buf, len, "beyond the 3072 MiB");
	put64(buf + OFF_PREF_ADDRESS, 0xfffffffffffff000ull);
	CHECK_REJECT(buf, len, "beyond the 3072 MiB");
	put64(buf + OFF_PREF_ADDRESS, LINUX_LOW_MEM_END - INIT_SIZE);
	CU_ASSERT_TRUE(parses_ok(buf, len)); /* fits exactly */
}

static void test_elf_parse(void)
{
	uint8_t buf[BUF_MAX];
	size_t len = make_elf(buf, 0);
	struct linux_image img;
	struct fv_error err;

	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(img.kind, LINUX_IMAGE_ELF);
	CU_ASSERT_EQUAL(img.protocol, 0);
	CU_ASSERT_EQUAL(img.entry, PREF + 0x10);
	CU_ASSERT_EQUAL(img.load_start, PREF);
	CU_ASSERT_EQUAL(img.load_end, ELF_SEG1_GPA + ELF_BSS);
	CU_ASSERT_EQUAL(img.cmdline_max, 2047);
	CU_ASSERT_EQUAL(img.initrd_addr_max, 0x37ffffff);
	CU_ASSERT_EQUAL_FATAL(img.nr_segments, 2); /* the PT_NOTE is skipped */
	CU_ASSERT_EQUAL(img.seg[0].file_offset, 0x200);
	CU_ASSERT_EQUAL(img.seg[0].file_size, 0x100);
	CU_ASSERT_EQUAL(img.seg[0].gpa, PREF);
	CU_ASSERT_EQUAL(img.seg[0].mem_size, 0x100);
	CU_ASSERT_EQUAL(img.seg[1].file_offset, 0x300);
	CU_ASSERT_EQUAL(img.seg[1].file_size, 0x80);
	CU_ASSERT_EQUAL(img.seg[1].gpa, ELF_SEG1_GPA);
	CU_ASSERT_EQUAL(img.seg[1].mem_size, ELF_BSS); /* bss: memsz > filesz */
}

static void test_elf_entry(void)
{
	uint8_t buf[BUF_MAX];
	size_t len = make_elf(buf, 1);
	struct linux_image img;
	struct fv_error err;
	Elf64_Ehdr eh;
	Elf64_Phdr ph;

	/* a virtual entry is translated through its segment */
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(img.entry, PREF + 0x10);
	/* ... also when it lies in the second segment's bss */
	elf_get_eh(buf, &eh);
	eh.e_entry = VIRT_BASE + 0x200000 + 0x800;
	elf_set_eh(buf, &eh);
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(img.entry, ELF_SEG1_GPA + 0x800);
	/* the last byte of a segment is in it, one past is not */
	eh.e_entry = VIRT_BASE + 0xff;
	elf_set_eh(buf, &eh);
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(img.entry, PREF + 0xff);
	eh.e_entry = VIRT_BASE + 0x100;
	elf_set_eh(buf, &eh);
	CHECK_REJECT(buf, len, "entry point 0xffffffff81000100 is in no loadable segment");
	/* physical, but outside every segment */
	eh.e_entry = 0x5000000;
	elf_set_eh(buf, &eh);
	CHECK_REJECT(buf, len, "entry point 0x5000000 is in no loadable segment");
	/* inside the PT_NOTE only: not loadable */
	eh.e_entry = 0x8;
	elf_set_eh(buf, &eh);
	CHECK_REJECT(buf, len, "in no loadable segment");
	/* a PT_LOAD of memsz 0 below 1 MiB is ignored, not refused */
	make_elf(buf, 0);
	elf_get_ph(buf, 1, &ph);
	ph.p_type = PT_LOAD;
	ph.p_memsz = 0;
	ph.p_filesz = 0;
	elf_set_ph(buf, 1, &ph);
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(img.nr_segments, 2);
}

static void test_elf_header_rejected(void)
{
	uint8_t buf[BUF_MAX];
	size_t len = make_elf(buf, 0);
	Elf64_Ehdr eh;

	CHECK_REJECT(buf, 40, "ELF kernel truncated: 40 bytes");
	CHECK_REJECT(buf, sizeof(Elf64_Ehdr) - 1, "ELF header alone is 64");

	buf[EI_CLASS] = ELFCLASS32;
	CHECK_REJECT(buf, len, "ELF class 1: only 64-bit");
	make_elf(buf, 0);
	buf[EI_DATA] = ELFDATA2MSB;
	CHECK_REJECT(buf, len, "not little-endian");

	make_elf(buf, 0);
	elf_get_eh(buf, &eh);
	eh.e_machine = EM_386;
	elf_set_eh(buf, &eh);
	CHECK_REJECT(buf, len, "machine 3, not x86-64 (62)");

	make_elf(buf, 0);
	elf_get_eh(buf, &eh);
	eh.e_type = ET_DYN;
	elf_set_eh(buf, &eh);
	CHECK_REJECT(buf, len, "ELF type 3: a vmlinux is an executable");
	eh.e_type = ET_REL;
	elf_set_eh(buf, &eh);
	CHECK_REJECT(buf, len, "ELF type 1");

	make_elf(buf, 0);
	elf_get_eh(buf, &eh);
	eh.e_phentsize = sizeof(Elf32_Phdr);
	elf_set_eh(buf, &eh);
	CHECK_REJECT(buf, len, "program headers: 3 of 32 bytes");
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = 0;
	elf_set_eh(buf, &eh);
	CHECK_REJECT(buf, len, "program headers: 0 of 56 bytes");
	eh.e_phnum = 65;
	elf_set_eh(buf, &eh);
	CHECK_REJECT(buf, len, "program headers: 65 of 56 bytes");
	eh.e_phnum = 0xffff;
	elf_set_eh(buf, &eh);
	CHECK_REJECT(buf, len, "program headers: 65535");

	/* program headers past the end of the file */
	make_elf(buf, 0);
	elf_get_eh(buf, &eh);
	eh.e_phoff = len - 2 * sizeof(Elf64_Phdr);
	elf_set_eh(buf, &eh);
	CHECK_REJECT(buf, len, "run past the end of the 1024-byte file");
	eh.e_phoff = UINT64_MAX - 8; /* offset + size wraps */
	elf_set_eh(buf, &eh);
	CHECK_REJECT(buf, len, "run past the end");
	/* in the file as given, but cut short */
	make_elf(buf, 0);
	CHECK_REJECT(buf, sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr), "run past the end of the 176-byte file");
}

static void test_elf_segment_rejected(void)
{
	uint8_t buf[BUF_MAX];
	size_t len = make_elf(buf, 0);
	Elf64_Phdr ph;

	/* the data segment's file bytes run past the end of the file */
	elf_get_ph(buf, 2, &ph);
	ph.p_offset = len - 0x10;
	elf_set_ph(buf, 2, &ph);
	CHECK_REJECT(buf, len, "segment 2 (offset 1008, 128 bytes) runs past the end of the 1024-byte file");
	ph.p_offset = UINT64_MAX - 0x10;
	elf_set_ph(buf, 2, &ph);
	CHECK_REJECT(buf, len, "runs past the end");
	/* ... or the file was cut short */
	make_elf(buf, 0);
	CHECK_REJECT(buf, 0x37f, "segment 2 (offset 768, 128 bytes) runs past the end of the 895-byte file");

	make_elf(buf, 0);
	elf_get_ph(buf, 0, &ph);
	ph.p_memsz = ph.p_filesz - 1;
	elf_set_ph(buf, 0, &ph);
	CHECK_REJECT(buf, len, "segment 0 has more file bytes (256) than memory (255)");

	make_elf(buf, 0);
	elf_get_ph(buf, 0, &ph);
	ph.p_paddr = 0xff000;
	elf_set_ph(buf, 0, &ph);
	CHECK_REJECT(buf, len, "segment 0 loads at 0xff000, below 1 MiB");

	make_elf(buf, 0);
	elf_get_ph(buf, 2, &ph);
	ph.p_paddr = LINUX_LOW_MEM_END - 0x800;
	elf_set_ph(buf, 2, &ph);
	CHECK_REJECT(buf, len, "segment 2 (0xbffff800 + 4096 bytes) ends beyond the 3072 MiB of RAM below the 32-bit hole");
	ph.p_paddr = GMEM_HIGH_START; /* high RAM: no kernel loads there */
	elf_set_ph(buf, 2, &ph);
	CHECK_REJECT(buf, len, "ends beyond the 3072 MiB");
	ph.p_paddr = UINT64_MAX - 0x800; /* paddr + memsz wraps */
	elf_set_ph(buf, 2, &ph);
	CHECK_REJECT(buf, len, "ends beyond the 3072 MiB");
	ph.p_paddr = LINUX_LOW_MEM_END - ELF_BSS; /* ends exactly at the limit */
	elf_set_ph(buf, 2, &ph);
	CU_ASSERT_TRUE(parses_ok(buf, len));

	/* no PT_LOAD at all, and PT_LOADs that load nothing */
	make_elf(buf, 0);
	elf_get_ph(buf, 0, &ph);
	ph.p_type = PT_NOTE;
	elf_set_ph(buf, 0, &ph);
	elf_get_ph(buf, 2, &ph);
	ph.p_type = PT_DYNAMIC;
	elf_set_ph(buf, 2, &ph);
	CHECK_REJECT(buf, len, "no loadable segment");
	make_elf(buf, 0);
	for (unsigned i = 0; i < 3; i += 2) {
		elf_get_ph(buf, i, &ph);
		ph.p_filesz = ph.p_memsz = 0;
		elf_set_ph(buf, i, &ph);
	}
	CHECK_REJECT(buf, len, "no loadable segment");
}

/* An ELF with n PT_LOAD segments of one page each. */
static size_t make_elf_segments(uint8_t *buf, unsigned n)
{
	Elf64_Ehdr eh = { 0 };
	size_t len = sizeof(eh) + n * sizeof(Elf64_Phdr);

	memset(buf, 0, len);
	elf_ident(&eh);
	eh.e_entry = PREF;
	eh.e_phnum = (Elf64_Half)n;
	elf_set_eh(buf, &eh);
	for (unsigned i = 0; i < n; i++) {
		Elf64_Phdr ph = {
			.p_type = PT_LOAD, .p_flags = PF_R,
			.p_vaddr = PREF + i * 0x1000ull, .p_paddr = PREF + i * 0x1000ull,
			.p_memsz = 0x1000,
		};

		elf_set_ph(buf, i, &ph);
	}
	return len;
}

static void test_elf_many_segments(void)
{
	uint8_t buf[BUF_MAX];
	struct linux_image img;
	struct fv_error err;
	size_t len = make_elf_segments(buf, LINUX_MAX_SEGMENTS);

	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(img.nr_segments, LINUX_MAX_SEGMENTS);
	CU_ASSERT_EQUAL(img.load_start, PREF);
	CU_ASSERT_EQUAL(img.load_end, PREF + LINUX_MAX_SEGMENTS * 0x1000ull);
	CU_ASSERT_EQUAL(img.seg[LINUX_MAX_SEGMENTS - 1].gpa,
			PREF + (LINUX_MAX_SEGMENTS - 1) * 0x1000ull);

	len = make_elf_segments(buf, LINUX_MAX_SEGMENTS + 1);
	CHECK_REJECT(buf, len, "more than 16 loadable segments");
	/* the largest program header table, all loadable */
	len = make_elf_segments(buf, 64);
	CHECK_REJECT(buf, len, "more than 16 loadable segments");
}

static void test_check_fit(void)
{
	uint8_t buf[BUF_MAX];
	size_t len = make_bzimage(buf, 1, BZ_KERNEL);
	struct linux_image img;
	struct fv_error err;

	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	/* load_end is PREF + INIT_SIZE = 48 MiB */
	CU_ASSERT_EQUAL(linux_image_check_fit(&img, 48 * MiB, &err), 0);
	CU_ASSERT_EQUAL(linux_image_check_fit(&img, 256 * MiB, &err), 0);
	CU_ASSERT_EQUAL(linux_image_check_fit(&img, LINUX_LOW_MEM_END, &err), 0);
	CU_ASSERT_EQUAL(linux_image_check_fit(&img, 5 * GiB, &err), 0);
	CU_ASSERT_EQUAL(linux_image_check_fit(&img, LINUX_MEM_MAX, &err), 0);

	CU_ASSERT_EQUAL(linux_image_check_fit(&img, 48 * MiB - 4096, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	CU_ASSERT_TRUE(msg_has(&err, "kernel too large: it needs memory up to 0x3000000 (48.0 MiB)"));
	CU_ASSERT_EQUAL(linux_image_check_fit(&img, LINUX_MEM_MIN, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	CU_ASSERT_TRUE(msg_has(&err, "the guest has 16.0 MiB"));

	CU_ASSERT_EQUAL(linux_image_check_fit(&img, LINUX_MEM_MIN - 4096, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	CU_ASSERT_TRUE(msg_has(&err, "needs 16 MiB to 65536 MiB of memory"));
	CU_ASSERT_EQUAL(linux_image_check_fit(&img, 0, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	CU_ASSERT_EQUAL(linux_image_check_fit(&img, LINUX_MEM_MAX + 4096, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	CU_ASSERT_TRUE(msg_has(&err, "65536 MiB of memory, not 65536.0 MiB"));
	CU_ASSERT_EQUAL(linux_image_check_fit(&img, UINT64_MAX, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);

	/* the ELF ends at PREF + 2 MiB + 4 KiB */
	len = make_elf(buf, 0);
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(linux_image_check_fit(&img, LINUX_MEM_MIN, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	CU_ASSERT_EQUAL(linux_image_check_fit(&img, 20 * MiB, &err), 0);
}

static void test_initrd_place(void)
{
	uint8_t buf[BUF_MAX];
	size_t len = make_bzimage(buf, 1, BZ_KERNEL);
	struct linux_image img;
	struct fv_error err;
	uint64_t gpa, mem = 256 * MiB;

	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	/* as high as RAM allows, page-aligned */
	CU_ASSERT_EQUAL(linux_initrd_place(&img, mem, 0x12345, &gpa, &err), 0);
	CU_ASSERT_EQUAL(gpa, (mem - 0x12345) & ~0xfffull);
	CU_ASSERT_EQUAL(gpa, 0xffed000);
	CU_ASSERT_TRUE(gpa + 0x12345 <= mem);
	CU_ASSERT_TRUE(gpa + 0x12345 + 4096 > mem); /* the highest such page */
	CU_ASSERT_EQUAL(linux_initrd_place(&img, mem, 4096, &gpa, &err), 0);
	CU_ASSERT_EQUAL(gpa, mem - 4096);
	CU_ASSERT_EQUAL(linux_initrd_place(&img, mem, 1, &gpa, &err), 0);
	CU_ASSERT_EQUAL(gpa, mem - 4096);

	/* RAM above initrd_addr_max is not used */
	put32(buf + OFF_INITRD_MAX, 0x37ffffff);
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(linux_initrd_place(&img, 2048 * MiB, 0x12345, &gpa, &err), 0);
	CU_ASSERT_EQUAL(gpa, (0x38000000 - 0x12345) & ~0xfffull);
	CU_ASSERT_TRUE(gpa + 0x12345 - 1 <= 0x37ffffff);
	/* below that limit RAM is the bound */
	CU_ASSERT_EQUAL(linux_initrd_place(&img, 512 * MiB, 0x12345, &gpa, &err), 0);
	CU_ASSERT_EQUAL(gpa, (512 * MiB - 0x12345) & ~0xfffull);

	/* the kernel ends at 48 MiB: 16 MiB fit in 64 MiB, one byte more not */
	CU_ASSERT_EQUAL(linux_initrd_place(&img, 64 * MiB, 16 * MiB, &gpa, &err), 0);
	CU_ASSERT_EQUAL(gpa, 48 * MiB);
	CU_ASSERT_EQUAL(linux_initrd_place(&img, 64 * MiB, 16 * MiB + 1, &gpa, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	CU_ASSERT_TRUE(msg_has(&err, "does not fit between the kernel's end (0x3000000) and 0x4000000"));
	/* bigger than memory */
	gpa = 0x1234;
	CU_ASSERT_EQUAL(linux_initrd_place(&img, 64 * MiB, 4096 * MiB, &gpa, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	CU_ASSERT_TRUE(msg_has(&err, "initrd of 4096.0 MiB does not fit"));
	CU_ASSERT_EQUAL(gpa, 0x1234); /* untouched on failure */
	CU_ASSERT_EQUAL(linux_initrd_place(&img, 64 * MiB, UINT64_MAX, &gpa, &err), -1);
	/* empty */
	CU_ASSERT_EQUAL(linux_initrd_place(&img, 64 * MiB, 0, &gpa, &err), -1);
	/* an initrd limit at the kernel's end leaves no room at all */
	put32(buf + OFF_INITRD_MAX, (uint32_t)(48 * MiB - 1));
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(linux_initrd_place(&img, 256 * MiB, 1, &gpa, &err), -1);
	CU_ASSERT_TRUE(msg_has(&err, "and 0x3000000"));

	/* a guest above 3 GiB: the initrd stays below the 32-bit hole even
	 * when the kernel would take it anywhere below 4 GiB */
	put32(buf + OFF_INITRD_MAX, 0xffffffffu);
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(linux_initrd_place(&img, 5 * GiB, 0x12345, &gpa, &err), 0);
	CU_ASSERT_EQUAL(gpa, (3 * GiB - 0x12345) & ~0xfffull);
	CU_ASSERT_EQUAL(linux_initrd_place(&img, LINUX_MEM_MAX, 4096, &gpa, &err), 0);
	CU_ASSERT_EQUAL(gpa, 3 * GiB - 4096);
	CU_ASSERT_EQUAL(linux_initrd_place(&img, 3 * GiB + 4096, 4096, &gpa, &err), 0);
	CU_ASSERT_EQUAL(gpa, 3 * GiB - 4096);
	CU_ASSERT_EQUAL(linux_initrd_place(&img, 2 * GiB, 4096, &gpa, &err), 0);
	CU_ASSERT_EQUAL(gpa, 2 * GiB - 4096);
	/* and its own limit still holds */
	put32(buf + OFF_INITRD_MAX, BZ_INITRD_MAX);
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(linux_initrd_place(&img, 5 * GiB, 4096, &gpa, &err), 0);
	CU_ASSERT_EQUAL(gpa, 2 * GiB - 4096);
	/* too big for the RAM below the hole, however big the guest */
	CU_ASSERT_EQUAL(linux_initrd_place(&img, 16 * GiB, 3 * GiB, &gpa, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	CU_ASSERT_TRUE(msg_has(&err, "below the 32-bit hole"));

	/* an ELF ends at PREF + 2 MiB + 4 KiB: page-rounded floor */
	len = make_elf(buf, 0);
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(linux_initrd_place(&img, 32 * MiB, 14 * MiB - 4096, &gpa, &err), 0);
	CU_ASSERT_EQUAL(gpa, ELF_SEG1_GPA + ELF_BSS);
	CU_ASSERT_EQUAL(linux_initrd_place(&img, 32 * MiB, 14 * MiB - 4095, &gpa, &err), -1);
}

static void test_e820(void)
{
	struct boot_e820_entry e[8];
	uint64_t mem = 256 * MiB, ram = 0, total = 0;
	unsigned n;

	memset(e, 0xee, sizeof(e));
	n = linux_e820_build(mem, e, 8);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT_EQUAL(e[0].addr, 0);
	CU_ASSERT_EQUAL(e[0].size, LINUX_EBDA_GPA);
	CU_ASSERT_EQUAL(e[0].type, 1);
	CU_ASSERT_EQUAL(e[1].addr, LINUX_EBDA_GPA);
	CU_ASSERT_EQUAL(e[1].size, LINUX_HIGH_GPA - LINUX_EBDA_GPA);
	CU_ASSERT_EQUAL(e[1].type, 2);
	CU_ASSERT_EQUAL(e[2].addr, LINUX_HIGH_GPA);
	CU_ASSERT_EQUAL(e[2].size, mem - LINUX_HIGH_GPA);
	CU_ASSERT_EQUAL(e[2].type, 1);
	for (unsigned i = 0; i < n; i++) {
		total += e[i].size;
		if (e[i].type == 1)
			ram += e[i].size;
		if (i > 0)
			CU_ASSERT_EQUAL(e[i].addr, e[i - 1].addr + e[i - 1].size);
	}
	CU_ASSERT_EQUAL(ram, mem - (LINUX_HIGH_GPA - LINUX_EBDA_GPA));
	CU_ASSERT_EQUAL(total, mem);
	CU_ASSERT_EQUAL(e[3].addr, 0xeeeeeeeeeeeeeeeeull); /* nothing past n */

	/* at most max entries */
	memset(e, 0xee, sizeof(e));
	CU_ASSERT_EQUAL(linux_e820_build(mem, e, 2), 2);
	CU_ASSERT_EQUAL(e[1].type, 2);
	CU_ASSERT_EQUAL(e[2].type, 0xeeeeeeee);
	CU_ASSERT_EQUAL(linux_e820_build(mem, e, 0), 0);
	/* no high RAM, no map */
	CU_ASSERT_EQUAL(linux_e820_build(LINUX_HIGH_GPA, e, 8), 0);
	n = linux_e820_build(LINUX_MEM_MAX, e, 8);
	CU_ASSERT_EQUAL(n, 4);
	CU_ASSERT_EQUAL(e[2].addr + e[2].size, GMEM_HOLE_START);
	CU_ASSERT_EQUAL(e[3].addr, GMEM_HIGH_START);
	CU_ASSERT_EQUAL(e[3].addr + e[3].size, LINUX_MEM_MAX + GiB);
}

/* The e820 map (the one a guest of mem bytes gets) against the RAM ranges
 * of the guest-memory layout: every RAM byte once, the legacy hole
 * reserved, nothing in the 32-bit hole. */
static void check_e820(uint64_t mem, unsigned want_n)
{
	struct boot_e820_entry e[8];
	struct gmem_range r[GMEM_MAX_RANGES];
	unsigned n = linux_e820_build(mem, e, 8), nr;
	uint64_t ram = 0;

	nr = gmem_layout_ranges(GMEM_LAYOUT_PC, mem, r);
	CU_ASSERT_EQUAL_FATAL(n, want_n);
	CU_ASSERT_EQUAL(nr, want_n - 2);
	CU_ASSERT_EQUAL(e[0].addr, 0);
	CU_ASSERT_EQUAL(e[0].size, LINUX_EBDA_GPA);
	CU_ASSERT_EQUAL(e[0].type, 1);
	CU_ASSERT_EQUAL(e[1].addr, LINUX_EBDA_GPA);
	CU_ASSERT_EQUAL(e[1].addr + e[1].size, LINUX_HIGH_GPA);
	CU_ASSERT_EQUAL(e[1].type, 2);
	CU_ASSERT_EQUAL(e[2].addr, LINUX_HIGH_GPA);
	CU_ASSERT_EQUAL(e[2].addr + e[2].size, r[0].size);
	CU_ASSERT_EQUAL(e[2].type, 1);
	CU_ASSERT_TRUE(e[2].addr + e[2].size <= GMEM_HOLE_START);
	for (unsigned i = 0; i < n; i++) {
		if (e[i].type == 1)
			ram += e[i].size;
		/* nothing reaches into the hole */
		CU_ASSERT_TRUE(e[i].addr + e[i].size <= GMEM_HOLE_START ||
			       e[i].addr >= GMEM_HIGH_START);
		if (i > 0) /* sorted, no overlap */
			CU_ASSERT_TRUE(e[i].addr >= e[i - 1].addr + e[i - 1].size);
	}
	/* all RAM but the legacy hole */
	CU_ASSERT_EQUAL(ram, mem - (LINUX_HIGH_GPA - LINUX_EBDA_GPA));
	if (want_n == 4) {
		CU_ASSERT_EQUAL(e[3].addr, GMEM_HIGH_START);
		CU_ASSERT_EQUAL(e[3].size, mem - GMEM_HOLE_START);
		CU_ASSERT_EQUAL(e[3].type, 1);
		CU_ASSERT_EQUAL(r[1].gpa, e[3].addr);
		CU_ASSERT_EQUAL(r[1].size, e[3].size);
		CU_ASSERT_EQUAL(r[1].page, GMEM_HOLE_START / 4096);
	}
}

static void test_e820_high(void)
{
	struct boot_e820_entry e[8];

	check_e820(2 * GiB, 3);
	check_e820(3 * GiB, 3);          /* all of it below the hole */
	check_e820(3 * GiB + 4096, 4);   /* one page from 4 GiB */
	check_e820(5 * GiB, 4);
	check_e820(LINUX_MEM_MAX, 4);
	/* 5 GiB: RAM [4 GiB, 6 GiB) above the hole */
	CU_ASSERT_EQUAL(linux_e820_build(5 * GiB, e, 8), 4);
	CU_ASSERT_EQUAL(e[3].addr, 0x100000000ull);
	CU_ASSERT_EQUAL(e[3].size, 0x80000000ull);
	CU_ASSERT_EQUAL(e[2].addr + e[2].size, 0xc0000000ull);
	/* bounded by max: the high entry is the one left off */
	memset(e, 0xee, sizeof(e));
	CU_ASSERT_EQUAL(linux_e820_build(5 * GiB, e, 3), 3);
	CU_ASSERT_EQUAL(e[3].type, 0xeeeeeeee);
}

static void test_zero_page_bzimage(void)
{
	uint8_t buf[BUF_MAX];
	size_t len = make_bzimage(buf, 1, BZ_KERNEL);
	struct linux_image img;
	struct fv_error err;
	struct boot_params *bp = malloc(sizeof(*bp));
	uint64_t initrd = 0x123456000ull, mem = 64 * MiB;

	CU_ASSERT_PTR_NOT_NULL_FATAL(bp);
	buf[OFF_KERNEL_INFO] = 0x77; /* past the header: must not be copied */
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	memset(bp, 0xcc, sizeof(*bp));
	CU_ASSERT_EQUAL_FATAL(linux_zero_page_build(bp, &img, buf, len, mem,
						    LINUX_CMDLINE_GPA, 10, initrd,
						    0x100000042ull, &err), 0);
	/* the image's header, as it is */
	CU_ASSERT_EQUAL(bp->hdr.setup_sects, 1);
	CU_ASSERT_EQUAL(bp->hdr.syssize, BZ_KERNEL / 16);
	CU_ASSERT_EQUAL(bp->hdr.boot_flag, 0xaa55);
	CU_ASSERT_EQUAL(bp->hdr.jump, 0x66eb);
	CU_ASSERT_EQUAL(bp->hdr.header, 0x53726448);
	CU_ASSERT_EQUAL(bp->hdr.version, 0x020f);
	CU_ASSERT_EQUAL(bp->hdr.loadflags, LOADED_HIGH);
	CU_ASSERT_EQUAL(bp->hdr.xloadflags, XLF_KERNEL_64);
	CU_ASSERT_EQUAL(bp->hdr.kernel_alignment, 0x200000);
	CU_ASSERT_EQUAL(bp->hdr.initrd_addr_max, BZ_INITRD_MAX);
	CU_ASSERT_EQUAL(bp->hdr.cmdline_size, BZ_CMDLINE);
	CU_ASSERT_EQUAL(bp->hdr.payload_offset, BZ_PAYLOAD_OFF);
	CU_ASSERT_EQUAL(bp->hdr.pref_address, PREF);
	CU_ASSERT_EQUAL(bp->hdr.init_size, INIT_SIZE);
	CU_ASSERT_EQUAL(bp->hdr.kernel_info_offset, 0);
	/* everything else zero, not left over */
	CU_ASSERT_EQUAL(bp->screen_info.orig_video_mode, 0);
	CU_ASSERT_EQUAL(bp->acpi_rsdp_addr, 0);
	CU_ASSERT_EQUAL(bp->e820_table[3].addr, 0);
	CU_ASSERT_EQUAL(((uint8_t *)bp)[sizeof(*bp) - 1], 0);
	/* what the loader says */
	CU_ASSERT_EQUAL(bp->hdr.type_of_loader, 0xff);
	CU_ASSERT_EQUAL(bp->hdr.cmd_line_ptr, LINUX_CMDLINE_GPA);
	CU_ASSERT_EQUAL(bp->ext_cmd_line_ptr, 0);
	CU_ASSERT_EQUAL(bp->hdr.ramdisk_image, 0x23456000u);
	CU_ASSERT_EQUAL(bp->ext_ramdisk_image, 1);
	CU_ASSERT_EQUAL(bp->hdr.ramdisk_size, 0x42);
	CU_ASSERT_EQUAL(bp->ext_ramdisk_size, 1);
	CU_ASSERT_EQUAL_FATAL(bp->e820_entries, 3);
	CU_ASSERT_EQUAL(bp->e820_table[0].size, LINUX_EBDA_GPA);
	CU_ASSERT_EQUAL(bp->e820_table[1].type, 2);
	CU_ASSERT_EQUAL(bp->e820_table[2].size, mem - LINUX_HIGH_GPA);

	/* the command line limit is the image's */
	CU_ASSERT_EQUAL(linux_zero_page_build(bp, &img, buf, len, mem, LINUX_CMDLINE_GPA,
					      BZ_CMDLINE, 0, 0, &err), 0);
	CU_ASSERT_EQUAL(bp->hdr.ramdisk_image, 0);
	CU_ASSERT_EQUAL(bp->hdr.ramdisk_size, 0);
	CU_ASSERT_EQUAL(linux_zero_page_build(bp, &img, buf, len, mem, LINUX_CMDLINE_GPA,
					      BZ_CMDLINE + 1, 0, 0, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	CU_ASSERT_TRUE(msg_has(&err, "command line is 256 bytes; this kernel takes at most 255"));

	/* a buffer shorter than the header it claims */
	CU_ASSERT_EQUAL(linux_zero_page_build(bp, &img, buf, 0x260, mem, LINUX_CMDLINE_GPA,
					      0, 0, 0, &err), -1);
	CU_ASSERT_TRUE(msg_has(&err, "setup header truncated"));

	/* a header longer than struct setup_header is cut at its end */
	buf[OFF_JUMP + 1] = 0xff;
	buf[offsetof(struct boot_params, hdr) + sizeof(bp->hdr)] = 0x99;
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	CU_ASSERT_EQUAL(linux_zero_page_build(bp, &img, buf, len, mem, LINUX_CMDLINE_GPA,
					      0, 0, 0, &err), 0);
	CU_ASSERT_EQUAL(bp->hdr.kernel_info_offset, 0x77);
	CU_ASSERT_EQUAL(bp->hdr.version, 0x020f);
	CU_ASSERT_EQUAL(((uint8_t *)bp)[offsetof(struct boot_params, hdr) + sizeof(bp->hdr)], 0);
	free(bp);
}

/* A buffer that ends before the header's length byte (0x201): it sits
 * right before a PROT_NONE page, so reading that byte would fault. */
static void test_zero_page_short(void)
{
	uint8_t buf[BUF_MAX], *area, *end;
	size_t len = make_bzimage(buf, 1, BZ_KERNEL);
	struct linux_image img;
	struct fv_error err;
	struct boot_params *bp = malloc(sizeof(*bp));

	CU_ASSERT_PTR_NOT_NULL_FATAL(bp);
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	area = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_FATAL(area != MAP_FAILED);
	CU_ASSERT_EQUAL_FATAL(mprotect(area + 4096, 4096, PROT_NONE), 0);
	end = area + 4096;
	for (size_t n = 0; n <= OFF_JUMP + 1; n += OFF_JUMP / 4) {
		memcpy(end - n, buf, n);
		CU_ASSERT_EQUAL(linux_zero_page_build(bp, &img, end - n, n, 64 * MiB,
						      LINUX_CMDLINE_GPA, 0, 0, 0, &err), -1);
		CU_ASSERT_TRUE(msg_has(&err, "setup header truncated"));
	}
	munmap(area, 2 * 4096);
	free(bp);
}

static void test_zero_page_elf(void)
{
	uint8_t buf[BUF_MAX];
	size_t len = make_elf(buf, 0);
	struct linux_image img;
	struct fv_error err;
	struct boot_params *bp = malloc(sizeof(*bp));

	CU_ASSERT_PTR_NOT_NULL_FATAL(bp);
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	memset(bp, 0xcc, sizeof(*bp));
	CU_ASSERT_EQUAL_FATAL(linux_zero_page_build(bp, &img, buf, len, 128 * MiB,
						    0x1000020000ull, 2047,
						    96 * MiB, 4096, &err), 0);
	CU_ASSERT_EQUAL(bp->hdr.boot_flag, 0xaa55);
	CU_ASSERT_EQUAL(bp->hdr.header, 0x53726448);
	CU_ASSERT_EQUAL(bp->hdr.loadflags, LOADED_HIGH);
	CU_ASSERT_EQUAL(bp->hdr.cmdline_size, 2047);
	CU_ASSERT_EQUAL(bp->hdr.kernel_alignment, 0x1000000);
	CU_ASSERT_EQUAL(bp->hdr.version, 0); /* not made up */
	CU_ASSERT_EQUAL(bp->hdr.setup_sects, 0);
	CU_ASSERT_EQUAL(bp->hdr.type_of_loader, 0xff);
	CU_ASSERT_EQUAL(bp->hdr.cmd_line_ptr, 0x20000);
	CU_ASSERT_EQUAL(bp->ext_cmd_line_ptr, 0x10);
	CU_ASSERT_EQUAL(bp->hdr.ramdisk_image, 96 * MiB);
	CU_ASSERT_EQUAL(bp->ext_ramdisk_image, 0);
	CU_ASSERT_EQUAL(bp->hdr.ramdisk_size, 4096);
	CU_ASSERT_EQUAL(bp->ext_ramdisk_size, 0);
	CU_ASSERT_EQUAL(bp->e820_entries, 3);
	CU_ASSERT_EQUAL(bp->e820_table[2].size, 127 * MiB);
	CU_ASSERT_EQUAL(bp->screen_info.orig_x, 0);

	CU_ASSERT_EQUAL(linux_zero_page_build(bp, &img, buf, len, 128 * MiB,
					      LINUX_CMDLINE_GPA, 2048, 0, 0, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	CU_ASSERT_TRUE(msg_has(&err, "command line is 2048 bytes; this kernel takes at most 2047"));
	CU_ASSERT_EQUAL(linux_zero_page_build(bp, &img, buf, len, 128 * MiB,
					      LINUX_CMDLINE_GPA, UINT32_MAX, 0, 0, &err), -1);
	free(bp);
}

static void test_describe(void)
{
	uint8_t buf[BUF_MAX];
	size_t len = make_bzimage(buf, 1, BZ_KERNEL);
	struct linux_image img;
	struct fv_error err;
	char d[256], small[16];

	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	linux_image_describe(&img, d, sizeof(d));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "bzImage, boot protocol 2.15"));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "loads at 0x1000000, needs 32.0 MiB"));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "64-bit entry 0x1000200"));
	CU_ASSERT_PTR_NOT_NULL(strstr(d, "payload at file offset 1280 (512 bytes)"));
	memset(small, 'x', sizeof(small));
	linux_image_describe(&img, small, sizeof(small));
	CU_ASSERT_EQUAL(strlen(small), sizeof(small) - 1);
	CU_ASSERT_EQUAL(strncmp(small, "bzImage, boot p", sizeof(small) - 1), 0);

	len = make_elf(buf, 1);
	CU_ASSERT_EQUAL_FATAL(linux_image_parse(buf, len, &img, &err), 0);
	linux_image_describe(&img, d, sizeof(d));
	CU_ASSERT_STRING_EQUAL(d, "ELF vmlinux, 2 segments at 0x1000000-0x1201000, entry 0x1000010");
}

/* --- linux_boot_load() into guest memory without a VM --- */

#define LOAD_MEM (64 * MiB)

static int write_temp(char *path, size_t cap, const void *data, size_t len)
{
	const char *dir = getenv("TMPDIR");
	int fd;
	ssize_t n;

	snprintf(path, cap, "%s/foldvm-linux-XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	n = write(fd, data, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static int guest_all_zero(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	uint8_t page[4096];
	struct fv_error err;

	for (uint64_t off = 0; off < len; off += sizeof(page)) {
		uint64_t n = len - off < sizeof(page) ? len - off : sizeof(page);

		if (gmem_read(gm, gpa + off, page, n, &err))
			return 0;
		for (uint64_t i = 0; i < n; i++)
			if (page[i])
				return 0;
	}
	return 1;
}

static void test_load_bzimage(void)
{
	uint8_t buf[BUF_MAX], back[BUF_MAX], initrd[5000];
	size_t len = make_bzimage(buf, 1, BZ_KERNEL);
	char kpath[256], ipath[256];
	const char *cmdline = "console=ttyS0 root=/dev/vda";
	struct linux_boot_config cfg = { .kernel = kpath, .initrd = ipath, .cmdline = cmdline,
					 .acpi_rsdp = 0xe0000 };
	struct linux_boot_info info;
	struct boot_params bp;
	struct guest_mem gm;
	struct fv_error err;
	uint64_t pml4, pdpt[4], pd[4], gdt[4];
	uint64_t initrd_gpa = (LOAD_MEM - sizeof(initrd)) & ~0xfffull;
	int r;

	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i ^ 0x5a);
	CU_ASSERT_EQUAL_FATAL(write_temp(kpath, sizeof(kpath), buf, len), 0);
	CU_ASSERT_EQUAL_FATAL(write_temp(ipath, sizeof(ipath), initrd, sizeof(initrd)), 0);
	CU_ASSERT_EQUAL_FATAL(gmem_create(&gm, -1, LOAD_MEM, &err), 0);
	r = linux_boot_load(&gm, &cfg, &info, &err);
	if (r)
		fprintf(stderr, "\n    %s\n", err.msg);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_EQUAL(info.entry, PREF + 0x200);
	CU_ASSERT_EQUAL(info.zero_page, LINUX_ZERO_PAGE_GPA);
	CU_ASSERT_EQUAL(info.img.kind, LINUX_IMAGE_BZIMAGE);
	CU_ASSERT_EQUAL(info.initrd_size, sizeof(initrd));
	CU_ASSERT_EQUAL(info.initrd_gpa, initrd_gpa);

	/* kernel: the file after its setup sectors, at the load address */
	CU_ASSERT_EQUAL(gmem_read(&gm, PREF, back, BZ_KERNEL, &err), 0);
	CU_ASSERT_EQUAL(memcmp(back, buf + 1024, BZ_KERNEL), 0);
	/* the setup code is not loaded */
	CU_ASSERT_TRUE(guest_all_zero(&gm, PREF + BZ_KERNEL, 4096));
	/* initrd */
	CU_ASSERT_EQUAL(gmem_read(&gm, initrd_gpa, back, sizeof(initrd), &err), 0);
	CU_ASSERT_EQUAL(memcmp(back, initrd, sizeof(initrd)), 0);
	/* command line, NUL-terminated */
	CU_ASSERT_EQUAL(gmem_read(&gm, LINUX_CMDLINE_GPA, back, strlen(cmdline) + 1, &err), 0);
	CU_ASSERT_STRING_EQUAL((char *)back, cmdline);
	/* zero page */
	CU_ASSERT_EQUAL(gmem_read(&gm, LINUX_ZERO_PAGE_GPA, &bp, sizeof(bp), &err), 0);
	CU_ASSERT_EQUAL(bp.hdr.header, 0x53726448);
	CU_ASSERT_EQUAL(bp.hdr.version, 0x020f);
	CU_ASSERT_EQUAL(bp.hdr.type_of_loader, 0xff);
	CU_ASSERT_EQUAL(bp.hdr.cmd_line_ptr, LINUX_CMDLINE_GPA);
	CU_ASSERT_EQUAL(bp.hdr.ramdisk_image, initrd_gpa);
	CU_ASSERT_EQUAL(bp.hdr.ramdisk_size, sizeof(initrd));
	CU_ASSERT_EQUAL(bp.e820_entries, 3);
	CU_ASSERT_EQUAL(bp.e820_table[2].size, LOAD_MEM - LINUX_HIGH_GPA);
	CU_ASSERT_EQUAL(bp.acpi_rsdp_addr, 0xe0000);
	CU_ASSERT_EQUAL(offsetof(struct boot_params, acpi_rsdp_addr), 0x70);
	/* page tables: 4 GiB identity-mapped with 2 MiB pages */
	CU_ASSERT_EQUAL(gmem_read(&gm, LINUX_PML4_GPA, &pml4, sizeof(pml4), &err), 0);
	CU_ASSERT_EQUAL(pml4, LINUX_PDPT_GPA | 3);
	CU_ASSERT_EQUAL(gmem_read(&gm, LINUX_PDPT_GPA, pdpt, sizeof(pdpt), &err), 0);
	for (unsigned i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(pdpt[i], (LINUX_PD_GPA + i * 4096ull) | 3);
	CU_ASSERT_EQUAL(gmem_read(&gm, LINUX_PD_GPA, pd, sizeof(pd), &err), 0);
	CU_ASSERT_EQUAL(pd[0], 0x83);
	CU_ASSERT_EQUAL(pd[1], 0x200000 | 0x83);
	CU_ASSERT_EQUAL(gmem_read(&gm, LINUX_PD_GPA + 8 * 2047, pd, 8, &err), 0);
	CU_ASSERT_EQUAL(pd[0], 2047ull * 0x200000 | 0x83); /* last 2 MiB below 4 GiB */
	/* GDT: __BOOT_CS 0x10 64-bit code, __BOOT_DS 0x18 data */
	CU_ASSERT_EQUAL(gmem_read(&gm, LINUX_GDT_GPA, gdt, sizeof(gdt), &err), 0);
	CU_ASSERT_EQUAL(gdt[0], 0);
	CU_ASSERT_EQUAL(gdt[2], 0x00af9b000000ffffull);
	CU_ASSERT_EQUAL(gdt[3], 0x00cf93000000ffffull);

	gmem_destroy(&gm);
	unlink(kpath);
	unlink(ipath);
}

static void test_load_elf(void)
{
	uint8_t buf[BUF_MAX], back[ELF_BSS];
	size_t len = make_elf(buf, 1);
	char kpath[256];
	struct linux_boot_config cfg = { .kernel = kpath };
	struct linux_boot_info info;
	struct boot_params bp;
	struct guest_mem gm;
	struct fv_error err;

	CU_ASSERT_EQUAL_FATAL(write_temp(kpath, sizeof(kpath), buf, len), 0);
	CU_ASSERT_EQUAL_FATAL(gmem_create(&gm, -1, LOAD_MEM, &err), 0);
	/* old contents where the bss goes must be cleared */
	CU_ASSERT_EQUAL(gmem_fill(&gm, ELF_SEG1_GPA, 0xcc, 2 * ELF_BSS, &err), 0);
	CU_ASSERT_EQUAL_FATAL(linux_boot_load(&gm, &cfg, &info, &err), 0);
	CU_ASSERT_EQUAL(info.entry, PREF + 0x10);
	CU_ASSERT_EQUAL(info.initrd_gpa, 0);
	CU_ASSERT_EQUAL(info.initrd_size, 0);
	CU_ASSERT_EQUAL(gmem_read(&gm, PREF, back, 0x100, &err), 0);
	CU_ASSERT_EQUAL(memcmp(back, buf + 0x200, 0x100), 0);
	CU_ASSERT_EQUAL(gmem_read(&gm, ELF_SEG1_GPA, back, ELF_BSS, &err), 0);
	CU_ASSERT_EQUAL(memcmp(back, buf + 0x300, 0x80), 0);
	CU_ASSERT_TRUE(guest_all_zero(&gm, ELF_SEG1_GPA + 0x80, ELF_BSS - 0x80));
	/* the byte after the segment is not the loader's business */
	CU_ASSERT_EQUAL(gmem_read(&gm, ELF_SEG1_GPA + ELF_BSS, back, 1, &err), 0);
	CU_ASSERT_EQUAL(back[0], 0xcc);
	/* empty command line, no initrd */
	CU_ASSERT_EQUAL(gmem_read(&gm, LINUX_ZERO_PAGE_GPA, &bp, sizeof(bp), &err), 0);
	CU_ASSERT_EQUAL(bp.hdr.cmdline_size, 2047);
	CU_ASSERT_EQUAL(bp.hdr.ramdisk_image, 0);
	CU_ASSERT_EQUAL(gmem_read(&gm, LINUX_CMDLINE_GPA, back, 1, &err), 0);
	CU_ASSERT_EQUAL(back[0], 0);
	gmem_destroy(&gm);
	unlink(kpath);
}

/* A 5 GiB guest (two RAM ranges): kernel, initrd, zero page and page
 * tables in low RAM, the e820 map with RAM at 4 GiB. */
static void test_load_high(void)
{
	uint8_t buf[BUF_MAX], back[BUF_MAX], initrd[5000];
	size_t len = make_bzimage(buf, 1, BZ_KERNEL);
	char kpath[256], ipath[256];
	struct linux_boot_config cfg = { .kernel = kpath, .initrd = ipath,
					 .cmdline = "console=ttyS0" };
	struct linux_boot_info info;
	struct boot_params bp;
	struct guest_mem gm;
	struct fv_error err;
	uint64_t pd;
	int r;

	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i * 7);
	/* a kernel that takes an initrd anywhere below 4 GiB */
	put32(buf + OFF_INITRD_MAX, 0xffffffffu);
	CU_ASSERT_EQUAL_FATAL(write_temp(kpath, sizeof(kpath), buf, len), 0);
	CU_ASSERT_EQUAL_FATAL(write_temp(ipath, sizeof(ipath), initrd, sizeof(initrd)), 0);
	r = gmem_create_layout(&gm, -1, 5 * GiB, GMEM_LAYOUT_PC, NULL, &err);
	if (r)
		fprintf(stderr, "\n    %s\n", err.msg);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	r = linux_boot_load(&gm, &cfg, &info, &err);
	if (r)
		fprintf(stderr, "\n    %s\n", err.msg);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	/* the initrd at the top of low RAM, below the hole */
	CU_ASSERT_EQUAL(info.initrd_gpa, (3 * GiB - sizeof(initrd)) & ~0xfffull);
	CU_ASSERT_EQUAL(gmem_read(&gm, info.initrd_gpa, back, sizeof(initrd), &err), 0);
	CU_ASSERT_EQUAL(memcmp(back, initrd, sizeof(initrd)), 0);
	CU_ASSERT_EQUAL(gmem_read(&gm, PREF, back, BZ_KERNEL, &err), 0);
	CU_ASSERT_EQUAL(memcmp(back, buf + 1024, BZ_KERNEL), 0);
	/* the zero page's map: both RAM ranges, the legacy hole reserved */
	CU_ASSERT_EQUAL(gmem_read(&gm, LINUX_ZERO_PAGE_GPA, &bp, sizeof(bp), &err), 0);
	CU_ASSERT_EQUAL_FATAL(bp.e820_entries, 4);
	CU_ASSERT_EQUAL(bp.e820_table[1].type, 2);
	CU_ASSERT_EQUAL(bp.e820_table[2].addr, LINUX_HIGH_GPA);
	CU_ASSERT_EQUAL(bp.e820_table[2].size, 3 * GiB - LINUX_HIGH_GPA);
	CU_ASSERT_EQUAL(bp.e820_table[2].type, 1);
	CU_ASSERT_EQUAL(bp.e820_table[3].addr, 4 * GiB);
	CU_ASSERT_EQUAL(bp.e820_table[3].size, 2 * GiB);
	CU_ASSERT_EQUAL(bp.e820_table[3].type, 1);
	CU_ASSERT_EQUAL(bp.hdr.ramdisk_image, info.initrd_gpa);
	CU_ASSERT_EQUAL(bp.ext_ramdisk_image, 0);
	/* the boot page tables still map the first 4 GiB */
	CU_ASSERT_EQUAL(gmem_read(&gm, LINUX_PD_GPA + 8 * 2047, &pd, 8, &err), 0);
	CU_ASSERT_EQUAL(pd, 2047ull * 0x200000 | 0x83);
	/* the hole holds nothing the loader could have written: refused */
	CU_ASSERT_EQUAL(gmem_read(&gm, 3 * GiB, back, 1, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	gmem_destroy(&gm);
	unlink(kpath);
	unlink(ipath);
}

static void test_load_refused(void)
{
	uint8_t buf[BUF_MAX];
	size_t len = make_elf(buf, 0);
	char kpath[256], ipath[256], *cmdline = malloc(LINUX_CMDLINE_MAX + 2);
	struct linux_boot_config cfg = { .kernel = kpath };
	struct linux_boot_info info;
	struct guest_mem gm, small;
	struct fv_error err;
	uint8_t one = 1;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cmdline);
	CU_ASSERT_EQUAL_FATAL(write_temp(kpath, sizeof(kpath), buf, len), 0);
	CU_ASSERT_EQUAL_FATAL(write_temp(ipath, sizeof(ipath), &one, 1), 0);
	CU_ASSERT_EQUAL_FATAL(gmem_create(&gm, -1, LOAD_MEM, &err), 0);

	/* longer than this kernel takes (2047), then than foldvm takes */
	memset(cmdline, 'a', 2048);
	cmdline[2048] = '\0';
	cfg.cmdline = cmdline;
	cfg.initrd = ipath;
	CU_ASSERT_EQUAL(linux_boot_load(&gm, &cfg, &info, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	CU_ASSERT_TRUE(msg_has(&err, kpath));
	CU_ASSERT_TRUE(msg_has(&err, "command line is 2048 bytes; this kernel takes at most 2047"));
	memset(cmdline, 'a', LINUX_CMDLINE_MAX + 1);
	cmdline[LINUX_CMDLINE_MAX + 1] = '\0';
	CU_ASSERT_EQUAL(linux_boot_load(&gm, &cfg, &info, &err), -1);
	CU_ASSERT_TRUE(msg_has(&err, "command line longer than 4095 bytes"));
	cfg.cmdline = NULL;

	/* no such kernel, no such initrd */
	cfg.kernel = "/nonexistent/foldvm-vmlinux";
	CU_ASSERT_EQUAL(linux_boot_load(&gm, &cfg, &info, &err), -1);
	CU_ASSERT_TRUE(msg_has(&err, "/nonexistent/foldvm-vmlinux"));
	cfg.kernel = kpath;
	cfg.initrd = "/nonexistent/foldvm-initrd";
	CU_ASSERT_EQUAL(linux_boot_load(&gm, &cfg, &info, &err), -1);
	CU_ASSERT_TRUE(msg_has(&err, "initrd '/nonexistent/foldvm-initrd'"));

	/* a malformed image names the file and the problem */
	buf[EI_CLASS] = ELFCLASS32;
	unlink(kpath);
	CU_ASSERT_EQUAL_FATAL(write_temp(kpath, sizeof(kpath), buf, len), 0);
	cfg.initrd = ipath;
	CU_ASSERT_EQUAL(linux_boot_load(&gm, &cfg, &info, &err), -1);
	CU_ASSERT_TRUE(msg_has(&err, kpath));
	CU_ASSERT_TRUE(msg_has(&err, "ELF class 1"));

	/* nothing at all reached guest memory */
	CU_ASSERT_TRUE(guest_all_zero(&gm, 0, 1 * MiB));
	CU_ASSERT_TRUE(guest_all_zero(&gm, PREF, 3 * MiB));
	CU_ASSERT_TRUE(guest_all_zero(&gm, LOAD_MEM - MiB, MiB));
	gmem_destroy(&gm);
	unlink(kpath);

	/* a guest too small for the kernel (it ends past 16 MiB) */
	len = make_elf(buf, 0);
	CU_ASSERT_EQUAL_FATAL(write_temp(kpath, sizeof(kpath), buf, len), 0);
	cfg.kernel = kpath;
	CU_ASSERT_EQUAL_FATAL(gmem_create(&small, -1, LINUX_MEM_MIN, &err), 0);
	CU_ASSERT_EQUAL(linux_boot_load(&small, &cfg, &info, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	CU_ASSERT_TRUE(msg_has(&err, "kernel too large"));
	CU_ASSERT_TRUE(guest_all_zero(&small, 0, LINUX_MEM_MIN));
	gmem_destroy(&small);
	unlink(kpath);
	unlink(ipath);
	free(cmdline);
}

void unit_add_linux_boot_suite(void)
{
	CU_pSuite s = CU_add_suite("linux_boot", NULL, NULL);

	CU_add_test(s, "setup header offsets", test_header_offsets);
	CU_add_test(s, "bzImage parse", test_bzimage_parse);
	CU_add_test(s, "bzImage load range and limits", test_bzimage_load_end);
	CU_add_test(s, "bzImage truncated", test_bzimage_truncated);
	CU_add_test(s, "bzImage rejected", test_bzimage_rejected);
	CU_add_test(s, "ELF parse", test_elf_parse);
	CU_add_test(s, "ELF entry point", test_elf_entry);
	CU_add_test(s, "ELF header rejected", test_elf_header_rejected);
	CU_add_test(s, "ELF segments rejected", test_elf_segment_rejected);
	CU_add_test(s, "ELF segment count", test_elf_many_segments);
	CU_add_test(s, "kernel fits in memory", test_check_fit);
	CU_add_test(s, "initrd placement", test_initrd_place);
	CU_add_test(s, "e820 map", test_e820);
	CU_add_test(s, "e820 map above 3 GiB (2, 3, 5 GiB guests)", test_e820_high);
	CU_add_test(s, "zero page of a bzImage", test_zero_page_bzimage);
	CU_add_test(s, "zero page of a short buffer", test_zero_page_short);
	CU_add_test(s, "zero page of an ELF", test_zero_page_elf);
	CU_add_test(s, "describe", test_describe);
	CU_add_test(s, "load a bzImage with initrd", test_load_bzimage);
	CU_add_test(s, "load an ELF with bss", test_load_elf);
	CU_add_test(s, "load into a 5 GiB guest (RAM above the hole)", test_load_high);
	CU_add_test(s, "load refused, guest untouched", test_load_refused);
}
