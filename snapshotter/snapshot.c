/*
 * The snapshot lifecycle. States and the functions that move between them:
 *
 *            snap_snapshot_prepare(kind=ACTIVE)          snap_snapshot_commit()
 *   (none) ------------------------------------> ACTIVE --------------------> COMMITTED
 *      |     snap_snapshot_prepare(kind=VIEW)                                     |
 *      +-------------------------------------> VIEW                               |
 *   ACTIVE, VIEW, COMMITTED (without children) --- snap_snapshot_remove() ---> (none)
 *
 * Each change that touches disk is two steps a crash cannot tear (store.h,
 * invariants 1-3): a new folder is built under tmp/ by this process, then one
 * write transaction adds the records and renames the folder into
 * snapshots/ID as its last act (renaming it back if the commit fails); a
 * removal deletes the records first, then renames the folder into trash/ and
 * deletes it outside any transaction. Slow work (copying a parent, measuring
 * a size) always happens before the write transaction, never inside it.
 */
#include "store-internal.h"

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
#include "util.h"

#define SNAP_RECORD_V1 1
#define SNAP_CHAIN_MAX 100000 /* guards a walk up parents against a damaged store */

static const char *const kind_names[_SNAP_KIND_MAX] = {
	[SNAP_KIND_ACTIVE] = "active",
	[SNAP_KIND_VIEW] = "view",
	[SNAP_KIND_COMMITTED] = "committed",
};

static const char *const kind_counters[_SNAP_KIND_MAX] = {
	[SNAP_KIND_ACTIVE] = "snapshots.active",
	[SNAP_KIND_VIEW] = "snapshots.view",
	[SNAP_KIND_COMMITTED] = "snapshots.committed",
};

#define COUNTER_COMMITTED_BYTES	 "snapshots.committed.bytes"
#define COUNTER_COMMITTED_INODES "snapshots.committed.inodes"

const char *
snap_kind_to_string(enum snap_kind k)
{
	return k < _SNAP_KIND_MAX ? kind_names[k] : "unknown";
}

int
snap_kind_from_string(const char *s)
{
	for (int i = 0; i < _SNAP_KIND_MAX; i++)
		if (strcmp(s, kind_names[i]) == 0)
			return i;
	return -EINVAL;
}

void
snap_info_clear(struct snap_info *info)
{
	if (!info)
		return;
	free(info->key);
	free(info->parent);
	snap_labels_free(info->labels, info->nlabels);
	*info = (struct snap_info){0};
}

bool
snap_owner_gone(const struct snap_label *labels, size_t nlabels)
{
	for (size_t i = 0; i < nlabels; i++) {
		if (strcmp(labels[i].key, SNAP_OWNER_LABEL) != 0 || !labels[i].value)
			continue;
		char *end;
		errno = 0;
		long pid = strtol(labels[i].value, &end, 10);
		if (errno || *end != '.' || pid <= 0)
			return false; /* not ours to judge */
		unsigned long long start = strtoull(end + 1, &end, 10);
		if (errno || *end)
			return false;
		return !sc_proc_alive((pid_t)pid, start);
	}
	return false;
}

const char *
snap_info_label(const struct snap_info *info, const char *key)
{
	for (size_t i = 0; i < info->nlabels; i++)
		if (strcmp(info->labels[i].key, key) == 0)
			return info->labels[i].value;
	return NULL;
}

int
snap_key_validate(const char *key, struct sc_err *err)
{
	if (!key || !*key)
		return sc_err_set(err, -EINVAL, "snapshot key is empty; give a name");
	size_t len = strlen(key);
	if (len > SNAP_KEY_MAX)
		return sc_err_set(err, -EINVAL, "snapshot key of %zu bytes is longer than %d bytes",
				  len, SNAP_KEY_MAX);
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return sc_err_set(err, -EINVAL,
					  "snapshot key has a control character (0x%02x at byte "
					  "%td); use printable characters",
					  *p, (const char *)p - key);
	return 0;
}

static int
labels_validate(const struct snap_label *labels, size_t n, struct sc_err *err)
{
	for (size_t i = 0; i < n; i++) {
		if (!labels[i].key || !*labels[i].key)
			return sc_err_set(err, -EINVAL, "label with an empty key");
		if (strlen(labels[i].key) > SNAP_LABEL_MAX ||
		    (labels[i].value && strlen(labels[i].value) > SNAP_LABEL_MAX))
			return sc_err_set(err, -E2BIG, "label '%.40s' is longer than %d bytes",
					  labels[i].key, SNAP_LABEL_MAX);
	}
	return 0;
}

/* Record encoding, version 1: see meta.h for the table. */
static int
rec_encode(const struct snap_info *info, struct sc_buf *b)
{
	int r = 0;
	r |= snap_rec_put_u8(b, SNAP_RECORD_V1);
	r |= snap_rec_put_u8(b, (uint8_t)info->kind);
	r |= snap_rec_put_u64(b, info->id);
	r |= snap_rec_put_str(b, info->parent);
	r |= snap_rec_put_u64(b, info->created);
	r |= snap_rec_put_u64(b, info->updated);
	r |= snap_rec_put_u64(b, info->last_used);
	r |= snap_rec_put_u64(b, info->size);
	r |= snap_rec_put_u64(b, info->inodes);
	r |= snap_rec_put_u64(b, info->quota);
	r |= snap_rec_put_labels(b, info->labels, info->nlabels);
	return r < 0 ? -ENOMEM : 0;
}

int
snap_snapshot_decode(const void *key, size_t klen, const MDB_val *v, struct snap_info *ret)
{
	struct snap_rec_reader rd = {.p = v->mv_data, .left = v->mv_size};
	struct snap_info info = {0};
	if (snap_rec_get_u8(&rd) != SNAP_RECORD_V1)
		return -EUCLEAN;
	info.kind = snap_rec_get_u8(&rd);
	info.id = snap_rec_get_u64(&rd);
	info.parent = snap_rec_get_str(&rd);
	info.created = snap_rec_get_u64(&rd);
	info.updated = snap_rec_get_u64(&rd);
	info.last_used = snap_rec_get_u64(&rd);
	info.size = snap_rec_get_u64(&rd);
	info.inodes = snap_rec_get_u64(&rd);
	info.quota = snap_rec_get_u64(&rd);
	snap_rec_get_labels(&rd, &info.labels, &info.nlabels);
	info.key = strndup(key, klen);
	if (rd.bad || !info.key || !info.parent || info.kind >= _SNAP_KIND_MAX) {
		snap_info_clear(&info);
		return -EUCLEAN;
	}
	if (!*info.parent) {
		free(info.parent);
		info.parent = NULL;
	}
	*ret = info;
	return 0;
}

int
snap_snapshot_get_txn(struct snap_txn *t, const char *key, struct snap_info *ret)
{
	MDB_val v;
	int r = snap_txn_get(t, SNAP_DB_SNAPSHOTS, key, strlen(key), &v);
	if (r < 0)
		return r;
	r = snap_snapshot_decode(key, strlen(key), &v, ret);
	if (r < 0) {
		sc_err_set(t->err, r, "snapshot '%s': record is damaged; run 'snapctl check'", key);
		return snap_txn_fail(t, r);
	}
	return 0;
}

static int
rec_put(struct snap_txn *t, const struct snap_info *info)
{
	struct sc_buf b = {0};
	int r = rec_encode(info, &b);
	if (r < 0) {
		sc_buf_free(&b);
		return snap_txn_fail(t, r);
	}
	r = snap_txn_put(t, SNAP_DB_SNAPSHOTS, info->key, strlen(info->key), b.data, b.len, 0);
	sc_buf_free(&b);
	return r;
}

static void
child_key(uint8_t k[16], uint64_t parent_id, uint64_t child_id)
{
	sc_put_be64(k, parent_id);
	sc_put_be64(k + 8, child_id);
}

void
snap_snapshot_rel(char *buf, size_t len, uint64_t id)
{
	snprintf(buf, len, "snapshots/%" PRIu64, id);
}

static void
snapshot_abs(const struct snap_store *s, char *buf, size_t len, uint64_t id)
{
	snprintf(buf, len, "%s/snapshots/%" PRIu64, s->root, id);
}

/* The folders of parent and its ancestors, nearest first. */
struct chain {
	char **dirs;
	size_t n;
};

static void
chain_clear(struct chain *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->dirs[i]);
	free(c->dirs);
	*c = (struct chain){0};
}

static int
chain_load(struct snap_store *s, struct snap_txn *t, const char *parent, struct chain *ret)
{
	struct chain c = {0};
	size_t cap = 0;
	_cleanup_free_ char *next = parent ? strdup(parent) : NULL;
	if (parent && !next)
		return -ENOMEM;
	while (next) {
		struct snap_info info;
		int r = snap_snapshot_get_txn(t, next, &info);
		if (r < 0) {
			if (r == -ENOENT)
				sc_err_set(t->err, r, "parent snapshot '%s' does not exist", next);
			chain_clear(&c);
			return r;
		}
		if (c.n == cap) {
			cap = cap ? cap * 2 : 8;
			char **p = realloc(c.dirs, cap * sizeof(*p));
			if (!p) {
				snap_info_clear(&info);
				chain_clear(&c);
				return -ENOMEM;
			}
			c.dirs = p;
		}
		char dir[PATH_MAX];
		snapshot_abs(s, dir, sizeof(dir), info.id);
		c.dirs[c.n] = strdup(dir);
		if (!c.dirs[c.n]) {
			snap_info_clear(&info);
			chain_clear(&c);
			return -ENOMEM;
		}
		c.n++;
		free(next);
		next = TAKE_PTR(info.parent);
		snap_info_clear(&info);
		if (c.n > SNAP_CHAIN_MAX) {
			chain_clear(&c);
			return sc_err_set(t->err, -ELOOP,
					  "snapshot '%s' has a parent loop; run 'snapctl check'",
					  parent);
		}
	}
	*ret = c;
	return 0;
}

/* This process's SNAP_OWNER_LABEL value. */
static void
owner_value(const struct snap_store *s, char buf[48])
{
	snprintf(buf, 48, "%d.%" PRIu64, (int)s->pid, s->starttime);
}

/* Is info this process's own work in progress? */
static bool
owned_by_us(const struct snap_store *s, const struct snap_info *info)
{
	char me[48];
	owner_value(s, me);
	for (size_t i = 0; i < info->nlabels; i++)
		if (strcmp(info->labels[i].key, SNAP_OWNER_LABEL) == 0)
			return strcmp(info->labels[i].value, me) == 0;
	return false;
}

/*
 * Checks that prepare can go ahead: key free, parent committed (or, with
 * in_progress, this process's own active snapshot).
 */
static int
prepare_check(struct snap_store *s, struct snap_txn *t, const char *key, const char *parent,
	      bool in_progress, struct snap_info *ret_parent)
{
	MDB_val v;
	int r = snap_txn_get(t, SNAP_DB_SNAPSHOTS, key, strlen(key), &v);
	if (r == 0)
		return sc_err_set(t->err, -EEXIST, "snapshot '%s' already exists", key);
	if (r != -ENOENT)
		return r;
	if (!parent)
		return 0;
	r = snap_snapshot_get_txn(t, parent, ret_parent);
	if (r == -ENOENT)
		return sc_err_set(t->err, r, "parent snapshot '%s' does not exist", parent);
	if (r < 0)
		return r;
	bool ours =
		in_progress && ret_parent->kind == SNAP_KIND_ACTIVE && owned_by_us(s, ret_parent);
	if (ret_parent->kind != SNAP_KIND_COMMITTED && !ours) {
		r = sc_err_set(t->err, -EINVAL,
			       "parent snapshot '%s' is %s, not committed; commit it first", parent,
			       snap_kind_to_string(ret_parent->kind));
		snap_info_clear(ret_parent);
		return r;
	}
	return 0;
}

struct prepare_op {
	struct snap_store *s;
	const char *key;
	const char *parent;
	enum snap_kind kind;
	const struct snap_prepare_opts *opts;
	const char *tmp_rel;
	char final_rel[64];
};

static void
prepare_undo(void *arg)
{
	struct prepare_op *op = arg;
	/* The transaction that named this folder did not commit: take it back. */
	if (renameat(op->s->root_fd, op->final_rel, op->s->root_fd, op->tmp_rel) < 0)
		sc_debug("cannot move %s back to %s: %m", op->final_rel, op->tmp_rel);
}

static int
next_id(struct snap_txn *t, uint64_t *ret)
{
	MDB_val v;
	uint64_t id = 0;
	int r = snap_txn_get(t, SNAP_DB_META, "next_id", 7, &v);
	if (r == 0 && v.mv_size == 8)
		id = sc_get_be64(v.mv_data);
	else if (r != -ENOENT && r < 0)
		return r;
	id++;
	uint8_t buf[8];
	sc_put_be64(buf, id);
	r = snap_txn_put(t, SNAP_DB_META, "next_id", 7, buf, 8, 0);
	*ret = id;
	return r;
}

static int
prepare_write(struct snap_txn *t, void *arg)
{
	struct prepare_op *op = arg;
	struct snap_info parent = {0};
	int r = prepare_check(op->s, t, op->key, op->parent,
			      op->opts && op->opts->parent_in_progress, &parent);
	if (r < 0)
		return r;

	uint64_t now = sc_now_ns();
	struct snap_info info = {
		.key = (char *)op->key,
		.parent = (char *)op->parent,
		.kind = op->kind,
		.created = now,
		.updated = now,
		.last_used = now,
		.quota = op->opts ? op->opts->quota : 0,
		.labels = op->opts ? (struct snap_label *)op->opts->labels : NULL,
		.nlabels = op->opts ? op->opts->nlabels : 0,
	};
	/* Work in progress: the owner's label, after the caller's. */
	struct snap_label all[SNAP_LABELS_MAX + 1];
	char owner[48];
	if (op->opts && op->opts->owned) {
		if (info.nlabels)
			memcpy(all, info.labels, info.nlabels * sizeof(*all));
		owner_value(op->s, owner);
		all[info.nlabels++] = (struct snap_label){.key = SNAP_OWNER_LABEL, .value = owner};
		info.labels = all;
	}
	r = next_id(t, &info.id);
	if (r >= 0)
		r = rec_put(t, &info);
	uint8_t idk[8];
	sc_put_be64(idk, info.id);
	if (r >= 0)
		r = snap_txn_put(t, SNAP_DB_SNAPSHOT_IDS, idk, 8, op->key, strlen(op->key), 0);
	if (r >= 0 && op->parent) {
		uint8_t ck[16];
		child_key(ck, parent.id, info.id);
		r = snap_txn_put(t, SNAP_DB_SNAPSHOT_CHILDREN, ck, 16, "", 0, 0);
		parent.last_used = now;
		if (r >= 0)
			r = rec_put(t, &parent);
	}
	snap_info_clear(&parent);
	if (r >= 0)
		r = snap_txn_counter_add(t, kind_counters[op->kind], 1);
	if (r >= 0)
		r = snap_store_lease_txn(op->s, t, "snapshot", op->key);
	if (r < 0)
		return r;

	/* Last act: the complete folder appears under its id (invariant 1). */
	snap_snapshot_rel(op->final_rel, sizeof(op->final_rel), info.id);
	if (renameat(op->s->root_fd, op->tmp_rel, op->s->root_fd, op->final_rel) < 0) {
		if (errno != ENOTEMPTY && errno != EEXIST)
			return snap_txn_fail(t, sc_err_setsys(t->err, -errno,
							      "cannot move snapshot into '%s'",
							      op->final_rel));
		/* An orphan from a crash holds this id; under the writer lock it is garbage. */
		snap_store_trash(op->s, op->final_rel);
		if (renameat(op->s->root_fd, op->tmp_rel, op->s->root_fd, op->final_rel) < 0)
			return snap_txn_fail(t, sc_err_setsys(t->err, -errno,
							      "cannot move snapshot into '%s'",
							      op->final_rel));
	}
	snap_txn_on_abort(t, prepare_undo, op);
	return 0;
}

int
snap_snapshot_prepare(struct snap_store *s, const char *key, const char *parent,
		      enum snap_kind kind, const struct snap_prepare_opts *opts,
		      struct snap_info *ret, struct sc_err *err)
{
	if (parent && !*parent)
		parent = NULL;
	int r = snap_key_validate(key, err);
	if (r < 0)
		return r;
	if (kind != SNAP_KIND_ACTIVE && kind != SNAP_KIND_VIEW)
		return sc_err_set(err, -EINVAL, "prepare makes active snapshots or views");
	if (kind == SNAP_KIND_VIEW && !parent)
		return sc_err_set(err, -EINVAL, "view '%s' needs a parent snapshot", key);
	if (parent) {
		r = snap_key_validate(parent, err);
		if (r < 0)
			return sc_err_prefix(err, r, "parent");
	}
	if (opts) {
		r = labels_validate(opts->labels, opts->nlabels, err);
		if (r < 0)
			return r;
		if (opts->nlabels > SNAP_LABELS_MAX)
			return sc_err_set(err, -E2BIG, "more than %d labels", SNAP_LABELS_MAX);
		if (opts->quota && kind != SNAP_KIND_ACTIVE)
			return sc_err_set(
				err, -EINVAL,
				"view '%s' is read-only: a quota limits an active snapshot", key);
		if (opts->quota && !s->driver->quota_set)
			return sc_err_set(
				err, -EOPNOTSUPP,
				"the %s driver has no quotas; use a store on btrfs, or the "
				"overlay driver on xfs mounted with -o pquota",
				s->driver->name);
	}

	/* Check first in a read transaction, so a doomed prepare copies nothing. */
	struct snap_txn t;
	r = snap_txn_begin_read(s->meta, &t, err);
	if (r < 0)
		return r;
	struct snap_info pinfo = {0};
	struct chain chain = {0};
	r = prepare_check(s, &t, key, parent, opts && opts->parent_in_progress, &pinfo);
	snap_info_clear(&pinfo);
	if (r >= 0)
		r = chain_load(s, &t, parent, &chain);
	snap_txn_end(&t);
	if (r < 0)
		return sc_err_prefix(err, r, "%s '%s'", kind == SNAP_KIND_VIEW ? "view" : "prepare",
				     key);
	char tmp_abs[PATH_MAX], tmp_rel[PATH_MAX];
	r = snap_store_mktemp(s, "new", tmp_abs, tmp_rel, err);
	if (r < 0) {
		chain_clear(&chain);
		return r;
	}
	r = s->driver->prepare(s, tmp_abs, kind, (const char *const *)chain.dirs, chain.n, err);
	chain_clear(&chain);
	if (r >= 0 && opts && opts->quota)
		r = s->driver->quota_set(s, tmp_abs, opts->quota, err);
	if (r >= 0) {
		struct prepare_op op = {
			.s = s,
			.key = key,
			.parent = parent,
			.kind = kind,
			.opts = opts,
			.tmp_rel = tmp_rel,
		};
		r = snap_meta_write(s->meta, prepare_write, &op, err);
	}
	if (r < 0) {
		/* Whatever was built is this process's own tmp/ folder: drop it now. */
		snap_store_trash(s, tmp_rel);
		snap_store_empty_trash(s);
		return sc_err_prefix(err, r, "%s '%s'", kind == SNAP_KIND_VIEW ? "view" : "prepare",
				     key);
	}
	return ret ? snap_snapshot_stat(s, key, ret, err) : 0;
}

struct commit_op {
	struct snap_store *s;
	const char *name;
	const char *key;
	uint64_t id;
	uint64_t size, inodes;
	const struct snap_label *labels;
	size_t nlabels;
};

static int
labels_merge(struct snap_info *info, const struct snap_label *labels, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t j;
		for (j = 0; j < info->nlabels; j++)
			if (strcmp(info->labels[j].key, labels[i].key) == 0)
				break;
		bool remove = !labels[i].value || !*labels[i].value;
		if (j < info->nlabels) {
			free(info->labels[j].value);
			info->labels[j].value = NULL;
			if (remove) {
				free(info->labels[j].key);
				info->labels[j] = info->labels[--info->nlabels];
			} else if (!(info->labels[j].value = strdup(labels[i].value))) {
				return -ENOMEM;
			}
			continue;
		}
		if (remove)
			continue;
		if (info->nlabels >= SNAP_LABELS_MAX)
			return -E2BIG;
		struct snap_label *p =
			realloc(info->labels, (info->nlabels + 1) * sizeof(*info->labels));
		if (!p)
			return -ENOMEM;
		info->labels = p;
		p[info->nlabels].key = strdup(labels[i].key);
		p[info->nlabels].value = strdup(labels[i].value);
		info->nlabels++;
		if (!p[info->nlabels - 1].key || !p[info->nlabels - 1].value)
			return -ENOMEM;
	}
	return 0;
}

static int
commit_check(struct snap_txn *t, const char *name, const char *key, struct snap_info *ret)
{
	int r = snap_snapshot_get_txn(t, key, ret);
	if (r == -ENOENT)
		return sc_err_set(t->err, r, "snapshot '%s' does not exist", key);
	if (r < 0)
		return r;
	if (ret->kind != SNAP_KIND_ACTIVE) {
		r = sc_err_set(t->err, -EINVAL, "snapshot '%s' is %s, not active", key,
			       snap_kind_to_string(ret->kind));
		snap_info_clear(ret);
		return r;
	}
	if (ret->parent) {
		/* Prepared on work in progress (parent_in_progress): that goes first. */
		struct snap_info parent = {0};
		r = snap_snapshot_get_txn(t, ret->parent, &parent);
		if (r == -ENOENT)
			r = 0; /* a damaged store: check's to report, not commit's */
		else if (r >= 0 && parent.kind != SNAP_KIND_COMMITTED)
			r = sc_err_set(t->err, -EINVAL,
				       "snapshot '%s' is on '%s', which is not committed yet; "
				       "commit that first",
				       key, ret->parent);
		snap_info_clear(&parent);
		if (r < 0) {
			snap_info_clear(ret);
			return r;
		}
	}
	MDB_val v;
	r = snap_txn_get(t, SNAP_DB_SNAPSHOTS, name, strlen(name), &v);
	if (r == 0) {
		snap_info_clear(ret);
		return sc_err_set(t->err, -EEXIST, "snapshot '%s' already exists", name);
	}
	if (r != -ENOENT) {
		snap_info_clear(ret);
		return r;
	}
	return 0;
}

struct child_ids {
	uint64_t *v;
	size_t n;
};

static int
child_visit(const MDB_val *key, const MDB_val *val, void *arg)
{
	(void)val;
	struct child_ids *c = arg;
	if (key->mv_size != 16)
		return 0;
	uint64_t *v = realloc(c->v, (c->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	c->v = v;
	c->v[c->n++] = sc_get_be64((const uint8_t *)key->mv_data + 8);
	return 0;
}

/*
 * The snapshot id is now called name: its children's records say so. Only
 * work in progress has an active parent (parent_in_progress), so this is
 * usually no child at all.
 */
static int
rename_in_children(struct snap_txn *t, uint64_t id, const char *name)
{
	uint8_t prefix[8];
	sc_put_be64(prefix, id);
	struct child_ids c = {0};
	int r = snap_txn_scan(t, SNAP_DB_SNAPSHOT_CHILDREN, prefix, 8, child_visit, &c);
	for (size_t i = 0; r >= 0 && i < c.n; i++) {
		uint8_t idk[8];
		MDB_val v;
		sc_put_be64(idk, c.v[i]);
		r = snap_txn_get(t, SNAP_DB_SNAPSHOT_IDS, idk, 8, &v);
		if (r < 0)
			break;
		_cleanup_free_ char *child = strndup(v.mv_data, v.mv_size);
		struct snap_info info = {0};
		r = child ? snap_snapshot_get_txn(t, child, &info) : -ENOMEM;
		if (r < 0)
			break;
		char *old = info.parent;
		info.parent = (char *)name;
		r = rec_put(t, &info);
		info.parent = old;
		snap_info_clear(&info);
	}
	free(c.v);
	return r < 0 ? snap_txn_fail(t, r) : 0;
}

static int
commit_write(struct snap_txn *t, void *arg)
{
	struct commit_op *op = arg;
	struct snap_info info = {0};
	int r = commit_check(t, op->name, op->key, &info);
	if (r < 0)
		return r;
	if (info.id != op->id) {
		/* Removed and prepared again while we measured it: measure again. */
		snap_info_clear(&info);
		return sc_err_set(t->err, -EAGAIN, "snapshot '%s' changed during commit; retry",
				  op->key);
	}
	/* Committed, it is nobody's work in progress any more. */
	const struct snap_label drop_owner = {.key = SNAP_OWNER_LABEL, .value = NULL};
	r = labels_merge(&info, &drop_owner, 1);
	if (r >= 0)
		r = labels_merge(&info, op->labels, op->nlabels);
	if (r < 0) {
		snap_info_clear(&info);
		return snap_txn_fail(t, r);
	}
	uint64_t now = sc_now_ns();
	char *old_key = info.key;
	info.key = (char *)op->name;
	info.kind = SNAP_KIND_COMMITTED;
	info.updated = now;
	info.last_used = now;
	info.size = op->size;
	info.inodes = op->inodes;
	r = snap_txn_del(t, SNAP_DB_SNAPSHOTS, op->key, strlen(op->key));
	if (r >= 0)
		r = rec_put(t, &info);
	info.key = old_key;
	snap_info_clear(&info);
	uint8_t idk[8];
	sc_put_be64(idk, op->id);
	if (r >= 0)
		r = snap_txn_put(t, SNAP_DB_SNAPSHOT_IDS, idk, 8, op->name, strlen(op->name), 0);
	if (r >= 0)
		r = rename_in_children(t, op->id, op->name);
	if (r >= 0)
		r = snap_txn_counter_add(t, kind_counters[SNAP_KIND_ACTIVE], -1);
	if (r >= 0)
		r = snap_txn_counter_add(t, kind_counters[SNAP_KIND_COMMITTED], 1);
	if (r >= 0)
		r = snap_txn_counter_add(t, COUNTER_COMMITTED_BYTES, (int64_t)op->size);
	if (r >= 0)
		r = snap_txn_counter_add(t, COUNTER_COMMITTED_INODES, (int64_t)op->inodes);
	if (r >= 0)
		r = snap_store_lease_txn(op->s, t, "snapshot", op->name);
	return r;
}

int
snap_snapshot_commit(struct snap_store *s, const char *name, const char *key,
		     const struct snap_label *labels, size_t nlabels, struct sc_err *err)
{
	return snap_snapshot_commit_measured(s, name, key, labels, nlabels, NULL, err);
}

int
snap_snapshot_commit_measured(struct snap_store *s, const char *name, const char *key,
			      const struct snap_label *labels, size_t nlabels,
			      const struct snap_usage *measured, struct sc_err *err)
{
	int r = snap_key_validate(name, err);
	if (r >= 0)
		r = snap_key_validate(key, err);
	if (r >= 0)
		r = labels_validate(labels, nlabels, err);
	if (r < 0)
		return sc_err_prefix(err, r, "commit"); /* the bad name may be huge: not quoted */

	for (int attempt = 0; attempt < 3; attempt++) {
		struct snap_txn t;
		r = snap_txn_begin_read(s->meta, &t, err);
		if (r < 0)
			return r;
		struct snap_info info = {0};
		r = commit_check(&t, name, key, &info);
		snap_txn_end(&t);
		if (r < 0)
			return sc_err_prefix(err, r, "commit '%s'", name);

		/* Measure once, here, outside any transaction (invariant 4). */
		char dir[PATH_MAX];
		snapshot_abs(s, dir, sizeof(dir), info.id);
		struct commit_op op = {.s = s,
				       .name = name,
				       .key = key,
				       .id = info.id,
				       .labels = labels,
				       .nlabels = nlabels};
		uint64_t quota = info.quota;
		snap_info_clear(&info);
		if (measured && attempt == 0 && measured->id == op.id) {
			op.size = measured->bytes;
			op.inodes = measured->inodes;
		} else {
			r = snap_du(AT_FDCWD, dir, &op.size, &op.inodes);
			if (r < 0)
				return sc_err_setsys(err, r, "commit '%s': cannot measure '%s'",
						     name, dir);
		}
		/* With a quota the driver counts the snapshot's own bytes (btrfs: not
		 * what it shares with its parent), once its writes are on disk. */
		uint64_t own;
		if (quota && s->driver->quota_used && syncfs(s->root_fd) == 0 &&
		    s->driver->quota_used(s, dir, &own, NULL) >= 0)
			op.size = own;
		if (s->driver->commit) {
			r = s->driver->commit(s, dir, err);
			if (r < 0)
				return sc_err_prefix(err, r, "commit '%s'", name);
		}
		r = snap_meta_write(s->meta, commit_write, &op, err);
		if (r != -EAGAIN)
			break;
		sc_err_clear(err);
	}
	if (r < 0)
		return sc_err_prefix(err, r, "commit '%s'", name);
	return 0;
}

int
snap_snapshot_has_children_txn(struct snap_txn *t, uint64_t id)
{
	uint8_t prefix[8];
	sc_put_be64(prefix, id);
	return snap_txn_has_prefix(t, SNAP_DB_SNAPSHOT_CHILDREN, prefix, 8);
}

int
snap_snapshot_delete_txn(struct snap_txn *t, const struct snap_info *info)
{
	uint8_t idk[8];
	sc_put_be64(idk, info->id);
	int r = snap_txn_del(t, SNAP_DB_SNAPSHOTS, info->key, strlen(info->key));
	if (r >= 0)
		r = snap_txn_del(t, SNAP_DB_SNAPSHOT_IDS, idk, 8);
	if (r >= 0 && info->parent) {
		struct snap_info parent = {0};
		r = snap_snapshot_get_txn(t, info->parent, &parent);
		if (r >= 0) {
			uint8_t ck[16];
			child_key(ck, parent.id, info->id);
			r = snap_txn_del(t, SNAP_DB_SNAPSHOT_CHILDREN, ck, 16);
			snap_info_clear(&parent);
		}
	}
	if (r >= 0)
		r = snap_txn_counter_add(t, kind_counters[info->kind], -1);
	if (r >= 0 && info->kind == SNAP_KIND_COMMITTED) {
		r = snap_txn_counter_add(t, COUNTER_COMMITTED_BYTES, -(int64_t)info->size);
		if (r >= 0)
			r = snap_txn_counter_add(t, COUNTER_COMMITTED_INODES,
						 -(int64_t)info->inodes);
	}
	return r < 0 ? snap_txn_fail(t, r) : r;
}

struct remove_op {
	const char *key;
	uint64_t id;
};

static int
remove_write(struct snap_txn *t, void *arg)
{
	struct remove_op *op = arg;
	struct snap_info info = {0};
	int r = snap_snapshot_get_txn(t, op->key, &info);
	if (r == -ENOENT)
		return sc_err_set(t->err, r, "snapshot does not exist");
	if (r < 0)
		return r;
	r = snap_snapshot_has_children_txn(t, info.id);
	if (r > 0)
		r = sc_err_set(t->err, -EBUSY,
			       "snapshot has children; remove them first (snapctl snapshot ls "
			       "--parent '%s')",
			       op->key);
	if (r >= 0)
		r = snap_snapshot_delete_txn(t, &info);
	op->id = info.id;
	snap_info_clear(&info);
	return r;
}

int
snap_snapshot_remove(struct snap_store *s, const char *key, struct sc_err *err)
{
	int r = snap_key_validate(key, err);
	if (r < 0)
		return sc_err_prefix(err, r, "remove");
	struct remove_op op = {.key = key};
	r = snap_meta_write(s->meta, remove_write, &op, err);
	if (r < 0)
		return sc_err_prefix(err, r, "remove '%s'", key);
	/*
	 * The record is gone (invariant 1): now the folder, outside any
	 * transaction, once a power failure can no longer bring the record back.
	 */
	r = snap_meta_sync(s->meta);
	if (r < 0)
		return sc_err_setsys(err, r, "remove '%s': cannot sync metadata", key);
	char rel[64];
	snap_snapshot_rel(rel, sizeof(rel), op.id);
	r = snap_store_trash(s, rel);
	if (r < 0)
		sc_debug("cannot move %s to trash: %s (cleanup will retry)", rel, sc_strerror(r));
	snap_store_empty_trash(s);
	return 0;
}

int
snap_snapshot_stat(struct snap_store *s, const char *key, struct snap_info *ret, struct sc_err *err)
{
	int r = snap_key_validate(key, err);
	if (r < 0)
		return r;
	struct snap_txn t;
	r = snap_txn_begin_read(s->meta, &t, err);
	if (r < 0)
		return r;
	r = snap_snapshot_get_txn(&t, key, ret);
	snap_txn_end(&t);
	if (r == -ENOENT)
		return sc_err_set(err, r, "snapshot '%s' does not exist", key);
	return r;
}

struct label_op {
	const char *key;
	const struct snap_label *labels;
	size_t nlabels;
	struct snap_info *out;
};

static int
label_write(struct snap_txn *t, void *arg)
{
	struct label_op *op = arg;
	struct snap_info info = {0};
	int r = snap_snapshot_get_txn(t, op->key, &info);
	if (r == -ENOENT)
		return sc_err_set(t->err, r, "snapshot '%s' does not exist", op->key);
	if (r < 0)
		return r;
	r = labels_merge(&info, op->labels, op->nlabels);
	if (r == -E2BIG)
		r = sc_err_set(t->err, r, "snapshot '%s' would have more than %d labels", op->key,
			       SNAP_LABELS_MAX);
	if (r < 0) {
		snap_info_clear(&info);
		return snap_txn_fail(t, r);
	}
	info.updated = sc_now_ns();
	r = rec_put(t, &info);
	if (r >= 0 && op->out) {
		snap_info_clear(op->out);
		*op->out = info;
	} else {
		snap_info_clear(&info);
	}
	return r;
}

int
snap_snapshot_label(struct snap_store *s, const char *key, const struct snap_label *labels,
		    size_t nlabels, struct snap_info *ret, struct sc_err *err)
{
	int r = snap_key_validate(key, err);
	if (r >= 0)
		r = labels_validate(labels, nlabels, err);
	if (r < 0)
		return r;
	struct label_op op = {.key = key, .labels = labels, .nlabels = nlabels, .out = ret};
	return snap_meta_write(s->meta, label_write, &op, err);
}

static bool
filter_match(const struct snap_filter *f, const struct snap_info *info)
{
	if (!f)
		return true;
	if (f->kind >= 0 && info->kind != (enum snap_kind)f->kind)
		return false;
	if (f->parent) {
		if (!*f->parent ? info->parent != NULL
				: !info->parent || strcmp(info->parent, f->parent) != 0)
			return false;
	}
	if (f->label) {
		const char *eq = strchr(f->label, '=');
		size_t klen = eq ? (size_t)(eq - f->label) : strlen(f->label);
		bool found = false;
		for (size_t i = 0; i < info->nlabels && !found; i++) {
			if (strlen(info->labels[i].key) != klen ||
			    strncmp(info->labels[i].key, f->label, klen) != 0)
				continue;
			found = !eq || strcmp(info->labels[i].value, eq + 1) == 0;
		}
		if (!found)
			return false;
	}
	return true;
}

struct walk_collect {
	const struct snap_filter *filter;
	struct snap_info *v;
	size_t n, cap;
};

static int
walk_visit(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct walk_collect *c = arg;
	struct snap_info info;
	int r = snap_snapshot_decode(k->mv_data, k->mv_size, v, &info);
	if (r < 0)
		return r;
	if (!filter_match(c->filter, &info)) {
		snap_info_clear(&info);
		return 0;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct snap_info *p = realloc(c->v, cap * sizeof(*p));
		if (!p) {
			snap_info_clear(&info);
			return -ENOMEM;
		}
		c->v = p;
		c->cap = cap;
	}
	c->v[c->n++] = info;
	return 0;
}

int
snap_snapshot_walk(struct snap_store *s, const struct snap_filter *filter, snap_walk_fn fn,
		   void *arg, struct sc_err *err)
{
	struct snap_txn t;
	int r = snap_txn_begin_read(s->meta, &t, err);
	if (r < 0)
		return r;
	/* Records are copied out, so fn may call back into the store. */
	struct walk_collect c = {.filter = filter};
	r = snap_txn_scan(&t, SNAP_DB_SNAPSHOTS, NULL, 0, walk_visit, &c);
	snap_txn_end(&t);
	if (r < 0)
		sc_err_setsys(err, r, "cannot list snapshots");
	for (size_t i = 0; i < c.n; i++) {
		if (r >= 0)
			r = fn(&c.v[i], arg);
		snap_info_clear(&c.v[i]);
	}
	free(c.v);
	return r;
}

int
snap_snapshot_usage(struct snap_store *s, const char *key, uint64_t *ret_bytes,
		    uint64_t *ret_inodes, struct sc_err *err)
{
	struct snap_info info = {0};
	int r = snap_snapshot_stat(s, key, &info, err);
	if (r < 0)
		return r;
	uint64_t bytes = 0, inodes = 0;
	if (info.kind == SNAP_KIND_COMMITTED) {
		bytes = info.size;
		inodes = info.inodes;
	} else if (info.kind == SNAP_KIND_ACTIVE) {
		char dir[PATH_MAX];
		snapshot_abs(s, dir, sizeof(dir), info.id);
		r = snap_du(AT_FDCWD, dir, &bytes, &inodes);
		if (r < 0)
			sc_err_setsys(err, r, "cannot measure snapshot '%s'", key);
	}
	snap_info_clear(&info);
	if (r < 0)
		return r;
	*ret_bytes = bytes;
	*ret_inodes = inodes;
	return 0;
}

int
snap_snapshot_quota(struct snap_store *s, const char *key, uint64_t *ret_quota, uint64_t *ret_used,
		    struct sc_err *err)
{
	struct snap_info info = {0};
	if (ret_quota)
		*ret_quota = 0;
	int r = snap_snapshot_stat(s, key, &info, err);
	if (r < 0)
		return r;
	if (ret_quota)
		*ret_quota = info.quota;
	if (!info.quota || !s->driver->quota_used) {
		snap_info_clear(&info);
		return sc_err_set(err, -ENODATA, "snapshot '%s' has no quota", key);
	}
	char dir[PATH_MAX];
	snapshot_abs(s, dir, sizeof(dir), info.id);
	snap_info_clear(&info);
	return s->driver->quota_used(s, dir, ret_used, err);
}

#define TOUCH_INTERVAL_NS (10ull * 1000000000ull)

struct touch_op {
	const char *key;
};

int
snap_snapshot_touch_txn(struct snap_txn *t, const char *key)
{
	struct snap_info info = {0};
	int r = snap_snapshot_get_txn(t, key, &info);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	info.last_used = sc_now_ns();
	r = rec_put(t, &info);
	snap_info_clear(&info);
	return r;
}

static int
touch_write(struct snap_txn *t, void *arg)
{
	struct touch_op *op = arg;
	return snap_snapshot_touch_txn(t, op->key);
}

int
snap_snapshot_mounts(struct snap_store *s, const char *key, struct snap_mounts *ret,
		     struct sc_err *err)
{
	int r = snap_key_validate(key, err);
	if (r < 0)
		return r;
	struct snap_txn t;
	r = snap_txn_begin_read(s->meta, &t, err);
	if (r < 0)
		return r;
	struct snap_info info = {0};
	struct chain chain = {0};
	r = snap_snapshot_get_txn(&t, key, &info);
	if (r == -ENOENT)
		sc_err_set(err, r, "snapshot '%s' does not exist", key);
	if (r >= 0 && info.kind == SNAP_KIND_COMMITTED)
		r = sc_err_set(err, -EINVAL,
			       "snapshot '%s' is committed; mount a view of it (snapctl snapshot "
			       "view KEY '%s')",
			       key, key);
	if (r >= 0)
		r = chain_load(s, &t, info.parent, &chain);
	snap_txn_end(&t);
	if (r >= 0) {
		char dir[PATH_MAX];
		snapshot_abs(s, dir, sizeof(dir), info.id);
		r = s->driver->mounts(s, dir, info.kind, (const char *const *)chain.dirs, chain.n,
				      ret, err);
	}
	/*
	 * Marked as used, unless it was a moment ago (a snapshot just prepared):
	 * the collector orders by use in seconds, and each write costs a sync.
	 */
	bool recent = sc_now_ns() - info.last_used < TOUCH_INTERVAL_NS;
	snap_info_clear(&info);
	chain_clear(&chain);
	if (r < 0)
		return sc_err_prefix(err, r, "mounts '%s'", key);
	struct touch_op op = {.key = key};
	if (!recent)
		snap_meta_write(s->meta, touch_write, &op, NULL);
	return 0;
}

uint64_t
snap_snapshot_count_txn(struct snap_txn *t)
{
	uint64_t n = 0;
	for (int k = 0; k < _SNAP_KIND_MAX; k++)
		n += snap_txn_counter_get(t, kind_counters[k]);
	return n;
}

int
snap_store_counts(struct snap_store *s, struct snap_store_counts *ret, struct sc_err *err)
{
	struct snap_txn t;
	int r = snap_txn_begin_read(s->meta, &t, err);
	if (r < 0)
		return r;
	*ret = (struct snap_store_counts){0};
	for (int k = 0; k < _SNAP_KIND_MAX; k++)
		ret->snapshots[k] = snap_txn_counter_get(&t, kind_counters[k]);
	ret->committed_bytes = snap_txn_counter_get(&t, COUNTER_COMMITTED_BYTES);
	ret->committed_inodes = snap_txn_counter_get(&t, COUNTER_COMMITTED_INODES);
	ret->leases = snap_txn_counter_get(&t, "leases");
	ret->blobs = snap_txn_counter_get(&t, "blobs.count");
	ret->blobs_bytes = snap_txn_counter_get(&t, "blobs.bytes");
	ret->blobs_disk = snap_txn_counter_get(&t, "blobs.disk");
	snap_txn_end(&t);
	return 0;
}
