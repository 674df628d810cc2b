/*
 * test_hooks.c - runner/hooks.c against real /bin/sh scripts in a mkdtemp
 * hooks directory: which scripts run and in what order, their argv, stdin,
 * environment, signal state and fds, and how failures, timeouts and
 * scripts that ignore stdin or leave children behind come out.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <CUnit/CUnit.h>
#include "tests/unit/unit.h"
#include "runner/hooks.h"
#include "lib/timeutil.h"

#define BIG_XML (1024 * 1024)

static char base[64];           /* BASE/hooks is the hooks directory */
static struct hooks_config cfg;

/* BASE/rel, in one of a few rotating buffers. */
static const char *P(const char *rel)
{
	static char buf[4][PATH_MAX];
	static unsigned next;
	char *b = buf[next++ % 4];

	snprintf(b, PATH_MAX, "%s/%s", base, rel);
	return b;
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* A fresh BASE with BASE/hooks/qemu.d; cfg points at it.  The timeout is
 * long enough for any script here, short enough that a bug cannot hang
 * the suite. */
static bool h_begin(void)
{
	snprintf(base, sizeof(base), "/tmp/foldvm-hooks-XXXXXX");
	if (!mkdtemp(base))
		return false;
	if (mkdir(P("hooks"), 0755) || mkdir(P("hooks/qemu.d"), 0755))
		return false;
	hooks_config_init(&cfg);
	snprintf(cfg.dir, sizeof(cfg.dir), "%s", P("hooks"));
	cfg.timeout_ms = 10000;
	return true;
}

static void h_end(void)
{
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void h_write(const char *rel, mode_t mode, const char *text)
{
	FILE *f = fopen(P(rel), "w");

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	CU_ASSERT_EQUAL(fclose(f), 0);
	CU_ASSERT_EQUAL(chmod(P(rel), mode), 0);
}

/* A /bin/sh script BASE/hooks/rel; its body sees BASE as $B. */
static void h_script(const char *rel, mode_t mode, const char *fmt, ...)
{
	char body[4096], text[5000], path[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	snprintf(text, sizeof(text), "#!/bin/sh\nB='%s'\n%s\n", base, body);
	snprintf(path, sizeof(path), "hooks/%s", rel);
	h_write(path, mode, text);
}

/* Marks the script ran: appends its file name to BASE/log. */
#define LOG_ME "echo \"${0##*/}\" >> \"$B/log\""

/* BASE/rel as a NUL-terminated string (NULL if absent); *len its size. */
static char *h_read(const char *rel, size_t *len)
{
	FILE *f = fopen(P(rel), "r");
	size_t cap = 4096, n = 0, got;
	char *buf;

	if (!f)
		return NULL;
	buf = malloc(cap + 1);
	while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			char *nb = realloc(buf, cap * 2 + 1);

			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (buf)
		buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static bool h_file_is(const char *rel, const char *want)
{
	char *got = h_read(rel, NULL);
	bool ok = got && !strcmp(got, want);

	if (!ok)
		fprintf(stderr, "\n  %s is '%s', want '%s'\n", rel,
			got ? got : "(missing)", want);
	free(got);
	return ok;
}

static bool msg_has(const struct fv_error *err, const char *s)
{
	if (strstr(err->msg, s))
		return true;
	fprintf(stderr, "\n  error '%s' lacks '%s'\n", err->msg, s);
	return false;
}

static int h_run(const char *xml, struct fv_error *err)
{
	memset(err, 0, sizeof(*err));
	return hooks_run(&cfg, "vm1", "prepare", "begin", xml, err);
}

static unsigned ms_since(uint64_t t0)
{
	return (unsigned)((fv_mono_ns() - t0) / 1000000u);
}

/* 1 MiB of XML-ish text, every line different, no trailing newline. */
static char *big_xml(void)
{
	char *x = malloc(BIG_XML + 1);
	size_t n = 0;

	if (!x)
		return NULL;
	n += (size_t)sprintf(x, "<domain type='kvm'>\n");
	for (unsigned i = 0; n < BIG_XML - 64; i++)
		n += (size_t)sprintf(x + n, "  <x n=\"%u\">\xc3\xa9\t&amp;</x>\r\n", i);
	memset(x + n, 'z', BIG_XML - n);
	x[BIG_XML] = '\0';
	return x;
}

/* Gone, or a zombie nobody reaped yet: either way it does not run. */
static bool pid_dead(long pid, unsigned ms)
{
	uint64_t t0 = fv_mono_ns();
	char path[64], buf[512];

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	do {
		struct timespec tick = { 0, 10 * 1000000L };
		FILE *f = fopen(path, "r");
		size_t n;
		char *rp;

		if (!f)
			return true;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		rp = strrchr(buf, ')');
		if (rp && rp[1] && (rp[2] == 'Z' || rp[2] == 'X'))
			return true;
		nanosleep(&tick, NULL);
	} while (ms_since(t0) < ms);
	return false;
}

static long h_read_pid(const char *rel)
{
	char *s = h_read(rel, NULL);
	long pid = s ? strtol(s, NULL, 10) : -1;

	free(s);
	return pid;
}

static unsigned count_fds(void)
{
	unsigned n = 0;

	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

static void test_none(void)
{
	struct fv_error err;

	CU_ASSERT_FATAL(h_begin());
	/* disabled */
	cfg.dir[0] = '\0';
	CU_ASSERT_EQUAL(h_run("<x/>", &err), 0);
	CU_ASSERT_EQUAL(err.code, FV_OK);
	/* no such directory */
	snprintf(cfg.dir, sizeof(cfg.dir), "%s", P("nope"));
	CU_ASSERT_EQUAL(h_run("<x/>", &err), 0);
	CU_ASSERT_EQUAL(err.code, FV_OK);
	/* empty qemu.d, then no qemu.d at all */
	snprintf(cfg.dir, sizeof(cfg.dir), "%s", P("hooks"));
	CU_ASSERT_EQUAL(h_run("<x/>", &err), 0);
	CU_ASSERT_EQUAL(rmdir(P("hooks/qemu.d")), 0);
	CU_ASSERT_EQUAL(h_run("<x/>", &err), 0);
	/* a qemu that is not executable, or not a regular file, is no hook */
	h_script("qemu", 0644, LOG_ME);
	CU_ASSERT_EQUAL(h_run("<x/>", &err), 0);
	CU_ASSERT_EQUAL(err.code, FV_OK);
	CU_ASSERT_EQUAL(unlink(P("hooks/qemu")), 0);
	CU_ASSERT_EQUAL(mkdir(P("hooks/qemu"), 0755), 0);
	CU_ASSERT_EQUAL(h_run("<x/>", &err), 0);
	CU_ASSERT_PTR_NULL(h_read("log", NULL));
	h_end();
}

static void test_order(void)
{
	struct fv_error err;

	CU_ASSERT_FATAL(h_begin());
	h_script("qemu", 0755, LOG_ME);
	h_script("qemu.d/20-b", 0755, LOG_ME);
	h_script("qemu.d/10-a", 0755, LOG_ME);
	h_script("qemu.d/9-c", 0700, LOG_ME);   /* strcmp: after 20-b */
	h_script("qemu.d/.hidden", 0755, LOG_ME); /* libvirt runs these */
	h_script("qemu.d/15-noexec", 0644, LOG_ME);
	h_script("qemu.d/16-xother", 0601, LOG_ME); /* any x bit counts */
	CU_ASSERT_EQUAL(mkdir(P("hooks/qemu.d/12-dir"), 0755), 0);
	/* a symlink is followed, a dangling one skipped */
	h_script("target", 0755, LOG_ME);
	CU_ASSERT_EQUAL(symlink(P("hooks/target"), P("hooks/qemu.d/13-link")), 0);
	CU_ASSERT_EQUAL(symlink(P("nowhere"), P("hooks/qemu.d/14-dangling")), 0);
	CU_ASSERT_EQUAL(h_run("<x/>", &err), 0);
	CU_ASSERT(h_file_is("log",
			    "qemu\n.hidden\n10-a\n13-link\n16-xother\n20-b\n9-c\n"));
	h_end();
}

static void test_args(void)
{
	const char *name = "vm 1;$(touch pwned) '\"*";
	struct fv_error err;
	char want[PATH_MAX + 256];

	CU_ASSERT_FATAL(h_begin());
	h_script("qemu", 0755, "printf '%%s\\n' \"$0\" \"$#\" \"$@\" > \"$B/args\"");
	h_script("qemu.d/10-a", 0755,
		 "printf '%%s\\n' \"$0\" \"$#\" \"$@\" > \"$B/args.d\"");
	CU_ASSERT_EQUAL(hooks_run(&cfg, name, "started", "-", "<x/>", &err), 0);
	snprintf(want, sizeof(want), "%s\n4\n%s\nstarted\n-\n-\n",
		 P("hooks/qemu"), name);
	CU_ASSERT(h_file_is("args", want));
	snprintf(want, sizeof(want), "%s\n4\n%s\nstarted\n-\n-\n",
		 P("hooks/qemu.d/10-a"), name);
	CU_ASSERT(h_file_is("args.d", want));
	h_end();
}

static void test_stdin(void)
{
	static const char small[] = "<domain>\n  <name>\xc3\xa9t\xc3\xa9</name>\r\n"
		"\t<!-- 'quotes' \"too\" $HOME `x` -->\n</domain>";
	struct fv_error err;
	char *xml = big_xml(), *got;
	size_t len;

	CU_ASSERT_PTR_NOT_NULL_FATAL(xml);
	CU_ASSERT_FATAL(h_begin());
	h_script("qemu", 0755, "cat > \"$B/in\"");
	/* every script gets the whole XML again */
	h_script("qemu.d/10-a", 0755, "cat > \"$B/in.d\"");
	CU_ASSERT_EQUAL(h_run(small, &err), 0);
	CU_ASSERT(h_file_is("in", small));
	CU_ASSERT(h_file_is("in.d", small));

	CU_ASSERT_EQUAL(h_run(xml, &err), 0);
	got = h_read("in", &len);
	CU_ASSERT_PTR_NOT_NULL(got);
	CU_ASSERT_EQUAL(len, BIG_XML);
	CU_ASSERT(got && len == BIG_XML && !memcmp(got, xml, BIG_XML));
	free(got);
	got = h_read("in.d", &len);
	CU_ASSERT(got && len == BIG_XML && !memcmp(got, xml, BIG_XML));
	free(got);

	/* no XML: stdin is empty, not our terminal */
	CU_ASSERT_EQUAL(h_run(NULL, &err), 0);
	CU_ASSERT(h_file_is("in", ""));
	CU_ASSERT_EQUAL(h_run("", &err), 0);
	CU_ASSERT(h_file_is("in", ""));
	free(xml);
	h_end();
}

static bool env_allowed(const char *line)
{
	static const char *const ok[] = {
		"LC_ALL=", "LD_PRELOAD=", "LD_LIBRARY_PATH=", "PATH=", "HOME=",
		"USER=", "LOGNAME=", "TMPDIR=",
		"FOLDVM_VERSION=",  /* foldvm's one addition */
		"PWD=", "OLDPWD=", "SHLVL=", "_=", /* the shell's own */
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!strncmp(line, ok[i], strlen(ok[i])))
			return true;
	fprintf(stderr, "\n  hook saw '%s'\n", line);
	return false;
}

static void test_env(void)
{
	static const char *const names[3] = { "LANG", "LC_ALL", "TMPDIR" };
	char want[PATH_MAX + 16], *env, *line, *save = NULL, *saved[3];
	struct fv_error err;

	for (int i = 0; i < 3; i++) {
		const char *v = getenv(names[i]);

		saved[i] = v ? strdup(v) : NULL;
	}

	CU_ASSERT_FATAL(h_begin());
	setenv("FOLDVM_HOOK_SECRET", "leak", 1);
	setenv("LANG", "de_DE.UTF-8", 1);
	setenv("LC_ALL", "de_DE.UTF-8", 1);
	setenv("TMPDIR", "/tmp/hooks-tmpdir", 1);
	h_script("qemu", 0755, "exec env > \"$B/env\"");
	CU_ASSERT_EQUAL(h_run("<x/>", &err), 0);
	env = h_read("env", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(env);
	CU_ASSERT_PTR_NOT_NULL(strstr(env, "LC_ALL=C\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(env, "FOLDVM_VERSION="));
	CU_ASSERT_PTR_NOT_NULL(strstr(env, "TMPDIR=/tmp/hooks-tmpdir\n"));
	snprintf(want, sizeof(want), "PATH=%s\n", getenv("PATH"));
	CU_ASSERT_PTR_NOT_NULL(strstr(env, want));
	CU_ASSERT_PTR_NULL(strstr(env, "FOLDVM_HOOK_SECRET"));
	CU_ASSERT_PTR_NULL(strstr(env, "LANG="));
	for (line = strtok_r(env, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		CU_ASSERT(env_allowed(line));
	free(env);
	unsetenv("FOLDVM_HOOK_SECRET");
	for (int i = 0; i < 3; i++) {
		if (saved[i])
			setenv(names[i], saved[i], 1);
		else
			unsetenv(names[i]);
		free(saved[i]);
	}
	h_end();
}

/* A failure is reported with its status and stderr; the scripts after it
 * still run, as in libvirt. */
static void test_failure(void)
{
	struct fv_error err;
	char want[PATH_MAX + 64];

	CU_ASSERT_FATAL(h_begin());
	h_script("qemu.d/10-ok", 0755, LOG_ME);
	h_script("qemu.d/20-fail", 0755, LOG_ME "\n"
		 "echo '  no bridge br7' >&2\n"
		 "printf 'second\\tline\\n\\n\\033[31m' >&2\n"
		 "echo 'to stdout, thrown away'\n"
		 "exit 3");
	h_script("qemu.d/30-after", 0755, LOG_ME);
	CU_ASSERT_EQUAL(h_run("<x/>", &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_STATE);
	snprintf(want, sizeof(want), "hook script '%s' (vm1 prepare begin) ",
		 P("hooks/qemu.d/20-fail"));
	CU_ASSERT(msg_has(&err, want));
	CU_ASSERT(msg_has(&err, "exited with status 3: no bridge br7 second line [31m"));
	CU_ASSERT_PTR_NULL(strstr(err.msg, "more hook"));
	CU_ASSERT_PTR_NULL(strstr(err.msg, "stdout"));
	CU_ASSERT_PTR_NULL(strchr(err.msg, '\n'));
	CU_ASSERT_PTR_NULL(strchr(err.msg, '\033'));
	CU_ASSERT(h_file_is("log", "10-ok\n20-fail\n30-after\n"));
	h_end();
}

/* The first failure is the one named; the others are counted. */
static void test_first_failure(void)
{
	struct fv_error err;
	char want[128];

	CU_ASSERT_FATAL(h_begin());
	h_script("qemu", 0755, LOG_ME "\necho dying >&2\nkill -USR1 $$\nsleep 5");
	h_script("qemu.d/10-x", 0755, LOG_ME "\necho x broke >&2\nexit 1");
	h_script("qemu.d/20-ok", 0755, LOG_ME);
	h_script("qemu.d/30-y", 0755, LOG_ME "\nexit 2");
	CU_ASSERT_EQUAL(h_run("<x/>", &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_STATE);
	CU_ASSERT(msg_has(&err, P("hooks/qemu'")));
	snprintf(want, sizeof(want),
		 "was killed by signal %d (SIGUSR1) (2 more hook scripts failed): dying",
		 SIGUSR1);
	CU_ASSERT(msg_has(&err, want));
	CU_ASSERT_PTR_NULL(strstr(err.msg, "x broke"));
	CU_ASSERT(h_file_is("log", "qemu\n10-x\n20-ok\n30-y\n"));
	h_end();
}

/* How long a timed-out script gets before it is killed.  Within it the
 * script only has to fork one child and run two builtins (milliseconds, even
 * with ASan and the other CPU busy), so the pid file and the stderr line
 * this test checks are always written before the kill.  The script's own
 * sleeps (HOOK_SLEEP_S) are far longer than the bounds asserted here, so a
 * runner that waited for them instead of killing them cannot pass. */
#define HOOK_TIMEOUT_MS 1500
#define HOOK_SLEEP_S "120"
#define HOOK_NO_WAIT_MS 60000   /* well under HOOK_SLEEP_S */
#define PID_GONE_MS 30000       /* a killed pid is reaped in milliseconds */

/* A script that sleeps past its time is killed with the child it forked,
 * with 1 MiB of XML it never reads waiting for it; the next script runs. */
static void test_timeout(void)
{
	struct fv_error err;
	char *xml = big_xml();
	uint64_t t0;
	unsigned ms;

	CU_ASSERT_PTR_NOT_NULL_FATAL(xml);
	CU_ASSERT_FATAL(h_begin());
	cfg.timeout_ms = HOOK_TIMEOUT_MS;
	h_script("qemu", 0755, "sleep " HOOK_SLEEP_S " &\necho $! > \"$B/pid\"\n"
		 "echo waiting >&2\nsleep " HOOK_SLEEP_S);
	h_script("qemu.d/10-after", 0755, LOG_ME);
	t0 = fv_mono_ns();
	CU_ASSERT_EQUAL(h_run(xml, &err), -1);
	ms = ms_since(t0);
	CU_ASSERT_EQUAL(err.code, FV_E_STATE);
	CU_ASSERT(msg_has(&err, P("hooks/qemu'")));
	CU_ASSERT(msg_has(&err, "timed out after 1.5 s and was killed: waiting"));
	CU_ASSERT(ms >= HOOK_TIMEOUT_MS && ms < HOOK_NO_WAIT_MS);
	CU_ASSERT(pid_dead(h_read_pid("pid"), PID_GONE_MS));
	CU_ASSERT(h_file_is("log", "10-after\n"));
	free(xml);
	h_end();
}

/* SIGTERM ignored by the script and its child: SIGKILL after the grace. */
static void test_timeout_term_ignored(void)
{
	struct fv_error err;
	uint64_t t0;
	unsigned ms;

	CU_ASSERT_FATAL(h_begin());
	cfg.timeout_ms = HOOK_TIMEOUT_MS;
	h_script("qemu", 0755, "trap '' TERM\nsleep " HOOK_SLEEP_S " &\n"
		 "echo $! > \"$B/pid\"\nsleep " HOOK_SLEEP_S);
	t0 = fv_mono_ns();
	CU_ASSERT_EQUAL(h_run("<x/>", &err), -1);
	ms = ms_since(t0);
	CU_ASSERT(msg_has(&err, "timed out after 1.5 s and was killed"));
	/* both waits run on the monotonic clock inside h_run, so load can
	 * only make them longer (the 50 ms: the runner's own ms rounding) */
	CU_ASSERT(ms + 50 >= HOOK_TIMEOUT_MS + HOOKS_KILL_GRACE_MS);
	CU_ASSERT(ms < HOOK_NO_WAIT_MS);
	CU_ASSERT(pid_dead(h_read_pid("pid"), PID_GONE_MS));
	h_end();
}

/* Scripts that never read stdin, read a little, or close it and go on:
 * no hang, no error, and the SIGPIPE our writes raise neither kills us
 * nor stays pending nor changes our signal mask. */
static void test_stdin_ignored(void)
{
	struct sigaction dfl, old_sa;
	sigset_t mask_before, mask_after, pending;
	struct fv_error err;
	char *xml = big_xml(), *part;
	size_t len;

	CU_ASSERT_PTR_NOT_NULL_FATAL(xml);
	CU_ASSERT_FATAL(h_begin());
	/* SIGPIPE default, so a leaked one would kill this test binary */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGPIPE, &dfl, &old_sa);
	h_script("qemu", 0755, "exit 0");
	h_script("qemu.d/10-head", 0755, "head -c 100 > \"$B/part\"");
	h_script("qemu.d/20-close", 0755, "exec 0<&-\nsleep 0.2\n" LOG_ME);
	pthread_sigmask(SIG_SETMASK, NULL, &mask_before);
	/* no hang: a script still blocked after cfg.timeout_ms would have been
	 * killed and h_run would have failed */
	CU_ASSERT_EQUAL(h_run(xml, &err), 0);
	pthread_sigmask(SIG_SETMASK, NULL, &mask_after);
	CU_ASSERT_EQUAL(sigismember(&mask_after, SIGPIPE),
			sigismember(&mask_before, SIGPIPE));
	sigpending(&pending);
	CU_ASSERT_EQUAL(sigismember(&pending, SIGPIPE), 0);
	part = h_read("part", &len);
	CU_ASSERT(part && len == 100 && !memcmp(part, xml, 100));
	free(part);
	CU_ASSERT(h_file_is("log", "20-close\n"));
	sigaction(SIGPIPE, &old_sa, NULL);
	free(xml);
	h_end();
}

/* Far more output than a pipe holds: drained, bounded in the message. */
static void test_big_output(void)
{
	struct fv_error err;

	CU_ASSERT_FATAL(h_begin());
	h_script("qemu", 0755,
		 "i=0\nwhile [ $i -lt 10000 ]; do echo \"error line $i\"; "
		 "i=$((i+1)); done >&2\nexit 1");
	h_script("qemu.d/10-out", 0755,
		 "i=0\nwhile [ $i -lt 10000 ]; do echo \"output line $i\"; "
		 "i=$((i+1)); done\n" LOG_ME);
	CU_ASSERT_EQUAL(h_run("<x/>", &err), -1);
	CU_ASSERT(msg_has(&err, "exited with status 1: error line 0 error line 1 "));
	CU_ASSERT(strlen(err.msg) < sizeof(err.msg));
	CU_ASSERT(h_file_is("log", "10-out\n"));
	h_end();
}

static void test_too_many(void)
{
	struct fv_error err;
	char rel[64], *log;
	size_t len;

	CU_ASSERT_FATAL(h_begin());
	h_script("qemu", 0755, LOG_ME);
	for (int i = 0; i < HOOKS_MAX_SCRIPTS; i++) {
		snprintf(rel, sizeof(rel), "qemu.d/%03d", i);
		h_script(rel, 0755, "echo . >> \"$B/log\"");
	}
	/* the limit itself is fine: qemu + 256 lines */
	CU_ASSERT_EQUAL(h_run("<x/>", &err), 0);
	log = h_read("log", &len);
	CU_ASSERT(log && len == 5 + 2 * HOOKS_MAX_SCRIPTS);
	free(log);
	CU_ASSERT_EQUAL(unlink(P("log")), 0);
	/* one more (a non-executable one does not count) and nothing runs */
	h_script("qemu.d/zz-noexec", 0644, LOG_ME);
	CU_ASSERT_EQUAL(h_run("<x/>", &err), 0);
	CU_ASSERT_EQUAL(unlink(P("log")), 0);
	h_script("qemu.d/zz-one-more", 0755, LOG_ME);
	CU_ASSERT_EQUAL(h_run("<x/>", &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	CU_ASSERT(msg_has(&err, "has more than 256 executable scripts"));
	CU_ASSERT_PTR_NULL(h_read("log", NULL));
	h_end();
}

/* One the kernel cannot exec fails the call; the rest still run. */
static void test_nostart(void)
{
	struct fv_error err;

	CU_ASSERT_FATAL(h_begin());
	h_write("hooks/qemu.d/10-badexec", 0755, "\x7f" "ELF garbage\n");
	h_script("qemu.d/20-ok", 0755, LOG_ME);
	CU_ASSERT_EQUAL(h_run("<x/>", &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_SYS);
	CU_ASSERT(msg_has(&err, "10-badexec' (vm1 prepare begin) could not be started: "));
	CU_ASSERT(h_file_is("log", "20-ok\n"));
	h_end();
}

/* A script that leaves a child holding its stdout/stderr is done when it
 * exits, not when the child does (libvirt would wait). */
static void test_background_child(void)
{
	struct fv_error err;
	long pid;

	CU_ASSERT_FATAL(h_begin());
	h_script("qemu", 0755,
		 "sleep " HOOK_SLEEP_S " &\necho $! > \"$B/pid\"\nexit 0");
	/* A runner that waited for the child (HOOK_SLEEP_S) would hit
	 * cfg.timeout_ms first, kill the group and fail: success and a live
	 * child prove it did not wait, with no clock involved. */
	CU_ASSERT_EQUAL(h_run("<x/>", &err), 0);
	/* left running: it was not ours to kill */
	pid = h_read_pid("pid");
	CU_ASSERT(pid > 0 && !pid_dead(pid, 0));
	if (pid > 0)
		kill((pid_t)pid, SIGKILL);
	h_end();
}

/*
 * BASE/sig holds the SigBlk and SigIgn lines of the hook's /proc status.
 * Nothing may be blocked or ignored, except that glibc's posix_spawn
 * leaves its two reserved signals (32 and 33, below SIGRTMIN, which no
 * glibc program can use) ignored; libvirt's fork+exec does not.
 */
static bool h_sigs_clean(void)
{
	unsigned long long blk = ~0ull, ign = ~0ull;
	char *s = h_read("sig", NULL);
	bool ok;

	if (!s || sscanf(s, "SigBlk: %llx SigIgn: %llx", &blk, &ign) != 2)
		blk = ign = ~0ull;
#ifdef __GLIBC__
	ign &= ~(3ull << 31);
#endif
	ok = blk == 0 && ign == 0;
	if (!ok)
		fprintf(stderr, "\n  hook signal state '%s'\n", s ? s : "(missing)");
	free(s);
	return ok;
}

/* The child starts clean: no blocked or ignored signals even though this
 * thread blocks some and the process ignores one, only fds 0-2; and the
 * call leaks no fd here. */
static void test_child_state(void)
{
	struct sigaction ign, old_sa;
	sigset_t block, old_mask;
	struct fv_error err;
	unsigned before;
	int leak = -1;

	CU_ASSERT_FATAL(h_begin());
	h_script("qemu", 0755,
		 "exec grep -E '^Sig(Blk|Ign):' /proc/self/status > \"$B/sig\"");
	h_script("qemu.d/10-fds", 0755, "exec ls /proc/self/fd > \"$B/fds\"");
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &block, &old_mask);
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGUSR2, &ign, &old_sa);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
	/* an fd someone opened without O_CLOEXEC does not reach hooks */
	leak = open("/dev/null", O_RDONLY);
	CU_ASSERT(leak > 2);
#endif
	before = count_fds();
	CU_ASSERT_EQUAL(h_run("<x/>", &err), 0);
	CU_ASSERT_EQUAL(count_fds(), before);
	if (leak >= 0)
		close(leak);
	sigaction(SIGUSR2, &old_sa, NULL);
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	CU_ASSERT(h_sigs_clean());
	/* 3 is ls's own directory fd */
	CU_ASSERT(h_file_is("fds", "0\n1\n2\n3\n"));
	h_end();
}

static void test_bad_input(void)
{
	char longarg[HOOKS_ARG_MAX + 2];
	struct fv_error err;

	CU_ASSERT_FATAL(h_begin());
	h_script("qemu", 0755, LOG_ME);
	memset(longarg, 'a', sizeof(longarg) - 1);
	longarg[sizeof(longarg) - 1] = '\0';
	CU_ASSERT_EQUAL(hooks_run(NULL, "vm1", "start", "begin", "", &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	CU_ASSERT_EQUAL(hooks_run(&cfg, NULL, "start", "begin", "", &err), -1);
	CU_ASSERT(msg_has(&err, "hook guest name is empty"));
	CU_ASSERT_EQUAL(hooks_run(&cfg, "vm1", "", "begin", "", &err), -1);
	CU_ASSERT(msg_has(&err, "hook operation is empty"));
	CU_ASSERT_EQUAL(hooks_run(&cfg, "vm1", "start", longarg, "", &err), -1);
	CU_ASSERT(msg_has(&err, "hook sub-operation is longer than 1024 bytes"));
	longarg[HOOKS_ARG_MAX] = '\0';  /* exactly the limit is fine */
	CU_ASSERT_EQUAL(hooks_run(&cfg, longarg, "start", "begin", "", &err), 0);
	cfg.timeout_ms = HOOKS_MAX_TIMEOUT_MS + 1;
	CU_ASSERT_EQUAL(h_run("", &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	cfg.timeout_ms = 0;     /* the default */
	snprintf(cfg.dir, sizeof(cfg.dir), "relative/hooks");
	CU_ASSERT_EQUAL(h_run("", &err), -1);
	CU_ASSERT(msg_has(&err, "hook directory 'relative/hooks' is not an absolute path"));
	memset(cfg.dir, 'd', sizeof(cfg.dir));
	cfg.dir[0] = '/';
	CU_ASSERT_EQUAL(h_run("", &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	/* a qemu.d that is there but no directory is an error, as in libvirt */
	snprintf(cfg.dir, sizeof(cfg.dir), "%s", P("hooks"));
	CU_ASSERT_EQUAL(rmdir(P("hooks/qemu.d")), 0);
	h_write("hooks/qemu.d", 0644, "");
	CU_ASSERT_EQUAL(h_run("", &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_IO);
	CU_ASSERT(msg_has(&err, "cannot open hook directory"));
	/* only the one valid call above ran the hook */
	CU_ASSERT(h_file_is("log", "qemu\n"));
	h_end();
}

void unit_add_hooks_suite(void)
{
	CU_pSuite s = CU_add_suite("hooks", NULL, NULL);

	CU_add_test(s, "no hooks", test_none);
	CU_add_test(s, "qemu, then qemu.d in strcmp order", test_order);
	CU_add_test(s, "argv is PATH NAME OP SUBOP -", test_args);
	CU_add_test(s, "XML on stdin byte for byte", test_stdin);
	CU_add_test(s, "environment is libvirt's", test_env);
	CU_add_test(s, "failure: status and stderr, rest run", test_failure);
	CU_add_test(s, "first failure named, others counted", test_first_failure);
	CU_add_test(s, "timeout kills the process group", test_timeout);
	CU_add_test(s, "timeout: SIGKILL when SIGTERM is ignored",
		    test_timeout_term_ignored);
	CU_add_test(s, "stdin unread: no hang, no SIGPIPE", test_stdin_ignored);
	CU_add_test(s, "big stdout/stderr drained", test_big_output);
	CU_add_test(s, "script count bounded", test_too_many);
	CU_add_test(s, "unstartable script", test_nostart);
	CU_add_test(s, "background child does not hold us", test_background_child);
	CU_add_test(s, "child signals and fds are clean", test_child_state);
	CU_add_test(s, "bad input", test_bad_input);
}
