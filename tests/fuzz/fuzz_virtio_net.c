/*
 * fuzz_virtio_net.c - libFuzzer harness for virtio-net's queue, chain and
 * frame handling, through the virtio-mmio transport and the MMIO bus:
 * what a guest driver controls, and the frames a tap hands the device.
 *
 * Each input gets a fresh 16 MiB guest memory (no KVM) and a virtio-net
 * device on one end of a datagram socket pair, the harness's "tap" at the
 * other.  The first byte picks the set-up: bit 1 a device left reset (the
 * input must bring it up itself), bits 2..4 the queue size the harness's
 * driver uses (1..128).  The rest is a list of operations:
 *
 *   0 MEM     u16 gpa, u8 n, n bytes          bytes into guest RAM
 *   1 REG     u8 reg, u32 value               4-byte write to register 4*reg
 *   2 ACCESS  u16 off, u8 len|write<<3, u64   any access near the window
 *   3 NOTIFY  u8 q                            QueueNotify
 *   4 PUBLISH u8 q, u16 head                  avail entry + idx of queue
 *                                             q & 1, notify it
 *   5 DESC    u8 q, u8 i, u32 addr, u32 len, u16 flags, u16 next
 *   6 FRAME   u16 len, u8 flags, u8 gso, u8 seed
 *                                             the tap sends a frame (len
 *                                             bytes with the header), then
 *                                             up to 4 receive steps
 *   7 RESET   u8 how                          status 0 (odd: and set-up)
 *
 * so chains with any indices, lengths, flags and addresses reach both
 * queues.  Any crash, leak, hang or UB report is a bug, and the harness
 * aborts when the device breaks its promises: every chain taken is used
 * (or the device is NEEDS_RESET), FEATURES_OK and DRIVER_OK only as
 * negotiated, every frame it writes to the tap bounded and without an
 * offload, no frame read that the tap did not send, the interrupt line
 * following InterruptStatus, and a reset forgetting everything.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include "devices/mmio.h"
#include "devices/virtio_net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM GMEM_MIN_SIZE
#define BASE 0xd0000000ull
/* The harness driver's rings, queue q's at RING(q) (the input may move
 * them): descriptors, then the driver area, then the device area. */
#define RING(q) (0x1000ull + 0x4000ull * (q))
/* Bounded work per input (as fuzz_virtio.c): the input's writes to
 * QueueNotify and Status beyond this many are dropped, and so are its
 * frames beyond MAX_FRAMES. */
#define MAX_KICKS 64u
#define MAX_FRAMES 64u
#define MAX_FRAME_LEN 4096u

struct input {
	const uint8_t *p;
	size_t left;
};

struct rig {
	struct guest_mem gm;
	struct virtio_net n;
	struct mmio_bus bus;
	int peer;                /* the tap's other end */
	uint16_t num;
	int irq_level;
	bool driving;
	unsigned kicks;
	unsigned frames_sent;
};

static uint64_t take(struct input *in, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes && in->left; i++, in->left--)
		v |= (uint64_t)*in->p++ << (8 * i);
	return v;
}

static void set_irq(void *opaque, int level)
{
	((struct rig *)opaque)->irq_level = level;
}

static void log_line(void *opaque, const char *msg)
{
	(void)opaque;
	if (!memchr(msg, '\0', 320) || msg[0] == '\0')
		abort();
}

static void window(void *opaque, uint64_t off, bool is_write, uint8_t *data,
		   unsigned len)
{
	struct rig *r = opaque;

	if (is_write && !r->driving &&
	    (off == VIRTIO_MMIO_QUEUE_NOTIFY || off == VIRTIO_MMIO_STATUS)) {
		if (r->kicks == MAX_KICKS)
			return;
		r->kicks++;
	}
	virtio_mmio_access(&r->n.transport, off, is_write, data, len);
}

static void reg_write(struct rig *r, uint64_t reg, uint32_t v)
{
	uint8_t d[4];

	memcpy(d, &v, 4);
	mmio_dispatch(&r->bus, BASE + reg, true, d, 4);
}

static uint32_t reg_read(struct rig *r, uint64_t reg)
{
	uint8_t d[4];
	uint32_t v;

	mmio_dispatch(&r->bus, BASE + reg, false, d, 4);
	memcpy(&v, d, 4);
	return v;
}

static uint16_t mem_u16(struct rig *r, uint64_t gpa)
{
	struct fv_error err;
	uint16_t v = 0;

	gmem_read(&r->gm, gpa, &v, sizeof(v), &err);
	return v;
}

/* 3.1.1, every feature offered, both queues. */
static void driver_init(struct rig *r)
{
	uint32_t lo, hi, s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	r->driving = true;
	reg_write(r, VIRTIO_MMIO_STATUS, 0);
	reg_write(r, VIRTIO_MMIO_STATUS, s);
	reg_write(r, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	lo = reg_read(r, VIRTIO_MMIO_DEVICE_FEATURES);
	reg_write(r, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	hi = reg_read(r, VIRTIO_MMIO_DEVICE_FEATURES);
	reg_write(r, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	reg_write(r, VIRTIO_MMIO_DRIVER_FEATURES, lo);
	reg_write(r, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	reg_write(r, VIRTIO_MMIO_DRIVER_FEATURES, hi);
	reg_write(r, VIRTIO_MMIO_STATUS, s | VIRTIO_STATUS_FEATURES_OK);
	if (!(reg_read(r, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK))
		abort();
	for (uint32_t q = 0; q < 2; q++) {
		reg_write(r, VIRTIO_MMIO_QUEUE_SEL, q);
		reg_write(r, VIRTIO_MMIO_QUEUE_NUM, r->num);
		reg_write(r, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)RING(q));
		reg_write(r, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
		reg_write(r, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)(RING(q) + 0x1000));
		reg_write(r, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
		reg_write(r, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)(RING(q) + 0x2000));
		reg_write(r, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
		reg_write(r, VIRTIO_MMIO_QUEUE_READY, 1);
	}
	reg_write(r, VIRTIO_MMIO_STATUS, s | VIRTIO_STATUS_FEATURES_OK |
		  VIRTIO_STATUS_DRIVER_OK);
	r->driving = false;
}

/* What the device wrote to the tap: each frame bounded, no offload. */
static void drain_tap(struct rig *r)
{
	static uint8_t f[VIRTIO_NET_BUF_LEN + 1];
	ssize_t n;

	while ((n = recv(r->peer, f, sizeof(f), MSG_DONTWAIT)) >= 0)
		if (n < VIRTIO_NET_HDR_LEN + VIRTIO_NET_MIN_FRAME ||
		    n > (ssize_t)VIRTIO_NET_BUF_LEN || f[0] || f[1])
			abort();
}

/* What holds after any operation. */
static void check_state(struct rig *r)
{
	const struct virtio_mmio *t = &r->n.transport;
	uint64_t offered = t->features | (1ull << VIRTIO_F_VERSION_1);
	const struct virtio_net_stats *st = &r->n.stats;

	if ((t->status & VIRTIO_STATUS_DRIVER_OK) &&
	    !(t->status & VIRTIO_STATUS_FEATURES_OK))
		abort();
	if ((t->status & VIRTIO_STATUS_FEATURES_OK) &&
	    ((t->drv_features & ~offered) ||
	     !virtio_mmio_has_feature(t, VIRTIO_F_VERSION_1)))
		abort();
	/* every chain taken, of either queue, was used (a receive buffer
	 * too small for a frame is given back, not kept), unless the device
	 * gave up */
	for (unsigned q = 0; q < 2; q++)
		if (virtio_mmio_live(t) && t->vq[q].used_idx != t->vq[q].last_avail)
			abort();
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++) {
		const struct virtq *vq = &t->vq[q];

		if (vq->ready && (q >= virtio_net_ops.nr_queues || vq->num == 0 ||
				  vq->num > virtio_net_ops.queue_max ||
				  (vq->num & (vq->num - 1)) ||
				  !gmem_range_ok(&r->gm, vq->used_gpa, 6 + 8ull * vq->num)))
			abort();
	}
	/* no frame the tap did not send */
	if (st->rx_frames + st->rx_drops + r->n.rx_pending > r->frames_sent)
		abort();
	if ((t->isr & ~3u) || r->irq_level != (t->isr != 0))
		abort();
	drain_tap(r);
}

static void op_mem(struct rig *r, struct input *in)
{
	uint64_t gpa = take(in, 2);
	size_t n = (size_t)take(in, 1);
	struct fv_error err;

	if (n > in->left)
		n = in->left;
	gmem_write(&r->gm, gpa, in->p, n, &err);
	in->p += n;
	in->left -= n;
}

static void op_access(struct rig *r, struct input *in)
{
	uint64_t off = take(in, 2) & 0x1fff;
	unsigned lw = (unsigned)take(in, 1);
	uint64_t v = take(in, 8);
	uint8_t d[8];

	memcpy(d, &v, sizeof(d));
	mmio_dispatch(&r->bus, BASE - 0x800 + off, lw & 8, d, (lw & 7) + 1);
}

/* After a notify of the transmit queue, everything available was taken
 * (or the device needs a reset), and what was used announced. */
static void notify(struct rig *r, uint32_t q)
{
	const struct virtio_mmio *t = &r->n.transport;
	const struct virtq *vq = &t->vq[VIRTIO_NET_TXQ];
	uint16_t used = vq->used_idx;
	unsigned kicks = r->kicks;

	reg_write(r, VIRTIO_MMIO_QUEUE_NOTIFY, q);
	if (r->kicks == kicks || q != VIRTIO_NET_TXQ)
		return;
	if (virtio_mmio_live(t) && vq->ready &&
	    mem_u16(r, vq->avail_gpa + 2) != vq->last_avail)
		abort();
	if (vq->used_idx != used &&
	    !(mem_u16(r, vq->avail_gpa) & VIRTQ_AVAIL_F_NO_INTERRUPT) &&
	    !(t->isr & VIRTIO_MMIO_INT_VRING))
		abort();
}

static void op_publish(struct rig *r, struct input *in)
{
	unsigned q = (unsigned)take(in, 1) & 1;
	uint16_t head = (uint16_t)take(in, 2);
	uint16_t idx = mem_u16(r, RING(q) + 0x1000 + 2);
	struct fv_error err;

	gmem_write(&r->gm, RING(q) + 0x1000 + 4 + 2ull * (idx % r->num), &head, 2, &err);
	idx++;
	gmem_write(&r->gm, RING(q) + 0x1000 + 2, &idx, 2, &err);
	notify(r, q);
}

static void op_desc(struct rig *r, struct input *in)
{
	unsigned q = (unsigned)take(in, 1) & 1;
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
	gmem_write(&r->gm, RING(q) + 16 * i, &d, sizeof(d), &err);
}

/* The tap hands the device a frame; the device's thread would step. */
static void op_frame(struct rig *r, struct input *in)
{
	static uint8_t f[MAX_FRAME_LEN];
	size_t len = (size_t)take(in, 2) % (MAX_FRAME_LEN + 1);
	uint8_t flags = (uint8_t)take(in, 1), gso = (uint8_t)take(in, 1);
	uint8_t seed = (uint8_t)take(in, 1);

	for (size_t k = 0; k < len; k++)
		f[k] = (uint8_t)(seed + 31 * k);
	if (len > 0)
		f[0] = flags;
	if (len > 1)
		f[1] = gso;
	if (r->frames_sent < MAX_FRAMES && len > 0 &&
	    send(r->peer, f, len, MSG_DONTWAIT) == (ssize_t)len)
		r->frames_sent++;
	for (unsigned i = 0; i < 4 && virtio_net_rx_step(&r->n); i++)
		check_state(r);
}

static void op_reset(struct rig *r, struct input *in)
{
	const struct virtio_mmio *t = &r->n.transport;
	unsigned how = (unsigned)take(in, 1);

	r->driving = true;
	reg_write(r, VIRTIO_MMIO_STATUS, 0);
	r->driving = false;
	if (t->status || t->isr || t->drv_features || r->irq_level)
		abort();
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++)
		if (t->vq[q].ready || t->vq[q].num || t->vq[q].last_avail ||
		    t->vq[q].used_idx)
			abort();
	if (how & 1) {
		struct fv_error err;

		gmem_fill(&r->gm, RING(0), 0, 0x8000, &err);
		driver_init(r);
	}
}

static void run(struct rig *r, struct input *in)
{
	while (in->left) {
		unsigned op = (unsigned)take(in, 1) & 7;

		switch (op) {
		case 0:
			op_mem(r, in);
			break;
		case 1: {
			uint64_t reg = take(in, 1) * 4;

			reg_write(r, reg, (uint32_t)take(in, 4));
			break;
		}
		case 2:
			op_access(r, in);
			break;
		case 3:
			notify(r, (uint32_t)take(in, 1));
			break;
		case 4:
			op_publish(r, in);
			break;
		case 5:
			op_desc(r, in);
			break;
		case 6:
			op_frame(r, in);
			break;
		case 7:
			op_reset(r, in);
			break;
		}
		check_state(r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	static struct rig r;
	struct input in = { data, size };
	struct fv_error err;
	unsigned setup;
	int sv[2];

	if (size == 0)
		return 0;
	setup = (unsigned)take(&in, 1);
	memset(&r, 0, sizeof(r));
	r.num = (uint16_t)(1u << ((setup >> 2) & 7));
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) ||
	    gmem_create(&r.gm, -1, MEM, &err))
		abort();
	r.peer = sv[1];
	if (virtio_net_init_fd(&r.n, sv[0], mac, &r.gm, BASE, &err) ||
	    mmio_register(&r.bus, BASE, VIRTIO_MMIO_WINDOW, window, &r, "virtio-net",
			  &err))
		abort();
	r.n.transport.set_irq = set_irq;
	r.n.transport.irq_opaque = &r;
	r.n.transport.log = log_line;
	if (!(setup & 2)) {
		driver_init(&r);
		if (!virtio_mmio_live(&r.n.transport))
			abort();
	}
	check_state(&r);
	run(&r, &in);
	in.left = 0;
	op_reset(&r, &in);
	virtio_net_destroy(&r.n);
	close(r.peer);
	gmem_destroy(&r.gm);
	return 0;
}
