/*
 * Automatic collection. The question "are we over a threshold?" is O(1):
 * the counters give what the store holds and statvfs what the file system
 * has free. Only when a configured policy's max-used or min-free is crossed
 * do the policies run, in the same process.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/statvfs.h>

#include "gc.h"
#include "log.h"

static bool
over_threshold(struct snap_store *s, const struct gc_config *c, uint64_t extra)
{
	struct snap_store_counts counts;
	if (snap_store_counts(s, &counts, NULL) < 0)
		return false;
	uint64_t used = counts.committed_bytes + counts.blobs_disk + extra;
	uint64_t avail = UINT64_MAX;
	struct statvfs vfs;
	if (statvfs(snap_store_root(s), &vfs) == 0)
		avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	avail = avail > extra ? avail - extra : 0;
	for (size_t i = 0; i < c->npolicies; i++) {
		const struct gc_policy *p = &c->policies[i];
		/* Filtered policies are checked when they run; the store-wide ones here. */
		if (p->nfilters)
			continue;
		if (p->max_used && used > p->max_used)
			return true;
		if (p->min_free && avail < p->min_free)
			return true;
	}
	return false;
}

static int
auto_run(struct snap_store *s, uint64_t extra, struct sc_err *err)
{
	struct gc_config c = {0};
	int r = gc_config_load(s, &c, err);
	if (r < 0)
		return r;
	if (!c.auto_gc || !over_threshold(s, &c, extra)) {
		gc_config_clear(&c);
		return 0;
	}
	sc_debug("automatic collection: over a threshold");
	/* Room for what is about to be written comes on top of the free-space floors. */
	for (size_t i = 0; i < c.npolicies; i++)
		if (c.policies[i].min_free)
			c.policies[i].min_free += extra;
	struct gc_prune_report rep = {0};
	r = gc_prune(s, c.policies, c.npolicies, 0, &rep, err);
	gc_prune_report_clear(&rep);
	gc_config_clear(&c);
	return r < 0 ? r : 1;
}

int
gc_auto(struct snap_store *s, struct sc_err *err)
{
	return auto_run(s, 0, err);
}

static int
space_hook(struct snap_store *s, uint64_t bytes, void *arg)
{
	/* A failed collection must not fail the write: the write reports ENOSPC itself. */
	struct sc_err err = SC_ERR_INIT;
	if (auto_run(s, bytes, &err) < 0)
		sc_debug("automatic collection before a write failed: %s", sc_err_msg(&err));
	return 0;
}

void
gc_auto_install(struct snap_store *s)
{
	snap_store_set_space_hook(s, space_hook, NULL);
}
