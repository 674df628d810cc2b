/*
 * hooks.h - run the host's libvirt QEMU hook scripts for a foldvm guest the
 * way libvirtd runs them, so an operator's existing /etc/libvirt/hooks/qemu
 * and /etc/libvirt/hooks/qemu.d/ scripts work unchanged.
 */
#ifndef FOLDVM_HOOKS_H
#define FOLDVM_HOOKS_H

#include <limits.h>
#include "lib/error.h"

#define HOOKS_DEFAULT_DIR "/etc/libvirt/hooks"
#define HOOKS_DEFAULT_TIMEOUT_MS 30000u
#define HOOKS_MAX_TIMEOUT_MS 3600000u   /* one hour */
#define HOOKS_STDERR_MAX 2048   /* bytes of a failing hook's stderr kept for the error */
#define HOOKS_MAX_SCRIPTS 256   /* executable scripts in DIR/qemu.d */
#define HOOKS_ARG_MAX 1024      /* bytes of NAME, OP and SUBOP each */
#define HOOKS_KILL_GRACE_MS 500u /* SIGTERM to SIGKILL after a timeout */
#define HOOKS_LINGER_MS 200u    /* output still read after a script exited */

struct hooks_config {
	char dir[PATH_MAX];     /* "" = hooks disabled; else an absolute path */
	unsigned timeout_ms;    /* per script; the script's process group is
				 * killed after it.  0 = HOOKS_DEFAULT_TIMEOUT_MS */
};

/* HOOKS_DEFAULT_DIR and HOOKS_DEFAULT_TIMEOUT_MS. */
void hooks_config_init(struct hooks_config *cfg);

/*
 * Run every QEMU hook for one lifecycle point, as libvirt does: DIR/qemu
 * first, then each executable regular file in DIR/qemu.d/ in alphabetical
 * (strcmp) order; argv is SCRIPT NAME OP SUBOP EXTRA (EXTRA is "-"), the
 * domain XML on stdin (xml NULL: stdin is /dev/null), stdout discarded,
 * the environment only LC_ALL=C, libvirt's few passed variables and
 * FOLDVM_VERSION.
 *
 * Like libvirt, a failing script does not stop the ones after it: all run,
 * and the call fails if any failed.
 *
 * Returns 0 when every script exited 0 (or there are none: no DIR, no
 * qemu, no qemu.d).  Otherwise -1 and err names the first failing script,
 * the guest and lifecycle point, how it failed (exit status N, killed by
 * signal, timed out after S s, could not be started), how many others
 * failed, and its stderr (trimmed, on one line, bounded).  err->code is
 * FV_E_STATE when a script ran and failed, FV_E_SYS when one could not be
 * run, FV_E_INVAL for bad arguments or a qemu.d with too many scripts,
 * FV_E_IO when qemu.d cannot be read (nothing has run then).
 */
int hooks_run(const struct hooks_config *cfg, const char *name, const char *op,
	      const char *subop, const char *xml, struct fv_error *err);

#endif
