/*
 * The executor: one RUN step in an OCI runtime (runc or crun), started as
 * `RUNTIME --log LOG --log-format json run --bundle BUNDLE ID` with the
 * container's stdout and stderr on two pipes read here.
 *
 * A run goes through these stages, each undone by the ones after it on
 * every path (success, error, cancel):
 *   1. find the runtime on PATH, open the rootfs, resolve the user (user.c);
 *   2. create the working directory when missing (kept, as BuildKit does);
 *   3. create mount stubs: the mount points missing from the rootfs, with
 *      their missing parents, recorded in struct stubs;
 *   4. write BUNDLE/config.json;
 *   5. spawn the runtime (fork + exec, in its own session), read its output
 *      and poll spec->cancel every POLL_MS until it exits;
 *   6. `RUNTIME delete --force ID` once the runtime is gone, whatever the outcome;
 *   7. remove the stubs that are still empty, newest first, restoring the
 *      parent folder's times; remove config.json and the runtime's log.
 *
 * Invariants:
 *   - Nothing here leaves the rootfs: every path in it is resolved with
 *     openat2(RESOLVE_IN_ROOT) from an O_PATH fd of the rootfs, and only
 *     single names are created or removed, relative to an opened parent.
 *   - Every fd is opened close-on-exec; the only fds a child gets are the
 *     three it is given as stdin, stdout and stderr.
 *   - No state outside the call: concurrent runs (distinct ids and
 *     bundles) share nothing but the runtime's own state folder.
 *   - A child is only ever reaped by its pid, never with waitpid(-1).
 *
 * The runtime runs in its own session (setsid), so a terminal's ^C reaches
 * the builder only, and gets SIGKILL when the thread that started it dies
 * (PR_SET_PDEATHSIG), as BuildKit's runc executor does.
 *
 * A runtime that fails to start the container exits non-zero like a failing
 * process; the two are told apart by its log: an "error" entry there means
 * the runtime failed (-EIO, or -EOPNOTSUPP for crun on a hybrid cgroup
 * layout) and its message goes into err.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "executor.h"
#include "log.h"
#include "util.h"

extern char **environ;

#define POLL_MS		 100	    /* how often spec->cancel is looked at */
#define KILL_RETRY_MS	 500	    /* `runtime kill` again while the runtime lives */
#define KILL_GROUP_MS	 3000	    /* then SIGKILL to the runtime's process group */
#define DRAIN_MS	 2000	    /* output still read after the runtime exited */
#define READ_CHUNK	 16384	    /* bytes read from a pipe per poll round */
#define RUNTIME_LOG_MAX	 (1u << 20) /* the runtime's log file, read after a failure */
#define CONTAINER_ID_MAX 1024
#define MOUNTS_MAX	 (16 + 1024) /* the defaults plus RUN --mount */
#define SYMLINK_HOPS	 40	     /* as the kernel's MAXSYMLINKS */
#define LOG_NAME	 "runtime-log.json"
#define CONFIG_NAME	 "config.json"
#define DEFAULT_PATH	 "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Docker's and containerd's default set, which BuildKit uses for RUN. */
static const char *const default_caps[] = {
	"CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",	   "CAP_FOWNER",
	"CAP_MKNOD",   "CAP_NET_RAW",	   "CAP_SETGID",	   "CAP_SETUID",
	"CAP_SETFCAP", "CAP_SETPCAP",	   "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
	"CAP_KILL",    "CAP_AUDIT_WRITE",
};

/* containerd's default spec (runc's `runc spec` plus powercap). */
static const char *const masked_paths[] = {
	"/proc/acpi",
	"/proc/asound",
	"/proc/kcore",
	"/proc/keys",
	"/proc/latency_stats",
	"/proc/timer_list",
	"/proc/timer_stats",
	"/proc/sched_debug",
	"/sys/firmware",
	"/proc/scsi",
	"/sys/devices/virtual/powercap",
};
static const char *const readonly_paths[] = {
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

static uint64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int
open_in_root(int rootfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)flags | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	long fd;
	do
		fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	return fd < 0 ? -errno : (int)fd;
}

/* Moves *fd to 3 or above so that the child's dup2() onto 0..2 cannot clobber it. */
static int
fd_above_stdio(int *fd)
{
	if (*fd >= 3)
		return 0;
	int n = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
	if (n < 0)
		return -errno;
	close(*fd);
	*fd = n;
	return 0;
}

static bool
is_crun(const char *runtime)
{
	const char *b = strrchr(runtime, '/');
	return strcmp(b ? b + 1 : runtime, "crun") == 0;
}

/* ---- the runtime binary ---- */

static int
runtime_missing(const char *runtime, struct sc_err *err)
{
	if (strcmp(runtime, "runc") == 0 || strcmp(runtime, "crun") == 0)
		return sc_err_set(
			err, -ENOENT,
			"runtime '%s' not found on PATH; install it with 'apt-get install %s'",
			runtime, runtime);
	return sc_err_set(err, -ENOENT,
			  "runtime '%s' not found; install it, or use '--runtime runc' (apt-get "
			  "install runc)",
			  runtime);
}

static bool
is_executable(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* The runtime's path: as given when it holds a '/', else the first match on PATH. */
static int
find_runtime(const char *runtime, char **ret, struct sc_err *err)
{
	if (!*runtime)
		return sc_err_set(err, -EINVAL, "empty runtime name");
	if (strchr(runtime, '/')) {
		if (!is_executable(runtime))
			return runtime_missing(runtime, err);
		*ret = strdup(runtime);
		return *ret ? 0 : sc_err_set(err, -ENOMEM, "out of memory");
	}
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = DEFAULT_PATH;
	for (const char *p = path; *p;) {
		const char *end = strchrnul(p, ':');
		if (end > p) {
			_cleanup_free_ char *full = NULL;
			if (asprintf(&full, "%.*s/%s", (int)(end - p), p, runtime) < 0)
				return sc_err_set(err, -ENOMEM, "out of memory");
			if (is_executable(full)) {
				*ret = TAKE_PTR(full);
				return 0;
			}
		}
		p = *end ? end + 1 : end;
	}
	return runtime_missing(runtime, err);
}

/*
 * crun's own test (libcrun cgroup.c): /sys/fs/cgroup a tmpfs with cgroup v2
 * at /sys/fs/cgroup/unified is "hybrid", which crun refuses as soon as that
 * v2 hierarchy has any controller. Reading the layout costs nothing and
 * starts no container; the runtime's own message is still mapped to the
 * same error when a run hits it (a crun that learnt hybrid mode would then
 * only be refused up front, and '--runtime runc' works on such hosts).
 */
static int
check_cgroup_layout(const char *runtime, struct sc_err *err)
{
	struct statfs sfs;
	if (statfs("/sys/fs/cgroup", &sfs) < 0 || sfs.f_type != TMPFS_MAGIC)
		return 0;
	if (statfs("/sys/fs/cgroup/unified", &sfs) < 0 || sfs.f_type != CGROUP2_SUPER_MAGIC)
		return 0;
	_cleanup_free_ char *controllers = NULL;
	size_t len = 0;
	if (sc_read_file("/sys/fs/cgroup/unified/cgroup.controllers", 4096, &controllers, &len) < 0)
		return 0;
	while (len > 0 && (controllers[len - 1] == '\n' || controllers[len - 1] == ' '))
		controllers[--len] = '\0';
	if (len == 0)
		return 0;
	return sc_err_set(
		err, -EOPNOTSUPP,
		"%s cannot run containers on this host: cgroups in hybrid mode (cgroup v2 "
		"at /sys/fs/cgroup/unified has controllers: %s); use '--runtime runc'",
		runtime, controllers);
}

int
bld_exec_runtime_check(const char *runtime, struct sc_err *err)
{
	if (!runtime)
		runtime = "runc";
	_cleanup_free_ char *path = NULL;
	int r = find_runtime(runtime, &path, err);
	if (r < 0)
		return r;
	if (is_crun(path))
		return check_cgroup_layout(runtime, err);
	return 0;
}

/* ---- child processes ---- */

/*
 * Starts path with argv in a new session, stdin/stdout/stderr on the given
 * fds. Only async-signal-safe calls happen between fork and exec; an exec
 * failure comes back through a close-on-exec pipe.
 */
static int
spawn(const char *path, char *const argv[], int fd_in, int fd_out, int fd_err, pid_t *ret_pid)
{
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0)
		return -errno;
	_cleanup_close_ int ep_read = ep[0], ep_write = ep[1];
	int r = fd_above_stdio(&ep_write);
	if (r < 0)
		return r;

	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int e;
		if (setsid() < 0)
			goto fail;
		/* Dies with the thread that started it, as BuildKit's runc does. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
			goto fail;
		if (getppid() != parent)
			_exit(127);
		if (dup2(fd_in, 0) < 0 || dup2(fd_out, 1) < 0 || dup2(fd_err, 2) < 0)
			goto fail;
		/* The container must not inherit the builder's ignored or blocked signals. */
		struct sigaction sa = {.sa_handler = SIG_DFL};
		for (int s = 1; s < NSIG; s++)
			if (s != SIGKILL && s != SIGSTOP)
				(void)sigaction(s, &sa, NULL);
		sigset_t none;
		sigemptyset(&none);
		(void)sigprocmask(SIG_SETMASK, &none, NULL);
		execve(path, argv, environ);
	fail:
		e = errno;
		(void)!write(ep_write, &e, sizeof(e));
		_exit(127);
	}

	close(TAKE_FD(ep_write));
	int child_errno = 0;
	ssize_t n = SC_RETRY_EINTR(read(ep_read, &child_errno, sizeof(child_errno)));
	if (n == (ssize_t)sizeof(child_errno)) {
		(void)SC_RETRY_EINTR(waitpid(pid, NULL, 0));
		return -(child_errno ? child_errno : EIO);
	}
	*ret_pid = pid;
	return 0;
}

static int
wait_child(pid_t pid, int *ret_status)
{
	int status;
	if (SC_RETRY_EINTR(waitpid(pid, &status, 0)) < 0)
		return -errno;
	*ret_status = status;
	return 0;
}

/* `RUNTIME kill ID KILL` or `RUNTIME delete --force ID`; its output is not wanted. */
static int
runtime_cmd(const char *path, const char *id, bool delete, int devnull)
{
	char *argv_kill[] = {(char *)path, "kill", (char *)id, "KILL", NULL};
	char *argv_delete[] = {(char *)path, "delete", "--force", (char *)id, NULL};
	pid_t pid;
	int r = spawn(path, delete ? argv_delete : argv_kill, devnull, devnull, devnull, &pid);
	if (r < 0)
		return r;
	int status;
	r = wait_child(pid, &status);
	if (r < 0)
		return r;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ESRCH;
}

/* ---- output ---- */

struct tail {
	char *line[BLD_EXEC_TAIL_LINES];
	size_t len[BLD_EXEC_TAIL_LINES];
	size_t next, count;
	bool oom;
};

static void
tail_free(struct tail *t)
{
	for (size_t i = 0; i < BLD_EXEC_TAIL_LINES; i++)
		free(t->line[i]);
	*t = (struct tail){0};
}

static void
tail_push(struct tail *t, const char *s, size_t len)
{
	char *copy = malloc(len + 1);
	if (!copy) {
		t->oom = true;
		return;
	}
	memcpy(copy, s, len);
	copy[len] = '\0';
	free(t->line[t->next]);
	t->line[t->next] = copy;
	t->len[t->next] = len;
	t->next = (t->next + 1) % BLD_EXEC_TAIL_LINES;
	if (t->count < BLD_EXEC_TAIL_LINES)
		t->count++;
}

/* The lines kept, oldest first, '\n'-separated (no trailing newline). */
static char *
tail_join(const struct tail *t)
{
	size_t total = 1, first = (t->next + BLD_EXEC_TAIL_LINES - t->count) % BLD_EXEC_TAIL_LINES;
	for (size_t i = 0; i < t->count; i++)
		total += t->len[(first + i) % BLD_EXEC_TAIL_LINES] + 1;
	char *s = malloc(total), *p = s;
	if (!s)
		return NULL;
	for (size_t i = 0; i < t->count; i++) {
		size_t k = (first + i) % BLD_EXEC_TAIL_LINES;
		if (i > 0)
			*p++ = '\n';
		memcpy(p, t->line[k], t->len[k]);
		p += t->len[k];
	}
	*p = '\0';
	return s;
}

struct stream {
	int fd; /* read end, -EBADF once at end of file */
	int no; /* 1 or 2 */
	size_t len;
	char buf[BLD_EXEC_LINE_MAX];
};

struct output {
	const struct bld_exec_spec *spec;
	struct stream st[2];
	struct tail tail;
};

static void
emit(struct output *o, struct stream *s)
{
	if (o->spec->output)
		o->spec->output(o->spec->output_arg, s->no, s->buf, s->len);
	tail_push(&o->tail, s->buf, s->len);
	s->len = 0;
}

/* Splits data into lines; a line reaching BLD_EXEC_LINE_MAX is passed on in pieces. */
static void
feed(struct output *o, struct stream *s, const char *data, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(data, '\n', n);
		size_t take = nl ? (size_t)(nl - data) : n;
		size_t room = sizeof(s->buf) - s->len;
		if (take > room) {
			memcpy(s->buf + s->len, data, room);
			s->len += room;
			emit(o, s);
			data += room;
			n -= room;
			continue;
		}
		memcpy(s->buf + s->len, data, take);
		s->len += take;
		data += take;
		n -= take;
		if (nl) {
			emit(o, s);
			data++;
			n--;
		}
	}
}

/* One read from s; at end of file the last partial line goes out and the fd closes. */
static void
read_stream(struct output *o, struct stream *s)
{
	char chunk[READ_CHUNK];
	ssize_t n = read(s->fd, chunk, sizeof(chunk));
	if (n > 0) {
		feed(o, s, chunk, (size_t)n);
		return;
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	/* End of file, or an error that will not go away. */
	if (s->len > 0)
		emit(o, s);
	close(s->fd);
	s->fd = -EBADF;
}

/* ---- mounts and their stubs ---- */

struct mnt {
	char *target; /* cleaned, absolute (heap) */
	const char *type;
	const char *source;
	const char *opts[8];
	size_t nopts;
	bool file_stub; /* a missing target is made as an empty file, not a folder */
};

struct mnts {
	struct mnt *v;
	size_t n;
};

static void
mnts_free(struct mnts *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].target);
	free(m->v);
	*m = (struct mnts){0};
}

/*
 * Lexically cleans an absolute path: no empty, "." or ".." components
 * ("/.." stays "/"), no trailing slash. -EINVAL unless absolute.
 */
static int
clean_path(const char *in, char **ret)
{
	if (in[0] != '/')
		return -EINVAL;
	size_t len = strlen(in);
	char *out = malloc(len + 2);
	if (!out)
		return -ENOMEM;
	size_t o = 0;
	for (const char *p = in; *p;) {
		while (*p == '/')
			p++;
		const char *e = strchrnul(p, '/');
		size_t cl = (size_t)(e - p);
		if (cl == 0 || (cl == 1 && p[0] == '.')) {
			/* nothing */
		} else if (cl == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else {
			out[o++] = '/';
			memcpy(out + o, p, cl);
			o += cl;
		}
		p = e;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	*ret = out;
	return 0;
}

static int
mnt_add(struct mnts *m, const char *target, const char *type, const char *source,
	const char *const *opts, size_t nopts, bool file_stub, struct sc_err *err)
{
	assert(nopts <= ARRAY_SIZE(m->v[0].opts));
	if (m->n == MOUNTS_MAX)
		return sc_err_set(err, -E2BIG, "more than %u mounts", MOUNTS_MAX);
	struct mnt *v = reallocarray(m->v, m->n + 1, sizeof(*v));
	if (!v)
		return sc_err_set(err, -ENOMEM, "out of memory");
	m->v = v;
	struct mnt *x = &m->v[m->n];
	*x = (struct mnt){.type = type, .source = source, .nopts = nopts, .file_stub = file_stub};
	int r = clean_path(target, &x->target);
	if (r == -EINVAL)
		return sc_err_set(err, r, "mount target '%s' is not an absolute path", target);
	if (r < 0)
		return sc_err_set(err, r, "out of memory");
	if (strcmp(x->target, "/") == 0) {
		free(x->target);
		return sc_err_set(err, -EINVAL, "cannot mount over '/'");
	}
	for (size_t i = 0; i < nopts; i++)
		x->opts[i] = opts[i];
	m->n++;
	return 0;
}

/* The container's mounts: containerd's defaults as BuildKit keeps them, then spec->mounts. */
static int
build_mounts(const struct bld_exec_spec *spec, bool host_net, struct mnts *m, struct sc_err *err)
{
	static const char *const proc_o[] = {"nosuid", "noexec", "nodev"};
	static const char *const dev_o[] = {"nosuid", "strictatime", "mode=755", "size=65536k"};
	static const char *const pts_o[] = {"nosuid",	     "noexec",	  "newinstance",
					    "ptmxmode=0666", "mode=0620", "gid=5"};
	static const char *const shm_o[] = {"nosuid", "noexec", "nodev", "mode=1777",
					    "size=65536k"};
	static const char *const mq_o[] = {"nosuid", "noexec", "nodev"};
	static const char *const sys_o[] = {"nosuid", "noexec", "nodev", "ro"};
	static const char *const cg_o[] = {"nosuid", "noexec", "nodev", "relatime", "ro"};
	static const char *const robind_o[] = {"rbind", "ro"};
	static const char *const bind_o[] = {"rbind", "rw"};
	static const char *const tmpfs_o[] = {"nosuid", "nodev", "strictatime", "mode=1777"};
	static const char *const tmpfs_ro_o[] = {"nosuid", "nodev", "strictatime", "mode=1777",
						 "ro"};
	int r;
#define ADD(t, ty, src, o, f)                                                                      \
	do {                                                                                       \
		r = mnt_add(m, t, ty, src, o, ARRAY_SIZE(o), f, err);                              \
		if (r < 0)                                                                         \
			return r;                                                                  \
	} while (0)
	ADD("/proc", "proc", "proc", proc_o, false);
	ADD("/dev", "tmpfs", "tmpfs", dev_o, false);
	ADD("/dev/pts", "devpts", "devpts", pts_o, false);
	ADD("/dev/shm", "tmpfs", "shm", shm_o, false);
	ADD("/dev/mqueue", "mqueue", "mqueue", mq_o, false);
	ADD("/sys", "sysfs", "sysfs", sys_o, false);
	ADD("/sys/fs/cgroup", "cgroup", "cgroup", cg_o, false);
	if (host_net) {
		/* The host's files as they are: the container shares its network. */
		if (access("/etc/resolv.conf", F_OK) == 0)
			ADD("/etc/resolv.conf", "bind", "/etc/resolv.conf", robind_o, true);
		if (access("/etc/hosts", F_OK) == 0)
			ADD("/etc/hosts", "bind", "/etc/hosts", robind_o, true);
	}
#undef ADD

	for (size_t i = 0; i < spec->nmounts; i++) {
		const struct bld_exec_mount *u = &spec->mounts[i];
		assert(u->type && u->target);
		if (strcmp(u->type, "bind") == 0) {
			assert(u->source);
			struct stat st;
			if (stat(u->source, &st) < 0)
				return sc_err_setsys(err, -errno, "mount source '%s'", u->source);
			r = mnt_add(m, u->target, "bind", u->source,
				    u->readonly ? robind_o : bind_o, 2, !S_ISDIR(st.st_mode), err);
		} else if (strcmp(u->type, "tmpfs") == 0) {
			r = mnt_add(m, u->target, "tmpfs", "tmpfs",
				    u->readonly ? tmpfs_ro_o : tmpfs_o,
				    u->readonly ? ARRAY_SIZE(tmpfs_ro_o) : ARRAY_SIZE(tmpfs_o),
				    false, err);
		} else {
			return sc_err_set(err, -EINVAL,
					  "mount type '%s' not supported (bind or tmpfs)", u->type);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* True when path is below (not equal to) dir; both cleaned. */
static bool
path_below(const char *path, const char *dir)
{
	size_t l = strlen(dir);
	if (strcmp(dir, "/") == 0)
		return strcmp(path, "/") != 0;
	return strncmp(path, dir, l) == 0 && path[l] == '/';
}

struct stub {
	char *path; /* cleaned, in the container */
	bool dir;
	struct timespec parent_atime, parent_mtime; /* before it was made */
	struct timespec parent_mtime_after;	    /* right after */
};

struct stubs {
	struct stub *v;
	size_t n;
};

static bool
ts_eq(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* "/a/b" -> parent "/a", name "b", in a copy the caller frees. */
static int
split_path(const char *path, char **ret_parent, const char **ret_name)
{
	char *parent = strdup(path);
	if (!parent)
		return -ENOMEM;
	char *slash = strrchr(parent, '/');
	*ret_name = path + (slash - parent) + 1;
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	*ret_parent = parent;
	return 0;
}

/*
 * Makes the missing components of path (absolute) below the rootfs:
 * folders with dmode and uid:gid, the last one an empty 0644 file when
 * last_file. A dangling symlink on the way is followed inside the rootfs,
 * as the runtime would (a /etc/resolv.conf pointing to a missing
 * ../run/...), at most SYMLINK_HOPS times. With stubs, each entry made is
 * recorded there (with its parent's times) to be removed after the run,
 * and a path through a non-folder is left alone for the runtime (return
 * 0); without (the working directory), that is an error.
 */
static int
make_path_once(int rootfd, const char *path, bool last_file, mode_t dmode, uid_t uid, gid_t gid,
	       struct stubs *stubs, const char *what, char **ret_next, struct sc_err *err)
{
	_cleanup_free_ char *buf = strdup(path);
	if (!buf)
		return sc_err_set(err, -ENOMEM, "out of memory");
	size_t len = strlen(buf);
	for (size_t end = 1; end <= len; end++) {
		if (end < len && buf[end] != '/')
			continue;
		bool last = end == len;
		char saved = buf[end];
		buf[end] = '\0';

		_cleanup_close_ int fd = open_in_root(rootfd, buf, O_PATH);
		if (fd >= 0) {
			struct stat st;
			if (fstat(fd, &st) < 0)
				return sc_err_setsys(err, -errno, "%s '%s': cannot stat '%s'", what,
						     path, buf);
			if ((!last || !stubs) && !S_ISDIR(st.st_mode)) {
				if (stubs)
					return 0;
				return sc_err_set(err, -ENOTDIR, "%s '%s': '%s' is not a folder",
						  what, path, buf);
			}
			buf[end] = saved;
			continue;
		}
		if (fd != -ENOENT)
			return sc_err_setsys(err, fd, "%s '%s': cannot open '%s'", what, path, buf);

		/* Missing, or a dangling symlink: look at the name in its parent. */
		_cleanup_free_ char *parent = NULL;
		const char *name;
		if (split_path(buf, &parent, &name) < 0)
			return sc_err_set(err, -ENOMEM, "out of memory");
		_cleanup_close_ int pfd = open_in_root(rootfd, parent, O_RDONLY | O_DIRECTORY);
		if (pfd < 0)
			return sc_err_setsys(err, pfd, "%s '%s': cannot open '%s'", what, path,
					     parent);
		struct stat st, pst;
		if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			if (!S_ISLNK(st.st_mode))
				return 0; /* appeared meanwhile: nothing is running in there */
			char target[PATH_MAX];
			ssize_t tl = readlinkat(pfd, name, target, sizeof(target) - 1);
			if (tl <= 0 || (size_t)tl >= sizeof(target) - 1)
				return stubs ? 0
					     : sc_err_set(err, -ENAMETOOLONG,
							  "%s '%s': cannot follow '%s'", what, path,
							  buf);
			target[tl] = '\0';
			/* The link's target, then what is left of path after it. */
			bool abs = target[0] == '/';
			char *next;
			if (asprintf(&next, "%s%s%s%s", abs ? "" : parent, abs ? "" : "/", target,
				     path + end) < 0)
				return sc_err_set(err, -ENOMEM, "out of memory");
			*ret_next = next;
			return 0;
		}
		if (fstat(pfd, &pst) < 0)
			return sc_err_setsys(err, -errno, "%s '%s': cannot stat '%s'", what, path,
					     parent);

		_cleanup_close_ int nfd = -EBADF;
		bool as_file = last && last_file;
		if (as_file)
			nfd = openat(pfd, name,
				     O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		else if (mkdirat(pfd, name, dmode) == 0)
			nfd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd < 0)
			return sc_err_setsys(err, -errno, "%s '%s': cannot create '%s'", what, path,
					     buf);
		if (stubs) {
			struct stub *v = reallocarray(stubs->v, stubs->n + 1, sizeof(*v));
			if (!v)
				return sc_err_set(err, -ENOMEM, "out of memory");
			stubs->v = v;
			char *copy = strdup(buf);
			if (!copy)
				return sc_err_set(err, -ENOMEM, "out of memory");
			struct stat after;
			if (fstat(pfd, &after) < 0)
				after = pst;
			stubs->v[stubs->n++] = (struct stub){
				.path = copy,
				.dir = !as_file,
				.parent_atime = pst.st_atim,
				.parent_mtime = pst.st_mtim,
				.parent_mtime_after = after.st_mtim,
			};
		}
		/* The exact mode whatever the umask, and the owner asked for. */
		if (fchmod(nfd, as_file ? 0644 : dmode) < 0 || fchown(nfd, uid, gid) < 0)
			return sc_err_setsys(err, -errno,
					     "%s '%s': cannot set owner and mode of '%s'", what,
					     path, buf);
		buf[end] = saved;
	}
	return 0;
}

static int
make_path(int rootfd, const char *path, bool last_file, mode_t dmode, uid_t uid, gid_t gid,
	  struct stubs *stubs, const char *what, struct sc_err *err)
{
	_cleanup_free_ char *cur = strdup(path);
	if (!cur)
		return sc_err_set(err, -ENOMEM, "out of memory");
	for (int hops = 0;; hops++) {
		_cleanup_free_ char *next = NULL;
		int r = make_path_once(rootfd, cur, last_file, dmode, uid, gid, stubs, what, &next,
				       err);
		if (r < 0 || !next)
			return r;
		if (hops == SYMLINK_HOPS)
			return stubs ? 0
				     : sc_err_set(err, -ELOOP, "%s '%s': too many symbolic links",
						  what, path);
		free(cur);
		cur = TAKE_PTR(next);
	}
}

/*
 * Removes the stubs still empty, newest first (children before parents).
 * The parent's times go back to what they were before the stub was made
 * when nothing else touched the parent since, else to what they were just
 * before the removal (as BuildKit does), so that a stub leaves no trace in
 * the layer's folder times.
 */
static void
remove_stubs(int rootfd, struct stubs *stubs)
{
	for (size_t i = stubs->n; i-- > 0;) {
		struct stub *s = &stubs->v[i];
		_cleanup_free_ char *parent = NULL;
		const char *name;
		if (split_path(s->path, &parent, &name) < 0)
			continue;
		_cleanup_close_ int pfd = open_in_root(rootfd, parent, O_RDONLY | O_DIRECTORY);
		if (pfd < 0)
			continue;
		struct stat st, pst;
		if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || fstat(pfd, &pst) < 0)
			continue;
		if (s->dir ? !S_ISDIR(st.st_mode) : (!S_ISREG(st.st_mode) || st.st_size != 0))
			continue;
		if (unlinkat(pfd, name, s->dir ? AT_REMOVEDIR : 0) < 0) {
			sc_debug("mount stub '%s' kept: %s", s->path, sc_strerror(errno));
			continue;
		}
		struct timespec times[2] = {{.tv_nsec = UTIME_OMIT}, pst.st_mtim};
		if (ts_eq(pst.st_mtim, s->parent_mtime_after)) {
			times[0] = s->parent_atime;
			times[1] = s->parent_mtime;
		}
		(void)futimens(pfd, times);
	}
}

static void
stubs_free(struct stubs *stubs)
{
	for (size_t i = 0; i < stubs->n; i++)
		free(stubs->v[i].path);
	free(stubs->v);
	*stubs = (struct stubs){0};
}

static int
make_stubs(int rootfd, const struct mnts *m, struct stubs *stubs, struct sc_err *err)
{
	for (size_t i = 0; i < m->n; i++) {
		/* Below another mount it is made by the runtime in that mount, not in the rootfs.
		 */
		bool nested = false;
		for (size_t j = 0; j < i && !nested; j++)
			nested = path_below(m->v[i].target, m->v[j].target) ||
				 strcmp(m->v[i].target, m->v[j].target) == 0;
		if (nested)
			continue;
		int r = make_path(rootfd, m->v[i].target, m->v[i].file_stub, 0755, 0, 0, stubs,
				  "mount point", err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- config.json ---- */

/* json-c building with a sticky out-of-memory flag, checked once at the end. */
struct jb {
	bool oom;
};

static struct json_object *
jstr(struct jb *b, const char *s)
{
	struct json_object *o = json_object_new_string(s);
	if (!o)
		b->oom = true;
	return o;
}

static struct json_object *
jobj(struct jb *b)
{
	struct json_object *o = json_object_new_object();
	if (!o)
		b->oom = true;
	return o;
}

static struct json_object *
jarr(struct jb *b)
{
	struct json_object *o = json_object_new_array();
	if (!o)
		b->oom = true;
	return o;
}

static void
jset(struct jb *b, struct json_object *obj, const char *key, struct json_object *val)
{
	if (!obj || !val || json_object_object_add(obj, key, val) < 0) {
		json_object_put(val);
		b->oom = true;
	}
}

static void
jpush(struct jb *b, struct json_object *arr, struct json_object *val)
{
	if (!arr || !val || json_object_array_add(arr, val) < 0) {
		json_object_put(val);
		b->oom = true;
	}
}

static struct json_object *
jstrings(struct jb *b, const char *const *v, size_t n)
{
	struct json_object *a = jarr(b);
	for (size_t i = 0; a && i < n; i++)
		jpush(b, a, jstr(b, v[i]));
	return a;
}

static struct json_object *
jint(struct jb *b, int64_t v)
{
	struct json_object *o = json_object_new_int64(v);
	if (!o)
		b->oom = true;
	return o;
}

static struct json_object *
jbool(struct jb *b, bool v)
{
	struct json_object *o = json_object_new_boolean(v);
	if (!o)
		b->oom = true;
	return o;
}

struct run_user {
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	size_t ngroups;
};

static struct json_object *
build_config(const struct bld_exec_spec *spec, const char *cwd, const struct run_user *u,
	     const struct mnts *m, bool host_net)
{
	struct jb b = {0};
	struct json_object *root = jobj(&b);
	if (!root)
		return NULL;
	jset(&b, root, "ociVersion", jstr(&b, "1.0.2"));

	struct json_object *proc = jobj(&b);
	jset(&b, root, "process", proc);
	jset(&b, proc, "terminal", jbool(&b, false));
	struct json_object *user = jobj(&b);
	jset(&b, proc, "user", user);
	jset(&b, user, "uid", jint(&b, u->uid));
	jset(&b, user, "gid", jint(&b, u->gid));
	if (u->ngroups > 0) {
		struct json_object *g = jarr(&b);
		jset(&b, user, "additionalGids", g);
		for (size_t i = 0; g && i < u->ngroups; i++)
			jpush(&b, g, jint(&b, u->groups[i]));
	}
	jset(&b, proc, "args", jstrings(&b, spec->argv, spec->argc));
	jset(&b, proc, "env", jstrings(&b, spec->env, spec->nenv));
	jset(&b, proc, "cwd", jstr(&b, cwd));
	/*
	 * Bounding, effective and permitted as containerd sets them for
	 * BuildKit; none inheritable or ambient (CVE-2022-24769), so a
	 * non-root user ends with no capability after its execve.
	 */
	struct json_object *caps = jobj(&b);
	jset(&b, proc, "capabilities", caps);
	jset(&b, caps, "bounding", jstrings(&b, default_caps, ARRAY_SIZE(default_caps)));
	jset(&b, caps, "effective", jstrings(&b, default_caps, ARRAY_SIZE(default_caps)));
	jset(&b, caps, "permitted", jstrings(&b, default_caps, ARRAY_SIZE(default_caps)));
	/* BuildKit's WithNewPrivileges: setuid programs (sudo, su) keep working. */
	jset(&b, proc, "noNewPrivileges", jbool(&b, false));
	/* No rlimits: BuildKit drops containerd's NOFILE 1024 and inherits the builder's. */

	struct json_object *rootfs = jobj(&b);
	jset(&b, root, "root", rootfs);
	jset(&b, rootfs, "path", jstr(&b, spec->rootfs));
	jset(&b, rootfs, "readonly", jbool(&b, false));
	jset(&b, root, "hostname", jstr(&b, spec->hostname ? spec->hostname : "snapctl"));

	struct json_object *mounts = jarr(&b);
	jset(&b, root, "mounts", mounts);
	for (size_t i = 0; i < m->n; i++) {
		struct json_object *x = jobj(&b);
		jpush(&b, mounts, x);
		jset(&b, x, "destination", jstr(&b, m->v[i].target));
		jset(&b, x, "type", jstr(&b, m->v[i].type));
		jset(&b, x, "source", jstr(&b, m->v[i].source));
		jset(&b, x, "options", jstrings(&b, m->v[i].opts, m->v[i].nopts));
	}

	struct json_object *linux_ = jobj(&b);
	jset(&b, root, "linux", linux_);
	struct json_object *ns = jarr(&b);
	jset(&b, linux_, "namespaces", ns);
	static const char *const ns_types[] = {"pid", "ipc", "uts", "mount", "network"};
	for (size_t i = 0; i < ARRAY_SIZE(ns_types); i++) {
		if (host_net && strcmp(ns_types[i], "network") == 0)
			continue;
		struct json_object *x = jobj(&b);
		jpush(&b, ns, x);
		jset(&b, x, "type", jstr(&b, ns_types[i]));
	}
	struct json_object *res = jobj(&b);
	jset(&b, linux_, "resources", res);
	struct json_object *devs = jarr(&b);
	jset(&b, res, "devices", devs);
	struct json_object *deny = jobj(&b);
	jpush(&b, devs, deny);
	jset(&b, deny, "allow", jbool(&b, false));
	jset(&b, deny, "access", jstr(&b, "rwm"));
	jset(&b, linux_, "maskedPaths", jstrings(&b, masked_paths, ARRAY_SIZE(masked_paths)));
	jset(&b, linux_, "readonlyPaths", jstrings(&b, readonly_paths, ARRAY_SIZE(readonly_paths)));

	if (b.oom) {
		json_object_put(root);
		return NULL;
	}
	return root;
}

static int
write_all(int fd, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, s, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
json_putp(struct json_object **o)
{
	json_object_put(*o);
}

static int
write_config(int bundlefd, const struct bld_exec_spec *spec, const char *cwd,
	     const struct run_user *u, const struct mnts *m, bool host_net, struct sc_err *err)
{
	_cleanup_(json_putp) struct json_object *cfg = build_config(spec, cwd, u, m, host_net);
	if (!cfg)
		return sc_err_set(err, -ENOMEM, "out of memory");
	const char *s = json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN |
								    JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!s)
		return sc_err_set(err, -ENOMEM, "out of memory");
	_cleanup_close_ int fd = openat(
		bundlefd, CONFIG_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return sc_err_setsys(err, -errno, "cannot write '%s/%s'", spec->bundle_dir,
				     CONFIG_NAME);
	int r = write_all(fd, s, strlen(s));
	if (r < 0)
		return sc_err_setsys(err, r, "cannot write '%s/%s'", spec->bundle_dir, CONFIG_NAME);
	return 0;
}

/* ---- the runtime's log ---- */

/* The message of the last "error" entry of the runtime's JSON log, or NULL. */
static char *
runtime_log_error(const char *log_path)
{
	_cleanup_free_ char *log = NULL;
	if (sc_read_file(log_path, RUNTIME_LOG_MAX, &log, NULL) < 0)
		return NULL;
	char *msg = NULL;
	for (char *save = NULL, *line = strtok_r(log, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		struct json_object *o = json_tokener_parse(line), *lv, *m;
		if (o && json_object_object_get_ex(o, "level", &lv) &&
		    strcmp(json_object_get_string(lv), "error") == 0 &&
		    json_object_object_get_ex(o, "msg", &m) && json_object_get_string(m)) {
			char *copy = strdup(json_object_get_string(m));
			if (copy) {
				free(msg);
				msg = copy;
			}
		}
		json_object_put(o);
	}
	return msg;
}

/* ---- the run ---- */

static bool
valid_id(const char *id)
{
	size_t len = strlen(id);
	if (len == 0 || len > CONTAINER_ID_MAX || id[0] == '-' || id[0] == '.')
		return false;
	for (const char *p = id; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= '0' && *p <= '9') && !strchr("_+-.", *p))
			return false;
	return true;
}

static bool
cancel_requested(const struct bld_exec_spec *spec)
{
	return spec->cancel && atomic_load(spec->cancel);
}

struct outcome {
	int status; /* wait status of the runtime */
	bool canceled;
};

/*
 * Runs the runtime to its end, passing its output on, and cancels it when
 * asked; the caller deletes the container afterwards in every case.
 */
static int
supervise(const struct bld_exec_spec *spec, const char *runtime_path, const char *log_path,
	  int devnull, struct output *o, struct outcome *out, struct sc_err *err)
{
	int p1[2], p2[2];
	if (pipe2(p1, O_CLOEXEC) < 0)
		return sc_err_setsys(err, -errno, "cannot create a pipe");
	_cleanup_close_ int out_w = p1[1];
	o->st[0].fd = p1[0];
	if (pipe2(p2, O_CLOEXEC) < 0)
		return sc_err_setsys(err, -errno, "cannot create a pipe");
	_cleanup_close_ int err_w = p2[1];
	o->st[1].fd = p2[0];
	int r;
	if ((r = fd_above_stdio(&o->st[0].fd)) < 0 || (r = fd_above_stdio(&o->st[1].fd)) < 0 ||
	    (r = fd_above_stdio(&out_w)) < 0 || (r = fd_above_stdio(&err_w)) < 0)
		return sc_err_setsys(err, r, "cannot move a pipe");
	for (int i = 0; i < 2; i++)
		if (fcntl(o->st[i].fd, F_SETFL, O_NONBLOCK) < 0)
			return sc_err_setsys(err, -errno, "cannot set up a pipe");

	char *argv[] = {(char *)runtime_path,
			"--log",
			(char *)log_path,
			"--log-format",
			"json",
			"run",
			"--bundle",
			(char *)spec->bundle_dir,
			(char *)spec->id,
			NULL};
	pid_t pid;
	r = spawn(runtime_path, argv, devnull, out_w, err_w, &pid);
	if (r < 0)
		return sc_err_setsys(err, r, "cannot run '%s'", runtime_path);
	close(TAKE_FD(out_w));
	close(TAKE_FD(err_w));
	sc_debug("container '%s': %s started (pid %d)", spec->id, runtime_path, (int)pid);

	bool exited = false, group_killed = false;
	uint64_t exited_at = 0, cancel_at = 0, next_kill = 0;
	out->canceled = false;
	for (;;) {
		struct pollfd pfd[2];
		struct stream *ps[2];
		nfds_t n = 0;
		for (int i = 0; i < 2; i++) {
			if (o->st[i].fd >= 0) {
				pfd[n] = (struct pollfd){.fd = o->st[i].fd, .events = POLLIN};
				ps[n++] = &o->st[i];
			}
		}
		int pr = poll(pfd, n, POLL_MS);
		if (pr < 0 && errno != EINTR)
			sc_debug("poll: %s", sc_strerror(errno)); /* only EINVAL/ENOMEM: go on */
		for (nfds_t i = 0; pr > 0 && i < n; i++)
			if (pfd[i].revents)
				read_stream(o, ps[i]);

		uint64_t now = now_ms();
		if (!exited) {
			int status;
			pid_t w = waitpid(pid, &status, WNOHANG);
			if (w == pid) {
				exited = true;
				exited_at = now;
				out->status = status;
			} else if (w < 0 && errno != EINTR) {
				/* Reaped elsewhere (SIGCHLD ignored?): nothing to wait for. */
				exited = true;
				exited_at = now;
				out->status = W_EXITCODE(255, 0);
			}
		}
		if (!out->canceled && cancel_requested(spec)) {
			out->canceled = true;
			cancel_at = next_kill = now;
			sc_debug("container '%s': canceled", spec->id);
		}
		if (out->canceled && !exited && now >= next_kill) {
			/*
			 * The container may not exist yet: kill again until the
			 * runtime is gone, then its whole process group.
			 */
			if (now - cancel_at >= KILL_GROUP_MS && !group_killed) {
				(void)kill(-pid, SIGKILL);
				group_killed = true;
			} else {
				(void)runtime_cmd(runtime_path, spec->id, false, devnull);
			}
			next_kill = now_ms() + KILL_RETRY_MS;
		}
		if (exited && o->st[0].fd < 0 && o->st[1].fd < 0)
			break;
		if (exited && now - exited_at >= DRAIN_MS)
			break; /* something outside the container holds the pipes */
	}
	for (int i = 0; i < 2; i++) {
		if (o->st[i].fd >= 0) {
			if (o->st[i].len > 0)
				emit(o, &o->st[i]);
			close(o->st[i].fd);
			o->st[i].fd = -EBADF;
		}
	}
	return 0;
}

/* What a non-zero exit of the runtime means: the process's status, or the runtime's failure. */
static int
runtime_failure(const char *runtime, const char *log_path, struct sc_err *err)
{
	_cleanup_free_ char *msg = runtime_log_error(log_path);
	if (!msg)
		return 0;
	if (strstr(msg, "hybrid mode"))
		return sc_err_set(err, -EOPNOTSUPP,
				  "%s cannot run containers on this host: %s; use "
				  "'--runtime runc'",
				  runtime, msg);
	if (strstr(msg, runtime))
		return sc_err_set(err, -EIO, "%s", msg);
	return sc_err_set(err, -EIO, "%s: %s", runtime, msg);
}

void
bld_exec_result_clear(struct bld_exec_result *r)
{
	if (!r)
		return;
	free(r->tail);
	*r = (struct bld_exec_result){0};
}

int
bld_exec_run(const struct bld_exec_spec *spec, struct bld_exec_result *ret, struct sc_err *err)
{
	assert(spec && ret);
	assert(spec->id && spec->bundle_dir && spec->rootfs && spec->argv && spec->argc > 0);
	assert(spec->env || spec->nenv == 0);
	assert(spec->mounts || spec->nmounts == 0);
	for (size_t i = 0; i < spec->argc; i++)
		assert(spec->argv[i]);
	for (size_t i = 0; i < spec->nenv; i++)
		assert(spec->env[i]);

	const char *runtime = spec->runtime ? spec->runtime : "runc";
	/* DEFAULT is the solver's to decide; here it is the safe one. */
	bool host_net = spec->network == BLD_NETWORK_HOST;
	int r;

	if (!valid_id(spec->id))
		return sc_err_set(err, -EINVAL,
				  "invalid container id '%s' (letters, digits, '_', '+', '-', '.')",
				  spec->id);
	if (spec->rootfs[0] != '/')
		return sc_err_set(err, -EINVAL, "root file system '%s' is not an absolute path",
				  spec->rootfs);
	_cleanup_free_ char *cwd = NULL;
	r = clean_path(spec->cwd ? spec->cwd : "/", &cwd);
	if (r == -EINVAL)
		return sc_err_set(err, r, "working directory '%s' is not an absolute path",
				  spec->cwd);
	if (r < 0)
		return sc_err_set(err, r, "out of memory");
	if (cancel_requested(spec))
		return sc_err_set(err, -ECANCELED, "canceled");

	_cleanup_free_ char *runtime_path = NULL;
	r = find_runtime(runtime, &runtime_path, err);
	if (r < 0)
		return r;

	_cleanup_close_ int rootfd = open(spec->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return sc_err_setsys(err, -errno, "cannot open the root file system '%s'",
				     spec->rootfs);
	_cleanup_close_ int bundlefd = open(spec->bundle_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (bundlefd < 0)
		return sc_err_setsys(err, -errno, "cannot open the bundle folder '%s'",
				     spec->bundle_dir);
	_cleanup_close_ int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		return sc_err_setsys(err, -errno, "cannot open /dev/null");
	r = fd_above_stdio(&devnull);
	if (r < 0)
		return sc_err_setsys(err, r, "cannot open /dev/null");
	_cleanup_free_ char *log_path = NULL;
	if (asprintf(&log_path, "%s/%s", spec->bundle_dir, LOG_NAME) < 0)
		return sc_err_set(err, -ENOMEM, "out of memory");

	struct run_user u = {0};
	r = bld_user_resolve(rootfd, spec->user, &u.uid, &u.gid, &u.groups, &u.ngroups, err);
	_cleanup_free_ gid_t *groups = u.groups;
	if (r < 0)
		return r;

	/* BuildKit: a missing working directory is made 0755, owned by the step's user. */
	r = make_path(rootfd, cwd, false, 0755, u.uid, u.gid, NULL, "working directory", err);
	if (r < 0)
		return r;

	struct mnts m = {0};
	struct stubs stubs = {0};
	struct output o = {.spec = spec, .st = {{.fd = -EBADF, .no = 1}, {.fd = -EBADF, .no = 2}}};
	struct outcome oc = {0};
	bool started = false;

	r = build_mounts(spec, host_net, &m, err);
	if (r < 0)
		goto out;
	r = make_stubs(rootfd, &m, &stubs, err);
	if (r < 0)
		goto out;
	(void)unlinkat(bundlefd, LOG_NAME, 0);
	r = write_config(bundlefd, spec, cwd, &u, &m, host_net, err);
	if (r < 0)
		goto out;

	started = true;
	r = supervise(spec, runtime_path, log_path, devnull, &o, &oc, err);
	/* `run` deletes its container on the way out, unless killed or failed half-way. */
	(void)runtime_cmd(runtime_path, spec->id, true, devnull);
	if (r < 0)
		goto out;

	if (oc.canceled) {
		r = sc_err_set(err, -ECANCELED, "canceled");
		goto out;
	}
	int code = WIFEXITED(oc.status)	    ? WEXITSTATUS(oc.status)
		   : WIFSIGNALED(oc.status) ? 128 + WTERMSIG(oc.status)
					    : 255;
	if (code != 0) {
		r = runtime_failure(runtime, log_path, err);
		if (r < 0)
			goto out;
	}
	if (o.tail.oom) {
		r = sc_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	char *tail = tail_join(&o.tail);
	if (!tail) {
		r = sc_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	ret->exit_code = code;
	ret->tail = tail;
	r = 0;
out:
	for (int i = 0; i < 2; i++)
		if (o.st[i].fd >= 0)
			close(o.st[i].fd);
	remove_stubs(rootfd, &stubs);
	stubs_free(&stubs);
	mnts_free(&m);
	tail_free(&o.tail);
	(void)unlinkat(bundlefd, CONFIG_NAME, 0);
	if (started)
		(void)unlinkat(bundlefd, LOG_NAME, 0);
	return r;
}
