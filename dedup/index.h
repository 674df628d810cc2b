/*
 * index.h - the content index: an open-addressing hash table from
 * (content hash, trust domain) to a value.
 *
 * The engine keeps two of them, as KSM keeps two trees:
 *  - the stable index: content of a store frame -> frame number;
 *  - the candidate index: content of a guest page seen once and not merged
 *    yet -> (guest, page number), waiting for a twin.
 * Several entries may share a key (a hash collision, or two frames with the
 * same content in a race); lookups walk every entry with the key, and the
 * engine confirms equality byte for byte before it merges anything.
 * Linear probing with backward-shift deletion: no tombstones, so a table
 * that churns for days does not degrade.  Not thread-safe: the engine's
 * scanner thread owns it.
 */
#ifndef FOLDVM_DEDUP_INDEX_H
#define FOLDVM_DEDUP_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dedup_index_entry {
	uint64_t hash;     /* XXH3-64 of the page */
	uint32_t domain;   /* trust domain id */
	uint32_t a;        /* value: frame number, or guest id */
	uint64_t b;        /* value: unused (0) for frames, or page number */
};

struct dedup_index {
	struct dedup_index_entry *slots;
	uint8_t *used;     /* 1 when the slot holds an entry */
	size_t capacity;   /* power of two */
	size_t count;
};

/* An empty table with room for at least `expected` entries before growing. */
int dedup_index_init(struct dedup_index *ix, size_t expected);
void dedup_index_free(struct dedup_index *ix);

/* Add an entry (duplicates allowed).  Grows at 70% load.  -1 on ENOMEM. */
int dedup_index_insert(struct dedup_index *ix, const struct dedup_index_entry *e);

/* Iterate entries with (hash, domain): start with *cursor = 0; returns the
 * next match or NULL.  The table must not change during the iteration. */
const struct dedup_index_entry *dedup_index_next(const struct dedup_index *ix,
						 uint64_t hash, uint32_t domain,
						 size_t *cursor);

/* Remove the one entry equal in every field to *e; true if found. */
bool dedup_index_remove(struct dedup_index *ix, const struct dedup_index_entry *e);

/* Remove every entry for which drop(e, opaque) is true (e.g. all of one
 * guest's candidates when it is destroyed); returns how many. */
size_t dedup_index_remove_if(struct dedup_index *ix,
			     bool (*drop)(const struct dedup_index_entry *e, void *opaque),
			     void *opaque);

#endif
