/*
 * metrics.c - the Prometheus text exposition format (version 0.0.4) from
 * typed figures, and the HTTP request and response of /metrics
 * (metrics.h).  docs/metrics.md lists every metric.
 *
 * Every metric is a row of a table: its name, type, help, and where its
 * value is in the figures (an offset, the field's type, a unit to turn
 * into Prometheus' base units: pages into bytes, nanoseconds into
 * seconds, hundredths of a percent into a ratio).  Values are written
 * exactly, as integers or fixed decimals, never through a double.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include "control/metrics.h"

enum mkind { MK_U64, MK_U32, MK_UINT, MK_BOOL };
enum munit {
	MU_ONE,         /* as it is */
	MU_PAGES,       /* 4 KiB pages, shown as bytes */
	MU_NS,          /* nanoseconds, shown as seconds */
	MU_CENTI_PCT,   /* hundredths of a percent, shown as a ratio */
	MU_PCT,         /* percent, shown as a ratio */
};
enum mneed {
	MN_ALL,         /* always */
	MN_DEDUP,       /* a guest with dedup on / a process with an engine */
	MN_BALLOON,     /* a guest with a balloon */
};

struct mdef {
	const char *name;       /* after the prefix */
	const char *type;       /* "gauge" or "counter" */
	const char *help;
	size_t off;
	enum mkind kind;
	enum munit unit;
	enum mneed need;
};

#define VM(n, t, f, k, u, nd, h) \
	{ n, t, h, offsetof(struct vm_figures, f), k, u, nd }
#define G "gauge"
#define C "counter"

/* foldvm_vm_*{vm, domain}: query-vms and query-dedup. */
static const struct mdef vm_defs[] = {
	VM("memory_bytes", G, mem_size, MK_U64, MU_ONE, MN_ALL, "Guest RAM size."),
	VM("vcpus", G, nr_vcpus, MK_UINT, MU_ONE, MN_ALL, "vCPUs of the guest."),
	VM("rss_bytes", G, ram.rss, MK_U64, MU_ONE, MN_ALL,
	   "Resident bytes of the guest's RAM range (the kernel's smaps)."),
	VM("pss_bytes", G, ram.pss, MK_U64, MU_ONE, MN_ALL,
	   "Proportional set size of the guest's RAM range."),
	VM("anon_bytes", G, ram.anon, MK_U64, MU_ONE, MN_ALL,
	   "Private (anonymous) bytes of the guest's RAM range."),
	VM("balloon_inflated_bytes", G, balloon_c.inflated_pages, MK_U64, MU_PAGES,
	   MN_BALLOON, "Bytes the guest gave to its balloon."),
	VM("balloon_reported_free_bytes_total", C, balloon_c.reported_bytes, MK_U64,
	   MU_ONE, MN_BALLOON, "Bytes the guest reported free (free page reporting)."),
	VM("dedup_merging", G, merging, MK_BOOL, MU_ONE, MN_DEDUP,
	   "1 while the engine merges this guest's memory (dedup-set enabled)."),
	VM("saved_bytes", G, dstats.bytes_saved, MK_U64, MU_ONE, MN_DEDUP,
	   "Bytes saved: merged and zero pages less the guest's share of frames."),
	VM("merged_bytes", G, dstats.pages_merged, MK_U64, MU_PAGES, MN_DEDUP,
	   "Bytes of guest pages now on a shared frame."),
	VM("merged_in_place_bytes", G, dstats.pages_in_place, MK_U64, MU_PAGES, MN_DEDUP,
	   "Of the merged bytes, those merged in place (same address, no VMA)."),
	VM("zero_bytes", G, dstats.pages_zero, MK_U64, MU_PAGES, MN_DEDUP,
	   "Bytes of zero pages discarded."),
	VM("shared_frames", G, dstats.frames_referenced, MK_U64, MU_ONE, MN_DEDUP,
	   "Distinct store frames the guest maps."),
	VM("vmas", G, dstats.vmas, MK_U64, MU_ONE, MN_DEDUP, "VMAs the guest's merges added."),
	VM("merges_total", C, dstats.merges, MK_U64, MU_ONE, MN_DEDUP, "Successful merges."),
	VM("merges_in_place_total", C, dstats.merges_in_place, MK_U64, MU_ONE, MN_DEDUP,
	   "Merges in place."),
	VM("merge_races_total", C, dstats.merge_races, MK_U64, MU_ONE, MN_DEDUP,
	   "Merges given up: the content changed under write protection."),
	VM("unmerges_total", C, dstats.unmerges, MK_U64, MU_ONE, MN_DEDUP,
	   "Copy-on-write breaks of merged pages (guest writes)."),
	VM("budget_skipped_merges_total", C, dstats.budget_skipped, MK_U64, MU_ONE, MN_DEDUP,
	   "Merges not done for the VMA budget."),
	VM("scanned_pages_total", C, dstats.pages_scanned, MK_U64, MU_ONE, MN_DEDUP,
	   "Page visits of the scanner."),
	VM("scan_passes_total", C, dstats.full_passes, MK_U64, MU_ONE, MN_DEDUP,
	   "Full passes of the scanner over the guest's RAM."),
	VM("scanner_cpu_seconds_total", C, dstats.cpu_ns, MK_U64, MU_NS, MN_DEDUP,
	   "Scanner CPU time spent on this guest."),
};

#define HF(n, t, f, k, u, nd, h) \
	{ n, t, h, offsetof(struct host_figures, f), k, u, nd }

/* foldvm_domain_*{domain} (a worker's) and foldvm_host_* (all of them
 * and the supervisor): query-dedup-host. */
static const struct mdef host_defs[] = {
	HF("process_rss_bytes", G, rss, MK_U64, MU_ONE, MN_ALL, "Resident bytes of the process(es)."),
	HF("process_pss_bytes", G, pss, MK_U64, MU_ONE, MN_ALL,
	   "Proportional set size of the process(es)."),
	HF("dedup_enabled", G, enabled, MK_BOOL, MU_ONE, MN_ALL, "1 if a dedup engine runs."),
	HF("guests", G, engine.guests, MK_U64, MU_ONE, MN_DEDUP, "Guests the engine serves."),
	HF("saved_bytes", G, engine.saved_bytes, MK_U64, MU_ONE, MN_DEDUP,
	   "Bytes saved: the guests' saved bytes added up."),
	HF("store_frames", G, engine.store_frames, MK_U64, MU_ONE, MN_DEDUP,
	   "Shared frames holding content."),
	HF("store_bytes", G, engine.store_bytes, MK_U64, MU_ONE, MN_DEDUP,
	   "Bytes the store holds (the kernel's count)."),
	HF("merged_in_place_bytes", G, engine.pages_in_place, MK_U64, MU_PAGES, MN_DEDUP,
	   "Bytes merged in place."),
	HF("vma_budget", G, engine.vma_budget, MK_U64, MU_ONE, MN_DEDUP, "VMAs merges may add."),
	HF("vmas", G, engine.vmas_used, MK_U64, MU_ONE, MN_DEDUP, "VMAs merges added."),
	HF("vma_budget_exhausted", G, engine.budget_exhausted, MK_BOOL, MU_ONE, MN_DEDUP,
	   "1 if a merge was skipped for the VMA budget."),
	HF("vma_limit", G, engine.max_map_count, MK_U64, MU_ONE, MN_DEDUP,
	   "VMAs a process may map: vm.max_map_count at start."),
	HF("scan_passes_total", C, engine.passes, MK_U64, MU_ONE, MN_DEDUP,
	   "Full passes over all guests."),
	HF("merges_total", C, engine.merges, MK_U64, MU_ONE, MN_DEDUP, "Successful merges."),
	HF("unmerges_total", C, engine.unmerges, MK_U64, MU_ONE, MN_DEDUP,
	   "Copy-on-write breaks of merged pages."),
	HF("scanner_cpu_seconds_total", C, engine.cpu_ns, MK_U64, MU_NS, MN_DEDUP,
	   "Scanner and fault thread CPU time."),
	HF("pass_cpu_max_seconds", G, engine.pass_cpu_max_ns, MK_U64, MU_NS, MN_DEDUP,
	   "CPU time of the dearest full pass."),
	HF("pass_cpu_last_seconds", G, engine.pass_cpu_last_ns, MK_U64, MU_NS, MN_DEDUP,
	   "CPU time of the latest full pass."),
	HF("memory_pressure_known", G, engine.pressure_known, MK_BOOL, MU_ONE, MN_DEDUP,
	   "1 if memory pressure (PSI) could be read."),
	HF("memory_pressure_paused", G, engine.pressure_paused, MK_BOOL, MU_ONE, MN_DEDUP,
	   "1 while new merges wait for memory pressure to fall."),
	HF("memory_pressure_cgroup", G, engine.pressure_cgroup, MK_BOOL, MU_ONE, MN_DEDUP,
	   "1 if the pressure read is a cgroup's, not the host's."),
	HF("memory_pressure_some_avg10_ratio", G, engine.pressure_some_avg10, MK_U32,
	   MU_CENTI_PCT, MN_DEDUP, "PSI memory some avg10, as a ratio."),
	HF("memory_pressure_full_avg10_ratio", G, engine.pressure_full_avg10, MK_U32,
	   MU_CENTI_PCT, MN_DEDUP, "PSI memory full avg10, as a ratio."),
	HF("memory_pressure_threshold_ratio", G, engine.pressure_pct, MK_UINT, MU_PCT,
	   MN_DEDUP, "Pressure that pauses merging (0: never)."),
	HF("memory_pressure_pauses_total", C, engine.pressure_pauses, MK_U64, MU_ONE,
	   MN_DEDUP, "Times merging paused for memory pressure."),
};

static uint64_t field(const void *base, const struct mdef *d)
{
	const char *p = (const char *)base + d->off;

	switch (d->kind) {
	case MK_U32: return *(const uint32_t *)(const void *)p;
	case MK_UINT: return *(const unsigned *)(const void *)p;
	case MK_BOOL: return *(const bool *)(const void *)p;
	case MK_U64:
	default: return *(const uint64_t *)(const void *)p;
	}
}

/* The value in Prometheus' base unit, written exactly. */
static void put_value(FILE *f, uint64_t v, enum munit u)
{
	switch (u) {
	case MU_PAGES:
		fprintf(f, "%" PRIu64, v * 4096);
		break;
	case MU_NS:
		fprintf(f, "%" PRIu64 ".%09" PRIu64, v / 1000000000, v % 1000000000);
		break;
	case MU_CENTI_PCT:
		fprintf(f, "%" PRIu64 ".%04" PRIu64, v / 10000, v % 10000);
		break;
	case MU_PCT:
		fprintf(f, "%" PRIu64 ".%02" PRIu64, v / 100, v % 100);
		break;
	case MU_ONE:
	default:
		fprintf(f, "%" PRIu64, v);
		break;
	}
}

/* A label value, escaped as the format asks (\\, \", \n). */
static void put_label(FILE *f, const char *k, const char *v, bool first)
{
	fprintf(f, "%s%s=\"", first ? "" : ",", k);
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
	fputc('"', f);
}

static void put_head(FILE *f, const char *prefix, const struct mdef *d)
{
	fprintf(f, "# HELP %s%s %s\n# TYPE %s%s %s\n", prefix, d->name, d->help,
		prefix, d->name, d->type);
}

static bool vm_has(const struct vm_figures *v, enum mneed n)
{
	return n == MN_ALL || (n == MN_DEDUP && v->dedup) ||
	       (n == MN_BALLOON && v->balloon);
}

static void render_vms(FILE *f, const struct metrics_input *in)
{
	for (size_t i = 0; i < sizeof(vm_defs) / sizeof(vm_defs[0]); i++) {
		const struct mdef *d = &vm_defs[i];

		put_head(f, "foldvm_vm_", d);
		for (unsigned k = 0; k < in->nr_vms; k++) {
			const struct vm_figures *v = &in->vm[k];

			if (!vm_has(v, d->need))
				continue;
			fprintf(f, "foldvm_vm_%s{", d->name);
			put_label(f, "vm", v->name, true);
			put_label(f, "domain", v->domain, false);
			fputs("} ", f);
			put_value(f, field(v, d), d->unit);
			fputc('\n', f);
		}
	}
}

/* One process's figures (domain: its label) or the host's (NULL). */
static void render_host_sample(FILE *f, const struct mdef *d,
			       const struct host_figures *h, const char *domain)
{
	if (d->need == MN_DEDUP && !h->enabled)
		return;
	fprintf(f, "foldvm_%s_%s", domain ? "domain" : "host", d->name);
	if (domain) {
		fputc('{', f);
		put_label(f, "domain", domain, true);
		fputc('}', f);
	}
	fputc(' ', f);
	put_value(f, field(h, d), d->unit);
	fputc('\n', f);
}

static void render_hosts(FILE *f, const struct metrics_input *in)
{
	for (size_t i = 0; i < sizeof(host_defs) / sizeof(host_defs[0]); i++) {
		const struct mdef *d = &host_defs[i];

		put_head(f, "foldvm_domain_", d);
		for (unsigned k = 0; k < in->nr_domains; k++)
			render_host_sample(f, d, &in->dom[k].fig, in->dom[k].domain);
		put_head(f, "foldvm_host_", d);
		render_host_sample(f, d, &in->host, NULL);
	}
}

char *metrics_render(const struct metrics_input *in, size_t *len)
{
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	bool bad;

	if (!f)
		return NULL;
	fputs("# HELP foldvm_domains Trust domains with a worker process.\n"
	      "# TYPE foldvm_domains gauge\n", f);
	fprintf(f, "foldvm_domains %u\n", in->nr_domains);
	render_hosts(f, in);
	render_vms(f, in);
	bad = ferror(f) != 0;
	if (fclose(f) != 0 || bad) {
		free(out);
		return NULL;
	}
	*len = n;
	return out;
}

/* ---- HTTP ---- */

static int parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > 65535)
			return -1;
	}
	if (v == 0)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

int metrics_addr_parse(const char *addr, struct sockaddr_storage *sa,
		       socklen_t *sa_len, struct fv_error *err)
{
	const char *colon = strrchr(addr, ':');
	char host[64];
	uint16_t port;

	memset(sa, 0, sizeof(*sa));
	if (addr[0] == '/') {
		struct sockaddr_un *un = (struct sockaddr_un *)sa;

		if (strlen(addr) >= sizeof(un->sun_path))
			return fv_err(err, FV_E_INVAL, "--metrics: the socket path '%s' is over %zu bytes",
				      addr, sizeof(un->sun_path) - 1);
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, addr);
		*sa_len = sizeof(*un);
		return 0;
	}
	if (!colon || (size_t)(colon - addr) >= sizeof(host) || parse_port(colon + 1, &port))
		return fv_err(err, FV_E_INVAL,
			      "--metrics wants IPV4:PORT, [IPV6]:PORT or a socket path, not '%s'", addr);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;

		host[strlen(host) - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &in6->sin6_addr) != 1)
			return fv_err(err, FV_E_INVAL, "--metrics: '%s' is not an IPv6 address", host + 1);
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*sa_len = sizeof(*in6);
		return 0;
	}
	struct sockaddr_in *in4 = (struct sockaddr_in *)sa;

	if (inet_pton(AF_INET, host, &in4->sin_addr) != 1)
		return fv_err(err, FV_E_INVAL, "--metrics: '%s' is not an IPv4 address", host);
	in4->sin_family = AF_INET;
	in4->sin_port = htons(port);
	*sa_len = sizeof(*in4);
	return 0;
}

/* The end of the head (after its blank line), or NULL. */
static const char *head_end(const char *buf, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return buf + i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return buf + i + 3;
	}
	return NULL;
}

/* RFC 9110's token characters, the ones a method is made of. */
static bool tchar(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

enum metrics_req metrics_request(const char *buf, size_t len)
{
	const char *end, *p = buf, *m, *t;
	size_t mlen, tlen;

	if (len > METRICS_REQ_MAX)
		return METRICS_REQ_TOO_LARGE;
	if (memchr(buf, '\0', len))
		return METRICS_REQ_BAD;
	end = head_end(buf, len);
	if (!end)
		return len == METRICS_REQ_MAX ? METRICS_REQ_TOO_LARGE : METRICS_REQ_MORE;
	/* request-line = method SP request-target SP HTTP-version CRLF */
	for (m = p; tchar(*p); p++)
		;
	mlen = (size_t)(p - m);
	if (mlen == 0 || *p++ != ' ')
		return METRICS_REQ_BAD;
	for (t = p; *p > ' ' && *p != 0x7f; p++)
		;
	tlen = (size_t)(p - t);
	if (tlen == 0 || *p++ != ' ')
		return METRICS_REQ_BAD;
	if (strncmp(p, "HTTP/1.", 7) || (p[7] != '0' && p[7] != '1'))
		return METRICS_REQ_BAD;
	p += 8;
	if (*p == '\r')
		p++;
	if (*p != '\n')
		return METRICS_REQ_BAD;
	if (mlen != 3 || memcmp(m, "GET", 3))
		return METRICS_REQ_METHOD;
	if (tlen < 8 || memcmp(t, "/metrics", 8) || (tlen > 8 && t[8] != '?'))
		return METRICS_REQ_NOT_FOUND;
	return METRICS_REQ_OK;
}

char *metrics_response(enum metrics_req r, const char *body, size_t body_len,
		       size_t *len)
{
	static const struct { const char *status, *text; } why[] = {
		[METRICS_REQ_NOT_FOUND] = { "404 Not Found", "only /metrics is here\n" },
		[METRICS_REQ_METHOD] = { "405 Method Not Allowed", "only GET is served\n" },
		[METRICS_REQ_BAD] = { "400 Bad Request", "not an HTTP/1.x request\n" },
		[METRICS_REQ_TOO_LARGE] = { "431 Request Header Fields Too Large",
					    "the request's head is over 4096 bytes\n" },
		[METRICS_REQ_MORE] = { "408 Request Timeout", "the request did not come in time\n" },
	};
	const char *status = "200 OK", *type = "text/plain; version=0.0.4; charset=utf-8";
	char *out = NULL;
	size_t n = 0;
	FILE *f;
	bool bad;

	if (r != METRICS_REQ_OK) {
		status = why[r].status;
		body = why[r].text;
		body_len = strlen(body);
		type = "text/plain; charset=utf-8";
	}
	f = open_memstream(&out, &n);
	if (!f)
		return NULL;
	fprintf(f, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		"%sConnection: close\r\n\r\n", status, type, body_len,
		r == METRICS_REQ_METHOD ? "Allow: GET\r\n" : "");
	fwrite(body, 1, body_len, f);
	bad = ferror(f) != 0;
	if (fclose(f) != 0 || bad) {
		free(out);
		return NULL;
	}
	*len = n;
	return out;
}
