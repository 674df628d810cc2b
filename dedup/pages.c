/*
 * pages.c - a guest's pages as the engine's other files find and queue
 * them: a guest by its id, a page's page-table entry, and the todo list
 * of the next pass.  A leaf: it calls no other file of the engine.
 */
#include "dedup/engine_internal.h"

struct dedup_guest *guest_by_id(struct dedup_engine *e, uint32_t id)
{
	for (struct dedup_guest *g = e->guests; g; g = g->next)
		if (g->id == id)
			return g;
	return NULL;
}

void guest_page_entry(struct dedup_engine *e, struct dedup_guest *g,
		      uint64_t gfn, struct procstat_page *out)
{
	procstat_pagemap_read(&e->pagemap, gmem_page_hva(g->gm, gfn), out, NULL);
}

void page_requeue(struct dedup_guest *g, uint64_t gfn)
{
	g->todo[gfn / 64] |= 1ull << (gfn % 64);
}

void guest_requeue_all(struct dedup_guest *g)
{
	for (uint64_t w = 0; w < g->nwords; w++)
		g->todo[w] = ~0ull;
	if (g->npages % 64)
		g->todo[g->nwords - 1] = (1ull << (g->npages % 64)) - 1;
}
