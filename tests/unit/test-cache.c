/*
 * The build cache's store API (no root needed: native driver): records hit
 * and miss, what a hit attaches to the lease, records whose snapshot or
 * blob went away, notes written with records, the collector's view of
 * records, and remembered file digests.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "collect.h"
#include "content.h"
#include "lease.h"
#include "store.h"
#include "tap.h"
#include "util.h"

#define KEY1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define KEY2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static struct snap_store *
open_store(const char *name)
{
	char root[PATH_MAX];
	snprintf(root, sizeof(root), "%s/%s", tap_tmpdir(), name);
	struct snap_store_opts opts = {.root = root, .driver = "native"};
	struct snap_store *s = NULL;
	struct sc_err err = SC_ERR_INIT;
	if (snap_store_open(&opts, &s, &err) < 0)
		tap_fail(__FILE__, __LINE__, "open: %s", sc_err_msg(&err));
	return s;
}

/* A committed snapshot and a blob, as a build step leaves them. */
static void
step_result(struct snap_store *s, const char *name, const char *data, char digest[72])
{
	struct sc_err err = SC_ERR_INIT;
	char work[64];
	snprintf(work, sizeof(work), "%s.work", name);
	ASSERT_OK(snap_snapshot_prepare(s, work, NULL, SNAP_KIND_ACTIVE, NULL, NULL, &err));
	ASSERT_OK(snap_snapshot_commit(s, name, work, NULL, 0, &err));
	ASSERT_OK(
		snap_content_put(s, data, strlen(data), "application/octet-stream", digest, &err));
}

static bool
lease_holds(struct snap_store *s, const char *id, const char *type, const char *name)
{
	struct snap_lease l = {0};
	struct sc_err err = SC_ERR_INIT;
	bool found = false;
	if (snap_lease_get(s, id, &l, &err) < 0)
		return false;
	for (size_t i = 0; i < l.nrefs; i++)
		found |= !strcmp(l.refs[i].type, type) && !strcmp(l.refs[i].name, name);
	snap_lease_clear(&l);
	return found;
}

TEST(put_then_get_attaches_to_the_lease)
{
	struct snap_store *s = open_store("hit");
	struct sc_err err = SC_ERR_INIT;
	char blob[72];
	step_result(s, "cache/one", "layer one", blob);
	struct snap_cache_record rec = {.snapshot = "cache/one", .description = "RUN make"};
	memcpy(rec.key, KEY1, sizeof(KEY1));
	memcpy(rec.layer, blob, sizeof(rec.layer));
	ASSERT_OK(snap_cache_put(s, &rec, NULL, &err));

	struct snap_cache_record miss = {0};
	ASSERT_ERRNO(snap_cache_get(s, KEY2, &miss, &err), -ENOENT);

	ASSERT_OK(snap_lease_create(s, "b1", 0, 0, NULL, &err));
	ASSERT_OK(snap_store_use_lease(s, "b1"));
	struct snap_cache_record got = {0};
	ASSERT_OK(snap_cache_get(s, KEY1, &got, &err));
	ASSERT_STREQ(got.snapshot, "cache/one");
	ASSERT_STREQ(got.layer, blob);
	ASSERT_STREQ(got.type, "regular");
	ASSERT_STREQ(got.description, "RUN make");
	ASSERT_EQ(got.uses, 2);
	ASSERT_TRUE(got.last_used >= got.created);
	ASSERT_FALSE(got.blob_missing);
	snap_cache_record_clear(&got);
	/* the hit attached the record and what it holds, in its own transaction */
	ASSERT_TRUE(lease_holds(s, "b1", "cache", KEY1));
	ASSERT_TRUE(lease_holds(s, "b1", "snapshot", "cache/one"));
	ASSERT_TRUE(lease_holds(s, "b1", "blob", blob));
	snap_store_use_lease(s, NULL);
	snap_store_close(s);
}

TEST(a_record_without_its_snapshot_is_a_miss_and_goes)
{
	struct snap_store *s = open_store("stale");
	struct sc_err err = SC_ERR_INIT;
	char blob[72];
	step_result(s, "cache/two", "layer two", blob);
	struct snap_cache_record rec = {.snapshot = "cache/two"};
	memcpy(rec.key, KEY1, sizeof(KEY1));
	memcpy(rec.layer, blob, sizeof(rec.layer));
	ASSERT_OK(snap_cache_put(s, &rec, NULL, &err));
	ASSERT_OK(snap_snapshot_remove(s, "cache/two", &err));
	struct snap_cache_record got = {0};
	ASSERT_ERRNO(snap_cache_get(s, KEY1, &got, &err), -ENOENT);
	/* and it is gone, not found again */
	struct snap_cache_record again = {0};
	ASSERT_ERRNO(snap_cache_get(s, KEY1, &again, &err), -ENOENT);
	snap_store_close(s);
}

TEST(a_collected_blob_is_reported_so_the_layer_is_made_again)
{
	struct snap_store *s = open_store("blob");
	struct sc_err err = SC_ERR_INIT;
	char blob[72];
	step_result(s, "cache/three", "layer three", blob);
	struct snap_cache_record rec = {.snapshot = "cache/three"};
	memcpy(rec.key, KEY1, sizeof(KEY1));
	memcpy(rec.layer, blob, sizeof(rec.layer));
	ASSERT_OK(snap_cache_put(s, &rec, NULL, &err));
	ASSERT_OK(snap_content_remove(s, blob, &err));
	struct snap_cache_record got = {0};
	ASSERT_OK(snap_cache_get(s, KEY1, &got, &err));
	ASSERT_TRUE(got.blob_missing);
	ASSERT_STREQ(got.layer, "");
	ASSERT_STREQ(got.snapshot, "cache/three");
	snap_cache_record_clear(&got);
	/* a put of a record whose blob does not exist fails */
	struct snap_cache_record bad = {.snapshot = "cache/three"};
	memcpy(bad.key, KEY2, sizeof(KEY2));
	memcpy(bad.layer, blob, sizeof(bad.layer));
	ASSERT_ERRNO(snap_cache_put(s, &bad, NULL, &err), -ENOENT);
	snap_store_close(s);
}

TEST(notes_are_written_with_their_record)
{
	struct snap_store *s = open_store("notes");
	struct sc_err err = SC_ERR_INIT;
	char blob[72];
	step_result(s, "cache/four", "layer four", blob);
	struct snap_cache_record rec = {.snapshot = "cache/four"};
	memcpy(rec.key, KEY1, sizeof(KEY1));
	struct snap_cache_note note = {.name = "pos:abc", .data = "{\"x\":1}", .len = 7};
	ASSERT_OK(snap_cache_put(s, &rec, &note, &err));
	char *got = NULL;
	size_t len = 0;
	ASSERT_OK(snap_cache_note_get(s, "pos:abc", &got, &len, &err));
	ASSERT_EQ(len, 7);
	ASSERT_STREQ(got, "{\"x\":1}");
	free(got);
	ASSERT_ERRNO(snap_cache_note_get(s, "pos:none", &got, &len, &err), -ENOENT);
	/* a note on its own */
	struct snap_cache_note alone = {.name = "pos:none", .data = "{}", .len = 2};
	ASSERT_OK(snap_cache_note_put(s, &alone, &err));
	ASSERT_OK(snap_cache_note_get(s, "pos:none", &got, &len, &err));
	ASSERT_STREQ(got, "{}");
	free(got);
	/* over the limit: refused, and the record is not written either */
	char *big = calloc(1, SNAP_CACHE_NOTE_MAX + 2);
	ASSERT_NOT_NULL(big);
	struct snap_cache_note huge = {
		.name = "pos:big", .data = big, .len = SNAP_CACHE_NOTE_MAX + 1};
	memcpy(rec.key, KEY2, sizeof(KEY2));
	ASSERT_ERRNO(snap_cache_put(s, &rec, &huge, &err), -EFBIG);
	free(big);
	struct snap_cache_record none = {0};
	ASSERT_ERRNO(snap_cache_get(s, KEY2, &none, &err), -ENOENT);
	snap_store_close(s);
}

static int
count_record(const struct snap_cache_record *rec, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

TEST(records_are_not_roots_and_go_with_what_they_hold)
{
	struct snap_store *s = open_store("gc");
	struct sc_err err = SC_ERR_INIT;
	char blob[72];
	step_result(s, "cache/five", "layer five", blob);
	struct snap_cache_record rec = {.snapshot = "cache/five"};
	memcpy(rec.key, KEY1, sizeof(KEY1));
	memcpy(rec.layer, blob, sizeof(rec.layer));
	ASSERT_OK(snap_cache_put(s, &rec, NULL, &err));
	int n = 0;
	ASSERT_OK(snap_cache_walk(s, count_record, &n, &err));
	ASSERT_EQ(n, 1);
	/* leased: kept */
	ASSERT_OK(snap_lease_create(s, "hold", 0, 0, NULL, &err));
	ASSERT_OK(snap_lease_add(s, "hold", "cache", KEY1, &err));
	struct snap_collect_result res = {0};
	ASSERT_OK(snap_gc(s, &res, &err));
	n = 0;
	ASSERT_OK(snap_cache_walk(s, count_record, &n, &err));
	ASSERT_EQ(n, 1);
	struct snap_info info = {0};
	ASSERT_OK(snap_snapshot_stat(s, "cache/five", &info, &err));
	snap_info_clear(&info);
	/* not leased: the record, its snapshot and its blob all go */
	ASSERT_OK(snap_lease_delete(s, "hold", &err));
	ASSERT_OK(snap_gc(s, &res, &err));
	ASSERT_EQ(res.removed[SNAP_OBJ_CACHE], 1);
	n = 0;
	ASSERT_OK(snap_cache_walk(s, count_record, &n, &err));
	ASSERT_EQ(n, 0);
	ASSERT_ERRNO(snap_snapshot_stat(s, "cache/five", &info, &err), -ENOENT);
	struct snap_blob_info bi = {0};
	ASSERT_ERRNO(snap_content_stat(s, blob, &bi, &err), -ENOENT);
	snap_store_close(s);
}

static void
file_key(uint8_t key[SNAP_FILE_KEY_LEN], uint64_t dev, uint64_t ino, uint64_t mtime)
{
	sc_put_be64(key, dev);
	sc_put_be64(key + 8, ino);
	sc_put_be64(key + 16, 100);
	sc_put_be64(key + 24, mtime);
	sc_put_be64(key + 32, mtime);
}

TEST(file_digests_keep_one_entry_per_file)
{
	struct snap_store *s = open_store("digests");
	struct sc_err err = SC_ERR_INIT;
	struct snap_file_digest v[2] = {0};
	file_key(v[0].key, 7, 42, 1000);
	snprintf(v[0].digest, sizeof(v[0].digest), "%s", KEY1);
	file_key(v[1].key, 7, 43, 1000);
	snprintf(v[1].digest, sizeof(v[1].digest), "%s", KEY2);
	ASSERT_OK(snap_cache_file_digests_put(s, v, 2, &err));
	char got[SC_DIGEST_STR_LEN + 1];
	ASSERT_OK(snap_cache_file_digest_get(s, v[0].key, got, &err));
	ASSERT_STREQ(got, KEY1);
	/* the same file, changed: the new state replaces the old one */
	struct snap_file_digest changed = {0};
	file_key(changed.key, 7, 42, 2000);
	snprintf(changed.digest, sizeof(changed.digest), "%s", KEY2);
	ASSERT_OK(snap_cache_file_digests_put(s, &changed, 1, &err));
	ASSERT_ERRNO(snap_cache_file_digest_get(s, v[0].key, got, &err), -ENOENT);
	ASSERT_OK(snap_cache_file_digest_get(s, changed.key, got, &err));
	ASSERT_STREQ(got, KEY2);
	/* another file of the same device is untouched */
	ASSERT_OK(snap_cache_file_digest_get(s, v[1].key, got, &err));
	/* a malformed digest is refused */
	struct snap_file_digest bad = {0};
	file_key(bad.key, 7, 44, 1);
	snprintf(bad.digest, sizeof(bad.digest), "sha256:short");
	ASSERT_ERRNO(snap_cache_file_digests_put(s, &bad, 1, &err), -EINVAL);
	snap_store_close(s);
}

int
main(int argc, char **argv)
{
	return tap_main(argc, argv);
}
