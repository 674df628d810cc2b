/*
 * virtio_balloon - virtio-balloon end to end under /dev/kvm: the test
 * payload's driver (guest-tools/payload/cmd_balloon.c) against the device
 * (devices/virtio_balloon.c), the host checking what the kernel says.
 *
 *  1. Without dedup: the guest reports 4 MiB of its written data pages
 *     free; they read back as zero, and none of them holds a private page
 *     any more (the kernel got them back).  A target set by the host
 *     (QMP's balloon) is met by inflating with pages the guest had
 *     written: those go too; deflating gives them back; the statistics
 *     queue delivers the guest's figures, fresh ones after each query.
 *  2. With dedup: two clones whose pages are merged (in place, on their
 *     domain's home file) both report the same 1 MiB free: the pages read
 *     zero at once, the engine then finds them zero and discards them or
 *     maps them on its zero frame (no private page either way), the home
 *     file lets go of their content, and both guests verify the rest.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include "devices/virtio_balloon.h"
#include "guest-tools/content.h"
#include "lib/procstat.h"
#include "tests/integration/kvmtest.h"

static struct testdev_result cmd(struct guest *g, uint32_t c, uint64_t a0,
				 uint64_t a1, uint64_t a2, uint64_t a3)
{
	struct testdev_result r = kt_cmd(g, 0, c, a0, a1, a2, a3);

	KT_ASSERT(r.status == FV_STATUS_OK, "%s: command %u: status %u",
		  g->cfg.name, c, r.status);
	return r;
}

static void balloon_up(struct guest *g)
{
	struct testdev_result r = cmd(g, FV_CMD_VIRTIO_INIT, 0, 0, 0, 0);

	KT_ASSERT(r.result[0] == VIRTIO_ID_BALLOON, "device %llu",
		  (unsigned long long)r.result[0]);
	KT_ASSERT((r.result[2] & (1ull << VIRTIO_BALLOON_F_STATS_VQ)) &&
		  (r.result[2] & (1ull << VIRTIO_BALLOON_F_PAGE_REPORTING)),
		  "features taken 0x%llx", (unsigned long long)r.result[2]);
}

/* Pages of [gpa, gpa + n pages) that hold a private page of their own. */
static uint64_t private_pages(struct guest *g, uint64_t gpa, uint64_t n,
			      uint64_t zero_pfn)
{
	uint64_t k, c = 0;

	for (k = 0; k < n; k++)
		c += kt_page_private(g, kt_page(g, gpa) + k, zero_pfn);
	return c;
}

/* The device has read the guest's n-th statistics buffer.  The guest's
 * notify may be served by the notification thread (ioeventfd) after its
 * command returned: polled, bounded by a count, not a clock. */
static void stats_arrived(struct guest *g, uint64_t n)
{
	struct virtio_balloon_counters c;

	for (unsigned long i = 0; i < 100000000ul; i++) {
		virtio_balloon_counters(g->balloon, &c);
		if (c.stats_updates >= n)
			return;
		sched_yield();
	}
	KT_ASSERT(0, "statistics buffer %llu never read (%llu read)",
		  (unsigned long long)n, (unsigned long long)c.stats_updates);
}

static void without_dedup(struct kvm_sys *kvm, uint64_t zero_pfn)
{
	struct guest *g = kt_guest(kvm, NULL,
				   "name=n1,mem=64M,balloon=on,zero=0,shared=0,blob=0,probe-pages=1024");
	const struct fv_guest_config *l = &g->layout;
	struct virtio_balloon_info in;
	struct testdev_result r;
	struct fv_error err;
	uint64_t before;

	kt_fill(g);
	balloon_up(g);
	/* free page reporting: 1024 written pages, ranges of 256 */
	before = private_pages(g, l->data_gpa, 1024, zero_pfn);
	KT_ASSERT(before == 1024, "only %llu of 1024 filled pages are private",
		  (unsigned long long)before);
	r = cmd(g, FV_CMD_BALLOON_REPORT, 0, 0, 1024, 256);
	KT_ASSERT(r.result[0] == 4u << 20 && r.result[1] == 0,
		  "reported %llu bytes, %llu nonzero words read back",
		  (unsigned long long)r.result[0], (unsigned long long)r.result[1]);
	KT_ASSERT(private_pages(g, l->data_gpa, 1024, zero_pfn) == 0,
		  "reported pages still hold private pages");
	virtio_balloon_query(g->balloon, &in);
	KT_ASSERT(in.c.reported_bytes == 4u << 20 && in.c.reports == 4,
		  "reported %llu bytes in %llu ranges",
		  (unsigned long long)in.c.reported_bytes, (unsigned long long)in.c.reports);
	kt_verify(g);

	/* inflate to a target, with pages the guest wrote first */
	cmd(g, FV_CMD_MEASURE_WRITE, l->probe_gpa, 512, 4096, 0);
	KT_ASSERT(private_pages(g, l->probe_gpa, 512, zero_pfn) == 512,
		  "the probe pages were not written");
	KT_ASSERT(virtio_balloon_set_target(g->balloon, (64u << 20) - (2u << 20), &err) == 0,
		  "%s", err.msg);
	r = cmd(g, FV_CMD_BALLOON_ADJUST, 0, 0, 0, 0);
	KT_ASSERT(r.result[0] == 512 && r.result[1] == 512 && r.result[2] == 512,
		  "inflate: num_pages %llu actual %llu moved %llu",
		  (unsigned long long)r.result[0], (unsigned long long)r.result[1],
		  (unsigned long long)r.result[2]);
	KT_ASSERT(private_pages(g, l->probe_gpa, 512, zero_pfn) == 0,
		  "inflated pages still hold private pages");
	virtio_balloon_query(g->balloon, &in);
	KT_ASSERT(in.actual_bytes == (62u << 20) && in.c.inflated_pages == 512,
		  "actual %llu, inflated %llu", (unsigned long long)in.actual_bytes,
		  (unsigned long long)in.c.inflated_pages);
	KT_ASSERT(virtio_balloon_set_target(g->balloon, 64u << 20, &err) == 0, "%s", err.msg);
	r = cmd(g, FV_CMD_BALLOON_ADJUST, 0, 0, 0, 0);
	KT_ASSERT(r.result[1] == 0 && r.result[2] == 512, "deflate: actual %llu moved %llu",
		  (unsigned long long)r.result[1], (unsigned long long)r.result[2]);
	virtio_balloon_query(g->balloon, &in);
	KT_ASSERT(in.actual_bytes == (64u << 20) && in.c.deflated_pages == 512,
		  "after deflate: actual %llu, deflated %llu",
		  (unsigned long long)in.actual_bytes, (unsigned long long)in.c.deflated_pages);
	KT_ASSERT(virtio_balloon_set_target(g->balloon, 65u << 20, &err) == -1,
		  "a target above RAM was taken");

	/* statistics: the guest's figures, fresh ones after each query */
	r = cmd(g, FV_CMD_BALLOON_STATS, 0, 111, 222, 333);
	KT_ASSERT(r.result[0] == 1, "no statistics buffer posted");
	stats_arrived(g, 1);
	virtio_balloon_query(g->balloon, &in);
	KT_ASSERT(in.stat[4] == 111 && in.stat[5] == 222 && in.stat[6] == 333 &&
		  in.stat_seen == ((1u << 4) | (1u << 5) | (1u << 6)),
		  "stats %llu %llu %llu (seen 0x%x)", (unsigned long long)in.stat[4],
		  (unsigned long long)in.stat[5], (unsigned long long)in.stat[6],
		  in.stat_seen);
	r = cmd(g, FV_CMD_BALLOON_STATS, 0, 444, 555, 666);
	KT_ASSERT(r.result[0] == 1, "the device did not hand the statistics buffer back");
	stats_arrived(g, 2);
	virtio_balloon_query(g->balloon, &in);
	KT_ASSERT(in.stat[4] == 444 && in.c.stats_updates == 2, "fresh stats %llu (%llu updates)",
		  (unsigned long long)in.stat[4], (unsigned long long)in.c.stats_updates);
	kt_verify(g);
	kt_destroy(g);
	printf("virtio_balloon: 4 MiB reported free and 2 MiB inflated went back to the kernel; deflated; statistics delivered twice\n");
}

static void with_dedup(struct kvm_sys *kvm, uint64_t zero_pfn)
{
	const uint64_t n = 256;
	struct dedup_engine *e = kt_engine(0);
	struct dedup_guest_stats sa, sb;
	struct guest *a, *b;
	struct testdev_result r;
	uint64_t home_before, home_after, za, zb, pa = 0, pb = 0;
	unsigned round;

	a = kt_guest(kvm, e, "name=c1,mem=32M,zero=0,shared=100,layout=clones,dedup=on,domain=vbal,balloon=on");
	b = kt_guest(kvm, e, "name=c2,mem=32M,zero=0,shared=100,layout=clones,dedup=on,domain=vbal,balloon=on");
	kt_fill(a);
	kt_fill(b);
	balloon_up(a);
	balloon_up(b);
	kt_wait_merged(e, a, b, n);
	za = kt_stats(a).pages_zero;
	zb = kt_stats(b).pages_zero;
	home_before = gmem_homes_resident_bytes();
	r = cmd(a, FV_CMD_BALLOON_REPORT, 0, 0, n, 64);
	KT_ASSERT(r.result[1] == 0, "c1: %llu nonzero words after reporting",
		  (unsigned long long)r.result[1]);
	r = cmd(b, FV_CMD_BALLOON_REPORT, 0, 0, n, 64);
	KT_ASSERT(r.result[1] == 0, "c2: %llu nonzero words after reporting",
		  (unsigned long long)r.result[1]);
	/* The engine sees the zeroed pages at its next passes: it discards
	 * them, or - while the home slot still holds content for the other
	 * clone - maps them onto its zero frame; either way no private page
	 * is left.  Bounded by passes, not by time. */
	for (round = 0; round < 600; round++) {
		kt_passes(e, 2);
		pa = private_pages(a, a->layout.data_gpa, n, zero_pfn);
		pb = private_pages(b, b->layout.data_gpa, n, zero_pfn);
		if (!pa && !pb)
			break;
	}
	KT_ASSERT(!pa && !pb, "reported pages still private after %u rounds: %llu and %llu",
		  round, (unsigned long long)pa, (unsigned long long)pb);
	sa = kt_stats(a);
	sb = kt_stats(b);
	/* The home slots of exactly these pages let their content go (the
	 * file as a whole also holds the meta pages, whose checksums the
	 * guests just rewrote: its size is reported, not asserted). */
	for (uint64_t k = 0; k < n; k++)
		KT_ASSERT(gmem_home_refs(&a->mem, kt_page(a, a->layout.data_gpa) + k) == 0,
			  "the home slot of reported page %llu still holds content",
			  (unsigned long long)k);
	home_after = gmem_homes_resident_bytes();
	kt_verify(a);
	kt_verify(b);
	kt_destroy(a);
	kt_destroy(b);
	dedup_destroy(e);
	printf("virtio_balloon: %llu merged pages reported free by both clones: read zero, no private page left (zero pages %llu -> %llu and %llu -> %llu, the rest on the zero frame), home file %llu -> %llu KiB; both verified\n",
	       (unsigned long long)n, (unsigned long long)za,
	       (unsigned long long)sa.pages_zero, (unsigned long long)zb,
	       (unsigned long long)sb.pages_zero,
	       (unsigned long long)(home_before >> 10), (unsigned long long)(home_after >> 10));
}

int main(void)
{
	struct kvm_sys kvm;
	uint64_t zero_pfn;

	kt_require_kvm("virtio_balloon");
	kt_open(&kvm);
	zero_pfn = procstat_zero_pfn();
	without_dedup(&kvm, zero_pfn);
	with_dedup(&kvm, zero_pfn);
	kvm_sys_close(&kvm);
	return 0;
}
