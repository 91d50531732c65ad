/*
 * Mount specs and performing them. Overlay mounts go through the new mount
 * API: one fsconfig("lowerdir+") per layer has no length limit short of the
 * kernel's stack limit, where mount(2)'s option string is cut at one page
 * (about 40 layers with absolute paths). Kernels without "lowerdir+" (before
 * 6.8) get mount(2) with paths relative to the common parent folder, which
 * reaches a few hundred layers; past that the error says so.
 */
#include "store-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "cleanup.h"
#include "log.h"
#include "util.h"

void
snap_mounts_clear(struct snap_mounts *mounts)
{
	if (!mounts)
		return;
	for (size_t i = 0; i < mounts->n; i++) {
		struct snap_mount *m = &mounts->v[i];
		free(m->type);
		free(m->source);
		for (size_t j = 0; j < m->noptions; j++)
			free(m->options[j]);
		free(m->options);
		for (size_t j = 0; j < m->nlowers; j++)
			free(m->lowers[j]);
		free(m->lowers);
	}
	free(mounts->v);
	*mounts = (struct snap_mounts){0};
}

int
snap_mounts_add(struct snap_mounts *ret, const char *type, const char *source, size_t nopts)
{
	struct snap_mount *v = realloc(ret->v, (ret->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	ret->v = v;
	struct snap_mount *m = &v[ret->n++];
	*m = (struct snap_mount){0};
	m->type = strdup(type);
	m->source = strdup(source);
	m->options = calloc(nopts + 1, sizeof(char *));
	if (!m->type || !m->source || !m->options)
		return -ENOMEM;
	return 0;
}

int
snap_mount_opt(struct snap_mount *m, const char *opt)
{
	m->options[m->noptions] = strdup(opt);
	if (!m->options[m->noptions])
		return -ENOMEM;
	m->noptions++;
	return 0;
}

int
snap_mounts_bind(struct snap_mounts *ret, const char *dir, bool ro)
{
	int r = snap_mounts_add(ret, "bind", dir, 2);
	if (r < 0)
		return r;
	struct snap_mount *m = &ret->v[ret->n - 1];
	r = snap_mount_opt(m, ro ? "ro" : "rw");
	return r < 0 ? r : snap_mount_opt(m, "rbind");
}

static bool
has_option(const struct snap_mount *m, const char *opt)
{
	for (size_t i = 0; i < m->noptions; i++)
		if (strcmp(m->options[i], opt) == 0)
			return true;
	return false;
}

static int
apply_bind(const struct snap_mount *m, const char *target, struct sc_err *err)
{
	if (mount(m->source, target, NULL, MS_BIND | MS_REC, NULL) < 0)
		return sc_err_setsys(err, -errno, "cannot bind '%s' on '%s'", m->source, target);
	if (has_option(m, "ro") &&
	    mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
		int r = -errno;
		umount2(target, MNT_DETACH);
		return sc_err_setsys(err, r, "cannot make '%s' read-only", target);
	}
	return 0;
}

/* Splits "key=value" for fsconfig. */
static int
fsconfig_option(int fsfd, const char *opt)
{
	char key[64];
	const char *eq = strchr(opt, '=');
	if (!eq)
		return fsconfig(fsfd, FSCONFIG_SET_FLAG, opt, NULL, 0);
	size_t klen = (size_t)(eq - opt);
	if (klen >= sizeof(key))
		return errno = EINVAL, -1;
	memcpy(key, opt, klen);
	key[klen] = '\0';
	return fsconfig(fsfd, FSCONFIG_SET_STRING, key, eq + 1, 0);
}

/* Returns -ENOSYS when this kernel's overlay has no "lowerdir+". */
static int
apply_overlay_fsconfig(const struct snap_mount *m, const char *target, struct sc_err *err)
{
	_cleanup_close_ int fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return errno == ENOSYS ? -ENOSYS : sc_err_setsys(err, -errno, "fsopen(overlay)");
	for (size_t i = 0; i < m->nlowers; i++) {
		if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", m->lowers[i], 0) < 0) {
			if (i == 0 && errno == EINVAL)
				return -ENOSYS;
			return sc_err_setsys(err, -errno, "overlay layer %zu '%s'", i + 1,
					     m->lowers[i]);
		}
	}
	bool ro = false;
	for (size_t i = 0; i < m->noptions; i++) {
		const char *opt = m->options[i];
		if (strncmp(opt, "lowerdir=", 9) == 0)
			continue; /* given layer by layer above */
		if (strcmp(opt, "ro") == 0) {
			ro = true;
			continue;
		}
		if (fsconfig_option(fsfd, opt) < 0)
			return sc_err_setsys(err, -errno, "overlay option '%s'", opt);
	}
	if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return sc_err_setsys(err, -errno, "cannot create overlay of %zu layers",
				     m->nlowers);
	_cleanup_close_ int mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, ro ? MOUNT_ATTR_RDONLY : 0);
	if (mfd < 0)
		return sc_err_setsys(err, -errno, "cannot create overlay mount");
	if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return sc_err_setsys(err, -errno, "cannot attach overlay on '%s'", target);
	return 0;
}

/* mount(2) with lowerdir paths relative to their common parent folder. */
static int
apply_overlay_legacy(const struct snap_mount *m, const char *target, struct sc_err *err)
{
	long page = sysconf(_SC_PAGESIZE);
	char base[PATH_MAX];
	const char *slash = strrchr(m->lowers[0], '/');
	/* Layers are ROOT/snapshots/ID/fs: their common folder is ROOT/snapshots. */
	snprintf(base, sizeof(base), "%.*s", (int)(slash - m->lowers[0]), m->lowers[0]);
	char *up = strrchr(base, '/');
	if (up)
		*up = '\0';
	size_t blen = strlen(base);

	struct sc_buf opts = {0};
	int r = sc_buf_printf(&opts, "lowerdir=");
	for (size_t i = 0; r >= 0 && i < m->nlowers; i++) {
		const char *l = m->lowers[i];
		if (strncmp(l, base, blen) == 0 && l[blen] == '/')
			l += blen + 1;
		r = sc_buf_printf(&opts, "%s%s", i ? ":" : "", l);
	}
	for (size_t i = 0; r >= 0 && i < m->noptions; i++)
		if (strncmp(m->options[i], "lowerdir=", 9) != 0)
			r = sc_buf_printf(&opts, ",%s", m->options[i]);
	if (r < 0) {
		sc_buf_free(&opts);
		return sc_err_set(err, -ENOMEM, "out of memory");
	}
	if ((long)opts.len >= page) {
		sc_buf_free(&opts);
		return sc_err_set(err, -E2BIG,
				  "%zu layers do not fit in one mount option page on this kernel "
				  "(it has no overlay 'lowerdir+'; Linux 6.8 or newer does)",
				  m->nlowers);
	}
	_cleanup_close_ int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cwd < 0 || chdir(base) < 0) {
		sc_buf_free(&opts);
		return sc_err_setsys(err, -errno, "cannot enter '%s'", base);
	}
	r = mount("overlay", target, "overlay", 0, (char *)opts.data) < 0 ? -errno : 0;
	if (fchdir(cwd) < 0)
		sc_debug("cannot return to the previous working folder: %m");
	sc_buf_free(&opts);
	if (r < 0)
		return sc_err_setsys(err, r, "cannot mount overlay of %zu layers on '%s'",
				     m->nlowers, target);
	return 0;
}

int
snap_mounts_apply(const struct snap_mounts *mounts, const char *target, struct sc_err *err)
{
	for (size_t i = 0; i < mounts->n; i++) {
		const struct snap_mount *m = &mounts->v[i];
		int r;
		if (strcmp(m->type, "bind") == 0) {
			r = apply_bind(m, target, err);
		} else if (strcmp(m->type, "overlay") == 0) {
			/* SNAPCTL_OVERLAY_MOUNT=legacy takes the pre-6.8 path (tests use it). */
			const char *how = getenv("SNAPCTL_OVERLAY_MOUNT");
			r = how && strcmp(how, "legacy") == 0
				    ? -ENOSYS
				    : apply_overlay_fsconfig(m, target, err);
			if (r == -ENOSYS)
				r = apply_overlay_legacy(m, target, err);
		} else {
			r = sc_err_set(err, -EINVAL, "unknown mount type '%s'", m->type);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

int
snap_mount_remove(const char *target, struct sc_err *err)
{
	if (umount2(target, UMOUNT_NOFOLLOW) == 0)
		return 0;
	if (errno == EINVAL)
		return sc_err_set(err, -EINVAL, "nothing is mounted on '%s'", target);
	return sc_err_setsys(err, -errno, "cannot unmount '%s'", target);
}
