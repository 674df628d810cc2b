/* test_virtio_balloon.c - virtio-balloon behind the virtio-mmio transport
 * and the MMIO bus, with the test playing the driver: it writes rings,
 * descriptors, PFN arrays and statistics into a guest memory made without
 * KVM and drives the device through 4-byte register accesses on the bus,
 * as a guest would; the host's side is virtio_balloon_set_target() and
 * virtio_balloon_query(). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <CUnit/CUnit.h>
#include "devices/mmio.h"
#include "devices/virtio_balloon.h"
#include "devices/virtio_mmio.h"
#include "devices/virtqueue.h"
#include "tests/unit/unit.h"
#include "tests/unit/virtio_rig.h"

#define MEM_PAGES (MEM / GMEM_PAGE_SIZE)
#define QSIZE 8u
#define BASE 0xd0000000ull
/* Queue q's rings: descriptor table, driver area, device area. */
#define RING_GPA(q) (0x10000ull + 0x3000ull * (q))
#define DESC_GPA(q) RING_GPA(q)
#define AVAIL_GPA(q) (RING_GPA(q) + 0x1000)
#define USED_GPA(q) (RING_GPA(q) + 0x2000)
#define RINGS_END RING_GPA(VIRTIO_MMIO_MAX_QUEUES)
#define PFN_GPA 0x20000ull      /* inflate/deflate arrays */
#define STATS_GPA 0x21000ull    /* statistics buffers */
#define PAGES_GPA 0x100000ull   /* pages given and taken back */

#define F_STATS (1ull << VIRTIO_BALLOON_F_STATS_VQ)
#define F_REPORTING (1ull << VIRTIO_BALLOON_F_PAGE_REPORTING)
#define F_V1 (1ull << VIRTIO_F_VERSION_1)

/* Queue indices when both STATS_VQ and PAGE_REPORTING are negotiated. */
enum { Q_INFLATE, Q_DEFLATE, Q_STATS, Q_REPORTING };

static struct {
	struct virtio_balloon b;
	struct mmio_bus bus;
	int irq_level;
	unsigned irq_calls;
} bx;

/* --- guest memory, as the driver sees it --- */

/* Does [gpa, gpa + len) read as `byte` everywhere? */
static bool reads_as(uint64_t gpa, uint64_t len, uint8_t byte)
{
	static uint8_t buf[GMEM_PAGE_SIZE];

	for (uint64_t off = 0; off < len; off += sizeof(buf)) {
		uint64_t n = len - off < sizeof(buf) ? len - off : sizeof(buf);

		get(gpa + off, buf, n);
		for (uint64_t i = 0; i < n; i++)
			if (buf[i] != byte)
				return false;
	}
	return true;
}

static void put_desc(unsigned q, uint16_t i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	struct desc d = { .addr = addr, .len = len, .flags = flags, .next = next };

	put(DESC_GPA(q) + 16ull * i, &d, sizeof(d));
}

/* Make chain `head` available on queue q: ring entry, then idx. */
static void publish(unsigned q, uint16_t head)
{
	uint16_t idx = get_u16(AVAIL_GPA(q) + 2);

	put_u16(AVAIL_GPA(q) + 4 + 2 * (idx % QSIZE), head);
	put_u16(AVAIL_GPA(q) + 2, (uint16_t)(idx + 1));
}

static uint16_t used_idx(unsigned q)
{
	return get_u16(USED_GPA(q) + 2);
}

static void used_elem(unsigned q, uint16_t slot, uint32_t *id, uint32_t *len)
{
	uint32_t e[2];

	get(USED_GPA(q) + 4 + 8ull * (slot % QSIZE), e, sizeof(e));
	*id = e[0];
	*len = e[1];
}

/* --- the device's window, through the bus --- */

static uint32_t rd(uint64_t off)
{
	uint8_t d[4];
	uint32_t v;

	mmio_dispatch(&bx.bus, BASE + off, false, d, 4);
	memcpy(&v, d, 4);
	return v;
}

static void wr(uint64_t off, uint32_t v)
{
	uint8_t d[4];

	memcpy(d, &v, 4);
	mmio_dispatch(&bx.bus, BASE + off, true, d, 4);
}

static void wr64(uint64_t low_off, uint64_t v)
{
	wr(low_off, (uint32_t)v);
	wr(low_off + 4, (uint32_t)(v >> 32));
}

static void notify(unsigned q)
{
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

static uint32_t status(void)
{
	return rd(VIRTIO_MMIO_STATUS);
}

static bool needs_reset(void)
{
	return status() & VIRTIO_STATUS_NEEDS_RESET;
}

static void window(void *opaque, uint64_t off, bool is_write, uint8_t *data,
		   unsigned len)
{
	virtio_mmio_access(opaque, off, is_write, data, len);
}

static void set_irq(void *opaque, int level)
{
	(void)opaque;
	bx.irq_calls++;
	bx.irq_level = level;
}

static uint64_t device_features(void)
{
	uint64_t lo, hi;

	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	lo = rd(VIRTIO_MMIO_DEVICE_FEATURES);
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	hi = rd(VIRTIO_MMIO_DEVICE_FEATURES);
	return lo | hi << 32;
}

/* Steps 1-6 of 3.1.1: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK. */
static void negotiate(uint64_t features)
{
	uint32_t s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;

	wr(VIRTIO_MMIO_STATUS, 0);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(VIRTIO_MMIO_STATUS, s);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	wr(VIRTIO_MMIO_STATUS, s | VIRTIO_STATUS_FEATURES_OK);
}

static void setup_queue(unsigned q)
{
	wr(VIRTIO_MMIO_QUEUE_SEL, q);
	wr(VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr64(VIRTIO_MMIO_QUEUE_DESC_LOW, DESC_GPA(q));
	wr64(VIRTIO_MMIO_QUEUE_DRIVER_LOW, AVAIL_GPA(q));
	wr64(VIRTIO_MMIO_QUEUE_DEVICE_LOW, USED_GPA(q));
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_QUEUE_READY), 1);
}

/* The whole of 3.1.1 with `features` (VERSION_1 added), every one of the
 * four queues set up (the ones without a role too), then DRIVER_OK. */
static void driver_init(uint64_t features)
{
	fill(RING_GPA(0), 0, RINGS_END - RING_GPA(0));
	negotiate(features | F_V1);
	CU_ASSERT_EQUAL_FATAL(status() & VIRTIO_STATUS_FEATURES_OK,
			      VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < VIRTIO_MMIO_MAX_QUEUES; q++)
		setup_queue(q);
	wr(VIRTIO_MMIO_STATUS, status() | VIRTIO_STATUS_DRIVER_OK);
	CU_ASSERT_TRUE(virtio_mmio_live(&bx.b.transport));
}

/* A device on the bus, not yet driven. */
static void bal_new(void)
{
	struct fv_error err;

	memset(&bx, 0, sizeof(bx));
	CU_ASSERT_EQUAL_FATAL(virtio_balloon_init(&bx.b, &gm, BASE, &err), 0);
	CU_ASSERT_EQUAL_FATAL(mmio_register(&bx.bus, BASE, VIRTIO_MMIO_WINDOW, window,
					    &bx.b.transport, "virtio-balloon", &err), 0);
	bx.b.transport.set_irq = set_irq;
	fill(RING_GPA(0), 0, RINGS_END - RING_GPA(0));
}

static void bal_open(uint64_t features)
{
	bal_new();
	driver_init(features);
}

static void bal_close(void)
{
	virtio_balloon_destroy(&bx.b);
}

/* Publish the one-descriptor chain (desc 0) gpa+len on queue q and notify. */
static void submit1(unsigned q, uint64_t gpa, uint32_t len, uint16_t flags)
{
	put_desc(q, 0, gpa, len, flags, 0);
	publish(q, 0);
	notify(q);
}

static void put_pfns(const uint32_t *pfn, unsigned n)
{
	put(PFN_GPA, pfn, 4ull * n);
}

/* One 10-byte statistics entry at entry index i of the buffer at gpa. */
static void put_stat(uint64_t gpa, unsigned i, uint16_t tag, uint64_t value)
{
	uint8_t e[VIRTIO_BALLOON_STAT_BYTES];

	e[0] = (uint8_t)tag;
	e[1] = (uint8_t)(tag >> 8);
	for (unsigned k = 0; k < 8; k++)
		e[2 + k] = (uint8_t)(value >> (8 * k));
	put(gpa + VIRTIO_BALLOON_STAT_BYTES * i, e, sizeof(e));
}

static uint32_t config32(uint32_t off)
{
	return rd(VIRTIO_MMIO_CONFIG + off);
}

/* --- tests --- */

static void test_bal_ids(void)
{
	uint8_t d[8];

	bal_new();
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_VERSION), 2);
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BALLOON);
	CU_ASSERT_EQUAL(device_features(), F_STATS | F_REPORTING | F_V1);
	/* four queues of at most 128 */
	for (unsigned q = 0; q < 4; q++) {
		wr(VIRTIO_MMIO_QUEUE_SEL, q);
		CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTIO_BALLOON_QUEUE_SIZE);
	}
	wr(VIRTIO_MMIO_QUEUE_SEL, 4);
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	/* config: num_pages and actual, 8 bytes; nothing beyond */
	CU_ASSERT_EQUAL(config32(0), 0);
	CU_ASSERT_EQUAL(config32(4), 0);
	memset(d, 0xee, sizeof(d));
	mmio_dispatch(&bx.bus, BASE + VIRTIO_MMIO_CONFIG + 8, false, d, 4);
	CU_ASSERT_EQUAL(memcmp(d, "\0\0\0\0", 4), 0);
	mmio_dispatch(&bx.bus, BASE + VIRTIO_MMIO_CONFIG + 6, false, d, 4);
	CU_ASSERT_EQUAL(memcmp(d, "\0\0\0\0", 4), 0);
	/* a feature it does not offer (FREE_PAGE_HINT, 3): no FEATURES_OK */
	negotiate(F_V1 | (1ull << 3));
	CU_ASSERT_FALSE(status() & VIRTIO_STATUS_FEATURES_OK);
	negotiate(F_V1 | F_STATS | F_REPORTING);
	CU_ASSERT_TRUE(status() & VIRTIO_STATUS_FEATURES_OK);
	CU_ASSERT_STRING_EQUAL(virtio_balloon_stat_name(4), "stat-free-memory");
	CU_ASSERT_STRING_EQUAL(virtio_balloon_stat_name(15), "stat-direct-reclaims");
	CU_ASSERT_PTR_NULL(virtio_balloon_stat_name(VIRTIO_BALLOON_S_NR));
	bal_close();
}

static void test_bal_inflate(void)
{
	/* four pages in RAM, one twice, and two beyond it */
	const uint32_t pfn[] = { 0x100, 0x101, 0x102, 0x103, (uint32_t)MEM_PAGES,
				 0x101, 0xffffffffu };
	struct virtio_balloon_counters c;
	uint32_t id, len;

	bal_open(F_STATS | F_REPORTING);
	fill(PAGES_GPA, 0x5a, 5 * GMEM_PAGE_SIZE);
	put_pfns(pfn, 7);
	submit1(Q_INFLATE, PFN_GPA, sizeof(pfn), 0);
	CU_ASSERT_FALSE(needs_reset());
	CU_ASSERT_EQUAL_FATAL(used_idx(Q_INFLATE), 1);
	used_elem(Q_INFLATE, 0, &id, &len);
	CU_ASSERT_EQUAL(id, 0);
	CU_ASSERT_EQUAL(len, 0);
	/* given to the balloon: they read zero; the next page keeps its data */
	CU_ASSERT_TRUE(reads_as(PAGES_GPA, 4 * GMEM_PAGE_SIZE, 0));
	CU_ASSERT_TRUE(reads_as(PAGES_GPA + 4 * GMEM_PAGE_SIZE, GMEM_PAGE_SIZE, 0x5a));
	virtio_balloon_counters(&bx.b, &c);
	CU_ASSERT_EQUAL(c.inflated_pages, 5);
	CU_ASSERT_EQUAL(c.bad_pfns, 2);
	/* no dedup engine: gmem_release hands them to the kernel (MADV_DONTNEED)
	 * and zeroes none through the write path */
	CU_ASSERT_EQUAL(c.released_written, 0);
	CU_ASSERT_EQUAL(c.deflated_pages, 0);
	CU_ASSERT_EQUAL(c.reports, 0);
	/* used, with an interrupt */
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	CU_ASSERT_EQUAL(bx.irq_level, 1);
	wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	CU_ASSERT_EQUAL(bx.irq_level, 0);
	/* a buffer split over two descriptors is one array */
	fill(PAGES_GPA, 0x77, 2 * GMEM_PAGE_SIZE);
	put_pfns(pfn, 2);
	put_desc(Q_INFLATE, 3, PFN_GPA, 2, VIRTQ_DESC_F_NEXT, 5);
	put_desc(Q_INFLATE, 5, PFN_GPA + 2, 6, 0, 0);
	publish(Q_INFLATE, 3);
	notify(Q_INFLATE);
	CU_ASSERT_EQUAL(used_idx(Q_INFLATE), 2);
	CU_ASSERT_TRUE(reads_as(PAGES_GPA, 2 * GMEM_PAGE_SIZE, 0));
	virtio_balloon_counters(&bx.b, &c);
	CU_ASSERT_EQUAL(c.inflated_pages, 7);
	CU_ASSERT_FALSE(needs_reset());
	bal_close();
}

/* With a dedup-style home-backed RAM, gmem_release zeroes through the
 * write path and counts the pages that held data. */
static void test_bal_inflate_counts_written(void)
{
	const uint32_t pfn[] = { 0x100, 0x101, 0x102 };
	struct guest_mem saved = gm;
	struct virtio_balloon_counters c;
	struct fv_error err;

	CU_ASSERT_EQUAL_FATAL(gmem_create_in_home(&gm, -1, MEM, "unit-balloon", &err), 0);
	bal_open(0);
	fill(PAGES_GPA, 0x33, 2 * GMEM_PAGE_SIZE);   /* 0x102 never written */
	put_pfns(pfn, 3);
	submit1(Q_INFLATE, PFN_GPA, sizeof(pfn), 0);
	CU_ASSERT_EQUAL(used_idx(Q_INFLATE), 1);
	CU_ASSERT_TRUE(reads_as(PAGES_GPA, 3 * GMEM_PAGE_SIZE, 0));
	virtio_balloon_counters(&bx.b, &c);
	CU_ASSERT_EQUAL(c.inflated_pages, 3);
	CU_ASSERT_EQUAL(c.released_written, 2);
	/* again: they read zero already, nothing written */
	publish(Q_INFLATE, 0);
	notify(Q_INFLATE);
	virtio_balloon_counters(&bx.b, &c);
	CU_ASSERT_EQUAL(c.inflated_pages, 6);
	CU_ASSERT_EQUAL(c.released_written, 2);
	bal_close();
	gmem_destroy(&gm);
	gm = saved;
}

/* A 5 GiB guest (RAM above the 32-bit hole): a PFN is a guest-physical
 * page, so the pages above 4 GiB are RAM up to 6 GiB, and a PFN in the
 * hole is no RAM, even though it is below the guest's page count.  A
 * reported range is released where it is, and one that crosses into the
 * hole is refused with nothing released. */
static void test_bal_inflate_high(void)
{
	const uint64_t G = 1ull << 30;
	const uint32_t pfn[] = {
		0x100000,  /* 4 GiB: the first page above the hole */
		0x17ffff,  /* the last RAM page, beyond the RAM page count */
		0xc0000,   /* 3 GiB: the hole starts */
		0xfee00,   /* the LAPIC */
		0x180000,  /* 6 GiB: past the end */
		0x100,     /* low RAM */
	};
	struct guest_mem saved = gm;
	struct virtio_balloon_counters c;
	struct fv_error err;
	int r = gmem_create_layout(&gm, -1, 5 * G, GMEM_LAYOUT_PC, NULL, &err);

	if (r)
		fprintf(stderr, "\n    %s\n", err.msg);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	bal_open(F_STATS | F_REPORTING);
	fill(4 * G, 0x44, GMEM_PAGE_SIZE);
	fill(6 * G - GMEM_PAGE_SIZE, 0x66, GMEM_PAGE_SIZE);
	fill(3 * G - GMEM_PAGE_SIZE, 0x33, GMEM_PAGE_SIZE);
	fill(PAGES_GPA, 0x5a, GMEM_PAGE_SIZE);
	put_pfns(pfn, 6);
	submit1(Q_INFLATE, PFN_GPA, sizeof(pfn), 0);
	CU_ASSERT_FALSE(needs_reset());
	CU_ASSERT_EQUAL_FATAL(used_idx(Q_INFLATE), 1);
	CU_ASSERT_TRUE(reads_as(4 * G, GMEM_PAGE_SIZE, 0));
	CU_ASSERT_TRUE(reads_as(6 * G - GMEM_PAGE_SIZE, GMEM_PAGE_SIZE, 0));
	CU_ASSERT_TRUE(reads_as(PAGES_GPA, GMEM_PAGE_SIZE, 0));
	CU_ASSERT_TRUE(reads_as(3 * G - GMEM_PAGE_SIZE, GMEM_PAGE_SIZE, 0x33));
	virtio_balloon_counters(&bx.b, &c);
	CU_ASSERT_EQUAL(c.inflated_pages, 3);
	CU_ASSERT_EQUAL(c.bad_pfns, 3);
	/* free page reporting above the hole */
	fill(5 * G, 0x55, 2 * GMEM_PAGE_SIZE);
	submit1(Q_REPORTING, 5 * G, 2 * GMEM_PAGE_SIZE, VIRTQ_DESC_F_WRITE);
	CU_ASSERT_FALSE(needs_reset());
	CU_ASSERT_TRUE(reads_as(5 * G, 2 * GMEM_PAGE_SIZE, 0));
	/* a range from low RAM into the hole: not RAM, nothing released */
	submit1(Q_REPORTING, 3 * G - GMEM_PAGE_SIZE, 2 * GMEM_PAGE_SIZE,
		VIRTQ_DESC_F_WRITE);
	CU_ASSERT_TRUE(needs_reset());
	CU_ASSERT_TRUE(reads_as(3 * G - GMEM_PAGE_SIZE, GMEM_PAGE_SIZE, 0x33));
	bal_close();
	gmem_destroy(&gm);
	gm = saved;
}

static void test_bal_inflate_bad_buffers(void)
{
	const uint32_t pfn[] = { 0x100, 0x101 };
	struct virtio_balloon_counters c;

	/* not a whole number of le32 PFNs */
	bal_open(F_STATS | F_REPORTING);
	fill(PAGES_GPA, 0x5a, 2 * GMEM_PAGE_SIZE);
	put_pfns(pfn, 2);
	submit1(Q_INFLATE, PFN_GPA, 6, 0);
	CU_ASSERT_TRUE(needs_reset());
	CU_ASSERT_TRUE(rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	CU_ASSERT_EQUAL(used_idx(Q_INFLATE), 0);
	CU_ASSERT_TRUE(reads_as(PAGES_GPA, 2 * GMEM_PAGE_SIZE, 0x5a));
	virtio_balloon_counters(&bx.b, &c);
	CU_ASSERT_EQUAL(c.inflated_pages, 0);
	/* and it stays stopped until a reset */
	submit1(Q_INFLATE, PFN_GPA, 8, 0);
	CU_ASSERT_EQUAL(used_idx(Q_INFLATE), 0);
	CU_ASSERT_TRUE(reads_as(PAGES_GPA, 2 * GMEM_PAGE_SIZE, 0x5a));
	/* a device-writable part */
	driver_init(F_STATS | F_REPORTING);
	CU_ASSERT_FALSE(needs_reset());
	put_desc(Q_INFLATE, 0, PFN_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	put_desc(Q_INFLATE, 1, PFN_GPA + 0x100, 4, VIRTQ_DESC_F_WRITE, 0);
	publish(Q_INFLATE, 0);
	notify(Q_INFLATE);
	CU_ASSERT_TRUE(needs_reset());
	CU_ASSERT_EQUAL(used_idx(Q_INFLATE), 0);
	/* more PFNs than one buffer may hold */
	driver_init(F_STATS | F_REPORTING);
	submit1(Q_INFLATE, PFN_GPA, 4 * (VIRTIO_BALLOON_MAX_PFNS + 1), 0);
	CU_ASSERT_TRUE(needs_reset());
	CU_ASSERT_EQUAL(used_idx(Q_INFLATE), 0);
	/* exactly that many is fine (the array reads zero: PFN 0 each time) */
	driver_init(F_STATS | F_REPORTING);
	fill(PAGES_GPA, 0, 4 * VIRTIO_BALLOON_MAX_PFNS);
	submit1(Q_INFLATE, PAGES_GPA, 4 * VIRTIO_BALLOON_MAX_PFNS, 0);
	CU_ASSERT_FALSE(needs_reset());
	CU_ASSERT_EQUAL(used_idx(Q_INFLATE), 1);
	virtio_balloon_counters(&bx.b, &c);
	CU_ASSERT_EQUAL(c.inflated_pages, VIRTIO_BALLOON_MAX_PFNS);
	bal_close();
}

static void test_bal_deflate(void)
{
	const uint32_t pfn[] = { 0x100, 0x101, (uint32_t)MEM_PAGES + 7 };
	struct virtio_balloon_counters c;
	uint32_t id, len;

	bal_open(F_STATS | F_REPORTING);
	/* deflating only counts: the guest's pages are its own again */
	fill(PAGES_GPA, 0x42, 2 * GMEM_PAGE_SIZE);
	put_pfns(pfn, 3);
	put_desc(Q_DEFLATE, 2, PFN_GPA, sizeof(pfn), 0, 0);
	publish(Q_DEFLATE, 2);
	notify(Q_DEFLATE);
	CU_ASSERT_FALSE(needs_reset());
	CU_ASSERT_EQUAL_FATAL(used_idx(Q_DEFLATE), 1);
	used_elem(Q_DEFLATE, 0, &id, &len);
	CU_ASSERT_EQUAL(id, 2);
	CU_ASSERT_EQUAL(len, 0);
	CU_ASSERT_TRUE(reads_as(PAGES_GPA, 2 * GMEM_PAGE_SIZE, 0x42));
	virtio_balloon_counters(&bx.b, &c);
	CU_ASSERT_EQUAL(c.deflated_pages, 2);
	CU_ASSERT_EQUAL(c.bad_pfns, 1);
	CU_ASSERT_EQUAL(c.inflated_pages, 0);
	/* two at once */
	publish(Q_DEFLATE, 2);
	publish(Q_DEFLATE, 2);
	notify(Q_DEFLATE);
	CU_ASSERT_EQUAL(used_idx(Q_DEFLATE), 3);
	virtio_balloon_counters(&bx.b, &c);
	CU_ASSERT_EQUAL(c.deflated_pages, 6);
	CU_ASSERT_EQUAL(c.bad_pfns, 3);
	/* the same rule as inflate: whole PFNs only */
	submit1(Q_DEFLATE, PFN_GPA, 3, 0);
	CU_ASSERT_TRUE(needs_reset());
	CU_ASSERT_EQUAL(used_idx(Q_DEFLATE), 3);
	virtio_balloon_counters(&bx.b, &c);
	CU_ASSERT_EQUAL(c.deflated_pages, 6);
	bal_close();
}

/* Free page reporting: two device-writable ranges, one page-aligned, one
 * not; only whole pages inside a range go back. */
static void test_bal_report(void)
{
	const uint64_t a = 0x200000, b = 0x300800;
	struct virtio_balloon_counters c;
	uint32_t id, len;

	bal_open(F_STATS | F_REPORTING);
	fill(a, 0x11, 2 * GMEM_PAGE_SIZE);
	fill(b - 0x800, 0x22, 3 * GMEM_PAGE_SIZE);
	put_desc(Q_REPORTING, 4, a, 2 * GMEM_PAGE_SIZE,
		 VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 6);
	put_desc(Q_REPORTING, 6, b, 2 * GMEM_PAGE_SIZE, VIRTQ_DESC_F_WRITE, 0);
	publish(Q_REPORTING, 4);
	notify(Q_REPORTING);
	CU_ASSERT_FALSE(needs_reset());
	CU_ASSERT_EQUAL_FATAL(used_idx(Q_REPORTING), 1);
	used_elem(Q_REPORTING, 0, &id, &len);
	CU_ASSERT_EQUAL(id, 4);
	CU_ASSERT_EQUAL(len, 0);
	CU_ASSERT_TRUE(reads_as(a, 2 * GMEM_PAGE_SIZE, 0));
	/* b covers 0x300800..0x302800: only the page at 0x301000 is whole */
	CU_ASSERT_TRUE(reads_as(b - 0x800, GMEM_PAGE_SIZE, 0x22));
	CU_ASSERT_TRUE(reads_as(b + 0x800, GMEM_PAGE_SIZE, 0));
	CU_ASSERT_TRUE(reads_as(b + 0x1800, GMEM_PAGE_SIZE, 0x22));
	CU_ASSERT_TRUE(rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING);
	virtio_balloon_counters(&bx.b, &c);
	CU_ASSERT_EQUAL(c.reports, 2);
	CU_ASSERT_EQUAL(c.reported_bytes, 4 * GMEM_PAGE_SIZE);
	CU_ASSERT_EQUAL(c.inflated_pages, 0);
	CU_ASSERT_EQUAL(c.released_written, 0);
	/* a range with no whole page in it is counted and releases nothing */
	fill(b - 0x800, 0x22, 3 * GMEM_PAGE_SIZE);
	submit1(Q_REPORTING, b + 0x100, 0xe00, VIRTQ_DESC_F_WRITE);
	CU_ASSERT_EQUAL(used_idx(Q_REPORTING), 2);
	CU_ASSERT_TRUE(reads_as(b - 0x800, 3 * GMEM_PAGE_SIZE, 0x22));
	virtio_balloon_counters(&bx.b, &c);
	CU_ASSERT_EQUAL(c.reports, 3);
	CU_ASSERT_EQUAL(c.reported_bytes, 4 * GMEM_PAGE_SIZE + 0xe00);
	/* a device-readable descriptor: NEEDS_RESET, nothing released */
	fill(a, 0x11, 2 * GMEM_PAGE_SIZE);
	put_desc(Q_REPORTING, 0, PFN_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(Q_REPORTING, 1, a, 2 * GMEM_PAGE_SIZE, VIRTQ_DESC_F_WRITE, 0);
	publish(Q_REPORTING, 0);
	notify(Q_REPORTING);
	CU_ASSERT_TRUE(needs_reset());
	CU_ASSERT_TRUE(rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	CU_ASSERT_EQUAL(used_idx(Q_REPORTING), 2);
	CU_ASSERT_TRUE(reads_as(a, 2 * GMEM_PAGE_SIZE, 0x11));
	virtio_balloon_counters(&bx.b, &c);
	CU_ASSERT_EQUAL(c.reports, 3);
	/* a readable-only chain too */
	driver_init(F_STATS | F_REPORTING);
	submit1(Q_REPORTING, a, GMEM_PAGE_SIZE, 0);
	CU_ASSERT_TRUE(needs_reset());
	CU_ASSERT_TRUE(reads_as(a, 2 * GMEM_PAGE_SIZE, 0x11));
	bal_close();
}

/* The statistics queue: the device reads a buffer and keeps it until the
 * host asks (query), which hands it back; then it takes the next one. */
static void test_bal_stats(void)
{
	struct virtio_balloon_info info;
	struct virtio_balloon_counters c;
	uint32_t id, len;

	bal_open(F_STATS | F_REPORTING);
	/* nothing held: a query pushes nothing */
	virtio_balloon_query(&bx.b, &info);
	CU_ASSERT_EQUAL(info.stat_seen, 0);
	CU_ASSERT_EQUAL(used_idx(Q_STATS), 0);
	put_stat(STATS_GPA, 0, 4, 0x123456789ull);       /* free memory */
	put_stat(STATS_GPA, 1, 5, MEM);                  /* total memory */
	put_stat(STATS_GPA, 2, 200, 7);                  /* unknown: ignored */
	put_desc(Q_STATS, 1, STATS_GPA, 3 * VIRTIO_BALLOON_STAT_BYTES, 0, 0);
	publish(Q_STATS, 1);
	notify(Q_STATS);
	CU_ASSERT_FALSE(needs_reset());
	CU_ASSERT_EQUAL(used_idx(Q_STATS), 0);       /* held, not used */
	CU_ASSERT_TRUE(bx.b.stats_held);
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	virtio_balloon_counters(&bx.b, &c);
	CU_ASSERT_EQUAL(c.stats_updates, 1);
	/* the next buffer waits while one is held, however often notified */
	put_stat(STATS_GPA + 0x100, 0, 4, 1000);
	put_stat(STATS_GPA + 0x100, 1, 0, 3);            /* swap in */
	put_desc(Q_STATS, 2, STATS_GPA + 0x100, 2 * VIRTIO_BALLOON_STAT_BYTES, 0, 0);
	publish(Q_STATS, 2);
	notify(Q_STATS);
	notify(Q_STATS);
	CU_ASSERT_EQUAL(bx.b.transport.vq[Q_STATS].last_avail, 1);
	CU_ASSERT_EQUAL(used_idx(Q_STATS), 0);
	virtio_balloon_counters(&bx.b, &c);
	CU_ASSERT_EQUAL(c.stats_updates, 1);
	/* the query: the values, and the buffer back in the used ring */
	virtio_balloon_query(&bx.b, &info);
	CU_ASSERT_EQUAL(info.stat[4], 0x123456789ull);
	CU_ASSERT_EQUAL(info.stat[5], MEM);
	CU_ASSERT_EQUAL(info.stat_seen, (1u << 4) | (1u << 5));
	CU_ASSERT_EQUAL(info.c.stats_updates, 1);
	CU_ASSERT_FALSE(bx.b.stats_held);
	CU_ASSERT_EQUAL_FATAL(used_idx(Q_STATS), 1);
	used_elem(Q_STATS, 0, &id, &len);
	CU_ASSERT_EQUAL(id, 1);
	CU_ASSERT_EQUAL(len, 0);
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);
	CU_ASSERT_EQUAL(bx.irq_level, 1);
	wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	/* the driver notifies again (as Linux does on refilling): the new one */
	notify(Q_STATS);
	CU_ASSERT_TRUE(bx.b.stats_held);
	CU_ASSERT_EQUAL(used_idx(Q_STATS), 1);
	virtio_balloon_query(&bx.b, &info);
	CU_ASSERT_EQUAL(info.stat[4], 1000);
	CU_ASSERT_EQUAL(info.stat[0], 3);
	CU_ASSERT_EQUAL(info.stat[5], MEM);           /* kept from before */
	CU_ASSERT_EQUAL(info.stat_seen, (1u << 0) | (1u << 4) | (1u << 5));
	CU_ASSERT_EQUAL(info.c.stats_updates, 2);
	CU_ASSERT_EQUAL(used_idx(Q_STATS), 2);
	used_elem(Q_STATS, 1, &id, &len);
	CU_ASSERT_EQUAL(id, 2);
	/* a query with nothing held changes nothing */
	virtio_balloon_query(&bx.b, &info);
	CU_ASSERT_EQUAL(used_idx(Q_STATS), 2);
	/* a buffer that is not whole entries: NEEDS_RESET */
	submit1(Q_STATS, STATS_GPA, VIRTIO_BALLOON_STAT_BYTES + 1, 0);
	CU_ASSERT_TRUE(needs_reset());
	CU_ASSERT_FALSE(bx.b.stats_held);
	virtio_balloon_query(&bx.b, &info);
	CU_ASSERT_EQUAL(info.c.stats_updates, 2);
	CU_ASSERT_EQUAL(used_idx(Q_STATS), 2);
	/* nor one with a device-writable part */
	driver_init(F_STATS | F_REPORTING);
	submit1(Q_STATS, STATS_GPA, VIRTIO_BALLOON_STAT_BYTES, VIRTQ_DESC_F_WRITE);
	CU_ASSERT_TRUE(needs_reset());
	CU_ASSERT_FALSE(bx.b.stats_held);
	bal_close();
}

/* While its buffer is held, the driver takes the statistics queue down
 * (QueueReady 0) and rewrites its registers: the query must neither use
 * the rings it no longer has nor divide by their size, now 0. */
static void test_bal_stats_queue_down(void)
{
	struct virtio_balloon_info info;
	uint32_t id, len;

	bal_open(F_STATS | F_REPORTING);
	put_stat(STATS_GPA, 0, 4, 99);
	submit1(Q_STATS, STATS_GPA, VIRTIO_BALLOON_STAT_BYTES, 0);
	CU_ASSERT_TRUE_FATAL(bx.b.stats_held);
	wr(VIRTIO_MMIO_QUEUE_SEL, Q_STATS);
	wr(VIRTIO_MMIO_QUEUE_READY, 0);
	wr(VIRTIO_MMIO_QUEUE_NUM, 0);
	CU_ASSERT_EQUAL(bx.b.transport.vq[Q_STATS].num, 0);
	virtio_balloon_query(&bx.b, &info);
	CU_ASSERT_EQUAL(info.stat[4], 99);
	CU_ASSERT_EQUAL(used_idx(Q_STATS), 0);
	CU_ASSERT_FALSE(needs_reset());
	/* kept until the queue is back, then handed back there */
	CU_ASSERT_TRUE(bx.b.stats_held);
	setup_queue(Q_STATS);
	virtio_balloon_query(&bx.b, &info);
	CU_ASSERT_FALSE(bx.b.stats_held);
	CU_ASSERT_EQUAL_FATAL(used_idx(Q_STATS), 1);
	used_elem(Q_STATS, 0, &id, &len);
	CU_ASSERT_EQUAL(id, 0);
	CU_ASSERT_FALSE(needs_reset());
	bal_close();
}

static void test_bal_target(void)
{
	struct virtio_balloon_info info;
	struct fv_error err;
	uint32_t gen;

	bal_open(F_STATS | F_REPORTING);
	virtio_balloon_query(&bx.b, &info);
	CU_ASSERT_EQUAL(info.target_bytes, MEM);
	CU_ASSERT_EQUAL(info.actual_bytes, MEM);
	gen = rd(VIRTIO_MMIO_CONFIG_GENERATION);
	CU_ASSERT_EQUAL(virtio_balloon_set_target(&bx.b, MEM - (4ull << 20), &err), 0);
	CU_ASSERT_EQUAL(config32(0), 1024);
	CU_ASSERT_EQUAL(config32(4), 0);
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_CONFIG);
	CU_ASSERT_EQUAL(bx.irq_level, 1);
	CU_ASSERT_NOT_EQUAL(rd(VIRTIO_MMIO_CONFIG_GENERATION), gen);
	virtio_balloon_query(&bx.b, &info);
	CU_ASSERT_EQUAL(info.target_bytes, MEM - (4ull << 20));
	CU_ASSERT_EQUAL(info.actual_bytes, MEM);
	wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
	CU_ASSERT_EQUAL(bx.irq_level, 0);
	/* outside 1 MiB..RAM: refused, nothing changes */
	gen = rd(VIRTIO_MMIO_CONFIG_GENERATION);
	CU_ASSERT_EQUAL(virtio_balloon_set_target(&bx.b, MEM + GMEM_PAGE_SIZE, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	CU_ASSERT_EQUAL(virtio_balloon_set_target(&bx.b, (1ull << 20) - 1, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	CU_ASSERT_EQUAL(virtio_balloon_set_target(&bx.b, 0, &err), -1);
	CU_ASSERT_EQUAL(virtio_balloon_set_target(&bx.b, UINT64_MAX, &err), -1);
	CU_ASSERT_EQUAL(config32(0), 1024);
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_CONFIG_GENERATION), gen);
	/* the bounds themselves are fine */
	CU_ASSERT_EQUAL(virtio_balloon_set_target(&bx.b, 1ull << 20, &err), 0);
	CU_ASSERT_EQUAL(config32(0), MEM_PAGES - 256);
	CU_ASSERT_EQUAL(virtio_balloon_set_target(&bx.b, MEM, &err), 0);
	CU_ASSERT_EQUAL(config32(0), 0);
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_CONFIG_GENERATION), gen + 2);
	/* a target that is not whole pages: the balloon rounds down */
	CU_ASSERT_EQUAL(virtio_balloon_set_target(&bx.b, MEM - GMEM_PAGE_SIZE - 1, &err), 0);
	CU_ASSERT_EQUAL(config32(0), 1);
	bal_close();
}

/* `actual` is the driver's (config offset 4); the host reads it back. */
static void test_bal_actual(void)
{
	struct virtio_balloon_info info;
	struct fv_error err;
	uint8_t d[2] = { 0x34, 0x12 };

	bal_open(F_STATS | F_REPORTING);
	CU_ASSERT_EQUAL(virtio_balloon_set_target(&bx.b, MEM - (3ull << 20), &err), 0);
	CU_ASSERT_EQUAL(config32(0), 768);
	/* the driver got 512 pages so far */
	wr(VIRTIO_MMIO_CONFIG + 4, 512);
	CU_ASSERT_EQUAL(config32(4), 512);
	virtio_balloon_query(&bx.b, &info);
	CU_ASSERT_EQUAL(info.actual_bytes, MEM - (2ull << 20));
	CU_ASSERT_EQUAL(info.target_bytes, MEM - (3ull << 20));
	/* num_pages is the host's: a driver write leaves it alone */
	wr(VIRTIO_MMIO_CONFIG, 7);
	CU_ASSERT_EQUAL(config32(0), 768);
	CU_ASSERT_EQUAL(config32(4), 512);
	/* narrower writes land in their bytes */
	mmio_dispatch(&bx.bus, BASE + VIRTIO_MMIO_CONFIG + 5, true, d, 2);
	CU_ASSERT_EQUAL(config32(4), 0x123400);
	/* a count beyond RAM reads as all of it in the balloon */
	virtio_balloon_query(&bx.b, &info);
	CU_ASSERT_EQUAL(info.actual_bytes, 0);
	wr(VIRTIO_MMIO_CONFIG + 4, 0);
	virtio_balloon_query(&bx.b, &info);
	CU_ASSERT_EQUAL(info.actual_bytes, MEM);
	bal_close();
}

/* Queue roles follow the negotiated features: statistics at 2 only with
 * STATS_VQ; reporting next, only with PAGE_REPORTING. */
static void test_bal_roles(void)
{
	struct virtio_balloon_counters c;
	struct virtio_balloon_info info;

	/* no STATS_VQ: queue 2 reports free pages, queue 3 is nobody's */
	bal_open(F_REPORTING);
	fill(PAGES_GPA, 0x66, 2 * GMEM_PAGE_SIZE);
	submit1(2, PAGES_GPA, GMEM_PAGE_SIZE, VIRTQ_DESC_F_WRITE);
	CU_ASSERT_FALSE(needs_reset());
	CU_ASSERT_EQUAL(used_idx(2), 1);
	CU_ASSERT_FALSE(bx.b.stats_held);
	CU_ASSERT_TRUE(reads_as(PAGES_GPA, GMEM_PAGE_SIZE, 0));
	submit1(3, PAGES_GPA + GMEM_PAGE_SIZE, GMEM_PAGE_SIZE, VIRTQ_DESC_F_WRITE);
	CU_ASSERT_FALSE(needs_reset());
	CU_ASSERT_EQUAL(bx.b.transport.vq[3].last_avail, 0);
	CU_ASSERT_EQUAL(used_idx(3), 0);
	CU_ASSERT_TRUE(reads_as(PAGES_GPA + GMEM_PAGE_SIZE, GMEM_PAGE_SIZE, 0x66));
	virtio_balloon_counters(&bx.b, &c);
	CU_ASSERT_EQUAL(c.reports, 1);
	CU_ASSERT_EQUAL(c.reported_bytes, GMEM_PAGE_SIZE);
	CU_ASSERT_EQUAL(c.stats_updates, 0);
	/* a statistics buffer on queue 2 is a readable reporting chain */
	put_stat(STATS_GPA, 0, 4, 1);
	submit1(2, STATS_GPA, VIRTIO_BALLOON_STAT_BYTES, 0);
	CU_ASSERT_TRUE(needs_reset());
	CU_ASSERT_FALSE(bx.b.stats_held);
	bal_close();

	/* no PAGE_REPORTING: queue 2 is statistics, queue 3 does nothing */
	bal_open(F_STATS);
	fill(PAGES_GPA, 0x66, GMEM_PAGE_SIZE);
	submit1(3, PAGES_GPA, GMEM_PAGE_SIZE, VIRTQ_DESC_F_WRITE);
	CU_ASSERT_FALSE(needs_reset());
	CU_ASSERT_EQUAL(bx.b.transport.vq[3].last_avail, 0);
	CU_ASSERT_EQUAL(used_idx(3), 0);
	CU_ASSERT_TRUE(reads_as(PAGES_GPA, GMEM_PAGE_SIZE, 0x66));
	put_stat(STATS_GPA, 0, 4, 1);
	submit1(2, STATS_GPA, VIRTIO_BALLOON_STAT_BYTES, 0);
	CU_ASSERT_TRUE(bx.b.stats_held);
	virtio_balloon_query(&bx.b, &info);
	CU_ASSERT_EQUAL(info.stat[4], 1);
	CU_ASSERT_EQUAL(used_idx(2), 1);
	virtio_balloon_counters(&bx.b, &c);
	CU_ASSERT_EQUAL(c.reports, 0);
	bal_close();

	/* neither: only inflate and deflate */
	bal_open(0);
	fill(PAGES_GPA, 0x66, GMEM_PAGE_SIZE);
	submit1(2, PAGES_GPA, GMEM_PAGE_SIZE, VIRTQ_DESC_F_WRITE);
	submit1(3, PAGES_GPA, GMEM_PAGE_SIZE, VIRTQ_DESC_F_WRITE);
	CU_ASSERT_FALSE(needs_reset());
	CU_ASSERT_EQUAL(bx.b.transport.vq[2].last_avail, 0);
	CU_ASSERT_EQUAL(bx.b.transport.vq[3].last_avail, 0);
	CU_ASSERT_TRUE(reads_as(PAGES_GPA, GMEM_PAGE_SIZE, 0x66));
	virtio_balloon_counters(&bx.b, &c);
	CU_ASSERT_EQUAL(c.reports + c.stats_updates, 0);
	bal_close();
}

/* Buffers made available before DRIVER_OK are served at DRIVER_OK. */
static void test_bal_before_driver_ok(void)
{
	const uint32_t pfn[] = { 0x100 };
	struct virtio_balloon_counters c;

	bal_new();
	fill(PAGES_GPA, 0x5a, GMEM_PAGE_SIZE);
	negotiate(F_V1 | F_STATS | F_REPORTING);
	for (unsigned q = 0; q < 4; q++)
		setup_queue(q);
	put_pfns(pfn, 1);
	submit1(Q_INFLATE, PFN_GPA, 4, 0);
	put_stat(STATS_GPA, 0, 4, 5);
	put_desc(Q_STATS, 0, STATS_GPA, VIRTIO_BALLOON_STAT_BYTES, 0, 0);
	publish(Q_STATS, 0);
	CU_ASSERT_EQUAL(used_idx(Q_INFLATE), 0);
	CU_ASSERT_TRUE(reads_as(PAGES_GPA, GMEM_PAGE_SIZE, 0x5a));
	wr(VIRTIO_MMIO_STATUS, status() | VIRTIO_STATUS_DRIVER_OK);
	CU_ASSERT_EQUAL(used_idx(Q_INFLATE), 1);
	CU_ASSERT_TRUE(reads_as(PAGES_GPA, GMEM_PAGE_SIZE, 0));
	CU_ASSERT_TRUE(bx.b.stats_held);
	virtio_balloon_counters(&bx.b, &c);
	CU_ASSERT_EQUAL(c.inflated_pages, 1);
	CU_ASSERT_EQUAL(c.stats_updates, 1);
	bal_close();
}

/* A device reset forgets the held statistics buffer and `actual`; the
 * host's target stays. */
static void test_bal_reset(void)
{
	struct virtio_balloon_info info;
	struct fv_error err;

	bal_open(F_STATS | F_REPORTING);
	CU_ASSERT_EQUAL(virtio_balloon_set_target(&bx.b, MEM - (1ull << 20), &err), 0);
	wr(VIRTIO_MMIO_CONFIG + 4, 100);
	put_stat(STATS_GPA, 0, 4, 42);
	submit1(Q_STATS, STATS_GPA, VIRTIO_BALLOON_STAT_BYTES, 0);
	CU_ASSERT_TRUE_FATAL(bx.b.stats_held);
	wr(VIRTIO_MMIO_STATUS, 0);
	CU_ASSERT_EQUAL(status(), 0);
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	CU_ASSERT_EQUAL(bx.irq_level, 0);
	CU_ASSERT_FALSE(bx.b.stats_held);
	CU_ASSERT_EQUAL(config32(4), 0);
	CU_ASSERT_EQUAL(config32(0), 256);
	virtio_balloon_query(&bx.b, &info);
	CU_ASSERT_EQUAL(info.actual_bytes, MEM);
	CU_ASSERT_EQUAL(info.target_bytes, MEM - (1ull << 20));
	CU_ASSERT_EQUAL(info.stat[4], 42);          /* the last figures stay */
	CU_ASSERT_EQUAL(used_idx(Q_STATS), 0);      /* nothing pushed */
	/* up again: a fresh buffer is taken at once */
	driver_init(F_STATS | F_REPORTING);
	put_stat(STATS_GPA, 0, 4, 43);
	submit1(Q_STATS, STATS_GPA, VIRTIO_BALLOON_STAT_BYTES, 0);
	CU_ASSERT_TRUE(bx.b.stats_held);
	virtio_balloon_query(&bx.b, &info);
	CU_ASSERT_EQUAL(info.stat[4], 43);
	CU_ASSERT_EQUAL(used_idx(Q_STATS), 1);
	/* a reset while NEEDS_RESET clears that too */
	submit1(Q_INFLATE, PFN_GPA, 3, 0);
	CU_ASSERT_TRUE(needs_reset());
	wr(VIRTIO_MMIO_STATUS, 0);
	CU_ASSERT_EQUAL(status(), 0);
	bal_close();
}

void unit_add_virtio_balloon_suite(void)
{
	CU_pSuite s = CU_add_suite("virtio-balloon", setup, teardown);

	CU_add_test(s, "identification and config", test_bal_ids);
	CU_add_test(s, "inflate", test_bal_inflate);
	CU_add_test(s, "inflate counts pages that held data",
		    test_bal_inflate_counts_written);
	CU_add_test(s, "bad inflate buffers", test_bal_inflate_bad_buffers);
	CU_add_test(s, "inflate and report above the 32-bit hole", test_bal_inflate_high);
	CU_add_test(s, "deflate", test_bal_deflate);
	CU_add_test(s, "free page reporting", test_bal_report);
	CU_add_test(s, "statistics", test_bal_stats);
	CU_add_test(s, "statistics queue taken down while held",
		    test_bal_stats_queue_down);
	CU_add_test(s, "target", test_bal_target);
	CU_add_test(s, "actual", test_bal_actual);
	CU_add_test(s, "queue roles", test_bal_roles);
	CU_add_test(s, "buffers before DRIVER_OK", test_bal_before_driver_ok);
	CU_add_test(s, "reset", test_bal_reset);
}
