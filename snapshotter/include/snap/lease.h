/*
 * Leases: a running build holds one on everything it uses or creates, so the
 * collector keeps those objects. A lease is live until its expiry passes or
 * its holder process (pid + start time, so a reused pid does not count) is
 * gone; after that it protects nothing.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

struct snap_store;

#define SNAP_LEASE_ID_MAX 100 /* with an object name it must fit one LMDB key */

struct snap_lease_ref {
	char *type; /* "snapshot", "blob", "image" */
	char *name;
};

struct snap_lease {
	char *id;
	uint64_t created;   /* ns since the epoch */
	uint64_t expires;   /* ns since the epoch; 0 = never */
	pid_t pid;	    /* holder; 0 = none */
	uint64_t starttime; /* holder's start time (clock ticks since boot) */
	struct snap_lease_ref *refs;
	size_t nrefs;
};

void snap_lease_clear(struct snap_lease *l);
/* False once the expiry passed or the holder is gone. */
bool snap_lease_alive(const struct snap_lease *l, uint64_t now_ns);

/*
 * Creates a lease. id NULL: a random one. ttl_ns 0: no expiry. pid 0: no
 * holder; otherwise its start time is read now (-ESRCH if no such process).
 * ret (may be NULL) receives it.
 */
int snap_lease_create(struct snap_store *s, const char *id, uint64_t ttl_ns, pid_t pid,
		      struct snap_lease *ret, struct sc_err *err);
/* Attaches an object. type: snapshot | blob | image. -ENOENT lease missing. */
int snap_lease_add(struct snap_store *s, const char *id, const char *type, const char *name,
		   struct sc_err *err);
/*
 * Attaches, in one transaction, each of n objects (types[i]: snapshot |
 * blob) that exists now (a snapshot only when committed); present[i] says
 * which did. What it attached cannot be collected until the lease goes, so
 * a caller that found an object present may rely on it. -ENOENT lease
 * missing.
 */
int snap_lease_attach_present(struct snap_store *s, const char *id, const char *const *types,
			      const char *const *names, size_t n, bool *present,
			      struct sc_err *err);
/* Detaches an object. -ENOENT if it was not attached. */
int snap_lease_remove_ref(struct snap_store *s, const char *id, const char *type, const char *name,
			  struct sc_err *err);
/* Deletes a lease and its refs. -ENOENT if missing. */
int snap_lease_delete(struct snap_store *s, const char *id, struct sc_err *err);
/* Reads one lease with its refs. */
int snap_lease_get(struct snap_store *s, const char *id, struct snap_lease *ret,
		   struct sc_err *err);

typedef int (*snap_lease_walk_fn)(const struct snap_lease *l, void *arg);
/* Calls fn for every lease, with its refs, in id order. */
int snap_lease_walk(struct snap_store *s, snap_lease_walk_fn fn, void *arg, struct sc_err *err);
/* Deletes leases that are no longer alive; returns how many. */
int snap_lease_prune_dead(struct snap_store *s, struct sc_err *err);
