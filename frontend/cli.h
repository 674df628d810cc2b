/*
 * cli.h - the command line: `foldvm run`, `foldvm demo`, --help, --version.
 * Everything here is untrusted input: every value is bounded and checked,
 * and every problem is one clear sentence (main exits 2 on it).
 */
#ifndef FOLDVM_CLI_H
#define FOLDVM_CLI_H

#include <stdio.h>
#include "lib/error.h"
#include "runner/spec.h"

/* foldvm demo's own settings: main.c makes the demo's guests from them
 * (the run sees only the guests). */
struct cli_demo {
	unsigned guests;        /* --guests */
	uint64_t mem;           /* --mem, per guest */
	unsigned vcpus;         /* --vcpus */
	unsigned seconds;       /* --seconds */
	bool no_dedup;          /* --no-dedup */
};

/* What a command line says: the run's options, and the demo's. */
struct cli_args {
	struct cli_options opt;
	struct cli_demo demo;
};

/* Parse argv (argv[0] is the program).  Fills *cl with defaults first. */
int cli_parse(int argc, char *const argv[], struct cli_args *cl,
	      struct fv_error *err);

/* Free what cli_parse allocated (domain XML documents). */
void cli_options_free(struct cli_options *opt);

/* foldvm --help: the commands, the --vm keys, the options. */
void cli_usage(FILE *f);

#endif
