/*
 * sandbox.h - what a worker process gives up before its first guest is
 * built (docs/sandbox.md): new privileges (no_new_privs), every
 * capability, every file but its own (Landlock), every system call off
 * its list (seccomp-BPF, libseccomp).  Private to supervisor/.
 */
#ifndef FOLDVM_SUPERVISOR_SANDBOX_H
#define FOLDVM_SUPERVISOR_SANDBOX_H

#include <stdint.h>
#include "lib/error.h"
#include "lib/syscall_rules.h"
#include "runner/spec.h"

/* Where a worker that broke its filter says which call it was (in its
 * shared result page, read by the supervisor once it has died). */
struct sandbox_report {
	int32_t nr;                     /* the system call, -1: none */
	uint32_t arch;                  /* its AUDIT_ARCH_* */
};

/*
 * Enter the sandbox for a worker that is to run opt's guests (with
 * opt->sandbox; SANDBOX_OFF enters none).  cli is the command line's
 * options: the worker may read guest images where any of its guests'
 * images are, and in its --image-dir directories.  The worker may have
 * only its own threads, none yet started.  report is written by the
 * SIGSYS handler.  Without Landlock in the kernel, says so on stderr and
 * goes on without the file limits.  -1 with err when it could not be
 * entered (the worker must not go on).
 */
int sandbox_enter(const struct cli_options *opt, const struct cli_options *cli,
		  struct sandbox_report *report, struct fv_error *err);

/* May a sandboxed worker of cli read the images c names, and attach to
 * its tap (one that exists and is owned by this uid, when the command
 * line gave some guest net=)?  -1 with err saying which one and what to
 * do, before a worker is asked. */
int sandbox_check_images(const struct cli_options *cli,
			 const struct guest_config *c, struct fv_error *err);

/* The rule tables devices and the engine declare (lib/syscall_rules.h),
 * which the filter composes with its base list: n of them. */
const struct syscall_rules *const *sandbox_declared(unsigned *n);

/* "execve" for a report's call ("syscall 999" for one unknown). */
void sandbox_syscall_name(const struct sandbox_report *r, char *buf, size_t len);

#endif
