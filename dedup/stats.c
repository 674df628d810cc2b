/*
 * stats.c - the engine's statistics: a guest's, derived from its page
 * states and cached until a page or a frame changes, the host's, and the
 * events that carry them to the owner at the end of a pass.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "dedup/engine_internal.h"

/* ---- events ---- */

/* Tell the owner a pass ended (and, once, that the budget binds).  The
 * callback runs without the engine lock (it takes its owner's locks);
 * event_running lets dedup_set_event_callback() wait for it, so an owner
 * that unhooks itself can free what `opaque` points to right after. */
void engine_notify(struct dedup_engine *e)
{
	struct dedup_host_stats st;
	dedup_event_fn fn;
	void *opaque;
	unsigned events = 0;

	pthread_mutex_lock(&e->lock);
	fn = e->event_fn;
	opaque = e->event_opaque;
	if (e->budget_exhausted && !e->budget_reported) {
		e->budget_reported = true;
		events |= DEDUP_EVENT_BUDGET;
	}
	if (e->pressure_changed) {
		e->pressure_changed = false;
		events |= DEDUP_EVENT_PRESSURE;
	}
	e->event_running = fn != NULL;
	pthread_mutex_unlock(&e->lock);
	if (!fn)
		return;
	dedup_get_host_stats(e, &st);
	fn(opaque, &st, events);
	pthread_mutex_lock(&e->lock);
	e->event_running = false;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

void dedup_set_event_callback(struct dedup_engine *e, dedup_event_fn fn,
			      void *opaque)
{
	pthread_mutex_lock(&e->lock);
	e->event_fn = fn;
	e->event_opaque = opaque;
	/* A call already under way finishes with the old callback first. */
	while (e->event_running)
		pthread_cond_wait(&e->cond, &e->lock);
	pthread_mutex_unlock(&e->lock);
}

/* ---- statistics ---- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Does the content of frame f also sit at guest address gfn of another
 * guest of g's home: that guest's page gfn on the same frame, or the home
 * slot at gfn holding it? */
static bool store_same_address(struct dedup_engine *e, struct dedup_guest *g,
			       uint64_t gfn, uint32_t f)
{
	uint8_t held[PAGE];

	if (!g->gm->home)
		return false;
	for (struct dedup_guest *cg = e->guests; cg; cg = cg->next)
		if (cg != g && cg->gm->home == g->gm->home && gfn < cg->npages &&
		    (cg->pages[gfn].flags & PG_MERGED) && cg->pages[gfn].frame == f)
			return true;
	return gmem_home_refs(g->gm, gfn) && !gmem_home_read(g->gm, gfn, held, NULL) &&
	       !memcmp(held, store_frame(&e->store, f), PAGE);
}

/* Count page gfn, which lies in a store mapping, in its class. */
static void store_page_class(struct dedup_engine *e, struct dedup_guest *g,
			     uint64_t gfn, struct dedup_guest_stats *st)
{
	const struct dedup_page *p = &g->pages[gfn];

	st->store_pages++;
	if (!(p->flags & PG_MERGED)) {
		st->store_private++;
		/* (read without protection: a statistic, it may be stale) */
		if (!memcmp(gmem_page_view(g->gm, gfn), e->zero_page, PAGE))
			st->store_private_zero++;
	} else if (p->frame == e->zero_frame) {
		st->store_zero_frame++;
	} else {
		st->store_content++;
		if (store_same_address(e, g, gfn, p->frame))
			st->store_same_address++;
	}
}

/* Counts that are derived from the page states (e->lock held): a walk of
 * every page and a sort of its frames, so it is kept until a page or a
 * frame changes.  Only merges (zero discards included), unmerges and guest
 * removals (which drop frame references other guests share) change them;
 * owners poll the statistics many times a second, also while nothing
 * happens. */
void guest_derived_stats(struct dedup_engine *e, struct dedup_guest *g,
				struct dedup_guest_stats *st)
{
	uint64_t gen = e->merges + e->unmerges + e->guests_removed + 1;
	uint32_t *frames;
	uint64_t nf = 0, saved = 0;

	if (g->derived_gen == gen) {
		st->pages_merged = g->derived.pages_merged;
		st->pages_in_place = g->derived.pages_in_place;
		st->pages_zero = g->derived.pages_zero;
		st->frames_referenced = g->derived.frames_referenced;
		st->bytes_saved = g->derived.bytes_saved;
		st->store_pages = g->derived.store_pages;
		st->store_content = g->derived.store_content;
		st->store_same_address = g->derived.store_same_address;
		st->store_zero_frame = g->derived.store_zero_frame;
		st->store_private = g->derived.store_private;
		st->store_private_zero = g->derived.store_private_zero;
		return;
	}
	frames = malloc(g->npages * sizeof(*frames));
	st->pages_merged = st->pages_zero = st->frames_referenced = 0;
	st->pages_in_place = 0;
	st->store_pages = st->store_content = st->store_same_address = 0;
	st->store_zero_frame = st->store_private = st->store_private_zero = 0;
	for (uint64_t gfn = 0; gfn < g->npages; gfn++) {
		const struct dedup_page *p = &g->pages[gfn];

		if (p->flags & PG_FILEVMA)
			store_page_class(e, g, gfn, st);
		if (p->flags & PG_ZERO) {
			st->pages_zero++;
			saved += PAGE;
		} else if (p->flags & PG_MERGED) {
			uint32_t refs = e->store.refs[p->frame];

			st->pages_merged++;
			/* Its share of the frame: n pages on one frame cost one. */
			saved += PAGE - PAGE / (refs ? refs : 1);
			if (frames)
				frames[nf++] = p->frame;
		} else if (p->flags & PG_HOME) {
			uint32_t refs = gmem_home_refs(g->gm, gfn);

			/* Its share of its home slot, which no other page of
			 * this guest can read: a frame of its own. */
			st->pages_merged++;
			st->pages_in_place++;
			st->frames_referenced++;
			saved += PAGE - PAGE / (refs ? refs : 1);
		}
	}
	if (frames) {
		qsort(frames, nf, sizeof(*frames), cmp_u32);
		for (uint64_t i = 0; i < nf; i++)
			st->frames_referenced += i == 0 || frames[i] != frames[i - 1];
		free(frames);
	}
	st->bytes_saved = saved;
	if (frames) { /* without the sort, frames_referenced is not known */
		g->derived = *st;
		g->derived_gen = gen;
	}
}

void dedup_get_guest_stats(struct dedup_engine *e, struct dedup_guest *g,
			   struct dedup_guest_stats *out)
{
	pthread_mutex_lock(&e->lock);
	*out = g->st;
	out->pages = g->npages;
	out->unmerging = g->unmerging;
	guest_derived_stats(e, g, out);
	pthread_mutex_unlock(&e->lock);
}

void dedup_get_host_stats(struct dedup_engine *e, struct dedup_host_stats *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&e->lock);
	for (struct dedup_guest *g = e->guests; g; g = g->next) {
		struct dedup_guest_stats st;

		guest_derived_stats(e, g, &st);
		out->saved_bytes += st.bytes_saved;
		out->pages_in_place += st.pages_in_place;
		out->guests++;
	}
	out->store_frames = e->store.used;
	out->vma_budget = e->vma_budget;
	out->vmas_used = e->vmas_used;
	out->max_map_count = e->max_map_count;
	out->budget_exhausted = e->budget_exhausted;
	out->passes = e->passes;
	out->merges = e->merges;
	out->unmerges = e->unmerges;
	out->pass_cpu_max_ns = e->pass_cpu_max_ns;
	out->pass_cpu_last_ns = e->pass_cpu_last_ns;
	out->pressure_known = e->pressure_known;
	out->pressure_paused = e->pressure_paused;
	out->pressure_cgroup = e->pressure.cgroup;
	out->pressure_some_avg10 = e->pressure.some_avg10;
	out->pressure_full_avg10 = e->pressure.full_avg10;
	out->pressure_pct = e->cfg.pressure_pct;
	out->pressure_pauses = e->pressure_pauses;
	out->cpu_ns = e->scanner_cpu_ns +
		      __atomic_load_n(&e->fault_cpu_ns, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&e->lock);
	/* The home files hold what was merged in place. */
	out->store_bytes = store_resident_bytes(&e->store) + gmem_homes_resident_bytes();
}
