/*
 * The copy engine: one tree-copy routine for the native driver, COPY/ADD,
 * layer application and local export.
 *
 * It preserves file type, mode, owner, times (atime/mtime, nanoseconds),
 * xattrs (never trusted.overlay.*), hard links within the tree, symlinks,
 * device nodes, fifos and sockets, and holes in sparse files. File data goes
 * through the cheapest path that works: FICLONE (reflink) -> copy_file_range
 * -> io_uring batched read/write -> plain read/write. Which of those failed
 * with EOPNOTSUPP/EXDEV/EINVAL is remembered per (source, destination) file
 * system pair, process-wide and thread-safe, so the ladder is not retried per
 * file. Where reflink is unavailable, small files (and large ones that
 * copy_file_range cannot move) are batched through io_uring: openat, read and
 * write of up to queue_depth requests in flight. One syncfs() at the end,
 * unless asked not to. docs/copy-engine.md has the measured figures.
 *
 * The plain-syscall path is used when io_uring cannot be set up (seccomp, old
 * kernel), or when SNAP_COPY_NO_URING is given or SNAPCTL_NO_IO_URING=1 is
 * set.
 *
 * The same pipeline writes data that arrives as a stream rather than from a
 * source file (layer apply): see snap_copy_writer below.
 *
 * Assumptions: the source does not change while it is copied (a concurrent
 * change may fail the copy or copy a mix, but opens never leave the source
 * tree: they refuse symlinks and ".."), and the destination is private to the
 * caller until the copy returns. Calls are independent and may run in
 * parallel from several threads.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Deepest directory nesting copied; deeper trees fail with -ELOOP. */
#define SNAP_COPY_MAX_DEPTH 1024
/* Longest path below the tree root, in bytes; longer fails with -ENAMETOOLONG. */
#define SNAP_COPY_MAX_PATH 4000

enum snap_copy_method {
	SNAP_COPY_REFLINK,
	SNAP_COPY_RANGE, /* copy_file_range */
	SNAP_COPY_URING,
	SNAP_COPY_RW,
	_SNAP_COPY_METHOD_MAX,
};

/* "reflink", "copy_file_range", "io_uring", "read_write"; NULL when out of range. */
const char *snap_copy_method_to_string(enum snap_copy_method m);
/* The inverse; -EINVAL when s names no method. */
int snap_copy_method_from_string(const char *s, enum snap_copy_method *ret);

enum {
	SNAP_COPY_NO_URING = 1u << 0,	/* never use io_uring */
	SNAP_COPY_NO_REFLINK = 1u << 1, /* never FICLONE (benchmarks, tests) */
	SNAP_COPY_NO_RANGE = 1u << 2,	/* never copy_file_range */
	SNAP_COPY_NO_SYNC = 1u << 3,	/* skip the final syncfs() / fsync() */
};

struct snap_copy_opts {
	unsigned flags;
	unsigned queue_depth; /* io_uring in-flight requests; 0 = default (64), at most 256 */
};

/*
 * What a copy did. dirs counts the top directory too; files counts regular
 * files whose data was copied (a hard link to one already copied counts in
 * hardlinks instead, whatever its type). bytes is the sum of their sizes,
 * holes and reflinked data included. by_method counts files with data (size
 * > 0) by the path that moved it; empty files count in none.
 */
struct snap_copy_stats {
	uint64_t files, dirs, symlinks, specials, hardlinks;
	uint64_t bytes;				   /* file data bytes copied (logical) */
	uint64_t by_method[_SNAP_COPY_METHOD_MAX]; /* files whose data went each way */
};

/*
 * Copies the tree at src (relative to src_dirfd; a directory) to dst
 * (relative to dst_dirfd), which must not exist yet; its parent must. opts
 * and ret_stats may be NULL; ret_stats is written on success only. On failure
 * the partial dst is left for the caller to remove (the caller builds under a
 * temporary name and renames into place). A directory of the source that is
 * the new dst itself is skipped, so copying a tree into itself terminates.
 *
 * Errors: -ENOENT src missing, -EINVAL src is not a directory, -EEXIST dst
 * exists, -ENOSPC / -EDQUOT when the destination fills, -ELOOP deeper than
 * SNAP_COPY_MAX_DEPTH, -ENAMETOOLONG a path longer than SNAP_COPY_MAX_PATH
 * or a symlink target longer than PATH_MAX, -EPERM / -EACCES when the
 * caller may not read a file or set an owner, a device node or an xattr,
 * -EOPNOTSUPP when the destination cannot hold an xattr the source has,
 * -ENOMEM, -EIO, and other -errno from the file system. err names the path
 * that failed.
 */
int snap_copy_tree(int src_dirfd, const char *src, int dst_dirfd, const char *dst,
		   const struct snap_copy_opts *opts, struct snap_copy_stats *ret_stats,
		   struct sc_err *err);

/*
 * Copies the entries names[0..n) of folder src_dirfd (plain names: files,
 * symlinks, special files or whole folders) to the same names in folder
 * dst_dirfd, where none may exist yet, as one snap_copy_tree() walk: one
 * pipeline for all of them, hard links between them kept, one syncfs()
 * unless SNAP_COPY_NO_SYNC. The two folders themselves are not changed
 * beyond the new entries. src and dst name the folders in messages. On
 * failure what was copied stays for the caller to remove. Errors as
 * snap_copy_tree, and -EINVAL for a name that is not a plain name.
 */
int snap_copy_entries(int src_dirfd, const char *src, int dst_dirfd, const char *dst,
		      const char *const *names, size_t n, const struct snap_copy_opts *opts,
		      struct snap_copy_stats *ret_stats, struct sc_err *err);

/*
 * Copies one regular file's data and metadata (as snap_copy_tree does for
 * each file) to dst, which must not exist, then fsync()s it unless
 * SNAP_COPY_NO_SYNC. On failure dst is removed again. Errors as
 * snap_copy_tree; -EINVAL when src is not a regular file.
 */
int snap_copy_file(int src_dirfd, const char *src, int dst_dirfd, const char *dst,
		   const struct snap_copy_opts *opts, struct sc_err *err);

/*
 * The batched writer: file data that arrives as a stream (a layer tar being
 * unpacked) written to files the caller created, through the copy engine's
 * io_uring pipeline. The caller's bytes are copied into a pool of
 * queue_depth buffers of 128 KiB; each full buffer (or the last piece of a
 * file) becomes one write, up to queue_depth in flight across files; short
 * writes are requeued for the rest. When the pool is exhausted a call waits
 * for completions, so memory stays at queue_depth * 128 KiB (8 MiB by
 * default) whatever the stream. With SNAP_COPY_NO_URING, SNAPCTL_NO_IO_URING=1
 * or io_uring unusable, the same calls pwrite() synchronously instead; the
 * files come out the same.
 *
 * One file is written at a time: begin, write (any number, offsets may skip
 * ahead: a gap stays a hole), end. A file is complete when every write to it
 * is done; only then its finish callback runs (in the caller's thread, from
 * within a writer call, files in no particular order), and the writer closes
 * its fd after it. Metadata belongs in finish: a write clears set-id bits
 * and security.capability and moves mtime. Only flags and queue_depth of
 * snap_copy_opts are used. The writer never syncs (one syncfs() at the end
 * is the caller's), but unless SNAP_COPY_NO_SYNC it starts writeback early
 * (sync_file_range(SYNC_FILE_RANGE_WRITE), 8 MiB at a time and the rest once
 * a file of 1 MiB or more is complete; through io_uring when that is used), so the disk works
 * while the caller still produces data and that syncfs() has less left.
 */
struct snap_copy_writer;

/*
 * Called exactly once for every file begun. status 0: all its data is
 * written; set what else the file needs on fd and return >= 0, or -errno
 * with err set (the writer then fails). status < 0: the file is abandoned
 * (an earlier failure, or the writer freed before the file was complete);
 * only release arg, the return value is ignored. The writer closes fd
 * afterwards either way.
 */
typedef int (*snap_copy_finish_fn)(void *arg, int fd, int status, struct sc_err *err);

/*
 * Makes a writer (owned by the caller: snap_copy_writer_free). Never fails
 * because io_uring is unusable: it then writes synchronously.
 * Errors: -EINVAL queue depth over 256, -ENOMEM.
 */
int snap_copy_writer_new(const struct snap_copy_opts *opts, struct snap_copy_writer **ret,
			 struct sc_err *err);

/* SNAP_COPY_URING or SNAP_COPY_RW: how this writer writes. */
enum snap_copy_method snap_copy_writer_method(const struct snap_copy_writer *w);

/*
 * Starts the next file: fd is open for writing, name is what messages call
 * it (copied). Takes ownership of fd and of arg whatever it returns (finish
 * is called for arg, with status < 0 when begin fails). finish does not
 * run for arg before end() (or snap_copy_writer_free()), so until then the
 * caller may still update what arg points to. The previous file must have
 * been ended. May wait for earlier files and run their finish.
 * Errors: the first failure of any earlier file (with its name in err).
 */
int snap_copy_writer_begin(struct snap_copy_writer *w, int fd, const char *name,
			   snap_copy_finish_fn finish, void *arg, struct sc_err *err);

/*
 * Writes len bytes at off into the current file (the bytes are copied before
 * it returns). Errors: -ENOSPC, -EDQUOT, -EIO and other -errno of a write,
 * with the file's name, "cannot write 'NAME': ..."; or an earlier file's.
 */
int snap_copy_writer_write(struct snap_copy_writer *w, const void *data, size_t len, uint64_t off,
			   struct sc_err *err);

/*
 * The current file has all its data; it is finished once written. Called
 * after a failed write too: the file is then abandoned and the failure
 * returned again. Errors as write.
 */
int snap_copy_writer_end(struct snap_copy_writer *w, struct sc_err *err);

/* Waits until every file ended is written and finished. Errors as write, or finish's. */
int snap_copy_writer_drain(struct snap_copy_writer *w, struct sc_err *err);

/*
 * Waits for writes still in flight, abandons files not finished (finish with
 * status < 0, fd closed), frees. NULL-safe; returns NULL.
 */
struct snap_copy_writer *snap_copy_writer_free(struct snap_copy_writer *w);
