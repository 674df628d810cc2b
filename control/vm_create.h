/*
 * vm_create.h - the QMP command vm-create (docs/qmp.md): its argument
 * table and its handler, registered on the host endpoint by commands.c.
 */
#ifndef FOLDVM_CONTROL_VM_CREATE_H
#define FOLDVM_CONTROL_VM_CREATE_H

#include "control/qmp.h"
#include "runner/runner.h"

extern const struct qmp_arg vm_create_args[];

/* Build the guest that args describe and add it to the run (ctx). */
int vm_create(struct run_ctx *ctx, struct json_object *args,
	      struct json_object **ret, struct qmp_error *err);

#endif
