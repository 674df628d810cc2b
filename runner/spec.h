/*
 * spec.h - what a run is made of: one guest's spec (struct vm_spec: its
 * configuration, its steps, where a libvirt domain came from) and the
 * options of a whole run (struct cli_options).  The front-ends fill them
 * (frontend/cli.c from argv, frontend/domain.c from domain XML, the QMP
 * vm-create command); the runner runs them.  Every setter checks its value:
 * everything here is untrusted input, and every problem is one clear
 * sentence.
 */
#ifndef FOLDVM_SPEC_H
#define FOLDVM_SPEC_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include "lib/error.h"
#include "runner/hooks.h"
#include "vmm/guest.h"

#define CLI_MAX_VMS 16
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

struct cli_options {
	enum cli_command cmd;
	struct vm_spec vms[CLI_MAX_VMS];
	unsigned nr_vms;
	const char *files[CLI_MAX_FILES];  /* sources of page-cache content */
	unsigned nr_files;
	char log_dir[PATH_MAX];
	bool quiet;             /* no guest console on stdout */
	/* control sockets */
	bool control;           /* serve QMP sockets (default on for run) */
	bool persist;           /* --persist: keep serving with no guest */
	char run_dir[PATH_MAX]; /* --run-dir */
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
	uint64_t dedup_vma_budget; /* --dedup-vma-budget (0 = automatic) */
	uint64_t max_map_count; /* --max-map-count: raise vm.max_map_count */
	/* demo */
	bool demo_no_dedup;     /* --no-dedup */
	unsigned demo_guests;
	uint64_t demo_mem;
	unsigned demo_vcpus;
	unsigned demo_seconds;
};

/* "256M", "1G", "2GiB", "65536K", "4096B"; a bare number is in MiB (as
 * QEMU's -m).  Result in bytes, at most 1 TiB. */
int cli_parse_size(const char *s, uint64_t *bytes, struct fv_error *err);

/* A decimal integer in [min, max], whole string. */
int cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
		   const char *what, struct fv_error *err);

/* One --vm spec "key=value,key=value"; index numbers the default name.
 * ",," is a literal comma inside a value (as in QEMU), for kernel command
 * lines such as clearcpuid=1,2. */
int cli_parse_vm(const char *spec, unsigned index, struct vm_spec *vm,
		 struct fv_error *err);

/* One key=value of a --vm spec onto vm (the pieces of cli_parse_vm, for
 * other sources of guest definitions: libvirt domain XML). */
int cli_vm_set(struct vm_spec *vm, const char *key, const char *val,
	       struct fv_error *err);
/* After the last cli_vm_set: defaults that depend on several keys, and
 * the checks across them. */
int cli_vm_finish(struct vm_spec *vm, struct fv_error *err);

/* Split off the next key=value of a --vm spec at a single comma; ",,"
 * becomes a literal comma.  Rewrites the buffer in place; NULL at the end. */
char *cli_spec_next(char **cursor);

/* "fill+verify+churn:1000+sleep:2" */
int cli_parse_steps(const char *s, struct step *steps, unsigned *nr,
		    struct fv_error *err);

/* Fill a vm_spec with the defaults for guest number `index`. */
void cli_vm_defaults(struct vm_spec *vm, unsigned index);

/* Is this a valid guest name ([A-Za-z0-9._-], 1..32 chars)? */
bool cli_name_ok(const char *name);

const char *step_name(enum step_kind kind);

#endif
