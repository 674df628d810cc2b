/* test_spec.c - the guest spec's typed setters and its key table, and how
 * each interface words their errors: --vm text, QMP vm-create, domain
 * XML (the XML wording is in test_domxml.c). */
#include <CUnit/CUnit.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include "control/vm_create.h"
#include "lib/netname.h"
#include "runner/spec.h"
#include "unit.h"

static struct vm_spec vm;
static struct fv_error err;

/* The last call failed with exactly `msg`. */
static void said(int r, const char *msg)
{
	CU_ASSERT_EQUAL(r, -1);
	CU_ASSERT_EQUAL(err.code, FV_E_INVAL);
	if (strcmp(err.msg, msg))
		fprintf(stderr, "\n  wanted: %s\n  got:    %s\n", msg, err.msg);
	CU_ASSERT_STRING_EQUAL(err.msg, msg);
	memset(&err, 0, sizeof(err));
}

static void test_setters_set(void)
{
	const struct step steps[] = { { STEP_FILL, 0 }, { STEP_CHURN, 10 },
				      { STEP_SLEEP, 0 } };

	spec_defaults(&vm, 4);
	CU_ASSERT_STRING_EQUAL(vm.cfg.name, "vm4");
	CU_ASSERT_EQUAL(spec_set_name(&vm, "web-1", &err), 0);
	CU_ASSERT_EQUAL(spec_set_mem(&vm, 256ull << 20, &err), 0);
	CU_ASSERT_EQUAL(spec_set_vcpus(&vm, 64, &err), 0);
	CU_ASSERT_EQUAL(spec_set_zero(&vm, 0, &err), 0);
	CU_ASSERT_EQUAL(spec_set_shared(&vm, 40, &err), 0);
	CU_ASSERT_EQUAL(spec_set_blob(&vm, 60, &err), 0);
	CU_ASSERT_EQUAL(spec_set_seed(&vm, UINT64_MAX, &err), 0);
	CU_ASSERT_EQUAL(spec_set_pool(&vm, UINT32_MAX, &err), 0);
	CU_ASSERT_EQUAL(spec_set_steps(&vm, steps, 3, &err), 0);
	CU_ASSERT_EQUAL(spec_set_dedup(&vm, true, &err), 0);
	CU_ASSERT_EQUAL(spec_set_console(&vm, false, &err), 0);
	CU_ASSERT_EQUAL(spec_set_domain(&vm, "tenant.a", &err), 0);
	CU_ASSERT_EQUAL(spec_set_race_pages(&vm, 4096, &err), 0);
	CU_ASSERT_EQUAL(spec_set_probe_pages(&vm, 1, &err), 0);
	CU_ASSERT_EQUAL(spec_finish(&vm, NULL, &err), 0);
	CU_ASSERT_STRING_EQUAL(vm.cfg.name, "web-1");
	CU_ASSERT_EQUAL(vm.cfg.mem_size, 256ull << 20);
	CU_ASSERT_EQUAL(vm.cfg.nr_vcpus, 64);
	CU_ASSERT_EQUAL(vm.cfg.content.pct_blob, 60);  /* given, so kept */
	CU_ASSERT_EQUAL(vm.cfg.content.shared_seed, UINT64_MAX);
	CU_ASSERT_EQUAL(vm.cfg.content.shared_pool, UINT32_MAX);
	CU_ASSERT_EQUAL(vm.nr_steps, 3);
	CU_ASSERT_EQUAL(vm.steps[1].kind, STEP_CHURN);
	CU_ASSERT_EQUAL(vm.steps[1].arg, 10);
	CU_ASSERT_TRUE(vm.cfg.dedup && vm.dedup_set && vm.steps_set && vm.blob_set);
	CU_ASSERT_FALSE(vm.cfg.console);
	CU_ASSERT_STRING_EQUAL(vm.cfg.domain, "tenant.a");
	CU_ASSERT_EQUAL(vm.cfg.race_pages, 4096);
	CU_ASSERT_EQUAL(vm.cfg.probe_pages, 1);
	/* the first test-payload setting is remembered, for a Linux guest */
	CU_ASSERT_STRING_EQUAL(vm.payload_key, "zero");
}

/* Setter errors are about the value; the caller names the field. */
static void test_setters_refuse(void)
{
	const struct step zero_churn[] = { { STEP_CHURN, 0 } };
	const struct step arg_fill[] = { { STEP_FILL, 3 } };
	struct step many[CLI_MAX_STEPS + 1];

	spec_defaults(&vm, 0);
	said(spec_set_vcpus(&vm, 0, &err), "0 is out of range 1..64");
	said(spec_set_vcpus(&vm, 65, &err), "65 is out of range 1..64");
	said(spec_set_name(&vm, "a b", &err), "'a b' must be 1-32 of [A-Za-z0-9._-]");
	said(spec_set_domain(&vm, "", &err), "'' must be 1-32 of [A-Za-z0-9._-]");
	said(spec_set_mem(&vm, 1ull << 20, &err),
	     "guest memory of 1048576 bytes is below the minimum of 16 MiB");
	said(spec_set_mem(&vm, (64ull << 20) + 1, &err),
	     "guest memory size 67108865 is not a multiple of 4 KiB");
	said(spec_set_zero(&vm, 101, &err), "101 is out of range 0..100");
	said(spec_set_pool(&vm, 1ull << 32, &err), "4294967296 is out of range 0..4294967295");
	said(spec_set_race_pages(&vm, 0, &err), "0 is out of range 1..4096");
	said(spec_set_probe_pages(&vm, 65537, &err), "65537 is out of range 1..65536");
	said(spec_set_steps(&vm, zero_churn, 1, &err),
	     "churn 0 is out of range 1..4294967296");
	said(spec_set_steps(&vm, arg_fill, 1, &err), "step 'fill' takes no argument");
	said(spec_set_steps(&vm, zero_churn, 0, &err), "empty steps list");
	memset(many, 0, sizeof(many));
	said(spec_set_steps(&vm, many, CLI_MAX_STEPS + 1, &err), "more than 32 steps");
	said(spec_set_payload(&vm, "/nonexistent/p.bin", &err),
	     "payload '/nonexistent/p.bin': No such file or directory");
	/* nothing was changed by a refused value */
	CU_ASSERT_EQUAL(vm.cfg.nr_vcpus, 1);
	CU_ASSERT_STRING_EQUAL(vm.cfg.name, "vm0");
	CU_ASSERT_EQUAL(vm.nr_steps, 2);
	CU_ASSERT_FALSE(vm.steps_set);
}

/* spec_set_kv reads text and ends up where the typed setter does. */
static void test_kv(void)
{
	struct vm_spec typed;

	spec_defaults(&vm, 0);
	CU_ASSERT_EQUAL(spec_set_kv(&vm, "mem", "64M", &err), 0);
	CU_ASSERT_EQUAL(spec_set_kv(&vm, "vcpus", "3", &err), 0);
	CU_ASSERT_EQUAL(spec_set_kv(&vm, "dedup", "yes", &err), 0);
	CU_ASSERT_EQUAL(spec_set_kv(&vm, "steps", "fill+sleep:2", &err), 0);
	CU_ASSERT_EQUAL(spec_set_kv(&vm, "seed", "18446744073709551615", &err), 0);
	spec_defaults(&typed, 0);
	spec_set_mem(&typed, 64ull << 20, &err);
	spec_set_vcpus(&typed, 3, &err);
	spec_set_dedup(&typed, true, &err);
	spec_set_steps(&typed, (const struct step[]){ { STEP_FILL, 0 },
						      { STEP_SLEEP, 2 } }, 2, &err);
	spec_set_seed(&typed, UINT64_MAX, &err);
	CU_ASSERT_EQUAL(vm.cfg.mem_size, typed.cfg.mem_size);
	CU_ASSERT_EQUAL(vm.cfg.nr_vcpus, typed.cfg.nr_vcpus);
	CU_ASSERT_EQUAL(vm.cfg.dedup, typed.cfg.dedup);
	CU_ASSERT_EQUAL(vm.nr_steps, typed.nr_steps);
	/* Field by field: a step's padding is whatever its source held. */
	for (unsigned i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(vm.steps[i].kind, typed.steps[i].kind);
		CU_ASSERT_EQUAL(vm.steps[i].arg, typed.steps[i].arg);
	}
	CU_ASSERT_EQUAL(vm.cfg.content.shared_seed, typed.cfg.content.shared_seed);
	said(spec_set_kv(&vm, "vcpus", "two", &err), "'two' is not a number");
	said(spec_set_kv(&vm, "vcpus", "0", &err), "0 is out of range 1..64");
	said(spec_set_kv(&vm, "console", "maybe", &err), "must be on or off, not 'maybe'");
	said(spec_set_kv(&vm, "bogus", "1", &err), "unknown key 'bogus'");
	/* every key of the table reads its own text */
	for (const struct spec_key *k = spec_keys; k->name; k++)
		CU_ASSERT_PTR_EQUAL(spec_key_find(k->name), k);
	CU_ASSERT_PTR_NULL(spec_key_find("bogus"));
}

/* The --vm command line: "--vm KEY: " before a setter's message. */
static void test_cli_wording(void)
{
	said(spec_from_kv("vcpus=0", 0, &vm, &err), "--vm vcpus: 0 is out of range 1..64");
	said(spec_from_kv("name=a/b", 0, &vm, &err),
	     "--vm name: 'a/b' must be 1-32 of [A-Za-z0-9._-]");
	said(spec_from_kv("mem=lots", 0, &vm, &err),
	     "--vm mem: 'lots' is not a size (examples: 256M, 1G, 65536K)");
	said(spec_from_kv("name=x,cmdline=quiet", 0, &vm, &err),
	     "--vm x: cmdline= needs kernel=");
	said(spec_from_kv("zero=60,shared=50", 0, &vm, &err),
	     "--vm vm0: zero+shared+blob is more than 100%");
	said(spec_from_kv("layout=tidy", 0, &vm, &err),
	     "--vm layout: 'tidy' is not scattered, mix or clones");
}

/* net= and mac=: a tap by name or fv-NAME, a MAC given or derived. */
static void test_net_keys(void)
{
	uint8_t mac[6];

	CU_ASSERT_EQUAL(spec_from_kv("name=web,net=tap:fvtap0,mac=52:54:00:aa:bb:cc",
				     0, &vm, &err), 0);
	CU_ASSERT_TRUE(vm.cfg.net && vm.cfg.mac_set);
	CU_ASSERT_STRING_EQUAL(vm.cfg.net_tap, "fvtap0");
	CU_ASSERT_EQUAL(memcmp(vm.cfg.mac, "\x52\x54\x00\xaa\xbb\xcc", 6), 0);
	/* net=tap: named after the guest (known only at the end), cut to
	 * an interface name's 15 bytes; the MAC from the name */
	CU_ASSERT_EQUAL(spec_from_kv("net=tap,name=a-rather-long-guest-name", 0, &vm,
				     &err), 0);
	CU_ASSERT_STRING_EQUAL(vm.cfg.net_tap, "fv-a-rather-lon");
	CU_ASSERT_FALSE(vm.cfg.mac_set);
	fv_mac_default("a-rather-long-guest-name", mac);
	CU_ASSERT_EQUAL(memcmp(vm.cfg.mac, mac, 6), 0);
	CU_ASSERT_EQUAL(spec_from_kv("name=plain", 0, &vm, &err), 0);
	CU_ASSERT_FALSE(vm.cfg.net);
	said(spec_from_kv("net=bridge", 0, &vm, &err),
	     "--vm net: 'bridge' is not tap or tap:NAME (a tap device; docs/virtio.md)");
	said(spec_from_kv("net=tap:a/b", 0, &vm, &err),
	     "--vm net: tap name 'a/b' must be 1-15 of [A-Za-z0-9._-] (an interface name)");
	said(spec_from_kv("net=tap:0123456789abcdef", 0, &vm, &err),
	     "--vm net: tap name '0123456789abcdef' must be 1-15 of [A-Za-z0-9._-] (an interface name)");
	said(spec_from_kv("net=tap:", 0, &vm, &err),
	     "--vm net: tap name '' must be 1-15 of [A-Za-z0-9._-] (an interface name)");
	said(spec_from_kv("net=tap,mac=01:00:5e:00:00:01", 0, &vm, &err),
	     "--vm mac: MAC '01:00:5e:00:00:01' is a multicast address (the first byte is odd); a guest's must be unicast");
	said(spec_from_kv("net=tap,mac=52:54:00", 0, &vm, &err),
	     "--vm mac: '52:54:00' is not a MAC address (six hex pairs: 52:54:00:12:34:56)");
	said(spec_from_kv("name=x,mac=52:54:00:12:34:56", 0, &vm, &err),
	     "--vm x: mac= needs net=");
}

/* Every key of the spec is an argument of vm-create, with its type. */
static void test_qmp_table(void)
{
	unsigned n = 0;

	for (const struct qmp_arg *a = vm_create_args; a->name; a++, n++) {
		const struct spec_key *k = spec_key_find(a->name);
		enum qmp_type want;

		CU_ASSERT_PTR_NOT_NULL_FATAL(k);
		want = k->type == SPEC_T_UINT || k->type == SPEC_T_SIZE ?
		       QMP_T_INT_OR_STR : k->type == SPEC_T_BOOL ?
		       QMP_T_BOOL_OR_STR : QMP_T_STR;
		if (a->type != want)
			fprintf(stderr, "\n  vm-create '%s' has the wrong type\n", a->name);
		CU_ASSERT_EQUAL(a->type, want);
		CU_ASSERT_EQUAL(a->optional, strcmp(a->name, "name") != 0);
	}
	for (const struct spec_key *k = spec_keys; k->name; k++)
		n--;
	CU_ASSERT_EQUAL(n, 0);
}

/* vm_create_spec on a JSON arguments object; the QMP error in qerr. */
static struct qmp_error qerr;

static int qmp_spec(const char *json)
{
	struct json_object *args = json_tokener_parse(json);
	int r;

	CU_ASSERT_PTR_NOT_NULL_FATAL(args);
	memset(&qerr, 0, sizeof(qerr));
	r = vm_create_spec(args, &vm, &qerr);
	json_object_put(args);
	return r;
}

static void qmp_said(const char *json, const char *msg)
{
	CU_ASSERT_EQUAL(qmp_spec(json), -1);
	CU_ASSERT_STRING_EQUAL(qerr.class, "GenericError");
	if (strcmp(qerr.desc, msg))
		fprintf(stderr, "\n  %s\n  wanted: %s\n  got:    %s\n", json, msg, qerr.desc);
	CU_ASSERT_STRING_EQUAL(qerr.desc, msg);
}

static void test_qmp_types(void)
{
	/* real types: integers (mem in bytes) and booleans */
	CU_ASSERT_EQUAL(qmp_spec("{\"name\":\"a\",\"mem\":268435456,\"vcpus\":2,"
				 "\"zero\":10,\"seed\":18446744073709551615,"
				 "\"dedup\":true,\"console\":false,"
				 "\"steps\":\"fill+churn:5\"}"), 0);
	CU_ASSERT_STRING_EQUAL(vm.cfg.name, "a");
	CU_ASSERT_EQUAL(vm.cfg.mem_size, 256ull << 20);
	CU_ASSERT_EQUAL(vm.cfg.nr_vcpus, 2);
	CU_ASSERT_EQUAL(vm.cfg.content.pct_zero, 10);
	CU_ASSERT_EQUAL(vm.cfg.content.shared_seed, UINT64_MAX);
	CU_ASSERT_TRUE(vm.cfg.dedup && vm.dedup_set);
	CU_ASSERT_FALSE(vm.cfg.console);
	CU_ASSERT_EQUAL(vm.nr_steps, 2);
	CU_ASSERT_EQUAL(vm.steps[1].arg, 5);
	/* what older clients (and foldctl) sent still works */
	CU_ASSERT_EQUAL(qmp_spec("{\"name\":\"b\",\"mem\":\"256M\",\"vcpus\":\"2\","
				 "\"dedup\":\"on\",\"console\":0}"), 0);
	CU_ASSERT_EQUAL(vm.cfg.mem_size, 256ull << 20);
	CU_ASSERT_EQUAL(vm.cfg.nr_vcpus, 2);
	CU_ASSERT_TRUE(vm.cfg.dedup);
	CU_ASSERT_FALSE(vm.cfg.console);
	CU_ASSERT_EQUAL(qmp_spec("{\"name\":\"c\",\"mem\":\"64\"}"), 0);
	CU_ASSERT_EQUAL(vm.cfg.mem_size, 64ull << 20);  /* a bare string: MiB */
	CU_ASSERT_EQUAL(qmp_spec("{\"name\":\"d\",\"layout\":\"mix\"}"), 0);
	CU_ASSERT_EQUAL(vm.cfg.content.layout, FV_LAYOUT_MIX);
}

static void test_qmp_wording(void)
{
	qmp_said("{\"name\":\"a\",\"vcpus\":0}", "Parameter 'vcpus': 0 is out of range 1..64");
	qmp_said("{\"name\":\"a\",\"vcpus\":-1}",
		 "Parameter 'vcpus' expects a non-negative integer");
	qmp_said("{\"name\":\"a\",\"vcpus\":\"two\"}", "Parameter 'vcpus': 'two' is not a number");
	qmp_said("{\"name\":\"a b\"}",
		 "Parameter 'name': 'a b' must be 1-32 of [A-Za-z0-9._-]");
	qmp_said("{\"name\":\"a\",\"mem\":64}",
		 "Parameter 'mem': guest memory of 64 bytes is below the minimum of 16 MiB (an integer is in bytes; \"64M\" is MiB)");
	qmp_said("{\"name\":\"a\",\"mem\":\"lots\"}",
		 "Parameter 'mem': 'lots' is not a size (examples: 256M, 1G, 65536K)");
	qmp_said("{\"name\":\"a\",\"dedup\":\"maybe\"}",
		 "Parameter 'dedup': must be on or off, not 'maybe'");
	qmp_said("{\"name\":\"a\",\"dedup\":2}", "Parameter 'dedup' expects a boolean");
	qmp_said("{\"name\":\"a\",\"layout\":\"tidy\"}",
		 "Parameter 'layout': 'tidy' is not scattered, mix or clones");
	qmp_said("{\"name\":\"a\",\"steps\":\"fill+fly\"}",
		 "Parameter 'steps': unknown step 'fly' (fill, verify, churn:N, race:N, measure, measure-merged, measure-merging, sleep:N, settle:N, wait, fault, sync)");
	qmp_said("{\"name\":\"a\",\"cmdline\":\"quiet\"}",
		 "Parameter 'cmdline' needs parameter 'kernel'");
	qmp_said("{\"name\":\"a\",\"zero\":60,\"shared\":50}",
		 "zero+shared+blob is more than 100%");
}

void unit_add_spec_suite(void)
{
	CU_pSuite s = CU_add_suite("spec", NULL, NULL);

	CU_add_test(s, "typed setters set", test_setters_set);
	CU_add_test(s, "typed setters refuse, worded neutrally", test_setters_refuse);
	CU_add_test(s, "text entry point", test_kv);
	CU_add_test(s, "--vm wording", test_cli_wording);
	CU_add_test(s, "net and mac keys", test_net_keys);
	CU_add_test(s, "vm-create argument table", test_qmp_table);
	CU_add_test(s, "vm-create types", test_qmp_types);
	CU_add_test(s, "vm-create wording", test_qmp_wording);
}
