/* Talking to the user: errors, notices, tables and JSON. See cli.h. */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gc.h"
#include "store.h"

static void __attribute__((format(printf, 2, 0)))
vprint(const char *prefix, const char *fmt, va_list ap)
{
	char buf[4096];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	fprintf(stderr, "snapctl: %s%s\n", prefix, buf);
}

int
cli_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprint("", fmt, ap);
	va_end(ap);
	return CLI_EXIT_FAILURE;
}

int
cli_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprint("", fmt, ap);
	va_end(ap);
	fprintf(stderr, "Run 'snapctl --help' for usage.\n");
	return CLI_EXIT_USAGE;
}

int
cli_fail(const struct sc_err *err, const char *fmt, ...)
{
	char prefix[2048] = "";
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(prefix, sizeof(prefix), fmt, ap);
		va_end(ap);
	}
	fprintf(stderr, "snapctl: %s%s%s\n", prefix, prefix[0] ? ": " : "", sc_err_msg(err));
	return CLI_EXIT_FAILURE;
}

void
cli_notice(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprint("note: ", fmt, ap);
	va_end(ap);
}

struct snap_store *
cli_store(struct cli_ctx *ctx)
{
	if (ctx->store)
		return ctx->store;
	struct sc_err err = SC_ERR_INIT;
	struct snap_store_opts opts = {
		.root = ctx->root, .driver = ctx->driver, .flags = ctx->store_flags};
	if (snap_store_open(&opts, &ctx->store, &err) < 0) {
		cli_fail(&err, NULL);
		return NULL;
	}
	const char *notice = snap_store_notice(ctx->store);
	if (notice)
		cli_notice("%s", notice);
	if (ctx->lease && snap_store_use_lease(ctx->store, ctx->lease) < 0) {
		ctx->store = snap_store_close(ctx->store);
		cli_error("out of memory");
		return NULL;
	}
	/* Before large writes, make room if the file system is under min-free. */
	gc_auto_install(ctx->store);
	return ctx->store;
}

void
cli_auto_gc(struct cli_ctx *ctx)
{
	if (!ctx->store)
		return;
	struct sc_err err = SC_ERR_INIT;
	if (gc_auto(ctx->store, &err) < 0)
		cli_notice("automatic gc failed: %s", sc_err_msg(&err));
}

void
cli_json_print(struct json_object *obj)
{
	puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
							 JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(obj);
}

struct cli_table {
	unsigned ncols;
	char **cells; /* rows * ncols, row 0 is the header */
	size_t nrows, cap;
};

struct cli_table *
cli_table_new(unsigned ncols, const char *const *headers)
{
	struct cli_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->ncols = ncols;
	cli_table_row(t, headers);
	return t;
}

void
cli_table_row(struct cli_table *t, const char *const *cells)
{
	if (!t)
		return;
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **p = realloc(t->cells, cap * t->ncols * sizeof(*p));
		if (!p)
			return;
		t->cells = p;
		t->cap = cap;
	}
	for (unsigned c = 0; c < t->ncols; c++)
		t->cells[t->nrows * t->ncols + c] = strdup(cells[c] ? cells[c] : "");
	t->nrows++;
}

void
cli_table_print(struct cli_table *t, FILE *out)
{
	if (!t)
		return;
	size_t width[32] = {0};
	for (size_t r = 0; r < t->nrows; r++)
		for (unsigned c = 0; c < t->ncols && c < 32; c++) {
			const char *s = t->cells[r * t->ncols + c];
			size_t w = s ? strlen(s) : 0;
			if (w > width[c])
				width[c] = w;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (unsigned c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			if (c + 1 == t->ncols)
				fprintf(out, "%s\n", s ? s : "");
			else
				fprintf(out, "%-*s   ", (int)width[c], s ? s : "");
		}
	}
}

void
cli_table_free(struct cli_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}
