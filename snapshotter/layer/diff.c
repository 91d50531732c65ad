/*
 * Layer diff: walks a tree (and, for the native driver, its parent's tree
 * beside it) in sorted order and writes the changes as a tar (tar-write.c)
 * into the compressing writer.
 *
 * Three readings of the same walk:
 *  - full:    every entry of dir (a rootfs tar, or a first layer);
 *  - overlay: dir is an overlay upper directory: whiteout devices (char
 *             0/0) become ".wh.NAME", a directory with the opaque xattr gets
 *             ".wh..wh..opq" right after it;
 *  - compare: dir against parent_dir (native and btrfs drivers): new or
 *             changed entries are written with their parent directories,
 *             entries only in the parent become whiteouts. On btrfs, an inode
 *             the snapshot still shares with its parent is unchanged unless
 *             the subvolume's tree says it (or something below it) was
 *             written, and a written one changed if its ctime did: unchanged
 *             subtrees are never opened.
 * Names in a directory are sorted by the name written, so the order (and,
 * with times clamped to SOURCE_DATE_EPOCH, the bytes) depend only on the
 * tree. Times are whole seconds and owner names are left out for the same
 * reason. Hard links within the layer are written as links to the first
 * path written.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cleanup.h"
#include "content.h"
#include "layer-internal.h"
#include "log.h"
#include "store-internal.h"
#include "util.h"

#define WH_PREFIX	     ".wh."
#define WH_OPAQUE	     ".wh..wh..opq"
#define OVL_XATTR	     "trusted.overlay."
#define OVL_OPAQUE	     "trusted.overlay.opaque"
#define XATTR_LIST_MAX_BYTES 65536
#define MAX_DEPTH	     1024 /* folders nested in a layer */

void
snap_layer_diff_opts_init(struct snap_layer_diff_opts *opts)
{
	*opts = (struct snap_layer_diff_opts){
		.compression = SNAP_COMPRESSION_GZIP,
		.level = -1,
		.source_date_epoch = -1,
		.oci_media_types = true,
	};
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	if (sde && *sde) {
		char *end;
		errno = 0;
		long long v = strtoll(sde, &end, 10);
		if (!errno && !*end && v >= 0)
			opts->source_date_epoch = v;
	}
}

int
snap_layer_chain_id(const char *parent_chain_id, const char *diff_id,
		    char ret[SC_DIGEST_STR_LEN + 1])
{
	if (!parent_chain_id) {
		memcpy(ret, diff_id, SC_DIGEST_STR_LEN + 1);
		return 0;
	}
	char buf[2 * SC_DIGEST_STR_LEN + 2];
	int n = snprintf(buf, sizeof(buf), "%s %s", parent_chain_id, diff_id);
	return sc_sha256_buf(buf, (size_t)n, ret);
}

/* Hard links seen: inode -> first path written. Open addressing. */
struct link_slot {
	dev_t dev;
	ino_t ino;
	char *path;
};

struct links {
	struct link_slot *v;
	size_t cap, n;
};

static void
links_clear(struct links *l)
{
	for (size_t i = 0; i < l->cap; i++)
		free(l->v[i].path);
	free(l->v);
	*l = (struct links){0};
}

static struct link_slot *
links_find(struct links *l, dev_t dev, ino_t ino)
{
	if (!l->cap)
		return NULL;
	size_t i = (size_t)(ino * 0x9e3779b97f4a7c15ull) & (l->cap - 1);
	while (l->v[i].path) {
		if (l->v[i].ino == ino && l->v[i].dev == dev)
			return &l->v[i];
		i = (i + 1) & (l->cap - 1);
	}
	return &l->v[i];
}

static int
links_add(struct links *l, dev_t dev, ino_t ino, const char *path)
{
	if ((l->n + 1) * 2 > l->cap) {
		struct links nl = {.cap = l->cap ? l->cap * 2 : 64};
		nl.v = calloc(nl.cap, sizeof(*nl.v));
		if (!nl.v)
			return -ENOMEM;
		for (size_t i = 0; i < l->cap; i++)
			if (l->v[i].path)
				*links_find(&nl, l->v[i].dev, l->v[i].ino) = l->v[i];
		nl.n = l->n;
		free(l->v);
		*l = nl;
	}
	struct link_slot *s = links_find(l, dev, ino);
	s->path = strdup(path);
	if (!s->path)
		return -ENOMEM;
	s->dev = dev;
	s->ino = ino;
	l->n++;
	return 0;
}

enum walk_mode { WALK_FULL, WALK_OVERLAY, WALK_COMPARE };

struct pending_dir {
	size_t plen; /* length of its path in w->path */
	struct stat st;
	int fd;
	bool written;
};

#define XATTRS_MAX 256 /* xattrs on one entry */

struct walker {
	enum walk_mode mode;
	const struct snap_layer_diff_opts *opts;
	struct tar_writer *t;
	struct tar_entry cur; /* the entry being written */
	struct layer_zout *z;
	struct sc_err *err;
	uint8_t *buf;
	char path[SNAP_LAYER_PATH_MAX + NAME_MAX + 2];
	struct pending_dir stack[MAX_DEPTH + 1];
	size_t depth;
	struct links links;
	const struct snap_btrfs_changes *changes; /* btrfs: what the snapshot wrote */
	uint64_t entries;
	/* the current entry's xattrs: names in xnames, values one after another in xvals */
	char xnames[XATTR_LIST_MAX_BYTES];
	struct tar_xattr xa[XATTRS_MAX];
	size_t xoff[XATTRS_MAX];
	struct sc_buf xvals;
};

static time_t
clamp_time(const struct walker *w, time_t t)
{
	if (w->opts->source_date_epoch >= 0 && t > w->opts->source_date_epoch)
		return (time_t)w->opts->source_date_epoch;
	return t;
}

static int
xattr_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Adds fd's xattrs (sorted, never trusted.overlay.*) to the current entry. */
static int
add_xattrs(struct walker *w, int fd, const char *path)
{
	ssize_t n = flistxattr(fd, w->xnames, sizeof(w->xnames));
	if (n < 0) {
		if (errno == ENOTSUP || errno == EOPNOTSUPP)
			return 0;
		return sc_err_setsys(w->err, -errno, "cannot list xattrs of '%s'", path);
	}
	const char *names[XATTRS_MAX];
	size_t nn = 0;
	for (char *p = w->xnames; p < w->xnames + n; p += strlen(p) + 1) {
		if (strncmp(p, OVL_XATTR, strlen(OVL_XATTR)) == 0)
			continue;
		if (nn == ARRAY_SIZE(names))
			return sc_err_set(w->err, -E2BIG, "'%s' has more than %zu xattrs", path,
					  ARRAY_SIZE(names));
		names[nn++] = p;
	}
	qsort(names, nn, sizeof(names[0]), xattr_cmp);
	w->xvals.len = 0;
	for (size_t i = 0; i < nn; i++) {
		char val[XATTR_SIZE_MAX];
		ssize_t vl = fgetxattr(fd, names[i], val, sizeof(val));
		if (vl < 0)
			return sc_err_setsys(w->err, -errno, "cannot read xattr '%s' of '%s'",
					     names[i], path);
		w->xoff[i] = w->xvals.len;
		if (sc_buf_put(&w->xvals, val, (size_t)vl) < 0)
			return sc_err_set(w->err, -ENOMEM, "out of memory");
		w->xa[i] = (struct tar_xattr){.name = names[i], .len = (size_t)vl};
	}
	/* the values' buffer may have moved while it grew: point at it only now */
	for (size_t i = 0; i < nn; i++)
		w->xa[i].value = w->xvals.data + w->xoff[i];
	w->cur.xattrs = w->xa;
	w->cur.nxattrs = nn;
	return 0;
}

/* Sets what every entry has: name, mode, owner, time. */
static void
entry_base(struct walker *w, const char *path, const struct stat *st)
{
	w->cur = (struct tar_entry){
		.path = path,
		.mode = st->st_mode,
		.uid = st->st_uid,
		.gid = st->st_gid,
		.mtime = clamp_time(w, st->st_mtim.tv_sec),
	};
}

static int
write_header(struct walker *w, const char *path)
{
	int r = tar_write_header(w->t, &w->cur, w->err);
	if (r < 0)
		return sc_err_prefix(w->err, r, "'%s'", path);
	w->entries++;
	return 0;
}

/* Writes the parent directories of the current path that are not written yet. */
static int flush_pending(struct walker *w);

static int
write_dir(struct walker *w, size_t level)
{
	struct pending_dir *d = &w->stack[level];
	char save = w->path[d->plen];
	w->path[d->plen] = '\0';
	entry_base(w, w->path, &d->st);
	int r = add_xattrs(w, d->fd, w->path);
	if (r >= 0)
		r = write_header(w, w->path);
	d->written = true;
	if (r >= 0 && w->mode == WALK_OVERLAY) {
		char v[4];
		ssize_t n = fgetxattr(d->fd, OVL_OPAQUE, v, sizeof(v));
		if (n == 1 && v[0] == 'y') {
			char opq[sizeof(w->path) + sizeof(WH_OPAQUE) + 1];
			snprintf(opq, sizeof(opq), "%s/%s", w->path, WH_OPAQUE);
			struct stat st = {.st_mode = S_IFREG, .st_mtim = d->st.st_mtim};
			entry_base(w, opq, &st);
			r = write_header(w, opq);
		}
	}
	w->path[d->plen] = save;
	return r;
}

static int
flush_pending(struct walker *w)
{
	/* Level 0 is the root: never written. */
	for (size_t i = 1; i <= w->depth; i++) {
		if (w->stack[i].written)
			continue;
		int r = write_dir(w, i);
		if (r < 0)
			return r;
	}
	return 0;
}

static int
write_whiteout(struct walker *w, const char *dirpath, const char *name)
{
	int r = flush_pending(w);
	if (r < 0)
		return r;
	char p[sizeof(w->path) + sizeof(WH_PREFIX) + NAME_MAX + 2];
	snprintf(p, sizeof(p), "%s%s" WH_PREFIX "%s", dirpath, *dirpath ? "/" : "", name);
	struct stat st = {.st_mode = S_IFREG, .st_mtim = w->stack[w->depth].st.st_mtim};
	entry_base(w, p, &st);
	return write_header(w, p);
}

/* Writes one non-directory entry at w->path (name relative to dfd). */
static int
write_file(struct walker *w, int dfd, const char *name, const struct stat *st)
{
	int r = flush_pending(w);
	if (r < 0)
		return r;
	const char *path = w->path;
	entry_base(w, path, st);
	if (S_ISREG(st->st_mode) && st->st_nlink > 1) {
		struct link_slot *s = links_find(&w->links, st->st_dev, st->st_ino);
		if (s && s->path) {
			w->cur.link = s->path;
			w->cur.hardlink = true;
			return write_header(w, path);
		}
		if (links_add(&w->links, st->st_dev, st->st_ino, path) < 0)
			return sc_err_set(w->err, -ENOMEM, "out of memory");
	}
	if (S_ISLNK(st->st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlinkat(dfd, name, target, sizeof(target) - 1);
		if (n < 0)
			return sc_err_setsys(w->err, -errno, "cannot read symlink '%s'", path);
		target[n] = '\0';
		w->cur.link = target;
		return write_header(w, path);
	}
	if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
		w->cur.devmajor = major(st->st_rdev);
		w->cur.devminor = minor(st->st_rdev);
		return write_header(w, path);
	}
	if (S_ISFIFO(st->st_mode))
		return write_header(w, path);
	if (S_ISSOCK(st->st_mode))
		return 0; /* sockets cannot be stored in a tar; like tar(1), skip them */
	_cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return sc_err_setsys(w->err, -errno, "cannot open '%s'", path);
	w->cur.size = (uint64_t)st->st_size;
	r = add_xattrs(w, fd, path);
	if (r < 0)
		return r;
	r = write_header(w, path);
	if (r < 0)
		return r;
	uint64_t left = (uint64_t)st->st_size;
	while (left > 0) {
		ssize_t n = SC_RETRY_EINTR(
			read(fd, w->buf, left < LAYER_BUF_SIZE ? left : LAYER_BUF_SIZE));
		if (n < 0)
			return sc_err_setsys(w->err, -errno, "cannot read '%s'", path);
		if (n == 0)
			return sc_err_set(w->err, -EIO, "'%s' shrank while it was read", path);
		r = tar_write_data(w->t, w->buf, (size_t)n, w->err);
		if (r < 0)
			return r;
		left -= (uint64_t)n;
	}
	return 0;
}

struct child {
	char *name;
	char *out; /* the name sorted by: ".wh.NAME" for whiteouts */
	struct stat st;
	bool in_cur, in_par;
	struct stat pst;
};

static int
child_cmp(const void *a, const void *b)
{
	const struct child *x = a, *y = b;
	return strcmp(x->out, y->out);
}

static void
children_free(struct child *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		if (v[i].out != v[i].name)
			free(v[i].out);
	}
	free(v);
}

static int
children_add(struct child **v, size_t *n, size_t *cap, const char *name)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 32;
		struct child *p = realloc(*v, nc * sizeof(*p));
		if (!p)
			return -ENOMEM;
		*v = p;
		*cap = nc;
	}
	(*v)[*n] = (struct child){.name = strdup(name)};
	if (!(*v)[*n].name)
		return -ENOMEM;
	(*v)[*n].out = (*v)[*n].name;
	(*n)++;
	return 0;
}

/* Lists dfd's names (and pdfd's, merged, when pdfd >= 0) with their stats. */
static int
list_children(struct walker *w, int dfd, int pdfd, struct child **ret, size_t *ret_n)
{
	struct child *v = NULL;
	size_t n = 0, cap = 0;
	int r = 0;
	for (int side = 0; side < 2 && r >= 0; side++) {
		int fd = side == 0 ? dfd : pdfd;
		if (fd < 0)
			continue;
		int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
		if (!d) {
			r = sc_err_setsys(w->err, -errno, "cannot read folder '%s'",
					  *w->path ? w->path : "/");
			if (dup_fd >= 0)
				close(dup_fd);
			break;
		}
		rewinddir(d);
		struct dirent *de;
		size_t first_parent = n;
		while ((de = readdir(d))) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			struct child *c = NULL;
			if (side == 1 && first_parent > 0) { /* an empty first side has no array */
				struct child key = {.out = de->d_name};
				c = bsearch(&key, v, first_parent, sizeof(*v), child_cmp);
			}
			if (!c) {
				r = children_add(&v, &n, &cap, de->d_name);
				if (r < 0)
					break;
				c = &v[n - 1];
			}
			if (fstatat(fd, de->d_name, side == 0 ? &c->st : &c->pst,
				    AT_SYMLINK_NOFOLLOW) < 0) {
				r = sc_err_setsys(w->err, -errno, "cannot stat '%s/%s'", w->path,
						  de->d_name);
				break;
			}
			if (side == 0)
				c->in_cur = true;
			else
				c->in_par = true;
		}
		closedir(d);
		if (side == 0 && r >= 0 && pdfd >= 0 && n > 1) {
			/* Sort the first side by name so the merge can search it. */
			qsort(v, n, sizeof(*v), child_cmp);
		}
	}
	if (r < 0) {
		children_free(v, n);
		return r == -ENOMEM ? sc_err_set(w->err, r, "out of memory") : r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static bool
is_whiteout_dev(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static bool
xattrs_differ(int dfd, int pdfd, const char *name, bool dir)
{
	char a[4096], b[4096];
	_cleanup_close_ int f1 =
		openat(dfd, name,
		       O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | (dir ? O_DIRECTORY : 0));
	_cleanup_close_ int f2 =
		openat(pdfd, name,
		       O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | (dir ? O_DIRECTORY : 0));
	if (f1 < 0 || f2 < 0)
		return true;
	ssize_t n1 = flistxattr(f1, a, sizeof(a)), n2 = flistxattr(f2, b, sizeof(b));
	if (n1 != n2 || (n1 > 0 && memcmp(a, b, (size_t)n1) != 0))
		return true;
	for (char *p = a; n1 > 0 && p < a + n1; p += strlen(p) + 1) {
		char v1[1024], v2[1024];
		ssize_t l1 = fgetxattr(f1, p, v1, sizeof(v1)),
			l2 = fgetxattr(f2, p, v2, sizeof(v2));
		if (l1 != l2 || (l1 > 0 && memcmp(v1, v2, (size_t)l1) != 0))
			return true;
	}
	return false;
}

static bool
meta_differs(const struct stat *a, const struct stat *b)
{
	return a->st_mode != b->st_mode || a->st_uid != b->st_uid || a->st_gid != b->st_gid ||
	       a->st_mtim.tv_sec != b->st_mtim.tv_sec || a->st_mtim.tv_nsec != b->st_mtim.tv_nsec;
}

static bool
changed(int dfd, int pdfd, const struct child *c)
{
	const struct stat *a = &c->st, *b = &c->pst;
	if ((a->st_mode & S_IFMT) != (b->st_mode & S_IFMT) || meta_differs(a, b))
		return true;
	if (S_ISDIR(a->st_mode))
		return xattrs_differ(dfd, pdfd, c->name, true);
	if (a->st_size != b->st_size || a->st_rdev != b->st_rdev)
		return true;
	if (S_ISLNK(a->st_mode)) {
		char t1[PATH_MAX], t2[PATH_MAX];
		ssize_t n1 = readlinkat(dfd, c->name, t1, sizeof(t1));
		ssize_t n2 = readlinkat(pdfd, c->name, t2, sizeof(t2));
		return n1 != n2 || n1 < 0 || memcmp(t1, t2, (size_t)n1) != 0;
	}
	if (S_ISREG(a->st_mode))
		return xattrs_differ(dfd, pdfd, c->name, false);
	return false;
}

static int walk_dir(struct walker *w, int dfd, int pdfd);

static int
walk_child(struct walker *w, int dfd, int pdfd, struct child *c, size_t plen)
{
	size_t nlen = strlen(c->name);
	if (plen + 1 + nlen > SNAP_LAYER_PATH_MAX)
		return sc_err_set(w->err, -ENAMETOOLONG, "path '%.100s/%s' is longer than %d bytes",
				  w->path, c->name, SNAP_LAYER_PATH_MAX);
	if (!c->in_cur)
		return write_whiteout(w, w->path, c->name);
	if (w->mode == WALK_OVERLAY && is_whiteout_dev(&c->st))
		return write_whiteout(w, w->path, c->name);
	bool both = c->in_par && pdfd >= 0;
	bool same_type = both && (c->st.st_mode & S_IFMT) == (c->pst.st_mode & S_IFMT);
	/* btrfs: the same inode in the snapshot and its parent. */
	bool shared = same_type && w->changes && c->st.st_ino == c->pst.st_ino;
	if (shared && !snap_btrfs_changes_touched(w->changes, c->st.st_ino))
		return 0;
	bool differs = false;
	if (shared)
		differs = c->st.st_ctim.tv_sec != c->pst.st_ctim.tv_sec ||
			  c->st.st_ctim.tv_nsec != c->pst.st_ctim.tv_nsec;
	else if (both && same_type && w->changes)
		differs = true; /* btrfs: another inode under the name, so replaced */
	else if (both)
		differs = changed(dfd, pdfd, c);
	if (both && !S_ISDIR(c->st.st_mode) && !differs)
		return 0;

	if (plen)
		w->path[plen++] = '/';
	memcpy(w->path + plen, c->name, nlen + 1);
	int r;
	if (S_ISDIR(c->st.st_mode)) {
		if (w->depth + 1 > MAX_DEPTH)
			return sc_err_set(w->err, -ELOOP,
					  "'%.200s' is nested deeper than %d folders", w->path,
					  MAX_DEPTH);
		int fd = openat(dfd, c->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return sc_err_setsys(w->err, -errno, "cannot open folder '%s'", w->path);
		_cleanup_close_ int pfd = -EBADF;
		if (both && same_type) {
			pfd = openat(pdfd, c->name,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (pfd < 0) {
				close(fd);
				return sc_err_setsys(w->err, -errno,
						     "cannot open parent folder '%s'", w->path);
			}
		}
		struct pending_dir *d = &w->stack[++w->depth];
		*d = (struct pending_dir){.plen = plen + nlen, .st = c->st, .fd = fd};
		/* Written now unless it is unchanged in compare mode; then only with a change
		 * inside. */
		r = 0;
		if (!(both && same_type) || differs)
			r = flush_pending(w);
		if (r >= 0)
			r = walk_dir(w, fd, pfd);
		close(fd);
		w->depth--;
	} else {
		r = write_file(w, dfd, c->name, &c->st);
	}
	w->path[plen ? plen - 1 : 0] = '\0';
	return r;
}

static int
walk_dir(struct walker *w, int dfd, int pdfd)
{
	struct child *v = NULL;
	size_t n = 0;
	int r = list_children(w, dfd, pdfd, &v, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r >= 0; i++) {
		bool wh = !v[i].in_cur || (w->mode == WALK_OVERLAY && is_whiteout_dev(&v[i].st));
		if (wh) {
			size_t l = strlen(v[i].name) + sizeof(WH_PREFIX);
			v[i].out = malloc(l);
			if (!v[i].out) {
				v[i].out = v[i].name;
				r = -ENOMEM;
				break;
			}
			snprintf(v[i].out, l, WH_PREFIX "%s", v[i].name);
		}
	}
	if (r >= 0 && n > 1) /* an empty folder has no array to sort */
		qsort(v, n, sizeof(*v), child_cmp);
	size_t plen = strlen(w->path);
	for (size_t i = 0; i < n && r >= 0; i++)
		r = walk_child(w, dfd, pdfd, &v[i], plen);
	children_free(v, n);
	if (r == -ENOMEM && !sc_err_isset(w->err))
		sc_err_set(w->err, r, "out of memory");
	return r;
}

/* snap_layer_write_tree, hashing what hash says (LAYER_HASH_*). */
static int
write_tree(const char *dir, const char *parent_dir, bool overlay,
	   const struct snap_btrfs_changes *changes, const struct snap_layer_diff_opts *opts,
	   unsigned hash, snap_layer_sink_fn sink, void *sink_arg, struct snap_layer_desc *ret,
	   struct sc_err *err)
{
	struct snap_layer_diff_opts defaults;
	if (!opts) {
		snap_layer_diff_opts_init(&defaults);
		opts = &defaults;
	}
	struct walker *w = calloc(1, sizeof(*w));
	if (!w)
		return sc_err_set(err, -ENOMEM, "out of memory");
	w->mode = overlay ? WALK_OVERLAY : parent_dir ? WALK_COMPARE : WALK_FULL;
	w->opts = opts;
	w->err = err;
	w->changes = parent_dir ? changes : NULL;
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int pdfd = -EBADF;
	int r = 0;
	if (dfd < 0)
		r = sc_err_setsys(err, -errno, "cannot open '%s'", dir);
	if (r >= 0 && w->mode == WALK_COMPARE) {
		pdfd = open(parent_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pdfd < 0)
			r = sc_err_setsys(err, -errno, "cannot open '%s'", parent_dir);
	}
	if (r >= 0)
		r = layer_zout_new(opts->compression, opts->level, hash, sink, sink_arg, &w->z,
				   err);
	w->buf = malloc(LAYER_BUF_SIZE);
	if (r >= 0 && (!w->buf || tar_writer_new(w->z, &w->t) < 0))
		r = sc_err_set(err, -ENOMEM, "out of memory");
	if (r >= 0) {
		struct stat st;
		if (fstat(dfd, &st) < 0)
			r = sc_err_setsys(err, -errno, "cannot stat '%s'", dir);
		w->stack[0] = (struct pending_dir){.st = st, .fd = dfd, .written = true};
	}
	if (r >= 0)
		r = walk_dir(w, dfd, pdfd);
	if (r >= 0)
		r = tar_write_end(w->t, err);
	if (r >= 0) {
		struct snap_layer_desc d = {.entries = w->entries};
		r = layer_zout_finish(w->z, d.diff_id, d.digest, &d.tar_size, &d.size, err);
		d.media_type =
			snap_compression_media_type(opts->compression, opts->oci_media_types);
		if (r >= 0 && ret)
			*ret = d;
	}
	tar_writer_free(w->t);
	sc_buf_free(&w->xvals);
	layer_zout_free(w->z);
	links_clear(&w->links);
	free(w->buf);
	free(w);
	return r;
}

int
snap_layer_write_tree(const char *dir, const char *parent_dir, bool overlay,
		      const struct snap_layer_diff_opts *opts, snap_layer_sink_fn sink,
		      void *sink_arg, struct snap_layer_desc *ret, struct sc_err *err)
{
	unsigned hash = ret ? LAYER_HASH_TAR | LAYER_HASH_OUT : 0;
	return write_tree(dir, parent_dir, overlay, NULL, opts, hash, sink, sink_arg, ret, err);
}

static int
content_sink(void *arg, const void *data, size_t len, struct sc_err *err)
{
	return snap_content_write(arg, data, len, err);
}

/* ROOT/snapshots/ID/fs of key; ret_parent gets the parent's key (or NULL). */
static int
snapshot_fs(struct snap_store *s, const char *key, char *buf, size_t len, enum snap_kind *ret_kind,
	    char **ret_parent, struct sc_err *err)
{
	struct snap_info info = {0};
	int r = snap_snapshot_stat(s, key, &info, err);
	if (r < 0)
		return r;
	snprintf(buf, len, "%s/snapshots/%" PRIu64 "/fs", snap_store_root(s), info.id);
	if (ret_kind)
		*ret_kind = info.kind;
	if (ret_parent)
		*ret_parent = TAKE_PTR(info.parent);
	snap_info_clear(&info);
	return 0;
}

int
snap_layer_diff(struct snap_store *s, const char *key, const struct snap_layer_diff_opts *opts,
		struct snap_layer_desc *ret, struct sc_err *err)
{
	char dir[PATH_MAX], pdir[PATH_MAX];
	enum snap_kind kind;
	_cleanup_free_ char *parent = NULL;
	int r = snapshot_fs(s, key, dir, sizeof(dir), &kind, &parent, err);
	if (r < 0)
		return sc_err_prefix(err, r, "diff '%s'", key);
	if (kind == SNAP_KIND_VIEW)
		return sc_err_set(err, -EINVAL,
				  "diff '%s': a view has no changes of its own; diff an active or "
				  "committed snapshot",
				  key);
	const char *driver = snap_store_driver_name(s);
	bool overlay = strcmp(driver, "overlay") == 0;
	if (!overlay && strcmp(driver, "native") != 0 && strcmp(driver, "btrfs") != 0)
		return sc_err_set(err, -EOPNOTSUPP, "diff '%s': the %s driver cannot diff yet", key,
				  driver);
	_cleanup_(snap_btrfs_changes_freep) struct snap_btrfs_changes *changes = NULL;
	if (parent && !overlay) {
		r = snapshot_fs(s, parent, pdir, sizeof(pdir), NULL, NULL, err);
		if (r >= 0 && strcmp(driver, "btrfs") == 0) {
			r = snap_btrfs_changes_new(dir, &changes, err);
			if (r == -E2BIG) { /* a file with more links than it follows */
				sc_debug("diff '%s': comparing the whole tree: %s", key,
					 sc_err_msg(err));
				sc_err_clear(err);
				r = 0;
			}
		}
		if (r < 0)
			return sc_err_prefix(err, r, "diff '%s'", key);
	}
	struct snap_content_writer *cw = NULL;
	r = snap_content_writer_new(s, NULL, -1, &cw, err);
	if (r < 0)
		return sc_err_prefix(err, r, "diff '%s'", key);
	/* The content writer hashes what it stores: that digest is the layer's. */
	struct snap_layer_desc d;
	r = write_tree(dir, parent && !overlay ? pdir : NULL, overlay, changes, opts,
		       LAYER_HASH_TAR, content_sink, cw, &d, err);
	if (r < 0) {
		snap_content_abort(cw);
		return sc_err_prefix(err, r, "diff '%s'", key);
	}
	r = snap_content_commit(cw, d.media_type, d.digest, err);
	if (r < 0)
		return sc_err_prefix(err, r, "diff '%s'", key);
	if (ret)
		*ret = d;
	return 0;
}
