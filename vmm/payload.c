#include <stdlib.h>
#include "guest-tools/testdev_abi.h"
#include "lib/fileutil.h"
#include "vmm/payload.h"

int payload_check_file(const char *path, struct fv_error *err)
{
	return fv_check_file(path, FV_PAYLOAD_MAX, "payload", NULL, err);
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
	if (fv_read_file(path, FV_PAYLOAD_MAX, "payload", &buf, &len, err))
		return -1;
	r = gmem_write(gm, FV_PAYLOAD_GPA, buf, len, err);
	free(buf);
	return r;
}
