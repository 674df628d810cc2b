/* test_cli.c - command-line parsing: sizes, --vm specs, steps, commands. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <CUnit/CUnit.h>
#include "tests/unit/unit.h"
#include "frontend/cli.h"

static struct cli_args cl;

static int parse(int argc, char *const argv[])
{
	struct fv_error err = { 0 };

	return cli_parse(argc, argv, &cl, &err);
}

static void test_size_units(void)
{
	struct fv_error err;
	uint64_t b;

	CU_ASSERT_EQUAL(spec_parse_size("256M", &b, &err), 0);
	CU_ASSERT_EQUAL(b, 256ull << 20);
	CU_ASSERT_EQUAL(spec_parse_size("1G", &b, &err), 0);
	CU_ASSERT_EQUAL(b, 1ull << 30);
	CU_ASSERT_EQUAL(spec_parse_size("2GiB", &b, &err), 0);
	CU_ASSERT_EQUAL(b, 2ull << 30);
	CU_ASSERT_EQUAL(spec_parse_size("65536K", &b, &err), 0);
	CU_ASSERT_EQUAL(b, 64ull << 20);
	CU_ASSERT_EQUAL(spec_parse_size("4096B", &b, &err), 0);
	CU_ASSERT_EQUAL(b, 4096);
	CU_ASSERT_EQUAL(spec_parse_size("512", &b, &err), 0);
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
		CU_ASSERT_EQUAL(spec_parse_size(bad[i], &b, &err), -1);
		CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	}
	CU_ASSERT_EQUAL(spec_parse_size(NULL, &b, &err), -1);
	CU_ASSERT_EQUAL(b, 77); /* untouched on failure */
}

static void test_vm_spec_full(void)
{
	struct fv_error err;
	struct vm_spec vm;

	CU_ASSERT_EQUAL_FATAL(spec_from_kv("name=web-1,mem=256M,vcpus=4,zero=10,"
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

	CU_ASSERT_EQUAL_FATAL(spec_from_kv("mem=64M", 3, &a, &err), 0);
	CU_ASSERT_STRING_EQUAL(a.cfg.name, "vm3");
	CU_ASSERT_EQUAL(a.cfg.nr_vcpus, 1);
	CU_ASSERT_EQUAL(a.nr_steps, 2);
	CU_ASSERT_EQUAL(a.cfg.content.pct_blob, 0); /* no --files: no blob */
	CU_ASSERT_EQUAL_FATAL(spec_from_kv("name=b", 0, &b, &err), 0);
	/* shared content is the same everywhere, unique content is not */
	CU_ASSERT_EQUAL(a.cfg.content.shared_seed, b.cfg.content.shared_seed);
	CU_ASSERT_NOT_EQUAL(a.cfg.content.unique_seed, b.cfg.content.unique_seed);
	CU_ASSERT_NOT_EQUAL(a.cfg.content.layout_seed, b.cfg.content.layout_seed);
	CU_ASSERT_EQUAL(a.cfg.content.layout, FV_LAYOUT_SCATTERED);
}

/* layout=clones: one layout for guests of one seed, unique content apart */
static void test_vm_spec_layout(void)
{
	struct fv_error err;
	struct vm_spec a, b, c;

	CU_ASSERT_EQUAL_FATAL(spec_from_kv("name=a,layout=clones", 0, &a, &err), 0);
	CU_ASSERT_EQUAL_FATAL(spec_from_kv("name=b,layout=clones", 1, &b, &err), 0);
	CU_ASSERT_EQUAL(a.cfg.content.layout, FV_LAYOUT_CLONES);
	CU_ASSERT_EQUAL(a.cfg.content.layout_seed, b.cfg.content.layout_seed);
	CU_ASSERT_NOT_EQUAL(a.cfg.content.unique_seed, b.cfg.content.unique_seed);
	CU_ASSERT_EQUAL_FATAL(spec_from_kv("name=b,layout=clones,seed=9", 1, &c,
					   &err), 0);
	CU_ASSERT_NOT_EQUAL(a.cfg.content.layout_seed, c.cfg.content.layout_seed);
	CU_ASSERT_EQUAL_FATAL(spec_from_kv("name=a,layout=mix", 0, &a, &err), 0);
	CU_ASSERT_EQUAL_FATAL(spec_from_kv("name=b,layout=mix", 1, &b, &err), 0);
	CU_ASSERT_EQUAL(a.cfg.content.layout, FV_LAYOUT_MIX);
	CU_ASSERT_NOT_EQUAL(a.cfg.content.layout_seed, b.cfg.content.layout_seed);
	CU_ASSERT_EQUAL_FATAL(spec_from_kv("layout=scattered", 0, &a, &err), 0);
	CU_ASSERT_EQUAL(a.cfg.content.layout, FV_LAYOUT_SCATTERED);
	CU_ASSERT_EQUAL(spec_from_kv("layout=tidy", 0, &a, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "scattered, mix or clones"));
	CU_ASSERT_EQUAL(spec_from_kv("layout=", 0, &a, &err), -1);
	CU_ASSERT_EQUAL_FATAL(spec_from_kv("steps=fill+measure+measure-merging+"
					   "measure-merged", 0, &a, &err), 0);
	CU_ASSERT_EQUAL(a.steps[2].kind, STEP_MEASURE_MERGING);
	CU_ASSERT_EQUAL(a.steps[3].kind, STEP_MEASURE_MERGED);
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
		"steps=settle", "steps=settle:0", "steps=settle:1001",
		"steps=measure-merging:3",
	};
	struct fv_error err;
	struct vm_spec vm;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = '\0';
		CU_ASSERT_EQUAL(spec_from_kv(bad[i], 0, &vm, &err), -1);
		CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
		CU_ASSERT(strlen(err.msg) > 0);
	}
}

static void test_spec_too_long(void)
{
	char spec[8200];
	struct fv_error err;
	struct vm_spec vm;

	/* longer than the spec buffer (two paths and a kernel command line) */
	memset(spec, 'a', sizeof(spec) - 1);
	spec[sizeof(spec) - 1] = '\0';
	memcpy(spec, "name=", 5);
	err.msg[0] = '\0';
	CU_ASSERT_EQUAL(spec_from_kv(spec, 0, &vm, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "--vm spec longer than"));
}

/* ---- Linux guests: kernel=, initrd=, cmdline= ---- */

static struct vm_spec lvm;
static struct fv_error lerr;

/* A fresh regular file under /tmp holding `content` ("" leaves it empty);
 * the caller unlinks it. */
static int temp_file(char *path, size_t size, const char *content)
{
	size_t n = strlen(content);
	int fd;

	snprintf(path, size, "/tmp/foldvm-cli-test-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	if (n && write(fd, content, n) != (ssize_t)n) {
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	return 0;
}

/* spec_from_kv on a printf-built spec, into lvm / lerr. */
static int vm_parse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int vm_parse(const char *fmt, ...)
{
	static char spec[8192 + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(spec, sizeof(spec), fmt, ap);
	va_end(ap);
	memset(&lerr, 0, sizeof(lerr));
	return spec_from_kv(spec, 0, &lvm, &lerr);
}

/* The last vm_parse was refused, saying `needle`. */
static bool refused(const char *needle)
{
	return lerr.code == FV_E_INVAL && strstr(lerr.msg, needle) != NULL;
}

static void test_linux_defaults(void)
{
	char kernel[64], initrd[64];

	CU_ASSERT_EQUAL_FATAL(temp_file(kernel, sizeof(kernel), "MZ\x01kernel"), 0);
	CU_ASSERT_EQUAL(temp_file(initrd, sizeof(initrd), "070701"), 0);

	CU_ASSERT_EQUAL(vm_parse("kernel=%s", kernel), 0);
	CU_ASSERT_STRING_EQUAL(lvm.cfg.kernel, kernel);
	CU_ASSERT_TRUE(guest_config_is_linux(&lvm.cfg));
	CU_ASSERT_STRING_EQUAL(lvm.cfg.initrd, "");
	CU_ASSERT_STRING_EQUAL(lvm.cfg.cmdline, CLI_DEFAULT_CMDLINE);
	CU_ASSERT_STRING_EQUAL(lvm.cfg.name, "vm0");
	CU_ASSERT_EQUAL(lvm.cfg.nr_vcpus, 1);
	CU_ASSERT_EQUAL(lvm.cfg.mem_size, 128ull << 20);
	/* a Linux guest runs until it resets or foldvm is interrupted */
	CU_ASSERT_EQUAL(lvm.nr_steps, 1);
	CU_ASSERT_EQUAL(lvm.steps[0].kind, STEP_WAIT);
	CU_ASSERT_PTR_NULL(lvm.payload_key);

	/* initrd= before kernel= is fine too */
	CU_ASSERT_EQUAL(vm_parse("initrd=%s,name=lx,kernel=%s,dedup=on,console=off",
				 initrd, kernel), 0);
	CU_ASSERT_STRING_EQUAL(lvm.cfg.kernel, kernel);
	CU_ASSERT_STRING_EQUAL(lvm.cfg.initrd, initrd);
	CU_ASSERT_STRING_EQUAL(lvm.cfg.name, "lx");
	CU_ASSERT_STRING_EQUAL(lvm.cfg.cmdline, CLI_DEFAULT_CMDLINE);
	CU_ASSERT_TRUE(lvm.cfg.dedup);
	CU_ASSERT_FALSE(lvm.cfg.console);

	/* the memory the boot layout allows, both ends */
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,mem=16M", kernel), 0);
	CU_ASSERT_EQUAL(lvm.cfg.mem_size, 16ull << 20);
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,mem=3G", kernel), 0);
	CU_ASSERT_EQUAL(lvm.cfg.mem_size, 3ull << 30);
	/* above the 32-bit hole too, up to what any guest may have */
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,mem=5G", kernel), 0);
	CU_ASSERT_EQUAL(lvm.cfg.mem_size, 5ull << 30);
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,mem=64G", kernel), 0);
	CU_ASSERT_EQUAL(lvm.cfg.mem_size, 64ull << 30);

	/* a trailing comma ends the spec like the end of the string */
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,", kernel), 0);
	CU_ASSERT_STRING_EQUAL(lvm.cfg.kernel, kernel);

	unlink(kernel);
	unlink(initrd);
}

static void test_linux_cmdline(void)
{
	char kernel[64], cmdline[4097];

	CU_ASSERT_EQUAL_FATAL(temp_file(kernel, sizeof(kernel), "vmlinux"), 0);

	/* ",," is a literal comma; a single comma still ends the value */
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,cmdline=clearcpuid=1,,2 console=ttyS0,name=x",
				 kernel), 0);
	CU_ASSERT_STRING_EQUAL(lvm.cfg.cmdline, "clearcpuid=1,2 console=ttyS0");
	CU_ASSERT_STRING_EQUAL(lvm.cfg.name, "x");
	CU_ASSERT_STRING_EQUAL(lvm.cfg.kernel, kernel);
	/* ",,," is a comma, then the separator; ",," at the end a comma */
	CU_ASSERT_EQUAL(vm_parse("cmdline=a,,,name=y,kernel=%s", kernel), 0);
	CU_ASSERT_STRING_EQUAL(lvm.cfg.cmdline, "a,");
	CU_ASSERT_STRING_EQUAL(lvm.cfg.name, "y");
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,cmdline=earlyprintk=serial,,ttyS0,,115200 b,,",
				 kernel), 0);
	CU_ASSERT_STRING_EQUAL(lvm.cfg.cmdline, "earlyprintk=serial,ttyS0,115200 b,");
	/* a trailing comma after the command line */
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,cmdline=x=1,,2,", kernel), 0);
	CU_ASSERT_STRING_EQUAL(lvm.cfg.cmdline, "x=1,2");

	/* 4095 bytes is the limit the boot protocol leaves */
	memset(cmdline, 'c', sizeof(cmdline) - 1);
	cmdline[sizeof(cmdline) - 1] = '\0';
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,cmdline=%s", kernel, cmdline), -1);
	CU_ASSERT_TRUE(refused("longer than 4095"));
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,cmdline=%s", kernel, cmdline + 1), 0);
	CU_ASSERT_EQUAL(strlen(lvm.cfg.cmdline), 4095);
	CU_ASSERT_EQUAL(memcmp(lvm.cfg.cmdline, cmdline + 1, 4095), 0);

	/* cmdline= means nothing without a kernel */
	CU_ASSERT_EQUAL(vm_parse("cmdline=console=ttyS0"), -1);
	CU_ASSERT_TRUE(refused("cmdline= needs kernel="));

	unlink(kernel);
}

static void test_linux_steps(void)
{
	static const char *const bad[] = {
		"fill", "verify", "churn:10", "race:5", "measure", "fault",
		"measure-merged", "sleep:1+fill",
	};
	char kernel[64];

	CU_ASSERT_EQUAL_FATAL(temp_file(kernel, sizeof(kernel), "k"), 0);

	CU_ASSERT_EQUAL(vm_parse("kernel=%s,steps=sync+settle:1+sleep:1+sync+wait",
				 kernel), 0);
	CU_ASSERT_EQUAL(lvm.nr_steps, 5);
	CU_ASSERT_EQUAL(lvm.steps[1].kind, STEP_SETTLE);
	memmove(lvm.steps, lvm.steps + 2, 3 * sizeof(lvm.steps[0]));
	CU_ASSERT_EQUAL(lvm.steps[0].kind, STEP_SLEEP);
	CU_ASSERT_EQUAL(lvm.steps[0].arg, 1);
	CU_ASSERT_EQUAL(lvm.steps[1].kind, STEP_SYNC);
	CU_ASSERT_EQUAL(lvm.steps[2].kind, STEP_WAIT);
	/* explicit steps win whichever key comes first */
	CU_ASSERT_EQUAL(vm_parse("steps=sleep:2,kernel=%s", kernel), 0);
	CU_ASSERT_EQUAL(lvm.nr_steps, 1);
	CU_ASSERT_EQUAL(lvm.steps[0].kind, STEP_SLEEP);
	CU_ASSERT_EQUAL(lvm.steps[0].arg, 2);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(vm_parse("kernel=%s,steps=%s", kernel, bad[i]), -1);
		CU_ASSERT_TRUE(refused("only sleep, settle, wait and sync"));
	}

	unlink(kernel);
}

static void test_linux_rejects(void)
{
	static const char *const payload_only[] = {
		"zero=10", "shared=10", "blob=10", "pool=3", "seed=7",
		"race-pages=8", "probe-pages=8", "layout=mix",
	};
	char kernel[64], initrd[64], payload[64], dir[64];

	CU_ASSERT_EQUAL_FATAL(temp_file(kernel, sizeof(kernel), "kernel"), 0);
	CU_ASSERT_EQUAL(temp_file(initrd, sizeof(initrd), "initrd"), 0);
	CU_ASSERT_EQUAL(temp_file(payload, sizeof(payload), "\xf4"), 0);

	/* any vCPU count a guest may have (the MADT names them), 16M..64G */
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,vcpus=2", kernel), 0);
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,vcpus=64", kernel), 0);
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,vcpus=65", kernel), -1);
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,vcpus=0", kernel), -1);
	/* the virtio windows on the command line: asked for, Linux only */
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,virtio-cmdline=on", kernel), 0);
	CU_ASSERT_EQUAL(vm_parse("virtio-cmdline=on"), -1);
	CU_ASSERT_TRUE(refused("virtio-cmdline= needs kernel="));
	CU_ASSERT_EQUAL(vm_parse("virtio-cmdline=off"), 0);
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,mem=8M", kernel), -1);
	CU_ASSERT_EQUAL(lerr.code, FV_E_INVAL);
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,mem=4G", kernel), 0);
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,mem=65G", kernel), -1);
	CU_ASSERT_EQUAL(lerr.code, FV_E_INVAL);
	CU_ASSERT_TRUE(refused("above the maximum of 64 GiB"));
	CU_ASSERT_EQUAL(vm_parse("mem=4G,vcpus=2"), 0); /* fine for the payload */

	/* settings of the test payload name themselves */
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,payload=%s", kernel, payload), -1);
	CU_ASSERT_TRUE(refused("payload= is a test-payload setting"));
	CU_ASSERT_EQUAL(vm_parse("payload=%s", payload), 0);
	for (size_t i = 0; i < sizeof(payload_only) / sizeof(payload_only[0]); i++) {
		char want[64];

		snprintf(want, sizeof(want), "%.*s= is a test-payload setting",
			 (int)strcspn(payload_only[i], "="), payload_only[i]);
		CU_ASSERT_EQUAL(vm_parse("%s,kernel=%s", payload_only[i], kernel), -1);
		CU_ASSERT_TRUE(refused(want));
	}

	/* initrd= needs a kernel */
	CU_ASSERT_EQUAL(vm_parse("initrd=%s", initrd), -1);
	CU_ASSERT_TRUE(refused("initrd= needs kernel="));

	/* kernel= and initrd= must be regular, non-empty files */
	CU_ASSERT_EQUAL(vm_parse("kernel=/nonexistent/foldvm/bzImage"), -1);
	CU_ASSERT_TRUE(refused("/nonexistent/foldvm/bzImage"));
	CU_ASSERT_STRING_EQUAL(lvm.cfg.kernel, "");
	snprintf(dir, sizeof(dir), "/tmp");
	CU_ASSERT_EQUAL(vm_parse("kernel=%s", dir), -1);
	CU_ASSERT_TRUE(refused("not a regular file"));
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,initrd=%s", kernel, dir), -1);
	CU_ASSERT_TRUE(refused("not a regular file"));
	CU_ASSERT_EQUAL(vm_parse("kernel=%s,initrd=/nonexistent/initrd", kernel), -1);
	CU_ASSERT_TRUE(refused("initrd"));
	CU_ASSERT_EQUAL(vm_parse("kernel="), -1);
	CU_ASSERT_EQUAL(lerr.code, FV_E_INVAL);
	unlink(kernel);
	/* an empty kernel file is no kernel either */
	CU_ASSERT_EQUAL(temp_file(kernel, sizeof(kernel), ""), 0);
	CU_ASSERT_EQUAL(vm_parse("kernel=%s", kernel), -1);
	CU_ASSERT_TRUE(refused("bytes"));

	unlink(kernel);
	unlink(initrd);
	unlink(payload);
}

static void test_test_guest_unchanged(void)
{
	CU_ASSERT_EQUAL(vm_parse("name=t,mem=64M,vcpus=2"), 0);
	CU_ASSERT_FALSE(guest_config_is_linux(&lvm.cfg));
	CU_ASSERT_STRING_EQUAL(lvm.cfg.kernel, "");
	CU_ASSERT_STRING_EQUAL(lvm.cfg.initrd, "");
	CU_ASSERT_STRING_EQUAL(lvm.cfg.cmdline, "");
	CU_ASSERT_EQUAL(lvm.cfg.nr_vcpus, 2);
	CU_ASSERT_EQUAL(lvm.nr_steps, 2);
	CU_ASSERT_EQUAL(lvm.steps[0].kind, STEP_FILL);
	CU_ASSERT_EQUAL(lvm.steps[1].kind, STEP_VERIFY);
	/* the test payload keeps every step, and a trailing comma is fine */
	CU_ASSERT_EQUAL(vm_parse("name=t,steps=fill+churn:3+verify,"), 0);
	CU_ASSERT_STRING_EQUAL(lvm.cfg.name, "t");
	CU_ASSERT_EQUAL(lvm.nr_steps, 3);
	CU_ASSERT_EQUAL(lvm.steps[1].kind, STEP_CHURN);
	CU_ASSERT_EQUAL(lvm.steps[1].arg, 3);
	CU_ASSERT_EQUAL(vm_parse("zero=10,"), 0);
	CU_ASSERT_EQUAL(lvm.cfg.content.pct_zero, 10);
	/* an empty key between commas is still refused */
	CU_ASSERT_EQUAL(vm_parse("name=t,,,zero=10"), -1);
}

static void test_run_linux_guest(void)
{
	char kernel[64];
	char spec[128];
	char *argv[] = { "foldvm", "run", "--vm", spec, "--files", "/" };

	CU_ASSERT_EQUAL_FATAL(temp_file(kernel, sizeof(kernel), "kernel"), 0);
	snprintf(spec, sizeof(spec), "name=lx,kernel=%s", kernel);
	CU_ASSERT_EQUAL(parse(6, argv), 0);
	CU_ASSERT_EQUAL(cl.opt.nr_vms, 1);
	CU_ASSERT_STRING_EQUAL(cl.opt.vms[0].cfg.kernel, kernel);
	/* --files gives file pages to test payloads only */
	CU_ASSERT_EQUAL(cl.opt.vms[0].cfg.content.pct_blob, 0);
	unlink(kernel);
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
	CU_ASSERT_EQUAL(cl.opt.cmd, CLI_HELP);
	CU_ASSERT_EQUAL(parse(2, version), 0);
	CU_ASSERT_EQUAL(cl.opt.cmd, CLI_VERSION);
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
	CU_ASSERT_EQUAL(cl.opt.cmd, CLI_RUN);
	CU_ASSERT_EQUAL(cl.opt.nr_vms, 2);
	CU_ASSERT_STRING_EQUAL(cl.opt.vms[1].cfg.name, "b");
	CU_ASSERT_STRING_EQUAL(cl.opt.log_dir, "/tmp/x");
	/* --files gives guests file pages unless blob= said otherwise... */
	CU_ASSERT_EQUAL(cl.opt.vms[0].cfg.content.pct_blob, 25);
	/* ...but never more than what zero and shared left */
	CU_ASSERT_EQUAL(cl.opt.vms[1].cfg.content.pct_blob, 25);
	CU_ASSERT_FALSE(cl.opt.vms[0].cfg.console);
	CU_ASSERT_EQUAL(parse(6, dup), -1);
}

/* settle:N parses; before a guest's first sync it is refused, since the
 * engine only starts there. */
static void test_settle_step(void)
{
	char *ok[] = { "foldvm", "run", "--vm",
		       "name=a,steps=fill+sync+settle:2+verify+sync", "--vm",
		       "name=b,steps=fill+sync+sync" };
	char *early[] = { "foldvm", "run", "--vm",
			  "name=a,steps=fill+settle:1+sync", "--vm",
			  "name=b,steps=fill+sync" };
	char *nosync[] = { "foldvm", "run", "--vm", "name=a,steps=fill+settle:3" };
	struct fv_error err = { 0 };

	CU_ASSERT_EQUAL_FATAL(parse(6, ok), 0);
	CU_ASSERT_EQUAL(cl.opt.vms[0].steps[2].kind, STEP_SETTLE);
	CU_ASSERT_EQUAL(cl.opt.vms[0].steps[2].arg, 2);
	CU_ASSERT_STRING_EQUAL(step_name(STEP_SETTLE), "settle");
	CU_ASSERT_EQUAL(cli_parse(6, early, &cl, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "guest a: 'settle' before the first 'sync'"));
	CU_ASSERT_EQUAL(parse(4, nosync), 0);
	CU_ASSERT_EQUAL(cl.opt.vms[0].steps[1].arg, 3);
}

/* The engine's options: --dedup-in-place takes on or off, nothing else. */
static void test_dedup_options(void)
{
	char *on[] = { "foldvm", "run", "--dedup", "--dedup-cpu", "5", "--vm", "name=a" };
	char *off[] = { "foldvm", "run", "--dedup-in-place", "off", "--vm", "name=a" };
	char *bad[] = { "foldvm", "run", "--dedup-in-place=maybe", "--vm", "name=a" };
	struct fv_error err = { 0 };

	CU_ASSERT_EQUAL_FATAL(parse(7, on), 0);
	CU_ASSERT_EQUAL(cl.opt.dedup_cpu, 5);
	CU_ASSERT_FALSE(cl.opt.dedup_no_in_place); /* on unless told */
	CU_ASSERT_EQUAL_FATAL(parse(6, off), 0);
	CU_ASSERT_TRUE(cl.opt.dedup_no_in_place);
	CU_ASSERT_EQUAL(cli_parse(5, bad, &cl, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "--dedup-in-place"));
}

static void test_demo_options(void)
{
	char *ok[] = { "foldvm", "demo", "--guests", "2", "--mem=64M",
		       "--seconds", "0", "--vcpus", "2" };
	char *bad[] = { "foldvm", "demo", "--guests", "0" };
	char *bad_mem[] = { "foldvm", "demo", "--mem", "lots" };

	CU_ASSERT_EQUAL_FATAL(parse(9, ok), 0);
	CU_ASSERT_EQUAL(cl.demo.guests, 2);
	CU_ASSERT_EQUAL(cl.demo.mem, 64ull << 20);
	CU_ASSERT_EQUAL(cl.demo.seconds, 0);
	CU_ASSERT_EQUAL(cl.demo.vcpus, 2);
	CU_ASSERT_EQUAL(parse(4, bad), -1);
	CU_ASSERT_EQUAL(parse(4, bad_mem), -1);
}

/* The option table: each kind of row, its checks and its messages. */
static void opt_said(int argc, char *const argv[], const char *msg)
{
	struct fv_error err = { 0 };

	CU_ASSERT_EQUAL(cli_parse(argc, argv, &cl, &err), -1);
	if (strcmp(err.msg, msg))
		fprintf(stderr, "\n  wanted: %s\n  got:    %s\n", msg, err.msg);
	CU_ASSERT_STRING_EQUAL(err.msg, msg);
}

static void test_option_table(void)
{
	char *ok[] = { "foldvm", "run", "--persist", "--dedup-cpu=50",
		       "--dedup-rate", "1000", "--run-dir", "/tmp/r",
		       "--hooks-dir=/h", "--no-hooks", "--no-control",
		       "--cgroup", "/sys/fs/cgroup/f", "--domain-mem-max",
		       "t=64M", "--sandbox", "log", "--console=none" };
	char *demo[] = { "foldvm", "demo", "--guests", "2", "--no-dedup" };
	char *persist_demo[] = { "foldvm", "demo", "--persist" };
	char *flag_value[] = { "foldvm", "run", "--quiet=1" };
	char *cpu[] = { "foldvm", "run", "--dedup-cpu", "0" };
	char *rel[] = { "foldvm", "run", "--run-dir", "tmp" };
	char *small[] = { "foldvm", "run", "--domain-mem-max", "t=8M" };
	char *nothing[] = { "foldvm", "run", "--files" };
	char *sandbox[] = { "foldvm", "run", "--sandbox=maybe" };

	CU_ASSERT_EQUAL_FATAL(parse(18, ok), -1); /* --no-control: no --persist */
	ok[10] = "--quiet";
	CU_ASSERT_EQUAL_FATAL(parse(18, ok), 0);
	CU_ASSERT_TRUE(cl.opt.persist);
	CU_ASSERT_EQUAL(cl.opt.dedup_cpu, 50);
	CU_ASSERT_EQUAL(cl.opt.dedup_rate, 1000);
	CU_ASSERT_STRING_EQUAL(cl.opt.run_dir, "/tmp/r");
	CU_ASSERT_STRING_EQUAL(cl.opt.hooks.dir, "");
	CU_ASSERT_STRING_EQUAL(cl.opt.cgroup, "/sys/fs/cgroup/f");
	CU_ASSERT_EQUAL(cl.opt.nr_domain_mem, 1);
	CU_ASSERT_EQUAL(cl.opt.domain_mem[0].bytes, 64ull << 20);
	CU_ASSERT_EQUAL(cl.opt.sandbox, SANDBOX_LOG);
	CU_ASSERT_EQUAL(cl.opt.console, CONSOLE_NONE);
	CU_ASSERT_EQUAL_FATAL(parse(5, demo), 0);
	CU_ASSERT_EQUAL(cl.demo.guests, 2);
	CU_ASSERT_TRUE(cl.demo.no_dedup);
	opt_said(3, persist_demo, "unknown option '--persist' for demo (see foldvm --help)");
	opt_said(3, flag_value, "unknown option '--quiet=1' for run (see foldvm --help)");
	opt_said(4, cpu, "--dedup-cpu 0 is out of range 1..100");
	opt_said(4, rel, "--run-dir needs an absolute path of reasonable length");
	opt_said(4, small, "--domain-mem-max t: less than 16 MiB leaves a worker no room");
	opt_said(3, nothing, "--files needs a value");
	opt_said(3, sandbox, "--sandbox: 'maybe' is none of on, off, log");
}

static void test_names(void)
{
	CU_ASSERT_TRUE(spec_name_ok("a"));
	CU_ASSERT_TRUE(spec_name_ok("web-01.prod_x"));
	CU_ASSERT_FALSE(spec_name_ok(""));
	CU_ASSERT_FALSE(spec_name_ok("../etc"));
	CU_ASSERT_FALSE(spec_name_ok("a\nb"));
}

void unit_add_cli_suite(void)
{
	CU_pSuite s = CU_add_suite("cli", NULL, NULL);

	CU_add_test(s, "size units", test_size_units);
	CU_add_test(s, "size rejects", test_size_rejects);
	CU_add_test(s, "vm spec, every key", test_vm_spec_full);
	CU_add_test(s, "vm spec defaults", test_vm_spec_defaults);
	CU_add_test(s, "vm spec layout", test_vm_spec_layout);
	CU_add_test(s, "vm spec rejects", test_vm_spec_rejects);
	CU_add_test(s, "vm spec too long", test_spec_too_long);
	CU_add_test(s, "commands", test_commands);
	CU_add_test(s, "run guests", test_run_guests);
	CU_add_test(s, "settle step", test_settle_step);
	CU_add_test(s, "dedup options", test_dedup_options);
	CU_add_test(s, "demo options", test_demo_options);
	CU_add_test(s, "guest names", test_names);
	CU_add_test(s, "option table", test_option_table);
	CU_add_test(s, "linux guest defaults", test_linux_defaults);
	CU_add_test(s, "linux guest cmdline", test_linux_cmdline);
	CU_add_test(s, "linux guest steps", test_linux_steps);
	CU_add_test(s, "linux guest rejects", test_linux_rejects);
	CU_add_test(s, "test guest unchanged", test_test_guest_unchanged);
	CU_add_test(s, "run a linux guest", test_run_linux_guest);
}
