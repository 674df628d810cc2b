/*
 * hooks.c - libvirt-compatible QEMU hook scripts.
 *
 * What libvirt does (src/util/virhook.c: virHookCall, virRunScript,
 * virHookCheck; src/util/vircommand.c: virCommandAddEnvPassCommon,
 * virCommandRun, virCommandProcessIO, virCommandWait, virExec, virFork;
 * src/util/virfile.c: virFileIsExecutable, virDirRead), and we do too:
 *  - DIR/qemu runs first if it is "executable": stat() (symlinks followed)
 *    says a regular file with any x bit.  Anything else is skipped.
 *  - Then DIR/qemu.d/: every entry but "." and ".." (dot files included)
 *    that passes the same test, sorted by strcmp.  A missing qemu.d is no
 *    hooks; one that exists but cannot be read is an error.
 *  - argv is PATH NAME OP SUBOP EXTRA, argv[0] the full path, EXTRA "-".
 *  - The environment is LC_ALL=C plus LD_PRELOAD, LD_LIBRARY_PATH, PATH,
 *    HOME, USER, LOGNAME and TMPDIR where set, nothing else - but for
 *    FOLDVM_VERSION, which tells a hook that foldvm, not libvirtd, calls.
 *  - The XML goes to stdin through a pipe; a script that closes stdin
 *    early (EPIPE) is not an error.  stdout and stderr are read to EOF.
 *  - All signal dispositions are default and no signal is blocked in the
 *    child; only fds 0-2 survive the exec; the working directory is ours.
 *  - A failing script does not stop the rest: every script runs, and the
 *    call fails if any failed.
 *
 * Where foldvm deliberately differs:
 *  - libvirt has no timeout.  We kill a script's process group after
 *    cfg->timeout_ms (SIGTERM, SIGKILL after HOOKS_KILL_GRACE_MS), so a
 *    hung hook cannot hang a guest's start or stop forever.  The script
 *    gets its own process group for that.
 *  - libvirt waits for EOF on stdout/stderr, so a script that leaves a
 *    background process holding them hangs libvirtd.  We stop reading
 *    HOOKS_LINGER_MS after the script itself exited.
 *  - stdout is thrown away; libvirt uses it as replacement XML for a few
 *    operations (migrate, restore), which foldvm has no use for.
 *  - libvirt caches which hooks exist until it is reloaded; we look at the
 *    directory on every call, and we list qemu.d before running DIR/qemu,
 *    so a bad qemu.d fails before any script has run.
 *  - The error names the first failing script and counts the others;
 *    libvirt keeps only the last one's message.
 *  - libvirt runs any number of scripts; we refuse more than
 *    HOOKS_MAX_SCRIPTS in qemu.d.
 */
#include <dirent.h>
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
#include "runner/hooks.h"
#include "lib/timeutil.h"

#define HOOKS_DRIVER "qemu"
#define HOOKS_EXTRA "-"
#define HOOKS_TICK_MS 50        /* how often a running script is checked */
#define HOOKS_WRITE_CHUNK 65536

/* virCommandAddEnvPassCommon: these pass through when set; LC_ALL=C. */
static const char *const hooks_env_pass[] = {
	"LD_PRELOAD", "LD_LIBRARY_PATH", "PATH", "HOME", "USER", "LOGNAME",
	"TMPDIR",
};
#define HOOKS_ENV_SLOTS \
	(2 + sizeof(hooks_env_pass) / sizeof(hooks_env_pass[0]) + 1)

enum hook_how {
	HOOK_OK,
	HOOK_EXIT,      /* value = exit status */
	HOOK_SIGNAL,    /* value = signal */
	HOOK_TIMEOUT,
	HOOK_NOSTART,   /* value = errno */
	HOOK_IOERR,     /* value = errno; the script was killed */
	HOOK_LOST,      /* value = errno; its exit status could not be had */
};

struct hook_result {
	enum hook_how how;
	int value;
	char err[HOOKS_STDERR_MAX];
	size_t err_len;
	bool err_cut;
};

/* Everything one hooks_run() needs, in one allocation. */
struct hooks_call {
	char path[PATH_MAX];
	char ddir[PATH_MAX];    /* DIR/qemu.d */
	bool main;              /* DIR/qemu is to run */
	unsigned n;
	char names[HOOKS_MAX_SCRIPTS][NAME_MAX + 1];
	char *envp[HOOKS_ENV_SLOTS];
	struct hook_result res;
	struct hook_result first;
	char first_path[PATH_MAX];
	unsigned failed;
};

/* Our ends of the child's stdin, stdout and stderr while it runs. */
struct hook_io {
	int fd[3];              /* -1 once closed */
	const char *in;
	size_t in_len, in_off;
	bool epipe;
	struct hook_result *res;
};

void hooks_config_init(struct hooks_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->dir, sizeof(cfg->dir), "%s", HOOKS_DEFAULT_DIR);
	cfg->timeout_ms = HOOKS_DEFAULT_TIMEOUT_MS;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* virFileIsExecutable: a regular file with any x bit.  Whether *we* may
 * execute it is not asked, so such a script fails loudly at exec instead
 * of being skipped without a word. */
static bool hook_is_exec(const struct stat *st)
{
	return S_ISREG(st->st_mode) && (st->st_mode & 0111);
}

static int hook_path(char *buf, const char *a, const char *b,
		     struct fv_error *err)
{
	int n = snprintf(buf, PATH_MAX, "%s/%s", a, b);

	if (n < 0 || n >= PATH_MAX)
		return fv_err(err, FV_E_INVAL,
			      "hook script path '%s/%.64s' is longer than %d bytes",
			      a, b, PATH_MAX - 1);
	return 0;
}

static int hook_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Read DIR/qemu.d/ into c->names, sorted.  Nothing runs before this is
 * done, so a qemu.d we cannot read fails the call without side effects. */
static int hooks_scan_dir(struct hooks_call *c, struct fv_error *err)
{
	struct dirent *de;
	struct stat st;
	DIR *d;

	d = opendir(c->ddir);
	if (!d) {
		/* virDirOpenIfExists: only "not there" means no hooks. */
		if (errno == ENOENT)
			return 0;
		return fv_err_errno(err, FV_E_IO, errno,
				    "cannot open hook directory '%s'", c->ddir);
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de)
			break;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, 0) || !hook_is_exec(&st))
			continue;
		if (c->n == HOOKS_MAX_SCRIPTS) {
			closedir(d);
			return fv_err(err, FV_E_INVAL,
				      "hook directory '%s' has more than %d executable scripts",
				      c->ddir, HOOKS_MAX_SCRIPTS);
		}
		if (hook_path(c->path, c->ddir, de->d_name, err)) {
			closedir(d);
			return -1;
		}
		/* d_name is at most NAME_MAX bytes. */
		snprintf(c->names[c->n++], sizeof(c->names[0]), "%s", de->d_name);
	}
	if (errno) {
		int e = errno;

		closedir(d);
		return fv_err_errno(err, FV_E_IO, e,
				    "cannot read hook directory '%s'", c->ddir);
	}
	closedir(d);
	qsort(c->names, c->n, sizeof(c->names[0]), hook_cmp);
	return 0;
}

static int hooks_scan(struct hooks_call *c, const char *dir,
		      struct fv_error *err)
{
	struct stat st;

	if (hook_path(c->path, dir, HOOKS_DRIVER, err) ||
	    hook_path(c->ddir, dir, HOOKS_DRIVER ".d", err))
		return -1;
	c->main = stat(c->path, &st) == 0 && hook_is_exec(&st);
	return hooks_scan_dir(c, err);
}

static void hooks_env_free(struct hooks_call *c)
{
	for (size_t i = 0; i < HOOKS_ENV_SLOTS; i++) {
		free(c->envp[i]);
		c->envp[i] = NULL;
	}
}

/* getenv() here is safe as long as nobody calls setenv() in another
 * thread, which foldvm does not do. */
static int hooks_env_build(struct hooks_call *c, struct fv_error *err)
{
	size_t n = 0;

	c->envp[n] = strdup("LC_ALL=C");
	if (!c->envp[n++])
		goto nomem;
	/* The one addition to libvirt's set: a hook can tell foldvm's call
	 * from libvirtd's (foldvm-libvirt-hook lets foldvm's starts pass). */
	c->envp[n] = strdup("FOLDVM_VERSION=" PACKAGE_VERSION);
	if (!c->envp[n++])
		goto nomem;
	for (size_t i = 0; i < sizeof(hooks_env_pass) / sizeof(hooks_env_pass[0]);
	     i++) {
		const char *v = getenv(hooks_env_pass[i]);

		if (!v)
			continue;
		if (asprintf(&c->envp[n], "%s=%s", hooks_env_pass[i], v) < 0) {
			c->envp[n] = NULL;
			goto nomem;
		}
		n++;
	}
	c->envp[n] = NULL;
	return 0;
nomem:
	hooks_env_free(c);
	return fv_err(err, FV_E_NOMEM, "no memory for the hook environment");
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

static void hook_run_one(struct hooks_call *c, char *const argv[],
			 const char *xml, unsigned timeout_ms)
{
	struct hook_result *res = &c->res;
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
	r = hook_spawn(argv[0], argv, c->envp, xml != NULL, &io, &pid);
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

static const char *hook_signame(int sig)
{
	switch (sig) {
	case SIGHUP: return "SIGHUP";
	case SIGINT: return "SIGINT";
	case SIGQUIT: return "SIGQUIT";
	case SIGILL: return "SIGILL";
	case SIGTRAP: return "SIGTRAP";
	case SIGABRT: return "SIGABRT";
	case SIGBUS: return "SIGBUS";
	case SIGFPE: return "SIGFPE";
	case SIGKILL: return "SIGKILL";
	case SIGUSR1: return "SIGUSR1";
	case SIGSEGV: return "SIGSEGV";
	case SIGUSR2: return "SIGUSR2";
	case SIGPIPE: return "SIGPIPE";
	case SIGALRM: return "SIGALRM";
	case SIGTERM: return "SIGTERM";
	case SIGXCPU: return "SIGXCPU";
	case SIGXFSZ: return "SIGXFSZ";
	case SIGSYS: return "SIGSYS";
	}
	return "?";
}

/* "30", "0.3", "1.25" (seconds, for the timeout message). */
static void hook_secs(char *buf, size_t sz, unsigned ms)
{
	unsigned s = ms / 1000, f = ms % 1000;

	if (f == 0)
		snprintf(buf, sz, "%u", s);
	else if (f % 100 == 0)
		snprintf(buf, sz, "%u.%u", s, f / 100);
	else if (f % 10 == 0)
		snprintf(buf, sz, "%u.%02u", s, f / 10);
	else
		snprintf(buf, sz, "%u.%03u", s, f);
}

/* A script's stderr on one line: each run of whitespace and control
 * characters becomes one space (a multi-line message stays one log line
 * and cannot carry terminal escapes), the ends are trimmed, a cut is
 * marked.  out needs res->err_len + 4 bytes. */
static void hook_tidy(const struct hook_result *res, char *out)
{
	bool gap = false;
	size_t o = 0;

	for (size_t i = 0; i < res->err_len; i++) {
		unsigned char ch = (unsigned char)res->err[i];

		if (ch <= ' ' || ch == 0x7f) {
			gap = o > 0;
			continue;
		}
		if (gap)
			out[o++] = ' ';
		gap = false;
		out[o++] = (char)ch;
	}
	if (res->err_cut && o) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

static int hooks_report(const struct hooks_call *c, const char *name,
			const char *op, const char *subop, unsigned timeout_ms,
			struct fv_error *err)
{
	const struct hook_result *res = &c->first;
	char how[160], more[64] = "", text[HOOKS_STDERR_MAX + 4], secs[32];
	enum fv_errcode code = FV_E_STATE;

	switch (res->how) {
	case HOOK_EXIT:
		snprintf(how, sizeof(how), "exited with status %d", res->value);
		break;
	case HOOK_SIGNAL:
		snprintf(how, sizeof(how), "was killed by signal %d (%s)",
			 res->value, hook_signame(res->value));
		break;
	case HOOK_TIMEOUT:
		hook_secs(secs, sizeof(secs), timeout_ms);
		snprintf(how, sizeof(how), "timed out after %s s and was killed",
			 secs);
		break;
	case HOOK_NOSTART:
		code = FV_E_SYS;
		snprintf(how, sizeof(how), "could not be started: %s",
			 strerror(res->value));
		break;
	case HOOK_LOST:
		code = FV_E_SYS;
		snprintf(how, sizeof(how), "left no exit status to collect: %s",
			 strerror(res->value));
		break;
	case HOOK_IOERR:
	default:
		code = FV_E_SYS;
		snprintf(how, sizeof(how),
			 "failed on its stdin/stdout/stderr and was killed: %s",
			 strerror(res->value));
		break;
	}
	if (c->failed > 1)
		snprintf(more, sizeof(more), " (%u more hook script%s failed)",
			 c->failed - 1, c->failed > 2 ? "s" : "");
	hook_tidy(res, text);
	return fv_err(err, code, "hook script '%s' (%s %s %s) %s%s%s%s",
		      c->first_path, name, op, subop, how, more,
		      text[0] ? ": " : "", text);
}

static int hooks_check_arg(const char *what, const char *s,
			   struct fv_error *err)
{
	if (!s || !s[0])
		return fv_err(err, FV_E_INVAL, "hook %s is empty", what);
	if (strnlen(s, HOOKS_ARG_MAX + 1) > HOOKS_ARG_MAX)
		return fv_err(err, FV_E_INVAL, "hook %s is longer than %d bytes",
			      what, HOOKS_ARG_MAX);
	return 0;
}

static int hooks_check(const struct hooks_config *cfg, const char *name,
		       const char *op, const char *subop, struct fv_error *err)
{
	if (!cfg)
		return fv_err(err, FV_E_INVAL, "no hook configuration");
	if (hooks_check_arg("guest name", name, err) ||
	    hooks_check_arg("operation", op, err) ||
	    hooks_check_arg("sub-operation", subop, err))
		return -1;
	if (strnlen(cfg->dir, sizeof(cfg->dir)) == sizeof(cfg->dir))
		return fv_err(err, FV_E_INVAL,
			      "hook directory path is longer than %zu bytes",
			      sizeof(cfg->dir) - 1);
	if (cfg->dir[0] && cfg->dir[0] != '/')
		return fv_err(err, FV_E_INVAL,
			      "hook directory '%s' is not an absolute path",
			      cfg->dir);
	if (cfg->timeout_ms > HOOKS_MAX_TIMEOUT_MS)
		return fv_err(err, FV_E_INVAL,
			      "hook timeout %u ms is over the limit of %u ms",
			      cfg->timeout_ms, HOOKS_MAX_TIMEOUT_MS);
	return 0;
}

/* Run one script; remember the first failure. */
static void hooks_run_path(struct hooks_call *c, const char *path,
			   const char *name, const char *op, const char *subop,
			   const char *xml, unsigned timeout_ms)
{
	char *argv[] = { (char *)path, (char *)name, (char *)op, (char *)subop,
			 (char *)HOOKS_EXTRA, NULL };

	hook_run_one(c, argv, xml, timeout_ms);
	if (c->res.how == HOOK_OK)
		return;
	if (!c->failed++) {
		c->first = c->res;
		snprintf(c->first_path, sizeof(c->first_path), "%s", path);
	}
}

int hooks_run(const struct hooks_config *cfg, const char *name, const char *op,
	      const char *subop, const char *xml, struct fv_error *err)
{
	char path[PATH_MAX];
	struct hooks_call *c;
	unsigned timeout_ms;
	int ret = -1;

	if (hooks_check(cfg, name, op, subop, err))
		return -1;
	if (!cfg->dir[0])
		return 0;
	timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : HOOKS_DEFAULT_TIMEOUT_MS;
	c = calloc(1, sizeof(*c));
	if (!c)
		return fv_err(err, FV_E_NOMEM, "no memory to run hook scripts");
	if (hooks_scan(c, cfg->dir, err))
		goto out;
	ret = 0;
	if (!c->main && !c->n)
		goto out;
	ret = -1;
	if (hooks_env_build(c, err))
		goto out;
	/* The paths fit: hooks_scan built each once. */
	if (c->main) {
		hook_path(path, cfg->dir, HOOKS_DRIVER, NULL);
		hooks_run_path(c, path, name, op, subop, xml, timeout_ms);
	}
	for (unsigned i = 0; i < c->n; i++) {
		hook_path(path, c->ddir, c->names[i], NULL);
		hooks_run_path(c, path, name, op, subop, xml, timeout_ms);
	}
	ret = c->failed ? hooks_report(c, name, op, subop, timeout_ms, err) : 0;
out:
	hooks_env_free(c);
	free(c);
	return ret;
}
