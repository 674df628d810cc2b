/*
 * spec_keys.h - the one list of a guest spec's keys.  Everything that
 * names the keys is made from it: spec_keys[] (runner/spec.c; the --vm
 * text, and through it the <foldvm:payload> attributes of domain XML and
 * the key help of `foldvm --help`) and vm-create's argument table
 * (control/vm_create.c).  Include it where such a table is built:
 *
 *   SPEC_KEY_LIST(ROW) calls ROW(TYPE, NAME, SETTER, FLAGS, ARG, HELP)
 *   for each key, in the order --help lists them.  TYPE is the tail of
 *   an enum spec_type (STR, UINT, SIZE, BOOL, STEPS); SETTER the typed
 *   setter of runner/spec.h; FLAGS SPEC_K_*; ARG what --help writes after
 *   "key="; HELP its help, lines separated by '\n' (--help indents them).
 */
#ifndef FOLDVM_SPEC_KEYS_H
#define FOLDVM_SPEC_KEYS_H

#include "runner/spec.h"

#define SPEC_KEY_LIST(ROW) \
	ROW(STR, "name", spec_set_name, SPEC_K_REQUIRED, "NAME", \
	    "guest name, [A-Za-z0-9._-], up to 32 chars (default vmN)") \
	ROW(SIZE, "mem", spec_set_mem, 0, "SIZE", \
	    "RAM, e.g. 128M, 1G; a bare number is MiB (default 128M)") \
	ROW(UINT, "vcpus", spec_set_vcpus, 0, "N", "vCPUs, 1..64 (default 1)") \
	ROW(STR, "payload", spec_set_payload, SPEC_K_PAYLOAD, "PATH", \
	    "flat test payload (default: the one built into foldvm)") \
	ROW(STR, "kernel", spec_set_kernel, 0, "PATH", \
	    "boot this Linux kernel instead: a bzImage or an ELF\n" \
	    "vmlinux (64-bit boot protocol; mem 16M..64G; foldvm\n" \
	    "writes ACPI tables: its vCPUs, COM1, virtio devices)") \
	ROW(STR, "initrd", spec_set_initrd, 0, "PATH", "initramfs for the kernel") \
	ROW(STR, "cmdline", spec_set_cmdline, 0, "TEXT", \
	    "kernel command line (default \"" CLI_DEFAULT_CMDLINE "\")\n" \
	    "A Linux guest runs until it resets or foldvm is\n" \
	    "interrupted; its steps may only be sleep, settle,\n" \
	    "wait, sync\n" \
	    "(default wait).  docs/linux.md tells more.") \
	ROW(UINT, "zero", spec_set_zero, SPEC_K_PAYLOAD, "PCT", \
	    "% of data pages left zero (default 25)") \
	ROW(UINT, "shared", spec_set_shared, SPEC_K_PAYLOAD, "PCT", \
	    "% of data pages with content shared by all guests (25)") \
	ROW(UINT, "blob", spec_set_blob, SPEC_K_PAYLOAD, "PCT", \
	    "% of data pages holding file contents from --files\n" \
	    "(default 25 with --files, else 0)") \
	ROW(UINT, "pool", spec_set_pool, SPEC_K_PAYLOAD, "N", \
	    "distinct shared contents (default: one per shared page)") \
	ROW(UINT, "seed", spec_set_seed, SPEC_K_PAYLOAD, "N", \
	    "seed of the shared content (default the same everywhere)") \
	ROW(STR, "layout", spec_set_layout, SPEC_K_PAYLOAD, "L", \
	    "where pages land in guest RAM (default scattered):\n" \
	    "scattered (every page, file pages too, at its own\n" \
	    "random frame), mix (each file's pages consecutive, at a\n" \
	    "random frame, as a page cache holds them), clones (as\n" \
	    "scattered, but every guest of one seed= holds the same\n" \
	    "content at the same addresses; unique pages stay unique)") \
	ROW(STEPS, "steps", spec_set_steps, SPEC_K_PAYLOAD, "LIST", \
	    "what the guest does, '+'-separated (default fill+verify):\n" \
	    "fill, verify, churn:PAGES, race:ITERATIONS, measure,\n" \
	    "sleep:SECONDS, wait (until interrupted), fault,\n" \
	    "settle:PASSES (until the dedup engine has made PASSES\n" \
	    "passes that began after the step did),\n" \
	    "sync (all guests meet; foldvm snapshots memory use),\n" \
	    "measure-merged (time first writes to the probe pages\n" \
	    "again: identical since measure, so merged by then),\n" \
	    "measure-merging (after measure: wait until every probe\n" \
	    "page of this guest is merged, by the engine or KSM, and\n" \
	    "time first writes to them at once, while other memory\n" \
	    "may still be merging),\n" \
	    "sandbox-probe:N (the test build foldvm-san only: the\n" \
	    "guest's worker tries 1 execve, 2 opening /etc/passwd,\n" \
	    "which its sandbox must stop),\n" \
	    "echo:N (read N lines from the serial console and\n" \
	    "write each back in upper case; docs/console.md)") \
	ROW(BOOL, "console", spec_set_console, 0, "on|off", \
	    "echo the guest's serial output as \"[name] ...\" (on)") \
	ROW(BOOL, "dedup", spec_set_dedup, 0, "on|off", \
	    "merge this guest's memory (default off, or on with --dedup)") \
	ROW(STR, "domain", spec_set_domain, 0, "NAME", \
	    "trust domain: full pages merge only within one domain,\n" \
	    "zero pages across domains (default: the guest's name)") \
	ROW(UINT, "race-pages", spec_set_race_pages, SPEC_K_PAYLOAD, "N", \
	    "counter pages for race (default 16)") \
	ROW(UINT, "probe-pages", spec_set_probe_pages, SPEC_K_PAYLOAD, "N", \
	    "untouched pages for measure (default 256)") \
	ROW(STR, "disk", spec_set_disk, 0, "PATH", \
	    "a raw image as a virtio-blk disk (virtio-mmio; a Linux\n" \
	    "guest's command line names it: docs/virtio.md)") \
	ROW(BOOL, "disk-ro", spec_set_disk_ro, 0, "on|off", \
	    "the guest may only read the disk (default off)") \
	ROW(BOOL, "balloon", spec_set_balloon, 0, "on|off", \
	    "a virtio-balloon with statistics and free page reporting;\n" \
	    "QMP balloon / query-balloon (default off)") \
	ROW(STR, "net", spec_set_net, 0, "tap:NAME", \
	    "a virtio-net device on tap NAME (attached if it exists,\n" \
	    "else made, and gone when foldvm ends); net=tap makes\n" \
	    "fv-GUESTNAME (docs/virtio.md)") \
	ROW(STR, "mac", spec_set_mac, 0, "MAC", \
	    "its MAC, six hex pairs, unicast (default 52:54:00 and\n" \
	    "three bytes of a hash of the guest's name)") \
	ROW(BOOL, "virtio-cmdline", spec_set_virtio_cmdline, 0, "on|off", \
	    "a Linux guest's command line also gets a\n" \
	    "virtio_mmio.device= entry per device, for kernels\n" \
	    "without ACPI (default off: the DSDT names them)")

#endif
