#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "frontend/cli.h"
#include "frontend/domain.h"
#include "control/qmp_client.h"

const char cli_usage[] =
"Usage: foldvm run [OPTIONS] --vm SPEC [--vm SPEC]...\n"
"       foldvm run [OPTIONS] --domain-xml FILE [--domain-xml FILE]...\n"
"       foldvm run [OPTIONS] --libvirt URI --domain NAME [--domain NAME]...\n"
"       foldvm demo [OPTIONS]\n"
"       foldvm --help | --version\n"
"\n"
"Runs KVM guests (foldvm's test payload or a Linux kernel) whose memory\n"
"foldvm can deduplicate.\n"
"\n"
"--vm SPEC is a comma-separated list of key=value (',,' is a literal comma):\n"
"  name=NAME        guest name, [A-Za-z0-9._-], up to 32 chars (default vmN)\n"
"  mem=SIZE         RAM, e.g. 128M, 1G; a bare number is MiB (default 128M)\n"
"  vcpus=N          vCPUs, 1..64 (default 1)\n"
"  payload=PATH     flat test payload (default: the one built into foldvm)\n"
"  kernel=PATH      boot this Linux kernel instead: a bzImage or an ELF\n"
"                   vmlinux (64-bit boot protocol; mem 16M..64G; foldvm\n"
"                   writes ACPI tables: its vCPUs, COM1, virtio devices)\n"
"  initrd=PATH      initramfs for the kernel\n"
"  cmdline=TEXT     kernel command line (default \"" CLI_DEFAULT_CMDLINE "\")\n"
"                   A Linux guest runs until it resets or foldvm is\n"
"                   interrupted; its steps may only be sleep, settle,\n"
"                   wait, sync\n"
"                   (default wait).  docs/linux.md tells more.\n"
"  zero=PCT         % of data pages left zero (default 25)\n"
"  shared=PCT       % of data pages with content shared by all guests (25)\n"
"  blob=PCT         % of data pages holding file contents from --files\n"
"                   (default 25 with --files, else 0)\n"
"  pool=N           distinct shared contents (default: one per shared page)\n"
"  seed=N           seed of the shared content (default the same everywhere)\n"
"  layout=L         where pages land in guest RAM (default scattered):\n"
"                   scattered (every page, file pages too, at its own\n"
"                   random frame), mix (each file's pages consecutive, at a\n"
"                   random frame, as a page cache holds them), clones (as\n"
"                   scattered, but every guest of one seed= holds the same\n"
"                   content at the same addresses; unique pages stay unique)\n"
"  steps=LIST       what the guest does, '+'-separated (default fill+verify):\n"
"                   fill, verify, churn:PAGES, race:ITERATIONS, measure,\n"
"                   sleep:SECONDS, wait (until interrupted), fault,\n"
"                   settle:PASSES (until the dedup engine has made PASSES\n"
"                   passes that began after the step did),\n"
"                   sync (all guests meet; foldvm snapshots memory use),\n"
"                   measure-merged (time first writes to the probe pages\n"
"                   again: identical since measure, so merged by then),\n"
"                   measure-merging (after measure: wait until every probe\n"
"                   page of this guest is merged, by the engine or KSM, and\n"
"                   time first writes to them at once, while other memory\n"
"                   may still be merging),\n"
"                   sandbox-probe:N (the test build foldvm-san only: the\n"
"                   guest's worker tries 1 execve, 2 opening /etc/passwd,\n"
"                   which its sandbox must stop),\n"
"                   echo:N (read N lines from the serial console and\n"
"                   write each back in upper case; docs/console.md)\n"
"  console=on|off   echo the guest's serial output as \"[name] ...\" (on)\n"
"  dedup=on|off     merge this guest's memory (default off, or on with --dedup)\n"
"  domain=NAME      trust domain: full pages merge only within one domain,\n"
"                   zero pages across domains (default: the guest's name)\n"
"  race-pages=N     counter pages for race (default 16)\n"
"  probe-pages=N    untouched pages for measure (default 256)\n"
"  disk=PATH        a raw image as a virtio-blk disk (virtio-mmio; a Linux\n"
"                   guest's command line names it: docs/virtio.md)\n"
"  disk-ro=on|off   the guest may only read the disk (default off)\n"
"  balloon=on|off   a virtio-balloon with statistics and free page reporting;\n"
"                   QMP balloon / query-balloon (default off)\n"
"  net=tap:NAME     a virtio-net device on tap NAME (attached if it exists,\n"
"                   else made, and gone when foldvm ends); net=tap makes\n"
"                   fv-GUESTNAME (docs/virtio.md)\n"
"  mac=MAC          its MAC, six hex pairs, unicast (default 52:54:00 and\n"
"                   three bytes of a hash of the guest's name)\n"
"  virtio-cmdline=on|off  a Linux guest's command line also gets a\n"
"                   virtio_mmio.device= entry per device, for kernels\n"
"                   without ACPI (default off: the DSDT names them)\n"
"\n"
"Options:\n"
"  --files PATH     file or directory whose files guests hold as page cache\n"
"                   (repeatable; demo default: /usr/lib and /usr/share)\n"
"  --log-dir DIR    per-guest serial logs (default $TMPDIR/foldvm-UID)\n"
"  --quiet          no guest console on stdout\n"
"  --run-dir DIR    control sockets: DIR/host.qmp, DIR/NAME.qmp and\n"
"                   DIR/NAME.console (default\n"
"                   $FOLDVM_RUN_DIR, /run/foldvm as root, else\n"
"                   $XDG_RUNTIME_DIR/foldvm); see foldctl(1), docs/qmp.md\n"
"  --persist        run: keep serving with no guest (a host daemon)\n"
"  --console auto|stdio|none  run: the terminal as a guest's serial console:\n"
"                   stdio: the one guest's ttyS0 reads this terminal (raw\n"
"                   mode; Ctrl-C goes to the guest, Ctrl-A x quits) and its\n"
"                   output comes here as it is; auto (default): so when one\n"
"                   guest runs in the foreground of a terminal (stdin and\n"
"                   stdout), without --persist; none: never.  Any guest's\n"
"                   console is also RUNDIR/NAME.console (foldctl console;\n"
"                   docs/console.md)\n"
"  libvirt (run only; docs/libvirt.md):\n"
"  --domain-xml FILE  a guest defined by libvirt domain XML (repeatable)\n"
"  --libvirt URI    fetch domains from this libvirt connection (read-only)\n"
"  --domain NAME    run this domain of --libvirt URI (repeatable)\n"
"  --strict         refuse a domain with settings foldvm cannot honour\n"
"                   (default: list them on stderr and run)\n"
"  --hooks-dir DIR  libvirt qemu hooks run for domain guests: DIR/qemu,\n"
"                   DIR/qemu.d/* (default " HOOKS_DEFAULT_DIR ")\n"
"  --no-hooks       run no hook scripts\n"
"  --hook-timeout S kill a hook still running after S seconds (default 30)\n"
"  --lock-dir DIR   per-domain locks, by uuid (default: the default run\n"
"                   directory + /domains)\n"
"  --no-control     run: no control sockets\n"
"  --dedup          merge memory of every guest (per guest: dedup=on)\n"
"  --ksm            let Linux KSM merge instead (MADV_MERGEABLE; the\n"
"                   benchmark baseline; KSM itself is set in /sys/kernel/mm/ksm)\n"
"  --dedup-rate N   pages scanned per second (default: no limit)\n"
"  --dedup-cpu PCT  cap the scanner's CPU share, 1..100 (default: no cap)\n"
"  --dedup-pressure PCT  pause new merges while memory pressure (PSI, some\n"
"                   avg10) is at least PCT%, until it is below half of it;\n"
"                   0..100, 0: never (default 10)\n"
"  --dedup-vma-budget N  VMAs merges may add (default: vm.max_map_count\n"
"                   less what the process needs)\n"
"  --dedup-in-place on|off  guests of a named domain (domain=) map its home\n"
"                   file and merge what they hold at the same address in\n"
"                   place, without a VMA (default on; off: anonymous RAM,\n"
"                   cheaper first writes to never-written pages)\n"
"  --max-map-count N  raise the host-wide sysctl vm.max_map_count to N first\n"
"                   (root; logged; never done without this option)\n"
"  --cgroup DIR     each trust domain's worker in its own cgroup v2,\n"
"                   DIR/DOMAIN (made, and removed when the worker ends)\n"
"  --domain-mem-max DOMAIN=SIZE  memory.max of DOMAIN's cgroup (with\n"
"                   --cgroup; repeatable): past it the kernel reclaims, then\n"
"                   kills that worker alone\n"
"  --image-dir DIR  run: a sandboxed worker may also read guest images\n"
"                   (kernel=, initrd=, payload= of vm-create) in DIR; it\n"
"                   reads those in the command line's images' directories\n"
"                   (repeatable)\n"
"  --sandbox on|off|log  each trust domain's worker process runs under a\n"
"                   system call filter with no capability and sees only its\n"
"                   own files (default on; log: calls off the list are\n"
"                   logged by the kernel, not stopped; docs/sandbox.md)\n"
"  demo only:\n"
"  --guests N       guests to start (default 4)\n"
"  --mem SIZE       RAM per guest (default 128M)\n"
"  --vcpus N        vCPUs per guest (default 1)\n"
"  --seconds N      how long guests run once dedup has converged (two\n"
"                   passes after filling; default 3)\n"
"  --no-dedup       run the demo without the dedup engine\n"
"\n"
"Exit status: 0 all guests verified, 1 a guest failed or lost data,\n"
"2 bad command line or a guest could not be created.\n";


static void cli_defaults(struct cli_options *opt)
{
	const char *tmp = getenv("TMPDIR");

	memset(opt, 0, sizeof(*opt));
	opt->demo_guests = 4;
	opt->demo_mem = 128ull << 20;
	opt->demo_vcpus = 1;
	opt->demo_seconds = 3;
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

/* --domain-xml FILE, --libvirt URI, --domain NAME, --strict, the hooks and
 * the lock directory.  1 when `arg` is none of them. */
static int cli_domain_option(int argc, char *const argv[], int *i,
			     struct cli_options *opt, struct fv_error *err)
{
	const char *arg = argv[*i], *val;
	uint64_t x;

	if (!strcmp(arg, "--strict")) {
		opt->strict = true;
		return 0;
	}
	if (!strcmp(arg, "--no-hooks")) {
		opt->hooks.dir[0] = '\0';
		return 0;
	}
	if (cli_is_option(arg, "--domain-xml") || cli_is_option(arg, "--domain")) {
		bool file = cli_is_option(arg, "--domain-xml");
		unsigned *nr = file ? &opt->nr_domain_files : &opt->nr_libvirt_domains;

		if (cli_option_value(argc, argv, i, file ? "--domain-xml" : "--domain",
				     &val, err))
			return -1;
		if (*nr == CLI_MAX_VMS)
			return fv_err(err, FV_E_INVAL, "at most %d guests", CLI_MAX_VMS);
		(file ? opt->domain_files : opt->libvirt_domains)[(*nr)++] = val;
		return 0;
	}
	if (cli_is_option(arg, "--libvirt")) {
		if (cli_option_value(argc, argv, i, "--libvirt", &val, err))
			return -1;
		if (opt->libvirt_uri)
			return fv_err(err, FV_E_INVAL, "--libvirt given twice (one connection per foldvm)");
		opt->libvirt_uri = val;
		return 0;
	}
	if (cli_is_option(arg, "--hook-timeout")) {
		if (cli_option_value(argc, argv, i, "--hook-timeout", &val, err) ||
		    spec_parse_uint(val, 1, HOOKS_MAX_TIMEOUT_MS / 1000, &x,
				    "--hook-timeout", err))
			return -1;
		opt->hooks.timeout_ms = (unsigned)x * 1000u;
		return 0;
	}
	if (cli_is_option(arg, "--hooks-dir") || cli_is_option(arg, "--lock-dir")) {
		bool hooks = cli_is_option(arg, "--hooks-dir");
		char *dst = hooks ? opt->hooks.dir : opt->lock_dir;

		if (cli_option_value(argc, argv, i, hooks ? "--hooks-dir" : "--lock-dir",
				     &val, err))
			return -1;
		if (*val != '/' || strlen(val) >= PATH_MAX - 128)
			return fv_err(err, FV_E_INVAL, "%s needs an absolute path of reasonable length",
				      hooks ? "--hooks-dir" : "--lock-dir");
		snprintf(dst, PATH_MAX, "%s", val);
		return 0;
	}
	return 1;
}

static int cli_demo_option(struct cli_options *opt, const char *name,
			   const char *val, struct fv_error *err)
{
	uint64_t x;

	if (!strcmp(name, "--guests")) {
		if (spec_parse_uint(val, 1, CLI_MAX_VMS, &x, "--guests", err))
			return -1;
		opt->demo_guests = (unsigned)x;
	} else if (!strcmp(name, "--mem")) {
		if (spec_parse_size(val, &opt->demo_mem, err) ||
		    gmem_check_size(opt->demo_mem, err))
			return -1;
	} else if (!strcmp(name, "--vcpus")) {
		if (spec_parse_uint(val, 1, FV_MAX_VCPUS, &x, "--vcpus", err))
			return -1;
		opt->demo_vcpus = (unsigned)x;
	} else {
		if (spec_parse_uint(val, 0, CLI_MAX_SECONDS, &x, "--seconds", err))
			return -1;
		opt->demo_seconds = (unsigned)x;
	}
	return 0;
}

static const char *const dedup_opts[] = {
	"--dedup-rate", "--dedup-cpu", "--dedup-vma-budget", "--dedup-in-place",
	"--dedup-pressure", "--max-map-count",
};

static int cli_dedup_option(struct cli_options *opt, const char *name,
			    const char *val, struct fv_error *err)
{
	uint64_t x;

	if (!strcmp(name, "--dedup-rate"))
		return spec_parse_uint(val, 0, 1ull << 40, &opt->dedup_rate,
				       "--dedup-rate", err);
	if (!strcmp(name, "--dedup-cpu")) {
		if (spec_parse_uint(val, 1, 100, &x, "--dedup-cpu", err))
			return -1;
		opt->dedup_cpu = (unsigned)x;
		return 0;
	}
	if (!strcmp(name, "--dedup-pressure")) {
		if (spec_parse_uint(val, 0, 100, &x, "--dedup-pressure", err))
			return -1;
		opt->dedup_pressure = (unsigned)x;
		opt->dedup_pressure_set = true;
		return 0;
	}
	if (!strcmp(name, "--dedup-vma-budget"))
		return spec_parse_uint(val, 1, 1ull << 32, &opt->dedup_vma_budget,
				       "--dedup-vma-budget", err);
	if (!strcmp(name, "--dedup-in-place")) {
		bool on;

		if (spec_parse_bool(val, &on, err)) {
			fv_err_prefix(err, "--dedup-in-place: ");
			return -1;
		}
		opt->dedup_no_in_place = !on;
		return 0;
	}
	return spec_parse_uint(val, 65530, 1ull << 31, &opt->max_map_count,
			       "--max-map-count", err);
}

/* An absolute directory with room for "/NAME.qmp" after it, into dst. */
static int cli_dir_option(int argc, char *const argv[], int *i,
			  const char *name, char *dst, size_t size,
			  struct fv_error *err)
{
	const char *val;

	if (cli_option_value(argc, argv, i, name, &val, err))
		return -1;
	if (*val != '/' || strlen(val) >= size - GUEST_NAME_MAX - 8)
		return fv_err(err, FV_E_INVAL, "%s needs an absolute path of reasonable length",
			      name);
	snprintf(dst, size, "%s", val);
	return 0;
}

static int cli_parse_option(int argc, char *const argv[], int *i,
			    struct cli_options *opt, struct fv_error *err)
{
	static const char *const demo_opts[] = {
		"--guests", "--mem", "--vcpus", "--seconds",
	};
	const char *arg = argv[*i], *val;

	if (!strcmp(arg, "--quiet")) {
		opt->quiet = true;
		return 0;
	}
	if (!strcmp(arg, "--dedup")) {
		opt->dedup_all = true;
		return 0;
	}
	if (!strcmp(arg, "--ksm")) {
		opt->ksm = true;
		return 0;
	}
	if (!strcmp(arg, "--persist") && opt->cmd == CLI_RUN) {
		opt->persist = true;
		return 0;
	}
	if (cli_is_option(arg, "--console") && opt->cmd == CLI_RUN) {
		if (cli_option_value(argc, argv, i, "--console", &val, err))
			return -1;
		if (!strcmp(val, "auto"))
			opt->console = CONSOLE_AUTO;
		else if (!strcmp(val, "stdio"))
			opt->console = CONSOLE_STDIO;
		else if (!strcmp(val, "none"))
			opt->console = CONSOLE_NONE;
		else
			return fv_err(err, FV_E_INVAL, "--console: '%s' is none of auto, stdio, none", val);
		return 0;
	}
	if (!strcmp(arg, "--no-control") && opt->cmd == CLI_RUN) {
		opt->control = false;
		return 0;
	}
	/* Directories that get a guest's or a domain's name appended. */
	if (cli_is_option(arg, "--run-dir"))
		return cli_dir_option(argc, argv, i, "--run-dir", opt->run_dir,
				      sizeof(opt->run_dir), err);
	if (cli_is_option(arg, "--cgroup"))
		return cli_dir_option(argc, argv, i, "--cgroup", opt->cgroup,
				      sizeof(opt->cgroup), err);
	if (cli_is_option(arg, "--sandbox")) {
		if (cli_option_value(argc, argv, i, "--sandbox", &val, err))
			return -1;
		if (!strcmp(val, "on"))
			opt->sandbox = SANDBOX_ON;
		else if (!strcmp(val, "off"))
			opt->sandbox = SANDBOX_OFF;
		else if (!strcmp(val, "log"))
			opt->sandbox = SANDBOX_LOG;
		else
			return fv_err(err, FV_E_INVAL, "--sandbox: '%s' is none of on, off, log", val);
		return 0;
	}
	if (!strcmp(arg, "--no-dedup") && opt->cmd == CLI_DEMO) {
		opt->demo_no_dedup = true;
		return 0;
	}
	for (size_t k = 0; k < sizeof(dedup_opts) / sizeof(dedup_opts[0]); k++)
		if (cli_is_option(arg, dedup_opts[k]))
			return cli_option_value(argc, argv, i, dedup_opts[k], &val, err) ||
			       cli_dedup_option(opt, dedup_opts[k], val, err);
	if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
		opt->cmd = CLI_HELP;
		return 0;
	}
	if (opt->cmd == CLI_RUN) {
		int r = cli_domain_option(argc, argv, i, opt, err);

		if (r <= 0)
			return r;
	}
	if (cli_is_option(arg, "--vm") && opt->cmd == CLI_RUN)
		return cli_option_value(argc, argv, i, "--vm", &val, err) ||
		       cli_add_vm(opt, val, err);
	if (cli_is_option(arg, "--files")) {
		if (cli_option_value(argc, argv, i, "--files", &val, err))
			return -1;
		if (opt->nr_files == CLI_MAX_FILES)
			return fv_err(err, FV_E_INVAL, "at most %d --files",
				      CLI_MAX_FILES);
		if (access(val, R_OK) < 0)
			return fv_err_errno(err, FV_E_INVAL, errno, "--files %s", val);
		opt->files[opt->nr_files++] = val;
		return 0;
	}
	if (cli_is_option(arg, "--domain-mem-max")) {
		struct domain_mem *dm;
		const char *eq;

		if (cli_option_value(argc, argv, i, "--domain-mem-max", &val, err))
			return -1;
		eq = strchr(val, '=');
		if (opt->nr_domain_mem == CLI_MAX_VMS)
			return fv_err(err, FV_E_INVAL, "at most %d --domain-mem-max", CLI_MAX_VMS);
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
		if (dm->bytes < (16ull << 20))
			return fv_err(err, FV_E_INVAL, "--domain-mem-max %s: less than 16 MiB leaves a worker no room",
				      dm->domain);
		opt->nr_domain_mem++;
		return 0;
	}
	if (cli_is_option(arg, "--image-dir")) {
		if (cli_option_value(argc, argv, i, "--image-dir", &val, err))
			return -1;
		if (opt->nr_image_dirs == CLI_MAX_FILES)
			return fv_err(err, FV_E_INVAL, "at most %d --image-dir", CLI_MAX_FILES);
		if (*val != '/' || strlen(val) >= PATH_MAX)
			return fv_err(err, FV_E_INVAL, "--image-dir needs an absolute path");
		opt->image_dirs[opt->nr_image_dirs++] = val;
		return 0;
	}
	if (cli_is_option(arg, "--log-dir")) {
		if (cli_option_value(argc, argv, i, "--log-dir", &val, err))
			return -1;
		if (!*val || strlen(val) >= sizeof(opt->log_dir) - GUEST_NAME_MAX - 8)
			return fv_err(err, FV_E_INVAL, "--log-dir: bad directory name");
		snprintf(opt->log_dir, sizeof(opt->log_dir), "%s", val);
		return 0;
	}
	for (size_t k = 0; opt->cmd == CLI_DEMO && k < 4; k++)
		if (cli_is_option(arg, demo_opts[k]))
			return cli_option_value(argc, argv, i, demo_opts[k], &val, err) ||
			       cli_demo_option(opt, demo_opts[k], val, err);
	return fv_err(err, FV_E_INVAL, "unknown option '%s' for %s (see foldvm --help)",
		      arg, opt->cmd == CLI_RUN ? "run" : "demo");
}

static unsigned cli_count_syncs(const struct vm_spec *vm)
{
	unsigned n = 0;

	for (unsigned i = 0; i < vm->nr_steps; i++)
		n += vm->steps[i].kind == STEP_SYNC;
	return n;
}

/* With sync steps the engine starts at the first sync (runner.c), so a
 * settle before it would wait for passes that cannot come. */
static int cli_check_settle(const struct vm_spec *vm, struct fv_error *err)
{
	if (!cli_count_syncs(vm))
		return 0;
	for (unsigned i = 0; vm->steps[i].kind != STEP_SYNC; i++)
		if (vm->steps[i].kind == STEP_SETTLE)
			return fv_err(err, FV_E_INVAL,
				      "guest %s: 'settle' before the first 'sync' would wait forever (the engine starts at the first sync)",
				      vm->cfg.name);
	return 0;
}

/* Every guest meets the others at each sync: all need as many. */
static int cli_check_syncs(const struct cli_options *opt, struct fv_error *err)
{
	for (unsigned i = 0; i < opt->nr_vms; i++)
		if (cli_check_settle(&opt->vms[i], err))
			return -1;
	for (unsigned i = 1; i < opt->nr_vms; i++)
		if (cli_count_syncs(&opt->vms[i]) != cli_count_syncs(&opt->vms[0]))
			return fv_err(err, FV_E_INVAL,
				      "guests %s and %s have different numbers of sync steps",
				      opt->vms[0].cfg.name, opt->vms[i].cfg.name);
	return 0;
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

int cli_parse(int argc, char *const argv[], struct cli_options *opt,
	      struct fv_error *err)
{
	cli_defaults(opt);
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
		if (cli_parse_option(argc, argv, &i, opt, err))
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
	if (opt->ksm && (opt->dedup_all || opt->demo_no_dedup))
		return fv_err(err, FV_E_INVAL, "--ksm replaces foldvm's engine: not with --dedup or --no-dedup");
	if (opt->persist && !opt->control)
		return fv_err(err, FV_E_INVAL, "--persist needs the control sockets (drop --no-control)");
	if (opt->nr_domain_mem && !opt->cgroup[0])
		return fv_err(err, FV_E_INVAL, "--domain-mem-max needs --cgroup DIR (the domains' cgroups go there)");
	if (opt->console == CONSOLE_STDIO && opt->nr_vms != 1)
		return fv_err(err, FV_E_INVAL, "--console stdio needs exactly one guest (there %s %u)",
			      opt->nr_vms == 1 ? "is" : "are", opt->nr_vms);
	if (cli_check_syncs(opt, err))
		return -1;
	cli_apply_files(opt);
	return 0;
}
