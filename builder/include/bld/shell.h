/*
 * Word expansion with the shell rules BuildKit applies to Dockerfile words:
 * $V, ${V}, ${V:-w} ${V-w} ${V:+w} ${V+w} ${V:?msg} ${V?msg}, ${V#p} ${V##p}
 * ${V%p} ${V%%p} (shortest / longest prefix or suffix removal), ${V/p/r}
 * ${V//p/r} (first / every match replaced), single and double quotes, and the
 * Dockerfile's escape character. Patterns know '*' and '?' ("\*", "\?" and
 * "\\" are literal); like BuildKit, neither matches a newline.
 *
 * One call yields both the expanded word with quotes removed (what ENV, COPY,
 * WORKDIR and friends use) and the same text split into words at unquoted
 * white space (what EXPOSE and heredoc detection use).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/* Longest expansion result, and deepest ${...} nesting, accepted. */
#define BLD_SHELL_MAX_RESULT (1u << 20)
#define BLD_SHELL_MAX_DEPTH  64

struct bld_shell {
	char escape;	  /* '\\' (default when 0) or '`' */
	bool raw_quotes;  /* keep quote characters in the result */
	bool raw_escapes; /* keep escape characters in the result */
	bool skip_unset;  /* leave references to unset variables as written */
	/* Value of variable name, or NULL when unset. NULL lookup: nothing is set. */
	const char *(*lookup)(void *userdata, const char *name);
	void *userdata;
};

struct bld_shell_result {
	char *word;   /* expanded, quotes removed; heap, owned by the result */
	char **words; /* word split at unquoted white space; heap */
	size_t nwords;
};

/*
 * Expands in. On success fills *ret (free with bld_shell_result_free()).
 * Returns 0, -EINVAL for a syntax error or a ${V?msg} on an unset variable
 * (err names the word), -E2BIG when the result grows over
 * BLD_SHELL_MAX_RESULT, -ENOMEM.
 */
int bld_shell_process(const struct bld_shell *sh, const char *in, struct bld_shell_result *ret,
		      struct sc_err *err);
/* Convenience: only the single expanded word (heap string into *ret). */
int bld_shell_word(const struct bld_shell *sh, const char *in, char **ret, struct sc_err *err);
/* NULL-safe. */
void bld_shell_result_free(struct bld_shell_result *r);

/*
 * An ordered set of variables (name=value, a later set replaces an earlier
 * one in place), usable as a bld_shell lookup through bld_env_lookup. A
 * zeroed struct is an empty set. Names are hashed, so a Dockerfile with
 * thousands of variables does not make every lookup a scan.
 */
struct bld_env {
	char **names;
	char **values;
	size_t n, cap;
	size_t *slots; /* private: hash index, each slot a position + 1, or 0 when free */
	size_t nslots; /* private: 0, or a power of two at least twice n */
};

/* Copies name and value (NULL: ""). Returns 0 or -ENOMEM. */
int bld_env_set(struct bld_env *e, const char *name, const char *value);
/* NULL when unset. */
const char *bld_env_get(const struct bld_env *e, const char *name);
/* Position of name in e->names, or -ENOENT. */
int bld_env_find(const struct bld_env *e, const char *name);
int bld_env_copy(struct bld_env *dst, const struct bld_env *src);
void bld_env_free(struct bld_env *e);
/* Adapter for struct bld_shell: userdata is a const struct bld_env *. */
const char *bld_env_lookup(void *userdata, const char *name);
