/*
 * The op graph: the plan's reachable stages turned into vertices, in the
 * plan's order (each stage after the stages it needs), with identical ops
 * merged by digest. See solver.h for the invariants.
 *
 * What each instruction becomes:
 *   FROM image    an image vertex (one per distinct image); FROM scratch: none;
 *                 FROM stage: that stage's last vertex
 *   RUN           exec, on the previous vertex
 *   COPY, ADD     copy, on the previous vertex, reading the context, or the
 *                 last vertex of a stage, or an image vertex (--from)
 *   WORKDIR       mkdir (the folder is made, owned by the current USER)
 *   others        no vertex: they only change the image config (assemble.c)
 */
#include <assert.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "content.h"
#include "solver.h"
#include "util.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* What a stage hands to the stages built FROM it. */
struct stage_state {
	struct vtx *top;
	const struct base_image *img; /* the image at the bottom of the stage's chain, or NULL */
	struct json_object *cfg;      /* its config's "config" object (owned by img) */
	const char *const *shell;
	size_t nshell;
	bool workdir_set;
	bool built;
};

static void
vtx_free(struct vtx *v)
{
	if (!v)
		return;
	free(v->name);
	free(v->desc);
	free(v->position);
	sc_buf_free(&v->def);
	free(v->ref);
	for (size_t i = 0; i < v->argc; i++)
		free(v->argv[i]);
	free(v->argv);
	for (size_t i = 0; i < v->nenv; i++)
		free(v->env[i]);
	free(v->env);
	free(v->cwd);
	free(v->user);
	free(v->from_what);
	free(v->path);
	free(v->users);
	free(v->snapshot);
	free(v->layer.snapshot);
	free(v);
}

void
graph_free(struct bld_ctx *b)
{
	for (size_t i = 0; i < b->nv; i++)
		vtx_free(b->v[i]);
	free(b->v);
	b->v = NULL;
	b->nv = b->capv = 0;
}

static int
def_str(struct sc_buf *d, const char *s)
{
	return sc_buf_put(d, s ? s : "", strlen(s ? s : "") + 1);
}

static int
add_user(struct vtx *from, struct vtx *to)
{
	struct vtx **p = realloc(from->users, (from->nusers + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	from->users = p;
	p[from->nusers++] = to;
	to->pending++;
	return 0;
}

/*
 * Finishes a new vertex: its digest from its definition and its inputs'
 * digests; merged into an existing one with the same digest (the new one
 * is freed and *vp points at the old), else appended.
 */
static int
vtx_add(struct bld_ctx *b, struct vtx **vp, struct sc_err *err)
{
	struct vtx *v = *vp;
	struct sc_sha256 *h = NULL;
	int r = sc_sha256_new(&h);
	if (r >= 0)
		r = sc_sha256_update(h, v->def.data, v->def.len);
	if (r >= 0 && v->input)
		r = sc_sha256_update(h, v->input->digest, strlen(v->input->digest) + 1);
	if (r >= 0 && v->src)
		r = sc_sha256_update(h, v->src->digest, strlen(v->src->digest) + 1);
	if (r >= 0)
		r = sc_sha256_final(h, v->digest);
	sc_sha256_free(h);
	if (r < 0) {
		vtx_free(v);
		*vp = NULL;
		return sc_err_set(err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < b->nv; i++) {
		if (strcmp(b->v[i]->digest, v->digest) != 0)
			continue;
		/* The same op twice (two stages with the same start): it runs once. */
		if (v->no_cache)
			b->v[i]->no_cache = true;
		vtx_free(v);
		*vp = b->v[i];
		return 0;
	}
	if (b->nv == b->capv) {
		size_t c = b->capv ? b->capv * 2 : 32;
		struct vtx **p = realloc(b->v, c * sizeof(*p));
		if (!p) {
			vtx_free(v);
			*vp = NULL;
			return sc_err_set(err, -ENOMEM, "out of memory");
		}
		b->v = p;
		b->capv = c;
	}
	/* Progress numbers the ops it shows; the context has no line of its own. */
	v->num = v->type == OP_LOCAL ? 0 : ++b->nshown;
	b->v[b->nv++] = v;
	r = 0;
	if (v->input)
		r = add_user(v->input, v);
	if (r >= 0 && v->src)
		r = add_user(v->src, v);
	return r < 0 ? sc_err_set(err, -ENOMEM, "out of memory") : 0;
}

static struct vtx *
vtx_new(enum op_type type)
{
	struct vtx *v = calloc(1, sizeof(*v));
	if (v) {
		v->type = type;
		v->state = V_WAIT;
	}
	return v;
}

static int
common_def(struct bld_ctx *b, struct vtx *v, const char *kind)
{
	char epoch[32];
	snprintf(epoch, sizeof(epoch), "%lld", (long long)b->epoch);
	int r = def_str(&v->def, kind);
	if (r >= 0)
		r = def_str(&v->def, epoch);
	return r;
}

static bool
has_prefix(const char *s, const char *prefix)
{
	for (; *prefix; s++, prefix++)
		if (*s != *prefix)
			return false;
	return true;
}

/*
 * Looks ref up as docker would name it: as written, with ":latest" when it
 * has no tag or digest, and without the "docker.io/" and "library/" a
 * fully qualified Docker Hub name carries.
 */
static int
image_lookup(struct bld_ctx *b, const char *ref, struct snap_image_info *ret)
{
	char cand[4][SNAP_IMAGE_NAME_MAX + 16];
	size_t n = 0;
	const char *short_ref = ref;
	if (has_prefix(short_ref, "docker.io/"))
		short_ref += strlen("docker.io/");
	if (has_prefix(short_ref, "library/"))
		short_ref += strlen("library/");
	const char *slash = strrchr(ref, '/');
	const char *last = slash ? slash + 1 : ref;
	bool tagged = strchr(last, ':') || strchr(ref, '@');
	snprintf(cand[n++], sizeof(cand[0]), "%s", ref);
	if (!tagged)
		snprintf(cand[n++], sizeof(cand[0]), "%s:latest", ref);
	if (short_ref != ref) {
		snprintf(cand[n++], sizeof(cand[0]), "%s", short_ref);
		if (!tagged)
			snprintf(cand[n++], sizeof(cand[0]), "%s:latest", short_ref);
	}
	int r = -ENOENT;
	store_lock(b);
	for (size_t i = 0; i < n && r == -ENOENT; i++)
		r = snap_image_get(b->s, cand[i], ret, NULL);
	store_unlock(b);
	return r;
}

static const char **json_strv(struct json_object *obj, const char *key, size_t *ret_n);

/* Reads and splits what the build uses of a found image's config. */
static int
base_image_load(struct bld_ctx *b, struct base_image *img, struct sc_err *err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	store_lock(b);
	int r = snap_content_read_all(b->s, img->info.config, SNAP_IMAGE_CONFIG_MAX, &buf, &len,
				      err);
	store_unlock(b);
	if (r < 0)
		return sc_err_prefix(err, r, "image '%s'", img->ref);
	struct json_tokener *tok = json_tokener_new();
	img->config = tok ? json_tokener_parse_ex(tok, buf, (int)len) : NULL;
	if (tok)
		json_tokener_free(tok);
	if (!img->config || !json_object_is_type(img->config, json_type_object))
		return sc_err_set(err, -EINVAL, "image '%s': its config is not a JSON object",
				  img->ref);
	json_object_object_get_ex(img->config, "config", &img->cfg);
	size_t n = 0;
	_cleanup_free_ const char **env = json_strv(img->cfg, "Env", &n);
	img->env = calloc(n + 1, sizeof(*img->env));
	if (!img->env)
		return sc_err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(env[i], '=');
		if (!eq || eq == env[i])
			continue;
		/* the keys are new strings, the values point into the config */
		char *key = strndup(env[i], (size_t)(eq - env[i]));
		if (!key)
			return sc_err_set(err, -ENOMEM, "out of memory");
		img->env[img->nenv++] = (struct bld_kv){.key = key, .value = eq + 1};
	}
	img->shell = json_strv(img->cfg, "Shell", &img->nshell);
	return 0;
}

int
base_image_get(struct bld_ctx *b, const char *ref, const struct base_image **ret,
	       struct sc_err *err)
{
	for (size_t i = 0; i < b->nimages; i++) {
		if (strcmp(b->images[i]->ref, ref) != 0)
			continue;
		*ret = b->images[i];
		return b->images[i]->config ? 0 : -ENOENT;
	}
	struct base_image **p = realloc(b->images, (b->nimages + 1) * sizeof(*p));
	if (!p)
		return sc_err_set(err, -ENOMEM, "out of memory");
	b->images = p;
	struct base_image *img = calloc(1, sizeof(*img));
	if (!img || !(img->ref = strdup(ref))) {
		free(img);
		return sc_err_set(err, -ENOMEM, "out of memory");
	}
	b->images[b->nimages++] = img;
	*ret = img;
	int r = image_lookup(b, ref, &img->info);
	if (r == -ENOENT)
		return r; /* remembered as missing: no config */
	if (r < 0)
		return sc_err_setsys(err, r, "image '%s'", ref);
	r = base_image_load(b, img, err);
	if (r < 0 && img->config) {
		json_object_put(img->config);
		img->config = NULL;
	}
	return r;
}

void
base_image_free(struct base_image *img)
{
	if (!img)
		return;
	free(img->ref);
	snap_image_info_clear(&img->info);
	for (size_t i = 0; i < img->nenv; i++)
		free((char *)img->env[i].key);
	free(img->env);
	free(img->shell);
	json_object_put(img->config);
	free(img);
}

/* The image vertex for ref, looked up in the store now (a missing image fails the build early). */
static int
image_vertex(struct bld_ctx *b, const char *ref, unsigned line, struct vtx **ret,
	     struct sc_err *err)
{
	const struct base_image *img = NULL;
	int r = base_image_get(b, ref, &img, err);
	if (r == -ENOENT)
		return sc_err_set(err, -ENOENT,
				  "%s:%u: image '%s' is not in the store; add it with 'snapctl "
				  "image import' (snapctl does not pull from registries yet)",
				  b->dockerfile, line, ref);
	if (r < 0)
		return sc_err_prefix(err, r, "%s:%u", b->dockerfile, line);
	struct vtx *v = vtx_new(OP_IMAGE);
	if (!v)
		return sc_err_set(err, -ENOMEM, "out of memory");
	v->img = img;
	v->ref = strdup(ref);
	char name[600];
	snprintf(name, sizeof(name), "[internal] image %s", ref);
	v->name = strdup(name);
	v->desc = strdup(name + 11);
	r = v->ref && v->name && v->desc ? common_def(b, v, "image") : -ENOMEM;
	if (r >= 0)
		r = def_str(&v->def, img->info.manifest);
	if (r < 0) {
		vtx_free(v);
		return sc_err_set(err, -ENOMEM, "out of memory");
	}
	r = vtx_add(b, &v, err);
	*ret = v;
	return r;
}

static const char *cfg_str(struct json_object *cfg, const char *key);

/* Remembers the image's ONBUILD triggers (once per name) for build.c to splice in. */
static int
onbuild_record(struct bld_ctx *b, const char *image, struct json_object *cfg, struct sc_err *err)
{
	size_t n = 0;
	_cleanup_free_ const char **v = json_strv(cfg, "OnBuild", &n);
	if (!n)
		return 0;
	for (size_t i = 0; i < b->nonbuild; i++)
		if (strcmp(b->onbuild[i].image, image) == 0)
			return 0;
	struct onbuild *p = realloc(b->onbuild, (b->nonbuild + 1) * sizeof(*p));
	if (!p)
		return sc_err_set(err, -ENOMEM, "out of memory");
	b->onbuild = p;
	struct onbuild *o = &p[b->nonbuild];
	*o = (struct onbuild){.image = strdup(image), .triggers = calloc(n, sizeof(char *))};
	if (!o->image || !o->triggers) {
		free(o->image);
		free(o->triggers);
		return sc_err_set(err, -ENOMEM, "out of memory");
	}
	b->nonbuild++;
	for (size_t i = 0; i < n; i++) {
		if (strchr(v[i], '\n'))
			return sc_err_set(err, -EINVAL,
					  "image '%s': ONBUILD trigger '%.60s' spans lines", image,
					  v[i]);
		if (!(o->triggers[o->n++] = strdup(v[i])))
			return sc_err_set(err, -ENOMEM, "out of memory");
	}
	return 0;
}

/*
 * bld_plan_opts.base_config: the base image's ENV, WorkingDir and User for
 * the plan's expansion. An image missing from the store gives no config
 * here; graph_build() reports it with its line.
 */
int
plan_base_config(void *userdata, const char *image, const struct bld_kv **ret_env, size_t *ret_nenv,
		 const char **ret_workdir, const char **ret_user, struct sc_err *err)
{
	struct bld_ctx *b = userdata;
	const struct base_image *img = NULL;
	int r = base_image_get(b, image, &img, err);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	*ret_env = img->env;
	*ret_nenv = img->nenv;
	*ret_workdir = cfg_str(img->cfg, "WorkingDir");
	*ret_user = cfg_str(img->cfg, "User");
	return onbuild_record(b, image, img->cfg, err);
}

/* A string array member of obj as a NULL-terminated vector pointing into obj. */
static const char **
json_strv(struct json_object *obj, const char *key, size_t *ret_n)
{
	struct json_object *a;
	*ret_n = 0;
	if (!obj || !json_object_object_get_ex(obj, key, &a) ||
	    !json_object_is_type(a, json_type_array))
		return NULL;
	size_t n = json_object_array_length(a);
	const char **v = calloc(n + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(a, i));
		v[(*ret_n)++] = s ? s : "";
	}
	return v;
}

static const char *
cfg_str(struct json_object *cfg, const char *key)
{
	struct json_object *o;
	if (!cfg || !json_object_object_get_ex(cfg, key, &o) ||
	    !json_object_is_type(o, json_type_string))
		return NULL;
	return json_object_get_string(o);
}

/* Sets NAME=VALUE in env, replacing an earlier value of NAME. */
static int
env_set(char ***env, size_t *n, const char *name, size_t nlen, const char *kv)
{
	for (size_t i = 0; i < *n; i++) {
		if (strncmp((*env)[i], name, nlen) == 0 && (*env)[i][nlen] == '=') {
			char *c = strdup(kv);
			if (!c)
				return -ENOMEM;
			free((*env)[i]);
			(*env)[i] = c;
			return 0;
		}
	}
	return sc_strv_push(env, n, kv);
}

/* RUN's environment: the base image's, then the stage's ENV and ARG values, PATH by default. */
static int
run_env(struct vtx *v, const struct stage_state *st, const struct bld_step *step)
{
	int r = 0;
	for (size_t i = 0; st->img && i < st->img->nenv && r >= 0; i++) {
		const struct bld_kv *kv = &st->img->env[i];
		size_t len = strlen(kv->key) + strlen(kv->value) + 2;
		_cleanup_free_ char *e = malloc(len);
		if (!e)
			return -ENOMEM;
		snprintf(e, len, "%s=%s", kv->key, kv->value);
		r = env_set(&v->env, &v->nenv, kv->key, strlen(kv->key), e);
	}
	for (size_t i = 0; i < step->nrun_env && r >= 0; i++) {
		const struct bld_kv *kv = &step->run_env[i];
		if (!kv->value)
			continue;
		size_t len = strlen(kv->key) + strlen(kv->value) + 2;
		_cleanup_free_ char *s = malloc(len);
		if (!s)
			return -ENOMEM;
		snprintf(s, len, "%s=%s", kv->key, kv->value);
		r = env_set(&v->env, &v->nenv, kv->key, strlen(kv->key), s);
	}
	bool has_path = false;
	for (size_t i = 0; i < v->nenv; i++)
		has_path |= strncmp(v->env[i], "PATH=", 5) == 0;
	if (r >= 0 && !has_path)
		r = sc_strv_push(&v->env, &v->nenv, DEFAULT_PATH);
	return r;
}

static const char *
step_workdir(const struct stage_state *st, const struct bld_step *step)
{
	if (st->workdir_set)
		return step->workdir;
	const char *w = cfg_str(st->cfg, "WorkingDir");
	return w && *w ? w : "/";
}

static const char *
step_user(const struct stage_state *st, const struct bld_step *step)
{
	if (step->user && *step->user)
		return step->user;
	const char *u = cfg_str(st->cfg, "User");
	return u && *u ? u : NULL;
}

/* "RUN make" from the instruction as written, for names and records. */
static char *
instr_text(const struct bld_step *step)
{
	const struct bld_df_node *n = step->instr->node;
	const char *orig = n->original ? n->original : "";
	/* Collapse white space runs so names stay on one line. */
	size_t len = strlen(orig);
	char *s = malloc(len + 1), *o = s;
	if (!s)
		return NULL;
	bool space = false;
	for (const char *p = orig; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
			space = o != s;
			continue;
		}
		if (space)
			*o++ = ' ';
		space = false;
		*o++ = *p;
	}
	*o = '\0';
	/* Keyword in upper case, as BuildKit shows it. */
	for (char *p = s; *p && *p != ' '; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	return s;
}

/* The build context as a vertex (one per build: identical ones merge). */
static int
local_vertex(struct bld_ctx *b, struct vtx **ret, struct sc_err *err)
{
	struct vtx *v = vtx_new(OP_LOCAL);
	if (!v)
		return sc_err_set(err, -ENOMEM, "out of memory");
	v->name = strdup("[internal] load build context");
	v->desc = strdup("build context");
	int r = v->name && v->desc ? common_def(b, v, "local") : -ENOMEM;
	if (r >= 0)
		r = def_str(&v->def, b->context);
	if (r < 0) {
		vtx_free(v);
		return sc_err_set(err, -ENOMEM, "out of memory");
	}
	r = vtx_add(b, &v, err);
	*ret = v;
	return r;
}

static int
exec_def(struct bld_ctx *b, struct vtx *v, const struct stage_state *st,
	 const struct bld_step *step, struct sc_err *err)
{
	const struct bld_instr *in = step->instr;
	const struct bld_cmdline *cmd = &in->u.run.cmd;
	unsigned line = in->start_line;
	if (in->u.run.nmounts)
		return sc_err_set(err, -EOPNOTSUPP,
				  "%s:%u: RUN --mount is not supported yet; copy what the step "
				  "needs with COPY",
				  b->dockerfile, line);
	int r = 0;
	if (cmd->shell_form) {
		static const char *const sh[] = {"/bin/sh", "-c"};
		const char *const *shell = st->nshell ? st->shell : sh;
		size_t nshell = st->nshell ? st->nshell : 2;
		for (size_t i = 0; i < nshell && r >= 0; i++)
			r = sc_strv_push(&v->argv, &v->argc, shell[i]);
		const char *script = cmd->argc ? cmd->argv[0] : "";
		/* RUN <<EOF: the heredoc is the script. */
		if (cmd->nfiles && strncmp(script, "<<", 2) == 0)
			script = cmd->files[0].content;
		if (r >= 0)
			r = sc_strv_push(&v->argv, &v->argc, script);
	} else {
		for (size_t i = 0; i < cmd->argc && r >= 0; i++)
			r = sc_strv_push(&v->argv, &v->argc, cmd->argv[i]);
	}
	if (r >= 0 && v->argc == 0)
		return sc_err_set(err, -EINVAL, "%s:%u: RUN has no command", b->dockerfile, line);
	if (r >= 0)
		r = run_env(v, st, step);
	const char *user = step_user(st, step);
	v->cwd = strdup(step_workdir(st, step));
	v->user = user ? strdup(user) : NULL;
	if (r < 0 || !v->cwd || (user && !v->user))
		return sc_err_set(err, -ENOMEM, "out of memory");
	v->network =
		in->u.run.network != BLD_NETWORK_DEFAULT ? in->u.run.network : b->opts->network;
	if (v->network == BLD_NETWORK_DEFAULT)
		v->network = BLD_NETWORK_HOST;
	r = common_def(b, v, "exec");
	for (size_t i = 0; i < v->argc && r >= 0; i++)
		r = def_str(&v->def, v->argv[i]);
	if (r >= 0)
		r = def_str(&v->def, "");
	for (size_t i = 0; i < v->nenv && r >= 0; i++)
		r = def_str(&v->def, v->env[i]);
	if (r >= 0)
		r = def_str(&v->def, "");
	if (r >= 0)
		r = def_str(&v->def, v->cwd);
	if (r >= 0)
		r = def_str(&v->def, v->user ? v->user : "");
	if (r >= 0)
		r = def_str(&v->def, bld_network_to_string(v->network));
	return r < 0 ? sc_err_set(err, -ENOMEM, "out of memory") : 0;
}

static int
copy_def(struct bld_ctx *b, struct vtx *v, const struct stage_state *st,
	 const struct bld_step *step, struct sc_err *err)
{
	const struct bld_instr *in = step->instr;
	const struct bld_copy *cp = &in->u.copy;
	unsigned line = in->start_line;
	if (cp->parents)
		return sc_err_set(err, -EOPNOTSUPP, "%s:%u: COPY --parents is not supported yet",
				  b->dockerfile, line);
	int r = bld_copy_flags_validate(step->chown, step->chmod, err);
	if (r < 0)
		return sc_err_prefix(err, r, "%s:%u", b->dockerfile, line);
	if (step->nwords < 1)
		return sc_err_set(err, -EINVAL, "%s:%u: %s needs a destination", b->dockerfile,
				  line, bld_instr_kind_to_string(in->kind));
	v->copy = (struct bld_copy_op){
		.srcs = step->words,
		.nsrcs = step->nwords - 1,
		.inline_srcs = cp->inline_srcs,
		.ninline = cp->ninline,
		.dest = step->words[step->nwords - 1],
		.workdir = step_workdir(st, step),
		.chown = step->chown,
		.chmod = step->chmod,
		.add = in->kind == BLD_INSTR_ADD,
		.excludes = cp->excludes,
		.nexcludes = cp->nexcludes,
	};
	r = common_def(b, v, in->kind == BLD_INSTR_ADD ? "add" : "copy");
	for (size_t i = 0; i < v->copy.nsrcs && r >= 0; i++)
		r = def_str(&v->def, v->copy.srcs[i]);
	if (r >= 0)
		r = def_str(&v->def, "");
	for (size_t i = 0; i < v->copy.ninline && r >= 0; i++) {
		r = def_str(&v->def, v->copy.inline_srcs[i].name);
		if (r >= 0)
			r = def_str(&v->def, v->copy.inline_srcs[i].data);
	}
	if (r >= 0)
		r = def_str(&v->def, "");
	for (size_t i = 0; i < v->copy.nexcludes && r >= 0; i++)
		r = def_str(&v->def, v->copy.excludes[i]);
	if (r >= 0)
		r = def_str(&v->def, "");
	if (r >= 0)
		r = def_str(&v->def, v->copy.dest);
	if (r >= 0)
		r = def_str(&v->def, v->copy.workdir);
	if (r >= 0)
		r = def_str(&v->def, v->copy.chown);
	if (r >= 0)
		r = def_str(&v->def, v->copy.chmod);
	if (r >= 0)
		r = def_str(&v->def, vtx_reads_context(v) ? "context" : "from");
	return r < 0 ? sc_err_set(err, -ENOMEM, "out of memory") : 0;
}

static bool
stage_no_cache(struct bld_ctx *b, const struct bld_stage *stage)
{
	if (b->opts->no_cache)
		return true;
	for (size_t i = 0; i < b->opts->nno_cache_filter; i++) {
		const char *f = b->opts->no_cache_filter[i];
		if (stage->name && strcasecmp(stage->name, f) == 0)
			return true;
		char idx[16];
		snprintf(idx, sizeof(idx), "%u", stage->index);
		if (strcmp(idx, f) == 0)
			return true;
	}
	return false;
}

static int
position(struct bld_ctx *b, struct vtx *v, unsigned stage, size_t step)
{
	char buf[PATH_MAX * 2 + 64];
	int n = snprintf(buf, sizeof(buf), "%s|%s|%u|%zu", b->context, b->dockerfile, stage, step);
	char d[SC_DIGEST_STR_LEN + 1];
	if (n < 0 || sc_sha256_buf(buf, strlen(buf), d) < 0)
		return -ENOMEM;
	v->position = strdup(d + 7);
	return v->position ? 0 : -ENOMEM;
}

static int
stage_build(struct bld_ctx *b, struct stage_state *states, const struct bld_stage *stage,
	    struct sc_err *err)
{
	struct stage_state *st = &states[stage->index];
	unsigned line = stage->from->start_line;
	int r = 0;
	if (stage->base_stage >= 0) {
		const struct stage_state *base = &states[stage->base_stage];
		assert(base->built);
		*st = *base;
		st->built = false;
	} else if (strcmp(stage->base, "scratch") == 0) {
		*st = (struct stage_state){0};
	} else {
		*st = (struct stage_state){0};
		r = image_vertex(b, stage->base, line, &st->top, err);
		if (r < 0)
			return r;
		st->img = st->top->img;
		st->cfg = st->img->cfg;
		st->shell = st->img->shell;
		st->nshell = st->img->nshell;
	}
	char label[64];
	if (stage->name)
		snprintf(label, sizeof(label), "%.60s", stage->name);
	else
		snprintf(label, sizeof(label), "stage-%u", stage->index);
	unsigned total = 1, pos = 1;
	for (size_t i = 0; i < stage->nsteps; i++)
		total += step_makes_vertex(stage->steps[i].instr->kind);
	bool no_cache = stage_no_cache(b, stage);

	for (size_t i = 0; i < stage->nsteps && r >= 0; i++) {
		const struct bld_step *step = &stage->steps[i];
		const struct bld_instr *in = step->instr;
		if (in->kind == BLD_INSTR_SHELL) {
			st->shell = in->u.shell.argv;
			st->nshell = in->u.shell.argc;
			continue;
		}
		if (!step_makes_vertex(in->kind))
			continue;
		struct vtx *v = vtx_new(in->kind == BLD_INSTR_RUN	? OP_EXEC
					: in->kind == BLD_INSTR_WORKDIR ? OP_MKDIR
									: OP_COPY);
		if (!v)
			return sc_err_set(err, -ENOMEM, "out of memory");
		v->input = st->top;
		v->stage = stage;
		v->step = step;
		v->no_cache = no_cache;
		v->desc = instr_text(step);
		char name[1024];
		snprintf(name, sizeof(name), "[%s %u/%u] %s", label, ++pos, total,
			 v->desc ? v->desc : "");
		v->name = strdup(name);
		if (!v->desc || !v->name || position(b, v, stage->index, i) < 0) {
			vtx_free(v);
			return sc_err_set(err, -ENOMEM, "out of memory");
		}
		switch (v->type) {
		case OP_EXEC:
			r = exec_def(b, v, st, step, err);
			break;
		case OP_MKDIR: {
			st->workdir_set = true;
			const char *user = step_user(st, step);
			v->path = strdup(step->workdir);
			v->user = user ? strdup(user) : NULL;
			r = !v->path || (user && !v->user) ? -ENOMEM : common_def(b, v, "mkdir");
			if (r >= 0)
				r = def_str(&v->def, v->path);
			if (r >= 0)
				r = def_str(&v->def, v->user);
			if (r < 0)
				r = sc_err_set(err, -ENOMEM, "out of memory");
			break;
		}
		default:
			if (step->from_stage >= 0) {
				const struct stage_state *from = &states[step->from_stage];
				assert(from->built);
				v->src = from->top;
				char w[128];
				const struct bld_stage *fs = &b->plan->stages[step->from_stage];
				if (fs->name)
					snprintf(w, sizeof(w), "stage '%.100s'", fs->name);
				else
					snprintf(w, sizeof(w), "stage %u", fs->index);
				v->from_what = strdup(w);
			} else if (step->from) {
				r = image_vertex(b, step->from, in->start_line, &v->src, err);
				char w[600];
				snprintf(w, sizeof(w), "image '%.500s'", step->from);
				v->from_what = strdup(w);
			} else {
				r = local_vertex(b, &v->src, err);
				v->from_what = strdup("build context");
			}
			if (r >= 0 && !v->from_what)
				r = sc_err_set(err, -ENOMEM, "out of memory");
			if (r >= 0)
				r = copy_def(b, v, st, step, err);
			break;
		}
		if (r < 0) {
			vtx_free(v);
			return r;
		}
		r = vtx_add(b, &v, err);
		if (r < 0)
			return r;
		st->top = v;
	}
	st->built = true;
	return r;
}

int
graph_build(struct bld_ctx *b, struct sc_err *err)
{
	const struct bld_plan *plan = b->plan;
	struct stage_state *states = calloc(plan->nstages + 1, sizeof(*states));
	b->stage_top = calloc(plan->nstages + 1, sizeof(*b->stage_top));
	int r = states && b->stage_top ? 0 : sc_err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < plan->norder && r >= 0; i++)
		r = stage_build(b, states, &plan->stages[plan->order[i]], err);
	for (size_t i = 0; r >= 0 && i < plan->nstages; i++)
		b->stage_top[i] = states[i].top;
	free(states);
	return r;
}
