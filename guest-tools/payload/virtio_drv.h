/*
 * virtio_drv.h - the payload's virtio-mmio driver core (cmd_virtio.c),
 * shared by its device drivers (cmd_blk.c, cmd_net.c, ...).  Written from the virtio
 * 1.x spec: 4.2.3 for the transport's driver steps, 2.7 for split rings.
 * Test guests take no interrupts: drivers poll the used rings.
 *
 * vCPU 0 only.  Scratch region (cfg->virtio_gpa): window i, queue q owns
 * pages 16i + 4q .. +3 (descriptor table, driver area, device area, and a
 * page for the driver's own headers); the last FV_VIRTIO_DATA_BYTES are a
 * data buffer the drivers share.
 */
#ifndef FV_VIRTIO_DRV_H
#define FV_VIRTIO_DRV_H

#include "payload.h"

#define VQ_SIZE 16u
#define VDRV_MAX_QUEUES 4u
#define VDESC_NEXT 1u
#define VDESC_WRITE 2u

#define MMIO_MAGIC 0x000
#define MMIO_VERSION 0x004
#define MMIO_DEVICE_ID 0x008
#define MMIO_DEVICE_FEATURES 0x010
#define MMIO_DEVICE_FEATURES_SEL 0x014
#define MMIO_DRIVER_FEATURES 0x020
#define MMIO_DRIVER_FEATURES_SEL 0x024
#define MMIO_QUEUE_SEL 0x030
#define MMIO_QUEUE_NUM_MAX 0x034
#define MMIO_QUEUE_NUM 0x038
#define MMIO_QUEUE_READY 0x044
#define MMIO_QUEUE_NOTIFY 0x050
#define MMIO_INTERRUPT_STATUS 0x060
#define MMIO_INTERRUPT_ACK 0x064
#define MMIO_STATUS 0x070
#define MMIO_QUEUE_DESC 0x080
#define MMIO_QUEUE_DRIVER 0x090
#define MMIO_QUEUE_DEVICE 0x0a0
#define MMIO_CONFIG_GENERATION 0x0fc
#define MMIO_CONFIG 0x100

struct vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

uint64_t vdrv_window(const struct fv_guest_config *cfg, uint64_t i);
uint32_t vdrv_read(uint64_t base, uint32_t off);
void vdrv_write(uint64_t base, uint32_t off, uint32_t v);

/* Page k (0 descriptors, 1 driver area, 2 device area, 3 the driver's
 * headers) of queue q of window i. */
uint64_t vdrv_page(const struct fv_guest_config *cfg, uint64_t i, unsigned q,
		   unsigned k);
/* The shared data buffer (FV_VIRTIO_DATA_BYTES). */
uint64_t vdrv_data(const struct fv_guest_config *cfg);

/* May vCPU v drive window i (vCPU 0, a window that exists)?  And is the
 * device up (VIRTIO_INIT done, no reset since)? */
int vdrv_window_ok(const struct vcpu *v, uint64_t i);
int vdrv_up(uint64_t i);
void vdrv_down(uint64_t i);
/* How many times window i was brought up (VIRTIO_INIT): a driver keeps
 * state of its own per bring-up (virtio-net's posted receive buffers). */
uint32_t vdrv_generation(uint64_t i);

/* Put descriptors at table slots first..first+n-1 (one chain from
 * `first`), make it available on queue q and notify. */
void vdrv_publish(const struct fv_guest_config *cfg, uint64_t i, unsigned q,
		  const struct vdesc *d, unsigned first, unsigned n);
/* Has queue q used a chain since the last call?  1 and its length (and
 * head) if so, else 0. */
int vdrv_used(const struct fv_guest_config *cfg, uint64_t i, unsigned q,
	      uint32_t *len, uint32_t *head);
/* Status once it has one of `bits`, read again and again until then or
 * until the wait is too long (cmd_virtio.c, vdrv_expired: a notify may be
 * served by foldvm's notification thread after the write returned): the
 * last Status read either way. */
uint32_t vdrv_wait_status(const struct fv_guest_config *cfg, uint64_t base,
			  uint32_t bits);
/* Publish a chain from slot 0 and wait until the device used it: -1 if it
 * never did (vdrv_expired), else its used length. */
int64_t vdrv_submit(const struct fv_guest_config *cfg, uint64_t i, unsigned q,
		    const struct vdesc *d, unsigned n);

#endif
