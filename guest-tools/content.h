/*
 * content.h - page contents shared by host and guest.
 *
 * Freestanding (no libc): the payload links it, and so do the host's tests
 * and benchmark, which use it to predict what a guest holds.
 */
#ifndef FOLDVM_CONTENT_H
#define FOLDVM_CONTENT_H

#include <stdint.h>
#include "testdev_abi.h"

enum fv_page_kind {
	FV_KIND_ZERO = 0,
	FV_KIND_SHARED = 1,
	FV_KIND_BLOB = 2,
	FV_KIND_UNIQUE = 3,
};

/* How many data pages of each kind a content spec yields. */
struct fv_layout_counts {
	uint64_t zero;
	uint64_t shared;
	uint64_t blob;
	uint64_t unique;
};

/* splitmix64 finaliser: a cheap bijective mixer. */
uint64_t fv_mix64(uint64_t x);

/* Fill one page (FV_PAGE_WORDS words) with content that depends only on
 * (seed, index): equal arguments give equal pages, anything else differs. */
void fv_fill_page(uint64_t *page, uint64_t seed, uint64_t index);

/* Checksum of one page; any changed byte changes it. */
uint64_t fv_checksum_page(const uint64_t *page);

/* Checksum of npages consecutive pages (order-sensitive). */
uint64_t fv_checksum_pages(const void *pages, uint64_t npages);

/* Split data_pages among the kinds; blob pages are capped by blob_pages. */
void fv_layout_counts(const struct fv_content_spec *spec, uint64_t data_pages,
		      uint64_t blob_pages, struct fv_layout_counts *out);

/* Kind of the page at permutation rank `rank` and the value that selects its
 * content: shared pool index, blob page index, or (unique) the page's own
 * position, which the caller passes in as `pos`. */
enum fv_page_kind fv_kind_of_rank(const struct fv_layout_counts *counts,
				  const struct fv_content_spec *spec,
				  uint64_t rank, uint64_t pos, uint64_t *selector);

/* Fisher-Yates permutation of 0..n-1 into perm[], seeded. */
void fv_permute(uint32_t *perm, uint64_t n, uint64_t seed);

/* Fisher-Yates shuffle of perm[0..n-1] in place (fv_permute without the
 * initial identity). */
void fv_shuffle(uint32_t *perm, uint64_t n, uint64_t seed);

/* Pages the file-start bitmap of blob_pages blob pages takes. */
uint64_t fv_blob_starts_pages(uint64_t blob_pages);

/* Called once per data page by fv_place_pages: the page at position pos
 * (0 .. data_pages-1) gets content `kind` with `selector` (as from
 * fv_kind_of_rank: shared pool index, blob page index, or for unique and
 * zero pages pos / 0). */
typedef void (*fv_place_fn)(void *ctx, uint64_t pos, enum fv_page_kind kind,
			    uint64_t selector);

/*
 * Decide where every data page goes, as spec->layout says (testdev_abi.h),
 * and call fn for each, every position exactly once.  scratch holds n
 * uint32_t.  starts: the file-start bitmap of the blob (mix layout; NULL =
 * every blob page a file of its own).  Scattered and clones are the seeded
 * permutation by rank (fv_permute, fv_kind_of_rank); mix shuffles files
 * (runs of blob pages) and single non-blob pages as items, then lays them
 * out in order, so each file's pages are consecutive.
 */
void fv_place_pages(const struct fv_content_spec *spec,
		    const struct fv_layout_counts *counts, uint64_t n,
		    const uint8_t *starts, uint32_t *scratch,
		    fv_place_fn fn, void *ctx);

/* Bytes the meta region needs for data_pages: checksum table + permutation
 * scratch, rounded up to a page. */
uint64_t fv_meta_size(uint64_t data_pages);

#endif
