/*
 * test_console.c - CUnit tests for a guest's serial console without KVM:
 * the console server (control/console.c) on a real 16550 model, driven
 * as a vCPU would (port accesses) and as clients would (a socketpair for
 * the terminal's channel, connections to the console socket); and the
 * terminal helpers (lib/term.c): escape keys, raw mode on a pty.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <CUnit/CUnit.h>
#include "control/console.h"
#include "lib/term.h"
#include "tests/unit/unit.h"

enum { RBR = 0, THR = 0, IER = 1, FCR = 2, MCR = 4, LSR = 5 };

static uint8_t rd(struct serial16550 *s, unsigned off)
{
	uint8_t v = 0;

	serial_read(s, off, &v);
	return v;
}

static void wr_str(struct serial16550 *s, const char *str)
{
	while (*str)
		serial_write(s, THR, (uint8_t)*str++);
}

/* Read from fd until `want` bytes came or 10 s passed; how many came. */
static size_t read_full(int fd, char *buf, size_t want)
{
	size_t got = 0;

	while (got < want) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 10000) <= 0)
			break;
		n = read(fd, buf + got, want - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

/* What the guest reads (polling LSR.DR as the payload does), waiting up
 * to 10 s for `want` bytes. */
static size_t guest_read(struct serial16550 *s, char *buf, size_t want)
{
	struct timespec ms = { 0, 1000000 };
	size_t got = 0;

	for (int i = 0; got < want && i < 10000; i++) {
		while (got < want && (rd(s, LSR) & 0x01))
			buf[got++] = (char)rd(s, RBR);
		if (got < want)
			nanosleep(&ms, NULL);
	}
	return got;
}

static int connect_to(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

struct rig {
	struct serial16550 s;
	struct console_server *cs;
	struct console_guest *cg;
	int term;               /* our end of the terminal's channel */
	char dir[64], path[128];
};

static int rig_up(struct rig *r, bool with_socket)
{
	struct serial_config cfg = { .name = "g", .log_fd = -1 };
	struct fv_error err;
	int sv[2];

	memset(r, 0, sizeof(*r));
	serial_init(&r->s, &cfg);
	snprintf(r->dir, sizeof(r->dir), "/tmp/foldvm-test-console-XXXXXX");
	if (!mkdtemp(r->dir))
		return -1;
	snprintf(r->path, sizeof(r->path), "%s/g" CONSOLE_SUFFIX, r->dir);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	r->term = sv[0];
	if (console_server_create(&r->cs, &err) ||
	    console_add(r->cs, &r->s, "g", with_socket ? r->path : NULL, sv[1],
			&r->cg, &err)) {
		fprintf(stderr, "console rig: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static void rig_down(struct rig *r)
{
	console_remove(r->cs, r->cg);
	console_server_destroy(r->cs);
	close(r->term);
	serial_destroy(&r->s);
	rmdir(r->dir);
}

/* The terminal's channel: both ways, and more input than the UART's
 * FIFO and queue hold (back-pressure, nothing lost, in order). */
static void test_console_stdio(void)
{
	enum { N = 3 * SERIAL_INPUT_MAX };
	static char in[N], got[N];
	char out[16];
	struct rig r;
	size_t sent = 0, n = 0;

	CU_ASSERT_FATAL(rig_up(&r, false) == 0);
	wr_str(&r.s, "hello");
	CU_ASSERT_EQUAL(read_full(r.term, out, 5), 5);
	CU_ASSERT_EQUAL(memcmp(out, "hello", 5), 0);
	for (size_t i = 0; i < N; i++)
		in[i] = (char)('a' + i % 23);
	fcntl(r.term, F_SETFL, O_NONBLOCK);
	/* Write what the socket takes while the guest reads slowly. */
	for (int rounds = 0; n < N && rounds < 200000; rounds++) {
		ssize_t w = sent < N ? write(r.term, in + sent, N - sent) : 0;

		if (w > 0)
			sent += (size_t)w;
		n += guest_read(&r.s, got + n, n + 64 <= N ? 64 : N - n);
	}
	CU_ASSERT_EQUAL(n, N);
	CU_ASSERT_EQUAL(memcmp(in, got, N), 0);
	CU_ASSERT_EQUAL(rd(&r.s, LSR) & 0x03, 0);     /* no overrun, empty */
	rig_down(&r);
}

/* The console socket: backlog, one client at a time, input, detach and
 * attach again, the socket gone after removal. */
static void test_console_socket(void)
{
	char buf[256];
	struct stat st;
	struct rig r;
	int a, b;
	size_t n;

	CU_ASSERT_FATAL(rig_up(&r, true) == 0);
	CU_ASSERT_EQUAL(stat(r.path, &st), 0);
	CU_ASSERT_TRUE(S_ISSOCK(st.st_mode));
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
	wr_str(&r.s, "before\r\n");
	a = connect_to(r.path);
	CU_ASSERT_FATAL(a >= 0);
	/* the backlog first */
	CU_ASSERT_EQUAL(read_full(a, buf, 8), 8);
	CU_ASSERT_EQUAL(memcmp(buf, "before\r\n", 8), 0);
	/* a second client: one line, then the end */
	b = connect_to(r.path);
	CU_ASSERT_FATAL(b >= 0);
	n = read_full(b, buf, sizeof(buf) - 1);
	buf[n] = '\0';
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "in use by another client"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "guest g"));
	close(b);
	/* both ways with the client */
	CU_ASSERT_EQUAL(write(a, "typed", 5), 5);
	CU_ASSERT_EQUAL(guest_read(&r.s, buf, 5), 5);
	CU_ASSERT_EQUAL(memcmp(buf, "typed", 5), 0);
	wr_str(&r.s, "after");
	CU_ASSERT_EQUAL(read_full(a, buf, 5), 5);
	CU_ASSERT_EQUAL(memcmp(buf, "after", 5), 0);
	/* the terminal's channel got everything too */
	CU_ASSERT_EQUAL(read_full(r.term, buf, 13), 13);
	CU_ASSERT_EQUAL(memcmp(buf, "before\r\nafter", 13), 0);
	/* detach; the next client, at once, is welcome, with the backlog */
	close(a);
	a = connect_to(r.path);
	CU_ASSERT_FATAL(a >= 0);
	CU_ASSERT_EQUAL(read_full(a, buf, 13), 13);
	CU_ASSERT_EQUAL(memcmp(buf, "before\r\nafter", 13), 0);
	console_remove(r.cs, r.cg);
	r.cg = NULL;
	/* removed: its client sees the end, the socket is gone */
	CU_ASSERT_EQUAL(read(a, buf, 1), 0);
	CU_ASSERT_NOT_EQUAL(stat(r.path, &st), 0);
	close(a);
	wr_str(&r.s, "nobody");     /* detached: the device goes on alone */
	rig_down(&r);
}

/* A backlog is the last CONSOLE_BACKLOG bytes, not more. */
static void test_console_backlog_bound(void)
{
	static char buf[CONSOLE_BACKLOG + 16];
	struct rig r;
	int a;
	char c[2] = "x";

	CU_ASSERT_FATAL(rig_up(&r, true) == 0);
	for (int i = 0; i < CONSOLE_BACKLOG + 100; i++) {
		c[0] = (char)('0' + i % 10);
		wr_str(&r.s, c);
	}
	a = connect_to(r.path);
	CU_ASSERT_FATAL(a >= 0);
	CU_ASSERT_EQUAL(read_full(a, buf, CONSOLE_BACKLOG), CONSOLE_BACKLOG);
	/* the first byte kept is number 100 */
	CU_ASSERT_EQUAL(buf[0], '0');
	CU_ASSERT_EQUAL(buf[CONSOLE_BACKLOG - 1], '0' + (CONSOLE_BACKLOG + 99) % 10);
	fcntl(a, F_SETFL, O_NONBLOCK);
	CU_ASSERT_EQUAL(read(a, buf, 1), -1);           /* nothing more */
	close(a);
	rig_down(&r);
}

/* A stale socket file is replaced; anything else at the path refused. */
static void test_console_path_checks(void)
{
	struct serial_config cfg = { .name = "g", .log_fd = -1 };
	struct console_server *cs;
	struct console_guest *cg;
	struct serial16550 s;
	struct fv_error err;
	char dir[] = "/tmp/foldvm-test-console-XXXXXX", path[96];
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;

	CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
	serial_init(&s, &cfg);
	CU_ASSERT_FATAL(console_server_create(&cs, &err) == 0);
	snprintf(path, sizeof(path), "%s/g" CONSOLE_SUFFIX, dir);
	/* a regular file there */
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	CU_ASSERT_EQUAL(console_add(cs, &s, "g", path, -1, &cg, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not a socket"));
	unlink(path);
	/* a planted symlink: refused, what it points to left alone */
	{
		char victim[128];
		struct stat st;

		snprintf(victim, sizeof(victim), "%s/victim", dir);
		fd = open(victim, O_CREAT | O_WRONLY, 0600);
		CU_ASSERT_FATAL(fd >= 0);
		CU_ASSERT_EQUAL(write(fd, "secret", 6), 6);
		close(fd);
		CU_ASSERT_EQUAL(symlink(victim, path), 0);
		CU_ASSERT_EQUAL(console_add(cs, &s, "g", path, -1, &cg, &err), -1);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not a socket"));
		CU_ASSERT_EQUAL(stat(victim, &st), 0);
		CU_ASSERT_EQUAL(st.st_size, 6);
		CU_ASSERT_EQUAL(lstat(path, &st), 0);
		CU_ASSERT_TRUE(S_ISLNK(st.st_mode));
		unlink(path);
		unlink(victim);
	}
	/* a socket nobody listens on (foldvm was killed) */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	CU_ASSERT_EQUAL(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(fd);
	CU_ASSERT_EQUAL(console_add(cs, &s, "g", path, -1, &cg, &err), 0);
	/* a live one: refused */
	{
		struct console_guest *cg2;

		CU_ASSERT_EQUAL(console_add(cs, &s, "g", path, -1, &cg2, &err), -1);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "in use"));
	}
	console_remove(cs, cg);
	console_server_destroy(cs);
	serial_destroy(&s);
	rmdir(dir);
}

/* ---- lib/term.c ---- */

static size_t filter(struct term_esc *e, const char *in, char *out,
		     enum term_action *act, size_t *used)
{
	size_t n = term_esc_filter(e, (const uint8_t *)in, strlen(in),
				   (uint8_t *)out, used, act);

	out[n] = '\0';
	return n;
}

static void test_escape_prefix(void)
{
	struct term_esc e = { .key = TERM_CTRL('a'), .prefix = true };
	enum term_action act;
	char out[64];
	size_t used;

	CU_ASSERT_EQUAL(filter(&e, "ls\r\x03", out, &act, &used), 4);
	CU_ASSERT_STRING_EQUAL(out, "ls\r\x03");       /* ^C is the guest's */
	CU_ASSERT_EQUAL(act, TERM_NONE);
	CU_ASSERT_EQUAL(filter(&e, "a\x01\x01" "b", out, &act, &used), 3);
	CU_ASSERT_STRING_EQUAL(out, "a\x01" "b");      /* ^A ^A sends one */
	CU_ASSERT_EQUAL(filter(&e, "\x01" "c", out, &act, &used), 2);
	CU_ASSERT_STRING_EQUAL(out, "\x01" "c");       /* unknown: both */
	/* split across reads */
	CU_ASSERT_EQUAL(filter(&e, "z\x01", out, &act, &used), 1);
	CU_ASSERT_EQUAL(act, TERM_NONE);
	CU_ASSERT_EQUAL(filter(&e, "xrest", out, &act, &used), 0);
	CU_ASSERT_EQUAL(act, TERM_QUIT);
	CU_ASSERT_EQUAL(used, 1);                       /* stops at the action */
	CU_ASSERT_EQUAL(filter(&e, "q\x01h", out, &act, &used), 1);
	CU_ASSERT_EQUAL(act, TERM_HELP);
	CU_ASSERT_EQUAL(used, 3);
	CU_ASSERT_EQUAL(filter(&e, "\x01X", out, &act, &used), 0);
	CU_ASSERT_EQUAL(act, TERM_QUIT);
}

static void test_escape_single(void)
{
	struct term_esc e = { .key = TERM_CTRL(']'), .prefix = false };
	enum term_action act;
	char out[64];
	size_t used;

	CU_ASSERT_EQUAL(filter(&e, "a\x01x\x03", out, &act, &used), 4);
	CU_ASSERT_EQUAL(act, TERM_NONE);
	CU_ASSERT_EQUAL(filter(&e, "ab\x1d" "cd", out, &act, &used), 2);
	CU_ASSERT_STRING_EQUAL(out, "ab");
	CU_ASSERT_EQUAL(act, TERM_QUIT);
	CU_ASSERT_EQUAL(used, 3);
}

static void test_raw_mode(void)
{
	struct termios before, during, after;
	struct fv_error err;
	int m, s;

	CU_ASSERT_FATAL(openpty(&m, &s, NULL, NULL, NULL) == 0);
	CU_ASSERT_FATAL(tcgetattr(s, &before) == 0);
	CU_ASSERT_EQUAL(term_raw_enter(s, &err), 0);
	CU_ASSERT_EQUAL(term_raw_enter(s, &err), -1);   /* one at a time */
	CU_ASSERT_FATAL(tcgetattr(s, &during) == 0);
	CU_ASSERT_EQUAL(during.c_lflag & (ICANON | ECHO | ISIG | IEXTEN), 0);
	CU_ASSERT_EQUAL(during.c_iflag & (ICRNL | IXON), 0);
	CU_ASSERT_NOT_EQUAL(during.c_oflag & OPOST, 0);  /* "\n" still works */
	term_restore();
	term_restore();                                  /* idempotent */
	CU_ASSERT_FATAL(tcgetattr(s, &after) == 0);
	CU_ASSERT_EQUAL(memcmp(&before, &after, sizeof(before)), 0);
	/* not a terminal */
	{
		int nul = open("/dev/null", O_RDONLY);

		CU_ASSERT_FATAL(nul >= 0);
		CU_ASSERT_EQUAL(term_raw_enter(nul, &err), -1);
		close(nul);
	}
	close(m);
	close(s);
}

void unit_add_console_suite(void)
{
	static const struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
		{ "terminal channel both ways, back-pressure", test_console_stdio },
		{ "socket: backlog, one client, detach, removal", test_console_socket },
		{ "backlog bounded", test_console_backlog_bound },
		{ "socket path: stale replaced, others refused", test_console_path_checks },
		{ "escape: prefix style (Ctrl-A)", test_escape_prefix },
		{ "escape: single key (Ctrl-])", test_escape_single },
		{ "raw mode on a pty, restored", test_raw_mode },
	};
	CU_pSuite suite = CU_add_suite("console", NULL, NULL);

	if (!suite)
		return;
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		if (!CU_add_test(suite, tests[i].name, tests[i].fn))
			return;
}
