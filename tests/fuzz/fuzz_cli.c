/*
 * fuzz_cli.c - libFuzzer harness for the command-line parser.
 *
 * The input is split at NUL bytes into an argv, which goes through
 * cli_parse(); the whole input, as one string, also goes through the
 * --vm spec, size and steps parsers.  Any crash, leak, or UB report is a
 * bug: the command line is untrusted input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "frontend/cli.h"

#define FUZZ_MAX_ARGS 64

static struct cli_args cl;

static void fuzz_argv(char *buf, size_t len)
{
	char *argv[FUZZ_MAX_ARGS + 2];
	int argc = 0;
	struct fv_error err;

	argv[argc++] = "foldvm";
	for (size_t i = 0; i < len && argc < FUZZ_MAX_ARGS; ) {
		argv[argc++] = buf + i;
		i += strlen(buf + i) + 1;
	}
	argv[argc] = NULL;
	cli_parse(argc, argv, &cl, &err);
	cli_options_free(&cl.opt);
}

/* --libvirt with a session URI would start a libvirt daemon. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("LIBVIRT_AUTOSTART", "0", 1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm_spec vm;
	struct step steps[CLI_MAX_STEPS];
	struct fv_error err;
	unsigned nr;
	uint64_t bytes;
	char *buf = malloc(size + 1);

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	fuzz_argv(buf, size);
	/* buf was only read by cli_parse; as a single string now: */
	spec_from_kv(buf, 0, &vm, &err);
	spec_parse_size(buf, &bytes, &err);
	spec_parse_steps(buf, steps, &nr, &err);
	free(buf);
	return 0;
}
