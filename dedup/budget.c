/*
 * budget.c - the VMA budget.
 *
 * Every scattered merged page splits the guest's mapping (+2 VMAs) and
 * vm.max_map_count (65530 by default) caps the process, so merges are
 * budgeted: each merge is charged what it adds to the guest's mapping
 * (runs of consecutive frames on consecutive pages are one VMA), and the
 * books are checked against /proc/self/maps (lib/procstat.c reads it) only
 * when that is worth its cost, which grows with the VMA count: when guests
 * came or went, and when merges approach the budget.  A converged or idle
 * engine never reads the map.  When the budget binds, the engine merges
 * what it can, parks the pages it refused (a pass does not look at them
 * again until a recount finds room), reports budget_exhausted and keeps
 * running.  e->lock is held throughout this file.
 */
#include "dedup/engine_internal.h"
#include "lib/timeutil.h"

/* ---- pure helpers (unit-tested) ---- */

int dedup_vma_delta(bool left_run, bool right_run)
{
	/* A page mapped on its own splits the VMA around it: +2.  Next to a
	 * page merged onto the previous frame it extends that VMA: +1 for the
	 * split on the far side.  Between two such runs it joins them. */
	return 2 - (left_run ? 1 : 0) - (right_run ? 1 : 0) - (left_run && right_run ? 1 : 0);
}

bool dedup_budget_allows(uint64_t used, uint64_t budget, int delta)
{
	return delta <= 0 || used + (uint64_t)delta <= budget;
}

bool dedup_recount_wanted(bool due, uint64_t merges_since, uint64_t used,
			  uint64_t budget)
{
	uint64_t margin = budget / 8 > 1000 ? budget / 8 : 1000;

	if (due)
		return true;
	/* The books drift from the kernel's count only through merges (a
	 * join the kernel refused, a page that costs less than charged);
	 * the drift matters only where it could refuse a merge wrongly. */
	return merges_since && used + margin >= budget;
}

/* ---- counting ---- */

/* VMAs merges may still add. */
static uint64_t budget_left(const struct dedup_engine *e)
{
	return e->vma_budget > e->vmas_used ? e->vma_budget - e->vmas_used : 0;
}

/* Room worth a pass over the parked pages: UNPARK_MIN_ROOM VMAs, less
 * for small budgets. */
static uint64_t unpark_min_room(uint64_t budget)
{
	return budget / 16 < UNPARK_MIN_ROOM ? budget / 16 + 1 : UNPARK_MIN_ROOM;
}

/* Room appeared: the pages refused for the budget are looked at again. */
static void budget_unpark(struct dedup_engine *e)
{
	for (struct dedup_guest *g = e->guests; g; g = g->next)
		for (uint64_t w = 0; w < g->nwords; w++) {
			g->todo[w] |= g->parked[w];
			g->parked[w] = 0;
		}
}

/* One line of /proc/self/maps: a VMA inside a guest's RAM is the guest's. */
static void recount_vma(void *opaque, uint64_t start, uint64_t end)
{
	struct dedup_engine *e = opaque;

	for (struct dedup_guest *g = e->guests; g; g = g->next) {
		uint64_t lo = (uintptr_t)gmem_page_hva(g->gm, 0);

		if (start >= lo && end <= lo + g->npages * PAGE) {
			g->vmas_seen++;
			return;
		}
	}
}

/*
 * Count what merges really cost: a guest's RAM is one VMA until the engine
 * maps frames into it, so every VMA beyond the first inside a guest's range
 * is the engine's.  (Between counts, merges add a conservative estimate.)
 * With an automatic budget, whatever the rest of the process uses now is
 * left to it, plus headroom.  If maps cannot be read, the estimates stand.
 */
void budget_recount(struct dedup_engine *e)
{
	uint64_t total, merged = 0, room, room_before = budget_left(e);
	uint64_t t0 = fv_mono_ns();
	int rc;

	for (struct dedup_guest *g = e->guests; g; g = g->next)
		g->vmas_seen = 0;
	e->recount_due = false;
	e->charges_at_recount = e->vma_charges;
	rc = procstat_maps(recount_vma, e, &total, NULL);
	e->vma_calibrated_ns = fv_mono_ns();
	e->recount_cost_ns = e->vma_calibrated_ns - t0;
	if (rc)
		return;
	for (struct dedup_guest *g = e->guests; g; g = g->next) {
		g->st.vmas = g->vmas_seen ? g->vmas_seen - 1 : 0;
		merged += g->st.vmas;
	}
	e->vmas_used = merged;
	if (!e->cfg.vma_budget)
		e->vma_budget = e->max_map_count > total - merged + VMA_HEADROOM ?
				e->max_map_count - (total - merged) - VMA_HEADROOM : 0;
	/* Unpark only for real room: at the wall, a recount that finds a few
	 * VMAs would send every parked page through a pass for a few merges. */
	room = budget_left(e);
	if (room > room_before && room >= unpark_min_room(e->vma_budget))
		budget_unpark(e);
}

static bool budget_recount_wanted(const struct dedup_engine *e)
{
	return dedup_recount_wanted(e->recount_due, e->vma_charges - e->charges_at_recount,
				    e->vmas_used, e->vma_budget);
}

void budget_maybe_recount(struct dedup_engine *e)
{
	/* Within a pass: at most every VMA_RECOUNT_NS, and - as a recount
	 * walks every VMA, a second or more near a million - at most a
	 * RECOUNT_COST_SHARE-th of the time. */
	uint64_t wait = e->recount_cost_ns * RECOUNT_COST_SHARE;

	if (wait < VMA_RECOUNT_NS)
		wait = VMA_RECOUNT_NS;
	if (fv_mono_ns() - e->vma_calibrated_ns >= wait && budget_recount_wanted(e))
		budget_recount(e);
}

void budget_pass_end(struct dedup_engine *e)
{
	/* Once a pass, whatever the time: the pass that made the last merges
	 * settles the books, so the passes after it - and a recount's
	 * unparking - see the final count, and an idle engine none. */
	if (budget_recount_wanted(e))
		budget_recount(e);
}

int budget_init(struct dedup_engine *e, struct fv_error *err)
{
	if (procstat_max_map_count(&e->max_map_count, err))
		return -1;
	e->vma_budget = e->cfg.vma_budget;
	budget_recount(e);
	return 0;
}

/* ---- charging merges ---- */

/* What mapping frame f at gfn adds: runs of consecutive frames on
 * consecutive pages are one VMA. */
int budget_merge_delta(struct dedup_guest *g, uint64_t gfn, uint32_t f)
{
	bool left = gfn > 0 && (g->pages[gfn - 1].flags & PG_MERGED) &&
		    g->pages[gfn - 1].frame + 1 == f;
	bool right = gfn + 1 < g->npages && (g->pages[gfn + 1].flags & PG_MERGED) &&
		     g->pages[gfn + 1].frame == f + 1;

	return dedup_vma_delta(left, right);
}

/* Park a page the budget refused: passes leave it alone until a recount
 * finds room (budget_unpark), so a budget-bound engine idles as cheaply as
 * a converged one.  A write to it still shows in the dirty log. */
static void budget_park(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn)
{
	e->budget_exhausted = true;
	g->st.budget_skipped++;
	g->parked[gfn / 64] |= 1ull << (gfn % 64);
}

bool budget_room(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn,
		 int delta)
{
	if (dedup_budget_allows(e->vmas_used, e->vma_budget, delta))
		return true;
	budget_park(e, g, gfn);
	return false;
}

/* A merge adding `delta` VMAs was done. */
void budget_charge(struct dedup_engine *e, struct dedup_guest *g, int delta)
{
	uint64_t add = (uint64_t)(delta > 0 ? delta : 0);

	/* Only merges that cost VMAs make the books drift (zero discards and
	 * run joins do not): they alone call for a recount. */
	if (add)
		e->vma_charges++;
	/* An estimate until the next recount: a page that already sits in a
	 * store mapping of its own may really cost nothing. */
	e->vmas_used += add;
	g->st.vmas += add;
}

/* The kernel refused a mapping (mmap's ENOMEM: vm.max_map_count): the real
 * limit is what is used now, whatever the budget said. */
void budget_hit_limit(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn)
{
	budget_park(e, g, gfn);
	e->vma_budget = e->vmas_used;
}
