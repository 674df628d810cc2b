/*
 * hook_exec.c - run one libvirt hook script as a child process, the way
 * hooks.c (its header comment) says libvirt does and where foldvm
 * differs: posix_spawn with default signals and only fds 0-2, the XML fed
 * through a pipe, stdout and stderr drained, the process group killed on
 * a timeout, output read on only briefly after the script exited.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include "config.h"
#include "runner/hook_exec.h"
#include "lib/timeutil.h"

#define HOOKS_TICK_MS 50        /* how often a running script is checked */
#define HOOKS_WRITE_CHUNK 65536

/* Our ends of the child's stdin, stdout and stderr while it runs. */
struct hook_io {
	int fd[3];              /* -1 once closed */
	const char *in;
	size_t in_len, in_off;
	bool epipe;
	struct hook_result *res;
};

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* A pipe end that is 0, 1 or 2 (possible when foldvm runs with a standard
 * fd closed) would be clobbered by the child's own dup2s; move it up. */
static int fd_above_stdio(int *fd)
{
	int nfd;

	if (*fd > STDERR_FILENO)
		return 0;
	nfd = fcntl(*fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	if (nfd < 0)
		return -1;
	close(*fd);
	*fd = nfd;
	return 0;
}

/* p[0] read end, p[1] write end; both close-on-exec and above 2, ours
 * (the parent's) non-blocking. */
static int hook_pipe(int p[2], int ours)
{
	if (pipe2(p, O_CLOEXEC))
		return -1;
	if (fd_above_stdio(&p[0]) || fd_above_stdio(&p[1]) ||
	    fcntl(p[ours], F_SETFL, O_NONBLOCK)) {
		int e = errno;

		close_fd(&p[0]);
		close_fd(&p[1]);
		errno = e;
		return -1;
	}
	return 0;
}

/*
 * Start the script with posix_spawn, which is safe in a threaded process
 * where fork() + arbitrary code in the child is not.  The child gets:
 * its own process group (so a timeout can kill whatever it started), an
 * empty signal mask and every signal at its default (foldvm blocks
 * SIGINT/SIGTERM in its threads and has handlers; a blocked or ignored
 * signal would otherwise be inherited across exec), and only fds 0-2.
 * (glibc itself leaves its two reserved signals, 32 and 33, ignored in
 * the child; no glibc program can use those anyway.)
 * io->fd gets our ends.  Returns 0 or an errno value.
 */
static int hook_spawn(const char *path, char *const argv[], char *const envp[],
		      bool input, struct hook_io *io, pid_t *pid)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int r;

	if ((input && hook_pipe(in, 1)) || hook_pipe(out, 0) ||
	    hook_pipe(errp, 0)) {
		r = errno;
		goto out_pipes;
	}
	r = posix_spawn_file_actions_init(&fa);
	if (r)
		goto out_pipes;
	r = posix_spawnattr_init(&attr);
	if (r)
		goto out_fa;
	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	if (input)
		r = posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
	else
		r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO,
						     "/dev/null", O_RDONLY, 0);
	if (!r)
		r = posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
	if (!r)
		r = posix_spawn_file_actions_adddup2(&fa, errp[1], STDERR_FILENO);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
	/* Our fds are all O_CLOEXEC; this also covers any a library opened
	 * without it. */
	if (!r)
		r = posix_spawn_file_actions_addclosefrom_np(&fa,
							     STDERR_FILENO + 1);
#endif
	if (!r)
		r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
					     POSIX_SPAWN_SETSIGMASK |
					     POSIX_SPAWN_SETSIGDEF);
	if (!r)
		r = posix_spawnattr_setpgroup(&attr, 0);
	if (!r)
		r = posix_spawnattr_setsigmask(&attr, &none);
	if (!r)
		r = posix_spawnattr_setsigdefault(&attr, &all);
	if (!r)
		r = posix_spawn(pid, path, &fa, &attr, argv, envp);
	if (!r) {
		/* glibc returns after the child's setpgid(); elsewhere this
		 * closes the window before we might signal the group.  It
		 * fails harmlessly (EACCES) once the child has exec'd. */
		setpgid(*pid, *pid);
		io->fd[0] = in[1];
		io->fd[1] = out[0];
		io->fd[2] = errp[0];
		in[1] = out[0] = errp[0] = -1;
	}
	posix_spawnattr_destroy(&attr);
out_fa:
	posix_spawn_file_actions_destroy(&fa);
out_pipes:
	close_fd(&in[0]);
	close_fd(&in[1]);
	close_fd(&out[0]);
	close_fd(&out[1]);
	close_fd(&errp[0]);
	close_fd(&errp[1]);
	return r;
}

/* Has the script exited?  Asked with WNOWAIT so it stays a zombie: until
 * we reap it its pid, which is also its process group id, cannot be
 * reused, and kill(-pid) can only reach what it started. */
static bool hook_exited(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		return errno == ECHILD; /* reaped elsewhere: gone all the same */
	return si.si_pid == pid;
}

/* SIGTERM to the script's process group, SIGKILL once the script died or
 * the grace ran out, so children that ignore SIGTERM die too. */
static void hook_kill(pid_t pid)
{
	uint64_t end = fv_mono_ns() + HOOKS_KILL_GRACE_MS * 1000000ull;
	struct timespec tick = { 0, 10 * 1000000L };

	kill(-pid, SIGTERM);
	while (!hook_exited(pid) && fv_mono_ns() < end)
		nanosleep(&tick, NULL);
	kill(-pid, SIGKILL);
}

/* Feed the XML.  EPIPE means the script did not want (all of) it, which
 * libvirt ignores too.  Returns 0 or an errno value. */
static int hook_feed(struct hook_io *io)
{
	size_t len = io->in_len - io->in_off;
	ssize_t n;

	if (len > HOOKS_WRITE_CHUNK)
		len = HOOKS_WRITE_CHUNK;
	n = write(io->fd[0], io->in + io->in_off, len);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		if (errno != EPIPE)
			return errno;
		io->epipe = true;
		close_fd(&io->fd[0]);
		return 0;
	}
	io->in_off += (size_t)n;
	if (io->in_off == io->in_len)
		close_fd(&io->fd[0]);
	return 0;
}

/* Read stdout (thrown away) or stderr (the first HOOKS_STDERR_MAX bytes
 * kept); reading on keeps a chatty script from blocking on a full pipe.
 * Returns 0 or an errno value. */
static int hook_drain(struct hook_io *io, int i)
{
	struct hook_result *res = io->res;
	char buf[4096];
	ssize_t n;
	size_t keep;

	n = read(io->fd[i], buf, sizeof(buf));
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : errno;
	if (n == 0) {
		close_fd(&io->fd[i]);
		return 0;
	}
	if (i != STDERR_FILENO)
		return 0;
	keep = sizeof(res->err) - res->err_len;
	if ((size_t)n > keep)
		res->err_cut = true;
	else
		keep = (size_t)n;
	memcpy(res->err + res->err_len, buf, keep);
	res->err_len += keep;
	return 0;
}

/*
 * Move data until stdout and stderr are at EOF, the script's time is up
 * (*timed_out) or something broke (returns the errno).  Once the script
 * itself has exited we read on only HOOKS_LINGER_MS: whatever still holds
 * the pipes is something it left running, not the script.
 */
static int hook_talk(struct hook_io *io, pid_t pid, unsigned timeout_ms,
		     bool *timed_out)
{
	uint64_t deadline = fv_mono_ns() + timeout_ms * 1000000ull;
	uint64_t now, end;
	bool exited = false;

	*timed_out = false;
	for (;;) {
		struct pollfd pfd[3];
		int idx[3], n = 0, r, wait_ms;

		if (io->fd[0] < 0 && io->fd[1] < 0 && io->fd[2] < 0)
			return 0;
		now = fv_mono_ns();
		if (!exited && hook_exited(pid)) {
			exited = true;
			deadline = now + HOOKS_LINGER_MS * 1000000ull;
		}
		if (now >= deadline) {
			*timed_out = !exited;
			return 0;
		}
		end = deadline - now;
		wait_ms = (int)((end + 999999) / 1000000);
		if (!exited && wait_ms > HOOKS_TICK_MS)
			wait_ms = HOOKS_TICK_MS;
		for (int i = 0; i < 3; i++) {
			if (io->fd[i] < 0)
				continue;
			pfd[n].fd = io->fd[i];
			pfd[n].events = i == 0 ? POLLOUT : POLLIN;
			pfd[n].revents = 0;
			idx[n++] = i;
		}
		r = poll(pfd, (nfds_t)n, wait_ms);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		for (int k = 0; k < n; k++) {
			int i = idx[k];

			if (pfd[k].revents & POLLNVAL)
				return EBADF;
			if (!(pfd[k].revents & (POLLIN | POLLOUT | POLLERR | POLLHUP)))
				continue;
			r = i == 0 ? hook_feed(io) : hook_drain(io, i);
			if (r)
				return r;
		}
	}
}

/*
 * hook_talk with SIGPIPE blocked in this thread only: a script that closes
 * stdin early makes our write() fail with EPIPE, and the SIGPIPE that
 * comes with it must not kill foldvm.  The process-wide disposition is
 * left alone (other threads may rely on it); a SIGPIPE our write raised is
 * taken off the thread before the old mask comes back.
 */
static int hook_talk_nosigpipe(struct hook_io *io, pid_t pid,
			       unsigned timeout_ms, bool *timed_out)
{
	static const struct timespec zero = { 0, 0 };
	sigset_t pipe_set, old, pending;
	bool was_pending;
	int r;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	/* One already pending (blocked by the caller) is not ours to eat. */
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE) == 1;
	r = hook_talk(io, pid, timeout_ms, timed_out);
	if (io->epipe && !was_pending)
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 &&
		       errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

void hook_run_one(char *const argv[], char *const envp[], const char *xml,
		  unsigned timeout_ms, struct hook_result *res)
{
	struct hook_io io;
	bool timed_out;
	int r, status = 0;
	pid_t pid, w;

	memset(res, 0, sizeof(*res));
	memset(&io, 0, sizeof(io));
	io.fd[0] = io.fd[1] = io.fd[2] = -1;
	io.in = xml;
	io.in_len = xml ? strlen(xml) : 0;
	io.res = res;
	r = hook_spawn(argv[0], argv, envp, xml != NULL, &io, &pid);
	if (r) {
		res->how = HOOK_NOSTART;
		res->value = r;
		return;
	}
	if (io.fd[0] >= 0 && io.in_len == 0)
		close_fd(&io.fd[0]);
	r = hook_talk_nosigpipe(&io, pid, timeout_ms, &timed_out);
	for (int i = 0; i < 3; i++)
		close_fd(&io.fd[i]);
	if (timed_out || r)
		hook_kill(pid);
	while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (timed_out) {
		res->how = HOOK_TIMEOUT;
	} else if (r) {
		res->how = HOOK_IOERR;
		res->value = r;
	} else if (w < 0) {
		/* Reaped behind our back (SIGCHLD set to SIG_IGN?). */
		res->how = HOOK_LOST;
		res->value = errno;
	} else if (WIFEXITED(status)) {
		res->how = WEXITSTATUS(status) ? HOOK_EXIT : HOOK_OK;
		res->value = WEXITSTATUS(status);
	} else {
		res->how = HOOK_SIGNAL;
		res->value = WTERMSIG(status);
	}
}
