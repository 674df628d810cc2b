/* test_metrics.c - the Prometheus exposition written from typed figures
 * (control/metrics.c): names, types, labels (escaped), units turned into
 * base units exactly, what a guest without dedup or a balloon leaves out;
 * the /metrics request reader at every split point and against hostile
 * heads; the responses; the --metrics address. */
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <netinet/in.h>
#include "control/metrics.h"
#include "unit.h"

static struct metrics_input *sample_input(void)
{
	struct metrics_input *in = calloc(1, sizeof(*in));
	struct vm_figures *a, *b;

	if (!in)
		return NULL;
	in->host = (struct host_figures){
		.enabled = true, .rss = 7000, .pss = 6000,
		.engine = { .guests = 2, .saved_bytes = 12288, .cpu_ns = 1500000002,
			    .pressure_some_avg10 = 1234, .pressure_pct = 10,
			    .max_map_count = 65530, .pages_in_place = 3 },
	};
	in->nr_domains = 2;
	snprintf(in->dom[0].domain, sizeof(in->dom[0].domain), "red");
	in->dom[0].fig = in->host;
	snprintf(in->dom[1].domain, sizeof(in->dom[1].domain), "a\"b\\c");
	in->dom[1].fig = (struct host_figures){ .enabled = false, .rss = 10 };
	in->nr_vms = 2;
	a = &in->vm[0];
	snprintf(a->name, sizeof(a->name), "r1");
	snprintf(a->domain, sizeof(a->domain), "red");
	a->mem_size = 32 << 20;
	a->dedup = a->merging = true;
	a->dstats.bytes_saved = 8192;
	a->dstats.pages_merged = 5;
	a->dstats.unmerges = 9;
	a->dstats.cpu_ns = 42;
	a->balloon = true;
	a->balloon_c.inflated_pages = 2;
	b = &in->vm[1];
	snprintf(b->name, sizeof(b->name), "plain");
	snprintf(b->domain, sizeof(b->domain), "plain");
	b->mem_size = 16 << 20;
	return in;
}

/* Every sample's family was declared (HELP, then TYPE) before it, and
 * once only. */
static void check_families(const char *text)
{
	char *copy = strdup(text), *save = NULL, *line;
	char declared[256][96];
	unsigned n = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[96];

		if (!strncmp(line, "# HELP ", 7)) {
			CU_ASSERT_EQUAL(sscanf(line + 7, "%95s", name), 1);
			for (unsigned i = 0; i < n; i++)
				CU_ASSERT(strcmp(declared[i], name) != 0);
			CU_ASSERT_FATAL(n < 256);
			snprintf(declared[n++], sizeof(declared[0]), "%s", name);
			continue;
		}
		if (!strncmp(line, "# TYPE ", 7)) {
			char type[16];

			CU_ASSERT_EQUAL(sscanf(line + 7, "%95s %15s", name, type), 2);
			CU_ASSERT(n > 0 && !strcmp(declared[n - 1], name));
			CU_ASSERT(!strcmp(type, "gauge") || !strcmp(type, "counter"));
			/* counters, and only they, end in _total */
			CU_ASSERT_EQUAL(!strcmp(type, "counter"),
					strlen(name) > 6 && !strcmp(name + strlen(name) - 6, "_total"));
			continue;
		}
		CU_ASSERT_EQUAL(sscanf(line, "%95[a-z0-9_]", name), 1);
		CU_ASSERT(n > 0 && !strcmp(declared[n - 1], name));
	}
	free(copy);
}

static void test_render(void)
{
	struct metrics_input *in = sample_input();
	size_t len;
	char *t;

	CU_ASSERT_PTR_NOT_NULL_FATAL(in);
	t = metrics_render(in, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	CU_ASSERT_EQUAL(strlen(t), len);
	CU_ASSERT(len > 0 && t[len - 1] == '\n');
	check_families(t);
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nfoldvm_domains 2\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nfoldvm_vm_saved_bytes{vm=\"r1\",domain=\"red\"} 8192\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nfoldvm_vm_merged_bytes{vm=\"r1\",domain=\"red\"} 20480\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nfoldvm_vm_unmerges_total{vm=\"r1\",domain=\"red\"} 9\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nfoldvm_vm_scanner_cpu_seconds_total{vm=\"r1\",domain=\"red\"} 0.000000042\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nfoldvm_vm_balloon_inflated_bytes{vm=\"r1\",domain=\"red\"} 8192\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nfoldvm_vm_dedup_merging{vm=\"r1\",domain=\"red\"} 1\n"));
	/* a guest without dedup or balloon: its size, none of those */
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nfoldvm_vm_memory_bytes{vm=\"plain\",domain=\"plain\"} 16777216\n"));
	CU_ASSERT_PTR_NULL(strstr(t, "foldvm_vm_saved_bytes{vm=\"plain\""));
	CU_ASSERT_PTR_NULL(strstr(t, "foldvm_vm_balloon_inflated_bytes{vm=\"plain\""));
	/* the host's and each domain's; an engine's figures only with one */
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nfoldvm_host_scanner_cpu_seconds_total 1.500000002\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nfoldvm_host_memory_pressure_some_avg10_ratio 0.1234\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nfoldvm_host_memory_pressure_threshold_ratio 0.10\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nfoldvm_host_merged_in_place_bytes 12288\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nfoldvm_domain_saved_bytes{domain=\"red\"} 12288\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nfoldvm_domain_process_rss_bytes{domain=\"a\\\"b\\\\c\"} 10\n"));
	CU_ASSERT_PTR_NULL(strstr(t, "foldvm_domain_saved_bytes{domain=\"a"));
	free(t);
	free(in);
}

static void test_request(void)
{
	static const char ok[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
	static const struct { const char *req; enum metrics_req want; } cases[] = {
		{ "GET /metrics HTTP/1.0\n\n", METRICS_REQ_OK },
		{ "GET /metrics?name[]=x HTTP/1.1\r\n\r\n", METRICS_REQ_OK },
		{ "GET / HTTP/1.1\r\n\r\n", METRICS_REQ_NOT_FOUND },
		{ "GET /metricsx HTTP/1.1\r\n\r\n", METRICS_REQ_NOT_FOUND },
		{ "GET /metric HTTP/1.1\r\n\r\n", METRICS_REQ_NOT_FOUND },
		{ "POST /metrics HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", METRICS_REQ_METHOD },
		{ "HEAD /metrics HTTP/1.1\r\n\r\n", METRICS_REQ_METHOD },
		{ "get /metrics HTTP/1.1\r\n\r\n", METRICS_REQ_METHOD },
		{ "HELLO\r\n\r\n", METRICS_REQ_BAD },
		{ "GET /metrics\r\n\r\n", METRICS_REQ_BAD },
		{ "GET  /metrics HTTP/1.1\r\n\r\n", METRICS_REQ_BAD },
		{ "GET /metrics HTTP/2.0\r\n\r\n", METRICS_REQ_BAD },
		{ "GET /metrics HTTP/1.1 \r\n\r\n", METRICS_REQ_BAD },
		{ "\r\n\r\n", METRICS_REQ_BAD },
		{ "GET /metrics HTTP/1.1\r\nX: y", METRICS_REQ_MORE },
	};
	char *big;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CU_ASSERT_EQUAL(metrics_request(cases[i].req, strlen(cases[i].req)),
				cases[i].want);
	/* a head in pieces: more until its blank line, whatever the split */
	for (size_t n = 0; n < sizeof(ok) - 1; n++)
		CU_ASSERT_EQUAL(metrics_request(ok, n), METRICS_REQ_MORE);
	CU_ASSERT_EQUAL(metrics_request(ok, sizeof(ok) - 1), METRICS_REQ_OK);
	/* a NUL anywhere, a head that never ends */
	CU_ASSERT_EQUAL(metrics_request("GET /metrics\0 HTTP/1.1\r\n\r\n", 26), METRICS_REQ_BAD);
	big = malloc(METRICS_REQ_MAX + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, 'a', METRICS_REQ_MAX + 1);
	memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
	CU_ASSERT_EQUAL(metrics_request(big, METRICS_REQ_MAX - 1), METRICS_REQ_MORE);
	CU_ASSERT_EQUAL(metrics_request(big, METRICS_REQ_MAX), METRICS_REQ_TOO_LARGE);
	CU_ASSERT_EQUAL(metrics_request(big, METRICS_REQ_MAX + 1), METRICS_REQ_TOO_LARGE);
	free(big);
}

static void test_response(void)
{
	size_t len;
	char *r = metrics_response(METRICS_REQ_OK, "a 1\n", 4, &len);

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(strlen(r), len);
	CU_ASSERT_PTR_NOT_NULL(strstr(r, "HTTP/1.1 200 OK\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r, "Content-Length: 4\r\n"));
	CU_ASSERT(len > 8 && !strcmp(r + len - 8, "\r\n\r\na 1\n"));
	free(r);
	r = metrics_response(METRICS_REQ_METHOD, NULL, 0, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT(!strncmp(r, "HTTP/1.1 405 Method Not Allowed\r\n", 33));
	CU_ASSERT_PTR_NOT_NULL(strstr(r, "\r\nAllow: GET\r\n"));
	free(r);
	r = metrics_response(METRICS_REQ_NOT_FOUND, NULL, 0, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT(!strncmp(r, "HTTP/1.1 404 Not Found\r\n", 24));
	CU_ASSERT_PTR_NULL(strstr(r, "version=0.0.4"));
	free(r);
}

static void test_addr(void)
{
	static const char *const bad[] = {
		"1.2.3.4", "1.2.3.4:0", "1.2.3.4:65536", ":80", "localhost:80",
		"1.2.3.4:8a", "1.2.3.4:", "[::1]", "[zz]:80", "relative.sock", "",
		"1.2.3.4:-1",
	};
	struct sockaddr_storage sa;
	struct fv_error err = { 0 };
	char path[200];
	socklen_t len;

	CU_ASSERT_EQUAL(metrics_addr_parse("127.0.0.1:9745", &sa, &len, &err), 0);
	CU_ASSERT_EQUAL(sa.ss_family, AF_INET);
	CU_ASSERT_EQUAL(ntohs(((struct sockaddr_in *)&sa)->sin_port), 9745);
	CU_ASSERT_EQUAL(metrics_addr_parse("[::1]:65535", &sa, &len, &err), 0);
	CU_ASSERT_EQUAL(sa.ss_family, AF_INET6);
	CU_ASSERT_EQUAL(metrics_addr_parse("/run/foldvm/metrics.sock", &sa, &len, &err), 0);
	CU_ASSERT_EQUAL(sa.ss_family, AF_UNIX);
	CU_ASSERT_STRING_EQUAL(((struct sockaddr_un *)&sa)->sun_path, "/run/foldvm/metrics.sock");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = '\0';
		CU_ASSERT_EQUAL(metrics_addr_parse(bad[i], &sa, &len, &err), -1);
		CU_ASSERT(strstr(err.msg, "--metrics") != NULL);
	}
	memset(path, 'p', sizeof(path));
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	CU_ASSERT_EQUAL(metrics_addr_parse(path, &sa, &len, &err), -1);
}

void unit_add_metrics_suite(void)
{
	CU_pSuite s = CU_add_suite("metrics", NULL, NULL);

	CU_add_test(s, "exposition from typed figures", test_render);
	CU_add_test(s, "requests: at every split, hostile heads", test_request);
	CU_add_test(s, "responses", test_response);
	CU_add_test(s, "--metrics addresses", test_addr);
}
