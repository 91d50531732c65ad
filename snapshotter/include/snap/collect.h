/*
 * Reachability and safe deletion: the part of garbage collection that says
 * what MAY go, and takes it away without ever breaking a running build.
 * Policies (what SHOULD go) live in gc/ and hand their choices to
 * snap_collect().
 *
 * The graph: every snapshot, blob and image is a node named "TYPE:NAME".
 * Edges are the refs table (image -> manifest -> config and layers, layer
 * blob -> unpacked snapshot, ...) plus child snapshot -> parent. Roots are
 * images, objects held by live leases, pinned objects, active snapshots and
 * views, and objects labelled snapctl.gc.root (or containerd.io/gc.root).
 * Whatever no root reaches is garbage.
 *
 * Phases, and the functions that move between them:
 *
 *   snap_gc_graph_load()   read transaction: a copy of every record and edge
 *         |
 *   snap_gc_graph_mark()   roots (minus those a policy drops) -> reached set
 *         |
 *   snap_collect()         victims, referrers before referents (children
 *         |                before parents), in short write transactions of
 *         |                at most SNAP_COLLECT_BATCH objects or ~20 ms. Each
 *         |                victim is checked again inside the transaction:
 *         |                still there, not pinned, no live lease, no
 *         |                remaining child or referrer. A check that fails
 *         |                keeps the object (a build got there first).
 *         v
 *   each transaction is synced as it commits; then all the victims' folders
 *   and files are deleted, outside any transaction. The writer lock is
 *   never held while files are deleted, and a crash at any point leaves
 *   only folders without records (or trash) that the next open clears.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "refs.h"
#include "store.h"

#define SNAP_COLLECT_BATCH 1024
#define SNAP_GC_ROOT_LABEL "snapctl.gc.root"

struct snap_gc_node {
	char *name;	/* "TYPE:NAME" */
	const char *id; /* NAME, inside name */
	enum snap_obj_type type;
	int kind;      /* snapshots: enum snap_kind; -1 for others */
	uint64_t size; /* bytes on disk the object alone occupies (0 for active/view) */
	uint64_t created, last_used;
	size_t parent; /* snapshots: index of the parent node, or SIZE_MAX */
	size_t *out;   /* edges: referents and the parent */
	size_t nout;
	size_t nin; /* referrers and children */
	struct snap_label *labels;
	size_t nlabels;
	bool root, reached, pinned;
	char *lease;	  /* a live lease holding it, or NULL */
	size_t images;	  /* image names that reach it */
	char reason[160]; /* why it is kept: the root that reached it first (and how many more
			     images) */
};

struct snap_gc_graph {
	struct snap_gc_node *v;
	size_t n;
	uint64_t now;
	/* name -> index, open addressing */
	size_t *slots;
	size_t nslots;
};

/* Loads every snapshot, blob, image, edge, lease and pin in one read transaction. */
int snap_gc_graph_load(struct snap_store *s, struct snap_gc_graph *ret, struct sc_err *err);
void snap_gc_graph_clear(struct snap_gc_graph *g);
/* Rebuilds the name index after nodes were added by hand (tests build graphs so). */
int snap_gc_graph_index(struct snap_gc_graph *g);
/* Index of a node by "TYPE:NAME", or SIZE_MAX. */
size_t snap_gc_graph_find(const struct snap_gc_graph *g, const char *name);
/*
 * Marks what the roots reach. dropped (may be NULL; g->n entries) names
 * nodes that stop being roots (a policy removes them): images, or
 * snapshots a policy selected.
 */
void snap_gc_graph_mark(struct snap_gc_graph *g, const bool *dropped);

struct snap_collect_result {
	size_t removed[_SNAP_OBJ_TYPE_MAX];
	size_t kept;		  /* victims a check inside the transaction kept */
	uint64_t freed;		  /* bytes on disk */
	uint64_t longest_lock_ns; /* longest write transaction */
	size_t transactions;
};

/*
 * Deletes the nodes of g whose victim[i] is true, safely (see above).
 * removed_out (may be NULL; g->n entries) is set for each node deleted.
 * Errors: as the metadata store; what was deleted before a failure stays deleted.
 */
int snap_collect(struct snap_store *s, const struct snap_gc_graph *g, const bool *victim,
		 bool *removed_out, struct snap_collect_result *ret, struct sc_err *err);

/* Collects everything no root reaches (snapctl gc). */
int snap_gc(struct snap_store *s, struct snap_collect_result *ret, struct sc_err *err);
