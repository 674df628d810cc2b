/*
 * test_libvirt.c - domains fetched through the real libvirt library, from
 * its own test driver: test:///default, and a test:///PATH.xml node file
 * of domains with foldvm metadata written by the test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <CUnit/CUnit.h>
#include "tests/unit/unit.h"
#include "frontend/cli.h"
#include "frontend/domain.h"
#include "frontend/domxml.h"
#include "frontend/libvirt_src.h"

/* runstate 5: shut off (the test driver starts node-file domains). */
#define SHUTOFF "<test:runstate>5</test:runstate>"
#define DOMAIN_HEAD(name, uuid) \
	"<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>" \
	"<name>" name "</name><uuid>" uuid "</uuid>" \
	"<memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os>"

static const char node_xml[] =
	"<node>\n"
	DOMAIN_HEAD("fv-a", "11111111-2222-3333-4444-555555555555")
	"<metadata><foldvm:vm xmlns:foldvm='" DOMXML_NS "'>"
	"<foldvm:dedup enabled='yes' trust-domain='tenant-a' rate='3000'/>"
	"<foldvm:payload steps='fill+verify' zero='40'/>"
	"</foldvm:vm></metadata>" SHUTOFF "</domain>\n"
	DOMAIN_HEAD("fv-b", "11111111-2222-3333-4444-666666666666")
	"<metadata><foldvm:vm xmlns:foldvm='" DOMXML_NS "'>"
	"<foldvm:payload/></foldvm:vm></metadata>"
	"<devices><disk type='block' device='disk'><source dev='/dev/nonexistent'/>"
	"<target dev='vda' bus='virtio'/></disk></devices>" SHUTOFF "</domain>\n"
	DOMAIN_HEAD("plain", "11111111-2222-3333-4444-777777777777")
	SHUTOFF "</domain>\n"
	DOMAIN_HEAD("running", "11111111-2222-3333-4444-888888888888")
	"<metadata><foldvm:vm xmlns:foldvm='" DOMXML_NS "'><foldvm:payload/>"
	"</foldvm:vm></metadata></domain>\n"
	"</node>\n";

static char node_path[64];
static char node_uri[96];

static int suite_init(void)
{
	int fd;

	/* No session daemon started behind the tests' back. */
	setenv("LIBVIRT_AUTOSTART", "0", 1);
	snprintf(node_path, sizeof(node_path), "/tmp/foldvm-node.XXXXXX");
	fd = mkstemp(node_path);
	if (fd < 0)
		return -1;
	if (write(fd, node_xml, sizeof(node_xml) - 1) != (ssize_t)sizeof(node_xml) - 1) {
		close(fd);
		return -1;
	}
	close(fd);
	snprintf(node_uri, sizeof(node_uri), "test://%s", node_path);
	return 0;
}

static int suite_clean(void)
{
	unlink(node_path);
	return 0;
}

/* The metadata comes through virDomainGetMetadata, as an element. */
static void test_fetch_metadata(void)
{
	struct lv_domain lv;
	struct fv_error err = { 0 };

	CU_ASSERT_EQUAL_FATAL(lv_fetch_domain(node_uri, "fv-a", &lv, &err), 0);
	CU_ASSERT_PTR_NOT_NULL(lv.xml);
	CU_ASSERT_PTR_NOT_NULL(strstr(lv.xml, "<name>fv-a</name>"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(lv.metadata);
	CU_ASSERT_PTR_NOT_NULL(strstr(lv.metadata, "<vm"));
	CU_ASSERT_PTR_NOT_NULL(strstr(lv.metadata, "tenant-a"));
	CU_ASSERT_FALSE(lv.active);
	lv_domain_free(&lv);
	/* no foldvm element: no metadata, and no error */
	CU_ASSERT_EQUAL_FATAL(lv_fetch_domain(node_uri, "plain", &lv, &err), 0);
	CU_ASSERT_PTR_NULL(lv.metadata);
	lv_domain_free(&lv);
}

static void test_map_from_libvirt(void)
{
	static struct vm_spec vm;
	struct fv_error err = { 0 };

	CU_ASSERT_EQUAL(domain_spec_from_libvirt(node_uri, "fv-a", 0, false, &vm, &err), 0);
	if (err.msg[0])
		fprintf(stderr, "\n  %s\n", err.msg);
	CU_ASSERT_FATAL(vm.domain_xml != NULL);
	CU_ASSERT_STRING_EQUAL(vm.cfg.name, "fv-a");
	CU_ASSERT_STRING_EQUAL(vm.uuid, "11111111-2222-3333-4444-555555555555");
	CU_ASSERT_EQUAL(vm.cfg.mem_size, 64ull << 20);
	CU_ASSERT_TRUE(vm.cfg.dedup);
	CU_ASSERT_STRING_EQUAL(vm.cfg.domain, "tenant-a");
	CU_ASSERT_EQUAL(vm.cfg.dedup_rate, 3000);
	CU_ASSERT_EQUAL(vm.cfg.content.pct_zero, 40);
	CU_ASSERT_PTR_NOT_NULL(vm.domain_xml);
	CU_ASSERT_PTR_NOT_NULL(strstr(vm.origin, "domain fv-a"));
	/* the test driver's domain type is not KVM: listed */
	CU_ASSERT_PTR_NOT_NULL(strstr(vm.notes, "<domain type='test'>"));
	domain_spec_free(&vm);
	/* a disk is listed; --strict refuses the domain for it */
	CU_ASSERT_EQUAL(domain_spec_from_libvirt(node_uri, "fv-b", 0, false, &vm, &err), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(vm.notes, "<disk type='block'> (one virtio disk backed by a file, at most)"));
	domain_spec_free(&vm);
	CU_ASSERT_EQUAL(domain_spec_from_libvirt(node_uri, "fv-b", 0, true, &vm, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "--strict"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "<disk type='block'>"));
	domain_spec_free(&vm);
}

static void test_libvirt_refusals(void)
{
	static struct vm_spec vm;
	struct fv_error err = { 0 };

	CU_ASSERT_EQUAL(domain_spec_from_libvirt(node_uri, "plain", 0, false, &vm, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "nothing to run"));
	CU_ASSERT_EQUAL(domain_spec_from_libvirt(node_uri, "nosuch", 0, false, &vm, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no domain nosuch"));
	/* libvirt runs it: a second VMM must not */
	CU_ASSERT_EQUAL(domain_spec_from_libvirt(node_uri, "running", 0, false, &vm, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "running under libvirt itself"));
	CU_ASSERT_EQUAL(domain_spec_from_libvirt("test:///default", "test", 0, false,
						 &vm, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "running under libvirt itself"));
	CU_ASSERT_EQUAL(domain_spec_from_libvirt("test:///nonexistent-node.xml", "x", 0,
						 false, &vm, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "cannot connect to test:///nonexistent-node.xml"));
	CU_ASSERT_EQUAL(domain_spec_from_libvirt("bogus+scheme:///x", "x", 0, false,
						 &vm, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "cannot connect"));
}

/* The command line: --libvirt/--domain, --domain-xml, and their checks. */
static void test_cli_domains(void)
{
	static struct cli_args cl;
	struct cli_options *opt = &cl.opt;
	struct fv_error err = { 0 };
	char *ok[] = { "foldvm", "run", "--libvirt", node_uri, "--domain", "fv-a",
		       "--domain=fv-b", "--vm", "name=x", "--no-hooks",
		       "--lock-dir", "/tmp/foldvm-locks", NULL };
	char *no_uri[] = { "foldvm", "run", "--domain", "fv-a", NULL };
	char *no_dom[] = { "foldvm", "run", "--libvirt", node_uri, NULL };
	char *twice[] = { "foldvm", "run", "--libvirt", node_uri, "--domain", "fv-a",
			  "--domain", "fv-a", NULL };
	char *strict[] = { "foldvm", "run", "--strict", "--libvirt", node_uri,
			   "--domain", "fv-b", NULL };
	char *timeout[] = { "foldvm", "run", "--vm", "name=x", "--hook-timeout", "0", NULL };

	CU_ASSERT_EQUAL_FATAL(cli_parse(12, ok, &cl, &err), 0);
	CU_ASSERT_EQUAL(opt->nr_vms, 3);
	CU_ASSERT_STRING_EQUAL(opt->vms[0].cfg.name, "x");
	CU_ASSERT_STRING_EQUAL(opt->vms[0].uuid, "");
	CU_ASSERT_STRING_EQUAL(opt->vms[1].cfg.name, "fv-a");
	CU_ASSERT_STRING_EQUAL(opt->vms[2].cfg.name, "fv-b");
	CU_ASSERT_STRING_EQUAL(opt->vms[2].uuid, "11111111-2222-3333-4444-666666666666");
	CU_ASSERT_STRING_EQUAL(opt->hooks.dir, "");
	CU_ASSERT_STRING_EQUAL(opt->lock_dir, "/tmp/foldvm-locks");
	cli_options_free(opt);
	CU_ASSERT_EQUAL(cli_parse(4, no_uri, &cl, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "--domain NAME needs --libvirt URI"));
	CU_ASSERT_EQUAL(cli_parse(4, no_dom, &cl, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "needs at least one --domain"));
	cli_options_free(opt);
	CU_ASSERT_EQUAL(cli_parse(8, twice, &cl, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "same domain"));
	cli_options_free(opt);
	CU_ASSERT_EQUAL(cli_parse(7, strict, &cl, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "--strict"));
	cli_options_free(opt);
	CU_ASSERT_EQUAL(cli_parse(6, timeout, &cl, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "--hook-timeout"));
	cli_options_free(opt);
	/* defaults: libvirt's hook directory, 30 s */
	CU_ASSERT_EQUAL(cli_parse(4, (char *[]){ "foldvm", "run", "--vm", "name=y", NULL },
				  &cl, &err), 0);
	CU_ASSERT_STRING_EQUAL(opt->hooks.dir, "/etc/libvirt/hooks");
	CU_ASSERT_EQUAL(opt->hooks.timeout_ms, 30000);
	cli_options_free(opt);
}

void unit_add_libvirt_suite(void)
{
	CU_pSuite s = CU_add_suite("libvirt", suite_init, suite_clean);

	CU_add_test(s, "fetch XML and metadata", test_fetch_metadata);
	CU_add_test(s, "map a fetched domain", test_map_from_libvirt);
	CU_add_test(s, "refusals", test_libvirt_refusals);
	CU_add_test(s, "command line", test_cli_domains);
}
