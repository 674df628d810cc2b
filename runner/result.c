/*
 * result.c - a run's results when the run was split over processes: one
 * worker per trust domain (supervisor/) each fills its own struct
 * run_result in memory it shares with the supervisor, which checks each
 * (a worker is less trusted than the supervisor: its memory may hold
 * anything) and adds them up into the one table `foldvm run` prints.
 */
#include <stdio.h>
#include <string.h>
#include "runner/figures.h"
#include "runner/runner.h"

#define TERMINATE(a) ((a)[sizeof(a) - 1] = '\0')

static void report_check(struct guest_report *r)
{
	TERMINATE(r->name);
	TERMINATE(r->reason);
	TERMINATE(r->error);
	if ((unsigned)r->state > GUEST_FAILED)
		r->state = GUEST_FAILED;
}

void run_result_check(struct run_result *res)
{
	if (res->nr > CLI_MAX_VMS)
		res->nr = CLI_MAX_VMS;
	if (res->nr_samples > RUN_MAX_SAMPLES)
		res->nr_samples = RUN_MAX_SAMPLES;
	for (unsigned i = 0; i < res->nr; i++)
		report_check(&res->reports[i]);
}

bool run_result_all_ok(const struct run_result *res)
{
	for (unsigned i = 0; i < res->nr; i++)
		if (res->reports[i].created && !res->reports[i].ok)
			return false;
	return true;
}

void run_result_lost(struct run_result *res, const char *why)
{
	for (unsigned i = 0; i < res->nr; i++) {
		struct guest_report *r = &res->reports[i];

		if (!r->created || (r->ok && !guest_state_is_live(r->state)))
			continue;
		r->ok = false;
		if (guest_state_is_live(r->state)) {
			r->state = GUEST_FAILED;
			snprintf(r->reason, sizeof(r->reason), "%s", why);
		}
		snprintf(r->error, sizeof(r->error), "%s", why);
	}
}

static void rollup_add(struct procstat_rollup *d, const struct procstat_rollup *s)
{
	d->rss += s->rss;
	d->pss += s->pss;
	d->pss_anon += s->pss_anon;
	d->pss_file += s->pss_file;
	d->pss_shmem += s->pss_shmem;
	d->anonymous += s->anonymous;
	d->shared_clean += s->shared_clean;
	d->shared_dirty += s->shared_dirty;
	d->private_clean += s->private_clean;
	d->private_dirty += s->private_dirty;
}

static void snapshot_add(struct mem_snapshot *d, const struct mem_snapshot *s)
{
	if (!s->taken)
		return;
	d->t = d->taken && d->t > s->t ? d->t : s->t;
	d->taken = true;
	rollup_add(&d->rollup, &s->rollup);
	figures_engine_add(&d->host, &s->host);
}

/* The savings over time of both: at each sample time of either, the last
 * value each had reached by then (the workers share the supervisor's
 * clock, so their times compare). */
static void samples_add(struct run_result *d, const struct run_result *s)
{
	double t[RUN_MAX_SAMPLES];
	uint64_t v[RUN_MAX_SAMPLES];
	unsigned i = 0, k = 0, n = 0;
	uint64_t dv = 0, sv = 0;

	while ((i < d->nr_samples || k < s->nr_samples) && n < RUN_MAX_SAMPLES) {
		bool take_d = k >= s->nr_samples ||
			      (i < d->nr_samples && d->sample_t[i] <= s->sample_t[k]);

		if (take_d) {
			t[n] = d->sample_t[i];
			dv = d->sample_saved[i++];
		} else {
			t[n] = s->sample_t[k];
			sv = s->sample_saved[k++];
		}
		v[n++] = dv + sv;
	}
	memcpy(d->sample_t, t, n * sizeof(t[0]));
	memcpy(d->sample_saved, v, n * sizeof(v[0]));
	d->nr_samples = n;
}

unsigned run_result_merge(struct run_result *dst, const struct run_result *src)
{
	unsigned dropped = 0;

	for (unsigned i = 0; i < src->nr; i++) {
		if (!src->reports[i].created)
			continue;
		if (dst->nr == CLI_MAX_VMS) {
			dropped++;
			continue;
		}
		dst->reports[dst->nr++] = src->reports[i];
	}
	dst->interrupted |= src->interrupted;
	dst->dedup |= src->dedup;
	snapshot_add(&dst->first, &src->first);
	snapshot_add(&dst->last, &src->last);
	dst->syncs = dst->syncs > src->syncs ? dst->syncs : src->syncs;
	samples_add(dst, src);
	figures_engine_add(&dst->final_host, &src->final_host);
	return dropped;
}
