/*
 * spec.c - one guest's spec: its typed setters, the table of its keys
 * (made from runner/spec_keys.h), its steps and defaults, and the checks
 * across fields (spec_finish).  Its text forms are spec_text.c's.
 * Untrusted input: every value is bounded and checked.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "guest-tools/content.h"
#include "lib/netname.h"
#include "lib/fileutil.h"
#include "runner/spec.h"
#include "runner/spec_keys.h"
#include "vmm/payload.h"

#define DEFAULT_SHARED_SEED 0x5eedf01dull

bool spec_name_ok(const char *name)
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

const char *step_name(enum step_kind kind)
{
	static const char *const names[] = {
		[STEP_FILL] = "fill", [STEP_VERIFY] = "verify",
		[STEP_CHURN] = "churn", [STEP_RACE] = "race",
		[STEP_MEASURE] = "measure", [STEP_SLEEP] = "sleep",
		[STEP_WAIT] = "wait", [STEP_FAULT] = "fault",
		[STEP_SYNC] = "sync", [STEP_MEASURE_MERGED] = "measure-merged",
		[STEP_SETTLE] = "settle",
		[STEP_MEASURE_MERGING] = "measure-merging",
		[STEP_SANDBOX_PROBE] = "sandbox-probe",
		[STEP_ECHO] = "echo",
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
	{ STEP_MEASURE_MERGING, false, 0, 0 },
	{ STEP_SANDBOX_PROBE, true, FV_PROBE_EXECVE, FV_PROBE_OPEN },
	{ STEP_ECHO, true, 1, 1000 },
};

static int parse_step(char *tok, struct step *st, struct fv_error *err)
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
		return spec_parse_uint(colon + 1, step_table[i].min,
				      step_table[i].max, &st->arg, tok, err);
	}
	return fv_err(err, FV_E_INVAL,
		      "unknown step '%s' (fill, verify, churn:N, race:N, measure, measure-merged, measure-merging, sleep:N, settle:N, wait, fault, sync)",
		      tok);
}

int spec_parse_steps(const char *s, struct step *steps, unsigned *nr,
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
		if (parse_step(tok, &steps[*nr], err))
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

void spec_defaults(struct vm_spec *vm, unsigned index)
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


/* ---- typed setters ---- */

static int check_range(uint64_t v, uint64_t min, uint64_t max,
		       struct fv_error *err)
{
	if (v < min || v > max)
		return fv_err(err, FV_E_INVAL, "%llu is out of range %llu..%llu",
			      (unsigned long long)v, (unsigned long long)min,
			      (unsigned long long)max);
	return 0;
}

/* A test-payload-only field was set (a Linux guest refuses them). */
static void note_payload(struct vm_spec *vm, const char *key)
{
	if (!vm->payload_key)
		vm->payload_key = key;
}

static int set_pct(struct vm_spec *vm, const char *key, uint32_t *field,
		   uint64_t pct, struct fv_error *err)
{
	if (check_range(pct, 0, 100, err))
		return -1;
	*field = (uint32_t)pct;
	note_payload(vm, key);
	return 0;
}

static int set_name_field(char *field, size_t size, const char *name,
			  struct fv_error *err)
{
	if (!spec_name_ok(name))
		return fv_err(err, FV_E_INVAL,
			      "'%s' must be 1-32 of [A-Za-z0-9._-]", name);
	snprintf(field, size, "%s", name);
	return 0;
}

int spec_set_name(struct vm_spec *vm, const char *name, struct fv_error *err)
{
	return set_name_field(vm->cfg.name, sizeof(vm->cfg.name), name, err);
}

int spec_set_domain(struct vm_spec *vm, const char *domain,
		    struct fv_error *err)
{
	return set_name_field(vm->cfg.domain, sizeof(vm->cfg.domain), domain, err);
}

int spec_set_mem(struct vm_spec *vm, uint64_t bytes, struct fv_error *err)
{
	if (gmem_check_size(bytes, err))
		return -1;
	vm->cfg.mem_size = bytes;
	return 0;
}

int spec_set_vcpus(struct vm_spec *vm, uint64_t n, struct fv_error *err)
{
	if (check_range(n, 1, FV_MAX_VCPUS, err))
		return -1;
	vm->cfg.nr_vcpus = (unsigned)n;
	return 0;
}

int spec_set_payload(struct vm_spec *vm, const char *path, struct fv_error *err)
{
	if (strlen(path) >= sizeof(vm->cfg.payload))
		return fv_err(err, FV_E_INVAL, "path too long");
	if (payload_check_file(path, err))
		return -1;
	snprintf(vm->cfg.payload, sizeof(vm->cfg.payload), "%s", path);
	note_payload(vm, "payload");
	return 0;
}

/* kernel= or initrd=: an existing regular file of a plausible size. */
static int set_boot_file(char *field, const char *path, uint64_t max,
			 const char *what, struct fv_error *err)
{
	if (strlen(path) >= PATH_MAX)
		return fv_err(err, FV_E_INVAL, "path too long");
	if (fv_check_file(path, max, what, NULL, err))
		return -1;
	snprintf(field, PATH_MAX, "%s", path);
	return 0;
}

int spec_set_kernel(struct vm_spec *vm, const char *path, struct fv_error *err)
{
	return set_boot_file(vm->cfg.kernel, path, LINUX_KERNEL_MAX, "kernel", err);
}

int spec_set_initrd(struct vm_spec *vm, const char *path, struct fv_error *err)
{
	return set_boot_file(vm->cfg.initrd, path, LINUX_INITRD_MAX, "initrd", err);
}

/* A raw disk image: a regular file of at least one sector, checked now
 * for a clear message (the device opens it when the guest is made). */
int spec_set_disk(struct vm_spec *vm, const char *path, struct fv_error *err)
{
	if (!path[0])
		return fv_err(err, FV_E_INVAL, "disk needs a path");
	return set_boot_file(vm->cfg.disk, path, UINT64_MAX, "disk image", err);
}

int spec_set_disk_ro(struct vm_spec *vm, bool on, struct fv_error *err)
{
	(void)err;
	vm->cfg.disk_ro = on;
	return 0;
}

int spec_set_balloon(struct vm_spec *vm, bool on, struct fv_error *err)
{
	(void)err;
	vm->cfg.balloon = on;
	return 0;
}

int spec_set_virtio_cmdline(struct vm_spec *vm, bool on, struct fv_error *err)
{
	(void)err;
	vm->cfg.virtio_cmdline = on;
	return 0;
}

int spec_set_net(struct vm_spec *vm, const char *value, struct fv_error *err)
{
	if (!strcmp(value, "tap")) {
		vm->cfg.net = true;
		vm->cfg.net_tap[0] = '\0';
		return 0;
	}
	if (strncmp(value, "tap:", 4))
		return fv_err(err, FV_E_INVAL,
			      "'%s' is not tap or tap:NAME (a tap device; docs/virtio.md)",
			      value);
	if (!fv_ifname_ok(value + 4))
		return fv_err(err, FV_E_INVAL,
			      "tap name '%s' must be 1-%d of [A-Za-z0-9._-] (an interface name)",
			      value + 4, IFNAMSIZ - 1);
	vm->cfg.net = true;
	snprintf(vm->cfg.net_tap, sizeof(vm->cfg.net_tap), "%s", value + 4);
	return 0;
}

int spec_set_mac(struct vm_spec *vm, const char *mac, struct fv_error *err)
{
	if (fv_mac_parse(mac, vm->cfg.mac, err))
		return -1;
	vm->cfg.mac_set = true;
	return 0;
}

int spec_set_cmdline(struct vm_spec *vm, const char *cmdline,
		     struct fv_error *err)
{
	if (strlen(cmdline) > LINUX_CMDLINE_MAX)
		return fv_err(err, FV_E_INVAL, "command line longer than %u bytes",
			      LINUX_CMDLINE_MAX);
	snprintf(vm->cfg.cmdline, sizeof(vm->cfg.cmdline), "%s", cmdline);
	vm->cmdline_set = true;
	return 0;
}

int spec_set_zero(struct vm_spec *vm, uint64_t pct, struct fv_error *err)
{
	return set_pct(vm, "zero", &vm->cfg.content.pct_zero, pct, err);
}

int spec_set_shared(struct vm_spec *vm, uint64_t pct, struct fv_error *err)
{
	return set_pct(vm, "shared", &vm->cfg.content.pct_shared, pct, err);
}

int spec_set_blob(struct vm_spec *vm, uint64_t pct, struct fv_error *err)
{
	if (set_pct(vm, "blob", &vm->cfg.content.pct_blob, pct, err))
		return -1;
	vm->blob_set = true;
	return 0;
}

int spec_set_pool(struct vm_spec *vm, uint64_t n, struct fv_error *err)
{
	if (check_range(n, 0, UINT32_MAX, err))
		return -1;
	vm->cfg.content.shared_pool = (uint32_t)n;
	note_payload(vm, "pool");
	return 0;
}

int spec_set_seed(struct vm_spec *vm, uint64_t seed, struct fv_error *err)
{
	(void)err;
	vm->cfg.content.shared_seed = seed;
	note_payload(vm, "seed");
	return 0;
}

int spec_set_layout(struct vm_spec *vm, const char *name, struct fv_error *err)
{
	static const char *const names[] = {
		[FV_LAYOUT_SCATTERED] = "scattered",
		[FV_LAYOUT_MIX] = "mix", [FV_LAYOUT_CLONES] = "clones",
	};

	for (uint32_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i])) {
			vm->cfg.content.layout = i;
			note_payload(vm, "layout");
			return 0;
		}
	return fv_err(err, FV_E_INVAL, "'%s' is not scattered, mix or clones",
		      name);
}

/* One step as spec_parse_steps would make it: a known kind, and its
 * argument in range (0 for a step without one). */
static int check_step(const struct step *st, struct fv_error *err)
{
	for (size_t i = 0; i < sizeof(step_table) / sizeof(step_table[0]); i++) {
		if (step_table[i].kind != st->kind)
			continue;
		if (!step_table[i].has_arg)
			return st->arg ? fv_err(err, FV_E_INVAL,
						"step '%s' takes no argument",
						step_name(st->kind)) : 0;
		if (st->arg < step_table[i].min || st->arg > step_table[i].max)
			return fv_err(err, FV_E_INVAL,
				      "%s %llu is out of range %llu..%llu",
				      step_name(st->kind),
				      (unsigned long long)st->arg,
				      (unsigned long long)step_table[i].min,
				      (unsigned long long)step_table[i].max);
		return 0;
	}
	return fv_err(err, FV_E_INVAL, "unknown step kind %d", (int)st->kind);
}

int spec_set_steps(struct vm_spec *vm, const struct step *steps, unsigned nr,
		   struct fv_error *err)
{
	if (nr == 0)
		return fv_err(err, FV_E_INVAL, "empty steps list");
	if (nr > CLI_MAX_STEPS)
		return fv_err(err, FV_E_INVAL, "more than %d steps", CLI_MAX_STEPS);
	for (unsigned i = 0; i < nr; i++)
		if (check_step(&steps[i], err))
			return -1;
	memcpy(vm->steps, steps, nr * sizeof(*steps));
	vm->nr_steps = nr;
	vm->steps_set = true;
	return 0;
}

int spec_set_console(struct vm_spec *vm, bool on, struct fv_error *err)
{
	(void)err;
	vm->cfg.console = on;
	return 0;
}

int spec_set_dedup(struct vm_spec *vm, bool on, struct fv_error *err)
{
	(void)err;
	vm->cfg.dedup = on;
	vm->dedup_set = true;
	return 0;
}

int spec_set_race_pages(struct vm_spec *vm, uint64_t n, struct fv_error *err)
{
	if (check_range(n, 1, 4096, err))
		return -1;
	vm->cfg.race_pages = (uint32_t)n;
	note_payload(vm, "race-pages");
	return 0;
}

int spec_set_probe_pages(struct vm_spec *vm, uint64_t n, struct fv_error *err)
{
	if (check_range(n, 1, 65536, err))
		return -1;
	vm->cfg.probe_pages = (uint32_t)n;
	note_payload(vm, "probe-pages");
	return 0;
}

/* ---- the keys (runner/spec_keys.h) ---- */

#define SETTER_STR(f)   .set_str = f
#define SETTER_UINT(f)  .set_uint = f
#define SETTER_SIZE(f)  .set_uint = f
#define SETTER_BOOL(f)  .set_bool = f
#define SETTER_STEPS(f) .set_steps = f
#define KEY_ROW(t, n, f, fl, a, h) \
	{ .name = n, .type = SPEC_T_##t, SETTER_##t(f), .flags = fl, .arg = a, \
	  .help = h },

const struct spec_key spec_keys[] = {
	SPEC_KEY_LIST(KEY_ROW)
	{ .name = NULL },
};

const struct spec_key *spec_key_find(const char *name)
{
	for (const struct spec_key *k = spec_keys; k->name; k++)
		if (!strcmp(k->name, name))
			return k;
	return NULL;
}

/* ---- across fields ---- */

/* A Linux guest: memory the boot layout allows, no test-payload settings,
 * and only the steps that do not talk to the test payload.  Any vCPU
 * count spec_set_vcpus takes: the MADT announces them all. */
static int check_linux(struct vm_spec *vm, spec_field_fn *field,
		       struct fv_error *err)
{
	struct guest_config *c = &vm->cfg;
	char a[64], b[64];

	if (!guest_config_is_linux(c)) {
		if (c->initrd[0] || vm->cmdline_set || c->virtio_cmdline)
			return fv_err(err, FV_E_INVAL, "%s needs %s",
				      field(c->initrd[0] ? "initrd" :
					    vm->cmdline_set ? "cmdline" : "virtio-cmdline",
					    a, sizeof(a)),
				      field("kernel", b, sizeof(b)));
		return 0;
	}
	if (vm->payload_key)
		return fv_err(err, FV_E_INVAL,
			      "%s is a test-payload setting; this guest boots a kernel",
			      field(vm->payload_key, a, sizeof(a)));
	if (c->mem_size < LINUX_MEM_MIN || c->mem_size > LINUX_MEM_MAX)
		return fv_err(err, FV_E_INVAL,
			      "%s must be %lluM..%lluG for a Linux guest",
			      field("mem", a, sizeof(a)), LINUX_MEM_MIN >> 20,
			      LINUX_MEM_MAX >> 30);
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

/* virtio-net: net=tap names its tap after the guest (known only now),
 * and a guest without mac= gets one derived from its name. */
static int finish_net(struct vm_spec *vm, spec_field_fn *field,
		      struct fv_error *err)
{
	struct guest_config *c = &vm->cfg;
	char a[64], b[64];

	if (!c->net) {
		if (c->mac_set)
			return fv_err(err, FV_E_INVAL, "%s needs %s",
				      field("mac", a, sizeof(a)),
				      field("net", b, sizeof(b)));
		return 0;
	}
	if (!c->net_tap[0])
		snprintf(c->net_tap, sizeof(c->net_tap), "fv-%.*s",
			 (int)sizeof(c->net_tap) - 4, c->name);
	if (!c->mac_set)
		fv_mac_default(c->name, c->mac);
	return 0;
}

int spec_finish(struct vm_spec *vm, spec_field_fn *field, struct fv_error *err)
{
	if (!field)
		field = spec_field_kv;
	if (!vm->blob_set)
		vm->cfg.content.pct_blob = 0; /* cli_parse decides, seeing --files */
	vm->cfg.content.unique_seed = name_hash(vm->cfg.name);
	/* clones: one layout for every guest of the same seed= */
	vm->cfg.content.layout_seed = fv_mix64(
		(vm->cfg.content.layout == FV_LAYOUT_CLONES ?
		 vm->cfg.content.shared_seed : name_hash(vm->cfg.name)) ^ 0x1a40u);
	if ((uint64_t)vm->cfg.content.pct_zero + vm->cfg.content.pct_shared +
	    vm->cfg.content.pct_blob > 100)
		return fv_err(err, FV_E_INVAL, "zero+shared+blob is more than 100%%");
	return finish_net(vm, field, err) || check_linux(vm, field, err) ? -1 : 0;
}

/* ---- across guests ---- */

static unsigned count_syncs(const struct vm_spec *vm)
{
	unsigned n = 0;

	for (unsigned i = 0; i < vm->nr_steps; i++)
		n += vm->steps[i].kind == STEP_SYNC;
	return n;
}

/* With sync steps the engine starts at the first sync (runner.c), so a
 * settle before it would wait for passes that cannot come. */
static int check_settle(const struct vm_spec *vm, struct fv_error *err)
{
	if (!count_syncs(vm))
		return 0;
	for (unsigned i = 0; vm->steps[i].kind != STEP_SYNC; i++)
		if (vm->steps[i].kind == STEP_SETTLE)
			return fv_err(err, FV_E_INVAL,
				      "guest %s: 'settle' before the first 'sync' would wait forever (the engine starts at the first sync)",
				      vm->cfg.name);
	return 0;
}

int spec_check_syncs(const struct vm_spec *vms, unsigned nr,
		     struct fv_error *err)
{
	for (unsigned i = 0; i < nr; i++)
		if (check_settle(&vms[i], err))
			return -1;
	for (unsigned i = 1; i < nr; i++)
		if (count_syncs(&vms[i]) != count_syncs(&vms[0]))
			return fv_err(err, FV_E_INVAL,
				      "guests %s and %s have different numbers of sync steps",
				      vms[0].cfg.name, vms[i].cfg.name);
	return 0;
}
