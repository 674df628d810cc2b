/* test_qmp.c - the QMP control socket: the session layer (protocol rules,
 * error classes, argument checks) without sockets, line framing, and the
 * server over real UNIX sockets in a temporary directory. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <CUnit/CUnit.h>
#include <json-c/json.h>
#include "control/qmp.h"
#include "tests/unit/unit.h"

void unit_add_qmp_suite(void);

#define GREETING "{\"QMP\":{\"version\":{\"qemu\":{\"micro\":0,\"minor\":1," \
		 "\"major\":0},\"package\":\"foldvm 0.1.0\"},"          \
		 "\"capabilities\":[]}}"
#define NEED_CAPS "Expecting capabilities negotiation with 'qmp_capabilities'"
#define TOO_LONG "{\"error\":{\"class\":\"GenericError\"," \
		 "\"desc\":\"Request too long\"}}"

/* ------------------------------------------------------------------ */
/* a small command table                                               */
/* ------------------------------------------------------------------ */

struct tctx {
	int calls;
	struct qmp_server *srv;
	struct qmp_endpoint *victim;   /* for "drop-other" */
};

static struct tctx tctx;

static int h_echo(void *ctx, struct json_object *args,
		  struct json_object **ret, struct qmp_error *err)
{
	(void)err;
	((struct tctx *)ctx)->calls++;
	*ret = json_object_get(args);
	return 0;
}

static int h_null(void *ctx, struct json_object *args,
		  struct json_object **ret, struct qmp_error *err)
{
	(void)args;
	(void)ret;
	(void)err;
	((struct tctx *)ctx)->calls++;
	return 0;
}

static int h_fail(void *ctx, struct json_object *args,
		  struct json_object **ret, struct qmp_error *err)
{
	struct json_object *id;

	(void)ctx;
	(void)ret;
	json_object_object_get_ex(args, "id", &id);
	return qmp_error_set(err, "DeviceNotFound", "Device '%s' not found",
			     json_object_get_string(id));
}

/* Fails without naming a class, after building half a result. */
static int h_sloppy(void *ctx, struct json_object *args,
		    struct json_object **ret, struct qmp_error *err)
{
	(void)ctx;
	(void)args;
	(void)err;
	*ret = json_object_new_int(1);
	return -1;
}

static int h_list(void *ctx, struct json_object *args,
		  struct json_object **ret, struct qmp_error *err)
{
	(void)ctx;
	(void)args;
	(void)err;
	*ret = json_object_new_array();
	json_object_array_add(*ret, json_object_new_int(1));
	return 0;
}

/* Removes another endpoint from inside a handler (the server thread). */
static int h_drop_other(void *ctx, struct json_object *args,
			struct json_object **ret, struct qmp_error *err)
{
	struct tctx *t = ctx;

	(void)args;
	(void)ret;
	(void)err;
	qmp_endpoint_remove(t->srv, t->victim);
	t->victim = NULL;
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
	{ "id", QMP_T_STR, false },
	{ NULL, QMP_T_ANY, false },
};

static const struct qmp_command tcmds[] = {
	{ "echo", h_echo, echo_args, 0, "Return the arguments" },
	{ "null", h_null, NULL, 0, "Return {}" },
	{ "fail", h_fail, fail_args, 0, "Fail with DeviceNotFound" },
	{ "sloppy", h_sloppy, NULL, 0, "Fail without a class" },
	{ "list", h_list, NULL, 0, "Return an array" },
	{ "quit", h_null, NULL, QMP_CMD_CLOSE_AFTER, "Close the connection" },
	{ "drop-other", h_drop_other, NULL, 0, "Remove another endpoint" },
	/* shadowed by the built-in; must neither run nor be listed twice */
	{ "query-commands", h_sloppy, NULL, 0, "never used" },
	{ NULL, NULL, NULL, 0, NULL },
};

static struct qmp_endpoint_config tcfg(const char *path)
{
	return (struct qmp_endpoint_config){
		.path = path, .commands = tcmds, .ctx = &tctx,
		.major = 0, .minor = 1, .micro = 0,
		.package = "foldvm 0.1.0",
	};
}

/* ------------------------------------------------------------------ */
/* session helpers                                                     */
/* ------------------------------------------------------------------ */

static struct qmp_endpoint_config scfg;
static struct qmp_session sess;
static char reply_buf[4096];

/* Every reply: one line, CRLF-terminated, no other CR or LF. */
static bool check_crlf(const char *r)
{
	size_t n = strlen(r);

	return n >= 2 && !strcmp(r + n - 2, "\r\n") &&
	       !memchr(r, '\r', n - 2) && !memchr(r, '\n', n - 2);
}

/* Run line, return the reply without its CRLF (static buffer). */
static const char *run(const char *line)
{
	bool close_after;
	char *r = qmp_session_handle_line(&sess, line, strlen(line),
					  &close_after);

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT(check_crlf(r));
	snprintf(reply_buf, sizeof(reply_buf), "%.*s",
		 (int)(strlen(r) - 2), r);
	free(r);
	return reply_buf;
}

static void fresh_session(bool negotiate)
{
	scfg = tcfg(NULL);
	qmp_session_init(&sess, &scfg);
	tctx.calls = 0;
	if (negotiate)
		CU_ASSERT_STRING_EQUAL(run("{\"execute\":\"qmp_capabilities\"}"),
				       "{\"return\":{}}");
}

static void expect(const char *line, const char *want)
{
	const char *got = run(line);

	CU_ASSERT_STRING_EQUAL(got, want);
	if (strcmp(got, want))
		fprintf(stderr, "\n  line: %s\n  got:  %s\n  want: %s\n",
			line, got, want);
}

static void expect_err(const char *line, const char *cls, const char *desc)
{
	char want[1024];

	snprintf(want, sizeof(want),
		 "{\"error\":{\"class\":\"%s\",\"desc\":\"%s\"}}", cls, desc);
	expect(line, want);
}

/* Only the start of the description is fixed (json-c's wording follows). */
static void expect_parse_err(const char *line, size_t len)
{
	static const char pfx[] =
		"{\"error\":{\"class\":\"GenericError\","
		"\"desc\":\"JSON parse error, ";
	char *r = qmp_session_handle_line(&sess, line, len, NULL);

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT(check_crlf(r));
	CU_ASSERT(!strncmp(r, pfx, sizeof(pfx) - 1));
	CU_ASSERT(!strstr(r, "\"id\""));
	if (strncmp(r, pfx, sizeof(pfx) - 1))
		fprintf(stderr, "\n  got: %s", r);
	free(r);
}

/* ------------------------------------------------------------------ */
/* session tests                                                       */
/* ------------------------------------------------------------------ */

static void test_greeting(void)
{
	char *g;

	fresh_session(false);
	g = qmp_session_greeting(&sess);
	CU_ASSERT_STRING_EQUAL(g, GREETING "\r\n");
	free(g);
	scfg.major = 7;
	scfg.minor = 2;
	scfg.micro = 1;
	scfg.package = NULL;
	g = qmp_session_greeting(&sess);
	CU_ASSERT_STRING_EQUAL(g, "{\"QMP\":{\"version\":{\"qemu\":{\"micro\":1,"
			       "\"minor\":2,\"major\":7},\"package\":\"\"},"
			       "\"capabilities\":[]}}\r\n");
	free(g);
}

static void test_negotiation(void)
{
	fresh_session(false);
	expect_err("{\"execute\":\"echo\",\"arguments\":{\"s\":\"x\"}}",
		   "CommandNotFound", NEED_CAPS);
	expect_err("{\"execute\":\"query-commands\"}", "CommandNotFound",
		   NEED_CAPS);
	expect("{\"execute\":\"nosuch\",\"id\":1}",
	       "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\""
	       NEED_CAPS "\"},\"id\":1}");
	CU_ASSERT_EQUAL(tctx.calls, 0);
	CU_ASSERT_FALSE(sess.negotiated);
	/* no capabilities are offered, so asking for one fails */
	expect_err("{\"execute\":\"qmp_capabilities\","
		   "\"arguments\":{\"enable\":[\"oob\"]}}",
		   "GenericError", "Capability 'oob' not available");
	expect_err("{\"execute\":\"qmp_capabilities\","
		   "\"arguments\":{\"enable\":\"oob\"}}",
		   "GenericError", "Parameter 'enable' expects array");
	CU_ASSERT_FALSE(sess.negotiated);
	expect("{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[]}}",
	       "{\"return\":{}}");
	CU_ASSERT_TRUE(sess.negotiated);
	expect_err("{\"execute\":\"qmp_capabilities\"}", "CommandNotFound",
		   "Capabilities negotiation is already complete, "
		   "command ignored");
	expect("{\"execute\":\"null\"}", "{\"return\":{}}");
	CU_ASSERT_EQUAL(tctx.calls, 1);
}

static void test_id_echo(void)
{
	fresh_session(true);
	expect("{\"execute\":\"null\",\"id\":42}", "{\"return\":{},\"id\":42}");
	expect("{\"id\":-7,\"execute\":\"null\"}", "{\"return\":{},\"id\":-7}");
	expect("{\"execute\":\"null\",\"id\":\"a/b\\\"c\"}",
	       "{\"return\":{},\"id\":\"a/b\\\"c\"}");
	expect("{\"execute\":\"null\",\"id\":{\"x\":[1,2.50,null,true]}}",
	       "{\"return\":{},\"id\":{\"x\":[1,2.50,null,true]}}");
	expect("{\"execute\":\"null\",\"id\":null}",
	       "{\"return\":{},\"id\":null}");
	expect("{\"execute\":\"null\",\"id\":[]}", "{\"return\":{},\"id\":[]}");
	expect("{\"execute\":\"null\"}", "{\"return\":{}}");
	expect("{\"execute\":\"list\",\"id\":1.5e3}",
	       "{\"return\":[1],\"id\":1.5e3}");
	/* errors carry the id too, once the input is an object */
	expect("{\"execute\":\"nosuch\",\"id\":\"q\"}",
	       "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":"
	       "\"The command nosuch has not been found\"},\"id\":\"q\"}");
	expect("{\"id\":7}",
	       "{\"error\":{\"class\":\"GenericError\",\"desc\":"
	       "\"QMP input lacks member 'execute'\"},\"id\":7}");
	expect("{\"execute\":\"echo\",\"id\":{\"k\":1}}",
	       "{\"error\":{\"class\":\"GenericError\",\"desc\":"
	       "\"Parameter 's' is missing\"},\"id\":{\"k\":1}}");
}

static void test_errors(void)
{
	static const char nul_line[] = "{\"execute\":\0\"null\"}";
	char deep[300];
	size_t i;

	fresh_session(true);
	expect_parse_err("{\"execute\":", 11);
	expect_parse_err("not json", 8);
	expect_parse_err("{'execute':'null'}", 18);
	expect_parse_err("{\"execute\":\"null\",}", 19);
	expect_parse_err("{\"execute\":\"null\"} {\"execute\":\"null\"}", 37);
	expect_parse_err("{\"execute\":\"null\",\"id\":NaN}", 27);
	expect_parse_err("{\"execute\":\"null\",\"id\":1e999}", 29);
	expect_parse_err("{\"execute\":\"echo\",\"arguments\":{\"s\":\"a\\u0000\"}}",
			 45);
	expect_parse_err("{\"execute\":\"\xff\"}", 15);
	expect_parse_err(nul_line, sizeof(nul_line) - 1);
	for (i = 0; i < 100; i++)
		deep[i] = '[';
	for (; i < 200; i++)
		deep[i] = ']';
	expect_parse_err(deep, 200);
	expect_err("[1,2]", "GenericError", "QMP input must be a JSON object");
	expect_err("\"execute\"", "GenericError",
		   "QMP input must be a JSON object");
	expect_err("42", "GenericError", "QMP input must be a JSON object");
	expect_err("null", "GenericError", "QMP input must be a JSON object");
	expect_err("{}", "GenericError", "QMP input lacks member 'execute'");
	expect_err("{\"arguments\":{}}", "GenericError",
		   "QMP input lacks member 'execute'");
	expect_err("{\"execute\":1}", "GenericError",
		   "QMP input member 'execute' must be a string");
	expect_err("{\"execute\":\"null\",\"foo\":1}", "GenericError",
		   "QMP input member 'foo' is unexpected");
	expect_err("{\"execute\":\"nosuch\"}", "CommandNotFound",
		   "The command nosuch has not been found");
	expect_err("{\"execute\":\"echo\",\"arguments\":[]}", "GenericError",
		   "QMP input member 'arguments' must be an object");
	expect_err("{\"execute\":\"echo\",\"arguments\":null}", "GenericError",
		   "QMP input member 'arguments' must be an object");
	/* "\r\n" endings and surrounding blanks are fine */
	expect(" {\"execute\":\"null\"} \r\n", "{\"return\":{}}");
	expect("{\"execute\":\"null\"}\n", "{\"return\":{}}");
	CU_ASSERT_PTR_NULL(qmp_session_handle_line(&sess, "", 0, NULL));
	CU_ASSERT_PTR_NULL(qmp_session_handle_line(&sess, " \t\r\n", 4, NULL));
	CU_ASSERT_PTR_NULL(qmp_session_handle_line(&sess, "\n", 1, NULL));
}

static void test_args(void)
{
	fresh_session(true);
	expect_err("{\"execute\":\"echo\"}", "GenericError",
		   "Parameter 's' is missing");
	expect_err("{\"execute\":\"echo\",\"arguments\":{\"i\":1}}",
		   "GenericError", "Parameter 's' is missing");
	expect_err("{\"execute\":\"echo\",\"arguments\":{\"s\":1}}",
		   "GenericError", "Parameter 's' expects string");
	expect_err("{\"execute\":\"echo\",\"arguments\":{\"s\":null}}",
		   "GenericError", "Parameter 's' expects string");
	expect_err("{\"execute\":\"echo\",\"arguments\":{\"s\":\"\",\"i\":\"1\"}}",
		   "GenericError", "Parameter 'i' expects integer");
	expect_err("{\"execute\":\"echo\",\"arguments\":{\"s\":\"\",\"i\":1.5}}",
		   "GenericError", "Parameter 'i' expects integer");
	expect_err("{\"execute\":\"echo\",\"arguments\":"
		   "{\"s\":\"\",\"i\":9223372036854775808}}",
		   "GenericError", "Parameter 'i' expects integer");
	expect_err("{\"execute\":\"echo\",\"arguments\":{\"s\":\"\",\"b\":1}}",
		   "GenericError", "Parameter 'b' expects boolean");
	expect_err("{\"execute\":\"echo\",\"arguments\":{\"s\":\"\",\"n\":\"1\"}}",
		   "GenericError", "Parameter 'n' expects number");
	expect_err("{\"execute\":\"echo\",\"arguments\":{\"s\":\"\",\"o\":[]}}",
		   "GenericError", "Parameter 'o' expects object");
	expect_err("{\"execute\":\"echo\",\"arguments\":{\"s\":\"\",\"zz\":1}}",
		   "GenericError", "Parameter 'zz' is unexpected");
	expect_err("{\"execute\":\"null\",\"arguments\":{\"x\":1}}",
		   "GenericError", "Parameter 'x' is unexpected");
	expect_err("{\"execute\":\"query-commands\",\"arguments\":{\"x\":1}}",
		   "GenericError", "Parameter 'x' is unexpected");
	CU_ASSERT_EQUAL(tctx.calls, 0);
	expect("{\"execute\":\"echo\",\"arguments\":{\"s\":\"x\"}}",
	       "{\"return\":{\"s\":\"x\"}}");
	expect("{\"execute\":\"echo\",\"arguments\":{\"s\":\"x\","
	       "\"i\":-9223372036854775808,\"b\":false,\"n\":2.5,"
	       "\"o\":{\"k\":[]},\"a\":null}}",
	       "{\"return\":{\"s\":\"x\",\"i\":-9223372036854775808,"
	       "\"b\":false,\"n\":2.5,\"o\":{\"k\":[]},\"a\":null}}");
	expect("{\"execute\":\"echo\",\"arguments\":{\"s\":\"\","
	       "\"i\":9223372036854775807,\"n\":3}}",
	       "{\"return\":{\"s\":\"\",\"i\":9223372036854775807,\"n\":3}}");
	CU_ASSERT_EQUAL(tctx.calls, 3);
}

static void test_query_commands(void)
{
	fresh_session(true);
	expect("{\"execute\":\"query-commands\",\"id\":\"c\"}",
	       "{\"return\":[{\"name\":\"qmp_capabilities\"},"
	       "{\"name\":\"query-commands\"},{\"name\":\"echo\"},"
	       "{\"name\":\"null\"},{\"name\":\"fail\"},{\"name\":\"sloppy\"},"
	       "{\"name\":\"list\"},{\"name\":\"quit\"},"
	       "{\"name\":\"drop-other\"}],\"id\":\"c\"}");
	/* an endpoint without a table still has the built-ins */
	scfg.commands = NULL;
	expect("{\"execute\":\"query-commands\"}",
	       "{\"return\":[{\"name\":\"qmp_capabilities\"},"
	       "{\"name\":\"query-commands\"}]}");
	expect_err("{\"execute\":\"echo\"}", "CommandNotFound",
		   "The command echo has not been found");
}

static void test_handler_errors(void)
{
	struct qmp_error e;
	char big[400];
	size_t i;

	fresh_session(true);
	expect("{\"execute\":\"fail\",\"arguments\":{\"id\":\"disk0\"},\"id\":3}",
	       "{\"error\":{\"class\":\"DeviceNotFound\","
	       "\"desc\":\"Device 'disk0' not found\"},\"id\":3}");
	expect_err("{\"execute\":\"sloppy\"}", "GenericError",
		   "Command 'sloppy' failed");
	/* a clipped description never ends inside a UTF-8 sequence */
	for (i = 0; i + 2 < sizeof(big); i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	big[i] = '\0';
	CU_ASSERT_EQUAL(qmp_error_set(&e, "GenericError", "%s", big), -1);
	CU_ASSERT_EQUAL(strlen(e.desc), 254);
	CU_ASSERT_EQUAL(qmp_error_set(&e, "GenericError", "x%s", big), -1);
	CU_ASSERT_EQUAL(strlen(e.desc), 255);
	CU_ASSERT_STRING_EQUAL(e.class, "GenericError");
}

static void test_close_after(void)
{
	bool close_after = true;
	const char *quit = "{\"execute\":\"quit\"}";
	char *r;

	fresh_session(true);
	r = qmp_session_handle_line(&sess, quit, strlen(quit), &close_after);
	CU_ASSERT_STRING_EQUAL(r, "{\"return\":{}}\r\n");
	CU_ASSERT_TRUE(close_after);
	free(r);
	r = qmp_session_handle_line(&sess, "{\"execute\":\"null\"}", 18,
				    &close_after);
	CU_ASSERT_FALSE(close_after);
	free(r);
	/* refused before negotiation: nothing ran, nothing to close */
	fresh_session(false);
	r = qmp_session_handle_line(&sess, quit, strlen(quit), &close_after);
	CU_ASSERT_FALSE(close_after);
	free(r);
}

/* ------------------------------------------------------------------ */
/* line framing                                                        */
/* ------------------------------------------------------------------ */

struct fed {
	int ok, too_long, too_deep;
	char last[128];
};

/* Feed data in chunks of `chunk` bytes, recording what comes out. */
static void feed(struct qmp_linebuf *lb, const char *data, size_t len,
		 size_t chunk, struct fed *f)
{
	enum qmp_line kind;
	const char *line;
	size_t off = 0, end, n, llen;
	unsigned stalled = 0;

	while (off < len) {
		end = off + chunk < len ? off + chunk : len;
		while (off < end) {
			n = qmp_linebuf_feed(lb, data + off, end - off, &kind,
					     &line, &llen);
			/* a call may take nothing, but never two in a row */
			stalled = n ? 0 : stalled + 1;
			CU_ASSERT_FATAL(stalled < 2);
			CU_ASSERT(lb->len <= lb->max);
			off += n;
			if (kind == QMP_LINE_OK) {
				f->ok++;
				CU_ASSERT_EQUAL(strlen(line), llen);
				snprintf(f->last, sizeof(f->last), "%s", line);
			} else if (kind == QMP_LINE_TOO_LONG) {
				f->too_long++;
			} else if (kind == QMP_LINE_TOO_DEEP) {
				f->too_deep++;
			}
		}
	}
}

static void test_linebuf(void)
{
	struct qmp_linebuf lb;
	struct fed f = { 0 };
	const char *line;
	size_t len;

	CU_ASSERT_EQUAL_FATAL(qmp_linebuf_init(&lb, 8), 0);
	feed(&lb, "a\nbc", 4, 4, &f);
	CU_ASSERT_EQUAL(f.ok, 1);
	CU_ASSERT_STRING_EQUAL(f.last, "a");
	feed(&lb, "d\r\n", 3, 3, &f);
	CU_ASSERT_EQUAL(f.ok, 2);
	CU_ASSERT_STRING_EQUAL(f.last, "bcd\r");
	/* exactly the limit is fine, one more is not */
	feed(&lb, "12345678\n", 9, 1, &f);
	CU_ASSERT_EQUAL(f.ok, 3);
	CU_ASSERT_STRING_EQUAL(f.last, "12345678");
	feed(&lb, "123456789\nok\n", 13, 13, &f);
	CU_ASSERT_EQUAL(f.too_long, 1);
	CU_ASSERT_EQUAL(f.ok, 4);
	CU_ASSERT_STRING_EQUAL(f.last, "ok");
	/* reported once, as soon as the limit passes, whatever the chunks */
	feed(&lb, "0123456789abcdefghij\nnext\n", 26, 3, &f);
	CU_ASSERT_EQUAL(f.too_long, 2);
	CU_ASSERT_EQUAL(f.ok, 5);
	CU_ASSERT_STRING_EQUAL(f.last, "next");
	/* whitespace between texts is nobody's */
	feed(&lb, "\n \r\n\t", 5, 1, &f);
	CU_ASSERT_EQUAL(f.ok, 5);
	CU_ASSERT_STRING_EQUAL(f.last, "next");
	/* at EOF: an unterminated line is still a line, once */
	feed(&lb, "tail", 4, 4, &f);
	CU_ASSERT_EQUAL(qmp_linebuf_flush(&lb, &line, &len), QMP_LINE_OK);
	CU_ASSERT_STRING_EQUAL(line, "tail");
	CU_ASSERT_EQUAL(len, 4);
	CU_ASSERT_EQUAL(qmp_linebuf_flush(&lb, &line, &len), QMP_LINE_NONE);
	feed(&lb, "far too long", 12, 12, &f);
	CU_ASSERT_EQUAL(f.too_long, 3);
	CU_ASSERT_EQUAL(qmp_linebuf_flush(&lb, &line, &len), QMP_LINE_NONE);
	feed(&lb, "x\n", 2, 2, &f);
	CU_ASSERT_STRING_EQUAL(f.last, "x");
	qmp_linebuf_destroy(&lb);
}

/* Framed as QEMU's streamer frames, by braces, whatever the reads
 * (every chunk size, so every split point, inside strings and escapes
 * too); newlines are whitespace; what is not JSON ends at its line's end
 * or the next opener, a string at a raw newline. */
static void test_framing_json(void)
{
	static const char in[] =
		"{\"execute\":\"a\"}{\"execute\":\"b\"}\n"   /* two on a line */
		"  {\"execute\": \"c\", \"arguments\":{\"x\":[1,{}]}}\r\n"
		"{\"s\":\"}{\\\"\"}"                       /* braces, a quote in a string */
		"{\"execute\":\n\"query-name\"}\n"          /* over two lines */
		"\n{\n \"execute\" :\r\n\n\"x\",\n\"arguments\":{\"s\":\"a\\\"}{\"}\n}\n"
		"[1,\n[2]]{\"execute\":\"f\"}"               /* an array, then one */
		"{\"bad\":\"no end\n"                       /* a string into a newline */
		"{\"execute\":\"d\"} junk\n"                /* junk after a request */
		"]{\"execute\":\"e\"}\n"                   /* a stray closer */
		"garbage \"{\" {\"execute\":\"g\"}\n";      /* junk, then a request */
	static const char *const want[] = {
		"{\"execute\":\"a\"}", "{\"execute\":\"b\"}",
		"{\"execute\": \"c\", \"arguments\":{\"x\":[1,{}]}}",
		"{\"s\":\"}{\\\"\"}", "{\"execute\":\n\"query-name\"}",
		"{\n \"execute\" :\r\n\n\"x\",\n\"arguments\":{\"s\":\"a\\\"}{\"}\n}",
		"[1,\n[2]]", "{\"execute\":\"f\"}",
		"{\"bad\":\"no end",
		"{\"execute\":\"d\"}", "junk", "]", "{\"execute\":\"e\"}",
		"garbage \"{\" ", "{\"execute\":\"g\"}",
	};
	const size_t nw = sizeof(want) / sizeof(want[0]);

	for (size_t chunk = 1; chunk <= sizeof(in); chunk++) {
		struct qmp_linebuf lb;
		size_t off = 0, got = 0;
		unsigned stalled = 0;

		CU_ASSERT_EQUAL_FATAL(qmp_linebuf_init(&lb, 0), 0);
		while (off < sizeof(in) - 1) {
			size_t end = off + chunk < sizeof(in) - 1 ? off + chunk : sizeof(in) - 1;

			while (off < end) {
				enum qmp_line kind;
				const char *line;
				size_t llen, n;

				n = qmp_linebuf_feed(&lb, in + off, end - off, &kind,
						     &line, &llen);
				stalled = n ? 0 : stalled + 1;
				CU_ASSERT_FATAL(stalled < 2);
				off += n;
				if (kind != QMP_LINE_OK)
					continue;
				CU_ASSERT_FATAL(got < nw);
				CU_ASSERT_STRING_EQUAL(line, want[got]);
				got++;
			}
		}
		CU_ASSERT_EQUAL(got, nw);
		qmp_linebuf_destroy(&lb);
	}
}

/* Depth and size stay bounded in a stream: each is answered once, as soon
 * as it is passed, the rest of that text is dropped whatever lines it
 * spans, and the request after it is read. */
static void test_stream_limits(void)
{
	char deep[2 * (QMP_MAX_DEPTH + 1) + 32];
	struct qmp_linebuf lb;
	struct fed f = { 0 };
	size_t n = 0;

	for (int d = 0; d < QMP_MAX_DEPTH; d++)
		deep[n++] = '[';
	for (int d = 0; d < QMP_MAX_DEPTH; d++)
		deep[n++] = ']';
	CU_ASSERT_EQUAL_FATAL(qmp_linebuf_init(&lb, 0), 0);
	feed(&lb, deep, n, 7, &f);              /* exactly the limit is fine */
	CU_ASSERT_EQUAL(f.ok, 1);
	CU_ASSERT_EQUAL(f.too_deep, 0);
	n = 0;
	for (int d = 0; d <= QMP_MAX_DEPTH; d++)
		deep[n++] = d % 2 ? '[' : '{';
	deep[n++] = '\n';                      /* a newline ends nothing */
	for (int d = 0; d <= QMP_MAX_DEPTH; d++)
		deep[n++] = d % 2 ? ']' : '}';
	memcpy(deep + n, "{\"execute\":\"n\"}", 15);
	n += 15;
	for (size_t chunk = 1; chunk <= n; chunk += 5) {
		struct fed g = { 0 };

		feed(&lb, deep, n, chunk, &g);
		CU_ASSERT_EQUAL(g.too_deep, 1);
		CU_ASSERT_EQUAL(g.ok, 1);
		CU_ASSERT_STRING_EQUAL(g.last, "{\"execute\":\"n\"}");
	}
	qmp_linebuf_destroy(&lb);

	/* oversize over several lines, then garbage, then a request */
	CU_ASSERT_EQUAL_FATAL(qmp_linebuf_init(&lb, 16), 0);
	static const char big[] = "{\"a\":\n[1,\n2,\n3,\n4,\"}\",5,6,7,8]}\n@@\n{\"b\":1}";
	memset(&f, 0, sizeof(f));
	feed(&lb, big, strlen(big), 3, &f);
	CU_ASSERT_EQUAL(f.too_long, 1);
	CU_ASSERT_EQUAL(f.ok, 2);
	CU_ASSERT_STRING_EQUAL(f.last, "{\"b\":1}");
	qmp_linebuf_destroy(&lb);
}

/* Through the session: a request over lines is executed, and each text
 * that is not JSON gets its error while the stream goes on. */
static void test_stream_session(void)
{
	static const char in[] =
		"{\"execute\":\n\"null\",\n \"id\": 7}\n"
		"not json {\"execute\":\"null\",\"id\":8}"
		"{\"execute\":\"echo\",\"arguments\":{\"s\":\"x\\\"}{\"},\"id\":9}\n";
	static const char *const want[] = {
		"{\"return\":{},\"id\":7}\r\n",
		"{\"error\":{\"class\":\"GenericError\"",
		"{\"return\":{},\"id\":8}\r\n",
		"{\"return\":{\"s\":\"x\\\"}{\"},\"id\":9}\r\n",
	};
	struct qmp_linebuf lb;
	size_t off = 0, got = 0, len = sizeof(in) - 1;

	fresh_session(true);
	CU_ASSERT_EQUAL_FATAL(qmp_linebuf_init(&lb, 0), 0);
	while (off < len) {
		enum qmp_line kind;
		const char *line;
		size_t llen;
		char *r;

		off += qmp_linebuf_feed(&lb, in + off, len - off, &kind, &line, &llen);
		if (kind != QMP_LINE_OK)
			continue;
		r = qmp_session_handle_line(&sess, line, llen, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(r);
		CU_ASSERT_FATAL(got < 4);
		CU_ASSERT_NSTRING_EQUAL(r, want[got], strlen(want[got]));
		free(r);
		got++;
	}
	CU_ASSERT_EQUAL(got, 4);
	qmp_linebuf_destroy(&lb);
}

/* A huge line through the default limit: one error, bounded memory, and
 * the next line works. */
static void test_too_long_session(void)
{
	size_t big = 1024 * 1024 + 100, off = 0, n, llen;
	struct qmp_linebuf lb;
	enum qmp_line kind;
	const char *line;
	char *data, *r;
	int errors = 0, ok = 0;

	fresh_session(true);
	data = malloc(big + 64);
	CU_ASSERT_PTR_NOT_NULL_FATAL(data);
	memset(data, 'x', big);
	strcpy(data + big, "\n{\"execute\":\"null\",\"id\":2}\r\n");
	CU_ASSERT_EQUAL_FATAL(qmp_linebuf_init(&lb, 0), 0);
	CU_ASSERT_EQUAL(lb.max, QMP_MAX_LINE);
	while (off < strlen(data)) {
		n = strlen(data) - off;
		if (n > 4096)
			n = 4096;
		off += qmp_linebuf_feed(&lb, data + off, n, &kind, &line,
					&llen);
		CU_ASSERT(lb.len <= QMP_MAX_LINE);
		if (kind == QMP_LINE_TOO_LONG) {
			r = qmp_session_too_long(&sess);
			CU_ASSERT_STRING_EQUAL(r, TOO_LONG "\r\n");
			free(r);
			errors++;
		} else if (kind == QMP_LINE_OK) {
			r = qmp_session_handle_line(&sess, line, llen, NULL);
			CU_ASSERT_STRING_EQUAL(r, "{\"return\":{},\"id\":2}\r\n");
			free(r);
			ok++;
		}
	}
	CU_ASSERT_EQUAL(errors, 1);
	CU_ASSERT_EQUAL(ok, 1);
	qmp_linebuf_destroy(&lb);
	/* the session enforces the limit on its own too */
	r = qmp_session_handle_line(&sess, data, QMP_MAX_LINE + 1, NULL);
	CU_ASSERT_STRING_EQUAL(r, TOO_LONG "\r\n");
	free(r);
	free(data);
}

/* ------------------------------------------------------------------ */
/* transport                                                           */
/* ------------------------------------------------------------------ */

static char tdir[64];

static void tpath(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tdir, name);
}

struct tc {
	int fd;
	size_t len;
	char buf[8192];
	char line[8192];
};

/* How long a test waits for a line or an EOF that must come.  Every wait
 * ends as soon as it comes, so a passing run never waits this long; the
 * bound only turns a broken server into a failure instead of a hang, and is
 * far above what a loaded 2-CPU machine (ASan build and a CPU hog beside
 * it) needs to schedule the server thread. */
#define TC_TIMEOUT_MS 30000

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

static int tc_open(struct tc *c, const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	c->len = 0;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

static void tc_close(struct tc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void tc_send(struct tc *c, const char *s)
{
	size_t len = strlen(s), off = 0;
	ssize_t n;

	while (off < len) {
		n = send(c->fd, s + off, len - off, MSG_NOSIGNAL);
		CU_ASSERT_FATAL(n > 0);
		off += (size_t)n;
	}
}

/* Wait for input; 1: readable, 0: timeout. */
static int tc_wait(struct tc *c, long deadline)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	long left = deadline - now_ms();

	if (left < 0)
		left = 0;
	return poll(&p, 1, (int)left) > 0;
}

/* The next CRLF-terminated line (without CRLF), or NULL on EOF/timeout. */
static const char *tc_line(struct tc *c, int timeout_ms)
{
	long deadline = now_ms() + timeout_ms;
	char *nl;
	size_t n;
	ssize_t r;

	for (;;) {
		nl = memchr(c->buf, '\n', c->len);
		if (nl) {
			n = (size_t)(nl - c->buf) + 1;
			CU_ASSERT(n >= 2 && nl[-1] == '\r');
			memcpy(c->line, c->buf, n - 2);
			c->line[n - 2] = '\0';
			memmove(c->buf, c->buf + n, c->len - n);
			c->len -= n;
			return c->line;
		}
		if (c->len == sizeof(c->buf) || !tc_wait(c, deadline))
			return NULL;
		r = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (r <= 0)
			return NULL;
		c->len += (size_t)r;
	}
}

static void tc_expect(struct tc *c, const char *want)
{
	const char *got = tc_line(c, TC_TIMEOUT_MS);

	CU_ASSERT_PTR_NOT_NULL_FATAL(got);
	CU_ASSERT_STRING_EQUAL(got, want);
	if (strcmp(got, want))
		fprintf(stderr, "\n  got:  %s\n  want: %s\n", got, want);
}

/* Read until EOF (a reset counts); false on timeout.  Lines seen are
 * counted in *lines if given. */
static bool tc_eof(struct tc *c, int timeout_ms, long *lines)
{
	long deadline = now_ms() + timeout_ms;
	char buf[65536];
	ssize_t r, i;

	if (lines)
		for (i = 0; i < (ssize_t)c->len; i++)
			*lines += c->buf[i] == '\n';
	c->len = 0;
	for (;;) {
		if (!tc_wait(c, deadline))
			return false;
		r = read(c->fd, buf, sizeof(buf));
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return true;
		if (r < 0)
			return false;
		if (lines)
			for (i = 0; i < r; i++)
				*lines += buf[i] == '\n';
	}
}

/* Connect until a greeting comes instead of the at-once close that a full
 * endpoint answers with; false if none came within TC_TIMEOUT_MS. */
static bool tc_start_when_free(struct tc *c, const char *path)
{
	long deadline = now_ms() + TC_TIMEOUT_MS;
	const char *line;

	do {
		if (tc_open(c, path) == 0) {
			line = tc_line(c, TC_TIMEOUT_MS);
			if (line && !strcmp(line, GREETING))
				return true;
			tc_close(c);
		}
		usleep(10000);
	} while (now_ms() < deadline);
	return false;
}

/* Connect, check the greeting, optionally negotiate. */
static void tc_start(struct tc *c, const char *path, bool negotiate)
{
	CU_ASSERT_EQUAL_FATAL(tc_open(c, path), 0);
	tc_expect(c, GREETING);
	if (negotiate) {
		tc_send(c, "{\"execute\":\"qmp_capabilities\"}\n");
		tc_expect(c, "{\"return\":{}}");
	}
}

static struct qmp_server *server(void)
{
	struct qmp_server *s = NULL;
	struct fv_error err;

	CU_ASSERT_EQUAL_FATAL(qmp_server_create(&s, &err), 0);
	tctx.srv = s;
	return s;
}

static struct qmp_endpoint *endpoint(struct qmp_server *s, const char *path)
{
	struct qmp_endpoint_config cfg = tcfg(path);
	struct qmp_endpoint *ep = NULL;
	struct fv_error err;

	if (qmp_endpoint_add(s, &cfg, &ep, &err))
		fprintf(stderr, "\n  endpoint: %s\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ep);
	return ep;
}

static void test_srv_basic(void)
{
	struct qmp_server *s = server();
	char path[108];
	struct stat st;
	struct tc c;

	tpath(path, sizeof(path), "basic.sock");
	endpoint(s, path);
	CU_ASSERT_EQUAL_FATAL(lstat(path, &st), 0);
	CU_ASSERT(S_ISSOCK(st.st_mode));
	CU_ASSERT_EQUAL(st.st_mode & 07777, 0600);
	tc_start(&c, path, false);
	tc_send(&c, "{\"execute\":\"null\"}\n");
	tc_expect(&c, "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\""
		  NEED_CAPS "\"}}");
	tc_send(&c, "{\"execute\":\"qmp_capabilities\",\"id\":1}\r\n");
	tc_expect(&c, "{\"return\":{},\"id\":1}");
	tc_send(&c, "\n{\"execute\":\"echo\",\"arguments\":{\"s\":\"hi\"}}\n");
	tc_expect(&c, "{\"return\":{\"s\":\"hi\"}}");
	/* pipelined: one write, answers in order */
	tc_send(&c, "{\"execute\":\"null\",\"id\":1}\n{\"execute\":\"bad\","
		"\"id\":2}\nnot json\n{\"execute\":\"list\",\"id\":3}\n");
	tc_expect(&c, "{\"return\":{},\"id\":1}");
	tc_expect(&c, "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":"
		  "\"The command bad has not been found\"},\"id\":2}");
	CU_ASSERT_PTR_NOT_NULL(strstr(tc_line(&c, TC_TIMEOUT_MS), "JSON parse error"));
	tc_expect(&c, "{\"return\":[1],\"id\":3}");
	/* a line split across writes */
	tc_send(&c, "{\"execute\":");
	usleep(20000);
	tc_send(&c, "\"null\"}\n");
	tc_expect(&c, "{\"return\":{}}");
	tc_close(&c);

	/* socat style: last line unterminated, then half-close, then read */
	tc_start(&c, path, false);
	tc_send(&c, "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"null\"}");
	shutdown(c.fd, SHUT_WR);
	tc_expect(&c, "{\"return\":{}}");
	tc_expect(&c, "{\"return\":{}}");
	CU_ASSERT_TRUE(tc_eof(&c, TC_TIMEOUT_MS, NULL));
	tc_close(&c);

	/* quit: the reply, then EOF */
	tc_start(&c, path, true);
	tc_send(&c, "{\"execute\":\"quit\",\"id\":9}\n{\"execute\":\"null\"}\n");
	tc_expect(&c, "{\"return\":{},\"id\":9}");
	CU_ASSERT_TRUE(tc_eof(&c, TC_TIMEOUT_MS, NULL));
	tc_close(&c);

	qmp_server_destroy(s);
	CU_ASSERT_EQUAL(lstat(path, &st), -1);
}

static void test_srv_two_clients(void)
{
	struct qmp_server *s = server();
	static struct tc a, b;
	char path[108];

	tpath(path, sizeof(path), "two.sock");
	endpoint(s, path);
	tc_start(&a, path, true);
	tc_start(&b, path, false);
	tc_send(&b, "{\"execute\":\"null\",\"id\":\"b\"}\n");
	tc_send(&a, "{\"execute\":\"null\",\"id\":\"a\"}\n");
	tc_expect(&a, "{\"return\":{},\"id\":\"a\"}");
	CU_ASSERT_PTR_NOT_NULL(strstr(tc_line(&b, TC_TIMEOUT_MS), "CommandNotFound"));
	tc_send(&b, "{\"execute\":\"qmp_capabilities\"}\n");
	tc_expect(&b, "{\"return\":{}}");
	tc_send(&b, "{\"execute\":\"echo\",\"arguments\":{\"s\":\"b\"}}\n");
	tc_send(&a, "{\"execute\":\"echo\",\"arguments\":{\"s\":\"a\"}}\n");
	tc_expect(&b, "{\"return\":{\"s\":\"b\"}}");
	tc_expect(&a, "{\"return\":{\"s\":\"a\"}}");
	/* one leaving does not disturb the other */
	tc_close(&a);
	tc_send(&b, "{\"execute\":\"null\"}\n");
	tc_expect(&b, "{\"return\":{}}");
	tc_close(&b);
	qmp_server_destroy(s);
}

struct emit_job {
	struct qmp_endpoint *ep;
	const char *name;
	bool with_data;
	int count;
	long elapsed_ms;
};

static void *emitter(void *arg)
{
	struct emit_job *j = arg;
	struct json_object *data;
	long t0 = now_ms();
	int i;

	for (i = 0; i < j->count; i++) {
		data = NULL;
		if (j->with_data) {
			data = json_object_new_object();
			json_object_object_add(data, "n",
					       json_object_new_int(i));
		}
		qmp_endpoint_event(j->ep, j->name, data);
	}
	j->elapsed_ms = now_ms() - t0;
	return NULL;
}

static void run_emitter(struct emit_job *j)
{
	pthread_t t;

	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, emitter, j), 0);
	pthread_join(t, NULL);
}

/* run_emitter for a job that would block forever if the emitter waited
 * on a client: false if it has not finished after EMIT_HANG_S.  No
 * correct emitter comes near that bound (100,000 events take well under a
 * second unloaded); it only turns a hang into a failure. */
#define EMIT_HANG_S 120
static bool run_emitter_bounded(struct emit_job *j)
{
	struct timespec until;
	pthread_t t;

	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, emitter, j), 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += EMIT_HANG_S;
	if (pthread_timedjoin_np(t, NULL, &until) == 0)
		return true;
	pthread_detach(t);
	return false;
}

/* Wall-clock microseconds, read exactly as qmp_event_line reads them. */
static int64_t realtime_us(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

/* An event line: right name, data as given, a timestamp taken between
 * @before (read before the event was emitted) and now.  Both bounds come
 * from the clock the code stamps with (CLOCK_REALTIME through
 * clock_gettime, truncated to microseconds), so a correct stamp lies
 * between them however late the threads run; time(NULL) reads the coarse
 * clock, which lags by up to a tick and made correct stamps look like the
 * future. */
static void check_event(const char *line, const char *name, int n,
			int64_t before)
{
	struct json_object *ev = json_tokener_parse(line), *v, *ts;
	int64_t sec, usec, after = realtime_us();

	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT(json_object_object_get_ex(ev, "event", &v));
	CU_ASSERT_STRING_EQUAL(json_object_get_string(v), name);
	if (n >= 0) {
		CU_ASSERT(json_object_object_get_ex(ev, "data", &v) &&
			  json_object_object_get_ex(v, "n", &v) &&
			  json_object_get_int(v) == n);
	} else {
		CU_ASSERT_FALSE(json_object_object_get_ex(ev, "data", &v));
	}
	CU_ASSERT_FATAL(json_object_object_get_ex(ev, "timestamp", &ts));
	CU_ASSERT(json_object_object_get_ex(ts, "seconds", &v) &&
		  json_object_is_type(v, json_type_int));
	sec = json_object_get_int64(v);
	CU_ASSERT(json_object_object_get_ex(ts, "microseconds", &v) &&
		  json_object_is_type(v, json_type_int));
	usec = json_object_get_int64(v);
	CU_ASSERT(usec >= 0 && usec < 1000000);
	CU_ASSERT(sec * 1000000 + usec >= before);
	CU_ASSERT(sec * 1000000 + usec <= after);
	/* nothing else in it */
	CU_ASSERT_EQUAL(json_object_object_length(ev), n >= 0 ? 3 : 2);
	json_object_put(ev);
}

static void test_srv_events(void)
{
	struct qmp_server *s = server();
	struct emit_job j = { 0 };
	static struct tc a, b;
	struct qmp_endpoint *ep;
	char path[108];
	int64_t before;

	tpath(path, sizeof(path), "events.sock");
	ep = endpoint(s, path);
	tc_start(&a, path, true);
	tc_start(&b, path, false);      /* greeting seen: it is accepted */
	before = realtime_us();
	j = (struct emit_job){ .ep = ep, .name = "TEST", .with_data = true,
			       .count = 1 };
	run_emitter(&j);
	j = (struct emit_job){ .ep = ep, .name = "STOP", .count = 1 };
	run_emitter(&j);
	check_event(tc_line(&a, TC_TIMEOUT_MS), "TEST", 0, before);
	check_event(tc_line(&a, TC_TIMEOUT_MS), "STOP", -1, before);
	/* b was not negotiated: its next line is the reply, no event */
	tc_send(&b, "{\"execute\":\"qmp_capabilities\",\"id\":1}\n");
	tc_expect(&b, "{\"return\":{},\"id\":1}");
	j = (struct emit_job){ .ep = ep, .name = "RESUME", .count = 1 };
	run_emitter(&j);
	check_event(tc_line(&b, TC_TIMEOUT_MS), "RESUME", -1, before);
	check_event(tc_line(&a, TC_TIMEOUT_MS), "RESUME", -1, before);
	CU_ASSERT_EQUAL(qmp_endpoint_event(NULL, "X", NULL), -1);
	CU_ASSERT_EQUAL(qmp_endpoint_event(ep, NULL, json_object_new_object()),
			-1);
	tc_close(&a);
	tc_close(&b);
	qmp_server_destroy(s);
}

/* A client that never reads is dropped; the emitter never waits. */
static void test_srv_slow_client(void)
{
	struct qmp_server *s = server();
	struct emit_job j = { 0 };
	static struct tc c, d;
	struct qmp_endpoint *ep;
	long lines = 0;
	char path[108];

	tpath(path, sizeof(path), "slow.sock");
	ep = endpoint(s, path);
	tc_start(&c, path, true);
	j = (struct emit_job){ .ep = ep, .name = "FLOOD", .with_data = true,
			       .count = 100000 };
	/* c never reads: an emitter that waited for it would never finish */
	CU_ASSERT_TRUE_FATAL(run_emitter_bounded(&j));
	CU_ASSERT_TRUE(tc_eof(&c, TC_TIMEOUT_MS, &lines));
	CU_ASSERT(lines > 0 && lines < 100000);
	if (getenv("QMP_TEST_VERBOSE") || lines <= 0 || lines >= 100000)
		fprintf(stderr, "\n  emit %ld ms, %ld lines\n", j.elapsed_ms,
			lines);
	tc_close(&c);
	/* the server is fine */
	tc_start(&d, path, true);
	tc_close(&d);
	qmp_server_destroy(s);
}

static void test_srv_remove(void)
{
	struct qmp_server *s = server();
	struct qmp_endpoint *ep1, *ep2;
	static struct tc a, b, c;
	char p1[108], p2[108];
	struct stat st;

	tpath(p1, sizeof(p1), "rm1.sock");
	tpath(p2, sizeof(p2), "rm2.sock");
	ep1 = endpoint(s, p1);
	ep2 = endpoint(s, p2);
	tc_start(&a, p1, true);
	tc_start(&b, p2, true);
	tc_start(&c, p2, false);
	/* from another thread: returns once everything is closed */
	qmp_endpoint_remove(s, ep1);
	CU_ASSERT_EQUAL(lstat(p1, &st), -1);
	CU_ASSERT_TRUE(tc_eof(&a, TC_TIMEOUT_MS, NULL));
	tc_close(&a);
	/* from a handler of another endpoint */
	ep1 = endpoint(s, p1);
	tctx.victim = ep2;
	tc_start(&a, p1, true);
	tc_send(&a, "{\"execute\":\"drop-other\"}\n");
	tc_expect(&a, "{\"return\":{}}");
	CU_ASSERT_PTR_NULL(tctx.victim);
	CU_ASSERT_EQUAL(lstat(p2, &st), -1);
	CU_ASSERT_TRUE(tc_eof(&b, TC_TIMEOUT_MS, NULL));
	CU_ASSERT_TRUE(tc_eof(&c, TC_TIMEOUT_MS, NULL));
	tc_close(&b);
	tc_close(&c);
	CU_ASSERT_EQUAL(tc_open(&b, p2), -1);
	/* a handler removing its own endpoint */
	tctx.victim = ep1;
	tc_send(&a, "{\"execute\":\"drop-other\",\"id\":5}\n");
	tc_expect(&a, "{\"return\":{},\"id\":5}");
	CU_ASSERT_TRUE(tc_eof(&a, TC_TIMEOUT_MS, NULL));
	CU_ASSERT_EQUAL(lstat(p1, &st), -1);
	tc_close(&a);
	qmp_server_destroy(s);
}

static void test_srv_paths(void)
{
	struct qmp_server *s = server();
	struct qmp_endpoint_config cfg;
	struct qmp_endpoint *ep, *live;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char path[108], file[108], longp[200];
	struct fv_error err;
	struct stat st;
	static struct tc c;
	int fd;

	/* stale: a socket file nobody listens on */
	tpath(path, sizeof(path), "stale.sock");
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&addr,
				   sizeof(addr)), 0);
	close(fd);
	CU_ASSERT_EQUAL(lstat(path, &st), 0);
	live = endpoint(s, path);
	tc_start(&c, path, true);
	tc_close(&c);
	/* live: refused, and the running endpoint is untouched */
	cfg = tcfg(path);
	CU_ASSERT_EQUAL(qmp_endpoint_add(s, &cfg, &ep, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_STATE);
	CU_ASSERT_PTR_NULL(ep);
	tc_start(&c, path, true);
	tc_close(&c);
	qmp_endpoint_remove(s, live);
	/* a regular file is never removed */
	tpath(file, sizeof(file), "file.sock");
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, "keep", 4), 4);
	close(fd);
	cfg = tcfg(file);
	CU_ASSERT_EQUAL(qmp_endpoint_add(s, &cfg, &ep, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	CU_ASSERT(lstat(file, &st) == 0 && S_ISREG(st.st_mode) &&
		  st.st_size == 4);
	unlink(file);
	/* longer than sun_path */
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	cfg = tcfg(longp);
	CU_ASSERT_EQUAL(qmp_endpoint_add(s, &cfg, &ep, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	cfg = tcfg("");
	CU_ASSERT_EQUAL(qmp_endpoint_add(s, &cfg, &ep, &err), -1);
	qmp_server_destroy(s);
}

static void test_srv_limits(void)
{
	struct qmp_server *s = server();
	static struct tc c[QMP_MAX_CLIENTS + 1];
	char path[108], chunk[4096];
	size_t sent;
	long lines;
	int i;

	tpath(path, sizeof(path), "limits.sock");
	endpoint(s, path);
	/* 1 MiB without a newline: one error, connection survives */
	tc_start(&c[0], path, true);
	memset(chunk, 'x', sizeof(chunk) - 1);
	chunk[sizeof(chunk) - 1] = '\0';
	for (sent = 0; sent < 1024 * 1024; sent += sizeof(chunk) - 1)
		tc_send(&c[0], chunk);
	tc_send(&c[0], "\n{\"execute\":\"null\",\"id\":1}\n");
	tc_expect(&c[0], TOO_LONG);
	tc_expect(&c[0], "{\"return\":{},\"id\":1}");
	/* QMP_MAX_CLIENTS at once; the next one is closed at once */
	for (i = 1; i < QMP_MAX_CLIENTS; i++)
		tc_start(&c[i], path, false);
	CU_ASSERT_EQUAL_FATAL(tc_open(&c[i], path), 0);
	lines = 0;
	CU_ASSERT_TRUE(tc_eof(&c[i], TC_TIMEOUT_MS, &lines));
	CU_ASSERT_EQUAL(lines, 0);
	tc_close(&c[i]);
	/* a slot frees up when someone leaves: once the server thread has
	 * seen the hang-up, which takes as long as the scheduler makes it */
	tc_close(&c[0]);
	CU_ASSERT_TRUE_FATAL(tc_start_when_free(&c[0], path));
	tc_send(&c[0], "{\"execute\":\"qmp_capabilities\"}\n");
	tc_expect(&c[0], "{\"return\":{}}");
	for (i = 0; i < QMP_MAX_CLIENTS; i++)
		tc_close(&c[i]);
	qmp_server_destroy(s);
}

/* A peer that is neither root nor the server's user sees EOF and no
 * greeting. */
static void test_srv_peercred(void)
{
	struct qmp_server *s;
	static struct tc c;
	char path[108];
	int status = -1;
	pid_t pid;

	if (geteuid() != 0) {
		fprintf(stderr, "\n  SKIP peer credentials: needs root to "
			"run a client as nobody ");
		return;
	}
	s = server();
	tpath(path, sizeof(path), "cred.sock");
	endpoint(s, path);
	/* let nobody reach the socket, so only SO_PEERCRED stops it */
	CU_ASSERT_EQUAL_FATAL(chmod(path, 0666), 0);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		char b[256];
		ssize_t n;

		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			_exit(10);
		if (tc_open(&c, path))
			_exit(11);
		if (!tc_wait(&c, now_ms() + TC_TIMEOUT_MS))
			_exit(12);
		n = read(c.fd, b, sizeof(b));
		_exit(n == 0 ? 0 : n > 0 ? 13 : 14);
	}
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT(WIFEXITED(status));
	CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fprintf(stderr, "\n  nobody client: status %#x\n", status);
	/* root is still let in */
	tc_start(&c, path, true);
	tc_close(&c);
	qmp_server_destroy(s);
}

static int suite_init(void)
{
	/* /tmp, not $TMPDIR: socket paths must fit in sun_path */
	strcpy(tdir, "/tmp/foldvm-qmp.XXXXXX");
	if (!mkdtemp(tdir))
		return -1;
	/* traversable, so the peer-credential test's client gets as far
	 * as connect() */
	return chmod(tdir, 0711);
}

static int suite_cleanup(void)
{
	static const char *const names[] = {
		"basic.sock", "two.sock", "events.sock", "slow.sock",
		"rm1.sock", "rm2.sock", "stale.sock", "file.sock",
		"limits.sock", "cred.sock",
	};
	char path[108];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		tpath(path, sizeof(path), names[i]);
		unlink(path);
	}
	return rmdir(tdir);
}

void unit_add_qmp_suite(void)
{
	CU_pSuite s = CU_add_suite("qmp", suite_init, suite_cleanup);

	CU_add_test(s, "greeting", test_greeting);
	CU_add_test(s, "capabilities negotiation", test_negotiation);
	CU_add_test(s, "id echoed verbatim", test_id_echo);
	CU_add_test(s, "request errors", test_errors);
	CU_add_test(s, "argument checks", test_args);
	CU_add_test(s, "query-commands", test_query_commands);
	CU_add_test(s, "handler errors", test_handler_errors);
	CU_add_test(s, "close after reply", test_close_after);
	CU_add_test(s, "line framing", test_linebuf);
	CU_add_test(s, "JSON framing (several per line, over lines and reads)", test_framing_json);
	CU_add_test(s, "JSON stream: depth and size limits, resync", test_stream_limits);
	CU_add_test(s, "JSON stream through the session", test_stream_session);
	CU_add_test(s, "too-long line", test_too_long_session);
	CU_add_test(s, "socket: greeting, negotiate, execute", test_srv_basic);
	CU_add_test(s, "socket: two clients", test_srv_two_clients);
	CU_add_test(s, "socket: events to negotiated clients", test_srv_events);
	CU_add_test(s, "socket: slow client dropped", test_srv_slow_client);
	CU_add_test(s, "socket: endpoint removal", test_srv_remove);
	CU_add_test(s, "socket: stale, live, file, long paths", test_srv_paths);
	CU_add_test(s, "socket: line and client limits", test_srv_limits);
	CU_add_test(s, "socket: peer credentials", test_srv_peercred);
}
