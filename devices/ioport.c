#include <string.h>
#include "devices/ioport.h"

int ioport_register(struct ioport_bus *bus, uint16_t base, uint16_t len,
		    ioport_fn fn, void *opaque, const char *name,
		    struct fv_error *err)
{
	uint32_t end = (uint32_t)base + len;

	if (len == 0 || end > 0x10000)
		return fv_err(err, FV_E_INVAL, "ioport range %s 0x%x+%u invalid",
			      name, base, len);
	for (unsigned i = 0; i < bus->nr; i++) {
		const struct ioport_range *r = &bus->ranges[i];

		if (base < (uint32_t)r->base + r->len && r->base < end)
			return fv_err(err, FV_E_INVAL,
				      "ioport range %s 0x%x+%u overlaps %s",
				      name, base, len, r->name);
	}
	if (bus->nr == IOPORT_MAX_RANGES)
		return fv_err(err, FV_E_INVAL, "ioport table full (%s)", name);
	bus->ranges[bus->nr++] = (struct ioport_range){
		.base = base, .len = len, .fn = fn, .opaque = opaque,
		.name = name,
	};
	return 0;
}

int ioport_dispatch(const struct ioport_bus *bus, unsigned vcpu,
		    uint16_t port, bool is_write, uint8_t *data, unsigned size,
		    struct fv_error *err)
{
	for (unsigned i = 0; i < bus->nr; i++) {
		const struct ioport_range *r = &bus->ranges[i];

		if (port >= r->base && port - r->base < r->len)
			return r->fn(r->opaque, vcpu, port, is_write, data,
				     size, err);
	}
	if (!is_write)
		memset(data, 0xff, size);
	return IOPORT_OK;
}
