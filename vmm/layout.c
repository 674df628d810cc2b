#include <string.h>
#include "guest-tools/content.h"
#include "vmm/layout.h"

static uint64_t blob_pages_for(const struct fv_content_spec *spec,
			       uint64_t data_pages, uint64_t avail)
{
	struct fv_layout_counts c;

	fv_layout_counts(spec, data_pages, avail, &c);
	return c.blob;
}

/* Pages the blob's file-start bitmap takes (mix layout only). */
static uint64_t starts_pages_for(const struct fv_content_spec *spec,
				 uint64_t blob)
{
	return spec->layout == FV_LAYOUT_MIX ? fv_blob_starts_pages(blob) : 0;
}

/* Pages the meta table, the data and the blob take for `data` data pages. */
static uint64_t layout_need(const struct fv_content_spec *spec, uint64_t data,
			    uint64_t blob_avail)
{
	uint64_t blob = blob_pages_for(spec, data, blob_avail);

	return fv_meta_size(data) / FV_PAGE_SIZE + data + blob +
	       starts_pages_for(spec, blob);
}

int layout_compute(uint64_t mem_size, const struct fv_content_spec *spec,
		   uint64_t blob_avail_pages, const struct layout_fixed *f,
		   struct fv_guest_config *out, struct fv_error *err)
{
	uint64_t avail, fixed, data, blob, meta;

	if (spec->layout > FV_LAYOUT_CLONES)
		return fv_err(err, FV_E_INVAL, "unknown layout %u", spec->layout);
	if ((uint64_t)spec->pct_zero + spec->pct_shared + spec->pct_blob > 100)
		return fv_err(err, FV_E_INVAL,
			      "content percentages add up to %u%% (more than 100%%)",
			      spec->pct_zero + spec->pct_shared + spec->pct_blob);
	if (mem_size <= FV_META_GPA)
		return fv_err(err, FV_E_INVAL, "no room for data in %llu bytes",
			      (unsigned long long)mem_size);
	avail = (mem_size - FV_META_GPA) / FV_PAGE_SIZE;
	fixed = (uint64_t)f->race_pages + f->probe_pages + f->virtio_pages;
	if (fixed + 2 >= avail)
		return fv_err(err, FV_E_INVAL,
			      "race, probe and virtio pages (%llu) leave no data pages",
			      (unsigned long long)fixed);
	/*
	 * The meta table and the blob both grow with the data region: find
	 * the largest data region for which everything fits (the total is
	 * monotonic in it, so a binary search finds it exactly).
	 */
	uint64_t lo = 0, hi = avail - fixed;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo + 1) / 2;

		if (layout_need(spec, mid, blob_avail_pages) + fixed <= avail)
			lo = mid;
		else
			hi = mid - 1;
	}
	data = lo;
	if (data == 0)
		return fv_err(err, FV_E_INVAL, "guest memory too small");
	blob = blob_pages_for(spec, data, blob_avail_pages);
	meta = fv_meta_size(data) / FV_PAGE_SIZE;

	memset(out, 0, sizeof(*out));
	out->magic = FV_CONFIG_MAGIC;
	out->abi_version = FV_ABI_VERSION;
	out->mem_size = mem_size;
	out->content = *spec;
	out->meta_gpa = FV_META_GPA;
	out->meta_size = meta * FV_PAGE_SIZE;
	out->data_gpa = out->meta_gpa + out->meta_size;
	out->data_pages = data;
	out->race_gpa = out->data_gpa + data * FV_PAGE_SIZE;
	out->race_pages = f->race_pages;
	out->probe_gpa = out->race_gpa + (uint64_t)f->race_pages * FV_PAGE_SIZE;
	out->probe_pages = f->probe_pages;
	if (f->virtio_pages) {
		out->virtio_gpa = out->probe_gpa +
				  (uint64_t)f->probe_pages * FV_PAGE_SIZE;
		out->virtio_pages = f->virtio_pages;
	}
	out->blob_pages = blob;
	/* The blob sits at the top of RAM, like an initramfs. */
	out->blob_gpa = mem_size - blob * FV_PAGE_SIZE;
	/* Its file-start bitmap right below it (mix only). */
	if (starts_pages_for(spec, blob))
		out->blob_starts_gpa = out->blob_gpa -
				       starts_pages_for(spec, blob) * FV_PAGE_SIZE;
	return 0;
}
