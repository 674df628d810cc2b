#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>
#include "vmm/kvm.h"

#define KVM_CPUID_MAX_ENTRIES 256

static int kvm_require_cap(int fd, int cap, const char *name,
			   struct fv_error *err)
{
	if (ioctl(fd, KVM_CHECK_EXTENSION, cap) <= 0)
		return fv_err(err, FV_E_KVM, "KVM lacks capability %s", name);
	return 0;
}

bool kvm_has_cap(const struct kvm_sys *kvm, int cap)
{
	return ioctl(kvm->fd, KVM_CHECK_EXTENSION, cap) > 0;
}

static int kvm_get_cpuid(struct kvm_sys *kvm, struct fv_error *err)
{
	size_t bytes = sizeof(struct kvm_cpuid2) +
		       KVM_CPUID_MAX_ENTRIES * sizeof(struct kvm_cpuid_entry2);

	kvm->cpuid = calloc(1, bytes);
	if (!kvm->cpuid)
		return fv_err(err, FV_E_NOMEM, "cannot allocate CPUID table");
	kvm->cpuid->nent = KVM_CPUID_MAX_ENTRIES;
	if (ioctl(kvm->fd, KVM_GET_SUPPORTED_CPUID, kvm->cpuid) < 0)
		return fv_err_errno(err, FV_E_KVM, errno,
				    "KVM_GET_SUPPORTED_CPUID");
	return 0;
}

int kvm_sys_open(struct kvm_sys *kvm, const char *path, struct fv_error *err)
{
	int version, n;

	memset(kvm, 0, sizeof(*kvm));
	kvm->fd = open(path, O_RDWR | O_CLOEXEC);
	if (kvm->fd < 0)
		return fv_err_errno(err, FV_E_KVM, errno, "cannot open %s", path);
	version = ioctl(kvm->fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		fv_err(err, FV_E_KVM, "%s speaks KVM API %d, foldvm needs %d",
		       path, version, KVM_API_VERSION);
		goto fail;
	}
	if (kvm_require_cap(kvm->fd, KVM_CAP_USER_MEMORY,
			    "KVM_CAP_USER_MEMORY", err) ||
	    kvm_require_cap(kvm->fd, KVM_CAP_IMMEDIATE_EXIT,
			    "KVM_CAP_IMMEDIATE_EXIT", err) ||
	    kvm_require_cap(kvm->fd, KVM_CAP_EXT_CPUID,
			    "KVM_CAP_EXT_CPUID", err))
		goto fail;
	kvm->run_size = ioctl(kvm->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (kvm->run_size <= 0) {
		fv_err_errno(err, FV_E_KVM, errno, "KVM_GET_VCPU_MMAP_SIZE");
		goto fail;
	}
	n = ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	kvm->max_vcpus = n > 0 ? n : 1;
	if (kvm_get_cpuid(kvm, err))
		goto fail;
	return 0;
fail:
	kvm_sys_close(kvm);
	return -1;
}

void kvm_sys_close(struct kvm_sys *kvm)
{
	if (kvm->fd > 0)
		close(kvm->fd);
	free(kvm->cpuid);
	memset(kvm, 0, sizeof(*kvm));
	kvm->fd = -1;
}

int kvm_vm_create(struct kvm_sys *kvm, struct fv_error *err)
{
	int fd;

	do {
		fd = ioctl(kvm->fd, KVM_CREATE_VM, 0);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return fv_err_errno(err, FV_E_KVM, errno, "KVM_CREATE_VM");
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		int e = errno;

		close(fd);
		return fv_err_errno(err, FV_E_SYS, e, "fcntl(FD_CLOEXEC)");
	}
	return fd;
}

int kvm_available(const char *path)
{
	return access(path, R_OK | W_OK) == 0;
}
