/*
 * fileutil.h - read a whole file from outside (payload, kernel, initrd)
 * with a size limit checked before and while reading.
 */
#ifndef FOLDVM_FILEUTIL_H
#define FOLDVM_FILEUTIL_H

#include <stddef.h>
#include <stdint.h>
#include "lib/error.h"

/* Is `path` a regular, non-empty file of at most max bytes?  `what` names
 * it in the message ("payload", "kernel", ...).  *size gets its size. */
int fv_check_file(const char *path, uint64_t max, const char *what,
		  uint64_t *size, struct fv_error *err);

/* Read it all into a new buffer (free() it).  A file that grew past max
 * since it was checked is refused too. */
int fv_read_file(const char *path, uint64_t max, const char *what,
		 uint8_t **buf, size_t *len, struct fv_error *err);

#endif
