/* Unit tests for snapshotter/base: errors, sizes, durations, processes, buffers, digests. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "digest.h"
#include "err.h"
#include "tap.h"
#include "util.h"

TEST(err_set_once_and_prefix)
{
	struct sc_err err = SC_ERR_INIT;
	ASSERT_FALSE(sc_err_isset(&err));
	ASSERT_EQ(sc_err_set(&err, -ENOENT, "snapshot '%s' does not exist", "a"), -ENOENT);
	/* A second set does not overwrite the first message. */
	ASSERT_EQ(sc_err_set(&err, -EIO, "later"), -EIO);
	ASSERT_EQ(err.code, -ENOENT);
	ASSERT_STREQ(sc_err_msg(&err), "snapshot 'a' does not exist");
	sc_err_prefix(&err, -ENOENT, "prepare '%s'", "b");
	ASSERT_STREQ(sc_err_msg(&err), "prepare 'b': snapshot 'a' does not exist");
	/* Prefix on an empty error states the errno. */
	struct sc_err e2 = SC_ERR_INIT;
	sc_err_prefix(&e2, -EACCES, "open");
	ASSERT_STREQ(sc_err_msg(&e2), "open: Permission denied");
	struct sc_err e3 = SC_ERR_INIT;
	sc_err_setsys(&e3, -ENOSPC, "write '%s'", "f");
	ASSERT_STREQ(sc_err_msg(&e3), "write 'f': No space left on device");
	/* NULL is accepted everywhere. */
	ASSERT_EQ(sc_err_set(NULL, -EINVAL, "x"), -EINVAL);
	/* Long messages are cut, never overflow. */
	char big[3000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	struct sc_err e4 = SC_ERR_INIT;
	sc_err_set(&e4, -EINVAL, "%s", big);
	sc_err_prefix(&e4, -EINVAL, "%s", big);
	ASSERT_EQ(strlen(sc_err_msg(&e4)), SC_ERR_MSG_MAX - 1);
}

TEST(size_parse)
{
	uint64_t v;
	ASSERT_OK(sc_size_parse("4096", &v));
	ASSERT_EQ(v, 4096);
	ASSERT_OK(sc_size_parse("10GB", &v));
	ASSERT_EQ(v, 10000000000ull);
	ASSERT_OK(sc_size_parse("512MiB", &v));
	ASSERT_EQ(v, 512ull << 20);
	ASSERT_OK(sc_size_parse("1.5g", &v));
	ASSERT_EQ(v, 1500000000ull);
	ASSERT_OK(sc_size_parse("2 KiB", &v));
	ASSERT_EQ(v, 2048);
	ASSERT_ERRNO(sc_size_parse("", &v), -EINVAL);
	ASSERT_ERRNO(sc_size_parse("-1", &v), -EINVAL);
	ASSERT_ERRNO(sc_size_parse("12XB", &v), -EINVAL);
	ASSERT_ERRNO(sc_size_parse("GB", &v), -EINVAL);
	ASSERT_ERRNO(sc_size_parse("99999999999TB", &v), -ERANGE);
	char buf[32];
	ASSERT_STREQ(sc_size_format(0, buf, sizeof(buf)), "0 B");
	ASSERT_STREQ(sc_size_format(1536, buf, sizeof(buf)), "1.50 KiB");
	ASSERT_STREQ(sc_size_format(300ull << 20, buf, sizeof(buf)), "300 MiB");
}

TEST(duration_parse)
{
	uint64_t v;
	const uint64_t s = 1000000000ull;
	ASSERT_OK(sc_duration_parse("90", &v));
	ASSERT_EQ(v, 90 * s);
	ASSERT_OK(sc_duration_parse("90m", &v));
	ASSERT_EQ(v, 90 * 60 * s);
	ASSERT_OK(sc_duration_parse("24h", &v));
	ASSERT_EQ(v, 24 * 3600 * s);
	ASSERT_OK(sc_duration_parse("7d", &v));
	ASSERT_EQ(v, 7 * 86400 * s);
	ASSERT_OK(sc_duration_parse("1h30m", &v));
	ASSERT_EQ(v, 5400 * s);
	ASSERT_ERRNO(sc_duration_parse("", &v), -EINVAL);
	ASSERT_ERRNO(sc_duration_parse("soon", &v), -EINVAL);
	ASSERT_ERRNO(sc_duration_parse("5x", &v), -EINVAL);
	ASSERT_ERRNO(sc_duration_parse("1h30", &v), -EINVAL);
	ASSERT_ERRNO(sc_duration_parse("99999999999999999999d", &v), -ERANGE);
}

TEST(process_identity)
{
	uint64_t start;
	ASSERT_OK(sc_proc_starttime(getpid(), &start));
	ASSERT_TRUE(sc_proc_alive(getpid(), start));
	/* Same pid, other start time: a reused pid is not the holder. */
	ASSERT_FALSE(sc_proc_alive(getpid(), start + 1));
	pid_t child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	uint64_t cstart;
	ASSERT_OK(sc_proc_starttime(child, &cstart));
	ASSERT_TRUE(sc_proc_alive(child, cstart));
	kill(child, SIGKILL);
	/* A zombie holds nothing, even before it is reaped. */
	for (int i = 0; i < 200 && sc_proc_alive(child, cstart); i++)
		usleep(5000);
	ASSERT_FALSE(sc_proc_alive(child, cstart));
	waitpid(child, NULL, 0);
	ASSERT_FALSE(sc_proc_alive(child, cstart));
	ASSERT_ERRNO(sc_proc_starttime(child, &cstart), -ESRCH);
}

TEST(rm_rf_and_mkdir_p)
{
	char base[4096], path[4200], sentinel[4200];
	snprintf(base, sizeof(base), "%s/rm", tap_tmpdir());
	snprintf(path, sizeof(path), "%s/a/b/c", base);
	ASSERT_OK(sc_mkdir_p(path, 0755));
	ASSERT_OK(sc_mkdir_p(path, 0755)); /* again: fine */
	snprintf(path, sizeof(path), "%s/a/b/c/file", base);
	int fd = open(path, O_CREAT | O_WRONLY, 0644);
	ASSERT_TRUE(fd >= 0);
	close(fd);
	/* A symlink to a folder outside, which holds a file that must survive. */
	snprintf(sentinel, sizeof(sentinel), "%s/outside", tap_tmpdir());
	ASSERT_OK(sc_mkdir_p(sentinel, 0755));
	snprintf(path, sizeof(path), "%s/outside/keep", tap_tmpdir());
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	ASSERT_TRUE(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/a/link", base);
	ASSERT_OK(symlink(sentinel, path) < 0 ? -errno : 0);
	/* A read-only folder inside (with a file in it) is still removed. */
	snprintf(path, sizeof(path), "%s/a/b", base);
	ASSERT_OK(chmod(path, 0555) < 0 ? -errno : 0);
	ASSERT_OK(sc_rm_rf_at(AT_FDCWD, base));
	struct stat st;
	ASSERT_TRUE(lstat(base, &st) < 0 && errno == ENOENT);
	/* The symlink's target was not followed: the file outside is still there. */
	snprintf(path, sizeof(path), "%s/outside/keep", tap_tmpdir());
	ASSERT_OK(stat(path, &st) < 0 ? -errno : 0);
	ASSERT_OK(sc_rm_rf_at(AT_FDCWD, base)); /* missing is success */
}

TEST(digest)
{
	char out[SC_DIGEST_STR_LEN + 1];
	ASSERT_OK(sc_sha256_buf("abc", 3, out));
	ASSERT_STREQ(out,
		     "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ASSERT_TRUE(sc_digest_valid(out));
	ASSERT_FALSE(sc_digest_valid("sha256:BA78"));
	ASSERT_FALSE(sc_digest_valid(
		"md5:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
}

TEST(buffers_and_files)
{
	struct sc_buf b = {0};
	for (int i = 0; i < 1000; i++)
		ASSERT_OK(sc_buf_printf(&b, "%d,", i));
	ASSERT_TRUE(b.len > 3000);
	char path[4200];
	snprintf(path, sizeof(path), "%s/file", tap_tmpdir());
	ASSERT_OK(sc_write_file_atomic(path, b.data, b.len, 0644));
	char *data = NULL;
	size_t len = 0;
	ASSERT_OK(sc_read_file(path, 1 << 20, &data, &len));
	ASSERT_EQ(len, b.len);
	ASSERT_TRUE(memcmp(data, b.data, len) == 0);
	free(data);
	/* A file over the limit is refused, not truncated. */
	ASSERT_ERRNO(sc_read_file(path, 100, &data, &len), -EFBIG);
	sc_buf_free(&b);
}

int
main(int argc, char **argv)
{
	return tap_main(argc, argv);
}
