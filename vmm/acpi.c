/*
 * acpi.c - the ACPI tables of a Linux guest (acpi.h says which and why).
 *
 * Tables are written with small helpers that know a field's width and
 * byte order (ACPI is little-endian); the DSDT's AML is composed from a
 * handful of node writers (Scope, Device, Name, a resource template)
 * whose package lengths are filled in when the node is closed.  Every
 * write goes through a bounded cursor: past the end it sets `full` and
 * writes nothing, and the build then fails.
 */
#include <inttypes.h>
#include <string.h>
#include "vmm/acpi.h"

#define HDR_LEN       36u
#define RSDP_LEN      36u
#define RSDP_V1_LEN   20u
#define FADT_LEN      276u   /* revision 6 */
#define FADT_REV      6u
#define FADT_MINOR    0u
#define MADT_REV      5u
#define XSDT_REV      1u
#define DSDT_REV      2u     /* 64-bit integers */
#define TABLE_ALIGN   16u

/* FADT field offsets (ACPI 6.x, table 5.9). */
#define FADT_DSDT          40
#define FADT_BOOT_ARCH     109
#define FADT_FLAGS         112
#define FADT_MINOR_VER     131
#define FADT_X_DSDT        140
#define FADT_SLEEP_CONTROL 244
#define FADT_SLEEP_STATUS  256
#define FADT_HV_VENDOR     268

#define FADT_F_PWR_BUTTON      (1u << 4)  /* no fixed power button */
#define FADT_F_SLP_BUTTON      (1u << 5)  /* no fixed sleep button */
#define FADT_F_HW_REDUCED_ACPI (1u << 20)
#define BOOT_ARCH_NO_VGA       (1u << 2)
#define BOOT_ARCH_NO_MSI       (1u << 3)
#define BOOT_ARCH_NO_CMOS_RTC  (1u << 5)

#define GAS_SYSTEM_IO 1u
#define GAS_ACCESS_BYTE 1u

#define MADT_PCAT_COMPAT   1u     /* an 8259 pair is there (KVM's) */
#define MADT_LAPIC         0u
#define MADT_IOAPIC        1u
#define MADT_ISO           2u
#define MADT_LAPIC_NMI     4u
#define MADT_LAPIC_ENABLED 1u
#define MADT_LAPIC_LEN     8u
#define MADT_IOAPIC_LEN    12u
#define MADT_ISO_LEN       10u
#define MADT_NMI_LEN       6u
#define MADT_ALL_CPUS      0xffu
#define IOAPIC_ID          0u
#define TIMER_IRQ          0u
#define TIMER_GSI          2u     /* as on a PC: KVM routes GSI 0 to pin 2 too */

/* AML opcodes and resource descriptors (ACPI 6.x, 19.2 and 6.4). */
#define AML_ZERO       0x00
#define AML_ONE        0x01
#define AML_NAME       0x08
#define AML_BYTE       0x0a
#define AML_WORD       0x0b
#define AML_DWORD      0x0c
#define AML_STRING     0x0d
#define AML_QWORD      0x0e
#define AML_SCOPE      0x10
#define AML_BUFFER     0x11
#define AML_PACKAGE    0x12
#define AML_EXT        0x5b
#define AML_DEVICE     0x82
#define AML_ROOT       '\\'
#define RES_IO         0x47   /* small, 7 bytes */
#define RES_IO_LEN     8u
#define RES_MEM32FIXED 0x86   /* large */
#define RES_MEM32FIXED_LEN 12u
#define RES_EXTIRQ     0x89   /* large */
#define RES_EXTIRQ_LEN 9u
#define RES_EXTIRQ_CONSUMER 0x01  /* level (bit 1 clear), active high
				     (bit 2 clear), exclusive (bit 3 clear) */
#define RES_END        0x79
#define RES_END_LEN    2u

static const char oem_id[6] = { 'F', 'O', 'L', 'D', 'V', 'M' };

/* ---- a bounded cursor over the buffer ---- */

struct cur {
	uint8_t *buf;
	size_t len, cap;
	bool full;
};

static void put(struct cur *c, const void *p, size_t n)
{
	if (c->full || n > c->cap - c->len) {
		c->full = true;
		return;
	}
	memcpy(c->buf + c->len, p, n);
	c->len += n;
}

static void put8(struct cur *c, uint8_t v)
{
	put(c, &v, 1);
}

static void put16(struct cur *c, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	put(c, b, sizeof(b));
}

static void put32(struct cur *c, uint32_t v)
{
	put16(c, (uint16_t)v);
	put16(c, (uint16_t)(v >> 16));
}

static void put64(struct cur *c, uint64_t v)
{
	put32(c, (uint32_t)v);
	put32(c, (uint32_t)(v >> 32));
}

/* Little-endian stores into a table already inside the buffer. */
static void set16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void set32(uint8_t *p, uint32_t v)
{
	set16(p, (uint16_t)v);
	set16(p + 2, (uint16_t)(v >> 16));
}

static void set64(uint8_t *p, uint64_t v)
{
	set32(p, (uint32_t)v);
	set32(p + 4, (uint32_t)(v >> 32));
}

uint8_t acpi_sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	for (size_t i = 0; i < len; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

bool acpi_sleep_is_poweroff(uint8_t value)
{
	return (value & ACPI_SLP_EN) &&
	       ((value & ACPI_SLP_TYP_MASK) >> ACPI_SLP_TYP_SHIFT) == ACPI_SLP_TYP_S5;
}

/* Pad to the next table's alignment. */
static void align(struct cur *c)
{
	while (!c->full && c->len % TABLE_ALIGN)
		put8(c, 0);
}

/* The common header; length and checksum come when the table is done. */
static size_t header(struct cur *c, const char sig[4], uint8_t rev,
		     const char table_id[8])
{
	size_t start = c->len;

	put(c, sig, 4);
	put32(c, 0);            /* length */
	put8(c, rev);
	put8(c, 0);             /* checksum */
	put(c, oem_id, sizeof(oem_id));
	put(c, table_id, 8);
	put32(c, 1);            /* OEM revision */
	put(c, "FVMM", 4);      /* creator id */
	put32(c, 1);            /* creator revision */
	return start;
}

static struct acpi_table_pos finish(struct cur *c, size_t start)
{
	struct acpi_table_pos pos = { start, c->len - start };

	if (c->full)
		return pos;
	set32(c->buf + start + 4, (uint32_t)pos.len);
	c->buf[start + 9] = 0;
	c->buf[start + 9] = (uint8_t)(0 - acpi_sum(c->buf + start, pos.len));
	return pos;
}

/* ---- AML ---- */

/* Close a node whose PkgLength goes at `start`, before its `len - start`
 * bytes of body: the length counts its own 1-4 bytes. */
static void aml_close(struct cur *c, size_t start)
{
	size_t body = c->len - start, n, total;

	if (c->full)
		return;
	n = body + 1 < 0x40 ? 1 : body + 2 < 0x1000 ? 2 : body + 3 < 0x100000 ? 3 : 4;
	total = body + n;
	if (n > c->cap - c->len || total >= 0x10000000) {
		c->full = true;
		return;
	}
	memmove(c->buf + start + n, c->buf + start, body);
	if (n == 1) {
		c->buf[start] = (uint8_t)total;
	} else {
		c->buf[start] = (uint8_t)((n - 1) << 6 | (total & 0xf));
		for (size_t i = 1; i < n; i++)
			c->buf[start + i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	c->len += n;
}

static void aml_int(struct cur *c, uint64_t v)
{
	if (v <= 1) {
		put8(c, v ? AML_ONE : AML_ZERO);
	} else if (v <= 0xff) {
		put8(c, AML_BYTE);
		put8(c, (uint8_t)v);
	} else if (v <= 0xffff) {
		put8(c, AML_WORD);
		put16(c, (uint16_t)v);
	} else if (v <= 0xffffffffu) {
		put8(c, AML_DWORD);
		put32(c, (uint32_t)v);
	} else {
		put8(c, AML_QWORD);
		put64(c, v);
	}
}

static void aml_string(struct cur *c, const char *s)
{
	put8(c, AML_STRING);
	put(c, s, strlen(s) + 1);
}

/* EisaId("PNP0501"): three letters in 5 bits each, four hex digits,
 * stored big-endian as a DWORD constant. */
static void aml_eisaid(struct cur *c, const char *id)
{
	uint32_t v = (uint32_t)((id[0] - 0x40) & 0x1f) << 26 |
		     (uint32_t)((id[1] - 0x40) & 0x1f) << 21 |
		     (uint32_t)((id[2] - 0x40) & 0x1f) << 16;

	for (int i = 3; i < 7; i++) {
		char h = id[i];

		v |= (uint32_t)(h <= '9' ? h - '0' : h - 'A' + 10) << (4 * (6 - i));
	}
	put8(c, AML_DWORD);
	put8(c, (uint8_t)(v >> 24));
	put8(c, (uint8_t)(v >> 16));
	put8(c, (uint8_t)(v >> 8));
	put8(c, (uint8_t)v);
}

static size_t res_size(const struct acpi_resource *r)
{
	switch (r->kind) {
	case ACPI_RES_IO: return RES_IO_LEN;
	case ACPI_RES_MEM32: return RES_MEM32FIXED_LEN;
	case ACPI_RES_IRQ_LEVEL: return RES_EXTIRQ_LEN;
	}
	return 0;
}

static void aml_resource(struct cur *c, const struct acpi_resource *r)
{
	switch (r->kind) {
	case ACPI_RES_IO:
		put8(c, RES_IO);
		put8(c, 1);                     /* 16-bit decode */
		put16(c, (uint16_t)r->base);    /* minimum */
		put16(c, (uint16_t)r->base);    /* maximum */
		put8(c, 1);                     /* alignment */
		put8(c, (uint8_t)r->len);
		break;
	case ACPI_RES_MEM32:
		put8(c, RES_MEM32FIXED);
		put16(c, RES_MEM32FIXED_LEN - 3);
		put8(c, 1);                     /* read-write */
		put32(c, (uint32_t)r->base);
		put32(c, (uint32_t)r->len);
		break;
	case ACPI_RES_IRQ_LEVEL:
		put8(c, RES_EXTIRQ);
		put16(c, RES_EXTIRQ_LEN - 3);
		put8(c, RES_EXTIRQ_CONSUMER);
		put8(c, 1);                     /* one interrupt */
		put32(c, r->irq);
		break;
	}
}

/* Name(_CRS, ResourceTemplate() { ... }) */
static void aml_crs(struct cur *c, const struct acpi_device *d)
{
	size_t size = RES_END_LEN, start;

	for (unsigned i = 0; i < d->nr_res; i++)
		size += res_size(&d->res[i]);
	put8(c, AML_NAME);
	put(c, "_CRS", 4);
	put8(c, AML_BUFFER);
	start = c->len;
	aml_int(c, size);
	for (unsigned i = 0; i < d->nr_res; i++)
		aml_resource(c, &d->res[i]);
	put8(c, RES_END);
	put8(c, 0);                             /* checksum 0: "valid" */
	aml_close(c, start);
}

static void aml_device(struct cur *c, const struct acpi_device *d)
{
	size_t start;

	put8(c, AML_EXT);
	put8(c, AML_DEVICE);
	start = c->len;
	put(c, d->name, 4);
	put8(c, AML_NAME);
	put(c, "_HID", 4);
	if (strlen(d->hid) == 7)
		aml_eisaid(c, d->hid);
	else
		aml_string(c, d->hid);
	put8(c, AML_NAME);
	put(c, "_UID", 4);
	aml_int(c, d->uid);
	aml_crs(c, d);
	aml_close(c, start);
}

/* Scope(\_SB_) { devices }  Name(\_S5_, Package() { 5, 0 }) */
static void aml_body(struct cur *c, const struct acpi_config *cfg)
{
	size_t start;

	put8(c, AML_SCOPE);
	start = c->len;
	put8(c, AML_ROOT);
	put(c, "_SB_", 4);
	for (unsigned i = 0; i < cfg->nr_devices; i++)
		aml_device(c, &cfg->devices[i]);
	aml_close(c, start);
	put8(c, AML_NAME);
	put8(c, AML_ROOT);
	put(c, "_S5_", 4);
	put8(c, AML_PACKAGE);
	start = c->len;
	put8(c, 2);                             /* elements */
	aml_int(c, ACPI_SLP_TYP_S5);            /* SLP_TYPa */
	aml_int(c, 0);                          /* SLP_TYPb */
	aml_close(c, start);
}

/* ---- checks ---- */

static bool name_ok(const char *n)
{
	if (strlen(n) != 4 || (n[0] >= '0' && n[0] <= '9'))
		return false;
	for (int i = 0; i < 4; i++)
		if (!((n[i] >= 'A' && n[i] <= 'Z') || (n[i] >= '0' && n[i] <= '9') ||
		      n[i] == '_'))
			return false;
	return true;
}

static bool hid_ok(const char *h)
{
	size_t n = strnlen(h, sizeof(((struct acpi_device *)0)->hid));

	if (n != 7 && n != 8)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool letter = h[i] >= 'A' && h[i] <= 'Z';
		bool hex = (h[i] >= '0' && h[i] <= '9') || (h[i] >= 'A' && h[i] <= 'F');

		/* EISA: 3 letters + 4 hex; string: 4 letters or digits + 4 hex */
		if (i < (n == 7 ? 3u : 4u) ? !(letter || (n == 8 && hex)) : !hex)
			return false;
	}
	return true;
}

static int check_resource(const struct acpi_device *d, const struct acpi_resource *r,
			  struct fv_error *err)
{
	switch (r->kind) {
	case ACPI_RES_IO:
		if (r->len == 0 || r->len > 0xff || r->base > 0x10000 - r->len)
			return fv_err(err, FV_E_INVAL,
				      "ACPI device %s: I/O range 0x%" PRIx64 "+%" PRIu64 " is not 1..255 ports below 0x10000",
				      d->name, r->base, r->len);
		return 0;
	case ACPI_RES_MEM32:
		if (r->len == 0 || r->len > 0x100000000ull ||
		    r->base > 0x100000000ull - r->len)
			return fv_err(err, FV_E_INVAL,
				      "ACPI device %s: memory range 0x%" PRIx64 "+0x%" PRIx64 " is empty or not below 4 GiB",
				      d->name, r->base, r->len);
		return 0;
	case ACPI_RES_IRQ_LEVEL:
		if (r->irq >= ACPI_IOAPIC_PINS)
			return fv_err(err, FV_E_INVAL, "ACPI device %s: GSI %u is not one of the IOAPIC's 0..%u",
				      d->name, r->irq, ACPI_IOAPIC_PINS - 1);
		return 0;
	}
	return fv_err(err, FV_E_INVAL, "ACPI device %s: unknown resource kind %d",
		      d->name, (int)r->kind);
}

static int check_config(const struct acpi_config *cfg, uint64_t base, size_t len,
			struct fv_error *err)
{
	if (cfg->nr_cpus == 0 || cfg->nr_cpus > ACPI_MAX_CPUS)
		return fv_err(err, FV_E_INVAL, "ACPI: %u vCPUs, the MADT describes 1..%u",
			      cfg->nr_cpus, ACPI_MAX_CPUS);
	if (cfg->nr_devices > ACPI_MAX_DEVICES || (cfg->nr_devices && !cfg->devices))
		return fv_err(err, FV_E_INVAL, "ACPI: %u devices, the DSDT describes 0..%u",
			      cfg->nr_devices, ACPI_MAX_DEVICES);
	if (cfg->sleep_port == 0)
		return fv_err(err, FV_E_INVAL, "ACPI: no sleep control port");
	if (base % TABLE_ALIGN || len > 0x100000000ull || base > 0x100000000ull - len)
		return fv_err(err, FV_E_RANGE,
			      "ACPI area 0x%" PRIx64 "+0x%zx is not 16-byte aligned below 4 GiB",
			      base, len);
	for (unsigned i = 0; i < cfg->nr_devices; i++) {
		const struct acpi_device *d = &cfg->devices[i];

		if (!name_ok(d->name))
			return fv_err(err, FV_E_INVAL, "ACPI device %u: name '%.4s' is not an AML name",
				      i, d->name);
		if (!hid_ok(d->hid))
			return fv_err(err, FV_E_INVAL, "ACPI device %s: _HID '%.8s' is neither an EISA id nor an ACPI id",
				      d->name, d->hid);
		if (d->nr_res > ACPI_MAX_RESOURCES)
			return fv_err(err, FV_E_INVAL, "ACPI device %s: %u resources, at most %u",
				      d->name, d->nr_res, ACPI_MAX_RESOURCES);
		for (unsigned r = 0; r < d->nr_res; r++)
			if (check_resource(d, &d->res[r], err))
				return -1;
		for (unsigned j = 0; j < i; j++)
			if (!memcmp(cfg->devices[j].name, d->name, 4))
				return fv_err(err, FV_E_INVAL, "ACPI device name %s used twice", d->name);
	}
	return 0;
}

/* ---- tables ---- */

static void gas_io(struct cur *c, uint16_t port)
{
	put8(c, GAS_SYSTEM_IO);
	put8(c, 8);                             /* bit width */
	put8(c, 0);                             /* bit offset */
	put8(c, GAS_ACCESS_BYTE);
	put64(c, port);
}

static struct acpi_table_pos build_fadt(struct cur *c, const struct acpi_config *cfg)
{
	size_t start = header(c, "FACP", FADT_REV, "FVFADT  ");
	uint8_t zero[FADT_LEN - HDR_LEN];
	uint8_t *t;

	memset(zero, 0, sizeof(zero));
	put(c, zero, sizeof(zero));
	if (c->full)
		return (struct acpi_table_pos){ start, 0 };
	t = c->buf + start;
	set16(t + FADT_BOOT_ARCH, BOOT_ARCH_NO_VGA | BOOT_ARCH_NO_MSI | BOOT_ARCH_NO_CMOS_RTC);
	set32(t + FADT_FLAGS, FADT_F_HW_REDUCED_ACPI | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON);
	t[FADT_MINOR_VER] = FADT_MINOR;
	/* the sleep registers: one byte each, the same port */
	c->len = start + FADT_SLEEP_CONTROL;
	gas_io(c, cfg->sleep_port);
	gas_io(c, cfg->sleep_port);
	put(c, "FOLDVM\0\0", 8);                /* hypervisor vendor */
	return (struct acpi_table_pos){ start, c->len - start };
}

static struct acpi_table_pos build_madt(struct cur *c, const struct acpi_config *cfg)
{
	size_t start = header(c, "APIC", MADT_REV, "FVMADT  ");

	put32(c, (uint32_t)ACPI_LAPIC_GPA);
	put32(c, MADT_PCAT_COMPAT);
	for (unsigned i = 0; i < cfg->nr_cpus; i++) {
		put8(c, MADT_LAPIC);
		put8(c, MADT_LAPIC_LEN);
		put8(c, (uint8_t)i);            /* ACPI processor UID */
		put8(c, (uint8_t)i);            /* APIC id = vCPU index (vmm/cpuid.c) */
		put32(c, MADT_LAPIC_ENABLED);
	}
	put8(c, MADT_IOAPIC);
	put8(c, MADT_IOAPIC_LEN);
	put8(c, IOAPIC_ID);
	put8(c, 0);
	put32(c, (uint32_t)ACPI_IOAPIC_GPA);
	put32(c, 0);                            /* GSI base */
	put8(c, MADT_ISO);
	put8(c, MADT_ISO_LEN);
	put8(c, 0);                             /* ISA */
	put8(c, TIMER_IRQ);
	put32(c, TIMER_GSI);
	put16(c, 0);                            /* conforms to the bus: edge, high */
	put8(c, MADT_LAPIC_NMI);
	put8(c, MADT_NMI_LEN);
	put8(c, MADT_ALL_CPUS);
	put16(c, 0);                            /* conforms */
	put8(c, 1);                             /* LINT1 */
	return finish(c, start);
}

int acpi_build(const struct acpi_config *cfg, uint64_t base_gpa, uint8_t *buf,
	       size_t len, struct acpi_tables *out, struct fv_error *err)
{
	struct cur c = { .buf = buf, .cap = len };
	size_t xsdt_entries;

	memset(out, 0, sizeof(*out));
	if (check_config(cfg, base_gpa, len, err))
		return -1;
	memset(buf, 0, len);
	/* RSDP: its address fields are filled once the XSDT is placed. */
	put(&c, "RSD PTR ", 8);
	c.len = RSDP_LEN;
	if (c.len > c.cap)
		c.full = true;
	align(&c);
	out->xsdt.off = c.len;
	header(&c, "XSDT", XSDT_REV, "FVXSDT  ");
	xsdt_entries = c.len;
	put64(&c, 0);                           /* FADT */
	put64(&c, 0);                           /* MADT */
	out->xsdt = finish(&c, out->xsdt.off);
	align(&c);
	out->fadt = build_fadt(&c, cfg);
	align(&c);
	out->madt = build_madt(&c, cfg);
	align(&c);
	out->dsdt.off = header(&c, "DSDT", DSDT_REV, "FVDSDT  ");
	aml_body(&c, cfg);
	out->dsdt = finish(&c, out->dsdt.off);
	if (c.full)
		return fv_err(err, FV_E_RANGE,
			      "ACPI tables for %u vCPUs and %u devices do not fit in %zu bytes",
			      cfg->nr_cpus, cfg->nr_devices, len);
	/* Addresses, then the checksums of the tables that hold them. */
	set32(buf + out->fadt.off + FADT_DSDT, (uint32_t)(base_gpa + out->dsdt.off));
	set64(buf + out->fadt.off + FADT_X_DSDT, base_gpa + out->dsdt.off);
	out->fadt = finish(&(struct cur){ .buf = buf, .len = out->fadt.off + out->fadt.len,
					  .cap = len }, out->fadt.off);
	set64(buf + xsdt_entries, base_gpa + out->fadt.off);
	set64(buf + xsdt_entries + 8, base_gpa + out->madt.off);
	out->xsdt = finish(&(struct cur){ .buf = buf, .len = out->xsdt.off + out->xsdt.len,
					  .cap = len }, out->xsdt.off);
	memcpy(buf + 9, oem_id, sizeof(oem_id));
	buf[15] = 2;                            /* revision: ACPI 2.0+, has an XSDT */
	set32(buf + 16, 0);                     /* no RSDT */
	set32(buf + 20, RSDP_LEN);
	set64(buf + 24, base_gpa + out->xsdt.off);
	buf[8] = (uint8_t)(0 - acpi_sum(buf, RSDP_V1_LEN));
	buf[32] = (uint8_t)(0 - acpi_sum(buf, RSDP_LEN));
	out->rsdp = (struct acpi_table_pos){ 0, RSDP_LEN };
	out->used = c.len;
	return 0;
}
