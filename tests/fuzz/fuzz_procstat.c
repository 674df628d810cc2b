/*
 * fuzz_procstat.c - libFuzzer harness for the smaps_rollup parser.
 *
 * The input, copied and NUL-terminated, goes through
 * procstat_parse_rollup().  Any crash, leak, or UB report is a bug: the
 * parser must hold up on any bytes, not only on what the kernel prints.
 * The harness also aborts when a result breaks the parser's promises.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "lib/procstat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Values are whole KiB (kB * 1024 never wraps); failures are FV_E_INVAL. */
static void check_result(int ret, const struct procstat_rollup *r,
			 const struct fv_error *err)
{
	const uint64_t *v = (const uint64_t *)r;

	if (ret != 0) {
		if (ret != -1 || err->code != FV_E_INVAL ||
		    !memchr(err->msg, '\0', sizeof(err->msg)))
			abort();
		return;
	}
	for (size_t i = 0; i < sizeof(*r) / sizeof(*v); i++)
		if (v[i] % 1024)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct procstat_rollup r;
	struct fv_error err;
	char *buf = malloc(size + 1);
	int ret;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	memset(&r, 0, sizeof(r));
	ret = procstat_parse_rollup(buf, &r, &err);
	check_result(ret, &r, &err);
	free(buf);
	return 0;
}
