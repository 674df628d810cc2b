/*
 * mmio.h - dispatch of MMIO exits (guest-physical accesses outside RAM) to
 * the device windows registered there; the MMIO twin of ioport.h.
 */
#ifndef FOLDVM_MMIO_H
#define FOLDVM_MMIO_H

#include <stdbool.h>
#include <stdint.h>
#include "lib/error.h"

#define MMIO_MAX_RANGES 8

/* One access of `len` bytes (1..8) at offset `off` of the window. */
typedef void (*mmio_fn)(void *opaque, uint64_t off, bool is_write,
			uint8_t *data, unsigned len);

struct mmio_range {
	uint64_t base;
	uint64_t len;
	mmio_fn fn;
	void *opaque;
	const char *name;
};

struct mmio_bus {
	struct mmio_range ranges[MMIO_MAX_RANGES];
	unsigned nr;
};

/* Register [base, base+len); refuses overlaps and a full table. */
int mmio_register(struct mmio_bus *bus, uint64_t base, uint64_t len,
		  mmio_fn fn, void *opaque, const char *name,
		  struct fv_error *err);

/* Handle one access.  An access nobody claims, or one that straddles a
 * window's end, behaves as on an empty bus: reads all ones, writes
 * dropped. */
void mmio_dispatch(const struct mmio_bus *bus, uint64_t addr, bool is_write,
		   uint8_t *data, unsigned len);

#endif
