/* test_procstat.c - the /proc accounting helpers: the rollup parser on
 * canned text, then the live readers against mappings made here, whose
 * cost and sharing the kernel must report exactly. */
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <CUnit/CUnit.h>
#include "tests/unit/unit.h"
#include "lib/memroom.h"
#include "lib/procstat.h"

#define PAGE 4096u
#define NPAGES 64u

static const char canned_rollup[] =
	"55d0c0000000-7ffd40517000 ---p 00000000 00:00 0"
	"                          [rollup]\n"
	"Rss:                1644 kB\n"
	"Pss:                 505 kB\n"
	"Pss_Dirty:           112 kB\n"
	"Pss_Anon:            111 kB\n"
	"Pss_File:            393 kB\n"
	"Pss_Shmem:             1 kB\n"
	"Shared_Clean:       1460 kB\n"
	"Shared_Dirty:          2 kB\n"
	"Private_Clean:        72 kB\n"
	"Private_Dirty:       113 kB\n"
	"Referenced:         1644 kB\n"
	"Anonymous:           114 kB\n"
	"KSM:                   0 kB\n"
	"Swap:                  0 kB\n";

static void test_parse_canned(void)
{
	struct procstat_rollup r;
	struct fv_error err;

	CU_ASSERT_EQUAL_FATAL(procstat_parse_rollup(canned_rollup, &r, &err),
			      0);
	CU_ASSERT_EQUAL(r.rss, 1644ull * 1024);
	CU_ASSERT_EQUAL(r.pss, 505ull * 1024);
	CU_ASSERT_EQUAL(r.pss_anon, 111ull * 1024);
	CU_ASSERT_EQUAL(r.pss_file, 393ull * 1024);
	CU_ASSERT_EQUAL(r.pss_shmem, 1ull * 1024);
	CU_ASSERT_EQUAL(r.anonymous, 114ull * 1024);
	CU_ASSERT_EQUAL(r.shared_clean, 1460ull * 1024);
	CU_ASSERT_EQUAL(r.shared_dirty, 2ull * 1024);
	CU_ASSERT_EQUAL(r.private_clean, 72ull * 1024);
	CU_ASSERT_EQUAL(r.private_dirty, 113ull * 1024);
}

static void expect_inval(const char *text)
{
	struct procstat_rollup r;
	struct fv_error err;

	memset(&r, 0x5a, sizeof(r));
	CU_ASSERT_EQUAL(procstat_parse_rollup(text, &r, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	/* a failed parse leaves the output alone */
	CU_ASSERT_EQUAL(r.rss, 0x5a5a5a5a5a5a5a5aull);
}

static void test_parse_malformed(void)
{
	expect_inval("Rss: 12x4 kB\n");
	expect_inval("Rss: -5 kB\n");
	expect_inval("Pss:  kB\n");
	expect_inval("Pss: 12\n");
	expect_inval("Pss: 12 MB\n");
	expect_inval("Pss: 12 kB trailing\n");
	expect_inval("Anonymous: 0x10 kB\n");
	/* 2^54 kB is 2^64 bytes: one past what fits */
	expect_inval("Rss: 18014398509481984 kB\n");
	expect_inval("Rss: 99999999999999999999999 kB\n");
}

/* The error names the line and the key. */
static void test_parse_error_msg(void)
{
	struct procstat_rollup r;
	struct fv_error err;

	CU_ASSERT_EQUAL(procstat_parse_rollup("hdr\nRss: 1 kB\nPss: x kB",
					      &r, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "line 3"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "Pss"));
}

static void test_parse_limits(void)
{
	struct procstat_rollup r;
	struct fv_error err;

	/* 2^54 - 1 kB is the largest value that fits in bytes */
	CU_ASSERT_EQUAL(procstat_parse_rollup("Rss: 18014398509481983 kB",
					      &r, &err), 0);
	CU_ASSERT_EQUAL(r.rss, (((uint64_t)1 << 54) - 1) * 1024);
	/* tabs, CRLF and no final newline are all fine */
	CU_ASSERT_EQUAL(procstat_parse_rollup("Pss:\t7\tkB\r\nRss: 3 kB",
					      &r, &err), 0);
	CU_ASSERT_EQUAL(r.pss, 7 * 1024);
	CU_ASSERT_EQUAL(r.rss, 3 * 1024);
}

static void test_parse_garbage(void)
{
	struct procstat_rollup r;
	struct fv_error err;

	/* junk, unknown keys with odd values, and near-miss keys are ignored */
	CU_ASSERT_EQUAL(procstat_parse_rollup(
		"garbage line\n\n:::\nRssX: nonsense\nrss: 5 kB\n"
		"Unknown: 12x kB\n Rss: 9 kB\nRss 9 kB\nPss: 2 kB\n"
		"Referenced: lots\n", &r, &err), 0);
	CU_ASSERT_EQUAL(r.pss, 2 * 1024);
	CU_ASSERT_EQUAL(r.rss, 0);
	CU_ASSERT_EQUAL(r.anonymous, 0);
}

static void test_parse_empty(void)
{
	struct procstat_rollup r, zero;
	struct fv_error err;

	memset(&zero, 0, sizeof(zero));
	memset(&r, 0xff, sizeof(r));
	CU_ASSERT_EQUAL(procstat_parse_rollup("", &r, &err), 0);
	CU_ASSERT_EQUAL(memcmp(&r, &zero, sizeof(r)), 0);
	memset(&r, 0xff, sizeof(r));
	CU_ASSERT_EQUAL(procstat_parse_rollup("\n\n\n", &r, &err), 0);
	CU_ASSERT_EQUAL(memcmp(&r, &zero, sizeof(r)), 0);
}

static void test_rollup_self(void)
{
	struct procstat_rollup r;
	struct fv_error err;

	CU_ASSERT_EQUAL_FATAL(procstat_rollup(0, &r, &err), 0);
	CU_ASSERT(r.rss > 0);
	CU_ASSERT(r.pss > 0);
	CU_ASSERT(r.pss <= r.rss);
	CU_ASSERT_EQUAL(procstat_rollup(getpid(), &r, &err), 0);
	CU_ASSERT(r.rss > 0);
	CU_ASSERT_EQUAL(procstat_rollup(-1, &r, &err), -1);
}

static void touch(volatile uint8_t *p, size_t pages)
{
	for (size_t i = 0; i < pages; i++)
		p[i * PAGE] = (uint8_t)(i + 1);
}

/* A private anonymous mapping between two PROT_NONE guard pages, so it is
 * a VMA of its own: the kernel merges an unguarded one with any compatible
 * neighbour, which would move its bounds and change the VMA count. */
static uint8_t *map_isolated(size_t pages, int prot)
{
	uint8_t *g = mmap(NULL, (pages + 2) * PAGE, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (g == MAP_FAILED)
		return NULL;
	if (mprotect(g + PAGE, pages * PAGE, prot) != 0) {
		munmap(g, (pages + 2) * PAGE);
		return NULL;
	}
	return g + PAGE;
}

static void unmap_isolated(uint8_t *p, size_t pages)
{
	if (p)
		munmap(p - PAGE, (pages + 2) * PAGE);
}

static void test_range(void)
{
	size_t len = NPAGES * PAGE;
	struct procstat_mem m = { 1, 1, 1 };
	uint64_t base;
	struct fv_error err;
	uint8_t *p;

	p = map_isolated(NPAGES, PROT_READ | PROT_WRITE);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	/* untouched: nothing resident */
	base = (uint64_t)(uintptr_t)p;
	CU_ASSERT_EQUAL(procstat_range(base, base + len, &m, &err), 0);
	CU_ASSERT_EQUAL(m.rss, 0);
	CU_ASSERT_EQUAL(m.anon, 0);
	touch(p, NPAGES);
	CU_ASSERT_EQUAL(procstat_range(base, base + len, &m, &err), 0);
	CU_ASSERT_EQUAL(m.rss, (uint64_t)len);
	CU_ASSERT_EQUAL(m.pss, (uint64_t)len);
	CU_ASSERT_EQUAL(m.anon, (uint64_t)len);
	/* a range cutting the VMA leaves it out: only whole VMAs count */
	CU_ASSERT_EQUAL(procstat_range(base + PAGE, base + len, &m, &err), 0);
	CU_ASSERT_EQUAL(m.rss, 0);
	CU_ASSERT_EQUAL(procstat_range(base, base, &m, &err), 0);
	CU_ASSERT_EQUAL(m.rss, 0);
	CU_ASSERT_EQUAL(procstat_range(base + len, base, &m, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
	unmap_isolated(p, NPAGES);
}

static void test_vma_count(void)
{
	uint64_t before = 0, after = 0, max = 0;
	struct fv_error err;
	uint8_t *a, *b;

	CU_ASSERT_EQUAL_FATAL(procstat_vma_count(&before, &err), 0);
	CU_ASSERT(before > 0);
	/* different protections and guard pages: nothing can merge */
	a = map_isolated(2, PROT_READ);
	b = map_isolated(2, PROT_READ | PROT_WRITE);
	CU_ASSERT_FATAL(a && b);
	CU_ASSERT_EQUAL(procstat_vma_count(&after, &err), 0);
	CU_ASSERT(after >= before + 2);
	unmap_isolated(a, 2);
	unmap_isolated(b, 2);
	CU_ASSERT_EQUAL(procstat_max_map_count(&max, &err), 0);
	CU_ASSERT(max > 0);
	CU_ASSERT(max >= after);
}

static void test_pfn(void)
{
	uint64_t pfn0 = 0, pfn1 = 0;
	bool present = false;
	struct fv_error err;
	uint8_t *p, *cold;

	p = map_isolated(2, PROT_READ | PROT_WRITE);
	cold = map_isolated(1, PROT_READ | PROT_WRITE);
	CU_ASSERT_FATAL(p && cold);
	/* never touched (a one-page VMA, so no large folio covers it) */
	present = true;
	CU_ASSERT_EQUAL(procstat_pfn(cold, &pfn0, &present, &err), 0);
	CU_ASSERT_FALSE(present);
	CU_ASSERT_EQUAL(pfn0, 0);
	touch(p, 2);
	CU_ASSERT_EQUAL(procstat_pfn(p, &pfn0, &present, &err), 0);
	CU_ASSERT_TRUE(present);
	CU_ASSERT_EQUAL(procstat_pfn(p + PAGE + 123, &pfn1, &present, &err), 0);
	CU_ASSERT_TRUE(present);
	if (geteuid() == 0) {
		struct procstat_pagemap pm;
		bool ksm = true;

		CU_ASSERT_NOT_EQUAL(pfn0, 0);
		CU_ASSERT_NOT_EQUAL(pfn1, 0);
		CU_ASSERT_NOT_EQUAL(pfn0, pfn1);
		/* a private anonymous page is no KSM page; an absent one neither */
		CU_ASSERT_EQUAL_FATAL(procstat_pagemap_open(&pm, &err), 0);
		CU_ASSERT_EQUAL(procstat_page_ksm(&pm, p, &ksm, &err), 0);
		CU_ASSERT_FALSE(ksm);
		ksm = true;
		CU_ASSERT_EQUAL(procstat_page_ksm(&pm, cold, &ksm, &err), 0);
		CU_ASSERT_FALSE(ksm);
		procstat_pagemap_close(&pm);
	}
	unmap_isolated(p, 2);
	unmap_isolated(cold, 1);
}

/* One memfd page mapped twice is one frame: how foldvm proves sharing. */
static void test_pfn_shared(void)
{
	uint64_t pfn_a = 0, pfn_b = 0;
	bool pa = false, pb = false;
	struct fv_error err;
	volatile uint8_t *a, *b;
	int fd;

	fd = memfd_create("procstat-test", MFD_CLOEXEC);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(ftruncate(fd, PAGE) == 0);
	a = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	b = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	CU_ASSERT_FATAL(a != MAP_FAILED && b != MAP_FAILED);
	CU_ASSERT(a != b);
	a[0] = 0x42;
	CU_ASSERT_EQUAL(b[0], 0x42); /* also faults b's page in */
	CU_ASSERT_EQUAL(procstat_pfn((const void *)a, &pfn_a, &pa, &err), 0);
	CU_ASSERT_EQUAL(procstat_pfn((const void *)b, &pfn_b, &pb, &err), 0);
	CU_ASSERT_TRUE(pa);
	CU_ASSERT_TRUE(pb);
	CU_ASSERT_EQUAL(pfn_a, pfn_b);
	if (geteuid() == 0)
		CU_ASSERT_NOT_EQUAL(pfn_a, 0);
	munmap((void *)a, PAGE);
	munmap((void *)b, PAGE);
}

/* ---- the maps parser and the pagemap reader ---- */

#define MAX_SEEN 8

struct seen_vmas {
	unsigned n;
	uint64_t start[MAX_SEEN], end[MAX_SEEN];
};

static void see_vma(void *opaque, uint64_t start, uint64_t end)
{
	struct seen_vmas *s = opaque;

	if (s->n < MAX_SEEN) {
		s->start[s->n] = start;
		s->end[s->n] = end;
	}
	s->n++;
}

static const char canned_maps[] =
	"55d0c0000000-55d0c0021000 r--p 00000000 fe:01 1234   /usr/bin/foldvm\n"
	"7f00aa000000-7f00ab000000 rw-p 00000000 00:00 0 \n"
	"not a header at all\n"
	"7ffd40500000-7ffd40521000 rw-p 00000000 00:00 0      [stack]\n"
	"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]";

static void test_parse_maps(void)
{
	struct seen_vmas s = { 0 };
	uint64_t lines;

	lines = procstat_parse_maps(canned_maps, strlen(canned_maps), see_vma, &s);
	/* five lines, the last without '\n'; the junk one is not a VMA */
	CU_ASSERT_EQUAL(lines, 5);
	CU_ASSERT_EQUAL_FATAL(s.n, 4);
	CU_ASSERT_EQUAL(s.start[0], 0x55d0c0000000ull);
	CU_ASSERT_EQUAL(s.end[0], 0x55d0c0021000ull);
	CU_ASSERT_EQUAL(s.start[1], 0x7f00aa000000ull);
	CU_ASSERT_EQUAL(s.end[1], 0x7f00ab000000ull);
	CU_ASSERT_EQUAL(s.start[2], 0x7ffd40500000ull);
	CU_ASSERT_EQUAL(s.start[3], 0xffffffffff600000ull);
	CU_ASSERT_EQUAL(s.end[3], 0xffffffffff601000ull);
	/* no callback: only the count */
	CU_ASSERT_EQUAL(procstat_parse_maps(canned_maps, strlen(canned_maps),
					    NULL, NULL), 5);
}

static void test_parse_maps_edges(void)
{
	static const char *const junk[] = {
		"1000-2000",            /* no space after the end */
		"1000 2000 rw-p",       /* no dash */
		"-2000 rw-p",           /* no start */
		"1000- rw-p",           /* no end */
		"X1000-2000 rw-p",      /* not hex */
		"11112222333344445-2000 rw-p", /* start longer than 64 bits */
	};
	struct seen_vmas s = { 0 };

	CU_ASSERT_EQUAL(procstat_parse_maps("", 0, see_vma, &s), 0);
	CU_ASSERT_EQUAL(procstat_parse_maps("\n", 1, see_vma, &s), 1);
	CU_ASSERT_EQUAL(procstat_parse_maps("\n\n", 2, see_vma, &s), 2);
	CU_ASSERT_EQUAL(s.n, 0);
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		CU_ASSERT_EQUAL(procstat_parse_maps(junk[i], strlen(junk[i]),
						    see_vma, &s), 1);
		CU_ASSERT_EQUAL(s.n, 0);
	}
	/* len bounds the text: the second line is not read */
	CU_ASSERT_EQUAL(procstat_parse_maps("a-b x\nc-d y\n", 6, see_vma, &s), 1);
	CU_ASSERT_EQUAL_FATAL(s.n, 1);
	CU_ASSERT_EQUAL(s.start[0], 0xa);
	CU_ASSERT_EQUAL(s.end[0], 0xb);
}

/* The live walk sees a mapping made here, with its exact bounds, and counts
 * what procstat_vma_count counts. */
struct find_vma {
	uint64_t start, end;
	uint64_t calls;
	bool found;
};

static void find_vma(void *opaque, uint64_t start, uint64_t end)
{
	struct find_vma *f = opaque;

	f->calls++;
	if (start == f->start && end == f->end)
		f->found = true;
}

static void test_maps_self(void)
{
	struct find_vma f = { 0 };
	uint64_t count = 0, count2 = 0;
	struct fv_error err;
	uint8_t *p = map_isolated(3, PROT_READ);

	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	f.start = (uint64_t)(uintptr_t)p;
	f.end = f.start + 3 * PAGE;
	CU_ASSERT_EQUAL_FATAL(procstat_maps(find_vma, &f, &count, &err), 0);
	CU_ASSERT_TRUE(f.found);
	CU_ASSERT_EQUAL(f.calls, count); /* every line of the kernel's is a VMA */
	CU_ASSERT_EQUAL(procstat_vma_count(&count2, &err), 0);
	CU_ASSERT_EQUAL(count2, count);
	unmap_isolated(p, 3);
}

static void test_pagemap_decode(void)
{
	struct procstat_page pg;

	procstat_pagemap_decode(1ull << 63 | 1ull << 61 | 0x1234, &pg);
	CU_ASSERT_TRUE(pg.present);
	CU_ASSERT_TRUE(pg.file);
	CU_ASSERT_EQUAL(pg.pfn, 0x1234);
	procstat_pagemap_decode(1ull << 63 | 0x55, &pg);
	CU_ASSERT_TRUE(pg.present);
	CU_ASSERT_FALSE(pg.file);
	CU_ASSERT_EQUAL(pg.pfn, 0x55);
	/* swapped: bits 0-54 hold the swap entry, not a PFN */
	procstat_pagemap_decode(1ull << 62 | 0x777, &pg);
	CU_ASSERT_FALSE(pg.present);
	CU_ASSERT_TRUE(pg.swapped);
	CU_ASSERT_EQUAL(pg.pfn, 0);
	/* a write-protect marker is a swap-type entry, but no page */
	procstat_pagemap_decode(1ull << 62 | 1ull << 57, &pg);
	CU_ASSERT_FALSE(pg.present);
	CU_ASSERT_FALSE(pg.swapped);
	/* the flag bits above 55 are not part of the PFN */
	procstat_pagemap_decode(1ull << 63 | 1ull << 55 | 1ull << 56 | 7, &pg);
	CU_ASSERT_EQUAL(pg.pfn, 7);
	procstat_pagemap_decode(0, &pg);
	CU_ASSERT_FALSE(pg.present);
	CU_ASSERT_FALSE(pg.file);
	CU_ASSERT_FALSE(pg.swapped);
}

/* The reader, kept open over several pages: an anonymous copy is not a
 * file page, a shared memfd page is; the PFNs agree with procstat_pfn. */
static void test_pagemap_reader(void)
{
	struct procstat_pagemap pm;
	struct procstat_page pg, bad = { .present = true };
	struct fv_error err;
	uint64_t pfn = 0;
	bool present = false;
	volatile uint8_t *shared;
	uint8_t *anon = map_isolated(2, PROT_READ | PROT_WRITE);
	int fd = memfd_create("procstat-pagemap", MFD_CLOEXEC);

	CU_ASSERT_FATAL(anon && fd >= 0);
	CU_ASSERT_FATAL(ftruncate(fd, PAGE) == 0);
	shared = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	CU_ASSERT_FATAL(shared != MAP_FAILED);
	CU_ASSERT_EQUAL_FATAL(procstat_pagemap_open(&pm, &err), 0);
	CU_ASSERT_EQUAL(procstat_pagemap_read(&pm, anon, &pg, &err), 0);
	CU_ASSERT_FALSE(pg.present); /* not touched yet */
	touch(anon, 2);
	shared[0] = 1;
	CU_ASSERT_EQUAL(procstat_pagemap_read(&pm, anon + PAGE + 5, &pg, &err), 0);
	CU_ASSERT_TRUE(pg.present);
	CU_ASSERT_FALSE(pg.file);
	CU_ASSERT_EQUAL(procstat_pfn(anon + PAGE, &pfn, &present, &err), 0);
	CU_ASSERT_EQUAL(pg.pfn, pfn);
	CU_ASSERT_EQUAL(procstat_pagemap_read(&pm, (const void *)shared, &pg, &err), 0);
	CU_ASSERT_TRUE(pg.present);
	CU_ASSERT_TRUE(pg.file);
	procstat_pagemap_close(&pm);
	CU_ASSERT_EQUAL(pm.fd, -1);
	procstat_pagemap_close(&pm); /* twice is harmless */
	/* a closed reader fails, and says "not present" */
	CU_ASSERT_EQUAL(procstat_pagemap_read(&pm, anon, &bad, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_IO);
	CU_ASSERT_FALSE(bad.present);
	munmap((void *)shared, PAGE);
	unmap_isolated(anon, 2);
}

static void test_thread_cpu(void)
{
	uint64_t t0 = procstat_thread_cpu_ns(), t1;
	volatile uint64_t x = 0;

	CU_ASSERT(t0 > 0);
	/* spin until the clock moves, bounded so a broken clock fails */
	for (uint64_t i = 0; i < 2000000000ull; i++) {
		x += i;
		if ((i & 0xfffff) == 0 &&
		    procstat_thread_cpu_ns() > t0 + 1000000)
			break;
	}
	t1 = procstat_thread_cpu_ns();
	(void)x;
	CU_ASSERT(t1 > t0);
	CU_ASSERT(t1 - t0 >= 1000000);
}

/* ---- memroom: MemAvailable and the cgroup's room ---- */

static void test_memroom_meminfo(void)
{
	uint64_t b = 1;

	CU_ASSERT(memroom_parse_meminfo("MemTotal:  100 kB\nMemFree: 5 kB\n"
					"MemAvailable:    2048 kB\nBuffers: 1 kB\n", &b) == 0);
	CU_ASSERT(b == 2048 * 1024);
	CU_ASSERT(memroom_parse_meminfo("MemAvailable: 7 kB", &b) == 0 && b == 7 * 1024);
	/* absent, not at a line's start, not a number, overflowing */
	CU_ASSERT(memroom_parse_meminfo("MemTotal: 100 kB\n", &b) == -1);
	CU_ASSERT(memroom_parse_meminfo("XMemAvailable: 1 kB\n", &b) == -1);
	CU_ASSERT(memroom_parse_meminfo("MemAvailable: lots\n", &b) == -1);
	CU_ASSERT(memroom_parse_meminfo("MemAvailable: 99999999999999999999 kB\n", &b) == -1);
	CU_ASSERT(memroom_parse_meminfo("", &b) == -1);
}

static void test_memroom_cgroup(void)
{
	const char *hybrid = "12:pids:/a\n5:cpu,memory,blkio:/user/x.scope\n0::/init.scope\n";
	char p[64];

	CU_ASSERT(memroom_parse_cgroup(hybrid, true, p, sizeof(p)) && !strcmp(p, "/user/x.scope"));
	CU_ASSERT(memroom_parse_cgroup(hybrid, false, p, sizeof(p)) && !strcmp(p, "/init.scope"));
	CU_ASSERT(memroom_parse_cgroup("0::/\n", false, p, sizeof(p)) && !strcmp(p, "/"));
	/* a controller named like memory is not memory; no v2 line */
	CU_ASSERT(!memroom_parse_cgroup("3:memoryx:/a\n4:xmemory:/b\n", true, p, sizeof(p)));
	CU_ASSERT(!memroom_parse_cgroup("3:memory:/a\n", false, p, sizeof(p)));
	/* malformed lines and paths too long are no answer */
	CU_ASSERT(!memroom_parse_cgroup("garbage\n:\n", true, p, sizeof(p)));
	CU_ASSERT(!memroom_parse_cgroup("0::relative\n", false, p, sizeof(p)));
	CU_ASSERT(!memroom_parse_cgroup("0::/a-very-long-path\n", false, p, 8));
	CU_ASSERT(!memroom_parse_cgroup("", false, p, sizeof(p)));
}

static void test_memroom_value(void)
{
	uint64_t v = 0;

	CU_ASSERT(memroom_parse_value("max\n", &v) == 0 && v == MEMROOM_NO_LIMIT);
	CU_ASSERT(memroom_parse_value("1073741824\n", &v) == 0 && v == 1073741824ull);
	CU_ASSERT(memroom_parse_value("9223372036854771712", &v) == 0);
	CU_ASSERT(memroom_parse_value("", &v) == -1);
	CU_ASSERT(memroom_parse_value("12x\n", &v) == -1);
	CU_ASSERT(memroom_parse_value("maximum\n", &v) == -1);
	CU_ASSERT(memroom_parse_value("99999999999999999999999\n", &v) == -1);
}

static void test_memroom_pressure_parse(void)
{
	struct mem_pressure m;

	CU_ASSERT(memroom_parse_pressure(
		"some avg10=12.34 avg60=1.00 avg300=0.50 total=123456\n"
		"full avg10=0.07 avg60=0.00 avg300=0.00 total=99\n", &m) == 0);
	CU_ASSERT(m.some_avg10 == 1234 && m.full_avg10 == 7 && m.some_total_us == 123456);
	CU_ASSERT(memroom_parse_pressure("some avg10=100.00 avg60=0 avg300=0 total=0\n", &m) == 0);
	CU_ASSERT(m.some_avg10 == 10000 && m.full_avg10 == 0);
	/* over 100%, one decimal, no total, not first, a garbled full line */
	CU_ASSERT(memroom_parse_pressure("some avg10=100.01 total=1\n", &m) == -1);
	CU_ASSERT(memroom_parse_pressure("some avg10=1.5 total=1\n", &m) == -1);
	CU_ASSERT(memroom_parse_pressure("some avg10=1.50 avg60=1.00\n", &m) == -1);
	CU_ASSERT(memroom_parse_pressure("xsome avg10=1.50 total=1\n", &m) == -1);
	CU_ASSERT(memroom_parse_pressure("some avg10=1.50 total=1\nfull avg10=x\n", &m) == -1);
	CU_ASSERT(memroom_parse_pressure("", &m) == -1);
}

/* This process's figures: MemAvailable is there and below MemTotal's
 * order; whatever cgroup it is in, the smaller room is reported. */
static void test_memroom_self(void)
{
	struct mem_room r;
	struct fv_error err;

	CU_ASSERT_FATAL(memroom_read(&r, &err) == 0);
	CU_ASSERT(r.available > 0);
	CU_ASSERT(memroom_bytes(&r) <= r.available);
	CU_ASSERT(memroom_bytes(&r) <= r.cgroup_room);
	CU_ASSERT((r.cgroup_room == MEMROOM_NO_LIMIT) == (r.cgroup_file[0] == '\0'));
}

void unit_add_procstat_suite(void)
{
	CU_pSuite s = CU_add_suite("procstat", NULL, NULL);

	CU_add_test(s, "parse canned rollup", test_parse_canned);
	CU_add_test(s, "malformed numbers rejected", test_parse_malformed);
	CU_add_test(s, "parse error message", test_parse_error_msg);
	CU_add_test(s, "parse limits and whitespace", test_parse_limits);
	CU_add_test(s, "garbage lines ignored", test_parse_garbage);
	CU_add_test(s, "empty input gives zeros", test_parse_empty);
	CU_add_test(s, "rollup of self", test_rollup_self);
	CU_add_test(s, "range over one mapping", test_range);
	CU_add_test(s, "vma count and max_map_count", test_vma_count);
	CU_add_test(s, "pfn of touched pages", test_pfn);
	CU_add_test(s, "pfn of a twice-mapped memfd", test_pfn_shared);
	CU_add_test(s, "thread cpu time", test_thread_cpu);
	CU_add_test(s, "parse canned maps", test_parse_maps);
	CU_add_test(s, "maps parser edges", test_parse_maps_edges);
	CU_add_test(s, "maps walk of self", test_maps_self);
	CU_add_test(s, "pagemap entry decode", test_pagemap_decode);
	CU_add_test(s, "pagemap reader", test_pagemap_reader);
	CU_add_test(s, "memroom: meminfo", test_memroom_meminfo);
	CU_add_test(s, "memroom: /proc/self/cgroup", test_memroom_cgroup);
	CU_add_test(s, "memroom: limit values", test_memroom_value);
	CU_add_test(s, "memroom: this process", test_memroom_self);
	CU_add_test(s, "memroom: PSI lines", test_memroom_pressure_parse);
}
