/*
 * test_i8042.c - CUnit tests for the reset-only keyboard controller
 * (devices/i8042.c): reads are all zero, command 0xfe on port 0x64 calls
 * the reset callback, nothing else does.
 */
#include <string.h>
#include <CUnit/CUnit.h>
#include "devices/i8042.h"
#include "tests/unit/unit.h"
#include "devices/ioport.h"

struct reset_rec {
	int calls;
	void *opaque;
	unsigned vcpu;
};

static struct reset_rec rec;

static void rec_reset(void *opaque, unsigned vcpu)
{
	rec.calls++;
	rec.opaque = opaque;
	rec.vcpu = vcpu;
}

static void dev_init(struct i8042 *k, i8042_reset_fn fn, void *opaque)
{
	memset(&rec, 0, sizeof(rec));
	memset(k, 0xa5, sizeof(*k)); /* i8042_init must not trust old state */
	i8042_init(k, fn, opaque);
}

/* One write of `size` bytes, the first being `b0`. */
static int wr(struct i8042 *k, unsigned vcpu, uint16_t port, uint8_t b0,
	      unsigned size)
{
	uint8_t data[4] = { b0, 0, 0, 0 };
	struct fv_error err = { 0 };

	return i8042_io(k, vcpu, port, true, data, size, &err);
}

static void test_init(void)
{
	struct i8042 k;
	int cookie;

	dev_init(&k, rec_reset, &cookie);
	CU_ASSERT_PTR_EQUAL(k.reset, rec_reset);
	CU_ASSERT_PTR_EQUAL(k.opaque, &cookie);
	CU_ASSERT_EQUAL(k.resets, 0);
}

static void test_reads_zero(void)
{
	static const uint16_t ports[] = { I8042_DATA_PORT, I8042_CMD_PORT };
	static const unsigned sizes[] = { 1, 2, 4 };
	struct fv_error err = { 0 };
	struct i8042 k;
	int cookie;

	dev_init(&k, rec_reset, &cookie);
	for (size_t p = 0; p < sizeof(ports) / sizeof(ports[0]); p++) {
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			uint8_t data[8];

			memset(data, 0xff, sizeof(data));
			CU_ASSERT_EQUAL(i8042_io(&k, 0, ports[p], false, data,
						 sizes[s], &err), IOPORT_OK);
			for (unsigned i = 0; i < sizes[s]; i++)
				CU_ASSERT_EQUAL(data[i], 0);
			/* nothing past the access is touched */
			for (unsigned i = sizes[s]; i < sizeof(data); i++)
				CU_ASSERT_EQUAL(data[i], 0xff);
		}
	}
	/* reading is no command: the status port never resets */
	CU_ASSERT_EQUAL(rec.calls, 0);
	CU_ASSERT_EQUAL(k.resets, 0);
}

static void test_reset_command(void)
{
	struct i8042 k;
	int cookie;

	dev_init(&k, rec_reset, &cookie);
	CU_ASSERT_EQUAL(wr(&k, 3, I8042_CMD_PORT, 0xfe, 1), IOPORT_OK);
	CU_ASSERT_EQUAL(rec.calls, 1);
	CU_ASSERT_PTR_EQUAL(rec.opaque, &cookie);
	CU_ASSERT_EQUAL(rec.vcpu, 3);
	CU_ASSERT_EQUAL(k.resets, 1);
	/* every pulse is reported, from whichever vCPU */
	CU_ASSERT_EQUAL(wr(&k, 0, I8042_CMD_PORT, I8042_CMD_RESET, 1), IOPORT_OK);
	CU_ASSERT_EQUAL(rec.calls, 2);
	CU_ASSERT_EQUAL(rec.vcpu, 0);
	CU_ASSERT_EQUAL(k.resets, 2);
}

static void test_wide_write(void)
{
	uint8_t hi_fe[2] = { 0x20, 0xfe };
	struct fv_error err = { 0 };
	struct i8042 k;
	int cookie;

	/* a 16-bit write's first byte is the command */
	dev_init(&k, rec_reset, &cookie);
	CU_ASSERT_EQUAL(wr(&k, 1, I8042_CMD_PORT, 0xfe, 2), IOPORT_OK);
	CU_ASSERT_EQUAL(rec.calls, 1);
	CU_ASSERT_EQUAL(rec.vcpu, 1);
	CU_ASSERT_EQUAL(k.resets, 1);
	/* ...and 0xfe in the second byte (port 0x65) is not */
	CU_ASSERT_EQUAL(i8042_io(&k, 1, I8042_CMD_PORT, true, hi_fe, 2, &err),
			IOPORT_OK);
	CU_ASSERT_EQUAL(rec.calls, 1);
	CU_ASSERT_EQUAL(k.resets, 1);
}

static void test_other_writes(void)
{
	static const uint8_t cmds[] = { 0x20, 0xaa, 0xff, 0x00, 0xfd, 0xd1 };
	struct i8042 k;
	int cookie;

	dev_init(&k, rec_reset, &cookie);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		CU_ASSERT_EQUAL(wr(&k, 0, I8042_CMD_PORT, cmds[i], 1), IOPORT_OK);
	/* 0xfe as data (e.g. a keyboard command's argument) is no reset */
	CU_ASSERT_EQUAL(wr(&k, 0, I8042_DATA_PORT, 0xfe, 1), IOPORT_OK);
	CU_ASSERT_EQUAL(wr(&k, 0, I8042_DATA_PORT, 0xfe, 4), IOPORT_OK);
	CU_ASSERT_EQUAL(rec.calls, 0);
	CU_ASSERT_EQUAL(k.resets, 0);
}

static void test_null_callback(void)
{
	struct i8042 k;

	dev_init(&k, NULL, NULL);
	CU_ASSERT_PTR_NULL(k.reset);
	CU_ASSERT_EQUAL(wr(&k, 0, I8042_CMD_PORT, 0xfe, 1), IOPORT_OK);
	CU_ASSERT_EQUAL(wr(&k, 0, I8042_CMD_PORT, 0xfe, 1), IOPORT_OK);
	/* still counted, nothing called */
	CU_ASSERT_EQUAL(k.resets, 2);
	CU_ASSERT_EQUAL(rec.calls, 0);
}

void unit_add_i8042_suite(void)
{
	CU_pSuite s = CU_add_suite("i8042", NULL, NULL);

	CU_add_test(s, "init", test_init);
	CU_add_test(s, "reads are zero", test_reads_zero);
	CU_add_test(s, "0xfe on 0x64 resets", test_reset_command);
	CU_add_test(s, "wide writes", test_wide_write);
	CU_add_test(s, "other writes do not reset", test_other_writes);
	CU_add_test(s, "no callback", test_null_callback);
}
