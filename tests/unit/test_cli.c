/* test_cli.c - command-line parsing: sizes, --vm specs, steps, commands. */
#include <string.h>
#include <CUnit/CUnit.h>
#include "tests/unit/unit.h"
#include "vmm/cli.h"

static struct cli_options opt;

static int parse(int argc, char *const argv[])
{
	struct fv_error err = { 0 };

	return cli_parse(argc, argv, &opt, &err);
}

static void test_size_units(void)
{
	struct fv_error err;
	uint64_t b;

	CU_ASSERT_EQUAL(cli_parse_size("256M", &b, &err), 0);
	CU_ASSERT_EQUAL(b, 256ull << 20);
	CU_ASSERT_EQUAL(cli_parse_size("1G", &b, &err), 0);
	CU_ASSERT_EQUAL(b, 1ull << 30);
	CU_ASSERT_EQUAL(cli_parse_size("2GiB", &b, &err), 0);
	CU_ASSERT_EQUAL(b, 2ull << 30);
	CU_ASSERT_EQUAL(cli_parse_size("65536K", &b, &err), 0);
	CU_ASSERT_EQUAL(b, 64ull << 20);
	CU_ASSERT_EQUAL(cli_parse_size("4096B", &b, &err), 0);
	CU_ASSERT_EQUAL(b, 4096);
	CU_ASSERT_EQUAL(cli_parse_size("512", &b, &err), 0);
	CU_ASSERT_EQUAL(b, 512ull << 20); /* bare number: MiB, like QEMU -m */
}

static void test_size_rejects(void)
{
	static const char *const bad[] = {
		"", "M", "abc", "12X", "-5M", " 5M", "5M ", "1.5G", "2T1",
		"99999999999999999999999M", "2048G", "0x10M",
	};
	struct fv_error err;
	uint64_t b = 77;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(cli_parse_size(bad[i], &b, &err), -1);
		CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	}
	CU_ASSERT_EQUAL(cli_parse_size(NULL, &b, &err), -1);
	CU_ASSERT_EQUAL(b, 77); /* untouched on failure */
}

static void test_vm_spec_full(void)
{
	struct fv_error err;
	struct vm_spec vm;

	CU_ASSERT_EQUAL_FATAL(cli_parse_vm("name=web-1,mem=256M,vcpus=4,zero=10,"
					   "shared=30,blob=20,pool=7,seed=99,"
					   "steps=fill+race:100+verify,console=off,"
					   "race-pages=8,probe-pages=32",
					   0, &vm, &err), 0);
	CU_ASSERT_STRING_EQUAL(vm.cfg.name, "web-1");
	CU_ASSERT_EQUAL(vm.cfg.mem_size, 256ull << 20);
	CU_ASSERT_EQUAL(vm.cfg.nr_vcpus, 4);
	CU_ASSERT_EQUAL(vm.cfg.content.pct_zero, 10);
	CU_ASSERT_EQUAL(vm.cfg.content.pct_shared, 30);
	CU_ASSERT_EQUAL(vm.cfg.content.pct_blob, 20);
	CU_ASSERT_EQUAL(vm.cfg.content.shared_pool, 7);
	CU_ASSERT_EQUAL(vm.cfg.content.shared_seed, 99);
	CU_ASSERT_FALSE(vm.cfg.console);
	CU_ASSERT_EQUAL(vm.cfg.race_pages, 8);
	CU_ASSERT_EQUAL(vm.cfg.probe_pages, 32);
	CU_ASSERT_EQUAL_FATAL(vm.nr_steps, 3);
	CU_ASSERT_EQUAL(vm.steps[0].kind, STEP_FILL);
	CU_ASSERT_EQUAL(vm.steps[1].kind, STEP_RACE);
	CU_ASSERT_EQUAL(vm.steps[1].arg, 100);
	CU_ASSERT_EQUAL(vm.steps[2].kind, STEP_VERIFY);
}

static void test_vm_spec_defaults(void)
{
	struct fv_error err;
	struct vm_spec a, b;

	CU_ASSERT_EQUAL_FATAL(cli_parse_vm("mem=64M", 3, &a, &err), 0);
	CU_ASSERT_STRING_EQUAL(a.cfg.name, "vm3");
	CU_ASSERT_EQUAL(a.cfg.nr_vcpus, 1);
	CU_ASSERT_EQUAL(a.nr_steps, 2);
	CU_ASSERT_EQUAL(a.cfg.content.pct_blob, 0); /* no --files: no blob */
	CU_ASSERT_EQUAL_FATAL(cli_parse_vm("name=b", 0, &b, &err), 0);
	/* shared content is the same everywhere, unique content is not */
	CU_ASSERT_EQUAL(a.cfg.content.shared_seed, b.cfg.content.shared_seed);
	CU_ASSERT_NOT_EQUAL(a.cfg.content.unique_seed, b.cfg.content.unique_seed);
	CU_ASSERT_NOT_EQUAL(a.cfg.content.layout_seed, b.cfg.content.layout_seed);
}

static void test_vm_spec_rejects(void)
{
	static const char *const bad[] = {
		"mem=abc", "mem=1M", "mem=100G", "vcpus=0", "vcpus=65",
		"vcpus=two", "name=", "name=a/b", "name=has space",
		"name=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bogus=1", "novalue",
		"=x", "zero=101", "zero=60,shared=50", "steps=", "steps=fly",
		"steps=churn", "steps=fill:3", "steps=sleep:x", "console=maybe",
		"payload=/nonexistent/payload.bin", "payload=/", "race-pages=0",
	};
	struct fv_error err;
	struct vm_spec vm;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = '\0';
		CU_ASSERT_EQUAL(cli_parse_vm(bad[i], 0, &vm, &err), -1);
		CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
		CU_ASSERT(strlen(err.msg) > 0);
	}
}

static void test_spec_too_long(void)
{
	char spec[4096];
	struct fv_error err;
	struct vm_spec vm;

	memset(spec, 'a', sizeof(spec) - 1);
	spec[sizeof(spec) - 1] = '\0';
	memcpy(spec, "name=", 5);
	CU_ASSERT_EQUAL(cli_parse_vm(spec, 0, &vm, &err), -1);
}

static void test_commands(void)
{
	char *help[] = { "foldvm", "--help" };
	char *version[] = { "foldvm", "--version" };
	char *none[] = { "foldvm" };
	char *unknown[] = { "foldvm", "fly" };
	char *run_no_vm[] = { "foldvm", "run" };
	char *run_bad_opt[] = { "foldvm", "run", "--vm", "name=a", "--frobnicate" };
	char *demo_vm[] = { "foldvm", "demo", "--vm", "name=a" };
	char *vm_missing_value[] = { "foldvm", "run", "--vm" };

	CU_ASSERT_EQUAL(parse(2, help), 0);
	CU_ASSERT_EQUAL(opt.cmd, CLI_HELP);
	CU_ASSERT_EQUAL(parse(2, version), 0);
	CU_ASSERT_EQUAL(opt.cmd, CLI_VERSION);
	CU_ASSERT_EQUAL(parse(1, none), -1);
	CU_ASSERT_EQUAL(parse(2, unknown), -1);
	CU_ASSERT_EQUAL(parse(2, run_no_vm), -1);
	CU_ASSERT_EQUAL(parse(5, run_bad_opt), -1);
	CU_ASSERT_EQUAL(parse(4, demo_vm), -1);
	CU_ASSERT_EQUAL(parse(3, vm_missing_value), -1);
}

static void test_run_guests(void)
{
	char *ok[] = { "foldvm", "run", "--vm", "name=a", "--vm=name=b,zero=50",
		       "--files", "/", "--log-dir", "/tmp/x", "--quiet" };
	char *dup[] = { "foldvm", "run", "--vm", "name=a", "--vm", "name=a" };

	CU_ASSERT_EQUAL_FATAL(parse(10, ok), 0);
	CU_ASSERT_EQUAL(opt.cmd, CLI_RUN);
	CU_ASSERT_EQUAL(opt.nr_vms, 2);
	CU_ASSERT_STRING_EQUAL(opt.vms[1].cfg.name, "b");
	CU_ASSERT_STRING_EQUAL(opt.log_dir, "/tmp/x");
	/* --files gives guests file pages unless blob= said otherwise... */
	CU_ASSERT_EQUAL(opt.vms[0].cfg.content.pct_blob, 25);
	/* ...but never more than what zero and shared left */
	CU_ASSERT_EQUAL(opt.vms[1].cfg.content.pct_blob, 25);
	CU_ASSERT_FALSE(opt.vms[0].cfg.console);
	CU_ASSERT_EQUAL(parse(6, dup), -1);
}

static void test_demo_options(void)
{
	char *ok[] = { "foldvm", "demo", "--guests", "2", "--mem=64M",
		       "--seconds", "0", "--vcpus", "2" };
	char *bad[] = { "foldvm", "demo", "--guests", "0" };
	char *bad_mem[] = { "foldvm", "demo", "--mem", "lots" };

	CU_ASSERT_EQUAL_FATAL(parse(9, ok), 0);
	CU_ASSERT_EQUAL(opt.demo_guests, 2);
	CU_ASSERT_EQUAL(opt.demo_mem, 64ull << 20);
	CU_ASSERT_EQUAL(opt.demo_seconds, 0);
	CU_ASSERT_EQUAL(opt.demo_vcpus, 2);
	CU_ASSERT_EQUAL(parse(4, bad), -1);
	CU_ASSERT_EQUAL(parse(4, bad_mem), -1);
}

static void test_names(void)
{
	CU_ASSERT_TRUE(cli_name_ok("a"));
	CU_ASSERT_TRUE(cli_name_ok("web-01.prod_x"));
	CU_ASSERT_FALSE(cli_name_ok(""));
	CU_ASSERT_FALSE(cli_name_ok("../etc"));
	CU_ASSERT_FALSE(cli_name_ok("a\nb"));
}

void unit_add_cli_suite(void)
{
	CU_pSuite s = CU_add_suite("cli", NULL, NULL);

	CU_add_test(s, "size units", test_size_units);
	CU_add_test(s, "size rejects", test_size_rejects);
	CU_add_test(s, "vm spec, every key", test_vm_spec_full);
	CU_add_test(s, "vm spec defaults", test_vm_spec_defaults);
	CU_add_test(s, "vm spec rejects", test_vm_spec_rejects);
	CU_add_test(s, "vm spec too long", test_spec_too_long);
	CU_add_test(s, "commands", test_commands);
	CU_add_test(s, "run guests", test_run_guests);
	CU_add_test(s, "demo options", test_demo_options);
	CU_add_test(s, "guest names", test_names);
}
