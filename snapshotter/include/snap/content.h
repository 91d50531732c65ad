/*
 * The content store: blobs (layers, configs, manifests, indexes) named by
 * their sha256 digest under ROOT/blobs/sha256/HEX, with a record in the
 * blobs table (size, media type, times, labels).
 *
 * Writes stream into ROOT/ingest/, hashed as they go; commit checks the
 * digest and size, syncs the file, and renames it into blobs/ as the last
 * act of the write transaction that adds its record (undone if that
 * transaction fails). A record therefore never exists without its whole
 * file. Committing a blob that already exists is not an error: the new copy
 * is dropped and the record's last-used time is updated.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "err.h"
#include "store.h"

#define SNAP_MEDIA_TYPE_MAX 255

struct snap_blob_info {
	char digest[SC_DIGEST_STR_LEN + 1];
	uint64_t size;
	uint64_t disk;	  /* bytes its file takes on disk (allocated blocks) */
	char *media_type; /* "" when unknown */
	uint64_t created, last_used;
	struct snap_label *labels;
	size_t nlabels;
};

void snap_blob_info_clear(struct snap_blob_info *info);

struct snap_content_writer;

/*
 * Starts a blob. expected_digest (NULL: unknown) and expected_size (-1:
 * unknown) are checked at commit. Errors: -EINVAL malformed digest.
 */
int snap_content_writer_new(struct snap_store *s, const char *expected_digest,
			    int64_t expected_size, struct snap_content_writer **ret,
			    struct sc_err *err);
/* Appends bytes. Errors: -ENOSPC/-EDQUOT, -EFBIG past expected_size. */
int snap_content_write(struct snap_content_writer *w, const void *data, size_t len,
		       struct sc_err *err);
/* Bytes written so far. */
uint64_t snap_content_written(const struct snap_content_writer *w);
/*
 * Checks and stores the blob; ret_digest (may be NULL) receives its digest.
 * The writer is freed whatever the outcome.
 * Errors: -EBADMSG digest or size mismatch (the data is dropped).
 */
int snap_content_commit(struct snap_content_writer *w, const char *media_type,
			char ret_digest[SC_DIGEST_STR_LEN + 1], struct sc_err *err);
/* Drops an unfinished blob; NULL-safe; returns NULL. */
struct snap_content_writer *snap_content_abort(struct snap_content_writer *w);

/* Stores a whole buffer (small JSON documents). */
int snap_content_put(struct snap_store *s, const void *data, size_t len, const char *media_type,
		     char ret_digest[SC_DIGEST_STR_LEN + 1], struct sc_err *err);

/* Opens a blob for reading; ret_size (may be NULL) gets its size. -ENOENT if missing. */
int snap_content_open(struct snap_store *s, const char *digest, int *ret_fd, uint64_t *ret_size,
		      struct sc_err *err);
/* Reads a whole blob of at most max bytes into a buffer the caller frees (NUL-terminated). */
int snap_content_read_all(struct snap_store *s, const char *digest, size_t max, char **ret,
			  size_t *ret_len, struct sc_err *err);
int snap_content_stat(struct snap_store *s, const char *digest, struct snap_blob_info *ret,
		      struct sc_err *err);
/* Re-hashes a blob. -EBADMSG if its content no longer matches its digest. */
int snap_content_verify(struct snap_store *s, const char *digest, struct sc_err *err);
/* Removes a blob's record and file. -ENOENT if missing. */
int snap_content_remove(struct snap_store *s, const char *digest, struct sc_err *err);

typedef int (*snap_content_walk_fn)(const struct snap_blob_info *info, void *arg);
int snap_content_walk(struct snap_store *s, snap_content_walk_fn fn, void *arg, struct sc_err *err);
