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
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include "config.h"
#include "runner/hook_exec.h"
#include "lib/timeutil.h"

#define HOOKS_DRIVER "qemu"
#define HOOKS_EXTRA "-"

/* virCommandAddEnvPassCommon: these pass through when set; LC_ALL=C. */
static const char *const hooks_env_pass[] = {
	"LD_PRELOAD", "LD_LIBRARY_PATH", "PATH", "HOME", "USER", "LOGNAME",
	"TMPDIR",
};
#define HOOKS_ENV_SLOTS \
	(2 + sizeof(hooks_env_pass) / sizeof(hooks_env_pass[0]) + 1)

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

void hooks_config_init(struct hooks_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->dir, sizeof(cfg->dir), "%s", HOOKS_DEFAULT_DIR);
	cfg->timeout_ms = HOOKS_DEFAULT_TIMEOUT_MS;
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

	hook_run_one(argv, c->envp, xml, timeout_ms, &c->res);
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
