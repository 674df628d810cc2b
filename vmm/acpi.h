/*
 * acpi.h - the ACPI tables foldvm builds for a Linux guest: what a kernel
 * without firmware needs to find its CPUs, interrupt controllers and
 * virtio-mmio devices, and to power itself off.
 *
 *   RSDP (revision 2) -> XSDT -> FADT (hardware-reduced, revision 6, the
 *                                sleep control/status registers at an I/O
 *                                port; -> DSDT)
 *                             -> MADT (a local APIC per vCPU, the IOAPIC,
 *                                IRQ0 -> GSI 2, LINT1 = NMI)
 *   DSDT: \_SB_ with one Device per acpi_device (the serial port, each
 *         virtio-mmio window as LNRO0005), and \_S5_ so Linux offers
 *         poweroff.
 *
 * The builder knows no device: each device owner describes itself as an
 * acpi_device (a name, an id, its resources) and acpi_build() turns the
 * list into AML.  It is a pure function into a caller's buffer that stands
 * for guest-physical [base, base + len): every table lands inside it or
 * the build fails, sizes come from the vCPU and device counts, which are
 * bounded, and every checksum and length is computed over what was
 * written.  vmm/x86_linux.c copies the result to the guest.
 */
#ifndef FOLDVM_ACPI_H
#define FOLDVM_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/error.h"

/* Where the tables go: the RSDP at the start of the BIOS area Linux scans
 * for it (0xE0000-0xFFFFF, 16-byte aligned), the tables after it, all in
 * the legacy hole the e820 map reserves (vmm/linux_boot.c). */
#define ACPI_AREA_GPA      0xe0000ull
#define ACPI_AREA_SIZE     0x20000ull

#define ACPI_MAX_CPUS      255u  /* xAPIC ids; the MADT's local APIC entries */
#define ACPI_MAX_DEVICES   32u
#define ACPI_MAX_RESOURCES 4u
#define ACPI_IOAPIC_PINS   24u   /* KVM's IOAPIC: GSIs 0..23 */
#define ACPI_LAPIC_GPA     0xfee00000ull
#define ACPI_IOAPIC_GPA    0xfec00000ull

/* The sleep control and status register (hardware-reduced ACPI): one byte
 * at this port; Linux powers off by writing SLP_TYP(5) << 2 | SLP_EN. */
#define ACPI_SLEEP_PORT    0x600u
#define ACPI_SLP_TYP_S5    5u
#define ACPI_SLP_TYP_SHIFT 2u
#define ACPI_SLP_TYP_MASK  0x1cu
#define ACPI_SLP_EN        0x20u
#define ACPI_WAK_STS       0x80u

enum acpi_res_kind {
	ACPI_RES_IO,        /* IO(Decode16, base, base, 1, len) */
	ACPI_RES_MEM32,     /* Memory32Fixed(ReadWrite, base, len) */
	ACPI_RES_IRQ_LEVEL, /* Interrupt(ResourceConsumer, Level, ActiveHigh,
			       Exclusive){irq} */
};

struct acpi_resource {
	enum acpi_res_kind kind;
	uint64_t base;      /* IO, MEM32 */
	uint64_t len;       /* IO, MEM32 */
	uint32_t irq;       /* IRQ_LEVEL: a GSI of the IOAPIC */
};

/* One device of the DSDT, as its owner describes it. */
struct acpi_device {
	char name[5];       /* AML name: 4 of [A-Z0-9_], not starting with a digit */
	char hid[9];        /* "PNP0501" (7: an EISA id) or "LNRO0005" (8: a string) */
	uint32_t uid;
	unsigned nr_res;
	struct acpi_resource res[ACPI_MAX_RESOURCES];
};

struct acpi_config {
	unsigned nr_cpus;                  /* 1..ACPI_MAX_CPUS; APIC ids 0..n-1 */
	uint16_t sleep_port;               /* the sleep control/status register */
	unsigned nr_devices;               /* 0..ACPI_MAX_DEVICES */
	const struct acpi_device *devices;
};

/* Where each table landed: offsets from the buffer's start, lengths. */
struct acpi_table_pos {
	size_t off, len;
};

struct acpi_tables {
	struct acpi_table_pos rsdp, xsdt, fadt, madt, dsdt;
	size_t used;                       /* bytes of the buffer written */
};

/* Build every table into buf, which stands for guest-physical
 * [base_gpa, base_gpa + len); base_gpa + len must lie below 4 GiB.  The
 * RSDP is at buf[0].  Nothing is written past buf[len). */
int acpi_build(const struct acpi_config *cfg, uint64_t base_gpa, uint8_t *buf,
	       size_t len, struct acpi_tables *out, struct fv_error *err);

/* The 8-bit sum of len bytes (a table's checksum makes it 0). */
uint8_t acpi_sum(const uint8_t *p, size_t len);

/* Is `value`, written to the sleep control register, a request to enter
 * S5 (power off)? */
bool acpi_sleep_is_poweroff(uint8_t value);

#endif
