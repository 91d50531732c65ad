/*
 * Edges and pins: see refs.h. An edge is the key "FROM\0TO" in the refs
 * table, so the objects one object points to are a prefix scan; a pin is
 * the key "TYPE:NAME" in the pins table.
 */
#include "refs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "store-internal.h"
#include "util.h"

#define REF_KEY_MAX 511 /* LMDB's key size */

static const char *const obj_types[_SNAP_OBJ_TYPE_MAX] = {
	[SNAP_OBJ_SNAPSHOT] = "snapshot",
	[SNAP_OBJ_BLOB] = "blob",
	[SNAP_OBJ_IMAGE] = "image",
	[SNAP_OBJ_CACHE] = "cache",
};

const char *
snap_obj_type_to_string(enum snap_obj_type t)
{
	return t < _SNAP_OBJ_TYPE_MAX ? obj_types[t] : "unknown";
}

int
snap_obj_type_from_string(const char *s)
{
	for (int i = 0; i < _SNAP_OBJ_TYPE_MAX; i++)
		if (strcmp(s, obj_types[i]) == 0)
			return i;
	return -EINVAL;
}

int
snap_obj_name(char *buf, enum snap_obj_type type, const char *name)
{
	int n = snprintf(buf, SNAP_OBJ_NAME_MAX + 1, "%s:%s", snap_obj_type_to_string(type), name);
	return n < 0 || n > SNAP_OBJ_NAME_MAX ? -ENAMETOOLONG : 0;
}

/* Checks "TYPE:NAME" with a known type and a non-empty name. */
static int
obj_validate(const char *obj, struct sc_err *err)
{
	const char *colon = obj ? strchr(obj, ':') : NULL;
	if (!colon || !colon[1])
		return sc_err_set(err, -EINVAL, "object '%s' is not TYPE:NAME", obj ? obj : "");
	char type[16];
	size_t tlen = (size_t)(colon - obj);
	if (tlen >= sizeof(type))
		return sc_err_set(err, -EINVAL, "object '%.40s' has an unknown type", obj);
	memcpy(type, obj, tlen);
	type[tlen] = '\0';
	if (snap_obj_type_from_string(type) < 0)
		return sc_err_set(err, -EINVAL,
				  "object '%.80s' has an unknown type; use snapshot, blob, image "
				  "or cache",
				  obj);
	if (strlen(obj) > SNAP_OBJ_NAME_MAX)
		return sc_err_set(err, -ENAMETOOLONG, "object name is longer than %d bytes",
				  SNAP_OBJ_NAME_MAX);
	return 0;
}

static int
ref_key(struct sc_buf *b, const char *from, const char *to)
{
	size_t flen = strlen(from), tlen = to ? strlen(to) : 0;
	if (flen + 1 + tlen > REF_KEY_MAX)
		return -ENAMETOOLONG;
	int r = sc_buf_put(b, from, flen + 1);
	return r < 0 || !to ? r : sc_buf_put(b, to, tlen);
}

/* Writes or deletes the edge and its reverse entry together. */
static int
ref_change_txn(struct snap_txn *t, const char *from, const char *to, bool add)
{
	struct sc_buf k = {0}, rk = {0};
	int r = ref_key(&k, from, to);
	if (r >= 0)
		r = ref_key(&rk, to, from);
	if (r == -ENAMETOOLONG)
		r = sc_err_set(t->err, r, "edge '%.60s' -> '%.60s' is too long to record", from,
			       to);
	if (r < 0) {
		snap_txn_fail(t, r);
	} else if (add) {
		r = snap_txn_put(t, SNAP_DB_REFS, k.data, k.len, "", 0, 0);
		if (r >= 0)
			r = snap_txn_put(t, SNAP_DB_REFS_REV, rk.data, rk.len, "", 0, 0);
	} else {
		r = snap_txn_del(t, SNAP_DB_REFS, k.data, k.len);
		if (r >= 0) {
			r = snap_txn_del(t, SNAP_DB_REFS_REV, rk.data, rk.len);
			if (r == -ENOENT)
				r = 0; /* tolerate an index written before the reverse table */
		}
	}
	sc_buf_free(&k);
	sc_buf_free(&rk);
	return r;
}

int
snap_ref_add_txn(struct snap_txn *t, const char *from, const char *to)
{
	return ref_change_txn(t, from, to, true);
}

int
snap_ref_del_txn(struct snap_txn *t, const char *from, const char *to)
{
	return ref_change_txn(t, from, to, false);
}

struct ref_visit {
	size_t plen;
	snap_ref_fn fn;
	void *arg;
	char **names; /* collect mode when fn is NULL */
	size_t n, cap;
};

static int
ref_visit(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct ref_visit *rv = arg;
	size_t len = k->mv_size - rv->plen;
	char *to = strndup((const char *)k->mv_data + rv->plen, len);
	if (!to)
		return -ENOMEM;
	if (rv->n == rv->cap) {
		size_t cap = rv->cap ? rv->cap * 2 : 8;
		char **p = realloc(rv->names, cap * sizeof(*p));
		if (!p) {
			free(to);
			return -ENOMEM;
		}
		rv->names = p;
		rv->cap = cap;
	}
	rv->names[rv->n++] = to;
	return 0;
}

static int
ref_scan_txn(struct snap_txn *t, enum snap_db db, const char *obj, char ***ret, size_t *ret_n)
{
	struct sc_buf prefix = {0};
	int r = ref_key(&prefix, obj, NULL);
	struct ref_visit rv = {.plen = prefix.len};
	if (r >= 0)
		r = snap_txn_scan(t, db, prefix.data, prefix.len, ref_visit, &rv);
	sc_buf_free(&prefix);
	if (r < 0) {
		for (size_t i = 0; i < rv.n; i++)
			free(rv.names[i]);
		free(rv.names);
		return r;
	}
	*ret = rv.names;
	*ret_n = rv.n;
	return 0;
}

int
snap_ref_targets_txn(struct snap_txn *t, const char *from, char ***ret, size_t *ret_n)
{
	return ref_scan_txn(t, SNAP_DB_REFS, from, ret, ret_n);
}

int
snap_ref_sources_txn(struct snap_txn *t, const char *to, char ***ret, size_t *ret_n)
{
	return ref_scan_txn(t, SNAP_DB_REFS_REV, to, ret, ret_n);
}

int
snap_ref_del_from_txn(struct snap_txn *t, const char *from)
{
	char **to = NULL;
	size_t n = 0;
	int r = snap_ref_targets_txn(t, from, &to, &n);
	for (size_t i = 0; i < n; i++) {
		if (r >= 0)
			r = snap_ref_del_txn(t, from, to[i]);
		free(to[i]);
	}
	free(to);
	return r;
}

struct ref_op {
	const char *from, *to;
	bool add;
};

static int
ref_write(struct snap_txn *t, void *arg)
{
	struct ref_op *op = arg;
	if (op->add)
		return snap_ref_add_txn(t, op->from, op->to);
	int r = snap_ref_del_txn(t, op->from, op->to);
	if (r == -ENOENT)
		sc_err_set(t->err, r, "no edge '%s' -> '%s'", op->from, op->to);
	return r;
}

static int
ref_change(struct snap_store *s, const char *from, const char *to, bool add, struct sc_err *err)
{
	int r = obj_validate(from, err);
	if (r >= 0)
		r = obj_validate(to, err);
	if (r < 0)
		return r;
	struct ref_op op = {.from = from, .to = to, .add = add};
	return snap_meta_write(s->meta, ref_write, &op, err);
}

int
snap_ref_add(struct snap_store *s, const char *from, const char *to, struct sc_err *err)
{
	return ref_change(s, from, to, true, err);
}

int
snap_ref_remove(struct snap_store *s, const char *from, const char *to, struct sc_err *err)
{
	return ref_change(s, from, to, false, err);
}

int
snap_ref_walk(struct snap_store *s, const char *from, snap_ref_fn fn, void *arg, struct sc_err *err)
{
	int r = obj_validate(from, err);
	if (r < 0)
		return r;
	struct snap_txn t;
	r = snap_txn_begin_read(s->meta, &t, err);
	if (r < 0)
		return r;
	char **to = NULL;
	size_t n = 0;
	r = snap_ref_targets_txn(&t, from, &to, &n);
	snap_txn_end(&t);
	for (size_t i = 0; i < n; i++) {
		if (r >= 0)
			r = fn(to[i], arg);
		free(to[i]);
	}
	free(to);
	return r;
}

struct pin_op {
	const char *obj;
	bool pinned;
};

static int
pin_write(struct snap_txn *t, void *arg)
{
	struct pin_op *op = arg;
	if (op->pinned)
		return snap_txn_put(t, SNAP_DB_PINS, op->obj, strlen(op->obj), "", 0, 0);
	int r = snap_txn_del(t, SNAP_DB_PINS, op->obj, strlen(op->obj));
	if (r == -ENOENT)
		sc_err_set(t->err, r, "'%s' is not pinned", op->obj);
	return r;
}

int
snap_pin(struct snap_store *s, const char *obj, bool pinned, struct sc_err *err)
{
	int r = obj_validate(obj, err);
	if (r < 0)
		return r;
	struct pin_op op = {.obj = obj, .pinned = pinned};
	return snap_meta_write(s->meta, pin_write, &op, err);
}

bool
snap_is_pinned_txn(struct snap_txn *t, const char *obj)
{
	MDB_val v;
	return snap_txn_get(t, SNAP_DB_PINS, obj, strlen(obj), &v) == 0;
}

bool
snap_is_pinned(struct snap_store *s, const char *obj)
{
	struct snap_txn t;
	if (snap_txn_begin_read(s->meta, &t, NULL) < 0)
		return false;
	bool pinned = snap_is_pinned_txn(&t, obj);
	snap_txn_end(&t);
	return pinned;
}

void
snap_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int
snap_obj_resolve(struct snap_store *s, const char *name, char *ret, struct sc_err *err)
{
	if (!name || !*name)
		return sc_err_set(err, -EINVAL, "name is empty");
	struct snap_txn t;
	int r = snap_txn_begin_read(s->meta, &t, err);
	if (r < 0)
		return r;
	static const struct {
		enum snap_obj_type type;
		enum snap_db db;
	} lookups[] = {
		{SNAP_OBJ_BLOB, SNAP_DB_BLOBS},
		{SNAP_OBJ_SNAPSHOT, SNAP_DB_SNAPSHOTS},
		{SNAP_OBJ_IMAGE, SNAP_DB_IMAGES},
	};
	r = -ENOENT;
	/* TYPE:NAME given explicitly */
	const char *colon = strchr(name, ':');
	for (size_t i = 0; colon && r == -ENOENT && i < ARRAY_SIZE(lookups); i++) {
		const char *tname = snap_obj_type_to_string(lookups[i].type);
		size_t tlen = strlen(tname);
		MDB_val v;
		if ((size_t)(colon - name) == tlen && strncmp(name, tname, tlen) == 0 &&
		    snap_txn_get(&t, lookups[i].db, colon + 1, strlen(colon + 1), &v) == 0)
			r = snap_obj_name(ret, lookups[i].type, colon + 1);
	}
	for (size_t i = 0; r == -ENOENT && i < ARRAY_SIZE(lookups); i++) {
		MDB_val v;
		if (snap_txn_get(&t, lookups[i].db, name, strlen(name), &v) == 0)
			r = snap_obj_name(ret, lookups[i].type, name);
	}
	snap_txn_end(&t);
	if (r == -ENOENT)
		return sc_err_set(err, r, "no snapshot, image or blob is named '%s'", name);
	if (r < 0)
		return sc_err_set(err, r, "name '%.60s' is too long", name);
	return 0;
}
