/*
 * Copy engine on real file systems (root): loop-mounted ext4, xfs and btrfs
 * images. A destination that fills up must fail with -ENOSPC (or -EDQUOT
 * under a btrfs qgroup limit) naming the path, without leaking fds; copies
 * within xfs and btrfs must reflink, copies across file systems must not.
 * Loop devices come from `losetup -f --show`; every mount and loop device
 * is removed again, also when a check fails (atexit).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copy-fixture.h"
#include "copy.h"
#include "tap.h"
#include "util.h"

struct loopfs {
	char img[4096];
	char dev[64];
	char mnt[4096];
	bool attached, mounted;
};

static struct loopfs fss[8];
static unsigned nfss;

static void
loopfs_remove(struct loopfs *l)
{
	if (l->mounted && umount2(l->mnt, 0) < 0)
		umount2(l->mnt, MNT_DETACH);
	l->mounted = false;
	if (l->attached)
		fx_sh("losetup -d '%s'", l->dev);
	l->attached = false;
	if (l->img[0])
		unlink(l->img);
	l->img[0] = '\0';
}

static void
loopfs_remove_all(void)
{
	for (unsigned i = 0; i < nfss; i++)
		loopfs_remove(&fss[i]);
	nfss = 0;
}

static bool
have(const char *tool)
{
	return fx_sh("command -v %s >/dev/null 2>&1", tool) == 0;
}

/* An image of size_mb made by mkfs, attached and mounted at tmpdir/name. */
static struct loopfs *
loopfs_new(const char *name, const char *type, unsigned size_mb, const char *mkfs)
{
	if (nfss >= sizeof(fss) / sizeof(fss[0]))
		tap_fail(__FILE__, __LINE__, "too many loop file systems");
	struct loopfs *l = &fss[nfss++];
	*l = (struct loopfs){0};
	snprintf(l->img, sizeof(l->img), "%s/%s.img", tap_tmpdir(), name);
	snprintf(l->mnt, sizeof(l->mnt), "%s/%s", tap_tmpdir(), name);
	int fd = open(l->img, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_OK(fd);
	ASSERT_OK(ftruncate(fd, (off_t)size_mb << 20));
	close(fd);
	if (fx_sh("%s '%s' >/dev/null 2>&1", mkfs, l->img) != 0)
		tap_fail(__FILE__, __LINE__, "%s failed", mkfs);
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "losetup -f --show '%s'", l->img);
	FILE *p = popen(cmd, "r");
	ASSERT_NOT_NULL(p);
	bool got = fgets(l->dev, sizeof(l->dev), p) != NULL;
	int st = pclose(p);
	if (!got || st != 0)
		tap_fail(__FILE__, __LINE__, "losetup failed");
	l->dev[strcspn(l->dev, "\n")] = '\0';
	l->attached = true;
	ASSERT_OK(mkdir(l->mnt, 0755));
	if (mount(l->dev, l->mnt, type, 0, NULL) < 0)
		tap_fail(__FILE__, __LINE__, "mount %s on '%s': %s", type, l->mnt, strerror(errno));
	l->mounted = true;
	return l;
}

/* A tree of n files of size bytes each below path. */
static void
make_tree(const char *path, unsigned n, size_t size)
{
	ASSERT_OK(mkdir(path, 0755));
	char p[4200];
	snprintf(p, sizeof(p), "%s/sub", path);
	ASSERT_OK(mkdir(p, 0750));
	for (unsigned i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s/%sf%u", path, i % 2 ? "sub/" : "", i);
		ASSERT_OK(fx_file(p, size, i, 0644));
	}
}

static void
check_enospc(unsigned flags, const char *tag)
{
	if (!have("mkfs.ext4"))
		tap_skip("mkfs.ext4 missing");
	loopfs_remove_all();
	struct loopfs *l = loopfs_new(tag, "ext4", 32, "mkfs.ext4 -q -F");
	char src[4200], dst[4200];
	snprintf(src, sizeof(src), "%s/%s-src", tap_tmpdir(), tag);
	snprintf(dst, sizeof(dst), "%s/dst", l->mnt);
	make_tree(src, 48, 1u << 20); /* 48 MiB into 32 */

	int fds = fx_count_fds();
	struct sc_err err = SC_ERR_INIT;
	int r = snap_copy_tree(AT_FDCWD, src, AT_FDCWD, dst,
			       &(struct snap_copy_opts){.flags = flags}, NULL, &err);
	ASSERT_ERRNO(r, -ENOSPC);
	printf("# %s\n", sc_err_msg(&err));
	ASSERT_TRUE(strstr(sc_err_msg(&err), dst) != NULL); /* names the file */
	ASSERT_TRUE(strstr(sc_err_msg(&err), "No space left on device") != NULL);
	ASSERT_EQ(fx_count_fds(), fds);
	/* the caller can remove the partial tree and the file system is usable again */
	ASSERT_OK(sc_rm_rf_at(AT_FDCWD, dst));
	loopfs_remove_all();
}

TEST(enospc_ext4)
{
	check_enospc(0, "enospc");
}

TEST(enospc_ext4_no_uring)
{
	check_enospc(SNAP_COPY_NO_URING, "enospc-nu");
}

TEST(edquot_btrfs_qgroup)
{
	if (!have("mkfs.btrfs") || !have("btrfs"))
		tap_skip("btrfs-progs missing");
	loopfs_remove_all();
	struct loopfs *l = loopfs_new("quota", "btrfs", 256, "mkfs.btrfs -q -f");
	if (fx_sh("btrfs quota enable '%s' && btrfs qgroup limit 10M '%s'", l->mnt, l->mnt) != 0)
		tap_fail(__FILE__, __LINE__, "cannot set a btrfs qgroup limit");
	char src[4200], dst[4200];
	snprintf(src, sizeof(src), "%s/quota-src", tap_tmpdir());
	snprintf(dst, sizeof(dst), "%s/dst", l->mnt);
	make_tree(src, 24, 1u << 20);
	int fds = fx_count_fds();
	struct sc_err err = SC_ERR_INIT;
	ASSERT_ERRNO(snap_copy_tree(AT_FDCWD, src, AT_FDCWD, dst, NULL, NULL, &err), -EDQUOT);
	printf("# %s\n", sc_err_msg(&err));
	ASSERT_TRUE(strstr(sc_err_msg(&err), dst) != NULL);
	ASSERT_EQ(fx_count_fds(), fds);
	loopfs_remove_all();
}

/* True when the first extent of path is shared with another file. */
static bool
first_extent_shared(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct {
		struct fiemap fm;
		struct fiemap_extent ext[1];
	} buf = {.fm = {.fm_length = FIEMAP_MAX_OFFSET,
			.fm_flags = FIEMAP_FLAG_SYNC,
			.fm_extent_count = 1}};
	bool shared = ioctl(fd, FS_IOC_FIEMAP, &buf.fm) == 0 && buf.fm.fm_mapped_extents == 1 &&
		      (buf.ext[0].fe_flags & FIEMAP_EXTENT_SHARED);
	close(fd);
	return shared;
}

static void
check_reflink(const char *type, const char *mkfs, unsigned size_mb)
{
	char tool[64];
	snprintf(tool, sizeof(tool), "mkfs.%s", type);
	if (!have(tool))
		tap_skip("mkfs tool missing");
	loopfs_remove_all();
	struct loopfs *l = loopfs_new(type, type, size_mb, mkfs);
	char src[4200], dst[4200], other[4200], p[4300];
	snprintf(src, sizeof(src), "%s/src", l->mnt);
	snprintf(dst, sizeof(dst), "%s/dst", l->mnt);
	make_tree(src, 40, 70000);
	snprintf(p, sizeof(p), "%s/big", src);
	ASSERT_OK(fx_file(p, 8u << 20, 1, 0600));
	snprintf(p, sizeof(p), "%s/empty", src);
	ASSERT_OK(fx_file(p, 0, 1, 0600));
	ASSERT_OK(fx_sh("sync"));

	struct snap_copy_stats st = {0};
	struct sc_err err = SC_ERR_INIT;
	int r = snap_copy_tree(AT_FDCWD, src, AT_FDCWD, dst, NULL, &st, &err);
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "copy: %s", sc_err_msg(&err));
	fx_compare_trees(src, dst);
	ASSERT_EQ(st.files, 42);
	ASSERT_EQ(st.by_method[SNAP_COPY_REFLINK], 41); /* every file with data */
	ASSERT_EQ(st.by_method[SNAP_COPY_URING] + st.by_method[SNAP_COPY_RANGE] +
			  st.by_method[SNAP_COPY_RW],
		  0);
	snprintf(p, sizeof(p), "%s/big", dst);
	ASSERT_TRUE(first_extent_shared(p));

	/* From another file system there is nothing to share: data is copied. */
	snprintf(other, sizeof(other), "%s/%s-other", tap_tmpdir(), type);
	make_tree(other, 10, 5000);
	snprintf(dst, sizeof(dst), "%s/dst2", l->mnt);
	r = snap_copy_tree(AT_FDCWD, other, AT_FDCWD, dst, NULL, &st, &err);
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "copy: %s", sc_err_msg(&err));
	fx_compare_trees(other, dst);
	ASSERT_EQ(st.by_method[SNAP_COPY_REFLINK], 0);
	ASSERT_EQ(st.files, 10);
	loopfs_remove_all();
}

TEST(reflink_xfs)
{
	check_reflink("xfs", "mkfs.xfs -q -f -m reflink=1", 320);
}

TEST(reflink_btrfs)
{
	check_reflink("btrfs", "mkfs.btrfs -q -f", 256);
}

int
main(int argc, char **argv)
{
	tap_require_root();
	if (!have("losetup"))
		tap_skip_all("losetup missing");
	atexit(loopfs_remove_all);
	umask(022);
	return tap_main(argc, argv);
}
