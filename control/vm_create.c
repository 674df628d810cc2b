/*
 * vm_create.c - the QMP command vm-create of the host socket: a guest
 * spec from the command's arguments, then a runtime guest from the spec.
 */
#include <stdio.h>
#include <string.h>
#include <json-c/json.h>
#include "control/vm_create.h"

/* The --vm keys, so vm-create is validated exactly like the command line. */
const struct qmp_arg vm_create_args[] = {
	{ "name", QMP_T_STR, false },
	{ "mem", QMP_T_ANY, true }, { "vcpus", QMP_T_ANY, true },
	{ "payload", QMP_T_STR, true }, { "zero", QMP_T_ANY, true },
	{ "shared", QMP_T_ANY, true }, { "blob", QMP_T_ANY, true },
	{ "pool", QMP_T_ANY, true }, { "seed", QMP_T_ANY, true },
	{ "steps", QMP_T_STR, true }, { "console", QMP_T_ANY, true },
	{ "dedup", QMP_T_ANY, true }, { "domain", QMP_T_STR, true },
	{ "race-pages", QMP_T_ANY, true }, { "probe-pages", QMP_T_ANY, true },
	{ "kernel", QMP_T_STR, true }, { "initrd", QMP_T_STR, true },
	{ "cmdline", QMP_T_STR, true },
	{ NULL, QMP_T_ANY, false },
};

/* {"name": "a", "mem": "64M", "vcpus": 2, "dedup": true} -> "name=a,..." */
static int args_to_spec(struct json_object *args, char *spec, size_t len,
			struct qmp_error *err)
{
	size_t off = 0;

	spec[0] = '\0';
	json_object_object_foreach(args, key, val) {
		const char *s;
		int n;

		if (json_object_is_type(val, json_type_boolean))
			s = json_object_get_boolean(val) ? "on" : "off";
		else if (json_object_is_type(val, json_type_string) ||
			 json_object_is_type(val, json_type_int))
			s = json_object_get_string(val);
		else
			return qmp_error_set(err, "GenericError",
					     "Parameter '%s' expects a string, integer or boolean", key);
		n = snprintf(spec + off, len - off, "%s%s=", off ? "," : "", key);
		if (n < 0 || (size_t)n >= len - off)
			return qmp_error_set(err, "GenericError", "arguments too long");
		off += (size_t)n;
		/* A comma in a value (a kernel command line) is written ",,",
		 * which cli_parse_vm() reads back as one. */
		for (; *s; s++) {
			if (off + 2 >= len)
				return qmp_error_set(err, "GenericError", "arguments too long");
			if (*s == ',')
				spec[off++] = ',';
			spec[off++] = *s;
		}
		spec[off] = '\0';
	}
	return 0;
}

int vm_create(struct run_ctx *ctx, struct json_object *args,
	      struct json_object **ret, struct qmp_error *err)
{
	char spec[CLI_SPEC_MAX];
	struct fv_error e = { 0 };
	struct vm_spec vm;

	(void)ret;
	if (args_to_spec(args, spec, sizeof(spec), err))
		return -1;
	if (cli_parse_vm(spec, 0, &vm, &e))
		return qmp_error_set(err, "GenericError", "%s", e.msg);
	/* The runtime guest gets what a command-line one would. */
	if (ctx->opt->quiet)
		vm.cfg.console = false;
	if (ctx->opt->dedup_all && !vm.dedup_set)
		vm.cfg.dedup = true;
	if (ctx->opt->ksm) {
		vm.cfg.ksm = true;
		vm.cfg.dedup = false;
	}
	if (runner_add_guest(ctx, &vm, &e))
		return qmp_error_set(err, "GenericError", "%s", e.msg);
	return 0;
}
