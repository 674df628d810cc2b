/*
 * virtio_blk.c - virtio-blk on a raw image (virtio 1.x, 5.2).
 *
 * A request is a header (type, reserved, sector) in the device-readable
 * part, data after it (OUT) or in the device-writable part (IN), and the
 * status byte as the last device-writable byte.  Data moves through a
 * bounce buffer in chunks, between the image (pread/pwrite) and the
 * guest-memory API: a read into a merged page unmerges that page alone and
 * marks it dirty for the dedup engine, as any device write does.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <linux/falloc.h>
#include "devices/virtio_blk.h"

#define BLK_CHUNK (64u * 1024u)

struct blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct blk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

static void blk_config_read(void *dev, uint32_t off, uint8_t *buf, unsigned len)
{
	struct virtio_blk *b = dev;

	memcpy(buf, b->config + off, len);
}

static void blk_reset(void *dev)
{
	(void)dev;
}

/* Is [sector, sector + bytes / 512) inside the image, bytes whole sectors? */
static bool blk_range_ok(const struct virtio_blk *b, uint64_t sector,
			 uint64_t bytes)
{
	uint64_t n = bytes / VIRTIO_BLK_SECTOR;

	return bytes % VIRTIO_BLK_SECTOR == 0 && sector <= b->sectors &&
	       n <= b->sectors - sector;
}

static uint8_t blk_read(struct virtio_blk *b, const struct virtq_chain *c,
			uint64_t sector, uint64_t len, uint32_t *written)
{
	static __thread uint8_t buf[BLK_CHUNK];
	struct fv_error err = { 0 };

	if (!blk_range_ok(b, sector, len))
		return VIRTIO_BLK_S_IOERR;
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < BLK_CHUNK ? (size_t)(len - done) : BLK_CHUNK;
		ssize_t r = pread(b->fd, buf, n,
				  (off_t)(sector * VIRTIO_BLK_SECTOR + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return VIRTIO_BLK_S_IOERR;
		if (virtq_chain_write(b->transport.mem, c, done, buf, (uint64_t)r, &err))
			return VIRTIO_BLK_S_IOERR;
		done += (uint64_t)r;
		*written = (uint32_t)done;
	}
	b->stats.reads++;
	b->stats.bytes_read += len;
	return VIRTIO_BLK_S_OK;
}

static uint8_t blk_write(struct virtio_blk *b, const struct virtq_chain *c,
			 uint64_t sector, uint64_t len)
{
	static __thread uint8_t buf[BLK_CHUNK];
	struct fv_error err = { 0 };

	if (b->read_only || !blk_range_ok(b, sector, len))
		return VIRTIO_BLK_S_IOERR;
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < BLK_CHUNK ? (size_t)(len - done) : BLK_CHUNK;
		ssize_t r;

		if (virtq_chain_read(b->transport.mem, c, sizeof(struct blk_req_hdr) + done,
				     buf, n, &err))
			return VIRTIO_BLK_S_IOERR;
		r = pwrite(b->fd, buf, n, (off_t)(sector * VIRTIO_BLK_SECTOR + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return VIRTIO_BLK_S_IOERR;
		done += (uint64_t)r;
	}
	b->stats.writes++;
	b->stats.bytes_written += len;
	return VIRTIO_BLK_S_OK;
}

/* Zero [off, off + len) of the image: a hole where the file system can
 * punch one (discard, or write-zeroes with UNMAP), else zeroed blocks. */
static int blk_zero(struct virtio_blk *b, uint64_t off, uint64_t len, bool unmap)
{
	static const uint8_t zeros[BLK_CHUNK];

	if (unmap && fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       (off_t)off, (off_t)len) == 0)
		return 0;
	if (fallocate(b->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) == 0)
		return 0;
	for (uint64_t done = 0; done < len;) {
		size_t n = len - done < BLK_CHUNK ? (size_t)(len - done) : BLK_CHUNK;
		ssize_t r = pwrite(b->fd, zeros, n, (off_t)(off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += (uint64_t)r;
	}
	return 0;
}

/* DISCARD and WRITE_ZEROES: an array of ranges after the header (5.2.6.2). */
static uint8_t blk_ranges(struct virtio_blk *b, const struct virtq_chain *c,
			  uint32_t type)
{
	uint64_t bytes = c->out_len - sizeof(struct blk_req_hdr);
	struct blk_range r[VIRTIO_BLK_MAX_DISCARD_SEG];
	struct fv_error err = { 0 };
	unsigned nr;

	if (b->read_only || bytes == 0 || bytes % sizeof(struct blk_range) ||
	    bytes / sizeof(struct blk_range) > VIRTIO_BLK_MAX_DISCARD_SEG)
		return VIRTIO_BLK_S_IOERR;
	nr = (unsigned)(bytes / sizeof(struct blk_range));
	/* All ranges are checked before any is zeroed: a bad one fails the
	 * request with nothing done. */
	for (unsigned i = 0; i < nr; i++) {
		if (virtq_chain_read(b->transport.mem, c,
				     sizeof(struct blk_req_hdr) + i * sizeof(r[i]),
				     &r[i], sizeof(r[i]), &err))
			return VIRTIO_BLK_S_IOERR;
		/* Flags other than UNMAP (write-zeroes only) are reserved, and
		 * 5.2.6.2 wants UNSUPP for them, not IOERR. */
		if (r[i].flags & ~(type == VIRTIO_BLK_T_WRITE_ZEROES ? VIRTIO_BLK_WZ_F_UNMAP : 0u))
			return VIRTIO_BLK_S_UNSUPP;
		if (r[i].num_sectors > VIRTIO_BLK_MAX_RANGE_SECTORS ||
		    !blk_range_ok(b, r[i].sector, (uint64_t)r[i].num_sectors * VIRTIO_BLK_SECTOR))
			return VIRTIO_BLK_S_IOERR;
	}
	for (unsigned i = 0; i < nr; i++) {
		bool unmap = type == VIRTIO_BLK_T_DISCARD ||
			     (r[i].flags & VIRTIO_BLK_WZ_F_UNMAP);

		if (blk_zero(b, r[i].sector * VIRTIO_BLK_SECTOR,
			     (uint64_t)r[i].num_sectors * VIRTIO_BLK_SECTOR, unmap))
			return VIRTIO_BLK_S_IOERR;
	}
	if (type == VIRTIO_BLK_T_DISCARD)
		b->stats.discards++;
	else
		b->stats.write_zeroes++;
	return VIRTIO_BLK_S_OK;
}

/* Serve one chain; *written counts the bytes put into its writable part. */
static uint8_t blk_request(struct virtio_blk *b, const struct virtq_chain *c,
			   uint32_t *written)
{
	struct fv_error err = { 0 };
	struct blk_req_hdr h;
	uint64_t data_in = c->in_len - 1;   /* without the status byte */

	if (c->out_len < sizeof(h) ||
	    virtq_chain_read(b->transport.mem, c, 0, &h, sizeof(h), &err))
		return VIRTIO_BLK_S_IOERR;
	switch (h.type) {
	case VIRTIO_BLK_T_IN:
		if (c->out_len != sizeof(h))
			return VIRTIO_BLK_S_IOERR;
		return blk_read(b, c, h.sector, data_in, written);
	case VIRTIO_BLK_T_OUT:
		if (data_in)
			return VIRTIO_BLK_S_IOERR;
		return blk_write(b, c, h.sector, c->out_len - sizeof(h));
	case VIRTIO_BLK_T_FLUSH:
		b->stats.flushes++;
		return b->read_only || fdatasync(b->fd) == 0 ?
		       VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR;
	case VIRTIO_BLK_T_GET_ID: {
		uint64_t n = data_in < VIRTIO_BLK_ID_BYTES ? data_in : VIRTIO_BLK_ID_BYTES;

		if (virtq_chain_write(b->transport.mem, c, 0, b->id, n, &err))
			return VIRTIO_BLK_S_IOERR;
		*written = (uint32_t)n;
		return VIRTIO_BLK_S_OK;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return blk_ranges(b, c, h.type);
	}
	return VIRTIO_BLK_S_UNSUPP;
}

static int blk_notify(void *dev, struct virtio_mmio *t, unsigned q,
		      struct fv_error *err)
{
	static __thread struct virtq_chain c;
	struct virtio_blk *b = dev;
	struct virtq *vq = &t->vq[q];
	bool used = false;
	int r;

	while ((r = virtq_pop(vq, t->mem, &c, err)) == 1) {
		uint32_t written = 0;
		uint8_t status;

		/* No writable byte: nowhere to say what happened. */
		if (c.in_len == 0) {
			r = fv_err(err, FV_E_INVAL,
				   "request %u has no status byte", c.head);
			break;
		}
		status = blk_request(b, &c, &written);
		if (status != VIRTIO_BLK_S_OK)
			b->stats.errors++;
		if (virtq_chain_write(t->mem, &c, c.in_len - 1, &status, 1, err) ||
		    virtq_push(vq, t->mem, c.head, written + 1, err)) {
			r = -1;
			break;
		}
		used = true;
	}
	/* Chains answered before a broken one are in the used ring: the
	 * driver must hear of them even though the device now needs a
	 * reset (an early return here used to skip the interrupt). */
	if (used)
		virtio_mmio_used(t, q);
	return r;
}

const struct virtio_device_ops virtio_blk_ops = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.nr_queues = 1,
	.queue_max = VIRTIO_BLK_QUEUE_SIZE,
	.config_len = VIRTIO_BLK_CONFIG_LEN,
	.config_read = blk_config_read,
	.notify = blk_notify,
	.reset = blk_reset,
};

static void blk_fill_config(struct virtio_blk *b)
{
	uint8_t *c = b->config;

	memset(c, 0, sizeof(b->config));
	virtio_put_le(c + 0, b->sectors, 8);                     /* capacity */
	virtio_put_le(c + 12, VIRTIO_BLK_SEG_MAX, 4);            /* seg_max */
	virtio_put_le(c + 20, VIRTIO_BLK_SECTOR, 4);             /* blk_size */
	virtio_put_le(c + 34, 1, 2);                             /* num_queues */
	virtio_put_le(c + 36, VIRTIO_BLK_MAX_RANGE_SECTORS, 4);  /* max_discard_sectors */
	virtio_put_le(c + 40, VIRTIO_BLK_MAX_DISCARD_SEG, 4);    /* max_discard_seg */
	virtio_put_le(c + 44, 1, 4);                             /* discard_sector_alignment */
	virtio_put_le(c + 48, VIRTIO_BLK_MAX_RANGE_SECTORS, 4);  /* max_write_zeroes_sectors */
	virtio_put_le(c + 52, VIRTIO_BLK_MAX_DISCARD_SEG, 4);    /* max_write_zeroes_seg */
	c[56] = 1;                                        /* write_zeroes_may_unmap */
}

int virtio_blk_init(struct virtio_blk *b, const char *path, bool read_only,
		    const char *id, struct guest_mem *mem, uint64_t base,
		    struct fv_error *err)
{
	uint64_t features;
	struct stat st;

	memset(b, 0, sizeof(*b));
	b->fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (b->fd < 0)
		return fv_err_errno(err, FV_E_IO, errno, "disk image %s", path);
	if (fstat(b->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		virtio_blk_destroy(b);
		return fv_err(err, FV_E_INVAL, "disk image %s is not a regular file", path);
	}
	if (st.st_size < (off_t)VIRTIO_BLK_SECTOR) {
		virtio_blk_destroy(b);
		return fv_err(err, FV_E_INVAL,
			      "disk image %s is smaller than one 512-byte sector", path);
	}
	b->read_only = read_only;
	b->sectors = (uint64_t)st.st_size / VIRTIO_BLK_SECTOR;
	/* GET_ID's string is NUL-padded, not NUL-terminated when 20 long. */
	memcpy(b->id, id, strnlen(id, sizeof(b->id)));
	blk_fill_config(b);
	features = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE);
	if (read_only)
		features |= 1ull << VIRTIO_BLK_F_RO;
	else
		features |= (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_DISCARD) |
			    (1ull << VIRTIO_BLK_F_WRITE_ZEROES);
	virtio_mmio_init(&b->transport, &virtio_blk_ops, b, mem, base, features);
	return 0;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
	virtio_mmio_destroy(&b->transport);
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
}

/* The image's I/O: reads and writes at an offset, discards and
 * write-zeroes (fallocate's PUNCH_HOLE and ZERO_RANGE), flushes. */
static const struct syscall_rule blk_rules[] = {
	SYSCALL_ANY("pread64"),
	SYSCALL_ANY("pwrite64"),
	SYSCALL_ANY("fallocate"),
	SYSCALL_ANY("fdatasync"),
};

const struct syscall_rules virtio_blk_syscalls = SYSCALL_RULES("virtio-blk", blk_rules);
