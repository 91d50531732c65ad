/* Unit tests for the content store (no root needed). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "content.h"
#include "refs.h"
#include "store.h"
#include "tap.h"
#include "util.h"

static struct snap_store *
open_store(const char *name, char *root)
{
	snprintf(root, PATH_MAX, "%s/%s", tap_tmpdir(), name);
	struct snap_store_opts opts = {.root = root, .driver = "native"};
	struct snap_store *s = NULL;
	struct sc_err err = SC_ERR_INIT;
	if (snap_store_open(&opts, &s, &err) < 0)
		tap_fail(__FILE__, __LINE__, "open: %s", sc_err_msg(&err));
	return s;
}

static int
count_files(const char *dir)
{
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof(cmd), "find '%s' -type f | wc -l", dir);
	FILE *p = popen(cmd, "r");
	int n = -1;
	if (p && fscanf(p, "%d", &n) != 1)
		n = -1;
	if (p)
		pclose(p);
	return n;
}

TEST(put_stat_read_remove)
{
	char root[PATH_MAX];
	struct snap_store *s = open_store("basic", root);
	struct sc_err err = SC_ERR_INIT;
	char d[SC_DIGEST_STR_LEN + 1];
	ASSERT_OK(snap_content_put(s, "abc", 3, "text/plain", d, &err));
	ASSERT_STREQ(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	struct snap_blob_info info = {0};
	ASSERT_OK(snap_content_stat(s, d, &info, &err));
	ASSERT_EQ(info.size, 3);
	ASSERT_STREQ(info.media_type, "text/plain");
	snap_blob_info_clear(&info);
	char *data = NULL;
	size_t len = 0;
	ASSERT_OK(snap_content_read_all(s, d, 100, &data, &len, &err));
	ASSERT_EQ(len, 3);
	ASSERT_STREQ(data, "abc");
	free(data);
	ASSERT_ERRNO(snap_content_read_all(s, d, 2, &data, &len, &err), -EFBIG);
	sc_err_clear(&err);
	/* The same bytes again: no error, no second copy, counted once. */
	ASSERT_OK(snap_content_put(s, "abc", 3, "text/plain", d, &err));
	struct snap_store_counts c;
	ASSERT_OK(snap_store_counts(s, &c, &err));
	ASSERT_EQ(c.blobs, 1);
	ASSERT_EQ(c.blobs_bytes, 3);
	char blobs[PATH_MAX + 16];
	snprintf(blobs, sizeof(blobs), "%s/blobs", root);
	ASSERT_EQ(count_files(blobs), 1);
	snprintf(blobs, sizeof(blobs), "%s/ingest", root);
	ASSERT_EQ(count_files(blobs), 0);
	ASSERT_OK(snap_content_verify(s, d, &err));
	ASSERT_OK(snap_content_remove(s, d, &err));
	ASSERT_ERRNO(snap_content_stat(s, d, &info, &err), -ENOENT);
	sc_err_clear(&err);
	ASSERT_ERRNO(snap_content_remove(s, d, &err), -ENOENT);
	ASSERT_OK(snap_store_counts(s, &c, &err));
	ASSERT_EQ(c.blobs, 0);
	ASSERT_EQ(c.blobs_bytes, 0);
	snprintf(blobs, sizeof(blobs), "%s/blobs", root);
	ASSERT_EQ(count_files(blobs), 0);
	snap_store_close(s);
}

TEST(streaming_checks_digest_and_size)
{
	char root[PATH_MAX];
	struct snap_store *s = open_store("stream", root);
	struct sc_err err = SC_ERR_INIT;
	/* 3 MiB in uneven chunks, with the expected digest given up front. */
	size_t total = 3 << 20;
	uint8_t *buf = malloc(total);
	for (size_t i = 0; i < total; i++)
		buf[i] = (uint8_t)(i * 7 + (i >> 12));
	char want[SC_DIGEST_STR_LEN + 1];
	ASSERT_OK(sc_sha256_buf(buf, total, want));
	struct snap_content_writer *w = NULL;
	ASSERT_OK(snap_content_writer_new(s, want, (int64_t)total, &w, &err));
	for (size_t off = 0; off < total;) {
		size_t n = off % 3 == 0 ? 65537 : 4093;
		if (n > total - off)
			n = total - off;
		ASSERT_OK(snap_content_write(w, buf + off, n, &err));
		off += n;
	}
	char got[SC_DIGEST_STR_LEN + 1];
	ASSERT_OK(snap_content_commit(w, "application/octet-stream", got, &err));
	ASSERT_STREQ(got, want);

	/* Wrong digest: refused, nothing stored. */
	static const char wrong[] =
		"sha256:0000000000000000000000000000000000000000000000000000000000000000";
	ASSERT_OK(snap_content_writer_new(s, wrong, -1, &w, &err));
	ASSERT_OK(snap_content_write(w, "hello", 5, &err));
	ASSERT_ERRNO(snap_content_commit(w, NULL, got, &err), -EBADMSG);
	ASSERT_TRUE(strstr(sc_err_msg(&err), "mismatch") != NULL);
	sc_err_clear(&err);
	/* Shorter than declared: a truncated download. */
	ASSERT_OK(snap_content_writer_new(s, NULL, 100, &w, &err));
	ASSERT_OK(snap_content_write(w, "hello", 5, &err));
	ASSERT_ERRNO(snap_content_commit(w, NULL, got, &err), -EBADMSG);
	ASSERT_TRUE(strstr(sc_err_msg(&err), "cut short") != NULL);
	sc_err_clear(&err);
	/* Longer than declared: refused while writing. */
	ASSERT_OK(snap_content_writer_new(s, NULL, 3, &w, &err));
	ASSERT_ERRNO(snap_content_write(w, "hello", 5, &err), -EFBIG);
	snap_content_abort(w);
	sc_err_clear(&err);
	ASSERT_ERRNO(snap_content_writer_new(s, "sha256:nothex", -1, &w, &err), -EINVAL);

	struct snap_store_counts c;
	ASSERT_OK(snap_store_counts(s, &c, &err));
	ASSERT_EQ(c.blobs, 1);
	ASSERT_EQ(c.blobs_bytes, total);
	char dir[PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/ingest", root);
	ASSERT_EQ(count_files(dir), 0);
	free(buf);
	snap_store_close(s);
}

TEST(verify_finds_damage)
{
	char root[PATH_MAX];
	struct snap_store *s = open_store("damage", root);
	struct sc_err err = SC_ERR_INIT;
	char d[SC_DIGEST_STR_LEN + 1];
	ASSERT_OK(snap_content_put(s, "original content", 16, NULL, d, &err));
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", root, d + 7);
	int fd = open(path, O_WRONLY);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(pwrite(fd, "X", 1, 0), 1);
	close(fd);
	ASSERT_ERRNO(snap_content_verify(s, d, &err), -EBADMSG);
	ASSERT_TRUE(strstr(sc_err_msg(&err), "damaged") != NULL);
	snap_store_close(s);
}

TEST(crashed_writer_cleaned_at_open)
{
	char root[PATH_MAX];
	struct snap_store *s = open_store("crash", root);
	snap_store_close(s);
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/ingest/w.999999.1.1", root);
	FILE *f = fopen(path, "w");
	ASSERT_NOT_NULL(f);
	fputs("partial", f);
	fclose(f);
	s = open_store("crash", root);
	struct stat st;
	ASSERT_TRUE(stat(path, &st) < 0 && errno == ENOENT);
	snap_store_close(s);
}

static int
collect(const char *to, void *arg)
{
	strcat(arg, to);
	strcat(arg, ";");
	return 0;
}

TEST(refs_and_pins)
{
	char root[PATH_MAX];
	struct snap_store *s = open_store("refs", root);
	struct sc_err err = SC_ERR_INIT;
	ASSERT_OK(snap_ref_add(s, "image:app:1", "blob:sha256:aa", &err));
	ASSERT_OK(snap_ref_add(s, "image:app:1", "blob:sha256:bb", &err));
	ASSERT_OK(snap_ref_add(s, "image:app:10", "blob:sha256:cc", &err));
	char seen[512] = "";
	ASSERT_OK(snap_ref_walk(s, "image:app:1", collect, seen, &err));
	/* Prefix "image:app:1\0": app:10's edges are not app:1's. */
	ASSERT_STREQ(seen, "blob:sha256:aa;blob:sha256:bb;");
	ASSERT_OK(snap_ref_remove(s, "image:app:1", "blob:sha256:aa", &err));
	ASSERT_ERRNO(snap_ref_remove(s, "image:app:1", "blob:sha256:aa", &err), -ENOENT);
	sc_err_clear(&err);
	ASSERT_ERRNO(snap_ref_add(s, "widget:x", "blob:sha256:aa", &err), -EINVAL);
	sc_err_clear(&err);
	ASSERT_ERRNO(snap_ref_add(s, "image:", "blob:sha256:aa", &err), -EINVAL);
	sc_err_clear(&err);
	ASSERT_FALSE(snap_is_pinned(s, "image:app:1"));
	ASSERT_OK(snap_pin(s, "image:app:1", true, &err));
	ASSERT_TRUE(snap_is_pinned(s, "image:app:1"));
	ASSERT_OK(snap_pin(s, "image:app:1", false, &err));
	ASSERT_FALSE(snap_is_pinned(s, "image:app:1"));
	ASSERT_ERRNO(snap_pin(s, "image:app:1", false, &err), -ENOENT);
	snap_store_close(s);
}

int
main(int argc, char **argv)
{
	return tap_main(argc, argv);
}
