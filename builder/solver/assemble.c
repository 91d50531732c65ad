/*
 * The build's image: the target stage's layers on top of its base image's,
 * a config built the way BuildKit's Dockerfile frontend builds it (the
 * base's config, then each instruction of the stage chain in order), and a
 * history entry per instruction (empty_layer when it changed no file).
 * Stored under every -t name (or only in the content store), then exported
 * to every -o.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "cleanup.h"
#include "solver.h"

static struct json_object *
obj_member(struct json_object *o, const char *key, enum json_type type)
{
	struct json_object *x;
	if (json_object_object_get_ex(o, key, &x) && json_object_is_type(x, type))
		return x;
	x = type == json_type_array ? json_object_new_array() : json_object_new_object();
	json_object_object_add(o, key, x);
	return x;
}

static struct json_object *
strv_json(const char *const *v, size_t n)
{
	struct json_object *a = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

static void
env_put(struct json_object *cfg, const char *key, const char *value)
{
	struct json_object *env = obj_member(cfg, "Env", json_type_array);
	size_t klen = strlen(key);
	size_t len = klen + strlen(value) + 2;
	char *kv = malloc(len);
	if (!kv)
		return;
	snprintf(kv, len, "%s=%s", key, value);
	for (size_t i = 0; i < json_object_array_length(env); i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(env, i));
		if (s && strncmp(s, key, klen) == 0 && s[klen] == '=') {
			json_object_array_put_idx(env, i, json_object_new_string(kv));
			free(kv);
			return;
		}
	}
	json_object_array_add(env, json_object_new_string(kv));
	free(kv);
}

/* CMD/ENTRYPOINT argv: exec form as given, shell form through the stage's SHELL. */
static struct json_object *
cmd_json(const struct bld_cmdline *cmd, struct json_object *shell)
{
	if (!cmd->shell_form)
		return strv_json(cmd->argv, cmd->argc);
	struct json_object *a = json_object_new_array();
	if (shell && json_object_array_length(shell)) {
		for (size_t i = 0; i < json_object_array_length(shell); i++)
			json_object_array_add(a,
					      json_object_get(json_object_array_get_idx(shell, i)));
	} else {
		json_object_array_add(a, json_object_new_string("/bin/sh"));
		json_object_array_add(a, json_object_new_string("-c"));
	}
	json_object_array_add(a, json_object_new_string(cmd->argc ? cmd->argv[0] : ""));
	return a;
}

static void
health_json(struct json_object *cfg, const struct bld_healthcheck *h)
{
	struct json_object *o = json_object_new_object();
	if (h->none) {
		struct json_object *t = json_object_new_array();
		json_object_array_add(t, json_object_new_string("NONE"));
		json_object_object_add(o, "Test", t);
	} else {
		json_object_object_add(o, "Test", strv_json(h->test, h->ntest));
		if (h->interval_ns)
			json_object_object_add(o, "Interval",
					       json_object_new_int64((int64_t)h->interval_ns));
		if (h->timeout_ns)
			json_object_object_add(o, "Timeout",
					       json_object_new_int64((int64_t)h->timeout_ns));
		if (h->start_period_ns)
			json_object_object_add(o, "StartPeriod",
					       json_object_new_int64((int64_t)h->start_period_ns));
		if (h->start_interval_ns)
			json_object_object_add(
				o, "StartInterval",
				json_object_new_int64((int64_t)h->start_interval_ns));
		if (h->retries)
			json_object_object_add(o, "Retries", json_object_new_int(h->retries));
	}
	json_object_object_add(cfg, "Healthcheck", o);
}

/* Applies one instruction to the config; returns whether CMD was set. */
static void
apply_step(struct json_object *top, struct json_object *cfg, const struct bld_step *step,
	   bool *cmd_set)
{
	const struct bld_instr *in = step->instr;
	struct json_object *shell = NULL;
	json_object_object_get_ex(cfg, "Shell", &shell);
	switch (in->kind) {
	case BLD_INSTR_ENV:
		for (size_t i = 0; i + 1 < step->nwords; i += 2)
			env_put(cfg, step->words[i], step->words[i + 1]);
		break;
	case BLD_INSTR_LABEL: {
		struct json_object *l = obj_member(cfg, "Labels", json_type_object);
		for (size_t i = 0; i + 1 < step->nwords; i += 2)
			json_object_object_add(l, step->words[i],
					       json_object_new_string(step->words[i + 1]));
		break;
	}
	case BLD_INSTR_MAINTAINER:
		if (step->nwords >= 2)
			json_object_object_add(top, "author",
					       json_object_new_string(step->words[1]));
		break;
	case BLD_INSTR_CMD:
		json_object_object_add(cfg, "Cmd", cmd_json(&in->u.cmd, shell));
		*cmd_set = true;
		break;
	case BLD_INSTR_ENTRYPOINT:
		json_object_object_add(cfg, "Entrypoint", cmd_json(&in->u.cmd, shell));
		/* An ENTRYPOINT drops the CMD the base image had (not one set in this stage). */
		if (!*cmd_set)
			json_object_object_del(cfg, "Cmd");
		break;
	case BLD_INSTR_WORKDIR:
		json_object_object_add(cfg, "WorkingDir", json_object_new_string(step->workdir));
		break;
	case BLD_INSTR_USER:
		json_object_object_add(cfg, "User",
				       json_object_new_string(step->nwords ? step->words[0] : ""));
		break;
	case BLD_INSTR_EXPOSE: {
		struct json_object *p = obj_member(cfg, "ExposedPorts", json_type_object);
		for (size_t i = 0; i < step->nwords; i++)
			json_object_object_add(p, step->words[i], json_object_new_object());
		break;
	}
	case BLD_INSTR_VOLUME: {
		struct json_object *p = obj_member(cfg, "Volumes", json_type_object);
		for (size_t i = 0; i < step->nwords; i++)
			json_object_object_add(p, step->words[i], json_object_new_object());
		break;
	}
	case BLD_INSTR_STOPSIGNAL:
		json_object_object_add(cfg, "StopSignal",
				       json_object_new_string(step->nwords ? step->words[0] : ""));
		break;
	case BLD_INSTR_HEALTHCHECK:
		health_json(cfg, &in->u.health);
		break;
	case BLD_INSTR_SHELL:
		json_object_object_add(cfg, "Shell", strv_json(in->u.shell.argv, in->u.shell.argc));
		break;
	case BLD_INSTR_ONBUILD: {
		struct json_object *o = obj_member(cfg, "OnBuild", json_type_array);
		json_object_array_add(o, json_object_new_string(in->u.onbuild.expression));
		break;
	}
	default:
		break;
	}
}

static void
time_format(char buf[32], uint64_t ns)
{
	time_t t = (time_t)(ns / 1000000000ull);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *
host_arch(void)
{
	struct utsname u;
	return uname(&u) == 0 && strcmp(u.machine, "aarch64") == 0 ? "arm64" : "amd64";
}

static void
history_add(struct json_object *hist, const char *created, const struct vtx *v,
	    const struct bld_step *step)
{
	const struct bld_df_node *n = step->instr->node;
	enum bld_instr_kind k = step->instr->kind;
	struct sc_buf by = {0};
	if (v && v->type == OP_EXEC) {
		sc_buf_printf(&by, "RUN");
		for (size_t i = 0; i < v->argc; i++)
			sc_buf_printf(&by, " %s", v->argv[i]);
	} else {
		sc_buf_printf(&by, "%s", v && v->desc ? v->desc : (n->original ? n->original : ""));
	}
	if (k == BLD_INSTR_RUN || k == BLD_INSTR_COPY || k == BLD_INSTR_ADD)
		sc_buf_printf(&by, " # buildkit");
	struct json_object *h = json_object_new_object();
	json_object_object_add(h, "created", json_object_new_string(created));
	json_object_object_add(h, "created_by",
			       json_object_new_string(by.data ? (char *)by.data : ""));
	json_object_object_add(h, "comment", json_object_new_string("buildkit.dockerfile.v0"));
	if (!v || !v->has_layer)
		json_object_object_add(h, "empty_layer", json_object_new_boolean(1));
	json_object_array_add(hist, h);
	sc_buf_free(&by);
}

int
image_assemble(struct bld_ctx *b, struct snap_image_info *ret, struct sc_err *err)
{
	const struct bld_plan *plan = b->plan;
	/* The stage chain: the root stage (FROM an image or scratch) up to the target. */
	unsigned chain[BLD_PLAN_MAX_STAGES];
	size_t nchain = 0;
	for (int i = (int)plan->target; i >= 0 && nchain < BLD_PLAN_MAX_STAGES;
	     i = plan->stages[i].base_stage)
		chain[nchain++] = (unsigned)i;

	/* The vertices of the chain, bottom first. */
	struct vtx *vs[4096];
	size_t nvs = 0;
	struct vtx *image = NULL;
	for (struct vtx *v = b->stage_top[plan->target]; v; v = v->input) {
		if (v->type == OP_IMAGE) {
			image = v;
			break;
		}
		if (nvs == sizeof(vs) / sizeof(vs[0]))
			return sc_err_set(err, -E2BIG, "more than %zu steps in one image", nvs);
		vs[nvs++] = v;
	}
	for (size_t i = 0; i < nvs / 2; i++) {
		struct vtx *t = vs[i];
		vs[i] = vs[nvs - 1 - i];
		vs[nvs - 1 - i] = t;
	}

	struct json_object *top = NULL;
	struct snap_image_layer *layers = NULL;
	size_t nbase = 0;
	int r = 0;
	if (image) {
		/* the base's config is the build's: the new one starts as a copy */
		if (json_object_deep_copy(image->img->config, &top, NULL) != 0)
			return sc_err_set(err, -ENOMEM, "out of memory");
		store_lock(b);
		r = snap_image_layers(b->s, &image->img->info, &layers, &nbase, err);
		store_unlock(b);
		if (r < 0) {
			json_object_put(top);
			return r;
		}
	} else {
		/* FROM scratch: the target platform (--platform os/arch[/variant]), else this
		 * machine's. */
		char os[32] = "linux", arch[32], variant[32] = "";
		snprintf(arch, sizeof(arch), "%s", host_arch());
		if (b->opts->platform)
			sscanf(b->opts->platform, "%31[^/]/%31[^/]/%31s", os, arch, variant);
		top = json_object_new_object();
		json_object_object_add(top, "architecture", json_object_new_string(arch));
		json_object_object_add(top, "os", json_object_new_string(os));
		if (variant[0])
			json_object_object_add(top, "variant", json_object_new_string(variant));
		struct json_object *c = json_object_new_object();
		struct json_object *env = json_object_new_array();
		json_object_array_add(env,
				      json_object_new_string("PATH=/usr/local/sbin:/usr/local/"
							     "bin:/usr/sbin:/usr/bin:/sbin:/bin"));
		json_object_object_add(c, "Env", env);
		json_object_object_add(top, "config", c);
	}
	struct json_object *cfg = obj_member(top, "config", json_type_object);
	/* The base's ONBUILD triggers ran in this build; they do not pass on. */
	json_object_object_del(cfg, "OnBuild");
	struct json_object *hist = obj_member(top, "history", json_type_array);

	/*
	 * Times: SOURCE_DATE_EPOCH when set; otherwise each step's own (when its
	 * cache record was made) and for steps without a result the one before,
	 * so a build that is all cache hits gives the same image again.
	 */
	char created[32];
	const char *base_created = json_object_get_string(json_object_object_get(top, "created"));
	snprintf(created, sizeof(created), "%s",
		 base_created && *base_created ? base_created : "1970-01-01T00:00:00Z");
	if (b->epoch >= 0)
		time_format(created, (uint64_t)b->epoch * 1000000000ull);

	size_t vi = 0;
	for (size_t c = nchain; c-- > 0;) {
		const struct bld_stage *st = &plan->stages[chain[c]];
		bool cmd_set = false;
		for (size_t i = 0; i < st->nsteps; i++) {
			const struct bld_step *step = &st->steps[i];
			struct vtx *v = NULL;
			if (step_makes_vertex(step->instr->kind) && vi < nvs)
				v = vs[vi++];
			if (v && b->epoch < 0)
				time_format(created, v->created);
			apply_step(top, cfg, step, &cmd_set);
			history_add(hist, created, v, step);
		}
	}

	json_object_object_add(top, "created", json_object_new_string(created));

	/* Layers: the base's, then each step that changed files. */
	size_t nlayers = nbase;
	struct snap_image_layer *all = realloc(layers, (nbase + nvs + 1) * sizeof(*all));
	if (!all) {
		snap_image_layers_free(layers, nbase);
		json_object_put(top);
		return sc_err_set(err, -ENOMEM, "out of memory");
	}
	layers = all;
	for (size_t i = 0; i < nvs; i++) {
		if (!vs[i]->has_layer)
			continue;
		layers[nlayers] = vs[i]->layer;
		layers[nlayers].snapshot = strdup(vs[i]->snapshot);
		nlayers++;
	}
	const char *top_snapshot = nvs	   ? vs[nvs - 1]->snapshot
				   : image ? image->img->info.snapshot
					   : "";
	/* The top layer stands for the rootfs: point it at the final snapshot. */
	if (nlayers && nvs) {
		free(layers[nlayers - 1].snapshot);
		layers[nlayers - 1].snapshot = strdup(top_snapshot);
	}
	struct json_object *rootfs = json_object_new_object(), *ids = json_object_new_array();
	json_object_object_add(rootfs, "type", json_object_new_string("layers"));
	for (size_t i = 0; i < nlayers; i++)
		json_object_array_add(ids, json_object_new_string(layers[i].diff_id));
	json_object_object_add(rootfs, "diff_ids", ids);
	json_object_object_add(top, "rootfs", rootfs);

	const char *js = json_object_to_json_string_ext(
		top, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char platform[64];
	struct json_object *arch;
	snprintf(platform, sizeof(platform), "linux/%s",
		 json_object_object_get_ex(top, "architecture", &arch)
			 ? json_object_get_string(arch)
			 : host_arch());
	struct snap_image_new img = {
		.config = js,
		.config_len = js ? strlen(js) : 0,
		.layers = layers,
		.nlayers = nlayers,
		.snapshot = top_snapshot,
		.platform = platform,
		.oci_media_types = true,
	};
	store_lock(b);
	r = js ? snap_image_store(b->s, &img, b->opts->tags, b->opts->ntags, ret, err)
	       : sc_err_set(err, -ENOMEM, "out of memory");
	store_unlock(b);
	snap_image_layers_free(layers, nlayers);
	json_object_put(top);
	if (r < 0)
		return r;

	for (size_t i = 0; i < b->opts->noutputs && r >= 0; i++) {
		const struct bld_output *o = &b->opts->outputs[i];
		struct snap_image_info info = *ret;
		if (o->name)
			info.name = (char *)o->name;
		char msg[PATH_MAX + 64];
		int n = snprintf(msg, sizeof(msg), "exporting to %s %s",
				 snap_export_type_to_string(o->opts.type),
				 strcmp(o->opts.dest, "-") ? o->opts.dest : "stdout");
		emit(b, BLD_EVENT_INFO, NULL, msg, (size_t)(n < 0 ? 0 : n), 0);
		store_lock(b);
		r = snap_image_export_info(b->s, &info, &o->opts, err);
		store_unlock(b);
		if (r < 0)
			r = sc_err_prefix(err, r, "export to %s",
					  snap_export_type_to_string(o->opts.type));
	}
	if (r < 0)
		snap_image_info_clear(ret);
	return r;
}
