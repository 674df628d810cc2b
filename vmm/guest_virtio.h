/*
 * guest_virtio.h - a guest's virtio-mmio devices: made from its config,
 * their windows on its MMIO bus, their interrupt lines, and the command
 * line entries that tell a Linux guest where they are.
 */
#ifndef FOLDVM_GUEST_VIRTIO_H
#define FOLDVM_GUEST_VIRTIO_H

#include <stddef.h>
#include "lib/error.h"
#include "vmm/acpi.h"
#include "vmm/guest.h"

/* How many devices the config asks for (windows from FV_VIRTIO_MMIO_GPA). */
unsigned guest_virtio_count(const struct guest_config *cfg);

/* Make the devices and register their windows.  Linux guests (irqchip)
 * get an interrupt line each; test guests poll. */
int guest_virtio_setup(struct guest *g, struct fv_error *err);

/* Open now what the devices of a guest made later need privileges to
 * open (its tap), for guest_virtio_setup to take: a worker does this for
 * its command-line guests before it enters its sandbox. */
int guest_virtio_preopen(const struct guest_config *cfg, struct fv_error *err);

/* Append " virtio_mmio.device=4K@0x...:IRQ" per device to cmdline (of
 * size len), refused if it would not fit. */
int guest_virtio_cmdline(const struct guest *g, char *cmdline, size_t len,
			 struct fv_error *err);

/* Each window as the DSDT describes it (vmm/acpi.h): a device
 * "LNRO0005" named VRnn, _UID its window's index, its 4 KiB window and
 * its interrupt line (level-triggered, active high: the GSI the device
 * raises).  Returns the count written (at most max). */
unsigned guest_virtio_acpi(const struct guest *g, struct acpi_device *out,
			   unsigned max);

void guest_virtio_destroy(struct guest *g);

#endif
