/*
 * The executor: runs one RUN step in an OCI runtime (runc, or crun) from a
 * bundle it generates, with the step's active snapshot, already mounted, as
 * the root file system.
 *
 * The bundle's config.json (written with json-c) holds: the process (argv
 * as given: the caller applies SHELL for shell form), its environment, cwd
 * and user (names resolved through the rootfs' /etc/passwd and /etc/group,
 * supplementary groups included; numeric ids as given), a hostname,
 * namespaces (mount, pid, ipc, uts, and network unless host networking),
 * a minimal /dev, /proc, /sys (read-only), /dev/pts, /dev/shm, and for host
 * networking the host's /etc/resolv.conf and /etc/hosts bound read-only.
 * Mount points the runtime or the executor had to create in the rootfs
 * (a missing /proc, /etc/hosts, ...) are removed again after the run, so
 * they never reach the step's layer. The working directory is created when
 * missing (and stays: BuildKit does the same).
 *
 * The runtime runs in its own process group, so a terminal's ^C reaches
 * the builder, which cancels through spec->cancel: the container is killed
 * (runtime kill KILL, then delete --force) and the call returns -ECANCELED.
 *
 * Thread-safe: several steps may run at once, each from its own thread
 * (children are started with fork+exec of the runtime only).
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "instructions.h"

#define BLD_EXEC_TAIL_LINES 10 /* output lines kept for an error message */
#define BLD_EXEC_LINE_MAX   4096 /* longer output lines are cut into pieces */

/* Called with each line of output (without its newline); stream is 1 or 2. */
typedef void (*bld_exec_output_fn)(void *arg, int stream, const char *line, size_t len);

/* An extra mount in the container (RUN --mount; tmpfs, bind). */
struct bld_exec_mount {
	const char *type;   /* "bind" or "tmpfs" */
	const char *source; /* host path for bind; ignored for tmpfs */
	const char *target; /* absolute path in the container */
	bool readonly;
};

struct bld_exec_spec {
	const char *runtime;		 /* "runc" (default when NULL) or "crun" */
	const char *id;			 /* container id, unique on the host */
	const char *bundle_dir;		 /* an existing empty folder the executor may fill */
	const char *rootfs;		 /* absolute path of the mounted root file system */
	const char *const *argv;	 /* the process */
	size_t argc;
	const char *const *env;		 /* "NAME=VALUE", the whole environment */
	size_t nenv;
	const char *cwd;		 /* absolute; NULL: "/" */
	const char *user;		 /* "user[:group]" or "uid[:gid]"; NULL: root */
	enum bld_network network;	 /* NONE (own namespace, loopback only) or HOST */
	const char *hostname;		 /* NULL: "snapctl" */
	const struct bld_exec_mount *mounts;
	size_t nmounts;
	bld_exec_output_fn output; /* may be NULL */
	void *output_arg;
	atomic_bool *cancel; /* may be NULL; set by another thread to stop the step */
};

struct bld_exec_result {
	int exit_code;	/* the process's exit status, or 128 + signal */
	char *tail;	/* the last BLD_EXEC_TAIL_LINES lines of output, '\n'-separated (heap) */
};

void bld_exec_result_clear(struct bld_exec_result *r);

/*
 * Runs the step and waits for it. Returns 0 when the process ran (whatever
 * its exit code: see ret->exit_code), or:
 *   -ENOENT  the runtime is not installed (the message names the Debian
 *            package: runc or crun)
 *   -EOPNOTSUPP the runtime cannot run containers on this host (crun 1.8 on
 *            a hybrid cgroup layout: the message says to use --runtime runc)
 *   -EINVAL  a user or group name not in the rootfs' /etc/passwd or /etc/group
 *   -ECANCELED  spec->cancel was set; the container is gone
 *   -errno   the bundle could not be written or the runtime not started
 * err holds the runtime's own message when it failed to start the container.
 */
int bld_exec_run(const struct bld_exec_spec *spec, struct bld_exec_result *ret,
		 struct sc_err *err);

/*
 * Checks that runtime can start containers here (once per build, before the
 * first step): present on PATH, and for crun, not defeated by the host's
 * cgroup layout. Errors as bld_exec_run().
 */
int bld_exec_runtime_check(const char *runtime, struct sc_err *err);

/*
 * Resolves "user[:group]" / "uid[:gid]" against the rootfs at rootfs_dirfd
 * (its /etc/passwd and /etc/group, read without leaving the rootfs). A
 * numeric user missing from /etc/passwd is used as given with gid 0 (as
 * BuildKit does). ret_groups (may be NULL) receives the supplementary
 * groups of a named or numeric user found in /etc/group (heap; caller
 * frees). -EINVAL with a message when a name is not found.
 */
int bld_user_resolve(int rootfs_dirfd, const char *spec, uid_t *ret_uid, gid_t *ret_gid,
		     gid_t **ret_groups, size_t *ret_ngroups, struct sc_err *err);
