/*
 * guest.h - one guest: its VM fd, RAM, vCPU threads, devices and lifecycle.
 *
 * Every guest is independent: its failure (triple fault, emulation failure,
 * guest assertion) moves only it to GUEST_FAILED with a reason; the host
 * process and the other guests carry on.
 *
 * States:   CREATED --start--> RUNNING <--pause/resume--> PAUSED
 *           RUNNING/PAUSED --every vCPU left--> SHUTDOWN
 *           any live state --guest_stop()--> STOPPED
 *           any live state --a vCPU failed--> FAILED
 */
#ifndef FOLDVM_GUEST_H
#define FOLDVM_GUEST_H

#include <limits.h>
#include <net/if.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "devices/i8042.h"
#include "devices/serial.h"
#include "devices/testdev.h"
#include "dedup/dedup.h"
#include "guest-tools/testdev_abi.h"
#include "vmm/blob.h"
#include "lib/error.h"
#include "memory/guest_mem.h"
#include "devices/ioport.h"
#include "devices/mmio.h"
#include "vmm/acpi.h"
#include "vmm/kvm.h"
#include "vmm/linux_boot.h"

#define GUEST_NAME_MAX 32
#define GUEST_DEFAULT_RACE_PAGES 16
#define GUEST_DEFAULT_PROBE_PAGES 256

enum guest_state {
	GUEST_CREATED,
	GUEST_RUNNING,
	GUEST_PAUSED,
	GUEST_SHUTDOWN,  /* the guest left on its own (every vCPU exited) */
	GUEST_STOPPED,   /* the host stopped it */
	GUEST_FAILED,    /* a vCPU failed: see reason */
};

/* What the command line (or later QMP/libvirt) says about a guest. */
struct guest_config {
	char name[GUEST_NAME_MAX + 1];
	uint64_t mem_size;
	unsigned nr_vcpus;
	char payload[PATH_MAX];      /* "" = the payload built into foldvm */
	struct fv_content_spec content;
	uint32_t race_pages;
	uint32_t probe_pages;
	bool console;                /* echo serial lines to stdout */
	bool dedup;                  /* merge this guest's memory */
	bool ksm;                    /* let Linux KSM merge it instead */
	char domain[DEDUP_DOMAIN_MAX + 1]; /* trust domain ("" = its name) */
	uint64_t dedup_rate;         /* its own scan-rate cap, pages/s (0 = none) */
	/* A Linux guest (kernel set) boots this instead of the test payload. */
	char kernel[PATH_MAX];
	char initrd[PATH_MAX];
	char cmdline[LINUX_CMDLINE_MAX + 1];
	bool virtio_cmdline;         /* also name the virtio windows on the
				      * command line (virtio_mmio.device=);
				      * ACPI's DSDT always does */
	/* virtio devices (vmm/guest_virtio.c) */
	char disk[PATH_MAX];         /* raw image for virtio-blk ("" = none) */
	bool disk_ro;                /* the guest may not write it */
	bool balloon;                /* virtio-balloon with page reporting */
	uint64_t balloon_target;     /* its first target, bytes (0: all RAM) */
	bool net;                    /* virtio-net on a tap (net=) */
	char net_tap[IFNAMSIZ];      /* its tap ("" until spec_finish names
				      * it fv-NAME, for net=tap) */
	bool mac_set;                /* mac= given; else a default from the name */
	uint8_t mac[6];
};

/* Does this guest boot a Linux kernel (rather than foldvm's test payload)? */
static inline bool guest_config_is_linux(const struct guest_config *cfg)
{
	return cfg->kernel[0] != '\0';
}

struct guest;
struct virtio_blk;
struct virtio_balloon;
struct guest_kicks;
struct virtio_mmio;
struct virtio_net;

/* Told of every state change, after it happened (any thread, no lock held). */
typedef void (*guest_state_fn)(void *opaque, struct guest *g,
			       enum guest_state old_state,
			       enum guest_state new_state, const char *reason);

struct vcpu {
	struct guest *guest;
	unsigned index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
	bool in_run;    /* inside KVM_RUN (or about to enter it) */
	bool exited;    /* its thread has left the run loop */
};

struct guest {
	struct guest_config cfg;
	struct kvm_sys *kvm;
	int vm_fd;
	struct guest_mem mem;
	struct ioport_bus io;
	struct mmio_bus mmio;           /* virtio-mmio windows */
	struct virtio_blk *blk;         /* disk=, or NULL */
	struct virtio_balloon *balloon; /* balloon=on, or NULL */
	struct virtio_net *net;         /* net=, or NULL */
	struct guest_irq_line {         /* a device's line (Linux guests) */
		struct guest *g;
		struct virtio_mmio *t;
		unsigned irq;
		int irqfd, resamplefd;  /* KVM_IRQFD, or -1: KVM_IRQ_LINE */
	} virtio_irq[FV_VIRTIO_MAX_DEVICES];
	unsigned nr_virtio;             /* windows registered */
	struct guest_kicks *kicks;      /* ioeventfds and their thread, or NULL */
	struct serial16550 serial;
	bool serial_ready;
	struct testdev testdev;
	struct i8042 i8042;             /* Linux guests: the reset line */
	struct linux_boot_info boot;    /* Linux guests: what was loaded */
	struct acpi_tables acpi;        /* Linux guests: where the tables are */
	struct fv_guest_config layout;  /* what the payload is told */
	int log_fd;
	char log_path[PATH_MAX];

	pthread_mutex_t lock;           /* state, reason, vcpu flags */
	pthread_cond_t cond;
	enum guest_state state;
	char reason[512];
	unsigned vcpus_alive;
	struct vcpu *vcpus;
	struct dedup_engine *dedup;     /* not owned; NULL when dedup is off */
	struct dedup_guest *dedup_guest;
	guest_state_fn on_state;        /* set before guest_start */
	void *on_state_opaque;
};

const char *guest_state_name(enum guest_state state);

/* A line in the guest's log (and on stdout with console=on), from vCPU
 * `vcpu` or a device (opaque: the guest). */
void guest_log_message(void *opaque, unsigned vcpu, const char *msg);

/* The trust domain of a guest so configured: its domain, or its own name
 * without one. */
const char *guest_config_domain(const struct guest_config *cfg);
bool guest_state_is_live(enum guest_state state);

/* Build everything (VM, memory, devices, payload, vCPUs) without running a
 * single guest instruction, and hand its RAM to the dedup engine when
 * cfg->dedup (dedup must then be non-NULL).  blob may be NULL.  On failure
 * nothing leaks. */
int guest_create(struct guest **out, struct kvm_sys *kvm,
		 const struct guest_config *cfg, const struct blob *blob,
		 struct dedup_engine *dedup, const char *log_dir,
		 struct fv_error *err);

/* Hand the guest's RAM to the dedup engine, with its trust domain and
 * its own scan-rate cap (guest_create does it for dedup=on; dedup-set
 * for a guest switched on later). */
int guest_join_dedup(struct guest *g, struct dedup_engine *dedup,
		     struct fv_error *err);

/* Start the vCPU threads. */
int guest_start(struct guest *g, struct fv_error *err);

/* Stop running guest code on every vCPU (returns once none is inside
 * KVM_RUN) / let it run again. */
int guest_pause(struct guest *g, struct fv_error *err);
int guest_resume(struct guest *g, struct fv_error *err);

/* Ask the guest to stop (host request); does not wait. */
void guest_stop(struct guest *g, const char *reason);

/* The guest ended itself (a reset or power-off request): SHUTDOWN with
 * this reason; does not wait. */
void guest_exit(struct guest *g, const char *reason);

/* Record a failure and stop the guest (called from its vCPU threads). */
void guest_fail(struct guest *g, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Wait for every vCPU thread to finish (timeout_ms < 0: forever);
 * returns 0 when they all have. */
int guest_wait(struct guest *g, int timeout_ms);

/* Stop if needed, join the threads and free everything. NULL is fine. */
void guest_destroy(struct guest *g);

/* A vCPU thread left its run loop (called by that thread). */
void guest_vcpu_exited(struct guest *g, struct vcpu *v);

/* Snapshot of state and reason. */
enum guest_state guest_get_state(struct guest *g, char *reason, size_t len);

#endif
