/*
 * qmp.h - a QMP-style control socket (QEMU docs/interop/qmp-spec.rst):
 * JSON objects, one per line, over UNIX stream sockets.
 *
 * Three layers, one file each, so the protocol can be unit-tested and
 * fuzzed without sockets:
 *
 *  1. the session (struct qmp_session, qmp_session.c): negotiation state
 *     and the command dispatcher.  It turns one request line into one reply
 *     line.
 *  2. line framing (struct qmp_linebuf, qmp_linebuf.c): bytes in, complete
 *     lines out, with a hard limit on the length of a line.
 *  3. the server (struct qmp_server, qmp_server.c): one thread polling
 *     every listening socket, every client and a wakeup eventfd.  An endpoint is one socket
 *     path with its own command table; a server may carry several.
 *
 * Wire format:
 *  - on connect the server sends the greeting
 *      {"QMP":{"version":{"qemu":{"micro":0,"minor":1,"major":0},
 *       "package":"foldvm 0.1.0"},"capabilities":[]}}
 *  - every line the server sends is one JSON object ending in "\r\n";
 *  - a client sends a stream of JSON objects, as to QEMU: newlines are
 *    whitespace, so one request may span lines and several may share one;
 *    at most QMP_MAX_LINE bytes and QMP_MAX_DEPTH levels of nesting per
 *    request.  What is not JSON is answered with an error, and the stream
 *    goes on at the next object (framing, below).  A request left
 *    unterminated at EOF (printf '...' | socat - UNIX:path) is still
 *    executed;
 *  - {"execute": NAME, "arguments": {...}, "id": ANY} is answered with
 *    {"return": ..., "id": ANY} or {"error": {"class": C, "desc": D},
 *    "id": ANY}; id is echoed only when given.  Error classes are QEMU's
 *    (GenericError, CommandNotFound, or whatever a handler sets);
 *  - before "qmp_capabilities" every other command is CommandNotFound;
 *  - events: {"event": NAME, "data": {...}, "timestamp": {"seconds": S,
 *    "microseconds": US}}, to negotiated clients only; "data" is left out
 *    when the event has none, as QEMU does.
 */
#ifndef FOLDVM_QMP_H
#define FOLDVM_QMP_H

#include <stdbool.h>
#include <stddef.h>
#include "lib/error.h"

struct json_object;

#define QMP_MAX_LINE    (64 * 1024)   /* bytes per request line, sans "\n" */
#define QMP_MAX_DEPTH   64            /* JSON nesting accepted in requests */
#define QMP_MAX_CLIENTS 16            /* connections per endpoint */
#define QMP_OUTQ_MAX    (1024 * 1024) /* unsent bytes; more drops the client */

/* --- commands --- */

enum qmp_type {
	QMP_T_STR,      /* JSON string without NUL characters */
	QMP_T_INT,      /* JSON integer that fits int64_t */
	QMP_T_BOOL,
	QMP_T_NUMBER,   /* integer or floating point */
	QMP_T_OBJECT,
	QMP_T_ANY,      /* anything, null included */
	/* For arguments that older clients sent as strings: the type the
	 * command documents, or a string that the handler parses. */
	QMP_T_INT_OR_STR,   /* JSON integer (any size), or a string */
	QMP_T_BOOL_OR_STR,  /* boolean, or a string, or an integer */
};

struct qmp_error {
	char class[32];  /* "GenericError", "CommandNotFound", ... */
	char desc[256];
};

/* Fill *e (class and printf-style description) and return -1, so a handler
 * can end with `return qmp_error_set(err, "GenericError", "...")`. */
int qmp_error_set(struct qmp_error *e, const char *cls, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * A command handler.  args is the request's "arguments" object (an empty
 * object when the request had none), already checked against the command's
 * argument table; it is borrowed (json_object_get() it to keep it).
 * Return 0 and set *ret to the result (ownership passes to the caller; NULL
 * means {}), or -1 with err filled in.  Handlers run on the server thread
 * and must not block for long: every client of every endpoint waits.
 */
typedef int (*qmp_handler)(void *ctx, struct json_object *args,
			   struct json_object **ret, struct qmp_error *err);

struct qmp_arg {
	const char *name;       /* NULL ends the table */
	enum qmp_type type;
	bool optional;
};

/* Close the connection once the reply is sent (e.g. "quit"); only when the
 * handler succeeded. */
#define QMP_CMD_CLOSE_AFTER (1u << 0)

struct qmp_command {
	const char *name;       /* NULL ends the table */
	qmp_handler fn;
	const struct qmp_arg *args;  /* NULL: the command takes no arguments */
	unsigned flags;         /* QMP_CMD_* */
	const char *help;       /* one line, for whoever lists commands */
};

/*
 * One endpoint: a socket path plus what its clients may do.  The command
 * table and ctx must stay valid until the endpoint is removed; path and
 * package are copied.  "qmp_capabilities" and "query-commands" are built
 * in; a table entry with either name is ignored.
 */
struct qmp_endpoint_config {
	const char *path;       /* UNIX socket; unused by the session */
	const struct qmp_command *commands;  /* may be NULL */
	void *ctx;              /* first argument of every handler */
	int major, minor, micro;  /* "version" in the greeting */
	const char *package;    /* "package" in the greeting; NULL: "" */
};

/* --- 1. session: one connection's protocol state, no I/O --- */

struct qmp_session {
	const struct qmp_endpoint_config *cfg;  /* borrowed, must outlive s */
	bool negotiated;
};

void qmp_session_init(struct qmp_session *s,
		      const struct qmp_endpoint_config *cfg);

/* The greeting line (malloc'd, ends in "\r\n"), or NULL if out of memory. */
char *qmp_session_greeting(const struct qmp_session *s);

/*
 * Execute one request line (a trailing "\r\n" or "\n" is allowed) and
 * return the reply line (malloc'd, ends in "\r\n").  NULL for a blank line
 * (nothing to answer) or if out of memory.  *close_after (may be NULL) is
 * set when the connection should be closed after this reply.
 */
char *qmp_session_handle_line(struct qmp_session *s, const char *line,
			      size_t len, bool *close_after);

/* Parse exactly one JSON value spanning the whole line (may be null), as
 * requests are parsed: strict JSON, valid UTF-8, at most QMP_MAX_DEPTH
 * deep, no NUL.  0 and *out (the caller puts it), or -1 with err. */
int qmp_parse_line(const char *line, size_t len, struct json_object **out,
		   struct qmp_error *err);

/* The reply to a line that was longer than the limit, and to one nested
 * deeper than QMP_MAX_DEPTH. */
char *qmp_session_too_long(const struct qmp_session *s);
char *qmp_session_too_deep(const struct qmp_session *s);

/* The event line (malloc'd, ends in "\r\n", stamped with the current
 * time) for NAME with data (may be NULL; taken over), or NULL if out of
 * memory. */
char *qmp_event_line(const char *name, struct json_object *data);

/* --- 2. framing --- */

/*
 * Requests are framed by the nesting of braces and brackets outside
 * strings, as QEMU's JSON streamer frames them: newlines are whitespace,
 * so `{"execute":` and `"a"}` on two lines are one request,
 * `{"execute":"a"}{"execute":"b"}` on one line are two, and one request
 * may come in any number of reads.  Whitespace between texts is skipped.
 * To resynchronise after what is not JSON (each such text is answered
 * with a parse error): a string never holds a raw newline (JSON wants it
 * escaped), so a text ends at a newline inside a string; anything outside
 * an object or array (a bare word, a number, a stray closer) is a text up
 * to its line's end or up to the next `{` or `[` outside a string,
 * whichever comes first.  An object left open still takes the lines after
 * it, as in QEMU, until it is closed or passes a limit.  The "line" in
 * the names below is such a text.
 */
/* JSON's whitespace (RFC 8259): between texts and around values. */
static inline bool qmp_json_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

enum qmp_line {
	QMP_LINE_NONE,          /* need more bytes */
	QMP_LINE_OK,            /* *line, *line_len: one text, as above */
	QMP_LINE_TOO_LONG,      /* a text passed the limit; the rest of it is
				 * being dropped.  Reported once per text, as
				 * soon as the limit is passed. */
	QMP_LINE_TOO_DEEP,      /* a text nested deeper than QMP_MAX_DEPTH;
				 * the rest of it is being dropped, as above */
};

struct qmp_linebuf {
	char *buf;              /* max + 1 bytes */
	size_t len;             /* bytes of the text being collected */
	size_t max;
	unsigned depth;         /* open braces and brackets (saturates) */
	bool in_string, escaped;/* inside a string; after its backslash */
	bool junk;              /* a text that is no object or array: it
				 * ends at its newline or next opener */
	bool discarding;        /* inside a too-long or too-deep text,
				 * until its end */
	bool handed_out;        /* buf holds the text returned last time */
};

/* max is the longest text accepted (0: QMP_MAX_LINE; larger values are
 * clamped to it).  Returns -1 if out of memory. */
int qmp_linebuf_init(struct qmp_linebuf *lb, size_t max);
void qmp_linebuf_destroy(struct qmp_linebuf *lb);

/*
 * Consume bytes from data[0..len) up to the end of the first text or the
 * point where it passed a limit; returns how many were consumed.  Call
 * again with the rest while any is left: a call that consumed nothing
 * handed out a text or ended a dropped one (its next byte starts the
 * next text), so every call makes progress.  A text returned stays valid
 * (NUL-terminated) until the next call.
 */
size_t qmp_linebuf_feed(struct qmp_linebuf *lb, const char *data, size_t len,
			enum qmp_line *kind, const char **line,
			size_t *line_len);

/* At end of input: the unfinished last text, if any (QMP_LINE_OK), or
 * QMP_LINE_NONE.  The buffer is empty afterwards. */
enum qmp_line qmp_linebuf_flush(struct qmp_linebuf *lb, const char **line,
				size_t *line_len);

/* --- 3. server --- */

struct qmp_server;
struct qmp_endpoint;

/* Start the server thread (with every signal blocked). */
int qmp_server_create(struct qmp_server **out, struct fv_error *err);

/* Stop the thread, close every client and socket, unlink the socket files.
 * Not from a handler, nor concurrently with qmp_endpoint_remove(). */
void qmp_server_destroy(struct qmp_server *s);

/*
 * Listen on cfg->path (mode 0600) and serve cfg's commands there.
 * From any thread, handlers included.  The path is refused if it does not
 * fit sun_path, if it exists and is not a socket, or if something answers
 * on it; a stale socket (connect() refused) is replaced.  Only peers whose
 * uid is the server's euid or 0 are accepted (SO_PEERCRED).
 */
int qmp_endpoint_add(struct qmp_server *s,
		     const struct qmp_endpoint_config *cfg,
		     struct qmp_endpoint **out, struct fv_error *err);

/*
 * Close the endpoint's clients and socket and unlink its socket file; ep is
 * gone afterwards.  From any thread other than the server's, this waits
 * until no handler of ep runs any more, so its ctx may be freed on return.
 * From a handler (any endpoint's, ep's own included) it cannot wait: the
 * socket file is unlinked at once, no further handler of ep is called, and
 * its sockets are closed when the handler's poll round ends (the reply in
 * progress is lost if ep is the handler's own endpoint).
 */
void qmp_endpoint_remove(struct qmp_server *s, struct qmp_endpoint *ep);

/*
 * Send an event to every negotiated client of ep; data (may be NULL) is
 * taken over.  From any thread, handlers included; never blocks on a
 * socket: a client whose output queue would pass QMP_OUTQ_MAX is dropped.
 * Returns -1 if ep or name is NULL or memory runs out.
 */
int qmp_endpoint_event(struct qmp_endpoint *ep, const char *name,
		       struct json_object *data);

#endif
