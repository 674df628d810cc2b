#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include "guest-tools/testdev_abi.h"
#include "vmm/payload.h"

int payload_check_file(const char *path, struct fv_error *err)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return fv_err_errno(err, FV_E_INVAL, errno, "payload '%s'", path);
	if (!S_ISREG(st.st_mode))
		return fv_err(err, FV_E_INVAL, "payload '%s' is not a regular file",
			      path);
	if (st.st_size == 0 || (uint64_t)st.st_size > FV_PAYLOAD_MAX)
		return fv_err(err, FV_E_INVAL,
			      "payload '%s' is %lld bytes; it must be 1..%llu",
			      path, (long long)st.st_size,
			      (unsigned long long)FV_PAYLOAD_MAX);
	return 0;
}

static int payload_read_file(const char *path, uint8_t **buf, size_t *len,
			     struct fv_error *err)
{
	ssize_t n;
	size_t got = 0;
	int fd;

	if (payload_check_file(path, err))
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fv_err_errno(err, FV_E_IO, errno, "payload '%s'", path);
	/* Read at most the limit + 1 so a file that grew since stat() is
	 * still caught. */
	*buf = malloc(FV_PAYLOAD_MAX + 1);
	if (!*buf) {
		close(fd);
		return fv_err(err, FV_E_NOMEM, "payload buffer");
	}
	while (got <= FV_PAYLOAD_MAX &&
	       (n = read(fd, *buf + got, FV_PAYLOAD_MAX + 1 - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			close(fd);
			free(*buf);
			return fv_err_errno(err, FV_E_IO, e, "reading payload '%s'",
					    path);
		}
		got += (size_t)n;
	}
	close(fd);
	if (got == 0 || got > FV_PAYLOAD_MAX) {
		free(*buf);
		return fv_err(err, FV_E_INVAL, "payload '%s' has a bad size", path);
	}
	*len = got;
	return 0;
}

int payload_load(struct guest_mem *gm, const char *path, struct fv_error *err)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	if (!path || !*path) {
		len = (size_t)(fv_builtin_payload_end - fv_builtin_payload);
		return gmem_write(gm, FV_PAYLOAD_GPA, fv_builtin_payload, len, err);
	}
	if (payload_read_file(path, &buf, &len, err))
		return -1;
	r = gmem_write(gm, FV_PAYLOAD_GPA, buf, len, err);
	free(buf);
	return r;
}
