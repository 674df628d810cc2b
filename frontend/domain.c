/*
 * domain.c - libvirt domain XML onto a foldvm guest spec (see domain.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "frontend/domain.h"
#include "frontend/domxml.h"
#include "lib/fileutil.h"
#include "frontend/libvirt_src.h"

/* The spec keeps a domain's uuid and notes whole. */
_Static_assert(SPEC_UUID_LEN == DOMXML_UUID_LEN, "uuid length");
_Static_assert(SPEC_NOTES_MAX >= DOMXML_NOTES_MAX, "notes length");

/* r is a setter's result for the field that `element` holds: on failure,
 * the message names the element. */
static int mapped(int r, const char *element, struct fv_error *err)
{
	if (r)
		fv_err_prefix(err, "%s: ", element);
	return r ? -1 : 0;
}

/* <interface type='ethernet'>: net=tap:DEV (net=tap without a <target
 * dev>), mac= from its <mac address>. */
static int map_interface(const struct domxml_def *def, struct vm_spec *vm,
			 struct fv_error *err)
{
	char net[IFNAMSIZ + 8];

	snprintf(net, sizeof(net), "tap%s%s", def->net_tap[0] ? ":" : "",
		 def->net_tap);
	if (mapped(spec_set_net(vm, net, err), "<interface><target dev>", err))
		return -1;
	return def->mac[0] ?
	       mapped(spec_set_mac(vm, def->mac, err), "<interface><mac address>", err) : 0;
}

/* The <domain> part: name, memory, vCPUs, kernel, disk, interface,
 * console. */
static int map_domain(const struct domxml_def *def, struct vm_spec *vm,
		      struct fv_error *err)
{
	if (mapped(spec_set_name(vm, def->name, err), "<name>", err) ||
	    mapped(spec_set_mem(vm, def->mem_bytes, err), "<memory>", err) ||
	    mapped(spec_set_vcpus(vm, def->vcpus, err), "<vcpu>", err))
		return -1;
	if (def->kernel[0] &&
	    mapped(spec_set_kernel(vm, def->kernel, err), "<os><kernel>", err))
		return -1;
	if (def->initrd[0] &&
	    mapped(spec_set_initrd(vm, def->initrd, err), "<os><initrd>", err))
		return -1;
	if (def->cmdline_set &&
	    mapped(spec_set_cmdline(vm, def->cmdline, err), "<os><cmdline>", err))
		return -1;
	if (def->virtio_cmdline &&
	    mapped(spec_set_virtio_cmdline(vm, true, err),
		   "<foldvm:linux virtio-cmdline>", err))
		return -1;
	if (def->disk[0] &&
	    (mapped(spec_set_disk(vm, def->disk, err), "<disk><source file>", err) ||
	     mapped(spec_set_disk_ro(vm, def->disk_ro, err), "<disk><readonly>", err)))
		return -1;
	if (def->balloon) {
		if (mapped(spec_set_balloon(vm, true, err), "<memballoon>", err))
			return -1;
		/* libvirt's <currentMemory> is the balloon's target. */
		if (def->current_bytes < def->mem_bytes)
			vm->cfg.balloon_target = def->current_bytes;
	}
	if (def->net && map_interface(def, vm, err))
		return -1;
	return mapped(spec_set_console(vm, def->console, err), "<serial>", err);
}

/* Is k an attribute of <foldvm:payload>: a --vm key of the test payload? */
static bool payload_attr(const char *k)
{
	const struct spec_key *key = spec_key_find(k);

	return key && (key->flags & SPEC_K_PAYLOAD);
}

/* "<foldvm:payload> has no attribute 'K' (steps, zero, ...)" */
static int bad_payload_attr(const char *k, struct fv_error *err)
{
	char list[256] = "";
	size_t n = 0;

	for (const struct spec_key *key = spec_keys; key->name; key++)
		if ((key->flags & SPEC_K_PAYLOAD) && n < sizeof(list))
			n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
					      n ? ", " : "", key->name);
	return fv_err(err, FV_E_INVAL, "<foldvm:payload> has no attribute '%s' (%s)",
		      k, list);
}

/* The <foldvm:vm> part: dedup settings and the test payload, whose
 * attributes are the text of the --vm keys of the same names. */
static int map_metadata(const struct domxml_def *def, struct vm_spec *vm,
			struct fv_error *err)
{
	if (def->dedup_set &&
	    mapped(spec_set_dedup(vm, def->dedup_enabled, err),
		   "<foldvm:dedup enabled>", err))
		return -1;
	if (def->trust_domain[0] &&
	    mapped(spec_set_domain(vm, def->trust_domain, err),
		   "<foldvm:dedup trust-domain>", err))
		return -1;
	vm->cfg.dedup_rate = def->dedup_rate;
	for (unsigned i = 0; i < def->nr_payload; i++) {
		const struct domxml_kv *kv = &def->payload[i];
		char element[48];

		if (!payload_attr(kv->key))
			return bad_payload_attr(kv->key, err);
		snprintf(element, sizeof(element), "<foldvm:payload %s>", kv->key);
		if (mapped(spec_set_kv(vm, kv->key, kv->val, err), element, err))
			return -1;
	}
	return 0;
}

/* What spec_finish() calls a field: the element or attribute it came
 * from. */
static const char *xml_field(const char *key, char *buf, size_t len)
{
	static const struct { const char *key, *element; } tab[] = {
		{ "mem", "<memory>" }, { "vcpus", "<vcpu>" },
		{ "kernel", "<os><kernel>" }, { "initrd", "<os><initrd>" },
		{ "cmdline", "<os><cmdline>" }, { "disk", "<disk><source file>" },
		{ "net", "<interface>" }, { "mac", "<interface><mac address>" },
		{ "virtio-cmdline", "<foldvm:linux virtio-cmdline>" },
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (!strcmp(key, tab[i].key))
			return tab[i].element;
	snprintf(buf, len, "<foldvm:payload %s>", key);
	return buf;
}

static int map_def(const struct domxml_def *def, bool strict,
		   struct vm_spec *vm, struct fv_error *err)
{
	if (!def->kernel[0] && !def->nr_payload)
		return fv_err(err, FV_E_INVAL,
			      "nothing to run: no <os><kernel> and no <foldvm:payload> in its metadata");
	if (map_domain(def, vm, err) || map_metadata(def, vm, err) ||
	    spec_finish(vm, xml_field, err))
		return -1;
	snprintf(vm->uuid, sizeof(vm->uuid), "%s", def->uuid);
	snprintf(vm->notes, sizeof(vm->notes), "%s", def->notes);
	if (strict && def->nr_notes)
		return fv_err(err, FV_E_INVAL,
			      "--strict: foldvm cannot honour %u setting%s: %s",
			      def->nr_notes, def->nr_notes == 1 ? "" : "s", def->notes);
	return 0;
}

/* The work of domain_spec_from_xml on a vm already reset to defaults. */
static int map_xml(const char *xml, size_t len, const char *metadata,
		   const char *origin, bool strict, struct vm_spec *vm,
		   struct fv_error *err)
{
	struct domxml_def *def = calloc(1, sizeof(*def));
	int ret = -1;

	if (!def)
		return fv_err(err, FV_E_NOMEM, "domain XML");
	if (domxml_parse(xml, len, def, err) ||
	    (metadata && domxml_parse_metadata(metadata, strlen(metadata), def, err)))
		goto out;
	if (map_def(def, strict, vm, err)) {
		fv_err_prefix(err, "domain '%s': ", def->name);
		goto out;
	}
	vm->domain_xml = strndup(xml, len);
	if (!vm->domain_xml) {
		fv_err(err, FV_E_NOMEM, "domain XML");
		goto out;
	}
	snprintf(vm->origin, sizeof(vm->origin), "%s", origin);
	ret = 0;
out:
	free(def);
	if (ret)
		fv_err_prefix(err, "%s: ", origin);
	return ret;
}

/* Each entry point resets vm first, so that domain_spec_free() is right
 * for it whatever fails. */
int domain_spec_from_xml(const char *xml, size_t len, const char *metadata,
			 const char *origin, unsigned index, bool strict,
			 struct vm_spec *vm, struct fv_error *err)
{
	spec_defaults(vm, index);
	return map_xml(xml, len, metadata, origin, strict, vm, err);
}

void domain_spec_free(struct vm_spec *vm)
{
	free(vm->domain_xml);
	vm->domain_xml = NULL;
}

int domain_spec_from_file(const char *path, unsigned index, bool strict,
			  struct vm_spec *vm, struct fv_error *err)
{
	uint8_t *buf;
	size_t len;
	int ret;

	spec_defaults(vm, index);
	if (fv_read_file(path, DOMXML_MAX, "domain XML", &buf, &len, err))
		return -1;
	ret = map_xml((const char *)buf, len, NULL, path, strict, vm, err);
	free(buf);
	return ret;
}

int domain_spec_from_libvirt(const char *uri, const char *name, unsigned index,
			     bool strict, struct vm_spec *vm,
			     struct fv_error *err)
{
	struct lv_domain lv;
	char origin[PATH_MAX];
	int ret = -1;

	spec_defaults(vm, index);
	if (lv_fetch_domain(uri, name, &lv, err) == 0) {
		snprintf(origin, sizeof(origin), "%s domain %s", uri, name);
		ret = map_xml(lv.xml, strlen(lv.xml), lv.metadata, origin,
			      strict, vm, err);
	}
	lv_domain_free(&lv);
	return ret;
}
