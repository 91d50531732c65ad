/*
 * .dockerignore matching, with the rules of BuildKit's pattern matcher:
 *  - one pattern per line; blank lines and lines starting with '#' are
 *    skipped; surrounding white space is trimmed;
 *  - patterns are cleaned like Go's filepath.Clean, and a leading '/' is
 *    dropped (patterns are relative to the build context);
 *  - '*' matches any run of characters but '/', '?' one such character,
 *    '[...]' a class ('^' negates), '\' escapes; '**' matches any number of
 *    directories (none included), at the start, the middle or the end;
 *  - '!' makes an exception that re-includes what it matches;
 *  - a pattern that matches a directory matches everything below it;
 *  - the last pattern that matches decides.
 *
 * For walkers, bld_ignore_dir() tells whether an excluded directory can be
 * skipped whole or must be descended into because an exception could match
 * below it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define BLD_IGNORE_MAX_SIZE	(1u << 20) /* bytes in a .dockerignore */
#define BLD_IGNORE_MAX_PATTERNS 10000u
#define BLD_IGNORE_MAX_PATTERN	4096u /* bytes in one pattern */

struct bld_ignore;

/*
 * Compiles the patterns of a .dockerignore held in data. name prefixes
 * errors. Returns 0 and *ret, -EINVAL for a malformed pattern (unterminated
 * '['), -E2BIG over a limit, -ENOMEM.
 */
int bld_ignore_new(const char *data, size_t len, const char *name, struct bld_ignore **ret,
		   struct sc_err *err);
/* From an array of patterns (as if each were a line). */
int bld_ignore_new_patterns(const char *const *patterns, size_t n, struct bld_ignore **ret,
			    struct sc_err *err);
/*
 * Loads the ignore file for a build: DOCKERFILE.dockerignore beside the
 * Dockerfile when it exists, else CONTEXT/.dockerignore; no file is an empty
 * matcher. *ret_path (may be NULL) gets the file used (heap) or NULL.
 */
int bld_ignore_load(const char *context_dir, const char *dockerfile_path, struct bld_ignore **ret,
		    char **ret_path, struct sc_err *err);
/* NULL-safe; returns NULL. */
struct bld_ignore *bld_ignore_free(struct bld_ignore *m);

size_t bld_ignore_count(const struct bld_ignore *m);

/* True when path (relative to the context, cleaned here) is excluded. */
bool bld_ignore_match(const struct bld_ignore *m, const char *path);

enum bld_ignore_dir_action {
	BLD_IGNORE_DIR_INCLUDE, /* the directory is included: walk it */
	BLD_IGNORE_DIR_DESCEND, /* excluded, but an exception may match inside: walk it */
	BLD_IGNORE_DIR_SKIP,	/* excluded with everything below it: do not walk */
};

enum bld_ignore_dir_action bld_ignore_dir(const struct bld_ignore *m, const char *dir);
