/* test_testdev.c - the test device's mailbox protocol, with a host thread
 * playing the guest (no KVM needed) and the ioport bus. */
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <CUnit/CUnit.h>
#include "devices/testdev.h"
#include "tests/unit/unit.h"

#define MEM (16ull << 20)

static struct guest_mem gm;
static struct testdev td;
static char last_log[600];

static void log_cb(void *opaque, unsigned vcpu, const char *msg)
{
	(void)opaque;
	snprintf(last_log, sizeof(last_log), "%u:%s", vcpu, msg);
}

static int setup(void)
{
	struct fv_error err;

	if (gmem_create(&gm, -1, MEM, &err) ||
	    testdev_init(&td, &gm, 2, log_cb, NULL, &err))
		return -1;
	return 0;
}

static int teardown(void)
{
	testdev_destroy(&td);
	gmem_destroy(&gm);
	return 0;
}

static int ring(unsigned vcpu, uint16_t port, uint32_t value, struct fv_error *err)
{
	uint8_t data[4];

	memcpy(data, &value, 4);
	return testdev_io(&td, vcpu, port, true, data, 4, err);
}

/* The "guest": answer every command with result[0] = arg[0] * 2 until EXIT. */
static void *fake_guest(void *arg)
{
	unsigned vcpu = (unsigned)(uintptr_t)arg;
	uint64_t gpa = FV_MAILBOX_GPA(vcpu);
	struct fv_error err;
	struct fv_mailbox mb;

	memset(&mb, 0, sizeof(mb));
	for (;;) {
		gmem_write(&gm, gpa, &mb, offsetof(struct fv_mailbox, cmd), &err);
		if (ring(vcpu, FV_DOORBELL_PORT, FV_REQ_NEXT, &err) != IOPORT_OK)
			return (void *)1;
		gmem_read(&gm, gpa, &mb, sizeof(mb), &err);
		if (mb.cmd == FV_CMD_EXIT) {
			ring(vcpu, FV_EXIT_PORT, FV_EXIT_MAGIC, &err);
			return NULL;
		}
		mb.last_cmd = mb.cmd;
		mb.status = FV_STATUS_OK;
		mb.result[0] = mb.arg[0] * 2;
	}
}

static void test_round_trip(void)
{
	struct testdev_result res;
	struct fv_error err;
	uint64_t arg[8] = { 21 };
	pthread_t t;
	void *ret;

	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, fake_guest, (void *)0), 0);
	for (int i = 0; i < 50; i++) {
		arg[0] = (uint64_t)i;
		CU_ASSERT_EQUAL(testdev_submit(&td, 0, FV_CMD_CHURN, arg, &err), 0);
		CU_ASSERT_EQUAL(testdev_wait(&td, 0, 5000, &res, &err), 0);
		CU_ASSERT_EQUAL(res.cmd, FV_CMD_CHURN);
		CU_ASSERT_EQUAL(res.result[0], (uint64_t)i * 2);
	}
	/* a second submit while one is outstanding is refused */
	CU_ASSERT_EQUAL(testdev_submit(&td, 0, FV_CMD_VERIFY, NULL, &err), 0);
	CU_ASSERT_EQUAL(testdev_submit(&td, 0, FV_CMD_VERIFY, NULL, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_STATE);
	CU_ASSERT_EQUAL(testdev_wait(&td, 0, 5000, &res, &err), 0);
	CU_ASSERT_EQUAL(testdev_submit(&td, 0, FV_CMD_EXIT, NULL, &err), 0);
	pthread_join(t, &ret);
	CU_ASSERT_PTR_NULL(ret);
	/* an exited vCPU takes no more commands, and waiting says so */
	CU_ASSERT_EQUAL(testdev_submit(&td, 0, FV_CMD_VERIFY, NULL, &err), -1);
	CU_ASSERT_EQUAL(testdev_wait(&td, 0, 100, &res, &err), -1);
	CU_ASSERT_EQUAL(err.code, FV_E_GUEST);
}

static void test_timeout(void)
{
	struct testdev_result res;
	struct fv_error err;

	/* vCPU 1 never rings: the host's wait ends with a timeout error */
	CU_ASSERT_EQUAL(testdev_submit(&td, 1, FV_CMD_VERIFY, NULL, &err), 0);
	CU_ASSERT_EQUAL(testdev_wait(&td, 1, 50, &res, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "within 50 ms"));
}

static void test_guest_input_checked(void)
{
	struct fv_mailbox mb;
	struct fv_error err;
	uint8_t byte = 1, wide[4] = { 0 };

	memset(&mb, 0, sizeof(mb));
	/* a text without NUL and with control bytes is cut and sanitised */
	memset(mb.text, 'A', sizeof(mb.text));
	mb.text[3] = '\n';
	gmem_write(&gm, FV_MAILBOX_GPA(1), &mb, sizeof(mb), &err);
	CU_ASSERT_EQUAL(ring(1, FV_DOORBELL_PORT, FV_REQ_LOG, &err), IOPORT_OK);
	CU_ASSERT_EQUAL(strlen(last_log), 2 + sizeof(mb.text));
	CU_ASSERT_EQUAL(last_log[2 + 3], '?');
	CU_ASSERT_EQUAL(ring(1, FV_DOORBELL_PORT, FV_REQ_ABORT, &err), IOPORT_FAIL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "assertion"));
	CU_ASSERT_EQUAL(ring(1, FV_DOORBELL_PORT, 999, &err), IOPORT_FAIL);
	CU_ASSERT_EQUAL(ring(1, FV_EXIT_PORT, 1234, &err), IOPORT_FAIL);
	/* the window's other ports are not the doorbell */
	last_log[0] = '\0';
	for (uint16_t port = FV_DOORBELL_PORT + 1; port < FV_DOORBELL_PORT + 8; port++) {
		if (port == FV_EXIT_PORT)
			continue;
		CU_ASSERT_EQUAL(ring(1, port, FV_REQ_LOG, &err), IOPORT_FAIL);
		CU_ASSERT_EQUAL(err.code, FV_E_GUEST);
	}
	CU_ASSERT_EQUAL(last_log[0], '\0');
	/* wrong width and out-of-range vCPU */
	CU_ASSERT_EQUAL(testdev_io(&td, 1, FV_DOORBELL_PORT, true, &byte, 1, &err),
			IOPORT_FAIL);
	CU_ASSERT_EQUAL(testdev_io(&td, 7, FV_DOORBELL_PORT, true, wide, 4, &err),
			IOPORT_FAIL);
	/* reads see an idle bus */
	CU_ASSERT_EQUAL(testdev_io(&td, 0, FV_DOORBELL_PORT, false, wide, 4, &err),
			IOPORT_OK);
	CU_ASSERT_EQUAL(wide[0], 0xff);
}

static void *blocked_guest(void *arg)
{
	struct fv_error err;

	(void)arg;
	return (void *)(intptr_t)ring(1, FV_DOORBELL_PORT, FV_REQ_NEXT, &err);
}

static void test_cancel_wakes_everyone(void)
{
	struct testdev_result res;
	struct fv_error err;
	pthread_t t;
	void *ret;

	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, blocked_guest, NULL), 0);
	testdev_cancel(&td, "test over");
	pthread_join(t, &ret);
	/* the blocked vCPU is told to leave */
	CU_ASSERT_EQUAL((intptr_t)ret, IOPORT_VCPU_EXIT);
	CU_ASSERT_EQUAL(testdev_wait(&td, 1, -1, &res, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "test over"));
}

static void test_ioport_bus(void)
{
	struct ioport_bus bus = { 0 };
	struct fv_error err;
	uint8_t d[4] = { 0 };

	CU_ASSERT_EQUAL(ioport_register(&bus, 0x3f8, 8, testdev_io, &td, "a", &err), 0);
	CU_ASSERT_EQUAL(ioport_register(&bus, 0x3ff, 2, testdev_io, &td, "b", &err), -1);
	CU_ASSERT_EQUAL(ioport_register(&bus, 0x3f0, 9, testdev_io, &td, "c", &err), -1);
	CU_ASSERT_EQUAL(ioport_register(&bus, 0x3f0, 8, testdev_io, &td, "d", &err), 0);
	CU_ASSERT_EQUAL(ioport_register(&bus, 0xfffe, 4, testdev_io, &td, "e", &err), -1);
	CU_ASSERT_EQUAL(ioport_register(&bus, 0x10, 0, testdev_io, &td, "f", &err), -1);
	CU_ASSERT_EQUAL(ioport_dispatch(&bus, 0, 0x80, false, d, 2, &err), IOPORT_OK);
	CU_ASSERT_EQUAL(d[0], 0xff);
	CU_ASSERT_EQUAL(d[1], 0xff);
	CU_ASSERT_EQUAL(d[2], 0);
}

void unit_add_testdev_suite(void)
{
	CU_pSuite s = CU_add_suite("testdev", setup, teardown);

	CU_add_test(s, "command round trip", test_round_trip);
	CU_add_test(s, "wait times out", test_timeout);
	CU_add_test(s, "guest input is checked", test_guest_input_checked);
	CU_add_test(s, "cancel wakes everyone", test_cancel_wakes_everyone);
	CU_add_test(s, "ioport bus", test_ioport_bus);
}
