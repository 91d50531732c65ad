/* Test helpers for the copy engine: see copy-fixture.h. */
#include "copy-fixture.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "tap.h"

char *
fx_path(const char *fmt, ...)
{
	static char bufs[8][4096];
	static unsigned next;
	char *buf = bufs[next++ % 8];
	int n = snprintf(buf, sizeof(bufs[0]), "%s/", tap_tmpdir());
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(bufs[0]) - (size_t)n, fmt, ap);
	va_end(ap);
	return buf;
}

int
fx_file(const char *path, size_t len, uint32_t seed, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	uint32_t x = seed * 2654435761u + 1;
	char buf[65536];
	size_t left = len;
	while (left > 0) {
		size_t n = left < sizeof(buf) ? left : sizeof(buf);
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			buf[i] = (char)x;
		}
		if (write(fd, buf, n) != (ssize_t)n) {
			int r = -errno;
			close(fd);
			return r ? r : -EIO;
		}
		left -= n;
	}
	if (fchmod(fd, mode) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return close(fd) < 0 ? -errno : 0;
}

int
fx_times(const char *path, long sec, long nsec)
{
	struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};
	/* atime in the future, so relatime leaves it alone when the copy reads the file */
	ts[0].tv_sec += 86400 * 365;
	return utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static void
compare_bytes(const char *a, const char *b)
{
	int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b, O_RDONLY | O_CLOEXEC);
	if (fa < 0 || fb < 0)
		tap_fail(__FILE__, __LINE__, "cannot open '%s' or '%s'", a, b);
	static char ba[1 << 16], bb[1 << 16];
	uint64_t off = 0;
	for (;;) {
		ssize_t na = read(fa, ba, sizeof(ba)), nb = read(fb, bb, sizeof(bb));
		if (na < 0 || nb < 0 || na != nb || memcmp(ba, bb, (size_t)na) != 0) {
			close(fa);
			close(fb);
			tap_fail(__FILE__, __LINE__, "'%s' and '%s' differ near offset %llu", a, b,
				 (unsigned long long)off);
		}
		if (na == 0)
			break;
		off += (uint64_t)na;
	}
	close(fa);
	close(fb);
}

/* Sorted list of xattr names worth comparing, NUL-separated. */
static ssize_t
xattr_names(const char *path, char *out, size_t size, bool *ret_overlay)
{
	char list[65536];
	ssize_t n = llistxattr(path, list, sizeof(list));
	if (n < 0)
		return errno == EOPNOTSUPP ? 0 : -1;
	size_t len = 0;
	*ret_overlay = false;
	for (char *p = list; p < list + n; p += strlen(p) + 1) {
		if (strncmp(p, "trusted.overlay.", 16) == 0) {
			*ret_overlay = true;
			continue;
		}
		/* Labels the system sets on both sides (selinux, smack); capabilities are compared.
		 */
		if (strncmp(p, "security.", 9) == 0 && strcmp(p, "security.capability") != 0)
			continue;
		size_t l = strlen(p) + 1;
		if (len + l > size)
			return -1;
		memcpy(out + len, p, l);
		len += l;
	}
	return (ssize_t)len;
}

static void
compare_xattrs(const char *a, const char *b)
{
	char na[65536], nb[65536];
	bool ova, ovb;
	ssize_t la = xattr_names(a, na, sizeof(na), &ova);
	ssize_t lb = xattr_names(b, nb, sizeof(nb), &ovb);
	if (la < 0 || lb < 0)
		tap_fail(__FILE__, __LINE__, "listing xattrs of '%s' or '%s'", a, b);
	if (ovb)
		tap_fail(__FILE__, __LINE__, "'%s' got a trusted.overlay.* xattr", b);
	/* every name of a must be in b with the same value, and the counts match */
	int ca = 0, cb = 0;
	for (char *p = nb; p < nb + lb; p += strlen(p) + 1)
		cb++;
	for (char *p = na; p < na + la; p += strlen(p) + 1) {
		ca++;
		char va[65536], vb[65536];
		ssize_t sa = lgetxattr(a, p, va, sizeof(va)), sb = lgetxattr(b, p, vb, sizeof(vb));
		if (sa < 0 || sb != sa || memcmp(va, vb, (size_t)sa) != 0)
			tap_fail(__FILE__, __LINE__, "xattr '%s' differs between '%s' and '%s'", p,
				 a, b);
	}
	if (ca != cb)
		tap_fail(__FILE__, __LINE__, "'%s' has %d xattrs, '%s' has %d", a, ca, b, cb);
}

struct inomap {
	ino_t src, dst;
};
static struct inomap inos[65536];
static size_t ninos;

static void
check_links(const char *path, const struct stat *s, const struct stat *d)
{
	for (size_t i = 0; i < ninos; i++) {
		if (inos[i].src == s->st_ino && inos[i].dst != d->st_ino)
			tap_fail(__FILE__, __LINE__, "'%s': hard link not kept", path);
		if (inos[i].src != s->st_ino && inos[i].dst == d->st_ino)
			tap_fail(__FILE__, __LINE__, "'%s': linked in the copy, not in the source",
				 path);
		if (inos[i].src == s->st_ino)
			return;
	}
	if (ninos < sizeof(inos) / sizeof(inos[0]))
		inos[ninos++] = (struct inomap){s->st_ino, d->st_ino};
}

static void
compare_entry(const char *a, const char *b, bool top)
{
	struct stat s, d;
	if (lstat(a, &s) < 0)
		tap_fail(__FILE__, __LINE__, "lstat '%s': %s", a, strerror(errno));
	if (lstat(b, &d) < 0)
		tap_fail(__FILE__, __LINE__, "'%s' missing in the copy: %s", b, strerror(errno));
	if ((s.st_mode & S_IFMT) != (d.st_mode & S_IFMT))
		tap_fail(__FILE__, __LINE__, "'%s': type 0%o != 0%o", b, s.st_mode & S_IFMT,
			 d.st_mode & S_IFMT);
	if (!S_ISLNK(s.st_mode) && s.st_mode != d.st_mode)
		tap_fail(__FILE__, __LINE__, "'%s': mode 0%o != 0%o", b, s.st_mode, d.st_mode);
	if (s.st_uid != d.st_uid || s.st_gid != d.st_gid)
		tap_fail(__FILE__, __LINE__, "'%s': owner %u:%u != %u:%u", b, s.st_uid, s.st_gid,
			 d.st_uid, d.st_gid);
	if (s.st_mtim.tv_sec != d.st_mtim.tv_sec || s.st_mtim.tv_nsec != d.st_mtim.tv_nsec)
		tap_fail(__FILE__, __LINE__, "'%s': mtime %lld.%09ld != %lld.%09ld", b,
			 (long long)s.st_mtim.tv_sec, s.st_mtim.tv_nsec,
			 (long long)d.st_mtim.tv_sec, d.st_mtim.tv_nsec);
	if (!S_ISDIR(s.st_mode) && s.st_nlink != d.st_nlink)
		tap_fail(__FILE__, __LINE__, "'%s': %lu links != %lu", b, (unsigned long)s.st_nlink,
			 (unsigned long)d.st_nlink);
	if (!top)
		compare_xattrs(a, b);
	if (!S_ISDIR(s.st_mode) && s.st_nlink > 1)
		check_links(b, &s, &d);

	if (S_ISREG(s.st_mode)) {
		if (s.st_size != d.st_size)
			tap_fail(__FILE__, __LINE__, "'%s': size %lld != %lld", b,
				 (long long)s.st_size, (long long)d.st_size);
		compare_bytes(a, b);
	} else if (S_ISLNK(s.st_mode)) {
		char ta[4096], tb[4096];
		ssize_t na = readlink(a, ta, sizeof(ta)), nb = readlink(b, tb, sizeof(tb));
		if (na < 0 || na != nb || memcmp(ta, tb, (size_t)na) != 0)
			tap_fail(__FILE__, __LINE__, "'%s': symlink target differs", b);
	} else if (S_ISCHR(s.st_mode) || S_ISBLK(s.st_mode)) {
		if (s.st_rdev != d.st_rdev)
			tap_fail(__FILE__, __LINE__, "'%s': device %u:%u != %u:%u", b,
				 major(s.st_rdev), minor(s.st_rdev), major(d.st_rdev),
				 minor(d.st_rdev));
	} else if (S_ISDIR(s.st_mode)) {
		DIR *dir = opendir(a);
		if (!dir)
			tap_fail(__FILE__, __LINE__, "opendir '%s': %s", a, strerror(errno));
		size_t na = 0;
		struct dirent *de;
		while ((de = readdir(dir))) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			na++;
			char *ca = malloc(strlen(a) + strlen(de->d_name) + 2);
			char *cb = malloc(strlen(b) + strlen(de->d_name) + 2);
			sprintf(ca, "%s/%s", a, de->d_name);
			sprintf(cb, "%s/%s", b, de->d_name);
			compare_entry(ca, cb, false);
			free(ca);
			free(cb);
		}
		closedir(dir);
		size_t nb = 0;
		dir = opendir(b);
		if (!dir)
			tap_fail(__FILE__, __LINE__, "opendir '%s': %s", b, strerror(errno));
		while ((de = readdir(dir)))
			nb++;
		closedir(dir);
		if (nb - 2 != na)
			tap_fail(__FILE__, __LINE__, "'%s' has %zu entries, the source %zu", b,
				 nb - 2, na);
		/* Reading never changes mtime, but our compare came after: recheck it. */
		if (lstat(b, &d) == 0 && (s.st_mtim.tv_sec != d.st_mtim.tv_sec ||
					  s.st_mtim.tv_nsec != d.st_mtim.tv_nsec))
			tap_fail(__FILE__, __LINE__, "'%s': directory mtime not kept", b);
	}
}

void
fx_compare_trees(const char *src, const char *dst)
{
	ninos = 0;
	compare_entry(src, dst, true);
}

void
fx_chmod_dirs_writable(const char *path)
{
	fx_sh("find '%s' -type d -exec chmod u+rwx {} + 2>/dev/null", path);
}

bool
fx_uring_available(void)
{
	struct io_uring ring;
	bool ok = io_uring_queue_init(4, &ring, 0) >= 0;
	if (ok)
		io_uring_queue_exit(&ring);
	const char *env = getenv("SNAPCTL_NO_IO_URING");
	if (env && *env && strcmp(env, "0") != 0)
		return false; /* asked for: the plain paths are what is tested */
	/* In CI a green run must mean the io_uring paths ran. */
	const char *ci = getenv("CI");
	if (!ok && ci && *ci) {
		printf("Bail out! io_uring is unavailable or disabled here, and CI must run its "
		       "paths\n");
		exit(1);
	}
	return ok;
}

int
fx_copy(const char *src, const char *dst, unsigned flags, struct snap_copy_stats *stats,
	struct sc_err *err)
{
	struct snap_copy_opts opts = {.flags = flags | SNAP_COPY_NO_SYNC};
	return snap_copy_tree(AT_FDCWD, src, AT_FDCWD, dst, &opts, stats, err);
}

int
fx_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int r = system(cmd);
	if (r < 0 || !WIFEXITED(r))
		return -1;
	return WEXITSTATUS(r);
}

int
fx_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -errno;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the one opendir() holds */
}
