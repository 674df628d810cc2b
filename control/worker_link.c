/*
 * worker_link.c - a worker's side of the link (worker_link.h): one thread
 * reads the supervisor's requests and answers each with typed figures of
 * this worker's domain; any thread sends events.  One packet is sent at a
 * time (send_lock); requests come one at a time.
 *
 * The answers are the ones host.qmp gives, for this domain: its guests
 * (query-vms), its process and engine (query-dedup-host), the censuses,
 * vm-create of a spec the supervisor made and checked, vm-destroy and
 * dedup-unmerge.  A census hashes every guest's RAM: it runs on guests
 * held, without the run's lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "control/unmerge.h"
#include "control/vm_create.h"
#include "control/worker_link.h"
#include "dedup/census.h"

struct worker_link {
	struct run_ctx *ctx;
	int fd;
	pthread_t thread;
	pthread_mutex_t send_lock;      /* one packet at a time */
	pthread_mutex_t lock;           /* ready, start_*: */
	pthread_cond_t start_cond;
	bool ready;                     /* every initial guest created */
	bool start_decided, start_go;   /* LINK_REQ_START came, and said */
	bool closed;                    /* the supervisor is gone */
};

static void link_out(struct worker_link *l, const struct link_msg *m)
{
	struct fv_error e = { 0 };

	pthread_mutex_lock(&l->send_lock);
	/* A link that failed is the supervisor gone: it kills its workers
	 * with it (PR_SET_PDEATHSIG), so there is no one to tell. */
	(void)link_send(l->fd, m, &e);
	pthread_mutex_unlock(&l->send_lock);
}

/* ---- the requests ---- */

/* The guests a census reads.  Hashing every guest's RAM is slow, so the
 * run's lock is not held: each guest is held instead
 * (runner_guest_get_all), and a held guest is not freed, not even by
 * vm-destroy or the end of the run, until runner_guest_put; its RAM stays
 * mapped while its vCPUs may still write it, as they did when this ran
 * under the lock. */
struct census_guests {
	struct guest_slot *held[CLI_MAX_VMS];
	struct runner_guest_info in[CLI_MAX_VMS];
	struct guest_mem *gms[CLI_MAX_VMS];
	uint64_t npages[CLI_MAX_VMS];
	uint32_t doms[CLI_MAX_VMS];
	unsigned n;
};

static void census_hold(struct run_ctx *ctx, struct census_guests *cg)
{
	cg->n = runner_guest_get_all(ctx, cg->held, cg->in, CLI_MAX_VMS);
	for (unsigned i = 0; i < cg->n; i++) {
		/* Equal domain names get equal numbers. */
		cg->doms[i] = i + 1;
		for (unsigned k = 0; k < i; k++)
			if (!strcmp(cg->in[i].domain, cg->in[k].domain)) {
				cg->doms[i] = cg->doms[k];
				break;
			}
		cg->gms[i] = &runner_guest(cg->held[i])->mem;
		cg->npages[i] = gmem_pages(cg->gms[i]);
	}
}

static void census_put(struct census_guests *cg)
{
	for (unsigned i = 0; i < cg->n; i++)
		runner_guest_put(cg->held[i]);
}

/* census_src's view: page gfn of guest i of the held guests. */
static const void *census_view(void *opaque, unsigned i, uint64_t gfn)
{
	struct guest_mem *const *gms = opaque;

	return gmem_page_view(gms[i], gfn);
}

/* query-dedup-ideal (ideal) or query-dedup-census. */
static int census(struct run_ctx *ctx, bool ideal, struct link_msg *m)
{
	struct census_guests cg;
	struct census_src src = { .npages = cg.npages, .domains = cg.doms,
				  .view = census_view, .opaque = cg.gms };
	struct fv_error e = { 0 };
	int r;

	census_hold(ctx, &cg);
	src.n = cg.n;
	r = ideal ? dedup_ideal(cg.gms, cg.doms, cg.n, &m->u.ideal, &e)
		  : dedup_census(&src, &m->u.census, &e);
	census_put(&cg);
	if (r)
		return qmp_error_set(&m->err, "GenericError", "%s", e.msg);
	return 0;
}

static void query_vms(struct run_ctx *ctx, struct link_vms *vms)
{
	struct runner_guest_info in[CLI_MAX_VMS];

	/* Records taken under the run's lock; the kernel is asked about
	 * each guest's RAM after it is dropped. */
	vms->n = runner_snapshot_guests(ctx, in, CLI_MAX_VMS);
	for (unsigned i = 0; i < vms->n; i++)
		vm_figures_read(&vms->vm[i], &in[i]);
}

static void query_host(struct run_ctx *ctx, struct host_figures *h)
{
	struct dedup_engine *engine = runner_dedup(ctx);
	struct procstat_rollup r = { 0 };

	procstat_rollup(0, &r, NULL);
	h->rss = r.rss;
	h->pss = r.pss;
	h->enabled = engine != NULL;
	if (engine)
		dedup_get_host_stats(engine, &h->engine);
}

/* Start the guests (go) or give up the start (another domain's guest
 * could not be created). */
static int start(struct worker_link *l, bool go, struct qmp_error *err)
{
	int r = 0;

	pthread_mutex_lock(&l->lock);
	if (!l->ready || l->start_decided) {
		r = qmp_error_set(err, "GenericError", "%s",
				  l->ready ? "already started" : "not ready");
	} else {
		l->start_decided = true;
		l->start_go = go;
		pthread_cond_broadcast(&l->start_cond);
	}
	pthread_mutex_unlock(&l->lock);
	return r;
}

/* Answer request m in m itself. */
static void answer(struct worker_link *l, struct link_msg *m)
{
	struct fv_error e = { 0 };
	struct link_unmerge um;
	int r = 0;

	switch ((enum link_req)m->code) {
	case LINK_REQ_START:
		r = start(l, m->u.go, &m->err);
		break;
	case LINK_REQ_QUERY_VMS:
		/* the slots past n are sent too: nothing left in them */
		memset(&m->u.vms, 0, sizeof(m->u.vms));
		query_vms(l->ctx, &m->u.vms);
		break;
	case LINK_REQ_HOST:
		memset(&m->u.host, 0, sizeof(m->u.host));
		query_host(l->ctx, &m->u.host);
		break;
	case LINK_REQ_IDEAL:
	case LINK_REQ_CENSUS:
		r = census(l->ctx, m->code == LINK_REQ_IDEAL, m);
		break;
	case LINK_REQ_VM_CREATE:
		r = vm_create_add(l->ctx, &m->u.spec, &m->err);
		break;
	case LINK_REQ_VM_DESTROY:
		if (runner_destroy_guest(l->ctx, m->u.name, &e))
			r = qmp_error_set(&m->err, "DeviceNotFound", "%s", e.msg);
		break;
	case LINK_REQ_UNMERGE:
		um = m->u.unmerge;      /* the reply's body takes its place */
		r = unmerge_run(l->ctx, um.vm[0] ? um.vm : NULL,
				um.vm[0] ? NULL : um.domain, um.rate,
				&m->u.pages, &m->err);
		break;
	case LINK_NR_REQS:
		break;
	}
	m->kind = LINK_REPLY;
	m->failed = r != 0;
	link_out(l, m);
}

static void *link_main(void *arg)
{
	struct worker_link *l = arg;
	struct link_msg *m = malloc(sizeof(*m));
	struct fv_error e = { 0 };

	while (m && link_recv(l->fd, m, &e) > 0)
		if (m->kind == LINK_REQUEST)
			answer(l, m);
	free(m);
	/* The supervisor is gone (or worker_link_stop): a start it never
	 * decided is given up. */
	pthread_mutex_lock(&l->lock);
	l->closed = true;
	pthread_cond_broadcast(&l->start_cond);
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

/* ---- events ---- */

int worker_link_ready(struct worker_link *l, struct fv_error *err)
{
	struct link_msg m = { .kind = LINK_EVENT, .code = LINK_EV_READY };
	bool go;

	pthread_mutex_lock(&l->lock);
	l->ready = true;
	pthread_mutex_unlock(&l->lock);
	link_out(l, &m);
	pthread_mutex_lock(&l->lock);
	while (!l->start_decided && !l->closed)
		pthread_cond_wait(&l->start_cond, &l->lock);
	go = l->start_decided && l->start_go;
	pthread_mutex_unlock(&l->lock);
	if (!go)
		return fv_err(err, FV_E_STATE,
			      "start cancelled: a guest of another trust domain could not be created");
	return 0;
}

void worker_link_guest(struct worker_link *l, enum link_event ev,
		       const char *name, const char *uuid)
{
	struct link_msg m = { .kind = LINK_EVENT, .code = ev };

	snprintf(m.u.guest.name, sizeof(m.u.guest.name), "%s", name);
	snprintf(m.u.guest.uuid, sizeof(m.u.guest.uuid), "%s", uuid ? uuid : "");
	link_out(l, &m);
}

void worker_link_engine(struct worker_link *l, enum engine_event ev,
			const struct dedup_host_stats *st)
{
	struct link_msg m = { .kind = LINK_EVENT, .code = LINK_EV_ENGINE };

	m.u.engine.ev = ev;
	m.u.engine.st = *st;
	link_out(l, &m);
}

/* ---- life ---- */

int worker_link_start(struct worker_link **out, struct run_ctx *ctx, int fd,
		      struct fv_error *err)
{
	struct worker_link *l = calloc(1, sizeof(*l));
	int rc;

	if (!l)
		return fv_err(err, FV_E_NOMEM, "link to the supervisor");
	l->ctx = ctx;
	l->fd = fd;
	pthread_mutex_init(&l->send_lock, NULL);
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->start_cond, NULL);
	rc = pthread_create(&l->thread, NULL, link_main, l);
	if (rc) {
		pthread_cond_destroy(&l->start_cond);
		pthread_mutex_destroy(&l->lock);
		pthread_mutex_destroy(&l->send_lock);
		free(l);
		return fv_err_errno(err, FV_E_SYS, rc, "link to the supervisor: thread");
	}
	pthread_setname_np(l->thread, "link");
	*out = l;
	return 0;
}

void worker_link_stop(struct worker_link *l)
{
	if (!l)
		return;
	/* Ends the thread's receive (it sees the link closed). */
	shutdown(l->fd, SHUT_RD);
	pthread_join(l->thread, NULL);
	close(l->fd);
	pthread_cond_destroy(&l->start_cond);
	pthread_mutex_destroy(&l->lock);
	pthread_mutex_destroy(&l->send_lock);
	free(l);
}
