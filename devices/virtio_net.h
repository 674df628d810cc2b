/*
 * virtio_net.h - virtio-net (virtio 1.x, 5.1) on a tap device: one
 * receive queue, one transmit queue, the MAC and the link status in
 * config space; no checksum or segmentation offloads, no mergeable
 * receive buffers, no control queue.
 *
 * Frames keep their 12-byte struct virtio_net_hdr_v1 on the way through:
 * the tap is opened with IFF_VNET_HDR and a header size of 12, so what
 * the driver puts before a frame is what the tap reads, and what the tap
 * puts before a received frame is what the driver gets (num_buffers set
 * to 1).  Transmission is served on the notifying vCPU; reception on a
 * thread of the device's own, which polls the tap and an eventfd and
 * takes the transport's lock to fill a receive buffer.  A frame waits in
 * the tap until the driver has a buffer for it.
 *
 * The device only read()s and write()s its descriptor, one frame (with
 * its header) each, so a datagram socket stands in for the tap in tests.
 */
#ifndef FOLDVM_VIRTIO_NET_H
#define FOLDVM_VIRTIO_NET_H

#include <net/if.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "devices/virtio_mmio.h"
#include "lib/error.h"
#include "lib/netname.h"
#include "lib/syscall_rules.h"

/* Feature bits (5.1.3) */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_F_CTRL_VQ 17

/* Config space (5.1.4): mac[6], then status (le16) */
#define VIRTIO_NET_CONFIG_LEN 8u
#define VIRTIO_NET_S_LINK_UP 1u

/* struct virtio_net_hdr_v1 (5.1.6) */
#define VIRTIO_NET_HDR_LEN 12u
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1u
#define VIRTIO_NET_HDR_F_DATA_VALID 2u
#define VIRTIO_NET_HDR_GSO_NONE 0u

/* Queues */
#define VIRTIO_NET_RXQ 0u
#define VIRTIO_NET_TXQ 1u
#define VIRTIO_NET_QUEUE_SIZE 256u

/* Frames: an Ethernet header at least; at most what a 64 KiB packet
 * makes with its Ethernet and VLAN headers (65550: QEMU's bound too). */
#define VIRTIO_NET_MIN_FRAME 14u
#define VIRTIO_NET_MAX_FRAME 65550u
#define VIRTIO_NET_BUF_LEN (VIRTIO_NET_HDR_LEN + VIRTIO_NET_MAX_FRAME)

#define VIRTIO_NET_MAC_LEN FV_MAC_LEN

struct virtio_net_stats {
	uint64_t tx_frames, tx_bytes;   /* frames written to the tap */
	uint64_t tx_drops;              /* refused: by the device or the tap */
	uint64_t rx_frames, rx_bytes;   /* frames put into receive buffers */
	uint64_t rx_drops;              /* too long for the buffer, bad header */
};

struct virtio_net {
	int fd;                         /* the tap (or a stand-in); -1: none */
	int wake_fd;                    /* eventfd: buffers posted, or stop */
	bool thread_started;
	bool stop;                      /* under the transport's lock */
	pthread_t rx_thread;
	uint8_t mac[VIRTIO_NET_MAC_LEN];
	uint8_t config[VIRTIO_NET_CONFIG_LEN];
	struct virtio_net_stats stats;  /* under the transport's lock */
	/* Transmission (the notifying vCPU, under the lock). */
	uint8_t *tx_buf;                /* VIRTIO_NET_BUF_LEN */
	struct virtq_chain tx_chain;
	/* Reception (the device's thread).  A frame read from the tap that
	 * found no buffer after all (the driver reset the device meanwhile)
	 * stays here until one comes. */
	uint8_t *rx_buf;                /* VIRTIO_NET_BUF_LEN */
	uint32_t rx_len;
	bool rx_pending;
	struct virtq_chain rx_chain;
	struct virtio_mmio transport;
};

/* Open tap `name` for a virtio-net device (IFF_TAP | IFF_NO_PI |
 * IFF_VNET_HDR, a 12-byte header, no offloads): the existing one, or a new
 * one of that name (which goes away when the descriptor is closed).
 * *created says which.  Creating a tap, or attaching to one not owned by
 * the caller's uid, needs CAP_NET_ADMIN: without it (a sandboxed worker)
 * the error says how to make a tap it may use. */
int virtio_net_tap_open(const char *name, bool *created, struct fv_error *err);

/*
 * Taps opened ahead, while the process may (a worker, before its sandbox
 * takes CAP_NET_ADMIN away: docs/sandbox.md), for the guests it will
 * make.  virtio_net_tap_preopen opens guest's tap and keeps it; the
 * guest's device takes it with virtio_net_tap_take (-1: none kept for
 * that guest and tap, so the device opens the tap itself).
 */
#define VIRTIO_NET_PREOPEN_MAX 64u
int virtio_net_tap_preopen(const char *guest, const char *tap,
			   struct fv_error *err);
int virtio_net_tap_take(const char *guest, const char *tap, bool *created);

/* A device on descriptor fd (which it owns from here on, even on
 * failure), window at `base`.  No thread yet: virtio_net_start. */
int virtio_net_init_fd(struct virtio_net *n, int fd,
		       const uint8_t mac[VIRTIO_NET_MAC_LEN],
		       struct guest_mem *mem, uint64_t base, struct fv_error *err);
/* Start the receive thread. */
int virtio_net_start(struct virtio_net *n, struct fv_error *err);
/* Stop the thread (if started), close the descriptors. */
void virtio_net_destroy(struct virtio_net *n);

/*
 * One step of reception, as the thread makes it (tests and the fuzzer
 * call it directly): if the driver can take a frame, read one from the
 * descriptor (or take the one waiting) and put it into a receive buffer.
 * 1: a frame was placed or dropped; 0: nothing to do (no frame, or
 * nowhere to put it).  Takes the transport's lock.
 */
int virtio_net_rx_step(struct virtio_net *n);

/* The device model's operations (for the transport and the fuzzer). */
extern const struct virtio_device_ops virtio_net_ops;

/* What a tap needs of a sandboxed worker beyond its base list (composed
 * by supervisor/sandbox.c; docs/sandbox.md). */
extern const struct syscall_rules virtio_net_syscalls;

#endif
