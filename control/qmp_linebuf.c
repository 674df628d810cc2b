/*
 * qmp_linebuf.c - QMP framing (qmp.h, "framing"): bytes in, complete JSON
 * texts out, found as QEMU's JSON streamer finds them (by the nesting of
 * braces and brackets outside strings; newlines are whitespace), with hard
 * limits on the length and the depth of a text.
 */
#include <limits.h>
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

enum step {
	STEP_IN,        /* the byte is the text's */
	STEP_END,       /* the byte is the text's last */
	STEP_BEFORE,    /* the text ended before the byte, which is not its */
};

/* Take one byte of the text being scanned.  A text that is no object or
 * array (a bare word, a number, a stray closer: junk) ends at its line's
 * end, or where an object or array begins, so the request after it is
 * read: QEMU's lexer (qobject/json-lexer.c) answers a bad token and
 * starts over right after it; this framing knows no tokens, so junk costs
 * at most the rest of its line.  A string never holds a raw newline (RFC
 * 8259 wants control characters escaped): a text ends there too and is
 * answered with a parse error, so a quote left open cannot swallow the
 * requests on the lines after it (where QEMU's lexer reads on). */
static enum step text_step(struct qmp_linebuf *lb, char c)
{
	if (c == '\n' && (lb->in_string || lb->junk || lb->depth == 0))
		return STEP_BEFORE;     /* (depth 0: after a bare string) */
	if (lb->in_string) {
		if (lb->escaped)
			lb->escaped = false;
		else if (c == '\\')
			lb->escaped = true;
		else if (c == '"')
			lb->in_string = false;
		return STEP_IN;
	}
	if (c == '"') {
		lb->in_string = true;
	} else if (lb->junk) {
		if (c == '{' || c == '[')
			return STEP_BEFORE;
	} else if (c == '{' || c == '[') {
		if (lb->depth < UINT_MAX)
			lb->depth++;
	} else if (c == '}' || c == ']') {
		if (lb->depth == 0) {   /* a closer first */
			lb->junk = true;
			return STEP_IN;
		}
		return --lb->depth == 0 ? STEP_END : STEP_IN;
	} else if (lb->depth == 0) {
		lb->junk = true;        /* no object or array */
	}
	return STEP_IN;
}

/* Hand out the text collected so far. */
static void hand_out(struct qmp_linebuf *lb, enum qmp_line *kind,
		     const char **line, size_t *line_len)
{
	lb->buf[lb->len] = '\0';
	lb->handed_out = true;
	*line = lb->buf;
	*line_len = lb->len;
	*kind = QMP_LINE_OK;
}

/* Past a limit: report it at once, not at the text's end, which may never
 * come; nothing of the text is kept, and the rest of it is dropped. */
static size_t over_limit(struct qmp_linebuf *lb, enum qmp_line what,
			 enum step st, size_t consumed, enum qmp_line *kind)
{
	lb->len = 0;
	*kind = what;
	if (st == STEP_IN)
		lb->discarding = true;
	else
		text_reset(lb);
	return consumed;
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
		enum step st = text_step(lb, data[i]);

		if (lb->discarding) {
			if (st == STEP_IN)
				continue;
			lb->discarding = false;
			text_reset(lb);
			return st == STEP_END || qmp_json_ws(data[i]) ? i + 1 : i;
		}
		if (st == STEP_BEFORE) {
			/* A newline that ended it is whitespace, taken; an
			 * object's opener is the next text's. */
			hand_out(lb, kind, line, line_len);
			return qmp_json_ws(data[i]) ? i + 1 : i;
		}
		if (lb->depth > QMP_MAX_DEPTH)
			return over_limit(lb, QMP_LINE_TOO_DEEP, st, i + 1, kind);
		if (lb->len == lb->max)
			return over_limit(lb, QMP_LINE_TOO_LONG, st, i + 1, kind);
		lb->buf[lb->len++] = data[i];
		if (st == STEP_END) {
			hand_out(lb, kind, line, line_len);
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
