/*
 * fault.c - the engine's userfaultfd and the thread that reads it.
 *
 * Guest memory registers its RAM with this userfaultfd for write-protect
 * faults (memory/guest_mem.c, gmem_dedup_enable); merges protect a page for
 * the few microseconds of a compare and a remap (merge.c).  A writer that
 * hits a protected page sleeps in the kernel until the protection goes.
 * Home-backed RAM also registers MISSING faults: a touch of a dropped zero
 * page whose entry is still empty (memory/home.c, rule 3).  This thread
 * must always be reading while any page may be protected, and it is never a
 * vCPU thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <linux/userfaultfd.h>
#include "dedup/engine_internal.h"
#include "lib/uffd.h"

/* Linux 6.4 UAPI; Debian 12's headers (6.1) predate it, the kernels foldvm
 * runs on have it, and UFFDIO_API refuses it cleanly where they do not. */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif

static bool wp_fallback_said;

int fault_open_uffd(struct dedup_engine *e, struct fv_error *err)
{
	struct uffdio_api api = { .api = UFFD_API };

	/* How fault_stop() wakes the thread: it sleeps in poll() with no
	 * timeout, so an idle engine's fault thread costs nothing. */
	e->fault_stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e->fault_stop_fd < 0)
		return fv_err_errno(err, FV_E_SYS, errno, "eventfd");

	e->uffd = fv_userfaultfd(O_CLOEXEC | O_NONBLOCK, err);
	if (e->uffd < 0)
		return -1;
	/* WP_UNPOPULATED: protecting a never-touched page must hold too.
	 * WP_HUGETLBFS_SHMEM: pages in store mappings and home-backed RAM (shmem)
	 * can be protected.  MISSING_SHMEM: home-backed RAM's empty entries
	 * fault to this thread.  FOLDVM_UFFD_NO_WP_UNPOPULATED=1 asks for the
	 * older kernels' way on any kernel (the tests of that way). */
	api.features = UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_WP_HUGETLBFS_SHMEM |
		       UFFD_FEATURE_MISSING_SHMEM;
	if (!getenv("FOLDVM_UFFD_NO_WP_UNPOPULATED") && ioctl(e->uffd, UFFDIO_API, &api) == 0) {
		fv_uffd_set_wp_unpopulated(true);
		return 0;
	}
	/* Linux before 6.4 (Debian 12's 6.1, the nested bed's host) has no
	 * WP_UNPOPULATED: a fresh userfaultfd (a refused UFFDIO_API may leave
	 * this one unusable) without it, and gmem_protect() reads a page in
	 * before it protects it, so the protection lands on an entry. */
	close(e->uffd);
	e->uffd = fv_userfaultfd(O_CLOEXEC | O_NONBLOCK, err);
	if (e->uffd < 0)
		return -1;
	api = (struct uffdio_api){ .api = UFFD_API };
	api.features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_MISSING_SHMEM;
	if (ioctl(e->uffd, UFFDIO_API, &api) < 0)
		return fv_err_errno(err, FV_E_SYS, errno,
				    "userfaultfd lacks write-protect features (shmem WP)");
	fv_uffd_set_wp_unpopulated(false);
	if (!__atomic_exchange_n(&wp_fallback_said, true, __ATOMIC_RELAXED))
		fprintf(stderr, "foldvm: dedup: this kernel's userfaultfd has no "
			"WP_UNPOPULATED (Linux < 6.4): pages are read in before "
			"they are write-protected for a merge\n");
	return 0;
}

/*
 * Every write-protect fault is resolved by the merge that set it (wake or
 * release).  This thread drains the fault queue and, for a fault it sees,
 * waits for any merge in flight (e->lock) and then releases the page's
 * protection, which is a no-op when the merge already did.  So no writer
 * can stay blocked even if a merge path forgot a page - and, holding the
 * lock, it never releases a page in the middle of a merge.
 */
static void fault_release(struct dedup_engine *e, uint64_t addr)
{
	struct uffdio_writeprotect w = {
		.range = { .start = addr & ~(PAGE - 1), .len = PAGE },
		.mode = 0,
	};

	ioctl(e->uffd, UFFDIO_WRITEPROTECT, &w); /* ENOENT etc.: already fine */
}

/*
 * A touch of an empty entry in home-backed RAM: only a dropped zero page
 * has one (its slot is reserved for zeros), so the answer is the kernel's
 * zero page, mapped without the engine lock (a scanner holding it may be
 * the one that touched the page).  EEXIST: the discard mapped it first, or
 * a write-protection marker is still there - release that and try again;
 * either way wake the faulting thread, which finds the page mapped.
 */
static void fault_missing(struct dedup_engine *e, uint64_t addr)
{
	struct uffdio_range r = { .start = addr & ~(PAGE - 1), .len = PAGE };
	struct uffdio_writeprotect w = { .range = r, .mode = 0 };
	struct uffdio_zeropage z = { .range = r };

	if (ioctl(e->uffd, UFFDIO_ZEROPAGE, &z) == 0)
		return; /* it wakes the faulting threads */
	if (errno == EEXIST && ioctl(e->uffd, UFFDIO_WRITEPROTECT, &w) == 0 &&
	    ioctl(e->uffd, UFFDIO_ZEROPAGE, &z) == 0)
		return;
	ioctl(e->uffd, UFFDIO_WAKE, &r);
}

void fault_stop(struct dedup_engine *e)
{
	uint64_t one = 1;

	/* e->running is false by now (set under e->lock): the thread either
	 * sees it before it polls or is woken by this. */
	if (write(e->fault_stop_fd, &one, sizeof(one)) != sizeof(one))
		abort(); /* an eventfd counter cannot overflow from one write */
}

/* Write faults waiting for the engine lock; more than this and the thread
 * just waits for the lock (MISSING faults then wait with it). */
#define WP_PENDING_MAX 64

/*
 * The loop.  MISSING faults are answered at once; write-protect faults
 * collect until the engine lock is free.  The thread never blocks on the
 * lock while it could read the queue: the scanner holding the lock may
 * itself be waiting on a MISSING fault behind those write faults.
 */
void *fault_thread(void *arg)
{
	struct dedup_engine *e = arg;
	struct pollfd pfd[2] = { { .fd = e->uffd, .events = POLLIN },
				 { .fd = e->fault_stop_fd, .events = POLLIN } };
	uint64_t wp[WP_PENDING_MAX];
	unsigned nwp = 0;

	pthread_setname_np(pthread_self(), "dedup-uffd");
	for (;;) {
		struct uffd_msg msg;
		uint64_t t0;
		ssize_t n;

		if (nwp && (nwp == WP_PENDING_MAX ? pthread_mutex_lock(&e->lock)
						   : pthread_mutex_trylock(&e->lock)) == 0) {
			t0 = procstat_thread_cpu_ns();
			while (nwp)
				fault_release(e, wp[--nwp]);
			pthread_mutex_unlock(&e->lock);
			__atomic_add_fetch(&e->fault_cpu_ns, procstat_thread_cpu_ns() - t0,
					   __ATOMIC_RELAXED);
		}
		/* Stored atomically (under the lock) where it changes; read
		 * here without it, as this thread must not wait for the lock. */
		if (!__atomic_load_n(&e->running, __ATOMIC_ACQUIRE))
			break;
		/* Pending write faults: look at the lock again within 1 ms. */
		if (poll(pfd, 2, nwp ? 1 : -1) <= 0 || !(pfd[0].revents & POLLIN))
			continue;
		n = read(e->uffd, &msg, sizeof(msg));
		if (n != sizeof(msg) || msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		t0 = procstat_thread_cpu_ns();
		if (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)
			wp[nwp++] = msg.arg.pagefault.address;
		else
			fault_missing(e, msg.arg.pagefault.address);
		/* Read by the stats without the fault thread's help. */
		__atomic_add_fetch(&e->fault_cpu_ns, procstat_thread_cpu_ns() - t0,
				   __ATOMIC_RELAXED);
	}
	return NULL;
}

/* The fault thread and the merges: userfaultfd's requests (type 0xAA:
 * API, REGISTER, WRITEPROTECT, ZEROPAGE, WAKE, ...), the thread's stop
 * eventfd. */
static const struct syscall_rule fault_rules[] = {
	SYSCALL_MASKED("ioctl", 1, 0xff00, 0xAA00),
	SYSCALL_ANY("eventfd2"),
};

const struct syscall_rules dedup_fault_syscalls = SYSCALL_RULES("the engine's fault thread", fault_rules);
