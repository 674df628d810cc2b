/*
 * cmd_data.c - the commands that lay out and check guest content: FILL,
 * VERIFY, CHURN, RACE and RACE_SETTLE, with the state vCPU 0 keeps for them
 * and the helpers that find the data pages and the meta table.
 */
#include "payload.h"

/*
 * Owned by vCPU 0 (FILL, VERIFY, CHURN and RACE_SETTLE only run there):
 * whether FILL ran (so the checksum table is valid and the blob must be
 * zero), and the total every word w of every race page must hold.
 */
static int data_filled;
static uint64_t race_expected[FV_PAGE_WORDS];

/* Reset vCPU 0's state (payload_main calls this on vCPU 0 only). */
void cmd_data_init(void)
{
	data_filled = 0;
	memset(race_expected, 0, sizeof(race_expected));
}

static uint64_t *gpa_ptr(uint64_t gpa)
{
	return (uint64_t *)(uintptr_t)gpa;
}

static uint64_t *data_page(const struct fv_guest_config *cfg, uint64_t pos)
{
	return gpa_ptr(cfg->data_gpa + pos * FV_PAGE_SIZE);
}

/* The checksum table: one uint64_t per data page at the start of meta. */
static uint64_t *csum_table(const struct fv_guest_config *cfg)
{
	return gpa_ptr(cfg->meta_gpa);
}

/* Permutation scratch right after the checksum table (FILL only). */
static uint32_t *perm_scratch(const struct fv_guest_config *cfg)
{
	return (uint32_t *)(csum_table(cfg) + cfg->data_pages);
}

static uint64_t zero_page_checksum(void)
{
	uint64_t zero[FV_PAGE_WORDS];

	memset(zero, 0, sizeof(zero));
	return fv_checksum_page(zero);
}

static int page_is_zero(const uint64_t *page)
{
	for (uint32_t w = 0; w < FV_PAGE_WORDS; w++) {
		if (page[w])
			return 0;
	}
	return 1;
}

/* What FILL's placement callback needs. */
struct fill_ctx {
	const struct fv_guest_config *cfg;
	const uint64_t *blob;
	uint64_t *csum;
	uint64_t zero_csum;
};

static void fill_one(void *opaque, uint64_t pos, enum fv_page_kind kind,
		     uint64_t sel)
{
	struct fill_ctx *f = opaque;
	const struct fv_content_spec *spec = &f->cfg->content;
	uint64_t *page = data_page(f->cfg, pos);

	switch (kind) {
	case FV_KIND_ZERO:
		/* Leave it untouched, not even read: the host gave us zeroed
		 * RAM and a never-touched page is exactly what a zero page in
		 * a real guest looks like to the host. */
		f->csum[pos] = f->zero_csum;
		return;
	case FV_KIND_SHARED:
		fv_fill_page(page, spec->shared_seed, sel);
		break;
	case FV_KIND_BLOB:
		memcpy(page, f->blob + sel * FV_PAGE_WORDS, FV_PAGE_SIZE);
		break;
	case FV_KIND_UNIQUE:
		fv_fill_page(page, spec->unique_seed, pos);
		break;
	}
	f->csum[pos] = fv_checksum_page(page);
}

/*
 * FILL: lay out the data region as the content spec says.  fv_place_pages
 * decides, by the spec's layout, which position gets which content: zero,
 * shared (pool selector), blob (blob page selector) or unique (its own
 * position).
 *
 * result[0] = pages filled (data_pages), result[1] = 1 if the blob did not
 * match cfg->blob_checksum (status MISMATCH; filling goes on regardless),
 * result[2..5] = zero/shared/blob/unique page counts.
 *
 * Only once: afterwards the blob is gone (zeroed), so a second FILL could
 * not reproduce the same content; it answers FV_STATUS_BAD_ARGS.
 */
void cmd_fill(struct vcpu *v)
{
	const struct fv_guest_config *cfg = v->cfg;
	const struct fv_content_spec *spec = &cfg->content;
	uint64_t n = cfg->data_pages;
	uint32_t *perm = perm_scratch(cfg);
	struct fill_ctx f = { cfg, gpa_ptr(cfg->blob_gpa), csum_table(cfg), 0 };
	const uint8_t *starts = cfg->blob_starts_gpa ?
				(const uint8_t *)gpa_ptr(cfg->blob_starts_gpa) : 0;
	struct fv_layout_counts c;
	int blob_bad;

	if (v->index != 0) {
		v->status = FV_STATUS_BAD_COMMAND;
		return;
	}
	if (data_filled) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}

	fv_layout_counts(spec, n, cfg->blob_pages, &c);
	f.zero_csum = zero_page_checksum();

	/* Check the blob before copying from it (it is zeroed afterwards). */
	blob_bad = fv_checksum_pages(f.blob, cfg->blob_pages) != cfg->blob_checksum;
	if (blob_bad) {
		v->status = FV_STATUS_MISMATCH;
		fv_log(FV_WHERE "blob checksum mismatch, filling anyway");
	}

	fv_place_pages(spec, &c, n, starts, perm, fill_one, &f);

	/* The blob plays an initramfs a kernel frees after unpacking, and the
	 * permutation was scratch: all become zero pages. */
	memset((void *)(uintptr_t)cfg->blob_gpa, 0, cfg->blob_pages * FV_PAGE_SIZE);
	if (cfg->blob_starts_gpa)
		memset((void *)(uintptr_t)cfg->blob_starts_gpa, 0,
		       fv_blob_starts_pages(cfg->blob_pages) * FV_PAGE_SIZE);
	memset(perm, 0, n * sizeof(*perm));
	data_filled = 1;

	v->result[0] = n;
	v->result[1] = (uint64_t)blob_bad;
	v->result[2] = c.zero;
	v->result[3] = c.shared;
	v->result[4] = c.blob;
	v->result[5] = c.unique;
}

struct verify_tally {
	uint64_t checked;
	uint64_t bad;
	uint64_t first_bad;
};

static void tally(struct verify_tally *t, uint64_t gpa, int ok)
{
	t->checked++;
	if (!ok) {
		if (t->bad++ == 0)
			t->first_bad = gpa;
	}
}

/*
 * VERIFY: every data page against its recorded checksum (before FILL: must
 * still be all zero), every race page against the totals RACE_SETTLE
 * accumulated, and (after FILL) every blob page and file-start bitmap page
 * (mix layout) must be zero.  Checked in
 * that order; result[2] is the first bad page in that order.
 *
 * result[0] = pages checked (data + race + blob if filled), result[1] = bad
 * pages, result[2] = gpa of the first bad page or ~0; result[3..5] = bad
 * data / race / blob pages.
 */
void cmd_verify(struct vcpu *v)
{
	const struct fv_guest_config *cfg = v->cfg;
	const uint64_t *csum = csum_table(cfg);
	uint64_t zero_csum = zero_page_checksum();
	struct verify_tally t = { 0, 0, ~0ull };
	uint64_t bad_data, bad_race;

	if (v->index != 0) {
		v->status = FV_STATUS_BAD_COMMAND;
		return;
	}

	for (uint64_t pos = 0; pos < cfg->data_pages; pos++) {
		uint64_t want = data_filled ? csum[pos] : zero_csum;

		tally(&t, cfg->data_gpa + pos * FV_PAGE_SIZE,
		      fv_checksum_page(data_page(cfg, pos)) == want);
	}
	bad_data = t.bad;

	for (uint64_t p = 0; p < cfg->race_pages; p++) {
		uint64_t gpa = cfg->race_gpa + p * FV_PAGE_SIZE;
		uint64_t *page = gpa_ptr(gpa);
		int ok = 1;

		for (uint32_t w = 0; w < FV_PAGE_WORDS; w++) {
			if (__atomic_load_n(&page[w], __ATOMIC_RELAXED) !=
			    fv_race_step(p) * race_expected[w])
				ok = 0;
		}
		tally(&t, gpa, ok);
	}
	bad_race = t.bad - bad_data;

	if (data_filled) {
		for (uint64_t p = 0; p < cfg->blob_pages; p++) {
			uint64_t gpa = cfg->blob_gpa + p * FV_PAGE_SIZE;

			tally(&t, gpa, page_is_zero(gpa_ptr(gpa)));
		}
		for (uint64_t p = 0; cfg->blob_starts_gpa &&
		     p < fv_blob_starts_pages(cfg->blob_pages); p++) {
			uint64_t gpa = cfg->blob_starts_gpa + p * FV_PAGE_SIZE;

			tally(&t, gpa, page_is_zero(gpa_ptr(gpa)));
		}
	}

	v->result[0] = t.checked;
	v->result[1] = t.bad;
	v->result[2] = t.first_bad;
	v->result[3] = bad_data;
	v->result[4] = bad_race;
	v->result[5] = t.bad - bad_data - bad_race;
	if (t.bad) {
		char buf[160];
		struct strbuf sb;

		v->status = FV_STATUS_MISMATCH;
		sb_init(&sb, buf, sizeof(buf));
		sb_puts(&sb, "verify: ");
		sb_putu(&sb, t.bad);
		sb_puts(&sb, " of ");
		sb_putu(&sb, t.checked);
		sb_puts(&sb, " pages differ, first at gpa ");
		sb_putx(&sb, t.first_bad);
		fv_log(buf);
	}
}

/*
 * CHURN: rewrite arg[0] pseudo-randomly chosen data pages with new content
 * (seeded by arg[2]), waiting arg[1] TSC cycles between writes, keeping the
 * checksum table current.  Needs FILL first; vCPU 0 only (it owns the
 * checksum table).  result[0] = pages written.
 */
void cmd_churn(struct vcpu *v)
{
	const struct fv_guest_config *cfg = v->cfg;
	uint64_t *csum = csum_table(cfg);
	uint64_t count = v->arg[0], wait = v->arg[1], seed = v->arg[2];

	if (v->index != 0) {
		v->status = FV_STATUS_BAD_COMMAND;
		return;
	}
	if (!data_filled || (count && cfg->data_pages == 0)) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}

	for (uint64_t i = 0; i < count; i++) {
		uint64_t pos = fv_mix64(seed ^ i) % cfg->data_pages;
		uint64_t *page = data_page(cfg, pos);

		if (i)
			tsc_wait(wait);
		fv_fill_page(page, fv_mix64(seed + i), pos);
		csum[pos] = fv_checksum_page(page);
	}
	v->result[0] = count;
}

/*
 * RACE: iteration j atomically adds fv_race_step(p) to word j % 512 of
 * every race page p.  Any number of vCPUs run it at once; at rest the even
 * race pages are equal, and each odd one is unlike any other.
 * result[0] = iterations done.
 */
void cmd_race(struct vcpu *v)
{
	const struct fv_guest_config *cfg = v->cfg;
	uint64_t *race = gpa_ptr(cfg->race_gpa);
	uint64_t iters = v->arg[0];

	for (uint64_t j = 0; j < iters; j++) {
		uint64_t w = j % FV_PAGE_WORDS;

		for (uint64_t p = 0; p < cfg->race_pages; p++)
			__atomic_fetch_add(&race[p * FV_PAGE_WORDS + w],
					   fv_race_step(p), __ATOMIC_RELAXED);
	}
	v->result[0] = iters;
}

/*
 * RACE_SETTLE: arg[1] vCPUs each ran arg[0] RACE iterations; add the
 * increments that put into each word to the totals VERIFY expects (times
 * fv_race_step(p) on page p).  vCPU 0 only.
 * result[0] = increments added to each race page.
 */
void cmd_race_settle(struct vcpu *v)
{
	uint64_t iters = v->arg[0], nvcpus = v->arg[1];

	if (v->index != 0) {
		v->status = FV_STATUS_BAD_COMMAND;
		return;
	}
	if (nvcpus > v->cfg->nr_vcpus) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}
	for (uint32_t w = 0; w < FV_PAGE_WORDS; w++)
		race_expected[w] += nvcpus * (iters / FV_PAGE_WORDS +
					      (w < iters % FV_PAGE_WORDS ? 1 : 0));
	v->result[0] = iters * nvcpus;
}

int data_adopt(const struct fv_guest_config *cfg, uint64_t gpa, uint64_t bytes)
{
	uint64_t first, n;

	if (!data_filled || gpa < cfg->data_gpa || (gpa - cfg->data_gpa) % FV_PAGE_SIZE ||
	    bytes % FV_PAGE_SIZE)
		return -1;
	first = (gpa - cfg->data_gpa) / FV_PAGE_SIZE;
	n = bytes / FV_PAGE_SIZE;
	if (first > cfg->data_pages || n > cfg->data_pages - first)
		return -1;
	for (uint64_t pos = first; pos < first + n; pos++)
		csum_table(cfg)[pos] = fv_checksum_page(data_page(cfg, pos));
	return 0;
}
