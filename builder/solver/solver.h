/*
 * The solver's insides, shared by its files: the op graph (graph.c), the
 * run of one op (ops.c), scheduling (build.c) and the image assembly
 * (assemble.c). Not a public interface: other tools use build.h.
 *
 * Invariants:
 *  1. A vertex's inputs are vertices created before it, so creation order
 *     is a topological order; #N numbers the vertices progress shows (all
 *     but the local one) in creation order.
 *  2. Two vertices never share a digest (identical ops are merged as the
 *     graph is made).
 *  3. Store calls happen only with b->store_lock held.
 *  4. A vertex in state DONE has snapshot set ("" for scratch) and holds it
 *     through the build's lease until the build ends.
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "build.h"
#include "digest.h"
#include "dockerignore.h"
#include "fileop.h"
#include "image.h"
#include "layer.h"
#include "plan.h"
#include "util.h"

struct json_object;
struct base_image;

/* local: the build context (filtered by .dockerignore), read by COPY/ADD. */
enum op_type { OP_IMAGE, OP_LOCAL, OP_EXEC, OP_COPY, OP_MKDIR, _OP_TYPE_MAX };

enum vtx_state { V_WAIT, V_READY, V_RUNNING, V_DONE, V_FAILED };

struct vtx {
	unsigned num; /* #N */
	enum op_type type;
	char *name;	   /* "[build 3/4] RUN make" */
	char *desc;	   /* "RUN make": for cache records and MISS lines */
	struct vtx *input; /* the rootfs it works on; NULL: scratch */
	struct vtx *src;   /* COPY: the local vertex (context), or the vertex whose rootfs is
			    * the source (--from); NULL: --from a stage with nothing in it */
	const struct bld_stage *stage;
	const struct bld_step *step;
	char *position; /* names the step's place (file, stage, index) for its note */
	bool no_cache;
	struct sc_buf def; /* canonical definition */
	char digest[SC_DIGEST_STR_LEN + 1];

	/* OP_IMAGE */
	char *ref;		      /* the image name, or NULL for scratch */
	const struct base_image *img; /* the image (owned by the build) */
	/* OP_EXEC */
	char **argv, **env;
	size_t argc, nenv;
	char *cwd, *user;
	enum bld_network network;
	/* OP_COPY */
	struct bld_copy_op copy;
	char *from_what; /* "build context", "stage 'x'", "image 'y'" */
	/* OP_MKDIR */
	char *path;

	struct vtx **users; /* vertices that take this one as input or src */
	size_t nusers;
	unsigned pending; /* inputs not done yet */
	enum vtx_state state;
	char cache_key[SC_DIGEST_STR_LEN + 1];
	char *snapshot; /* the result: committed snapshot key, "" for scratch */
	struct snap_image_layer layer;
	bool has_layer;
	bool cached;
	uint64_t started;
	uint64_t created; /* when the result was first made (the cache record's time), ns */
};

/* A base image named by a FROM or COPY --from, looked up and read once per build. */
struct base_image {
	char *ref; /* as the Dockerfile names it */
	struct snap_image_info info;
	struct json_object *config; /* the whole config document; NULL: not in the store */
	struct json_object *cfg;    /* its "config" object, or NULL */
	struct bld_kv *env;	    /* config.Env split at '=' (keys owned, values in config) */
	size_t nenv;
	const char **shell; /* config.Shell, pointing into config */
	size_t nshell;
};

/* The ONBUILD triggers of a base image, run right after the FROM that names it. */
struct onbuild {
	char *image; /* as the FROM line names it */
	char **triggers;
	size_t n;
};

struct bld_ctx {
	struct snap_store *s;
	const struct bld_build_opts *opts;
	pthread_mutex_t store_lock;
	struct bld_dockerfile *df;
	struct bld_plan *plan;
	struct bld_ignore *ignore;
	struct bld_hash_cache *hc;
	int context_fd;
	uint64_t context_dev; /* st_dev of the context: only its files' digests are remembered */
	char *context;	      /* absolute */
	char *dockerfile;     /* as named */
	char lease[64];
	char owner[64]; /* "build.PID.STARTTIME": names work-in-progress snapshots */
	atomic_uint seq;
	int64_t epoch; /* SOURCE_DATE_EPOCH, or -1 */
	struct snap_layer_diff_opts diff;
	atomic_bool stop; /* a step failed, or opts->cancel was set */

	struct base_image **images; /* every base image the build named, once each */
	size_t nimages;
	char *df_text; /* the Dockerfile as read */
	size_t df_len;
	struct onbuild *onbuild; /* base images' ONBUILD triggers, by image name */
	size_t nonbuild;
	struct vtx **v;
	size_t nv, capv;
	unsigned nshown;	/* vertices numbered for progress */
	struct vtx **stage_top; /* per plan stage: its last vertex (NULL: scratch) */
	/* scheduling */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t ndone, nrunning;
	int error; /* first failure */
	struct sc_err err;
};

/* graph.c: bld_plan_opts.base_config over the store. */
int plan_base_config(void *userdata, const char *image, const struct bld_kv **ret_env,
		     size_t *ret_nenv, const char **ret_workdir, const char **ret_user,
		     struct sc_err *err);
/* graph.c: the vertices for the plan's reachable stages. */
int graph_build(struct bld_ctx *b, struct sc_err *err);
void graph_free(struct bld_ctx *b);

/* ops.c: runs one vertex (cache lookup, then the work on a miss). */
int vtx_run(struct bld_ctx *b, struct vtx *v, struct sc_err *err);

/* assemble.c: the target stage's image, stored (named by opts->tags) and exported. */
int image_assemble(struct bld_ctx *b, struct snap_image_info *ret, struct sc_err *err);

/* Progress helpers (build.c). */
void emit(struct bld_ctx *b, enum bld_event_type type, const struct vtx *v, const char *text,
	  size_t len, int stream);

/*
 * graph.c: the base image named ref, looked up and read on first use and
 * kept for the build (*ret belongs to b). -ENOENT when it is not in the
 * store (remembered too), -EINVAL a config that is not JSON.
 */
int base_image_get(struct bld_ctx *b, const char *ref, const struct base_image **ret,
		   struct sc_err *err);
void base_image_free(struct base_image *img);

static inline bool
vtx_reads_context(const struct vtx *v)
{
	return v->src && v->src->type == OP_LOCAL;
}

/* Instructions that become vertices; the others only change the image config. */
static inline bool
step_makes_vertex(enum bld_instr_kind k)
{
	return k == BLD_INSTR_RUN || k == BLD_INSTR_COPY || k == BLD_INSTR_ADD ||
	       k == BLD_INSTR_WORKDIR;
}

static inline void
store_lock(struct bld_ctx *b)
{
	pthread_mutex_lock(&b->store_lock);
}

static inline void
store_unlock(struct bld_ctx *b)
{
	pthread_mutex_unlock(&b->store_lock);
}
