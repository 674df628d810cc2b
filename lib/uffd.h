/*
 * uffd.h - a userfaultfd that may handle faults the kernel takes (KVM's
 * accesses to guest RAM), which the userfaultfd(2) system call gives only
 * to a process with CAP_SYS_PTRACE (or with vm.unprivileged_userfaultfd=1).
 * /dev/userfaultfd (Linux 6.1) gives it to whoever may open the device,
 * which a sandboxed worker with no capability may (supervisor/sandbox.c).
 */
#ifndef FOLDVM_LIB_UFFD_H
#define FOLDVM_LIB_UFFD_H

#include "lib/error.h"

/* flags: O_CLOEXEC, O_NONBLOCK.  The descriptor, or -1 with err. */
int fv_userfaultfd(int flags, struct fv_error *err);

#endif
