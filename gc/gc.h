/*
 * What should go: garbage-collection policies, the choice they make among
 * the records that may go (snapshotter's collect.h says what may), disk
 * usage, consistency checks and the automatic trigger.
 *
 * Records, as users see them, each with a type:
 *   regular          committed snapshots (and, in use, active snapshots and views)
 *   exec.cachemount, source.local, frontend
 *                    snapshots the builder labels snapctl.cache.type=TYPE
 *   content          blobs
 *   image            image names (candidates only with --all)
 *
 * A policy: optional filters (ANDed), keep-duration (drop what was unused
 * for longer), max-used (a cap: act only while the matching records take
 * more), min-free (act while the file system has less free), reserved (a
 * floor the matching records are never pruned below). Candidates go least
 * recently used first, and a parent can go in the same run as its last
 * child. Pinned and leased records never go.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collect.h"
#include "err.h"
#include "store.h"

enum gc_filter_kind {
	GC_FILTER_TYPE,	 /* type=a[,b...] */
	GC_FILTER_LABEL, /* label=K or label=K=V */
	GC_FILTER_ID,	 /* id=PREFIX */
	_GC_FILTER_KIND_MAX,
};

struct gc_filter {
	enum gc_filter_kind kind;
	char *value; /* after "kind=" */
};

enum gc_source {
	GC_SOURCE_DEFAULT,
	GC_SOURCE_CONFIG,
	GC_SOURCE_FLAG,
	_GC_SOURCE_MAX,
};

const char *gc_source_to_string(enum gc_source s);

struct gc_policy {
	enum gc_source source;
	bool all;		/* images are candidates too */
	uint64_t keep_duration; /* ns; 0 = none */
	uint64_t max_used;	/* bytes; 0 = none */
	uint64_t reserved;	/* bytes; 0 = none */
	uint64_t min_free;	/* bytes; 0 = none (percentages are resolved on load) */
	struct gc_filter *filters;
	size_t nfilters;
};

void gc_policy_clear(struct gc_policy *p);

const char *gc_filter_kind_to_string(enum gc_filter_kind k);
/* Parses "type=...", "label=K[=V]", "id=PREFIX". -EINVAL with a message naming it. */
int gc_filter_parse(const char *s, struct gc_filter *ret, struct sc_err *err);
/* Size of the file system holding ROOT, in bytes (0 if unknown). */
uint64_t gc_fs_size(struct snap_store *s);
/* Parses "10GB", "512MiB", bytes, or "N%" of fs_size. */
int gc_size_parse(const char *s, uint64_t fs_size, uint64_t *ret, struct sc_err *err);

/* Policies from ROOT/config.json, or the defaults when it has none. */
struct gc_config {
	bool auto_gc; /* run policies automatically after commands that add data */
	struct gc_policy *policies;
	size_t npolicies;
	enum gc_source source;
};

void gc_config_clear(struct gc_config *c);
/*
 * Loads ROOT/config.json. Missing file: the defaults. An unreadable or
 * malformed file, or an unknown or bad field, is an error naming it.
 */
int gc_config_load(struct snap_store *s, struct gc_config *ret, struct sc_err *err);
/* The defaults, scaled to the file system holding ROOT. */
int gc_config_defaults(struct snap_store *s, struct gc_config *ret, struct sc_err *err);

/* Type of graph node i, as above. */
const char *gc_node_type(const struct snap_gc_graph *g, size_t i);

enum {
	GC_PRUNE_DRY_RUN = 1u << 0,
};

struct gc_pruned {
	size_t node; /* index into the report's graph */
};

struct gc_prune_report {
	struct snap_gc_graph graph;
	bool *victim;	 /* chosen (per node) */
	bool *removed;	 /* actually deleted (per node); equals victim on a dry run */
	char **why_kept; /* per node: why a record that may go was kept, or NULL */
	struct snap_collect_result result;
	uint64_t would_free;
};

void gc_prune_report_clear(struct gc_prune_report *r);

/*
 * The choice alone, on a loaded graph: applies policies in order and sets
 * victim[i] for every node to delete (the chosen records and what only
 * chosen images held). fs_avail is the file system's free space, for
 * min-free. why (may be NULL) receives, per node, why a record that may go
 * was kept (the caller frees each string). Marks g as a side effect.
 */
int gc_select(struct snap_gc_graph *g, const struct gc_policy *policies, size_t n,
	      uint64_t fs_avail, bool *victim, char **why);

/*
 * Applies policies in order and deletes what they choose (and what only
 * the chosen records held). With GC_PRUNE_DRY_RUN nothing changes.
 */
int gc_prune(struct snap_store *s, const struct gc_policy *policies, size_t n, unsigned flags,
	     struct gc_prune_report *ret, struct sc_err *err);

/* Disk usage by type. */
struct gc_usage_row {
	const char *type;
	size_t count;
	uint64_t size, reclaimable, shared;
};

#define GC_USAGE_ROWS 8

/* What the last prune that changed the store did (at == 0: none yet). */
struct gc_prune_note {
	uint64_t at;	  /* ns since the epoch, when it ended */
	uint64_t freed;	  /* bytes */
	uint64_t records; /* removed */
	uint64_t took_ns; /* how long it ran */
};

/* META key of the note (4 big-endian u64: at, freed, records, took_ns). */
#define GC_PRUNE_NOTE_KEY "prune.last"
int gc_prune_note_get(struct snap_store *s, struct gc_prune_note *ret, struct sc_err *err);

struct gc_usage {
	struct gc_usage_row rows[GC_USAGE_ROWS];
	size_t nrows;
	struct gc_prune_note last_prune;
	uint64_t fs_size, fs_avail; /* the store's file system */
	uint64_t metadata;	    /* the metadata file */
	uint64_t other;		    /* trash/, tmp/, ingest/ */
	uint64_t total;
	struct snap_gc_graph graph; /* for per-record listings */
	uint64_t *active_size;	    /* per node: measured size of active snapshots and views */
};

void gc_usage_clear(struct gc_usage *u);
int gc_usage(struct snap_store *s, struct gc_usage *ret, struct sc_err *err);

/* snapctl check */
enum gc_problem_kind {
	GC_PROBLEM_MISSING_FOLDER, /* record without its folder or file */
	GC_PROBLEM_ORPHAN_FOLDER,  /* folder or file without a record */
	GC_PROBLEM_DAMAGED_BLOB,   /* content no longer matches its digest */
	GC_PROBLEM_DEAD_LEASE,
	GC_PROBLEM_COUNTER,	   /* a counter disagrees with a recount */
	GC_PROBLEM_TRASH,	   /* trash/ not emptied yet */
	GC_PROBLEM_MISSING_TARGET, /* an image or record points at a blob or snapshot not there */
	GC_PROBLEM_DEAD_OWNER,	   /* work in progress of a process that is gone */
	GC_PROBLEM_LEAKED_QUOTA,   /* a qgroup or project limit no snapshot holds */
	_GC_PROBLEM_KIND_MAX,
};

const char *gc_problem_kind_to_string(enum gc_problem_kind k);

struct gc_problem {
	enum gc_problem_kind kind;
	char *what; /* the object, path or counter */
	char *detail;
	bool repaired;
};

struct gc_check_report {
	struct gc_problem *v;
	size_t n;
};

void gc_check_report_clear(struct gc_check_report *r);
/* Finds (and with repair, fixes) inconsistencies. */
int gc_check(struct snap_store *s, bool repair, struct gc_check_report *ret, struct sc_err *err);

/*
 * The automatic trigger: O(1) comparison of the counters (and the file
 * system's free space) with the configured policies; runs them when over a
 * threshold. Returns 1 if it collected, 0 if nothing was needed.
 */
int gc_auto(struct snap_store *s, struct sc_err *err);
/* Installs gc_auto as the store's hook before large writes (min-free check). */
void gc_auto_install(struct snap_store *s);
