/*
 * virtio_blk.h - virtio-blk (virtio 1.x, 5.2) on a raw image file: read,
 * write, flush, get-id, discard and write-zeroes; read-only images.
 *
 * Requests are served synchronously on the notifying vCPU, one queue.
 * Every request is checked against the image's size and the chain's
 * lengths; a request that breaks a rule gets VIRTIO_BLK_S_IOERR (or
 * UNSUPP for an unknown type or reserved range flags) and the driver carries on; a chain with no
 * room for the status byte cannot be answered and marks the device
 * NEEDS_RESET.
 */
#ifndef FOLDVM_VIRTIO_BLK_H
#define FOLDVM_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>
#include "devices/virtio_mmio.h"
#include "lib/error.h"
#include "lib/syscall_rules.h"

#define VIRTIO_BLK_SECTOR 512u
#define VIRTIO_BLK_ID_BYTES 20u
#define VIRTIO_BLK_CONFIG_LEN 60u

/* Feature bits (5.2.3) */
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status (5.2.6) */
#define VIRTIO_BLK_T_IN 0u
#define VIRTIO_BLK_T_OUT 1u
#define VIRTIO_BLK_T_FLUSH 4u
#define VIRTIO_BLK_T_GET_ID 8u
#define VIRTIO_BLK_T_DISCARD 11u
#define VIRTIO_BLK_T_WRITE_ZEROES 13u
#define VIRTIO_BLK_S_OK 0u
#define VIRTIO_BLK_S_IOERR 1u
#define VIRTIO_BLK_S_UNSUPP 2u
#define VIRTIO_BLK_WZ_F_UNMAP 1u

/* Limits foldvm offers (config space) */
#define VIRTIO_BLK_QUEUE_SIZE 128u
#define VIRTIO_BLK_SEG_MAX (VIRTIO_BLK_QUEUE_SIZE - 2)
#define VIRTIO_BLK_MAX_DISCARD_SEG 16u
#define VIRTIO_BLK_MAX_RANGE_SECTORS (1u << 22)  /* 2 GiB per range */

struct virtio_blk_stats {
	uint64_t reads, writes, flushes, discards, write_zeroes;
	uint64_t bytes_read, bytes_written;
	uint64_t errors;               /* requests answered IOERR or UNSUPP */
};

struct virtio_blk {
	int fd;                        /* the image; -1: none */
	bool read_only;
	uint64_t sectors;              /* capacity */
	char id[VIRTIO_BLK_ID_BYTES];  /* GET_ID's answer (not NUL-terminated) */
	uint8_t config[VIRTIO_BLK_CONFIG_LEN];
	struct virtio_blk_stats stats;
	struct virtio_mmio transport;
};

/* Open the image (read-only if asked, or refused); `id` is what GET_ID
 * answers (the first 20 bytes).  The device's window is at `base`. */
int virtio_blk_init(struct virtio_blk *b, const char *path, bool read_only,
		    const char *id, struct guest_mem *mem, uint64_t base,
		    struct fv_error *err);
void virtio_blk_destroy(struct virtio_blk *b);

/* The device model's operations (for the transport and the fuzzer). */
extern const struct virtio_device_ops virtio_blk_ops;

/* What the disk needs of a sandboxed worker (composed by
 * supervisor/sandbox.c; docs/sandbox.md). */
extern const struct syscall_rules virtio_blk_syscalls;

#endif
