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
#include "tests/fuzz/virtio_rig.h"

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

/* 3.1.1, every feature offered, both queues. */
static void driver_init(struct rig *r)
{
	r->driving = true;
	/* ACKNOWLEDGE and DRIVER in one write */
	rig_negotiate(&r->bus, BASE, RIG_TAKE_OFFERED, 0);
	for (uint32_t q = 0; q < 2; q++)
		rig_queue(&r->bus, BASE, q, r->num, RING(q), RING(q) + 0x1000,
			  RING(q) + 0x2000);
	rig_driver_ok(&r->bus, BASE);
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
	const struct virtio_net_stats *st = &r->n.stats;

	rig_check_negotiated(t);
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

/* After a notify of the transmit queue, everything available was taken
 * (or the device needs a reset), and what was used announced. */
static void notify(struct rig *r, uint32_t q)
{
	const struct virtio_mmio *t = &r->n.transport;
	const struct virtq *vq = &t->vq[VIRTIO_NET_TXQ];
	uint16_t used = vq->used_idx;
	unsigned kicks = r->kicks;

	rig_reg_write(&r->bus, BASE, VIRTIO_MMIO_QUEUE_NOTIFY, q);
	if (r->kicks == kicks || q != VIRTIO_NET_TXQ)
		return;
	if (virtio_mmio_live(t) && vq->ready &&
	    rig_mem_u16(&r->gm, vq->avail_gpa + 2) != vq->last_avail)
		abort();
	if (vq->used_idx != used &&
	    !(rig_mem_u16(&r->gm, vq->avail_gpa) & VIRTQ_AVAIL_F_NO_INTERRUPT) &&
	    !(t->isr & VIRTIO_MMIO_INT_VRING))
		abort();
}

static void op_publish(struct rig *r, struct input *in)
{
	unsigned q = (unsigned)take(in, 1) & 1;
	uint16_t head = (uint16_t)take(in, 2);
	uint16_t idx = rig_mem_u16(&r->gm, RING(q) + 0x1000 + 2);
	struct fv_error err;

	gmem_write(&r->gm, RING(q) + 0x1000 + 4 + 2ull * (idx % r->num), &head, 2, &err);
	idx++;
	gmem_write(&r->gm, RING(q) + 0x1000 + 2, &idx, 2, &err);
	notify(r, q);
}

static void op_desc(struct rig *r, struct input *in)
{
	unsigned q = (unsigned)take(in, 1) & 1;

	rig_op_desc(&r->gm, in, RING(q));
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
	rig_reg_write(&r->bus, BASE, VIRTIO_MMIO_STATUS, 0);
	r->driving = false;
	rig_check_reset(t);
	if (r->irq_level)
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
			rig_op_mem(&r->gm, in);
			break;
		case 1: {
			uint64_t reg = take(in, 1) * 4;

			rig_reg_write(&r->bus, BASE, reg, (uint32_t)take(in, 4));
			break;
		}
		case 2:
			rig_op_access(&r->bus, BASE, in);
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
	r.n.transport.set_irq = rig_set_irq;
	r.n.transport.irq_opaque = &r.irq_level;
	r.n.transport.log = rig_log_line;
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
