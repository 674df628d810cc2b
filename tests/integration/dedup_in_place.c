/*
 * dedup_in_place.c - clones merge in place: one copy, no mapping of their own.
 *
 * Three guests of one trust domain hold the same contents at the same guest
 * addresses (layout=clones: guests booted from one image).  The first runs
 * alone under the engine for a while (its pages wait as candidates, with
 * no twin yet); then the other two join.  Two of them also write their
 * probe pages; the third leaves its own untouched, so that its
 * never-written pages lie over slots the other two filled.  After the
 * engine's passes:
 *  - every shared content is one host frame in all three guests - the
 *    first one's waiting candidates included - and that frame is the
 *    domain's home file (pagemap: file-backed), not a copy;
 *  - the merges added no VMA at all (the home is one mapping per guest);
 *  - the untouched probe pages are still the kernel's zero page;
 *  - the process's Pss dropped by what was merged;
 * then one guest rewrites some pages:
 *  - each guest verifies its own memory, and the rewritten pages hold a
 *    private copy while the other guests still read the home;
 * and when the guests are gone, so is every page of the home.
 */
#include "guest-tools/content.h"
#include "tests/integration/kvmtest.h"

#define SPEC ",mem=32M,zero=20,shared=50,layout=clones,seed=77,probe-pages=64," \
	"dedup=on,domain=clones"
#define NG 3

static uint64_t data_gpa(struct guest *g, uint64_t pos)
{
	return g->layout.data_gpa + pos * FV_PAGE_SIZE;
}

static struct procstat_page entry_of(struct guest *g, uint64_t gpa)
{
	struct procstat_pagemap pm;
	struct procstat_page pg;
	struct fv_error err;
	uint64_t page = 0;

	KT_ASSERT(gmem_gpa_to_page(&g->mem, gpa, &page, &err) == 0, "%s", err.msg);
	(void)*(const volatile uint8_t *)gmem_page_view(&g->mem, page);
	KT_ASSERT(procstat_pagemap_open(&pm, &err) == 0, "%s", err.msg);
	procstat_pagemap_read(&pm, gmem_page_hva(&g->mem, page), &pg, NULL);
	procstat_pagemap_close(&pm);
	return pg;
}

/* Shared contents that are one home page in every guest. */
static uint64_t count_in_home(struct guest *g[NG], const uint32_t *pos, uint64_t n)
{
	uint64_t same = 0;

	for (uint64_t k = 0; k < n; k++) {
		struct procstat_page p0 = entry_of(g[0], data_gpa(g[0], pos[k]));
		bool ok = p0.present && p0.file && p0.pfn;

		for (int i = 1; i < NG && ok; i++) {
			struct procstat_page pi = entry_of(g[i], data_gpa(g[i], pos[k]));

			ok = pi.present && pi.file && pi.pfn == p0.pfn;
		}
		same += ok;
	}
	return same;
}

/* Pss of the guests' RAM ranges: what their memory costs, without what
 * the process allocated meanwhile (the engine's index, the sanitizers'
 * shadow and quarantine), which a whole-process Pss would count. */
static uint64_t guests_pss(struct guest *g[NG])
{
	uint64_t pss = 0;

	for (int i = 0; i < NG; i++) {
		uint64_t lo = (uintptr_t)gmem_page_hva(&g[i]->mem, 0);
		struct procstat_mem m;
		struct fv_error err;

		KT_ASSERT(procstat_range(lo, lo + gmem_pages(&g[i]->mem) * FV_PAGE_SIZE,
					 &m, &err) == 0, "%s", err.msg);
		pss += m.pss;
	}
	return pss;
}

int main(void)
{
	struct kvm_sys kvm;
	struct dedup_engine *e;
	struct guest *g[NG];
	struct dedup_host_stats hs;
	uint64_t before, after;
	uint64_t n, in_home, zpfn, expect, dropped, churn = 64, seed = 99, copied = 0;
	uint64_t merged_before = 0;
	uint32_t *pos;
	char spec[256];

	kt_require_kvm("dedup_in_place");
	kt_open(&kvm);
	e = kt_engine(0);
	dedup_set_paused(e, true);
	for (int i = 0; i < NG; i++) {
		snprintf(spec, sizeof(spec), "name=c%d" SPEC, i);
		g[i] = kt_guest(&kvm, e, spec);
		kt_fill(g[i]);
		if (i == 0) {
			/* c0 alone: its pages become candidates, settled
			 * until written; the slots must still find them. */
			dedup_set_paused(e, false);
			kt_passes(e, 2);
			dedup_set_paused(e, true);
		}
		/* c0 and c1 write their probe pages (one pattern word each:
		 * alike in a guest, so written only now that c0 has twins at
		 * their addresses); c2's stay untouched, over the slots c0
		 * and c1 will fill. */
		if (i < 2)
			kt_cmd(g[i], 0, FV_CMD_MEASURE_WRITE, g[i]->layout.probe_gpa,
			       g[i]->layout.probe_pages, FV_PAGE_SIZE, 0);
	}
	pos = kt_shared_positions(g[0], &n);
	KT_ASSERT(n > 1000, "only %llu shared contents", (unsigned long long)n);
	before = guests_pss(g);

	dedup_set_paused(e, false);
	kt_passes(e, 3);
	zpfn = procstat_zero_pfn();
	in_home = count_in_home(g, pos, n);
	KT_ASSERT(in_home == n, "only %llu of %llu shared contents are one home page",
		  (unsigned long long)in_home, (unsigned long long)n);
	/* Nothing here needs a mapping: every content that repeats sits at
	 * the same address in the other guests (the probe pages included). */
	dedup_get_host_stats(e, &hs);
	KT_ASSERT(hs.vmas_used == 0, "merges added %llu VMAs", (unsigned long long)hs.vmas_used);
	for (uint64_t p = 0; p < g[2]->layout.probe_pages; p++) {
		struct procstat_page pg = entry_of(g[2], g[2]->layout.probe_gpa + p * FV_PAGE_SIZE);

		KT_ASSERT(!pg.file && (!pg.present || pg.pfn == zpfn),
			  "untouched probe page %llu is not the zero page", (unsigned long long)p);
	}
	/* Pss: three copies of each shared content became one. */
	after = guests_pss(g);
	expect = 2 * n * FV_PAGE_SIZE;
	dropped = before > after ? before - after : 0;
	KT_ASSERT(dropped * 100 >= expect * 90,
		  "Pss dropped %llu KiB, expected at least about %llu KiB",
		  (unsigned long long)dropped >> 10, (unsigned long long)expect >> 10);

	/* c0 rewrites pages: its copies are its own, the others read on. */
	dedup_set_paused(e, true);
	for (int i = 0; i < NG; i++)
		merged_before += kt_stats(g[i]).pages_in_place;
	kt_cmd(g[0], 0, FV_CMD_CHURN, churn, 0, seed, 0);
	for (int i = 0; i < NG; i++)
		kt_verify(g[i]);
	for (uint64_t k = 0; k < n; k++) {
		struct procstat_page p0 = entry_of(g[0], data_gpa(g[0], pos[k]));
		struct procstat_page p1 = entry_of(g[1], data_gpa(g[1], pos[k]));

		KT_ASSERT(p1.file, "c1's shared page %llu left the home", (unsigned long long)k);
		copied += !p0.file;
	}
	KT_ASSERT(copied > 0 && copied <= churn, "%llu of c0's shared pages copied by %llu writes",
		  (unsigned long long)copied, (unsigned long long)churn);
	dedup_set_paused(e, false);
	kt_passes(e, 2);
	for (int i = 0; i < NG; i++)
		kt_verify(g[i]);
	printf("dedup_in_place: %llu shared contents, one home page each in %d clones, "
	       "0 VMAs added, Pss -%llu KiB (expected ~%llu KiB); %llu pages in place "
	       "(probe and bookkeeping pages too) before c0 rewrote %llu shared ones\n",
	       (unsigned long long)n, NG, (unsigned long long)dropped >> 10,
	       (unsigned long long)expect >> 10, (unsigned long long)merged_before,
	       (unsigned long long)copied);
	free(pos);
	for (int i = 0; i < NG; i++)
		kt_destroy(g[i]);
	/* The last reference of each slot went with its guest. */
	KT_ASSERT(gmem_homes_resident_bytes() == 0, "the home still holds %llu bytes",
		  (unsigned long long)gmem_homes_resident_bytes());
	dedup_destroy(e);
	kvm_sys_close(&kvm);
	return 0;
}
