/*
 * snapctl layer: a snapshot's changes as a layer blob (diff), and a layer
 * file made into a committed snapshot (apply).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "layer.h"
#include "util.h"

static const char layer_usage[] =
	"Usage: snapctl layer COMMAND ...\n"
	"\n"
	"  diff KEY [--compression gzip|zstd|uncompressed] [--level N] [--json]\n"
	"                        KEY's changes against its parent, into the content store\n"
	"  apply FILE NAME [--parent KEY] [--max-entries N] [--max-size SIZE] [--max-path N]\n"
	"        [--json]        a layer (tar, tar.gz, tar.zst; '-' for stdin) as snapshot NAME\n";

enum {
	OPT_COMPRESSION = 0x100,
	OPT_LEVEL,
	OPT_JSON,
	OPT_PARENT,
	OPT_MAX_ENTRIES,
	OPT_MAX_SIZE,
	OPT_MAX_PATH,
};

static int
parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v == 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

int
cli_cmd_layer(struct cli_ctx *ctx, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(layer_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	const char *verb = argv[1];
	bool diff = strcmp(verb, "diff") == 0, apply = strcmp(verb, "apply") == 0;
	if (!diff && !apply)
		return cli_usage("unknown layer command '%s'", verb);
	static const struct option opts[] = {
		{"compression", required_argument, NULL, OPT_COMPRESSION},
		{"level", required_argument, NULL, OPT_LEVEL},
		{"json", no_argument, NULL, OPT_JSON},
		{"parent", required_argument, NULL, OPT_PARENT},
		{"max-entries", required_argument, NULL, OPT_MAX_ENTRIES},
		{"max-size", required_argument, NULL, OPT_MAX_SIZE},
		{"max-path", required_argument, NULL, OPT_MAX_PATH},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct snap_layer_diff_opts dopts;
	snap_layer_diff_opts_init(&dopts);
	struct snap_layer_apply_opts aopts = {0};
	const char *parent = NULL;
	bool json = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_COMPRESSION: {
			int v = snap_compression_from_string(optarg);
			if (v < 0)
				return cli_usage(
					"compression '%s' is not gzip, zstd or uncompressed",
					optarg);
			dopts.compression = v;
			break;
		}
		case OPT_LEVEL: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 0 || v > 19)
				return cli_usage("level '%s' is not 0-19", optarg);
			dopts.level = (int)v;
			break;
		}
		case OPT_JSON:
			json = true;
			break;
		case OPT_PARENT:
			parent = optarg;
			break;
		case OPT_MAX_ENTRIES:
			if (parse_u64(optarg, &aopts.limits.max_entries) < 0)
				return cli_usage("--max-entries '%s' is not a positive number",
						 optarg);
			break;
		case OPT_MAX_SIZE:
			if (sc_size_parse(optarg, &aopts.limits.max_bytes) < 0)
				return cli_usage("--max-size '%s' is not a size", optarg);
			break;
		case OPT_MAX_PATH:
			if (parse_u64(optarg, &aopts.limits.max_path) < 0)
				return cli_usage("--max-path '%s' is not a positive number",
						 optarg);
			break;
		case 'h':
			fputs(layer_usage, stdout);
			return CLI_EXIT_OK;
		default:
			return CLI_EXIT_USAGE;
		}
	}
	int npos = argc - 1 - optind;
	char **pos = argv + 1 + optind;
	if (diff && npos != 1)
		return cli_usage("layer diff takes KEY");
	if (apply && npos != 2)
		return cli_usage("layer apply takes FILE NAME");
	struct snap_store *s = cli_store(ctx);
	if (!s)
		return CLI_EXIT_FAILURE;
	struct sc_err err = SC_ERR_INIT;
	struct json_object *o = json_object_new_object();
	if (diff) {
		struct snap_layer_desc d;
		if (snap_layer_diff(s, pos[0], &dopts, &d, &err) < 0) {
			json_object_put(o);
			return cli_fail(&err, NULL);
		}
		json_object_object_add(o, "digest", json_object_new_string(d.digest));
		json_object_object_add(o, "diff_id", json_object_new_string(d.diff_id));
		json_object_object_add(o, "size", json_object_new_uint64(d.size));
		json_object_object_add(o, "tar_size", json_object_new_uint64(d.tar_size));
		json_object_object_add(o, "entries", json_object_new_uint64(d.entries));
		json_object_object_add(o, "media_type", json_object_new_string(d.media_type));
		if (!json)
			printf("%s %s\n", d.digest, d.diff_id);
	} else {
		_cleanup_close_ int fd =
			strcmp(pos[0], "-") == 0 ? dup(0) : open(pos[0], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			json_object_put(o);
			return cli_error("layer apply: cannot open '%s': %s", pos[0],
					 strerror(errno));
		}
		struct snap_layer_apply_result res;
		if (snap_layer_apply(s, fd, parent, pos[1], &aopts, &res, &err) < 0) {
			json_object_put(o);
			return cli_fail(&err, "apply '%s'", pos[0]);
		}
		json_object_object_add(o, "snapshot", json_object_new_string(pos[1]));
		json_object_object_add(o, "diff_id", json_object_new_string(res.diff_id));
		json_object_object_add(
			o, "compression",
			json_object_new_string(snap_compression_to_string(res.compression)));
		json_object_object_add(o, "entries", json_object_new_uint64(res.entries));
		json_object_object_add(o, "bytes", json_object_new_uint64(res.bytes));
		if (!json)
			printf("%s %s\n", pos[1], res.diff_id);
	}
	if (json)
		cli_json_print(o);
	else
		json_object_put(o);
	return CLI_EXIT_OK;
}
