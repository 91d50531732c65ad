/*
 * The overlay driver. A snapshot folder holds fs/ (the upper directory, or
 * the layer itself once committed) and work/ (overlay's work directory).
 * Lower layers are the committed ancestors' fs/ folders, nearest first.
 *
 * Mounts use redirect_dir=off and metacopy=off so that an upper directory is
 * a faithful diff of its layer (a renamed directory is copied up whole, not
 * recorded as a redirect xattr), and index=off so one lower can sit under
 * many uppers. Chains up to the kernel's stack limit mount through the new
 * mount API (see mount.c).
 */
#include "store-internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "util.h"

/* The kernel's OVL_MAX_STACK: lower layers one overlay mount may stack. */
#define OVERLAY_MAX_LOWERS 500

static const char *const overlay_options[] = {"index=off", "redirect_dir=off", "metacopy=off"};

static bool
overlay_in_kernel(void)
{
	_cleanup_free_ char *fss = NULL;
	if (sc_read_file("/proc/filesystems", 1 << 20, &fss, NULL) < 0)
		return false;
	return strstr(fss, "\toverlay\n") != NULL;
}

static int
overlay_probe(struct snap_store *s, struct sc_err *err)
{
	if (strpbrk(s->root, ":,"))
		return sc_err_set(
			err, -EOPNOTSUPP,
			"store path '%s' has ':' or ',', which overlay options cannot carry",
			s->root);
	if (!overlay_in_kernel())
		return sc_err_set(err, -EOPNOTSUPP, "the kernel has no overlay file system");

	/* The proof is a mount: upper on ROOT's file system, as snapshots will be. */
	char dir[PATH_MAX], rel[PATH_MAX];
	int r = snap_store_mktemp(s, "probe", dir, rel, err);
	if (r < 0)
		return r;
	char lower[PATH_MAX + 8], upper[PATH_MAX + 8], work[PATH_MAX + 8], merged[PATH_MAX + 8];
	snprintf(lower, sizeof(lower), "%s/l", dir);
	snprintf(upper, sizeof(upper), "%s/u", dir);
	snprintf(work, sizeof(work), "%s/w", dir);
	snprintf(merged, sizeof(merged), "%s/m", dir);
	r = 0;
	if (mkdir(lower, 0755) < 0 || mkdir(upper, 0755) < 0 || mkdir(work, 0700) < 0 ||
	    mkdir(merged, 0755) < 0)
		r = sc_err_setsys(err, -errno, "cannot create probe folders in '%s'", dir);
	if (r >= 0) {
		char opts[4 * PATH_MAX + 128];
		snprintf(opts, sizeof(opts),
			 "lowerdir=%s,upperdir=%s,workdir=%s,index=off,redirect_dir=off,"
			 "metacopy=off",
			 lower, upper, work);
		if (mount("overlay", merged, "overlay", 0, opts) < 0)
			r = sc_err_setsys(err, errno == EPERM ? -EOPNOTSUPP : -errno,
					  "overlay does not mount on '%s'", s->root);
		else
			umount2(merged, MNT_DETACH);
	}
	sc_rm_rf_at(s->root_fd, rel);
	return r;
}

static int
overlay_prepare(struct snap_store *s, const char *dir, enum snap_kind kind,
		const char *const *parents, size_t nparents, struct sc_err *err)
{
	char path[PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s/fs", dir);
	if (mkdir(path, 0755) < 0 || chmod(path, 0755) < 0)
		return sc_err_setsys(err, -errno, "cannot create '%s'", path);
	if (kind == SNAP_KIND_ACTIVE && nparents > 0) {
		snprintf(path, sizeof(path), "%s/work", dir);
		if (mkdir(path, 0700) < 0)
			return sc_err_setsys(err, -errno, "cannot create '%s'", path);
	}
	return 0;
}

static int
overlay_mounts(struct snap_store *s, const char *dir, enum snap_kind kind,
	       const char *const *parents, size_t nparents, struct snap_mounts *ret,
	       struct sc_err *err)
{
	char path[PATH_MAX + 8];
	int r;
	*ret = (struct snap_mounts){0};
	if (nparents > OVERLAY_MAX_LOWERS)
		return sc_err_set(err, -E2BIG,
				  "%zu layers are more than one overlay mount stacks (%d); the "
				  "snapshot can be diffed and exported but not mounted",
				  nparents, OVERLAY_MAX_LOWERS);

	if (kind == SNAP_KIND_VIEW && nparents == 1) {
		snprintf(path, sizeof(path), "%s/fs", parents[0]);
		r = snap_mounts_bind(ret, path, true);
	} else if (nparents == 0) {
		snprintf(path, sizeof(path), "%s/fs", dir);
		r = snap_mounts_bind(ret, path, kind == SNAP_KIND_VIEW);
	} else {
		r = snap_mounts_add(ret, "overlay", "overlay", ARRAY_SIZE(overlay_options) + 4);
		struct snap_mount *m = r >= 0 ? &ret->v[0] : NULL;
		if (r >= 0)
			m->lowers = calloc(nparents, sizeof(char *));
		if (m && !m->lowers)
			r = -ENOMEM;
		/* lowerdir=... is for people and for mount(8); apply uses m->lowers. */
		struct sc_buf lowerdir = {0};
		if (r >= 0)
			r = sc_buf_printf(&lowerdir, "lowerdir=");
		for (size_t i = 0; r >= 0 && i < nparents; i++) {
			snprintf(path, sizeof(path), "%s/fs", parents[i]);
			m->lowers[i] = strdup(path);
			if (!m->lowers[i]) {
				r = -ENOMEM;
				break;
			}
			m->nlowers++;
			r = sc_buf_printf(&lowerdir, "%s%s", i ? ":" : "", path);
		}
		if (r >= 0)
			r = snap_mount_opt(m, (char *)lowerdir.data);
		sc_buf_free(&lowerdir);
		if (r >= 0 && kind == SNAP_KIND_ACTIVE) {
			snprintf(path, sizeof(path), "upperdir=%s/fs", dir);
			r = snap_mount_opt(m, path);
			snprintf(path, sizeof(path), "workdir=%s/work", dir);
			if (r >= 0)
				r = snap_mount_opt(m, path);
		} else if (r >= 0) {
			r = snap_mount_opt(m, "ro");
		}
		for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(overlay_options); i++)
			r = snap_mount_opt(m, overlay_options[i]);
	}
	if (r < 0) {
		snap_mounts_clear(ret);
		return sc_err_set(err, r, "out of memory");
	}
	return 0;
}

const struct snap_driver snap_driver_overlay = {
	.version = SNAP_DRIVER_VERSION,
	.name = "overlay",
	.probe = overlay_probe,
	.prepare = overlay_prepare,
	.mounts = overlay_mounts,
};
