/*
 * The build cache's records and notes in the cache table (see cache.h).
 *
 * Keys: "sha256:HEX" -> record; "note:" NAME -> opaque bytes; "fd:" KEY (40
 * bytes, cache.h) -> a file's sha256 ("sha256:HEX"). Record,
 * version 1: str snapshot, str layer digest, str diff id, u64 layer size,
 * str layer media type, str type, str description, u64 created,
 * u64 last_used, u64 uses.
 *
 * Edges: cache:KEY -> snapshot:SNAPSHOT and cache:KEY -> blob:LAYER,
 * written and replaced in the transaction that writes the record.
 */
#include "cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "content.h"
#include "refs.h"
#include "store-internal.h"
#include "util.h"

#define CACHE_RECORD_V1 1
#define NOTE_PREFIX	"note:"

void
snap_cache_record_clear(struct snap_cache_record *rec)
{
	free(rec->snapshot);
	free(rec->layer_media_type);
	free(rec->type);
	free(rec->description);
	*rec = (struct snap_cache_record){0};
}

static int
rec_encode(const struct snap_cache_record *rec, struct sc_buf *b)
{
	int r = 0;
	r |= snap_rec_put_u8(b, CACHE_RECORD_V1);
	r |= snap_rec_put_str(b, rec->snapshot);
	r |= snap_rec_put_str(b, rec->layer);
	r |= snap_rec_put_str(b, rec->diff_id);
	r |= snap_rec_put_u64(b, rec->layer_size);
	r |= snap_rec_put_str(b, rec->layer_media_type);
	r |= snap_rec_put_str(b, rec->type);
	r |= snap_rec_put_str(b, rec->description);
	r |= snap_rec_put_u64(b, rec->created);
	r |= snap_rec_put_u64(b, rec->last_used);
	r |= snap_rec_put_u64(b, rec->uses);
	return r < 0 ? -ENOMEM : 0;
}

static int
rec_decode(const void *key, size_t klen, const MDB_val *v, struct snap_cache_record *ret)
{
	struct snap_rec_reader rd = {.p = v->mv_data, .left = v->mv_size};
	struct snap_cache_record rec = {0};
	if (klen > SC_DIGEST_STR_LEN || snap_rec_get_u8(&rd) != CACHE_RECORD_V1)
		return -EUCLEAN;
	memcpy(rec.key, key, klen);
	rec.key[klen] = '\0';
	rec.snapshot = snap_rec_get_str(&rd);
	snap_rec_get_digest(&rd, rec.layer);
	snap_rec_get_digest(&rd, rec.diff_id);
	rec.layer_size = snap_rec_get_u64(&rd);
	rec.layer_media_type = snap_rec_get_str(&rd);
	rec.type = snap_rec_get_str(&rd);
	rec.description = snap_rec_get_str(&rd);
	rec.created = snap_rec_get_u64(&rd);
	rec.last_used = snap_rec_get_u64(&rd);
	rec.uses = snap_rec_get_u64(&rd);
	if (rd.bad || !rec.snapshot || !rec.layer_media_type || !rec.type || !rec.description) {
		snap_cache_record_clear(&rec);
		return -EUCLEAN;
	}
	*ret = rec;
	return 0;
}

int
snap_cache_decode(const MDB_val *k, const MDB_val *v, struct snap_cache_record *ret)
{
	return rec_decode(k->mv_data, k->mv_size, v, ret);
}

static int
rec_put(struct snap_txn *t, const struct snap_cache_record *rec)
{
	struct sc_buf b = {0};
	int r = rec_encode(rec, &b);
	if (r >= 0)
		r = snap_txn_put(t, SNAP_DB_CACHE, rec->key, strlen(rec->key), b.data, b.len, 0);
	else
		r = snap_txn_fail(t, r);
	sc_buf_free(&b);
	return r;
}

/* Drops a record and its edges. */
static int
rec_delete(struct snap_txn *t, const char *key)
{
	char obj[SNAP_OBJ_NAME_MAX + 1];
	snap_obj_name(obj, SNAP_OBJ_CACHE, key);
	int r = snap_txn_del(t, SNAP_DB_CACHE, key, strlen(key));
	if (r >= 0)
		r = snap_ref_del_from_txn(t, obj);
	return r;
}

/* Writes the record's edges (replacing old ones) and attaches it all to the handle's lease. */
static int
rec_edges(struct snap_store *s, struct snap_txn *t, const struct snap_cache_record *rec)
{
	char from[SNAP_OBJ_NAME_MAX + 1], to[SNAP_OBJ_NAME_MAX + 1];
	snap_obj_name(from, SNAP_OBJ_CACHE, rec->key);
	int r = snap_ref_del_from_txn(t, from);
	if (r >= 0 && rec->snapshot[0]) {
		if (snap_obj_name(to, SNAP_OBJ_SNAPSHOT, rec->snapshot) < 0)
			return snap_txn_fail(t, -ENAMETOOLONG);
		r = snap_ref_add_txn(t, from, to);
		if (r >= 0)
			r = snap_store_lease_txn(s, t, "snapshot", rec->snapshot);
	}
	if (r >= 0 && rec->layer[0]) {
		snap_obj_name(to, SNAP_OBJ_BLOB, rec->layer);
		r = snap_ref_add_txn(t, from, to);
		if (r >= 0)
			r = snap_store_lease_txn(s, t, "blob", rec->layer);
	}
	if (r >= 0)
		r = snap_store_lease_txn(s, t, "cache", rec->key);
	return r;
}

struct get_op {
	struct snap_store *s;
	const char *key;
	struct snap_cache_record rec;
	bool stale;
};

static int
get_write(struct snap_txn *t, void *arg)
{
	struct get_op *op = arg;
	snap_cache_record_clear(&op->rec);
	op->stale = false;
	MDB_val v;
	int r = snap_txn_get(t, SNAP_DB_CACHE, op->key, strlen(op->key), &v);
	if (r < 0)
		return r;
	r = rec_decode(op->key, strlen(op->key), &v, &op->rec);
	if (r < 0) {
		/* A damaged record is a miss; drop it so it is made again. */
		op->stale = true;
		return rec_delete(t, op->key);
	}
	struct snap_cache_record *rec = &op->rec;
	if (rec->snapshot[0]) {
		struct snap_info info = {0};
		r = snap_snapshot_get_txn(t, rec->snapshot, &info);
		bool ok = r >= 0 && info.kind == SNAP_KIND_COMMITTED;
		snap_info_clear(&info);
		if (r < 0 && r != -ENOENT)
			return r;
		if (!ok) {
			op->stale = true;
			return rec_delete(t, op->key);
		}
		r = snap_snapshot_touch_txn(t, rec->snapshot);
		if (r < 0)
			return r;
	}
	if (rec->layer[0]) {
		struct snap_blob_info bi = {0};
		r = snap_blob_get_txn(t, rec->layer, &bi);
		snap_blob_info_clear(&bi);
		if (r == -ENOENT) {
			rec->blob_missing = true;
			rec->layer[0] = '\0';
		} else if (r < 0) {
			return r;
		}
	}
	rec->last_used = sc_now_ns();
	rec->uses++;
	r = rec_put(t, rec);
	if (r >= 0)
		r = rec_edges(op->s, t, rec);
	return r;
}

int
snap_cache_get(struct snap_store *s, const char *key, struct snap_cache_record *ret,
	       struct sc_err *err)
{
	if (!sc_digest_valid(key))
		return sc_err_set(err, -EINVAL, "cache key '%s' is not a sha256 digest", key);
	struct get_op op = {.s = s, .key = key};
	int r = snap_meta_write(s->meta, get_write, &op, err);
	if (r >= 0 && op.stale)
		r = -ENOENT;
	if (r < 0) {
		snap_cache_record_clear(&op.rec);
		return r == -ENOENT ? r : sc_err_prefix(err, r, "cache record '%s'", key);
	}
	*ret = op.rec;
	return 0;
}

struct put_op {
	struct snap_store *s;
	const struct snap_cache_record *rec;
	struct sc_buf note_key;
	const struct snap_cache_note *note;
};

static int
put_write(struct snap_txn *t, void *arg)
{
	struct put_op *op = arg;
	struct snap_cache_record rec = *op->rec;
	struct snap_info info = {0};
	int r = 0;
	if (rec.snapshot && rec.snapshot[0]) {
		r = snap_snapshot_get_txn(t, rec.snapshot, &info);
		snap_info_clear(&info);
		if (r == -ENOENT)
			return sc_err_set(t->err, r, "snapshot '%s' does not exist", rec.snapshot);
	}
	if (r >= 0 && rec.layer[0]) {
		struct snap_blob_info bi = {0};
		r = snap_blob_get_txn(t, rec.layer, &bi);
		snap_blob_info_clear(&bi);
		if (r == -ENOENT)
			return sc_err_set(t->err, r, "blob '%s' does not exist", rec.layer);
	}
	if (r < 0)
		return r;
	uint64_t now = sc_now_ns();
	MDB_val v;
	struct snap_cache_record old = {0};
	if (snap_txn_get(t, SNAP_DB_CACHE, rec.key, strlen(rec.key), &v) == 0 &&
	    rec_decode(rec.key, strlen(rec.key), &v, &old) == 0) {
		if (!rec.created || old.created < rec.created)
			rec.created = old.created;
		rec.uses = old.uses + 1;
	}
	snap_cache_record_clear(&old);
	if (!rec.created)
		rec.created = now;
	if (!rec.last_used)
		rec.last_used = now;
	if (!rec.uses)
		rec.uses = 1;
	if (!rec.snapshot)
		rec.snapshot = "";
	if (!rec.layer_media_type)
		rec.layer_media_type = "";
	if (!rec.type)
		rec.type = "regular";
	if (!rec.description)
		rec.description = "";
	r = rec_put(t, &rec);
	if (r >= 0)
		r = rec_edges(op->s, t, &rec);
	if (r >= 0 && op->note)
		r = snap_txn_put(t, SNAP_DB_CACHE, op->note_key.data, op->note_key.len,
				 op->note->data, op->note->len, 0);
	return r;
}

static int note_key(struct sc_buf *b, const char *name);

int
snap_cache_put(struct snap_store *s, const struct snap_cache_record *rec,
	       const struct snap_cache_note *note, struct sc_err *err)
{
	if (!sc_digest_valid(rec->key))
		return sc_err_set(err, -EINVAL, "cache key '%s' is not a sha256 digest", rec->key);
	if (rec->description && strlen(rec->description) > SNAP_CACHE_DESC_MAX)
		return sc_err_set(err, -E2BIG, "cache description longer than %d bytes",
				  SNAP_CACHE_DESC_MAX);
	struct put_op op = {.s = s, .rec = rec, .note = note};
	if (note && note->len > SNAP_CACHE_NOTE_MAX)
		return sc_err_set(err, -EFBIG, "cache note '%s' is over %u bytes", note->name,
				  SNAP_CACHE_NOTE_MAX);
	if (note && (note_key(&op.note_key, note->name) < 0 || op.note_key.len > 500)) {
		sc_buf_free(&op.note_key);
		return sc_err_set(err, -ENAMETOOLONG, "cache note name too long");
	}
	int r = snap_meta_write(s->meta, put_write, &op, err);
	sc_buf_free(&op.note_key);
	return r < 0 ? sc_err_prefix(err, r, "store cache record '%s'", rec->key) : 0;
}

struct walk_ctx {
	snap_cache_walk_fn fn;
	void *arg;
};

static int
walk_visit(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct walk_ctx *c = arg;
	struct snap_cache_record rec;
	if (rec_decode(k->mv_data, k->mv_size, v, &rec) < 0)
		return 0; /* damaged: a lookup drops it */
	int r = c->fn(&rec, c->arg);
	snap_cache_record_clear(&rec);
	return r < 0 ? r : 0;
}

int
snap_cache_walk(struct snap_store *s, snap_cache_walk_fn fn, void *arg, struct sc_err *err)
{
	struct snap_txn t;
	int r = snap_txn_begin_read(s->meta, &t, err);
	if (r < 0)
		return r;
	struct walk_ctx c = {.fn = fn, .arg = arg};
	r = snap_txn_scan(&t, SNAP_DB_CACHE, "sha256:", 7, walk_visit, &c);
	snap_txn_end(&t);
	return r;
}

static int
note_key(struct sc_buf *b, const char *name)
{
	return sc_buf_printf(b, NOTE_PREFIX "%s", name);
}

int
snap_cache_note_get(struct snap_store *s, const char *name, char **ret, size_t *ret_len,
		    struct sc_err *err)
{
	struct sc_buf k = {0};
	if (note_key(&k, name) < 0)
		return sc_err_set(err, -ENOMEM, "out of memory");
	struct snap_txn t;
	int r = snap_txn_begin_read(s->meta, &t, err);
	MDB_val v;
	if (r >= 0)
		r = snap_txn_get(&t, SNAP_DB_CACHE, k.data, k.len, &v);
	if (r >= 0) {
		char *p = malloc(v.mv_size + 1);
		if (p) {
			memcpy(p, v.mv_data, v.mv_size);
			p[v.mv_size] = '\0';
			*ret = p;
			if (ret_len)
				*ret_len = v.mv_size;
		} else {
			r = sc_err_set(err, -ENOMEM, "out of memory");
		}
	}
	snap_txn_end(&t);
	sc_buf_free(&k);
	return r;
}

struct note_op {
	struct sc_buf key;
	const struct snap_cache_note *note;
};

static int
note_write(struct snap_txn *t, void *arg)
{
	struct note_op *op = arg;
	return snap_txn_put(t, SNAP_DB_CACHE, op->key.data, op->key.len, op->note->data,
			    op->note->len, 0);
}

int
snap_cache_note_put(struct snap_store *s, const struct snap_cache_note *note, struct sc_err *err)
{
	if (note->len > SNAP_CACHE_NOTE_MAX)
		return sc_err_set(err, -EFBIG, "cache note '%s' is over %u bytes", note->name,
				  SNAP_CACHE_NOTE_MAX);
	struct note_op op = {.note = note};
	if (note_key(&op.key, note->name) < 0 || op.key.len > 500) {
		sc_buf_free(&op.key);
		return sc_err_set(err, -ENAMETOOLONG, "cache note name too long");
	}
	int r = snap_meta_write(s->meta, note_write, &op, err);
	sc_buf_free(&op.key);
	return r;
}

#define FD_PREFIX     "fd:"
#define FD_PREFIX_LEN 3
#define FD_BATCH      2048

int
snap_cache_file_digest_get(struct snap_store *s, const uint8_t key[SNAP_FILE_KEY_LEN],
			   char ret[SC_DIGEST_STR_LEN + 1], struct sc_err *err)
{
	uint8_t k[FD_PREFIX_LEN + SNAP_FILE_KEY_LEN];
	memcpy(k, FD_PREFIX, FD_PREFIX_LEN);
	memcpy(k + FD_PREFIX_LEN, key, SNAP_FILE_KEY_LEN);
	struct snap_txn t;
	int r = snap_txn_begin_read(s->meta, &t, err);
	if (r < 0)
		return r;
	MDB_val v;
	r = snap_txn_get(&t, SNAP_DB_CACHE, k, sizeof(k), &v);
	if (r >= 0 && v.mv_size == SC_DIGEST_STR_LEN) {
		memcpy(ret, v.mv_data, SC_DIGEST_STR_LEN);
		ret[SC_DIGEST_STR_LEN] = '\0';
	} else if (r >= 0) {
		r = -ENOENT; /* damaged: forget it */
	}
	snap_txn_end(&t);
	return r;
}

struct fd_put {
	const struct snap_file_digest *v;
	size_t n;
};

/* Collects the keys of other entries for one device and inode. */
struct fd_stale {
	uint8_t (*keys)[FD_PREFIX_LEN + SNAP_FILE_KEY_LEN];
	size_t n;
	const uint8_t *keep;
};

static int
fd_stale_visit(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct fd_stale *st = arg;
	if (k->mv_size != FD_PREFIX_LEN + SNAP_FILE_KEY_LEN ||
	    memcmp(k->mv_data, st->keep, k->mv_size) == 0 || st->n == 8)
		return 0;
	memcpy(st->keys[st->n++], k->mv_data, k->mv_size);
	return 0;
}

static int
fd_put_write(struct snap_txn *t, void *arg)
{
	const struct fd_put *op = arg;
	int r = 0;
	for (size_t i = 0; i < op->n && r >= 0; i++) {
		uint8_t k[FD_PREFIX_LEN + SNAP_FILE_KEY_LEN];
		memcpy(k, FD_PREFIX, FD_PREFIX_LEN);
		memcpy(k + FD_PREFIX_LEN, op->v[i].key, SNAP_FILE_KEY_LEN);
		/* device and inode are the first 16 bytes: older states of the file go */
		uint8_t stale[8][FD_PREFIX_LEN + SNAP_FILE_KEY_LEN];
		struct fd_stale st = {.keys = stale, .keep = k};
		r = snap_txn_scan(t, SNAP_DB_CACHE, k, FD_PREFIX_LEN + 16, fd_stale_visit, &st);
		for (size_t j = 0; j < st.n && r >= 0; j++)
			r = snap_txn_del(t, SNAP_DB_CACHE, stale[j], sizeof(stale[j]));
		if (r >= 0)
			r = snap_txn_put(t, SNAP_DB_CACHE, k, sizeof(k), op->v[i].digest,
					 SC_DIGEST_STR_LEN, 0);
	}
	return r;
}

int
snap_cache_file_digests_put(struct snap_store *s, const struct snap_file_digest *v, size_t n,
			    struct sc_err *err)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(v[i].digest) != SC_DIGEST_STR_LEN)
			return sc_err_set(err, -EINVAL, "file digest '%s' is malformed",
					  v[i].digest);
	/* Batches bound the pages one transaction dirties (and holds in memory). */
	int r = 0;
	for (size_t i = 0; i < n && r >= 0; i += FD_BATCH) {
		struct fd_put op = {.v = v + i, .n = n - i < FD_BATCH ? n - i : FD_BATCH};
		r = snap_meta_write(s->meta, fd_put_write, &op, err);
	}
	return r < 0 ? sc_err_prefix(err, r, "remember file digests") : 0;
}
