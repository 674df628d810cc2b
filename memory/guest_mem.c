#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include <sys/syscall.h>
#include "memory/guest_mem.h"
#include "memory/home.h"
#include "lib/uffd.h"

int gmem_check_size(uint64_t size, struct fv_error *err)
{
	if (size < GMEM_MIN_SIZE)
		return fv_err(err, FV_E_INVAL,
			      "guest memory of %llu bytes is below the minimum of %llu MiB",
			      (unsigned long long)size,
			      (unsigned long long)(GMEM_MIN_SIZE >> 20));
	if (size > GMEM_MAX_SIZE)
		return fv_err(err, FV_E_INVAL,
			      "guest memory of %llu MiB is above the maximum of %llu GiB",
			      (unsigned long long)(size >> 20),
			      (unsigned long long)(GMEM_MAX_SIZE >> 30));
	if (size % GMEM_PAGE_SIZE)
		return fv_err(err, FV_E_INVAL,
			      "guest memory size %llu is not a multiple of 4 KiB",
			      (unsigned long long)size);
	return 0;
}

/*
 * Guest RAM between two PROT_NONE guard pages.  The guards keep the kernel
 * from merging it with a neighbouring mapping, so it is always a VMA (or,
 * once pages are merged onto frames, a run of VMAs) of its own and the
 * kernel's per-VMA accounting of it is exact; they also catch overruns.
 * No MAP_NORESERVE on the RAM: the overcommit check then refuses a guest
 * bigger than the host could ever back, here, with a clear error (a
 * private writable file mapping is charged like anonymous memory).
 * fd < 0: anonymous; otherwise a private mapping of fd from offset 0.
 */
static uint8_t *gmem_map_guarded(uint64_t size, int fd)
{
	uint8_t *base = mmap(NULL, size + 2 * GMEM_PAGE_SIZE, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	void *ram;

	if (base == MAP_FAILED)
		return NULL;
	ram = mmap(base + GMEM_PAGE_SIZE, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_FIXED | (fd < 0 ? MAP_ANONYMOUS : 0), fd, 0);
	if (ram == MAP_FAILED) {
		int e = errno;

		munmap(base, size + 2 * GMEM_PAGE_SIZE);
		errno = e;
		return NULL;
	}
	return ram;
}

static void gmem_unmap(struct guest_mem *gm)
{
	if (gm->host)
		munmap(gm->host - GMEM_PAGE_SIZE, gm->size + 2 * GMEM_PAGE_SIZE);
	gm->host = NULL;
	home_release(gm->home);
	gm->home = NULL;
}

/*
 * Home rule 1 (home.c): before anyone can touch the RAM, every page maps
 * the kernel's zero page, so that no read ever falls through to the home
 * file.  UFFDIO_ZEROPAGE on a private mapping fills only the page table
 * (it never looks at the file), and needs a MISSING registration: a
 * userfaultfd of our own, for the duration.  Costs the page tables of the
 * whole RAM (2 MiB per GiB) up front.
 */
static int gmem_map_zero_pages(struct guest_mem *gm, struct fv_error *err)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)gm->host, .len = gm->size },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	struct uffdio_zeropage z = { 0 };
	uint64_t done = 0;
	int uffd = fv_userfaultfd(O_CLOEXEC, err);
	int r = 0;

	if (uffd < 0)
		return -1;
	if (ioctl(uffd, UFFDIO_API, &api) < 0 || ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
		r = fv_err_errno(err, FV_E_SYS, errno,
				 "userfaultfd MISSING registration of a home mapping");
		goto out;
	}
	while (done < gm->size) {
		z.range.start = (uintptr_t)gm->host + done;
		z.range.len = gm->size - done;
		/* Success may be partial (a signal): it says how far it got. */
		if (ioctl(uffd, UFFDIO_ZEROPAGE, &z) == 0 && z.zeropage > 0) {
			done += (uint64_t)z.zeropage;
			continue;
		}
		if (errno == EAGAIN)
			continue; /* the address space changed under it: again */
		r = fv_err_errno(err, FV_E_SYS, errno, "UFFDIO_ZEROPAGE over guest RAM");
		break;
	}
	ioctl(uffd, UFFDIO_UNREGISTER, &reg.range);
out:
	close(uffd);
	return r;
}

unsigned gmem_layout_ranges(enum gmem_layout layout, uint64_t size,
			    struct gmem_range out[GMEM_MAX_RANGES])
{
	if (size == 0)
		return 0;
	if (layout == GMEM_LAYOUT_FLAT || size <= GMEM_HOLE_START) {
		out[0] = (struct gmem_range){ .gpa = 0, .size = size, .page = 0 };
		return 1;
	}
	out[0] = (struct gmem_range){ .gpa = 0, .size = GMEM_HOLE_START, .page = 0 };
	out[1] = (struct gmem_range){
		.gpa = GMEM_HIGH_START, .size = size - GMEM_HOLE_START,
		.page = GMEM_HOLE_START / GMEM_PAGE_SIZE,
	};
	return 2;
}

/* The dirty log of memslot i lands in the bitmap from word page/64 on: a
 * range must start on a word. */
_Static_assert(GMEM_HOLE_START % (64 * GMEM_PAGE_SIZE) == 0,
	       "the high RAM range must start on a dirty-bitmap word");
_Static_assert(GMEM_HIGH_START > GMEM_HOLE_START, "the hole is empty");
/* KVM_CLEAR_DIRTY_LOG counts a slot's pages in 32 bits. */
_Static_assert(GMEM_MAX_SIZE / GMEM_PAGE_SIZE <= UINT32_MAX, "a memslot's pages fit 32 bits");

/* Memslot i: range i of the layout over its part of the host mapping. */
static int gmem_set_slot(const struct guest_mem *gm, unsigned i, uint32_t flags,
			 bool remove, struct fv_error *err)
{
	const struct gmem_range *r = &gm->range[i];
	struct kvm_userspace_memory_region region = {
		.slot = i,
		.flags = flags,
		.guest_phys_addr = r->gpa,
		.memory_size = remove ? 0 : r->size,
		.userspace_addr = (uintptr_t)(gm->host + r->page * GMEM_PAGE_SIZE),
	};

	if (ioctl(gm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return fv_err_errno(err, FV_E_KVM, errno,
				    "KVM_SET_USER_MEMORY_REGION (slot %u: %llu MiB at 0x%llx, flags 0x%x)",
				    i, (unsigned long long)(r->size >> 20),
				    (unsigned long long)r->gpa, flags);
	return 0;
}

/* Delete the first n memslots (before the mapping goes: KVM must never
 * see a memslot without a mapping behind it). */
static void gmem_remove_slots(struct guest_mem *gm, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		gmem_set_slot(gm, i, 0, true, NULL);
}

static int gmem_create_common(struct guest_mem *gm, int vm_fd, uint64_t size,
			      enum gmem_layout layout, const char *home,
			      struct fv_error *err)
{
	memset(gm, 0, sizeof(*gm));
	gm->vm_fd = -1;
	gm->uffd = -1;
	if (gmem_check_size(size, err))
		return -1;
	if (layout != GMEM_LAYOUT_FLAT && layout != GMEM_LAYOUT_PC)
		return fv_err(err, FV_E_INVAL, "unknown guest memory layout %d", (int)layout);
	if (home) {
		gm->home = home_acquire(home, size, err);
		if (!gm->home)
			return -1;
	}
	gm->host = gmem_map_guarded(size, gm->home ? home_fd(gm->home) : -1);
	if (!gm->host) {
		fv_err_errno(err, FV_E_NOMEM, errno, "cannot map %llu MiB of guest memory",
			     (unsigned long long)(size >> 20));
		gmem_unmap(gm);
		return -1;
	}
	gm->size = size;
	gm->layout = layout;
	gm->nr_ranges = gmem_layout_ranges(layout, size, gm->range);
	/* Home-backed RAM always merges: no THP from the start (shmem THP
	 * would map the home's huge pages; a later MADV_NOHUGEPAGE on part of
	 * it would split the VMA). */
	if (gm->home && madvise(gm->host, size, MADV_NOHUGEPAGE) < 0) {
		fv_err_errno(err, FV_E_SYS, errno, "madvise(MADV_NOHUGEPAGE)");
		gmem_unmap(gm);
		return -1;
	}
	if (gm->home && gmem_map_zero_pages(gm, err)) {
		gmem_unmap(gm);
		return -1;
	}
	if (vm_fd < 0)
		return 0;
	gm->vm_fd = vm_fd;
	for (unsigned i = 0; i < gm->nr_ranges; i++) {
		if (gmem_set_slot(gm, i, 0, false, err)) {
			gmem_remove_slots(gm, i);
			gm->vm_fd = -1;
			gmem_unmap(gm);
			return -1;
		}
	}
	return 0;
}

int gmem_create(struct guest_mem *gm, int vm_fd, uint64_t size,
		struct fv_error *err)
{
	return gmem_create_common(gm, vm_fd, size, GMEM_LAYOUT_FLAT, NULL, err);
}

int gmem_create_in_home(struct guest_mem *gm, int vm_fd, uint64_t size,
			const char *home, struct fv_error *err)
{
	return gmem_create_common(gm, vm_fd, size, GMEM_LAYOUT_FLAT, home, err);
}

int gmem_create_layout(struct guest_mem *gm, int vm_fd, uint64_t size,
		       enum gmem_layout layout, const char *home,
		       struct fv_error *err)
{
	return gmem_create_common(gm, vm_fd, size, layout, home, err);
}

void gmem_destroy(struct guest_mem *gm)
{
	if (gm->vm_fd >= 0) {
		gmem_remove_slots(gm, gm->nr_ranges);
		gm->vm_fd = -1;
	}
	gmem_unmap(gm);
	free(gm->host_dirty);
	gm->host_dirty = NULL;
	gm->size = 0;
	gm->nr_ranges = 0;
	gm->uffd = -1;
}

/*
 * The one translation of guest-physical addresses: the RAM range that
 * holds all of [gpa, gpa + len), or NULL.  len 0 may sit at a range's end.
 * Written so that nothing overflows.
 */
static const struct gmem_range *gmem_find(const struct guest_mem *gm, uint64_t gpa,
					  uint64_t len)
{
	if (!gm->host)
		return NULL;
	for (unsigned i = 0; i < gm->nr_ranges; i++) {
		const struct gmem_range *r = &gm->range[i];

		if (gpa >= r->gpa && gpa - r->gpa <= r->size &&
		    len <= r->size - (gpa - r->gpa))
			return r;
	}
	return NULL;
}

/* RAM page index of gpa inside range r. */
static uint64_t range_page(const struct gmem_range *r, uint64_t gpa)
{
	return r->page + (gpa - r->gpa) / GMEM_PAGE_SIZE;
}

/* Offset in the host mapping of gpa inside range r. */
static uint64_t range_offset(const struct gmem_range *r, uint64_t gpa)
{
	return r->page * GMEM_PAGE_SIZE + (gpa - r->gpa);
}

uint64_t gmem_page_to_gpa(const struct guest_mem *gm, uint64_t page)
{
	for (unsigned i = 0; i < gm->nr_ranges; i++) {
		const struct gmem_range *r = &gm->range[i];

		if (page >= r->page && page - r->page < r->size / GMEM_PAGE_SIZE)
			return r->gpa + (page - r->page) * GMEM_PAGE_SIZE;
	}
	return UINT64_MAX;
}

/* Why [gpa, gpa + len) is not RAM, in words: in the hole, across a range's
 * end, or beyond RAM; the layout named. */
static int gmem_range_error(const struct guest_mem *gm, uint64_t gpa, uint64_t len,
			    struct fv_error *err)
{
	char map[96];
	const char *why = "outside guest RAM";

	if (gm->nr_ranges == 2)
		snprintf(map, sizeof(map), "RAM [0, 0x%llx) and [0x%llx, 0x%llx)",
			 (unsigned long long)gm->range[0].size,
			 (unsigned long long)gm->range[1].gpa,
			 (unsigned long long)(gm->range[1].gpa + gm->range[1].size));
	else
		snprintf(map, sizeof(map), "RAM [0, 0x%llx)", (unsigned long long)gm->size);
	for (unsigned i = 0; i < gm->nr_ranges; i++) {
		const struct gmem_range *r = &gm->range[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			why = i + 1 < gm->nr_ranges ? "runs past the end of low RAM into the 32-bit hole" :
			      "runs past the end of guest RAM";
	}
	if (gm->layout == GMEM_LAYOUT_PC && gpa >= GMEM_HOLE_START && gpa < GMEM_HIGH_START)
		why = "is in the 32-bit hole (MMIO, not RAM)";
	return fv_err(err, FV_E_RANGE, "guest access [0x%llx, +0x%llx) %s: %s",
		      (unsigned long long)gpa, (unsigned long long)len, why, map);
}

int gmem_gpa_to_page(const struct guest_mem *gm, uint64_t gpa, uint64_t *page,
		     struct fv_error *err)
{
	const struct gmem_range *r = gmem_find(gm, gpa, 1);

	if (!r)
		return gmem_range_error(gm, gpa, 1, err);
	*page = range_page(r, gpa);
	return 0;
}

/* Devices' writes are not in KVM's log: record them here, by the RAM
 * offsets [off, off + len) of the host mapping (= page index * 4 KiB). */
static void gmem_mark_host_dirty(struct guest_mem *gm, uint64_t off, uint64_t len)
{
	if (!gm->host_dirty || len == 0)
		return;
	for (uint64_t g = off / GMEM_PAGE_SIZE; g <= (off + len - 1) / GMEM_PAGE_SIZE; g++)
		__atomic_fetch_or(&gm->host_dirty[g / 64], 1ull << (g % 64),
				  __ATOMIC_RELEASE);
}

bool gmem_range_ok(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	return gmem_find(gm, gpa, len) != NULL;
}

int gmem_check_range(const struct guest_mem *gm, uint64_t gpa, uint64_t len,
		     struct fv_error *err)
{
	return gmem_find(gm, gpa, len) ? 0 : gmem_range_error(gm, gpa, len, err);
}

/* The RAM offset (in the host mapping) of [gpa, gpa + len), which must be
 * RAM inside one range: else FV_E_RANGE.  Every access goes through here. */
static int gmem_offset(const struct guest_mem *gm, uint64_t gpa, uint64_t len,
		       uint64_t *off, struct fv_error *err)
{
	const struct gmem_range *r = gmem_find(gm, gpa, len);

	if (!r)
		return gmem_range_error(gm, gpa, len, err);
	*off = range_offset(r, gpa);
	return 0;
}

int gmem_read(const struct guest_mem *gm, uint64_t gpa, void *buf,
	      uint64_t len, struct fv_error *err)
{
	uint64_t off;

	if (gmem_offset(gm, gpa, len, &off, err))
		return -1;
	memcpy(buf, gm->host + off, len);
	return 0;
}

int gmem_write(struct guest_mem *gm, uint64_t gpa, const void *buf,
	       uint64_t len, struct fv_error *err)
{
	uint64_t off;

	if (gmem_offset(gm, gpa, len, &off, err))
		return -1;
	/*
	 * Mark before writing: the engine must never see this page clean
	 * after it was written.  If the page is write-protected for a merge,
	 * the memcpy blocks in the kernel until the merge is done, and then
	 * lands in the guest's own (copied-on-write) page.
	 */
	gmem_mark_host_dirty(gm, off, len);
	memcpy(gm->host + off, buf, len);
	return 0;
}

int gmem_fill(struct guest_mem *gm, uint64_t gpa, int byte, uint64_t len,
	      struct fv_error *err)
{
	uint64_t off;

	if (gmem_offset(gm, gpa, len, &off, err))
		return -1;
	gmem_mark_host_dirty(gm, off, len);
	memset(gm->host + off, byte, len);
	return 0;
}

static bool page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[GMEM_PAGE_SIZE];

	return !memcmp(p, zero, GMEM_PAGE_SIZE);
}

int gmem_release(struct guest_mem *gm, uint64_t gpa, uint64_t len,
		 uint64_t *written, struct fv_error *err)
{
	uint64_t n = 0, base;

	if (written)
		*written = 0;
	if (gpa % GMEM_PAGE_SIZE || len % GMEM_PAGE_SIZE)
		return fv_err(err, FV_E_INVAL, "release of 0x%llx+%llu: not whole pages",
			      (unsigned long long)gpa, (unsigned long long)len);
	if (gmem_offset(gm, gpa, len, &base, err))
		return -1;
	/* No engine (anonymous RAM, maybe KSM's): the kernel's zero page from
	 * here on, and KSM drops its own references. */
	if (gm->uffd < 0 && !gm->home) {
		if (len && madvise(gm->host + base, len, MADV_DONTNEED) < 0)
			return fv_err_errno(err, FV_E_SYS, errno, "MADV_DONTNEED");
		return 0;
	}
	/*
	 * The engine owns which pages are merged, zero or private; a page is
	 * only ever changed here the way a device write changes it, so its
	 * merge protocol (write-protection, copy-on-write, the dirty bit) has
	 * nothing new to handle.  Reading a page first keeps pages that are
	 * already zero from being allocated just to be zeroed again: the guest
	 * gave them up, so a write racing with the read is the guest's own
	 * business (the balloon protocol forbids it).
	 */
	for (uint64_t off = base; off < base + len; off += GMEM_PAGE_SIZE) {
		if (page_is_zero(gm->host + off))
			continue;
		gmem_mark_host_dirty(gm, off, GMEM_PAGE_SIZE);
		memset(gm->host + off, 0, GMEM_PAGE_SIZE);
		n++;
	}
	if (written)
		*written = n;
	return 0;
}

static int gmem_check_gfn(const struct guest_mem *gm, uint64_t gfn,
			  uint64_t npages, struct fv_error *err)
{
	if (gfn < gmem_pages(gm) && npages <= gmem_pages(gm) - gfn)
		return 0;
	return fv_err(err, FV_E_RANGE, "guest pages [%llu, +%llu) outside %llu pages",
		      (unsigned long long)gfn, (unsigned long long)npages,
		      (unsigned long long)gmem_pages(gm));
}

/* Every memslot with these flags (KVM_MEM_LOG_DIRTY_PAGES). */
static int gmem_set_slots_flags(struct guest_mem *gm, uint32_t flags, struct fv_error *err)
{
	for (unsigned i = 0; i < gm->nr_ranges; i++)
		if (gmem_set_slot(gm, i, flags, false, err))
			return -1;
	return 0;
}

static int gmem_enable_dirty_log(struct guest_mem *gm, struct fv_error *err)
{
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
		.args = { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE },
	};

	if (gm->vm_fd < 0)
		return 0; /* no KVM (unit tests): host writes are still tracked */
	/*
	 * Manual protect: KVM_GET_DIRTY_LOG only reads the log, and the
	 * engine clears exactly what it consumed, page by page after a merge.
	 */
	if (ioctl(gm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) <= 0 ||
	    ioctl(gm->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
		return fv_err(err, FV_E_KVM,
			      "KVM lacks KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 (needed for dedup)");
	if (gmem_set_slots_flags(gm, KVM_MEM_LOG_DIRTY_PAGES, err))
		return -1;
	gm->dirty_log = true;
	return 0;
}

int gmem_dedup_enable(struct guest_mem *gm, int uffd, struct fv_error *err)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)gm->host, .len = gm->size },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	if (!gm->host)
		return fv_err(err, FV_E_STATE, "guest memory not mapped");
	/* Home-backed RAM: a page the engine dropped (a zero page) has no
	 * entry until its next touch, which must map the zero page, not fall
	 * through to the home file (home rule 3): the engine's fault thread
	 * answers MISSING faults. */
	if (gm->home)
		reg.mode |= UFFDIO_REGISTER_MODE_MISSING;
	if (gm->uffd == uffd && gm->host_dirty)
		return 0; /* dedup was on before (switched off and on again) */
	if (gm->host_dirty)
		return fv_err(err, FV_E_STATE,
			      "guest memory is already with another dedup engine");
	gm->bitmap_words = (gmem_pages(gm) + 63) / 64;
	gm->host_dirty = calloc(gm->bitmap_words, sizeof(uint64_t));
	if (!gm->host_dirty)
		return fv_err(err, FV_E_NOMEM, "dirty bitmap");
	/* Merging 4 KiB pieces of a huge page would split it; keep THP off
	 * the guest RAM of guests that merge (KSM's baseline does the same). */
	if (madvise(gm->host, gm->size, MADV_NOHUGEPAGE) < 0) {
		fv_err_errno(err, FV_E_SYS, errno, "madvise(MADV_NOHUGEPAGE)");
		goto fail;
	}
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
		fv_err_errno(err, FV_E_SYS, errno,
			     "userfaultfd write-protect registration");
		goto fail;
	}
	if (gmem_enable_dirty_log(gm, err) == 0) {
		gm->uffd = uffd;
		return 0;
	}
	ioctl(uffd, UFFDIO_UNREGISTER, &reg.range);
fail:
	/* All or nothing: a half-enabled guest would pass the check above
	 * on a retry, with no dirty log. */
	free(gm->host_dirty);
	gm->host_dirty = NULL;
	gm->bitmap_words = 0;
	return -1;
}

int gmem_ksm_enable(struct guest_mem *gm, struct fv_error *err)
{
	/* Same THP policy as foldvm's engine, so both merge 4 KiB pages. */
	if (madvise(gm->host, gm->size, MADV_NOHUGEPAGE) < 0 ||
	    madvise(gm->host, gm->size, MADV_MERGEABLE) < 0)
		return fv_err_errno(err, FV_E_SYS, errno,
				    "madvise(MADV_MERGEABLE) (kernel without KSM?)");
	return 0;
}

const uint8_t *gmem_page_view(const struct guest_mem *gm, uint64_t gfn)
{
	return gfn < gmem_pages(gm) ? gm->host + gfn * GMEM_PAGE_SIZE : NULL;
}

const void *gmem_page_hva(const struct guest_mem *gm, uint64_t gfn)
{
	return gmem_page_view(gm, gfn);
}

int gmem_protect(struct guest_mem *gm, uint64_t gfn, uint64_t npages, bool wp,
		 struct fv_error *err)
{
	struct uffdio_writeprotect w = {
		.mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	if (gmem_check_gfn(gm, gfn, npages, err))
		return -1;
	w.range.start = (uintptr_t)(gm->host + gfn * GMEM_PAGE_SIZE);
	w.range.len = npages * GMEM_PAGE_SIZE;
	/* Without WP_UNPOPULATED (Linux < 6.4) protecting a page with no
	 * entry does not hold: a write would populate it unseen.  A read puts
	 * an entry there first (the zero page for untouched anonymous memory,
	 * the engine's fault thread answers a dropped home page's MISSING
	 * fault), and the protection lands on that entry.
	 *
	 * The window: an entry the kernel drops between this read and the
	 * ioctl below (reclaim of a clean page, or a migration that leaves
	 * no entry) leaves the page unprotected, and a guest write landing
	 * there before the merge's memcmp would be caught by it (the copy
	 * differs: the merge is dropped), but one landing between the memcmp
	 * and the mapping would not.  Anonymous pages reclaimed keep a swap
	 * entry, which 6.1 protects; the window is then a shmem page of a
	 * home file reclaimed within microseconds of its read.  Kernels with
	 * WP_UNPOPULATED (6.4 on, every host foldvm supports for production
	 * and CI) never take this path; the nested bed (6.1) does. */
	if (wp && !fv_uffd_wp_unpopulated())
		for (uint64_t i = 0; i < npages; i++)
			(void)*(volatile const uint8_t *)(gm->host + (gfn + i) * GMEM_PAGE_SIZE);
	if (ioctl(gm->uffd, UFFDIO_WRITEPROTECT, &w) < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "UFFDIO_WRITEPROTECT(%s) gfn %llu",
				    wp ? "on" : "off", (unsigned long long)gfn);
	return 0;
}

int gmem_wake(struct guest_mem *gm, uint64_t gfn, uint64_t npages,
	      struct fv_error *err)
{
	struct uffdio_range r;

	if (gmem_check_gfn(gm, gfn, npages, err))
		return -1;
	r.start = (uintptr_t)(gm->host + gfn * GMEM_PAGE_SIZE);
	r.len = npages * GMEM_PAGE_SIZE;
	if (ioctl(gm->uffd, UFFDIO_WAKE, &r) < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "UFFDIO_WAKE gfn %llu",
				    (unsigned long long)gfn);
	return 0;
}

int gmem_map_frame(struct guest_mem *gm, uint64_t gfn, int fd, uint64_t offset,
		   struct fv_error *err)
{
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_WP };
	uint8_t *addr;

	/* The page number first: a wild one must not make an address. */
	if (gmem_check_gfn(gm, gfn, 1, err))
		return -1;
	addr = gm->host + gfn * GMEM_PAGE_SIZE;
	reg.range.start = (uintptr_t)addr;
	reg.range.len = GMEM_PAGE_SIZE;
	/*
	 * MAP_FIXED replaces the old page atomically for every other thread:
	 * a vCPU sees either the old page (write-protected, so it waits) or
	 * the frame.  KVM follows through its MMU notifier.
	 */
	if (mmap(addr, GMEM_PAGE_SIZE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_FIXED, fd, (off_t)offset) == MAP_FAILED)
		return fv_err_errno(err, errno == ENOMEM ? FV_E_NOMEM : FV_E_SYS,
				    errno, "mapping a frame at gfn %llu",
				    (unsigned long long)gfn);
	/* The new VMA is not registered: register it so this page can be
	 * write-protected for a later merge after it was copied on write. */
	if (ioctl(gm->uffd, UFFDIO_REGISTER, &reg) < 0)
		return fv_err_errno(err, FV_E_SYS, errno,
				    "userfaultfd registration of gfn %llu",
				    (unsigned long long)gfn);
	return 0;
}

/* Drop the protection a zap of a write-protected file page left behind
 * (a uffd-wp marker survives MADV_DONTNEED on file mappings), waking the
 * writers: the entry is then empty. */
static int gmem_release_marker(struct guest_mem *gm, uint64_t gfn, struct fv_error *err)
{
	return gmem_protect(gm, gfn, 1, false, err);
}

static int gmem_dontneed(struct guest_mem *gm, uint64_t gfn, struct fv_error *err)
{
	if (madvise(gm->host + gfn * GMEM_PAGE_SIZE, GMEM_PAGE_SIZE,
		    MADV_DONTNEED) < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "MADV_DONTNEED gfn %llu",
				    (unsigned long long)gfn);
	return 0;
}

int gmem_populate_write(struct guest_mem *gm, uint64_t gfn, uint64_t npages,
			struct fv_error *err)
{
	if (gfn > gmem_pages(gm) || npages > gmem_pages(gm) - gfn)
		return fv_err(err, FV_E_RANGE, "pages %llu+%llu are not guest RAM",
			      (unsigned long long)gfn, (unsigned long long)npages);
	/* A fault of the kernel's making, page by page, under mmap_lock for
	 * reading: a guest writing the same pages meanwhile either made its
	 * copy first (then this leaves it alone) or writes into this one. */
	if (madvise(gm->host + gfn * GMEM_PAGE_SIZE, npages * GMEM_PAGE_SIZE,
		    MADV_POPULATE_WRITE) < 0)
		return fv_err_errno(err, errno == ENOMEM ? FV_E_NOMEM : FV_E_SYS, errno,
				    "MADV_POPULATE_WRITE of gfn %llu+%llu",
				    (unsigned long long)gfn, (unsigned long long)npages);
	return 0;
}

/* Map the kernel's zero page at an empty entry (and wake whoever waits on
 * it); EEXIST: a fault got there first, which mapped the same. */
static int gmem_zero_entry(struct guest_mem *gm, uint64_t gfn, struct fv_error *err)
{
	struct uffdio_zeropage z = {
		.range = { .start = (uintptr_t)(gm->host + gfn * GMEM_PAGE_SIZE),
			   .len = GMEM_PAGE_SIZE },
	};

	if (ioctl(gm->uffd, UFFDIO_ZEROPAGE, &z) == 0 || errno == EEXIST)
		return 0;
	return fv_err_errno(err, FV_E_SYS, errno, "UFFDIO_ZEROPAGE gfn %llu",
			    (unsigned long long)gfn);
}

int gmem_discard(struct guest_mem *gm, uint64_t gfn, struct fv_error *err)
{
	if (gmem_check_gfn(gm, gfn, 1, err))
		return -1;
	if (!gm->home)
		return gmem_dontneed(gm, gfn, err);
	/*
	 * Home rule 3: only over a slot reserved for zeros.  Then the entry
	 * is emptied (zap, marker released: a writer waiting on the page
	 * wakes and faults) and the zero page mapped at once; a fault in
	 * between is a MISSING fault, answered with the same zero page.  The
	 * entry full again, the slot may take content later.
	 */
	if (home_reserve_zero(gm->home, gfn, err) || gmem_dontneed(gm, gfn, err) ||
	    gmem_release_marker(gm, gfn, err) || gmem_zero_entry(gm, gfn, err))
		return -1;
	home_unreserve_zero(gm->home, gfn);
	return 0;
}

int gmem_merge_home(struct guest_mem *gm, uint64_t gfn, struct fv_error *err)
{
	if (gmem_check_gfn(gm, gfn, 1, err))
		return -1;
	if (!gm->home)
		return fv_err(err, FV_E_STATE, "guest memory has no home");
	/* The reference first: the slot cannot empty under the page. */
	if (home_ref(gm->home, gfn, err))
		return -1;
	/*
	 * Dropping the private copy leaves the entry empty but for the
	 * write-protection marker: a reader maps the home page, a writer
	 * waits.  Releasing it wakes the writers, who copy the home page on
	 * write - the same as after a frame merge, without a new mapping.
	 */
	if (gmem_dontneed(gm, gfn, err)) {
		gmem_home_put(gm, gfn);
		return -1;
	}
	/* The page reads the slot from here on, so the merge stands whatever
	 * the release says: a writer it left waiting faults again, and the
	 * fault thread releases the page (dedup/fault.c). */
	gmem_release_marker(gm, gfn, NULL);
	return 0;
}

/*
 * The home file mapped again at gfn, as gmem_create_in_home() mapped it
 * (offset = RAM offset) and as gmem_dedup_enable() set it up (no THP,
 * registered for write-protect and MISSING faults): the same flags as the
 * neighbouring home mappings, so the kernel merges them into one VMA.  The
 * entry is empty: a reader sees the slot, or - a hole - faults MISSING,
 * which the engine answers with the zero page (home rule 3).  Between the
 * mmap and the registration a reader of a hole would make shmem allocate a
 * page of zeros in the slot: zeros, never anyone's data (the caller holds
 * the slot's reference or its zero reservation), at worst a page of the
 * home held until the slot is next punched.  The writers that waited on the
 * old page are woken: they fault again on the new mapping.
 */
static int gmem_home_remap(struct guest_mem *gm, uint64_t gfn, struct fv_error *err)
{
	uint8_t *addr = gm->host + gfn * GMEM_PAGE_SIZE;
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)addr, .len = GMEM_PAGE_SIZE },
		.mode = UFFDIO_REGISTER_MODE_WP | UFFDIO_REGISTER_MODE_MISSING,
	};

	if (mmap(addr, GMEM_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED,
		 home_fd(gm->home), (off_t)(gfn * GMEM_PAGE_SIZE)) == MAP_FAILED)
		return fv_err_errno(err, errno == ENOMEM ? FV_E_NOMEM : FV_E_SYS, errno,
				    "mapping the home at gfn %llu", (unsigned long long)gfn);
	/* From here on the page reads its slot: the remap stands.  Should
	 * either call fail, the page merely stays a VMA of its own (no THP
	 * flag) or cannot be write-protected, which a later merge of it
	 * reports (gmem_protect fails). */
	(void)madvise(addr, GMEM_PAGE_SIZE, MADV_NOHUGEPAGE);
	(void)ioctl(gm->uffd, UFFDIO_REGISTER, &reg);
	gmem_wake(gm, gfn, 1, NULL);
	return 0;
}

int gmem_discard_rehome(struct guest_mem *gm, uint64_t gfn, struct fv_error *err)
{
	if (gmem_check_gfn(gm, gfn, 1, err))
		return -1;
	if (!gm->home)
		return fv_err(err, FV_E_STATE, "guest memory has no home");
	/* Home rule 3, as in gmem_discard: the slot reserved for zeros, the
	 * entry emptied (here by the new mapping) and the zero page mapped. */
	if (home_reserve_zero(gm->home, gfn, err))
		return -1;
	if (gmem_home_remap(gm, gfn, err)) {
		home_unreserve_zero(gm->home, gfn); /* the old page is still there */
		return -1;
	}
	/* The zero page now; if it cannot be mapped the slot stays reserved
	 * (it never gets content) and a touch faults MISSING: the zero page. */
	if (gmem_zero_entry(gm, gfn, NULL) == 0)
		home_unreserve_zero(gm->home, gfn);
	return 0;
}

int gmem_merge_rehome(struct guest_mem *gm, uint64_t gfn, struct fv_error *err)
{
	if (gmem_check_gfn(gm, gfn, 1, err))
		return -1;
	if (!gm->home)
		return fv_err(err, FV_E_STATE, "guest memory has no home");
	/* The reference first: the slot cannot empty under the page. */
	if (home_ref(gm->home, gfn, err))
		return -1;
	if (gmem_home_remap(gm, gfn, err)) {
		gmem_home_put(gm, gfn);
		return -1;
	}
	return 0;
}

static int gmem_kvm_clear(struct guest_mem *gm, unsigned slot, uint64_t first,
			  uint32_t npages, uint64_t *bits, struct fv_error *err)
{
	struct kvm_clear_dirty_log c = {
		.slot = slot,
		.num_pages = npages,
		.first_page = first,
		.dirty_bitmap = bits,
	};

	if (ioctl(gm->vm_fd, KVM_CLEAR_DIRTY_LOG, &c) < 0)
		return fv_err_errno(err, FV_E_KVM, errno, "KVM_CLEAR_DIRTY_LOG (slot %u)", slot);
	return 0;
}

static bool bitmap_any(const uint64_t *bitmap, size_t words)
{
	for (size_t w = 0; w < words; w++)
		if (bitmap[w])
			return true;
	return false;
}

/*
 * KVM's log of memslot i, written where range i's pages are in the RAM
 * bitmap: bit b of the slot's log is RAM page range[i].page + b.  A range
 * starts on a bitmap word (the static assertion above), and a range that
 * another one follows ends on one (3 GiB of pages), so KVM's writes of
 * whole words, rounded up, never touch another range's bits.
 */
static int gmem_fetch_slot(struct guest_mem *gm, unsigned i, uint64_t *bitmap,
			   struct fv_error *err)
{
	const struct gmem_range *r = &gm->range[i];
	uint64_t *bits = bitmap + r->page / 64;
	uint64_t npages = r->size / GMEM_PAGE_SIZE;
	struct kvm_dirty_log log = { .slot = i, .dirty_bitmap = bits };

	if (ioctl(gm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		return fv_err_errno(err, FV_E_KVM, errno, "KVM_GET_DIRTY_LOG (slot %u)", i);
	/*
	 * Re-arm exactly what was returned.  A write between GET and CLEAR to
	 * a page already in the snapshot loses its log bit, which is
	 * harmless: the caller reads that page's content only after this
	 * returns, so it sees that write.  Nothing returned (an idle guest):
	 * nothing to re-arm.
	 */
	if (bitmap_any(bits, (npages + 63) / 64) &&
	    gmem_kvm_clear(gm, i, 0, (uint32_t)npages, bits, err))
		return -1;
	return 0;
}

int gmem_fetch_dirty(struct guest_mem *gm, uint64_t *bitmap, struct fv_error *err)
{
	if (!gm->host_dirty)
		return fv_err(err, FV_E_STATE, "dedup not enabled on this guest");
	memset(bitmap, 0, gm->bitmap_words * sizeof(uint64_t));
	for (unsigned i = 0; gm->dirty_log && i < gm->nr_ranges; i++)
		if (gmem_fetch_slot(gm, i, bitmap, err))
			return -1;
	for (size_t w = 0; w < gm->bitmap_words; w++)
		bitmap[w] |= __atomic_exchange_n(&gm->host_dirty[w], 0,
						 __ATOMIC_ACQ_REL);
	return 0;
}
