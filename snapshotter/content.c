/*
 * The content store: see content.h. A blob's record (blobs table) and its
 * file blobs/sha256/HEX appear together: the file is complete and synced in
 * ingest/ first, then renamed into place as the last act of the write
 * transaction that adds the record, and renamed back if that transaction
 * does not commit. Removal deletes the record, syncs the metadata, then
 * moves the file to trash/.
 */
#include "content.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "refs.h"
#include "store-internal.h"
#include "util.h"

#define BLOB_RECORD_V1	    1
#define COUNTER_BLOBS	    "blobs.count"
#define COUNTER_BLOBS_BYTES "blobs.bytes"
#define COUNTER_BLOBS_DISK  "blobs.disk"
#define CONTENT_READ_CHUNK  (1u << 20)

struct snap_content_writer {
	struct snap_store *store;
	int fd;
	char rel[PATH_MAX]; /* ingest/NAME, relative to ROOT */
	struct sc_sha256 *hash;
	uint64_t written;
	int64_t expected_size;
	char expected[SC_DIGEST_STR_LEN + 1];
};

void
snap_blob_info_clear(struct snap_blob_info *info)
{
	if (!info)
		return;
	free(info->media_type);
	snap_labels_free(info->labels, info->nlabels);
	*info = (struct snap_blob_info){0};
}

static int
blob_encode(const struct snap_blob_info *info, struct sc_buf *b)
{
	int r = 0;
	r |= snap_rec_put_u8(b, BLOB_RECORD_V1);
	r |= snap_rec_put_u64(b, info->size);
	r |= snap_rec_put_u64(b, info->disk);
	r |= snap_rec_put_str(b, info->media_type);
	r |= snap_rec_put_u64(b, info->created);
	r |= snap_rec_put_u64(b, info->last_used);
	r |= snap_rec_put_labels(b, info->labels, info->nlabels);
	return r < 0 ? -ENOMEM : 0;
}

int
snap_blob_decode(const MDB_val *k, const MDB_val *v, struct snap_blob_info *ret)
{
	struct snap_rec_reader rd = {.p = v->mv_data, .left = v->mv_size};
	struct snap_blob_info info = {0};
	if (k->mv_size != SC_DIGEST_STR_LEN || snap_rec_get_u8(&rd) != BLOB_RECORD_V1)
		return -EUCLEAN;
	memcpy(info.digest, k->mv_data, SC_DIGEST_STR_LEN);
	info.size = snap_rec_get_u64(&rd);
	info.disk = snap_rec_get_u64(&rd);
	info.media_type = snap_rec_get_str(&rd);
	info.created = snap_rec_get_u64(&rd);
	info.last_used = snap_rec_get_u64(&rd);
	snap_rec_get_labels(&rd, &info.labels, &info.nlabels);
	if (rd.bad || !info.media_type) {
		snap_blob_info_clear(&info);
		return -EUCLEAN;
	}
	*ret = info;
	return 0;
}

int
snap_blob_get_txn(struct snap_txn *t, const char *digest, struct snap_blob_info *ret)
{
	MDB_val v;
	int r = snap_txn_get(t, SNAP_DB_BLOBS, digest, strlen(digest), &v);
	if (r < 0)
		return r;
	MDB_val k = {.mv_size = strlen(digest), .mv_data = (void *)digest};
	r = snap_blob_decode(&k, &v, ret);
	if (r < 0) {
		sc_err_set(t->err, r, "blob '%s': record is damaged; run 'snapctl check'", digest);
		return snap_txn_fail(t, r);
	}
	return 0;
}

static int
blob_put(struct snap_txn *t, const struct snap_blob_info *info)
{
	struct sc_buf b = {0};
	int r = blob_encode(info, &b);
	if (r >= 0)
		r = snap_txn_put(t, SNAP_DB_BLOBS, info->digest, strlen(info->digest), b.data,
				 b.len, 0);
	else
		snap_txn_fail(t, r);
	sc_buf_free(&b);
	return r;
}

void
snap_blob_rel(char *buf, size_t len, const char *digest)
{
	snprintf(buf, len, "blobs/sha256/%s", digest + 7);
}

static int
digest_check(const char *digest, struct sc_err *err)
{
	if (!sc_digest_valid(digest))
		return sc_err_set(err, -EINVAL,
				  "'%.80s' is not a sha256 digest (sha256: and 64 lowercase hex)",
				  digest ? digest : "");
	return 0;
}

int
snap_content_writer_new(struct snap_store *s, const char *expected_digest, int64_t expected_size,
			struct snap_content_writer **ret, struct sc_err *err)
{
	if (expected_digest) {
		int r = digest_check(expected_digest, err);
		if (r < 0)
			return r;
	}
	struct snap_content_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return sc_err_set(err, -ENOMEM, "out of memory");
	w->store = s;
	w->fd = -EBADF;
	w->expected_size = expected_size;
	if (expected_digest)
		snprintf(w->expected, sizeof(w->expected), "%s", expected_digest);
	/* The name carries the owner, like tmp/, so cleanup can tell crashed writers. */
	snprintf(w->rel, sizeof(w->rel), "ingest/w.%d.%" PRIu64 ".%u", (int)s->pid, s->starttime,
		 ++s->seq);
	int r = sc_sha256_new(&w->hash);
	if (r < 0) {
		snap_content_abort(w);
		return sc_err_set(err, r, "out of memory");
	}
	w->fd = openat(s->root_fd, w->rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		r = -errno;
		snap_content_abort(w);
		return sc_err_setsys(err, r, "cannot create '%s/%s'", s->root, w->rel);
	}
	*ret = w;
	return 0;
}

uint64_t
snap_content_written(const struct snap_content_writer *w)
{
	return w->written;
}

int
snap_content_write(struct snap_content_writer *w, const void *data, size_t len, struct sc_err *err)
{
	if (w->expected_size >= 0 && w->written + len > (uint64_t)w->expected_size)
		return sc_err_set(err, -EFBIG, "blob is longer than its declared %" PRId64 " bytes",
				  w->expected_size);
	int r = sc_sha256_update(w->hash, data, len);
	if (r < 0)
		return sc_err_set(err, r, "cannot hash blob");
	const uint8_t *p = data;
	size_t left = len;
	while (left > 0) {
		ssize_t n = write(w->fd, p, left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return sc_err_setsys(err, -errno, "cannot write '%s/%s'", w->store->root,
					     w->rel);
		}
		p += n;
		left -= (size_t)n;
	}
	w->written += len;
	return 0;
}

struct snap_content_writer *
snap_content_abort(struct snap_content_writer *w)
{
	if (!w)
		return NULL;
	if (w->fd >= 0) {
		close(w->fd);
		unlinkat(w->store->root_fd, w->rel, 0);
	}
	sc_sha256_free(w->hash);
	free(w);
	return NULL;
}

struct commit_op {
	struct snap_store *s;
	const char *rel;
	char final_rel[PATH_MAX];
	struct snap_blob_info info;
	bool existed;
};

static void
commit_undo(void *arg)
{
	struct commit_op *op = arg;
	/* The transaction that named the blob did not commit: take the name back. */
	if (unlinkat(op->s->root_fd, op->final_rel, 0) < 0)
		sc_debug("cannot remove %s: %m", op->final_rel);
}

static int
commit_write(struct snap_txn *t, void *arg)
{
	struct commit_op *op = arg;
	struct snap_blob_info old = {0};
	int r = snap_blob_get_txn(t, op->info.digest, &old);
	if (r == 0) {
		/* Content-addressed: the same bytes are already here. Note the use. */
		old.last_used = op->info.last_used;
		r = blob_put(t, &old);
		snap_blob_info_clear(&old);
		op->existed = true;
		if (r >= 0)
			r = snap_store_lease_txn(op->s, t, "blob", op->info.digest);
		return r;
	}
	if (r != -ENOENT)
		return r;
	op->existed = false;
	r = blob_put(t, &op->info);
	if (r >= 0)
		r = snap_txn_counter_add(t, COUNTER_BLOBS, 1);
	if (r >= 0)
		r = snap_txn_counter_add(t, COUNTER_BLOBS_BYTES, (int64_t)op->info.size);
	if (r >= 0)
		r = snap_txn_counter_add(t, COUNTER_BLOBS_DISK, (int64_t)op->info.disk);
	if (r >= 0)
		r = snap_store_lease_txn(op->s, t, "blob", op->info.digest);
	if (r < 0)
		return r;
	/*
	 * Last act: the complete file appears under its digest, as a second
	 * link. Its ingest/ name (owner and digest) stays until the
	 * transaction commits, so a crash before that is cleaned up by
	 * snap_store_cleanup. A file already there has no record: garbage,
	 * under the writer lock.
	 */
	int fd = op->s->root_fd;
	if (linkat(fd, op->rel, fd, op->final_rel, 0) < 0 &&
	    (errno != EEXIST || unlinkat(fd, op->final_rel, 0) < 0 ||
	     linkat(fd, op->rel, fd, op->final_rel, 0) < 0))
		return snap_txn_fail(t, sc_err_setsys(t->err, -errno, "cannot link blob into '%s'",
						      op->final_rel));
	snap_txn_on_abort(t, commit_undo, op);
	return 0;
}

int
snap_content_commit(struct snap_content_writer *w, const char *media_type,
		    char ret_digest[SC_DIGEST_STR_LEN + 1], struct sc_err *err)
{
	struct commit_op op = {.s = w->store, .rel = w->rel};
	int r = sc_sha256_final(w->hash, op.info.digest);
	if (r < 0) {
		snap_content_abort(w);
		return sc_err_set(err, r, "cannot hash blob");
	}
	if (w->expected[0] && strcmp(w->expected, op.info.digest) != 0) {
		r = sc_err_set(err, -EBADMSG, "blob digest mismatch: expected %s, content is %s",
			       w->expected, op.info.digest);
	} else if (w->expected_size >= 0 && w->written != (uint64_t)w->expected_size) {
		r = sc_err_set(err, -EBADMSG,
			       "blob %s is %" PRIu64 " bytes, not the declared %" PRId64
			       "; it was cut short",
			       op.info.digest, w->written, w->expected_size);
	} else if (media_type && strlen(media_type) > SNAP_MEDIA_TYPE_MAX) {
		r = sc_err_set(err, -EINVAL, "media type is longer than %d bytes",
			       SNAP_MEDIA_TYPE_MAX);
	} else if (fdatasync(w->fd) < 0) {
		/* The file must be whole on disk before a record can name it. */
		r = sc_err_setsys(err, -errno, "cannot sync blob");
	}
	if (r < 0) {
		snap_content_abort(w);
		return r;
	}
	op.info.size = w->written;
	struct stat st;
	op.info.disk = fstat(w->fd, &st) == 0 ? (uint64_t)st.st_blocks * 512 : w->written;
	op.info.media_type = (char *)(media_type ? media_type : "");
	op.info.created = op.info.last_used = sc_now_ns();
	snap_blob_rel(op.final_rel, sizeof(op.final_rel), op.info.digest);
	/* The ingest name gains the digest: what a crash mid-commit left is findable. */
	char named[PATH_MAX];
	snprintf(named, sizeof(named), "%s" SNAP_INGEST_DIGEST_SEP "%s", w->rel,
		 op.info.digest + 7);
	if (renameat(w->store->root_fd, w->rel, w->store->root_fd, named) < 0) {
		r = sc_err_setsys(err, -errno, "cannot rename '%s'", w->rel);
		snap_content_abort(w);
		return r;
	}
	memcpy(w->rel, named, sizeof(named));
	r = snap_meta_write(w->store->meta, commit_write, &op, err);
	if (ret_digest && r >= 0)
		memcpy(ret_digest, op.info.digest, SC_DIGEST_STR_LEN + 1);
	/* Whatever is still in ingest/ (a duplicate, or a failed commit) goes. */
	close(w->fd);
	w->fd = -EBADF;
	unlinkat(w->store->root_fd, w->rel, 0);
	sc_sha256_free(w->hash);
	free(w);
	return r;
}

int
snap_content_put(struct snap_store *s, const void *data, size_t len, const char *media_type,
		 char ret_digest[SC_DIGEST_STR_LEN + 1], struct sc_err *err)
{
	struct snap_content_writer *w = NULL;
	int r = snap_content_writer_new(s, NULL, (int64_t)len, &w, err);
	if (r < 0)
		return r;
	r = snap_content_write(w, data, len, err);
	if (r < 0) {
		snap_content_abort(w);
		return r;
	}
	return snap_content_commit(w, media_type, ret_digest, err);
}

int
snap_content_stat(struct snap_store *s, const char *digest, struct snap_blob_info *ret,
		  struct sc_err *err)
{
	int r = digest_check(digest, err);
	if (r < 0)
		return r;
	struct snap_txn t;
	r = snap_txn_begin_read(s->meta, &t, err);
	if (r < 0)
		return r;
	r = snap_blob_get_txn(&t, digest, ret);
	snap_txn_end(&t);
	if (r == -ENOENT)
		return sc_err_set(err, r, "blob %s is not in the store", digest);
	return r;
}

int
snap_content_open(struct snap_store *s, const char *digest, int *ret_fd, uint64_t *ret_size,
		  struct sc_err *err)
{
	struct snap_blob_info info = {0};
	int r = snap_content_stat(s, digest, &info, err);
	if (r < 0)
		return r;
	char rel[PATH_MAX];
	snap_blob_rel(rel, sizeof(rel), digest);
	int fd = openat(s->root_fd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snap_blob_info_clear(&info);
		return sc_err_setsys(err, r,
				     "blob %s has a record but its file is unreadable; run "
				     "'snapctl check'",
				     digest);
	}
	if (ret_size)
		*ret_size = info.size;
	snap_blob_info_clear(&info);
	*ret_fd = fd;
	return 0;
}

int
snap_content_read_all(struct snap_store *s, const char *digest, size_t max, char **ret,
		      size_t *ret_len, struct sc_err *err)
{
	_cleanup_close_ int fd = -EBADF;
	uint64_t size = 0;
	int r = snap_content_open(s, digest, &fd, &size, err);
	if (r < 0)
		return r;
	if (size > max)
		return sc_err_set(err, -EFBIG,
				  "blob %s is %" PRIu64 " bytes, over the limit of %zu", digest,
				  size, max);
	char *buf = malloc(size + 1);
	if (!buf)
		return sc_err_set(err, -ENOMEM, "out of memory");
	size_t got = 0;
	while (got < size) {
		ssize_t n = pread(fd, buf + got, size - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return sc_err_setsys(err, n < 0 ? -errno : -EIO, "cannot read blob %s",
					     digest);
		}
		got += (size_t)n;
	}
	buf[size] = '\0';
	*ret = buf;
	if (ret_len)
		*ret_len = size;
	return 0;
}

int
snap_content_verify(struct snap_store *s, const char *digest, struct sc_err *err)
{
	_cleanup_close_ int fd = -EBADF;
	uint64_t size = 0;
	int r = snap_content_open(s, digest, &fd, &size, err);
	if (r < 0)
		return r;
	struct sc_sha256 *h = NULL;
	r = sc_sha256_new(&h);
	_cleanup_free_ uint8_t *buf = malloc(CONTENT_READ_CHUNK);
	if (r < 0 || !buf) {
		sc_sha256_free(h);
		return sc_err_set(err, -ENOMEM, "out of memory");
	}
	uint64_t total = 0;
	for (;;) {
		ssize_t n = read(fd, buf, CONTENT_READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = sc_err_setsys(err, -errno, "cannot read blob %s", digest);
			break;
		}
		if (n == 0)
			break;
		sc_sha256_update(h, buf, (size_t)n);
		total += (uint64_t)n;
	}
	char actual[SC_DIGEST_STR_LEN + 1];
	if (r >= 0 && sc_sha256_final(h, actual) >= 0) {
		if (strcmp(actual, digest) != 0)
			r = sc_err_set(err, -EBADMSG,
				       "blob %s is damaged: its content hashes to %s", digest,
				       actual);
		else if (total != size)
			r = sc_err_set(err, -EBADMSG,
				       "blob %s is damaged: %" PRIu64
				       " bytes, record says %" PRIu64,
				       digest, total, size);
	}
	sc_sha256_free(h);
	return r;
}

struct remove_op {
	const char *digest;
};

int
snap_blob_delete_txn(struct snap_txn *t, const struct snap_blob_info *info)
{
	int r = snap_txn_del(t, SNAP_DB_BLOBS, info->digest, strlen(info->digest));
	if (r >= 0)
		r = snap_txn_counter_add(t, COUNTER_BLOBS, -1);
	if (r >= 0)
		r = snap_txn_counter_add(t, COUNTER_BLOBS_BYTES, -(int64_t)info->size);
	if (r >= 0)
		r = snap_txn_counter_add(t, COUNTER_BLOBS_DISK, -(int64_t)info->disk);
	if (r >= 0) {
		char obj[SNAP_OBJ_NAME_MAX + 1];
		snprintf(obj, sizeof(obj), "blob:%s", info->digest);
		r = snap_ref_del_from_txn(t, obj);
	}
	return r < 0 ? snap_txn_fail(t, r) : r;
}

static int
remove_write(struct snap_txn *t, void *arg)
{
	const char *digest = arg;
	struct snap_blob_info info = {0};
	int r = snap_blob_get_txn(t, digest, &info);
	if (r == -ENOENT)
		return sc_err_set(t->err, r, "blob %s is not in the store", digest);
	if (r >= 0)
		r = snap_blob_delete_txn(t, &info);
	snap_blob_info_clear(&info);
	return r;
}

struct trash_op {
	struct snap_store *s;
	const char *const *digests;
	size_t n;
};

static int
trash_unnamed_write(struct snap_txn *t, void *arg)
{
	struct trash_op *op = arg;
	for (size_t i = 0; i < op->n; i++) {
		struct snap_blob_info info = {0};
		int r = snap_blob_get_txn(t, op->digests[i], &info);
		snap_blob_info_clear(&info);
		if (r == 0)
			continue; /* stored again meantime: the file is the new record's */
		if (r != -ENOENT)
			return r;
		char rel[PATH_MAX];
		snap_blob_rel(rel, sizeof(rel), op->digests[i]);
		snap_store_trash(op->s, rel);
	}
	return 0; /* nothing changed: the commit writes nothing */
}

int
snap_blobs_trash_unnamed(struct snap_store *s, const char *const *digests, size_t n,
			 struct sc_err *err)
{
	if (n == 0)
		return 0;
	struct trash_op op = {.s = s, .digests = digests, .n = n};
	return snap_meta_write(s->meta, trash_unnamed_write, &op, err);
}

int
snap_content_remove(struct snap_store *s, const char *digest, struct sc_err *err)
{
	int r = digest_check(digest, err);
	if (r < 0)
		return r;
	r = snap_meta_write(s->meta, remove_write, (void *)digest, err);
	if (r < 0)
		return r;
	r = snap_meta_sync(s->meta);
	if (r < 0)
		return sc_err_setsys(err, r, "cannot sync metadata");
	const char *one[] = {digest};
	r = snap_blobs_trash_unnamed(s, one, 1, err);
	snap_store_empty_trash(s);
	return r;
}

struct walk_collect {
	struct snap_blob_info *v;
	size_t n, cap;
};

static int
walk_visit(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct walk_collect *c = arg;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct snap_blob_info *p = realloc(c->v, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		c->v = p;
		c->cap = cap;
	}
	int r = snap_blob_decode(k, v, &c->v[c->n]);
	if (r < 0)
		return r;
	c->n++;
	return 0;
}

int
snap_content_walk(struct snap_store *s, snap_content_walk_fn fn, void *arg, struct sc_err *err)
{
	struct snap_txn t;
	int r = snap_txn_begin_read(s->meta, &t, err);
	if (r < 0)
		return r;
	struct walk_collect c = {0};
	r = snap_txn_scan(&t, SNAP_DB_BLOBS, NULL, 0, walk_visit, &c);
	snap_txn_end(&t);
	if (r < 0)
		sc_err_setsys(err, r, "cannot list blobs");
	for (size_t i = 0; i < c.n; i++) {
		if (r >= 0)
			r = fn(&c.v[i], arg);
		snap_blob_info_clear(&c.v[i]);
	}
	free(c.v);
	return r;
}
