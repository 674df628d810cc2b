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

/* Parse argv (argv[0] is the program).  Fills *opt with defaults first. */
int cli_parse(int argc, char *const argv[], struct cli_options *opt,
	      struct fv_error *err);

/* Free what cli_parse allocated (domain XML documents). */
void cli_options_free(struct cli_options *opt);

/* foldvm --help: the commands, the --vm keys, the options. */
void cli_usage(FILE *f);

#endif
