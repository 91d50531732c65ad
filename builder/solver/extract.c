/*
 * ADD of a local archive: a tar (plain, gzip, bzip2, xz or zstd) extracted
 * into the destination directory, as BuildKit does it.
 *
 * Whether a source is an archive is decided by its content, never its
 * name: the magic of a compressor or "ustar" at offset 257, and then a first
 * tar header that reads (a gzip'd text file is copied, not extracted).
 *
 * The destination directory is the root of everything in the archive, as
 * if extraction ran chrooted there (BuildKit's chrootarchive; its newer
 * os.Root extraction keeps entries inside the same way):
 *  - a leading '/' is dropped and names are cleaned; a name that still
 *    climbs out ("../evil") fails the ADD (-EXDEV) before anything of it
 *    is written;
 *  - parent directories are opened with openat2(RESOLVE_IN_ROOT) relative
 *    to the destination, so symlinks the archive (or the image) put there
 *    resolve inside it, ".." stops at it, and the last component is created
 *    with calls that never follow a symlink;
 *  - hard links target entries under the same rules.
 * Entries keep the archive's owners (root only) unless --chown, its modes
 * and times; --chmod does not apply (BuildKit ignores it for archives).
 * Whiteout names (".wh.*") are ordinary files here: ADD extracts an
 * archive, it does not apply a layer. Xattrs are best effort.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileop-internal.h"
#include "log.h"
#include "snapshotter/layer/archive-lib.h"
#include "util.h"

#define EX_MAX_BYTES  (64ull << 30) /* sum of declared file sizes */
#define EX_READ_CHUNK (256u << 10)

struct ex_src {
	int fd;
	off_t off;
	int error; /* -errno of a failed read */
	uint8_t buf[EX_READ_CHUNK];
};

static la_ssize_t
ex_read(struct archive *a, void *arg, const void **buf)
{
	struct ex_src *s = arg;
	ssize_t n;
	do
		n = pread(s->fd, s->buf, sizeof(s->buf), s->off);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		s->error = -errno;
		archive_set_error(a, errno, "read error");
		return -1;
	}
	s->off += n;
	*buf = s->buf;
	return n;
}

static struct archive *
ex_open(struct ex_src *s)
{
	struct archive *a = archive_read_new();
	if (!a)
		return NULL;
	archive_read_support_filter_gzip(a);
	archive_read_support_filter_bzip2(a);
	archive_read_support_filter_xz(a);
	archive_read_support_filter_zstd(a);
	archive_read_support_format_tar(a);
	if (archive_read_open(a, s, NULL, ex_read, NULL) != ARCHIVE_OK) {
		archive_read_free(a);
		return NULL;
	}
	return a;
}

static bool
has_magic(const uint8_t *p, size_t n)
{
	return (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) || (n >= 3 && !memcmp(p, "BZh", 3)) ||
	       (n >= 6 && !memcmp(p,
				  "\xfd"
				  "7zXZ\0",
				  6)) ||
	       (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd) ||
	       (n >= 262 && !memcmp(p + 257, "ustar", 5));
}

int
fo_archive_detect(int fd, struct sc_err *err)
{
	uint8_t head[512];
	ssize_t n;
	do
		n = pread(fd, head, sizeof(head), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return sc_err_setsys(err, -errno, "cannot read");
	if (!has_magic(head, (size_t)n))
		return 0;
	int r = snap_archive_load(err);
	if (r < 0)
		return r;
	_cleanup_free_ struct ex_src *s = calloc(1, sizeof(*s));
	if (!s)
		return sc_err_set(err, -ENOMEM, "out of memory");
	s->fd = fd;
	struct archive *a = ex_open(s);
	if (!a)
		return 0;
	struct archive_entry *e;
	int ar = archive_read_next_header(a, &e);
	archive_read_free(a);
	return ar == ARCHIVE_OK || ar == ARCHIVE_WARN;
}

struct ex_dir {
	char *path;
	struct timespec ts[2];
};

struct ex {
	int root; /* the destination directory: root of every path */
	bool root_user;
	bool chown;
	uid_t uid;
	gid_t gid;
	const char *what;
	struct archive *a;
	struct ex_src *src;
	struct sc_err *err;
	uint64_t entries, declared;
	struct ex_dir *dirs;
	size_t ndirs, cap_dirs;
};

/*
 * name without a leading '/', "." or "..": into out (FO_MAX_PATH + 1).
 * Returns the length (0: the root itself), -EXDEV when it climbs out.
 */
static int
ex_clean(struct ex *x, const char *name, const char *what, char *out)
{
	if (!name)
		return sc_err_set(x->err, -EBADMSG, "archive '%s' has an entry without a name",
				  x->what);
	size_t len = 0;
	for (const char *p = name; *p;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *end = strchrnul(p, '/');
		size_t cl = (size_t)(end - p);
		if (cl == 2 && p[0] == '.' && p[1] == '.') {
			if (len == 0)
				return sc_err_set(x->err, -EXDEV,
						  "%s '%.200s' in archive '%s' is outside the "
						  "extraction directory; refusing the archive",
						  what, name, x->what);
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
		} else if (!(cl == 1 && p[0] == '.')) {
			if (len + 1 + cl > FO_MAX_PATH)
				return sc_err_set(
					x->err, -ENAMETOOLONG,
					"%s '%.200s...' in archive '%s' is longer than %u "
					"bytes",
					what, name, x->what, FO_MAX_PATH);
			if (len)
				out[len++] = '/';
			memcpy(out + len, p, cl);
			len += cl;
		}
		p = end;
	}
	out[len] = '\0';
	return (int)len;
}

/*
 * The directory holding path (O_PATH), missing directories made 0755 and
 * root-owned like tar's implied parents. *ret_base: path's last component.
 */
static int
ex_parent(struct ex *x, char *path, const char **ret_base)
{
	char *slash = strrchr(path, '/');
	*ret_base = slash ? slash + 1 : path;
	if (!slash)
		return fcntl(x->root, F_DUPFD_CLOEXEC, 3);
	*slash = '\0';
	int fd = fo_open_in_root(x->root, path, O_PATH | O_DIRECTORY, 0);
	if (fd == -ENOENT) {
		/* Make what is missing, one component at a time. */
		int cur = fcntl(x->root, F_DUPFD_CLOEXEC, 3);
		char *p = path;
		while (cur >= 0) {
			char *s = strchr(p, '/');
			if (s)
				*s = '\0';
			int next = fo_open_in_root(x->root, path, O_PATH | O_DIRECTORY, 0);
			if (next == -ENOENT) {
				if (mkdirat(cur, p, 0755) == 0) {
					(void)fchmodat(cur, p, 0755, 0);
					if (x->root_user)
						(void)fchownat(cur, p, 0, 0, AT_SYMLINK_NOFOLLOW);
				}
				next = fo_open_in_root(x->root, path, O_PATH | O_DIRECTORY, 0);
			}
			if (s)
				*s = '/';
			close(cur);
			cur = next;
			if (!s)
				break;
			p = s + 1;
		}
		fd = cur;
	}
	if (fd < 0)
		sc_err_setsys(x->err, fd, "cannot open directory '%s' of archive '%s'", path,
			      x->what);
	*slash = '/';
	return fd;
}

/* Removes what is at base (a directory with its contents), never following a symlink. */
static int
ex_remove(struct ex *x, int dfd, const char *base, const char *path)
{
	struct stat st;
	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0
				       : sc_err_setsys(x->err, -errno, "cannot stat '%s'", path);
	int r = S_ISDIR(st.st_mode) ? sc_rm_rf_at(dfd, base)
				    : (unlinkat(dfd, base, 0) < 0 ? -errno : 0);
	return r < 0 ? sc_err_setsys(x->err, r, "cannot replace '%s'", path) : 0;
}

static void
ex_times(struct archive_entry *e, struct timespec ts[2])
{
	ts[1] = (struct timespec){archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
	if (archive_entry_atime_is_set(e))
		ts[0] = (struct timespec){archive_entry_atime(e), archive_entry_atime_nsec(e)};
	else
		ts[0] = ts[1];
}

static void
ex_owner(struct ex *x, struct archive_entry *e, uid_t *uid, gid_t *gid)
{
	*uid = x->chown ? x->uid : (uid_t)archive_entry_uid(e);
	*gid = x->chown ? x->gid : (gid_t)archive_entry_gid(e);
}

/* Best effort, as BuildKit's BestEffortXattrs. */
static void
ex_xattrs(struct archive_entry *e, int fd)
{
	const char *name;
	const void *val;
	size_t len;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &val, &len) == ARCHIVE_OK)
		if (strncmp(name, "trusted.overlay.", 16) != 0 &&
		    fsetxattr(fd, name, val, len, 0) < 0)
			sc_debug("xattr %s not set: %s", name, strerror(errno));
}

static int
ex_data(struct ex *x, int fd, const char *path, int64_t size)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	int ar;
	int64_t end = 0;
	while ((ar = archive_read_data_block(x->a, &buf, &len, &off)) == ARCHIVE_OK) {
		const uint8_t *p = buf;
		while (len > 0) {
			ssize_t n = pwrite(fd, p, len, off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return sc_err_setsys(x->err, -errno, "cannot write '%s'", path);
			p += n;
			len -= (size_t)n;
			off += n;
		}
		if (off > end)
			end = off;
	}
	if (ar != ARCHIVE_EOF)
		return x->src->error
			       ? sc_err_setsys(x->err, x->src->error, "cannot read archive '%s'",
					       x->what)
			       : sc_err_set(x->err, -EBADMSG, "archive '%s' is corrupt at '%s': %s",
					    x->what, path, archive_error_string(x->a));
	/* A sparse entry may end in a hole. */
	if (size > end && ftruncate(fd, size) < 0)
		return sc_err_setsys(x->err, -errno, "cannot size '%s'", path);
	return 0;
}

static int
ex_dir_entry(struct ex *x, struct archive_entry *e, int pfd, const char *base, const char *path)
{
	struct stat st;
	_cleanup_close_ int dfd = -EBADF;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
		/* A symlink to a directory is followed (inside the root), as BuildKit does. */
		if (S_ISLNK(st.st_mode))
			dfd = fo_open_in_root(x->root, path, O_RDONLY | O_DIRECTORY, 0);
		if (dfd < 0) {
			int r = ex_remove(x, pfd, base, path);
			if (r < 0)
				return r;
		}
	}
	if (dfd < 0) {
		if (mkdirat(pfd, base, 0700) < 0 && errno != EEXIST)
			return sc_err_setsys(x->err, -errno, "cannot create directory '%s'", path);
		dfd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dfd < 0)
			return sc_err_setsys(x->err, -errno, "cannot open directory '%s'", path);
	}
	uid_t uid;
	gid_t gid;
	ex_owner(x, e, &uid, &gid);
	if (x->root_user && fchown(dfd, uid, gid) < 0)
		return sc_err_setsys(x->err, -errno, "cannot set the owner of '%s'", path);
	if (fchmod(dfd, archive_entry_perm(e) & 07777) < 0)
		return sc_err_setsys(x->err, -errno, "cannot set the mode of '%s'", path);
	ex_xattrs(e, dfd);
	if (x->ndirs == x->cap_dirs) {
		size_t nc = x->cap_dirs ? x->cap_dirs * 2 : 64;
		struct ex_dir *v = realloc(x->dirs, nc * sizeof(*v));
		if (!v)
			return sc_err_set(x->err, -ENOMEM, "out of memory");
		x->dirs = v;
		x->cap_dirs = nc;
	}
	if (!(x->dirs[x->ndirs].path = strdup(path)))
		return sc_err_set(x->err, -ENOMEM, "out of memory");
	ex_times(e, x->dirs[x->ndirs++].ts);
	return 0;
}

static int
ex_file_entry(struct ex *x, struct archive_entry *e, int pfd, const char *base, const char *path)
{
	int r = ex_remove(x, pfd, base, path);
	if (r < 0)
		return r;
	_cleanup_close_ int fd =
		openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return sc_err_setsys(x->err, -errno, "cannot create '%s'", path);
	r = ex_data(x, fd, path, archive_entry_size_is_set(e) ? archive_entry_size(e) : 0);
	if (r < 0)
		return r;
	uid_t uid;
	gid_t gid;
	ex_owner(x, e, &uid, &gid);
	/* Owner first: chown clears set-id bits the mode then restores. */
	if (x->root_user && fchown(fd, uid, gid) < 0)
		return sc_err_setsys(x->err, -errno, "cannot set the owner of '%s'", path);
	if (fchmod(fd, archive_entry_perm(e) & 07777) < 0)
		return sc_err_setsys(x->err, -errno, "cannot set the mode of '%s'", path);
	ex_xattrs(e, fd);
	struct timespec ts[2];
	ex_times(e, ts);
	if (futimens(fd, ts) < 0)
		return sc_err_setsys(x->err, -errno, "cannot set the times of '%s'", path);
	return 0;
}

/* Symlinks, hard links, fifos, devices: made by name, then their metadata. */
static int
ex_other_entry(struct ex *x, struct archive_entry *e, int pfd, const char *base, const char *path)
{
	const char *hl = archive_entry_hardlink(e);
	mode_t type = archive_entry_filetype(e);
	if (!hl && (type == AE_IFCHR || type == AE_IFBLK) && !x->root_user) {
		sc_debug("skipping device node '%s': not root", path);
		return 0;
	}
	if (!hl && type != AE_IFLNK && type != AE_IFIFO && type != AE_IFCHR && type != AE_IFBLK)
		return sc_err_set(
			x->err, -EOPNOTSUPP,
			"entry '%.200s' of archive '%s' has a type ADD cannot extract (%o)", path,
			x->what, (unsigned)type);
	_cleanup_close_ int tfd = -EBADF;
	char target[FO_MAX_PATH + 1];
	const char *tbase = NULL;
	if (hl) {
		int tl = ex_clean(x, hl, "hard link target", target);
		if (tl < 0)
			return tl;
		if (tl == 0)
			return sc_err_set(x->err, -EINVAL,
					  "hard link '%.200s' in archive '%s' targets its root",
					  path, x->what);
		char *slash = strrchr(target, '/');
		tbase = slash ? slash + 1 : target;
		if (slash) {
			*slash = '\0';
			tfd = fo_open_in_root(x->root, target, O_PATH | O_DIRECTORY, 0);
			*slash = '/';
		} else {
			tfd = fcntl(x->root, F_DUPFD_CLOEXEC, 3);
		}
		struct stat ts, cs;
		if (tfd < 0 || fstatat(tfd, tbase, &ts, AT_SYMLINK_NOFOLLOW) < 0)
			return sc_err_set(
				x->err, -ENOENT,
				"hard link '%.200s' in archive '%s' targets '%.200s', which "
				"is not extracted before it",
				path, x->what, hl);
		if (fstatat(pfd, base, &cs, AT_SYMLINK_NOFOLLOW) == 0 && cs.st_dev == ts.st_dev &&
		    cs.st_ino == ts.st_ino)
			return 0; /* already that file */
	}
	int r = ex_remove(x, pfd, base, path);
	if (r < 0)
		return r;
	int rc;
	if (hl)
		rc = linkat(tfd, tbase, pfd, base, 0);
	else if (type == AE_IFLNK)
		rc = symlinkat(archive_entry_symlink(e) ? archive_entry_symlink(e) : "", pfd, base);
	else
		rc = mknodat(pfd, base,
			     (type == AE_IFCHR	 ? S_IFCHR
			      : type == AE_IFBLK ? S_IFBLK
						 : S_IFIFO) |
				     0600,
			     type == AE_IFIFO ? 0 : archive_entry_rdev(e));
	if (rc < 0)
		return sc_err_setsys(x->err, -errno, "cannot create '%s'", path);
	struct stat st;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return sc_err_setsys(x->err, -errno, "cannot stat '%s'", path);
	uid_t uid;
	gid_t gid;
	ex_owner(x, e, &uid, &gid);
	if (x->root_user && fchownat(pfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return sc_err_setsys(x->err, -errno, "cannot set the owner of '%s'", path);
	if (!S_ISLNK(st.st_mode) && fchmodat(pfd, base, archive_entry_perm(e) & 07777, 0) < 0)
		return sc_err_setsys(x->err, -errno, "cannot set the mode of '%s'", path);
	struct timespec ts[2];
	ex_times(e, ts);
	if (utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return sc_err_setsys(x->err, -errno, "cannot set the times of '%s'", path);
	return 0;
}

static int
ex_entry(struct ex *x, struct archive_entry *e)
{
	if (++x->entries > BLD_COPY_MAX_ENTRIES)
		return sc_err_set(x->err, -E2BIG, "archive '%s' has more than %u entries", x->what,
				  BLD_COPY_MAX_ENTRIES);
	char path[FO_MAX_PATH + 1];
	int len = ex_clean(x, archive_entry_pathname(e), "entry", path);
	if (len < 0)
		return len;
	int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
	if (size < 0 || (x->declared += (uint64_t)size) > EX_MAX_BYTES)
		return sc_err_set(x->err, -EFBIG, "archive '%s' holds more than %llu GiB", x->what,
				  EX_MAX_BYTES >> 30);
	if (len == 0)
		return 0; /* the destination itself keeps its metadata */
	const char *base;
	int pfd = ex_parent(x, path, &base);
	if (pfd < 0)
		return pfd;
	int r;
	if (archive_entry_hardlink(e))
		r = ex_other_entry(x, e, pfd, base, path);
	else if (archive_entry_filetype(e) == AE_IFDIR)
		r = ex_dir_entry(x, e, pfd, base, path);
	else if (archive_entry_filetype(e) == AE_IFREG)
		r = ex_file_entry(x, e, pfd, base, path);
	else
		r = ex_other_entry(x, e, pfd, base, path);
	close(pfd);
	return r;
}

int
fo_archive_extract(int fd, int dest_fd, const char *what, bool chown, uid_t uid, gid_t gid,
		   struct sc_err *err)
{
	int r = snap_archive_load(err);
	if (r < 0)
		return r;
	struct ex x = {
		.root = dest_fd,
		.root_user = geteuid() == 0,
		.chown = chown,
		.uid = uid,
		.gid = gid,
		.what = what,
		.err = err,
	};
	x.src = calloc(1, sizeof(*x.src));
	if (!x.src)
		return sc_err_set(err, -ENOMEM, "out of memory");
	x.src->fd = fd;
	x.a = ex_open(x.src);
	if (!x.a) {
		free(x.src);
		return sc_err_set(err, -EBADMSG, "cannot read archive '%s'", what);
	}
	while (r >= 0) {
		struct archive_entry *e;
		int ar = archive_read_next_header(x.a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar == ARCHIVE_WARN) {
			sc_debug("archive '%s': %s", what, archive_error_string(x.a));
		} else if (ar != ARCHIVE_OK) {
			r = x.src->error ? sc_err_setsys(err, x.src->error,
							 "cannot read archive '%s'", what)
					 : sc_err_set(err, -EBADMSG, "archive '%s' is corrupt: %s",
						      what, archive_error_string(x.a));
			break;
		}
		r = ex_entry(&x, e);
	}
	/* Directory times last: their contents moved them. Deepest first is not needed. */
	for (size_t i = x.ndirs; i-- > 0;) {
		if (r >= 0) {
			int dfd =
				fo_open_in_root(dest_fd, x.dirs[i].path, O_RDONLY | O_DIRECTORY, 0);
			if (dfd >= 0) {
				if (futimens(dfd, x.dirs[i].ts) < 0)
					r = sc_err_setsys(err, -errno,
							  "cannot set the times of '%s'",
							  x.dirs[i].path);
				close(dfd);
			}
		}
		free(x.dirs[i].path);
	}
	free(x.dirs);
	archive_read_free(x.a);
	free(x.src);
	return r;
}
