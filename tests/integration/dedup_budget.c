/*
 * dedup_budget.c - the VMA budget holds: with a budget of 200 VMAs the
 * engine stops merging full pages when the budget is spent, says so in its
 * stats, the process really gains no more than about that many VMAs, zero
 * pages (which cost no VMA: they are discarded, not remapped) still merge,
 * and the guests' memory is intact.
 *
 * Two guests in one domain, ~80% of their data pages identical.  The page
 * kinds sit at pseudo-random positions (a different permutation per guest
 * name), so a merge is almost always "scattered": the page gets its own
 * store mapping between two anonymous pieces, which the engine counts as
 * +2 VMAs (dedup_vma_delta(false, false)); extending a run of pages on
 * consecutive frames counts +1 and only joining two runs counts 0.  Every
 * merge but a join therefore spends >= 1 of the budget, so the pages merged
 * in both guests together cannot exceed the budget (200) unless joins
 * happen, which needs a page whose two neighbours were both already merged
 * onto the neighbouring frames - practically never in this layout.  That is
 * a bound ~27x below the shared page count (5500 per guest).
 * Exit 0 pass, 1 fail, 77 skip (no /dev/kvm).
 */
#include <stdint.h>
#include <stdio.h>
#include "guest-tools/content.h"
#include "tests/integration/kvmtest.h"

#define BUDGET 200
#define VMA_SLACK 16

static uint64_t vma_count(void)
{
	uint64_t n = 0;
	struct fv_error err;

	KT_ASSERT(procstat_vma_count(&n, &err) == 0, "%s", err.msg);
	return n;
}

int main(void)
{
	struct kvm_sys kvm;
	struct dedup_engine *e;
	struct guest *g[2];
	struct dedup_guest_stats st[2];
	struct dedup_host_stats hs;
	struct fv_layout_counts c;
	uint64_t vmas_before, vmas_after, merged = 0;

	kt_require_kvm("dedup_budget");
	kt_open(&kvm);
	e = kt_engine(BUDGET);
	/* Hold the scanner until both guests are filled, so the VMA count
	 * taken below includes everything but what merges add. */
	dedup_set_paused(e, true);

	g[0] = kt_guest(&kvm, e, "name=b0,mem=32M,zero=10,shared=80,dedup=on,domain=d");
	g[1] = kt_guest(&kvm, e, "name=b1,mem=32M,zero=10,shared=80,dedup=on,domain=d");
	kt_fill(g[0]);
	kt_fill(g[1]);
	fv_layout_counts(&g[0]->layout.content, g[0]->layout.data_pages,
			 g[0]->layout.blob_pages, &c);

	vmas_before = vma_count();
	dedup_set_paused(e, false);
	kt_passes(e, 3);
	vmas_after = vma_count();

	dedup_get_host_stats(e, &hs);
	for (int i = 0; i < 2; i++) {
		st[i] = kt_stats(g[i]);
		merged += st[i].pages_merged;
	}

	KT_ASSERT(hs.vma_budget == BUDGET, "budget %llu", (unsigned long long)hs.vma_budget);
	KT_ASSERT(hs.budget_exhausted, "budget not exhausted (used %llu of %llu, "
		  "merged %llu)", (unsigned long long)hs.vmas_used,
		  (unsigned long long)hs.vma_budget, (unsigned long long)merged);
	KT_ASSERT(hs.vmas_used <= hs.vma_budget, "used %llu VMAs of a budget of %llu",
		  (unsigned long long)hs.vmas_used, (unsigned long long)hs.vma_budget);
	/* Which guest meets the limit depends on who finds the twin; the
	 * engine as a whole must have refused merges for the budget. */
	KT_ASSERT(st[0].budget_skipped + st[1].budget_skipped > 0,
		  "no merge skipped for the budget");
	for (int i = 0; i < 2; i++) {
		/* the written-zero pages (FILL's permutation scratch) */
		KT_ASSERT(st[i].pages_zero > 0, "guest %s: no zero page merged",
			  g[i]->cfg.name);
		KT_ASSERT(st[i].full_passes >= 3, "guest %s: %llu passes",
			  g[i]->cfg.name, (unsigned long long)st[i].full_passes);
	}
	KT_ASSERT(merged > 0, "nothing merged within the budget");
	KT_ASSERT(merged <= BUDGET, "%llu pages merged with a budget of %d VMAs "
		  "(%llu shared pages per guest)", (unsigned long long)merged,
		  BUDGET, (unsigned long long)c.shared);
	KT_ASSERT(merged * 10 < c.shared, "merged %llu, shared %llu",
		  (unsigned long long)merged, (unsigned long long)c.shared);
	/* The kernel's own count: merges added at most the budget. */
	KT_ASSERT(vmas_after <= vmas_before + BUDGET + VMA_SLACK,
		  "VMAs went from %llu to %llu (budget %d)",
		  (unsigned long long)vmas_before, (unsigned long long)vmas_after,
		  BUDGET);

	for (int i = 0; i < 2; i++)
		kt_verify(g[i]);
	for (int i = 0; i < 2; i++)
		kt_destroy(g[i]);
	dedup_destroy(e);
	kvm_sys_close(&kvm);

	printf("dedup_budget: budget %d VMAs: engine used %llu, process VMAs "
	       "%llu -> %llu (+%lld); merged %llu + %llu pages of %llu shared "
	       "each, %llu + %llu merges skipped for the budget; zero pages "
	       "%llu + %llu; both guests verified\n",
	       BUDGET, (unsigned long long)hs.vmas_used,
	       (unsigned long long)vmas_before, (unsigned long long)vmas_after,
	       (long long)(vmas_after - vmas_before),
	       (unsigned long long)st[0].pages_merged,
	       (unsigned long long)st[1].pages_merged,
	       (unsigned long long)c.shared,
	       (unsigned long long)st[0].budget_skipped,
	       (unsigned long long)st[1].budget_skipped,
	       (unsigned long long)st[0].pages_zero,
	       (unsigned long long)st[1].pages_zero);
	return 0;
}
