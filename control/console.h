/*
 * console.h - a guest's interactive serial console in the worker that runs
 * it (docs/console.md).
 *
 * Each guest's 16550 (devices/serial.c) gets a console: every byte the
 * guest transmits goes into a ring of recent output, and bytes from the
 * console's peers go to the guest's receiver through serial_input (a
 * bounded queue behind the FIFO, fed as the guest reads).  Peers are
 *  - the foreground terminal's channel: a connected stream the supervisor
 *    hands the worker (`foldvm run --console stdio`), for the life of the
 *    guest;
 *  - at most one client of the guest's console socket RUNDIR/NAME.console
 *    at a time (`foldctl console NAME`); a second one is told the console
 *    is in use and closed.  A client gets the last CONSOLE_BACKLOG bytes of
 *    output first, then everything the guest writes.
 * One thread per worker serves every console; nothing here blocks a vCPU:
 * a peer that does not keep up loses the oldest output (the ring holds
 * CONSOLE_RING bytes), never slows the guest.
 */
#ifndef FOLDVM_CONSOLE_H
#define FOLDVM_CONSOLE_H

#include "devices/serial.h"
#include "lib/error.h"

#define CONSOLE_RING 65536      /* output kept per guest (a power of two) */
#define CONSOLE_BACKLOG 8192    /* of it, what a new socket client gets */
#define CONSOLE_SUFFIX ".console"

struct console_server;
struct console_guest;

/* The server and its thread. */
int console_server_create(struct console_server **out, struct fv_error *err);
/* Every console must have been removed. NULL is fine. */
void console_server_destroy(struct console_server *cs);

/*
 * A guest's console on `serial`: listening on `path` (NULL: no socket) and
 * with `stdio_fd` as a permanent peer (-1: none; the console owns it from
 * here on, even on failure).  `name` is the guest's, for messages.
 */
int console_add(struct console_server *cs, struct serial16550 *serial,
		const char *name, const char *path, int stdio_fd,
		struct console_guest **out, struct fv_error *err);

/* Detach from the serial port, close the socket (unlinking it) and every
 * peer.  Returns once the server thread no longer uses it. */
void console_remove(struct console_server *cs, struct console_guest *cg);

#endif
