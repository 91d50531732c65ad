/*
 * The build plan of a Dockerfile: its stages, what each needs, and every
 * word expanded with the variables in scope where it appears.
 *
 * Scoping follows BuildKit:
 *  - ARGs before the first FROM are global: only FROM lines see them, and a
 *    stage sees one only after re-declaring it ("ARG NAME" with no value).
 *  - The platform ARGs (TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT,
 *    BUILDPLATFORM, BUILDOS, BUILDARCH, BUILDVARIANT) are set in the global
 *    scope automatically, and in a stage once declared.
 *  - A build argument (--build-arg NAME=VALUE) replaces the default of the
 *    ARGs of that name. An ARG with a value (build argument, else default,
 *    else for a bare "ARG NAME" the global value) is set from its line on;
 *    one left without a value sets nothing.
 *  - ENV and ARG values are one list: the later assignment of a name wins
 *    (ARG V=1 then ENV V=2 gives 2; ENV V=2 then ARG V=1 gives 1). Only ENV
 *    values go into the image (struct bld_stage env).
 *  - The proxy ARGs (HTTP_PROXY, HTTPS_PROXY, FTP_PROXY, NO_PROXY,
 *    ALL_PROXY) reach RUN without a declaration, only when a build argument
 *    of that name in any case has a non-empty value; it sets both the upper-
 *    and lower-case names and wins over ENV and ARG values of those names.
 *  - ENV, ARGs, WORKDIR and USER carry over into a stage built FROM another
 *    stage.
 *
 * Stages are found by name (case-insensitive) or index; COPY --from and RUN
 * --mount from= naming neither refer to an image. Only the stages the target
 * needs are in the build order; a cycle is an error naming the line.
 *
 * Ownership: a plan owns its strings; it borrows the instructions of the
 * struct bld_dockerfile it came from, which must outlive it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "instructions.h"

#define BLD_PLAN_MAX_STAGES 1000u

struct bld_plan_opts {
	const char *target;	       /* stage name; NULL: the last stage */
	const char *const *build_args; /* "NAME=VALUE" */
	size_t nbuild_args;
	const char *build_platform;  /* "linux/amd64[/variant]"; NULL: this machine */
	const char *target_platform; /* NULL: the build platform */
	/*
	 * The config of a base image (a FROM naming neither a stage nor
	 * scratch), so that expansion sees its ENV (ENV PATH=/x:$PATH) and the
	 * stage starts from its WorkingDir and User, as BuildKit does. Returns
	 * 0, or -errno with err set (the plan fails with it). What it returns
	 * must stay valid until bld_plan_new() returns (the plan copies it).
	 * NULL: bases have no config.
	 */
	int (*base_config)(void *userdata, const char *image, const struct bld_kv **ret_env,
			   size_t *ret_nenv, const char **ret_workdir, const char **ret_user,
			   struct sc_err *err);
	void *userdata;
};

/*
 * One instruction with its words expanded:
 *   ENV, LABEL: key, value, key, value ...   ARG: NAME=VALUE, or NAME when unset
 *   COPY, ADD: sources ..., destination       EXPOSE: "PORT[-PORT]/PROTO" ...
 *   VOLUME: paths                             USER, STOPSIGNAL: the value
 *   WORKDIR: the absolute directory           FROM: the base image
 *   others: the instruction's own arguments, unexpanded (the shell expands RUN)
 */
struct bld_step {
	const struct bld_instr *instr;
	const char *const *words;
	size_t nwords;
	const char *chown, *chmod;	/* COPY/ADD, expanded, or NULL */
	const char *from;		/* COPY --from, expanded, or NULL */
	int from_stage;			/* the stage --from names, or -1 (image or context) */
	const struct bld_mount *mounts; /* RUN: mounts with values expanded */
	size_t nmounts;
	/*
	 * RUN: the ENV and ARG values set so far (each name once), then the proxy
	 * ARGs; the base image's own ENV is not known here, the executor adds it.
	 */
	const struct bld_kv *run_env;
	size_t nrun_env;
	const char *workdir; /* working directory after this step */
	const char *user;    /* user after this step, or NULL */
};

struct bld_stage {
	unsigned index;
	const char *name; /* lower case, or NULL */
	const struct bld_instr *from;
	const char *base;     /* FROM image expanded with the global ARGs */
	const char *platform; /* --platform expanded, or NULL */
	int base_stage;	      /* the stage FROM names, or -1 */
	struct bld_step *steps;
	size_t nsteps;
	const unsigned *deps; /* stages this one needs, without repeats */
	size_t ndeps;
	bool reachable;		  /* needed to build the target */
	const struct bld_kv *env; /* ENV at the end of the stage */
	size_t nenv;
};

struct bld_plan {
	struct bld_stage *stages;
	size_t nstages;
	const struct bld_kv *meta_args; /* global ARGs (value NULL when unset) */
	size_t nmeta_args;
	unsigned target;
	const unsigned *order; /* reachable stages, each after the stages it needs */
	size_t norder;
	struct bld_arena *arena; /* private */
};

/*
 * Builds the plan. Returns 0 and *ret (free with bld_plan_free), or -EINVAL
 * (bad instruction, expansion error, unknown target, bad stage index, cycle,
 * an instruction before the first FROM), -E2BIG (too many stages), -ENOMEM.
 */
int bld_plan_new(const struct bld_dockerfile *df, const struct bld_plan_opts *opts,
		 struct bld_plan **ret, struct sc_err *err);
/* NULL-safe; returns NULL. */
struct bld_plan *bld_plan_free(struct bld_plan *plan);

/* The stage called name (case-insensitive), or NULL. */
const struct bld_stage *bld_plan_stage_by_name(const struct bld_plan *plan, const char *name);
