/*
 * figures.c - adding up the figures of several processes (figures.h).
 */
#include "runner/figures.h"

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

void figures_engine_add(struct dedup_host_stats *d, const struct dedup_host_stats *s)
{
	d->guests += s->guests;
	d->store_frames += s->store_frames;
	d->store_bytes += s->store_bytes;
	d->saved_bytes += s->saved_bytes;
	d->pages_in_place += s->pages_in_place;
	d->vma_budget += s->vma_budget;
	d->vmas_used += s->vmas_used;
	d->max_map_count = max_u64(d->max_map_count, s->max_map_count);
	d->budget_exhausted |= s->budget_exhausted;
	d->passes += s->passes;
	d->cpu_ns += s->cpu_ns;
	d->merges += s->merges;
	d->unmerges += s->unmerges;
	d->pass_cpu_max_ns = max_u64(d->pass_cpu_max_ns, s->pass_cpu_max_ns);
	d->pass_cpu_last_ns = max_u64(d->pass_cpu_last_ns, s->pass_cpu_last_ns);
	d->pressure_known |= s->pressure_known;
	d->pressure_paused |= s->pressure_paused;
	d->pressure_cgroup |= s->pressure_cgroup;
	d->pressure_some_avg10 = (uint32_t)max_u64(d->pressure_some_avg10,
						   s->pressure_some_avg10);
	d->pressure_full_avg10 = (uint32_t)max_u64(d->pressure_full_avg10,
						   s->pressure_full_avg10);
	d->pressure_pct = (unsigned)max_u64(d->pressure_pct, s->pressure_pct);
	d->pressure_pauses += s->pressure_pauses;
}

void figures_host_add(struct host_figures *d, const struct host_figures *s)
{
	d->enabled |= s->enabled;
	d->rss += s->rss;
	d->pss += s->pss;
	figures_engine_add(&d->engine, &s->engine);
}

void figures_ideal_add(struct dedup_ideal *d, const struct dedup_ideal *s)
{
	d->pages += s->pages;
	d->zero_pages += s->zero_pages;
	d->nonzero_pages += s->nonzero_pages;
	d->distinct += s->distinct;
	d->ideal_bytes += s->ideal_bytes;
}

void figures_census_add(struct dedup_census *d, const struct dedup_census *s)
{
	d->pages += s->pages;
	d->zero += s->zero;
	d->same_address += s->same_address;
	for (unsigned k = 0; k < CENSUS_RUNS; k++)
		d->run[k] += s->run[k];
	d->unique += s->unique;
}
