/*
 * The images table: name -> record (see meta.h), and the transaction that
 * writes a record together with the edges the collector follows.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "image-internal.h"
#include "refs.h"
#include "store-internal.h"
#include "util.h"

#define IMAGE_RECORD_V1 1

void
snap_image_info_clear(struct snap_image_info *info)
{
	if (!info)
		return;
	free(info->name);
	free(info->target_media_type);
	free(info->platform);
	free(info->snapshot);
	*info = (struct snap_image_info){0};
}

int
snap_image_name_validate(const char *name, struct sc_err *err)
{
	if (!name || !*name)
		return sc_err_set(err, -EINVAL, "image name is empty");
	if (strlen(name) > SNAP_IMAGE_NAME_MAX)
		return sc_err_set(err, -EINVAL, "image name '%.40s...' is longer than %d bytes",
				  name, SNAP_IMAGE_NAME_MAX);
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return sc_err_set(err, -EINVAL,
					  "image name '%s' holds a space or control character",
					  name);
	return 0;
}

static int
rec_encode(const struct snap_image_info *info, struct sc_buf *b)
{
	int r = 0;
	r |= snap_rec_put_u8(b, IMAGE_RECORD_V1);
	r |= snap_rec_put_str(b, info->target);
	r |= snap_rec_put_str(b, info->target_media_type);
	r |= snap_rec_put_str(b, info->manifest);
	r |= snap_rec_put_str(b, info->config);
	r |= snap_rec_put_str(b, info->platform);
	r |= snap_rec_put_str(b, info->snapshot);
	r |= snap_rec_put_u64(b, info->created);
	r |= snap_rec_put_u64(b, info->updated);
	r |= snap_rec_put_u64(b, info->size);
	r |= snap_rec_put_u32(b, info->nlayers);
	return r < 0 ? -ENOMEM : 0;
}

static int
rec_decode(const void *key, size_t klen, const MDB_val *v, struct snap_image_info *ret)
{
	struct snap_rec_reader rd = {.p = v->mv_data, .left = v->mv_size};
	struct snap_image_info info = {0};
	if (snap_rec_get_u8(&rd) != IMAGE_RECORD_V1)
		return -EUCLEAN;
	info.name = strndup(key, klen);
	snap_rec_get_digest(&rd, info.target);
	info.target_media_type = snap_rec_get_str(&rd);
	snap_rec_get_digest(&rd, info.manifest);
	snap_rec_get_digest(&rd, info.config);
	info.platform = snap_rec_get_str(&rd);
	info.snapshot = snap_rec_get_str(&rd);
	info.created = snap_rec_get_u64(&rd);
	info.updated = snap_rec_get_u64(&rd);
	info.size = snap_rec_get_u64(&rd);
	info.nlayers = snap_rec_get_u32(&rd);
	if (rd.bad || !info.name || !info.target_media_type || !info.platform || !info.snapshot) {
		snap_image_info_clear(&info);
		return -EUCLEAN;
	}
	*ret = info;
	return 0;
}

static int
rec_get(struct snap_txn *t, const char *name, struct snap_image_info *ret)
{
	MDB_val v;
	int r = snap_txn_get(t, SNAP_DB_IMAGES, name, strlen(name), &v);
	if (r < 0)
		return r;
	r = rec_decode(name, strlen(name), &v, ret);
	if (r < 0) {
		sc_err_set(t->err, r, "image '%s': record is damaged; run 'snapctl check'", name);
		return snap_txn_fail(t, r);
	}
	return 0;
}

static int
rec_put(struct snap_txn *t, const struct snap_image_info *info)
{
	struct sc_buf b = {0};
	int r = rec_encode(info, &b);
	if (r >= 0)
		r = snap_txn_put(t, SNAP_DB_IMAGES, info->name, strlen(info->name), b.data, b.len,
				 0);
	else
		snap_txn_fail(t, r);
	sc_buf_free(&b);
	return r;
}

static int
obj(char *buf, enum snap_obj_type type, const char *name)
{
	return snap_obj_name(buf, type, name);
}

/* Points image:NAME at blob:target, replacing the edge it had. */
static int
name_edge(struct snap_txn *t, const char *name, const char *target)
{
	char from[SNAP_OBJ_NAME_MAX + 1], to[SNAP_OBJ_NAME_MAX + 1];
	int r = obj(from, SNAP_OBJ_IMAGE, name);
	if (r < 0)
		return snap_txn_fail(t, r);
	r = snap_ref_del_from_txn(t, from);
	if (r < 0 || !target)
		return r;
	obj(to, SNAP_OBJ_BLOB, target);
	return snap_ref_add_txn(t, from, to);
}

static int
commit_write(struct snap_txn *t, void *arg)
{
	struct img_commit *c = arg;
	struct snap_image_info old = {0};
	struct snap_image_info info = c->info;
	int r = rec_get(t, info.name, &old);
	c->moved_from[0] = '\0';
	if (r == 0) {
		info.created = old.created;
		if (strcmp(old.target, info.target) != 0)
			memcpy(c->moved_from, old.target, sizeof(c->moved_from));
		snap_image_info_clear(&old);
	} else if (r != -ENOENT) {
		return r;
	}
	r = rec_put(t, &info);
	if (r >= 0)
		r = name_edge(t, info.name, info.target);
	char a[SNAP_OBJ_NAME_MAX + 1], b[SNAP_OBJ_NAME_MAX + 1];
	if (r >= 0 && c->index) {
		obj(a, SNAP_OBJ_BLOB, c->index);
		obj(b, SNAP_OBJ_BLOB, info.manifest);
		r = snap_ref_add_txn(t, a, b);
	}
	obj(a, SNAP_OBJ_BLOB, info.manifest);
	if (r >= 0) {
		obj(b, SNAP_OBJ_BLOB, info.config);
		r = snap_ref_add_txn(t, a, b);
	}
	for (size_t i = 0; i < c->nlayers && r >= 0; i++) {
		obj(b, SNAP_OBJ_BLOB, c->layers[i]);
		r = snap_ref_add_txn(t, a, b);
		if (r >= 0 && c->snapshots[i]) {
			char l[SNAP_OBJ_NAME_MAX + 1], sn[SNAP_OBJ_NAME_MAX + 1];
			obj(l, SNAP_OBJ_BLOB, c->layers[i]);
			if (obj(sn, SNAP_OBJ_SNAPSHOT, c->snapshots[i]) < 0)
				return snap_txn_fail(t, -ENAMETOOLONG);
			r = snap_ref_add_txn(t, l, sn);
		}
	}
	return r;
}

int
img_commit(struct snap_store *s, struct img_commit *c, struct sc_err *err)
{
	return snap_meta_write(s->meta, commit_write, c, err);
}

int
snap_image_get(struct snap_store *s, const char *name, struct snap_image_info *ret,
	       struct sc_err *err)
{
	int r = snap_image_name_validate(name, err);
	if (r < 0)
		return r;
	struct snap_txn t;
	r = snap_txn_begin_read(s->meta, &t, err);
	if (r < 0)
		return r;
	r = rec_get(&t, name, ret);
	snap_txn_end(&t);
	if (r == -ENOENT)
		return sc_err_set(err, r, "image '%s' does not exist; see 'snapctl image ls'",
				  name);
	return r;
}

struct walk_state {
	snap_image_walk_fn fn;
	void *arg;
	int rc;
};

static int
walk_visit(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct walk_state *st = arg;
	struct snap_image_info info = {0};
	if (rec_decode(k->mv_data, k->mv_size, v, &info) < 0)
		return 0; /* a damaged record is for check to report; list the rest */
	int r = st->fn(&info, st->arg);
	snap_image_info_clear(&info);
	if (r < 0) {
		st->rc = r;
		return 1;
	}
	return 0;
}

int
snap_image_walk(struct snap_store *s, snap_image_walk_fn fn, void *arg, struct sc_err *err)
{
	struct snap_txn t;
	int r = snap_txn_begin_read(s->meta, &t, err);
	if (r < 0)
		return r;
	struct walk_state st = {.fn = fn, .arg = arg};
	r = snap_txn_scan(&t, SNAP_DB_IMAGES, NULL, 0, walk_visit, &st);
	snap_txn_end(&t);
	return r < 0 ? r : st.rc;
}

struct tag_op {
	const char *src, *dst;
};

static int
tag_write(struct snap_txn *t, void *arg)
{
	struct tag_op *op = arg;
	struct snap_image_info info = {0};
	int r = rec_get(t, op->src, &info);
	if (r == -ENOENT)
		return snap_txn_fail(t,
				     sc_err_set(t->err, r, "image '%s' does not exist", op->src));
	if (r < 0)
		return r;
	free(info.name);
	info.name = strdup(op->dst);
	if (!info.name) {
		snap_image_info_clear(&info);
		return snap_txn_fail(t, -ENOMEM);
	}
	info.created = info.updated = sc_now_ns();
	r = rec_put(t, &info);
	if (r >= 0)
		r = name_edge(t, info.name, info.target);
	snap_image_info_clear(&info);
	return r;
}

int
snap_image_tag(struct snap_store *s, const char *src, const char *dst, struct sc_err *err)
{
	int r = snap_image_name_validate(src, err);
	if (r >= 0)
		r = snap_image_name_validate(dst, err);
	if (r < 0)
		return r;
	struct tag_op op = {src, dst};
	r = snap_meta_write(s->meta, tag_write, &op, err);
	return r < 0 ? sc_err_prefix(err, r, "tag '%s'", dst) : 0;
}

static int
remove_write(struct snap_txn *t, void *arg)
{
	const char *name = arg;
	int r = snap_txn_del(t, SNAP_DB_IMAGES, name, strlen(name));
	if (r == -ENOENT)
		return snap_txn_fail(
			t, sc_err_set(t->err, r,
				      "image '%s' does not exist; see 'snapctl image ls'", name));
	if (r < 0)
		return r;
	return name_edge(t, name, NULL);
}

int
snap_image_remove(struct snap_store *s, const char *name, struct sc_err *err)
{
	int r = snap_image_name_validate(name, err);
	if (r < 0)
		return r;
	return snap_meta_write(s->meta, remove_write, (void *)name, err);
}
