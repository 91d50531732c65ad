/*
 * Mount specs, as containerd's snapshotters return them: a type, a source
 * and options. snap_mounts_apply() performs them, using the new mount API
 * (fsopen/fsconfig with one "lowerdir+" per layer) so that deep overlay
 * chains are not cut at the one-page limit of mount(2)'s option string.
 */
#pragma once

#include <stddef.h>

#include "err.h"

struct snap_mount {
	char *type;   /* "overlay" or "bind" */
	char *source; /* "overlay" or the bound directory */
	char **options;
	size_t noptions;
	/* overlay only: the lower layers, top first, for the new mount API */
	char **lowers;
	size_t nlowers;
};

struct snap_mounts {
	struct snap_mount *v;
	size_t n;
};

void snap_mounts_clear(struct snap_mounts *m);

/* Mounts m at target (an existing directory). Errors: -E2BIG too many layers, -errno. */
int snap_mounts_apply(const struct snap_mounts *m, const char *target, struct sc_err *err);
/* Unmounts target. -EINVAL when nothing is mounted there. */
int snap_mount_remove(const char *target, struct sc_err *err);
