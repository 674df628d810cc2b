/*
 * libvirt_src.c - a domain's definition through the libvirt API.
 */
#include <stdlib.h>
#include <string.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include "frontend/domxml.h"
#include "frontend/libvirt_src.h"

/* libvirt prints every error to stderr unless told otherwise; foldvm puts
 * the message into its own error instead. */
static void lv_quiet(void *opaque, virErrorPtr e)
{
	(void)opaque;
	(void)e;
}

static int lv_error(struct fv_error *err, const char *what, const char *arg)
{
	const char *msg = virGetLastErrorMessage();

	return fv_err(err, FV_E_IO, "libvirt: %s %s: %s", what, arg,
		      msg ? msg : "unknown error");
}

/* libvirt's strings are malloc()ed; the NULL from a failure stays NULL. */
static int lv_fetch_metadata(virDomainPtr dom, const char *name,
			     struct lv_domain *out, struct fv_error *err)
{
	virErrorPtr e;

	out->metadata = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
					     DOMXML_NS, 0);
	if (out->metadata)
		return 0;
	e = virGetLastError();
	/* No foldvm element: a plain domain, run with foldvm's defaults. */
	if (e && e->code == VIR_ERR_NO_DOMAIN_METADATA) {
		virResetLastError();
		return 0;
	}
	return lv_error(err, "reading foldvm metadata of domain", name);
}

int lv_fetch_domain(const char *uri, const char *name, struct lv_domain *out,
		    struct fv_error *err)
{
	virConnectPtr conn;
	virDomainPtr dom = NULL;
	int ret = -1, active;

	memset(out, 0, sizeof(*out));
	if (virInitialize() < 0)
		return fv_err(err, FV_E_SYS, "libvirt: virInitialize failed");
	virSetErrorFunc(NULL, lv_quiet);
	conn = virConnectOpenReadOnly(uri);
	if (!conn)
		return lv_error(err, "cannot connect to", uri);
	dom = virDomainLookupByName(conn, name);
	if (!dom) {
		lv_error(err, "no domain", name);
		fv_err_prefix(err, "%s: ", uri);
		goto out;
	}
	active = virDomainIsActive(dom);
	if (active < 0) {
		lv_error(err, "cannot tell whether libvirt runs domain", name);
		goto out;
	}
	out->active = active == 1;
	if (out->active) {
		fv_err(err, FV_E_STATE,
		       "%s: domain '%s' is running under libvirt itself; foldvm will not start it a second time",
		       uri, name);
		goto out;
	}
	out->xml = virDomainGetXMLDesc(dom, 0);
	if (!out->xml) {
		lv_error(err, "cannot get the XML of domain", name);
		goto out;
	}
	ret = lv_fetch_metadata(dom, name, out, err);
out:
	if (dom)
		virDomainFree(dom);
	virConnectClose(conn);
	return ret;
}

void lv_domain_free(struct lv_domain *d)
{
	free(d->xml);
	free(d->metadata);
	d->xml = d->metadata = NULL;
}
