/*
 * cmd_blk.c - the payload's virtio-blk driver (virtio 1.x 5.2): BLK, one
 * request at a time, and BLK_BAD, malformed chains on purpose.
 */
#include "virtio_drv.h"

#define BLK_T_IN 0u
#define BLK_T_OUT 1u
#define BLK_T_GET_ID 8u
#define BLK_T_DISCARD 11u
#define BLK_T_WRITE_ZEROES 13u

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
static unsigned data_descs(struct vdesc *d, uint64_t buf, uint64_t bytes,
			   uint16_t flags, unsigned first, uint64_t split)
{
	unsigned parts = split && bytes % (4 * 512) == 0 ? 4 : 1;

	for (unsigned k = 0; k < parts; k++) {
		d[first + k].addr = buf + k * (bytes / parts);
		d[first + k].len = (uint32_t)(bytes / parts);
		d[first + k].flags = flags | VDESC_NEXT;
		d[first + k].next = (uint16_t)(first + k + 1);
	}
	return parts;
}

static int blk_args_ok(const struct vcpu *v, uint64_t buf, uint64_t bytes)
{
	const struct fv_guest_config *cfg = v->cfg;

	if (!vdrv_window_ok(v, v->arg[0]) || !vdrv_up(v->arg[0]) ||
	    bytes % 512 || bytes > FV_VIRTIO_DATA_BYTES)
		return 0;
	if (v->arg[6] & FV_BLK_ADOPT)
		return buf >= cfg->data_gpa && buf % FV_PAGE_SIZE == 0 &&
		       bytes % FV_PAGE_SIZE == 0 &&
		       (buf - cfg->data_gpa) / FV_PAGE_SIZE + bytes / FV_PAGE_SIZE <=
		       cfg->data_pages;
	return buf == vdrv_data(cfg);
}

void cmd_blk(struct vcpu *v)
{
	const struct fv_guest_config *cfg = v->cfg;
	uint64_t i = v->arg[0], type = v->arg[1], sector = v->arg[2];
	uint64_t bytes = v->arg[3], seed = v->arg[5], flags = v->arg[6];
	uint64_t buf = v->arg[4] ? v->arg[4] : vdrv_data(cfg);
	uint64_t hdr, *h;
	volatile uint8_t *status;
	struct vdesc d[8];
	unsigned n = 1;
	int64_t used;

	if (!blk_args_ok(v, buf, bytes)) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}
	hdr = vdrv_page(cfg, i, 0, 3);
	h = (uint64_t *)(uintptr_t)hdr;
	status = (volatile uint8_t *)(uintptr_t)(hdr + 64);
	h[0] = type;            /* type, reserved */
	h[1] = sector;
	*status = 0xff;
	d[0] = (struct vdesc){ hdr, 16, VDESC_NEXT, 1 };
	if (type == BLK_T_OUT && (flags & FV_BLK_FILL))
		pattern_fill((uint64_t *)(uintptr_t)buf, seed, sector * 512, bytes);
	if (type == BLK_T_IN || type == BLK_T_OUT) {
		n += data_descs(d, buf, bytes, type == BLK_T_IN ? VDESC_WRITE : 0, 1,
				flags & FV_BLK_SPLIT);
	} else if (type == BLK_T_GET_ID) {
		memset((void *)(uintptr_t)(hdr + 256), 0, 32);
		d[n++] = (struct vdesc){ hdr + 256, 20, VDESC_WRITE | VDESC_NEXT, 2 };
	} else if (type == BLK_T_DISCARD || type == BLK_T_WRITE_ZEROES) {
		uint64_t *range = (uint64_t *)(uintptr_t)(hdr + 128);

		range[0] = sector;
		range[1] = (bytes / 512) |
			   ((flags & FV_BLK_UNMAP) ? (uint64_t)1 << 32 : 0);
		d[n++] = (struct vdesc){ hdr + 128, 16, VDESC_NEXT, 2 };
	}
	d[n] = (struct vdesc){ hdr + 64, 1, VDESC_WRITE, 0 };
	used = vdrv_submit(cfg, i, 0, d, n + 1);
	v->result[0] = *status;
	v->result[1] = used < 0 ? ~0ull : (uint64_t)used;
	v->result[3] = vdrv_read(vdrv_window(cfg, i), MMIO_STATUS);
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
	struct vdesc d[3];
	unsigned n;

	if (!vdrv_window_ok(v, i) || !vdrv_up(i)) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}
	hdr = vdrv_page(cfg, i, 0, 3);
	((uint64_t *)(uintptr_t)hdr)[0] = BLK_T_IN;
	((uint64_t *)(uintptr_t)hdr)[1] = 0;
	switch (v->arg[1]) {
	case FV_BAD_LOOP:
		d[0] = (struct vdesc){ hdr, 16, VDESC_NEXT, 1 };
		d[1] = (struct vdesc){ hdr + 64, 1, VDESC_WRITE | VDESC_NEXT, 0 };
		n = 2;
		break;
	case FV_BAD_OUTSIDE_RAM:
		d[0] = (struct vdesc){ hdr, 16, VDESC_NEXT, 1 };
		d[1] = (struct vdesc){ cfg->mem_size + (1ull << 20), 512,
				      VDESC_WRITE | VDESC_NEXT, 2 };
		d[2] = (struct vdesc){ hdr + 64, 1, VDESC_WRITE, 0 };
		n = 3;
		break;
	case FV_BAD_NO_STATUS:
		d[0] = (struct vdesc){ hdr, 16, 0, 0 };
		n = 1;
		break;
	default:
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}
	vdrv_publish(cfg, i, 0, d, 0, n);
	base = vdrv_window(cfg, i);
	v->result[0] = vdrv_wait_status(cfg, base, 0x40);	/* NEEDS_RESET */
	v->result[1] = vdrv_read(base, MMIO_INTERRUPT_STATUS);
	vdrv_write(base, MMIO_INTERRUPT_ACK, (uint32_t)v->result[1]);
	vdrv_down(i);
}
