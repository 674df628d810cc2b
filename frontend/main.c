/*
 * main.c - foldvm's entry point: parse, run, report, exit.
 * Exit status: 0 every guest verified, 1 a guest failed or lost data,
 * 2 bad command line or a guest could not be created.
 */
#include <stdio.h>
#include <string.h>
#include "config.h"
#include "frontend/cli.h"
#include "control/commands.h"
#include "runner/runner.h"

#define EXIT_GUEST_FAILED 1
#define EXIT_USAGE 2

static const char *const demo_default_files[] = { "/usr/lib", "/usr/share" };

/* The demo: several guests with a realistic mix of page contents. */
static void demo_build(struct cli_options *opt)
{
	opt->nr_vms = opt->demo_guests;
	if (!opt->nr_files) {
		for (unsigned i = 0; i < 2; i++)
			opt->files[opt->nr_files++] = demo_default_files[i];
	}
	for (unsigned i = 0; i < opt->nr_vms; i++) {
		struct vm_spec *vm = &opt->vms[i];
		char spec[256];
		struct fv_error err;

		/* fill, time fresh writes, baseline, let dedup converge (two
		 * passes) and run on for --seconds, measure, time writes to
		 * merged pages, churn, and verify everything. */
		snprintf(spec, sizeof(spec),
			 "name=guest%u,mem=%lluM,vcpus=%u,zero=25,shared=20,blob=30,"
			 "console=%s,dedup=%s,domain=demo,steps=fill+measure+sync+settle:2+sleep:%u+sync+"
			 "measure-merged+churn:512+verify",
			 i + 1, (unsigned long long)(opt->demo_mem >> 20),
			 opt->demo_vcpus, opt->quiet ? "off" : "on",
			 opt->demo_no_dedup || opt->ksm ? "off" : "on", opt->demo_seconds);
		/* Built from validated values, so it parses. */
		if (cli_parse_vm(spec, i, vm, &err))
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

	if (runner_run(opt, &control_observer, res, &err)) {
		fprintf(stderr, "foldvm: %s\n", err.msg);
		return EXIT_USAGE;
	}
	/* A signal that let every guest finish its steps is a normal end. */
	return runner_print_table(res, stdout) ? 0 : EXIT_GUEST_FAILED;
}

int main(int argc, char **argv)
{
	static struct cli_options opt;
	static struct run_result res;
	struct fv_error err = { 0 };
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (cli_parse(argc, argv, &opt, &err)) {
		fprintf(stderr, "foldvm: %s\n", err.msg);
		cli_options_free(&opt);
		return EXIT_USAGE;
	}
	switch (opt.cmd) {
	case CLI_HELP:
		fputs(cli_usage, stdout);
		return 0;
	case CLI_VERSION:
		printf("foldvm %s\n", PACKAGE_VERSION);
		return 0;
	case CLI_DEMO:
		demo_build(&opt);
		break;
	default:
		break;
	}
	print_intro(&opt);
	print_domain_notes(&opt);
	ret = run_and_report(&opt, &res);
	cli_options_free(&opt);
	return ret;
}
