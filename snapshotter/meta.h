/*
 * The metadata store: one LMDB environment under ROOT/meta, with one named
 * database per table. This header is the schema; records are versioned byte
 * strings encoded with the snap_rec_* helpers below.
 *
 * Schema, version 1 (integers in keys are big-endian so order is numeric):
 *
 *   meta               "schema" -> u32 version; "next_id" -> u64; "driver" -> name
 *   snapshots          key -> snapshot record (see snapshot.c)
 *   snapshot_ids       be64 id -> key            (folders on disk are named by id)
 *   snapshot_children  be64 parent id || be64 child id -> ""
 *   leases             lease id -> lease record (see lease.c)
 *   lease_refs         lease id || 0 || type || 0 || name -> ""
 *   counters           name -> be64 value, kept exact in every transaction that changes
 *                      what they count, so usage questions are O(1)
 *   blobs              digest -> blob record (see content.c)
 *   refs               "TYPE:NAME" || 0 || "TYPE:NAME" -> ""   (edges for the collector)
 *   refs_rev           the same edges, to || 0 || from: who points at an object
 *   lease_objs         "TYPE:NAME" || 0 || lease id -> "": which leases hold an object
 *   pins               "TYPE:NAME" -> ""                       (never pruned)
 *   images             name -> u8 version (1), str target digest (manifest or index),
 *                      str target media type, str manifest digest (the platform's),
 *                      str config digest, str platform, str top snapshot key,
 *                      u64 created, u64 updated, u64 size, u32 layers  (see image/image.c)
 *   cache              "sha256:KEY" -> build cache record: u8 version (1), str snapshot,
 *                      str layer digest, str diff id, u64 layer size, str media type,
 *                      str type, str description, u64 created, u64 last_used, u64 uses;
 *                      "note:NAME" -> opaque bytes (what a step position last used);
 *                      "fd:" || 40-byte stat key -> a context file's sha256  (see cache.c)
 *
 * Transactions: struct snap_txn wraps an LMDB transaction with a sticky error.
 * After the first failure every call is a no-op that returns the same error,
 * and snap_txn_commit() aborts instead. LMDB codes become -errno in one place
 * (snap_meta_errno). Writes go through snap_meta_write(), which runs a
 * function in a write transaction and, when the map is full, aborts, grows
 * the map and runs it again: growth happens only at this outermost level.
 *
 * Durability: a commit syncs the data pages once; the meta page that makes
 * the newest transaction current reaches the disk with the next commit or
 * snap_meta_sync(). A power failure can therefore undo the newest
 * transaction, never corrupt the store. Whoever is about to do something
 * irreversible because of a transaction (delete a removed snapshot's folder)
 * calls snap_meta_sync() first; an undone prepare or commit only leaves a
 * folder without a record, which the next open cleans up.
 */
#pragma once

#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "err.h"

#define SNAP_META_SCHEMA 1u

enum snap_db {
	SNAP_DB_META,
	SNAP_DB_SNAPSHOTS,
	SNAP_DB_SNAPSHOT_IDS,
	SNAP_DB_SNAPSHOT_CHILDREN,
	SNAP_DB_LEASES,
	SNAP_DB_LEASE_REFS,
	SNAP_DB_COUNTERS,
	SNAP_DB_BLOBS,
	SNAP_DB_IMAGES,
	SNAP_DB_CACHE,
	SNAP_DB_REFS,
	SNAP_DB_PINS,
	SNAP_DB_REFS_REV,
	SNAP_DB_LEASE_OBJS,
	_SNAP_DB_MAX,
};

struct snap_meta;

typedef void (*snap_txn_undo_fn)(void *arg);

struct snap_txn {
	struct snap_meta *meta;
	MDB_txn *txn;
	bool write;
	int error;	       /* sticky: first failure, 0 while none */
	bool map_full;	       /* the failure was LMDB's map being full */
	struct sc_err *err;    /* where messages go; may be NULL */
	snap_txn_undo_fn undo; /* run when a write transaction ends without committing */
	void *undo_arg;
};

/* Opens (creating) the environment in dir and migrates it to SNAP_META_SCHEMA. */
int snap_meta_open(const char *dir, struct snap_meta **ret, struct sc_err *err);
/* NULL-safe; returns NULL. */
struct snap_meta *snap_meta_close(struct snap_meta *m);

/* LMDB result code -> -errno (0 stays 0, MDB_NOTFOUND -> -ENOENT, MDB_MAP_FULL -> -ENOSPC, ...). */
int snap_meta_errno(int mdb_rc);

int snap_txn_begin_read(struct snap_meta *m, struct snap_txn *t, struct sc_err *err);
/* Ends a read transaction (or aborts a write one). NULL-txn safe. */
void snap_txn_end(struct snap_txn *t);

/*
 * Runs fn in a write transaction and commits it. When fn or the commit fails
 * the transaction is aborted (running the undo hook, if fn set one). On a
 * full map the map is grown and fn runs again from the start, so fn must have
 * no effect outside the transaction other than one it undoes in its hook.
 */
typedef int (*snap_write_fn)(struct snap_txn *t, void *arg);
int snap_meta_write(struct snap_meta *m, snap_write_fn fn, void *arg, struct sc_err *err);

/* Registers the one undo hook of this write transaction. */
void snap_txn_on_abort(struct snap_txn *t, snap_txn_undo_fn fn, void *arg);

/* Gets key; -ENOENT if absent. The value points into the map: valid until the txn ends. */
int snap_txn_get(struct snap_txn *t, enum snap_db db, const void *key, size_t klen, MDB_val *ret);
int snap_txn_put(struct snap_txn *t, enum snap_db db, const void *key, size_t klen, const void *val,
		 size_t vlen, unsigned flags);
/* Deletes key; -ENOENT if absent. */
int snap_txn_del(struct snap_txn *t, enum snap_db db, const void *key, size_t klen);
/* Sets the sticky error (for checks done by the caller); returns code. */
int snap_txn_fail(struct snap_txn *t, int code);

/*
 * Visits every entry whose key starts with prefix (plen 0: all), in key order.
 * fn returns 0 to go on, 1 to stop, < 0 to fail. Values are valid only during fn.
 */
typedef int (*snap_txn_visit_fn)(const MDB_val *key, const MDB_val *val, void *arg);
int snap_txn_scan(struct snap_txn *t, enum snap_db db, const void *prefix, size_t plen,
		  snap_txn_visit_fn fn, void *arg);
/* True if any key starts with prefix. */
int snap_txn_has_prefix(struct snap_txn *t, enum snap_db db, const void *prefix, size_t plen);

/* Counters: read (0 when absent) and add a signed delta (never below 0). */
uint64_t snap_txn_counter_get(struct snap_txn *t, const char *name);
int snap_txn_counter_add(struct snap_txn *t, const char *name, int64_t delta);

/* Makes every committed transaction durable (flushes the newest meta page). */
int snap_meta_sync(struct snap_meta *m);

/* Size of the metadata file on disk (data.mdb). */
uint64_t snap_meta_file_size(struct snap_meta *m);

/* Record encoding: a version byte, then fields in order. */
struct snap_rec_reader {
	const uint8_t *p;
	size_t left;
	bool bad; /* set when a read ran past the end; checked once at the end */
};

struct sc_buf;
int snap_rec_put_u8(struct sc_buf *b, uint8_t v);
int snap_rec_put_u32(struct sc_buf *b, uint32_t v);
int snap_rec_put_u64(struct sc_buf *b, uint64_t v);
int snap_rec_put_str(struct sc_buf *b, const char *s); /* NULL is stored as "" */

struct snap_label;
/* Labels: a u32 count, then key and value strings. */
int snap_rec_put_labels(struct sc_buf *b, const struct snap_label *labels, size_t n);
/* Reads labels into a new array the caller frees with snap_labels_free(); sets r->bad on error. */
void snap_rec_get_labels(struct snap_rec_reader *r, struct snap_label **ret, size_t *ret_n);
void snap_labels_free(struct snap_label *labels, size_t n);

uint8_t snap_rec_get_u8(struct snap_rec_reader *r);
uint32_t snap_rec_get_u32(struct snap_rec_reader *r);
uint64_t snap_rec_get_u64(struct snap_rec_reader *r);
/* A digest string ("" allowed) into dst; longer than a digest sets r->bad. */
void snap_rec_get_digest(struct snap_rec_reader *r, char dst[SC_DIGEST_STR_LEN + 1]);
/* Returns a malloc'ed copy (the caller frees), "" for an empty string, NULL on error. */
char *snap_rec_get_str(struct snap_rec_reader *r);
