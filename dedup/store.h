/*
 * store.h - the canonical-frame store: one memfd whose pages back merged
 * guest pages.
 *
 * A merged guest page is a MAP_PRIVATE mapping of one store page, so the
 * guest reads the shared frame and its first write makes the kernel copy it.
 * Frames are reference-counted by the engine (one reference per guest page
 * mapping the frame that has not been copied-on-write yet); when the last
 * reference goes, the frame is punched out of the memfd so its memory
 * really returns to the host.  A frame is always a fresh store page, never
 * a page that belonged to a guest.
 */
#ifndef FOLDVM_DEDUP_STORE_H
#define FOLDVM_DEDUP_STORE_H

#include <stdint.h>
#include "lib/error.h"

#define STORE_NO_FRAME UINT32_MAX

struct dedup_store {
	int fd;              /* the memfd */
	uint8_t *map;        /* MAP_SHARED view of the whole memfd */
	uint64_t max_frames; /* size of the memfd, in frames */
	uint32_t *refs;      /* per frame: references (0 = free) */
	uint32_t *free_list; /* stack of freed frame numbers */
	uint64_t nr_free;
	uint64_t next;       /* frames [next, max) were never used */
	uint64_t used;       /* frames holding content (refs > 0) */
	uint64_t allocs, frees;
};

/* A store of at most max_frames frames (sparse: costs nothing until used). */
int store_init(struct dedup_store *s, uint64_t max_frames, struct fv_error *err);
void store_destroy(struct dedup_store *s);

/* A fresh frame holding a copy of `page` (4 KiB), refs = 0.  Prefers
 * `hint` when it is free, so consecutive guest pages can get consecutive
 * frames (one VMA for the run).  STORE_NO_FRAME when full. */
uint32_t store_alloc(struct dedup_store *s, const void *page, uint32_t hint);

/* Take / drop a reference; dropping the last frees the frame (punch hole). */
void store_get(struct dedup_store *s, uint32_t frame);
void store_put(struct dedup_store *s, uint32_t frame);

/* Give back a frame that never got a reference (a merge that failed). */
void store_discard(struct dedup_store *s, uint32_t frame);

static inline const uint8_t *store_frame(const struct dedup_store *s, uint32_t f)
{
	return s->map + (uint64_t)f * 4096;
}

static inline uint64_t store_offset(uint32_t f)
{
	return (uint64_t)f * 4096;
}

/* Drop the engine's own view of every frame (its PTEs only; the frames
 * stay in the memfd), so that the kernel's Pss of a guest's memory splits a
 * frame only among the guests that map it. */
void store_unmap_view(struct dedup_store *s);

/* Bytes the memfd really holds (from fstat st_blocks, the kernel's word). */
uint64_t store_resident_bytes(const struct dedup_store *s);

#endif
