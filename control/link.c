/*
 * link.c - the typed link's packets (link.h): their sizes, sending, and
 * receiving with every check a packet from another process gets.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include "control/link.h"

#define BODY(member) sizeof(((struct link_msg *)0)->u.member)
#define HEADER offsetof(struct link_msg, u)
#define TERMINATED(a) (memchr((a), '\0', sizeof(a)) != NULL)

static const size_t request_body[LINK_NR_REQS] = {
	[LINK_REQ_START] = BODY(go),
	[LINK_REQ_VM_CREATE] = BODY(spec),
	[LINK_REQ_VM_DESTROY] = BODY(name),
	[LINK_REQ_UNMERGE] = BODY(unmerge),
};

static const size_t reply_body[LINK_NR_REQS] = {
	[LINK_REQ_QUERY_VMS] = BODY(vms),
	[LINK_REQ_HOST] = BODY(host),
	[LINK_REQ_IDEAL] = BODY(ideal),
	[LINK_REQ_CENSUS] = BODY(census),
	[LINK_REQ_UNMERGE] = BODY(pages),
};

static const size_t event_body[LINK_NR_EVENTS] = {
	[LINK_EV_GUEST_ADDED] = BODY(guest),
	[LINK_EV_GUEST_REMOVED] = BODY(guest),
	[LINK_EV_ENGINE] = BODY(engine),
};

size_t link_body_size(const struct link_msg *m)
{
	switch (m->kind) {
	case LINK_REQUEST:
		return m->code < LINK_NR_REQS ? request_body[m->code] : 0;
	case LINK_REPLY:
		return m->code < LINK_NR_REQS && !m->failed ? reply_body[m->code] : 0;
	case LINK_EVENT:
		return m->code < LINK_NR_EVENTS ? event_body[m->code] : 0;
	}
	return 0;
}

int link_send(int fd, const struct link_msg *m, struct fv_error *err)
{
	size_t len = HEADER + link_body_size(m);
	ssize_t n;

	do {
		n = send(fd, m, len, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)len)
		return fv_err_errno(err, FV_E_IO, n < 0 ? errno : EMSGSIZE,
				    "link: send");
	return 0;
}

static bool vm_figures_ok(struct vm_figures *f)
{
	return TERMINATED(f->name) && TERMINATED(f->uuid) && TERMINATED(f->domain) &&
	       (unsigned)f->state <= GUEST_FAILED;
}

/* The body's strings end inside their arrays, its counts and enums are in
 * range; a request's spec carries no pointer. */
static bool body_ok(struct link_msg *m)
{
	if (m->kind == LINK_REPLY && m->failed)
		return TERMINATED(m->err.class) && TERMINATED(m->err.desc);
	if (m->kind == LINK_REQUEST && m->code == LINK_REQ_VM_CREATE) {
		m->u.spec.payload_key = NULL;
		m->u.spec.domain_xml = NULL;
		return true;
	}
	if (m->kind == LINK_REQUEST && m->code == LINK_REQ_VM_DESTROY)
		return TERMINATED(m->u.name);
	if (m->kind == LINK_REQUEST && m->code == LINK_REQ_UNMERGE)
		return TERMINATED(m->u.unmerge.vm) && TERMINATED(m->u.unmerge.domain);
	if (m->kind == LINK_REPLY && m->code == LINK_REQ_QUERY_VMS) {
		if (m->u.vms.n > CLI_MAX_VMS)
			return false;
		for (unsigned i = 0; i < m->u.vms.n; i++)
			if (!vm_figures_ok(&m->u.vms.vm[i]))
				return false;
		return true;
	}
	if (m->kind == LINK_EVENT && (m->code == LINK_EV_GUEST_ADDED ||
				      m->code == LINK_EV_GUEST_REMOVED))
		return TERMINATED(m->u.guest.name) && TERMINATED(m->u.guest.uuid);
	if (m->kind == LINK_EVENT && m->code == LINK_EV_ENGINE)
		return (unsigned)m->u.engine.ev < ENGINE_NR_EVENTS;
	return true;
}

int link_recv(int fd, struct link_msg *m, struct fv_error *err)
{
	ssize_t n;

	do {
		n = recv(fd, m, sizeof(*m), MSG_TRUNC);
	} while (n < 0 && errno == EINTR);
	if (n == 0)
		return 0;
	if (n < 0)
		return fv_err_errno(err, FV_E_IO, errno, "link: receive");
	if ((size_t)n < HEADER || m->kind > LINK_EVENT ||
	    m->code >= (m->kind == LINK_EVENT ? LINK_NR_EVENTS : LINK_NR_REQS))
		return fv_err(err, FV_E_INVAL, "link: a packet of no known kind");
	if ((size_t)n != HEADER + link_body_size(m) || !body_ok(m))
		return fv_err(err, FV_E_INVAL, "link: a malformed packet (kind %u, code %u)",
			      m->kind, m->code);
	return 1;
}
