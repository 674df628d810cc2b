/*
 * fuzz_procstat.c - libFuzzer harness for the /proc text parsers.
 *
 * The input, copied and NUL-terminated, goes through
 * procstat_parse_rollup(); the same bytes, not terminated, go through the
 * maps parser procstat_parse_maps().  Any crash, leak, or UB report is a bug: the
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

/* The maps parser reports at most one VMA a line, with a well-formed
 * header, and counts every line (a last one without '\n' too). */
struct maps_seen {
	uint64_t calls;
};

static void maps_seen(void *opaque, uint64_t start, uint64_t end)
{
	(void)start;
	(void)end;
	((struct maps_seen *)opaque)->calls++;
}

static void check_maps(const uint8_t *data, size_t size)
{
	struct maps_seen seen = { 0 };
	uint64_t lines = 0, got;

	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	lines += size && data[size - 1] != '\n';
	got = procstat_parse_maps((const char *)data, size, maps_seen, &seen);
	if (got != lines || seen.calls > lines)
		abort();
	if (procstat_parse_maps((const char *)data, size, NULL, NULL) != lines)
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
	check_maps(data, size);
	return 0;
}
