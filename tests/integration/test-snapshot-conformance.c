/*
 * The snapshot conformance suite, run once per driver (argv[1]). It checks
 * what containerd's snapshotter test suite checks, through this library's
 * API and real mounts: every case prepares, mounts, writes, unmounts and
 * commits, then looks at what a user would see.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "mount.h"
#include "store.h"
#include "tap.h"
#include "util.h"

static const char *driver;
static struct snap_store *store;
static char store_root[PATH_MAX];
static char mnt[PATH_MAX];

/* A fresh store per test point, so cases cannot lean on each other. */
static void
fresh_store(void)
{
	static int n;
	if (store)
		store = snap_store_close(store);
	snprintf(store_root, sizeof(store_root), "%s/store-%d", tap_tmpdir(), ++n);
	snprintf(mnt, sizeof(mnt), "%s/mnt-%d", tap_tmpdir(), n);
	ASSERT_OK(sc_mkdir_p(mnt, 0755));
	struct sc_err err = SC_ERR_INIT;
	struct snap_store_opts opts = {.root = store_root, .driver = driver};
	int r = snap_store_open(&opts, &store, &err);
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "open: %s", sc_err_msg(&err));
	ASSERT_STREQ(snap_store_driver_name(store), driver);
}

static void
do_mount(const char *key)
{
	struct sc_err err = SC_ERR_INIT;
	struct snap_mounts m = {0};
	int r = snap_snapshot_mounts(store, key, &m, &err);
	if (r >= 0)
		r = snap_mounts_apply(&m, mnt, &err);
	snap_mounts_clear(&m);
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "mount %s: %s", key, sc_err_msg(&err));
}

static void
do_umount(void)
{
	ASSERT_OK(umount2(mnt, 0) == 0 ? 0 : -errno);
}

static void
prepare(const char *key, const char *parent)
{
	struct sc_err err = SC_ERR_INIT;
	int r = snap_snapshot_prepare(store, key, parent, SNAP_KIND_ACTIVE, NULL, NULL, &err);
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "prepare %s: %s", key, sc_err_msg(&err));
}

static void
commit(const char *name, const char *key)
{
	struct sc_err err = SC_ERR_INIT;
	int r = snap_snapshot_commit(store, name, key, NULL, 0, &err);
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "commit %s: %s", name, sc_err_msg(&err));
}

static void
write_file(const char *rel, const char *content)
{
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/%s", mnt, rel);
	FILE *f = fopen(path, "w");
	if (!f)
		tap_fail(__FILE__, __LINE__, "create %s: %m", path);
	fputs(content, f);
	ASSERT_OK(fclose(f) == 0 ? 0 : -errno);
}

/* Content of mnt/rel, or NULL if it does not exist. Static buffer. */
static const char *
read_file(const char *rel)
{
	static char buf[4096];
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/%s", mnt, rel);
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int
path_stat(const char *rel, struct stat *st)
{
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/%s", mnt, rel);
	return lstat(path, st) < 0 ? -errno : 0;
}

static void
mkdir_in(const char *rel, mode_t mode)
{
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/%s", mnt, rel);
	ASSERT_OK(mkdir(path, mode) < 0 ? -errno : 0);
	ASSERT_OK(chmod(path, mode) < 0 ? -errno : 0);
}

/* Commits a layer on parent holding one file with content. */
static void
layer(const char *name, const char *parent, const char *file, const char *content)
{
	char key[256];
	snprintf(key, sizeof(key), "%s-active", name);
	prepare(key, parent);
	do_mount(key);
	write_file(file, content);
	do_umount();
	commit(name, key);
}

TEST(three_level_chain)
{
	fresh_store();
	layer("l1", NULL, "a", "1");
	layer("l2", "l1", "b", "2");
	layer("l3", "l2", "c", "3");
	prepare("top", "l3");
	do_mount("top");
	ASSERT_STREQ(read_file("a"), "1");
	ASSERT_STREQ(read_file("b"), "2");
	ASSERT_STREQ(read_file("c"), "3");
	do_umount();
	/* Each level shows only what was below and at it. */
	struct sc_err err = SC_ERR_INIT;
	ASSERT_OK(snap_snapshot_prepare(store, "v1", "l1", SNAP_KIND_VIEW, NULL, NULL, &err));
	do_mount("v1");
	ASSERT_STREQ(read_file("a"), "1");
	ASSERT_TRUE(read_file("b") == NULL);
	do_umount();
}

TEST(stat_each_kind)
{
	fresh_store();
	layer("base", NULL, "f", "x");
	prepare("act", "base");
	struct sc_err err = SC_ERR_INIT;
	ASSERT_OK(snap_snapshot_prepare(store, "view", "base", SNAP_KIND_VIEW, NULL, NULL, &err));
	struct snap_info info = {0};
	ASSERT_OK(snap_snapshot_stat(store, "act", &info, &err));
	ASSERT_EQ(info.kind, SNAP_KIND_ACTIVE);
	ASSERT_STREQ(info.parent, "base");
	snap_info_clear(&info);
	ASSERT_OK(snap_snapshot_stat(store, "view", &info, &err));
	ASSERT_EQ(info.kind, SNAP_KIND_VIEW);
	ASSERT_STREQ(info.parent, "base");
	snap_info_clear(&info);
	ASSERT_OK(snap_snapshot_stat(store, "base", &info, &err));
	ASSERT_EQ(info.kind, SNAP_KIND_COMMITTED);
	ASSERT_TRUE(info.parent == NULL);
	ASSERT_TRUE(info.size > 0);
	ASSERT_TRUE(info.created > 0 && info.last_used >= info.created);
	snap_info_clear(&info);
	ASSERT_ERRNO(snap_snapshot_stat(store, "nope", &info, &err), -ENOENT);
}

TEST(directory_removed_in_upper)
{
	fresh_store();
	prepare("a", NULL);
	do_mount("a");
	mkdir_in("d", 0755);
	write_file("d/f", "x");
	do_umount();
	commit("base", "a");
	prepare("b", "base");
	do_mount("b");
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/d/f", mnt);
	ASSERT_OK(unlink(path) < 0 ? -errno : 0);
	snprintf(path, sizeof(path), "%s/d", mnt);
	ASSERT_OK(rmdir(path) < 0 ? -errno : 0);
	do_umount();
	commit("upper", "b");
	prepare("c", "upper");
	do_mount("c");
	struct stat st;
	ASSERT_ERRNO(path_stat("d", &st), -ENOENT);
	do_umount();
}

TEST(chown_kept_across_commit)
{
	fresh_store();
	prepare("a", NULL);
	do_mount("a");
	write_file("owned", "x");
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/owned", mnt);
	ASSERT_OK(chown(path, 1234, 5678) < 0 ? -errno : 0);
	do_umount();
	commit("base", "a");
	prepare("b", "base");
	do_mount("b");
	struct stat st;
	ASSERT_OK(path_stat("owned", &st));
	ASSERT_EQ(st.st_uid, 1234);
	ASSERT_EQ(st.st_gid, 5678);
	do_umount();
}

TEST(file_capability_kept)
{
	/* A capability (ping's cap_net_raw) set in a layer is there in its child. */
	static const unsigned char cap[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00};
	fresh_store();
	prepare("a", NULL);
	do_mount("a");
	write_file("ping", "x");
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/ping", mnt);
	ASSERT_OK(setxattr(path, "security.capability", cap, sizeof(cap), 0) < 0 ? -errno : 0);
	do_umount();
	commit("base", "a");
	prepare("b", "base");
	do_mount("b");
	unsigned char got[64];
	ssize_t n = getxattr(path, "security.capability", got, sizeof(got));
	ASSERT_EQ(n, (ssize_t)sizeof(cap));
	ASSERT_TRUE(memcmp(got, cap, sizeof(cap)) == 0);
	do_umount();
}

TEST(rename_across_layers)
{
	fresh_store();
	prepare("a", NULL);
	do_mount("a");
	mkdir_in("dir", 0755);
	write_file("dir/f", "content");
	write_file("file", "moved");
	do_umount();
	commit("base", "a");
	prepare("b", "base");
	do_mount("b");
	char from[PATH_MAX * 2], to[PATH_MAX * 2];
	snprintf(from, sizeof(from), "%s/file", mnt);
	snprintf(to, sizeof(to), "%s/file2", mnt);
	ASSERT_OK(rename(from, to) < 0 ? -errno : 0);
	/*
	 * A directory from a lower layer: with redirect_dir=off (so the upper
	 * stays a faithful diff) overlay answers rename(2) with EXDEV and mv
	 * copies instead, as it does across file systems. What users run is mv.
	 */
	char cmd[PATH_MAX * 5];
	snprintf(cmd, sizeof(cmd), "mv '%s/dir' '%s/dir2'", mnt, mnt);
	ASSERT_EQ(system(cmd), 0);
	do_umount();
	commit("renamed", "b");
	prepare("c", "renamed");
	do_mount("c");
	struct stat st;
	ASSERT_ERRNO(path_stat("file", &st), -ENOENT);
	ASSERT_ERRNO(path_stat("dir", &st), -ENOENT);
	ASSERT_STREQ(read_file("file2"), "moved");
	ASSERT_STREQ(read_file("dir2/f"), "content");
	do_umount();
}

TEST(directory_permissions_kept)
{
	fresh_store();
	prepare("a", NULL);
	do_mount("a");
	mkdir_in("secret", 0700);
	mkdir_in("sticky", 01777);
	do_umount();
	commit("base", "a");
	prepare("b", "base");
	do_mount("b");
	struct stat st;
	ASSERT_OK(path_stat("secret", &st));
	ASSERT_EQ(st.st_mode & 07777, 0700);
	ASSERT_OK(path_stat("sticky", &st));
	ASSERT_EQ(st.st_mode & 07777, 01777);
	do_umount();
}

struct walk_check {
	int seen;
	int bad;
};

static int
walk_stat(const struct snap_info *info, void *arg)
{
	struct walk_check *w = arg;
	struct snap_info again = {0};
	struct sc_err err = SC_ERR_INIT;
	/* Calling back into the store from inside the walk must work. */
	if (snap_snapshot_stat(store, info->key, &again, &err) < 0 || again.id != info->id ||
	    again.kind != info->kind)
		w->bad++;
	snap_info_clear(&again);
	w->seen++;
	return 0;
}

TEST(stat_inside_walk)
{
	fresh_store();
	layer("base", NULL, "f", "x");
	prepare("a", "base");
	prepare("b", "base");
	struct walk_check w = {0};
	struct sc_err err = SC_ERR_INIT;
	ASSERT_OK(snap_snapshot_walk(store, NULL, walk_stat, &w, &err));
	ASSERT_EQ(w.seen, 3);
	ASSERT_EQ(w.bad, 0);
	/* Filters: by kind, by parent, by label. */
	struct snap_filter f = {.kind = SNAP_KIND_ACTIVE};
	w = (struct walk_check){0};
	ASSERT_OK(snap_snapshot_walk(store, &f, walk_stat, &w, &err));
	ASSERT_EQ(w.seen, 2);
	struct snap_label l = {.key = "team", .value = "ci"};
	ASSERT_OK(snap_snapshot_label(store, "a", &l, 1, NULL, &err));
	f = (struct snap_filter){.kind = -1, .label = "team=ci"};
	w = (struct walk_check){0};
	ASSERT_OK(snap_snapshot_walk(store, &f, walk_stat, &w, &err));
	ASSERT_EQ(w.seen, 1);
	f = (struct snap_filter){.kind = -1, .parent = ""};
	w = (struct walk_check){0};
	ASSERT_OK(snap_snapshot_walk(store, &f, walk_stat, &w, &err));
	ASSERT_EQ(w.seen, 1);
}

TEST(remove_twice)
{
	fresh_store();
	prepare("a", NULL);
	struct sc_err err = SC_ERR_INIT;
	ASSERT_OK(snap_snapshot_remove(store, "a", &err));
	sc_err_clear(&err);
	ASSERT_ERRNO(snap_snapshot_remove(store, "a", &err), -ENOENT);
	/* The folder is gone, not just the record. */
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/snapshots/1", store_root);
	ASSERT_TRUE(access(path, F_OK) < 0 && errno == ENOENT);
}

TEST(root_directory_permission)
{
	fresh_store();
	prepare("a", NULL);
	do_mount("a");
	struct stat st;
	ASSERT_OK(stat(mnt, &st) < 0 ? -errno : 0);
	ASSERT_EQ(st.st_mode & 07777, 0755);
	do_umount();
}

static void
deep_chain(int depth)
{
	char parent[64] = "", name[64], file[64];
	for (int i = 1; i <= depth; i++) {
		snprintf(name, sizeof(name), "layer-%d", i);
		snprintf(file, sizeof(file), "file-%d", i);
		layer(name, i > 1 ? parent : NULL, file, name);
		memcpy(parent, name, sizeof(name));
	}
}

TEST(chain_of_128_layers)
{
	fresh_store();
	deep_chain(128);
	prepare("top", "layer-128");
	do_mount("top");
	ASSERT_STREQ(read_file("file-128"), "layer-128");
	ASSERT_STREQ(read_file("file-1"), "layer-1");
	ASSERT_STREQ(read_file("file-64"), "layer-64");
	do_umount();
	struct sc_err err = SC_ERR_INIT;
	ASSERT_OK(snap_snapshot_prepare(store, "view", "layer-128", SNAP_KIND_VIEW, NULL, NULL,
					&err));
	do_mount("view");
	ASSERT_STREQ(read_file("file-100"), "layer-100");
	do_umount();
}

TEST(chain_at_the_kernel_limit)
{
	fresh_store();
	/* 500 committed layers: the kernel's stack limit, reached through lowerdir+. */
	deep_chain(500);
	prepare("top", "layer-500");
	do_mount("top");
	ASSERT_STREQ(read_file("file-500"), "layer-500");
	ASSERT_STREQ(read_file("file-1"), "layer-1");
	do_umount();
	/* One more is a clear error at mount time, not a silent truncation. */
	layer("layer-501", "layer-500", "file-501", "x");
	prepare("too-deep", "layer-501");
	struct sc_err err = SC_ERR_INIT;
	struct snap_mounts m = {0};
	ASSERT_ERRNO(snap_snapshot_mounts(store, "too-deep", &m, &err), -E2BIG);
	ASSERT_TRUE(strstr(sc_err_msg(&err), "501 layers") != NULL);
	ASSERT_TRUE(strstr(sc_err_msg(&err), "500") != NULL);
}

TEST(chain_through_legacy_mount)
{
	fresh_store();
	/*
	 * Kernels before 6.8 have no lowerdir+: mount(2) with paths relative to
	 * ROOT/snapshots. 100 layers are far past the ~40 that absolute paths fit.
	 */
	deep_chain(100);
	prepare("top", "layer-100");
	setenv("SNAPCTL_OVERLAY_MOUNT", "legacy", 1);
	do_mount("top");
	unsetenv("SNAPCTL_OVERLAY_MOUNT");
	ASSERT_STREQ(read_file("file-100"), "layer-100");
	ASSERT_STREQ(read_file("file-1"), "layer-1");
	do_umount();
}

TEST(modify_lower_file_above)
{
	fresh_store();
	layer("base", NULL, "f", "original");
	prepare("a", "base");
	do_mount("a");
	write_file("f", "changed");
	ASSERT_STREQ(read_file("f"), "changed");
	do_umount();
	struct sc_err err = SC_ERR_INIT;
	ASSERT_OK(snap_snapshot_prepare(store, "v", "base", SNAP_KIND_VIEW, NULL, NULL, &err));
	do_mount("v");
	ASSERT_STREQ(read_file("f"), "original");
	do_umount();
}

TEST(remove_parent_with_children)
{
	fresh_store();
	layer("base", NULL, "f", "x");
	prepare("child", "base");
	struct sc_err err = SC_ERR_INIT;
	ASSERT_ERRNO(snap_snapshot_remove(store, "base", &err), -EBUSY);
	sc_err_clear(&err);
	ASSERT_OK(snap_snapshot_remove(store, "child", &err));
	ASSERT_OK(snap_snapshot_remove(store, "base", &err));
}

TEST(commit_of_a_view_fails)
{
	fresh_store();
	layer("base", NULL, "f", "x");
	struct sc_err err = SC_ERR_INIT;
	ASSERT_OK(snap_snapshot_prepare(store, "v", "base", SNAP_KIND_VIEW, NULL, NULL, &err));
	ASSERT_ERRNO(snap_snapshot_commit(store, "c", "v", NULL, 0, &err), -EINVAL);
	ASSERT_TRUE(strstr(sc_err_msg(&err), "not active") != NULL);
	sc_err_clear(&err);
	/* Committing a committed snapshot fails the same way. */
	ASSERT_ERRNO(snap_snapshot_commit(store, "c", "base", NULL, 0, &err), -EINVAL);
	/* A committed snapshot is not mounted directly: a view is. */
	struct snap_mounts m = {0};
	sc_err_clear(&err);
	ASSERT_ERRNO(snap_snapshot_mounts(store, "base", &m, &err), -EINVAL);
}

TEST(prepare_existing_key)
{
	fresh_store();
	prepare("a", NULL);
	struct sc_err err = SC_ERR_INIT;
	ASSERT_ERRNO(snap_snapshot_prepare(store, "a", NULL, SNAP_KIND_ACTIVE, NULL, NULL, &err),
		     -EEXIST);
	sc_err_clear(&err);
	layer("base", NULL, "f", "x");
	ASSERT_ERRNO(snap_snapshot_prepare(store, "base", NULL, SNAP_KIND_ACTIVE, NULL, NULL, &err),
		     -EEXIST);
	sc_err_clear(&err);
	/* commit onto an existing name, too */
	prepare("b", NULL);
	ASSERT_ERRNO(snap_snapshot_commit(store, "base", "b", NULL, 0, &err), -EEXIST);
}

TEST(label_update)
{
	fresh_store();
	prepare("a", NULL);
	struct sc_err err = SC_ERR_INIT;
	struct snap_label set[] = {{"k1", "v1"}, {"k2", "v2"}};
	struct snap_info info = {0};
	ASSERT_OK(snap_snapshot_label(store, "a", set, 2, &info, &err));
	ASSERT_EQ(info.nlabels, 2);
	snap_info_clear(&info);
	struct snap_label change[] = {{"k1", "new"}, {"k2", ""}};
	ASSERT_OK(snap_snapshot_label(store, "a", change, 2, NULL, &err));
	ASSERT_OK(snap_snapshot_stat(store, "a", &info, &err));
	ASSERT_EQ(info.nlabels, 1);
	ASSERT_STREQ(snap_info_label(&info, "k1"), "new");
	ASSERT_TRUE(snap_info_label(&info, "k2") == NULL);
	snap_info_clear(&info);
	/* Labels travel through commit. */
	ASSERT_OK(snap_snapshot_commit(store, "c", "a", NULL, 0, &err));
	ASSERT_OK(snap_snapshot_stat(store, "c", &info, &err));
	ASSERT_STREQ(snap_info_label(&info, "k1"), "new");
	snap_info_clear(&info);
}

static uint64_t
du_bytes(const char *path)
{
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof(cmd), "du -s -B1 '%s'", path);
	FILE *p = popen(cmd, "r");
	unsigned long long v = 0;
	if (!p || fscanf(p, "%llu", &v) != 1)
		v = 0;
	if (p)
		pclose(p);
	return v;
}

TEST(usage_matches_du)
{
	fresh_store();
	prepare("a", NULL);
	do_mount("a");
	char big[65536];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	write_file("big", big);
	mkdir_in("d", 0755);
	write_file("d/small", "s");
	do_umount();
	struct sc_err err = SC_ERR_INIT;
	struct snap_info info = {0};
	ASSERT_OK(snap_snapshot_stat(store, "a", &info, &err));
	char dir[PATH_MAX * 2];
	snprintf(dir, sizeof(dir), "%s/snapshots/%" PRIu64, store_root, info.id);
	snap_info_clear(&info);
	uint64_t bytes = 0, inodes = 0;
	ASSERT_OK(snap_snapshot_usage(store, "a", &bytes, &inodes, &err));
	ASSERT_EQ(bytes, du_bytes(dir));
	ASSERT_TRUE(bytes >= 65536);
	ASSERT_OK(snap_snapshot_commit(store, "c", "a", NULL, 0, &err));
	uint64_t cbytes = 0;
	ASSERT_OK(snap_snapshot_usage(store, "c", &cbytes, &inodes, &err));
	ASSERT_EQ(cbytes, du_bytes(dir));
	/* The counters carry the committed total. */
	struct snap_store_counts counts;
	ASSERT_OK(snap_store_counts(store, &counts, &err));
	ASSERT_EQ(counts.committed_bytes, cbytes);
	ASSERT_EQ(counts.snapshots[SNAP_KIND_COMMITTED], 1);
	ASSERT_EQ(counts.snapshots[SNAP_KIND_ACTIVE], 0);
}

TEST(view_is_read_only)
{
	fresh_store();
	layer("base", NULL, "f", "x");
	struct sc_err err = SC_ERR_INIT;
	ASSERT_OK(snap_snapshot_prepare(store, "v", "base", SNAP_KIND_VIEW, NULL, NULL, &err));
	do_mount("v");
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/new", mnt);
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	int e = errno;
	if (fd >= 0)
		close(fd);
	do_umount();
	ASSERT_TRUE(fd < 0 && e == EROFS);
}

TEST(parent_must_be_committed)
{
	fresh_store();
	prepare("a", NULL);
	struct sc_err err = SC_ERR_INIT;
	ASSERT_ERRNO(snap_snapshot_prepare(store, "b", "a", SNAP_KIND_ACTIVE, NULL, NULL, &err),
		     -EINVAL);
	sc_err_clear(&err);
	ASSERT_ERRNO(
		snap_snapshot_prepare(store, "b", "missing", SNAP_KIND_ACTIVE, NULL, NULL, &err),
		-ENOENT);
	ASSERT_TRUE(strstr(sc_err_msg(&err), "missing") != NULL);
}

/* Overlay's own limits and mount paths: the other drivers have neither. */
static bool
applies(const char *name)
{
	return strcmp(driver, "overlay") == 0 || (strcmp(name, "chain_at_the_kernel_limit") != 0 &&
						  strcmp(name, "chain_through_legacy_mount") != 0);
}

int
main(int argc, char **argv)
{
	tap_require_root();
	driver = argc > 1 ? argv[1] : "overlay";
	tap_filter(applies);
	int r = tap_main(argc - 1, argv + 1);
	snap_store_close(store);
	return r;
}
