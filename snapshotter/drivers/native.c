/*
 * The native driver: every snapshot is a full tree in fs/. prepare copies the
 * parent through the copy engine (reflinks where the file system has them),
 * so it works on any file system and needs no mounts to read a committed
 * snapshot. Views are read-only binds of their parent, which is immutable.
 */
#include "store-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

#include "copy.h"

static int
native_probe(struct snap_store *s, struct sc_err *err)
{
	return 0;
}

static int
native_prepare(struct snap_store *s, const char *dir, enum snap_kind kind,
	       const char *const *parents, size_t nparents, struct sc_err *err)
{
	char dst[PATH_MAX + 8];
	snprintf(dst, sizeof(dst), "%s/fs", dir);
	if (kind == SNAP_KIND_VIEW)
		return 0; /* a view owns nothing: it binds its parent */
	if (nparents == 0) {
		if (mkdir(dst, 0755) < 0 || chmod(dst, 0755) < 0)
			return sc_err_setsys(err, -errno, "cannot create '%s'", dst);
		return 0;
	}
	char src[PATH_MAX + 8];
	snprintf(src, sizeof(src), "%s/fs", parents[0]);
	/* A full copy is a large write: let a collector make room first. */
	uint64_t bytes = 0, inodes = 0;
	if (snap_du(AT_FDCWD, src, &bytes, &inodes) >= 0)
		snap_store_before_write(s, bytes);
	int r = snap_copy_tree(AT_FDCWD, src, AT_FDCWD, dst, NULL, NULL, err);
	if (r < 0)
		return sc_err_prefix(err, r, "copying the parent");
	return 0;
}

static int
native_mounts(struct snap_store *s, const char *dir, enum snap_kind kind,
	      const char *const *parents, size_t nparents, struct snap_mounts *ret,
	      struct sc_err *err)
{
	char path[PATH_MAX + 8];
	*ret = (struct snap_mounts){0};
	if (kind == SNAP_KIND_VIEW)
		snprintf(path, sizeof(path), "%s/fs", parents[0]);
	else
		snprintf(path, sizeof(path), "%s/fs", dir);
	int r = snap_mounts_bind(ret, path, kind != SNAP_KIND_ACTIVE);
	if (r < 0) {
		snap_mounts_clear(ret);
		return sc_err_set(err, r, "out of memory");
	}
	return 0;
}

const struct snap_driver snap_driver_native = {
	.version = SNAP_DRIVER_VERSION,
	.name = "native",
	.probe = native_probe,
	.prepare = native_prepare,
	.mounts = native_mounts,
};
