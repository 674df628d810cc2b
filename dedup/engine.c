/*
 * engine.c - the dedup engine: scanner, merge protocol, unmerge accounting.
 *
 * DOC: Overview
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
 * non-file PTE (the private copy) counts as an unmerge.
 *
 * The merge protocol for one page (merge_page):
 *  1. write-protect the page (uffd-wp): from here on a writer blocks in the
 *     kernel, so the content cannot change under us;
 *  2. compare the page with the frame, byte for byte (the hash only found
 *     the candidate);
 *  3. equal: mmap(MAP_PRIVATE|MAP_FIXED) the frame over the page, clear
 *     KVM's stale dirty bit, wake the blocked writers - they retry on the
 *     new mapping and get copy-on-write, so their write lands in a private
 *     copy and is seen as an unmerge on the next pass;
 *     different: release the write protection (which wakes the writers).
 * A thread (fault_thread) always reads the userfaultfd while pages may be
 * write-protected; it never resolves a fault itself while a merge is in
 * flight (it takes e->lock first), so a woken writer always finds the
 * final mapping.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/userfaultfd.h>
#include <xxhash.h>
#include "dedup/dedup.h"
#include "dedup/index.h"
#include "dedup/store.h"
#include "lib/procstat.h"
#include "lib/timeutil.h"

/* Linux 6.4 UAPI; Debian 12's headers (6.1) predate it, the kernels foldvm
 * runs on have it, and UFFDIO_API refuses it cleanly where they do not. */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif

#define PAGE 4096ull
#define CHUNK_PAGES 512            /* pages per lock hold */
#define VMA_HEADROOM 2000          /* VMAs left for the rest of the process */
#define VMA_RECOUNT_NS 250000000ull /* recount VMAs at most this often */
#define HEAT_MAX 12
#define ZERO_DOMAIN 0              /* zero content merges across domains */
#define MAX_DOMAINS 256
#define ERROR_REPORT_NS 10000000000ull /* merge errors: one report per 10 s */

enum page_flags {
	PG_HASHED = 1 << 0,    /* hash is the content's, as of the last clean visit */
	PG_MERGED = 1 << 1,    /* maps frame `frame`, copy-on-write */
	PG_ZERO = 1 << 2,      /* discarded: reads the zero page */
	PG_CANDIDATE = 1 << 3, /* in the candidate index under `hash` */
	PG_FILEVMA = 1 << 4,   /* lies in a store mapping (was merged once) */
};

struct dedup_page {
	uint64_t hash;      /* valid with PG_HASHED */
	uint32_t frame;     /* valid with PG_MERGED */
	uint8_t flags;
	uint8_t heat;       /* passes in a row it was found dirty */
	uint16_t skip;      /* passes left before it is looked at again */
};

struct dedup_guest {
	struct dedup_engine *engine;
	struct guest_mem *gm;
	char name[64];
	uint32_t id;
	uint32_t domain;
	uint64_t npages;
	struct dedup_page *pages;
	uint64_t *dirty;           /* this pass's dirty bitmap */
	bool paused_merging;       /* dedup switched off: only unmerges tracked */
	uint64_t rate;             /* its own scan-rate cap, pages/s (0 = none) */
	bool error_reported;       /* merge errors: one was reported, */
	uint64_t error_reported_ns;/* at this time; */
	uint64_t errors_hidden;    /* how many were not since */
	struct dedup_guest_stats st;
	struct dedup_guest *next;
};

struct dedup_engine {
	struct dedup_config cfg;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct dedup_store store;
	struct dedup_index stable;
	struct dedup_index cand;
	uint64_t *frame_hash;      /* per frame: its content hash */
	uint32_t *frame_domain;    /* per frame: its domain */
	struct dedup_guest *guests;
	uint32_t next_guest_id;
	char *domains[MAX_DOMAINS];
	uint32_t nr_domains;
	uint64_t zero_hash;
	uint64_t zero_pfn;         /* PFN of the kernel zero page, 0 if unknown */
	uint32_t zero_frame;       /* store frame of zeros (for store mappings) */
	int uffd;
	int pagemap_fd;
	pthread_t scanner, faulter;
	bool running;
	bool paused;
	bool threads_started;
	uint64_t vma_budget, vmas_used, max_map_count;
	uint64_t vma_calibrated_ns;  /* when vmas_used was last counted */
	bool budget_exhausted;
	uint64_t passes, merges, unmerges;
	uint64_t scanner_cpu_ns, fault_cpu_ns;
	uint64_t pass_cpu_max_ns, pass_cpu_last_ns;
	dedup_event_fn event_fn;
	void *event_opaque;
	bool event_running;        /* event_fn is being called (no lock held) */
	bool budget_reported;      /* the budget event went out */
	uint8_t zero_page[PAGE] __attribute__((aligned(64)));
};

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

unsigned dedup_backoff_passes(unsigned heat, unsigned volatile_after)
{
	unsigned over;

	if (heat < volatile_after)
		return 0;
	over = heat - volatile_after;
	return 1u << (over < 6 ? over : 6); /* 1, 2, 4 ... 64 passes */
}

void dedup_config_defaults(struct dedup_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->store_max_bytes = 256ull << 30;
	cfg->pass_interval_ms = 100;
	cfg->volatile_after = 2;
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

static uint64_t page_hash(const uint8_t *p)
{
	return XXH3_64bits(p, PAGE);
}

/* pagemap entry of a guest page (0 when unreadable) */
static uint64_t page_pte(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn)
{
	uint64_t ent = 0, va = (uintptr_t)gmem_page_hva(g->gm, gfn);

	if (pread(e->pagemap_fd, &ent, sizeof(ent), (off_t)(va / PAGE * 8)) != sizeof(ent))
		return 0;
	return ent;
}

#define PM_PRESENT (1ull << 63)
#define PM_FILE (1ull << 61)
#define PM_PFN_MASK ((1ull << 55) - 1)

/* Did the guest page get its private copy (copy-on-write happened)? */
static bool page_was_copied(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn)
{
	uint64_t pte = page_pte(e, g, gfn);

	/* A page still on the frame is either not faulted in (no PTE: the
	 * mapping falls back to the file) or mapped from the file. */
	return (pte & PM_PRESENT) && !(pte & PM_FILE);
}

/* Is this zero page already the kernel's zero page (nothing to save)? */
static bool page_is_kernel_zero(struct dedup_engine *e, struct dedup_guest *g,
				uint64_t gfn)
{
	uint64_t pte;

	if (!e->zero_pfn)
		return false;
	pte = page_pte(e, g, gfn);
	return !(pte & PM_PRESENT) || (pte & PM_PFN_MASK) == e->zero_pfn;
}

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
static void frame_put(struct dedup_engine *e, uint32_t f)
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

/* ---- candidates ---- */

static void cand_remove(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn)
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

static struct dedup_guest *guest_by_id(struct dedup_engine *e, uint32_t id)
{
	for (struct dedup_guest *g = e->guests; g; g = g->next)
		if (g->id == id)
			return g;
	return NULL;
}

/* ---- the VMA budget ---- */

/* The guest whose RAM holds [start, end), if any. */
static struct dedup_guest *guest_of_range(struct dedup_engine *e, uint64_t start,
					  uint64_t end)
{
	for (struct dedup_guest *g = e->guests; g; g = g->next) {
		uint64_t lo = (uintptr_t)gmem_page_hva(g->gm, 0);

		if (start >= lo && end <= lo + g->npages * PAGE)
			return g;
	}
	return NULL;
}

/*
 * Count what merges really cost: a guest's RAM is one VMA until the engine
 * maps frames into it, so every VMA beyond the first inside a guest's range
 * is the engine's.  (Between counts, merges add a conservative estimate.)
 * With an automatic budget, whatever the rest of the process uses now is
 * left to it, plus headroom.
 */
static void vma_recount(struct dedup_engine *e)
{
	char buf[65536];
	uint64_t total = 0, merged = 0, carry = 0, start, end;
	ssize_t n;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	for (struct dedup_guest *g = e->guests; g; g = g->next)
		g->st.vmas = 0;
	/* Lines start with "start-end "; read in blocks, parse line starts. */
	while ((n = read(fd, buf + carry, sizeof(buf) - 1 - carry)) > 0) {
		char *p = buf, *nl, *lim = buf + carry + n;

		*lim = '\0';
		while ((nl = memchr(p, '\n', (size_t)(lim - p)))) {
			struct dedup_guest *g;

			total++;
			if (sscanf(p, "%lx-%lx", &start, &end) == 2 &&
			    (g = guest_of_range(e, start, end)))
				g->st.vmas++;
			p = nl + 1;
		}
		carry = (uint64_t)(lim - p);
		memmove(buf, p, carry);
	}
	close(fd);
	for (struct dedup_guest *g = e->guests; g; g = g->next) {
		g->st.vmas = g->st.vmas ? g->st.vmas - 1 : 0;
		merged += g->st.vmas;
	}
	e->vmas_used = merged;
	if (!e->cfg.vma_budget)
		e->vma_budget = e->max_map_count > total - merged + VMA_HEADROOM ?
				e->max_map_count - (total - merged) - VMA_HEADROOM : 0;
	e->vma_calibrated_ns = fv_mono_ns();
}

static void vma_maybe_recount(struct dedup_engine *e)
{
	if (fv_mono_ns() - e->vma_calibrated_ns >= VMA_RECOUNT_NS)
		vma_recount(e);
}

/* Room for a merge adding `delta` VMAs?  Counts a refusal. */
static bool vma_room(struct dedup_engine *e, struct dedup_guest *g, int delta)
{
	if (dedup_budget_allows(e->vmas_used, e->vma_budget, delta))
		return true;
	e->budget_exhausted = true;
	g->st.budget_skipped++;
	return false;
}

/* ---- the merge protocol ---- */

enum merge_result { MERGE_DONE, MERGE_DIFFERENT, MERGE_NO_BUDGET, MERGE_ERROR };

static int merge_vma_delta(struct dedup_guest *g, uint64_t gfn, uint32_t f)
{
	bool left = gfn > 0 && (g->pages[gfn - 1].flags & PG_MERGED) &&
		    g->pages[gfn - 1].frame + 1 == f;
	bool right = gfn + 1 < g->npages && (g->pages[gfn + 1].flags & PG_MERGED) &&
		     g->pages[gfn + 1].frame == f + 1;

	return dedup_vma_delta(left, right);
}

/*
 * A merge error tends to recur on every page of every pass (a broken VM fd,
 * a userfaultfd gone wrong): report a guest's first one at once, then at
 * most one every ERROR_REPORT_NS, with the count of those not shown.  Per
 * guest, so that one guest's errors never hide another's; rate-limited
 * rather than once, so that an error that persists, or a different later
 * one, is still seen.  e->lock held.
 */
static void merge_report_error(struct dedup_guest *g, const struct fv_error *err)
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

/*
 * Map guest page gfn onto frame f if - with the page write-protected -
 * it still holds the frame's content.  See DOC: Overview for the steps.
 */
static enum merge_result merge_page(struct dedup_engine *e, struct dedup_guest *g,
				    uint64_t gfn, uint32_t f)
{
	struct dedup_page *p = &g->pages[gfn];
	struct fv_error err = { 0 };
	int delta = merge_vma_delta(g, gfn, f);

	if (!vma_room(e, g, delta))
		return MERGE_NO_BUDGET;
	if (gmem_protect(g->gm, gfn, 1, true, &err)) {
		merge_report_error(g, &err);
		return MERGE_ERROR;
	}
	g->st.merge_attempts++;
	/* Write-protected: a writer now waits, so what we compare is what
	 * we map over. */
	if (memcmp(gmem_page_view(g->gm, gfn), store_frame(&e->store, f), PAGE)) {
		gmem_protect(g->gm, gfn, 1, false, &err);
		g->st.merge_races++;
		p->flags &= ~PG_HASHED;
		return MERGE_DIFFERENT;
	}
	if (gmem_map_frame(g->gm, gfn, e->store.fd, store_offset(f), &err)) {
		/* Nothing changed: the old page is still there, protected. */
		gmem_protect(g->gm, gfn, 1, false, NULL);
		if (err.code == FV_E_NOMEM) {
			/* mmap's ENOMEM here is vm.max_map_count. */
			e->budget_exhausted = true;
			g->st.budget_skipped++;
			e->vma_budget = e->vmas_used;
			return MERGE_NO_BUDGET;
		}
		merge_report_error(g, &err);
		return MERGE_ERROR;
	}
	/* The page starts clean on the frame; a write from now on - the
	 * waiting writers included - shows in the dirty log. */
	gmem_clear_dirty(g->gm, gfn, NULL);
	gmem_wake(g->gm, gfn, 1, NULL);
	store_get(&e->store, f);
	cand_remove(e, g, gfn);
	p->flags |= PG_MERGED | PG_FILEVMA;
	p->frame = f;
	/* An estimate until the next recount: a page that already sits in a
	 * store mapping of its own may really cost nothing. */
	e->vmas_used += (uint64_t)(delta > 0 ? delta : 0);
	g->st.vmas += (uint64_t)(delta > 0 ? delta : 0);
	g->st.merges++;
	e->merges++;
	return MERGE_DONE;
}

static uint32_t zero_frame_get(struct dedup_engine *e)
{
	if (e->zero_frame == STORE_NO_FRAME)
		e->zero_frame = frame_new(e, e->zero_page, e->zero_hash, ZERO_DOMAIN,
					  STORE_NO_FRAME);
	return e->zero_frame;
}

/* A zero page: discard it (anonymous memory), or map the zero frame when
 * the page lies in a store mapping, where discarding would expose the
 * mapping's frame again. */
static void merge_zero(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn)
{
	struct dedup_page *p = &g->pages[gfn];
	struct fv_error err = { 0 };
	uint32_t f;

	if (p->flags & PG_FILEVMA) {
		if (e->zero_frame == STORE_NO_FRAME && !vma_room(e, g, 2))
			return;
		f = zero_frame_get(e);
		if (f != STORE_NO_FRAME && merge_page(e, g, gfn, f) != MERGE_DONE)
			frame_abandon(e, f);
		return;
	}
	if (page_is_kernel_zero(e, g, gfn))
		return; /* never written: costs nothing already */
	if (gmem_protect(g->gm, gfn, 1, true, &err)) {
		merge_report_error(g, &err);
		return;
	}
	g->st.merge_attempts++;
	if (memcmp(gmem_page_view(g->gm, gfn), e->zero_page, PAGE)) {
		gmem_protect(g->gm, gfn, 1, false, NULL);
		g->st.merge_races++;
		p->flags &= ~PG_HASHED;
		return;
	}
	/* DONTNEED on anonymous memory drops the page and its protection;
	 * the woken writer faults in a fresh zero-filled page. */
	if (gmem_discard(g->gm, gfn, &err)) {
		gmem_protect(g->gm, gfn, 1, false, NULL);
		merge_report_error(g, &err);
		return;
	}
	gmem_clear_dirty(g->gm, gfn, NULL);
	gmem_wake(g->gm, gfn, 1, NULL);
	cand_remove(e, g, gfn);
	p->flags |= PG_ZERO;
	g->st.merges++;
	e->merges++;
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
	if (!vma_room(e, g, 4))
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
	if (merge_page(e, tg, tgfn, f) != MERGE_DONE)
		cand_remove(e, tg, tgfn); /* it changed; it will be seen again */
	return true;
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

/* ---- the scanner ---- */

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
		p->hash = page_hash(page);
		p->flags |= PG_HASHED;
		g->st.pages_hashed++;
	}
	if (p->hash == e->zero_hash && !memcmp(page, e->zero_page, PAGE)) {
		merge_zero(e, g, gfn);
		return;
	}
	if (merge_with_stable(e, g, gfn, page) ||
	    merge_with_candidate(e, g, gfn, page))
		return;
	cand_add(e, g, gfn);
}

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
		vma_maybe_recount(e);
	}
	g->st.full_passes++;
}

/* Tell the owner a pass ended (and, once, that the budget binds).  The
 * callback runs without the engine lock (it takes its owner's locks);
 * event_running lets dedup_set_event_callback() wait for it, so an owner
 * that unhooks itself can free what `opaque` points to right after. */
static void engine_notify(struct dedup_engine *e)
{
	struct dedup_host_stats st;
	dedup_event_fn fn;
	void *opaque;
	bool budget_now;

	pthread_mutex_lock(&e->lock);
	fn = e->event_fn;
	opaque = e->event_opaque;
	budget_now = e->budget_exhausted && !e->budget_reported;
	if (budget_now)
		e->budget_reported = true;
	e->event_running = fn != NULL;
	pthread_mutex_unlock(&e->lock);
	if (!fn)
		return;
	dedup_get_host_stats(e, &st);
	fn(opaque, &st, budget_now);
	pthread_mutex_lock(&e->lock);
	e->event_running = false;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
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

static void *scanner_thread(void *arg)
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

/* ---- the userfaultfd thread ---- */

/*
 * Every write-protect fault is resolved by the merge that set it (wake or
 * release).  This thread drains the fault queue and, for a fault it sees,
 * waits for any merge in flight (e->lock) and then releases the page's
 * protection, which is a no-op when the merge already did.  So no writer
 * can stay blocked even if a merge path forgot a page - and, holding the
 * lock, it never releases a page in the middle of a merge.
 */
static void fault_release(struct dedup_engine *e, uint64_t addr)
{
	struct uffdio_writeprotect w = {
		.range = { .start = addr & ~(PAGE - 1), .len = PAGE },
		.mode = 0,
	};

	pthread_mutex_lock(&e->lock);
	ioctl(e->uffd, UFFDIO_WRITEPROTECT, &w); /* ENOENT etc.: already fine */
	pthread_mutex_unlock(&e->lock);
}

static void *fault_thread(void *arg)
{
	struct dedup_engine *e = arg;
	struct pollfd pfd = { .fd = e->uffd, .events = POLLIN };

	pthread_setname_np(pthread_self(), "dedup-uffd");
	for (;;) {
		struct uffd_msg msg;
		uint64_t t0;
		ssize_t n;

		pthread_mutex_lock(&e->lock);
		if (!e->running) {
			pthread_mutex_unlock(&e->lock);
			break;
		}
		pthread_mutex_unlock(&e->lock);
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = read(e->uffd, &msg, sizeof(msg));
		if (n != sizeof(msg))
			continue;
		t0 = procstat_thread_cpu_ns();
		if (msg.event == UFFD_EVENT_PAGEFAULT &&
		    (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP))
			fault_release(e, msg.arg.pagefault.address);
		__atomic_add_fetch(&e->fault_cpu_ns, procstat_thread_cpu_ns() - t0,
				   __ATOMIC_RELAXED);
	}
	return NULL;
}

/* ---- engine lifecycle ---- */

static int engine_open_uffd(struct dedup_engine *e, struct fv_error *err)
{
	struct uffdio_api api = { .api = UFFD_API };

	e->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (e->uffd < 0)
		return fv_err_errno(err, FV_E_SYS, errno,
				    "userfaultfd (dedup needs root or vm.unprivileged_userfaultfd=1)");
	/* WP_UNPOPULATED: protecting a never-touched page must hold too.
	 * WP_HUGETLBFS_SHMEM: pages in store mappings (shmem) can be protected. */
	api.features = UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
	if (ioctl(e->uffd, UFFDIO_API, &api) < 0)
		return fv_err_errno(err, FV_E_SYS, errno,
				    "userfaultfd lacks write-protect features (WP_UNPOPULATED, shmem WP)");
	return 0;
}

static int engine_budget(struct dedup_engine *e, struct fv_error *err)
{
	if (procstat_max_map_count(&e->max_map_count, err))
		return -1;
	e->vma_budget = e->cfg.vma_budget;
	vma_recount(e);
	return 0;
}

static int engine_init(struct dedup_engine *e, struct fv_error *err)
{
	uint64_t frames = e->cfg.store_max_bytes / PAGE;

	e->zero_hash = page_hash(e->zero_page);
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
	e->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (e->pagemap_fd < 0)
		return fv_err_errno(err, FV_E_IO, errno, "/proc/self/pagemap");
	e->zero_pfn = procstat_zero_pfn();
	if (engine_open_uffd(e, err) || engine_budget(e, err))
		return -1;
	return 0;
}

static int engine_start_threads(struct dedup_engine *e, struct fv_error *err)
{
	int r;

	e->running = true;
	r = pthread_create(&e->faulter, NULL, fault_thread, e);
	if (r)
		return fv_err_errno(err, FV_E_SYS, r, "dedup fault thread");
	r = pthread_create(&e->scanner, NULL, scanner_thread, e);
	if (r) {
		pthread_mutex_lock(&e->lock);
		e->running = false;
		pthread_mutex_unlock(&e->lock);
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
	e->pagemap_fd = -1;
	e->store.fd = -1;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cond, NULL);
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
		e->running = false;
		pthread_cond_broadcast(&e->cond);
		pthread_mutex_unlock(&e->lock);
		pthread_join(e->scanner, NULL);
		pthread_join(e->faulter, NULL);
	}
	while (e->guests)
		dedup_remove_guest(e, e->guests);
	if (e->uffd >= 0)
		close(e->uffd);
	if (e->pagemap_fd >= 0)
		close(e->pagemap_fd);
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
	g->dirty = calloc((g->npages + 63) / 64, sizeof(uint64_t));
	if (!g->pages || !g->dirty) {
		fv_err(err, FV_E_NOMEM, "dedup page table for %s", name);
		goto out;
	}
	if (gmem_dedup_enable(gm, e->uffd, err))
		goto out;
	pthread_mutex_lock(&e->lock);
	r = domain_id(e, dom, &g->domain, err);
	if (r == 0) {
		g->id = e->next_guest_id++;
		g->next = e->guests;
		e->guests = g;
		*out = g;
	}
	pthread_mutex_unlock(&e->lock);
out:
	if (r) {
		free(g->pages);
		free(g->dirty);
		free(g);
	}
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
	}
	e->vmas_used -= g->st.vmas < e->vmas_used ? g->st.vmas : e->vmas_used;
	e->vma_calibrated_ns = 0; /* recount soon: its VMAs go with its memory */
	pthread_mutex_unlock(&e->lock);
	free(g->pages);
	free(g->dirty);
	free(g);
}

void dedup_guest_set_merging(struct dedup_engine *e, struct dedup_guest *g,
			     bool on)
{
	pthread_mutex_lock(&e->lock);
	g->paused_merging = !on;
	/* Candidates of a guest that merges no more would pair others with
	 * pages that are not going to be merged. */
	if (!on)
		for (uint64_t gfn = 0; gfn < g->npages; gfn++)
			cand_remove(e, g, gfn);
	pthread_mutex_unlock(&e->lock);
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
		if (g->pages[gfn].flags & PG_MERGED)
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

/* Counts that are derived from the page states (e->lock held). */
static void guest_derived_stats(struct dedup_engine *e, struct dedup_guest *g,
				struct dedup_guest_stats *st)
{
	uint32_t *frames = malloc(g->npages * sizeof(*frames));
	uint64_t nf = 0, saved = 0;

	st->pages_merged = st->pages_zero = st->frames_referenced = 0;
	for (uint64_t gfn = 0; gfn < g->npages; gfn++) {
		const struct dedup_page *p = &g->pages[gfn];

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
		}
	}
	if (frames) {
		qsort(frames, nf, sizeof(*frames), cmp_u32);
		for (uint64_t i = 0; i < nf; i++)
			st->frames_referenced += i == 0 || frames[i] != frames[i - 1];
		free(frames);
	}
	st->bytes_saved = saved;
}

void dedup_get_guest_stats(struct dedup_engine *e, struct dedup_guest *g,
			   struct dedup_guest_stats *out)
{
	pthread_mutex_lock(&e->lock);
	*out = g->st;
	out->pages = g->npages;
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
	out->cpu_ns = e->scanner_cpu_ns +
		      __atomic_load_n(&e->fault_cpu_ns, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&e->lock);
	out->store_bytes = store_resident_bytes(&e->store);
}

int dedup_wait_passes(struct dedup_engine *e, unsigned n, int timeout_ms)
{
	struct timespec deadline;
	uint64_t target;
	int rc = 0;

	fv_deadline_after(&deadline, CLOCK_REALTIME, timeout_ms >= 0 ? timeout_ms : 0);
	pthread_mutex_lock(&e->lock);
	/* A pass already under way may have missed recent changes: n more
	 * passes must *start* after this call, so wait for n + 1 ends. */
	target = e->passes + n + 1;
	while (e->passes < target && e->running && rc != ETIMEDOUT)
		rc = timeout_ms >= 0 ? pthread_cond_timedwait(&e->cond, &e->lock, &deadline)
				     : pthread_cond_wait(&e->cond, &e->lock);
	rc = e->passes >= target ? 0 : -1;
	pthread_mutex_unlock(&e->lock);
	return rc;
}
