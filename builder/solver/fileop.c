/*
 * COPY/ADD into a rootfs, and the directories WORKDIR and COPY create.
 *
 * The selection (select.c) says what is copied; this file says where and
 * how, with BuildKit's rules (fsutil's copy as dockerfile2llb drives it):
 *  - the destination is absolute or against WORKDIR; it is a directory when
 *    it ends in '/', is ".", or the instruction has several sources or a
 *    glob; resolving it follows symlinks inside the rootfs;
 *  - a directory source copies its contents into the destination
 *    directory (created 0755 with the --chown owner, or root's, when
 *    missing; left as it is when it exists);
 *  - a file source goes to DEST/NAME when the destination is a directory
 *    (or exists as one), else to exactly DEST, replacing a file there;
 *  - below the destination, a directory of the source merges into an
 *    existing directory (whose owner, mode and times it then takes); a
 *    directory where the destination has something else, or a file where it
 *    has a directory, fails (-ENOTDIR / -EISDIR) as in BuildKit; nothing
 *    below the destination directory is followed when it is a symlink;
 *  - owners: --chown, else 0:0 for the build context, else the source's;
 *    modes: --chmod applied to each entry (symbolic relative to its own
 *    mode), else the source's; times and xattrs as in the source. Owners
 *    are only changed when running as root.
 * Data goes through the copy engine: a run of sibling directories the
 * filters left whole and files with one link, all of which the destination
 * lacks, is one snap_copy_entries() walk (io_uring batching, hard links
 * within it kept), other files one snap_copy_file()
 * each (reflink or copy_file_range where possible); hard links between
 * files copied one by one are kept too. Nothing is synced here: the caller
 * syncs the file system once, before it commits the result.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cleanup.h"
#include "copy.h"
#include "fileop-internal.h"
#include "log.h"

/* A directory fd looked up by its path below base, the last one kept. */
struct pcache {
	int base;
	int fd;
	char rel[FO_MAX_PATH + 1];
};

/* Files copied one by one with more than one link: (dev, ino) -> entry. */
struct links {
	struct link {
		dev_t dev;
		ino_t ino;
		size_t entry; /* SIZE_MAX: free slot */
	} * v;
	size_t cap, n;
};

struct ap {
	const struct bld_copy_source *src;
	const struct bld_copy_op *op;
	int root;
	struct fo_sel s;
	bool root_user;
	bool has_owner;
	uid_t uid;
	gid_t gid;
	struct fo_chmod chmod;
	struct snap_copy_opts copts;
	char *dest; /* absolute, cleaned */
	struct sc_err *err;
};

static void
want_owner(const struct ap *a, uid_t su, gid_t sg, uid_t *u, gid_t *g)
{
	if (a->has_owner) {
		*u = a->uid;
		*g = a->gid;
	} else if (a->src->context) {
		*u = 0;
		*g = 0;
	} else {
		*u = su;
		*g = sg;
	}
}

static int
pcache_get(struct pcache *c, const char *rel, size_t rl)
{
	if (c->fd >= 0 && strlen(c->rel) == rl && memcmp(c->rel, rel, rl) == 0)
		return c->fd;
	if (c->fd >= 0)
		close(c->fd);
	memcpy(c->rel, rel, rl);
	c->rel[rl] = '\0';
	c->fd = fo_open_beneath(c->base, c->rel, O_PATH | O_DIRECTORY);
	return c->fd;
}

static void
pcache_done(struct pcache *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -EBADF;
}

static size_t
link_slot(const struct links *l, dev_t dev, ino_t ino)
{
	size_t i = (size_t)((ino * 0x9e3779b97f4a7c15ull) ^ dev) & (l->cap - 1);
	while (l->v[i].entry != SIZE_MAX && !(l->v[i].dev == dev && l->v[i].ino == ino))
		i = (i + 1) & (l->cap - 1);
	return i;
}

static bool
links_find(const struct links *l, dev_t dev, ino_t ino, size_t *ret)
{
	if (!l->cap)
		return false;
	size_t i = link_slot(l, dev, ino);
	if (l->v[i].entry == SIZE_MAX)
		return false;
	*ret = l->v[i].entry;
	return true;
}

static int
links_add(struct links *l, dev_t dev, ino_t ino, size_t entry)
{
	if ((l->n + 1) * 2 > l->cap) {
		struct links nl = {.cap = l->cap ? l->cap * 2 : 64};
		nl.v = malloc(nl.cap * sizeof(*nl.v));
		if (!nl.v)
			return -ENOMEM;
		for (size_t i = 0; i < nl.cap; i++)
			nl.v[i].entry = SIZE_MAX;
		for (size_t i = 0; i < l->cap; i++)
			if (l->v[i].entry != SIZE_MAX)
				nl.v[link_slot(&nl, l->v[i].dev, l->v[i].ino)] = l->v[i];
		nl.n = l->n;
		free(l->v);
		*l = nl;
	}
	size_t i = link_slot(l, dev, ino);
	if (l->v[i].entry == SIZE_MAX)
		l->n++;
	l->v[i] = (struct link){.dev = dev, .ino = ino, .entry = entry};
	return 0;
}

/*
 * Owner and mode of the entry name below pfd (already created, with its
 * source's mode src_mode and owner su:sg). chown() drops set-id bits and
 * security.capability: the mode is set again after it and the capability
 * put back.
 */
static int
meta_at(struct ap *a, int pfd, const char *name, const char *what, mode_t src_mode, uid_t su,
	gid_t sg)
{
	uid_t u;
	gid_t g;
	want_owner(a, su, sg, &u, &g);
	struct stat cur;
	if (fstatat(pfd, name, &cur, AT_SYMLINK_NOFOLLOW) < 0)
		return sc_err_setsys(a->err, -errno, "cannot stat '%s'", what);
	bool do_chown = a->root_user && (cur.st_uid != u || cur.st_gid != g);
	if (S_ISLNK(cur.st_mode)) {
		if (do_chown && fchownat(pfd, name, u, g, AT_SYMLINK_NOFOLLOW) < 0)
			return sc_err_setsys(a->err, -errno, "cannot set the owner of '%s'", what);
		return 0;
	}
	mode_t mode = fo_chmod_apply(&a->chmod, (src_mode & S_IFMT) | (src_mode & 07777));
	char p[64 + NAME_MAX];
	snprintf(p, sizeof(p), "/proc/self/fd/%d/%s", pfd, name);
	uint8_t cap[64];
	ssize_t caplen = -1;
	if (do_chown && S_ISREG(cur.st_mode))
		caplen = lgetxattr(p, "security.capability", cap, sizeof(cap));
	if (do_chown && fchownat(pfd, name, u, g, AT_SYMLINK_NOFOLLOW) < 0)
		return sc_err_setsys(a->err, -errno, "cannot set the owner of '%s' to %u:%u", what,
				     (unsigned)u, (unsigned)g);
	if ((do_chown || (cur.st_mode & 07777) != mode) && fchmodat(pfd, name, mode, 0) < 0)
		return sc_err_setsys(a->err, -errno, "cannot set the mode of '%s'", what);
	if (caplen > 0 && lsetxattr(p, "security.capability", cap, (size_t)caplen, 0) < 0)
		return sc_err_setsys(a->err, -errno, "cannot keep the capabilities of '%s'", what);
	return 0;
}

/* Xattrs of directory src onto dst (both O_RDONLY), best effort as BuildKit. */
static void
copy_dir_xattrs(int src, int dst, const char *what)
{
	ssize_t n = flistxattr(src, NULL, 0);
	if (n <= 0)
		return;
	_cleanup_free_ char *names = malloc((size_t)n);
	if (!names || (n = flistxattr(src, names, (size_t)n)) <= 0)
		return;
	for (char *q = names; q < names + n; q += strlen(q) + 1) {
		if (strncmp(q, "trusted.overlay.", 16) == 0)
			continue;
		ssize_t vl = fgetxattr(src, q, NULL, 0);
		if (vl < 0)
			continue;
		_cleanup_free_ char *v = malloc((size_t)vl + 1);
		if (!v || (vl = fgetxattr(src, q, v, (size_t)vl)) < 0)
			continue;
		if (fsetxattr(dst, q, v, (size_t)vl, 0) < 0)
			sc_debug("xattr %s not copied to '%s': %s", q, what, strerror(errno));
	}
}

/* "DEST/rel" for messages. */
static const char *
dest_name(const struct ap *a, const char *rel, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", a->dest, strcmp(a->dest, "/") && *rel ? "/" : "", rel);
	return buf;
}

/*
 * Copies one entry that is not a directory, src name below sfd with stat
 * st, to name below dfd. what names it in messages. links/entry: hard link
 * tracking (links NULL: none); tbase: the fd entries' rel are below.
 */
static int
copy_nondir(struct ap *a, int sfd, const char *sname, const struct stat *st, int dfd,
	    const char *dname, const char *what, struct links *links, size_t entry, int tbase)
{
	struct stat ds;
	if (fstatat(dfd, dname, &ds, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(ds.st_mode))
			return sc_err_set(a->err, -EISDIR,
					  "%s failed: cannot replace directory '%s' with a file",
					  fo_verb(a->op), what);
		if (unlinkat(dfd, dname, 0) < 0)
			return sc_err_setsys(a->err, -errno, "cannot replace '%s'", what);
	}
	int r;
	switch (st->st_mode & S_IFMT) {
	case S_IFREG: {
		size_t first;
		if (links && st->st_nlink > 1 &&
		    links_find(links, st->st_dev, st->st_ino, &first)) {
			const char *frel = a->s.e[first].rel;
			const char *slash = strrchr(frel, '/');
			char dir[FO_MAX_PATH + 1];
			snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - frel) : 0, frel);
			_cleanup_close_ int pfd = fo_open_beneath(tbase, dir, O_PATH | O_DIRECTORY);
			if (pfd >= 0 && linkat(pfd, slash ? slash + 1 : frel, dfd, dname, 0) == 0)
				return 0; /* the same inode: its metadata is set */
			sc_debug("hard link '%s' copied as a file: %s", what, strerror(errno));
		}
		r = snap_copy_file(sfd, sname, dfd, dname, &a->copts, a->err);
		if (r < 0)
			return sc_err_prefix(a->err, r, "%s failed: copying to '%s'",
					     fo_verb(a->op), what);
		if (links && st->st_nlink > 1 &&
		    links_add(links, st->st_dev, st->st_ino, entry) < 0)
			return sc_err_set(a->err, -ENOMEM, "out of memory");
		break;
	}
	case S_IFLNK: {
		char t[PATH_MAX];
		ssize_t tl = readlinkat(sfd, sname, t, sizeof(t) - 1);
		if (tl < 0)
			return sc_err_setsys(a->err, -errno, "cannot read symlink '%s'", sname);
		t[tl] = '\0';
		if (symlinkat(t, dfd, dname) < 0)
			return sc_err_setsys(a->err, -errno, "cannot create symlink '%s'", what);
		break;
	}
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
		if (!S_ISFIFO(st->st_mode) && !a->root_user) {
			sc_debug("skipping device node '%s': not root", what);
			return 0;
		}
		if (mknodat(dfd, dname, (st->st_mode & S_IFMT) | 0600, st->st_rdev) < 0)
			return sc_err_setsys(a->err, -errno, "cannot create '%s'", what);
		break;
	default:
		sc_debug("skipping socket '%s'", what);
		return 0;
	}
	r = meta_at(a, dfd, dname, what, st->st_mode, st->st_uid, st->st_gid);
	if (r < 0)
		return r;
	if (!S_ISREG(st->st_mode)) {
		/* snap_copy_file set a file's times; the others get theirs here. */
		const struct timespec ts[2] = {st->st_atim, st->st_mtim};
		if (utimensat(dfd, dname, ts, AT_SYMLINK_NOFOLLOW) < 0)
			return sc_err_setsys(a->err, -errno, "cannot set the times of '%s'", what);
	}
	return 0;
}

/* Owner and mode fixes for entries [first, end) that snap_copy_tree() copied as they are. */
static int
fix_subtree(struct ap *a, struct pcache *dst, size_t first, size_t end)
{
	bool owners = a->root_user && (a->has_owner || a->src->context);
	if (!owners && !a->chmod.set)
		return 0;
	for (size_t k = first; k < end; k++) {
		const struct fo_entry *e = &a->s.e[k];
		uid_t u;
		gid_t g;
		want_owner(a, e->uid, e->gid, &u, &g);
		bool chg_owner = a->root_user && (e->uid != u || e->gid != g);
		bool chg_mode = !S_ISLNK(e->mode) &&
				fo_chmod_apply(&a->chmod, e->mode) != (e->mode & 07777);
		if (!chg_owner && !chg_mode)
			continue;
		const char *slash = strrchr(e->rel, '/');
		int pfd = pcache_get(dst, e->rel, slash ? (size_t)(slash - e->rel) : 0);
		char what[FO_MAX_PATH + 64];
		dest_name(a, e->rel, what, sizeof(what));
		if (pfd < 0)
			return sc_err_setsys(a->err, pfd, "cannot open the directory of '%s'",
					     what);
		int r = meta_at(a, pfd, slash ? slash + 1 : e->rel, what, e->mode, e->uid, e->gid);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A directory waiting for its mode and times until its contents are copied. */
struct pend {
	size_t entry;
	struct stat st;
};

static int
finish_dir(struct ap *a, int tfd, const struct pend *p)
{
	const char *rel = a->s.e[p->entry].rel;
	char what[FO_MAX_PATH + 64];
	dest_name(a, rel, what, sizeof(what));
	_cleanup_close_ int fd = fo_open_beneath(tfd, rel, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return sc_err_setsys(a->err, fd, "cannot open directory '%s'", what);
	if (fchmod(fd, fo_chmod_apply(&a->chmod, p->st.st_mode)) < 0)
		return sc_err_setsys(a->err, -errno, "cannot set the mode of '%s'", what);
	const struct timespec ts[2] = {p->st.st_atim, p->st.st_mtim};
	if (futimens(fd, ts) < 0)
		return sc_err_setsys(a->err, -errno, "cannot set the times of '%s'", what);
	return 0;
}

/* A directory entry: merged into an existing directory, or made. Pushes it on pend. */
static int
copy_dir_entry(struct ap *a, int sfd, const char *name, const struct stat *st, int dfd,
	       const char *what, size_t entry, struct pend *pend, size_t *npend)
{
	if (mkdirat(dfd, name, 0700) < 0 && errno != EEXIST)
		return sc_err_setsys(a->err, -errno, "cannot create directory '%s'", what);
	_cleanup_close_ int d = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d < 0)
		return errno == ENOTDIR || errno == ELOOP
			       ? sc_err_set(a->err, -ENOTDIR,
					    "%s failed: cannot copy a directory to '%s', which is "
					    "not a directory",
					    fo_verb(a->op), what)
			       : sc_err_setsys(a->err, -errno, "cannot open directory '%s'", what);
	uid_t u;
	gid_t g;
	want_owner(a, st->st_uid, st->st_gid, &u, &g);
	if (a->root_user && fchown(d, u, g) < 0)
		return sc_err_setsys(a->err, -errno, "cannot set the owner of '%s'", what);
	_cleanup_close_ int s = openat(sfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s >= 0)
		copy_dir_xattrs(s, d, what);
	pend[(*npend)++] = (struct pend){.entry = entry, .st = *st};
	return 0;
}

/* The end of entry i's subtree in the selection: the next index not below it. */
static size_t
subtree_end(const struct ap *a, size_t i, size_t end)
{
	size_t j = i + 1;
	while (j < end && a->s.e[j].depth > a->s.e[i].depth)
		j++;
	return j;
}

/* An entry's last component. */
static const char *
entry_name(const struct fo_entry *e)
{
	const char *slash = strrchr(e->rel, '/');
	return slash ? slash + 1 : e->rel;
}

/*
 * Stats entry e (its name below sfd) into *st and says whether it can go
 * to the copy engine as it is: a directory the filters left whole or a
 * file with one link, that the destination dfd lacks. -EAGAIN: it changed
 * since it was selected.
 */
static int
engine_copies(struct ap *a, const struct fo_entry *e, int sfd, int dfd, struct stat *st)
{
	struct stat ds;
	const char *name = entry_name(e);
	if (fstatat(sfd, name, st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    (st->st_mode & S_IFMT) != (e->mode & S_IFMT))
		return sc_err_set(
			a->err, -EAGAIN,
			"%s failed: '%s' changed while it was copied; run the build again",
			fo_verb(a->op), e->path);
	bool whole = S_ISDIR(st->st_mode) ? !e->dirty : S_ISREG(st->st_mode) && st->st_nlink == 1;
	return whole && fstatat(dfd, name, &ds, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT;
}

/* The contents of a directory item into the directory tfd (O_PATH). */
static int
copy_dir_item(struct ap *a, const struct fo_item *it, int tfd)
{
	struct fo_path sp;
	int r = fo_resolve(a->src->root_dirfd, it->path, 0, 0, 0, NULL, NULL, &sp);
	if (r < 0)
		return fo_resolve_error(a->err, r, it->pattern);
	struct pcache src = {.base = sp.fd, .fd = -EBADF}, dst = {.base = tfd, .fd = -EBADF};
	struct links links = {0};
	unsigned maxd = 0;
	for (size_t i = it->first; i < it->first + it->n; i++)
		if (a->s.e[i].depth > maxd)
			maxd = a->s.e[i].depth;
	struct pend *pend = calloc(maxd + 1, sizeof(*pend));
	const char **names = calloc(it->n ? it->n : 1, sizeof(*names));
	size_t npend = 0;
	if (!pend || !names) {
		free(pend);
		free(names);
		fo_path_clear(&sp);
		return sc_err_set(a->err, -ENOMEM, "out of memory");
	}
	size_t end = it->first + it->n;
	for (size_t i = it->first; i < end && r >= 0; i++) {
		const struct fo_entry *e = &a->s.e[i];
		while (npend && a->s.e[pend[npend - 1].entry].depth >= e->depth && r >= 0)
			r = finish_dir(a, tfd, &pend[--npend]);
		if (r < 0)
			break;
		const char *name = entry_name(e);
		size_t pl = name == e->rel ? 0 : (size_t)(name - 1 - e->rel);
		char what[FO_MAX_PATH + 64];
		dest_name(a, e->rel, what, sizeof(what));
		int sfd = pcache_get(&src, e->rel, pl);
		int dfd = pcache_get(&dst, e->rel, pl);
		if (sfd < 0 || dfd < 0) {
			r = sc_err_setsys(a->err, sfd < 0 ? sfd : dfd,
					  "cannot open the directory of '%s'",
					  sfd < 0 ? e->path : what);
			break;
		}
		struct stat st;
		r = engine_copies(a, e, sfd, dfd, &st);
		if (r < 0)
			break;
		if (r > 0) {
			/*
			 * Whole and new here, and so are the siblings that follow
			 * alike: one copy engine walk for all of them, so its
			 * pipeline stays full from the first to the last.
			 */
			size_t n = 0, j = i;
			while (r > 0) {
				names[n++] = entry_name(&a->s.e[j]);
				j = subtree_end(a, j, end);
				if (j >= end || a->s.e[j].depth != e->depth)
					break;
				struct stat sib;
				r = engine_copies(a, &a->s.e[j], sfd, dfd, &sib);
			}
			if (r < 0)
				break;
			char where[FO_MAX_PATH + 64], from[FO_MAX_PATH + 1];
			snprintf(where, sizeof(where), "%.*s", (int)pl, e->rel);
			dest_name(a, where, what, sizeof(what));
			const char *ps = strrchr(e->path, '/');
			snprintf(from, sizeof(from), "%.*s", ps ? (int)(ps - e->path) : 1,
				 ps ? e->path : ".");
			r = snap_copy_entries(sfd, from, dfd, what, names, n, &a->copts, NULL,
					      a->err);
			if (r < 0) {
				r = sc_err_prefix(a->err, r, "%s failed: copying to '%s'",
						  fo_verb(a->op), what);
				break;
			}
			r = fix_subtree(a, &dst, i, j);
			i = j - 1;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			r = copy_nondir(a, sfd, name, &st, dfd, name, what, &links, i, tfd);
			continue;
		}
		r = copy_dir_entry(a, sfd, name, &st, dfd, what, i, pend, &npend);
	}
	while (npend && r >= 0)
		r = finish_dir(a, tfd, &pend[--npend]);
	free(pend);
	free(names);
	free(links.v);
	pcache_done(&src);
	pcache_done(&dst);
	fo_path_clear(&sp);
	return r;
}

static int
dest_error(struct ap *a, int r, const char *path)
{
	if (r == -ENOTDIR)
		return sc_err_set(a->err, r,
				  "%s failed: cannot create directory '%s': a component of it is "
				  "a file",
				  fo_verb(a->op), path);
	fo_resolve_error(a->err, r, path);
	return sc_err_prefix(a->err, r, "%s failed", fo_verb(a->op));
}

/* The destination as a directory, made when missing. */
static int
dest_dir(struct ap *a, struct fo_path *ret)
{
	uid_t u = a->has_owner ? a->uid : 0;
	gid_t g = a->has_owner ? a->gid : 0;
	int r = fo_resolve(a->root, a->dest, FO_MKDIR | FO_FOLLOW_LAST, u, g, NULL, NULL, ret);
	return r < 0 ? dest_error(a, r, a->dest) : 0;
}

/*
 * Where a file named name goes: *ret_dirfd (owned by ret) and *ret_name.
 * dir_mode: the destination is a directory whatever exists.
 */
static int
dest_file(struct ap *a, bool dir_mode, const char *name, struct fo_path *ret, int *ret_dirfd,
	  const char **ret_name)
{
	if (dir_mode) {
		int r = dest_dir(a, ret);
		*ret_dirfd = ret->fd;
		*ret_name = name;
		return r;
	}
	/* BuildKit: the parent is made, then the destination resolved (a symlink followed). */
	_cleanup_free_ char *parent = strdup(a->dest);
	if (!parent)
		return sc_err_set(a->err, -ENOMEM, "out of memory");
	char *slash = strrchr(parent, '/');
	slash[slash == parent ? 1 : 0] = '\0';
	struct fo_path pp;
	uid_t u = a->has_owner ? a->uid : 0;
	gid_t g = a->has_owner ? a->gid : 0;
	int r = fo_resolve(a->root, parent, FO_MKDIR | FO_FOLLOW_LAST, u, g, NULL, NULL, &pp);
	if (r < 0)
		return dest_error(a, r, parent);
	fo_path_clear(&pp);
	r = fo_resolve(a->root, a->dest, FO_FOLLOW_LAST | FO_MISSING_OK, 0, 0, NULL, NULL, ret);
	if (r < 0)
		return dest_error(a, r, a->dest);
	if (ret->fd >= 0 && S_ISDIR(ret->st.st_mode)) {
		*ret_dirfd = ret->fd;
		*ret_name = name;
	} else {
		*ret_dirfd = ret->dirfd;
		*ret_name = ret->name;
	}
	return 0;
}

static int
copy_file_item(struct ap *a, const struct fo_item *it, bool dir_mode)
{
	const struct fo_entry *e = &a->s.e[it->first];
	struct fo_path sp;
	int r = fo_resolve(a->src->root_dirfd, it->path, 0, 0, 0, NULL, NULL, &sp);
	if (r < 0)
		return fo_resolve_error(a->err, r, it->pattern);
	if (a->op->add && S_ISREG(sp.st.st_mode)) {
		_cleanup_close_ int fd =
			openat(sp.dirfd, sp.name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
		if (fd < 0) {
			r = sc_err_setsys(a->err, -errno, "cannot open '%s'", it->pattern);
			goto out;
		}
		r = fo_archive_detect(fd, a->err);
		if (r < 0) {
			r = sc_err_prefix(a->err, r, "ADD '%s'", it->pattern);
			goto out;
		}
		if (r == 1) {
			/* BuildKit: an archive always goes into DEST as a directory. */
			struct fo_path dp;
			r = dest_dir(a, &dp);
			if (r >= 0) {
				r = fo_archive_extract(fd, dp.fd, it->pattern, a->has_owner, a->uid,
						       a->gid, a->err);
				if (r < 0)
					sc_err_prefix(a->err, r, "ADD failed");
			}
			fo_path_clear(&dp);
			goto out;
		}
	}
	struct fo_path dp = {.fd = -EBADF, .dirfd = -EBADF};
	int dfd;
	const char *dname;
	r = dest_file(a, dir_mode, it->name, &dp, &dfd, &dname);
	if (r >= 0) {
		struct stat st;
		if (fstatat(sp.dirfd, sp.name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    (st.st_mode & S_IFMT) != (e->mode & S_IFMT)) {
			r = sc_err_set(a->err, -EAGAIN,
				       "%s failed: '%s' changed while it was copied; run the build "
				       "again",
				       fo_verb(a->op), it->pattern);
		} else {
			char what[FO_MAX_PATH + NAME_MAX + 64];
			if (dfd == dp.fd)
				snprintf(what, sizeof(what), "/%s%s%s", dp.path,
					 *dp.path ? "/" : "", dname);
			else
				snprintf(what, sizeof(what), "/%s", dp.path);
			r = copy_nondir(a, sp.dirfd, sp.name, &st, dfd, dname, what, NULL, 0,
					-EBADF);
		}
	}
	fo_path_clear(&dp);
out:
	fo_path_clear(&sp);
	return r;
}

static int
copy_inline(struct ap *a, const struct bld_inline_source *in, bool dir_mode)
{
	/* BuildKit writes the document to a scratch file first and copies that by its base name. */
	const char *base = strrchr(in->name, '/');
	base = base ? base + 1 : in->name;
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return sc_err_set(a->err, -EINVAL, "%s failed: '%s' is not a file name",
				  fo_verb(a->op), in->name);
	struct fo_path dp = {.fd = -EBADF, .dirfd = -EBADF};
	int dfd;
	const char *dname;
	int r = dest_file(a, dir_mode, base, &dp, &dfd, &dname);
	if (r < 0) {
		fo_path_clear(&dp);
		return r;
	}
	char what[FO_MAX_PATH + NAME_MAX + 64];
	snprintf(what, sizeof(what), "/%s%s%s", dp.path, dfd == dp.fd && *dp.path ? "/" : "",
		 dfd == dp.fd ? dname : "");
	struct stat ds;
	_cleanup_close_ int fd = -EBADF;
	if (fstatat(dfd, dname, &ds, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(ds.st_mode)) {
			r = sc_err_set(a->err, -EISDIR,
				       "%s failed: cannot replace directory '%s' with a file",
				       fo_verb(a->op), what);
			goto out;
		}
		if (unlinkat(dfd, dname, 0) < 0) {
			r = sc_err_setsys(a->err, -errno, "cannot replace '%s'", what);
			goto out;
		}
	}
	fd = openat(dfd, dname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = sc_err_setsys(a->err, -errno, "cannot create '%s'", what);
		goto out;
	}
	const char *p = in->data;
	size_t left = strlen(in->data);
	while (left > 0) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = sc_err_setsys(a->err, -errno, "cannot write '%s'", what);
			goto out;
		}
		p += n;
		left -= (size_t)n;
	}
	/* A heredoc is a 0644 file of root's (BuildKit's Mkfile), then --chown/--chmod. */
	r = meta_at(a, dfd, dname, what, S_IFREG | 0644, 0, 0);
out:
	fo_path_clear(&dp);
	return r;
}

int
bld_copy_apply(const struct bld_copy_source *src, const struct bld_copy_op *op, int dst_root_dirfd,
	       struct sc_err *err)
{
	int r = bld_copy_flags_validate(op->chown, op->chmod, err);
	if (r < 0)
		return r;
	struct ap a = {
		.src = src,
		.op = op,
		.root = dst_root_dirfd,
		.root_user = geteuid() == 0,
		.copts = {.flags = SNAP_COPY_NO_SYNC},
		.err = err,
	};
	r = fo_chmod_parse(op->chmod, &a.chmod, err);
	if (r < 0)
		return r;
	if (op->chown) {
		r = fo_chown_resolve(dst_root_dirfd, op->chown, &a.uid, &a.gid, err);
		if (r < 0)
			return sc_err_prefix(err, r, "%s failed", fo_verb(op));
		a.has_owner = true;
	}
	a.dest = fo_join_abs(op->workdir ? op->workdir : "/", op->dest);
	if (!a.dest)
		return sc_err_set(err, -ENOMEM, "out of memory");
	r = fo_sel_build(src, op, false, NULL, &a.s, err);
	if (r < 0) {
		free(a.dest);
		return r;
	}
	size_t dl = strlen(op->dest);
	bool dir_mode = dl == 0 || op->dest[dl - 1] == '/' || strcmp(op->dest, ".") == 0 ||
			op->nsrcs + op->ninline > 1 || a.s.globbed;
	for (size_t i = 0; i < a.s.nitems && r >= 0; i++) {
		const struct fo_item *it = &a.s.items[i];
		if (it->dir) {
			struct fo_path dp;
			r = dest_dir(&a, &dp);
			if (r >= 0)
				r = copy_dir_item(&a, it, dp.fd);
			fo_path_clear(&dp);
		} else {
			r = copy_file_item(&a, it, dir_mode);
		}
	}
	for (size_t i = 0; i < op->ninline && r >= 0; i++)
		r = copy_inline(&a, &op->inline_srcs[i], dir_mode);
	fo_sel_clear(&a.s);
	free(a.dest);
	return r;
}

int
bld_mkdir_p(int dst_root_dirfd, const char *path, uid_t uid, gid_t gid, struct sc_err *err)
{
	if (!path || path[0] != '/')
		return sc_err_set(err, -EINVAL, "'%s' is not an absolute path", path ? path : "");
	struct fo_path p;
	int r = fo_resolve(dst_root_dirfd, path, FO_MKDIR | FO_FOLLOW_LAST, uid, gid, NULL, NULL,
			   &p);
	if (r == -ENOTDIR)
		return sc_err_set(
			err, r, "cannot create directory '%s': a component of it is a file", path);
	if (r < 0)
		return fo_resolve_error(err, r, path);
	r = p.created ? 1 : 0;
	fo_path_clear(&p);
	return r;
}
