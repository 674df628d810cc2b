/*
 * query.c - what front-ends see of a run: snapshot records of its guests
 * (copies, taken under the run's lock) and held guests (pins) for work
 * that must not run under the lock.
 *
 * A pin is a count on the slot (guest_slot.pins, under the lock).  runner_reap
 * leaves a pinned slot for a later round and the teardown of a run waits
 * for every pin (runner.c: driver_unpinned), so a pinned guest is never
 * destroyed under its holder.  Pins are taken only on slots that are not
 * being destroyed, so a destroyed guest is never pinned again.
 */
#include <stdio.h>
#include <string.h>
#include "lib/memroom.h"
#include "runner/run_ctx.h"

/* Lock held, slot_has_guest(d). */
static void guest_info_locked(struct run_ctx *ctx, struct guest_slot *d,
			      struct runner_guest_info *in)
{
	struct guest *g = d->guest;
	const uint8_t *hva = gmem_page_hva(&g->mem, 0);
	int step = __atomic_load_n(&d->cur_step, __ATOMIC_RELAXED);

	memset(in, 0, sizeof(*in));
	snprintf(in->name, sizeof(in->name), "%s", d->spec.cfg.name);
	snprintf(in->uuid, sizeof(in->uuid), "%s", d->spec.uuid);
	snprintf(in->domain, sizeof(in->domain), "%s",
		 guest_config_domain(&g->cfg));
	in->state = guest_get_state(g, NULL, 0);
	in->destroying = d->destroying;
	in->mem_size = d->spec.cfg.mem_size;
	in->nr_vcpus = d->spec.cfg.nr_vcpus;
	in->step = step >= 0 && (unsigned)step < d->spec.nr_steps ?
		   step_name(d->spec.steps[step].kind) : "done";
	/* The engine takes its own locks: quick, and dedup_guest stays
	 * valid while the lock keeps the guest. */
	in->dedup = g->dedup_guest != NULL;
	if (in->dedup) {
		in->merging = dedup_guest_merging(ctx->st->dedup, g->dedup_guest);
		dedup_get_guest_stats(ctx->st->dedup, g->dedup_guest, &in->dstats);
	}
	if (hva) {
		in->ram_start = (uintptr_t)hva;
		in->ram_end = (uintptr_t)hva + g->mem.size;
	}
	in->rep = *d->rep;
	in->balloon = g->balloon != NULL;
	if (g->balloon)
		virtio_balloon_counters(g->balloon, &in->balloon_c);
}

unsigned runner_snapshot_guests(struct run_ctx *ctx,
				struct runner_guest_info *out, unsigned max)
{
	unsigned n = 0;

	pthread_mutex_lock(&ctx->st->lock);
	for (unsigned i = 0; i < CLI_MAX_VMS && n < max; i++)
		/* a slot being released is as good as gone */
		if (slot_has_guest(&ctx->st->slot[i]))
			guest_info_locked(ctx, &ctx->st->slot[i], &out[n++]);
	pthread_mutex_unlock(&ctx->st->lock);
	return n;
}

/* Lock held: pin a live slot that is not being destroyed. */
static bool guest_pin_locked(struct guest_slot *d)
{
	if (!slot_has_guest(d) || d->destroying)
		return false;
	d->pins++;
	return true;
}

struct guest_slot *runner_guest_get(struct run_ctx *ctx, const char *name,
				    struct runner_guest_info *info,
				    struct fv_error *err)
{
	struct guest_slot *d;

	pthread_mutex_lock(&ctx->st->lock);
	d = runner_find_locked(ctx, name);
	if (d && !guest_pin_locked(d))
		d = NULL;
	if (d && info)
		guest_info_locked(ctx, d, info);
	pthread_mutex_unlock(&ctx->st->lock);
	if (!d)
		fv_err(err, FV_E_INVAL, "guest '%s' is being destroyed", name);
	return d;
}

unsigned runner_guest_get_all(struct run_ctx *ctx, struct guest_slot **out,
			      struct runner_guest_info *info, unsigned max)
{
	unsigned n = 0;

	pthread_mutex_lock(&ctx->st->lock);
	for (unsigned i = 0; i < CLI_MAX_VMS && n < max; i++) {
		struct guest_slot *d = &ctx->st->slot[i];

		if (!guest_pin_locked(d))
			continue;
		if (info)
			guest_info_locked(ctx, d, &info[n]);
		out[n++] = d;
	}
	pthread_mutex_unlock(&ctx->st->lock);
	return n;
}

void runner_guest_put(struct guest_slot *d)
{
	struct run_state *st = d->ctx->st;

	pthread_mutex_lock(&st->lock);
	if (--d->pins == 0)
		pthread_cond_broadcast(&st->unpinned);
	pthread_mutex_unlock(&st->lock);
}

struct guest *runner_guest(struct guest_slot *d)
{
	return d->guest;
}

int runner_guest_set_merging(struct guest_slot *d, bool on, struct fv_error *err)
{
	struct run_state *st = d->ctx->st;
	struct guest *g = d->guest;
	int r = 0;

	/* Under the lock, so a snapshot sees dedup_guest and the report
	 * change together (joining the engine is quick). */
	pthread_mutex_lock(&st->lock);
	if (g->dedup_guest) {
		dedup_guest_set_merging(st->dedup, g->dedup_guest, on);
	} else if (on) {
		g->cfg.dedup = true;
		r = guest_join_dedup(g, st->dedup, err);
		if (r)
			g->cfg.dedup = false;
		else
			d->rep->dedup = true;
	}
	pthread_mutex_unlock(&st->lock);
	return r;
}

int runner_guests_unmerge(struct guest_slot **ds, unsigned n, uint64_t rate,
			  uint64_t *pages, struct fv_error *err)
{
	struct run_state *st;
	uint64_t need = 0, room;
	struct mem_room mr;
	int r = 0;

	*pages = 0;
	if (!n)
		return 0;
	st = ds[0]->ctx->st;
	/* Under the run's lock, as dedup-set: a guest may be joining the
	 * engine meanwhile (its dedup_guest changes under it). */
	pthread_mutex_lock(&st->lock);
	/* What the copies take at most: a page for every page shared (less
	 * in truth: frames only these guests held go back to the host). */
	for (unsigned i = 0; i < n; i++) {
		struct dedup_guest_stats s;

		if (!ds[i]->guest->dedup_guest)
			continue;
		dedup_get_guest_stats(st->dedup, ds[i]->guest->dedup_guest, &s);
		need += (s.pages_merged + s.pages_zero) * 4096;
	}
	if (need && memroom_read(&mr, err)) {
		r = -1;
	} else if (need && need > (room = memroom_bytes(&mr))) {
		r = fv_err(err, FV_E_NOMEM,
			   "unmerging needs up to %llu MiB and only %llu MiB %s; nothing was unmerged",
			   (unsigned long long)(need >> 20), (unsigned long long)(room >> 20),
			   mr.cgroup_room < mr.available ? "is left under the cgroup limit"
							 : "is available (MemAvailable)");
	} else {
		for (unsigned i = 0; i < n; i++)
			if (ds[i]->guest->dedup_guest)
				*pages += dedup_guest_unmerge(st->dedup, ds[i]->guest->dedup_guest,
							      rate);
	}
	pthread_mutex_unlock(&st->lock);
	return r;
}

struct dedup_engine *runner_dedup(struct run_ctx *ctx)
{
	return ctx->st->dedup;
}
