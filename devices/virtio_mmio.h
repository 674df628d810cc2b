/*
 * virtio_mmio.h - the virtio-mmio transport (virtio 1.x, 4.2: the modern
 * register layout, Version 2 only), one 4 KiB window per device.
 *
 * The transport owns the registers, the feature negotiation, the queues'
 * configuration and the interrupt status; a device model (virtio_blk.c,
 * ...) supplies its ID, features, config space and what a queue
 * notification does.  One mutex serialises a device: vCPU accesses (MMIO
 * exits) and the device's own threads (virtio_mmio_lock).  The interrupt
 * line goes out through a callback (KVM_IRQ_LINE or an irqfd in the VMM,
 * nothing for test guests, whose drivers poll).
 */
#ifndef FOLDVM_VIRTIO_MMIO_H
#define FOLDVM_VIRTIO_MMIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "devices/virtqueue.h"
#include "lib/error.h"
#include "memory/guest_mem.h"

#define VIRTIO_MMIO_WINDOW 0x1000u
#define VIRTIO_MMIO_MAX_QUEUES 4u
#define VIRTIO_MMIO_MAGIC 0x74726976u   /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x444c4f46u  /* "FOLD" */

/* Registers (4.2.2) */
#define VIRTIO_MMIO_MAGIC_VALUE 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_VENDOR_ID 0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100

/* Device status bits (2.1) */
#define VIRTIO_STATUS_ACKNOWLEDGE 1u
#define VIRTIO_STATUS_DRIVER 2u
#define VIRTIO_STATUS_DRIVER_OK 4u
#define VIRTIO_STATUS_FEATURES_OK 8u
#define VIRTIO_STATUS_NEEDS_RESET 0x40u
#define VIRTIO_STATUS_FAILED 0x80u

/* InterruptStatus bits (4.2.2) */
#define VIRTIO_MMIO_INT_VRING 1u
#define VIRTIO_MMIO_INT_CONFIG 2u

/* Feature bits every device offers (6) */
#define VIRTIO_F_VERSION_1 32

/* Device IDs (5) */
#define VIRTIO_ID_NET 1u
#define VIRTIO_ID_BLOCK 2u
#define VIRTIO_ID_BALLOON 5u

struct virtio_mmio;

/* Config space and device headers are little-endian (virtio 1.x, 1.4);
 * written and read byte by byte, whatever the host's order. */
static inline void virtio_put_le(uint8_t *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t virtio_get_le(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

struct virtio_device_ops {
	const char *name;           /* "virtio-blk", for messages */
	uint32_t device_id;
	unsigned nr_queues;         /* <= VIRTIO_MMIO_MAX_QUEUES */
	uint16_t queue_max;         /* <= VIRTQ_MAX_SIZE */
	uint32_t config_len;        /* bytes of device config space */
	/* Copy config bytes [off, off + len) (inside config_len) out / in. */
	void (*config_read)(void *dev, uint32_t off, uint8_t *buf, unsigned len);
	void (*config_write)(void *dev, uint32_t off, const uint8_t *buf,
			     unsigned len);          /* NULL: read-only config */
	/* Queue q was notified, or became ready.  Lock held.  -1: the driver
	 * broke the queue (err says how); the device then needs a reset. */
	int (*notify)(void *dev, struct virtio_mmio *t, unsigned q,
		      struct fv_error *err);
	/* The driver reset the device (status 0).  Lock held. */
	void (*reset)(void *dev);
};

typedef void (*virtio_irq_fn)(void *opaque, int level);
typedef void (*virtio_log_fn)(void *opaque, const char *msg);

struct virtio_mmio {
	pthread_mutex_t lock;
	const struct virtio_device_ops *ops;
	void *dev;
	struct guest_mem *mem;
	virtio_irq_fn set_irq;      /* NULL: no interrupt line (test guests) */
	void *irq_opaque;
	virtio_log_fn log;          /* a driver error worth a line, or NULL */
	void *log_opaque;
	uint64_t base;              /* guest-physical address of the window */
	uint64_t features;          /* offered, besides VIRTIO_F_VERSION_1 */

	uint32_t status;
	uint32_t isr;
	uint32_t dev_features_sel, drv_features_sel;
	uint64_t drv_features;
	uint32_t queue_sel;
	uint32_t config_generation;
	int irq_level;
	struct virtq vq[VIRTIO_MMIO_MAX_QUEUES];
	/* Queue notifications by the way they came: a QueueNotify write that
	 * exited to foldvm, or one KVM signalled on an eventfd (ioeventfd). */
	uint64_t kicks_exit, kicks_eventfd;
};

/* `features`: what this device offers besides VIRTIO_F_VERSION_1. */
void virtio_mmio_init(struct virtio_mmio *t, const struct virtio_device_ops *ops,
		      void *dev, struct guest_mem *mem, uint64_t base,
		      uint64_t features);
void virtio_mmio_destroy(struct virtio_mmio *t);

/* One guest access of `len` bytes at offset `off` of the window.  Register
 * accesses must be 32 bits wide and aligned (4.2.2.2); others read as 0
 * and are dropped, as are writes to read-only registers. */
void virtio_mmio_access(struct virtio_mmio *t, uint64_t off, bool is_write,
			uint8_t *data, unsigned len);

/* Queue q was notified through an eventfd (KVM_IOEVENTFD matched the
 * guest's QueueNotify write): served as that write would have been. */
void virtio_mmio_kick(struct virtio_mmio *t, unsigned q);

/* For device threads (an RX path): the same lock MMIO accesses take. */
void virtio_mmio_lock(struct virtio_mmio *t);
void virtio_mmio_unlock(struct virtio_mmio *t);

/* Lock held: has the driver negotiated feature bit `bit`? */
bool virtio_mmio_has_feature(const struct virtio_mmio *t, unsigned bit);
/* Lock held: is the device live (DRIVER_OK, not NEEDS_RESET)? */
bool virtio_mmio_live(const struct virtio_mmio *t);
/* Lock held: queue q's chains were used; interrupt if the driver wants. */
void virtio_mmio_used(struct virtio_mmio *t, unsigned q);
/* Lock held: the config space changed (config interrupt, new generation). */
void virtio_mmio_config_changed(struct virtio_mmio *t);
/* Lock held: stop using the device until the driver resets it (2.1.2). */
void virtio_mmio_needs_reset(struct virtio_mmio *t, const char *why);

#endif
