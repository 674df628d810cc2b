/*
 * figures.h - the one rule for adding up the figures of several
 * processes (one worker per trust domain): what a worker reports of its
 * process and its engine, and how the supervisor (host.qmp) and the run's
 * results (result.c) add them up.  Engines of different processes share
 * nothing: counts add up, and so do budgets and the VMAs spent (each
 * process has its own vm.max_map_count to spend); the sysctl itself, the
 * per-pass figures and the pressure readings (host-wide, or the worst
 * cgroup's) take the largest; a flag is set if any process set it.
 */
#ifndef FOLDVM_RUNNER_FIGURES_H
#define FOLDVM_RUNNER_FIGURES_H

#include <stdbool.h>
#include <stdint.h>
#include "dedup/census.h"
#include "dedup/dedup.h"

/* One process's figures (query-dedup-host). */
struct host_figures {
	bool enabled;                   /* it runs a dedup engine */
	uint64_t rss, pss;              /* the process's memory, bytes */
	struct dedup_host_stats engine; /* its engine's (zero unless enabled) */
};

void figures_engine_add(struct dedup_host_stats *d, const struct dedup_host_stats *s);
void figures_host_add(struct host_figures *d, const struct host_figures *s);
/* Domains share nothing, so their censuses add up field by field. */
void figures_ideal_add(struct dedup_ideal *d, const struct dedup_ideal *s);
void figures_census_add(struct dedup_census *d, const struct dedup_census *s);

#endif
