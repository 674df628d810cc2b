#include <string.h>
#include "devices/mmio.h"

int mmio_register(struct mmio_bus *bus, uint64_t base, uint64_t len,
		  mmio_fn fn, void *opaque, const char *name,
		  struct fv_error *err)
{
	if (len == 0 || base + len < base)
		return fv_err(err, FV_E_INVAL, "MMIO range %s 0x%llx+%llu invalid",
			      name, (unsigned long long)base,
			      (unsigned long long)len);
	for (unsigned i = 0; i < bus->nr; i++) {
		const struct mmio_range *r = &bus->ranges[i];

		if (base < r->base + r->len && r->base < base + len)
			return fv_err(err, FV_E_INVAL,
				      "MMIO range %s 0x%llx overlaps %s", name,
				      (unsigned long long)base, r->name);
	}
	if (bus->nr == MMIO_MAX_RANGES)
		return fv_err(err, FV_E_INVAL, "MMIO table full (%s)", name);
	bus->ranges[bus->nr++] = (struct mmio_range){
		.base = base, .len = len, .fn = fn, .opaque = opaque,
		.name = name,
	};
	return 0;
}

void mmio_dispatch(const struct mmio_bus *bus, uint64_t addr, bool is_write,
		   uint8_t *data, unsigned len)
{
	for (unsigned i = 0; i < bus->nr; i++) {
		const struct mmio_range *r = &bus->ranges[i];

		if (addr >= r->base && addr - r->base < r->len) {
			if (len > r->len - (addr - r->base))
				break;
			r->fn(r->opaque, addr - r->base, is_write, data, len);
			return;
		}
	}
	if (!is_write)
		memset(data, 0xff, len);
}
