/*
 * cmd_virtio.c - minimal virtio-mmio drivers for the test payload: device
 * bring-up (VIRTIO_INIT), virtio-blk requests (BLK) and malformed chains
 * on purpose (BLK_BAD).  Written from the virtio 1.x spec (4.2.3 for the
 * transport's driver steps, 2.7 for split rings, 5.2 for the block device),
 * polling the used ring: test guests take no interrupts.
 *
 * vCPU 0 only: one request in flight per device, descriptors 0..n-1 reused
 * for every request, so the driver needs no free list.
 *
 * Scratch region (cfg->virtio_gpa, FV_VIRTIO_SCRATCH_PAGES pages): for
 * window i, pages 4i..4i+3 hold its descriptor table, driver area, device
 * area and request header page; the last FV_VIRTIO_BLK_MAX_BYTES are the
 * shared data buffer.
 */
#include "payload.h"

#define QSIZE 16u
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
#define MMIO_CONFIG 0x100

#define S_ACK 1u
#define S_DRIVER 2u
#define S_DRIVER_OK 4u
#define S_FEATURES_OK 8u

#define F_VERSION_1 (1ull << 32)
/* virtio-blk: SEG_MAX, RO, BLK_SIZE, FLUSH, DISCARD, WRITE_ZEROES */
#define BLK_KNOWN ((1ull << 2) | (1ull << 5) | (1ull << 6) | (1ull << 9) | \
		   (1ull << 13) | (1ull << 14))
#define DESC_NEXT 1u
#define DESC_WRITE 2u
#define BLK_T_IN 0u
#define BLK_T_OUT 1u
#define BLK_T_GET_ID 8u
#define BLK_T_DISCARD 11u
#define BLK_T_WRITE_ZEROES 13u

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct drv {
	int up;
	uint16_t avail_idx;
	uint16_t used_seen;
};

static struct drv drv[FV_VIRTIO_MAX_DEVICES];

static uint64_t window(const struct fv_guest_config *cfg, uint64_t i)
{
	return cfg->virtio_mmio_gpa + i * FV_VIRTIO_MMIO_SIZE;
}

static uint32_t mr(uint64_t base, uint32_t off)
{
	return *(volatile uint32_t *)(uintptr_t)(base + off);
}

static void mw(uint64_t base, uint32_t off, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)(base + off) = v;
}

static void mw64(uint64_t base, uint32_t off, uint64_t v)
{
	mw(base, off, (uint32_t)v);
	mw(base, off + 4, (uint32_t)(v >> 32));
}

static uint64_t ring_page(const struct fv_guest_config *cfg, uint64_t i,
			  unsigned k)
{
	return cfg->virtio_gpa + (4 * i + k) * FV_PAGE_SIZE;
}

static uint64_t data_buffer(const struct fv_guest_config *cfg)
{
	return cfg->virtio_gpa + cfg->virtio_pages * FV_PAGE_SIZE -
	       FV_VIRTIO_BLK_MAX_BYTES;
}

static int window_ok(const struct vcpu *v, uint64_t i)
{
	return v->index == 0 && i < v->cfg->virtio_mmio_nr &&
	       i < FV_VIRTIO_MAX_DEVICES && v->cfg->virtio_pages * FV_PAGE_SIZE >=
	       4 * FV_VIRTIO_MAX_DEVICES * FV_PAGE_SIZE + FV_VIRTIO_BLK_MAX_BYTES;
}

/* 4.2.3.1: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK, queue 0,
 * DRIVER_OK. */
void cmd_virtio_init(struct vcpu *v)
{
	const struct fv_guest_config *cfg = v->cfg;
	uint64_t i = v->arg[0], base, offered, taken;
	uint32_t max;

	if (!window_ok(v, i)) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}
	base = window(cfg, i);
	drv[i].up = 0;
	if (mr(base, MMIO_MAGIC) != 0x74726976u || mr(base, MMIO_VERSION) != 2) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}
	v->result[0] = mr(base, MMIO_DEVICE_ID);
	mw(base, MMIO_STATUS, 0);
	mw(base, MMIO_STATUS, S_ACK);
	mw(base, MMIO_STATUS, S_ACK | S_DRIVER);
	mw(base, MMIO_DEVICE_FEATURES_SEL, 1);
	offered = (uint64_t)mr(base, MMIO_DEVICE_FEATURES) << 32;
	mw(base, MMIO_DEVICE_FEATURES_SEL, 0);
	offered |= mr(base, MMIO_DEVICE_FEATURES);
	taken = offered & (F_VERSION_1 | (v->result[0] == 2 ? BLK_KNOWN : 0));
	v->result[1] = offered;
	v->result[2] = taken;
	mw(base, MMIO_DRIVER_FEATURES_SEL, 0);
	mw(base, MMIO_DRIVER_FEATURES, (uint32_t)taken);
	mw(base, MMIO_DRIVER_FEATURES_SEL, 1);
	mw(base, MMIO_DRIVER_FEATURES, (uint32_t)(taken >> 32));
	mw(base, MMIO_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	if (!(mr(base, MMIO_STATUS) & S_FEATURES_OK))
		goto refused;
	mw(base, MMIO_QUEUE_SEL, 0);
	max = mr(base, MMIO_QUEUE_NUM_MAX);
	if (max == 0 || mr(base, MMIO_QUEUE_READY))
		goto refused;
	memset((void *)(uintptr_t)ring_page(cfg, i, 0), 0, 3 * FV_PAGE_SIZE);
	mw(base, MMIO_QUEUE_NUM, max < QSIZE ? max : QSIZE);
	mw64(base, MMIO_QUEUE_DESC, ring_page(cfg, i, 0));
	mw64(base, MMIO_QUEUE_DRIVER, ring_page(cfg, i, 1));
	mw64(base, MMIO_QUEUE_DEVICE, ring_page(cfg, i, 2));
	mw(base, MMIO_QUEUE_READY, 1);
	mw(base, MMIO_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	v->result[3] = mr(base, MMIO_STATUS);
	if (!(v->result[3] & S_DRIVER_OK) || (v->result[3] & 0x40))
		goto refused;
	v->result[4] = mr(base, MMIO_CONFIG) | (uint64_t)mr(base, MMIO_CONFIG + 4) << 32;
	drv[i].up = 1;
	drv[i].avail_idx = 0;
	drv[i].used_seen = 0;
	return;
refused:
	v->result[3] = mr(base, MMIO_STATUS);
	v->status = FV_STATUS_BAD_ARGS;
}

/* Publish descriptors 0..n-1 as one chain and notify queue 0 (2.7.13). */
static void publish(const struct fv_guest_config *cfg, uint64_t i,
		    const struct desc *d, unsigned n)
{
	volatile struct desc *table = (volatile struct desc *)(uintptr_t)ring_page(cfg, i, 0);
	volatile uint16_t *avail = (volatile uint16_t *)(uintptr_t)ring_page(cfg, i, 1);
	struct drv *s = &drv[i];

	for (unsigned k = 0; k < n; k++) {
		table[k].addr = d[k].addr;
		table[k].len = d[k].len;
		table[k].flags = d[k].flags;
		table[k].next = d[k].next;
	}
	avail[2 + s->avail_idx % QSIZE] = 0;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	avail[1] = ++s->avail_idx;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	mw(window(cfg, i), MMIO_QUEUE_NOTIFY, 0);
}

/* Publish a chain and wait until the device used it: it serves it during
 * the notify's exit, so the wait is a bound, not a timer.  Returns the used
 * length, or -1 if the device never used it. */
static int64_t submit(const struct fv_guest_config *cfg, uint64_t i,
		      const struct desc *d, unsigned n)
{
	volatile uint16_t *used = (volatile uint16_t *)(uintptr_t)ring_page(cfg, i, 2);
	struct drv *s = &drv[i];

	publish(cfg, i, d, n);
	for (uint64_t spin = 0; used[1] == s->used_seen; spin++) {
		if (spin > 100000000ull)
			return -1;
		cpu_pause();
	}
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	s->used_seen++;
	/* used ring: flags, idx, then { u32 id, u32 len } per entry */
	return (int64_t)*(volatile uint32_t *)(uintptr_t)
		(ring_page(cfg, i, 2) + 4 + 8 * ((s->used_seen - 1u) % QSIZE) + 4);
}

static void pattern_fill(uint64_t *buf, uint64_t seed, uint64_t disk_off,
			 uint64_t bytes)
{
	for (uint64_t k = 0; k < bytes / 8; k++)
		buf[k] = fv_blk_pattern(seed, disk_off + 8 * k);
}

static uint64_t pattern_misses(const uint64_t *buf, uint64_t seed,
			       uint64_t disk_off, uint64_t bytes)
{
	uint64_t bad = 0;

	for (uint64_t k = 0; k < bytes / 8; k++)
		bad += buf[k] != fv_blk_pattern(seed, disk_off + 8 * k);
	return bad;
}

/* The data descriptors: one, or four of equal size (FV_BLK_SPLIT). */
static unsigned data_descs(struct desc *d, uint64_t buf, uint64_t bytes,
			   uint16_t flags, unsigned first, uint64_t split)
{
	unsigned parts = split && bytes % (4 * 512) == 0 ? 4 : 1;

	for (unsigned k = 0; k < parts; k++) {
		d[first + k].addr = buf + k * (bytes / parts);
		d[first + k].len = (uint32_t)(bytes / parts);
		d[first + k].flags = flags | DESC_NEXT;
		d[first + k].next = (uint16_t)(first + k + 1);
	}
	return parts;
}

static int blk_args_ok(const struct vcpu *v, uint64_t buf, uint64_t bytes)
{
	const struct fv_guest_config *cfg = v->cfg;

	if (!window_ok(v, v->arg[0]) || !drv[v->arg[0]].up ||
	    bytes % 512 || bytes > FV_VIRTIO_BLK_MAX_BYTES)
		return 0;
	if (v->arg[6] & FV_BLK_ADOPT)
		return buf >= cfg->data_gpa && buf % FV_PAGE_SIZE == 0 &&
		       bytes % FV_PAGE_SIZE == 0 &&
		       (buf - cfg->data_gpa) / FV_PAGE_SIZE + bytes / FV_PAGE_SIZE <=
		       cfg->data_pages;
	return buf == data_buffer(cfg);
}

void cmd_blk(struct vcpu *v)
{
	const struct fv_guest_config *cfg = v->cfg;
	uint64_t i = v->arg[0], type = v->arg[1], sector = v->arg[2];
	uint64_t bytes = v->arg[3], seed = v->arg[5], flags = v->arg[6];
	uint64_t buf = v->arg[4] ? v->arg[4] : data_buffer(cfg);
	uint64_t hdr, *h;
	volatile uint8_t *status;
	struct desc d[8];
	unsigned n = 1;
	int64_t used;

	if (!blk_args_ok(v, buf, bytes)) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}
	hdr = ring_page(cfg, i, 3);
	h = (uint64_t *)(uintptr_t)hdr;
	status = (volatile uint8_t *)(uintptr_t)(hdr + 64);
	h[0] = type;            /* type, reserved */
	h[1] = sector;
	*status = 0xff;
	d[0] = (struct desc){ hdr, 16, DESC_NEXT, 1 };
	if (type == BLK_T_OUT && (flags & FV_BLK_FILL))
		pattern_fill((uint64_t *)(uintptr_t)buf, seed, sector * 512, bytes);
	if (type == BLK_T_IN || type == BLK_T_OUT) {
		n += data_descs(d, buf, bytes, type == BLK_T_IN ? DESC_WRITE : 0, 1,
				flags & FV_BLK_SPLIT);
	} else if (type == BLK_T_GET_ID) {
		memset((void *)(uintptr_t)(hdr + 256), 0, 32);
		d[n++] = (struct desc){ hdr + 256, 20, DESC_WRITE | DESC_NEXT, 2 };
	} else if (type == BLK_T_DISCARD || type == BLK_T_WRITE_ZEROES) {
		uint64_t *range = (uint64_t *)(uintptr_t)(hdr + 128);

		range[0] = sector;
		range[1] = (bytes / 512) |
			   ((flags & FV_BLK_UNMAP) ? (uint64_t)1 << 32 : 0);
		d[n++] = (struct desc){ hdr + 128, 16, DESC_NEXT, 2 };
	}
	d[n] = (struct desc){ hdr + 64, 1, DESC_WRITE, 0 };
	used = submit(cfg, i, d, n + 1);
	v->result[0] = *status;
	v->result[1] = used < 0 ? ~0ull : (uint64_t)used;
	v->result[3] = mr(window(cfg, i), MMIO_STATUS);
	if (type == BLK_T_GET_ID)
		v->result[4] = *(volatile uint64_t *)(uintptr_t)(hdr + 256);
	if (type == BLK_T_IN && (flags & FV_BLK_CHECK))
		v->result[2] = pattern_misses((const uint64_t *)(uintptr_t)buf,
					      seed, sector * 512, bytes);
	if (type == BLK_T_IN && (flags & FV_BLK_ADOPT) && *status == 0 &&
	    data_adopt(cfg, buf, bytes))
		v->status = FV_STATUS_BAD_ARGS;
	if (used < 0)
		v->status = FV_STATUS_MISMATCH;
}

/* A chain the device must refuse; it marks itself NEEDS_RESET and the
 * driver must bring it up again (VIRTIO_INIT) to carry on. */
void cmd_blk_bad(struct vcpu *v)
{
	const struct fv_guest_config *cfg = v->cfg;
	uint64_t i = v->arg[0], hdr, base;
	struct desc d[3];
	unsigned n;

	if (!window_ok(v, i) || !drv[i].up) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}
	hdr = ring_page(cfg, i, 3);
	((uint64_t *)(uintptr_t)hdr)[0] = BLK_T_IN;
	((uint64_t *)(uintptr_t)hdr)[1] = 0;
	switch (v->arg[1]) {
	case FV_BAD_LOOP:
		d[0] = (struct desc){ hdr, 16, DESC_NEXT, 1 };
		d[1] = (struct desc){ hdr + 64, 1, DESC_WRITE | DESC_NEXT, 0 };
		n = 2;
		break;
	case FV_BAD_OUTSIDE_RAM:
		d[0] = (struct desc){ hdr, 16, DESC_NEXT, 1 };
		d[1] = (struct desc){ cfg->mem_size + (1ull << 20), 512,
				      DESC_WRITE | DESC_NEXT, 2 };
		d[2] = (struct desc){ hdr + 64, 1, DESC_WRITE, 0 };
		n = 3;
		break;
	case FV_BAD_NO_STATUS:
		d[0] = (struct desc){ hdr, 16, 0, 0 };
		n = 1;
		break;
	default:
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}
	publish(cfg, i, d, n);
	base = window(cfg, i);
	v->result[0] = mr(base, MMIO_STATUS);
	v->result[1] = mr(base, MMIO_INTERRUPT_STATUS);
	mw(base, MMIO_INTERRUPT_ACK, (uint32_t)v->result[1]);
	drv[i].up = 0;
}
