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

/* Recounted totals, compared with the counters. */
struct recount {
	uint64_t kinds[_SNAP_KIND_MAX];
	uint64_t committed_bytes, committed_inodes;
	uint64_t blobs, blobs_bytes, blobs_disk;
	uint64_t leases;
};

struct check_ctx {
	struct snap_store *s;
	struct gc_check_report *rep;
	bool repair;
	struct recount count;
	/* records found missing their data, deleted on repair */
	char **missing_snapshots;
	size_t nmissing_snapshots;
	char **bad_blobs;
	size_t nbad_blobs;
	int error;
};

static int
strv_push(char ***v, size_t *n, const char *s)
{
	char **p = realloc(*v, (*n + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	*v = p;
	p[*n] = strdup(s);
	if (!p[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

static int
check_snapshot(const struct snap_info *info, void *arg)
{
	struct check_ctx *c = arg;
	c->count.kinds[info->kind]++;
	if (info->kind == SNAP_KIND_COMMITTED) {
		c->count.committed_bytes += info->size;
		c->count.committed_inodes += info->inodes;
	}
	char rel[64];
	snap_snapshot_rel(rel, sizeof(rel), info->id);
	struct stat st;
	if (fstatat(c->s->root_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
		return 0;
	char what[SNAP_OBJ_NAME_MAX + 1];
	snprintf(what, sizeof(what), "snapshot:%s", info->key);
	problem_add(c->rep, GC_PROBLEM_MISSING_FOLDER, what, "record without its folder %s", rel);
	return strv_push(&c->missing_snapshots, &c->nmissing_snapshots, info->key);
}

static int
check_blob(const struct snap_blob_info *info, void *arg)
{
	struct check_ctx *c = arg;
	c->count.blobs++;
	c->count.blobs_bytes += info->size;
	c->count.blobs_disk += info->disk;
	struct sc_err e = SC_ERR_INIT;
	int r = snap_content_verify(c->s, info->digest, &e);
	if (r >= 0)
		return 0;
	char what[SNAP_OBJ_NAME_MAX + 1];
	snprintf(what, sizeof(what), "blob:%s", info->digest);
	problem_add(c->rep, r == -EBADMSG ? GC_PROBLEM_DAMAGED_BLOB : GC_PROBLEM_MISSING_FOLDER,
		    what, "%s", sc_err_msg(&e));
	return strv_push(&c->bad_blobs, &c->nbad_blobs, info->digest);
}

static int
check_lease(const struct snap_lease *l, void *arg)
{
	struct check_ctx *c = arg;
	c->count.leases++;
	if (snap_lease_alive(l, sc_now_ns()))
		return 0;
	struct gc_problem *p = problem_add(
		c->rep, GC_PROBLEM_DEAD_LEASE, l->id, "%s",
		l->expires && sc_now_ns() >= l->expires ? "expired" : "its holder process is gone");
	if (c->repair && p) {
		struct sc_err e = SC_ERR_INIT;
		if (snap_lease_delete(c->s, l->id, &e) >= 0) {
			p->repaired = true;
			c->count.leases--;
		}
	}
	return 0;
}

/* Entries of a folder under ROOT whose names the records do not know. */
static void
check_orphans(struct check_ctx *c, const char *dir, bool blobs)
{
	_cleanup_close_ int fd = openat(c->s->root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(TAKE_FD(fd)) : NULL;
	struct dirent *de;
	struct snap_txn t;
	if (!d || snap_txn_begin_read(c->s->meta, &t, NULL) < 0)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		bool known;
		if (blobs) {
			char digest[SC_DIGEST_STR_LEN + 8];
			snprintf(digest, sizeof(digest), "sha256:%s", de->d_name);
			MDB_val v;
			known = sc_digest_valid(digest) &&
				snap_txn_get(&t, SNAP_DB_BLOBS, digest, strlen(digest), &v) == 0;
		} else {
			char *end;
			unsigned long long id = strtoull(de->d_name, &end, 10);
			uint8_t k[8];
			sc_put_be64(k, id);
			MDB_val v;
			known = *end ||
				id == 0 || /* not a name snapctl gives: never ours to touch */
				snap_txn_get(&t, SNAP_DB_SNAPSHOT_IDS, k, 8, &v) == 0;
		}
		if (known)
			continue;
		char rel[PATH_MAX];
		snprintf(rel, sizeof(rel), "%s/%s", dir, de->d_name);
		struct gc_problem *p = problem_add(c->rep, GC_PROBLEM_ORPHAN_FOLDER, rel, "%s",
						   "no record names it; the next open moves it "
						   "to trash");
		if (c->repair && p) {
			/* Confirm under the writer lock (a prepare may be mid-rename). */
			p->repaired = snap_store_trash(c->s, rel) >= 0;
		}
	}
	snap_txn_end(&t);
}

static int
delete_missing(struct snap_txn *t, void *arg)
{
	struct check_ctx *c = arg;
	for (size_t i = 0; i < c->nmissing_snapshots; i++) {
		struct snap_info info = {0};
		int r = snap_snapshot_get_txn(t, c->missing_snapshots[i], &info);
		if (r == -ENOENT)
			continue;
		if (r >= 0) {
			/* Its children lose their parent's data too; they go first if they are also
			 * broken. */
			r = snap_snapshot_has_children_txn(t, info.id);
			if (r == 0)
				r = snap_snapshot_delete_txn(t, &info);
			else if (r > 0)
				r = 0;
		}
		snap_info_clear(&info);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < c->nbad_blobs; i++) {
		struct snap_blob_info info = {0};
		int r = snap_blob_get_txn(t, c->bad_blobs[i], &info);
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

struct counter_fix {
	const char *name;
	uint64_t want;
};

static int
fix_counters(struct snap_txn *t, void *arg)
{
	struct counter_fix *f = arg;
	for (; f->name; f++) {
		uint64_t have = snap_txn_counter_get(t, f->name);
		int r = snap_txn_counter_add(t, f->name, (int64_t)(f->want - have));
		if (r < 0)
			return r;
	}
	return 0;
}

int
gc_check(struct snap_store *s, bool repair, struct gc_check_report *ret, struct sc_err *err)
{
	struct gc_check_report rep = {0};
	struct check_ctx c = {.s = s, .rep = &rep, .repair = repair};
	int r = snap_snapshot_walk(s, NULL, check_snapshot, &c, err);
	if (r >= 0)
		r = snap_content_walk(s, check_blob, &c, err);
	if (r >= 0)
		r = snap_lease_walk(s, check_lease, &c, err);
	if (r >= 0) {
		check_orphans(&c, "snapshots", false);
		check_orphans(&c, "blobs/sha256", true);
	}
	if (r >= 0 && repair && (c.nmissing_snapshots || c.nbad_blobs)) {
		r = snap_meta_write(s->meta, delete_missing, &c, err);
		if (r >= 0) {
			snap_meta_sync(s->meta);
			for (size_t i = 0; i < rep.n; i++)
				if (rep.v[i].kind == GC_PROBLEM_MISSING_FOLDER ||
				    rep.v[i].kind == GC_PROBLEM_DAMAGED_BLOB)
					rep.v[i].repaired = true;
			for (size_t i = 0; i < c.nbad_blobs; i++) {
				char rel[PATH_MAX];
				snap_blob_rel(rel, sizeof(rel), c.bad_blobs[i]);
				snap_store_trash(s, rel);
			}
			/* Recount after the deletions. */
			c.count = (struct recount){0};
			struct check_ctx c2 = {.s = s, .rep = &(struct gc_check_report){0}};
			snap_snapshot_walk(s, NULL, check_snapshot, &c2, NULL);
			snap_content_walk(s, check_blob, &c2, NULL);
			snap_lease_walk(s, check_lease, &c2, NULL);
			c.count = c2.count;
			gc_check_report_clear(c2.rep);
			snap_strv_free(c2.missing_snapshots, c2.nmissing_snapshots);
			snap_strv_free(c2.bad_blobs, c2.nbad_blobs);
		}
	}

	/* Counters against the recount. */
	struct snap_store_counts have;
	if (r >= 0)
		r = snap_store_counts(s, &have, err);
	struct counter_fix fixes[] = {
		{"snapshots.active", c.count.kinds[SNAP_KIND_ACTIVE]},
		{"snapshots.view", c.count.kinds[SNAP_KIND_VIEW]},
		{"snapshots.committed", c.count.kinds[SNAP_KIND_COMMITTED]},
		{"snapshots.committed.bytes", c.count.committed_bytes},
		{"snapshots.committed.inodes", c.count.committed_inodes},
		{"blobs.count", c.count.blobs},
		{"blobs.bytes", c.count.blobs_bytes},
		{"blobs.disk", c.count.blobs_disk},
		{"leases", c.count.leases},
		{NULL, 0},
	};
	uint64_t values[] = {have.snapshots[SNAP_KIND_ACTIVE],
			     have.snapshots[SNAP_KIND_VIEW],
			     have.snapshots[SNAP_KIND_COMMITTED],
			     have.committed_bytes,
			     have.committed_inodes,
			     have.blobs,
			     have.blobs_bytes,
			     have.blobs_disk,
			     have.leases};
	bool counters_off = false;
	for (size_t i = 0; r >= 0 && fixes[i].name; i++) {
		if (values[i] == fixes[i].want)
			continue;
		counters_off = true;
		problem_add(&rep, GC_PROBLEM_COUNTER, fixes[i].name,
			    "counter says %" PRIu64 ", a recount finds %" PRIu64, values[i],
			    fixes[i].want);
	}
	if (r >= 0 && counters_off && repair) {
		r = snap_meta_write(s->meta, fix_counters, fixes, err);
		for (size_t i = 0; r >= 0 && i < rep.n; i++)
			if (rep.v[i].kind == GC_PROBLEM_COUNTER)
				rep.v[i].repaired = true;
	}

	/* trash/ last: repairs put things there, and emptying it is the last repair. */
	if (r >= 0) {
		if (repair)
			snap_store_empty_trash(s);
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
	snap_strv_free(c.missing_snapshots, c.nmissing_snapshots);
	snap_strv_free(c.bad_blobs, c.nbad_blobs);
	if (r < 0) {
		gc_check_report_clear(&rep);
		return r;
	}
	*ret = rep;
	return 0;
}
