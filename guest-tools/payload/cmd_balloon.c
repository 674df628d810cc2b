/*
 * cmd_balloon.c - the payload's virtio-balloon driver (virtio 1.x 5.5):
 * BALLOON_ADJUST (inflate/deflate to num_pages), BALLOON_REPORT (free page
 * reporting) and BALLOON_STATS.  The queues as VIRTIO_INIT set them up
 * with statistics and reporting taken: inflateq 0, deflateq 1, statsq 2,
 * reporting 3.
 */
#include "virtio_drv.h"

#define Q_INFLATE 0u
#define Q_DEFLATE 1u
#define Q_STATS 2u
#define Q_REPORTING 3u
#define PFNS_PER_BUFFER 256u
#define REPORT_DESCS 8u

static int stats_posted;   /* a buffer is with the device */

static uint32_t config32(const struct fv_guest_config *cfg, uint64_t i, uint32_t off)
{
	return vdrv_read(vdrv_window(cfg, i), MMIO_CONFIG + off);
}

/* Send PFNs of probe pages [from, to) on queue q, a buffer at a time. */
static int move_pages(const struct fv_guest_config *cfg, uint64_t i, unsigned q,
		      uint64_t from, uint64_t to)
{
	uint32_t *pfn = (uint32_t *)(uintptr_t)vdrv_page(cfg, i, q, 3);

	while (from < to) {
		uint64_t n = to - from < PFNS_PER_BUFFER ? to - from : PFNS_PER_BUFFER;
		struct vdesc d = { (uint64_t)(uintptr_t)pfn, (uint32_t)(n * 4), 0, 0 };

		for (uint64_t k = 0; k < n; k++)
			pfn[k] = (uint32_t)((cfg->probe_gpa >> 12) + from + k);
		if (vdrv_submit(cfg, i, q, &d, 1) < 0)
			return -1;
		from += n;
	}
	return 0;
}

void cmd_balloon_adjust(struct vcpu *v)
{
	const struct fv_guest_config *cfg = v->cfg;
	uint64_t i = v->arg[0], want, have;
	int r = 0;

	if (!vdrv_window_ok(v, i) || !vdrv_up(i)) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}
	want = config32(cfg, i, 0);
	have = config32(cfg, i, 4);
	v->result[0] = want;
	if (want > cfg->probe_pages || have > cfg->probe_pages) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}
	/* 5.5.6.1: the pages first, then `actual`. */
	if (want > have)
		r = move_pages(cfg, i, Q_INFLATE, have, want);
	else if (want < have)
		r = move_pages(cfg, i, Q_DEFLATE, want, have);
	if (r) {
		v->status = FV_STATUS_MISMATCH;
		return;
	}
	vdrv_write(vdrv_window(cfg, i), MMIO_CONFIG + 4, (uint32_t)want);
	v->result[1] = config32(cfg, i, 4);
	v->result[2] = want > have ? want - have : have - want;
}

void cmd_balloon_report(struct vcpu *v)
{
	const struct fv_guest_config *cfg = v->cfg;
	uint64_t i = v->arg[0], first = v->arg[1], count = v->arg[2];
	uint64_t per = v->arg[3] ? v->arg[3] : 1, gpa, bad = 0;

	if (!vdrv_window_ok(v, i) || !vdrv_up(i) || first > cfg->data_pages ||
	    count > cfg->data_pages - first || per > (1u << 20) / FV_PAGE_SIZE) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}
	gpa = cfg->data_gpa + first * FV_PAGE_SIZE;
	for (uint64_t done = 0; done < count;) {
		struct vdesc d[REPORT_DESCS];
		unsigned n = 0;

		for (; n < REPORT_DESCS && done < count; n++) {
			uint64_t pages = count - done < per ? count - done : per;

			d[n] = (struct vdesc){ gpa + done * FV_PAGE_SIZE,
					       (uint32_t)(pages * FV_PAGE_SIZE),
					       VDESC_WRITE | VDESC_NEXT, (uint16_t)(n + 1) };
			done += pages;
		}
		d[n - 1].flags = VDESC_WRITE;
		if (vdrv_submit(cfg, i, Q_REPORTING, d, n) < 0) {
			v->status = FV_STATUS_MISMATCH;
			return;
		}
	}
	v->result[0] = count * FV_PAGE_SIZE;
	for (uint64_t k = 0; k < count * FV_PAGE_WORDS; k++)
		bad += ((volatile uint64_t *)(uintptr_t)gpa)[k] != 0;
	v->result[1] = bad;
	if (data_adopt(cfg, gpa, count * FV_PAGE_SIZE))
		v->status = FV_STATUS_BAD_ARGS;
}

static void put_stat(uint8_t *e, uint16_t tag, uint64_t val)
{
	e[0] = (uint8_t)tag;
	e[1] = (uint8_t)(tag >> 8);
	for (unsigned k = 0; k < 8; k++)
		e[2 + k] = (uint8_t)(val >> (8 * k));
}

void cmd_balloon_stats(struct vcpu *v)
{
	const struct fv_guest_config *cfg = v->cfg;
	uint64_t i = v->arg[0];
	uint8_t *buf;
	struct vdesc d;

	if (!vdrv_window_ok(v, i) || !vdrv_up(i)) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}
	/* The device gives a buffer back when the host wants fresh figures. */
	if (stats_posted && !vdrv_used(cfg, i, Q_STATS, NULL, NULL))
		return;
	buf = (uint8_t *)(uintptr_t)vdrv_page(cfg, i, Q_STATS, 3);
	put_stat(buf, 4, v->arg[1]);        /* VIRTIO_BALLOON_S_MEMFREE */
	put_stat(buf + 10, 5, v->arg[2]);   /* VIRTIO_BALLOON_S_MEMTOT */
	put_stat(buf + 20, 6, v->arg[3]);   /* VIRTIO_BALLOON_S_AVAIL */
	d = (struct vdesc){ (uint64_t)(uintptr_t)buf, 30, 0, 0 };
	vdrv_publish(cfg, i, Q_STATS, &d, 0, 1);
	stats_posted = 1;
	v->result[0] = 1;
}
