/*
 * domxml_int.h - the bounded accessors over libxml2 and the value parsers
 * (domxml_node.c) that the domain-XML mapping (domxml.c, and
 * domxml_meta.c for foldvm's metadata) is built on.  Private to
 * frontend/domxml*.c.
 */
#ifndef FOLDVM_FRONTEND_DOMXML_INT_H
#define FOLDVM_FRONTEND_DOMXML_INT_H

#include <libxml/tree.h>
#include "frontend/domxml.h"

bool node_is(const xmlNode *n, const char *name);

bool node_in_foldvm_ns(const xmlNode *n);

/* An element's text, bounded; "" for an empty element. */
int node_text(xmlNode *n, char *out, size_t size, struct fv_error *err);

/* An attribute (no namespace), bounded; false when absent. */
int node_attr(xmlNode *n, const char *attr, char *out, size_t size,
	      bool *present, struct fv_error *err);

/* The attribute's value, or "" when absent or too long to matter. */
void node_attr_or_empty(xmlNode *n, const char *attr, char *out,
			size_t size);

/* Add one item to the unsupported list; a full list ends in "...". */
void note_add(struct domxml_def *def, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* "<disk type='file'>" for a note; the type attribute says which kind. */
void note_element(struct domxml_def *def, xmlNode *n, const char *why);

int parse_onoff(const char *v, bool *out, const char *what,
		struct fv_error *err);

/* A scaled <memory>-like element: its text in its unit attribute. */
int parse_memory_element(xmlNode *n, uint64_t *bytes,
			 struct fv_error *err);

/* domxml_meta.c: <foldvm:vm> (the element itself), and a <metadata>
 * element holding it among other applications' (domxml.c walks them). */
int domxml_meta_vm(xmlNode *vm, struct domxml_def *def, struct fv_error *err);
int domxml_walk_metadata(xmlNode *md, struct domxml_def *def,
			 struct fv_error *err);

#endif
