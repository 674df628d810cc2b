/*
 * unmerge.h - the QMP command dedup-unmerge (docs/qmp.md): give one guest
 * (`vm`) or every guest of a trust domain (`domain`) back a private copy
 * of every page it shares, as KSM's run=2 does, after checking that the
 * memory is there.  On a guest's socket it takes no `vm` or `domain`.
 */
#ifndef FOLDVM_CONTROL_UNMERGE_H
#define FOLDVM_CONTROL_UNMERGE_H

#include <stdint.h>
#include "control/qmp.h"
#include "runner/runner.h"

/* 100 MiB/s: an unmerge does not starve the guests' own faults of memory
 * bandwidth, and 1 GiB of shared pages is private in about ten seconds. */
#define UNMERGE_RATE_DEFAULT 25600ull

/* The host socket's arguments; the guest socket's (rate only). */
extern const struct qmp_arg unmerge_host_args[];
extern const struct qmp_arg unmerge_guest_args[];

/* What args (checked against one of the tables above) ask for: exactly
 * one of *vm and *domain set on a host socket; *rate in pages/s (0: no
 * limit).  An error names the parameter. */
int unmerge_parse(struct json_object *args, bool host, const char **vm,
		  const char **domain, uint64_t *rate, struct qmp_error *err);

/* The command on a guest's socket (guest: its name); returns {"pages":
 * pages to copy}. */
int unmerge_guest_command(struct run_ctx *ctx, const char *guest,
			  struct json_object *args, struct json_object **ret,
			  struct qmp_error *err);

/* Unmerge guest vm, or every guest of trust domain `domain` (the other
 * NULL), in this process: *pages, the pages to copy.  The host socket's
 * command comes here through the worker's link, parsed by the
 * supervisor. */
int unmerge_run(struct run_ctx *ctx, const char *vm, const char *domain,
		uint64_t rate, uint64_t *pages, struct qmp_error *err);

#endif
