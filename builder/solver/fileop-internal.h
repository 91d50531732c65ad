/*
 * What the parts of COPY/ADD share: path resolution inside a root
 * (path.c), the per-build content hash cache and file digests (hash.c),
 * --chown/--chmod parsing and application (chmod.c), the source selection
 * (select.c), the copy itself (fileop.c) and ADD's archive extraction
 * (extract.c). See fileop.h for the semantics.
 *
 * Invariants of a selection (struct fo_sel):
 *  1. Entries are grouped by item (one item per source after glob
 *     expansion), items in source order.
 *  2. Within an item, entries are in depth-first order with names sorted
 *     byte-wise, so a directory comes before everything below it and
 *     every entry's parent directory (inside the item) is listed before it.
 *  3. An entry's rel never starts with '/' and has no "." or ".."
 *     components; its depth is the number of its components.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "digest.h"
#include "err.h"
#include "fileop.h"

#define FO_MAX_DEPTH	1024u /* directory nesting below a source (as the copy engine) */
#define FO_MAX_PATH	4000u /* bytes in a path below a root (as the copy engine) */
#define FO_MAX_SYMLINKS 40u   /* symlinks followed resolving one path (as the kernel) */
#define FO_READ_BUF	(1u << 20)

/* --- path.c ------------------------------------------------------------ */

enum {
	FO_FOLLOW_LAST = 1u << 0, /* follow a symlink in the last component too */
	FO_MKDIR = 1u << 1,	  /* create missing directories, the last one included */
	FO_MISSING_OK = 1u << 2,  /* the last component may be missing (dirfd/name still set) */
};

/* Called for each entry met while resolving; false makes it look missing. */
typedef bool (*fo_visible_fn)(void *arg, const char *path, const struct stat *st);

struct fo_path {
	int fd;		  /* O_PATH fd of the result, or -EBADF when it is missing */
	int dirfd;	  /* O_PATH fd of the directory holding it (the root for the root) */
	char *path;	  /* below the root, cleaned, no symlinks; "" for the root (heap) */
	const char *name; /* last component of path ("" for the root) */
	struct stat st;	  /* lstat of the result when it exists */
	bool created;	  /* FO_MKDIR made at least one directory */
};

/*
 * Resolves path (absolute or relative: both start at the root) below
 * root_fd the way BuildKit's fs.RootPath does: ".." and absolute symlink
 * targets stop at the root, so the result is always inside it. Every
 * component is opened with O_NOFOLLOW relative to its parent, so a change
 * racing with the walk cannot lead outside either. FO_MKDIR makes missing
 * directories 0755 owned by uid:gid (owner only when running as root).
 * Sets nothing in err: callers word the message (fo_resolve_error).
 * Errors: -ENOENT missing (or not visible), -ENOTDIR a component is not a
 * directory, -ELOOP too many symlinks, -ENAMETOOLONG, -ENOMEM, -errno.
 */
int fo_resolve(int root_fd, const char *path, unsigned flags, uid_t uid, gid_t gid,
	       fo_visible_fn visible, void *arg, struct fo_path *ret);
void fo_path_clear(struct fo_path *p);
/* Message for a failed fo_resolve of what (quoted) into err; returns r. */
int fo_resolve_error(struct sc_err *err, int r, const char *what);

/*
 * path cleaned like Go's path.Clean of "/" + path, without the leading
 * '/': "" for the root. NULL when out of memory.
 */
char *fo_clean(const char *path);
/* "/" + base + "/" + path cleaned (path.Join); path absolute: base ignored. NULL on ENOMEM. */
char *fo_join_abs(const char *base, const char *path);

/* openat2() below dirfd refusing symlinks and magic links. */
int fo_open_beneath(int dirfd, const char *path, int flags);
/* openat2() with dirfd as the root (RESOLVE_IN_ROOT): symlinks resolve inside it. */
int fo_open_in_root(int dirfd, const char *path, int flags, mode_t mode);

/* Go's filepath.Match for one path component. */
bool fo_glob_has_meta(const char *s);
/* 1 match, 0 no match, -EINVAL malformed pattern. */
int fo_glob_match(const char *pattern, const char *name);

/* --- hash.c ------------------------------------------------------------ */

/*
 * sha256 of the regular file name below dirfd, whose lstat is st, from hc
 * when it knows (st_dev, st_ino, size, mtime, ctime), else read through
 * buf (FO_READ_BUF bytes) and remembered. hc may be NULL.
 */
/* True when hc (or the store behind it) already knows the file's digest. */
bool fo_file_known(struct bld_hash_cache *hc, const struct stat *st);
int fo_file_digest(struct bld_hash_cache *hc, int dirfd, const char *name, const struct stat *st,
		   uint8_t *buf, char ret[SC_DIGEST_STR_LEN + 1], struct sc_err *err);

/* --- chmod.c ----------------------------------------------------------- */

struct fo_chmod {
	bool set;
	bool octal;
	mode_t mode;	 /* octal: the permission bits */
	const char *sym; /* symbolic: the clauses (not owned) */
};

/* Parses an expanded --chmod value (NULL: not set). -EINVAL with a message. */
int fo_chmod_parse(const char *s, struct fo_chmod *ret, struct sc_err *err);
/* The permission bits (07777) an entry of type and mode st_mode gets. */
mode_t fo_chmod_apply(const struct fo_chmod *c, mode_t st_mode);
/* Syntax of an expanded --chown value. -EINVAL with a message. */
int fo_chown_check(const char *s, struct sc_err *err);
/*
 * Resolves an expanded --chown value against the rootfs at root_fd
 * (BuildKit's rules: a numeric user alone is uid:uid, a name alone gets
 * its primary group). -EINVAL for unknown names.
 */
int fo_chown_resolve(int root_fd, const char *s, uid_t *ret_uid, gid_t *ret_gid,
		     struct sc_err *err);

/* --- select.c ---------------------------------------------------------- */

struct fo_entry {
	char *path;	 /* below the source root (heap) */
	const char *rel; /* below the item's base: into path, or rel_heap */
	char *rel_heap;
	uint32_t item;
	uint16_t depth; /* components in rel */
	bool dirty;	/* directory: something below it was left out */
	mode_t mode;
	uid_t uid; /* as in the source */
	gid_t gid;
	nlink_t nlink;
	uint64_t size;
	dev_t dev;
	ino_t ino;
};

struct fo_item {
	char *path;	     /* the source, resolved, below the root ("" = the root) */
	char *name;	     /* the name a file is copied as: the source's last component */
	const char *pattern; /* the source as written */
	bool dir;
	size_t first, n; /* its entries */
};

struct fo_sel {
	struct fo_item *items;
	size_t nitems, cap_items;
	struct fo_entry *e;
	size_t n, cap;
	char (*digests)[SC_DIGEST_STR_LEN + 1]; /* per entry, when hashing */
	bool globbed;				/* a source was a glob */
	uint64_t bytes;
};

/*
 * Expands op's sources in src and walks them (see fileop.h). hash: also
 * compute each entry's record digest (hc may be NULL). On failure *ret is
 * cleared. Errors as bld_copy_select.
 */
int fo_sel_build(const struct bld_copy_source *src, const struct bld_copy_op *op, bool hash,
		 struct bld_hash_cache *hc, struct fo_sel *ret, struct sc_err *err);
void fo_sel_clear(struct fo_sel *s);
/* "COPY" or "ADD". */
static inline const char *
fo_verb(const struct bld_copy_op *op)
{
	return op->add ? "ADD" : "COPY";
}

/* --- extract.c --------------------------------------------------------- */

/*
 * 1 when the regular file fd is a tar archive (plain, gzip, bzip2, xz or
 * zstd) as BuildKit's ADD sees it: the magic of one of those and a first
 * tar header that reads. 0 otherwise; -errno reading.
 */
int fo_archive_detect(int fd, struct sc_err *err);

/*
 * Extracts the archive fd into the directory dest_fd (an O_PATH fd), with
 * dest_fd as the root of every path and link in it. chown: every entry gets
 * uid:gid instead of the archive's owners. what names the archive in
 * messages. Errors: -EXDEV an entry outside the destination, -EBADMSG a
 * corrupt archive, -E2BIG / -EFBIG / -ENAMETOOLONG over a limit,
 * -EOPNOTSUPP an entry type, -ELIBACC no libarchive, -errno writing.
 */
int fo_archive_extract(int fd, int dest_fd, const char *what, bool chown, uid_t uid, gid_t gid,
		       struct sc_err *err);
