/*
 * procstat.h - the kernel's own accounting of this process's memory, read
 * from /proc: what foldvm reports as saved is measured here, not derived
 * from the engine's counters.
 */
#ifndef FOLDVM_PROCSTAT_H
#define FOLDVM_PROCSTAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/error.h"

/* Fields of /proc/self/smaps_rollup, in bytes. */
struct procstat_rollup {
	uint64_t rss;
	uint64_t pss;
	uint64_t pss_anon;
	uint64_t pss_file;
	uint64_t pss_shmem;
	uint64_t anonymous;
	uint64_t shared_clean, shared_dirty, private_clean, private_dirty;
};

/* Parse /proc/<pid>/smaps_rollup (pid 0 = self). */
int procstat_rollup(int pid, struct procstat_rollup *out, struct fv_error *err);

/* Parse text in smaps_rollup format (exposed for unit tests/fuzzing):
 * "Rss:   1234 kB" lines; unknown lines ignored; malformed numbers are an
 * error. */
int procstat_parse_rollup(const char *text, struct procstat_rollup *out,
			  struct fv_error *err);

/* What the VMAs inside a range hold, in bytes. */
struct procstat_mem {
	uint64_t rss;
	uint64_t pss;
	uint64_t anon;   /* "Anonymous": private pages (incl. copies on write) */
};

/* Sums over the VMAs of /proc/self/smaps that lie inside [start, end):
 * what one guest's RAM range holds.  (A merged page not touched since its
 * merge has no PTE yet, so Rss/Pss miss its frame; the guest's true cost
 * is its anon bytes plus its share of the store memfd.) */
int procstat_range(uint64_t start, uint64_t end, struct procstat_mem *out,
		   struct fv_error *err);

/* Called for each line of /proc/self/maps that starts with a VMA header
 * ("start-end "), with the VMA's [start, end). */
typedef void (*procstat_vma_fn)(void *opaque, uint64_t start, uint64_t end);

/* Parse len bytes of /proc/<pid>/maps text (no NUL needed; exposed for unit
 * tests and fuzzing): calls fn, when not NULL, for every line whose header
 * parses, and returns the number of lines (a last line without '\n'
 * counts).  Any bytes are safe: junk lines are counted but not reported. */
uint64_t procstat_parse_maps(const char *text, size_t len, procstat_vma_fn fn,
			     void *opaque);

/* Walk /proc/self/maps: fn (may be NULL) for every VMA, *count the number
 * of VMAs.  The one reader of the file: its cost grows with the count. */
int procstat_maps(procstat_vma_fn fn, void *opaque, uint64_t *count,
		  struct fv_error *err);

/* Number of VMAs of this process (lines of /proc/self/maps). */
int procstat_vma_count(uint64_t *count, struct fv_error *err);

/* /proc/sys/vm/max_map_count. */
int procstat_max_map_count(uint64_t *count, struct fv_error *err);

/* One entry of /proc/self/pagemap, decoded. */
struct procstat_page {
	bool present;  /* a page is mapped (not swapped, not unpopulated) */
	bool file;     /* the page is file-backed or shared (bit 61): e.g. a
			* private mapping still reading its memfd page */
	bool swapped;  /* a swap entry (bit 62) - but not a userfaultfd
			* write-protect marker (bit 57 with it), which stands
			* for no page at all; a protected page that really is
			* swapped out reads "not swapped" too */
	uint64_t pfn;  /* valid when present; 0 when the kernel hides PFNs
			* (not root) */
};

/* Decode a raw pagemap entry (exposed for unit tests). */
void procstat_pagemap_decode(uint64_t entry, struct procstat_page *out);

/* The pagemap reader: open once, then one pread per page.  The one reader
 * of /proc/self/pagemap in the tree. */
struct procstat_pagemap {
	int fd;
};

int procstat_pagemap_open(struct procstat_pagemap *pm, struct fv_error *err);
/* Open /proc/self/pagemap once for every later procstat_pagemap_open,
 * which then only duplicates it: the kernel shows page frame numbers to
 * an opener with CAP_SYS_ADMIN, judged when the file is opened, so a
 * process about to drop its capabilities (a sandboxed worker) opens it
 * first.  Once per process; it stays open. */
int procstat_pagemap_preopen(struct fv_error *err);
void procstat_pagemap_close(struct procstat_pagemap *pm);

/* The entry for the page holding addr.  On failure *out says "not
 * present" (all zero), so a caller that passes err NULL gets a safe
 * default: nothing is known about the page. */
int procstat_pagemap_read(const struct procstat_pagemap *pm, const void *addr,
			  struct procstat_page *out, struct fv_error *err);

/* Whether the page holding addr is a KSM page: the KPF_KSM flag of its
 * frame in /proc/kpageflags, the frame read through pm (root only).
 * *ksm false when the page is not present. */
int procstat_page_ksm(const struct procstat_pagemap *pm, const void *addr,
		      bool *ksm, struct fv_error *err);

/* Physical frame number backing a virtual address of this process, from
 * /proc/self/pagemap (root only; *present false when not in memory, *pfn 0
 * when the kernel hides PFNs).  Opens the file for one read: loops over
 * pages use a struct procstat_pagemap. */
int procstat_pfn(const void *addr, uint64_t *pfn, bool *present,
		 struct fv_error *err);

/* PFN of the kernel's zero page (what a read of untouched anonymous memory
 * maps), or 0 when PFNs are hidden (not root). */
uint64_t procstat_zero_pfn(void);

/* Thread CPU time of the calling thread, nanoseconds. */
uint64_t procstat_thread_cpu_ns(void);

#endif
