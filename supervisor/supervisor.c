/*
 * supervisor.c - a run as processes: start one worker per trust domain of
 * the command line (created all, then started all), serve host.qmp,
 * pass signals on, start workers for vm-create, and at the end add the
 * workers' results up.  What each file does: sup_int.h.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include "lib/procstat.h"
#include "lib/timeutil.h"
#include "supervisor/sup_int.h"
#include "supervisor/supervisor.h"

#define TICK_MS 100

/* Tell w to start its guests (go) or to give up its start. */
static int worker_start(struct sup_worker *w, bool go, struct fv_error *err)
{
	struct link_msg m = { .code = LINK_REQ_START, .u.go = go };

	if (sup_link_call(w, &m, err))
		return -1;
	if (m.failed)
		return fv_err(err, FV_E_STATE, "worker of domain %s refused to start",
			      w->domain);
	return 0;
}

/* lock held: has w got as far as it will before its start (ready, or
 * gone)? */
static bool settled_locked(const struct sup_worker *w)
{
	return w->ready || w->exited || w->link_dead;
}

static void wait_settled(struct supervisor *sup, struct sup_worker *w)
{
	pthread_mutex_lock(&sup->lock);
	while (!settled_locked(w))
		pthread_cond_wait(&sup->cond, &sup->lock);
	pthread_mutex_unlock(&sup->lock);
}

/* Why w could not get its guests created: its own words when it wrote
 * them, else how it ended. */
static void worker_failure(struct supervisor *sup, struct sup_worker *w,
			   struct fv_error *err)
{
	char end[96];

	pthread_mutex_lock(&sup->lock);
	while (!w->exited)
		pthread_cond_wait(&sup->cond, &sup->lock);
	pthread_mutex_unlock(&sup->lock);
	if (w->clean && w->error[0]) {
		fv_err(err, FV_E_STATE, "%s", w->error);
		return;
	}
	sup_worker_end_text(w, end, sizeof(end));
	fv_err(err, FV_E_STATE, "the worker of domain %s %s before its guests were created",
	       w->domain, end);
}

static void wait_all_exited(struct supervisor *sup)
{
	bool alive = true;

	pthread_mutex_lock(&sup->lock);
	while (alive) {
		alive = false;
		for (struct sup_worker *w = sup->workers; w; w = w->next)
			alive |= !w->exited;
		if (alive)
			pthread_cond_wait(&sup->cond, &sup->lock);
	}
	pthread_mutex_unlock(&sup->lock);
}

/*
 * The command line's guests, one worker per trust domain (in the order
 * the domains first appear).  Every worker creates its guests and waits;
 * only when all got there do they start, so a guest that cannot be
 * created fails the whole start, as it did in one process.
 */
static int start_cli_workers(struct supervisor *sup, struct fv_error *err)
{
	const struct cli_options *opt = sup->opt;
	struct sup_worker *ws[SUP_MAX_WORKERS], *bad = NULL;
	unsigned idx[CLI_MAX_VMS];
	bool done[CLI_MAX_VMS] = { false };
	unsigned nw = 0;
	int ret = 0;

	for (unsigned i = 0; i < opt->nr_vms && !ret; i++) {
		const char *dom = guest_config_domain(&opt->vms[i].cfg);
		unsigned n = 0;

		if (done[i])
			continue;
		for (unsigned k = i; k < opt->nr_vms; k++)
			if (!done[k] && !strcmp(guest_config_domain(&opt->vms[k].cfg), dom)) {
				idx[n++] = k;
				done[k] = true;
			}
		ws[nw] = sup_worker_spawn(sup, dom, idx, n, true, err);
		if (!ws[nw])
			ret = -1;
		else
			nw++;
	}
	for (unsigned i = 0; i < nw; i++) {
		wait_settled(sup, ws[i]);
		if (!bad && !ws[i]->ready)
			bad = ws[i];
	}
	if (bad && !ret) {
		worker_failure(sup, bad, err);
		ret = -1;
	}
	for (unsigned i = 0; i < nw; i++) {
		struct fv_error e = { 0 };

		if (ws[i]->ready && worker_start(ws[i], !ret, &e) && !ret) {
			*err = e;
			ret = -1;
		}
	}
	if (ret) {
		pthread_mutex_lock(&sup->lock);
		for (unsigned i = 0; i < nw; i++)
			sup_worker_terminate_locked(ws[i]);
		pthread_mutex_unlock(&sup->lock);
		wait_all_exited(sup);
	}
	return ret;
}

/* A handler asked for a worker (vm-create of a domain that has none). */
static void serve_spawn(struct supervisor *sup, bool closing)
{
	struct spawn_req *req;
	struct sup_worker *w = NULL;
	uint64_t drain;

	if (read(sup->spawn_fd, &drain, sizeof(drain)) < 0) {
		/* nothing pending */
	}
	pthread_mutex_lock(&sup->lock);
	req = sup->spawn && !sup->spawn->done ? sup->spawn : NULL;
	pthread_mutex_unlock(&sup->lock);
	if (!req)
		return;
	if (closing) {
		fv_err(&req->err, FV_E_STATE, "foldvm is shutting down");
	} else if ((w = sup_worker_spawn(sup, req->domain, NULL, 0, false, &req->err))) {
		wait_settled(sup, w);
		if (!w->ready) {
			worker_failure(sup, w, &req->err);
			w = NULL;
		} else if (worker_start(w, true, &req->err)) {
			pthread_mutex_lock(&sup->lock);
			sup_worker_terminate_locked(w);
			pthread_mutex_unlock(&sup->lock);
			w = NULL;
		}
	}
	pthread_mutex_lock(&sup->lock);
	req->w = w;
	req->done = true;
	pthread_cond_broadcast(&sup->cond);
	pthread_mutex_unlock(&sup->lock);
}

/* Pass a signal on to every worker: each ends its guests' wait and sleep
 * steps on the first, stops them on the second, as one process did. */
static void forward_signal(struct supervisor *sup, int sig)
{
	pthread_mutex_lock(&sup->lock);
	for (struct sup_worker *w = sup->workers; w; w = w->next)
		if (!w->exited)
			kill(w->pid, sig);
	pthread_mutex_unlock(&sup->lock);
}

/*
 * Until the run is over: without --persist, once every worker of the
 * command line has ended (workers started for vm-create are then told to
 * finish too); with it, once a signal came and every worker has ended.
 */
static void main_loop(struct supervisor *sup, int sig_fd, bool *interrupted)
{
	bool stop = false, cli_over = false;
	uint64_t quit_again = 0;        /* Ctrl-A x: when to signal again */

	for (;;) {
		struct pollfd pfd[3] = {
			{ .fd = sig_fd, .events = POLLIN },
			{ .fd = sup->spawn_fd, .events = POLLIN },
			{ .fd = sup->console_quit, .events = POLLIN },
		};
		bool cli_alive = false, alive = false;

		pthread_mutex_lock(&sup->lock);
		for (struct sup_worker *w = sup->workers; w; w = w->next) {
			alive |= !w->exited;
			cli_alive |= w->from_cli && !w->exited;
		}
		if (!sup->opt->persist && !cli_alive && !cli_over) {
			cli_over = true;
			for (struct sup_worker *w = sup->workers; w; w = w->next)
				sup_worker_terminate_locked(w);
		}
		pthread_mutex_unlock(&sup->lock);
		if (!alive && (cli_over || stop))
			break;
		/* The second signal of a quit: the workers took the first
		 * (ending wait and sleep steps); this one stops the guests. */
		if (quit_again && fv_mono_ns() >= quit_again) {
			forward_signal(sup, SIGTERM);
			quit_again = 0;
		}
		if (poll(pfd, 3, TICK_MS) <= 0)
			continue;
		if (pfd[2].revents) {
			uint64_t n;

			/* Ctrl-A x: as two ^C, the guests stop at once. */
			if (read(sup->console_quit, &n, sizeof(n)) == sizeof(n)) {
				forward_signal(sup, SIGTERM);
				quit_again = fv_mono_ns() + 2ull * TICK_MS * 1000000ull;
				stop = true;
				*interrupted = true;
			}
		}
		if (pfd[0].revents) {
			struct signalfd_siginfo si;

			if (read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
				forward_signal(sup, (int)si.ssi_signo);
				stop = true;
				*interrupted = true;
			}
		}
		if (pfd[1].revents)
			serve_spawn(sup, stop || cli_over);
	}
}

static void sort_like_cli(const struct cli_options *opt, struct run_result *res)
{
	unsigned key[CLI_MAX_VMS];

	for (unsigned i = 0; i < res->nr; i++) {
		key[i] = CLI_MAX_VMS + i;
		for (unsigned k = 0; k < opt->nr_vms; k++)
			if (!strcmp(opt->vms[k].cfg.name, res->reports[i].name))
				key[i] = k;
	}
	for (unsigned i = 1; i < res->nr; i++)
		for (unsigned k = i; k > 0 && key[k - 1] > key[k]; k--) {
			struct guest_report t = res->reports[k];
			unsigned kt = key[k];

			res->reports[k] = res->reports[k - 1];
			res->reports[k - 1] = t;
			key[k] = key[k - 1];
			key[k - 1] = kt;
		}
}

/* --max-map-count: host-wide, so the supervisor's to change, before any
 * worker (which could not: it has no capability). */
static int raise_max_map_count(uint64_t want, struct fv_error *err)
{
	uint64_t now;
	FILE *f;

	if (!want)
		return 0;
	if (procstat_max_map_count(&now, err))
		return -1;
	if (now >= want)
		return 0;
	f = fopen("/proc/sys/vm/max_map_count", "w");
	if (!f || fprintf(f, "%llu\n", (unsigned long long)want) < 0 || fclose(f)) {
		int e = errno;

		return fv_err_errno(err, FV_E_SYS, e,
				    "cannot raise vm.max_map_count to %llu (root needed)",
				    (unsigned long long)want);
	}
	fprintf(stderr, "foldvm: raised vm.max_map_count (host-wide) from %llu to %llu, as asked by --max-map-count\n",
		(unsigned long long)now, (unsigned long long)want);
	return 0;
}

/* Every worker's results were added up as each ended (workers.c). */
static void collect(struct supervisor *sup, struct run_result *res)
{
	if (sup->dropped)
		fprintf(stderr, "foldvm: %u guests left out of the table (at most %d)\n",
			sup->dropped, CLI_MAX_VMS);
	sort_like_cli(sup->opt, res);
}

static void sup_init(struct supervisor *sup, const struct cli_options *opt,
		     struct run_result *res)
{
	memset(res, 0, sizeof(*res));
	memset(sup, 0, sizeof(*sup));
	sup->opt = opt;
	sup->res = res;
	sup->pid = getpid();
	sup->spawn_fd = -1;
	sup->spawner_fd = -1;
	sup->console_vm = -1;
	sup->console_fd = sup->console_worker_fd = -1;
	sup->console_stop = sup->console_quit = -1;
	clock_gettime(CLOCK_MONOTONIC, &sup->t0);
	pthread_mutex_init(&sup->lock, NULL);
	pthread_cond_init(&sup->cond, NULL);
}

/* The run is ending: no more spawning, every worker told to finish, and
 * waited for.  A handler still waiting for a worker gets its answer
 * first: the server thread is joined next. */
static void end_workers(struct supervisor *sup)
{
	pthread_mutex_lock(&sup->lock);
	sup->closing = true;
	if (sup->spawn && !sup->spawn->done) {
		fv_err(&sup->spawn->err, FV_E_STATE, "foldvm is shutting down");
		sup->spawn->done = true;
		pthread_cond_broadcast(&sup->cond);
	}
	for (struct sup_worker *w = sup->workers; w; w = w->next)
		sup_worker_terminate_locked(w);
	pthread_mutex_unlock(&sup->lock);
	wait_all_exited(sup);
}

int supervisor_run(const struct cli_options *opt, struct run_result *res,
		   struct fv_error *err)
{
	static struct supervisor sup;
	sigset_t set, old;
	int sig_fd = -1, ret = -1;

	sup_init(&sup, opt, res);
	/* Blocked before any thread starts, so every thread inherits it and
	 * only the signalfd sees them. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	sig_fd = signalfd(-1, &set, SFD_CLOEXEC);
	sup.spawn_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sig_fd < 0 || sup.spawn_fd < 0) {
		fv_err_errno(err, FV_E_SYS, errno, "signalfd/eventfd");
		goto out;
	}
	/* The file contents once, before the spawner, which every worker is
	 * forked from, so they all share them; then the spawner, before any
	 * thread exists. */
	if (raise_max_map_count(opt->max_map_count, err) || sup_cgroups_start(&sup, err) ||
	    runner_load_blob(opt, &sup.blob, err) || sup_spawner_start(&sup, err))
		goto out;
	if (sup_console_prepare(&sup, err) || sup_links_start(&sup, err))
		goto out;
	if (sup_host_start(&sup, err) || sup_metrics_start(&sup, err) ||
	    start_cli_workers(&sup, err) ||
	    sup_console_start(&sup, err))
		goto out_host;
	main_loop(&sup, sig_fd, &res->interrupted);
	ret = 0;
out_host:
	end_workers(&sup);
	sup_console_stop(&sup);
	sup_metrics_stop(&sup);
	sup_host_stop(&sup);
	sup_links_stop(&sup);
	if (!ret)
		collect(&sup, res);
	while (sup.workers) {
		struct sup_worker *w = sup.workers;

		sup.workers = w->next;
		sup_worker_free(w);
	}
out:
	sup_console_stop(&sup);
	sup_spawner_stop(&sup);
	blob_free(&sup.blob);
	if (sig_fd >= 0)
		close(sig_fd);
	if (sup.spawn_fd >= 0)
		close(sup.spawn_fd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_cond_destroy(&sup.cond);
	pthread_mutex_destroy(&sup.lock);
	return ret;
}
