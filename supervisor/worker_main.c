/*
 * worker_main.c - a worker process, from its first instruction to its
 * exit (docs/architecture.md, "Processes").  A worker is a fork, not a new
 * program: it inherits the parsed options and its guests' specs as they
 * are, typed, and runs the runner on them (runner_run) with the control
 * layer serving its guests' sockets and its typed link to the supervisor
 * (control/link.h).  Its results go into a memfd it shares with the
 * supervisor (struct worker_result), which reads them once it has exited
 * and checks them before use (exits.c).  Cloned by the spawner
 * (spawner.c).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include "control/commands.h"
#include "supervisor/sup_int.h"
#include "vmm/guest_virtio.h"

/* Everything but stdio and the descriptors in keep[] goes: the
 * supervisor's sockets and its other workers' links are none of this
 * domain's business. */
void sup_close_fds_except(const int *keep, unsigned n)
{
	unsigned from = 3;

	for (;;) {
		unsigned next = ~0u;

		for (unsigned i = 0; i < n; i++)
			if (keep[i] >= (int)from && (unsigned)keep[i] < next)
				next = (unsigned)keep[i];
		if (next > from)
			close_range(from, next == ~0u ? ~0u : next - 1, 0);
		if (next == ~0u)
			return;
		from = next + 1;
	}
}

/* The worker's own options: the supervisor's, with its guests only and
 * what the supervisor hands a worker (its link, its console channel,
 * its domain guests' host, the file contents). */
static void worker_options(struct cli_options *wopt, const struct supervisor *sup,
			   const struct spawn_msg *m, const int fds[SPAWN_MAX_FDS],
			   int console_fd)
{
	static struct domain_host domain_host;

	*wopt = *sup->opt;
	wopt->nr_vms = m->nr;
	for (unsigned i = 0; i < m->nr; i++)
		wopt->vms[i] = sup->opt->vms[m->idx[i]];
	wopt->worker_fd = fds[0];
	/* The terminal's channel: this guest's output goes there, raw, and
	 * not as "[name] ..." lines to stdout as well. */
	wopt->console_stdio = console_fd >= 0;
	wopt->console_fd = console_fd;
	if (console_fd >= 0) {
		snprintf(wopt->console_vm, sizeof(wopt->console_vm), "%s",
			 wopt->vms[m->console_idx].cfg.name);
		wopt->vms[m->console_idx].cfg.console = false;
	}
	wopt->start = sup->t0;
	/* The spawner's copy of the supervisor's: the same physical pages
	 * in every worker until one writes them, which none does. */
	wopt->blob = &sup->blob;
	sup_domain_host_init(&domain_host, fds[2]);
	wopt->domain_host = &domain_host;
	/* A worker started for vm-create has no guest yet: it waits for
	 * them until the supervisor tells it to finish. */
	wopt->persist = sup->opt->persist || !m->from_cli;
}

void sup_worker_main(const struct supervisor *sup, const struct spawn_msg *m,
		     const int fds[SPAWN_MAX_FDS])
{
	static struct cli_options wopt;  /* the child's own copy */
	int result_fd = fds[1];
	int console_fd = m->console ? fds[SPAWN_FDS + m->cgroup] : -1;
	int keep[3] = { fds[0], fds[2], console_fd };
	struct worker_result *out;
	struct fv_error err = { 0 };
	char comm[16];
	sigset_t mask;
	int r;

	/* Dies with the supervisor's main thread, which lives as long as
	 * the run; if it died already, go now. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != sup->pid)
		_exit(127);
	/* Its own process group: a terminal's ^C reaches the supervisor
	 * only, which passes each signal on once. */
	setpgid(0, 0);
	/* SIGINT and SIGTERM stay blocked: the runner takes them with
	 * sigtimedwait, and one that comes after its end must not kill the
	 * worker before it reports how its run went. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	out = mmap(NULL, sizeof(*out), PROT_READ | PROT_WRITE, MAP_SHARED,
		   result_fd, 0);
	if (out == MAP_FAILED)
		_exit(126);
	close(result_fd);
	sup_close_fds_except(keep, console_fd >= 0 ? 3 : 2);
	/* "fvw-" and as much of the domain as the 15 bytes take */
	memcpy(comm, "fvw-", 4);
	snprintf(comm + 4, sizeof(comm) - 4, "%.11s", m->domain);
	prctl(PR_SET_NAME, comm);

	worker_options(&wopt, sup, m, fds, console_fd);

	/* What needs privileges the sandbox takes away (a tap: creating
	 * one, or attaching to one another uid owns, needs CAP_NET_ADMIN),
	 * opened for the guests of the command line while the worker may;
	 * each guest's device takes its own when it is made. */
	r = 0;
	for (unsigned i = 0; i < wopt.nr_vms && r == 0; i++)
		r = guest_virtio_preopen(&wopt.vms[i].cfg, &err);
	/* Before the first thread and the first guest: everything after runs
	 * sandboxed, guests created later by vm-create too. */
	if (r == 0)
		r = sandbox_enter(&wopt, sup->opt, &out->sandbox, &err);
	if (r == 0)
		r = runner_run(&wopt, &control_observer, &out->res, &err);
	if (r)
		snprintf(out->error, sizeof(out->error), "%s", err.msg);
	out->status = r ? 2 : run_result_all_ok(&out->res) ? 0 : 1;
	fflush(NULL);
	_exit(out->status);
}

