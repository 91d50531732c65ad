/*
 * bld_build(): from a Dockerfile to an image (see build.h), and the
 * scheduler: a pool of worker threads takes ready vertices (all inputs
 * done) lowest number first; the main thread watches for a cancel.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "cleanup.h"
#include "dockerfile.h"
#include "executor.h"
#include "lease.h"
#include "log.h"
#include "solver.h"
#include "store.h"

#define BUILD_MAX_JOBS 64

void
bld_build_result_clear(struct bld_build_result *r)
{
	snap_image_info_clear(&r->image);
	*r = (struct bld_build_result){0};
}

void
emit(struct bld_ctx *b, enum bld_event_type type, const struct vtx *v, const char *text, size_t len,
     int stream)
{
	if (!b->opts->progress)
		return;
	struct bld_event ev = {
		.type = type,
		.vertex = v ? v->num : 0,
		.digest = v ? v->digest : NULL,
		.name = v ? v->name : NULL,
		.time = sc_now_ns(),
		.started = v ? v->started : 0,
		.stream = stream,
		.text = text,
		.len = text ? len : 0,
	};
	b->opts->progress(b->opts->progress_arg, &ev);
}

static struct vtx *
next_ready(struct bld_ctx *b)
{
	for (size_t i = 0; i < b->nv; i++)
		if (b->v[i]->state == V_READY)
			return b->v[i];
	return NULL;
}

static void *
worker(void *arg)
{
	struct bld_ctx *b = arg;
	pthread_mutex_lock(&b->lock);
	for (;;) {
		struct vtx *v = NULL;
		while (!atomic_load(&b->stop) && b->ndone < b->nv && !(v = next_ready(b)))
			pthread_cond_wait(&b->cond, &b->lock);
		if (!v)
			break;
		v->state = V_RUNNING;
		b->nrunning++;
		pthread_mutex_unlock(&b->lock);

		struct sc_err e = SC_ERR_INIT;
		int r = vtx_run(b, v, &e);

		pthread_mutex_lock(&b->lock);
		b->nrunning--;
		if (r < 0) {
			v->state = V_FAILED;
			if (!b->error) {
				b->error = r;
				b->err = e;
			}
			atomic_store(&b->stop, true);
		} else {
			v->state = V_DONE;
			b->ndone++;
			for (size_t i = 0; i < v->nusers; i++)
				if (--v->users[i]->pending == 0 && v->users[i]->state == V_WAIT)
					v->users[i]->state = V_READY;
		}
		pthread_cond_broadcast(&b->cond);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

static int
solve(struct bld_ctx *b, struct sc_err *err)
{
	unsigned jobs = b->opts->jobs;
	if (!jobs) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		jobs = n > 0 ? (unsigned)n : 1;
	}
	if (jobs > BUILD_MAX_JOBS)
		jobs = BUILD_MAX_JOBS;
	for (size_t i = 0; i < b->nv; i++)
		if (b->v[i]->pending == 0)
			b->v[i]->state = V_READY;
	pthread_t th[BUILD_MAX_JOBS];
	unsigned started = 0;
	int r = 0;
	for (; started < jobs; started++) {
		int pr = pthread_create(&th[started], NULL, worker, b);
		if (pr) {
			r = sc_err_setsys(err, -pr, "cannot start a build thread");
			atomic_store(&b->stop, true);
			break;
		}
	}
	/* Watch for a cancel while the workers run. */
	pthread_mutex_lock(&b->lock);
	while (b->ndone < b->nv && !(atomic_load(&b->stop) && b->nrunning == 0)) {
		if (b->opts->cancel && atomic_load(b->opts->cancel) && !atomic_load(&b->stop)) {
			atomic_store(&b->stop, true);
			pthread_cond_broadcast(&b->cond);
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&b->cond, &b->lock, &ts);
	}
	atomic_store(&b->stop, true);
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (b->opts->cancel && atomic_load(b->opts->cancel))
		return sc_err_set(err, -ECANCELED, "build canceled");
	if (b->error) {
		*err = b->err;
		return b->error;
	}
	if (r < 0)
		return r;
	return b->ndone == b->nv ? 0 : sc_err_set(err, -EIO, "build stopped early");
}

/* Work snapshots and leases of builds whose process is gone. */
struct stale {
	char **keys;
	size_t n;
};

static int
stale_visit(const struct snap_info *info, void *arg)
{
	struct stale *st = arg;
	int pid;
	uint64_t start;
	if (info->kind == SNAP_KIND_COMMITTED ||
	    sscanf(info->key, "build.%d.%" SCNu64 ".", &pid, &start) != 2)
		return 0;
	if (sc_proc_alive((pid_t)pid, start))
		return 0;
	char **p = realloc(st->keys, (st->n + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	st->keys = p;
	p[st->n] = strdup(info->key);
	if (p[st->n])
		st->n++;
	return 0;
}

/*
 * Containers of dead builds ("snapctl-PID.START-N" in the runtime's state
 * folder): a build killed with SIGKILL cannot stop its running step, so
 * the next build does, before it removes the step's snapshot.
 */
static void
reap_containers(void)
{
	static const char *const runtimes[][2] = {{"runc", "/run/runc"}, {"crun", "/run/crun"}};
	for (size_t k = 0; k < ARRAY_SIZE(runtimes); k++) {
		_cleanup_closedir_ DIR *d = opendir(runtimes[k][1]);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			int pid;
			uint64_t start;
			if (sscanf(e->d_name, "snapctl-%d.%" SCNu64 "-", &pid, &start) != 2 ||
			    sc_proc_alive((pid_t)pid, start))
				continue;
			sc_debug("deleting container '%s' of a build that is gone", e->d_name);
			char *argv[] = {(char *)runtimes[k][0], "delete", "--force", e->d_name,
					NULL};
			pid_t child;
			posix_spawn_file_actions_t fa;
			posix_spawn_file_actions_init(&fa);
			posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
			posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
			if (posix_spawnp(&child, argv[0], &fa, NULL, argv, environ) == 0)
				waitpid(child, NULL, 0);
			posix_spawn_file_actions_destroy(&fa);
		}
	}
}

static void
remove_stale(struct bld_ctx *b)
{
	reap_containers();
	struct stale st = {0};
	store_lock(b);
	snap_snapshot_walk(b->s, NULL, stale_visit, &st, NULL);
	for (size_t i = 0; i < st.n; i++) {
		sc_debug("removing '%s', left by a build that is gone", st.keys[i]);
		snap_snapshot_remove(b->s, st.keys[i], NULL);
		free(st.keys[i]);
	}
	store_unlock(b);
	free(st.keys);
}

static int
load_dockerfile(struct bld_ctx *b, struct sc_err *err)
{
	const struct bld_build_opts *o = b->opts;
	if (o->dockerfile_data) {
		b->df_text = malloc(o->dockerfile_len + 1);
		if (!b->df_text)
			return sc_err_set(err, -ENOMEM, "out of memory");
		memcpy(b->df_text, o->dockerfile_data, o->dockerfile_len);
		b->df_len = o->dockerfile_len;
	} else {
		int r = sc_read_file(b->dockerfile, BLD_DF_MAX_SIZE, &b->df_text, &b->df_len);
		if (r == -ENOENT)
			return sc_err_set(err, r, "Dockerfile '%s' does not exist; name it with -f",
					  b->dockerfile);
		if (r == -EFBIG || r == -E2BIG)
			return sc_err_set(err, -EFBIG, "Dockerfile '%s' is over %u bytes",
					  b->dockerfile, BLD_DF_MAX_SIZE);
		if (r < 0)
			return sc_err_setsys(err, r, "cannot read '%s'", b->dockerfile);
	}
	return bld_dockerfile_parse(b->df_text, b->df_len, b->dockerfile, &b->df, err);
}

static const struct onbuild *
onbuild_find(const struct bld_ctx *b, const char *image)
{
	for (size_t i = 0; i < b->nonbuild; i++)
		if (strcmp(b->onbuild[i].image, image) == 0)
			return &b->onbuild[i];
	return NULL;
}

/*
 * ONBUILD: a base image's triggers run right after the FROM that names it,
 * as if written there. The Dockerfile is parsed again with them spliced in
 * after the FROM's last line (later lines number from there in messages).
 * Returns 1 when something was spliced.
 */
static int
splice_onbuild(struct bld_ctx *b, struct sc_err *err)
{
	struct sc_buf out = {0};
	bool any = false;
	const char *p = b->df_text, *end = b->df_text + b->df_len;
	unsigned line = 1;
	size_t next = 0; /* stages in order of their FROM lines */
	const struct bld_plan *plan = b->plan;
	int r = 0;
	while (p < end && r >= 0) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl + 1 : end;
		r = sc_buf_put(&out, p, (size_t)(eol - p));
		if (r >= 0 && !nl)
			r = sc_buf_put(&out, "\n", 1);
		while (r >= 0 && next < plan->nstages &&
		       plan->stages[next].from->end_line <= line) {
			const struct bld_stage *st = &plan->stages[next++];
			const struct onbuild *ob = st->reachable && st->base_stage < 0
							   ? onbuild_find(b, st->base)
							   : NULL;
			for (size_t i = 0; ob && i < ob->n && r >= 0; i++) {
				r = sc_buf_printf(&out, "%s\n", ob->triggers[i]);
				any = true;
			}
		}
		p = eol;
		line++;
	}
	if (r < 0 || !any) {
		sc_buf_free(&out);
		return r < 0 ? sc_err_set(err, -ENOMEM, "out of memory") : 0;
	}
	free(b->df_text);
	b->df_text = (char *)out.data;
	b->df_len = out.len;
	b->plan = bld_plan_free(b->plan);
	b->df = bld_dockerfile_free(b->df);
	r = bld_dockerfile_parse(b->df_text, b->df_len, b->dockerfile, &b->df, err);
	return r < 0 ? sc_err_prefix(err, r, "with the base image's ONBUILD triggers") : 1;
}

/* The store remembers context files' digests across builds (cache.h). */
static bool
digest_lookup(void *arg, const uint8_t key[BLD_FILE_KEY_LEN], char ret[SC_DIGEST_STR_LEN + 1])
{
	struct bld_ctx *b = arg;
	if (sc_get_be64(key) != b->context_dev)
		return false;
	store_lock(b);
	int r = snap_cache_file_digest_get(b->s, key, ret, NULL);
	store_unlock(b);
	return r >= 0;
}

struct new_digests {
	struct bld_ctx *b;
	struct snap_file_digest *v;
	size_t n, cap;
};

static int
digest_collect(void *arg, const uint8_t key[BLD_FILE_KEY_LEN], const char *digest)
{
	struct new_digests *nd = arg;
	/* Only the context's own files: a mounted stage's device number is reused later. */
	if (sc_get_be64(key) != nd->b->context_dev)
		return 0;
	if (nd->n == nd->cap) {
		size_t c = nd->cap ? nd->cap * 2 : 256;
		struct snap_file_digest *p = realloc(nd->v, c * sizeof(*p));
		if (!p)
			return -ENOMEM;
		nd->v = p;
		nd->cap = c;
	}
	memcpy(nd->v[nd->n].key, key, BLD_FILE_KEY_LEN);
	snprintf(nd->v[nd->n].digest, sizeof(nd->v[nd->n].digest), "%s", digest);
	nd->n++;
	return 0;
}

/* Remembers the context files this build read, in one transaction; failing is harmless. */
static void
digests_save(struct bld_ctx *b)
{
	struct new_digests nd = {.b = b};
	if (bld_hash_cache_each_new(b->hc, digest_collect, &nd) >= 0 && nd.n) {
		store_lock(b);
		snap_cache_file_digests_put(b->s, nd.v, nd.n, NULL);
		store_unlock(b);
	}
	free(nd.v);
}

static int64_t
source_date_epoch(const struct bld_build_opts *o)
{
	const char *v = NULL;
	for (size_t i = 0; i < o->nbuild_args; i++)
		if (strncmp(o->build_args[i], "SOURCE_DATE_EPOCH=", 18) == 0)
			v = o->build_args[i] + 18;
	if (!v)
		v = getenv("SOURCE_DATE_EPOCH");
	if (!v || !*v)
		return -1;
	char *end;
	long long e = strtoll(v, &end, 10);
	return *end || e < 0 ? -1 : e;
}

static void
ctx_free(struct bld_ctx *b)
{
	graph_free(b);
	free(b->stage_top);
	for (size_t i = 0; i < b->nimages; i++)
		base_image_free(b->images[i]);
	free(b->images);
	bld_hash_cache_free(b->hc);
	bld_ignore_free(b->ignore);
	bld_plan_free(b->plan);
	bld_dockerfile_free(b->df);
	free(b->df_text);
	for (size_t i = 0; i < b->nonbuild; i++) {
		for (size_t k = 0; k < b->onbuild[i].n; k++)
			free(b->onbuild[i].triggers[k]);
		free(b->onbuild[i].triggers);
		free(b->onbuild[i].image);
	}
	free(b->onbuild);
	if (b->context_fd >= 0)
		close(b->context_fd);
	free(b->context);
	free(b->dockerfile);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->store_lock);
}

static int
prepare(struct bld_ctx *b, struct sc_err *err)
{
	const struct bld_build_opts *o = b->opts;
	char path[PATH_MAX];
	if (!o->context || !realpath(o->context, path))
		return sc_err_set(err, -ENOENT, "build context '%s' does not exist",
				  o->context ? o->context : "");
	b->context = strdup(path);
	b->context_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->context_fd < 0)
		return sc_err_setsys(err, -errno, "build context '%s'", o->context);
	if (o->dockerfile)
		b->dockerfile = strdup(o->dockerfile);
	else if (asprintf(&b->dockerfile, "%s/Dockerfile", o->context) < 0)
		b->dockerfile = NULL;
	if (!b->context || !b->dockerfile)
		return sc_err_set(err, -ENOMEM, "out of memory");
	int r = load_dockerfile(b, err);
	if (r < 0)
		return r;
	struct bld_plan_opts po = {
		.target = o->target,
		.build_args = o->build_args,
		.nbuild_args = o->nbuild_args,
		.target_platform = o->platform,
		.base_config = plan_base_config,
		.userdata = b,
	};
	r = bld_plan_new(b->df, &po, &b->plan, err);
	if (r >= 0 && b->nonbuild) {
		r = splice_onbuild(b, err);
		if (r > 0)
			r = bld_plan_new(b->df, &po, &b->plan, err);
	}
	if (r < 0)
		return r;
	r = bld_ignore_load(b->context, o->dockerfile_data ? NULL : b->dockerfile, &b->ignore, NULL,
			    err);
	if (r < 0)
		return r;
	if (bld_hash_cache_new(&b->hc) < 0)
		return sc_err_set(err, -ENOMEM, "out of memory");
	struct stat st;
	if (fstat(b->context_fd, &st) < 0)
		return sc_err_setsys(err, -errno, "build context '%s'", o->context);
	b->context_dev = st.st_dev;
	bld_hash_cache_set_lookup(b->hc, digest_lookup, b);
	b->epoch = source_date_epoch(o);
	snap_layer_diff_opts_init(&b->diff);
	b->diff.source_date_epoch = b->epoch;
	b->diff.oci_media_types = true;
	return 0;
}

static int
start_lease(struct bld_ctx *b, struct sc_err *err)
{
	uint64_t start = 0;
	int r = sc_proc_starttime(getpid(), &start);
	if (r < 0)
		return sc_err_setsys(err, r, "cannot read this process's start time");
	snprintf(b->owner, sizeof(b->owner), "build.%d.%" PRIu64, (int)getpid(), start);
	snprintf(b->lease, sizeof(b->lease), "%s", b->owner);
	store_lock(b);
	/* The lease dies with this process; a day's expiry bounds a stuck one. */
	r = snap_lease_create(b->s, b->lease, 24ull * 3600 * 1000000000ull, getpid(), NULL, err);
	if (r >= 0)
		r = snap_store_use_lease(b->s, b->lease);
	store_unlock(b);
	return r;
}

static void
end_lease(struct bld_ctx *b)
{
	store_lock(b);
	snap_store_use_lease(b->s, NULL);
	snap_lease_delete(b->s, b->lease, NULL);
	store_unlock(b);
}

int
bld_build(struct snap_store *s, const struct bld_build_opts *opts, struct bld_build_result *ret,
	  struct sc_err *err)
{
	struct bld_ctx b = {.s = s, .opts = opts, .context_fd = -EBADF};
	pthread_mutex_init(&b.store_lock, NULL);
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.cond, NULL);
	*ret = (struct bld_build_result){0};

	int r = prepare(&b, err);
	bool leased = false;
	if (r >= 0) {
		r = start_lease(&b, err);
		leased = r >= 0;
	}
	if (r >= 0) {
		remove_stale(&b);
		r = graph_build(&b, err);
	}
	bool runs = false;
	for (size_t i = 0; r >= 0 && i < b.nv; i++)
		runs |= b.v[i]->type == OP_EXEC;
	if (r >= 0 && runs)
		r = bld_exec_runtime_check(opts->runtime, err);
	if (r >= 0) {
		r = solve(&b, err);
		digests_save(&b);
	}
	if (r >= 0)
		r = image_assemble(&b, &ret->image, err);
	if (leased)
		end_lease(&b);
	ctx_free(&b);
	return r;
}
