/*
 * memroom.h - how much more memory this process may take now: the host's
 * MemAvailable, and the room under the memory limits of its cgroup and the
 * cgroup's ancestors (cgroup v2 memory.max, or v1 memory.limit_in_bytes).
 * What an unmerge checks before it asks the kernel for copies.
 */
#ifndef FOLDVM_MEMROOM_H
#define FOLDVM_MEMROOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/error.h"

#define MEMROOM_NO_LIMIT UINT64_MAX

struct mem_room {
	uint64_t available;      /* /proc/meminfo MemAvailable, bytes */
	uint64_t cgroup_room;    /* the tightest limit less its usage, bytes
				    (MEMROOM_NO_LIMIT: no limit found) */
	uint64_t cgroup_limit;   /* that limit */
	char cgroup_file[160];   /* its file ("" when none) */
};

/* Open the files memroom_read() reads, for a process about to lose the
 * right to open them (a sandbox); later reads use these.  Idempotent. */
int memroom_preopen(struct fv_error *err);

/* The figures now; -1 with err when /proc/meminfo cannot be read (cgroup
 * files that cannot be read count as no limit). */
int memroom_read(struct mem_room *out, struct fv_error *err);

/* The smaller of the two rooms. */
uint64_t memroom_bytes(const struct mem_room *r);

/* Memory pressure (PSI): the share of time some (or all) tasks stalled on
 * memory, averaged over 10 s, in hundredths of a percent.  From the
 * process's own cgroup (v2 memory.pressure) where it has one, else the
 * host's (/proc/pressure/memory). */
struct mem_pressure {
	uint32_t some_avg10, full_avg10;
	uint64_t some_total_us;  /* stalled time, all time */
	bool cgroup;             /* the cgroup's figures, not the host's */
};

/* -1 with err when the kernel has no PSI (built without it, or psi=0). */
int memroom_pressure(struct mem_pressure *out, struct fv_error *err);

/* Pure parsers, for unit tests.  PSI's "some avg10=1.23 ... total=N" and
 * "full ..." lines. */
int memroom_parse_pressure(const char *text, struct mem_pressure *out);
/* MemAvailable from /proc/meminfo text. */
int memroom_parse_meminfo(const char *text, uint64_t *bytes);
/* The memory cgroup's path from /proc/self/cgroup text: the v1 line whose
 * controllers include "memory" when v1 is true, else the v2 line "0::".
 * false if there is none. */
bool memroom_parse_cgroup(const char *text, bool v1, char *path, size_t len);
/* A limit or usage file's number; "max" is MEMROOM_NO_LIMIT. */
int memroom_parse_value(const char *text, uint64_t *v);

#endif
