/*
 * snapctl build: a Dockerfile to an image, with docker build's and
 * buildctl's flags. Exit 0 on success, 1 on a failed build, 2 on bad
 * usage, 130/143 when interrupted by SIGINT/SIGTERM (the build is canceled
 * cleanly first: containers killed, mounts and work snapshots gone).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "build.h"
#include "cli.h"
#include "cleanup.h"
#include "gc.h"
#include "util.h"

#define BUILD_MAX_LIST 256 /* tags, build args, outputs, filters */

static const char build_usage[] =
	"Usage: snapctl build [OPTIONS] CONTEXT\n"
	"\n"
	"Builds the Dockerfile in CONTEXT (or -f FILE) against the store.\n"
	"\n"
	"  -f, --file FILE          the Dockerfile (default CONTEXT/Dockerfile; - reads stdin)\n"
	"  -t, --tag NAME           store the image under NAME (repeatable)\n"
	"      --target STAGE       build this stage (default: the last)\n"
	"      --build-arg K=V      set a build argument; K alone takes it from the environment\n"
	"  -o, --output SPEC        export: type=oci|docker|tar|local,dest=PATH[,name=REF]\n"
	"                           [,tar=false][,oci-mediatypes=false]; PATH alone is\n"
	"                           type=local; - is a rootfs tar on stdout (repeatable)\n"
	"      --no-cache           run every step\n"
	"      --no-cache-filter STAGE  run the steps of STAGE (repeatable)\n"
	"      --progress MODE      auto (a live view on a terminal), plain, json, quiet\n"
	"  -q, --quiet              --progress quiet: print only the image ID\n"
	"  -j, --jobs N             steps run at once (default: the number of CPUs)\n"
	"      --runtime NAME       runc (default) or crun\n"
	"      --network MODE       RUN's network: host (default) or none\n"
	"      --quota SIZE         limit what each RUN step may write (EDQUOT past it)\n"
	"      --platform P         target platform (default: this machine's)\n"
	"      --iidfile FILE       write the image's config digest to FILE\n"
	"      --metadata-file FILE write the build's result as JSON to FILE\n"
	"\n"
	"Without -t or -o the result stays in the build cache.\n";

enum {
	OPT_TARGET = 0x100,
	OPT_BUILD_ARG,
	OPT_NO_CACHE,
	OPT_NO_CACHE_FILTER,
	OPT_PROGRESS,
	OPT_RUNTIME,
	OPT_NETWORK,
	OPT_PLATFORM,
	OPT_IIDFILE,
	OPT_METADATA,
	OPT_QUOTA,
};

static atomic_bool canceled;
static volatile sig_atomic_t cancel_signal;

static void
on_signal(int sig)
{
	cancel_signal = sig;
	atomic_store(&canceled, true);
}

struct build_args {
	const char *tags[BUILD_MAX_LIST], *bargs[BUILD_MAX_LIST], *filters[BUILD_MAX_LIST];
	size_t ntags, nbargs, nfilters;
	struct bld_output outputs[BUILD_MAX_LIST];
	char *owned[BUILD_MAX_LIST * 3];
	size_t nowned, noutputs;
	const char *file, *target, *progress, *runtime, *network, *platform, *iidfile, *metadata;
	const char *quota;
	unsigned jobs;
	bool no_cache;
	const char *context;
};

static char *
own(struct build_args *a, char *s)
{
	if (!s)
		return NULL;
	if (a->nowned == ARRAY_SIZE(a->owned)) {
		free(s);
		return NULL;
	}
	a->owned[a->nowned++] = s;
	return s;
}

/* One -o value. */
static int
parse_output(struct build_args *a, const char *spec, struct sc_err *err)
{
	if (a->noutputs == BUILD_MAX_LIST)
		return sc_err_set(err, -E2BIG, "more than %d outputs", BUILD_MAX_LIST);
	struct bld_output *o = &a->outputs[a->noutputs];
	*o = (struct bld_output){0};
	if (strcmp(spec, "-") == 0) {
		o->opts = (struct snap_image_export_opts){
			.type = SNAP_EXPORT_TAR, .dest = "-", .tar = true, .oci_media_types = true};
		a->noutputs++;
		return 0;
	}
	if (!strchr(spec, '=')) {
		o->opts = (struct snap_image_export_opts){
			.type = SNAP_EXPORT_LOCAL, .dest = spec, .oci_media_types = true};
		a->noutputs++;
		return 0;
	}
	/* name= is ours (docker's RepoTags); the rest is the image exporter's syntax. */
	char *rest = own(a, strdup(spec));
	if (!rest)
		return sc_err_set(err, -ENOMEM, "out of memory");
	char *p = strstr(rest, "name=");
	while (p && p != rest && p[-1] != ',')
		p = strstr(p + 1, "name=");
	if (p) {
		size_t len = strcspn(p + 5, ",");
		o->name = own(a, strndup(p + 5, len));
		memmove(p, p + 5 + len + (p[5 + len] == ','), strlen(p + 5 + len) + 1);
		size_t l = strlen(rest);
		if (l && rest[l - 1] == ',')
			rest[l - 1] = '\0';
	}
	int r = snap_image_export_opts_parse(rest, &o->opts, err);
	if (r < 0)
		return sc_err_prefix(err, r, "-o '%s'", spec);
	/* The parser's strings live only until its next call. */
	o->opts.dest = own(a, strdup(o->opts.dest));
	if (!o->opts.dest)
		return sc_err_set(err, -ENOMEM, "out of memory");
	a->noutputs++;
	return 0;
}

static int
parse_args(int argc, char **argv, struct build_args *a, struct sc_err *err)
{
	static const struct option opts[] = {
		{"file", required_argument, NULL, 'f'},
		{"tag", required_argument, NULL, 't'},
		{"output", required_argument, NULL, 'o'},
		{"jobs", required_argument, NULL, 'j'},
		{"target", required_argument, NULL, OPT_TARGET},
		{"build-arg", required_argument, NULL, OPT_BUILD_ARG},
		{"no-cache", no_argument, NULL, OPT_NO_CACHE},
		{"no-cache-filter", required_argument, NULL, OPT_NO_CACHE_FILTER},
		{"progress", required_argument, NULL, OPT_PROGRESS},
		{"runtime", required_argument, NULL, OPT_RUNTIME},
		{"network", required_argument, NULL, OPT_NETWORK},
		{"platform", required_argument, NULL, OPT_PLATFORM},
		{"iidfile", required_argument, NULL, OPT_IIDFILE},
		{"metadata-file", required_argument, NULL, OPT_METADATA},
		{"quota", required_argument, NULL, OPT_QUOTA},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "+f:t:o:j:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			a->file = optarg;
			break;
		case 't':
			if (a->ntags == BUILD_MAX_LIST)
				return sc_err_set(err, -E2BIG, "more than %d tags", BUILD_MAX_LIST);
			a->tags[a->ntags++] = optarg;
			break;
		case 'o': {
			int r = parse_output(a, optarg, err);
			if (r < 0)
				return r;
			break;
		}
		case 'j': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || n < 1 || n > 64)
				return sc_err_set(err, -EINVAL,
						  "-j '%s' is not a number from 1 to 64", optarg);
			a->jobs = (unsigned)n;
			break;
		}
		case OPT_TARGET:
			a->target = optarg;
			break;
		case OPT_BUILD_ARG: {
			if (a->nbargs == BUILD_MAX_LIST)
				return sc_err_set(err, -E2BIG, "more than %d build arguments",
						  BUILD_MAX_LIST);
			const char *v = optarg;
			if (!strchr(v, '=')) {
				/* docker build: K alone takes K's value from the environment */
				const char *env = getenv(v);
				if (!env)
					break;
				char *kv = NULL;
				if (asprintf(&kv, "%s=%s", v, env) < 0 || !own(a, kv))
					return sc_err_set(err, -ENOMEM, "out of memory");
				v = kv;
			}
			if (v[0] == '=')
				return sc_err_set(err, -EINVAL, "--build-arg '%s' has no name",
						  optarg);
			a->bargs[a->nbargs++] = v;
			break;
		}
		case OPT_NO_CACHE:
			a->no_cache = true;
			break;
		case OPT_NO_CACHE_FILTER:
			if (a->nfilters == BUILD_MAX_LIST)
				return sc_err_set(err, -E2BIG, "too many --no-cache-filter");
			a->filters[a->nfilters++] = optarg;
			break;
		case OPT_PROGRESS:
			a->progress = optarg;
			break;
		case OPT_RUNTIME:
			a->runtime = optarg;
			break;
		case OPT_NETWORK:
			a->network = optarg;
			break;
		case OPT_PLATFORM:
			a->platform = optarg;
			break;
		case OPT_IIDFILE:
			a->iidfile = optarg;
			break;
		case OPT_METADATA:
			a->metadata = optarg;
			break;
		case OPT_QUOTA:
			a->quota = optarg;
			break;
		case 'q':
			a->progress = "quiet";
			break;
		case 'h':
			return 1;
		default:
			return sc_err_set(err, -EINVAL,
					  "unknown option (see 'snapctl build --help')");
		}
	}
	if (optind + 1 != argc)
		return sc_err_set(err, -EINVAL,
				  optind >= argc ? "build needs a CONTEXT folder"
						 : "build takes one CONTEXT");
	a->context = argv[optind];
	return 0;
}

/* -f -: the Dockerfile from stdin, bounded like a file. */
static int
read_stdin(char **ret, size_t *ret_len, struct sc_err *err)
{
	struct sc_buf b = {0};
	char chunk[65536];
	for (;;) {
		ssize_t n = read(0, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sc_buf_free(&b);
			return sc_err_setsys(err, -errno, "cannot read the Dockerfile from stdin");
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > (4u << 20)) {
			sc_buf_free(&b);
			return sc_err_set(err, -EFBIG, "Dockerfile on stdin is over 4 MiB");
		}
		if (sc_buf_put(&b, chunk, (size_t)n) < 0) {
			sc_buf_free(&b);
			return sc_err_set(err, -ENOMEM, "out of memory");
		}
	}
	*ret = (char *)b.data;
	*ret_len = b.len;
	return 0;
}

static int
write_text(const char *path, const char *text, const char *what)
{
	int r = sc_write_file_atomic(path, text, strlen(text), 0644);
	if (r < 0)
		return cli_error("%s '%s': %s", what, path, sc_strerror(r));
	return 0;
}

static int
write_metadata(const char *path, const struct snap_image_info *img)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "containerimage.digest", json_object_new_string(img->manifest));
	json_object_object_add(o, "containerimage.config.digest",
			       json_object_new_string(img->config));
	struct json_object *d = json_object_new_object();
	json_object_object_add(d, "mediaType", json_object_new_string(img->target_media_type));
	json_object_object_add(d, "digest", json_object_new_string(img->manifest));
	json_object_object_add(o, "containerimage.descriptor", d);
	if (img->name && img->name[0])
		json_object_object_add(o, "image.name", json_object_new_string(img->name));
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								  JSON_C_TO_STRING_NOSLASHESCAPE);
	_cleanup_free_ char *text = NULL;
	if (asprintf(&text, "%s\n", s) < 0)
		text = NULL;
	json_object_put(o);
	return text ? write_text(path, text, "metadata file") : cli_error("out of memory");
}

int
cli_cmd_build(struct cli_ctx *ctx, int argc, char **argv)
{
	struct build_args a = {0};
	struct sc_err err = SC_ERR_INIT;
	int status = CLI_EXIT_OK;
	_cleanup_free_ char *df_data = NULL;
	struct bld_printer *printer = NULL;
	struct bld_build_result res = {0};
	int r = parse_args(argc, argv, &a, &err);
	if (r == 1) {
		fputs(build_usage, stdout);
		goto out;
	}
	if (r < 0) {
		status = cli_usage("build: %s", sc_err_msg(&err));
		goto out;
	}
	enum bld_progress_mode mode = BLD_PROGRESS_AUTO;
	if (a.progress) {
		r = bld_progress_mode_from_string(a.progress);
		if (r < 0 || r == BLD_PROGRESS_TTY) {
			status = cli_usage(
				"build: --progress '%s' is not auto, plain, json or quiet",
				a.progress);
			goto out;
		}
		mode = (enum bld_progress_mode)r;
	}
	enum bld_network net = BLD_NETWORK_DEFAULT;
	if (a.network && bld_network_from_string(a.network, &net) < 0) {
		status = cli_usage("build: --network '%s' is not host or none", a.network);
		goto out;
	}
	if (a.runtime && strcmp(a.runtime, "runc") != 0 && strcmp(a.runtime, "crun") != 0) {
		status = cli_usage("build: --runtime '%s' is not runc or crun", a.runtime);
		goto out;
	}
	uint64_t quota = 0;
	if (a.quota && (sc_size_parse(a.quota, &quota) < 0 || quota == 0)) {
		status = cli_usage("build: --quota '%s' is not a size above 0 (e.g. 10GB, 512MiB)",
				   a.quota);
		goto out;
	}
	bool stdout_used = false;
	for (size_t i = 0; i < a.noutputs; i++)
		stdout_used |= strcmp(a.outputs[i].opts.dest, "-") == 0;
	if (stdout_used && mode == BLD_PROGRESS_JSON) {
		status = cli_usage("build: -o - and --progress json both want stdout");
		goto out;
	}
	size_t df_len = 0;
	if (a.file && strcmp(a.file, "-") == 0) {
		r = read_stdin(&df_data, &df_len, &err);
		if (r < 0) {
			status = cli_fail(&err, "build");
			goto out;
		}
	}
	struct snap_store *s = cli_store(ctx);
	if (!s) {
		status = CLI_EXIT_FAILURE;
		goto out;
	}
	if (mode != BLD_PROGRESS_QUIET &&
	    bld_printer_new(mode, mode == BLD_PROGRESS_JSON ? 1 : 2, &printer) < 0) {
		status = cli_error("out of memory");
		goto out;
	}
	struct bld_build_opts o = {
		.context = a.context,
		.dockerfile = df_data ? "Dockerfile" : a.file,
		.dockerfile_data = df_data,
		.dockerfile_len = df_len,
		.target = a.target,
		.build_args = a.bargs,
		.nbuild_args = a.nbargs,
		.no_cache = a.no_cache,
		.no_cache_filter = a.filters,
		.nno_cache_filter = a.nfilters,
		.jobs = a.jobs,
		.runtime = a.runtime,
		.network = net,
		.quota = quota,
		.platform = a.platform,
		.tags = a.tags,
		.ntags = a.ntags,
		.outputs = a.outputs,
		.noutputs = a.noutputs,
		.progress = printer ? bld_printer_event : NULL,
		.progress_arg = printer,
		.cancel = &canceled,
	};
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	r = bld_build(s, &o, &res, &err);
	printer = bld_printer_free(printer);
	if (r == -ECANCELED && cancel_signal) {
		fprintf(stderr, "snapctl: build canceled by %s\n",
			cancel_signal == SIGINT ? "SIGINT" : "SIGTERM");
		status = 128 + cancel_signal;
		goto out;
	}
	if (r == -ENOSPC || r == -EDQUOT) {
		status = cli_error("build: %s; free space with 'snapctl prune', or set a min-free "
				   "policy so builds make room (docs/gc.md)",
				   sc_err_msg(&err));
		goto out;
	}
	if (r < 0) {
		status = cli_fail(&err, "build");
		goto out;
	}
	if (a.iidfile && write_text(a.iidfile, res.image.config, "iidfile") != 0)
		status = CLI_EXIT_FAILURE;
	if (a.metadata && write_metadata(a.metadata, &res.image) != 0)
		status = CLI_EXIT_FAILURE;
	if (mode == BLD_PROGRESS_QUIET && !stdout_used)
		printf("%s\n", res.image.config);
	else if (!a.ntags && !a.noutputs)
		cli_notice("no -t or -o: the result stays in the build cache (image %s)",
			   res.image.manifest);
	else if (mode != BLD_PROGRESS_JSON && !stdout_used)
		fprintf(stderr, "%s%s%s\n", res.image.manifest, a.ntags ? " " : "",
			a.ntags ? a.tags[0] : "");
	cli_auto_gc(ctx);
out:
	bld_printer_free(printer);
	bld_build_result_clear(&res);
	for (size_t i = 0; i < a.nowned; i++)
		free(a.owned[i]);
	return status;
}
