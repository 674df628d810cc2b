/*
 * report.c - the table `foldvm run` prints at the end: one row per guest,
 * the dedup rows and the host summary.
 */
#include <stdio.h>
#include <string.h>
#include "runner/runner.h"

static double cycles_to_us(uint64_t cycles, uint64_t tsc_khz)
{
	return tsc_khz ? (double)cycles * 1000.0 / (double)tsc_khz : 0.0;
}

static double mib(uint64_t bytes)
{
	return (double)bytes / (1024.0 * 1024.0);
}

/* A Linux guest has no content counts or verification: its row says how
 * much it wrote to its console and how it ended. */
static void print_linux_row(const struct guest_report *r, FILE *out)
{
	fprintf(out, "%-12s %7lluM %5u %-9s %8s %8s %8s %8s %14s  kernel: %llu console bytes%s%s\n",
		r->name, (unsigned long long)(r->mem_size >> 20), r->nr_vcpus,
		guest_state_name(r->state), "-", "-", "-", "-", "-",
		(unsigned long long)r->console_bytes, r->reason[0] ? "; " : "",
		r->reason);
}

static void print_guest_row(const struct guest_report *r, FILE *out)
{
	char fw[40] = "-", verify[64];

	if (r->linux_guest) {
		print_linux_row(r, out);
		return;
	}
	if (r->measured)
		snprintf(fw, sizeof(fw), "%.2f/%.2f",
			 cycles_to_us(r->fw_median, r->tsc_khz),
			 cycles_to_us(r->fw_p99, r->tsc_khz));
	if (r->verified)
		snprintf(verify, sizeof(verify), "%s (%llu pages, %llu bad)",
			 r->verify_mismatches ? "MISMATCH" : "OK",
			 (unsigned long long)r->verify_checked,
			 (unsigned long long)r->verify_mismatches);
	else
		snprintf(verify, sizeof(verify), "not run");
	fprintf(out, "%-12s %7lluM %5u %-9s %8llu %8llu %8llu %8llu %14s  %s\n",
		r->name, (unsigned long long)(r->mem_size >> 20),
		r->nr_vcpus, guest_state_name(r->state),
		(unsigned long long)r->pages_zero,
		(unsigned long long)r->pages_shared,
		(unsigned long long)r->pages_blob,
		(unsigned long long)r->pages_unique, fw, verify);
}

/* measure-merging: a first write timed as soon as the pages were merged. */
static void print_merging_line(const struct guest_report *r, FILE *out)
{
	if (!r->created || !r->measured_merging)
		return;
	fprintf(out, "%s: first write as soon as merged (measure-merging): "
		"%.2f/%.2f us median/p99, merged after %.1f s",
		r->name, cycles_to_us(r->mg_median, r->tsc_khz),
		cycles_to_us(r->mg_p99, r->tsc_khz), (double)r->mg_wait_ns / 1e9);
	if (r->mg_merges >= 0)
		fprintf(out, "; %lld engine merges during the writes",
			(long long)r->mg_merges);
	fprintf(out, "\n");
}

/* Per guest: what the kernel says its RAM costs, and the engine's counts. */
static void print_dedup_row(const struct run_result *res,
			    const struct guest_report *r, FILE *out)
{
	const struct dedup_guest_stats *s = &r->dstats;
	char before[24] = "-", mw[40] = "-";

	if (res->syncs >= 2)
		snprintf(before, sizeof(before), "%.1f", mib(r->anon_before));
	if (r->measured_merged)
		snprintf(mw, sizeof(mw), "%.2f/%.2f",
			 cycles_to_us(r->mw_median, r->tsc_khz),
			 cycles_to_us(r->mw_p99, r->tsc_khz));
	fprintf(out, "%-12s %12s %11.1f %9.1f %8llu %8llu %7llu %8llu %14s\n",
		r->name, before, mib(r->anon_after), mib(s->bytes_saved),
		(unsigned long long)s->pages_merged, (unsigned long long)s->pages_zero,
		(unsigned long long)s->frames_referenced,
		(unsigned long long)s->unmerges, mw);
}

/* Seconds from the first sync until the engine had 90% of its final
 * saving (negative when it cannot be told). */
static double time_to_90(const struct run_result *res)
{
	uint64_t final = res->syncs >= 2 ? res->last.host.saved_bytes :
					   res->final_host.saved_bytes;
	double start = res->syncs ? res->first.t : 0.0;

	if (!final)
		return -1.0;
	for (unsigned i = 0; i < res->nr_samples; i++)
		if (res->sample_t[i] >= start &&
		    res->sample_saved[i] * 10 >= final * 9)
			return res->sample_t[i] - start;
	return -1.0;
}

static void print_host_summary(const struct run_result *res, FILE *out)
{
	const struct dedup_host_stats *h = &res->final_host;
	double cpu = (double)h->cpu_ns / 1e9, t90 = time_to_90(res);

	if (res->syncs >= 2) {
		uint64_t b = 0, a = res->last.host.store_bytes, priv = 0;

		for (unsigned i = 0; i < res->nr; i++) {
			if (!res->reports[i].created || !res->reports[i].dedup)
				continue;
			b += res->reports[i].anon_before;
			priv += res->reports[i].anon_after;
		}
		a += priv;
		fprintf(out, "host (kernel): guest memory %.1f MiB before dedup; after: "
			"%.1f MiB private + %.1f MiB store = %.1f MiB: saved %.1f MiB (%.1f%%)\n",
			mib(b), mib(priv), mib(res->last.host.store_bytes), mib(a),
			b > a ? mib(b - a) : 0.0,
			b ? 100.0 * (double)(b > a ? b - a : 0) / (double)b : 0.0);
	}
	fprintf(out, "host (engine): saved %.1f MiB; store %llu frames, %.1f MiB "
		"(home files included); %llu pages merged in place; "
		"%llu merges, %llu unmerges, %llu passes\n",
		mib(h->saved_bytes), (unsigned long long)h->store_frames,
		mib(h->store_bytes), (unsigned long long)h->pages_in_place,
		(unsigned long long)h->merges,
		(unsigned long long)h->unmerges, (unsigned long long)h->passes);
	fprintf(out, "host (engine): scanner CPU %.2f s (%.0f merges per CPU-second); ",
		cpu, cpu > 0 ? (double)h->merges / cpu : 0.0);
	if (t90 >= 0)
		fprintf(out, "90%% of the saving %.1f s after dedup started\n", t90);
	else
		fprintf(out, "time to 90%% not measured\n");
	fprintf(out, "host (engine): VMAs added %llu of a budget of %llu (vm.max_map_count %llu)%s\n",
		(unsigned long long)h->vmas_used, (unsigned long long)h->vma_budget,
		(unsigned long long)h->max_map_count,
		h->budget_exhausted ? ": vma_budget_exhausted, some merges skipped "
				      "(see --max-map-count)" : "");
}

bool runner_print_table(const struct run_result *res, FILE *out)
{
	bool all_ok = true;

	fprintf(out, "\n%-12s %8s %5s %-9s %8s %8s %8s %8s %14s  %s\n",
		"GUEST", "MEM", "VCPUS", "STATE", "ZERO", "SHARED", "FILE",
		"UNIQUE", "1ST-WRITE(us)", "VERIFY");
	for (unsigned i = 0; i < res->nr; i++) {
		const struct guest_report *r = &res->reports[i];

		if (!r->created)
			continue;
		print_guest_row(r, out);
		if (!r->ok) {
			/* A guest whose worker died has one story, told once. */
			const char *reason = strcmp(r->reason, r->error) ? r->reason : "";

			all_ok = false;
			fprintf(out, "  %s: FAILED: %s%s%s\n", r->name,
				r->error[0] ? r->error : "",
				r->error[0] && reason[0] ? "; guest " : "", reason);
		}
	}
	fprintf(out, "(ZERO..UNIQUE: data pages by content; 1ST-WRITE: guest-measured "
		"median/p99 cost of a first write to an untouched page)\n");
	for (unsigned i = 0; i < res->nr; i++)
		print_merging_line(&res->reports[i], out);
	if (!res->dedup)
		return all_ok;
	fprintf(out, "\n%-12s %12s %11s %9s %8s %8s %7s %8s %14s\n",
		"DEDUP", "PRIV-BEFORE", "PRIV-NOW", "SAVED", "MERGED", "ZERO",
		"FRAMES", "UNMERGES", "MERGED-1ST-WR");
	for (unsigned i = 0; i < res->nr; i++)
		if (res->reports[i].created && res->reports[i].dedup)
			print_dedup_row(res, &res->reports[i], out);
	fprintf(out, "(MiB; PRIV: the kernel's count of the guest's private pages, "
		"before dedup started and at the last sync; SAVED: the engine's "
		"count, its share of shared frames deducted; MERGED-1ST-WR: "
		"median/p99 us of a first write to a merged page)\n");
	print_host_summary(res, out);
	return all_ok;
}
