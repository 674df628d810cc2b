/*
 * census.h - what the guests' memory is made of, for dedup: every page
 * of every guest in exactly one class (query-dedup-census).
 *
 *   zero          all-zero content (discarded, never stored);
 *   same-address  non-zero, and another guest of the trust domain holds
 *                 the same content at the same guest-physical page (what
 *                 merges in place, with no mapping of its own);
 *   run-N         non-zero, the same content held elsewhere in the domain
 *                 (another guest at another address, or this guest at
 *                 another address), by the length of the run it is part
 *                 of: consecutive guest pages whose contents run in step
 *                 with consecutive pages of one partner - 1, 2-15, 16-511
 *                 or 512 and more pages (a run merges onto consecutive
 *                 frames with one mapping; a single page costs two VMAs);
 *   unique        non-zero content held nowhere else in the domain.
 *
 * So zero + same_address + run[0..3] + unique == pages, always.
 *
 * Runs are found from left to right: at a page that starts one, the
 * partner (one of at most CENSUS_PARTNERS occurrences of its content) with
 * which it runs on longest is taken, and the run ends where contents stop
 * running in step (or where a run within one guest would overlap itself).
 * A run is as long as that greedy choice makes it, a lower bound on the
 * longest one.  Contents are compared byte for byte along every run and
 * for every same-address and unique verdict; the hash only finds them.
 */
#ifndef FOLDVM_DEDUP_CENSUS_H
#define FOLDVM_DEDUP_CENSUS_H

#include <stdint.h>
#include "lib/error.h"

/* Occurrences of one content a run start tries as its partner. */
#define CENSUS_PARTNERS 16

enum census_run { CENSUS_RUN_1, CENSUS_RUN_2_15, CENSUS_RUN_16_511, CENSUS_RUN_512,
		  CENSUS_RUNS };

struct dedup_census {
	uint64_t pages;
	uint64_t zero;
	uint64_t same_address;
	uint64_t run[CENSUS_RUNS];  /* other-address duplicates by run length */
	uint64_t unique;
};

/* The guests to count: n of them, guest i has npages[i] pages, belongs
 * to trust domain domains[i] (equal numbers for one domain), and
 * view(opaque, i, gfn) is its page gfn (4 KiB, readable).  The pages may
 * change meanwhile (a running guest): the census is then of no single
 * instant, but its classes still add up. */
struct census_src {
	unsigned n;
	const uint64_t *npages;
	const uint32_t *domains;
	const void *(*view)(void *opaque, unsigned guest, uint64_t gfn);
	void *opaque;
};

/* The run class of a run of `len` pages (len >= 1). */
enum census_run census_run_class(uint64_t len);

int dedup_census(const struct census_src *src, struct dedup_census *out,
		 struct fv_error *err);

#endif
