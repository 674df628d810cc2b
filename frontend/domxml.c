/*
 * domxml.c - read a libvirt domain XML document as a foldvm guest.
 *
 * Every byte here comes from outside (a file, a libvirt daemon, a hook's
 * stdin).  The document is size-bounded before libxml2 sees it; libxml2
 * runs without network access, without loading or applying a DTD and
 * without expanding entities (a DOCTYPE is refused outright, so there is
 * nothing to expand); every text and attribute is bounded again here.
 *
 * The mapping walks every element the domain has.  What foldvm honours is
 * taken; what it deliberately treats as the same thing (an emulator path it
 * replaces, APIC and PAE it always has) passes; everything else becomes a
 * note with a reason.  An unknown element therefore always ends up in the
 * list, never silently dropped.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include "frontend/domxml_int.h"

typedef int (*domxml_walk_fn)(xmlNode *n, struct domxml_def *def,
			      struct fv_error *err);

/* ---- <os> ---- */

static int os_type(xmlNode *n, struct domxml_def *def, struct fv_error *err)
{
	char type[16], arch[32];
	bool present;

	(void)def;
	if (node_text(n, type, sizeof(type), err) ||
	    node_attr(n, "arch", arch, sizeof(arch), &present, err))
		return -1;
	if (strcmp(type, "hvm"))
		return fv_err(err, FV_E_INVAL,
			      "<os><type> is '%s': foldvm runs full virtual machines ('hvm')",
			      type);
	if (present && strcmp(arch, "x86_64"))
		return fv_err(err, FV_E_INVAL,
			      "<os><type arch='%s'>: foldvm runs x86_64 guests", arch);
	/* machine= names one of QEMU's board models; foldvm has its own. */
	return 0;
}

static int walk_os(xmlNode *os, struct domxml_def *def, struct fv_error *err)
{
	bool type_seen = false;
	char fw[32];

	def->os_seen = true;
	node_attr_or_empty(os, "firmware", fw, sizeof(fw));
	if (fw[0])
		note_add(def, "<os firmware='%s'> (foldvm boots kernels directly, no firmware)", fw);
	for (xmlNode *n = os->children; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (node_is(n, "type")) {
			type_seen = true;
			if (os_type(n, def, err))
				return -1;
		} else if (node_is(n, "kernel")) {
			if (node_text(n, def->kernel, sizeof(def->kernel), err))
				return -1;
		} else if (node_is(n, "initrd")) {
			if (node_text(n, def->initrd, sizeof(def->initrd), err))
				return -1;
		} else if (node_is(n, "cmdline")) {
			if (node_text(n, def->cmdline, sizeof(def->cmdline), err))
				return -1;
			def->cmdline_set = true;
		} else if (node_is(n, "boot") || node_is(n, "bootmenu") ||
			   node_is(n, "loader") || node_is(n, "nvram") ||
			   node_is(n, "bios")) {
			note_add(def, "<os><%s> (foldvm boots the kernel directly, no firmware)",
				 (const char *)n->name);
		} else {
			note_add(def, "<os><%s> (not supported)", (const char *)n->name);
		}
	}
	if (!type_seen)
		return fv_err(err, FV_E_INVAL, "<os> has no <type> (hvm)");
	return 0;
}

/* ---- <devices> ---- */

/* Why foldvm cannot give the guest this kind of device. */
static const char *device_reason(const char *name)
{
	static const struct { const char *name, *why; } tab[] = {
		{ "disk", "one virtio disk backed by a file, at most" },
		{ "filesystem", "no shared file systems" },
		{ "interface", "one virtio interface on a tap (type='ethernet'), at most" },
		{ "graphics", "no display" },
		{ "video", "no display" },
		{ "input", "no input devices" },
		{ "sound", "no sound devices" },
		{ "audio", "no sound devices" },
		{ "controller", "no PCI, USB or storage buses" },
		{ "memballoon", "foldvm's balloon is virtio" },
		{ "hostdev", "no device assignment" },
		{ "watchdog", "no watchdog" },
		{ "channel", "no virtio-serial channels" },
		{ "rng", "no virtio-rng" },
		{ "tpm", "no TPM" },
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (!strcmp(name, tab[i].name))
			return tab[i].why;
	return "foldvm has no such device";
}

/* A device that is the same as foldvm's "none": nothing to lose. */
static bool device_is_absent(xmlNode *n)
{
	char model[32];
	char type[32];

	node_attr_or_empty(n, "model", model, sizeof(model));
	node_attr_or_empty(n, "type", type, sizeof(type));
	if ((node_is(n, "memballoon") || node_is(n, "watchdog")) &&
	    !strcmp(model, "none"))
		return true;
	if (node_is(n, "audio") && !strcmp(type, "none"))
		return true;
	/* libvirt adds a PCI root to every domain; with no PCI device
	 * behind it, a machine without PCI looks the same to the guest. */
	return node_is(n, "controller") &&
	       (!strcmp(model, "pci-root") || !strcmp(model, "pcie-root"));
}

/* Serial and console devices: foldvm has one 16550 (COM1, ttyS0). */
static void device_serial(xmlNode *n, struct domxml_def *def, unsigned *ports)
{
	bool is_console = node_is(n, "console");
	char port[16] = "";

	for (xmlNode *t = n->children; t; t = t->next)
		if (node_is(t, "target"))
			node_attr_or_empty(t, "port", port, sizeof(port));
	def->console = true;
	/* A <console> of a serial target is the same port as <serial>. */
	if (is_console)
		return;
	if ((port[0] && strcmp(port, "0")) || ++*ports > 1)
		note_add(def, "<serial> port %s (foldvm has one serial port, COM1)",
			 port[0] ? port : "2");
}

/* <memballoon model='virtio'>: virtio-balloon with free page reporting
 * (its <stats period> and <address> are libvirt's business). */
static bool device_is_virtio_balloon(xmlNode *n)
{
	char model[32];

	node_attr_or_empty(n, "model", model, sizeof(model));
	return !strcmp(model, "virtio");
}

/* <disk type='file' device='disk'>: a raw image on virtio-blk.  Other
 * kinds (block devices, CD-ROMs, network sources), a second disk or a
 * bus other than virtio are noted as unsupported. */
static int device_disk(xmlNode *n, struct domxml_def *def, struct fv_error *err)
{
	char type[16], device[16], bus[16] = "", format[16] = "";
	bool ro = false, present;

	node_attr_or_empty(n, "type", type, sizeof(type));
	node_attr_or_empty(n, "device", device, sizeof(device));
	if (strcmp(type, "file") || (device[0] && strcmp(device, "disk")) ||
	    def->disk[0]) {
		note_element(def, n, "one virtio disk backed by a file, at most");
		return 0;
	}
	for (xmlNode *c = n->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (node_is(c, "source")) {
			if (node_attr(c, "file", def->disk, sizeof(def->disk), &present, err) < 0)
				return -1;
		} else if (node_is(c, "readonly")) {
			ro = true;
		} else if (node_is(c, "target")) {
			node_attr_or_empty(c, "bus", bus, sizeof(bus));
		} else if (node_is(c, "driver")) {
			node_attr_or_empty(c, "type", format, sizeof(format));
		}
	}
	if (!def->disk[0])
		return fv_err(err, FV_E_INVAL, "<disk type='file'> has no <source file>");
	if (format[0] && strcmp(format, "raw"))
		return fv_err(err, FV_E_INVAL,
			      "<disk> image format '%s': foldvm reads raw images only", format);
	if (bus[0] && strcmp(bus, "virtio"))
		note_add(def, "<disk><target bus='%s'> (foldvm's disk is virtio-blk)", bus);
	def->disk_ro = ro;
	return 0;
}

/* <interface type='ethernet'>: virtio-net on the tap its <target dev>
 * names (made if it does not exist; fv-NAME without one), with its <mac
 * address>.  Other types (a libvirt network, a bridge, user mode,
 * macvtap), a second interface, a model other than virtio and a script
 * are noted as unsupported. */
static int device_interface(xmlNode *n, struct domxml_def *def,
			    struct fv_error *err)
{
	char type[16], model[16] = "";
	bool present;

	node_attr_or_empty(n, "type", type, sizeof(type));
	if (strcmp(type, "ethernet") || def->net) {
		note_element(def, n, "one virtio interface on a tap (type='ethernet'), at most");
		return 0;
	}
	def->net = true;
	for (xmlNode *c = n->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (node_is(c, "target")) {
			if (node_attr(c, "dev", def->net_tap, sizeof(def->net_tap),
				      &present, err) < 0)
				return -1;
		} else if (node_is(c, "mac")) {
			if (node_attr(c, "address", def->mac, sizeof(def->mac),
				      &present, err) < 0)
				return -1;
		} else if (node_is(c, "model")) {
			node_attr_or_empty(c, "type", model, sizeof(model));
		} else if (node_is(c, "script")) {
			note_add(def, "<interface><script> (foldvm runs no scripts: make the tap ready beforehand)");
		}
	}
	if (model[0] && strcmp(model, "virtio"))
		note_add(def, "<interface><model type='%s'> (foldvm's network device is virtio-net)",
			 model);
	return 0;
}

static int walk_devices(xmlNode *devs, struct domxml_def *def,
			struct fv_error *err)
{
	unsigned serial_ports = 0;

	for (xmlNode *n = devs->children; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (node_is(n, "emulator"))
			continue;   /* the emulator foldvm replaces */
		if (node_is(n, "serial") || node_is(n, "console"))
			device_serial(n, def, &serial_ports);
		else if (node_is(n, "memballoon") && device_is_virtio_balloon(n))
			def->balloon = true;
		else if (node_is(n, "disk")) {
			if (device_disk(n, def, err))
				return -1;
		} else if (node_is(n, "interface")) {
			if (device_interface(n, def, err))
				return -1;
		} else if (!device_is_absent(n))
			note_element(def, n, device_reason((const char *)n->name));
	}
	return 0;
}

/* ---- the rest of <domain> ---- */

static int walk_features(xmlNode *f, struct domxml_def *def,
			 struct fv_error *err)
{
	(void)err;
	for (xmlNode *n = f->children; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		/* Every foldvm guest has a local APIC and runs in long mode. */
		if (node_is(n, "apic") || node_is(n, "pae"))
			continue;
		if (node_is(n, "acpi"))
			note_add(def, "<features><acpi> (foldvm writes no ACPI tables)");
		else
			note_add(def, "<features><%s> (not supported)",
				 (const char *)n->name);
	}
	return 0;
}

static int walk_vcpu(xmlNode *n, struct domxml_def *def, struct fv_error *err)
{
	char text[16], attr[64];
	unsigned long v;
	char *end;

	if (node_text(n, text, sizeof(text), err))
		return -1;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (!isdigit((unsigned char)text[0]) || *end || errno || v == 0 || v > 4096)
		return fv_err(err, FV_E_INVAL, "<vcpu> '%s' is not a vCPU count", text);
	def->vcpus = (unsigned)v;
	node_attr_or_empty(n, "cpuset", attr, sizeof(attr));
	if (attr[0])
		note_add(def, "<vcpu cpuset='%s'> (foldvm does not pin vCPUs)", attr);
	node_attr_or_empty(n, "current", attr, sizeof(attr));
	if (attr[0] && strcmp(attr, text))
		note_add(def, "<vcpu current='%s'> (foldvm starts all %lu vCPUs)", attr, v);
	node_attr_or_empty(n, "placement", attr, sizeof(attr));
	if (attr[0] && strcmp(attr, "static"))
		note_add(def, "<vcpu placement='%s'> (no NUMA placement)", attr);
	return 0;
}

static int walk_cpu(xmlNode *n, struct domxml_def *def, struct fv_error *err)
{
	char mode[32];

	(void)err;
	node_attr_or_empty(n, "mode", mode, sizeof(mode));
	/* foldvm gives the guest what KVM supports of the host CPU. */
	if (!strcmp(mode, "host-passthrough") && !n->children)
		return 0;
	note_add(def, "<cpu mode='%s'> (foldvm passes the host CPU through)",
		 mode[0] ? mode : "custom");
	return 0;
}

static int walk_clock(xmlNode *n, struct domxml_def *def, struct fv_error *err)
{
	char offset[32];
	bool timers = false;

	(void)err;
	node_attr_or_empty(n, "offset", offset, sizeof(offset));
	for (xmlNode *c = n->children; c; c = c->next)
		timers |= c->type == XML_ELEMENT_NODE;
	if ((offset[0] && strcmp(offset, "utc")) || timers)
		note_add(def, "<clock offset='%s'>%s (the guest keeps UTC from kvm-clock)",
			 offset[0] ? offset : "utc", timers ? " with timers" : "");
	return 0;
}

/* on_poweroff / on_reboot / on_crash: foldvm ends the guest in each case. */
static int walk_lifecycle(xmlNode *n, struct domxml_def *def,
			  struct fv_error *err)
{
	char action[32];

	if (node_text(n, action, sizeof(action), err))
		return -1;
	if (strcmp(action, "destroy"))
		note_add(def, "<%s>%s</%s> (foldvm ends the guest)",
			 (const char *)n->name, action, (const char *)n->name);
	return 0;
}

static int walk_currentmemory(xmlNode *n, struct domxml_def *def,
			      struct fv_error *err)
{
	/* Checked against <memory> at the end (domxml_parse); below it, it is
	 * the balloon's target if <devices> has a balloon. */
	return parse_memory_element(n, &def->current_bytes, err);
}

static int walk_name(xmlNode *n, struct domxml_def *def, struct fv_error *err)
{
	if (node_text(n, def->name, sizeof(def->name), err))
		return -1;
	if (!def->name[0])
		return fv_err(err, FV_E_INVAL, "<name> is empty");
	return 0;
}

static int walk_uuid(xmlNode *n, struct domxml_def *def, struct fv_error *err)
{
	char text[64];

	return node_text(n, text, sizeof(text), err) ||
	       domxml_uuid(text, def->uuid, err);
}

static int walk_memory(xmlNode *n, struct domxml_def *def, struct fv_error *err)
{
	if (parse_memory_element(n, &def->mem_bytes, err))
		return -1;
	if (!def->mem_bytes)
		return fv_err(err, FV_E_INVAL, "<memory> is zero");
	return 0;
}

static int walk_ignore(xmlNode *n, struct domxml_def *def, struct fv_error *err)
{
	(void)n;
	(void)def;
	(void)err;
	return 0;
}

/* The children of <domain> foldvm reads, each at most once. */
static const struct {
	const char *name;
	domxml_walk_fn fn;
} domain_children[] = {
	{ "name", walk_name },
	{ "uuid", walk_uuid },
	{ "title", walk_ignore },
	{ "description", walk_ignore },
	{ "metadata", domxml_walk_metadata },
	{ "memory", walk_memory },
	{ "currentMemory", walk_currentmemory },
	{ "vcpu", walk_vcpu },
	{ "os", walk_os },
	{ "features", walk_features },
	{ "cpu", walk_cpu },
	{ "clock", walk_clock },
	{ "on_poweroff", walk_lifecycle },
	{ "on_reboot", walk_lifecycle },
	{ "on_crash", walk_lifecycle },
	{ "devices", walk_devices },
};

#define DOMAIN_CHILDREN (sizeof(domain_children) / sizeof(domain_children[0]))

static int walk_domain(xmlNode *root, struct domxml_def *def,
		       struct fv_error *err)
{
	bool seen[DOMAIN_CHILDREN] = { false };
	char type[32];

	node_attr_or_empty(root, "type", type, sizeof(type));
	if (strcmp(type, "kvm"))
		note_add(def, "<domain type='%s'> (foldvm always runs guests under KVM)", type);
	for (xmlNode *n = root->children; n; n = n->next) {
		size_t i;

		if (n->type != XML_ELEMENT_NODE)
			continue;
		for (i = 0; i < DOMAIN_CHILDREN; i++)
			if (node_is(n, domain_children[i].name))
				break;
		if (i == DOMAIN_CHILDREN) {
			note_add(def, "<%s> (not supported)", (const char *)n->name);
			continue;
		}
		if (seen[i])
			return fv_err(err, FV_E_INVAL, "<%s> appears twice",
				      domain_children[i].name);
		seen[i] = true;
		if (domain_children[i].fn(n, def, err))
			return -1;
	}
	if (!def->name[0])
		return fv_err(err, FV_E_INVAL, "the domain has no <name>");
	if (!def->uuid[0])
		return fv_err(err, FV_E_INVAL,
			      "domain '%s' has no <uuid> (foldvm locks each domain by its uuid; uuidgen makes one)",
			      def->name);
	if (!def->mem_bytes)
		return fv_err(err, FV_E_INVAL, "domain '%s' has no <memory>", def->name);
	if (!def->os_seen)
		return fv_err(err, FV_E_INVAL, "domain '%s' has no <os>", def->name);
	if (def->current_bytes > def->mem_bytes)
		return fv_err(err, FV_E_INVAL,
			      "<currentMemory> (%llu KiB) is more than <memory> (%llu KiB)",
			      (unsigned long long)(def->current_bytes >> 10),
			      (unsigned long long)(def->mem_bytes >> 10));
	if (def->current_bytes && def->current_bytes < def->mem_bytes && !def->balloon)
		note_add(def, "<currentMemory> %llu KiB below <memory> (no balloon: the guest gets all %llu KiB)",
			 (unsigned long long)(def->current_bytes >> 10),
			 (unsigned long long)(def->mem_bytes >> 10));
	return 0;
}

/* ---- documents ---- */

static xmlDoc *read_document(const char *xml, size_t len, struct fv_error *err)
{
	const xmlError *xe;
	xmlDoc *doc;

	if (len == 0) {
		fv_err(err, FV_E_INVAL, "the XML is empty");
		return NULL;
	}
	if (len > DOMXML_MAX) {
		fv_err(err, FV_E_INVAL, "the XML is larger than %u MiB", DOMXML_MAX >> 20);
		return NULL;
	}
	/* Refused before libxml2 reads a byte of it: no entity is ever
	 * declared, so none can be expanded (or loop). */
	if (memmem(xml, len, "<!DOCTYPE", 9)) {
		fv_err(err, FV_E_INVAL,
		       "the XML has a DOCTYPE; domain XML has none and foldvm accepts none");
		return NULL;
	}
	xmlInitParser();
	/* No NOENT (entities stay unexpanded), no DTDLOAD, no network. */
	doc = xmlReadMemory(xml, (int)len, "domain.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR |
			    XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
	if (!doc) {
		xe = xmlGetLastError();
		fv_err(err, FV_E_INVAL, "malformed XML at line %d: %.200s",
		       xe ? xe->line : 0, xe && xe->message ? xe->message : "?");
		/* libxml2's messages end in a newline. */
		err->msg[strcspn(err->msg, "\n")] = '\0';
		return NULL;
	}
	if (doc->intSubset || doc->extSubset) {
		xmlFreeDoc(doc);
		fv_err(err, FV_E_INVAL,
		       "the XML has a DOCTYPE; domain XML has none and foldvm accepts none");
		return NULL;
	}
	return doc;
}

static void def_init(struct domxml_def *def)
{
	memset(def, 0, sizeof(*def));
	def->vcpus = 1;
}

int domxml_parse(const char *xml, size_t len, struct domxml_def *def,
		 struct fv_error *err)
{
	xmlDoc *doc;
	xmlNode *root;
	int ret;

	def_init(def);
	doc = read_document(xml, len, err);
	if (!doc)
		return -1;
	root = xmlDocGetRootElement(doc);
	if (!root || !node_is(root, "domain") || root->ns)
		ret = fv_err(err, FV_E_INVAL, "the XML is not a libvirt <domain>");
	else
		ret = walk_domain(root, def, err);
	xmlFreeDoc(doc);
	return ret;
}

int domxml_parse_metadata(const char *xml, size_t len, struct domxml_def *def,
			  struct fv_error *err)
{
	xmlDoc *doc = read_document(xml, len, err);
	xmlNode *root;
	int ret;

	if (!doc)
		return -1;
	root = xmlDocGetRootElement(doc);
	if (!root || !(node_in_foldvm_ns(root) || !root->ns) ||
	    !node_is(root, DOMXML_ROOT))
		ret = fv_err(err, FV_E_INVAL,
			     "foldvm's metadata is not a <foldvm:vm> element of namespace %s",
			     DOMXML_NS);
	else
		ret = domxml_meta_vm(root, def, err);
	xmlFreeDoc(doc);
	return ret;
}

int domxml_find_foldvm(const char *xml, size_t len, char *name, size_t name_size,
		       bool *is_foldvm, struct fv_error *err)
{
	xmlDoc *doc = read_document(xml, len, err);
	xmlNode *root;

	*is_foldvm = false;
	if (name_size)
		name[0] = '\0';
	if (!doc)
		return -1;
	root = xmlDocGetRootElement(doc);
	if (!root || !node_is(root, "domain")) {
		xmlFreeDoc(doc);
		return fv_err(err, FV_E_INVAL, "the XML is not a libvirt <domain>");
	}
	for (xmlNode *n = root->children; n; n = n->next) {
		if (node_is(n, "name") && name_size && node_text(n, name, name_size, NULL))
			name[0] = '\0';
		if (!node_is(n, "metadata"))
			continue;
		for (xmlNode *m = n->children; m; m = m->next)
			*is_foldvm |= node_in_foldvm_ns(m) && node_is(m, DOMXML_ROOT);
	}
	xmlFreeDoc(doc);
	return 0;
}
