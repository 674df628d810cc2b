/*
 * term.c - raw mode with its restoration, escape keys, the relay loop
 * (term.h).
 *
 * The saved mode is process-wide and written once before the handlers can
 * run, so the handlers only read it; tcsetattr is async-signal-safe.  A
 * handler restores the terminal, puts the signal's default action back
 * and raises it again: the process ends as it would have, with the
 * terminal as it was.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <sys/socket.h>
#include "lib/term.h"

static struct termios saved;
static volatile sig_atomic_t saved_fd = -1;

static const int fatal_signals[] = {
	SIGHUP, SIGTERM, SIGQUIT, SIGINT, SIGPIPE,
	SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT,
};

void term_restore(void)
{
	int fd = saved_fd;

	if (fd < 0)
		return;
	saved_fd = -1;
	/* TCSAFLUSH would drop typed-ahead input meant for the shell. */
	tcsetattr(fd, TCSADRAIN, &saved);
}

static void term_signal(int sig)
{
	int e = errno;

	term_restore();
	signal(sig, SIG_DFL);
	raise(sig);
	errno = e;
}

static void term_atexit(void)
{
	term_restore();
}

int term_raw_enter(int fd, struct fv_error *err)
{
	static bool handlers;
	struct termios raw;

	if (saved_fd >= 0)
		return fv_err(err, FV_E_STATE, "the terminal is in raw mode already");
	if (tcgetattr(fd, &saved) < 0)
		return fv_err_errno(err, FV_E_IO, errno, "not a terminal");
	raw = saved;
	raw.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR |
				   IGNCR | ICRNL | IXON | IXOFF);
	raw.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	raw.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
	raw.c_cflag |= CS8;
	/* Output processing stays: foldvm's own lines keep their "\n". */
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (!handlers) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = term_signal;
		sigemptyset(&sa.sa_mask);
		for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++) {
			struct sigaction old;

			/* A signal someone chose to ignore stays ignored. */
			if (sigaction(fatal_signals[i], NULL, &old) == 0 &&
			    old.sa_handler == SIG_IGN)
				continue;
			sigaction(fatal_signals[i], &sa, NULL);
		}
		atexit(term_atexit);
		handlers = true;
	}
	saved_fd = fd;
	if (tcsetattr(fd, TCSADRAIN, &raw) < 0) {
		int e = errno;

		saved_fd = -1;
		return fv_err_errno(err, FV_E_IO, e, "cannot put the terminal in raw mode");
	}
	return 0;
}

size_t term_esc_filter(struct term_esc *e, const uint8_t *in, size_t len,
		       uint8_t *out, size_t *used, enum term_action *action)
{
	size_t n = 0, i;

	*action = TERM_NONE;
	for (i = 0; i < len && *action == TERM_NONE; i++) {
		uint8_t c = in[i];

		if (!e->prefix) {
			if (c == e->key)
				*action = TERM_QUIT;
			else
				out[n++] = c;
			continue;
		}
		if (!e->pending) {
			if (c == e->key)
				e->pending = true;
			else
				out[n++] = c;
			continue;
		}
		e->pending = false;
		if (c == 'x' || c == 'X') {
			*action = TERM_QUIT;
		} else if (c == 'h' || c == 'H' || c == '?') {
			*action = TERM_HELP;
		} else if (c == e->key) {
			out[n++] = c;
		} else {
			out[n++] = e->key;
			out[n++] = c;
		}
	}
	*used = i;
	return n;
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			poll(&p, 1, 1000);
			continue;
		}
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Terminal input: filtered and sent.  1: go on, else how it ended. */
static int relay_input(struct term_relay *r, enum term_relay_end *end)
{
	uint8_t in[512], out[sizeof(in) + 1];
	size_t off = 0, len, used, n;
	enum term_action act;
	ssize_t got = read(r->in_fd, in, sizeof(in));

	if (got < 0 && (errno == EINTR || errno == EAGAIN))
		return 1;
	if (got <= 0) {
		r->in_fd = -1;          /* input ended: output goes on */
		if (r->shut_on_eof)
			shutdown(r->sock, SHUT_WR);
		return 1;
	}
	len = (size_t)got;
	while (off < len) {
		if (r->escapes) {
			n = term_esc_filter(&r->esc, in + off, len - off, out, &used, &act);
		} else {
			memcpy(out, in + off, len - off);
			n = used = len - off;
			act = TERM_NONE;
		}
		off += used;
		/* The guest is gone when it cannot take input: the read side
		 * tells how it ended. */
		if (n && write_all(r->sock, out, n) < 0)
			return 1;
		if (act == TERM_QUIT) {
			*end = TERM_END_QUIT;
			return 0;
		}
		if (act == TERM_HELP && r->help &&
		    write_all(r->out_fd, (const uint8_t *)r->help, strlen(r->help)) < 0) {
			*end = TERM_END_ERROR;
			return 0;
		}
	}
	return 1;
}

enum term_relay_end term_relay_run(struct term_relay *r)
{
	for (;;) {
		struct pollfd p[3] = {
			{ .fd = r->sock, .events = POLLIN },
			{ .fd = r->in_fd, .events = POLLIN },
			{ .fd = r->stop_fd, .events = POLLIN },
		};
		enum term_relay_end end;
		uint8_t buf[4096];
		ssize_t n;

		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return TERM_END_ERROR;
		}
		if (p[2].revents)
			return TERM_END_STOP;
		if (p[0].revents) {
			n = read(r->sock, buf, sizeof(buf));
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0)
				return TERM_END_CLOSED;
			if (write_all(r->out_fd, buf, (size_t)n) < 0)
				return TERM_END_ERROR;
		}
		if (p[1].revents && relay_input(r, &end) == 0)
			return end;
	}
}
