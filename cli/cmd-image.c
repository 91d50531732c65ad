/*
 * snapctl image: import, export, create, list, inspect, tag and remove
 * images. rm drops only the name; the collector frees what it held.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "content.h"
#include "image.h"
#include "util.h"

static const char image_usage[] =
	"Usage: snapctl image COMMAND ...\n"
	"\n"
	"  import PATH [--name REF] [--platform OS/ARCH[/VARIANT]]\n"
	"         [--max-entries N] [--max-size SIZE]\n"
	"                        an OCI layout (folder or tar) or a docker save archive\n"
	"  export REF -o type=oci|docker|tar|local,dest=PATH[,tar=false][,oci-mediatypes=false]\n"
	"  create NAME SNAPSHOT [--compression gzip|zstd|uncompressed] [--level N]\n"
	"         [--oci-mediatypes=false]\n"
	"                        an image from a committed snapshot and its parents\n"
	"  ls [--json]           images: name, digest, platform, size\n"
	"  inspect REF           record, manifest and config, as JSON\n"
	"  tag SRC DST           a second name for SRC\n"
	"  rm NAME...            drop names (the collector frees the data)\n";

enum {
	OPT_NAME = 0x100,
	OPT_PLATFORM,
	OPT_MAX_ENTRIES,
	OPT_MAX_SIZE,
	OPT_JSON,
	OPT_COMPRESSION,
	OPT_LEVEL,
	OPT_OCI_MT,
};

struct image_args {
	const char *name, *platform, *output, *compression, *level, *max_entries, *max_size;
	const char *oci_mt;
	bool json;
	int npos;
	char **pos;
};

static int
parse_args(int argc, char **argv, struct image_args *a)
{
	static const struct option opts[] = {
		{"name", required_argument, NULL, OPT_NAME},
		{"platform", required_argument, NULL, OPT_PLATFORM},
		{"max-entries", required_argument, NULL, OPT_MAX_ENTRIES},
		{"max-size", required_argument, NULL, OPT_MAX_SIZE},
		{"json", no_argument, NULL, OPT_JSON},
		{"compression", required_argument, NULL, OPT_COMPRESSION},
		{"level", required_argument, NULL, OPT_LEVEL},
		{"oci-mediatypes", required_argument, NULL, OPT_OCI_MT},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
		switch (c) {
		case OPT_NAME:
			a->name = optarg;
			break;
		case OPT_PLATFORM:
			a->platform = optarg;
			break;
		case OPT_MAX_ENTRIES:
			a->max_entries = optarg;
			break;
		case OPT_MAX_SIZE:
			a->max_size = optarg;
			break;
		case OPT_JSON:
			a->json = true;
			break;
		case OPT_COMPRESSION:
			a->compression = optarg;
			break;
		case OPT_LEVEL:
			a->level = optarg;
			break;
		case OPT_OCI_MT:
			a->oci_mt = optarg;
			break;
		case 'o':
			a->output = optarg;
			break;
		case 'h':
			fputs(image_usage, stdout);
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
info_json(const struct snap_image_info *i)
{
	char t[64];
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(i->name));
	json_object_object_add(o, "digest", json_object_new_string(i->target));
	json_object_object_add(o, "media_type", json_object_new_string(i->target_media_type));
	json_object_object_add(o, "manifest", json_object_new_string(i->manifest));
	json_object_object_add(o, "config", json_object_new_string(i->config));
	json_object_object_add(o, "platform", json_object_new_string(i->platform));
	json_object_object_add(o, "snapshot", json_object_new_string(i->snapshot));
	json_object_object_add(o, "layers", json_object_new_int((int)i->nlayers));
	json_object_object_add(o, "size", json_object_new_uint64(i->size));
	json_object_object_add(o, "created",
			       json_object_new_string(sc_time_format(i->created, t, sizeof(t))));
	json_object_object_add(o, "updated",
			       json_object_new_string(sc_time_format(i->updated, t, sizeof(t))));
	return o;
}

/* Parses the per-layer limits given on the command line (0 = default). */
static int
parse_limits(const struct image_args *a, struct snap_layer_limits *ret)
{
	if (a->max_entries) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(a->max_entries, &end, 10);
		if (errno || *end || v == 0)
			return cli_usage("--max-entries '%s' is not a positive number",
					 a->max_entries);
		ret->max_entries = v;
	}
	if (a->max_size && (sc_size_parse(a->max_size, &ret->max_bytes) < 0 || !ret->max_bytes))
		return cli_usage("--max-size '%s' is not a size (e.g. 10GB)", a->max_size);
	return 0;
}

static int
cmd_import(struct snap_store *s, const struct image_args *a)
{
	if (a->npos != 1)
		return cli_usage("import takes PATH");
	struct snap_image_import_opts o = {.name = a->name, .platform = a->platform};
	int r = parse_limits(a, &o.limits);
	if (r)
		return r;
	struct sc_err err = SC_ERR_INIT;
	struct snap_image_info info = {0};
	if (snap_image_import(s, a->pos[0], &o, &info, &err) < 0)
		return cli_fail(&err, NULL);
	if (!a->name && strcmp(info.name, info.config) == 0)
		fprintf(stderr,
			"snapctl: the archive names no image: imported as its id %s; name it "
			"with 'snapctl image tag %s NAME'\n",
			info.name, info.name);
	if (info.moved_from[0])
		fprintf(stderr, "snapctl: moved '%s' from %s to %s\n", info.name, info.moved_from,
			info.target);
	if (a->json)
		cli_json_print(info_json(&info));
	else
		printf("%s %s\n", info.name, info.target);
	snap_image_info_clear(&info);
	return CLI_EXIT_OK;
}

static int
cmd_export(struct snap_store *s, const struct image_args *a)
{
	if (a->npos != 1 || !a->output)
		return cli_usage("export takes REF -o type=...,dest=PATH");
	struct sc_err err = SC_ERR_INIT;
	struct snap_image_export_opts o;
	if (snap_image_export_opts_parse(a->output, &o, &err) < 0)
		return cli_usage("%s", sc_err_msg(&err));
	if (snap_image_export(s, a->pos[0], &o, &err) < 0)
		return cli_fail(&err, NULL);
	return CLI_EXIT_OK;
}

static int
cmd_create(struct snap_store *s, const struct image_args *a)
{
	if (a->npos != 2)
		return cli_usage("create takes NAME SNAPSHOT");
	struct snap_layer_diff_opts o;
	snap_layer_diff_opts_init(&o);
	if (a->compression) {
		int c = snap_compression_from_string(a->compression);
		if (c < 0)
			return cli_usage("compression '%s' is not gzip, zstd or uncompressed",
					 a->compression);
		o.compression = c;
	}
	if (a->level) {
		char *end;
		long v = strtol(a->level, &end, 10);
		if (*end || v < 0 || v > 19)
			return cli_usage("level '%s' is not 0-19", a->level);
		o.level = (int)v;
	}
	if (a->oci_mt) {
		if (strcmp(a->oci_mt, "false") != 0 && strcmp(a->oci_mt, "true") != 0)
			return cli_usage("--oci-mediatypes takes true or false");
		o.oci_media_types = strcmp(a->oci_mt, "true") == 0;
	}
	struct sc_err err = SC_ERR_INIT;
	struct snap_image_info info = {0};
	if (snap_image_create(s, a->pos[0], a->pos[1], &o, &info, &err) < 0)
		return cli_fail(&err, NULL);
	if (a->json)
		cli_json_print(info_json(&info));
	else
		printf("%s %s\n", info.name, info.target);
	snap_image_info_clear(&info);
	return CLI_EXIT_OK;
}

struct ls_state {
	struct cli_table *table;
	struct json_object *json;
};

static int
ls_visit(const struct snap_image_info *i, void *arg)
{
	struct ls_state *st = arg;
	if (st->json) {
		json_object_array_add(st->json, info_json(i));
		return 0;
	}
	char size[32], age[32], digest[20];
	snprintf(digest, sizeof(digest), "%.19s", i->target);
	const char *cells[] = {i->name, digest, i->platform,
			       sc_size_format(i->size, size, sizeof(size)),
			       sc_age_format(i->created, sc_now_ns(), age, sizeof(age))};
	cli_table_row(st->table, cells);
	return 0;
}

static int
cmd_ls(struct snap_store *s, const struct image_args *a)
{
	if (a->npos != 0)
		return cli_usage("image ls takes no arguments");
	static const char *const headers[] = {"NAME", "DIGEST", "PLATFORM", "SIZE", "CREATED"};
	struct ls_state st = {0};
	if (a->json)
		st.json = json_object_new_array();
	else
		st.table = cli_table_new(5, headers);
	struct sc_err err = SC_ERR_INIT;
	if (snap_image_walk(s, ls_visit, &st, &err) < 0) {
		json_object_put(st.json);
		cli_table_free(st.table);
		return cli_fail(&err, "image ls");
	}
	if (st.json)
		cli_json_print(st.json);
	cli_table_print(st.table, stdout);
	cli_table_free(st.table);
	return CLI_EXIT_OK;
}

static struct json_object *
blob_json(struct snap_store *s, const char *digest)
{
	char *buf = NULL;
	size_t len = 0;
	if (snap_content_read_all(s, digest, SNAP_IMAGE_CONFIG_MAX, &buf, &len, NULL) < 0)
		return NULL;
	struct json_object *o = json_tokener_parse(buf);
	free(buf);
	return o;
}

static int
cmd_inspect(struct snap_store *s, const struct image_args *a)
{
	if (a->npos != 1)
		return cli_usage("inspect takes REF");
	struct sc_err err = SC_ERR_INIT;
	struct snap_image_info info = {0};
	if (snap_image_get(s, a->pos[0], &info, &err) < 0)
		return cli_fail(&err, NULL);
	struct json_object *o = info_json(&info);
	json_object_object_add(o, "manifest_json", blob_json(s, info.manifest));
	json_object_object_add(o, "config_json", blob_json(s, info.config));
	cli_json_print(o);
	snap_image_info_clear(&info);
	return CLI_EXIT_OK;
}

int
cli_cmd_image(struct cli_ctx *ctx, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(image_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	const char *verb = argv[1];
	static const char *const verbs[] = {"import",  "export", "create", "ls",    "list",
					    "inspect", "tag",	 "rm",	   "remove"};
	bool known = false;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		known |= strcmp(verb, verbs[i]) == 0;
	if (!known)
		return cli_usage("unknown image command '%s'", verb);
	struct image_args a = {0};
	int r = parse_args(argc - 1, argv + 1, &a);
	if (r != 0)
		return r < 0 ? CLI_EXIT_OK : r;
	if (strcmp(verb, "tag") == 0 && a.npos != 2)
		return cli_usage("tag takes SRC DST");
	if ((strcmp(verb, "rm") == 0 || strcmp(verb, "remove") == 0) && a.npos < 1)
		return cli_usage("rm takes NAME...");
	struct snap_store *s = cli_store(ctx);
	if (!s)
		return CLI_EXIT_FAILURE;
	if (strcmp(verb, "import") == 0) {
		int rc = cmd_import(s, &a);
		if (rc == CLI_EXIT_OK)
			cli_auto_gc(ctx); /* an import adds data: collect if over a threshold */
		return rc;
	}
	if (strcmp(verb, "export") == 0)
		return cmd_export(s, &a);
	if (strcmp(verb, "create") == 0)
		return cmd_create(s, &a);
	if (strcmp(verb, "ls") == 0 || strcmp(verb, "list") == 0)
		return cmd_ls(s, &a);
	if (strcmp(verb, "inspect") == 0)
		return cmd_inspect(s, &a);
	struct sc_err err = SC_ERR_INIT;
	if (strcmp(verb, "tag") == 0)
		return snap_image_tag(s, a.pos[0], a.pos[1], &err) < 0 ? cli_fail(&err, NULL)
								       : CLI_EXIT_OK;
	int rc = CLI_EXIT_OK;
	for (int i = 0; i < a.npos; i++) {
		sc_err_clear(&err);
		if (snap_image_remove(s, a.pos[i], &err) < 0)
			rc = cli_fail(&err, "image rm");
	}
	return rc;
}
