/*
 * guest_virtio.c - a guest's virtio-mmio devices.
 *
 * Windows are laid out from FV_VIRTIO_MMIO_GPA in a fixed order (disk,
 * net, then the others as they come: kinds[] below), so a driver finds
 * device i at window i and the Linux command line names the same
 * addresses.  Interrupts: a
 * device's line is level-triggered, driven with KVM_IRQ_LINE on the
 * in-kernel PIC/IOAPIC a Linux guest has; test guests have no irqchip and
 * their drivers poll the used ring, so their devices get no line.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include "devices/virtio_balloon.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_net.h"
#include "vmm/guest_virtio.h"

static bool wants_disk(const struct guest_config *cfg)
{
	return cfg->disk[0] != '\0';
}

static bool wants_net(const struct guest_config *cfg)
{
	return cfg->net;
}

static bool wants_balloon(const struct guest_config *cfg)
{
	return cfg->balloon;
}

static int guest_virtio_disk(struct guest *g, struct fv_error *err);
static int guest_virtio_net(struct guest *g, struct fv_error *err);
static int guest_virtio_balloon(struct guest *g, struct fv_error *err);

/* The devices in window order: a device a config asks for takes the next
 * window.  New kinds go at the end, so that the windows of a config that
 * does not ask for them stay where they were. */
static const struct {
	bool (*wanted)(const struct guest_config *cfg);
	int (*setup)(struct guest *g, struct fv_error *err);
} kinds[] = {
	{ wants_disk, guest_virtio_disk },
	{ wants_net, guest_virtio_net },
	{ wants_balloon, guest_virtio_balloon },
};

unsigned guest_virtio_count(const struct guest_config *cfg)
{
	unsigned n = 0;

	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		n += kinds[k].wanted(cfg);
	return n;
}

static void guest_virtio_irq(void *opaque, int level)
{
	struct guest_irq_line *l = opaque;
	struct kvm_irq_level irq = { .irq = l->irq, .level = (uint32_t)level };

	if (ioctl(l->g->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		guest_log_message(l->g, 0, "KVM_IRQ_LINE for a virtio device failed");
}

/* Level-triggered through an irqfd with a resample fd: a write asserts
 * the line; KVM lowers it when the guest ends the interrupt (EOI) and
 * signals the resample fd, where the notification thread raises it again
 * if the device still has InterruptStatus bits (irq_resampled). */
static void guest_virtio_irqfd(void *opaque, int level)
{
	struct guest_irq_line *l = opaque;
	uint64_t one = 1;

	if (level && write(l->irqfd, &one, sizeof(one)) != sizeof(one))
		guest_log_message(l->g, 0, "an irqfd write for a virtio device failed");
}

/* The guest ended line l's interrupt: still pending, raise it again. */
static void irq_resampled(struct guest_irq_line *l)
{
	uint64_t v;

	if (read(l->resamplefd, &v, sizeof(v)) != sizeof(v))
		return;
	virtio_mmio_lock(l->t);
	if (l->t->isr)
		guest_virtio_irqfd(l, 1);
	virtio_mmio_unlock(l->t);
}

/* Line l through an irqfd if KVM takes one (KVM_IRQFD with resample),
 * else KVM_IRQ_LINE from whichever thread changes the level. */
static void guest_virtio_line(struct guest *g, struct guest_irq_line *l)
{
	struct kvm_irqfd f = { .gsi = l->irq, .flags = KVM_IRQFD_FLAG_RESAMPLE };
	char line[128];

	l->irqfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	l->resamplefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f.fd = (uint32_t)l->irqfd;
	f.resamplefd = (uint32_t)l->resamplefd;
	if (l->irqfd >= 0 && l->resamplefd >= 0 && ioctl(g->vm_fd, KVM_IRQFD, &f) == 0) {
		l->t->set_irq = guest_virtio_irqfd;
		snprintf(line, sizeof(line), "%s: IRQ %u through an irqfd", l->t->ops->name, l->irq);
	} else {
		if (l->irqfd >= 0)
			close(l->irqfd);
		if (l->resamplefd >= 0)
			close(l->resamplefd);
		l->irqfd = l->resamplefd = -1;
		l->t->set_irq = guest_virtio_irq;
		snprintf(line, sizeof(line), "%s: IRQ %u through KVM_IRQ_LINE (no irqfd)",
			 l->t->ops->name, l->irq);
	}
	l->t->irq_opaque = l;
	guest_log_message(g, 0, line);
}

static void guest_virtio_line_free(struct guest *g, struct guest_irq_line *l)
{
	struct kvm_irqfd f = { .gsi = l->irq, .flags = KVM_IRQFD_FLAG_DEASSIGN };

	if (l->irqfd < 0)
		return;
	f.fd = (uint32_t)l->irqfd;
	ioctl(g->vm_fd, KVM_IRQFD, &f);
	close(l->irqfd);
	close(l->resamplefd);
	l->irqfd = l->resamplefd = -1;
}

static void guest_virtio_log(void *opaque, const char *msg)
{
	guest_log_message(opaque, 0, msg);
}

static void mmio_to_virtio(void *opaque, uint64_t off, bool is_write,
			   uint8_t *data, unsigned len)
{
	virtio_mmio_access(opaque, off, is_write, data, len);
}

/* Window i for transport t: its bus entry, its log and its line. */
static int guest_virtio_attach(struct guest *g, struct virtio_mmio *t,
			       const char *name, struct fv_error *err)
{
	unsigned i = g->nr_virtio;

	if (mmio_register(&g->mmio, t->base, FV_VIRTIO_MMIO_SIZE, mmio_to_virtio,
			  t, name, err))
		return -1;
	t->log = guest_virtio_log;
	t->log_opaque = g;
	g->virtio_irq[i].irqfd = g->virtio_irq[i].resamplefd = -1;
	if (guest_config_is_linux(&g->cfg)) {
		g->virtio_irq[i].g = g;
		g->virtio_irq[i].t = t;
		g->virtio_irq[i].irq = FV_VIRTIO_IRQ_BASE + i;
		guest_virtio_line(g, &g->virtio_irq[i]);
	}
	g->nr_virtio++;
	return 0;
}

static uint64_t next_window(const struct guest *g)
{
	return FV_VIRTIO_MMIO_GPA + g->nr_virtio * FV_VIRTIO_MMIO_SIZE;
}

static int guest_virtio_disk(struct guest *g, struct fv_error *err)
{
	char id[VIRTIO_BLK_ID_BYTES + 1];

	g->blk = calloc(1, sizeof(*g->blk));
	if (!g->blk)
		return fv_err(err, FV_E_NOMEM, "cannot allocate virtio-blk");
	g->blk->fd = -1;
	/* GET_ID: the guest's name, as QEMU answers a drive's serial. */
	snprintf(id, sizeof(id), "%.20s", g->cfg.name);
	if (virtio_blk_init(g->blk, g->cfg.disk, g->cfg.disk_ro, id, &g->mem,
			    next_window(g), err))
		return -1;
	return guest_virtio_attach(g, &g->blk->transport, "virtio-blk", err);
}

/* The tap: the one the worker opened for this guest before its sandbox
 * (guest_virtio_preopen), else opened now. */
static int guest_virtio_tap(struct guest *g, bool *created, struct fv_error *err)
{
	int fd = virtio_net_tap_take(g->cfg.name, g->cfg.net_tap, created);

	if (fd >= 0)
		return fd;
	return virtio_net_tap_open(g->cfg.net_tap, created, err);
}

static int guest_virtio_net(struct guest *g, struct fv_error *err)
{
	char mac[32], line[160];
	bool created;
	int fd;

	g->net = calloc(1, sizeof(*g->net));
	if (!g->net)
		return fv_err(err, FV_E_NOMEM, "cannot allocate virtio-net");
	g->net->fd = g->net->wake_fd = -1;
	fd = guest_virtio_tap(g, &created, err);
	if (fd < 0)
		return -1;
	if (virtio_net_init_fd(g->net, fd, g->cfg.mac, &g->mem, next_window(g), err) ||
	    guest_virtio_attach(g, &g->net->transport, "virtio-net", err) ||
	    virtio_net_start(g->net, err))
		return -1;
	fv_mac_format(g->cfg.mac, mac, sizeof(mac));
	snprintf(line, sizeof(line), "virtio-net on tap %s (%s), MAC %s",
		 g->cfg.net_tap, created ? "created by foldvm, gone when it ends" :
		 "attached", mac);
	guest_log_message(g, 0, line);
	return 0;
}

static int guest_virtio_balloon(struct guest *g, struct fv_error *err)
{
	g->balloon = calloc(1, sizeof(*g->balloon));
	if (!g->balloon)
		return fv_err(err, FV_E_NOMEM, "cannot allocate virtio-balloon");
	if (virtio_balloon_init(g->balloon, &g->mem, next_window(g), err) ||
	    (g->cfg.balloon_target &&
	     virtio_balloon_set_target(g->balloon, g->cfg.balloon_target, err)))
		return -1;
	return guest_virtio_attach(g, &g->balloon->transport, "virtio-balloon", err);
}

/* ---- notifications without an exit (KVM_IOEVENTFD) ---- */

#define KICKS_MAX (FV_VIRTIO_MAX_DEVICES * VIRTIO_MMIO_MAX_QUEUES)

/*
 * One eventfd per queue of every device, which KVM signals when the guest
 * writes that queue's index to the window's QueueNotify, without leaving
 * the guest; one thread per guest serves them (virtio_mmio_kick, under the
 * device's lock, as the MMIO exit would).  A write KVM does not match (any
 * other value, or a kernel without ioeventfd) still exits and is served on
 * the vCPU: both ways meet in the transport's notify.
 */
struct guest_kicks {
	struct kick {
		int fd;
		struct virtio_mmio *t;
		unsigned q;
	} k[KICKS_MAX];
	unsigned n;
	struct guest_irq_line *line[FV_VIRTIO_MAX_DEVICES];  /* with irqfds */
	unsigned nr_lines;
	int stop_fd;
	int vm_fd;
	pthread_t thread;
	bool started;
};

static int kick_assign(int vm_fd, const struct kick *k, bool deassign)
{
	struct kvm_ioeventfd io = {
		.datamatch = k->q,
		.addr = k->t->base + VIRTIO_MMIO_QUEUE_NOTIFY,
		.len = 4,
		.fd = k->fd,
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH |
			 (deassign ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0),
	};

	return ioctl(vm_fd, KVM_IOEVENTFD, &io);
}

static void *kick_thread(void *arg)
{
	struct guest_kicks *ks = arg;
	struct pollfd p[KICKS_MAX + FV_VIRTIO_MAX_DEVICES + 1];
	unsigned stop = ks->n + ks->nr_lines;
	sigset_t set;

	/* The process's signals are not this thread's (as the devices'
	 * threads: SIGSYS stays open for the sandbox's report). */
	sigfillset(&set);
	sigdelset(&set, SIGSYS);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	for (unsigned i = 0; i < ks->n; i++)
		p[i] = (struct pollfd){ .fd = ks->k[i].fd, .events = POLLIN };
	for (unsigned i = 0; i < ks->nr_lines; i++)
		p[ks->n + i] = (struct pollfd){ .fd = ks->line[i]->resamplefd,
						.events = POLLIN };
	p[stop] = (struct pollfd){ .fd = ks->stop_fd, .events = POLLIN };
	for (;;) {
		if (poll(p, stop + 1, -1) < 0)
			continue;               /* EINTR */
		if (p[stop].revents)
			return NULL;
		for (unsigned i = 0; i < ks->nr_lines; i++)
			if (p[ks->n + i].revents & POLLIN)
				irq_resampled(ks->line[i]);
		for (unsigned i = 0; i < ks->n; i++) {
			uint64_t v;

			/* One serve for any number of writes since the last:
			 * notify takes every chain available. */
			if ((p[i].revents & POLLIN) &&
			    read(ks->k[i].fd, &v, sizeof(v)) == sizeof(v))
				virtio_mmio_kick(ks->k[i].t, ks->k[i].q);
		}
	}
}

static void kicks_free(struct guest_kicks *ks)
{
	if (ks->started) {
		uint64_t one = 1;

		if (write(ks->stop_fd, &one, sizeof(one)) != sizeof(one))
			(void)0;        /* an eventfd write of 1 cannot fail */
		pthread_join(ks->thread, NULL);
	}
	for (unsigned i = 0; i < ks->n; i++) {
		kick_assign(ks->vm_fd, &ks->k[i], true);
		close(ks->k[i].fd);
	}
	if (ks->stop_fd >= 0)
		close(ks->stop_fd);
	free(ks);
}

/* An ioeventfd for every queue of every window: 0, or 1 when KVM refused
 * one (then none is kept: one way for every queue), -1 on an eventfd
 * failure. */
static int kicks_assign_all(struct guest *g, struct guest_kicks *ks,
			    struct fv_error *err)
{
	/* Every window on the bus is a virtio transport (guest_virtio_attach). */
	for (unsigned w = 0; w < g->mmio.nr; w++) {
		struct virtio_mmio *t = g->mmio.ranges[w].opaque;

		for (unsigned q = 0; q < t->ops->nr_queues; q++) {
			struct kick *k = &ks->k[ks->n];

			k->t = t;
			k->q = q;
			k->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
			if (k->fd < 0)
				return fv_err_errno(err, FV_E_SYS, errno, "eventfd");
			if (kick_assign(g->vm_fd, k, false) < 0) {
				close(k->fd);
				for (unsigned i = 0; i < ks->n; i++) {
					kick_assign(ks->vm_fd, &ks->k[i], true);
					close(ks->k[i].fd);
				}
				ks->n = 0;
				guest_log_message(g, 0, "virtio: KVM_IOEVENTFD refused; queue notifications exit to foldvm");
				return 1;
			}
			ks->n++;
		}
	}
	return 0;
}

/* The notification thread: the queues' ioeventfds and the irqfd lines'
 * resample fds.  Where KVM refuses ioeventfds notifications keep exiting
 * (a line in the guest's log says so); with neither, no thread. */
static int guest_virtio_kicks(struct guest *g, struct fv_error *err)
{
	struct guest_kicks *ks;
	int e;

	if (g->vm_fd < 0 || !g->nr_virtio)
		return 0;
	ks = calloc(1, sizeof(*ks));
	if (!ks)
		return fv_err(err, FV_E_NOMEM, "cannot allocate ioeventfds");
	ks->vm_fd = g->vm_fd;
	ks->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (ks->stop_fd < 0) {
		e = errno;
		kicks_free(ks);
		return fv_err_errno(err, FV_E_SYS, e, "eventfd");
	}
	if (kicks_assign_all(g, ks, err) < 0) {
		kicks_free(ks);
		return -1;
	}
	for (unsigned i = 0; i < g->nr_virtio; i++)
		if (g->virtio_irq[i].irqfd >= 0)
			ks->line[ks->nr_lines++] = &g->virtio_irq[i];
	if (!ks->n && !ks->nr_lines) {
		kicks_free(ks);
		return 0;
	}
	e = pthread_create(&ks->thread, NULL, kick_thread, ks);
	if (e) {
		kicks_free(ks);
		return fv_err_errno(err, FV_E_SYS, e, "cannot start the virtio notification thread");
	}
	ks->started = true;
	g->kicks = ks;
	return 0;
}

int guest_virtio_setup(struct guest *g, struct fv_error *err)
{
	if (!guest_virtio_count(&g->cfg))
		return 0;
	if (g->cfg.mem_size > FV_VIRTIO_MMIO_GPA)
		return fv_err(err, FV_E_INVAL,
			      "a guest with virtio devices has at most %llu MiB of RAM (its device windows are at 0x%llx)",
			      (unsigned long long)(FV_VIRTIO_MMIO_GPA >> 20),
			      (unsigned long long)FV_VIRTIO_MMIO_GPA);
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		if (kinds[k].wanted(&g->cfg) && kinds[k].setup(g, err))
			return -1;
	return guest_virtio_kicks(g, err);
}

int guest_virtio_preopen(const struct guest_config *cfg, struct fv_error *err)
{
	if (!cfg->net)
		return 0;
	if (virtio_net_tap_preopen(cfg->name, cfg->net_tap, err)) {
		fv_err_prefix(err, "guest %s: ", cfg->name);
		return -1;
	}
	return 0;
}

int guest_virtio_cmdline(const struct guest *g, char *cmdline, size_t len,
			 struct fv_error *err)
{
	for (unsigned i = 0; i < g->nr_virtio; i++) {
		size_t used = strlen(cmdline);
		int n = snprintf(cmdline + used, len - used,
				 " virtio_mmio.device=4K@0x%llx:%u",
				 (unsigned long long)(FV_VIRTIO_MMIO_GPA +
						      i * FV_VIRTIO_MMIO_SIZE),
				 FV_VIRTIO_IRQ_BASE + i);

		if (n < 0 || (size_t)n >= len - used) {
			cmdline[used] = '\0';
			return fv_err(err, FV_E_INVAL,
				      "the kernel command line has no room for the virtio devices");
		}
	}
	return 0;
}

unsigned guest_virtio_acpi(const struct guest *g, struct acpi_device *out,
			   unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < g->nr_virtio && n < max; i++, n++) {
		/* Window i is the bus's range i (guest_virtio_attach). */
		const struct mmio_range *w = &g->mmio.ranges[i];
		struct acpi_device *d = &out[n];

		memset(d, 0, sizeof(*d));
		snprintf(d->name, sizeof(d->name), "VR%02u", i % 100);
		memcpy(d->hid, "LNRO0005", sizeof("LNRO0005"));
		d->uid = i;
		d->nr_res = 2;
		d->res[0] = (struct acpi_resource){ .kind = ACPI_RES_MEM32,
			.base = w->base, .len = w->len };
		/* The line guest_virtio_attach gave it: what its irqfd or
		 * KVM_IRQ_LINE raises. */
		d->res[1] = (struct acpi_resource){ .kind = ACPI_RES_IRQ_LEVEL,
			.irq = g->virtio_irq[i].irq };
	}
	return n;
}

void guest_virtio_destroy(struct guest *g)
{
	/* The notification thread first: it reaches into the devices. */
	if (g->kicks) {
		kicks_free(g->kicks);
		g->kicks = NULL;
	}
	for (unsigned i = 0; i < g->nr_virtio; i++)
		guest_virtio_line_free(g, &g->virtio_irq[i]);
	if (g->blk) {
		virtio_blk_destroy(g->blk);
		free(g->blk);
		g->blk = NULL;
	}
	if (g->net) {
		virtio_net_destroy(g->net);
		free(g->net);
		g->net = NULL;
	}
	if (g->balloon) {
		virtio_balloon_destroy(g->balloon);
		free(g->balloon);
		g->balloon = NULL;
	}
	g->nr_virtio = 0;
}
