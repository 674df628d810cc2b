/* test_index.c - the dedup content index: probing, backward shift, growth. */
#include <stdlib.h>
#include <string.h>
#include <CUnit/CUnit.h>
#include "dedup/index.h"
#include "tests/unit/unit.h"

/* splitmix64: deterministic, so a failure reproduces. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static struct dedup_index_entry mk(uint64_t hash, uint32_t domain,
				   uint32_t a, uint64_t b)
{
	struct dedup_index_entry e = { .hash = hash, .domain = domain,
				       .a = a, .b = b };
	return e;
}

static size_t count_key(const struct dedup_index *ix, uint64_t hash,
			uint32_t domain)
{
	size_t cursor = 0, n = 0;

	while (dedup_index_next(ix, hash, domain, &cursor))
		n++;
	return n;
}

static size_t count_exact(const struct dedup_index *ix,
			  const struct dedup_index_entry *e)
{
	const struct dedup_index_entry *hit;
	size_t cursor = 0, n = 0;

	while ((hit = dedup_index_next(ix, e->hash, e->domain, &cursor)))
		if (hit->a == e->a && hit->b == e->b)
			n++;
	return n;
}

/* Slot where the (only) entry with this exact content sits; -1 if none. */
static long slot_of(const struct dedup_index *ix,
		    const struct dedup_index_entry *e)
{
	const struct dedup_index_entry *hit;
	size_t cursor = 0;

	while ((hit = dedup_index_next(ix, e->hash, e->domain, &cursor)))
		if (hit->a == e->a && hit->b == e->b)
			return (long)(hit - ix->slots);
	return -1;
}

/*
 * Home slot of a key in a table of probe->capacity slots, learnt through
 * the public API only: in an empty table an entry lands on its home slot.
 */
static size_t home_of(struct dedup_index *probe, uint64_t hash, uint32_t domain)
{
	struct dedup_index_entry e = mk(hash, domain, 0, 0);
	long slot;

	if (dedup_index_insert(probe, &e) < 0)
		return (size_t)-1;
	slot = slot_of(probe, &e);
	dedup_index_remove(probe, &e);
	return (size_t)slot;
}

/* `n` distinct hashes (domain 0) whose home slot is `home` at `capacity`. */
static int find_colliding(size_t capacity, size_t home, uint64_t *seed,
			  uint64_t *out, size_t n)
{
	struct dedup_index probe;

	if (dedup_index_init(&probe, capacity / 2) < 0)
		return -1;
	if (probe.capacity != capacity) {
		dedup_index_free(&probe);
		return -1;
	}
	for (size_t got = 0; got < n;) {
		uint64_t h = rng_next(seed);

		if (home_of(&probe, h, 0) == home)
			out[got++] = h;
	}
	dedup_index_free(&probe);
	return 0;
}

static bool drop_every(const struct dedup_index_entry *e, void *opaque)
{
	(void)e;
	(void)opaque;
	return true;
}

static bool load_ok(const struct dedup_index *ix)
{
	return ix->capacity && (ix->capacity & (ix->capacity - 1)) == 0 &&
	       ix->count * 10 <= ix->capacity * 7;
}

static void test_init_free(void)
{
	struct dedup_index z;
	struct dedup_index_entry e = mk(42, 1, 2, 3);
	size_t cursor = 0;

	/* a zeroed struct is an empty table: every call is safe */
	memset(&z, 0, sizeof(z));
	dedup_index_free(&z);
	dedup_index_free(&z);
	CU_ASSERT_PTR_NULL(dedup_index_next(&z, 42, 1, &cursor));
	CU_ASSERT_FALSE(dedup_index_remove(&z, &e));
	CU_ASSERT_EQUAL(dedup_index_remove_if(&z, drop_every, NULL), 0);
	/* ...and the first insert sizes it */
	CU_ASSERT_EQUAL_FATAL(dedup_index_insert(&z, &e), 0);
	CU_ASSERT_EQUAL(z.capacity, 64);
	CU_ASSERT_EQUAL(z.count, 1);
	CU_ASSERT_EQUAL(count_exact(&z, &e), 1);
	dedup_index_free(&z);
	CU_ASSERT_PTR_NULL(z.slots);
	CU_ASSERT_PTR_NULL(z.used);
	CU_ASSERT_EQUAL(z.capacity, 0);
	CU_ASSERT_EQUAL(z.count, 0);
	dedup_index_free(&z);

	/* sizes: smallest power of two >= 64 with expected <= 70% of it */
	static const size_t want[][2] = {
		{ 0, 64 }, { 1, 64 }, { 44, 64 }, { 45, 128 }, { 89, 128 },
		{ 90, 256 }, { 1000, 2048 }, { 1433, 2048 }, { 1434, 4096 },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		CU_ASSERT_EQUAL_FATAL(dedup_index_init(&z, want[i][0]), 0);
		CU_ASSERT_EQUAL(z.capacity, want[i][1]);
		CU_ASSERT_EQUAL(z.count, 0);
		cursor = 0;
		CU_ASSERT_PTR_NULL(dedup_index_next(&z, 42, 1, &cursor));
		dedup_index_free(&z);
	}

	/* `expected` entries fit without a rehash */
	CU_ASSERT_EQUAL_FATAL(dedup_index_init(&z, 1000), 0);
	for (uint32_t i = 0; i < 1000; i++) {
		e = mk(i, 0, i, 0);
		CU_ASSERT_EQUAL(dedup_index_insert(&z, &e), 0);
	}
	CU_ASSERT_EQUAL(z.capacity, 2048);
	CU_ASSERT_EQUAL(z.count, 1000);
	dedup_index_free(&z);

	/* growth happens exactly when the 45th entry would pass 70% of 64 */
	CU_ASSERT_EQUAL_FATAL(dedup_index_init(&z, 0), 0);
	for (uint32_t i = 0; i < 44; i++) {
		e = mk(i, 0, i, 0);
		CU_ASSERT_EQUAL(dedup_index_insert(&z, &e), 0);
	}
	CU_ASSERT_EQUAL(z.capacity, 64);
	e = mk(44, 0, 44, 0);
	CU_ASSERT_EQUAL(dedup_index_insert(&z, &e), 0);
	CU_ASSERT_EQUAL(z.capacity, 128);
	CU_ASSERT_EQUAL(z.count, 45);
	dedup_index_free(&z);

	/* an impossible size fails and leaves a valid (empty) table */
	memset(&z, 0xa5, sizeof(z));
	CU_ASSERT_EQUAL(dedup_index_init(&z, SIZE_MAX), -1);
	CU_ASSERT_PTR_NULL(z.slots);
	CU_ASSERT_EQUAL(z.capacity, 0);
	CU_ASSERT_EQUAL(z.count, 0);
	dedup_index_free(&z);
}

static void test_single(void)
{
	struct dedup_index ix;
	struct dedup_index_entry e = mk(0x1234567890abcdefull, 7, 11, 13);
	struct dedup_index_entry f = mk(0x1234567890abcdefull, 8, 21, 23);
	const struct dedup_index_entry *hit;
	size_t cursor = 0;

	CU_ASSERT_EQUAL_FATAL(dedup_index_init(&ix, 0), 0);
	CU_ASSERT_EQUAL(dedup_index_insert(&ix, &e), 0);
	CU_ASSERT_EQUAL(ix.count, 1);
	hit = dedup_index_next(&ix, e.hash, 7, &cursor);
	CU_ASSERT_PTR_NOT_NULL_FATAL(hit);
	CU_ASSERT_EQUAL(hit->hash, e.hash);
	CU_ASSERT_EQUAL(hit->domain, 7);
	CU_ASSERT_EQUAL(hit->a, 11);
	CU_ASSERT_EQUAL(hit->b, 13);
	CU_ASSERT_PTR_NULL(dedup_index_next(&ix, e.hash, 7, &cursor));
	/* an exhausted cursor stays exhausted */
	CU_ASSERT_PTR_NULL(dedup_index_next(&ix, e.hash, 7, &cursor));

	/* same hash, other domain: not found */
	CU_ASSERT_EQUAL(count_key(&ix, e.hash, 8), 0);
	CU_ASSERT_EQUAL(count_key(&ix, e.hash, 0), 0);
	CU_ASSERT_EQUAL(count_key(&ix, e.hash + 1, 7), 0);

	/* with both domains present each lookup sees only its own */
	CU_ASSERT_EQUAL(dedup_index_insert(&ix, &f), 0);
	CU_ASSERT_EQUAL(count_key(&ix, e.hash, 7), 1);
	CU_ASSERT_EQUAL(count_key(&ix, e.hash, 8), 1);
	cursor = 0;
	hit = dedup_index_next(&ix, f.hash, 8, &cursor);
	CU_ASSERT_PTR_NOT_NULL_FATAL(hit);
	CU_ASSERT_EQUAL(hit->a, 21);
	CU_ASSERT_EQUAL(hit->b, 23);
	dedup_index_free(&ix);
}

static void test_duplicates(void)
{
	struct dedup_index ix;
	struct dedup_index_entry e;
	const struct dedup_index_entry *hit;
	unsigned seen[10] = { 0 };
	size_t cursor = 0, n = 0;

	CU_ASSERT_EQUAL_FATAL(dedup_index_init(&ix, 0), 0);
	for (uint32_t i = 0; i < 10; i++) {
		e = mk(99, 1, i, 1000 + i);
		CU_ASSERT_EQUAL(dedup_index_insert(&ix, &e), 0);
		e = mk(99, 2 + i % 3, i, 0);	/* same hash, other domains */
		CU_ASSERT_EQUAL(dedup_index_insert(&ix, &e), 0);
	}
	while ((hit = dedup_index_next(&ix, 99, 1, &cursor))) {
		CU_ASSERT_EQUAL(hit->hash, 99);
		CU_ASSERT_EQUAL(hit->domain, 1);
		CU_ASSERT_FATAL(hit->a < 10);
		CU_ASSERT_EQUAL(hit->b, 1000 + hit->a);
		seen[hit->a]++;
		n++;
	}
	CU_ASSERT_EQUAL(n, 10);
	for (int i = 0; i < 10; i++)
		CU_ASSERT_EQUAL(seen[i], 1);
	CU_ASSERT_EQUAL(count_key(&ix, 99, 2), 4);
	CU_ASSERT_EQUAL(count_key(&ix, 99, 3), 3);
	CU_ASSERT_EQUAL(count_key(&ix, 99, 4), 3);
	CU_ASSERT_EQUAL(count_key(&ix, 99, 5), 0);
	CU_ASSERT_EQUAL(ix.count, 20);
	dedup_index_free(&ix);
}

static void test_remove(void)
{
	struct dedup_index ix;
	struct dedup_index_entry e;

	CU_ASSERT_EQUAL_FATAL(dedup_index_init(&ix, 0), 0);
	for (uint32_t i = 0; i < 10; i++) {
		e = mk(5, 0, i, i * 2);
		CU_ASSERT_EQUAL(dedup_index_insert(&ix, &e), 0);
	}
	e = mk(5, 0, 4, 8);
	CU_ASSERT_TRUE(dedup_index_remove(&ix, &e));
	CU_ASSERT_EQUAL(ix.count, 9);
	CU_ASSERT_EQUAL(count_key(&ix, 5, 0), 9);
	CU_ASSERT_EQUAL(count_exact(&ix, &e), 0);
	for (uint32_t i = 0; i < 10; i++) {
		struct dedup_index_entry o = mk(5, 0, i, i * 2);

		CU_ASSERT_EQUAL(count_exact(&ix, &o), i == 4 ? 0 : 1);
	}
	/* gone already; near misses in every field do not match */
	CU_ASSERT_FALSE(dedup_index_remove(&ix, &e));
	e = mk(5, 0, 3, 7);
	CU_ASSERT_FALSE(dedup_index_remove(&ix, &e));
	e = mk(5, 0, 2, 6);
	CU_ASSERT_FALSE(dedup_index_remove(&ix, &e));
	e = mk(5, 1, 3, 6);
	CU_ASSERT_FALSE(dedup_index_remove(&ix, &e));
	e = mk(6, 0, 3, 6);
	CU_ASSERT_FALSE(dedup_index_remove(&ix, &e));
	CU_ASSERT_EQUAL(ix.count, 9);

	/* identical twins: one remove takes exactly one */
	e = mk(77, 3, 1, 1);
	CU_ASSERT_EQUAL(dedup_index_insert(&ix, &e), 0);
	CU_ASSERT_EQUAL(dedup_index_insert(&ix, &e), 0);
	CU_ASSERT_EQUAL(count_exact(&ix, &e), 2);
	CU_ASSERT_TRUE(dedup_index_remove(&ix, &e));
	CU_ASSERT_EQUAL(count_exact(&ix, &e), 1);
	CU_ASSERT_TRUE(dedup_index_remove(&ix, &e));
	CU_ASSERT_EQUAL(count_exact(&ix, &e), 0);
	CU_ASSERT_FALSE(dedup_index_remove(&ix, &e));
	CU_ASSERT_EQUAL(ix.count, 9);
	dedup_index_free(&ix);
}

static bool drop_hash_in(const struct dedup_index_entry *e, void *opaque)
{
	const uint64_t *h = opaque;

	for (int i = 0; i < 5; i++)
		if (e->hash == h[i])
			return true;
	return false;
}

/*
 * Backward shift at the wrap-around, checked slot by slot.  Five keys e0..e4
 * have home 63 in a 64-slot table, x has home 0 and w home 4.  Inserting
 * e0 e1 e2 e3 x w e4 gives  63:e0 0:e1 1:e2 2:e3 3:x 4:w 5:e4.  Removing e0
 * must pull e1..e3 and x back one slot, leave w (home 4, already at home)
 * and still move e4 past it into slot 3:
 * 63:e1 0:e2 1:e3 2:x 3:e4 4:w, slot 5 free.
 */
static void test_wraparound(void)
{
	struct dedup_index ix;
	struct dedup_index_entry e[5], x, w;
	uint64_t seed = 1, h63[5], h0, h4;

	CU_ASSERT_EQUAL_FATAL(find_colliding(64, 63, &seed, h63, 5), 0);
	CU_ASSERT_EQUAL_FATAL(find_colliding(64, 0, &seed, &h0, 1), 0);
	CU_ASSERT_EQUAL_FATAL(find_colliding(64, 4, &seed, &h4, 1), 0);
	for (int i = 0; i < 5; i++)
		e[i] = mk(h63[i], 0, (uint32_t)i, 0);
	x = mk(h0, 0, 100, 0);
	w = mk(h4, 0, 200, 0);

	CU_ASSERT_EQUAL_FATAL(dedup_index_init(&ix, 0), 0);
	CU_ASSERT_EQUAL_FATAL(ix.capacity, 64);
	for (int i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(dedup_index_insert(&ix, &e[i]), 0);
	CU_ASSERT_EQUAL(dedup_index_insert(&ix, &x), 0);
	CU_ASSERT_EQUAL(dedup_index_insert(&ix, &w), 0);
	CU_ASSERT_EQUAL(dedup_index_insert(&ix, &e[4]), 0);
	CU_ASSERT_EQUAL(slot_of(&ix, &e[0]), 63);
	CU_ASSERT_EQUAL(slot_of(&ix, &e[1]), 0);
	CU_ASSERT_EQUAL(slot_of(&ix, &e[2]), 1);
	CU_ASSERT_EQUAL(slot_of(&ix, &e[3]), 2);
	CU_ASSERT_EQUAL(slot_of(&ix, &x), 3);
	CU_ASSERT_EQUAL(slot_of(&ix, &w), 4);
	CU_ASSERT_EQUAL(slot_of(&ix, &e[4]), 5);

	CU_ASSERT_TRUE(dedup_index_remove(&ix, &e[0]));
	CU_ASSERT_EQUAL(slot_of(&ix, &e[0]), -1);
	CU_ASSERT_EQUAL(slot_of(&ix, &e[1]), 63);
	CU_ASSERT_EQUAL(slot_of(&ix, &e[2]), 0);
	CU_ASSERT_EQUAL(slot_of(&ix, &e[3]), 1);
	CU_ASSERT_EQUAL(slot_of(&ix, &x), 2);
	CU_ASSERT_EQUAL(slot_of(&ix, &e[4]), 3);
	CU_ASSERT_EQUAL(slot_of(&ix, &w), 4);
	CU_ASSERT_EQUAL(ix.used[5], 0);
	CU_ASSERT_EQUAL(ix.count, 6);

	/* remove_if across the wrap: the rest of the e keys go, x and w stay */
	CU_ASSERT_EQUAL(dedup_index_remove_if(&ix, drop_hash_in, h63), 4);
	CU_ASSERT_EQUAL(ix.count, 2);
	CU_ASSERT_EQUAL(slot_of(&ix, &x), 0);
	CU_ASSERT_EQUAL(slot_of(&ix, &w), 4);
	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(count_key(&ix, h63[i], 0), 0);
	dedup_index_free(&ix);
}

#define GROWTH_N 100000

static void test_growth(void)
{
	struct dedup_index ix;
	struct dedup_index_entry *all = calloc(GROWTH_N, sizeof(*all));
	uint64_t seed = 12345;
	size_t missing = 0, failed = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(all);
	CU_ASSERT_EQUAL_FATAL(dedup_index_init(&ix, 0), 0);
	for (uint32_t i = 0; i < GROWTH_N; i++) {
		uint64_t r = rng_next(&seed);

		all[i] = mk(rng_next(&seed), (uint32_t)(r & 7), i, r >> 3);
		if (dedup_index_insert(&ix, &all[i]) < 0)
			failed++;
	}
	CU_ASSERT_EQUAL(failed, 0);
	CU_ASSERT_EQUAL(ix.count, GROWTH_N);
	/* 100000 / 0.7 = 142858 slots needed -> 2^18 */
	CU_ASSERT_EQUAL(ix.capacity, 262144);
	CU_ASSERT_TRUE(load_ok(&ix));
	for (uint32_t i = 0; i < GROWTH_N; i++)
		if (count_exact(&ix, &all[i]) != 1)
			missing++;
	CU_ASSERT_EQUAL(missing, 0);
	/* the used map agrees with count */
	size_t used = 0;
	for (size_t i = 0; i < ix.capacity; i++)
		used += ix.used[i] != 0;
	CU_ASSERT_EQUAL(used, GROWTH_N);
	dedup_index_free(&ix);
	free(all);
}

/*
 * Stress against a reference model.  50 keys, most engineered to pile up
 * in a 1024-slot table (and so at every smaller capacity too): 16 share
 * home slot 1023 and wrap round, 8 have home 0 right behind them (entries
 * at their home just past the wrap must not be moved), 12 share home 100
 * and 6 home 101 (interleaved clusters, which the wrapping one runs into
 * once the table fills); 4 are random and 4 reuse the first hash under
 * other domains.  Values are drawn from 4 x 3 choices, so identical
 * entries are common and remove must take exactly one of them.
 */
#define ST_KEYS 50
#define ST_CAP 1024
#define ST_MAX 600	/* live entries at the peak: fits 1024 at 70% */
#define ST_OPS 200000
#define ST_BATCH 1000
#define ST_A 4
#define ST_B 3

struct st_key {
	uint64_t hash;
	uint32_t domain;
};

struct st_ref {
	struct dedup_index_entry e;
	unsigned key;
};

struct st_state {
	struct dedup_index ix;
	struct st_key keys[ST_KEYS];
	struct st_ref ref[ST_MAX + 1];
	size_t nref;
	uint64_t seed;
	size_t bad;		/* remove() disagreeing with the model */
};

static int st_make_keys(struct st_state *st)
{
	static const struct { size_t home, n; } groups[] = {
		{ ST_CAP - 1, 16 }, { 0, 8 }, { 100, 12 }, { 101, 6 },
	};
	uint64_t h[16];
	size_t n = 0;

	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		if (find_colliding(ST_CAP, groups[g].home, &st->seed, h,
				   groups[g].n) < 0)
			return -1;
		for (size_t i = 0; i < groups[g].n; i++)
			st->keys[n++] = (struct st_key){ h[i], 0 };
	}
	for (uint32_t d = 1; d <= 4; d++)
		st->keys[n++] = (struct st_key){ rng_next(&st->seed), d };
	for (uint32_t d = 1; d <= 4; d++)
		st->keys[n++] = (struct st_key){ st->keys[0].hash, d };
	return n == ST_KEYS ? 0 : -1;
}

static struct st_ref st_random_entry(struct st_state *st)
{
	uint64_t r = rng_next(&st->seed);
	struct st_ref x;

	x.key = (unsigned)(r % ST_KEYS);
	r /= ST_KEYS;
	x.e = mk(st->keys[x.key].hash, st->keys[x.key].domain,
		 (uint32_t)(r % ST_A), (r / ST_A) % ST_B);
	return x;
}

static long st_ref_find(const struct st_state *st, const struct st_ref *x)
{
	for (size_t i = 0; i < st->nref; i++)
		if (st->ref[i].key == x->key && st->ref[i].e.a == x->e.a &&
		    st->ref[i].e.b == x->e.b)
			return (long)i;
	return -1;
}

static void st_ref_del(struct st_state *st, size_t i)
{
	st->ref[i] = st->ref[--st->nref];
}

/* The table holds exactly the model's multiset, all reachable by lookup. */
static void st_check(struct st_state *st)
{
	unsigned want[ST_KEYS][ST_A][ST_B] = { 0 }, got[ST_KEYS][ST_A][ST_B] = { 0 };
	const struct dedup_index_entry *hit;
	size_t found = 0, used = 0, strays = 0;

	for (size_t i = 0; i < st->nref; i++)
		want[st->ref[i].key][st->ref[i].e.a][st->ref[i].e.b]++;
	for (unsigned k = 0; k < ST_KEYS; k++) {
		size_t cursor = 0;

		while ((hit = dedup_index_next(&st->ix, st->keys[k].hash,
					       st->keys[k].domain, &cursor))) {
			if (hit->a >= ST_A || hit->b >= ST_B) {
				strays++;
				continue;
			}
			got[k][hit->a][hit->b]++;
			found++;
		}
	}
	for (size_t i = 0; i < st->ix.capacity; i++)
		used += st->ix.used[i] != 0;
	CU_ASSERT_EQUAL(strays, 0);
	CU_ASSERT_EQUAL(memcmp(want, got, sizeof(want)), 0);
	CU_ASSERT_EQUAL(st->ix.count, st->nref);
	CU_ASSERT_EQUAL(found, st->nref);	/* nothing unreachable */
	CU_ASSERT_EQUAL(used, st->nref);
	CU_ASSERT_TRUE(load_ok(&st->ix));
	CU_ASSERT_EQUAL(st->bad, 0);
}

static void st_insert(struct st_state *st)
{
	struct st_ref x = st_random_entry(st);

	if (dedup_index_insert(&st->ix, &x.e) < 0) {
		st->bad++;
		return;
	}
	st->ref[st->nref++] = x;
}

/* Mostly remove something present; sometimes something random, which may
 * or may not be there. */
static void st_remove(struct st_state *st)
{
	struct st_ref x;
	long i;

	if (st->nref && rng_next(&st->seed) % 4) {
		i = (long)(rng_next(&st->seed) % st->nref);
		x = st->ref[i];
	} else {
		x = st_random_entry(st);
		i = st_ref_find(st, &x);
	}
	if (dedup_index_remove(&st->ix, &x.e) != (i >= 0))
		st->bad++;
	if (i >= 0)
		st_ref_del(st, (size_t)i);
}

static bool drop_a(const struct dedup_index_entry *e, void *opaque)
{
	return e->a == *(const uint32_t *)opaque;
}

static void st_remove_if(struct st_state *st, uint32_t a)
{
	size_t expect = 0;

	for (size_t i = 0; i < st->nref;) {
		if (st->ref[i].e.a == a) {
			st_ref_del(st, i);
			expect++;
		} else {
			i++;
		}
	}
	if (dedup_index_remove_if(&st->ix, drop_a, &a) != expect)
		st->bad++;
}

static void test_stress(void)
{
	struct st_state *st = calloc(1, sizeof(*st));
	bool filling = true;
	unsigned cycles = 0;
	size_t max_cap = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	st->seed = 777;
	CU_ASSERT_EQUAL_FATAL(st_make_keys(st), 0);
	CU_ASSERT_EQUAL_FATAL(dedup_index_init(&st->ix, 0), 0);
	for (unsigned op = 1; op <= ST_OPS; op++) {
		unsigned p = (unsigned)(rng_next(&st->seed) % 10);

		if (st->nref < ST_MAX && (filling ? p < 7 : p < 3))
			st_insert(st);
		else
			st_remove(st);
		if (op % 25000 == 0)
			st_remove_if(st, op / 25000 % ST_A);
		if (op % ST_BATCH == 0)
			st_check(st);
		if (st->ix.capacity > max_cap)
			max_cap = st->ix.capacity;
		if (filling && st->nref == ST_MAX) {
			filling = false;
			st_check(st);
		} else if (!filling && st->nref == 0) {
			/* start over from a small table: regrow with the pile-ups */
			st_check(st);
			dedup_index_free(&st->ix);
			CU_ASSERT_EQUAL_FATAL(dedup_index_init(&st->ix, 0), 0);
			filling = true;
			cycles++;
		}
	}
	st_check(st);
	/* the run really did fill up to the engineered size and drain, often */
	CU_ASSERT_EQUAL(max_cap, ST_CAP);
	CU_ASSERT(cycles >= 10);
	dedup_index_free(&st->ix);
	free(st);
}

struct drop_ctx {
	uint32_t victim;
	size_t calls;
};

static bool drop_counted(const struct dedup_index_entry *e, void *opaque)
{
	struct drop_ctx *c = opaque;

	c->calls++;
	return e->a == c->victim;
}

static void test_remove_if(void)
{
	struct dedup_index ix;
	struct drop_ctx ctx = { .victim = 3 };
	struct dedup_index_entry e;
	size_t found = 0, lost = 0;

	CU_ASSERT_EQUAL_FATAL(dedup_index_init(&ix, 0), 0);
	CU_ASSERT_EQUAL(dedup_index_remove_if(&ix, drop_counted, &ctx), 0);
	CU_ASSERT_EQUAL(ctx.calls, 0);
	/* 20 hashes x 2 domains: 25 entries per key, a = i % 7, b unique */
	for (uint32_t i = 0; i < 1000; i++) {
		e = mk(i % 20, i / 20 % 2, i % 7, i);
		CU_ASSERT_EQUAL(dedup_index_insert(&ix, &e), 0);
	}
	ctx.victim = 7;		/* drops nothing, but sees everything once */
	CU_ASSERT_EQUAL(dedup_index_remove_if(&ix, drop_counted, &ctx), 0);
	CU_ASSERT_EQUAL(ctx.calls, 1000);
	CU_ASSERT_EQUAL(ix.count, 1000);

	ctx.victim = 3;
	ctx.calls = 0;
	/* i % 7 == 3 for i = 3, 10, ..., 997: 143 of them */
	CU_ASSERT_EQUAL(dedup_index_remove_if(&ix, drop_counted, &ctx), 143);
	CU_ASSERT_EQUAL(ctx.calls, 1000);	/* each entry judged once */
	CU_ASSERT_EQUAL(ix.count, 857);
	for (uint32_t i = 0; i < 1000; i++) {
		e = mk(i % 20, i / 20 % 2, i % 7, i);
		if (count_exact(&ix, &e) != (i % 7 == 3 ? 0u : 1u))
			lost++;
	}
	CU_ASSERT_EQUAL(lost, 0);
	for (uint64_t h = 0; h < 20; h++) {
		for (uint32_t d = 0; d < 2; d++) {
			const struct dedup_index_entry *hit;
			size_t cursor = 0;

			while ((hit = dedup_index_next(&ix, h, d, &cursor))) {
				CU_ASSERT_NOT_EQUAL(hit->a, 3);
				found++;
			}
		}
	}
	CU_ASSERT_EQUAL(found, 857);
	CU_ASSERT_TRUE(load_ok(&ix));
	dedup_index_free(&ix);
}

void unit_add_index_suite(void)
{
	CU_pSuite s = CU_add_suite("index", NULL, NULL);

	CU_add_test(s, "init and free", test_init_free);
	CU_add_test(s, "single entries", test_single);
	CU_add_test(s, "duplicate keys", test_duplicates);
	CU_add_test(s, "remove", test_remove);
	CU_add_test(s, "backward shift at the wrap", test_wraparound);
	CU_add_test(s, "growth to 100k", test_growth);
	CU_add_test(s, "stress against a model", test_stress);
	CU_add_test(s, "remove_if", test_remove_if);
}
