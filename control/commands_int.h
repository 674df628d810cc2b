/*
 * commands_int.h - what the files of a worker's control sockets share
 * (commands.c: events, the sockets' life; guest_commands.c: the commands
 * of a guest's socket).  Private to control/.
 */
#ifndef FOLDVM_CONTROL_COMMANDS_INT_H
#define FOLDVM_CONTROL_COMMANDS_INT_H

#include <limits.h>
#include <pthread.h>
#include <json-c/json.h>
#include "control/console.h"
#include "control/qmp.h"
#include "control/replies.h"
#include "runner/runner.h"

/* A guest's control socket; one per guest slot, from guest_added to
 * guest_removed. */
struct control_guest {
	struct control_guest *next;     /* on control.guests */
	struct control *c;
	char name[GUEST_NAME_MAX + 1];
	char path[PATH_MAX + GUEST_NAME_MAX + 8];  /* run dir + "/NAME.qmp" */
	char uuid[SPEC_UUID_LEN + 1];            /* "" = not a libvirt domain */
	char uuid_path[PATH_MAX + 64];  /* run dir + "/by-uuid/UUID.qmp" link */
	struct qmp_endpoint_config cfg;
	struct qmp_endpoint *ep;
	struct console_guest *console; /* its serial console, or NULL */
	char console_path[PATH_MAX + GUEST_NAME_MAX + 16]; /* "/NAME.console" */
};

/* The control sockets of a run (the observer's data). */
struct control {
	struct run_ctx *ctx;
	struct qmp_server *server;      /* the guests' sockets (opt->control) */
	struct worker_link *link;       /* to the supervisor (worker_link.c) */
	pthread_mutex_t ev_lock;        /* last_pass_event_ns, guests */
	uint64_t last_pass_event_ns;
	struct control_guest *guests;   /* every guest socket, for events */
	/* Guests' serial consoles (control/console.c): NAME.console sockets
	 * and the foreground terminal's channel, taken by the guest it is for
	 * (opt->console_fd, -1 once taken). */
	struct console_server *consoles;
	int stdio_fd;
};

/* guest_commands.c: a guest socket's commands and its state events. */
extern const struct qmp_command guest_commands[];
void guest_state_event(void *opaque, struct guest *g, enum guest_state old_state,
		       enum guest_state new_state, const char *reason);

#endif
