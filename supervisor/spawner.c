/*
 * spawner.c - the process that clones every worker.  Workers are not
 * forked by the supervisor, whose other threads may hold locks a child
 * would inherit held (malloc's are handled by glibc, a sanitizer's
 * allocator's are not), but by the *spawner*: a single-threaded process
 * forked first thing, before any thread, which only ever clones workers,
 * with CLONE_PARENT so that each is the supervisor's child (waitpid,
 * pidfd, and a parent-death signal tied to the supervisor's main thread),
 * into its cgroup (CLONE_INTO_CGROUP) when it has one.  The supervisor
 * asks for each with a struct spawn_msg and its descriptors (sup_int.h).
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "supervisor/sup_int.h"

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
	sup_close_fds_except(&fd, 1);
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
				sup_worker_main(sup, &m, fds);
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
pid_t sup_spawner_clone(struct supervisor *sup, const struct spawn_msg *m,
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

