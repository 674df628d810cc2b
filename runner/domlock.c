/*
 * domlock.c - the per-domain lock (see domlock.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "lib/fileutil.h"
#include "runner/domlock.h"

/* mkdir -p for the lock directory (0700: only foldvm's user reads it). */
static int make_dirs(const char *dir, struct fv_error *err)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(path))
		return fv_err(err, FV_E_INVAL, "lock directory '%s' is not a usable path", dir);
	memcpy(path, dir, len + 1);
	for (char *p = path + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST)
			return fv_err_errno(err, FV_E_IO, errno, "lock directory %s", path);
		*p = c;
		/* The parents may be anyone's (/run); the locks' own is ours. */
		if (!c)
			return fv_private_dir(path, "lock directory", err);
	}
}

static void lock_path(char *buf, size_t size, const char *dir, const char *uuid)
{
	snprintf(buf, size, "%s/%s.lock", dir, uuid);
}

/* Is the locked fd still the file at `path`?  A holder unlinks the file
 * before it lets go, so a lock won on an unlinked inode is worth nothing:
 * someone may already hold the new file of the same name. */
static bool lock_is_current(int fd, const char *path)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && stat(path, &b) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int domlock_acquire(const char *dir, const char *uuid, const char *name,
		    int *fd, struct fv_error *err)
{
	char path[PATH_MAX], holder[128] = "";
	ssize_t n;
	int got;

	*fd = -1;
	if (make_dirs(dir, err))
		return -1;
	lock_path(path, sizeof(path), dir, uuid);
	for (;;) {
		*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (*fd < 0)
			return fv_err_errno(err, FV_E_IO, errno, "lock %s", path);
		got = flock(*fd, LOCK_EX | LOCK_NB) == 0;
		if (!got || lock_is_current(*fd, path))
			break;
		close(*fd);     /* won a removed file: try the new one */
	}
	if (got) {
		/* Ours now: say who holds it, for the next one to read. */
		char line[128];
		int len = snprintf(line, sizeof(line), "pid %d, domain %s\n",
				   (int)getpid(), name);

		if (ftruncate(*fd, 0) == 0 && pwrite(*fd, line, (size_t)len, 0) < 0)
			(void)0; /* the lock holds; only the note is missing */
		return 0;
	}
	n = errno == EWOULDBLOCK ? pread(*fd, holder, sizeof(holder) - 1, 0) : -1;
	close(*fd);
	*fd = -1;
	if (n < 0)
		return fv_err_errno(err, FV_E_IO, errno, "lock %s", path);
	holder[n] = '\0';
	holder[strcspn(holder, "\n")] = '\0';
	return fv_err(err, FV_E_STATE,
		      "domain %s (uuid %s) already runs under another foldvm (%s; lock %s)",
		      name, uuid, holder[0] ? holder : "holder unknown", path);
}

void domlock_release(const char *dir, const char *uuid, int fd)
{
	char path[PATH_MAX];

	if (fd < 0)
		return;
	/* Unlink while still holding it: whoever locks the file next
	 * creates a fresh one, and no one waits on a removed inode. */
	lock_path(path, sizeof(path), dir, uuid);
	unlink(path);
	close(fd);
}
