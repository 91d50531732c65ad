/*
 * snapctl: main and the command table. Global options come before the
 * command; each command group lives in its own cmd-<group>.c.
 */
#include <getopt.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "store.h"

static const struct {
	const char *name;
	cli_cmd_fn fn;
	const char *summary;
} commands[] = {
	{"build", cli_cmd_build, "build a Dockerfile into an image"},
	{"snapshot", cli_cmd_snapshot, "prepare, view, commit, remove and mount snapshots"},
	{"lease", cli_cmd_lease, "hold objects against garbage collection"},
	{"image", cli_cmd_image, "import, export, list and remove images"},
	{"content", cli_cmd_content, "blobs in the content store"},
	{"layer", cli_cmd_layer, "diff snapshots into layers and apply layers"},
	{"df", cli_cmd_df, "disk used by the store, per type"},
	{"prune", cli_cmd_prune, "remove unreferenced records by policy (for cron)"},
	{"gc", cli_cmd_gc, "remove what nothing reaches; run the configured policies"},
	{"pin", cli_cmd_pin, "keep a snapshot, image or blob from ever being pruned"},
	{"unpin", cli_cmd_pin, "undo pin"},
	{"check", cli_cmd_check, "find (and --repair) inconsistencies"},
	{"dockerfile", cli_cmd_dockerfile, "parse and inspect Dockerfiles"},
	{"version", cli_cmd_version, "print the version"},
};

static void
usage(FILE *out)
{
	fprintf(out, "Usage: snapctl [--root DIR] [--driver overlay|btrfs|native] [--lease ID] "
		     "[--debug]\n"
		     "               COMMAND ...\n"
		     "\n"
		     "A layer store and image builder for Linux build hosts.\n"
		     "\n"
		     "Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
		"\n"
		"Global options:\n"
		"  --root DIR     the store (default: $SNAPCTL_ROOT, /var/lib/snapctl for root,\n"
		"                 $XDG_DATA_HOME/snapctl otherwise)\n"
		"  --driver NAME  snapshot driver for a new store (default: btrfs on btrfs,\n"
		"                 else overlay where it mounts, else native)\n"
		"  --lease ID     attach what this command creates to lease ID in the same\n"
		"                 transaction (so a concurrent prune cannot take it)\n"
		"  --debug        debug messages on stderr\n"
		"\n"
		"Run 'snapctl COMMAND --help' for a command's usage.\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"root", required_argument, NULL, 'r'},
		{"driver", required_argument, NULL, 'd'},
		{"debug", no_argument, NULL, 'D'},
		{"lease", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	struct cli_ctx ctx = {0};
	int c;
	/*
	 * Walks of deep trees hold a descriptor per folder level (up to
	 * SNAP_LAYER_DEPTH_MAX) and the copy engine one per file in flight: the
	 * soft limit goes up to the hard one, as Go programs do by default.
	 */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &nofile);
	}
	/* '+': stop at the command; its options are its own. */
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			ctx.root = optarg;
			break;
		case 'd':
			ctx.driver = optarg;
			break;
		case 'l':
			ctx.lease = optarg;
			break;
		case 'D':
			ctx.debug = true;
			sc_log_set_debug(true);
			break;
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		case 'V':
			return cli_cmd_version(&ctx, 1, (char *[]){"version", NULL});
		default:
			return cli_usage("unknown global option");
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	const char *name = argv[optind];
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name) != 0)
			continue;
		int sub_argc = argc - optind;
		char **sub_argv = argv + optind;
		optind = 0; /* full getopt reset for the command's own parsing */
		int r = commands[i].fn(&ctx, sub_argc, sub_argv);
		snap_store_close(ctx.store);
		return r;
	}
	return cli_usage("unknown command '%s'", name);
}
