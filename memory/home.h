/*
 * home.h - the home file of a trust domain (memory/ only; the API that
 * other layers use is in guest_mem.h).
 *
 * The guests of one domain that merge map their RAM from one memfd, the
 * domain's *home*, privately, at offset = RAM offset (= guest-physical
 * address below the 32-bit hole).  Every
 * page a guest writes is its own (copy-on-write); a page equal to the home
 * page at its own offset can drop its copy and read the home page again,
 * with no VMA of its own.  The rules that keep this safe live here, not in
 * the engine (DOC in home.c).  It knows slots, not guests: the guest's
 * side (which slot a page reads, a page number's bounds) is remap.c's.
 * A slot number given to the calls below is one of the size acquired.
 */
#ifndef FOLDVM_MEMORY_HOME_H
#define FOLDVM_MEMORY_HOME_H

#include <stdbool.h>
#include <stdint.h>
#include "lib/error.h"

#define HOME_SLOT_SIZE 4096ull   /* a slot is one guest page (GMEM_PAGE_SIZE) */

struct gmem_home;

/* The home of `key`, made on first use, grown to `size` bytes if smaller;
 * one more mapper until home_release(). */
struct gmem_home *home_acquire(const char *key, uint64_t size, struct fv_error *err);
void home_release(struct gmem_home *h);
int home_fd(const struct gmem_home *h);

/* A discarded zero page is about to leave guest page `slot` with an empty
 * entry for a moment: refused (FV_E_STATE) while the slot holds content;
 * otherwise the slot takes no content until home_unreserve_zero() (after
 * the zero page was mapped there; never, if that failed). */
int home_reserve_zero(struct gmem_home *h, uint64_t slot, struct fv_error *err);
void home_unreserve_zero(struct gmem_home *h, uint64_t slot);

/* A page is about to read the slot's content: one more reference, refused
 * (FV_E_STATE) when the slot holds none. */
int home_ref(struct gmem_home *h, uint64_t slot, struct fv_error *err);

/* Give an empty slot no page reads, and not reserved for zeros, the
 * content `page` and one reference (the publisher's, until home_put);
 * FV_E_STATE when the slot is not free. */
int home_publish(struct gmem_home *h, uint64_t slot, const void *page,
		 struct fv_error *err);
/* The references to a slot's content (0: a hole). */
uint32_t home_refs(struct gmem_home *h, uint64_t slot);
/* Would home_publish take the slot? */
bool home_slot_free(struct gmem_home *h, uint64_t slot);
/* Copy a held slot's content out (FV_E_STATE for a hole). */
int home_read(struct gmem_home *h, uint64_t slot, void *buf,
	      struct fv_error *err);
/* One reference fewer; the last one punches the slot out. */
void home_put(struct gmem_home *h, uint64_t slot);

/* Bytes resident in every home of the process. */
uint64_t homes_resident_bytes(void);

#endif
