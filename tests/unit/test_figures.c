/* test_figures.c - the one rule for adding up several processes' figures
 * (runner/figures.c), the JSON written from them (control/replies.c) and
 * the typed link's packet checks (control/link.c).  The host's figures
 * must be the sum of the workers' typed figures, pressure fields
 * included, and host.qmp must answer as it did when it added the
 * workers' JSON up by key name (old_add below is that rule, kept here
 * as the reference). */
#include <CUnit/CUnit.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "control/link.h"
#include "control/replies.h"
#include "runner/figures.h"
#include "unit.h"

/* Two workers' figures, every field set, no two alike. */
static void two_workers(struct host_figures *a, struct host_figures *b)
{
	memset(a, 0, sizeof(*a));
	memset(b, 0, sizeof(*b));
	*a = (struct host_figures){
		.enabled = true, .rss = 1000, .pss = 900,
		.engine = {
			.guests = 2, .store_frames = 30, .store_bytes = 30 * 4096,
			.saved_bytes = 5000, .pages_in_place = 7, .vma_budget = 60000,
			.vmas_used = 100, .max_map_count = 65530, .budget_exhausted = false,
			.passes = 9, .cpu_ns = 111, .merges = 40, .unmerges = 3,
			.pass_cpu_max_ns = 70, .pass_cpu_last_ns = 20,
			.pressure_known = true, .pressure_paused = false,
			.pressure_cgroup = true, .pressure_some_avg10 = 150,
			.pressure_full_avg10 = 20, .pressure_pct = 10,
			.pressure_pauses = 4,
		},
	};
	*b = (struct host_figures){
		.enabled = true, .rss = 500, .pss = 450,
		.engine = {
			.guests = 1, .store_frames = 12, .store_bytes = 12 * 4096,
			.saved_bytes = 800, .pages_in_place = 1, .vma_budget = 50000,
			.vmas_used = 400, .max_map_count = 262144, .budget_exhausted = true,
			.passes = 2, .cpu_ns = 222, .merges = 5, .unmerges = 6,
			.pass_cpu_max_ns = 90, .pass_cpu_last_ns = 10,
			.pressure_known = false, .pressure_paused = true,
			.pressure_cgroup = false, .pressure_some_avg10 = 80,
			.pressure_full_avg10 = 60, .pressure_pct = 25,
			.pressure_pauses = 1,
		},
	};
}

/* Field by field: counts add up, the sysctl, per-pass figures and the
 * pressure readings take the largest, flags are set if either is. */
static void test_host_add(void)
{
	struct host_figures a, b, s = { 0 };
	const struct dedup_host_stats *e = &s.engine;

	two_workers(&a, &b);
	figures_host_add(&s, &a);
	figures_host_add(&s, &b);
	CU_ASSERT(s.enabled);
	CU_ASSERT_EQUAL(s.rss, 1500);
	CU_ASSERT_EQUAL(s.pss, 1350);
	CU_ASSERT_EQUAL(e->guests, 3);
	CU_ASSERT_EQUAL(e->store_frames, 42);
	CU_ASSERT_EQUAL(e->store_bytes, 42 * 4096);
	CU_ASSERT_EQUAL(e->saved_bytes, 5800);
	CU_ASSERT_EQUAL(e->pages_in_place, 8);
	CU_ASSERT_EQUAL(e->vma_budget, 110000);
	CU_ASSERT_EQUAL(e->vmas_used, 500);
	CU_ASSERT_EQUAL(e->max_map_count, 262144);
	CU_ASSERT(e->budget_exhausted);
	CU_ASSERT_EQUAL(e->passes, 11);
	CU_ASSERT_EQUAL(e->cpu_ns, 333);
	CU_ASSERT_EQUAL(e->merges, 45);
	CU_ASSERT_EQUAL(e->unmerges, 9);
	CU_ASSERT_EQUAL(e->pass_cpu_max_ns, 90);
	CU_ASSERT_EQUAL(e->pass_cpu_last_ns, 20);
	CU_ASSERT(e->pressure_known);
	CU_ASSERT(e->pressure_paused);
	CU_ASSERT(e->pressure_cgroup);
	CU_ASSERT_EQUAL(e->pressure_some_avg10, 150);
	CU_ASSERT_EQUAL(e->pressure_full_avg10, 60);
	CU_ASSERT_EQUAL(e->pressure_pct, 25);
	CU_ASSERT_EQUAL(e->pressure_pauses, 5);
}

/* The rule host.qmp used before the typed link: the workers' JSON added
 * up by key name (supervisor/host.c, add_figures). */
static void old_add(struct json_object *dst, struct json_object *src)
{
	json_object_object_foreach(src, key, v) {
		struct json_object *d;
		bool is_max = !strcmp(key, "max-map-count") ||
			      !strncmp(key, "pass-cpu-", 9) ||
			      (!strncmp(key, "memory-pressure-", 16) &&
			       strcmp(key, "memory-pressure-pauses"));

		if (!json_object_object_get_ex(dst, key, &d)) {
			if (json_object_is_type(v, json_type_int) ||
			    json_object_is_type(v, json_type_boolean))
				json_object_object_add(dst, key, json_object_get(v));
			continue;
		}
		if (json_object_is_type(v, json_type_int) &&
		    json_object_is_type(d, json_type_int)) {
			int64_t x = json_object_get_int64(d), y = json_object_get_int64(v);

			json_object_object_add(dst, key, json_object_new_int64(
				is_max ? (x > y ? x : y) : x + y));
		} else if (json_object_is_type(v, json_type_boolean) &&
			   json_object_is_type(d, json_type_boolean)) {
			json_object_object_add(dst, key, json_object_new_boolean(
				json_object_get_boolean(d) || json_object_get_boolean(v)));
		}
	}
}

/* The supervisor's own process (no engine) and workers a and b: the typed
 * sum written once says what the JSON sum by key name said, key for key
 * and in the same order; so it does when only one worker has an engine. */
static void check_same_answer(const struct host_figures *a, const struct host_figures *b)
{
	struct host_figures self = { .rss = 77, .pss = 66 }, sum = self;
	struct json_object *typed, *old, *wa, *wb;

	old = replies_host(&self);
	wa = replies_host(a);
	wb = replies_host(b);
	old_add(old, wa);
	old_add(old, wb);
	figures_host_add(&sum, a);
	figures_host_add(&sum, b);
	typed = replies_host(&sum);
	CU_ASSERT_STRING_EQUAL(json_object_to_json_string(typed),
			       json_object_to_json_string(old));
	json_object_put(typed);
	json_object_put(old);
	json_object_put(wa);
	json_object_put(wb);
}

static void test_host_json_as_before(void)
{
	struct host_figures a, b;

	two_workers(&a, &b);
	check_same_answer(&a, &b);
	memset(&b.engine, 0, sizeof(b.engine));
	b.enabled = false;
	check_same_answer(&a, &b);
	check_same_answer(&b, &a);
	memset(&a.engine, 0, sizeof(a.engine));
	a.enabled = false;
	check_same_answer(&a, &b);
}

static void test_census_add(void)
{
	struct dedup_ideal i1 = { 10, 2, 8, 5, 4096 }, i2 = { 20, 4, 16, 7, 8192 }, is = { 0 };
	struct dedup_census c1 = { 10, 1, 2, { 3, 1, 0, 0 }, 3 };
	struct dedup_census c2 = { 20, 2, 4, { 1, 2, 3, 4 }, 4 }, cs = { 0 };

	figures_ideal_add(&is, &i1);
	figures_ideal_add(&is, &i2);
	CU_ASSERT_EQUAL(is.pages, 30);
	CU_ASSERT_EQUAL(is.zero_pages, 6);
	CU_ASSERT_EQUAL(is.nonzero_pages, 24);
	CU_ASSERT_EQUAL(is.distinct, 12);
	CU_ASSERT_EQUAL(is.ideal_bytes, 12288);
	figures_census_add(&cs, &c1);
	figures_census_add(&cs, &c2);
	CU_ASSERT_EQUAL(cs.pages, 30);
	CU_ASSERT_EQUAL(cs.zero, 3);
	CU_ASSERT_EQUAL(cs.same_address, 6);
	CU_ASSERT_EQUAL(cs.run[0], 4);
	CU_ASSERT_EQUAL(cs.run[3], 4);
	CU_ASSERT_EQUAL(cs.unique, 7);
}

/* Packets as another process may send them: the right size and sound
 * strings pass, anything else is refused. */
static void test_link_packets(void)
{
	static struct link_msg m, r;
	struct fv_error e = { 0 };
	int sv[2];

	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	memset(&m, 0, sizeof(m));
	m.kind = LINK_EVENT;
	m.code = LINK_EV_GUEST_ADDED;
	snprintf(m.u.guest.name, sizeof(m.u.guest.name), "a1");
	CU_ASSERT_EQUAL(link_send(sv[0], &m, &e), 0);
	CU_ASSERT_EQUAL(link_recv(sv[1], &r, &e), 1);
	CU_ASSERT_STRING_EQUAL(r.u.guest.name, "a1");
	/* a name that does not end */
	memset(m.u.guest.name, 'x', sizeof(m.u.guest.name));
	CU_ASSERT_EQUAL(link_send(sv[0], &m, &e), 0);
	CU_ASSERT_EQUAL(link_recv(sv[1], &r, &e), -1);
	/* a reply whose body is cut short */
	memset(&m, 0, sizeof(m));
	m.kind = LINK_REPLY;
	m.code = LINK_REQ_HOST;
	CU_ASSERT(send(sv[0], &m, offsetof(struct link_msg, u) + 8, 0) > 0);
	CU_ASSERT_EQUAL(link_recv(sv[1], &r, &e), -1);
	/* more guests than there are */
	m.code = LINK_REQ_QUERY_VMS;
	m.u.vms.n = CLI_MAX_VMS + 1;
	CU_ASSERT_EQUAL(link_send(sv[0], &m, &e), 0);
	CU_ASSERT_EQUAL(link_recv(sv[1], &r, &e), -1);
	/* a code no one knows */
	m.kind = LINK_EVENT;
	m.code = LINK_NR_EVENTS;
	CU_ASSERT(send(sv[0], &m, offsetof(struct link_msg, u), 0) > 0);
	CU_ASSERT_EQUAL(link_recv(sv[1], &r, &e), -1);
	/* the other end closed */
	close(sv[0]);
	CU_ASSERT_EQUAL(link_recv(sv[1], &r, &e), 0);
	close(sv[1]);
}

void unit_add_figures_suite(void)
{
	CU_pSuite s = CU_add_suite("figures", NULL, NULL);

	CU_add_test(s, "the workers' figures add up, pressure included", test_host_add);
	CU_add_test(s, "host.qmp's sum as before", test_host_json_as_before);
	CU_add_test(s, "censuses add up", test_census_add);
	CU_add_test(s, "link packets checked", test_link_packets);
}
