#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include "devices/testdev.h"
#include "lib/timeutil.h"

int testdev_init(struct testdev *td, struct guest_mem *mem, unsigned nr_vcpus,
		 testdev_log_fn log, void *log_opaque, struct fv_error *err)
{
	pthread_condattr_t attr;

	memset(td, 0, sizeof(*td));
	if (nr_vcpus == 0 || nr_vcpus > FV_MAX_VCPUS)
		return fv_err(err, FV_E_INVAL, "testdev: %u vCPUs (1..%u)",
			      nr_vcpus, FV_MAX_VCPUS);
	td->mem = mem;
	td->nr_vcpus = nr_vcpus;
	td->log = log;
	td->log_opaque = log_opaque;
	pthread_mutex_init(&td->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&td->cond, &attr);
	pthread_condattr_destroy(&attr);
	return 0;
}

void testdev_destroy(struct testdev *td)
{
	if (!td->mem)
		return;
	pthread_cond_destroy(&td->cond);
	pthread_mutex_destroy(&td->lock);
	td->mem = NULL;
}

/* Copy the guest's report of its last command out of its mailbox. */
static int testdev_collect(struct testdev *td, unsigned vcpu,
			   struct fv_error *err)
{
	struct testdev_slot *slot = &td->slot[vcpu];
	uint64_t gpa = FV_MAILBOX_GPA(vcpu);
	struct testdev_result res;

	if (gmem_read(td->mem, gpa + offsetof(struct fv_mailbox, last_cmd),
		      &res.cmd, sizeof(res.cmd), err) ||
	    gmem_read(td->mem, gpa + offsetof(struct fv_mailbox, status),
		      &res.status, sizeof(res.status), err) ||
	    gmem_read(td->mem, gpa + offsetof(struct fv_mailbox, result),
		      res.result, sizeof(res.result), err))
		return -1;
	if (slot->in_flight) {
		slot->res = res;
		slot->in_flight = false;
		slot->result_ready = true;
	}
	return 0;
}

/* Hand the pending command to the guest through its mailbox. */
static int testdev_deliver(struct testdev *td, unsigned vcpu,
			   struct fv_error *err)
{
	struct testdev_slot *slot = &td->slot[vcpu];
	uint64_t gpa = FV_MAILBOX_GPA(vcpu);

	slot->seq++;
	if (gmem_write(td->mem, gpa + offsetof(struct fv_mailbox, arg),
		       slot->arg, sizeof(slot->arg), err) ||
	    gmem_write(td->mem, gpa + offsetof(struct fv_mailbox, seq),
		       &slot->seq, sizeof(slot->seq), err) ||
	    gmem_write(td->mem, gpa + offsetof(struct fv_mailbox, cmd),
		       &slot->cmd, sizeof(slot->cmd), err))
		return -1;
	slot->cmd_pending = false;
	slot->in_flight = true;
	return 0;
}

/* FV_REQ_NEXT: result in, then block until there is a command or the guest
 * is cancelled.  Runs on the vCPU thread; the guest is not executing. */
static int testdev_next(struct testdev *td, unsigned vcpu, struct fv_error *err)
{
	struct testdev_slot *slot = &td->slot[vcpu];
	int ret = IOPORT_OK;

	pthread_mutex_lock(&td->lock);
	if (testdev_collect(td, vcpu, err)) {
		ret = IOPORT_FAIL;
		goto out;
	}
	pthread_cond_broadcast(&td->cond);
	slot->waiting = true;
	while (!slot->cmd_pending && !td->cancelled)
		pthread_cond_wait(&td->cond, &td->lock);
	slot->waiting = false;
	if (td->cancelled)
		ret = IOPORT_VCPU_EXIT;
	else if (testdev_deliver(td, vcpu, err))
		ret = IOPORT_FAIL;
out:
	pthread_mutex_unlock(&td->lock);
	return ret;
}

/* Read a NUL-terminated message from the mailbox (bounded, sanitised). */
static int testdev_read_text(struct testdev *td, unsigned vcpu, char *buf,
			     size_t len, struct fv_error *err)
{
	uint64_t gpa = FV_MAILBOX_GPA(vcpu) + offsetof(struct fv_mailbox, text);
	size_t max = sizeof(((struct fv_mailbox *)0)->text);

	if (len > max + 1)
		len = max + 1;
	if (gmem_read(td->mem, gpa, buf, len - 1, err))
		return -1;
	buf[len - 1] = '\0';
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	return 0;
}

#ifdef FOLDVM_TEST_PROBES
/*
 * FV_REQ_SANDBOX_PROBE, compiled into the test build only: the call a
 * device model taken over by its guest would make, made for real, so a
 * test sees the worker's sandbox stop it (docs/sandbox.md).  execve never
 * returns under the sandbox (the filter ends the worker); open returns
 * EACCES (Landlock).  What came of it goes to the guest's arg[1].
 */
static int testdev_sandbox_probe(struct testdev *td, unsigned vcpu,
				 struct fv_error *err)
{
	uint64_t gpa = FV_MAILBOX_GPA(vcpu);
	uint64_t probe;
	int64_t answer = -EINVAL;

	if (gmem_read(td->mem, gpa + offsetof(struct fv_mailbox, result),
		      &probe, sizeof(probe), err))
		return IOPORT_FAIL;
	if (probe == FV_PROBE_EXECVE) {
		char *const argv[] = { "sh", "-c", "true", NULL };

		execve("/bin/sh", argv, NULL);
		answer = -errno;
	} else if (probe == FV_PROBE_OPEN) {
		int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);

		answer = fd < 0 ? -errno : 0;
		if (fd >= 0)
			close(fd);
	}
	if (gmem_write(td->mem, gpa + offsetof(struct fv_mailbox, arg) + sizeof(uint64_t),
		       &answer, sizeof(answer), err))
		return IOPORT_FAIL;
	return IOPORT_OK;
}
#endif

int testdev_io(void *opaque, unsigned vcpu, uint16_t port, bool is_write,
	       uint8_t *data, unsigned size, struct fv_error *err)
{
	struct testdev *td = opaque;
	char text[sizeof(((struct fv_mailbox *)0)->text) + 1];
	uint32_t value = 0;

	if (!is_write) {
		memset(data, 0xff, size);
		return IOPORT_OK;
	}
	if (size != 4 || vcpu >= td->nr_vcpus)
		return fv_err(err, FV_E_GUEST,
			      "testdev: %u-byte write to port 0x%x from vCPU %u",
			      size, port, vcpu);
	memcpy(&value, data, 4);
	if (port == FV_EXIT_PORT) {
		if (value != FV_EXIT_MAGIC)
			return fv_err(err, FV_E_GUEST,
				      "testdev: bad exit value 0x%x", value);
		pthread_mutex_lock(&td->lock);
		td->slot[vcpu].exited = true;
		pthread_cond_broadcast(&td->cond);
		pthread_mutex_unlock(&td->lock);
		return IOPORT_VCPU_EXIT;
	}
	if (port != FV_DOORBELL_PORT)
		return fv_err(err, FV_E_GUEST,
			      "testdev: write to port 0x%x (doorbell 0x%x, exit 0x%x)",
			      port, FV_DOORBELL_PORT, FV_EXIT_PORT);
	switch (value) {
	case FV_REQ_NEXT:
		return testdev_next(td, vcpu, err);
	case FV_REQ_LOG:
		if (testdev_read_text(td, vcpu, text, sizeof(text), err))
			return IOPORT_FAIL;
		if (td->log)
			td->log(td->log_opaque, vcpu, text);
		return IOPORT_OK;
	case FV_REQ_ABORT:
		if (testdev_read_text(td, vcpu, text, sizeof(text), err))
			return IOPORT_FAIL;
		return fv_err(err, FV_E_GUEST, "guest assertion failed on vCPU %u: %s",
			      vcpu, text);
#ifdef FOLDVM_TEST_PROBES
	case FV_REQ_SANDBOX_PROBE:
		return testdev_sandbox_probe(td, vcpu, err);
#endif
	default:
		return fv_err(err, FV_E_GUEST,
			      "testdev: unknown request %u from vCPU %u", value,
			      vcpu);
	}
}

int testdev_register(struct testdev *td, struct ioport_bus *bus,
		     struct fv_error *err)
{
	/* Doorbell and exit port are one 8-port window. */
	return ioport_register(bus, FV_DOORBELL_PORT, 8, testdev_io, td,
			       "testdev", err);
}

int testdev_submit(struct testdev *td, unsigned vcpu, uint32_t cmd,
		   const uint64_t arg[8], struct fv_error *err)
{
	struct testdev_slot *slot;
	int ret = 0;

	if (vcpu >= td->nr_vcpus)
		return fv_err(err, FV_E_INVAL, "testdev: no vCPU %u", vcpu);
	slot = &td->slot[vcpu];
	pthread_mutex_lock(&td->lock);
	if (td->cancelled || slot->exited) {
		ret = fv_err(err, FV_E_GUEST, "guest stopped: %s",
			     td->cancelled ? td->cancel_reason : "vCPU exited");
	} else if (slot->cmd_pending || slot->in_flight || slot->result_ready) {
		/* An uncollected result also keeps the slot: one command, one
		 * wait, so no result is ever silently overwritten. */
		ret = fv_err(err, FV_E_STATE,
			     "testdev: vCPU %u is still busy with command %u",
			     vcpu, slot->cmd);
	} else {
		slot->cmd = cmd;
		for (int i = 0; i < 8; i++)
			slot->arg[i] = arg ? arg[i] : 0;
		slot->cmd_pending = true;
		slot->result_ready = false;
		pthread_cond_broadcast(&td->cond);
	}
	pthread_mutex_unlock(&td->lock);
	return ret;
}

int testdev_wait(struct testdev *td, unsigned vcpu, int timeout_ms,
		 struct testdev_result *res, struct fv_error *err)
{
	struct testdev_slot *slot;
	struct timespec deadline;
	int ret = 0, rc = 0;

	if (vcpu >= td->nr_vcpus)
		return fv_err(err, FV_E_INVAL, "testdev: no vCPU %u", vcpu);
	slot = &td->slot[vcpu];
	if (timeout_ms >= 0)
		fv_deadline_after(&deadline, CLOCK_MONOTONIC, timeout_ms);
	pthread_mutex_lock(&td->lock);
	while (!slot->result_ready && !td->cancelled && !slot->exited &&
	       rc != ETIMEDOUT) {
		if (timeout_ms >= 0)
			rc = pthread_cond_timedwait(&td->cond, &td->lock,
						    &deadline);
		else
			pthread_cond_wait(&td->cond, &td->lock);
	}
	if (slot->result_ready) {
		*res = slot->res;
		slot->result_ready = false;
	} else if (td->cancelled || slot->exited) {
		ret = fv_err(err, FV_E_GUEST, "guest stopped: %s",
			     td->cancelled ? td->cancel_reason : "vCPU exited");
	} else {
		ret = fv_err(err, FV_E_GUEST,
			     "vCPU %u did not finish command %u within %d ms",
			     vcpu, slot->cmd, timeout_ms);
	}
	pthread_mutex_unlock(&td->lock);
	return ret;
}

void testdev_cancel(struct testdev *td, const char *reason)
{
	pthread_mutex_lock(&td->lock);
	if (!td->cancelled) {
		td->cancelled = true;
		snprintf(td->cancel_reason, sizeof(td->cancel_reason), "%s",
			 reason ? reason : "stopped");
	}
	pthread_cond_broadcast(&td->cond);
	pthread_mutex_unlock(&td->lock);
}
