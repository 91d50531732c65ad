/*
 * What the snapshotter's files share but users of the library do not see:
 * the store object and the driver function table.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "meta.h"
#include "mount.h"
#include "store.h"

#define SNAP_DRIVER_VERSION 1

/* One leaked quota: what it is ("qgroup 0/261") and whether it was freed. */
typedef void (*snap_quota_leak_fn)(void *arg, const char *what, const char *detail, bool freed);

/*
 * A snapshot driver, behind one versioned table of function pointers. Every
 * function gets the snapshot's folder (an absolute path) and, where it
 * matters, the folders of its committed ancestors, nearest first. Drivers
 * never touch metadata.
 */
struct snap_driver {
	unsigned version; /* SNAP_DRIVER_VERSION */
	const char *name;
	/* Whether the driver can work on ROOT; -EOPNOTSUPP with a reason if not. */
	int (*probe)(struct snap_store *s, struct sc_err *err);
	/* Fills dir (exists, empty, under tmp/) for a new snapshot of kind. */
	int (*prepare)(struct snap_store *s, const char *dir, enum snap_kind kind,
		       const char *const *parents, size_t nparents, struct sc_err *err);
	int (*mounts)(struct snap_store *s, const char *dir, enum snap_kind kind,
		      const char *const *parents, size_t nparents, struct snap_mounts *ret,
		      struct sc_err *err);
	/* Makes dir immutable where the file system can (may be NULL). */
	int (*commit)(struct snap_store *s, const char *dir, struct sc_err *err);
	/* Readies a folder in trash/ for deletion (may be NULL: plain recursive delete). */
	int (*remove)(struct snap_store *s, const char *dir, struct sc_err *err);
	/*
	 * Limits the bytes a new active snapshot's own data may take: a write
	 * past it fails with EDQUOT. May be NULL (no quotas); -EOPNOTSUPP with
	 * what would make it work where the file system cannot enforce one.
	 */
	int (*quota_set)(struct snap_store *s, const char *dir, uint64_t bytes, struct sc_err *err);
	/* The bytes counted against that limit. */
	int (*quota_used)(struct snap_store *s, const char *dir, uint64_t *ret, struct sc_err *err);
	/*
	 * Calls fn for every limit the driver set that no snapshot holds any
	 * more (a leaked qgroup or project id), freeing it first when repair.
	 */
	int (*quota_leaks)(struct snap_store *s, bool repair, snap_quota_leak_fn fn, void *arg,
			   struct sc_err *err);
};

extern const struct snap_driver snap_driver_overlay;
extern const struct snap_driver snap_driver_native;
extern const struct snap_driver snap_driver_btrfs;

/* True if fd is on a btrfs file system. */
bool snap_on_btrfs(int fd);

/*
 * The inodes of the btrfs subvolume at path written since it was snapshotted,
 * and every folder above them (drivers/btrfs.c). Commits a transaction first.
 * -EOPNOTSUPP off btrfs; -E2BIG when a changed file has too many links to
 * follow (compare the whole tree instead).
 */
struct snap_btrfs_changes;
int snap_btrfs_changes_new(const char *path, struct snap_btrfs_changes **ret, struct sc_err *err);
/* True if ino changed or has a changed inode below it. */
bool snap_btrfs_changes_touched(const struct snap_btrfs_changes *c, uint64_t ino);
void snap_btrfs_changes_free(struct snap_btrfs_changes *c);
static inline void
snap_btrfs_changes_freep(struct snap_btrfs_changes **c)
{
	snap_btrfs_changes_free(*c);
}

/* Looks a driver up by name; NULL if unknown. */
const struct snap_driver *snap_driver_find(const char *name);

struct snap_store {
	char *root;
	int root_fd;
	struct snap_meta *meta;
	const struct snap_driver *driver;
	char notice[512];
	pid_t pid;
	uint64_t starttime;
	unsigned seq; /* numbers this process's tmp/ folders */
	char *lease;  /* objects this handle creates are attached to it (snap_store_use_lease) */
	snap_space_hook_fn space_hook;
	void *space_hook_arg;
	bool in_space_hook;
};

/* Moves ROOT/rel to trash/ (renames; cheap). Missing is success. */
int snap_store_trash(struct snap_store *s, const char *rel);

/* Appends a mount to ret with room for nopts options. */
int snap_mounts_add(struct snap_mounts *ret, const char *type, const char *source, size_t nopts);
/* Appends an option to m (room was reserved by snap_mounts_add). */
int snap_mount_opt(struct snap_mount *m, const char *opt);
/* Appends a bind mount of dir, read-only or not. */
int snap_mounts_bind(struct snap_mounts *ret, const char *dir, bool ro);

/* Bytes (allocated blocks) and inodes of a tree, each hard-linked inode counted once. */
int snap_du(int dirfd, const char *path, uint64_t *ret_bytes, uint64_t *ret_inodes);

/* What snap_du found in snapshots/ID, measured by the caller ahead of its commit. */
struct snap_usage {
	uint64_t id;
	uint64_t bytes, inodes;
};
/*
 * snap_snapshot_commit with the snapshot's folder measured already (an
 * applied layer, measured on its sync thread once its writes were done);
 * measured NULL, or of another id, measures here.
 */
int snap_snapshot_commit_measured(struct snap_store *s, const char *name, const char *key,
				  const struct snap_label *labels, size_t nlabels,
				  const struct snap_usage *measured, struct sc_err *err);

/* Edges and pins inside a transaction (refs.c). */
int snap_ref_add_txn(struct snap_txn *t, const char *from, const char *to);
int snap_ref_del_txn(struct snap_txn *t, const char *from, const char *to);
/* Removes every edge out of from. */
int snap_ref_del_from_txn(struct snap_txn *t, const char *from);
/* The objects from points to: an array of strings the caller frees (each and the array). */
int snap_ref_targets_txn(struct snap_txn *t, const char *from, char ***ret, size_t *ret_n);
/* The objects that point to to (the reverse of snap_ref_targets_txn). */
int snap_ref_sources_txn(struct snap_txn *t, const char *to, char ***ret, size_t *ret_n);
bool snap_is_pinned_txn(struct snap_txn *t, const char *obj);
/* True if a lease that is alive at now_ns holds obj ("TYPE:NAME"). */
bool snap_obj_leased_txn(struct snap_txn *t, const char *obj, uint64_t now_ns);
/* Attaches an object to a lease in the caller's transaction. -ENOENT if no such lease. */
int snap_lease_attach_txn(struct snap_txn *t, const char *id, const char *type, const char *name);
/* Attaches a new object to the store handle's lease, if one is in use (no-op otherwise). */
int snap_store_lease_txn(struct snap_store *s, struct snap_txn *t, const char *type,
			 const char *name);

/* Frees an array of strings and the array. */
void snap_strv_free(char **v, size_t n);

/* Snapshot records inside a transaction (snapshot.c). */
int snap_snapshot_decode(const void *key, size_t klen, const MDB_val *v, struct snap_info *ret);
int snap_snapshot_get_txn(struct snap_txn *t, const char *key, struct snap_info *ret);
/* Sets a snapshot's last_used to now (missing is success). */
int snap_snapshot_touch_txn(struct snap_txn *t, const char *key);
/* > 0 if the snapshot with this id has children. */
int snap_snapshot_has_children_txn(struct snap_txn *t, uint64_t id);
/* Deletes a snapshot's records (not its folder) and updates the counters. */
int snap_snapshot_delete_txn(struct snap_txn *t, const struct snap_info *info);
/* Snapshot records of every kind, from the counters. */
uint64_t snap_snapshot_count_txn(struct snap_txn *t);
/* "snapshots/ID", relative to ROOT. */
void snap_snapshot_rel(char *buf, size_t len, uint64_t id);

/* Build cache records (cache.c). */
struct snap_cache_record;
int snap_cache_decode(const MDB_val *k, const MDB_val *v, struct snap_cache_record *ret);

/* Blob records inside a transaction (content.c). */
struct snap_blob_info;
int snap_blob_decode(const MDB_val *k, const MDB_val *v, struct snap_blob_info *ret);
int snap_blob_get_txn(struct snap_txn *t, const char *digest, struct snap_blob_info *ret);
/* Deletes a blob's record and its outgoing edges (not its file); updates the counters. */
int snap_blob_delete_txn(struct snap_txn *t, const struct snap_blob_info *info);
/* "blobs/sha256/HEX", relative to ROOT. */
void snap_blob_rel(char *buf, size_t len, const char *digest);
/*
 * A blob being committed is ingest/w.PID.STARTTIME.SEQ.sha256-HEX, linked as
 * blobs/sha256/HEX inside the commit's transaction and unlinked after it.
 */
#define SNAP_INGEST_DIGEST_SEP ".sha256-"
/*
 * Moves to trash/ the files of those blobs that no record names, under the
 * writer lock. A file is deleted by path only this way once its record is
 * gone: a writer that stored the same content since then renamed its new
 * file into place inside its own write transaction, and that file stays.
 */
int snap_blobs_trash_unnamed(struct snap_store *s, const char *const *digests, size_t n,
			     struct sc_err *err);

/*
 * META key naming a collection in progress (pid u32 + start time u64,
 * big-endian): set by every deletion transaction of snap_collect(), cleared
 * once its files are deleted. Found with a dead owner at open, it makes the
 * cleanup sweep blobs/ too.
 */
#define SNAP_COLLECT_OWNER_KEY "collect.owner"

/*
 * Restores invariants 2 and 3 of store.h; called by open. Unless full, the
 * orphan scan is skipped when snapshots/ holds one folder per record (which
 * relies on invariant 1; check --repair, which cannot, asks for full).
 */
int snap_store_cleanup(struct snap_store *s, bool full, struct sc_err *err);
