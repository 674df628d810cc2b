/*
 * workers.c - worker processes: forking one for a trust domain, the QMP
 * link the supervisor drives it over, and the pump thread that reads
 * every link (replies for the one request in flight, events for host.c)
 * and notices every worker's exit (its pidfd).  Locking: sup_int.h.
 *
 * A worker is a fork, not a new program: it inherits the parsed options
 * and its guests' specs as they are, typed, and runs the runner on them
 * (runner_run) with the control layer serving its link (opt->worker) and
 * its guests' sockets.  It is not forked by the supervisor, whose other
 * threads may hold locks a child would inherit held (malloc's are handled
 * by glibc, a sanitizer's allocator's are not), but by the *spawner*: a
 * single-threaded process forked first thing, before any thread, which
 * only ever clones workers, with CLONE_PARENT so that each is the
 * supervisor's child (waitpid, pidfd, and a parent-death signal tied to
 * the supervisor's main thread).  Its results go into a memfd it shares
 * with the supervisor (struct worker_result), which the supervisor reads
 * once it has exited and checks before use (run_result_check).
 */
#include <errno.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "control/commands.h"
#include "control/qmp_client.h"
#include "lib/timeutil.h"
#include "supervisor/sup_int.h"
#include "vmm/guest_virtio.h"

#define LINK_READ_CHUNK 16384

/* ---- the worker process ---- */

/* Everything but stdio and the descriptors in keep[] goes: the
 * supervisor's sockets and its other workers' links are none of this
 * domain's business. */
static void worker_close_fds(const int *keep, unsigned n)
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

/* What the supervisor asks the spawner for (with SPAWN_FDS descriptors
 * as SCM_RIGHTS: the link's end, the result memfd, the domain channel's
 * end). */
#define SPAWN_FDS 3
/* then the cgroup to clone it into, when it has one (--cgroup), and the
 * foreground terminal's console channel, when one of its guests has it */
#define SPAWN_MAX_FDS 5
struct spawn_msg {
	char domain[DEDUP_DOMAIN_MAX + 1];
	bool from_cli;
	bool cgroup;                    /* a descriptor more: its cgroup */
	bool console;                   /* a descriptor more: the console */
	unsigned console_idx;           /* which guest of idx[] has it */
	unsigned nr;                    /* guests of the command line it holds */
	unsigned idx[CLI_MAX_VMS];      /* their indexes in opt->vms */
};

static __attribute__((noreturn)) void
worker_main(const struct supervisor *sup, const struct spawn_msg *m,
	    const int fds[SPAWN_MAX_FDS])
{
	static struct cli_options wopt;  /* the child's own copy */
	static struct domain_host domain_host;
	int link = fds[0], result_fd = fds[1];
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
	worker_close_fds(keep, console_fd >= 0 ? 3 : 2);
	/* "fvw-" and as much of the domain as the 15 bytes take */
	memcpy(comm, "fvw-", 4);
	snprintf(comm + 4, sizeof(comm) - 4, "%.11s", m->domain);
	prctl(PR_SET_NAME, comm);

	wopt = *sup->opt;
	wopt.nr_vms = m->nr;
	for (unsigned i = 0; i < m->nr; i++)
		wopt.vms[i] = sup->opt->vms[m->idx[i]];
	wopt.worker_fd = link;
	/* The terminal's channel: this guest's output goes there, raw, and
	 * not as "[name] ..." lines to stdout as well. */
	wopt.console_stdio = console_fd >= 0;
	wopt.console_fd = console_fd;
	if (console_fd >= 0) {
		snprintf(wopt.console_vm, sizeof(wopt.console_vm), "%s",
			 wopt.vms[m->console_idx].cfg.name);
		wopt.vms[m->console_idx].cfg.console = false;
	}
	wopt.start = sup->t0;
	/* The spawner's copy of the supervisor's: the same physical pages
	 * in every worker until one writes them, which none does. */
	wopt.blob = &sup->blob;
	sup_domain_host_init(&domain_host, fds[2]);
	wopt.domain_host = &domain_host;
	/* A worker started for vm-create has no guest yet: it waits for
	 * them until the supervisor tells it to finish. */
	wopt.persist = sup->opt->persist || !m->from_cli;

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

/* ---- the spawner ---- */

static unsigned spawn_nr_fds(const struct spawn_msg *m)
{
	return SPAWN_FDS + m->cgroup + m->console;
}

/* Like fork, but the supervisor is the parent; into the cgroup whose
 * directory is cgroup_fd (>= 0) from its first instruction. */
static long spawner_fork(int cgroup_fd)
{
	/* With CLONE_PARENT, clone3 wants no exit signal: the child's is
	 * its parent's own, SIGCHLD (the spawner was forked). */
	struct clone_args ca = { .flags = CLONE_PARENT };

	if (cgroup_fd >= 0) {
		ca.flags |= CLONE_INTO_CGROUP;
		ca.cgroup = (uint64_t)cgroup_fd;
	}
	return syscall(SYS_clone3, &ca, sizeof(ca));
}

/* Receive one request and its descriptors; 0 at EOF (the supervisor is
 * gone), -1 on a malformed one. */
static int spawner_recv(int fd, struct spawn_msg *m, int fds[SPAWN_MAX_FDS])
{
	char cbuf[CMSG_SPACE(SPAWN_MAX_FDS * sizeof(int))];
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *c;
	ssize_t n;

	do {
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		return 0;
	c = CMSG_FIRSTHDR(&msg);
	if (n != sizeof(*m) || !c || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(spawn_nr_fds(m) * sizeof(int)))
		return -1;
	memcpy(fds, CMSG_DATA(c), spawn_nr_fds(m) * sizeof(int));
	m->domain[sizeof(m->domain) - 1] = '\0';
	return m->nr <= CLI_MAX_VMS && (!m->console || m->console_idx < m->nr) ? 1 : -1;
}

static __attribute__((noreturn)) void spawner_main(const struct supervisor *sup,
						   int fd)
{
	struct spawn_msg m;
	sigset_t all;
	int fds[SPAWN_MAX_FDS], r;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != sup->pid)
		_exit(127);
	/* ^C and kill go to the supervisor, which decides. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	worker_close_fds(&fd, 1);
	prctl(PR_SET_NAME, "fv-spawner");
	while ((r = spawner_recv(fd, &m, fds)) != 0) {
		long pid = -1;
		int e = EINVAL;

		for (unsigned i = 0; r > 0 && i < m.nr; i++)
			if (m.idx[i] >= sup->opt->nr_vms)
				r = -1;
		if (r > 0) {
			pid = spawner_fork(m.cgroup ? fds[SPAWN_FDS] : -1);
			e = errno;
			if (pid == 0) {
				close(fd);
				if (m.cgroup)
					close(fds[SPAWN_FDS]);
				worker_main(sup, &m, fds);
			}
			for (unsigned i = 0; i < spawn_nr_fds(&m); i++)
				close(fds[i]);
		}
		struct { long pid; int err; } rep = { pid, pid < 0 ? e : 0 };
		if (send(fd, &rep, sizeof(rep), MSG_NOSIGNAL) != sizeof(rep))
			break;
	}
	_exit(0);
}

int sup_spawner_start(struct supervisor *sup, struct fv_error *err)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "socketpair");
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		spawner_main(sup, sv[1]);
	}
	close(sv[1]);
	if (pid < 0) {
		close(sv[0]);
		return fv_err_errno(err, FV_E_SYS, errno, "fork");
	}
	sup->spawner_pid = pid;
	sup->spawner_fd = sv[0];
	return 0;
}

void sup_spawner_stop(struct supervisor *sup)
{
	if (sup->spawner_fd < 0)
		return;
	close(sup->spawner_fd);         /* EOF: it exits */
	sup->spawner_fd = -1;
	waitpid(sup->spawner_pid, NULL, 0);
}

/* Ask the spawner for a worker: its pid, or -1 with err. */
static pid_t spawner_clone(struct supervisor *sup, const struct spawn_msg *m,
			   const int fds[SPAWN_MAX_FDS], struct fv_error *err)
{
	char cbuf[CMSG_SPACE(SPAWN_MAX_FDS * sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = (void *)m, .iov_len = sizeof(*m) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = CMSG_SPACE(spawn_nr_fds(m) * sizeof(int)),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	struct { long pid; int err; } rep;

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(spawn_nr_fds(m) * sizeof(int));
	memcpy(CMSG_DATA(c), fds, spawn_nr_fds(m) * sizeof(int));
	if (sendmsg(sup->spawner_fd, &msg, MSG_NOSIGNAL) != (ssize_t)sizeof(*m) ||
	    recv(sup->spawner_fd, &rep, sizeof(rep), 0) != (ssize_t)sizeof(rep))
		return fv_err_errno(err, FV_E_SYS, errno, "the spawner process is gone");
	if (rep.pid <= 0)
		return fv_err_errno(err, FV_E_SYS, rep.err, "clone");
	return (pid_t)rep.pid;
}

/* ---- links ---- */

static void pump_wake(struct supervisor *sup)
{
	uint64_t one = 1;

	if (write(sup->pump_wake, &one, sizeof(one)) < 0) {
		/* the counter is full: the pump wakes anyway */
	}
}

struct json_object *sup_worker_execute(struct sup_worker *w, const char *cmd,
				       struct json_object *args,
				       struct fv_error *err)
{
	struct supervisor *sup = w->sup;
	struct json_object *reply = NULL;
	bool dead;

	pthread_mutex_lock(&w->req_lock);
	pthread_mutex_lock(&sup->lock);
	dead = w->link_dead;
	w->awaiting = !dead;
	pthread_mutex_unlock(&sup->lock);
	if (!dead && qmpc_send_request(w->link_fd, cmd, args, err) == 0) {
		pthread_mutex_lock(&sup->lock);
		while (!w->reply && !w->link_dead)
			pthread_cond_wait(&sup->cond, &sup->lock);
		reply = w->reply;
		w->reply = NULL;
		pthread_mutex_unlock(&sup->lock);
	}
	pthread_mutex_lock(&sup->lock);
	w->awaiting = false;
	pthread_mutex_unlock(&sup->lock);
	pthread_mutex_unlock(&w->req_lock);
	if (!reply)
		fv_err(err, FV_E_STATE, "the worker of domain '%s' (pid %d) is gone",
		       w->domain, (int)w->pid);
	return reply;
}

/* A worker that sends what is not QMP is not trusted further. */
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

static void link_line(struct sup_worker *w, const char *line, size_t len)
{
	struct supervisor *sup = w->sup;
	struct json_object *o = NULL, *v, *data;
	struct qmp_error perr;

	/* Parsed as the sockets parse a client's requests. */
	if (qmp_parse_line(line, len, &o, &perr) ||
	    !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		link_broken(w, "not a JSON object on its link");
		return;
	}
	/* The greeting ({"QMP": ...}) and anything else are let be. */
	if (json_object_object_get_ex(o, "event", &v) &&
		   json_object_is_type(v, json_type_string)) {
		if (!json_object_object_get_ex(o, "data", &data))
			data = NULL;
		sup_host_worker_event(w, json_object_get_string(v), data);
	} else if (json_object_object_get_ex(o, "return", NULL) ||
		   json_object_object_get_ex(o, "error", NULL)) {
		pthread_mutex_lock(&sup->lock);
		if (w->awaiting && !w->reply) {
			w->reply = json_object_get(o);
			pthread_cond_broadcast(&sup->cond);
		}
		pthread_mutex_unlock(&sup->lock);
	}
	json_object_put(o);
}

static void link_read(struct sup_worker *w)
{
	char buf[LINK_READ_CHUNK];
	ssize_t n = read(w->link_fd, buf, sizeof(buf));
	size_t off = 0;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		pthread_mutex_lock(&w->sup->lock);
		w->link_dead = true;
		pthread_cond_broadcast(&w->sup->cond);
		pthread_mutex_unlock(&w->sup->lock);
		return;
	}
	while (off < (size_t)n) {
		enum qmp_line kind;
		const char *line;
		size_t len;

		off += qmp_linebuf_feed(&w->lb, buf + off, (size_t)n - off,
					&kind, &line, &len);
		if (kind == QMP_LINE_TOO_LONG) {
			link_broken(w, "a line longer than the limit on its link");
			return;
		}
		if (kind == QMP_LINE_OK && len)
			link_line(w, line, len);
	}
}

/* ---- exits ---- */

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

/* Pump, once w has exited (w->wstatus, w->clean set; end says how, for a
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

/* Pump, once w has exited and the others know (link_dead, exited): its
 * link, pidfd and line buffer go, so an ended worker keeps no descriptor.
 * A request in flight holds req_lock and leaves as soon as it sees
 * link_dead, so taking the lock waits for it to be done with link_fd. */
static void worker_release_io(struct sup_worker *w)
{
	pthread_mutex_lock(&w->req_lock);
	close(w->link_fd);
	close(w->pidfd);
	w->link_fd = w->pidfd = -1;
	qmp_linebuf_destroy(&w->lb);
	pthread_mutex_unlock(&w->req_lock);
}

static void worker_reap(struct sup_worker *w)
{
	struct supervisor *sup = w->sup;
	char names[CLI_MAX_VMS][GUEST_NAME_MAX + 1];
	char end[96], why[256];
	unsigned n;
	int st;

	if (waitpid(w->pid, &st, WNOHANG) != w->pid)
		return;
	/* Pump only, and read by others only once exited is set below. */
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
	sup_host_worker_died(w, names, n, why);
}

/* ---- the pump ---- */

static void *pump_main(void *arg)
{
	struct supervisor *sup = arg;
	struct pollfd pfd[1 + 2 * SUP_MAX_WORKERS];
	struct sup_worker *who[1 + 2 * SUP_MAX_WORKERS];
	uint64_t drain;

	for (;;) {
		unsigned n = 1;

		pfd[0] = (struct pollfd){ .fd = sup->pump_wake, .events = POLLIN };
		pthread_mutex_lock(&sup->lock);
		if (sup->pump_stop) {
			pthread_mutex_unlock(&sup->lock);
			break;
		}
		for (struct sup_worker *w = sup->workers; w; w = w->next) {
			if (!w->link_dead) {
				who[n] = w;
				pfd[n++] = (struct pollfd){ .fd = w->link_fd, .events = POLLIN };
			}
			if (!w->exited) {
				who[n] = w;
				pfd[n++] = (struct pollfd){ .fd = w->pidfd, .events = POLLIN };
			}
		}
		pthread_mutex_unlock(&sup->lock);
		if (poll(pfd, n, -1) < 0)
			continue;
		if (pfd[0].revents && read(sup->pump_wake, &drain, sizeof(drain)) < 0) {
			/* nothing to drain */
		}
		/* Links first: a worker's last words come before its exit. */
		for (unsigned i = 1; i < n; i++)
			if (pfd[i].revents && pfd[i].fd == who[i]->link_fd)
				link_read(who[i]);
		for (unsigned i = 1; i < n; i++)
			if (pfd[i].revents && pfd[i].fd == who[i]->pidfd)
				worker_reap(who[i]);
	}
	return NULL;
}

int sup_pump_start(struct supervisor *sup, struct fv_error *err)
{
	int rc;

	sup->pump_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sup->pump_wake < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "eventfd");
	rc = pthread_create(&sup->pump, NULL, pump_main, sup);
	if (rc) {
		close(sup->pump_wake);
		return fv_err_errno(err, FV_E_SYS, rc, "supervisor: link thread");
	}
	pthread_setname_np(sup->pump, "links");
	sup->pump_running = true;
	return 0;
}

void sup_pump_stop(struct supervisor *sup)
{
	if (!sup->pump_running)
		return;
	pthread_mutex_lock(&sup->lock);
	sup->pump_stop = true;
	pthread_mutex_unlock(&sup->lock);
	pump_wake(sup);
	pthread_join(sup->pump, NULL);
	close(sup->pump_wake);
	sup->pump_running = false;
}

/* ---- spawning ---- */

void sup_worker_terminate_locked(struct sup_worker *w)
{
	if (w->terminating || w->exited)
		return;
	w->terminating = true;
	kill(w->pid, SIGTERM);
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
	qmp_linebuf_destroy(&w->lb);
	json_object_put(w->reply);
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
	if (!w->result || w->result == MAP_FAILED || qmp_linebuf_init(&w->lb, 0)) {
		if (w->result == MAP_FAILED)
			w->result = NULL;
		sup_worker_free(w);
		fv_err(err, FV_E_NOMEM, "worker");
		return NULL;
	}
	w->result->status = -1;
	w->result->sandbox.nr = -1;
	return w;
}

/* Negotiate, and learn whether the worker got ready before that (its
 * WORKER_READY event went to nobody then). */
static int worker_link_up(struct sup_worker *w, struct fv_error *err)
{
	struct json_object *r, *ret, *ready;
	bool ok;

	r = sup_worker_execute(w, "qmp_capabilities", NULL, err);
	ok = r && json_object_object_get_ex(r, "return", NULL);
	json_object_put(r);
	if (!ok)
		return r ? fv_err(err, FV_E_STATE, "worker refused to negotiate") : -1;
	r = sup_worker_execute(w, "query-worker", NULL, err);
	if (!r)
		return -1;
	if (json_object_object_get_ex(r, "return", &ret) &&
	    json_object_object_get_ex(ret, "ready", &ready) &&
	    json_object_get_boolean(ready)) {
		pthread_mutex_lock(&w->sup->lock);
		w->ready = true;
		pthread_cond_broadcast(&w->sup->cond);
		pthread_mutex_unlock(&w->sup->lock);
	}
	json_object_put(r);
	return 0;
}

/* How long a worker whose link failed gets to exit by itself. */
#define WORKER_END_GRACE_MS 10000

/*
 * The link failed before it was up: the worker is ending (its guests
 * could not be created, and its own words in the result page say why:
 * worker_ended_cleanly) or it talks no QMP.  It is killed only if it has
 * not exited after a grace period: killing it at once raced with its own
 * exit, and a worker killed between closing its link and _exit lost the
 * reason it had already written ("killed by signal 9" instead of, say,
 * the lock directory it refused).  The pump sets exited when it reaps it.
 */
static void worker_link_failed(struct sup_worker *w)
{
	struct supervisor *sup = w->sup;
	struct timespec deadline;
	int rc = 0;

	fv_deadline_after(&deadline, CLOCK_REALTIME, WORKER_END_GRACE_MS);
	pthread_mutex_lock(&sup->lock);
	while (!w->link_dead && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&sup->cond, &sup->lock, &deadline);
	if (!w->link_dead)
		kill(w->pid, SIGKILL);
	w->link_dead = true;
	pthread_cond_broadcast(&sup->cond);
	pthread_mutex_unlock(&sup->lock);
}

struct sup_worker *sup_worker_spawn(struct supervisor *sup, const char *domain,
				    const unsigned *idx, unsigned n,
				    bool from_cli, struct fv_error *err)
{
	struct spawn_msg m = { .from_cli = from_cli, .nr = n };
	struct sup_worker *w;
	int sv[2], dv[2], fds[SPAWN_MAX_FDS];
	pid_t pid;

	pthread_mutex_lock(&sup->lock);
	if (sup->nr_workers >= SUP_MAX_WORKERS) {
		pthread_mutex_unlock(&sup->lock);
		fv_err(err, FV_E_INVAL, "at most %d trust domains at once",
		       SUP_MAX_WORKERS);
		return NULL;
	}
	pthread_mutex_unlock(&sup->lock);
	if (n > CLI_MAX_VMS) {
		fv_err(err, FV_E_INVAL, "at most %d guests", CLI_MAX_VMS);
		return NULL;
	}
	w = worker_alloc(sup, domain, from_cli, err);
	if (!w)
		return NULL;
	if (sup_cgroup_create(w, err)) {
		sup_worker_free(w);
		return NULL;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		fv_err_errno(err, FV_E_SYS, errno, "socketpair");
		sup_worker_free(w);
		return NULL;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, dv) < 0) {
		fv_err_errno(err, FV_E_SYS, errno, "socketpair");
		close(sv[0]);
		close(sv[1]);
		sup_worker_free(w);
		return NULL;
	}
	snprintf(m.domain, sizeof(m.domain), "%s", domain);
	if (n) {
		memcpy(m.idx, idx, n * sizeof(idx[0]));
		memcpy(w->idx, idx, n * sizeof(idx[0]));
	}
	w->nr_idx = n;
	fflush(NULL);
	fds[0] = sv[1];
	fds[1] = w->result_fd;
	fds[2] = dv[1];
	m.cgroup = w->cgroup_fd >= 0;
	if (m.cgroup)
		fds[SPAWN_FDS] = w->cgroup_fd;
	/* The terminal's console goes to the worker of its guest. */
	for (unsigned i = 0; from_cli && sup->console_worker_fd >= 0 && i < n; i++)
		if ((int)idx[i] == sup->console_vm) {
			m.console = true;
			m.console_idx = i;
			fds[SPAWN_FDS + m.cgroup] = sup->console_worker_fd;
		}
	pid = spawner_clone(sup, &m, fds, err);
	if (m.console) {
		close(sup->console_worker_fd);
		sup->console_worker_fd = -1;
	}
	if (w->cgroup_fd >= 0)
		close(w->cgroup_fd);
	w->cgroup_fd = -1;
	close(sv[1]);
	close(dv[1]);
	close(w->result_fd);
	w->result_fd = -1;
	w->link_fd = sv[0];
	w->domain_fd = dv[0];
	if (pid < 0) {
		sup_worker_free(w);
		return NULL;
	}
	w->pid = pid;
	w->pidfd = (int)pidfd_open(pid, 0);
	if (w->pidfd < 0) {
		fv_err_errno(err, FV_E_SYS, errno, "pidfd_open");
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		sup_worker_free(w);
		return NULL;
	}
	if (sup_domain_host_start(w, err)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		sup_worker_free(w);
		return NULL;
	}
	pthread_mutex_lock(&sup->lock);
	w->next = sup->workers;
	sup->workers = w;
	sup->nr_workers++;
	pthread_mutex_unlock(&sup->lock);
	pump_wake(sup);
	if (worker_link_up(w, err))
		worker_link_failed(w);
	return w;
}
