/*
 * virtio_blk - virtio-blk end to end under /dev/kvm: the test payload's
 * own driver (guest-tools/payload/cmd_virtio.c) against the device
 * (devices/virtio_blk.c) through the virtio-mmio transport, the image file
 * checked from the host.
 *
 *  1. A writable disk: writes (one and four descriptors) land in the image
 *     with the pattern the guest wrote; reads give back what the guest and
 *     what the host wrote; a read past the end is IOERR; GET_ID, FLUSH,
 *     DISCARD and WRITE_ZEROES (the image reads zero there); an unknown
 *     type is UNSUPP.  Malformed chains on purpose (a loop, a buffer
 *     outside RAM, no status byte) make the device NEEDS_RESET; the guest
 *     resets it and carries on.
 *  2. A read-only disk: offered VIRTIO_BLK_F_RO, a write is IOERR and the
 *     image is untouched, reads work.
 *  3. Dedup: two clones whose memory is merged; disk reads land in one's
 *     merged pages, which become its own (unmerged) with the disk's
 *     content, while the other keeps the old content; both verify.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/kvm.h>
#include "devices/virtio_blk.h"
#include "guest-tools/content.h"
#include "tests/integration/kvmtest.h"

#define DISK_BYTES (4u << 20)
#define SECTORS (DISK_BYTES / 512u)

/* One request; returns the status byte.  Checks the command itself ran. */
static uint64_t blk(struct guest *g, uint64_t type, uint64_t sector,
		    uint64_t bytes, uint64_t buf, uint64_t seed, uint64_t flags,
		    struct testdev_result *out)
{
	uint64_t arg[8] = { 0, type, sector, bytes, buf, seed, flags };
	struct testdev_result r = kt_cmd_args(g, 0, FV_CMD_BLK, arg);

	KT_ASSERT(r.status == FV_STATUS_OK, "%s: BLK type %llu: payload status %u",
		  g->cfg.name, (unsigned long long)type, r.status);
	if (out)
		*out = r;
	return r.result[0];
}

static struct testdev_result virtio_init(struct guest *g)
{
	uint64_t arg[8] = { 0 };
	struct testdev_result r = kt_cmd_args(g, 0, FV_CMD_VIRTIO_INIT, arg);

	KT_ASSERT(r.status == FV_STATUS_OK && r.result[0] == VIRTIO_ID_BLOCK,
		  "%s: VIRTIO_INIT status %u, device %llu, Status 0x%llx",
		  g->cfg.name, r.status, (unsigned long long)r.result[0],
		  (unsigned long long)r.result[3]);
	return r;
}

static int make_image(char *path, uint64_t bytes)
{
	int fd;

	strcpy(path, "/tmp/foldvm-vblk.XXXXXX");
	fd = mkstemp(path);
	KT_ASSERT(fd >= 0 && ftruncate(fd, (off_t)bytes) == 0, "image");
	return fd;
}

/* Write / count the pattern in the image from the host. */
static void host_pattern_write(int fd, uint64_t seed, uint64_t off, uint64_t bytes)
{
	uint64_t *buf = malloc(bytes);

	KT_ASSERT(buf, "oom");
	for (uint64_t k = 0; k < bytes / 8; k++)
		buf[k] = fv_blk_pattern(seed, off + 8 * k);
	KT_ASSERT(pwrite(fd, buf, bytes, (off_t)off) == (ssize_t)bytes, "pwrite");
	free(buf);
}

static uint64_t host_pattern_misses(int fd, uint64_t seed, uint64_t off,
				    uint64_t bytes)
{
	uint64_t *buf = malloc(bytes), bad = 0;

	KT_ASSERT(buf, "oom");
	KT_ASSERT(pread(fd, buf, bytes, (off_t)off) == (ssize_t)bytes, "pread");
	for (uint64_t k = 0; k < bytes / 8; k++)
		bad += buf[k] != fv_blk_pattern(seed, off + 8 * k);
	free(buf);
	return bad;
}

static bool host_zero(int fd, uint64_t off, uint64_t bytes)
{
	uint8_t *buf = malloc(bytes);
	bool zero = true;

	KT_ASSERT(buf, "oom");
	KT_ASSERT(pread(fd, buf, bytes, (off_t)off) == (ssize_t)bytes, "pread");
	for (uint64_t k = 0; k < bytes; k++)
		zero &= buf[k] == 0;
	free(buf);
	return zero;
}

static void malformed(struct guest *g, uint64_t kind, const char *what)
{
	uint64_t arg[8] = { 0, kind };
	struct testdev_result r = kt_cmd_args(g, 0, FV_CMD_BLK_BAD, arg);

	KT_ASSERT(r.status == FV_STATUS_OK, "BLK_BAD %s: payload status %u", what, r.status);
	KT_ASSERT(r.result[0] & VIRTIO_STATUS_NEEDS_RESET,
		  "%s: device Status 0x%llx without NEEDS_RESET", what,
		  (unsigned long long)r.result[0]);
	KT_ASSERT(r.result[1] & VIRTIO_MMIO_INT_CONFIG,
		  "%s: no config interrupt (InterruptStatus 0x%llx)", what,
		  (unsigned long long)r.result[1]);
	/* The guest carries on: reset, bring it up again, read. */
	virtio_init(g);
	KT_ASSERT(blk(g, VIRTIO_BLK_T_IN, 2000, 4096, 0, 3333, FV_BLK_CHECK, &r) == 0 &&
		  r.result[2] == 0, "%s: a read after the reset failed", what);
}

static void writable_disk(struct kvm_sys *kvm)
{
	char path[64], spec[256];
	struct testdev_result r;
	struct guest *g;
	int fd = make_image(path, DISK_BYTES);
	uint64_t feat;

	snprintf(spec, sizeof(spec), "name=b1,mem=64M,disk=%s", path);
	g = kt_guest(kvm, NULL, spec);
	r = virtio_init(g);
	feat = r.result[2];
	KT_ASSERT(feat & (1ull << 32), "VERSION_1 not taken");
	KT_ASSERT((feat & (1ull << VIRTIO_BLK_F_FLUSH)) &&
		  (feat & (1ull << VIRTIO_BLK_F_DISCARD)) &&
		  (feat & (1ull << VIRTIO_BLK_F_WRITE_ZEROES)) &&
		  !(feat & (1ull << VIRTIO_BLK_F_RO)), "features 0x%llx",
		  (unsigned long long)feat);
	KT_ASSERT(r.result[4] == SECTORS, "capacity %llu, not %u",
		  (unsigned long long)r.result[4], SECTORS);

	/* guest -> image, one descriptor and four */
	KT_ASSERT(blk(g, VIRTIO_BLK_T_OUT, 8, 65536, 0, 1111, FV_BLK_FILL, &r) == 0,
		  "write: status %llu", (unsigned long long)r.result[0]);
	KT_ASSERT(host_pattern_misses(fd, 1111, 8 * 512, 65536) == 0,
		  "the image does not hold what the guest wrote");
	KT_ASSERT(blk(g, VIRTIO_BLK_T_OUT, 1000, 16384, 0, 2222,
		      FV_BLK_FILL | FV_BLK_SPLIT, NULL) == 0, "split write");
	KT_ASSERT(host_pattern_misses(fd, 2222, 1000 * 512, 16384) == 0,
		  "the image does not hold the split write");
	/* image -> guest: what the guest wrote, and what the host wrote */
	KT_ASSERT(blk(g, VIRTIO_BLK_T_IN, 8, 65536, 0, 1111, FV_BLK_CHECK, &r) == 0 &&
		  r.result[2] == 0 && r.result[1] == 65536 + 1,
		  "read back: status %llu, %llu words differ, used %llu",
		  (unsigned long long)r.result[0], (unsigned long long)r.result[2],
		  (unsigned long long)r.result[1]);
	KT_ASSERT(blk(g, VIRTIO_BLK_T_IN, 1000, 16384, 0, 2222,
		      FV_BLK_CHECK | FV_BLK_SPLIT, &r) == 0 && r.result[2] == 0,
		  "split read back");
	host_pattern_write(fd, 3333, 2000 * 512, 8192);
	KT_ASSERT(blk(g, VIRTIO_BLK_T_IN, 2000, 8192, 0, 3333, FV_BLK_CHECK, &r) == 0 &&
		  r.result[2] == 0, "the guest does not read what the host wrote");
	/* bounds, id, flush, unknown type */
	KT_ASSERT(blk(g, VIRTIO_BLK_T_IN, SECTORS - 2, 4096, 0, 0, 0, NULL) ==
		  VIRTIO_BLK_S_IOERR, "a read past the end was not IOERR");
	KT_ASSERT(blk(g, VIRTIO_BLK_T_OUT, SECTORS, 512, 0, 0, 0, NULL) ==
		  VIRTIO_BLK_S_IOERR, "a write past the end was not IOERR");
	KT_ASSERT(blk(g, VIRTIO_BLK_T_GET_ID, 0, 0, 0, 0, 0, &r) == 0 &&
		  !memcmp(&r.result[4], "b1\0", 3), "GET_ID");
	KT_ASSERT(blk(g, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0, 0, NULL) == 0, "FLUSH");
	KT_ASSERT(blk(g, 99, 0, 0, 0, 0, 0, NULL) == VIRTIO_BLK_S_UNSUPP,
		  "an unknown type was not UNSUPP");
	/* discard and write-zeroes read back as zeros in the image */
	KT_ASSERT(blk(g, VIRTIO_BLK_T_DISCARD, 8, 8192, 0, 0, 0, NULL) == 0, "DISCARD");
	KT_ASSERT(host_zero(fd, 8 * 512, 8192), "discarded sectors are not zero");
	KT_ASSERT(host_pattern_misses(fd, 1111, 24 * 512, 4096) == 0,
		  "DISCARD went past its range");
	KT_ASSERT(blk(g, VIRTIO_BLK_T_WRITE_ZEROES, 1000, 16384, 0, 0, FV_BLK_UNMAP,
		      NULL) == 0, "WRITE_ZEROES");
	KT_ASSERT(host_zero(fd, 1000 * 512, 16384), "write-zeroes sectors are not zero");
	KT_ASSERT(blk(g, VIRTIO_BLK_T_DISCARD, SECTORS - 1, 4096, 0, 0, 0, NULL) ==
		  VIRTIO_BLK_S_IOERR, "a discard past the end was not IOERR");

	malformed(g, FV_BAD_LOOP, "a descriptor loop");
	malformed(g, FV_BAD_OUTSIDE_RAM, "a buffer outside RAM");
	malformed(g, FV_BAD_NO_STATUS, "no status byte");
	KT_ASSERT(g->blk->stats.writes == 2 && g->blk->stats.flushes == 1 &&
		  g->blk->stats.discards == 1 && g->blk->stats.write_zeroes == 1 &&
		  g->blk->stats.errors == 4,
		  "stats: writes %llu flushes %llu discards %llu wz %llu errors %llu",
		  (unsigned long long)g->blk->stats.writes,
		  (unsigned long long)g->blk->stats.flushes,
		  (unsigned long long)g->blk->stats.discards,
		  (unsigned long long)g->blk->stats.write_zeroes,
		  (unsigned long long)g->blk->stats.errors);
	/* Where KVM has ioeventfds every notify came through one, none as an
	 * exit (docs/virtio.md). */
	if (kvm_has_cap(kvm, KVM_CAP_IOEVENTFD))
		KT_ASSERT(g->blk->transport.kicks_eventfd > 0 &&
			  g->blk->transport.kicks_exit == 0,
			  "notifications: %llu by eventfd, %llu by exit",
			  (unsigned long long)g->blk->transport.kicks_eventfd,
			  (unsigned long long)g->blk->transport.kicks_exit);
	printf("virtio_blk: %llu notifications by ioeventfd, %llu by MMIO exit\n",
	       (unsigned long long)g->blk->transport.kicks_eventfd,
	       (unsigned long long)g->blk->transport.kicks_exit);
	kt_destroy(g);
	close(fd);
	unlink(path);
	printf("virtio_blk: writes, reads (1 and 4 descriptors), bounds, id, flush, discard, write-zeroes, unknown type; 3 malformed chains -> NEEDS_RESET, reset, carried on\n");
}

static void read_only_disk(struct kvm_sys *kvm)
{
	char path[64], spec[256];
	struct testdev_result r;
	struct guest *g;
	int fd = make_image(path, DISK_BYTES);

	host_pattern_write(fd, 4444, 0, 65536);
	snprintf(spec, sizeof(spec), "name=r1,mem=64M,disk=%s,disk-ro=on", path);
	g = kt_guest(kvm, NULL, spec);
	r = virtio_init(g);
	KT_ASSERT(r.result[2] & (1ull << VIRTIO_BLK_F_RO), "RO not offered");
	KT_ASSERT(blk(g, VIRTIO_BLK_T_OUT, 0, 4096, 0, 5555, FV_BLK_FILL, NULL) ==
		  VIRTIO_BLK_S_IOERR, "a write to a read-only disk was not IOERR");
	KT_ASSERT(blk(g, VIRTIO_BLK_T_WRITE_ZEROES, 0, 4096, 0, 0, 0, NULL) ==
		  VIRTIO_BLK_S_IOERR, "write-zeroes on a read-only disk was not IOERR");
	KT_ASSERT(host_pattern_misses(fd, 4444, 0, 65536) == 0,
		  "the read-only image changed");
	KT_ASSERT(blk(g, VIRTIO_BLK_T_IN, 0, 65536, 0, 4444, FV_BLK_CHECK, &r) == 0 &&
		  r.result[2] == 0, "reading a read-only disk");
	kt_destroy(g);
	close(fd);
	unlink(path);
	printf("virtio_blk: read-only disk: RO offered, writes IOERR, image unchanged, reads ok\n");
}

static void reads_into_merged_pages(struct kvm_sys *kvm)
{
	const uint64_t n = 64, chunk = 32;  /* pages read; pages per request */
	struct dedup_engine *e = kt_engine(0);
	char path[64], path_b[64], spec[256];
	struct testdev_result r;
	struct guest *a, *b;
	int fd = make_image(path, DISK_BYTES), fd_b = make_image(path_b, DISK_BYTES);

	host_pattern_write(fd, 6666, 0, n * FV_PAGE_SIZE);
	/* Clones: the same content at the same addresses, so page k of a and
	 * page k of b merge onto one frame.  Both have a disk, so that their
	 * layouts (the drivers' scratch pages included) are the same. */
	snprintf(spec, sizeof(spec),
		 "name=m1,mem=32M,zero=0,shared=100,layout=clones,dedup=on,domain=vb,disk=%s",
		 path);
	a = kt_guest(kvm, e, spec);
	snprintf(spec, sizeof(spec),
		 "name=m2,mem=32M,zero=0,shared=100,layout=clones,dedup=on,domain=vb,disk=%s",
		 path_b);
	b = kt_guest(kvm, e, spec);
	kt_fill(a);
	kt_fill(b);
	virtio_init(a);
	kt_wait_merged(e, a, b, n);
	for (uint64_t k = 0; k < n; k += chunk)
		KT_ASSERT(blk(a, VIRTIO_BLK_T_IN, k * 8, chunk * FV_PAGE_SIZE,
			      a->layout.data_gpa + k * FV_PAGE_SIZE, 6666,
			      FV_BLK_CHECK | FV_BLK_ADOPT, &r) == 0 && r.result[2] == 0,
			  "read into merged pages: status %llu, %llu words differ",
			  (unsigned long long)r.result[0], (unsigned long long)r.result[2]);
	KT_ASSERT(kt_same_frames(a, b, n) == 0,
		  "pages the disk wrote still share a frame with the other guest");
	kt_verify(a);
	kt_verify(b);
	kt_destroy(a);
	kt_destroy(b);
	dedup_destroy(e);
	close(fd);
	unlink(path);
	close(fd_b);
	unlink(path_b);
	printf("virtio_blk: disk reads into %llu merged pages made them the reader's own with the disk's content; the other guest kept its content; both verified\n",
	       (unsigned long long)n);
}

int main(void)
{
	struct kvm_sys kvm;

	kt_require_kvm("virtio_blk");
	kt_open(&kvm);
	writable_disk(&kvm);
	read_only_disk(&kvm);
	reads_into_merged_pages(&kvm);
	kvm_sys_close(&kvm);
	return 0;
}
