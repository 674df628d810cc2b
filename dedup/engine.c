/*
 * engine.c - the dedup engine: lifecycle, guests, events, statistics.
 *
 * DOC: Overview
 *
 * The engine is five files along its seams (engine_internal.h shares
 * their state): this one creates and destroys the engine, adds and
 * removes guests and reports statistics; merge.c holds the merge protocol
 * and the frames and candidates it changes; scan.c the scanner thread, its
 * pacing and the unmerge accounting; budget.c the VMA budget; fault.c the
 * userfaultfd and its fault thread.
 *
 * State lives in three places, all owned by the scanner thread under
 * e->lock:
 *  - the store: frames (memfd pages) with reference counts;
 *  - the stable index: (hash, domain) -> frame, for every live frame;
 *  - the candidate index: (hash, domain) -> (guest, gfn), for pages seen
 *    clean and not merged, waiting for a twin.
 * Per guest page, struct dedup_page says what the engine believes about it.
 * Beliefs can go stale only through writes, and every write is caught by
 * one of: the userfaultfd write-protection held during a merge (the writer
 * waits), KVM's dirty log (guest writes), the guest-memory API's host dirty
 * bits (device writes).  A belief that matters for safety - "this page
 * still maps frame F" - is never taken from the dirty log alone: before a
 * reference is dropped (which may punch the frame out of the memfd), the
 * page's PTE is read from /proc/self/pagemap, and only a present,
 * non-file PTE (the private copy) counts as an unmerge (scan.c).
 *
 * The merge protocol for one page (merge_protected() in merge.c, for a
 * frame and for a zero page alike):
 *  1. write-protect the page (uffd-wp): from here on a writer blocks in the
 *     kernel, so the content cannot change under us;
 *  2. compare the page with the frame, byte for byte (the hash only found
 *     the candidate);
 *  3. equal: mmap(MAP_PRIVATE|MAP_FIXED) the frame over the page, wake
 *     the blocked writers - they retry on the
 *     new mapping and get copy-on-write, so their write lands in a private
 *     copy and is seen as an unmerge on the next pass (a zero page is
 *     discarded instead, MADV_DONTNEED: the writer gets a fresh page);
 *     different: release the write protection (which wakes the writers).
 * A thread (fault_thread, fault.c) always reads the userfaultfd while
 * pages may be write-protected; it never resolves a fault itself while a
 * merge is in flight (it takes e->lock first), so a woken writer always
 * finds the final mapping.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include "dedup/engine_internal.h"
#include "lib/timeutil.h"

void dedup_config_defaults(struct dedup_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->store_max_bytes = 256ull << 30;
	cfg->pass_interval_ms = 100;
	cfg->idle_interval_max_ms = 1000;
	cfg->volatile_after = 2;
	cfg->in_place = true;
	cfg->pressure_pct = 10;
}

/* Pause at pct, go on below half of it: avg10 moves smoothly, and a
 * threshold with one edge would flap around it. */
bool dedup_pressure_pauses(bool paused, uint32_t some_avg10, unsigned pct)
{
	if (!pct)
		return false;
	return paused ? some_avg10 * 2 >= pct * 100 : some_avg10 >= pct * 100;
}

bool dedup_in_place(const struct dedup_engine *e)
{
	return e->cfg.in_place;
}

/* ---- guests and their pages ---- */

struct dedup_guest *guest_by_id(struct dedup_engine *e, uint32_t id)
{
	for (struct dedup_guest *g = e->guests; g; g = g->next)
		if (g->id == id)
			return g;
	return NULL;
}

void guest_page_entry(struct dedup_engine *e, struct dedup_guest *g,
		      uint64_t gfn, struct procstat_page *out)
{
	procstat_pagemap_read(&e->pagemap, gmem_page_hva(g->gm, gfn), out, NULL);
}

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

/* ---- engine lifecycle ---- */

/* The scanner's pause between passes is a timed wait on this cond: on the
 * monotonic clock, so that setting the wall clock does not stretch it. */
static void engine_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
}

static int engine_init(struct dedup_engine *e, struct fv_error *err)
{
	uint64_t frames = e->cfg.store_max_bytes / PAGE;

	e->zero_hash = XXH3_64bits(e->zero_page, PAGE);
	e->zero_frame = STORE_NO_FRAME;
	e->next_guest_id = 1;
	e->nr_domains = 1; /* id 0: the zero domain */
	if (store_init(&e->store, frames, err))
		return -1;
	e->frame_hash = calloc(frames, sizeof(*e->frame_hash));
	e->frame_domain = calloc(frames, sizeof(*e->frame_domain));
	if (!e->frame_hash || !e->frame_domain ||
	    dedup_index_init(&e->stable, 4096) || dedup_index_init(&e->cand, 4096))
		return fv_err(err, FV_E_NOMEM, "dedup index");
	if (procstat_pagemap_open(&e->pagemap, err))
		return -1;
	e->zero_pfn = procstat_zero_pfn();
	if (fault_open_uffd(e, err) || budget_init(e, err))
		return -1;
	return 0;
}

static int engine_start_threads(struct dedup_engine *e, struct fv_error *err)
{
	int r;

	__atomic_store_n(&e->running, true, __ATOMIC_RELEASE);
	r = pthread_create(&e->faulter, NULL, fault_thread, e);
	if (r)
		return fv_err_errno(err, FV_E_SYS, r, "dedup fault thread");
	r = pthread_create(&e->scanner, NULL, scanner_thread, e);
	if (r) {
		pthread_mutex_lock(&e->lock);
		__atomic_store_n(&e->running, false, __ATOMIC_RELEASE);
		pthread_mutex_unlock(&e->lock);
		fault_stop(e);
		pthread_join(e->faulter, NULL);
		return fv_err_errno(err, FV_E_SYS, r, "dedup scanner thread");
	}
	e->threads_started = true;
	return 0;
}

int dedup_create(struct dedup_engine **out, const struct dedup_config *cfg,
		 struct fv_error *err)
{
	struct dedup_engine *e = calloc(1, sizeof(*e));

	*out = NULL;
	if (!e)
		return fv_err(err, FV_E_NOMEM, "dedup engine");
	e->cfg = *cfg;
	if (!e->cfg.store_max_bytes)
		e->cfg.store_max_bytes = 256ull << 30;
	if (e->cfg.cpu_pct > 100)
		e->cfg.cpu_pct = 100;
	e->uffd = -1;
	e->fault_stop_fd = -1;
	e->pagemap.fd = -1;
	e->store.fd = -1;
	pthread_mutex_init(&e->lock, NULL);
	engine_cond_init(&e->cond);
	if (engine_init(e, err) || engine_start_threads(e, err)) {
		dedup_destroy(e);
		return -1;
	}
	*out = e;
	return 0;
}

void dedup_destroy(struct dedup_engine *e)
{
	if (!e)
		return;
	if (e->threads_started) {
		pthread_mutex_lock(&e->lock);
		__atomic_store_n(&e->running, false, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&e->cond);
		pthread_mutex_unlock(&e->lock);
		fault_stop(e);
		pthread_join(e->scanner, NULL);
		pthread_join(e->faulter, NULL);
	}
	while (e->guests)
		dedup_remove_guest(e, e->guests);
	if (e->uffd >= 0)
		close(e->uffd);
	if (e->fault_stop_fd >= 0)
		close(e->fault_stop_fd);
	procstat_pagemap_close(&e->pagemap);
	dedup_index_free(&e->stable);
	dedup_index_free(&e->cand);
	store_destroy(&e->store);
	free(e->frame_hash);
	free(e->frame_domain);
	for (uint32_t i = 0; i < e->nr_domains; i++)
		free(e->domains[i]);
	pthread_cond_destroy(&e->cond);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

/* Domain name -> small id (1..); 0 is reserved for zero content. */
static int domain_id(struct dedup_engine *e, const char *name, uint32_t *id,
		     struct fv_error *err)
{
	for (uint32_t i = 1; i < e->nr_domains; i++) {
		if (!strcmp(e->domains[i], name)) {
			*id = i;
			return 0;
		}
	}
	if (e->nr_domains == MAX_DOMAINS)
		return fv_err(err, FV_E_INVAL, "more than %d trust domains", MAX_DOMAINS - 1);
	e->domains[e->nr_domains] = strdup(name);
	if (!e->domains[e->nr_domains])
		return fv_err(err, FV_E_NOMEM, "domain name");
	*id = e->nr_domains++;
	return 0;
}

static void guest_free(struct dedup_guest *g)
{
	free(g->pages);
	free(g->dirty);
	free(g->todo);
	free(g->parked);
	free(g);
}

int dedup_add_guest(struct dedup_engine *e, struct guest_mem *gm,
		    const char *name, const char *domain,
		    struct dedup_guest **out, struct fv_error *err)
{
	struct dedup_guest *g = calloc(1, sizeof(*g));
	const char *dom = domain && *domain ? domain : name;
	int r = -1;

	*out = NULL;
	if (!g)
		return fv_err(err, FV_E_NOMEM, "dedup guest");
	if (strlen(dom) > DEDUP_DOMAIN_MAX) {
		free(g);
		return fv_err(err, FV_E_INVAL, "trust domain '%s' longer than %d",
			      dom, DEDUP_DOMAIN_MAX);
	}
	g->engine = e;
	g->gm = gm;
	g->npages = gmem_pages(gm);
	snprintf(g->name, sizeof(g->name), "%s", name);
	snprintf(g->st.domain, sizeof(g->st.domain), "%s", dom);
	g->pages = calloc(g->npages, sizeof(*g->pages));
	g->nwords = (g->npages + 63) / 64;
	g->dirty = calloc(g->nwords, sizeof(uint64_t));
	g->todo = calloc(g->nwords, sizeof(uint64_t));
	g->parked = calloc(g->nwords, sizeof(uint64_t));
	if (!g->pages || !g->dirty || !g->todo || !g->parked) {
		fv_err(err, FV_E_NOMEM, "dedup page table for %s", name);
		goto out;
	}
	if (gmem_dedup_enable(gm, e->uffd, err))
		goto out;
	guest_requeue_all(g); /* its first pass looks at every page */
	pthread_mutex_lock(&e->lock);
	r = domain_id(e, dom, &g->domain, err);
	if (r == 0) {
		g->id = e->next_guest_id++;
		g->next = e->guests;
		e->guests = g;
		e->recount_due = true; /* its memory and threads are VMAs too */
		e->idle_passes = 0;
		e->kick = true;
		pthread_cond_broadcast(&e->cond);
		*out = g;
	}
	pthread_mutex_unlock(&e->lock);
out:
	if (r)
		guest_free(g);
	return r;
}

void dedup_remove_guest(struct dedup_engine *e, struct dedup_guest *g)
{
	struct dedup_guest **pp;

	if (!g)
		return;
	pthread_mutex_lock(&e->lock);
	for (pp = &e->guests; *pp && *pp != g; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = g->next;
	/*
	 * Every reference of the guest goes, copied-on-write or not: the
	 * caller stops the guest before and unmaps its memory right after,
	 * so a frame that only this guest used may be punched out while the
	 * dead guest still maps it - nobody reads that memory any more.
	 */
	for (uint64_t gfn = 0; gfn < g->npages; gfn++) {
		cand_remove(e, g, gfn);
		if (g->pages[gfn].flags & PG_MERGED)
			frame_put(e, g->pages[gfn].frame);
		else if (g->pages[gfn].flags & PG_HOME)
			gmem_home_put(g->gm, gfn);
	}
	e->vmas_used -= g->st.vmas < e->vmas_used ? g->st.vmas : e->vmas_used;
	e->recount_due = true; /* its VMAs go with its memory */
	e->guests_removed++;   /* and its references: others' shares change */
	pthread_mutex_unlock(&e->lock);
	guest_free(g);
}

void dedup_guest_set_merging(struct dedup_engine *e, struct dedup_guest *g,
			     bool on)
{
	pthread_mutex_lock(&e->lock);
	/* Back on: every page is looked at again (while off, passes only
	 * tracked unmerges of the pages written). */
	if (on && g->paused_merging) {
		guest_requeue_all(g);
		e->idle_passes = 0;
		e->kick = true;
		pthread_cond_broadcast(&e->cond);
	}
	g->paused_merging = !on;
	/* Candidates of a guest that merges no more would pair others with
	 * pages that are not going to be merged. */
	if (!on)
		for (uint64_t gfn = 0; gfn < g->npages; gfn++)
			cand_remove(e, g, gfn);
	pthread_mutex_unlock(&e->lock);
}

static void guest_derived_stats(struct dedup_engine *e, struct dedup_guest *g,
				struct dedup_guest_stats *st);

uint64_t dedup_guest_unmerge(struct dedup_engine *e, struct dedup_guest *g,
			     uint64_t rate)
{
	struct dedup_guest_stats st;
	uint64_t n;

	dedup_guest_set_merging(e, g, false);
	pthread_mutex_lock(&e->lock);
	/* The pages it shares: merged (onto a frame or in place) and zero. */
	guest_derived_stats(e, g, &st);
	n = st.pages_merged + st.pages_zero;
	/* A second request restarts the walk at the first page with the
	 * new rate (the pages behind it are private by now, or written
	 * since, which the dirty log tracks as ever). */
	g->unmerging = n > 0;
	g->unmerge_next = 0;
	g->unmerge_rate = rate;
	g->st.unmerge_left = n;
	if (n) {
		e->kick = true;
		pthread_cond_broadcast(&e->cond);
	}
	pthread_mutex_unlock(&e->lock);
	return n;
}

bool dedup_guest_merging(struct dedup_engine *e, struct dedup_guest *g)
{
	bool on;

	pthread_mutex_lock(&e->lock);
	on = !g->paused_merging;
	pthread_mutex_unlock(&e->lock);
	return on;
}

enum dedup_page_state dedup_page_state(struct dedup_engine *e,
				       struct dedup_guest *g, uint64_t gfn)
{
	enum dedup_page_state st = DEDUP_PAGE_PRIVATE;

	pthread_mutex_lock(&e->lock);
	if (gfn < g->npages) {
		if (g->pages[gfn].flags & (PG_MERGED | PG_HOME))
			st = DEDUP_PAGE_MERGED;
		else if (g->pages[gfn].flags & PG_ZERO)
			st = DEDUP_PAGE_ZERO;
	}
	pthread_mutex_unlock(&e->lock);
	return st;
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

void dedup_set_limits(struct dedup_engine *e, uint64_t rate, unsigned cpu_pct)
{
	pthread_mutex_lock(&e->lock);
	e->cfg.rate = rate;
	e->cfg.cpu_pct = cpu_pct > 100 ? 100 : cpu_pct;
	pthread_mutex_unlock(&e->lock);
}

void dedup_guest_set_rate(struct dedup_engine *e, struct dedup_guest *g,
			  uint64_t rate)
{
	pthread_mutex_lock(&e->lock);
	g->rate = rate;
	g->st.rate = rate;
	pthread_mutex_unlock(&e->lock);
}

void dedup_get_limits(struct dedup_engine *e, uint64_t *rate, unsigned *cpu_pct)
{
	pthread_mutex_lock(&e->lock);
	*rate = e->cfg.rate;
	*cpu_pct = e->cfg.cpu_pct;
	pthread_mutex_unlock(&e->lock);
}

void dedup_set_paused(struct dedup_engine *e, bool paused)
{
	pthread_mutex_lock(&e->lock);
	e->paused = paused;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

/* ---- statistics ---- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Counts that are derived from the page states (e->lock held): a walk of
 * every page and a sort of its frames, so it is kept until a page or a
 * frame changes.  Only merges (zero discards included), unmerges and guest
 * removals (which drop frame references other guests share) change them;
 * owners poll the statistics many times a second, also while nothing
 * happens. */
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

static void guest_derived_stats(struct dedup_engine *e, struct dedup_guest *g,
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

int dedup_wait_passes(struct dedup_engine *e, unsigned n, int timeout_ms)
{
	struct timespec deadline;
	uint64_t target;
	int rc = 0;

	fv_deadline_after(&deadline, CLOCK_MONOTONIC, timeout_ms >= 0 ? timeout_ms : 0);
	pthread_mutex_lock(&e->lock);
	/* A pass already under way may have missed recent changes: n more
	 * passes must *start* after this call, so wait for n + 1 ends.  A
	 * scanner resting after idle passes is woken and starts over at the
	 * normal interval: whoever waits wants the passes now. */
	target = e->passes + n + 1;
	e->idle_passes = 0;
	e->kick = true;
	pthread_cond_broadcast(&e->cond);
	while (e->passes < target && e->running && rc != ETIMEDOUT)
		rc = timeout_ms >= 0 ? pthread_cond_timedwait(&e->cond, &e->lock, &deadline)
				     : pthread_cond_wait(&e->cond, &e->lock);
	rc = e->passes >= target ? 0 : -1;
	pthread_mutex_unlock(&e->lock);
	return rc;
}
