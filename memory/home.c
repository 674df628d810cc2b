/*
 * home.c - one memfd per trust domain, mapped privately by the RAM of every
 * guest of the domain that merges, at offset = RAM offset (the
 * guest-physical address below the 32-bit hole; memory/guest_mem.h).
 *
 * DOC: why the home never changes what a guest reads
 *
 * A private file mapping shows the file's page wherever the guest has no
 * page of its own (no page-table entry), and the guest's first write copies
 * it.  So a guest must never have an empty entry over content it did not
 * put there.  Three rules, all enforced in this file, guest_mem.c (rule 1)
 * and remap.c (rules 2 and 3, the pages' side):
 *
 * 1. A guest's RAM starts with an entry everywhere: gmem_create_in_home()
 *    maps the kernel's zero page at every page (UFFDIO_ZEROPAGE) before
 *    KVM or anyone else sees the RAM.  Entries leave only by our own
 *    MADV_DONTNEED (the kernel never drops a zero-page or anonymous entry;
 *    swap keeps a swap entry) - or, for home pages the guest maps, by
 *    reclaim, which reads the same content back.
 * 2. A slot holds content only while a reference says a page reads it.  A
 *    slot gets content only when empty and never reserved for zeros
 *    (home_publish); then no guest reads it: nobody dropped a page
 *    over an empty, unreserved slot.  The content never changes while held;
 *    the last reference punches the slot out, when no page reads it any
 *    more (the engine drops a reference only when pagemap shows the
 *    guest's private copy, or when the guest is gone).
 * 3. A zero page is dropped only over a slot reserved for zeros
 *    (home_reserve_zero), and the kernel's zero page is mapped in its place
 *    at once (gmem_discard); a touch in between is a MISSING fault that the
 *    engine's fault thread answers with the same zero page.  Only then,
 *    the entry filled again, does the reservation end: if the zero page
 *    could not be mapped, the slot stays reserved - it never gets content,
 *    so a read through it allocates zeros (shmem), never someone's data.
 *
 * A guest that joins a home later starts from rule 1, so it never sees
 * what other guests merged.  The home is shared by guests of one domain
 * only: its content is content that domain's guests wrote.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "memory/home.h"

#define HOME_KEY_MAX 128

struct gmem_home {
	char key[HOME_KEY_MAX + 1];
	int fd;                 /* the memfd; its size is pages * 4 KiB */
	pthread_mutex_t lock;   /* guards everything below */
	uint64_t pages;
	uint32_t *refs;         /* per slot: pages reading its content (0: a hole) */
	uint64_t *zero;         /* per slot: reserved for zeros (rule 3) */
	unsigned mappers;       /* guest_mems mapping it (homes_lock) */
	struct gmem_home *next; /* homes_lock */
};

static pthread_mutex_t homes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gmem_home *homes;

static int home_grow(struct gmem_home *h, uint64_t size, struct fv_error *err)
{
	uint64_t pages = size / HOME_SLOT_SIZE, words = (pages + 63) / 64;
	uint64_t old_words = (h->pages + 63) / 64;
	uint32_t *refs;
	uint64_t *zero;

	if (pages <= h->pages)
		return 0;
	refs = realloc(h->refs, pages * sizeof(*refs));
	if (!refs)
		return fv_err(err, FV_E_NOMEM, "home slots");
	h->refs = refs;
	zero = realloc(h->zero, words * sizeof(*zero));
	if (!zero)
		return fv_err(err, FV_E_NOMEM, "home slots");
	h->zero = zero;
	memset(refs + h->pages, 0, (pages - h->pages) * sizeof(*refs));
	memset(zero + old_words, 0, (words - old_words) * sizeof(*zero));
	/* Growing a memfd adds holes; pages already mapped are untouched. */
	if (ftruncate(h->fd, (off_t)size) < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "growing the home of %s", h->key);
	h->pages = pages;
	return 0;
}

static void home_free(struct gmem_home *h)
{
	if (h->fd >= 0)
		close(h->fd);
	pthread_mutex_destroy(&h->lock);
	free(h->refs);
	free(h->zero);
	free(h);
}

static struct gmem_home *home_new(const char *key, struct fv_error *err)
{
	struct gmem_home *h = calloc(1, sizeof(*h));
	char name[HOME_KEY_MAX + 16];

	if (!h) {
		fv_err(err, FV_E_NOMEM, "home");
		return NULL;
	}
	snprintf(h->key, sizeof(h->key), "%s", key);
	snprintf(name, sizeof(name), "foldvm-home:%s", key);
	pthread_mutex_init(&h->lock, NULL);
	h->fd = memfd_create(name, MFD_CLOEXEC);
	if (h->fd < 0) {
		fv_err_errno(err, FV_E_SYS, errno, "memfd_create for the home of %s", key);
		home_free(h);
		return NULL;
	}
	return h;
}

struct gmem_home *home_acquire(const char *key, uint64_t size, struct fv_error *err)
{
	struct gmem_home *h;
	int r;

	if (strlen(key) > HOME_KEY_MAX) {
		fv_err(err, FV_E_INVAL, "home name longer than %d", HOME_KEY_MAX);
		return NULL;
	}
	pthread_mutex_lock(&homes_lock);
	for (h = homes; h && strcmp(h->key, key); h = h->next)
		;
	if (!h) {
		h = home_new(key, err);
		if (!h)
			goto out;
		h->next = homes;
		homes = h;
	}
	pthread_mutex_lock(&h->lock);
	r = home_grow(h, size, err);
	pthread_mutex_unlock(&h->lock);
	if (r == 0)
		h->mappers++;
	else if (h->mappers == 0) {
		homes = h->next; /* it was just made */
		home_free(h);
		h = NULL;
	} else
		h = NULL;
out:
	pthread_mutex_unlock(&homes_lock);
	return h;
}

void home_release(struct gmem_home *h)
{
	struct gmem_home **pp;

	if (!h)
		return;
	pthread_mutex_lock(&homes_lock);
	if (--h->mappers == 0) {
		for (pp = &homes; *pp != h; pp = &(*pp)->next)
			;
		*pp = h->next;
		home_free(h);
	}
	pthread_mutex_unlock(&homes_lock);
}

int home_fd(const struct gmem_home *h)
{
	return h->fd;
}

static bool slot_reserved_zero(const struct gmem_home *h, uint64_t slot)
{
	return h->zero[slot / 64] & (1ull << (slot % 64));
}

int home_reserve_zero(struct gmem_home *h, uint64_t slot, struct fv_error *err)
{
	int r = 0;

	pthread_mutex_lock(&h->lock);
	if (h->refs[slot])
		r = fv_err(err, FV_E_STATE, "home slot %llu holds content",
			   (unsigned long long)slot);
	else
		h->zero[slot / 64] |= 1ull << (slot % 64);
	pthread_mutex_unlock(&h->lock);
	return r;
}

void home_unreserve_zero(struct gmem_home *h, uint64_t slot)
{
	pthread_mutex_lock(&h->lock);
	h->zero[slot / 64] &= ~(1ull << (slot % 64));
	pthread_mutex_unlock(&h->lock);
}

int home_ref(struct gmem_home *h, uint64_t slot, struct fv_error *err)
{
	int r = 0;

	pthread_mutex_lock(&h->lock);
	if (!h->refs[slot])
		r = fv_err(err, FV_E_STATE, "home slot %llu holds no content",
			   (unsigned long long)slot);
	else
		h->refs[slot]++;
	pthread_mutex_unlock(&h->lock);
	return r;
}

/* ---- a slot's content and references ---- */

/* Copy one slot's page in or out of the memfd (h->lock held). */
static int home_slot_io(struct gmem_home *h, uint64_t slot, void *buf, bool out,
			struct fv_error *err)
{
	off_t off = (off_t)(slot * HOME_SLOT_SIZE);
	ssize_t n = out ? pwrite(h->fd, buf, HOME_SLOT_SIZE, off) :
			  pread(h->fd, buf, HOME_SLOT_SIZE, off);

	if (n == (ssize_t)HOME_SLOT_SIZE)
		return 0;
	if (n < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "%s home slot %llu of %s",
				    out ? "writing" : "reading",
				    (unsigned long long)slot, h->key);
	return fv_err(err, FV_E_IO, "short %s of home slot %llu of %s",
		      out ? "write" : "read", (unsigned long long)slot, h->key);
}

int home_publish(struct gmem_home *h, uint64_t slot, const void *page,
		 struct fv_error *err)
{
	int r = 0;

	pthread_mutex_lock(&h->lock);
	/* Rule 2: an empty, unreserved slot is read by no guest, so giving it
	 * content changes nothing anybody reads. */
	if (h->refs[slot] || slot_reserved_zero(h, slot))
		r = fv_err(err, FV_E_STATE, "home slot %llu is not free",
			   (unsigned long long)slot);
	else if (home_slot_io(h, slot, (void *)page, true, err))
		r = -1;
	else
		h->refs[slot] = 1; /* the publisher's, until home_put */
	pthread_mutex_unlock(&h->lock);
	return r;
}

uint32_t home_refs(struct gmem_home *h, uint64_t slot)
{
	uint32_t refs;

	pthread_mutex_lock(&h->lock);
	refs = h->refs[slot];
	pthread_mutex_unlock(&h->lock);
	return refs;
}

bool home_slot_free(struct gmem_home *h, uint64_t slot)
{
	bool free_slot;

	pthread_mutex_lock(&h->lock);
	free_slot = !h->refs[slot] && !slot_reserved_zero(h, slot);
	pthread_mutex_unlock(&h->lock);
	return free_slot;
}

int home_read(struct gmem_home *h, uint64_t slot, void *buf,
	      struct fv_error *err)
{
	int r;

	pthread_mutex_lock(&h->lock);
	/* Only a held slot: reading a hole would allocate a page in it. */
	if (!h->refs[slot])
		r = fv_err(err, FV_E_STATE, "home slot %llu holds no content",
			   (unsigned long long)slot);
	else
		r = home_slot_io(h, slot, buf, false, err);
	pthread_mutex_unlock(&h->lock);
	return r;
}

void home_put(struct gmem_home *h, uint64_t slot)
{
	pthread_mutex_lock(&h->lock);
	/* Rule 2: the last reader is gone (it has its own copy now, or the
	 * guest is), so the slot can become a hole: memory returns to the
	 * host, and the slot may take other content later. */
	if (h->refs[slot] && --h->refs[slot] == 0)
		fallocate(h->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  (off_t)(slot * HOME_SLOT_SIZE), (off_t)HOME_SLOT_SIZE);
	pthread_mutex_unlock(&h->lock);
}

uint64_t homes_resident_bytes(void)
{
	uint64_t total = 0;
	struct stat st;

	pthread_mutex_lock(&homes_lock);
	for (struct gmem_home *h = homes; h; h = h->next)
		if (fstat(h->fd, &st) == 0)
			total += (uint64_t)st.st_blocks * 512;
	pthread_mutex_unlock(&homes_lock);
	return total;
}
