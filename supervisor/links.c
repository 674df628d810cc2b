/*
 * links.c - the supervisor's side of the typed links (control/link.h): a
 * request to a worker and the wait for its reply (sup_link_call), and the
 * links thread, which reads every worker's link (the reply to the request
 * in flight; events: the worker got ready, a guest came or went, the
 * engine's events, passed on to host.qmp with the worker's domain) and
 * notices every worker's exit through its pidfd (exits.c).
 * Locking: sup_int.h.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include "supervisor/sup_int.h"

/* ---- requests ---- */

int sup_link_call(struct sup_worker *w, struct link_msg *m, struct fv_error *err)
{
	struct supervisor *sup = w->sup;
	bool replied = false, dead;

	m->kind = LINK_REQUEST;
	m->failed = 0;
	pthread_mutex_lock(&w->req_lock);
	pthread_mutex_lock(&sup->lock);
	dead = w->link_dead;
	if (!dead) {
		w->reply = m;
		w->replied = false;
	}
	pthread_mutex_unlock(&sup->lock);
	if (!dead && link_send(w->link_fd, m, err) == 0) {
		pthread_mutex_lock(&sup->lock);
		while (!w->replied && !w->link_dead)
			pthread_cond_wait(&sup->cond, &sup->lock);
		replied = w->replied;
		pthread_mutex_unlock(&sup->lock);
	}
	pthread_mutex_lock(&sup->lock);
	w->reply = NULL;
	pthread_mutex_unlock(&sup->lock);
	pthread_mutex_unlock(&w->req_lock);
	if (!replied)
		return fv_err(err, FV_E_STATE, "the worker of domain '%s' (pid %d) is gone",
			      w->domain, (int)w->pid);
	return 0;
}

/* ---- what a worker sends ---- */

/* A worker that sends what is not a packet of the link is not trusted
 * further. */
static void link_broken(struct sup_worker *w, const char *why)
{
	struct supervisor *sup = w->sup;

	fprintf(stderr, "foldvm: worker of domain %s (pid %d): %s; stopping it\n",
		w->domain, (int)w->pid, why);
	pthread_mutex_lock(&sup->lock);
	w->link_dead = true;
	if (!w->exited)
		kill(w->pid, SIGKILL);
	pthread_cond_broadcast(&sup->cond);
	pthread_mutex_unlock(&sup->lock);
}

static void names_add_locked(struct sup_worker *w, const char *name)
{
	if (w->nr_names < CLI_MAX_VMS)
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

/* The engine's event, on host.qmp with the worker's domain. */
static void engine_event(struct sup_worker *w, const struct link_engine_event *e)
{
	struct qmp_endpoint *ep = w->sup->host_ep;
	struct json_object *data;

	if (!ep)
		return;
	data = replies_engine_event(e->ev, &e->st);
	jadd_str(data, "domain", w->domain);
	qmp_endpoint_event(ep, replies_engine_event_name(e->ev), data);
}

static void link_event(struct sup_worker *w, const struct link_msg *m)
{
	struct supervisor *sup = w->sup;

	if (m->code == LINK_EV_ENGINE) {
		engine_event(w, &m->u.engine);
		return;
	}
	pthread_mutex_lock(&sup->lock);
	switch ((enum link_event)m->code) {
	case LINK_EV_READY:
		w->ready = true;
		pthread_cond_broadcast(&sup->cond);
		break;
	case LINK_EV_GUEST_ADDED:
		names_add_locked(w, m->u.guest.name);
		break;
	case LINK_EV_GUEST_REMOVED:
		names_remove_locked(w, m->u.guest.name);
		w->busy++;
		sup_worker_put_locked(w);
		break;
	case LINK_EV_ENGINE:
	case LINK_NR_EVENTS:
		break;
	}
	pthread_mutex_unlock(&sup->lock);
}

/* The reply to the request in flight, written over it. */
static void link_reply(struct sup_worker *w, const struct link_msg *m)
{
	struct supervisor *sup = w->sup;
	bool unasked;

	pthread_mutex_lock(&sup->lock);
	unasked = !w->reply || w->replied || w->reply->code != m->code;
	if (!unasked) {
		memcpy(w->reply, m, offsetof(struct link_msg, u) + link_body_size(m));
		w->replied = true;
		pthread_cond_broadcast(&sup->cond);
	}
	pthread_mutex_unlock(&sup->lock);
	if (unasked)
		link_broken(w, "an answer to no request on its link");
}

/* One packet from w's link, into m (the links thread's buffer). */
static void link_read(struct sup_worker *w, struct link_msg *m)
{
	struct fv_error e = { 0 };
	int r = link_recv(w->link_fd, m, &e);

	/* Closed, or failing to read (it is gone): dead, as at its end.  A
	 * packet that is not one of the link's: broken. */
	if (r == 0 || (r < 0 && e.code == FV_E_IO)) {
		pthread_mutex_lock(&w->sup->lock);
		w->link_dead = true;
		pthread_cond_broadcast(&w->sup->cond);
		pthread_mutex_unlock(&w->sup->lock);
	} else if (r < 0 || m->kind == LINK_REQUEST) {
		link_broken(w, r < 0 ? e.msg : "a request on its link");
	} else if (m->kind == LINK_EVENT) {
		link_event(w, m);
	} else {
		link_reply(w, m);
	}
}

/* ---- the links thread ---- */

/* Poll every link and pidfd of the list; false once told to stop. */
static bool links_poll(struct supervisor *sup, struct pollfd *pfd,
		       struct sup_worker **who, unsigned *n)
{
	uint64_t drain;

	*n = 1;
	pfd[0] = (struct pollfd){ .fd = sup->links_wake, .events = POLLIN };
	pthread_mutex_lock(&sup->lock);
	if (sup->links_stop) {
		pthread_mutex_unlock(&sup->lock);
		return false;
	}
	for (struct sup_worker *w = sup->workers; w; w = w->next) {
		if (!w->link_dead) {
			who[*n] = w;
			pfd[(*n)++] = (struct pollfd){ .fd = w->link_fd, .events = POLLIN };
		}
		if (!w->exited) {
			who[*n] = w;
			pfd[(*n)++] = (struct pollfd){ .fd = w->pidfd, .events = POLLIN };
		}
	}
	pthread_mutex_unlock(&sup->lock);
	if (poll(pfd, *n, -1) < 0)
		*n = 0;
	else if (pfd[0].revents && read(sup->links_wake, &drain, sizeof(drain)) < 0) {
		/* nothing to drain */
	}
	return true;
}

static void *links_main(void *arg)
{
	struct supervisor *sup = arg;
	struct pollfd pfd[1 + 2 * SUP_MAX_WORKERS];
	struct sup_worker *who[1 + 2 * SUP_MAX_WORKERS];
	unsigned n;

	while (links_poll(sup, pfd, who, &n)) {
		/* Links first: a worker's last words come before its exit. */
		for (unsigned i = 1; i < n; i++)
			if (pfd[i].revents && pfd[i].fd == who[i]->link_fd)
				link_read(who[i], sup->links_buf);
		for (unsigned i = 1; i < n; i++)
			if (pfd[i].revents && pfd[i].fd == who[i]->pidfd)
				sup_worker_reap(who[i]);
	}
	return NULL;
}

int sup_links_start(struct supervisor *sup, struct fv_error *err)
{
	int rc;

	sup->links_buf = malloc(sizeof(*sup->links_buf));
	if (!sup->links_buf)
		return fv_err(err, FV_E_NOMEM, "supervisor: links thread");
	sup->links_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sup->links_wake < 0) {
		free(sup->links_buf);
		return fv_err_errno(err, FV_E_SYS, errno, "eventfd");
	}
	rc = pthread_create(&sup->links, NULL, links_main, sup);
	if (rc) {
		close(sup->links_wake);
		free(sup->links_buf);
		return fv_err_errno(err, FV_E_SYS, rc, "supervisor: links thread");
	}
	pthread_setname_np(sup->links, "links");
	sup->links_running = true;
	return 0;
}

void sup_links_stop(struct supervisor *sup)
{
	if (!sup->links_running)
		return;
	pthread_mutex_lock(&sup->lock);
	sup->links_stop = true;
	pthread_mutex_unlock(&sup->lock);
	sup_links_wake(sup);
	pthread_join(sup->links, NULL);
	close(sup->links_wake);
	free(sup->links_buf);
	sup->links_running = false;
}
