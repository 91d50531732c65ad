/*
 * The LMDB metadata store: see meta.h for the schema and the transaction
 * contract.
 */
#include "meta.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "cleanup.h"
#include "log.h"
#include "store.h"
#include "util.h"

/* Less free space than this when a commit fails with EIO: the disk is full. */
#define META_FULL_BELOW (1u << 20)

#define META_MAP_INITIAL (256ull << 20)
#define META_MAP_MAX	 (64ull << 30)
#define META_MAX_READERS 1022

static const char *const db_names[_SNAP_DB_MAX] = {
	[SNAP_DB_META] = "meta",
	[SNAP_DB_SNAPSHOTS] = "snapshots",
	[SNAP_DB_SNAPSHOT_IDS] = "snapshot_ids",
	[SNAP_DB_SNAPSHOT_CHILDREN] = "snapshot_children",
	[SNAP_DB_LEASES] = "leases",
	[SNAP_DB_LEASE_REFS] = "lease_refs",
	[SNAP_DB_COUNTERS] = "counters",
	[SNAP_DB_BLOBS] = "blobs",
	[SNAP_DB_IMAGES] = "images",
	[SNAP_DB_CACHE] = "cache",
	[SNAP_DB_REFS] = "refs",
	[SNAP_DB_PINS] = "pins",
	[SNAP_DB_REFS_REV] = "refs_rev",
	[SNAP_DB_LEASE_OBJS] = "lease_objs",
};

struct snap_meta {
	MDB_env *env;
	MDB_dbi dbi[_SNAP_DB_MAX];
	char *path;
};

int
snap_meta_errno(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_KEYEXIST:
		return -EEXIST;
	case MDB_MAP_FULL:
	case MDB_TXN_FULL:
	case MDB_CURSOR_FULL:
	case MDB_PAGE_FULL:
		return -ENOSPC;
	case MDB_READERS_FULL:
	case MDB_TLS_FULL:
	case MDB_DBS_FULL:
		return -EMFILE;
	case MDB_MAP_RESIZED:
		return -EAGAIN;
	case MDB_BAD_VALSIZE:
		return -ENAMETOOLONG;
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
		return -EUCLEAN;
	case MDB_BAD_RSLOT:
	case MDB_BAD_TXN:
	case MDB_BAD_DBI:
	case MDB_INCOMPATIBLE:
		return -EINVAL;
	case MDB_PANIC:
		return -EIO;
	default:
		/* Everything else LMDB returns is an errno value. */
		return rc > 0 ? -rc : -EIO;
	}
}

static int
meta_txn_begin_raw(struct snap_meta *m, unsigned flags, MDB_txn **ret)
{
	for (int attempt = 0;; attempt++) {
		int rc = mdb_txn_begin(m->env, NULL, flags, ret);
		if (rc == MDB_MAP_RESIZED && attempt < 3) {
			/* Another process grew the map: adopt its size. */
			rc = mdb_env_set_mapsize(m->env, 0);
			if (rc == 0)
				continue;
		}
		return snap_meta_errno(rc);
	}
}

/*
 * Opens the table handles. The common case, a store already at our schema,
 * needs only a read transaction; handles opened in a transaction survive
 * only if it commits, so even the read transaction is committed.
 */
static int
meta_open_existing(struct snap_meta *m)
{
	MDB_txn *txn = NULL;
	int r = meta_txn_begin_raw(m, MDB_RDONLY, &txn);
	if (r < 0)
		return r;
	for (int i = 0; i < _SNAP_DB_MAX; i++) {
		int rc = mdb_dbi_open(txn, db_names[i], 0, &m->dbi[i]);
		if (rc) {
			mdb_txn_abort(txn);
			return snap_meta_errno(rc);
		}
	}
	MDB_val k = {.mv_size = 6, .mv_data = "schema"}, v;
	uint32_t version = 0;
	if (mdb_get(txn, m->dbi[SNAP_DB_META], &k, &v) == 0 && v.mv_size == 4)
		memcpy(&version, v.mv_data, 4);
	if (version != SNAP_META_SCHEMA) {
		mdb_txn_abort(txn);
		return -ESTALE;
	}
	int rc = mdb_txn_commit(txn);
	return snap_meta_errno(rc);
}

static int
meta_migrate(struct snap_meta *m, struct sc_err *err)
{
	if (meta_open_existing(m) == 0)
		return 0;

	MDB_txn *txn = NULL;
	int r = meta_txn_begin_raw(m, 0, &txn);
	if (r < 0)
		return sc_err_setsys(err, r, "cannot begin metadata transaction");

	for (int i = 0; i < _SNAP_DB_MAX; i++) {
		int rc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &m->dbi[i]);
		if (rc) {
			mdb_txn_abort(txn);
			return sc_err_setsys(err, snap_meta_errno(rc), "cannot open table '%s'",
					     db_names[i]);
		}
	}

	MDB_val k = {.mv_size = 6, .mv_data = "schema"}, v;
	uint32_t version = 0;
	int rc = mdb_get(txn, m->dbi[SNAP_DB_META], &k, &v);
	if (rc == 0 && v.mv_size == 4)
		memcpy(&version, v.mv_data, 4);
	else if (rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return sc_err_set(err, -EUCLEAN, "metadata schema record is damaged");
	}

	if (version > SNAP_META_SCHEMA) {
		mdb_txn_abort(txn);
		return sc_err_set(err, -EPROTO,
				  "metadata schema %" PRIu32
				  " is newer than this snapctl knows (%u); "
				  "upgrade snapctl",
				  version, SNAP_META_SCHEMA);
	}

	/*
	 * Migrations run in order, each from version N to N+1, in this one
	 * transaction. Version 0 is a new store: the tables above are its schema.
	 */
	while (version < SNAP_META_SCHEMA) {
		switch (version) {
		case 0:
			break;
		}
		version++;
	}
	v.mv_size = 4;
	v.mv_data = &version;
	rc = mdb_put(txn, m->dbi[SNAP_DB_META], &k, &v, 0);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	if (rc)
		return sc_err_setsys(err, snap_meta_errno(rc), "cannot write metadata schema");
	sc_debug("metadata schema now %u", SNAP_META_SCHEMA);
	return 0;
}

int
snap_meta_open(const char *dir, struct snap_meta **ret, struct sc_err *err)
{
	struct snap_meta *m = calloc(1, sizeof(*m));
	if (!m)
		return sc_err_set(err, -ENOMEM, "out of memory");
	m->path = strdup(dir);
	if (!m->path) {
		snap_meta_close(m);
		return sc_err_set(err, -ENOMEM, "out of memory");
	}

	int rc = mdb_env_create(&m->env);
	if (rc) {
		snap_meta_close(m);
		return sc_err_setsys(err, snap_meta_errno(rc),
				     "cannot create metadata environment");
	}
	uint64_t mapsize = META_MAP_INITIAL;
	const char *env_map = getenv("SNAPCTL_META_MAPSIZE"); /* tests exercise growth with it */
	if (env_map)
		sc_size_parse(env_map, &mapsize);
	mdb_env_set_maxdbs(m->env, _SNAP_DB_MAX + 4);
	mdb_env_set_maxreaders(m->env, META_MAX_READERS);
	mdb_env_set_mapsize(m->env, (size_t)mapsize);

	/*
	 * MDB_NOTLS: read transactions are not tied to threads (the builder
	 * uses a pool). MDB_NOMETASYNC: one sync per commit instead of two; a
	 * power failure can undo the newest transaction but never corrupts
	 * the store, and snap_meta_sync() makes it durable before anything
	 * irreversible depends on it (see meta.h).
	 */
	rc = mdb_env_open(m->env, dir, MDB_NOTLS | MDB_NOMETASYNC, 0600);
	if (rc) {
		int r = snap_meta_errno(rc);
		snap_meta_close(m);
		return sc_err_setsys(err, r, "cannot open metadata in '%s'", dir);
	}

	/* The file may be larger than our initial map if another process grew it. */
	mdb_env_set_mapsize(m->env, 0);

	int dead = 0;
	mdb_reader_check(m->env, &dead);
	if (dead)
		sc_debug("cleared %d reader slots left by dead processes", dead);

	int r = meta_migrate(m, err);
	if (r < 0) {
		snap_meta_close(m);
		return r;
	}
	*ret = m;
	return 0;
}

struct snap_meta *
snap_meta_close(struct snap_meta *m)
{
	if (!m)
		return NULL;
	if (m->env)
		mdb_env_close(m->env);
	free(m->path);
	free(m);
	return NULL;
}

int
snap_meta_sync(struct snap_meta *m)
{
	return snap_meta_errno(mdb_env_sync(m->env, 1));
}

uint64_t
snap_meta_file_size(struct snap_meta *m)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/data.mdb", m->path);
	struct stat st;
	if (stat(path, &st) < 0)
		return 0;
	return (uint64_t)st.st_blocks * 512;
}

int
snap_txn_begin_read(struct snap_meta *m, struct snap_txn *t, struct sc_err *err)
{
	*t = (struct snap_txn){.meta = m, .err = err};
	int r = meta_txn_begin_raw(m, MDB_RDONLY, &t->txn);
	if (r < 0) {
		t->txn = NULL;
		return sc_err_setsys(err, r, "cannot read metadata");
	}
	return 0;
}

void
snap_txn_end(struct snap_txn *t)
{
	if (!t->txn)
		return;
	mdb_txn_abort(t->txn);
	t->txn = NULL;
	if (t->write && t->undo)
		t->undo(t->undo_arg);
	t->undo = NULL;
}

void
snap_txn_on_abort(struct snap_txn *t, snap_txn_undo_fn fn, void *arg)
{
	if (!t->write)
		abort();
	t->undo = fn;
	t->undo_arg = arg;
}

static int
meta_grow(struct snap_meta *m, struct sc_err *err)
{
	MDB_envinfo info;
	int rc = mdb_env_info(m->env, &info);
	if (rc)
		return snap_meta_errno(rc);
	uint64_t size = (uint64_t)info.me_mapsize * 2;
	if (size > META_MAP_MAX)
		return sc_err_set(err, -ENOSPC,
				  "metadata is full (%" PRIu64 " MiB); run 'snapctl prune' to free "
				  "records",
				  (uint64_t)info.me_mapsize >> 20);
	rc = mdb_env_set_mapsize(m->env, (size_t)size);
	if (rc)
		return snap_meta_errno(rc);
	sc_debug("metadata map grown to %" PRIu64 " MiB", size >> 20);
	return 0;
}

/*
 * LMDB reports a short write as EIO: on a file system with (almost) no
 * room left, that is a full disk, not a broken one, and says so.
 */
static int
commit_error(struct snap_meta *m, int r, struct sc_err *err)
{
	struct statvfs vfs;
	if (r == -EIO && statvfs(m->path, &vfs) == 0 &&
	    (uint64_t)vfs.f_bavail * vfs.f_frsize < META_FULL_BELOW)
		r = -ENOSPC;
	if (r == -ENOSPC)
		return sc_err_set(err, r,
				  "cannot commit metadata: no space left on device under '%s'; "
				  "free some (snapctl prune, or snapctl gc)",
				  m->path);
	return sc_err_setsys(err, r, "cannot commit metadata");
}

int
snap_meta_write(struct snap_meta *m, snap_write_fn fn, void *arg, struct sc_err *err)
{
	for (;;) {
		struct snap_txn t = {.meta = m, .write = true, .err = err};
		int r = meta_txn_begin_raw(m, 0, &t.txn);
		if (r < 0)
			return sc_err_setsys(err, r, "cannot begin metadata write");

		r = fn(&t, arg);
		if (r >= 0 && t.error < 0)
			r = t.error;
		if (r < 0) {
			bool full = t.map_full;
			snap_txn_end(&t);
			if (!full)
				return r;
		} else {
			int rc = mdb_txn_commit(t.txn);
			t.txn = NULL;
			if (rc == 0)
				return r;
			if (t.undo)
				t.undo(t.undo_arg);
			r = snap_meta_errno(rc);
			if (rc != MDB_MAP_FULL)
				return commit_error(m, r, err);
		}
		/* The map is full: grow it and run the whole transaction again. */
		r = meta_grow(m, err);
		if (r < 0)
			return r;
	}
}

int
snap_txn_fail(struct snap_txn *t, int code)
{
	if (t->error == 0)
		t->error = code;
	return code;
}

static int
txn_rc(struct snap_txn *t, int rc, const char *what, enum snap_db db)
{
	int r = snap_meta_errno(rc);
	if (r == -ENOENT || r == -EEXIST)
		return r; /* answers, not failures */
	snap_txn_fail(t, r);
	if (rc == MDB_MAP_FULL)
		t->map_full = true;
	else
		sc_err_setsys(t->err, r, "metadata %s in '%s' failed", what, db_names[db]);
	return r;
}

int
snap_txn_get(struct snap_txn *t, enum snap_db db, const void *key, size_t klen, MDB_val *ret)
{
	if (t->error)
		return t->error;
	MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
	int rc = mdb_get(t->txn, t->meta->dbi[db], &k, ret);
	return rc ? txn_rc(t, rc, "read", db) : 0;
}

int
snap_txn_put(struct snap_txn *t, enum snap_db db, const void *key, size_t klen, const void *val,
	     size_t vlen, unsigned flags)
{
	if (t->error)
		return t->error;
	MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
	MDB_val v = {.mv_size = vlen, .mv_data = (void *)val};
	int rc = mdb_put(t->txn, t->meta->dbi[db], &k, &v, flags);
	return rc ? txn_rc(t, rc, "write", db) : 0;
}

int
snap_txn_del(struct snap_txn *t, enum snap_db db, const void *key, size_t klen)
{
	if (t->error)
		return t->error;
	MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
	int rc = mdb_del(t->txn, t->meta->dbi[db], &k, NULL);
	return rc ? txn_rc(t, rc, "delete", db) : 0;
}

int
snap_txn_scan(struct snap_txn *t, enum snap_db db, const void *prefix, size_t plen,
	      snap_txn_visit_fn fn, void *arg)
{
	if (t->error)
		return t->error;
	MDB_cursor *c = NULL;
	int rc = mdb_cursor_open(t->txn, t->meta->dbi[db], &c);
	if (rc)
		return txn_rc(t, rc, "scan", db);
	MDB_val k = {.mv_size = plen, .mv_data = (void *)prefix}, v;
	rc = mdb_cursor_get(c, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
	int r = 0;
	while (rc == 0) {
		if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0))
			break;
		r = fn(&k, &v, arg);
		if (r != 0)
			break;
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (r < 0)
		return r;
	if (rc && rc != MDB_NOTFOUND)
		return txn_rc(t, rc, "scan", db);
	return 0;
}

static int
stop_at_first(const MDB_val *k, const MDB_val *v, void *arg)
{
	*(bool *)arg = true;
	return 1;
}

int
snap_txn_has_prefix(struct snap_txn *t, enum snap_db db, const void *prefix, size_t plen)
{
	bool found = false;
	int r = snap_txn_scan(t, db, prefix, plen, stop_at_first, &found);
	return r < 0 ? r : found;
}

uint64_t
snap_txn_counter_get(struct snap_txn *t, const char *name)
{
	MDB_val v;
	if (snap_txn_get(t, SNAP_DB_COUNTERS, name, strlen(name), &v) < 0 || v.mv_size != 8)
		return 0;
	return sc_get_be64(v.mv_data);
}

int
snap_txn_counter_add(struct snap_txn *t, const char *name, int64_t delta)
{
	uint64_t v = snap_txn_counter_get(t, name);
	if (delta < 0 && (uint64_t)(-delta) > v) {
		sc_debug("counter %s would go below zero (%" PRIu64 " %+" PRId64 ")", name, v,
			 delta);
		v = 0;
	} else {
		v += (uint64_t)delta;
	}
	uint8_t buf[8];
	sc_put_be64(buf, v);
	return snap_txn_put(t, SNAP_DB_COUNTERS, name, strlen(name), buf, 8, 0);
}

int
snap_rec_put_u8(struct sc_buf *b, uint8_t v)
{
	return sc_buf_put(b, &v, 1);
}

int
snap_rec_put_u32(struct sc_buf *b, uint32_t v)
{
	uint8_t p[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	return sc_buf_put(b, p, 4);
}

int
snap_rec_put_u64(struct sc_buf *b, uint64_t v)
{
	uint8_t p[8];
	sc_put_be64(p, v);
	return sc_buf_put(b, p, 8);
}

int
snap_rec_put_str(struct sc_buf *b, const char *s)
{
	size_t len = s ? strlen(s) : 0;
	int r = snap_rec_put_u32(b, (uint32_t)len);
	return r < 0 ? r : sc_buf_put(b, s, len);
}

static const uint8_t *
rec_take(struct snap_rec_reader *r, size_t n)
{
	if (r->bad || r->left < n) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

uint8_t
snap_rec_get_u8(struct snap_rec_reader *r)
{
	const uint8_t *p = rec_take(r, 1);
	return p ? p[0] : 0;
}

uint32_t
snap_rec_get_u32(struct snap_rec_reader *r)
{
	const uint8_t *p = rec_take(r, 4);
	return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}

uint64_t
snap_rec_get_u64(struct snap_rec_reader *r)
{
	const uint8_t *p = rec_take(r, 8);
	return p ? sc_get_be64(p) : 0;
}

char *
snap_rec_get_str(struct snap_rec_reader *r)
{
	uint32_t len = snap_rec_get_u32(r);
	const uint8_t *p = rec_take(r, len);
	if (!p)
		return NULL;
	char *s = malloc((size_t)len + 1);
	if (!s) {
		r->bad = true;
		return NULL;
	}
	memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

void
snap_rec_get_digest(struct snap_rec_reader *r, char dst[SC_DIGEST_STR_LEN + 1])
{
	uint32_t len = snap_rec_get_u32(r);
	const uint8_t *p = len <= SC_DIGEST_STR_LEN ? rec_take(r, len) : NULL;
	if (!p) {
		r->bad = true;
		return;
	}
	memcpy(dst, p, len);
	dst[len] = '\0';
}

int
snap_rec_put_labels(struct sc_buf *b, const struct snap_label *labels, size_t n)
{
	int r = snap_rec_put_u32(b, (uint32_t)n);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		r = snap_rec_put_str(b, labels[i].key);
		if (r >= 0)
			r = snap_rec_put_str(b, labels[i].value);
	}
	return r;
}

void
snap_rec_get_labels(struct snap_rec_reader *r, struct snap_label **ret, size_t *ret_n)
{
	*ret = NULL;
	*ret_n = 0;
	uint32_t n = snap_rec_get_u32(r);
	if (r->bad || n == 0)
		return;
	if (n > SNAP_LABELS_MAX) {
		r->bad = true;
		return;
	}
	struct snap_label *labels = calloc(n, sizeof(*labels));
	if (!labels) {
		r->bad = true;
		return;
	}
	size_t got = 0;
	while (got < n && !r->bad) {
		labels[got].key = snap_rec_get_str(r);
		labels[got].value = snap_rec_get_str(r);
		got++;
		if (!labels[got - 1].key || !labels[got - 1].value)
			r->bad = true;
	}
	*ret = labels;
	*ret_n = got;
}

void
snap_labels_free(struct snap_label *labels, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(labels[i].key);
		free(labels[i].value);
	}
	free(labels);
}
