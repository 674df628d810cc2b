/*
 * qmp_session.c - the QMP session: negotiation, parsing, argument checks and
 * dispatch of one request line to one reply line; and the event line.  No
 * sockets here (qmp_server.c), so it is unit-tested and fuzzed directly.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>
#include "control/qmp.h"

#define QMP_GENERIC   "GenericError"
#define QMP_NOT_FOUND "CommandNotFound"

/* No "\/" escapes: QEMU does not write them and humans read these lines. */
#define QMP_JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* ------------------------------------------------------------------ */
/* errors and JSON helpers                                             */
/* ------------------------------------------------------------------ */

/* Drop a UTF-8 sequence that truncation cut short: the text ends up in a
 * JSON string, and a clipped sequence would make the line invalid. */
static void qmp_utf8_trim(char *s)
{
	size_t len = strlen(s), i = len, need;
	unsigned char lead;

	while (i > 0 && len - i < 3 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
		i--;
	if (i == 0)
		return;
	lead = (unsigned char)s[i - 1];
	if (lead < 0xc0)
		return;
	need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
	if (len - (i - 1) < need)
		s[i - 1] = '\0';
}

int qmp_error_set(struct qmp_error *e, const char *cls, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!e)
		return -1;
	snprintf(e->class, sizeof(e->class), "%s", cls ? cls : QMP_GENERIC);
	va_start(ap, fmt);
	n = vsnprintf(e->desc, sizeof(e->desc), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(e->desc))
		qmp_utf8_trim(e->desc);
	return -1;
}

/*
 * Add key: v to *o.  On any failure (v == NULL included) both are freed and
 * *o becomes NULL, so building a reply needs one check at the end, and
 * json-c never sees a NULL parent (it would assert).
 */
static void qmp_add(struct json_object **o, const char *key,
		    struct json_object *v)
{
	if (*o && v && !json_object_object_add(*o, key, v))
		return;
	json_object_put(v);
	json_object_put(*o);
	*o = NULL;
}

/* Serialize obj, which is put, as one CRLF-terminated line. */
static char *qmp_line(struct json_object *obj)
{
	const char *txt;
	char *line = NULL;
	size_t len;

	if (!obj)
		return NULL;
	txt = json_object_to_json_string_length(obj, QMP_JSON_FLAGS, &len);
	if (txt) {
		line = malloc(len + 3);
		if (line) {
			memcpy(line, txt, len);
			memcpy(line + len, "\r\n", 3);
		}
	}
	json_object_put(obj);
	return line;
}

/* ------------------------------------------------------------------ */
/* session: parsing and dispatch                                       */
/* ------------------------------------------------------------------ */

struct qmp_request {
	struct json_object *obj;   /* the whole parsed line */
	struct json_object *id;    /* borrowed from obj; may be JSON null */
	bool has_id;
	const char *name;          /* "execute" */
	struct json_object *args;  /* "arguments", or NULL */
};

void qmp_session_init(struct qmp_session *s,
		      const struct qmp_endpoint_config *cfg)
{
	s->cfg = cfg;
	s->negotiated = false;
}

char *qmp_session_greeting(const struct qmp_session *s)
{
	const struct qmp_endpoint_config *cfg = s->cfg;
	struct json_object *qemu = json_object_new_object();
	struct json_object *version = json_object_new_object();
	struct json_object *qmp = json_object_new_object();
	struct json_object *root = json_object_new_object();

	qmp_add(&qemu, "micro", json_object_new_int(cfg->micro));
	qmp_add(&qemu, "minor", json_object_new_int(cfg->minor));
	qmp_add(&qemu, "major", json_object_new_int(cfg->major));
	qmp_add(&version, "qemu", qemu);
	qmp_add(&version, "package",
		json_object_new_string(cfg->package ? cfg->package : ""));
	qmp_add(&qmp, "version", version);
	qmp_add(&qmp, "capabilities", json_object_new_array());
	qmp_add(&root, "QMP", qmp);
	return qmp_line(root);
}

/* Echo the request's id into a reply; NULL (and nothing leaked) when that
 * fails.  A JSON null id is a NULL pointer, which qmp_add() would refuse. */
static struct json_object *qmp_echo_id(struct json_object *reply,
				       const struct qmp_request *req)
{
	if (reply && req->has_id &&
	    json_object_object_add(reply, "id", json_object_get(req->id))) {
		json_object_put(req->id);
		json_object_put(reply);
		return NULL;
	}
	return reply;
}

static char *qmp_error_reply(const struct qmp_error *err,
			     const struct qmp_request *req)
{
	struct json_object *reply = json_object_new_object();
	struct json_object *e = json_object_new_object();

	qmp_add(&e, "class", json_object_new_string(err->class));
	qmp_add(&e, "desc", json_object_new_string(err->desc));
	qmp_add(&reply, "error", e);
	return qmp_line(qmp_echo_id(reply, req));
}

static char *qmp_return_reply(struct json_object *ret,
			      const struct qmp_request *req)
{
	struct json_object *reply = json_object_new_object();

	qmp_add(&reply, "return", ret ? ret : json_object_new_object());
	return qmp_line(qmp_echo_id(reply, req));
}

char *qmp_session_too_long(const struct qmp_session *s)
{
	struct qmp_request none = { 0 };
	struct qmp_error err;

	(void)s;
	qmp_error_set(&err, QMP_GENERIC, "Request too long");
	return qmp_error_reply(&err, &none);
}

char *qmp_session_too_deep(const struct qmp_session *s)
{
	struct qmp_request none = { 0 };
	struct qmp_error err;

	(void)s;
	qmp_error_set(&err, QMP_GENERIC, "Request nested deeper than %d levels",
		      QMP_MAX_DEPTH);
	return qmp_error_reply(&err, &none);
}

/*
 * json-c accepts NaN, Infinity and 1e999, which cannot be echoed back as
 * JSON, and "\u0000" inside strings, which handlers would silently cut.
 * Depth is bounded by the tokener's limit, so the recursion is too.
 */
static const char *qmp_check_value(struct json_object *v)
{
	const char *why = NULL;
	size_t i, n;

	switch (json_object_get_type(v)) {
	case json_type_double:
		if (!isfinite(json_object_get_double(v)))
			why = "number out of range";
		break;
	case json_type_string:
		if (strlen(json_object_get_string(v)) !=
		    (size_t)json_object_get_string_len(v))
			why = "\\u0000 is not supported";
		break;
	case json_type_array:
		n = json_object_array_length(v);
		for (i = 0; i < n && !why; i++)
			why = qmp_check_value(json_object_array_get_idx(v, i));
		break;
	case json_type_object: {
		json_object_object_foreach(v, key, val) {
			(void)key;
			why = qmp_check_value(val);
			if (why)
				break;
		}
		break;
	}
	default:
		break;
	}
	return why;
}

int qmp_parse_line(const char *line, size_t len, struct json_object **out,
		   struct qmp_error *err)
{
	struct json_tokener *tok;
	enum json_tokener_error jerr;
	struct json_object *obj;
	const char *why = NULL;
	size_t end;

	*out = NULL;
	if (memchr(line, '\0', len))
		return qmp_error_set(err, QMP_GENERIC,
				     "JSON parse error, invalid NUL byte");
	tok = json_tokener_new_ex(QMP_MAX_DEPTH);
	if (!tok)
		return qmp_error_set(err, QMP_GENERIC, "Out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
				    JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, line, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) {
		/* A bare number or literal at the very end of the line is
		 * only complete once the tokener sees what follows it. */
		obj = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		end = len;
	}
	json_tokener_free(tok);
	if (jerr != json_tokener_success) {
		json_object_put(obj);
		return qmp_error_set(err, QMP_GENERIC, "JSON parse error, %s",
				     json_tokener_error_desc(jerr));
	}
	while (end < len && qmp_json_ws(line[end]))
		end++;
	if (end < len)
		why = "one JSON object per line";
	else
		why = qmp_check_value(obj);
	if (why) {
		json_object_put(obj);
		return qmp_error_set(err, QMP_GENERIC, "JSON parse error, %s",
				     why);
	}
	*out = obj;
	return 0;
}

/* The request's shape, checked as QEMU's qmp_dispatch_check_obj() does. */
static int qmp_request_check(struct qmp_request *req, struct qmp_error *err)
{
	struct json_object *obj = req->obj;

	if (!json_object_is_type(obj, json_type_object))
		return qmp_error_set(err, QMP_GENERIC,
				     "QMP input must be a JSON object");
	req->has_id = json_object_object_get_ex(obj, "id", &req->id);
	json_object_object_foreach(obj, key, val) {
		if (!strcmp(key, "execute")) {
			if (!json_object_is_type(val, json_type_string))
				return qmp_error_set(err, QMP_GENERIC,
					"QMP input member 'execute' must be a string");
			req->name = json_object_get_string(val);
		} else if (!strcmp(key, "arguments")) {
			if (!json_object_is_type(val, json_type_object))
				return qmp_error_set(err, QMP_GENERIC,
					"QMP input member 'arguments' must be an object");
			req->args = val;
		} else if (strcmp(key, "id")) {
			return qmp_error_set(err, QMP_GENERIC,
				"QMP input member '%s' is unexpected", key);
		}
	}
	if (!req->name)
		return qmp_error_set(err, QMP_GENERIC,
				     "QMP input lacks member 'execute'");
	return 0;
}

static bool qmp_int_fits(struct json_object *v)
{
	/* json-c clamps a uint64 above INT64_MAX to INT64_MAX on the signed
	 * read; the unsigned read tells the two apart. */
	return json_object_get_int64(v) != INT64_MAX ||
	       json_object_get_uint64(v) == (uint64_t)INT64_MAX;
}

static bool qmp_type_ok(struct json_object *v, enum qmp_type type)
{
	switch (type) {
	case QMP_T_STR:
		return json_object_is_type(v, json_type_string);
	case QMP_T_INT:
		return json_object_is_type(v, json_type_int) && qmp_int_fits(v);
	case QMP_T_BOOL:
		return json_object_is_type(v, json_type_boolean);
	case QMP_T_NUMBER:
		return json_object_is_type(v, json_type_int) ||
		       json_object_is_type(v, json_type_double);
	case QMP_T_OBJECT:
		return json_object_is_type(v, json_type_object);
	case QMP_T_ANY:
		return true;
	case QMP_T_INT_OR_STR:
		return json_object_is_type(v, json_type_int) ||
		       json_object_is_type(v, json_type_string);
	case QMP_T_BOOL_OR_STR:
		return json_object_is_type(v, json_type_boolean) ||
		       json_object_is_type(v, json_type_int) ||
		       json_object_is_type(v, json_type_string);
	}
	return false;
}

static const char *qmp_type_name(enum qmp_type type)
{
	switch (type) {
	case QMP_T_STR: return "string";
	case QMP_T_INT: return "integer";
	case QMP_T_BOOL: return "boolean";
	case QMP_T_NUMBER: return "number";
	case QMP_T_OBJECT: return "object";
	case QMP_T_ANY: return "any";
	case QMP_T_INT_OR_STR: return "integer";
	case QMP_T_BOOL_OR_STR: return "boolean";
	}
	return "?";
}

static bool qmp_arg_declared(const struct qmp_arg *spec, const char *name)
{
	for (; spec && spec->name; spec++)
		if (!strcmp(spec->name, name))
			return true;
	return false;
}

/* Declared arguments in table order first, then leftovers, like QEMU's
 * input visitor, so the error named is the same one QEMU would name. */
static int qmp_check_args(const struct qmp_arg *spec, struct json_object *args,
			  struct qmp_error *err)
{
	const struct qmp_arg *a;
	struct json_object *v;

	for (a = spec; a && a->name; a++) {
		if (!json_object_object_get_ex(args, a->name, &v)) {
			if (a->optional)
				continue;
			return qmp_error_set(err, QMP_GENERIC,
				"Parameter '%s' is missing", a->name);
		}
		if (!qmp_type_ok(v, a->type))
			return qmp_error_set(err, QMP_GENERIC,
				"Parameter '%s' expects %s", a->name,
				qmp_type_name(a->type));
	}
	json_object_object_foreach(args, key, val) {
		(void)val;
		if (!qmp_arg_declared(spec, key))
			return qmp_error_set(err, QMP_GENERIC,
				"Parameter '%s' is unexpected", key);
	}
	return 0;
}

/* --- built-in commands: their ctx is the session --- */

static int qmp_cmd_capabilities(void *ctx, struct json_object *args,
				struct json_object **ret, struct qmp_error *err)
{
	struct qmp_session *s = ctx;
	struct json_object *enable, *cap;

	(void)ret;
	if (s->negotiated)
		return qmp_error_set(err, QMP_NOT_FOUND,
			"Capabilities negotiation is already complete, command ignored");
	if (json_object_object_get_ex(args, "enable", &enable)) {
		if (!json_object_is_type(enable, json_type_array))
			return qmp_error_set(err, QMP_GENERIC,
				"Parameter 'enable' expects array");
		/* We offer no capabilities, so any request is refused. */
		if (json_object_array_length(enable) > 0) {
			cap = json_object_array_get_idx(enable, 0);
			if (!json_object_is_type(cap, json_type_string))
				return qmp_error_set(err, QMP_GENERIC,
					"Parameter 'enable[0]' expects string");
			return qmp_error_set(err, QMP_GENERIC,
				"Capability '%s' not available",
				json_object_get_string(cap));
		}
	}
	s->negotiated = true;
	return 0;
}

static int qmp_cmd_query_commands(void *ctx, struct json_object *args,
				  struct json_object **ret,
				  struct qmp_error *err);

static const struct qmp_arg qmp_caps_args[] = {
	{ "enable", QMP_T_ANY, true },
	{ NULL, QMP_T_ANY, false },
};

static const struct qmp_command qmp_builtins[] = {
	{ "qmp_capabilities", qmp_cmd_capabilities, qmp_caps_args, 0,
	  "Leave capabilities negotiation mode" },
	{ "query-commands", qmp_cmd_query_commands, NULL, 0,
	  "List the commands of this socket" },
	{ NULL, NULL, NULL, 0, NULL },
};

static const struct qmp_command *qmp_find(const struct qmp_command *table,
					  const char *name)
{
	for (; table && table->name; table++)
		if (!strcmp(table->name, name))
			return table;
	return NULL;
}

static int qmp_list_add(struct json_object *list, const char *name)
{
	struct json_object *entry = json_object_new_object();

	qmp_add(&entry, "name", json_object_new_string(name));
	if (entry && !json_object_array_add(list, entry))
		return 0;
	json_object_put(entry);
	return -1;
}

static int qmp_cmd_query_commands(void *ctx, struct json_object *args,
				  struct json_object **ret,
				  struct qmp_error *err)
{
	struct qmp_session *s = ctx;
	const struct qmp_command *c;
	struct json_object *list = json_object_new_array();

	(void)args;
	if (!list)
		return qmp_error_set(err, QMP_GENERIC, "Out of memory");
	for (c = qmp_builtins; c->name; c++)
		if (qmp_list_add(list, c->name))
			goto nomem;
	for (c = s->cfg->commands; c && c->name; c++)
		if (c->fn && !qmp_find(qmp_builtins, c->name) &&
		    qmp_list_add(list, c->name))
			goto nomem;
	*ret = list;
	return 0;
nomem:
	json_object_put(list);
	return qmp_error_set(err, QMP_GENERIC, "Out of memory");
}

static int qmp_run(const struct qmp_command *cmd, void *ctx,
		   struct json_object *args, struct json_object **ret,
		   struct qmp_error *err)
{
	int rc;

	if (qmp_check_args(cmd->args, args, err))
		return -1;
	*ret = NULL;
	rc = cmd->fn(ctx, args, ret, err);
	if (rc == 0)
		return 0;
	/* A failing handler's half-built result is not ours to send. */
	json_object_put(*ret);
	*ret = NULL;
	if (!err->class[0])
		qmp_error_set(err, QMP_GENERIC, "Command '%s' failed",
			      cmd->name);
	return -1;
}

static int qmp_dispatch(struct qmp_session *s, const struct qmp_request *req,
			struct json_object **ret, bool *close_after,
			struct qmp_error *err)
{
	const struct qmp_command *cmd = qmp_find(qmp_builtins, req->name);
	struct json_object *empty = NULL, *args = req->args;
	void *ctx = s;
	int rc;

	if (!s->negotiated && cmd != &qmp_builtins[0])
		return qmp_error_set(err, QMP_NOT_FOUND,
			"Expecting capabilities negotiation with 'qmp_capabilities'");
	if (!cmd) {
		cmd = qmp_find(s->cfg->commands, req->name);
		ctx = s->cfg->ctx;
	}
	if (!cmd || !cmd->fn)
		return qmp_error_set(err, QMP_NOT_FOUND,
			"The command %s has not been found", req->name);
	/* Handlers always get an object, never NULL. */
	if (!args) {
		args = empty = json_object_new_object();
		if (!args)
			return qmp_error_set(err, QMP_GENERIC, "Out of memory");
	}
	rc = qmp_run(cmd, ctx, args, ret, err);
	if (rc == 0)
		*close_after = cmd->flags & QMP_CMD_CLOSE_AFTER;
	json_object_put(empty);
	return rc;
}

char *qmp_session_handle_line(struct qmp_session *s, const char *line,
			      size_t len, bool *close_after)
{
	struct qmp_request req = { 0 };
	struct qmp_error err = { "", "" };
	struct json_object *ret = NULL;
	bool bye = false;
	char *reply;
	size_t i;

	if (close_after)
		*close_after = false;
	for (i = 0; i < len && qmp_json_ws(line[i]); i++)
		;
	if (i == len)
		return NULL;
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len > QMP_MAX_LINE)
		return qmp_session_too_long(s);
	if (qmp_parse_line(line, len, &req.obj, &err) ||
	    qmp_request_check(&req, &err) ||
	    qmp_dispatch(s, &req, &ret, &bye, &err))
		reply = qmp_error_reply(&err, &req);
	else
		reply = qmp_return_reply(ret, &req);
	json_object_put(req.obj);
	if (close_after)
		*close_after = bye;
	return reply;
}

/* ------------------------------------------------------------------ */
/* events                                                              */
/* ------------------------------------------------------------------ */

/* The event as one line; data is taken over. */
char *qmp_event_line(const char *name, struct json_object *data)
{
	struct json_object *ev = json_object_new_object();
	struct json_object *ts = json_object_new_object();
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	qmp_add(&ev, "event", json_object_new_string(name));
	if (data)
		qmp_add(&ev, "data", data);
	qmp_add(&ts, "seconds", json_object_new_int64(now.tv_sec));
	qmp_add(&ts, "microseconds", json_object_new_int64(now.tv_nsec / 1000));
	qmp_add(&ev, "timestamp", ts);
	return qmp_line(ev);
}
