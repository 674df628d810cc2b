/*
 * payload.h - load a flat test payload at FV_PAYLOAD_GPA.
 */
#ifndef FOLDVM_PAYLOAD_H
#define FOLDVM_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>
#include "lib/error.h"
#include "memory/guest_mem.h"

/* The payload linked into foldvm (guest-tools/payload/). */
extern const uint8_t fv_builtin_payload[];
extern const uint8_t fv_builtin_payload_end[];

/* Load `path`, or the built-in payload when path is NULL or "". */
int payload_load(struct guest_mem *gm, const char *path, struct fv_error *err);

/* Check that a payload file exists, is regular, non-empty and fits. */
int payload_check_file(const char *path, struct fv_error *err);

#endif
