/*
 * console_stdio.c - the foreground terminal as the one guest's serial
 * console (`foldvm run --console`, docs/console.md).
 *
 * The guest lives in a worker, in a process group of its own, which may
 * not read the terminal (a background group gets SIGTTIN), so the
 * supervisor, which the terminal belongs to, relays: a socketpair made
 * before the workers, one end handed to the guest's worker (its console
 * takes it as a peer, control/console.c), the other read and written here
 * by one thread.  The terminal is in raw mode while the relay runs (^C is
 * the guest's), and given back as it was on every way out: the end of the
 * run, Ctrl-A x, a fatal signal (lib/term.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include "lib/term.h"
#include "supervisor/sup_int.h"

#define ESCAPE_KEY 'a'          /* Ctrl-A, as QEMU's -serial mon:stdio */

static const char console_help[] =
	"\r\nfoldvm console escapes (after Ctrl-A):\r\n"
	"  x        quit: stop the guest and foldvm\r\n"
	"  Ctrl-A   send Ctrl-A to the guest\r\n"
	"  h or ?   this help\r\n";

/* Whether --console makes the terminal a guest's console, and which. */
static int console_wanted(const struct cli_options *opt, struct fv_error *err)
{
	if (opt->cmd != CLI_RUN)
		return -1;
	switch (opt->console) {
	case CONSOLE_NONE:
		return -1;
	case CONSOLE_STDIO:
		/* cli.c checked there is exactly one guest. */
		if (opt->nr_vms != 1)
			return fv_err(err, FV_E_INVAL,
				      "--console stdio needs exactly one guest (there are %u)",
				      opt->nr_vms), -2;
		return 0;
	case CONSOLE_AUTO:
		break;
	}
	/* auto: one guest whose console is shown, run in the foreground of
	 * the terminal it reads and writes; not a daemon (--persist). */
	if (opt->nr_vms != 1 || opt->persist || !opt->vms[0].cfg.console ||
	    !isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO) ||
	    tcgetpgrp(STDIN_FILENO) != getpgrp())
		return -1;
	return 0;
}

int sup_console_prepare(struct supervisor *sup, struct fv_error *err)
{
	int vm = console_wanted(sup->opt, err), sv[2];

	sup->console_vm = -1;
	sup->console_worker_fd = sup->console_fd = -1;
	sup->console_stop = sup->console_quit = -1;
	if (vm == -2)
		return -1;
	if (vm < 0)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "console: socketpair");
	sup->console_stop = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	sup->console_quit = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sup->console_stop < 0 || sup->console_quit < 0) {
		close(sv[0]);
		close(sv[1]);
		return fv_err_errno(err, FV_E_SYS, errno, "console: eventfd");
	}
	sup->console_vm = vm;
	sup->console_fd = sv[0];
	sup->console_worker_fd = sv[1];
	sup->console_tty = isatty(STDIN_FILENO);
	return 0;
}

static void *console_relay(void *arg)
{
	struct supervisor *sup = arg;
	struct term_relay r = {
		.in_fd = STDIN_FILENO, .out_fd = STDOUT_FILENO,
		.sock = sup->console_fd, .stop_fd = sup->console_stop,
		.escapes = sup->console_tty,
		.esc = { .key = TERM_CTRL(ESCAPE_KEY), .prefix = true },
		.help = console_help,
	};
	uint64_t one = 1;

	if (term_relay_run(&r) == TERM_END_QUIT &&
	    write(sup->console_quit, &one, sizeof(one)) < 0) {
		/* the counter cannot be full: one write per run */
	}
	/* The guest's console is over: the terminal is the shell's again,
	 * before foldvm prints its table. */
	term_restore();
	return NULL;
}

int sup_console_start(struct supervisor *sup, struct fv_error *err)
{
	const char *name;
	int e;

	if (sup->console_fd < 0)
		return 0;
	name = sup->opt->vms[sup->console_vm].cfg.name;
	if (sup->console_tty) {
		fprintf(stderr, "foldvm: guest %s's console is this terminal; "
			"Ctrl-A x quits, Ctrl-A h helps\n", name);
		fflush(stderr);
		if (term_raw_enter(STDIN_FILENO, err)) {
			fv_err_prefix(err, "--console: ");
			return -1;
		}
	}
	e = pthread_create(&sup->console_thread, NULL, console_relay, sup);
	if (e) {
		term_restore();
		return fv_err_errno(err, FV_E_SYS, e, "console: thread");
	}
	sup->console_running = true;
	return 0;
}

/* At the run's end the guest's worker is gone: what it wrote last is in
 * the channel, and the relay copies it out before it sees the end.  Only
 * a relay that does not get there is told to stop. */
#define DRAIN_MS 2000

void sup_console_stop(struct supervisor *sup)
{
	uint64_t one = 1;

	if (sup->console_worker_fd >= 0)
		close(sup->console_worker_fd);  /* no worker took it */
	sup->console_worker_fd = -1;
	if (sup->console_running) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += DRAIN_MS / 1000;
		if (pthread_timedjoin_np(sup->console_thread, NULL, &until)) {
			if (write(sup->console_stop, &one, sizeof(one)) < 0) {
				/* cannot be full: one write */
			}
			pthread_join(sup->console_thread, NULL);
		}
		sup->console_running = false;
	}
	term_restore();
	if (sup->console_fd >= 0)
		close(sup->console_fd);
	if (sup->console_worker_fd >= 0)
		close(sup->console_worker_fd);
	if (sup->console_stop >= 0)
		close(sup->console_stop);
	if (sup->console_quit >= 0)
		close(sup->console_quit);
	sup->console_fd = sup->console_worker_fd = -1;
	sup->console_stop = sup->console_quit = -1;
}
