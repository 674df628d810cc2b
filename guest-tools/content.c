/*
 * content.c - deterministic page contents, shared by host and guest.
 * Freestanding: no libc calls, no floating point, no SSE needed.
 */
#include "content.h"

uint64_t fv_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void fv_fill_page(uint64_t *page, uint64_t seed, uint64_t index)
{
	uint64_t state = fv_mix64(seed ^ fv_mix64(index));

	for (uint32_t w = 0; w < FV_PAGE_WORDS; w++) {
		state += 0x9e3779b97f4a7c15ull;
		page[w] = fv_mix64(state);
	}
}

uint64_t fv_checksum_page(const uint64_t *page)
{
	uint64_t h = 0x243f6a8885a308d3ull;

	for (uint32_t w = 0; w < FV_PAGE_WORDS; w++) {
		h = (h ^ page[w]) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	return fv_mix64(h);
}

uint64_t fv_checksum_pages(const void *pages, uint64_t npages)
{
	const uint64_t *p = pages;
	uint64_t h = 0;

	for (uint64_t i = 0; i < npages; i++)
		h = fv_mix64(h ^ fv_checksum_page(p + i * FV_PAGE_WORDS));
	return h;
}

static uint64_t percent_of(uint64_t n, uint32_t pct)
{
	return pct >= 100 ? n : n / 100 * pct + n % 100 * pct / 100;
}

void fv_layout_counts(const struct fv_content_spec *spec, uint64_t data_pages,
		      uint64_t blob_pages, struct fv_layout_counts *out)
{
	uint64_t left = data_pages;

	out->zero = percent_of(data_pages, spec->pct_zero);
	if (out->zero > left)
		out->zero = left;
	left -= out->zero;
	out->shared = percent_of(data_pages, spec->pct_shared);
	if (out->shared > left)
		out->shared = left;
	left -= out->shared;
	out->blob = percent_of(data_pages, spec->pct_blob);
	if (out->blob > blob_pages)
		out->blob = blob_pages;
	if (out->blob > left)
		out->blob = left;
	left -= out->blob;
	out->unique = left;
}

enum fv_page_kind fv_kind_of_rank(const struct fv_layout_counts *c,
				  const struct fv_content_spec *spec,
				  uint64_t rank, uint64_t pos, uint64_t *selector)
{
	if (rank < c->zero) {
		*selector = 0;
		return FV_KIND_ZERO;
	}
	rank -= c->zero;
	if (rank < c->shared) {
		*selector = spec->shared_pool ? rank % spec->shared_pool : rank;
		return FV_KIND_SHARED;
	}
	rank -= c->shared;
	if (rank < c->blob) {
		*selector = rank;
		return FV_KIND_BLOB;
	}
	*selector = pos;
	return FV_KIND_UNIQUE;
}

void fv_permute(uint32_t *perm, uint64_t n, uint64_t seed)
{
	for (uint64_t i = 0; i < n; i++)
		perm[i] = (uint32_t)i;
	fv_shuffle(perm, n, seed);
}

void fv_shuffle(uint32_t *perm, uint64_t n, uint64_t seed)
{
	uint64_t state = fv_mix64(seed);

	for (uint64_t i = n; i > 1; i--) {
		uint64_t j;

		state = fv_mix64(state);
		j = state % i;
		uint32_t t = perm[i - 1];
		perm[i - 1] = perm[j];
		perm[j] = t;
	}
}

uint64_t fv_meta_size(uint64_t data_pages)
{
	uint64_t bytes = data_pages * (sizeof(uint64_t) + sizeof(uint32_t));

	return (bytes + FV_PAGE_SIZE - 1) & ~(FV_PAGE_SIZE - 1);
}

uint64_t fv_blob_starts_pages(uint64_t blob_pages)
{
	uint64_t bits = FV_PAGE_SIZE * 8;

	return (blob_pages + bits - 1) / bits;
}

static int file_starts_at(const uint8_t *starts, uint64_t p)
{
	return p == 0 || !starts || (starts[p / 8] >> (p % 8)) & 1;
}

/* Mix: items are single non-blob pages (values 0 .. singles-1, the i-th
 * non-blob rank) and files (value singles + the file's first blob page). */
static void place_mix(const struct fv_content_spec *spec,
		      const struct fv_layout_counts *c, uint64_t n,
		      const uint8_t *starts, uint32_t *items,
		      fv_place_fn fn, void *ctx)
{
	uint64_t singles = n - c->blob, nitems = 0, pos = 0;
	uint64_t head = c->zero + c->shared; /* non-blob ranks before the blob's */

	for (uint64_t i = 0; i < singles; i++)
		items[nitems++] = (uint32_t)i;
	for (uint64_t p = 0; p < c->blob; p++) {
		if (file_starts_at(starts, p))
			items[nitems++] = (uint32_t)(singles + p);
	}
	fv_shuffle(items, nitems, spec->layout_seed);

	for (uint64_t k = 0; k < nitems; k++) {
		uint64_t v = items[k], sel = 0;

		if (v < singles) {
			uint64_t rank = v < head ? v : v + c->blob;
			enum fv_page_kind kind =
				fv_kind_of_rank(c, spec, rank, pos, &sel);

			fn(ctx, pos, kind, sel);
			pos++;
			continue;
		}
		for (uint64_t p = v - singles; p < c->blob; p++) {
			if (p != v - singles && file_starts_at(starts, p))
				break;
			fn(ctx, pos++, FV_KIND_BLOB, p);
		}
	}
}

void fv_place_pages(const struct fv_content_spec *spec,
		    const struct fv_layout_counts *c, uint64_t n,
		    const uint8_t *starts, uint32_t *scratch,
		    fv_place_fn fn, void *ctx)
{
	if (spec->layout == FV_LAYOUT_MIX) {
		place_mix(spec, c, n, starts, scratch, fn, ctx);
		return;
	}
	/* scattered, clones (the host chose a common seed for clones) */
	fv_permute(scratch, n, spec->layout_seed);
	for (uint64_t rank = 0; rank < n; rank++) {
		uint64_t pos = scratch[rank], sel = 0;
		enum fv_page_kind k = fv_kind_of_rank(c, spec, rank, pos, &sel);

		fn(ctx, pos, k, sel);
	}
}
