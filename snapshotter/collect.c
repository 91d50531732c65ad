/*
 * Reachability and safe deletion: see collect.h for the phases and the
 * checks each victim passes inside its write transaction.
 */
#include "collect.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "cache.h"
#include "content.h"
#include "lease.h"
#include "log.h"
#include "store-internal.h"
#include "util.h"

#define COLLECT_TXN_BUDGET_NS (20ull * 1000 * 1000)
#define CONTAINERD_ROOT_LABEL "containerd.io/gc.root"

static uint64_t
mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t
hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

size_t
snap_gc_graph_find(const struct snap_gc_graph *g, const char *name)
{
	if (!g->nslots)
		return SIZE_MAX;
	size_t mask = g->nslots - 1;
	for (size_t i = hash_str(name) & mask;; i = (i + 1) & mask) {
		size_t idx = g->slots[i];
		if (idx == SIZE_MAX)
			return SIZE_MAX;
		if (strcmp(g->v[idx].name, name) == 0)
			return idx;
	}
}

int
snap_gc_graph_index(struct snap_gc_graph *g)
{
	size_t n = 16;
	while (n < g->n * 2)
		n *= 2;
	free(g->slots);
	g->slots = malloc(n * sizeof(*g->slots));
	if (!g->slots)
		return -ENOMEM;
	memset(g->slots, 0xff, n * sizeof(*g->slots));
	g->nslots = n;
	for (size_t idx = 0; idx < g->n; idx++) {
		size_t i = hash_str(g->v[idx].name) & (n - 1);
		while (g->slots[i] != SIZE_MAX)
			i = (i + 1) & (n - 1);
		g->slots[i] = idx;
	}
	return 0;
}

static struct snap_gc_node *
graph_add(struct snap_gc_graph *g, size_t *cap, enum snap_obj_type type, const char *id,
	  size_t idlen)
{
	if (g->n == *cap) {
		size_t c = *cap ? *cap * 2 : 256;
		struct snap_gc_node *p = realloc(g->v, c * sizeof(*p));
		if (!p)
			return NULL;
		g->v = p;
		*cap = c;
	}
	const char *tname = snap_obj_type_to_string(type);
	size_t tlen = strlen(tname);
	char *name = malloc(tlen + 1 + idlen + 1);
	if (!name)
		return NULL;
	memcpy(name, tname, tlen);
	name[tlen] = ':';
	memcpy(name + tlen + 1, id, idlen);
	name[tlen + 1 + idlen] = '\0';
	struct snap_gc_node *node = &g->v[g->n++];
	*node = (struct snap_gc_node){
		.name = name,
		.id = name + tlen + 1,
		.type = type,
		.kind = -1,
		.parent = SIZE_MAX,
	};
	return node;
}

static int
node_edge(struct snap_gc_node *from, size_t to)
{
	size_t *p = realloc(from->out, (from->nout + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	from->out = p;
	p[from->nout++] = to;
	return 0;
}

void
snap_gc_graph_clear(struct snap_gc_graph *g)
{
	for (size_t i = 0; i < g->n; i++) {
		struct snap_gc_node *n = &g->v[i];
		free(n->name);
		free(n->out);
		free(n->lease);
		snap_labels_free(n->labels, n->nlabels);
	}
	free(g->v);
	free(g->slots);
	*g = (struct snap_gc_graph){0};
}

struct load_ctx {
	struct snap_gc_graph *g;
	size_t cap;
	struct snap_txn *t;
	char **parents; /* snapshots: parent key per node, resolved after loading */
	size_t nparents;
};

static int
load_snapshot(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct load_ctx *c = arg;
	struct snap_info info;
	int r = snap_snapshot_decode(k->mv_data, k->mv_size, v, &info);
	if (r < 0)
		return r;
	struct snap_gc_node *n =
		graph_add(c->g, &c->cap, SNAP_OBJ_SNAPSHOT, k->mv_data, k->mv_size);
	if (!n) {
		snap_info_clear(&info);
		return -ENOMEM;
	}
	n->kind = (int)info.kind;
	n->size = info.kind == SNAP_KIND_COMMITTED ? info.size : 0;
	n->created = info.created;
	n->last_used = info.last_used;
	n->labels = TAKE_PTR(info.labels);
	n->nlabels = info.nlabels;
	info.nlabels = 0;
	char **p = realloc(c->parents, c->g->n * sizeof(*p));
	if (!p) {
		snap_info_clear(&info);
		return -ENOMEM;
	}
	c->parents = p;
	p[c->g->n - 1] = TAKE_PTR(info.parent);
	c->nparents = c->g->n;
	snap_info_clear(&info);
	return 0;
}

static int
load_blob(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct load_ctx *c = arg;
	struct snap_blob_info info;
	int r = snap_blob_decode(k, v, &info);
	if (r < 0)
		return r;
	struct snap_gc_node *n = graph_add(c->g, &c->cap, SNAP_OBJ_BLOB, k->mv_data, k->mv_size);
	if (!n) {
		snap_blob_info_clear(&info);
		return -ENOMEM;
	}
	n->size = info.disk;
	n->created = info.created;
	n->last_used = info.last_used;
	n->labels = TAKE_PTR(info.labels);
	n->nlabels = info.nlabels;
	info.nlabels = 0;
	snap_blob_info_clear(&info);
	return 0;
}

static int
load_image(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct load_ctx *c = arg;
	return graph_add(c->g, &c->cap, SNAP_OBJ_IMAGE, k->mv_data, k->mv_size) ? 0 : -ENOMEM;
}

/* Build cache records: nodes that hold their snapshot and layer blob, never roots. */
static int
load_cache(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct load_ctx *c = arg;
	struct snap_cache_record rec;
	if (snap_cache_decode(k, v, &rec) < 0)
		return 0; /* damaged: holds nothing, a lookup drops it */
	struct snap_gc_node *n = graph_add(c->g, &c->cap, SNAP_OBJ_CACHE, k->mv_data, k->mv_size);
	if (!n) {
		snap_cache_record_clear(&rec);
		return -ENOMEM;
	}
	n->created = rec.created;
	n->last_used = rec.last_used;
	n->labels = calloc(1, sizeof(*n->labels));
	if (n->labels) {
		n->labels[0].key = strdup(SNAP_CACHE_TYPE_LABEL);
		n->labels[0].value = TAKE_PTR(rec.type);
		n->nlabels = 1;
	}
	snap_cache_record_clear(&rec);
	if (!n->labels || !n->labels[0].key || !n->labels[0].value)
		return -ENOMEM;
	return 0;
}

static int
load_edge(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct load_ctx *c = arg;
	const char *from = k->mv_data;
	const char *nul = memchr(from, '\0', k->mv_size);
	if (!nul)
		return 0;
	_cleanup_free_ char *to = strndup(nul + 1, k->mv_size - (size_t)(nul + 1 - from));
	if (!to)
		return -ENOMEM;
	size_t fi = snap_gc_graph_find(c->g, from);
	size_t ti = snap_gc_graph_find(c->g, to);
	if (fi == SIZE_MAX || ti == SIZE_MAX)
		return 0; /* an edge to or from something already gone holds nothing */
	c->g->v[ti].nin++;
	return node_edge(&c->g->v[fi], ti);
}

static int
load_pin(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct load_ctx *c = arg;
	_cleanup_free_ char *name = strndup(k->mv_data, k->mv_size);
	if (!name)
		return -ENOMEM;
	size_t i = snap_gc_graph_find(c->g, name);
	if (i != SIZE_MAX)
		c->g->v[i].pinned = true;
	return 0;
}

static int
load_lease(const struct snap_lease *l, struct snap_gc_graph *g)
{
	if (!snap_lease_alive(l, g->now))
		return 0;
	for (size_t i = 0; i < l->nrefs; i++) {
		char name[SNAP_OBJ_NAME_MAX + 1];
		if (snprintf(name, sizeof(name), "%s:%s", l->refs[i].type, l->refs[i].name) >=
		    (int)sizeof(name))
			continue;
		size_t idx = snap_gc_graph_find(g, name);
		if (idx == SIZE_MAX || g->v[idx].lease)
			continue;
		g->v[idx].lease = strdup(l->id);
		if (!g->v[idx].lease)
			return -ENOMEM;
	}
	return 0;
}

static int
lease_visit(const struct snap_lease *l, void *arg)
{
	return load_lease(l, arg);
}

int
snap_gc_graph_load(struct snap_store *s, struct snap_gc_graph *ret, struct sc_err *err)
{
	struct snap_gc_graph g = {.now = sc_now_ns()};
	struct load_ctx c = {.g = &g};
	struct snap_txn t;
	int r = snap_txn_begin_read(s->meta, &t, err);
	if (r < 0)
		return r;
	c.t = &t;
	r = snap_txn_scan(&t, SNAP_DB_SNAPSHOTS, NULL, 0, load_snapshot, &c);
	if (r >= 0)
		r = snap_txn_scan(&t, SNAP_DB_BLOBS, NULL, 0, load_blob, &c);
	if (r >= 0)
		r = snap_txn_scan(&t, SNAP_DB_IMAGES, NULL, 0, load_image, &c);
	if (r >= 0)
		r = snap_txn_scan(&t, SNAP_DB_CACHE, "sha256:", 7, load_cache, &c);
	if (r >= 0)
		r = snap_gc_graph_index(&g);
	/* Parents: a child points at its parent, like a referrer at its referent. */
	for (size_t i = 0; r >= 0 && i < c.nparents; i++) {
		if (!c.parents[i])
			continue;
		char name[SNAP_OBJ_NAME_MAX + 1];
		snprintf(name, sizeof(name), "snapshot:%s", c.parents[i]);
		size_t p = snap_gc_graph_find(&g, name);
		if (p == SIZE_MAX)
			continue;
		g.v[i].parent = p;
		g.v[p].nin++;
		r = node_edge(&g.v[i], p);
	}
	if (r >= 0)
		r = snap_txn_scan(&t, SNAP_DB_REFS, NULL, 0, load_edge, &c);
	if (r >= 0)
		r = snap_txn_scan(&t, SNAP_DB_PINS, NULL, 0, load_pin, &c);
	snap_txn_end(&t);
	snap_strv_free(c.parents, c.nparents);
	/* Leases are read in their own transaction: a lease only adds protection. */
	if (r >= 0)
		r = snap_lease_walk(s, lease_visit, &g, err);
	if (r < 0) {
		snap_gc_graph_clear(&g);
		return sc_err_setsys(err, r, "cannot read the store's records");
	}
	/* An image is as recent as the most recent thing it holds. */
	for (size_t i = 0; i < g.n; i++) {
		struct snap_gc_node *n = &g.v[i];
		if (n->type != SNAP_OBJ_IMAGE)
			continue;
		for (size_t j = 0; j < n->nout; j++) {
			const struct snap_gc_node *to = &g.v[n->out[j]];
			if (to->last_used > n->last_used)
				n->last_used = to->last_used;
			if (!n->created || (to->created && to->created < n->created))
				n->created = to->created;
		}
	}
	*ret = g;
	return 0;
}

static bool
has_root_label(const struct snap_gc_node *n)
{
	for (size_t i = 0; i < n->nlabels; i++)
		if (strcmp(n->labels[i].key, SNAP_GC_ROOT_LABEL) == 0 ||
		    strcmp(n->labels[i].key, CONTAINERD_ROOT_LABEL) == 0)
			return true;
	return false;
}

/*
 * How many image names reach each node (one walk per image, each node once
 * per walk), so that a layer several images share names them all: "image
 * a:1 and 2 more images".
 */
static void
count_images(struct snap_gc_graph *g, const bool *dropped, size_t *stack)
{
	uint32_t *seen = calloc(g->n + 1, sizeof(*seen));
	for (size_t i = 0; i < g->n; i++)
		g->v[i].images = 0;
	if (!seen || !stack) {
		free(seen);
		return;
	}
	uint32_t walk = 0;
	for (size_t i = 0; i < g->n; i++) {
		if (g->v[i].type != SNAP_OBJ_IMAGE || !g->v[i].root || (dropped && dropped[i]))
			continue;
		walk++;
		size_t top = 0;
		seen[i] = walk;
		stack[top++] = i;
		while (top > 0) {
			struct snap_gc_node *n = &g->v[stack[--top]];
			n->images++;
			for (size_t j = 0; j < n->nout; j++)
				if (seen[n->out[j]] != walk) {
					seen[n->out[j]] = walk;
					stack[top++] = n->out[j];
				}
		}
	}
	free(seen);
	for (size_t i = 0; i < g->n; i++) {
		struct snap_gc_node *n = &g->v[i];
		size_t len = strlen(n->reason);
		if (n->images > 1 && strncmp(n->reason, "image ", 6) == 0 &&
		    n->type != SNAP_OBJ_IMAGE)
			snprintf(n->reason + len, sizeof(n->reason) - len, " and %zu more image%s",
				 n->images - 1, n->images > 2 ? "s" : "");
	}
}

void
snap_gc_graph_mark(struct snap_gc_graph *g, const bool *dropped)
{
	size_t *stack = malloc((g->n + 1) * sizeof(*stack));
	size_t top = 0;
	for (size_t i = 0; i < g->n; i++) {
		g->v[i].reached = false;
		g->v[i].root = false;
		g->v[i].reason[0] = '\0';
	}
	for (size_t i = 0; i < g->n; i++) {
		struct snap_gc_node *n = &g->v[i];
		if (dropped && dropped[i])
			continue;
		if (n->pinned)
			snprintf(n->reason, sizeof(n->reason), "pinned");
		else if (n->lease)
			snprintf(n->reason, sizeof(n->reason), "leased by %s", n->lease);
		else if (n->type == SNAP_OBJ_IMAGE)
			snprintf(n->reason, sizeof(n->reason), "image %s", n->id);
		else if ((n->kind == SNAP_KIND_ACTIVE || n->kind == SNAP_KIND_VIEW) &&
			 !snap_owner_gone(n->labels, n->nlabels))
			snprintf(n->reason, sizeof(n->reason), "in use (%s)",
				 snap_kind_to_string((enum snap_kind)n->kind));
		else if (has_root_label(n))
			snprintf(n->reason, sizeof(n->reason), "label %s", SNAP_GC_ROOT_LABEL);
		else
			continue;
		n->root = true;
	}
	/* Depth-first from each root; a node takes the reason of the first root to reach it. */
	for (size_t i = 0; stack && i < g->n; i++) {
		if (!g->v[i].root || g->v[i].reached)
			continue;
		g->v[i].reached = true;
		stack[top++] = i;
		while (top > 0) {
			struct snap_gc_node *n = &g->v[stack[--top]];
			for (size_t j = 0; j < n->nout; j++) {
				struct snap_gc_node *to = &g->v[n->out[j]];
				if (to->reached)
					continue;
				to->reached = true;
				if (!to->reason[0]) {
					if (n->type == SNAP_OBJ_SNAPSHOT &&
					    to->type == SNAP_OBJ_SNAPSHOT)
						snprintf(to->reason, sizeof(to->reason),
							 "parent of %.100s", n->id);
					else
						memcpy(to->reason, g->v[i].reason,
						       sizeof(to->reason));
				}
				stack[top++] = n->out[j];
			}
		}
	}
	if (!stack) {
		/* Out of memory: keep everything rather than guess. */
		for (size_t i = 0; i < g->n; i++)
			g->v[i].reached = true;
	}
	count_images(g, dropped, stack);
	free(stack);
}

/* Victims in an order where every referrer (and child) comes before what it points at. */
static size_t *
victim_order(const struct snap_gc_graph *g, const bool *victim, size_t *ret_n)
{
	size_t *indeg = calloc(g->n, sizeof(*indeg));
	size_t *order = malloc((g->n + 1) * sizeof(*order));
	size_t *queue = malloc((g->n + 1) * sizeof(*queue));
	size_t n = 0, head = 0, tail = 0;
	if (!indeg || !order || !queue) {
		free(indeg);
		free(order);
		free(queue);
		return NULL;
	}
	for (size_t i = 0; i < g->n; i++)
		if (victim[i])
			for (size_t j = 0; j < g->v[i].nout; j++)
				indeg[g->v[i].out[j]]++;
	for (size_t i = 0; i < g->n; i++)
		if (victim[i] && indeg[i] == 0)
			queue[tail++] = i;
	while (head < tail) {
		size_t i = queue[head++];
		order[n++] = i;
		for (size_t j = 0; j < g->v[i].nout; j++) {
			size_t to = g->v[i].out[j];
			if (victim[to] && --indeg[to] == 0)
				queue[tail++] = to;
		}
	}
	/* Victims left over sit on a cycle of edges: delete them last, in any order. */
	for (size_t i = 0; i < g->n; i++)
		if (victim[i] && indeg[i] > 0)
			order[n++] = i;
	free(indeg);
	free(queue);
	*ret_n = n;
	return order;
}

/* True if obj still has a referrer in the store (victims delete theirs first). */
static int
has_referrer(struct snap_txn *t, const char *obj)
{
	char **src = NULL;
	size_t n = 0;
	int r = snap_ref_sources_txn(t, obj, &src, &n);
	snap_strv_free(src, n);
	return r < 0 ? r : n > 0;
}

enum verdict {
	KEEP,
	GONE, /* already deleted by someone else */
	DELETE,
};

struct batch {
	struct snap_store *s;
	const struct snap_gc_graph *g;
	const size_t *order;
	size_t start, end; /* in: where to start; out: where this batch stopped */
	uint64_t started;
	/* what this batch deleted, for the renames after it commits */
	size_t *deleted;
	uint64_t *folder_id; /* snapshots: folder id; 0 otherwise */
	size_t ndeleted;
	size_t kept;
	uint64_t freed;
	size_t removed[_SNAP_OBJ_TYPE_MAX];
};

static int
collect_snapshot(struct snap_txn *t, const struct snap_gc_node *n, uint64_t *ret_id,
		 uint64_t *ret_size)
{
	struct snap_info info = {0};
	int r = snap_snapshot_get_txn(t, n->id, &info);
	if (r == -ENOENT)
		return GONE;
	if (r < 0)
		return r;
	enum verdict v = DELETE;
	/* Active snapshots and views are in use, unless a dead process's work in progress. */
	if (info.kind != SNAP_KIND_COMMITTED && !snap_owner_gone(info.labels, info.nlabels))
		v = KEEP;
	for (size_t i = 0; v == DELETE && i < info.nlabels; i++)
		if (strcmp(info.labels[i].key, SNAP_GC_ROOT_LABEL) == 0 ||
		    strcmp(info.labels[i].key, CONTAINERD_ROOT_LABEL) == 0)
			v = KEEP;
	if (v == DELETE) {
		r = snap_snapshot_has_children_txn(t, info.id);
		if (r != 0)
			v = KEEP;
	}
	if (v == DELETE &&
	    (snap_is_pinned_txn(t, n->name) || snap_obj_leased_txn(t, n->name, sc_now_ns()) ||
	     has_referrer(t, n->name) != 0))
		v = KEEP;
	if (v == DELETE) {
		r = snap_snapshot_delete_txn(t, &info);
		if (r >= 0)
			r = snap_ref_del_from_txn(t, n->name);
		*ret_id = info.id;
		*ret_size = info.size;
	}
	snap_info_clear(&info);
	return r < 0 ? r : (int)v;
}

static int
collect_blob(struct snap_txn *t, const struct snap_gc_node *n, uint64_t *ret_size)
{
	struct snap_blob_info info = {0};
	int r = snap_blob_get_txn(t, n->id, &info);
	if (r == -ENOENT)
		return GONE;
	if (r < 0)
		return r;
	enum verdict v = DELETE;
	if (snap_is_pinned_txn(t, n->name) || snap_obj_leased_txn(t, n->name, sc_now_ns()) ||
	    has_referrer(t, n->name) != 0)
		v = KEEP;
	if (v == DELETE) {
		r = snap_blob_delete_txn(t, &info);
		*ret_size = info.disk;
	}
	snap_blob_info_clear(&info);
	return r < 0 ? r : (int)v;
}

/* An image name or a build cache record: a record in db named by the node's id. */
static int
collect_record(struct snap_txn *t, const struct snap_gc_node *n, enum snap_db db)
{
	MDB_val v;
	int r = snap_txn_get(t, db, n->id, strlen(n->id), &v);
	if (r == -ENOENT)
		return GONE;
	if (r < 0)
		return r;
	if (snap_is_pinned_txn(t, n->name) || snap_obj_leased_txn(t, n->name, sc_now_ns()))
		return KEEP;
	r = snap_txn_del(t, db, n->id, strlen(n->id));
	if (r >= 0)
		r = snap_ref_del_from_txn(t, n->name);
	return r < 0 ? r : DELETE;
}

static void
owner_value(const struct snap_store *s, uint8_t v[12])
{
	uint32_t pid = (uint32_t)s->pid;
	v[0] = (uint8_t)(pid >> 24);
	v[1] = (uint8_t)(pid >> 16);
	v[2] = (uint8_t)(pid >> 8);
	v[3] = (uint8_t)pid;
	sc_put_be64(v + 4, s->starttime);
}

static int
owner_clear(struct snap_txn *t, void *arg)
{
	const uint8_t *mine = arg;
	MDB_val v;
	if (snap_txn_get(t, SNAP_DB_META, SNAP_COLLECT_OWNER_KEY, strlen(SNAP_COLLECT_OWNER_KEY),
			 &v) < 0 ||
	    v.mv_size != 12 || memcmp(v.mv_data, mine, 12) != 0)
		return 0; /* another collection has taken over the marker */
	return snap_txn_del(t, SNAP_DB_META, SNAP_COLLECT_OWNER_KEY,
			    strlen(SNAP_COLLECT_OWNER_KEY));
}

static int
batch_write(struct snap_txn *t, void *arg)
{
	struct batch *b = arg;
	/* Mark the collection in progress until its files are gone (store-internal.h). */
	uint8_t owner[12];
	owner_value(b->s, owner);
	int mr = snap_txn_put(t, SNAP_DB_META, SNAP_COLLECT_OWNER_KEY,
			      strlen(SNAP_COLLECT_OWNER_KEY), owner, sizeof(owner), 0);
	if (mr < 0)
		return mr;
	/* A retry after the map grew starts the batch again from scratch. */
	b->ndeleted = 0;
	b->kept = 0;
	b->freed = 0;
	memset(b->removed, 0, sizeof(b->removed));
	b->started = mono_ns();
	size_t i;
	for (i = b->start; i < b->end; i++) {
		if (i - b->start >= SNAP_COLLECT_BATCH ||
		    (i > b->start && mono_ns() - b->started > COLLECT_TXN_BUDGET_NS))
			break;
		const struct snap_gc_node *n = &b->g->v[b->order[i]];
		uint64_t id = 0, size = 0;
		int r;
		switch (n->type) {
		case SNAP_OBJ_SNAPSHOT:
			r = collect_snapshot(t, n, &id, &size);
			break;
		case SNAP_OBJ_BLOB:
			r = collect_blob(t, n, &size);
			break;
		case SNAP_OBJ_IMAGE:
			r = collect_record(t, n, SNAP_DB_IMAGES);
			break;
		case SNAP_OBJ_CACHE:
			r = collect_record(t, n, SNAP_DB_CACHE);
			break;
		default:
			r = KEEP;
			break;
		}
		if (r < 0)
			return r;
		if (r == KEEP) {
			sc_debug("keeping %s: it gained a user since it was chosen", n->name);
			b->kept++;
		} else if (r == DELETE) {
			b->deleted[b->ndeleted] = b->order[i];
			b->folder_id[b->ndeleted] = id;
			b->ndeleted++;
			b->freed += size;
			b->removed[n->type]++;
		}
	}
	b->end = i;
	return 0;
}

int
snap_collect(struct snap_store *s, const struct snap_gc_graph *g, const bool *victim,
	     bool *removed_out, struct snap_collect_result *ret, struct sc_err *err)
{
	struct snap_collect_result res = {0};
	size_t n = 0;
	_cleanup_free_ size_t *order = victim_order(g, victim, &n);
	_cleanup_free_ size_t *deleted = malloc((SNAP_COLLECT_BATCH + 1) * sizeof(size_t));
	_cleanup_free_ uint64_t *folder_id = malloc((SNAP_COLLECT_BATCH + 1) * sizeof(uint64_t));
	_cleanup_free_ size_t *gone = malloc((n + 1) * sizeof(size_t));
	_cleanup_free_ uint64_t *gone_folder = malloc((n + 1) * sizeof(uint64_t));
	_cleanup_free_ const char **blobs = calloc(n + 1, sizeof(*blobs));
	size_t ngone = 0;
	if (!order || !deleted || !folder_id || !gone || !gone_folder || !blobs)
		return sc_err_set(err, -ENOMEM, "out of memory");
	if (removed_out)
		memset(removed_out, 0, g->n * sizeof(*removed_out));

	int r = 0;
	for (size_t pos = 0; pos < n;) {
		struct batch b = {
			.s = s,
			.g = g,
			.order = order,
			.start = pos,
			.end = n,
			.deleted = deleted,
			.folder_id = folder_id,
		};
		uint64_t t0 = mono_ns();
		r = snap_meta_write(s->meta, batch_write, &b, err);
		uint64_t held = mono_ns() - t0;
		if (r < 0)
			break;
		res.transactions++;
		if (held > res.longest_lock_ns)
			res.longest_lock_ns = held;
		res.kept += b.kept;
		res.freed += b.freed;
		for (int k = 0; k < _SNAP_OBJ_TYPE_MAX; k++)
			res.removed[k] += b.removed[k];
		pos = b.end;

		r = snap_meta_sync(s->meta);
		if (r < 0) {
			sc_err_setsys(err, r, "cannot sync metadata");
			break;
		}
		for (size_t i = 0; i < b.ndeleted; i++) {
			gone[ngone] = b.deleted[i];
			gone_folder[ngone] = b.folder_id[i];
			ngone++;
		}
	}

	/*
	 * No record names these any more, durably: move them to trash and
	 * delete them there, outside any transaction, all at the end (a
	 * journaling file system would otherwise flush every batch's deletions
	 * at the next sync). A crash part-way leaves folders without records,
	 * which the next open moves to trash; what cannot go now (a busy mount)
	 * waits in trash. A snapshot's folder
	 * is named by its id, never reused; a blob's by its digest, which an
	 * import may have stored again since: blob files go through
	 * snap_blobs_trash_unnamed().
	 */
	size_t nblobs = 0;
	for (size_t i = 0; i < ngone; i++) {
		const struct snap_gc_node *node = &g->v[gone[i]];
		if (removed_out)
			removed_out[gone[i]] = true;
		if (node->type == SNAP_OBJ_BLOB) {
			blobs[nblobs++] = node->id;
		} else if (node->type == SNAP_OBJ_SNAPSHOT) {
			char rel[PATH_MAX];
			snap_snapshot_rel(rel, sizeof(rel), gone_folder[i]);
			/* Deleted from trash/ below, where the driver readies it (btrfs). */
			snap_store_trash(s, rel);
		}
	}
	int rt = snap_blobs_trash_unnamed(s, blobs, nblobs, err);
	if (r >= 0)
		r = rt;
	if (res.transactions) {
		uint8_t owner[12];
		owner_value(s, owner);
		snap_meta_write(s->meta, owner_clear, owner, NULL);
	}
	snap_store_empty_trash(s);
	if (ret)
		*ret = res;
	return r;
}

int
snap_gc(struct snap_store *s, struct snap_collect_result *ret, struct sc_err *err)
{
	struct snap_gc_graph g;
	int r = snap_lease_prune_dead(s, err); /* they protect nothing */
	if (r >= 0)
		r = snap_gc_graph_load(s, &g, err);
	if (r < 0)
		return r;
	snap_gc_graph_mark(&g, NULL);
	bool *victim = calloc(g.n + 1, sizeof(*victim));
	if (!victim) {
		snap_gc_graph_clear(&g);
		return sc_err_set(err, -ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < g.n; i++)
		victim[i] = !g.v[i].reached;
	r = snap_collect(s, &g, victim, NULL, ret, err);
	free(victim);
	snap_gc_graph_clear(&g);
	return r;
}
