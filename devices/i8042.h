/*
 * i8042.h - the PC keyboard controller, reduced to what foldvm's guests
 * need: no keyboard, no mouse, only the reset line.  Linux reboots by
 * writing command 0xfe ("pulse reset") to port 0x64 (reboot=k, and the
 * fallback of every other method); foldvm turns that into the guest's own
 * shutdown.  The status port says "nothing to read, ready for a command",
 * so a driver probing for a keyboard times out cleanly and gives up.
 *
 * Pure state + a callback, like the serial device: no KVM needed to test.
 */
#ifndef FOLDVM_I8042_H
#define FOLDVM_I8042_H

#include <stdbool.h>
#include <stdint.h>
#include "lib/error.h"

#define I8042_DATA_PORT 0x60u
#define I8042_CMD_PORT  0x64u
#define I8042_CMD_RESET 0xfeu

/* Called on vCPU `vcpu`'s thread when the guest pulses reset. */
typedef void (*i8042_reset_fn)(void *opaque, unsigned vcpu);

struct i8042 {
	i8042_reset_fn reset;
	void *opaque;
	unsigned resets;   /* how often the guest asked (atomic) */
};

void i8042_init(struct i8042 *k, i8042_reset_fn reset, void *opaque);

/* ioport_fn for ports 0x60 and 0x64. */
int i8042_io(void *opaque, unsigned vcpu, uint16_t port, bool is_write,
	     uint8_t *data, unsigned size, struct fv_error *err);

#endif
