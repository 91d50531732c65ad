/*
 * The store: a ROOT folder holding metadata, snapshots and blobs, shared
 * safely by any number of snapctl processes (LMDB serialises writers).
 *
 *   ROOT/meta/            LMDB environment
 *   ROOT/snapshots/ID/    one folder per snapshot, named by a numeric id
 *   ROOT/blobs/sha256/    content store (content.h); ingest/ holds blobs being written
 *   ROOT/trash/           folders renamed away, waiting to be deleted
 *   ROOT/tmp/             snapshots being built, mount points
 *
 * Snapshots follow containerd's snapshotter model:
 *
 *   prepare(key, parent) -> active    (writable, on top of a committed parent)
 *   view(key, parent)    -> view      (read-only view of a committed parent)
 *   commit(name, key)    -> committed (active key disappears, name appears; immutable)
 *   remove(key)                       (not while it has children: -EBUSY)
 *
 * Invariants, kept across crashes and concurrent processes:
 *  1. A snapshot record exists only while its folder snapshots/ID is complete:
 *     the folder is built under tmp/ and renamed into place inside the write
 *     transaction that adds the record (undone if that transaction aborts);
 *     removal deletes the record first and moves the folder to trash/ after.
 *  2. A folder under snapshots/ with no record is garbage, but only as seen
 *     while holding the writer lock (anyone else's rename happens under it).
 *  3. A folder under tmp/ (or file under ingest/) belongs to the live process
 *     named in its name (pid and start time); once that process is gone it
 *     is garbage.
 *  4. A committed snapshot never changes; its size is measured once, at commit.
 *  5. A snapshot with children cannot be removed, so every parent of a record
 *     exists.
 *  6. The counters equal what a full walk of the records would sum.
 * snap_store_open() restores 2 and 3 (moving garbage to trash/) and empties trash/.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct snap_store;

#define SNAP_KEY_MAX	400  /* bytes in a snapshot key or name */
#define SNAP_LABEL_MAX	4096 /* bytes in one label key or value */
#define SNAP_LABELS_MAX 64   /* labels on one snapshot */

struct snap_store_opts {
	const char *root;   /* NULL: snap_store_default_root() */
	const char *driver; /* NULL: the store's recorded driver, else automatic */
	unsigned flags;
};

enum {
	SNAP_STORE_NO_CLEANUP = 1u << 0, /* skip crash cleanup at open (check and tests) */
};

/*
 * Opens ROOT, creating its layout on first use. The driver is chosen once,
 * when the store is created (overlay where it mounts, else native) and
 * recorded; opts->driver must match it afterwards.
 *
 * Errors: -EACCES/-EROFS ROOT not writable, -EINVAL unknown driver or a
 * driver that differs from the store's, -EOPNOTSUPP driver cannot work on
 * ROOT's file system, -EPROTO metadata from a newer snapctl.
 */
int snap_store_open(const struct snap_store_opts *opts, struct snap_store **ret,
		    struct sc_err *err);
/* NULL-safe; returns NULL. */
struct snap_store *snap_store_close(struct snap_store *s);

/* Default ROOT: $SNAPCTL_ROOT, /var/lib/snapctl for root, else $XDG_DATA_HOME/snapctl. */
int snap_store_default_root(char *buf, size_t len);

const char *snap_store_root(const struct snap_store *s);
const char *snap_store_driver_name(const struct snap_store *s);
/* A one-line note from open (e.g. why the driver was chosen), or NULL. */
const char *snap_store_notice(const struct snap_store *s);

/*
 * A function called before a large write (copying a parent, applying a
 * layer) with the bytes about to be written, so a collector living above
 * this library can make room first. Its result is advisory.
 */
typedef int (*snap_space_hook_fn)(struct snap_store *s, uint64_t bytes, void *arg);
void snap_store_set_space_hook(struct snap_store *s, snap_space_hook_fn fn, void *arg);
/* Calls the hook, if any (used by drivers and layer application). */
void snap_store_before_write(struct snap_store *s, uint64_t bytes);

/*
 * From now on, every snapshot or blob this handle creates (prepare, view,
 * commit, content) is attached to lease id in the same transaction that
 * creates it, so a collector running at the same time can never take it in
 * between: what containerd does with a lease in the request context. NULL
 * stops. Creations fail with -ENOENT if the lease does not exist.
 */
int snap_store_use_lease(struct snap_store *s, const char *id);

/*
 * Makes a new folder under ROOT/tmp/ owned by this process (its name
 * carries pid and start time, so the next open removes it once the process
 * is gone, unmounting what is mounted on it); writes its absolute path into
 * path and its name relative to ROOT into rel (PATH_MAX bytes each).
 * Not thread-safe for one handle.
 */
int snap_store_mktemp(struct snap_store *s, const char *what, char *path, char *rel,
		      struct sc_err *err);

/* Moves ROOT/trash/ contents out of existence; returns how many entries went. */
int snap_store_empty_trash(struct snap_store *s);

enum snap_kind {
	SNAP_KIND_ACTIVE,
	SNAP_KIND_VIEW,
	SNAP_KIND_COMMITTED,
	_SNAP_KIND_MAX,
};

const char *snap_kind_to_string(enum snap_kind k);
int snap_kind_from_string(const char *s); /* -EINVAL if unknown */

struct snap_label {
	char *key;
	char *value;
};

struct snap_info {
	char *key;    /* name for committed snapshots */
	char *parent; /* NULL when none */
	enum snap_kind kind;
	uint64_t id;
	uint64_t created, updated, last_used; /* ns since the epoch */
	uint64_t size, inodes;		      /* measured at commit; 0 before */
	uint64_t quota;			      /* bytes, 0 = none */
	struct snap_label *labels;
	size_t nlabels;
};

/* Frees what info holds (not info itself). */
void snap_info_clear(struct snap_info *info);
/* Value of label key, or NULL. */
const char *snap_info_label(const struct snap_info *info, const char *key);

/*
 * Checks a snapshot key or name: non-empty, at most SNAP_KEY_MAX bytes, no
 * control characters. -EINVAL with a message naming the problem.
 */
int snap_key_validate(const char *key, struct sc_err *err);

/*
 * Label of an active snapshot or view that is one process's work in
 * progress (an apply, an export's view, a build step): "PID.STARTTIME", the
 * process's pid and start time (clock ticks after boot, as in
 * /proc/PID/stat). It is a collection root only while that process runs;
 * once it is gone, gc removes the snapshot and check reports it. Commit
 * drops the label.
 */
#define SNAP_OWNER_LABEL "snapctl.owner"

struct snap_prepare_opts {
	const struct snap_label *labels;
	size_t nlabels;
	uint64_t quota; /* 0 = none */
	bool owned;	/* this process's work in progress: labelled SNAP_OWNER_LABEL */
	/*
	 * The parent may be this process's own work in progress (an active
	 * snapshot it owns, say a layer applied and still syncing) rather than
	 * a committed snapshot. The parent must then be committed before this
	 * snapshot is; its commit renames it in this one's record.
	 */
	bool parent_in_progress;
};

/* True when labels name an owner (SNAP_OWNER_LABEL) that is no longer running. */
bool snap_owner_gone(const struct snap_label *labels, size_t nlabels);

/*
 * Creates an active snapshot (kind ACTIVE) or a view (kind VIEW) named key on
 * top of the committed snapshot parent (NULL/"" for none; a view needs one).
 * ret (may be NULL) receives the new record.
 *
 * Errors: -EINVAL bad key, parent not committed, view without parent;
 * -EEXIST key exists; -ENOENT parent missing; -ENOSPC/-EDQUOT disk full
 * while copying. A chain deeper than the driver can mount is allowed here
 * (its layers can still be diffed); snap_snapshot_mounts() refuses it.
 */
int snap_snapshot_prepare(struct snap_store *s, const char *key, const char *parent,
			  enum snap_kind kind, const struct snap_prepare_opts *opts,
			  struct snap_info *ret, struct sc_err *err);

/*
 * Commits the active snapshot key as name: measures its size once, then in
 * one transaction the key record is replaced by a committed record (and
 * the records of snapshots prepared on it in progress name it anew).
 * labels (may be NULL) are added to the ones it had.
 * Errors: -ENOENT key missing; -EINVAL key not active, or its parent not
 * committed yet; -EEXIST name exists.
 */
int snap_snapshot_commit(struct snap_store *s, const char *name, const char *key,
			 const struct snap_label *labels, size_t nlabels, struct sc_err *err);

/* Removes key. Errors: -ENOENT missing; -EBUSY it has children. */
int snap_snapshot_remove(struct snap_store *s, const char *key, struct sc_err *err);

/* Reads key's record into ret (caller clears it). -ENOENT if missing. */
int snap_snapshot_stat(struct snap_store *s, const char *key, struct snap_info *ret,
		       struct sc_err *err);

/*
 * Sets labels ("k" with value "v"); a NULL or empty value removes the label.
 * Errors: -ENOENT missing; -E2BIG over the label limits.
 */
int snap_snapshot_label(struct snap_store *s, const char *key, const struct snap_label *labels,
			size_t nlabels, struct snap_info *ret, struct sc_err *err);

struct snap_filter {
	int kind;	    /* -1: any */
	const char *parent; /* NULL: any; "" for snapshots without parent */
	const char *label;  /* NULL: any; "k" has label k, "k=v" has it with value v */
};

/* Calls fn for each record matching filter (NULL: all), in key order. fn returns < 0 to stop. */
typedef int (*snap_walk_fn)(const struct snap_info *info, void *arg);
int snap_snapshot_walk(struct snap_store *s, const struct snap_filter *filter, snap_walk_fn fn,
		       void *arg, struct sc_err *err);

/*
 * A snapshot's quota (into *ret_quota, 0 for none; ret_quota may be NULL)
 * and the bytes it counts (its own data: a btrfs qgroup's exclusive bytes,
 * an xfs project's blocks). -ENODATA when it has no quota.
 */
int snap_snapshot_quota(struct snap_store *s, const char *key, uint64_t *ret_quota,
			uint64_t *ret_used, struct sc_err *err);
/*
 * Disk usage of key: stored figures for committed snapshots, measured now for
 * active ones, 0 for views (they own no data).
 */
int snap_snapshot_usage(struct snap_store *s, const char *key, uint64_t *ret_bytes,
			uint64_t *ret_inodes, struct sc_err *err);

struct snap_mount;
struct snap_mounts;
/*
 * The mount specs that make key's file system (see mount.h). Marks key as used.
 * Errors: -ENOENT missing; -EINVAL key is committed (mount a view of it);
 * -E2BIG more layers than the driver can stack in one mount.
 */
int snap_snapshot_mounts(struct snap_store *s, const char *key, struct snap_mounts *ret,
			 struct sc_err *err);

/* Store-wide totals, from the counters (O(1)). */
struct snap_store_counts {
	uint64_t snapshots[_SNAP_KIND_MAX];
	uint64_t committed_bytes, committed_inodes;
	uint64_t leases;
	uint64_t blobs, blobs_bytes, blobs_disk; /* bytes: logical; disk: allocated */
};
int snap_store_counts(struct snap_store *s, struct snap_store_counts *ret, struct sc_err *err);
