/*
 * runner.h - run a set of test guests through their steps and report.
 *
 * Used by `foldvm run` and `foldvm demo`.  Every guest gets a driver thread
 * that walks its step list through the test device; the main thread only
 * waits for the drivers and for SIGINT/SIGTERM.
 */
#ifndef FOLDVM_RUNNER_H
#define FOLDVM_RUNNER_H

#include <stdbool.h>
#include <stdint.h>
#include "vmm/cli.h"

struct guest_report {
	char name[GUEST_NAME_MAX + 1];
	uint64_t mem_size;
	unsigned nr_vcpus;
	enum guest_state state;
	char reason[512];
	bool created;
	/* fill */
	bool filled;
	uint64_t pages_zero, pages_shared, pages_blob, pages_unique;
	/* verify (last run) */
	bool verified;
	uint64_t verify_checked, verify_mismatches, verify_first_bad;
	/* churn / race */
	uint64_t churned, race_iterations;
	/* first write to an untouched page, cycles */
	bool measured;
	uint64_t fw_median, fw_p99, fw_mean, tsc_khz;
	/* the driver's own verdict */
	bool ok;
	char error[600];        /* step name + an fv_error message */
};

struct run_result {
	unsigned nr;
	struct guest_report reports[CLI_MAX_VMS];
	bool interrupted;
};

/* Create every guest first (a bad one fails the whole start: exit 2), then
 * run them all.  Returns 0 when the run happened (reports tell how each
 * guest did), -1 with err when the guests could not be created. */
int runner_run(const struct cli_options *opt, struct run_result *res,
	       struct fv_error *err);

/* Print the per-guest table; returns true if every guest is OK. */
bool runner_print_table(const struct run_result *res, FILE *out);

#endif
