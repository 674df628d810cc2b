/*
 * spec_text.c - a guest spec as text: numbers, sizes, booleans, one
 * key=value through the key's row (spec_set_kv), and a whole --vm spec
 * ("key=value,key=value", ",," a literal comma).  Untrusted input: every
 * value is bounded and checked, every problem one sentence.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "runner/spec.h"

#define CLI_MAX_SIZE (1ull << 40)

int spec_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
		    const char *what, struct fv_error *err)
{
	unsigned long long v = 0;
	char *end = NULL;
	bool ok = s && isdigit((unsigned char)*s);

	if (ok) {
		errno = 0;
		v = strtoull(s, &end, 10);
		ok = !*end && errno != ERANGE;
	}
	if (!ok)
		return fv_err(err, FV_E_INVAL, "%s%s'%s' is not a number",
			      what ? what : "", what ? " " : "", s ? s : "");
	if (v < min || v > max)
		return fv_err(err, FV_E_INVAL, "%s%s%llu is out of range %llu..%llu",
			      what ? what : "", what ? " " : "", v,
			      (unsigned long long)min, (unsigned long long)max);
	*out = v;
	return 0;
}

static int size_suffix_shift(const char *suffix, unsigned *shift)
{
	static const struct { const char *s; unsigned shift; } tab[] = {
		{ "", 20 }, { "B", 0 },
		{ "K", 10 }, { "KB", 10 }, { "KiB", 10 }, { "k", 10 },
		{ "M", 20 }, { "MB", 20 }, { "MiB", 20 }, { "m", 20 },
		{ "G", 30 }, { "GB", 30 }, { "GiB", 30 }, { "g", 30 },
		{ "T", 40 }, { "TB", 40 }, { "TiB", 40 }, { "t", 40 },
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		if (!strcmp(suffix, tab[i].s)) {
			*shift = tab[i].shift;
			return 0;
		}
	}
	return -1;
}

int spec_parse_size(const char *s, uint64_t *bytes, struct fv_error *err)
{
	unsigned long long v;
	unsigned shift;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		goto bad;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE || size_suffix_shift(end, &shift))
		goto bad;
	if (v > (CLI_MAX_SIZE >> shift))
		return fv_err(err, FV_E_INVAL, "size '%s' is larger than 1 TiB", s);
	*bytes = (uint64_t)v << shift;
	return 0;
bad:
	return fv_err(err, FV_E_INVAL,
		      "'%s' is not a size (examples: 256M, 1G, 65536K)", s ? s : "");
}

int spec_parse_bool(const char *s, bool *out, struct fv_error *err)
{
	if (!strcmp(s, "on") || !strcmp(s, "yes") || !strcmp(s, "1"))
		*out = true;
	else if (!strcmp(s, "off") || !strcmp(s, "no") || !strcmp(s, "0"))
		*out = false;
	else
		return fv_err(err, FV_E_INVAL, "must be on or off, not '%s'", s);
	return 0;
}

int spec_set_kv(struct vm_spec *vm, const char *key, const char *value,
		struct fv_error *err)
{
	const struct spec_key *k = spec_key_find(key);
	struct step steps[CLI_MAX_STEPS];
	unsigned nr;
	uint64_t x;
	bool b;

	if (!k)
		return fv_err(err, FV_E_INVAL, "unknown key '%s'", key);
	switch (k->type) {
	case SPEC_T_STR:
		return k->set_str(vm, value, err);
	case SPEC_T_UINT:
		return spec_parse_uint(value, 0, UINT64_MAX, &x, NULL, err) ||
		       k->set_uint(vm, x, err) ? -1 : 0;
	case SPEC_T_SIZE:
		return spec_parse_size(value, &x, err) ||
		       k->set_uint(vm, x, err) ? -1 : 0;
	case SPEC_T_BOOL:
		return spec_parse_bool(value, &b, err) ||
		       k->set_bool(vm, b, err) ? -1 : 0;
	case SPEC_T_STEPS:
		return spec_parse_steps(value, steps, &nr, err) ||
		       k->set_steps(vm, steps, nr, err) ? -1 : 0;
	}
	return fv_err(err, FV_E_INVAL, "key '%s' has no type", key);
}

const char *spec_field_kv(const char *key, char *buf, size_t len)
{
	snprintf(buf, len, "%s=", key);
	return buf;
}

/* ---- a whole --vm spec ---- */

char *spec_next_kv(char **cursor)
{
	char *start = *cursor, *out = start, *p = start;

	if (!*p)
		return NULL;
	while (*p) {
		if (*p == ',' && p[1] == ',') {
			*out++ = ',';
			p += 2;
		} else if (*p == ',') {
			p++;
			break;
		} else {
			*out++ = *p++;
		}
	}
	*out = '\0';
	*cursor = p;
	return start;
}

int spec_from_kv(const char *text, unsigned index, struct vm_spec *vm,
		 struct fv_error *err)
{
	char buf[CLI_SPEC_MAX], *cursor = buf, *tok;

	spec_defaults(vm, index);
	if (strlen(text) >= sizeof(buf))
		return fv_err(err, FV_E_INVAL, "--vm spec longer than %d bytes",
			      CLI_SPEC_MAX - 1);
	snprintf(buf, sizeof(buf), "%s", text);
	while ((tok = spec_next_kv(&cursor))) {
		char *eq = strchr(tok, '=');

		if (!eq || eq == tok)
			return fv_err(err, FV_E_INVAL,
				      "--vm: '%s' is not key=value", tok);
		*eq = '\0';
		if (spec_set_kv(vm, tok, eq + 1, err)) {
			fv_err_prefix(err, "--vm %s: ", tok);
			return -1;
		}
	}
	if (spec_finish(vm, spec_field_kv, err)) {
		fv_err_prefix(err, "--vm %s: ", vm->cfg.name);
		return -1;
	}
	return 0;
}
