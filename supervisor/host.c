/*
 * host.c - RUNDIR/host.qmp, the host's control socket: its commands,
 * each answered by asking the workers over their typed links (links.c)
 * and written as JSON here, the only place host.qmp's answers are
 * written.  query-vms lists every worker's guests (with the worker's
 * pid); query-dedup-host, query-dedup-ideal and query-dedup-census add
 * the workers' figures up (runner/figures.h; the first lists each
 * domain's too); vm-create parses and checks the guest's spec and sends
 * it typed to the worker of the guest's trust domain, started first when
 * the domain has none; vm-destroy goes to the worker holding the guest,
 * dedup-unmerge to the guest's or the domain's.  Its events come from
 * the links thread: the workers' engine events with their domain
 * (links.c) and SHUTDOWN for the guests of a worker that died (exits.c).
 *
 * Handlers run on the QMP server thread, one at a time.  A worker's
 * answer is from another process and trusted no more than a client's:
 * control/link.c checks every packet before it is used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "control/metrics.h"
#include "control/replies.h"
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

static void put_workers(struct supervisor *sup, struct sup_worker **w, unsigned n)
{
	pthread_mutex_lock(&sup->lock);
	for (unsigned i = 0; i < n; i++)
		sup_worker_put_locked(w[i]);
	pthread_mutex_unlock(&sup->lock);
}

/* Ask w (m: the request, then its reply): 0, or -1 with err, a QMP error:
 * the one w answered (class included), or gone_class when w is gone. */
static int ask(struct sup_worker *w, struct link_msg *m, const char *gone_class,
	       struct qmp_error *err)
{
	struct fv_error e = { 0 };

	if (sup_link_call(w, m, &e))
		return qmp_error_set(err, gone_class, "%s", e.msg);
	if (m->failed) {
		*err = m->err;
		return -1;
	}
	return 0;
}

/* ---- commands ---- */

static int cmd_query_vms(void *opaque, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err)
{
	struct supervisor *sup = opaque;
	struct sup_worker *w[SUP_MAX_WORKERS];
	unsigned n = hold_workers(sup, w);
	struct link_msg m;

	(void)args;
	(void)err;
	*ret = json_object_new_array();
	for (unsigned i = 0; i < n; i++) {
		struct qmp_error e;

		/* A worker that died meanwhile has no guests to list. */
		m.code = LINK_REQ_QUERY_VMS;
		if (ask(w[i], &m, "GenericError", &e))
			continue;
		for (unsigned k = 0; k < m.u.vms.n; k++) {
			struct json_object *vm = replies_vm(&m.u.vms.vm[k]);

			jadd_int(vm, "pid", (uint64_t)w[i]->pid);
			json_object_array_add(*ret, vm);
		}
	}
	put_workers(sup, w, n);
	return 0;
}

/* The host's figures are the supervisor's own process and every
 * worker's, added up (runner/figures.h), and each domain's besides. */
static int cmd_query_dedup_host(void *opaque, struct json_object *args,
				struct json_object **ret, struct qmp_error *err)
{
	struct supervisor *sup = opaque;
	struct sup_worker *w[SUP_MAX_WORKERS];
	struct procstat_rollup self = { 0 };
	struct host_figures sum = { 0 };
	struct json_object *domains = json_object_new_array();
	unsigned n = hold_workers(sup, w);
	struct link_msg m;

	(void)args;
	(void)err;
	procstat_rollup(0, &self, NULL);
	sum.rss = self.rss;
	sum.pss = self.pss;
	for (unsigned i = 0; i < n; i++) {
		struct json_object *dom, *h, *cg;
		struct qmp_error e;

		m.code = LINK_REQ_HOST;
		if (ask(w[i], &m, "GenericError", &e))
			continue;
		figures_host_add(&sum, &m.u.host);
		dom = json_object_new_object();
		jadd_str(dom, "domain", w[i]->domain);
		jadd_int(dom, "pid", (uint64_t)w[i]->pid);
		h = replies_host(&m.u.host);
		json_object_object_foreach(h, key, v)
			json_object_object_add(dom, key, json_object_get(v));
		json_object_put(h);
		cg = sup_cgroup_stats(w[i]);
		if (cg)
			json_object_object_add(dom, "cgroup", cg);
		json_object_array_add(domains, dom);
	}
	put_workers(sup, w, n);
	*ret = replies_host(&sum);
	json_object_object_add(*ret, "domains", domains);
	return 0;
}

/* What /metrics shows (supervisor/metrics.c): the same typed figures as
 * query-vms and query-dedup-host, from the same requests. */
int sup_host_figures(struct supervisor *sup, struct metrics_input *in)
{
	struct sup_worker *w[SUP_MAX_WORKERS];
	struct procstat_rollup self = { 0 };
	struct link_msg *m = malloc(sizeof(*m));
	unsigned n;

	if (!m)
		return -1;
	n = hold_workers(sup, w);
	memset(in, 0, sizeof(*in));
	procstat_rollup(0, &self, NULL);
	in->host.rss = self.rss;
	in->host.pss = self.pss;
	for (unsigned i = 0; i < n; i++) {
		struct qmp_error e;

		/* A worker that died meanwhile has nothing to show. */
		m->code = LINK_REQ_HOST;
		if (ask(w[i], m, "GenericError", &e))
			continue;
		figures_host_add(&in->host, &m->u.host);
		snprintf(in->dom[in->nr_domains].domain, sizeof(in->dom[0].domain), "%s",
			 w[i]->domain);
		in->dom[in->nr_domains++].fig = m->u.host;
		m->code = LINK_REQ_QUERY_VMS;
		if (ask(w[i], m, "GenericError", &e))
			continue;
		for (unsigned k = 0; k < m->u.vms.n && in->nr_vms < CLI_MAX_VMS; k++)
			in->vm[in->nr_vms++] = m->u.vms.vm[k];
	}
	put_workers(sup, w, n);
	free(m);
	return 0;
}

/* Each worker's census is of its own domain; domains share nothing, so
 * the host's figures are the workers' added up (query-dedup-ideal: ideal,
 * else query-dedup-census). */
static int census_sum(struct supervisor *sup, bool ideal, struct json_object **ret,
		      struct qmp_error *err)
{
	struct sup_worker *w[SUP_MAX_WORKERS];
	unsigned n = hold_workers(sup, w);
	struct dedup_ideal id = { 0 };
	struct dedup_census cs = { 0 };
	struct link_msg m;
	int r = 0;

	for (unsigned i = 0; i < n && !r; i++) {
		m.code = ideal ? LINK_REQ_IDEAL : LINK_REQ_CENSUS;
		if (ask(w[i], &m, "GenericError", err))
			r = m.failed ? -1 : 0;  /* the worker is there and said no */
		else if (ideal)
			figures_ideal_add(&id, &m.u.ideal);
		else
			figures_census_add(&cs, &m.u.census);
	}
	put_workers(sup, w, n);
	if (!r)
		*ret = ideal ? replies_ideal(&id) : replies_census(&cs);
	return r;
}

static int cmd_query_dedup_ideal(void *opaque, struct json_object *args,
				 struct json_object **ret, struct qmp_error *err)
{
	(void)args;
	return census_sum(opaque, true, ret, err);
}

static int cmd_query_dedup_census(void *opaque, struct json_object *args,
				  struct json_object **ret, struct qmp_error *err)
{
	(void)args;
	return census_sum(opaque, false, ret, err);
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

/* Pass request m on to w, held (busy), and let w go; a worker gone
 * meanwhile is an error of class gone_class. */
static int forward(struct sup_worker *w, struct link_msg *m,
		   const char *gone_class, struct qmp_error *err)
{
	int r = ask(w, m, gone_class, err);

	pthread_mutex_lock(&w->sup->lock);
	sup_worker_put_locked(w);
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
	struct link_msg m = { .code = LINK_REQ_VM_CREATE };
	struct vm_spec *vm = &m.u.spec;

	(void)ret;
	/* Parsed and checked here, once: the worker gets the spec typed. */
	if (vm_create_spec(args, vm, err))
		return -1;
	if (sandbox_check_images(sup->opt, &vm->cfg, &ferr))
		return qmp_error_set(err, "GenericError", "%s", ferr.msg);
	vm->payload_key = NULL;         /* no pointer crosses the link */
	vm->domain_xml = NULL;
	domain = guest_config_domain(&vm->cfg);
	pthread_mutex_lock(&sup->lock);
	if (find_guest_locked(sup, vm->cfg.name)) {
		pthread_mutex_unlock(&sup->lock);
		return qmp_error_set(err, "GenericError",
				     "a guest named '%s' exists already", vm->cfg.name);
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
	return forward(w, &m, "GenericError", err);
}

static int cmd_vm_destroy(void *opaque, struct json_object *args,
			  struct json_object **ret, struct qmp_error *err)
{
	struct supervisor *sup = opaque;
	struct link_msg m = { .code = LINK_REQ_VM_DESTROY };
	struct json_object *name;
	struct sup_worker *w;

	(void)ret;
	json_object_object_get_ex(args, "name", &name);
	pthread_mutex_lock(&sup->lock);
	w = find_guest_locked(sup, json_object_get_string(name));
	if (w)
		w->busy++;
	pthread_mutex_unlock(&sup->lock);
	if (!w)
		return qmp_error_set(err, "DeviceNotFound", "no guest named '%s'",
				     json_object_get_string(name));
	snprintf(m.u.name, sizeof(m.u.name), "%s", json_object_get_string(name));
	return forward(w, &m, "DeviceNotFound", err);
}

/* To the worker holding the guest, or the domain's worker. */
static int cmd_dedup_unmerge(void *opaque, struct json_object *args,
			     struct json_object **ret, struct qmp_error *err)
{
	struct supervisor *sup = opaque;
	struct link_msg m = { .code = LINK_REQ_UNMERGE };
	const char *vm, *domain;
	struct sup_worker *w;

	if (unmerge_parse(args, true, &vm, &domain, &m.u.unmerge.rate, err))
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
	snprintf(m.u.unmerge.vm, sizeof(m.u.unmerge.vm), "%s", vm ? vm : "");
	snprintf(m.u.unmerge.domain, sizeof(m.u.unmerge.domain), "%s",
		 domain ? domain : "");
	if (forward(w, &m, "DeviceNotFound", err))
		return -1;
	*ret = json_object_new_object();
	jadd_int(*ret, "pages", m.u.pages);
	return 0;
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

/* ---- lifecycle ---- */

int sup_host_start(struct supervisor *sup, struct fv_error *err)
{
	if (!sup->opt->control)
		return 0;
	if (fv_private_dir(sup->opt->run_dir, "run directory", err))
		return -1;
	snprintf(sup->host_path, sizeof(sup->host_path), "%s/host.qmp", sup->opt->run_dir);
	replies_endpoint_config(&sup->host_cfg, sup->host_path, host_commands, sup);
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
