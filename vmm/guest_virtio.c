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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	if (guest_config_is_linux(&g->cfg)) {
		g->virtio_irq[i].g = g;
		g->virtio_irq[i].irq = FV_VIRTIO_IRQ_BASE + i;
		t->set_irq = guest_virtio_irq;
		t->irq_opaque = &g->virtio_irq[i];
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
	return 0;
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

void guest_virtio_destroy(struct guest *g)
{
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
