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

/*
 * A directory foldvm writes into (control sockets, locks, serial logs):
 * made (0700) if missing, then refused unless it is foldvm's own, since
 * another user who owns it, or may write into it, could plant a symlink
 * where foldvm will create a file: it must be a directory itself (not a
 * symlink to one), owned by this process's user, and writable by nobody
 * else.  `what` names it ("run directory").
 */
int fv_private_dir(const char *dir, const char *what, struct fv_error *err);

/* The directory holding path ("/" for "/x", "." for "x"), into dir. */
void fv_parent_dir(const char *path, char *dir, size_t len);

#endif
