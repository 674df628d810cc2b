/*
 * workers.c - starting a worker for a trust domain and what the
 * supervisor keeps of it (struct sup_worker): its result memfd, its
 * cgroup, its link and domain channel (socketpairs whose other ends go to
 * the spawner, spawner.c, which clones it: worker_main.c), its pidfd, its
 * domain guests' host thread (domains.c); holding it for a handler and
 * letting it go; asking it to finish; freeing it.  The links thread
 * (links.c) reads its link and reaps it (exits.c).  Locking: sup_int.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "supervisor/sup_int.h"

void sup_worker_terminate_locked(struct sup_worker *w)
{
	if (w->terminating || w->exited)
		return;
	w->terminating = true;
	kill(w->pid, SIGTERM);
}

void sup_worker_put_locked(struct sup_worker *w)
{
	w->busy--;
	if (!w->busy && !w->nr_names && (w->sup->opt->persist || !w->from_cli))
		sup_worker_terminate_locked(w);
}

void sup_worker_free(struct sup_worker *w)
{
	if (w->result)
		munmap(w->result, sizeof(*w->result));
	if (w->link_fd >= 0)
		close(w->link_fd);
	if (w->pidfd >= 0)
		close(w->pidfd);
	if (w->result_fd >= 0)
		close(w->result_fd);
	sup_domain_host_stop(w);
	sup_cgroup_remove(w);
	pthread_mutex_destroy(&w->req_lock);
	free(w);
}

static struct sup_worker *worker_alloc(struct supervisor *sup,
				       const char *domain, bool from_cli,
				       struct fv_error *err)
{
	struct sup_worker *w = calloc(1, sizeof(*w));

	if (!w) {
		fv_err(err, FV_E_NOMEM, "worker");
		return NULL;
	}
	w->sup = sup;
	w->from_cli = from_cli;
	w->link_fd = w->pidfd = w->result_fd = w->domain_fd = w->cgroup_fd = -1;
	snprintf(w->domain, sizeof(w->domain), "%s", domain);
	pthread_mutex_init(&w->req_lock, NULL);
	w->result_fd = memfd_create("foldvm-worker-result", MFD_CLOEXEC);
	if (w->result_fd >= 0 &&
	    ftruncate(w->result_fd, sizeof(*w->result)) == 0)
		w->result = mmap(NULL, sizeof(*w->result), PROT_READ | PROT_WRITE,
				 MAP_SHARED, w->result_fd, 0);
	if (!w->result || w->result == MAP_FAILED) {
		w->result = NULL;
		sup_worker_free(w);
		fv_err(err, FV_E_NOMEM, "worker");
		return NULL;
	}
	w->result->status = -1;
	w->result->sandbox.nr = -1;
	return w;
}

/* Room for one more worker of n command-line guests? */
static int spawn_check(struct supervisor *sup, unsigned n, struct fv_error *err)
{
	bool full;

	pthread_mutex_lock(&sup->lock);
	full = sup->nr_workers >= SUP_MAX_WORKERS;
	pthread_mutex_unlock(&sup->lock);
	if (full)
		return fv_err(err, FV_E_INVAL, "at most %d trust domains at once",
			      SUP_MAX_WORKERS);
	if (n > CLI_MAX_VMS)
		return fv_err(err, FV_E_INVAL, "at most %d guests", CLI_MAX_VMS);
	return 0;
}

/* w's link (one packet a message, control/link.h) and domain channel:
 * our ends in w, the worker's in child[0] (link) and child[1]. */
static int worker_channels(struct sup_worker *w, int child[2], struct fv_error *err)
{
	int sv[2], dv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "socketpair");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, dv) < 0) {
		close(sv[0]);
		close(sv[1]);
		return fv_err_errno(err, FV_E_SYS, errno, "socketpair");
	}
	w->link_fd = sv[0];
	w->domain_fd = dv[0];
	child[0] = sv[1];
	child[1] = dv[1];
	return 0;
}

/* Have the spawner clone w, holding opt->vms[idx[0..n)], with the
 * worker's ends of its channels (child), its result memfd, its cgroup and
 * the terminal's console if one of its guests has it; what was the
 * worker's is closed here.  Its pid, or -1 with err. */
static pid_t worker_clone(struct sup_worker *w, const unsigned *idx, unsigned n,
			  const int child[2], struct fv_error *err)
{
	struct supervisor *sup = w->sup;
	struct spawn_msg m = { .from_cli = w->from_cli, .nr = n };
	int fds[SPAWN_MAX_FDS] = { child[0], w->result_fd, child[1] };
	pid_t pid;

	snprintf(m.domain, sizeof(m.domain), "%s", w->domain);
	if (n)
		memcpy(m.idx, idx, n * sizeof(idx[0]));
	m.cgroup = w->cgroup_fd >= 0;
	if (m.cgroup)
		fds[SPAWN_FDS] = w->cgroup_fd;
	/* The terminal's console goes to the worker of its guest. */
	for (unsigned i = 0; w->from_cli && sup->console_worker_fd >= 0 && i < n; i++)
		if ((int)idx[i] == sup->console_vm) {
			m.console = true;
			m.console_idx = i;
			fds[SPAWN_FDS + m.cgroup] = sup->console_worker_fd;
		}
	fflush(NULL);
	pid = sup_spawner_clone(sup, &m, fds, err);
	if (m.console) {
		close(sup->console_worker_fd);
		sup->console_worker_fd = -1;
	}
	if (w->cgroup_fd >= 0)
		close(w->cgroup_fd);
	w->cgroup_fd = -1;
	close(w->result_fd);
	w->result_fd = -1;
	return pid;
}

struct sup_worker *sup_worker_spawn(struct supervisor *sup, const char *domain,
				    const unsigned *idx, unsigned n,
				    bool from_cli, struct fv_error *err)
{
	struct sup_worker *w = NULL;
	int child[2] = { -1, -1 };
	pid_t pid = -1;

	if (spawn_check(sup, n, err) ||
	    !(w = worker_alloc(sup, domain, from_cli, err)) ||
	    sup_cgroup_create(w, err) || worker_channels(w, child, err))
		goto fail;
	if (n)
		memcpy(w->idx, idx, n * sizeof(idx[0]));
	w->nr_idx = n;
	pid = worker_clone(w, idx, n, child, err);
	close(child[0]);
	close(child[1]);
	if (pid < 0)
		goto fail;
	w->pid = pid;
	w->pidfd = (int)pidfd_open(pid, 0);
	if (w->pidfd < 0) {
		fv_err_errno(err, FV_E_SYS, errno, "pidfd_open");
		goto fail;
	}
	if (sup_domain_host_start(w, err))
		goto fail;
	pthread_mutex_lock(&sup->lock);
	w->next = sup->workers;
	sup->workers = w;
	sup->nr_workers++;
	pthread_mutex_unlock(&sup->lock);
	/* Nothing it sends is lost meanwhile: its packets (LINK_EV_READY
	 * first of all) wait on the link until the links thread reads it. */
	sup_links_wake(sup);
	return w;
fail:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (w)
		sup_worker_free(w);
	return NULL;
}
