/*
 * snapctl dockerfile: inspect Dockerfiles with the builder's frontend.
 *
 *   snapctl dockerfile parse [--dump] [--json] FILE
 *
 * Without options: the typed instructions, one per line with their line
 * numbers, after every instruction has been checked (flags, arguments).
 * --dump: the parse tree in BuildKit's dump format (the conformance format).
 * --json: the instructions as JSON, for scripts.
 */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "dockerfile.h"
#include "instructions.h"
#include "util.h"

static void
usage(FILE *out)
{
	fprintf(out, "Usage: snapctl dockerfile parse [--dump] [--json] FILE\n"
		     "\n"
		     "Parses FILE and checks every instruction.\n"
		     "  --dump   print the parse tree in BuildKit's dump format\n"
		     "  --json   print the instructions as JSON\n");
}

static void
print_quoted_list(const char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%s'%s'", i ? " " : "", v[i]);
}

static void
print_cmdline(const struct bld_cmdline *c)
{
	if (c->shell_form) {
		printf("shell '%s'", c->argc ? c->argv[0] : "");
	} else {
		printf("exec [");
		print_quoted_list(c->argv, c->argc);
		printf("]");
	}
	for (size_t i = 0; i < c->nfiles; i++)
		printf(" <<%s (%zu bytes)", c->files[i].name, strlen(c->files[i].content));
}

static void
print_instr(const struct bld_instr *in)
{
	const char *kw = bld_instr_kind_to_string(in->kind);
	printf("%-11s ", kw);
	switch (in->kind) {
	case BLD_INSTR_FROM:
		printf("%s", in->u.from.image);
		if (in->u.from.name)
			printf(" AS %s", in->u.from.name);
		if (in->u.from.platform)
			printf(" platform=%s", in->u.from.platform);
		break;
	case BLD_INSTR_RUN:
		print_cmdline(&in->u.run.cmd);
		for (size_t i = 0; i < in->u.run.nmounts; i++) {
			const struct bld_mount *m = &in->u.run.mounts[i];
			printf(" mount=%s:%s", bld_mount_type_to_string(m->type),
			       m->target ? m->target
			       : m->env	 ? m->env
					 : "");
		}
		if (in->u.run.network != BLD_NETWORK_DEFAULT)
			printf(" network=%s", bld_network_to_string(in->u.run.network));
		if (in->u.run.security != BLD_SECURITY_SANDBOX)
			printf(" security=%s", bld_security_to_string(in->u.run.security));
		break;
	case BLD_INSTR_CMD:
	case BLD_INSTR_ENTRYPOINT:
		print_cmdline(&in->u.cmd);
		break;
	case BLD_INSTR_SHELL:
		print_quoted_list(in->u.shell.argv, in->u.shell.argc);
		break;
	case BLD_INSTR_ENV:
	case BLD_INSTR_LABEL:
	case BLD_INSTR_ARG:
	case BLD_INSTR_MAINTAINER:
		for (size_t i = 0; i < in->u.kv.n; i++) {
			const struct bld_kv *kv = &in->u.kv.kvs[i];
			if (kv->value)
				printf("%s%s='%s'", i ? " " : "", kv->key, kv->value);
			else
				printf("%s%s", i ? " " : "", kv->key);
		}
		break;
	case BLD_INSTR_EXPOSE:
	case BLD_INSTR_VOLUME:
		print_quoted_list(in->u.words.v, in->u.words.n);
		break;
	case BLD_INSTR_USER:
	case BLD_INSTR_WORKDIR:
	case BLD_INSTR_STOPSIGNAL:
		printf("'%s'", in->u.str);
		break;
	case BLD_INSTR_COPY:
	case BLD_INSTR_ADD: {
		const struct bld_copy *c = &in->u.copy;
		print_quoted_list(c->srcs, c->nsrcs);
		for (size_t i = 0; i < c->ninline; i++)
			printf("%s<<%s", c->nsrcs || i ? " " : "", c->inline_srcs[i].name);
		printf(" -> '%s'", c->dest);
		if (c->from)
			printf(" from=%s", c->from);
		if (c->chown)
			printf(" chown=%s", c->chown);
		if (c->chmod)
			printf(" chmod=%s", c->chmod);
		if (c->link)
			printf(" link");
		if (c->parents)
			printf(" parents");
		if (c->keep_git_dir)
			printf(" keep-git-dir");
		if (c->checksum)
			printf(" checksum=%s", c->checksum);
		for (size_t i = 0; i < c->nexcludes; i++)
			printf(" exclude=%s", c->excludes[i]);
		break;
	}
	case BLD_INSTR_HEALTHCHECK:
		if (in->u.health.none) {
			printf("NONE");
			break;
		}
		print_quoted_list(in->u.health.test, in->u.health.ntest);
		if (in->u.health.interval_ns)
			printf(" interval=%llums",
			       (unsigned long long)(in->u.health.interval_ns / 1000000));
		if (in->u.health.timeout_ns)
			printf(" timeout=%llums",
			       (unsigned long long)(in->u.health.timeout_ns / 1000000));
		if (in->u.health.retries)
			printf(" retries=%d", in->u.health.retries);
		break;
	case BLD_INSTR_ONBUILD:
		printf("[");
		print_instr(in->u.onbuild.trigger);
		printf("]");
		break;
	case BLD_INSTR_MAX:
		break;
	}
}

static struct json_object *
strv_json(const char *const *v, size_t n)
{
	struct json_object *a = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

static struct json_object *
node_json(const struct bld_df_node *n)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "instruction", json_object_new_string(n->keyword));
	json_object_object_add(o, "start_line", json_object_new_int((int)n->start_line));
	json_object_object_add(o, "end_line", json_object_new_int((int)n->end_line));
	json_object_object_add(o, "flags", strv_json(n->flags, n->nflags));
	struct json_object *args = json_object_new_array();
	for (size_t i = 0; i < n->nargs; i++)
		json_object_array_add(args,
				      json_object_new_string_len(n->args[i], (int)n->arg_lens[i]));
	json_object_object_add(o, "args", args);
	json_object_object_add(o, "exec_form",
			       json_object_new_boolean(n->attrs & BLD_DF_NODE_JSON));
	if (n->nheredocs) {
		struct json_object *h = json_object_new_array();
		for (size_t i = 0; i < n->nheredocs; i++) {
			struct json_object *d = json_object_new_object();
			json_object_object_add(d, "name",
					       json_object_new_string(n->heredocs[i].name));
			json_object_object_add(d, "content",
					       json_object_new_string(n->heredocs[i].content));
			json_object_object_add(d, "fd",
					       json_object_new_int((int)n->heredocs[i].fd));
			json_object_object_add(d, "expand",
					       json_object_new_boolean(n->heredocs[i].expand));
			json_object_object_add(d, "chomp",
					       json_object_new_boolean(n->heredocs[i].chomp));
			json_object_array_add(h, d);
		}
		json_object_object_add(o, "heredocs", h);
	}
	if (n->sub)
		json_object_object_add(o, "trigger", node_json(n->sub));
	return o;
}

static int
cmd_parse(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dump", no_argument, NULL, 'd'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	bool dump = false, json = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dump = true;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		default:
			return cli_usage("dockerfile parse: unknown option");
		}
	}
	if (dump && json)
		return cli_usage("dockerfile parse: --dump and --json cannot be combined");
	if (optind + 1 != argc)
		return cli_usage("dockerfile parse: expected one FILE");
	const char *path = argv[optind];

	struct sc_err err = SC_ERR_INIT;
	struct bld_dockerfile *df = NULL;
	int r = bld_dockerfile_load(path, &df, &err);
	if (r < 0)
		return cli_error("%s", sc_err_msg(&err));
	for (size_t i = 0; i < df->nwarnings; i++)
		cli_notice("%s:%u: %s", df->filename, df->warnings[i].line, df->warnings[i].msg);

	if (dump) {
		struct sc_buf b = {0};
		r = bld_dockerfile_dump(df, &b);
		if (r >= 0)
			fwrite(b.data, 1, b.len, stdout);
		sc_buf_free(&b);
		bld_dockerfile_free(df);
		return r < 0 ? cli_error("dockerfile parse: out of memory") : CLI_EXIT_OK;
	}

	const struct bld_instr *ins = NULL;
	size_t n = 0;
	r = bld_dockerfile_instructions(df, &ins, &n, &err);
	if (r < 0) {
		bld_dockerfile_free(df);
		return cli_error("%s", sc_err_msg(&err));
	}
	if (json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "file", json_object_new_string(df->filename));
		char esc[2] = {df->escape, 0};
		json_object_object_add(o, "escape", json_object_new_string(esc));
		if (df->syntax)
			json_object_object_add(o, "syntax", json_object_new_string(df->syntax));
		struct json_object *arr = json_object_new_array();
		for (size_t i = 0; i < df->nnodes; i++)
			json_object_array_add(arr, node_json(&df->nodes[i]));
		json_object_object_add(o, "instructions", arr);
		struct json_object *w = json_object_new_array();
		for (size_t i = 0; i < df->nwarnings; i++) {
			struct json_object *wo = json_object_new_object();
			json_object_object_add(wo, "line",
					       json_object_new_int((int)df->warnings[i].line));
			json_object_object_add(wo, "message",
					       json_object_new_string(df->warnings[i].msg));
			json_object_array_add(w, wo);
		}
		json_object_object_add(o, "warnings", w);
		cli_json_print(o);
	} else {
		for (size_t i = 0; i < n; i++) {
			char lines[32];
			if (ins[i].start_line == ins[i].end_line)
				snprintf(lines, sizeof(lines), "%u", ins[i].start_line);
			else
				snprintf(lines, sizeof(lines), "%u-%u", ins[i].start_line,
					 ins[i].end_line);
			printf("%-9s ", lines);
			print_instr(&ins[i]);
			printf("\n");
		}
	}
	bld_dockerfile_free(df);
	return CLI_EXIT_OK;
}

int
cli_cmd_dockerfile(struct cli_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	if (!strcmp(argv[1], "parse"))
		return cmd_parse(argc - 1, argv + 1);
	return cli_usage("dockerfile: unknown command '%s' (try 'parse')", argv[1]);
}
