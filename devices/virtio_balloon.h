/*
 * virtio_balloon.h - virtio-balloon (virtio 1.x, 5.5): inflate and deflate
 * to a target the host sets, the statistics queue, and free page reporting
 * (VIRTIO_BALLOON_F_PAGE_REPORTING).
 *
 * Pages the guest inflates or reports free go back through the
 * guest-memory API (gmem_release): without dedup the kernel frees them at
 * once; with dedup a merged page drops its frame reference as on any
 * device write and the engine discards the zero page at its next pass.
 */
#ifndef FOLDVM_VIRTIO_BALLOON_H
#define FOLDVM_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stdint.h>
#include "devices/virtio_mmio.h"
#include "lib/error.h"

/* Feature bits (5.5.3) */
#define VIRTIO_BALLOON_F_STATS_VQ 1
#define VIRTIO_BALLOON_F_PAGE_REPORTING 5

#define VIRTIO_BALLOON_PFN_SHIFT 12
#define VIRTIO_BALLOON_CONFIG_LEN 8u     /* num_pages, actual */
#define VIRTIO_BALLOON_QUEUE_SIZE 128u
#define VIRTIO_BALLOON_MAX_PFNS 16384u   /* per inflate/deflate buffer */
#define VIRTIO_BALLOON_S_NR 16u          /* statistics tags kept (5.5.6.3) */
#define VIRTIO_BALLOON_STAT_BYTES 10u    /* le16 tag, le64 value, packed */

struct virtio_balloon_counters {
	uint64_t inflated_pages;         /* pages the guest gave to the balloon */
	uint64_t deflated_pages;         /* pages it took back */
	uint64_t reported_bytes;         /* free page reporting, all time */
	uint64_t reports;                /* reported ranges */
	uint64_t released_written;       /* pages that held data and were zeroed
					    for the engine (gmem_release) */
	uint64_t bad_pfns;               /* PFNs outside RAM (in the hole or
					    beyond it), ignored */
	uint64_t stats_updates;          /* statistics buffers received */
};

struct virtio_balloon {
	uint64_t ram_pages;              /* RAM size in pages (not a PFN bound) */
	uint32_t num_pages;              /* the host's target (config) */
	uint32_t actual;                 /* the driver's count (config) */
	struct virtio_balloon_counters c;
	uint64_t stat[VIRTIO_BALLOON_S_NR];
	uint32_t stat_seen;              /* bit per tag received */
	bool stats_held;                 /* the driver's stats buffer, kept */
	uint16_t stats_head;             /* until the host asks for more */
	struct virtio_mmio transport;
};

int virtio_balloon_init(struct virtio_balloon *b, struct guest_mem *mem,
			uint64_t base, struct fv_error *err);
void virtio_balloon_destroy(struct virtio_balloon *b);

/* The guest should hold `bytes` of RAM (QMP balloon): num_pages follows,
 * with a configuration interrupt.  FV_E_INVAL outside 1 MiB..RAM. */
int virtio_balloon_set_target(struct virtio_balloon *b, uint64_t bytes,
			      struct fv_error *err);

struct virtio_balloon_info {
	uint64_t actual_bytes;           /* RAM less the balloon (QMP's actual) */
	uint64_t target_bytes;
	struct virtio_balloon_counters c;
	uint64_t stat[VIRTIO_BALLOON_S_NR];
	uint32_t stat_seen;
};

/* A consistent copy of the figures; if the driver's statistics buffer is
 * held, it is handed back so that the next query sees fresh ones. */
void virtio_balloon_query(struct virtio_balloon *b, struct virtio_balloon_info *out);

/* The counters alone, with no effect on the device (query-dedup). */
void virtio_balloon_counters(struct virtio_balloon *b,
			     struct virtio_balloon_counters *out);

/* QMP's name of statistics tag `tag` (QEMU's guest-stats names), or NULL. */
const char *virtio_balloon_stat_name(unsigned tag);

extern const struct virtio_device_ops virtio_balloon_ops;

#endif
