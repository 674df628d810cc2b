/*
 * foldctl - talk to a running foldvm over its control sockets.
 *
 * Human-readable tables by default, --json for scripts.  Every command is
 * one QMP request (or a few) on the host socket (RUNDIR/host.qmp) or a
 * guest's socket (RUNDIR/NAME.qmp).  Exit status: 0 done, 1 foldvm
 * answered with an error, 2 usage error or no foldvm to talk to.
 */
#include <errno.h>
#include <stdbool.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include "config.h"
#include "control/console.h"
#include "lib/term.h"
#include "runner/spec.h"
#include "control/qmp_client.h"

#define TIMEOUT_MS 30000

struct ctl {
	char run_dir[PATH_MAX];
	bool json;
	unsigned interval_ms;
	long count;          /* watch: refreshes, -1 = forever */
};

static const char usage[] =
"Usage: foldctl [--run-dir DIR] [--json] COMMAND [ARGS]\n"
"\n"
"  list                       guests, their state, memory and savings\n"
"  stats [GUEST]              dedup statistics of one guest, or of the host\n"
"  watch [--interval S] [--count N]   savings over time (Ctrl-C to stop)\n"
"  create KEY=VALUE,...       start a guest (the keys of foldvm --vm)\n"
"  destroy GUEST              stop a guest and free its memory\n"
"  unmerge GUEST | --domain D [--rate PAGES]\n"
"                             merging off, and a private copy of every shared\n"
"                             page (default 25600 pages/s; 0: no limit)\n"
"  stop | cont | quit GUEST   pause, resume, or stop and remove a guest\n"
"  quit --all                 stop and remove every guest, wait until none is\n"
"                             listed (foldvm runs on; foldvm.service's ExecStop)\n"
"  raw GUEST|host JSON        send one QMP request, print the reply\n"
"  console GUEST              the guest's serial console on this terminal\n"
"                             (RUNDIR/GUEST.console); Ctrl-] detaches\n"
"\n"
"The run directory holds host.qmp, and NAME.qmp and NAME.console for each\n"
"guest; default: $FOLDVM_RUN_DIR, /run/foldvm (root),\n"
"$XDG_RUNTIME_DIR/foldvm, /tmp/foldvm-UID.  Protocol reference:\n"
"docs/qmp.md; the console: docs/console.md.\n";

static int die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "foldctl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	return 2;
}

static int socket_path(const struct ctl *c, const char *who, char *buf, size_t len)
{
	if (strcmp(who, "host") && !spec_name_ok(who))
		return die_usage("'%s' is not a guest name", who);
	if (snprintf(buf, len, "%s/%s.qmp", c->run_dir, who) >= (int)len)
		return die_usage("run directory path too long: %s", c->run_dir);
	return 0;
}

static int open_client(const struct ctl *c, const char *who, struct qmp_client *q)
{
	char path[PATH_MAX + 64];
	struct fv_error err;
	struct stat st;
	int r = socket_path(c, who, path, sizeof(path));

	if (r)
		return r;
	if (stat(path, &st) < 0) {
		if (!strcmp(who, "host"))
			fprintf(stderr, "foldctl: no foldvm running with run directory %s "
				"(no %s)\n", c->run_dir, path);
		else
			fprintf(stderr, "foldctl: no guest '%s' (no %s)\n", who, path);
		return 2;
	}
	if (qmpc_connect(q, path, true, TIMEOUT_MS, &err)) {
		fprintf(stderr, "foldctl: %s\n", err.msg);
		return 2;
	}
	return 0;
}

/* Execute and hand back "return" (owned by *reply) or print the error. */
static int run_command(const struct ctl *c, const char *who, const char *cmd,
		       struct json_object *args, struct json_object **reply,
		       struct json_object **ret)
{
	struct qmp_client q;
	struct json_object *err_obj;
	struct fv_error err;
	int r = open_client(c, who, &q);

	if (r)
		return r;
	*reply = qmpc_execute(&q, cmd, args, &err);
	qmpc_close(&q);
	if (!*reply) {
		fprintf(stderr, "foldctl: %s\n", err.msg);
		return 2;
	}
	if (json_object_object_get_ex(*reply, "error", &err_obj)) {
		struct json_object *d = NULL;

		json_object_object_get_ex(err_obj, "desc", &d);
		fprintf(stderr, "foldctl: %s: %s\n", cmd, d ? json_object_get_string(d) : "error");
		return 1;
	}
	json_object_object_get_ex(*reply, "return", ret);
	return 0;
}

static void print_json(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							JSON_C_TO_STRING_SPACED));
}

static int64_t get_int(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static const char *get_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

static double mib(int64_t bytes)
{
	return (double)bytes / 1048576.0;
}

static int cmd_list(const struct ctl *c)
{
	struct json_object *reply, *ret = NULL;
	int r = run_command(c, "host", "query-vms", NULL, &reply, &ret);

	if (r)
		return r;
	if (c->json) {
		print_json(ret);
	} else {
		printf("%-16s %-14s %8s %5s %6s %-16s %10s %9s\n", "NAME", "STATE",
		       "MEM(MiB)", "VCPUS", "DEDUP", "DOMAIN", "SAVED(MiB)", "MERGED");
		for (size_t i = 0; ret && i < json_object_array_length(ret); i++) {
			struct json_object *vm = json_object_array_get_idx(ret, i), *d = NULL;

			json_object_object_get_ex(vm, "dedup", &d);
			printf("%-16s %-14s %8.0f %5lld %6s %-16s %10.1f %9lld\n",
			       get_str(vm, "name"), get_str(vm, "status"),
			       mib(get_int(vm, "memory")), (long long)get_int(vm, "vcpus"),
			       d && json_object_get_boolean(json_object_object_get(d, "enabled")) ? "on" : "off",
			       d ? get_str(d, "domain") : "", d ? mib(get_int(d, "bytes-saved")) : 0.0,
			       d ? (long long)get_int(d, "pages-merged") : 0LL);
		}
	}
	json_object_put(reply);
	return 0;
}

/* Every member of a flat stats object, one per line, in reply order. */
static void print_kv(struct json_object *o)
{
	json_object_object_foreach(o, key, val) {
		if (json_object_is_type(val, json_type_object) ||
		    json_object_is_type(val, json_type_array))
			continue;
		printf("  %-24s %s\n", key, json_object_get_string(val));
	}
}

/* The host's per-domain figures: one line per trust domain's worker. */
static void print_domains(struct json_object *o)
{
	struct json_object *doms;

	if (!json_object_object_get_ex(o, "domains", &doms) ||
	    !json_object_is_type(doms, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(doms); i++) {
		struct json_object *d = json_object_array_get_idx(doms, i);

		printf("  domain %-16s pid %-8lld saved %9.1f MiB  merges %9lld  "
		       "VMAs %lld of %lld  engine CPU %.2f s\n",
		       get_str(d, "domain"), (long long)get_int(d, "pid"),
		       mib(get_int(d, "saved-bytes")), (long long)get_int(d, "merges"),
		       (long long)get_int(d, "vmas-used"),
		       (long long)get_int(d, "vma-budget"),
		       (double)get_int(d, "scanner-cpu-ns") / 1e9);
	}
}

static int cmd_stats(const struct ctl *c, const char *guest)
{
	struct json_object *reply, *ret = NULL;
	int r = guest ? run_command(c, guest, "query-dedup", NULL, &reply, &ret)
		      : run_command(c, "host", "query-dedup-host", NULL, &reply, &ret);

	if (r)
		return r;
	if (c->json) {
		print_json(ret);
	} else {
		printf("%s\n", guest ? guest : "host");
		print_kv(ret);
		print_domains(ret);
	}
	json_object_put(reply);
	return 0;
}

static int cmd_watch(const struct ctl *c)
{
	for (long i = 0; c->count < 0 || i < c->count; i++) {
		struct json_object *reply, *ret = NULL;
		time_t now = time(NULL);
		char ts[32];
		int r = run_command(c, "host", "query-dedup-host", NULL, &reply, &ret);

		if (r)
			return r;
		strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&now));
		if (c->json)
			printf("%s\n", json_object_to_json_string_ext(ret, JSON_C_TO_STRING_PLAIN));
		else
			printf("%s  saved %9.1f MiB  store %8lld frames  merges %9lld  "
			       "unmerges %8lld  passes %6lld%s\n", ts,
			       mib(get_int(ret, "saved-bytes")),
			       (long long)get_int(ret, "store-frames"),
			       (long long)get_int(ret, "merges"),
			       (long long)get_int(ret, "unmerges"),
			       (long long)get_int(ret, "passes"),
			       json_object_get_boolean(json_object_object_get(ret, "vma-budget-exhausted"))
			       ? "  VMA budget exhausted" : "");
		fflush(stdout);
		json_object_put(reply);
		if (c->count < 0 || i + 1 < c->count)
			usleep(c->interval_ms * 1000u);
	}
	return 0;
}

/* One value of `create` with the JSON type vm-create documents for its
 * key: a number or on/off that reads as one goes as an integer or a
 * boolean; anything else (a size such as "64M", a name, a value that does
 * not read) as a string, for foldvm to judge. */
static struct json_object *kv_value(const char *key, const char *val)
{
	const struct spec_key *k = spec_key_find(key);
	struct fv_error e;
	uint64_t x;
	bool b;

	if (k && k->type == SPEC_T_UINT &&
	    !spec_parse_uint(val, 0, UINT64_MAX, &x, NULL, &e))
		return json_object_new_uint64(x);
	if (k && k->type == SPEC_T_BOOL && !spec_parse_bool(val, &b, &e))
		return json_object_new_boolean(b);
	return json_object_new_string(val);
}

/* "name=a,mem=64M,vcpus=2" -> {"name": "a", "mem": "64M", "vcpus": 2};
 * foldvm validates. */
static struct json_object *spec_to_args(const char *spec)
{
	struct json_object *args = json_object_new_object();
	char *copy = strdup(spec), *cursor = copy, *tok;

	if (!copy) {
		json_object_put(args);
		return NULL;
	}
	/* The same splitting as foldvm's --vm: ",," is a literal comma. */
	while ((tok = spec_next_kv(&cursor))) {
		char *eq = strchr(tok, '=');

		if (!eq) {
			json_object_put(args);
			free(copy);
			return NULL;
		}
		*eq = '\0';
		json_object_object_add(args, tok, kv_value(tok, eq + 1));
	}
	free(copy);
	return args;
}

static int cmd_simple(const struct ctl *c, const char *who, const char *cmd,
		      struct json_object *args)
{
	struct json_object *reply, *ret = NULL;
	int r = run_command(c, who, cmd, args, &reply, &ret);

	json_object_put(args);
	if (r)
		return r;
	if (c->json)
		print_json(ret ? ret : reply);
	json_object_put(reply);
	return 0;
}

/* How many guests host.qmp lists, or -1 (the reason printed). */
static long count_guests(const struct ctl *c)
{
	struct json_object *reply, *ret = NULL;
	long n;

	if (run_command(c, "host", "query-vms", NULL, &reply, &ret))
		return -1;
	n = ret ? (long)json_object_array_length(ret) : 0;
	json_object_put(reply);
	return n;
}

/*
 * quit --all: "quit" on every guest's socket, then wait until host.qmp
 * lists none, since a guest's destruction ends asynchronously (its driver
 * thread stops first; docs/qmp.md).  A guest that went away between the
 * list and its quit is no error: only what is still listed at the end is.
 */
static int cmd_quit_all(const struct ctl *c)
{
	struct json_object *reply, *ret = NULL;
	int r = run_command(c, "host", "query-vms", NULL, &reply, &ret);
	size_t n = ret ? json_object_array_length(ret) : 0;
	long left;

	if (r)
		return r;
	for (size_t i = 0; i < n; i++)
		cmd_simple(c, get_str(json_object_array_get_idx(ret, i), "name"), "quit", NULL);
	json_object_put(reply);
	for (unsigned waited_ms = 0; (left = count_guests(c)) > 0; waited_ms += 100) {
		if (waited_ms >= TIMEOUT_MS) {
			fprintf(stderr, "foldctl: quit --all: %ld guest(s) still listed %d s "
				"after quit (foldctl list)\n", left, TIMEOUT_MS / 1000);
			return 1;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000000L }, NULL);
	}
	if (left < 0)
		return 2;
	if (!c->json)
		printf("quit %zu guest(s); none left\n", n);
	return 0;
}

static int cmd_raw(const struct ctl *c, const char *who, const char *line)
{
	struct qmp_client q;
	struct json_object *reply;
	struct fv_error err;
	int r = open_client(c, who, &q);

	if (r)
		return r;
	if (qmpc_send_line(&q, line, &err)) {
		fprintf(stderr, "foldctl: %s\n", err.msg);
		qmpc_close(&q);
		return 2;
	}
	/* Events may arrive before the reply: skip them. */
	while ((reply = qmpc_read(&q, &err)) &&
	       json_object_object_get_ex(reply, "event", NULL))
		json_object_put(reply);
	if (!reply) {
		fprintf(stderr, "foldctl: %s\n", err.msg);
		qmpc_close(&q);
		return 2;
	}
	printf("%s\n", json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN));
	r = json_object_object_get_ex(reply, "error", NULL) ? 1 : 0;
	json_object_put(reply);
	qmpc_close(&q);
	return r;
}

/* unmerge GUEST | --domain D [--rate PAGES] */
static int cmd_unmerge(const struct ctl *c, int argc, char **argv)
{
	struct json_object *args = json_object_new_object(), *reply, *ret = NULL;
	bool target = false;
	int r;

	for (int i = 1; i < argc; i++) {
		char *end;

		if (!strcmp(argv[i], "--rate") && i + 1 < argc) {
			long long rate = strtoll(argv[++i], &end, 10);

			if (*end || end == argv[i] || rate < 0) {
				json_object_put(args);
				return die_usage("unmerge: --rate '%s' (pages/s, 0: no limit)", argv[i]);
			}
			json_object_object_add(args, "rate", json_object_new_int64(rate));
		} else if (!target && !strcmp(argv[i], "--domain") && i + 1 < argc) {
			json_object_object_add(args, "domain", json_object_new_string(argv[++i]));
			target = true;
		} else if (!target && argv[i][0] != '-') {
			json_object_object_add(args, "vm", json_object_new_string(argv[i]));
			target = true;
		} else {
			json_object_put(args);
			return die_usage("unmerge: '%s' (unmerge GUEST | --domain D [--rate PAGES])",
					 argv[i]);
		}
	}
	if (!target) {
		json_object_put(args);
		return die_usage("%s", "unmerge: which guest, or --domain D?");
	}
	r = run_command(c, "host", "dedup-unmerge", args, &reply, &ret);
	json_object_put(args);
	if (r)
		return r;
	if (c->json)
		print_json(ret ? ret : reply);
	else if (ret)
		printf("unmerging %lld shared pages (progress: foldctl stats GUEST)\n",
		       (long long)json_object_get_int64(json_object_object_get(ret, "pages")));
	json_object_put(reply);
	return 0;
}

/*
 * The guest's serial console, as `virsh console`: the terminal in raw mode
 * (when stdin is one) and Ctrl-] to detach; without a terminal, input is
 * copied as it is and its end detaches.  Exit status 0 when detached, 1
 * when the console closed (the guest ended, or another client has it:
 * foldvm says so in a line).
 */
static int cmd_console(const struct ctl *c, const char *guest)
{
	struct term_relay r = {
		.in_fd = STDIN_FILENO, .out_fd = STDOUT_FILENO, .stop_fd = -1,
		.esc = { .key = TERM_CTRL(']'), .prefix = false },
		.shut_on_eof = true,
	};
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	enum term_relay_end end;
	bool tty = isatty(STDIN_FILENO);
	struct fv_error err;
	struct stat st;
	int fd;

	if (!spec_name_ok(guest))
		return die_usage("'%s' is not a guest name", guest);
	if (snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/%s" CONSOLE_SUFFIX,
		     c->run_dir, guest) >= (int)sizeof(addr.sun_path))
		return die_usage("run directory path too long: %s", c->run_dir);
	if (stat(addr.sun_path, &st) < 0) {
		fprintf(stderr, "foldctl: no console for guest '%s' (no %s)\n",
			guest, addr.sun_path);
		return 2;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)&addr, sizeof(addr)) < 0) {
		fprintf(stderr, "foldctl: cannot connect to %s: %s\n", addr.sun_path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return 2;
	}
	r.sock = fd;
	r.escapes = tty;
	if (tty) {
		if (term_raw_enter(STDIN_FILENO, &err)) {
			fprintf(stderr, "foldctl: %s\n", err.msg);
			close(fd);
			return 2;
		}
		fprintf(stderr, "Connected to guest %s\nEscape character is ^] (Ctrl + ])\n",
			guest);
	}
	end = term_relay_run(&r);
	term_restore();
	close(fd);
	if (end == TERM_END_QUIT) {
		fprintf(stderr, "\nfoldctl: detached from guest %s\n", guest);
		return 0;
	}
	if (end == TERM_END_CLOSED) {
		if (tty)
			fprintf(stderr, "\nfoldctl: the console of guest %s closed\n", guest);
		return 1;
	}
	fprintf(stderr, "foldctl: writing the console's output failed\n");
	return 1;
}

static int dispatch(struct ctl *c, int argc, char **argv)
{
	const char *cmd = argv[0];

	if (!strcmp(cmd, "list") && argc == 1)
		return cmd_list(c);
	if (!strcmp(cmd, "stats") && argc <= 2)
		return cmd_stats(c, argc == 2 ? argv[1] : NULL);
	if (!strcmp(cmd, "watch"))
		return cmd_watch(c);
	if (!strcmp(cmd, "create") && argc == 2) {
		struct json_object *args = spec_to_args(argv[1]);

		if (!args)
			return die_usage("create: '%s' is not KEY=VALUE,...", argv[1]);
		return cmd_simple(c, "host", "vm-create", args);
	}
	if (!strcmp(cmd, "destroy") && argc == 2) {
		struct json_object *args = json_object_new_object();

		json_object_object_add(args, "name", json_object_new_string(argv[1]));
		return cmd_simple(c, "host", "vm-destroy", args);
	}
	if (!strcmp(cmd, "unmerge"))
		return cmd_unmerge(c, argc, argv);
	if (!strcmp(cmd, "quit") && argc == 2 && !strcmp(argv[1], "--all"))
		return cmd_quit_all(c);
	if ((!strcmp(cmd, "stop") || !strcmp(cmd, "cont") || !strcmp(cmd, "quit")) &&
	    argc == 2)
		return cmd_simple(c, argv[1], cmd, NULL);
	if (!strcmp(cmd, "raw") && argc == 3)
		return cmd_raw(c, argv[1], argv[2]);
	if (!strcmp(cmd, "console") && argc == 2)
		return cmd_console(c, argv[1]);
	return die_usage("bad command or arguments: %s (see foldctl --help)", cmd);
}

static int parse_watch_opts(struct ctl *c, int *argc, char **argv)
{
	int out = 1;

	for (int i = 1; i < *argc; i++) {
		char *end;

		if (!strcmp(argv[i], "--interval") && i + 1 < *argc) {
			double s = strtod(argv[++i], &end);

			if (*end || s < 0.1 || s > 3600)
				return die_usage("--interval '%s' (0.1..3600 seconds)", argv[i]);
			c->interval_ms = (unsigned)(s * 1000);
		} else if (!strcmp(argv[i], "--count") && i + 1 < *argc) {
			c->count = strtol(argv[++i], &end, 10);
			if (*end || c->count < 1 || c->count > 1000000)
				return die_usage("--count '%s' (1..1000000)", argv[i]);
		} else {
			argv[out++] = argv[i];
		}
	}
	*argc = out;
	return 0;
}

int main(int argc, char **argv)
{
	struct ctl c = { .interval_ms = 1000, .count = -1 };
	int i = 1, r;

	qmpc_default_run_dir(c.run_dir, sizeof(c.run_dir));
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--json")) {
			c.json = true;
		} else if (!strcmp(argv[i], "--run-dir") && i + 1 < argc) {
			snprintf(c.run_dir, sizeof(c.run_dir), "%s", argv[++i]);
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage, stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			printf("foldctl %s\n", PACKAGE_VERSION);
			return 0;
		} else {
			return die_usage("unknown option '%s' (see foldctl --help)", argv[i]);
		}
	}
	if (i >= argc)
		return die_usage("%s", "no command given (see foldctl --help)");
	argc -= i;
	argv += i;
	if (!strcmp(argv[0], "watch") && (r = parse_watch_opts(&c, &argc, argv)))
		return r;
	return dispatch(&c, argc, argv);
}
