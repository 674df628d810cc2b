/*
 * index.c - the content index: open addressing, linear probing,
 * backward-shift deletion (Knuth 6.4, Algorithm R).
 *
 * The invariant every function relies on: an entry whose home slot is h
 * and which sits in slot s has every slot from h to s (cyclically) in use.
 * Insertion keeps it trivially; deletion keeps it by pulling later entries
 * of the cluster back into the hole instead of leaving a tombstone.
 * The load factor stays at or below 70%, so there is always an unused
 * slot and every probe walk terminates.
 */
#include <stdlib.h>
#include <string.h>
#include "dedup/index.h"

#define INDEX_MIN_CAPACITY 64

/*
 * Home slot of a key.  The hash is usually XXH3 and already well mixed,
 * but the domain is a small integer and tests (and bugs) feed small
 * hashes, so the pair goes through a splitmix64 finaliser before masking.
 */
static size_t index_home(size_t capacity, uint64_t hash, uint32_t domain)
{
	uint64_t x = hash ^ ((uint64_t)domain * 0x9e3779b97f4a7c15ull);

	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return (size_t)x & (capacity - 1);
}

/* Most entries a table of this capacity may hold: floor(0.7 * capacity),
 * computed without overflowing. */
static size_t index_max_load(size_t capacity)
{
	return capacity / 10 * 7 + capacity % 10 * 7 / 10;
}

static bool same_key(const struct dedup_index_entry *e, uint64_t hash,
		     uint32_t domain)
{
	return e->hash == hash && e->domain == domain;
}

static bool same_entry(const struct dedup_index_entry *x,
		       const struct dedup_index_entry *y)
{
	return x->hash == y->hash && x->domain == y->domain &&
	       x->a == y->a && x->b == y->b;
}

/* Smallest power-of-two capacity (>= the minimum) that holds n entries;
 * 0 if there is none. */
static size_t index_capacity_for(size_t n)
{
	size_t cap = INDEX_MIN_CAPACITY;

	while (index_max_load(cap) < n) {
		if (cap > SIZE_MAX / 2)
			return 0;
		cap *= 2;
	}
	return cap;
}

/* Store e in the first unused slot of its probe sequence; the caller has
 * made sure there is room. */
static void index_place(struct dedup_index *ix,
			const struct dedup_index_entry *e)
{
	size_t mask = ix->capacity - 1;
	size_t i = index_home(ix->capacity, e->hash, e->domain);

	while (ix->used[i])
		i = (i + 1) & mask;
	ix->slots[i] = *e;
	ix->used[i] = 1;
	ix->count++;
}

/* Rehash into `capacity` slots.  On allocation failure the old arrays are
 * untouched, so the table stays valid. */
static int index_resize(struct dedup_index *ix, size_t capacity)
{
	struct dedup_index old = *ix;

	ix->slots = calloc(capacity, sizeof(*ix->slots));
	ix->used = calloc(capacity, sizeof(*ix->used));
	if (!ix->slots || !ix->used) {
		free(ix->slots);
		free(ix->used);
		*ix = old;
		return -1;
	}
	ix->capacity = capacity;
	ix->count = 0;
	for (size_t i = 0; i < old.capacity; i++)
		if (old.used[i])
			index_place(ix, &old.slots[i]);
	free(old.slots);
	free(old.used);
	return 0;
}

int dedup_index_init(struct dedup_index *ix, size_t expected)
{
	size_t cap = index_capacity_for(expected);

	memset(ix, 0, sizeof(*ix));
	if (!cap)
		return -1;
	/* a zeroed struct is an empty table of capacity 0; resize from it */
	return index_resize(ix, cap);
}

void dedup_index_free(struct dedup_index *ix)
{
	free(ix->slots);
	free(ix->used);
	memset(ix, 0, sizeof(*ix));
}

/* A zeroed (or freed) table is usable too: the first insert sizes it. */
int dedup_index_insert(struct dedup_index *ix, const struct dedup_index_entry *e)
{
	if (ix->count + 1 > index_max_load(ix->capacity)) {
		size_t cap = INDEX_MIN_CAPACITY;

		if (ix->capacity > SIZE_MAX / 2)
			return -1;
		if (ix->capacity)
			cap = ix->capacity * 2;
		if (index_resize(ix, cap) < 0)
			return -1;
	}
	index_place(ix, e);
	return 0;
}

/*
 * Cursor encoding: *cursor is the offset, along the probe sequence from the
 * key's home slot, of the next slot to examine.  0 starts at the home slot;
 * after returning the entry at offset k the cursor is k + 1.  Once the walk
 * reaches an unused slot (or has seen every slot) the cursor is left there
 * and further calls keep returning NULL.
 */
const struct dedup_index_entry *dedup_index_next(const struct dedup_index *ix,
						 uint64_t hash, uint32_t domain,
						 size_t *cursor)
{
	size_t mask, home;

	if (!ix->capacity)
		return NULL;
	mask = ix->capacity - 1;
	home = index_home(ix->capacity, hash, domain);
	for (size_t k = *cursor; k < ix->capacity; k++) {
		size_t i = (home + k) & mask;

		if (!ix->used[i]) {
			*cursor = k;
			return NULL;
		}
		if (same_key(&ix->slots[i], hash, domain)) {
			*cursor = k + 1;
			return &ix->slots[i];
		}
	}
	*cursor = ix->capacity;
	return NULL;
}

/* Is k cyclically in (i, j]? */
static bool cyclic_between(size_t i, size_t k, size_t j)
{
	if (i <= j)
		return i < k && k <= j;
	return i < k || k <= j;
}

/*
 * Empty slot i and close the hole: walk the rest of the cluster; an entry
 * at j whose home is not in (i, j] would become unreachable across the
 * hole, so it moves into the hole and its old slot becomes the hole.
 */
static void index_remove_at(struct dedup_index *ix, size_t i)
{
	size_t mask = ix->capacity - 1;
	size_t j = i;

	for (;;) {
		const struct dedup_index_entry *e;

		j = (j + 1) & mask;
		if (!ix->used[j])
			break;
		e = &ix->slots[j];
		if (cyclic_between(i, index_home(ix->capacity, e->hash, e->domain), j))
			continue;
		ix->slots[i] = *e;
		i = j;
	}
	memset(&ix->slots[i], 0, sizeof(ix->slots[i]));
	ix->used[i] = 0;
	ix->count--;
}

bool dedup_index_remove(struct dedup_index *ix, const struct dedup_index_entry *e)
{
	const struct dedup_index_entry *hit;
	size_t cursor = 0;

	while ((hit = dedup_index_next(ix, e->hash, e->domain, &cursor))) {
		if (same_entry(hit, e)) {
			index_remove_at(ix, (size_t)(hit - ix->slots));
			return true;
		}
	}
	return false;
}

/*
 * In place, no allocation.  The scan starts just after an unused slot s
 * and goes once round the table.  A cluster never spans an unused slot,
 * so a backward shift only pulls entries from slots the scan has not
 * reached yet into the slot it is looking at; the scan re-examines that
 * slot after every removal and so sees each entry exactly once.
 */
size_t dedup_index_remove_if(struct dedup_index *ix,
			     bool (*drop)(const struct dedup_index_entry *e, void *opaque),
			     void *opaque)
{
	size_t mask, s = 0, k = 1, removed = 0;

	if (!ix->count)
		return 0;
	mask = ix->capacity - 1;
	while (ix->used[s])
		s++;
	while (k < ix->capacity) {
		size_t i = (s + k) & mask;

		if (ix->used[i] && drop(&ix->slots[i], opaque)) {
			index_remove_at(ix, i);
			removed++;
			continue;
		}
		k++;
	}
	return removed;
}
