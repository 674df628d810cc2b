/*
 * sup_int.h - the supervisor's insides, shared by its files:
 * supervisor.c (the run: start, main loop, results), workers.c (worker
 * processes and their links) and host.c (the host socket's commands and
 * events).  Private to supervisor/.
 *
 * Processes: the supervisor, its spawner (workers.c) and the workers,
 * all children of the supervisor.
 *
 * Threads: the main thread starts every worker (through the spawner) and
 * waits for signals; the pump thread reads every link and every worker's pidfd; the
 * QMP server thread runs host.qmp's handlers, which ask workers over
 * their links and ask the main thread for new workers.
 *
 * Locking: sup->lock guards the worker list and every field of a worker
 * marked "lock"; sup->cond is broadcast whenever one of them changes.  A
 * worker is freed only by the main thread after the pump let go of it
 * (at the end of the run), so pointers to workers stay valid meanwhile.
 */
#ifndef FOLDVM_SUPERVISOR_SUP_INT_H
#define FOLDVM_SUPERVISOR_SUP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>
#include <json-c/json.h>
#include "control/qmp.h"
#include "runner/runner.h"
#include "supervisor/sandbox.h"

#define SUP_MAX_WORKERS CLI_MAX_VMS   /* a guest at least each */
#define SUP_LINK_MAX_LINE (1u << 20)  /* longest line read from a worker */

/* Shared with the worker process (MAP_SHARED), written by it. */
struct worker_result {
	int status;                     /* its exit status; -1: not written */
	char error[512];                /* why its run could not start */
	struct sandbox_report sandbox;  /* the call its filter stopped */
	struct run_result res;
};

/* The host side of one of a worker's domain guests (domains.c). */
struct sup_domain_slot {
	int lock_fd;                    /* its lock, -1: not held */
	bool stopped, released;         /* those hooks ran */
};

struct sup_worker {
	struct sup_worker *next;
	struct supervisor *sup;
	char domain[DEDUP_DOMAIN_MAX + 1];
	bool from_cli;                  /* holds command-line guests */
	unsigned idx[CLI_MAX_VMS];      /* which: opt->vms[idx[0..nr_idx)] */
	unsigned nr_idx;
	pid_t pid;
	int pidfd;                      /* pump: exit */
	int link_fd;                    /* the QMP link */
	struct worker_result *result;   /* shared mapping */
	int result_fd;                  /* its memfd, until handed over */
	/* lock: */
	bool ready;                     /* its initial guests were created */
	bool link_dead;                 /* EOF or junk on the link */
	bool exited;                    /* reaped: wstatus, clean, error; its
					   results are in sup->res and its
					   mapping is gone */
	int wstatus;
	struct sandbox_report sandbox;  /* its filter stopped this call (nr >= 0) */
	bool oom_killed;                /* SIGKILL from its cgroup's OOM killer */
	bool clean;                     /* it wrote its status and exited with it */
	char error[512];                /* why its run could not start ("") */
	bool terminating;               /* SIGTERM sent: nothing new for it */
	unsigned busy;                  /* requests in flight (host.c) */
	char names[CLI_MAX_VMS][GUEST_NAME_MAX + 1]; /* its guests now */
	unsigned nr_names;
	struct json_object *reply;      /* the answer to the request in flight */
	bool awaiting;
	/* one request at a time on the link */
	pthread_mutex_t req_lock;
	/* pump only */
	struct qmp_linebuf lb;
	/* its cgroup (cgroups.c; "" without --cgroup) */
	char cgroup[PATH_MAX + DEDUP_DOMAIN_MAX + 2];
	int cgroup_fd;                  /* until the spawner cloned into it */
	/* the domain host thread only (domains.c), but: */
	int domain_fd;
	pthread_t domain_thread;
	bool domain_thread_running;     /* lock */
	struct sup_domain_slot dom[CLI_MAX_VMS];
};

/* A worker wanted by a handler (vm-create of a new domain), forked by the
 * main thread. */
struct spawn_req {
	char domain[DEDUP_DOMAIN_MAX + 1];
	bool done;
	struct sup_worker *w;           /* NULL: failed, err says why */
	struct fv_error err;
};

struct supervisor {
	const struct cli_options *opt;
	struct timespec t0;
	struct blob blob;               /* --files, loaded once for every worker */
	pid_t pid;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct sup_worker *workers;     /* lock; newest first */
	unsigned nr_workers;            /* lock: live ones */
	struct run_result *res;         /* every ended worker's, added up by
					   the pump; read once it stopped */
	unsigned dropped;               /* guests that did not fit in res */
	struct spawn_req *spawn;        /* lock: one at a time */
	bool closing;                   /* lock: the run is ending, no spawn */
	int spawn_fd;                   /* eventfd: a spawn request waits */
	/* the spawner (workers.c) */
	pid_t spawner_pid;
	int spawner_fd;
	/* the pump */
	pthread_t pump;
	bool pump_running;
	int pump_wake;                  /* eventfd: the worker list changed */
	bool pump_stop;                 /* lock */
	/* host.qmp (opt->control) */
	struct qmp_server *server;
	struct qmp_endpoint_config host_cfg;
	struct qmp_endpoint *host_ep;
	char host_path[4096 + 16];
	/* the foreground terminal as a guest's console (console_stdio.c) */
	int console_vm;                 /* opt->vms index, -1: none */
	int console_worker_fd;          /* the worker's end, until spawned */
	int console_fd;                 /* ours: the guest's console stream */
	int console_stop;               /* eventfd: the relay must end */
	int console_quit;               /* eventfd: Ctrl-A x was typed */
	pthread_t console_thread;
	bool console_running;
	bool console_tty;               /* stdin is a terminal: raw mode */
};

/* console_stdio.c */
/* Before the workers: decide whether the terminal becomes the one guest's
 * console (--console), and make its channel. */
int sup_console_prepare(struct supervisor *sup, struct fv_error *err);
/* Once the guests run: the relay thread (raw mode). */
int sup_console_start(struct supervisor *sup, struct fv_error *err);
/* End the relay and give the terminal back as it was. Idempotent. */
void sup_console_stop(struct supervisor *sup);

/* workers.c */
/* Before any thread: fork the process that clones every worker. */
int sup_spawner_start(struct supervisor *sup, struct fv_error *err);
void sup_spawner_stop(struct supervisor *sup);
int sup_pump_start(struct supervisor *sup, struct fv_error *err);
void sup_pump_stop(struct supervisor *sup);
/* Main thread only.  Start a worker for `domain` holding the command
 * line's guests opt->vms[idx[0..n)] (none for a worker started for
 * vm-create), link it up and add it to the list.
 * NULL with err when no process could be started; a worker whose link
 * failed is returned with link_dead set (it is ending: see why with
 * worker_failure once it has). */
struct sup_worker *sup_worker_spawn(struct supervisor *sup, const char *domain,
				    const unsigned *idx, unsigned n,
				    bool from_cli, struct fv_error *err);
/* Execute a command on w (its link); the whole reply ({"return"} or
 * {"error"}), or NULL with err when the worker is gone.  args may be NULL
 * and is not taken.  Any thread but the pump. */
struct json_object *sup_worker_execute(struct sup_worker *w, const char *cmd,
				       struct json_object *args,
				       struct fv_error *err);
/* Ask w to finish (SIGTERM: its guests end their wait and sleep steps);
 * lock held. */
void sup_worker_terminate_locked(struct sup_worker *w);
/* Why w ended, in words ("exited with status 2", "killed by signal 9
 * (Killed)"); lock held, w->exited. */
void sup_worker_end_text(const struct sup_worker *w, char *buf, size_t len);
void sup_worker_free(struct sup_worker *w);

/* domains.c */
/* The worker's side: h reports its domain guests' points over fd. */
void sup_domain_host_init(struct domain_host *h, int fd);
/* The supervisor's: a thread serving w's domain guests, if it has any
 * (w->domain_fd, w->idx set). */
int sup_domain_host_start(struct sup_worker *w, struct fv_error *err);
/* Once w ended: the thread finished what its guests held. */
void sup_domain_host_stop(struct sup_worker *w);

/* cgroups.c */
/* --cgroup DIR: make DIR, give its children the memory controller if a
 * domain has a limit; nothing without --cgroup. */
int sup_cgroups_start(struct supervisor *sup, struct fv_error *err);
/* DIR/DOMAIN for w, with its memory.max; w->cgroup_fd to clone into. */
int sup_cgroup_create(struct sup_worker *w, struct fv_error *err);
/* Once w ended (its cgroup is empty). */
void sup_cgroup_remove(struct sup_worker *w);
/* Did the OOM killer end a process of w's cgroup? */
bool sup_cgroup_oom_killed(const struct sup_worker *w);
/* path, cpu-usec, memory-current-bytes, memory-max-bytes, oom-kills (as
 * far as the cgroup has them); NULL without a cgroup. */
struct json_object *sup_cgroup_stats(const struct sup_worker *w);

/* host.c */
int sup_host_start(struct supervisor *sup, struct fv_error *err);
void sup_host_stop(struct supervisor *sup);
/* An event from worker w's link (pump thread, lock not held). */
void sup_host_worker_event(struct sup_worker *w, const char *name,
			   struct json_object *data);
/* w died (pump thread, lock not held): its guests end with SHUTDOWN. */
void sup_host_worker_died(struct sup_worker *w, char names[][GUEST_NAME_MAX + 1],
			  unsigned n, const char *why);

#endif
