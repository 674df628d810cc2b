/*
 * vm_create.h - the QMP command vm-create (docs/qmp.md): its argument
 * table and its handler, registered on the host endpoint by commands.c.
 */
#ifndef FOLDVM_CONTROL_VM_CREATE_H
#define FOLDVM_CONTROL_VM_CREATE_H

#include "control/qmp.h"
#include "runner/runner.h"

/* Every key of runner/spec_keys.h, with its QMP type. */
extern const struct qmp_arg vm_create_args[];
/* vm-destroy's: the guest's name. */
extern const struct qmp_arg vm_destroy_args[];

/* The spec that args (already checked against vm_create_args) describe;
 * an error names the parameter.  No guest is made (unit tests). */
int vm_create_spec(struct json_object *args, struct vm_spec *vm,
		   struct qmp_error *err);

/* Build the guest of vm (from vm_create_spec, made by the supervisor and
 * sent typed over the link) and add it to the run (ctx). */
int vm_create_add(struct run_ctx *ctx, struct vm_spec *vm, struct qmp_error *err);

#endif
