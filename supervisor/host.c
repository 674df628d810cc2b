/*
 * host.c - RUNDIR/host.qmp when the guests live in workers: the same
 * commands and events as a single process served (control/commands.c),
 * each answered by asking the workers over their links.  query-vms lists
 * every worker's guests (with the worker's pid); query-dedup-host,
 * query-dedup-ideal and query-dedup-census add the workers' figures up
 * (and the first lists each domain's too); vm-create goes to the worker of the guest's trust
 * domain, started first when the domain has none; vm-destroy goes to the
 * worker holding the guest, dedup-unmerge to the guest's or the domain's.
 * Workers' dedup events are passed on with
 * their domain; a worker that dies ends its guests with SHUTDOWN here.
 *
 * Handlers run on the QMP server thread, one at a time.  A worker's
 * answer is from another process and trusted no more than a client's:
 * only objects and arrays of the expected shape are passed on.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "config.h"
#include "control/vm_create.h"
#include "control/unmerge.h"
#include "lib/fileutil.h"
#include "lib/procstat.h"
#include "supervisor/sup_int.h"

/* ---- the workers, as handlers see them ---- */

/* Every worker that may answer, held (busy) so the table stays put; at
 * most SUP_MAX_WORKERS, oldest first. */
static unsigned hold_workers(struct supervisor *sup, struct sup_worker **out)
{
	unsigned n = 0;

	pthread_mutex_lock(&sup->lock);
	for (struct sup_worker *w = sup->workers; w && n < SUP_MAX_WORKERS; w = w->next)
		if (!w->link_dead && w->ready)
			out[n++] = w;
	for (unsigned i = 0; i < n; i++)
		out[i]->busy++;
	pthread_mutex_unlock(&sup->lock);
	for (unsigned i = 0; i < n / 2; i++) {
		struct sup_worker *t = out[i];

		out[i] = out[n - 1 - i];
		out[n - 1 - i] = t;
	}
	return n;
}

/* Let go of w; a worker left without guests by the commands that just
 * ran (vm-destroy, a vm-create that failed) is not needed any more. */
static void put_worker_locked(struct sup_worker *w)
{
	w->busy--;
	if (!w->busy && !w->nr_names && (w->sup->opt->persist || !w->from_cli))
		sup_worker_terminate_locked(w);
}

static void put_workers(struct supervisor *sup, struct sup_worker **w, unsigned n)
{
	pthread_mutex_lock(&sup->lock);
	for (unsigned i = 0; i < n; i++)
		put_worker_locked(w[i]);
	pthread_mutex_unlock(&sup->lock);
}

/* The error a worker answered cmd with, class included (only the two
 * parts QMP defines), or that it gave no answer. */
static int worker_error(const struct sup_worker *w, const char *cmd,
			struct json_object *reply, struct qmp_error *err)
{
	struct json_object *error, *cls, *desc;

	if (json_object_object_get_ex(reply, "error", &error) &&
	    json_object_object_get_ex(error, "class", &cls) &&
	    json_object_object_get_ex(error, "desc", &desc))
		return qmp_error_set(err, json_object_get_string(cls), "%s",
				     json_object_get_string(desc));
	return qmp_error_set(err, "GenericError",
			     "the worker of domain %s gave no answer to %s",
			     w->domain, cmd);
}

/* What a command returned on w, or NULL (the worker failed or is gone;
 * err says why, as a QMP error). */
static struct json_object *ask(struct sup_worker *w, const char *cmd,
			       struct json_object *args, json_type want,
			       struct json_object **reply, struct qmp_error *err)
{
	struct fv_error e = { 0 };
	struct json_object *ret;

	*reply = sup_worker_execute(w, cmd, args, &e);
	if (!*reply) {
		qmp_error_set(err, "GenericError", "%s", e.msg);
		return NULL;
	}
	if (json_object_object_get_ex(*reply, "return", &ret) &&
	    json_object_is_type(ret, want))
		return ret;
	worker_error(w, cmd, *reply, err);
	return NULL;
}

/* ---- commands ---- */

static int cmd_query_vms(void *opaque, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err)
{
	struct supervisor *sup = opaque;
	struct sup_worker *w[SUP_MAX_WORKERS];
	unsigned n = hold_workers(sup, w);

	(void)args;
	*ret = json_object_new_array();
	for (unsigned i = 0; i < n; i++) {
		struct json_object *reply, *vms;
		struct qmp_error e;

		/* A worker that died meanwhile has no guests to list. */
		vms = ask(w[i], "query-vms", NULL, json_type_array, &reply, &e);
		for (size_t k = 0; vms && k < json_object_array_length(vms); k++) {
			struct json_object *vm = json_object_array_get_idx(vms, k);

			if (!json_object_is_type(vm, json_type_object))
				continue;
			json_object_object_add(vm, "pid", json_object_new_int(w[i]->pid));
			json_object_array_add(*ret, json_object_get(vm));
		}
		json_object_put(reply);
	}
	put_workers(sup, w, n);
	(void)err;
	return 0;
}

/* dst += src, field by field: numbers add up (max-map-count and the
 * per-pass figures take the largest), booleans are true if either is. */
static void add_figures(struct json_object *dst, struct json_object *src)
{
	json_object_object_foreach(src, key, v) {
		struct json_object *d;
		bool is_max = !strcmp(key, "max-map-count") ||
			      !strncmp(key, "pass-cpu-", 9) ||
			      (!strncmp(key, "memory-pressure-", 16) &&
			       strcmp(key, "memory-pressure-pauses"));

		if (!json_object_object_get_ex(dst, key, &d)) {
			if (json_object_is_type(v, json_type_int) ||
			    json_object_is_type(v, json_type_boolean))
				json_object_object_add(dst, key, json_object_get(v));
			continue;
		}
		if (json_object_is_type(v, json_type_int) &&
		    json_object_is_type(d, json_type_int)) {
			int64_t a = json_object_get_int64(d), b = json_object_get_int64(v);

			json_object_object_add(dst, key, json_object_new_int64(
				is_max ? (a > b ? a : b) : a + b));
		} else if (json_object_is_type(v, json_type_boolean) &&
			   json_object_is_type(d, json_type_boolean)) {
			json_object_object_add(dst, key, json_object_new_boolean(
				json_object_get_boolean(d) || json_object_get_boolean(v)));
		}
	}
}

static int cmd_query_dedup_host(void *opaque, struct json_object *args,
				struct json_object **ret, struct qmp_error *err)
{
	struct supervisor *sup = opaque;
	struct sup_worker *w[SUP_MAX_WORKERS];
	struct procstat_rollup self = { 0 };
	struct json_object *domains = json_object_new_array();
	unsigned n = hold_workers(sup, w);

	(void)args;
	(void)err;
	*ret = json_object_new_object();
	/* The supervisor's own memory counts too. */
	procstat_rollup(0, &self, NULL);
	json_object_object_add(*ret, "process-rss-bytes", json_object_new_int64((int64_t)self.rss));
	json_object_object_add(*ret, "process-pss-bytes", json_object_new_int64((int64_t)self.pss));
	json_object_object_add(*ret, "enabled", json_object_new_boolean(false));
	for (unsigned i = 0; i < n; i++) {
		struct json_object *reply, *h, *dom, *cg;
		struct qmp_error e;

		h = ask(w[i], "query-dedup-host", NULL, json_type_object, &reply, &e);
		if (h) {
			add_figures(*ret, h);
			dom = json_object_new_object();
			json_object_object_add(dom, "domain", json_object_new_string(w[i]->domain));
			json_object_object_add(dom, "pid", json_object_new_int(w[i]->pid));
			json_object_object_foreach(h, key, v)
				json_object_object_add(dom, key, json_object_get(v));
			cg = sup_cgroup_stats(w[i]);
			if (cg)
				json_object_object_add(dom, "cgroup", cg);
			json_object_array_add(domains, dom);
		}
		json_object_put(reply);
	}
	put_workers(sup, w, n);
	json_object_object_add(*ret, "domains", domains);
	return 0;
}

/* Each worker's census is of its own domain; domains share nothing, so
 * the host's figures are the workers' added up (query-dedup-ideal,
 * query-dedup-census: `keys`, the figures a worker without guests lacks). */
static int census_sum(struct supervisor *sup, const char *cmd,
		      const char *const *keys, struct json_object **ret,
		      struct qmp_error *err)
{
	struct sup_worker *w[SUP_MAX_WORKERS];
	unsigned n = hold_workers(sup, w);
	int r = 0;

	*ret = json_object_new_object();
	for (const char *const *k = keys; *k; k++)
		json_object_object_add(*ret, *k, json_object_new_int64(0));
	for (unsigned i = 0; i < n && !r; i++) {
		struct json_object *reply, *id;

		id = ask(w[i], cmd, NULL, json_type_object, &reply, err);
		if (id)
			add_figures(*ret, id);
		else if (reply)
			r = -1;   /* the worker is there and said no */
		json_object_put(reply);
	}
	put_workers(sup, w, n);
	if (r) {
		json_object_put(*ret);
		*ret = NULL;
	}
	return r;
}

static int cmd_query_dedup_ideal(void *opaque, struct json_object *args,
				 struct json_object **ret, struct qmp_error *err)
{
	static const char *const keys[] = {
		"pages", "zero-pages", "nonzero-pages", "distinct-contents", "ideal-bytes", NULL,
	};

	(void)args;
	return census_sum(opaque, "query-dedup-ideal", keys, ret, err);
}

static int cmd_query_dedup_census(void *opaque, struct json_object *args,
				  struct json_object **ret, struct qmp_error *err)
{
	static const char *const keys[] = {
		"pages", "zero-pages", "same-address-pages", "run-1-pages", "run-2-15-pages",
		"run-16-511-pages", "run-512-pages", "unique-pages", NULL,
	};

	(void)args;
	return census_sum(opaque, "query-dedup-census", keys, ret, err);
}

/* lock held: the worker holding guest `name`, or NULL. */
static struct sup_worker *find_guest_locked(struct supervisor *sup, const char *name)
{
	for (struct sup_worker *w = sup->workers; w; w = w->next)
		for (unsigned i = 0; i < w->nr_names; i++)
			if (!strcmp(w->names[i], name))
				return w;
	return NULL;
}

static unsigned count_guests_locked(struct supervisor *sup)
{
	unsigned n = 0;

	for (struct sup_worker *w = sup->workers; w; w = w->next)
		n += w->nr_names;
	return n;
}

/* lock held: the live worker of `domain`, or NULL. */
static struct sup_worker *find_domain_locked(struct supervisor *sup,
					     const char *domain)
{
	for (struct sup_worker *w = sup->workers; w; w = w->next)
		if (!w->terminating && !w->link_dead && w->ready &&
		    !strcmp(w->domain, domain))
			return w;
	return NULL;
}

/* Ask the main thread for a new worker (it forks them all) and wait. */
static struct sup_worker *spawn_worker(struct supervisor *sup, const char *domain,
				       struct qmp_error *err)
{
	struct spawn_req req = { 0 };
	uint64_t one = 1;

	snprintf(req.domain, sizeof(req.domain), "%s", domain);
	pthread_mutex_lock(&sup->lock);
	if (sup->closing) {
		pthread_mutex_unlock(&sup->lock);
		return qmp_error_set(err, "GenericError", "foldvm is shutting down"),
		       NULL;
	}
	sup->spawn = &req;
	pthread_mutex_unlock(&sup->lock);
	if (write(sup->spawn_fd, &one, sizeof(one)) < 0) {
		/* the counter is full: the main thread wakes anyway */
	}
	pthread_mutex_lock(&sup->lock);
	while (!req.done)
		pthread_cond_wait(&sup->cond, &sup->lock);
	sup->spawn = NULL;
	if (req.w)
		req.w->busy++;
	pthread_mutex_unlock(&sup->lock);
	if (!req.w)
		qmp_error_set(err, "GenericError", "%s", req.err.msg);
	return req.w;
}

/* Pass the command on to w, held (busy), and its answer back; a worker
 * gone meanwhile is an error of class gone_class. */
static int forward(struct sup_worker *w, const char *cmd, struct json_object *args,
		   const char *gone_class, struct json_object **ret,
		   struct qmp_error *err)
{
	struct fv_error e = { 0 };
	struct json_object *reply = sup_worker_execute(w, cmd, args, &e), *rv;
	int r = 0;

	if (!reply)
		r = qmp_error_set(err, gone_class, "%s", e.msg);
	else if (!json_object_object_get_ex(reply, "return", &rv))
		r = worker_error(w, cmd, reply, err);
	else if (json_object_is_type(rv, json_type_object))
		*ret = json_object_get(rv);

	json_object_put(reply);
	pthread_mutex_lock(&w->sup->lock);
	put_worker_locked(w);
	pthread_mutex_unlock(&w->sup->lock);
	return r;
}

static int cmd_vm_create(void *opaque, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err)
{
	struct supervisor *sup = opaque;
	const char *domain;
	struct sup_worker *w;
	struct fv_error ferr = { 0 };
	struct vm_spec vm;

	/* Checked here too: the answer must not depend on which worker. */
	if (vm_create_spec(args, &vm, err))
		return -1;
	if (sandbox_check_images(sup->opt, &vm.cfg, &ferr))
		return qmp_error_set(err, "GenericError", "%s", ferr.msg);
	domain = guest_config_domain(&vm.cfg);
	pthread_mutex_lock(&sup->lock);
	if (find_guest_locked(sup, vm.cfg.name)) {
		pthread_mutex_unlock(&sup->lock);
		return qmp_error_set(err, "GenericError",
				     "a guest named '%s' exists already", vm.cfg.name);
	}
	if (count_guests_locked(sup) >= CLI_MAX_VMS) {
		pthread_mutex_unlock(&sup->lock);
		return qmp_error_set(err, "GenericError", "at most %d guests", CLI_MAX_VMS);
	}
	w = find_domain_locked(sup, domain);
	if (w)
		w->busy++;
	pthread_mutex_unlock(&sup->lock);
	if (!w && !(w = spawn_worker(sup, domain, err)))
		return -1;
	return forward(w, "vm-create", args, "GenericError", ret, err);
}

static int cmd_vm_destroy(void *opaque, struct json_object *args,
			  struct json_object **ret, struct qmp_error *err)
{
	struct supervisor *sup = opaque;
	struct json_object *name;
	struct sup_worker *w;

	json_object_object_get_ex(args, "name", &name);
	pthread_mutex_lock(&sup->lock);
	w = find_guest_locked(sup, json_object_get_string(name));
	if (w)
		w->busy++;
	pthread_mutex_unlock(&sup->lock);
	if (!w)
		return qmp_error_set(err, "DeviceNotFound", "no guest named '%s'",
				     json_object_get_string(name));
	return forward(w, "vm-destroy", args, "DeviceNotFound", ret, err);
}

/* To the worker holding the guest, or the domain's worker. */
static int cmd_dedup_unmerge(void *opaque, struct json_object *args,
			     struct json_object **ret, struct qmp_error *err)
{
	struct supervisor *sup = opaque;
	const char *vm, *domain;
	struct sup_worker *w;
	uint64_t rate;

	if (unmerge_parse(args, true, &vm, &domain, &rate, err))
		return -1;
	pthread_mutex_lock(&sup->lock);
	w = vm ? find_guest_locked(sup, vm) : find_domain_locked(sup, domain);
	if (w)
		w->busy++;
	pthread_mutex_unlock(&sup->lock);
	if (!w)
		return vm ? qmp_error_set(err, "DeviceNotFound", "no guest named '%s'", vm)
			  : qmp_error_set(err, "DeviceNotFound", "no guest of trust domain '%s'",
					  domain);
	return forward(w, "dedup-unmerge", args, "DeviceNotFound", ret, err);
}

static const struct qmp_command host_commands[] = {
	{ "query-vms", cmd_query_vms, NULL, 0, "every guest: state, memory, dedup" },
	{ "query-dedup-host", cmd_query_dedup_host, NULL, 0,
	  "dedup state: host totals and each trust domain's" },
	{ "query-dedup-ideal", cmd_query_dedup_ideal, NULL, 0,
	  "census: the most full-page dedup could save now" },
	{ "query-dedup-census", cmd_query_dedup_census, NULL, 0,
	  "census by kind: zero, same address, runs, unique" },
	{ "vm-create", cmd_vm_create, vm_create_args, 0,
	  "start a guest (--vm keys) in its trust domain's worker" },
	{ "vm-destroy", cmd_vm_destroy, vm_destroy_args, 0, "stop and free a guest" },
	{ "dedup-unmerge", cmd_dedup_unmerge, unmerge_host_args, 0,
	  "give a guest (vm) or trust domain (domain) private copies of its shared pages" },
	{ NULL, NULL, NULL, 0, NULL },
};

/* ---- events ---- */

static void names_add_locked(struct sup_worker *w, const char *name)
{
	if (w->nr_names < CLI_MAX_VMS && strlen(name) <= GUEST_NAME_MAX)
		snprintf(w->names[w->nr_names++], sizeof(w->names[0]), "%s", name);
}

static void names_remove_locked(struct sup_worker *w, const char *name)
{
	for (unsigned i = 0; i < w->nr_names; i++) {
		if (strcmp(w->names[i], name))
			continue;
		memmove(w->names[i], w->names[i + 1],
			(w->nr_names - i - 1) * sizeof(w->names[0]));
		w->nr_names--;
		return;
	}
}

void sup_host_worker_event(struct sup_worker *w, const char *name,
			   struct json_object *data)
{
	struct supervisor *sup = w->sup;
	struct json_object *v, *copy;
	const char *guest = NULL;

	if (data && json_object_object_get_ex(data, "name", &v) &&
	    json_object_is_type(v, json_type_string))
		guest = json_object_get_string(v);
	if (!strcmp(name, "WORKER_READY")) {
		pthread_mutex_lock(&sup->lock);
		w->ready = true;
		pthread_cond_broadcast(&sup->cond);
		pthread_mutex_unlock(&sup->lock);
	} else if (!strcmp(name, "WORKER_GUEST_ADDED") && guest) {
		pthread_mutex_lock(&sup->lock);
		names_add_locked(w, guest);
		pthread_mutex_unlock(&sup->lock);
	} else if (!strcmp(name, "WORKER_GUEST_REMOVED") && guest) {
		pthread_mutex_lock(&sup->lock);
		names_remove_locked(w, guest);
		w->busy++;
		put_worker_locked(w);
		pthread_mutex_unlock(&sup->lock);
	} else if (!strcmp(name, "DEDUP_PASS_COMPLETE") ||
		   !strcmp(name, "DEDUP_BUDGET_EXHAUSTED") ||
		   !strcmp(name, "MEMORY_PRESSURE")) {
		if (!sup->host_ep || (data && !json_object_is_type(data, json_type_object)))
			return;
		copy = json_object_new_object();
		if (data) {
			json_object_object_foreach(data, key, val)
				if (json_object_is_type(val, json_type_int) ||
				    json_object_is_type(val, json_type_boolean))
					json_object_object_add(copy, key, json_object_get(val));
		}
		json_object_object_add(copy, "domain", json_object_new_string(w->domain));
		qmp_endpoint_event(sup->host_ep, name, copy);
	}
}

void sup_host_worker_died(struct sup_worker *w, char names[][GUEST_NAME_MAX + 1],
			  unsigned n, const char *why)
{
	struct supervisor *sup = w->sup;

	if (!sup->host_ep)
		return;
	for (unsigned i = 0; i < n; i++) {
		struct json_object *data = json_object_new_object();

		json_object_object_add(data, "guest", json_object_new_boolean(false));
		json_object_object_add(data, "reason", json_object_new_string("host-error"));
		json_object_object_add(data, "name", json_object_new_string(names[i]));
		json_object_object_add(data, "domain", json_object_new_string(w->domain));
		json_object_object_add(data, "detail", json_object_new_string(why));
		qmp_endpoint_event(sup->host_ep, "SHUTDOWN", data);
	}
}

/* ---- lifecycle ---- */

int sup_host_start(struct supervisor *sup, struct fv_error *err)
{
	int major = 0, minor = 0, micro = 0;

	if (!sup->opt->control)
		return 0;
	if (fv_private_dir(sup->opt->run_dir, "run directory", err))
		return -1;
	sscanf(PACKAGE_VERSION, "%d.%d.%d", &major, &minor, &micro);
	snprintf(sup->host_path, sizeof(sup->host_path), "%s/host.qmp", sup->opt->run_dir);
	sup->host_cfg = (struct qmp_endpoint_config){
		.path = sup->host_path, .commands = host_commands, .ctx = sup,
		.major = major, .minor = minor, .micro = micro,
		.package = "foldvm " PACKAGE_VERSION,
	};
	if (qmp_server_create(&sup->server, err))
		return -1;
	if (qmp_endpoint_add(sup->server, &sup->host_cfg, &sup->host_ep, err)) {
		fv_err_prefix(err, "host control socket: ");
		qmp_server_destroy(sup->server);
		sup->server = NULL;
		return -1;
	}
	return 0;
}

void sup_host_stop(struct supervisor *sup)
{
	if (!sup->server)
		return;
	qmp_server_destroy(sup->server);   /* unlinks host.qmp */
	sup->server = NULL;
	sup->host_ep = NULL;
}
