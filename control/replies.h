/*
 * replies.h - what foldvm's QMP sockets say, written from typed figures:
 * the one writer of a guest's figures (query-vms, query-dedup), a
 * process's and its engine's (query-dedup-host), the censuses and the
 * engine's events, used by a worker's guest sockets (commands.c,
 * guest_commands.c) and by the supervisor's host.qmp (supervisor/host.c),
 * which gets the same figures typed over its link to each worker
 * (control/link.h); and the endpoint set-up every socket shares.  Writes
 * JSON only: it calls no other file of control/.
 */
#ifndef FOLDVM_CONTROL_REPLIES_H
#define FOLDVM_CONTROL_REPLIES_H

#include <json-c/json.h>
#include "control/qmp.h"
#include "runner/figures.h"
#include "runner/runner.h"

/* A guest as query-vms and its socket's query-dedup show it. */
struct vm_figures {
	char name[GUEST_NAME_MAX + 1];
	char uuid[SPEC_UUID_LEN + 1];           /* "" = not a libvirt domain */
	char domain[DEDUP_DOMAIN_MAX + 1];
	enum guest_state state;
	bool destroying;
	uint64_t mem_size;
	unsigned nr_vcpus;
	bool dedup, merging;
	struct dedup_guest_stats dstats;        /* dedup only */
	bool balloon;
	struct virtio_balloon_counters balloon_c; /* balloon only */
	struct procstat_mem ram;                /* the kernel's view of its RAM */
};

/* The figures of a guest from its record; asks the kernel about its RAM
 * (/proc/self/smaps: slow), so never call it under the run's lock. */
void vm_figures_read(struct vm_figures *f, const struct runner_guest_info *in);

/* QMP's RunState name of a guest state. */
const char *qmp_status(enum guest_state s);

/* query-vms: one guest; query-dedup: its "dedup" object. */
struct json_object *replies_vm(const struct vm_figures *f);
struct json_object *replies_vm_dedup(const struct vm_figures *f);
/* query-dedup-host: a process's figures (or several added up). */
struct json_object *replies_host(const struct host_figures *h);
struct json_object *replies_ideal(const struct dedup_ideal *id);
struct json_object *replies_census(const struct dedup_census *cs);

/* The engine's events, on every socket. */
enum engine_event {
	ENGINE_EVENT_PASS,              /* DEDUP_PASS_COMPLETE */
	ENGINE_EVENT_BUDGET,            /* DEDUP_BUDGET_EXHAUSTED */
	ENGINE_EVENT_PRESSURE,          /* MEMORY_PRESSURE */
	ENGINE_NR_EVENTS
};
const char *replies_engine_event_name(enum engine_event ev);
struct json_object *replies_engine_event(enum engine_event ev,
					 const struct dedup_host_stats *st);

/* SHUTDOWN: a guest ended (by_guest: it shut itself down), and why.
 * name and domain are given on host.qmp (the guests of a worker that
 * died); NULL on the guest's own socket. */
#define REPLIES_SHUTDOWN "SHUTDOWN"
struct json_object *replies_shutdown(bool by_guest, const char *reason,
				     const char *name, const char *domain,
				     const char *detail);

/* An endpoint of foldvm's: its path, commands, their context, and the
 * version its greeting gives. */
void replies_endpoint_config(struct qmp_endpoint_config *cfg, const char *path,
			     const struct qmp_command *cmds, void *ctx);

static inline void jadd_int(struct json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_int64((int64_t)v));
}

static inline void jadd_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

static inline void jadd_bool(struct json_object *o, const char *k, bool v)
{
	json_object_object_add(o, k, json_object_new_boolean(v));
}

#endif
