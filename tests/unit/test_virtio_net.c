/* test_virtio_net.c - virtio-net without KVM or a tap: the test plays the
 * driver (rings and buffers in a guest memory made without KVM, 4-byte
 * register accesses through the transport) and the tap (the other end of
 * a datagram socket pair, which the device read()s and write()s one frame
 * at a time as it would a tap).  Reception is stepped by hand
 * (virtio_net_rx_step), and once through the device's own thread. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <CUnit/CUnit.h>
#include "devices/virtio_net.h"
#include "tests/unit/unit.h"
#include "tests/unit/virtio_rig.h"

#define QSIZE 8u
#define RING_GPA(q) (0x100000ull + 0x10000ull * (q))   /* desc, +1 avail, +2 used pages */
#define BUF_GPA 0x200000ull
#define BIG_GPA 0x400000ull
#define HDR VIRTIO_NET_HDR_LEN
#define BASE 0xd0000000ull

static struct virtio_net net;
static int peer;                /* the tap's other end */
static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
static uint16_t avail_idx[2], used_seen[2];

/* --- memory, registers, rings --- */

static uint32_t rd(uint64_t off)
{
	uint32_t v;

	virtio_mmio_access(&net.transport, off, false, (uint8_t *)&v, 4);
	return v;
}

static void wr(uint64_t off, uint32_t v)
{
	virtio_mmio_access(&net.transport, off, true, (uint8_t *)&v, 4);
}

static void wr64(uint64_t off, uint64_t v)
{
	wr(off, (uint32_t)v);
	wr(off + 4, (uint32_t)(v >> 32));
}

struct seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
	bool loop;              /* its next is the chain's first descriptor */
};

#define OUT(gpa, len) { (gpa), (len), false, false }
#define IN(gpa, len) { (gpa), (len), true, false }
#define OUT_LOOP(gpa, len) { (gpa), (len), false, true }
#define IN_LOOP(gpa, len) { (gpa), (len), true, true }

/* Chain segs[0..n) at descriptors first.., made available on queue q
 * (no notify). */
static void publish(unsigned q, unsigned first, const struct seg *s, unsigned n)
{
	uint64_t ring = RING_GPA(q);
	uint16_t idx;

	for (unsigned i = 0; i < n; i++) {
		uint16_t next = s[i].loop ? (uint16_t)first : (uint16_t)(first + i + 1);
		uint16_t flags = (uint16_t)((s[i].write ? VIRTQ_DESC_F_WRITE : 0) |
					    (i + 1 < n || s[i].loop ? VIRTQ_DESC_F_NEXT : 0));
		uint8_t d[16];

		memcpy(d, &s[i].gpa, 8);
		memcpy(d + 8, &s[i].len, 4);
		memcpy(d + 12, &flags, 2);
		memcpy(d + 14, &next, 2);
		put(ring + 16ull * (first + i), d, 16);
	}
	idx = (uint16_t)first;
	put(ring + 0x1000 + 4 + 2 * (avail_idx[q] % QSIZE), &idx, 2);
	avail_idx[q]++;
	put(ring + 0x1000 + 2, &avail_idx[q], 2);
}

/* Has queue q used a chain since the last call?  Its head and length. */
static bool used(unsigned q, uint32_t *head, uint32_t *len)
{
	uint64_t ring = RING_GPA(q) + 0x2000;
	uint32_t e[2];
	uint16_t idx;

	get(ring + 2, &idx, 2);
	if (idx == used_seen[q])
		return false;
	get(ring + 4 + 8ull * (used_seen[q] % QSIZE), e, sizeof(e));
	used_seen[q]++;
	*head = e[0];
	*len = e[1];
	return true;
}

/* 3.1.1 with every feature offered, both queues, DRIVER_OK. */
static void driver_init(void)
{
	struct fv_error err;

	CU_ASSERT_EQUAL_FATAL(gmem_fill(&gm, RING_GPA(0), 0, 0x20000, &err), 0);
	avail_idx[0] = avail_idx[1] = used_seen[0] = used_seen[1] = 0;
	wr(VIRTIO_MMIO_STATUS, 0);
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (1u << VIRTIO_NET_F_MAC) | (1u << VIRTIO_NET_F_STATUS));
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 1);       /* VERSION_1 */
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
	   VIRTIO_STATUS_FEATURES_OK);
	for (unsigned q = 0; q < 2; q++) {
		wr(VIRTIO_MMIO_QUEUE_SEL, q);
		wr(VIRTIO_MMIO_QUEUE_NUM, QSIZE);
		wr64(VIRTIO_MMIO_QUEUE_DESC_LOW, RING_GPA(q));
		wr64(VIRTIO_MMIO_QUEUE_DRIVER_LOW, RING_GPA(q) + 0x1000);
		wr64(VIRTIO_MMIO_QUEUE_DEVICE_LOW, RING_GPA(q) + 0x2000);
		wr(VIRTIO_MMIO_QUEUE_READY, 1);
	}
	wr(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
	   VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK,
			VIRTIO_STATUS_DRIVER_OK);
}

/* A device on one end of a datagram socket pair, driver up. */
static void net_open(void)
{
	struct fv_error err;
	int sv[2];

	CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
	peer = sv[1];
	CU_ASSERT_EQUAL_FATAL(virtio_net_init_fd(&net, sv[0], mac, &gm, BASE, &err), 0);
	driver_init();
}

static void net_close(void)
{
	virtio_net_destroy(&net);
	close(peer);
}

static bool needs_reset(void)
{
	return rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET;
}

/* A frame of `len` bytes (from 14) after a header: dst, src, type, bytes. */
static size_t make_frame(uint8_t *f, const uint8_t hdr[HDR], size_t len, unsigned seed)
{
	memcpy(f, hdr, HDR);
	memset(f + HDR, 0xff, 6);
	memcpy(f + HDR + 6, mac, 6);
	f[HDR + 12] = 0x88;
	f[HDR + 13] = 0xb5;
	for (size_t k = 14; k < len; k++)
		f[HDR + k] = (uint8_t)(k * 13 + seed);
	return HDR + len;
}

/* What the "tap" got: its length, or -1 if nothing. */
static ssize_t peer_recv(uint8_t *buf, size_t len)
{
	return recv(peer, buf, len, MSG_DONTWAIT);
}

/* --- the helpers of the names --- */

static void test_names(void)
{
	struct fv_error err = { 0 };
	uint8_t m[6], a[6], b[6];
	char s[32];

	CU_ASSERT_TRUE(fv_ifname_ok("fvtap0"));
	CU_ASSERT_TRUE(fv_ifname_ok("a.b_c-d"));
	CU_ASSERT_TRUE(fv_ifname_ok("123456789012345"));
	CU_ASSERT_FALSE(fv_ifname_ok("1234567890123456"));
	CU_ASSERT_FALSE(fv_ifname_ok(""));
	CU_ASSERT_FALSE(fv_ifname_ok("."));
	CU_ASSERT_FALSE(fv_ifname_ok(".."));
	CU_ASSERT_FALSE(fv_ifname_ok("a/b"));
	CU_ASSERT_FALSE(fv_ifname_ok("a b"));
	CU_ASSERT_FALSE(fv_ifname_ok("eth0:1"));
	CU_ASSERT_EQUAL(fv_mac_parse("52:54:00:Ab:cD:eF", m, &err), 0);
	CU_ASSERT_EQUAL(memcmp(m, "\x52\x54\x00\xab\xcd\xef", 6), 0);
	fv_mac_format(m, s, sizeof(s));
	CU_ASSERT_STRING_EQUAL(s, "52:54:00:ab:cd:ef");
	CU_ASSERT_EQUAL(fv_mac_parse("01:00:5e:00:00:01", m, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "multicast"));
	CU_ASSERT_EQUAL(fv_mac_parse("ff:ff:ff:ff:ff:ff", m, &err), -1);
	CU_ASSERT_EQUAL(fv_mac_parse("00:00:00:00:00:00", m, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "zeros"));
	CU_ASSERT_EQUAL(fv_mac_parse("52:54:00:12:34", m, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "six hex pairs"));
	CU_ASSERT_EQUAL(fv_mac_parse("52:54:00:12:34:5g", m, &err), -1);
	CU_ASSERT_EQUAL(fv_mac_parse("52-54-00-12-34-56", m, &err), -1);
	CU_ASSERT_EQUAL(fv_mac_parse("52:54:00:12:34:567", m, &err), -1);
	/* the default: 52:54:00, a unicast local address, from the name */
	fv_mac_default("web1", a);
	fv_mac_default("web1", b);
	CU_ASSERT_EQUAL(memcmp(a, b, 6), 0);
	CU_ASSERT_EQUAL(memcmp(a, "\x52\x54\x00", 3), 0);
	CU_ASSERT_EQUAL(a[0] & 3, 2);
	fv_mac_default("web2", b);
	CU_ASSERT_NOT_EQUAL(memcmp(a, b, 6), 0);
	/* a tap name that is no interface name is refused before any open */
	CU_ASSERT_EQUAL(virtio_net_tap_open("a/b", &(bool){ false }, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "interface name"));
}

/* --- the device --- */

static void test_config(void)
{
	net_open();
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_NET);
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_DEVICE_FEATURES),
			(1u << VIRTIO_NET_F_MAC) | (1u << VIRTIO_NET_F_STATUS));
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_DEVICE_FEATURES), 1);
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_CONFIG), 0x12005452u);
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_CONFIG + 4), 0x00015634u);  /* link up */
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_CONFIG + 8), 0);
	/* read-only */
	wr(VIRTIO_MMIO_CONFIG, 0);
	CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_CONFIG), 0x12005452u);
	for (unsigned q = 0; q < 3; q++) {
		wr(VIRTIO_MMIO_QUEUE_SEL, q);
		CU_ASSERT_EQUAL(rd(VIRTIO_MMIO_QUEUE_NUM_MAX),
				q < 2 ? VIRTIO_NET_QUEUE_SIZE : 0);
	}
	net_close();
}

static void test_tx(void)
{
	static uint8_t f[2048], got[2048];
	const uint8_t zero[HDR] = { 0 };
	size_t n = make_frame(f, zero, 60, 1);
	uint32_t head, len;

	net_open();
	/* header and frame apart, then one descriptor */
	put(BUF_GPA, f, HDR);
	put(BUF_GPA + 0x100, f + HDR, n - HDR);
	put(BUF_GPA + 0x1000, f, n);
	publish(1, 0, (struct seg[]){ OUT(BUF_GPA, HDR), OUT(BUF_GPA + 0x100, (uint32_t)(n - HDR)) }, 2);
	publish(1, 2, (struct seg[]){ OUT(BUF_GPA + 0x1000, (uint32_t)n) }, 1);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	for (unsigned i = 0; i < 2; i++) {
		CU_ASSERT_TRUE_FATAL(used(1, &head, &len));
		CU_ASSERT_EQUAL(head, i ? 2u : 0u);
		CU_ASSERT_EQUAL(len, 0);
		CU_ASSERT_EQUAL(peer_recv(got, sizeof(got)), (ssize_t)n);
		CU_ASSERT_EQUAL(memcmp(got, f, n), 0);
	}
	CU_ASSERT_EQUAL(net.stats.tx_frames, 2);
	CU_ASSERT_EQUAL(net.stats.tx_bytes, 120);
	CU_ASSERT_EQUAL(net.stats.tx_drops, 0);
	CU_ASSERT_FALSE(needs_reset());
	net_close();
}

/* Dropped, counted, the chain used, the device carries on: a frame
 * shorter than an Ethernet header, one longer than 65550 bytes, a header
 * asking for a checksum or segmentation offload, a frame the tap cannot
 * take. */
static void test_tx_drops(void)
{
	static uint8_t f[2048], got[2048];
	uint8_t h[HDR] = { 0 };
	uint32_t head, len;
	unsigned sent = 0;

	net_open();
	make_frame(f, h, 13, 2);
	put(BUF_GPA, f, HDR + 13);
	publish(1, 0, (struct seg[]){ OUT(BUF_GPA, HDR + 13) }, 1);
	publish(1, 1, (struct seg[]){ OUT(BIG_GPA, HDR + VIRTIO_NET_MAX_FRAME + 1) }, 1);
	h[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	make_frame(f, h, 60, 3);
	put(BUF_GPA + 0x1000, f, HDR + 60);
	publish(1, 2, (struct seg[]){ OUT(BUF_GPA + 0x1000, HDR + 60) }, 1);
	h[0] = 0;
	h[1] = 1;               /* VIRTIO_NET_HDR_GSO_TCPV4 */
	make_frame(f, h, 60, 4);
	put(BUF_GPA + 0x2000, f, HDR + 60);
	publish(1, 3, (struct seg[]){ OUT(BUF_GPA + 0x2000, HDR + 60) }, 1);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	for (unsigned i = 0; i < 4; i++)
		CU_ASSERT_TRUE(used(1, &head, &len));
	CU_ASSERT_EQUAL(peer_recv(got, sizeof(got)), -1);
	CU_ASSERT_EQUAL(net.stats.tx_drops, 4);
	CU_ASSERT_EQUAL(net.stats.tx_frames, 0);
	CU_ASSERT_FALSE(needs_reset());
	/* The "tap" full (its reader asleep): writes fail, frames dropped. */
	h[1] = 0;
	make_frame(f, h, 1000, 5);
	put(BUF_GPA, f, HDR + 1000);
	while (net.stats.tx_drops == 4 && sent < 100000) {
		publish(1, 0, (struct seg[]){ OUT(BUF_GPA, HDR + 1000) }, 1);
		wr(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
		CU_ASSERT_TRUE_FATAL(used(1, &head, &len));
		sent++;
	}
	CU_ASSERT_EQUAL(net.stats.tx_drops, 5);
	CU_ASSERT_EQUAL(net.stats.tx_frames, sent - 1);
	CU_ASSERT_FALSE(needs_reset());
	net_close();
}

/* A chain too short for its header, or a loop: NEEDS_RESET, after the
 * frames before it were sent and used; a reset brings the device back. */
static void test_tx_malformed(void)
{
	static uint8_t f[2048], got[2048];
	const uint8_t zero[HDR] = { 0 };
	size_t n = make_frame(f, zero, 60, 6);
	uint32_t head, len;

	net_open();
	put(BUF_GPA, f, n);
	publish(1, 0, (struct seg[]){ OUT(BUF_GPA, (uint32_t)n) }, 1);
	publish(1, 1, (struct seg[]){ OUT(BUF_GPA, HDR - 4) }, 1);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	CU_ASSERT_TRUE(used(1, &head, &len));
	CU_ASSERT_FALSE(used(1, &head, &len));
	CU_ASSERT_EQUAL(peer_recv(got, sizeof(got)), (ssize_t)n);
	CU_ASSERT_TRUE(needs_reset());
	CU_ASSERT_TRUE(rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_CONFIG);
	/* served no more until the reset */
	publish(1, 2, (struct seg[]){ OUT(BUF_GPA, (uint32_t)n) }, 1);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	CU_ASSERT_FALSE(used(1, &head, &len));
	driver_init();
	CU_ASSERT_FALSE(needs_reset());
	publish(1, 0, (struct seg[]){ OUT(BUF_GPA, HDR),
				      OUT_LOOP(BUF_GPA + HDR, (uint32_t)(n - HDR)) }, 2);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	CU_ASSERT_TRUE(needs_reset());
	CU_ASSERT_EQUAL(peer_recv(got, sizeof(got)), -1);
	driver_init();
	publish(1, 0, (struct seg[]){ OUT(BUF_GPA, (uint32_t)n) }, 1);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	CU_ASSERT_TRUE(used(1, &head, &len));
	CU_ASSERT_EQUAL(peer_recv(got, sizeof(got)), (ssize_t)n);
	CU_ASSERT_EQUAL(net.stats.tx_frames, 2);
	net_close();
}

/* Is a frame waiting in the device's descriptor (not read)? */
static bool frame_waits(void)
{
	uint8_t b;

	return recv(net.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 1;
}

static void test_rx(void)
{
	static uint8_t f[2048], got[2048];
	uint8_t h[HDR] = { 0 };
	size_t n;
	uint32_t head, len;
	uint16_t nb;

	net_open();
	/* No buffer: the frame is not read, it waits. */
	h[10] = 0x77;           /* num_buffers: the device's to set */
	n = make_frame(f, h, 100, 7);
	CU_ASSERT_EQUAL(send(peer, f, n, 0), (ssize_t)n);
	CU_ASSERT_EQUAL(virtio_net_rx_step(&net), 0);
	CU_ASSERT_TRUE(frame_waits());
	/* A buffer of two descriptors: the header lands in the first. */
	publish(0, 0, (struct seg[]){ IN(BUF_GPA, HDR), IN(BUF_GPA + 0x100, 1514) }, 2);
	CU_ASSERT_EQUAL(virtio_net_rx_step(&net), 1);
	CU_ASSERT_TRUE_FATAL(used(0, &head, &len));
	CU_ASSERT_EQUAL(head, 0);
	CU_ASSERT_EQUAL(len, n);
	get(BUF_GPA, got, HDR);
	get(BUF_GPA + 0x100, got + HDR, n - HDR);
	memcpy(&nb, got + 10, 2);
	CU_ASSERT_EQUAL(nb, 1);
	CU_ASSERT_EQUAL(memcmp(got, h, 10), 0);
	CU_ASSERT_EQUAL(memcmp(got + HDR, f + HDR, n - HDR), 0);
	CU_ASSERT_FALSE(frame_waits());
	CU_ASSERT_EQUAL(virtio_net_rx_step(&net), 0);
	/* DATA_VALID (a hint not negotiated) is cleared. */
	h[0] = VIRTIO_NET_HDR_F_DATA_VALID;
	n = make_frame(f, h, 60, 8);
	CU_ASSERT_EQUAL(send(peer, f, n, 0), (ssize_t)n);
	publish(0, 2, (struct seg[]){ IN(BUF_GPA + 0x1000, 2048) }, 1);
	CU_ASSERT_EQUAL(virtio_net_rx_step(&net), 1);
	CU_ASSERT_TRUE(used(0, &head, &len));
	get(BUF_GPA + 0x1000, got, n);
	CU_ASSERT_EQUAL(got[0], 0);
	CU_ASSERT_EQUAL(memcmp(got + HDR, f + HDR, n - HDR), 0);
	CU_ASSERT_EQUAL(net.stats.rx_frames, 2);
	CU_ASSERT_EQUAL(net.stats.rx_bytes, 160);
	CU_ASSERT_EQUAL(net.stats.rx_drops, 0);
	net_close();
}

/* Dropped and counted, the buffer kept for the next frame: one too long
 * for it, one with an offload the tap should not have made, one shorter
 * than a header and an Ethernet header. */
static void test_rx_drops(void)
{
	static uint8_t f[4096], got[2048];
	uint8_t h[HDR] = { 0 };
	uint32_t head, len;
	size_t n;

	net_open();
	publish(0, 0, (struct seg[]){ IN(BUF_GPA, 200) }, 1);
	n = make_frame(f, h, 300, 9);
	CU_ASSERT_EQUAL(send(peer, f, n, 0), (ssize_t)n);
	h[1] = 1;
	n = make_frame(f, h, 60, 10);
	CU_ASSERT_EQUAL(send(peer, f, n, 0), (ssize_t)n);
	h[1] = 0;
	CU_ASSERT_EQUAL(send(peer, f, HDR + 10, 0), HDR + 10);
	n = make_frame(f, h, 150, 11);
	CU_ASSERT_EQUAL(send(peer, f, n, 0), (ssize_t)n);
	for (unsigned i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(virtio_net_rx_step(&net), 1);
		CU_ASSERT_FALSE(used(0, &head, &len));
	}
	CU_ASSERT_EQUAL(net.stats.rx_drops, 3);
	CU_ASSERT_EQUAL(virtio_net_rx_step(&net), 1);
	CU_ASSERT_TRUE(used(0, &head, &len));
	CU_ASSERT_EQUAL(len, n);
	get(BUF_GPA, got, n);
	CU_ASSERT_EQUAL(memcmp(got + HDR, f + HDR, n - HDR), 0);
	CU_ASSERT_EQUAL(net.stats.rx_frames, 1);
	CU_ASSERT_FALSE(needs_reset());
	net_close();
}

/* A receive buffer the device may read is the driver's error: NEEDS_RESET.
 * The frame read for it waits, and goes into the first buffer after the
 * reset.  Before DRIVER_OK nothing is read. */
static void test_rx_malformed(void)
{
	static uint8_t f[2048], got[2048];
	const uint8_t zero[HDR] = { 0 };
	size_t n = make_frame(f, zero, 80, 12);
	uint32_t head, len;

	net_open();
	CU_ASSERT_EQUAL(send(peer, f, n, 0), (ssize_t)n);
	publish(0, 0, (struct seg[]){ OUT(BUF_GPA, 2048) }, 1);
	CU_ASSERT_EQUAL(virtio_net_rx_step(&net), 0);
	CU_ASSERT_TRUE(needs_reset());
	CU_ASSERT_FALSE(frame_waits());
	CU_ASSERT_TRUE(net.rx_pending);
	CU_ASSERT_EQUAL(virtio_net_rx_step(&net), 0);
	/* reset; a buffer before DRIVER_OK is not served */
	wr(VIRTIO_MMIO_STATUS, 0);
	CU_ASSERT_EQUAL(virtio_net_rx_step(&net), 0);
	driver_init();
	publish(0, 0, (struct seg[]){ IN(BUF_GPA, 2048) }, 1);
	CU_ASSERT_EQUAL(virtio_net_rx_step(&net), 1);
	CU_ASSERT_TRUE(used(0, &head, &len));
	CU_ASSERT_EQUAL(len, n);
	get(BUF_GPA, got, n);
	CU_ASSERT_EQUAL(memcmp(got + HDR, f + HDR, n - HDR), 0);
	/* a loop in the receive queue */
	publish(0, 1, (struct seg[]){ IN_LOOP(BUF_GPA, 2048) }, 1);
	CU_ASSERT_EQUAL(send(peer, f, n, 0), (ssize_t)n);
	CU_ASSERT_EQUAL(virtio_net_rx_step(&net), 0);
	CU_ASSERT_TRUE(needs_reset());
	net_close();
}

/* The device's thread: a buffer posted with a notify wakes it, it reads
 * the frame and uses the buffer; destroy stops it. */
static void test_rx_thread(void)
{
	static uint8_t f[2048], got[2048];
	const uint8_t zero[HDR] = { 0 };
	size_t n = make_frame(f, zero, 500, 13);
	struct fv_error err;
	uint32_t head, len;
	bool done = false;

	net_open();
	CU_ASSERT_EQUAL_FATAL(virtio_net_start(&net, &err), 0);
	CU_ASSERT_EQUAL(send(peer, f, n, 0), (ssize_t)n);
	publish(0, 0, (struct seg[]){ IN(BUF_GPA, 2048) }, 1);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	/* Bounded: the thread has a frame and a buffer; it is not timed. */
	for (unsigned i = 0; i < 20000 && !done; i++) {
		virtio_mmio_lock(&net.transport);
		done = used(0, &head, &len);
		virtio_mmio_unlock(&net.transport);
		if (!done)
			poll(NULL, 0, 1);
	}
	CU_ASSERT_TRUE_FATAL(done);
	CU_ASSERT_EQUAL(len, n);
	get(BUF_GPA, got, n);
	CU_ASSERT_EQUAL(memcmp(got + HDR, f + HDR, n - HDR), 0);
	net_close();
	CU_ASSERT_FALSE(net.thread_started);
	CU_ASSERT_EQUAL(net.fd, -1);
}

void unit_add_virtio_net_suite(void)
{
	CU_pSuite s = CU_add_suite("virtio-net", setup, teardown);

	CU_add_test(s, "names, MACs, default MAC", test_names);
	CU_add_test(s, "features, config space, queues", test_config);
	CU_add_test(s, "transmit", test_tx);
	CU_add_test(s, "transmit drops", test_tx_drops);
	CU_add_test(s, "malformed transmit chains", test_tx_malformed);
	CU_add_test(s, "receive", test_rx);
	CU_add_test(s, "receive drops", test_rx_drops);
	CU_add_test(s, "malformed receive buffers", test_rx_malformed);
	CU_add_test(s, "the receive thread", test_rx_thread);
}
