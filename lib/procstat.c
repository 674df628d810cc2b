/*
 * procstat.c - read the kernel's memory accounting for this process.
 *
 * Everything here reads /proc, and it is the tree's only reader of each
 * file: the pagemap reader, the maps walk (the VMA count and the engine's
 * VMA recount) and the smaps sums share one VMA-header parser.
 * smaps_rollup and maps text also reach the parsers from tests and the
 * fuzzer, so the parser treats its input as
 * untrusted: it never reads past the terminating NUL, never overflows, and
 * rejects a known key whose value it cannot represent instead of guessing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "lib/procstat.h"

/* smaps_rollup is about 1 KiB; anything far bigger is not what we expect. */
#define ROLLUP_MAX (64u * 1024)
/* Read size for /proc/self/maps: seq_file fills as much as we ask for. */
#define MAPS_CHUNK (64u * 1024)
/* stdio buffer for /proc/self/smaps, which runs to megabytes. */
#define SMAPS_BUF (256u * 1024)

#define PAGEMAP_PRESENT (1ull << 63)
#define PAGEMAP_FILE (1ull << 61)    /* file page or shared anon */
#define PAGEMAP_SWAP (1ull << 62)
#define PAGEMAP_UFFD_WP (1ull << 57)
#define PAGEMAP_PFN_MASK ((1ull << 55) - 1)

/* A "Key: value" line split at the colon; val..end is the value text. */
struct kv_line {
	const char *key;
	size_t keylen;
	const char *val;
	const char *end;
};

static bool is_key_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '_';
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* True when line..end starts with an identifier followed by ':'.  Other
 * lines (the range header, blank lines, junk) are not key lines at all. */
static bool split_key(const char *line, const char *end, struct kv_line *kv)
{
	const char *p = line;

	while (p < end && is_key_char(*p))
		p++;
	if (p == line || p == end || *p != ':')
		return false;
	kv->key = line;
	kv->keylen = (size_t)(p - line);
	kv->val = p + 1;
	kv->end = end;
	return true;
}

static bool key_is(const struct kv_line *kv, const char *name)
{
	size_t n = strlen(name);

	return kv->keylen == n && memcmp(kv->key, name, n) == 0;
}

/* Parse "   <digits> kB" (trailing blanks allowed) into bytes.  Returns -1
 * for anything else, including a value that does not fit once multiplied
 * by 1024, so a corrupt line can never turn into a small wrong number. */
static int parse_kb(const char *p, const char *end, uint64_t *bytes)
{
	uint64_t kb = 0;
	const char *digits;

	while (p < end && is_blank(*p))
		p++;
	digits = p;
	while (p < end && *p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');

		if (kb > (UINT64_MAX / 1024 - d) / 10)
			return -1;
		kb = kb * 10 + d;
		p++;
	}
	if (p == digits || p == end || !is_blank(*p))
		return -1;
	while (p < end && is_blank(*p))
		p++;
	if (end - p < 2 || p[0] != 'k' || p[1] != 'B')
		return -1;
	for (p += 2; p < end; p++)
		if (!is_blank(*p))
			return -1;
	*bytes = kb * 1024;
	return 0;
}

/* Key shown in error messages, clipped: the text may be hostile. */
static int key_shown_len(const struct kv_line *kv)
{
	return kv->keylen > 40 ? 40 : (int)kv->keylen;
}

struct rollup_field {
	const char *name;
	size_t off;
};

static const struct rollup_field rollup_fields[] = {
	{ "Rss", offsetof(struct procstat_rollup, rss) },
	{ "Pss", offsetof(struct procstat_rollup, pss) },
	{ "Pss_Anon", offsetof(struct procstat_rollup, pss_anon) },
	{ "Pss_File", offsetof(struct procstat_rollup, pss_file) },
	{ "Pss_Shmem", offsetof(struct procstat_rollup, pss_shmem) },
	{ "Anonymous", offsetof(struct procstat_rollup, anonymous) },
	{ "Shared_Clean", offsetof(struct procstat_rollup, shared_clean) },
	{ "Shared_Dirty", offsetof(struct procstat_rollup, shared_dirty) },
	{ "Private_Clean", offsetof(struct procstat_rollup, private_clean) },
	{ "Private_Dirty", offsetof(struct procstat_rollup, private_dirty) },
};

static uint64_t *rollup_slot(struct procstat_rollup *r,
			     const struct kv_line *kv)
{
	size_t n = sizeof(rollup_fields) / sizeof(rollup_fields[0]);

	for (size_t i = 0; i < n; i++)
		if (key_is(kv, rollup_fields[i].name))
			return (uint64_t *)((char *)r + rollup_fields[i].off);
	return NULL;
}

/* One line of smaps_rollup text; a repeated key keeps its last value. */
static int rollup_line(const char *line, const char *end, unsigned lineno,
		       struct procstat_rollup *r, struct fv_error *err)
{
	struct kv_line kv;
	uint64_t *slot;

	if (!split_key(line, end, &kv))
		return 0;
	slot = rollup_slot(r, &kv);
	if (!slot)
		return 0;
	if (parse_kb(kv.val, kv.end, slot) < 0)
		return fv_err(err, FV_E_INVAL,
			      "smaps_rollup line %u: bad value for %.*s",
			      lineno, key_shown_len(&kv), kv.key);
	return 0;
}

int procstat_parse_rollup(const char *text, struct procstat_rollup *out,
			  struct fv_error *err)
{
	struct procstat_rollup r;
	unsigned lineno = 1;

	if (!text || !out)
		return fv_err(err, FV_E_INVAL, "smaps_rollup: no input");
	memset(&r, 0, sizeof(r));
	/* Fill a local copy so a failed parse leaves *out untouched. */
	for (const char *p = text; *p; lineno++) {
		const char *nl = strchr(p, '\n');
		const char *end = nl ? nl : p + strlen(p);

		if (rollup_line(p, end, lineno, &r, err) < 0)
			return -1;
		p = nl ? nl + 1 : end;
	}
	*out = r;
	return 0;
}

/* Read a whole small file into buf (NUL-terminated).  A file that does not
 * fit is an error rather than silently truncated text. */
static int read_small_file(const char *path, char *buf, size_t size,
			   struct fv_error *err)
{
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fv_err_errno(err, FV_E_IO, errno, "open %s", path);
	for (;;) {
		ssize_t n = read(fd, buf + len, size - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			close(fd);
			return fv_err_errno(err, FV_E_IO, e, "read %s", path);
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == size - 1) {
			close(fd);
			return fv_err(err, FV_E_IO, "%s: larger than %zu bytes",
				      path, size - 1);
		}
	}
	close(fd);
	buf[len] = '\0';
	return 0;
}

int procstat_rollup(int pid, struct procstat_rollup *out, struct fv_error *err)
{
	char path[64];
	char *buf;
	int ret;

	if (pid < 0)
		return fv_err(err, FV_E_INVAL, "smaps_rollup: bad pid %d", pid);
	if (pid == 0)
		snprintf(path, sizeof(path), "/proc/self/smaps_rollup");
	else
		snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
	buf = malloc(ROLLUP_MAX);
	if (!buf)
		return fv_err(err, FV_E_NOMEM, "smaps_rollup: no buffer");
	ret = read_small_file(path, buf, ROLLUP_MAX, err);
	if (ret == 0)
		ret = procstat_parse_rollup(buf, out, err);
	free(buf);
	if (ret < 0)
		fv_err_prefix(err, "pid %d: ", pid);
	return ret;
}

/* Parse lowercase hex as /proc prints it; at most 16 digits. */
static const char *parse_hex(const char *p, const char *end, uint64_t *v)
{
	const char *start = p;
	uint64_t x = 0;

	for (; p < end && p - start < 16; p++) {
		if (*p >= '0' && *p <= '9')
			x = x << 4 | (uint64_t)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			x = x << 4 | (uint64_t)(*p - 'a' + 10);
		else
			break;
	}
	if (p == start)
		return NULL;
	*v = x;
	return p;
}

/* A VMA header is "start-end perms ...".  Key lines start with an
 * uppercase letter, so they never parse as one. */
static bool parse_vma_header(const char *line, const char *end,
			     uint64_t *vstart, uint64_t *vend)
{
	const char *p = parse_hex(line, end, vstart);

	if (!p || p == end || *p != '-')
		return false;
	p = parse_hex(p + 1, end, vend);
	return p && p < end && *p == ' ';
}

struct range_sum {
	uint64_t start, end;
	bool inside;    /* the current VMA lies wholly in [start, end) */
	uint64_t rss, pss, anon;
};

static int range_add(uint64_t *sum, const struct kv_line *kv,
		     struct fv_error *err)
{
	uint64_t v;

	if (parse_kb(kv->val, kv->end, &v) < 0)
		return fv_err(err, FV_E_INVAL, "smaps: bad value for %.*s",
			      key_shown_len(kv), kv->key);
	if (*sum > UINT64_MAX - v)
		return fv_err(err, FV_E_RANGE, "smaps: %.*s sum overflows",
			      key_shown_len(kv), kv->key);
	*sum += v;
	return 0;
}

static int range_line(struct range_sum *s, const char *line, size_t len,
		      struct fv_error *err)
{
	const char *end = line + len;
	struct kv_line kv;
	uint64_t vs, ve;

	if (len && end[-1] == '\n')
		end--;
	if (parse_vma_header(line, end, &vs, &ve)) {
		s->inside = vs >= s->start && ve <= s->end && vs < ve;
		return 0;
	}
	/* Lines of VMAs outside the range are skipped without parsing. */
	if (!s->inside || !split_key(line, end, &kv))
		return 0;
	if (key_is(&kv, "Rss"))
		return range_add(&s->rss, &kv, err);
	if (key_is(&kv, "Pss"))
		return range_add(&s->pss, &kv, err);
	if (key_is(&kv, "Anonymous"))
		return range_add(&s->anon, &kv, err);
	return 0;
}

/*
 * Only VMAs wholly inside [start, end) count; one straddling a boundary is
 * left out entirely rather than prorated, since smaps gives no per-page
 * split.  foldvm's guest RAM is always whole VMAs, so nothing is lost.
 */
int procstat_range(uint64_t start, uint64_t end, struct procstat_mem *out,
		   struct fv_error *err)
{
	struct range_sum s = { .start = start, .end = end };
	char *vbuf, *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;
	int ret = 0;

	if (start > end)
		return fv_err(err, FV_E_RANGE, "smaps: range %#llx-%#llx",
			      (unsigned long long)start,
			      (unsigned long long)end);
	f = fopen("/proc/self/smaps", "re");
	if (!f)
		return fv_err_errno(err, FV_E_IO, errno,
				    "open /proc/self/smaps");
	/* Big reads: smaps of a process with many VMAs is megabytes. */
	vbuf = malloc(SMAPS_BUF);
	if (vbuf)
		setvbuf(f, vbuf, _IOFBF, SMAPS_BUF);
	errno = 0;
	while (ret == 0 && (n = getline(&line, &cap, f)) > 0)
		ret = range_line(&s, line, (size_t)n, err);
	if (ret == 0 && ferror(f))
		ret = fv_err_errno(err, FV_E_IO, errno ? errno : EIO,
				   "read /proc/self/smaps");
	free(line);
	fclose(f);
	free(vbuf);
	if (ret == 0) {
		out->rss = s.rss;
		out->pss = s.pss;
		out->anon = s.anon;
	}
	return ret;
}

/* Report one maps line (without its '\n') to fn if its header parses. */
static void maps_line(const char *line, const char *end, procstat_vma_fn fn,
		      void *opaque)
{
	uint64_t vs, ve;

	if (fn && parse_vma_header(line, end, &vs, &ve))
		fn(opaque, vs, ve);
}

/* The complete lines of text..text+len; returns the bytes they take (the
 * rest is a line still being read). */
static size_t maps_lines(const char *text, size_t len, procstat_vma_fn fn,
			 void *opaque, uint64_t *lines)
{
	const char *p = text, *end = text + len, *nl;

	while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
		maps_line(p, nl, fn, opaque);
		(*lines)++;
		p = nl + 1;
	}
	return (size_t)(p - text);
}

uint64_t procstat_parse_maps(const char *text, size_t len, procstat_vma_fn fn,
			     void *opaque)
{
	uint64_t lines = 0;
	size_t done = maps_lines(text, len, fn, opaque, &lines);

	if (done < len) {
		maps_line(text + done, text + len, fn, opaque);
		lines++;
	}
	return lines;
}

/*
 * Reads in big blocks (seq_file fills as much as asked) and carries a line
 * cut at a block's end over to the next block.  A line longer than the
 * whole buffer cannot come from the kernel (a path is at most PATH_MAX);
 * should one appear, its first MAPS_CHUNK bytes stand for it and the rest,
 * up to its '\n', is skipped, so it still counts once.
 */
static int maps_read(int fd, char *buf, procstat_vma_fn fn, void *opaque,
		     uint64_t *lines)
{
	size_t carry = 0;
	bool skipping = false;

	for (;;) {
		ssize_t n = read(fd, buf + carry, MAPS_CHUNK - carry);
		size_t len, done;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			break;
		len = carry + (size_t)n;
		done = 0;
		if (skipping) {
			const char *nl = memchr(buf, '\n', len);

			if (!nl) {
				carry = 0;
				continue;
			}
			done = (size_t)(nl + 1 - buf);
			skipping = false;
		}
		done += maps_lines(buf + done, len - done, fn, opaque, lines);
		carry = len - done;
		if (carry == MAPS_CHUNK) {
			maps_line(buf, buf + carry, fn, opaque);
			(*lines)++;
			carry = 0;
			skipping = true;
		}
		memmove(buf, buf + done, carry);
	}
	if (carry) {
		maps_line(buf, buf + carry, fn, opaque);
		(*lines)++;
	}
	return 0;
}

int procstat_maps(procstat_vma_fn fn, void *opaque, uint64_t *count,
		  struct fv_error *err)
{
	uint64_t lines = 0;
	char *buf;
	int fd, e;

	fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fv_err_errno(err, FV_E_IO, errno,
				    "open /proc/self/maps");
	buf = malloc(MAPS_CHUNK);
	if (!buf) {
		close(fd);
		return fv_err(err, FV_E_NOMEM, "maps: no buffer");
	}
	e = maps_read(fd, buf, fn, opaque, &lines);
	free(buf);
	close(fd);
	if (e)
		return fv_err_errno(err, FV_E_IO, e, "read /proc/self/maps");
	*count = lines;
	return 0;
}

int procstat_vma_count(uint64_t *count, struct fv_error *err)
{
	return procstat_maps(NULL, NULL, count, err);
}

int procstat_max_map_count(uint64_t *count, struct fv_error *err)
{
	static const char path[] = "/proc/sys/vm/max_map_count";
	char buf[64], *end;
	unsigned long long v;

	if (read_small_file(path, buf, sizeof(buf), err) < 0)
		return -1;
	if (buf[0] < '0' || buf[0] > '9')
		return fv_err(err, FV_E_INVAL, "%s: not a number", path);
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno || (*end && *end != '\n'))
		return fv_err(err, FV_E_INVAL, "%s: not a number", path);
	*count = v;
	return 0;
}

void procstat_pagemap_decode(uint64_t entry, struct procstat_page *out)
{
	out->present = (entry & PAGEMAP_PRESENT) != 0;
	out->file = (entry & PAGEMAP_FILE) != 0;
	out->swapped = (entry & (PAGEMAP_SWAP | PAGEMAP_UFFD_WP)) == PAGEMAP_SWAP;
	/* Without CAP_SYS_ADMIN the kernel reports PFN 0 for every page; a
	 * page that is not present has no PFN (swap entries use the bits). */
	out->pfn = out->present ? entry & PAGEMAP_PFN_MASK : 0;
}

/* See procstat_pagemap_preopen: -1 until then. */
static int pagemap_preopened = -1;

int procstat_pagemap_preopen(struct fv_error *err)
{
	if (pagemap_preopened >= 0)
		return 0;
	pagemap_preopened = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pagemap_preopened < 0)
		return fv_err_errno(err, FV_E_IO, errno, "open /proc/self/pagemap");
	return 0;
}

int procstat_pagemap_open(struct procstat_pagemap *pm, struct fv_error *err)
{
	/* Readers use pread, so one open file serves them all. */
	if (pagemap_preopened >= 0) {
		pm->fd = fcntl(pagemap_preopened, F_DUPFD_CLOEXEC, 0);
		if (pm->fd < 0)
			return fv_err_errno(err, FV_E_IO, errno, "dup /proc/self/pagemap");
		return 0;
	}
	pm->fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pm->fd < 0)
		return fv_err_errno(err, FV_E_IO, errno, "open /proc/self/pagemap");
	return 0;
}

void procstat_pagemap_close(struct procstat_pagemap *pm)
{
	if (pm->fd >= 0)
		close(pm->fd);
	pm->fd = -1;
}

int procstat_pagemap_read(const struct procstat_pagemap *pm, const void *addr,
			  struct procstat_page *out, struct fv_error *err)
{
	long psize = sysconf(_SC_PAGESIZE);
	uint64_t entry;
	off_t off;
	ssize_t n;

	memset(out, 0, sizeof(*out));
	if (psize <= 0)
		psize = 4096;
	off = (off_t)((uintptr_t)addr / (uint64_t)psize * sizeof(entry));
	do
		n = pread(pm->fd, &entry, sizeof(entry), off);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(entry))
		return fv_err_errno(err, FV_E_IO, n < 0 ? errno : EIO,
				    "pagemap entry for %p", addr);
	procstat_pagemap_decode(entry, out);
	return 0;
}

#define KPF_KSM_BIT 21 /* include/uapi/linux/kernel-page-flags.h */

int procstat_page_ksm(const struct procstat_pagemap *pm, const void *addr,
		      bool *ksm, struct fv_error *err)
{
	struct procstat_page pg;
	uint64_t flags;
	ssize_t n;
	int fd;

	*ksm = false;
	if (procstat_pagemap_read(pm, addr, &pg, err))
		return -1;
	if (!pg.present)
		return 0;
	if (pg.pfn == 0)
		return fv_err(err, FV_E_STATE, "page frame numbers are hidden (not root)");
	fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fv_err_errno(err, FV_E_IO, errno, "open /proc/kpageflags");
	do
		n = pread(fd, &flags, sizeof(flags), (off_t)(pg.pfn * sizeof(flags)));
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n != (ssize_t)sizeof(flags))
		return fv_err_errno(err, FV_E_IO, n < 0 ? errno : EIO,
				    "/proc/kpageflags entry of frame %llu",
				    (unsigned long long)pg.pfn);
	*ksm = (flags >> KPF_KSM_BIT) & 1;
	return 0;
}

int procstat_pfn(const void *addr, uint64_t *pfn, bool *present,
		 struct fv_error *err)
{
	struct procstat_pagemap pm;
	struct procstat_page pg;
	int r;

	if (procstat_pagemap_open(&pm, err))
		return -1;
	r = procstat_pagemap_read(&pm, addr, &pg, err);
	procstat_pagemap_close(&pm);
	if (r)
		return -1;
	*present = pg.present;
	*pfn = pg.pfn;
	return 0;
}

uint64_t procstat_thread_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t procstat_zero_pfn(void)
{
	uint8_t *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t pfn = 0;
	bool present = false;

	if (p == MAP_FAILED)
		return 0;
	/* A read fault on untouched anonymous memory maps the zero page. */
	(void)*(volatile uint8_t *)p;
	if (procstat_pfn(p, &pfn, &present, NULL) || !present)
		pfn = 0;
	munmap(p, 4096);
	return pfn;
}
