/*
 * File operations of a build: what COPY, ADD and WORKDIR do to a rootfs,
 * and the content hash that makes COPY/ADD cacheable.
 *
 * A COPY/ADD reads from a source root: the build context (filtered by its
 * .dockerignore) or another stage's (or image's) mounted rootfs. Sources
 * follow BuildKit:
 *  - paths are relative to the source root; a leading '/' is the root
 *    itself; ".." never leaves it; symlinks in a source path resolve inside
 *    the root (an absolute target starts at the root, ".." stops there, as
 *    fs.RootPath does), so a source never leaves its root;
 *  - a source that is itself a symlink is followed (FollowSymlinks); it is
 *    copied under its own name, with its target's content;
 *  - globs ('*', '?', '[...]', '\' escapes; per path component, Go's
 *    filepath.Match rules; a path without wildcards is taken literally)
 *    must match at least one entry; a plain path must exist; globs do not
 *    enter symlinked directories (filepath.Walk);
 *  - what the .dockerignore excludes is invisible to globs, plain paths and
 *    directory walks; --exclude patterns (the same syntax) match paths
 *    relative to what is copied: below a directory source, or a file
 *    source's name;
 *  - a directory source copies its contents, not the directory itself;
 *  - the destination is a directory when it ends in '/', is ".", or when
 *    there is more than one source (or a glob); otherwise a file source is
 *    written to exactly that path unless it exists as a directory (then
 *    into it); relative destinations are against WORKDIR; the destination
 *    path follows symlinks inside the rootfs; missing directories are
 *    created 0755, owned by root (or --chown);
 *  - below the destination, a source directory merges into an existing one
 *    (which takes its owner, mode and times); a directory onto a
 *    non-directory fails (-ENOTDIR), a file onto a directory (-EISDIR);
 *  - --chown USER[:GROUP] (names resolved in the destination's /etc/passwd
 *    and /etc/group; "1000" alone is 1000:1000, a name alone takes its
 *    primary group) applies to every copied entry and to the directories
 *    created for the destination; --chmod (octal, at most four digits, or
 *    symbolic as chmod(1): "u+x,g-w,o=r", X for directories and executables,
 *    no who meaning "a" without umask) to every copied entry, relative to
 *    its own mode;
 *  - ADD extracts a local tar archive (plain, gzip, bzip2, xz, zstd: told
 *    by content, not by name) into the destination, which is then always a
 *    directory, as if chrooted there: entries are created dirfd-relative
 *    (RESOLVE_IN_ROOT), a name climbing out fails the ADD (-EXDEV), and
 *    symlinks in it resolve inside it. Archive entries keep their owners
 *    (or take --chown), modes and times; --chmod does not apply; ".wh."
 *    names are plain files (ADD unpacks an archive, not a layer). Other
 *    files, and archives inside copied directories, are copied as COPY does.
 *    URLs and git sources are -EOPNOTSUPP for now.
 *  - heredoc sources are 0644 files named after the document.
 * Copied entries keep mode, times and xattrs; owners become 0:0 unless
 * --chown (BuildKit's rule for context sources) or kept as in the source
 * for --from sources. Owners are changed only when running as root. File
 * data goes through the copy engine (snap_copy_tree for directories the
 * filters left whole and the destination lacks, snap_copy_file otherwise);
 * hard links among the copied files are kept.
 *
 * The selection hash: sha256 over the selected entries, source by source
 * (each source's entries in path order, a directory before its contents),
 * each described by its path relative to its source base, type, mode,
 * owner (as copied: 0:0 for the context), size, content sha256, link target
 * and sorted xattrs, then the heredocs' names and contents. Not mtime or
 * atime: touching a file changes nothing; renaming one does. Content
 * digests are cached per build in struct bld_hash_cache, keyed by (device,
 * inode, size, mtime, ctime), so a file selected twice is read once.
 * Memory grows with the number of entries, never with their content.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "digest.h"
#include "dockerignore.h"
#include "err.h"
#include "instructions.h"

#define BLD_COPY_MAX_ENTRIES 1000000u /* entries one COPY may select */

/* Per-build cache of file content digests; thread-safe. */
struct bld_hash_cache;
int bld_hash_cache_new(struct bld_hash_cache **ret);
/* NULL-safe; returns NULL. */
struct bld_hash_cache *bld_hash_cache_free(struct bld_hash_cache *hc);

/*
 * A longer memory behind the per-build cache (the store's, across builds):
 * the cache asks lookup, outside its lock, for a file it has not seen in
 * this build before reading it. Keys are BLD_FILE_KEY_LEN bytes: device,
 * inode, size, mtime ns and ctime ns as big-endian u64s.
 */
#define BLD_FILE_KEY_LEN 40
typedef bool (*bld_hash_lookup_fn)(void *arg, const uint8_t key[BLD_FILE_KEY_LEN],
				   char ret[SC_DIGEST_STR_LEN + 1]);
void bld_hash_cache_set_lookup(struct bld_hash_cache *hc, bld_hash_lookup_fn fn, void *arg);
/*
 * Calls fn for every digest this build read that is safe to remember: the
 * file's ctime was at least a second old when it was read, so a later
 * write within the same timestamp tick cannot leave its key unchanged.
 * fn returns < 0 to stop.
 */
typedef int (*bld_hash_each_fn)(void *arg, const uint8_t key[BLD_FILE_KEY_LEN], const char *digest);
int bld_hash_cache_each_new(struct bld_hash_cache *hc, bld_hash_each_fn fn, void *arg);

struct bld_copy_source {
	int root_dirfd;			 /* the context folder, or a mounted stage rootfs */
	const struct bld_ignore *ignore; /* context: its .dockerignore; NULL otherwise */
	bool context;			 /* messages say "build context"; owners reset to 0:0 */
};

struct bld_copy_op {
	const char *const *srcs; /* expanded source paths or globs */
	size_t nsrcs;
	const struct bld_inline_source *inline_srcs; /* heredocs, data already final */
	size_t ninline;
	const char *dest;	     /* expanded */
	const char *workdir;	     /* absolute; relative dest is against it */
	const char *chown;	     /* expanded, or NULL */
	const char *chmod;	     /* expanded, or NULL */
	bool add;		     /* ADD: extract local archives */
	const char *const *excludes; /* --exclude patterns */
	size_t nexcludes;
};

/* One selected entry, for explaining cache misses. */
struct bld_file_digest {
	char *path;			    /* relative to the source root */
	char digest[SC_DIGEST_STR_LEN + 1]; /* of its record: metadata and content */
};

struct bld_copy_selection {
	char digest[SC_DIGEST_STR_LEN + 1]; /* the selection hash */
	struct bld_file_digest *files;	    /* sorted by path, '/' first (heap) */
	size_t nfiles;
	uint64_t bytes; /* file data selected */
};

void bld_copy_selection_clear(struct bld_copy_selection *sel);

/*
 * Validates --chown and --chmod values after expansion (BuildKit checks
 * them once variables are substituted). -EINVAL with a message quoting the
 * value.
 */
int bld_copy_flags_validate(const char *chown, const char *chmod, struct sc_err *err);

/*
 * Selects what op copies from src and hashes it (see above). hc may be
 * NULL. *ret is the caller's (bld_copy_selection_clear), set on success
 * only. Errors: -ENOENT a source matched nothing ("COPY failed: 'x' not
 * found in build context", with a hint when the .dockerignore hides it; for
 * other roots "... not found": the caller names the stage), -EINVAL a
 * malformed glob or --exclude pattern, -EOPNOTSUPP a URL or git source,
 * -E2BIG over BLD_COPY_MAX_ENTRIES, -ENAMETOOLONG / -ELOOP a path or nesting
 * over the copy engine's limits, -errno reading.
 */
int bld_copy_select(const struct bld_copy_source *src, const struct bld_copy_op *op,
		    struct bld_hash_cache *hc, struct bld_copy_selection *ret, struct sc_err *err);

/*
 * Performs op into the rootfs at dst_root_dirfd (a mounted active
 * snapshot). Nothing is synced: the caller syncs the file system before
 * it commits the snapshot. On failure what was copied
 * so far stays (the caller drops the snapshot). Errors: those of
 * bld_copy_select, -EINVAL bad --chown/--chmod or a user not in the
 * rootfs, -ENOTDIR a destination below a file (or a directory copied onto
 * a non-directory), -EISDIR a file copied onto a directory, -EXDEV an ADD
 * archive entry outside the destination, -EBADMSG a corrupt archive,
 * -ELIBACC libarchive missing for ADD, -EAGAIN a source changed while
 * copied, -ENOSPC/-EDQUOT, and the copy engine's.
 */
int bld_copy_apply(const struct bld_copy_source *src, const struct bld_copy_op *op,
		   int dst_root_dirfd, struct sc_err *err);

/*
 * Creates path (absolute) and its missing parents in the rootfs at
 * dst_root_dirfd, without leaving it (symlinks along the way resolve
 * inside the rootfs, ".." stops at its root). New directories are 0755 and
 * owned by uid:gid (when running as root). Returns 1 when something was
 * created, 0 when it existed. -ENOTDIR when a component is a file, -EINVAL
 * for a relative path, -ELOOP, -ENAMETOOLONG.
 */
int bld_mkdir_p(int dst_root_dirfd, const char *path, uid_t uid, gid_t gid, struct sc_err *err);
