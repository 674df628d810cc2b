/*
 * memroom.c - MemAvailable and the cgroup's memory room (memroom.h).
 *
 * The cgroup file systems are looked for where Debian, systemd and
 * container runtimes mount them: v2 at /sys/fs/cgroup or
 * /sys/fs/cgroup/unified (hybrid), v1's memory controller at
 * /sys/fs/cgroup/memory.  A limit binds a cgroup's whole subtree, so every
 * ancestor's is read and the tightest room wins.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lib/memroom.h"

#define MAX_LEVELS 16

/* A limit and a usage file of one cgroup level. */
struct level {
	int limit_fd, usage_fd;
	char limit_path[160];
};

/* The descriptors below are shared: an unmerge's check (a QMP thread)
 * and the scanner's pressure reads may come at once. */
static pthread_mutex_t files_lock = PTHREAD_MUTEX_INITIALIZER;
static int meminfo_fd = -1;
static int pressure_fd = -1;
static bool pressure_cgroup;
static struct level levels[MAX_LEVELS];
static unsigned nr_levels;
static bool preopened;

int memroom_parse_meminfo(const char *text, uint64_t *bytes)
{
	const char *p = strstr(text, "MemAvailable:");
	unsigned long long kb;

	if (!p || (p != text && p[-1] != '\n') ||
	    sscanf(p + strlen("MemAvailable:"), "%llu kB", &kb) != 1 ||
	    kb > UINT64_MAX / 1024)
		return -1;
	*bytes = (uint64_t)kb * 1024;
	return 0;
}

bool memroom_parse_cgroup(const char *text, bool v1, char *path, size_t len)
{
	for (const char *line = text; line && *line;
	     line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		const char *c1 = strchr(line, ':'), *c2, *end;
		const char *nl = strchr(line, '\n');
		bool match = false;

		if (!c1 || (nl && c1 > nl) || !(c2 = strchr(c1 + 1, ':')) || (nl && c2 > nl))
			continue;
		if (!v1) {
			match = c1 - line == 1 && line[0] == '0' && c2 == c1 + 1;
		} else {
			/* "memory" among the comma-separated controllers */
			for (const char *w = c1 + 1; w < c2;) {
				const char *comma = memchr(w, ',', (size_t)(c2 - w));
				const char *we = comma ? comma : c2;

				if (we - w == 6 && !memcmp(w, "memory", 6))
					match = true;
				w = we + 1;
			}
		}
		if (!match)
			continue;
		end = nl ? nl : c2 + 1 + strlen(c2 + 1);
		if (c2[1] != '/' || (size_t)(end - c2 - 1) >= len)
			return false;
		memcpy(path, c2 + 1, (size_t)(end - c2 - 1));
		path[end - c2 - 1] = '\0';
		return true;
	}
	return false;
}

/* "avg10=12.34" in a PSI line, as hundredths. */
static int psi_avg10(const char *line, uint32_t *out)
{
	const char *p = strstr(line, "avg10=");
	unsigned whole, frac;
	char *end;

	if (!p)
		return -1;
	p += strlen("avg10=");
	errno = 0;
	whole = (unsigned)strtoul(p, &end, 10);
	if (errno || end == p || *end != '.' || whole > 100)
		return -1;
	p = end + 1;
	frac = (unsigned)strtoul(p, &end, 10);
	if (end - p != 2 || frac > 99 || (whole == 100 && frac))
		return -1;
	*out = whole * 100 + frac;
	return 0;
}

int memroom_parse_pressure(const char *text, struct mem_pressure *out)
{
	const char *some = strstr(text, "some "), *full = strstr(text, "full ");
	const char *total;
	unsigned long long t;

	memset(out, 0, sizeof(*out));
	if (!some || some != text || psi_avg10(some, &out->some_avg10))
		return -1;
	total = strstr(some, "total=");
	if (!total || (strchr(some, '\n') && total > strchr(some, '\n')) ||
	    sscanf(total, "total=%llu", &t) != 1)
		return -1;
	out->some_total_us = t;
	/* "full" is absent for the CPU only; for memory it is there. */
	if (full && (full[-1] != '\n' || psi_avg10(full, &out->full_avg10)))
		return -1;
	return 0;
}

int memroom_parse_value(const char *text, uint64_t *v)
{
	char *end;
	unsigned long long x;

	if (!strncmp(text, "max", 3) && (text[3] == '\n' || !text[3])) {
		*v = MEMROOM_NO_LIMIT;
		return 0;
	}
	errno = 0;
	x = strtoull(text, &end, 10);
	if (errno || end == text || (*end && *end != '\n'))
		return -1;
	*v = x;
	return 0;
}

/* The whole (small) file at fd, from its start, NUL-terminated. */
static ssize_t read_all(int fd, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len - 1 &&
	       (n = pread(fd, buf + got, len - 1 - got, (off_t)got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	return (ssize_t)got;
}

static int open_ro(const char *path)
{
	return open(path, O_RDONLY | O_CLOEXEC);
}

/* Open the limit and usage files of dir and of each ancestor up to the
 * mount point root (whose own files, if any, are the host's). */
static void open_levels(const char *root, const char *cg, const char *limit,
			const char *usage)
{
	char path[sizeof(levels[0].limit_path)];
	size_t len = strlen(cg);

	while (nr_levels < MAX_LEVELS && len > 1) {
		struct level *l = &levels[nr_levels];
		int n = snprintf(path, sizeof(path), "%s%.*s/%s", root, (int)len, cg, limit);

		if (n > 0 && (size_t)n < sizeof(path) && (l->limit_fd = open_ro(path)) >= 0) {
			snprintf(l->limit_path, sizeof(l->limit_path), "%s", path);
			snprintf(path, sizeof(path), "%s%.*s/%s", root, (int)len, cg, usage);
			l->usage_fd = open_ro(path);
			if (l->usage_fd >= 0)
				nr_levels++;
			else
				close(l->limit_fd);
		}
		while (len > 1 && cg[len - 1] != '/')
			len--;
		if (len > 1)
			len--;           /* the parent, without its slash */
	}
}

/* The cgroup's memory.pressure (v2, not the root's), else the host's. */
static void open_pressure(const char *cg)
{
	char path[192];

	pressure_cgroup = false;
	if (cg && strcmp(cg, "/")) {
		snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.pressure", cg);
		pressure_fd = open_ro(path);
		if (pressure_fd < 0) {
			snprintf(path, sizeof(path), "/sys/fs/cgroup/unified%s/memory.pressure", cg);
			pressure_fd = open_ro(path);
		}
		pressure_cgroup = pressure_fd >= 0;
	}
	if (pressure_fd < 0)
		pressure_fd = open_ro("/proc/pressure/memory");
}

static void open_cgroup_files(void)
{
	char text[4096], cg[128];
	int fd = open_ro("/proc/self/cgroup");
	bool v2;

	if (fd < 0) {
		open_pressure(NULL);
		return;
	}
	read_all(fd, text, sizeof(text));
	close(fd);
	v2 = memroom_parse_cgroup(text, false, cg, sizeof(cg));
	open_pressure(v2 ? cg : NULL);
	if (v2) {
		open_levels("/sys/fs/cgroup", cg, "memory.max", "memory.current");
		if (!nr_levels)
			open_levels("/sys/fs/cgroup/unified", cg, "memory.max", "memory.current");
	}
	if (!nr_levels && memroom_parse_cgroup(text, true, cg, sizeof(cg)))
		open_levels("/sys/fs/cgroup/memory", cg, "memory.limit_in_bytes",
			    "memory.usage_in_bytes");
}

/* The cgroup files' descriptors (pressure and limits). */
static void close_cgroup_files(void)
{
	if (pressure_fd >= 0)
		close(pressure_fd);
	pressure_fd = -1;
	for (unsigned i = 0; i < nr_levels; i++) {
		close(levels[i].limit_fd);
		close(levels[i].usage_fd);
	}
	nr_levels = 0;
}

/* Every file memroom_read() reads (files_lock held). */
static int open_files(struct fv_error *err)
{
	meminfo_fd = open_ro("/proc/meminfo");
	if (meminfo_fd < 0)
		return fv_err_errno(err, FV_E_IO, errno, "open /proc/meminfo");
	open_cgroup_files();
	return 0;
}

static void close_files(void)
{
	close(meminfo_fd);
	meminfo_fd = -1;
	close_cgroup_files();
}

int memroom_preopen(struct fv_error *err)
{
	int r = 0;

	pthread_mutex_lock(&files_lock);
	if (!preopened && !(r = open_files(err)))
		preopened = true;
	pthread_mutex_unlock(&files_lock);
	return r;
}

int memroom_read(struct mem_room *out, struct fv_error *err)
{
	char text[8192];
	int r = 0;

	pthread_mutex_lock(&files_lock);
	/* Without a sandbox the files are opened afresh each time: the
	 * process may have been moved to another cgroup meanwhile. */
	if (!preopened && open_files(err)) {
		pthread_mutex_unlock(&files_lock);
		return -1;
	}
	memset(out, 0, sizeof(*out));
	out->cgroup_room = out->cgroup_limit = MEMROOM_NO_LIMIT;
	if (read_all(meminfo_fd, text, sizeof(text)) <= 0 ||
	    memroom_parse_meminfo(text, &out->available))
		r = fv_err(err, FV_E_IO, "/proc/meminfo has no MemAvailable");
	for (unsigned i = 0; i < nr_levels && !r; i++) {
		uint64_t limit, usage, room;

		if (read_all(levels[i].limit_fd, text, sizeof(text)) <= 0 ||
		    memroom_parse_value(text, &limit) ||
		    read_all(levels[i].usage_fd, text, sizeof(text)) <= 0 ||
		    memroom_parse_value(text, &usage))
			continue;
		/* v1 says "no limit" with a huge page-aligned number */
		if (limit == MEMROOM_NO_LIMIT || limit >= (UINT64_MAX >> 2))
			continue;
		room = usage < limit ? limit - usage : 0;
		if (room < out->cgroup_room) {
			out->cgroup_room = room;
			out->cgroup_limit = limit;
			snprintf(out->cgroup_file, sizeof(out->cgroup_file), "%s",
				 levels[i].limit_path);
		}
	}
	if (!preopened)
		close_files();
	pthread_mutex_unlock(&files_lock);
	return r;
}

int memroom_pressure(struct mem_pressure *out, struct fv_error *err)
{
	char text[512];
	int r = 0;

	pthread_mutex_lock(&files_lock);
	if (!preopened)
		open_cgroup_files();
	if (pressure_fd < 0)
		r = fv_err(err, FV_E_IO, "no memory pressure figures (a kernel without PSI?)");
	else if (read_all(pressure_fd, text, sizeof(text)) <= 0 ||
		 memroom_parse_pressure(text, out))
		r = fv_err(err, FV_E_IO, "memory pressure figures unreadable (psi=0?)");
	else
		out->cgroup = pressure_cgroup;
	if (!preopened)
		close_cgroup_files();
	pthread_mutex_unlock(&files_lock);
	return r;
}

uint64_t memroom_bytes(const struct mem_room *r)
{
	return r->available < r->cgroup_room ? r->available : r->cgroup_room;
}
