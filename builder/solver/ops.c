/*
 * Running one vertex: its cache key, the cache lookup, and on a miss the
 * work itself in a fresh active snapshot on top of its input, committed
 * and diffed into a layer, then recorded in the cache.
 *
 * A vertex's work snapshot is named "OWNER.N" (OWNER = build.PID.START),
 * so a build that dies leaves only snapshots a later build can tell are
 * dead. On any failure the work snapshot is unmounted and removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "cleanup.h"
#include "content.h"
#include "executor.h"
#include "gc.h"
#include "lease.h"
#include "log.h"
#include "mount.h"
#include "solver.h"
#include "store.h"

#define NOTE_FILES_MAX 20000 /* files a note remembers per COPY */
#define MISS_NAMES_MAX 5     /* file names a MISS line lists per kind */

struct rootfs {
	char key[128]; /* the work snapshot, "" for none */
	char dir[PATH_MAX];
	char rel[PATH_MAX];
	bool mounted, have_dir;
};

/* A snapshot of kind on top of parent ("" for none) mounted on a new folder under tmp/. */
static int
rootfs_open(struct bld_ctx *b, const char *parent, enum snap_kind kind, uint64_t quota,
	    struct rootfs *rf, struct sc_err *err)
{
	*rf = (struct rootfs){0};
	store_lock(b);
	int r = snap_store_mktemp(b->s, "build", rf->dir, rf->rel, err);
	rf->have_dir = r >= 0;
	if (r >= 0 && (kind == SNAP_KIND_ACTIVE || (parent && parent[0]))) {
		snprintf(rf->key, sizeof(rf->key), "%s.%u", b->owner, atomic_fetch_add(&b->seq, 1));
		const struct snap_prepare_opts po = {.owned = true, .quota = quota};
		r = snap_snapshot_prepare(b->s, rf->key, parent && parent[0] ? parent : NULL, kind,
					  &po, NULL, err);
		if (r < 0)
			rf->key[0] = '\0';
		struct snap_mounts m = {0};
		if (r >= 0)
			r = snap_snapshot_mounts(b->s, rf->key, &m, err);
		if (r >= 0)
			r = snap_mounts_apply(&m, rf->dir, err);
		rf->mounted = r >= 0;
		snap_mounts_clear(&m);
	}
	store_unlock(b);
	return r;
}

/* Unmounts; removes the work snapshot too when drop. */
static void
rootfs_close(struct bld_ctx *b, struct rootfs *rf, bool drop)
{
	if (rf->mounted)
		snap_mount_remove(rf->dir, NULL);
	rf->mounted = false;
	if (rf->have_dir)
		rmdir(rf->dir);
	rf->have_dir = false;
	if (drop && rf->key[0]) {
		store_lock(b);
		snap_snapshot_remove(b->s, rf->key, NULL);
		store_unlock(b);
		rf->key[0] = '\0';
	}
}

static int
hash_parts(char ret[SC_DIGEST_STR_LEN + 1], const struct sc_buf *def, const char *const *parts,
	   size_t n)
{
	struct sc_sha256 *h = NULL;
	int r = sc_sha256_new(&h);
	if (r >= 0)
		r = sc_sha256_update(h, def->data, def->len);
	for (size_t i = 0; i < n && r >= 0; i++)
		r = sc_sha256_update(h, parts[i] ? parts[i] : "",
				     strlen(parts[i] ? parts[i] : "") + 1);
	if (r >= 0)
		r = sc_sha256_final(h, ret);
	sc_sha256_free(h);
	return r;
}

/* ---- notes: what the last build of a step position used, to explain a miss ---- */

static struct json_object *
note_new(const struct vtx *v, const char *def_digest, const struct bld_copy_selection *sel)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "desc", json_object_new_string(v->desc ? v->desc : ""));
	json_object_object_add(o, "def", json_object_new_string(def_digest));
	json_object_object_add(o, "parent",
			       json_object_new_string(v->input ? v->input->cache_key : ""));
	json_object_object_add(o, "parent_is_image",
			       json_object_new_boolean(v->input && v->input->type == OP_IMAGE));
	if (v->type == OP_EXEC) {
		struct json_object *a = json_object_new_array(), *e = json_object_new_array();
		for (size_t i = 0; i < v->argc; i++)
			json_object_array_add(a, json_object_new_string(v->argv[i]));
		for (size_t i = 0; i < v->nenv; i++)
			json_object_array_add(e, json_object_new_string(v->env[i]));
		json_object_object_add(o, "argv", a);
		json_object_object_add(o, "env", e);
		json_object_object_add(o, "cwd", json_object_new_string(v->cwd));
		json_object_object_add(o, "user", json_object_new_string(v->user ? v->user : ""));
	}
	if (sel) {
		json_object_object_add(o, "selection", json_object_new_string(sel->digest));
		if (sel->nfiles <= NOTE_FILES_MAX) {
			struct json_object *f = json_object_new_array();
			for (size_t i = 0; i < sel->nfiles; i++) {
				json_object_array_add(f,
						      json_object_new_string(sel->files[i].path));
				json_object_array_add(f,
						      json_object_new_string(sel->files[i].digest));
			}
			json_object_object_add(o, "files", f);
		}
	}
	return o;
}

static const char *
jstr(struct json_object *o, const char *key)
{
	struct json_object *x;
	if (!o || !json_object_object_get_ex(o, key, &x))
		return "";
	const char *s = json_object_get_string(x);
	return s ? s : "";
}

static bool
jarray_equal(struct json_object *a, struct json_object *b)
{
	if (!a || !b)
		return a == b;
	return json_object_equal(a, b) != 0;
}

struct name_list {
	struct sc_buf buf;
	size_t n;
	bool root; /* names are paths in a stage's or image's root: show them absolute */
};

static void
name_add(struct name_list *l, const char *name)
{
	if (l->n++ < MISS_NAMES_MAX)
		sc_buf_printf(&l->buf, "%s%s%s", l->buf.len ? ", " : "", l->root ? "/" : "", name);
}

static void
name_done(struct name_list *l, const char *what, struct sc_buf *out)
{
	if (!l->n)
		return;
	if (out->len)
		sc_buf_printf(out, "; ");
	sc_buf_printf(out, "%s: %.*s", what, (int)l->buf.len,
		      l->buf.data ? (char *)l->buf.data : "");
	if (l->n > MISS_NAMES_MAX)
		sc_buf_printf(out, " and %zu more", l->n - MISS_NAMES_MAX);
	sc_buf_free(&l->buf);
}

/* changed/added/removed between an old note's file list and a new selection (both sorted). */
static void
files_diff(struct json_object *old, const struct bld_copy_selection *sel, bool root,
	   struct sc_buf *out)
{
	struct name_list ch = {.root = root}, add = {.root = root}, rm = {.root = root};
	size_t n = old ? json_object_array_length(old) / 2 : 0, i = 0, j = 0;
	while (i < n || j < sel->nfiles) {
		const char *op =
			i < n ? json_object_get_string(json_object_array_get_idx(old, 2 * i))
			      : NULL;
		const char *np = j < sel->nfiles ? sel->files[j].path : NULL;
		int c = !op ? 1 : !np ? -1 : strcmp(op, np);
		if (c < 0) {
			name_add(&rm, op);
			i++;
		} else if (c > 0) {
			name_add(&add, np);
			j++;
		} else {
			const char *od =
				json_object_get_string(json_object_array_get_idx(old, 2 * i + 1));
			if (!od || strcmp(od, sel->files[j].digest) != 0)
				name_add(&ch, np);
			i++;
			j++;
		}
	}
	name_done(&ch, "changed", out);
	name_done(&add, "added", out);
	name_done(&rm, "removed", out);
}

static bool
is_build_arg(struct bld_ctx *b, const char *name, size_t len)
{
	for (size_t i = 0; i < b->opts->nbuild_args; i++) {
		const char *a = b->opts->build_args[i];
		if (strncmp(a, name, len) == 0 && (a[len] == '=' || a[len] == '\0'))
			return true;
	}
	/* A declared ARG changes only through a build argument or its default. */
	for (size_t i = 0; i < b->plan->nmeta_args; i++)
		if (strlen(b->plan->meta_args[i].key) == len &&
		    strncmp(b->plan->meta_args[i].key, name, len) == 0)
			return true;
	return false;
}

/* Which variables differ between two env arrays of "K=V". */
static void
env_diff(struct bld_ctx *b, const struct vtx *v, struct json_object *old, struct sc_buf *out)
{
	struct name_list args = {0}, envs = {0};
	size_t n = old ? json_object_array_length(old) : 0;
	/* New or changed values. */
	for (size_t i = 0; i < v->nenv; i++) {
		bool same = false;
		for (size_t k = 0; k < n && !same; k++)
			same = strcmp(json_object_get_string(json_object_array_get_idx(old, k)),
				      v->env[i]) == 0;
		if (same)
			continue;
		size_t len = strcspn(v->env[i], "=");
		char name[256];
		snprintf(name, sizeof(name), "%.*s", (int)(len < 255 ? len : 255), v->env[i]);
		name_add(is_build_arg(b, v->env[i], len) ? &args : &envs, name);
	}
	/* Values that went away. */
	for (size_t k = 0; k < n; k++) {
		const char *o = json_object_get_string(json_object_array_get_idx(old, k));
		size_t len = strcspn(o, "=");
		bool found = false;
		for (size_t i = 0; i < v->nenv && !found; i++)
			found = strncmp(v->env[i], o, len + 1) == 0;
		if (found)
			continue;
		char name[256];
		snprintf(name, sizeof(name), "%.*s", (int)(len < 255 ? len : 255), o);
		name_add(is_build_arg(b, o, len) ? &args : &envs, name);
	}
	if (args.n) {
		sc_buf_printf(out, "build-arg%s ", args.n > 1 ? "s" : "");
		sc_buf_put(out, args.buf.data, args.buf.len);
		sc_buf_printf(out, " changed");
		sc_buf_free(&args.buf);
	}
	if (envs.n) {
		if (out->len)
			sc_buf_printf(out, "; ");
		sc_buf_printf(out, "ENV ");
		sc_buf_put(out, envs.buf.data, envs.buf.len);
		sc_buf_printf(out, " changed");
		sc_buf_free(&envs.buf);
	}
}

/* The name of the note kept for v's step position ("pos:POSITION"). */
static void
note_name(const struct vtx *v, char *buf, size_t len)
{
	snprintf(buf, len, "pos:%s", v->position);
}

/* Says why v missed the cache when its position was built before; nothing when it is new. */
static void
explain_miss(struct bld_ctx *b, const struct vtx *v, const char *def_digest,
	     const struct bld_copy_selection *sel)
{
	char name[128];
	note_name(v, name, sizeof(name));
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	store_lock(b);
	int r = snap_cache_note_get(b->s, name, &buf, &len, NULL);
	store_unlock(b);
	if (r < 0)
		return;
	struct json_object *old = json_tokener_parse(buf);
	if (!old)
		return;
	struct sc_buf why = {0};
	const char *kw = v->type == OP_EXEC    ? "RUN"
			 : v->type == OP_MKDIR ? "WORKDIR"
			 : v->copy.add	       ? "ADD"
					       : "COPY";
	struct json_object *x;
	if (v->type == OP_EXEC) {
		struct json_object *argv = NULL, *env = NULL;
		json_object_object_get_ex(old, "argv", &argv);
		json_object_object_get_ex(old, "env", &env);
		struct json_object *now = note_new(v, def_digest, NULL), *nargv = NULL,
				   *nenv = NULL;
		json_object_object_get_ex(now, "argv", &nargv);
		json_object_object_get_ex(now, "env", &nenv);
		if (!jarray_equal(argv, nargv))
			sc_buf_printf(&why, "RUN line changed");
		else if (!jarray_equal(env, nenv))
			env_diff(b, v, env, &why);
		else if (strcmp(jstr(old, "cwd"), v->cwd) != 0)
			sc_buf_printf(&why, "WORKDIR changed");
		else if (strcmp(jstr(old, "user"), v->user ? v->user : "") != 0)
			sc_buf_printf(&why, "USER changed");
		json_object_put(now);
	} else if (strcmp(jstr(old, "def"), def_digest) != 0) {
		sc_buf_printf(&why, "%s line changed", kw);
	} else if (sel && strcmp(jstr(old, "selection"), sel->digest) != 0) {
		if (json_object_object_get_ex(old, "files", &x) && sel->nfiles <= NOTE_FILES_MAX)
			files_diff(x, sel, !vtx_reads_context(v), &why);
		if (!why.len)
			sc_buf_printf(&why, "source files changed");
	}
	if (!why.len && strcmp(jstr(old, "parent"), v->input ? v->input->cache_key : "") != 0) {
		if (v->input && v->input->type == OP_IMAGE)
			sc_buf_printf(&why, "base image changed");
		else if (v->input)
			sc_buf_printf(&why, "previous step #%u changed", v->input->num);
		else
			sc_buf_printf(&why, "base changed");
	}
	if (!why.len)
		sc_buf_printf(&why, "%s", "the cache record was pruned");
	struct sc_buf line = {0};
	sc_buf_printf(&line, "%s \xe2\x80\x94 %.*s", v->desc, (int)why.len, (char *)why.data);
	emit(b, BLD_EVENT_MISS, v, (const char *)line.data, line.len, 0);
	sc_buf_free(&line);
	sc_buf_free(&why);
	json_object_put(old);
}

/* What this run of v used, for the next build's explanation (heap JSON, or NULL). */
static char *
note_json(const struct vtx *v, const char *def_digest, const struct bld_copy_selection *sel)
{
	struct json_object *o = note_new(v, def_digest, sel);
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	char *copy = s && strlen(s) <= SNAP_CACHE_NOTE_MAX ? strdup(s) : NULL;
	json_object_put(o);
	return copy;
}

/*
 * A hit at a position that has no note yet (the same steps built from
 * another folder first): note it, so the next miss there can say why.
 */
static void
note_if_missing(struct bld_ctx *b, const struct vtx *v, const char *def_digest,
		const struct bld_copy_selection *sel)
{
	char name[128];
	note_name(v, name, sizeof(name));
	_cleanup_free_ char *old = NULL;
	store_lock(b);
	int r = snap_cache_note_get(b->s, name, &old, NULL, NULL);
	store_unlock(b);
	if (r != -ENOENT)
		return;
	_cleanup_free_ char *note = note_json(v, def_digest, sel);
	if (!note)
		return;
	struct snap_cache_note n = {.name = name, .data = note, .len = strlen(note)};
	store_lock(b);
	snap_cache_note_put(b->s, &n, NULL);
	store_unlock(b);
}

/* ---- the work ---- */

struct exec_out {
	struct bld_ctx *b;
	const struct vtx *v;
};

static void
exec_output(void *arg, int stream, const char *line, size_t len)
{
	const struct exec_out *o = arg;
	emit(o->b, BLD_EVENT_LOG, o->v, line, len, stream);
}

/*
 * When a failed RUN step's snapshot is (nearly) at its --quota, "; snapshot
 * 'KEY' is at its quota (USED of QUOTA)" for the error; else "".
 */
static void
quota_note(struct bld_ctx *b, const struct rootfs *rf, char *buf, size_t len)
{
	buf[0] = '\0';
	if (!b->opts->quota || !rf->key[0])
		return;
	_cleanup_close_ int fd = open(rf->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		syncfs(fd); /* the quota's figures follow what is on disk */
	uint64_t used;
	struct sc_err qerr = SC_ERR_INIT;
	int r = snap_snapshot_quota(b->s, rf->key, NULL, &used, &qerr);
	sc_err_clear(&qerr);
	/* Within a MiB: writes are refused a little before the exact limit. */
	if (r < 0 || used + (1u << 20) < b->opts->quota)
		return;
	char u[32], q[32];
	snprintf(buf, len, "; snapshot '%s' is at its quota (%s of --quota %s: EDQUOT)", rf->key,
		 sc_size_format(used, u, sizeof(u)), sc_size_format(b->opts->quota, q, sizeof(q)));
}

static int
run_exec(struct bld_ctx *b, struct vtx *v, struct rootfs *rf, struct sc_err *err)
{
	char bundle[PATH_MAX], rel[PATH_MAX], id[160];
	store_lock(b);
	int r = snap_store_mktemp(b->s, "bundle", bundle, rel, err);
	store_unlock(b);
	if (r < 0)
		return r;
	snprintf(id, sizeof(id), "snapctl-%s-%u", b->owner + 6, v->num);
	struct exec_out out = {.b = b, .v = v};
	struct bld_exec_spec spec = {
		.runtime = b->opts->runtime,
		.id = id,
		.bundle_dir = bundle,
		.rootfs = rf->dir,
		.argv = (const char *const *)v->argv,
		.argc = v->argc,
		.env = (const char *const *)v->env,
		.nenv = v->nenv,
		.cwd = v->cwd,
		.user = v->user,
		.network = v->network,
		.output = exec_output,
		.output_arg = &out,
		.cancel = &b->stop,
	};
	struct bld_exec_result res = {0};
	r = bld_exec_run(&spec, &res, err);
	sc_rm_rf_at(AT_FDCWD, bundle);
	if (r >= 0 && res.exit_code != 0) {
		/* One line: the command, the code and the last lines of output. */
		struct sc_buf cmd = {0}, tail = {0};
		for (size_t i = 0; i < v->argc; i++)
			sc_buf_printf(&cmd, "%s%s", i ? " " : "", v->argv[i]);
		for (const char *p = res.tail; p && *p;) {
			size_t n = strcspn(p, "\n");
			if (n)
				sc_buf_printf(&tail, "%s%.*s", tail.len ? " | " : "", (int)n, p);
			p += n + (p[n] == '\n');
		}
		char full[200];
		quota_note(b, rf, full, sizeof(full));
		r = sc_err_set(err, -ECHILD, "process '%.300s' exited with code %d%s%.600s%s",
			       cmd.data ? (char *)cmd.data : "", res.exit_code,
			       tail.len ? "; last output: " : "",
			       tail.data ? (char *)tail.data : "", full);
		sc_buf_free(&cmd);
		sc_buf_free(&tail);
	}
	bld_exec_result_clear(&res);
	return r;
}

static int
run_mkdir(struct bld_ctx *b, struct vtx *v, struct rootfs *rf, struct sc_err *err)
{
	_cleanup_close_ int fd = open(rf->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sc_err_setsys(err, -errno, "cannot open the step's root");
	uid_t uid = 0;
	gid_t gid = 0;
	int r = 0;
	if (v->user)
		r = bld_user_resolve(fd, v->user, &uid, &gid, NULL, NULL, err);
	if (r >= 0)
		r = bld_mkdir_p(fd, v->path, uid, gid, err);
	return r < 0 ? r : 0;
}

/* The source of a COPY: the context, or a view of another vertex's result. */
struct copy_src {
	struct bld_copy_source src;
	struct rootfs rf;
	int fd;
};

static int
copy_src_open(struct bld_ctx *b, struct vtx *v, struct copy_src *cs, struct sc_err *err)
{
	*cs = (struct copy_src){.fd = -EBADF};
	if (vtx_reads_context(v)) {
		cs->src = (struct bld_copy_source){
			.root_dirfd = b->context_fd, .ignore = b->ignore, .context = true};
		return 0;
	}
	/* a view of the source's result; an empty folder for a stage with nothing in it */
	int r = rootfs_open(b, v->src ? v->src->snapshot : "", SNAP_KIND_VIEW, 0, &cs->rf, err);
	if (r < 0) {
		rootfs_close(b, &cs->rf, true);
		return r;
	}
	cs->fd = open(cs->rf.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cs->fd < 0) {
		r = sc_err_setsys(err, -errno, "cannot open '%s'", cs->rf.dir);
		rootfs_close(b, &cs->rf, true);
		return r;
	}
	cs->src = (struct bld_copy_source){.root_dirfd = cs->fd};
	return 0;
}

static void
copy_src_close(struct bld_ctx *b, struct copy_src *cs)
{
	if (cs->fd >= 0)
		close(cs->fd);
	cs->fd = -EBADF;
	if (cs->src.context)
		return;
	rootfs_close(b, &cs->rf, true);
}

static int
run_copy(struct vtx *v, struct copy_src *cs, struct rootfs *rf, struct sc_err *err)
{
	_cleanup_close_ int fd = open(rf->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sc_err_setsys(err, -errno, "cannot open the step's root");
	int r = bld_copy_apply(&cs->src, &v->copy, fd, err);
	if (r == -ENOENT && !cs->src.context)
		return sc_err_prefix(err, r, "%s", v->from_what);
	return r < 0 ? r : 0;
}

/*
 * The unmount of a step's rootfs and a syncfs() of the store's file system,
 * on a thread of their own: the disk writes the step's files out while its
 * layer is made. (Unmounting an overlay syncs its upper file system too.)
 */
struct bg_sync {
	pthread_t thread;
	struct rootfs *rf;
	int fd;
	int code; /* -errno of syncfs() or open() */
	bool started;
};

static void *
bg_sync_main(void *arg)
{
	struct bg_sync *bs = arg;
	if (bs->rf->mounted)
		snap_mount_remove(bs->rf->dir, NULL);
	bs->rf->mounted = false;
	if (bs->fd >= 0 && syncfs(bs->fd) < 0)
		bs->code = -errno;
	return NULL;
}

/* Starts the unmount of rf and the sync of the file system dir is on. */
static void
bg_sync_start(struct bg_sync *bs, struct rootfs *rf, const char *dir)
{
	*bs = (struct bg_sync){.rf = rf, .fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
	if (bs->fd < 0)
		bs->code = -errno;
	bs->started = sc_thread_start(&bs->thread, bg_sync_main, bs) == 0;
	if (!bs->started)
		bg_sync_main(bs);
}

static int
bg_sync_wait(struct bg_sync *bs, struct sc_err *err)
{
	if (bs->started)
		pthread_join(bs->thread, NULL);
	if (bs->fd >= 0)
		close(bs->fd);
	if (bs->code < 0)
		return sc_err_setsys(err, bs->code, "cannot sync the store's file system");
	return 0;
}

/*
 * Unmounts the work snapshot and makes its layer, then commits the snapshot
 * and records the result (and its note). The snapshot's files are synced
 * (while the layer is made) before the commit: a record never names a
 * snapshot whose files a crash could still take back.
 */
static int
finish(struct bld_ctx *b, struct vtx *v, struct rootfs *rf, const char *note, struct sc_err *err)
{
	struct bg_sync bs;
	bg_sync_start(&bs, rf, snap_store_root(b->s));
	struct snap_layer_desc d = {0};
	store_lock(b);
	int r = snap_layer_diff(b->s, rf->key, &b->diff, &d, err);
	store_unlock(b);
	sc_debug("#%u diffed: %.1f ms", v->num, (sc_now_ns() - v->started) / 1e6);
	int rs = bg_sync_wait(&bs, err); /* the first failure is the one reported */
	if (r >= 0)
		r = rs;
	if (r < 0)
		return r;
	sc_debug("#%u synced: %.1f ms", v->num, (sc_now_ns() - v->started) / 1e6);

	char name[200];
	snprintf(name, sizeof(name), "cache/%s", v->cache_key + 7);
	store_lock(b);
	const struct snap_label labels[] = {{.key = SNAP_CACHE_TYPE_LABEL, .value = "regular"}};
	r = snap_snapshot_commit(b->s, name, rf->key, labels, 1, err);
	if (r == -EEXIST) {
		/* Another build made the same step at the same time: keep ours under its own name.
		 */
		sc_err_clear(err);
		snprintf(name, sizeof(name), "cache/%s.%s.%u", v->cache_key + 7, b->owner + 6,
			 v->num);
		r = snap_snapshot_commit(b->s, name, rf->key, labels, 1, err);
	}
	if (r >= 0)
		rf->key[0] = '\0'; /* committed: no longer ours to remove */
	v->created = sc_now_ns();
	struct snap_cache_record rec = {
		.snapshot = name, .description = v->desc, .type = "regular", .created = v->created};
	memcpy(rec.key, v->cache_key, sizeof(rec.key));
	if (d.entries > 0) {
		memcpy(rec.layer, d.digest, sizeof(rec.layer));
		memcpy(rec.diff_id, d.diff_id, sizeof(rec.diff_id));
		rec.layer_size = d.size;
		rec.layer_media_type = (char *)d.media_type;
	}
	char nname[128];
	note_name(v, nname, sizeof(nname));
	struct snap_cache_note n = {.name = nname, .data = note, .len = note ? strlen(note) : 0};
	if (r >= 0)
		r = snap_cache_put(b->s, &rec, note ? &n : NULL, err);
	store_unlock(b);
	if (r < 0)
		return r;
	v->snapshot = strdup(name);
	if (!v->snapshot)
		return sc_err_set(err, -ENOMEM, "out of memory");
	if (d.entries > 0) {
		v->has_layer = true;
		memcpy(v->layer.digest, d.digest, sizeof(d.digest));
		memcpy(v->layer.diff_id, d.diff_id, sizeof(d.diff_id));
		v->layer.size = d.size;
		snprintf(v->layer.media_type, sizeof(v->layer.media_type), "%s", d.media_type);
	}
	return 0;
}

/* A hit: takes the record's snapshot and layer (the layer is made again if it was collected). */
static int
take_hit(struct bld_ctx *b, struct vtx *v, struct snap_cache_record *rec, struct sc_err *err)
{
	int r = 0;
	if (rec->blob_missing) {
		struct snap_layer_desc d = {0};
		store_lock(b);
		r = snap_layer_diff(b->s, rec->snapshot, &b->diff, &d, err);
		if (r >= 0) {
			memcpy(rec->layer, d.digest, sizeof(rec->layer));
			memcpy(rec->diff_id, d.diff_id, sizeof(rec->diff_id));
			rec->layer_size = d.size;
			free(rec->layer_media_type);
			rec->layer_media_type = strdup(d.media_type);
			r = rec->layer_media_type ? snap_cache_put(b->s, rec, NULL, err) : -ENOMEM;
		}
		store_unlock(b);
		if (r < 0)
			return r;
	}
	v->snapshot = strdup(rec->snapshot);
	if (!v->snapshot)
		return sc_err_set(err, -ENOMEM, "out of memory");
	v->created = rec->created;
	if (rec->layer[0]) {
		v->has_layer = true;
		memcpy(v->layer.digest, rec->layer, sizeof(rec->layer));
		memcpy(v->layer.diff_id, rec->diff_id, sizeof(rec->diff_id));
		v->layer.size = rec->layer_size;
		snprintf(v->layer.media_type, sizeof(v->layer.media_type), "%s",
			 rec->layer_media_type);
	}
	v->cached = true;
	return 0;
}

static int
run_image(struct bld_ctx *b, struct vtx *v, struct sc_err *err)
{
	/* Hold the image's manifest (and through it config and layers) and its snapshot. */
	store_lock(b);
	const struct snap_image_info *info = &v->img->info;
	int r = snap_lease_add(b->s, b->lease, "blob", info->manifest, err);
	if (r >= 0 && info->snapshot[0])
		r = snap_lease_add(b->s, b->lease, "snapshot", info->snapshot, err);
	store_unlock(b);
	if (r < 0)
		return sc_err_prefix(err, r, "image '%s'", v->ref);
	v->snapshot = strdup(info->snapshot);
	const char *parts[] = {info->manifest};
	if (!v->snapshot || hash_parts(v->cache_key, &v->def, parts, 1) < 0)
		return sc_err_set(err, -ENOMEM, "out of memory");
	v->cached = true;
	emit(b, BLD_EVENT_CACHED, v, NULL, 0, 0);
	return 0;
}

/*
 * The context: each COPY reads (and hashes) what it selects of it, so there
 * is nothing to do here and no progress line.
 */
static int
run_local(struct bld_ctx *b, struct vtx *v, struct sc_err *err)
{
	v->snapshot = strdup("");
	const char *parts[] = {b->context};
	if (!v->snapshot || hash_parts(v->cache_key, &v->def, parts, 1) < 0)
		return sc_err_set(err, -ENOMEM, "out of memory");
	return 0;
}

int
vtx_run(struct bld_ctx *b, struct vtx *v, struct sc_err *err)
{
	v->started = sc_now_ns();
	if (v->type == OP_IMAGE)
		return run_image(b, v, err);
	if (v->type == OP_LOCAL)
		return run_local(b, v, err);

	char def_digest[SC_DIGEST_STR_LEN + 1];
	if (sc_sha256_buf(v->def.data, v->def.len, def_digest) < 0)
		return sc_err_set(err, -ENOMEM, "out of memory");
	struct copy_src cs = {.fd = -EBADF, .src.context = true};
	struct bld_copy_selection sel = {0};
	bool have_sel = false;
	int r = 0;
	if (v->type == OP_COPY) {
		r = copy_src_open(b, v, &cs, err);
		if (r >= 0)
			r = bld_copy_select(&cs.src, &v->copy, b->hc, &sel, err);
		have_sel = r >= 0;
		sc_debug("#%u selection: %.1f ms", v->num, (sc_now_ns() - v->started) / 1e6);
		if (r == -ENOENT && !vtx_reads_context(v))
			r = sc_err_prefix(err, r, "%s", v->from_what);
	}
	if (r >= 0) {
		const char *parts[] = {v->input ? v->input->cache_key : "scratch",
				       have_sel ? sel.digest : ""};
		r = hash_parts(v->cache_key, &v->def, parts, 2);
	}
	if (r >= 0 && !v->no_cache) {
		struct snap_cache_record rec = {0};
		store_lock(b);
		int h = snap_cache_get(b->s, v->cache_key, &rec, err);
		store_unlock(b);
		if (h >= 0) {
			r = take_hit(b, v, &rec, err);
			snap_cache_record_clear(&rec);
			if (r >= 0) {
				emit(b, BLD_EVENT_CACHED, v, NULL, 0, 0);
				note_if_missing(b, v, def_digest, have_sel ? &sel : NULL);
			}
			goto out;
		}
		if (h != -ENOENT)
			r = h;
		else
			sc_err_clear(err);
	}
	if (r < 0)
		goto out;

	emit(b, BLD_EVENT_START, v, NULL, 0, 0);
	if (!v->no_cache)
		explain_miss(b, v, def_digest, have_sel ? &sel : NULL);
	/*
	 * Make room first when the disk is (or, with what this step will write,
	 * would be) under the min-free policy: a COPY writes its files and a
	 * layer about as large. The hook (gc_auto_install) runs the collector;
	 * what this build holds is leased, so it cannot go.
	 */
	store_lock(b);
	snap_store_before_write(b->s, have_sel ? 2 * sel.bytes : 0);
	store_unlock(b);

	struct rootfs rf;
	r = rootfs_open(b, v->input ? v->input->snapshot : "", SNAP_KIND_ACTIVE,
			v->type == OP_EXEC ? b->opts->quota : 0, &rf, err);
	if (r >= 0) {
		switch (v->type) {
		case OP_EXEC:
			r = run_exec(b, v, &rf, err);
			break;
		case OP_MKDIR:
			r = run_mkdir(b, v, &rf, err);
			break;
		default:
			r = run_copy(v, &cs, &rf, err);
			break;
		}
	}
	sc_debug("#%u ran: %.1f ms", v->num, (sc_now_ns() - v->started) / 1e6);
	if (r >= 0 && atomic_load(&b->stop))
		r = sc_err_set(err, -ECANCELED, "canceled");
	if (r >= 0) {
		_cleanup_free_ char *note = note_json(v, def_digest, have_sel ? &sel : NULL);
		r = finish(b, v, &rf, note, err);
	}
	rootfs_close(b, &rf, rf.key[0] != '\0');
out:
	copy_src_close(b, &cs);
	bld_copy_selection_clear(&sel);
	if (r < 0) {
		if (r != -ECANCELED || !atomic_load(&b->stop))
			emit(b, BLD_EVENT_ERROR, v, sc_err_msg(err), strlen(sc_err_msg(err)), 0);
		return sc_err_prefix(err, r, "#%u %s", v->num, v->desc ? v->desc : v->name);
	}
	if (!v->cached)
		emit(b, BLD_EVENT_DONE, v, NULL, 0, 0);
	return 0;
}
