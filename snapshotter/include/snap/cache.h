/*
 * The build cache: a cache key (the hash of a build step's definition and
 * its inputs' cache keys) -> the committed snapshot the step produced and
 * the layer blob that snapshot diffs to against its parent.
 *
 * A record is an object of the collector's graph, "cache:KEY", with edges
 * to its snapshot and its layer blob, so the collector keeps what a record
 * holds and drops both once a policy drops the record (least recently
 * used first; records count as their type, "regular" for build steps).
 * Records are never roots: `snapctl gc` drops the whole cache.
 *
 * Lookups and stores run in one write transaction each, and attach the
 * record, its snapshot and its blob to the store handle's lease in that
 * same transaction (snap_store_use_lease()), so a collector running between
 * two of the caller's transactions can never take a record the caller is
 * about to build on.
 *
 * Notes: besides records, the cache keeps small opaque notes by name
 * (the builder keeps, per step position, what the last build of that
 * position used, to explain a cache miss). Notes are at most
 * SNAP_CACHE_NOTE_MAX bytes and hold no objects.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "err.h"
#include "store.h"

#define SNAP_CACHE_NOTE_MAX   (1u << 20)
#define SNAP_CACHE_DESC_MAX   1024
#define SNAP_CACHE_TYPE_LABEL "snapctl.cache.type"

struct snap_cache_record {
	char key[SC_DIGEST_STR_LEN + 1];   /* the cache key */
	char *snapshot;			   /* committed snapshot key, "" for none (scratch) */
	char layer[SC_DIGEST_STR_LEN + 1]; /* layer blob digest, "" when the step changed nothing */
	char diff_id[SC_DIGEST_STR_LEN + 1];
	uint64_t layer_size;
	char *layer_media_type; /* "" when no layer */
	char *type;		/* "regular" */
	char *description;	/* what made it ("RUN make") */
	uint64_t created, last_used, uses;
	bool blob_missing; /* lookup: the snapshot is there but its layer blob was collected */
};

void snap_cache_record_clear(struct snap_cache_record *rec);

/*
 * Looks key up. On a hit, in one write transaction: the snapshot is checked
 * to exist, the record's last_used and use count are updated, and the
 * record, its snapshot and (when present) its blob are attached to the
 * handle's lease. A record whose snapshot is gone is deleted and counts as
 * a miss. ret->blob_missing says the layer must be made again (snapshot
 * kept; store the record again with the new digest).
 * Errors: -ENOENT miss.
 */
int snap_cache_get(struct snap_store *s, const char *key, struct snap_cache_record *ret,
		   struct sc_err *err);

/* A note written with a record (see below). */
struct snap_cache_note {
	const char *name;
	const void *data;
	size_t len;
};

/*
 * Stores rec (replacing a record of the same key), its edges, and note
 * (may be NULL) in one transaction, and attaches the record to the
 * handle's lease. created/last_used/uses 0: now / now / 1.
 * Errors: -ENOENT the snapshot or layer blob does not exist; -EFBIG a note
 * over SNAP_CACHE_NOTE_MAX.
 */
int snap_cache_put(struct snap_store *s, const struct snap_cache_record *rec,
		   const struct snap_cache_note *note, struct sc_err *err);

/* Calls fn for every record in key order; fn returns < 0 to stop. */
typedef int (*snap_cache_walk_fn)(const struct snap_cache_record *rec, void *arg);
int snap_cache_walk(struct snap_store *s, snap_cache_walk_fn fn, void *arg, struct sc_err *err);

/*
 * Remembered content digests of files (build context files, so a rebuild
 * does not read what did not change): a 40-byte key made from what stat
 * says about a file (device, inode, size, mtime, ctime, big-endian u64
 * each) -> its sha256. The caller decides what is safe to remember.
 */
#define SNAP_FILE_KEY_LEN 40

struct snap_file_digest {
	uint8_t key[SNAP_FILE_KEY_LEN];
	char digest[SC_DIGEST_STR_LEN + 1];
};

/* -ENOENT when key is not remembered. */
int snap_cache_file_digest_get(struct snap_store *s, const uint8_t key[SNAP_FILE_KEY_LEN],
			       char ret[SC_DIGEST_STR_LEN + 1], struct sc_err *err);
/*
 * Remembers v (in transactions of up to 2,048 entries); an older entry for
 * the same device and inode is replaced, so the table holds at most one
 * entry per file.
 */
int snap_cache_file_digests_put(struct snap_store *s, const struct snap_file_digest *v, size_t n,
				struct sc_err *err);

/* A note written with a record; -ENOENT when absent. *ret is a heap copy (NUL-terminated). */
int snap_cache_note_get(struct snap_store *s, const char *name, char **ret, size_t *ret_len,
			struct sc_err *err);
/* Writes a note on its own (a cache hit whose position has none yet). -EFBIG over the limit. */
int snap_cache_note_put(struct snap_store *s, const struct snap_cache_note *note,
			struct sc_err *err);
