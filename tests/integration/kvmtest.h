/*
 * kvmtest.h - helpers for C integration tests that boot test guests under
 * /dev/kvm (KVM selftests style: __kt_x returns the result, kt_x asserts).
 * Exit codes: 0 pass, 1 fail, 77 skip.
 */
#ifndef FOLDVM_KVMTEST_H
#define FOLDVM_KVMTEST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dedup/dedup.h"
#include "guest-tools/content.h"
#include "runner/spec.h"
#include "vmm/guest.h"
#include "lib/procstat.h"
#include "vmm/vcpu.h"
#include <sys/mman.h>

#define KT_TIMEOUT_MS 120000

#define KT_ASSERT(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__); \
		fprintf(stderr, "\n"); \
		exit(1); \
	} \
} while (0)

static inline void kt_require_kvm(const char *test)
{
	if (!kvm_available("/dev/kvm")) {
		fprintf(stderr, "SKIP: /dev/kvm missing: %s NOT RUN\n", test);
		exit(77);
	}
	vcpu_init_signals();
}

static inline void kt_open(struct kvm_sys *kvm)
{
	struct fv_error err;

	KT_ASSERT(kvm_sys_open(kvm, "/dev/kvm", &err) == 0, "%s", err.msg);
}

/* An engine with fast passes (tests want many of them). */
static inline struct dedup_engine *kt_engine(uint64_t vma_budget)
{
	struct dedup_engine *e;
	struct dedup_config cfg;
	struct fv_error err;

	dedup_config_defaults(&cfg);
	/* Pressure on the host (another test swapping) must not pause the
	 * merges this test counts; pressure.sh tests the pause. */
	cfg.pressure_pct = 0;
	cfg.pass_interval_ms = 10;
	cfg.vma_budget = vma_budget;
	KT_ASSERT(dedup_create(&e, &cfg, &err) == 0, "%s", err.msg);
	return e;
}

/* Create and start a guest from a --vm spec (console off). */
static inline struct guest *kt_guest(struct kvm_sys *kvm, struct dedup_engine *e,
				     const char *spec)
{
	struct vm_spec vm;
	struct fv_error err;
	struct guest *g;
	char full[1024];

	snprintf(full, sizeof(full), "console=off,%s", spec);
	KT_ASSERT(spec_from_kv(full, 0, &vm, &err) == 0, "%s: %s", spec, err.msg);
	KT_ASSERT(guest_create(&g, kvm, &vm.cfg, NULL, e, NULL, &err) == 0,
		  "%s: %s", spec, err.msg);
	KT_ASSERT(guest_start(g, &err) == 0, "%s", err.msg);
	return g;
}

/* A command with all eight arguments, and its result. */
static inline struct testdev_result kt_cmd_args(struct guest *g, unsigned vcpu,
						uint32_t cmd, const uint64_t arg[8])
{
	struct testdev_result r;
	struct fv_error err;

	KT_ASSERT(testdev_submit(&g->testdev, vcpu, cmd, arg, &err) == 0,
		  "%s: %s", g->cfg.name, err.msg);
	KT_ASSERT(testdev_wait(&g->testdev, vcpu, KT_TIMEOUT_MS, &r, &err) == 0,
		  "%s: %s", g->cfg.name, err.msg);
	KT_ASSERT(r.cmd == cmd, "answered %u to %u", r.cmd, cmd);
	return r;
}

static inline struct testdev_result kt_cmd(struct guest *g, unsigned vcpu,
					   uint32_t cmd, uint64_t a0, uint64_t a1,
					   uint64_t a2, uint64_t a3)
{
	uint64_t arg[8] = { a0, a1, a2, a3 };

	return kt_cmd_args(g, vcpu, cmd, arg);
}

static inline void kt_fill(struct guest *g)
{
	struct testdev_result r = kt_cmd(g, 0, FV_CMD_FILL, 0, 0, 0, 0);

	KT_ASSERT(r.status == FV_STATUS_OK, "%s: fill status %u", g->cfg.name, r.status);
}

/* The guest checks its own memory; the test fails on any mismatch. */
static inline void kt_verify(struct guest *g)
{
	struct testdev_result r = kt_cmd(g, 0, FV_CMD_VERIFY, 0, 0, 0, 0);

	KT_ASSERT(r.status == FV_STATUS_OK && r.result[1] == 0,
		  "%s: guest found %llu bad pages of %llu (first gpa 0x%llx)",
		  g->cfg.name, (unsigned long long)r.result[1],
		  (unsigned long long)r.result[0], (unsigned long long)r.result[2]);
}

/* Ask every vCPU to leave and free the guest. */
static inline void kt_destroy(struct guest *g)
{
	for (unsigned i = 0; i < g->cfg.nr_vcpus; i++)
		testdev_submit(&g->testdev, i, FV_CMD_EXIT, NULL, NULL);
	guest_wait(g, 10000);
	guest_destroy(g);
}

/* How many data pages of a test guest hold the content all guests share. */
static inline uint64_t kt_shared_pages(struct guest *g)
{
	struct fv_layout_counts c;

	fv_layout_counts(&g->layout.content, g->layout.data_pages,
			 g->layout.blob_pages, &c);
	return c.shared;
}

/* The data page positions of g's shared contents, in content order
 * (malloc'd; *n of them): where each clone holds shared content k. */
static inline uint32_t *kt_shared_positions(struct guest *g, uint64_t *n)
{
	const struct fv_guest_config *l = &g->layout;
	struct fv_layout_counts c;
	uint32_t *perm = malloc(l->data_pages * sizeof(*perm));

	KT_ASSERT(perm, "oom");
	fv_permute(perm, l->data_pages, l->content.layout_seed);
	fv_layout_counts(&l->content, l->data_pages, l->blob_pages, &c);
	memmove(perm, perm + c.zero, c.shared * sizeof(*perm));
	*n = c.shared;
	return perm;
}

struct kt_vma_range {
	uint64_t lo, hi, n;
};

static inline void kt_count_vma(void *opaque, uint64_t start, uint64_t end)
{
	struct kt_vma_range *r = opaque;

	r->n += start >= r->lo && end <= r->hi;
}

/* VMAs inside a guest's RAM, from /proc/self/maps (the kernel's count). */
static inline uint64_t kt_ram_vmas(struct guest *g)
{
	struct kt_vma_range r = {
		.lo = (uintptr_t)gmem_page_hva(&g->mem, 0),
		.hi = (uintptr_t)gmem_page_hva(&g->mem, 0) + gmem_pages(&g->mem) * FV_PAGE_SIZE,
	};
	struct fv_error err;
	uint64_t total;

	KT_ASSERT(procstat_maps(kt_count_vma, &r, &total, &err) == 0, "%s", err.msg);
	return r.n;
}

static inline struct dedup_guest_stats kt_stats(struct guest *g)
{
	struct dedup_guest_stats s;

	dedup_get_guest_stats(g->dedup, g->dedup_guest, &s);
	return s;
}

static inline void kt_passes(struct dedup_engine *e, unsigned n)
{
	KT_ASSERT(dedup_wait_passes(e, n, KT_TIMEOUT_MS) == 0, "passes timed out");
}

/* The RAM page index (what the engine and the dedup primitives count) of
 * guest-physical address gpa. */
static inline uint64_t kt_page(struct guest *g, uint64_t gpa)
{
	struct fv_error err;
	uint64_t page = 0;

	KT_ASSERT(gmem_gpa_to_page(&g->mem, gpa, &page, &err) == 0, "%s", err.msg);
	return page;
}

/* Host PFN behind a guest page (0 if absent); needs root.  The page is
 * read first: a merged page has no PTE until something touches it. */
static inline uint64_t kt_pfn(struct guest *g, uint64_t gpa)
{
	const volatile uint8_t *p;
	uint64_t pfn = 0, page = 0;
	bool present = false;
	struct fv_error err;

	KT_ASSERT(gmem_gpa_to_page(&g->mem, gpa, &page, &err) == 0, "%s", err.msg);
	p = gmem_page_view(&g->mem, page);
	(void)p[0];
	KT_ASSERT(procstat_pfn(gmem_page_hva(&g->mem, page), &pfn, &present,
			       &err) == 0, "%s", err.msg);
	return present ? pfn : 0;
}

/* Of the first n data pages, how many a and b hold on one host frame
 * (merged: clones hold the same content at the same address). */
static inline uint64_t kt_same_frames(struct guest *a, struct guest *b, uint64_t n)
{
	uint64_t same = 0;

	for (uint64_t k = 0; k < n; k++) {
		uint64_t gpa = a->layout.data_gpa + k * FV_PAGE_SIZE;
		uint64_t pa = kt_pfn(a, gpa), pb = kt_pfn(b, gpa);

		same += pa && pa == pb;
	}
	return same;
}

/* Wait, by passes of the engine (at most 600 rounds of 2, not a clock),
 * until the first n data pages of clones a and b are merged. */
static inline void kt_wait_merged(struct dedup_engine *e, struct guest *a,
				  struct guest *b, uint64_t n)
{
	uint64_t merged = 0;

	for (unsigned round = 0; round < 600 && merged < n; round++) {
		kt_passes(e, 2);
		merged = kt_same_frames(a, b, n);
	}
	KT_ASSERT(merged == n, "only %llu of %llu pages merged",
		  (unsigned long long)merged, (unsigned long long)n);
}

/* Does the guest page hold a private page of its own now (it was merged
 * or discarded and then written)?  Present, anonymous, not the zero page.
 * Reads the page's pagemap entry without faulting it in. */
static inline bool kt_page_private(struct guest *g, uint64_t gfn, uint64_t zero_pfn)
{
	struct procstat_pagemap pm;
	struct procstat_page pg;
	struct fv_error err;

	KT_ASSERT(procstat_pagemap_open(&pm, &err) == 0, "%s", err.msg);
	KT_ASSERT(procstat_pagemap_read(&pm, gmem_page_hva(&g->mem, gfn), &pg,
					&err) == 0, "%s", err.msg);
	procstat_pagemap_close(&pm);
	return pg.present && !pg.file && pg.pfn != zero_pfn;
}

#endif
