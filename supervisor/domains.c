/*
 * domains.c - the host side of the libvirt domain guests a worker runs:
 * their locks and hook scripts, done here in the supervisor (a worker may
 * run no program and open no lock file, sandbox.c) at the points of each
 * guest's life the worker reports (enum domain_point, runner/spec.h).
 *
 * The channel is a SOCK_SEQPACKET pair per worker, one fixed-size typed
 * request and reply at a time.  The worker names a guest by its index in
 * its own list of command-line guests; the supervisor acts on its own copy
 * of that guest's spec (name, uuid, domain XML), so a worker can make the
 * supervisor do nothing but what its guests' lives call for, in order: a
 * request out of order is refused.  When the worker ends, however it
 * ends, what its guests still hold is finished here as libvirt finishes a
 * QEMU that died: 'stopped end', 'release end', then the lock goes.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include "runner/domlock.h"
#include "runner/hooks.h"
#include "supervisor/sup_int.h"

struct domain_req {
	uint32_t vm;                    /* index in the worker's guests */
	uint32_t point;                 /* enum domain_point */
};

struct domain_rep {
	int32_t rc;
	uint32_t code;                  /* enum fv_errcode, when rc < 0 */
	char msg[sizeof(((struct fv_error *)0)->msg)];
};

static const char *const point_hook[DOMAIN_NR_POINTS][2] = {
	[DOMAIN_PREPARE] = { "prepare", "begin" },
	[DOMAIN_START] = { "start", "begin" },
	[DOMAIN_STARTED] = { "started", "begin" },
	[DOMAIN_STOPPED] = { "stopped", "end" },
	[DOMAIN_RELEASE] = { "release", "end" },
};

/* ---- the worker's side ---- */

static pthread_mutex_t worker_chan_lock = PTHREAD_MUTEX_INITIALIZER;

/* One request, one reply: driver threads of one worker take turns. */
static int worker_domain_point(const struct domain_host *h, unsigned vm,
			       enum domain_point p, struct fv_error *err)
{
	int fd = (int)(intptr_t)h->data;
	struct domain_req req = { .vm = vm, .point = (uint32_t)p };
	struct domain_rep rep;
	ssize_t n;

	pthread_mutex_lock(&worker_chan_lock);
	if (send(fd, &req, sizeof(req), MSG_NOSIGNAL) != (ssize_t)sizeof(req)) {
		pthread_mutex_unlock(&worker_chan_lock);
		return fv_err_errno(err, FV_E_SYS, errno,
				    "cannot reach the supervisor for the domain's lock and hooks");
	}
	do {
		n = recv(fd, &rep, sizeof(rep), 0);
	} while (n < 0 && errno == EINTR);
	pthread_mutex_unlock(&worker_chan_lock);
	if (n != (ssize_t)sizeof(rep))
		return fv_err(err, FV_E_SYS, "the supervisor did not answer for the domain's lock and hooks");
	if (rep.rc == 0)
		return 0;
	rep.msg[sizeof(rep.msg) - 1] = '\0';
	return fv_err(err, rep.code <= FV_E_SYS ? (enum fv_errcode)rep.code : FV_E_SYS,
		      "%s", rep.msg);
}

void sup_domain_host_init(struct domain_host *h, int fd)
{
	h->point = worker_domain_point;
	h->data = (void *)(intptr_t)fd;
}

/* ---- the supervisor's side ---- */

static const struct vm_spec *slot_spec(const struct sup_worker *w, unsigned vm)
{
	return &w->sup->opt->vms[w->idx[vm]];
}

static int slot_hooks(const struct sup_worker *w, unsigned vm,
		      enum domain_point p, struct fv_error *err)
{
	const struct cli_options *opt = w->sup->opt;
	const struct vm_spec *spec = slot_spec(w, vm);

	if (!point_hook[p][0] || !spec->domain_xml || !opt->hooks.dir[0])
		return 0;
	return hooks_run(&opt->hooks, spec->cfg.name, point_hook[p][0],
			 point_hook[p][1], spec->domain_xml, err);
}

/* The points that cannot refuse: a failing hook is a line on stderr. */
static void slot_cleanup(struct sup_worker *w, unsigned vm, enum domain_point p)
{
	struct sup_domain_slot *s = &w->dom[vm];
	struct fv_error err = { 0 };

	if (p == DOMAIN_UNLOCK) {
		domlock_release(w->sup->opt->lock_dir, slot_spec(w, vm)->uuid,
				s->lock_fd);
		s->lock_fd = -1;
		return;
	}
	if (p == DOMAIN_STOPPED)
		s->stopped = true;
	if (p == DOMAIN_RELEASE)
		s->released = true;
	if (slot_hooks(w, vm, p, &err))
		fprintf(stderr, "foldvm: guest %s: %s (ignored)\n",
			slot_spec(w, vm)->cfg.name, err.msg);
}

static int slot_point(struct sup_worker *w, unsigned vm, enum domain_point p,
		      struct fv_error *err)
{
	const struct vm_spec *spec;
	struct sup_domain_slot *s;

	if (vm >= w->nr_idx || p >= DOMAIN_NR_POINTS)
		return fv_err(err, FV_E_INVAL, "no such guest or point");
	spec = slot_spec(w, vm);
	s = &w->dom[vm];
	if (!spec->uuid[0])
		return fv_err(err, FV_E_INVAL, "guest %s is no domain guest",
			      spec->cfg.name);
	/* In order: the lock first and once, nothing after it is gone. */
	if ((p == DOMAIN_LOCK) != (s->lock_fd < 0))
		return fv_err(err, FV_E_STATE, "guest %s: %s out of order",
			      spec->cfg.name, p == DOMAIN_LOCK ? "lock" : "hook");
	switch (p) {
	case DOMAIN_LOCK:
		s->stopped = s->released = false;
		return domlock_acquire(w->sup->opt->lock_dir, spec->uuid,
				       spec->cfg.name, &s->lock_fd, err);
	case DOMAIN_PREPARE:
	case DOMAIN_START:
	case DOMAIN_STARTED:
		return slot_hooks(w, vm, p, err);
	default:
		slot_cleanup(w, vm, p);
		return 0;
	}
}

/* The worker is gone: finish what its guests still hold, as libvirt
 * does for a QEMU that died. */
static void domain_worker_gone(struct sup_worker *w)
{
	for (unsigned vm = 0; vm < w->nr_idx; vm++) {
		if (w->dom[vm].lock_fd < 0)
			continue;
		if (!w->dom[vm].stopped)
			slot_cleanup(w, vm, DOMAIN_STOPPED);
		if (!w->dom[vm].released)
			slot_cleanup(w, vm, DOMAIN_RELEASE);
		slot_cleanup(w, vm, DOMAIN_UNLOCK);
	}
}

static void *domain_thread(void *arg)
{
	struct sup_worker *w = arg;
	struct domain_req req;
	ssize_t n;

	for (;;) {
		struct domain_rep rep = { 0 };
		struct fv_error err = { 0 };

		n = recv(w->domain_fd, &req, sizeof(req), 0);
		if (n < 0 && errno == EINTR)
			continue;
		/* EOF: the worker is gone; junk: it is not trusted further. */
		if (n != (ssize_t)sizeof(req))
			break;
		if (slot_point(w, req.vm, (enum domain_point)req.point, &err)) {
			rep.rc = -1;
			rep.code = (uint32_t)err.code;
			snprintf(rep.msg, sizeof(rep.msg), "%s", err.msg);
		}
		if (send(w->domain_fd, &rep, sizeof(rep), MSG_NOSIGNAL) != (ssize_t)sizeof(rep))
			break;
	}
	if (n > 0 && n != (ssize_t)sizeof(req))
		kill(w->pid, SIGKILL);
	domain_worker_gone(w);
	/* Detached, so an ended worker keeps no thread: w stays until the
	 * end of the run, when sup_domain_host_stop waits for this. */
	close(w->domain_fd);
	pthread_mutex_lock(&w->sup->lock);
	w->domain_fd = -1;
	w->domain_thread_running = false;
	pthread_cond_broadcast(&w->sup->cond);
	pthread_mutex_unlock(&w->sup->lock);
	return NULL;
}

/* Serve w's domain guests, if it has any; the channel's end otherwise
 * closes, and a worker that asks anyway hears that nobody answers. */
int sup_domain_host_start(struct sup_worker *w, struct fv_error *err)
{
	bool any = false;

	for (unsigned vm = 0; vm < w->nr_idx; vm++) {
		w->dom[vm].lock_fd = -1;
		any |= slot_spec(w, vm)->uuid[0] != '\0';
	}
	if (!any) {
		close(w->domain_fd);
		w->domain_fd = -1;
		return 0;
	}
	w->domain_thread_running = true;
	if (pthread_create(&w->domain_thread, NULL, domain_thread, w)) {
		w->domain_thread_running = false;
		return fv_err(err, FV_E_SYS, "cannot start the domain host thread");
	}
	pthread_detach(w->domain_thread);
	return 0;
}

/* After the worker ended (its end of the channel closed with it). */
void sup_domain_host_stop(struct sup_worker *w)
{
	pthread_mutex_lock(&w->sup->lock);
	while (w->domain_thread_running)
		pthread_cond_wait(&w->sup->cond, &w->sup->lock);
	pthread_mutex_unlock(&w->sup->lock);
	if (w->domain_fd >= 0)
		close(w->domain_fd);
	w->domain_fd = -1;
}
