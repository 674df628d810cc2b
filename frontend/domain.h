/*
 * domain.h - guests defined by libvirt domain XML: from a file
 * (--domain-xml) or from a libvirt connection (--libvirt URI --domain NAME).
 *
 * The XML is mapped onto the same key=value settings a --vm spec uses, so
 * every value passes the same checks and gets the same defaults; what
 * foldvm cannot honour is kept as a list (vm_spec.notes) that main prints,
 * and that --strict turns into a refusal.
 */
#ifndef FOLDVM_DOMAIN_H
#define FOLDVM_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include "runner/spec.h"

/* Map one domain document (and, when it came from libvirt, the foldvm
 * metadata element libvirt returned, else NULL) onto *vm.  origin names
 * where it came from in messages.  vm->domain_xml is a malloc()ed copy of
 * the document (domain_spec_free). */
int domain_spec_from_xml(const char *xml, size_t len, const char *metadata,
			 const char *origin, unsigned index, bool strict,
			 struct vm_spec *vm, struct fv_error *err);
void domain_spec_free(struct vm_spec *vm);

/* Read FILE (at most DOMXML_MAX bytes) and map it. */
int domain_spec_from_file(const char *path, unsigned index, bool strict,
			  struct vm_spec *vm, struct fv_error *err);

/* Fetch NAME from the libvirt connection URI (read-only) and map it, with
 * the foldvm metadata read through virDomainGetMetadata. */
int domain_spec_from_libvirt(const char *uri, const char *name, unsigned index,
			     bool strict, struct vm_spec *vm,
			     struct fv_error *err);

#endif
