/*
 * testdev.h - host side of the test-guest control device: a mailbox page
 * per vCPU plus a doorbell port (guest-tools/testdev_abi.h).
 *
 * The guest rings FV_REQ_NEXT to hand in the result of its last command and
 * to wait for the next one; the host submits commands and waits for their
 * results from its own threads.  The vCPU thread blocks inside the doorbell
 * handler while it waits, so an idle test guest costs no CPU.
 */
#ifndef FOLDVM_TESTDEV_H
#define FOLDVM_TESTDEV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "guest-tools/testdev_abi.h"
#include "lib/error.h"
#include "memory/guest_mem.h"
#include "devices/ioport.h"

typedef void (*testdev_log_fn)(void *opaque, unsigned vcpu, const char *msg);

struct testdev_result {
	uint32_t cmd;
	uint32_t status;     /* enum fv_status */
	uint64_t result[8];
};

struct testdev_slot {
	bool cmd_pending;    /* submitted, not yet taken by the guest */
	bool in_flight;      /* taken by the guest, result not back yet */
	bool result_ready;   /* result below is fresh */
	bool exited;         /* the vCPU left via FV_CMD_EXIT */
	bool waiting;        /* the vCPU is blocked in FV_REQ_NEXT */
	uint32_t cmd;
	uint64_t arg[8];
	uint32_t seq;
	struct testdev_result res;
};

struct testdev {
	struct guest_mem *mem;
	unsigned nr_vcpus;
	testdev_log_fn log;
	void *log_opaque;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool cancelled;      /* the guest is stopping: nobody waits any more */
	char cancel_reason[256];
	struct testdev_slot slot[FV_MAX_VCPUS];
};

int testdev_init(struct testdev *td, struct guest_mem *mem, unsigned nr_vcpus,
		 testdev_log_fn log, void *log_opaque, struct fv_error *err);
void testdev_destroy(struct testdev *td);

/* Register the doorbell and exit ports. */
int testdev_register(struct testdev *td, struct ioport_bus *bus,
		     struct fv_error *err);

/* Port handler (exported for unit tests). */
int testdev_io(void *opaque, unsigned vcpu, uint16_t port, bool is_write,
	       uint8_t *data, unsigned size, struct fv_error *err);

/* Queue a command for one vCPU; FV_E_STATE if one is still outstanding or
 * its result has not been collected with testdev_wait(). */
int testdev_submit(struct testdev *td, unsigned vcpu, uint32_t cmd,
		   const uint64_t arg[8], struct fv_error *err);

/* Wait for the result of the vCPU's outstanding command.  timeout_ms < 0
 * waits forever.  Fails (FV_E_GUEST) when the guest stops first. */
int testdev_wait(struct testdev *td, unsigned vcpu, int timeout_ms,
		 struct testdev_result *res, struct fv_error *err);

/* The guest is going away: wake every waiter, make vCPUs leave. */
void testdev_cancel(struct testdev *td, const char *reason);

#endif
