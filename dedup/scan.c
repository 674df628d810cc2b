/*
 * scan.c - the scanner thread: passes over every guest's RAM, unmerge
 * accounting from the dirty log, the volatility back-off, and pacing (the
 * scan rate and the CPU-share cap).
 *
 * A pass fetches each guest's dirty log (KVM's, ORed with the host-write
 * bits of the guest-memory API), then visits its pages in chunks of
 * CHUNK_PAGES under e->lock, dropping the lock between chunks so that
 * guests can come and go and the owner can read statistics.  What to merge
 * a page with is merge.c's business.
 */
#include <errno.h>
#include <time.h>
#include <xxhash.h>
#include "dedup/engine_internal.h"

/* ---- pure helpers (unit-tested) ---- */

unsigned dedup_backoff_passes(unsigned heat, unsigned volatile_after)
{
	unsigned over;

	if (heat < volatile_after)
		return 0;
	over = heat - volatile_after;
	return 1u << (over < 6 ? over : 6); /* 1, 2, 4 ... 64 passes */
}

/* ---- small utilities ---- */

void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static bool test_bit(const uint64_t *map, uint64_t i)
{
	return map[i / 64] >> (i % 64) & 1;
}

/* Did the guest page get its private copy (copy-on-write happened)? */
static bool page_was_copied(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn)
{
	struct procstat_page pg;

	guest_page_entry(e, g, gfn, &pg);
	/* A page still on the frame is either not faulted in (no PTE: the
	 * mapping falls back to the file) or mapped from the file. */
	return pg.present && !pg.file;
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
	} else if (p->flags & PG_ZERO) {
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
	p->flags &= ~PG_HASHED;
	if (p->heat < HEAT_MAX)
		p->heat++;
	p->skip = (uint16_t)dedup_backoff_passes(p->heat, e->cfg.volatile_after);
	return p->skip > 0;
}

static void scan_page(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn)
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
	if (p->flags & (PG_MERGED | PG_ZERO) || g->paused_merging)
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

/* One pass over one guest, in chunks; e->lock is dropped between chunks so
 * that guests can be added and removed (the guest is re-checked by id: a
 * guest added meanwhile may have the removed one's address). */
static void scan_guest(struct dedup_engine *e, struct dedup_guest *g)
{
	struct fv_error err = { 0 };
	uint32_t id = g->id;
	uint64_t gfn = 0, rate;
	unsigned cpu_pct;

	if (gmem_fetch_dirty(g->gm, g->dirty, &err)) {
		merge_report_error(g, &err);
		return;
	}
	while (gfn < g->npages) {
		uint64_t end = gfn + CHUNK_PAGES < g->npages ? gfn + CHUNK_PAGES : g->npages;
		uint64_t t0 = procstat_thread_cpu_ns(), spent, count = end - gfn;

		for (; gfn < end; gfn++)
			scan_page(e, g, gfn);
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
			return;
		budget_maybe_recount(e);
	}
	g->st.full_passes++;
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
		uint64_t pass_cpu = e->scanner_cpu_ns;
		struct dedup_guest *g;

		while (e->running && (g = guest_after(e, last, limit))) {
			last = g->id;
			scan_guest(e, g);
		}
		/* What a pass costs: the first over new memory hashes it all,
		 * later ones only what the dirty log says changed. */
		pass_cpu = e->scanner_cpu_ns - pass_cpu;
		e->pass_cpu_last_ns = pass_cpu;
		if (pass_cpu > e->pass_cpu_max_ns)
			e->pass_cpu_max_ns = pass_cpu;
		/* The view of the store re-faults on the next compare; without
		 * it, Pss shows guests the true cost of their memory. */
		store_unmap_view(&e->store);
		e->passes++;
		pthread_cond_broadcast(&e->cond);
		pthread_mutex_unlock(&e->lock);
		engine_notify(e);
		sleep_ns((uint64_t)e->cfg.pass_interval_ms * 1000000ull);
		pthread_mutex_lock(&e->lock);
		while (e->paused && e->running)
			pthread_cond_wait(&e->cond, &e->lock);
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}
