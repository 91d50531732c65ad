/*
 * Keeping the disk in check: snapctl df, prune, gc, pin, unpin and check.
 * Built for cron: no prompts; prune --quiet prints nothing on success and
 * exits 0 when there was nothing to do; only errors exit non-zero.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cli.h"
#include "gc.h"
#include "refs.h"
#include "store.h"
#include "util.h"

#define MAX_FILTERS 32

enum {
	OPT_UNTIL = 0x100,
	OPT_MAX_USED,
	OPT_RESERVED,
	OPT_MIN_FREE,
	OPT_FILTER,
	OPT_ALL,
	OPT_DRY_RUN,
	OPT_VERBOSE,
	OPT_JSON,
	OPT_QUIET,
	OPT_NO_WAIT,
	OPT_AUTO,
	OPT_SHOW_POLICY,
	OPT_REPAIR,
	OPT_SUMMARY,
	OPT_FORMAT,
};

/* Options shared by prune and gc. */
struct gc_args {
	const char *until, *max_used, *reserved, *min_free;
	const char *filters[MAX_FILTERS];
	size_t nfilters;
	bool all, dry_run, verbose, json, quiet, no_wait, auto_run, show_policy, repair, summary;
	uint64_t took_ns;   /* prune: how long it ran, for --summary */
	const char *format; /* df: table, json or prometheus */
	int npos;
	char **pos;
};

static int
parse_gc_args(int argc, char **argv, const char *usage, struct gc_args *a)
{
	static const struct option opts[] = {
		{"until", required_argument, NULL, OPT_UNTIL},
		{"keep-duration", required_argument, NULL, OPT_UNTIL},
		{"max-used", required_argument, NULL, OPT_MAX_USED},
		{"reserved", required_argument, NULL, OPT_RESERVED},
		{"min-free", required_argument, NULL, OPT_MIN_FREE},
		{"filter", required_argument, NULL, OPT_FILTER},
		{"all", no_argument, NULL, OPT_ALL},
		{"dry-run", no_argument, NULL, OPT_DRY_RUN},
		{"verbose", no_argument, NULL, OPT_VERBOSE},
		{"json", no_argument, NULL, OPT_JSON},
		{"quiet", no_argument, NULL, OPT_QUIET},
		{"no-wait", no_argument, NULL, OPT_NO_WAIT},
		{"auto", no_argument, NULL, OPT_AUTO},
		{"show-policy", no_argument, NULL, OPT_SHOW_POLICY},
		{"repair", no_argument, NULL, OPT_REPAIR},
		{"summary", no_argument, NULL, OPT_SUMMARY},
		{"format", required_argument, NULL, OPT_FORMAT},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "hvaq", opts, NULL)) != -1) {
		switch (c) {
		case OPT_UNTIL:
			a->until = optarg;
			break;
		case OPT_MAX_USED:
			a->max_used = optarg;
			break;
		case OPT_RESERVED:
			a->reserved = optarg;
			break;
		case OPT_MIN_FREE:
			a->min_free = optarg;
			break;
		case OPT_FILTER:
			if (a->nfilters == MAX_FILTERS)
				return cli_usage("at most %d filters", MAX_FILTERS);
			a->filters[a->nfilters++] = optarg;
			break;
		case OPT_ALL:
		case 'a':
			a->all = true;
			break;
		case OPT_DRY_RUN:
			a->dry_run = true;
			break;
		case OPT_VERBOSE:
		case 'v':
			a->verbose = true;
			break;
		case OPT_JSON:
			a->json = true;
			break;
		case OPT_SUMMARY:
			a->summary = true;
			break;
		case OPT_FORMAT:
			a->format = optarg;
			break;
		case OPT_QUIET:
		case 'q':
			a->quiet = true;
			break;
		case OPT_NO_WAIT:
			a->no_wait = true;
			break;
		case OPT_AUTO:
			a->auto_run = true;
			break;
		case OPT_SHOW_POLICY:
			a->show_policy = true;
			break;
		case OPT_REPAIR:
			a->repair = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return -1;
		default:
			return CLI_EXIT_USAGE;
		}
	}
	a->npos = argc - optind;
	a->pos = argv + optind;
	return 0;
}

static bool
has_policy_flags(const struct gc_args *a)
{
	return a->until || a->max_used || a->reserved || a->min_free || a->nfilters;
}

/* The policy the command line describes. Exit status on error (usage: 2). */
static int
policy_from_flags(struct snap_store *s, const struct gc_args *a, struct gc_policy *p)
{
	struct sc_err err = SC_ERR_INIT;
	*p = (struct gc_policy){.source = GC_SOURCE_FLAG, .all = a->all};
	/* percentages are of the file system that holds the store */
	uint64_t fs = gc_fs_size(s);
	if (a->until && (sc_duration_parse(a->until, &p->keep_duration) < 0))
		return cli_usage("--until '%s' is not a duration (e.g. 90m, 24h, 7d)", a->until);
	const struct {
		const char *flag, *value;
		uint64_t *dst;
	} sizes[] = {
		{"--max-used", a->max_used, &p->max_used},
		{"--reserved", a->reserved, &p->reserved},
		{"--min-free", a->min_free, &p->min_free},
	};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		if (!sizes[i].value)
			continue;
		if (gc_size_parse(sizes[i].value, fs, sizes[i].dst, &err) < 0)
			return cli_usage("%s: %s", sizes[i].flag, sc_err_msg(&err));
	}
	if (a->nfilters) {
		p->filters = calloc(a->nfilters, sizeof(*p->filters));
		if (!p->filters)
			return cli_error("out of memory");
	}
	for (size_t i = 0; i < a->nfilters; i++) {
		if (gc_filter_parse(a->filters[i], &p->filters[i], &err) < 0) {
			gc_policy_clear(p);
			return cli_usage("--filter: %s", sc_err_msg(&err));
		}
		p->nfilters++;
	}
	return 0;
}

static struct json_object *
node_json(const struct snap_gc_graph *g, size_t i, uint64_t size)
{
	const struct snap_gc_node *n = &g->v[i];
	char t[64];
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "type", json_object_new_string(gc_node_type(g, i)));
	json_object_object_add(o, "object", json_object_new_string(n->name));
	json_object_object_add(o, "id", json_object_new_string(n->id));
	json_object_object_add(o, "size", json_object_new_uint64(size));
	json_object_object_add(
		o, "last_used",
		n->last_used ? json_object_new_string(sc_time_format(n->last_used, t, sizeof(t)))
			     : NULL);
	if (n->parent != SIZE_MAX)
		json_object_object_add(o, "parent", json_object_new_string(g->v[n->parent].id));
	return o;
}

/* An active snapshot's quota and what it counts so far; false when it has none. */
static bool
node_quota(struct snap_store *s, const struct snap_gc_node *n, uint64_t *ret_quota,
	   uint64_t *ret_used)
{
	if (n->type != SNAP_OBJ_SNAPSHOT || n->kind != SNAP_KIND_ACTIVE)
		return false;
	struct sc_err err = SC_ERR_INIT;
	if (snap_snapshot_quota(s, n->id, ret_quota, ret_used, &err) < 0)
		*ret_used = 0;
	sc_err_clear(&err);
	return *ret_quota != 0;
}

static const char *
short_id(const char *id, char *buf, size_t len)
{
	/* digests read better cut, as docker shows them */
	if (strncmp(id, "sha256:", 7) == 0)
		snprintf(buf, len, "%.19s", id);
	else
		snprintf(buf, len, "%s", id);
	return buf;
}

static void
print_prune(const struct gc_prune_report *rep, const struct gc_args *a)
{
	const struct snap_gc_graph *g = &rep->graph;
	uint64_t now = sc_now_ns();
	uint64_t freed = a->dry_run ? rep->would_free : rep->result.freed;
	if (a->json) {
		struct json_object *o = json_object_new_object();
		struct json_object *removed = json_object_new_array();
		for (size_t i = 0; i < g->n; i++)
			if (rep->removed[i])
				json_object_array_add(removed, node_json(g, i, g->v[i].size));
		json_object_object_add(o, "dry_run", json_object_new_boolean(a->dry_run));
		json_object_object_add(o, a->dry_run ? "would_remove" : "removed", removed);
		json_object_object_add(o, a->dry_run ? "would_free" : "freed",
				       json_object_new_uint64(freed));
		if (!a->dry_run) {
			json_object_object_add(o, "kept_by_recheck",
					       json_object_new_uint64(rep->result.kept));
			json_object_object_add(o, "transactions",
					       json_object_new_uint64(rep->result.transactions));
			json_object_object_add(
				o, "longest_lock_ms",
				json_object_new_double((double)rep->result.longest_lock_ns / 1e6));
		}
		if (a->verbose) {
			struct json_object *kept = json_object_new_array();
			for (size_t i = 0; i < g->n; i++) {
				const char *why = g->v[i].reached ? g->v[i].reason
						  : rep->why_kept ? rep->why_kept[i]
								  : NULL;
				if (rep->removed[i] || !why || !*why)
					continue;
				struct json_object *k = node_json(g, i, g->v[i].size);
				json_object_object_add(k, "reason", json_object_new_string(why));
				json_object_array_add(kept, k);
			}
			json_object_object_add(o, "kept", kept);
		}
		cli_json_print(o);
		return;
	}
	if (a->quiet)
		return;
	if (a->summary) {
		/* One line, for a journal: what went, by type, and how long it took. */
		size_t by[_SNAP_OBJ_TYPE_MAX] = {0}, count = 0;
		for (size_t i = 0; i < g->n; i++)
			if (rep->removed[i] && g->v[i].type < _SNAP_OBJ_TYPE_MAX) {
				by[g->v[i].type]++;
				count++;
			}
		char total[32];
		printf("%s %s in %zu record%s (%zu snapshots, %zu blobs, %zu images, %zu cache) "
		       "in %.2f s\n",
		       a->dry_run ? "prune would free" : "prune freed",
		       sc_size_format(freed, total, sizeof(total)), count, count == 1 ? "" : "s",
		       by[SNAP_OBJ_SNAPSHOT], by[SNAP_OBJ_BLOB], by[SNAP_OBJ_IMAGE],
		       by[SNAP_OBJ_CACHE], (double)a->took_ns / 1e9);
		return;
	}
	static const char *const headers[] = {"TYPE", "ID", "SIZE", "LAST USED"};
	struct cli_table *t = cli_table_new(4, headers);
	size_t count = 0;
	for (size_t i = 0; i < g->n; i++) {
		if (!rep->removed[i])
			continue;
		char size[32], age[32], id[64];
		const char *cells[] = {gc_node_type(g, i), short_id(g->v[i].id, id, sizeof(id)),
				       sc_size_format(g->v[i].size, size, sizeof(size)),
				       sc_age_format(g->v[i].last_used, now, age, sizeof(age))};
		cli_table_row(t, cells);
		count++;
	}
	if (count) {
		printf("%s:\n", a->dry_run ? "Would remove" : "Removed");
		cli_table_print(t, stdout);
	}
	cli_table_free(t);
	if (a->verbose) {
		static const char *const kh[] = {"TYPE", "ID", "SIZE", "KEPT BECAUSE"};
		struct cli_table *k = cli_table_new(4, kh);
		size_t nk = 0;
		for (size_t i = 0; i < g->n; i++) {
			const char *why = g->v[i].reached ? g->v[i].reason
					  : rep->why_kept ? rep->why_kept[i]
							  : NULL;
			if (rep->removed[i] || !why || !*why)
				continue;
			char size[32], id[64];
			const char *cells[] = {
				gc_node_type(g, i), short_id(g->v[i].id, id, sizeof(id)),
				sc_size_format(g->v[i].size, size, sizeof(size)), why};
			cli_table_row(k, cells);
			nk++;
		}
		if (nk) {
			printf("Kept:\n");
			cli_table_print(k, stdout);
		}
		cli_table_free(k);
	}
	char total[32];
	printf("%s: %s in %zu record%s\n", a->dry_run ? "Would free" : "Freed",
	       sc_size_format(freed, total, sizeof(total)), count, count == 1 ? "" : "s");
	if (rep->result.kept)
		printf("%zu record%s gained a user during the prune and stayed\n", rep->result.kept,
		       rep->result.kept == 1 ? "" : "s");
}

/* Serialises prunes: ROOT/prune.lock. Returns the fd, -EWOULDBLOCK with no_wait, or -errno. */
static int
prune_lock(struct snap_store *s, bool no_wait)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/prune.lock", snap_store_root(s));
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | (no_wait ? LOCK_NB : 0)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static const char prune_usage[] =
	"Usage: snapctl prune [--until AGE] [--max-used SIZE] [--reserved SIZE]\n"
	"                     [--min-free SIZE|N%] [--filter F]... [--all]\n"
	"                     [--dry-run] [--verbose] [--json] [--quiet] [--summary]\n"
	"                     [--no-wait]\n"
	"\n"
	"Removes unreferenced records (cache, snapshots nothing holds, blobs nothing\n"
	"points at), least recently used first; with --all, image names too.\n"
	"Without policy options, every unreferenced record goes. Pinned and leased\n"
	"records never go.\n"
	"  --until AGE        only records unused for longer than AGE (90m, 24h, 7d)\n"
	"  --max-used SIZE    remove until the store uses at most SIZE (10GB, 512MiB)\n"
	"  --reserved SIZE    never go below SIZE\n"
	"  --min-free SIZE|N% remove until the file system has SIZE free\n"
	"  --filter F         type=regular|exec.cachemount|source.local|image|content,\n"
	"                     label=K[=V], id=PREFIX; repeated filters are ANDed\n"
	"  --summary          one line: what went, by type, and how long it took\n"
	"                     (for a timer's journal)\n"
	"See docs/gc.md.\n";

static int
run_prune(struct snap_store *s, const struct gc_policy *pols, size_t n, struct gc_args *a)
{
	/* A dry run changes nothing, not even the lock file: it needs no lock. */
	int lock = a->dry_run ? -EBADF : prune_lock(s, a->no_wait);
	if (lock == -EWOULDBLOCK) {
		if (!a->quiet)
			cli_notice("another prune is running on '%s'; skipped (--no-wait)",
				   snap_store_root(s));
		return CLI_EXIT_OK;
	}
	if (lock < 0 && lock != -EBADF)
		return cli_error("prune: cannot lock '%s/prune.lock': %s", snap_store_root(s),
				 sc_strerror(lock));
	struct sc_err err = SC_ERR_INIT;
	struct gc_prune_report rep = {0};
	uint64_t t0 = sc_now_ns();
	int r = gc_prune(s, pols, n, a->dry_run ? GC_PRUNE_DRY_RUN : 0, &rep, &err);
	a->took_ns = sc_now_ns() - t0;
	if (lock >= 0)
		close(lock);
	if (r < 0)
		return cli_fail(&err, "prune");
	print_prune(&rep, a);
	gc_prune_report_clear(&rep);
	return CLI_EXIT_OK;
}

int
cli_cmd_prune(struct cli_ctx *ctx, int argc, char **argv)
{
	struct gc_args a = {0};
	int r = parse_gc_args(argc, argv, prune_usage, &a);
	if (r)
		return r < 0 ? CLI_EXIT_OK : r;
	if (a.npos)
		return cli_usage("prune takes no arguments; see 'snapctl prune --help'");
	if (a.auto_run || a.show_policy || a.repair)
		return cli_usage("prune does not take --auto, --show-policy or --repair");
	struct snap_store *s = cli_store(ctx);
	if (!s)
		return CLI_EXIT_FAILURE;
	struct gc_policy p;
	r = policy_from_flags(s, &a, &p);
	if (r)
		return r;
	r = run_prune(s, &p, 1, &a);
	gc_policy_clear(&p);
	return r;
}

static void
print_policy(const struct gc_policy *p, size_t i, struct json_object *arr)
{
	char buf[3][32];
	const char *none = "-";
	if (arr) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "source",
				       json_object_new_string(gc_source_to_string(p->source)));
		struct json_object *f = json_object_new_array();
		for (size_t k = 0; k < p->nfilters; k++) {
			char s[512];
			snprintf(s, sizeof(s), "%s=%s",
				 gc_filter_kind_to_string(p->filters[k].kind), p->filters[k].value);
			json_object_array_add(f, json_object_new_string(s));
		}
		json_object_object_add(o, "filters", f);
		json_object_object_add(o, "keep_duration_s",
				       json_object_new_uint64(p->keep_duration / 1000000000ull));
		json_object_object_add(o, "max_used", json_object_new_uint64(p->max_used));
		json_object_object_add(o, "reserved", json_object_new_uint64(p->reserved));
		json_object_object_add(o, "min_free", json_object_new_uint64(p->min_free));
		json_object_object_add(o, "all", json_object_new_boolean(p->all));
		json_object_array_add(arr, o);
		return;
	}
	printf("policy %zu (%s):", i + 1, gc_source_to_string(p->source));
	for (size_t k = 0; k < p->nfilters; k++)
		printf(" %s=%s", gc_filter_kind_to_string(p->filters[k].kind), p->filters[k].value);
	if (p->keep_duration)
		printf(" keep-duration=%" PRIu64 "h",
		       (uint64_t)(p->keep_duration / 3600000000000ull));
	printf(" max-used=%s reserved=%s min-free=%s%s\n",
	       p->max_used ? sc_size_format(p->max_used, buf[0], sizeof(buf[0])) : none,
	       p->reserved ? sc_size_format(p->reserved, buf[1], sizeof(buf[1])) : none,
	       p->min_free ? sc_size_format(p->min_free, buf[2], sizeof(buf[2])) : none,
	       p->all ? " all" : "");
}

static const char gc_usage_text[] =
	"Usage: snapctl gc [--dry-run] [--json]\n"
	"       snapctl gc --auto [policy options] [--dry-run] [--json]\n"
	"       snapctl gc --show-policy [policy options] [--json]\n"
	"\n"
	"Without options: removes what nothing reaches (no image, lease, pin, active\n"
	"snapshot or gc-root label), and nothing else. --auto runs the configured\n"
	"policies (ROOT/config.json, else the defaults) once, for a timer or cron;\n"
	"policy options (as for prune) replace them. --show-policy prints the\n"
	"policies in effect and where each came from.\n";

int
cli_cmd_gc(struct cli_ctx *ctx, int argc, char **argv)
{
	struct gc_args a = {0};
	int r = parse_gc_args(argc, argv, gc_usage_text, &a);
	if (r)
		return r < 0 ? CLI_EXIT_OK : r;
	if (a.npos)
		return cli_usage("gc takes no arguments; see 'snapctl gc --help'");
	struct snap_store *s = cli_store(ctx);
	if (!s)
		return CLI_EXIT_FAILURE;
	struct sc_err err = SC_ERR_INIT;

	if (a.auto_run || a.show_policy) {
		struct gc_config cfg = {0};
		if (has_policy_flags(&a) || a.all) {
			cfg.policies = calloc(1, sizeof(*cfg.policies));
			if (!cfg.policies)
				return cli_error("out of memory");
			r = policy_from_flags(s, &a, &cfg.policies[0]);
			if (r) {
				free(cfg.policies);
				return r;
			}
			cfg.npolicies = 1;
			cfg.auto_gc = true;
		} else if (gc_config_load(s, &cfg, &err) < 0) {
			return cli_fail(&err, "gc");
		}
		if (a.show_policy) {
			struct json_object *arr = a.json ? json_object_new_array() : NULL;
			if (!a.json)
				printf("automatic gc: %s\n", cfg.auto_gc ? "on" : "off");
			for (size_t i = 0; i < cfg.npolicies; i++)
				print_policy(&cfg.policies[i], i, arr);
			if (arr)
				cli_json_print(arr);
			gc_config_clear(&cfg);
			return CLI_EXIT_OK;
		}
		r = run_prune(s, cfg.policies, cfg.npolicies, &a);
		gc_config_clear(&cfg);
		return r;
	}
	if (has_policy_flags(&a) || a.all)
		return cli_usage("policy options go with 'gc --auto' or 'prune'");

	/* Plain gc: everything unreachable. */
	if (a.dry_run) {
		struct snap_gc_graph g;
		if (snap_gc_graph_load(s, &g, &err) < 0)
			return cli_fail(&err, "gc");
		snap_gc_graph_mark(&g, NULL);
		struct gc_prune_report rep = {.graph = g};
		rep.removed = calloc(g.n + 1, sizeof(bool));
		if (!rep.removed) {
			gc_prune_report_clear(&rep);
			return cli_error("out of memory");
		}
		for (size_t i = 0; i < g.n; i++)
			if (!g.v[i].reached && g.v[i].type != SNAP_OBJ_IMAGE) {
				rep.removed[i] = true;
				rep.would_free += g.v[i].size;
			}
		print_prune(&rep, &a);
		gc_prune_report_clear(&rep);
		return CLI_EXIT_OK;
	}
	int lock = prune_lock(s, a.no_wait);
	if (lock == -EWOULDBLOCK)
		return CLI_EXIT_OK;
	struct snap_collect_result res;
	r = snap_gc(s, &res, &err);
	if (lock >= 0)
		close(lock);
	if (r < 0)
		return cli_fail(&err, "gc");
	size_t total = 0;
	for (int k = 0; k < _SNAP_OBJ_TYPE_MAX; k++)
		total += res.removed[k];
	char freed[32];
	if (a.json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "removed", json_object_new_uint64(total));
		json_object_object_add(o, "freed", json_object_new_uint64(res.freed));
		cli_json_print(o);
	} else if (!a.quiet) {
		printf("Freed: %s in %zu record%s\n",
		       sc_size_format(res.freed, freed, sizeof(freed)), total,
		       total == 1 ? "" : "s");
	}
	return CLI_EXIT_OK;
}

static const char df_usage[] =
	"Usage: snapctl df [-v] [--json] [--format table|json|prometheus]\n"
	"\n"
	"Disk used by the store, per record type: count, size on disk,\n"
	"reclaimable (freed if every unreferenced record of that type\n"
	"went) and shared. -v lists every record and why it is kept.\n"
	"--format prometheus writes the figures, the file system's size and\n"
	"free space and the last prune's time, freed bytes, records and\n"
	"duration in the text format node_exporter's textfile collector reads.\n";

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void
prom_label(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void
prom_metric(FILE *f, const char *name, const char *help, const char *root, const char *type,
	    double value, bool header)
{
	if (header)
		fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
	fprintf(f, "%s{root=\"", name);
	prom_label(f, root);
	if (type) {
		fputs("\",type=\"", f);
		prom_label(f, type);
	}
	fprintf(f, "\"} %.17g\n", value);
}

static void
print_prometheus(const struct gc_usage *u, const char *root)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} per_type[] = {
		{"snapctl_store_bytes", "Bytes on disk, by record type.",
		 offsetof(struct gc_usage_row, size)},
		{"snapctl_store_reclaimable_bytes",
		 "Bytes freed if every unreferenced record of the type went.",
		 offsetof(struct gc_usage_row, reclaimable)},
		{"snapctl_store_records", "Records, by type.",
		 offsetof(struct gc_usage_row, count)},
	};
	for (size_t k = 0; k < sizeof(per_type) / sizeof(per_type[0]); k++)
		for (size_t i = 0; i < u->nrows; i++) {
			const uint64_t *v =
				(const uint64_t *)((const char *)&u->rows[i] + per_type[k].off);
			prom_metric(stdout, per_type[k].name, per_type[k].help, root,
				    u->rows[i].type, (double)*v, i == 0);
		}
	const struct {
		const char *name, *help;
		double v;
		bool have;
	} single[] = {
		{"snapctl_store_total_bytes", "Bytes the store takes, all included.",
		 (double)u->total, true},
		{"snapctl_store_metadata_bytes", "Bytes of the metadata file.", (double)u->metadata,
		 true},
		{"snapctl_filesystem_size_bytes", "Size of the store's file system.",
		 (double)u->fs_size, u->fs_size > 0},
		{"snapctl_filesystem_avail_bytes", "Bytes free for snapctl on its file system.",
		 (double)u->fs_avail, u->fs_size > 0},
		{"snapctl_last_prune_timestamp_seconds", "When the last prune ended.",
		 (double)u->last_prune.at / 1e9, u->last_prune.at > 0},
		{"snapctl_last_prune_freed_bytes", "Bytes the last prune freed.",
		 (double)u->last_prune.freed, u->last_prune.at > 0},
		{"snapctl_last_prune_records", "Records the last prune removed.",
		 (double)u->last_prune.records, u->last_prune.at > 0},
		{"snapctl_last_prune_duration_seconds", "How long the last prune ran.",
		 (double)u->last_prune.took_ns / 1e9, u->last_prune.at > 0},
	};
	for (size_t k = 0; k < sizeof(single) / sizeof(single[0]); k++)
		if (single[k].have)
			prom_metric(stdout, single[k].name, single[k].help, root, NULL, single[k].v,
				    true);
}

int
cli_cmd_df(struct cli_ctx *ctx, int argc, char **argv)
{
	struct gc_args a = {0};
	int r = parse_gc_args(argc, argv, df_usage, &a);
	if (r)
		return r < 0 ? CLI_EXIT_OK : r;
	if (a.npos || has_policy_flags(&a))
		return cli_usage("df takes only -v, --json and --format");
	bool prometheus = false;
	if (a.format) {
		if (strcmp(a.format, "json") == 0)
			a.json = true;
		else if (strcmp(a.format, "prometheus") == 0)
			prometheus = true;
		else if (strcmp(a.format, "table") != 0)
			return cli_usage("unknown format '%s'; use table, json or prometheus",
					 a.format);
	}
	struct snap_store *s = cli_store(ctx);
	if (!s)
		return CLI_EXIT_FAILURE;
	struct sc_err err = SC_ERR_INIT;
	struct gc_usage u;
	if (gc_usage(s, &u, &err) < 0)
		return cli_fail(&err, "df");
	const struct snap_gc_graph *g = &u.graph;
	uint64_t now = sc_now_ns();
	if (prometheus) {
		print_prometheus(&u, snap_store_root(s));
		gc_usage_clear(&u);
		return CLI_EXIT_OK;
	}
	if (a.json) {
		struct json_object *o = json_object_new_object();
		struct json_object *types = json_object_new_array();
		for (size_t i = 0; i < u.nrows; i++) {
			struct json_object *row = json_object_new_object();
			json_object_object_add(row, "type", json_object_new_string(u.rows[i].type));
			json_object_object_add(row, "count",
					       json_object_new_uint64(u.rows[i].count));
			json_object_object_add(row, "size", json_object_new_uint64(u.rows[i].size));
			json_object_object_add(row, "reclaimable",
					       json_object_new_uint64(u.rows[i].reclaimable));
			json_object_object_add(row, "shared",
					       json_object_new_uint64(u.rows[i].shared));
			json_object_array_add(types, row);
		}
		json_object_object_add(o, "root", json_object_new_string(snap_store_root(s)));
		json_object_object_add(o, "driver",
				       json_object_new_string(snap_store_driver_name(s)));
		json_object_object_add(o, "types", types);
		json_object_object_add(o, "metadata", json_object_new_uint64(u.metadata));
		json_object_object_add(o, "other", json_object_new_uint64(u.other));
		json_object_object_add(o, "total", json_object_new_uint64(u.total));
		if (a.verbose) {
			struct json_object *recs = json_object_new_array();
			for (size_t i = 0; i < g->n; i++) {
				uint64_t size = g->v[i].size ? g->v[i].size : u.active_size[i];
				struct json_object *rec = node_json(g, i, size);
				json_object_object_add(rec, "usage_count",
						       json_object_new_uint64(g->v[i].nin));
				json_object_object_add(
					rec, "kept_because",
					g->v[i].reached ? json_object_new_string(g->v[i].reason)
							: NULL);
				uint64_t quota, used;
				if (node_quota(s, &g->v[i], &quota, &used)) {
					json_object_object_add(rec, "quota",
							       json_object_new_uint64(quota));
					json_object_object_add(rec, "quota_used",
							       json_object_new_uint64(used));
				}
				json_object_array_add(recs, rec);
			}
			json_object_object_add(o, "records", recs);
		}
		cli_json_print(o);
		gc_usage_clear(&u);
		return CLI_EXIT_OK;
	}
	printf("store %s, %s driver\n\n", snap_store_root(s), snap_store_driver_name(s));
	if (a.verbose) {
		static const char *const vh[] = {"ID",	  "TYPE",   "SIZE",  "LAST USED",
						 "USAGE", "PARENT", "QUOTA", "KEPT BECAUSE"};
		struct cli_table *t = cli_table_new(8, vh);
		for (size_t i = 0; i < g->n; i++) {
			const struct snap_gc_node *n = &g->v[i];
			char size[32], age[32], uses[16], id[64], qcell[80] = "";
			snprintf(uses, sizeof(uses), "%zu", n->nin);
			uint64_t quota, used;
			if (node_quota(s, n, &quota, &used)) {
				char qs[32], us[32];
				snprintf(qcell, sizeof(qcell), "%s of %s",
					 sc_size_format(used, us, sizeof(us)),
					 sc_size_format(quota, qs, sizeof(qs)));
			}
			const char *cells[] = {short_id(n->id, id, sizeof(id)),
					       gc_node_type(g, i),
					       sc_size_format(n->size ? n->size : u.active_size[i],
							      size, sizeof(size)),
					       sc_age_format(n->last_used, now, age, sizeof(age)),
					       uses,
					       n->parent != SIZE_MAX ? g->v[n->parent].id : "",
					       qcell,
					       n->reached ? n->reason
							  : "unreferenced (reclaimable)"};
			cli_table_row(t, cells);
		}
		cli_table_print(t, stdout);
		cli_table_free(t);
		putchar('\n');
	}
	static const char *const headers[] = {"TYPE", "COUNT", "SIZE", "RECLAIMABLE", "SHARED"};
	struct cli_table *t = cli_table_new(5, headers);
	for (size_t i = 0; i < u.nrows; i++) {
		/* the builder's cache types only once there are any */
		bool core = !strcmp(u.rows[i].type, "regular") ||
			    !strcmp(u.rows[i].type, "content") || !strcmp(u.rows[i].type, "image");
		if (!core && !u.rows[i].count)
			continue;
		char count[32], size[32], rec[32], shared[32];
		snprintf(count, sizeof(count), "%zu", u.rows[i].count);
		const char *cells[] = {u.rows[i].type, count,
				       sc_size_format(u.rows[i].size, size, sizeof(size)),
				       sc_size_format(u.rows[i].reclaimable, rec, sizeof(rec)),
				       sc_size_format(u.rows[i].shared, shared, sizeof(shared))};
		cli_table_row(t, cells);
	}
	char meta[32], other[32], total[32];
	const char *mrow[] = {"metadata", "", sc_size_format(u.metadata, meta, sizeof(meta)), "",
			      ""};
	cli_table_row(t, mrow);
	if (u.other) {
		const char *orow[] = {"tmp, ingest, trash", "",
				      sc_size_format(u.other, other, sizeof(other)), "", ""};
		cli_table_row(t, orow);
	}
	const char *trow[] = {"total", "", sc_size_format(u.total, total, sizeof(total)), "", ""};
	cli_table_row(t, trow);
	cli_table_print(t, stdout);
	cli_table_free(t);
	gc_usage_clear(&u);
	return CLI_EXIT_OK;
}

int
cli_cmd_pin(struct cli_ctx *ctx, int argc, char **argv)
{
	bool pin = strcmp(argv[0], "pin") == 0;
	if (argc < 2 || strcmp(argv[1], "--help") == 0) {
		printf("Usage: snapctl %s NAME...\n"
		       "NAME is a snapshot name, an image name or a blob digest (or TYPE:NAME).\n"
		       "Pinned records are never pruned.\n",
		       argv[0]);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	struct snap_store *s = cli_store(ctx);
	if (!s)
		return CLI_EXIT_FAILURE;
	int rc = CLI_EXIT_OK;
	for (int i = 1; i < argc; i++) {
		struct sc_err err = SC_ERR_INIT;
		char obj[SNAP_OBJ_NAME_MAX + 1];
		if (snap_obj_resolve(s, argv[i], obj, &err) < 0 || snap_pin(s, obj, pin, &err) < 0)
			rc = cli_fail(&err, "%s", argv[0]);
	}
	return rc;
}

static const char check_usage[] =
	"Usage: snapctl check [--repair] [--json]\n"
	"\n"
	"Finds records whose data is missing, data with no record, blobs whose\n"
	"content no longer matches their digest, dead leases and counters that\n"
	"disagree with a recount, and images that point at a blob or snapshot\n"
	"that is not in the store. --repair fixes each (but the last: import or\n"
	"build such an image again) and says what it did.\n"
	"Exits 1 if the store is inconsistent (missing or damaged data, wrong\n"
	"counters, images missing data) and was not repaired; leftovers a crash\n"
	"can leave (trash, data without a record, dead leases) are reported but\n"
	"are not errors.\n";

int
cli_cmd_check(struct cli_ctx *ctx, int argc, char **argv)
{
	struct gc_args a = {0};
	int r = parse_gc_args(argc, argv, check_usage, &a);
	if (r)
		return r < 0 ? CLI_EXIT_OK : r;
	if (a.npos || has_policy_flags(&a))
		return cli_usage("check takes only --repair and --json");
	/* Look at the store as a crash left it: no cleanup at open. */
	ctx->store_flags |= SNAP_STORE_NO_CLEANUP;
	struct snap_store *s = cli_store(ctx);
	if (!s)
		return CLI_EXIT_FAILURE;
	struct sc_err err = SC_ERR_INIT;
	struct gc_check_report rep;
	if (gc_check(s, a.repair, &rep, &err) < 0)
		return cli_fail(&err, "check");
	bool broken = false, lost = false;
	for (size_t i = 0; i < rep.n; i++) {
		enum gc_problem_kind k = rep.v[i].kind;
		if (!rep.v[i].repaired && (k == GC_PROBLEM_MISSING_FOLDER ||
					   k == GC_PROBLEM_DAMAGED_BLOB || k == GC_PROBLEM_COUNTER))
			broken = true;
		if (k == GC_PROBLEM_MISSING_TARGET)
			lost = true;
	}
	if (a.json) {
		struct json_object *o = json_object_new_object();
		struct json_object *arr = json_object_new_array();
		for (size_t i = 0; i < rep.n; i++) {
			struct json_object *p = json_object_new_object();
			json_object_object_add(
				p, "kind",
				json_object_new_string(gc_problem_kind_to_string(rep.v[i].kind)));
			json_object_object_add(p, "what", json_object_new_string(rep.v[i].what));
			json_object_object_add(p, "detail",
					       json_object_new_string(rep.v[i].detail));
			json_object_object_add(p, "repaired",
					       json_object_new_boolean(rep.v[i].repaired));
			json_object_array_add(arr, p);
		}
		json_object_object_add(o, "problems", arr);
		json_object_object_add(o, "consistent", json_object_new_boolean(!broken && !lost));
		cli_json_print(o);
	} else if (rep.n == 0) {
		printf("store '%s' is consistent\n", snap_store_root(s));
	} else {
		static const char *const headers[] = {"PROBLEM", "WHAT", "DETAIL", "REPAIRED"};
		struct cli_table *t = cli_table_new(4, headers);
		for (size_t i = 0; i < rep.n; i++) {
			const char *cells[] = {gc_problem_kind_to_string(rep.v[i].kind),
					       rep.v[i].what, rep.v[i].detail,
					       rep.v[i].repaired ? "yes" : "no"};
			cli_table_row(t, cells);
		}
		cli_table_print(t, stdout);
		cli_table_free(t);
	}
	gc_check_report_clear(&rep);
	if (broken && !a.json)
		fprintf(stderr,
			"snapctl: check: store '%s' is inconsistent; run 'snapctl check "
			"--repair'\n",
			snap_store_root(s));
	else if (lost && !a.json)
		fprintf(stderr,
			"snapctl: check: store '%s' has images whose data is gone; import or "
			"build them again\n",
			snap_store_root(s));
	return broken || lost ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}
