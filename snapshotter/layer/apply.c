/*
 * Layer apply: a layer stream -> files under a directory fd, and the
 * snapshot wrapper that makes the result a committed snapshot.
 *
 * Safety rests on three rules, each enforced where the file system is
 * touched rather than by checking names beforehand:
 *  1. Every name is cleaned first: absolute names and ".." components are
 *     refused (-EXDEV), "." and empty components dropped.
 *  2. A parent folder is opened with openat2(RESOLVE_BENEATH |
 *     RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) relative to the root fd,
 *     so no symlink (from this layer or a lower one) is ever walked through
 *     and nothing outside the root can be reached (-ELOOP, -EXDEV).
 *  3. The last component is created with O_EXCL / mkdirat / symlinkat /
 *     mknodat / linkat, none of which follows a symlink; an existing entry
 *     is removed (without following) and the creation retried.
 * Hard links resolve their target under the same rules, so they only reach
 * files inside the root. Folder times are set last, after their contents.
 *
 * File data goes through the copy engine's batched writer (io_uring, or
 * pwrite when that is off or unusable): a file is created and its bytes
 * handed over here, in stream order, and the writer runs finish_file() (size
 * of a trailing hole, owner, mode, xattrs, times) once the last of its
 * writes completed, possibly while later entries are being created. So a
 * file's metadata is copied out of its tar entry (struct meta) and its path
 * may be replaced meanwhile by a later entry: the writer holds the file's
 * fd, the replaced inode gets its data and metadata and is freed on close.
 * Everything is drained before folder times are set and before success.
 */
#include "archive-lib.h"
#include "mount.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cleanup.h"
#include "content.h"
#include "layer-internal.h"
#include "log.h"
#include "store-internal.h"
#include "util.h"

#define WH_PREFIX     ".wh."
#define WH_META	      ".wh..wh."
#define WH_OPAQUE     ".wh..wh..opq"
#define OVL_OPAQUE    "trusted.overlay.opaque"
#define RESOLVE_FLAGS (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
/*
 * xattr bytes (names and values) kept per file until its data is written: the
 * writer holds up to a queue's worth of files, so this bounds their memory.
 */
#define META_XATTR_MAX (256u << 10)

int
layer_archive_error(struct archive *a, int code, const char *what, struct sc_err *err)
{
	int e = archive_errno(a);
	const char *msg = archive_error_string(a);
	if (code == 0)
		code = e > 0 ? -e : -EBADMSG;
	return sc_err_set(err, code, "%s: %s", what, msg ? msg : sc_strerror(code));
}

static int
openat2_beneath(int dirfd, const char *path, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)flags | O_CLOEXEC,
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_FLAGS,
	};
	long fd;
	do
		fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
	while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	return fd < 0 ? -errno : (int)fd;
}

/* Paths created by this layer (native opaque folders keep these). */
struct strset {
	char **v;
	size_t cap, n;
};

static uint64_t
str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static char **
strset_slot(const struct strset *set, const char *s)
{
	size_t i = (size_t)str_hash(s) & (set->cap - 1);
	while (set->v[i] && strcmp(set->v[i], s) != 0)
		i = (i + 1) & (set->cap - 1);
	return &set->v[i];
}

static bool
strset_has(const struct strset *set, const char *s)
{
	return set->cap && *strset_slot(set, s) != NULL;
}

static int
strset_add(struct strset *set, const char *s)
{
	if ((set->n + 1) * 2 > set->cap) {
		struct strset ns = {.cap = set->cap ? set->cap * 2 : 1024};
		ns.v = calloc(ns.cap, sizeof(*ns.v));
		if (!ns.v)
			return -ENOMEM;
		for (size_t i = 0; i < set->cap; i++)
			if (set->v[i])
				*strset_slot(&ns, set->v[i]) = set->v[i];
		ns.n = set->n;
		free(set->v);
		*set = ns;
	}
	char **slot = strset_slot(set, s);
	if (*slot)
		return 0;
	*slot = strdup(s);
	if (!*slot)
		return -ENOMEM;
	set->n++;
	return 0;
}

static void
strset_clear(struct strset *set)
{
	for (size_t i = 0; i < set->cap; i++)
		free(set->v[i]);
	free(set->v);
	*set = (struct strset){0};
}

struct unpacker {
	int root_fd;
	bool overlay;
	bool root_user;
	bool files_only; /* fifos and device nodes are refused (snap_layer_apply_opts) */
	struct snap_layer_limits lim;
	struct sc_err *err;
	struct archive *a;
	struct layer_zin *zin;
	int cb_error;
	char parent[SNAP_LAYER_PATH_MAX + 1]; /* the cached parent folder */
	int parent_fd;
	/*
	 * What the kernel gives a new entry in the cached parent folder, read
	 * once per folder (parent_facts): its group, and whether a default ACL
	 * rather than the umask shapes its mode.
	 */
	bool facts_known;
	bool default_acl;
	gid_t new_gid;
	int umask; /* the process's (-1: unknown) */
	/*
	 * The folder resolved last, when it resolved to itself (no symlink on
	 * the way): a folder below it resolves from there. An entry on the
	 * way (one that could replace a folder by a symlink) shortens it.
	 */
	char resolved[SNAP_LAYER_PATH_MAX + 1];
	size_t resolved_len;
	/* Folders whose times are set at the end; on native, what this layer created. */
	struct path_tree paths;
	uint64_t implied; /* folders made that no entry named (they count as entries) */
	struct snap_layer_apply_result res;
	uint64_t declared;
	struct snap_copy_writer *w;
	int *lower_fds; /* overlay: lower layers, nearest first (opts->lowers) */
	size_t nlowers;
};

/* Remembers path with flag (and, for PATH_DIR_TIME, its folder's mtime). */
static int
mark_path(struct unpacker *u, const char *path, uint8_t flag, const struct timespec *mtime)
{
	int node = path_tree_add(&u->paths, path, NULL);
	if (node < 0)
		return sc_err_set(u->err, -ENOMEM, "out of memory");
	u->paths.nodes[node].flags |= flag;
	if (mtime)
		u->paths.nodes[node].mtime = *mtime;
	return 0;
}

static bool
path_created(const struct unpacker *u, const char *path)
{
	int node = path_tree_find(&u->paths, path);
	return node >= 0 && (u->paths.nodes[node].flags & PATH_CREATED);
}

static la_ssize_t
read_cb(struct archive *a, void *arg, const void **buf)
{
	struct unpacker *u = arg;
	ssize_t n = layer_zin_read(u->zin, buf, u->err);
	if (n < 0) {
		u->cb_error = (int)n;
		archive_set_error(a, (int)-n, "%s", sc_err_msg(u->err));
		return -1;
	}
	return n;
}

/*
 * Cleans an entry name into out: no leading "./", no "." or empty
 * components. Returns the length (0 for the root itself).
 */
static int
clean_path(struct unpacker *u, const char *in, const char *what, char *out)
{
	if (!in)
		return sc_err_set(u->err, -EINVAL, "layer has an entry without a name");
	if (in[0] == '/')
		return sc_err_set(u->err, -EXDEV,
				  "%s '%.200s' is an absolute path; a layer may only name paths "
				  "inside it",
				  what, in);
	size_t len = 0;
	const char *p = in;
	while (*p) {
		const char *end = strchrnul(p, '/');
		size_t cl = (size_t)(end - p);
		if (cl == 2 && p[0] == '.' && p[1] == '.')
			return sc_err_set(u->err, -EXDEV,
					  "%s '%.200s' climbs out with '..'; a layer may only name "
					  "paths inside it",
					  what, in);
		if (cl > 0 && !(cl == 1 && p[0] == '.')) {
			if (len + (len ? 1 : 0) + cl > u->lim.max_path)
				return sc_err_set(u->err, -ENAMETOOLONG,
						  "%s '%.100s...' is longer than %" PRIu64 " bytes",
						  what, in, u->lim.max_path);
			if (len)
				out[len++] = '/';
			memcpy(out + len, p, cl);
			len += cl;
		}
		p = *end ? end + 1 : end;
	}
	out[len] = '\0';
	return (int)len;
}

static int
resolve_error(struct unpacker *u, int r, const char *path)
{
	if (r == -ELOOP)
		return sc_err_set(u->err, r,
				  "entry '%.200s' lies below a symlink; a layer never writes "
				  "through a symlink",
				  path);
	if (r == -EXDEV)
		return sc_err_set(u->err, r, "entry '%.200s' would leave the layer", path);
	if (r == -ENOTDIR)
		return sc_err_set(u->err, r, "entry '%.200s': a parent is not a folder", path);
	return sc_err_setsys(u->err, r, "cannot open the folder of '%.200s'", path);
}

/*
 * What the tree shows at rel (the layer's own folder first, then the lower
 * layers, nearest first): 1 with *st for something, 0 for nothing (or a
 * whiteout). A symlink's target goes into target.
 */
static int
merged_lookup(struct unpacker *u, const char *rel, struct stat *st, char *target, size_t tlen)
{
	for (size_t i = 0; i <= u->nlowers; i++) {
		int fd = i == 0 ? u->root_fd : u->lower_fds[i - 1];
		if (fstatat(fd, rel, st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue;
			return -errno;
		}
		if (S_ISCHR(st->st_mode) && st->st_rdev == 0)
			return 0; /* a whiteout: gone from here down */
		if (S_ISLNK(st->st_mode)) {
			ssize_t n = readlinkat(fd, rel, target, tlen - 1);
			if (n < 0)
				return -errno;
			target[n] = '\0';
		}
		return 1;
	}
	return 0;
}

/* Overlay: is name in dfd a whiteout (a 0:0 character device)? */
static bool
is_whiteout_at(int dfd, const char *name)
{
	struct stat st;
	return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISCHR(st.st_mode) &&
	       st.st_rdev == 0;
}

/*
 * Overlay: a folder made where this layer whited out what the lower layers
 * had replaces that whiteout, and is opaque: the deleted lower folder's
 * entries must not show through it (on native they are gone already).
 */
static int
replace_whiteout_with_dir(struct unpacker *u, int dfd, const char *base, mode_t mode,
			  const char *path)
{
	if (unlinkat(dfd, base, 0) < 0 || mkdirat(dfd, base, mode) < 0)
		return sc_err_setsys(u->err, -errno, "cannot replace the whiteout of '%.200s'",
				     path);
	int fd = openat2_beneath(dfd, base, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return resolve_error(u, fd, path);
	int r = fsetxattr(fd, OVL_OPAQUE, "y", 1, 0) < 0 ? -errno : 0;
	close(fd);
	return r < 0 ? sc_err_setsys(u->err, r, "cannot mark '%.200s' opaque", path) : 0;
}

/* Opens the folder dir (relative to the root), creating missing folders. */
static int
open_dir_create(struct unpacker *u, const char *dir, const char *entry)
{
	if (!*dir)
		return fcntl(u->root_fd, F_DUPFD_CLOEXEC, 3);
	int fd = openat2_beneath(u->root_fd, dir, O_RDONLY | O_DIRECTORY, 0);
	/* Overlay: a whiteout on the way (ENOTDIR) is a folder deleted earlier in this layer. */
	if (fd != -ENOENT && !(fd == -ENOTDIR && u->overlay))
		return fd < 0 ? resolve_error(u, fd, entry) : fd;
	/* Missing folders on the way: make them one by one (0755, like tar). */
	char buf[SNAP_LAYER_PATH_MAX + 1];
	snprintf(buf, sizeof(buf), "%s", dir);
	int cur = fcntl(u->root_fd, F_DUPFD_CLOEXEC, 3);
	char *p = buf;
	while (cur >= 0 && *p) {
		char *slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		char sofar[SNAP_LAYER_PATH_MAX + 1];
		snprintf(sofar, sizeof(sofar), "%.*s", (int)(p - buf + strlen(p)), dir);
		struct stat lower = {0};
		int lr = 0;
		if (u->overlay && is_whiteout_at(cur, p)) {
			/* Deleted earlier in this layer, implied again: new, 0755, and opaque. */
			int r = replace_whiteout_with_dir(u, cur, p, 0755, sofar);
			if (r < 0) {
				close(cur);
				return r;
			}
		} else if (u->nlowers && faccessat(cur, p, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
			/* Missing here: what the lower layers show (a folder to copy up, or
			 * nothing). */
			char target[PATH_MAX];
			lr = merged_lookup(u, sofar, &lower, target, sizeof(target));
			if (lr == 1 && !S_ISDIR(lower.st_mode))
				lr = S_ISLNK(lower.st_mode) ? -ELOOP : -ENOTDIR;
			if (lr < 0) {
				close(cur);
				return resolve_error(u, lr, entry);
			}
		}
		if (mkdirat(cur, p, lr == 1 ? (lower.st_mode & 07777) : 0755) == 0) {
			if (lr == 1) {
				/* The merged view keeps showing the lower folder's attributes. */
				const struct timespec times[2] = {lower.st_atim, lower.st_mtim};
				if ((u->root_user && fchownat(cur, p, lower.st_uid, lower.st_gid,
							      AT_SYMLINK_NOFOLLOW) < 0) ||
				    fchmodat(cur, p, lower.st_mode & 07777, 0) < 0 ||
				    utimensat(cur, p, times, AT_SYMLINK_NOFOLLOW) < 0) {
					int e = -errno;
					close(cur);
					return sc_err_setsys(
						u->err, e, "cannot copy up folder '%.200s'", sofar);
				}
			}
			/* What is written counts: an implied folder is an entry too. */
			int r = ++u->implied + u->res.entries > u->lim.max_entries
					? sc_err_set(u->err, -E2BIG,
						     "layer has more than %" PRIu64
						     " entries, the folders it implies included; "
						     "raise the limit (--max-entries) if it is "
						     "trusted",
						     u->lim.max_entries)
					: mark_path(u, sofar, PATH_CREATED, NULL);
			if (r < 0) {
				close(cur);
				return r;
			}
		}
		int next = openat2_beneath(cur, p, O_RDONLY | O_DIRECTORY, 0);
		close(cur);
		if (next < 0)
			return resolve_error(u, next, entry);
		cur = next;
		p = slash ? slash + 1 : p + strlen(p);
	}
	return cur;
}

/* Symlinks followed while resolving one entry's folder, as the kernel allows. */
#define RESOLVE_SYMLINKS_MAX 40

/*
 * The folder dir names, with its symlinks resolved inside the root, as
 * RESOLVE_IN_ROOT would on the merged tree: an absolute target starts
 * again at the root, ".." stops there. So an entry below an in-root
 * symlink (bin/tool where a lower layer has bin -> usr/bin) lands where the
 * symlink points (usr/bin/tool), and no symlink leads out. out receives a
 * path with no symlink in it.
 */
#define RESOLVE_STACK_MAX (SNAP_LAYER_PATH_MAX * 2 + 2)

/*
 * Pushes path's components onto the stack (a '/', then path reversed), so
 * that popping yields its first component first. False when it is full.
 */
static bool
push_reversed(char *stack, size_t *len, const char *path)
{
	size_t pl = strlen(path);
	if (*len + pl + 1 >= RESOLVE_STACK_MAX)
		return false;
	stack[(*len)++] = '/';
	for (size_t k = pl; k > 0; k--)
		stack[(*len)++] = path[k - 1];
	return true;
}

static int
resolve_in_root(struct unpacker *u, const char *dir, const char *entry, char *out)
{
	/* rest: the components still to walk, a stack (see push_reversed); out: what is resolved.
	 */
	char rest[RESOLVE_STACK_MAX];
	size_t tl = 0, ol = 0, links = 0;
	out[0] = '\0';
	size_t rl = u->resolved_len;
	bool below = rl && strncmp(dir, u->resolved, rl) == 0 && (dir[rl] == '/' || !dir[rl]);
	if (below) {
		memcpy(out, u->resolved, rl + 1);
		ol = rl;
	}
	if (!push_reversed(rest, &tl, below ? dir + rl : dir))
		return sc_err_set(u->err, -ENAMETOOLONG,
				  "entry '%.200s': its folder resolves to too long a path", entry);
	while (tl > 0) {
		/* Pop one component (stored reversed, up to a '/'). */
		char c[NAME_MAX + 1];
		size_t cl = 0;
		while (tl > 0 && rest[tl - 1] == '/')
			tl--;
		while (tl > 0 && rest[tl - 1] != '/') {
			if (cl == NAME_MAX)
				return sc_err_set(u->err, -ENAMETOOLONG,
						  "entry '%.200s': a folder name is too long",
						  entry);
			c[cl++] = rest[--tl];
		}
		c[cl] = '\0';
		if (cl == 0 || strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0) {
			char *slash = strrchr(out, '/');
			ol = slash ? (size_t)(slash - out) : 0;
			out[ol] = '\0';
			continue;
		}
		if (ol + 1 + cl > SNAP_LAYER_PATH_MAX)
			return sc_err_set(u->err, -ENAMETOOLONG,
					  "entry '%.200s': its folder resolves to too long a path",
					  entry);
		size_t keep = ol;
		if (ol)
			out[ol++] = '/';
		memcpy(out + ol, c, cl + 1);
		ol += cl;
		struct stat st;
		char target[PATH_MAX];
		int r = merged_lookup(u, out, &st, target, sizeof(target));
		if (r < 0)
			return resolve_error(u, r, entry);
		if (r == 0 || S_ISDIR(st.st_mode))
			continue; /* a folder, or one to make */
		if (!S_ISLNK(st.st_mode))
			return resolve_error(u, -ENOTDIR, entry);
		if (++links > RESOLVE_SYMLINKS_MAX)
			return sc_err_set(u->err, -ELOOP,
					  "entry '%.200s': more than %d symlinks on the way to its "
					  "folder",
					  entry, RESOLVE_SYMLINKS_MAX);
		/* Follow: drop the link, walk its target from its folder (or the root). */
		ol = target[0] == '/' ? 0 : keep;
		out[ol] = '\0';
		if (!push_reversed(rest, &tl, target))
			return sc_err_set(u->err, -ENAMETOOLONG,
					  "entry '%.200s': its folder resolves to too long a path",
					  entry);
	}
	if (links == 0 && strcmp(out, dir) == 0) {
		memcpy(u->resolved, out, ol + 1);
		u->resolved_len = ol;
	}
	return 0;
}

/* An entry at path may replace a folder on the way to the one resolved last. */
static void
forget_resolved(struct unpacker *u, const char *path)
{
	size_t pl = strlen(path);
	if (pl > u->resolved_len || strncmp(u->resolved, path, pl) != 0 ||
	    (u->resolved[pl] != '/' && u->resolved[pl] != '\0'))
		return;
	const char *slash = strrchr(path, '/');
	u->resolved_len = slash ? (size_t)(slash - path) : 0;
	u->resolved[u->resolved_len] = '\0';
}

/* The folder holding path (cached: layers are sorted, so it rarely changes). */
static int
parent_fd(struct unpacker *u, const char *path, const char **ret_base)
{
	const char *slash = strrchr(path, '/');
	size_t dl = slash ? (size_t)(slash - path) : 0;
	*ret_base = slash ? slash + 1 : path;
	if (u->parent_fd >= 0 && strlen(u->parent) == dl && memcmp(u->parent, path, dl) == 0)
		return u->parent_fd;
	if (u->parent_fd >= 0)
		close(u->parent_fd);
	u->parent_fd = -EBADF;
	char dir[SNAP_LAYER_PATH_MAX + 1], real[SNAP_LAYER_PATH_MAX + 1];
	memcpy(dir, path, dl);
	dir[dl] = '\0';
	int r = resolve_in_root(u, dir, path, real);
	int fd = r < 0 ? r : open_dir_create(u, real, path);
	if (fd < 0)
		return fd;
	memcpy(u->parent, dir, dl + 1);
	u->parent_fd = fd;
	u->facts_known = false;
	return fd;
}

static void
forget_parent(struct unpacker *u)
{
	if (u->parent_fd >= 0)
		close(u->parent_fd);
	u->parent_fd = -EBADF;
	u->parent[0] = '\0';
	u->facts_known = false;
}

/* Reads what new entries in dfd, the cached parent, are given; false if it cannot tell. */
static bool
parent_facts(struct unpacker *u, int dfd)
{
	if (dfd != u->parent_fd || dfd < 0)
		return false;
	if (!u->facts_known) {
		struct stat st;
		if (fstat(dfd, &st) < 0)
			return false;
		/* The folder's group where it is set-group-id, else ours. */
		u->new_gid = (st.st_mode & S_ISGID) ? st.st_gid : getegid();
		u->default_acl = fgetxattr(dfd, "system.posix_acl_default", NULL, 0) >= 0 ||
				 (errno != ENODATA && errno != EOPNOTSUPP);
		u->facts_known = true;
	}
	return true;
}

/* Does a new entry in dfd already belong to uid:gid (so no chown is needed)? */
static bool
new_owner_is(struct unpacker *u, int dfd, uid_t uid, gid_t gid)
{
	if (!u->root_user)
		return true; /* never chowned */
	return parent_facts(u, dfd) && uid == 0 && gid == u->new_gid;
}

/*
 * Does a new file in dfd made with mode perm get exactly perm (so no chmod
 * is needed)? Not with set-id bits, bits the umask takes, or a default ACL.
 */
static bool
new_mode_is(struct unpacker *u, int dfd, mode_t perm)
{
	return u->umask >= 0 && !(perm & (07000 | (mode_t)u->umask)) && parent_facts(u, dfd) &&
	       !u->default_acl;
}

/* Removes whatever is at base (a folder with its contents), never following a symlink. */
static int
remove_existing(struct unpacker *u, int dfd, const char *base, const char *path)
{
	struct stat st;
	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0
				       : sc_err_setsys(u->err, -errno, "cannot stat '%s'", path);
	int r = 0;
	if (S_ISDIR(st.st_mode)) {
		/* The cached folder may be inside what goes (never dfd itself: it is its parent).
		 */
		size_t pl = strlen(path);
		if (strncmp(u->parent, path, pl) == 0 && (u->parent[pl] == '/' || !u->parent[pl]))
			forget_parent(u);
		r = sc_rm_rf_at(dfd, base);
	} else if (unlinkat(dfd, base, 0) < 0) {
		r = -errno;
	}
	return r < 0 ? sc_err_setsys(u->err, r, "cannot replace '%s'", path) : 0;
}

static bool
xattr_allowed(const char *name)
{
	if (strncmp(name, "trusted.overlay.", 16) == 0)
		return false;
	return strncmp(name, "user.", 5) == 0 || strncmp(name, "security.", 9) == 0 ||
	       strncmp(name, "trusted.", 8) == 0;
}

/* What of an entry is set after its contents: owner, mode, xattrs (allowed ones), times. */
struct meta {
	uid_t uid;
	gid_t gid;
	mode_t perm;
	bool as_created; /* owner and mode were right from creation */
	struct timespec ts[2];
	size_t nxattrs;
	char *xattrs; /* nxattrs times: name, '\0', uint32_t length, value */
};

static void entry_times(struct archive_entry *e, struct timespec ts[2]);

static int
meta_from_entry(struct unpacker *u, struct archive_entry *e, const char *path, struct meta *m)
{
	*m = (struct meta){
		.uid = (uid_t)archive_entry_uid(e),
		.gid = (gid_t)archive_entry_gid(e),
		.perm = archive_entry_perm(e) & 07777,
	};
	entry_times(e, m->ts);
	const char *name;
	const void *val;
	size_t len, total = 0;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &val, &len) == ARCHIVE_OK)
		if (xattr_allowed(name))
			total += strlen(name) + 1 + sizeof(uint32_t) + len;
	if (total == 0)
		return 0;
	if (total > META_XATTR_MAX)
		return sc_err_set(u->err, -E2BIG, "entry '%.200s' has more than %u KiB of xattrs",
				  path, META_XATTR_MAX >> 10);
	char *p = m->xattrs = malloc(total);
	if (!p)
		return sc_err_set(u->err, -ENOMEM, "out of memory");
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &val, &len) == ARCHIVE_OK) {
		if (!xattr_allowed(name))
			continue;
		uint32_t l = (uint32_t)len;
		size_t nl = strlen(name) + 1;
		memcpy(p, name, nl);
		memcpy(p + nl, &l, sizeof(l));
		memcpy(p + nl + sizeof(l), val, len);
		p += nl + sizeof(l) + len;
		m->nxattrs++;
	}
	return 0;
}

static void
meta_clear(struct meta *m)
{
	free(m->xattrs);
	m->xattrs = NULL;
	m->nxattrs = 0;
}

/* Owner, then mode (chown clears set-id bits), then xattrs; times are the caller's. */
static int
meta_apply(const struct meta *m, bool root_user, int fd, const char *path, struct sc_err *err)
{
	if (!m->as_created && root_user && fchown(fd, m->uid, m->gid) < 0)
		return sc_err_setsys(err, -errno, "cannot set the owner of '%s'", path);
	if (!m->as_created && fchmod(fd, m->perm) < 0)
		return sc_err_setsys(err, -errno, "cannot set the mode of '%s'", path);
	const char *p = m->xattrs;
	for (size_t i = 0; i < m->nxattrs; i++) {
		const char *name = p;
		size_t nl = strlen(name) + 1;
		uint32_t len;
		memcpy(&len, p + nl, sizeof(len));
		const char *val = p + nl + sizeof(len);
		p = val + len;
		if (fsetxattr(fd, name, val, len, 0) < 0 && errno != ENOTSUP)
			return sc_err_setsys(err, -errno, "cannot set xattr '%s' on '%s'", name,
					     path);
	}
	return 0;
}

static void
entry_times(struct archive_entry *e, struct timespec ts[2])
{
	ts[1] = (struct timespec){archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
	if (archive_entry_atime_is_set(e))
		ts[0] = (struct timespec){archive_entry_atime(e), archive_entry_atime_nsec(e)};
	else
		ts[0] = ts[1];
}

/* A regular file waiting for its data to be written (owned by the writer once begun). */
struct pending_file {
	struct meta meta;
	bool root_user;
	uint64_t size; /* declared */
	uint64_t end;  /* end of the data seen; set until the writer's end */
	char path[];
};

/* The writer's finish callback: the data is on disk (status 0), or the file is abandoned. */
static int
finish_file(void *arg, int fd, int status, struct sc_err *err)
{
	struct pending_file *pf = arg;
	int r = 0;
	if (status == 0) {
		/* A sparse entry may end in a hole: only a size. */
		if (pf->size > pf->end && ftruncate(fd, (off_t)pf->size) < 0)
			r = sc_err_setsys(err, -errno, "cannot size '%s'", pf->path);
		if (r >= 0)
			r = meta_apply(&pf->meta, pf->root_user, fd, pf->path, err);
		if (r >= 0 && futimens(fd, pf->meta.ts) < 0)
			r = sc_err_setsys(err, -errno, "cannot set the times of '%s'", pf->path);
	}
	meta_clear(&pf->meta);
	free(pf);
	return r;
}

static int
unpack_file(struct unpacker *u, struct archive_entry *e, int dfd, const char *base,
	    const char *path)
{
	/* Made with its final owner and mode where the kernel gives them: no chown, no chmod. */
	mode_t perm = archive_entry_perm(e) & 07777;
	bool exact =
		new_owner_is(u, dfd, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e)) &&
		new_mode_is(u, dfd, perm);
	int fd = -EBADF;
	for (int tries = 0; tries < 2; tries++) {
		fd = openat2_beneath(dfd, base, O_WRONLY | O_CREAT | O_EXCL, exact ? perm : 0600);
		if (fd != -EEXIST)
			break;
		int r = remove_existing(u, dfd, base, path);
		if (r < 0)
			return r;
	}
	if (fd < 0)
		return resolve_error(u, fd, path);
	_cleanup_close_ int f = fd;
	size_t pl = strlen(path) + 1;
	struct pending_file *pf = malloc(sizeof(*pf) + pl);
	if (!pf)
		return sc_err_set(u->err, -ENOMEM, "out of memory");
	memcpy(pf->path, path, pl);
	pf->root_user = u->root_user;
	int64_t size = archive_entry_size(e);
	pf->size = size > 0 ? (uint64_t)size : 0;
	pf->end = 0;
	int r = meta_from_entry(u, e, path, &pf->meta);
	if (r < 0) {
		free(pf);
		return r;
	}
	pf->meta.as_created = exact;
	/* From here the writer owns fd and pf, whatever happens. */
	r = snap_copy_writer_begin(u->w, TAKE_FD(f), path, finish_file, pf, u->err);
	if (r < 0)
		return r;
	const void *buf;
	size_t len;
	la_int64_t off;
	int ar;
	uint64_t written = 0;
	while ((ar = archive_read_data_block(u->a, &buf, &len, &off)) == ARCHIVE_OK) {
		/*
		 * A sparse map is the archive's word too: data must lie within the
		 * entry's size and add up to no more than it, so what is written
		 * (and the file's apparent size) is what the limits counted.
		 */
		if (off < 0 || (uint64_t)off > pf->size || len > pf->size - (uint64_t)off ||
		    (written += len) > pf->size)
			return sc_err_set(u->err, -EBADMSG,
					  "malformed entry '%s': its sparse map places data past "
					  "its size of %" PRIu64 " bytes",
					  path, pf->size);
		if ((u->res.bytes += len) > u->lim.max_bytes)
			return sc_err_set(u->err, -EFBIG,
					  "layer writes more than %" PRIu64
					  " bytes of files; raise the limit (--max-size) if it is "
					  "trusted",
					  u->lim.max_bytes);
		r = snap_copy_writer_write(u->w, buf, len, (uint64_t)off, u->err);
		if (r < 0)
			return r;
		if ((uint64_t)off + len > pf->end)
			pf->end = (uint64_t)off + len;
	}
	if (ar != ARCHIVE_EOF) {
		if (u->cb_error)
			return u->cb_error;
		return layer_archive_error(u->a, -EBADMSG, path, u->err);
	}
	return snap_copy_writer_end(u->w, u->err);
}

static int
unpack_dir(struct unpacker *u, struct archive_entry *e, int dfd, const char *base, const char *path)
{
	if (mkdirat(dfd, base, 0700) < 0) {
		if (errno != EEXIST)
			return sc_err_setsys(u->err, -errno, "cannot create folder '%s'", path);
		struct stat st;
		if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return sc_err_setsys(u->err, -errno, "cannot stat '%s'", path);
		if (u->overlay && S_ISCHR(st.st_mode) && st.st_rdev == 0) {
			int r = replace_whiteout_with_dir(u, dfd, base, 0700, path);
			if (r < 0)
				return r;
		} else if (!S_ISDIR(st.st_mode)) {
			int r = remove_existing(u, dfd, base, path);
			if (r < 0)
				return r;
			if (mkdirat(dfd, base, 0700) < 0)
				return sc_err_setsys(u->err, -errno, "cannot create folder '%s'",
						     path);
		}
	}
	int fd = openat2_beneath(dfd, base, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return resolve_error(u, fd, path);
	_cleanup_close_ int f = fd;
	u->facts_known = false; /* it may be the cached parent, its group or ACL about to change */
	struct meta m;
	int r = meta_from_entry(u, e, path, &m);
	if (r >= 0)
		r = meta_apply(&m, u->root_user, f, path, u->err);
	meta_clear(&m);
	if (r < 0)
		return r;
	struct timespec ts[2];
	entry_times(e, ts);
	return mark_path(u, path, PATH_DIR_TIME, &ts[1]);
}

/* Symlinks, hard links, devices and fifos: created by name, then their metadata. */
static int
unpack_other(struct unpacker *u, struct archive_entry *e, int dfd, const char *base,
	     const char *path)
{
	mode_t type = archive_entry_filetype(e);
	const char *hl = archive_entry_hardlink(e);
	char target[SNAP_LAYER_PATH_MAX + 1];
	int tfd = -EBADF;
	const char *tbase = NULL;
	if (hl) {
		if (hl[0] == '/')
			return sc_err_set(u->err, -EXDEV,
					  "hard link '%.200s' targets '%.200s', outside the layer",
					  path, hl);
		int r = clean_path(u, hl, "hard link target", target);
		if (r < 0)
			return r;
		if (r == 0)
			return sc_err_set(u->err, -EINVAL, "hard link '%.200s' targets the root",
					  path);
		const char *slash = strrchr(target, '/');
		tbase = slash ? slash + 1 : target;
		if (slash) {
			*(char *)slash = '\0';
			tfd = openat2_beneath(u->root_fd, target, O_RDONLY | O_DIRECTORY, 0);
			*(char *)slash = '/';
		} else {
			tfd = fcntl(u->root_fd, F_DUPFD_CLOEXEC, 3);
		}
		if (tfd < 0)
			return tfd == -ENOENT ? sc_err_set(u->err, -ENOENT,
							   "hard link '%.200s' targets '%.200s', "
							   "which is not "
							   "in the layer",
							   path, hl)
					      : resolve_error(u, tfd, target);
	}
	_cleanup_close_ int tfd_c = tfd;
	if (!hl && (type == AE_IFCHR || type == AE_IFBLK) && !u->root_user) {
		sc_debug("skipping device node '%s': not root", path);
		return 0;
	}
	for (int tries = 0; tries < 2; tries++) {
		int rc;
		if (hl)
			rc = linkat(tfd, tbase, dfd, base, 0);
		else if (type == AE_IFLNK)
			rc = symlinkat(archive_entry_symlink(e) ? archive_entry_symlink(e) : "",
				       dfd, base);
		else if (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO)
			rc = mknodat(dfd, base,
				     (type == AE_IFCHR	 ? S_IFCHR
				      : type == AE_IFBLK ? S_IFBLK
							 : S_IFIFO) |
					     0600,
				     type == AE_IFIFO ? 0 : archive_entry_rdev(e));
		else
			return sc_err_set(u->err, -EOPNOTSUPP,
					  "entry '%.200s' has a type a layer cannot hold (%o)",
					  path, (unsigned)type);
		if (rc == 0)
			break;
		if (errno == ENOENT && hl)
			return sc_err_set(
				u->err, -ENOENT,
				"hard link '%.200s' targets '%.200s', which is not in the "
				"layer",
				path, hl);
		if (errno == EPERM && hl)
			return sc_err_set(
				u->err, -EPERM,
				"hard link '%.200s' targets '%.200s', which cannot be linked "
				"(a folder?)",
				path, hl);
		if (errno != EEXIST || tries == 1)
			return sc_err_setsys(u->err, -errno, "cannot create '%.200s'", path);
		int r = remove_existing(u, dfd, base, path);
		if (r < 0)
			return r;
	}
	if (hl)
		return 0; /* a hard link shares its target's metadata */
	uid_t uid = (uid_t)archive_entry_uid(e);
	gid_t gid = (gid_t)archive_entry_gid(e);
	if (u->root_user && !new_owner_is(u, dfd, uid, gid) &&
	    fchownat(dfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return sc_err_setsys(u->err, -errno, "cannot set the owner of '%s'", path);
	if (type != AE_IFLNK && fchmodat(dfd, base, archive_entry_perm(e) & 07777, 0) < 0)
		return sc_err_setsys(u->err, -errno, "cannot set the mode of '%s'", path);
	struct timespec ts[2];
	entry_times(e, ts);
	if (utimensat(dfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return sc_err_setsys(u->err, -errno, "cannot set the times of '%s'", path);
	return 0;
}

/* Native opaque folder: drop what the lower layers had in it. */
static int
clear_lower_children(struct unpacker *u, int dfd, const char *dir)
{
	int dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!d) {
		if (dup_fd >= 0)
			close(dup_fd);
		return sc_err_setsys(u->err, -errno, "cannot read folder '%s'", dir);
	}
	struct dirent *de;
	int r = 0;
	while (r >= 0 && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char p[SNAP_LAYER_PATH_MAX + NAME_MAX + 2];
		snprintf(p, sizeof(p), "%s%s%s", dir, *dir ? "/" : "", de->d_name);
		if (!path_created(u, p))
			r = remove_existing(u, dfd, de->d_name, p);
	}
	closedir(d);
	return r;
}

/*
 * Overlay, an opaque marker at the layer's root: overlay ignores an opaque
 * upper root, so each entry the lower layers show there (and this layer has
 * not made) gets a whiteout instead, as native deletes them.
 */
static int
whiteout_lower_root(struct unpacker *u, int dfd)
{
	struct strset seen = {0}; /* names a nearer layer decided (shown or whited out) */
	int r = 0;
	for (size_t i = 0; r >= 0 && i < u->nlowers; i++) {
		int lfd = openat(u->lower_fds[i], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
		if (!d) {
			if (lfd >= 0)
				close(lfd);
			r = sc_err_setsys(u->err, -errno, "cannot read a lower layer's root");
			break;
		}
		struct dirent *de;
		while (r >= 0 && (de = readdir(d))) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
			    strset_has(&seen, de->d_name))
				continue;
			if (strset_add(&seen, de->d_name) < 0) {
				r = sc_err_set(u->err, -ENOMEM, "out of memory");
				break;
			}
			if (is_whiteout_at(dirfd(d), de->d_name) ||
			    faccessat(dfd, de->d_name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
				continue; /* hidden already, or this layer's own */
			if (mknodat(dfd, de->d_name, S_IFCHR | 0, makedev(0, 0)) < 0)
				r = sc_err_setsys(u->err, -errno, "cannot create whiteout for '%s'",
						  de->d_name);
		}
		closedir(d);
	}
	strset_clear(&seen);
	return r;
}

static int
unpack_whiteout(struct unpacker *u, struct archive_entry *e, int dfd, const char *base,
		const char *path)
{
	char dir[SNAP_LAYER_PATH_MAX + 1];
	size_t dl = (size_t)(base - path);
	snprintf(dir, sizeof(dir), "%.*s", dl ? (int)dl - 1 : 0, path);
	if (strcmp(base, WH_OPAQUE) == 0) {
		if (!u->overlay)
			return clear_lower_children(u, dfd, dir);
		if (!*dir)
			return whiteout_lower_root(u, dfd);
		if (fsetxattr(dfd, OVL_OPAQUE, "y", 1, 0) < 0)
			return sc_err_setsys(u->err, -errno, "cannot mark '%s' opaque",
					     *dir ? dir : "/");
		return 0;
	}
	if (strncmp(base, WH_META, strlen(WH_META)) == 0)
		return 0; /* other AUFS metadata (.wh..wh.plnk...) means nothing here */
	const char *name = base + strlen(WH_PREFIX);
	if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strchr(name, '/'))
		return sc_err_set(u->err, -EINVAL, "whiteout '%.200s' names nothing", path);
	char victim[SNAP_LAYER_PATH_MAX + NAME_MAX + 2];
	snprintf(victim, sizeof(victim), "%s%s%s", dir, *dir ? "/" : "", name);
	int r = remove_existing(u, dfd, name, victim);
	if (r < 0 || !u->overlay)
		return r;
	if (mknodat(dfd, name, S_IFCHR | 0, makedev(0, 0)) < 0)
		return sc_err_setsys(u->err, -errno, "cannot create whiteout for '%s'", victim);
	if (u->root_user)
		(void)fchownat(dfd, name, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e),
			       AT_SYMLINK_NOFOLLOW);
	return 0;
}

static int
unpack_entry(struct unpacker *u, struct archive_entry *e)
{
	char path[SNAP_LAYER_PATH_MAX + 1];
	if (++u->res.entries > u->lim.max_entries)
		return sc_err_set(u->err, -E2BIG,
				  "layer has more than %" PRIu64
				  " entries; raise the limit (--max-entries) if it is trusted",
				  u->lim.max_entries);
	int len = clean_path(u, archive_entry_pathname(e), "entry", path);
	if (len < 0)
		return len;
	/* An id chown() cannot take ((uid_t)-1 means "unchanged") is refused, not truncated. */
	la_int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
	if (uid < 0 || uid >= (la_int64_t)UINT32_MAX || gid < 0 || gid >= (la_int64_t)UINT32_MAX)
		return sc_err_set(u->err, -EINVAL,
				  "entry '%.200s' has owner %lld:%lld; ids are 0 to %u", path,
				  (long long)uid, (long long)gid, UINT32_MAX - 1);
	/* Folders nested, counting the entry if it is one: what a diff can walk again. */
	size_t depth = archive_entry_filetype(e) == AE_IFDIR;
	for (const char *p = path; (p = strchr(p, '/')); p++)
		depth++;
	if (depth > SNAP_LAYER_DEPTH_MAX)
		return sc_err_set(u->err, -ELOOP,
				  "entry '%.100s...' nests more than %d folders deep", path,
				  SNAP_LAYER_DEPTH_MAX);
	int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
	if (size < 0 || (u->declared += (uint64_t)size) > u->lim.max_bytes)
		return sc_err_set(u->err, -EFBIG,
				  "layer holds more than %" PRIu64
				  " bytes of files; raise the limit (--max-size) if it is trusted",
				  u->lim.max_bytes);
	if (len == 0)
		return 0; /* the root folder itself: it is the snapshot's */
	forget_resolved(u, path);
	const char *base;
	int dfd = parent_fd(u, path, &base);
	if (dfd < 0)
		return dfd;
	if (strncmp(base, WH_PREFIX, strlen(WH_PREFIX)) == 0)
		return unpack_whiteout(u, e, dfd, base, path);
	mode_t type = archive_entry_filetype(e);
	if (type == AE_IFCHR && !archive_entry_hardlink(e) && archive_entry_rdev(e) == 0)
		return sc_err_set(u->err, -EINVAL,
				  "entry '%.200s' is a character device 0:0, which overlay reads "
				  "as a whiteout; a layer deletes with a .wh. entry",
				  path);
	if (u->files_only && !archive_entry_hardlink(e) &&
	    (type == AE_IFIFO || type == AE_IFCHR || type == AE_IFBLK))
		return sc_err_set(u->err, -EINVAL,
				  "entry '%s' is a %s; an image archive holds only files, folders "
				  "and links",
				  path, type == AE_IFIFO ? "fifo" : "device node");
	int r;
	if (archive_entry_hardlink(e))
		r = unpack_other(u, e, dfd, base, path);
	else if (type == AE_IFREG)
		r = unpack_file(u, e, dfd, base, path);
	else if (type == AE_IFDIR)
		r = unpack_dir(u, e, dfd, base, path);
	else
		r = unpack_other(u, e, dfd, base, path);
	if (r >= 0 && !u->overlay)
		r = mark_path(u, path, PATH_CREATED, NULL);
	return r;
}

static int
set_dir_times(struct unpacker *u)
{
	/* Deepest first is not needed: setting a folder's times touches no parent. */
	char path[SNAP_LAYER_PATH_MAX + 1];
	for (size_t i = 0; i < u->paths.n; i++) {
		const struct path_node *n = &u->paths.nodes[i];
		if (!(n->flags & PATH_DIR_TIME) ||
		    path_tree_path(&u->paths, (uint32_t)i, path, sizeof(path)) == 0)
			continue;
		int fd = openat2_beneath(u->root_fd, path, O_RDONLY | O_DIRECTORY, 0);
		/* Removed by a later whiteout, or replaced by a later entry (a file, a symlink). */
		if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP)
			continue;
		if (fd < 0)
			return resolve_error(u, fd, path);
		struct timespec ts[2] = {n->mtime, n->mtime};
		int rc = futimens(fd, ts);
		close(fd);
		if (rc < 0)
			return sc_err_setsys(u->err, -errno, "cannot set the times of '%s'", path);
	}
	return 0;
}

static void
close_lowers(struct unpacker *u)
{
	for (size_t i = 0; i < u->nlowers; i++)
		close(u->lower_fds[i]);
	free(u->lower_fds);
	u->lower_fds = NULL;
	u->nlowers = 0;
}

int
snap_layer_unpack(int fd, int dirfd, bool overlay, const struct snap_layer_apply_opts *opts,
		  snap_layer_sink_fn tee_fn, void *tee_arg, struct snap_layer_apply_result *ret,
		  struct sc_err *err)
{
	struct unpacker u = {
		.root_fd = dirfd,
		.overlay = overlay,
		.root_user = geteuid() == 0,
		.err = err,
		.parent_fd = -EBADF,
		.umask = sc_umask(),
	};
	if (opts) {
		u.lim = opts->limits;
		u.files_only = opts->files_only;
	}
	if (!u.lim.max_entries)
		u.lim.max_entries = SNAP_LAYER_MAX_ENTRIES_DEFAULT;
	if (!u.lim.max_bytes)
		u.lim.max_bytes = SNAP_LAYER_MAX_BYTES_DEFAULT;
	if (!u.lim.max_path || u.lim.max_path > SNAP_LAYER_PATH_MAX)
		u.lim.max_path = SNAP_LAYER_PATH_MAX;
	if (overlay && opts && opts->nlowers) {
		u.lower_fds = calloc(opts->nlowers, sizeof(int));
		if (!u.lower_fds)
			return sc_err_set(err, -ENOMEM, "out of memory");
		for (size_t i = 0; i < opts->nlowers; i++) {
			int lfd = open(opts->lowers[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (lfd < 0) {
				int e = -errno;
				close_lowers(&u);
				return sc_err_setsys(err, e, "cannot open lower layer '%s'",
						     opts->lowers[i]);
			}
			u.lower_fds[u.nlowers++] = lfd;
		}
	}
	int r = snap_copy_writer_new(opts ? &opts->copy : NULL, &u.w, err);
	if (r < 0) {
		close_lowers(&u);
		return r;
	}
	r = layer_zin_new(fd, tee_fn, tee_arg, &u.zin, err);
	if (r < 0) {
		snap_copy_writer_free(u.w);
		close_lowers(&u);
		return r;
	}
	u.res.compression = layer_zin_compression(u.zin);
	/* Every uncompressed byte counts, the tar's headers and whatever follows its end too. */
	layer_zin_set_limit(u.zin, u.lim.max_bytes);
	/* Decompressing on one core while this one makes the files. */
	r = layer_zin_start(u.zin, err);
	if (r < 0) {
		layer_zin_free(u.zin);
		snap_copy_writer_free(u.w);
		close_lowers(&u);
		return r;
	}
	u.a = archive_read_new();
	if (!u.a) {
		layer_zin_free(u.zin);
		snap_copy_writer_free(u.w);
		close_lowers(&u);
		return sc_err_set(err, -ENOMEM, "out of memory");
	}
	archive_read_support_format_tar(u.a);
	if (archive_read_open(u.a, &u, NULL, read_cb, NULL) != ARCHIVE_OK)
		r = u.cb_error ? u.cb_error
			       : layer_archive_error(u.a, -EBADMSG, "layer is not a tar", err);
	while (r >= 0) {
		struct archive_entry *e;
		int ar = archive_read_next_header(u.a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar == ARCHIVE_WARN) {
			sc_debug("layer: %s", archive_error_string(u.a));
		} else if (ar != ARCHIVE_OK) {
			r = u.cb_error
				    ? u.cb_error
				    : layer_archive_error(u.a, -EBADMSG, "corrupt layer tar", err);
			break;
		}
		r = unpack_entry(&u, e);
	}
	if (r >= 0)
		r = snap_copy_writer_drain(u.w, err);
	/* Nothing in flight after this, also on failure: the caller may remove the tree. */
	u.w = snap_copy_writer_free(u.w);
	if (r >= 0)
		r = set_dir_times(&u);
	if (r >= 0)
		r = layer_zin_finish(u.zin, u.res.diff_id, err);
	if (r >= 0 && opts && opts->expected_diff_id &&
	    strcmp(opts->expected_diff_id, u.res.diff_id) != 0)
		r = sc_err_set(err, -EBADMSG,
			       "layer content does not match its diff id: expected %s, got %s",
			       opts->expected_diff_id, u.res.diff_id);
	archive_read_free(u.a);
	layer_zin_free(u.zin);
	forget_parent(&u);
	path_tree_clear(&u.paths);
	close_lowers(&u);
	if (r >= 0 && ret)
		*ret = u.res;
	return r;
}

static int
tee_sink(void *arg, const void *data, size_t len, struct sc_err *err)
{
	return snap_content_write(arg, data, len, err);
}

/* A layer being applied in steps (snap_layer_job_new). */
struct snap_layer_job {
	struct snap_store *s;
	char key[96];
	char *name;
	char dir[PATH_MAX];
	int dfd;
	bool on_parent;
	struct snap_layer_apply_opts opts; /* opts.tee: the job's until committed */
	struct snap_layer_apply_result res;
	pthread_t syncer;
	bool syncing; /* the syncer runs */
	bool synced;
	int sync_errno;
	struct snap_usage usage; /* measured after the sync; id 0: not */
	uint64_t id;
};

/* Syncs the job's file system, then measures its snapshot for the commit. */
static void *
sync_thread(void *arg)
{
	struct snap_layer_job *job = arg;
	job->sync_errno = syncfs(job->dfd) < 0 ? errno : 0;
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/snapshots/%" PRIu64, snap_store_root(job->s), job->id);
	if (!job->sync_errno && snap_du(AT_FDCWD, dir, &job->usage.bytes, &job->usage.inodes) >= 0)
		job->usage.id = job->id;
	return NULL;
}

int
snap_layer_job_synced(struct snap_layer_job *job, struct sc_err *err)
{
	if (job->syncing) {
		pthread_join(job->syncer, NULL);
		job->syncing = false;
		job->synced = true;
	} else if (!job->synced) {
		sync_thread(job); /* no thread could start: here, then */
		job->synced = true;
	}
	if (job->sync_errno)
		return sc_err_setsys(err, -job->sync_errno, "cannot sync '%s'", job->dir);
	return 0;
}

static void
job_free(struct snap_layer_job *job)
{
	if (job->syncing)
		pthread_join(job->syncer, NULL);
	if (job->dfd >= 0)
		close(job->dfd);
	snap_content_abort(job->opts.tee);
	free(job->name);
	free(job);
}

int
snap_layer_job_new(struct snap_store *s, const char *parent, const char *name,
		   const struct snap_layer_apply_opts *opts, struct snap_layer_job **ret,
		   struct sc_err *err)
{
	struct snap_content_writer *tee = opts ? opts->tee : NULL;
	int r = snap_key_validate(name, err);
	if (r < 0) {
		snap_content_abort(tee);
		return r;
	}
	struct snap_info info = {0};
	if (snap_snapshot_stat(s, name, &info, NULL) == 0) {
		snap_info_clear(&info);
		snap_content_abort(tee);
		return sc_err_set(err, -EEXIST, "snapshot '%s' already exists", name);
	}
	struct snap_layer_job *job = calloc(1, sizeof(*job));
	if (job)
		job->name = strdup(name);
	if (!job || !job->name) {
		free(job);
		snap_content_abort(tee);
		return sc_err_set(err, -ENOMEM, "out of memory");
	}
	job->s = s;
	job->dfd = -EBADF;
	job->on_parent = parent && *parent;
	if (opts)
		job->opts = *opts;
	char rnd[17];
	sc_random_hex(rnd, 8);
	snprintf(job->key, sizeof(job->key), "apply.%d.%s", (int)getpid(), rnd);
	/* Gone with us if we are killed; on another job's snapshot if that is the parent. */
	const struct snap_prepare_opts po = {.owned = true, .parent_in_progress = true};
	r = snap_snapshot_prepare(s, job->key, parent, SNAP_KIND_ACTIVE, &po, &info, err);
	if (r < 0) {
		job_free(job);
		return r;
	}
	snprintf(job->dir, sizeof(job->dir), "%s/snapshots/%" PRIu64 "/fs", snap_store_root(s),
		 info.id);
	job->id = info.id;
	snap_info_clear(&info);
	job->dfd = open(job->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (job->dfd < 0) {
		r = sc_err_setsys(err, -errno, "cannot open '%s'", job->dir);
		snap_layer_job_cancel(job);
		return r;
	}
	*ret = job;
	return 0;
}

const char *
snap_layer_job_key(const struct snap_layer_job *job)
{
	return job->key;
}

int
snap_layer_job_unpack(struct snap_layer_job *job, int fd, struct sc_err *err)
{
	struct snap_store *s = job->s;
	bool overlay = strcmp(snap_store_driver_name(s), "overlay") == 0;
	/* Overlay: the upper folder alone does not show what the lower layers hold. */
	struct snap_layer_apply_opts with_lowers = job->opts;
	struct snap_mounts m = {0};
	int r = 0;
	if (overlay && job->on_parent) {
		r = snap_snapshot_mounts(s, job->key, &m, err);
		if (r >= 0 && m.n == 1 && m.v[0].nlowers) {
			with_lowers.lowers = (const char *const *)m.v[0].lowers;
			with_lowers.nlowers = m.v[0].nlowers;
		}
	}
	struct snap_content_writer *tee = job->opts.tee;
	if (r >= 0)
		r = snap_layer_unpack(fd, job->dfd, overlay, &with_lowers, tee ? tee_sink : NULL,
				      tee, &job->res, err);
	snap_mounts_clear(&m);
	if (r < 0)
		return r;
	/* Its writes go to the disk while the caller goes on (the next layer, say). */
	job->syncing = sc_thread_start(&job->syncer, sync_thread, job) == 0;
	return 0;
}

int
snap_layer_job_commit(struct snap_layer_job *job, struct snap_layer_apply_result *ret,
		      struct sc_err *err)
{
	int r = snap_layer_job_synced(job, err);
	if (r >= 0 && job->opts.tee) {
		r = snap_content_commit(job->opts.tee, job->opts.tee_media_type, job->res.digest,
					err);
		job->opts.tee = NULL; /* consumed either way */
	}
	if (ret)
		*ret = job->res; /* also on failure: the tee's blob may be stored */
	if (r >= 0)
		r = snap_snapshot_commit_measured(job->s, job->name, job->key, job->opts.labels,
						  job->opts.nlabels,
						  job->usage.id ? &job->usage : NULL, err);
	if (r < 0)
		return r;
	job_free(job);
	return 0;
}

void
snap_layer_job_cancel(struct snap_layer_job *job)
{
	if (!job)
		return;
	if (job->syncing) {
		pthread_join(job->syncer, NULL);
		job->syncing = false;
	}
	snap_snapshot_remove(job->s, job->key, NULL);
	job_free(job);
}

int
snap_layer_apply(struct snap_store *s, int fd, const char *parent, const char *name,
		 const struct snap_layer_apply_opts *opts, struct snap_layer_apply_result *ret,
		 struct sc_err *err)
{
	struct snap_layer_job *job = NULL;
	int r = snap_layer_job_new(s, parent, name, opts, &job, err);
	if (r < 0)
		return r;
	r = snap_layer_job_unpack(job, fd, err);
	if (r >= 0)
		r = snap_layer_job_commit(job, ret, err);
	if (r < 0)
		snap_layer_job_cancel(job);
	return r;
}
