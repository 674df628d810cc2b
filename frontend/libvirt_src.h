/*
 * libvirt_src.h - fetch a domain definition from a libvirt connection.
 *
 * Read-only: foldvm asks libvirt what a domain looks like and never
 * changes it.  Only this file (and what links it) depends on libvirt.
 */
#ifndef FOLDVM_LIBVIRT_SRC_H
#define FOLDVM_LIBVIRT_SRC_H

#include <stdbool.h>
#include "lib/error.h"

struct lv_domain {
	char *xml;       /* virDomainGetXMLDesc (inactive definition) */
	char *metadata;  /* virDomainGetMetadata of foldvm's namespace, or NULL */
	bool active;     /* libvirt runs it right now */
};

/* Open `uri` read-only, look `name` up and fetch its XML and foldvm
 * metadata.  A domain libvirt itself runs now is refused (two VMMs on one
 * domain's disks corrupt them).  lv_domain_free() in every case. */
int lv_fetch_domain(const char *uri, const char *name, struct lv_domain *out,
		    struct fv_error *err);
void lv_domain_free(struct lv_domain *d);

#endif
