/*
 * Typed Dockerfile instructions: each parsed node checked against what its
 * instruction accepts (argument count, per-instruction flags and their
 * values, exec vs shell form) and turned into a struct with defaults filled
 * in. Words are kept as written; expansion with build arguments happens in
 * the plan (plan.h), which knows the variables in scope.
 *
 * Errors name the file and line and quote the offending text:
 *   "Dockerfile:7: unknown flag --chwon for COPY (did you mean --chown?)"
 *
 * Ownership: instructions live in the struct bld_dockerfile they were built
 * from and go away with it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dockerfile.h"
#include "err.h"

enum bld_instr_kind {
	BLD_INSTR_FROM,
	BLD_INSTR_RUN,
	BLD_INSTR_CMD,
	BLD_INSTR_ENTRYPOINT,
	BLD_INSTR_SHELL,
	BLD_INSTR_ENV,
	BLD_INSTR_ARG,
	BLD_INSTR_LABEL,
	BLD_INSTR_EXPOSE,
	BLD_INSTR_USER,
	BLD_INSTR_WORKDIR,
	BLD_INSTR_VOLUME,
	BLD_INSTR_COPY,
	BLD_INSTR_ADD,
	BLD_INSTR_STOPSIGNAL,
	BLD_INSTR_HEALTHCHECK,
	BLD_INSTR_ONBUILD,
	BLD_INSTR_MAINTAINER,
	BLD_INSTR_MAX
};

/* Upper-case keyword ("COPY"), or NULL when out of range. */
const char *bld_instr_kind_to_string(enum bld_instr_kind k);
/* Case-insensitive. -EINVAL when s names no instruction. */
int bld_instr_kind_from_string(const char *s, enum bld_instr_kind *ret);

enum bld_mount_type {
	BLD_MOUNT_BIND,
	BLD_MOUNT_CACHE,
	BLD_MOUNT_TMPFS,
	BLD_MOUNT_SECRET,
	BLD_MOUNT_SSH,
	BLD_MOUNT_TYPE_MAX
};
const char *bld_mount_type_to_string(enum bld_mount_type t);
int bld_mount_type_from_string(const char *s, enum bld_mount_type *ret);

enum bld_mount_sharing {
	BLD_SHARING_SHARED,
	BLD_SHARING_PRIVATE,
	BLD_SHARING_LOCKED,
	BLD_SHARING_MAX
};
const char *bld_mount_sharing_to_string(enum bld_mount_sharing s);
int bld_mount_sharing_from_string(const char *s, enum bld_mount_sharing *ret);

enum bld_network { BLD_NETWORK_DEFAULT, BLD_NETWORK_NONE, BLD_NETWORK_HOST, BLD_NETWORK_MAX };
const char *bld_network_to_string(enum bld_network n);
int bld_network_from_string(const char *s, enum bld_network *ret);

enum bld_security { BLD_SECURITY_SANDBOX, BLD_SECURITY_INSECURE, BLD_SECURITY_MAX };
const char *bld_security_to_string(enum bld_security s);
int bld_security_from_string(const char *s, enum bld_security *ret);

/* RUN --mount=..., with BuildKit's defaults filled in. */
struct bld_mount {
	enum bld_mount_type type;
	const char *target; /* secret: /run/secrets/ID; ssh: /run/buildkit/ssh_agent.N */
	const char *source; /* NULL when absent */
	const char *from;   /* stage name, index or image; NULL: the build context */
	const char *id;	    /* cache: the target; ssh: "default"; secret: basename of target */
	const char *env;    /* secret exposed as this environment variable, or NULL */
	bool readonly;	    /* bind: true unless rw; others: false unless ro */
	bool required;	    /* secret, ssh: fail when not provided */
	enum bld_mount_sharing sharing; /* cache only; default shared */
	unsigned mode;			/* cache 0755, secret 0400, ssh 0600 */
	unsigned uid, gid;		/* default 0 */
	uint64_t size;			/* tmpfs bytes; 0: no limit */
};

/* A key/value argument: ENV, LABEL, ARG (value NULL: no default), MAINTAINER. */
struct bld_kv {
	const char *key;
	const char *value;
};

/* RUN, CMD, ENTRYPOINT. */
struct bld_cmdline {
	const char *const *argv; /* exec form: the words; shell form: one string */
	size_t argc;
	bool shell_form;		    /* run through SHELL (default /bin/sh -c) */
	const struct bld_df_heredoc *files; /* heredoc bodies (RUN) */
	size_t nfiles;
};

/* A COPY/ADD source given inline as a heredoc. */
struct bld_inline_source {
	const char *name; /* the file name in the destination */
	const char *data; /* leading tabs already stripped for <<- */
	bool expand;
};

/* COPY, ADD. */
struct bld_copy {
	const char *const *srcs; /* paths, globs, URLs (ADD), git references (ADD) */
	size_t nsrcs;
	const struct bld_inline_source *inline_srcs;
	size_t ninline;
	const char *dest;
	const char *from;  /* COPY --from, or NULL */
	const char *chown; /* or NULL */
	const char *chmod; /* or NULL; octal ("0755") or symbolic ("u+x,g-w") */
	bool chmod_octal;  /* chmod is octal; its value is chmod_mode */
	unsigned chmod_mode;
	const char *checksum; /* ADD --checksum ("sha256:..."), or NULL */
	bool link, parents, keep_git_dir;
	const char *const *excludes;
	size_t nexcludes;
};

struct bld_healthcheck {
	bool none;		 /* HEALTHCHECK NONE: disable the base image's check */
	const char *const *test; /* "CMD" + argv (exec form) or "CMD-SHELL" + one string */
	size_t ntest;
	uint64_t interval_ns, timeout_ns, start_period_ns, start_interval_ns; /* 0: default */
	int retries;							      /* 0: default */
};

struct bld_instr {
	enum bld_instr_kind kind;
	const struct bld_df_node *node;
	unsigned start_line, end_line;
	union {
		struct {
			const char *image;    /* image reference or stage name, unexpanded */
			const char *name;     /* AS name, lower case, or NULL */
			const char *platform; /* --platform, or NULL */
		} from;
		struct {
			struct bld_cmdline cmd;
			const struct bld_mount *mounts;
			size_t nmounts;
			enum bld_network network;
			enum bld_security security;
		} run;
		struct bld_cmdline cmd; /* CMD, ENTRYPOINT */
		struct {
			const char *const *argv;
			size_t argc;
		} shell;
		struct {
			const struct bld_kv *kvs;
			size_t n;
		} kv; /* ENV, LABEL, ARG, MAINTAINER (one "maintainer" label) */
		struct {
			const char *const *v;
			size_t n;
		} words;	 /* EXPOSE, VOLUME */
		const char *str; /* USER, WORKDIR, STOPSIGNAL */
		struct bld_copy copy;
		struct bld_healthcheck health;
		struct {
			const struct bld_instr *trigger;
			const char *expression; /* the trigger as written */
		} onbuild;
	} u;
};

/*
 * Builds one typed instruction from node. Returns 0, or -EINVAL with err
 * set ("FILE:LINE: ..."), -ENOMEM.
 */
int bld_instr_build(const struct bld_dockerfile *df, const struct bld_df_node *node,
		    struct bld_instr *ret, struct sc_err *err);

/* All instructions of df, in order. *ret belongs to df. Errors as bld_instr_build(). */
int bld_dockerfile_instructions(const struct bld_dockerfile *df, const struct bld_instr **ret,
				size_t *ret_n, struct sc_err *err);

/*
 * Parses one RUN --mount value ("type=cache,target=/root/.cache"). expand,
 * when not NULL, is applied to every value first (it returns a heap string
 * or NULL with err set). Strings in *ret live in df. -EINVAL on a bad mount.
 */
int bld_mount_parse(const struct bld_dockerfile *df, const char *spec,
		    char *(*expand)(void *userdata, const char *value, struct sc_err *err),
		    void *userdata, struct bld_mount *ret, struct sc_err *err);

/* Go time.ParseDuration syntax ("1m30s", "1.5h", "300ms"). -EINVAL when malformed. */
int bld_duration_parse(const char *s, int64_t *ret_ns);

/* True for http:// and https:// sources, and for git sources (git@, git://, *.git). */
bool bld_source_is_url(const char *src);
bool bld_source_is_git(const char *src);
