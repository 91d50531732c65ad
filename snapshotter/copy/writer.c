/*
 * The batched writer (see copy.h): streamed file data through the io_uring
 * pipeline of uring.c as stream jobs, or, when io_uring is off or unusable,
 * through pwrite() in the caller's thread with the same callbacks in the same
 * places, so the files come out the same either way.
 *
 * Invariants:
 *  1. At most one file is current (begun, not ended). Synchronous path: it
 *     is w->fd/finish/arg, and finish runs at end; pipeline: it is the
 *     pipeline's current stream job.
 *  2. After the first failure every call returns it; files not finished are
 *     abandoned (finish with status < 0) when the writer is freed.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "copy-internal.h"
#include "log.h"

struct snap_copy_writer {
	struct copy_ctx ctx; /* ctx.uring: the pipeline, NULL on the synchronous path */
	int error;	     /* synchronous path: the first failure */
	/* Synchronous path: the current file (finish NULL when none). */
	int fd;
	char *name;
	snap_copy_finish_fn finish;
	void *arg;
	uint64_t written, flushed; /* bytes; writeback started below flushed */
};

/*
 * Synchronous path: starts writeback of [w->flushed, w->flushed + len), len 0
 * meaning to the end (a head start for the caller's syncfs(), like the
 * pipeline's; errors are left for that syncfs() to report).
 */
static void
sync_writeback(struct snap_copy_writer *w, uint64_t len)
{
	if (sync_file_range(w->fd, (off_t)w->flushed, (off_t)len, SYNC_FILE_RANGE_WRITE) < 0)
		sc_debug("copy: early writeback of '%s': %s", w->name, sc_strerror(-errno));
	w->flushed += len;
}

/* Synchronous path: ends the current file, running finish with status. */
static int
sync_close(struct snap_copy_writer *w, int status, struct sc_err *err)
{
	int r = 0;
	if (w->finish) {
		snap_copy_finish_fn finish = w->finish;
		w->finish = NULL;
		r = finish(w->arg, w->fd, status, status < 0 ? NULL : err);
	}
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -EBADF;
	free(w->name);
	w->name = NULL;
	return status < 0 ? status : r;
}

int
snap_copy_writer_new(const struct snap_copy_opts *opts, struct snap_copy_writer **ret,
		     struct sc_err *err)
{
	struct snap_copy_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return sc_err_set(err, -ENOMEM, "out of memory");
	w->fd = -EBADF;
	int r = copy_ctx_init(&w->ctx, "", "", opts, err);
	if (r < 0) {
		free(w);
		return r;
	}
	if (!w->ctx.uring_off && copy_uring_new(&w->ctx, &w->ctx.uring) < 0)
		w->ctx.uring_off = true; /* copy_uring_new() said why */
	sc_debug("copy: writer uses %s (queue depth %u)",
		 snap_copy_method_to_string(snap_copy_writer_method(w)), w->ctx.queue_depth);
	*ret = w;
	return 0;
}

enum snap_copy_method
snap_copy_writer_method(const struct snap_copy_writer *w)
{
	return w->ctx.uring ? SNAP_COPY_URING : SNAP_COPY_RW;
}

int
snap_copy_writer_begin(struct snap_copy_writer *w, int fd, const char *name,
		       snap_copy_finish_fn finish, void *arg, struct sc_err *err)
{
	assert(fd >= 0 && finish);
	w->ctx.err = err;
	if (w->ctx.uring)
		return copy_uring_stream_begin(w->ctx.uring, name, fd, finish, arg);

	assert(!w->finish); /* invariant 1 */
	w->fd = fd;
	w->finish = finish;
	w->arg = arg;
	w->written = w->flushed = 0;
	if (w->error)
		return sync_close(w, w->error, err);
	w->name = strdup(name);
	if (!w->name) {
		w->error = sc_err_set(err, -ENOMEM, "out of memory");
		return sync_close(w, w->error, err);
	}
	return 0;
}

int
snap_copy_writer_write(struct snap_copy_writer *w, const void *data, size_t len, uint64_t off,
		       struct sc_err *err)
{
	w->ctx.err = err;
	if (w->ctx.uring)
		return copy_uring_stream_write(w->ctx.uring, data, len, off);

	assert(w->finish);
	if (w->error)
		return w->error;
	const char *p = data;
	while (len > 0) {
		ssize_t n = SC_RETRY_EINTR(pwrite(w->fd, p, len, (off_t)off));
		if (n <= 0)
			return w->error = sc_err_setsys(err, n < 0 ? -errno : -EIO,
							"cannot write '%s'", w->name);
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
		w->ctx.stats.bytes += (uint64_t)n;
		w->written += (uint64_t)n;
	}
	while (!(w->ctx.flags & SNAP_COPY_NO_SYNC) &&
	       w->written >= w->flushed + COPY_WRITEBACK_WINDOW)
		sync_writeback(w, COPY_WRITEBACK_WINDOW);
	return 0;
}

int
snap_copy_writer_end(struct snap_copy_writer *w, struct sc_err *err)
{
	w->ctx.err = err;
	if (w->ctx.uring)
		return copy_uring_stream_end(w->ctx.uring);

	assert(w->finish);
	if (w->error)
		return sync_close(w, w->error, err);
	if (!(w->ctx.flags & SNAP_COPY_NO_SYNC) && w->written > w->flushed &&
	    w->written >= COPY_WRITEBACK_MIN)
		sync_writeback(w, 0);
	int r = sync_close(w, 0, err);
	if (r < 0)
		return w->error = r;
	w->ctx.stats.files++;
	return 0;
}

int
snap_copy_writer_drain(struct snap_copy_writer *w, struct sc_err *err)
{
	w->ctx.err = err;
	if (w->ctx.uring)
		return copy_uring_drain(w->ctx.uring);
	return w->error;
}

struct snap_copy_writer *
snap_copy_writer_free(struct snap_copy_writer *w)
{
	if (!w)
		return NULL;
	w->ctx.err = NULL;
	if (w->finish)
		(void)sync_close(w, -ECANCELED, NULL);
	copy_ctx_done(&w->ctx); /* waits for the pipeline, abandons its files */
	free(w);
	return NULL;
}
