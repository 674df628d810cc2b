#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/kvm.h>
#include "vmm/vcpu.h"

/* The kick signal: its only job is to make KVM_RUN return -EINTR. */
#define VCPU_KICK_SIGNAL SIGUSR1

static void vcpu_kick_handler(int sig)
{
	(void)sig;
}

void vcpu_init_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = vcpu_kick_handler;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: the point is to interrupt KVM_RUN. */
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
}

int vcpu_create(struct vcpu *v, struct guest *g, unsigned index,
		struct fv_error *err)
{
	void *run;

	v->guest = g;
	v->index = index;
	v->fd = ioctl(g->vm_fd, KVM_CREATE_VCPU, index);
	if (v->fd < 0)
		return fv_err_errno(err, FV_E_KVM, errno, "KVM_CREATE_VCPU %u",
				    index);
	run = mmap(NULL, (size_t)g->kvm->run_size, PROT_READ | PROT_WRITE,
		   MAP_SHARED, v->fd, 0);
	if (run == MAP_FAILED)
		return fv_err_errno(err, FV_E_KVM, errno,
				    "mmap of vCPU %u run area", index);
	v->run = run;
	return 0;
}

void vcpu_kick_locked(struct vcpu *v)
{
	if (!v->run || v->exited)
		return;
	/*
	 * immediate_exit covers a vCPU that is between its state check and
	 * KVM_RUN: KVM returns -EINTR at once.  The signal covers one that is
	 * already inside KVM_RUN.
	 */
	v->run->immediate_exit = 1;
	if (v->thread_started && v->in_run)
		pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

/* Handle a port I/O exit: every repetition of a `rep ins/outs` too. */
static int vcpu_handle_io(struct vcpu *v, struct fv_error *err)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	uint64_t bytes = (uint64_t)run->io.size * run->io.count;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

	/* Defensive: the kernel fills these, but never trust an offset. */
	if (run->io.data_offset >= (uint64_t)v->guest->kvm->run_size ||
	    bytes > (uint64_t)v->guest->kvm->run_size - run->io.data_offset)
		return fv_err(err, FV_E_KVM, "port I/O data outside run area");
	for (uint32_t i = 0; i < run->io.count; i++) {
		int r = ioport_dispatch(&v->guest->io, v->index, run->io.port,
					is_write, data + i * run->io.size,
					run->io.size, err);
		if (r != IOPORT_OK)
			return r;
	}
	return IOPORT_OK;
}

static void vcpu_fail_regs(struct vcpu *v, const char *what)
{
	struct kvm_regs regs;

	if (ioctl(v->fd, KVM_GET_REGS, &regs) == 0)
		guest_fail(v->guest, "%s on vCPU %u at rip 0x%llx", what,
			   v->index, (unsigned long long)regs.rip);
	else
		guest_fail(v->guest, "%s on vCPU %u", what, v->index);
}

/* One exit; returns 0 to keep running, 1 to leave the loop. */
static int vcpu_handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	struct fv_error err = { 0 };
	char what[128];
	int r;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		r = vcpu_handle_io(v, &err);
		if (r == IOPORT_FAIL)
			guest_fail(v->guest, "%s", err.msg);
		return r == IOPORT_OK ? 0 : 1;
	case KVM_EXIT_SHUTDOWN:
		vcpu_fail_regs(v, "triple fault (KVM_EXIT_SHUTDOWN)");
		return 1;
	case KVM_EXIT_HLT:
		guest_fail(v->guest, "vCPU %u halted with nothing to wake it",
			   v->index);
		return 1;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(what, sizeof(what),
			 "KVM internal error (suberror %u, the emulator gave up)",
			 run->internal.suberror);
		vcpu_fail_regs(v, what);
		return 1;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "VM entry failed (reason 0x%llx)",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		vcpu_fail_regs(v, what);
		return 1;
	case KVM_EXIT_MMIO:
		/* The device windows; elsewhere reads see all ones and writes
		 * vanish, as on an empty bus.  KVM gives at most 8 bytes. */
		mmio_dispatch(&v->guest->mmio, run->mmio.phys_addr,
			      run->mmio.is_write, run->mmio.data,
			      run->mmio.len <= sizeof(run->mmio.data) ?
			      run->mmio.len : sizeof(run->mmio.data));
		return 0;
	case KVM_EXIT_SYSTEM_EVENT:
		guest_fail(v->guest, "system event %u on vCPU %u",
			   run->system_event.type, v->index);
		return 1;
	default:
		snprintf(what, sizeof(what), "unhandled KVM exit reason %u",
			 run->exit_reason);
		vcpu_fail_regs(v, what);
		return 1;
	}
}

/*
 * Wait while paused; returns false when the vCPU must leave.  Sets in_run
 * under the lock so guest_pause() knows whom to wait for.
 */
static bool vcpu_may_enter(struct vcpu *v)
{
	struct guest *g = v->guest;
	bool go;

	pthread_mutex_lock(&g->lock);
	v->run->immediate_exit = 0;
	while (g->state == GUEST_PAUSED)
		pthread_cond_wait(&g->cond, &g->lock);
	go = g->state == GUEST_RUNNING;
	v->in_run = go;
	pthread_mutex_unlock(&g->lock);
	return go;
}

static void vcpu_left_run(struct vcpu *v)
{
	struct guest *g = v->guest;

	pthread_mutex_lock(&g->lock);
	v->in_run = false;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u/%.8s", v->index, v->guest->cfg.name);
	pthread_setname_np(pthread_self(), name);
	while (vcpu_may_enter(v)) {
		int r = ioctl(v->fd, KVM_RUN, 0);
		int e = errno;

		vcpu_left_run(v);
		if (r < 0) {
			if (e == EINTR || e == EAGAIN)
				continue;
			guest_fail(v->guest, "KVM_RUN on vCPU %u: %s", v->index,
				   strerror(e));
			break;
		}
		if (vcpu_handle_exit(v))
			break;
	}
	guest_vcpu_exited(v->guest, v);
	return NULL;
}

int vcpu_start(struct vcpu *v, struct fv_error *err)
{
	struct guest *g = v->guest;
	sigset_t block, old;
	int r;

	/* vCPU threads take only the kick signal; SIGINT/SIGTERM stay with
	 * the main thread.  SIGSYS stays open: a sandbox's filter reports a
	 * forbidden call with it, and the kernel would kill the process
	 * without the report if it were blocked. */
	sigfillset(&block);
	sigdelset(&block, VCPU_KICK_SIGNAL);
	sigdelset(&block, SIGSYS);
	pthread_sigmask(SIG_SETMASK, &block, &old);
	pthread_mutex_lock(&g->lock);
	g->vcpus_alive++;
	r = pthread_create(&v->thread, NULL, vcpu_thread, v);
	if (r == 0)
		v->thread_started = true;
	else
		g->vcpus_alive--;
	pthread_mutex_unlock(&g->lock);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return fv_err_errno(err, FV_E_SYS, r, "pthread_create vCPU %u",
				    v->index);
	return 0;
}

void vcpu_destroy(struct vcpu *v)
{
	if (v->thread_started) {
		pthread_join(v->thread, NULL);
		v->thread_started = false;
	}
	if (v->run) {
		munmap(v->run, (size_t)v->guest->kvm->run_size);
		v->run = NULL;
	}
	if (v->fd >= 0) {
		close(v->fd);
		v->fd = -1;
	}
}
