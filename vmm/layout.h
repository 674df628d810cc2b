/*
 * layout.h - where a test guest's regions go in its RAM
 * (meta, data, race, probe, blob; see guest-tools/testdev_abi.h).
 */
#ifndef FOLDVM_LAYOUT_H
#define FOLDVM_LAYOUT_H

#include <stdint.h>
#include "guest-tools/testdev_abi.h"
#include "lib/error.h"

/* The fixed-size regions after the data region. */
struct layout_fixed {
	uint32_t race_pages;
	uint32_t probe_pages;
	uint32_t virtio_pages;   /* the payload's virtio drivers (0: none) */
};

/* Fill the region fields, content spec and header of *out for a guest of
 * mem_size bytes.  The blob gets pct_blob of the data pages, at most
 * blob_avail_pages.  FV_E_INVAL when the fixed regions leave no data pages
 * or the percentages add up to more than 100. */
int layout_compute(uint64_t mem_size, const struct fv_content_spec *spec,
		   uint64_t blob_avail_pages, const struct layout_fixed *fixed,
		   struct fv_guest_config *out, struct fv_error *err);

#endif
