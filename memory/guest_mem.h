/*
 * guest_mem.h - ownership of one guest's RAM.
 *
 * A guest's RAM is one private mapping of `size` bytes: anonymous memory,
 * or - for guests whose pages the dedup engine merges - a private mapping
 * of their trust domain's *home* file at offset = RAM offset (home.c says
 * why that is safe, and what it buys: a page equal to the home page at its
 * own offset merges without a mapping of its own).  KVM sees it as one
 * memslot per RAM range of the guest-physical layout (gmem_layout_ranges):
 * test guests have all RAM from address 0 (one slot); Linux guests have it
 * below the 32-bit hole and, beyond 3 GiB of RAM, the rest from 4 GiB (two
 * slots over the one mapping).
 *
 * Two kinds of numbers, never mixed up:
 *  - guest-physical addresses (gpa): what the guest and its devices name.
 *    Every one is checked and translated here, in one place
 *    (gmem_gpa_to_page, gmem_range_ok and every read/write/fill/release):
 *    an address in the hole or past the end is refused (FV_E_RANGE), never
 *    reaches a page; a range is RAM only inside one RAM range.
 *  - RAM page indexes ("page", and "gfn" in the dedup primitives): 0 ..
 *    gmem_pages() - 1, the order of the host mapping, of the dirty bitmap
 *    and of the home file.  Equal to gpa / 4 KiB below the hole only.
 *
 * This module (guest_mem.c: the mapping, the translation, access and the
 * dirty log; remap.c: the dedup primitives below) is the only code that
 * maps or remaps guest pages, and the
 * only way devices and boot code read or write guest memory: every access
 * names a (gpa, length) range that is checked against the layout, and
 * nobody outside keeps a host pointer into guest RAM.  That is what lets
 * the dedup engine replace a page's backing frame (merge, zero, unmerge) in
 * one place, safely for every other user.
 */
#ifndef FOLDVM_GUEST_MEM_H
#define FOLDVM_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/error.h"

#define GMEM_PAGE_SIZE 4096ull
/* Smallest and largest guest RAM foldvm accepts; the upper bound follows
 * from the page-table area of the test-guest layout (2 MiB pages, one PD
 * page per GiB, see guest-tools/testdev_abi.h). */
#define GMEM_MIN_SIZE (16ull << 20)
#define GMEM_MAX_SIZE (64ull << 30)

/* The PC layout's 32-bit hole (as QEMU's and Firecracker's): RAM stops at
 * 3 GiB and resumes at 4 GiB; between them the virtio-mmio windows
 * (0xd0000000..), the IOAPIC (0xfec00000) and the LAPIC (0xfee00000). */
#define GMEM_HOLE_START (3ull << 30)
#define GMEM_HIGH_START (4ull << 30)
#define GMEM_MAX_RANGES 2u

enum gmem_layout {
	GMEM_LAYOUT_FLAT, /* all RAM at [0, size): test guests */
	GMEM_LAYOUT_PC,   /* [0, min(size, 3 GiB)), then [4 GiB, 4 GiB +
			   * size - 3 GiB): Linux guests */
};

/* One piece of RAM: guest-physical [gpa, gpa + size), RAM pages from
 * `page` on; its KVM memslot is its index in guest_mem.range[]. */
struct gmem_range {
	uint64_t gpa;
	uint64_t size;
	uint64_t page;
};

struct gmem_home;

struct guest_mem {
	uint8_t *host;      /* start of the host mapping; owned, never handed out */
	uint64_t size;      /* bytes of RAM, a multiple of GMEM_PAGE_SIZE */
	int vm_fd;          /* KVM VM the memslots belong to (-1: not registered) */
	enum gmem_layout layout;
	unsigned nr_ranges; /* 1 or 2; range i is KVM memslot i */
	struct gmem_range range[GMEM_MAX_RANGES];
	struct gmem_home *home; /* the domain's home file, or NULL (anonymous) */
	/* valid once gmem_dedup_enable() succeeded: */
	int uffd;           /* the dedup engine's userfaultfd (not owned), or -1 */
	bool dirty_log;     /* KVM logs guest writes (manual protect) */
	uint64_t *host_dirty; /* pages written by the host process (devices) */
	size_t bitmap_words;
};

/* Validate a requested RAM size (bounds, page multiple). */
int gmem_check_size(uint64_t size, struct fv_error *err);

/* Where `size` bytes of RAM go in `layout` (a pure function: the e820 map
 * of a Linux guest is made from it too).  Returns the count of ranges
 * written to out (1 or 2; 0 for a size of 0). */
unsigned gmem_layout_ranges(enum gmem_layout layout, uint64_t size,
			    struct gmem_range out[GMEM_MAX_RANGES]);

/* Map `size` bytes of zeroed anonymous memory and register it with the VM
 * (vm_fd < 0: map only, for unit tests), in the flat layout. */
int gmem_create(struct guest_mem *gm, int vm_fd, uint64_t size,
		struct fv_error *err);

/* The same, mapped from the home file named `home` (made on first use,
 * shared by every guest created with that name), every page starting as
 * the kernel's zero page. */
int gmem_create_in_home(struct guest_mem *gm, int vm_fd, uint64_t size,
			const char *home, struct fv_error *err);

/* Either of the above in a given layout (home NULL: anonymous). */
int gmem_create_layout(struct guest_mem *gm, int vm_fd, uint64_t size,
		       enum gmem_layout layout, const char *home,
		       struct fv_error *err);

/* Unregister and unmap. Safe on a zeroed or already destroyed struct. */
void gmem_destroy(struct guest_mem *gm);

/* Is [gpa, gpa+len) guest RAM, all of it inside one RAM range?  len 0 is
 * valid anywhere in a range or at its end. */
bool gmem_range_ok(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* The same as a typed error: 0, or FV_E_RANGE saying why the range is no
 * RAM (in the 32-bit hole, across a range's end, past the end). */
int gmem_check_range(const struct guest_mem *gm, uint64_t gpa, uint64_t len,
		     struct fv_error *err);

/* The translation: the RAM page index of the page that holds gpa.  An
 * address in the hole or beyond RAM is FV_E_RANGE, with the layout named. */
int gmem_gpa_to_page(const struct guest_mem *gm, uint64_t gpa, uint64_t *page,
		     struct fv_error *err);

/* The other way: the guest-physical address of RAM page `page`, or
 * UINT64_MAX past the end of RAM. */
uint64_t gmem_page_to_gpa(const struct guest_mem *gm, uint64_t page);

/* Copy between guest RAM and a host buffer; out-of-range is FV_E_RANGE and
 * nothing is copied. */
int gmem_read(const struct guest_mem *gm, uint64_t gpa, void *buf,
	      uint64_t len, struct fv_error *err);
int gmem_write(struct guest_mem *gm, uint64_t gpa, const void *buf,
	       uint64_t len, struct fv_error *err);

/* Set a range to a byte value. */
int gmem_fill(struct guest_mem *gm, uint64_t gpa, int byte, uint64_t len,
	      struct fv_error *err);

/*
 * The guest gave [gpa, gpa + len) (whole pages) back: it reads zeros from
 * now on and the host may free the memory (a balloon's inflated or
 * reported pages).  Without dedup the pages go to the kernel at once
 * (MADV_DONTNEED).  With dedup a page that reads anything but zeros is
 * zeroed through the host-write path: a merged page gets its private copy
 * and drops its frame or home reference exactly as on any device write,
 * and is marked written, so the engine finds a zero page at its next pass
 * and discards it; a page that already reads zeros (discarded, or never
 * written) is left alone.  *written (may be NULL): the pages zeroed that
 * way.
 */
int gmem_release(struct guest_mem *gm, uint64_t gpa, uint64_t len,
		 uint64_t *written, struct fv_error *err);

/*
 * Dedup primitives.  Only the dedup engine calls these; they are here
 * because this module is the one place that remaps guest memory.
 * Page numbers (gfn) are RAM page indexes, 0 .. gmem_pages() - 1 (not
 * guest-physical above the hole: gmem_page_to_gpa); every call checks them.
 */

static inline uint64_t gmem_pages(const struct guest_mem *gm)
{
	return gm->size / GMEM_PAGE_SIZE;
}

/* Prepare for merging: no transparent huge pages (merging 4 KiB inside a
 * THP would split it anyway), uffd write-protect registration of the whole
 * range on `uffd`, KVM dirty logging with manual protect.  All or nothing:
 * a failure leaves the memory as it was; memory already on with another
 * uffd is refused (FV_E_STATE), with the same uffd it is a no-op. */
int gmem_dedup_enable(struct guest_mem *gm, int uffd, struct fv_error *err);

/* Hand the RAM to Linux KSM (MADV_MERGEABLE, no THP): the baseline the
 * benchmark compares foldvm's engine with. */
int gmem_ksm_enable(struct guest_mem *gm, struct fv_error *err);

/* Read-only view of one page for hashing and comparing. */
const uint8_t *gmem_page_view(const struct guest_mem *gm, uint64_t gfn);

/* Host address of gfn (for /proc/self/pagemap in tests and accounting). */
const void *gmem_page_hva(const struct guest_mem *gm, uint64_t gfn);

/* Write-protect (wp true) or release (false, which also wakes faulters)
 * npages from gfn with userfaultfd. */
int gmem_protect(struct guest_mem *gm, uint64_t gfn, uint64_t npages, bool wp,
		 struct fv_error *err);

/* Wake threads blocked on a write to [gfn, gfn+npages). */
int gmem_wake(struct guest_mem *gm, uint64_t gfn, uint64_t npages,
	      struct fv_error *err);

/* Back gfn by page `offset` of `fd`, copy-on-write (MAP_PRIVATE|MAP_FIXED),
 * and register the new mapping for write-protection again. */
int gmem_map_frame(struct guest_mem *gm, uint64_t gfn, int fd, uint64_t offset,
		   struct fv_error *err);

/* Give [gfn, gfn+npages) pages of their own, as a write would, without
 * changing a byte (MADV_POPULATE_WRITE): a page on a frame, a home slot or
 * the zero page is copied.  ENOMEM: the kernel found no memory for it. */
int gmem_populate_write(struct guest_mem *gm, uint64_t gfn, uint64_t npages,
			struct fv_error *err);

/* Drop a write-protected page of zeros: reads see the kernel's zero page,
 * no frame is used, and (for home-backed RAM) the protection is released.
 * In home-backed RAM refused (FV_E_STATE) while the page's home slot holds
 * content. */
int gmem_discard(struct guest_mem *gm, uint64_t gfn, struct fv_error *err);

/*
 * Merging in place (home-backed RAM only; home.c argues the rules).  A
 * slot is the home page at gfn's offset.
 */

/* Give the empty slot of gfn the content `page`: FV_E_STATE unless the
 * slot is free (no content, not reserved for zeros).  The caller then
 * holds one reference, dropped with gmem_home_put(). */
int gmem_home_publish(struct guest_mem *gm, uint64_t gfn, const void *page,
		      struct fv_error *err);
/* References to the slot's content (0: it holds none) / could it take some? */
uint32_t gmem_home_refs(const struct guest_mem *gm, uint64_t gfn);
bool gmem_home_free(const struct guest_mem *gm, uint64_t gfn);
/* Copy a held slot's content. */
int gmem_home_read(const struct guest_mem *gm, uint64_t gfn, void *buf,
		   struct fv_error *err);
/* Replace write-protected page gfn, which the caller found equal to its
 * held slot, by the slot (drop the private copy), and release the
 * protection, waking the writers, who then copy the slot on write.  Takes
 * a reference on success. */
int gmem_merge_home(struct guest_mem *gm, uint64_t gfn, struct fv_error *err);
/* Drop a reference; the last one empties the slot. */
void gmem_home_put(struct guest_mem *gm, uint64_t gfn);
/*
 * A write-protected page gfn that lies in a store mapping (gmem_map_frame)
 * back to the RAM's own mapping of the home file, which the kernel joins
 * with its neighbours again (the store mapping's VMAs go), waking the
 * writers:
 *  - gmem_discard_rehome: the page holds zeros and its slot holds none; it
 *    then reads the kernel's zero page, as after gmem_discard;
 *  - gmem_merge_rehome: the page equals its held slot; it then reads the
 *    slot, as after gmem_merge_home, and holds a reference.
 */
int gmem_discard_rehome(struct guest_mem *gm, uint64_t gfn, struct fv_error *err);
int gmem_merge_rehome(struct guest_mem *gm, uint64_t gfn, struct fv_error *err);
/* Bytes every home file of the process holds (the kernel's count). */
uint64_t gmem_homes_resident_bytes(void);

/* Pages written since the last call (by the guest, from KVM's dirty log of
 * every memslot, and by the host, from gmem_write), as bits of RAM page
 * indexes in bitmap (bitmap_words long); the log is cleared and re-armed
 * for what it returned. */
int gmem_fetch_dirty(struct guest_mem *gm, uint64_t *bitmap, struct fv_error *err);

#endif
