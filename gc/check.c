/*
 * snapctl check: compares the records with what is on disk and the counters
 * with a recount. It opens the store as it finds it (without the crash
 * cleanup of a normal open), so it reports what a crash left; with repair
 * it fixes each problem and says so.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "content.h"
#include "gc.h"
#include "lease.h"
#include "log.h"
#include "store-internal.h"
#include "util.h"

static const char *const problem_names[_GC_PROBLEM_KIND_MAX] = {
	[GC_PROBLEM_MISSING_FOLDER] = "missing-data",
	[GC_PROBLEM_ORPHAN_FOLDER] = "orphan-data",
	[GC_PROBLEM_DAMAGED_BLOB] = "damaged-blob",
	[GC_PROBLEM_DEAD_LEASE] = "dead-lease",
	[GC_PROBLEM_COUNTER] = "counter",
	[GC_PROBLEM_TRASH] = "trash",
	[GC_PROBLEM_MISSING_TARGET] = "missing-target",
	[GC_PROBLEM_DEAD_OWNER] = "dead-owner",
	[GC_PROBLEM_LEAKED_QUOTA] = "leaked-quota",
};

const char *
gc_problem_kind_to_string(enum gc_problem_kind k)
{
	return k < _GC_PROBLEM_KIND_MAX ? problem_names[k] : "unknown";
}

void
gc_check_report_clear(struct gc_check_report *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].what);
		free(r->v[i].detail);
	}
	free(r->v);
	*r = (struct gc_check_report){0};
}

static struct gc_problem *problem_add(struct gc_check_report *rep, enum gc_problem_kind kind,
				      const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static struct gc_problem *
problem_add(struct gc_check_report *rep, enum gc_problem_kind kind, const char *what,
	    const char *fmt, ...)
{
	struct gc_problem *v = realloc(rep->v, (rep->n + 1) * sizeof(*v));
	if (!v)
		return NULL;
	rep->v = v;
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	struct gc_problem *p = &v[rep->n++];
	*p = (struct gc_problem){.kind = kind, .what = strdup(what), .detail = strdup(buf)};
	return p;
}

struct check_ctx {
	struct snap_store *s;
	struct gc_check_report *rep;
	bool repair;
};

static int
check_lease(const struct snap_lease *l, void *arg)
{
	struct check_ctx *c = arg;
	if (snap_lease_alive(l, sc_now_ns()))
		return 0;
	struct gc_problem *p = problem_add(
		c->rep, GC_PROBLEM_DEAD_LEASE, l->id, "%s",
		l->expires && sc_now_ns() >= l->expires ? "expired" : "its holder process is gone");
	if (c->repair && p) {
		struct sc_err e = SC_ERR_INIT;
		p->repaired = snap_lease_delete(c->s, l->id, &e) >= 0;
	}
	return 0;
}

/* Recounted totals, compared with the counters read in the same transaction. */
struct recount {
	uint64_t kinds[_SNAP_KIND_MAX];
	uint64_t committed_bytes, committed_inodes;
	uint64_t blobs, blobs_bytes, blobs_disk;
	uint64_t leases;
};

struct seen_snapshot {
	char *key;
	uint64_t id;
};

struct scan_ctx {
	struct recount count;
	struct seen_snapshot *snaps;
	size_t nsnaps;
	char **blobs;
	size_t nblobs;
	struct snap_txn *t;
	char **orphan_work; /* active snapshots and views whose owner is gone */
	size_t norphan_work;
	/* Edges whose target blob has no record: their source, and what to say. */
	char **dangling_from, **dangling_to;
	size_t ndangling, ndangling_to;
};

static int
scan_snapshot(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct scan_ctx *c = arg;
	struct snap_info info;
	int r = snap_snapshot_decode(k->mv_data, k->mv_size, v, &info);
	if (r < 0)
		return r;
	c->count.kinds[info.kind]++;
	if (info.kind == SNAP_KIND_COMMITTED) {
		c->count.committed_bytes += info.size;
		c->count.committed_inodes += info.inodes;
	} else if (snap_owner_gone(info.labels, info.nlabels)) {
		r = sc_strv_push(&c->orphan_work, &c->norphan_work, info.key);
		if (r < 0) {
			snap_info_clear(&info);
			return r;
		}
	}
	struct seen_snapshot *p = realloc(c->snaps, (c->nsnaps + 1) * sizeof(*p));
	if (!p) {
		snap_info_clear(&info);
		return -ENOMEM;
	}
	c->snaps = p;
	p[c->nsnaps].id = info.id;
	p[c->nsnaps].key = TAKE_PTR(info.key);
	c->nsnaps++;
	snap_info_clear(&info);
	return 0;
}

static int
scan_blob(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct scan_ctx *c = arg;
	struct snap_blob_info info;
	int r = snap_blob_decode(k, v, &info);
	if (r < 0)
		return r;
	c->count.blobs++;
	c->count.blobs_bytes += info.size;
	c->count.blobs_disk += info.disk;
	r = sc_strv_push(&c->blobs, &c->nblobs, info.digest);
	snap_blob_info_clear(&info);
	return r;
}

/*
 * An edge from an image or a blob (index, manifest) to a blob that has no
 * record: the image cannot be exported. (A build cache record may outlive
 * its layer blob: the builder makes the layer again. A layer's unpacked
 * snapshot may go with check --repair: an import makes it again.)
 */
static int
scan_ref(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct scan_ctx *c = arg;
	const char *from = k->mv_data;
	size_t flen = strnlen(from, k->mv_size);
	if (flen + 1 >= k->mv_size)
		return 0; /* not an edge */
	if (!(flen > 6 && memcmp(from, "image:", 6) == 0) &&
	    !(flen > 5 && memcmp(from, "blob:", 5) == 0))
		return 0;
	char to[SNAP_OBJ_NAME_MAX + 1];
	snprintf(to, sizeof(to), "%.*s", (int)(k->mv_size - flen - 1), from + flen + 1);
	MDB_val got;
	int r;
	if (strncmp(to, "blob:", 5) != 0)
		return 0;
	r = snap_txn_get(c->t, SNAP_DB_BLOBS, to + 5, strlen(to + 5), &got);
	if (r != -ENOENT)
		return r < 0 ? r : 0;
	char from_s[SNAP_OBJ_NAME_MAX + 1];
	snprintf(from_s, sizeof(from_s), "%.*s", (int)flen, from);
	/* A manifest: name the images whose it is. */
	char **src = NULL;
	size_t nsrc = 0;
	struct sc_buf detail = {0};
	r = sc_buf_printf(&detail, "points at %s, which is not in the store", to);
	if (r >= 0 && strncmp(from_s, "blob:", 5) == 0)
		r = snap_ref_sources_txn(c->t, from_s, &src, &nsrc);
	for (size_t i = 0; r >= 0 && i < nsrc; i++)
		if (strncmp(src[i], "image:", 6) == 0)
			r = sc_buf_printf(&detail, "%s image %s", i ? "," : "; used by",
					  src[i] + 6);
	snap_strv_free(src, nsrc);
	if (r >= 0)
		r = sc_buf_printf(&detail, "; import or build the image again");
	if (r >= 0)
		r = sc_strv_push(&c->dangling_from, &c->ndangling, from_s);
	if (r >= 0)
		r = sc_strv_push(&c->dangling_to, &c->ndangling_to, (const char *)detail.data);
	sc_buf_free(&detail);
	return r;
}

static int
scan_lease(const MDB_val *k, const MDB_val *v, void *arg)
{
	((struct scan_ctx *)arg)->count.leases++;
	return 0;
}

static void
scan_clear(struct scan_ctx *c)
{
	for (size_t i = 0; i < c->nsnaps; i++)
		free(c->snaps[i].key);
	free(c->snaps);
	snap_strv_free(c->blobs, c->nblobs);
	snap_strv_free(c->orphan_work, c->norphan_work);
	snap_strv_free(c->dangling_from, c->ndangling);
	snap_strv_free(c->dangling_to, c->ndangling_to);
	*c = (struct scan_ctx){0};
}

static const char *const counter_names[] = {
	"snapshots.active",
	"snapshots.view",
	"snapshots.committed",
	"snapshots.committed.bytes",
	"snapshots.committed.inodes",
	"blobs.count",
	"blobs.bytes",
	"blobs.disk",
	"leases",
};

static void
recount_values(const struct recount *c, uint64_t v[9])
{
	uint64_t vals[9] = {c->kinds[SNAP_KIND_ACTIVE],
			    c->kinds[SNAP_KIND_VIEW],
			    c->kinds[SNAP_KIND_COMMITTED],
			    c->committed_bytes,
			    c->committed_inodes,
			    c->blobs,
			    c->blobs_bytes,
			    c->blobs_disk,
			    c->leases};
	memcpy(v, vals, sizeof(vals));
}

/* Records, counters and the recount, all from one read transaction. */
static int
scan_store(struct snap_store *s, struct scan_ctx *c, uint64_t have[9], struct sc_err *err)
{
	struct snap_txn t;
	int r = snap_txn_begin_read(s->meta, &t, err);
	if (r < 0)
		return r;
	c->t = &t;
	r = snap_txn_scan(&t, SNAP_DB_SNAPSHOTS, NULL, 0, scan_snapshot, c);
	if (r >= 0)
		r = snap_txn_scan(&t, SNAP_DB_BLOBS, NULL, 0, scan_blob, c);
	if (r >= 0)
		r = snap_txn_scan(&t, SNAP_DB_LEASES, NULL, 0, scan_lease, c);
	if (r >= 0)
		r = snap_txn_scan(&t, SNAP_DB_REFS, NULL, 0, scan_ref, c);
	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(counter_names); i++)
		have[i] = snap_txn_counter_get(&t, counter_names[i]);
	snap_txn_end(&t);
	c->t = NULL;
	if (r < 0)
		return sc_err_setsys(err, r, "cannot read the store's records");
	return 0;
}

struct counter_fix {
	uint64_t want[9];
};

static int
fix_counters(struct snap_txn *t, void *arg)
{
	struct scan_ctx c = {0};
	/* Recount inside the writer's transaction: nothing can change under it. */
	int r = snap_txn_scan(t, SNAP_DB_SNAPSHOTS, NULL, 0, scan_snapshot, &c);
	if (r >= 0)
		r = snap_txn_scan(t, SNAP_DB_BLOBS, NULL, 0, scan_blob, &c);
	if (r >= 0)
		r = snap_txn_scan(t, SNAP_DB_LEASES, NULL, 0, scan_lease, &c);
	uint64_t want[9];
	recount_values(&c.count, want);
	scan_clear(&c);
	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(counter_names); i++) {
		uint64_t have = snap_txn_counter_get(t, counter_names[i]);
		r = snap_txn_counter_add(t, counter_names[i], (int64_t)(want[i] - have));
	}
	return r < 0 ? snap_txn_fail(t, r) : r;
}

struct delete_list {
	char **snapshots;
	size_t nsnapshots;
	size_t deleted; /* snapshot records deleted, descendants included */
	char **blobs;
	size_t nblobs;
};

struct child_scan {
	uint64_t *ids;
	size_t n;
};

static int
child_visit(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct child_scan *c = arg;
	uint64_t *p = realloc(c->ids, (c->n + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	c->ids = p;
	p[c->n++] = sc_get_be64((const uint8_t *)k->mv_data + 8);
	return 0;
}

/*
 * Deletes a snapshot's records and, first, those of every snapshot built on
 * it: a layer whose parent's data is gone cannot be trusted either.
 * Counts the deletions in *count.
 */
static int
delete_subtree(struct snap_txn *t, const char *key, size_t depth, size_t *count)
{
	struct snap_info info = {0};
	int r = snap_snapshot_get_txn(t, key, &info);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if (depth > 100000) {
		snap_info_clear(&info);
		return -ELOOP;
	}
	uint8_t prefix[8];
	sc_put_be64(prefix, info.id);
	struct child_scan c = {0};
	r = snap_txn_scan(t, SNAP_DB_SNAPSHOT_CHILDREN, prefix, 8, child_visit, &c);
	for (size_t i = 0; r >= 0 && i < c.n; i++) {
		uint8_t idk[8];
		MDB_val v;
		sc_put_be64(idk, c.ids[i]);
		if (snap_txn_get(t, SNAP_DB_SNAPSHOT_IDS, idk, 8, &v) < 0)
			continue;
		_cleanup_free_ char *child = strndup(v.mv_data, v.mv_size);
		r = child ? delete_subtree(t, child, depth + 1, count) : -ENOMEM;
	}
	free(c.ids);
	if (r >= 0)
		r = snap_snapshot_delete_txn(t, &info);
	if (r >= 0)
		(*count)++;
	snap_info_clear(&info);
	return r;
}

static int
delete_missing(struct snap_txn *t, void *arg)
{
	struct delete_list *d = arg;
	d->deleted = 0;
	for (size_t i = 0; i < d->nsnapshots; i++) {
		int r = delete_subtree(t, d->snapshots[i], 0, &d->deleted);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < d->nblobs; i++) {
		struct snap_blob_info info = {0};
		int r = snap_blob_get_txn(t, d->blobs[i], &info);
		if (r == -ENOENT)
			continue;
		if (r >= 0)
			r = snap_blob_delete_txn(t, &info);
		snap_blob_info_clear(&info);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A record seen in the scan whose folder is missing: still so now? (A concurrent removal is not a
 * problem.) */
static bool
snapshot_still_missing(struct snap_store *s, const struct seen_snapshot *seen)
{
	struct snap_info info = {0};
	if (snap_snapshot_stat(s, seen->key, &info, NULL) < 0)
		return false;
	bool same = info.id == seen->id;
	snap_info_clear(&info);
	if (!same)
		return false;
	char rel[64];
	snap_snapshot_rel(rel, sizeof(rel), seen->id);
	struct stat st;
	return fstatat(s->root_fd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode);
}

/* Entries of a folder under ROOT that no record names (re-checked against a fresh read). */
static void
check_orphans(struct snap_store *s, struct gc_check_report *rep, const char *dir, bool blobs)
{
	_cleanup_close_ int fd = openat(s->root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(TAKE_FD(fd)) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		struct snap_txn t;
		if (snap_txn_begin_read(s->meta, &t, NULL) < 0)
			return;
		bool known;
		MDB_val v;
		if (blobs) {
			char digest[SC_DIGEST_STR_LEN + 8];
			snprintf(digest, sizeof(digest), "sha256:%.64s", de->d_name);
			known = sc_digest_valid(digest) &&
				snap_txn_get(&t, SNAP_DB_BLOBS, digest, strlen(digest), &v) == 0;
		} else {
			char *end;
			unsigned long long id = strtoull(de->d_name, &end, 10);
			uint8_t k[8];
			sc_put_be64(k, id);
			known = *end || id == 0 || /* not a name snapctl gives: never ours */
				snap_txn_get(&t, SNAP_DB_SNAPSHOT_IDS, k, 8, &v) == 0;
		}
		snap_txn_end(&t);
		if (known)
			continue;
		char rel[PATH_MAX];
		snprintf(rel, sizeof(rel), "%s/%s", dir, de->d_name);
		problem_add(rep, GC_PROBLEM_ORPHAN_FOLDER, rel, "%s",
			    "no record names it; the next open moves it to trash");
	}
}

static void
quota_leak(void *arg, const char *what, const char *detail, bool freed)
{
	struct gc_problem *p = problem_add(arg, GC_PROBLEM_LEAKED_QUOTA, what, "%s", detail);
	if (p && freed)
		p->repaired = true;
}

int
gc_check(struct snap_store *s, bool repair, struct gc_check_report *ret, struct sc_err *err)
{
	struct gc_check_report rep = {0};
	struct scan_ctx c = {0};
	struct delete_list del = {0};
	uint64_t have[9], want[9];
	int r = scan_store(s, &c, have, err);
	if (r < 0)
		return r;

	for (size_t i = 0; i < c.nsnaps && r >= 0; i++) {
		if (!snapshot_still_missing(s, &c.snaps[i]))
			continue;
		char what[SNAP_OBJ_NAME_MAX + 1], rel[64];
		snprintf(what, sizeof(what), "snapshot:%s", c.snaps[i].key);
		snap_snapshot_rel(rel, sizeof(rel), c.snaps[i].id);
		problem_add(&rep, GC_PROBLEM_MISSING_FOLDER, what, "record without its folder %s",
			    rel);
		r = sc_strv_push(&del.snapshots, &del.nsnapshots, c.snaps[i].key);
	}
	for (size_t i = 0; i < c.norphan_work && r >= 0; i++) {
		char what[SNAP_OBJ_NAME_MAX + 1];
		snprintf(what, sizeof(what), "snapshot:%s", c.orphan_work[i]);
		problem_add(&rep, GC_PROBLEM_DEAD_OWNER, what, "%s",
			    "work in progress of a process that is gone; gc removes it");
	}
	for (size_t i = 0; i < c.ndangling && r >= 0; i++)
		problem_add(&rep, GC_PROBLEM_MISSING_TARGET, c.dangling_from[i], "%s",
			    c.dangling_to[i]);
	for (size_t i = 0; i < c.nblobs && r >= 0; i++) {
		struct sc_err e = SC_ERR_INIT;
		int v = snap_content_verify(s, c.blobs[i], &e);
		struct snap_blob_info info = {0};
		/* gone since the scan: removed by someone else, not a problem */
		if (v >= 0 || snap_content_stat(s, c.blobs[i], &info, NULL) < 0)
			continue;
		snap_blob_info_clear(&info);
		char what[SNAP_OBJ_NAME_MAX + 1];
		snprintf(what, sizeof(what), "blob:%s", c.blobs[i]);
		problem_add(&rep,
			    v == -EBADMSG ? GC_PROBLEM_DAMAGED_BLOB : GC_PROBLEM_MISSING_FOLDER,
			    what, "%s", sc_err_msg(&e));
		r = sc_strv_push(&del.blobs, &del.nblobs, c.blobs[i]);
	}
	if (r >= 0)
		r = snap_lease_walk(s, check_lease,
				    &(struct check_ctx){.s = s, .rep = &rep, .repair = repair},
				    err);
	if (r >= 0) {
		check_orphans(s, &rep, "snapshots", false);
		check_orphans(s, &rep, "blobs/sha256", true);
	}
	if (r >= 0 && s->driver->quota_leaks)
		r = s->driver->quota_leaks(s, repair, quota_leak, &rep, err);

	recount_values(&c.count, want);
	bool counters_off = false;
	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(counter_names); i++) {
		if (have[i] == want[i])
			continue;
		counters_off = true;
		problem_add(&rep, GC_PROBLEM_COUNTER, counter_names[i],
			    "counter says %" PRIu64 ", a recount finds %" PRIu64, have[i], want[i]);
	}

	if (r >= 0 && repair) {
		for (size_t i = 0; r >= 0 && i < c.norphan_work; i++) {
			struct sc_err e = SC_ERR_INIT;
			int rr = snap_snapshot_remove(s, c.orphan_work[i], &e);
			if (rr < 0 && rr != -ENOENT)
				r = sc_err_set(err, rr, "%s", sc_err_msg(&e));
		}
		if (r >= 0 && (del.nsnapshots || del.nblobs)) {
			r = snap_meta_write(s->meta, delete_missing, &del, err);
			if (r >= 0)
				r = snap_meta_sync(s->meta);
			if (r >= 0)
				r = snap_blobs_trash_unnamed(s, (const char *const *)del.blobs,
							     del.nblobs, err);
		}
		/* Counters last: the deletions above kept them exact, a recount makes them so. */
		if (r >= 0 && (counters_off || del.nsnapshots || del.nblobs))
			r = snap_meta_write(s->meta, fix_counters, NULL, err);
		/*
		 * Orphans (the folders of snapshots deleted above among them) and
		 * dead processes' leftovers: the writer-locked cleanup of an open,
		 * scanning in full since the store was not consistent.
		 */
		if (r >= 0)
			r = snap_store_cleanup(s, true, err);
		for (size_t i = 0; r >= 0 && i < rep.n; i++)
			if (rep.v[i].kind != GC_PROBLEM_DEAD_LEASE &&
			    rep.v[i].kind != GC_PROBLEM_MISSING_TARGET &&
			    rep.v[i].kind != GC_PROBLEM_LEAKED_QUOTA) /* said as freed */
				rep.v[i].repaired = true;
		struct gc_problem *p = NULL;
		if (r >= 0 && del.deleted > del.nsnapshots)
			p = problem_add(&rep, GC_PROBLEM_MISSING_FOLDER, "snapshots built on them",
					"%zu more snapshot records removed: their parent's data "
					"was gone",
					del.deleted - del.nsnapshots);
		if (p)
			p->repaired = true;
	}

	/* trash/ last: repairs put things there, and emptying it is the last repair. */
	if (r >= 0) {
		_cleanup_close_ int fd =
			openat(s->root_fd, "trash", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(TAKE_FD(fd)) : NULL;
		struct dirent *de;
		while (d && (de = readdir(d)))
			if (de->d_name[0] != '.')
				problem_add(
					&rep, GC_PROBLEM_TRASH, de->d_name, "%s",
					repair ? "still busy (a mount?); deleted when it is free"
					       : "left by an interrupted deletion; the next "
						 "open empties trash/");
	}
	scan_clear(&c);
	snap_strv_free(del.snapshots, del.nsnapshots);
	snap_strv_free(del.blobs, del.nblobs);
	if (r < 0) {
		gc_check_report_clear(&rep);
		return r;
	}
	*ret = rep;
	return 0;
}
