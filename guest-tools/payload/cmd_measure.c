/*
 * cmd_measure.c - MEASURE_WRITE: time single stores and report the
 * distribution, with the per-vCPU sample buffers it needs.
 */
#include "payload.h"

/*
 * MEASURE_WRITE sample buffers, one per vCPU because any vCPU may measure
 * concurrently.  The image must fit in 1 MiB, so vCPU 0 gets a big buffer
 * and the others a small one; the count actually measured is reported in
 * result[5].  Samples are cycles, saturated at UINT32_MAX.
 */
#define MEASURE_MAX_VCPU0 65536u
#define MEASURE_MAX_OTHER 2048u
static uint32_t measure_buf0[MEASURE_MAX_VCPU0];
static uint32_t measure_buf[FV_MAX_VCPUS - 1][MEASURE_MAX_OTHER];

/* In-place heapsort (no recursion, no allocation, O(n log n) worst case). */
static void sift_down(uint32_t *a, size_t root, size_t end)
{
	for (;;) {
		size_t child = 2 * root + 1;
		uint32_t t;

		if (child >= end)
			return;
		if (child + 1 < end && a[child] < a[child + 1])
			child++;
		if (a[root] >= a[child])
			return;
		t = a[root];
		a[root] = a[child];
		a[child] = t;
		root = child;
	}
}

static void heapsort_u32(uint32_t *a, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift_down(a, i, n);
	for (size_t end = n; end-- > 1;) {
		uint32_t t = a[0];

		a[0] = a[end];
		a[end] = t;
		sift_down(a, 0, end);
	}
}

#define MEASURE_PATTERN 0x5a5a5a5a5a5a5a5aull

/* Is [gpa, gpa + (count-1)*stride + 8) inside [lo, hi)? */
static int span_inside(uint64_t gpa, uint64_t count, uint64_t stride,
		       uint64_t lo, uint64_t hi)
{
	uint64_t room;

	if (gpa < lo || hi < lo || hi - lo < 8 || gpa > hi - 8)
		return 0;
	room = hi - 8 - gpa;    /* how far the last word may start past gpa */
	return count <= 1 || stride <= room / (count - 1);
}

/*
 * MEASURE_WRITE: time the first write to arg[1] pages from gpa arg[0],
 * stride arg[2] bytes (0 = one page).  arg[3] picks what is written:
 *
 *   0: store MEASURE_PATTERN without reading first: times a write to a
 *      page the guest never touched (the host's first-write fault path).
 *      It destroys content, so the span must lie in the probe region.
 *   1: read the word, then store the same value back: still a write (so a
 *      write-protected / copy-on-write page faults exactly as for a real
 *      write) but the page content, and so its checksum, is unchanged.
 *      Usable on data pages.  The read happens before the timed window,
 *      but it may itself map the page (e.g. read-only or to the zero page
 *      in the host), so this measures "write after read", which differs
 *      from mode 0 on untouched pages.  Must lie in [FV_META_GPA, mem_size)
 *      and must not race with writers of the same words (it would undo
 *      their increments: do not aim it at the race region during RACE).
 *
 * At most MEASURE_MAX_VCPU0 (vCPU 0) or MEASURE_MAX_OTHER samples are
 * taken; result[5] says how many.  result[0..4] = median, p99 (sorted index
 * n*99/100), mean, min, max in TSC cycles.
 */
void cmd_measure_write(struct vcpu *v)
{
	const struct fv_guest_config *cfg = v->cfg;
	uint64_t gpa = v->arg[0], count = v->arg[1], stride = v->arg[2];
	uint64_t mode = v->arg[3];
	uint32_t *samples = v->index == 0 ? measure_buf0 : measure_buf[v->index - 1];
	uint64_t cap = v->index == 0 ? MEASURE_MAX_VCPU0 : MEASURE_MAX_OTHER;
	uint64_t lo, hi, sum = 0;

	if (stride == 0)
		stride = FV_PAGE_SIZE;
	if (count > cap)
		count = cap;
	if (mode == 0) {
		lo = cfg->probe_gpa;
		hi = cfg->probe_gpa + cfg->probe_pages * FV_PAGE_SIZE;
	} else {
		lo = FV_META_GPA;
		hi = cfg->mem_size;
	}
	if (mode > 1 || (gpa | stride) % sizeof(uint64_t) ||
	    (count && !span_inside(gpa, count, stride, lo, hi))) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}

	for (uint64_t i = 0; i < count; i++) {
		volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)(gpa + i * stride);
		uint64_t val = MEASURE_PATTERN, t0, t1, dt;

		if (mode == 1)
			val = *p;       /* outside the timed window */
		t0 = rdtsc_fenced();
		*p = val;
		t1 = rdtsc_fenced();
		dt = t1 - t0;
		samples[i] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
		sum += samples[i];
	}
	if (count == 0)
		return;

	heapsort_u32(samples, count);
	v->result[0] = samples[count / 2];
	v->result[1] = samples[count * 99 / 100];
	v->result[2] = sum / count;
	v->result[3] = samples[0];
	v->result[4] = samples[count - 1];
	v->result[5] = count;
}
