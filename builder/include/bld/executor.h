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
 * The runtime runs in its own session (and process group), so a terminal's
 * ^C reaches the builder, which cancels through spec->cancel: the flag is
 * looked at every 100 ms, the container is killed (runtime kill KILL, then
 * delete --force) and the call returns -ECANCELED. The runtime also gets
 * SIGKILL if the thread that called bld_exec_run() dies.
 *
 * As BuildKit: Docker's default capability set (bounding, effective,
 * permitted; a non-root user keeps none after its exec), no-new-privileges
 * off (setuid programs work), no rlimits (the builder's are inherited),
 * containerd's masked and read-only paths, a deny-all device cgroup rule
 * (the runtime allows the standard devices).
 *
 * Thread-safe: several steps may run at once, each from its own thread and
 * on its own rootfs (children are started with fork+exec of the runtime
 * only; every fd is close-on-exec). The caller must not reap children it
 * did not start (no waitpid(-1), SIGCHLD not ignored).
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "instructions.h"

#define BLD_EXEC_TAIL_LINES 10	 /* output lines kept for an error message */
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
	const char *runtime;	 /* "runc" (default when NULL), "crun", or a path */
	const char *id;		 /* container id, unique on the host */
	const char *bundle_dir;	 /* an existing empty folder; left empty again */
	const char *rootfs;	 /* absolute path of the mounted root file system */
	const char *const *argv; /* the process */
	size_t argc;
	const char *const *env; /* "NAME=VALUE", the whole environment */
	size_t nenv;
	const char *cwd;		     /* absolute; NULL: "/" */
	const char *user;		     /* "user[:group]" or "uid[:gid]"; NULL: root */
	enum bld_network network;	     /* NONE (own namespace, loopback only) or HOST;
						DEFAULT is taken as NONE (the solver decides) */
	const char *hostname;		     /* NULL: "snapctl" */
	const struct bld_exec_mount *mounts; /* after the default ones, in this order */
	size_t nmounts;
	bld_exec_output_fn output; /* may be NULL */
	void *output_arg;
	atomic_bool *cancel; /* may be NULL; set by another thread to stop the step */
};

struct bld_exec_result {
	int exit_code; /* the process's exit status, or 128 + signal */
	char *tail;    /* the last BLD_EXEC_TAIL_LINES lines of output, both streams,
			  '\n'-separated, "" when none (heap) */
};

/* Frees r->tail and zeroes r; NULL-safe. */
void bld_exec_result_clear(struct bld_exec_result *r);

/*
 * Runs the step and waits for it. Returns 0 when the process ran (whatever
 * its exit code: see ret->exit_code), and fills ret (the caller clears it
 * with bld_exec_result_clear()); on failure ret is left untouched. Errors:
 *   -ENOENT  the runtime is not installed (the message names the Debian
 *            package: runc or crun)
 *   -EOPNOTSUPP the runtime cannot run containers on this host (crun on a
 *            hybrid cgroup layout: the message says to use --runtime runc)
 *   -EIO     the runtime failed to create or start the container, e.g. the
 *            program is not in the rootfs: err holds the runtime's message
 *   -EINVAL  a user or group name not in the rootfs' /etc/passwd or
 *            /etc/group; a relative cwd or mount target; a bad container id
 *   -ENOTDIR a component of cwd is not a folder
 *   -EFBIG   the rootfs' /etc/passwd or /etc/group is over 4 MiB
 *   -ECANCELED  spec->cancel was set; the container and its processes are gone
 *   -errno   the bundle or a mount point could not be written, or the
 *            runtime not started
 * In every case the container is deleted and the mount points made for the
 * run that are still empty are removed (their folders' times restored); a
 * missing working directory is made 0755, owned by the step's user, as
 * BuildKit does, and kept.
 */
int bld_exec_run(const struct bld_exec_spec *spec, struct bld_exec_result *ret, struct sc_err *err);

/*
 * Checks that runtime (NULL: runc) can start containers here (once per
 * build, before the first step): present on PATH (-ENOENT), and for crun,
 * not defeated by the host's cgroup layout (-EOPNOTSUPP). The layout is
 * read, no container is started: crun refuses a hybrid layout (tmpfs at
 * /sys/fs/cgroup, cgroup v2 at /sys/fs/cgroup/unified) whose v2 hierarchy
 * has any controller, and that is the test made here. bld_exec_run() maps
 * the runtime's own refusal to the same error.
 */
int bld_exec_runtime_check(const char *runtime, struct sc_err *err);

/*
 * Resolves "user[:group]" / "uid[:gid]" against the rootfs at rootfs_dirfd
 * (its /etc/passwd and /etc/group, opened with RESOLVE_IN_ROOT: symlinks
 * never leave the rootfs), as BuildKit does (runc's GetExecUser behind a
 * numeric fast path):
 *   - NULL or "": 0:0. "uid:gid" both numeric ("root" counts as 0): as
 *     given, files not read.
 *   - A user name not in /etc/passwd is -EINVAL (except "root": 0:0); a
 *     number not in it is used as given with gid 0.
 *   - An explicit group, by name or number, replaces the primary gid (an
 *     unknown name is -EINVAL, an unknown number is used as given).
 *   - Without an explicit group, a user found in /etc/passwd gets as
 *     supplementary groups the groups of /etc/group that list its name.
 * ret_groups (may be NULL) receives those (heap, NULL when none; caller
 * frees). Other errors: -EFBIG a file over 4 MiB, -EINVAL a file that is
 * not a regular file, -errno reading it. Missing files read as empty.
 */
int bld_user_resolve(int rootfs_dirfd, const char *spec, uid_t *ret_uid, gid_t *ret_gid,
		     gid_t **ret_groups, size_t *ret_ngroups, struct sc_err *err);
