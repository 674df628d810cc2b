/*
 * fuzz_metrics.c - libFuzzer harness for what an HTTP client and the
 * command line give control/metrics.c: a request head fed in chunks as
 * the server reads it (the first byte picks the chunk size, 1..256), each
 * answer built, and the input as a --metrics address.  A request must be
 * decided by METRICS_REQ_MAX bytes; every response must be one HTTP/1.1
 * status line and head.  Any crash, leak or UB report is a bug.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "control/metrics.h"

static void answer(enum metrics_req r)
{
	size_t len;
	char *out = metrics_response(r, "x 1\n", 4, &len);

	if (!out)
		return;
	if (len < 17 || strncmp(out, "HTTP/1.1 ", 9) || !strstr(out, "\r\n\r\n"))
		abort();
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char req[METRICS_REQ_MAX], *addr;
	size_t chunk, have = 0, off = 1;
	enum metrics_req r = METRICS_REQ_MORE;
	struct sockaddr_storage sa;
	struct fv_error err = { 0 };
	socklen_t sa_len;

	if (size < 1)
		return 0;
	chunk = (size_t)data[0] + 1;
	while (off < size && r == METRICS_REQ_MORE && have < sizeof(req)) {
		size_t n = size - off < chunk ? size - off : chunk;

		if (n > sizeof(req) - have)
			n = sizeof(req) - have;
		memcpy(req + have, data + off, n);
		have += n;
		off += n;
		r = metrics_request(req, have);
	}
	if (have == sizeof(req) && r == METRICS_REQ_MORE)
		abort();                /* undecided at the limit */
	answer(r);
	addr = malloc(size);
	if (!addr)
		return 0;
	memcpy(addr, data + 1, size - 1);
	addr[size - 1] = '\0';
	if (metrics_addr_parse(addr, &sa, &sa_len, &err) == 0 && sa_len > sizeof(sa))
		abort();
	free(addr);
	return 0;
}
