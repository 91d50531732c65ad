/*
 * The snapctl program: shared state of one invocation, and helpers every
 * command group uses to open the store and to talk to the user.
 *
 * Exit status: 0 success, 1 failure, 2 bad usage. Errors are one line on
 * stderr, "snapctl: <what> '<which>': <why>[; <what to do>]".
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "err.h"

struct snap_store;
struct json_object;

enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAILURE = 1,
	CLI_EXIT_USAGE = 2,
};

struct cli_ctx {
	const char *root;   /* --root, or NULL for the default */
	const char *driver; /* --driver, or NULL for automatic */
	const char *lease;  /* --lease: what this command creates is attached to it */
	bool debug;
	unsigned store_flags;	  /* SNAP_STORE_* for cli_store() */
	struct snap_store *store; /* opened on first use by cli_store() */
};

/* One command group: argv[0] is the group name ("snapshot"). Returns an exit status. */
typedef int (*cli_cmd_fn)(struct cli_ctx *ctx, int argc, char **argv);

/* Opens the store on first call (and reports the failure); NULL on failure. */
struct snap_store *cli_store(struct cli_ctx *ctx);

/* Prints "snapctl: MESSAGE" to stderr and returns CLI_EXIT_FAILURE. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "snapctl: MESSAGE" and a hint to run --help; returns CLI_EXIT_USAGE. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "snapctl: PREFIX: <err message>" and returns CLI_EXIT_FAILURE. */
int cli_fail(const struct sc_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints a one-line notice to stderr ("snapctl: note: ..."). */
void cli_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints a JSON value (pretty) to stdout with a newline and drops the reference. */
void cli_json_print(struct json_object *obj);

/*
 * Column table for human output: add a header row then rows, then print.
 * Cells are copied. cli_table_free() is NULL-safe.
 */
struct cli_table;
struct cli_table *cli_table_new(unsigned ncols, const char *const *headers);
void cli_table_row(struct cli_table *t, const char *const *cells);
void cli_table_print(struct cli_table *t, FILE *out);
void cli_table_free(struct cli_table *t);

/* Command groups, one file each (cmd-<group>.c). */
int cli_cmd_snapshot(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_lease(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_version(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_dockerfile(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_image(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_content(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_layer(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_df(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_prune(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_gc(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_pin(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_check(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_build(struct cli_ctx *ctx, int argc, char **argv);

/*
 * After a command added data: runs the automatic collection if a configured
 * threshold is crossed. Failures are reported as a notice, never fail the
 * command that already succeeded.
 */
void cli_auto_gc(struct cli_ctx *ctx);
