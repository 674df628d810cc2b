/*
 * fuzz_domxml.c - libFuzzer harness for libvirt domain XML.
 *
 * The input goes through the whole mapping a --domain-xml file gets
 * (parse, foldvm metadata, the --vm key checks, --strict), through the
 * metadata parser alone (what virDomainGetMetadata returns), and through
 * the libvirt hook's lenient look.  A crash, leak or UB report is a bug:
 * domain XML comes from outside.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "frontend/domain.h"
#include "frontend/domxml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vm_spec vm;
	static struct domxml_def def;
	struct fv_error err;
	char name[DOMXML_NAME_MAX + 1];
	bool is_foldvm;
	char *meta;

	for (int strict = 0; strict < 2; strict++) {
		if (domain_spec_from_xml((const char *)data, size, NULL, "fuzz", 0,
					 strict, &vm, &err) == 0 &&
		    (!vm.domain_xml || !vm.uuid[0]))
			abort();   /* a mapped domain always has both */
		domain_spec_free(&vm);
	}
	memset(&def, 0, sizeof(def));
	domxml_parse_metadata((const char *)data, size, &def, &err);
	domxml_find_foldvm((const char *)data, size, name, sizeof(name),
			   &is_foldvm, &err);
	/* The same bytes as libvirt's metadata string (NUL-terminated). */
	meta = malloc(size + 1);
	if (meta) {
		memcpy(meta, data, size);
		meta[size] = '\0';
		domain_spec_from_xml("<domain/>", 9, meta, "fuzz", 0, 0, &vm, &err);
		domain_spec_free(&vm);
		free(meta);
	}
	return 0;
}
