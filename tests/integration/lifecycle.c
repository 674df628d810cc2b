/*
 * lifecycle.c - guests are paused, resumed and stopped independently:
 * a paused guest makes no progress while its neighbour does, resumes where
 * it was, and stopping one leaves the other running and verifying.
 * Exit 0 pass, 1 fail, 77 skip (no /dev/kvm).
 */
#include <stdio.h>
#include <string.h>
#include "vmm/guest.h"
#include "vmm/vcpu.h"
#include "runner/spec.h"

#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__); \
		fprintf(stderr, "\n"); \
		return 1; \
	} \
} while (0)

static int command(struct guest *g, uint32_t cmd, uint64_t a0,
		   struct testdev_result *r, struct fv_error *err)
{
	uint64_t arg[8] = { a0 };

	if (testdev_submit(&g->testdev, 0, cmd, arg, err))
		return -1;
	return testdev_wait(&g->testdev, 0, 60000, r, err);
}

static int run(struct kvm_sys *kvm, struct guest *g[2])
{
	struct testdev_result r;
	struct fv_error err;
	char reason[512];
	struct vm_spec vm[2];

	for (int i = 0; i < 2; i++) {
		spec_defaults(&vm[i], (unsigned)i);
		vm[i].cfg.mem_size = 32ull << 20;
		vm[i].cfg.console = false;
		CHECK(guest_create(&g[i], kvm, &vm[i].cfg, NULL, NULL, NULL, &err) == 0,
		      "create: %s", err.msg);
		CHECK(guest_start(g[i], &err) == 0, "start: %s", err.msg);
		CHECK(command(g[i], FV_CMD_FILL, 0, &r, &err) == 0, "fill: %s", err.msg);
	}

	CHECK(guest_pause(g[0], &err) == 0, "pause: %s", err.msg);
	CHECK(guest_get_state(g[0], NULL, 0) == GUEST_PAUSED, "not paused");
	CHECK(guest_pause(g[0], &err) == 0, "second pause must be a no-op");
	/* the paused guest takes the command but runs none of it (a check
	 * of absence: however late this thread runs, a paused guest cannot
	 * have answered, so load cannot fail it)... */
	CHECK(testdev_submit(&g[0]->testdev, 0, FV_CMD_VERIFY, NULL, &err) == 0,
	      "submit: %s", err.msg);
	CHECK(testdev_wait(&g[0]->testdev, 0, 500, &r, &err) == -1,
	      "a paused guest answered");
	/* ...while its neighbour keeps working */
	CHECK(command(g[1], FV_CMD_CHURN, 100, &r, &err) == 0, "churn: %s", err.msg);
	CHECK(r.result[0] == 100, "churned %llu", (unsigned long long)r.result[0]);
	CHECK(guest_resume(g[0], &err) == 0, "resume: %s", err.msg);
	CHECK(testdev_wait(&g[0]->testdev, 0, 60000, &r, &err) == 0,
	      "resumed guest: %s", err.msg);
	CHECK(r.result[1] == 0, "resumed guest lost data");

	/* stop guest 0: it ends STOPPED, guest 1 verifies */
	guest_stop(g[0], "test stop");
	/* a hang guard: stopping takes milliseconds */
	CHECK(guest_wait(g[0], 120000) == 0, "stopped guest's vCPUs still run");
	CHECK(guest_get_state(g[0], reason, sizeof(reason)) == GUEST_STOPPED &&
	      !strcmp(reason, "test stop"), "state/reason after stop: %s", reason);
	CHECK(guest_resume(g[0], &err) == -1 && err.code == FV_E_STATE,
	      "resume of a stopped guest must fail");
	CHECK(command(g[1], FV_CMD_VERIFY, 0, &r, &err) == 0 && r.result[1] == 0,
	      "neighbour verify: %s", err.msg);
	CHECK(guest_state_is_live(guest_get_state(g[1], NULL, 0)),
	      "neighbour not running");
	return 0;
}

int main(void)
{
	struct kvm_sys kvm;
	struct guest *g[2] = { NULL, NULL };
	struct fv_error err;
	int rc;

	if (!kvm_available("/dev/kvm")) {
		fprintf(stderr, "SKIP: /dev/kvm missing: lifecycle test NOT RUN\n");
		return 77;
	}
	vcpu_init_signals();
	if (kvm_sys_open(&kvm, "/dev/kvm", &err)) {
		fprintf(stderr, "FAIL: %s\n", err.msg);
		return 1;
	}
	rc = run(&kvm, g);
	guest_destroy(g[0]);
	guest_destroy(g[1]);
	kvm_sys_close(&kvm);
	if (!rc)
		printf("lifecycle: pause, resume and stop are per guest\n");
	return rc;
}
