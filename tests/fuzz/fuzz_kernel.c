/*
 * fuzz_kernel.c - libFuzzer harness for the Linux kernel loader.
 *
 * The input is a kernel file (bzImage or ELF vmlinux) for
 * linux_image_parse(); what it accepts goes on to the planning functions
 * linux_boot_load() calls next: linux_image_check_fit() for a few guest
 * sizes, linux_initrd_place() for a few initrd sizes,
 * linux_zero_page_build() and linux_image_describe().  Any crash, leak,
 * or UB report is a bug, and the harness aborts when a result breaks the
 * loader's promises (segments inside the file and inside guest RAM, the
 * entry inside the kernel, an initrd between the kernel and the top of
 * RAM below the 32-bit hole).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "vmm/linux_boot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint64_t mem_sizes[] = {
	0, LINUX_MEM_MIN - 4096, LINUX_MEM_MIN, 64ull << 20, 1ull << 30,
	LINUX_LOW_MEM_END, LINUX_LOW_MEM_END + 4096, 5ull << 30,
	LINUX_MEM_MAX, LINUX_MEM_MAX + 4096,
};

static const uint64_t initrd_sizes[] = {
	0, 1, 4096, (1ull << 20) + 1, 16ull << 20, 1ull << 30, UINT64_MAX,
};

static void check_error(const struct fv_error *err)
{
	if (err->code == FV_OK || !memchr(err->msg, '\0', sizeof(err->msg)) ||
	    err->msg[0] == '\0')
		abort();
}

static void check_image(const struct linux_image *img, size_t size)
{
	int entry_inside = 0;

	if (img->nr_segments == 0 || img->nr_segments > LINUX_MAX_SEGMENTS ||
	    img->load_start < LINUX_HIGH_GPA || img->load_end > LINUX_LOW_MEM_END ||
	    img->load_start >= img->load_end ||
	    img->cmdline_max > LINUX_CMDLINE_MAX)
		abort();
	for (unsigned i = 0; i < img->nr_segments; i++) {
		const struct linux_segment *s = &img->seg[i];

		if (s->file_offset > size || s->file_size > size - s->file_offset ||
		    s->file_size > s->mem_size || s->gpa < img->load_start ||
		    s->gpa + s->mem_size > img->load_end)
			abort();
		if (img->entry >= s->gpa && img->entry - s->gpa < s->mem_size)
			entry_inside = 1;
	}
	if (!entry_inside)
		abort();
	if (img->kind == LINUX_IMAGE_BZIMAGE &&
	    (img->setup_size >= size || img->entry != img->load_start + 0x200 ||
	     (uint64_t)img->payload_offset + img->payload_length >
	     img->seg[0].file_size))
		abort();
}

static void check_plans(const struct linux_image *img, const uint8_t *data,
			size_t size, struct boot_params *bp)
{
	struct fv_error err;

	for (size_t m = 0; m < sizeof(mem_sizes) / sizeof(mem_sizes[0]); m++) {
		uint64_t mem = mem_sizes[m];
		/* what foldvm loads stays below the 32-bit hole */
		uint64_t low = mem < LINUX_LOW_MEM_END ? mem : LINUX_LOW_MEM_END;

		if (linux_image_check_fit(img, mem, &err)) {
			check_error(&err);
			continue;
		}
		if (img->load_end > low || mem < LINUX_MEM_MIN || mem > LINUX_MEM_MAX)
			abort();
		for (size_t i = 0; i < sizeof(initrd_sizes) / sizeof(initrd_sizes[0]); i++) {
			uint64_t sz = initrd_sizes[i], gpa = 0;

			if (linux_initrd_place(img, mem, sz, &gpa, &err)) {
				check_error(&err);
				continue;
			}
			if (sz == 0 || gpa % 4096 || gpa < img->load_end ||
			    gpa > low || sz > low - gpa ||
			    gpa + sz - 1 > img->initrd_addr_max)
				abort();
		}
		/* the parser checked everything the zero page needs */
		if (linux_zero_page_build(bp, img, data, size, mem, LINUX_CMDLINE_GPA,
					  img->cmdline_max, mem - 4096, 4096, &err))
			abort();
		if (bp->hdr.type_of_loader != 0xff ||
		    bp->hdr.cmd_line_ptr != LINUX_CMDLINE_GPA ||
		    bp->hdr.ramdisk_size != 4096 ||
		    bp->e820_entries != (mem > LINUX_LOW_MEM_END ? 4 : 3) ||
		    bp->hdr.boot_flag != 0xaa55)
			abort();
		/* one byte more than the kernel takes is refused */
		if (linux_zero_page_build(bp, img, data, size, mem, LINUX_CMDLINE_GPA,
					  img->cmdline_max + 1, 0, 0, &err) == 0)
			abort();
		check_error(&err);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct linux_image img;
	struct fv_error err;
	struct boot_params *bp;
	char desc[512], tiny[8];

	memset(&err, 0, sizeof(err));
	if (linux_image_parse(data, size, &img, &err)) {
		if (err.code != FV_E_INVAL)
			abort();
		check_error(&err);
		return 0;
	}
	check_image(&img, size);
	bp = malloc(sizeof(*bp));
	if (!bp)
		return 0;
	check_plans(&img, data, size, bp);
	free(bp);
	linux_image_describe(&img, desc, sizeof(desc));
	linux_image_describe(&img, tiny, sizeof(tiny));
	if (!memchr(desc, '\0', sizeof(desc)) || strlen(tiny) != sizeof(tiny) - 1)
		abort();
	return 0;
}
