/*
 * Edges between stored objects, for the collector: an image holds its
 * manifest, a manifest its config and layers, a layer blob its unpacked
 * snapshot, a cache record its snapshot and blobs. Objects are named
 * "TYPE:NAME" with TYPE one of snapshot, blob, image, cache; a snapshot's
 * parent is an implicit edge.
 *
 * Pins mark objects that no policy may remove (snapctl pin / unpin).
 */
#pragma once

#include <stdbool.h>

#include "err.h"

struct snap_store;

enum snap_obj_type {
	SNAP_OBJ_SNAPSHOT,
	SNAP_OBJ_BLOB,
	SNAP_OBJ_IMAGE,
	SNAP_OBJ_CACHE,
	_SNAP_OBJ_TYPE_MAX,
};

const char *snap_obj_type_to_string(enum snap_obj_type t);
int snap_obj_type_from_string(const char *s); /* -EINVAL if unknown */

#define SNAP_OBJ_NAME_MAX 420 /* bytes in "TYPE:NAME" */

/* Writes "TYPE:NAME" into buf (SNAP_OBJ_NAME_MAX + 1). -ENAMETOOLONG if it does not fit. */
int snap_obj_name(char *buf, enum snap_obj_type type, const char *name);

/*
 * Adds or removes an edge from -> to (both "TYPE:NAME"). An edge is one LMDB
 * key, so the two names together are at most 510 bytes (-ENAMETOOLONG);
 * every edge snapctl makes has a digest on at least one side.
 */
int snap_ref_add(struct snap_store *s, const char *from, const char *to, struct sc_err *err);
int snap_ref_remove(struct snap_store *s, const char *from, const char *to, struct sc_err *err);

/* Calls fn for each object that from points to. */
typedef int (*snap_ref_fn)(const char *to, void *arg);
int snap_ref_walk(struct snap_store *s, const char *from, snap_ref_fn fn, void *arg,
		  struct sc_err *err);

/*
 * Resolves what a user typed to "TYPE:NAME": an explicit TYPE:NAME, a blob
 * digest, a snapshot key, or an image name, in that order. ret holds
 * SNAP_OBJ_NAME_MAX + 1 bytes. -ENOENT if nothing has that name.
 */
int snap_obj_resolve(struct snap_store *s, const char *name, char *ret, struct sc_err *err);

/* Pins or unpins an object ("TYPE:NAME"). -ENOENT when unpinning what is not pinned. */
int snap_pin(struct snap_store *s, const char *obj, bool pinned, struct sc_err *err);
bool snap_is_pinned(struct snap_store *s, const char *obj);
