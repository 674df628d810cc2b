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

	CU_ASSERT_EQUAL_FATAL(layout_compute(mem, &spec, 1ull << 20, &(struct layout_fixed){ 16, 256, 0 },
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
	CU_ASSERT_EQUAL_FATAL(layout_compute(mem, &spec, 0, &(struct layout_fixed){ 16, 256, 0 }, &l, &err), 0);
	CU_ASSERT_EQUAL(l.blob_pages, 0);
	CU_ASSERT(l.data_pages > with_blob);
}

static void test_layout_rejects(void)
{
	struct fv_content_spec spec = { .pct_zero = 60, .pct_shared = 50 };
	struct fv_guest_config l;
	struct fv_error err;

	CU_ASSERT_EQUAL(layout_compute(64ull << 20, &spec, 0, &(struct layout_fixed){ 16, 256, 0 }, &l, &err), -1);
	spec.pct_shared = 10;
	CU_ASSERT_EQUAL(layout_compute(4ull << 20, &spec, 0, &(struct layout_fixed){ 16, 256, 0 }, &l, &err), -1);
	CU_ASSERT_EQUAL(layout_compute(16ull << 20, &spec, 0, &(struct layout_fixed){ 3000, 65536, 0 }, &l, &err), -1);
}

/* What fv_place_pages decided: kind and selector of every position, and
 * how often each position was emitted. */
struct placed {
	uint64_t n;
	uint8_t *kind;
	uint64_t *sel;
	uint32_t *hits;
	uint64_t *order; /* positions in emission order */
	uint64_t emitted;
};

static void record(void *ctx, uint64_t pos, enum fv_page_kind kind, uint64_t sel)
{
	struct placed *p = ctx;

	CU_ASSERT_FATAL(pos < p->n);
	p->kind[pos] = (uint8_t)kind;
	p->sel[pos] = sel;
	p->hits[pos]++;
	p->order[p->emitted++] = pos;
}

static void place(struct placed *p, const struct fv_content_spec *spec,
		  uint64_t n, uint64_t blob_avail, const uint8_t *starts,
		  struct fv_layout_counts *c)
{
	uint32_t *scratch = malloc(n * sizeof(*scratch));

	p->n = n;
	p->kind = calloc(n, 1);
	p->sel = calloc(n, sizeof(*p->sel));
	p->hits = calloc(n, sizeof(*p->hits));
	p->order = calloc(n, sizeof(*p->order));
	p->emitted = 0;
	CU_ASSERT_FATAL(scratch && p->kind && p->sel && p->hits && p->order);
	fv_layout_counts(spec, n, blob_avail, c);
	fv_place_pages(spec, c, n, starts, scratch, record, p);
	free(scratch);
	/* every layout fills every position exactly once */
	CU_ASSERT_EQUAL(p->emitted, n);
	for (uint64_t i = 0; i < n; i++)
		CU_ASSERT_EQUAL(p->hits[i], 1);
}

static void placed_free(struct placed *p)
{
	free(p->kind);
	free(p->sel);
	free(p->hits);
	free(p->order);
}

static void check_counts(const struct placed *p, const struct fv_layout_counts *c)
{
	uint64_t k[4] = { 0 };

	for (uint64_t i = 0; i < p->n; i++)
		k[p->kind[i]]++;
	CU_ASSERT_EQUAL(k[FV_KIND_ZERO], c->zero);
	CU_ASSERT_EQUAL(k[FV_KIND_SHARED], c->shared);
	CU_ASSERT_EQUAL(k[FV_KIND_BLOB], c->blob);
	CU_ASSERT_EQUAL(k[FV_KIND_UNIQUE], c->unique);
}

/* scattered (the default) is exactly the seeded permutation by rank */
static void test_place_scattered(void)
{
	enum { N = 4000 };
	struct fv_content_spec spec = { .pct_zero = 20, .pct_shared = 30,
					.pct_blob = 25, .layout_seed = 77,
					.layout = FV_LAYOUT_SCATTERED };
	uint32_t *perm = malloc(N * sizeof(*perm));
	struct fv_layout_counts c;
	struct placed p;
	uint64_t blob_adjacent = 0;

	CU_ASSERT_FATAL(perm != NULL);
	place(&p, &spec, N, N, NULL, &c);
	check_counts(&p, &c);
	fv_permute(perm, N, spec.layout_seed);
	for (uint64_t r = 0; r < N; r++) {
		uint64_t sel;

		CU_ASSERT_EQUAL(p.order[r], perm[r]);
		CU_ASSERT_EQUAL(p.kind[perm[r]],
				fv_kind_of_rank(&c, &spec, r, perm[r], &sel));
		CU_ASSERT_EQUAL(p.sel[perm[r]], sel);
	}
	/* consecutive blob pages are almost never neighbours */
	for (uint64_t i = 0; i + 1 < N; i++)
		blob_adjacent += p.kind[i] == FV_KIND_BLOB &&
				 p.kind[i + 1] == FV_KIND_BLOB &&
				 p.sel[i + 1] == p.sel[i] + 1;
	CU_ASSERT(blob_adjacent < 10);
	placed_free(&p);
	free(perm);
}

static void set_start(uint8_t *starts, uint64_t page)
{
	starts[page / 8] |= (uint8_t)(1u << (page % 8));
}

/* mix: every file's pages consecutive, files at spread-out positions */
static void test_place_mix(void)
{
	enum { N = 4000, BLOB = 1000 };
	struct fv_content_spec spec = { .pct_zero = 20, .pct_shared = 30,
					.pct_blob = 25, .layout_seed = 77,
					.layout = FV_LAYOUT_MIX };
	uint8_t starts[BLOB / 8 + 1];
	uint64_t file_start[BLOB], nfiles = 0, len = 1;
	uint64_t *where = calloc(BLOB, sizeof(*where));
	uint64_t lo = N, hi = 0, unique_moved = 0;
	struct fv_layout_counts c;
	struct placed p;

	CU_ASSERT_FATAL(where != NULL);
	/* files of 1, 2, .. 40 pages, then again; the last one is cut */
	memset(starts, 0, sizeof(starts));
	for (uint64_t pg = 0; pg < BLOB; pg += len, len = len % 40 + 1) {
		set_start(starts, pg);
		file_start[nfiles++] = pg;
	}
	place(&p, &spec, N, BLOB, starts, &c);
	CU_ASSERT_EQUAL_FATAL(c.blob, N / 4);
	check_counts(&p, &c);
	for (uint64_t i = 0; i < N; i++) {
		if (p.kind[i] == FV_KIND_BLOB)
			where[p.sel[i]] = i;
		if (p.kind[i] == FV_KIND_UNIQUE)
			unique_moved += p.sel[i] != i;
	}
	CU_ASSERT_EQUAL(unique_moved, 0); /* unique content is by position */
	/* the blob pages used are 0..c.blob-1, each file a run */
	for (uint64_t f = 0; f < nfiles && file_start[f] < c.blob; f++) {
		uint64_t end = f + 1 < nfiles ? file_start[f + 1] : BLOB;

		if (end > c.blob)
			end = c.blob;
		for (uint64_t pg = file_start[f] + 1; pg < end; pg++)
			CU_ASSERT_EQUAL(where[pg], where[pg - 1] + 1);
		if (where[file_start[f]] < lo)
			lo = where[file_start[f]];
		if (where[file_start[f]] > hi)
			hi = where[file_start[f]];
	}
	/* files start at random frames all over the region, not packed */
	CU_ASSERT(lo < N / 10);
	CU_ASSERT(hi > N - N / 10);
	/* and the file order is shuffled too */
	CU_ASSERT(where[file_start[1]] != where[file_start[0]] + 1);
	placed_free(&p);

	/* without a start bitmap every blob page is a file of its own */
	place(&p, &spec, N, BLOB, NULL, &c);
	check_counts(&p, &c);
	placed_free(&p);
	free(where);
}

/* clones: two guests of one layout seed hold the same content at the same
 * positions, except their unique pages (same positions, other content) */
static void test_place_clones(void)
{
	enum { N = 600 };
	struct fv_content_spec a = { .pct_zero = 20, .pct_shared = 30,
				     .pct_blob = 25, .shared_seed = 5,
				     .unique_seed = 100, .layout_seed = 9,
				     .layout = FV_LAYOUT_CLONES };
	struct fv_content_spec b = a;
	struct fv_layout_counts ca, cb;
	struct placed pa, pb;
	static uint64_t x[FV_PAGE_WORDS], y[FV_PAGE_WORDS];

	b.unique_seed = 200;
	place(&pa, &a, N, N, NULL, &ca);
	place(&pb, &b, N, N, NULL, &cb);
	check_counts(&pa, &ca);
	for (uint64_t i = 0; i < N; i++) {
		CU_ASSERT_EQUAL(pa.kind[i], pb.kind[i]);
		CU_ASSERT_EQUAL(pa.sel[i], pb.sel[i]);
		if (pa.kind[i] != FV_KIND_UNIQUE && pa.kind[i] != FV_KIND_SHARED)
			continue;
		/* the page the payload writes there */
		fv_fill_page(x, pa.kind[i] == FV_KIND_SHARED ? a.shared_seed :
			     a.unique_seed, pa.sel[i]);
		fv_fill_page(y, pb.kind[i] == FV_KIND_SHARED ? b.shared_seed :
			     b.unique_seed, pb.sel[i]);
		CU_ASSERT_EQUAL(memcmp(x, y, sizeof(x)) == 0,
				pa.kind[i] == FV_KIND_SHARED);
	}
	placed_free(&pa);
	placed_free(&pb);
	/* another layout seed (another name, without clones) moves pages */
	b.layout_seed = 10;
	place(&pb, &b, N, N, NULL, &cb);
	place(&pa, &a, N, N, NULL, &ca);
	CU_ASSERT_NOT_EQUAL(memcmp(pa.kind, pb.kind, N), 0);
	placed_free(&pa);
	placed_free(&pb);
}

/* A 1 GiB guest of the default content mix, 1 MiB of files, `layout`. */
static int layout_1g(uint32_t layout, uint64_t blob_bytes,
		     struct fv_guest_config *l)
{
	struct fv_content_spec spec = { .pct_zero = 25, .pct_shared = 25,
					.pct_blob = 25, .layout = layout };
	struct fv_error err;

	return layout_compute(1ull << 30, &spec, blob_bytes, &(struct layout_fixed){ 16, 256, 0 }, l, &err);
}

/* the mix layout reserves the file-start bitmap right below the blob */
static void test_layout_starts_region(void)
{
	struct fv_guest_config l;

	CU_ASSERT_EQUAL_FATAL(layout_1g(FV_LAYOUT_SCATTERED, 1ull << 20, &l), 0);
	CU_ASSERT_EQUAL(l.blob_starts_gpa, 0);
	CU_ASSERT_EQUAL_FATAL(layout_1g(FV_LAYOUT_CLONES, 1ull << 20, &l), 0);
	CU_ASSERT_EQUAL(l.blob_starts_gpa, 0);
	CU_ASSERT_EQUAL_FATAL(layout_1g(FV_LAYOUT_MIX, 1ull << 20, &l), 0);
	CU_ASSERT(l.blob_pages > 8 * FV_PAGE_SIZE); /* a bitmap of 2+ pages */
	CU_ASSERT_EQUAL(fv_blob_starts_pages(l.blob_pages), 2);
	CU_ASSERT_EQUAL(l.blob_starts_gpa + 2 * FV_PAGE_SIZE, l.blob_gpa);
	CU_ASSERT(l.probe_gpa + 256 * FV_PAGE_SIZE <= l.blob_starts_gpa);
	CU_ASSERT_EQUAL(l.content.layout, FV_LAYOUT_MIX);
	/* no files: no bitmap */
	CU_ASSERT_EQUAL_FATAL(layout_1g(FV_LAYOUT_MIX, 0, &l), 0);
	CU_ASSERT_EQUAL(l.blob_starts_gpa, 0);
	CU_ASSERT_EQUAL(layout_1g(3, 0, &l), -1);
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
	CU_add_test(s, "place: scattered", test_place_scattered);
	CU_add_test(s, "place: mix", test_place_mix);
	CU_add_test(s, "place: clones", test_place_clones);
	CU_add_test(s, "layout: file-start bitmap", test_layout_starts_region);
}
