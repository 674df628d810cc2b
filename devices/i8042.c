#include <string.h>
#include "devices/i8042.h"
#include "devices/ioport.h"

void i8042_init(struct i8042 *k, i8042_reset_fn reset, void *opaque)
{
	memset(k, 0, sizeof(*k));
	k->reset = reset;
	k->opaque = opaque;
}

int i8042_io(void *opaque, unsigned vcpu, uint16_t port, bool is_write,
	     uint8_t *data, unsigned size, struct fv_error *err)
{
	struct i8042 *k = opaque;

	(void)err;
	if (!is_write) {
		/* Status: output buffer empty, input buffer empty; data: 0. */
		memset(data, 0, size);
		return IOPORT_OK;
	}
	/* Only the first byte of a wider write reaches port 0x64 itself. */
	if (port == I8042_CMD_PORT && data[0] == I8042_CMD_RESET) {
		__atomic_add_fetch(&k->resets, 1, __ATOMIC_RELAXED);
		if (k->reset)
			k->reset(k->opaque, vcpu);
	}
	return IOPORT_OK;
}
