/*
 * qmp_client.h - a small blocking QMP client (foldctl, tests): connect to a
 * foldvm control socket, negotiate, execute commands, read events.
 */
#ifndef FOLDVM_QMP_CLIENT_H
#define FOLDVM_QMP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>
#include "lib/error.h"

#define QMPC_MAX_LINE (1 << 20)

struct qmp_client {
	int fd;
	char *buf;        /* received, not yet consumed */
	size_t len;
	int timeout_ms;   /* per read */
	struct json_object *greeting;
};

/* Connect and read the greeting; negotiate when `negotiate`. */
int qmpc_connect(struct qmp_client *c, const char *path, bool negotiate,
		 int timeout_ms, struct fv_error *err);
void qmpc_close(struct qmp_client *c);

/* Send one line (CRLF appended). */
int qmpc_send_line(struct qmp_client *c, const char *line, struct fv_error *err);

/* Next JSON object from the server (reply or event); caller puts it. */
struct json_object *qmpc_read(struct qmp_client *c, struct fv_error *err);

/* Send {"execute": command, "arguments": args} (args may be NULL; it is
 * not taken) as one line on fd, a QMP connection read by someone else
 * (the supervisor's links). */
int qmpc_send_request(int fd, const char *command, struct json_object *args,
		      struct fv_error *err);

/* Execute: returns the whole reply object ({"return"} or {"error"}),
 * skipping events that arrive first.  args may be NULL; it is not taken. */
struct json_object *qmpc_execute(struct qmp_client *c, const char *command,
				 struct json_object *args, struct fv_error *err);

/* The run directory: $FOLDVM_RUN_DIR, /run/foldvm for root,
 * $XDG_RUNTIME_DIR/foldvm, else /tmp/foldvm-UID. */
void qmpc_default_run_dir(char *buf, size_t len);

#endif
