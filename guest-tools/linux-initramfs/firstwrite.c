/* firstwrite - runs inside a Linux guest (a static program in the Linux
 * test initramfs, /bin/fvfirstwrite; bench/linux density): how long the
 * guest's first write to a page takes, for fresh pages and for pages its
 * VMM may have merged.
 *
 *   fvfirstwrite [PAGES]      (default 512)
 *
 * 1. Fills PAGES pages of anonymous memory with content that is the same in
 *    every guest that runs it (page i: words from i and a fixed constant,
 *    different from page to page, never zero) and prints
 *    "FV: bench ready density pages=PAGES ...".
 * 2. Waits for a line on stdin (the console: the host sends "go" once its
 *    engine has merged what it will).
 * 3. Times the first write (one 8-byte store) to each filled page, then the
 *    first write to each of PAGES fresh pages (a new anonymous mapping never
 *    touched: the guest kernel allocates, zeroes and maps a page), each with
 *    clock_gettime(CLOCK_MONOTONIC) around the store, and prints
 *    "FV: density merged_med_ns=... merged_p99_ns=... fresh_med_ns=...
 *    fresh_p99_ns=... pages=PAGES clock_res_ns=...".
 * Exit 0, or 1 with "FV: bench FAIL ..." on a failure.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE 4096u

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The q-th quantile (q in percent) of n sorted samples: the sample at rank
 * ceil(q/100 * n) (nearest rank). */
static uint64_t quantile(const uint64_t *s, size_t n, unsigned q)
{
	size_t r = (n * q + 99) / 100;
	if (r < 1)
		r = 1;
	return s[r - 1];
}

/* Time one 8-byte store to the first word of each of n pages at base. */
static void time_writes(volatile uint64_t *base, size_t n, uint64_t *t)
{
	for (size_t i = 0; i < n; i++) {
		volatile uint64_t *p = base + i * (PAGE / sizeof(uint64_t));
		uint64_t t0 = now_ns();
		*p = 0x5752495445ull + i; /* "WRITE" */
		t[i] = now_ns() - t0;
	}
	qsort(t, n, sizeof(*t), cmp_u64);
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 0) : 512;
	if (n == 0 || n > (1u << 20)) {
		printf("FV: bench FAIL fvfirstwrite: PAGES 1..1048576\n");
		return 1;
	}
	setvbuf(stdout, NULL, _IONBF, 0);
	size_t len = n * PAGE;
	uint64_t *merged = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t *fresh = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t *t = calloc(n, sizeof(*t));
	if (merged == MAP_FAILED || fresh == MAP_FAILED || !t) {
		printf("FV: bench FAIL fvfirstwrite: out of memory for %zu pages\n", n);
		return 1;
	}
	/* No huge pages: the host merges 4 KiB frames. */
	madvise(merged, len, MADV_NOHUGEPAGE);
	madvise(fresh, len, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < n; i++) {
		uint64_t *p = merged + i * (PAGE / sizeof(uint64_t));
		for (size_t w = 0; w < PAGE / sizeof(uint64_t); w++)
			p[w] = (i + 1) * 0x9e3779b97f4a7c15ull ^ (w * 0xff51afd7ed558ccdull) ^ 0x464f4c44564d4657ull;
	}
	struct timespec res;
	clock_getres(CLOCK_MONOTONIC, &res);
	printf("FV: bench ready density pages=%zu\n", n);
	char line[64];
	if (!fgets(line, sizeof(line), stdin)) {
		printf("FV: bench FAIL fvfirstwrite: stdin ended before the go line\n");
		return 1;
	}
	time_writes((volatile uint64_t *)merged, n, t);
	uint64_t m50 = quantile(t, n, 50), m99 = quantile(t, n, 99);
	time_writes((volatile uint64_t *)fresh, n, t);
	uint64_t f50 = quantile(t, n, 50), f99 = quantile(t, n, 99);
	printf("FV: density merged_med_ns=%llu merged_p99_ns=%llu fresh_med_ns=%llu fresh_p99_ns=%llu pages=%zu clock_res_ns=%ld\n",
	       (unsigned long long)m50, (unsigned long long)m99, (unsigned long long)f50,
	       (unsigned long long)f99, n, res.tv_nsec);
	return 0;
}
