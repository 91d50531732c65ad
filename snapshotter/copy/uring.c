/*
 * The io_uring pipeline: regular files queued by the walk are opened (source
 * and destination, both by openat2 below the roots), read and written in
 * COPY_CHUNK pieces with up to queue_depth requests in flight across all
 * files, then finished synchronously (owner, mode, xattrs, times; see
 * attrs.c) and closed. On ext4 with a cold cache this keeps the disk busy
 * where a read/write loop waits for one file at a time.
 *
 * Invariants:
 *  1. Every request in flight owns one slot; a slot is free or holds exactly
 *     one request. The submission queue has queue_depth entries, so getting
 *     an SQE for a free slot never fails.
 *  2. A job is pending (queued, nothing issued), or active (in u->active)
 *     until it finished and was freed. Its fds are closed only when it has no
 *     request in flight.
 *  3. After the first failure (u->error), nothing new is issued; requests
 *     in flight are waited for before any buffer or fd they use is released.
 *
 *  4. A stream job (the writer's) has no source fd: its data is copied in by
 *     the caller, one slot at a time (the job's fill slot, held but not in
 *     flight), and issued as a write when full. At most one stream job is
 *     current (u->stream, not yet ended); a job is finished only once ended
 *     with no fill slot and no request in flight.
 *  5. Unless the caller will not sync (SNAP_COPY_NO_SYNC), a stream job's
 *     written data gets writeback started, a hint and not a sync, every
 *     COPY_WRITEBACK_WINDOW bytes and for the rest once the file is
 *     complete (files under COPY_WRITEBACK_MIN get none); the job is
 *     finished after that request. The disk then works
 *     while the caller still unpacks, and its final syncfs() has less left
 *     (on ext4 it went from ~1.0 s to ~0.5 s for a 685 MiB layer).
 *
 * Short reads and writes are requeued for the rest of their chunk. A read
 * that returns 0 before the size seen by the walk means the file shrank: the
 * copy ends there. Plain fds, no registered files: liburing 2.3 cannot
 * allocate direct descriptors (see FACTS.md) and the gain is small.
 */
#include <assert.h>
#include <errno.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "copy-internal.h"
#include "log.h"

enum slot_op {
	OP_OPEN_SRC,
	OP_OPEN_DST,
	OP_READ,
	OP_WRITE,
	OP_WRITEBACK, /* sync_file_range(SYNC_FILE_RANGE_WRITE): only starts writeback */
};

struct job {
	struct job *next; /* pending list */
	char *rel;
	struct stat st;
	int src_fd, dst_fd;
	unsigned opening;  /* open requests in flight */
	unsigned inflight; /* all requests in flight */
	uint64_t next_off; /* next chunk to read */
	uint64_t bytes;	   /* written so far */
	bool eof;	   /* the file ended before st.st_size */

	/* Stream jobs (invariant 4). finish is NULL once called. */
	bool stream;
	bool ended;	   /* the caller gave all the data */
	struct slot *fill; /* being filled by the caller, not in flight */
	uint64_t flushed;  /* writeback started below this offset */
	bool flush_final;  /* writeback of the rest started (or skipped) */
	snap_copy_finish_fn finish;
	void *finish_arg;
};

struct slot {
	struct job *job;
	enum slot_op op;
	char *buf;     /* COPY_CHUNK bytes, for reads and writes */
	uint64_t off;  /* file offset of the chunk */
	uint32_t len;  /* chunk length asked */
	uint32_t have; /* bytes read into buf */
	uint32_t done; /* bytes of buf written */
};

struct copy_uring {
	struct io_uring ring;
	bool ring_ok;
	struct copy_ctx *ctx;
	unsigned qd;
	struct slot *slots;
	unsigned *free; /* stack of free slot indices */
	unsigned nfree;
	char *bufs; /* qd * COPY_CHUNK bytes, mmap-ed */
	size_t bufs_len;
	struct job *pending, *pending_tail;
	unsigned npending;
	struct job **active;
	unsigned nactive;
	unsigned inflight;
	int error;
	struct open_how how_src, how_dst;
	struct job *stream; /* the stream job being filled, NULL when none */
	bool writeback;	    /* stream jobs start writeback early (invariant 5) */
};

static void
job_free(struct job *j)
{
	if (!j)
		return;
	if (j->finish)
		(void)j->finish(j->finish_arg, j->dst_fd, -ECANCELED, NULL);
	if (j->src_fd >= 0)
		close(j->src_fd);
	if (j->dst_fd >= 0)
		close(j->dst_fd);
	free(j->rel);
	free(j);
}

struct copy_uring *
copy_uring_free(struct copy_uring *u)
{
	if (!u)
		return NULL;
	if (u->ring_ok) {
		/* Invariant 3: the kernel may still write into our buffers. */
		if (u->error == 0 && u->inflight > 0)
			u->error = -ECANCELED;
		while (u->inflight > 0) {
			struct io_uring_cqe *cqe;
			int r = io_uring_submit_and_wait(&u->ring, 1);
			if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
				abort(); /* cannot free what the kernel still uses */
			while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
				struct slot *s = io_uring_cqe_get_data(cqe);
				if ((s->op == OP_OPEN_SRC || s->op == OP_OPEN_DST) &&
				    cqe->res >= 0) {
					if (s->op == OP_OPEN_SRC)
						s->job->src_fd = cqe->res;
					else
						s->job->dst_fd = cqe->res;
				}
				io_uring_cqe_seen(&u->ring, cqe);
				u->inflight--;
			}
		}
		io_uring_queue_exit(&u->ring);
	}
	for (unsigned i = 0; i < u->nactive; i++)
		job_free(u->active[i]);
	while (u->pending) {
		struct job *j = u->pending;
		u->pending = j->next;
		job_free(j);
	}
	free(u->active);
	free(u->free);
	free(u->slots);
	if (u->bufs)
		munmap(u->bufs, u->bufs_len);
	free(u);
	return NULL;
}

int
copy_uring_new(struct copy_ctx *ctx, struct copy_uring **ret)
{
	struct copy_uring *u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->ctx = ctx;
	/* A new file takes two slots at once (both opens). */
	u->qd = ctx->queue_depth < 2 ? 2 : ctx->queue_depth;
	u->slots = calloc(u->qd, sizeof(*u->slots));
	u->free = calloc(u->qd, sizeof(*u->free));
	u->active = calloc(u->qd, sizeof(*u->active));
	/*
	 * The buffers come straight from mmap: a copy per COPY source sets up a
	 * pool, and aligned pools from malloc's heap do not fit back into the
	 * hole the previous one left, so the heap grew by a pool per copy.
	 */
	u->bufs_len = (size_t)u->qd * COPY_CHUNK;
	u->bufs =
		mmap(NULL, u->bufs_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (u->bufs == MAP_FAILED)
		u->bufs = NULL;
	if (!u->slots || !u->free || !u->active || !u->bufs) {
		copy_uring_free(u);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < u->qd; i++) {
		u->slots[i].buf = u->bufs + (size_t)i * COPY_CHUNK;
		u->free[i] = u->qd - 1 - i;
	}
	u->nfree = u->qd;

	/*
	 * Completions of work the kernel punted to its workers are delivered
	 * when we next enter the kernel (we do so all the time) instead of by
	 * an interrupt per completion: in a VM each is an IPI and a VM exit,
	 * which made the writer slower than pwrite. Before Linux 5.19: EINVAL.
	 */
	int r = io_uring_queue_init(u->qd, &u->ring,
				    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
	if (r == -EINVAL)
		r = io_uring_queue_init(u->qd, &u->ring, 0);
	if (r < 0) {
		sc_debug("copy: io_uring unavailable (%s), using plain syscalls", sc_strerror(r));
		copy_uring_free(u);
		return r;
	}
	u->ring_ok = true;

	struct io_uring_probe *probe = io_uring_get_probe_ring(&u->ring);
	u->writeback = !(ctx->flags & SNAP_COPY_NO_SYNC) && probe &&
		       io_uring_opcode_supported(probe, IORING_OP_SYNC_FILE_RANGE);
	bool ops_ok = probe && io_uring_opcode_supported(probe, IORING_OP_OPENAT2) &&
		      io_uring_opcode_supported(probe, IORING_OP_READ) &&
		      io_uring_opcode_supported(probe, IORING_OP_WRITE);
	if (probe)
		io_uring_free_probe(probe);
	if (!ops_ok) {
		sc_debug("copy: io_uring lacks openat2/read/write, using plain syscalls");
		copy_uring_free(u);
		return -EOPNOTSUPP;
	}

	uint64_t resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	u->how_src = (struct open_how){
		.flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC,
		.resolve = resolve,
	};
	u->how_dst = (struct open_how){
		.flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		.mode = 0600, /* the real mode once the data is in */
		.resolve = resolve,
	};
	*ret = u;
	return 0;
}

static int
fail(struct copy_uring *u, int code)
{
	if (u->error == 0)
		u->error = code;
	return u->error;
}

static struct slot *
slot_get(struct copy_uring *u, struct job *j, enum slot_op op)
{
	assert(u->nfree > 0);
	struct slot *s = &u->slots[u->free[--u->nfree]];
	s->job = j;
	s->op = op;
	return s;
}

static void
slot_put(struct copy_uring *u, struct slot *s)
{
	s->job = NULL;
	u->free[u->nfree++] = (unsigned)(s - u->slots);
}

static void
issue(struct copy_uring *u, struct slot *s)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
	assert(sqe); /* invariant 1 */
	struct job *j = s->job;
	switch (s->op) {
	case OP_OPEN_SRC:
		io_uring_prep_openat2(sqe, u->ctx->src_root, j->rel, &u->how_src);
		j->opening++;
		break;
	case OP_OPEN_DST:
		io_uring_prep_openat2(sqe, u->ctx->dst_root, j->rel, &u->how_dst);
		j->opening++;
		break;
	case OP_READ:
		io_uring_prep_read(sqe, j->src_fd, s->buf + s->have, s->len - s->have,
				   s->off + s->have);
		break;
	case OP_WRITE:
		io_uring_prep_write(sqe, j->dst_fd, s->buf + s->done, s->have - s->done,
				    s->off + s->done);
		break;
	case OP_WRITEBACK:
		io_uring_prep_sync_file_range(sqe, j->dst_fd, s->len, s->off,
					      SYNC_FILE_RANGE_WRITE);
		break;
	}
	io_uring_sqe_set_data(sqe, s);
	j->inflight++;
	u->inflight++;
}

static bool
job_wants_chunk(const struct job *j)
{
	return !j->stream && j->opening == 0 && !j->eof && j->next_off < (uint64_t)j->st.st_size;
}

/* Nothing left to issue or wait for: the job can be finished. */
static bool
job_done(const struct job *j)
{
	if (j->inflight > 0 || j->opening > 0)
		return false;
	return j->stream ? j->ended && !j->fill : !job_wants_chunk(j);
}

/* Issues what fits: chunks of files already open first, then new files. */
static void
fill(struct copy_uring *u)
{
	if (u->error)
		return;
	for (unsigned i = 0; i < u->nactive && u->nfree > 0; i++) {
		struct job *j = u->active[i];
		while (u->nfree > 0 && job_wants_chunk(j)) {
			struct slot *s = slot_get(u, j, OP_READ);
			uint64_t left = (uint64_t)j->st.st_size - j->next_off;
			s->off = j->next_off;
			s->len = left < COPY_CHUNK ? (uint32_t)left : COPY_CHUNK;
			s->have = s->done = 0;
			j->next_off += s->len;
			issue(u, s);
		}
	}
	while (u->pending && u->nactive < u->qd) {
		struct job *j = u->pending;
		bool opened = j->src_fd >= 0;
		if (!opened && u->nfree < 2)
			break;
		u->pending = j->next;
		if (!u->pending)
			u->pending_tail = NULL;
		u->npending--;
		j->next = NULL;
		u->active[u->nactive++] = j;
		if (!opened) {
			issue(u, slot_get(u, j, OP_OPEN_SRC));
			issue(u, slot_get(u, j, OP_OPEN_DST));
		}
		/* Opened ones (handed over after a failed reflink) get chunks next fill(). */
	}
}

static void
active_remove(struct copy_uring *u, struct job *j)
{
	for (unsigned i = 0; i < u->nactive; i++)
		if (u->active[i] == j) {
			u->active[i] = u->active[--u->nactive];
			return;
		}
	assert(!"job not active");
}

/* All data written: metadata, stats, close. */
static int
job_finish(struct copy_uring *u, struct job *j)
{
	struct copy_ctx *ctx = u->ctx;
	int r;
	if (j->stream) {
		snap_copy_finish_fn finish = j->finish;
		j->finish = NULL;
		r = finish(j->finish_arg, j->dst_fd, 0, ctx->err);
	} else {
		r = copy_attrs_fd(ctx, j->src_fd, j->dst_fd, &j->st, j->rel);
	}
	if (r < 0)
		return fail(u, r);
	ctx->stats.files++;
	ctx->stats.bytes += j->bytes;
	if (j->st.st_size > 0 || j->bytes > 0)
		ctx->stats.by_method[SNAP_COPY_URING]++;
	active_remove(u, j);
	job_free(j);
	return 0;
}

/* Invariant 5. Needs a free slot; without one the hint is skipped. */
static void
stream_writeback(struct copy_uring *u, struct job *j)
{
	if (!u->writeback || u->error)
		return;
	while (j->bytes >= j->flushed + COPY_WRITEBACK_WINDOW && u->nfree > 0) {
		struct slot *s = slot_get(u, j, OP_WRITEBACK);
		s->off = j->flushed;
		s->len = COPY_WRITEBACK_WINDOW;
		j->flushed += COPY_WRITEBACK_WINDOW;
		issue(u, s);
	}
	if (j->flush_final || !j->ended || j->fill || j->inflight > 0)
		return;
	j->flush_final = true;
	if (j->bytes > j->flushed && j->bytes >= COPY_WRITEBACK_MIN && u->nfree > 0) {
		struct slot *s = slot_get(u, j, OP_WRITEBACK);
		s->off = j->flushed;
		s->len = 0; /* to the end */
		issue(u, s);
	}
}

static void
complete(struct copy_uring *u, struct slot *s, int res)
{
	struct copy_ctx *ctx = u->ctx;
	struct job *j = s->job;
	j->inflight--;
	u->inflight--;

	switch (s->op) {
	case OP_OPEN_SRC:
	case OP_OPEN_DST:
		j->opening--;
		if (res >= 0) {
			if (s->op == OP_OPEN_SRC)
				j->src_fd = res;
			else
				j->dst_fd = res;
		} else if (s->op == OP_OPEN_SRC) {
			fail(u, sc_err_setsys(ctx->err, res, "opening " COPY_PATH_FMT,
					      COPY_PATH_ARGS(ctx->src_name, j->rel)));
		} else {
			fail(u, sc_err_setsys(ctx->err, res, "creating " COPY_PATH_FMT,
					      COPY_PATH_ARGS(ctx->dst_name, j->rel)));
		}
		slot_put(u, s);
		break;
	case OP_READ:
		if (res < 0 && res != -EINTR && res != -EAGAIN) {
			fail(u, sc_err_setsys(ctx->err, res, "reading " COPY_PATH_FMT,
					      COPY_PATH_ARGS(ctx->src_name, j->rel)));
			slot_put(u, s);
			break;
		}
		if (u->error) {
			slot_put(u, s);
			break;
		}
		if (res == 0)
			j->eof = true;
		if (res > 0)
			s->have += (uint32_t)res;
		if (res != 0 && s->have < s->len) {
			issue(u, s); /* short read (or EAGAIN): the rest */
			break;
		}
		if (s->have == 0) {
			slot_put(u, s);
			break;
		}
		s->op = OP_WRITE;
		issue(u, s);
		break;
	case OP_WRITE:
		if (res == 0)
			res = -EIO;
		if (res < 0 && res != -EINTR && res != -EAGAIN) {
			if (j->stream)
				fail(u, sc_err_setsys(ctx->err, res, "cannot write '%s'", j->rel));
			else
				fail(u, sc_err_setsys(ctx->err, res, "writing " COPY_PATH_FMT,
						      COPY_PATH_ARGS(ctx->dst_name, j->rel)));
			slot_put(u, s);
			break;
		}
		if (u->error) {
			slot_put(u, s);
			break;
		}
		if (res > 0) {
			s->done += (uint32_t)res;
			j->bytes += (uint64_t)res;
		}
		if (s->done < s->have) {
			issue(u, s); /* short write: the rest */
			break;
		}
		slot_put(u, s);
		break;
	case OP_WRITEBACK:
		/*
		 * Only a head start for the caller's syncfs(), which reports
		 * writeback errors itself: a failure here changes nothing.
		 */
		if (res < 0)
			sc_debug("copy: early writeback of '%s': %s", j->rel, sc_strerror(res));
		slot_put(u, s);
		break;
	}

	if (j->stream)
		stream_writeback(u, j);
	if (!u->error && job_done(j))
		job_finish(u, j);
}

/* Handles every completion already there (no syscall). */
static int
reap(struct copy_uring *u)
{
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&u->ring, &cqe) == 0) {
		struct slot *s = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&u->ring, cqe);
		complete(u, s, res);
	}
	return u->error;
}

/* Submits what fill() queued, waits for one completion if asked, handles all ready. */
static int
pump(struct copy_uring *u, bool wait)
{
	fill(u);
	if (u->inflight == 0)
		return u->error;
	int r;
	do
		r = wait ? io_uring_submit_and_wait(&u->ring, 1) : io_uring_submit(&u->ring);
	while (r == -EINTR);
	if (r < 0 && r != -EAGAIN && r != -EBUSY)
		return fail(u, sc_err_setsys(u->ctx->err, r, "submitting to io_uring"));
	return reap(u);
}

int
copy_uring_add(struct copy_uring *u, const char *rel, const struct stat *st, int src_fd, int dst_fd)
{
	_cleanup_close_ int sfd = src_fd, dfd = dst_fd;
	assert((sfd >= 0) == (dfd >= 0));
	if (u->error)
		return u->error;

	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		return fail(u, sc_err_set(u->ctx->err, -ENOMEM, "out of memory"));
	j->rel = strdup(rel);
	if (!j->rel) {
		free(j);
		return fail(u, sc_err_set(u->ctx->err, -ENOMEM, "out of memory"));
	}
	j->st = *st;
	j->src_fd = TAKE_FD(sfd);
	j->dst_fd = TAKE_FD(dfd);
	if (u->pending_tail)
		u->pending_tail->next = j;
	else
		u->pending = j;
	u->pending_tail = j;
	u->npending++;

	/* Let the walk run ahead by one queue's worth, no more. */
	int r = pump(u, false);
	while (r == 0 && u->npending > u->qd)
		r = pump(u, true);
	return r;
}

int
copy_uring_drain(struct copy_uring *u)
{
	assert(!u->stream); /* its data may not be complete: nothing to wait for */
	int r = 0;
	while (r == 0 && (u->nactive > 0 || u->npending > 0))
		r = pump(u, true);
	return r;
}

/* Issues the current job's fill slot. */
static void
stream_issue(struct copy_uring *u, struct job *j)
{
	struct slot *s = j->fill;
	j->fill = NULL;
	issue(u, s);
}

/*
 * After an issue: submits once a batch is queued (fewer syscalls than one per
 * write, while the kernel still gets work early), handles ready completions.
 */
static int
stream_pump(struct copy_uring *u)
{
	if (io_uring_sq_ready(&u->ring) >= COPY_STREAM_BATCH)
		return pump(u, false);
	return reap(u);
}

/* Waits for a completion; only called with requests in flight (else it would never return). */
static int
stream_wait(struct copy_uring *u)
{
	assert(u->inflight > 0);
	return pump(u, true);
}

int
copy_uring_stream_begin(struct copy_uring *u, const char *name, int fd, snap_copy_finish_fn finish,
			void *arg)
{
	assert(!u->stream);
	struct job *j = calloc(1, sizeof(*j));
	if (!j) {
		(void)finish(arg, fd, -ENOMEM, NULL);
		close(fd);
		return fail(u, sc_err_set(u->ctx->err, -ENOMEM, "out of memory"));
	}
	*j = (struct job){
		.src_fd = -EBADF,
		.dst_fd = fd,
		.stream = true,
		.finish = finish,
		.finish_arg = arg,
	};
	j->rel = strdup(name);
	if (!j->rel) {
		job_free(j);
		return fail(u, sc_err_set(u->ctx->err, -ENOMEM, "out of memory"));
	}
	/* Every active job but the current one has a request in flight (invariant 4). */
	while (!u->error && u->nactive >= u->qd)
		stream_wait(u);
	if (u->error) {
		job_free(j);
		return u->error;
	}
	u->active[u->nactive++] = j;
	u->stream = j;
	return 0;
}

int
copy_uring_stream_write(struct copy_uring *u, const void *data, size_t len, uint64_t off)
{
	struct job *j = u->stream;
	assert(j);
	const char *p = data;
	while (len > 0) {
		if (u->error)
			return u->error;
		struct slot *s = j->fill;
		if (s && off != s->off + s->have) {
			stream_issue(u, j); /* not contiguous: a hole between */
			s = NULL;
		}
		if (!s) {
			while (!u->error && u->nfree == 0)
				stream_wait(u);
			if (u->error)
				return u->error;
			s = slot_get(u, j, OP_WRITE);
			s->off = off;
			s->len = COPY_CHUNK;
			s->have = s->done = 0;
			j->fill = s;
		}
		size_t n = COPY_CHUNK - s->have;
		if (n > len)
			n = len;
		memcpy(s->buf + s->have, p, n);
		s->have += (uint32_t)n;
		p += n;
		len -= n;
		off += n;
		if (s->have == COPY_CHUNK) {
			stream_issue(u, j);
			int r = stream_pump(u);
			if (r < 0)
				return r;
		}
	}
	return u->error;
}

int
copy_uring_stream_end(struct copy_uring *u)
{
	struct job *j = u->stream;
	assert(j);
	u->stream = NULL;
	j->ended = true;
	if (u->error)
		return u->error; /* freed with the pipeline */
	if (j->fill)
		stream_issue(u, j);
	stream_writeback(u, j);
	if (job_done(j))
		return job_finish(u, j);
	return stream_pump(u);
}
