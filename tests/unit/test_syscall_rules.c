/* test_syscall_rules.c - the sandbox rules devices and the engine declare
 * beside their code (lib/syscall_rules.h), as supervisor/sandbox.c
 * composes them: every table has rules and says whose they are, every
 * call is one libseccomp knows on this architecture (the sandbox skips a
 * name it does not know, so a misspelt one would be a call the worker is
 * killed for), and every condition is on an argument that exists. */
#include <CUnit/CUnit.h>
#include <seccomp.h>
#include "supervisor/sandbox.h"
#include "unit.h"

static void test_declared(void)
{
	unsigned n;
	const struct syscall_rules *const *t = sandbox_declared(&n);

	CU_ASSERT(n >= 4);
	for (unsigned i = 0; i < n; i++) {
		CU_ASSERT(t[i]->who && t[i]->who[0]);
		CU_ASSERT(t[i]->n > 0);
		for (unsigned k = 0; k < t[i]->n; k++) {
			const struct syscall_rule *r = &t[i]->rules[k];

			CU_ASSERT(seccomp_syscall_resolve_name(r->name) != __NR_SCMP_ERROR);
			CU_ASSERT(r->test == SYSCALL_ANY_ARGS || r->arg < 6);
			CU_ASSERT(r->test != SYSCALL_ARG_MASKED_EQ ||
				  (r->value & ~r->mask) == 0);
		}
	}
}

void unit_add_syscall_rules_suite(void)
{
	CU_pSuite s = CU_add_suite("syscall_rules", NULL, NULL);

	CU_add_test(s, "declared sandbox rules are sound", test_declared);
}
