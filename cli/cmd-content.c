/*
 * snapctl content: the blobs in the content store. ls and info print
 * records, cat writes a blob's bytes to stdout, rm removes blobs (the
 * collector normally does that; rm is for repairs).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "cli.h"
#include "content.h"
#include "util.h"

static const char content_usage[] =
	"Usage: snapctl content COMMAND ...\n"
	"\n"
	"  ls [--json]            every blob: digest, size, media type\n"
	"  info DIGEST            one blob's record, as JSON\n"
	"  cat DIGEST             the blob's bytes, to stdout\n"
	"  rm DIGEST...           remove blobs (images using them break; prefer snapctl prune)\n";

static struct json_object *
blob_json(const struct snap_blob_info *b)
{
	char t[64];
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "digest", json_object_new_string(b->digest));
	json_object_object_add(o, "size", json_object_new_uint64(b->size));
	json_object_object_add(o, "media_type", json_object_new_string(b->media_type));
	json_object_object_add(o, "created",
			       json_object_new_string(sc_time_format(b->created, t, sizeof(t))));
	json_object_object_add(o, "last_used",
			       json_object_new_string(sc_time_format(b->last_used, t, sizeof(t))));
	struct json_object *labels = json_object_new_object();
	for (size_t i = 0; i < b->nlabels; i++)
		json_object_object_add(labels, b->labels[i].key,
				       json_object_new_string(b->labels[i].value));
	json_object_object_add(o, "labels", labels);
	return o;
}

struct ls_state {
	struct cli_table *table;
	struct json_object *json;
};

static int
ls_visit(const struct snap_blob_info *b, void *arg)
{
	struct ls_state *st = arg;
	if (st->json) {
		json_object_array_add(st->json, blob_json(b));
		return 0;
	}
	char size[32], age[32];
	const char *cells[] = {b->digest, sc_size_format(b->size, size, sizeof(size)),
			       b->media_type[0] ? b->media_type : "-",
			       sc_age_format(b->created, sc_now_ns(), age, sizeof(age))};
	cli_table_row(st->table, cells);
	return 0;
}

static int
cmd_ls(struct snap_store *s, bool json)
{
	static const char *const headers[] = {"DIGEST", "SIZE", "MEDIA TYPE", "CREATED"};
	struct ls_state st = {0};
	if (json)
		st.json = json_object_new_array();
	else
		st.table = cli_table_new(4, headers);
	struct sc_err err = SC_ERR_INIT;
	if (snap_content_walk(s, ls_visit, &st, &err) < 0) {
		json_object_put(st.json);
		cli_table_free(st.table);
		return cli_fail(&err, "content ls");
	}
	if (st.json)
		cli_json_print(st.json);
	cli_table_print(st.table, stdout);
	cli_table_free(st.table);
	return CLI_EXIT_OK;
}

static int
cmd_cat(struct snap_store *s, const char *digest)
{
	struct sc_err err = SC_ERR_INIT;
	_cleanup_close_ int fd = -EBADF;
	uint64_t size = 0;
	if (snap_content_open(s, digest, &fd, &size, &err) < 0)
		return cli_fail(&err, "content cat");
	char buf[1 << 16];
	for (;;) {
		ssize_t n = SC_RETRY_EINTR(read(fd, buf, sizeof(buf)));
		if (n < 0)
			return cli_error("content cat %s: cannot read: %s", digest,
					 strerror(errno));
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = SC_RETRY_EINTR(write(1, buf + off, (size_t)(n - off)));
			if (w < 0)
				return cli_error("content cat %s: cannot write: %s", digest,
						 strerror(errno));
			off += w;
		}
	}
	return CLI_EXIT_OK;
}

int
cli_cmd_content(struct cli_ctx *ctx, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(content_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	const char *verb = argv[1];
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	bool json = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else if (c == 'h') {
			fputs(content_usage, stdout);
			return CLI_EXIT_OK;
		} else
			return CLI_EXIT_USAGE;
	}
	int npos = argc - 1 - optind;
	char **pos = argv + 1 + optind;
	bool ls = strcmp(verb, "ls") == 0 || strcmp(verb, "list") == 0;
	bool info = strcmp(verb, "info") == 0, cat = strcmp(verb, "cat") == 0;
	bool rm = strcmp(verb, "rm") == 0 || strcmp(verb, "remove") == 0;
	if (!ls && !info && !cat && !rm)
		return cli_usage("unknown content command '%s'", verb);
	if (ls && npos != 0)
		return cli_usage("content ls takes no arguments");
	if ((info || cat) && npos != 1)
		return cli_usage("content %s takes DIGEST", verb);
	if (rm && npos < 1)
		return cli_usage("content rm takes DIGEST...");
	struct snap_store *s = cli_store(ctx);
	if (!s)
		return CLI_EXIT_FAILURE;
	if (ls)
		return cmd_ls(s, json);
	if (cat)
		return cmd_cat(s, pos[0]);
	if (info) {
		struct sc_err err = SC_ERR_INIT;
		struct snap_blob_info b = {0};
		if (snap_content_stat(s, pos[0], &b, &err) < 0)
			return cli_fail(&err, "content info");
		cli_json_print(blob_json(&b));
		snap_blob_info_clear(&b);
		return CLI_EXIT_OK;
	}
	int rc = CLI_EXIT_OK;
	for (int i = 0; i < npos; i++) {
		struct sc_err err = SC_ERR_INIT;
		if (snap_content_remove(s, pos[i], &err) < 0)
			rc = cli_fail(&err, "content rm");
	}
	return rc;
}
