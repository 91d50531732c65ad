/*
 * File operations of a build: what COPY, ADD and WORKDIR do to a rootfs,
 * and the content hash that makes COPY/ADD cacheable.
 *
 * A COPY/ADD reads from a source root: the build context (filtered by its
 * .dockerignore) or another stage's (or image's) mounted rootfs. Sources
 * follow BuildKit:
 *  - paths are relative to the source root; a leading '/' is the root
 *    itself; ".." never leaves it; symlinks in a source path resolve inside
 *    the root;
 *  - globs ('*', '?', '[...]', per path component, filepath.Match rules)
 *    must match at least one entry; a plain path must exist;
 *  - a directory source copies its contents, not the directory itself;
 *  - the destination is a directory when it ends in '/' or when there is
 *    more than one source (or a glob); otherwise a file source is written
 *    to exactly that path; relative destinations are against WORKDIR;
 *    missing parent directories are created (root-owned, 0755);
 *  - --chown USER[:GROUP] (names resolved in the destination's /etc/passwd
 *    and /etc/group) applies to every copied entry and to the directories
 *    created for the destination; --chmod (octal or symbolic: "u+x,g-w")
 *    to every copied entry;
 *  - ADD extracts a local tar archive (plain, gzip, bzip2, xz, zstd) into
 *    the destination directory, creating entries dirfd-relative so nothing
 *    lands outside the rootfs; other files are copied as COPY does.
 * Copied entries keep mode, times and xattrs; owners become 0:0 unless
 * --chown (BuildKit's rule for context sources) or kept as in the source
 * for --from sources. File data goes through the copy engine.
 *
 * The selection hash: sha256 over the sorted list of selected entries, each
 * described by its path relative to its source base, type, mode, owner,
 * size, content sha256, link target and xattrs. Not mtime: touching a file
 * changes nothing; renaming one does. Content digests are cached per build
 * in struct bld_hash_cache, keyed by (device, inode, size, mtime, ctime),
 * so a file selected twice is read once.
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

struct bld_copy_source {
	int root_dirfd;			/* the context folder, or a mounted stage rootfs */
	const struct bld_ignore *ignore; /* context: its .dockerignore; NULL otherwise */
	bool context;			/* messages say "build context"; owners reset to 0:0 */
};

struct bld_copy_op {
	const char *const *srcs; /* expanded source paths or globs */
	size_t nsrcs;
	const struct bld_inline_source *inline_srcs; /* heredocs, data already final */
	size_t ninline;
	const char *dest;    /* expanded */
	const char *workdir; /* absolute; relative dest is against it */
	const char *chown;   /* expanded, or NULL */
	const char *chmod;   /* expanded, or NULL */
	bool add;	     /* ADD: extract local archives */
	const char *const *excludes; /* --exclude patterns */
	size_t nexcludes;
};

/* One selected entry, for explaining cache misses. */
struct bld_file_digest {
	char *path; /* relative to the source root */
	char digest[SC_DIGEST_STR_LEN + 1];
};

struct bld_copy_selection {
	char digest[SC_DIGEST_STR_LEN + 1]; /* the selection hash */
	struct bld_file_digest *files;	    /* sorted by path */
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
 * NULL. Errors: -ENOENT a source matched nothing ("'x' not found in build
 * context"), -EXDEV a source leaves the root, -E2BIG over
 * BLD_COPY_MAX_ENTRIES, -errno reading.
 */
int bld_copy_select(const struct bld_copy_source *src, const struct bld_copy_op *op,
		    struct bld_hash_cache *hc, struct bld_copy_selection *ret, struct sc_err *err);

/*
 * Performs op into the rootfs at dst_root_dirfd (a mounted active
 * snapshot). Errors: those of bld_copy_select, -EINVAL bad --chown/--chmod
 * or a user not in the rootfs, -ENOTDIR a destination below a file,
 * -ENOSPC/-EDQUOT, and the copy engine's.
 */
int bld_copy_apply(const struct bld_copy_source *src, const struct bld_copy_op *op,
		   int dst_root_dirfd, struct sc_err *err);

/*
 * Creates path (absolute) and its missing parents in the rootfs at
 * dst_root_dirfd, without leaving it (symlinks along the way resolve
 * inside the rootfs). New directories are 0755 and owned by uid:gid.
 * Returns 1 when something was created, 0 when it existed. -ENOTDIR when a
 * component is a file.
 */
int bld_mkdir_p(int dst_root_dirfd, const char *path, uid_t uid, gid_t gid, struct sc_err *err);
