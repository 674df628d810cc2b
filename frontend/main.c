/*
 * main.c - foldvm's entry point: parse, run, report, exit.
 * Exit status: 0 every guest verified, 1 a guest failed or lost data,
 * 2 bad command line or a guest could not be created.
 */
#include <stdio.h>
#include <string.h>
#include "config.h"
#include "frontend/cli.h"
#include "runner/runner.h"
#include "supervisor/supervisor.h"

#define EXIT_GUEST_FAILED 1
#define EXIT_USAGE 2

static const char *const demo_default_files[] = { "/usr/lib", "/usr/share" };

/* One demo guest: fill, time fresh writes, baseline, let dedup converge
 * (two passes) and run on for --seconds, measure, time writes to merged
 * pages, churn, and verify everything. */
static int demo_spec(const struct cli_options *opt, const struct cli_demo *demo,
		     unsigned i, struct vm_spec *vm, struct fv_error *err)
{
	struct step steps[] = {
		{ STEP_FILL, 0 }, { STEP_MEASURE, 0 }, { STEP_SYNC, 0 },
		{ STEP_SETTLE, 2 }, { STEP_SLEEP, demo->seconds },
		{ STEP_SYNC, 0 }, { STEP_MEASURE_MERGED, 0 }, { STEP_CHURN, 512 },
		{ STEP_VERIFY, 0 },
	};
	char name[16];

	snprintf(name, sizeof(name), "guest%u", i + 1);
	spec_defaults(vm, i);
	return spec_set_name(vm, name, err) ||
	       spec_set_mem(vm, demo->mem >> 20 << 20, err) ||
	       spec_set_vcpus(vm, demo->vcpus, err) ||
	       spec_set_zero(vm, 25, err) || spec_set_shared(vm, 20, err) ||
	       spec_set_blob(vm, 30, err) ||
	       spec_set_console(vm, !opt->quiet, err) ||
	       spec_set_dedup(vm, !demo->no_dedup && !opt->ksm, err) ||
	       spec_set_domain(vm, "demo", err) ||
	       spec_set_steps(vm, steps, sizeof(steps) / sizeof(steps[0]), err) ||
	       spec_finish(vm, NULL, err) ? -1 : 0;
}

/* The demo: several guests with a realistic mix of page contents. */
static void demo_build(struct cli_options *opt, const struct cli_demo *demo)
{
	opt->nr_vms = demo->guests;
	if (!opt->nr_files) {
		for (unsigned i = 0; i < 2; i++)
			opt->files[opt->nr_files++] = demo_default_files[i];
	}
	for (unsigned i = 0; i < opt->nr_vms; i++) {
		struct fv_error err;

		/* Built from validated values, so it is accepted. */
		if (demo_spec(opt, demo, i, &opt->vms[i], &err))
			fprintf(stderr, "foldvm: internal: demo spec: %s\n", err.msg);
	}
}

static void print_intro(const struct cli_options *opt)
{
	uint64_t total = 0;

	for (unsigned i = 0; i < opt->nr_vms; i++)
		total += opt->vms[i].cfg.mem_size;
	printf("foldvm %s: %u guest%s, %llu MiB in all; serial logs in %s/\n",
	       PACKAGE_VERSION, opt->nr_vms, opt->nr_vms == 1 ? "" : "s",
	       (unsigned long long)(total >> 20), opt->log_dir);
	if (opt->nr_files) {
		printf("page-cache content from:");
		for (unsigned i = 0; i < opt->nr_files; i++)
			printf(" %s", opt->files[i]);
		printf("\n");
	}
	fflush(stdout);
}

/* What libvirt domains asked for that foldvm cannot honour (without
 * --strict, which refused them at parse time). */
static void print_domain_notes(const struct cli_options *opt)
{
	for (unsigned i = 0; i < opt->nr_vms; i++)
		if (opt->vms[i].notes[0])
			fprintf(stderr,
				"foldvm: domain %s (%s): not honoured, running without: %s (--strict refuses such domains)\n",
				opt->vms[i].cfg.name, opt->vms[i].origin,
				opt->vms[i].notes);
}

static int run_and_report(const struct cli_options *opt, struct run_result *res)
{
	struct fv_error err = { 0 };

	if (supervisor_run(opt, res, &err)) {
		fprintf(stderr, "foldvm: %s\n", err.msg);
		return EXIT_USAGE;
	}
	/* A signal that let every guest finish its steps is a normal end. */
	return runner_print_table(res, stdout) ? 0 : EXIT_GUEST_FAILED;
}

int main(int argc, char **argv)
{
	static struct cli_args cl;
	static struct run_result res;
	struct cli_options *opt = &cl.opt;
	struct fv_error err = { 0 };
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (cli_parse(argc, argv, &cl, &err)) {
		fprintf(stderr, "foldvm: %s\n", err.msg);
		cli_options_free(opt);
		return EXIT_USAGE;
	}
	switch (opt->cmd) {
	case CLI_HELP:
		cli_usage(stdout);
		return 0;
	case CLI_VERSION:
		printf("foldvm %s\n", PACKAGE_VERSION);
		return 0;
	case CLI_DEMO:
		demo_build(opt, &cl.demo);
		break;
	default:
		break;
	}
	print_intro(opt);
	print_domain_notes(opt);
	ret = run_and_report(opt, &res);
	cli_options_free(opt);
	return ret;
}
