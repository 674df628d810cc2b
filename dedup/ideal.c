/*
 * ideal.c - the most any full-page deduplication could save on the guests
 * as they are now: a census of their pages, with the trust-domain rules
 * (full contents merge within a domain, zero pages anywhere).
 *
 *   ideal = written zero pages                 (all can go)
 *         + non-zero pages - distinct contents (one copy of each stays)
 *
 * A zero page the guest never wrote (the kernel's zero page, or no page at
 * all) costs nothing and is not counted.  Read-only; the guests may run.
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#include "dedup/dedup.h"
#include "dedup/index.h"
#include "lib/procstat.h"

#define PAGE 4096ull

/* Does this zero page take memory (a page the guest wrote zeros into)?
 * Unreadable counts as "no", as for a page not present. */
static bool zero_page_costs(const struct procstat_pagemap *pm, uint64_t zpfn,
			    const void *va)
{
	struct procstat_page pg;

	procstat_pagemap_read(pm, va, &pg, NULL);
	return pg.present && pg.pfn != zpfn;
}

int dedup_ideal(struct guest_mem *const *gms, const uint32_t *domains,
		unsigned n, struct dedup_ideal *out, struct fv_error *err)
{
	static const uint8_t zero[PAGE];
	struct dedup_index seen;
	struct procstat_pagemap pagemap;

	memset(out, 0, sizeof(*out));
	if (procstat_pagemap_open(&pagemap, err))
		return -1;
	if (dedup_index_init(&seen, 65536)) {
		procstat_pagemap_close(&pagemap);
		return fv_err(err, FV_E_NOMEM, "census index");
	}
	uint64_t zpfn = procstat_zero_pfn();

	for (unsigned i = 0; i < n; i++) {
		for (uint64_t gfn = 0; gfn < gmem_pages(gms[i]); gfn++) {
			const uint8_t *p = gmem_page_view(gms[i], gfn);
			struct dedup_index_entry e = { .domain = domains[i] };
			size_t cur = 0;

			out->pages++;
			if (!memcmp(p, zero, PAGE)) {
				if (zpfn && zero_page_costs(&pagemap, zpfn, p))
					out->zero_pages++;
				continue;
			}
			out->nonzero_pages++;
			e.hash = XXH3_64bits(p, PAGE);
			if (dedup_index_next(&seen, e.hash, e.domain, &cur))
				continue;
			if (dedup_index_insert(&seen, &e)) {
				dedup_index_free(&seen);
				procstat_pagemap_close(&pagemap);
				return fv_err(err, FV_E_NOMEM, "census index");
			}
			out->distinct++;
		}
	}
	out->ideal_bytes = (out->zero_pages + out->nonzero_pages - out->distinct) * PAGE;
	dedup_index_free(&seen);
	procstat_pagemap_close(&pagemap);
	return 0;
}
