/*
 * testdev_abi.h - the contract between foldvm and its CPL3 test payload.
 *
 * Shared, unchanged, by the host (devices/testdev.c, vmm/) and by the
 * freestanding payload (guest-tools/payload/). It therefore uses only
 * fixed-width integer types and no libc.
 *
 * Conversation (one "ucall" per request, like the KVM selftests):
 *   1. Every vCPU starts in 64-bit mode at CPL3 at FV_PAYLOAD_GPA with
 *      RDI = its vCPU index, RSI = FV_CONFIG_GPA, RSP = top of its stack.
 *   2. A vCPU fills in its own mailbox (FV_MAILBOX_GPA(index)) with a request
 *      and writes the request code to FV_DOORBELL_PORT with `outl`.
 *   3. The host handles the exit and writes its reply into the same mailbox
 *      before the `outl` returns.  FV_REQ_NEXT blocks that vCPU until the
 *      host has a command for it.
 *
 * Guest physical layout (identity-mapped by the host-built page tables, every
 * level with the U bit so CPL3 code reaches everything):
 *   0x00001000  GDT               0x00002000  TSS + I/O bitmap (to 0x4069)
 *   0x00010000  page tables (PML4, PDPT, PDs; 2 MiB pages)
 *   0x0007f000  config page (struct fv_guest_config, host-written)
 *   0x00080000  mailboxes, one 4 KiB page per vCPU
 *   0x00100000  payload image (at most FV_PAYLOAD_MAX bytes)
 *   0x00200000  stacks, FV_STACK_SIZE per vCPU, vCPU i's top at
 *               FV_STACK_TOP(i)
 *   0x00400000  meta region, then data, race, probe, virtio scratch,
 *               blob-starts (mix layout only) and blob regions, as
 *               described by struct fv_guest_config.
 *   0xd0000000  virtio-mmio device windows, 4 KiB each (guests with
 *               devices only; RAM must end below), mapped uncached.
 */
#ifndef FOLDVM_TESTDEV_ABI_H
#define FOLDVM_TESTDEV_ABI_H

#include <stdint.h>

#define FV_ABI_VERSION 3u
#define FV_CONFIG_MAGIC 0x676663766466ull /* "fdvcfg" */

#define FV_PAGE_SIZE 4096ull
#define FV_GDT_GPA 0x1000ull
#define FV_TSS_GPA 0x2000ull
#define FV_PT_GPA 0x10000ull
#define FV_PT_END 0x7f000ull
#define FV_CONFIG_GPA 0x7f000ull
#define FV_MAILBOX_BASE 0x80000ull
#define FV_MAX_VCPUS 64u
#define FV_MAILBOX_GPA(i) (FV_MAILBOX_BASE + (uint64_t)(i) * FV_PAGE_SIZE)
#define FV_PAYLOAD_GPA 0x100000ull
#define FV_PAYLOAD_MAX 0x100000ull
#define FV_STACK_BASE 0x200000ull
#define FV_STACK_SIZE 0x8000ull
#define FV_STACK_TOP(i) (FV_STACK_BASE + ((uint64_t)(i) + 1) * FV_STACK_SIZE)
#define FV_META_GPA 0x400000ull

/* virtio-mmio windows: device i at FV_VIRTIO_MMIO_GPA + i * 4 KiB, in the
 * order disk, net, balloon (those configured).  Below the 32-bit PCI hole
 * and the LAPIC/IOAPIC, as on a PC; a Linux guest's command line names
 * them (virtio_mmio.device=4K@ADDR:IRQ) with IRQ FV_VIRTIO_IRQ_BASE + i. */
#define FV_VIRTIO_MMIO_GPA 0xd0000000ull
#define FV_VIRTIO_MMIO_SIZE 0x1000ull
#define FV_VIRTIO_MAX_DEVICES 8u
#define FV_VIRTIO_IRQ_BASE 5u
/* Pages the payload's virtio drivers get: 16 per window (4 queues of
 * descriptor table, driver area, device area, header page) and a shared
 * data buffer of FV_VIRTIO_DATA_BYTES. */
#define FV_VIRTIO_DATA_BYTES (128u * 1024u)
#define FV_VIRTIO_SCRATCH_PAGES (16u * FV_VIRTIO_MAX_DEVICES + \
				 FV_VIRTIO_DATA_BYTES / 4096u)

/* Port the payload writes request codes to (32-bit `outl`). */
#define FV_DOORBELL_PORT 0x0510u
/* 16550 UART the payload may print to. */
#define FV_SERIAL_PORT 0x03f8u

/* Segment selectors the host loads (RPL 3 for user segments). */
#define FV_SEL_KERNEL_CS 0x10u
#define FV_SEL_KERNEL_DS 0x18u
#define FV_SEL_USER_DS 0x2bu
#define FV_SEL_USER_CS 0x33u
#define FV_SEL_TSS 0x40u

/*
 * Content spec: how the payload fills its data region.  Percentages of the
 * data region's pages; whatever is left after zero + shared + blob is unique.
 * Where the pages land is the layout (enum fv_layout), seeded by layout_seed.
 */
enum fv_layout {
	/* Every page, file pages included, at its own pseudo-random frame (a
	 * permutation seeded by layout_seed): nothing is where a neighbour
	 * would put it.  The worst case for merging runs of pages. */
	FV_LAYOUT_SCATTERED = 0,
	/* Files (blob content) contiguous, as a page cache holds them: each
	 * file's pages in consecutive frames, the files and the other pages in
	 * a seeded random order.  File starts come from blob_starts_gpa. */
	FV_LAYOUT_MIX = 1,
	/* Placed as SCATTERED; the host derives layout_seed from shared_seed,
	 * so every guest holds the same content at the same addresses (unique
	 * pages stay unique), as guests booted from one image do. */
	FV_LAYOUT_CLONES = 2,
};

struct fv_content_spec {
	uint64_t shared_seed;  /* same in every guest that should share pages */
	uint64_t unique_seed;  /* different in every guest */
	uint64_t layout_seed;  /* where each kind of page lands */
	uint32_t pct_zero;     /* pages left all-zero */
	uint32_t pct_shared;   /* pages derived from shared_seed */
	uint32_t pct_blob;     /* pages copied from the host blob (capped by its size) */
	uint32_t shared_pool;  /* distinct shared contents; 0 = one per shared page */
	uint32_t layout;       /* enum fv_layout */
	uint32_t reserved;     /* 0 */
};

/* Host-written, guest read-only: everything the payload needs to know. */
struct fv_guest_config {
	uint64_t magic;        /* FV_CONFIG_MAGIC */
	uint32_t abi_version;  /* FV_ABI_VERSION */
	uint32_t nr_vcpus;
	uint64_t mem_size;     /* bytes of guest RAM, from gpa 0 */
	uint64_t tsc_khz;      /* guest TSC frequency, 0 if unknown */
	/* meta region: one uint64_t checksum per data page, then scratch */
	uint64_t meta_gpa;
	uint64_t meta_size;
	/* data region: the pages the payload owns, fills and verifies */
	uint64_t data_gpa;
	uint64_t data_pages;
	/* race region: counter pages incremented by racing vCPUs, zero at start */
	uint64_t race_gpa;
	uint64_t race_pages;
	/* probe region: pages nobody touches until FV_CMD_MEASURE_WRITE */
	uint64_t probe_gpa;
	uint64_t probe_pages;
	/* blob: host-placed bytes (e.g. real file contents), page aligned */
	uint64_t blob_gpa;
	uint64_t blob_pages;
	uint64_t blob_checksum; /* fv_checksum_pages() of the whole blob */
	/* FV_LAYOUT_MIX only (else 0): a bitmap, bit i (byte i / 8, bit i % 8)
	 * set when a file starts at blob page i; fv_blob_starts_pages(blob_pages)
	 * pages, zeroed by FILL with the blob */
	uint64_t blob_starts_gpa;
	struct fv_content_spec content;
	char name[64];          /* guest name, NUL-terminated */
	/* virtio-mmio devices (0 windows: none), and the drivers' scratch
	 * pages (queues, headers, buffers), 0 when there is no device */
	uint64_t virtio_mmio_gpa;
	uint64_t virtio_mmio_nr;
	uint64_t virtio_gpa;
	uint64_t virtio_pages;
};

/* Requests: guest -> host, the value written to FV_DOORBELL_PORT. */
enum fv_request {
	FV_REQ_NEXT = 1,   /* report result of the last command, wait for the next */
	FV_REQ_LOG = 2,    /* text[] holds a NUL-terminated message */
	FV_REQ_ABORT = 3,  /* guest assert failed: text[] = "file:line: message" */
	/* Test builds only (foldvm-san): the worker makes the forbidden
	 * call result[0] names (enum fv_sandbox_probe), as a device model a
	 * guest has taken over would, and writes what came of it (0, or a
	 * negative errno) to arg[1] (sandbox tests; docs/sandbox.md). */
	FV_REQ_SANDBOX_PROBE = 4,
};

enum fv_sandbox_probe {
	FV_PROBE_EXECVE = 1,    /* execve("/bin/sh"): the seccomp filter */
	FV_PROBE_OPEN = 2,      /* open("/etc/passwd"): Landlock */
};

/* Commands: host -> guest, in reply to FV_REQ_NEXT. */
enum fv_command {
	FV_CMD_NONE = 0,
	/* Fill the data region from the content spec and its layout, record
	 * checksums, then zero the blob and its file-start bitmap (as a kernel
	 * frees initramfs after unpacking it).
	 * result[0] = pages filled. Only vCPU 0 accepts it. */
	FV_CMD_FILL = 1,
	/* Recompute the checksum of every data page (and check the race
	 * counters hold the expected totals and the blob region is zero).
	 * result[0] = pages checked, result[1] = mismatching pages,
	 * result[2] = first mismatching gpa (or ~0). Only vCPU 0. */
	FV_CMD_VERIFY = 2,
	/* Rewrite arg[0] randomly chosen data pages with new content, waiting
	 * arg[1] TSC cycles between writes; arg[2] = seed.  Checksums updated.
	 * result[0] = pages written. */
	FV_CMD_CHURN = 3,
	/* Racing writers: every vCPU given this command increments counters
	 * in the race region arg[0] times: iteration j adds fv_race_step(p)
	 * (lock xadd) to word (j % 512) of every race page p, so at rest the
	 * even race pages are identical, in a guest and across guests, and
	 * each odd one is the same in every guest of the same layout, at the
	 * same address, and unlike any other page.  result[0] = iterations
	 * done. */
	FV_CMD_RACE = 4,
	/* Time the first write to arg[1] pages starting at gpa arg[0], stride
	 * arg[2] bytes (0 = one page).  result[0] = median cycles,
	 * result[1] = p99 cycles, result[2] = mean cycles, result[3] = min,
	 * result[4] = max, result[5] = pages measured. */
	FV_CMD_MEASURE_WRITE = 5,
	/* Execute an instruction that faults with no IDT: the guest triple
	 * faults (used to test that one guest failing spares the others). */
	FV_CMD_FAULT = 6,
	/* Leave: the vCPU writes FV_REQ_NEXT no more and signals exit by
	 * writing FV_EXIT_MAGIC to FV_DOORBELL_PORT + 4. */
	FV_CMD_EXIT = 7,
	/* After every vCPU finished a RACE round, tell vCPU 0 what to expect:
	 * arg[0] = iterations each vCPU ran, arg[1] = how many vCPUs ran them.
	 * vCPU 0 adds this to the per-word totals VERIFY checks. Only vCPU 0. */
	FV_CMD_RACE_SETTLE = 8,
	/* Ask the host for sandbox probe arg[0] (FV_REQ_SANDBOX_PROBE).
	 * result[0] = the probe, result[1] = what the host answered. */
	FV_CMD_SANDBOX_PROBE = 9,
	/* Bring up the virtio device in window arg[0] (guest-tools/payload/
	 * cmd_virtio.c): reset, negotiate every feature offered that the
	 * driver knows, its queues (blk 1, net 2, balloon 4), DRIVER_OK.  result[0] = device ID,
	 * [1] = features offered, [2] = features taken, [3] = Status,
	 * [4] = the first 8 config bytes (virtio-blk: capacity).  Status
	 * BAD_ARGS: no such window, or the device refused the driver
	 * (result[3] says how far it got).  vCPU 0 only, as every virtio
	 * command. */
	FV_CMD_VIRTIO_INIT = 10,
	/* One virtio-blk request on window arg[0]: arg[1] = type
	 * (VIRTIO_BLK_T_*), arg[2] = sector, arg[3] = bytes (a multiple of
	 * 512, at most FV_VIRTIO_DATA_BYTES), arg[4] = buffer gpa (0: the
	 * scratch buffer), arg[5] = pattern seed (fv_blk_pattern), arg[6] =
	 * flags FV_BLK_*.  result[0] = status byte, [1] = bytes the device
	 * says it wrote, [2] = words unlike the pattern (FV_BLK_CHECK),
	 * [3] = device Status, [4] = GET_ID's first 8 bytes. */
	FV_CMD_BLK = 11,
	/* A malformed chain on purpose, on window arg[0]: arg[1] = enum
	 * fv_bad_chain.  result[0] = device Status after the notify,
	 * [1] = InterruptStatus. */
	FV_CMD_BLK_BAD = 12,
	/* virtio-balloon on window arg[0] (cmd_balloon.c), brought up with
	 * VIRTIO_INIT (statistics and page reporting taken).  BALLOON_ADJUST
	 * moves the balloon to the device's num_pages with probe-region
	 * pages (inflate from the probe region's first page up, deflate from
	 * the top down) and writes `actual`.  result[0] = num_pages,
	 * [1] = actual, [2] = pages moved.  BAD_ARGS: more than the probe
	 * region's pages wanted. */
	FV_CMD_BALLOON_ADJUST = 15,
	/* Report data pages [arg[1], arg[1] + arg[2]) free, arg[3] pages per
	 * range (one descriptor each, up to 8 per chain), then check they
	 * read zero and take zero as their content (VERIFY's checksums).
	 * result[0] = bytes reported, [1] = nonzero words read back. */
	FV_CMD_BALLOON_REPORT = 16,
	/* Hand the statistics queue a buffer: MEMFREE = arg[1], MEMTOT =
	 * arg[2], AVAIL = arg[3] (tags 4, 5, 6), if the device gave the last
	 * one back.  result[0] = 1 if posted, 0 if the device still holds one. */
	FV_CMD_BALLOON_STATS = 17,
	/* One Ethernet frame on virtio-net window arg[0] (guest-tools/
	 * payload/cmd_net.c): destination MAC arg[1] (48 bits, byte 0 of
	 * the address in bits 0-7), ethertype arg[2], arg[3] payload bytes
	 * (0..1500) of the pattern fv_net_pattern(arg[4], k), source the
	 * device's MAC (config space); a zero 12-byte header before it, on
	 * queue 1; waits until the device used the chain.  arg[5] = enum
	 * fv_net_tx, how the chain is made.  result[0] = the used length
	 * (0: nothing written back; ~0: never used, status MISMATCH),
	 * [1] = the frame's length, [2] = device Status.  For the malformed
	 * kinds (FV_NET_TX_SHORT_HDR, FV_NET_TX_LOOP): result[0] = device
	 * Status after the notify, [1] = InterruptStatus, and the driver is
	 * down (VIRTIO_INIT again to carry on). */
	FV_CMD_NET_SEND = 13,
	/* Receive one frame of ethertype arg[1] on virtio-net window arg[0].
	 * The first NET command after VIRTIO_INIT posts every receive buffer
	 * (VQ_SIZE of 2 KiB, in the scratch pages of the window's unused
	 * queues 2 and 3); this polls queue 0 for a used one at most arg[3]
	 * times, checks it, and posts it again.  Frames of another ethertype
	 * are passed over (counted).  result[0] = the frame's length (without
	 * the 12-byte header), [1] = its source MAC, [2] = payload bytes
	 * unlike fv_net_pattern(arg[2], k), [3] = its ethertype, [4] = the
	 * header's num_buffers, [5] = its destination MAC, [6] = header bytes
	 * 0-9 not zero (flags, gso_type, ...), [7] = frames passed over.
	 * Status MISMATCH when no frame of that ethertype came within the
	 * bound. */
	FV_CMD_NET_RECV = 14,
	/* The serial console (guest-tools/payload/cmd_console.c): arg[0]
	 * times (1..1000), write the prompt "echo> ", read a line from the
	 * 16550 by polling LSR.DR (CR or LF ends it; empty lines are skipped)
	 * and write "\r\nECHO: " and the line in upper case, "\r\n".
	 * result[0] = lines, [1] = bytes read, [2] = LSR.OE seen (bytes
	 * lost), [3] = bytes past 256 in a line (not echoed).  vCPU 0. */
	FV_CMD_ECHO = 18,
};

/* FV_CMD_NET_SEND arg[5] */
enum fv_net_tx {
	FV_NET_TX_SPLIT = 0,      /* header and frame in two descriptors */
	FV_NET_TX_ONE = 1,        /* header and frame in one descriptor */
	FV_NET_TX_CSUM = 2,       /* the header asks for NEEDS_CSUM, which
				   * was not negotiated: the device drops it */
	FV_NET_TX_SHORT_HDR = 3,  /* malformed: an 8-byte header alone */
	FV_NET_TX_LOOP = 4,       /* malformed: two descriptors in a loop */
};

/* Byte k of a virtio-net test frame's payload sent with `seed`. */
#define fv_net_pattern(seed, k) \
	((uint8_t)(fv_mix64((seed) + (k) / 8u) >> (8u * ((k) % 8u))))

/* FV_CMD_BLK flags */
#define FV_BLK_FILL 1u      /* OUT: fill the buffer with the pattern first */
#define FV_BLK_CHECK 2u     /* IN: count words unlike the pattern */
#define FV_BLK_ADOPT 4u     /* IN into data pages: take the content as theirs
			     * (the checksums VERIFY uses are updated) */
#define FV_BLK_UNMAP 8u     /* WRITE_ZEROES: may unmap */
#define FV_BLK_SPLIT 16u    /* the data in 4 descriptors, not 1 */

enum fv_bad_chain {
	FV_BAD_LOOP = 1,        /* two descriptors pointing at each other */
	FV_BAD_OUTSIDE_RAM = 2, /* a buffer beyond guest RAM */
	FV_BAD_NO_STATUS = 3,   /* no device-writable byte for the status */
};

/* The disk pattern: the 64-bit word at byte offset `off` (a multiple of 8)
 * of a disk written with `seed`.  Host tests write and check images with
 * it too. */
#define fv_blk_pattern(seed, off) fv_mix64((seed) + (off) / 8u)

#define FV_EXIT_PORT (FV_DOORBELL_PORT + 4u)
#define FV_EXIT_MAGIC 0x0e1du

/* Status of the last command, in struct fv_mailbox.status. */
enum fv_status {
	FV_STATUS_OK = 0,
	FV_STATUS_MISMATCH = 1,  /* VERIFY found pages that differ */
	FV_STATUS_BAD_COMMAND = 2,
	FV_STATUS_BAD_ARGS = 3,
};

/* One per vCPU, at FV_MAILBOX_GPA(index). */
struct fv_mailbox {
	/* guest -> host */
	uint32_t last_cmd;     /* command whose result is below (0 = none yet) */
	uint32_t status;       /* enum fv_status */
	uint64_t result[8];
	char text[512];
	/* host -> guest */
	uint32_t cmd;          /* enum fv_command */
	uint32_t seq;          /* increments with every command */
	uint64_t arg[8];
};

/*
 * Page content generators, identical in host and guest (guest-tools/content.c):
 * the host uses them to predict contents (tests, benchmark ideal), the guest
 * to fill and verify its memory.
 */
#define FV_PAGE_WORDS 512u

/* What FV_CMD_RACE adds per increment to race page p: 1 on even pages (all
 * alike: merges onto shared frames), p + 1 on odd ones (each unlike the
 * others: merges with the same page of another guest, in place). */
static inline uint64_t fv_race_step(uint64_t p)
{
	return (p & 1) ? p + 1 : 1;
}

#endif
