/*
 * snapctl build: a Dockerfile and a context in, an image out.
 *
 *   bld_build()
 *     plan      the Dockerfile's reachable stages, words expanded (plan.h)
 *     graph     ops: image (a base from the store, or scratch), exec (RUN),
 *               file (COPY/ADD, WORKDIR); identical ops merged
 *     solve     ready ops run concurrently on a pool of opts->jobs threads;
 *               each is looked up in the build cache first (cache.h)
 *     assemble  the target stage's layers, config and history -> an image
 *               (named by opts->tags, or only in the content store)
 *     export    every output of opts->outputs
 *
 * Cache keys: an op's key is the sha256 of its definition and its inputs'
 * keys; for COPY/ADD the definition includes the content hash of exactly
 * the selected files (fileop.h). Every snapshot, blob and record the build
 * uses or makes is attached to the build's lease in the transaction that
 * creates or finds it; the lease dies with the process, so a killed build
 * pins nothing. Active snapshots a build works in are named
 * "build.PID.STARTTIME.N" so that a later build removes those of a dead one.
 *
 * Concurrency: store calls of one build are serialised by a lock (the store
 * handle is not thread-safe); RUN steps, file copies and hashing run in
 * parallel outside it. A failure or a cancel stops every running step.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "image.h"
#include "instructions.h"

struct snap_store;

enum bld_event_type {
	BLD_EVENT_START,  /* a step runs (after its cache lookup missed) */
	BLD_EVENT_CACHED, /* a step was found in the cache */
	BLD_EVENT_MISS,	  /* why a step that ran before at this position missed */
	BLD_EVENT_LOG,	  /* a line of a step's output */
	BLD_EVENT_DONE,	  /* a step finished */
	BLD_EVENT_ERROR,  /* a step failed */
	BLD_EVENT_INFO,	  /* a message about the whole build (vertex 0) */
	_BLD_EVENT_MAX,
};

const char *bld_event_type_to_string(enum bld_event_type t);

struct bld_event {
	enum bld_event_type type;
	unsigned vertex;    /* #N as progress shows it; 0 for the build itself */
	const char *digest; /* the op's digest ("sha256:..."), or NULL */
	const char *name;   /* "[build 3/4] RUN make" */
	uint64_t time;	    /* ns since the epoch */
	uint64_t started;   /* DONE/ERROR/CACHED: when the step started */
	int stream;	    /* LOG: 1 or 2 */
	const char *text;   /* LOG: the line; MISS: the reason; ERROR/INFO: the message */
	size_t len;	    /* bytes of text */
};

/* Called from any of the build's threads, one call at a time. */
typedef void (*bld_progress_fn)(void *arg, const struct bld_event *ev);

enum bld_progress_mode {
	BLD_PROGRESS_AUTO,
	BLD_PROGRESS_PLAIN,
	BLD_PROGRESS_JSON,
	BLD_PROGRESS_QUIET,
	BLD_PROGRESS_TTY,
	_BLD_PROGRESS_MAX,
};

const char *bld_progress_mode_to_string(enum bld_progress_mode m);
int bld_progress_mode_from_string(const char *s); /* -EINVAL if unknown */

/* A printer for progress events to a stream (stderr for plain/tty, stdout for json). */
struct bld_printer;
/* AUTO becomes TTY when fd is a terminal, else PLAIN. */
int bld_printer_new(enum bld_progress_mode mode, int fd, struct bld_printer **ret);
struct bld_printer *bld_printer_free(struct bld_printer *p);
void bld_printer_event(void *printer, const struct bld_event *ev);

/* One -o: an export after the build. */
struct bld_output {
	struct snap_image_export_opts opts;
	const char *name; /* docker: the name= for RepoTags; NULL: the first tag */
};

struct bld_build_opts {
	const char *context;	     /* the build context folder */
	const char *dockerfile;	     /* path; NULL: CONTEXT/Dockerfile */
	const char *dockerfile_data; /* -f -: the Dockerfile's text (then dockerfile is its name) */
	size_t dockerfile_len;
	const char *target;
	const char *const *build_args; /* "NAME=VALUE" */
	size_t nbuild_args;
	bool no_cache;
	const char *const *no_cache_filter; /* stage names */
	size_t nno_cache_filter;
	unsigned jobs;	     /* 0: the number of CPUs */
	const char *runtime; /* NULL: runc */
	enum bld_network network;
	uint64_t quota;	      /* bytes each RUN step's snapshot may take; 0: no limit */
	const char *platform; /* NULL: this machine's */
	const char *const *tags;
	size_t ntags;
	const struct bld_output *outputs;
	size_t noutputs;
	bld_progress_fn progress; /* may be NULL */
	void *progress_arg;
	atomic_bool *cancel; /* may be NULL; set it (from a signal handler) to stop the build */
};

struct bld_build_result {
	struct snap_image_info image; /* name "" when no tag */
};

void bld_build_result_clear(struct bld_build_result *r);

/*
 * Runs a build. Errors: -EINVAL a bad Dockerfile, build argument, target or
 * flag value (err names the line); -ENOENT the context, Dockerfile, a base
 * image (err says to run 'snapctl image import') or a COPY source missing;
 * -ECANCELED opts->cancel was set (every step stopped, nothing left
 * behind); -ECHILD a RUN step exited non-zero (err names the step, the
 * command, the exit code and the last lines of its output); the runtime's
 * errors (executor.h); the store's.
 */
int bld_build(struct snap_store *s, const struct bld_build_opts *opts, struct bld_build_result *ret,
	      struct sc_err *err);
