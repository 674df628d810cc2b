/*
 * spec.h - what a run is made of: one guest's spec (struct vm_spec: its
 * configuration, its steps, where a libvirt domain came from) and the
 * options of a whole run (struct cli_options).  The front-ends fill them
 * through typed setters (frontend/domain.c from domain XML, the QMP
 * vm-create command) or through spec_set_kv() from text (the --vm command
 * line; the <foldvm:payload> attributes of domain XML); the runner runs
 * them.  Every setter checks its
 * value: everything here is untrusted input, and every problem is one
 * clear sentence.
 */
#ifndef FOLDVM_SPEC_H
#define FOLDVM_SPEC_H

#include <limits.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include "lib/error.h"
#include "runner/hooks.h"
#include "vmm/blob.h"
#include "vmm/guest.h"

#define CLI_MAX_VMS 16
#define CLI_MAX_DOMAIN_MEM 16 /* --domain-mem-max: limits of trust domains */
#define CLI_MAX_STEPS 32
#define CLI_MAX_FILES 8
#define CLI_MAX_SECONDS (7 * 24 * 3600)
#define CLI_SPEC_MAX 8192 /* a --vm spec: two paths and a kernel command line */
#define SPEC_UUID_LEN 36     /* a libvirt domain UUID, 8-4-4-4-12 form */
#define SPEC_NOTES_MAX 2048  /* what foldvm cannot honour of a domain */
/* The default command line of a Linux guest: its console on the serial
 * port from the first line on; a reset (reboot, panic) ends the guest. */
#define CLI_DEFAULT_CMDLINE \
	"console=ttyS0 earlyprintk=serial,ttyS0,115200 reboot=k panic=1 pci=off"

enum cli_command {
	CLI_NONE,
	CLI_RUN,
	CLI_DEMO,
	CLI_HELP,
	CLI_VERSION,
};

enum step_kind {
	STEP_FILL,     /* fill the data region from the content spec */
	STEP_VERIFY,   /* the guest re-checksums everything it owns */
	STEP_CHURN,    /* rewrite N random pages */
	STEP_RACE,     /* every vCPU increments shared counters N times */
	STEP_MEASURE,  /* time first writes to untouched pages */
	STEP_SLEEP,    /* let the guest sit for N seconds */
	STEP_WAIT,     /* sit until foldvm is interrupted */
	STEP_FAULT,    /* make the guest triple-fault (tests) */
	STEP_SYNC,     /* wait for every guest; foldvm takes a memory snapshot */
	STEP_MEASURE_MERGED, /* time first writes to the probe pages again
				(identical since `measure`, so merged by now) */
	STEP_SETTLE,   /* wait for N dedup passes that start after this step */
	STEP_MEASURE_MERGING, /* wait until this guest's probe pages are merged,
				 then time first writes to them at once (while
				 the engine may still merge other memory) */
	STEP_SANDBOX_PROBE, /* the guest asks its worker for a forbidden call
			       (enum fv_sandbox_probe; the test build only) */
	STEP_ECHO,     /* read N lines from the serial console, echo them
			  uppercased (docs/console.md) */
};

struct step {
	enum step_kind kind;
	uint64_t arg;
};

struct vm_spec {
	struct guest_config cfg;
	struct step steps[CLI_MAX_STEPS];
	unsigned nr_steps;
	bool blob_set;          /* blob= given explicitly */
	bool dedup_set;         /* dedup= given explicitly */
	bool steps_set;         /* steps= given explicitly */
	bool cmdline_set;       /* cmdline= given (an empty one too) */
	const char *payload_key; /* first test-payload-only key given, or NULL */
	/* A guest defined by libvirt domain XML (uuid[0] != 0): */
	char uuid[SPEC_UUID_LEN + 1];
	char *domain_xml;       /* the document, for the hooks' stdin (owned by
				   cli_options; freed by cli_options_free) */
	char origin[PATH_MAX];  /* the file, or "URI domain NAME" */
	char notes[SPEC_NOTES_MAX]; /* what foldvm cannot honour ("" = none) */
};

/*
 * The host side of a libvirt domain guest (one with a uuid): its lock (one
 * domain runs once) and its libvirt hooks, done outside the process that
 * runs the guest (the supervisor does them for its workers, which may run
 * no program and open no lock).  The runner reports each point of the
 * guest's life, in libvirt's order: LOCK, PREPARE ('prepare begin'),
 * START ('start begin'), STARTED ('started begin'), STOPPED ('stopped
 * end'), RELEASE ('release end'), UNLOCK.  vm is the guest's index in
 * opt->vms (domain guests all come from the command line).  Only LOCK,
 * PREPARE, START and STARTED may refuse (-1 with err); the others always
 * happen, a failing hook being worth a line on stderr.
 */
enum domain_point {
	DOMAIN_LOCK,
	DOMAIN_PREPARE,
	DOMAIN_START,
	DOMAIN_STARTED,
	DOMAIN_STOPPED,
	DOMAIN_RELEASE,
	DOMAIN_UNLOCK,
	DOMAIN_NR_POINTS
};

struct domain_host {
	int (*point)(const struct domain_host *h, unsigned vm,
		     enum domain_point p, struct fv_error *err);
	void *data;
};

struct cli_options {
	enum cli_command cmd;
	struct vm_spec vms[CLI_MAX_VMS];
	unsigned nr_vms;
	const char *files[CLI_MAX_FILES];  /* sources of page-cache content */
	const char *image_dirs[CLI_MAX_FILES]; /* --image-dir: where a sandboxed
						  worker may read images */
	unsigned nr_image_dirs;
	unsigned nr_files;
	char log_dir[PATH_MAX];
	bool quiet;             /* no guest console on stdout */
	/* control sockets */
	bool control;           /* serve QMP sockets (default on for run) */
	bool persist;           /* --persist: keep serving with no guest */
	char run_dir[PATH_MAX]; /* --run-dir */
	char metrics[PATH_MAX]; /* --metrics ADDR ("": none; docs/metrics.md) */
	/* libvirt domain XML (docs/libvirt.md) */
	const char *domain_files[CLI_MAX_VMS];    /* --domain-xml */
	unsigned nr_domain_files;
	const char *libvirt_uri;                  /* --libvirt */
	const char *libvirt_domains[CLI_MAX_VMS]; /* --domain */
	unsigned nr_libvirt_domains;
	bool strict;            /* --strict: refuse what foldvm cannot honour */
	struct hooks_config hooks; /* --hooks-dir, --no-hooks, --hook-timeout */
	char lock_dir[PATH_MAX];   /* --lock-dir: per-domain locks */
	/* dedup engine */
	bool dedup_all;         /* --dedup: every guest merges */
	bool ksm;               /* --ksm: Linux KSM merges instead */
	uint64_t dedup_rate;    /* --dedup-rate pages/s (0 = unlimited) */
	unsigned dedup_cpu;     /* --dedup-cpu percent (0 = no cap) */
	bool dedup_pressure_set;   /* --dedup-pressure given: */
	unsigned dedup_pressure;   /* PSI percent that pauses merges (0: never) */
	uint64_t dedup_vma_budget; /* --dedup-vma-budget (0 = automatic) */
	bool dedup_no_in_place; /* --dedup-in-place off */
	uint64_t max_map_count; /* --max-map-count: raise vm.max_map_count */
	char cgroup[PATH_MAX];  /* --cgroup: one cgroup v2 per domain in it */
	struct domain_mem {     /* --domain-mem-max DOMAIN=SIZE */
		char domain[GUEST_NAME_MAX + 1];
		uint64_t bytes;
	} domain_mem[CLI_MAX_DOMAIN_MEM];
	unsigned nr_domain_mem;
	enum sandbox_mode {     /* --sandbox: the workers' (supervisor/sandbox.c) */
		SANDBOX_ON = 0, /* a system call off the list kills the worker */
		SANDBOX_OFF,    /* no filter, no capability dropped */
		SANDBOX_LOG,    /* the filter logs such calls and lets them be */
	} sandbox;
	/* --console: the foreground terminal as one guest's serial console
	 * (docs/console.md) */
	enum console_mode {
		CONSOLE_AUTO = 0, /* stdio when one guest, a terminal, foreground */
		CONSOLE_STDIO,    /* stdio: the run must have exactly one guest */
		CONSOLE_NONE,     /* never: the output as "[name] ..." lines */
	} console;
	/* Set by the supervisor for one trust domain's worker process, never
	 * from the command line (supervisor/): */
	bool console_stdio;     /* console_fd is the terminal's channel for
				   guest console_vm (its serial console) */
	int console_fd;
	char console_vm[GUEST_NAME_MAX + 1];
	int worker_fd;          /* its link to the supervisor (control/) */
	struct timespec start;  /* CLOCK_MONOTONIC at the run's start (0: now) */
	const struct blob *blob; /* the file contents, loaded once by the
				    supervisor and shared by every worker
				    (NULL: runner_run loads its own) */
	const struct domain_host *domain_host; /* the locks and hooks of
						  its domain guests */
};

/*
 * A guest spec is filled in three steps: spec_defaults(), then setters
 * (typed, or spec_set_kv() for text), then spec_finish().
 *
 * Errors: a setter's message is about the value alone ("65 is out of
 * range 1..64", "'a b' must be 1-32 of [A-Za-z0-9._-]"), so the caller
 * prefixes the name its interface gave the field: "--vm vcpus: ",
 * "Parameter 'vcpus': ", "<vcpu>: ".  spec_finish() checks across fields
 * and names them through a function the caller supplies.
 */

/* Fill a vm_spec with the defaults for guest number `index`. */
void spec_defaults(struct vm_spec *vm, unsigned index);

/* ---- typed setters: each checks its value and returns 0 or -1 ---- */
int spec_set_name(struct vm_spec *vm, const char *name, struct fv_error *err);
int spec_set_mem(struct vm_spec *vm, uint64_t bytes, struct fv_error *err);
int spec_set_vcpus(struct vm_spec *vm, uint64_t n, struct fv_error *err);
int spec_set_payload(struct vm_spec *vm, const char *path, struct fv_error *err);
int spec_set_kernel(struct vm_spec *vm, const char *path, struct fv_error *err);
int spec_set_initrd(struct vm_spec *vm, const char *path, struct fv_error *err);
int spec_set_cmdline(struct vm_spec *vm, const char *cmdline,
		     struct fv_error *err);
/* Percentages of the data pages: zero, shared content, file content. */
int spec_set_zero(struct vm_spec *vm, uint64_t pct, struct fv_error *err);
int spec_set_shared(struct vm_spec *vm, uint64_t pct, struct fv_error *err);
int spec_set_blob(struct vm_spec *vm, uint64_t pct, struct fv_error *err);
int spec_set_pool(struct vm_spec *vm, uint64_t n, struct fv_error *err);
int spec_set_seed(struct vm_spec *vm, uint64_t seed, struct fv_error *err);
/* Where the test payload places its pages: "scattered" (the default),
 * "mix" or "clones" (guest-tools/content.h, enum fv_layout). */
int spec_set_layout(struct vm_spec *vm, const char *name, struct fv_error *err);
/* A parsed list (spec_parse_steps); 1..CLI_MAX_STEPS steps. */
int spec_set_steps(struct vm_spec *vm, const struct step *steps, unsigned nr,
		   struct fv_error *err);
int spec_set_console(struct vm_spec *vm, bool on, struct fv_error *err);
int spec_set_dedup(struct vm_spec *vm, bool on, struct fv_error *err);
/* The trust domain (a name, as spec_name_ok). */
int spec_set_domain(struct vm_spec *vm, const char *domain,
		    struct fv_error *err);
int spec_set_race_pages(struct vm_spec *vm, uint64_t n, struct fv_error *err);
int spec_set_probe_pages(struct vm_spec *vm, uint64_t n, struct fv_error *err);
int spec_set_disk(struct vm_spec *vm, const char *path, struct fv_error *err);
int spec_set_disk_ro(struct vm_spec *vm, bool on, struct fv_error *err);
int spec_set_balloon(struct vm_spec *vm, bool on, struct fv_error *err);
/* A Linux guest's command line names its virtio windows too
 * (virtio_mmio.device=; the ACPI DSDT always does). */
int spec_set_virtio_cmdline(struct vm_spec *vm, bool on, struct fv_error *err);
/* virtio-net: "tap:NAME" (attach to tap NAME, or create it) or "tap"
 * (create fv-GUESTNAME, named by spec_finish once the name is known). */
int spec_set_net(struct vm_spec *vm, const char *value, struct fv_error *err);
/* The guest's MAC, "52:54:00:12:34:56" (unicast); needs net=. */
int spec_set_mac(struct vm_spec *vm, const char *mac, struct fv_error *err);

/* ---- the keys: one row per field, for the interfaces that go by name
 * (made from the one list, runner/spec_keys.h) ---- */
enum spec_type {
	SPEC_T_STR,     /* set_str */
	SPEC_T_UINT,    /* set_uint; text: a decimal number */
	SPEC_T_SIZE,    /* set_uint in bytes; text: a size (spec_parse_size) */
	SPEC_T_BOOL,    /* set_bool; text: on/off, yes/no, 1/0 */
	SPEC_T_STEPS,   /* set_steps; text: spec_parse_steps */
};

/* A key's flags: */
#define SPEC_K_PAYLOAD  (1u << 0) /* the test payload's: an attribute of
				     <foldvm:payload> in domain XML */
#define SPEC_K_REQUIRED (1u << 1) /* vm-create needs it (--vm has a default) */

struct spec_key {
	const char *name;       /* the --vm key; NULL ends spec_keys[] */
	enum spec_type type;
	unsigned flags;         /* SPEC_K_* */
	const char *arg;        /* --help's word for the value ("SIZE") */
	const char *help;       /* --help's lines, '\n'-separated */
	int (*set_str)(struct vm_spec *, const char *, struct fv_error *);
	int (*set_uint)(struct vm_spec *, uint64_t, struct fv_error *);
	int (*set_bool)(struct vm_spec *, bool, struct fv_error *);
	int (*set_steps)(struct vm_spec *, const struct step *, unsigned,
			 struct fv_error *);
};

extern const struct spec_key spec_keys[];

/* The row of a key, or NULL. */
const struct spec_key *spec_key_find(const char *name);

/* The one text entry point: key=value as the --vm command line writes it
 * (foldctl create writes the same text, and sends each value with the
 * JSON type its key has here).  An unknown key is an error. */
int spec_set_kv(struct vm_spec *vm, const char *key, const char *value,
		struct fv_error *err);

/* How an interface names a field in spec_finish()'s errors: write the
 * name of `key` into buf and return buf. */
typedef const char *spec_field_fn(const char *key, char *buf, size_t len);

/* The --vm way: "mem=". */
spec_field_fn spec_field_kv;

/* After the last setter: defaults that depend on several fields, and the
 * checks across them (field NULL: spec_field_kv). */
int spec_finish(struct vm_spec *vm, spec_field_fn *field, struct fv_error *err);

/* The guests of one command line, across them: every guest meets the
 * others at each sync, so all have as many; and with syncs the engine
 * starts at the first one (runner.c), so no settle may come before it. */
int spec_check_syncs(const struct vm_spec *vms, unsigned nr,
		     struct fv_error *err);

/* ---- text ---- */

/* "256M", "1G", "2GiB", "65536K", "4096B"; a bare number is in MiB (as
 * QEMU's -m).  Result in bytes, at most 1 TiB. */
int spec_parse_size(const char *s, uint64_t *bytes, struct fv_error *err);

/* A decimal integer in [min, max], whole string; `what` starts the error
 * message (NULL: the message is about the value alone). */
int spec_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
		    const char *what, struct fv_error *err);

/* on/yes/1 or off/no/0. */
int spec_parse_bool(const char *s, bool *out, struct fv_error *err);

/* "fill+verify+churn:1000+sleep:2" */
int spec_parse_steps(const char *s, struct step *steps, unsigned *nr,
		     struct fv_error *err);

/* A whole --vm spec "key=value,key=value" (defaults, spec_set_kv for each
 * pair, spec_finish); index numbers the default name.  ",," is a literal
 * comma inside a value (as in QEMU), for kernel command lines such as
 * clearcpuid=1,2. */
int spec_from_kv(const char *text, unsigned index, struct vm_spec *vm,
		 struct fv_error *err);

/* Split off the next key=value of such a spec at a single comma; ",,"
 * becomes a literal comma.  Rewrites the buffer in place; NULL at the end. */
char *spec_next_kv(char **cursor);

/* Is this a valid guest name ([A-Za-z0-9._-], 1..32 chars)? */
bool spec_name_ok(const char *name);

const char *step_name(enum step_kind kind);

#endif
