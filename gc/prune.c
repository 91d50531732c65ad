/*
 * Choosing what goes: each policy picks among the records that may go
 * (unreferenced snapshots and blobs, and with "all" image names), least
 * recently used first, until its target is met; then snap_collect()
 * deletes the choice and whatever only the chosen records held.
 *
 * Whole subtrees go in one run: a record is chosen only once everything
 * that points at it (children, referrers) is chosen, and the choice is
 * repeated until nothing more can be added, so a parent goes in the same
 * run as its last child instead of one level per run.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cleanup.h"
#include "gc.h"
#include "lease.h"
#include "log.h"
#include "store-internal.h"
#include "util.h"

#define CACHE_TYPE_LABEL "snapctl.cache.type"

const char *
gc_node_type(const struct snap_gc_graph *g, size_t i)
{
	const struct snap_gc_node *n = &g->v[i];
	switch (n->type) {
	case SNAP_OBJ_BLOB:
		return "content";
	case SNAP_OBJ_IMAGE:
		return "image";
	case SNAP_OBJ_CACHE:
	case SNAP_OBJ_SNAPSHOT:
		for (size_t j = 0; j < n->nlabels; j++) {
			if (strcmp(n->labels[j].key, CACHE_TYPE_LABEL) != 0)
				continue;
			const char *t = n->labels[j].value;
			if (!strcmp(t, "exec.cachemount") || !strcmp(t, "source.local") ||
			    !strcmp(t, "frontend"))
				return t;
		}
		return "regular";
	default:
		return "other";
	}
}

static bool
type_listed(const char *list, const char *type)
{
	size_t tlen = strlen(type);
	for (const char *p = list; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == tlen && strncmp(p, type, len) == 0)
			return true;
		p += len + (comma ? 1 : 0);
	}
	return false;
}

static bool
filter_match(const struct snap_gc_graph *g, size_t i, const struct gc_filter *f)
{
	const struct snap_gc_node *n = &g->v[i];
	switch (f->kind) {
	case GC_FILTER_TYPE:
		return type_listed(f->value, gc_node_type(g, i));
	case GC_FILTER_ID: {
		size_t plen = strlen(f->value);
		if (strncmp(n->id, f->value, plen) == 0)
			return true;
		/* digests match with or without their "sha256:" */
		return n->type == SNAP_OBJ_BLOB && strncmp(n->id + 7, f->value, plen) == 0;
	}
	case GC_FILTER_LABEL: {
		const char *eq = strchr(f->value, '=');
		size_t klen = eq ? (size_t)(eq - f->value) : strlen(f->value);
		for (size_t j = 0; j < n->nlabels; j++) {
			if (strlen(n->labels[j].key) != klen ||
			    strncmp(n->labels[j].key, f->value, klen) != 0)
				continue;
			if (!eq || strcmp(n->labels[j].value, eq + 1) == 0)
				return true;
		}
		return false;
	}
	default:
		return false;
	}
}

static bool
filters_match(const struct snap_gc_graph *g, size_t i, const struct gc_policy *p)
{
	for (size_t k = 0; k < p->nfilters; k++)
		if (!filter_match(g, i, &p->filters[k]))
			return false;
	return true;
}

void
gc_prune_report_clear(struct gc_prune_report *r)
{
	if (r->why_kept)
		for (size_t i = 0; i < r->graph.n; i++)
			free(r->why_kept[i]);
	free(r->why_kept);
	free(r->victim);
	free(r->removed);
	snap_gc_graph_clear(&r->graph);
	*r = (struct gc_prune_report){0};
}

struct selection {
	struct snap_gc_graph *g;
	size_t **in; /* referrers of each node */
	size_t *nin;
	bool *candidate; /* may go under some policy */
	bool *chosen;
	uint64_t *size; /* what choosing the node frees (images: what only they hold) */
	char **why;	/* why a candidate was kept */
	uint64_t fs_avail;
};

static void
why_set(struct selection *sel, size_t i, const char *why)
{
	if (sel->why[i] || sel->chosen[i])
		return;
	sel->why[i] = strdup(why);
}

static int
cmp_lru(const void *a, const void *b, void *arg)
{
	const struct snap_gc_graph *g = arg;
	const struct snap_gc_node *x = &g->v[*(const size_t *)a], *y = &g->v[*(const size_t *)b];
	if (x->last_used != y->last_used)
		return x->last_used < y->last_used ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Bytes that dropping image i frees: what it alone reaches. */
static uint64_t
image_exclusive_size(struct snap_gc_graph *g, size_t img, bool *dropped)
{
	dropped[img] = true;
	bool *before = malloc(g->n * sizeof(bool));
	uint64_t size = 0;
	if (before) {
		for (size_t i = 0; i < g->n; i++)
			before[i] = g->v[i].reached;
		snap_gc_graph_mark(g, dropped);
		for (size_t i = 0; i < g->n; i++)
			if (before[i] && !g->v[i].reached)
				size += g->v[i].size;
		free(before);
	}
	dropped[img] = false;
	snap_gc_graph_mark(g, dropped);
	return size;
}

#define GARBAGE_DEPTH 4

/*
 * A blob that is garbage whatever a policy's filters say: nothing reaches
 * it, nothing keeps it, and whatever points at it is chosen or garbage too
 * (the manifest of a removed image, and the layers only it listed). Such a
 * blob does not keep a record from going, and goes with it: so a build
 * cache record chosen by "--filter type=regular" takes its layer blob and
 * its snapshot along, instead of leaving them for an unfiltered run.
 */
static bool
garbage_blob(const struct selection *sel, size_t i, unsigned depth)
{
	const struct snap_gc_node *n = &sel->g->v[i];
	if (n->type != SNAP_OBJ_BLOB || !sel->candidate[i] || n->pinned || n->lease ||
	    depth > GARBAGE_DEPTH)
		return false;
	for (size_t k = 0; k < sel->nin[i]; k++) {
		size_t ref = sel->in[i][k];
		if (!sel->chosen[ref] && !garbage_blob(sel, ref, depth + 1))
			return false;
	}
	return true;
}

/* Chooses i's garbage referrers (and theirs) along with it. */
static void
take_garbage(struct selection *sel, size_t i, unsigned depth)
{
	for (size_t k = 0; k < sel->nin[i] && depth <= GARBAGE_DEPTH; k++) {
		size_t ref = sel->in[i][k];
		if (sel->chosen[ref])
			continue;
		sel->chosen[ref] = true;
		free(sel->why[ref]);
		sel->why[ref] = NULL;
		take_garbage(sel, ref, depth + 1);
	}
}

static int
select_policy(struct selection *sel, const struct gc_policy *p)
{
	struct snap_gc_graph *g = sel->g;
	uint64_t now = g->now;
	/* What the policy's filters cover, and how much of it is already chosen. */
	uint64_t total = 0, freed = 0;
	for (size_t i = 0; i < g->n; i++) {
		if (g->v[i].type == SNAP_OBJ_IMAGE || !filters_match(g, i, p))
			continue;
		total += g->v[i].size;
		if (sel->chosen[i])
			freed += g->v[i].size;
	}
	bool has_target = p->max_used || p->min_free;
	uint64_t need = 0;
	if (p->max_used && total - freed > p->max_used)
		need = total - freed - p->max_used;
	if (p->min_free && p->min_free > sel->fs_avail + freed) {
		uint64_t more = p->min_free - sel->fs_avail - freed;
		if (more > need)
			need = more;
	}
	if (has_target && need == 0) {
		sc_debug("policy: under its thresholds, nothing to do");
		return 0;
	}

	size_t *cands = malloc((g->n + 1) * sizeof(*cands));
	if (!cands)
		return -ENOMEM;
	size_t nc = 0;
	for (size_t i = 0; i < g->n; i++) {
		const struct snap_gc_node *n = &g->v[i];
		bool may = sel->candidate[i] && (n->type != SNAP_OBJ_IMAGE || p->all);
		if (!may || sel->chosen[i])
			continue;
		if (!filters_match(g, i, p)) {
			why_set(sel, i, "filtered out");
			continue;
		}
		if (p->keep_duration && now - n->last_used < p->keep_duration) {
			why_set(sel, i, "used more recently than the keep duration");
			continue;
		}
		cands[nc++] = i;
	}
	qsort_r(cands, nc, sizeof(*cands), cmp_lru, g);

	uint64_t got = 0;
	bool progress = true;
	while (progress) {
		progress = false;
		for (size_t c = 0; c < nc; c++) {
			size_t i = cands[c];
			if (sel->chosen[i])
				continue;
			if (has_target && got >= need)
				break;
			bool blocked = false;
			for (size_t k = 0; k < sel->nin[i] && !blocked; k++)
				blocked = !sel->chosen[sel->in[i][k]] &&
					  !garbage_blob(sel, sel->in[i][k], 0);
			if (blocked) {
				why_set(sel, i, "something that points at it stays");
				continue;
			}
			uint64_t sz = sel->size[i];
			if (p->reserved && total - freed - got < p->reserved + sz) {
				why_set(sel, i, "under the reserved space");
				continue;
			}
			sel->chosen[i] = true;
			free(sel->why[i]);
			sel->why[i] = NULL;
			take_garbage(sel, i, 0);
			got += sz;
			progress = true;
		}
	}
	for (size_t c = 0; c < nc; c++)
		if (!sel->chosen[cands[c]])
			why_set(sel, cands[c], "the policy's target was met");
	free(cands);
	return 0;
}

int
gc_select(struct snap_gc_graph *g, const struct gc_policy *policies, size_t npolicies,
	  uint64_t fs_avail, bool *victim, char **why)
{
	struct selection sel = {.g = g, .fs_avail = fs_avail};
	size_t n = g->n + 1;
	sel.in = calloc(n, sizeof(*sel.in));
	sel.nin = calloc(n, sizeof(*sel.nin));
	sel.candidate = calloc(n, sizeof(bool));
	sel.chosen = calloc(n, sizeof(bool));
	sel.size = calloc(n, sizeof(uint64_t));
	sel.why = calloc(n, sizeof(char *));
	bool *dropped = calloc(n, sizeof(bool));
	bool *before = calloc(n, sizeof(bool));
	int r = sel.in && sel.nin && sel.candidate && sel.chosen && sel.size && sel.why &&
				dropped && before
			? 0
			: -ENOMEM;
	snap_gc_graph_mark(g, NULL);
	for (size_t i = 0; r >= 0 && i < g->n; i++) {
		for (size_t k = 0; k < g->v[i].nout; k++) {
			size_t to = g->v[i].out[k];
			size_t *p = realloc(sel.in[to], (sel.nin[to] + 1) * sizeof(*p));
			if (!p) {
				r = -ENOMEM;
				break;
			}
			sel.in[to] = p;
			p[sel.nin[to]++] = i;
		}
	}
	bool any_all = false;
	for (size_t k = 0; k < npolicies; k++)
		any_all |= policies[k].all;
	for (size_t i = 0; r >= 0 && i < g->n; i++) {
		const struct snap_gc_node *nd = &g->v[i];
		sel.size[i] = nd->size;
		if (nd->type == SNAP_OBJ_IMAGE)
			sel.candidate[i] = !nd->pinned && !nd->lease;
		else
			sel.candidate[i] = !nd->reached;
	}
	/* An image is chosen as a whole with what it alone holds. */
	for (size_t i = 0; r >= 0 && any_all && i < g->n; i++)
		if (g->v[i].type == SNAP_OBJ_IMAGE && sel.candidate[i])
			sel.size[i] = image_exclusive_size(g, i, dropped);
	for (size_t k = 0; r >= 0 && k < npolicies; k++)
		r = select_policy(&sel, &policies[k]);

	if (r >= 0) {
		/* Victims: the choice, and whatever only chosen images held. */
		for (size_t i = 0; i < g->n; i++) {
			victim[i] = sel.chosen[i];
			dropped[i] = sel.chosen[i] && g->v[i].type == SNAP_OBJ_IMAGE;
			before[i] = g->v[i].reached;
		}
		snap_gc_graph_mark(g, dropped);
		for (size_t i = 0; i < g->n; i++)
			if (before[i] && !g->v[i].reached && g->v[i].type != SNAP_OBJ_IMAGE)
				victim[i] = true;
		/* Back to the first marking, whose reasons the reports show. */
		snap_gc_graph_mark(g, NULL);
	}
	for (size_t i = 0; i < g->n; i++) {
		free(sel.in ? sel.in[i] : NULL);
		if (why && sel.why)
			why[i] = TAKE_PTR(sel.why[i]);
		else if (sel.why)
			free(sel.why[i]);
	}
	free(sel.in);
	free(sel.nin);
	free(sel.candidate);
	free(sel.chosen);
	free(sel.size);
	free(sel.why);
	free(dropped);
	free(before);
	return r;
}

static int
note_write(struct snap_txn *t, void *arg)
{
	const struct gc_prune_note *n = arg;
	uint8_t v[32];
	sc_put_be64(v, n->at);
	sc_put_be64(v + 8, n->freed);
	sc_put_be64(v + 16, n->records);
	sc_put_be64(v + 24, n->took_ns);
	return snap_txn_put(t, SNAP_DB_META, GC_PRUNE_NOTE_KEY, strlen(GC_PRUNE_NOTE_KEY), v,
			    sizeof(v), 0);
}

int
gc_prune_note_get(struct snap_store *s, struct gc_prune_note *ret, struct sc_err *err)
{
	*ret = (struct gc_prune_note){0};
	struct snap_txn t;
	int r = snap_txn_begin_read(s->meta, &t, err);
	if (r < 0)
		return r;
	MDB_val v;
	if (snap_txn_get(&t, SNAP_DB_META, GC_PRUNE_NOTE_KEY, strlen(GC_PRUNE_NOTE_KEY), &v) == 0 &&
	    v.mv_size == 32) {
		const uint8_t *p = v.mv_data;
		*ret = (struct gc_prune_note){.at = sc_get_be64(p),
					      .freed = sc_get_be64(p + 8),
					      .records = sc_get_be64(p + 16),
					      .took_ns = sc_get_be64(p + 24)};
	}
	snap_txn_end(&t);
	return 0;
}

int
gc_prune(struct snap_store *s, const struct gc_policy *policies, size_t npolicies, unsigned flags,
	 struct gc_prune_report *ret, struct sc_err *err)
{
	struct gc_prune_report rep = {0};
	/* Dead leases protect nothing; a real prune clears them out first. */
	if (!(flags & GC_PRUNE_DRY_RUN)) {
		int dead = snap_lease_prune_dead(s, err);
		if (dead < 0)
			return dead;
	}
	int r = snap_gc_graph_load(s, &rep.graph, err);
	if (r < 0)
		return r;
	struct snap_gc_graph *g = &rep.graph;
	uint64_t avail = 0;
	struct statvfs vfs;
	if (statvfs(snap_store_root(s), &vfs) == 0)
		avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	rep.victim = calloc(g->n + 1, sizeof(bool));
	rep.removed = calloc(g->n + 1, sizeof(bool));
	rep.why_kept = calloc(g->n + 1, sizeof(char *));
	if (!rep.victim || !rep.removed || !rep.why_kept) {
		gc_prune_report_clear(&rep);
		return sc_err_set(err, -ENOMEM, "out of memory");
	}
	uint64_t t0 = sc_now_ns();
	r = gc_select(g, policies, npolicies, avail, rep.victim, rep.why_kept);
	if (r < 0) {
		gc_prune_report_clear(&rep);
		return sc_err_set(err, r, "out of memory");
	}
	for (size_t i = 0; i < g->n; i++)
		if (rep.victim[i])
			rep.would_free += g->v[i].size;
	if (flags & GC_PRUNE_DRY_RUN)
		memcpy(rep.removed, rep.victim, g->n * sizeof(bool));
	else
		r = snap_collect(s, g, rep.victim, rep.removed, &rep.result, err);
	if (r < 0) {
		gc_prune_report_clear(&rep);
		return r;
	}
	if (!(flags & GC_PRUNE_DRY_RUN)) {
		/* For df's metrics; a prune that could not note it still pruned. */
		struct gc_prune_note n = {
			.at = sc_now_ns(), .freed = rep.result.freed, .took_ns = sc_now_ns() - t0};
		for (size_t i = 0; i < g->n; i++)
			n.records += rep.removed[i];
		(void)snap_meta_write(s->meta, note_write, &n, NULL);
	}
	*ret = rep;
	return 0;
}
