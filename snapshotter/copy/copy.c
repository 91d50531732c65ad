/*
 * The tree walk of the copy engine (see copy.h for the contract).
 *
 * The walk is iterative: a stack of directories still to scan, so a deep tree
 * costs heap, not C stack, and at most one source directory is open at a
 * time. Every path is relative to the two roots; source opens go through
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so a symlink swapped into
 * the source cannot lead the copy outside it.
 *
 * Order of work, which the result depends on:
 *  1. A directory is created (mode 0700, so the copy can write into it) when
 *     its parent is scanned; its entries are read, sorted by inode (disk
 *     order, for a cold cache) and each stat'ed and created.
 *  2. Directories, symlinks and special files are made directly. Regular
 *     files go through copy_reg(): reflink when the file systems may allow it,
 *     else the io_uring pipeline, else copy_file_range / read-write.
 *  3. Hard links: the first path of an inode is copied (its destination file
 *     created synchronously), later paths are linkat() to it.
 *  4. When the pipeline is drained, directories get owner, mode, xattrs and
 *     times, deepest first: after this nothing changes their mtime, and a
 *     parent's restrictive mode cannot block work below it.
 *  5. One syncfs() of the destination.
 * snap_copy_entries() is the same walk with several roots: the entries it
 * is given start the walk as the root folder's would, and the two folders
 * they are in keep their own metadata.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cleanup.h"
#include "copy-internal.h"
#include "log.h"

struct dir_rec {
	char *rel;
	struct stat st;
	unsigned depth;
};

struct link_rec {
	uint64_t dev, ino;
	char *rel; /* NULL: empty slot */
};

struct walk {
	struct copy_ctx *ctx;
	struct dir_rec *dirs; /* every directory made, in creation order */
	size_t ndirs, dirs_cap;
	size_t *pending; /* indices into dirs still to scan */
	size_t npending, pending_cap;
	struct link_rec *links; /* open addressing, power-of-two size */
	size_t nlinks, links_cap;
	uint64_t dst_root_dev, dst_root_ino;
};

struct entry {
	ino_t ino;
	char *name;
};

static int
oom(struct copy_ctx *ctx)
{
	return sc_err_set(ctx->err, -ENOMEM, "out of memory");
}

static int
grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap * 2 : 64;
	while (n < need)
		n *= 2;
	void *q = reallocarray(*p, n, size);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = n;
	return 0;
}

static size_t
link_hash(uint64_t dev, uint64_t ino)
{
	uint64_t h = (ino ^ (dev << 32) ^ (dev >> 32)) * 0x9e3779b97f4a7c15ull;
	return (size_t)(h >> 17);
}

static const char *
link_find(struct walk *w, const struct stat *st)
{
	if (w->links_cap == 0)
		return NULL;
	size_t mask = w->links_cap - 1;
	for (size_t i = link_hash(st->st_dev, st->st_ino) & mask; w->links[i].rel;
	     i = (i + 1) & mask)
		if (w->links[i].dev == st->st_dev && w->links[i].ino == st->st_ino)
			return w->links[i].rel;
	return NULL;
}

static int
link_add(struct walk *w, const struct stat *st, const char *rel)
{
	if ((w->nlinks + 1) * 2 > w->links_cap) {
		size_t ncap = w->links_cap ? w->links_cap * 2 : 64;
		struct link_rec *n = calloc(ncap, sizeof(*n));
		if (!n)
			return oom(w->ctx);
		for (size_t i = 0; i < w->links_cap; i++) {
			if (!w->links[i].rel)
				continue;
			size_t j = link_hash(w->links[i].dev, w->links[i].ino) & (ncap - 1);
			while (n[j].rel)
				j = (j + 1) & (ncap - 1);
			n[j] = w->links[i];
		}
		free(w->links);
		w->links = n;
		w->links_cap = ncap;
	}
	char *copy = strdup(rel);
	if (!copy)
		return oom(w->ctx);
	size_t mask = w->links_cap - 1;
	size_t i = link_hash(st->st_dev, st->st_ino) & mask;
	while (w->links[i].rel)
		i = (i + 1) & mask;
	w->links[i] = (struct link_rec){.dev = st->st_dev, .ino = st->st_ino, .rel = copy};
	w->nlinks++;
	return 0;
}

static void
walk_done(struct walk *w)
{
	for (size_t i = 0; i < w->ndirs; i++)
		free(w->dirs[i].rel);
	free(w->dirs);
	free(w->pending);
	for (size_t i = 0; i < w->links_cap; i++)
		free(w->links[i].rel);
	free(w->links);
}

static int
dir_add(struct walk *w, const char *rel, const struct stat *st, unsigned depth)
{
	if (grow((void **)&w->dirs, &w->dirs_cap, w->ndirs + 1, sizeof(*w->dirs)) < 0 ||
	    grow((void **)&w->pending, &w->pending_cap, w->npending + 1, sizeof(*w->pending)) < 0)
		return oom(w->ctx);
	char *copy = strdup(rel);
	if (!copy)
		return oom(w->ctx);
	w->dirs[w->ndirs] = (struct dir_rec){.rel = copy, .st = *st, .depth = depth};
	w->pending[w->npending++] = w->ndirs++;
	return 0;
}

static int
uring_get(struct copy_ctx *ctx)
{
	if (ctx->uring || ctx->uring_off)
		return ctx->uring ? 0 : -EOPNOTSUPP;
	int r = copy_uring_new(ctx, &ctx->uring);
	if (r < 0) {
		/* Remembered for this copy only: seccomp applies per process, not per fs. */
		ctx->uring_off = true;
		ctx->bad_valid = false;
	}
	return r;
}

/*
 * A regular file: reflink first where it may work, else the io_uring
 * pipeline (small files, or any size when copy_file_range does not work
 * here), else copy_file_range / read-write. src_dirfd/name open the source
 * for the synchronous paths; the pipeline opens by rel below the roots.
 * sync_create: the destination must exist on return (a hard link follows).
 */
static int
copy_reg(struct copy_ctx *ctx, int src_dirfd, const char *name, const char *rel,
	 const struct stat *st, const struct copy_fs *fs, bool sync_create)
{
	unsigned off = copy_methods_off(ctx, fs);
	bool try_reflink = st->st_size > 0 && !(off & (1u << SNAP_COPY_REFLINK));
	bool uring_fits =
		!(off & (1u << SNAP_COPY_URING)) && !copy_is_sparse(st) &&
		((uint64_t)st->st_size <= COPY_URING_MAX_FILE || (off & (1u << SNAP_COPY_RANGE)));

	if (uring_fits && !try_reflink && !sync_create && uring_get(ctx) == 0)
		return copy_uring_add(ctx->uring, rel, st, -EBADF, -EBADF);

	_cleanup_close_ int sfd = openat(src_dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd < 0)
		return sc_err_setsys(ctx->err, -errno, "opening " COPY_PATH_FMT,
				     COPY_PATH_ARGS(ctx->src_name, rel));
	_cleanup_close_ int dfd = copy_open_beneath(
		ctx->dst_root, rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (dfd < 0)
		return sc_err_setsys(ctx->err, -errno, "creating " COPY_PATH_FMT,
				     COPY_PATH_ARGS(ctx->dst_name, rel));

	enum snap_copy_method method = SNAP_COPY_RW;
	bool done = st->st_size == 0;
	if (!done && try_reflink) {
		int r = copy_reflink(ctx, sfd, dfd, fs, rel);
		if (r < 0)
			return r;
		if (r > 0) {
			method = SNAP_COPY_REFLINK;
			done = true;
		} else {
			off = copy_methods_off(ctx, fs);
			uring_fits = uring_fits && ((uint64_t)st->st_size <= COPY_URING_MAX_FILE ||
						    (off & (1u << SNAP_COPY_RANGE)));
			if (uring_fits && uring_get(ctx) == 0)
				return copy_uring_add(ctx->uring, rel, st, TAKE_FD(sfd),
						      TAKE_FD(dfd));
		}
	}
	if (!done) {
		int r = copy_data_sync(ctx, sfd, dfd, st, fs, rel, &method);
		if (r < 0)
			return r;
	}
	int r = copy_attrs_fd(ctx, sfd, dfd, st, rel);
	if (r < 0)
		return r;
	ctx->stats.files++;
	ctx->stats.bytes += (uint64_t)st->st_size;
	if (st->st_size > 0)
		ctx->stats.by_method[method]++;
	return 0;
}

static int
copy_symlink(struct copy_ctx *ctx, int src_dirfd, const char *name, const char *rel,
	     const struct stat *st)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(src_dirfd, name, target, sizeof(target));
	if (n < 0)
		return sc_err_setsys(ctx->err, -errno, "reading symlink " COPY_PATH_FMT,
				     COPY_PATH_ARGS(ctx->src_name, rel));
	if ((size_t)n >= sizeof(target))
		return sc_err_set(ctx->err, -ENAMETOOLONG,
				  "symlink " COPY_PATH_FMT " points to more than %d bytes",
				  COPY_PATH_ARGS(ctx->src_name, rel), PATH_MAX - 1);
	target[n] = '\0';
	if (symlinkat(target, ctx->dst_root, rel) < 0)
		return sc_err_setsys(ctx->err, -errno, "creating symlink " COPY_PATH_FMT,
				     COPY_PATH_ARGS(ctx->dst_name, rel));
	ctx->stats.symlinks++;
	return copy_attrs_path(ctx, rel, st);
}

static int
copy_special(struct copy_ctx *ctx, const char *rel, const struct stat *st)
{
	if (mknodat(ctx->dst_root, rel, (st->st_mode & S_IFMT) | 0600, st->st_rdev) < 0)
		return sc_err_setsys(ctx->err, -errno, "creating %s " COPY_PATH_FMT,
				     S_ISFIFO(st->st_mode)   ? "fifo"
				     : S_ISSOCK(st->st_mode) ? "socket"
							     : "device node",
				     COPY_PATH_ARGS(ctx->dst_name, rel));
	ctx->stats.specials++;
	return copy_attrs_path(ctx, rel, st);
}

/* One directory entry, already stat'ed; depth is the entry's own. */
static int
copy_entry(struct walk *w, int src_dirfd, const char *name, const char *rel, unsigned depth,
	   const struct stat *st, const struct copy_fs *dir_fs)
{
	struct copy_ctx *ctx = w->ctx;

	if (S_ISDIR(st->st_mode)) {
		if (st->st_dev == w->dst_root_dev && st->st_ino == w->dst_root_ino) {
			sc_debug("copy: skipping " COPY_PATH_FMT ", the copy itself",
				 COPY_PATH_ARGS(ctx->src_name, rel));
			return 0;
		}
		if (depth > SNAP_COPY_MAX_DEPTH)
			return sc_err_set(ctx->err, -ELOOP,
					  COPY_PATH_FMT " is nested more than %d directories deep",
					  COPY_PATH_ARGS(ctx->src_name, rel), SNAP_COPY_MAX_DEPTH);
		if (mkdirat(ctx->dst_root, rel, 0700) < 0)
			return sc_err_setsys(ctx->err, -errno, "creating directory " COPY_PATH_FMT,
					     COPY_PATH_ARGS(ctx->dst_name, rel));
		ctx->stats.dirs++;
		return dir_add(w, rel, st, depth);
	}

	bool linked = st->st_nlink > 1;
	if (linked) {
		const char *first = link_find(w, st);
		if (first) {
			if (linkat(ctx->dst_root, first, ctx->dst_root, rel, 0) < 0)
				return sc_err_setsys(ctx->err, -errno,
						     "linking " COPY_PATH_FMT " to '%s'",
						     COPY_PATH_ARGS(ctx->dst_name, rel), first);
			ctx->stats.hardlinks++;
			return 0;
		}
	}

	int r;
	struct copy_fs fs = *dir_fs;
	if ((uint64_t)st->st_dev != fs.dev) /* a file mount point */
		fs = (struct copy_fs){.dev = st->st_dev};
	switch (st->st_mode & S_IFMT) {
	case S_IFREG:
		r = copy_reg(ctx, src_dirfd, name, rel, st, &fs, linked);
		break;
	case S_IFLNK:
		r = copy_symlink(ctx, src_dirfd, name, rel, st);
		break;
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		r = copy_special(ctx, rel, st);
		break;
	default:
		r = sc_err_set(ctx->err, -EINVAL, COPY_PATH_FMT " has unknown file type 0%o",
			       COPY_PATH_ARGS(ctx->src_name, rel),
			       (unsigned)(st->st_mode & S_IFMT));
	}
	if (r < 0)
		return r;
	return linked ? link_add(w, st, rel) : 0;
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static void
entries_free(struct entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

/* Reads all names of dir; sorted by inode number, which is disk order on most file systems. */
static int
read_entries(struct copy_ctx *ctx, DIR *dir, const char *rel, struct entry **ret, size_t *ret_n)
{
	struct entry *e = NULL;
	size_t n = 0, cap = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(dir);
		if (!de) {
			if (errno != 0) {
				int code = -errno;
				entries_free(e, n);
				return sc_err_setsys(ctx->err, code,
						     "reading directory " COPY_PATH_FMT,
						     COPY_PATH_ARGS(ctx->src_name, rel));
			}
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char *name = strdup(de->d_name);
		if (!name || grow((void **)&e, &cap, n + 1, sizeof(*e)) < 0) {
			free(name);
			entries_free(e, n);
			return oom(ctx);
		}
		e[n++] = (struct entry){.ino = de->d_ino, .name = name};
	}
	if (n > 1)
		qsort(e, n, sizeof(*e), entry_cmp);
	*ret = e;
	*ret_n = n;
	return 0;
}

static int
scan_dir(struct walk *w, size_t idx)
{
	struct copy_ctx *ctx = w->ctx;
	/* w->dirs moves as it grows: keep what is needed. */
	const char *dir_rel = w->dirs[idx].rel;
	unsigned depth = w->dirs[idx].depth;

	_cleanup_close_ int fd = copy_open_beneath(
		ctx->src_root, dir_rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (fd < 0)
		return sc_err_setsys(ctx->err, -errno, "opening directory " COPY_PATH_FMT,
				     COPY_PATH_ARGS(ctx->src_name, dir_rel));
	struct stat dst;
	if (fstat(fd, &dst) < 0)
		return sc_err_setsys(ctx->err, -errno, "reading " COPY_PATH_FMT,
				     COPY_PATH_ARGS(ctx->src_name, dir_rel));
	struct copy_fs dir_fs;
	copy_fs_of(fd, &dst, &dir_fs);

	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dfd < 0)
		return sc_err_setsys(ctx->err, -errno, "opening directory " COPY_PATH_FMT,
				     COPY_PATH_ARGS(ctx->src_name, dir_rel));
	_cleanup_closedir_ DIR *dir = fdopendir(dfd);
	if (!dir) {
		close(dfd);
		return oom(ctx);
	}
	struct entry *e = NULL;
	size_t n = 0;
	int r = read_entries(ctx, dir, dir_rel, &e, &n);
	if (r < 0)
		return r;

	size_t base = copy_is_root(dir_rel) ? 0 : strlen(dir_rel);
	char path[SNAP_COPY_MAX_PATH + 1];
	if (base)
		memcpy(path, dir_rel, base);
	for (size_t i = 0; i < n && r >= 0; i++) {
		size_t nlen = strlen(e[i].name);
		size_t len = base + (base ? 1 : 0) + nlen;
		if (len > SNAP_COPY_MAX_PATH) {
			r = sc_err_set(ctx->err, -ENAMETOOLONG,
				       "path below " COPY_PATH_FMT " is longer than %d bytes: '%s'",
				       COPY_PATH_ARGS(ctx->src_name, dir_rel), SNAP_COPY_MAX_PATH,
				       e[i].name);
			break;
		}
		if (base)
			path[base] = '/';
		memcpy(path + base + (base ? 1 : 0), e[i].name, nlen + 1);

		struct stat st;
		if (fstatat(fd, e[i].name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			r = sc_err_setsys(ctx->err, -errno, "reading " COPY_PATH_FMT,
					  COPY_PATH_ARGS(ctx->src_name, path));
			break;
		}
		r = copy_entry(w, fd, e[i].name, path, depth + 1, &st, &dir_fs);
	}
	entries_free(e, n);
	return r;
}

/* Step 4: a directory's own metadata, once nothing below it changes any more. */
static int
finish_dir(struct copy_ctx *ctx, const struct dir_rec *d)
{
	_cleanup_close_ int sfd = copy_open_beneath(
		ctx->src_root, d->rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (sfd < 0)
		return sc_err_setsys(ctx->err, -errno, "opening directory " COPY_PATH_FMT,
				     COPY_PATH_ARGS(ctx->src_name, d->rel));
	_cleanup_close_ int dfd = copy_open_beneath(
		ctx->dst_root, d->rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
	if (dfd < 0)
		return sc_err_setsys(ctx->err, -errno, "opening directory " COPY_PATH_FMT,
				     COPY_PATH_ARGS(ctx->dst_name, d->rel));
	return copy_attrs_fd(ctx, sfd, dfd, &d->st, d->rel);
}

int
copy_ctx_init(struct copy_ctx *ctx, const char *src, const char *dst,
	      const struct snap_copy_opts *opts, struct sc_err *err)
{
	*ctx = (struct copy_ctx){
		.src_root = -EBADF,
		.dst_root = -EBADF,
		.src_name = src,
		.dst_name = dst,
		.flags = opts ? opts->flags : 0,
		.queue_depth = opts && opts->queue_depth ? opts->queue_depth : COPY_QD_DEFAULT,
		.err = err,
	};
	if (ctx->queue_depth > COPY_QD_MAX)
		return sc_err_set(err, -EINVAL, "queue depth %u is above the limit of %u",
				  ctx->queue_depth, COPY_QD_MAX);
	const char *env = getenv("SNAPCTL_NO_IO_URING");
	if ((ctx->flags & SNAP_COPY_NO_URING) || (env && *env && strcmp(env, "0") != 0))
		ctx->uring_off = true;
	return 0;
}

void
copy_ctx_done(struct copy_ctx *ctx)
{
	ctx->uring = copy_uring_free(ctx->uring);
	free(ctx->xnames);
	free(ctx->xvalue);
	free(ctx->rwbuf);
	if (ctx->src_root >= 0)
		close(ctx->src_root);
	if (ctx->dst_root >= 0)
		close(ctx->dst_root);
}

/* Steps 1-5 once the roots are open and the first entries queued. */
static int
copy_run(struct copy_ctx *ctx, struct walk *w, int r)
{
	while (r >= 0 && w->npending > 0)
		r = scan_dir(w, w->pending[--w->npending]);
	if (r >= 0 && ctx->uring)
		r = copy_uring_drain(ctx->uring);
	for (size_t i = w->ndirs; r >= 0 && i > 0; i--)
		r = finish_dir(ctx, &w->dirs[i - 1]);
	if (r >= 0 && !(ctx->flags & SNAP_COPY_NO_SYNC) && syncfs(ctx->dst_root) < 0)
		r = sc_err_setsys(ctx->err, -errno, "syncing '%s'", ctx->dst_name);
	return r;
}

/* Frees a walk and its context; the stats go to ret_stats (may be NULL) when r is a success. */
static int
copy_end(struct copy_ctx *ctx, struct walk *w, int r, struct snap_copy_stats *ret_stats)
{
	walk_done(w);
	copy_ctx_done(ctx);
	if (r < 0)
		return r;
	if (ret_stats)
		*ret_stats = ctx->stats;
	return 0;
}

static int
copy_tree(struct copy_ctx *ctx, struct walk *w, int src_dirfd, const char *src, int dst_dirfd,
	  const char *dst)
{
	ctx->src_root = openat(src_dirfd, src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ctx->src_root < 0) {
		int code = errno == ENOTDIR ? -EINVAL : -errno;
		return sc_err_setsys(ctx->err, code, "opening '%s'", src);
	}
	struct stat sst, dst_st;
	if (fstat(ctx->src_root, &sst) < 0)
		return sc_err_setsys(ctx->err, -errno, "reading '%s'", src);

	if (mkdirat(dst_dirfd, dst, 0700) < 0)
		return sc_err_setsys(ctx->err, -errno, "creating '%s'", dst);
	ctx->dst_root = openat(dst_dirfd, dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (ctx->dst_root < 0 || fstat(ctx->dst_root, &dst_st) < 0)
		return sc_err_setsys(ctx->err, -errno, "opening '%s'", dst);
	copy_fs_of(ctx->dst_root, &dst_st, &ctx->dst_fs);
	w->dst_root_dev = dst_st.st_dev;
	w->dst_root_ino = dst_st.st_ino;
	ctx->stats.dirs++;
	return copy_run(ctx, w, dir_add(w, ".", &sst, 0));
}

int
snap_copy_tree(int src_dirfd, const char *src, int dst_dirfd, const char *dst,
	       const struct snap_copy_opts *opts, struct snap_copy_stats *ret_stats,
	       struct sc_err *err)
{
	assert(src && dst);
	struct copy_ctx ctx;
	int r = copy_ctx_init(&ctx, src, dst, opts, err);
	if (r < 0)
		return r;
	struct walk w = {.ctx = &ctx};
	r = copy_tree(&ctx, &w, src_dirfd, src, dst_dirfd, dst);
	return copy_end(&ctx, &w, r, ret_stats);
}

/* The roots of snap_copy_entries: the two folders themselves, whose own metadata is left alone. */
static int
copy_entries(struct copy_ctx *ctx, struct walk *w, int src_dirfd, int dst_dirfd,
	     const char *const *names, size_t n)
{
	ctx->src_root = fcntl(src_dirfd, F_DUPFD_CLOEXEC, 3);
	ctx->dst_root = fcntl(dst_dirfd, F_DUPFD_CLOEXEC, 3);
	struct stat sst, dst_st;
	if (ctx->src_root < 0 || fstat(ctx->src_root, &sst) < 0)
		return sc_err_setsys(ctx->err, -errno, "opening '%s'", ctx->src_name);
	if (ctx->dst_root < 0 || fstat(ctx->dst_root, &dst_st) < 0)
		return sc_err_setsys(ctx->err, -errno, "opening '%s'", ctx->dst_name);
	copy_fs_of(ctx->dst_root, &dst_st, &ctx->dst_fs);
	w->dst_root_dev = dst_st.st_dev;
	w->dst_root_ino = dst_st.st_ino;
	struct copy_fs src_fs;
	copy_fs_of(ctx->src_root, &sst, &src_fs);
	int r = 0;
	for (size_t i = 0; i < n && r >= 0; i++) {
		if (!names[i][0] || strchr(names[i], '/') || strcmp(names[i], ".") == 0 ||
		    strcmp(names[i], "..") == 0)
			return sc_err_set(ctx->err, -EINVAL, "'%s' is not a name in '%s'", names[i],
					  ctx->src_name);
		struct stat st;
		if (fstatat(ctx->src_root, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			return sc_err_setsys(ctx->err, -errno, "reading " COPY_PATH_FMT,
					     COPY_PATH_ARGS(ctx->src_name, names[i]));
		r = copy_entry(w, ctx->src_root, names[i], names[i], 1, &st, &src_fs);
	}
	return copy_run(ctx, w, r);
}

int
snap_copy_entries(int src_dirfd, const char *src, int dst_dirfd, const char *dst,
		  const char *const *names, size_t n, const struct snap_copy_opts *opts,
		  struct snap_copy_stats *ret_stats, struct sc_err *err)
{
	assert(src && dst && (names || n == 0));
	struct copy_ctx ctx;
	int r = copy_ctx_init(&ctx, src, dst, opts, err);
	if (r < 0)
		return r;
	struct walk w = {.ctx = &ctx};
	r = copy_entries(&ctx, &w, src_dirfd, dst_dirfd, names, n);
	return copy_end(&ctx, &w, r, ret_stats);
}

int
snap_copy_file(int src_dirfd, const char *src, int dst_dirfd, const char *dst,
	       const struct snap_copy_opts *opts, struct sc_err *err)
{
	assert(src && dst);
	struct copy_ctx ctx;
	int r = copy_ctx_init(&ctx, src, dst, opts, err);
	if (r < 0)
		return r;
	/* Messages name the file itself: rel "." below roots that are never used as paths. */
	ctx.src_root = -EBADF;
	ctx.dst_root = -EBADF;

	_cleanup_close_ int sfd = -EBADF, dfd = -EBADF;
	struct stat st;
	sfd = openat(src_dirfd, src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd < 0) {
		r = errno == ELOOP ? -EINVAL : -errno;
		r = sc_err_setsys(err, r, "opening '%s'", src);
		goto out;
	}
	if (fstat(sfd, &st) < 0) {
		r = sc_err_setsys(err, -errno, "reading '%s'", src);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = sc_err_set(err, -EINVAL, "'%s' is not a regular file", src);
		goto out;
	}
	dfd = openat(dst_dirfd, dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (dfd < 0) {
		r = sc_err_setsys(err, -errno, "creating '%s'", dst);
		goto out;
	}
	struct stat dst_st;
	if (fstat(dfd, &dst_st) < 0) {
		r = sc_err_setsys(err, -errno, "reading '%s'", dst);
		goto fail;
	}
	copy_fs_of(dfd, &dst_st, &ctx.dst_fs);
	struct copy_fs fs;
	copy_fs_of(sfd, &st, &fs);

	enum snap_copy_method method = SNAP_COPY_RW;
	r = 0;
	if (st.st_size > 0 && !(copy_methods_off(&ctx, &fs) & (1u << SNAP_COPY_REFLINK)))
		r = copy_reflink(&ctx, sfd, dfd, &fs, ".");
	if (r == 0 && st.st_size > 0)
		r = copy_data_sync(&ctx, sfd, dfd, &st, &fs, ".", &method);
	if (r >= 0)
		r = copy_attrs_fd(&ctx, sfd, dfd, &st, ".");
	if (r >= 0 && !(ctx.flags & SNAP_COPY_NO_SYNC) && fsync(dfd) < 0)
		r = sc_err_setsys(err, -errno, "syncing '%s'", dst);
	if (r >= 0) {
		r = 0;
		goto out;
	}
fail:
	(void)unlinkat(dst_dirfd, dst, 0);
out:
	copy_ctx_done(&ctx);
	return r;
}
