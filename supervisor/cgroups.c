/*
 * cgroups.c - one cgroup v2 per trust domain, with --cgroup DIR: the
 * supervisor makes DIR/DOMAIN, sets its memory.max if --domain-mem-max
 * names the domain, and the spawner clones the domain's worker straight
 * into it (clone3 with CLONE_INTO_CGROUP), so every page the worker ever
 * touches is charged there and nothing runs outside it first.  The
 * cgroup goes when its worker has ended.
 *
 * The supervisor itself stays where it was started: a cgroup that gives
 * its children a controller may hold no process (cgroup v2's "no
 * internal processes" rule), so DIR holds only the domains' cgroups.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include "lib/fileutil.h"
#include "supervisor/sup_int.h"

/* Write a short value into DIR/FILE. */
static int cg_write(const char *dir, const char *file, const char *val,
		    struct fv_error *err)
{
	char path[PATH_MAX + 64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "%s", path);
	n = write(fd, val, strlen(val));
	if (n != (ssize_t)strlen(val)) {
		int e = n < 0 ? errno : EIO;

		close(fd);
		return fv_err_errno(err, FV_E_SYS, e, "writing '%s' to %s", val, path);
	}
	close(fd);
	return 0;
}

/* The first line of DIR/FILE holding KEY (or the first line, key NULL)
 * as a number; false when there is none ("max" is UINT64_MAX). */
static bool cg_read_u64(const char *dir, const char *file, const char *key,
			uint64_t *out)
{
	char path[PATH_MAX + 64], line[256];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		const char *v = line;
		size_t k = key ? strlen(key) : 0;

		if (key && (strncmp(line, key, k) || line[k] != ' '))
			continue;
		v += k + (key ? 1 : 0);
		if (!strncmp(v, "max", 3))
			*out = UINT64_MAX;
		else
			*out = strtoull(v, NULL, 10);
		found = true;
	}
	fclose(f);
	return found;
}

/* Does DIR's cgroup.subtree_control give its children `ctrl`? */
static bool cg_child_has(const char *dir, const char *ctrl)
{
	char path[PATH_MAX + 64], buf[512];
	size_t n = strlen(ctrl);
	FILE *f;
	bool has = false;

	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
	f = fopen(path, "re");
	if (!f)
		return false;
	if (fgets(buf, sizeof(buf), f))
		for (char *p = buf; (p = strstr(p, ctrl)); p += n)
			if ((p == buf || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || !p[n]))
				has = true;
	fclose(f);
	return has;
}

int sup_cgroups_start(struct supervisor *sup, struct fv_error *err)
{
	const struct cli_options *opt = sup->opt;
	char parent[PATH_MAX];
	struct statfs fs;

	if (!opt->cgroup[0])
		return 0;
	fv_parent_dir(opt->cgroup, parent, sizeof(parent));
	if (statfs(parent, &fs) || fs.f_type != CGROUP2_SUPER_MAGIC)
		return fv_err(err, FV_E_INVAL,
			      "--cgroup %s: %s is not in a cgroup v2 hierarchy (mount -t cgroup2)",
			      opt->cgroup, parent);
	if (mkdir(opt->cgroup, 0755) < 0 && errno != EEXIST)
		return fv_err_errno(err, FV_E_SYS, errno, "--cgroup: cannot create %s",
				    opt->cgroup);
	if (!opt->nr_domain_mem)
		return 0;
	/* memory.max of DIR/DOMAIN exists once DIR gives its children the
	 * memory controller, which DIR's parent must give DIR first. */
	if (!cg_child_has(opt->cgroup, "memory")) {
		if (!cg_child_has(parent, "memory"))
			return fv_err(err, FV_E_INVAL,
				      "--domain-mem-max needs the memory controller in cgroup v2, and %s/cgroup.subtree_control does not give it (on a host with cgroup v1 memory, it cannot be)",
				      parent);
		if (cg_write(opt->cgroup, "cgroup.subtree_control", "+memory", err))
			return -1;
	}
	return 0;
}

/* The domain's memory limit from --domain-mem-max, or 0. */
static uint64_t domain_mem_max(const struct cli_options *opt, const char *domain)
{
	for (unsigned i = 0; i < opt->nr_domain_mem; i++)
		if (!strcmp(opt->domain_mem[i].domain, domain))
			return opt->domain_mem[i].bytes;
	return 0;
}

int sup_cgroup_create(struct sup_worker *w, struct fv_error *err)
{
	const struct cli_options *opt = w->sup->opt;
	uint64_t max;

	w->cgroup_fd = -1;
	if (!opt->cgroup[0])
		return 0;
	snprintf(w->cgroup, sizeof(w->cgroup), "%s/%s", opt->cgroup, w->domain);
	/* One left by a supervisor that was killed: empty, as its workers
	 * died with it, so it is taken over. */
	if (mkdir(w->cgroup, 0755) < 0 && errno != EEXIST)
		return fv_err_errno(err, FV_E_SYS, errno, "cannot create cgroup %s",
				    w->cgroup);
	max = domain_mem_max(opt, w->domain);
	if (max) {
		char v[32];

		snprintf(v, sizeof(v), "%" PRIu64, max);
		if (cg_write(w->cgroup, "memory.max", v, err) ||
		    cg_write(w->cgroup, "memory.swap.max", "0", err))
			return -1;
	}
	w->cgroup_fd = open(w->cgroup, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (w->cgroup_fd < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "%s", w->cgroup);
	return 0;
}

void sup_cgroup_remove(struct sup_worker *w)
{
	if (w->cgroup_fd >= 0)
		close(w->cgroup_fd);
	w->cgroup_fd = -1;
	/* The path stays (host.c may be reading the figures, which are then
	 * gone); removing twice finds nothing the second time. */
	if (w->cgroup[0] && rmdir(w->cgroup) < 0 && errno != ENOENT)
		fprintf(stderr, "foldvm: cannot remove cgroup %s: %s\n", w->cgroup,
			strerror(errno));
}

bool sup_cgroup_oom_killed(const struct sup_worker *w)
{
	uint64_t n = 0;

	return w->cgroup[0] && cg_read_u64(w->cgroup, "memory.events", "oom_kill", &n) && n > 0;
}

struct json_object *sup_cgroup_stats(const struct sup_worker *w)
{
	struct json_object *o;
	uint64_t v;

	if (!w->cgroup[0])
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "path", json_object_new_string(w->cgroup));
	if (cg_read_u64(w->cgroup, "cpu.stat", "usage_usec", &v))
		json_object_object_add(o, "cpu-usec", json_object_new_int64((int64_t)v));
	if (cg_read_u64(w->cgroup, "memory.current", NULL, &v))
		json_object_object_add(o, "memory-current-bytes", json_object_new_int64((int64_t)v));
	if (cg_read_u64(w->cgroup, "memory.max", NULL, &v))
		json_object_object_add(o, "memory-max-bytes", v == UINT64_MAX ? NULL :
				       json_object_new_int64((int64_t)v));
	if (cg_read_u64(w->cgroup, "memory.events", "oom_kill", &v))
		json_object_object_add(o, "oom-kills", json_object_new_int64((int64_t)v));
	return o;
}
