/*
 * sandbox.c - a worker's sandbox (sandbox.h; the list and how it was
 * derived: docs/sandbox.md).
 *
 * Order matters, and each step argues why it comes where it does:
 *  1. what must be opened with privileges is opened first: the pagemap
 *     (page frame numbers are shown to an opener with CAP_SYS_ADMIN);
 *  2. the directories the worker writes are made while it may;
 *  3. Landlock: the worker's files from here on are its guests' images
 *     (read), its serial logs and control sockets (write), /dev/kvm and
 *     /dev/userfaultfd (and /dev/net/tun when a guest of the command
 *     line has net=), its own /proc entries, nothing else; no TCP, no
 *     signal or abstract socket outside its own domain;
 *  4. no_new_privs, then every capability goes (bounding, ambient,
 *     effective, permitted, inheritable): uid 0 stays, but without
 *     capabilities it is only the owner of root's files, which Landlock
 *     already hides;
 *  5. the seccomp filter, last, as it forbids the calls steps 1-4 make:
 *     this file's base list (what the process itself, guest RAM and the
 *     VMM need) composed with what each device and the engine declare
 *     beside their code (lib/syscall_rules.h; declared[] below).
 * The worker then runs only its own threads, all of which inherit the
 * filter (it is loaded before the first is started).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "dedup/dedup.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_net.h"
#include "lib/fileutil.h"
#include "lib/memroom.h"
#include "lib/procstat.h"
#include "supervisor/sandbox.h"

/* ---- Landlock (its constants beyond the ABI of Debian 12's headers) ---- */

#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)        /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)       /* ABI 5 */
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)        /* ABI 4 */
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

/* The kernel's struct landlock_ruleset_attr as of ABI 6; older kernels
 * are given the prefix they know. */
struct ll_ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

#define LL_FS_ABI1 ((1ULL << 13) - 1)   /* EXECUTE .. MAKE_SYM */
#define LL_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define LL_DEVICE (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
		   LANDLOCK_ACCESS_FS_IOCTL_DEV)
/* Serial logs: created, truncated, written. */
#define LL_LOGS (LL_READ | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_MAKE_REG | \
		 LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_REMOVE_FILE)
/* Control sockets: NAME.qmp, by-uuid/UUID.qmp links, a stale one removed. */
#define LL_SOCKETS (LL_READ | LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_SYM | \
		    LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE)

static int landlock_abi(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0,
			 LANDLOCK_CREATE_RULESET_VERSION);

	return v < 0 ? 0 : (int)v;
}

static uint64_t landlock_fs_rights(int abi)
{
	uint64_t r = LL_FS_ABI1;

	if (abi >= 2)
		r |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		r |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return r;
}

/* Allow `rights` (as far as the ruleset handles them) beneath path.  A
 * path that does not exist is no error: there is nothing there to allow
 * (a /dev/userfaultfd of an older kernel). */
static int landlock_allow(int ruleset, uint64_t handled, const char *path,
			  uint64_t rights, struct fv_error *err)
{
	struct landlock_path_beneath_attr pb = { 0 };
	struct stat st;
	int fd = open(path, O_PATH | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? 0 : fv_err_errno(err, FV_E_SYS, errno,
							  "sandbox: %s", path);
	/* Directory rights on a file are refused by the kernel. */
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
		rights &= LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
			  LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |
			  LANDLOCK_ACCESS_FS_IOCTL_DEV;
	pb.parent_fd = fd;
	pb.allowed_access = rights & handled;
	if (pb.allowed_access &&
	    syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0)) {
		int e = errno;

		close(fd);
		return fv_err_errno(err, FV_E_SYS, e, "sandbox: Landlock rule for %s", path);
	}
	close(fd);
	return 0;
}

/* Where a worker may read guest images: where the command line named
 * any (a guest vm-create adds later may name others there), and the
 * --image-dir directories.  The count. */
static unsigned image_dirs(const struct cli_options *cli,
			   char dirs[][PATH_MAX], unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < cli->nr_vms; i++) {
		const struct guest_config *c = &cli->vms[i].cfg;
		const char *paths[] = { c->kernel, c->initrd, c->payload };

		for (unsigned k = 0; k < 3 && n < max; k++)
			if (paths[k][0])
				fv_parent_dir(paths[k], dirs[n++], PATH_MAX);
	}
	for (unsigned i = 0; i < cli->nr_image_dirs && n < max; i++)
		snprintf(dirs[n++], PATH_MAX, "%s", cli->image_dirs[i]);
	return n;
}

#define MAX_IMAGE_DIRS (3 * CLI_MAX_VMS + CLI_MAX_FILES)

static bool path_beneath(const char *path, const char *dir);

static int landlock_allow_images(int rs, uint64_t handled,
				 const struct cli_options *cli, struct fv_error *err)
{
	static char dirs[MAX_IMAGE_DIRS][PATH_MAX];
	unsigned n = image_dirs(cli, dirs, MAX_IMAGE_DIRS);

	for (unsigned i = 0; i < n; i++)
		if (landlock_allow(rs, handled, dirs[i], LL_READ, err))
			return -1;
	return 0;
}

/* Disk images: the files the command line names, each with the access
 * its guest was given (a read-only disk is opened read-only; a writable
 * one is written, never created or truncated).  A guest vm-create adds
 * later may use one of these (sandbox_check_images). */
static int landlock_allow_disks(int rs, uint64_t handled,
				const struct cli_options *cli, struct fv_error *err)
{
	for (unsigned i = 0; i < cli->nr_vms; i++) {
		const struct guest_config *c = &cli->vms[i].cfg;
		uint64_t rights = LANDLOCK_ACCESS_FS_READ_FILE;

		if (!c->disk[0])
			continue;
		if (!c->disk_ro)
			rights |= LANDLOCK_ACCESS_FS_WRITE_FILE;
		if (landlock_allow(rs, handled, c->disk, rights, err))
			return -1;
	}
	return 0;
}

/* May a guest vm-create adds use disk `path` (read-only or not)?  Only as
 * the command line gave it to some guest, or read-only beneath an image
 * directory. */
static bool disk_allowed(const struct cli_options *cli, const char *path,
			 bool read_only, char dirs[][PATH_MAX], unsigned n)
{
	for (unsigned i = 0; i < cli->nr_vms; i++) {
		const struct guest_config *c = &cli->vms[i].cfg;

		if (c->disk[0] && (read_only || !c->disk_ro) &&
		    path_beneath(path, c->disk))
			return true;
	}
	for (unsigned i = 0; read_only && i < n; i++)
		if (path_beneath(path, dirs[i]))
			return true;
	return false;
}

/* Does a guest of the command line have a virtio-net device?  Only then
 * may the workers open /dev/net/tun (the command line's guests have
 * their taps opened before the sandbox; a guest vm-create adds attaches
 * to its tap under it). */
static bool cli_has_net(const struct cli_options *cli)
{
	for (unsigned i = 0; i < cli->nr_vms; i++)
		if (cli->vms[i].cfg.net)
			return true;
	return false;
}

/* The first line of /sys/class/net/IF/FILE as a number; -1 if unread. */
static long long sysfs_net_value(const char *ifname, const char *file, int base)
{
	char path[128], line[64];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/net/%s/%s", ifname, file);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (fgets(line, sizeof(line), f))
		v = strtoll(line, NULL, base);
	fclose(f);
	return v;
}

/* May a sandboxed worker attach a guest vm-create adds to its tap?  With
 * no capability it cannot create one, nor attach to one another uid owns
 * (the kernel's rule), so the tap must exist, be a tap, and be this
 * process's uid's; and the command line must have let the workers open
 * /dev/net/tun at all. */
static int net_allowed(const struct cli_options *cli, const struct guest_config *c,
		       struct fv_error *err)
{
	unsigned uid = (unsigned)getuid();
	long long flags, owner;

	if (!cli_has_net(cli))
		return fv_err(err, FV_E_INVAL,
			      "net: no guest of the command line has net=, so a sandboxed worker may not open /dev/net/tun (docs/sandbox.md)");
	flags = sysfs_net_value(c->net_tap, "tun_flags", 16);
	owner = sysfs_net_value(c->net_tap, "owner", 10);
	if (sysfs_net_value(c->net_tap, "ifindex", 10) < 0)
		return fv_err(err, FV_E_INVAL,
			      "net: tap '%s' does not exist, and a sandboxed worker cannot create one: make it first (ip tuntap add dev %s mode tap user %u; docs/sandbox.md)",
			      c->net_tap, c->net_tap, uid);
	if (flags < 0 || !(flags & IFF_TAP))
		return fv_err(err, FV_E_INVAL, "net: '%s' is not a tap device",
			      c->net_tap);
	if (owner != (long long)uid)
		return fv_err(err, FV_E_INVAL,
			      "net: tap '%s' is not owned by uid %u, so a sandboxed worker may not attach to it (ip tuntap add dev %s mode tap user %u; docs/sandbox.md)",
			      c->net_tap, uid, c->net_tap, uid);
	return 0;
}

/* Is path (resolved) dir or beneath it (resolved)? */
static bool path_beneath(const char *path, const char *dir)
{
	char rp[PATH_MAX], rd[PATH_MAX];
	size_t n;

	if (!realpath(path, rp) || !realpath(dir, rd))
		return false;
	n = strlen(rd);
	if (n == 1)
		return true;            /* "/" */
	return !strncmp(rp, rd, n) && (rp[n] == '/' || rp[n] == '\0');
}

int sandbox_check_images(const struct cli_options *cli,
			 const struct guest_config *c, struct fv_error *err)
{
	static char dirs[MAX_IMAGE_DIRS][PATH_MAX];
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	const char *paths[] = { c->kernel, c->initrd, c->payload };
	const char *what[] = { "kernel", "initrd", "payload" };
	unsigned n;
	int r = 0;

	if (cli->sandbox == SANDBOX_OFF)
		return 0;
	pthread_mutex_lock(&lock);
	n = image_dirs(cli, dirs, MAX_IMAGE_DIRS);
	for (unsigned k = 0; k < 3 && !r; k++) {
		bool ok = !paths[k][0];

		for (unsigned i = 0; i < n && !ok; i++)
			ok = path_beneath(paths[k], dirs[i]);
		if (!ok)
			r = fv_err(err, FV_E_INVAL,
				   "%s '%s' is outside the directories a sandboxed worker may read (the command line's images' and --image-dir's; docs/sandbox.md)",
				   what[k], paths[k]);
	}
	if (!r && c->disk[0] && !disk_allowed(cli, c->disk, c->disk_ro, dirs, n))
		r = fv_err(err, FV_E_INVAL,
			   "disk '%s' was not given to a guest on the command line%s, so a sandboxed worker may not open it (docs/sandbox.md)",
			   c->disk, c->disk_ro ? " nor is it beneath an --image-dir" : " with write access");
	if (!r && c->net)
		r = net_allowed(cli, c, err);
	pthread_mutex_unlock(&lock);
	return r;
}

static int landlock_enter(const struct cli_options *opt,
			  const struct cli_options *cli, int abi, struct fv_error *err)
{
	struct ll_ruleset_attr attr = { 0 };
	size_t size = sizeof(attr.handled_access_fs);
	char self[64];
	int rs, r;

	attr.handled_access_fs = landlock_fs_rights(abi);
	if (abi >= 4) {
		/* No rule: no TCP port bound or connected to. */
		attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP |
					  LANDLOCK_ACCESS_NET_CONNECT_TCP;
		size = offsetof(struct ll_ruleset_attr, scoped);
	}
	if (abi >= 6) {
		/* Signals and abstract sockets reach this worker's own
		 * domain only: not the supervisor, not another worker. */
		attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
		size = sizeof(attr);
	}
	rs = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (rs < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "sandbox: Landlock ruleset");
	/* /proc/self is resolved now, to this process's own directory. */
	snprintf(self, sizeof(self), "/proc/%d", (int)getpid());
	r = landlock_allow(rs, attr.handled_access_fs, "/dev/kvm", LL_DEVICE, err) ||
	    landlock_allow(rs, attr.handled_access_fs, "/dev/userfaultfd", LL_DEVICE, err) ||
	    landlock_allow(rs, attr.handled_access_fs, self, LL_READ, err) ||
	    landlock_allow(rs, attr.handled_access_fs, "/proc/kpageflags", LL_READ, err) ||
	    landlock_allow(rs, attr.handled_access_fs, "/proc/sys/vm/max_map_count", LL_READ, err) ||
	    landlock_allow(rs, attr.handled_access_fs, "/sys/devices/system/cpu", LL_READ, err) ||
	    landlock_allow(rs, attr.handled_access_fs, opt->log_dir, LL_LOGS, err) ||
	    (opt->control &&
	     landlock_allow(rs, attr.handled_access_fs, opt->run_dir, LL_SOCKETS, err)) ||
	    landlock_allow_images(rs, attr.handled_access_fs, cli, err) ||
	    landlock_allow_disks(rs, attr.handled_access_fs, cli, err) ||
	    (cli_has_net(cli) &&
	     landlock_allow(rs, attr.handled_access_fs, "/dev/net/tun", LL_DEVICE, err));
	if (!r && syscall(SYS_landlock_restrict_self, rs, 0))
		r = fv_err_errno(err, FV_E_SYS, errno, "sandbox: landlock_restrict_self");
	close(rs);
	return r ? -1 : 0;
}

/* ---- capabilities ---- */

static int drop_capabilities(struct fv_error *err)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = { { 0 } };

	/* The bounding set first: dropping from it needs CAP_SETPCAP. */
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap) >= 0; cap++)
		if (prctl(PR_CAPBSET_DROP, cap) && errno != EINVAL)
			return fv_err_errno(err, FV_E_SYS, errno,
					    "sandbox: dropping capability %d", cap);
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return fv_err_errno(err, FV_E_SYS, errno, "sandbox: ambient capabilities");
	if (syscall(SYS_capset, &h, d))
		return fv_err_errno(err, FV_E_SYS, errno, "sandbox: capset");
	return 0;
}

/* ---- seccomp ---- */

/* The base list: allowed with any arguments.  Why each is needed:
 * docs/sandbox.md.  A device's or the engine's own needs are declared
 * beside it (declared[] below); a call both need is listed in both. */
static const char *const allowed_calls[] = {
	/* memory */
	"brk", "munmap", "mremap", "madvise", "mincore",
	"memfd_create", "fallocate", "ftruncate",
	/* files and descriptors (which files: Landlock) */
	"read", "write", "pread64", "pwrite64", "readv", "writev", "lseek",
	"openat", "close", "close_range", "dup", "dup2", "dup3", "fcntl",
	"fstat", "newfstatat", "statx", "unlink", "unlinkat", "mkdir", "mkdirat",
	"symlink", "symlinkat", "readlink", "readlinkat", "getdents64",
	"access", "faccessat", "faccessat2", "fchmod", "eventfd2", "pipe2",
	/* sockets (AF_UNIX only, below) */
	"chmod", "fchmodat", "bind", "listen", "accept4", "connect", "sendmsg", "recvmsg", "sendto",
	"recvfrom", "shutdown", "getsockopt", "setsockopt", "getsockname",
	"socketpair",
	/* waiting */
	"poll", "ppoll", "futex", "nanosleep", "clock_nanosleep", "sched_yield",
	"epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
	/* signals (to itself only: kill and tgkill below) */
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait",
	"sigaltstack", "restart_syscall",
	/* threads and the process */
	"set_robust_list", "get_robust_list", "rseq", "set_tid_address", "gettid",
	"getpid", "getppid", "getuid", "geteuid", "getgid", "getegid", "exit",
	"exit_group", "sched_getaffinity", "sched_setaffinity", "getrlimit",
	"prlimit64", "getrusage", "getrandom", "clock_gettime", "clock_getres",
	"gettimeofday", "uname", "sysinfo",
	/* KVM's and userfaultfd's requests (ioctl, below) */
};

static int add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name,
		    unsigned n, const struct scmp_arg_cmp *cmp, struct fv_error *err)
{
	int nr = seccomp_syscall_resolve_name(name);
	int r;

	if (nr == __NR_SCMP_ERROR)
		return 0;               /* not on this architecture */
	r = seccomp_rule_add_array(ctx, action, nr, n, cmp);
	if (r)
		return fv_err_errno(err, FV_E_SYS, -r, "sandbox: seccomp rule for %s", name);
	return 0;
}

/* Argument `arg` equals v; (argument & mask) equals v. */
static struct scmp_arg_cmp arg_eq(unsigned arg, scmp_datum_t v)
{
	return (struct scmp_arg_cmp){ .arg = arg, .op = SCMP_CMP_EQ, .datum_a = v };
}

static struct scmp_arg_cmp arg_masked(unsigned arg, scmp_datum_t mask, scmp_datum_t v)
{
	return (struct scmp_arg_cmp){ .arg = arg, .op = SCMP_CMP_MASKED_EQ,
				      .datum_a = mask, .datum_b = v };
}

/* The base list's rules with a condition (constant ones; kill and tgkill
 * to itself are added with its pid). */
static const struct syscall_rule base_rules[] = {
	/* Threads, never processes. */
	SYSCALL_MASKED("clone", 0, CLONE_THREAD, CLONE_THREAD),
	SYSCALL_EQ("socket", 0, AF_UNIX),
	/* ioctl: KVM's requests (type 0xAE, vmm/), userfaultfd's (0xAA,
	 * guest RAM's: memory/), and isatty's TCGETS on stdio. */
	SYSCALL_MASKED("ioctl", 1, 0xff00, 0xAE00),
	SYSCALL_MASKED("ioctl", 1, 0xff00, 0xAA00),
	SYSCALL_EQ("ioctl", 1, TCGETS),
	SYSCALL_EQ("prctl", 0, PR_SET_NAME),
	SYSCALL_EQ("prctl", 0, PR_GET_NAME),
	/* No new executable memory: code a guest smuggles into a device
	 * model's buffers can never be made runnable. */
	SYSCALL_MASKED("mmap", 2, PROT_EXEC, 0),
	SYSCALL_MASKED("mprotect", 2, PROT_EXEC, 0),
};

/* What the devices and the engine declare beside their code. */
static const struct syscall_rules *const declared[] = {
	&virtio_blk_syscalls, &virtio_net_syscalls,
	&dedup_store_syscalls, &dedup_fault_syscalls,
};

const struct syscall_rules *const *sandbox_declared(unsigned *n)
{
	*n = sizeof(declared) / sizeof(declared[0]);
	return declared;
}

static bool rule_same(const struct syscall_rule *a, const struct syscall_rule *b)
{
	return !strcmp(a->name, b->name) && a->test == b->test &&
	       (a->test == SYSCALL_ANY_ARGS ||
		(a->arg == b->arg && a->mask == b->mask && a->value == b->value));
}

/* Is r on the base list, or declared before declared[t].rules[k]? */
static bool rule_given(const struct syscall_rule *r, size_t t, unsigned k)
{
	for (size_t i = 0; i < sizeof(allowed_calls) / sizeof(allowed_calls[0]); i++)
		if (r->test == SYSCALL_ANY_ARGS && !strcmp(r->name, allowed_calls[i]))
			return true;
	for (size_t i = 0; i < sizeof(base_rules) / sizeof(base_rules[0]); i++)
		if (rule_same(r, &base_rules[i]))
			return true;
	for (size_t i = 0; i <= t; i++)
		for (unsigned j = 0; j < (i < t ? declared[i]->n : k); j++)
			if (rule_same(r, &declared[i]->rules[j]))
				return true;
	return false;
}

static int add_syscall_rule(scmp_filter_ctx ctx, const struct syscall_rule *r,
			    struct fv_error *err)
{
	struct scmp_arg_cmp cmp = r->test == SYSCALL_ARG_EQ ? arg_eq(r->arg, r->value) :
				  arg_masked(r->arg, r->mask, r->value);

	return add_rule(ctx, SCMP_ACT_ALLOW, r->name,
			r->test == SYSCALL_ANY_ARGS ? 0 : 1, &cmp, err);
}

/* The base list, then each declared rule the base or an earlier table
 * does not give already (libseccomp takes each rule once). */
static int seccomp_add_rules(scmp_filter_ctx ctx, struct fv_error *err)
{
	const scmp_datum_t self = (scmp_datum_t)getpid();
	const struct scmp_arg_cmp to_self = arg_eq(0, self);

	for (size_t i = 0; i < sizeof(allowed_calls) / sizeof(allowed_calls[0]); i++)
		if (add_rule(ctx, SCMP_ACT_ALLOW, allowed_calls[i], 0, NULL, err))
			return -1;
	for (size_t i = 0; i < sizeof(base_rules) / sizeof(base_rules[0]); i++)
		if (add_syscall_rule(ctx, &base_rules[i], err))
			return -1;
	for (size_t t = 0; t < sizeof(declared) / sizeof(declared[0]); t++)
		for (unsigned k = 0; k < declared[t]->n; k++)
			if (!rule_given(&declared[t]->rules[k], t, k) &&
			    add_syscall_rule(ctx, &declared[t]->rules[k], err)) {
				fv_err_prefix(err, "%s: ", declared[t]->who);
				return -1;
			}
	/* clone3 hides its flags in memory the filter cannot read, so glibc
	 * is told it does not exist and falls back to clone. */
	return add_rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL, err) ||
	       add_rule(ctx, SCMP_ACT_ALLOW, "kill", 1, &to_self, err) ||
	       add_rule(ctx, SCMP_ACT_ALLOW, "tgkill", 1, &to_self, err) ? -1 : 0;
}

static int seccomp_enter(enum sandbox_mode mode, struct fv_error *err)
{
	scmp_filter_ctx ctx = seccomp_init(mode == SANDBOX_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP);
	int r;

	if (!ctx)
		return fv_err(err, FV_E_SYS, "sandbox: seccomp_init");
	/* A call of another ABI (int 0x80, x32) ends the process.  The
	 * filter runs on every system call of every thread (the engine makes
	 * several per merge): a binary tree of the call numbers, not a list
	 * of them, keeps that cost to a few comparisons. */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (!r)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if (r)
		fv_err_errno(err, FV_E_SYS, -r, "sandbox: seccomp attribute");
	else if (seccomp_add_rules(ctx, err) == 0) {
		r = seccomp_load(ctx);
		if (r)
			fv_err_errno(err, FV_E_SYS, -r, "sandbox: loading the seccomp filter");
	} else
		r = -1;
	seccomp_release(ctx);
	return r ? -1 : 0;
}

/* ---- the SIGSYS handler ---- */

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1                   /* si_code of a filter's SIGSYS */
#endif

static struct sandbox_report *sigsys_report;

/* A call off the list: say which (for the supervisor, and on stderr), and
 * end the process with the signal, as SECCOMP_RET_KILL_PROCESS would.
 * Async-signal-safe: stores, write, sigaction, raise's tgkill. */
static void sigsys_handler(int sig, siginfo_t *si, void *uctx)
{
	static const char msg[] = "foldvm worker: a system call off its sandbox's list; ending\n";
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t set;

	(void)uctx;
	/* Read by the supervisor once this process is gone. */
	if (sigsys_report && si->si_code == SYS_SECCOMP) {
		sigsys_report->arch = si->si_arch;
		sigsys_report->nr = si->si_syscall;
	}
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
		/* nowhere to say it */
	}
	sigaction(sig, &dfl, NULL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
	_exit(128 + sig);               /* not reached */
}

/* ---- the whole ---- */

int sandbox_enter(const struct cli_options *opt, const struct cli_options *cli,
		  struct sandbox_report *report, struct fv_error *err)
{
	struct sigaction sa = { .sa_sigaction = sigsys_handler, .sa_flags = SA_SIGINFO };
	int abi;

	report->nr = -1;
	report->arch = 0;
	if (opt->sandbox == SANDBOX_OFF)
		return 0;
	/* Checked before Landlock resolves them: a planted symlink would
	 * hand the worker its target. */
	if (procstat_pagemap_preopen(err) || memroom_preopen(err) ||
	    fv_private_dir(opt->log_dir, "log directory", err) ||
	    (opt->control && fv_private_dir(opt->run_dir, "run directory", err)))
		return -1;
	abi = landlock_abi();
	if (!abi)
		fprintf(stderr, "foldvm: this kernel has no Landlock: a worker's files are not limited (docs/sandbox.md)\n");
	else if (landlock_enter(opt, cli, abi, err))
		return -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return fv_err_errno(err, FV_E_SYS, errno, "sandbox: no_new_privs");
	if (drop_capabilities(err))
		return -1;
	sigsys_report = report;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL))
		return fv_err_errno(err, FV_E_SYS, errno, "sandbox: SIGSYS handler");
	return seccomp_enter(opt->sandbox, err);
}

void sandbox_syscall_name(const struct sandbox_report *r, char *buf, size_t len)
{
	char *name = seccomp_syscall_resolve_num_arch(r->arch, r->nr);

	if (name)
		snprintf(buf, len, "%s (%d)", name, (int)r->nr);
	else
		snprintf(buf, len, "system call %d", (int)r->nr);
	free(name);
}
