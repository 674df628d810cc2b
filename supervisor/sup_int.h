/*
 * sup_int.h - the supervisor's insides, shared by its files:
 * supervisor.c (the run: start, main loop, results); a worker's life in
 * the files of its jobs: worker_main.c (the worker process), spawner.c
 * (the process that clones workers), workers.c (starting one, holding and
 * freeing it), links.c (its typed link: requests, replies, events, and the
 * links thread), exits.c (its end: results, SHUTDOWN of its guests);
 * host.c (host.qmp's commands).  Calls go one way: supervisor.c and
 * host.c use workers.c and links.c; links.c uses workers.c and exits.c;
 * workers.c uses spawner.c, which uses worker_main.c.  Private to
 * supervisor/.
 *
 * Processes: the supervisor, its spawner and the workers, all children
 * of the supervisor.
 *
 * Threads: the main thread starts every worker (through the spawner) and
 * waits for signals; the links thread reads every link and every
 * worker's pidfd; the QMP server thread runs host.qmp's handlers, which
 * ask workers over their links and ask the main thread for new workers.
 *
 * Locking: sup->lock guards the worker list and every field of a worker
 * marked "lock"; sup->cond is broadcast whenever one of them changes.  A
 * worker is freed only by the main thread after the links thread let go
 * of it (at the end of the run), so pointers to workers stay valid
 * meanwhile.
 */
#ifndef FOLDVM_SUPERVISOR_SUP_INT_H
#define FOLDVM_SUPERVISOR_SUP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>
#include <unistd.h>
#include <json-c/json.h>
#include "control/link.h"
#include "control/qmp.h"
#include "runner/runner.h"
#include "supervisor/sandbox.h"

#define SUP_MAX_WORKERS CLI_MAX_VMS   /* a guest at least each */

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
	int pidfd;                      /* links thread: exit */
	int link_fd;                    /* the typed link (control/link.h) */
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
	struct link_msg *reply;         /* the request in flight, its answer
					   written over it; NULL: none */
	bool replied;                   /* ... is there */
	/* one request at a time on the link */
	pthread_mutex_t req_lock;
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
					   the links thread; read once it
					   stopped */
	unsigned dropped;               /* guests that did not fit in res */
	struct spawn_req *spawn;        /* lock: one at a time */
	bool closing;                   /* lock: the run is ending, no spawn */
	int spawn_fd;                   /* eventfd: a spawn request waits */
	/* the spawner (workers.c) */
	pid_t spawner_pid;
	int spawner_fd;
	/* the links thread (links.c) */
	pthread_t links;
	bool links_running;
	int links_wake;                 /* eventfd: the worker list changed */
	struct link_msg *links_buf;     /* the packet it reads */
	bool links_stop;                /* lock */
	/* host.qmp (opt->control) */
	struct qmp_server *server;
	struct qmp_endpoint_config host_cfg;
	struct qmp_endpoint *host_ep;
	char host_path[4096 + 16];
	/* --metrics (metrics.c) */
	struct sup_metrics *metrics;
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

/* What the supervisor asks the spawner for (with SPAWN_FDS descriptors
 * as SCM_RIGHTS: the link's end, the result memfd, the domain channel's
 * end). */
#define SPAWN_FDS 3
/* then the cgroup to clone it into, when it has one (--cgroup), and the
 * foreground terminal's console channel, when one of its guests has it */
#define SPAWN_MAX_FDS 5
struct spawn_msg {
	char domain[DEDUP_DOMAIN_MAX + 1];
	bool from_cli;
	bool cgroup;                    /* a descriptor more: its cgroup */
	bool console;                   /* a descriptor more: the console */
	unsigned console_idx;           /* which guest of idx[] has it */
	unsigned nr;                    /* guests of the command line it holds */
	unsigned idx[CLI_MAX_VMS];      /* their indexes in opt->vms */
};


/* worker_main.c */
/* The worker process, cloned by the spawner (fds: spawn_msg's). */
__attribute__((noreturn))
void sup_worker_main(const struct supervisor *sup, const struct spawn_msg *m,
		     const int fds[SPAWN_MAX_FDS]);
/* Close every descriptor above stdio but those in keep[]. */
void sup_close_fds_except(const int *keep, unsigned n);

/* spawner.c */
/* Before any thread: fork the process that clones every worker. */
int sup_spawner_start(struct supervisor *sup, struct fv_error *err);
void sup_spawner_stop(struct supervisor *sup);
/* Ask the spawner for a worker: its pid, or -1 with err. */
pid_t sup_spawner_clone(struct supervisor *sup, const struct spawn_msg *m,
			const int fds[SPAWN_MAX_FDS], struct fv_error *err);

/* workers.c */
/* Main thread only.  Start a worker for `domain` holding the command
 * line's guests opt->vms[idx[0..n)] (none for a worker started for
 * vm-create), link it up and add it to the list.
 * NULL with err when no process could be started. */
struct sup_worker *sup_worker_spawn(struct supervisor *sup, const char *domain,
				    const unsigned *idx, unsigned n,
				    bool from_cli, struct fv_error *err);
/* Ask w to finish (SIGTERM: its guests end their wait and sleep steps);
 * lock held. */
void sup_worker_terminate_locked(struct sup_worker *w);
/* Let go of w, held (busy++) by a handler; lock held.  A worker left
 * without guests by what just ran (vm-destroy, a vm-create that failed)
 * is not needed any more. */
void sup_worker_put_locked(struct sup_worker *w);
void sup_worker_free(struct sup_worker *w);

/* The links thread should look at the worker list again. */
static inline void sup_links_wake(struct supervisor *sup)
{
	uint64_t one = 1;

	if (write(sup->links_wake, &one, sizeof(one)) < 0) {
		/* the counter is full: the thread wakes anyway */
	}
}

/* links.c */
int sup_links_start(struct supervisor *sup, struct fv_error *err);
void sup_links_stop(struct supervisor *sup);
/* Ask w: m holds the request (its code and body; kind is set here); on
 * 0 it holds w's reply (m->failed: m->err says why).  -1 with err when
 * the worker is gone.  Any thread but the links thread. */
int sup_link_call(struct sup_worker *w, struct link_msg *m, struct fv_error *err);

/* exits.c */
/* Why w ended, in words ("exited with status 2", "killed by signal 9
 * (Killed)"); lock held, w->exited. */
void sup_worker_end_text(const struct sup_worker *w, char *buf, size_t len);
/* Links thread, when w's pidfd says it exited: reap it, take its results,
 * and if it died, end its guests with SHUTDOWN on host.qmp. */
void sup_worker_reap(struct sup_worker *w);

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
/* What /metrics shows, asked of every worker as query-vms and
 * query-dedup-host ask; any thread but the links thread.  -1: out of
 * memory. */
struct metrics_input;
int sup_host_figures(struct supervisor *sup, struct metrics_input *in);

/* metrics.c */
/* --metrics ADDR: listen and serve /metrics on a thread of its own
 * (nothing without the option); stop it and remove its socket. */
int sup_metrics_start(struct supervisor *sup, struct fv_error *err);
void sup_metrics_stop(struct supervisor *sup);

#endif
