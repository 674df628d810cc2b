/* test_guest_mem.c - the guest-memory API's bounds checks (no KVM needed:
 * the mapping is made without registering a memslot). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <linux/userfaultfd.h>
#include <CUnit/CUnit.h>
#include "tests/unit/unit.h"
#include "memory/guest_mem.h"
#include "lib/procstat.h"

#define MEM (16ull << 20)

static void test_sizes(void)
{
	struct fv_error err;

	CU_ASSERT_EQUAL(gmem_check_size(MEM, &err), 0);
	CU_ASSERT_EQUAL(gmem_check_size(MEM - 4096, &err), -1);
	CU_ASSERT_EQUAL(gmem_check_size(MEM + 1, &err), -1);
	CU_ASSERT_EQUAL(gmem_check_size(GMEM_MAX_SIZE + 4096, &err), -1);
}

static void test_read_write(void)
{
	struct guest_mem gm;
	struct fv_error err;
	uint8_t buf[64], back[64];

	CU_ASSERT_EQUAL_FATAL(gmem_create(&gm, -1, MEM, &err), 0);
	memset(buf, 0xab, sizeof(buf));
	CU_ASSERT_EQUAL(gmem_write(&gm, 4096, buf, sizeof(buf), &err), 0);
	CU_ASSERT_EQUAL(gmem_read(&gm, 4096, back, sizeof(back), &err), 0);
	CU_ASSERT_EQUAL(memcmp(buf, back, sizeof(buf)), 0);
	/* fresh guest memory reads as zero */
	CU_ASSERT_EQUAL(gmem_read(&gm, MEM - 64, back, 64, &err), 0);
	CU_ASSERT_EQUAL(back[0], 0);
	CU_ASSERT_EQUAL(back[63], 0);
	CU_ASSERT_EQUAL(gmem_fill(&gm, 0, 0x5a, 4096, &err), 0);
	CU_ASSERT_EQUAL(gmem_read(&gm, 4095, back, 2, &err), 0);
	CU_ASSERT_EQUAL(back[0], 0x5a);
	CU_ASSERT_EQUAL(back[1], 0xab);
	gmem_destroy(&gm);
	gmem_destroy(&gm); /* idempotent */
}

static void test_bounds(void)
{
	struct guest_mem gm;
	struct fv_error err;
	uint8_t buf[16] = { 1, 2, 3 }, back[16];

	CU_ASSERT_EQUAL_FATAL(gmem_create(&gm, -1, MEM, &err), 0);
	/* last byte in, one past out */
	CU_ASSERT_EQUAL(gmem_write(&gm, MEM - 1, buf, 1, &err), 0);
	CU_ASSERT_EQUAL(gmem_write(&gm, MEM - 1, buf, 2, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	CU_ASSERT_EQUAL(gmem_read(&gm, MEM, back, 1, &err), -1);
	CU_ASSERT_EQUAL(gmem_read(&gm, MEM, back, 0, &err), 0);
	CU_ASSERT_EQUAL(gmem_read(&gm, MEM + 1, back, 0, &err), -1);
	/* a length that would wrap gpa + len around 2^64 */
	CU_ASSERT_EQUAL(gmem_read(&gm, 4096, back, UINT64_MAX - 100, &err), -1);
	CU_ASSERT_EQUAL(gmem_read(&gm, UINT64_MAX, back, 2, &err), -1);
	CU_ASSERT_EQUAL(gmem_fill(&gm, MEM - 8, 0, 16, &err), -1);
	CU_ASSERT_FALSE(gmem_range_ok(&gm, UINT64_MAX - 1, 4));
	CU_ASSERT_TRUE(gmem_range_ok(&gm, 0, MEM));
	/* nothing was written by the refused write */
	CU_ASSERT_EQUAL(gmem_read(&gm, MEM - 1, back, 1, &err), 0);
	CU_ASSERT_EQUAL(back[0], 1);
	gmem_destroy(&gm);
	CU_ASSERT_FALSE(gmem_range_ok(&gm, 0, 1));
}

static void test_too_big(void)
{
	struct guest_mem gm;
	struct fv_error err;

	CU_ASSERT_EQUAL(gmem_create(&gm, -1, GMEM_MAX_SIZE * 2, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
}

/* The dedup primitives check the page number before they use it (a host
 * address computed from a wild gfn overflows: UBSan in unit-tests-san). */
static void test_dedup_gfn_bounds(void)
{
	const uint64_t wild[] = { MEM / 4096, 0xffff000000000ull, UINT64_MAX / 4096,
				  UINT64_MAX };
	struct guest_mem gm;
	struct fv_error err;

	CU_ASSERT_EQUAL_FATAL(gmem_create(&gm, -1, MEM, &err), 0);
	for (size_t i = 0; i < sizeof(wild) / sizeof(wild[0]); i++) {
		err.code = FV_OK;
		CU_ASSERT_EQUAL(gmem_protect(&gm, wild[i], 1, true, &err), -1);
		CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
		err.code = FV_OK;
		CU_ASSERT_EQUAL(gmem_wake(&gm, wild[i], 1, &err), -1);
		CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
		err.code = FV_OK;
		CU_ASSERT_EQUAL(gmem_map_frame(&gm, wild[i], -1, 0, &err), -1);
		CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	}
	/* a run that starts inside and ends outside */
	CU_ASSERT_EQUAL(gmem_protect(&gm, MEM / 4096 - 1, 2, true, &err), -1);
	CU_ASSERT_EQUAL(gmem_wake(&gm, 1, UINT64_MAX, &err), -1);
	CU_ASSERT_PTR_NULL(gmem_page_view(&gm, UINT64_MAX));
	gmem_destroy(&gm);
}

/* A userfaultfd ready for write-protect registration, or -1 (not root). */
static int open_uffd(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd >= 0 && ioctl(fd, UFFDIO_API, &api) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* A failed gmem_dedup_enable leaves the memory as it found it: no dirty
 * bitmap, no engine, no registration; a retry does it all again. */
static void test_dedup_enable_failure(void)
{
	struct guest_mem gm;
	struct fv_error err;
	int uffd, other, not_a_vm;
	uint64_t *dirty;

	CU_ASSERT_EQUAL_FATAL(gmem_create(&gm, -1, MEM, &err), 0);
	/* the userfaultfd registration fails */
	CU_ASSERT_EQUAL(gmem_dedup_enable(&gm, -1, &err), -1);
	CU_ASSERT_PTR_NULL(gm.host_dirty);
	CU_ASSERT_EQUAL(gmem_dedup_enable(&gm, -1, &err), -1);
	CU_ASSERT_PTR_NULL(gm.host_dirty);
	uffd = open_uffd();
	other = open_uffd();
	if (uffd < 0 || other < 0) {
		fprintf(stderr, "\n  SKIP dedup enable failure: no userfaultfd (needs root) ");
		goto out;
	}
	/* the dirty log fails, after the registration */
	not_a_vm = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CU_ASSERT_FATAL(not_a_vm >= 0);
	gm.vm_fd = not_a_vm;
	CU_ASSERT_EQUAL(gmem_dedup_enable(&gm, uffd, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_KVM);
	CU_ASSERT_PTR_NULL(gm.host_dirty);
	CU_ASSERT_EQUAL(gm.uffd, -1);
	CU_ASSERT_FALSE(gm.dirty_log);
	CU_ASSERT_EQUAL(gmem_dedup_enable(&gm, uffd, &err), -1);
	gm.vm_fd = -1;
	close(not_a_vm);
	/* the registration was undone: another userfaultfd may take the range */
	CU_ASSERT_EQUAL(gmem_dedup_enable(&gm, other, &err), 0);
	CU_ASSERT_PTR_NOT_NULL(gm.host_dirty);
	CU_ASSERT_EQUAL(gm.uffd, other);
	CU_ASSERT_EQUAL(gmem_dedup_enable(&gm, other, &err), 0); /* on already */
	/* on for another engine: refused, and left as it was */
	dirty = gm.host_dirty;
	CU_ASSERT_EQUAL(gmem_dedup_enable(&gm, uffd, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_STATE);
	CU_ASSERT_PTR_EQUAL(gm.host_dirty, dirty);
	CU_ASSERT_EQUAL(gm.uffd, other);
out:
	gmem_destroy(&gm);
	if (uffd >= 0)
		close(uffd);
	if (other >= 0)
		close(other);
}

/* What the page table says about a guest page. */
static struct procstat_page page_entry(const struct procstat_pagemap *pm,
				       const struct guest_mem *gm, uint64_t gfn)
{
	struct procstat_page pg;

	procstat_pagemap_read(pm, gmem_page_hva(gm, gfn), &pg, NULL);
	return pg;
}

static void page_of(uint8_t *page, int byte)
{
	memset(page, byte, 4096);
	page[0] = 'H';
}

/*
 * Merging in place (memory/home.c): a page equal to its home slot drops
 * its copy and reads the slot (file-backed, one copy for everyone); a
 * write copies it again; a guest that joins the home later never reads
 * what others put there; zero pages are discarded only over a slot that
 * holds nothing, and the slot can take content after; the last reference
 * empties the slot.
 */
static void test_home_merge_in_place(void)
{
	struct guest_mem a, b, c;
	struct procstat_pagemap pm;
	struct fv_error err;
	uint8_t page[4096], other[4096], back[4096];
	uint64_t before;
	int uffd = open_uffd();

	if (uffd < 0) {
		fprintf(stderr, "\n  SKIP home: no userfaultfd (needs root) ");
		return;
	}
	CU_ASSERT_EQUAL_FATAL(procstat_pagemap_open(&pm, &err), 0);
	CU_ASSERT_EQUAL_FATAL(gmem_create_in_home(&a, -1, MEM, "unit-home", &err), 0);
	CU_ASSERT_EQUAL_FATAL(gmem_create_in_home(&b, -1, MEM, "unit-home", &err), 0);
	CU_ASSERT_EQUAL_FATAL(gmem_dedup_enable(&a, uffd, &err), 0);
	CU_ASSERT_EQUAL_FATAL(gmem_dedup_enable(&b, uffd, &err), 0);
	/* Rule 1: every page starts on the kernel's zero page. */
	CU_ASSERT_TRUE(page_entry(&pm, &a, 5).present);
	CU_ASSERT_FALSE(page_entry(&pm, &a, 5).file);
	before = gmem_homes_resident_bytes();

	page_of(page, 0x11);
	CU_ASSERT_EQUAL(gmem_write(&a, 5 * 4096, page, 4096, &err), 0);
	CU_ASSERT_EQUAL(gmem_write(&b, 5 * 4096, page, 4096, &err), 0);
	CU_ASSERT_TRUE(gmem_home_free(&a, 5));
	CU_ASSERT_EQUAL(gmem_home_publish(&a, 5, page, &err), 0);
	CU_ASSERT_EQUAL(gmem_home_refs(&a, 5), 1u);
	CU_ASSERT_EQUAL(gmem_home_publish(&b, 5, page, &err), -1); /* held */
	CU_ASSERT_EQUAL(err.code, FV_E_STATE);
	CU_ASSERT_EQUAL(gmem_homes_resident_bytes(), before + 4096);
	/* both pages merge: protected, compared by the caller, dropped */
	for (struct guest_mem *gm = &a; gm; gm = gm == &a ? &b : NULL) {
		CU_ASSERT_EQUAL(gmem_protect(gm, 5, 1, true, &err), 0);
		CU_ASSERT_EQUAL(gmem_merge_home(gm, 5, &err), 0);
		CU_ASSERT_EQUAL(gmem_read(gm, 5 * 4096, back, 4096, &err), 0);
		CU_ASSERT_EQUAL(memcmp(back, page, 4096), 0);
		CU_ASSERT_TRUE(page_entry(&pm, gm, 5).file);
	}
	CU_ASSERT_EQUAL(page_entry(&pm, &a, 5).pfn, page_entry(&pm, &b, 5).pfn);
	gmem_home_put(&a, 5); /* the publisher's reference */
	CU_ASSERT_EQUAL(gmem_home_refs(&a, 5), 2u);

	/* A guest joining now reads zeros there, not the slot. */
	CU_ASSERT_EQUAL_FATAL(gmem_create_in_home(&c, -1, MEM, "unit-home", &err), 0);
	CU_ASSERT_EQUAL(gmem_read(&c, 5 * 4096, back, 4096, &err), 0);
	CU_ASSERT_EQUAL(back[0], 0);
	CU_ASSERT_EQUAL(back[4095], 0);

	/* A write copies: a's page is its own, b still reads the slot. */
	CU_ASSERT_EQUAL(gmem_write(&a, 5 * 4096 + 100, "x", 1, &err), 0);
	CU_ASSERT_FALSE(page_entry(&pm, &a, 5).file);
	CU_ASSERT_EQUAL(gmem_read(&b, 5 * 4096, back, 4096, &err), 0);
	CU_ASSERT_EQUAL(memcmp(back, page, 4096), 0);
	gmem_home_put(&a, 5);
	CU_ASSERT_EQUAL(gmem_home_refs(&a, 5), 1u);

	/* A zero page over a held slot is refused; over a free one it is
	 * dropped, reads zeros, and the slot can take content after. */
	CU_ASSERT_EQUAL(gmem_write(&a, 5 * 4096, (uint8_t[4096]){ 0 }, 4096, &err), 0);
	CU_ASSERT_EQUAL(gmem_protect(&a, 5, 1, true, &err), 0);
	CU_ASSERT_EQUAL(gmem_discard(&a, 5, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_STATE);
	CU_ASSERT_EQUAL(gmem_protect(&a, 5, 1, false, &err), 0);
	page_of(other, 0x22);
	CU_ASSERT_EQUAL(gmem_write(&a, 7 * 4096, (uint8_t[4096]){ 0 }, 4096, &err), 0);
	CU_ASSERT_EQUAL(gmem_protect(&a, 7, 1, true, &err), 0);
	CU_ASSERT_EQUAL(gmem_discard(&a, 7, &err), 0);
	CU_ASSERT_TRUE(page_entry(&pm, &a, 7).present); /* the zero page, at once */
	CU_ASSERT_FALSE(page_entry(&pm, &a, 7).file);
	CU_ASSERT_TRUE(gmem_home_free(&a, 7));
	CU_ASSERT_EQUAL(gmem_home_publish(&b, 7, other, &err), 0);
	CU_ASSERT_EQUAL(gmem_read(&a, 7 * 4096, back, 4096, &err), 0);
	CU_ASSERT_EQUAL(back[0], 0); /* a's zero page is its own */
	gmem_home_put(&b, 7);
	CU_ASSERT_TRUE(gmem_home_free(&b, 7));

	/* The last reference empties the slot: its memory goes back. */
	gmem_home_put(&b, 5);
	CU_ASSERT_EQUAL(gmem_home_refs(&b, 5), 0u);
	CU_ASSERT_EQUAL(gmem_homes_resident_bytes(), before);
	gmem_destroy(&c);
	gmem_destroy(&b);
	gmem_destroy(&a);
	CU_ASSERT_EQUAL(gmem_homes_resident_bytes(), 0u); /* no home is left */
	procstat_pagemap_close(&pm);
	close(uffd);
}

#define GiB (1ull << 30)
#define HIGH_MEM (5 * GiB)  /* 3 GiB below the hole, 2 GiB from 4 GiB */
#define HOLE_PAGE (3 * GiB / 4096) /* the first RAM page above the hole */

/* Where RAM goes: flat, or as on a PC around the 32-bit hole. */
static void test_layout_ranges(void)
{
	struct gmem_range r[GMEM_MAX_RANGES];

	CU_ASSERT_EQUAL(gmem_layout_ranges(GMEM_LAYOUT_PC, 0, r), 0u);
	CU_ASSERT_EQUAL(gmem_layout_ranges(GMEM_LAYOUT_PC, 2 * GiB, r), 1u);
	CU_ASSERT_EQUAL(r[0].gpa, 0);
	CU_ASSERT_EQUAL(r[0].size, 2 * GiB);
	CU_ASSERT_EQUAL(gmem_layout_ranges(GMEM_LAYOUT_PC, 3 * GiB, r), 1u);
	CU_ASSERT_EQUAL(r[0].size, 3 * GiB);
	CU_ASSERT_EQUAL(gmem_layout_ranges(GMEM_LAYOUT_PC, 3 * GiB + 4096, r), 2u);
	CU_ASSERT_EQUAL(r[0].size, 3 * GiB);
	CU_ASSERT_EQUAL(r[1].gpa, 4 * GiB);
	CU_ASSERT_EQUAL(r[1].size, 4096);
	CU_ASSERT_EQUAL(r[1].page, HOLE_PAGE);
	CU_ASSERT_EQUAL(gmem_layout_ranges(GMEM_LAYOUT_PC, HIGH_MEM, r), 2u);
	CU_ASSERT_EQUAL(r[0].gpa, 0);
	CU_ASSERT_EQUAL(r[0].page, 0);
	CU_ASSERT_EQUAL(r[1].gpa, 0x100000000ull);
	CU_ASSERT_EQUAL(r[1].size, 2 * GiB);
	CU_ASSERT_EQUAL(r[1].page, 0xc0000ull);
	CU_ASSERT_EQUAL(gmem_layout_ranges(GMEM_LAYOUT_PC, GMEM_MAX_SIZE, r), 2u);
	CU_ASSERT_EQUAL(r[1].gpa + r[1].size, GMEM_MAX_SIZE + GiB);
	/* test guests: one range from 0 whatever the size */
	CU_ASSERT_EQUAL(gmem_layout_ranges(GMEM_LAYOUT_FLAT, HIGH_MEM, r), 1u);
	CU_ASSERT_EQUAL(r[0].gpa, 0);
	CU_ASSERT_EQUAL(r[0].size, HIGH_MEM);
}

/* A 5 GiB guest in the PC layout: every guest-physical address is
 * translated once, the hole and whatever lies past the end refused. */
static void test_translate_high(void)
{
	struct guest_mem gm;
	struct fv_error err;
	uint8_t buf[8192], back[8192];
	uint64_t page = 0;
	int r = gmem_create_layout(&gm, -1, HIGH_MEM, GMEM_LAYOUT_PC, NULL, &err);

	if (r)
		fprintf(stderr, "\n    %s\n", err.msg);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_EQUAL(gm.nr_ranges, 2u);
	CU_ASSERT_EQUAL(gmem_pages(&gm), HIGH_MEM / 4096);

	/* low RAM: page = gpa / 4 KiB */
	CU_ASSERT_EQUAL(gmem_gpa_to_page(&gm, 0, &page, &err), 0);
	CU_ASSERT_EQUAL(page, 0);
	CU_ASSERT_EQUAL(gmem_gpa_to_page(&gm, 0x12345678, &page, &err), 0);
	CU_ASSERT_EQUAL(page, 0x12345);
	CU_ASSERT_EQUAL(gmem_gpa_to_page(&gm, 3 * GiB - 1, &page, &err), 0);
	CU_ASSERT_EQUAL(page, HOLE_PAGE - 1);
	/* the hole, every part of it */
	const uint64_t hole[] = { 3 * GiB, 0xd0000000ull, 0xfec00000ull, 0xfee00000ull,
				  4 * GiB - 1 };
	for (size_t i = 0; i < sizeof(hole) / sizeof(hole[0]); i++) {
		page = 0x1234;
		err.code = FV_OK;
		CU_ASSERT_EQUAL(gmem_gpa_to_page(&gm, hole[i], &page, &err), -1);
		CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "32-bit hole"));
		CU_ASSERT_EQUAL(page, 0x1234); /* untouched */
		CU_ASSERT_FALSE(gmem_range_ok(&gm, hole[i], 1));
		CU_ASSERT_EQUAL(gmem_read(&gm, hole[i], back, 1, &err), -1);
		CU_ASSERT_EQUAL(gmem_write(&gm, hole[i], buf, 1, &err), -1);
		CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	}
	/* high RAM: page = 3 GiB / 4 KiB + (gpa - 4 GiB) / 4 KiB */
	CU_ASSERT_EQUAL(gmem_gpa_to_page(&gm, 4 * GiB, &page, &err), 0);
	CU_ASSERT_EQUAL(page, HOLE_PAGE);
	CU_ASSERT_EQUAL(gmem_gpa_to_page(&gm, 4 * GiB + 0x5123, &page, &err), 0);
	CU_ASSERT_EQUAL(page, HOLE_PAGE + 5);
	CU_ASSERT_EQUAL(gmem_gpa_to_page(&gm, 6 * GiB - 1, &page, &err), 0);
	CU_ASSERT_EQUAL(page, HIGH_MEM / 4096 - 1);
	/* past the end: 5 GiB is not RAM here, 6 GiB on neither */
	CU_ASSERT_EQUAL(gmem_gpa_to_page(&gm, 6 * GiB, &page, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "[0x100000000, 0x180000000)"));
	CU_ASSERT_EQUAL(gmem_gpa_to_page(&gm, UINT64_MAX, &page, &err), -1);
	CU_ASSERT_TRUE(gmem_range_ok(&gm, 5 * GiB, 1)); /* high RAM */
	CU_ASSERT_FALSE(gmem_range_ok(&gm, 6 * GiB, 1));
	/* and back */
	CU_ASSERT_EQUAL(gmem_page_to_gpa(&gm, 0), 0);
	CU_ASSERT_EQUAL(gmem_page_to_gpa(&gm, HOLE_PAGE - 1), 3 * GiB - 4096);
	CU_ASSERT_EQUAL(gmem_page_to_gpa(&gm, HOLE_PAGE), 4 * GiB);
	CU_ASSERT_EQUAL(gmem_page_to_gpa(&gm, HIGH_MEM / 4096 - 1), 6 * GiB - 4096);
	CU_ASSERT_EQUAL(gmem_page_to_gpa(&gm, HIGH_MEM / 4096), UINT64_MAX);
	CU_ASSERT_EQUAL(gmem_page_to_gpa(&gm, UINT64_MAX), UINT64_MAX);

	/* a write above the hole lands on its RAM page, nowhere else */
	memset(buf, 0x5c, sizeof(buf));
	CU_ASSERT_EQUAL(gmem_write(&gm, 4 * GiB + 4096, buf, 4096, &err), 0);
	CU_ASSERT_EQUAL(gmem_page_view(&gm, HOLE_PAGE + 1)[0], 0x5c);
	CU_ASSERT_EQUAL(gmem_page_view(&gm, HOLE_PAGE + 1)[4095], 0x5c);
	CU_ASSERT_EQUAL(gmem_page_view(&gm, HOLE_PAGE)[4095], 0);
	CU_ASSERT_EQUAL(gmem_page_view(&gm, HOLE_PAGE + 2)[0], 0);
	CU_ASSERT_EQUAL(gmem_read(&gm, 4 * GiB + 4096, back, 4096, &err), 0);
	CU_ASSERT_EQUAL(memcmp(back, buf, 4096), 0);
	/* and one just below it on the last low page */
	CU_ASSERT_EQUAL(gmem_fill(&gm, 3 * GiB - 4096, 0x3e, 4096, &err), 0);
	CU_ASSERT_EQUAL(gmem_page_view(&gm, HOLE_PAGE - 1)[0], 0x3e);
	CU_ASSERT_EQUAL(gmem_page_view(&gm, HOLE_PAGE)[0], 0);

	/* ranges: up to each range's end, not one byte across */
	CU_ASSERT_TRUE(gmem_range_ok(&gm, 3 * GiB - 4096, 4096));
	CU_ASSERT_TRUE(gmem_range_ok(&gm, 3 * GiB, 0)); /* empty, at the end */
	CU_ASSERT_FALSE(gmem_range_ok(&gm, 3 * GiB - 4096, 4097));
	CU_ASSERT_EQUAL(gmem_read(&gm, 3 * GiB - 4096, back, 8192, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "runs past the end of low RAM into the 32-bit hole"));
	/* the same bytes the host mapping has next (RAM page HOLE_PAGE), but
	 * not the same guest-physical range: refused, nothing written */
	CU_ASSERT_EQUAL(gmem_write(&gm, 3 * GiB - 4, buf, 8, &err), -1);
	CU_ASSERT_EQUAL(gmem_page_view(&gm, HOLE_PAGE)[0], 0);
	CU_ASSERT_EQUAL(gmem_page_view(&gm, HOLE_PAGE - 1)[4095], 0x3e);
	CU_ASSERT_EQUAL(gmem_check_range(&gm, 3 * GiB - 4, 8, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "[0xbffffffc, +0x8) runs past the end of low RAM into the 32-bit hole: RAM [0, 0xc0000000) and [0x100000000, 0x180000000)"));
	CU_ASSERT_EQUAL(gmem_check_range(&gm, 3 * GiB - 8, 8, &err), 0);
	/* from low RAM over the whole hole into high RAM */
	CU_ASSERT_FALSE(gmem_range_ok(&gm, 3 * GiB - 4096, GiB + 8192));
	CU_ASSERT_FALSE(gmem_range_ok(&gm, 0, HIGH_MEM));
	/* from the hole into high RAM */
	CU_ASSERT_FALSE(gmem_range_ok(&gm, 4 * GiB - 4096, 8192));
	CU_ASSERT_EQUAL(gmem_fill(&gm, 4 * GiB - 4096, 1, 8192, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "32-bit hole"));
	CU_ASSERT_EQUAL(gmem_page_view(&gm, HOLE_PAGE)[0], 0);
	/* high RAM to its end, and past it */
	CU_ASSERT_TRUE(gmem_range_ok(&gm, 4 * GiB, 2 * GiB));
	CU_ASSERT_TRUE(gmem_range_ok(&gm, 6 * GiB, 0));
	CU_ASSERT_FALSE(gmem_range_ok(&gm, 6 * GiB - 4096, 4097));
	CU_ASSERT_EQUAL(gmem_read(&gm, 6 * GiB - 1, back, 2, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "runs past the end of guest RAM"));
	/* lengths that would wrap */
	CU_ASSERT_FALSE(gmem_range_ok(&gm, 4 * GiB, UINT64_MAX));
	CU_ASSERT_FALSE(gmem_range_ok(&gm, UINT64_MAX - 1, 4));

	/* giving pages back: whole pages in one range only */
	CU_ASSERT_EQUAL(gmem_release(&gm, 4 * GiB + 4096, 4096, NULL, &err), 0);
	CU_ASSERT_EQUAL(gmem_page_view(&gm, HOLE_PAGE + 1)[0], 0);
	CU_ASSERT_EQUAL(gmem_release(&gm, 3 * GiB - 4096, 8192, NULL, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	CU_ASSERT_EQUAL(gmem_page_view(&gm, HOLE_PAGE - 1)[0], 0x3e); /* kept */
	CU_ASSERT_EQUAL(gmem_release(&gm, 3 * GiB, 4096, NULL, &err), -1);
	gmem_destroy(&gm);
	CU_ASSERT_FALSE(gmem_range_ok(&gm, 4 * GiB, 1));
}

/* A test guest keeps the flat layout: RAM is RAM from 0 whatever its
 * size, and page = gpa / 4 KiB everywhere. */
static void test_translate_flat(void)
{
	struct guest_mem gm;
	struct fv_error err;
	uint64_t page;

	CU_ASSERT_EQUAL_FATAL(gmem_create(&gm, -1, MEM, &err), 0);
	CU_ASSERT_EQUAL(gm.nr_ranges, 1u);
	CU_ASSERT_EQUAL(gmem_gpa_to_page(&gm, MEM - 1, &page, &err), 0);
	CU_ASSERT_EQUAL(page, MEM / 4096 - 1);
	CU_ASSERT_EQUAL(gmem_gpa_to_page(&gm, MEM, &page, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	CU_ASSERT_PTR_NULL(strstr(err.msg, "hole"));
	CU_ASSERT_EQUAL(gmem_page_to_gpa(&gm, 7), 7 * 4096);
	gmem_destroy(&gm);
	/* a PC layout of 3 GiB or less is one range too */
	CU_ASSERT_EQUAL_FATAL(gmem_create_layout(&gm, -1, MEM, GMEM_LAYOUT_PC, NULL, &err), 0);
	CU_ASSERT_EQUAL(gm.nr_ranges, 1u);
	CU_ASSERT_EQUAL(gmem_page_to_gpa(&gm, MEM / 4096 - 1), MEM - 4096);
	gmem_destroy(&gm);
	/* an unknown layout is refused */
	CU_ASSERT_EQUAL(gmem_create_layout(&gm, -1, MEM, (enum gmem_layout)7, NULL, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
}

/* Host writes (devices) above the hole are marked dirty on the RAM page
 * they wrote, which is the bit the engine reads (no KVM here: the host
 * half of the log). */
static void test_dirty_high(void)
{
	struct guest_mem gm;
	struct fv_error err;
	uint64_t *bitmap;
	int uffd = open_uffd();

	if (uffd < 0) {
		fprintf(stderr, "\n  SKIP dirty above the hole: no userfaultfd (needs root) ");
		return;
	}
	CU_ASSERT_EQUAL_FATAL(gmem_create_layout(&gm, -1, HIGH_MEM, GMEM_LAYOUT_PC, NULL, &err), 0);
	CU_ASSERT_EQUAL_FATAL(gmem_dedup_enable(&gm, uffd, &err), 0);
	CU_ASSERT_EQUAL(gm.bitmap_words, HIGH_MEM / 4096 / 64);
	bitmap = calloc(gm.bitmap_words, sizeof(*bitmap));
	CU_ASSERT_PTR_NOT_NULL_FATAL(bitmap);
	CU_ASSERT_EQUAL(gmem_write(&gm, 4 * GiB + 3 * 4096, "x", 1, &err), 0);
	CU_ASSERT_EQUAL(gmem_write(&gm, 3 * GiB - 1, "y", 1, &err), 0);
	CU_ASSERT_EQUAL(gmem_fill(&gm, 6 * GiB - 4096, 1, 4096, &err), 0);
	CU_ASSERT_EQUAL(gmem_fetch_dirty(&gm, bitmap, &err), 0);
	for (uint64_t w = 0, n = 0; w < gm.bitmap_words; w++) {
		n += (uint64_t)__builtin_popcountll(bitmap[w]);
		if (w + 1 == gm.bitmap_words)
			CU_ASSERT_EQUAL(n, 3u);
	}
	/* (a uint64_t is no CU_BOOL: compared, not truncated) */
	CU_ASSERT_NOT_EQUAL(bitmap[(HOLE_PAGE + 3) / 64] & 1ull << ((HOLE_PAGE + 3) % 64), 0);
	CU_ASSERT_NOT_EQUAL(bitmap[(HOLE_PAGE - 1) / 64] & 1ull << ((HOLE_PAGE - 1) % 64), 0);
	CU_ASSERT_NOT_EQUAL(bitmap[gm.bitmap_words - 1] & 1ull << 63, 0);
	free(bitmap);
	gmem_destroy(&gm);
	close(uffd);
}

void unit_add_guest_mem_suite(void)
{
	CU_pSuite s = CU_add_suite("guest_mem", NULL, NULL);

	CU_add_test(s, "size checks", test_sizes);
	CU_add_test(s, "read/write/fill", test_read_write);
	CU_add_test(s, "bounds", test_bounds);
	CU_add_test(s, "too big", test_too_big);
	CU_add_test(s, "dedup enable failure", test_dedup_enable_failure);
	CU_add_test(s, "dedup page numbers checked", test_dedup_gfn_bounds);
	CU_add_test(s, "merging in place: the home rules", test_home_merge_in_place);
	CU_add_test(s, "layout: RAM ranges around the 32-bit hole", test_layout_ranges);
	CU_add_test(s, "translation: low RAM, hole, high RAM, boundaries", test_translate_high);
	CU_add_test(s, "translation: flat layout", test_translate_flat);
	CU_add_test(s, "host dirty bits above the hole", test_dirty_high);
}
