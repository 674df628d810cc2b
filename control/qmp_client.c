#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include "control/qmp_client.h"

void qmpc_default_run_dir(char *buf, size_t len)
{
	const char *env = getenv("FOLDVM_RUN_DIR");
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (env && *env == '/')
		snprintf(buf, len, "%s", env);
	else if (geteuid() == 0)
		snprintf(buf, len, "/run/foldvm");
	else if (xdg && *xdg == '/')
		snprintf(buf, len, "%s/foldvm", xdg);
	else
		snprintf(buf, len, "/tmp/foldvm-%u", (unsigned)geteuid());
}

static int qmpc_fill(struct qmp_client *c, struct fv_error *err)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	ssize_t n;
	int r;

	if (c->len >= QMPC_MAX_LINE)
		return fv_err(err, FV_E_IO, "reply longer than %d bytes", QMPC_MAX_LINE);
	r = poll(&pfd, 1, c->timeout_ms);
	if (r == 0)
		return fv_err(err, FV_E_IO, "no answer within %d ms", c->timeout_ms);
	if (r < 0)
		return fv_err_errno(err, FV_E_IO, errno, "poll");
	n = read(c->fd, c->buf + c->len, QMPC_MAX_LINE - c->len);
	if (n == 0)
		return fv_err(err, FV_E_IO, "foldvm closed the connection");
	if (n < 0)
		return fv_err_errno(err, FV_E_IO, errno, "read");
	c->len += (size_t)n;
	return 0;
}

struct json_object *qmpc_read(struct qmp_client *c, struct fv_error *err)
{
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);

		if (nl) {
			size_t line = (size_t)(nl - c->buf) + 1;
			struct json_object *o;

			*nl = '\0';
			o = json_tokener_parse(c->buf);
			memmove(c->buf, c->buf + line, c->len - line);
			c->len -= line;
			if (!o || !json_object_is_type(o, json_type_object)) {
				json_object_put(o);
				fv_err(err, FV_E_IO, "foldvm sent something that is not a JSON object");
				return NULL;
			}
			return o;
		}
		if (qmpc_fill(c, err))
			return NULL;
	}
}

/* line and CRLF, whole, on fd, in one send where the socket takes it:
 * foldvm runs a request as soon as its closing brace arrives, as QEMU
 * does, and after "quit" hangs up, so a CRLF sent on its own could find
 * the connection gone. */
static int qmpc_send_fd(int fd, const char *line, struct fv_error *err)
{
	static const char crlf[] = "\r\n";
	size_t len = strlen(line), off = 0;
	struct iovec iov[2];
	struct msghdr msg = { .msg_iov = iov };

	while (off < len + 2) {
		ssize_t w;

		msg.msg_iovlen = 0;
		if (off < len)
			iov[msg.msg_iovlen++] = (struct iovec){ (void *)(line + off), len - off };
		iov[msg.msg_iovlen++] = (struct iovec){
			(void *)&crlf[off > len ? off - len : 0], off > len ? len + 2 - off : 2 };
		w = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return fv_err_errno(err, FV_E_IO, errno, "send");
		off += (size_t)w;
	}
	return 0;
}

int qmpc_send_line(struct qmp_client *c, const char *line, struct fv_error *err)
{
	return qmpc_send_fd(c->fd, line, err);
}

int qmpc_send_request(int fd, const char *command, struct json_object *args,
		      struct fv_error *err)
{
	struct json_object *req = json_object_new_object();
	int r;

	json_object_object_add(req, "execute", json_object_new_string(command));
	if (args)
		json_object_object_add(req, "arguments", json_object_get(args));
	r = qmpc_send_fd(fd, json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN),
			 err);
	json_object_put(req);
	return r;
}

struct json_object *qmpc_execute(struct qmp_client *c, const char *command,
				 struct json_object *args, struct fv_error *err)
{
	struct json_object *reply;

	if (qmpc_send_request(c->fd, command, args, err))
		return NULL;
	/* Events may come first: the reply is the first non-event. */
	while ((reply = qmpc_read(c, err))) {
		if (!json_object_object_get_ex(reply, "event", NULL))
			return reply;
		json_object_put(reply);
	}
	return NULL;
}

int qmpc_connect(struct qmp_client *c, const char *path, bool negotiate,
		 int timeout_ms, struct fv_error *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct json_object *r;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->timeout_ms = timeout_ms;
	if (strlen(path) >= sizeof(sa.sun_path))
		return fv_err(err, FV_E_INVAL, "socket path too long: %s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c->buf = malloc(QMPC_MAX_LINE + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!c->buf || c->fd < 0) {
		qmpc_close(c);
		return fv_err(err, FV_E_NOMEM, "socket");
	}
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		qmpc_close(c);
		return fv_err_errno(err, FV_E_IO, e, "cannot connect to %s", path);
	}
	c->greeting = qmpc_read(c, err);
	if (!c->greeting) {
		/* EOF here: foldvm already serves QMP_MAX_CLIENTS clients. */
		qmpc_close(c);
		fv_err_prefix(err, "%s sent no QMP greeting (too many clients?): ", path);
		return -1;
	}
	if (!json_object_object_get_ex(c->greeting, "QMP", NULL)) {
		qmpc_close(c);
		return fv_err(err, FV_E_IO, "%s sent no QMP greeting", path);
	}
	if (!negotiate)
		return 0;
	r = qmpc_execute(c, "qmp_capabilities", NULL, err);
	if (!r || !json_object_object_get_ex(r, "return", NULL)) {
		json_object_put(r);
		qmpc_close(c);
		return fv_err(err, FV_E_IO, "%s refused capabilities negotiation", path);
	}
	json_object_put(r);
	return 0;
}

void qmpc_close(struct qmp_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	json_object_put(c->greeting);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}
