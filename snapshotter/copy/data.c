/*
 * File data, synchronously: FICLONE, then copy_file_range, then a read/write
 * loop, keeping holes (SEEK_DATA/SEEK_HOLE) in sparse files.
 *
 * The method cache remembers, per (source, destination) file system, which
 * methods failed in a way that says "never here" (EOPNOTSUPP, ENOTTY, EXDEV,
 * ENOSYS, and EINVAL from copy_file_range), so a tree of 20,000 files on ext4
 * tries FICLONE once, not 20,000 times. It is process-wide under a mutex;
 * each copy keeps the entry it used last, so files in one directory take no
 * lock. File systems are told apart by device number plus f_type and f_fsid
 * (a loop device number is reused by the next image attached to it).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "copy-internal.h"
#include "log.h"

static const char *const method_names[_SNAP_COPY_METHOD_MAX] = {
	[SNAP_COPY_REFLINK] = "reflink",
	[SNAP_COPY_RANGE] = "copy_file_range",
	[SNAP_COPY_URING] = "io_uring",
	[SNAP_COPY_RW] = "read_write",
};

const char *
snap_copy_method_to_string(enum snap_copy_method m)
{
	if ((unsigned)m >= _SNAP_COPY_METHOD_MAX)
		return NULL;
	return method_names[m];
}

int
snap_copy_method_from_string(const char *s, enum snap_copy_method *ret)
{
	for (unsigned i = 0; i < _SNAP_COPY_METHOD_MAX; i++)
		if (s && strcmp(s, method_names[i]) == 0) {
			*ret = (enum snap_copy_method)i;
			return 0;
		}
	return -EINVAL;
}

int
copy_open_beneath(int dirfd, const char *path, int flags, mode_t mode)
{
	static bool no_openat2; /* racy but monotonic: worst case one more ENOSYS */
	if (!no_openat2) {
		struct open_how how = {
			.flags = (uint64_t)flags,
			.mode = (flags & O_CREAT) ? mode : 0,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
		};
		int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
		if (fd >= 0 || errno != ENOSYS)
			return fd;
		no_openat2 = true;
	}
	return openat(dirfd, path, flags, mode);
}

void
copy_fs_of(int fd, const struct stat *st, struct copy_fs *ret)
{
	struct statfs sfs;
	ret->dev = st->st_dev;
	ret->id = 0;
	if (fstatfs(fd, &sfs) == 0) {
		uint64_t fsid;
		memcpy(&fsid, &sfs.f_fsid, sizeof(fsid));
		ret->id = ((uint64_t)sfs.f_type << 32) ^ fsid;
	}
}

/* The process-wide method cache. */
#define PAIRS_MAX 64

struct method_pair {
	struct copy_fs src, dst;
	unsigned bad;
};

static pthread_mutex_t pairs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct method_pair pairs[PAIRS_MAX];
static unsigned npairs, pairs_next;

static bool
fs_eq(const struct copy_fs *a, const struct copy_fs *b)
{
	return a->dev == b->dev && a->id == b->id;
}

/* Called with pairs_lock held. */
static struct method_pair *
pair_find(const struct copy_fs *src, const struct copy_fs *dst, bool create)
{
	for (unsigned i = 0; i < npairs; i++)
		if (fs_eq(&pairs[i].src, src) && fs_eq(&pairs[i].dst, dst))
			return &pairs[i];
	if (!create)
		return NULL;
	struct method_pair *p;
	if (npairs < PAIRS_MAX)
		p = &pairs[npairs++];
	else
		p = &pairs[pairs_next++ % PAIRS_MAX]; /* forget the oldest */
	*p = (struct method_pair){.src = *src, .dst = *dst};
	return p;
}

unsigned
copy_methods_off(struct copy_ctx *ctx, const struct copy_fs *src)
{
	if (!ctx->bad_valid || !fs_eq(&ctx->bad_src, src)) {
		pthread_mutex_lock(&pairs_lock);
		struct method_pair *p = pair_find(src, &ctx->dst_fs, false);
		ctx->bad_mask = p ? p->bad : 0;
		pthread_mutex_unlock(&pairs_lock);
		ctx->bad_src = *src;
		ctx->bad_valid = true;
	}
	unsigned off = ctx->bad_mask;
	if (ctx->flags & SNAP_COPY_NO_REFLINK)
		off |= 1u << SNAP_COPY_REFLINK;
	if (ctx->flags & SNAP_COPY_NO_RANGE)
		off |= 1u << SNAP_COPY_RANGE;
	if (ctx->uring_off)
		off |= 1u << SNAP_COPY_URING;
	return off;
}

void
copy_method_failed(struct copy_ctx *ctx, const struct copy_fs *src, enum snap_copy_method m,
		   int code)
{
	sc_debug("copy: %s does not work from dev %llu to dev %llu (%s), not trying it again",
		 snap_copy_method_to_string(m), (unsigned long long)src->dev,
		 (unsigned long long)ctx->dst_fs.dev, sc_strerror(code));
	pthread_mutex_lock(&pairs_lock);
	struct method_pair *p = pair_find(src, &ctx->dst_fs, true);
	p->bad |= 1u << m;
	unsigned bad = p->bad;
	pthread_mutex_unlock(&pairs_lock);
	ctx->bad_src = *src;
	ctx->bad_mask = bad;
	ctx->bad_valid = true;
}

static bool
reflink_unsupported(int e)
{
	return e == EOPNOTSUPP || e == ENOTTY || e == EXDEV || e == ENOSYS || e == EINVAL;
}

int
copy_reflink(struct copy_ctx *ctx, int src_fd, int dst_fd, const struct copy_fs *src,
	     const char *rel)
{
	if (ioctl(dst_fd, FICLONE, src_fd) == 0)
		return 1;
	int e = errno;
	if (reflink_unsupported(e)) {
		/*
		 * EINVAL can be about this file only (btrfs: nodatacow to datacow);
		 * remember only the answers that hold for the whole file system.
		 */
		if (e != EINVAL)
			copy_method_failed(ctx, src, SNAP_COPY_REFLINK, -e);
		return 0;
	}
	return sc_err_setsys(ctx->err, -e, "cloning " COPY_PATH_FMT " to " COPY_PATH_FMT,
			     COPY_PATH_ARGS(ctx->src_name, rel),
			     COPY_PATH_ARGS(ctx->dst_name, rel));
}

static int
write_all(struct copy_ctx *ctx, int fd, const char *buf, size_t len, off_t off, const char *rel)
{
	while (len > 0) {
		ssize_t n = SC_RETRY_EINTR(pwrite(fd, buf, len, off));
		if (n < 0)
			return sc_err_setsys(ctx->err, -errno, "writing " COPY_PATH_FMT,
					     COPY_PATH_ARGS(ctx->dst_name, rel));
		if (n == 0)
			return sc_err_setsys(ctx->err, -EIO, "writing " COPY_PATH_FMT,
					     COPY_PATH_ARGS(ctx->dst_name, rel));
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/*
 * Copies [*off, end) (end < 0: to EOF), advancing *off. Tries
 * copy_file_range unless it is off, then read/write for the rest.
 */
static int
copy_segment(struct copy_ctx *ctx, int src_fd, int dst_fd, off_t *off, off_t end,
	     const struct copy_fs *src, const char *rel, enum snap_copy_method *method)
{
	bool range_ok = !(copy_methods_off(ctx, src) & (1u << SNAP_COPY_RANGE));
	while (range_ok && (end < 0 || *off < end)) {
		size_t want = end < 0 ? (size_t)1 << 30 : (size_t)(end - *off);
		if (want > (size_t)1 << 30)
			want = (size_t)1 << 30;
		off_t in = *off, out = *off;
		ssize_t n = SC_RETRY_EINTR(copy_file_range(src_fd, &in, dst_fd, &out, want, 0));
		if (n > 0) {
			*off += n;
			*method = SNAP_COPY_RANGE;
			continue;
		}
		if (n == 0)
			return 0; /* EOF */
		int e = errno;
		if (e == EXDEV || e == EOPNOTSUPP || e == ENOSYS || e == EINVAL || e == EBADF) {
			copy_method_failed(ctx, src, SNAP_COPY_RANGE, -e);
			break;
		}
		return sc_err_setsys(ctx->err, -e, "copying " COPY_PATH_FMT " to " COPY_PATH_FMT,
				     COPY_PATH_ARGS(ctx->src_name, rel),
				     COPY_PATH_ARGS(ctx->dst_name, rel));
	}

	if (!ctx->rwbuf) {
		ctx->rwbuf = malloc(COPY_RW_BUF);
		if (!ctx->rwbuf)
			return sc_err_set(ctx->err, -ENOMEM, "out of memory");
	}
	while (end < 0 || *off < end) {
		size_t want = COPY_RW_BUF;
		if (end >= 0 && (off_t)want > end - *off)
			want = (size_t)(end - *off);
		ssize_t n = SC_RETRY_EINTR(pread(src_fd, ctx->rwbuf, want, *off));
		if (n < 0)
			return sc_err_setsys(ctx->err, -errno, "reading " COPY_PATH_FMT,
					     COPY_PATH_ARGS(ctx->src_name, rel));
		if (n == 0)
			return 0;
		int r = write_all(ctx, dst_fd, ctx->rwbuf, (size_t)n, *off, rel);
		if (r < 0)
			return r;
		*off += n;
		*method = SNAP_COPY_RW;
	}
	return 0;
}

int
copy_data_sync(struct copy_ctx *ctx, int src_fd, int dst_fd, const struct stat *st,
	       const struct copy_fs *src, const char *rel, enum snap_copy_method *ret_method)
{
	enum snap_copy_method method = SNAP_COPY_RW;
	off_t off = 0;
	int r;

	/* Doubles the readahead window: a cold 1 GiB file reads faster. */
	if ((uint64_t)st->st_size >= COPY_URING_MAX_FILE)
		(void)posix_fadvise(src_fd, 0, 0, POSIX_FADV_SEQUENTIAL);

	if (!copy_is_sparse(st)) {
		r = copy_segment(ctx, src_fd, dst_fd, &off, -1, src, rel, &method);
		if (r < 0)
			return r;
		*ret_method = method;
		return 0;
	}

	for (;;) {
		off_t data = lseek(src_fd, off, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO) /* only a hole left */
				break;
			return sc_err_setsys(ctx->err, -errno, "seeking in " COPY_PATH_FMT,
					     COPY_PATH_ARGS(ctx->src_name, rel));
		}
		off_t hole = lseek(src_fd, data, SEEK_HOLE);
		if (hole < 0)
			return sc_err_setsys(ctx->err, -errno, "seeking in " COPY_PATH_FMT,
					     COPY_PATH_ARGS(ctx->src_name, rel));
		off = data;
		r = copy_segment(ctx, src_fd, dst_fd, &off, hole, src, rel, &method);
		if (r < 0)
			return r;
		if (off < hole) /* shrank meanwhile */
			break;
	}
	/* A trailing hole is only a size. */
	if (ftruncate(dst_fd, st->st_size) < 0)
		return sc_err_setsys(ctx->err, -errno, "setting size of " COPY_PATH_FMT,
				     COPY_PATH_ARGS(ctx->dst_name, rel));
	*ret_method = method;
	return 0;
}
