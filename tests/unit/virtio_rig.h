/*
 * virtio_rig.h - what the virtio unit tests (test_virtio.c,
 * test_virtio_net.c, test_virtio_balloon.c) share: the guest memory the
 * test driver writes its rings and buffers into (MEM bytes made without
 * KVM, one per suite: the suite's setup and teardown), checked accesses
 * to it, and the guest's view of a descriptor.  Header-only, with static
 * state: each file that includes it has its own `gm`.
 */
#ifndef FOLDVM_TESTS_UNIT_VIRTIO_RIG_H
#define FOLDVM_TESTS_UNIT_VIRTIO_RIG_H

#include <stdint.h>
#include <CUnit/CUnit.h>
#include "memory/guest_mem.h"

#define MEM (16ull << 20)

static struct guest_mem gm;

/* The guest's view of a descriptor (virtio 1.x, 2.7.5). */
struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static inline int setup(void)
{
	struct fv_error err;

	return gmem_create(&gm, -1, MEM, &err) ? -1 : 0;
}

static inline int teardown(void)
{
	gmem_destroy(&gm);
	return 0;
}

static inline void put(uint64_t gpa, const void *buf, uint64_t len)
{
	struct fv_error err;

	CU_ASSERT_EQUAL_FATAL(gmem_write(&gm, gpa, buf, len, &err), 0);
}

static inline void get(uint64_t gpa, void *buf, uint64_t len)
{
	struct fv_error err;

	CU_ASSERT_EQUAL_FATAL(gmem_read(&gm, gpa, buf, len, &err), 0);
}

static inline void fill(uint64_t gpa, int byte, uint64_t len)
{
	struct fv_error err;

	CU_ASSERT_EQUAL_FATAL(gmem_fill(&gm, gpa, byte, len, &err), 0);
}

static inline void put_u16(uint64_t gpa, uint16_t v)
{
	put(gpa, &v, sizeof(v));
}

static inline uint16_t get_u16(uint64_t gpa)
{
	uint16_t v;

	get(gpa, &v, sizeof(v));
	return v;
}

#endif
