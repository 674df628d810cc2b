/*
 * term.h - a terminal as a guest's serial console (docs/console.md): raw
 * mode restored on every way out, an escape key, and the relay between the
 * terminal and a console stream.  Used by `foldvm run` in the foreground
 * (supervisor/) and by `foldctl console`.
 */
#ifndef FOLDVM_TERM_H
#define FOLDVM_TERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/error.h"

#define TERM_CTRL(c) ((uint8_t)((c) & 0x1f))

/*
 * Put the terminal `fd` in raw mode (no echo, no line editing, no signals
 * from ^C/^Z/^\, 8-bit input; output processing kept, so "\n" still starts
 * a new line) and remember how it was.  It is restored by term_restore(),
 * at exit(), and by the handlers installed here for the signals that end a
 * process (SIGHUP, SIGTERM, SIGQUIT, SIGINT, SIGPIPE, SIGSEGV, SIGBUS,
 * SIGILL, SIGFPE, SIGABRT), which then end it as the signal would have.
 * One terminal per process.
 */
int term_raw_enter(int fd, struct fv_error *err);
/* Back to the mode term_raw_enter() found; idempotent, async-signal-safe. */
void term_restore(void);

enum term_action {
	TERM_NONE,
	TERM_QUIT,      /* the escape asked to leave */
	TERM_HELP,      /* the escape asked for help (prefix style) */
};

/*
 * Escape keys in what the user types.
 *  - prefix style (foldvm, as QEMU): `key` then x quits, `key` h or ? asks
 *    for help, `key` twice sends `key` itself; `key` then anything else
 *    sends both.
 *  - single style (foldctl, as virsh): `key` alone quits.
 */
struct term_esc {
	uint8_t key;
	bool prefix;
	bool pending;   /* prefix seen, its command not yet */
};

/* Filter len bytes: what to send goes to out (room for len + 1 bytes) and
 * its length is returned.  At the first action *action is set and the
 * bytes after it are not looked at (*used says how many were). */
size_t term_esc_filter(struct term_esc *e, const uint8_t *in, size_t len,
		       uint8_t *out, size_t *used, enum term_action *action);

enum term_relay_end {
	TERM_END_QUIT,          /* the escape */
	TERM_END_CLOSED,        /* the console stream ended */
	TERM_END_STOP,          /* stop_fd became readable */
	TERM_END_ERROR,         /* writing the output failed */
};

/*
 * Copy between a terminal and a console stream until one of the ends
 * above: in_fd -> (escapes) -> sock, sock -> out_fd.  When in_fd reaches
 * its end, input stops; with shut_on_eof the stream's write side is shut
 * down then (a client that has no more to say detaches).
 */
struct term_relay {
	int in_fd;              /* -1: no input */
	int out_fd;
	int sock;
	int stop_fd;            /* -1: none */
	bool escapes;           /* look for esc */
	struct term_esc esc;
	bool shut_on_eof;
	const char *help;       /* written to out_fd on TERM_HELP */
};

enum term_relay_end term_relay_run(struct term_relay *r);

#endif
