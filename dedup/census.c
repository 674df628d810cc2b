/*
 * census.c - every guest page in one class: zero, same-address duplicate,
 * other-address duplicate by run length, unique (census.h says what each
 * means and why the classes add up).
 *
 * Three steps, all read-only: hash every page (zero pages apart); sort the
 * non-zero pages by (domain, hash), so the occurrences of a content are
 * one range found by binary search; then walk each guest from its first
 * page, classifying a page, or at a run's start the whole run at once.
 * Memory: 24 bytes a non-zero page for the sorted array, 9 a page for the
 * hashes and zero flags (about 1.2% of the guests' RAM, for the call).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "dedup/census.h"

#define PAGE 4096u

struct rec {
	uint64_t hash;
	uint32_t domain;
	uint32_t guest;
	uint64_t gfn;
};

struct census {
	const struct census_src *src;
	uint64_t **hash;   /* [guest][gfn] */
	uint8_t **zero;    /* [guest][gfn]: 1 for an all-zero page */
	struct rec *recs;  /* non-zero pages, sorted by (domain, hash) */
	size_t nrecs;
	struct dedup_census *out;
};

enum census_run census_run_class(uint64_t len)
{
	if (len >= 512)
		return CENSUS_RUN_512;
	if (len >= 16)
		return CENSUS_RUN_16_511;
	if (len >= 2)
		return CENSUS_RUN_2_15;
	return CENSUS_RUN_1;
}

static const void *view(const struct census *c, unsigned i, uint64_t gfn)
{
	return c->src->view(c->src->opaque, i, gfn);
}

static int rec_cmp(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;

	if (x->domain != y->domain)
		return x->domain < y->domain ? -1 : 1;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	if (x->guest != y->guest)
		return x->guest < y->guest ? -1 : 1;
	return x->gfn < y->gfn ? -1 : x->gfn > y->gfn;
}

/* The first record of (domain, hash), or nrecs. */
static size_t first_rec(const struct census *c, uint32_t domain, uint64_t hash)
{
	size_t lo = 0, hi = c->nrecs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct rec *r = &c->recs[mid];

		if (r->domain < domain || (r->domain == domain && r->hash < hash))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Hash-equal and both non-zero: a candidate, not yet a verdict. */
static bool hash_eq(const struct census *c, unsigned i, uint64_t g, unsigned j, uint64_t h)
{
	return !c->zero[i][g] && !c->zero[j][h] && c->hash[i][g] == c->hash[j][h];
}

/* Equal content, byte for byte (both non-zero). */
static bool same(const struct census *c, unsigned i, uint64_t g, unsigned j, uint64_t h)
{
	return hash_eq(c, i, g, j, h) && !memcmp(view(c, i, g), view(c, j, h), PAGE);
}

/* Another guest of the domain holds it at the same page number. */
static bool in_place(const struct census *c, unsigned i, uint64_t g)
{
	const struct census_src *s = c->src;

	for (unsigned j = 0; j < s->n; j++)
		if (j != i && s->domains[j] == s->domains[i] && g < s->npages[j] &&
		    same(c, i, g, j, g))
			return true;
	return false;
}

/* How far (i, g) and (j, h) run in step, by hash, from their first page
 * (equal already): up to either guest's end, and within one guest only
 * while the two ranges do not overlap. */
static uint64_t run_on(const struct census *c, unsigned i, uint64_t g, unsigned j, uint64_t h)
{
	const struct census_src *s = c->src;
	uint64_t dist = i != j ? UINT64_MAX : (g > h ? g - h : h - g);
	uint64_t k = 1;

	while (g + k < s->npages[i] && h + k < s->npages[j] && k < dist &&
	       hash_eq(c, i, g + k, j, h + k))
		k++;
	return k;
}

/* Page g of guest i is non-zero, not same-address, and starts a run (or
 * is unique): classify it and the run's other pages; returns how many
 * pages were classified (>= 1). */
static uint64_t classify_from(struct census *c, unsigned i, uint64_t g)
{
	const struct census_src *s = c->src;
	uint32_t dom = s->domains[i];
	uint64_t hash = c->hash[i][g], best = 0, bj = 0, bh = 0;
	unsigned tried = 0;

	for (size_t k = first_rec(c, dom, hash);
	     k < c->nrecs && c->recs[k].domain == dom && c->recs[k].hash == hash &&
	     tried < CENSUS_PARTNERS; k++) {
		unsigned j = c->recs[k].guest;
		uint64_t h = c->recs[k].gfn, len;

		if (h == g || !same(c, i, g, j, h))
			continue; /* itself, same-address (not a partner), or a collision */
		tried++;
		len = run_on(c, i, g, j, h);
		if (len > best) {
			best = len;
			bj = j;
			bh = h;
		}
	}
	if (!best) {
		c->out->unique++;
		return 1;
	}
	/* The run was found by hash: confirm it byte for byte, and end it at
	 * the first page that differs. */
	for (uint64_t k = 1; k < best; k++)
		if (memcmp(view(c, i, g + k), view(c, bj, bh + k), PAGE)) {
			best = k;
			break;
		}
	for (uint64_t k = 0; k < best; k++) {
		if (in_place(c, i, g + k))
			c->out->same_address++;
		else
			c->out->run[census_run_class(best)]++;
	}
	return best;
}

static void census_free(struct census *c)
{
	for (unsigned i = 0; c->hash && c->zero && i < c->src->n; i++) {
		free(c->hash[i]);
		free(c->zero[i]);
	}
	free(c->hash);
	free(c->zero);
	free(c->recs);
}

int dedup_census(const struct census_src *src, struct dedup_census *out,
		 struct fv_error *err)
{
	static const uint8_t zero_page[PAGE];
	struct census c = { .src = src, .out = out };
	size_t nonzero = 0;

	memset(out, 0, sizeof(*out));
	c.hash = calloc(src->n ? src->n : 1, sizeof(*c.hash));
	c.zero = calloc(src->n ? src->n : 1, sizeof(*c.zero));
	if (!c.hash || !c.zero)
		goto nomem;
	for (unsigned i = 0; i < src->n; i++) {
		uint64_t np = src->npages[i];

		c.hash[i] = malloc((np ? np : 1) * sizeof(uint64_t));
		c.zero[i] = malloc(np ? np : 1);
		if (!c.hash[i] || !c.zero[i])
			goto nomem;
		for (uint64_t g = 0; g < np; g++) {
			const void *p = view(&c, i, g);

			c.zero[i][g] = !memcmp(p, zero_page, PAGE);
			c.hash[i][g] = c.zero[i][g] ? 0 : XXH3_64bits(p, PAGE);
			nonzero += !c.zero[i][g];
		}
		out->pages += np;
	}
	c.recs = malloc((nonzero ? nonzero : 1) * sizeof(*c.recs));
	if (!c.recs)
		goto nomem;
	for (unsigned i = 0; i < src->n; i++)
		for (uint64_t g = 0; g < src->npages[i]; g++)
			if (!c.zero[i][g])
				c.recs[c.nrecs++] = (struct rec){ c.hash[i][g], src->domains[i], i, g };
	qsort(c.recs, c.nrecs, sizeof(*c.recs), rec_cmp);

	for (unsigned i = 0; i < src->n; i++) {
		uint64_t g = 0;

		while (g < src->npages[i]) {
			if (c.zero[i][g]) {
				out->zero++;
				g++;
			} else if (in_place(&c, i, g)) {
				out->same_address++;
				g++;
			} else {
				g += classify_from(&c, i, g);
			}
		}
	}
	census_free(&c);
	return 0;
nomem:
	census_free(&c);
	return fv_err(err, FV_E_NOMEM, "census: no memory for the pages' hashes");
}
