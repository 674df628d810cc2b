/*
 * virtio_rig.h - what the virtio-mmio fuzz harnesses (fuzz_virtio.c,
 * fuzz_virtio_net.c, fuzz_balloon.c) share: the input reader, 4-byte
 * register accesses through the MMIO bus at the device's base, a u16 of
 * guest memory, the device's irq and log callbacks, the MEM, ACCESS and
 * DESC operations, the negotiation and reset invariants, and the harness
 * driver's steps of 3.1.1.  Header-only: each harness keeps its own rig, ops and checks.
 */
#ifndef FOLDVM_TESTS_FUZZ_VIRTIO_RIG_H
#define FOLDVM_TESTS_FUZZ_VIRTIO_RIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "devices/mmio.h"
#include "devices/virtio_mmio.h"

struct input {
	const uint8_t *p;
	size_t left;
};

/* The next `bytes` bytes of the input, little-endian; 0s past its end. */
static inline uint64_t take(struct input *in, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes && in->left; i++, in->left--)
		v |= (uint64_t)*in->p++ << (8 * i);
	return v;
}

/* The transport's set_irq, its irq_opaque the rig's int irq_level. */
static inline void rig_set_irq(void *opaque, int level)
{
	*(int *)opaque = level;
}

/* The transport's log: every line terminated (within 320 bytes), never
 * empty. */
static inline void rig_log_line(void *opaque, const char *msg)
{
	(void)opaque;
	if (!memchr(msg, '\0', 320) || msg[0] == '\0')
		abort();
}

static inline void rig_reg_write(struct mmio_bus *bus, uint64_t base,
				 uint64_t reg, uint32_t v)
{
	uint8_t d[4];

	memcpy(d, &v, 4);
	mmio_dispatch(bus, base + reg, true, d, 4);
}

static inline uint32_t rig_reg_read(struct mmio_bus *bus, uint64_t base,
				    uint64_t reg)
{
	uint8_t d[4];
	uint32_t v;

	mmio_dispatch(bus, base + reg, false, d, 4);
	memcpy(&v, d, 4);
	return v;
}

/* A u16 of guest memory (0 outside it). */
static inline uint16_t rig_mem_u16(struct guest_mem *gm, uint64_t gpa)
{
	struct fv_error err;
	uint16_t v = 0;

	gmem_read(gm, gpa, &v, sizeof(v), &err);
	return v;
}

/* MEM: u16 gpa, u8 n, n bytes (as many as are left) into guest RAM. */
static inline void rig_op_mem(struct guest_mem *gm, struct input *in)
{
	uint64_t gpa = take(in, 2);
	size_t n = (size_t)take(in, 1);
	struct fv_error err;

	if (n > in->left)
		n = in->left;
	gmem_write(gm, gpa, in->p, n, &err);
	in->p += n;
	in->left -= n;
}

/* ACCESS: u16 off, u8 len|write<<3, u64 value: any access from 2 KiB
 * before the window at base to 4 KiB after its start (the registers, the
 * config space and beyond). */
static inline void rig_op_access(struct mmio_bus *bus, uint64_t base,
				 struct input *in)
{
	uint64_t off = take(in, 2) & 0x1fff;
	unsigned lw = (unsigned)take(in, 1);
	uint64_t v = take(in, 8);
	uint8_t d[8];

	memcpy(d, &v, sizeof(d));
	mmio_dispatch(bus, base - 0x800 + off, lw & 8, d, (lw & 7) + 1);
}

/* DESC (after any queue byte): u8 i, u32 addr, u32 len, u16 flags,
 * u16 next: descriptor i of the table at `table`. */
static inline void rig_op_desc(struct guest_mem *gm, struct input *in,
			       uint64_t table)
{
	uint64_t i = take(in, 1);
	struct {
		uint64_t addr;
		uint32_t len;
		uint16_t flags, next;
	} d;
	struct fv_error err;

	d.addr = take(in, 4);
	d.len = (uint32_t)take(in, 4);
	d.flags = (uint16_t)take(in, 2);
	d.next = (uint16_t)take(in, 2);
	gmem_write(gm, table + 16 * i, &d, sizeof(d), &err);
}

/* After a reset (status 0): the transport forgot everything, every queue
 * included. */
static inline void rig_check_reset(const struct virtio_mmio *t)
{
	if (t->status || t->isr || t->drv_features)
		abort();
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++)
		if (t->vq[q].ready || t->vq[q].num || t->vq[q].last_avail ||
		    t->vq[q].used_idx)
			abort();
}

/* FEATURES_OK and DRIVER_OK only as negotiated: DRIVER_OK after
 * FEATURES_OK, and features only from those offered, VERSION_1 among
 * them. */
static inline void rig_check_negotiated(const struct virtio_mmio *t)
{
	uint64_t offered = t->features | (1ull << VIRTIO_F_VERSION_1);

	if ((t->status & VIRTIO_STATUS_DRIVER_OK) &&
	    !(t->status & VIRTIO_STATUS_FEATURES_OK))
		abort();
	if ((t->status & VIRTIO_STATUS_FEATURES_OK) &&
	    ((t->drv_features & ~offered) ||
	     !virtio_mmio_has_feature(t, VIRTIO_F_VERSION_1)))
		abort();
}

/* rig_negotiate's how: ACKNOWLEDGE written alone before DRIVER, and the
 * features taken those DeviceFeatures offers (both halves read) rather
 * than `want`. */
#define RIG_ACK_ALONE 1u
#define RIG_TAKE_OFFERED 2u

/* The driver's 3.1.1 up to FEATURES_OK: reset, ACKNOWLEDGE, DRIVER, the
 * features, FEATURES_OK, which must stick. */
static inline void rig_negotiate(struct mmio_bus *bus, uint64_t base,
				 unsigned how, uint64_t want)
{
	uint32_t s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	rig_reg_write(bus, base, VIRTIO_MMIO_STATUS, 0);
	if (how & RIG_ACK_ALONE)
		rig_reg_write(bus, base, VIRTIO_MMIO_STATUS,
			      VIRTIO_STATUS_ACKNOWLEDGE);
	rig_reg_write(bus, base, VIRTIO_MMIO_STATUS, s);
	if (how & RIG_TAKE_OFFERED) {
		rig_reg_write(bus, base, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
		want = rig_reg_read(bus, base, VIRTIO_MMIO_DEVICE_FEATURES);
		rig_reg_write(bus, base, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
		want |= (uint64_t)rig_reg_read(bus, base,
					       VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	}
	rig_reg_write(bus, base, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	rig_reg_write(bus, base, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)want);
	rig_reg_write(bus, base, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	rig_reg_write(bus, base, VIRTIO_MMIO_DRIVER_FEATURES,
		      (uint32_t)(want >> 32));
	rig_reg_write(bus, base, VIRTIO_MMIO_STATUS,
		      s | VIRTIO_STATUS_FEATURES_OK);
	if (!(rig_reg_read(bus, base, VIRTIO_MMIO_STATUS) &
	      VIRTIO_STATUS_FEATURES_OK))
		abort();
}

/* Queue q: num entries, its descriptor table, driver and device areas at
 * desc, avail and used (below 4 GiB), then ready. */
static inline void rig_queue(struct mmio_bus *bus, uint64_t base, uint32_t q,
			     uint16_t num, uint64_t desc, uint64_t avail,
			     uint64_t used)
{
	rig_reg_write(bus, base, VIRTIO_MMIO_QUEUE_SEL, q);
	rig_reg_write(bus, base, VIRTIO_MMIO_QUEUE_NUM, num);
	rig_reg_write(bus, base, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	rig_reg_write(bus, base, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	rig_reg_write(bus, base, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
	rig_reg_write(bus, base, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
	rig_reg_write(bus, base, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
	rig_reg_write(bus, base, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
	rig_reg_write(bus, base, VIRTIO_MMIO_QUEUE_READY, 1);
}

/* The last step: DRIVER_OK. */
static inline void rig_driver_ok(struct mmio_bus *bus, uint64_t base)
{
	rig_reg_write(bus, base, VIRTIO_MMIO_STATUS,
		      VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		      VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

#endif
