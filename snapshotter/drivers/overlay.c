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

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <linux/quota.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
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

/*
 * Quotas: an xfs project quota on the upper folder. Each snapshot with a quota
 * gets its own project id (from OVERLAY_PROJID_FIRST on, counted in the
 * metadata), set with inheritance on fs/ and work/ (overlay copies up
 * through work/, and a rename between two project ids fails), and its block
 * hard limit set with quotactl_fd(2). Only xfs: ext4 lets CAP_SYS_RESOURCE
 * write past a hard limit, and overlay writes the upper layer with the
 * credentials of whoever mounted it (root), so the limit would not hold.
 */
#define OVERLAY_PROJID_FIRST 0x50000000u
#define PROJID_KEY	     "quota.next_project"

/* QCMD() shifts an int past its sign bit; the same command, unsigned. */
#define PRJ_CMD(cmd) ((unsigned)(cmd) << SUBCMDSHIFT | PRJQUOTA)

static int
quotactl_fd(int fd, unsigned cmd, int id, void *addr)
{
	return (int)syscall(__NR_quotactl_fd, fd, cmd, id, addr);
}

/* 0 if project quotas are enforced on ROOT's file system, else -EOPNOTSUPP saying what would. */
static int
project_quotas_usable(struct snap_store *s, struct sc_err *err)
{
	struct statfs sfs;
	if (fstatfs(s->root_fd, &sfs) < 0)
		return sc_err_setsys(err, -errno, "cannot stat the file system of '%s'", s->root);
	if (sfs.f_type == EXT4_SUPER_MAGIC)
		return sc_err_set(err, -EOPNOTSUPP,
				  "quotas on overlay need xfs: ext4 project quotas do not hold for "
				  "overlay mounts made by root; put the store on xfs mounted with "
				  "-o pquota, or on btrfs");
	if (sfs.f_type != XFS_SUPER_MAGIC)
		return sc_err_set(err, -EOPNOTSUPP,
				  "quotas on overlay need xfs mounted with -o pquota, and '%s' is "
				  "not on xfs; put the store there, or on btrfs",
				  s->root);
	struct if_dqinfo info;
	if (quotactl_fd(s->root_fd, PRJ_CMD(Q_GETINFO), 0, &info) == 0)
		return 0;
	if (errno == ENOSYS)
		return sc_err_set(
			err, -EOPNOTSUPP,
			"this kernel has no quota support (CONFIG_QUOTA, CONFIG_XFS_QUOTA), "
			"so '--quota' cannot be enforced; use a store on btrfs");
	return sc_err_set(err, -EOPNOTSUPP,
			  "project quotas are off on the xfs under '%s' (%s); mount it with "
			  "-o pquota",
			  s->root, strerror(errno));
}

struct projid_op {
	uint32_t id;
};

static int
projid_next(struct snap_txn *t, void *arg)
{
	struct projid_op *op = arg;
	MDB_val v;
	uint8_t b[8];
	uint64_t next = OVERLAY_PROJID_FIRST;
	int r = snap_txn_get(t, SNAP_DB_META, PROJID_KEY, strlen(PROJID_KEY), &v);
	if (r == 0 && v.mv_size == 8)
		next = sc_get_be64(v.mv_data);
	else if (r < 0 && r != -ENOENT)
		return r;
	if (next > UINT32_MAX - 1)
		return sc_err_set(t->err, -ENOSPC, "no project ids left for quotas");
	op->id = (uint32_t)next;
	sc_put_be64(b, next + 1);
	return snap_txn_put(t, SNAP_DB_META, PROJID_KEY, strlen(PROJID_KEY), b, 8, 0);
}

static int
projid_set(const char *path, uint32_t id, struct sc_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct fsxattr fa;
	if (fd < 0 || ioctl(fd, FS_IOC_FSGETXATTR, &fa) < 0)
		return sc_err_setsys(err, -errno, "cannot read the attributes of '%s'", path);
	fa.fsx_projid = id;
	fa.fsx_xflags |= FS_XFLAG_PROJINHERIT;
	if (ioctl(fd, FS_IOC_FSSETXATTR, &fa) < 0)
		return sc_err_setsys(err, -errno, "cannot set project %" PRIu32 " on '%s'", id,
				     path);
	return 0;
}

/* The project id of dir/fs if it is one of ours, else 0. */
static uint32_t
projid_of(const char *dir)
{
	char path[PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s/fs", dir);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct fsxattr fa;
	if (fd < 0 || ioctl(fd, FS_IOC_FSGETXATTR, &fa) < 0)
		return 0;
	return fa.fsx_projid >= OVERLAY_PROJID_FIRST ? fa.fsx_projid : 0;
}

static int
overlay_quota_set(struct snap_store *s, const char *dir, uint64_t bytes, struct sc_err *err)
{
	int r = project_quotas_usable(s, err);
	if (r < 0)
		return r;
	struct projid_op op = {0};
	r = snap_meta_write(s->meta, projid_next, &op, err);
	if (r < 0)
		return r;
	char path[PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s/fs", dir);
	r = projid_set(path, op.id, err);
	snprintf(path, sizeof(path), "%s/work", dir);
	if (r >= 0 && access(path, F_OK) == 0)
		r = projid_set(path, op.id, err);
	if (r < 0)
		return r;
	struct if_dqblk q = {
		.dqb_bhardlimit = (bytes + 1023) / 1024, /* 1 KiB blocks */
		.dqb_valid = QIF_BLIMITS,
	};
	if (quotactl_fd(s->root_fd, PRJ_CMD(Q_SETQUOTA), (int)op.id, &q) < 0)
		return sc_err_setsys(err, -errno, "cannot set the quota of project %" PRIu32,
				     op.id);
	return 0;
}

static int
overlay_quota_used(struct snap_store *s, const char *dir, uint64_t *ret, struct sc_err *err)
{
	uint32_t id = projid_of(dir);
	if (!id)
		return sc_err_set(err, -ENODATA, "'%s/fs' has no project quota", dir);
	struct if_dqblk q;
	if (quotactl_fd(s->root_fd, PRJ_CMD(Q_GETQUOTA), (int)id, &q) < 0)
		return sc_err_setsys(err, -errno, "cannot read the quota of project %" PRIu32, id);
	*ret = q.dqb_curspace;
	return 0;
}

/* A removed snapshot's project id is freed: no limit, and no data once deleted. */
static int
overlay_remove(struct snap_store *s, const char *dir, struct sc_err *err)
{
	uint32_t id = projid_of(dir);
	if (!id)
		return 0;
	struct if_dqblk q = {.dqb_valid = QIF_BLIMITS};
	if (quotactl_fd(s->root_fd, PRJ_CMD(Q_SETQUOTA), (int)id, &q) < 0)
		sc_debug("cannot clear the quota of project %" PRIu32 ": %s", id, strerror(errno));
	return 0;
}

/* A project id handed out (below the counter) with a limit but no snapshot folder. */
static int
overlay_quota_leaks(struct snap_store *s, bool repair, snap_quota_leak_fn fn, void *arg,
		    struct sc_err *err)
{
	if (project_quotas_usable(s, NULL) < 0)
		return 0; /* no project quotas here: none were set */
	struct snap_txn t;
	int r = snap_txn_begin_read(s->meta, &t, err);
	if (r < 0)
		return r;
	MDB_val v;
	uint64_t next = OVERLAY_PROJID_FIRST;
	if (snap_txn_get(&t, SNAP_DB_META, PROJID_KEY, strlen(PROJID_KEY), &v) == 0 &&
	    v.mv_size == 8)
		next = sc_get_be64(v.mv_data);
	snap_txn_end(&t);
	if (next == OVERLAY_PROJID_FIRST)
		return 0;

	/* The ids the snapshot folders carry now. */
	struct sc_buf live = {0};
	_cleanup_close_ int fd =
		openat(s->root_fd, "snapshots", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(TAKE_FD(fd)) : NULL;
	if (!d)
		return sc_err_setsys(err, -errno, "cannot read '%s/snapshots'", s->root);
	struct dirent *de;
	while (r >= 0 && (de = readdir(d))) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s/snapshots/%s", s->root, de->d_name);
		uint32_t id = de->d_name[0] != '.' ? projid_of(dir) : 0;
		if (id)
			r = sc_buf_put(&live, &id, sizeof(id));
	}
	const uint32_t *ids = (const uint32_t *)live.data;
	size_t nlive = live.len / sizeof(uint32_t);
	for (uint64_t id = OVERLAY_PROJID_FIRST; r >= 0 && id < next; id++) {
		struct if_dqblk q;
		if (quotactl_fd(s->root_fd, PRJ_CMD(Q_GETQUOTA), (int)id, &q) < 0 ||
		    !q.dqb_bhardlimit)
			continue;
		bool held = false;
		for (size_t i = 0; i < nlive && !held; i++)
			held = ids[i] == id;
		if (held)
			continue;
		char what[64];
		snprintf(what, sizeof(what), "project %" PRIu64, id);
		struct if_dqblk zero = {.dqb_valid = QIF_BLIMITS};
		bool freed =
			repair && quotactl_fd(s->root_fd, PRJ_CMD(Q_SETQUOTA), (int)id, &zero) == 0;
		fn(arg, what, "a limit no snapshot folder carries", freed);
	}
	sc_buf_free(&live);
	return r < 0 ? sc_err_set(err, r, "out of memory") : 0;
}

const struct snap_driver snap_driver_overlay = {
	.version = SNAP_DRIVER_VERSION,
	.name = "overlay",
	.probe = overlay_probe,
	.prepare = overlay_prepare,
	.mounts = overlay_mounts,
	.remove = overlay_remove,
	.quota_set = overlay_quota_set,
	.quota_used = overlay_quota_used,
	.quota_leaks = overlay_quota_leaks,
};
