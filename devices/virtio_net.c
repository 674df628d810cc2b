/*
 * virtio_net.c - virtio-net on a tap device (virtio 1.x, 5.1).
 *
 * Transmit: each chain's device-readable part is one header and one
 * frame; it is copied into a bounce buffer (through the guest-memory API)
 * and written to the tap with one write.  Receive: the device's thread
 * reads a frame from the tap only when the driver has a buffer posted
 * (so a frame waits in the tap, not here, while it has none), then takes
 * the transport's lock and copies it into the buffer.  Everything in a
 * chain is the driver's and checked: a chain too short for its header is
 * a broken driver (NEEDS_RESET); a frame out of bounds, or one whose
 * header asks for an offload that was not negotiated, is dropped and
 * counted.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <linux/if_tun.h>
#include "devices/virtio_net.h"

/* ---- the tap ---- */

#define TAP_FLAGS (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR)

/* Why TUNSETIFF failed, in words an operator can act on. */
static int tap_error(const char *name, int e, bool create, struct fv_error *err)
{
	switch (e) {
	case EPERM:
		return fv_err(err, FV_E_SYS,
			      "cannot %s tap %s: without CAP_NET_ADMIN (a sandboxed worker) foldvm may only attach to an existing tap owned by uid %u (ip tuntap add dev %s mode tap user %u)",
			      create ? "create" : "attach to", name,
			      (unsigned)getuid(), name, (unsigned)getuid());
	case EBUSY:
		return fv_err(err, FV_E_STATE,
			      "tap %s is in use (another process or guest has it open)",
			      name);
	case EINVAL:
		return fv_err(err, FV_E_INVAL,
			      "%s exists and is not a tap device (or not one without a packet-information header)",
			      name);
	}
	return fv_err_errno(err, FV_E_SYS, e, "tap %s: TUNSETIFF", name);
}

/* TUNSETIFF for `name`; IFF_TUN_EXCL first, so that *created says
 * whether this call made the interface. */
static int tap_set_iff(int fd, const char *name, bool *created,
		       struct fv_error *err)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	/* IFF_TUN_EXCL is bit 15 of the short ifr_flags. */
	ifr.ifr_flags = (short)(uint16_t)(TAP_FLAGS | IFF_TUN_EXCL);
	if (ioctl(fd, TUNSETIFF, &ifr) == 0) {
		*created = true;
		return 0;
	}
	/* EBUSY: it exists; EPERM: it does not, and creating needs
	 * CAP_NET_ADMIN (attaching may not, so that is tried too). */
	if (errno != EBUSY && errno != EPERM)
		return tap_error(name, errno, true, err);
	ifr.ifr_flags = TAP_FLAGS;
	if (ioctl(fd, TUNSETIFF, &ifr) == 0) {
		*created = false;
		return 0;
	}
	return tap_error(name, errno, false, err);
}

int virtio_net_tap_open(const char *name, bool *created, struct fv_error *err)
{
	int hdr = VIRTIO_NET_HDR_LEN, fd;

	*created = false;
	if (!fv_ifname_ok(name))
		return fv_err(err, FV_E_INVAL,
			      "'%s' is not an interface name (1-%d of [A-Za-z0-9._-])",
			      name, IFNAMSIZ - 1);
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return fv_err_errno(err, FV_E_IO, errno, "tap %s: /dev/net/tun", name);
	if (tap_set_iff(fd, name, created, err)) {
		close(fd);
		return -1;
	}
	/* No offloads: a tap another program used may have kept some, and
	 * the driver negotiated none, so frames must come whole and with
	 * their checksums (5.1.6.4.1: flags 0, gso_type NONE).  The header
	 * is 12 bytes, struct virtio_net_hdr_v1, as the driver's. */
	if (ioctl(fd, TUNSETOFFLOAD, 0) || ioctl(fd, TUNSETVNETHDRSZ, &hdr)) {
		int e = errno;

		close(fd);
		return fv_err_errno(err, FV_E_SYS, e, "tap %s: setting up its header", name);
	}
	return fd;
}

static struct tap_preopened {
	char guest[64];
	char tap[IFNAMSIZ];
	int fd;                         /* -1: taken, or a free slot */
	bool created;
} preopened[VIRTIO_NET_PREOPEN_MAX];
static unsigned nr_preopened;
static pthread_mutex_t preopen_lock = PTHREAD_MUTEX_INITIALIZER;

int virtio_net_tap_preopen(const char *guest, const char *tap,
			   struct fv_error *err)
{
	struct tap_preopened *p;
	bool created;
	int fd, r = 0;

	pthread_mutex_lock(&preopen_lock);
	if (nr_preopened == VIRTIO_NET_PREOPEN_MAX) {
		r = fv_err(err, FV_E_INVAL, "more than %u taps to open",
			   VIRTIO_NET_PREOPEN_MAX);
		goto out;
	}
	fd = virtio_net_tap_open(tap, &created, err);
	if (fd < 0) {
		r = -1;
		goto out;
	}
	p = &preopened[nr_preopened++];
	snprintf(p->guest, sizeof(p->guest), "%s", guest);
	snprintf(p->tap, sizeof(p->tap), "%s", tap);
	p->fd = fd;
	p->created = created;
out:
	pthread_mutex_unlock(&preopen_lock);
	return r;
}

int virtio_net_tap_take(const char *guest, const char *tap, bool *created)
{
	int fd = -1;

	pthread_mutex_lock(&preopen_lock);
	for (unsigned i = 0; i < nr_preopened && fd < 0; i++) {
		struct tap_preopened *p = &preopened[i];

		if (p->fd >= 0 && !strcmp(p->guest, guest) && !strcmp(p->tap, tap)) {
			fd = p->fd;
			*created = p->created;
			p->fd = -1;     /* the device's now */
		}
	}
	pthread_mutex_unlock(&preopen_lock);
	return fd;
}

/* ---- config space ---- */

static void net_config_read(void *dev, uint32_t off, uint8_t *buf, unsigned len)
{
	struct virtio_net *n = dev;

	memcpy(buf, n->config + off, len);
}

static void net_reset(void *dev)
{
	/* Nothing of the driver's is kept: a frame waiting in rx_buf waits
	 * for the buffers the driver posts after the reset. */
	(void)dev;
}

/* ---- transmit ---- */

/* 5.1.6.2: with no offload negotiated the driver sets flags 0 (it must
 * never set DATA_VALID or RSC_INFO) and gso_type NONE. */
static bool tx_hdr_ok(const uint8_t *h)
{
	return h[0] == 0 && h[1] == VIRTIO_NET_HDR_GSO_NONE;
}

/* One frame of a checked chain to the tap, or dropped. */
static void tx_frame(struct virtio_net *n, const struct virtq_chain *c)
{
	struct fv_error err = { 0 };
	uint64_t len = c->out_len, frame = len - VIRTIO_NET_HDR_LEN;
	ssize_t w;

	if (frame < VIRTIO_NET_MIN_FRAME || frame > VIRTIO_NET_MAX_FRAME ||
	    virtq_chain_read(n->transport.mem, c, 0, n->tx_buf, len, &err) ||
	    !tx_hdr_ok(n->tx_buf)) {
		n->stats.tx_drops++;
		return;
	}
	do {
		w = write(n->fd, n->tx_buf, (size_t)len);
	} while (w < 0 && errno == EINTR);
	if (w != (ssize_t)len) {
		n->stats.tx_drops++;     /* the tap refused it, or is full */
		return;
	}
	n->stats.tx_frames++;
	n->stats.tx_bytes += frame;
}

static int tx_notify(struct virtio_net *n, struct virtio_mmio *t,
		     struct fv_error *err)
{
	struct virtq *vq = &t->vq[VIRTIO_NET_TXQ];
	struct virtq_chain *c = &n->tx_chain;
	bool used = false;
	int r;

	while ((r = virtq_pop(vq, t->mem, c, err)) == 1) {
		/* Every transmit buffer starts with the header (5.1.6.2). */
		if (c->out_len < VIRTIO_NET_HDR_LEN) {
			r = fv_err(err, FV_E_INVAL,
				   "transmit chain %u has %llu readable bytes, less than the %u-byte header",
				   c->head, (unsigned long long)c->out_len,
				   VIRTIO_NET_HDR_LEN);
			break;
		}
		tx_frame(n, c);
		if (virtq_push(vq, t->mem, c->head, 0, err)) {
			r = -1;
			break;
		}
		used = true;
	}
	/* Frames sent before a broken chain are used: the driver hears of
	 * them even though the device now needs a reset. */
	if (used)
		virtio_mmio_used(t, VIRTIO_NET_TXQ);
	return r < 0 ? -1 : 0;
}

/* ---- receive ---- */

static void rx_wake(struct virtio_net *n)
{
	uint64_t one = 1;

	if (n->wake_fd >= 0 && write(n->wake_fd, &one, sizeof(one)) < 0) {
		/* the counter is full: the thread wakes anyway */
	}
}

static int net_notify(void *dev, struct virtio_mmio *t, unsigned q,
		      struct fv_error *err)
{
	struct virtio_net *n = dev;

	if (q == VIRTIO_NET_TXQ)
		return tx_notify(n, t, err);
	/* Receive buffers posted: the thread may read the tap again. */
	rx_wake(n);
	return 0;
}

/* Lock held: can the driver take a frame now? */
static bool rx_ready(struct virtio_net *n)
{
	struct virtio_mmio *t = &n->transport;

	return virtio_mmio_live(t) &&
	       virtq_avail_pending(&t->vq[VIRTIO_NET_RXQ], t->mem);
}

/* One frame (header and all) from the tap into rx_buf: 1, or 0 if none. */
static int rx_read(struct virtio_net *n)
{
	ssize_t r;

	do {
		r = read(n->fd, n->rx_buf, VIRTIO_NET_BUF_LEN);
	} while (r < 0 && errno == EINTR);
	if (r <= 0)
		return 0;
	n->rx_len = (uint32_t)r;
	n->rx_pending = true;
	return 1;
}

/* The frame in rx_buf is dropped (counted). */
static int rx_drop(struct virtio_net *n)
{
	n->rx_pending = false;
	n->stats.rx_drops++;
	return 1;
}

/* Lock held: the waiting frame into the next receive buffer.  1: placed
 * or dropped; 0: it waits (no buffer, or the driver broke the queue). */
static int rx_place(struct virtio_net *n)
{
	struct virtio_mmio *t = &n->transport;
	struct virtq *vq = &t->vq[VIRTIO_NET_RXQ];
	struct virtq_chain *c = &n->rx_chain;
	struct fv_error err = { 0 };
	uint8_t *h = n->rx_buf;
	int r;

	/* What the tap gave: a header, an Ethernet header, and no offload
	 * (none was asked for; DATA_VALID is a hint the driver did not
	 * negotiate, so it goes). */
	if (n->rx_len < VIRTIO_NET_HDR_LEN + VIRTIO_NET_MIN_FRAME ||
	    (h[0] & ~VIRTIO_NET_HDR_F_DATA_VALID) || h[1] != VIRTIO_NET_HDR_GSO_NONE)
		return rx_drop(n);
	if (!virtio_mmio_live(t))
		return 0;
	r = virtq_pop(vq, t->mem, c, &err);
	if (r <= 0) {
		if (r < 0)
			virtio_mmio_needs_reset(t, err.msg);
		return 0;
	}
	if (c->out_len) {
		virtio_mmio_needs_reset(t, "a receive buffer with a device-readable part");
		return 0;
	}
	/* Too long for this buffer: the frame goes, the buffer stays for
	 * the next one. */
	if (c->in_len < n->rx_len) {
		virtq_unpop(vq);
		return rx_drop(n);
	}
	h[0] = 0;
	virtio_put_le(h + 10, 1, 2);            /* num_buffers (5.1.6.4) */
	if (virtq_chain_write(t->mem, c, 0, h, n->rx_len, &err) ||
	    virtq_push(vq, t->mem, c->head, n->rx_len, &err)) {
		virtio_mmio_needs_reset(t, err.msg);
		return rx_drop(n);
	}
	n->rx_pending = false;
	n->stats.rx_frames++;
	n->stats.rx_bytes += n->rx_len - VIRTIO_NET_HDR_LEN;
	virtio_mmio_used(t, VIRTIO_NET_RXQ);
	return 1;
}

int virtio_net_rx_step(struct virtio_net *n)
{
	struct virtio_mmio *t = &n->transport;
	bool ready;
	int r;

	virtio_mmio_lock(t);
	ready = rx_ready(n);
	virtio_mmio_unlock(t);
	/* Read only what can be placed: otherwise the frame waits in the
	 * tap, where the kernel bounds the queue. */
	if (!ready || (!n->rx_pending && !rx_read(n)))
		return 0;
	virtio_mmio_lock(t);
	r = rx_place(n);
	virtio_mmio_unlock(t);
	return r;
}

static void rx_thread_signals(void)
{
	sigset_t set;

	/* Signals are the process's (the runner's SIGINT/SIGTERM, the vCPU
	 * kick), not this thread's; SIGSYS stays open for the sandbox's
	 * report (docs/sandbox.md), and faults cannot be blocked anyway. */
	sigfillset(&set);
	sigdelset(&set, SIGSYS);
	sigdelset(&set, SIGSEGV);
	sigdelset(&set, SIGBUS);
	sigdelset(&set, SIGFPE);
	sigdelset(&set, SIGILL);
	sigdelset(&set, SIGABRT);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
}

static void *rx_thread(void *arg)
{
	struct virtio_net *n = arg;
	bool tap_gone = false;

	rx_thread_signals();
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = n->wake_fd, .events = POLLIN },
			{ .fd = n->fd, .events = 0 },
		};
		bool ready, stop;
		uint64_t v;

		virtio_mmio_lock(&n->transport);
		stop = n->stop;
		ready = rx_ready(n);
		virtio_mmio_unlock(&n->transport);
		if (stop)
			break;
		if (ready && n->rx_pending) {
			virtio_net_rx_step(n);
			continue;
		}
		/* The tap is polled only while the driver has a buffer; a
		 * posted buffer or the stop comes through the eventfd. */
		if (tap_gone)
			p[1].fd = -1;
		if (ready)
			p[1].events = POLLIN;
		if (poll(p, 2, -1) < 0)
			continue;               /* EINTR */
		if ((p[0].revents & POLLIN) &&
		    read(n->wake_fd, &v, sizeof(v)) < 0) {
			/* nothing to drain */
		}
		/* A tap deleted under the device (or a stand-in's closed
		 * peer) reports an error for ever: it is polled no more,
		 * rather than spun on. */
		if (p[1].revents && !(ready && virtio_net_rx_step(n)) &&
		    (p[1].revents & (POLLERR | POLLHUP | POLLNVAL)))
			tap_gone = true;
	}
	return NULL;
}

/* ---- the device ---- */

const struct virtio_device_ops virtio_net_ops = {
	.name = "virtio-net",
	.device_id = VIRTIO_ID_NET,
	.nr_queues = 2,
	.queue_max = VIRTIO_NET_QUEUE_SIZE,
	.config_len = VIRTIO_NET_CONFIG_LEN,
	.config_read = net_config_read,
	.notify = net_notify,
	.reset = net_reset,
};

int virtio_net_init_fd(struct virtio_net *n, int fd,
		       const uint8_t mac[VIRTIO_NET_MAC_LEN],
		       struct guest_mem *mem, uint64_t base, struct fv_error *err)
{
	int fl;

	memset(n, 0, sizeof(*n));
	n->fd = fd;
	n->wake_fd = -1;
	/* Reads and writes never wait: a frame the tap cannot take now is
	 * dropped, and the thread reads only after poll said so. */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		fv_err_errno(err, FV_E_SYS, errno, "virtio-net: O_NONBLOCK");
		goto fail;
	}
	n->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (n->wake_fd < 0) {
		fv_err_errno(err, FV_E_SYS, errno, "virtio-net: eventfd");
		goto fail;
	}
	n->tx_buf = malloc(VIRTIO_NET_BUF_LEN);
	n->rx_buf = malloc(VIRTIO_NET_BUF_LEN);
	if (!n->tx_buf || !n->rx_buf) {
		fv_err(err, FV_E_NOMEM, "virtio-net: frame buffers");
		goto fail;
	}
	memcpy(n->mac, mac, VIRTIO_NET_MAC_LEN);
	memcpy(n->config, mac, VIRTIO_NET_MAC_LEN);
	/* A tap's carrier is up while a descriptor holds it: this one. */
	virtio_put_le(n->config + 6, VIRTIO_NET_S_LINK_UP, 2);
	virtio_mmio_init(&n->transport, &virtio_net_ops, n, mem, base,
			 (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS));
	return 0;
fail:
	virtio_net_destroy(n);
	return -1;
}

int virtio_net_start(struct virtio_net *n, struct fv_error *err)
{
	int r = pthread_create(&n->rx_thread, NULL, rx_thread, n);

	if (r)
		return fv_err_errno(err, FV_E_SYS, r, "virtio-net: receive thread");
	n->thread_started = true;
	return 0;
}

void virtio_net_destroy(struct virtio_net *n)
{
	if (n->thread_started) {
		virtio_mmio_lock(&n->transport);
		n->stop = true;
		virtio_mmio_unlock(&n->transport);
		rx_wake(n);
		pthread_join(n->rx_thread, NULL);
		n->thread_started = false;
	}
	virtio_mmio_destroy(&n->transport);
	if (n->wake_fd >= 0)
		close(n->wake_fd);
	if (n->fd >= 0)
		close(n->fd);
	n->wake_fd = n->fd = -1;
	free(n->tx_buf);
	free(n->rx_buf);
	n->tx_buf = n->rx_buf = NULL;
}

/* A tap's set-up (net_tap_setup, for a vm-create guest's tap), these
 * three ioctls alone: the rest of type 'T' (0x54) would let a worker
 * make a tap persistent, give it away, or attach a BPF filter.  Its I/O
 * (read, write, poll, eventfd2) is on the base list. */
static const struct syscall_rule net_rules[] = {
	SYSCALL_EQ("ioctl", 1, TUNSETIFF),
	SYSCALL_EQ("ioctl", 1, TUNSETOFFLOAD),
	SYSCALL_EQ("ioctl", 1, TUNSETVNETHDRSZ),
};

const struct syscall_rules virtio_net_syscalls = SYSCALL_RULES("virtio-net", net_rules);
