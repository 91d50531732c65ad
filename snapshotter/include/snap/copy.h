/*
 * The copy engine: one tree-copy routine for the native driver, COPY/ADD,
 * layer application and local export.
 *
 * It preserves file type, mode, owner, times (atime/mtime, nanoseconds),
 * xattrs (never trusted.overlay.*), hard links within the tree, symlinks,
 * device nodes, fifos and sockets, and holes in sparse files. File data goes
 * through the cheapest path that works: FICLONE (reflink) -> copy_file_range
 * -> io_uring batched read/write -> plain read/write. Which of those failed
 * with EOPNOTSUPP/EXDEV/EINVAL is remembered per (source dev, destination
 * dev) pair so the ladder is not retried per file. Many small files are
 * batched through io_uring. One syncfs() at the end, unless asked not to.
 *
 * The plain-syscall path is used when io_uring cannot be set up (seccomp), or
 * when SNAP_COPY_NO_URING is given or SNAPCTL_NO_IO_URING=1 is set.
 */
#pragma once

#include <stdint.h>

#include "err.h"

enum snap_copy_method {
	SNAP_COPY_REFLINK,
	SNAP_COPY_RANGE, /* copy_file_range */
	SNAP_COPY_URING,
	SNAP_COPY_RW,
	_SNAP_COPY_METHOD_MAX,
};

const char *snap_copy_method_to_string(enum snap_copy_method m);

enum {
	SNAP_COPY_NO_URING = 1u << 0,   /* never use io_uring */
	SNAP_COPY_NO_REFLINK = 1u << 1, /* never FICLONE (benchmarks, tests) */
	SNAP_COPY_NO_RANGE = 1u << 2,   /* never copy_file_range */
	SNAP_COPY_NO_SYNC = 1u << 3,    /* skip the final syncfs() */
};

struct snap_copy_opts {
	unsigned flags;
	unsigned queue_depth; /* io_uring in-flight requests; 0 = default (64) */
};

struct snap_copy_stats {
	uint64_t files, dirs, symlinks, specials, hardlinks;
	uint64_t bytes; /* file data bytes copied (logical) */
	uint64_t by_method[_SNAP_COPY_METHOD_MAX]; /* files whose data went each way */
};

/*
 * Copies the tree at src (relative to src_dirfd; a directory) to dst
 * (relative to dst_dirfd), which must not exist yet. opts and ret_stats may
 * be NULL. On failure the partial dst is left for the caller to remove (the
 * caller builds under a temporary name and renames into place).
 *
 * Errors: -ENOENT src missing, -EEXIST dst exists, -ENOSPC / -EDQUOT when
 * the destination fills, -EIO, and other -errno from the file system; err
 * names the path that failed.
 */
int snap_copy_tree(int src_dirfd, const char *src, int dst_dirfd, const char *dst,
		   const struct snap_copy_opts *opts, struct snap_copy_stats *ret_stats,
		   struct sc_err *err);

/*
 * Copies one regular file's data and metadata (as snap_copy_tree does for
 * each file) to dst, which must not exist.
 */
int snap_copy_file(int src_dirfd, const char *src, int dst_dirfd, const char *dst,
		   const struct snap_copy_opts *opts, struct sc_err *err);
