/*
 * snapctl lease: create [--id ID] [--expires DURATION] [--pid PID], add ID
 * TYPE NAME, rm ID..., ls [--json], prune (delete dead leases).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lease.h"
#include "store.h"
#include "util.h"

static const char lease_usage[] =
	"Usage: snapctl lease COMMAND ...\n"
	"\n"
	"  create [--id ID] [--expires DURATION] [--pid PID]\n"
	"                          new lease; prints its id. DURATION: 90s, 30m, 24h, 7d.\n"
	"                          With --pid the lease dies with that process.\n"
	"  add ID snapshot|blob|image NAME\n"
	"                          protect an object with lease ID\n"
	"  rm ID...                delete leases (what they held becomes collectable)\n"
	"  ls [--json]             leases, whether they are alive, and what they hold\n"
	"  prune                   delete leases that expired or whose holder is gone\n";

static struct json_object *
lease_json(const struct snap_lease *l, uint64_t now)
{
	char t[64];
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(l->id));
	json_object_object_add(o, "created",
			       json_object_new_string(sc_time_format(l->created, t, sizeof(t))));
	json_object_object_add(
		o, "expires",
		l->expires ? json_object_new_string(sc_time_format(l->expires, t, sizeof(t)))
			   : NULL);
	json_object_object_add(o, "pid", l->pid ? json_object_new_int(l->pid) : NULL);
	json_object_object_add(o, "alive", json_object_new_boolean(snap_lease_alive(l, now)));
	struct json_object *refs = json_object_new_array();
	for (size_t i = 0; i < l->nrefs; i++) {
		struct json_object *r = json_object_new_object();
		json_object_object_add(r, "type", json_object_new_string(l->refs[i].type));
		json_object_object_add(r, "name", json_object_new_string(l->refs[i].name));
		json_object_array_add(refs, r);
	}
	json_object_object_add(o, "objects", refs);
	return o;
}

struct ls_state {
	struct cli_table *table;
	struct json_object *json;
	uint64_t now;
};

static int
ls_visit(const struct snap_lease *l, void *arg)
{
	struct ls_state *st = arg;
	if (st->json) {
		json_object_array_add(st->json, lease_json(l, st->now));
		return 0;
	}
	char created[32], expires[32] = "never", pid[32] = "", objects[32];
	sc_time_format(l->created, created, sizeof(created));
	if (l->expires)
		sc_time_format(l->expires, expires, sizeof(expires));
	if (l->pid)
		snprintf(pid, sizeof(pid), "%d", (int)l->pid);
	snprintf(objects, sizeof(objects), "%zu", l->nrefs);
	const char *cells[] = {
		l->id,	created, expires, pid, snap_lease_alive(l, st->now) ? "alive" : "dead",
		objects};
	cli_table_row(st->table, cells);
	return 0;
}

int
cli_cmd_lease(struct cli_ctx *ctx, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(lease_usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	const char *verb = argv[1];
	static const struct option opts[] = {
		{"id", required_argument, NULL, 'i'},  {"expires", required_argument, NULL, 'e'},
		{"pid", required_argument, NULL, 'p'}, {"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},      {0},
	};
	const char *id = NULL, *expires = NULL, *pid_arg = NULL;
	bool json = false;
	int c;
	while ((c = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			id = optarg;
			break;
		case 'e':
			expires = optarg;
			break;
		case 'p':
			pid_arg = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(lease_usage, stdout);
			return CLI_EXIT_OK;
		default:
			return CLI_EXIT_USAGE;
		}
	}
	int npos = argc - 1 - optind;
	char **pos = argv + 1 + optind;
	struct sc_err err = SC_ERR_INIT;

	if (strcmp(verb, "create") == 0) {
		if (npos != 0)
			return cli_usage("lease create takes only options");
		uint64_t ttl = 0;
		if (expires && (sc_duration_parse(expires, &ttl) < 0 || ttl == 0))
			return cli_usage("expiry '%s' is not a duration (e.g. 90s, 30m, 24h, 7d)",
					 expires);
		long pid = 0;
		if (pid_arg) {
			char *end;
			pid = strtol(pid_arg, &end, 10);
			if (*end || pid <= 0)
				return cli_usage("pid '%s' is not a process id", pid_arg);
		}
		struct snap_store *s = cli_store(ctx);
		if (!s)
			return CLI_EXIT_FAILURE;
		struct snap_lease l = {0};
		if (snap_lease_create(s, id, ttl, (pid_t)pid, &l, &err) < 0)
			return cli_fail(&err, "lease create");
		if (json)
			cli_json_print(lease_json(&l, sc_now_ns()));
		else
			printf("%s\n", l.id);
		snap_lease_clear(&l);
		return CLI_EXIT_OK;
	}
	if (strcmp(verb, "add") == 0) {
		if (npos != 3)
			return cli_usage("lease add takes ID snapshot|blob|image NAME");
		struct snap_store *s = cli_store(ctx);
		if (!s)
			return CLI_EXIT_FAILURE;
		if (snap_lease_add(s, pos[0], pos[1], pos[2], &err) < 0)
			return cli_fail(&err, "lease add");
		return CLI_EXIT_OK;
	}
	if (strcmp(verb, "rm") == 0 || strcmp(verb, "remove") == 0) {
		if (npos < 1)
			return cli_usage("lease rm takes ID...");
		struct snap_store *s = cli_store(ctx);
		if (!s)
			return CLI_EXIT_FAILURE;
		int rc = CLI_EXIT_OK;
		for (int i = 0; i < npos; i++) {
			sc_err_clear(&err);
			if (snap_lease_delete(s, pos[i], &err) < 0)
				rc = cli_fail(&err, "lease rm");
		}
		return rc;
	}
	if (strcmp(verb, "ls") == 0 || strcmp(verb, "list") == 0) {
		if (npos != 0)
			return cli_usage("lease ls takes no arguments");
		struct snap_store *s = cli_store(ctx);
		if (!s)
			return CLI_EXIT_FAILURE;
		static const char *const headers[] = {"ID",  "CREATED", "EXPIRES",
						      "PID", "STATE",	"OBJECTS"};
		struct ls_state st = {.now = sc_now_ns()};
		if (json)
			st.json = json_object_new_array();
		else
			st.table = cli_table_new(6, headers);
		int r = snap_lease_walk(s, ls_visit, &st, &err);
		if (r < 0) {
			json_object_put(st.json);
			cli_table_free(st.table);
			return cli_fail(&err, "lease ls");
		}
		if (st.json)
			cli_json_print(st.json);
		cli_table_print(st.table, stdout);
		cli_table_free(st.table);
		return CLI_EXIT_OK;
	}
	if (strcmp(verb, "prune") == 0) {
		struct snap_store *s = cli_store(ctx);
		if (!s)
			return CLI_EXIT_FAILURE;
		int n = snap_lease_prune_dead(s, &err);
		if (n < 0)
			return cli_fail(&err, "lease prune");
		printf("%d dead lease%s deleted\n", n, n == 1 ? "" : "s");
		return CLI_EXIT_OK;
	}
	return cli_usage("unknown lease command '%s'", verb);
}
