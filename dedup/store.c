#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include "dedup/dedup.h"
#include "dedup/store.h"

#define PAGE 4096ull

int store_init(struct dedup_store *s, uint64_t max_frames, struct fv_error *err)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	if (max_frames == 0 || max_frames >= STORE_NO_FRAME)
		return fv_err(err, FV_E_INVAL, "store of %llu frames",
			      (unsigned long long)max_frames);
	s->fd = memfd_create("foldvm-store", MFD_CLOEXEC);
	if (s->fd < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "memfd_create");
	if (ftruncate(s->fd, (off_t)(max_frames * PAGE)) < 0)
		goto fail_errno;
	s->map = mmap(NULL, max_frames * PAGE, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_NORESERVE, s->fd, 0);
	if (s->map == MAP_FAILED) {
		s->map = NULL;
		goto fail_errno;
	}
	s->refs = calloc(max_frames, sizeof(*s->refs));
	s->free_list = calloc(max_frames, sizeof(*s->free_list));
	if (!s->refs || !s->free_list) {
		store_destroy(s);
		return fv_err(err, FV_E_NOMEM, "store metadata");
	}
	s->max_frames = max_frames;
	return 0;
fail_errno:
	{
		int e = errno;

		store_destroy(s);
		return fv_err_errno(err, FV_E_SYS, e, "store of %llu MiB",
				    (unsigned long long)(max_frames * PAGE >> 20));
	}
}

void store_destroy(struct dedup_store *s)
{
	if (s->map)
		munmap(s->map, s->max_frames * PAGE);
	if (s->fd >= 0)
		close(s->fd);
	free(s->refs);
	free(s->free_list);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}

/* Take `hint` out of the free list if it is there (linear only in the
 * rare case the hint was freed; most hints are `next`). */
static int store_take_hint(struct dedup_store *s, uint32_t hint)
{
	if (hint == s->next) {
		s->next++;
		return 1;
	}
	for (uint64_t i = s->nr_free; i > 0 && i + 64 > s->nr_free; i--) {
		if (s->free_list[i - 1] == hint) {
			s->free_list[i - 1] = s->free_list[--s->nr_free];
			return 1;
		}
	}
	return 0;
}

uint32_t store_alloc(struct dedup_store *s, const void *page, uint32_t hint)
{
	uint32_t f;

	if (hint < s->max_frames && s->refs[hint] == 0 && hint <= s->next &&
	    store_take_hint(s, hint))
		f = hint;
	else if (s->nr_free)
		f = s->free_list[--s->nr_free];
	else if (s->next < s->max_frames)
		f = (uint32_t)s->next++;
	else
		return STORE_NO_FRAME;
	memcpy(s->map + (uint64_t)f * PAGE, page, PAGE);
	s->allocs++;
	s->used++;
	/* refs stays 0 until the first mapping takes a reference; a frame
	 * that never gets one is handed back with store_discard(). */
	return f;
}

static void store_release(struct dedup_store *s, uint32_t f)
{
	/*
	 * Every guest mapping of the frame is gone (replaced or copied on
	 * write), so nobody can see the hole: punching it returns the memory
	 * to the host at once instead of when the memfd is closed.
	 */
	fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		  (off_t)((uint64_t)f * PAGE), (off_t)PAGE);
	s->free_list[s->nr_free++] = f;
	s->used--;
	s->frees++;
}

void store_get(struct dedup_store *s, uint32_t f)
{
	s->refs[f]++;
}

void store_put(struct dedup_store *s, uint32_t f)
{
	if (s->refs[f] == 0)
		return; /* never happens; refuse to underflow into a leak */
	if (--s->refs[f] == 0)
		store_release(s, f);
}

void store_discard(struct dedup_store *s, uint32_t f)
{
	if (s->refs[f] == 0)
		store_release(s, f);
}

void store_unmap_view(struct dedup_store *s)
{
	/* Only as far as frames were ever handed out. */
	if (s->map && s->next)
		madvise(s->map, s->next * PAGE, MADV_DONTNEED);
}

uint64_t store_resident_bytes(const struct dedup_store *s)
{
	struct stat st;

	if (s->fd < 0 || fstat(s->fd, &st) < 0)
		return 0;
	return (uint64_t)st.st_blocks * 512;
}

/* The store: a memfd of its size, pages punched out of it when their last
 * reference goes, its mapping's pages dropped. */
static const struct syscall_rule store_rules[] = {
	SYSCALL_ANY("memfd_create"),
	SYSCALL_ANY("ftruncate"),
	SYSCALL_ANY("fallocate"),
	SYSCALL_ANY("madvise"),
};

const struct syscall_rules dedup_store_syscalls = SYSCALL_RULES("the engine's store", store_rules);
