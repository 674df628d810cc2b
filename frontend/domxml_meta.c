/*
 * domxml_meta.c - foldvm's own element of a domain's <metadata>,
 * <foldvm:vm> (docs/libvirt.md): <foldvm:dedup>, <foldvm:payload> and
 * <foldvm:linux>, each bounded and checked as domxml.c checks the rest of
 * the domain.  Other applications' metadata is theirs: it is skipped.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libxml/tree.h>
#include "frontend/domxml_int.h"

static int meta_dedup(xmlNode *n, struct domxml_def *def, struct fv_error *err)
{
	def->dedup_set = true;
	def->dedup_enabled = true;   /* <foldvm:dedup/> alone means on */
	for (xmlAttr *a = n->properties; a; a = a->next) {
		const char *k = (const char *)a->name;
		char v[64];
		bool present;

		if (node_attr(n, k, v, sizeof(v), &present, err))
			return -1;
		if (!strcmp(k, "enabled")) {
			if (parse_onoff(v, &def->dedup_enabled,
					"<foldvm:dedup enabled>", err))
				return -1;
		} else if (!strcmp(k, "trust-domain")) {
			if (!*v || strlen(v) > DEDUP_DOMAIN_MAX)
				return fv_err(err, FV_E_INVAL,
					      "<foldvm:dedup trust-domain> must be 1-%d characters",
					      DEDUP_DOMAIN_MAX);
			memcpy(def->trust_domain, v, strlen(v) + 1);
		} else if (!strcmp(k, "rate")) {
			char *end;

			errno = 0;
			def->dedup_rate = strtoull(v, &end, 10);
			if (!isdigit((unsigned char)*v) || *end || errno)
				return fv_err(err, FV_E_INVAL,
					      "<foldvm:dedup rate> must be pages per second, not '%s'",
					      v);
		} else {
			return fv_err(err, FV_E_INVAL,
				      "<foldvm:dedup> has no attribute '%s' (enabled, trust-domain, rate)",
				      k);
		}
	}
	return 0;
}

/* <foldvm:payload>'s attributes are --vm keys: which ones, and their
 * values, are checked where they become a spec (domain.c). */
static int meta_payload(xmlNode *n, struct domxml_def *def, struct fv_error *err)
{
	def->nr_payload = 0;
	for (xmlAttr *a = n->properties; a; a = a->next) {
		const char *k = (const char *)a->name;
		struct domxml_kv *kv;
		bool present;

		if (strlen(k) >= sizeof(def->payload[0].key))  /* no key is as long */
			return fv_err(err, FV_E_INVAL, "<foldvm:payload> has no attribute '%s'", k);
		if (def->nr_payload == DOMXML_PAYLOAD_MAX)
			return fv_err(err, FV_E_INVAL, "<foldvm:payload> has too many attributes");
		kv = &def->payload[def->nr_payload++];
		snprintf(kv->key, sizeof(kv->key), "%s", k);
		if (node_attr(n, k, kv->val, sizeof(kv->val), &present, err))
			return -1;
	}
	/* Presence alone says: run the test payload (even with defaults). */
	if (!def->nr_payload) {
		snprintf(def->payload[0].key, sizeof(def->payload[0].key), "steps");
		snprintf(def->payload[0].val, sizeof(def->payload[0].val), "fill+verify");
		def->nr_payload = 1;
	}
	return 0;
}

/* <foldvm:linux virtio-cmdline="on|off">: a kernel guest's settings that
 * libvirt's <os> has no word for (the --vm key of the same name). */
static int meta_linux(xmlNode *n, struct domxml_def *def, struct fv_error *err)
{
	for (xmlAttr *a = n->properties; a; a = a->next) {
		const char *k = (const char *)a->name;
		char v[16];
		bool present;

		if (strcmp(k, "virtio-cmdline"))
			return fv_err(err, FV_E_INVAL,
				      "<foldvm:linux> has no attribute '%s' (virtio-cmdline)", k);
		if (node_attr(n, k, v, sizeof(v), &present, err) ||
		    parse_onoff(v, &def->virtio_cmdline, "<foldvm:linux virtio-cmdline>", err))
			return -1;
	}
	return 0;
}

static void meta_reset(struct domxml_def *def)
{
	def->foldvm = false;
	def->dedup_set = false;
	def->dedup_enabled = false;
	def->trust_domain[0] = '\0';
	def->dedup_rate = 0;
	def->nr_payload = 0;
	def->virtio_cmdline = false;
}

/* <foldvm:vm>: foldvm's element; its children are foldvm's own schema,
 * so a typo is an error rather than a silently ignored setting.
 * virDomainGetMetadata hands the element back with its namespace
 * stripped (the caller chose it), so then its children have none either. */
int domxml_meta_vm(xmlNode *vm, struct domxml_def *def, struct fv_error *err)
{
	bool seen_dedup = false, seen_payload = false, seen_linux = false;
	bool stripped = !vm->ns;

	meta_reset(def);
	def->foldvm = true;
	for (xmlNode *n = vm->children; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (stripped ? n->ns != NULL : !node_in_foldvm_ns(n))
			return fv_err(err, FV_E_INVAL,
				      "<foldvm:vm> holds <%s> from another namespace",
				      (const char *)n->name);
		if (node_is(n, "dedup") && !seen_dedup) {
			seen_dedup = true;
			if (meta_dedup(n, def, err))
				return -1;
		} else if (node_is(n, "payload") && !seen_payload) {
			seen_payload = true;
			if (meta_payload(n, def, err))
				return -1;
		} else if (node_is(n, "linux") && !seen_linux) {
			seen_linux = true;
			if (meta_linux(n, def, err))
				return -1;
		} else {
			return fv_err(err, FV_E_INVAL,
				      "<foldvm:vm> may hold one <foldvm:dedup>, one <foldvm:payload> and one <foldvm:linux>, not <foldvm:%s>%s",
				      (const char *)n->name,
				      seen_dedup || seen_payload || seen_linux ? " twice" : "");
		}
	}
	return 0;
}

int domxml_walk_metadata(xmlNode *md, struct domxml_def *def,
			 struct fv_error *err)
{
	for (xmlNode *n = md->children; n; n = n->next) {
		/* Other applications' metadata is theirs: not ours to judge. */
		if (!node_in_foldvm_ns(n))
			continue;
		if (!node_is(n, DOMXML_ROOT))
			return fv_err(err, FV_E_INVAL,
				      "foldvm's metadata element is <foldvm:vm>, not <foldvm:%s>",
				      (const char *)n->name);
		if (def->foldvm)
			return fv_err(err, FV_E_INVAL, "<metadata> holds <foldvm:vm> twice");
		if (domxml_meta_vm(n, def, err))
			return -1;
	}
	return 0;
}
