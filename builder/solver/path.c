/*
 * Paths for COPY/ADD: resolution of a path inside a root (a build context
 * or a rootfs) that can never leave it, lexical cleaning as Go's path
 * package does it, and Go's filepath.Match for glob components.
 *
 * fo_resolve() walks one component at a time, each opened O_PATH |
 * O_NOFOLLOW relative to the directory before it. A symlink is read and its
 * target spliced in front of what is left to resolve; an absolute target
 * restarts at the root and ".." at the root stays there. Only a textual
 * path of real directories (the canonical path) is kept besides the two
 * fds in use, so deep paths cost no file descriptors.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileop-internal.h"

static int
openat2_retry(int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve)
{
	struct open_how how = {
		.flags = (uint64_t)flags | O_CLOEXEC,
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = resolve,
	};
	long fd;
	do
		fd = syscall(SYS_openat2, dirfd, *path ? path : ".", &how, sizeof(how));
	while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	return fd < 0 ? -errno : (int)fd;
}

int
fo_open_beneath(int dirfd, const char *path, int flags)
{
	return openat2_retry(dirfd, path, flags, 0,
			     RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
}

int
fo_open_in_root(int dirfd, const char *path, int flags, mode_t mode)
{
	return openat2_retry(dirfd, path, flags, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

char *
fo_clean(const char *path)
{
	size_t n = strlen(path);
	char *out = malloc(n + 1);
	if (!out)
		return NULL;
	size_t len = 0;
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *end = strchrnul(p, '/');
		size_t cl = (size_t)(end - p);
		if (cl == 1 && p[0] == '.') {
			/* nothing */
		} else if (cl == 2 && p[0] == '.' && p[1] == '.') {
			/* Back to the previous '/', or the root (never above it). */
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
		} else {
			if (len)
				out[len++] = '/';
			memcpy(out + len, p, cl);
			len += cl;
		}
		p = end;
	}
	out[len] = '\0';
	return out;
}

char *
fo_join_abs(const char *base, const char *path)
{
	_cleanup_free_ char *joined = NULL;
	if (path[0] != '/' && base) {
		size_t bl = strlen(base), pl = strlen(path);
		joined = malloc(bl + pl + 2);
		if (!joined)
			return NULL;
		memcpy(joined, base, bl);
		joined[bl] = '/';
		memcpy(joined + bl + 1, path, pl + 1);
	}
	_cleanup_free_ char *c = fo_clean(joined ? joined : path);
	if (!c)
		return NULL;
	size_t cl = strlen(c);
	char *out = malloc(cl + 2);
	if (!out)
		return NULL;
	out[0] = '/';
	memcpy(out + 1, c, cl + 1);
	return out;
}

void
fo_path_clear(struct fo_path *p)
{
	if (p->fd >= 0)
		close(p->fd);
	if (p->dirfd >= 0)
		close(p->dirfd);
	free(p->path);
	*p = (struct fo_path){.fd = -EBADF, .dirfd = -EBADF};
}

int
fo_resolve_error(struct sc_err *err, int r, const char *what)
{
	switch (r) {
	case -ENOENT:
		return sc_err_set(err, r, "'%s' does not exist", what);
	case -ENOTDIR:
		return sc_err_set(err, r, "'%s': a component of the path is not a directory", what);
	case -ELOOP:
		return sc_err_set(err, r, "'%s': too many levels of symbolic links", what);
	case -ENAMETOOLONG:
		return sc_err_set(err, r, "'%.200s...': path too long", what);
	case -ENOMEM:
		return sc_err_set(err, r, "out of memory");
	default:
		return sc_err_setsys(err, r, "cannot resolve '%s'", what);
	}
}

/* The walk's state: the canonical path so far and what is left. */
struct walk {
	char canon[FO_MAX_PATH + NAME_MAX + 2];
	size_t clen;
	char *rest; /* heap; p points into it */
	char *p;
	int cur;    /* O_PATH fd of canon */
	int parent; /* O_PATH fd of canon's parent, or -EBADF when unknown */
};

static void
canon_pop(struct walk *w)
{
	while (w->clen > 0 && w->canon[w->clen - 1] != '/')
		w->clen--;
	if (w->clen > 0)
		w->clen--;
	w->canon[w->clen] = '\0';
}

/* Replaces cur with the directory canon names now (after a pop or a restart). */
static int
reopen_cur(struct walk *w, int root_fd)
{
	int fd = fo_open_beneath(root_fd, w->canon, O_PATH | O_DIRECTORY);
	if (fd < 0)
		return fd;
	close(w->cur);
	w->cur = fd;
	if (w->parent >= 0)
		close(w->parent);
	w->parent = -EBADF;
	return 0;
}

/* Puts target in front of what is left to resolve. */
static int
splice_target(struct walk *w, const char *target, size_t tl)
{
	size_t left = strlen(w->p);
	if (tl + left + 2 > 2 * PATH_MAX)
		return -ENAMETOOLONG;
	char *n = malloc(tl + left + 2);
	if (!n)
		return -ENOMEM;
	memcpy(n, target, tl);
	/* "a/b" + "c": "a/b/c"; nothing left: "a/b" alone (no '/' that would ask for a directory).
	 */
	n[tl] = left ? '/' : '\0';
	memcpy(n + tl + (left ? 1 : 0), w->p, left + 1);
	free(w->rest);
	w->rest = w->p = n;
	return 0;
}

static int
finish(struct walk *w, int root_fd, int fd, const char *missing, struct fo_path *ret)
{
	/* fd is the result (or -EBADF with missing its name); cur holds it. */
	ret->fd = fd;
	size_t extra = missing ? strlen(missing) + 1 : 0;
	ret->path = malloc(w->clen + extra + 1);
	if (!ret->path)
		return -ENOMEM;
	memcpy(ret->path, w->canon, w->clen + 1);
	if (missing) {
		size_t l = w->clen;
		if (l)
			ret->path[l++] = '/';
		strcpy(ret->path + l, missing);
	}
	const char *slash = strrchr(ret->path, '/');
	ret->name = slash ? slash + 1 : ret->path;
	if (fd >= 0 || missing) {
		/* The result is a child of cur. */
		ret->dirfd = TAKE_FD(w->cur);
	} else if (w->clen == 0) {
		/* The root itself. */
		ret->fd = TAKE_FD(w->cur);
		ret->dirfd = fcntl(ret->fd, F_DUPFD_CLOEXEC, 3);
		if (ret->dirfd < 0)
			return -errno;
	} else {
		ret->fd = TAKE_FD(w->cur);
		if (w->parent >= 0) {
			ret->dirfd = TAKE_FD(w->parent);
		} else {
			char up[sizeof(w->canon)];
			memcpy(up, w->canon, w->clen + 1);
			char *s = strrchr(up, '/');
			if (s)
				*s = '\0';
			else
				up[0] = '\0';
			ret->dirfd = fo_open_beneath(root_fd, up, O_PATH | O_DIRECTORY);
			if (ret->dirfd < 0)
				return ret->dirfd;
		}
	}
	if (ret->fd >= 0 && fstat(ret->fd, &ret->st) < 0)
		return -errno;
	return 0;
}

int
fo_resolve(int root_fd, const char *path, unsigned flags, uid_t uid, gid_t gid,
	   fo_visible_fn visible, void *arg, struct fo_path *ret)
{
	*ret = (struct fo_path){.fd = -EBADF, .dirfd = -EBADF};
	struct walk w = {.cur = -EBADF, .parent = -EBADF};
	bool root_user = geteuid() == 0;
	unsigned links = 0;
	int r = 0;
	w.rest = w.p = strdup(path);
	if (!w.rest)
		return -ENOMEM;
	w.cur = openat(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (w.cur < 0) {
		r = -errno;
		goto out;
	}
	for (;;) {
		while (*w.p == '/')
			w.p++;
		if (!*w.p) {
			r = finish(&w, root_fd, -EBADF, NULL, ret);
			break;
		}
		const char *comp = w.p;
		char *end = strchrnul(w.p, '/');
		size_t cl = (size_t)(end - comp);
		w.p = end;
		if (cl == 1 && comp[0] == '.')
			continue;
		if (cl == 2 && comp[0] == '.' && comp[1] == '.') {
			if (w.clen == 0)
				continue;
			canon_pop(&w);
			r = reopen_cur(&w, root_fd);
			if (r < 0)
				break;
			continue;
		}
		if (cl > NAME_MAX || w.clen + 1 + cl > FO_MAX_PATH) {
			r = -ENAMETOOLONG;
			break;
		}
		char nm[NAME_MAX + 1];
		memcpy(nm, comp, cl);
		nm[cl] = '\0';
		/* "a/" or "a/." leave something: a is then a directory. */
		bool last = *w.p == '\0';
		int fd = openat(w.cur, nm, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && (flags & FO_MKDIR)) {
			if (mkdirat(w.cur, nm, 0755) == 0) {
				ret->created = true;
				/* Not the umask's mode; the owner asked for (root only). */
				if (fchmodat(w.cur, nm, 0755, 0) < 0 ||
				    (root_user &&
				     fchownat(w.cur, nm, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)) {
					r = -errno;
					break;
				}
			} else if (errno != EEXIST) {
				r = -errno;
				break;
			}
			fd = openat(w.cur, nm, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		}
		if (fd < 0) {
			r = -errno;
			if (r == -ENOENT && last && (flags & FO_MISSING_OK))
				r = finish(&w, root_fd, -EBADF, nm, ret);
			break;
		}
		struct stat st;
		if (fstat(fd, &st) < 0) {
			r = -errno;
			close(fd);
			break;
		}
		if (w.clen)
			w.canon[w.clen++] = '/';
		memcpy(w.canon + w.clen, nm, cl + 1);
		w.clen += cl;
		if (visible && !visible(arg, w.canon, &st)) {
			close(fd);
			r = -ENOENT;
			break;
		}
		if (S_ISLNK(st.st_mode) && !(last && !(flags & (FO_FOLLOW_LAST | FO_MKDIR)))) {
			char target[PATH_MAX];
			ssize_t tl = readlinkat(fd, "", target, sizeof(target));
			close(fd);
			if (tl < 0) {
				r = -errno;
				break;
			}
			if ((size_t)tl >= sizeof(target)) {
				r = -ENAMETOOLONG;
				break;
			}
			if (++links > FO_MAX_SYMLINKS) {
				r = -ELOOP;
				break;
			}
			canon_pop(&w);
			if (target[0] == '/' && w.clen > 0) {
				w.clen = 0;
				w.canon[0] = '\0';
				r = reopen_cur(&w, root_fd);
				if (r < 0)
					break;
			}
			r = splice_target(&w, target, (size_t)tl);
			if (r < 0)
				break;
			continue;
		}
		if (!S_ISDIR(st.st_mode) && (!last || (flags & FO_MKDIR))) {
			close(fd);
			r = -ENOTDIR;
			break;
		}
		if (last && !S_ISDIR(st.st_mode)) {
			r = finish(&w, root_fd, fd, NULL, ret); /* takes fd */
			break;
		}
		if (w.parent >= 0)
			close(w.parent);
		w.parent = w.cur;
		w.cur = fd;
	}
out:
	free(w.rest);
	if (w.cur >= 0)
		close(w.cur);
	if (w.parent >= 0)
		close(w.parent);
	if (r < 0)
		fo_path_clear(ret);
	return r;
}

/* --- Go's filepath.Match, one component at a time ------------------------ */

bool
fo_glob_has_meta(const char *s)
{
	for (; *s; s++) {
		if (*s == '\\') {
			if (!s[1])
				break;
			s++;
		} else if (*s == '*' || *s == '?' || *s == '[') {
			return true;
		}
	}
	return false;
}

/* One UTF-8 rune at s (an invalid byte is a rune of its own, as in Go). */
static size_t
rune_at(const char *s, uint32_t *ret)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = u[0] < 0x80		   ? 1
		   : (u[0] & 0xe0) == 0xc0 ? 2
		   : (u[0] & 0xf0) == 0xe0 ? 3
		   : (u[0] & 0xf8) == 0xf0 ? 4
					   : 0;
	if (n == 0) {
		*ret = 0xfffd;
		return 1;
	}
	uint32_t r = n == 1 ? u[0] : n == 2 ? u[0] & 0x1f : n == 3 ? u[0] & 0x0f : u[0] & 0x07;
	for (size_t i = 1; i < n; i++) {
		if ((u[i] & 0xc0) != 0x80) {
			*ret = 0xfffd;
			return 1;
		}
		r = (r << 6) | (u[i] & 0x3f);
	}
	*ret = r;
	return n;
}

/*
 * A class item's character at *pp ('\' escapes): the rune, or -1 for a
 * malformed class (empty item, unescaped '-' or ']', nothing after it).
 */
static int64_t
class_char(const char **pp)
{
	const char *p = *pp;
	if (!*p || *p == '-' || *p == ']')
		return -1;
	if (*p == '\\') {
		p++;
		if (!*p)
			return -1;
	}
	uint32_t r;
	p += rune_at(p, &r);
	if (!*p)
		return -1; /* a class must end in ']' */
	*pp = p;
	return r;
}

/*
 * Matches the class at *pp (just after '[') against rune c; *pp ends after
 * its ']'. Returns 1/0, or -EINVAL when malformed.
 */
static int
class_match(const char **pp, uint32_t c)
{
	const char *p = *pp;
	bool negated = false, match = false;
	if (*p == '^') {
		negated = true;
		p++;
	}
	for (unsigned n = 0;; n++) {
		if (*p == ']' && n > 0) {
			p++;
			break;
		}
		int64_t lo = class_char(&p), hi = lo;
		if (lo < 0)
			return -EINVAL;
		if (*p == '-') {
			p++;
			hi = class_char(&p);
			if (hi < 0)
				return -EINVAL;
		}
		if (lo <= (int64_t)c && (int64_t)c <= hi)
			match = true;
	}
	*pp = p;
	return match != negated;
}

/* Checks the whole pattern's syntax, as Go does before answering. */
static int
glob_valid(const char *p)
{
	while (*p) {
		if (*p == '\\') {
			if (!p[1])
				return -EINVAL;
			p += 2;
		} else if (*p == '[') {
			p++;
			if (class_match(&p, 0) < 0)
				return -EINVAL;
		} else {
			p++;
		}
	}
	return 0;
}

/*
 * One element of the pattern at *pp (not '*') against the rune at *sp;
 * advances both on a match.
 */
static bool
elem_match(const char **pp, const char **sp)
{
	const char *p = *pp, *s = *sp;
	if (!*s)
		return false;
	uint32_t c;
	size_t w = rune_at(s, &c);
	if (*p == '?') {
		p++;
	} else if (*p == '[') {
		p++;
		if (class_match(&p, c) != 1)
			return false;
	} else {
		if (*p == '\\')
			p++;
		/* Literal: byte for byte (Go compares bytes here). */
		if (*p != *s)
			return false;
		p++;
		w = 1;
	}
	*pp = p;
	*sp = s + w;
	return true;
}

int
fo_glob_match(const char *pattern, const char *name)
{
	if (glob_valid(pattern) < 0)
		return -EINVAL;
	/*
	 * Every element but '*' takes exactly one character, so remembering
	 * the last '*' and retrying one character further is enough.
	 */
	const char *p = pattern, *s = name, *star_p = NULL, *star_s = NULL;
	while (*s) {
		if (*s == '/')
			return 0;
		if (*p == '*') {
			while (*p == '*')
				p++;
			star_p = p;
			star_s = s;
			continue;
		}
		if (*p && elem_match(&p, &s))
			continue;
		if (!star_p)
			return 0;
		uint32_t c;
		star_s += rune_at(star_s, &c);
		if (*star_s == '/')
			return 0;
		p = star_p;
		s = star_s;
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}
