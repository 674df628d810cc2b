/*
 * scan.c - the scanner thread: passes over every guest's RAM, unmerge
 * accounting from the dirty log, unmerging on request (a guest's turn in a
 * pass copies its shared pages first), the volatility back-off, and pacing
 * (the scan rate and the CPU-share cap).
 *
 * A pass fetches each guest's dirty log (KVM's, ORed with the host-write
 * bits of the guest-memory API), then visits the pages it names and those
 * on the guest's todo list, in chunks of CHUNK_PAGES visits under e->lock,
 * dropping the lock between chunks so that guests can come and go and the
 * owner can read statistics.  What to merge a page with is merge.c's
 * business.
 *
 * Why a page that neither list names needs no visit: its content has not
 * changed since its last visit (every write is in the dirty log: KVM's for
 * guest writes, the host bits for device writes), and that visit left it
 * settled - merged, discarded, never written, or a candidate in the index,
 * where the next page with its content finds it (so a twin written later
 * is merged when the twin is visited).  Everything else stays on todo:
 * pages backing off (skip) or cooling down (heat), pages whose merge
 * failed, and pages of which no record could be kept.  Pages the VMA
 * budget refused are parked (budget.c) until a recount finds room.  So an
 * idle guest costs a pass two ioctls and a walk of two bitmaps, and passes
 * that find nothing to do are spaced out up to idle_interval_max_ms.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <xxhash.h>
#include "dedup/engine_internal.h"
#include "lib/timeutil.h"

/* ---- pure helpers (unit-tested) ---- */

unsigned dedup_backoff_passes(unsigned heat, unsigned volatile_after)
{
	unsigned over;

	if (heat < volatile_after)
		return 0;
	over = heat - volatile_after;
	return 1u << (over < 6 ? over : 6); /* 1, 2, 4 ... 64 passes */
}

unsigned dedup_idle_interval_ms(unsigned base, unsigned idle_passes, unsigned max)
{
	uint64_t ms = base ? base : 1;

	if (!idle_passes || max <= base)
		return base;
	for (unsigned i = 0; i < idle_passes && ms < max; i++)
		ms *= 2;
	return (unsigned)(ms < max ? ms : max);
}

/* ---- small utilities ---- */

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static bool test_bit(const uint64_t *map, uint64_t i)
{
	return map[i / 64] >> (i % 64) & 1;
}

/* Does the page need the next pass although nothing may write it? */
static bool page_unsettled(const struct dedup_guest *g, uint64_t gfn)
{
	const struct dedup_page *p = &g->pages[gfn];

	if (p->skip || p->heat)
		return true;  /* counting down or cooling: one step per pass */
	if (g->paused_merging || test_bit(g->parked, gfn))
		return false; /* merging back on / a recount with room requeue it */
	return !(p->flags & (PG_MERGED | PG_HOME | PG_ZERO | PG_CANDIDATE | PG_UNTOUCHED));
}

/* Did the guest page get its private copy (copy-on-write happened)? */
static bool page_was_copied(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn)
{
	struct procstat_page pg;

	guest_page_entry(e, g, gfn, &pg);
	/* A page still on the frame (or its home slot) is either not faulted
	 * in (no PTE: the mapping falls back to the file) or mapped from the
	 * file.  A private copy may be swapped out by now: a swap entry in a
	 * private file mapping is always an anonymous page (a file page
	 * leaves none, and procstat tells a write-protect marker apart). */
	return (pg.present || pg.swapped) && !pg.file;
}

/* Did a discarded zero page get a page of its own (a write)?  Absent, or
 * the kernel's zero page (a read): no. */
static bool page_was_written_again(struct dedup_engine *e, struct dedup_guest *g,
				   uint64_t gfn)
{
	struct procstat_page pg;

	guest_page_entry(e, g, gfn, &pg);
	/* (The zero page is never swapped: a swap entry is a written page.) */
	return pg.swapped || (pg.present && (!e->zero_pfn || pg.pfn != e->zero_pfn));
}

/* ---- one page ---- */

/* What the dirty log says about a page that was merged or discarded. */
static void scan_written_page(struct dedup_engine *e, struct dedup_guest *g,
			      uint64_t gfn)
{
	struct dedup_page *p = &g->pages[gfn];

	if (p->flags & PG_MERGED) {
		/*
		 * Only a private copy proves the unmerge.  A dirty bit can be
		 * older than the merge (a host write that raced it), and
		 * dropping the reference of a page still on the frame would
		 * let the frame be punched out under the guest.
		 */
		if (!page_was_copied(e, g, gfn))
			return;
		frame_put(e, p->frame);
		p->flags &= ~PG_MERGED;
		g->st.unmerges++;
		e->unmerges++;
	} else if (p->flags & PG_HOME) {
		/* The same proof before the slot's reference goes: the last
		 * one punches the slot out. */
		if (!page_was_copied(e, g, gfn))
			return;
		gmem_home_put(g->gm, gfn);
		p->flags &= ~PG_HOME;
		g->st.unmerges++;
		e->unmerges++;
	} else if (p->flags & PG_ZERO) {
		/* The same for a discarded page: a bit set before the discard
		 * (or by a read's fault) leaves it absent or on the zero
		 * page; a write gives it a page of its own. */
		if (!page_was_written_again(e, g, gfn))
			return;
		p->flags &= ~PG_ZERO;
		g->st.unmerges++;
		e->unmerges++;
	}
}

/* Bookkeeping for a page the log says was written since the last pass.
 * Returns true if the page is too volatile to look at now. */
static bool scan_dirty(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn)
{
	struct dedup_page *p = &g->pages[gfn];

	scan_written_page(e, g, gfn);
	cand_remove(e, g, gfn);
	p->flags &= ~(PG_HASHED | PG_UNTOUCHED);
	/* written: whatever held it back, the budget included, is moot */
	g->parked[gfn / 64] &= ~(1ull << (gfn % 64));
	if (p->heat < HEAT_MAX)
		p->heat++;
	p->skip = (uint16_t)dedup_backoff_passes(p->heat, e->cfg.volatile_after);
	return p->skip > 0;
}

static void scan_page_once(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn)
{
	struct dedup_page *p = &g->pages[gfn];
	const uint8_t *page;

	g->st.pages_scanned++;
	if (test_bit(g->dirty, gfn)) {
		if (scan_dirty(e, g, gfn)) {
			g->st.volatile_skipped++;
			return;
		}
	} else if (p->skip) {
		p->skip--;
		g->st.volatile_skipped++;
		return;
	} else if (p->heat) {
		p->heat--; /* a clean pass cools it down */
	}
	if (p->flags & (PG_MERGED | PG_HOME | PG_ZERO) || g->paused_merging ||
	    e->pressure_paused)
		return;
	page = gmem_page_view(g->gm, gfn);
	/* Unchanged since its last hash: no need to hash again.  Pages never
	 * hashed or seen changed since (PG_HASHED dropped) are hashed here. */
	if (!(p->flags & PG_HASHED)) {
		p->hash = XXH3_64bits(page, PAGE);
		p->flags |= PG_HASHED;
		g->st.pages_hashed++;
	}
	merge_try(e, g, gfn, page);
}

static void scan_page(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn)
{
	scan_page_once(e, g, gfn);
	if (page_unsettled(g, gfn))
		page_requeue(g, gfn);
}

/* ---- pacing ---- */

/* Pace the scan: the rate limit and the CPU-share cap. */
static void scan_throttle(uint64_t rate, unsigned cpu_pct, uint64_t pages,
			  uint64_t cpu_ns)
{
	uint64_t want = 0;

	if (rate)
		want = pages * 1000000000ull / rate;
	if (cpu_pct && cpu_pct < 100) {
		uint64_t idle = cpu_ns * (100 - cpu_pct) / cpu_pct;

		if (cpu_ns + idle > want)
			want = cpu_ns + idle;
	}
	if (want > cpu_ns)
		sleep_ns(want - cpu_ns);
}

/* The stricter of the host-wide rate and the guest's own: one guest's
 * cap (a libvirt domain's <foldvm:dedup rate>) slows only its own scan. */
static uint64_t scan_rate_of(const struct dedup_engine *e,
			     const struct dedup_guest *g)
{
	if (!g->rate)
		return e->cfg.rate;
	return e->cfg.rate && e->cfg.rate < g->rate ? e->cfg.rate : g->rate;
}

/* ---- passes ---- */

/* The next word at or after *w with a page to visit, or false.  Taking it
 * clears its todo bits: the visits set again those still to do. */
static bool next_work(struct dedup_guest *g, uint64_t *w, uint64_t *bits)
{
	for (; *w < g->nwords; (*w)++) {
		*bits = g->dirty[*w] | g->todo[*w];
		if (*bits) {
			g->todo[*w] = 0;
			return true;
		}
	}
	return false;
}

/* ---- memory pressure ---- */

/* Pause at pct, go on below half of it: avg10 moves smoothly, and a
 * threshold with one edge would flap around it. */
bool dedup_pressure_pauses(bool paused, uint32_t some_avg10, unsigned pct)
{
	if (!pct)
		return false;
	return paused ? some_avg10 * 2 >= pct * 100 : some_avg10 >= pct * 100;
}

/*
 * Under memory pressure a merge is the wrong work: it makes copies-on-write
 * likelier later, and its hashing and compares take CPU and cache from
 * reclaim.  New merges wait while PSI says tasks stall on memory; the
 * dirty log is still fetched and unmerges still counted (frames freed by
 * writers go back at once), and an unmerge on request goes on.  When it
 * ends, every page is looked at again: those skipped meanwhile are not
 * in the dirty log.
 */
bool pressure_holds(struct dedup_engine *e)
{
	uint64_t now = fv_mono_ns();
	struct fv_error err = { 0 };
	bool paused;

	if (!e->cfg.pressure_pct || now - e->pressure_read_ns < PRESSURE_READ_NS)
		return e->pressure_paused;
	e->pressure_read_ns = now;
	if (memroom_pressure(&e->pressure, &err)) {
		if (!e->pressure_error_reported)
			fprintf(stderr, "foldvm: dedup: %s: merging does not pause for memory pressure\n",
				err.msg);
		e->pressure_error_reported = true;
		e->pressure_known = false;
		paused = false;
	} else {
		e->pressure_known = true;
		paused = dedup_pressure_pauses(e->pressure_paused, e->pressure.some_avg10,
					       e->cfg.pressure_pct);
	}
	if (paused == e->pressure_paused)
		return paused;
	e->pressure_paused = paused;
	e->pressure_changed = true;
	if (paused) {
		e->pressure_pauses++;
	} else {
		for (struct dedup_guest *g = e->guests; g; g = g->next)
			guest_requeue_all(g);
		e->idle_passes = 0;
	}
	return paused;
}

/* ---- unmerging on request ---- */

#define PG_SHARED (PG_MERGED | PG_HOME | PG_ZERO)

/*
 * Copy one run of shared pages, [gfn, gfn+n).  e->lock is held through
 * the copy, as through a merge: the copy needs no fault answered under
 * the lock.  No page of this guest is write-protected now (merging is off
 * for it, and the only merger, this thread, ends every merge with its
 * protection gone before it lets go of the lock), so no write fault
 * reaches the fault thread; a dropped zero page of home-backed RAM
 * faults as missing, which the fault thread answers without the lock.
 * The guest's own writes race harmlessly: the kernel copies a page once,
 * under its page-table lock, whoever writes first.  Returns the pages
 * that are private now, proven page by page in pagemap as any unmerge
 * is (scan_written_page), or -1 with err.
 */
static int64_t unmerge_run(struct dedup_engine *e, struct dedup_guest *g,
			   uint64_t gfn, uint64_t n, struct fv_error *err)
{
	int64_t copied = 0;

	if (gmem_populate_write(g->gm, gfn, n, err))
		return -1;
	for (uint64_t i = gfn; i < gfn + n; i++) {
		scan_written_page(e, g, i);
		copied += !(g->pages[i].flags & PG_SHARED);
	}
	return copied;
}

/* The next run of shared pages at or after *gfn, at most `max` long;
 * false at the end of the guest.  Visits at most `budget` pages. */
static bool next_shared_run(struct dedup_guest *g, uint64_t *gfn, uint64_t *n,
			    uint64_t max, uint64_t budget)
{
	uint64_t end = *gfn + budget < g->npages ? *gfn + budget : g->npages;

	while (*gfn < end && !(g->pages[*gfn].flags & PG_SHARED))
		(*gfn)++;
	for (*n = 0; *gfn + *n < g->npages && *n < max &&
		     g->pages[*gfn + *n].flags & PG_SHARED; (*n)++)
		;
	return *n > 0;
}

/*
 * One lock hold of an unmerge on request: up to CHUNK_PAGES shared pages
 * copied (and 64 times as many looked at).  Returns the pages copied; at
 * the guest's end, or on an error (reported as a merge error is, and the
 * rest left shared), the unmerge is over.
 */
static uint64_t unmerge_chunk(struct dedup_engine *e, struct dedup_guest *g)
{
	uint64_t copied = 0, n, left = CHUNK_PAGES;
	struct fv_error err = { 0 };

	while (left && next_shared_run(g, &g->unmerge_next, &n, left,
				       CHUNK_PAGES * 64)) {
		int64_t c = unmerge_run(e, g, g->unmerge_next, n, &err);

		if (c < 0) {
			merge_report_error(g, &err);
			g->unmerging = false;
			return copied;
		}
		copied += (uint64_t)c;
		g->st.unmerge_done += (uint64_t)c;
		g->st.unmerge_left -= (uint64_t)c < g->st.unmerge_left ? (uint64_t)c
								      : g->st.unmerge_left;
		g->unmerge_next += n;
		left -= n;
	}
	if (g->unmerge_next >= g->npages) {
		g->unmerging = false;
		/* Pages it could not prove private (none expected) are no
		 * longer waited for: their writes show in the dirty log. */
		g->st.unmerge_left = 0;
	}
	return copied;
}

/* A guest's whole unmerge, in chunks with e->lock dropped between them,
 * paced by its rate and the engine's CPU cap.  Other guests are scanned
 * only when it is done: memory is what an unmerge is for.  false if the
 * guest went away meanwhile. */
static bool unmerge_guest(struct dedup_engine *e, struct dedup_guest *g)
{
	uint32_t id = g->id;

	while (g->unmerging) {
		uint64_t t0 = procstat_thread_cpu_ns(), spent, copied;

		copied = unmerge_chunk(e, g);
		spent = procstat_thread_cpu_ns() - t0;
		g->st.cpu_ns += spent;
		e->scanner_cpu_ns += spent;
		pthread_mutex_unlock(&e->lock);
		scan_throttle(g->unmerge_rate, e->cfg.cpu_pct, copied, spent);
		pthread_mutex_lock(&e->lock);
		while (e->paused && e->running)
			pthread_cond_wait(&e->cond, &e->lock);
		if (!e->running || !guest_by_id(e, id))
			return false;
	}
	return true;
}

/* One pass over one guest, in chunks of visits; e->lock is dropped between
 * chunks so that guests can be added and removed (the guest is re-checked
 * by id: a guest added meanwhile may have the removed one's address).
 * Returns the pages visited. */
static uint64_t scan_guest(struct dedup_engine *e, struct dedup_guest *g)
{
	struct fv_error err = { 0 };
	uint32_t id = g->id;
	uint64_t w = 0, bits, visited = 0, rate;
	unsigned cpu_pct;

	if (g->unmerging && !unmerge_guest(e, g))
		return 0;
	pressure_holds(e);
	if (gmem_fetch_dirty(g->gm, g->dirty, &err)) {
		merge_report_error(g, &err);
		return 0;
	}
	while (next_work(g, &w, &bits)) {
		uint64_t t0 = procstat_thread_cpu_ns(), spent, count = 0;

		do {
			for (; bits; bits &= bits - 1, count++)
				scan_page(e, g, w * 64 + (uint64_t)__builtin_ctzll(bits));
			w++;
		} while (count < CHUNK_PAGES && next_work(g, &w, &bits));
		visited += count;
		g->st.pages_scanned += count;
		spent = procstat_thread_cpu_ns() - t0;
		g->st.cpu_ns += spent;
		e->scanner_cpu_ns += spent;
		rate = scan_rate_of(e, g);
		cpu_pct = e->cfg.cpu_pct;
		pthread_mutex_unlock(&e->lock);
		scan_throttle(rate, cpu_pct, count, spent);
		pthread_mutex_lock(&e->lock);
		while (e->paused && e->running)
			pthread_cond_wait(&e->cond, &e->lock);
		if (!e->running || !guest_by_id(e, id))
			return visited;
		budget_maybe_recount(e);
		pressure_holds(e);
	}
	g->st.full_passes++;
	return visited;
}

/* The pause between passes (e->lock held, released while waiting).  A
 * guest added, merging switched back on or the engine stopping ends it
 * early (e->kick), so a long idle pause delays none of them. */
static void scanner_rest(struct dedup_engine *e, unsigned ms)
{
	struct timespec until;

	fv_deadline_after(&until, CLOCK_MONOTONIC, ms);
	while (e->running && !e->kick)
		if (pthread_cond_timedwait(&e->cond, &e->lock, &until) == ETIMEDOUT)
			break;
	e->kick = false;
}

/* The guest with the smallest id above `after` and below `limit`. */
static struct dedup_guest *guest_after(struct dedup_engine *e, uint32_t after,
				       uint32_t limit)
{
	struct dedup_guest *best = NULL;

	for (struct dedup_guest *g = e->guests; g; g = g->next)
		if (g->id > after && g->id < limit && (!best || g->id < best->id))
			best = g;
	return best;
}

void *scanner_thread(void *arg)
{
	struct dedup_engine *e = arg;

	pthread_setname_np(pthread_self(), "dedup-scan");
	pthread_mutex_lock(&e->lock);
	while (e->paused && e->running)
		pthread_cond_wait(&e->cond, &e->lock);
	while (e->running) {
		/* Walk by id: guests may come and go while the lock is dropped
		 * between chunks; ones added during the pass wait for the next. */
		uint32_t limit = e->next_guest_id, last = 0;
		uint64_t pass_cpu = e->scanner_cpu_ns, visited = 0;
		struct dedup_guest *g;
		unsigned interval;

		while (e->running && (g = guest_after(e, last, limit))) {
			last = g->id;
			visited += scan_guest(e, g);
		}
		budget_pass_end(e);
		/* What a pass costs: the first over new memory hashes it all,
		 * later ones only what the dirty log says changed. */
		pass_cpu = e->scanner_cpu_ns - pass_cpu;
		e->pass_cpu_last_ns = pass_cpu;
		if (pass_cpu > e->pass_cpu_max_ns)
			e->pass_cpu_max_ns = pass_cpu;
		/* The view of the store re-faults on the next compare; without
		 * it, Pss shows guests the true cost of their memory.  Only
		 * visits touch it. */
		if (visited)
			store_unmap_view(&e->store);
		e->passes++;
		/* Nothing written, nothing to do: the next pass can wait longer.
		 * A write meanwhile waits in the dirty log, at most
		 * idle_interval_max_ms (1 s), which keeps a new duplicate's
		 * merge within about a second. */
		e->idle_passes = visited ? 0 : e->idle_passes + 1;
		interval = dedup_idle_interval_ms(e->cfg.pass_interval_ms, e->idle_passes,
						  e->cfg.idle_interval_max_ms);
		pthread_cond_broadcast(&e->cond);
		pthread_mutex_unlock(&e->lock);
		engine_notify(e);
		pthread_mutex_lock(&e->lock);
		scanner_rest(e, interval);
		while (e->paused && e->running)
			pthread_cond_wait(&e->cond, &e->lock);
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}
