/*
 * qmp_linebuf.c - QMP line framing: bytes in, complete lines out, with a
 * hard limit on the length of a line.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "control/qmp.h"

int qmp_linebuf_init(struct qmp_linebuf *lb, size_t max)
{
	memset(lb, 0, sizeof(*lb));
	lb->max = (max == 0 || max > QMP_MAX_LINE) ? QMP_MAX_LINE : max;
	lb->buf = malloc(lb->max + 1);
	return lb->buf ? 0 : -1;
}

void qmp_linebuf_destroy(struct qmp_linebuf *lb)
{
	free(lb->buf);
	lb->buf = NULL;
	lb->len = 0;
}

size_t qmp_linebuf_feed(struct qmp_linebuf *lb, const char *data, size_t len,
			enum qmp_line *kind, const char **line,
			size_t *line_len)
{
	const char *nl;
	size_t take;

	*kind = QMP_LINE_NONE;
	if (lb->handed_out) {
		lb->len = 0;
		lb->handed_out = false;
	}
	if (len == 0)
		return 0;
	nl = memchr(data, '\n', len);
	take = nl ? (size_t)(nl - data) : len;
	if (lb->discarding) {
		if (!nl)
			return len;
		lb->discarding = false;
		return take + 1;
	}
	if (take > lb->max - lb->len) {
		/* Report at once, not at the newline, which may never come;
		 * nothing of the line is kept. */
		lb->len = 0;
		*kind = QMP_LINE_TOO_LONG;
		if (nl)
			return take + 1;
		lb->discarding = true;
		return len;
	}
	memcpy(lb->buf + lb->len, data, take);
	lb->len += take;
	if (!nl)
		return len;
	lb->buf[lb->len] = '\0';
	lb->handed_out = true;
	*line = lb->buf;
	*line_len = lb->len;
	*kind = QMP_LINE_OK;
	return take + 1;
}

enum qmp_line qmp_linebuf_flush(struct qmp_linebuf *lb, const char **line,
				size_t *line_len)
{
	bool have = !lb->handed_out && !lb->discarding && lb->len > 0;

	lb->discarding = false;
	lb->handed_out = false;
	if (!have) {
		lb->len = 0;
		return QMP_LINE_NONE;
	}
	lb->buf[lb->len] = '\0';
	*line = lb->buf;
	*line_len = lb->len;
	/* The line stays readable until the next feed or flush. */
	lb->handed_out = true;
	return QMP_LINE_OK;
}
