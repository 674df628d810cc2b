/*
 * engine_internal.h - what the files of the dedup engine share; nothing
 * outside dedup/ includes it (the engine's API is dedup.h).
 *
 *   engine.c  lifecycle, guests, settings (DOC: Overview)
 *   scan.c    the scanner thread, its pacing, unmerge accounting,
 *             unmerging on request, memory pressure
 *   merge.c   frames, candidates, the merge protocol
 *   pages.c   a guest by id, a page's entry, the next pass's todo list
 *   stats.c   statistics, and the events that carry them
 *   budget.c  the VMA budget and its recount from /proc/self/maps
 *   fault.c   the userfaultfd and its fault thread
 *
 * Calls go one way: engine.c -> scan.c -> merge.c -> pages.c (engine.c
 * and scan.c call pages.c and merge.c too); stats.c, budget.c and fault.c
 * are called from above and call only pages.c or nothing of the engine.
 *
 * Locking: every field below is guarded by e->lock unless it says
 * otherwise; every function declared here expects e->lock held unless it
 * says otherwise.
 */
#ifndef FOLDVM_DEDUP_ENGINE_INTERNAL_H
#define FOLDVM_DEDUP_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "dedup/dedup.h"
#include "dedup/index.h"
#include "dedup/store.h"
#include "lib/memroom.h"
#include "lib/procstat.h"

#define PAGE 4096ull
#define CHUNK_PAGES 512            /* pages per lock hold */
#define VMA_HEADROOM 2000          /* VMAs left for the rest of the process */
#define VMA_RECOUNT_NS 250000000ull /* recount VMAs at most this often */
#define RECOUNT_COST_SHARE 10      /* ... and at most 1/10 of the time */
#define UNPARK_MIN_ROOM 256        /* room a recount must find to unpark */
#define HEAT_MAX 12
#define ZERO_DOMAIN 0              /* zero content merges across domains */
#define MAX_DOMAINS 256
#define ERROR_REPORT_NS 10000000000ull /* merge errors: one report per 10 s */
#define PRESSURE_READ_NS 1000000000ull /* PSI read at most once a second */

enum page_flags {
	PG_HASHED = 1 << 0,    /* hash is the content's, as of the last clean visit */
	PG_MERGED = 1 << 1,    /* maps frame `frame`, copy-on-write */
	PG_ZERO = 1 << 2,      /* discarded: reads the zero page */
	PG_CANDIDATE = 1 << 3, /* in the candidate index under `hash` */
	PG_FILEVMA = 1 << 4,   /* lies in a store mapping (was merged once) */
	PG_UNTOUCHED = 1 << 5, /* zero, never written: the kernel's zero page */
	PG_HOME = 1 << 6,      /* reads its home slot (merged in place), copy-on-write */
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
	uint64_t nwords;           /* 64-page words of the bitmaps below */
	uint64_t *dirty;           /* this pass's dirty bitmap */
	uint64_t *todo;            /* pages the next pass visits although the
				      dirty log may not name them (scan.c) */
	uint64_t *parked;          /* pages refused for the VMA budget: back to
				      todo when a recount finds room */
	bool paused_merging;       /* dedup switched off: only unmerges tracked */
	uint64_t rate;             /* its own scan-rate cap, pages/s (0 = none) */
	bool unmerging;            /* dedup_guest_unmerge(): copying its */
	uint64_t unmerge_next;     /* shared pages from this gfn on, */
	uint64_t unmerge_rate;     /* at most this many a second (0: no cap) */
	bool error_reported;       /* merge errors: one was reported, */
	uint64_t error_reported_ns;/* at this time; */
	uint64_t errors_hidden;    /* how many were not since */
	uint64_t vmas_seen;        /* VMAs in its range: valid during a recount */
	struct dedup_guest_stats st;
	struct dedup_guest_stats derived; /* guest_derived_stats' last result, */
	uint64_t derived_gen;      /* as of this merges + unmerges +
				      guests_removed + 1 (0: none yet) */
	struct dedup_guest *next;
};

struct dedup_engine {
	struct dedup_config cfg;
	pthread_mutex_t lock;
	pthread_cond_t cond;       /* on CLOCK_MONOTONIC */
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
	int fault_stop_fd;         /* eventfd: wakes the fault thread to stop */
	struct procstat_pagemap pagemap;
	pthread_t scanner, faulter;
	bool running;              /* stored atomically: the fault thread
				      reads it without the lock */
	bool paused;
	bool threads_started;
	uint64_t vma_budget, vmas_used, max_map_count;
	uint64_t vma_calibrated_ns;  /* when vmas_used was last counted */
	uint64_t vma_charges;        /* merges that were charged VMAs */
	uint64_t charges_at_recount; /* vma_charges at the last recount */
	uint64_t recount_cost_ns;    /* what the last recount took */
	bool recount_due;            /* guests came or went since */
	bool budget_exhausted;
	uint64_t passes, merges, unmerges;
	uint64_t guests_removed;   /* with merges and unmerges: what changes
				      the derived statistics (stats.c) */
	unsigned idle_passes;      /* passes in a row that visited no page */
	bool kick;                 /* end the scanner's pause now (new work) */
	uint64_t scanner_cpu_ns;
	uint64_t fault_cpu_ns;     /* atomic: the fault thread adds without the lock */
	uint64_t pass_cpu_max_ns, pass_cpu_last_ns;
	dedup_event_fn event_fn;
	void *event_opaque;
	bool event_running;        /* event_fn is being called (no lock held) */
	bool budget_reported;      /* the budget event went out */
	struct mem_pressure pressure; /* as last read */
	bool pressure_known, pressure_paused, pressure_changed;
	bool pressure_error_reported;
	uint64_t pressure_read_ns; /* when it was last read */
	uint64_t pressure_pauses;
	uint8_t zero_page[PAGE] __attribute__((aligned(64)));
};

/* ---- pages.c ---- */

struct dedup_guest *guest_by_id(struct dedup_engine *e, uint32_t id);
/* What the kernel's page table says about a guest page ("not present"
 * when pagemap cannot be read). */
void guest_page_entry(struct dedup_engine *e, struct dedup_guest *g,
		      uint64_t gfn, struct procstat_page *out);
/* The next pass visits this page (and not just when the dirty log says). */
void page_requeue(struct dedup_guest *g, uint64_t gfn);
/* Every page of the guest, e.g. when merging is switched back on. */
void guest_requeue_all(struct dedup_guest *g);

/* ---- stats.c ---- */

/* The counts derived from a guest's page states (cached until a page or
 * a frame changes). */
void guest_derived_stats(struct dedup_engine *e, struct dedup_guest *g,
			 struct dedup_guest_stats *st);
/* Tell the owner a pass ended; called without e->lock. */
void engine_notify(struct dedup_engine *e);

/* ---- merge.c ---- */

enum merge_result { MERGE_DONE, MERGE_DIFFERENT, MERGE_NO_BUDGET, MERGE_ERROR };

/* The target of a merge in place, the page's home slot, where a frame
 * number goes (merge.c). */
#define FRAME_HOME (STORE_NO_FRAME - 1)
/* The same two for a page that lies in a store mapping: back to the home
 * mapping, reading its slot (FRAME_REHOME) or the zero page
 * (FRAME_REHOME_ZERO), and the store mapping's VMAs go. */
#define FRAME_REHOME (STORE_NO_FRAME - 2)
#define FRAME_REHOME_ZERO (STORE_NO_FRAME - 3)

void frame_put(struct dedup_engine *e, uint32_t f);
void cand_remove(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn);
void merge_report_error(struct dedup_guest *g, const struct fv_error *err);
/* The step every merge shares: protect, compare with frame f (with zeros
 * when f is STORE_NO_FRAME), then map f (discard) or release; merges in
 * place take the same steps (merge.c, merge_onto).  merge.c argues why no
 * write is lost. */
enum merge_result merge_protected(struct dedup_engine *e, struct dedup_guest *g,
				  uint64_t gfn, uint32_t f);
/* Merge a hashed, unmerged page (content `page`) the best way there is:
 * as a zero page, in place (onto its home slot, alone or with a twin at
 * the same address), onto a frame with its content, with a twin onto a
 * fresh frame; or leave it a candidate. */
void merge_try(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn,
	       const uint8_t *page);

/* ---- scan.c ---- */

void *scanner_thread(void *arg);     /* takes e->lock itself */
/* Are new merges held back for memory pressure (read at most once a
 * second)?  Between chunks. */
bool pressure_holds(struct dedup_engine *e);

/* ---- budget.c ---- */

int budget_init(struct dedup_engine *e, struct fv_error *err);
void budget_recount(struct dedup_engine *e);
void budget_maybe_recount(struct dedup_engine *e);  /* between chunks */
void budget_pass_end(struct dedup_engine *e);       /* after each pass */
int budget_merge_delta(struct dedup_guest *g, uint64_t gfn, uint32_t f);
/* Room for a merge of page gfn adding `delta` VMAs?  A page refused is
 * parked until a recount finds room. */
bool budget_room(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn,
		 int delta);
void budget_charge(struct dedup_engine *e, struct dedup_guest *g, int delta);
void budget_hit_limit(struct dedup_engine *e, struct dedup_guest *g, uint64_t gfn);

/* ---- fault.c ---- */

int fault_open_uffd(struct dedup_engine *e, struct fv_error *err);
void *fault_thread(void *arg);       /* takes e->lock itself */
/* Wake the fault thread after e->running went false (no lock needed). */
void fault_stop(struct dedup_engine *e);

#endif
