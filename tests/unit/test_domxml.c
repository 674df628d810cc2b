/*
 * test_domxml.c - libvirt domain XML as a foldvm guest: the mapping, the
 * units, the unsupported list, foldvm's metadata, and every refusal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <CUnit/CUnit.h>
#include "tests/unit/unit.h"
#include "frontend/domain.h"
#include "frontend/domxml.h"
#include "lib/netname.h"

#define NS "xmlns:foldvm='" DOMXML_NS "'"
#define UUID "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"

/* A domain foldvm honours entirely: its test payload, dedup on. */
static const char clean_domain[] =
	"<domain type='kvm'>\n"
	"  <name>web-1</name>\n"
	"  <uuid>4DEA22B31D52D8F32516782E98AB3FA0</uuid>\n"
	"  <title>a web server</title>\n"
	"  <memory unit='MiB'>96</memory>\n"
	"  <currentMemory unit='KiB'>98304</currentMemory>\n"
	"  <vcpu placement='static'>2</vcpu>\n"
	"  <metadata>\n"
	"    <other:app xmlns:other='http://example.com/app'><other:x/></other:app>\n"
	"    <foldvm:vm " NS ">\n"
	"      <foldvm:dedup enabled='yes' trust-domain='tenant-a' rate='5000'/>\n"
	"      <foldvm:payload steps='fill+verify+sleep:1' zero='10' shared='30'/>\n"
	"    </foldvm:vm>\n"
	"  </metadata>\n"
	"  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>\n"
	"  <features><apic/><pae/></features>\n"
	"  <cpu mode='host-passthrough'/>\n"
	"  <clock offset='utc'/>\n"
	"  <on_poweroff>destroy</on_poweroff>\n"
	"  <on_reboot>destroy</on_reboot>\n"
	"  <on_crash>destroy</on_crash>\n"
	"  <devices>\n"
	"    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
	"    <controller type='pci' index='0' model='pci-root'/>\n"
	"    <serial type='pty'><target port='0'/></serial>\n"
	"    <console type='pty'><target type='serial' port='0'/></console>\n"
	"    <memballoon model='none'/>\n"
	"  </devices>\n"
	"</domain>\n";

static int map(const char *xml, bool strict, struct vm_spec *vm,
	       struct fv_error *err)
{
	int r = domain_spec_from_xml(xml, strlen(xml), NULL, "test.xml", 0,
				     strict, vm, err);

	domain_spec_free(vm);
	return r;
}

static void test_clean_domain(void)
{
	static struct vm_spec vm;
	struct fv_error err = { 0 };

	CU_ASSERT_EQUAL_FATAL(map(clean_domain, true, &vm, &err), 0);
	CU_ASSERT_STRING_EQUAL(vm.cfg.name, "web-1");
	CU_ASSERT_STRING_EQUAL(vm.uuid, UUID);
	CU_ASSERT_EQUAL(vm.cfg.mem_size, 96ull << 20);
	CU_ASSERT_EQUAL(vm.cfg.nr_vcpus, 2);
	CU_ASSERT_TRUE(vm.cfg.dedup);
	CU_ASSERT_TRUE(vm.dedup_set);
	CU_ASSERT_STRING_EQUAL(vm.cfg.domain, "tenant-a");
	CU_ASSERT_EQUAL(vm.cfg.dedup_rate, 5000);
	CU_ASSERT_EQUAL(vm.cfg.content.pct_zero, 10);
	CU_ASSERT_EQUAL(vm.cfg.content.pct_shared, 30);
	CU_ASSERT_EQUAL(vm.nr_steps, 3);
	CU_ASSERT_EQUAL(vm.steps[2].kind, STEP_SLEEP);
	CU_ASSERT_TRUE(vm.cfg.console);
	CU_ASSERT_FALSE(guest_config_is_linux(&vm.cfg));
	CU_ASSERT_STRING_EQUAL(vm.notes, "");
	CU_ASSERT_STRING_EQUAL(vm.origin, "test.xml");
}

/* A copy of src with its first `from` replaced by `to`. */
static char *edit_of(const char *src, const char *from, const char *to)
{
	const char *at = strstr(src, from);
	size_t n = strlen(src) - strlen(from) + strlen(to) + 1;
	char *s = malloc(n);

	CU_ASSERT_PTR_NOT_NULL_FATAL(at);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	snprintf(s, n, "%.*s%s%s", (int)(at - src), src, to, at + strlen(from));
	return s;
}

static char *edit(const char *from, const char *to)
{
	return edit_of(clean_domain, from, to);
}

/* Edit an edited copy again (the old one is freed). */
static char *re_edit(char *src, const char *from, const char *to)
{
	char *s = edit_of(src, from, to);

	free(src);
	return s;
}

/* The edited domain is refused, and the message says `why`. */
static void expect_refused(const char *from, const char *to, const char *why)
{
	static struct vm_spec vm;
	struct fv_error err = { 0 };
	char *xml = edit(from, to);

	CU_ASSERT_EQUAL(map(xml, false, &vm, &err), -1);
	if (!strstr(err.msg, why))
		fprintf(stderr, "\n  wanted '%s' in: %s\n", why, err.msg);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, why));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "test.xml"));
	free(xml);
}

static void test_refusals(void)
{
	expect_refused("<name>web-1</name>", "", "no <name>");
	expect_refused("<name>web-1</name>", "<name>web server</name>",
		       "<name>: 'web server' must be 1-32");
	expect_refused("<uuid>4DEA22B31D52D8F32516782E98AB3FA0</uuid>", "", "no <uuid>");
	expect_refused("4DEA22B31D52D8F32516782E98AB3FA0", "4dea-xyz", "is not a uuid");
	expect_refused("<memory unit='MiB'>96</memory>", "", "no <memory>");
	expect_refused("unit='MiB'>96", "unit='MegaBytes'>96", "unit 'MegaBytes'");
	expect_refused("unit='MiB'>96", "unit='MiB'>-96", "not a whole number");
	expect_refused("unit='MiB'>96", "unit='EiB'>99999", "does not fit in 64 bits");
	expect_refused("<memory unit='MiB'>96</memory>\n  <currentMemory unit='KiB'>98304</currentMemory>",
		       "<memory unit='KiB'>1024</memory>", "below the minimum");
	expect_refused("98304</currentMemory>", "98308</currentMemory>",
		       "more than <memory>");
	expect_refused(">2</vcpu>", ">two</vcpu>", "not a vCPU count");
	expect_refused(">hvm<", ">xen<", "'hvm'");
	expect_refused("arch='x86_64'", "arch='aarch64'", "x86_64 guests");
	expect_refused("<os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>",
		       "", "no <os>");
	expect_refused("<os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>",
		       "<os/>", "no <type>");
	expect_refused("<title>", "<name>again</name><title>", "<name> appears twice");
	expect_refused("rate='5000'", "rate='fast'", "pages per second");
	expect_refused("enabled='yes'", "enabled='maybe'", "yes or no");
	expect_refused("enabled='yes'", "enabeld='yes'", "no attribute 'enabeld'");
	expect_refused("trust-domain='tenant-a'", "trust-domain='a b'",
		       "<foldvm:dedup trust-domain>: 'a b' must be");
	expect_refused("zero='10'", "zeros='10'", "no attribute 'zeros'");
	expect_refused("zero='10'", "zero='101'",
		       "<foldvm:payload zero>: 101 is out of range 0..100");
	/* a typed value names its element */
	expect_refused(">2</vcpu>", ">65</vcpu>", "<vcpu>: 65 is out of range 1..64");
	expect_refused("<memory unit='MiB'>96</memory>\n  <currentMemory unit='KiB'>98304</currentMemory>",
		       "<memory unit='B'>16777217</memory>",
		       "<memory>: guest memory size 16777217 is not a multiple of 4 KiB");
	expect_refused("shared='30'", "shared='95'", "more than 100%");
	expect_refused("steps='fill+verify+sleep:1'", "steps='fill+jump'", "jump");
	expect_refused("<foldvm:payload", "<foldvm:extra/><foldvm:payload",
		       "not <foldvm:extra>");
	expect_refused("<foldvm:dedup", "<foldvm:dedup/><foldvm:dedup", "twice");
	expect_refused("zero='10'", "zero='10' mac='52:54:00:12:34:56'",
		       "<foldvm:payload> has no attribute 'mac' (payload, zero, shared, blob, pool, seed, layout, steps, race-pages, probe-pages)");
	expect_refused("zero='10'", "zero='10' a-very-long-attribute='1'",
		       "<foldvm:payload> has no attribute 'a-very-long-attribute'");
	expect_refused("<foldvm:vm ", "<foldvm:vmm " NS "/><foldvm:vm ", "not <foldvm:vmm>");
	expect_refused("<foldvm:payload steps='fill+verify+sleep:1' zero='10' shared='30'/>",
		       "", "nothing to run");
	expect_refused("</domain>", "", "malformed XML at line");
	expect_refused("<domain type='kvm'>", "<domain xmlns='urn:x' type='kvm'>",
		       "not a libvirt <domain>");
}

/* Entities are never expanded: a DOCTYPE is refused before anything. */
static void test_doctype_refused(void)
{
	static struct vm_spec vm;
	struct fv_error err = { 0 };
	static const char laughs[] =
		"<?xml version='1.0'?>\n"
		"<!DOCTYPE domain [<!ENTITY a 'aaaaaaaaaa'>"
		"<!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>"
		"<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>]>\n"
		"<domain type='kvm'><name>&c;</name></domain>\n";

	CU_ASSERT_EQUAL(map(laughs, false, &vm, &err), -1);
	if (!strstr(err.msg, "DOCTYPE"))
		fprintf(stderr, "\n  %s\n", err.msg);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "DOCTYPE"));
	CU_ASSERT_EQUAL(map("", false, &vm, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "empty"));
	CU_ASSERT_EQUAL(map("not xml at all", false, &vm, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "malformed XML"));
}

/* Everything foldvm cannot honour, listed with a reason; --strict says no. */
static void test_unsupported_listed(void)
{
	static struct vm_spec vm;
	struct fv_error err = { 0 };
	char *xml = edit("<memballoon model='none'/>",
			 "<disk type='block' device='disk'><source dev='/dev/sdz'/></disk>"
			 "<interface type='network'><source network='default'/></interface>"
			 "<graphics type='vnc'/><memballoon model='xen'/>"
			 "<serial type='pty'><target port='1'/></serial>");

	xml = re_edit(xml, "<features>",
		      "<blkiotune><weight>100</weight></blkiotune><features>");
	xml = re_edit(xml, "<apic/>", "<acpi/><apic/>");
	xml = re_edit(xml, "<on_reboot>destroy", "<on_reboot>restart");
	CU_ASSERT_EQUAL_FATAL(map(xml, false, &vm, &err), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(vm.notes, "<disk type='block'> (one virtio disk backed by a file, at most)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vm.notes, "<interface type='network'> (one virtio interface on a tap (type='ethernet'), at most)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vm.notes, "<graphics type='vnc'> (no display)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vm.notes, "<memballoon> (foldvm's balloon is virtio)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vm.notes, "<serial> port 1"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vm.notes, "<blkiotune> (not supported)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vm.notes, "<features><acpi>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vm.notes, "<on_reboot>restart</on_reboot>"));
	/* the same domain, strict: refused, with the whole list in one message */
	CU_ASSERT_EQUAL(map(xml, true, &vm, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "--strict: foldvm cannot honour 8 settings"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "<disk type='block'>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "<on_reboot>"));
	free(xml);
}

static void test_more_notes(void)
{
	static struct vm_spec vm;
	struct fv_error err = { 0 };
	char *xml = edit("<currentMemory unit='KiB'>98304</currentMemory>",
			 "<currentMemory unit='MiB'>64</currentMemory>");
	char *xml2 = edit("<vcpu placement='static'>2</vcpu>",
			  "<vcpu placement='static' cpuset='0-1' current='1'>2</vcpu>");
	char *xml3 = edit("<domain type='kvm'>", "<domain type='qemu'>");

	CU_ASSERT_EQUAL(map(xml, false, &vm, &err), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(vm.notes, "no balloon: the guest gets all 98304 KiB"));
	/* with a virtio balloon, <currentMemory> is its target: nothing lost */
	xml = re_edit(xml, "<memballoon model='none'/>", "<memballoon model='virtio'/>");
	CU_ASSERT_EQUAL(domain_spec_from_xml(xml, strlen(xml), NULL, "test.xml", 0,
					     true, &vm, &err), 0);
	CU_ASSERT_TRUE(vm.cfg.balloon);
	CU_ASSERT_EQUAL(vm.cfg.balloon_target, 64ull << 20);
	domain_spec_free(&vm);
	CU_ASSERT_EQUAL(map(xml2, false, &vm, &err), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(vm.notes, "cpuset='0-1'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vm.notes, "current='1'"));
	CU_ASSERT_EQUAL(map(xml3, false, &vm, &err), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(vm.notes, "<domain type='qemu'>"));
	free(xml);
	free(xml2);
	free(xml3);
}

/* <disk type='file'>: a raw image on virtio-blk, <readonly/> kept; a
 * second disk is listed, a non-raw format and a missing source refused. */
static void test_disk(void)
{
	static struct vm_spec vm;
	struct fv_error err = { 0 };
	char path[] = "/tmp/foldvm-domxml-disk.XXXXXX", dev[PATH_MAX + 256];
	char *xml, *xml2, *xml3, *xml4;
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(ftruncate(fd, 1 << 20), 0);
	close(fd);
	snprintf(dev, sizeof(dev),
		 "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
		 "<source file='%s'/><target dev='vda' bus='virtio'/><readonly/></disk>"
		 "<memballoon model='none'/>", path);
	xml = edit("<memballoon model='none'/>", dev);
	CU_ASSERT_EQUAL(domain_spec_from_xml(xml, strlen(xml), NULL, "test.xml", 0,
					     true, &vm, &err), 0);
	CU_ASSERT_STRING_EQUAL(vm.cfg.disk, path);
	CU_ASSERT_TRUE(vm.cfg.disk_ro);
	domain_spec_free(&vm);
	xml2 = re_edit(strdup(xml), "<memballoon model='none'/>",
		       "<disk type='file' device='cdrom'><source file='/x.iso'/></disk>");
	CU_ASSERT_EQUAL(map(xml2, false, &vm, &err), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(vm.notes, "<disk type='file'> (one virtio disk backed by a file, at most)"));
	xml3 = edit_of(xml, "type='raw'", "type='qcow2'");
	CU_ASSERT_EQUAL(map(xml3, false, &vm, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "raw images only"));
	xml4 = edit_of(xml, "<source file=", "<source bogus=");
	CU_ASSERT_EQUAL(map(xml4, false, &vm, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "has no <source file>"));
	unlink(path);
	CU_ASSERT_EQUAL(map(xml, false, &vm, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "disk image"));
	free(xml);
	free(xml2);
	free(xml3);
	free(xml4);
}

/* <interface type='ethernet'>: virtio-net on its <target dev> with its
 * <mac address>; without a target, fv-NAME and the name's MAC; a second
 * interface, another model and a script listed; bad values refused with
 * the element named. */
static void test_interface(void)
{
	static struct vm_spec vm;
	struct fv_error err = { 0 };
	uint8_t mac[6];
	char *xml = edit("<memballoon model='none'/>",
			 "<interface type='ethernet'><mac address='52:54:00:ab:cd:ef'/>"
			 "<target dev='vnet-web1' managed='no'/><model type='virtio'/>"
			 "</interface><memballoon model='none'/>");
	char *xml2, *xml3, *xml4, *xml5;

	CU_ASSERT_EQUAL_FATAL(map(xml, true, &vm, &err), 0);
	CU_ASSERT_TRUE(vm.cfg.net);
	CU_ASSERT_STRING_EQUAL(vm.cfg.net_tap, "vnet-web1");
	CU_ASSERT_TRUE(vm.cfg.mac_set);
	CU_ASSERT_EQUAL(vm.cfg.mac[0], 0x52);
	CU_ASSERT_EQUAL(vm.cfg.mac[5], 0xef);
	CU_ASSERT_STRING_EQUAL(vm.notes, "");
	/* no <target>, no <mac>: foldvm's tap, the default MAC */
	xml2 = edit("<memballoon model='none'/>",
		    "<interface type='ethernet'><model type='e1000'/><script path='/x'/></interface>"
		    "<interface type='bridge'><source bridge='br0'/></interface>"
		    "<interface type='ethernet'/>");
	CU_ASSERT_EQUAL(map(xml2, false, &vm, &err), 0);
	CU_ASSERT_STRING_EQUAL(vm.cfg.net_tap, "fv-web-1");
	CU_ASSERT_FALSE(vm.cfg.mac_set);
	fv_mac_default("web-1", mac);
	CU_ASSERT_EQUAL(memcmp(vm.cfg.mac, mac, 6), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(vm.notes, "<interface><model type='e1000'> (foldvm's network device is virtio-net)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vm.notes, "<interface><script>"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vm.notes, "<interface type='bridge'> (one virtio interface on a tap (type='ethernet'), at most)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vm.notes, "<interface type='ethernet'> (one virtio interface"));
	/* bad values: the element is named */
	xml3 = edit_of(xml, "52:54:00:ab:cd:ef", "01:00:5e:00:00:01");
	CU_ASSERT_EQUAL(map(xml3, false, &vm, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "<interface><mac address>: "));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "multicast"));
	xml4 = edit_of(xml, "vnet-web1", "a/b");
	CU_ASSERT_EQUAL(map(xml4, false, &vm, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "<interface><target dev>: "));
	xml5 = edit_of(xml, "vnet-web1", "a-name-far-too-long");
	CU_ASSERT_EQUAL(map(xml5, false, &vm, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "longer than 15 bytes"));
	free(xml);
	free(xml2);
	free(xml3);
	free(xml4);
	free(xml5);
}

/* A kernel domain: os kernel/initrd/cmdline; payload settings refused. */
static void test_kernel_domain(void)
{
	static struct vm_spec vm;
	struct fv_error err = { 0 };
	char kpath[] = "/tmp/foldvm-domxml-kernel.XXXXXX";
	char os[PATH_MAX * 2 + 256], *xml, *xml2, *xml3;
	int fd = mkstemp(kpath);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, "not really a kernel", 19), 19);
	close(fd);
	snprintf(os, sizeof(os),
		 "<os><type>hvm</type><kernel>%s</kernel><initrd>%s</initrd>"
		 "<cmdline>console=ttyS0 clearcpuid=1,2</cmdline></os>", kpath, kpath);
	xml = edit("<os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>", os);
	/* payload settings are refused for a kernel... */
	CU_ASSERT_EQUAL(map(xml, false, &vm, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "test-payload setting"));
	/* ...but 2 vCPUs are fine (the MADT names them); with only dedup
	 * it maps. */
	xml2 = edit_of(xml, "<foldvm:payload steps='fill+verify+sleep:1' zero='10' shared='30'/>", "");
	CU_ASSERT_EQUAL(map(xml2, false, &vm, &err), 0);
	CU_ASSERT_EQUAL(vm.cfg.nr_vcpus, 2);
	xml2 = re_edit(xml2, ">2</vcpu>", ">1</vcpu>");
	CU_ASSERT_EQUAL_FATAL(map(xml2, false, &vm, &err), 0);
	CU_ASSERT_STRING_EQUAL(vm.cfg.kernel, kpath);
	CU_ASSERT_STRING_EQUAL(vm.cfg.initrd, kpath);
	CU_ASSERT_STRING_EQUAL(vm.cfg.cmdline, "console=ttyS0 clearcpuid=1,2");
	CU_ASSERT_EQUAL(vm.nr_steps, 1);
	CU_ASSERT_EQUAL(vm.steps[0].kind, STEP_WAIT);
	CU_ASSERT_FALSE(vm.cfg.virtio_cmdline);
	/* <foldvm:linux virtio-cmdline>: the --vm key of the same name */
	xml3 = edit_of(xml, "<foldvm:payload steps='fill+verify+sleep:1' zero='10' shared='30'/>",
		       "<foldvm:linux virtio-cmdline='on'/>");
	CU_ASSERT_EQUAL_FATAL(map(xml3, false, &vm, &err), 0);
	CU_ASSERT_TRUE(vm.cfg.virtio_cmdline);
	xml3 = re_edit(xml3, "virtio-cmdline='on'", "virtio-cmdline='maybe'");
	CU_ASSERT_EQUAL(map(xml3, false, &vm, &err), -1);
	xml3 = re_edit(xml3, "virtio-cmdline='maybe'", "acpi='off'");
	CU_ASSERT_EQUAL(map(xml3, false, &vm, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no attribute 'acpi'"));
	free(xml3);
	unlink(kpath);
	CU_ASSERT_EQUAL(map(xml2, false, &vm, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "<os><kernel>"));
	free(xml);
	free(xml2);
}

static void test_scale(void)
{
	static const struct { const char *v, *unit; uint64_t bytes; } ok[] = {
		{ "5", NULL, 5120 }, { "5", "", 5120 }, { "5", "b", 5 },
		{ "5", "bytes", 5 }, { "5", "KB", 5000 }, { "5", "k", 5120 },
		{ "5", "KiB", 5120 }, { "5", "kib", 5120 }, { "2", "MB", 2000000 },
		{ "2", "M", 2 << 20 }, { "2", "MiB", 2 << 20 }, { "3", "GiB", 3ull << 30 },
		{ "3", "G", 3ull << 30 }, { "1", "TB", 1000000000000ull },
		{ "1", "TiB", 1ull << 40 }, { "1", "EiB", 1ull << 60 },
	};
	static const char *const bad_units[] = { "Kib2", "Mi", "X", "KBB", "iB" };
	struct fv_error err;
	uint64_t b;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		b = 0;
		CU_ASSERT_EQUAL(domxml_scale(ok[i].v, ok[i].unit, &b, &err), 0);
		CU_ASSERT_EQUAL(b, ok[i].bytes);
	}
	for (size_t i = 0; i < sizeof(bad_units) / sizeof(bad_units[0]); i++)
		CU_ASSERT_EQUAL(domxml_scale("1", bad_units[i], &b, &err), -1);
	CU_ASSERT_EQUAL(domxml_scale("16", "EiB", &b, &err), -1);
	CU_ASSERT_EQUAL(domxml_scale("", "KiB", &b, &err), -1);
	CU_ASSERT_EQUAL(domxml_scale("1 ", "KiB", &b, &err), -1);
	CU_ASSERT_EQUAL(domxml_scale("99999999999999999999999", "b", &b, &err), -1);
}

static void test_uuid(void)
{
	char out[DOMXML_UUID_LEN + 1];
	struct fv_error err;

	CU_ASSERT_EQUAL(domxml_uuid(UUID, out, &err), 0);
	CU_ASSERT_STRING_EQUAL(out, UUID);
	CU_ASSERT_EQUAL(domxml_uuid(" 4DEA22B31D52D8F32516782E98AB3FA0 ", out, &err), 0);
	CU_ASSERT_STRING_EQUAL(out, UUID);
	CU_ASSERT_EQUAL(domxml_uuid("4dea-22b3-1d52-d8f3-2516-782e-98ab-3fa0", out, &err), 0);
	CU_ASSERT_STRING_EQUAL(out, UUID);
	CU_ASSERT_EQUAL(domxml_uuid("4dea22b3", out, &err), -1);
	CU_ASSERT_EQUAL(domxml_uuid("-4dea22b31d52d8f32516782e98ab3fa0", out, &err), -1);
	CU_ASSERT_EQUAL(domxml_uuid("4dea22b31d52d8f32516782e98ab3fa0aa", out, &err), -1);
	CU_ASSERT_EQUAL(domxml_uuid("4dea22b31d52d8f32516782e98ab3fag", out, &err), -1);
	CU_ASSERT_EQUAL(domxml_uuid("", out, &err), -1);
}

/* What the libvirt hook relies on, and the metadata element alone. */
static void test_find_and_metadata(void)
{
	static struct domxml_def def;
	struct fv_error err;
	char name[DOMXML_NAME_MAX + 1];
	bool is_foldvm = false;
	char *plain = edit("<foldvm:vm " NS ">", "<foldvm:vm xmlns:foldvm='urn:other'>");
	static const char meta[] =
		"<fv:vm xmlns:fv='" DOMXML_NS "'><fv:dedup enabled='no'/></fv:vm>";

	CU_ASSERT_EQUAL(domxml_find_foldvm(clean_domain, strlen(clean_domain), name,
					   sizeof(name), &is_foldvm, &err), 0);
	CU_ASSERT_TRUE(is_foldvm);
	CU_ASSERT_STRING_EQUAL(name, "web-1");
	/* the same element name in another namespace is not foldvm's */
	CU_ASSERT_EQUAL(domxml_find_foldvm(plain, strlen(plain), name, sizeof(name),
					   &is_foldvm, &err), 0);
	CU_ASSERT_FALSE(is_foldvm);
	CU_ASSERT_EQUAL(domxml_find_foldvm("<x/>", 4, name, sizeof(name),
					   &is_foldvm, &err), -1);
	/* another prefix for the same namespace is the same element */
	CU_ASSERT_EQUAL(domxml_parse(clean_domain, strlen(clean_domain), &def, &err), 0);
	CU_ASSERT_TRUE(def.dedup_enabled);
	CU_ASSERT_EQUAL(def.nr_payload, 3);
	CU_ASSERT_EQUAL(domxml_parse_metadata(meta, strlen(meta), &def, &err), 0);
	CU_ASSERT_TRUE(def.foldvm);
	CU_ASSERT_TRUE(def.dedup_set);
	CU_ASSERT_FALSE(def.dedup_enabled);
	CU_ASSERT_EQUAL(def.nr_payload, 0);   /* replaced, not merged */
	/* as virDomainGetMetadata returns it: the namespace stripped */
	CU_ASSERT_EQUAL(domxml_parse_metadata("<vm><dedup rate='7'/></vm>", 26, &def, &err), 0);
	CU_ASSERT_EQUAL(def.dedup_rate, 7);
	CU_ASSERT_EQUAL(domxml_parse_metadata("<vm><x:dedup xmlns:x='urn:x'/></vm>", 35,
					      &def, &err), -1);
	CU_ASSERT_EQUAL(domxml_parse_metadata("<other/>", 8, &def, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, DOMXML_NS));
	free(plain);
}

void unit_add_domxml_suite(void)
{
	CU_pSuite s = CU_add_suite("domxml", NULL, NULL);

	CU_add_test(s, "a clean domain maps whole", test_clean_domain);
	CU_add_test(s, "refusals name what is wrong", test_refusals);
	CU_add_test(s, "DOCTYPE and garbage refused", test_doctype_refused);
	CU_add_test(s, "unsupported settings listed, --strict refuses", test_unsupported_listed);
	CU_add_test(s, "balloon, pinning, type notes", test_more_notes);
	CU_add_test(s, "kernel domains", test_kernel_domain);
	CU_add_test(s, "disks", test_disk);
	CU_add_test(s, "network interfaces", test_interface);
	CU_add_test(s, "libvirt units", test_scale);
	CU_add_test(s, "uuids", test_uuid);
	CU_add_test(s, "hook look-up and metadata alone", test_find_and_metadata);
}
