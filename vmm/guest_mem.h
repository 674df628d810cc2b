/*
 * guest_mem.h - ownership of one guest's RAM.
 *
 * A guest's RAM is one anonymous private mapping registered with KVM as a
 * memslot at guest physical address 0.  This module is the only code that
 * maps or remaps guest pages, and the only way devices and boot code read or
 * write guest memory: every access names a (gpa, length) range that is
 * checked against the RAM size, and nobody outside keeps a host pointer into
 * guest RAM.  That is what lets the dedup engine replace a page's backing
 * frame (merge, zero, unmerge) in one place, safely for every other user.
 */
#ifndef FOLDVM_GUEST_MEM_H
#define FOLDVM_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vmm/error.h"

#define GMEM_PAGE_SIZE 4096ull
/* Smallest and largest guest RAM foldvm accepts; the upper bound follows
 * from the page-table area of the test-guest layout (2 MiB pages, one PD
 * page per GiB, see guest-tools/testdev_abi.h). */
#define GMEM_MIN_SIZE (16ull << 20)
#define GMEM_MAX_SIZE (64ull << 30)

struct guest_mem {
	uint8_t *host;      /* start of the host mapping; owned, never handed out */
	uint64_t size;      /* bytes, a multiple of GMEM_PAGE_SIZE */
	int vm_fd;          /* KVM VM the memslot belongs to (-1: not registered) */
	uint32_t slot;
};

/* Validate a requested RAM size (bounds, page multiple). */
int gmem_check_size(uint64_t size, struct fv_error *err);

/* Map `size` bytes of zeroed anonymous memory and register it with the VM
 * (vm_fd < 0: map only, for unit tests). */
int gmem_create(struct guest_mem *gm, int vm_fd, uint64_t size,
		struct fv_error *err);

/* Unregister and unmap. Safe on a zeroed or already destroyed struct. */
void gmem_destroy(struct guest_mem *gm);

/* Is [gpa, gpa+len) inside guest RAM? len 0 is valid anywhere <= size. */
bool gmem_range_ok(const struct guest_mem *gm, uint64_t gpa, uint64_t len);

/* Copy between guest RAM and a host buffer; out-of-range is FV_E_RANGE and
 * nothing is copied. */
int gmem_read(const struct guest_mem *gm, uint64_t gpa, void *buf,
	      uint64_t len, struct fv_error *err);
int gmem_write(struct guest_mem *gm, uint64_t gpa, const void *buf,
	       uint64_t len, struct fv_error *err);

/* Set a range to a byte value. */
int gmem_fill(struct guest_mem *gm, uint64_t gpa, int byte, uint64_t len,
	      struct fv_error *err);

#endif
