/*
 * fuzz_balloon.c - libFuzzer harness for virtio-balloon's queue and
 * descriptor parsing (inflate and deflate PFN arrays, statistics buffers,
 * free page reporting), through the virtio-mmio transport and the MMIO
 * bus: what a guest driver controls, and the host's two calls.
 *
 * Each input gets a fresh 16 MiB guest memory (no KVM) and a balloon on
 * it.  The first byte picks the set-up: bit 0 the harness's driver
 * negotiates VIRTIO_BALLOON_F_STATS_VQ, bit 1 PAGE_REPORTING, bit 2 the
 * device is left reset (the input must bring it up itself), bits 3..5 the
 * queue size the harness's driver uses (1..128) on all four queues, each
 * on its own rings.  The rest is a list of operations (byte % 9):
 *
 *   0 MEM     u16 gpa, u8 n, n bytes          bytes into guest RAM
 *   1 REG     u8 reg, u32 value               4-byte write to register 4*reg
 *   2 ACCESS  u16 off, u8 len|write<<3, u64   any access near the window
 *   3 NOTIFY  u8 q                            QueueNotify
 *   4 PUBLISH u8 q, u16 head                  avail entry + idx on queue q,
 *                                             notify q
 *   5 DESC    u8 q, u8 i, u32 addr, u32 len, u16 flags, u16 next
 *   6 QUERY                                   virtio_balloon_query
 *   7 TARGET  u16 pages, u8 bytes             virtio_balloon_set_target
 *   8 RESET   u8 how                          status 0 (odd: and set-up)
 *
 * so chains with any indices, lengths, flags and addresses reach every
 * queue role.  Any crash, leak, hang or UB report is a bug, and the
 * harness aborts when the device breaks its promises: every chain taken
 * on the inflate, deflate and reporting queues is answered or the device
 * is NEEDS_RESET; at most one statistics buffer is held, and a query hands
 * it back; FEATURES_OK and DRIVER_OK only as negotiated; the interrupt
 * line follows InterruptStatus; the counters never go down; the target is
 * refused outside 1 MiB..RAM; a reset forgets the held buffer and actual.
 */
#include <stdlib.h>
#include <string.h>
#include "devices/mmio.h"
#include "devices/virtio_balloon.h"
#include "tests/fuzz/virtio_rig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM GMEM_MIN_SIZE
#define BASE 0xd0000000ull
/* The harness driver's rings, one set per queue (the input may move
 * them); the input's MEM writes reach them and 12 KiB of data after. */
#define RING_GPA(q) (0x1000ull + 0x3000ull * (q))
#define DESC_GPA(q) RING_GPA(q)
#define AVAIL_GPA(q) (RING_GPA(q) + 0x1000)
#define USED_GPA(q) (RING_GPA(q) + 0x2000)
/* The device's work per input is bounded.  A kick serves up to a ring of
 * chains, and an inflate chain up to VIRTIO_BALLOON_MAX_PFNS page releases
 * (a system call each, ~1 us: two million for one kick of a ring of 128),
 * so besides the number of kicks, as in fuzz_virtio.c, the harness prices
 * each kick before it lets it through: it walks the chains available on a
 * copy of the queue (PFNs of inflate and deflate buffers, ranges of
 * reporting chains) and drops a kick that would take the input past
 * WORK_BUDGET.  Kicks are the input's writes to QueueNotify and Status. */
#define MAX_KICKS 64u
#define WORK_BUDGET (2u * VIRTIO_BALLOON_MAX_PFNS)

enum role { R_INFLATE, R_DEFLATE, R_STATS, R_REPORTING, R_NONE };

struct rig {
	struct guest_mem gm;
	struct virtio_balloon b;
	struct mmio_bus bus;
	uint16_t num;            /* the queue size the harness's driver uses */
	uint64_t features;       /* what the harness's driver negotiates */
	int irq_level;
	bool driving;            /* the harness's own set-up: not counted */
	unsigned kicks;
	uint64_t budget;         /* work left (WORK_BUDGET) */
	struct virtio_balloon_counters prev;
};

/* Queue q's role under the negotiated features (5.5.2), as the driver
 * numbers them: the harness's own account, not the device's. */
static enum role role_of(const struct virtio_mmio *t, unsigned q)
{
	bool stats = virtio_mmio_has_feature(t, VIRTIO_BALLOON_F_STATS_VQ);
	bool reporting = virtio_mmio_has_feature(t, VIRTIO_BALLOON_F_PAGE_REPORTING);

	if (q < 2)
		return q ? R_DEFLATE : R_INFLATE;
	if (q == 2 && stats)
		return R_STATS;
	if (q == (stats ? 3u : 2u) && reporting)
		return R_REPORTING;
	return R_NONE;
}

/* What a notify of queue q would cost now: the chains available, walked
 * on a copy of the queue (virtq_pop changes nothing else).  The device's
 * own releases zero memory as it goes, which mostly cuts its walk short;
 * a zeroed avail entry (head 0) can send it to a longer chain, so the
 * window also charges what the counters say was done beyond the price. */
static uint64_t queue_cost(struct rig *r, unsigned q)
{
	static struct virtq_chain c;
	const struct virtio_mmio *t = &r->b.transport;
	struct virtq vq = t->vq[q];
	enum role role = role_of(t, q);
	struct fv_error err;
	uint64_t cost = 0;

	if (role == R_STATS || role == R_NONE)
		return 0;
	while (virtq_pop(&vq, &r->gm, &c, &err) == 1) {
		uint64_t pfns = c.out_len / 4;

		if (pfns > VIRTIO_BALLOON_MAX_PFNS)
			pfns = 0;           /* refused before any work */
		if (role == R_INFLATE)
			cost += pfns;
		else if (role == R_DEFLATE)
			cost += pfns / 64;  /* counted, no system call */
		else
			cost += c.nr;       /* one release per range */
	}
	return cost;
}

/* The same from the counters, for what was done. */
static uint64_t work_done(const struct virtio_balloon_counters *c)
{
	return c->inflated_pages + c->reports + c->deflated_pages / 64;
}

/* The work a 4-byte write of v at register off sets off. */
static uint64_t kick_cost(struct rig *r, uint64_t off, uint32_t v)
{
	const struct virtio_mmio *t = &r->b.transport;
	uint64_t cost = 0;

	if (off == VIRTIO_MMIO_QUEUE_NOTIFY)
		return v < VIRTIO_MMIO_MAX_QUEUES && virtio_mmio_live(t) ?
		       queue_cost(r, v) : 0;
	/* Status: DRIVER_OK serves every queue */
	if (!virtio_mmio_live(t) && (v & VIRTIO_STATUS_DRIVER_OK))
		for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++)
			cost += queue_cost(r, q);
	return cost;
}

/* The device's MMIO window; the input's kicks are counted (MAX_KICKS) and
 * priced (WORK_BUDGET). */
static void window(void *opaque, uint64_t off, bool is_write, uint8_t *data,
		   unsigned len)
{
	struct rig *r = opaque;

	if (is_write && !r->driving &&
	    (off == VIRTIO_MMIO_QUEUE_NOTIFY || off == VIRTIO_MMIO_STATUS)) {
		uint64_t cost = 0, done = work_done(&r->b.c);

		if (r->kicks == MAX_KICKS)
			return;
		if (len == 4) {
			uint32_t v;

			memcpy(&v, data, 4);
			cost = kick_cost(r, off, v);
		}
		if (cost > r->budget)
			return;
		r->budget -= cost;
		r->kicks++;
		virtio_mmio_access(&r->b.transport, off, is_write, data, len);
		done = work_done(&r->b.c) - done;
		if (done > cost)
			r->budget -= done - cost < r->budget ? done - cost : r->budget;
		return;
	}
	virtio_mmio_access(&r->b.transport, off, is_write, data, len);
}

/* Device set-up as a driver does it (3.1.1), with the set-up's features,
 * all four queues on the harness's rings. */
static void driver_init(struct rig *r)
{
	r->driving = true;
	rig_negotiate(&r->bus, BASE, RIG_ACK_ALONE,
		      r->features | (1ull << VIRTIO_F_VERSION_1));
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++) {
		rig_queue(&r->bus, BASE, q, r->num, DESC_GPA(q), AVAIL_GPA(q),
			  USED_GPA(q));
		if (!r->b.transport.vq[q].ready)
			abort();
	}
	rig_driver_ok(&r->bus, BASE);
	r->driving = false;
}

static bool counters_down(const struct virtio_balloon_counters *a,
			  const struct virtio_balloon_counters *b)
{
	return b->inflated_pages < a->inflated_pages ||
	       b->deflated_pages < a->deflated_pages ||
	       b->reported_bytes < a->reported_bytes || b->reports < a->reports ||
	       b->released_written < a->released_written ||
	       b->bad_pfns < a->bad_pfns || b->stats_updates < a->stats_updates;
}

/* What holds after any operation. */
static void check_state(struct rig *r)
{
	const struct virtio_mmio *t = &r->b.transport;
	const struct virtio_balloon *b = &r->b;

	rig_check_negotiated(t);
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++) {
		const struct virtq *vq = &t->vq[q];
		/* every chain taken was answered, unless the device gave up;
		 * the one exception is the statistics buffer it holds */
		uint16_t pending = (uint16_t)(vq->last_avail - vq->used_idx);

		if (virtio_mmio_live(t) && pending != (q == 2 && b->stats_held))
			abort();
		if (vq->ready && (vq->num == 0 ||
				  vq->num > virtio_balloon_ops.queue_max ||
				  (vq->num & (vq->num - 1)) ||
				  !gmem_range_ok(&r->gm, vq->used_gpa, 6 + 8ull * vq->num)))
			abort();
	}
	if (b->num_pages > b->ram_pages || b->ram_pages != MEM / GMEM_PAGE_SIZE)
		abort();
	if ((t->isr & ~3u) || r->irq_level != (t->isr != 0))
		abort();
	if (counters_down(&r->prev, &b->c))
		abort();
	r->prev = b->c;
}

/* After a kick of queue q (q < 4): all that was available on an inflate,
 * deflate or reporting queue is used, the statistics queue took one buffer
 * if it held none, or the device is NEEDS_RESET; and what was used is
 * announced unless the driver asked for no interrupts. */
static void check_served(struct rig *r, unsigned q, uint16_t used_before,
			 bool held_before)
{
	const struct virtio_mmio *t = &r->b.transport;
	const struct virtq *vq = &t->vq[q];
	enum role role = role_of(t, q);

	if (virtio_mmio_live(t) && vq->ready) {
		bool drained = rig_mem_u16(&r->gm, vq->avail_gpa + 2) == vq->last_avail;

		if (role == R_STATS ? !held_before && !r->b.stats_held && !drained :
		    role != R_NONE && !drained)
			abort();
		/* a queue without a role takes nothing */
		if (role == R_NONE && vq->used_idx != used_before)
			abort();
	}
	if (vq->used_idx != used_before &&
	    !(rig_mem_u16(&r->gm, vq->avail_gpa) & VIRTQ_AVAIL_F_NO_INTERRUPT) &&
	    !(t->isr & VIRTIO_MMIO_INT_VRING))
		abort();
}

static void notify(struct rig *r, uint32_t q)
{
	const struct virtio_mmio *t = &r->b.transport;
	uint16_t used = q < VIRTIO_MMIO_MAX_QUEUES ? t->vq[q].used_idx : 0;
	bool held = r->b.stats_held;
	unsigned kicks = r->kicks;

	rig_reg_write(&r->bus, BASE, VIRTIO_MMIO_QUEUE_NOTIFY, q);
	if (r->kicks != kicks && q < VIRTIO_MMIO_MAX_QUEUES)
		check_served(r, q, used, held);
}

/* The driver's half of 2.7.13 on queue q: entry, then idx, then notify. */
static void op_publish(struct rig *r, struct input *in)
{
	unsigned q = (unsigned)take(in, 1) & 3;
	uint16_t head = (uint16_t)take(in, 2);
	uint16_t idx = rig_mem_u16(&r->gm, AVAIL_GPA(q) + 2);
	struct fv_error err;

	gmem_write(&r->gm, AVAIL_GPA(q) + 4 + 2ull * (idx % r->num), &head, 2, &err);
	idx++;
	gmem_write(&r->gm, AVAIL_GPA(q) + 2, &idx, 2, &err);
	notify(r, q);
}

static void op_desc(struct rig *r, struct input *in)
{
	unsigned q = (unsigned)take(in, 1) & 3;

	rig_op_desc(&r->gm, in, DESC_GPA(q));
}

/* The host asks for the figures: a held statistics buffer goes back. */
static void op_query(struct rig *r)
{
	const struct virtio_mmio *t = &r->b.transport;
	const struct virtq *vq = &t->vq[2];
	uint64_t ram = r->b.ram_pages * GMEM_PAGE_SIZE;
	bool held = r->b.stats_held;
	bool back = held && virtio_mmio_live(t) && vq->ready;
	uint16_t used = vq->used_idx;
	struct virtio_balloon_info info;

	virtio_balloon_query(&r->b, &info);
	if (memcmp(&info.c, &r->b.c, sizeof(info.c)) ||
	    memcmp(info.stat, r->b.stat, sizeof(info.stat)) ||
	    info.stat_seen != r->b.stat_seen ||
	    (info.stat_seen >> VIRTIO_BALLOON_S_NR) ||
	    info.target_bytes != ram - (uint64_t)r->b.num_pages * GMEM_PAGE_SIZE ||
	    info.actual_bytes > ram || info.actual_bytes % GMEM_PAGE_SIZE ||
	    (r->b.actual <= r->b.ram_pages &&
	     info.actual_bytes != ram - (uint64_t)r->b.actual * GMEM_PAGE_SIZE))
		abort();
	if (!back) {
		/* nothing to hand back, or nowhere to: all stays as it was */
		if (r->b.stats_held != held || vq->used_idx != used)
			abort();
		return;
	}
	if (r->b.stats_held)
		abort();
	if (!(t->status & VIRTIO_STATUS_NEEDS_RESET)) {
		if (vq->used_idx != (uint16_t)(used + 1))
			abort();
		if (!(rig_mem_u16(&r->gm, vq->avail_gpa) & VIRTQ_AVAIL_F_NO_INTERRUPT) &&
		    !(t->isr & VIRTIO_MMIO_INT_VRING))
			abort();
	}
}

/* The host sets a target: refused outside 1 MiB..RAM, else num_pages and
 * a configuration interrupt. */
static void op_target(struct rig *r, struct input *in)
{
	const struct virtio_mmio *t = &r->b.transport;
	uint64_t bytes = take(in, 2) << 12;
	uint64_t ram = r->b.ram_pages * GMEM_PAGE_SIZE;
	uint32_t gen = t->config_generation, pages = r->b.num_pages;
	struct fv_error err;
	int rc;

	bytes |= take(in, 1);
	rc = virtio_balloon_set_target(&r->b, bytes, &err);
	if (bytes < (1ull << 20) || bytes > ram) {
		if (rc != -1 || err.code != FV_E_INVAL || !err.msg[0] ||
		    t->config_generation != gen || r->b.num_pages != pages)
			abort();
		return;
	}
	if (rc != 0 || r->b.num_pages != (ram - bytes) / GMEM_PAGE_SIZE ||
	    t->config_generation != gen + 1 || !(t->isr & VIRTIO_MMIO_INT_CONFIG))
		abort();
}

static void op_reset(struct rig *r, struct input *in)
{
	const struct virtio_mmio *t = &r->b.transport;
	unsigned how = (unsigned)take(in, 1);

	r->driving = true;
	rig_reg_write(&r->bus, BASE, VIRTIO_MMIO_STATUS, 0);
	r->driving = false;
	rig_check_reset(t);
	if (r->irq_level || r->b.stats_held || r->b.actual)
		abort();
	if (how & 1) {
		struct fv_error err;

		for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++)
			gmem_fill(&r->gm, AVAIL_GPA(q), 0, 0x2000, &err);
		driver_init(r);
	}
}

static void run(struct rig *r, struct input *in)
{
	while (in->left) {
		unsigned op = (unsigned)take(in, 1) % 9;

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
			/* the registers, the config space (num_pages,
			 * actual) and beyond */
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
			op_query(r);
			break;
		case 7:
			op_target(r, in);
			break;
		case 8:
			op_reset(r, in);
			break;
		}
		check_state(r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rig r;
	struct input in = { data, size };
	struct fv_error err;
	unsigned setup;

	if (size == 0)
		return 0;
	setup = (unsigned)take(&in, 1);
	memset(&r, 0, sizeof(r));
	r.features = ((setup & 1) ? 1ull << VIRTIO_BALLOON_F_STATS_VQ : 0) |
		     ((setup & 2) ? 1ull << VIRTIO_BALLOON_F_PAGE_REPORTING : 0);
	r.num = (uint16_t)(1u << ((setup >> 3) & 7));
	r.budget = WORK_BUDGET;
	if (gmem_create(&r.gm, -1, MEM, &err) ||
	    virtio_balloon_init(&r.b, &r.gm, BASE, &err) ||
	    mmio_register(&r.bus, BASE, VIRTIO_MMIO_WINDOW, window, &r,
			  "virtio-balloon", &err))
		abort();
	r.b.transport.set_irq = rig_set_irq;
	r.b.transport.irq_opaque = &r.irq_level;
	r.b.transport.log = rig_log_line;
	if (!(setup & 4)) {
		driver_init(&r);
		if (!virtio_mmio_live(&r.b.transport))
			abort();
	}
	check_state(&r);
	run(&r, &in);
	in.left = 0;
	op_reset(&r, &in);
	check_state(&r);
	virtio_balloon_destroy(&r.b);
	gmem_destroy(&r.gm);
	return 0;
}
