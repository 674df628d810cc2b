/*
 * commands.h - a worker's control sockets: one QMP endpoint per guest
 * (RUNDIR/NAME.qmp) and its link to the supervisor (which alone serves
 * RUNDIR/host.qmp, supervisor/host.c), served by one thread
 * (control/qmp_server.c).  Commands are data tables in commands.c;
 * every one validates its input and answers with a QMP error class on
 * failure.  The sockets follow a run through the runner's observer
 * callbacks: the runner never calls into control/.
 */
#ifndef FOLDVM_CONTROL_COMMANDS_H
#define FOLDVM_CONTROL_COMMANDS_H

#include "runner/runner.h"

/*
 * Hand this to runner_run().
 *  start: the server, the link to the supervisor (opt->worker_fd), with
 *         opt->control the run directory, and subscribe to the engine's
 *         events;
 *  guest_added / guest_removed: the guest's own endpoint (and its by-uuid
 *         link for a libvirt domain) comes and goes with its slot;
 *  stop:  everything goes.
 */
extern const struct runner_observer control_observer;

#endif
