/*
 * dedup_gather.c - content at the same guest address ends up in place, even
 * when it sat on a store frame first.
 *
 * Guest a (layout=clones) and guest s (the same contents, scattered: other
 * addresses) of one trust domain run under the engine: their shared
 * contents go onto store frames (a VMA or two per page of a).  Then b, a
 * clone of a (the same contents at the same addresses), joins.  After the
 * engine's passes:
 *  - every shared content of a and b is one page of the domain's home file
 *    (pagemap: file-backed, the same frame): a's pages left their frames for
 *    the slots b's pages filled, rather than b's joining a's frames;
 *  - a's pages left their store mappings (store-pages-content about 0,
 *    pages-rehomed up by as many) and its RAM has that many VMAs fewer;
 *  - s keeps its pages on the frames, which still hold its content;
 *  - every guest verifies its own memory.
 */
#include "guest-tools/content.h"
#include "tests/integration/kvmtest.h"

#define SPEC ",mem=32M,zero=20,shared=50,seed=77,dedup=on,domain=gather"

static struct procstat_page entry_of(struct guest *g, uint64_t gpa)
{
	struct procstat_pagemap pm;
	struct procstat_page pg;
	struct fv_error err;
	uint64_t page = kt_page(g, gpa);

	(void)*(const volatile uint8_t *)gmem_page_view(&g->mem, page);
	KT_ASSERT(procstat_pagemap_open(&pm, &err) == 0, "%s", err.msg);
	procstat_pagemap_read(&pm, gmem_page_hva(&g->mem, page), &pg, NULL);
	procstat_pagemap_close(&pm);
	return pg;
}

int main(void)
{
	struct kvm_sys kvm;
	struct dedup_engine *e;
	struct guest *a, *b, *s;
	struct dedup_guest_stats a0, a1;
	uint64_t n, ns, in_home = 0, v0, v1;
	uint32_t *pos, *spos;

	kt_require_kvm("dedup_gather");
	kt_open(&kvm);
	e = kt_engine(0);
	dedup_set_paused(e, true);
	a = kt_guest(&kvm, e, "name=a,layout=clones" SPEC);
	s = kt_guest(&kvm, e, "name=s" SPEC);
	kt_fill(a);
	kt_fill(s);
	pos = kt_shared_positions(a, &n);
	spos = kt_shared_positions(s, &ns);
	KT_ASSERT(n > 1000 && ns == n, "%llu and %llu shared contents", (unsigned long long)n,
		  (unsigned long long)ns);
	dedup_set_paused(e, false);
	kt_passes(e, 3);
	a0 = kt_stats(a);
	v0 = kt_ram_vmas(a);
	KT_ASSERT(a0.store_content >= n * 9 / 10, "a: only %llu of %llu shared pages on frames",
		  (unsigned long long)a0.store_content, (unsigned long long)n);

	dedup_set_paused(e, true);
	b = kt_guest(&kvm, e, "name=b,layout=clones" SPEC);
	kt_fill(b);
	dedup_set_paused(e, false);
	kt_passes(e, 3);
	for (uint64_t k = 0; k < n; k++) {
		uint64_t gpa = a->layout.data_gpa + pos[k] * (uint64_t)FV_PAGE_SIZE;
		struct procstat_page pa = entry_of(a, gpa), pb = entry_of(b, gpa);
		struct procstat_page ps = entry_of(s, s->layout.data_gpa +
						     spos[k] * (uint64_t)FV_PAGE_SIZE);

		/* One file page for a and b, not s's store frame: the slot.
		 * (A content s holds at the same address as a - a chance of
		 * the layouts - was in the slot from the start: s's too.) */
		in_home += pa.file && pb.file && pa.present && pa.pfn == pb.pfn &&
			   ps.present && (ps.pfn != pa.pfn || spos[k] == pos[k]);
	}
	a1 = kt_stats(a);
	v1 = kt_ram_vmas(a);
	KT_ASSERT(in_home == n, "only %llu of %llu shared contents of a and b are one home page",
		  (unsigned long long)in_home, (unsigned long long)n);
	KT_ASSERT(a1.store_content * 100 <= n && (a1.rehomed - a0.rehomed) * 10 >= n * 9,
		  "a: %llu pages still on content frames, %llu went home",
		  (unsigned long long)a1.store_content,
		  (unsigned long long)(a1.rehomed - a0.rehomed));
	KT_ASSERT(v1 < v0 && a1.vmas + 1 == v1, "a: VMAs in its RAM %llu -> %llu, the engine says %llu",
		  (unsigned long long)v0, (unsigned long long)v1, (unsigned long long)a1.vmas);
	KT_ASSERT(kt_stats(s).store_content >= n * 9 / 10, "s left its frames");
	kt_verify(a);
	kt_verify(b);
	kt_verify(s);
	printf("dedup_gather: %llu shared contents of a moved from store frames to home "
	       "slots when its clone b came (s, at other addresses, stays on the frames); "
	       "VMAs in a's RAM %llu -> %llu\n", (unsigned long long)n,
	       (unsigned long long)v0, (unsigned long long)v1);
	free(pos);
	free(spos);
	kt_destroy(a);
	kt_destroy(b);
	kt_destroy(s);
	KT_ASSERT(gmem_homes_resident_bytes() == 0, "the home still holds %llu bytes",
		  (unsigned long long)gmem_homes_resident_bytes());
	dedup_destroy(e);
	kvm_sys_close(&kvm);
	return 0;
}
