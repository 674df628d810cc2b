#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <linux/kvm.h>
#include "lib/fileutil.h"
#include "guest-tools/content.h"
#include "vmm/guest.h"
#include "vmm/guest_virtio.h"
#include "vmm/layout.h"
#include "vmm/payload.h"
#include "lib/timeutil.h"
#include "vmm/vcpu.h"
#include "vmm/x86_cpl3.h"
#include "vmm/x86_linux.h"

const char *guest_config_domain(const struct guest_config *cfg)
{
	return cfg->domain[0] ? cfg->domain : cfg->name;
}

const char *guest_state_name(enum guest_state state)
{
	switch (state) {
	case GUEST_CREATED: return "created";
	case GUEST_RUNNING: return "running";
	case GUEST_PAUSED: return "paused";
	case GUEST_SHUTDOWN: return "shutdown";
	case GUEST_STOPPED: return "stopped";
	case GUEST_FAILED: return "failed";
	}
	return "unknown";
}

bool guest_state_is_live(enum guest_state state)
{
	return state == GUEST_CREATED || state == GUEST_RUNNING ||
	       state == GUEST_PAUSED;
}

void guest_log_message(void *opaque, unsigned vcpu, const char *msg)
{
	struct guest *g = opaque;
	char line[700];
	int n = snprintf(line, sizeof(line), "[%s] guest vCPU %u: %s\n",
			 g->cfg.name, vcpu, msg);

	if (n > 0 && g->log_fd >= 0 &&
	    write(g->log_fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) < 0) {
		/* The log is best effort; the guest must not fail over it. */
	}
}

static int serial_port_io(void *opaque, unsigned vcpu, uint16_t port,
			  bool is_write, uint8_t *data, unsigned size,
			  struct fv_error *err)
{
	struct serial16550 *s = opaque;

	(void)vcpu;
	(void)err;
	/* A wider access is that many byte accesses to consecutive ports. */
	for (unsigned i = 0; i < size; i++) {
		unsigned off = (unsigned)(port + i - FV_SERIAL_PORT);

		if (is_write)
			serial_write(s, off, data[i]);
		else
			serial_read(s, off, &data[i]);
	}
	return IOPORT_OK;
}

static int guest_open_log(struct guest *g, const char *log_dir,
			  struct fv_error *err)
{
	g->log_fd = -1;
	if (!log_dir)
		return 0;
	if (fv_private_dir(log_dir, "log directory", err))
		return -1;
	if (snprintf(g->log_path, sizeof(g->log_path), "%s/%s.log", log_dir,
		     g->cfg.name) >= (int)sizeof(g->log_path))
		return fv_err(err, FV_E_INVAL, "log path too long");
	/* A symlink at the log's name was not made by foldvm: not followed. */
	g->log_fd = open(g->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
			 O_NOFOLLOW, 0600);
	if (g->log_fd < 0)
		return fv_err_errno(err, FV_E_IO, errno, "cannot open %s",
				    g->log_path);
	return 0;
}

/* COM1's line on the in-kernel PIC/IOAPIC (Linux guests). */
#define GUEST_SERIAL_IRQ 4

static void guest_serial_irq(void *opaque, int level)
{
	struct guest *g = opaque;
	struct kvm_irq_level irq = { .irq = GUEST_SERIAL_IRQ, .level = (uint32_t)level };

	/* Fails only if the VM has no irqchip, which a Linux guest always has. */
	if (ioctl(g->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		guest_log_message(g, 0, "KVM_IRQ_LINE for the serial port failed");
}

static void guest_reset_requested(void *opaque, unsigned vcpu)
{
	struct guest *g = opaque;

	(void)vcpu;
	/* foldvm does not reboot guests (as Firecracker): a reset ends it. */
	guest_exit(g, "the guest reset itself (i8042 reset line)");
}

/* The ACPI sleep control/status register (vmm/acpi.h): a write of
 * SLP_TYP 5 with SLP_EN is the guest powering off; reads say "awake". */
static int guest_sleep_io(void *opaque, unsigned vcpu, uint16_t port,
			  bool is_write, uint8_t *data, unsigned size,
			  struct fv_error *err)
{
	struct guest *g = opaque;

	(void)vcpu;
	(void)port;
	(void)err;
	if (!is_write) {
		memset(data, 0, size);
		return IOPORT_OK;
	}
	/* Only the first byte lands on the one-byte register. */
	if (acpi_sleep_is_poweroff(data[0]))
		guest_exit(g, "the guest powered off (ACPI S5)");
	return IOPORT_OK;
}

/* Linux guests also get the serial interrupt, the i8042 reset line and
 * the ACPI sleep register; test guests get the test device's ports. */
static int guest_setup_devices(struct guest *g, struct fv_error *err)
{
	bool linux_guest = guest_config_is_linux(&g->cfg);
	struct serial_config sc = {
		.name = g->cfg.name,
		.log_fd = g->log_fd,
		.echo_stdout = g->cfg.console,
		.set_irq = linux_guest ? guest_serial_irq : NULL,
		.irq_opaque = g,
	};

	serial_init(&g->serial, &sc);
	g->serial_ready = true;
	if (ioport_register(&g->io, FV_SERIAL_PORT, SERIAL_NR_PORTS,
			    serial_port_io, &g->serial, "serial", err))
		return -1;
	if (testdev_init(&g->testdev, &g->mem, g->cfg.nr_vcpus,
			 guest_log_message, g, err))
		return -1;
	if (!linux_guest)
		return testdev_register(&g->testdev, &g->io, err);
	i8042_init(&g->i8042, guest_reset_requested, g);
	if (ioport_register(&g->io, I8042_DATA_PORT, 1, i8042_io, &g->i8042,
			    "i8042 data", err) ||
	    ioport_register(&g->io, ACPI_SLEEP_PORT, 1, guest_sleep_io, g,
			    "ACPI sleep control", err))
		return -1;
	return ioport_register(&g->io, I8042_CMD_PORT, 1, i8042_io, &g->i8042,
			       "i8042 command", err);
}

static uint64_t guest_tsc_khz(struct guest *g)
{
	int khz = g->vcpus[0].fd >= 0 ? ioctl(g->vcpus[0].fd, KVM_GET_TSC_KHZ, 0) : -1;

	return khz > 0 ? (uint64_t)khz : 0;
}

/* Lay out the test-guest regions, place the blob and tell the payload. */
static int guest_setup_layout(struct guest *g, const struct blob *blob,
			      struct fv_error *err)
{
	struct fv_guest_config *l = &g->layout;
	uint64_t blob_avail = blob ? blob->pages : 0;

	struct layout_fixed fixed = {
		.race_pages = g->cfg.race_pages,
		.probe_pages = g->cfg.probe_pages,
		.virtio_pages = g->nr_virtio ? FV_VIRTIO_SCRATCH_PAGES : 0,
	};

	if (layout_compute(g->cfg.mem_size, &g->cfg.content, blob_avail,
			   &fixed, l, err))
		return -1;
	if (g->nr_virtio) {
		l->virtio_mmio_gpa = FV_VIRTIO_MMIO_GPA;
		l->virtio_mmio_nr = g->nr_virtio;
	}
	l->nr_vcpus = g->cfg.nr_vcpus;
	l->tsc_khz = guest_tsc_khz(g);
	snprintf(l->name, sizeof(l->name), "%s", g->cfg.name);
	if (l->blob_pages) {
		if (gmem_write(&g->mem, l->blob_gpa, blob->data,
			       l->blob_pages * FV_PAGE_SIZE, err))
			return -1;
		l->blob_checksum = fv_checksum_pages(blob->data, l->blob_pages);
		/* mix: where its files start (the guest reads bits < blob_pages) */
		if (l->blob_starts_gpa &&
		    gmem_write(&g->mem, l->blob_starts_gpa, blob->starts,
			       (l->blob_pages + 7) / 8, err))
			return -1;
	}
	return gmem_write(&g->mem, FV_CONFIG_GPA, l, sizeof(*l), err);
}

/* The vCPU array, every fd -1 so a half-built guest tears down cleanly. */
static int guest_alloc_vcpus(struct guest *g, struct fv_error *err)
{
	g->vcpus = calloc(g->cfg.nr_vcpus, sizeof(*g->vcpus));
	if (!g->vcpus)
		return fv_err(err, FV_E_NOMEM, "cannot allocate vCPUs");
	for (unsigned i = 0; i < g->cfg.nr_vcpus; i++)
		g->vcpus[i].fd = -1;
	return 0;
}

static int guest_create_vcpus(struct guest *g, struct fv_error *err)
{
	if (guest_alloc_vcpus(g, err))
		return -1;
	for (unsigned i = 0; i < g->cfg.nr_vcpus; i++) {
		if (vcpu_create(&g->vcpus[i], g, i, err))
			return -1;
		if (x86_cpl3_setup_vcpu(g->vcpus[i].fd, g->kvm->cpuid, i,
					FV_PAYLOAD_GPA, FV_STACK_TOP(i),
					FV_CONFIG_GPA, err))
			return -1;
	}
	return 0;
}

/* Record in the guest's log what it boots (the console output follows). */
/* What was loaded, and the command line the kernel got (the operator's
 * and the device entries foldvm added). */
static void guest_log_boot(struct guest *g, const char *cmdline)
{
	char desc[300], line[PATH_MAX + 700];
	int n;

	linux_image_describe(&g->boot.img, desc, sizeof(desc));
	n = snprintf(line, sizeof(line),
		     "foldvm: booting %s: %s; initrd %llu bytes at 0x%llx; command line \"%s\"\n",
		     g->cfg.kernel, desc, (unsigned long long)g->boot.initrd_size,
		     (unsigned long long)g->boot.initrd_gpa, cmdline);
	if (n > 0 && g->log_fd >= 0 &&
	    write(g->log_fd, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) < 0) {
		/* best effort, as every log line */
	}
}

/* Every vCPU gets CPUID; the boot vCPU (0) alone starts at the kernel's
 * entry, the others wait in KVM for the INIT and SIPI the kernel sends
 * them through its LAPIC (the MADT names them). */
static int guest_create_linux_vcpus(struct guest *g, struct fv_error *err)
{
	if (guest_alloc_vcpus(g, err))
		return -1;
	for (unsigned i = 0; i < g->cfg.nr_vcpus; i++) {
		if (vcpu_create(&g->vcpus[i], g, i, err) ||
		    x86_linux_setup_cpuid(g->vcpus[i].fd, g->kvm->cpuid, i,
					  g->cfg.nr_vcpus, err) ||
		    (i > 0 && x86_linux_setup_ap(g->vcpus[i].fd, err)))
			return -1;
	}
	return x86_linux_setup_vcpu(g->vcpus[0].fd, g->boot.entry,
				    g->boot.zero_page, err);
}

/* COM1 (16550A, PNP0501) as the DSDT describes it. */
static void guest_serial_acpi(struct acpi_device *d)
{
	memset(d, 0, sizeof(*d));
	memcpy(d->name, "COM1", sizeof("COM1"));
	memcpy(d->hid, "PNP0501", sizeof("PNP0501"));
	d->uid = 1;
	d->nr_res = 2;
	d->res[0] = (struct acpi_resource){ .kind = ACPI_RES_IO,
		.base = FV_SERIAL_PORT, .len = SERIAL_NR_PORTS };
	/*
	 * Level-triggered, not the ISA bus's edge.  Linux's 8250 driver loops
	 * in its handler until IIR says no interrupt, but gives up after 512
	 * passes (PASS_LIMIT in 8250_core.c) with the cause still pending.
	 * This UART is infinitely fast both ways (THRE re-arms at each THR
	 * write, queued console input refills the FIFO at each RBR read), so
	 * input and output together could keep the handler busy for that
	 * long (not seen yet: a hazard, docs/console.md); on an
	 * edge-triggered pin the line would then stay up with no new edge
	 * and the port would never interrupt again (the 8250 driver's comment:
	 * "since ISA irqs are edge triggered, no more IRQs will be seen").
	 * A level-triggered pin is delivered again after the EOI while the
	 * line is up, so the handler simply runs once more.  With an
	 * Interrupt() descriptor (not IRQ()) Linux takes the trigger from
	 * _CRS, as for the virtio windows' level GSIs 5 and up.
	 */
	d->res[1] = (struct acpi_resource){ .kind = ACPI_RES_IRQ_LEVEL,
		.irq = GUEST_SERIAL_IRQ };
}

/* The ACPI tables: a LAPIC per vCPU, COM1, every virtio window. */
static int guest_write_acpi(struct guest *g, struct fv_error *err)
{
	struct acpi_device dev[1 + FV_VIRTIO_MAX_DEVICES];
	struct acpi_config cfg = {
		.nr_cpus = g->cfg.nr_vcpus,
		.sleep_port = ACPI_SLEEP_PORT,
		.devices = dev,
	};

	guest_serial_acpi(&dev[0]);
	cfg.nr_devices = 1 + guest_virtio_acpi(g, &dev[1], FV_VIRTIO_MAX_DEVICES);
	return x86_linux_write_acpi(&g->mem, &cfg, &g->acpi, err);
}

/* What the guest's log says of the tables. */
static void guest_log_acpi(struct guest *g)
{
	char line[256];

	snprintf(line, sizeof(line),
		 "foldvm: ACPI RSDP at 0x%llx, MADT: %u CPUs, DSDT: COM1 and %u virtio-mmio devices (LNRO0005); %zu bytes of tables\n",
		 (unsigned long long)ACPI_AREA_GPA, g->cfg.nr_vcpus, g->nr_virtio,
		 g->acpi.used);
	if (g->log_fd >= 0 && write(g->log_fd, line, strlen(line)) < 0) {
		/* best effort, as every log line */
	}
}

/*
 * Guest RAM: a guest of a named trust domain (domain=) in a process whose
 * engine merges in place maps the domain's home file - whether dedup is on
 * now or may be later (QMP dedup-set): merges in place need every guest of
 * the domain on one file, from the start (memory/home.c).  Any other guest
 * has anonymous memory: a guest without domain= shares content with no
 * other, and a guest KSM merges is the baseline.  The home's price is
 * paid by every first write to a never-written page, a copy of the zero
 * page instead of a fresh page (docs/dedup.md).
 */
static bool guest_mem_in_home(const struct guest *g, const struct dedup_engine *dedup)
{
	return !g->cfg.ksm && dedup && dedup_in_place(dedup) && *g->cfg.domain;
}

/* A Linux guest's RAM is laid out as a PC's (below the 32-bit hole, the
 * rest from 4 GiB); a test guest's is flat from 0 (its payload and page
 * tables expect that; with devices it must end below their windows,
 * x86_cpl3_setup_memory checks). */
static int guest_create_mem(struct guest *g, bool in_home, struct fv_error *err)
{
	enum gmem_layout layout = guest_config_is_linux(&g->cfg) ? GMEM_LAYOUT_PC :
				  GMEM_LAYOUT_FLAT;

	return gmem_create_layout(&g->mem, g->vm_fd, g->cfg.mem_size, layout,
				  in_home ? g->cfg.domain : NULL, err);
}

/* A Linux guest: irqchip and PIT before any vCPU, the kernel loaded and
 * checked before a vCPU exists. */
static int guest_build_linux(struct guest *g, bool in_home, struct fv_error *err)
{
	static __thread char cmdline[LINUX_CMDLINE_MAX + 1];
	struct linux_boot_config bc = {
		.kernel = g->cfg.kernel,
		.initrd = g->cfg.initrd,
		.cmdline = cmdline,
	};

	/* The DSDT names the devices; the command line too only when asked
	 * (a kernel with CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES would otherwise
	 * register each twice). */
	snprintf(cmdline, sizeof(cmdline), "%s", g->cfg.cmdline);
	if (x86_linux_setup_vm(g->vm_fd, err) ||
	    guest_create_mem(g, in_home, err) ||
	    guest_setup_devices(g, err) ||
	    guest_virtio_setup(g, err) ||
	    (g->cfg.virtio_cmdline &&
	     guest_virtio_cmdline(g, cmdline, sizeof(cmdline), err)) ||
	    guest_write_acpi(g, err))
		return -1;
	bc.acpi_rsdp = ACPI_AREA_GPA;
	if (linux_boot_load(&g->mem, &bc, &g->boot, err))
		return -1;
	if (g->nr_virtio && !g->cfg.virtio_cmdline && strstr(cmdline, "acpi=off"))
		guest_log_message(g, 0, "the command line says acpi=off: the kernel will not see the virtio devices the ACPI tables describe (virtio-cmdline=on names them on the command line)");
	guest_log_boot(g, cmdline);
	guest_log_acpi(g);
	return guest_create_linux_vcpus(g, err);
}

static int guest_build(struct guest *g, const struct blob *blob,
		       const char *log_dir, bool in_home, struct fv_error *err)
{
	if (g->cfg.nr_vcpus == 0 || g->cfg.nr_vcpus > FV_MAX_VCPUS ||
	    (int)g->cfg.nr_vcpus > g->kvm->max_vcpus)
		return fv_err(err, FV_E_INVAL, "%u vCPUs requested, 1..%d supported",
			      g->cfg.nr_vcpus,
			      g->kvm->max_vcpus < (int)FV_MAX_VCPUS ?
			      g->kvm->max_vcpus : (int)FV_MAX_VCPUS);
	if (guest_open_log(g, log_dir, err))
		return -1;
	g->vm_fd = kvm_vm_create(g->kvm, err);
	if (g->vm_fd < 0)
		return -1;
	if (guest_config_is_linux(&g->cfg))
		return guest_build_linux(g, in_home, err);
	if (guest_create_mem(g, in_home, err) ||
	    guest_setup_devices(g, err) ||
	    guest_virtio_setup(g, err) ||
	    payload_load(&g->mem, g->cfg.payload, err) ||
	    x86_cpl3_setup_memory(&g->mem, g->nr_virtio ? FV_VIRTIO_MMIO_GPA : 0,
				  err) ||
	    guest_create_vcpus(g, err) ||
	    guest_setup_layout(g, blob, err))
		return -1;
	return 0;
}

int guest_join_dedup(struct guest *g, struct dedup_engine *dedup,
		     struct fv_error *err)
{
	g->dedup = dedup;
	if (dedup_add_guest(dedup, &g->mem, g->cfg.name, g->cfg.domain,
			    &g->dedup_guest, err))
		return -1;
	dedup_guest_set_rate(dedup, g->dedup_guest, g->cfg.dedup_rate);
	return 0;
}

static int guest_attach_dedup(struct guest *g, struct dedup_engine *dedup,
			      struct fv_error *err)
{
	if (g->cfg.ksm)
		return gmem_ksm_enable(&g->mem, err);
	if (!g->cfg.dedup)
		return 0;
	if (!dedup)
		return fv_err(err, FV_E_STATE, "dedup asked for, but no engine");
	return guest_join_dedup(g, dedup, err);
}

int guest_create(struct guest **out, struct kvm_sys *kvm,
		 const struct guest_config *cfg, const struct blob *blob,
		 struct dedup_engine *dedup, const char *log_dir,
		 struct fv_error *err)
{
	struct guest *g = calloc(1, sizeof(*g));

	*out = NULL;
	if (!g)
		return fv_err(err, FV_E_NOMEM, "cannot allocate guest");
	g->cfg = *cfg;
	g->kvm = kvm;
	g->vm_fd = -1;
	g->log_fd = -1;
	g->mem.vm_fd = -1;
	g->state = GUEST_CREATED;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	if (guest_build(g, blob, log_dir, guest_mem_in_home(g, dedup), err) ||
	    guest_attach_dedup(g, dedup, err)) {
		fv_err_prefix(err, "guest %s: ", cfg->name);
		guest_destroy(g);
		return -1;
	}
	*out = g;
	return 0;
}

static void guest_notify(struct guest *g, enum guest_state old_state,
			 enum guest_state new_state, const char *reason)
{
	/* A final state never changes again: only moves out of a live one count. */
	if (g->on_state && old_state != new_state && guest_state_is_live(old_state))
		g->on_state(g->on_state_opaque, g, old_state, new_state, reason);
}

int guest_start(struct guest *g, struct fv_error *err)
{
	pthread_mutex_lock(&g->lock);
	if (g->state != GUEST_CREATED) {
		pthread_mutex_unlock(&g->lock);
		return fv_err(err, FV_E_STATE, "guest %s is %s, not created",
			      g->cfg.name, guest_state_name(g->state));
	}
	g->state = GUEST_RUNNING;
	pthread_mutex_unlock(&g->lock);
	guest_notify(g, GUEST_CREATED, GUEST_RUNNING, "started");
	for (unsigned i = 0; i < g->cfg.nr_vcpus; i++) {
		if (vcpu_start(&g->vcpus[i], err)) {
			guest_fail(g, "cannot start vCPU %u: %s", i, err->msg);
			return -1;
		}
	}
	return 0;
}

/* Make every vCPU leave KVM_RUN soon; caller holds g->lock. */
static void guest_kick_all_locked(struct guest *g)
{
	for (unsigned i = 0; i < g->cfg.nr_vcpus; i++)
		vcpu_kick_locked(&g->vcpus[i]);
}

static bool guest_any_in_run_locked(struct guest *g)
{
	for (unsigned i = 0; i < g->cfg.nr_vcpus; i++)
		if (g->vcpus[i].in_run)
			return true;
	return false;
}

int guest_pause(struct guest *g, struct fv_error *err)
{
	bool changed = false;
	int ret = 0;

	pthread_mutex_lock(&g->lock);
	if (g->state == GUEST_RUNNING) {
		g->state = GUEST_PAUSED;
		changed = true;
		guest_kick_all_locked(g);
		while (g->state == GUEST_PAUSED && guest_any_in_run_locked(g))
			pthread_cond_wait(&g->cond, &g->lock);
	} else if (g->state != GUEST_PAUSED) {
		ret = fv_err(err, FV_E_STATE, "guest %s is %s, cannot pause",
			     g->cfg.name, guest_state_name(g->state));
	}
	pthread_mutex_unlock(&g->lock);
	if (changed)
		guest_notify(g, GUEST_RUNNING, GUEST_PAUSED, "paused");
	return ret;
}

int guest_resume(struct guest *g, struct fv_error *err)
{
	bool changed = false;
	int ret = 0;

	pthread_mutex_lock(&g->lock);
	if (g->state == GUEST_PAUSED) {
		g->state = GUEST_RUNNING;
		changed = true;
		pthread_cond_broadcast(&g->cond);
	} else if (g->state != GUEST_RUNNING) {
		ret = fv_err(err, FV_E_STATE, "guest %s is %s, cannot resume",
			     g->cfg.name, guest_state_name(g->state));
	}
	pthread_mutex_unlock(&g->lock);
	if (changed)
		guest_notify(g, GUEST_PAUSED, GUEST_RUNNING, "resumed");
	return ret;
}

/* Move to a final state once; the first reason wins.  Returns the state
 * it left, or the final state itself when it was final already. */
static enum guest_state guest_end_locked(struct guest *g, enum guest_state state,
					 const char *reason)
{
	enum guest_state old = g->state;

	if (!guest_state_is_live(g->state))
		return g->state;
	g->state = state;
	snprintf(g->reason, sizeof(g->reason), "%s", reason);
	guest_kick_all_locked(g);
	pthread_cond_broadcast(&g->cond);
	return old;
}

/* Move to a final state, then tell the test device's waiters and the
 * state listener (outside the lock).  The first reason wins. */
static void guest_end(struct guest *g, enum guest_state state, const char *reason)
{
	enum guest_state old;
	char why[512];

	pthread_mutex_lock(&g->lock);
	old = guest_end_locked(g, state, reason);
	snprintf(why, sizeof(why), "%s", g->reason);
	pthread_mutex_unlock(&g->lock);
	testdev_cancel(&g->testdev, why);
	guest_notify(g, old, state, why);
}

void guest_stop(struct guest *g, const char *reason)
{
	guest_end(g, GUEST_STOPPED, reason ? reason : "stopped by host");
}

void guest_exit(struct guest *g, const char *reason)
{
	guest_end(g, GUEST_SHUTDOWN, reason);
}

void guest_fail(struct guest *g, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	guest_end(g, GUEST_FAILED, reason);
}

void guest_vcpu_exited(struct guest *g, struct vcpu *v)
{
	enum guest_state old = GUEST_SHUTDOWN;
	bool last;

	pthread_mutex_lock(&g->lock);
	v->exited = true;
	v->in_run = false;
	last = --g->vcpus_alive == 0;
	if (last)
		old = guest_end_locked(g, GUEST_SHUTDOWN, "guest exited");
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	if (last) {
		testdev_cancel(&g->testdev, "guest exited");
		guest_notify(g, old, GUEST_SHUTDOWN, "guest exited");
	}
}

int guest_wait(struct guest *g, int timeout_ms)
{
	struct timespec deadline;
	int rc = 0;

	if (timeout_ms >= 0)
		fv_deadline_after(&deadline, CLOCK_REALTIME, timeout_ms);
	pthread_mutex_lock(&g->lock);
	while (g->vcpus_alive > 0 && rc != ETIMEDOUT) {
		if (timeout_ms >= 0)
			rc = pthread_cond_timedwait(&g->cond, &g->lock, &deadline);
		else
			pthread_cond_wait(&g->cond, &g->lock);
	}
	rc = g->vcpus_alive > 0 ? -1 : 0;
	pthread_mutex_unlock(&g->lock);
	return rc;
}

enum guest_state guest_get_state(struct guest *g, char *reason, size_t len)
{
	enum guest_state s;

	pthread_mutex_lock(&g->lock);
	s = g->state;
	if (reason && len)
		snprintf(reason, len, "%s", g->reason);
	pthread_mutex_unlock(&g->lock);
	return s;
}

void guest_destroy(struct guest *g)
{
	if (!g)
		return;
	if (g->vcpus) {
		guest_stop(g, "destroyed");
		guest_wait(g, -1);
		for (unsigned i = 0; i < g->cfg.nr_vcpus; i++)
			vcpu_destroy(&g->vcpus[i]);
		free(g->vcpus);
	}
	/* Devices' own threads (virtio-net's receive) write guest RAM: they
	 * stop before the engine lets go of it. */
	guest_virtio_destroy(g);
	/* The engine lets go of the RAM before it is unmapped. */
	if (g->dedup_guest)
		dedup_remove_guest(g->dedup, g->dedup_guest);
	testdev_destroy(&g->testdev);
	if (g->serial_ready)
		serial_destroy(&g->serial);
	gmem_destroy(&g->mem);
	if (g->vm_fd >= 0)
		close(g->vm_fd);
	if (g->log_fd >= 0)
		close(g->log_fd);
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
	free(g);
}
