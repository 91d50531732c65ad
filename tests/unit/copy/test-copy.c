/*
 * Copy engine, as any user: every kind of entry, metadata, hard links, holes,
 * large and many small files, limits and errors. Most points run twice: with
 * io_uring where the system allows it and with SNAP_COPY_NO_URING. Points
 * that need root (owners, device nodes, trusted.* xattrs) skip otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cleanup.h"
#include "copy-fixture.h"
#include "copy.h"
#include "tap.h"

/* Defines name (default flags) and name_no_uring (SNAP_COPY_NO_URING). */
#define TEST_BOTH(name)                                                                            \
	static void body_##name(const char *tag, unsigned flags);                                  \
	TEST(name)                                                                                 \
	{                                                                                          \
		body_##name(#name, 0);                                                             \
	}                                                                                          \
	TEST(name##_no_uring)                                                                      \
	{                                                                                          \
		body_##name(#name "_no_uring", SNAP_COPY_NO_URING);                                \
	}                                                                                          \
	static void body_##name(const char *tag, unsigned flags)

static uint64_t
nonempty_methods(const struct snap_copy_stats *st)
{
	uint64_t n = 0;
	for (int i = 0; i < _SNAP_COPY_METHOD_MAX; i++)
		n += st->by_method[i];
	return n;
}

/* With io_uring allowed and no reflink, small files must go through the ring. */
static void
check_uring_used(const struct snap_copy_stats *st, unsigned flags, uint64_t small_files)
{
	if (flags & SNAP_COPY_NO_URING) {
		ASSERT_EQ(st->by_method[SNAP_COPY_URING], 0);
		return;
	}
	if (fx_uring_available() && st->by_method[SNAP_COPY_REFLINK] == 0)
		ASSERT_TRUE(st->by_method[SNAP_COPY_URING] >= small_files);
}

TEST_BOTH(tree_kinds_modes_times)
{
	char *src = strdup(fx_path("%s-src", tag)), *dst = strdup(fx_path("%s-dst", tag));
	ASSERT_OK(mkdir(src, 0755));
	ASSERT_OK(mkdir(fx_path("%s-src/a", tag), 0755));
	ASSERT_OK(mkdir(fx_path("%s-src/a/b", tag), 0700));
	ASSERT_OK(mkdir(fx_path("%s-src/ro", tag), 0755));
	ASSERT_OK(mkdir(fx_path("%s-src/sticky", tag), 0755));
	ASSERT_OK(mkdir(fx_path("%s-src/empty", tag), 0750));

	static const struct {
		const char *name;
		size_t size;
		mode_t mode;
	} files[] = {
		{"zero", 0, 0644},	     {"one", 1, 0600},
		{"a/page", 4096, 0755},	     {"a/odd", 4095, 0444},
		{"a/b/chunk", 131072, 0640}, {"a/b/chunks", 300001, 0604},
		{"ro/inside", 1000, 0644},   {"big", 5u << 20, 0644},
		{"setuid", 100, 04755},	     {"sticky/x", 10, 0666},
	};
	uint64_t bytes = 0, nonempty = 0, small = 0;
	for (unsigned i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		const char *p = fx_path("%s-src/%s", tag, files[i].name);
		ASSERT_OK(fx_file(p, files[i].size, i + 1, files[i].mode));
		ASSERT_OK(fx_times(p, 1500000000 + i, 123456789 + i));
		bytes += files[i].size;
		nonempty += files[i].size > 0;
		small += files[i].size > 0 && files[i].size <= (1u << 20);
	}
	ASSERT_OK(symlink("../one", fx_path("%s-src/a/rel-link", tag)));
	ASSERT_OK(symlink("/nonexistent/target", fx_path("%s-src/dangling", tag)));
	ASSERT_OK(symlink("/etc", fx_path("%s-src/etc-link", tag))); /* never followed */
	ASSERT_OK(symlink("a", fx_path("%s-src/dir-link", tag)));
	ASSERT_OK(fx_times(fx_path("%s-src/dir-link", tag), 1400000000, 5));
	ASSERT_OK(mkfifo(fx_path("%s-src/a/fifo", tag), 0620));
	ASSERT_OK(mknod(fx_path("%s-src/sock", tag), S_IFSOCK | 0755, 0));
	ASSERT_OK(fx_times(fx_path("%s-src/a/fifo", tag), 1300000000, 999999999));

	/* Directory times last, and modes that would stop writing into them. */
	ASSERT_OK(chmod(fx_path("%s-src/ro", tag), 0555));
	ASSERT_OK(chmod(fx_path("%s-src/sticky", tag), 01777));
	ASSERT_OK(chmod(fx_path("%s-src/a/b", tag), 02750));
	const char *dirs[] = {"a/b", "a", "ro", "sticky", "empty", ""};
	for (unsigned i = 0; i < 6; i++)
		ASSERT_OK(fx_times(fx_path("%s-src/%s", tag, dirs[i]), 1600000000 + i, 42 + i));

	struct snap_copy_stats st = {0};
	struct sc_err err = SC_ERR_INIT;
	int r = fx_copy(src, dst, flags, &st, &err);
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "copy: %s", sc_err_msg(&err));
	fx_compare_trees(src, dst);

	ASSERT_EQ(st.files, 10);
	ASSERT_EQ(st.dirs, 6);
	ASSERT_EQ(st.symlinks, 4);
	ASSERT_EQ(st.specials, 2);
	ASSERT_EQ(st.hardlinks, 0);
	ASSERT_EQ(st.bytes, bytes);
	ASSERT_EQ(nonempty_methods(&st), nonempty);
	check_uring_used(&st, flags, small);

	/* the copy is its own: symlinks were not followed, /etc was not copied */
	struct stat s;
	ASSERT_OK(lstat(fx_path("%s-dst/etc-link", tag), &s));
	ASSERT_TRUE(S_ISLNK(s.st_mode));
	fx_chmod_dirs_writable(src);
	fx_chmod_dirs_writable(dst);
	free(src);
	free(dst);
}

TEST_BOTH(xattrs)
{
	char *src = strdup(fx_path("%s-src", tag)), *dst = strdup(fx_path("%s-dst", tag));
	ASSERT_OK(mkdir(src, 0755));
	ASSERT_OK(mkdir(fx_path("%s-src/d", tag), 0755));
	ASSERT_OK(fx_file(fx_path("%s-src/f", tag), 5000, 7, 0644));
	ASSERT_OK(fx_file(fx_path("%s-src/d/g", tag), 0, 7, 0644));
	char big[4000];
	for (unsigned i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7);
	if (setxattr(fx_path("%s-src/f", tag), "user.big", big, sizeof(big), 0) < 0 &&
	    errno == EOPNOTSUPP)
		tap_skip("no user xattrs on this file system");
	ASSERT_OK(setxattr(fx_path("%s-src/f", tag), "user.empty", "", 0, 0));
	ASSERT_OK(setxattr(fx_path("%s-src/d", tag), "user.dir", "v", 1, 0));
	ASSERT_OK(setxattr(fx_path("%s-src/d/g", tag), "user.g", "gg", 2, 0));
	bool root = geteuid() == 0;
	if (root) {
		ASSERT_OK(setxattr(fx_path("%s-src/d", tag), "trusted.overlay.opaque", "y", 1, 0));
		ASSERT_OK(setxattr(fx_path("%s-src/f", tag), "trusted.overlay.origin", "o", 1, 0));
		ASSERT_OK(setxattr(fx_path("%s-src/f", tag), "trusted.keep", "k", 1, 0));
		ASSERT_OK(symlink("f", fx_path("%s-src/l", tag)));
		ASSERT_OK(lsetxattr(fx_path("%s-src/l", tag), "trusted.link", "L", 1, 0));
		ASSERT_OK(lsetxattr(fx_path("%s-src/l", tag), "trusted.overlay.x", "L", 1, 0));
		ASSERT_OK(mkfifo(fx_path("%s-src/p", tag), 0600));
		ASSERT_OK(lsetxattr(fx_path("%s-src/p", tag), "trusted.fifo", "P", 1, 0));
	}
	struct sc_err err = SC_ERR_INIT;
	int r = fx_copy(src, dst, flags, NULL, &err);
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "copy: %s", sc_err_msg(&err));
	fx_compare_trees(src, dst); /* includes: no trusted.overlay.* in dst */

	char v[8];
	ASSERT_EQ(getxattr(fx_path("%s-dst/d", tag), "user.dir", v, sizeof(v)), 1);
	ASSERT_EQ(getxattr(fx_path("%s-dst/f", tag), "user.big", NULL, 0), sizeof(big));
	ASSERT_EQ(getxattr(fx_path("%s-dst/f", tag), "user.empty", NULL, 0), 0);
	if (root) {
		ASSERT_EQ(getxattr(fx_path("%s-dst/f", tag), "trusted.keep", v, sizeof(v)), 1);
		ASSERT_EQ(lgetxattr(fx_path("%s-dst/l", tag), "trusted.link", v, sizeof(v)), 1);
		ASSERT_EQ(lgetxattr(fx_path("%s-dst/p", tag), "trusted.fifo", v, sizeof(v)), 1);
		ASSERT_TRUE(getxattr(fx_path("%s-dst/d", tag), "trusted.overlay.opaque", v,
				     sizeof(v)) < 0 &&
			    errno == ENODATA);
		ASSERT_TRUE(getxattr(fx_path("%s-dst/f", tag), "trusted.overlay.origin", v,
				     sizeof(v)) < 0 &&
			    errno == ENODATA);
		ASSERT_TRUE(lgetxattr(fx_path("%s-dst/l", tag), "trusted.overlay.x", v, sizeof(v)) <
				    0 &&
			    errno == ENODATA);
	}
	free(src);
	free(dst);
}

TEST_BOTH(hardlinks)
{
	char *src = strdup(fx_path("%s-src", tag)), *dst = strdup(fx_path("%s-dst", tag));
	ASSERT_OK(mkdir(src, 0755));
	ASSERT_OK(mkdir(fx_path("%s-src/sub", tag), 0755));
	ASSERT_OK(fx_file(fx_path("%s-src/a", tag), 10000, 1, 0644));
	ASSERT_OK(link(fx_path("%s-src/a", tag), fx_path("%s-src/b", tag)));
	ASSERT_OK(link(fx_path("%s-src/a", tag), fx_path("%s-src/sub/c", tag)));
	ASSERT_OK(fx_file(fx_path("%s-src/d", tag), 10000, 1, 0644));
	ASSERT_OK(fx_file(fx_path("%s-src/e", tag), 0, 1, 0644));
	ASSERT_OK(link(fx_path("%s-src/e", tag), fx_path("%s-src/sub/e2", tag)));
	/* overlay whiteouts are hard-linked 0/0 devices; fifos and symlinks link too */
	ASSERT_OK(mkfifo(fx_path("%s-src/p1", tag), 0600));
	ASSERT_OK(link(fx_path("%s-src/p1", tag), fx_path("%s-src/sub/p2", tag)));
	ASSERT_OK(symlink("a", fx_path("%s-src/s1", tag)));
	ASSERT_OK(linkat(AT_FDCWD, fx_path("%s-src/s1", tag), AT_FDCWD, fx_path("%s-src/s2", tag),
			 0));

	struct snap_copy_stats st = {0};
	struct sc_err err = SC_ERR_INIT;
	int r = fx_copy(src, dst, flags, &st, &err);
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "copy: %s", sc_err_msg(&err));
	fx_compare_trees(src, dst); /* checks link structure both ways */

	struct stat a, b, c, d;
	ASSERT_OK(stat(fx_path("%s-dst/a", tag), &a));
	ASSERT_OK(stat(fx_path("%s-dst/b", tag), &b));
	ASSERT_OK(stat(fx_path("%s-dst/sub/c", tag), &c));
	ASSERT_OK(stat(fx_path("%s-dst/d", tag), &d));
	ASSERT_EQ(a.st_ino, b.st_ino);
	ASSERT_EQ(a.st_ino, c.st_ino);
	ASSERT_TRUE(a.st_ino != d.st_ino);
	ASSERT_EQ(a.st_nlink, 3);
	ASSERT_EQ(st.files, 3);	    /* a, d, e */
	ASSERT_EQ(st.hardlinks, 5); /* b, sub/c, sub/e2, sub/p2, s2 */
	ASSERT_EQ(st.specials, 1);
	ASSERT_EQ(st.symlinks, 1);
	ASSERT_EQ(st.bytes, 20000);
	free(src);
	free(dst);
}

TEST_BOTH(devices)
{
	char *src = strdup(fx_path("%s-src", tag)), *dst = strdup(fx_path("%s-dst", tag));
	ASSERT_OK(mkdir(src, 0755));
	/* a whiteout (0/0) may be made by anyone since Linux 5.8 */
	ASSERT_OK(mknod(fx_path("%s-src/wh", tag), S_IFCHR | 0000, makedev(0, 0)));
	bool root = geteuid() == 0;
	if (root) {
		ASSERT_OK(mknod(fx_path("%s-src/null", tag), S_IFCHR | 0666, makedev(1, 3)));
		ASSERT_OK(mknod(fx_path("%s-src/blk", tag), S_IFBLK | 0640, makedev(7, 250)));
		ASSERT_OK(fx_times(fx_path("%s-src/blk", tag), 1234567890, 1));
	}
	struct snap_copy_stats st = {0};
	struct sc_err err = SC_ERR_INIT;
	int r = fx_copy(src, dst, flags, &st, &err);
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "copy: %s", sc_err_msg(&err));
	fx_compare_trees(src, dst);
	ASSERT_EQ(st.specials, root ? 3 : 1);
	free(src);
	free(dst);
	if (!root)
		tap_skip("whiteout checked; char/block devices need root");
}

TEST_BOTH(owners)
{
	if (geteuid() != 0)
		tap_skip("needs root");
	char *src = strdup(fx_path("%s-src", tag)), *dst = strdup(fx_path("%s-dst", tag));
	ASSERT_OK(mkdir(src, 0755));
	ASSERT_OK(mkdir(fx_path("%s-src/d", tag), 0755));
	ASSERT_OK(fx_file(fx_path("%s-src/d/f", tag), 100, 1, 0644));
	ASSERT_OK(fx_file(fx_path("%s-src/suid", tag), 100, 1, 0644));
	ASSERT_OK(symlink("x", fx_path("%s-src/l", tag)));
	ASSERT_OK(mkfifo(fx_path("%s-src/p", tag), 0600));
	ASSERT_OK(chown(fx_path("%s-src/d", tag), 4321, 8765));
	ASSERT_OK(chown(fx_path("%s-src/d/f", tag), 1234, 5678));
	ASSERT_OK(chown(fx_path("%s-src/suid", tag), 1000, 1000));
	ASSERT_OK(chmod(fx_path("%s-src/suid", tag), 06755)); /* after chown, which clears it */
	ASSERT_OK(lchown(fx_path("%s-src/l", tag), 1111, 2222));
	ASSERT_OK(chown(fx_path("%s-src/p", tag), 3333, 4444));
	ASSERT_OK(chown(src, 77, 88));

	struct sc_err err = SC_ERR_INIT;
	int r = fx_copy(src, dst, flags, NULL, &err);
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "copy: %s", sc_err_msg(&err));
	fx_compare_trees(src, dst);
	struct stat s;
	ASSERT_OK(stat(fx_path("%s-dst/suid", tag), &s));
	ASSERT_EQ(s.st_mode & 07777, 06755);
	ASSERT_EQ(s.st_uid, 1000);
	ASSERT_OK(lstat(fx_path("%s-dst/l", tag), &s));
	ASSERT_EQ(s.st_uid, 1111);
	ASSERT_EQ(s.st_gid, 2222);
	ASSERT_OK(stat(dst, &s));
	ASSERT_EQ(s.st_uid, 77);
	free(src);
	free(dst);
}

TEST_BOTH(sparse_keeps_holes)
{
	char *src = strdup(fx_path("%s-src", tag)), *dst = strdup(fx_path("%s-dst", tag));
	ASSERT_OK(mkdir(src, 0755));
	const char *f = fx_path("%s-src/sparse", tag);
	int fd = open(f, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ASSERT_OK(fd);
	char buf[8192];
	memset(buf, 'x', sizeof(buf));
	ASSERT_EQ(pwrite(fd, buf, sizeof(buf), 0), sizeof(buf));
	ASSERT_EQ(pwrite(fd, buf, sizeof(buf), 8 << 20), sizeof(buf));
	ASSERT_OK(ftruncate(fd, 32 << 20)); /* trailing hole */
	close(fd);
	/* a small sparse file too: it must not take the io_uring path, which writes zeros */
	fd = open(fx_path("%s-src/small-sparse", tag), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ASSERT_OK(fd);
	ASSERT_EQ(pwrite(fd, buf, 4096, 512 << 10), 4096);
	close(fd);
	struct stat s;
	ASSERT_OK(stat(f, &s));
	if ((uint64_t)s.st_blocks * 512 >= (uint64_t)s.st_size)
		tap_skip("this file system does not make holes");

	struct snap_copy_stats st = {0};
	struct sc_err err = SC_ERR_INIT;
	int r = fx_copy(src, dst, flags | SNAP_COPY_NO_REFLINK, &st, &err);
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "copy: %s", sc_err_msg(&err));
	fx_compare_trees(src, dst);
	struct stat d;
	ASSERT_OK(stat(fx_path("%s-dst/sparse", tag), &d));
	ASSERT_EQ(d.st_size, 32 << 20);
	ASSERT_TRUE(d.st_blocks <= s.st_blocks + 16);
	ASSERT_TRUE((uint64_t)d.st_blocks * 512 < (1u << 20));
	fd = open(fx_path("%s-dst/sparse", tag), O_RDONLY | O_CLOEXEC);
	ASSERT_OK(fd);
	ASSERT_EQ(lseek(fd, 0, SEEK_HOLE), 8192);
	ASSERT_EQ(lseek(fd, 8192, SEEK_DATA), 8 << 20);
	close(fd);
	ASSERT_OK(stat(fx_path("%s-dst/small-sparse", tag), &d));
	ASSERT_TRUE(d.st_blocks <= 16);
	ASSERT_EQ(st.by_method[SNAP_COPY_URING], 0);
	free(src);
	free(dst);
}

TEST_BOTH(large_file)
{
	char *src = strdup(fx_path("%s-src", tag)), *dst = strdup(fx_path("%s-dst", tag));
	ASSERT_OK(mkdir(src, 0755));
	ASSERT_OK(fx_file(fx_path("%s-src/large", tag), (64u << 20) + 12345, 99, 0640));
	struct snap_copy_stats st = {0};
	struct sc_err err = SC_ERR_INIT;
	int r = fx_copy(src, dst, flags, &st, &err);
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "copy: %s", sc_err_msg(&err));
	fx_compare_trees(src, dst);
	ASSERT_EQ(st.files, 1);
	ASSERT_EQ(st.bytes, (64u << 20) + 12345);
	ASSERT_EQ(nonempty_methods(&st), 1);
	ASSERT_EQ(st.by_method[SNAP_COPY_URING], 0); /* big files take copy_file_range */
	free(src);
	free(dst);
}

/* Without copy_file_range, a large file goes through io_uring in many chunks. */
TEST(large_file_uring_chunks)
{
	if (!fx_uring_available())
		tap_skip("io_uring not available here");
	char *src = strdup(fx_path("chunks-src")), *dst = strdup(fx_path("chunks-dst"));
	ASSERT_OK(mkdir(src, 0755));
	ASSERT_OK(fx_file(fx_path("chunks-src/large"), (24u << 20) + 777, 5, 0600));
	ASSERT_OK(fx_file(fx_path("chunks-src/small"), 3, 5, 0600));
	struct snap_copy_stats st = {0};
	struct sc_err err = SC_ERR_INIT;
	int r = fx_copy(src, dst, SNAP_COPY_NO_RANGE | SNAP_COPY_NO_REFLINK, &st, &err);
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "copy: %s", sc_err_msg(&err));
	fx_compare_trees(src, dst);
	ASSERT_EQ(st.by_method[SNAP_COPY_URING], 2);
	free(src);
	free(dst);
}

/* The last rung alone: read/write. */
TEST(plain_read_write)
{
	char *src = strdup(fx_path("rw-src")), *dst = strdup(fx_path("rw-dst"));
	ASSERT_OK(mkdir(src, 0755));
	ASSERT_OK(fx_file(fx_path("rw-src/a"), (3u << 20) + 1, 5, 0600));
	ASSERT_OK(fx_file(fx_path("rw-src/b"), 1, 6, 0600));
	struct snap_copy_stats st = {0};
	struct sc_err err = SC_ERR_INIT;
	int r = fx_copy(src, dst, SNAP_COPY_NO_RANGE | SNAP_COPY_NO_REFLINK | SNAP_COPY_NO_URING,
			&st, &err);
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "copy: %s", sc_err_msg(&err));
	fx_compare_trees(src, dst);
	ASSERT_EQ(st.by_method[SNAP_COPY_RW], 2);
	free(src);
	free(dst);
}

TEST_BOTH(many_small_files)
{
	char *src = strdup(fx_path("%s-src", tag)), *dst = strdup(fx_path("%s-dst", tag));
	ASSERT_OK(mkdir(src, 0755));
	uint64_t bytes = 0, nonempty = 0;
	for (unsigned d = 0; d < 50; d++) {
		ASSERT_OK(mkdir(fx_path("%s-src/d%02u", tag, d), 0755));
		for (unsigned i = 0; i < 100; i++) {
			size_t size = ((d * 100 + i) * 2654435761u) % 20000;
			if (i % 17 == 0)
				size = 0;
			ASSERT_OK(fx_file(fx_path("%s-src/d%02u/f%03u", tag, d, i), size,
					  d * 100 + i, 0644));
			bytes += size;
			nonempty += size > 0;
		}
	}
	struct snap_copy_stats st = {0};
	struct sc_err err = SC_ERR_INIT;
	int r = fx_copy(src, dst, flags, &st, &err);
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "copy: %s", sc_err_msg(&err));
	fx_compare_trees(src, dst);
	ASSERT_EQ(st.files, 5000);
	ASSERT_EQ(st.dirs, 51);
	ASSERT_EQ(st.bytes, bytes);
	ASSERT_EQ(nonempty_methods(&st), nonempty);
	check_uring_used(&st, flags, nonempty);
	free(src);
	free(dst);
}

/* Queue depths 1 and 256 both work; beyond the limit is refused. */
TEST(queue_depths)
{
	char *src = strdup(fx_path("qd-src"));
	ASSERT_OK(mkdir(src, 0755));
	for (unsigned i = 0; i < 300; i++)
		ASSERT_OK(fx_file(fx_path("qd-src/f%u", i), i * 997, i, 0644));
	ASSERT_OK(fx_file(fx_path("qd-src/big"), 3u << 20, 1, 0644));
	unsigned depths[] = {1, 2, 256};
	for (unsigned k = 0; k < 3; k++) {
		struct snap_copy_opts o = {.flags = SNAP_COPY_NO_SYNC, .queue_depth = depths[k]};
		struct sc_err err = SC_ERR_INIT;
		char *dst = strdup(fx_path("qd-dst-%u", depths[k]));
		int r = snap_copy_tree(AT_FDCWD, src, AT_FDCWD, dst, &o, NULL, &err);
		if (r < 0)
			tap_fail(__FILE__, __LINE__, "qd %u: %s", depths[k], sc_err_msg(&err));
		fx_compare_trees(src, dst);
		free(dst);
	}
	struct snap_copy_opts o = {.queue_depth = 257};
	struct sc_err err = SC_ERR_INIT;
	ASSERT_ERRNO(snap_copy_tree(AT_FDCWD, src, AT_FDCWD, fx_path("qd-dst-x"), &o, NULL, &err),
		     -EINVAL);
	free(src);
}

TEST(env_disables_uring)
{
	char *src = strdup(fx_path("env-src")), *dst = strdup(fx_path("env-dst"));
	ASSERT_OK(mkdir(src, 0755));
	for (unsigned i = 0; i < 20; i++)
		ASSERT_OK(fx_file(fx_path("env-src/f%u", i), 1000 + i, i, 0644));
	ASSERT_OK(setenv("SNAPCTL_NO_IO_URING", "1", 1));
	struct snap_copy_stats st = {0};
	struct sc_err err = SC_ERR_INIT;
	int r = fx_copy(src, dst, 0, &st, &err);
	unsetenv("SNAPCTL_NO_IO_URING");
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "copy: %s", sc_err_msg(&err));
	fx_compare_trees(src, dst);
	ASSERT_EQ(st.by_method[SNAP_COPY_URING], 0);
	ASSERT_EQ(nonempty_methods(&st), 20);
	free(src);
	free(dst);
}

/* The default path, with the final syncfs(). */
TEST(synced_copy)
{
	char *src = strdup(fx_path("sync-src")), *dst = strdup(fx_path("sync-dst"));
	ASSERT_OK(mkdir(src, 0755));
	ASSERT_OK(fx_file(fx_path("sync-src/f"), 100, 1, 0644));
	struct sc_err err = SC_ERR_INIT;
	ASSERT_OK(snap_copy_tree(AT_FDCWD, src, AT_FDCWD, dst, NULL, NULL, &err));
	fx_compare_trees(src, dst);
	free(src);
	free(dst);
}

TEST_BOTH(errors)
{
	char *src = strdup(fx_path("%s-src", tag));
	ASSERT_OK(mkdir(src, 0755));
	ASSERT_OK(fx_file(fx_path("%s-src/f", tag), 10, 1, 0644));
	for (unsigned i = 0; i < 100; i++)
		ASSERT_OK(fx_file(fx_path("%s-src/g%u", tag, i), i * 100, 1, 0644));
	struct sc_err err = SC_ERR_INIT;
	int fds = fx_count_fds();

	/* dst exists, as a directory or as a file */
	ASSERT_OK(mkdir(fx_path("%s-exists", tag), 0755));
	ASSERT_ERRNO(fx_copy(src, fx_path("%s-exists", tag), flags, NULL, &err), -EEXIST);
	ASSERT_TRUE(strstr(sc_err_msg(&err), "-exists") != NULL);
	sc_err_clear(&err);
	ASSERT_ERRNO(fx_copy(src, fx_path("%s-src/f", tag), flags, NULL, &err), -EEXIST);
	sc_err_clear(&err);

	/* src missing, or not a directory */
	ASSERT_ERRNO(fx_copy(fx_path("%s-missing", tag), fx_path("%s-d1", tag), flags, NULL, &err),
		     -ENOENT);
	ASSERT_TRUE(strstr(sc_err_msg(&err), "-missing") != NULL);
	sc_err_clear(&err);
	ASSERT_ERRNO(fx_copy(fx_path("%s-src/f", tag), fx_path("%s-d2", tag), flags, NULL, &err),
		     -EINVAL);
	sc_err_clear(&err);
	/* dst parent missing */
	ASSERT_ERRNO(fx_copy(src, fx_path("%s-nodir/x", tag), flags, NULL, &err), -ENOENT);
	sc_err_clear(&err);
	/* NULL err is fine */
	ASSERT_ERRNO(fx_copy(src, fx_path("%s-exists", tag), flags, NULL, NULL), -EEXIST);

	/* an unreadable file fails the copy and is named */
	if (geteuid() != 0) {
		ASSERT_OK(fx_file(fx_path("%s-src/secret", tag), 10, 1, 0000));
		ASSERT_ERRNO(fx_copy(src, fx_path("%s-d3", tag), flags, NULL, &err), -EACCES);
		ASSERT_TRUE(strstr(sc_err_msg(&err), "secret") != NULL);
		sc_err_clear(&err);
	}
	ASSERT_EQ(fx_count_fds(), fds); /* nothing leaked on any of those paths */
	free(src);
}

TEST(too_deep)
{
	char *src = strdup(fx_path("deep-src"));
	ASSERT_OK(mkdir(src, 0755));
	int fd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(fd);
	for (int i = 0; i < SNAP_COPY_MAX_DEPTH + 5; i++) {
		ASSERT_OK(mkdirat(fd, "d", 0755));
		int n = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ASSERT_OK(n);
		close(fd);
		fd = n;
	}
	ASSERT_OK(fx_file(fx_path("deep-src/d/f"), 10, 1, 0644));
	close(fd);
	struct sc_err err = SC_ERR_INIT;
	ASSERT_ERRNO(fx_copy(src, fx_path("deep-dst"), 0, NULL, &err), -ELOOP);
	ASSERT_TRUE(strstr(sc_err_msg(&err), "deep-src/d/d/d") != NULL);
	free(src);
}

TEST(path_too_long)
{
	char *src = strdup(fx_path("long-src"));
	ASSERT_OK(mkdir(src, 0755));
	char name[251];
	memset(name, 'n', 250);
	name[250] = '\0';
	int fd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_OK(fd);
	for (int i = 0; i < 17; i++) { /* 17 * 251 > SNAP_COPY_MAX_PATH */
		ASSERT_OK(mkdirat(fd, name, 0755));
		int n = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ASSERT_OK(n);
		close(fd);
		fd = n;
	}
	close(fd);
	struct sc_err err = SC_ERR_INIT;
	ASSERT_ERRNO(fx_copy(src, fx_path("long-dst"), 0, NULL, &err), -ENAMETOOLONG);
	free(src);
}

TEST(copy_into_itself)
{
	char *src = strdup(fx_path("self"));
	ASSERT_OK(mkdir(src, 0755));
	ASSERT_OK(fx_file(fx_path("self/f"), 10, 1, 0644));
	struct snap_copy_stats st = {0};
	struct sc_err err = SC_ERR_INIT;
	int r = fx_copy(src, fx_path("self/copy"), 0, &st, &err);
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "copy: %s", sc_err_msg(&err));
	struct stat s;
	ASSERT_OK(stat(fx_path("self/copy/f"), &s));
	ASSERT_TRUE(stat(fx_path("self/copy/copy"), &s) < 0 && errno == ENOENT);
	ASSERT_EQ(st.files, 1);
	free(src);
}

/* Several roots in one walk: only the named entries, links between them kept, folders left alone.
 */
TEST_BOTH(entries)
{
	char *src = strdup(fx_path("%s-src", tag)), *dst = strdup(fx_path("%s-dst", tag));
	ASSERT_OK(mkdir(src, 0755));
	ASSERT_OK(mkdir(dst, 0750));
	ASSERT_OK(mkdir(fx_path("%s-src/a", tag), 0710));
	ASSERT_OK(mkdir(fx_path("%s-src/a/deep", tag), 0755));
	for (int i = 0; i < 40; i++)
		ASSERT_OK(fx_file(fx_path("%s-src/a/deep/f%d", tag, i), 1000u * (unsigned)i,
				  (uint32_t)i, 0644));
	ASSERT_OK(fx_file(fx_path("%s-src/f1", tag), 70000, 7, 0600));
	ASSERT_OK(link(fx_path("%s-src/f1", tag), fx_path("%s-src/a/h", tag)));
	ASSERT_OK(symlink("f1", fx_path("%s-src/s", tag)));
	ASSERT_OK(mkfifo(fx_path("%s-src/p", tag), 0640));
	ASSERT_OK(mkdir(fx_path("%s-src/b", tag), 0755));
	ASSERT_OK(fx_file(fx_path("%s-src/skip", tag), 10, 1, 0644));
	ASSERT_OK(fx_file(fx_path("%s-dst/keep", tag), 10, 2, 0644));
	ASSERT_OK(fx_times(fx_path("%s-src/a", tag), 1000000000, 5));
	ASSERT_OK(fx_times(dst, 1200000000, 0));
	struct stat before;
	ASSERT_OK(stat(dst, &before));
	int fds = fx_count_fds();

	_cleanup_close_ int sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_TRUE(sfd >= 0 && dfd >= 0);
	const char *names[] = {"a", "f1", "s", "p", "b"};
	struct snap_copy_opts o = {.flags = flags | SNAP_COPY_NO_SYNC};
	struct snap_copy_stats st = {0};
	struct sc_err err = SC_ERR_INIT;
	int r = snap_copy_entries(sfd, src, dfd, dst, names, 5, &o, &st, &err);
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "copy: %s", sc_err_msg(&err));
	for (size_t i = 0; i < 5; i++)
		fx_compare_trees(fx_path("%s-src/%s", tag, names[i]),
				 fx_path("%s-dst/%s", tag, names[i]));
	check_uring_used(&st, flags, 39); /* a/deep/f0 is empty */
	struct stat f1, h, after;
	ASSERT_OK(stat(fx_path("%s-dst/f1", tag), &f1));
	ASSERT_OK(stat(fx_path("%s-dst/a/h", tag), &h));
	ASSERT_EQ(f1.st_ino, h.st_ino); /* a link between two roots stays a link */
	ASSERT_TRUE(access(fx_path("%s-dst/skip", tag), F_OK) < 0 && errno == ENOENT);
	ASSERT_OK(access(fx_path("%s-dst/keep", tag), F_OK));
	ASSERT_OK(stat(dst, &after));
	ASSERT_EQ(after.st_mode, before.st_mode);
	ASSERT_EQ(after.st_uid, before.st_uid);
	ASSERT_EQ(st.files, 41);
	ASSERT_EQ(st.hardlinks, 1);
	ASSERT_EQ(st.dirs, 3); /* a, a/deep, b */
	ASSERT_EQ(fx_count_fds(), fds + 2);

	/* What the caller must not ask for: a name that is a path, a name already there, none. */
	const char *bad[][1] = {{"a/deep"}, {".."}, {"f1"}, {"nothing"}};
	const int want[] = {-EINVAL, -EINVAL, -EEXIST, -ENOENT};
	for (size_t i = 0; i < 4; i++) {
		sc_err_clear(&err);
		ASSERT_ERRNO(snap_copy_entries(sfd, src, dfd, dst, bad[i], 1, &o, NULL, &err),
			     want[i]);
		ASSERT_TRUE(strstr(sc_err_msg(&err), bad[i][0]) != NULL);
	}
	ASSERT_EQ(fx_count_fds(), fds + 2);
	free(src);
	free(dst);
}

TEST(copy_file)
{
	const char *src = fx_path("one-src");
	ASSERT_OK(fx_file(src, 300000, 3, 0640));
	ASSERT_OK(fx_times(src, 1111111111, 222222222));
	if (setxattr(src, "user.x", "1", 1, 0) < 0)
		ASSERT_TRUE(errno == EOPNOTSUPP);
	struct sc_err err = SC_ERR_INIT;
	ASSERT_OK(snap_copy_file(AT_FDCWD, src, AT_FDCWD, fx_path("one-dst"), NULL, &err));
	fx_compare_trees(src, fx_path("one-dst"));
	char v[4];
	ASSERT_EQ(getxattr(fx_path("one-dst"), "user.x", v, sizeof(v)), 1);

	ASSERT_ERRNO(snap_copy_file(AT_FDCWD, src, AT_FDCWD, fx_path("one-dst"), NULL, &err),
		     -EEXIST);
	sc_err_clear(&err);
	ASSERT_ERRNO(snap_copy_file(AT_FDCWD, fx_path("nothing"), AT_FDCWD, fx_path("one-x"), NULL,
				    &err),
		     -ENOENT);
	sc_err_clear(&err);
	ASSERT_ERRNO(snap_copy_file(AT_FDCWD, tap_tmpdir(), AT_FDCWD, fx_path("one-y"), NULL, &err),
		     -EINVAL);
	struct stat s;
	ASSERT_TRUE(stat(fx_path("one-y"), &s) < 0 && errno == ENOENT);
}

TEST(method_names)
{
	for (int m = 0; m < _SNAP_COPY_METHOD_MAX; m++) {
		enum snap_copy_method back;
		const char *s = snap_copy_method_to_string((enum snap_copy_method)m);
		ASSERT_NOT_NULL(s);
		ASSERT_OK(snap_copy_method_from_string(s, &back));
		ASSERT_EQ(back, m);
	}
	ASSERT_STREQ(snap_copy_method_to_string(SNAP_COPY_REFLINK), "reflink");
	ASSERT_TRUE(snap_copy_method_to_string(_SNAP_COPY_METHOD_MAX) == NULL);
	enum snap_copy_method m;
	ASSERT_ERRNO(snap_copy_method_from_string("nope", &m), -EINVAL);
}

int
main(int argc, char **argv)
{
	umask(022);
	return tap_main(argc, argv);
}
