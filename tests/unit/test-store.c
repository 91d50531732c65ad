/*
 * Unit tests for the store that need no root: metadata growth, counters,
 * leases and crash cleanup, on the native driver.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lease.h"
#include "store.h"
#include "tap.h"
#include "util.h"

static struct snap_store *
open_store(const char *name)
{
	char root[PATH_MAX];
	snprintf(root, sizeof(root), "%s/%s", tap_tmpdir(), name);
	struct snap_store_opts opts = {.root = root, .driver = "native"};
	struct snap_store *s = NULL;
	struct sc_err err = SC_ERR_INIT;
	int r = snap_store_open(&opts, &s, &err);
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "open %s: %s", root, sc_err_msg(&err));
	return s;
}

TEST(metadata_map_grows)
{
	/* A tiny map forces growth many times over; every record must survive it. */
	setenv("SNAPCTL_META_MAPSIZE", "64KiB", 1);
	struct snap_store *s = open_store("grow");
	unsetenv("SNAPCTL_META_MAPSIZE");
	char value[2048];
	memset(value, 'v', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	struct snap_label labels[] = {{"a", value}, {"b", value}, {"c", value}, {"d", value}};
	struct snap_prepare_opts opts = {.labels = labels, .nlabels = 4};
	struct sc_err err = SC_ERR_INIT;
	char key[64];
	for (int i = 0; i < 300; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		int r = snap_snapshot_prepare(s, key, NULL, SNAP_KIND_ACTIVE, &opts, NULL, &err);
		if (r < 0)
			tap_fail(__FILE__, __LINE__, "prepare %s: %s", key, sc_err_msg(&err));
	}
	struct snap_store_counts c;
	ASSERT_OK(snap_store_counts(s, &c, &err));
	ASSERT_EQ(c.snapshots[SNAP_KIND_ACTIVE], 300);
	struct snap_info info = {0};
	ASSERT_OK(snap_snapshot_stat(s, "k299", &info, &err));
	ASSERT_STREQ(snap_info_label(&info, "d"), value);
	snap_info_clear(&info);
	snap_store_close(s);
}

TEST(counters_follow_every_change)
{
	struct snap_store *s = open_store("counters");
	struct sc_err err = SC_ERR_INIT;
	ASSERT_OK(snap_snapshot_prepare(s, "a", NULL, SNAP_KIND_ACTIVE, NULL, NULL, &err));
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/counters/snapshots/1/fs/data", tap_tmpdir());
	FILE *f = fopen(path, "w");
	ASSERT_NOT_NULL(f);
	for (int i = 0; i < 10000; i++)
		fputs("0123456789", f);
	fclose(f);
	ASSERT_OK(snap_snapshot_commit(s, "base", "a", NULL, 0, &err));
	ASSERT_OK(snap_snapshot_prepare(s, "b", "base", SNAP_KIND_ACTIVE, NULL, NULL, &err));
	ASSERT_OK(snap_snapshot_prepare(s, "v", "base", SNAP_KIND_VIEW, NULL, NULL, &err));
	struct snap_store_counts c;
	ASSERT_OK(snap_store_counts(s, &c, &err));
	ASSERT_EQ(c.snapshots[SNAP_KIND_ACTIVE], 1);
	ASSERT_EQ(c.snapshots[SNAP_KIND_VIEW], 1);
	ASSERT_EQ(c.snapshots[SNAP_KIND_COMMITTED], 1);
	struct snap_info info = {0};
	ASSERT_OK(snap_snapshot_stat(s, "base", &info, &err));
	ASSERT_EQ(c.committed_bytes, info.size);
	ASSERT_TRUE(info.size >= 100000);
	/* The copy in b was made by the copy engine: same content, byte for byte. */
	snprintf(path, sizeof(path), "%s/counters/snapshots/2/fs/data", tap_tmpdir());
	struct stat st;
	ASSERT_OK(stat(path, &st) < 0 ? -errno : 0);
	ASSERT_EQ(st.st_size, 100000);
	f = fopen(path, "r");
	ASSERT_NOT_NULL(f);
	char chunk[10];
	for (int i = 0; i < 10000; i++)
		if (fread(chunk, 1, 10, f) != 10 || memcmp(chunk, "0123456789", 10) != 0)
			tap_fail(__FILE__, __LINE__, "the copy differs at byte %d", i * 10);
	ASSERT_EQ(fgetc(f), EOF);
	fclose(f);
	snap_info_clear(&info);
	ASSERT_OK(snap_snapshot_remove(s, "b", &err));
	ASSERT_OK(snap_snapshot_remove(s, "v", &err));
	ASSERT_OK(snap_snapshot_remove(s, "base", &err));
	ASSERT_OK(snap_store_counts(s, &c, &err));
	for (int k = 0; k < _SNAP_KIND_MAX; k++)
		ASSERT_EQ(c.snapshots[k], 0);
	ASSERT_EQ(c.committed_bytes, 0);
	ASSERT_EQ(c.committed_inodes, 0);
	snap_store_close(s);
}

TEST(crash_leftovers_cleaned_at_open)
{
	struct snap_store *s = open_store("crash");
	struct sc_err err = SC_ERR_INIT;
	ASSERT_OK(snap_snapshot_prepare(s, "keep", NULL, SNAP_KIND_ACTIVE, NULL, NULL, &err));
	snap_store_close(s);
	char path[PATH_MAX];
	/* A folder with no record (crash between rename and commit)... */
	snprintf(path, sizeof(path), "%s/crash/snapshots/77/fs", tap_tmpdir());
	ASSERT_OK(sc_mkdir_p(path, 0755));
	/* ...a half-built folder of a dead process, and one of a live process. */
	pid_t child = fork();
	if (child == 0)
		_exit(0);
	waitpid(child, NULL, 0);
	snprintf(path, sizeof(path), "%s/crash/tmp/new.%d.12345.1/fs", tap_tmpdir(), (int)child);
	ASSERT_OK(sc_mkdir_p(path, 0755));
	uint64_t start;
	ASSERT_OK(sc_proc_starttime(getpid(), &start));
	snprintf(path, sizeof(path), "%s/crash/tmp/new.%d.%" PRIu64 ".99", tap_tmpdir(),
		 (int)getpid(), start);
	ASSERT_OK(sc_mkdir_p(path, 0755));
	/* A foreign folder under snapshots/ is never deleted. */
	snprintf(path, sizeof(path), "%s/crash/snapshots/not-ours", tap_tmpdir());
	ASSERT_OK(sc_mkdir_p(path, 0755));

	s = open_store("crash");
	struct stat st;
	snprintf(path, sizeof(path), "%s/crash/snapshots/77", tap_tmpdir());
	ASSERT_TRUE(stat(path, &st) < 0 && errno == ENOENT);
	snprintf(path, sizeof(path), "%s/crash/tmp/new.%d.12345.1", tap_tmpdir(), (int)child);
	ASSERT_TRUE(stat(path, &st) < 0 && errno == ENOENT);
	snprintf(path, sizeof(path), "%s/crash/tmp/new.%d.%" PRIu64 ".99", tap_tmpdir(),
		 (int)getpid(), start);
	ASSERT_OK(stat(path, &st) < 0 ? -errno : 0);
	snprintf(path, sizeof(path), "%s/crash/snapshots/not-ours", tap_tmpdir());
	ASSERT_OK(stat(path, &st) < 0 ? -errno : 0);
	snprintf(path, sizeof(path), "%s/crash/snapshots/1", tap_tmpdir());
	ASSERT_OK(stat(path, &st) < 0 ? -errno : 0);
	struct snap_info info = {0};
	ASSERT_OK(snap_snapshot_stat(s, "keep", &info, &err));
	snap_info_clear(&info);
	/* The next id does not collide with anything left behind. */
	ASSERT_OK(snap_snapshot_prepare(s, "next", NULL, SNAP_KIND_ACTIVE, NULL, NULL, &err));
	snap_store_close(s);
}

struct lease_count {
	int total, alive;
	size_t refs;
};

static int
count_leases(const struct snap_lease *l, void *arg)
{
	struct lease_count *c = arg;
	c->total++;
	c->alive += snap_lease_alive(l, sc_now_ns());
	c->refs += l->nrefs;
	return 0;
}

TEST(leases)
{
	struct snap_store *s = open_store("leases");
	struct sc_err err = SC_ERR_INIT;
	ASSERT_OK(snap_snapshot_prepare(s, "snap", NULL, SNAP_KIND_ACTIVE, NULL, NULL, &err));

	struct snap_lease forever = {0};
	ASSERT_OK(snap_lease_create(s, NULL, 0, 0, &forever, &err));
	ASSERT_EQ(strlen(forever.id), 32);
	ASSERT_OK(snap_lease_add(s, forever.id, "snapshot", "snap", &err));
	ASSERT_OK(snap_lease_add(s, forever.id, "image", "busybox:latest", &err));
	ASSERT_ERRNO(snap_lease_add(s, forever.id, "snapshot", "missing", &err), -ENOENT);
	sc_err_clear(&err);
	ASSERT_ERRNO(snap_lease_add(s, forever.id, "widget", "x", &err), -EINVAL);
	sc_err_clear(&err);
	ASSERT_ERRNO(snap_lease_add(s, "no-such-lease", "image", "x", &err), -ENOENT);
	sc_err_clear(&err);

	/* Expired: 1 ns of life. */
	ASSERT_OK(snap_lease_create(s, "short", 1, 0, NULL, &err));
	ASSERT_ERRNO(snap_lease_create(s, "short", 0, 0, NULL, &err), -EEXIST);
	sc_err_clear(&err);

	/* Held by a process that then dies. */
	pid_t child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	ASSERT_OK(snap_lease_create(s, "held", 0, child, NULL, &err));
	struct snap_lease l = {0};
	ASSERT_OK(snap_lease_get(s, "held", &l, &err));
	ASSERT_TRUE(snap_lease_alive(&l, sc_now_ns()));
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	ASSERT_FALSE(snap_lease_alive(&l, sc_now_ns()));
	snap_lease_clear(&l);
	ASSERT_ERRNO(snap_lease_create(s, "ghost", 0, child, NULL, &err), -ESRCH);
	sc_err_clear(&err);

	struct lease_count c = {0};
	ASSERT_OK(snap_lease_walk(s, count_leases, &c, &err));
	ASSERT_EQ(c.total, 3);
	ASSERT_EQ(c.alive, 1);
	ASSERT_EQ(c.refs, 2);

	ASSERT_EQ(snap_lease_prune_dead(s, &err), 2);
	c = (struct lease_count){0};
	ASSERT_OK(snap_lease_walk(s, count_leases, &c, &err));
	ASSERT_EQ(c.total, 1);

	ASSERT_OK(snap_lease_remove_ref(s, forever.id, "image", "busybox:latest", &err));
	ASSERT_ERRNO(snap_lease_remove_ref(s, forever.id, "image", "busybox:latest", &err),
		     -ENOENT);
	sc_err_clear(&err);
	ASSERT_OK(snap_lease_delete(s, forever.id, &err));
	ASSERT_ERRNO(snap_lease_delete(s, forever.id, &err), -ENOENT);
	struct snap_store_counts counts;
	ASSERT_OK(snap_store_counts(s, &counts, &err));
	ASSERT_EQ(counts.leases, 0);
	snap_lease_clear(&forever);
	snap_store_close(s);
}

TEST(work_in_progress_has_an_owner)
{
	struct snap_store *s = open_store("owner");
	struct sc_err err = SC_ERR_INIT;
	/* Ours, alive: labelled with this process, not gone. No other labels (a NULL array). */
	struct snap_prepare_opts owned = {.owned = true};
	ASSERT_OK(snap_snapshot_prepare(s, "wip", NULL, SNAP_KIND_ACTIVE, &owned, NULL, &err));
	struct snap_info info = {0};
	ASSERT_OK(snap_snapshot_stat(s, "wip", &info, &err));
	const char *owner = snap_info_label(&info, SNAP_OWNER_LABEL);
	ASSERT_TRUE(owner != NULL);
	char want[32];
	snprintf(want, sizeof(want), "%d.", (int)getpid());
	ASSERT_TRUE(strncmp(owner, want, strlen(want)) == 0);
	ASSERT_FALSE(snap_owner_gone(info.labels, info.nlabels));
	snap_info_clear(&info);
	/* Committed: nobody's work in progress; the caller's labels stay. */
	struct snap_label mine[] = {{"k", "v"}};
	struct snap_prepare_opts labelled = {.labels = mine, .nlabels = 1, .owned = true};
	ASSERT_OK(snap_snapshot_prepare(s, "wip2", NULL, SNAP_KIND_ACTIVE, &labelled, NULL, &err));
	ASSERT_OK(snap_snapshot_commit(s, "done", "wip2", NULL, 0, &err));
	ASSERT_OK(snap_snapshot_stat(s, "done", &info, &err));
	ASSERT_TRUE(snap_info_label(&info, SNAP_OWNER_LABEL) == NULL);
	ASSERT_STREQ(snap_info_label(&info, "k"), "v");
	snap_info_clear(&info);
	/* An owner that is gone, and labels that name no process we can judge. */
	pid_t child = fork();
	if (child == 0)
		_exit(0);
	waitpid(child, NULL, 0);
	char dead[48];
	snprintf(dead, sizeof(dead), "%d.1", (int)child);
	struct snap_label gone[] = {{SNAP_OWNER_LABEL, dead}};
	ASSERT_TRUE(snap_owner_gone(gone, 1));
	struct snap_label odd[] = {{SNAP_OWNER_LABEL, "not-a-pid"}};
	ASSERT_FALSE(snap_owner_gone(odd, 1));
	ASSERT_FALSE(snap_owner_gone(NULL, 0));
	snap_store_close(s);
}

TEST(work_in_progress_stacks_on_its_own)
{
	struct snap_store *s = open_store("stack");
	struct sc_err err = SC_ERR_INIT;
	struct snap_prepare_opts owned = {.owned = true};
	struct snap_prepare_opts on_wip = {.owned = true, .parent_in_progress = true};
	ASSERT_OK(snap_snapshot_prepare(s, "w1", NULL, SNAP_KIND_ACTIVE, &owned, NULL, &err));
	/* An active parent only when asked for, and only this process's own. */
	ASSERT_ERRNO(snap_snapshot_prepare(s, "w2", "w1", SNAP_KIND_ACTIVE, &owned, NULL, &err),
		     -EINVAL);
	ASSERT_TRUE(strstr(sc_err_msg(&err), "not committed") != NULL);
	sc_err_clear(&err);
	ASSERT_OK(snap_snapshot_prepare(s, "other", NULL, SNAP_KIND_ACTIVE, NULL, NULL, &err));
	ASSERT_ERRNO(snap_snapshot_prepare(s, "w3", "other", SNAP_KIND_ACTIVE, &on_wip, NULL, &err),
		     -EINVAL);
	sc_err_clear(&err);
	ASSERT_OK(snap_snapshot_prepare(s, "w2", "w1", SNAP_KIND_ACTIVE, &on_wip, NULL, &err));
	/* The one below commits first; its new name reaches the record above. */
	ASSERT_ERRNO(snap_snapshot_commit(s, "c2", "w2", NULL, 0, &err), -EINVAL);
	ASSERT_TRUE(strstr(sc_err_msg(&err), "not committed yet") != NULL);
	sc_err_clear(&err);
	ASSERT_ERRNO(snap_snapshot_remove(s, "w1", &err), -EBUSY);
	sc_err_clear(&err);
	ASSERT_OK(snap_snapshot_commit(s, "c1", "w1", NULL, 0, &err));
	struct snap_info info = {0};
	ASSERT_OK(snap_snapshot_stat(s, "w2", &info, &err));
	ASSERT_STREQ(info.parent, "c1");
	snap_info_clear(&info);
	ASSERT_OK(snap_snapshot_commit(s, "c2", "w2", NULL, 0, &err));
	ASSERT_OK(snap_snapshot_stat(s, "c2", &info, &err));
	ASSERT_STREQ(info.parent, "c1");
	ASSERT_TRUE(snap_info_label(&info, SNAP_OWNER_LABEL) == NULL);
	snap_info_clear(&info);
	ASSERT_ERRNO(snap_snapshot_remove(s, "c1", &err), -EBUSY);
	sc_err_clear(&err);
	ASSERT_OK(snap_snapshot_remove(s, "c2", &err));
	ASSERT_OK(snap_snapshot_remove(s, "c1", &err));
	snap_store_close(s);
}

TEST(keys_are_validated)
{
	struct snap_store *s = open_store("keys");
	struct sc_err err = SC_ERR_INIT;
	ASSERT_ERRNO(snap_snapshot_prepare(s, "", NULL, SNAP_KIND_ACTIVE, NULL, NULL, &err),
		     -EINVAL);
	sc_err_clear(&err);
	ASSERT_ERRNO(snap_snapshot_prepare(s, "a\tb", NULL, SNAP_KIND_ACTIVE, NULL, NULL, &err),
		     -EINVAL);
	sc_err_clear(&err);
	char key[SNAP_KEY_MAX + 2];
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	ASSERT_ERRNO(snap_snapshot_prepare(s, key, NULL, SNAP_KIND_ACTIVE, NULL, NULL, &err),
		     -EINVAL);
	sc_err_clear(&err);
	key[SNAP_KEY_MAX] = '\0'; /* exactly at the limit: fine */
	ASSERT_OK(snap_snapshot_prepare(s, key, NULL, SNAP_KIND_ACTIVE, NULL, NULL, &err));
	/* UTF-8 is printable. */
	ASSERT_OK(
		snap_snapshot_prepare(s, "caf\xc3\xa9", NULL, SNAP_KIND_ACTIVE, NULL, NULL, &err));
	/* Quotas are refused loudly where they cannot be enforced. */
	struct snap_prepare_opts q = {.quota = 1 << 20};
	ASSERT_ERRNO(snap_snapshot_prepare(s, "q", NULL, SNAP_KIND_ACTIVE, &q, NULL, &err),
		     -EOPNOTSUPP);
	snap_store_close(s);
}

int
main(int argc, char **argv)
{
	return tap_main(argc, argv);
}
