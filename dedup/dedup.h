/*
 * dedup.h - foldvm's memory deduplication engine.
 *
 * One engine per host process serves every guest that has dedup on.  A
 * scanner thread walks each guest's RAM (through the guest-memory API only),
 * hashes pages with XXH3-64, finds candidates in a content index, confirms
 * equality byte for byte, and maps identical pages onto one frame of a memfd
 * store, copy-on-write.  A guest's first write to a merged page makes the
 * kernel copy it (the unmerge, no VM exit); the engine learns of it from
 * the dirty log and confirms it in /proc/self/pagemap before it drops the
 * frame reference.  See docs/dedup.md for the protocol and why each race is
 * safe.
 */
#ifndef FOLDVM_DEDUP_H
#define FOLDVM_DEDUP_H

#include <stdbool.h>
#include <stdint.h>
#include "lib/error.h"
#include "lib/syscall_rules.h"
#include "memory/guest_mem.h"

#define DEDUP_DOMAIN_MAX 32

struct dedup_engine;
struct dedup_guest;

struct dedup_config {
	uint64_t rate;            /* pages scanned per second; 0 = no limit */
	unsigned cpu_pct;         /* scanner CPU share cap 1..100; 0 = no cap */
	uint64_t vma_budget;      /* VMAs merges may add; 0 = from max_map_count */
	uint64_t store_max_bytes; /* size limit of the frame store */
	unsigned pass_interval_ms;/* pause after a pass that found work; it
				     doubles after each that found none, up
				     to idle_interval_max_ms */
	unsigned idle_interval_max_ms; /* longest pause (1000; at most
				     pass_interval_ms means no growth) */
	unsigned volatile_after;  /* dirty passes in a row before backing off */
	unsigned pressure_pct;    /* pause new merges while memory pressure
				     (PSI "some" avg10, lib/memroom.h) is at
				     least this percent; go on below half of
				     it; 0 = never pause */
	bool in_place;            /* guests of a named domain map its home
				     file, so that what they hold at the same
				     address merges in place (docs/dedup.md) */
};

/* Defaults: no rate limit, no CPU cap, automatic VMA budget, 256 GiB
 * sparse store, 100 ms between passes (up to 1 s while passes find
 * nothing), back off after 2 dirty passes, merging in place on, merges
 * paused at 10% memory pressure. */
void dedup_config_defaults(struct dedup_config *cfg);

struct dedup_guest_stats {
	char domain[DEDUP_DOMAIN_MAX + 1];
	uint64_t pages;             /* guest RAM pages */
	uint64_t pages_scanned;     /* page visits, all passes (a pass visits
				       only pages written or still to do) */
	uint64_t pages_hashed;      /* pages hashed (unchanged ones are not) */
	uint64_t pages_merged;      /* pages now sharing a store frame or
				       their home slot */
	uint64_t pages_in_place;    /* of those, pages merged in place: they
				       read their home slot, no mapping of
				       their own */
	uint64_t pages_zero;        /* zero pages now discarded */
	uint64_t frames_referenced; /* distinct store frames it maps */
	uint64_t merge_attempts;    /* pages write-protected and compared */
	uint64_t merges;            /* successful merges, all time */
	uint64_t merges_in_place;   /* of those, merges in place */
	uint64_t merge_races;       /* content changed under write-protect */
	uint64_t unmerges;          /* copy-on-write breaks seen */
	uint64_t volatile_skipped;  /* visits skipped: page keeps changing */
	uint64_t budget_skipped;    /* merges not done: VMA budget */
	uint64_t bytes_saved;       /* (merged + zero) pages less its share of frames */
	uint64_t vmas;              /* VMAs its merges added (kept per merge;
				       counted in /proc/self/maps near the
				       budget and when guests come and go) */
	uint64_t full_passes;
	uint64_t cpu_ns;            /* scanner CPU time spent on this guest */
	uint64_t rate;              /* its own scan-rate cap, pages/s (0 = none) */
	uint64_t unmerge_left;      /* shared pages a dedup_guest_unmerge() has
				       still to copy (0: none under way) */
	uint64_t unmerge_done;      /* pages unmerges on request copied, all time */
	bool unmerging;             /* an unmerge on request is under way */
	/* Pages that lie in a store mapping now (merged onto a frame once),
	 * by what they are: */
	uint64_t store_pages;       /* all of them */
	uint64_t store_content;     /* on a frame of content (not zeros) */
	uint64_t store_same_address;/* of those, content that also sits at the
				       same guest address in another guest of
				       the home (on this frame, or in the
				       home slot): could be merged in place */
	uint64_t store_zero_frame;  /* on the frame of zeros */
	uint64_t store_private;     /* written since: a private copy that
				       lives in the store mapping */
	uint64_t store_private_zero;/* of those, copies that read zeros */
	uint64_t rehomed;           /* pages that left a store mapping for the
				       home mapping again (as a zero page or
				       merged in place), all time */
};

struct dedup_host_stats {
	uint64_t guests;
	uint64_t store_frames;      /* frames holding content */
	uint64_t store_bytes;       /* bytes the store memfd holds (kernel) */
	uint64_t saved_bytes;       /* sum of the guests' bytes_saved */
	uint64_t pages_in_place;    /* sum of the guests' pages_in_place */
	uint64_t vma_budget;        /* VMAs merges may add */
	uint64_t vmas_used;         /* VMAs merges added (see vmas above) */
	uint64_t max_map_count;     /* vm.max_map_count at start */
	bool budget_exhausted;      /* some merge was skipped for the budget */
	uint64_t passes;            /* full passes over all guests */
	uint64_t cpu_ns;            /* scanner + fault thread CPU */
	uint64_t merges, unmerges;
	uint64_t pass_cpu_max_ns;   /* the dearest full pass (the first over new memory) */
	uint64_t pass_cpu_last_ns;  /* the latest full pass */
	/* Memory pressure, as last read (at most once a second, while the
	 * scanner works); hundredths of a percent. */
	bool pressure_known;        /* PSI could be read */
	bool pressure_paused;       /* new merges wait for it to fall */
	bool pressure_cgroup;       /* the cgroup's figures, not the host's */
	uint32_t pressure_some_avg10, pressure_full_avg10;
	unsigned pressure_pct;      /* the threshold (0: never pauses) */
	uint64_t pressure_pauses;   /* times merging paused for it */
};

/* Does the engine merge in place (its config's in_place)?  Fixed for the
 * engine's life: guest RAM is mapped by this before a guest joins. */
bool dedup_in_place(const struct dedup_engine *e);

int dedup_create(struct dedup_engine **out, const struct dedup_config *cfg,
		 struct fv_error *err);
/* Stops the threads; every guest must have been removed. */
void dedup_destroy(struct dedup_engine *e);

/* Start merging a guest's RAM.  domain: full-content merges happen only
 * between guests of the same domain (NULL or "" = its own name); zero pages
 * merge across domains.  The guest memory must stay mapped until
 * dedup_remove_guest() returns. */
int dedup_add_guest(struct dedup_engine *e, struct guest_mem *gm,
		    const char *name, const char *domain,
		    struct dedup_guest **out, struct fv_error *err);

/* For a guest being destroyed (vCPUs stopped, memory about to be
 * unmapped): stop scanning it and drop its references; frames only it used
 * are freed at once.  NOT for switching dedup off on a live guest: a frame
 * it still maps could be punched out under it - use
 * dedup_guest_set_merging(). */
void dedup_remove_guest(struct dedup_engine *e, struct dedup_guest *g);

/* Switch new merges of a live guest off or on.  Off, its merged pages stay
 * shared until it writes them (unmerges are still counted and frames
 * released); nothing new is merged. */
void dedup_guest_set_merging(struct dedup_engine *e, struct dedup_guest *g,
			     bool on);
bool dedup_guest_merging(struct dedup_engine *e, struct dedup_guest *g);

/*
 * Give a live guest a copy of its own of every page it shares (merged,
 * merged in place, or discarded as zeros), as KSM's run=2 does: merging is
 * switched off for it (dedup_guest_set_merging), then the scanner copies
 * the pages in runs, at most `rate` pages a second (0: no limit), before
 * it scans anything else; progress is in the guest's statistics
 * (unmerging, unmerge_left).  It needs up to (pages_merged + pages_zero)
 * x 4 KiB more memory: the caller checks that there is that much first.
 * Returns the pages to copy.
 */
uint64_t dedup_guest_unmerge(struct dedup_engine *e, struct dedup_guest *g,
			     uint64_t rate);

void dedup_get_guest_stats(struct dedup_engine *e, struct dedup_guest *g,
			   struct dedup_guest_stats *out);
void dedup_get_host_stats(struct dedup_engine *e, struct dedup_host_stats *out);

/* Wait until `n` more full passes have completed; 0 on success, -1 on
 * timeout (timeout_ms < 0: no timeout). */
int dedup_wait_passes(struct dedup_engine *e, unsigned n, int timeout_ms);

enum dedup_page_state {
	DEDUP_PAGE_PRIVATE = 0, /* the guest's own page */
	DEDUP_PAGE_MERGED = 1,  /* maps a store frame, copy-on-write */
	DEDUP_PAGE_ZERO = 2,    /* discarded zero page */
};

/* What the engine believes about one guest page (tests, diagnostics). */
enum dedup_page_state dedup_page_state(struct dedup_engine *e,
				       struct dedup_guest *g, uint64_t gfn);

/* What an event callback is told, besides that a pass ended. */
enum dedup_event_flags {
	DEDUP_EVENT_BUDGET = 1 << 0,   /* the VMA budget binds (first time) */
	DEDUP_EVENT_PRESSURE = 1 << 1, /* merging paused or resumed for memory
					  pressure (st->pressure_paused) */
};

/* Called on the scanner thread (engine lock not held) after every full
 * pass, and when the VMA budget first binds or memory pressure pauses or
 * resumes merging (events: enum dedup_event_flags).
 * dedup_set_event_callback() returns only once no call of the previous
 * callback is running, so its opaque may be freed then; it must not be
 * called from inside the callback. */
typedef void (*dedup_event_fn)(void *opaque, const struct dedup_host_stats *st,
			       unsigned events);
void dedup_set_event_callback(struct dedup_engine *e, dedup_event_fn fn,
			      void *opaque);

/* Change the scan rate (pages/s, 0 = no limit) and CPU cap (0..100) of a
 * running engine. */
void dedup_set_limits(struct dedup_engine *e, uint64_t rate, unsigned cpu_pct);
void dedup_get_limits(struct dedup_engine *e, uint64_t *rate, unsigned *cpu_pct);

/* Cap the scan of one guest at `rate` pages/s (0 = only the host-wide
 * limit applies); the stricter of the two limits wins. */
void dedup_guest_set_rate(struct dedup_engine *e, struct dedup_guest *g,
			  uint64_t rate);

/* Hold the scanner (paused true) or let it go; a pass in progress
 * finishes its current chunk first.  Engines start running. */
void dedup_set_paused(struct dedup_engine *e, bool paused);

/* The most any full-page dedup could save on these guests now (census of
 * their pages; see ideal.c).  domains[i]: the trust domain of gms[i], any
 * number equal for guests of one domain. */
struct dedup_ideal {
	uint64_t pages;          /* guest pages looked at */
	uint64_t zero_pages;     /* zero pages that take memory */
	uint64_t nonzero_pages;
	uint64_t distinct;       /* distinct non-zero contents (per domain) */
	uint64_t ideal_bytes;
};
int dedup_ideal(struct guest_mem *const *gms, const uint32_t *domains,
		unsigned n, struct dedup_ideal *out, struct fv_error *err);

/* Pure helpers, exposed for unit tests. */
/* VMAs a merge of gfn onto frame adds, given whether its neighbours are
 * merged onto the neighbouring frames: 2 scattered, 1 extending a run, 0
 * joining two runs. */
int dedup_vma_delta(bool left_run, bool right_run);
/* May a merge that adds `delta` VMAs go ahead? */
bool dedup_budget_allows(uint64_t used, uint64_t budget, int delta);
/* Volatility: passes to skip a page that was dirty `heat` passes running. */
unsigned dedup_backoff_passes(unsigned heat, unsigned volatile_after);
/* The sleep after a pass: `base` ms after one that visited a page, then
 * doubling with each idle pass in a row, at most `max` ms. */
unsigned dedup_idle_interval_ms(unsigned base, unsigned idle_passes, unsigned max);
/* Memory pressure hysteresis: paused now, given the last state and the
 * "some" avg10 in hundredths of a percent; pct 0 never pauses. */
bool dedup_pressure_pauses(bool paused, uint32_t some_avg10, unsigned pct);
/* Is a recount of the VMAs worth its cost?  Only when guests came or
 * went, or when merges that cost VMAs were made since the last one and the
 * books are within an eighth of the budget (or 1,000 VMAs) of binding. */
bool dedup_recount_wanted(bool due, uint64_t merges_since, uint64_t used,
			  uint64_t budget);

/* What the engine needs of a sandboxed worker beyond its base list, each
 * table beside its code (store.c, fault.c); composed by
 * supervisor/sandbox.c (docs/sandbox.md). */
extern const struct syscall_rules dedup_store_syscalls;
extern const struct syscall_rules dedup_fault_syscalls;

#endif
