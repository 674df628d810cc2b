/* test_virtio.c - the split virtqueue, the virtio-mmio transport, the MMIO
 * bus and virtio-blk, with the test playing the driver: it writes rings and
 * descriptors into a guest memory made without KVM and drives the device
 * through 4-byte register accesses only, as a guest would. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <CUnit/CUnit.h>
#include "devices/mmio.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_mmio.h"
#include "devices/virtqueue.h"
#include "tests/unit/unit.h"
#include "tests/unit/virtio_rig.h"

#define QSIZE 8u
/* Where the test driver keeps its rings and buffers in guest RAM. */
#define DESC_GPA 0x10000ull
#define AVAIL_GPA 0x11000ull
#define USED_GPA 0x12000ull
#define HDR_GPA 0x20000ull
#define DATA_GPA 0x30000ull
#define DATA2_GPA 0x50000ull
#define STATUS_GPA 0x70000ull
#define IMAGE_SIZE (1u << 20)
#define IMAGE_SECTORS (IMAGE_SIZE / VIRTIO_BLK_SECTOR)

/* --- the test driver's side of the rings --- */

static void put_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	struct desc d = { .addr = addr, .len = len, .flags = flags, .next = next };

	put(DESC_GPA + 16ull * i, &d, sizeof(d));
}

/* Make chain `head` available: ring entry, then idx (mod QSIZE slots). */
static void publish(uint16_t head)
{
	uint16_t idx = get_u16(AVAIL_GPA + 2);

	put_u16(AVAIL_GPA + 4 + 2 * (idx % QSIZE), head);
	put_u16(AVAIL_GPA + 2, (uint16_t)(idx + 1));
}

static uint16_t used_idx(void)
{
	return get_u16(USED_GPA + 2);
}

static void used_elem(uint16_t slot, uint32_t *id, uint32_t *len)
{
	uint32_t e[2];

	get(USED_GPA + 4 + 8ull * (slot % QSIZE), e, sizeof(e));
	*id = e[0];
	*len = e[1];
}

/* Zero the descriptor table and both rings. */
static void rings_clear(void)
{
	struct fv_error err;

	CU_ASSERT_EQUAL_FATAL(gmem_fill(&gm, DESC_GPA, 0, USED_GPA + 0x1000 - DESC_GPA,
					&err), 0);
}

/* A ready queue of QSIZE entries over clean rings. */
static void vq_fresh(struct virtq *vq)
{
	rings_clear();
	virtq_reset(vq);
	vq->num = QSIZE;
	vq->desc_gpa = DESC_GPA;
	vq->avail_gpa = AVAIL_GPA;
	vq->used_gpa = USED_GPA;
	vq->ready = true;
}

/* Pop must refuse the published chain with an error of class `code`. */
static void expect_refused(struct virtq *vq, enum fv_errcode code)
{
	static struct virtq_chain c;
	struct fv_error err = { 0 };

	CU_ASSERT_EQUAL(virtq_pop(vq, &gm, &c, &err), -1);
	CU_ASSERT_EQUAL(err.code, code);
	CU_ASSERT_NOT_EQUAL(err.msg[0], '\0');
}

/* --- virtqueue --- */

static void test_vq_valid_chain(void)
{
	static struct virtq_chain c;
	struct fv_error err;
	struct virtq vq;
	uint32_t id, len;

	vq_fresh(&vq);
	/* head 5 -> 2 -> 7 -> 0: the device follows next, not the table order */
	put_desc(5, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
	put_desc(2, DATA_GPA, 100, VIRTQ_DESC_F_NEXT, 7);
	put_desc(7, DATA2_GPA, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 0);
	put_desc(0, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 3);  /* next ignored */
	publish(5);
	CU_ASSERT_EQUAL_FATAL(virtq_pop(&vq, &gm, &c, &err), 1);
	CU_ASSERT_EQUAL(c.head, 5);
	CU_ASSERT_EQUAL_FATAL(c.nr, 4);
	CU_ASSERT_EQUAL(c.out_len, 116);
	CU_ASSERT_EQUAL(c.in_len, 513);
	CU_ASSERT_EQUAL(c.seg[0].gpa, HDR_GPA);
	CU_ASSERT_EQUAL(c.seg[0].len, 16);
	CU_ASSERT_FALSE(c.seg[0].write);
	CU_ASSERT_EQUAL(c.seg[1].gpa, DATA_GPA);
	CU_ASSERT_EQUAL(c.seg[1].len, 100);
	CU_ASSERT_FALSE(c.seg[1].write);
	CU_ASSERT_EQUAL(c.seg[2].gpa, DATA2_GPA);
	CU_ASSERT_EQUAL(c.seg[2].len, 512);
	CU_ASSERT_TRUE(c.seg[2].write);
	CU_ASSERT_EQUAL(c.seg[3].gpa, STATUS_GPA);
	CU_ASSERT_EQUAL(c.seg[3].len, 1);
	CU_ASSERT_TRUE(c.seg[3].write);
	CU_ASSERT_EQUAL(vq.last_avail, 1);
	/* nothing more available */
	CU_ASSERT_EQUAL(virtq_pop(&vq, &gm, &c, &err), 0);
	CU_ASSERT_EQUAL(vq.last_avail, 1);
	/* used element, then used idx */
	CU_ASSERT_EQUAL(virtq_push(&vq, &gm, c.head, 513, &err), 0);
	CU_ASSERT_EQUAL(used_idx(), 1);
	used_elem(0, &id, &len);
	CU_ASSERT_EQUAL(id, 5);
	CU_ASSERT_EQUAL(len, 513);
}

static void test_vq_nothing_available(void)
{
	static struct virtq_chain c;
	struct fv_error err;
	struct virtq vq;

	vq_fresh(&vq);
	CU_ASSERT_EQUAL(virtq_pop(&vq, &gm, &c, &err), 0);
	/* a queue that is not ready is never read */
	put_desc(0, HDR_GPA, 16, 0, 0);
	publish(0);
	vq.ready = false;
	CU_ASSERT_EQUAL(virtq_pop(&vq, &gm, &c, &err), 0);
	CU_ASSERT_EQUAL(vq.last_avail, 0);
	vq.ready = true;
	CU_ASSERT_EQUAL(virtq_pop(&vq, &gm, &c, &err), 1);
	CU_ASSERT_EQUAL(c.nr, 1);
	CU_ASSERT_EQUAL(c.in_len, 0);
}

static void test_vq_whole_ring(void)
{
	static struct virtq_chain c;
	struct fv_error err;
	struct virtq vq;

	vq_fresh(&vq);
	/* a chain through every descriptor is the longest there is, not a loop */
	for (uint16_t i = 0; i < QSIZE; i++)
		put_desc(i, DATA_GPA + 64 * i, 64,
			 i + 1u < QSIZE ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	publish(0);
	CU_ASSERT_EQUAL(virtq_pop(&vq, &gm, &c, &err), 1);
	CU_ASSERT_EQUAL(c.nr, QSIZE);
	CU_ASSERT_EQUAL(c.out_len, 64 * QSIZE);
	/* the driver may be exactly a whole ring ahead */
	vq_fresh(&vq);
	put_desc(0, HDR_GPA, 16, 0, 0);
	for (unsigned i = 0; i < QSIZE; i++)
		publish(0);
	for (unsigned i = 0; i < QSIZE; i++)
		CU_ASSERT_EQUAL(virtq_pop(&vq, &gm, &c, &err), 1);
	CU_ASSERT_EQUAL(virtq_pop(&vq, &gm, &c, &err), 0);
}

static void test_vq_index_wraps(void)
{
	static struct virtq_chain c;
	struct fv_error err;
	struct virtq vq;
	uint32_t id, len;

	vq_fresh(&vq);
	vq.last_avail = 0xffff;
	vq.used_idx = 0xffff;
	put_u16(AVAIL_GPA + 2, 0xffff);
	put_desc(3, HDR_GPA, 16, 0, 0);
	publish(3);  /* ring slot 0xffff % 8 = 7, idx wraps to 0 */
	CU_ASSERT_EQUAL(get_u16(AVAIL_GPA + 2), 0);
	CU_ASSERT_EQUAL_FATAL(virtq_pop(&vq, &gm, &c, &err), 1);
	CU_ASSERT_EQUAL(c.head, 3);
	CU_ASSERT_EQUAL(vq.last_avail, 0);
	CU_ASSERT_EQUAL(virtq_push(&vq, &gm, 3, 0, &err), 0);
	CU_ASSERT_EQUAL(used_idx(), 0);
	used_elem(0xffff, &id, &len);
	CU_ASSERT_EQUAL(id, 3);
	CU_ASSERT_EQUAL(len, 0);
}

static void test_vq_loop_refused(void)
{
	struct virtq vq;

	vq_fresh(&vq);
	put_desc(0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(1, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 0);
	publish(0);
	expect_refused(&vq, FV_E_INVAL);
	/* a descriptor pointing at itself */
	vq_fresh(&vq);
	put_desc(4, DATA_GPA, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 4);
	publish(4);
	expect_refused(&vq, FV_E_INVAL);
	/* a whole-ring chain whose last descriptor goes back to the start */
	vq_fresh(&vq);
	for (uint16_t i = 0; i < QSIZE; i++)
		put_desc(i, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, (uint16_t)((i + 1) % QSIZE));
	publish(0);
	expect_refused(&vq, FV_E_INVAL);
}

static void test_vq_index_out_of_range(void)
{
	struct virtq vq;

	vq_fresh(&vq);
	put_desc(0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, QSIZE);
	publish(0);
	expect_refused(&vq, FV_E_INVAL);
	/* the head itself */
	vq_fresh(&vq);
	publish(QSIZE);
	expect_refused(&vq, FV_E_INVAL);
	vq_fresh(&vq);
	publish(0xffff);
	expect_refused(&vq, FV_E_INVAL);
}

static void test_vq_indirect_refused(void)
{
	struct virtq vq;

	vq_fresh(&vq);
	put_desc(0, DATA_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	publish(0);
	expect_refused(&vq, FV_E_INVAL);
	/* also in the middle of a chain */
	vq_fresh(&vq);
	put_desc(0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(1, DATA_GPA, 32, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	publish(0);
	expect_refused(&vq, FV_E_INVAL);
}

static void test_vq_order_refused(void)
{
	struct virtq vq;

	vq_fresh(&vq);
	put_desc(0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(1, DATA_GPA, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	put_desc(2, DATA2_GPA, 16, 0, 0);
	publish(0);
	expect_refused(&vq, FV_E_INVAL);
}

static void test_vq_buffer_outside_ram(void)
{
	static struct virtq_chain c;
	struct fv_error err;
	struct virtq vq;

	vq_fresh(&vq);
	put_desc(0, MEM - 8, 16, 0, 0);
	publish(0);
	expect_refused(&vq, FV_E_RANGE);
	vq_fresh(&vq);
	put_desc(0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(1, UINT64_MAX - 3, 8, VIRTQ_DESC_F_WRITE, 0);  /* wraps */
	publish(0);
	expect_refused(&vq, FV_E_RANGE);
	vq_fresh(&vq);
	put_desc(0, MEM, 1, VIRTQ_DESC_F_WRITE, 0);
	publish(0);
	expect_refused(&vq, FV_E_RANGE);
	/* the last bytes of RAM are fine */
	vq_fresh(&vq);
	put_desc(0, MEM - 16, 16, 0, 0);
	publish(0);
	CU_ASSERT_EQUAL(virtq_pop(&vq, &gm, &c, &err), 1);
}

static void test_vq_zero_length_refused(void)
{
	struct virtq vq;

	vq_fresh(&vq);
	put_desc(0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(1, DATA_GPA, 0, VIRTQ_DESC_F_WRITE, 0);
	publish(0);
	expect_refused(&vq, FV_E_INVAL);
}

static void test_vq_avail_too_far_ahead(void)
{
	struct virtq vq;

	vq_fresh(&vq);
	put_desc(0, HDR_GPA, 16, 0, 0);
	put_u16(AVAIL_GPA + 2, QSIZE + 1);
	expect_refused(&vq, FV_E_INVAL);
	CU_ASSERT_EQUAL(vq.last_avail, 0);
	/* "behind" is far ahead too, modulo 2^16 */
	vq_fresh(&vq);
	vq.last_avail = 10;
	put_u16(AVAIL_GPA + 2, 9);
	expect_refused(&vq, FV_E_INVAL);
}

static void test_vq_push_and_interrupt(void)
{
	struct fv_error err;
	struct virtq vq;
	uint32_t id, len;

	vq_fresh(&vq);
	for (uint32_t i = 0; i < QSIZE + 2; i++) {
		CU_ASSERT_EQUAL(virtq_push(&vq, &gm, (uint16_t)i, 100 + i, &err), 0);
		CU_ASSERT_EQUAL(used_idx(), i + 1);
		used_elem((uint16_t)i, &id, &len);
		CU_ASSERT_EQUAL(id, i);
		CU_ASSERT_EQUAL(len, 100 + i);
	}
	/* the ring wrapped: slot 1 holds the tenth element */
	used_elem(1, &id, &len);
	CU_ASSERT_EQUAL(id, QSIZE + 1);
	CU_ASSERT_TRUE(virtq_wants_interrupt(&vq, &gm));
	put_u16(AVAIL_GPA, VIRTQ_AVAIL_F_NO_INTERRUPT);
	CU_ASSERT_FALSE(virtq_wants_interrupt(&vq, &gm));
}

/* A chain of hand-made segments: out lengths 3, 5, 8 then in 4, 4, 4. */
static void make_copy_chain(struct virtq_chain *c)
{
	static const uint32_t lens[6] = { 3, 5, 8, 4, 4, 4 };

	memset(c, 0, sizeof(*c));
	for (unsigned k = 0; k < 6; k++) {
		c->seg[k].gpa = DATA_GPA + 0x100 * k;
		c->seg[k].len = lens[k];
		c->seg[k].write = k >= 3;
		if (k >= 3)
			c->in_len += lens[k];
		else
			c->out_len += lens[k];
	}
	c->nr = 6;
}

static void test_vq_chain_copy(void)
{
	static struct virtq_chain c;
	struct fv_error err;
	uint8_t out[16], buf[16], in[12], back[4];

	make_copy_chain(&c);
	CU_ASSERT_EQUAL_FATAL(gmem_fill(&gm, DATA_GPA, 0, 0x1000, &err), 0);
	for (unsigned i = 0; i < 16; i++)
		out[i] = (uint8_t)(0x40 + i);
	put(DATA_GPA, out, 3);
	put(DATA_GPA + 0x100, out + 3, 5);
	put(DATA_GPA + 0x200, out + 8, 8);
	/* 10 bytes from offset 2: the end of the first segment to the third */
	memset(buf, 0, sizeof(buf));
	CU_ASSERT_EQUAL(virtq_chain_read(&gm, &c, 2, buf, 10, &err), 0);
	CU_ASSERT_EQUAL(memcmp(buf, out + 2, 10), 0);
	CU_ASSERT_EQUAL(virtq_chain_read(&gm, &c, 0, buf, 16, &err), 0);
	CU_ASSERT_EQUAL(memcmp(buf, out, 16), 0);
	/* one byte more than the readable part: nothing copied */
	memset(buf, 0xee, sizeof(buf));
	CU_ASSERT_EQUAL(virtq_chain_read(&gm, &c, 7, buf, 10, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	CU_ASSERT_EQUAL(buf[0], 0xee);
	CU_ASSERT_EQUAL(virtq_chain_read(&gm, &c, 17, buf, 0, &err), -1);
	CU_ASSERT_EQUAL(virtq_chain_read(&gm, &c, 16, buf, 0, &err), 0);
	CU_ASSERT_EQUAL(virtq_chain_read(&gm, &c, 1, buf, UINT64_MAX, &err), -1);
	/* writes go to the writable part only, from its own offset 0 */
	for (unsigned i = 0; i < 12; i++)
		in[i] = (uint8_t)(0x80 + i);
	CU_ASSERT_EQUAL(virtq_chain_write(&gm, &c, 3, in, 7, &err), 0);
	get(DATA_GPA + 0x300, back, 4);
	CU_ASSERT_EQUAL(back[2], 0);
	CU_ASSERT_EQUAL(back[3], 0x80);
	get(DATA_GPA + 0x400, back, 4);
	CU_ASSERT_EQUAL(memcmp(back, in + 1, 4), 0);
	get(DATA_GPA + 0x500, back, 4);
	CU_ASSERT_EQUAL(back[0], 0x85);
	CU_ASSERT_EQUAL(back[1], 0x86);
	CU_ASSERT_EQUAL(back[2], 0);
	/* the readable part was not touched */
	CU_ASSERT_EQUAL(virtq_chain_read(&gm, &c, 0, buf, 16, &err), 0);
	CU_ASSERT_EQUAL(memcmp(buf, out, 16), 0);
	/* longer than the writable part: no byte written */
	CU_ASSERT_EQUAL(virtq_chain_write(&gm, &c, 0, in, 13, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	CU_ASSERT_EQUAL(virtq_chain_write(&gm, &c, 11, in, 2, &err), -1);
	get(DATA_GPA + 0x300, back, 4);
	CU_ASSERT_EQUAL(back[0], 0);
	get(DATA_GPA + 0x500, back, 4);
	CU_ASSERT_EQUAL(back[3], 0);
	CU_ASSERT_EQUAL(virtq_chain_write(&gm, &c, 11, in, 1, &err), 0);
	get(DATA_GPA + 0x500, back, 4);
	CU_ASSERT_EQUAL(back[3], 0x80);
}

static void test_vq_check(void)
{
	/* sizes: a power of 2 in 1..VIRTQ_MAX_SIZE */
	static const uint16_t bad_sizes[] = { 0, 3, 6, 100, 255, 512, 0x8000 };
	struct fv_error err;
	struct virtq vq;

	vq_fresh(&vq);
	CU_ASSERT_EQUAL(virtq_check(&vq, &gm, &err), 0);
	for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
		vq.num = bad_sizes[i];
		CU_ASSERT_EQUAL(virtq_check(&vq, &gm, &err), -1);
		CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	}
	vq.num = 1;
	CU_ASSERT_EQUAL(virtq_check(&vq, &gm, &err), 0);
	vq.num = VIRTQ_MAX_SIZE;
	CU_ASSERT_EQUAL(virtq_check(&vq, &gm, &err), 0);
	/* alignment: 16, 2, 4 */
	vq_fresh(&vq);
	vq.desc_gpa = DESC_GPA + 8;
	CU_ASSERT_EQUAL(virtq_check(&vq, &gm, &err), -1);
	vq_fresh(&vq);
	vq.avail_gpa = AVAIL_GPA + 1;
	CU_ASSERT_EQUAL(virtq_check(&vq, &gm, &err), -1);
	vq_fresh(&vq);
	vq.avail_gpa = AVAIL_GPA + 2;
	CU_ASSERT_EQUAL(virtq_check(&vq, &gm, &err), 0);
	vq_fresh(&vq);
	vq.used_gpa = USED_GPA + 2;
	CU_ASSERT_EQUAL(virtq_check(&vq, &gm, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	/* inside RAM, to the last byte */
	vq_fresh(&vq);
	vq.desc_gpa = MEM - 16 * QSIZE;
	vq.avail_gpa = MEM - (6 + 2 * QSIZE);
	vq.used_gpa = MEM - (8 + 8 * QSIZE);
	CU_ASSERT_EQUAL(virtq_check(&vq, &gm, &err), 0);
	vq.desc_gpa += 16;
	CU_ASSERT_EQUAL(virtq_check(&vq, &gm, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	vq.desc_gpa -= 16;
	vq.avail_gpa += 2;
	CU_ASSERT_EQUAL(virtq_check(&vq, &gm, &err), -1);
	vq.avail_gpa -= 2;
	vq.used_gpa += 4;
	CU_ASSERT_EQUAL(virtq_check(&vq, &gm, &err), -1);
	vq_fresh(&vq);
	vq.used_gpa = UINT64_MAX - 3;  /* aligned, and would wrap */
	CU_ASSERT_EQUAL(virtq_check(&vq, &gm, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	vq_fresh(&vq);
	vq.desc_gpa = 1ull << 40;
	CU_ASSERT_EQUAL(virtq_check(&vq, &gm, &err), -1);
}

/* --- the transport, with a small fake device behind it --- */

#define FAKE_CONFIG_LEN 12u
#define FAKE_FEATURES ((1ull << 3) | (1ull << 40))

struct fake {
	uint8_t config[FAKE_CONFIG_LEN];
	unsigned notifies, resets, irq_calls;
	int irq_level;
	char log[400];
	struct virtio_mmio t;
};

/* Serve every chain with nothing written, as a device that only reads. */
static int fake_notify(void *dev, struct virtio_mmio *t, unsigned q,
		       struct fv_error *err)
{
	static struct virtq_chain c;
	struct fake *f = dev;
	bool used = false;
	int r;

	f->notifies++;
	while ((r = virtq_pop(&t->vq[q], t->mem, &c, err)) == 1) {
		if (virtq_push(&t->vq[q], t->mem, c.head, 0, err))
			return -1;
		used = true;
	}
	if (used)
		virtio_mmio_used(t, q);
	return r;
}

static void fake_config_read(void *dev, uint32_t off, uint8_t *buf, unsigned len)
{
	memcpy(buf, ((struct fake *)dev)->config + off, len);
}

static void fake_config_write(void *dev, uint32_t off, const uint8_t *buf,
			      unsigned len)
{
	memcpy(((struct fake *)dev)->config + off, buf, len);
}

static void fake_reset(void *dev)
{
	((struct fake *)dev)->resets++;
}

static const struct virtio_device_ops fake_ops = {
	.name = "fake",
	.device_id = VIRTIO_ID_NET,
	.nr_queues = 2,
	.queue_max = 16,
	.config_len = FAKE_CONFIG_LEN,
	.config_read = fake_config_read,
	.config_write = fake_config_write,
	.notify = fake_notify,
	.reset = fake_reset,
};

static void fake_irq(void *opaque, int level)
{
	struct fake *f = opaque;

	f->irq_calls++;
	f->irq_level = level;
}

static void fake_log(void *opaque, const char *msg)
{
	struct fake *f = opaque;

	snprintf(f->log, sizeof(f->log), "%s", msg);
}

static void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	for (unsigned i = 0; i < FAKE_CONFIG_LEN; i++)
		f->config[i] = (uint8_t)(0xc0 + i);
	virtio_mmio_init(&f->t, &fake_ops, f, &gm, 0xd0000000ull, FAKE_FEATURES);
	f->t.set_irq = fake_irq;
	f->t.irq_opaque = f;
	f->t.log = fake_log;
	f->t.log_opaque = f;
	rings_clear();
}

static uint32_t rd(struct virtio_mmio *t, uint64_t off)
{
	uint8_t d[4];
	uint32_t v;

	virtio_mmio_access(t, off, false, d, 4);
	memcpy(&v, d, 4);
	return v;
}

static void wr(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	uint8_t d[4];

	memcpy(d, &v, 4);
	virtio_mmio_access(t, off, true, d, 4);
}

static void wr64(struct virtio_mmio *t, uint64_t low_off, uint64_t v)
{
	wr(t, low_off, (uint32_t)v);
	wr(t, low_off + 4, (uint32_t)(v >> 32));
}

static void set_driver_features(struct virtio_mmio *t, uint64_t features)
{
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
}

static uint64_t device_features(struct virtio_mmio *t)
{
	uint64_t lo, hi;

	wr(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	lo = rd(t, VIRTIO_MMIO_DEVICE_FEATURES);
	wr(t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	hi = rd(t, VIRTIO_MMIO_DEVICE_FEATURES);
	return lo | hi << 32;
}

/* Steps 1-6 of 3.1.1: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK. */
static void negotiate(struct virtio_mmio *t, uint64_t features)
{
	wr(t, VIRTIO_MMIO_STATUS, 0);
	wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	set_driver_features(t, features);
	wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
	   VIRTIO_STATUS_FEATURES_OK);
}

/* Queue q on the test driver's rings. */
static void setup_queue(struct virtio_mmio *t, uint32_t q, uint32_t num)
{
	wr(t, VIRTIO_MMIO_QUEUE_SEL, q);
	wr(t, VIRTIO_MMIO_QUEUE_NUM, num);
	wr64(t, VIRTIO_MMIO_QUEUE_DESC_LOW, DESC_GPA);
	wr64(t, VIRTIO_MMIO_QUEUE_DRIVER_LOW, AVAIL_GPA);
	wr64(t, VIRTIO_MMIO_QUEUE_DEVICE_LOW, USED_GPA);
	wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
}

static void driver_ok(struct virtio_mmio *t)
{
	wr(t, VIRTIO_MMIO_STATUS, rd(t, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
}

/* The whole of 3.1.1 with every offered feature, queue 0 of QSIZE. */
static void driver_init(struct virtio_mmio *t)
{
	rings_clear();
	negotiate(t, device_features(t));
	CU_ASSERT_TRUE(rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
	setup_queue(t, 0, QSIZE);
	CU_ASSERT_EQUAL(rd(t, VIRTIO_MMIO_QUEUE_READY), 1);
	driver_ok(t);
	CU_ASSERT_EQUAL(rd(t, VIRTIO_MMIO_STATUS),
			VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

static void test_mmio_ids(void)
{
	struct fake f;

	fake_init(&f);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_VERSION), 2);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_NET);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	/* the offer: the device's bits and VERSION_1; nothing beyond 64 bits */
	CU_ASSERT_EQUAL(device_features(&f.t), FAKE_FEATURES | (1ull << VIRTIO_F_VERSION_1));
	wr(&f.t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_DEVICE_FEATURES), 0);
	wr(&f.t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, UINT32_MAX);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_DEVICE_FEATURES), 0);
	/* queues: two of at most 16 */
	wr(&f.t, VIRTIO_MMIO_QUEUE_SEL, 1);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_QUEUE_NUM_MAX), 16);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_QUEUE_READY), 0);
	wr(&f.t, VIRTIO_MMIO_QUEUE_SEL, 2);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_QUEUE_READY), 0);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_STATUS), 0);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	/* read-only registers ignore writes */
	wr(&f.t, VIRTIO_MMIO_MAGIC_VALUE, 0);
	wr(&f.t, VIRTIO_MMIO_DEVICE_ID, 7);
	wr(&f.t, VIRTIO_MMIO_INTERRUPT_STATUS, 3);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_NET);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	/* write-only and unknown registers read 0 */
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_QUEUE_NOTIFY), 0);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_DRIVER_FEATURES), 0);
	CU_ASSERT_EQUAL(rd(&f.t, 0x0f8), 0);
	virtio_mmio_destroy(&f.t);
}

static void test_mmio_features(void)
{
	uint32_t ack_drv = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	uint64_t v1 = 1ull << VIRTIO_F_VERSION_1;
	struct fake f;

	fake_init(&f);
	/* a bit the device did not offer (4) */
	negotiate(&f.t, v1 | (1ull << 3) | (1ull << 4));
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_STATUS), ack_drv);
	/* ... also in the high word (41) */
	negotiate(&f.t, v1 | (1ull << 41));
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_STATUS), ack_drv);
	/* no VERSION_1: a legacy driver */
	negotiate(&f.t, 1ull << 3);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_STATUS), ack_drv);
	/* and DRIVER_OK does not go through without FEATURES_OK */
	wr(&f.t, VIRTIO_MMIO_STATUS, ack_drv | VIRTIO_STATUS_FEATURES_OK |
	   VIRTIO_STATUS_DRIVER_OK);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_STATUS), ack_drv);
	/* a subset with VERSION_1 sticks */
	negotiate(&f.t, v1 | (1ull << 40));
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_STATUS), ack_drv | VIRTIO_STATUS_FEATURES_OK);
	CU_ASSERT_TRUE(virtio_mmio_has_feature(&f.t, VIRTIO_F_VERSION_1));
	CU_ASSERT_TRUE(virtio_mmio_has_feature(&f.t, 40));
	CU_ASSERT_FALSE(virtio_mmio_has_feature(&f.t, 3));
	CU_ASSERT_FALSE(virtio_mmio_has_feature(&f.t, 64));
	CU_ASSERT_FALSE(virtio_mmio_has_feature(&f.t, UINT32_MAX));
	/* after FEATURES_OK the driver's features are fixed */
	set_driver_features(&f.t, v1 | (1ull << 3) | (1ull << 4));
	CU_ASSERT_FALSE(virtio_mmio_has_feature(&f.t, 3));
	CU_ASSERT_FALSE(virtio_mmio_has_feature(&f.t, 4));
	CU_ASSERT_TRUE(virtio_mmio_has_feature(&f.t, 40));
	/* a selector beyond the two words writes nothing */
	negotiate(&f.t, v1);
	wr(&f.t, VIRTIO_MMIO_STATUS, ack_drv);
	wr(&f.t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 2);
	wr(&f.t, VIRTIO_MMIO_DRIVER_FEATURES, 0xffffffff);
	CU_ASSERT_FALSE(virtio_mmio_has_feature(&f.t, 4));
	CU_ASSERT_TRUE(virtio_mmio_has_feature(&f.t, VIRTIO_F_VERSION_1));
	/* the whole offer sticks, and then DRIVER_OK */
	negotiate(&f.t, device_features(&f.t));
	CU_ASSERT_TRUE(rd(&f.t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
	driver_ok(&f.t);
	CU_ASSERT_TRUE(virtio_mmio_live(&f.t));
	virtio_mmio_destroy(&f.t);
}

static void test_mmio_queue_regs_while_ready(void)
{
	struct fake f;

	fake_init(&f);
	negotiate(&f.t, device_features(&f.t));
	setup_queue(&f.t, 0, QSIZE);
	CU_ASSERT_EQUAL_FATAL(rd(&f.t, VIRTIO_MMIO_QUEUE_READY), 1);
	wr(&f.t, VIRTIO_MMIO_QUEUE_NUM, 16);
	wr64(&f.t, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x40000);
	wr64(&f.t, VIRTIO_MMIO_QUEUE_DRIVER_LOW, 0x41000);
	wr64(&f.t, VIRTIO_MMIO_QUEUE_DEVICE_LOW, 0x42000);
	CU_ASSERT_EQUAL(f.t.vq[0].num, QSIZE);
	CU_ASSERT_EQUAL(f.t.vq[0].desc_gpa, DESC_GPA);
	CU_ASSERT_EQUAL(f.t.vq[0].avail_gpa, AVAIL_GPA);
	CU_ASSERT_EQUAL(f.t.vq[0].used_gpa, USED_GPA);
	/* ready again is a no-op, not a re-check */
	wr(&f.t, VIRTIO_MMIO_QUEUE_READY, 1);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_QUEUE_READY), 1);
	/* queue 1 is separate and still configurable */
	wr(&f.t, VIRTIO_MMIO_QUEUE_SEL, 1);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_QUEUE_READY), 0);
	wr(&f.t, VIRTIO_MMIO_QUEUE_NUM, 4);
	CU_ASSERT_EQUAL(f.t.vq[1].num, 4);
	/* once queue 0 is disabled its registers take writes again */
	wr(&f.t, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(&f.t, VIRTIO_MMIO_QUEUE_READY, 0);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_QUEUE_READY), 0);
	wr(&f.t, VIRTIO_MMIO_QUEUE_NUM, 16);
	wr64(&f.t, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x123400000040ull);
	CU_ASSERT_EQUAL(f.t.vq[0].num, 16);
	CU_ASSERT_EQUAL(f.t.vq[0].desc_gpa, 0x123400000040ull);
	/* a size above QueueNumMax is no size */
	wr(&f.t, VIRTIO_MMIO_QUEUE_NUM, 32);
	CU_ASSERT_EQUAL(f.t.vq[0].num, 0);
	/* queue registers of a queue that does not exist go nowhere */
	wr(&f.t, VIRTIO_MMIO_QUEUE_SEL, 2);
	wr(&f.t, VIRTIO_MMIO_QUEUE_NUM, 4);
	wr(&f.t, VIRTIO_MMIO_QUEUE_READY, 1);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_QUEUE_READY), 0);
	CU_ASSERT_EQUAL(f.t.vq[2].num, 0);
	CU_ASSERT_FALSE(f.t.vq[2].ready);
	CU_ASSERT_FALSE(rd(&f.t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	virtio_mmio_destroy(&f.t);
}

/* Queue 0 made ready over rings that fail virtq_check must mark the device
 * NEEDS_RESET with a config interrupt, and stay not ready. */
static void expect_ready_refused(uint32_t num, uint64_t desc, uint64_t avail,
				 uint64_t used)
{
	struct fake f;

	fake_init(&f);
	negotiate(&f.t, device_features(&f.t));
	wr(&f.t, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(&f.t, VIRTIO_MMIO_QUEUE_NUM, num);
	wr64(&f.t, VIRTIO_MMIO_QUEUE_DESC_LOW, desc);
	wr64(&f.t, VIRTIO_MMIO_QUEUE_DRIVER_LOW, avail);
	wr64(&f.t, VIRTIO_MMIO_QUEUE_DEVICE_LOW, used);
	wr(&f.t, VIRTIO_MMIO_QUEUE_READY, 1);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_QUEUE_READY), 0);
	CU_ASSERT_TRUE(rd(&f.t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_CONFIG_GENERATION), 1);
	CU_ASSERT_EQUAL(f.irq_level, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(f.log, "needs a reset"));
	virtio_mmio_destroy(&f.t);
}

static void test_mmio_ready_checks_rings(void)
{
	struct fake f;

	expect_ready_refused(QSIZE, MEM, AVAIL_GPA, USED_GPA);
	expect_ready_refused(QSIZE, DESC_GPA, MEM - 4, USED_GPA);
	expect_ready_refused(QSIZE, DESC_GPA, AVAIL_GPA, MEM - 8);
	expect_ready_refused(QSIZE, DESC_GPA, AVAIL_GPA, 1ull << 63);
	expect_ready_refused(QSIZE, DESC_GPA + 4, AVAIL_GPA, USED_GPA);
	expect_ready_refused(0, DESC_GPA, AVAIL_GPA, USED_GPA);
	expect_ready_refused(6, DESC_GPA, AVAIL_GPA, USED_GPA);
	expect_ready_refused(32, DESC_GPA, AVAIL_GPA, USED_GPA);
	/* NEEDS_RESET is the device's: the driver can neither clear it nor
	 * get past it with DRIVER_OK; only a reset clears it */
	fake_init(&f);
	negotiate(&f.t, device_features(&f.t));
	setup_queue(&f.t, 1, QSIZE);
	wr(&f.t, VIRTIO_MMIO_QUEUE_SEL, 0);
	wr(&f.t, VIRTIO_MMIO_QUEUE_NUM, 0);
	wr(&f.t, VIRTIO_MMIO_QUEUE_READY, 1);
	CU_ASSERT_TRUE(rd(&f.t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	wr(&f.t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
	   VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	CU_ASSERT_TRUE(rd(&f.t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	CU_ASSERT_FALSE(virtio_mmio_live(&f.t));
	wr(&f.t, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	CU_ASSERT_EQUAL(f.notifies, 0);
	wr(&f.t, VIRTIO_MMIO_STATUS, 0);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_STATUS), 0);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	CU_ASSERT_EQUAL(f.irq_level, 0);
	virtio_mmio_destroy(&f.t);
}

static void test_mmio_reset(void)
{
	struct fake f;

	fake_init(&f);
	driver_init(&f.t);
	setup_queue(&f.t, 1, 4);
	wr(&f.t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	wr(&f.t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(&f.t, VIRTIO_MMIO_QUEUE_SEL, 3);
	/* a used chain raises the vring interrupt */
	put_desc(0, HDR_GPA, 16, 0, 0);
	publish(0);
	wr(&f.t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CU_ASSERT_EQUAL(used_idx(), 1);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	CU_ASSERT_EQUAL(f.irq_level, 1);
	/* (driver_init's own reset was the first) */
	CU_ASSERT_EQUAL(f.resets, 1);

	wr(&f.t, VIRTIO_MMIO_STATUS, 0);
	CU_ASSERT_EQUAL(f.resets, 2);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_STATUS), 0);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	CU_ASSERT_EQUAL(f.irq_level, 0);
	CU_ASSERT_FALSE(virtio_mmio_has_feature(&f.t, VIRTIO_F_VERSION_1));
	/* selectors back to 0 */
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_DEVICE_FEATURES), (uint32_t)FAKE_FEATURES);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_QUEUE_NUM_MAX), 16);
	CU_ASSERT_EQUAL(f.t.drv_features_sel, 0);
	/* both queues forgotten, indices included */
	for (unsigned q = 0; q < 2; q++) {
		wr(&f.t, VIRTIO_MMIO_QUEUE_SEL, q);
		CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_QUEUE_READY), 0);
		CU_ASSERT_EQUAL(f.t.vq[q].num, 0);
		CU_ASSERT_EQUAL(f.t.vq[q].desc_gpa, 0);
		CU_ASSERT_EQUAL(f.t.vq[q].avail_gpa, 0);
		CU_ASSERT_EQUAL(f.t.vq[q].used_gpa, 0);
		CU_ASSERT_EQUAL(f.t.vq[q].last_avail, 0);
		CU_ASSERT_EQUAL(f.t.vq[q].used_idx, 0);
	}
	/* and the device can be brought up again */
	driver_init(&f.t);
	CU_ASSERT_TRUE(virtio_mmio_live(&f.t));
	virtio_mmio_destroy(&f.t);
}

static void test_mmio_notify(void)
{
	struct fake f;

	fake_init(&f);
	negotiate(&f.t, device_features(&f.t));
	setup_queue(&f.t, 0, QSIZE);
	put_desc(0, HDR_GPA, 16, 0, 0);
	publish(0);
	/* before DRIVER_OK nothing is served ... */
	wr(&f.t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CU_ASSERT_EQUAL(f.notifies, 0);
	CU_ASSERT_EQUAL(used_idx(), 0);
	/* ... and DRIVER_OK serves what was made available (queue 0 only:
	 * queue 1 is not ready) */
	driver_ok(&f.t);
	CU_ASSERT_EQUAL(f.notifies, 1);
	CU_ASSERT_EQUAL(used_idx(), 1);
	/* notifies of queues not ready or not there go nowhere */
	wr(&f.t, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	wr(&f.t, VIRTIO_MMIO_QUEUE_NOTIFY, 2);
	CU_ASSERT_EQUAL(f.notifies, 1);
	/* nothing new: nothing used */
	wr(&f.t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CU_ASSERT_EQUAL(f.notifies, 2);
	CU_ASSERT_EQUAL(used_idx(), 1);
	/* the interrupt until the driver acknowledges it */
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	CU_ASSERT_EQUAL(f.irq_level, 1);
	wr(&f.t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
	CU_ASSERT_EQUAL(f.irq_level, 1);
	wr(&f.t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	CU_ASSERT_EQUAL(f.irq_level, 0);
	CU_ASSERT_EQUAL(f.irq_calls, 2);
	/* a driver that asked for no interrupt gets none */
	put_u16(AVAIL_GPA, VIRTQ_AVAIL_F_NO_INTERRUPT);
	publish(0);
	wr(&f.t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CU_ASSERT_EQUAL(used_idx(), 2);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	/* a broken chain: NEEDS_RESET, config interrupt, a line in the log */
	put_u16(AVAIL_GPA, 0);
	put_desc(0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 0);
	publish(0);
	wr(&f.t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CU_ASSERT_EQUAL(f.notifies, 4);
	CU_ASSERT_EQUAL(used_idx(), 2);
	CU_ASSERT_TRUE(rd(&f.t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(f.log, "fake: "));
	CU_ASSERT_PTR_NOT_NULL(strstr(f.log, "loops"));
	/* and nothing more is served */
	wr(&f.t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CU_ASSERT_EQUAL(f.notifies, 4);
	virtio_mmio_destroy(&f.t);
}

static void test_mmio_access_width(void)
{
	uint8_t d[8];
	struct fake f;

	fake_init(&f);
	for (unsigned len = 1; len <= 8; len++) {
		if (len == 4)
			continue;
		memset(d, 0xee, sizeof(d));
		virtio_mmio_access(&f.t, VIRTIO_MMIO_MAGIC_VALUE, false, d, len);
		for (unsigned i = 0; i < len; i++)
			CU_ASSERT_EQUAL(d[i], 0);
		CU_ASSERT_EQUAL(d[len < 8 ? len : 7], len < 8 ? 0xee : 0);
	}
	/* a 4-byte access that is not aligned */
	memset(d, 0xee, sizeof(d));
	virtio_mmio_access(&f.t, VIRTIO_MMIO_MAGIC_VALUE + 2, false, d, 4);
	CU_ASSERT_EQUAL(memcmp(d, "\0\0\0\0", 4), 0);
	/* writes of other widths are dropped */
	d[0] = VIRTIO_STATUS_ACKNOWLEDGE;
	d[1] = d[2] = d[3] = 0;
	virtio_mmio_access(&f.t, VIRTIO_MMIO_STATUS, true, d, 1);
	virtio_mmio_access(&f.t, VIRTIO_MMIO_STATUS, true, d, 2);
	virtio_mmio_access(&f.t, VIRTIO_MMIO_STATUS + 1, true, d, 4);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_STATUS), 0);
	virtio_mmio_access(&f.t, VIRTIO_MMIO_STATUS, true, d, 4);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_STATUS), VIRTIO_STATUS_ACKNOWLEDGE);
	virtio_mmio_destroy(&f.t);
}

static void test_mmio_config(void)
{
	uint8_t d[8];
	struct fake f;

	fake_init(&f);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_CONFIG), 0xc3c2c1c0);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_CONFIG + 8), 0xcbcac9c8);
	/* config space takes any width up to 8 */
	virtio_mmio_access(&f.t, VIRTIO_MMIO_CONFIG + 11, false, d, 1);
	CU_ASSERT_EQUAL(d[0], 0xcb);
	virtio_mmio_access(&f.t, VIRTIO_MMIO_CONFIG + 3, false, d, 2);
	CU_ASSERT_EQUAL(d[0], 0xc3);
	CU_ASSERT_EQUAL(d[1], 0xc4);
	virtio_mmio_access(&f.t, VIRTIO_MMIO_CONFIG + 4, false, d, 8);
	CU_ASSERT_EQUAL(d[0], 0xc4);
	CU_ASSERT_EQUAL(d[7], 0xcb);
	/* beyond config_len, or straddling its end, reads 0 */
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_CONFIG + FAKE_CONFIG_LEN), 0);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_CONFIG + FAKE_CONFIG_LEN - 2), 0);
	CU_ASSERT_EQUAL(rd(&f.t, VIRTIO_MMIO_WINDOW - 4), 0);
	memset(d, 0xee, sizeof(d));
	virtio_mmio_access(&f.t, VIRTIO_MMIO_CONFIG + 5, false, d, 8);
	CU_ASSERT_EQUAL(memcmp(d, "\0\0\0\0\0\0\0\0", 8), 0);
	virtio_mmio_access(&f.t, VIRTIO_MMIO_CONFIG + FAKE_CONFIG_LEN - 1, false, d, 1);
	CU_ASSERT_EQUAL(d[0], 0xcb);
	virtio_mmio_access(&f.t, UINT64_MAX - 1, false, d, 2);
	CU_ASSERT_EQUAL(d[0], 0);
	/* writes inside go to the device, outside nowhere */
	wr(&f.t, VIRTIO_MMIO_CONFIG + 4, 0x11223344);
	CU_ASSERT_EQUAL(f.config[4], 0x44);
	CU_ASSERT_EQUAL(f.config[7], 0x11);
	wr(&f.t, VIRTIO_MMIO_CONFIG + 10, 0x55667788);
	CU_ASSERT_EQUAL(f.config[10], 0xca);
	CU_ASSERT_EQUAL(f.config[11], 0xcb);
	virtio_mmio_destroy(&f.t);
}

/* --- the MMIO bus --- */

struct mmio_rec {
	unsigned calls;
	uint64_t off;
	bool is_write;
	unsigned len;
};

static void rec_fn(void *opaque, uint64_t off, bool is_write, uint8_t *data,
		   unsigned len)
{
	struct mmio_rec *r = opaque;

	r->calls++;
	r->off = off;
	r->is_write = is_write;
	r->len = len;
	if (!is_write)
		memset(data, 0x5a, len);
}

static void test_mmio_bus(void)
{
	struct mmio_rec a = { 0 }, b = { 0 };
	struct mmio_bus bus = { 0 };
	struct fv_error err;
	uint8_t d[8];

	CU_ASSERT_EQUAL(mmio_register(&bus, 0xd0000000, 0x1000, rec_fn, &a, "a", &err), 0);
	CU_ASSERT_EQUAL(mmio_register(&bus, 0xd0001000, 0x1000, rec_fn, &b, "b", &err), 0);
	CU_ASSERT_EQUAL(mmio_register(&bus, 0xd0000ffc, 8, rec_fn, &b, "c", &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	CU_ASSERT_EQUAL(mmio_register(&bus, 0xcffff000, 0x2000, rec_fn, &b, "d", &err), -1);
	CU_ASSERT_EQUAL(mmio_register(&bus, 0xd0000800, 1, rec_fn, &b, "e", &err), -1);
	CU_ASSERT_EQUAL(mmio_register(&bus, 0xd0003000, 0, rec_fn, &b, "f", &err), -1);
	CU_ASSERT_EQUAL(mmio_register(&bus, UINT64_MAX - 0xfff, 0x2000, rec_fn, &b, "g",
				      &err), -1);
	CU_ASSERT_EQUAL(bus.nr, 2);
	/* to the window that holds the address, at its offset */
	mmio_dispatch(&bus, 0xd0001070, true, d, 4);
	CU_ASSERT_EQUAL(b.calls, 1);
	CU_ASSERT_EQUAL(b.off, 0x70);
	CU_ASSERT_TRUE(b.is_write);
	CU_ASSERT_EQUAL(b.len, 4);
	mmio_dispatch(&bus, 0xd0000ff8, false, d, 8);
	CU_ASSERT_EQUAL(a.calls, 1);
	CU_ASSERT_EQUAL(a.off, 0xff8);
	CU_ASSERT_EQUAL(d[7], 0x5a);
	/* nobody's address, or straddling a window's end: an empty bus */
	memset(d, 0, sizeof(d));
	mmio_dispatch(&bus, 0xd0002000, false, d, 4);
	CU_ASSERT_EQUAL(memcmp(d, "\xff\xff\xff\xff\0\0\0\0", 8), 0);
	memset(d, 0, sizeof(d));
	mmio_dispatch(&bus, 0xd0001ffe, false, d, 4);
	CU_ASSERT_EQUAL(memcmp(d, "\xff\xff\xff\xff", 4), 0);
	mmio_dispatch(&bus, 0xd0000ffe, true, d, 4);
	mmio_dispatch(&bus, 0xcfffffff, false, d, 2);
	CU_ASSERT_EQUAL(a.calls, 1);
	CU_ASSERT_EQUAL(b.calls, 1);
	/* the table holds MMIO_MAX_RANGES windows */
	for (unsigned i = 2; i < MMIO_MAX_RANGES; i++)
		CU_ASSERT_EQUAL(mmio_register(&bus, 0xe0000000 + 0x1000ull * i, 0x1000,
					      rec_fn, &a, "n", &err), 0);
	CU_ASSERT_EQUAL(mmio_register(&bus, 0xf0000000, 0x1000, rec_fn, &a, "full",
				      &err), -1);
	CU_ASSERT_EQUAL(bus.nr, MMIO_MAX_RANGES);
}

/* --- virtio-blk, end to end through the transport --- */

struct blk_fixture {
	struct virtio_blk b;
	int fd;                 /* the image, for the test's own reads */
};

static struct blk_fixture fx;

/* A 1 MiB image (a sparse temp file) and a device on it, driver ready. */
static void blk_open(bool read_only)
{
	char path[] = "/tmp/foldvm-virtio-XXXXXX";
	struct fv_error err;
	int r;

	fx.fd = mkstemp(path);
	CU_ASSERT_FATAL(fx.fd >= 0);
	r = ftruncate(fx.fd, IMAGE_SIZE);
	if (r == 0)
		r = virtio_blk_init(&fx.b, path, read_only, "foldvm-disk-0", &gm,
				    0xd0000000ull, &err);
	unlink(path);  /* the device and the test keep it open */
	CU_ASSERT_EQUAL_FATAL(r, 0);
	driver_init(&fx.b.transport);
}

static void blk_close(void)
{
	virtio_blk_destroy(&fx.b);
	close(fx.fd);
}

struct seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/* Publish the chain segs[0..n) (descriptors 0..n-1), notify queue 0, and
 * return whether the device used it (its used length in *len). */
static bool submit(const struct seg *s, unsigned n, uint32_t *len)
{
	uint16_t before = used_idx();
	uint32_t id;

	for (unsigned i = 0; i < n; i++)
		put_desc((uint16_t)i, s[i].gpa, s[i].len,
			 (uint16_t)((s[i].write ? VIRTQ_DESC_F_WRITE : 0) |
				    (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
			 (uint16_t)(i + 1));
	publish(0);
	wr(&fx.b.transport, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	if (used_idx() == before)
		return false;
	CU_ASSERT_EQUAL(used_idx(), (uint16_t)(before + 1));
	used_elem(before, &id, len);
	CU_ASSERT_EQUAL(id, 0);
	return true;
}

static void put_hdr(uint32_t type, uint64_t sector)
{
	uint8_t h[16] = { 0 };

	memcpy(h, &type, 4);
	memcpy(h + 8, &sector, 8);
	put(HDR_GPA, h, sizeof(h));
}

/* Header, then segs (the data), then the status byte: the status the
 * device wrote (0xee: the request was not answered). */
static uint8_t request(uint32_t type, uint64_t sector, const struct seg *data,
		       unsigned nr_data, uint32_t *used_len)
{
	struct seg s[8] = { { HDR_GPA, 16, false } };
	uint8_t status = 0xee;

	put_hdr(type, sector);
	put(STATUS_GPA, &status, 1);
	for (unsigned i = 0; i < nr_data; i++)
		s[1 + i] = data[i];
	s[1 + nr_data] = (struct seg){ STATUS_GPA, 1, true };
	*used_len = 0;
	if (!submit(s, nr_data + 2, used_len))
		return 0xee;
	get(STATUS_GPA, &status, 1);
	return status;
}

static uint8_t request1(uint32_t type, uint64_t sector, uint64_t gpa,
			uint32_t len, bool write, uint32_t *used_len)
{
	struct seg d = { gpa, len, write };

	return request(type, sector, &d, len ? 1 : 0, used_len);
}

/* One range of DISCARD and WRITE_ZEROES (5.2.6.2). */
struct blk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

static void fill_pattern(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 7 + seed + (i >> 9));
}

static void test_blk_config(void)
{
	blk_open(false);
	CU_ASSERT_EQUAL(rd(&fx.b.transport, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BLOCK);
	CU_ASSERT_EQUAL(rd(&fx.b.transport, VIRTIO_MMIO_CONFIG), IMAGE_SECTORS);
	CU_ASSERT_EQUAL(rd(&fx.b.transport, VIRTIO_MMIO_CONFIG + 4), 0);
	CU_ASSERT_EQUAL(rd(&fx.b.transport, VIRTIO_MMIO_CONFIG + 20), VIRTIO_BLK_SECTOR);
	CU_ASSERT_EQUAL(rd(&fx.b.transport, VIRTIO_MMIO_CONFIG + VIRTIO_BLK_CONFIG_LEN), 0);
	CU_ASSERT_TRUE(virtio_mmio_has_feature(&fx.b.transport, VIRTIO_BLK_F_FLUSH));
	CU_ASSERT_TRUE(virtio_mmio_has_feature(&fx.b.transport, VIRTIO_BLK_F_DISCARD));
	CU_ASSERT_FALSE(virtio_mmio_has_feature(&fx.b.transport, VIRTIO_BLK_F_RO));
	/* the config space is read-only */
	wr(&fx.b.transport, VIRTIO_MMIO_CONFIG, 7);
	CU_ASSERT_EQUAL(rd(&fx.b.transport, VIRTIO_MMIO_CONFIG), IMAGE_SECTORS);
	CU_ASSERT_EQUAL(rd(&fx.b.transport, VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTIO_BLK_QUEUE_SIZE);
	blk_close();
}

static void test_blk_round_trip(void)
{
	static uint8_t out[8192], in[8192], file[8192];
	struct fv_error err;
	uint32_t len;

	blk_open(false);
	fill_pattern(out, sizeof(out), 3);
	put(DATA_GPA, out, 4096);
	put(DATA2_GPA, out + 4096, 4096);
	/* 8 KiB from sector 3, in two segments of 1 and 7 KiB */
	struct seg w[2] = { { DATA_GPA, 1024, false }, { DATA2_GPA - 3072, 7168, false } };
	put(DATA2_GPA - 3072, out + 1024, 3072);
	CU_ASSERT_EQUAL(request(VIRTIO_BLK_T_OUT, 3, w, 2, &len), VIRTIO_BLK_S_OK);
	CU_ASSERT_EQUAL(len, 1);
	CU_ASSERT_EQUAL(pread(fx.fd, file, sizeof(file), 3 * 512), (ssize_t)sizeof(file));
	CU_ASSERT_EQUAL(memcmp(file, out, sizeof(file)), 0);
	CU_ASSERT_EQUAL(pread(fx.fd, file, 512, 2 * 512), 512);
	CU_ASSERT_EQUAL(file[0], 0);
	CU_ASSERT_EQUAL(file[511], 0);
	/* read it back into three segments, the last one past the data */
	CU_ASSERT_EQUAL_FATAL(gmem_fill(&gm, DATA_GPA, 0, 0x40000, &err), 0);
	struct seg r[3] = { { DATA_GPA + 1, 512, true }, { DATA2_GPA, 4096, true },
			    { DATA_GPA + 0x1000, 3584, true } };
	CU_ASSERT_EQUAL(request(VIRTIO_BLK_T_IN, 3, r, 3, &len), VIRTIO_BLK_S_OK);
	CU_ASSERT_EQUAL(len, 8192 + 1);
	get(DATA_GPA + 1, in, 512);
	get(DATA2_GPA, in + 512, 4096);
	get(DATA_GPA + 0x1000, in + 4608, 3584);
	CU_ASSERT_EQUAL(memcmp(in, out, sizeof(in)), 0);
	/* the last sector of the image */
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_OUT, IMAGE_SECTORS - 1, DATA_GPA, 512,
				 false, &len), VIRTIO_BLK_S_OK);
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_IN, IMAGE_SECTORS - 1, DATA2_GPA, 512,
				 true, &len), VIRTIO_BLK_S_OK);
	CU_ASSERT_EQUAL(len, 513);
	get(DATA2_GPA, in, 512);
	get(DATA_GPA, file, 512);
	CU_ASSERT_EQUAL(memcmp(in, file, 512), 0);
	CU_ASSERT_EQUAL(fx.b.stats.reads, 2);
	CU_ASSERT_EQUAL(fx.b.stats.writes, 2);
	CU_ASSERT_EQUAL(fx.b.stats.bytes_read, 8192 + 512);
	CU_ASSERT_EQUAL(fx.b.stats.bytes_written, 8192 + 512);
	CU_ASSERT_EQUAL(fx.b.stats.errors, 0);
	CU_ASSERT_TRUE(rd(&fx.b.transport, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING);
	CU_ASSERT_FALSE(rd(&fx.b.transport, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	blk_close();
}

static void test_blk_bad_requests(void)
{
	const struct seg shorthdr[2] = { { HDR_GPA, 8, false }, { STATUS_GPA, 1, true } };
	uint8_t file[512], ones[512], status;
	uint32_t len;

	blk_open(false);
	memset(ones, 0x11, sizeof(ones));
	put(DATA_GPA, ones, sizeof(ones));
	/* beyond the capacity, or crossing its end */
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_IN, IMAGE_SECTORS, DATA2_GPA, 512, true,
				 &len), VIRTIO_BLK_S_IOERR);
	CU_ASSERT_EQUAL(len, 1);
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_IN, IMAGE_SECTORS - 1, DATA2_GPA, 1024,
				 true, &len), VIRTIO_BLK_S_IOERR);
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_IN, UINT64_MAX, DATA2_GPA, 512, true, &len),
			VIRTIO_BLK_S_IOERR);
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_OUT, IMAGE_SECTORS, DATA_GPA, 512, false,
				 &len), VIRTIO_BLK_S_IOERR);
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_OUT, UINT64_MAX / 256, DATA_GPA, 512,
				 false, &len), VIRTIO_BLK_S_IOERR);
	/* not whole sectors */
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_IN, 0, DATA2_GPA, 511, true, &len),
			VIRTIO_BLK_S_IOERR);
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_OUT, 0, DATA_GPA, 100, false, &len),
			VIRTIO_BLK_S_IOERR);
	/* data in the wrong direction */
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_IN, 0, DATA_GPA, 512, false, &len),
			VIRTIO_BLK_S_IOERR);
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_OUT, 0, DATA_GPA, 512, true, &len),
			VIRTIO_BLK_S_IOERR);
	/* a header too short for its fields */
	put_hdr(VIRTIO_BLK_T_IN, 0);
	status = 0xee;
	put(STATUS_GPA, &status, 1);
	CU_ASSERT_TRUE(submit(shorthdr, 2, &len));
	CU_ASSERT_EQUAL(len, 1);
	get(STATUS_GPA, &status, 1);
	CU_ASSERT_EQUAL(status, VIRTIO_BLK_S_IOERR);
	/* an unknown type */
	CU_ASSERT_EQUAL(request1(99, 0, DATA2_GPA, 512, true, &len), VIRTIO_BLK_S_UNSUPP);
	CU_ASSERT_EQUAL(len, 1);
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_IN | 0x80000000u, 0, DATA2_GPA, 512, true,
				 &len), VIRTIO_BLK_S_UNSUPP);
	CU_ASSERT_EQUAL(fx.b.stats.errors, 12);
	CU_ASSERT_EQUAL(fx.b.stats.reads, 0);
	CU_ASSERT_EQUAL(fx.b.stats.writes, 0);
	/* nothing reached the image, the device is still fine */
	CU_ASSERT_EQUAL(pread(fx.fd, file, 512, 0), 512);
	CU_ASSERT_EQUAL(file[0], 0);
	CU_ASSERT_EQUAL(rd(&fx.b.transport, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET, 0);
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_OUT, 0, DATA_GPA, 512, false, &len),
			VIRTIO_BLK_S_OK);
	CU_ASSERT_EQUAL(pread(fx.fd, file, 512, 0), 512);
	CU_ASSERT_EQUAL(memcmp(file, ones, 512), 0);
	blk_close();
}

static void test_blk_read_only(void)
{
	static const uint8_t pattern[512] = { 0x42, 0x43 };
	const struct blk_range rg = { 0, 1, 0 };
	uint8_t file[512];
	uint32_t len;

	blk_open(true);
	/* content in sector 1, through the test's own descriptor */
	CU_ASSERT_EQUAL(pwrite(fx.fd, pattern, sizeof(pattern), 512), 512);
	CU_ASSERT_TRUE(virtio_mmio_has_feature(&fx.b.transport, VIRTIO_BLK_F_RO));
	CU_ASSERT_FALSE(virtio_mmio_has_feature(&fx.b.transport, VIRTIO_BLK_F_FLUSH));
	CU_ASSERT_FALSE(virtio_mmio_has_feature(&fx.b.transport, VIRTIO_BLK_F_DISCARD));
	put(DATA_GPA, "\x99\x99\x99\x99", 4);
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_OUT, 1, DATA_GPA, 512, false, &len),
			VIRTIO_BLK_S_IOERR);
	put(DATA_GPA, &rg, sizeof(rg));
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_DISCARD, 0, DATA_GPA, 16, false, &len),
			VIRTIO_BLK_S_IOERR);
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_WRITE_ZEROES, 0, DATA_GPA, 16, false, &len),
			VIRTIO_BLK_S_IOERR);
	CU_ASSERT_EQUAL(pread(fx.fd, file, 512, 512), 512);
	CU_ASSERT_EQUAL(memcmp(file, pattern, 512), 0);
	/* reads and flushes work */
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_IN, 1, DATA2_GPA, 512, true, &len),
			VIRTIO_BLK_S_OK);
	get(DATA2_GPA, file, 512);
	CU_ASSERT_EQUAL(memcmp(file, pattern, 512), 0);
	CU_ASSERT_EQUAL(request(VIRTIO_BLK_T_FLUSH, 0, NULL, 0, &len), VIRTIO_BLK_S_OK);
	CU_ASSERT_EQUAL(fx.b.stats.errors, 3);
	CU_ASSERT_EQUAL(fx.b.stats.writes, 0);
	CU_ASSERT_EQUAL(fx.b.stats.reads, 1);
	CU_ASSERT_EQUAL(fx.b.stats.flushes, 1);
	blk_close();
}

static void test_blk_get_id_flush(void)
{
	uint8_t id[24];
	uint32_t len;

	blk_open(false);
	memset(id, 0xee, sizeof(id));
	put(DATA_GPA, id, sizeof(id));
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_GET_ID, 0, DATA_GPA, 24, true, &len),
			VIRTIO_BLK_S_OK);
	CU_ASSERT_EQUAL(len, VIRTIO_BLK_ID_BYTES + 1);
	get(DATA_GPA, id, sizeof(id));
	/* NUL-padded to 20 bytes, nothing written beyond */
	CU_ASSERT_EQUAL(memcmp(id, "foldvm-disk-0\0\0\0\0\0\0\0", 20), 0);
	CU_ASSERT_EQUAL(id[20], 0xee);
	/* a shorter buffer takes what fits */
	memset(id, 0xee, sizeof(id));
	put(DATA_GPA, id, sizeof(id));
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_GET_ID, 0, DATA_GPA, 6, true, &len),
			VIRTIO_BLK_S_OK);
	CU_ASSERT_EQUAL(len, 7);
	get(DATA_GPA, id, sizeof(id));
	CU_ASSERT_EQUAL(memcmp(id, "foldvm", 6), 0);
	CU_ASSERT_EQUAL(id[6], 0xee);
	CU_ASSERT_EQUAL(request(VIRTIO_BLK_T_FLUSH, 0, NULL, 0, &len), VIRTIO_BLK_S_OK);
	CU_ASSERT_EQUAL(len, 1);
	CU_ASSERT_EQUAL(fx.b.stats.flushes, 1);
	CU_ASSERT_EQUAL(fx.b.stats.errors, 0);
	blk_close();
}

static void test_blk_init(void)
{
	char path[] = "/tmp/foldvm-virtio-XXXXXX";
	struct virtio_blk b;
	struct fv_error err;
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	/* a 20-byte id is not NUL-terminated; a 512-byte image is one sector */
	CU_ASSERT_EQUAL(ftruncate(fd, 512), 0);
	CU_ASSERT_EQUAL(virtio_blk_init(&b, path, false, "0123456789abcdefghijKLMN",
					&gm, 0, &err), 0);
	CU_ASSERT_EQUAL(memcmp(b.id, "0123456789abcdefghij", 20), 0);
	CU_ASSERT_EQUAL(b.sectors, 1);
	virtio_blk_destroy(&b);
	virtio_blk_destroy(&b);  /* idempotent */
	/* images that cannot be used */
	CU_ASSERT_EQUAL(ftruncate(fd, 511), 0);
	CU_ASSERT_EQUAL(virtio_blk_init(&b, path, false, "x", &gm, 0, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	CU_ASSERT_EQUAL(b.fd, -1);
	unlink(path);
	close(fd);
	CU_ASSERT_EQUAL(virtio_blk_init(&b, path, false, "x", &gm, 0, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_IO);
	CU_ASSERT_EQUAL(virtio_blk_init(&b, "/tmp", true, "x", &gm, 0, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
}

/* Does the image hold `byte` in every byte of [off, off + len)? */
static bool image_is(uint64_t off, uint64_t len, uint8_t byte)
{
	static uint8_t buf[IMAGE_SIZE];

	if (pread(fx.fd, buf, len, (off_t)off) != (ssize_t)len)
		return false;
	for (uint64_t i = 0; i < len; i++)
		if (buf[i] != byte)
			return false;
	return true;
}

static void image_fill(uint8_t byte)
{
	static uint8_t buf[IMAGE_SIZE];

	memset(buf, byte, sizeof(buf));
	CU_ASSERT_EQUAL_FATAL(pwrite(fx.fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
}

static uint8_t range_request(uint32_t type, const struct blk_range *r, unsigned n,
			     uint32_t *len)
{
	put(DATA_GPA, r, n * sizeof(*r));
	return request1(type, 0, DATA_GPA, n * (uint32_t)sizeof(*r), false, len);
}

static void test_blk_discard_write_zeroes(void)
{
	struct blk_range r[2];
	uint32_t len;

	blk_open(false);
	image_fill(0xaa);
	/* discard sectors 8..11 */
	r[0] = (struct blk_range){ 8, 4, 0 };
	CU_ASSERT_EQUAL(range_request(VIRTIO_BLK_T_DISCARD, r, 1, &len), VIRTIO_BLK_S_OK);
	CU_ASSERT_EQUAL(len, 1);
	CU_ASSERT_TRUE(image_is(0, 8 * 512, 0xaa));
	CU_ASSERT_TRUE(image_is(8 * 512, 4 * 512, 0));
	CU_ASSERT_TRUE(image_is(12 * 512, IMAGE_SIZE - 12 * 512, 0xaa));
	/* write-zeroes, two ranges, one with UNMAP; the last sector too */
	r[0] = (struct blk_range){ 100, 1, 0 };
	r[1] = (struct blk_range){ IMAGE_SECTORS - 2, 2, VIRTIO_BLK_WZ_F_UNMAP };
	CU_ASSERT_EQUAL(range_request(VIRTIO_BLK_T_WRITE_ZEROES, r, 2, &len),
			VIRTIO_BLK_S_OK);
	CU_ASSERT_TRUE(image_is(12 * 512, 88 * 512, 0xaa));
	CU_ASSERT_TRUE(image_is(100 * 512, 512, 0));
	CU_ASSERT_TRUE(image_is(101 * 512, (IMAGE_SECTORS - 103) * 512ull, 0xaa));
	CU_ASSERT_TRUE(image_is((IMAGE_SECTORS - 2) * 512ull, 1024, 0));
	/* the file keeps its size */
	CU_ASSERT_EQUAL(lseek(fx.fd, 0, SEEK_END), IMAGE_SIZE);
	CU_ASSERT_EQUAL(fx.b.stats.discards, 1);
	CU_ASSERT_EQUAL(fx.b.stats.write_zeroes, 1);
	CU_ASSERT_EQUAL(fx.b.stats.errors, 0);
	blk_close();
}

static void test_blk_bad_ranges(void)
{
	struct blk_range r[VIRTIO_BLK_MAX_DISCARD_SEG + 1];
	uint32_t len;

	blk_open(false);
	image_fill(0xaa);
	/* past the end, crossing it, far beyond */
	r[0] = (struct blk_range){ IMAGE_SECTORS, 1, 0 };
	CU_ASSERT_EQUAL(range_request(VIRTIO_BLK_T_DISCARD, r, 1, &len), VIRTIO_BLK_S_IOERR);
	r[0] = (struct blk_range){ IMAGE_SECTORS - 1, 2, 0 };
	CU_ASSERT_EQUAL(range_request(VIRTIO_BLK_T_WRITE_ZEROES, r, 1, &len),
			VIRTIO_BLK_S_IOERR);
	r[0] = (struct blk_range){ UINT64_MAX, 2, 0 };
	CU_ASSERT_EQUAL(range_request(VIRTIO_BLK_T_DISCARD, r, 1, &len), VIRTIO_BLK_S_IOERR);
	r[0] = (struct blk_range){ 0, UINT32_MAX, 0 };
	CU_ASSERT_EQUAL(range_request(VIRTIO_BLK_T_WRITE_ZEROES, r, 1, &len),
			VIRTIO_BLK_S_IOERR);
	/* reserved flags, any for discard and all but UNMAP for write-zeroes,
	 * are unsupported (5.2.6.2) */
	r[0] = (struct blk_range){ 0, 1, VIRTIO_BLK_WZ_F_UNMAP };
	CU_ASSERT_EQUAL(range_request(VIRTIO_BLK_T_DISCARD, r, 1, &len), VIRTIO_BLK_S_UNSUPP);
	r[0] = (struct blk_range){ 0, 1, 2 };
	CU_ASSERT_EQUAL(range_request(VIRTIO_BLK_T_WRITE_ZEROES, r, 1, &len),
			VIRTIO_BLK_S_UNSUPP);
	r[0] = (struct blk_range){ IMAGE_SECTORS, 1, 0x80000000u };
	CU_ASSERT_EQUAL(range_request(VIRTIO_BLK_T_DISCARD, r, 1, &len), VIRTIO_BLK_S_UNSUPP);
	/* no range, a partial range, too many ranges */
	CU_ASSERT_EQUAL(request(VIRTIO_BLK_T_DISCARD, 0, NULL, 0, &len), VIRTIO_BLK_S_IOERR);
	r[0] = (struct blk_range){ 0, 1, 0 };
	put(DATA_GPA, r, sizeof(r[0]));
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_DISCARD, 0, DATA_GPA, 12, false, &len),
			VIRTIO_BLK_S_IOERR);
	for (unsigned i = 0; i <= VIRTIO_BLK_MAX_DISCARD_SEG; i++)
		r[i] = (struct blk_range){ i, 1, 0 };
	CU_ASSERT_EQUAL(range_request(VIRTIO_BLK_T_DISCARD, r,
				      VIRTIO_BLK_MAX_DISCARD_SEG + 1, &len),
			VIRTIO_BLK_S_IOERR);
	CU_ASSERT_EQUAL(fx.b.stats.errors, 10);
	CU_ASSERT_EQUAL(fx.b.stats.discards, 0);
	CU_ASSERT_EQUAL(fx.b.stats.write_zeroes, 0);
	CU_ASSERT_TRUE(image_is(0, IMAGE_SIZE, 0xaa));
	/* the most ranges there may be */
	CU_ASSERT_EQUAL(range_request(VIRTIO_BLK_T_DISCARD, r, VIRTIO_BLK_MAX_DISCARD_SEG,
				      &len), VIRTIO_BLK_S_OK);
	CU_ASSERT_TRUE(image_is(0, VIRTIO_BLK_MAX_DISCARD_SEG * 512, 0));
	CU_ASSERT_TRUE(image_is(VIRTIO_BLK_MAX_DISCARD_SEG * 512, 512, 0xaa));
	blk_close();
}

/* The device stopped at a broken chain: NEEDS_RESET, config interrupt,
 * nothing used, and further notifies are ignored. */
static void expect_needs_reset(uint16_t used_before)
{
	uint32_t len;

	CU_ASSERT_TRUE(rd(&fx.b.transport, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	CU_ASSERT_TRUE(rd(&fx.b.transport, VIRTIO_MMIO_INTERRUPT_STATUS) &
		       VIRTIO_MMIO_INT_CONFIG);
	CU_ASSERT_EQUAL(used_idx(), used_before);
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_IN, 0, DATA2_GPA, 512, true, &len), 0xee);
	CU_ASSERT_EQUAL(used_idx(), used_before);
}

static void test_blk_no_status_byte(void)
{
	struct seg s[2] = { { HDR_GPA, 16, false }, { DATA_GPA, 512, false } };
	uint32_t len;

	blk_open(false);
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_FLUSH, 0, 0, 0, false, &len), VIRTIO_BLK_S_OK);
	put_hdr(VIRTIO_BLK_T_OUT, 0);
	CU_ASSERT_FALSE(submit(s, 2, &len));
	expect_needs_reset(1);
	CU_ASSERT_EQUAL(fx.b.stats.writes, 0);
	CU_ASSERT_EQUAL(fx.b.stats.errors, 0);
	CU_ASSERT_TRUE(image_is(0, 512, 0));
	blk_close();
}

static void test_blk_loop_then_reset(void)
{
	static uint8_t out[1024], in[1024];
	uint32_t len;

	blk_open(false);
	put_hdr(VIRTIO_BLK_T_IN, 0);
	put_desc(0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(1, DATA_GPA, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	put_desc(2, STATUS_GPA, 1, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	publish(0);
	wr(&fx.b.transport, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	expect_needs_reset(0);
	CU_ASSERT_EQUAL(fx.b.stats.reads, 0);
	/* a reset and a new start: the device works again */
	wr(&fx.b.transport, VIRTIO_MMIO_STATUS, 0);
	CU_ASSERT_EQUAL(rd(&fx.b.transport, VIRTIO_MMIO_STATUS), 0);
	CU_ASSERT_EQUAL(rd(&fx.b.transport, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	driver_init(&fx.b.transport);
	fill_pattern(out, sizeof(out), 11);
	put(DATA_GPA, out, sizeof(out));
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_OUT, 40, DATA_GPA, 1024, false, &len),
			VIRTIO_BLK_S_OK);
	CU_ASSERT_EQUAL(request1(VIRTIO_BLK_T_IN, 40, DATA2_GPA, 1024, true, &len),
			VIRTIO_BLK_S_OK);
	CU_ASSERT_EQUAL(len, 1025);
	get(DATA2_GPA, in, sizeof(in));
	CU_ASSERT_EQUAL(memcmp(in, out, sizeof(in)), 0);
	CU_ASSERT_EQUAL(used_idx(), 2);
	CU_ASSERT_EQUAL(fx.b.stats.reads, 1);
	CU_ASSERT_EQUAL(fx.b.stats.writes, 1);
	CU_ASSERT_FALSE(rd(&fx.b.transport, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	blk_close();
}

/* A chain used before a broken one in the same notify is announced:
 * the vring interrupt as well as the config one of NEEDS_RESET. */
static void test_blk_used_before_broken(void)
{
	uint8_t status = 0xee;

	blk_open(false);
	put_hdr(VIRTIO_BLK_T_FLUSH, 0);
	put(STATUS_GPA, &status, 1);
	put_desc(0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(1, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	put_desc(2, HDR_GPA, 16, 0, 0);    /* no status byte */
	publish(0);
	publish(2);
	wr(&fx.b.transport, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CU_ASSERT_EQUAL(used_idx(), 1);
	get(STATUS_GPA, &status, 1);
	CU_ASSERT_EQUAL(status, VIRTIO_BLK_S_OK);
	CU_ASSERT_TRUE(rd(&fx.b.transport, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	CU_ASSERT_EQUAL(rd(&fx.b.transport, VIRTIO_MMIO_INTERRUPT_STATUS),
			VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
	/* the same with a chain the ring walk refuses (a loop) */
	wr(&fx.b.transport, VIRTIO_MMIO_STATUS, 0);
	driver_init(&fx.b.transport);
	put_desc(0, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(1, STATUS_GPA, 1, VIRTQ_DESC_F_WRITE, 0);
	put_desc(2, HDR_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
	publish(0);
	publish(2);
	wr(&fx.b.transport, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CU_ASSERT_EQUAL(used_idx(), 1);
	CU_ASSERT_TRUE(rd(&fx.b.transport, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	CU_ASSERT_EQUAL(rd(&fx.b.transport, VIRTIO_MMIO_INTERRUPT_STATUS),
			VIRTIO_MMIO_INT_VRING | VIRTIO_MMIO_INT_CONFIG);
	blk_close();
}

/* Several chains made available at once are all served, in order. */
static void test_blk_batch(void)
{
	uint32_t id, len;
	uint8_t status[4];

	blk_open(false);
	for (uint16_t k = 0; k < 4; k++) {
		uint16_t d = (uint16_t)(2 * k);
		uint8_t h[16] = { (uint8_t)(k == 3 ? 42 : VIRTIO_BLK_T_FLUSH) };

		put(HDR_GPA + 16 * k, h, sizeof(h));
		put_desc(d, HDR_GPA + 16 * k, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(d + 1));
		put_desc((uint16_t)(d + 1), STATUS_GPA + k, 1, VIRTQ_DESC_F_WRITE, 0);
		publish(d);
	}
	memset(status, 0xee, sizeof(status));
	put(STATUS_GPA, status, sizeof(status));
	wr(&fx.b.transport, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	CU_ASSERT_EQUAL(used_idx(), 4);
	for (uint16_t k = 0; k < 4; k++) {
		used_elem(k, &id, &len);
		CU_ASSERT_EQUAL(id, 2u * k);
		CU_ASSERT_EQUAL(len, 1);
	}
	get(STATUS_GPA, status, sizeof(status));
	CU_ASSERT_EQUAL(memcmp(status, "\0\0\0\2", 4), 0);
	CU_ASSERT_EQUAL(fx.b.stats.flushes, 3);
	CU_ASSERT_EQUAL(fx.b.stats.errors, 1);
	blk_close();
}

void unit_add_virtio_suite(void)
{
	CU_pSuite s = CU_add_suite("virtio", setup, teardown);

	CU_add_test(s, "virtqueue: a valid chain", test_vq_valid_chain);
	CU_add_test(s, "virtqueue: nothing available", test_vq_nothing_available);
	CU_add_test(s, "virtqueue: a whole ring", test_vq_whole_ring);
	CU_add_test(s, "virtqueue: indices wrap", test_vq_index_wraps);
	CU_add_test(s, "virtqueue: loops refused", test_vq_loop_refused);
	CU_add_test(s, "virtqueue: indices out of range", test_vq_index_out_of_range);
	CU_add_test(s, "virtqueue: indirect refused", test_vq_indirect_refused);
	CU_add_test(s, "virtqueue: readable after writable", test_vq_order_refused);
	CU_add_test(s, "virtqueue: buffers outside RAM", test_vq_buffer_outside_ram);
	CU_add_test(s, "virtqueue: zero-length buffer", test_vq_zero_length_refused);
	CU_add_test(s, "virtqueue: avail idx too far ahead", test_vq_avail_too_far_ahead);
	CU_add_test(s, "virtqueue: push and interrupt", test_vq_push_and_interrupt);
	CU_add_test(s, "virtqueue: chain copies", test_vq_chain_copy);
	CU_add_test(s, "virtqueue: ring checks", test_vq_check);
	CU_add_test(s, "virtio-mmio: identification", test_mmio_ids);
	CU_add_test(s, "virtio-mmio: feature negotiation", test_mmio_features);
	CU_add_test(s, "virtio-mmio: queue registers while ready",
		    test_mmio_queue_regs_while_ready);
	CU_add_test(s, "virtio-mmio: QueueReady checks the rings",
		    test_mmio_ready_checks_rings);
	CU_add_test(s, "virtio-mmio: reset", test_mmio_reset);
	CU_add_test(s, "virtio-mmio: notify and interrupts", test_mmio_notify);
	CU_add_test(s, "virtio-mmio: access widths", test_mmio_access_width);
	CU_add_test(s, "virtio-mmio: config space", test_mmio_config);
	CU_add_test(s, "mmio bus", test_mmio_bus);
	CU_add_test(s, "virtio-blk: config", test_blk_config);
	CU_add_test(s, "virtio-blk: write and read back", test_blk_round_trip);
	CU_add_test(s, "virtio-blk: bad requests", test_blk_bad_requests);
	CU_add_test(s, "virtio-blk: read-only", test_blk_read_only);
	CU_add_test(s, "virtio-blk: get-id and flush", test_blk_get_id_flush);
	CU_add_test(s, "virtio-blk: images and ids", test_blk_init);
	CU_add_test(s, "virtio-blk: discard and write-zeroes",
		    test_blk_discard_write_zeroes);
	CU_add_test(s, "virtio-blk: bad ranges", test_blk_bad_ranges);
	CU_add_test(s, "virtio-blk: no status byte", test_blk_no_status_byte);
	CU_add_test(s, "virtio-blk: loop, reset, works again", test_blk_loop_then_reset);
	CU_add_test(s, "virtio-blk: a batch of chains", test_blk_batch);
	CU_add_test(s, "virtio-blk: used before a broken chain",
		    test_blk_used_before_broken);
}
