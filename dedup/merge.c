/*
 * merge.c - the merge protocol, and the frames and candidates it changes.
 *
 * Every merge, onto a frame or of a zero page, goes through one sequence,
 * merge_protected(): write-protect the page, compare it with the content
 * it is to share, then either replace it (map the frame, or discard the
 * page) and wake the writers, or release the protection.  DOC: Overview in
 * engine.c says what the engine's state is; the races of a merge are
 * argued below, at the lines that handle them.  e->lock is held
 * throughout this file.
 */
#include <stdio.h>
#include <string.h>
#include "dedup/engine_internal.h"
#include "lib/timeutil.h"

/* ---- frames ---- */

/* A frame about to be freed leaves the stable index. */
static void frame_forget(struct dedup_engine *e, uint32_t f)
{
	struct dedup_index_entry ent = {
		.hash = e->frame_hash[f], .domain = e->frame_domain[f], .a = f,
	};

	dedup_index_remove(&e->stable, &ent);
	if (f == e->zero_frame)
		e->zero_frame = STORE_NO_FRAME;
}

/* Drop one reference; the last one frees the frame. */
void frame_put(struct dedup_engine *e, uint32_t f)
{
	if (e->store.refs[f] == 1)
		frame_forget(e, f);
	store_put(&e->store, f);
}

/* A fresh frame holding `content`, registered in the stable index. */
static uint32_t frame_new(struct dedup_engine *e, const uint8_t *content,
			  uint64_t hash, uint32_t domain, uint32_t hint)
{
	struct dedup_index_entry ent = { .hash = hash, .domain = domain };
	uint32_t f = store_alloc(&e->store, content, hint);

	if (f == STORE_NO_FRAME)
		return f;
	ent.a = f;
	if (dedup_index_insert(&e->stable, &ent)) {
		store_discard(&e->store, f);
		return STORE_NO_FRAME;
	}
	e->frame_hash[f] = hash;
	e->frame_domain[f] = domain;
	return f;
}

/* The frame was created for a merge that did not happen. */
static void frame_abandon(struct dedup_engine *e, uint32_t f)
{
	if (e->store.refs[f])
		return;
	frame_forget(e, f);
	store_discard(&e->store, f);
}

static uint32_t zero_frame_get(struct dedup_engine *e)
{
	if (e->zero_frame == STORE_NO_FRAME)
		e->zero_frame = frame_new(e, e->zero_page, e->zero_hash, ZERO_DOMAIN,
					  STORE_NO_FRAME);
	return e->zero_frame;
}

/* ---- candidates ---- */

void cand_remove(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn)
{
	struct dedup_page *p = &g->pages[gfn];
	struct dedup_index_entry ent = {
		.hash = p->hash, .domain = g->domain, .a = g->id, .b = gfn,
	};

	if (!(p->flags & PG_CANDIDATE))
		return;
	dedup_index_remove(&e->cand, &ent);
	p->flags &= ~PG_CANDIDATE;
}

static void cand_add(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn)
{
	struct dedup_page *p = &g->pages[gfn];
	struct dedup_index_entry ent = {
		.hash = p->hash, .domain = g->domain, .a = g->id, .b = gfn,
	};

	if (!(p->flags & PG_CANDIDATE) && !dedup_index_insert(&e->cand, &ent))
		p->flags |= PG_CANDIDATE;
}

/* ---- the merge protocol ---- */

/*
 * A merge error tends to recur on every page of every pass (a broken VM fd,
 * a userfaultfd gone wrong): report a guest's first one at once, then at
 * most one every ERROR_REPORT_NS, with the count of those not shown.  Per
 * guest, so that one guest's errors never hide another's; rate-limited
 * rather than once, so that an error that persists, or a different later
 * one, is still seen.
 */
void merge_report_error(struct dedup_guest *g, const struct fv_error *err)
{
	uint64_t now = fv_mono_ns();
	char more[64] = "";

	if (g->error_reported && now - g->error_reported_ns < ERROR_REPORT_NS) {
		g->errors_hidden++;
		return;
	}
	if (g->errors_hidden)
		snprintf(more, sizeof(more), "; %llu errors not shown since the last report",
			 (unsigned long long)g->errors_hidden);
	fprintf(stderr, "foldvm: dedup: guest %s: %s (merging continues%s)\n",
		g->name, err->msg, more);
	g->error_reported = true;
	g->error_reported_ns = now;
	g->errors_hidden = 0;
}

/* Replace the protected page: map frame f over it, drop it for its home
 * slot (FRAME_HOME), or (STORE_NO_FRAME) discard it.  On failure the old
 * page is still there, protected. */
static int merge_install(struct dedup_engine *e, struct dedup_guest *g,
			 uint64_t gfn, uint32_t f, struct fv_error *err)
{
	if (f == FRAME_HOME)
		return gmem_merge_home(g->gm, gfn, err);
	if (f == FRAME_REHOME)
		return gmem_merge_rehome(g->gm, gfn, err);
	if (f == FRAME_REHOME_ZERO)
		return gmem_discard_rehome(g->gm, gfn, err);
	if (f != STORE_NO_FRAME)
		return gmem_map_frame(g->gm, gfn, e->store.fd, store_offset(f), err);
	/* DONTNEED on anonymous memory drops the page and its protection;
	 * the woken writer faults in a fresh zero-filled page and writes
	 * there; home-backed RAM maps the zero page at once (home rule 3,
	 * memory/home.c).  (Never on a page in a store mapping: merge_zero.) */
	return gmem_discard(g->gm, gfn, err);
}

/*
 * Map guest page gfn onto frame f - or discard it, when f is STORE_NO_FRAME
 * and the page holds zeros, or drop it for its home slot, when f is
 * FRAME_HOME - if, with the page write-protected, it still holds `want`,
 * the content of f.  The caller checked the VMA budget; on MERGE_DONE it
 * records what the page now is.
 */
static enum merge_result merge_onto(struct dedup_engine *e, struct dedup_guest *g,
				    uint64_t gfn, uint32_t f, const uint8_t *want)
{
	struct dedup_page *p = &g->pages[gfn];
	struct fv_error err = { 0 };

	/* 1. From here on a write to the page - by a vCPU inside KVM's fault
	 * path, by a device thread, by KVM itself - blocks in the kernel.  A
	 * write that came before is in the page when it is compared. */
	if (gmem_protect(g->gm, gfn, 1, true, &err)) {
		merge_report_error(g, &err);
		return MERGE_ERROR;
	}
	g->st.merge_attempts++;
	/* 2. Write-protected: a writer now waits, so what we compare is what
	 * we map over; "equal" is a fact, not a guess from the hash. */
	if (memcmp(gmem_page_view(g->gm, gfn), want, PAGE)) {
		/* Releasing wakes the writers on the old, untouched page. */
		gmem_protect(g->gm, gfn, 1, false, NULL);
		g->st.merge_races++;
		p->flags &= ~PG_HASHED;
		return MERGE_DIFFERENT;
	}
	/* 3. The mapping is replaced atomically for every thread, and KVM
	 * follows through its MMU notifier: no half-done state is seen. */
	if (merge_install(e, g, gfn, f, &err)) {
		gmem_protect(g->gm, gfn, 1, false, NULL);
		if (f != STORE_NO_FRAME && err.code == FV_E_NOMEM) {
			/* mmap's ENOMEM here is vm.max_map_count. */
			budget_hit_limit(e, g, gfn);
			return MERGE_NO_BUDGET;
		}
		merge_report_error(g, &err);
		return MERGE_ERROR;
	}
	/* A write from now on - the waiting writers included - shows in the
	 * dirty log: woken, they retry on the new mapping and get
	 * copy-on-write (a fresh zero page), so their write lands in a
	 * private copy and is seen as an unmerge on the next pass.  KVM's
	 * bit is not cleared here: it may be stale (a write before step 1,
	 * already compared), but clearing it could also erase the bit of a
	 * write made right after the mapping changed, and the next pass
	 * tells the two apart by the page table (scan.c), which a clear
	 * here would cost an ioctl and a TLB flush per merge to save.  (A
	 * merge in place released the page already, which woke them.) */
	if (f != FRAME_HOME)
		gmem_wake(g->gm, gfn, 1, NULL);
	cand_remove(e, g, gfn);
	g->st.merges++;
	e->merges++;
	return MERGE_DONE;
}

enum merge_result merge_protected(struct dedup_engine *e, struct dedup_guest *g,
				  uint64_t gfn, uint32_t f)
{
	return merge_onto(e, g, gfn, f, f == STORE_NO_FRAME || f == FRAME_REHOME_ZERO ?
					e->zero_page : store_frame(&e->store, f));
}

/* Merge guest page gfn onto frame f, within the VMA budget. */
static enum merge_result merge_page(struct dedup_engine *e, struct dedup_guest *g,
				    uint64_t gfn, uint32_t f)
{
	struct dedup_page *p = &g->pages[gfn];
	int delta = budget_merge_delta(g, gfn, f);
	enum merge_result r;

	if (!budget_room(e, g, gfn, delta))
		return MERGE_NO_BUDGET;
	r = merge_protected(e, g, gfn, f);
	if (r != MERGE_DONE)
		return r;
	store_get(&e->store, f);
	p->flags |= PG_MERGED | PG_FILEVMA;
	p->frame = f;
	budget_charge(e, g, delta);
	return MERGE_DONE;
}

/* Is this zero page already the kernel's zero page (nothing to save)? */
static bool page_is_kernel_zero(struct dedup_engine *e, struct dedup_guest *g,
				uint64_t gfn)
{
	struct procstat_page pg;

	if (!e->zero_pfn)
		return false;
	guest_page_entry(e, g, gfn, &pg);
	return !pg.present || pg.pfn == e->zero_pfn;
}

/* A page in a store mapping went back to the home mapping: it costs no
 * VMA of its own any more (the next recount settles the books). */
static void merge_rehomed(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn)
{
	g->pages[gfn].flags &= ~PG_FILEVMA;
	g->st.rehomed++;
	e->recount_due = true;
}

/* A zero page: discard it, or map the zero frame when the page lies over a
 * home slot that holds content (home rule 3, memory/home.c).  One in a
 * store mapping of home-backed RAM goes back to the home mapping (a
 * discard there would expose the mapping's frame again); of anonymous RAM,
 * onto the zero frame. */
static void merge_zero(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn)
{
	bool file = g->pages[gfn].flags & PG_FILEVMA;
	uint32_t f;

	if (file && g->gm->home && !gmem_home_refs(g->gm, gfn)) {
		if (merge_protected(e, g, gfn, FRAME_REHOME_ZERO) == MERGE_DONE) {
			g->pages[gfn].flags |= PG_ZERO;
			merge_rehomed(e, g, gfn);
		}
		return;
	}

	/* (A page in a store mapping shows its frame, never the kernel's zero
	 * page; one in home-backed RAM does until written, whatever its slot
	 * holds.) */
	if (!file && page_is_kernel_zero(e, g, gfn)) {
		/* never written: costs nothing already, and needs no visit
		 * until a write puts it in the dirty log */
		g->pages[gfn].flags |= PG_UNTOUCHED;
		return;
	}
	if (file || gmem_home_refs(g->gm, gfn)) {
		if (e->zero_frame == STORE_NO_FRAME && !budget_room(e, g, gfn, 2))
			return;
		f = zero_frame_get(e);
		if (f != STORE_NO_FRAME && merge_page(e, g, gfn, f) != MERGE_DONE)
			frame_abandon(e, f);
		return;
	}
	if (merge_protected(e, g, gfn, STORE_NO_FRAME) == MERGE_DONE)
		g->pages[gfn].flags |= PG_ZERO;
}

/* Try the frames already holding this content. */
static bool merge_with_stable(struct dedup_engine *e, struct dedup_guest *g,
			      uint64_t gfn, const uint8_t *page)
{
	const struct dedup_index_entry *ent;
	uint32_t frames[8];
	unsigned n = 0;
	size_t cur = 0;

	/* Collect first: merging changes the index we iterate. */
	while (n < 8 && (ent = dedup_index_next(&e->stable, g->pages[gfn].hash,
						g->domain, &cur)))
		if (!memcmp(page, store_frame(&e->store, ent->a), PAGE))
			frames[n++] = ent->a;
	for (unsigned i = 0; i < n; i++) {
		enum merge_result r = merge_page(e, g, gfn, frames[i]);

		if (r == MERGE_DONE || r == MERGE_NO_BUDGET || r == MERGE_ERROR)
			return true;
	}
	return false;
}

/* Merge this page and a twin seen earlier onto a fresh frame. */
static bool merge_with_candidate(struct dedup_engine *e, struct dedup_guest *g,
				 uint64_t gfn, const uint8_t *page)
{
	const struct dedup_index_entry *ent;
	struct dedup_guest *tg = NULL;
	uint64_t tgfn = 0;
	size_t cur = 0;
	uint32_t f, hint;

	while ((ent = dedup_index_next(&e->cand, g->pages[gfn].hash, g->domain, &cur))) {
		struct dedup_guest *cg = guest_by_id(e, ent->a);

		if (!cg || (cg == g && ent->b == gfn))
			continue;
		if (!memcmp(page, gmem_page_view(cg->gm, ent->b), PAGE)) {
			tg = cg;
			tgfn = ent->b;
			break;
		}
	}
	if (!tg)
		return false;
	/* Both pages must fit, or the first would sit alone on a frame, costing
	 * VMAs and saving nothing; and no frame is made for nothing. */
	if (!budget_room(e, g, gfn, 4))
		return true;
	/* Prefer the frame after the previous page's, for one VMA per run. */
	hint = gfn > 0 && (g->pages[gfn - 1].flags & PG_MERGED) ?
	       g->pages[gfn - 1].frame + 1 : STORE_NO_FRAME;
	f = frame_new(e, page, g->pages[gfn].hash, g->domain, hint);
	if (f == STORE_NO_FRAME)
		return false;
	if (merge_page(e, g, gfn, f) != MERGE_DONE) {
		frame_abandon(e, f);
		return true;
	}
	if (merge_page(e, tg, tgfn, f) != MERGE_DONE) {
		/* It changed (the dirty log names it), the budget parked it, or
		 * the merge failed: no longer a candidate, looked at again. */
		cand_remove(e, tg, tgfn);
		page_requeue(tg, tgfn);
	}
	return true;
}

/* ---- merging in place ---- */

/* Can page gfn of g read its home slot?  In home-backed RAM, yes: one in a
 * store mapping goes back to the home mapping for it (merge_home). */
static bool home_reachable(const struct dedup_guest *g, uint64_t gfn)
{
	(void)gfn;
	return g->gm->home != NULL;
}

/* Merge page gfn onto its home slot, which holds `content`: the caller
 * read it there or put it there, and a held slot never changes (home rule
 * 2) - only the engine, under its lock, drops the references that could
 * empty it. */
static enum merge_result merge_home(struct dedup_engine *e, struct dedup_guest *g,
				    uint64_t gfn, const uint8_t *content)
{
	struct dedup_page *p = &g->pages[gfn];
	bool file = p->flags & PG_FILEVMA;
	enum merge_result r = merge_onto(e, g, gfn, file ? FRAME_REHOME : FRAME_HOME, content);

	if (r == MERGE_DONE) {
		/* A page that was merged onto a frame (the same content at the
		 * same address, moved onto the slot) leaves its frame. */
		if (p->flags & PG_MERGED) {
			p->flags &= ~PG_MERGED;
			frame_put(e, p->frame);
		}
		p->flags |= PG_HOME;
		g->st.merges_in_place++;
		if (file)
			merge_rehomed(e, g, gfn);
	}
	return r;
}

/* Other guests of a home looked at for a twin, per page: bounds a visit's
 * cost however many guests share the home (a twin is usually in the first
 * guest looked at; a page with no twin costs one cache line per guest). */
#define HOME_PROBE_MAX 8

/* Is page gfn of cg merged onto a frame of content (not zeros)? */
static bool on_content_frame(const struct dedup_engine *e, const struct dedup_guest *cg,
			     uint64_t gfn)
{
	const struct dedup_page *p = &cg->pages[gfn];

	return (p->flags & PG_MERGED) && p->frame != e->zero_frame;
}

/* Another guest of the same home with this content at the same guest
 * address, in a page that could merge in place: unmerged, or merged onto a
 * frame of that content (it then moves onto the slot).  Looked at directly,
 * not in the candidate index: the twin need not have been visited yet, so
 * the first guest of a domain visited pairs with the next one at once
 * instead of merging its repeated contents onto frames; and content that
 * also sits at other addresses, merged onto a frame before the twin came,
 * still ends up in place. */
static struct dedup_guest *home_twin(struct dedup_engine *e, struct dedup_guest *g,
				     uint64_t gfn, const uint8_t *page)
{
	unsigned probes = 0;

	for (struct dedup_guest *cg = e->guests; cg && probes < HOME_PROBE_MAX;
	     cg = cg->next) {
		if (cg == g || cg->gm->home != g->gm->home || gfn >= cg->npages)
			continue;
		probes++;
		if (cg->paused_merging || !home_reachable(cg, gfn) ||
		    (cg->pages[gfn].flags & (PG_HOME | PG_ZERO)) ||
		    ((cg->pages[gfn].flags & PG_MERGED) && !on_content_frame(e, cg, gfn)))
			continue;
		if (!memcmp(page, gmem_page_view(cg->gm, gfn), PAGE))
			return cg;
	}
	return NULL;
}

/*
 * The slot at gfn just took content: pages of the home's other guests that
 * wait at that address as candidates are settled (no visit until written)
 * and would never see it; their next visit merges them onto the slot.
 * Those merged onto a frame of the slot's content move onto the slot now
 * (a merged page is not visited again until written).
 */
static void home_wake_candidates(struct dedup_engine *e, struct dedup_guest *g,
				 uint64_t gfn, const uint8_t *held)
{
	for (struct dedup_guest *cg = e->guests; cg; cg = cg->next) {
		if (cg == g || cg->gm->home != g->gm->home || gfn >= cg->npages)
			continue;
		if (cg->pages[gfn].flags & PG_CANDIDATE)
			page_requeue(cg, gfn);
		else if (!cg->paused_merging && on_content_frame(e, cg, gfn) &&
			 !memcmp(store_frame(&e->store, cg->pages[gfn].frame), held, PAGE))
			merge_home(e, cg, gfn, held);
	}
}

/*
 * Merge without a mapping: onto the home slot at the page's own address
 * when it holds this content, or, with a twin at the same address in a
 * guest of the same home, into the free slot (its content is then theirs).
 * Tried before frames: a content repeated at several addresses of each
 * guest then takes a slot per address (a page each) rather than one frame
 * and two VMAs per page.
 * Clones, guests booted from one image, the same files at the same place:
 * much duplicated content sits at the same guest address.
 */
static bool merge_in_place(struct dedup_engine *e, struct dedup_guest *g,
			   uint64_t gfn, const uint8_t *page)
{
	struct fv_error err = { 0 };
	struct dedup_guest *twin;
	uint8_t held[PAGE];

	if (!home_reachable(g, gfn))
		return false;
	if (gmem_home_refs(g->gm, gfn)) {
		if (gmem_home_read(g->gm, gfn, held, NULL) || memcmp(page, held, PAGE))
			return false; /* other content there: a frame, maybe */
		merge_home(e, g, gfn, held);
		return true;
	}
	if (!gmem_home_free(g->gm, gfn) || !(twin = home_twin(e, g, gfn, page)))
		return false;
	/* `page` is the guest's live page: the slot gets a copy, and both
	 * merges compare with that copy, which is what the slot holds. */
	memcpy(held, page, PAGE);
	if (gmem_home_publish(g->gm, gfn, held, &err)) {
		merge_report_error(g, &err);
		return false;
	}
	if (merge_home(e, g, gfn, held) == MERGE_DONE &&
	    merge_home(e, twin, gfn, held) != MERGE_DONE) {
		/* It changed (the dirty log names it) or the merge failed:
		 * looked at again, not as a candidate. */
		cand_remove(e, twin, gfn);
		twin->pages[gfn].flags &= ~PG_HASHED;
		page_requeue(twin, gfn);
	}
	if (gmem_home_refs(g->gm, gfn) > 1)
		home_wake_candidates(e, g, gfn, held);
	/* The publisher's reference: when neither page merged, the slot is
	 * empty again. */
	gmem_home_put(g->gm, gfn);
	return true;
}

void merge_try(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn,
	       const uint8_t *page)
{
	if (g->pages[gfn].hash == e->zero_hash && !memcmp(page, e->zero_page, PAGE)) {
		merge_zero(e, g, gfn);
		return;
	}
	if (merge_in_place(e, g, gfn, page) ||
	    merge_with_stable(e, g, gfn, page) ||
	    merge_with_candidate(e, g, gfn, page))
		return;
	cand_add(e, g, gfn);
}
