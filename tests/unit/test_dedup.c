/* test_dedup.c - the engine's pure logic: frame store refcounting, the VMA
 * budget, the volatility back-off; and, with userfaultfd (root), the
 * scanner on guest memory mapped without KVM. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <CUnit/CUnit.h>
#include "dedup/census.h"
#include "dedup/dedup.h"
#include "dedup/engine_internal.h"
#include "dedup/store.h"
#include "lib/procstat.h"
#include "tests/unit/unit.h"

static uint8_t page_a[4096], page_b[4096];

static void test_store_refcount_and_punch(void)
{
	struct dedup_store s;
	struct fv_error err;
	uint32_t f, g;

	memset(page_a, 0xa5, sizeof(page_a));
	memset(page_b, 0x5b, sizeof(page_b));
	CU_ASSERT_EQUAL_FATAL(store_init(&s, 1024, &err), 0);
	CU_ASSERT_EQUAL(store_resident_bytes(&s), 0);
	f = store_alloc(&s, page_a, STORE_NO_FRAME);
	g = store_alloc(&s, page_b, STORE_NO_FRAME);
	CU_ASSERT_NOT_EQUAL(f, g);
	CU_ASSERT_EQUAL(memcmp(store_frame(&s, f), page_a, 4096), 0);
	CU_ASSERT_EQUAL(memcmp(store_frame(&s, g), page_b, 4096), 0);
	CU_ASSERT_EQUAL(s.used, 2);
	CU_ASSERT_EQUAL(store_resident_bytes(&s), 2 * 4096);
	store_get(&s, f);
	store_get(&s, f);
	store_get(&s, g);
	store_put(&s, f);
	CU_ASSERT_EQUAL(s.refs[f], 1);
	CU_ASSERT_EQUAL(s.used, 2);
	/* the last reference frees the frame and punches its memory out */
	store_put(&s, f);
	CU_ASSERT_EQUAL(s.refs[f], 0);
	CU_ASSERT_EQUAL(s.used, 1);
	CU_ASSERT_EQUAL(store_resident_bytes(&s), 4096);
	/* an extra put never underflows or double-frees */
	store_put(&s, f);
	CU_ASSERT_EQUAL(s.used, 1);
	CU_ASSERT_EQUAL(s.nr_free, 1);
	/* a freed frame is reused, with new content */
	CU_ASSERT_EQUAL(store_alloc(&s, page_b, STORE_NO_FRAME), f);
	CU_ASSERT_EQUAL(memcmp(store_frame(&s, f), page_b, 4096), 0);
	/* discard of an unreferenced frame frees it; of a referenced one, not */
	store_discard(&s, f);
	CU_ASSERT_EQUAL(s.used, 1);
	store_discard(&s, g);
	CU_ASSERT_EQUAL(s.used, 1);
	store_destroy(&s);
}

static void test_store_hint_and_full(void)
{
	struct dedup_store s;
	struct fv_error err;
	uint32_t f0, f1;

	CU_ASSERT_EQUAL_FATAL(store_init(&s, 4, &err), 0);
	f0 = store_alloc(&s, page_a, STORE_NO_FRAME);
	/* consecutive guest pages get consecutive frames when hinted */
	f1 = store_alloc(&s, page_a, f0 + 1);
	CU_ASSERT_EQUAL(f1, f0 + 1);
	/* a hint that is in use is ignored */
	store_get(&s, f0);
	CU_ASSERT_NOT_EQUAL(store_alloc(&s, page_a, f0), f0);
	CU_ASSERT_NOT_EQUAL(store_alloc(&s, page_a, STORE_NO_FRAME), STORE_NO_FRAME);
	/* four frames: the fifth allocation fails cleanly */
	CU_ASSERT_EQUAL(store_alloc(&s, page_a, STORE_NO_FRAME), STORE_NO_FRAME);
	store_destroy(&s);
	CU_ASSERT_EQUAL(store_init(&s, 0, &err), -1);
}

static void test_vma_delta(void)
{
	CU_ASSERT_EQUAL(dedup_vma_delta(false, false), 2);
	CU_ASSERT_EQUAL(dedup_vma_delta(true, false), 1);
	CU_ASSERT_EQUAL(dedup_vma_delta(false, true), 1);
	CU_ASSERT_EQUAL(dedup_vma_delta(true, true), -1);
}

static void test_budget(void)
{
	CU_ASSERT_TRUE(dedup_budget_allows(0, 10, 2));
	CU_ASSERT_TRUE(dedup_budget_allows(8, 10, 2));
	CU_ASSERT_FALSE(dedup_budget_allows(9, 10, 2));
	CU_ASSERT_FALSE(dedup_budget_allows(10, 10, 1));
	/* merges that add no VMA (zero pages, joining runs) always may go */
	CU_ASSERT_TRUE(dedup_budget_allows(10, 10, 0));
	CU_ASSERT_TRUE(dedup_budget_allows(10, 10, -1));
	CU_ASSERT_TRUE(dedup_budget_allows(12, 10, 0));
	CU_ASSERT_FALSE(dedup_budget_allows(0, 0, 1));
}

static void test_backoff(void)
{
	/* below the threshold nothing is skipped */
	CU_ASSERT_EQUAL(dedup_backoff_passes(0, 2), 0);
	CU_ASSERT_EQUAL(dedup_backoff_passes(1, 2), 0);
	/* then exponential, capped */
	CU_ASSERT_EQUAL(dedup_backoff_passes(2, 2), 1);
	CU_ASSERT_EQUAL(dedup_backoff_passes(3, 2), 2);
	CU_ASSERT_EQUAL(dedup_backoff_passes(4, 2), 4);
	CU_ASSERT_EQUAL(dedup_backoff_passes(8, 2), 64);
	CU_ASSERT_EQUAL(dedup_backoff_passes(200, 2), 64);
	CU_ASSERT_EQUAL(dedup_backoff_passes(1, 1), 1);
}

static void test_idle_interval(void)
{
	/* after a pass that did work: the configured interval */
	CU_ASSERT_EQUAL(dedup_idle_interval_ms(100, 0, 1000), 100);
	/* then doubling with each idle pass, capped */
	CU_ASSERT_EQUAL(dedup_idle_interval_ms(100, 1, 1000), 200);
	CU_ASSERT_EQUAL(dedup_idle_interval_ms(100, 3, 1000), 800);
	CU_ASSERT_EQUAL(dedup_idle_interval_ms(100, 4, 1000), 1000);
	CU_ASSERT_EQUAL(dedup_idle_interval_ms(100, 4000000000u, 1000), 1000);
	/* an interval at or above the cap is kept: no growth */
	CU_ASSERT_EQUAL(dedup_idle_interval_ms(2000, 5, 1000), 2000);
	CU_ASSERT_EQUAL(dedup_idle_interval_ms(10, 5, 0), 10);
	/* no pause after work stays no pause; idle, it grows from 1 ms */
	CU_ASSERT_EQUAL(dedup_idle_interval_ms(0, 0, 1000), 0);
	CU_ASSERT_EQUAL(dedup_idle_interval_ms(0, 1, 1000), 2);
	CU_ASSERT_EQUAL(dedup_idle_interval_ms(0, 20, 1000), 1000);
}

static void test_pressure_hysteresis(void)
{
	/* 10%: pause at 10.00, not at 9.99 */
	CU_ASSERT_FALSE(dedup_pressure_pauses(false, 999, 10));
	CU_ASSERT_TRUE(dedup_pressure_pauses(false, 1000, 10));
	/* paused: stays paused down to 5.00, goes on below it */
	CU_ASSERT_TRUE(dedup_pressure_pauses(true, 700, 10));
	CU_ASSERT_TRUE(dedup_pressure_pauses(true, 500, 10));
	CU_ASSERT_FALSE(dedup_pressure_pauses(true, 499, 10));
	/* 0: never, however high */
	CU_ASSERT_FALSE(dedup_pressure_pauses(false, 10000, 0));
	CU_ASSERT_FALSE(dedup_pressure_pauses(true, 10000, 0));
	/* 100: only a full stall pauses */
	CU_ASSERT_FALSE(dedup_pressure_pauses(false, 9999, 100));
	CU_ASSERT_TRUE(dedup_pressure_pauses(false, 10000, 100));
}

static void test_recount_wanted(void)
{
	/* guests came or went: always */
	CU_ASSERT_TRUE(dedup_recount_wanted(true, 0, 0, 60000));
	/* no merge since the last count: the books are the count */
	CU_ASSERT_FALSE(dedup_recount_wanted(false, 0, 59999, 60000));
	/* merges, far from the budget: the books are enough */
	CU_ASSERT_FALSE(dedup_recount_wanted(false, 500, 10000, 60000));
	/* merges within an eighth of the budget: count */
	CU_ASSERT_TRUE(dedup_recount_wanted(false, 1, 52500, 60000));
	CU_ASSERT_FALSE(dedup_recount_wanted(false, 1, 52499, 60000));
	/* small budgets get a margin of 1,000 */
	CU_ASSERT_TRUE(dedup_recount_wanted(false, 1, 0, 1000));
	CU_ASSERT_FALSE(dedup_recount_wanted(false, 1, 8749, 10000));
	CU_ASSERT_TRUE(dedup_recount_wanted(false, 1, 8750, 10000));
}

static void test_config_defaults(void)
{
	struct dedup_config c;

	dedup_config_defaults(&c);
	CU_ASSERT_EQUAL(c.rate, 0);
	CU_ASSERT_EQUAL(c.cpu_pct, 0);
	CU_ASSERT_EQUAL(c.vma_budget, 0);
	CU_ASSERT(c.store_max_bytes >= (64ull << 30));
	CU_ASSERT(c.volatile_after >= 1);
	CU_ASSERT(c.idle_interval_max_ms >= c.pass_interval_ms);
	CU_ASSERT_EQUAL(c.pressure_pct, 10);
}

#define GUEST_MEM (16ull << 20) /* 4096 pages: 8 chunks of the scanner */

/* An engine scanning `rate` pages/s, or NULL: skipped without root (the
 * engine needs userfaultfd), failed with it. */
static struct dedup_engine *test_engine(uint64_t rate, const char *test)
{
	struct dedup_engine *e;
	struct dedup_config cfg;
	struct fv_error err;

	dedup_config_defaults(&cfg);
	cfg.pressure_pct = 0;   /* host pressure must not pause what is counted */
	cfg.rate = rate;
	cfg.pass_interval_ms = 10;
	cfg.store_max_bytes = 64ull << 20;
	if (dedup_create(&e, &cfg, &err) == 0)
		return e;
	if (geteuid() != 0)
		fprintf(stderr, "\n  SKIP %s: %s ", test, err.msg);
	else
		CU_FAIL(err.msg);
	return NULL;
}

/*
 * The scanner drops its lock between chunks of a guest.  A guest removed
 * then ends its pass, even when the guest added meanwhile has its address
 * (an allocator may hand the freed block back; glibc 2.36's calloc happens
 * not to, ASan never does): a guest added during a pass waits for the
 * next one, so its passes are whole - none counted that began in the
 * middle of its memory.
 */
static void test_scan_guest_replaced(void)
{
	struct guest_mem gm_a, gm_b;
	struct dedup_guest *a, *b;
	struct dedup_guest_stats st;
	struct dedup_engine *e;
	struct fv_error err;

	/* 512 pages/s: after each chunk of 512 pages the scanner sleeps ~1 s */
	e = test_engine(512, "scanner with a replaced guest");
	if (!e)
		return;
	CU_ASSERT_EQUAL_FATAL(gmem_create(&gm_a, -1, GUEST_MEM, &err), 0);
	CU_ASSERT_EQUAL_FATAL(gmem_create(&gm_b, -1, GUEST_MEM, &err), 0);
	CU_ASSERT_EQUAL_FATAL(dedup_add_guest(e, &gm_a, "a", NULL, &a, &err), 0);
	for (int i = 0; i < 60000; i++) {
		dedup_get_guest_stats(e, a, &st);
		if (st.pages_scanned)
			break;
		usleep(1000);
	}
	CU_ASSERT_FATAL(st.pages_scanned > 0);
	/* the scanner sleeps between two chunks of a: it stays there */
	dedup_set_paused(e, true);
	dedup_remove_guest(e, a);
	CU_ASSERT_EQUAL_FATAL(dedup_add_guest(e, &gm_b, "b", NULL, &b, &err), 0);
	dedup_set_limits(e, 0, 0);
	dedup_set_paused(e, false);
	CU_ASSERT_EQUAL(dedup_wait_passes(e, 1, 60000), 0);
	dedup_get_guest_stats(e, b, &st);
	CU_ASSERT(st.full_passes >= 1);
	/* its first pass, whole, visits every page (later ones only what
	 * was written or is still to do) */
	CU_ASSERT(st.pages_scanned >= st.pages);
	dedup_remove_guest(e, b);
	dedup_destroy(e);
	gmem_destroy(&gm_a);
	gmem_destroy(&gm_b);
}

/* Merge errors are reported per guest: one guest's error does not silence
 * another's.  Here each guest's dirty log fails on every pass. */
static void test_errors_per_guest(void)
{
	static const char *const names[2] = { "err-a", "err-b" };
	struct guest_mem gm[2];
	struct dedup_guest *g[2];
	struct dedup_engine *e;
	struct fv_error err;
	char text[8192], want[64];
	FILE *log = tmpfile();
	int saved, not_a_vm = open("/dev/null", O_RDONLY | O_CLOEXEC);
	size_t n;

	CU_ASSERT_FATAL(log && not_a_vm >= 0);
	e = test_engine(0, "merge errors per guest");
	if (!e)
		goto out;
	/* paused before the first guest: no pass sees them until released */
	dedup_set_paused(e, true);
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL_FATAL(gmem_create(&gm[i], -1, GUEST_MEM, &err), 0);
		CU_ASSERT_EQUAL_FATAL(dedup_add_guest(e, &gm[i], names[i], NULL,
						      &g[i], &err), 0);
		gm[i].vm_fd = not_a_vm;
		gm[i].dirty_log = true;
	}
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fileno(log), STDERR_FILENO);
	dedup_set_paused(e, false);
	CU_ASSERT_EQUAL(dedup_wait_passes(e, 2, 60000), 0);
	dedup_set_paused(e, true);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(log);
	n = fread(text, 1, sizeof(text) - 1, log);
	text[n] = '\0';
	for (int i = 0; i < 2; i++) {
		snprintf(want, sizeof(want), "guest %s: KVM_GET_DIRTY_LOG", names[i]);
		CU_ASSERT_PTR_NOT_NULL(strstr(text, want));
		dedup_remove_guest(e, g[i]);
		gm[i].vm_fd = -1;
		gm[i].dirty_log = false;
		gmem_destroy(&gm[i]);
	}
	dedup_destroy(e);
out:
	close(not_a_vm);
	fclose(log);
}

/*
 * The one step every merge shares (merge_protected): with the page
 * write-protected, an equal page is replaced - mapped onto the frame, or
 * discarded for zero content - and a different one is left as it was.
 * Driven directly, the scanner paused, on guest memory without KVM.
 */
static void test_merge_protected(void)
{
	enum { SAME = 3, OTHER = 5, ZERO = 7, NONZERO = 8 };
	static uint8_t zeros[4096];
	struct procstat_page pg;
	struct guest_mem gm;
	struct dedup_guest *g;
	struct dedup_engine *e;
	struct fv_error err;
	uint32_t f;

	e = test_engine(0, "merge protected");
	if (!e)
		return;
	dedup_set_paused(e, true);
	memset(page_a, 0xa5, sizeof(page_a));
	memset(page_b, 0x5b, sizeof(page_b));
	CU_ASSERT_EQUAL_FATAL(gmem_create(&gm, -1, GUEST_MEM, &err), 0);
	CU_ASSERT_EQUAL_FATAL(dedup_add_guest(e, &gm, "mp", NULL, &g, &err), 0);
	CU_ASSERT_EQUAL_FATAL(gmem_write(&gm, SAME * 4096ull, page_a, 4096, &err), 0);
	CU_ASSERT_EQUAL_FATAL(gmem_write(&gm, OTHER * 4096ull, page_b, 4096, &err), 0);
	CU_ASSERT_EQUAL_FATAL(gmem_write(&gm, ZERO * 4096ull, zeros, 4096, &err), 0);
	CU_ASSERT_EQUAL_FATAL(gmem_write(&gm, NONZERO * 4096ull, page_b, 4096, &err), 0);
	pthread_mutex_lock(&e->lock);
	f = store_alloc(&e->store, page_a, STORE_NO_FRAME);
	CU_ASSERT_FATAL(f != STORE_NO_FRAME);
	g->pages[OTHER].flags = PG_HASHED;
	g->pages[NONZERO].flags = PG_HASHED;

	/* equal: the page now reads the frame, from the file */
	CU_ASSERT_EQUAL(merge_protected(e, g, SAME, f), MERGE_DONE);
	CU_ASSERT_EQUAL(memcmp(gmem_page_view(&gm, SAME), page_a, 4096), 0);
	guest_page_entry(e, g, SAME, &pg);
	CU_ASSERT_TRUE(pg.present);
	CU_ASSERT_TRUE(pg.file);
	/* different: untouched, its hash no longer trusted */
	CU_ASSERT_EQUAL(merge_protected(e, g, OTHER, f), MERGE_DIFFERENT);
	CU_ASSERT_EQUAL(memcmp(gmem_page_view(&gm, OTHER), page_b, 4096), 0);
	CU_ASSERT_FALSE(g->pages[OTHER].flags & PG_HASHED);
	/* zero content: discarded, no page behind it any more */
	CU_ASSERT_EQUAL(merge_protected(e, g, ZERO, STORE_NO_FRAME), MERGE_DONE);
	guest_page_entry(e, g, ZERO, &pg);
	CU_ASSERT_FALSE(pg.present);
	CU_ASSERT_EQUAL(memcmp(gmem_page_view(&gm, ZERO), zeros, 4096), 0);
	CU_ASSERT_EQUAL(merge_protected(e, g, NONZERO, STORE_NO_FRAME), MERGE_DIFFERENT);
	CU_ASSERT_EQUAL(memcmp(gmem_page_view(&gm, NONZERO), page_b, 4096), 0);
	CU_ASSERT_FALSE(g->pages[NONZERO].flags & PG_HASHED);
	CU_ASSERT_EQUAL(g->st.merge_attempts, 4);
	CU_ASSERT_EQUAL(g->st.merges, 2);
	CU_ASSERT_EQUAL(g->st.merge_races, 2);
	pthread_mutex_unlock(&e->lock);

	/* Nothing is left protected: writes go through (a protected page
	 * would wait for the fault thread), and a write to the merged page
	 * lands in a private copy, never in the frame. */
	CU_ASSERT_EQUAL(gmem_write(&gm, SAME * 4096ull, page_b, 4096, &err), 0);
	CU_ASSERT_EQUAL(gmem_write(&gm, OTHER * 4096ull, page_a, 4096, &err), 0);
	CU_ASSERT_EQUAL(gmem_write(&gm, ZERO * 4096ull, page_a, 4096, &err), 0);
	CU_ASSERT_EQUAL(memcmp(gmem_page_view(&gm, SAME), page_b, 4096), 0);
	pthread_mutex_lock(&e->lock);
	CU_ASSERT_EQUAL(memcmp(store_frame(&e->store, f), page_a, 4096), 0);
	guest_page_entry(e, g, SAME, &pg);
	CU_ASSERT_TRUE(pg.present);
	CU_ASSERT_FALSE(pg.file);
	store_discard(&e->store, f);
	pthread_mutex_unlock(&e->lock);
	dedup_remove_guest(e, g);
	dedup_destroy(e);
	gmem_destroy(&gm);
}

/* Page gfn of a test guest holds content `n`: n == 0 is zeros, else
 * the page is filled with the 64-bit value n. */
static void put_content(struct guest_mem *gm, uint64_t gfn, uint64_t n)
{
	uint64_t buf[512];
	struct fv_error err;

	for (int i = 0; i < 512; i++)
		buf[i] = n;
	CU_ASSERT_EQUAL(gmem_write(gm, gfn * 4096ull, buf, sizeof(buf), &err), 0);
}

/* Wait (a hang bound, not a timing assumption) until the scanner visits
 * no page over `passes` passes in a row; returns its visits then. */
static uint64_t wait_idle(struct dedup_engine *e, struct dedup_guest *g, unsigned passes)
{
	struct dedup_guest_stats st;
	uint64_t before = UINT64_MAX;

	for (int i = 0; i < 600; i++) {
		CU_ASSERT_EQUAL_FATAL(dedup_wait_passes(e, passes, 60000), 0);
		dedup_get_guest_stats(e, g, &st);
		if (st.pages_scanned == before)
			return before;
		before = st.pages_scanned;
	}
	CU_FAIL("the scanner never went idle");
	return before;
}

#define IDLE_PAGES 512  /* written pages of the idle tests' guest */

/* Half of the guest's first IDLE_PAGES pages are pairs (page 2k and 2k+1
 * hold the same content), the rest unique: after convergence, merged
 * frames and candidates that never find a twin. */
static void fill_pairs_and_uniques(struct guest_mem *gm)
{
	for (uint64_t gfn = 0; gfn < IDLE_PAGES; gfn++)
		put_content(gm, gfn, gfn < IDLE_PAGES / 2 ? 1000 + gfn / 2 : 5000 + gfn);
}

/*
 * Once converged, an idle guest costs passes nothing: no page is visited
 * (the dirty log is empty and nothing is left to do), candidates included.
 * A write made while the scanner rests - six idle passes have stretched its
 * pause, and nobody wakes it - is still seen: its twin is merged.
 */
static void test_idle_passes_visit_nothing(void)
{
	struct guest_mem gm;
	struct dedup_guest *g;
	struct dedup_guest_stats st;
	struct dedup_host_stats hs;
	struct dedup_engine *e;
	struct fv_error err;
	uint64_t scanned, passes;
	bool merged = false;

	e = test_engine(0, "idle passes visit nothing");
	if (!e)
		return;
	CU_ASSERT_EQUAL_FATAL(gmem_create(&gm, -1, GUEST_MEM, &err), 0);
	fill_pairs_and_uniques(&gm);
	CU_ASSERT_EQUAL_FATAL(dedup_add_guest(e, &gm, "idle", NULL, &g, &err), 0);
	scanned = wait_idle(e, g, 2);
	dedup_get_guest_stats(e, g, &st);
	CU_ASSERT_EQUAL(st.pages_merged, IDLE_PAGES / 2);
	/* every page was visited: once, and once more as its heat from the
	 * writes before the first pass cooled down */
	CU_ASSERT(scanned >= st.pages);
	CU_ASSERT(scanned <= 2 * st.pages);
	/* more passes, still no visit */
	CU_ASSERT_EQUAL(dedup_wait_passes(e, 3, 60000), 0);
	dedup_get_guest_stats(e, g, &st);
	CU_ASSERT_EQUAL(st.pages_scanned, scanned);

	/* Let it rest: passes that find nothing space out (the scanner is
	 * not woken again from here on), then write a twin of a unique
	 * page (a candidate) without telling the engine. */
	dedup_get_host_stats(e, &hs);
	passes = hs.passes;
	while (hs.passes < passes + 6) {
		usleep(20000);
		dedup_get_host_stats(e, &hs);
	}
	put_content(&gm, IDLE_PAGES + 7, 5000 + IDLE_PAGES - 1);
	for (int i = 0; i < 6000 && !merged; i++) {  /* hang bound: 60 s */
		merged = dedup_page_state(e, g, IDLE_PAGES + 7) == DEDUP_PAGE_MERGED &&
			 dedup_page_state(e, g, IDLE_PAGES - 1) == DEDUP_PAGE_MERGED;
		if (!merged)
			usleep(10000);
	}
	CU_ASSERT_TRUE(merged);
	dedup_get_guest_stats(e, g, &st);
	/* the pass visited the written page, not the guest */
	CU_ASSERT(st.pages_scanned - scanned < 16);
	dedup_remove_guest(e, g);
	dedup_destroy(e);
	gmem_destroy(&gm);
}

/* A guest whose merges the VMA budget refuses idles as cheaply: the
 * refused pages are parked, not retried on every pass. */
static void test_budget_bound_engine_idles(void)
{
	struct dedup_config cfg;
	struct guest_mem gm;
	struct dedup_guest *g;
	struct dedup_guest_stats st;
	struct dedup_host_stats hs;
	struct dedup_engine *e;
	struct fv_error err;
	uint64_t scanned;

	dedup_config_defaults(&cfg);
	cfg.pressure_pct = 0;   /* host pressure must not pause what is counted */
	cfg.pass_interval_ms = 10;
	cfg.store_max_bytes = 64ull << 20;
	cfg.vma_budget = 8;  /* a handful of scattered merges */
	if (dedup_create(&e, &cfg, &err)) {
		if (geteuid() != 0)
			fprintf(stderr, "\n  SKIP budget-bound engine idles: %s ", err.msg);
		else
			CU_FAIL(err.msg);
		return;
	}
	CU_ASSERT_EQUAL_FATAL(gmem_create(&gm, -1, GUEST_MEM, &err), 0);
	/* pairs far apart: every merge is scattered and costs VMAs */
	for (uint64_t i = 0; i < 64; i++) {
		put_content(&gm, i * 8, 7000 + i);
		put_content(&gm, 2048 + i * 8, 7000 + i);
	}
	CU_ASSERT_EQUAL_FATAL(dedup_add_guest(e, &gm, "bound", NULL, &g, &err), 0);
	scanned = wait_idle(e, g, 2);
	dedup_get_host_stats(e, &hs);
	dedup_get_guest_stats(e, g, &st);
	CU_ASSERT_TRUE(hs.budget_exhausted);
	CU_ASSERT(st.budget_skipped > 0);
	CU_ASSERT(st.pages_merged < 128);
	CU_ASSERT_EQUAL(dedup_wait_passes(e, 3, 60000), 0);
	dedup_get_guest_stats(e, g, &st);
	CU_ASSERT_EQUAL(st.pages_scanned, scanned);
	dedup_remove_guest(e, g);
	dedup_destroy(e);
	gmem_destroy(&gm);
}

/* ---- the census (census.c) on made-up guests ---- */

/* Guests whose pages are tags: 0 is a zero page, any other tag a content
 * of its own (the tag repeated over the page). */
struct tag_guests {
	unsigned n;
	uint64_t npages[3];
	uint32_t domains[3];
	uint32_t *tags[3];
	uint8_t page[4096];
};

static const void *tag_view(void *opaque, unsigned guest, uint64_t gfn)
{
	struct tag_guests *t = opaque;
	uint32_t tag = t->tags[guest][gfn];

	for (unsigned k = 0; k < 4096 / 4; k++)
		memcpy(t->page + 4 * k, &tag, 4);
	return t->page;
}

/* tag_view hands out one buffer: the census compares two pages, so each
 * guest page gets a buffer of its own here. */
struct tag_pages {
	struct tag_guests t;
	uint8_t *mem[3];
};

static const void *tag_pages_view(void *opaque, unsigned guest, uint64_t gfn)
{
	struct tag_pages *p = opaque;

	return p->mem[guest] + gfn * 4096;
}

static void tag_pages_fill(struct tag_pages *p)
{
	for (unsigned i = 0; i < p->t.n; i++) {
		p->mem[i] = malloc(p->t.npages[i] * 4096);
		CU_ASSERT_PTR_NOT_NULL_FATAL(p->mem[i]);
		for (uint64_t g = 0; g < p->t.npages[i]; g++)
			memcpy(p->mem[i] + g * 4096, tag_view(&p->t, i, g), 4096);
	}
}

static void set_tags(uint32_t *tags, uint64_t from, uint64_t count, uint32_t first)
{
	for (uint64_t k = 0; k < count; k++)
		tags[from + k] = first ? first + (uint32_t)k : 0;
}

static void run_census(struct tag_pages *p, struct dedup_census *c)
{
	struct census_src src = {
		.n = p->t.n, .npages = p->t.npages, .domains = p->t.domains,
		.view = tag_pages_view, .opaque = p,
	};
	struct fv_error err = { 0 };
	uint64_t sum;

	tag_pages_fill(p);
	CU_ASSERT_EQUAL_FATAL(dedup_census(&src, c, &err), 0);
	/* The classes add up to the pages, always. */
	sum = c->zero + c->same_address + c->unique;
	for (unsigned r = 0; r < CENSUS_RUNS; r++)
		sum += c->run[r];
	CU_ASSERT_EQUAL(sum, c->pages);
	for (unsigned i = 0; i < p->t.n; i++)
		free(p->mem[i]);
}

static void test_census_classes(void)
{
	static uint32_t a[40], b[40], cg[40];
	struct tag_pages p = { .t = { .n = 3, .npages = { 40, 40, 40 }, .domains = { 1, 1, 2 },
				      .tags = { a, b, cg } } };
	struct dedup_census c;

	/* A: 0-3 zero; 4-7 as B's 4-7 (same address); 8, 9 one content twice
	 * side by side (a run within a guest may not overlap itself: two runs
	 * of 1); 10-29 as B's 20-39 (a run of 20); 30-32 as B's 0-2 (3);
	 * 33 as B's 8 (1); 34-39 unique. */
	set_tags(a, 0, 4, 0);
	set_tags(a, 4, 4, 100);
	a[8] = a[9] = 800;
	set_tags(a, 10, 20, 200);
	set_tags(a, 30, 3, 300);
	a[33] = 400;
	a[34] = 500;
	set_tags(a, 35, 5, 700);
	/* B: 0-2 (run of 3), 3 zero, 4-7 same address, 8 (1), 9-19 unique,
	 * 20-39 (run of 20). */
	set_tags(b, 0, 3, 300);
	b[3] = 0;
	set_tags(b, 4, 4, 100);
	b[8] = 400;
	b[9] = 600;
	set_tags(b, 10, 10, 900);
	set_tags(b, 20, 20, 200);
	/* C, another trust domain: A's run at A's very addresses, which counts
	 * for nothing across domains (unique), and zero pages. */
	set_tags(cg, 0, 10, 0);
	set_tags(cg, 10, 20, 200);
	set_tags(cg, 30, 10, 0);

	run_census(&p, &c);
	CU_ASSERT_EQUAL(c.pages, 120);
	CU_ASSERT_EQUAL(c.zero, 4 + 1 + 20);
	CU_ASSERT_EQUAL(c.same_address, 4 + 4);
	CU_ASSERT_EQUAL(c.run[CENSUS_RUN_1], 3 + 1);
	CU_ASSERT_EQUAL(c.run[CENSUS_RUN_2_15], 3 + 3);
	CU_ASSERT_EQUAL(c.run[CENSUS_RUN_16_511], 20 + 20);
	CU_ASSERT_EQUAL(c.run[CENSUS_RUN_512], 0);
	CU_ASSERT_EQUAL(c.unique, 6 + 11 + 20);
}

static void test_census_long_run(void)
{
	static uint32_t a[600], b[600];
	struct tag_pages p = { .t = { .n = 2, .npages = { 600, 600 }, .domains = { 7, 7 },
				      .tags = { a, b } } };
	struct dedup_census c;

	/* B is A shifted by one page: A's 0-598 run with B's 1-599. */
	set_tags(a, 0, 600, 1000);
	b[0] = 0;
	set_tags(b, 1, 599, 1000);
	run_census(&p, &c);
	CU_ASSERT_EQUAL(c.pages, 1200);
	CU_ASSERT_EQUAL(c.zero, 1);
	CU_ASSERT_EQUAL(c.run[CENSUS_RUN_512], 599 + 599);
	CU_ASSERT_EQUAL(c.unique, 1);
	CU_ASSERT_EQUAL(c.same_address + c.run[CENSUS_RUN_1] + c.run[CENSUS_RUN_2_15] +
			c.run[CENSUS_RUN_16_511], 0);
	CU_ASSERT_EQUAL(census_run_class(1), CENSUS_RUN_1);
	CU_ASSERT_EQUAL(census_run_class(2), CENSUS_RUN_2_15);
	CU_ASSERT_EQUAL(census_run_class(15), CENSUS_RUN_2_15);
	CU_ASSERT_EQUAL(census_run_class(16), CENSUS_RUN_16_511);
	CU_ASSERT_EQUAL(census_run_class(511), CENSUS_RUN_16_511);
	CU_ASSERT_EQUAL(census_run_class(512), CENSUS_RUN_512);
}

void unit_add_dedup_suite(void)
{
	CU_pSuite s = CU_add_suite("dedup", NULL, NULL);

	CU_add_test(s, "store refcount and punch", test_store_refcount_and_punch);
	CU_add_test(s, "store hint and full", test_store_hint_and_full);
	CU_add_test(s, "vma delta", test_vma_delta);
	CU_add_test(s, "vma budget", test_budget);
	CU_add_test(s, "volatility back-off", test_backoff);
	CU_add_test(s, "config defaults", test_config_defaults);
	CU_add_test(s, "idle pass interval", test_idle_interval);
	CU_add_test(s, "memory pressure hysteresis", test_pressure_hysteresis);
	CU_add_test(s, "when to recount VMAs", test_recount_wanted);
	CU_add_test(s, "idle passes visit nothing", test_idle_passes_visit_nothing);
	CU_add_test(s, "budget-bound engine idles", test_budget_bound_engine_idles);
	CU_add_test(s, "scanner with a replaced guest", test_scan_guest_replaced);
	CU_add_test(s, "merge errors per guest", test_errors_per_guest);
	CU_add_test(s, "merge protected: map, discard, release", test_merge_protected);
	CU_add_test(s, "census: classes of made-up guests", test_census_classes);
	CU_add_test(s, "census: a run of 599 pages", test_census_long_run);
}
