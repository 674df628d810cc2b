/*
 * test_acpi.c - the ACPI tables of a Linux guest (vmm/acpi.c) and its
 * vCPUs' CPUID (vmm/cpuid.c).
 *
 * The tables of a guest with 2 vCPUs, COM1 and 3 virtio-mmio devices are
 * checked byte by byte in C (signatures, lengths, checksums, the pointers
 * between them, the MADT's entries) and then by ACPICA: each table is
 * written to a file and disassembled with `iasl -d` (Debian's
 * acpica-tools, which scripts/setup installs; without it the test fails,
 * it does not skip), which must report no warning or error and must show
 * the devices; the disassembled DSDT must compile again cleanly.  The
 * limits (vCPUs, devices, names, resources, the buffer) are refused with
 * nothing written past the buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <CUnit/CUnit.h>
#include "tests/unit/unit.h"
#include "vmm/acpi.h"
#include "vmm/cpuid.h"
#include "vmm/guest_virtio.h"

#define BASE 0xe0000ull
#define AREA 0x20000u

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* COM1 and n virtio-mmio windows, as vmm/guest.c describes them. */
static unsigned make_devices(struct acpi_device *d, unsigned n)
{
	memset(d, 0, (n + 1) * sizeof(*d));
	memcpy(d[0].name, "COM1", 5);
	memcpy(d[0].hid, "PNP0501", 8);
	d[0].uid = 1;
	d[0].nr_res = 2;
	d[0].res[0] = (struct acpi_resource){ .kind = ACPI_RES_IO, .base = 0x3f8, .len = 8 };
	d[0].res[1] = (struct acpi_resource){ .kind = ACPI_RES_IRQ_LEVEL, .irq = 4 };
	for (unsigned i = 1; i <= n; i++) {
		snprintf(d[i].name, sizeof(d[i].name), "VR%02u", i - 1);
		memcpy(d[i].hid, "LNRO0005", 9);
		d[i].uid = i - 1;
		d[i].nr_res = 2;
		d[i].res[0] = (struct acpi_resource){ .kind = ACPI_RES_MEM32,
			.base = 0xd0000000ull + (i - 1) * 0x1000ull, .len = 0x1000 };
		d[i].res[1] = (struct acpi_resource){ .kind = ACPI_RES_IRQ_LEVEL,
			.irq = 5 + i - 1 };
	}
	return n + 1;
}

static void check_table(const uint8_t *buf, const struct acpi_tables *t,
			const struct acpi_table_pos *p, const char *sig)
{
	CU_ASSERT_EQUAL(memcmp(buf + p->off, sig, 4), 0);
	CU_ASSERT_EQUAL(rd32(buf + p->off + 4), p->len);
	CU_ASSERT_EQUAL(acpi_sum(buf + p->off, p->len), 0);
	CU_ASSERT_TRUE(p->off + p->len <= t->used);
	CU_ASSERT_EQUAL(p->off % 8, 0);
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	s = calloc(1, (size_t)n + 1);
	if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
		free(s);
		s = NULL;
	}
	fclose(f);
	return s;
}

/* No line of ACPICA's that says something is wrong. */
static void assert_clean(const char *what, const char *text)
{
	static const char *const bad[] = { "Warning", "Error", "Incorrect",
					   "Invalid", "Unknown", "error" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		const char *hit = strstr(text, bad[i]);

		if (hit && strncmp(hit, "Errors", 6) && strncmp(hit - 2, "0 Errors", 8)) {
			fprintf(stderr, "\n%s: iasl says: %.200s\n", what, hit);
			CU_FAIL("iasl reported a problem");
		}
	}
}

/* Disassemble buf[p] with iasl -d in dir; returns the .dsl text (or NULL,
 * having failed the test). */
static char *iasl_disassemble(const char *dir, const char *name, const uint8_t *buf,
			      const struct acpi_table_pos *p)
{
	char path[512], cmd[1200], *out, *dsl;
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/%s.dat", dir, name);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fwrite(buf + p->off, 1, p->len, f), p->len);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cd '%s' && iasl -d %s.dat >%s.out 2>&1", dir, name, name);
	rc = system(cmd);
	snprintf(path, sizeof(path), "%s/%s.out", dir, name);
	out = slurp(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	if (rc != 0)
		fprintf(stderr, "\niasl -d %s: exit %d: %s\n", name, rc, out);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "appears to be a valid ACPI table"));
	assert_clean(name, out);
	free(out);
	snprintf(path, sizeof(path), "%s/%s.dsl", dir, name);
	dsl = slurp(path);
	CU_ASSERT_PTR_NOT_NULL(dsl);
	if (dsl)
		assert_clean(name, dsl);
	return dsl;
}

static bool have_iasl(void)
{
	return system("command -v iasl >/dev/null 2>&1") == 0;
}

static void check_rsdp(const uint8_t *buf, const struct acpi_tables *t)
{
	CU_ASSERT_EQUAL(memcmp(buf, "RSD PTR ", 8), 0);
	CU_ASSERT_EQUAL(acpi_sum(buf, 20), 0);
	CU_ASSERT_EQUAL(acpi_sum(buf, 36), 0);
	CU_ASSERT_EQUAL(buf[15], 2);
	CU_ASSERT_EQUAL(rd32(buf + 20), 36);
	CU_ASSERT_EQUAL(rd64(buf + 24), BASE + t->xsdt.off);
	CU_ASSERT_EQUAL(t->rsdp.off, 0);
}

static void check_links(const uint8_t *buf, const struct acpi_tables *t)
{
	const uint8_t *f = buf + t->fadt.off;

	CU_ASSERT_EQUAL(t->xsdt.len, 36 + 16);
	CU_ASSERT_EQUAL(rd64(buf + t->xsdt.off + 36), BASE + t->fadt.off);
	CU_ASSERT_EQUAL(rd64(buf + t->xsdt.off + 44), BASE + t->madt.off);
	CU_ASSERT_EQUAL(t->fadt.len, 276);
	CU_ASSERT_EQUAL(f[8], 6);
	CU_ASSERT_EQUAL(rd32(f + 40), BASE + t->dsdt.off);
	CU_ASSERT_EQUAL(rd64(f + 140), BASE + t->dsdt.off);
	CU_ASSERT_TRUE(rd32(f + 112) & (1u << 20));          /* HW_REDUCED_ACPI */
	/* sleep control and status: SystemIO, 8 bits, byte access, the port */
	for (unsigned off = 244; off <= 256; off += 12) {
		CU_ASSERT_EQUAL(f[off], 1);
		CU_ASSERT_EQUAL(f[off + 1], 8);
		CU_ASSERT_EQUAL(f[off + 3], 1);
		CU_ASSERT_EQUAL(rd64(f + off + 4), ACPI_SLEEP_PORT);
	}
}

/* The MADT's entries: a LAPIC per vCPU with APIC id = index, one IOAPIC. */
static void check_madt(const uint8_t *buf, const struct acpi_tables *t, unsigned cpus)
{
	const uint8_t *m = buf + t->madt.off;
	unsigned lapics = 0, ioapics = 0, isos = 0, nmis = 0;

	CU_ASSERT_EQUAL(rd32(m + 36), 0xfee00000u);
	for (size_t off = 44; off < t->madt.len; off += m[off + 1]) {
		CU_ASSERT_FATAL(m[off + 1] >= 2 && off + m[off + 1] <= t->madt.len);
		switch (m[off]) {
		case 0:
			CU_ASSERT_EQUAL(m[off + 3], lapics);
			CU_ASSERT_EQUAL(rd32(m + off + 4), 1);
			lapics++;
			break;
		case 1:
			CU_ASSERT_EQUAL(rd32(m + off + 4), 0xfec00000u);
			CU_ASSERT_EQUAL(rd32(m + off + 8), 0);
			ioapics++;
			break;
		case 2:
			CU_ASSERT_EQUAL(m[off + 3], 0);
			CU_ASSERT_EQUAL(rd32(m + off + 4), 2);
			isos++;
			break;
		case 4:
			CU_ASSERT_EQUAL(m[off + 5], 1);
			nmis++;
			break;
		default:
			CU_FAIL("unexpected MADT entry");
		}
	}
	CU_ASSERT_EQUAL(lapics, cpus);
	CU_ASSERT_EQUAL(ioapics, 1);
	CU_ASSERT_EQUAL(isos, 1);
	CU_ASSERT_EQUAL(nmis, 1);
}

static void test_tables_iasl(void)
{
	static uint8_t buf[AREA];
	struct acpi_device dev[4];
	struct acpi_config cfg = { .nr_cpus = 2, .sleep_port = ACPI_SLEEP_PORT,
				   .devices = dev };
	struct acpi_tables t;
	struct fv_error err = { 0 };
	char dir[] = "/tmp/foldvm-acpi-XXXXXX", cmd[600], *dsl, *out;

	cfg.nr_devices = make_devices(dev, 3);
	CU_ASSERT_EQUAL_FATAL(acpi_build(&cfg, BASE, buf, sizeof(buf), &t, &err), 0);
	check_rsdp(buf, &t);
	check_table(buf, &t, &t.xsdt, "XSDT");
	check_table(buf, &t, &t.fadt, "FACP");
	check_table(buf, &t, &t.madt, "APIC");
	check_table(buf, &t, &t.dsdt, "DSDT");
	check_links(buf, &t);
	check_madt(buf, &t, 2);
	if (!have_iasl()) {
		CU_FAIL("iasl not found: install acpica-tools (scripts/setup does)");
		return;
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	free(iasl_disassemble(dir, "xsdt", buf, &t.xsdt));
	dsl = iasl_disassemble(dir, "fadt", buf, &t.fadt);
	CU_ASSERT_TRUE(dsl && strstr(dsl, "Hardware Reduced (V5) : 1") != NULL);
	CU_ASSERT_TRUE(dsl && strstr(dsl, "Address : 0000000000000600") != NULL);
	free(dsl);
	dsl = iasl_disassemble(dir, "madt", buf, &t.madt);
	CU_ASSERT_EQUAL(dsl ? count(dsl, "[Processor Local APIC]") : 0, 2);
	CU_ASSERT_EQUAL(dsl ? count(dsl, "[I/O APIC]") : 0, 1);
	CU_ASSERT_EQUAL(dsl ? count(dsl, "[Interrupt Source Override]") : 0, 1);
	CU_ASSERT_EQUAL(dsl ? count(dsl, "[Local APIC NMI]") : 0, 1);
	free(dsl);
	dsl = iasl_disassemble(dir, "dsdt", buf, &t.dsdt);
	CU_ASSERT_EQUAL(dsl ? count(dsl, "Name (_HID, \"LNRO0005\")") : 0, 3);
	CU_ASSERT_EQUAL(dsl ? count(dsl, "EisaId (\"PNP0501\")") : 0, 1);
	CU_ASSERT_EQUAL(dsl ? count(dsl, "Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive") : 0, 4);
	CU_ASSERT_TRUE(dsl && strstr(dsl, "0xD0002000,         // Address Base") != NULL);
	CU_ASSERT_TRUE(dsl && strstr(dsl, "0x00000007,") != NULL);
	CU_ASSERT_TRUE(dsl && strstr(dsl, "Name (\\_S5, Package (0x02)") != NULL);
	free(dsl);
	/* What iasl disassembled compiles again without a complaint. */
	snprintf(cmd, sizeof(cmd), "cd '%s' && iasl -p again dsdt.dsl >again.out 2>&1", dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s/again.out", dir);
	out = slurp(cmd);
	CU_ASSERT_TRUE(out && strstr(out, "0 Errors, 0 Warnings, 0 Remarks") != NULL);
	free(out);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
}

/* The largest guest foldvm makes fits the area, sized exactly. */
static void test_sizes(void)
{
	static uint8_t buf[AREA];
	struct acpi_device dev[9];
	struct acpi_config cfg = { .nr_cpus = 64, .sleep_port = ACPI_SLEEP_PORT,
				   .devices = dev };
	struct acpi_tables t;
	struct fv_error err = { 0 };

	cfg.nr_devices = make_devices(dev, 8);
	CU_ASSERT_EQUAL_FATAL(acpi_build(&cfg, BASE, buf, sizeof(buf), &t, &err), 0);
	CU_ASSERT_EQUAL(t.madt.len, 44 + 64 * 8 + 12 + 10 + 6);
	check_madt(buf, &t, 64);
	check_table(buf, &t, &t.dsdt, "DSDT");
	CU_ASSERT_TRUE(t.used < AREA);
	cfg.nr_cpus = ACPI_MAX_CPUS;
	CU_ASSERT_EQUAL(acpi_build(&cfg, BASE, buf, sizeof(buf), &t, &err), 0);
	check_madt(buf, &t, ACPI_MAX_CPUS);
}

/* Every refusal; a buffer too small is not written past. */
static void test_limits(void)
{
	static uint8_t big[AREA + 64];
	struct acpi_device dev[ACPI_MAX_DEVICES + 2];
	struct acpi_config cfg = { .nr_cpus = 2, .sleep_port = ACPI_SLEEP_PORT,
				   .devices = dev };
	struct acpi_tables t;
	struct fv_error err = { 0 };
	size_t need;

	cfg.nr_devices = make_devices(dev, 3);
	CU_ASSERT_EQUAL_FATAL(acpi_build(&cfg, BASE, big, AREA, &t, &err), 0);
	need = t.used;
	for (size_t len = 0; len < need; len += 7) {
		memset(big, 0xa5, sizeof(big));
		err.code = FV_OK;
		CU_ASSERT_EQUAL(acpi_build(&cfg, BASE, big, len, &t, &err), -1);
		CU_ASSERT_EQUAL(err.code, FV_E_RANGE);
		for (size_t i = len; i < sizeof(big); i++)
			if (big[i] != 0xa5) {
				CU_FAIL("written past the buffer");
				break;
			}
	}
	CU_ASSERT_EQUAL(acpi_build(&cfg, BASE, big, need, &t, &err), 0);
	cfg.nr_cpus = 0;
	CU_ASSERT_EQUAL(acpi_build(&cfg, BASE, big, AREA, &t, &err), -1);
	cfg.nr_cpus = ACPI_MAX_CPUS + 1;
	CU_ASSERT_EQUAL(acpi_build(&cfg, BASE, big, AREA, &t, &err), -1);
	cfg.nr_cpus = 2;
	cfg.nr_devices = make_devices(dev, ACPI_MAX_DEVICES);
	CU_ASSERT_EQUAL(acpi_build(&cfg, BASE, big, AREA, &t, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "devices"));
	cfg.nr_devices = make_devices(dev, 3);
	CU_ASSERT_EQUAL(acpi_build(&cfg, 0xfffff000ull, big, AREA, &t, &err), -1);
	CU_ASSERT_EQUAL(acpi_build(&cfg, BASE + 4, big, AREA, &t, &err), -1);
	memcpy(dev[2].name, "1BAD", 5);
	CU_ASSERT_EQUAL(acpi_build(&cfg, BASE, big, AREA, &t, &err), -1);
	memcpy(dev[2].name, "VR00", 5);          /* twice */
	CU_ASSERT_EQUAL(acpi_build(&cfg, BASE, big, AREA, &t, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "twice"));
	cfg.nr_devices = make_devices(dev, 3);
	memcpy(dev[1].hid, "lnro0005", 9);
	CU_ASSERT_EQUAL(acpi_build(&cfg, BASE, big, AREA, &t, &err), -1);
	cfg.nr_devices = make_devices(dev, 3);
	dev[1].res[1].irq = ACPI_IOAPIC_PINS;
	CU_ASSERT_EQUAL(acpi_build(&cfg, BASE, big, AREA, &t, &err), -1);
	cfg.nr_devices = make_devices(dev, 3);
	dev[1].res[0].base = 0xfffff800ull;
	CU_ASSERT_EQUAL(acpi_build(&cfg, BASE, big, AREA, &t, &err), -1);
	cfg.nr_devices = make_devices(dev, 3);
	dev[0].res[0].base = 0xfffc;
	CU_ASSERT_EQUAL(acpi_build(&cfg, BASE, big, AREA, &t, &err), -1);
	cfg.nr_devices = make_devices(dev, 3);
	dev[0].res[1].kind = (enum acpi_res_kind)99;   /* no such kind */
	CU_ASSERT_EQUAL(acpi_build(&cfg, BASE, big, AREA, &t, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "unknown resource kind"));
	cfg.nr_devices = make_devices(dev, 3);
	dev[0].nr_res = ACPI_MAX_RESOURCES + 1;
	CU_ASSERT_EQUAL(acpi_build(&cfg, BASE, big, AREA, &t, &err), -1);
	cfg.nr_devices = make_devices(dev, 3);
	cfg.sleep_port = 0;
	CU_ASSERT_EQUAL(acpi_build(&cfg, BASE, big, AREA, &t, &err), -1);
}

static void test_sleep_value(void)
{
	CU_ASSERT_TRUE(acpi_sleep_is_poweroff(5 << 2 | ACPI_SLP_EN));
	CU_ASSERT_TRUE(acpi_sleep_is_poweroff(5 << 2 | ACPI_SLP_EN | 0x80));
	CU_ASSERT_FALSE(acpi_sleep_is_poweroff(5 << 2));          /* no SLP_EN */
	CU_ASSERT_FALSE(acpi_sleep_is_poweroff(3 << 2 | ACPI_SLP_EN));
	CU_ASSERT_FALSE(acpi_sleep_is_poweroff(ACPI_WAK_STS));
	CU_ASSERT_FALSE(acpi_sleep_is_poweroff(0));
}

/* The DSDT's virtio devices are the guest's windows and the lines its
 * devices raise (guest_virtio_acpi reads both from the guest). */
static void test_virtio_devices(void)
{
	static struct guest g;
	struct acpi_device d[FV_VIRTIO_MAX_DEVICES];

	memset(&g, 0, sizeof(g));
	g.nr_virtio = g.mmio.nr = 3;
	for (unsigned i = 0; i < 3; i++) {
		g.mmio.ranges[i].base = 0xd0000000ull + i * 0x1000ull;
		g.mmio.ranges[i].len = 0x1000;
		g.virtio_irq[i].irq = 9 + 2 * i;        /* whatever it was given */
	}
	CU_ASSERT_EQUAL(guest_virtio_acpi(&g, d, FV_VIRTIO_MAX_DEVICES), 3);
	for (unsigned i = 0; i < 3; i++) {
		char name[5];

		snprintf(name, sizeof(name), "VR%02u", i);
		CU_ASSERT_STRING_EQUAL(d[i].name, name);
		CU_ASSERT_STRING_EQUAL(d[i].hid, "LNRO0005");
		CU_ASSERT_EQUAL(d[i].uid, i);
		CU_ASSERT_EQUAL(d[i].nr_res, 2);
		CU_ASSERT_EQUAL(d[i].res[0].kind, ACPI_RES_MEM32);
		CU_ASSERT_EQUAL(d[i].res[0].base, 0xd0000000ull + i * 0x1000ull);
		CU_ASSERT_EQUAL(d[i].res[0].len, 0x1000);
		CU_ASSERT_EQUAL(d[i].res[1].kind, ACPI_RES_IRQ_LEVEL);
		CU_ASSERT_EQUAL(d[i].res[1].irq, 9 + 2 * i);
	}
	/* bounded by the room given */
	CU_ASSERT_EQUAL(guest_virtio_acpi(&g, d, 2), 2);
	g.nr_virtio = 0;
	CU_ASSERT_EQUAL(guest_virtio_acpi(&g, d, FV_VIRTIO_MAX_DEVICES), 0);
}

/* ---- CPUID ---- */

static struct kvm_cpuid_entry2 ent(uint32_t f, uint32_t i, bool indexed, uint32_t a,
				   uint32_t b, uint32_t c, uint32_t d)
{
	return (struct kvm_cpuid_entry2){ .function = f, .index = i,
		.flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0,
		.eax = a, .ebx = b, .ecx = c, .edx = d };
}

/* A table shaped like this host's KVM_GET_SUPPORTED_CPUID (Intel), or
 * AMD's; returns the count. */
static unsigned host_table(struct kvm_cpuid_entry2 *e, bool amd, bool kvm_leaves)
{
	unsigned n = 0;

	if (amd)
		e[n++] = ent(0, 0, false, 0x10, 0x68747541, 0x444d4163, 0x69746e65);
	else
		e[n++] = ent(0, 0, false, 0x24, 0x756e6547, 0x6c65746e, 0x49656e69);
	e[n++] = ent(1, 0, false, 0xa0671, 0x01020800, 0x01202000, 0x0f8bfbff);
	e[n++] = ent(4, 0, true, 0x04000121, 0x02c0003f, 0x3f, 0);
	e[n++] = ent(4, 3, true, 0x04004163, 0x03c0003f, 0x77fff, 0);
	e[n++] = ent(4, 4, true, 0, 0, 0, 0);
	e[n++] = ent(0xb, 0, true, 0, 0, 0, 7);
	e[n++] = ent(0x1f, 0, true, 0, 0, 0, 7);
	if (kvm_leaves) {
		e[n++] = ent(0x40000000, 0, false, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d);
		e[n++] = ent(0x40000001, 0, false, 0x01007efb, 0, 0, 0);
	}
	e[n++] = ent(0x80000000, 0, false, 0x8000001e, 0, 0, 0);
	e[n++] = ent(0x80000008, 0, false, 0x3930, 0, 0x7003, 0);
	e[n++] = ent(0x8000001e, 0, false, 9, 0x109, 0x100, 0);
	return n;
}

static void check_topology(const struct kvm_cpuid_entry2 *o, unsigned n,
			   uint32_t f, unsigned id, unsigned cpus)
{
	const struct kvm_cpuid_entry2 *s = cpuid_find(o, n, f, 0);
	const struct kvm_cpuid_entry2 *c = cpuid_find(o, n, f, 1);
	const struct kvm_cpuid_entry2 *e = cpuid_find(o, n, f, 2);

	CU_ASSERT_FATAL(s && c && e);
	CU_ASSERT_EQUAL(s->edx, id);
	CU_ASSERT_EQUAL(s->ebx, 1);
	CU_ASSERT_EQUAL((s->ecx >> 8) & 0xff, 1);       /* SMT */
	CU_ASSERT_EQUAL(s->eax & 0x1f, 0);
	CU_ASSERT_EQUAL(c->edx, id);
	CU_ASSERT_EQUAL(c->ebx, cpus);
	CU_ASSERT_EQUAL((c->ecx >> 8) & 0xff, 2);       /* core */
	CU_ASSERT_EQUAL(c->ecx & 0xff, 1);
	CU_ASSERT_TRUE((1u << (c->eax & 0x1f)) >= cpus);
	CU_ASSERT_EQUAL((e->ecx >> 8) & 0xff, 0);       /* the end */
	CU_ASSERT_EQUAL(e->ebx, 0);
}

static void test_cpuid_intel(void)
{
	struct kvm_cpuid_entry2 sup[32], out[CPUID_MAX_ENTRIES];
	unsigned nsup = host_table(sup, false, true), n;
	const struct kvm_cpuid_entry2 *e;
	struct fv_error err = { 0 };

	for (unsigned id = 0; id < 3; id++) {
		CU_ASSERT_EQUAL_FATAL(cpuid_build(sup, nsup, id, 3, out, CPUID_MAX_ENTRIES,
						  &n, &err), 0);
		e = cpuid_find(out, n, 1, 0);
		CU_ASSERT_FATAL(e != NULL);
		CU_ASSERT_EQUAL(e->ebx >> 24, id);
		CU_ASSERT_EQUAL((e->ebx >> 16) & 0xff, 3);
		CU_ASSERT_EQUAL(e->ebx & 0xffff, 0x0800);       /* the rest kept */
		CU_ASSERT_TRUE(e->ecx & CPUID_ECX_HYPERVISOR);
		CU_ASSERT_TRUE(e->edx & CPUID_EDX_HTT);
		check_topology(out, n, 0xb, id, 3);
		check_topology(out, n, 0x1f, id, 3);
		/* KVM's leaves as KVM said */
		e = cpuid_find(out, n, 0x40000000, 0);
		CU_ASSERT_FATAL(e != NULL);
		CU_ASSERT_EQUAL(memcmp(&e->ebx, "KVMK", 4), 0);
		CU_ASSERT_EQUAL(e->eax, 0x40000001);
		e = cpuid_find(out, n, 0x40000001, 0);
		CU_ASSERT_FATAL(e != NULL);
		CU_ASSERT_EQUAL(e->eax, 0x01007efb);
		/* leaf 4: 4 core ids per package (2 bits), L3 shared by them */
		e = cpuid_find(out, n, 4, 0);
		CU_ASSERT_EQUAL(e->eax >> 26, 3);
		CU_ASSERT_EQUAL((e->eax >> 14) & 0xfff, 0);
		CU_ASSERT_EQUAL(e->eax & 0x3fff, 0x121);
		e = cpuid_find(out, n, 4, 3);
		CU_ASSERT_EQUAL(e->eax >> 26, 3);
		CU_ASSERT_EQUAL((e->eax >> 14) & 0xfff, 3);
		/* Intel: AMD's leaves untouched */
		e = cpuid_find(out, n, 0x80000008, 0);
		CU_ASSERT_EQUAL(e->ecx, 0x7003);
		/* the host's topology entries replaced, not kept */
		CU_ASSERT_EQUAL(n, nsup - 2 + 6);
	}
	/* The largest count: every field within its width. */
	CU_ASSERT_EQUAL(cpuid_build(sup, nsup, 254, CPUID_MAX_VCPUS, out, CPUID_MAX_ENTRIES,
				    &n, &err), 0);
	e = cpuid_find(out, n, 1, 0);
	CU_ASSERT_EQUAL(e->ebx >> 24, 254);
	CU_ASSERT_EQUAL((e->ebx >> 16) & 0xff, CPUID_MAX_VCPUS);
	e = cpuid_find(out, n, 4, 3);
	CU_ASSERT_EQUAL(e->eax >> 26, 0x3f);
	CU_ASSERT_EQUAL((e->eax >> 14) & 0xfff, 255);
	CU_ASSERT_EQUAL(e->eax & 0x3fff, 0x163);
	check_topology(out, n, 0xb, 254, CPUID_MAX_VCPUS);
	/* One vCPU: no HTT. */
	CU_ASSERT_EQUAL(cpuid_build(sup, nsup, 0, 1, out, CPUID_MAX_ENTRIES, &n, &err), 0);
	e = cpuid_find(out, n, 1, 0);
	CU_ASSERT_FALSE(e->edx & CPUID_EDX_HTT);
	CU_ASSERT_TRUE(e->ecx & CPUID_ECX_HYPERVISOR);
	check_topology(out, n, 0xb, 0, 1);
}

static void test_cpuid_amd(void)
{
	struct kvm_cpuid_entry2 sup[32], out[CPUID_MAX_ENTRIES];
	unsigned nsup = host_table(sup, true, true), n;
	const struct kvm_cpuid_entry2 *e;
	struct fv_error err = { 0 };

	CU_ASSERT_EQUAL_FATAL(cpuid_build(sup, nsup, 1, 2, out, CPUID_MAX_ENTRIES, &n, &err), 0);
	e = cpuid_find(out, n, 0x80000008, 0);
	CU_ASSERT_EQUAL(e->ecx & 0xff, 1);                  /* 2 cores */
	CU_ASSERT_EQUAL((e->ecx >> 12) & 0xf, 1);
	e = cpuid_find(out, n, 0x8000001e, 0);
	CU_ASSERT_EQUAL(e->eax, 1);
	CU_ASSERT_EQUAL(e->ebx & 0xff, 1);
	CU_ASSERT_EQUAL((e->ebx >> 8) & 0xff, 0);           /* 1 thread a core */
	/* max basic leaf 0x10: 0xB is there, no 0x1F is made up */
	check_topology(out, n, 0xb, 1, 2);
	CU_ASSERT_PTR_NULL(cpuid_find(out, n, 0x1f, 0));
	CU_ASSERT_EQUAL(cpuid_find(out, n, 1, 0)->ebx >> 24, 1);
}

static void test_cpuid_refusals(void)
{
	struct kvm_cpuid_entry2 sup[32], out[CPUID_MAX_ENTRIES];
	unsigned nsup = host_table(sup, false, true), n = 99;
	struct fv_error err = { 0 };

	CU_ASSERT_EQUAL(cpuid_build(sup, nsup, 0, 0, out, CPUID_MAX_ENTRIES, &n, &err), -1);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(cpuid_build(sup, nsup, 2, 2, out, CPUID_MAX_ENTRIES, &n, &err), -1);
	CU_ASSERT_EQUAL(cpuid_build(sup, nsup, 0, CPUID_MAX_VCPUS + 1, out,
				    CPUID_MAX_ENTRIES, &n, &err), -1);
	/* too small an output: refused, not overrun */
	for (unsigned max = 0; max < nsup + 4; max++) {
		memset(out, 0xa5, sizeof(out));
		CU_ASSERT_EQUAL(cpuid_build(sup, nsup, 0, 2, out, max, &n, &err), -1);
		CU_ASSERT_EQUAL(((uint8_t *)&out[max])[0], 0xa5);
	}
	CU_ASSERT_EQUAL(cpuid_build(sup, nsup, 0, 2, out, nsup + 4, &n, &err), 0);
	/* no KVM leaves: refused, naming them */
	nsup = host_table(sup, false, false);
	CU_ASSERT_EQUAL(cpuid_build(sup, nsup, 0, 1, out, CPUID_MAX_ENTRIES, &n, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "KVMKVMKVM"));
	CU_ASSERT_EQUAL(cpuid_order(1), 0);
	CU_ASSERT_EQUAL(cpuid_order(2), 1);
	CU_ASSERT_EQUAL(cpuid_order(3), 2);
	CU_ASSERT_EQUAL(cpuid_order(64), 6);
	CU_ASSERT_EQUAL(cpuid_order(65), 7);
}

void unit_add_acpi_suite(void)
{
	CU_pSuite s = CU_add_suite("acpi+cpuid", NULL, NULL);

	CU_add_test(s, "tables for 2 vCPUs, COM1, 3 virtio: C and iasl -d", test_tables_iasl);
	CU_add_test(s, "64 and 255 vCPUs, 8 virtio devices", test_sizes);
	CU_add_test(s, "limits and a short buffer", test_limits);
	CU_add_test(s, "sleep control value", test_sleep_value);
	CU_add_test(s, "virtio windows as DSDT devices", test_virtio_devices);
	CU_add_test(s, "cpuid: Intel, 3 vCPUs", test_cpuid_intel);
	CU_add_test(s, "cpuid: AMD, 2 vCPUs", test_cpuid_amd);
	CU_add_test(s, "cpuid: refusals", test_cpuid_refusals);
}
