/*
 * fuzz_virtio.c - libFuzzer harness for virtio-blk's queue and descriptor
 * parsing, through the virtio-mmio transport and the MMIO bus: what a
 * guest driver controls.
 *
 * Each input gets a fresh 16 MiB guest memory (no KVM) and a virtio-blk
 * device on a 16 KiB memfd image (emptied per input).  The first byte
 * picks the set-up: bit 0 a read-only device, bit 1 a device left reset
 * (the input must bring it up itself), bits 2..4 the queue size the
 * harness's driver uses (1..128).  The rest is a list of operations:
 *
 *   0 MEM     u16 gpa, u8 n, n bytes          bytes into guest RAM
 *   1 REG     u8 reg, u32 value               4-byte write to register 4*reg
 *   2 ACCESS  u16 off, u8 len|write<<3, u64   any access near the window
 *   3 NOTIFY  u8 q                            QueueNotify
 *   4 PUBLISH u16 head                        avail entry + idx, notify 0
 *   5 DESC    u8 i, u32 addr, u32 len, u16 flags, u16 next
 *   6 HDR     u8 slot, u32 type, u64 sector   a request header
 *   7 RESET   u8 how                          status 0 (odd: and set-up)
 *
 * so chains with any indices, lengths, flags and addresses reach the
 * device.  Any crash, leak, hang or UB report is a bug, and the harness
 * aborts when the device breaks its promises: every chain made available
 * is answered or the device is NEEDS_RESET, FEATURES_OK and DRIVER_OK only
 * as negotiated, a read-only image never written, the interrupt line
 * following InterruptStatus, and a reset forgetting everything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include "devices/mmio.h"
#include "devices/virtio_blk.h"
#include "tests/fuzz/virtio_rig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM GMEM_MIN_SIZE
#define IMAGE_SIZE (16u * 1024u)
#define BASE 0xd0000000ull
/* The harness driver's rings and request area (the input may move them). */
#define DESC_GPA 0x1000ull
#define AVAIL_GPA 0x2000ull
#define USED_GPA 0x3000ull
#define HDR_GPA 0x4000ull
/* The device's work per input is bounded (each kick serves at most a ring
 * of chains of at most the image each): the input's writes to QueueNotify
 * and Status beyond this many are dropped. */
#define MAX_KICKS 64u

struct rig {
	struct guest_mem gm;
	struct virtio_blk b;
	struct mmio_bus bus;
	uint16_t num;            /* the queue size the harness's driver uses */
	bool read_only;
	int irq_level;
	bool driving;            /* the harness's own set-up: not counted */
	unsigned kicks;
};

/* The device's MMIO window; the input's kicks are counted (MAX_KICKS). */
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
	virtio_mmio_access(&r->b.transport, off, is_write, data, len);
}

/* Device set-up as a driver does it (3.1.1), taking every feature. */
static void driver_init(struct rig *r)
{
	r->driving = true;
	rig_negotiate(&r->bus, BASE, RIG_ACK_ALONE | RIG_TAKE_OFFERED, 0);
	rig_queue(&r->bus, BASE, 0, r->num, DESC_GPA, AVAIL_GPA, USED_GPA);
	rig_driver_ok(&r->bus, BASE);
	r->driving = false;
}

/* What holds after any operation. */
static void check_state(const struct rig *r)
{
	const struct virtio_mmio *t = &r->b.transport;
	const struct virtio_blk_stats *st = &r->b.stats;

	rig_check_negotiated(t);
	/* every chain taken was answered, unless the device gave up */
	if (virtio_mmio_live(t) && t->vq[0].used_idx != t->vq[0].last_avail)
		abort();
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++) {
		const struct virtq *vq = &t->vq[q];

		if (vq->ready && (q >= virtio_blk_ops.nr_queues || vq->num == 0 ||
				  vq->num > virtio_blk_ops.queue_max ||
				  (vq->num & (vq->num - 1)) ||
				  !gmem_range_ok(&r->gm, vq->used_gpa, 6 + 8ull * vq->num)))
			abort();
	}
	if (r->read_only && (st->writes || st->discards || st->write_zeroes))
		abort();
	if ((t->isr & ~3u) || r->irq_level != (t->isr != 0))
		abort();
}

/* After a notify of queue 0: all that was available is used, or the
 * device is NEEDS_RESET; and what was used (used_before: the device's
 * used idx before) is announced unless the driver asked for no
 * interrupts. */
static void check_served(struct rig *r, uint16_t used_before)
{
	const struct virtio_mmio *t = &r->b.transport;
	const struct virtq *vq = &t->vq[0];

	if (virtio_mmio_live(t) && vq->ready &&
	    rig_mem_u16(&r->gm, vq->avail_gpa + 2) != vq->last_avail)
		abort();
	if (vq->used_idx != used_before &&
	    !(rig_mem_u16(&r->gm, vq->avail_gpa) & VIRTQ_AVAIL_F_NO_INTERRUPT) &&
	    !(t->isr & VIRTIO_MMIO_INT_VRING))
		abort();
}

static void notify(struct rig *r, uint32_t q)
{
	uint16_t used = r->b.transport.vq[0].used_idx;
	unsigned kicks = r->kicks;

	rig_reg_write(&r->bus, BASE, VIRTIO_MMIO_QUEUE_NOTIFY, q);
	if (r->kicks != kicks && (q & 0xffff) == 0)
		check_served(r, used);
}

/* The driver's half of 2.7.13: entry, then idx, then notify. */
static void op_publish(struct rig *r, struct input *in)
{
	uint16_t head = (uint16_t)take(in, 2);
	uint16_t idx = rig_mem_u16(&r->gm, AVAIL_GPA + 2);
	struct fv_error err;

	gmem_write(&r->gm, AVAIL_GPA + 4 + 2ull * (idx % r->num), &head, 2, &err);
	idx++;
	gmem_write(&r->gm, AVAIL_GPA + 2, &idx, 2, &err);
	notify(r, 0);
}

static void op_desc(struct rig *r, struct input *in)
{
	rig_op_desc(&r->gm, in, DESC_GPA);
}

static void op_hdr(struct rig *r, struct input *in)
{
	uint64_t slot = take(in, 1) & 15;
	uint64_t h[2];
	struct fv_error err;

	h[0] = take(in, 4);
	h[1] = take(in, 8);
	gmem_write(&r->gm, HDR_GPA + 16 * slot, h, sizeof(h), &err);
}

static void op_reset(struct rig *r, struct input *in)
{
	const struct virtio_mmio *t = &r->b.transport;
	unsigned how = (unsigned)take(in, 1);

	r->driving = true;
	rig_reg_write(&r->bus, BASE, VIRTIO_MMIO_STATUS, 0);
	r->driving = false;
	rig_check_reset(t);
	if (r->irq_level)
		abort();
	if (how & 1) {
		struct fv_error err;

		gmem_fill(&r->gm, AVAIL_GPA, 0, 0x2000, &err);
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
			op_hdr(r, in);
			break;
		case 7:
			op_reset(r, in);
			break;
		}
		check_state(r);
	}
}

/* The image: one memfd for the process, emptied for every input. */
static int image_path(char *path, size_t len)
{
	static int fd = -1;

	if (fd < 0)
		fd = memfd_create("fuzz-virtio-image", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 0) || ftruncate(fd, IMAGE_SIZE))
		return -1;
	snprintf(path, len, "/proc/self/fd/%d", fd);
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rig r;
	struct input in = { data, size };
	struct fv_error err;
	char path[64];
	unsigned setup;
	struct stat st;
	int fd;

	if (size == 0)
		return 0;
	setup = (unsigned)take(&in, 1);
	memset(&r, 0, sizeof(r));
	r.read_only = setup & 1;
	r.num = (uint16_t)(1u << ((setup >> 2) & 7));
	fd = image_path(path, sizeof(path));
	if (fd < 0 || gmem_create(&r.gm, -1, MEM, &err))
		abort();
	if (virtio_blk_init(&r.b, path, r.read_only, "fuzz-disk", &r.gm, BASE, &err) ||
	    mmio_register(&r.bus, BASE, VIRTIO_MMIO_WINDOW, window, &r, "virtio-blk",
			  &err))
		abort();
	r.b.transport.set_irq = rig_set_irq;
	r.b.transport.irq_opaque = &r.irq_level;
	r.b.transport.log = rig_log_line;
	if (!(setup & 2)) {
		driver_init(&r);
		if (!virtio_mmio_live(&r.b.transport))
			abort();
	}
	check_state(&r);
	run(&r, &in);
	in.left = 0;
	op_reset(&r, &in);
	/* a read-only image stays as it was: empty */
	if (r.read_only && (fstat(fd, &st) || st.st_blocks != 0))
		abort();
	virtio_blk_destroy(&r.b);
	gmem_destroy(&r.gm);
	return 0;
}
