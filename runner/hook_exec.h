/*
 * hook_exec.h - run one hook script (hook_exec.c) for hooks.c: spawned
 * with a clean environment, fed its XML, its output drained, killed after
 * its time.  Private to runner/.
 */
#ifndef FOLDVM_RUNNER_HOOK_EXEC_H
#define FOLDVM_RUNNER_HOOK_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include "runner/hooks.h"

enum hook_how {
	HOOK_OK,
	HOOK_EXIT,      /* value = exit status */
	HOOK_SIGNAL,    /* value = signal */
	HOOK_TIMEOUT,
	HOOK_NOSTART,   /* value = errno */
	HOOK_IOERR,     /* value = errno; the script was killed */
	HOOK_LOST,      /* value = errno; its exit status could not be had */
};

struct hook_result {
	enum hook_how how;
	int value;
	char err[HOOKS_STDERR_MAX];
	size_t err_len;
	bool err_cut;
};

/* Run argv[0] with argv and envp, xml (or NULL) on its stdin, for at most
 * timeout_ms; *res says how it ended and keeps the start of its stderr. */
void hook_run_one(char *const argv[], char *const envp[], const char *xml,
		  unsigned timeout_ms, struct hook_result *res);

#endif
