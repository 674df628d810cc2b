/*
 * domxml.h - a libvirt domain XML document read as a foldvm guest.
 *
 * The parser is a pure function on a buffer (libxml2, no network, no
 * entity expansion, no DTD): it says what the domain asks for, what foldvm
 * cannot honour (listed, never silently dropped), and what foldvm's own
 * metadata element says.  It knows nothing of libvirt connections, of the
 * command line or of guests, so the libvirt hook program can use it alone.
 *
 * foldvm's metadata lives in one element of one fixed namespace, the way
 * libvirt keeps application metadata (one element per namespace):
 *
 *   <metadata>
 *     <foldvm:vm xmlns:foldvm="https://foldvm.dev/xmlns/libvirt/domain/1.0">
 *       <foldvm:dedup enabled="yes" trust-domain="tenant-a" rate="20000"/>
 *       <foldvm:payload steps="fill+verify+wait" zero="25" shared="20"/>
 *     </foldvm:vm>
 *   </metadata>
 *
 * docs/libvirt.md is the reference for the mapping and the schema.
 */
#ifndef FOLDVM_DOMXML_H
#define FOLDVM_DOMXML_H

#include <limits.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dedup/dedup.h"
#include "lib/error.h"
#include "vmm/linux_boot.h"

#define DOMXML_NS "https://foldvm.dev/xmlns/libvirt/domain/1.0"
#define DOMXML_NS_PREFIX "foldvm"
#define DOMXML_ROOT "vm"                 /* <foldvm:vm> */
#define DOMXML_MAX (4u << 20)            /* largest document accepted */
#define DOMXML_NAME_MAX 64               /* libvirt allows longer; foldvm
					    checks its own rule later */
#define DOMXML_UUID_LEN 36               /* canonical 8-4-4-4-12 form */
#define DOMXML_PAYLOAD_MAX 10            /* <foldvm:payload> attributes */
#define DOMXML_VALUE_MAX 1024
#define DOMXML_NOTES_MAX 2048            /* text of the unsupported list */

struct domxml_kv {
	char key[16];
	char val[DOMXML_VALUE_MAX];
};

struct domxml_def {
	char name[DOMXML_NAME_MAX + 1];
	char uuid[DOMXML_UUID_LEN + 1];
	uint64_t mem_bytes;              /* <memory> */
	unsigned vcpus;                  /* <vcpu> (1 when absent, as libvirt) */
	char kernel[PATH_MAX];           /* <os><kernel>, "" = none */
	char initrd[PATH_MAX];
	char cmdline[LINUX_CMDLINE_MAX + 1];
	bool cmdline_set;
	bool console;                    /* a <serial> or <console> is there */
	char disk[PATH_MAX];             /* <disk type='file'> source, "" = none */
	bool disk_ro;                    /* its <readonly/> */
	bool balloon;                    /* <memballoon model='virtio'> */
	uint64_t current_bytes;          /* <currentMemory>, 0 = not given */
	bool net;                        /* <interface type='ethernet'> */
	char net_tap[IFNAMSIZ];          /* its <target dev>, "" = fv-NAME */
	char mac[24];                    /* its <mac address>, "" = default */
	bool os_seen;
	/* <metadata><foldvm:vm> */
	bool foldvm;                     /* the element is there */
	bool dedup_set;                  /* <foldvm:dedup> is there */
	bool dedup_enabled;
	char trust_domain[DEDUP_DOMAIN_MAX + 1];  /* "" = not given */
	uint64_t dedup_rate;             /* pages/s, 0 = not limited here */
	struct domxml_kv payload[DOMXML_PAYLOAD_MAX];  /* <foldvm:payload> */
	unsigned nr_payload;
	bool virtio_cmdline;             /* <foldvm:linux virtio-cmdline> */
	/* What foldvm cannot honour, "; "-separated, each with a reason. */
	char notes[DOMXML_NOTES_MAX];
	unsigned nr_notes;
};

/* Parse a whole <domain> document.  Malformed XML, a missing or bad
 * required element (name, uuid, memory, os type), wrong units or a bad
 * foldvm metadata element: -1 and one sentence in err. */
int domxml_parse(const char *xml, size_t len, struct domxml_def *def,
		 struct fv_error *err);

/* Parse the <foldvm:vm> element alone (what virDomainGetMetadata returns:
 * the element with its namespace stripped, or with it) into def's metadata
 * fields, replacing what they held. */
int domxml_parse_metadata(const char *xml, size_t len, struct domxml_def *def,
			  struct fv_error *err);

/* Lenient look for the libvirt hook: the domain's name and whether its
 * metadata holds <foldvm:vm>.  Nothing else is checked.  -1 only when the
 * document is not XML or not a <domain>. */
int domxml_find_foldvm(const char *xml, size_t len, char *name, size_t name_size,
		       bool *is_foldvm, struct fv_error *err);

/* libvirt's scaled integer: VALUE in UNIT ("KiB" when unit is NULL or ""),
 * b/bytes, KB=1000, k/KiB=1024, MB, M/MiB, ... up to E/EiB, any case. */
int domxml_scale(const char *value, const char *unit, uint64_t *bytes,
		 struct fv_error *err);

/* A uuid as libvirt accepts it (32 hex digits, '-' anywhere between
 * pairs), written out canonical and lower case. */
int domxml_uuid(const char *in, char out[DOMXML_UUID_LEN + 1],
		struct fv_error *err);

#endif
