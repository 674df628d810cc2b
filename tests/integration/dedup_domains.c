/*
 * dedup_domains.c - trust domains hold: guests in different domains never
 * share a host frame, even with identical content, while guests in one
 * domain do.
 *
 * Four guests with the same content spec (same shared seed) run at once
 * under one engine:  A (tenant-a), B (tenant-b), C and D (both tenant-c).
 * After the engine has made a few passes over all of them:
 *  - A and B merged nothing (pages_merged == 0, frames_referenced == 0):
 *    with pool unset, shared page k of a guest holds fv_fill_page(seed, k),
 *    so a guest has no duplicate non-zero pages inside itself, and its only
 *    twins live in other domains;
 *  - no host frame (PFN, read from /proc/self/pagemap) backs a page of a
 *    guest and a page of any guest of another domain, anywhere in their RAM
 *    (not just the data region: the payload image and page tables are
 *    identical in all four guests), except the kernel's zero page and
 *    pages that read all-zero in both (zero content may merge across
 *    domains by design);
 *  - the control: C and D did merge (pages_merged >= 80% of their shared
 *    pages) and >= 80% of the shared count of C's data-page PFNs are also
 *    PFNs of D's data pages;
 *  - every guest still verifies its memory.
 * Exit 0 pass, 1 fail, 77 skip (no /dev/kvm).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "guest-tools/content.h"
#include "tests/integration/kvmtest.h"

#define NGUESTS 4
#define PAGE 4096ull

static const char *const specs[NGUESTS] = {
	"name=a,mem=32M,zero=20,shared=80,dedup=on,domain=tenant-a",
	"name=b,mem=32M,zero=20,shared=80,dedup=on,domain=tenant-b",
	"name=c,mem=32M,zero=20,shared=80,dedup=on,domain=tenant-c",
	"name=d,mem=32M,zero=20,shared=80,dedup=on,domain=tenant-c",
};

/* PFN of the kernel's zero page: what a read of untouched memory maps. */
static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool sorted_has(const uint64_t *v, size_t n, uint64_t x)
{
	return bsearch(&x, v, n, sizeof(*v), cmp_u64) != NULL;
}

static bool page_is_zero(struct guest *g, uint64_t gfn)
{
	static const uint8_t zero[PAGE];

	return !memcmp(gmem_page_view(&g->mem, gfn), zero, PAGE);
}

/* PFNs of `npages` pages from gfn `first`, in page order (0 = absent). */
static uint64_t *pfns_of(struct guest *g, uint64_t first, uint64_t npages)
{
	uint64_t *v = calloc(npages, sizeof(*v));

	KT_ASSERT(v, "calloc");
	for (uint64_t i = 0; i < npages; i++)
		v[i] = kt_pfn(g, (first + i) * PAGE);
	return v;
}

/*
 * Pages of x whose frame also backs a page of y, over all of guest RAM.
 * Absent pages, the kernel zero page and pages all-zero in both guests
 * do not count.  Returns the number found; *example = a gpa of x.
 */
static uint64_t frames_in_common(struct guest *x, struct guest *y,
				 uint64_t zero_pfn, uint64_t *example)
{
	uint64_t n = gmem_pages(&x->mem), m = gmem_pages(&y->mem);
	uint64_t *px = pfns_of(x, 0, n), *py = pfns_of(y, 0, m);
	uint64_t *sy = malloc(m * sizeof(*sy)), found = 0;

	KT_ASSERT(sy, "malloc");
	memcpy(sy, py, m * sizeof(*sy));
	qsort(sy, m, sizeof(*sy), cmp_u64);
	for (uint64_t i = 0; i < n; i++) {
		if (px[i] == 0 || px[i] == zero_pfn || !sorted_has(sy, m, px[i]))
			continue;
		/* zero content may share a frame across domains by design */
		if (page_is_zero(x, i)) {
			bool y_zero = true;

			for (uint64_t j = 0; j < m; j++)
				if (py[j] == px[i] && !page_is_zero(y, j))
					y_zero = false;
			if (y_zero)
				continue;
		}
		if (found++ == 0)
			*example = i * PAGE;
	}
	free(px);
	free(py);
	free(sy);
	return found;
}

/* Data pages of c whose PFN also backs a data page of d. */
static uint64_t data_frames_in_common(struct guest *c, struct guest *d,
				      uint64_t zero_pfn)
{
	uint64_t nc = c->layout.data_pages, nd = d->layout.data_pages, found = 0;
	uint64_t *pc = pfns_of(c, c->layout.data_gpa / PAGE, nc);
	uint64_t *pd = pfns_of(d, d->layout.data_gpa / PAGE, nd);

	qsort(pd, nd, sizeof(*pd), cmp_u64);
	for (uint64_t i = 0; i < nc; i++)
		if (pc[i] && pc[i] != zero_pfn && sorted_has(pd, nd, pc[i]))
			found++;
	free(pc);
	free(pd);
	return found;
}

int main(void)
{
	struct kvm_sys kvm;
	struct dedup_engine *e;
	struct guest *g[NGUESTS];
	struct dedup_guest_stats st[NGUESTS];
	uint64_t zero_pfn, shared, common_cd, cross_total = 0;

	kt_require_kvm("dedup_domains");
	kt_open(&kvm);
	zero_pfn = procstat_zero_pfn();
	e = kt_engine(0);

	for (int i = 0; i < NGUESTS; i++)
		g[i] = kt_guest(&kvm, e, specs[i]);
	for (int i = 0; i < NGUESTS; i++)
		kt_fill(g[i]);
	kt_passes(e, 3);

	for (int i = 0; i < NGUESTS; i++)
		st[i] = kt_stats(g[i]);
	shared = kt_shared_pages(g[0]);
	for (int i = 1; i < NGUESTS; i++)
		KT_ASSERT(kt_shared_pages(g[i]) == shared, "shared counts differ");
	KT_ASSERT(shared > 1000, "only %llu shared pages", (unsigned long long)shared);

	/* A and B are alone in their domains: nothing to merge with. */
	for (int i = 0; i < 2; i++) {
		KT_ASSERT(st[i].pages_merged == 0 && st[i].frames_referenced == 0,
			  "guest %s (domain %s) merged %llu pages onto %llu frames "
			  "with no twin in its domain", g[i]->cfg.name, st[i].domain,
			  (unsigned long long)st[i].pages_merged,
			  (unsigned long long)st[i].frames_referenced);
		KT_ASSERT(st[i].full_passes >= 3, "guest %s: %llu passes",
			  g[i]->cfg.name, (unsigned long long)st[i].full_passes);
	}
	KT_ASSERT(!strcmp(st[0].domain, "tenant-a") && !strcmp(st[1].domain, "tenant-b") &&
		  !strcmp(st[2].domain, "tenant-c") && !strcmp(st[3].domain, "tenant-c"),
		  "domains %s %s %s %s", st[0].domain, st[1].domain, st[2].domain,
		  st[3].domain);

	/* No frame crosses a domain boundary, anywhere in guest RAM. */
	for (int i = 0; i < NGUESTS; i++) {
		for (int j = i + 1; j < NGUESTS; j++) {
			uint64_t where = 0, n;

			if (strcmp(st[i].domain, st[j].domain) == 0)
				continue;
			n = frames_in_common(g[i], g[j], zero_pfn, &where);
			KT_ASSERT(n == 0, "%llu pages of %s (%s) share a host frame "
				  "with %s (%s), e.g. gpa 0x%llx",
				  (unsigned long long)n, g[i]->cfg.name, st[i].domain,
				  g[j]->cfg.name, st[j].domain, (unsigned long long)where);
			cross_total++;
		}
	}

	/* Control: one domain, the same content: they share. */
	for (int i = 2; i < 4; i++)
		KT_ASSERT(st[i].pages_merged * 10 >= shared * 8,
			  "guest %s merged %llu pages of %llu shared",
			  g[i]->cfg.name, (unsigned long long)st[i].pages_merged,
			  (unsigned long long)shared);
	common_cd = data_frames_in_common(g[2], g[3], zero_pfn);
	KT_ASSERT(common_cd * 10 >= shared * 8,
		  "only %llu data pages of c share a frame with d (shared %llu)",
		  (unsigned long long)common_cd, (unsigned long long)shared);

	for (int i = 0; i < NGUESTS; i++)
		kt_verify(g[i]);
	for (int i = 0; i < NGUESTS; i++)
		kt_destroy(g[i]);
	dedup_destroy(e);
	kvm_sys_close(&kvm);

	printf("dedup_domains: %llu cross-domain guest pairs share 0 frames "
	       "(a/b merged %llu/%llu, zero pages %llu/%llu); same-domain c/d "
	       "merged %llu/%llu pages, %llu of %llu shared data pages on common "
	       "frames; 4 guests verified\n",
	       (unsigned long long)cross_total,
	       (unsigned long long)st[0].pages_merged,
	       (unsigned long long)st[1].pages_merged,
	       (unsigned long long)st[0].pages_zero,
	       (unsigned long long)st[1].pages_zero,
	       (unsigned long long)st[2].pages_merged,
	       (unsigned long long)st[3].pages_merged,
	       (unsigned long long)common_cd, (unsigned long long)shared);
	return 0;
}
