#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include "guest-tools/testdev_abi.h"
#include "vmm/blob.h"

#define BLOB_MAX_DEPTH 24
#define BLOB_INODE_SLOTS 65536u /* open-addressing set of seen inodes */

struct blob_walk {
	struct blob *blob;
	uint64_t max_pages;
	uint64_t *seen;      /* dev ^ ino hashes, 0 = empty slot */
	unsigned nr_seen;
};

static uint64_t inode_key(const struct stat *st)
{
	uint64_t k = ((uint64_t)st->st_dev << 40) ^ (uint64_t)st->st_ino;

	return k ? k : 1;
}

/* Has this inode (a hard link to it) been read before?  Remembers it. */
static bool blob_seen(struct blob_walk *w, const struct stat *st)
{
	uint64_t key = inode_key(st);
	unsigned i = (unsigned)(key * 0x9e3779b97f4a7c15ull >> 48) %
		     BLOB_INODE_SLOTS;

	/* Only files with several links can repeat; the set stays small. */
	if (st->st_nlink < 2)
		return false;
	if (w->nr_seen >= BLOB_INODE_SLOTS / 2)
		return false; /* full enough: accept a duplicate over a stall */
	while (w->seen[i]) {
		if (w->seen[i] == key)
			return true;
		i = (i + 1) % BLOB_INODE_SLOTS;
	}
	w->seen[i] = key;
	w->nr_seen++;
	return false;
}

/* Append one file, page aligned, up to the page budget. */
static void blob_add_file(struct blob_walk *w, const char *path,
			  const struct stat *st)
{
	struct blob *b = w->blob;
	uint64_t room = (w->max_pages - b->pages) * FV_PAGE_SIZE;
	uint64_t want = (uint64_t)st->st_size < room ? (uint64_t)st->st_size : room;
	uint8_t *dst = b->data + b->pages * FV_PAGE_SIZE;
	uint64_t got = 0;
	int fd;

	if (want == 0 || blob_seen(w, st))
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return;
	while (got < want) {
		ssize_t n = read(fd, dst + got, want - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (uint64_t)n;
	}
	close(fd);
	if (got == 0)
		return;
	b->starts[b->pages / 8] |= (uint8_t)(1u << (b->pages % 8));
	/* The tail page keeps zero padding, as in a page cache. */
	b->pages += (got + FV_PAGE_SIZE - 1) / FV_PAGE_SIZE;
	b->files++;
	b->file_bytes += got;
}

static void blob_walk_path(struct blob_walk *w, const char *path, int depth)
{
	struct dirent **ents;
	struct stat st;
	int n;

	if (w->blob->pages >= w->max_pages || lstat(path, &st) < 0)
		return;
	if (S_ISREG(st.st_mode)) {
		blob_add_file(w, path, &st);
		return;
	}
	if (!S_ISDIR(st.st_mode) || depth >= BLOB_MAX_DEPTH)
		return;
	/* Sorted, so every run and every guest sees the same file set. */
	n = scandir(path, &ents, NULL, alphasort);
	if (n < 0)
		return;
	for (int i = 0; i < n; i++) {
		char child[4096];
		const char *name = ents[i]->d_name;

		if (strcmp(name, ".") && strcmp(name, "..") &&
		    snprintf(child, sizeof(child), "%s/%s", path, name) <
		    (int)sizeof(child))
			blob_walk_path(w, child, depth + 1);
		free(ents[i]);
	}
	free(ents);
}

int blob_load(struct blob *blob, const char *const *paths, unsigned npaths,
	      uint64_t max_pages, struct fv_error *err)
{
	struct blob_walk w = { .blob = blob, .max_pages = max_pages };

	memset(blob, 0, sizeof(*blob));
	if (max_pages == 0)
		return 0;
	/* mmap, not malloc: untouched tail pages cost nothing. */
	blob->data = mmap(NULL, max_pages * FV_PAGE_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (blob->data == MAP_FAILED) {
		blob->data = NULL;
		return fv_err_errno(err, FV_E_NOMEM, errno,
				    "cannot map %llu MiB for file contents",
				    (unsigned long long)(max_pages * FV_PAGE_SIZE >> 20));
	}
	blob->data_size = max_pages * FV_PAGE_SIZE;
	blob->starts = calloc(max_pages / 8 + 1, 1);
	w.seen = calloc(BLOB_INODE_SLOTS, sizeof(*w.seen));
	if (!w.seen || !blob->starts) {
		free(w.seen);
		blob_free(blob);
		return fv_err(err, FV_E_NOMEM, "inode set");
	}
	for (unsigned i = 0; i < npaths; i++)
		blob_walk_path(&w, paths[i], 0);
	free(w.seen);
	return 0;
}

void blob_free(struct blob *blob)
{
	if (blob->data)
		munmap(blob->data, blob->data_size);
	free(blob->starts);
	memset(blob, 0, sizeof(*blob));
}
