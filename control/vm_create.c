/*
 * vm_create.c - the QMP command vm-create of the host socket: a guest spec
 * from the command's typed arguments (each through its typed setter in
 * runner/spec.h), made by the supervisor, then a runtime guest from the
 * spec, made by the worker that gets the spec over its link.  Errors name the
 * parameter, as QEMU's do: "Parameter 'vcpus': 0 is out of range 1..64".
 */
#include <stdio.h>
#include <string.h>
#include <json-c/json.h>
#include "control/vm_create.h"
#include "runner/spec_keys.h"

/* The keys of runner/spec_keys.h, each with its QMP type.  Numbers and
 * booleans used to be accepted as strings too ("2", "on"; a size as
 * "256M"): the _OR_STR types keep that working. */
#define QMP_TYPE_STR   QMP_T_STR
#define QMP_TYPE_UINT  QMP_T_INT_OR_STR
#define QMP_TYPE_SIZE  QMP_T_INT_OR_STR    /* bytes, or "256M" */
#define QMP_TYPE_BOOL  QMP_T_BOOL_OR_STR
#define QMP_TYPE_STEPS QMP_T_STR           /* "fill+verify" */
#define ARG_ROW(t, n, f, fl, a, h) { n, QMP_TYPE_##t, !((fl) & SPEC_K_REQUIRED) },

const struct qmp_arg vm_create_args[] = {
	SPEC_KEY_LIST(ARG_ROW)
	{ NULL, QMP_T_ANY, false },
};

const struct qmp_arg vm_destroy_args[] = {
	{ "name", QMP_T_STR, false },
	{ NULL, QMP_T_ANY, false },
};

static int bad_param(struct qmp_error *err, const char *key, const char *why)
{
	return qmp_error_set(err, "GenericError", "Parameter '%s': %s", key, why);
}

/* An integer argument; a string is read as --vm would read it (sizes for
 * SPEC_T_SIZE: "256M", a bare number in MiB). */
static int arg_uint(const struct spec_key *k, struct json_object *v,
		    uint64_t *out, struct qmp_error *err)
{
	struct fv_error e = { 0 };
	const char *s = json_object_get_string(v);
	int64_t x;

	if (json_object_is_type(v, json_type_int)) {
		x = json_object_get_int64(v);
		if (x < 0)
			return qmp_error_set(err, "GenericError",
					     "Parameter '%s' expects a non-negative integer",
					     k->name);
		/* json-c clamps above INT64_MAX on the signed read */
		*out = x == INT64_MAX ? json_object_get_uint64(v) : (uint64_t)x;
		return 0;
	}
	if (k->type == SPEC_T_SIZE ? spec_parse_size(s, out, &e) :
	    spec_parse_uint(s, 0, UINT64_MAX, out, NULL, &e))
		return bad_param(err, k->name, e.msg);
	return 0;
}

/* A boolean argument; also 0/1 and the strings of --vm (on/off, ...). */
static int arg_bool(const struct spec_key *k, struct json_object *v, bool *out,
		    struct qmp_error *err)
{
	struct fv_error e = { 0 };
	int64_t x;

	if (json_object_is_type(v, json_type_boolean)) {
		*out = json_object_get_boolean(v);
		return 0;
	}
	if (json_object_is_type(v, json_type_int)) {
		x = json_object_get_int64(v);
		if (x != 0 && x != 1)
			return qmp_error_set(err, "GenericError",
					     "Parameter '%s' expects a boolean", k->name);
		*out = x == 1;
		return 0;
	}
	if (spec_parse_bool(json_object_get_string(v), out, &e))
		return bad_param(err, k->name, e.msg);
	return 0;
}

/* An integer mem is in bytes; a client that meant MiB (as a bare number
 * in a string is) gets told so. */
static int mem_hint(const struct spec_key *k, struct json_object *v,
		    const char *msg, struct qmp_error *err)
{
	if (strcmp(k->name, "mem") || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) >= (1 << 20))
		return bad_param(err, k->name, msg);
	return qmp_error_set(err, "GenericError",
			     "Parameter 'mem': %s (an integer is in bytes; \"%lldM\" is MiB)",
			     msg, (long long)json_object_get_int64(v));
}

static int set_arg(struct vm_spec *vm, const struct spec_key *k,
		   struct json_object *v, struct qmp_error *err)
{
	struct fv_error e = { 0 };
	struct step steps[CLI_MAX_STEPS];
	unsigned nr;
	uint64_t x;
	bool b;

	switch (k->type) {
	case SPEC_T_STR:
		if (k->set_str(vm, json_object_get_string(v), &e))
			return bad_param(err, k->name, e.msg);
		return 0;
	case SPEC_T_UINT:
	case SPEC_T_SIZE:
		if (arg_uint(k, v, &x, err))
			return -1;
		if (k->set_uint(vm, x, &e))
			return mem_hint(k, v, e.msg, err);
		return 0;
	case SPEC_T_BOOL:
		if (arg_bool(k, v, &b, err))
			return -1;
		if (k->set_bool(vm, b, &e))
			return bad_param(err, k->name, e.msg);
		return 0;
	case SPEC_T_STEPS:
		if (spec_parse_steps(json_object_get_string(v), steps, &nr, &e) ||
		    k->set_steps(vm, steps, nr, &e))
			return bad_param(err, k->name, e.msg);
		return 0;
	}
	return qmp_error_set(err, "GenericError", "Parameter '%s' has no type", k->name);
}

/* What spec_finish() calls a field here. */
static const char *qmp_field(const char *key, char *buf, size_t len)
{
	snprintf(buf, len, "parameter '%s'", key);
	return buf;
}

int vm_create_spec(struct json_object *args, struct vm_spec *vm,
		   struct qmp_error *err)
{
	struct fv_error e = { 0 };
	struct json_object *v;

	spec_defaults(vm, 0);
	for (const struct qmp_arg *a = vm_create_args; a->name; a++) {
		const struct spec_key *k = spec_key_find(a->name);

		if (!json_object_object_get_ex(args, a->name, &v))
			continue;
		if (!k)
			return qmp_error_set(err, "GenericError",
					     "Parameter '%s' is not a guest setting", a->name);
		if (set_arg(vm, k, v, err))
			return -1;
	}
	if (spec_finish(vm, qmp_field, &e)) {
		if (!strncmp(e.msg, "parameter ", 10))
			e.msg[0] = 'P';  /* QEMU's "Parameter '...' ..." */
		return qmp_error_set(err, "GenericError", "%s", e.msg);
	}
	return 0;
}

int vm_create_add(struct run_ctx *ctx, struct vm_spec *vm, struct qmp_error *err)
{
	struct fv_error e = { 0 };

	/* The runtime guest gets what a command-line one would. */
	if (ctx->opt->quiet)
		vm->cfg.console = false;
	if (ctx->opt->dedup_all && !vm->dedup_set)
		vm->cfg.dedup = true;
	if (ctx->opt->ksm) {
		vm->cfg.ksm = true;
		vm->cfg.dedup = false;
	}
	if (runner_add_guest(ctx, vm, &e))
		return qmp_error_set(err, "GenericError", "%s", e.msg);
	return 0;
}
