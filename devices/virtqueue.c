/*
 * virtqueue.c - split virtqueues, device side (virtio 1.x, 2.7).
 *
 * Ordering: the driver publishes a chain by writing its descriptors, then
 * the avail ring entry, then avail->idx.  The device reads avail->idx, then
 * (acquire fence) the entry and the descriptors, so it never sees an index
 * before what it indexes.  In the other direction it writes the used entry,
 * then (release fence) used->idx.  The guest-memory API copies with
 * memcpy; the fences order those copies against each other.
 */
#include <stddef.h>
#include <string.h>
#include "devices/virtqueue.h"

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

#define AVAIL_FLAGS 0u
#define AVAIL_IDX 2u
#define AVAIL_RING(i) (4u + 2u * (i))
#define USED_IDX 2u
#define USED_RING(i) (4u + 8u * (i))

void virtq_reset(struct virtq *vq)
{
	memset(vq, 0, sizeof(*vq));
}

int virtq_check(const struct virtq *vq, const struct guest_mem *gm,
		struct fv_error *err)
{
	uint64_t n = vq->num;

	if (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1)))
		return fv_err(err, FV_E_INVAL,
			      "queue size %llu is not a power of 2 in 1..%u",
			      (unsigned long long)n, VIRTQ_MAX_SIZE);
	/* Alignments of 2.7: descriptor table 16, driver area 2, device 4. */
	if ((vq->desc_gpa & 15) || (vq->avail_gpa & 1) || (vq->used_gpa & 3))
		return fv_err(err, FV_E_INVAL, "queue areas are misaligned");
	if (!gmem_range_ok(gm, vq->desc_gpa, 16 * n) ||
	    !gmem_range_ok(gm, vq->avail_gpa, 6 + 2 * n) ||
	    !gmem_range_ok(gm, vq->used_gpa, 6 + 8 * n))
		return fv_err(err, FV_E_RANGE, "queue areas are outside guest RAM");
	return 0;
}

static int read_u16(const struct guest_mem *gm, uint64_t gpa, uint16_t *v,
		    struct fv_error *err)
{
	return gmem_read(gm, gpa, v, sizeof(*v), err);
}

/* Append one descriptor's buffer to the chain, enforcing 2.7.4.2: every
 * device-writable segment after every readable one. */
static int chain_add(const struct guest_mem *gm, struct virtq_chain *c,
		     const struct virtq_desc *d, struct fv_error *err)
{
	bool write = d->flags & VIRTQ_DESC_F_WRITE;

	if (d->flags & VIRTQ_DESC_F_INDIRECT)
		return fv_err(err, FV_E_INVAL,
			      "indirect descriptor (VIRTIO_F_INDIRECT_DESC not offered)");
	if (d->len == 0)
		return fv_err(err, FV_E_INVAL, "zero-length buffer");
	/* Not RAM: outside it, in the 32-bit hole, or across its edge
	 * (guest-memory's message says which). */
	if (gmem_check_range(gm, d->addr, d->len, err)) {
		fv_err_prefix(err, "buffer: ");
		return -1;
	}
	if (!write && c->in_len)
		return fv_err(err, FV_E_INVAL,
			      "a device-readable buffer after a writable one");
	c->seg[c->nr].gpa = d->addr;
	c->seg[c->nr].len = d->len;
	c->seg[c->nr].write = write;
	c->nr++;
	if (write)
		c->in_len += d->len;
	else
		c->out_len += d->len;
	return 0;
}

int virtq_pop(struct virtq *vq, const struct guest_mem *gm,
	      struct virtq_chain *c, struct fv_error *err)
{
	uint16_t avail_idx, head, i;

	if (!vq->ready)
		return 0;
	if (read_u16(gm, vq->avail_gpa + AVAIL_IDX, &avail_idx, err))
		return -1;
	if (avail_idx == vq->last_avail)
		return 0;
	/* The driver may be at most a whole ring ahead (2.7.6). */
	if ((uint16_t)(avail_idx - vq->last_avail) > vq->num)
		return fv_err(err, FV_E_INVAL,
			      "avail idx %u is more than %u ahead of %u",
			      avail_idx, vq->num, vq->last_avail);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (read_u16(gm, vq->avail_gpa + AVAIL_RING(vq->last_avail % vq->num),
		     &head, err))
		return -1;
	vq->last_avail++;
	memset(c, 0, offsetof(struct virtq_chain, seg));
	c->head = head;
	i = head;
	/* At most num descriptors: a longer chain has a loop (2.7.5.3.1). */
	for (unsigned steps = 0;; steps++) {
		struct virtq_desc d;

		if (i >= vq->num)
			return fv_err(err, FV_E_INVAL,
				      "descriptor index %u out of range (queue size %u)",
				      i, vq->num);
		if (steps == vq->num)
			return fv_err(err, FV_E_INVAL,
				      "descriptor chain from %u loops", head);
		if (gmem_read(gm, vq->desc_gpa + 16ull * i, &d, sizeof(d), err) ||
		    chain_add(gm, c, &d, err))
			return -1;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 1;
		i = d.next;
	}
}

bool virtq_avail_pending(const struct virtq *vq, const struct guest_mem *gm)
{
	struct fv_error err = { 0 };
	uint16_t avail_idx;

	if (!vq->ready)
		return false;
	if (read_u16(gm, vq->avail_gpa + AVAIL_IDX, &avail_idx, &err))
		return true;
	return avail_idx != vq->last_avail;
}

void virtq_unpop(struct virtq *vq)
{
	vq->last_avail--;
}

int virtq_push(struct virtq *vq, struct guest_mem *gm, uint16_t head,
	       uint32_t written, struct fv_error *err)
{
	uint32_t elem[2] = { head, written };
	uint16_t idx;

	if (gmem_write(gm, vq->used_gpa + USED_RING(vq->used_idx % vq->num),
		       elem, sizeof(elem), err))
		return -1;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	idx = ++vq->used_idx;
	return gmem_write(gm, vq->used_gpa + USED_IDX, &idx, sizeof(idx), err);
}

bool virtq_wants_interrupt(const struct virtq *vq, const struct guest_mem *gm)
{
	struct fv_error err = { 0 };
	uint16_t flags;

	/* Read after used->idx was written (2.7.10): full fence. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (read_u16(gm, vq->avail_gpa + AVAIL_FLAGS, &flags, &err))
		return true;
	return !(flags & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

/* Copy len bytes from byte off of the out (write false) or in (write true)
 * segments; a chain shorter than off + len in that direction is refused
 * before a byte is copied. */
static int chain_copy(struct guest_mem *gm, const struct virtq_chain *c,
		      bool write, uint64_t off, void *buf, uint64_t len,
		      struct fv_error *err)
{
	uint8_t *p = buf;
	uint64_t done = 0, have = write ? c->in_len : c->out_len;

	if (off > have || len > have - off)
		return fv_err(err, FV_E_RANGE,
			      "%llu bytes at %llu of a %llu-byte %s buffer",
			      (unsigned long long)len, (unsigned long long)off,
			      (unsigned long long)have,
			      write ? "device-writable" : "device-readable");
	for (unsigned k = 0; k < c->nr && done < len; k++) {
		const struct virtq_seg *s = &c->seg[k];
		uint64_t n;

		if (s->write != write)
			continue;
		if (off >= s->len) {
			off -= s->len;
			continue;
		}
		n = s->len - off;
		if (n > len - done)
			n = len - done;
		if (write ? gmem_write(gm, s->gpa + off, p + done, n, err) :
			    gmem_read(gm, s->gpa + off, p + done, n, err))
			return -1;
		done += n;
		off = 0;
	}
	return 0;
}

int virtq_chain_read(const struct guest_mem *gm, const struct virtq_chain *c,
		     uint64_t off, void *buf, uint64_t len, struct fv_error *err)
{
	/* Reads only: the cast lets one walker serve both directions. */
	return chain_copy((struct guest_mem *)gm, c, false, off, buf, len, err);
}

int virtq_chain_write(struct guest_mem *gm, const struct virtq_chain *c,
		      uint64_t off, const void *buf, uint64_t len,
		      struct fv_error *err)
{
	return chain_copy(gm, c, true, off, (void *)buf, len, err);
}
