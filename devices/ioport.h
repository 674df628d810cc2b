/*
 * ioport.h - dispatch of port I/O exits to the devices that registered the
 * ports (kvmtool style: the run loop hands off, the device decides).
 */
#ifndef FOLDVM_IOPORT_H
#define FOLDVM_IOPORT_H

#include <stdbool.h>
#include <stdint.h>
#include "lib/error.h"

#define IOPORT_MAX_RANGES 16

enum ioport_result {
	IOPORT_OK = 0,        /* handled; the vCPU continues */
	IOPORT_VCPU_EXIT = 1, /* the guest asked this vCPU to leave cleanly */
	IOPORT_FAIL = -1,     /* the guest misbehaved; err says how */
};

/* One access of `size` bytes (1, 2 or 4).  For reads the handler fills
 * data[0..size); for writes it consumes it. */
typedef int (*ioport_fn)(void *opaque, unsigned vcpu, uint16_t port,
			 bool is_write, uint8_t *data, unsigned size,
			 struct fv_error *err);

struct ioport_range {
	uint16_t base;
	uint16_t len;
	ioport_fn fn;
	void *opaque;
	const char *name;
};

struct ioport_bus {
	struct ioport_range ranges[IOPORT_MAX_RANGES];
	unsigned nr;
};

/* Register [base, base+len); refuses overlaps and a full table. */
int ioport_register(struct ioport_bus *bus, uint16_t base, uint16_t len,
		    ioport_fn fn, void *opaque, const char *name,
		    struct fv_error *err);

/* Handle one access.  Unclaimed ports behave like an empty ISA bus:
 * reads return all ones, writes are dropped. */
int ioport_dispatch(const struct ioport_bus *bus, unsigned vcpu,
		    uint16_t port, bool is_write, uint8_t *data, unsigned size,
		    struct fv_error *err);

#endif
