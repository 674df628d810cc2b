#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "vmm/runner.h"
#include "vmm/vcpu.h"

/* No single guest command should take longer on any sane host. */
#define COMMAND_TIMEOUT_MS (10 * 60 * 1000)
#define EXIT_TIMEOUT_MS 10000

struct driver {
	struct guest *guest;
	const struct vm_spec *spec;
	struct guest_report *rep;
	pthread_t thread;
	bool started;
	volatile sig_atomic_t *stop;
};

static int run_cmd(struct driver *d, unsigned vcpu, uint32_t cmd,
		   const uint64_t arg[8], struct testdev_result *res,
		   struct fv_error *err)
{
	struct testdev *td = &d->guest->testdev;

	if (testdev_submit(td, vcpu, cmd, arg, err) ||
	    testdev_wait(td, vcpu, COMMAND_TIMEOUT_MS, res, err))
		return -1;
	if (res->cmd != cmd)
		return fv_err(err, FV_E_GUEST, "vCPU %u answered command %u to %u",
			      vcpu, res->cmd, cmd);
	if (res->status == FV_STATUS_BAD_COMMAND || res->status == FV_STATUS_BAD_ARGS)
		return fv_err(err, FV_E_GUEST, "guest refused command %u (status %u)",
			      cmd, res->status);
	return 0;
}

static int step_fill(struct driver *d, struct fv_error *err)
{
	struct testdev_result r;

	if (run_cmd(d, 0, FV_CMD_FILL, NULL, &r, err))
		return -1;
	if (r.result[1])
		return fv_err(err, FV_E_GUEST, "blob checksum mismatch in guest");
	d->rep->filled = true;
	d->rep->pages_zero = r.result[2];
	d->rep->pages_shared = r.result[3];
	d->rep->pages_blob = r.result[4];
	d->rep->pages_unique = r.result[5];
	return 0;
}

static int step_verify(struct driver *d, struct fv_error *err)
{
	struct testdev_result r;

	if (run_cmd(d, 0, FV_CMD_VERIFY, NULL, &r, err))
		return -1;
	d->rep->verified = true;
	d->rep->verify_checked = r.result[0];
	d->rep->verify_mismatches = r.result[1];
	d->rep->verify_first_bad = r.result[2];
	if (r.result[1])
		return fv_err(err, FV_E_GUEST,
			      "verify: %llu of %llu pages differ (first at gpa 0x%llx)",
			      (unsigned long long)r.result[1],
			      (unsigned long long)r.result[0],
			      (unsigned long long)r.result[2]);
	return 0;
}

static int step_churn(struct driver *d, uint64_t pages, struct fv_error *err)
{
	static uint64_t round;
	uint64_t arg[8] = { pages, 0, 0x0c4u ^ __atomic_add_fetch(&round, 1, __ATOMIC_RELAXED) };
	struct testdev_result r;

	if (run_cmd(d, 0, FV_CMD_CHURN, arg, &r, err))
		return -1;
	d->rep->churned += r.result[0];
	return 0;
}

/* Every vCPU races on the counters; then vCPU 0 learns the totals. */
static int step_race(struct driver *d, uint64_t iters, struct fv_error *err)
{
	struct testdev *td = &d->guest->testdev;
	unsigned n = d->guest->cfg.nr_vcpus;
	uint64_t arg[8] = { iters };
	struct testdev_result r;

	for (unsigned i = 0; i < n; i++)
		if (testdev_submit(td, i, FV_CMD_RACE, arg, err))
			return -1;
	for (unsigned i = 0; i < n; i++)
		if (testdev_wait(td, i, COMMAND_TIMEOUT_MS, &r, err))
			return -1;
	arg[1] = n;
	if (run_cmd(d, 0, FV_CMD_RACE_SETTLE, arg, &r, err))
		return -1;
	d->rep->race_iterations += iters * n;
	return 0;
}

static int step_measure(struct driver *d, struct fv_error *err)
{
	const struct fv_guest_config *l = &d->guest->layout;
	uint64_t arg[8] = { l->probe_gpa, l->probe_pages, FV_PAGE_SIZE, 0 };
	struct testdev_result r;

	if (run_cmd(d, 0, FV_CMD_MEASURE_WRITE, arg, &r, err))
		return -1;
	d->rep->measured = true;
	d->rep->fw_median = r.result[0];
	d->rep->fw_p99 = r.result[1];
	d->rep->fw_mean = r.result[2];
	d->rep->tsc_khz = l->tsc_khz;
	return 0;
}

/* Sleep in short slices so an interrupt or a guest failure ends it. */
static int step_sleep(struct driver *d, uint64_t seconds, bool forever,
		      struct fv_error *err)
{
	uint64_t slices = seconds * 10;

	for (uint64_t i = 0; forever || i < slices; i++) {
		struct timespec ts = { 0, 100 * 1000000L };

		if (*d->stop)
			return forever ? 0 : fv_err(err, FV_E_GUEST, "interrupted");
		if (!guest_state_is_live(guest_get_state(d->guest, NULL, 0)))
			return fv_err(err, FV_E_GUEST, "guest stopped while idle");
		nanosleep(&ts, NULL);
	}
	return 0;
}

static int step_fault(struct driver *d, struct fv_error *err)
{
	struct testdev_result r;

	/* The guest is expected to die here; run_cmd reports how. */
	if (run_cmd(d, 0, FV_CMD_FAULT, NULL, &r, err))
		return -1;
	return fv_err(err, FV_E_GUEST, "guest survived a fault it should not have");
}

static int run_step(struct driver *d, const struct step *st, struct fv_error *err)
{
	switch (st->kind) {
	case STEP_FILL: return step_fill(d, err);
	case STEP_VERIFY: return step_verify(d, err);
	case STEP_CHURN: return step_churn(d, st->arg, err);
	case STEP_RACE: return step_race(d, st->arg, err);
	case STEP_MEASURE: return step_measure(d, err);
	case STEP_SLEEP: return step_sleep(d, st->arg, false, err);
	case STEP_WAIT: return step_sleep(d, 0, true, err);
	case STEP_FAULT: return step_fault(d, err);
	}
	return fv_err(err, FV_E_INVAL, "unknown step");
}

/* Ask every vCPU to leave, then wait for the threads. */
static void driver_shutdown_guest(struct driver *d)
{
	struct testdev *td = &d->guest->testdev;

	for (unsigned i = 0; i < d->guest->cfg.nr_vcpus; i++)
		testdev_submit(td, i, FV_CMD_EXIT, NULL, NULL);
	if (guest_wait(d->guest, EXIT_TIMEOUT_MS)) {
		guest_stop(d->guest, "did not exit when asked");
		guest_wait(d->guest, -1);
	}
}

static void *driver_thread(void *arg)
{
	struct driver *d = arg;
	struct fv_error err = { 0 };
	bool ok = true;

	for (unsigned i = 0; i < d->spec->nr_steps && ok; i++) {
		if (run_step(d, &d->spec->steps[i], &err)) {
			snprintf(d->rep->error, sizeof(d->rep->error), "%s: %s",
				 step_name(d->spec->steps[i].kind), err.msg);
			ok = false;
		}
	}
	driver_shutdown_guest(d);
	d->rep->state = guest_get_state(d->guest, d->rep->reason,
					sizeof(d->rep->reason));
	d->rep->ok = ok && d->rep->state == GUEST_SHUTDOWN;
	return NULL;
}

static int runner_load_blob(const struct cli_options *opt, struct blob *blob,
			    struct fv_error *err)
{
	uint64_t max_pages = 0;

	memset(blob, 0, sizeof(*blob));
	if (!opt->nr_files)
		return 0;
	/* Enough for the biggest guest's share; smaller guests take a prefix. */
	for (unsigned i = 0; i < opt->nr_vms; i++) {
		const struct guest_config *c = &opt->vms[i].cfg;
		uint64_t pages = c->mem_size / FV_PAGE_SIZE * c->content.pct_blob / 100;

		if (pages > max_pages)
			max_pages = pages;
	}
	return blob_load(blob, opt->files, opt->nr_files, max_pages, err);
}

static void report_init(struct guest_report *rep, const struct vm_spec *vm)
{
	memset(rep, 0, sizeof(*rep));
	snprintf(rep->name, sizeof(rep->name), "%s", vm->cfg.name);
	rep->mem_size = vm->cfg.mem_size;
	rep->nr_vcpus = vm->cfg.nr_vcpus;
	rep->state = GUEST_CREATED;
}

static void runner_wait_drivers(struct driver *drv, unsigned n,
				volatile sig_atomic_t *stop, bool *interrupted)
{
	sigset_t set;
	struct timespec tick = { 0, 100 * 1000000L };

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	for (;;) {
		bool alive = false;

		for (unsigned i = 0; i < n; i++)
			if (drv[i].started && guest_wait(drv[i].guest, 0) != 0)
				alive = true;
		if (!alive)
			break;
		if (sigtimedwait(&set, NULL, &tick) > 0 && !*stop) {
			*stop = 1;
			*interrupted = true;
			for (unsigned i = 0; i < n; i++)
				guest_stop(drv[i].guest, "interrupted by signal");
		}
	}
	for (unsigned i = 0; i < n; i++)
		if (drv[i].started)
			pthread_join(drv[i].thread, NULL);
}

int runner_run(const struct cli_options *opt, struct run_result *res,
	       struct fv_error *err)
{
	static volatile sig_atomic_t stop;
	struct driver drv[CLI_MAX_VMS];
	struct kvm_sys kvm;
	struct blob blob;
	sigset_t set, old;
	int ret = -1;

	memset(res, 0, sizeof(*res));
	memset(drv, 0, sizeof(drv));
	stop = 0;
	/* SIGINT/SIGTERM are collected by sigtimedwait in the main thread. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	vcpu_init_signals();
	if (kvm_sys_open(&kvm, "/dev/kvm", err))
		goto out_sig;
	if (runner_load_blob(opt, &blob, err))
		goto out_kvm;
	res->nr = opt->nr_vms;
	for (unsigned i = 0; i < opt->nr_vms; i++) {
		report_init(&res->reports[i], &opt->vms[i]);
		if (guest_create(&drv[i].guest, &kvm, &opt->vms[i].cfg, &blob,
				 opt->log_dir, err))
			goto out_guests;
		res->reports[i].created = true;
	}
	for (unsigned i = 0; i < opt->nr_vms; i++) {
		struct driver *d = &drv[i];

		d->spec = &opt->vms[i];
		d->rep = &res->reports[i];
		d->stop = &stop;
		if (guest_start(d->guest, err) ||
		    pthread_create(&d->thread, NULL, driver_thread, d)) {
			guest_stop(d->guest, "start failed");
			continue;
		}
		d->started = true;
	}
	runner_wait_drivers(drv, opt->nr_vms, &stop, &res->interrupted);
	ret = 0;
out_guests:
	for (unsigned i = 0; i < opt->nr_vms; i++)
		guest_destroy(drv[i].guest);
	blob_free(&blob);
out_kvm:
	kvm_sys_close(&kvm);
out_sig:
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

static double cycles_to_us(uint64_t cycles, uint64_t tsc_khz)
{
	return tsc_khz ? (double)cycles * 1000.0 / (double)tsc_khz : 0.0;
}

bool runner_print_table(const struct run_result *res, FILE *out)
{
	bool all_ok = true;

	fprintf(out, "\n%-12s %8s %5s %-9s %8s %8s %8s %8s %14s  %s\n",
		"GUEST", "MEM", "VCPUS", "STATE", "ZERO", "SHARED", "FILE",
		"UNIQUE", "1ST-WRITE(us)", "VERIFY");
	for (unsigned i = 0; i < res->nr; i++) {
		const struct guest_report *r = &res->reports[i];
		char fw[32] = "-", verify[64];

		if (r->measured)
			snprintf(fw, sizeof(fw), "%.2f/%.2f",
				 cycles_to_us(r->fw_median, r->tsc_khz),
				 cycles_to_us(r->fw_p99, r->tsc_khz));
		if (r->verified)
			snprintf(verify, sizeof(verify), "%s (%llu pages, %llu bad)",
				 r->verify_mismatches ? "MISMATCH" : "OK",
				 (unsigned long long)r->verify_checked,
				 (unsigned long long)r->verify_mismatches);
		else
			snprintf(verify, sizeof(verify), "not run");
		fprintf(out, "%-12s %7lluM %5u %-9s %8llu %8llu %8llu %8llu %14s  %s\n",
			r->name, (unsigned long long)(r->mem_size >> 20),
			r->nr_vcpus, guest_state_name(r->state),
			(unsigned long long)r->pages_zero,
			(unsigned long long)r->pages_shared,
			(unsigned long long)r->pages_blob,
			(unsigned long long)r->pages_unique, fw, verify);
		if (!r->ok) {
			all_ok = false;
			fprintf(out, "  %s: FAILED: %s%s%s\n", r->name,
				r->error[0] ? r->error : "",
				r->error[0] && r->reason[0] ? "; guest " : "",
				r->reason[0] ? r->reason : "");
		}
	}
	fprintf(out, "(1ST-WRITE: guest-measured median/p99 cost of a first write to an untouched page)\n");
	return all_ok;
}
