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

void unit_add_guest_mem_suite(void)
{
	CU_pSuite s = CU_add_suite("guest_mem", NULL, NULL);

	CU_add_test(s, "size checks", test_sizes);
	CU_add_test(s, "read/write/fill", test_read_write);
	CU_add_test(s, "bounds", test_bounds);
	CU_add_test(s, "too big", test_too_big);
	CU_add_test(s, "dedup enable failure", test_dedup_enable_failure);
	CU_add_test(s, "dedup page numbers checked", test_dedup_gfn_bounds);
}
