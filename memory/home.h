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
 * the engine (DOC in home.c).
 */
#ifndef FOLDVM_MEMORY_HOME_H
#define FOLDVM_MEMORY_HOME_H

#include <stdint.h>
#include "lib/error.h"

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

#endif
