#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/kvm.h>
#include "vmm/guest_mem.h"

int gmem_check_size(uint64_t size, struct fv_error *err)
{
	if (size < GMEM_MIN_SIZE)
		return fv_err(err, FV_E_INVAL,
			      "guest memory of %llu bytes is below the minimum of %llu MiB",
			      (unsigned long long)size,
			      (unsigned long long)(GMEM_MIN_SIZE >> 20));
	if (size > GMEM_MAX_SIZE)
		return fv_err(err, FV_E_INVAL,
			      "guest memory of %llu MiB is above the maximum of %llu GiB",
			      (unsigned long long)(size >> 20),
			      (unsigned long long)(GMEM_MAX_SIZE >> 30));
	if (size % GMEM_PAGE_SIZE)
		return fv_err(err, FV_E_INVAL,
			      "guest memory size %llu is not a multiple of 4 KiB",
			      (unsigned long long)size);
	return 0;
}

int gmem_create(struct guest_mem *gm, int vm_fd, uint64_t size,
		struct fv_error *err)
{
	struct kvm_userspace_memory_region region;
	void *p;

	memset(gm, 0, sizeof(*gm));
	gm->vm_fd = -1;
	if (gmem_check_size(size, err))
		return -1;
	/*
	 * No MAP_NORESERVE: the kernel's overcommit check then refuses a
	 * guest bigger than the host could ever back, here, with a clear
	 * error, instead of the OOM killer deciding later.
	 */
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return fv_err_errno(err, FV_E_NOMEM, errno,
				    "cannot map %llu MiB of guest memory",
				    (unsigned long long)(size >> 20));
	gm->host = p;
	gm->size = size;
	if (vm_fd < 0)
		return 0;

	region = (struct kvm_userspace_memory_region){
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = size,
		.userspace_addr = (uintptr_t)p,
	};
	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		int e = errno;

		munmap(p, size);
		gm->host = NULL;
		return fv_err_errno(err, FV_E_KVM, e,
				    "KVM_SET_USER_MEMORY_REGION (%llu MiB)",
				    (unsigned long long)(size >> 20));
	}
	gm->vm_fd = vm_fd;
	gm->slot = 0;
	return 0;
}

void gmem_destroy(struct guest_mem *gm)
{
	if (gm->vm_fd >= 0) {
		struct kvm_userspace_memory_region region = {
			.slot = gm->slot,
			.memory_size = 0,
		};
		/* Deleting the slot before unmapping keeps KVM from ever
		 * seeing a memslot without a mapping behind it. */
		ioctl(gm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region);
		gm->vm_fd = -1;
	}
	if (gm->host)
		munmap(gm->host, gm->size);
	gm->host = NULL;
	gm->size = 0;
}

bool gmem_range_ok(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	/* Written so that gpa + len cannot overflow. */
	return gm->host && gpa <= gm->size && len <= gm->size - gpa;
}

static int gmem_check_range(const struct guest_mem *gm, uint64_t gpa,
			    uint64_t len, struct fv_error *err)
{
	if (gmem_range_ok(gm, gpa, len))
		return 0;
	return fv_err(err, FV_E_RANGE,
		      "guest access [0x%llx, +0x%llx) outside guest memory of 0x%llx bytes",
		      (unsigned long long)gpa, (unsigned long long)len,
		      (unsigned long long)gm->size);
}

int gmem_read(const struct guest_mem *gm, uint64_t gpa, void *buf,
	      uint64_t len, struct fv_error *err)
{
	if (gmem_check_range(gm, gpa, len, err))
		return -1;
	memcpy(buf, gm->host + gpa, len);
	return 0;
}

int gmem_write(struct guest_mem *gm, uint64_t gpa, const void *buf,
	       uint64_t len, struct fv_error *err)
{
	if (gmem_check_range(gm, gpa, len, err))
		return -1;
	memcpy(gm->host + gpa, buf, len);
	return 0;
}

int gmem_fill(struct guest_mem *gm, uint64_t gpa, int byte, uint64_t len,
	      struct fv_error *err)
{
	if (gmem_check_range(gm, gpa, len, err))
		return -1;
	memset(gm->host + gpa, byte, len);
	return 0;
}
