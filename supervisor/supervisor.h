/*
 * supervisor.h - `foldvm run` and `foldvm demo` as processes: the
 * supervisor keeps the host control socket (RUNDIR/host.qmp) and starts
 * one worker process per trust domain, which holds that domain's guests,
 * their devices and control sockets, and its own dedup engine.  A worker
 * that dies ends its own guests only.  docs/architecture.md has the
 * picture.
 */
#ifndef FOLDVM_SUPERVISOR_H
#define FOLDVM_SUPERVISOR_H

#include "lib/error.h"
#include "runner/runner.h"

/*
 * Run opt's guests, each in its domain's worker, serving host.qmp while
 * the run lasts (opt->control).  Every domain's guests are created before
 * any starts: one that cannot be created fails the whole start (-1 with
 * err, nothing ran).  Otherwise 0, with res holding every worker's guests
 * and engine counts added up (runner_print_table prints them).
 */
int supervisor_run(const struct cli_options *opt, struct run_result *res,
		   struct fv_error *err);

#endif
