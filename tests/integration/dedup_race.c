/*
 * dedup_race.c - no write is ever lost to a merge.
 *
 * Two guests, two vCPUs each, increment counters (`lock add`) in 256 race
 * pages, round after round, while the engine -
 * with no pause between passes and no volatility back-off - keeps trying to
 * merge those very pages: at rest the even ones are all alike (they merge
 * onto shared store frames), and each odd one equals only the same page of
 * the other guest (they merge in place, onto their home slot).  Meanwhile a host thread writes, through the
 * guest-memory API as a device would, a version number into pages the
 * engine is merging, and reads every one back.  At the end each guest checks
 * its own memory (every counter must hold exactly the increments made, every
 * data page its checksum) and the host thread its own writes.  The test
 * needs at least 100,000 merge attempts (write-protect + compare) to count.
 * It is bounded by rounds, not seconds: each round's pass retries every
 * race page of both guests (about 780 attempts a round here), so a loaded
 * host only makes it slower; MAX_ROUNDS is 20 times what it needs.
 * `make stress` sets FOLDVM_STRESS_EVENTS to go on until that many merges
 * and unmerges were made (tests/stress/stress.sh).
 *
 * All the while a third thread forces memory compaction over and over
 * (/proc/sys/vm/compact_memory), so the kernel migrates what pages it can
 * under the merges, the write-protection and the racing writers; the
 * rounds go on until at least MIN_COMPACTIONS compactions ran beside
 * them (bounded by MAX_ROUNDS too), and the pages the kernel migrated
 * meanwhile are reported.  Where compaction cannot be forced (not root, a
 * kernel without it) that part is skipped, loudly.
 *
 * Then pacing (idle_write_is_seen): an engine at its defaults, left alone
 * until its passes find nothing and its pause has grown, must still see
 * guest writes made during that pause and merge their results, nobody
 * waking it, with every counter exact.
 *
 * Last, unmerging on request (unmerge_races_writers): converged guests are
 * unmerged (dedup_guest_unmerge, paced so that it takes many rounds) while
 * their vCPUs race on the merged pages; then every page is private, in the
 * engine's books and in the kernel's page table, and every counter exact.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#include <time.h>
#include "tests/integration/kvmtest.h"

#define ROUND_ITERS 1024        /* increments per vCPU per round: each word twice */
#define MIN_ATTEMPTS 100000ull
#define MAX_ROUNDS 2560         /* about 130 suffice */
/* `make stress` asks for more: FOLDVM_STRESS_EVENTS merges + unmerges
 * (about 2 per attempt), with rounds bounded in proportion. */
#define STRESS_EVENTS_MAX 100000000ull

static uint64_t stress_events(void)
{
	const char *s = getenv("FOLDVM_STRESS_EVENTS");
	char *end;
	unsigned long long n;

	if (!s || !*s)
		return 0;
	n = strtoull(s, &end, 10);
	KT_ASSERT(!*end && n <= STRESS_EVENTS_MAX,
		  "FOLDVM_STRESS_EVENTS '%s': a count up to %llu", s, STRESS_EVENTS_MAX);
	return n;
}
#define MIN_COMPACTIONS 50
#define DEVICE_PAGES 64

struct device_writer {
	struct guest *g;
	volatile bool stop;
	uint64_t rounds, mismatches, first_bad;
};

/* A device writing a version into pages the engine keeps merging (they are
 * identical between rounds), then reading each back through the API. */
static void *device_thread(void *arg)
{
	struct device_writer *w = arg;
	const struct fv_guest_config *l = &w->g->layout;
	uint64_t version = 1, back;

	while (!w->stop) {
		for (unsigned i = 0; i < DEVICE_PAGES; i++)
			gmem_write(&w->g->mem, l->probe_gpa + i * FV_PAGE_SIZE + 8,
				   &version, sizeof(version), NULL);
		for (unsigned i = 0; i < DEVICE_PAGES; i++) {
			gmem_read(&w->g->mem, l->probe_gpa + i * FV_PAGE_SIZE + 8,
				  &back, sizeof(back), NULL);
			if (back != version && !w->mismatches++)
				w->first_bad = version;
		}
		version++;
		w->rounds++;
		/* Leave the pages at rest for a moment so they merge again. */
		nanosleep(&(struct timespec){ 0, 200000 }, NULL);
	}
	return NULL;
}

static void race_round(struct guest *g[2])
{
	struct testdev_result r;
	struct fv_error err;
	uint64_t arg[8] = { ROUND_ITERS };

	for (int k = 0; k < 2; k++)
		for (unsigned v = 0; v < g[k]->cfg.nr_vcpus; v++)
			KT_ASSERT(testdev_submit(&g[k]->testdev, v, FV_CMD_RACE, arg, &err) == 0,
				  "%s", err.msg);
	for (int k = 0; k < 2; k++)
		for (unsigned v = 0; v < g[k]->cfg.nr_vcpus; v++)
			KT_ASSERT(testdev_wait(&g[k]->testdev, v, KT_TIMEOUT_MS, &r, &err) == 0,
				  "%s", err.msg);
	for (int k = 0; k < 2; k++)
		kt_cmd(g[k], 0, FV_CMD_RACE_SETTLE, ROUND_ITERS, g[k]->cfg.nr_vcpus, 0, 0);
}

static uint64_t total(struct guest *g[2], size_t field_offset)
{
	uint64_t sum = 0;

	for (int k = 0; k < 2; k++) {
		struct dedup_guest_stats s = kt_stats(g[k]);

		sum += *(uint64_t *)((char *)&s + field_offset);
	}
	return sum;
}

/* Are all race pages of the guest merged? */
static bool race_pages_merged(struct guest *g)
{
	uint64_t gfn0 = kt_page(g, g->layout.race_gpa);

	for (uint64_t i = 0; i < g->layout.race_pages; i++)
		if (dedup_page_state(g->dedup, g->dedup_guest, gfn0 + i) != DEDUP_PAGE_MERGED)
			return false;
	return true;
}

/* Pages visited by the engine, both guests. */
static uint64_t visits(struct guest *g[2])
{
	return total(g, offsetof(struct dedup_guest_stats, pages_scanned));
}

static void idle_write_is_seen(struct kvm_sys *kvm)
{
	struct dedup_engine *e;
	struct dedup_config cfg;
	struct dedup_host_stats hs;
	struct fv_error err;
	struct guest *g[2];
	uint64_t before, passes, unmerges, want;
	bool merged = false;

	dedup_config_defaults(&cfg);
	cfg.pressure_pct = 0;   /* host pressure must not pause what is counted */
	KT_ASSERT(dedup_create(&e, &cfg, &err) == 0, "%s", err.msg);
	g[0] = kt_guest(kvm, e, "name=p1,mem=16M,vcpus=2,zero=50,shared=50,race-pages=64,dedup=on,domain=p");
	g[1] = kt_guest(kvm, e, "name=p2,mem=16M,vcpus=2,zero=50,shared=50,race-pages=64,dedup=on,domain=p");
	kt_fill(g[0]);
	kt_fill(g[1]);
	race_round(g);
	/* Converged: two rounds of passes in a row that visit nothing (the
	 * waits wake the engine; bounded by a hang guard, not a time). */
	before = UINT64_MAX;
	for (int i = 0; i < 600 && visits(g) != before; i++) {
		before = visits(g);
		kt_passes(e, 2);
	}
	KT_ASSERT(visits(g) == before, "the engine never went quiet");
	KT_ASSERT(race_pages_merged(g[0]) && race_pages_merged(g[1]),
		  "race pages not merged at rest");
	/* Leave it alone until 5 more passes found nothing: its pause is then
	 * over 1.5 s of growth (100, 200 ... ms), up to 1 s.  Then both guests
	 * change the race pages (identically, so they can merge again). */
	dedup_get_host_stats(e, &hs);
	passes = hs.passes;
	for (int i = 0; i < 120000 && hs.passes < passes + 5; i++) {
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
		dedup_get_host_stats(e, &hs);
	}
	KT_ASSERT(hs.passes >= passes + 5, "the engine made no passes");
	unmerges = total(g, offsetof(struct dedup_guest_stats, unmerges));
	race_round(g);

	/* Nobody wakes the engine: the dirty log alone tells it that every
	 * race page was copied on write (it still believes them merged until
	 * then), and it merges them again. */
	want = unmerges + g[0]->layout.race_pages + g[1]->layout.race_pages;
	for (int i = 0; i < 120000 && !merged; i++) {
		merged = total(g, offsetof(struct dedup_guest_stats, unmerges)) >= want &&
			 race_pages_merged(g[0]) && race_pages_merged(g[1]);
		if (!merged)
			nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
	}
	KT_ASSERT(merged, "writes made during the engine's pause: %llu of %llu unmerges seen, "
		  "race pages merged again: %d, %d",
		  (unsigned long long)(total(g, offsetof(struct dedup_guest_stats, unmerges)) - unmerges),
		  (unsigned long long)(want - unmerges), race_pages_merged(g[0]),
		  race_pages_merged(g[1]));
	kt_verify(g[0]);
	kt_verify(g[1]);
	printf("dedup_race: pacing: writes made while the idle engine paused were merged, "
	       "0 lost writes\n");
	kt_destroy(g[0]);
	kt_destroy(g[1]);
	dedup_destroy(e);
}

static bool unmerging(struct guest *g[2])
{
	return kt_stats(g[0]).unmerging || kt_stats(g[1]).unmerging;
}

static void unmerge_races_writers(struct kvm_sys *kvm)
{
	struct dedup_engine *e;
	struct dedup_config cfg;
	struct fv_error err;
	struct guest *g[2];
	uint64_t shared[2], rounds = 0, zero_pfn = procstat_zero_pfn();

	dedup_config_defaults(&cfg);
	cfg.pressure_pct = 0;   /* host pressure must not pause what is counted */
	KT_ASSERT(dedup_create(&e, &cfg, &err) == 0, "%s", err.msg);
	g[0] = kt_guest(kvm, e, "name=u1,mem=32M,vcpus=2,zero=40,shared=40,race-pages=256,dedup=on,domain=u");
	g[1] = kt_guest(kvm, e, "name=u2,mem=32M,vcpus=2,zero=40,shared=40,race-pages=256,dedup=on,domain=u");
	kt_fill(g[0]);
	kt_fill(g[1]);
	race_round(g);
	kt_passes(e, 3);
	KT_ASSERT(race_pages_merged(g[0]) && race_pages_merged(g[1]),
		  "race pages not merged at rest");
	/* 2,048 pages a second: the unmerge of a guest's thousands of
	 * shared pages spans rounds of racing writers (how many is reported,
	 * not asserted: what must hold is the content). */
	for (int k = 0; k < 2; k++) {
		struct dedup_guest_stats st = kt_stats(g[k]);

		shared[k] = st.pages_merged + st.pages_zero;
		KT_ASSERT(shared[k] > g[k]->layout.race_pages, "%s: only %llu pages shared",
			  g[k]->cfg.name, (unsigned long long)shared[k]);
		KT_ASSERT(dedup_guest_unmerge(e, g[k]->dedup_guest, 2048) == shared[k],
			  "%s: unmerge does not count its shared pages", g[k]->cfg.name);
	}
	do {
		race_round(g);
		rounds++;
	} while (unmerging(g) && rounds < 1000000);
	KT_ASSERT(!unmerging(g), "the unmerge never ended");
	for (int k = 0; k < 2; k++) {
		struct dedup_guest_stats st = kt_stats(g[k]);

		KT_ASSERT(st.pages_merged == 0 && st.pages_zero == 0 && st.unmerge_left == 0,
			  "%s: after the unmerge %llu merged, %llu zero, %llu left",
			  g[k]->cfg.name, (unsigned long long)st.pages_merged,
			  (unsigned long long)st.pages_zero, (unsigned long long)st.unmerge_left);
		/* Each shared page was copied by the unmerge or by a racing
		 * writer first (an unmerge of the writer's, seen by a pass). */
		KT_ASSERT(st.unmerge_done <= shared[k] && st.unmerges >= shared[k],
			  "%s: %llu shared, %llu unmerged on request, %llu unmerges",
			  g[k]->cfg.name, (unsigned long long)shared[k],
			  (unsigned long long)st.unmerge_done, (unsigned long long)st.unmerges);
		for (uint64_t gfn = 0; gfn < gmem_pages(&g[k]->mem); gfn++)
			KT_ASSERT(dedup_page_state(e, g[k]->dedup_guest, gfn) == DEDUP_PAGE_PRIVATE,
				  "%s: gfn %llu still shared", g[k]->cfg.name,
				  (unsigned long long)gfn);
		KT_ASSERT(kt_page_private(g[k], kt_page(g[k], g[k]->layout.race_gpa), zero_pfn),
			  "%s: a race page has no page of its own", g[k]->cfg.name);
	}
	/* The writers' counters, and every data page's checksum. */
	kt_verify(g[0]);
	kt_verify(g[1]);
	printf("dedup_race: unmerge on request: %llu + %llu shared pages made private "
	       "(%llu + %llu found shared by the unmerge itself) over %llu rounds of racing "
	       "writers; 0 lost writes\n",
	       (unsigned long long)shared[0], (unsigned long long)shared[1],
	       (unsigned long long)kt_stats(g[0]).unmerge_done,
	       (unsigned long long)kt_stats(g[1]).unmerge_done, (unsigned long long)rounds);
	kt_destroy(g[0]);
	kt_destroy(g[1]);
	dedup_destroy(e);
}

/* Forces compaction until told to stop, counting the ones that ran. */
struct compactor {
	volatile bool stop;
	bool unavailable;               /* could not force one: why in msg */
	char msg[128];
	uint64_t done;                  /* atomic */
};

static void *compactor_thread(void *arg)
{
	struct compactor *c = arg;

	while (!c->stop) {
		int fd = open("/proc/sys/vm/compact_memory", O_WRONLY | O_CLOEXEC);

		if (fd < 0 || write(fd, "1", 1) != 1) {
			snprintf(c->msg, sizeof(c->msg), "/proc/sys/vm/compact_memory: %s",
				 strerror(errno));
			c->unavailable = true;
			if (fd >= 0)
				close(fd);
			return NULL;
		}
		close(fd);
		__atomic_add_fetch(&c->done, 1, __ATOMIC_RELAXED);
		/* A breather: a compaction costs a CPU for tens of ms, and
		 * the suite's other tests run beside this one. */
		nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000 * 1000 }, NULL);
	}
	return NULL;
}

/* A /proc/vmstat counter, 0 if absent. */
static uint64_t vmstat(const char *key)
{
	char line[128];
	uint64_t v = 0;
	size_t n = strlen(key);
	FILE *f = fopen("/proc/vmstat", "re");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ' ')
			v = strtoull(line + n + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

int main(void)
{
	struct compactor comp = { 0 };
	pthread_t comp_thread;
	uint64_t migrated;
	struct kvm_sys kvm;
	struct dedup_engine *e;
	struct dedup_config cfg;
	struct fv_error err;
	struct guest *g[2];
	struct device_writer dev = { 0 };
	pthread_t dev_thread;
	time_t start = time(NULL);
	uint64_t rounds = 0, attempts, events = 0, in_place = 0, want_in_place;
	const uint64_t want_events = stress_events();
	/* rounds: 20 times what the events need at ~1,500 a round */
	const uint64_t max_rounds = want_events ? 20 * (want_events / 1500 + 1) : MAX_ROUNDS;

	kt_require_kvm("dedup_race");
	kt_open(&kvm);
	dedup_config_defaults(&cfg);
	cfg.pressure_pct = 0;   /* host pressure must not pause what is counted */
	cfg.pass_interval_ms = 0;     /* merge again as soon as possible, */
	cfg.idle_interval_max_ms = 0; /* also after a pass that found nothing */
	cfg.volatile_after = 100000;  /* never back off from the racing pages */
	KT_ASSERT(dedup_create(&e, &cfg, &err) == 0, "%s", err.msg);
	g[0] = kt_guest(&kvm, e, "name=r1,mem=32M,vcpus=2,zero=50,shared=50,race-pages=256,dedup=on,domain=r");
	g[1] = kt_guest(&kvm, e, "name=r2,mem=32M,vcpus=2,zero=50,shared=50,race-pages=256,dedup=on,domain=r");
	kt_fill(g[0]);
	kt_fill(g[1]);
	/* What 20 rounds give when each merges half the race pages in place
	 * (about 270 of 256 a round here).  A loaded host lowers the rate
	 * (119 a round seen once, pages still being written when the pass
	 * came), so the rounds go on until this many, as for the attempts. */
	want_in_place = 20 * g[0]->layout.race_pages / 2;
	dev.g = g[0];
	KT_ASSERT(pthread_create(&dev_thread, NULL, device_thread, &dev) == 0, "thread");
	migrated = vmstat("pgmigrate_success");
	KT_ASSERT(pthread_create(&comp_thread, NULL, compactor_thread, &comp) == 0, "thread");

	do {
		race_round(g);
		/* At rest the race pages have twins: one pass merges them,
		 * and the next round's writers race with those merges and
		 * with the next pass's attempts. */
		kt_passes(e, 1);
		rounds++;
		attempts = total(g, offsetof(struct dedup_guest_stats, merge_attempts));
		in_place = total(g, offsetof(struct dedup_guest_stats, merges_in_place));
		if (want_events)
			events = total(g, offsetof(struct dedup_guest_stats, merges)) +
				 total(g, offsetof(struct dedup_guest_stats, unmerges));
	} while ((attempts < MIN_ATTEMPTS || rounds < 20 || events < want_events ||
		  in_place < want_in_place ||
		  (!comp.unavailable &&
		   __atomic_load_n(&comp.done, __ATOMIC_RELAXED) < MIN_COMPACTIONS)) &&
		 rounds < max_rounds);

	dev.stop = true;
	comp.stop = true;
	pthread_join(dev_thread, NULL);
	pthread_join(comp_thread, NULL);
	migrated = vmstat("pgmigrate_success") - migrated;
	if (comp.unavailable)
		fprintf(stderr, "dedup_race: SKIPPED forced compaction: %s\n", comp.msg);
	else
		KT_ASSERT(comp.done >= MIN_COMPACTIONS, "only %llu compactions in %llu rounds",
			  (unsigned long long)comp.done, (unsigned long long)rounds);
	fprintf(stderr, "dedup_race: %llu rounds, %llu attempts in %ld s\n",
		(unsigned long long)rounds, (unsigned long long)attempts,
		(long)(time(NULL) - start));
	kt_verify(g[0]);
	kt_verify(g[1]);
	KT_ASSERT(dev.mismatches == 0, "device path: %llu writes lost (first version %llu)",
		  (unsigned long long)dev.mismatches, (unsigned long long)dev.first_bad);
	KT_ASSERT(events >= want_events, "only %llu merge and unmerge events of %llu in %llu rounds",
		  (unsigned long long)events, (unsigned long long)want_events,
		  (unsigned long long)rounds);
	KT_ASSERT(attempts >= MIN_ATTEMPTS, "only %llu merge attempts in %llu rounds",
		  (unsigned long long)attempts, (unsigned long long)rounds);
	/* Both kinds of merge raced the writers: every round merges the odd
	 * race pages in place (their only twin is the same page of the other
	 * guest, in the same domain) and the even ones onto frames. */
	KT_ASSERT(in_place >= want_in_place, "only %llu merges in place of %llu in %llu rounds",
		  (unsigned long long)in_place, (unsigned long long)want_in_place,
		  (unsigned long long)rounds);
	printf("dedup_race: %llu rounds x %u increments x 4 vCPUs, %llu device write rounds, "
	       "%llu forced compactions (%llu pages migrated on the host meanwhile); "
	       "%llu merge attempts, %llu merges (%llu in place), %llu changed under "
	       "protection, %llu unmerges; 0 lost writes\n",
	       (unsigned long long)rounds, ROUND_ITERS, (unsigned long long)dev.rounds,
	       (unsigned long long)comp.done, (unsigned long long)migrated,
	       (unsigned long long)attempts,
	       (unsigned long long)total(g, offsetof(struct dedup_guest_stats, merges)),
	       (unsigned long long)total(g, offsetof(struct dedup_guest_stats, merges_in_place)),
	       (unsigned long long)total(g, offsetof(struct dedup_guest_stats, merge_races)),
	       (unsigned long long)total(g, offsetof(struct dedup_guest_stats, unmerges)));
	kt_destroy(g[0]);
	kt_destroy(g[1]);
	dedup_destroy(e);
	idle_write_is_seen(&kvm);
	unmerge_races_writers(&kvm);
	kvm_sys_close(&kvm);
	return 0;
}
