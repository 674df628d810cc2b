/* test_content.c - the content spec: page generator, checksums, layout. */
#include <stdlib.h>
#include <string.h>
#include <CUnit/CUnit.h>
#include "guest-tools/content.h"
#include "tests/unit/unit.h"
#include "vmm/layout.h"

static void test_fill_deterministic(void)
{
	static uint64_t a[FV_PAGE_WORDS], b[FV_PAGE_WORDS], c[FV_PAGE_WORDS];

	fv_fill_page(a, 1, 7);
	fv_fill_page(b, 1, 7);
	fv_fill_page(c, 1, 8);
	CU_ASSERT_EQUAL(memcmp(a, b, sizeof(a)), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(a, c, sizeof(a)), 0);
	fv_fill_page(c, 2, 7);
	CU_ASSERT_NOT_EQUAL(memcmp(a, c, sizeof(a)), 0);
}

static void test_checksum_sensitive(void)
{
	static uint64_t p[FV_PAGE_WORDS];
	uint64_t base;

	fv_fill_page(p, 3, 3);
	base = fv_checksum_page(p);
	/* every single-bit flip in the first and last word changes it */
	for (int bit = 0; bit < 64; bit++) {
		p[0] ^= 1ull << bit;
		CU_ASSERT_NOT_EQUAL(fv_checksum_page(p), base);
		p[0] ^= 1ull << bit;
		p[FV_PAGE_WORDS - 1] ^= 1ull << bit;
		CU_ASSERT_NOT_EQUAL(fv_checksum_page(p), base);
		p[FV_PAGE_WORDS - 1] ^= 1ull << bit;
	}
	CU_ASSERT_EQUAL(fv_checksum_page(p), base);
	/* swapping two words changes it too */
	uint64_t t = p[1];
	p[1] = p[2];
	p[2] = t;
	CU_ASSERT_NOT_EQUAL(fv_checksum_page(p), base);
}

static void test_layout_counts(void)
{
	struct fv_content_spec spec = { .pct_zero = 25, .pct_shared = 25,
					.pct_blob = 25 };
	struct fv_layout_counts c;

	fv_layout_counts(&spec, 1000, 1000, &c);
	CU_ASSERT_EQUAL(c.zero, 250);
	CU_ASSERT_EQUAL(c.shared, 250);
	CU_ASSERT_EQUAL(c.blob, 250);
	CU_ASSERT_EQUAL(c.unique, 250);
	/* blob capped by what the host has */
	fv_layout_counts(&spec, 1000, 100, &c);
	CU_ASSERT_EQUAL(c.blob, 100);
	CU_ASSERT_EQUAL(c.unique, 400);
	/* totals always add up */
	spec.pct_zero = 100;
	fv_layout_counts(&spec, 999, 1000, &c);
	CU_ASSERT_EQUAL(c.zero + c.shared + c.blob + c.unique, 999);
	CU_ASSERT_EQUAL(c.zero, 999);
}

static void test_kind_of_rank(void)
{
	struct fv_content_spec spec = { .pct_zero = 10, .pct_shared = 20,
					.pct_blob = 30, .shared_pool = 5 };
	struct fv_layout_counts c;
	uint64_t sel, n[4] = { 0 };

	fv_layout_counts(&spec, 100, 100, &c);
	for (uint64_t r = 0; r < 100; r++) {
		enum fv_page_kind k = fv_kind_of_rank(&c, &spec, r, 1000 + r, &sel);

		n[k]++;
		if (k == FV_KIND_SHARED)
			CU_ASSERT(sel < 5);
		if (k == FV_KIND_UNIQUE)
			CU_ASSERT_EQUAL(sel, 1000 + r);
	}
	CU_ASSERT_EQUAL(n[FV_KIND_ZERO], 10);
	CU_ASSERT_EQUAL(n[FV_KIND_SHARED], 20);
	CU_ASSERT_EQUAL(n[FV_KIND_BLOB], 30);
	CU_ASSERT_EQUAL(n[FV_KIND_UNIQUE], 40);
}

static void test_permutation(void)
{
	enum { N = 5000 };
	uint32_t *p = malloc(N * sizeof(*p)), *q = malloc(N * sizeof(*q));
	char *seen = calloc(N, 1);
	unsigned fixed = 0;

	CU_ASSERT_FATAL(p && q && seen);
	fv_permute(p, N, 42);
	fv_permute(q, N, 43);
	for (unsigned i = 0; i < N; i++) {
		CU_ASSERT(p[i] < N);
		CU_ASSERT_FALSE(seen[p[i]]);
		seen[p[i]] = 1;
		fixed += p[i] == i;
	}
	CU_ASSERT(fixed < 20); /* scattered, like a page cache */
	CU_ASSERT_NOT_EQUAL(memcmp(p, q, N * sizeof(*p)), 0);
	free(p);
	free(q);
	free(seen);
}

static void test_layout_regions(void)
{
	struct fv_content_spec spec = { .pct_zero = 25, .pct_shared = 25,
					.pct_blob = 25 };
	struct fv_guest_config l;
	struct fv_error err;
	uint64_t mem = 128ull << 20;

	CU_ASSERT_EQUAL_FATAL(layout_compute(mem, &spec, 1ull << 20, 16, 256,
					     &l, &err), 0);
	CU_ASSERT_EQUAL(l.magic, FV_CONFIG_MAGIC);
	CU_ASSERT_EQUAL(l.meta_gpa, FV_META_GPA);
	CU_ASSERT(l.meta_size >= fv_meta_size(l.data_pages));
	CU_ASSERT_EQUAL(l.data_gpa, l.meta_gpa + l.meta_size);
	CU_ASSERT_EQUAL(l.race_gpa, l.data_gpa + l.data_pages * FV_PAGE_SIZE);
	CU_ASSERT_EQUAL(l.probe_gpa, l.race_gpa + 16 * FV_PAGE_SIZE);
	CU_ASSERT(l.probe_gpa + 256 * FV_PAGE_SIZE <= l.blob_gpa);
	CU_ASSERT_EQUAL(l.blob_gpa + l.blob_pages * FV_PAGE_SIZE, mem);
	/* the blob is a quarter of the data pages, nearly all RAM is used */
	CU_ASSERT_EQUAL(l.blob_pages, l.data_pages / 4);
	CU_ASSERT(l.blob_gpa - (l.probe_gpa + 256 * FV_PAGE_SIZE) <
		  8 * FV_PAGE_SIZE);
	/* with no files there is no blob and more data */
	uint64_t with_blob = l.data_pages;
	CU_ASSERT_EQUAL_FATAL(layout_compute(mem, &spec, 0, 16, 256, &l, &err), 0);
	CU_ASSERT_EQUAL(l.blob_pages, 0);
	CU_ASSERT(l.data_pages > with_blob);
}

static void test_layout_rejects(void)
{
	struct fv_content_spec spec = { .pct_zero = 60, .pct_shared = 50 };
	struct fv_guest_config l;
	struct fv_error err;

	CU_ASSERT_EQUAL(layout_compute(64ull << 20, &spec, 0, 16, 256, &l, &err), -1);
	spec.pct_shared = 10;
	CU_ASSERT_EQUAL(layout_compute(4ull << 20, &spec, 0, 16, 256, &l, &err), -1);
	CU_ASSERT_EQUAL(layout_compute(16ull << 20, &spec, 0, 3000, 65536, &l, &err), -1);
}

void unit_add_content_suite(void)
{
	CU_pSuite s = CU_add_suite("content", NULL, NULL);

	CU_add_test(s, "fill is deterministic", test_fill_deterministic);
	CU_add_test(s, "checksum sensitivity", test_checksum_sensitive);
	CU_add_test(s, "layout counts", test_layout_counts);
	CU_add_test(s, "kind of rank", test_kind_of_rank);
	CU_add_test(s, "permutation", test_permutation);
	CU_add_test(s, "layout regions", test_layout_regions);
	CU_add_test(s, "layout rejects", test_layout_rejects);
}
