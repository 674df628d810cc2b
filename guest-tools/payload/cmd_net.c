/*
 * cmd_net.c - the payload's virtio-net driver (virtio 1.x 5.1): NET_SEND,
 * one frame on the transmit queue (or a malformed chain on purpose), and
 * NET_RECV, one frame from the receive queue.
 *
 * No feature but MAC and STATUS is taken, so every frame carries a
 * 12-byte struct virtio_net_hdr_v1: zero on transmit; on receive, zero
 * but num_buffers (1).  Receive buffers: VQ_SIZE of RX_BUF bytes each
 * (room for the header and a 1514-byte frame), posted once per bring-up
 * at the first NET command, each posted again once read.  They live in
 * the scratch pages of the window's queues 2 and 3, which a device of two
 * queues leaves unused (the shared data buffer is virtio-blk's).
 */
#include "virtio_drv.h"

#define NET_HDR 12u
#define ETH_HLEN 14u
#define NET_MAX_PAYLOAD 1500u
#define RX_BUF 2048u
#define NET_ID 1u
#define HDR_F_NEEDS_CSUM 1u

/* Receive buffers were posted for this bring-up of the window. */
static uint32_t rx_posted[FV_VIRTIO_MAX_DEVICES];

_Static_assert(VQ_SIZE * RX_BUF <= 8 * FV_PAGE_SIZE,
	       "the receive buffers fit in queues 2 and 3's pages");
_Static_assert(NET_HDR + ETH_HLEN + NET_MAX_PAYLOAD <= RX_BUF,
	       "a receive buffer holds a whole frame");

/* Receive buffer k: two to a page, pages 0-3 of queue 2, then of 3. */
static uint64_t rx_buf(const struct fv_guest_config *cfg, uint64_t i, unsigned k)
{
	unsigned page = k / 2;

	return vdrv_page(cfg, i, 2 + page / 4, page % 4) + (k % 2) * RX_BUF;
}

static void rx_post(const struct fv_guest_config *cfg, uint64_t i, unsigned k)
{
	struct vdesc d = { rx_buf(cfg, i, k), RX_BUF, VDESC_WRITE, 0 };

	vdrv_publish(cfg, i, 0, &d, k, 1);
}

/* The first NET command of a bring-up fills the receive queue. */
static void rx_fill(const struct fv_guest_config *cfg, uint64_t i)
{
	if (rx_posted[i] == vdrv_generation(i))
		return;
	rx_posted[i] = vdrv_generation(i);
	for (unsigned k = 0; k < VQ_SIZE; k++)
		rx_post(cfg, i, k);
}

/* vCPU 0, an up virtio-net device in window i. */
static int net_ok(const struct vcpu *v, uint64_t i)
{
	return vdrv_window_ok(v, i) && vdrv_up(i) &&
	       vdrv_read(vdrv_window(v->cfg, i), MMIO_DEVICE_ID) == NET_ID;
}

/* The device's MAC (config bytes 0-5), byte 0 in bits 0-7. */
static uint64_t config_mac(uint64_t base)
{
	return vdrv_read(base, MMIO_CONFIG) |
	       (uint64_t)(vdrv_read(base, MMIO_CONFIG + 4) & 0xffff) << 32;
}

static void put_mac(volatile uint8_t *p, uint64_t mac)
{
	for (unsigned b = 0; b < 6; b++)
		p[b] = (uint8_t)(mac >> (8 * b));
}

static uint64_t get_mac(const volatile uint8_t *p)
{
	uint64_t mac = 0;

	for (unsigned b = 0; b < 6; b++)
		mac |= (uint64_t)p[b] << (8 * b);
	return mac;
}

/* Header at hdr, frame right after it: destination, source, ethertype,
 * `len` bytes of the pattern.  The frame's length. */
static uint32_t build_frame(volatile uint8_t *hdr, uint64_t dst, uint64_t src,
			    uint64_t type, uint64_t len, uint64_t seed)
{
	volatile uint8_t *f = hdr + NET_HDR;

	for (unsigned b = 0; b < NET_HDR; b++)
		hdr[b] = 0;
	put_mac(f, dst);
	put_mac(f + 6, src);
	f[12] = (uint8_t)(type >> 8);
	f[13] = (uint8_t)type;
	for (uint64_t k = 0; k < len; k++)
		f[ETH_HLEN + k] = fv_net_pattern(seed, k);
	return (uint32_t)(ETH_HLEN + len);
}

/* A chain the device must refuse: it marks itself NEEDS_RESET. */
static void send_malformed(struct vcpu *v, uint64_t i, const struct vdesc *d,
			   unsigned n)
{
	uint64_t base = vdrv_window(v->cfg, i);

	vdrv_publish(v->cfg, i, 1, d, 0, n);
	v->result[0] = vdrv_wait_status(v->cfg, base, 0x40);	/* NEEDS_RESET */
	v->result[1] = vdrv_read(base, MMIO_INTERRUPT_STATUS);
	vdrv_write(base, MMIO_INTERRUPT_ACK, (uint32_t)v->result[1]);
	vdrv_down(i);
}

void cmd_net_send(struct vcpu *v)
{
	const struct fv_guest_config *cfg = v->cfg;
	uint64_t i = v->arg[0], len = v->arg[3], kind = v->arg[5];
	uint64_t base, hdr;
	volatile uint8_t *h;
	struct vdesc d[2];
	uint32_t flen;
	unsigned n = 2;
	int64_t used;

	if (!net_ok(v, i) || len > NET_MAX_PAYLOAD || v->arg[2] > 0xffff ||
	    kind > FV_NET_TX_LOOP) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}
	rx_fill(cfg, i);
	base = vdrv_window(cfg, i);
	/* Queue 1's header page: the header at 52, so the frame is at 64. */
	hdr = vdrv_page(cfg, i, 1, 3) + 64 - NET_HDR;
	h = (volatile uint8_t *)(uintptr_t)hdr;
	flen = build_frame(h, v->arg[1], config_mac(base), v->arg[2], len, v->arg[4]);
	d[0] = (struct vdesc){ hdr, NET_HDR, VDESC_NEXT, 1 };
	d[1] = (struct vdesc){ hdr + NET_HDR, flen, 0, 0 };
	switch (kind) {
	case FV_NET_TX_ONE:
		d[0] = (struct vdesc){ hdr, NET_HDR + flen, 0, 0 };
		n = 1;
		break;
	case FV_NET_TX_CSUM:
		h[0] = HDR_F_NEEDS_CSUM;
		h[6] = ETH_HLEN;        /* csum_start, csum_offset: plausible */
		h[8] = 16;
		break;
	case FV_NET_TX_SHORT_HDR:
		d[0] = (struct vdesc){ hdr, NET_HDR - 4, 0, 0 };
		send_malformed(v, i, d, 1);
		return;
	case FV_NET_TX_LOOP:
		d[1].flags = VDESC_NEXT;
		d[1].next = 0;
		send_malformed(v, i, d, 2);
		return;
	}
	used = vdrv_submit(cfg, i, 1, d, n);
	v->result[0] = used < 0 ? ~0ull : (uint64_t)used;
	v->result[1] = flen;
	v->result[2] = vdrv_read(base, MMIO_STATUS);
	if (used < 0)
		v->status = FV_STATUS_MISMATCH;
}

/* A received frame of the ethertype asked for, into v->result. */
static void recv_report(struct vcpu *v, const volatile uint8_t *b, uint32_t len)
{
	const volatile uint8_t *f = b + NET_HDR;
	uint64_t flen = len - NET_HDR, misses = 0, nonzero = 0;

	for (unsigned k = 0; k < 10; k++)
		nonzero += b[k] != 0;
	for (uint64_t k = 0; k < flen - ETH_HLEN; k++)
		misses += f[ETH_HLEN + k] != fv_net_pattern(v->arg[2], k);
	v->result[0] = flen;
	v->result[1] = get_mac(f + 6);
	v->result[2] = misses;
	v->result[3] = (uint64_t)f[12] << 8 | f[13];
	v->result[4] = b[10] | (uint64_t)b[11] << 8;
	v->result[5] = get_mac(f);
	v->result[6] = nonzero;
}

void cmd_net_recv(struct vcpu *v)
{
	const struct fv_guest_config *cfg = v->cfg;
	uint64_t i = v->arg[0], passed = 0;

	if (!net_ok(v, i) || v->arg[1] > 0xffff) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}
	rx_fill(cfg, i);
	for (uint64_t spin = 0;; spin++) {
		const volatile uint8_t *b;
		uint32_t len, head;

		if (!vdrv_used(cfg, i, 0, &len, &head)) {
			if (spin >= v->arg[3])
				break;
			cpu_pause();
			continue;
		}
		/* The device wrote into a buffer posted here, no more than it
		 * holds, at least a header and an Ethernet header. */
		GUEST_ASSERT(head < VQ_SIZE && len <= RX_BUF && len >= NET_HDR + ETH_HLEN,
			     "virtio-net: a used receive buffer out of bounds");
		b = (const volatile uint8_t *)(uintptr_t)rx_buf(cfg, i, head);
		if (((uint64_t)b[NET_HDR + 12] << 8 | b[NET_HDR + 13]) == v->arg[1]) {
			recv_report(v, b, len);
			v->result[7] = passed;
			rx_post(cfg, i, head);
			return;
		}
		passed++;
		rx_post(cfg, i, head);
	}
	v->result[7] = passed;
	v->status = FV_STATUS_MISMATCH;
}
