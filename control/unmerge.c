/*
 * unmerge.c - dedup-unmerge (unmerge.h).  The memory check and the start
 * are the runner's (runner_guests_unmerge), the copying the engine's
 * (dedup_guest_unmerge); this file turns the command into held guests.
 */
#include <string.h>
#include <json-c/json.h>
#include "config.h"
#include "control/unmerge.h"

const struct qmp_arg unmerge_host_args[] = {
	{ "vm", QMP_T_STR, true },
	{ "domain", QMP_T_STR, true },
	{ "rate", QMP_T_INT, true },
	{ NULL, QMP_T_ANY, false },
};

const struct qmp_arg unmerge_guest_args[] = {
	{ "rate", QMP_T_INT, true },
	{ NULL, QMP_T_ANY, false },
};

int unmerge_parse(struct json_object *args, bool host, const char **vm,
		  const char **domain, uint64_t *rate, struct qmp_error *err)
{
	struct json_object *v;

	*vm = *domain = NULL;
	*rate = UNMERGE_RATE_DEFAULT;
	if (json_object_object_get_ex(args, "rate", &v)) {
		if (json_object_get_int64(v) < 0)
			return qmp_error_set(err, "GenericError",
					     "Parameter 'rate': must be >= 0 pages/s (0: no limit)");
		*rate = (uint64_t)json_object_get_int64(v);
	}
	if (!host)
		return 0;
	if (json_object_object_get_ex(args, "vm", &v))
		*vm = json_object_get_string(v);
	if (json_object_object_get_ex(args, "domain", &v))
		*domain = json_object_get_string(v);
	if (!*vm == !*domain)
		return qmp_error_set(err, "GenericError",
				     "give one of 'vm' (a guest) and 'domain' (a trust domain)");
	return 0;
}

int unmerge_guest_command(struct run_ctx *ctx, const char *guest,
			  struct json_object *args, struct json_object **ret,
			  struct qmp_error *err)
{
	const char *vm, *domain;
	uint64_t pages, rate;

	if (unmerge_parse(args, false, &vm, &domain, &rate, err) ||
	    unmerge_run(ctx, guest, NULL, rate, &pages, err))
		return -1;
	*ret = json_object_new_object();
	json_object_object_add(*ret, "pages", json_object_new_int64((int64_t)pages));
	return 0;
}

int unmerge_run(struct run_ctx *ctx, const char *vm, const char *domain,
		uint64_t rate, uint64_t *pages, struct qmp_error *err)
{
	struct runner_guest_info info[CLI_MAX_VMS];
	struct guest_slot *ds[CLI_MAX_VMS];
	struct fv_error e = { 0 };
	unsigned n = 0, all;
	int r;

	if (!runner_dedup(ctx))
		return qmp_error_set(err, "GenericError",
				     "foldvm runs without the dedup engine: nothing is merged");
	if (vm) {
		if (!(ds[0] = runner_guest_get(ctx, vm, NULL, &e)))
			return qmp_error_set(err, "DeviceNotFound", "%s", e.msg);
		n = 1;
	} else {
		all = runner_guest_get_all(ctx, ds, info, CLI_MAX_VMS);
		for (unsigned i = 0; i < all; i++) {
			if (!strcmp(info[i].domain, domain))
				ds[n++] = ds[i];
			else
				runner_guest_put(ds[i]);
		}
		if (!n)
			return qmp_error_set(err, "DeviceNotFound",
					     "no guest of trust domain '%s'", domain);
	}
	r = runner_guests_unmerge(ds, n, rate, pages, &e);
	for (unsigned i = 0; i < n; i++)
		runner_guest_put(ds[i]);
	if (r)
		return qmp_error_set(err, "GenericError", "%s", e.msg);
	return 0;
}
