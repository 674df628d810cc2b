/*
 * fuzz_qmp.c - libFuzzer harness for the QMP session and line framing.
 *
 * The first input byte picks the set-up: bit 0 negotiates before the input
 * runs, bit 1 uses a 64-byte line limit (so too-long lines and discard
 * mode are reached with small inputs), bits 2..7 the size of the chunks
 * the rest is fed in (1..64 bytes), so requests straddle reads and lines.  Every line
 * goes through qmp_session_handle_line() against a small typed command
 * table; every reply must be one CRLF-terminated line.  Any crash, leak or
 * UB report is a bug: this is what a client on the socket controls.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "control/qmp.h"

static int f_echo(void *ctx, struct json_object *args,
		  struct json_object **ret, struct qmp_error *err)
{
	(void)ctx;
	(void)err;
	*ret = json_object_get(args);
	return 0;
}

static int f_fail(void *ctx, struct json_object *args,
		  struct json_object **ret, struct qmp_error *err)
{
	struct json_object *cls, *desc;

	(void)ctx;
	/* a half-built result must be freed by the dispatcher */
	*ret = json_object_new_array();
	if (!json_object_object_get_ex(args, "class", &cls))
		return -1;
	json_object_object_get_ex(args, "desc", &desc);
	return qmp_error_set(err, json_object_get_string(cls), "%s",
			     desc ? json_object_get_string(desc) : "failed");
}

static int f_nothing(void *ctx, struct json_object *args,
		     struct json_object **ret, struct qmp_error *err)
{
	(void)ctx;
	(void)args;
	(void)ret;
	(void)err;
	return 0;
}

static const struct qmp_arg echo_args[] = {
	{ "s", QMP_T_STR, false },
	{ "i", QMP_T_INT, true },
	{ "b", QMP_T_BOOL, true },
	{ "n", QMP_T_NUMBER, true },
	{ "o", QMP_T_OBJECT, true },
	{ "a", QMP_T_ANY, true },
	{ NULL, QMP_T_ANY, false },
};

static const struct qmp_arg fail_args[] = {
	{ "class", QMP_T_STR, true },
	{ "desc", QMP_T_STR, true },
	{ NULL, QMP_T_ANY, false },
};

static const struct qmp_command commands[] = {
	{ "echo", f_echo, echo_args, 0, "Return the arguments" },
	{ "fail", f_fail, fail_args, 0, "Fail as told" },
	{ "stop", f_nothing, NULL, 0, "Return {}" },
	{ "quit", f_nothing, NULL, QMP_CMD_CLOSE_AFTER, "Close" },
	{ NULL, NULL, NULL, 0, NULL },
};

static const struct qmp_endpoint_config cfg = {
	.commands = commands,
	.major = 0, .minor = 1, .micro = 0,
	.package = "foldvm 0.1.0",
};

/* Free a reply after checking its framing. */
static void consume(char *reply)
{
	size_t len;

	if (!reply)
		return;
	len = strlen(reply);
	if (len < 3 || strcmp(reply + len - 2, "\r\n") ||
	    memchr(reply, '\n', len - 1) || reply[0] != '{')
		abort();
	free(reply);
}

static void run_line(struct qmp_session *s, const char *line, size_t len)
{
	bool close_after;

	consume(qmp_session_handle_line(s, line, len, &close_after));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char caps[] = "{\"execute\":\"qmp_capabilities\"}";
	const char *in = (const char *)data + 1, *line;
	struct qmp_session s;
	struct qmp_linebuf lb;
	enum qmp_line kind;
	size_t len, off = 0, chunk, end, llen;
	unsigned stalled = 0;

	if (size < 1)
		return 0;
	len = size - 1;
	chunk = (size_t)(data[0] >> 2) + 1;
	if (qmp_linebuf_init(&lb, (data[0] & 2) ? 64 : 0))
		return 0;
	qmp_session_init(&s, &cfg);
	consume(qmp_session_greeting(&s));
	if (data[0] & 1)
		run_line(&s, caps, sizeof(caps) - 1);
	while (off < len) {
		end = off + chunk < len ? off + chunk : len;
		while (off < end) {
			size_t n = qmp_linebuf_feed(&lb, in + off, end - off,
						    &kind, &line, &llen);

			/* nothing taken twice in a row: it would spin */
			if (n == 0 && stalled++)
				abort();
			if (n)
				stalled = 0;
			if (lb.len > lb.max)
				abort();
			off += n;
			if (kind == QMP_LINE_OK)
				run_line(&s, line, llen);
			else if (kind == QMP_LINE_TOO_LONG)
				consume(qmp_session_too_long(&s));
			else if (kind == QMP_LINE_TOO_DEEP)
				consume(qmp_session_too_deep(&s));
		}
	}
	if (qmp_linebuf_flush(&lb, &line, &llen) == QMP_LINE_OK)
		run_line(&s, line, llen);
	qmp_linebuf_destroy(&lb);
	return 0;
}
