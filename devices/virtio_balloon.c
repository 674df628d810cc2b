/*
 * virtio_balloon.c - virtio-balloon (virtio 1.x, 5.5).
 *
 * Queues, in the order the driver finds them: inflateq 0, deflateq 1,
 * statsq 2 if VIRTIO_BALLOON_F_STATS_VQ was negotiated, then the
 * reporting queue if VIRTIO_BALLOON_F_PAGE_REPORTING was (a queue that
 * does not exist takes no index: Linux's virtio-mmio numbers only the
 * queues it sets up, and QEMU's statsq always exists, so both agree when
 * statistics are negotiated).  No FREE_PAGE_HINT and no PAGE_POISON, so
 * the config space is num_pages and actual.
 *
 * Inflate and deflate buffers are arrays of le32 page frame numbers in the
 * device-readable part (5.5.6); reported ranges are the device-writable
 * buffers of a reporting chain (5.5.6.5), handed back with length 0.
 */
#include <string.h>
#include "devices/virtio_balloon.h"

enum balloon_queue { BQ_INFLATE, BQ_DEFLATE, BQ_STATS, BQ_REPORTING, BQ_NONE };

/* The role of queue index q under the negotiated features. */
static enum balloon_queue queue_role(const struct virtio_mmio *t, unsigned q)
{
	bool stats = virtio_mmio_has_feature(t, VIRTIO_BALLOON_F_STATS_VQ);
	bool reporting = virtio_mmio_has_feature(t, VIRTIO_BALLOON_F_PAGE_REPORTING);

	if (q <= BQ_DEFLATE)
		return (enum balloon_queue)q;
	if (q == 2 && stats)
		return BQ_STATS;
	if (reporting && q == (stats ? 3u : 2u))
		return BQ_REPORTING;
	return BQ_NONE;
}

/* The config space as the driver sees it: num_pages, actual. */
static void balloon_config(const struct virtio_balloon *b,
			   uint8_t c[VIRTIO_BALLOON_CONFIG_LEN])
{
	virtio_put_le(c, b->num_pages, 4);
	virtio_put_le(c + 4, b->actual, 4);
}

static void balloon_config_read(void *dev, uint32_t off, uint8_t *buf, unsigned len)
{
	uint8_t c[VIRTIO_BALLOON_CONFIG_LEN];

	balloon_config(dev, c);
	memcpy(buf, c + off, len);
}

/* Only `actual` is the driver's to write (5.5.4). */
static void balloon_config_write(void *dev, uint32_t off, const uint8_t *buf,
				 unsigned len)
{
	struct virtio_balloon *b = dev;
	uint8_t c[VIRTIO_BALLOON_CONFIG_LEN];

	balloon_config(b, c);
	memcpy(c + off, buf, len);
	b->actual = (uint32_t)virtio_get_le(c + 4, 4);
}

static void balloon_reset(void *dev)
{
	struct virtio_balloon *b = dev;

	b->actual = 0;
	b->stats_held = false;
}

/* An inflate or deflate buffer: whole le32 PFNs, a bounded number. */
static int balloon_pfns(struct virtio_balloon *b, const struct virtq_chain *c,
			bool inflate, struct fv_error *err)
{
	static __thread uint32_t pfn[VIRTIO_BALLOON_MAX_PFNS];
	struct guest_mem *gm = b->transport.mem;
	uint64_t n = c->out_len / 4, written;

	if (c->out_len % 4 || n > VIRTIO_BALLOON_MAX_PFNS || c->in_len)
		return fv_err(err, FV_E_INVAL,
			      "a %s buffer of %llu bytes (whole le32 PFNs, at most %u, readable only)",
			      inflate ? "inflate" : "deflate",
			      (unsigned long long)c->out_len, VIRTIO_BALLOON_MAX_PFNS);
	if (virtq_chain_read(gm, c, 0, pfn, n * 4, err))
		return -1;
	for (uint64_t i = 0; i < n; i++) {
		/* A PFN is a guest-physical page (address >> 12), not a RAM
		 * page index: above the 32-bit hole they differ, and one in
		 * the hole is no RAM at all. */
		if (!gmem_range_ok(gm, (uint64_t)pfn[i] << VIRTIO_BALLOON_PFN_SHIFT,
				   GMEM_PAGE_SIZE)) {
			b->c.bad_pfns++;
			continue;
		}
		if (!inflate) {
			b->c.deflated_pages++;
			continue;
		}
		if (gmem_release(gm, (uint64_t)pfn[i] << VIRTIO_BALLOON_PFN_SHIFT,
				 GMEM_PAGE_SIZE, &written, err))
			return -1;
		b->c.released_written += written;
		b->c.inflated_pages++;
	}
	return 0;
}

/* A reporting chain: every device-writable buffer is a free range; the
 * whole pages inside it go back. */
static int balloon_report(struct virtio_balloon *b, const struct virtq_chain *c,
			  struct fv_error *err)
{
	struct guest_mem *gm = b->transport.mem;

	if (c->out_len)
		return fv_err(err, FV_E_INVAL, "a reported range that is device-readable");
	for (unsigned k = 0; k < c->nr; k++) {
		uint64_t lo = (c->seg[k].gpa + GMEM_PAGE_SIZE - 1) & ~(GMEM_PAGE_SIZE - 1);
		uint64_t hi = (c->seg[k].gpa + c->seg[k].len) & ~(GMEM_PAGE_SIZE - 1);
		uint64_t written;

		b->c.reports++;
		b->c.reported_bytes += c->seg[k].len;
		if (hi <= lo)
			continue;
		if (gmem_release(gm, lo, hi - lo, &written, err))
			return -1;
		b->c.released_written += written;
	}
	return 0;
}

/* A statistics buffer: tag/value pairs; kept until the host wants new
 * ones (5.5.6.3). */
static int balloon_stats(struct virtio_balloon *b, const struct virtq_chain *c,
			 struct fv_error *err)
{
	uint8_t e[VIRTIO_BALLOON_STAT_BYTES];

	if (c->out_len % VIRTIO_BALLOON_STAT_BYTES || c->in_len ||
	    c->out_len > 64 * VIRTIO_BALLOON_STAT_BYTES)
		return fv_err(err, FV_E_INVAL, "a statistics buffer of %llu bytes",
			      (unsigned long long)c->out_len);
	for (uint64_t off = 0; off < c->out_len; off += sizeof(e)) {
		uint64_t tag, v;

		if (virtq_chain_read(b->transport.mem, c, off, e, sizeof(e), err))
			return -1;
		tag = virtio_get_le(e, 2);
		v = virtio_get_le(e + 2, 8);
		if (tag < VIRTIO_BALLOON_S_NR) {
			b->stat[tag] = v;
			b->stat_seen |= 1u << tag;
		}
	}
	b->c.stats_updates++;
	return 0;
}

static int balloon_notify(void *dev, struct virtio_mmio *t, unsigned q,
			  struct fv_error *err)
{
	static __thread struct virtq_chain c;
	struct virtio_balloon *b = dev;
	enum balloon_queue role = queue_role(t, q);
	struct virtq *vq = &t->vq[q];
	bool used = false;
	int r;

	if (role == BQ_NONE)
		return 0;
	/* One statistics buffer at a time: the next comes back only after
	 * the device returned the one it holds. */
	if (role == BQ_STATS && b->stats_held)
		return 0;
	while ((r = virtq_pop(vq, t->mem, &c, err)) == 1) {
		if (role == BQ_STATS) {
			if (balloon_stats(b, &c, err))
				return -1;
			b->stats_held = true;
			b->stats_head = c.head;
			break;
		}
		if ((role == BQ_REPORTING ? balloon_report(b, &c, err) :
		     balloon_pfns(b, &c, role == BQ_INFLATE, err)) ||
		    virtq_push(vq, t->mem, c.head, 0, err)) {
			r = -1;
			break;
		}
		used = true;
	}
	if (used)
		virtio_mmio_used(t, q);
	return r < 0 ? -1 : 0;
}

const struct virtio_device_ops virtio_balloon_ops = {
	.name = "virtio-balloon",
	.device_id = VIRTIO_ID_BALLOON,
	.nr_queues = 4,
	.queue_max = VIRTIO_BALLOON_QUEUE_SIZE,
	.config_len = VIRTIO_BALLOON_CONFIG_LEN,
	.config_read = balloon_config_read,
	.config_write = balloon_config_write,
	.notify = balloon_notify,
	.reset = balloon_reset,
};

int virtio_balloon_init(struct virtio_balloon *b, struct guest_mem *mem,
			uint64_t base, struct fv_error *err)
{
	(void)err;
	memset(b, 0, sizeof(*b));
	b->ram_pages = gmem_pages(mem);
	virtio_mmio_init(&b->transport, &virtio_balloon_ops, b, mem, base,
			 (1ull << VIRTIO_BALLOON_F_STATS_VQ) |
			 (1ull << VIRTIO_BALLOON_F_PAGE_REPORTING));
	return 0;
}

void virtio_balloon_destroy(struct virtio_balloon *b)
{
	virtio_mmio_destroy(&b->transport);
}

int virtio_balloon_set_target(struct virtio_balloon *b, uint64_t bytes,
			      struct fv_error *err)
{
	uint64_t ram = b->ram_pages * GMEM_PAGE_SIZE;

	if (bytes < (1ull << 20) || bytes > ram)
		return fv_err(err, FV_E_INVAL,
			      "balloon target %llu bytes is outside 1 MiB..%llu (the guest's RAM)",
			      (unsigned long long)bytes, (unsigned long long)ram);
	virtio_mmio_lock(&b->transport);
	b->num_pages = (uint32_t)((ram - bytes) / GMEM_PAGE_SIZE);
	virtio_mmio_config_changed(&b->transport);
	virtio_mmio_unlock(&b->transport);
	return 0;
}

void virtio_balloon_query(struct virtio_balloon *b, struct virtio_balloon_info *out)
{
	struct virtio_mmio *t = &b->transport;
	uint64_t actual;

	virtio_mmio_lock(t);
	actual = b->actual < b->ram_pages ? b->actual : b->ram_pages;
	out->actual_bytes = (b->ram_pages - actual) * GMEM_PAGE_SIZE;
	out->target_bytes = (b->ram_pages - b->num_pages) * GMEM_PAGE_SIZE;
	out->c = b->c;
	memcpy(out->stat, b->stat, sizeof(out->stat));
	out->stat_seen = b->stat_seen;
	/* Hand the statistics buffer back: the driver refills it (5.5.6.3).
	 * Only into a ready queue: while QueueReady is 0 the driver may
	 * rewrite the queue's registers (QueueNum 0 made virtq_push divide
	 * by zero); the buffer stays held until the queue is ready again. */
	if (b->stats_held && virtio_mmio_live(t) && t->vq[2].ready) {
		struct fv_error err = { 0 };
		unsigned q = 2;

		b->stats_held = false;
		if (virtq_push(&t->vq[q], t->mem, b->stats_head, 0, &err))
			virtio_mmio_needs_reset(t, err.msg);
		else
			virtio_mmio_used(t, q);
	}
	virtio_mmio_unlock(t);
}

void virtio_balloon_counters(struct virtio_balloon *b,
			     struct virtio_balloon_counters *out)
{
	virtio_mmio_lock(&b->transport);
	*out = b->c;
	virtio_mmio_unlock(&b->transport);
}

const char *virtio_balloon_stat_name(unsigned tag)
{
	static const char *const name[VIRTIO_BALLOON_S_NR] = {
		"stat-swap-in", "stat-swap-out", "stat-major-faults",
		"stat-minor-faults", "stat-free-memory", "stat-total-memory",
		"stat-available-memory", "stat-disk-caches", "stat-htlb-pgalloc",
		"stat-htlb-pgfail", "stat-oom-kills", "stat-alloc-stalls",
		"stat-async-scans", "stat-direct-scans", "stat-async-reclaims",
		"stat-direct-reclaims",
	};

	return tag < VIRTIO_BALLOON_S_NR ? name[tag] : NULL;
}
