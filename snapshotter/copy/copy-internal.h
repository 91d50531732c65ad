/*
 * Shared between the parts of the copy engine: copy.c walks the tree,
 * attrs.c copies owner, mode, xattrs and times, data.c holds the
 * reflink -> copy_file_range -> read/write ladder and the per-file-system
 * method cache, uring.c the io_uring pipeline, writer.c the batched writer
 * of streamed data on top of it. One struct copy_ctx per call (or writer);
 * only the method cache is shared between calls.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "copy.h"
#include "err.h"

#define COPY_QD_DEFAULT 64u
#define COPY_QD_MAX	256u
/* Larger files take copy_file_range (one syscall, no user copy) when it works. */
#define COPY_URING_MAX_FILE (4u << 20)
/* Bytes per io_uring read/write. */
#define COPY_CHUNK (128u << 10)
/* The writer starts writeback of a large file's data this many bytes at a time. */
#define COPY_WRITEBACK_WINDOW (8u << 20)
/*
 * Files smaller than this get no early writeback: the caller's syncfs()
 * writes many small files in fewer, larger requests than one hint per file
 * would (a Debian layer of 6,700 files imported ~10% faster without them).
 */
#define COPY_WRITEBACK_MIN (1u << 20)
/* The writer submits its writes to the kernel in batches of this many. */
#define COPY_STREAM_BATCH 8u
/* Buffer of the synchronous read/write loop. */
#define COPY_RW_BUF (256u << 10)

/* Identity of a file system for the method cache: dev numbers are reused. */
struct copy_fs {
	uint64_t dev;
	uint64_t id; /* f_type and f_fsid; 0 when unknown */
};

struct copy_uring;

struct copy_ctx {
	int src_root; /* the tree roots; every path below is relative to them */
	int dst_root;
	const char *src_name; /* as the caller named them, for messages */
	const char *dst_name;
	unsigned flags;
	unsigned queue_depth;
	struct copy_fs dst_fs;
	struct copy_fs src_fs; /* the directory being scanned */

	/* The method cache entry last looked up, so most files take no lock. */
	bool bad_valid;
	struct copy_fs bad_src;
	unsigned bad_mask; /* 1u << enum snap_copy_method */

	struct snap_copy_stats stats;
	struct sc_err *err;

	char *xnames; /* XATTR_LIST_MAX, allocated on first use */
	char *xvalue; /* XATTR_SIZE_MAX */
	char *rwbuf;  /* COPY_RW_BUF */

	struct copy_uring *uring; /* NULL until the first file needs it */
	bool uring_off;		  /* flag, env or setup failure */
};

/*
 * Fills ctx from opts (NULL: defaults) and SNAPCTL_NO_IO_URING; roots and
 * names are the caller's. -EINVAL (err set) for a queue depth over the limit.
 */
int copy_ctx_init(struct copy_ctx *ctx, const char *src, const char *dst,
		  const struct snap_copy_opts *opts, struct sc_err *err);
/* Frees what ctx holds (the pipeline after waiting for it, buffers, root fds). */
void copy_ctx_done(struct copy_ctx *ctx);

/* "'name/rel'" for messages; rel "." is the root itself. */
#define COPY_PATH_FMT "'%s%s%s'"
#define COPY_PATH_ARGS(name, rel)                                                                  \
	(name), copy_is_root(rel) ? "" : "/", copy_is_root(rel) ? "" : (rel)

static inline bool
copy_is_root(const char *rel)
{
	return rel[0] == '.' && rel[1] == '\0';
}

/* openat2() confined below dirfd, refusing symlinks; plain openat() before Linux 5.6. */
int copy_open_beneath(int dirfd, const char *path, int flags, mode_t mode);

/* Identity of the file system holding fd (st is fd's stat). */
void copy_fs_of(int fd, const struct stat *st, struct copy_fs *ret);

/* attrs.c: owner, then mode, then xattrs, then times (writes would clear setuid bits). */
int copy_attrs_fd(struct copy_ctx *ctx, int src_fd, int dst_fd, const struct stat *st,
		  const char *rel);
/* Same for a symlink or special file, by path below the roots. */
int copy_attrs_path(struct copy_ctx *ctx, const char *rel, const struct stat *st);

/* data.c: methods unusable for files of src on the destination (flags included). */
unsigned copy_methods_off(struct copy_ctx *ctx, const struct copy_fs *src);
void copy_method_failed(struct copy_ctx *ctx, const struct copy_fs *src, enum snap_copy_method m,
			int code);

/*
 * FICLONE. 1 when the data was cloned, 0 when cloning does not work here
 * (remembered), -errno on a real failure (err set).
 */
int copy_reflink(struct copy_ctx *ctx, int src_fd, int dst_fd, const struct copy_fs *src,
		 const char *rel);

/* True when st's file probably has holes, so its data goes the SEEK_DATA way. */
static inline bool
copy_is_sparse(const struct stat *st)
{
	return st->st_size > 0 && (uint64_t)st->st_blocks * 512 < (uint64_t)st->st_size;
}

/*
 * Copies the data with copy_file_range, falling back to read/write, keeping
 * holes when sparse. Does not try reflink. ret_method: the last method used.
 */
int copy_data_sync(struct copy_ctx *ctx, int src_fd, int dst_fd, const struct stat *st,
		   const struct copy_fs *src, const char *rel, enum snap_copy_method *ret_method);

/*
 * uring.c. copy_uring_new() fails (-errno, nothing logged above debug) when
 * io_uring is not usable; the caller then copies synchronously.
 */
int copy_uring_new(struct copy_ctx *ctx, struct copy_uring **ret);
/*
 * Queues one regular file. src_fd/dst_fd: already opened (both) or -EBADF
 * (both), then they are opened from the roots by rel. Takes ownership of the
 * fds in every case. May wait for earlier files. Returns the first failure
 * of any queued file (err set).
 */
int copy_uring_add(struct copy_uring *u, const char *rel, const struct stat *st, int src_fd,
		   int dst_fd);
/* Waits until every queued file is copied; returns the first failure. */
int copy_uring_drain(struct copy_uring *u);

/*
 * Stream jobs, for the writer: the data of one destination file at a time
 * comes from the caller instead of a source fd. begin takes ownership of fd
 * and of arg (finish is called once for it, see snap_copy_finish_fn, also
 * when begin fails); write copies the bytes into pool slots, issuing each
 * slot when it is full or the next bytes are not contiguous, and waits for
 * completions when no slot is free; end issues the last slot. The file is
 * finished (finish, then close) when its last write completes. A file whose
 * data has a gap keeps it as a hole (the caller sets the size in finish).
 * All return the first failure of any file (err set).
 */
int copy_uring_stream_begin(struct copy_uring *u, const char *name, int fd,
			    snap_copy_finish_fn finish, void *arg);
int copy_uring_stream_write(struct copy_uring *u, const void *data, size_t len, uint64_t off);
int copy_uring_stream_end(struct copy_uring *u);
/* Waits for requests still in flight, closes, frees. NULL-safe; returns NULL. */
struct copy_uring *copy_uring_free(struct copy_uring *u);
