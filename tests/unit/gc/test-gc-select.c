/*
 * Policy selection on synthetic graphs: each policy alone and combined, LRU
 * order, whole subtrees in one run, the reserve floor, and pinned and leased
 * records never chosen. No store, no disk: the graph is built by hand.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gc.h"
#include "tap.h"

#define S  1000000000ull /* ns per second */
#define H  (3600 * S)
#define MB 1000000ull

static struct snap_gc_graph g;
static bool victim[64];
static char *why[64];

static void
reset(void)
{
	for (size_t i = 0; i < g.n; i++)
		free(why[i]);
	memset(why, 0, sizeof(why));
	snap_gc_graph_clear(&g);
	g.v = calloc(64, sizeof(*g.v));
	g.now = 1000 * H;
	memset(victim, 0, sizeof(victim));
}

/* Adds a node used age_h hours ago; returns its index. */
static size_t
node(enum snap_obj_type type, const char *id, int kind, uint64_t size, uint64_t age_h)
{
	struct snap_gc_node *n = &g.v[g.n];
	char name[256];
	snprintf(name, sizeof(name), "%s:%s", snap_obj_type_to_string(type), id);
	*n = (struct snap_gc_node){.type = type, .kind = kind, .size = size, .parent = SIZE_MAX};
	n->name = strdup(name);
	n->id = strchr(n->name, ':') + 1;
	n->last_used = n->created = g.now - age_h * H;
	return g.n++;
}

static size_t
snap(const char *id, uint64_t size, uint64_t age_h)
{
	return node(SNAP_OBJ_SNAPSHOT, id, SNAP_KIND_COMMITTED, size, age_h);
}

static void
edge(size_t from, size_t to)
{
	struct snap_gc_node *f = &g.v[from];
	f->out = realloc(f->out, (f->nout + 1) * sizeof(size_t));
	f->out[f->nout++] = to;
	g.v[to].nin++;
}

static void
child(size_t c, size_t parent)
{
	g.v[c].parent = parent;
	edge(c, parent);
}

static void
label(size_t i, const char *k, const char *v)
{
	struct snap_gc_node *n = &g.v[i];
	n->labels = realloc(n->labels, (n->nlabels + 1) * sizeof(*n->labels));
	n->labels[n->nlabels].key = strdup(k);
	n->labels[n->nlabels].value = strdup(v);
	n->nlabels++;
}

static void
run(const struct gc_policy *p, size_t np, uint64_t fs_avail)
{
	for (size_t i = 0; i < g.n; i++) {
		free(why[i]);
		why[i] = NULL;
	}
	ASSERT_OK(snap_gc_graph_index(&g));
	ASSERT_OK(gc_select(&g, p, np, fs_avail, victim, why));
}

static size_t
count_victims(void)
{
	size_t n = 0;
	for (size_t i = 0; i < g.n; i++)
		n += victim[i];
	return n;
}

TEST(everything_unreferenced_without_policy_options)
{
	reset();
	size_t a = snap("a", 10 * MB, 5);
	size_t b = snap("b", 10 * MB, 1);
	size_t active = node(SNAP_OBJ_SNAPSHOT, "work", SNAP_KIND_ACTIVE, 0, 0);
	size_t base = snap("base", 10 * MB, 100);
	child(active, base);
	struct gc_policy p = {0};
	run(&p, 1, UINT64_MAX);
	ASSERT_TRUE(victim[a] && victim[b]);
	/* the parent of an active snapshot is in use */
	ASSERT_FALSE(victim[base] || victim[active]);
}

TEST(keep_duration)
{
	reset();
	size_t old = snap("old", MB, 50);
	size_t young = snap("young", MB, 10);
	struct gc_policy p = {.keep_duration = 24 * H};
	run(&p, 1, UINT64_MAX);
	ASSERT_TRUE(victim[old]);
	ASSERT_FALSE(victim[young]);
	ASSERT_NOT_NULL(why[young]);
	ASSERT_TRUE(strstr(why[young], "recently") != NULL);
}

TEST(max_used_takes_least_recently_used_first)
{
	reset();
	size_t s1 = snap("s1", 10 * MB, 30); /* oldest */
	size_t s2 = snap("s2", 10 * MB, 20);
	size_t s3 = snap("s3", 10 * MB, 10);
	size_t s4 = snap("s4", 10 * MB, 1); /* newest */
	/* 40 MB held, cap 25 MB: the two least recently used go */
	struct gc_policy p = {.max_used = 25 * MB};
	run(&p, 1, UINT64_MAX);
	ASSERT_TRUE(victim[s1] && victim[s2]);
	ASSERT_FALSE(victim[s3] || victim[s4]);
	ASSERT_STREQ(why[s3], "the policy's target was met");
	/* under the cap: nothing */
	reset();
	snap("x", 10 * MB, 30);
	struct gc_policy q = {.max_used = 25 * MB};
	run(&q, 1, UINT64_MAX);
	ASSERT_EQ(count_victims(), 0);
}

TEST(reserved_is_a_floor)
{
	reset();
	size_t s1 = snap("s1", 10 * MB, 30);
	size_t s2 = snap("s2", 10 * MB, 20);
	size_t s3 = snap("s3", 10 * MB, 10);
	/* remove everything, but keep at least 15 MB: only one can go */
	struct gc_policy p = {.reserved = 15 * MB};
	run(&p, 1, UINT64_MAX);
	ASSERT_TRUE(victim[s1]);
	ASSERT_FALSE(victim[s2] || victim[s3]);
	ASSERT_STREQ(why[s2], "under the reserved space");
	/* combined with a cap below the floor, the floor wins */
	reset();
	s1 = snap("s1", 10 * MB, 30);
	s2 = snap("s2", 10 * MB, 20);
	s3 = snap("s3", 10 * MB, 10);
	struct gc_policy q = {.max_used = 5 * MB, .reserved = 20 * MB};
	run(&q, 1, UINT64_MAX);
	ASSERT_EQ(count_victims(), 1);
	ASSERT_TRUE(victim[s1]);
}

TEST(min_free)
{
	reset();
	size_t s1 = snap("s1", 10 * MB, 30);
	size_t s2 = snap("s2", 10 * MB, 20);
	size_t s3 = snap("s3", 10 * MB, 10);
	/* 5 MB free, want 22 MB: 17 MB more, so two records */
	struct gc_policy p = {.min_free = 22 * MB};
	run(&p, 1, 5 * MB);
	ASSERT_TRUE(victim[s1] && victim[s2]);
	ASSERT_FALSE(victim[s3]);
	/* enough free already: nothing */
	reset();
	snap("s1", 10 * MB, 30);
	run(&p, 1, 50 * MB);
	ASSERT_EQ(count_victims(), 0);
}

TEST(filters_are_anded)
{
	reset();
	size_t cm = snap("cm", MB, 50);
	label(cm, "snapctl.cache.type", "exec.cachemount");
	size_t cm2 = snap("cm2", MB, 50);
	label(cm2, "snapctl.cache.type", "exec.cachemount");
	label(cm2, "team", "ci");
	size_t reg = snap("reg", MB, 50);
	size_t blob =
		node(SNAP_OBJ_BLOB,
		     "sha256:abcdef0000000000000000000000000000000000000000000000000000000000", -1,
		     MB, 50);
	struct gc_policy p = {0};
	struct gc_filter f[2];
	struct sc_err err = SC_ERR_INIT;
	ASSERT_OK(gc_filter_parse("type=exec.cachemount", &f[0], &err));
	ASSERT_OK(gc_filter_parse("label=team=ci", &f[1], &err));
	p.filters = f;
	p.nfilters = 2;
	run(&p, 1, UINT64_MAX);
	ASSERT_TRUE(victim[cm2]);
	ASSERT_FALSE(victim[cm] || victim[reg] || victim[blob]);
	ASSERT_STREQ(why[cm], "filtered out");
	/* type lists are ORed inside one filter; id= matches a prefix (digests without sha256:) */
	memset(victim, 0, sizeof(victim));
	struct gc_filter t, id;
	ASSERT_OK(gc_filter_parse("type=content,regular", &t, &err));
	ASSERT_OK(gc_filter_parse("id=abcd", &id, &err));
	struct gc_policy q = {.filters = &t, .nfilters = 1};
	run(&q, 1, UINT64_MAX);
	ASSERT_TRUE(victim[reg] && victim[blob]);
	ASSERT_FALSE(victim[cm]);
	memset(victim, 0, sizeof(victim));
	struct gc_policy r2 = {.filters = &id, .nfilters = 1};
	run(&r2, 1, UINT64_MAX);
	ASSERT_TRUE(victim[blob]);
	ASSERT_EQ(count_victims(), 1);
	free(f[0].value);
	free(f[1].value);
	free(t.value);
	free(id.value);
	/* bad filters are named */
	struct gc_filter bad;
	ASSERT_ERRNO(gc_filter_parse("type=bogus", &bad, &err), -EINVAL);
	ASSERT_TRUE(strstr(sc_err_msg(&err), "bogus") != NULL);
	sc_err_clear(&err);
	ASSERT_ERRNO(gc_filter_parse("colour=red", &bad, &err), -EINVAL);
	sc_err_clear(&err);
	ASSERT_ERRNO(gc_filter_parse("label=", &bad, &err), -EINVAL);
}

TEST(whole_subtree_in_one_run)
{
	reset();
	/* base <- mid <- top, all unreferenced and old; the parent was used last */
	size_t base = snap("base", 10 * MB, 40);
	size_t mid = snap("mid", 10 * MB, 50);
	size_t top = snap("top", 10 * MB, 60);
	child(mid, base);
	child(top, mid);
	g.v[base].last_used = g.now - 1 * H; /* used recently, by its child's prepare */
	struct gc_policy p = {0};
	run(&p, 1, UINT64_MAX);
	ASSERT_TRUE(victim[top] && victim[mid] && victim[base]);
	/* a parent whose child stays, stays */
	reset();
	base = snap("base", 10 * MB, 40);
	size_t keep = snap("keep", 10 * MB, 1);
	size_t go = snap("go", 10 * MB, 50);
	child(keep, base);
	child(go, base);
	struct gc_policy q = {.keep_duration = 24 * H};
	run(&q, 1, UINT64_MAX);
	ASSERT_TRUE(victim[go]);
	ASSERT_FALSE(victim[keep] || victim[base]);
	ASSERT_STREQ(why[base], "something that points at it stays");
}

TEST(pinned_and_leased_never_chosen)
{
	reset();
	size_t pinned = snap("pinned", MB, 500);
	g.v[pinned].pinned = true;
	size_t leased = snap("leased", MB, 500);
	g.v[leased].lease = strdup("build-1");
	size_t under = snap("under-leased", MB, 500);
	child(leased, under);
	size_t rooted = snap("rooted", MB, 500);
	label(rooted, SNAP_GC_ROOT_LABEL, "1");
	size_t free_ = snap("free", MB, 500);
	struct gc_policy p = {.all = true};
	run(&p, 1, UINT64_MAX);
	ASSERT_TRUE(victim[free_]);
	ASSERT_FALSE(victim[pinned] || victim[leased] || victim[under] || victim[rooted]);
	ASSERT_STREQ(g.v[pinned].reason, "pinned");
	ASSERT_STREQ(g.v[leased].reason, "leased by build-1");
	ASSERT_STREQ(g.v[under].reason, "parent of leased");
}

TEST(images_only_with_all)
{
	reset();
	size_t img = node(SNAP_OBJ_IMAGE, "app:1", -1, 0, 100);
	size_t man = node(SNAP_OBJ_BLOB, "sha256:m", -1, MB, 100);
	size_t layer = node(SNAP_OBJ_BLOB, "sha256:l", -1, 5 * MB, 100);
	size_t unpacked = snap("chain", 5 * MB, 100);
	size_t shared = node(SNAP_OBJ_BLOB, "sha256:s", -1, MB, 100);
	size_t img2 = node(SNAP_OBJ_IMAGE, "other:1", -1, 0, 1);
	edge(img, man);
	edge(man, layer);
	edge(layer, unpacked);
	edge(man, shared);
	edge(img2, shared);
	struct gc_policy p = {0};
	run(&p, 1, UINT64_MAX);
	ASSERT_EQ(count_victims(), 0); /* images are roots */
	struct gc_policy q = {.all = true, .keep_duration = 24 * H};
	run(&q, 1, UINT64_MAX);
	ASSERT_TRUE(victim[img] && victim[man] && victim[layer] && victim[unpacked]);
	/* what another image still holds stays, and so does the newer image */
	ASSERT_FALSE(victim[shared] || victim[img2]);
}

TEST(policies_run_in_order)
{
	/*
	 * Two policies whose order decides the outcome: cache mounts down to
	 * 500 MB (of cache mounts), then anything down to 700 MB. In that
	 * order the cache mount goes, the store is then 600 MB and the second
	 * policy has nothing to do. The other way round the older regular
	 * record goes first (least recently used), and then the cache mount
	 * too, still over its own cap.
	 */
	struct sc_err err = SC_ERR_INIT;
	struct gc_filter f;
	ASSERT_OK(gc_filter_parse("type=exec.cachemount,source.local", &f, &err));
	struct gc_policy cm_first[2] = {{.max_used = 500 * MB, .filters = &f, .nfilters = 1},
					{.max_used = 700 * MB}};
	struct gc_policy any_first[2] = {cm_first[1], cm_first[0]};
	for (int order = 0; order < 2; order++) {
		reset();
		size_t cm = snap("cm", 600 * MB, 72);
		label(cm, "snapctl.cache.type", "exec.cachemount");
		size_t reg = snap("reg", 600 * MB, 100);
		run(order == 0 ? cm_first : any_first, 2, UINT64_MAX);
		ASSERT_TRUE(victim[cm]);
		ASSERT_EQ(victim[reg], order == 1);
		ASSERT_EQ(count_victims(), (size_t)(1 + order));
	}
	free(f.value);
}

/*
 * A build cache record holds its snapshot and layer blob; an old image's
 * orphaned manifest may still list that blob. "--filter type=regular"
 * takes the record with its blob and snapshot, and that garbage manifest
 * along, but keeps a blob an image still lists.
 */
TEST(cache_records_go_with_what_they_alone_hold)
{
	reset();
	size_t rec = node(SNAP_OBJ_CACHE, "sha256:aa", -1, 0, 30);
	label(rec, "snapctl.cache.type", "regular");
	size_t s1 = snap("cache/aa", 10 * MB, 30);
	size_t blob = node(SNAP_OBJ_BLOB, "sha256:layer1", -1, 5 * MB, 30);
	size_t orphan = node(SNAP_OBJ_BLOB, "sha256:oldmanifest", -1, 1000, 30);
	edge(rec, s1);
	edge(rec, blob);
	edge(blob, s1);
	edge(orphan, blob);
	/* a second record whose layer an image still lists */
	size_t rec2 = node(SNAP_OBJ_CACHE, "sha256:bb", -1, 0, 30);
	label(rec2, "snapctl.cache.type", "regular");
	size_t s2 = snap("cache/bb", 10 * MB, 30);
	size_t blob2 = node(SNAP_OBJ_BLOB, "sha256:layer2", -1, 5 * MB, 30);
	size_t img = node(SNAP_OBJ_IMAGE, "app:1", -1, 0, 30);
	size_t man = node(SNAP_OBJ_BLOB, "sha256:manifest2", -1, 1000, 30);
	edge(rec2, s2);
	edge(rec2, blob2);
	edge(blob2, s2);
	edge(img, man);
	edge(man, blob2);
	/* an unrelated blob nothing points at: content, filtered out */
	size_t loose = node(SNAP_OBJ_BLOB, "sha256:loose", -1, 1000, 30);
	struct gc_policy p = {0};
	struct gc_filter f;
	struct sc_err err = SC_ERR_INIT;
	ASSERT_OK(gc_filter_parse("type=regular", &f, &err));
	p.filters = &f;
	p.nfilters = 1;
	run(&p, 1, UINT64_MAX);
	ASSERT_TRUE(victim[rec] && victim[s1] && victim[blob] && victim[orphan]);
	ASSERT_TRUE(victim[rec2]);
	ASSERT_FALSE(victim[s2] || victim[blob2] || victim[man] || victim[img]);
	ASSERT_FALSE(victim[loose]);
	free(f.value);
}

int
main(int argc, char **argv)
{
	int r = tap_main(argc, argv);
	reset();
	free(g.v);
	return r;
}
