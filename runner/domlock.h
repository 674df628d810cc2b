/*
 * domlock.h - one domain (by uuid) runs under at most one foldvm.
 *
 * An flock(2) on LOCKDIR/UUID.lock, held for the guest's whole life: the
 * kernel drops it when the holder exits, however it exits, so a crashed
 * foldvm never leaves a stale lock behind.  The file holds the holder's
 * pid and domain name, for the message the next one gets.
 */
#ifndef FOLDVM_DOMLOCK_H
#define FOLDVM_DOMLOCK_H

#include "lib/error.h"

/* Take the lock (creating the directory); *fd holds it.  Held elsewhere:
 * -1 with FV_E_STATE and who holds it.  The supervisor takes them (the
 * foldvm the operator started, named in the note). */
int domlock_acquire(const char *dir, const char *uuid, const char *name,
		    int *fd, struct fv_error *err);

/* Drop it (fd < 0: nothing held). */
void domlock_release(const char *dir, const char *uuid, int fd);

#endif
