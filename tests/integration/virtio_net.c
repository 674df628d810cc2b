/*
 * virtio_net - virtio-net end to end under /dev/kvm: the test payload's
 * own driver (guest-tools/payload/cmd_net.c) against the device
 * (devices/virtio_net.c) on a tap, the other end of which is an AF_PACKET
 * socket of this test's.  Everything happens in a network namespace of
 * the test's own (unshare), which goes with it: the tap, its frames.
 *
 *  1. Set-up: VIRTIO_INIT offers MAC and STATUS; config space holds the
 *     MAC given and the link up.
 *  2. A frame the host sends while the guest has no receive buffer waits
 *     in the tap (the device reads it only once there is a buffer: it is
 *     there, readable, and nothing was received or dropped) and reaches
 *     the guest once it posts its buffers.
 *  3. Frames the guest sends (0, 46 and 1500 bytes of payload, in one and
 *     in two descriptors) come out of the tap with its MAC, the
 *     ethertype and the payload; one whose header asks for a checksum
 *     offload that was not negotiated is dropped and counted.
 *  4. More frames than the guest has buffers reach it in order; one too
 *     long for a buffer is dropped and counted, and the buffer takes the
 *     next one.
 *  5. Malformed transmit chains (a header of 8 bytes, a loop): the device
 *     needs a reset and says so; the guest resets it and sends and
 *     receives again.
 *  6. net=tap: foldvm makes the tap fv-NAME, after the disk's window,
 *     with the default MAC, and the tap is gone with the guest.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include "devices/virtio_net.h"
#include "guest-tools/content.h"
#include "tests/integration/kvmtest.h"

#define TAP "fvtap0"
#define ETYPE 0x88b5u               /* IEEE local experimental */
#define OTHER_ETYPE 0x88b6u
#define GUEST_MAC "52:54:00:12:34:56"
#define SPIN (2000ull * 1000 * 1000)  /* NET_RECV's bound when a frame is due */
#define WAIT_MS 20000                /* a frame due on the host: fail after */

static uint8_t tap_mac[6], guest_mac[6];
static int tap_index, pkt_fd;

static uint64_t mac64(const uint8_t m[6])
{
	uint64_t v = 0;

	for (unsigned b = 0; b < 6; b++)
		v |= (uint64_t)m[b] << (8 * b);
	return v;
}

/* ---- the network namespace and the tap ---- */

static void skip(const char *why)
{
	fprintf(stderr, "SKIP: virtio_net NOT RUN: %s\n", why);
	exit(77);
}

static void write_sysctl(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (write(fd, v, strlen(v)) < 0) {
			/* IPv6 off is a nicety: the guest passes over
			 * frames of other ethertypes anyway */
		}
		close(fd);
	}
}

static void if_ioctl(unsigned long req, struct ifreq *ifr, const char *what)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	KT_ASSERT(s >= 0 && ioctl(s, req, ifr) == 0, "%s: %s", what, strerror(errno));
	close(s);
}

/* As `ip tuntap add dev TAP mode tap user 0` and `ip link set TAP up
 * mtu 4000` would (the MTU lets a frame too long for the guest's
 * buffers through). */
static void make_tap(void)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		skip("no /dev/net/tun");
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), TAP);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	KT_ASSERT(ioctl(fd, TUNSETIFF, &ifr) == 0 && ioctl(fd, TUNSETOWNER, 0) == 0 &&
		  ioctl(fd, TUNSETPERSIST, 1) == 0, "making tap " TAP ": %s",
		  strerror(errno));
	close(fd);
	ifr.ifr_mtu = 4000;
	if_ioctl(SIOCSIFMTU, &ifr, "SIOCSIFMTU");
	if_ioctl(SIOCGIFFLAGS, &ifr, "SIOCGIFFLAGS");
	ifr.ifr_flags |= IFF_UP;
	if_ioctl(SIOCSIFFLAGS, &ifr, "SIOCSIFFLAGS");
	if_ioctl(SIOCGIFHWADDR, &ifr, "SIOCGIFHWADDR");
	memcpy(tap_mac, ifr.ifr_hwaddr.sa_data, 6);
	tap_index = (int)if_nametoindex(TAP);
	KT_ASSERT(tap_index > 0, "no index for " TAP);
}

static void enter_netns(void)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET };

	/* Before any thread: the namespace is the process's. */
	if (unshare(CLONE_NEWNET))
		skip("cannot make a network namespace (unshare(CLONE_NEWNET) needs root)");
	/* No IPv6 chatter (router solicitations) out of the tap. */
	write_sysctl("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	write_sysctl("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
	make_tap();
	pkt_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETYPE));
	KT_ASSERT(pkt_fd >= 0, "AF_PACKET socket: %s", strerror(errno));
	sll.sll_protocol = htons(ETYPE);
	sll.sll_ifindex = tap_index;
	KT_ASSERT(bind(pkt_fd, (struct sockaddr *)&sll, sizeof(sll)) == 0,
		  "binding to " TAP ": %s", strerror(errno));
}

/* ---- the host's end ---- */

/* Send a frame of `len` payload bytes of the pattern to the guest. */
static void host_send(uint16_t type, unsigned len, uint64_t seed)
{
	static uint8_t f[4000];

	KT_ASSERT(14 + len <= sizeof(f), "frame too long");
	memcpy(f, guest_mac, 6);
	memcpy(f + 6, tap_mac, 6);
	f[12] = (uint8_t)(type >> 8);
	f[13] = (uint8_t)type;
	for (unsigned k = 0; k < len; k++)
		f[14 + k] = fv_net_pattern(seed, k);
	KT_ASSERT(send(pkt_fd, f, 14 + len, 0) == (ssize_t)(14 + len),
		  "sending %u bytes: %s", 14 + len, strerror(errno));
}

/* The next frame from the guest: it has the guest's MAC, the tap's as
 * destination, ETYPE, and `len` bytes of the pattern of `seed`. */
static void host_expect(unsigned len, uint64_t seed, const char *what)
{
	static uint8_t f[4096];
	struct pollfd p = { .fd = pkt_fd, .events = POLLIN };
	struct sockaddr_ll from;
	socklen_t fl = sizeof(from);
	unsigned misses = 0;
	ssize_t n;

	do {
		KT_ASSERT(poll(&p, 1, WAIT_MS) == 1, "%s: no frame came out of the tap", what);
		n = recvfrom(pkt_fd, f, sizeof(f), 0, (struct sockaddr *)&from, &fl);
		KT_ASSERT(n >= 0, "recvfrom: %s", strerror(errno));
	} while (from.sll_pkttype == PACKET_OUTGOING);
	KT_ASSERT(n == 14 + (ssize_t)len, "%s: %zd bytes, not %u", what, n, 14 + len);
	KT_ASSERT(!memcmp(f, tap_mac, 6) && !memcmp(f + 6, guest_mac, 6),
		  "%s: wrong MAC addresses", what);
	KT_ASSERT(f[12] == ETYPE >> 8 && f[13] == (ETYPE & 0xff), "%s: ethertype", what);
	for (unsigned k = 0; k < len; k++)
		misses += f[14 + k] != fv_net_pattern(seed, k);
	KT_ASSERT(misses == 0, "%s: %u payload bytes differ", what, misses);
}

/* ---- the guest's end ---- */

static struct testdev_result virtio_init(struct guest *g, uint64_t window,
					 uint64_t id)
{
	uint64_t arg[8] = { window };
	struct testdev_result r = kt_cmd_args(g, 0, FV_CMD_VIRTIO_INIT, arg);

	KT_ASSERT(r.status == FV_STATUS_OK && r.result[0] == id,
		  "%s: VIRTIO_INIT of window %llu: status %u, device %llu, Status 0x%llx",
		  g->cfg.name, (unsigned long long)window, r.status,
		  (unsigned long long)r.result[0], (unsigned long long)r.result[3]);
	return r;
}

static struct testdev_result net_send(struct guest *g, uint64_t window,
				      unsigned len, uint64_t seed, uint64_t kind)
{
	uint64_t arg[8] = { window, mac64(tap_mac), ETYPE, len, seed, kind };

	return kt_cmd_args(g, 0, FV_CMD_NET_SEND, arg);
}

static void guest_send(struct guest *g, unsigned len, uint64_t seed,
		       uint64_t kind, const char *what)
{
	struct testdev_result r = net_send(g, 0, len, seed, kind);

	KT_ASSERT(r.status == FV_STATUS_OK && r.result[0] == 0 &&
		  r.result[1] == 14 + len && !(r.result[2] & VIRTIO_STATUS_NEEDS_RESET),
		  "%s: NET_SEND status %u, used %llu, frame %llu, Status 0x%llx", what,
		  r.status, (unsigned long long)r.result[0],
		  (unsigned long long)r.result[1], (unsigned long long)r.result[2]);
}

static struct testdev_result net_recv(struct guest *g, uint64_t window,
				      uint64_t seed, uint64_t spin)
{
	uint64_t arg[8] = { window, ETYPE, seed, spin };

	return kt_cmd_args(g, 0, FV_CMD_NET_RECV, arg);
}

/* The guest receives the frame the host sent with `seed`. */
static void guest_expect(struct guest *g, unsigned len, uint64_t seed,
			 const char *what)
{
	struct testdev_result r = net_recv(g, 0, seed, SPIN);

	KT_ASSERT(r.status == FV_STATUS_OK, "%s: nothing received (status %u)", what,
		  r.status);
	KT_ASSERT(r.result[0] == 14 + len && r.result[3] == ETYPE,
		  "%s: %llu bytes of ethertype 0x%llx", what,
		  (unsigned long long)r.result[0], (unsigned long long)r.result[3]);
	KT_ASSERT(r.result[1] == mac64(tap_mac) && r.result[5] == mac64(guest_mac),
		  "%s: MAC addresses", what);
	KT_ASSERT(r.result[2] == 0, "%s: %llu payload bytes differ", what,
		  (unsigned long long)r.result[2]);
	KT_ASSERT(r.result[4] == 1 && r.result[6] == 0,
		  "%s: header: num_buffers %llu, %llu other bytes not zero", what,
		  (unsigned long long)r.result[4], (unsigned long long)r.result[6]);
}

/* Is a frame waiting in the tap for the device?  (poll on the device's
 * descriptor, which reads nothing.) */
static bool frame_waits(struct guest *g)
{
	struct pollfd p = { .fd = g->net->fd, .events = POLLIN };

	return poll(&p, 1, WAIT_MS) == 1 && (p.revents & POLLIN);
}

/* ---- the tests ---- */

static void setup(struct guest *g)
{
	struct testdev_result r = virtio_init(g, 0, VIRTIO_ID_NET);
	uint64_t feat = r.result[2];

	KT_ASSERT((feat & (1ull << 32)) && (feat & (1ull << VIRTIO_NET_F_MAC)) &&
		  (feat & (1ull << VIRTIO_NET_F_STATUS)) &&
		  !(r.result[1] & ((1ull << VIRTIO_NET_F_CSUM) |
				   (1ull << VIRTIO_NET_F_MRG_RXBUF) |
				   (1ull << VIRTIO_NET_F_CTRL_VQ))),
		  "features offered 0x%llx, taken 0x%llx",
		  (unsigned long long)r.result[1], (unsigned long long)feat);
	KT_ASSERT(r.result[4] == (mac64(guest_mac) | (uint64_t)VIRTIO_NET_S_LINK_UP << 48),
		  "config space 0x%llx: not the MAC and the link up",
		  (unsigned long long)r.result[4]);
	printf("virtio_net: MAC and STATUS offered, no offloads; config: MAC " GUEST_MAC ", link up\n");
}

static void waits_for_a_buffer(struct guest *g)
{
	/* No NET command yet since VIRTIO_INIT: no receive buffer. */
	host_send(ETYPE, 200, 100);
	KT_ASSERT(frame_waits(g), "the frame never reached the tap");
	KT_ASSERT(g->net->stats.rx_frames == 0 && g->net->stats.rx_drops == 0,
		  "the device took a frame with no buffer to put it in");
	guest_expect(g, 200, 100, "a frame sent before the guest had a buffer");
	printf("virtio_net: a frame sent while the guest had no buffer waited in the tap and came once it posted some\n");
}

static void guest_to_host(struct guest *g)
{
	static const unsigned lens[] = { 0, 46, 1500 };
	uint64_t seed = 200;

	for (unsigned i = 0; i < 3; i++)
		for (uint64_t kind = FV_NET_TX_SPLIT; kind <= FV_NET_TX_ONE; kind++) {
			char what[64];

			snprintf(what, sizeof(what), "guest frame of %u bytes in %s",
				 lens[i], kind == FV_NET_TX_ONE ? "one descriptor" : "two");
			guest_send(g, lens[i], seed, kind, what);
			host_expect(lens[i], seed, what);
			seed++;
		}
	/* Asks for NEEDS_CSUM: used, dropped, counted; the next one comes. */
	guest_send(g, 100, 300, FV_NET_TX_CSUM, "a frame asking for a checksum");
	guest_send(g, 100, 301, FV_NET_TX_SPLIT, "the frame after it");
	host_expect(100, 301, "the frame after the one asking for a checksum");
	KT_ASSERT(g->net->stats.tx_frames == 7 && g->net->stats.tx_drops == 1,
		  "tx frames %llu, drops %llu",
		  (unsigned long long)g->net->stats.tx_frames,
		  (unsigned long long)g->net->stats.tx_drops);
	printf("virtio_net: guest -> tap: 0, 46 and 1500 bytes, one and two descriptors, with its MAC and the payload; a header asking for a checksum offload dropped and counted\n");
}

static void host_to_guest(struct guest *g)
{
	const unsigned n = 40;   /* more than the guest's 16 buffers */
	struct testdev_result r;

	for (unsigned k = 0; k < n; k++)
		host_send(k % 5 == 4 ? OTHER_ETYPE : ETYPE, 10 + 37 * k, 1000 + k);
	for (unsigned k = 0; k < n; k++) {
		char what[64];

		if (k % 5 == 4)
			continue;
		snprintf(what, sizeof(what), "host frame %u of %u", k, n);
		r = net_recv(g, 0, 1000 + k, SPIN);
		KT_ASSERT(r.status == FV_STATUS_OK && r.result[0] == 14 + 10 + 37 * k &&
			  r.result[2] == 0 && r.result[4] == 1,
			  "%s: status %u, %llu bytes, %llu differ, num_buffers %llu", what,
			  r.status, (unsigned long long)r.result[0],
			  (unsigned long long)r.result[2], (unsigned long long)r.result[4]);
		/* The frame of the other ethertype before it was passed over. */
		KT_ASSERT(r.result[7] == (k % 5 == 0 && k ? 1u : 0u),
			  "%s: %llu frames passed over", what,
			  (unsigned long long)r.result[7]);
	}
	/* Too long for a 2 KiB buffer: dropped; the buffer takes the next. */
	host_send(ETYPE, 3000, 2000);
	host_send(ETYPE, 64, 2001);
	guest_expect(g, 64, 2001, "the frame after one too long for a buffer");
	KT_ASSERT(g->net->stats.rx_drops == 1, "rx drops %llu, not 1",
		  (unsigned long long)g->net->stats.rx_drops);
	/* Nothing more is due: the guest's bounded wait ends empty. */
	r = net_recv(g, 0, 0, 1000000);
	KT_ASSERT(r.status == FV_STATUS_MISMATCH, "a frame nobody sent (status %u)",
		  r.status);
	printf("virtio_net: tap -> guest: %u frames through 16 buffers in order (other ethertypes passed over); one too long for a buffer dropped and counted, the buffer kept for the next\n",
	       n);
}

static void malformed(struct guest *g, uint64_t kind, const char *what)
{
	struct testdev_result r = net_send(g, 0, 64, 0, kind);

	KT_ASSERT(r.status == FV_STATUS_OK, "%s: payload status %u", what, r.status);
	KT_ASSERT(r.result[0] & VIRTIO_STATUS_NEEDS_RESET,
		  "%s: device Status 0x%llx without NEEDS_RESET", what,
		  (unsigned long long)r.result[0]);
	KT_ASSERT(r.result[1] & VIRTIO_MMIO_INT_CONFIG,
		  "%s: no config interrupt (InterruptStatus 0x%llx)", what,
		  (unsigned long long)r.result[1]);
	/* The guest carries on: reset, bring it up again, send, receive. */
	virtio_init(g, 0, VIRTIO_ID_NET);
	guest_send(g, 80, 3000 + kind, FV_NET_TX_SPLIT, what);
	host_expect(80, 3000 + kind, what);
	host_send(ETYPE, 90, 3100 + kind);
	guest_expect(g, 90, 3100 + kind, what);
}

static void data_path(struct kvm_sys *kvm)
{
	struct guest *g = kt_guest(kvm, NULL, "name=n1,mem=64M,net=tap:" TAP ",mac=" GUEST_MAC);
	struct fv_error err;

	KT_ASSERT(fv_mac_parse(GUEST_MAC, guest_mac, &err) == 0, "%s", err.msg);
	setup(g);
	waits_for_a_buffer(g);
	guest_to_host(g);
	host_to_guest(g);
	malformed(g, FV_NET_TX_SHORT_HDR, "a transmit chain of an 8-byte header");
	malformed(g, FV_NET_TX_LOOP, "a transmit descriptor loop");
	printf("virtio_net: 2 malformed transmit chains -> NEEDS_RESET, reset, sent and received again\n");
	kt_destroy(g);
	KT_ASSERT(if_nametoindex(TAP) == (unsigned)tap_index,
		  "the tap foldvm attached to went with the guest");
}

/* net=tap: a tap of foldvm's own, in the window after the disk. */
static void made_tap(struct kvm_sys *kvm)
{
	char path[64], spec[256];
	struct testdev_result r;
	uint8_t mac[6];
	struct guest *g;
	int fd;

	strcpy(path, "/tmp/foldvm-vnet.XXXXXX");
	fd = mkstemp(path);
	KT_ASSERT(fd >= 0 && ftruncate(fd, 1 << 20) == 0, "image");
	KT_ASSERT(if_nametoindex("fv-n2") == 0, "fv-n2 exists already");
	snprintf(spec, sizeof(spec), "name=n2,mem=64M,net=tap,disk=%s", path);
	g = kt_guest(kvm, NULL, spec);
	KT_ASSERT(if_nametoindex("fv-n2") != 0, "net=tap made no tap fv-n2");
	virtio_init(g, 0, VIRTIO_ID_BLOCK);
	r = virtio_init(g, 1, VIRTIO_ID_NET);
	fv_mac_default("n2", mac);
	KT_ASSERT((r.result[4] & 0xffffffffffffull) == mac64(mac) && mac[0] == 0x52 &&
		  mac[1] == 0x54 && mac[2] == 0,
		  "the default MAC 0x%llx is not 52:54:00 and the name's hash",
		  (unsigned long long)r.result[4]);
	kt_destroy(g);
	KT_ASSERT(if_nametoindex("fv-n2") == 0, "the tap foldvm made outlived its guest");
	close(fd);
	unlink(path);
	printf("virtio_net: net=tap made fv-n2 (gone with the guest), window 1 after the disk's, default MAC 52:54:00 and the name's hash\n");
}

int main(void)
{
	struct kvm_sys kvm;

	kt_require_kvm("virtio_net");
	enter_netns();
	kt_open(&kvm);
	data_path(&kvm);
	made_tap(&kvm);
	kvm_sys_close(&kvm);
	return 0;
}
