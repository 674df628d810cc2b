/*
 * link.h - the typed link between the supervisor and a worker (one
 * binary, two processes): one SOCK_SEQPACKET socketpair per worker, one
 * struct link_msg per packet.  The supervisor sends requests (enum
 * link_req) one at a time and gets one reply each; the worker sends
 * events (enum link_event) whenever they happen.  Figures cross it typed
 * (control/replies.h, runner/figures.h); only the supervisor turns them
 * into JSON, for host.qmp.  A packet carries the header and only the body
 * its kind and code have (link_body_size); the receiver checks that size
 * and the body's strings and counts (a worker is trusted no more than a
 * client).  No pointer crosses it.
 *
 * The supervisor's side is supervisor/links.c, the worker's
 * control/worker_link.c.
 */
#ifndef FOLDVM_CONTROL_LINK_H
#define FOLDVM_CONTROL_LINK_H

#include <stddef.h>
#include <stdint.h>
#include "control/qmp.h"
#include "control/replies.h"

enum link_kind {
	LINK_REQUEST,           /* supervisor -> worker: code is an enum link_req */
	LINK_REPLY,             /* worker -> supervisor: the answer to the request */
	LINK_EVENT,             /* worker -> supervisor: code is an enum link_event */
};

enum link_req {
	LINK_REQ_START,         /* go: start the guests, or give up the start */
	LINK_REQ_QUERY_VMS,     /* reply: vms */
	LINK_REQ_HOST,          /* reply: host (query-dedup-host) */
	LINK_REQ_IDEAL,         /* reply: ideal (query-dedup-ideal) */
	LINK_REQ_CENSUS,        /* reply: census (query-dedup-census) */
	LINK_REQ_VM_CREATE,     /* spec, checked by the supervisor */
	LINK_REQ_VM_DESTROY,    /* name */
	LINK_REQ_UNMERGE,       /* unmerge; reply: pages */
	LINK_NR_REQS
};

enum link_event {
	LINK_EV_READY,          /* its command-line guests were created (no
				   packet is lost: none needs asking for) */
	LINK_EV_GUEST_ADDED,    /* guest */
	LINK_EV_GUEST_REMOVED,  /* guest (no uuid) */
	LINK_EV_ENGINE,         /* engine: one of the engine's events */
	LINK_NR_EVENTS
};

struct link_guest {
	char name[GUEST_NAME_MAX + 1];
	char uuid[SPEC_UUID_LEN + 1];
};

struct link_vms {
	unsigned n;
	struct vm_figures vm[CLI_MAX_VMS];
};

/* dedup-unmerge: exactly one of vm and domain set. */
struct link_unmerge {
	char vm[GUEST_NAME_MAX + 1];
	char domain[DEDUP_DOMAIN_MAX + 1];
	uint64_t rate;
};

struct link_engine_event {
	enum engine_event ev;
	struct dedup_host_stats st;
};

struct link_msg {
	uint32_t kind;          /* enum link_kind */
	uint32_t code;          /* enum link_req (request, reply) or link_event */
	uint32_t failed;        /* reply: 1 = err says why, and no body */
	struct qmp_error err;
	union {
		/* requests */
		bool go;                        /* START */
		struct vm_spec spec;            /* VM_CREATE (no pointer set) */
		char name[GUEST_NAME_MAX + 1];  /* VM_DESTROY */
		struct link_unmerge unmerge;    /* UNMERGE */
		/* replies */
		struct link_vms vms;            /* QUERY_VMS */
		struct host_figures host;       /* HOST */
		struct dedup_ideal ideal;       /* IDEAL */
		struct dedup_census census;     /* CENSUS */
		uint64_t pages;                 /* UNMERGE */
		/* events */
		struct link_guest guest;        /* GUEST_ADDED, GUEST_REMOVED */
		struct link_engine_event engine; /* ENGINE */
	} u;
};

/* How many bytes of u a message of m's kind and code carries. */
size_t link_body_size(const struct link_msg *m);

/* Send m (header and its body) as one packet; -1 with err. */
int link_send(int fd, const struct link_msg *m, struct fv_error *err);

/* Receive one packet into m and check it: 1 a good one, 0 the other end
 * closed the link, -1 with err a broken one (FV_E_INVAL: wrong size, kind
 * or code, a string not terminated, a count out of range) or a read
 * error (FV_E_IO). */
int link_recv(int fd, struct link_msg *m, struct fv_error *err);

#endif
