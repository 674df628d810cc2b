/*
 * guest_virtio.c - a guest's virtio-mmio devices.
 *
 * Windows are laid out from FV_VIRTIO_MMIO_GPA in a fixed order (disk,
 * then the others as they come), so a driver finds device i at window i
 * and the Linux command line names the same addresses.  Interrupts: a
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
#include "vmm/guest_virtio.h"

unsigned guest_virtio_count(const struct guest_config *cfg)
{
	return (cfg->disk[0] != '\0') + cfg->balloon;
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
	/* The windows' order: disk, network, balloon. */
	if (g->cfg.disk[0] && guest_virtio_disk(g, err))
		return -1;
	if (g->cfg.balloon && guest_virtio_balloon(g, err))
		return -1;
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
	if (g->balloon) {
		virtio_balloon_destroy(g->balloon);
		free(g->balloon);
		g->balloon = NULL;
	}
	g->nr_virtio = 0;
}
