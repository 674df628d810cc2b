/*
 * virtqueue.h - the device side of a virtio 1.x split virtqueue.
 *
 * Everything the driver wrote is untrusted: every ring and buffer access
 * goes through the guest-memory API (checked against RAM, and so a device
 * write into a merged page unmerges it and shows in the dirty log), a
 * descriptor chain is walked at most `num` steps (a loop is a bad chain,
 * not a hang), and a chain that breaks a rule is refused as a whole with a
 * reason.  No host pointer into guest memory is kept.
 */
#ifndef FOLDVM_VIRTQUEUE_H
#define FOLDVM_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include "lib/error.h"
#include "memory/guest_mem.h"

#define VIRTQ_MAX_SIZE 256u   /* the largest queue foldvm offers */

/* struct virtq_desc flags (virtio 1.x, 2.7.5) */
#define VIRTQ_DESC_F_NEXT 1u
#define VIRTQ_DESC_F_WRITE 2u
#define VIRTQ_DESC_F_INDIRECT 4u
/* avail->flags: the driver does not want interrupts (2.7.7) */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u

/* One queue as the driver configured it through the transport. */
struct virtq {
	bool ready;
	uint16_t num;          /* queue size, a power of 2, <= VIRTQ_MAX_SIZE */
	uint64_t desc_gpa;     /* descriptor table: 16 * num bytes */
	uint64_t avail_gpa;    /* driver area: 6 + 2 * num bytes */
	uint64_t used_gpa;     /* device area: 6 + 8 * num bytes */
	uint16_t last_avail;   /* next avail entry the device takes */
	uint16_t used_idx;     /* next used entry the device writes */
};

/* A buffer segment of a chain: guest-physical, checked against RAM. */
struct virtq_seg {
	uint64_t gpa;
	uint32_t len;
	bool write;            /* device-writable */
};

/* One request: the chain's segments in order, readable ones first. */
struct virtq_chain {
	uint16_t head;
	unsigned nr;
	uint64_t out_len;      /* bytes the device may read */
	uint64_t in_len;       /* bytes the device may write */
	struct virtq_seg seg[VIRTQ_MAX_SIZE];
};

/* Reset a queue to its state after a device reset. */
void virtq_reset(struct virtq *vq);

/* Can the queue be made ready (size, alignment, the rings inside RAM)? */
int virtq_check(const struct virtq *vq, const struct guest_mem *gm,
		struct fv_error *err);

/*
 * Take the next available chain.  1: *c holds it; 0: nothing available;
 * -1: the driver broke the ring (avail idx more than num ahead, a head or
 * next index out of range, a loop, an indirect descriptor - foldvm does not
 * offer them -, a readable segment after a writable one, a zero-length or
 * out-of-RAM buffer); err says which.  A broken ring is not used again
 * until the driver resets the device: the transport marks it
 * DEVICE_NEEDS_RESET (virtio 1.x 2.1.2), as the spec lets a device do when
 * it meets an error it cannot recover from.
 */
int virtq_pop(struct virtq *vq, const struct guest_mem *gm,
	      struct virtq_chain *c, struct fv_error *err);

/* Does the driver have a chain available that virtq_pop has not taken?
 * (A peek: a broken ring reads as "yes", for virtq_pop to refuse.) */
bool virtq_avail_pending(const struct virtq *vq, const struct guest_mem *gm);

/* Give back the chain the last virtq_pop took, unused: the next pop takes
 * it again (a device that could not use it now, virtio-net's receive
 * queue with a frame too long for it). */
void virtq_unpop(struct virtq *vq);

/* Hand chain `head` back with `written` bytes written into its buffers. */
int virtq_push(struct virtq *vq, struct guest_mem *gm, uint16_t head,
	       uint32_t written, struct fv_error *err);

/* Does the driver want an interrupt for what was just pushed? */
bool virtq_wants_interrupt(const struct virtq *vq, const struct guest_mem *gm);

/* Copy exactly len bytes between a chain's buffers and a host buffer, from
 * byte `off` of its readable (out) or writable (in) part; a part shorter
 * than that is FV_E_RANGE, with nothing copied. */
int virtq_chain_read(const struct guest_mem *gm, const struct virtq_chain *c,
		     uint64_t off, void *buf, uint64_t len, struct fv_error *err);
int virtq_chain_write(struct guest_mem *gm, const struct virtq_chain *c,
		      uint64_t off, const void *buf, uint64_t len,
		      struct fv_error *err);

#endif
