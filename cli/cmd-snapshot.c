/*
 * snapctl snapshot: the containerd-style snapshot verbs. Arguments follow
 * `ctr snapshots` so scripts port over: prepare KEY [PARENT], view KEY
 * PARENT, commit NAME KEY, mount KEY DIR, umount DIR, rm KEY...
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "mount.h"
#include "store.h"
#include "util.h"

#define MAX_LABEL_ARGS SNAP_LABELS_MAX

static const char snapshot_usage[] =
	"Usage: snapctl snapshot COMMAND ...\n"
	"\n"
	"  prepare KEY [PARENT] [--label K=V]... [--quota SIZE] [--mounts]\n"
	"                              new active (writable) snapshot on PARENT\n"
	"  view KEY PARENT [--label K=V]... [--mounts]\n"
	"                              new read-only view of PARENT\n"
	"  commit NAME KEY [--label K=V]...\n"
	"                              commit the active snapshot KEY as NAME\n"
	"  rm KEY...                   remove snapshots (not while they have children)\n"
	"  ls [--kind K] [--parent P] [--filter label=K[=V]] [--json]\n"
	"  info KEY                    the record, as JSON\n"
	"  mounts [TARGET] KEY [--json] the mounts that make KEY's file system\n"
	"  mount KEY DIR               mount KEY on DIR\n"
	"  umount DIR                  unmount DIR\n"
	"  label KEY [K=V|K=]...       set (or with an empty value, remove) labels\n"
	"  usage [KEY]... [--json]     bytes and inodes (measured now for active snapshots)\n";

enum {
	OPT_LABEL = 0x100,
	OPT_QUOTA,
	OPT_MOUNTS,
	OPT_JSON,
	OPT_KIND,
	OPT_PARENT,
	OPT_FILTER,
};

struct snap_args {
	struct snap_label labels[MAX_LABEL_ARGS];
	size_t nlabels;
	const char *quota;
	bool mounts, json;
	const char *kind, *parent, *filter;
	int npos;
	char **pos;
};

static int
parse_label(const char *arg, struct snap_label *ret)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg)
		return -EINVAL;
	ret->key = strndup(arg, (size_t)(eq - arg));
	ret->value = (char *)eq + 1;
	return ret->key ? 0 : -ENOMEM;
}

static void
snap_args_free(struct snap_args *a)
{
	for (size_t i = 0; i < a->nlabels; i++)
		free(a->labels[i].key);
}

/* Parses the options every snapshot verb may take; each verb checks what applies. */
static int
parse_args(int argc, char **argv, struct snap_args *a)
{
	static const struct option opts[] = {
		{"label", required_argument, NULL, OPT_LABEL},
		{"quota", required_argument, NULL, OPT_QUOTA},
		{"mounts", no_argument, NULL, OPT_MOUNTS},
		{"json", no_argument, NULL, OPT_JSON},
		{"kind", required_argument, NULL, OPT_KIND},
		{"parent", required_argument, NULL, OPT_PARENT},
		{"filter", required_argument, NULL, OPT_FILTER},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_LABEL:
			if (a->nlabels == MAX_LABEL_ARGS)
				return cli_usage("at most %d labels", MAX_LABEL_ARGS);
			if (parse_label(optarg, &a->labels[a->nlabels]) < 0)
				return cli_usage("label '%s' is not KEY=VALUE", optarg);
			a->nlabels++;
			break;
		case OPT_QUOTA:
			a->quota = optarg;
			break;
		case OPT_MOUNTS:
			a->mounts = true;
			break;
		case OPT_JSON:
			a->json = true;
			break;
		case OPT_KIND:
			a->kind = optarg;
			break;
		case OPT_PARENT:
			a->parent = optarg;
			break;
		case OPT_FILTER:
			a->filter = optarg;
			break;
		case 'h':
			fputs(snapshot_usage, stdout);
			return -1;
		default:
			return CLI_EXIT_USAGE;
		}
	}
	a->npos = argc - optind;
	a->pos = argv + optind;
	return 0;
}

static struct json_object *
info_json(const struct snap_info *info)
{
	char t[64];
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "key", json_object_new_string(info->key));
	json_object_object_add(o, "parent",
			       info->parent ? json_object_new_string(info->parent) : NULL);
	json_object_object_add(o, "kind", json_object_new_string(snap_kind_to_string(info->kind)));
	json_object_object_add(o, "id", json_object_new_uint64(info->id));
	json_object_object_add(o, "created",
			       json_object_new_string(sc_time_format(info->created, t, sizeof(t))));
	json_object_object_add(o, "updated",
			       json_object_new_string(sc_time_format(info->updated, t, sizeof(t))));
	json_object_object_add(
		o, "last_used",
		json_object_new_string(sc_time_format(info->last_used, t, sizeof(t))));
	if (info->kind == SNAP_KIND_COMMITTED) {
		json_object_object_add(o, "size", json_object_new_uint64(info->size));
		json_object_object_add(o, "inodes", json_object_new_uint64(info->inodes));
	}
	if (info->quota)
		json_object_object_add(o, "quota", json_object_new_uint64(info->quota));
	struct json_object *labels = json_object_new_object();
	for (size_t i = 0; i < info->nlabels; i++)
		json_object_object_add(labels, info->labels[i].key,
				       json_object_new_string(info->labels[i].value));
	json_object_object_add(o, "labels", labels);
	return o;
}

static struct json_object *
mounts_json(const struct snap_mounts *m)
{
	struct json_object *arr = json_object_new_array();
	for (size_t i = 0; i < m->n; i++) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "type", json_object_new_string(m->v[i].type));
		json_object_object_add(o, "source", json_object_new_string(m->v[i].source));
		struct json_object *opts = json_object_new_array();
		for (size_t j = 0; j < m->v[i].noptions; j++)
			json_object_array_add(opts, json_object_new_string(m->v[i].options[j]));
		json_object_object_add(o, "options", opts);
		json_object_array_add(arr, o);
	}
	return arr;
}

/* Prints mounts as mount(8) commands, like `ctr snapshots mounts`. */
static void
mounts_print(const struct snap_mounts *m, const char *target)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct snap_mount *mt = &m->v[i];
		bool bind = strcmp(mt->type, "bind") == 0;
		printf("mount -t %s %s %s -o ", bind ? "none" : mt->type, mt->source, target);
		for (size_t j = 0; j < mt->noptions; j++)
			printf("%s%s", j ? "," : "", mt->options[j]);
		putchar('\n');
	}
}

static int
show_mounts(struct snap_store *s, const char *key, const char *target, bool json)
{
	struct sc_err err = SC_ERR_INIT;
	struct snap_mounts m = {0};
	if (snap_snapshot_mounts(s, key, &m, &err) < 0)
		return cli_fail(&err, NULL);
	if (json)
		cli_json_print(mounts_json(&m));
	else
		mounts_print(&m, target);
	snap_mounts_clear(&m);
	return CLI_EXIT_OK;
}

static int
cmd_prepare(struct snap_store *s, struct snap_args *a, enum snap_kind kind)
{
	const char *verb = kind == SNAP_KIND_VIEW ? "view" : "prepare";
	if (kind == SNAP_KIND_VIEW ? a->npos != 2 : (a->npos < 1 || a->npos > 2))
		return cli_usage("%s takes KEY %s", verb,
				 kind == SNAP_KIND_VIEW ? "PARENT" : "[PARENT]");
	struct snap_prepare_opts opts = {.labels = a->labels, .nlabels = a->nlabels};
	if (a->quota && (sc_size_parse(a->quota, &opts.quota) < 0 || opts.quota == 0))
		return cli_usage("quota '%s' is not a size above 0 (e.g. 10GB, 512MiB)", a->quota);
	struct sc_err err = SC_ERR_INIT;
	if (snap_snapshot_prepare(s, a->pos[0], a->npos > 1 ? a->pos[1] : NULL, kind, &opts, NULL,
				  &err) < 0)
		return cli_fail(&err, NULL);
	if (a->mounts || a->json)
		return show_mounts(s, a->pos[0], "<target>", a->json);
	return CLI_EXIT_OK;
}

static int
cmd_commit(struct snap_store *s, struct snap_args *a)
{
	if (a->npos != 2)
		return cli_usage("commit takes NAME KEY");
	struct sc_err err = SC_ERR_INIT;
	if (snap_snapshot_commit(s, a->pos[0], a->pos[1], a->labels, a->nlabels, &err) < 0)
		return cli_fail(&err, NULL);
	return CLI_EXIT_OK;
}

static int
cmd_rm(struct snap_store *s, struct snap_args *a)
{
	if (a->npos < 1)
		return cli_usage("rm takes KEY...");
	int rc = CLI_EXIT_OK;
	for (int i = 0; i < a->npos; i++) {
		struct sc_err err = SC_ERR_INIT;
		if (snap_snapshot_remove(s, a->pos[i], &err) < 0)
			rc = cli_fail(&err, NULL);
	}
	return rc;
}

struct ls_state {
	struct cli_table *table;
	struct json_object *json;
};

static int
ls_visit(const struct snap_info *info, void *arg)
{
	struct ls_state *st = arg;
	if (st->json) {
		json_object_array_add(st->json, info_json(info));
		return 0;
	}
	char size[32] = "", age[32];
	if (info->kind == SNAP_KIND_COMMITTED)
		sc_size_format(info->size, size, sizeof(size));
	const char *cells[] = {info->key, info->parent ? info->parent : "",
			       snap_kind_to_string(info->kind), size,
			       sc_age_format(info->last_used, sc_now_ns(), age, sizeof(age))};
	cli_table_row(st->table, cells);
	return 0;
}

static int
cmd_ls(struct snap_store *s, struct snap_args *a)
{
	if (a->npos != 0)
		return cli_usage("ls takes no arguments; filter with --kind, --parent, --filter");
	struct snap_filter f = {.kind = -1, .parent = a->parent};
	if (a->kind) {
		f.kind = snap_kind_from_string(a->kind);
		if (f.kind < 0)
			return cli_usage("kind '%s' is not active, view or committed", a->kind);
	}
	if (a->filter) {
		if (strncmp(a->filter, "label=", 6) != 0 || !a->filter[6])
			return cli_usage("filter '%s' is not label=KEY[=VALUE]", a->filter);
		f.label = a->filter + 6;
	}
	struct ls_state st = {0};
	static const char *const headers[] = {"KEY", "PARENT", "KIND", "SIZE", "LAST USED"};
	if (a->json)
		st.json = json_object_new_array();
	else
		st.table = cli_table_new(5, headers);
	struct sc_err err = SC_ERR_INIT;
	int r = snap_snapshot_walk(s, &f, ls_visit, &st, &err);
	if (r < 0) {
		json_object_put(st.json);
		cli_table_free(st.table);
		return cli_fail(&err, "ls");
	}
	if (st.json)
		cli_json_print(st.json);
	cli_table_print(st.table, stdout);
	cli_table_free(st.table);
	return CLI_EXIT_OK;
}

static int
cmd_info(struct snap_store *s, struct snap_args *a)
{
	if (a->npos != 1)
		return cli_usage("info takes KEY");
	struct sc_err err = SC_ERR_INIT;
	struct snap_info info = {0};
	if (snap_snapshot_stat(s, a->pos[0], &info, &err) < 0)
		return cli_fail(&err, NULL);
	struct json_object *o = info_json(&info);
	uint64_t used;
	if (info.quota && info.kind == SNAP_KIND_ACTIVE) {
		/* What the quota counts: the snapshot's own data. */
		if (snap_snapshot_quota(s, a->pos[0], NULL, &used, &err) >= 0)
			json_object_object_add(o, "quota_used", json_object_new_uint64(used));
		sc_err_clear(&err);
	}
	cli_json_print(o);
	snap_info_clear(&info);
	return CLI_EXIT_OK;
}

static int
cmd_mounts(struct snap_store *s, struct snap_args *a)
{
	if (a->npos < 1 || a->npos > 2)
		return cli_usage("mounts takes [TARGET] KEY");
	const char *target = a->npos == 2 ? a->pos[0] : "<target>";
	return show_mounts(s, a->pos[a->npos - 1], target, a->json);
}

static int
cmd_mount(struct snap_store *s, struct snap_args *a)
{
	if (a->npos != 2)
		return cli_usage("mount takes KEY DIR");
	struct sc_err err = SC_ERR_INIT;
	struct snap_mounts m = {0};
	struct stat st;
	if (stat(a->pos[1], &st) < 0 || !S_ISDIR(st.st_mode))
		return cli_error("mount '%s': '%s' is not a folder; create it first", a->pos[0],
				 a->pos[1]);
	if (snap_snapshot_mounts(s, a->pos[0], &m, &err) < 0)
		return cli_fail(&err, NULL);
	int r = snap_mounts_apply(&m, a->pos[1], &err);
	snap_mounts_clear(&m);
	if (r < 0)
		return cli_fail(&err, "mount '%s'", a->pos[0]);
	return CLI_EXIT_OK;
}

static int
cmd_umount(struct snap_args *a)
{
	if (a->npos != 1)
		return cli_usage("umount takes DIR");
	struct sc_err err = SC_ERR_INIT;
	if (snap_mount_remove(a->pos[0], &err) < 0)
		return cli_fail(&err, "umount");
	return CLI_EXIT_OK;
}

static int
cmd_label(struct snap_store *s, struct snap_args *a)
{
	if (a->npos < 1)
		return cli_usage("label takes KEY [K=V]...");
	struct snap_label labels[MAX_LABEL_ARGS];
	size_t n = 0;
	int rc = CLI_EXIT_OK;
	for (int i = 1; i < a->npos; i++) {
		if (n == MAX_LABEL_ARGS) {
			rc = cli_usage("at most %d labels", MAX_LABEL_ARGS);
			break;
		}
		if (parse_label(a->pos[i], &labels[n]) < 0) {
			rc = cli_usage("label '%s' is not KEY=VALUE (KEY= removes it)", a->pos[i]);
			break;
		}
		n++;
	}
	struct sc_err err = SC_ERR_INIT;
	struct snap_info info = {0};
	if (rc == CLI_EXIT_OK) {
		int r = n ? snap_snapshot_label(s, a->pos[0], labels, n, &info, &err)
			  : snap_snapshot_stat(s, a->pos[0], &info, &err);
		if (r < 0)
			rc = cli_fail(&err, "label '%s'", a->pos[0]);
	}
	if (rc == CLI_EXIT_OK) {
		if (a->json) {
			struct json_object *o = json_object_new_object();
			for (size_t i = 0; i < info.nlabels; i++)
				json_object_object_add(
					o, info.labels[i].key,
					json_object_new_string(info.labels[i].value));
			cli_json_print(o);
		} else {
			for (size_t i = 0; i < info.nlabels; i++)
				printf("%s=%s\n", info.labels[i].key, info.labels[i].value);
		}
	}
	snap_info_clear(&info);
	for (size_t i = 0; i < n; i++)
		free(labels[i].key);
	return rc;
}

struct usage_state {
	struct snap_store *s;
	struct cli_table *table;
	struct json_object *json;
	int rc;
};

static void
usage_one(struct usage_state *st, const char *key)
{
	struct sc_err err = SC_ERR_INIT;
	uint64_t bytes, inodes;
	if (snap_snapshot_usage(st->s, key, &bytes, &inodes, &err) < 0) {
		st->rc = cli_fail(&err, "usage");
		return;
	}
	if (st->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "key", json_object_new_string(key));
		json_object_object_add(o, "size", json_object_new_uint64(bytes));
		json_object_object_add(o, "inodes", json_object_new_uint64(inodes));
		json_object_array_add(st->json, o);
		return;
	}
	char size[32], in[32];
	snprintf(in, sizeof(in), "%" PRIu64, inodes);
	const char *cells[] = {key, sc_size_format(bytes, size, sizeof(size)), in};
	cli_table_row(st->table, cells);
}

static int
usage_visit(const struct snap_info *info, void *arg)
{
	usage_one(arg, info->key);
	return 0;
}

static int
cmd_usage(struct snap_store *s, struct snap_args *a)
{
	static const char *const headers[] = {"KEY", "SIZE", "INODES"};
	struct usage_state st = {.s = s};
	if (a->json)
		st.json = json_object_new_array();
	else
		st.table = cli_table_new(3, headers);
	if (a->npos == 0) {
		struct sc_err err = SC_ERR_INIT;
		if (snap_snapshot_walk(s, NULL, usage_visit, &st, &err) < 0)
			st.rc = cli_fail(&err, "usage");
	}
	for (int i = 0; i < a->npos; i++)
		usage_one(&st, a->pos[i]);
	if (st.json)
		cli_json_print(st.json);
	cli_table_print(st.table, stdout);
	cli_table_free(st.table);
	return st.rc;
}

int
cli_cmd_snapshot(struct cli_ctx *ctx, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(snapshot_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	const char *verb = argv[1];
	struct snap_args a = {0};
	int r = parse_args(argc - 1, argv + 1, &a);
	if (r != 0) {
		snap_args_free(&a);
		return r < 0 ? CLI_EXIT_OK : r;
	}
	static const char *const verbs[] = {"prepare", "view",	  "commit", "rm",     "remove",
					    "ls",      "list",	  "info",   "mounts", "mount",
					    "umount",  "unmount", "label",  "usage"};
	bool known = false;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		known |= strcmp(verb, verbs[i]) == 0;
	if (!known) {
		snap_args_free(&a);
		return cli_usage("unknown snapshot command '%s'", verb);
	}
	if (strcmp(verb, "umount") == 0 || strcmp(verb, "unmount") == 0) {
		r = cmd_umount(&a);
		snap_args_free(&a);
		return r;
	}
	struct snap_store *s = cli_store(ctx);
	if (!s) {
		snap_args_free(&a);
		return CLI_EXIT_FAILURE;
	}
	if (strcmp(verb, "prepare") == 0)
		r = cmd_prepare(s, &a, SNAP_KIND_ACTIVE);
	else if (strcmp(verb, "view") == 0)
		r = cmd_prepare(s, &a, SNAP_KIND_VIEW);
	else if (strcmp(verb, "commit") == 0) {
		r = cmd_commit(s, &a);
		if (r == CLI_EXIT_OK)
			cli_auto_gc(ctx); /* a commit adds data: collect if over a threshold */
	} else if (strcmp(verb, "rm") == 0 || strcmp(verb, "remove") == 0)
		r = cmd_rm(s, &a);
	else if (strcmp(verb, "ls") == 0 || strcmp(verb, "list") == 0)
		r = cmd_ls(s, &a);
	else if (strcmp(verb, "info") == 0)
		r = cmd_info(s, &a);
	else if (strcmp(verb, "mounts") == 0)
		r = cmd_mounts(s, &a);
	else if (strcmp(verb, "mount") == 0)
		r = cmd_mount(s, &a);
	else if (strcmp(verb, "label") == 0)
		r = cmd_label(s, &a);
	else
		r = cmd_usage(s, &a);
	snap_args_free(&a);
	return r;
}
