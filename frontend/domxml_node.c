/*
 * domxml_node.c - what domxml.c reads a domain XML document with: element
 * and attribute accessors over libxml2 that bound every text again, the
 * list of notes (what foldvm does not honour), and the value parsers
 * (sizes with units, UUIDs, on/off, <memory>).  Everything they read came
 * from outside.
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

/* ---- small helpers over libxml2 ---- */

bool node_is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

bool node_in_foldvm_ns(const xmlNode *n)
{
	return n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
	       !strcmp((const char *)n->ns->href, DOMXML_NS);
}

/* An element's text, bounded; "" for an empty element. */
int node_text(xmlNode *n, char *out, size_t size, struct fv_error *err)
{
	xmlChar *s = xmlNodeGetContent(n);
	size_t len = s ? strlen((const char *)s) : 0;

	if (len >= size) {
		xmlFree(s);
		return fv_err(err, FV_E_INVAL, "<%s> is longer than %zu bytes",
			      (const char *)n->name, size - 1);
	}
	memcpy(out, s ? (const char *)s : "", len + 1);
	xmlFree(s);
	return 0;
}

/* An attribute (no namespace), bounded; false when absent. */
int node_attr(xmlNode *n, const char *attr, char *out, size_t size,
	      bool *present, struct fv_error *err)
{
	xmlChar *s = xmlGetNoNsProp(n, (const xmlChar *)attr);
	size_t len;

	*present = s != NULL;
	out[0] = '\0';
	if (!s)
		return 0;
	len = strlen((const char *)s);
	if (len >= size) {
		xmlFree(s);
		return fv_err(err, FV_E_INVAL, "<%s %s=...> is longer than %zu bytes",
			      (const char *)n->name, attr, size - 1);
	}
	memcpy(out, s, len + 1);
	xmlFree(s);
	return 0;
}

/* The attribute's value, or "" when absent or too long to matter. */
void node_attr_or_empty(xmlNode *n, const char *attr, char *out,
			size_t size)
{
	bool present;

	if (node_attr(n, attr, out, size, &present, NULL))
		out[0] = '\0';
}

/* Add one item to the unsupported list; a full list ends in "...". */
void note_add(struct domxml_def *def, const char *fmt, ...)
{
	size_t used = strlen(def->notes), left = sizeof(def->notes) - used;
	char item[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(item, sizeof(item), fmt, ap);
	va_end(ap);
	def->nr_notes++;
	if (strstr(def->notes, "; ..."))
		return;
	if (strlen(item) + 2 + 6 >= left) {
		snprintf(def->notes + used, left, "; ...");
		return;
	}
	snprintf(def->notes + used, left, "%s%s", used ? "; " : "", item);
}

/* "<disk type='file'>" for a note; the type attribute says which kind. */
void note_element(struct domxml_def *def, xmlNode *n, const char *why)
{
	char type[32];

	node_attr_or_empty(n, "type", type, sizeof(type));
	if (type[0])
		note_add(def, "<%s type='%s'> (%s)", (const char *)n->name, type, why);
	else
		note_add(def, "<%s> (%s)", (const char *)n->name, why);
}

/* ---- values ---- */

int domxml_scale(const char *value, const char *unit, uint64_t *bytes,
		 struct fv_error *err)
{
	static const char powers[] = "kmgtpe";
	unsigned long long v;
	uint64_t scale = 1, base;
	const char *p;
	char *end;

	if (!value || !isdigit((unsigned char)*value))
		return fv_err(err, FV_E_INVAL, "'%s' is not a whole number",
			      value ? value : "");
	errno = 0;
	v = strtoull(value, &end, 10);
	if (errno == ERANGE || *end)
		return fv_err(err, FV_E_INVAL, "'%s' is not a whole number", value);
	if (!unit || !*unit)
		unit = "KiB";
	if (!strcasecmp(unit, "b") || !strcasecmp(unit, "byte") ||
	    !strcasecmp(unit, "bytes")) {
		*bytes = v;
		return 0;
	}
	if (!unit[1] || !strcasecmp(unit + 1, "iB"))
		base = 1024;
	else if ((unit[1] == 'b' || unit[1] == 'B') && !unit[2])
		base = 1000;
	else
		goto bad_unit;
	p = strchr(powers, tolower((unsigned char)unit[0]));
	if (!p || !unit[0])
		goto bad_unit;
	for (const char *q = powers; q <= p; q++)
		scale *= base;
	if (v > UINT64_MAX / scale)
		return fv_err(err, FV_E_INVAL, "%s %s does not fit in 64 bits",
			      value, unit);
	*bytes = v * scale;
	return 0;
bad_unit:
	return fv_err(err, FV_E_INVAL,
		      "unit '%s' is not one libvirt knows (b, KB, KiB, MB, MiB, GB, GiB, TB, TiB, ...)",
		      unit);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int domxml_uuid(const char *in, char out[DOMXML_UUID_LEN + 1],
		struct fv_error *err)
{
	unsigned char b[16];
	const char *p = in;
	unsigned i = 0;

	while (*p == ' ')
		p++;
	while (i < 16) {
		int hi, lo;

		if (*p == '-' && i > 0) {
			p++;
			continue;
		}
		hi = hexval((unsigned char)p[0]);
		lo = hi < 0 ? -1 : hexval((unsigned char)p[1]);
		if (hi < 0 || lo < 0)
			goto bad;
		b[i++] = (unsigned char)(hi << 4 | lo);
		p += 2;
	}
	while (*p == ' ')
		p++;
	if (*p)
		goto bad;
	snprintf(out, DOMXML_UUID_LEN + 1,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
bad:
	return fv_err(err, FV_E_INVAL,
		      "<uuid> '%.40s' is not a uuid (32 hex digits, e.g. 4dea22b3-1d52-d8f3-2516-782e98ab3fa0)",
		      in);
}

int parse_onoff(const char *v, bool *out, const char *what,
		struct fv_error *err)
{
	if (!strcmp(v, "yes") || !strcmp(v, "on"))
		*out = true;
	else if (!strcmp(v, "no") || !strcmp(v, "off"))
		*out = false;
	else
		return fv_err(err, FV_E_INVAL, "%s must be yes or no, not '%s'",
			      what, v);
	return 0;
}

/* A scaled <memory>-like element: its text in its unit attribute. */
int parse_memory_element(xmlNode *n, uint64_t *bytes,
			 struct fv_error *err)
{
	char text[64], unit[16];
	bool present;

	if (node_text(n, text, sizeof(text), err) ||
	    node_attr(n, "unit", unit, sizeof(unit), &present, err))
		goto fail;
	if (domxml_scale(text, unit, bytes, err))
		goto fail;
	return 0;
fail:
	fv_err_prefix(err, "<%s>: ", (const char *)n->name);
	return -1;
}
