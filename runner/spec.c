/*
 * spec.c - one guest's spec: the key=value text of a --vm spec (also what
 * domain XML and vm-create are mapped onto), its steps, sizes and
 * defaults.  Untrusted input: every value is bounded and checked.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "guest-tools/content.h"
#include "lib/fileutil.h"
#include "runner/spec.h"
#include "vmm/payload.h"

#define CLI_MAX_SIZE (1ull << 40)
#define DEFAULT_SHARED_SEED 0x5eedf01dull

bool cli_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > GUEST_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '.' &&
		    name[i] != '_' && name[i] != '-')
			return false;
	return true;
}

int cli_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out,
		   const char *what, struct fv_error *err)
{
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return fv_err(err, FV_E_INVAL, "%s '%s' is not a number", what,
			      s ? s : "");
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end || errno == ERANGE)
		return fv_err(err, FV_E_INVAL, "%s '%s' is not a number", what, s);
	if (v < min || v > max)
		return fv_err(err, FV_E_INVAL, "%s %llu is out of range %llu..%llu",
			      what, v, (unsigned long long)min,
			      (unsigned long long)max);
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

int cli_parse_size(const char *s, uint64_t *bytes, struct fv_error *err)
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

const char *step_name(enum step_kind kind)
{
	static const char *const names[] = {
		[STEP_FILL] = "fill", [STEP_VERIFY] = "verify",
		[STEP_CHURN] = "churn", [STEP_RACE] = "race",
		[STEP_MEASURE] = "measure", [STEP_SLEEP] = "sleep",
		[STEP_WAIT] = "wait", [STEP_FAULT] = "fault",
		[STEP_SYNC] = "sync", [STEP_MEASURE_MERGED] = "measure-merged",
		[STEP_SETTLE] = "settle",
	};

	return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

/* name, whether it takes ":N", and N's range */
static const struct {
	enum step_kind kind;
	bool has_arg;
	uint64_t min, max;
} step_table[] = {
	{ STEP_FILL, false, 0, 0 },
	{ STEP_VERIFY, false, 0, 0 },
	{ STEP_CHURN, true, 1, 1ull << 32 },
	{ STEP_RACE, true, 1, 1ull << 32 },
	{ STEP_MEASURE, false, 0, 0 },
	{ STEP_SLEEP, true, 0, CLI_MAX_SECONDS },
	{ STEP_WAIT, false, 0, 0 },
	{ STEP_FAULT, false, 0, 0 },
	{ STEP_SYNC, false, 0, 0 },
	{ STEP_MEASURE_MERGED, false, 0, 0 },
	{ STEP_SETTLE, true, 1, 1000 },
};

static int cli_parse_step(char *tok, struct step *st, struct fv_error *err)
{
	char *colon = strchr(tok, ':');

	if (colon)
		*colon = '\0';
	for (size_t i = 0; i < sizeof(step_table) / sizeof(step_table[0]); i++) {
		if (strcmp(tok, step_name(step_table[i].kind)))
			continue;
		st->kind = step_table[i].kind;
		st->arg = 0;
		if (!step_table[i].has_arg) {
			if (colon)
				return fv_err(err, FV_E_INVAL,
					      "step '%s' takes no argument", tok);
			return 0;
		}
		if (!colon)
			return fv_err(err, FV_E_INVAL,
				      "step '%s' needs ':N' (e.g. %s:100)", tok, tok);
		return cli_parse_uint(colon + 1, step_table[i].min,
				      step_table[i].max, &st->arg, tok, err);
	}
	return fv_err(err, FV_E_INVAL,
		      "unknown step '%s' (fill, verify, churn:N, race:N, measure, measure-merged, sleep:N, settle:N, wait, fault, sync)",
		      tok);
}

int cli_parse_steps(const char *s, struct step *steps, unsigned *nr,
		    struct fv_error *err)
{
	char buf[CLI_SPEC_MAX], *save = NULL, *tok;

	if (strlen(s) >= sizeof(buf))
		return fv_err(err, FV_E_INVAL, "steps list too long");
	snprintf(buf, sizeof(buf), "%s", s);
	*nr = 0;
	for (tok = strtok_r(buf, "+", &save); tok; tok = strtok_r(NULL, "+", &save)) {
		/* "measure-merged" must not be taken for "measure". */
		if (*nr == CLI_MAX_STEPS)
			return fv_err(err, FV_E_INVAL, "more than %d steps",
				      CLI_MAX_STEPS);
		if (cli_parse_step(tok, &steps[*nr], err))
			return -1;
		(*nr)++;
	}
	if (*nr == 0)
		return fv_err(err, FV_E_INVAL, "empty steps list");
	return 0;
}

static uint64_t name_hash(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
	return h;
}

void cli_vm_defaults(struct vm_spec *vm, unsigned index)
{
	memset(vm, 0, sizeof(*vm));
	snprintf(vm->cfg.name, sizeof(vm->cfg.name), "vm%u", index);
	vm->cfg.mem_size = 128ull << 20;
	vm->cfg.nr_vcpus = 1;
	vm->cfg.content.pct_zero = 25;
	vm->cfg.content.pct_shared = 25;
	vm->cfg.content.pct_blob = 25;
	vm->cfg.content.shared_seed = DEFAULT_SHARED_SEED;
	vm->cfg.race_pages = GUEST_DEFAULT_RACE_PAGES;
	vm->cfg.probe_pages = GUEST_DEFAULT_PROBE_PAGES;
	vm->cfg.console = true;
	vm->steps[0].kind = STEP_FILL;
	vm->steps[1].kind = STEP_VERIFY;
	vm->nr_steps = 2;
}

static int cli_parse_onoff(const char *v, bool *out, const char *what,
			   struct fv_error *err)
{
	if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "0"))
		*out = false;
	else
		return fv_err(err, FV_E_INVAL, "%s must be on or off, not '%s'",
			      what, v);
	return 0;
}

static int cli_parse_u32(const char *v, uint64_t min, uint64_t max,
			 uint32_t *out, const char *what, struct fv_error *err)
{
	uint64_t x;

	if (cli_parse_uint(v, min, max, &x, what, err))
		return -1;
	*out = (uint32_t)x;
	return 0;
}

static int cli_vm_key(struct vm_spec *vm, const char *key, const char *val,
		      struct fv_error *err)
{
	struct guest_config *c = &vm->cfg;
	uint64_t x;

	if (!strcmp(key, "name")) {
		if (!cli_name_ok(val))
			return fv_err(err, FV_E_INVAL,
				      "name '%s' must be 1-32 of [A-Za-z0-9._-]", val);
		snprintf(c->name, sizeof(c->name), "%s", val);
	} else if (!strcmp(key, "mem")) {
		if (cli_parse_size(val, &c->mem_size, err))
			return -1;
		return gmem_check_size(c->mem_size, err);
	} else if (!strcmp(key, "vcpus")) {
		if (cli_parse_uint(val, 1, FV_MAX_VCPUS, &x, "vcpus", err))
			return -1;
		c->nr_vcpus = (unsigned)x;
	} else if (!strcmp(key, "payload")) {
		if (strlen(val) >= sizeof(c->payload))
			return fv_err(err, FV_E_INVAL, "payload path too long");
		if (payload_check_file(val, err))
			return -1;
		snprintf(c->payload, sizeof(c->payload), "%s", val);
	} else if (!strcmp(key, "kernel") || !strcmp(key, "initrd")) {
		bool is_kernel = !strcmp(key, "kernel");

		if (strlen(val) >= PATH_MAX)
			return fv_err(err, FV_E_INVAL, "path too long");
		if (fv_check_file(val, is_kernel ? LINUX_KERNEL_MAX : LINUX_INITRD_MAX,
				  key, NULL, err))
			return -1;
		snprintf(is_kernel ? c->kernel : c->initrd, PATH_MAX, "%s", val);
	} else if (!strcmp(key, "cmdline")) {
		if (strlen(val) > LINUX_CMDLINE_MAX)
			return fv_err(err, FV_E_INVAL, "command line longer than %u bytes",
				      LINUX_CMDLINE_MAX);
		snprintf(c->cmdline, sizeof(c->cmdline), "%s", val);
	} else if (!strcmp(key, "zero")) {
		return cli_parse_u32(val, 0, 100, &c->content.pct_zero, "zero", err);
	} else if (!strcmp(key, "shared")) {
		return cli_parse_u32(val, 0, 100, &c->content.pct_shared, "shared", err);
	} else if (!strcmp(key, "blob")) {
		return cli_parse_u32(val, 0, 100, &c->content.pct_blob, "blob", err);
	} else if (!strcmp(key, "pool")) {
		return cli_parse_u32(val, 0, UINT32_MAX, &c->content.shared_pool,
				     "pool", err);
	} else if (!strcmp(key, "seed")) {
		return cli_parse_uint(val, 0, UINT64_MAX, &c->content.shared_seed,
				      "seed", err);
	} else if (!strcmp(key, "steps")) {
		return cli_parse_steps(val, vm->steps, &vm->nr_steps, err);
	} else if (!strcmp(key, "console")) {
		return cli_parse_onoff(val, &c->console, "console", err);
	} else if (!strcmp(key, "dedup")) {
		return cli_parse_onoff(val, &c->dedup, "dedup", err);
	} else if (!strcmp(key, "domain")) {
		if (!cli_name_ok(val))
			return fv_err(err, FV_E_INVAL,
				      "domain '%s' must be 1-32 of [A-Za-z0-9._-]", val);
		snprintf(c->domain, sizeof(c->domain), "%s", val);
	} else if (!strcmp(key, "race-pages")) {
		return cli_parse_u32(val, 1, 4096, &c->race_pages, "race-pages", err);
	} else if (!strcmp(key, "probe-pages")) {
		return cli_parse_u32(val, 1, 65536, &c->probe_pages, "probe-pages", err);
	} else {
		return fv_err(err, FV_E_INVAL, "unknown key '%s'", key);
	}
	return 0;
}

char *cli_spec_next(char **cursor)
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

/* Keys that only mean something to foldvm's test payload. */
static const char *const payload_keys[] = {
	"payload", "zero", "shared", "blob", "pool", "seed", "race-pages",
	"probe-pages",
};

static void cli_note_key(struct vm_spec *vm, const char *key)
{
	if (!strcmp(key, "blob"))
		vm->blob_set = true;
	if (!strcmp(key, "dedup"))
		vm->dedup_set = true;
	if (!strcmp(key, "steps"))
		vm->steps_set = true;
	if (!strcmp(key, "cmdline"))
		vm->cmdline_set = true;
	for (size_t i = 0; i < sizeof(payload_keys) / sizeof(payload_keys[0]); i++)
		if (!vm->payload_key && !strcmp(key, payload_keys[i]))
			vm->payload_key = payload_keys[i];
}

/* A Linux guest: one vCPU, memory the boot layout allows, no test-payload
 * settings, and only the steps that do not talk to the test payload. */
static int cli_check_linux(struct vm_spec *vm, struct fv_error *err)
{
	struct guest_config *c = &vm->cfg;

	if (!guest_config_is_linux(c)) {
		if (c->initrd[0] || vm->cmdline_set)
			return fv_err(err, FV_E_INVAL, "%s= needs kernel=",
				      c->initrd[0] ? "initrd" : "cmdline");
		return 0;
	}
	if (vm->payload_key)
		return fv_err(err, FV_E_INVAL,
			      "%s= is a test-payload setting; this guest boots a kernel",
			      vm->payload_key);
	if (c->nr_vcpus != 1)
		return fv_err(err, FV_E_INVAL,
			      "a Linux guest boots with 1 vCPU (foldvm writes no MP or ACPI tables to announce more)");
	if (c->mem_size < LINUX_MEM_MIN || c->mem_size > LINUX_MEM_MAX)
		return fv_err(err, FV_E_INVAL, "a Linux guest needs mem=%lluM..%lluM",
			      LINUX_MEM_MIN >> 20, LINUX_MEM_MAX >> 20);
	if (!vm->cmdline_set)
		snprintf(c->cmdline, sizeof(c->cmdline), "%s", CLI_DEFAULT_CMDLINE);
	if (!vm->steps_set) {
		vm->steps[0].kind = STEP_WAIT;
		vm->nr_steps = 1;
	}
	for (unsigned i = 0; i < vm->nr_steps; i++) {
		enum step_kind k = vm->steps[i].kind;

		if (k != STEP_SLEEP && k != STEP_WAIT && k != STEP_SYNC &&
		    k != STEP_SETTLE)
			return fv_err(err, FV_E_INVAL,
				      "step '%s' needs foldvm's test payload; a Linux guest may only sleep, settle, wait and sync",
				      step_name(k));
	}
	return 0;
}

int cli_vm_set(struct vm_spec *vm, const char *key, const char *val,
	       struct fv_error *err)
{
	cli_note_key(vm, key);
	return cli_vm_key(vm, key, val, err);
}

int cli_vm_finish(struct vm_spec *vm, struct fv_error *err)
{
	if (!vm->blob_set)
		vm->cfg.content.pct_blob = 0; /* cli_parse decides, seeing --files */
	vm->cfg.content.unique_seed = name_hash(vm->cfg.name);
	vm->cfg.content.layout_seed = fv_mix64(name_hash(vm->cfg.name) ^ 0x1a40u);
	if ((uint64_t)vm->cfg.content.pct_zero + vm->cfg.content.pct_shared +
	    vm->cfg.content.pct_blob > 100)
		return fv_err(err, FV_E_INVAL, "zero+shared+blob is more than 100%%");
	return cli_check_linux(vm, err);
}

int cli_parse_vm(const char *spec, unsigned index, struct vm_spec *vm,
		 struct fv_error *err)
{
	char buf[CLI_SPEC_MAX], *cursor = buf, *tok;

	cli_vm_defaults(vm, index);
	if (strlen(spec) >= sizeof(buf))
		return fv_err(err, FV_E_INVAL, "--vm spec longer than %d bytes",
			      CLI_SPEC_MAX - 1);
	snprintf(buf, sizeof(buf), "%s", spec);
	while ((tok = cli_spec_next(&cursor))) {
		char *eq = strchr(tok, '=');

		if (!eq || eq == tok)
			return fv_err(err, FV_E_INVAL,
				      "--vm: '%s' is not key=value", tok);
		*eq = '\0';
		if (cli_vm_set(vm, tok, eq + 1, err)) {
			fv_err_prefix(err, "--vm %s: ", tok);
			return -1;
		}
	}
	if (cli_vm_finish(vm, err)) {
		fv_err_prefix(err, "--vm %s: ", vm->cfg.name);
		return -1;
	}
	return 0;
}
