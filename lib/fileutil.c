#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "lib/fileutil.h"

int fv_check_file(const char *path, uint64_t max, const char *what,
		  uint64_t *size, struct fv_error *err)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return fv_err_errno(err, FV_E_INVAL, errno, "%s '%s'", what, path);
	if (!S_ISREG(st.st_mode))
		return fv_err(err, FV_E_INVAL, "%s '%s' is not a regular file",
			      what, path);
	if (st.st_size == 0 || (uint64_t)st.st_size > max)
		return fv_err(err, FV_E_INVAL,
			      "%s '%s' is %lld bytes; it must be 1..%llu",
			      what, path, (long long)st.st_size,
			      (unsigned long long)max);
	if (size)
		*size = (uint64_t)st.st_size;
	return 0;
}

int fv_read_file(const char *path, uint64_t max, const char *what,
		 uint8_t **buf, size_t *len, struct fv_error *err)
{
	uint64_t size;
	size_t got = 0, cap;
	ssize_t n;
	int fd;

	*buf = NULL;
	if (fv_check_file(path, max, what, &size, err))
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fv_err_errno(err, FV_E_IO, errno, "%s '%s'", what, path);
	/* One byte more than stat() said, so a file that grew is caught. */
	cap = (size_t)size + 1;
	*buf = malloc(cap);
	if (!*buf) {
		close(fd);
		return fv_err(err, FV_E_NOMEM, "no memory for %s '%s' (%llu bytes)",
			      what, path, (unsigned long long)size);
	}
	while (got < cap && (n = read(fd, *buf + got, cap - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			close(fd);
			free(*buf);
			*buf = NULL;
			return fv_err_errno(err, FV_E_IO, e, "reading %s '%s'",
					    what, path);
		}
		got += (size_t)n;
	}
	close(fd);
	if (got == 0 || got != size) {
		free(*buf);
		*buf = NULL;
		return fv_err(err, FV_E_IO, "%s '%s' changed size while read",
			      what, path);
	}
	*len = got;
	return 0;
}

int fv_private_dir(const char *dir, const char *what, struct fv_error *err)
{
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return fv_err_errno(err, FV_E_IO, errno, "cannot create %s %s", what, dir);
	if (lstat(dir, &st) < 0)
		return fv_err_errno(err, FV_E_IO, errno, "%s %s", what, dir);
	if (S_ISLNK(st.st_mode))
		return fv_err(err, FV_E_INVAL,
			      "%s %s is a symbolic link; foldvm follows none it did not make",
			      what, dir);
	if (!S_ISDIR(st.st_mode))
		return fv_err(err, FV_E_INVAL, "%s %s is not a directory", what, dir);
	if (st.st_uid != geteuid())
		return fv_err(err, FV_E_INVAL,
			      "%s %s belongs to uid %u, not to foldvm's user (uid %u)",
			      what, dir, (unsigned)st.st_uid, (unsigned)geteuid());
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return fv_err(err, FV_E_INVAL,
			      "%s %s may be written by others (mode %04o); chmod go-w it",
			      what, dir, (unsigned)(st.st_mode & 07777));
	return 0;
}

void fv_parent_dir(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(dir, len, ".");
	else if (slash == path)
		snprintf(dir, len, "/");
	else
		snprintf(dir, len, "%.*s", (int)(slash - path), path);
}
