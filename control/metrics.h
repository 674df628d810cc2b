/*
 * metrics.h - foldvm's figures for Prometheus (docs/metrics.md): the one
 * writer of the text exposition format (version 0.0.4) from typed
 * figures, the same the QMP sockets show (query-vms and query-dedup per
 * guest, query-dedup-host per trust domain and for the host), which the
 * supervisor gets typed over its links (control/link.h); and the HTTP
 * side that needs no socket: the listening address, the request, the
 * response's head.  The server is supervisor/metrics.c.  Calls no other
 * file of control/.
 */
#ifndef FOLDVM_CONTROL_METRICS_H
#define FOLDVM_CONTROL_METRICS_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include "control/replies.h"

/* What one scrape shows. */
struct metrics_domain {
	char domain[DEDUP_DOMAIN_MAX + 1];
	struct host_figures fig;        /* its worker's, as sent */
};

struct metrics_input {
	struct host_figures host;       /* every worker's added up, plus the
					   supervisor's own rss and pss */
	unsigned nr_domains;
	struct metrics_domain dom[CLI_MAX_VMS];
	unsigned nr_vms;
	struct vm_figures vm[CLI_MAX_VMS];
};

/* The exposition text (malloc'd, NUL-terminated, *len bytes), or NULL
 * if out of memory. */
char *metrics_render(const struct metrics_input *in, size_t *len);

/* --metrics ADDR: "IPV4:PORT" (port 1..65535) or an absolute path (a
 * UNIX socket).  0 and *sa, *sa_len, or -1 with err. */
int metrics_addr_parse(const char *addr, struct sockaddr_storage *sa,
		       socklen_t *sa_len, struct fv_error *err);

#define METRICS_REQ_MAX 4096    /* bytes of a request's head */

/* What a request (its head so far: buf[0..len)) asks for. */
enum metrics_req {
	METRICS_REQ_MORE,       /* its head has not ended yet */
	METRICS_REQ_OK,         /* GET /metrics: 200 */
	METRICS_REQ_NOT_FOUND,  /* GET of another path: 404 */
	METRICS_REQ_METHOD,     /* another method: 405 */
	METRICS_REQ_BAD,        /* not HTTP/1.x: 400 */
	METRICS_REQ_TOO_LARGE,  /* no end within METRICS_REQ_MAX: 431 */
};
enum metrics_req metrics_request(const char *buf, size_t len);

/* The whole response for what the request asked (malloc'd, *len bytes):
 * for METRICS_REQ_OK, body (body_len bytes) is its body; any other is
 * answered with a one-line text (METRICS_REQ_MORE: 408, the head did not
 * come in time).  NULL if out of memory. */
char *metrics_response(enum metrics_req r, const char *body, size_t body_len,
		       size_t *len);

#endif
