/*
 * cli.c - the command line: `foldvm run`, `foldvm demo`, --help,
 * --version.  The options are one table (cli_opts[], in the manner of
 * kvmtool's parse-options) that gives their parsing, checks and --help;
 * the --vm keys' help comes from the spec's key table (runner/spec_keys.h).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "frontend/cli.h"
#include "frontend/domain.h"
#include "control/metrics.h"
#include "control/qmp_client.h"

static const char cli_usage_head[] =
"Usage: foldvm run [OPTIONS] --vm SPEC [--vm SPEC]...\n"
"       foldvm run [OPTIONS] --domain-xml FILE [--domain-xml FILE]...\n"
"       foldvm run [OPTIONS] --libvirt URI --domain NAME [--domain NAME]...\n"
"       foldvm demo [OPTIONS]\n"
"       foldvm --help | --version\n"
"\n"
"Runs KVM guests (foldvm's test payload or a Linux kernel) whose memory\n"
"foldvm can deduplicate.\n"
"\n"
"--vm SPEC is a comma-separated list of key=value (',,' is a literal comma):\n";

static void cli_defaults(struct cli_args *cl)
{
	struct cli_options *opt = &cl->opt;
	const char *tmp = getenv("TMPDIR");

	memset(cl, 0, sizeof(*cl));
	cl->demo.guests = 4;
	cl->demo.mem = 128ull << 20;
	cl->demo.vcpus = 1;
	cl->demo.seconds = 3;
	snprintf(opt->log_dir, sizeof(opt->log_dir), "%s/foldvm-%u",
		 tmp && *tmp == '/' ? tmp : "/tmp", (unsigned)getuid());
	qmpc_default_run_dir(opt->run_dir, sizeof(opt->run_dir));
	hooks_config_init(&opt->hooks);
	/* Beside the default control sockets whatever --run-dir says: every
	 * foldvm of the host must see the same locks. */
	qmpc_default_run_dir(opt->lock_dir, sizeof(opt->lock_dir) - 16);
	strcat(opt->lock_dir, "/domains");
}

/* "--opt VALUE" or "--opt=VALUE"; advances *i past what it used. */
static int cli_option_value(int argc, char *const argv[], int *i,
			    const char *opt, const char **val, struct fv_error *err)
{
	const char *arg = argv[*i];
	size_t n = strlen(opt);

	if (arg[n] == '=') {
		*val = arg + n + 1;
		return 0;
	}
	if (*i + 1 >= argc)
		return fv_err(err, FV_E_INVAL, "%s needs a value", opt);
	*val = argv[++*i];
	return 0;
}

static bool cli_is_option(const char *arg, const char *opt)
{
	size_t n = strlen(opt);

	return !strncmp(arg, opt, n) && (arg[n] == '\0' || arg[n] == '=');
}

/* Take the guest at opt->vms[opt->nr_vms] (filled by the caller): names
 * are unique. */
static int cli_commit_vm(struct cli_options *opt, struct fv_error *err)
{
	struct vm_spec *vm = &opt->vms[opt->nr_vms];

	for (unsigned i = 0; i < opt->nr_vms; i++)
		if (!strcmp(opt->vms[i].cfg.name, vm->cfg.name))
			return fv_err(err, FV_E_INVAL,
				      "two guests are named '%s'", vm->cfg.name);
	opt->nr_vms++;
	return 0;
}

static int cli_add_vm(struct cli_options *opt, const char *spec,
		      struct fv_error *err)
{
	if (opt->nr_vms == CLI_MAX_VMS)
		return fv_err(err, FV_E_INVAL, "at most %d guests", CLI_MAX_VMS);
	if (spec_from_kv(spec, opt->nr_vms, &opt->vms[opt->nr_vms], err))
		return -1;
	return cli_commit_vm(opt, err);
}

/* Map domain number k of --domain-xml, then --libvirt/--domain, into the
 * next free slot and take it.  Two definitions of one uuid would be one
 * domain run twice. */
static int cli_add_domain(struct cli_options *opt, unsigned k,
			  struct vm_spec *vm, struct fv_error *err)
{
	int r;

	if (k < opt->nr_domain_files)
		r = domain_spec_from_file(opt->domain_files[k], opt->nr_vms,
					  opt->strict, vm, err);
	else
		r = domain_spec_from_libvirt(opt->libvirt_uri,
					     opt->libvirt_domains[k - opt->nr_domain_files],
					     opt->nr_vms, opt->strict, vm, err);
	if (r)
		return -1;
	for (unsigned i = 0; i < opt->nr_vms; i++)
		if (!strcmp(opt->vms[i].uuid, vm->uuid))
			return fv_err(err, FV_E_INVAL,
				      "%s and %s define the same domain (uuid %s)",
				      opt->vms[i].origin, vm->origin, vm->uuid);
	return cli_commit_vm(opt, err);
}

/* The guests of --domain-xml and --libvirt/--domain, after the --vm ones. */
static int cli_add_domains(struct cli_options *opt, struct fv_error *err)
{
	unsigned total = opt->nr_domain_files + opt->nr_libvirt_domains;

	for (unsigned k = 0; k < total; k++) {
		struct vm_spec *vm = &opt->vms[opt->nr_vms];

		if (opt->nr_vms == CLI_MAX_VMS)
			return fv_err(err, FV_E_INVAL, "at most %d guests", CLI_MAX_VMS);
		if (cli_add_domain(opt, k, vm, err)) {
			domain_spec_free(vm);   /* the slot was not taken */
			return -1;
		}
	}
	return 0;
}

void cli_options_free(struct cli_options *opt)
{
	for (unsigned i = 0; i < CLI_MAX_VMS; i++)
		domain_spec_free(&opt->vms[i]);
}

/* ---- the options: one table gives parsing, checks and --help ---- */

#define CMD_RUN  (1u << CLI_RUN)
#define CMD_DEMO (1u << CLI_DEMO)
#define CMD_ALL  (CMD_RUN | CMD_DEMO)

enum cli_opt_kind {
	OPT_HEADING,    /* a heading of --help's option list */
	OPT_SET,        /* no value: sets a bool field to .value */
	OPT_UNSIGNED,   /* a decimal number in min..max, into an unsigned field */
	OPT_U64,        /* the same, into a uint64_t field */
	OPT_MEM,        /* a size of guest RAM, into a uint64_t field */
	OPT_PATH,       /* an absolute path into a char[max] field, leaving
			   room for min more bytes (names put under it) */
	OPT_CALLBACK,   /* .fn takes it (val is NULL when .arg is NULL) */
};

struct cli_opt {
	enum cli_opt_kind kind;
	const char *name;       /* "--dedup-rate"; OPT_HEADING: the heading */
	const char *arg;        /* --help's word for the value; NULL: none */
	unsigned cmds;          /* CMD_*: the commands that take it */
	size_t field;           /* offsetof its field in struct cli_args */
	bool value;             /* OPT_SET */
	uint64_t min, max;      /* OPT_UNSIGNED, OPT_U64, OPT_PATH */
	int (*fn)(struct cli_options *opt, const char *val, struct fv_error *err);
	const char *help;       /* '\n'-separated lines; NULL: not listed */
};

/* offsetof(struct cli_args, f) (f is opt.NAME or demo.NAME), refused
 * at compile time unless the field has the type the row writes. */
#define CLI_FIELD(f, type) (offsetof(struct cli_args, f) + \
	0 * sizeof(_Generic(((struct cli_args *)0)->f, type: 1)))
#define OPT_HEAD(text) { .kind = OPT_HEADING, .name = text }
#define OPT_FLAG(n, c, f, v, h) { .kind = OPT_SET, .name = n, .cmds = c, \
	.field = CLI_FIELD(f, bool), .value = v, .help = h }
#define OPT_UINT(n, a, c, f, lo, hi, h) { .kind = OPT_UNSIGNED, .name = n, \
	.arg = a, .cmds = c, .field = CLI_FIELD(f, unsigned), .min = lo, \
	.max = hi, .help = h }
#define OPT_UINT64(n, a, c, f, lo, hi, h) { .kind = OPT_U64, .name = n, \
	.arg = a, .cmds = c, .field = CLI_FIELD(f, uint64_t), .min = lo, \
	.max = hi, .help = h }
#define OPT_DIR(n, a, c, f, room, h) { .kind = OPT_PATH, .name = n, \
	.arg = a, .cmds = c, .field = CLI_FIELD(f, char *), .min = room, \
	.max = sizeof(((struct cli_args *)0)->f), .help = h }
#define OPT_SIZE(n, a, c, f, h) { .kind = OPT_MEM, .name = n, .arg = a, \
	.cmds = c, .field = CLI_FIELD(f, uint64_t), .help = h }
#define OPT_FN(n, a, c, f, h) { .kind = OPT_CALLBACK, .name = n, .arg = a, \
	.cmds = c, .fn = f, .help = h }

static int opt_log_dir(struct cli_options *opt, const char *val,
		       struct fv_error *err)
{
	if (!*val || strlen(val) >= sizeof(opt->log_dir) - GUEST_NAME_MAX - 8)
		return fv_err(err, FV_E_INVAL, "--log-dir: bad directory name");
	snprintf(opt->log_dir, sizeof(opt->log_dir), "%s", val);
	return 0;
}

static int opt_files(struct cli_options *opt, const char *val,
		     struct fv_error *err)
{
	if (opt->nr_files == CLI_MAX_FILES)
		return fv_err(err, FV_E_INVAL, "at most %d --files", CLI_MAX_FILES);
	if (access(val, R_OK) < 0)
		return fv_err_errno(err, FV_E_INVAL, errno, "--files %s", val);
	opt->files[opt->nr_files++] = val;
	return 0;
}

static int opt_image_dir(struct cli_options *opt, const char *val,
			 struct fv_error *err)
{
	if (opt->nr_image_dirs == CLI_MAX_FILES)
		return fv_err(err, FV_E_INVAL, "at most %d --image-dir", CLI_MAX_FILES);
	if (*val != '/' || strlen(val) >= PATH_MAX)
		return fv_err(err, FV_E_INVAL, "--image-dir needs an absolute path");
	opt->image_dirs[opt->nr_image_dirs++] = val;
	return 0;
}

/* The index of val among names[0..n), or -1 with "NAME: 'val' is none
 * of a, b, c". */
static int opt_choice(const char *name, const char *val,
		      const char *const *names, unsigned n, struct fv_error *err)
{
	char list[64] = "";
	size_t len = 0;

	for (unsigned k = 0; k < n; k++) {
		if (!strcmp(val, names[k]))
			return (int)k;
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
					k ? ", " : "", names[k]);
	}
	fv_err(err, FV_E_INVAL, "%s: '%s' is none of %s", name, val, list);
	return -1;
}

static int opt_console(struct cli_options *opt, const char *val,
		       struct fv_error *err)
{
	static const char *const names[] = {
		[CONSOLE_AUTO] = "auto", [CONSOLE_STDIO] = "stdio",
		[CONSOLE_NONE] = "none",
	};
	int k = opt_choice("--console", val, names, sizeof(names) / sizeof(names[0]), err);

	if (k < 0)
		return -1;
	opt->console = (enum console_mode)k;
	return 0;
}

static int opt_sandbox(struct cli_options *opt, const char *val,
		       struct fv_error *err)
{
	static const char *const names[] = {
		[SANDBOX_ON] = "on", [SANDBOX_OFF] = "off", [SANDBOX_LOG] = "log",
	};
	int k = opt_choice("--sandbox", val, names, sizeof(names) / sizeof(names[0]), err);

	if (k < 0)
		return -1;
	opt->sandbox = (enum sandbox_mode)k;
	return 0;
}

static int opt_help(struct cli_options *opt, const char *val,
		    struct fv_error *err)
{
	(void)val;
	(void)err;
	opt->cmd = CLI_HELP;
	return 0;
}

static int opt_vm(struct cli_options *opt, const char *val,
		  struct fv_error *err)
{
	return cli_add_vm(opt, val, err);
}

static int opt_domain_xml(struct cli_options *opt, const char *val,
			  struct fv_error *err)
{
	if (opt->nr_domain_files == CLI_MAX_VMS)
		return fv_err(err, FV_E_INVAL, "at most %d guests", CLI_MAX_VMS);
	opt->domain_files[opt->nr_domain_files++] = val;
	return 0;
}

static int opt_domain(struct cli_options *opt, const char *val,
		      struct fv_error *err)
{
	if (opt->nr_libvirt_domains == CLI_MAX_VMS)
		return fv_err(err, FV_E_INVAL, "at most %d guests", CLI_MAX_VMS);
	opt->libvirt_domains[opt->nr_libvirt_domains++] = val;
	return 0;
}

static int opt_libvirt(struct cli_options *opt, const char *val,
		       struct fv_error *err)
{
	if (opt->libvirt_uri)
		return fv_err(err, FV_E_INVAL, "--libvirt given twice (one connection per foldvm)");
	opt->libvirt_uri = val;
	return 0;
}

static int opt_no_hooks(struct cli_options *opt, const char *val,
			struct fv_error *err)
{
	(void)val;
	(void)err;
	opt->hooks.dir[0] = '\0';
	return 0;
}

static int opt_hook_timeout(struct cli_options *opt, const char *val,
			    struct fv_error *err)
{
	uint64_t x;

	if (spec_parse_uint(val, 1, HOOKS_MAX_TIMEOUT_MS / 1000, &x,
			    "--hook-timeout", err))
		return -1;
	opt->hooks.timeout_ms = (unsigned)x * 1000u;
	return 0;
}

static int opt_dedup_pressure(struct cli_options *opt, const char *val,
			      struct fv_error *err)
{
	uint64_t x;

	if (spec_parse_uint(val, 0, 100, &x, "--dedup-pressure", err))
		return -1;
	opt->dedup_pressure = (unsigned)x;
	opt->dedup_pressure_set = true;
	return 0;
}

static int opt_dedup_in_place(struct cli_options *opt, const char *val,
			      struct fv_error *err)
{
	bool on;

	if (spec_parse_bool(val, &on, err)) {
		fv_err_prefix(err, "--dedup-in-place: ");
		return -1;
	}
	opt->dedup_no_in_place = !on;
	return 0;
}

/* --metrics IPV4:PORT | [IPV6]:PORT | /PATH, checked here */
static int opt_metrics(struct cli_options *opt, const char *val,
		       struct fv_error *err)
{
	struct sockaddr_storage sa;
	socklen_t len;

	if (strlen(val) >= sizeof(opt->metrics))
		return fv_err(err, FV_E_INVAL, "--metrics: '%s' is too long", val);
	if (metrics_addr_parse(val, &sa, &len, err))
		return -1;
	snprintf(opt->metrics, sizeof(opt->metrics), "%s", val);
	return 0;
}

/* --domain-mem-max DOMAIN=SIZE */
static int opt_domain_mem_max(struct cli_options *opt, const char *val,
			      struct fv_error *err)
{
	const char *eq = strchr(val, '=');
	struct domain_mem *dm;

	if (opt->nr_domain_mem == CLI_MAX_DOMAIN_MEM)
		return fv_err(err, FV_E_INVAL, "at most %d --domain-mem-max",
			      CLI_MAX_DOMAIN_MEM);
	dm = &opt->domain_mem[opt->nr_domain_mem];
	if (!eq || (size_t)(eq - val) >= sizeof(dm->domain))
		return fv_err(err, FV_E_INVAL, "--domain-mem-max wants DOMAIN=SIZE, not '%s'", val);
	snprintf(dm->domain, sizeof(dm->domain), "%.*s", (int)(eq - val), val);
	if (!spec_name_ok(dm->domain))
		return fv_err(err, FV_E_INVAL, "--domain-mem-max: '%s' is not a domain name", dm->domain);
	if (spec_parse_size(eq + 1, &dm->bytes, err)) {
		fv_err_prefix(err, "--domain-mem-max %s: ", dm->domain);
		return -1;
	}
	if (dm->bytes < GMEM_MIN_SIZE)
		return fv_err(err, FV_E_INVAL, "--domain-mem-max %s: less than %llu MiB leaves a worker no room",
			      dm->domain, GMEM_MIN_SIZE >> 20);
	opt->nr_domain_mem++;
	return 0;
}

static const struct cli_opt cli_opts[] = {
	OPT_FN("--vm", "SPEC", CMD_RUN, opt_vm, NULL),
	OPT_FN("--help", NULL, CMD_ALL, opt_help, NULL),
	OPT_FN("-h", NULL, CMD_ALL, opt_help, NULL),
	OPT_FN("--files", "PATH", CMD_ALL, opt_files,
	       "file or directory whose files guests hold as page cache\n"
	       "(repeatable; demo default: /usr/lib and /usr/share)"),
	OPT_FN("--log-dir", "DIR", CMD_ALL, opt_log_dir,
	       "per-guest serial logs (default $TMPDIR/foldvm-UID)"),
	OPT_FLAG("--quiet", CMD_ALL, opt.quiet, true, "no guest console on stdout"),
	OPT_DIR("--run-dir", "DIR", CMD_ALL, opt.run_dir, GUEST_NAME_MAX + 8,
	       "control sockets: DIR/host.qmp, DIR/NAME.qmp and\n"
	       "DIR/NAME.console (default\n"
	       "$FOLDVM_RUN_DIR, /run/foldvm as root, else\n"
	       "$XDG_RUNTIME_DIR/foldvm); see foldctl(1), docs/qmp.md"),
	OPT_FLAG("--persist", CMD_RUN, opt.persist, true,
		 "run: keep serving with no guest (a host daemon)"),
	OPT_FN("--metrics", "ADDR", CMD_RUN, opt_metrics,
	       "run: serve Prometheus metrics over HTTP at\n"
	       "GET /metrics on ADDR: IPV4:PORT, [IPV6]:PORT or a\n"
	       "UNIX socket path (docs/metrics.md)"),
	OPT_FN("--console", "auto|stdio|none", CMD_RUN, opt_console,
	       "run: the terminal as a guest's serial console:\n"
	       "stdio: the one guest's ttyS0 reads this terminal (raw\n"
	       "mode; Ctrl-C goes to the guest, Ctrl-A x quits) and its\n"
	       "output comes here as it is; auto (default): so when one\n"
	       "guest runs in the foreground of a terminal (stdin and\n"
	       "stdout), without --persist; none: never.  Any guest's\n"
	       "console is also RUNDIR/NAME.console (foldctl console;\n"
	       "docs/console.md)"),
	OPT_HEAD("libvirt (run only; docs/libvirt.md):"),
	OPT_FN("--domain-xml", "FILE", CMD_RUN, opt_domain_xml,
	       "a guest defined by libvirt domain XML (repeatable)"),
	OPT_FN("--libvirt", "URI", CMD_RUN, opt_libvirt,
	       "fetch domains from this libvirt connection (read-only)"),
	OPT_FN("--domain", "NAME", CMD_RUN, opt_domain,
	       "run this domain of --libvirt URI (repeatable)"),
	OPT_FLAG("--strict", CMD_RUN, opt.strict, true,
		 "refuse a domain with settings foldvm cannot honour\n"
		 "(default: list them on stderr and run)"),
	OPT_DIR("--hooks-dir", "DIR", CMD_RUN, opt.hooks.dir, 128,
	       "libvirt qemu hooks run for domain guests: DIR/qemu,\n"
	       "DIR/qemu.d/* (default " HOOKS_DEFAULT_DIR ")"),
	OPT_FN("--no-hooks", NULL, CMD_RUN, opt_no_hooks, "run no hook scripts"),
	OPT_FN("--hook-timeout", "S", CMD_RUN, opt_hook_timeout,
	       "kill a hook still running after S seconds (default 30)"),
	OPT_DIR("--lock-dir", "DIR", CMD_RUN, opt.lock_dir, 128,
	       "per-domain locks, by uuid (default: the default run\n"
	       "directory + /domains)"),
	OPT_FLAG("--no-control", CMD_RUN, opt.control, false, "run: no control sockets"),
	OPT_FLAG("--dedup", CMD_ALL, opt.dedup_all, true,
		 "merge memory of every guest (per guest: dedup=on)"),
	OPT_FLAG("--ksm", CMD_ALL, opt.ksm, true,
		 "let Linux KSM merge instead (MADV_MERGEABLE; the\n"
		 "benchmark baseline; KSM itself is set in /sys/kernel/mm/ksm)"),
	OPT_UINT64("--dedup-rate", "N", CMD_ALL, opt.dedup_rate, 0, 1ull << 40,
		   "pages scanned per second (default: no limit)"),
	OPT_UINT("--dedup-cpu", "PCT", CMD_ALL, opt.dedup_cpu, 1, 100,
		 "cap the scanner's CPU share, 1..100 (default: no cap)"),
	OPT_FN("--dedup-pressure", "PCT", CMD_ALL, opt_dedup_pressure,
	       "pause new merges while memory pressure (PSI, some\n"
	       "avg10) is at least PCT%, until it is below half of it;\n"
	       "0..100, 0: never (default 10)"),
	OPT_UINT64("--dedup-vma-budget", "N", CMD_ALL, opt.dedup_vma_budget, 1,
		   1ull << 32,
		   "VMAs merges may add (default: vm.max_map_count\n"
		   "less what the process needs)"),
	OPT_FN("--dedup-in-place", "on|off", CMD_ALL, opt_dedup_in_place,
	       "guests of a named domain (domain=) map its home\n"
	       "file and merge what they hold at the same address in\n"
	       "place, without a VMA (default on; off: anonymous RAM,\n"
	       "cheaper first writes to never-written pages)"),
	OPT_UINT64("--max-map-count", "N", CMD_ALL, opt.max_map_count, 65530,
		   1ull << 31,
		   "raise the host-wide sysctl vm.max_map_count to N first\n"
		   "(root; logged; never done without this option)"),
	OPT_DIR("--cgroup", "DIR", CMD_ALL, opt.cgroup, GUEST_NAME_MAX + 8,
	       "each trust domain's worker in its own cgroup v2,\n"
	       "DIR/DOMAIN (made, and removed when the worker ends)"),
	OPT_FN("--domain-mem-max", "DOMAIN=SIZE", CMD_ALL, opt_domain_mem_max,
	       "memory.max of DOMAIN's cgroup (with\n"
	       "--cgroup; repeatable): past it the kernel reclaims, then\n"
	       "kills that worker alone"),
	OPT_FN("--image-dir", "DIR", CMD_ALL, opt_image_dir,
	       "run: a sandboxed worker may also read guest images\n"
	       "(kernel=, initrd=, payload= of vm-create) in DIR; it\n"
	       "reads those in the command line's images' directories\n"
	       "(repeatable)"),
	OPT_FN("--sandbox", "on|off|log", CMD_ALL, opt_sandbox,
	       "each trust domain's worker process runs under a\n"
	       "system call filter with no capability and sees only its\n"
	       "own files (default on; log: calls off the list are\n"
	       "logged by the kernel, not stopped; docs/sandbox.md)"),
	OPT_HEAD("demo only:"),
	OPT_UINT("--guests", "N", CMD_DEMO, demo.guests, 1, CLI_MAX_VMS,
		 "guests to start (default 4)"),
	OPT_SIZE("--mem", "SIZE", CMD_DEMO, demo.mem,
		 "RAM per guest (default 128M)"),
	OPT_UINT("--vcpus", "N", CMD_DEMO, demo.vcpus, 1, FV_MAX_VCPUS,
		 "vCPUs per guest (default 1)"),
	OPT_UINT("--seconds", "N", CMD_DEMO, demo.seconds, 0, CLI_MAX_SECONDS,
		 "how long guests run once dedup has converged (two\n"
		 "passes after filling; default 3)"),
	OPT_FLAG("--no-dedup", CMD_DEMO, demo.no_dedup, true,
		 "run the demo without the dedup engine"),
};

#define CLI_NR_OPTS (sizeof(cli_opts) / sizeof(cli_opts[0]))

/* The row argv[*i] names ("--name", or "--name=VALUE" for an option with
 * a value), or NULL. */
static const struct cli_opt *cli_find_option(const char *arg)
{
	for (size_t k = 0; k < CLI_NR_OPTS; k++) {
		const struct cli_opt *o = &cli_opts[k];

		if (o->kind == OPT_HEADING)
			continue;
		if (o->arg ? cli_is_option(arg, o->name) : !strcmp(arg, o->name))
			return o;
	}
	return NULL;
}

static int cli_parse_option(int argc, char *const argv[], int *i,
			    struct cli_args *cl, struct fv_error *err)
{
	const struct cli_opt *o = cli_find_option(argv[*i]);
	struct cli_options *opt = &cl->opt;
	const char *val = NULL;
	char *field;
	uint64_t x;

	if (!o || !(o->cmds & (1u << opt->cmd)))
		return fv_err(err, FV_E_INVAL, "unknown option '%s' for %s (see foldvm --help)",
			      argv[*i], opt->cmd == CLI_RUN ? "run" : "demo");
	if (o->arg && cli_option_value(argc, argv, i, o->name, &val, err))
		return -1;
	field = (char *)cl + o->field;
	switch (o->kind) {
	case OPT_SET:
		*(bool *)field = o->value;
		return 0;
	case OPT_UNSIGNED:
	case OPT_U64:
		if (spec_parse_uint(val, o->min, o->max, &x, o->name, err))
			return -1;
		if (o->kind == OPT_U64)
			*(uint64_t *)field = x;
		else
			*(unsigned *)field = (unsigned)x;
		return 0;
	case OPT_MEM:
		return spec_parse_size(val, (uint64_t *)field, err) ||
		       gmem_check_size(*(uint64_t *)field, err) ? -1 : 0;
	case OPT_PATH:
		if (*val != '/' || strlen(val) >= o->max - o->min)
			return fv_err(err, FV_E_INVAL, "%s needs an absolute path of reasonable length",
				      o->name);
		snprintf(field, o->max, "%s", val);
		return 0;
	case OPT_CALLBACK:
		return o->fn(opt, val, err);
	case OPT_HEADING:
		break;
	}
	return fv_err(err, FV_E_INVAL, "option '%s' has no kind", o->name);
}

/* "  LEFT  line\n" and the help's further lines under the first. */
static void usage_item(FILE *f, const char *left, const char *help)
{
	const char *line = help, *nl;

	if (strlen(left) <= 16)
		fprintf(f, "  %-16s ", left);
	else
		fprintf(f, "  %s  ", left);
	while ((nl = strchr(line, '\n'))) {
		fprintf(f, "%.*s\n%19s", (int)(nl - line), line, "");
		line = nl + 1;
	}
	fprintf(f, "%s\n", line);
}

void cli_usage(FILE *f)
{
	char left[64];

	fputs(cli_usage_head, f);
	for (const struct spec_key *k = spec_keys; k->name; k++) {
		snprintf(left, sizeof(left), "%s=%s", k->name, k->arg);
		usage_item(f, left, k->help);
	}
	fputs("\nOptions:\n", f);
	for (size_t k = 0; k < CLI_NR_OPTS; k++) {
		const struct cli_opt *o = &cli_opts[k];

		if (o->kind == OPT_HEADING) {
			fprintf(f, "  %s\n", o->name);
			continue;
		}
		if (!o->help)
			continue;
		snprintf(left, sizeof(left), "%s%s%s", o->name, o->arg ? " " : "",
			 o->arg ? o->arg : "");
		usage_item(f, left, o->help);
	}
	fputs("\nExit status: 0 all guests verified, 1 a guest failed or lost data,\n"
	      "2 bad command line or a guest could not be created.\n", f);
}

/* Guests without an explicit blob= hold file pages when there are files. */
static void cli_apply_files(struct cli_options *opt)
{
	for (unsigned i = 0; i < opt->nr_vms; i++) {
		struct vm_spec *vm = &opt->vms[i];
		struct fv_content_spec *c = &vm->cfg.content;
		uint32_t left = 100 - c->pct_zero - c->pct_shared;

		if (!vm->blob_set && opt->nr_files && !guest_config_is_linux(&vm->cfg))
			c->pct_blob = left < 25 ? left : 25;
		if (opt->quiet)
			vm->cfg.console = false;
		if (opt->dedup_all && !vm->dedup_set)
			vm->cfg.dedup = true;
		if (opt->ksm) {
			vm->cfg.ksm = true;
			vm->cfg.dedup = false;
		}
	}
}

int cli_parse(int argc, char *const argv[], struct cli_args *cl,
	      struct fv_error *err)
{
	struct cli_options *opt = &cl->opt;

	cli_defaults(cl);
	if (argc < 2)
		return fv_err(err, FV_E_INVAL, "no command given (try foldvm --help)");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		opt->cmd = CLI_HELP;
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		opt->cmd = CLI_VERSION;
		return 0;
	}
	if (!strcmp(argv[1], "run")) {
		opt->cmd = CLI_RUN;
		opt->control = true;
	}
	else if (!strcmp(argv[1], "demo"))
		opt->cmd = CLI_DEMO;
	else
		return fv_err(err, FV_E_INVAL, "unknown command '%s' (run, demo, --help)",
			      argv[1]);
	for (int i = 2; i < argc; i++) {
		if (cli_parse_option(argc, argv, &i, cl, err))
			return -1;
		if (opt->cmd == CLI_HELP)
			return 0;
	}
	if (opt->nr_libvirt_domains && !opt->libvirt_uri)
		return fv_err(err, FV_E_INVAL, "--domain NAME needs --libvirt URI");
	if (opt->libvirt_uri && !opt->nr_libvirt_domains)
		return fv_err(err, FV_E_INVAL, "--libvirt URI needs at least one --domain NAME");
	if (cli_add_domains(opt, err))
		return -1;
	if (opt->cmd == CLI_RUN && opt->nr_vms == 0 && !opt->persist)
		return fv_err(err, FV_E_INVAL, "run needs at least one --vm, --domain-xml or --domain (or --persist)");
	if (opt->ksm && (opt->dedup_all || cl->demo.no_dedup))
		return fv_err(err, FV_E_INVAL, "--ksm replaces foldvm's engine: not with --dedup or --no-dedup");
	if (opt->persist && !opt->control)
		return fv_err(err, FV_E_INVAL, "--persist needs the control sockets (drop --no-control)");
	if (opt->nr_domain_mem && !opt->cgroup[0])
		return fv_err(err, FV_E_INVAL, "--domain-mem-max needs --cgroup DIR (the domains' cgroups go there)");
	if (opt->console == CONSOLE_STDIO && opt->nr_vms != 1)
		return fv_err(err, FV_E_INVAL, "--console stdio needs exactly one guest (there %s %u)",
			      opt->nr_vms == 1 ? "is" : "are", opt->nr_vms);
	if (spec_check_syncs(opt->vms, opt->nr_vms, err))
		return -1;
	cli_apply_files(opt);
	return 0;
}
