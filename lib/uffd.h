/*
 * uffd.h - a userfaultfd that may handle faults the kernel takes (KVM's
 * accesses to guest RAM), which the userfaultfd(2) system call gives only
 * to a process with CAP_SYS_PTRACE (or with vm.unprivileged_userfaultfd=1).
 * /dev/userfaultfd (Linux 6.1) gives it to whoever may open the device,
 * which a sandboxed worker with no capability may (supervisor/sandbox.c).
 */
#ifndef FOLDVM_LIB_UFFD_H
#define FOLDVM_LIB_UFFD_H

#include <stdbool.h>
#include "lib/error.h"

/* flags: O_CLOEXEC, O_NONBLOCK.  The descriptor, or -1 with err. */
int fv_userfaultfd(int flags, struct fv_error *err);

/* Whether the process's userfaultfd write-protects pages that have no page
 * table entry yet (UFFD_FEATURE_WP_UNPOPULATED, Linux 6.4).  Without it (a
 * Linux 6.1 host, such as the nested bed's), a write-protection of such a
 * page does not hold, so whoever protects a page must populate it first
 * (memory/guest_mem.c, gmem_protect).  Set by the dedup engine when it opens
 * its userfaultfd; true until then. */
void fv_uffd_set_wp_unpopulated(bool has);
bool fv_uffd_wp_unpopulated(void);

#endif
