/*
 * blob.h - real file contents to put in test guests, the way a page cache
 * holds them: every file starts on a page boundary, its tail page is
 * zero-padded, hard links are read once.  The same blob goes into every
 * guest, so the same files are cached in each of them.
 */
#ifndef FOLDVM_BLOB_H
#define FOLDVM_BLOB_H

#include <stdbool.h>
#include <stdint.h>
#include "lib/error.h"

struct blob {
	uint8_t *data;       /* pages * 4096 bytes used, owned */
	uint64_t data_size;  /* bytes mapped at data */
	uint64_t pages;
	uint64_t files;      /* files read */
	uint64_t file_bytes; /* their sizes, before padding */
	uint8_t *starts;     /* bitmap: bit p set when a file starts at page p */
};

/* Read regular files under each path (a file or a directory, walked in
 * sorted order so every run reads the same set) until max_pages are filled.
 * Unreadable files are skipped.  An empty result is not an error. */
int blob_load(struct blob *blob, const char *const *paths, unsigned npaths,
	      uint64_t max_pages, struct fv_error *err);
void blob_free(struct blob *blob);

#endif
