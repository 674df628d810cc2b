/*
 * exits.c - a worker's end, seen by the links thread through its pidfd:
 * how it ended (in words), its results taken from the memfd it shared
 * (checked: a worker is trusted no more than a client) and added to the
 * run's, its descriptors closed, and when it died, SHUTDOWN on host.qmp
 * for each of its guests.  Locking: sup_int.h.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "control/replies.h"
#include "supervisor/sup_int.h"

void sup_worker_end_text(const struct sup_worker *w, char *buf, size_t len)
{
	char call[64];

	if (WIFSIGNALED(w->wstatus) && WTERMSIG(w->wstatus) == SIGSYS &&
	    w->sandbox.nr >= 0) {
		sandbox_syscall_name(&w->sandbox, call, sizeof(call));
		snprintf(buf, len, "was stopped by its sandbox: %s is not on its list of system calls",
			 call);
	} else if (WIFSIGNALED(w->wstatus))
		snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(w->wstatus),
			 strsignal(WTERMSIG(w->wstatus)),
			 w->oom_killed ? " by the OOM killer, at its cgroup's memory.max" : "");
	else
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(w->wstatus));
}

/* Did w end as a worker should (it wrote its status and exited with it)? */
static bool worker_ended_cleanly(const struct sup_worker *w, int wstatus)
{
	int st = w->result->status;

	return WIFEXITED(wstatus) && st >= 0 && st <= 2 && WEXITSTATUS(wstatus) == st;
}

/* Once w has exited (w->wstatus, w->clean set; end says how, for a
 * worker that did not end cleanly): its results into sup->res, checked
 * (a worker is trusted no more than a client), its guests failed if it
 * died; then its mapping goes. */
static void worker_collect(struct sup_worker *w, const char *end)
{
	struct run_result *r = &w->result->res;

	if (w->clean) {
		w->result->error[sizeof(w->result->error) - 1] = '\0';
		snprintf(w->error, sizeof(w->error), "%s", w->result->error);
	}
	run_result_check(r);
	if (!w->clean) {
		char why[256];

		snprintf(why, sizeof(why), "its worker (domain %s, pid %d) %s",
			 w->domain, (int)w->pid, end);
		run_result_lost(r, why);
	}
	w->sup->dropped += run_result_merge(w->sup->res, r);
	munmap(w->result, sizeof(*w->result));
	w->result = NULL;
}

/* Once w has exited and the others know (link_dead, exited): its
 * link and pidfd go, so an ended worker keeps no descriptor.
 * A request in flight holds req_lock and leaves as soon as it sees
 * link_dead, so taking the lock waits for it to be done with link_fd. */
static void worker_release_io(struct sup_worker *w)
{
	pthread_mutex_lock(&w->req_lock);
	close(w->link_fd);
	close(w->pidfd);
	w->link_fd = w->pidfd = -1;
	pthread_mutex_unlock(&w->req_lock);
}

/* w died: its guests end with SHUTDOWN on host.qmp. */
static void worker_died_events(struct sup_worker *w,
			       char names[][GUEST_NAME_MAX + 1], unsigned n,
			       const char *why)
{
	struct supervisor *sup = w->sup;

	if (!sup->host_ep)
		return;
	for (unsigned i = 0; i < n; i++)
		qmp_endpoint_event(sup->host_ep, REPLIES_SHUTDOWN,
				   replies_shutdown(false, "host-error", names[i],
						    w->domain, why));
}

void sup_worker_reap(struct sup_worker *w)
{
	struct supervisor *sup = w->sup;
	char names[CLI_MAX_VMS][GUEST_NAME_MAX + 1];
	char end[96], why[256];
	unsigned n;
	int st;

	if (waitpid(w->pid, &st, WNOHANG) != w->pid)
		return;
	/* The links thread only, and read by others only once exited is set
	 * below. */
	w->wstatus = st;
	w->sandbox = w->result->sandbox;  /* kept: the mapping goes below */
	w->oom_killed = WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL &&
			sup_cgroup_oom_killed(w);
	w->clean = worker_ended_cleanly(w, st);
	sup_worker_end_text(w, end, sizeof(end));
	worker_collect(w, end);
	pthread_mutex_lock(&sup->lock);
	w->exited = true;
	w->link_dead = true;
	sup->nr_workers--;
	n = w->nr_names;
	memcpy(names, w->names, sizeof(names));
	w->nr_names = 0;
	pthread_cond_broadcast(&sup->cond);
	pthread_mutex_unlock(&sup->lock);
	worker_release_io(w);
	sup_cgroup_remove(w);
	if (w->clean || !n)
		return;
	snprintf(why, sizeof(why), "the worker of domain %s (pid %d) %s",
		 w->domain, (int)w->pid, end);
	fprintf(stderr, "foldvm: %s; its guests are gone\n", why);
	worker_died_events(w, names, n, why);
}

