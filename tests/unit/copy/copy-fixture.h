/*
 * Helpers shared by the copy engine tests: building trees and comparing a
 * copy with its source entry by entry (type, mode, owner, mtime, size,
 * bytes, symlink target, device number, xattrs, hard-link structure).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "copy.h"

/* tap_tmpdir()/name, in a static buffer per call site (copy it to keep it). */
char *fx_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Writes len pseudo-random bytes (from seed) to path with mode; returns 0 or -errno. */
int fx_file(const char *path, size_t len, uint32_t seed, mode_t mode);
/* Sets atime and mtime with nanoseconds, not following symlinks. */
int fx_times(const char *path, long sec, long nsec);

/*
 * Compares the tree dst with src; fails the current test point with the
 * first difference. Owners are compared always (as a user they are the
 * user's). trusted.overlay.* in src must be absent in dst.
 */
void fx_compare_trees(const char *src, const char *dst);

/* Makes every directory below path writable again so tap's cleanup can remove it. */
void fx_chmod_dirs_writable(const char *path);

/* Whether io_uring can be set up in this process (no seccomp filter in the way). */
bool fx_uring_available(void);

/* snap_copy_tree() from AT_FDCWD with flags. */
int fx_copy(const char *src, const char *dst, unsigned flags, struct snap_copy_stats *stats,
	    struct sc_err *err);

/* Runs cmd with /bin/sh; returns its exit status, or -1. */
int fx_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Number of open fds of this process. */
int fx_count_fds(void);
