/*
 * Dockerfile parser: text -> a tree of instruction nodes, compatible with
 * BuildKit's parser (frontend/dockerfile/parser). A Dockerfile BuildKit
 * accepts parses to the same tree here; one it rejects is rejected here.
 *
 * What the parser knows: parser directives at the top (syntax, escape,
 * check; each at most once), the escape character ('\' or '`') and line
 * continuation (also at end of file, across comment lines, and across empty
 * lines, which earn a warning), heredocs (<<EOF, <<-EOF, quoted delimiters,
 * several per line, fd prefixes; RUN, COPY and ADD only), JSON (exec) form vs
 * shell form with BuildKit's fallback rules, flags before the arguments ("--"
 * ends them), ONBUILD nesting, a UTF-8 byte order mark and CRLF line ends.
 *
 * What it does not know: which instructions exist and what their flags mean
 * (an unknown instruction parses to a node with one empty argument, as in
 * BuildKit). That is instructions.h's job.
 *
 * Ownership: everything reachable from a struct bld_dockerfile belongs to it
 * and lives until bld_dockerfile_free().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "util.h"

/* Limits on what a user controls. */
#define BLD_DF_MAX_SIZE		(16u << 20) /* bytes in a Dockerfile */
#define BLD_DF_MAX_LINE		65535u	    /* bytes in one physical line (as BuildKit) */
#define BLD_DF_MAX_LOGICAL_LINE (1u << 20)  /* bytes in one instruction, continuations joined */
#define BLD_DF_MAX_NODES	100000u	    /* instructions in a file */
#define BLD_DF_MAX_HEREDOCS	64u	    /* heredocs in one instruction */
#define BLD_DF_MAX_ONBUILD	4u	    /* ONBUILD ONBUILD ... nesting in the tree */

/* Node attributes. */
#define BLD_DF_NODE_JSON (1u << 0) /* arguments came from a JSON array (exec form) */

struct bld_df_heredoc {
	const char *name;    /* delimiter word, quotes removed */
	const char *content; /* body lines exactly as written, each with its line end */
	unsigned fd;	     /* the N in N<<EOF, 0 when absent */
	bool expand;	     /* delimiter unquoted: the body is subject to expansion */
	bool chomp;	     /* <<- : leading tabs are stripped from the body */
};

struct bld_df_node {
	const char *keyword;	  /* instruction as written ("RUN", "run") */
	const char *original;	  /* the logical line, continuations joined */
	const char *const *flags; /* "--name=value" / "--name", as written (quotes removed) */
	size_t nflags;
	const char *const *args; /* arguments after the per-instruction line parser */
	size_t nargs;
	/* Byte length of each argument: differs from strlen() only for a JSON "\u0000". */
	const size_t *arg_lens;
	struct bld_df_node *sub; /* ONBUILD's trigger instruction, or NULL */
	const struct bld_df_heredoc *heredocs;
	size_t nheredocs;
	unsigned attrs;	     /* BLD_DF_NODE_* */
	unsigned start_line; /* 1-based, first physical line of the instruction */
	unsigned end_line;   /* last physical line, heredoc bodies included */
};

struct bld_df_warning {
	unsigned line;
	const char *msg;
};

struct bld_arena;

struct bld_dockerfile {
	const char *filename; /* used in error messages ("Dockerfile") */
	char escape;	      /* '\\' or '`' */
	const char *syntax;   /* "# syntax=" value, or NULL */
	const char *check;    /* "# check=" value, or NULL */
	struct bld_df_node *nodes;
	size_t nnodes;
	const struct bld_df_warning *warnings;
	size_t nwarnings;
	struct bld_arena *arena; /* private: owns all of the above */
};

/*
 * Parses len bytes of data (need not be NUL-terminated). filename (NULL:
 * "Dockerfile") prefixes every error: "Dockerfile:7: unterminated heredoc".
 * Returns 0 and *ret (free with bld_dockerfile_free), or:
 *   -EINVAL  syntax error, a file with no instructions, a bad directive
 *   -EFBIG   the file is over BLD_DF_MAX_SIZE
 *   -E2BIG   a line, an instruction, or the instruction count over its limit
 *   -ENOMEM
 */
int bld_dockerfile_parse(const char *data, size_t len, const char *filename,
			 struct bld_dockerfile **ret, struct sc_err *err);

/* Reads path (at most BLD_DF_MAX_SIZE bytes) and parses it; errors also -ENOENT etc. */
int bld_dockerfile_load(const char *path, struct bld_dockerfile **ret, struct sc_err *err);

/* NULL-safe; returns NULL. */
struct bld_dockerfile *bld_dockerfile_free(struct bld_dockerfile *df);

/*
 * Appends the tree in BuildKit's dump format (one "(...)" line per
 * instruction) to out. Returns 0 or -ENOMEM.
 */
int bld_dockerfile_dump(const struct bld_dockerfile *df, struct sc_buf *out);
/* One node without the surrounding parentheses and newline. */
int bld_df_node_dump(const struct bld_df_node *node, struct sc_buf *out);

/*
 * Recognises a heredoc word ("<<EOF", "<<-'EOF'", "2<<EOF") the way the
 * parser does. Returns 1 and fills *ret (name is a heap string the caller
 * frees) when word is one, 0 when not, -EINVAL / -ENOMEM on failure.
 */
int bld_df_heredoc_parse(const char *word, struct bld_df_heredoc *ret, struct sc_err *err);
