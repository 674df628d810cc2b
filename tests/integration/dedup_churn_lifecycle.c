/*
 * dedup_churn_lifecycle.c - guests come and go under a running engine
 * while their pages are merged, and nothing leaks or breaks:
 *
 *  - a long-lived guest L holds content; 50 times a guest T with the same
 *    content spec is created, filled, merged with L (asserted every cycle)
 *    and destroyed with its pages still merged;
 *  - every 10 cycles L rewrites 64 random data pages (copy-on-write
 *    breaks of frames whose T is gone): L verifies, and each frame L held
 *    alone leaves the store (frame count and memfd bytes);
 *  - after the 50 cycles the process has the same file descriptors, about
 *    the same VMAs and RSS, and the store holds no more frames and bytes
 *    than after the first (warm-up) cycle.
 *    Why after a warm-up cycle: a frame made for the pair L+T keeps L's
 *    reference when T goes, so the store stays at the level the first T
 *    brought it to; later T's merge onto those frames and add none;
 *  - once, instead of T, two guests T2 and T3 with another shared seed
 *    (777) run together: their shared pages merge with each other (not
 *    with L), and when both are gone the store gives those frames back -
 *    frame count and the memfd's allocated bytes both drop by at least 80%
 *    of T2's shared pages.
 * Exit 0 pass, 1 fail, 77 skip (no /dev/kvm).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include "guest-tools/content.h"
#include "tests/integration/kvmtest.h"

#define CYCLES 50
#define SEED_CYCLE 25   /* the cycle that runs T2 + T3 instead of T */
#define CONTENT "mem=32M,zero=20,shared=60,dedup=on,domain=d"
#define PAGE 4096ull
#define CHURN_PAGES 64  /* L rewrites these every 10 cycles */

/*
 * How far VMAs and RSS may drift from the warm-up baseline.  Natively the
 * drift is glibc's cache of thread stacks (T2 and T3 run two vCPU threads
 * at once: one more cached stack, +2 VMAs) and a few heap pages.  Under
 * AddressSanitizer its allocator grows size-class regions (more VMAs) and
 * keeps freed memory in quarantine (more RSS: each destroyed guest's
 * engine page table, ~200 KiB, lingers); LeakSanitizer checks the heap for
 * leaks at exit instead, so the bounds are wider there.
 */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifdef UNDER_ASAN
#define VMA_SLACK 32
#define RSS_SLACK (64ull << 20)
#else
#define VMA_SLACK 8
#define RSS_SLACK (8ull << 20)
#endif

struct usage {
	uint64_t fds, vmas, rss, frames, store_bytes;
};

static uint64_t fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	uint64_t n = 0;

	KT_ASSERT(d, "opendir /proc/self/fd");
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;   /* includes the directory's own fd, every time */
}

static struct usage usage_now(struct dedup_engine *e)
{
	struct procstat_rollup r;
	struct dedup_host_stats hs;
	struct fv_error err;
	struct usage u;

	u.fds = fd_count();
	KT_ASSERT(procstat_vma_count(&u.vmas, &err) == 0, "%s", err.msg);
	KT_ASSERT(procstat_rollup(0, &r, &err) == 0, "%s", err.msg);
	u.rss = r.rss;
	dedup_get_host_stats(e, &hs);
	u.frames = hs.store_frames;
	u.store_bytes = hs.store_bytes;
	return u;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One T: create, fill, merge with L, destroy while merged. */
static uint64_t cycle(struct kvm_sys *kvm, struct dedup_engine *e, int i,
		      bool verify)
{
	struct guest *t = kt_guest(kvm, e, "name=t," CONTENT);
	struct dedup_guest_stats st;
	uint64_t shared;

	kt_fill(t);
	kt_passes(e, 2);
	st = kt_stats(t);
	shared = kt_shared_pages(t);
	KT_ASSERT(st.pages_merged * 10 >= shared * 8,
		  "cycle %d: T merged %llu pages of %llu shared", i,
		  (unsigned long long)st.pages_merged, (unsigned long long)shared);
	if (verify)
		kt_verify(t);
	kt_destroy(t);
	return st.pages_merged;
}

int main(void)
{
	struct kvm_sys kvm;
	struct dedup_engine *e;
	struct guest *l, *t2, *t3;
	struct dedup_guest_stats s2, s3, sl;
	struct usage base, u, live = { 0 }, gone = { 0 };
	uint64_t shared2 = 0, min_merged = UINT64_MAX, m, churn_unmerged = 0;
	double t0 = now_s();

	kt_require_kvm("dedup_churn_lifecycle");
	kt_open(&kvm);
	e = kt_engine(0);
	l = kt_guest(&kvm, e, "name=l," CONTENT);
	kt_fill(l);

	/* warm-up: the first T makes the frames L keeps.  L then reads all
	 * its memory, which maps its merged pages' frames into L's range:
	 * from then on RSS counts each such frame twice (once in the store's
	 * own mapping, once in L's) and stays there.  Without this the first
	 * kt_verify(l) below would add ~16 MiB of RSS that is no memory. */
	cycle(&kvm, e, 0, true);
	kt_verify(l);
	kt_passes(e, 1);
	base = usage_now(e);
	KT_ASSERT(base.frames > 0, "no frames after the warm-up cycle");

	for (int i = 1; i <= CYCLES; i++) {
		if (i == SEED_CYCLE) {
			/* T2 and T3 share content with each other, not with L */
			t2 = kt_guest(&kvm, e, "name=t2,seed=777," CONTENT);
			t3 = kt_guest(&kvm, e, "name=t3,seed=777," CONTENT);
			kt_fill(t2);
			kt_fill(t3);
			kt_passes(e, 2);
			s2 = kt_stats(t2);
			s3 = kt_stats(t3);
			shared2 = kt_shared_pages(t2);
			KT_ASSERT(s2.pages_merged * 10 >= shared2 * 8 &&
				  s3.pages_merged * 10 >= shared2 * 8,
				  "t2/t3 merged %llu/%llu of %llu shared",
				  (unsigned long long)s2.pages_merged,
				  (unsigned long long)s3.pages_merged,
				  (unsigned long long)shared2);
			live = usage_now(e);
			kt_verify(t2);
			kt_verify(t3);
			kt_destroy(t2);
			kt_destroy(t3);
			gone = usage_now(e);
			KT_ASSERT(live.frames >= gone.frames + shared2 * 8 / 10,
				  "store frames %llu with t2+t3, %llu after: dropped "
				  "less than 80%% of %llu", (unsigned long long)live.frames,
				  (unsigned long long)gone.frames,
				  (unsigned long long)shared2);
			KT_ASSERT(live.store_bytes >= gone.store_bytes +
				  shared2 * 8 / 10 * PAGE,
				  "store bytes %llu with t2+t3, %llu after: dropped "
				  "less than 80%% of %llu pages",
				  (unsigned long long)live.store_bytes,
				  (unsigned long long)gone.store_bytes,
				  (unsigned long long)shared2);
		} else {
			m = cycle(&kvm, e, i, i % 10 == 0);
			if (m < min_merged)
				min_merged = m;
		}
		u = usage_now(e);
		KT_ASSERT(u.frames <= base.frames + 8,
			  "cycle %d: store frames %llu, %llu after warm-up", i,
			  (unsigned long long)u.frames, (unsigned long long)base.frames);
		if (i % 10 == 0) {
			/* L writes over pages whose frames it now holds alone
			 * (their T is gone): copy-on-write, the engine drops
			 * its references, L must read back what it wrote.
			 * CHURN's page j is fv_mix64(seed ^ j) % pages: seeds
			 * below 64 would all pick the same 64 pages. */
			struct dedup_guest_stats before_l = kt_stats(l);
			struct usage after;
			uint64_t dropped, freed_min;
			struct testdev_result r = kt_cmd(l, 0, FV_CMD_CHURN,
							 CHURN_PAGES, 0,
							 (uint64_t)i << 32, 0);

			KT_ASSERT(r.status == FV_STATUS_OK &&
				  r.result[0] == CHURN_PAGES, "churn status %u",
				  r.status);
			kt_passes(e, 2);
			kt_verify(l);
			/* each merged page L rewrote held its frame alone: the
			 * frame goes, and its memory leaves the memfd */
			sl = kt_stats(l);
			after = usage_now(e);
			KT_ASSERT(before_l.pages_merged > sl.pages_merged,
				  "cycle %d: churn unmerged nothing", i);
			dropped = before_l.pages_merged - sl.pages_merged;
			freed_min = dropped > 2 ? dropped - 2 : 0;
			KT_ASSERT(u.frames >= after.frames + freed_min &&
				  u.store_bytes >= after.store_bytes + freed_min * PAGE,
				  "cycle %d: L unmerged %llu pages, store frames "
				  "%llu -> %llu, bytes %llu -> %llu", i,
				  (unsigned long long)dropped,
				  (unsigned long long)u.frames,
				  (unsigned long long)after.frames,
				  (unsigned long long)u.store_bytes,
				  (unsigned long long)after.store_bytes);
			churn_unmerged += dropped;
		}
	}

	kt_passes(e, 1);
	u = usage_now(e);
	kt_verify(l);
	sl = kt_stats(l);
	KT_ASSERT(sl.unmerges > 0, "L's churn unmerged nothing");
	KT_ASSERT(u.fds == base.fds, "fds %llu, %llu after warm-up",
		  (unsigned long long)u.fds, (unsigned long long)base.fds);
	KT_ASSERT(u.vmas <= base.vmas + VMA_SLACK, "VMAs %llu, %llu after warm-up",
		  (unsigned long long)u.vmas, (unsigned long long)base.vmas);
	KT_ASSERT(u.rss <= base.rss + RSS_SLACK, "RSS %llu KiB, %llu after warm-up",
		  (unsigned long long)(u.rss >> 10), (unsigned long long)(base.rss >> 10));
	KT_ASSERT(u.frames <= base.frames + 8, "store frames %llu, %llu after warm-up",
		  (unsigned long long)u.frames, (unsigned long long)base.frames);
	KT_ASSERT(u.store_bytes <= base.store_bytes + (64ull << 10),
		  "store bytes %llu, %llu after warm-up",
		  (unsigned long long)u.store_bytes,
		  (unsigned long long)base.store_bytes);

	kt_destroy(l);
	dedup_destroy(e);
	kvm_sys_close(&kvm);

	printf("dedup_churn_lifecycle: %d guests T merged (>= %llu pages each) "
	       "and destroyed beside L in %.1f s; after vs warm-up: fds %llu/%llu, "
	       "VMAs %llu/%llu, RSS %llu/%llu KiB, store frames %llu/%llu, "
	       "store %llu/%llu KiB; t2+t3 (seed 777, %llu shared) freed %llu "
	       "frames, %llu KiB of store; L's writes unmerged %llu pages and "
	       "freed their frames; L verified\n",
	       CYCLES - 1, (unsigned long long)min_merged, now_s() - t0,
	       (unsigned long long)u.fds, (unsigned long long)base.fds,
	       (unsigned long long)u.vmas, (unsigned long long)base.vmas,
	       (unsigned long long)(u.rss >> 10), (unsigned long long)(base.rss >> 10),
	       (unsigned long long)u.frames, (unsigned long long)base.frames,
	       (unsigned long long)(u.store_bytes >> 10),
	       (unsigned long long)(base.store_bytes >> 10),
	       (unsigned long long)shared2,
	       (unsigned long long)(live.frames - gone.frames),
	       (unsigned long long)((live.store_bytes - gone.store_bytes) >> 10),
	       (unsigned long long)churn_unmerged);
	return 0;
}
