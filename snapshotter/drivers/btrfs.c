/*
 * The btrfs driver: a snapshot's fs/ is a btrfs subvolume. prepare makes a
 * writable snapshot of the parent's subvolume (an empty subvolume when there
 * is no parent), which costs the same for ten files or a million; commit sets
 * it read-only; a view is a read-only snapshot of its parent. Mounts are bind
 * mounts. The store moves a snapshot's folder to trash/ before anything is
 * deleted, and remove then deletes the subvolume in one call, so a crash never
 * leaves half a subvolume under snapshots/.
 *
 * For layer diffs, snap_btrfs_changes reads which inodes a snapshot changed
 * since it was taken from the subvolume's own tree (layer/diff.c skips every
 * other subtree).
 */
#include "store-internal.h"

#include <btrfsutil.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <linux/magic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "util.h"

#ifndef BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA
#define BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA 4 /* kernel 6.7 */
#endif

/* An error from libbtrfsutil, which leaves the system's reason in errno. */
static int
util_fail(struct sc_err *err, enum btrfs_util_error e, const char *what, const char *path)
{
	int code = errno > 0 ? -errno : -EIO;
	if (e == BTRFS_UTIL_ERROR_NOT_BTRFS)
		code = -EOPNOTSUPP;
	return sc_err_set(err, code, "cannot %s '%s': %s (%s)", what, path, btrfs_util_strerror(e),
			  sc_strerror(code));
}

bool
snap_on_btrfs(int fd)
{
	struct statfs sfs;
	return fstatfs(fd, &sfs) == 0 && sfs.f_type == BTRFS_SUPER_MAGIC;
}

static int
btrfs_probe(struct snap_store *s, struct sc_err *err)
{
	if (!snap_on_btrfs(s->root_fd))
		return sc_err_set(err, -EOPNOTSUPP, "store '%s' is not on a btrfs file system",
				  s->root);
	/* The proof is a subvolume made and deleted where snapshots will live. */
	char dir[PATH_MAX], rel[PATH_MAX];
	int r = snap_store_mktemp(s, "probe", dir, rel, err);
	if (r < 0)
		return r;
	char sub[PATH_MAX + 8];
	snprintf(sub, sizeof(sub), "%s/fs", dir);
	enum btrfs_util_error e = btrfs_util_create_subvolume(sub, 0, NULL, NULL);
	if (e) {
		r = util_fail(err, e, "create a subvolume", sub);
		if (r == -EPERM || r == -EACCES)
			r = -EOPNOTSUPP;
	} else if ((e = btrfs_util_delete_subvolume(sub, 0))) {
		r = util_fail(err, e, "delete the subvolume", sub);
		if (r == -EPERM || r == -EACCES)
			r = sc_err_set(err, -EOPNOTSUPP,
				       "cannot delete subvolumes under '%s' (run as root, or mount "
				       "with user_subvol_rm_allowed)",
				       s->root);
	}
	sc_rm_rf_at(s->root_fd, rel);
	return r;
}

static int
btrfs_prepare(struct snap_store *s, const char *dir, enum snap_kind kind,
	      const char *const *parents, size_t nparents, struct sc_err *err)
{
	char dst[PATH_MAX + 8];
	snprintf(dst, sizeof(dst), "%s/fs", dir);
	enum btrfs_util_error e;
	if (nparents == 0) {
		e = btrfs_util_create_subvolume(dst, 0, NULL, NULL);
		if (e)
			return util_fail(err, e, "create subvolume", dst);
		/* The root folder's mode follows the umask; a snapshot's starts as 0755. */
		if (chmod(dst, 0755) < 0)
			return sc_err_setsys(err, -errno, "cannot set the mode of '%s'", dst);
		return 0;
	}
	char src[PATH_MAX + 8];
	snprintf(src, sizeof(src), "%s/fs", parents[0]);
	int flags = kind == SNAP_KIND_VIEW ? BTRFS_UTIL_CREATE_SNAPSHOT_READ_ONLY : 0;
	e = btrfs_util_create_snapshot(src, dst, flags, NULL, NULL);
	if (e)
		return util_fail(err, e, "snapshot", src);
	return 0;
}

static int
btrfs_mounts(struct snap_store *s, const char *dir, enum snap_kind kind, const char *const *parents,
	     size_t nparents, struct snap_mounts *ret, struct sc_err *err)
{
	char path[PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s/fs", dir);
	*ret = (struct snap_mounts){0};
	int r = snap_mounts_bind(ret, path, kind != SNAP_KIND_ACTIVE);
	if (r < 0) {
		snap_mounts_clear(ret);
		return sc_err_set(err, r, "out of memory");
	}
	return 0;
}

static int
btrfs_commit(struct snap_store *s, const char *dir, struct sc_err *err)
{
	char path[PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s/fs", dir);
	enum btrfs_util_error e = btrfs_util_set_subvolume_read_only(path, true);
	if (e)
		return util_fail(err, e, "make read-only", path);
	return 0;
}

/* Deletes dir/fs if it is a subvolume, with any subvolumes a container made inside. */
static int
btrfs_remove(struct snap_store *s, const char *dir, struct sc_err *err)
{
	char path[PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s/fs", dir);
	if (btrfs_util_is_subvolume(path) != BTRFS_UTIL_OK)
		return 0;
	enum btrfs_util_error e =
		btrfs_util_delete_subvolume(path, BTRFS_UTIL_DELETE_SUBVOLUME_RECURSIVE);
	if (e) {
		struct sc_err local = SC_ERR_INIT;
		int r = util_fail(err ? err : &local, e, "delete subvolume", path);
		sc_debug("%s", sc_err_msg(err ? err : &local));
		sc_err_clear(&local);
		return r;
	}
	return 0;
}

/*
 * Changed inodes. A snapshot shares its parent's tree until written; every
 * inode written since has an inode item whose transid is newer than the
 * transaction that made the snapshot (its otransid). The tree search ioctl,
 * given that transid as a floor, visits only the tree blocks copied since, so
 * the cost follows the size of the change, not of the tree. The set also holds
 * every folder above a changed inode (found through its inode refs), so a diff
 * can skip any folder not in it without opening it.
 */

/* An open-addressing set of inode numbers (0 marks a free slot; inodes start at 256). */
struct ino_set {
	uint64_t *v;
	size_t cap, n;
};

static size_t
ino_slot(uint64_t ino, size_t cap)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ULL) >> 17) & (cap - 1);
}

static bool
ino_set_has(const struct ino_set *set, uint64_t ino)
{
	if (!set->cap)
		return false;
	for (size_t i = ino_slot(ino, set->cap);; i = (i + 1) & (set->cap - 1)) {
		if (set->v[i] == ino)
			return true;
		if (!set->v[i])
			return false;
	}
}

/* 1 if added, 0 if there already, -ENOMEM. */
static int
ino_set_add(struct ino_set *set, uint64_t ino)
{
	if ((set->n + 1) * 2 > set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 1024;
		uint64_t *v = calloc(cap, sizeof(*v));
		if (!v)
			return -ENOMEM;
		for (size_t i = 0; i < set->cap; i++) {
			if (!set->v[i])
				continue;
			size_t j = ino_slot(set->v[i], cap);
			while (v[j])
				j = (j + 1) & (cap - 1);
			v[j] = set->v[i];
		}
		free(set->v);
		set->v = v;
		set->cap = cap;
	}
	size_t i = ino_slot(ino, set->cap);
	for (; set->v[i]; i = (i + 1) & (set->cap - 1))
		if (set->v[i] == ino)
			return 0;
	set->v[i] = ino;
	set->n++;
	return 1;
}

struct snap_btrfs_changes {
	struct ino_set touched; /* changed inodes and the folders above them */
};

#define SEARCH_BUF (256 * 1024)

struct search {
	int fd;
	struct btrfs_ioctl_search_args_v2 *args;
};

static int
search_init(struct search *q, int fd)
{
	q->fd = fd;
	q->args = malloc(sizeof(*q->args) + SEARCH_BUF);
	return q->args ? 0 : -ENOMEM;
}

/* One item of a search: its key and data. */
typedef int (*item_fn)(void *arg, const struct btrfs_ioctl_search_header *h, const void *data);

/*
 * Calls fn for every item of a tree between two keys (tree_id, objectids,
 * types, offsets and min_transid of *key; tree 0 is the subvolume q->fd is in).
 */
static int
search_keys(struct search *q, const struct btrfs_ioctl_search_key *key, item_fn fn, void *arg)
{
	struct btrfs_ioctl_search_key *k = &q->args->key;
	*k = *key;
	k->max_transid = UINT64_MAX;
	for (;;) {
		k->nr_items = UINT32_MAX;
		q->args->buf_size = SEARCH_BUF;
		if (ioctl(q->fd, BTRFS_IOC_TREE_SEARCH_V2, q->args) < 0)
			return -errno;
		if (k->nr_items == 0)
			return 0;
		size_t pos = 0;
		struct btrfs_ioctl_search_header h = {0};
		for (uint32_t i = 0; i < k->nr_items; i++) {
			memcpy(&h, q->args->buf + pos, sizeof(h));
			pos += sizeof(h);
			if (pos + h.len > SEARCH_BUF)
				return -EIO;
			int r = fn(arg, &h, q->args->buf + pos);
			if (r < 0)
				return r;
			pos += h.len;
		}
		/* Go on from the key after the last one returned. */
		k->min_objectid = h.objectid;
		k->min_type = h.type;
		k->min_offset = h.offset + 1;
		if (h.offset == UINT64_MAX) {
			k->min_offset = 0;
			if (++k->min_type > 255) {
				k->min_type = 0;
				k->min_objectid++;
			}
		}
		if (k->min_objectid > k->max_objectid ||
		    (k->min_objectid == k->max_objectid && k->min_type > k->max_type))
			return 0;
	}
}

/* search_keys with a search of its own, for a single search. */
static int
search_once(int fd, const struct btrfs_ioctl_search_key *key, item_fn fn, void *arg)
{
	struct search q = {0};
	int r = search_init(&q, fd);
	if (r >= 0)
		r = search_keys(&q, key, fn, arg);
	free(q.args);
	return r;
}

/* search_keys over the subvolume's own tree, every offset. */
static int
search_run(struct search *q, uint64_t min_objectid, uint32_t min_type, uint64_t max_objectid,
	   uint32_t max_type, uint64_t min_transid, item_fn fn, void *arg)
{
	const struct btrfs_ioctl_search_key k = {
		.min_objectid = min_objectid,
		.max_objectid = max_objectid,
		.min_type = min_type,
		.max_type = max_type,
		.max_offset = UINT64_MAX,
		.min_transid = min_transid,
	};
	return search_keys(q, &k, fn, arg);
}

static uint64_t
le64_at(const void *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

struct changed_scan {
	struct ino_set *changed;
	uint64_t since;
};

static int
collect_changed(void *arg, const struct btrfs_ioctl_search_header *h, const void *data)
{
	struct changed_scan *c = arg;
	if (h->type != BTRFS_INODE_ITEM_KEY || h->len < sizeof(struct btrfs_inode_item))
		return 0;
	uint64_t transid = le64_at((const char *)data + offsetof(struct btrfs_inode_item, transid));
	if (transid <= c->since)
		return 0;
	int r = ino_set_add(c->changed, h->objectid);
	return r < 0 ? r : 0;
}

struct parent_scan {
	uint64_t ino;
	uint64_t parents[16];
	size_t n;
	bool more; /* more parents than fit (a file with many links) */
};

static void
parent_add(struct parent_scan *p, uint64_t parent)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->parents[i] == parent)
			return;
	if (p->n < ARRAY_SIZE(p->parents))
		p->parents[p->n++] = parent;
	else
		p->more = true;
}

static int
collect_parents(void *arg, const struct btrfs_ioctl_search_header *h, const void *data)
{
	struct parent_scan *p = arg;
	if (h->objectid != p->ino)
		return 0;
	if (h->type == BTRFS_INODE_REF_KEY) {
		parent_add(p, h->offset);
	} else if (h->type == BTRFS_INODE_EXTREF_KEY) {
		const char *d = data;
		size_t pos = 0;
		while (pos + sizeof(struct btrfs_inode_extref) <= h->len) {
			const struct btrfs_inode_extref *x = (const void *)(d + pos);
			uint16_t len;
			memcpy(&len, &x->name_len, sizeof(len));
			parent_add(p, le64_at(&x->parent_objectid));
			pos += sizeof(*x) + le16toh(len);
		}
	}
	return 0;
}

/* Adds ino's folders and theirs, up to the root or a folder already in the set. */
static int
add_ancestors(struct search *q, struct ino_set *touched, uint64_t ino, int depth)
{
	if (depth > 4096)
		return -ELOOP;
	struct parent_scan p = {.ino = ino};
	int r = search_run(q, ino, BTRFS_INODE_REF_KEY, ino, BTRFS_INODE_EXTREF_KEY, 0,
			   collect_parents, &p);
	if (r < 0)
		return r;
	if (p.more)
		return -E2BIG; /* the caller falls back to a full comparison */
	for (size_t i = 0; i < p.n; i++) {
		if (p.parents[i] == ino)
			continue; /* the root's ".." */
		r = ino_set_add(touched, p.parents[i]);
		if (r < 0)
			return r;
		if (r > 0 && p.parents[i] != BTRFS_FIRST_FREE_OBJECTID) {
			r = add_ancestors(q, touched, p.parents[i], depth + 1);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int
snap_btrfs_changes_new(const char *path, struct snap_btrfs_changes **ret, struct sc_err *err)
{
	*ret = NULL;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sc_err_setsys(err, -errno, "cannot open '%s'", path);
	if (!snap_on_btrfs(fd))
		return sc_err_set(err, -EOPNOTSUPP, "'%s' is not on btrfs", path);
	struct btrfs_util_subvolume_info info;
	enum btrfs_util_error e = btrfs_util_subvolume_info_fd(fd, 0, &info);
	if (e)
		return util_fail(err, e, "read the subvolume of", path);
	/* Inode updates wait in memory until a transaction commits: commit one. */
	if (syncfs(fd) < 0)
		return sc_err_setsys(err, -errno, "cannot sync '%s'", path);

	struct ino_set changed = {0};
	struct snap_btrfs_changes *c = calloc(1, sizeof(*c));
	struct search q = {0};
	int r = c ? search_init(&q, fd) : -ENOMEM;
	if (r >= 0) {
		struct changed_scan scan = {.changed = &changed, .since = info.otransid};
		r = search_run(&q, BTRFS_FIRST_FREE_OBJECTID, BTRFS_INODE_ITEM_KEY,
			       BTRFS_LAST_FREE_OBJECTID, BTRFS_INODE_ITEM_KEY, info.otransid + 1,
			       collect_changed, &scan);
	}
	for (size_t i = 0; r >= 0 && i < changed.cap; i++) {
		if (!changed.v[i])
			continue;
		r = ino_set_add(&c->touched, changed.v[i]);
		if (r > 0 && changed.v[i] != BTRFS_FIRST_FREE_OBJECTID)
			r = add_ancestors(&q, &c->touched, changed.v[i], 0);
	}
	free(q.args);
	free(changed.v);
	if (r < 0) {
		snap_btrfs_changes_free(c);
		if (r == -ENOMEM)
			return sc_err_set(err, r, "out of memory");
		return sc_err_setsys(err, r, "cannot read the changes of '%s'", path);
	}
	*ret = c;
	return 0;
}

bool
snap_btrfs_changes_touched(const struct snap_btrfs_changes *c, uint64_t ino)
{
	return ino_set_has(&c->touched, ino);
}

void
snap_btrfs_changes_free(struct snap_btrfs_changes *c)
{
	if (!c)
		return;
	free(c->touched.v);
	free(c);
}

/*
 * Quotas. A snapshot's limit is on the exclusive bytes of its subvolume's
 * level-0 qgroup (0/ID). Quotas are switched on for the file system only when
 * a quota is first asked for: simple quotas where the kernel has them (6.7+:
 * an extent counts for the subvolume that wrote it, so data a snapshot shares
 * with its parent never counts, and deleting subvolumes stays cheap), else
 * full qgroups (exclusive: not shared with another subvolume; they make
 * subvolume deletion much slower, see docs/store.md).
 */
static int
quota_enable(struct snap_store *s, struct sc_err *err)
{
	struct btrfs_ioctl_quota_ctl_args a = {.cmd = BTRFS_QUOTA_CTL_ENABLE_SIMPLE_QUOTA};
	if (ioctl(s->root_fd, BTRFS_IOC_QUOTA_CTL, &a) == 0) {
		sc_debug("btrfs: simple quotas on for '%s'", s->root);
		return 0;
	}
	if (errno != EINVAL && errno != EOPNOTSUPP)
		return sc_err_setsys(err, -errno, "cannot turn on btrfs quotas for '%s'", s->root);
	sc_debug("btrfs: no simple quotas here (%s); turning on full qgroups", strerror(errno));
	a = (struct btrfs_ioctl_quota_ctl_args){.cmd = BTRFS_QUOTA_CTL_ENABLE};
	if (ioctl(s->root_fd, BTRFS_IOC_QUOTA_CTL, &a) < 0)
		return sc_err_setsys(err, -errno, "cannot turn on btrfs quotas for '%s'", s->root);
	return 0;
}

static int
subvolume_open(const char *dir, char *path, size_t len, uint64_t *ret_id, struct sc_err *err)
{
	snprintf(path, len, "%s/fs", dir);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sc_err_setsys(err, -errno, "cannot open '%s'", path);
	enum btrfs_util_error e = btrfs_util_subvolume_id_fd(fd, ret_id);
	if (e) {
		close(fd);
		return util_fail(err, e, "read the subvolume id of", path);
	}
	return fd;
}

static int
btrfs_quota_set(struct snap_store *s, const char *dir, uint64_t bytes, struct sc_err *err)
{
	char path[PATH_MAX + 8];
	uint64_t id;
	_cleanup_close_ int fd = subvolume_open(dir, path, sizeof(path), &id, err);
	if (fd < 0)
		return fd;
	struct btrfs_ioctl_qgroup_limit_args a = {
		.qgroupid = id, /* 0/ID */
		.lim = {.flags = BTRFS_QGROUP_LIMIT_MAX_EXCL, .max_excl = bytes},
	};
	int r = ioctl(fd, BTRFS_IOC_QGROUP_LIMIT, &a);
	if (r < 0 && errno == ENOTCONN) { /* quotas are off: the first one asked for */
		r = quota_enable(s, err);
		if (r < 0)
			return r;
		r = ioctl(fd, BTRFS_IOC_QGROUP_LIMIT, &a);
	}
	if (r < 0)
		return sc_err_setsys(err, -errno,
				     "cannot limit subvolume '%s' (qgroup 0/%" PRIu64 ")", path,
				     id);
	return 0;
}

struct qgroup_scan {
	uint64_t excl;
	bool found;
};

static int
read_qgroup_info(void *arg, const struct btrfs_ioctl_search_header *h, const void *data)
{
	struct qgroup_scan *q = arg;
	if (h->type != BTRFS_QGROUP_INFO_KEY || h->len < sizeof(struct btrfs_qgroup_info_item))
		return 0;
	q->excl = le64_at((const char *)data + offsetof(struct btrfs_qgroup_info_item, excl));
	q->found = true;
	return 0;
}

static int
btrfs_quota_used(struct snap_store *s, const char *dir, uint64_t *ret, struct sc_err *err)
{
	char path[PATH_MAX + 8];
	uint64_t id;
	_cleanup_close_ int fd = subvolume_open(dir, path, sizeof(path), &id, err);
	if (fd < 0)
		return fd;
	struct qgroup_scan scan = {0};
	const struct btrfs_ioctl_search_key k = {
		.tree_id = BTRFS_QUOTA_TREE_OBJECTID,
		.min_type = BTRFS_QGROUP_INFO_KEY,
		.max_type = BTRFS_QGROUP_INFO_KEY,
		.min_offset = id,
		.max_offset = id,
	};
	int r = search_once(fd, &k, read_qgroup_info, &scan);
	if (r < 0)
		return sc_err_setsys(err, r, "cannot read qgroup 0/%" PRIu64 " of '%s'", id, path);
	if (!scan.found)
		return sc_err_set(err, -ENODATA, "subvolume '%s' has no qgroup", path);
	*ret = scan.excl;
	return 0;
}

struct limit_scan {
	uint64_t *ids;
	size_t n, cap;
};

/* Level-0 qgroups with an exclusive-bytes limit (the kind btrfs_quota_set makes). */
static int
collect_limited(void *arg, const struct btrfs_ioctl_search_header *h, const void *data)
{
	struct limit_scan *l = arg;
	if (h->type != BTRFS_QGROUP_LIMIT_KEY || h->len < sizeof(struct btrfs_qgroup_limit_item) ||
	    h->offset >> 48 != 0)
		return 0;
	uint64_t flags =
		le64_at((const char *)data + offsetof(struct btrfs_qgroup_limit_item, flags));
	if (!(flags & BTRFS_QGROUP_LIMIT_MAX_EXCL))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		uint64_t *v = realloc(l->ids, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->ids = v;
		l->cap = cap;
	}
	l->ids[l->n++] = h->offset;
	return 0;
}

/*
 * A qgroup with a limit whose subvolume is gone (deleted and dropped). Simple
 * quotas free such qgroups themselves; full qgroups keep them.
 */
static int
btrfs_quota_leaks(struct snap_store *s, bool repair, snap_quota_leak_fn fn, void *arg,
		  struct sc_err *err)
{
	struct limit_scan l = {0};
	const struct btrfs_ioctl_search_key k = {
		.tree_id = BTRFS_QUOTA_TREE_OBJECTID,
		.min_type = BTRFS_QGROUP_LIMIT_KEY,
		.max_type = BTRFS_QGROUP_LIMIT_KEY,
		.max_offset = UINT64_MAX,
	};
	int r = search_once(s->root_fd, &k, collect_limited, &l);
	if (r == -ENOENT)
		r = 0; /* quotas are off: no quota tree */
	for (size_t i = 0; r >= 0 && i < l.n; i++) {
		struct btrfs_util_subvolume_info info;
		enum btrfs_util_error e = btrfs_util_subvolume_info_fd(s->root_fd, l.ids[i], &info);
		if (e != BTRFS_UTIL_ERROR_SUBVOLUME_NOT_FOUND)
			continue; /* there, or still being dropped */
		char what[64], detail[160] = "a limit on a subvolume that is gone";
		snprintf(what, sizeof(what), "qgroup 0/%" PRIu64, l.ids[i]);
		bool freed = false;
		if (repair) {
			struct btrfs_ioctl_qgroup_create_args a = {.create = 0,
								   .qgroupid = l.ids[i]};
			freed = ioctl(s->root_fd, BTRFS_IOC_QGROUP_CREATE, &a) == 0;
			if (!freed)
				snprintf(detail, sizeof(detail),
					 "a limit on a subvolume that is gone; cannot free it: %s",
					 strerror(errno));
		}
		fn(arg, what, detail, freed);
	}
	free(l.ids);
	if (r < 0)
		return r == -ENOMEM ? sc_err_set(err, r, "out of memory")
				    : sc_err_setsys(err, r, "cannot read the qgroups under '%s'",
						    s->root);
	return 0;
}

const struct snap_driver snap_driver_btrfs = {
	.version = SNAP_DRIVER_VERSION,
	.name = "btrfs",
	.probe = btrfs_probe,
	.prepare = btrfs_prepare,
	.mounts = btrfs_mounts,
	.commit = btrfs_commit,
	.remove = btrfs_remove,
	.quota_set = btrfs_quota_set,
	.quota_used = btrfs_quota_used,
	.quota_leaks = btrfs_quota_leaks,
};
