/*
 * libvirt_hook.c - foldvm-libvirt-hook, a libvirt qemu hook (qemu.d).
 *
 * libvirtd runs it as `foldvm-libvirt-hook NAME OP SUBOP EXTRA` with the
 * domain XML on stdin, at every lifecycle point of every domain its QEMU
 * driver handles.  A domain whose metadata holds <foldvm:vm> runs under
 * foldvm; if libvirt's QEMU driver started it as well, two VMMs would run
 * one guest on one disk image and corrupt it.  So at `prepare begin` such
 * a domain is refused (exit 1: libvirt aborts the start and shows our
 * stderr); every other call, and every other domain, passes untouched.
 *
 * libvirt forbids calling back into libvirt from a hook (its daemon would
 * deadlock waiting on itself), so this program does not even link libvirt:
 * everything it needs is on stdin.
 *
 * foldvm runs the same hook directory for its own guests (so that this
 * hook is called for foldvm's starts too); it sets FOLDVM_VERSION in the
 * hooks' environment, and those calls pass: foldvm starting the domain is
 * exactly what the metadata asks for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "frontend/domxml.h"

#define EXIT_PASS 0
#define EXIT_REFUSE 1
#define EXIT_USAGE 2

/* Read all of stdin: libvirt writes the whole document and must not see
 * a broken pipe.  Up to DOMXML_MAX bytes are kept; *len > DOMXML_MAX
 * says there was more. */
static char *read_stdin(size_t *len)
{
	char *buf = malloc(DOMXML_MAX + 1);
	char sink[65536];
	ssize_t n;

	*len = 0;
	if (!buf)
		return NULL;
	while ((n = read(STDIN_FILENO, *len <= DOMXML_MAX ? buf + *len : sink,
			 *len <= DOMXML_MAX ? DOMXML_MAX + 1 - *len : sizeof(sink))) > 0)
		*len += (size_t)n;
	return buf;
}

int main(int argc, char **argv)
{
	char name[DOMXML_NAME_MAX + 1];
	struct fv_error err = { 0 };
	bool is_foldvm = false;
	size_t len;
	char *xml;

	if (argc < 4) {
		fprintf(stderr,
			"usage: %s NAME OP SUBOP [EXTRA] < domain.xml\n"
			"a libvirt qemu hook (install it into /etc/libvirt/hooks/qemu.d/):\n"
			"at 'prepare begin' it refuses domains that run under foldvm\n",
			argv[0]);
		return EXIT_USAGE;
	}
	xml = read_stdin(&len);
	if (strcmp(argv[2], "prepare") || strcmp(argv[3], "begin") ||
	    getenv("FOLDVM_VERSION"))
		goto pass;
	/* Unreadable XML cannot be told apart; libvirt wrote it, so it is
	 * not expected, and blocking every domain for it would be worse. */
	if (!xml || len > DOMXML_MAX ||
	    domxml_find_foldvm(xml, len, name, sizeof(name), &is_foldvm, &err)) {
		fprintf(stderr, "foldvm-libvirt-hook: domain %s: cannot read its XML (%s); letting it start\n",
			argv[1], xml && len <= DOMXML_MAX ? err.msg : "too large");
		goto pass;
	}
	if (!is_foldvm)
		goto pass;
	fprintf(stderr,
		"foldvm-libvirt-hook: domain '%s' runs under foldvm (its <metadata> holds <foldvm:vm xmlns:foldvm=\"%s\">); "
		"libvirt's QEMU driver must not start it as well (two VMMs on one disk image corrupt it). "
		"Start it with: foldvm run --libvirt qemu:///system --domain %s\n",
		name[0] ? name : argv[1], DOMXML_NS, name[0] ? name : argv[1]);
	free(xml);
	return EXIT_REFUSE;
pass:
	free(xml);
	return EXIT_PASS;
}
