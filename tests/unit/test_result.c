/* test_result.c - a run's results from worker processes (runner/result.c):
 * what another process wrote is made safe, guests that died with their
 * worker fail, and the workers' figures add up. */
#include <CUnit/CUnit.h>
#include <string.h>
#include "runner/runner.h"
#include "unit.h"

static struct run_result a, b;

static void guest(struct run_result *r, const char *name, bool ok,
		  enum guest_state st)
{
	struct guest_report *g = &r->reports[r->nr++];

	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "%s", name);
	g->created = true;
	g->ok = ok;
	g->state = st;
}

/* Garbage from another process: strings end, counts and states fit. */
static void test_check(void)
{
	memset(&a, 'x', sizeof(a));
	a.nr = 1000;
	a.nr_samples = 1u << 30;
	run_result_check(&a);
	CU_ASSERT_EQUAL(a.nr, CLI_MAX_VMS);
	CU_ASSERT_EQUAL(a.nr_samples, RUN_MAX_SAMPLES);
	for (unsigned i = 0; i < a.nr; i++) {
		CU_ASSERT(strlen(a.reports[i].name) < sizeof(a.reports[i].name));
		CU_ASSERT(strlen(a.reports[i].reason) < sizeof(a.reports[i].reason));
		CU_ASSERT(strlen(a.reports[i].error) < sizeof(a.reports[i].error));
		CU_ASSERT(a.reports[i].state <= GUEST_FAILED);
	}
}

/* A worker that died: its live guests failed with why; one that had ended
 * OK keeps its verdict; one that ended badly keeps its state. */
static void test_lost(void)
{
	memset(&a, 0, sizeof(a));
	guest(&a, "live", true, GUEST_RUNNING);
	guest(&a, "done", true, GUEST_SHUTDOWN);
	guest(&a, "bad", false, GUEST_STOPPED);
	CU_ASSERT(!run_result_all_ok(&a));
	run_result_lost(&a, "its worker died");
	CU_ASSERT_FALSE(a.reports[0].ok);
	CU_ASSERT_EQUAL(a.reports[0].state, GUEST_FAILED);
	CU_ASSERT_STRING_EQUAL(a.reports[0].error, "its worker died");
	CU_ASSERT_STRING_EQUAL(a.reports[0].reason, "its worker died");
	CU_ASSERT(a.reports[1].ok);
	CU_ASSERT_EQUAL(a.reports[1].state, GUEST_SHUTDOWN);
	CU_ASSERT_FALSE(a.reports[2].ok);
	CU_ASSERT_EQUAL(a.reports[2].state, GUEST_STOPPED);
	CU_ASSERT_STRING_EQUAL(a.reports[2].error, "its worker died");
}

static void test_merge(void)
{
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	guest(&a, "a1", true, GUEST_SHUTDOWN);
	guest(&b, "b1", true, GUEST_SHUTDOWN);
	b.reports[b.nr++].created = false;      /* a freed slot: left out */
	a.final_host = (struct dedup_host_stats){ .guests = 1, .merges = 10,
		.vma_budget = 100, .max_map_count = 65530, .pass_cpu_max_ns = 5 };
	b.final_host = (struct dedup_host_stats){ .guests = 2, .merges = 7,
		.vma_budget = 50, .max_map_count = 65530, .pass_cpu_max_ns = 9,
		.budget_exhausted = true };
	a.last.taken = true;
	a.last.t = 2.0;
	a.last.rollup.anonymous = 1000;
	b.syncs = 2;
	/* savings over time: a at 0.1 0.3, b at 0.2 0.4 */
	a.nr_samples = 2;
	a.sample_t[0] = 0.1; a.sample_saved[0] = 10;
	a.sample_t[1] = 0.3; a.sample_saved[1] = 30;
	b.nr_samples = 2;
	b.sample_t[0] = 0.2; b.sample_saved[0] = 1;
	b.sample_t[1] = 0.4; b.sample_saved[1] = 2;

	CU_ASSERT_EQUAL(run_result_merge(&a, &b), 0);
	CU_ASSERT_EQUAL(a.nr, 2);
	CU_ASSERT_STRING_EQUAL(a.reports[1].name, "b1");
	CU_ASSERT_EQUAL(a.final_host.guests, 3);
	CU_ASSERT_EQUAL(a.final_host.merges, 17);
	CU_ASSERT_EQUAL(a.final_host.vma_budget, 150);
	CU_ASSERT_EQUAL(a.final_host.max_map_count, 65530);
	CU_ASSERT_EQUAL(a.final_host.pass_cpu_max_ns, 9);
	CU_ASSERT(a.final_host.budget_exhausted);
	CU_ASSERT(a.last.taken);
	CU_ASSERT_EQUAL(a.last.rollup.anonymous, 1000);
	CU_ASSERT_EQUAL(a.syncs, 2);
	/* each time, what each had reached by then */
	CU_ASSERT_EQUAL(a.nr_samples, 4);
	CU_ASSERT_DOUBLE_EQUAL(a.sample_t[1], 0.2, 1e-9);
	CU_ASSERT_EQUAL(a.sample_saved[0], 10);
	CU_ASSERT_EQUAL(a.sample_saved[1], 11);
	CU_ASSERT_EQUAL(a.sample_saved[2], 31);
	CU_ASSERT_EQUAL(a.sample_saved[3], 32);
	CU_ASSERT(run_result_all_ok(&a));
}

/* More guests than a table holds: counted, not written past the end. */
static void test_merge_full(void)
{
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	for (unsigned i = 0; i < CLI_MAX_VMS; i++)
		guest(&a, "a", true, GUEST_SHUTDOWN);
	guest(&b, "b1", true, GUEST_SHUTDOWN);
	guest(&b, "b2", true, GUEST_SHUTDOWN);
	CU_ASSERT_EQUAL(run_result_merge(&a, &b), 2);
	CU_ASSERT_EQUAL(a.nr, CLI_MAX_VMS);
}

void unit_add_result_suite(void)
{
	CU_pSuite s = CU_add_suite("result", NULL, NULL);

	CU_add_test(s, "another process's result made safe", test_check);
	CU_add_test(s, "guests of a dead worker fail", test_lost);
	CU_add_test(s, "workers add up", test_merge);
	CU_add_test(s, "a full table", test_merge_full);
}
