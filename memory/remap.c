/*
 * remap.c - the page primitives of guest_mem.h that change what a guest
 * page maps: write-protect and wake, map a store frame, discard a zero
 * page, merge in place, populate; and a page's home slot (gmem_home_*),
 * through home.h.  The dedup engine calls them (the balloon populates);
 * guest_mem.c makes and unmakes the mapping they work on, and calls
 * nothing here.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/userfaultfd.h>
#include "memory/guest_mem.h"
#include "memory/home.h"
#include "lib/uffd.h"

_Static_assert(HOME_SLOT_SIZE == GMEM_PAGE_SIZE, "a home slot is a guest page");

static int gmem_check_gfn(const struct guest_mem *gm, uint64_t gfn,
			  uint64_t npages, struct fv_error *err)
{
	if (gfn < gmem_pages(gm) && npages <= gmem_pages(gm) - gfn)
		return 0;
	return fv_err(err, FV_E_RANGE, "guest pages [%llu, +%llu) outside %llu pages",
		      (unsigned long long)gfn, (unsigned long long)npages,
		      (unsigned long long)gmem_pages(gm));
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

/* Page gfn exists and gm has a home: what every home remap asks first. */
static int gmem_check_home_page(const struct guest_mem *gm, uint64_t gfn,
				struct fv_error *err)
{
	if (gmem_check_gfn(gm, gfn, 1, err))
		return -1;
	if (!gm->home)
		return fv_err(err, FV_E_STATE, "guest memory has no home");
	return 0;
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
	if (gmem_check_home_page(gm, gfn, err))
		return -1;
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
	if (gmem_check_home_page(gm, gfn, err))
		return -1;
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
	if (gmem_check_home_page(gm, gfn, err))
		return -1;
	/* The reference first: the slot cannot empty under the page. */
	if (home_ref(gm->home, gfn, err))
		return -1;
	if (gmem_home_remap(gm, gfn, err)) {
		gmem_home_put(gm, gfn);
		return -1;
	}
	return 0;
}

/* ---- a page's home slot ---- */

/* The home of gm, if gfn is one of its slots. */
static struct gmem_home *gmem_slot_home(const struct guest_mem *gm, uint64_t gfn,
					struct fv_error *err)
{
	if (!gm->home)
		fv_err(err, FV_E_STATE, "guest memory has no home");
	else if (gfn >= gmem_pages(gm))
		fv_err(err, FV_E_RANGE, "guest page %llu outside %llu pages",
		       (unsigned long long)gfn, (unsigned long long)gmem_pages(gm));
	else
		return gm->home;
	return NULL;
}

int gmem_home_publish(struct guest_mem *gm, uint64_t gfn, const void *page,
		      struct fv_error *err)
{
	struct gmem_home *h = gmem_slot_home(gm, gfn, err);

	return h ? home_publish(h, gfn, page, err) : -1;
}

uint32_t gmem_home_refs(const struct guest_mem *gm, uint64_t gfn)
{
	struct gmem_home *h = gmem_slot_home(gm, gfn, NULL);

	return h ? home_refs(h, gfn) : 0;
}

bool gmem_home_free(const struct guest_mem *gm, uint64_t gfn)
{
	struct gmem_home *h = gmem_slot_home(gm, gfn, NULL);

	return h && home_slot_free(h, gfn);
}

int gmem_home_read(const struct guest_mem *gm, uint64_t gfn, void *buf,
		   struct fv_error *err)
{
	struct gmem_home *h = gmem_slot_home(gm, gfn, err);

	return h ? home_read(h, gfn, buf, err) : -1;
}

void gmem_home_put(struct guest_mem *gm, uint64_t gfn)
{
	struct gmem_home *h = gmem_slot_home(gm, gfn, NULL);

	if (h)
		home_put(h, gfn);
}

uint64_t gmem_homes_resident_bytes(void)
{
	return homes_resident_bytes();
}
