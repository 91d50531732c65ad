/*
 * Owner, mode, xattrs and times of a copied entry. The order matters:
 * chown() clears setuid/setgid bits and security.capability, so the mode and
 * xattrs follow it; any write changes mtime, so times come last. Xattrs named
 * trusted.overlay.* belong to the overlay mount that made them and are never
 * copied.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "copy-internal.h"

#define OVERLAY_PREFIX "trusted.overlay."

/* An xattr endpoint: an fd, or a path that is not followed. */
struct xref {
	int fd;
	const char *path;
};

static ssize_t
x_list(const struct xref *x, char *buf, size_t size)
{
	return x->fd >= 0 ? flistxattr(x->fd, buf, size) : llistxattr(x->path, buf, size);
}

static ssize_t
x_get(const struct xref *x, const char *name, void *buf, size_t size)
{
	return x->fd >= 0 ? fgetxattr(x->fd, name, buf, size) : lgetxattr(x->path, name, buf, size);
}

static int
x_set(const struct xref *x, const char *name, const void *val, size_t size)
{
	return x->fd >= 0 ? fsetxattr(x->fd, name, val, size, 0)
			  : lsetxattr(x->path, name, val, size, 0);
}

static int
alloc_buffers(struct copy_ctx *ctx)
{
	if (!ctx->xnames) {
		ctx->xnames = malloc(XATTR_LIST_MAX);
		if (!ctx->xnames)
			return sc_err_set(ctx->err, -ENOMEM, "out of memory");
	}
	if (!ctx->xvalue) {
		ctx->xvalue = malloc(XATTR_SIZE_MAX);
		if (!ctx->xvalue)
			return sc_err_set(ctx->err, -ENOMEM, "out of memory");
	}
	return 0;
}

static int
copy_xattrs(struct copy_ctx *ctx, const struct xref *src, const struct xref *dst, const char *rel)
{
	/* Most files have none: ask with a NULL buffer first, no allocation. */
	ssize_t n = x_list(src, NULL, 0);
	if (n < 0) {
		if (errno == EOPNOTSUPP || errno == ENOTSUP)
			return 0;
		return sc_err_setsys(ctx->err, -errno, "listing xattrs of " COPY_PATH_FMT,
				     COPY_PATH_ARGS(ctx->src_name, rel));
	}
	if (n == 0)
		return 0;
	int r = alloc_buffers(ctx);
	if (r < 0)
		return r;
	n = x_list(src, ctx->xnames, XATTR_LIST_MAX);
	if (n < 0)
		return sc_err_setsys(ctx->err, -errno, "listing xattrs of " COPY_PATH_FMT,
				     COPY_PATH_ARGS(ctx->src_name, rel));

	for (const char *name = ctx->xnames; name < ctx->xnames + n; name += strlen(name) + 1) {
		if (strncmp(name, OVERLAY_PREFIX, strlen(OVERLAY_PREFIX)) == 0)
			continue;
		ssize_t len = x_get(src, name, ctx->xvalue, XATTR_SIZE_MAX);
		if (len < 0) {
			if (errno == ENODATA) /* removed since listed */
				continue;
			return sc_err_setsys(ctx->err, -errno,
					     "reading xattr '%s' of " COPY_PATH_FMT, name,
					     COPY_PATH_ARGS(ctx->src_name, rel));
		}
		if (x_set(dst, name, ctx->xvalue, (size_t)len) < 0)
			return sc_err_setsys(ctx->err, -errno,
					     "setting xattr '%s' on " COPY_PATH_FMT, name,
					     COPY_PATH_ARGS(ctx->dst_name, rel));
	}
	return 0;
}

int
copy_attrs_fd(struct copy_ctx *ctx, int src_fd, int dst_fd, const struct stat *st, const char *rel)
{
	if (fchown(dst_fd, st->st_uid, st->st_gid) < 0)
		return sc_err_setsys(ctx->err, -errno, "setting owner %u:%u of " COPY_PATH_FMT,
				     (unsigned)st->st_uid, (unsigned)st->st_gid,
				     COPY_PATH_ARGS(ctx->dst_name, rel));
	if (fchmod(dst_fd, st->st_mode & 07777) < 0)
		return sc_err_setsys(ctx->err, -errno, "setting mode of " COPY_PATH_FMT,
				     COPY_PATH_ARGS(ctx->dst_name, rel));
	struct xref xs = {.fd = src_fd}, xd = {.fd = dst_fd};
	int r = copy_xattrs(ctx, &xs, &xd, rel);
	if (r < 0)
		return r;
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	if (futimens(dst_fd, ts) < 0)
		return sc_err_setsys(ctx->err, -errno, "setting times of " COPY_PATH_FMT,
				     COPY_PATH_ARGS(ctx->dst_name, rel));
	return 0;
}

int
copy_attrs_path(struct copy_ctx *ctx, const char *rel, const struct stat *st)
{
	if (fchownat(ctx->dst_root, rel, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
		return sc_err_setsys(ctx->err, -errno, "setting owner %u:%u of " COPY_PATH_FMT,
				     (unsigned)st->st_uid, (unsigned)st->st_gid,
				     COPY_PATH_ARGS(ctx->dst_name, rel));
	/* A symlink's mode is fixed; special files are not opened (a fifo would block). */
	if (!S_ISLNK(st->st_mode) && fchmodat(ctx->dst_root, rel, st->st_mode & 07777, 0) < 0)
		return sc_err_setsys(ctx->err, -errno, "setting mode of " COPY_PATH_FMT,
				     COPY_PATH_ARGS(ctx->dst_name, rel));

	/*
	 * No fd to use for xattrs here: go through the roots' /proc magic links
	 * with the l*xattr() calls, which do not follow the last component.
	 */
	char spath[PATH_MAX + 64], dpath[PATH_MAX + 64];
	snprintf(spath, sizeof(spath), "/proc/self/fd/%d/%s", ctx->src_root, rel);
	snprintf(dpath, sizeof(dpath), "/proc/self/fd/%d/%s", ctx->dst_root, rel);
	struct xref xs = {.fd = -EBADF, .path = spath}, xd = {.fd = -EBADF, .path = dpath};
	int r = copy_xattrs(ctx, &xs, &xd, rel);
	if (r < 0)
		return r;

	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	if (utimensat(ctx->dst_root, rel, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return sc_err_setsys(ctx->err, -errno, "setting times of " COPY_PATH_FMT,
				     COPY_PATH_ARGS(ctx->dst_name, rel));
	return 0;
}
