#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <linux/userfaultfd.h>
#include "lib/uffd.h"

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)   /* linux/userfaultfd.h, 6.1 */
#endif

static bool wp_unpopulated = true;

void fv_uffd_set_wp_unpopulated(bool has)
{
	__atomic_store_n(&wp_unpopulated, has, __ATOMIC_RELAXED);
}

bool fv_uffd_wp_unpopulated(void)
{
	return __atomic_load_n(&wp_unpopulated, __ATOMIC_RELAXED);
}

int fv_userfaultfd(int flags, struct fv_error *err)
{
	int dev, fd, e;

	/* The device first: a sandboxed worker makes no userfaultfd(2) call
	 * (its filter does not allow it) and could not use one that handles
	 * the kernel's faults anyway. */
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
		e = errno;
		close(dev);
		if (fd >= 0)
			return fd;
		return fv_err_errno(err, FV_E_SYS, e, "/dev/userfaultfd: USERFAULTFD_IOC_NEW");
	}
	/* Older kernels have no device: the system call, which needs root. */
	fd = (int)syscall(SYS_userfaultfd, flags);
	if (fd < 0)
		return fv_err_errno(err, FV_E_SYS, errno,
				    "userfaultfd (dedup needs root or vm.unprivileged_userfaultfd=1)");
	return fd;
}
