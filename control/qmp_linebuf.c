/*
 * qmp_linebuf.c - QMP framing (qmp.h, "framing"): bytes in, complete JSON
 * texts out, as QEMU's JSON streamer frames them, with a hard limit on the
 * length of a text.
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

/* The scanner's state for a new text. */
static void text_reset(struct qmp_linebuf *lb)
{
	lb->depth = 0;
	lb->in_string = lb->escaped = lb->junk = false;
}

/* Take one byte into the text being scanned; true when it ended it.  A
 * newline ends any text: a request is on one line (an object still open
 * there is answered with a parse error, and takes none of the lines after
 * it along), and a line may hold several. */
static bool text_step(struct qmp_linebuf *lb, char c)
{
	if (c == '\n')
		return true;
	if (lb->junk)
		return false;
	if (lb->in_string) {
		if (lb->escaped)
			lb->escaped = false;
		else if (c == '\\')
			lb->escaped = true;
		else if (c == '"')
			lb->in_string = false;
		return false;
	}
	if (c == '"') {
		lb->in_string = true;
	} else if (c == '{' || c == '[') {
		lb->depth++;
	} else if (c == '}' || c == ']') {
		/* A closer at depth 0 is junk; it ended a text otherwise. */
		if (lb->depth == 0) {
			lb->junk = true;
			return false;
		}
		return --lb->depth == 0;
	} else if (lb->depth == 0) {
		lb->junk = true;        /* no object or array */
	}
	return false;
}

size_t qmp_linebuf_feed(struct qmp_linebuf *lb, const char *data, size_t len,
			enum qmp_line *kind, const char **line,
			size_t *line_len)
{
	size_t i = 0;

	*kind = QMP_LINE_NONE;
	if (lb->handed_out) {
		lb->len = 0;
		lb->handed_out = false;
		text_reset(lb);
	}
	if (len == 0)
		return 0;
	/* Between texts: whitespace is nobody's. */
	if (lb->len == 0 && !lb->discarding) {
		while (i < len && qmp_json_ws(data[i]))
			i++;
		if (i == len)
			return len;
	}
	for (; i < len; i++) {
		bool end = text_step(lb, data[i]);

		if (lb->discarding) {
			if (end) {
				lb->discarding = false;
				text_reset(lb);
				return i + 1;
			}
			continue;
		}
		/* The newline that ends a text is not part of it. */
		if (data[i] != '\n') {
			if (lb->len == lb->max) {
				/* Report at once, not at its end, which may
				 * never come; nothing of the text is kept. */
				lb->len = 0;
				*kind = QMP_LINE_TOO_LONG;
				if (end) {
					text_reset(lb);
				} else {
					lb->discarding = true;
				}
				return i + 1;
			}
			lb->buf[lb->len++] = data[i];
		}
		if (end) {
			lb->buf[lb->len] = '\0';
			lb->handed_out = true;
			*line = lb->buf;
			*line_len = lb->len;
			*kind = QMP_LINE_OK;
			return i + 1;
		}
	}
	return len;
}

enum qmp_line qmp_linebuf_flush(struct qmp_linebuf *lb, const char **line,
				size_t *line_len)
{
	bool have = !lb->handed_out && !lb->discarding && lb->len > 0;

	lb->discarding = false;
	lb->handed_out = false;
	text_reset(lb);
	if (!have) {
		lb->len = 0;
		return QMP_LINE_NONE;
	}
	lb->buf[lb->len] = '\0';
	*line = lb->buf;
	*line_len = lb->len;
	/* The text stays readable until the next feed or flush. */
	lb->handed_out = true;
	return QMP_LINE_OK;
}
