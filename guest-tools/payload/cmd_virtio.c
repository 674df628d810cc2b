/*
 * cmd_virtio.c - the payload's virtio-mmio driver core (virtio_drv.h) and
 * VIRTIO_INIT: bring a device up (4.2.3.1: reset, ACKNOWLEDGE, DRIVER,
 * features, FEATURES_OK, its queues, DRIVER_OK).
 */
#include "virtio_drv.h"

#define S_ACK 1u
#define S_DRIVER 2u
#define S_DRIVER_OK 4u
#define S_FEATURES_OK 8u
#define S_NEEDS_RESET 0x40u

#define F_VERSION_1 (1ull << 32)

struct drv {
	int up;
	uint32_t generation;
	uint16_t avail_idx[VDRV_MAX_QUEUES];
	uint16_t used_seen[VDRV_MAX_QUEUES];
};

static struct drv drv[FV_VIRTIO_MAX_DEVICES];

/* What the drivers know, by device ID: virtio-blk SEG_MAX, RO, BLK_SIZE,
 * FLUSH, DISCARD, WRITE_ZEROES; virtio-net MAC, STATUS; virtio-balloon
 * STATS_VQ, PAGE_REPORTING.  Queues each brings up. */
static uint64_t known_features(uint32_t id, unsigned *queues)
{
	switch (id) {
	case 1:
		*queues = 2;
		return (1ull << 5) | (1ull << 16);
	case 2:
		*queues = 1;
		return (1ull << 2) | (1ull << 5) | (1ull << 6) | (1ull << 9) |
		       (1ull << 13) | (1ull << 14);
	case 5:
		*queues = 4;
		return (1ull << 1) | (1ull << 5);
	}
	*queues = 0;
	return 0;
}

uint64_t vdrv_window(const struct fv_guest_config *cfg, uint64_t i)
{
	return cfg->virtio_mmio_gpa + i * FV_VIRTIO_MMIO_SIZE;
}

uint32_t vdrv_read(uint64_t base, uint32_t off)
{
	return *(volatile uint32_t *)(uintptr_t)(base + off);
}

void vdrv_write(uint64_t base, uint32_t off, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)(base + off) = v;
}

static void vdrv_write64(uint64_t base, uint32_t off, uint64_t v)
{
	vdrv_write(base, off, (uint32_t)v);
	vdrv_write(base, off + 4, (uint32_t)(v >> 32));
}

uint64_t vdrv_page(const struct fv_guest_config *cfg, uint64_t i, unsigned q,
		   unsigned k)
{
	return cfg->virtio_gpa + (16 * i + 4 * q + k) * FV_PAGE_SIZE;
}

uint64_t vdrv_data(const struct fv_guest_config *cfg)
{
	return cfg->virtio_gpa + cfg->virtio_pages * FV_PAGE_SIZE -
	       FV_VIRTIO_DATA_BYTES;
}

int vdrv_window_ok(const struct vcpu *v, uint64_t i)
{
	return v->index == 0 && i < v->cfg->virtio_mmio_nr &&
	       i < FV_VIRTIO_MAX_DEVICES &&
	       v->cfg->virtio_pages >= FV_VIRTIO_SCRATCH_PAGES;
}

int vdrv_up(uint64_t i)
{
	return i < FV_VIRTIO_MAX_DEVICES && drv[i].up;
}

void vdrv_down(uint64_t i)
{
	if (i < FV_VIRTIO_MAX_DEVICES)
		drv[i].up = 0;
}

uint32_t vdrv_generation(uint64_t i)
{
	return i < FV_VIRTIO_MAX_DEVICES ? drv[i].generation : 0;
}

void cmd_virtio_init(struct vcpu *v)
{
	const struct fv_guest_config *cfg = v->cfg;
	uint64_t i = v->arg[0], base, offered, taken;
	unsigned queues;

	if (!vdrv_window_ok(v, i)) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}
	base = vdrv_window(cfg, i);
	drv[i].up = 0;
	if (vdrv_read(base, MMIO_MAGIC) != 0x74726976u || vdrv_read(base, MMIO_VERSION) != 2) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}
	v->result[0] = vdrv_read(base, MMIO_DEVICE_ID);
	vdrv_write(base, MMIO_STATUS, 0);
	vdrv_write(base, MMIO_STATUS, S_ACK);
	vdrv_write(base, MMIO_STATUS, S_ACK | S_DRIVER);
	vdrv_write(base, MMIO_DEVICE_FEATURES_SEL, 1);
	offered = (uint64_t)vdrv_read(base, MMIO_DEVICE_FEATURES) << 32;
	vdrv_write(base, MMIO_DEVICE_FEATURES_SEL, 0);
	offered |= vdrv_read(base, MMIO_DEVICE_FEATURES);
	taken = offered & (F_VERSION_1 | known_features((uint32_t)v->result[0], &queues));
	v->result[1] = offered;
	v->result[2] = taken;
	vdrv_write(base, MMIO_DRIVER_FEATURES_SEL, 0);
	vdrv_write(base, MMIO_DRIVER_FEATURES, (uint32_t)taken);
	vdrv_write(base, MMIO_DRIVER_FEATURES_SEL, 1);
	vdrv_write(base, MMIO_DRIVER_FEATURES, (uint32_t)(taken >> 32));
	vdrv_write(base, MMIO_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	if (!queues || !(vdrv_read(base, MMIO_STATUS) & S_FEATURES_OK))
		goto refused;
	for (unsigned q = 0; q < queues; q++) {
		uint32_t max;

		vdrv_write(base, MMIO_QUEUE_SEL, q);
		max = vdrv_read(base, MMIO_QUEUE_NUM_MAX);
		if (max == 0 || vdrv_read(base, MMIO_QUEUE_READY))
			goto refused;
		memset((void *)(uintptr_t)vdrv_page(cfg, i, q, 0), 0, 3 * FV_PAGE_SIZE);
		vdrv_write(base, MMIO_QUEUE_NUM, max < VQ_SIZE ? max : VQ_SIZE);
		vdrv_write64(base, MMIO_QUEUE_DESC, vdrv_page(cfg, i, q, 0));
		vdrv_write64(base, MMIO_QUEUE_DRIVER, vdrv_page(cfg, i, q, 1));
		vdrv_write64(base, MMIO_QUEUE_DEVICE, vdrv_page(cfg, i, q, 2));
		vdrv_write(base, MMIO_QUEUE_READY, 1);
		drv[i].avail_idx[q] = 0;
		drv[i].used_seen[q] = 0;
	}
	vdrv_write(base, MMIO_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	v->result[3] = vdrv_read(base, MMIO_STATUS);
	if (!(v->result[3] & S_DRIVER_OK) || (v->result[3] & S_NEEDS_RESET))
		goto refused;
	v->result[4] = vdrv_read(base, MMIO_CONFIG) |
		       (uint64_t)vdrv_read(base, MMIO_CONFIG + 4) << 32;
	drv[i].up = 1;
	drv[i].generation++;
	return;
refused:
	v->result[3] = vdrv_read(base, MMIO_STATUS);
	v->status = FV_STATUS_BAD_ARGS;
}

void vdrv_publish(const struct fv_guest_config *cfg, uint64_t i, unsigned q,
		  const struct vdesc *d, unsigned first, unsigned n)
{
	volatile struct vdesc *table = (volatile struct vdesc *)(uintptr_t)vdrv_page(cfg, i, q, 0);
	volatile uint16_t *avail = (volatile uint16_t *)(uintptr_t)vdrv_page(cfg, i, q, 1);
	struct drv *s = &drv[i];

	for (unsigned k = 0; k < n; k++) {
		table[first + k].addr = d[k].addr;
		table[first + k].len = d[k].len;
		table[first + k].flags = d[k].flags;
		table[first + k].next = d[k].next;
	}
	/* 2.7.13: the entry, then (release) the index, then the notify. */
	avail[2 + s->avail_idx[q] % VQ_SIZE] = (uint16_t)first;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	avail[1] = ++s->avail_idx[q];
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	vdrv_write(vdrv_window(cfg, i), MMIO_QUEUE_NOTIFY, q);
}

int vdrv_used(const struct fv_guest_config *cfg, uint64_t i, unsigned q,
	      uint32_t *len, uint32_t *head)
{
	volatile uint16_t *used = (volatile uint16_t *)(uintptr_t)vdrv_page(cfg, i, q, 2);
	volatile uint32_t *elem;
	struct drv *s = &drv[i];

	if (used[1] == s->used_seen[q])
		return 0;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	/* device area: flags, idx, then { u32 id, u32 len } per entry */
	elem = (volatile uint32_t *)(uintptr_t)(vdrv_page(cfg, i, q, 2) + 4 +
						8 * (s->used_seen[q] % VQ_SIZE));
	if (head)
		*head = elem[0];
	if (len)
		*len = elem[1];
	s->used_seen[q]++;
	return 1;
}

/*
 * Has a wait for the device lasted too long?  foldvm may serve a notify on
 * its notification thread (ioeventfd) after the guest's write returned,
 * so how long the wait lasts depends on the host's scheduling: it is
 * bounded by 60 s of the guest's TSC, far beyond any scheduling delay on
 * a loaded host and inside the host's own 120 s wait for the command (a
 * count stands in where the TSC rate is unknown).  Only a device that
 * never answers reaches it.
 */
static int vdrv_expired(const struct fv_guest_config *cfg, uint64_t t0,
			uint64_t spins)
{
	if (cfg->tsc_khz)
		return rdtsc() - t0 > cfg->tsc_khz * 1000ull * 60;
	return spins > 10000000000ull;
}

int64_t vdrv_submit(const struct fv_guest_config *cfg, uint64_t i, unsigned q,
		    const struct vdesc *d, unsigned n)
{
	uint64_t t0 = rdtsc();
	uint32_t len;

	vdrv_publish(cfg, i, q, d, 0, n);
	for (uint64_t spin = 0; !vdrv_used(cfg, i, q, &len, NULL); spin++) {
		if (vdrv_expired(cfg, t0, spin))
			return -1;
		cpu_pause();
	}
	return len;
}

uint32_t vdrv_wait_status(const struct fv_guest_config *cfg, uint64_t base,
			  uint32_t bits)
{
	uint64_t t0 = rdtsc();
	uint32_t st = vdrv_read(base, MMIO_STATUS);

	for (uint64_t spin = 0; !(st & bits) && !vdrv_expired(cfg, t0, spin); spin++) {
		cpu_pause();
		st = vdrv_read(base, MMIO_STATUS);
	}
	return st;
}
