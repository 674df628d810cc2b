/* test_guest_mem.c - the guest-memory API's bounds checks (no KVM needed:
 * the mapping is made without registering a memslot). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
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
}
