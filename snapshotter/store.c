/*
 * Opening a store: layout, driver choice, crash cleanup and trash. The
 * snapshot lifecycle itself is in snapshot.c; the invariants are in store.h.
 */
#include "store-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "layer.h"
#include "log.h"
#include "util.h"

static const char *const store_dirs[] = {"meta",   "snapshots", "blobs", "blobs/sha256",
					 "ingest", "trash",	"tmp"};

int
snap_store_default_root(char *buf, size_t len)
{
	const char *env = getenv("SNAPCTL_ROOT");
	int n;
	if (env && *env)
		n = snprintf(buf, len, "%s", env);
	else if (geteuid() == 0)
		n = snprintf(buf, len, "/var/lib/snapctl");
	else {
		const char *xdg = getenv("XDG_DATA_HOME");
		const char *home = getenv("HOME");
		if (xdg && *xdg)
			n = snprintf(buf, len, "%s/snapctl", xdg);
		else if (home && *home)
			n = snprintf(buf, len, "%s/.local/share/snapctl", home);
		else
			return -ENOENT;
	}
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

const char *
snap_store_root(const struct snap_store *s)
{
	return s->root;
}

const char *
snap_store_driver_name(const struct snap_store *s)
{
	return s->driver->name;
}

const char *
snap_store_notice(const struct snap_store *s)
{
	return s->notice[0] ? s->notice : NULL;
}

const struct snap_driver *
snap_driver_find(const char *name)
{
	static const struct snap_driver *const drivers[] = {
		&snap_driver_overlay, &snap_driver_btrfs, &snap_driver_native};
	for (size_t i = 0; i < ARRAY_SIZE(drivers); i++)
		if (strcmp(drivers[i]->name, name) == 0)
			return drivers[i];
	return NULL;
}

struct driver_choice {
	const char *wanted; /* --driver, or NULL */
	char recorded[64];
	const struct snap_driver *chosen;
	struct snap_store *store;
	char notice[512];
};

/*
 * A new store's driver when none was asked for: btrfs on btrfs, else overlay,
 * else native. Why a better one was passed over goes into notice.
 */
static const struct snap_driver *
driver_auto(struct snap_store *s, char *notice, size_t len)
{
	struct sc_err probe_err = SC_ERR_INIT;
	if (snap_on_btrfs(s->root_fd)) {
		if (snap_driver_btrfs.probe(s, &probe_err) >= 0)
			return &snap_driver_btrfs;
		snprintf(notice, len, "btrfs subvolumes are not usable here (%s); using overlay",
			 sc_err_msg(&probe_err));
		sc_err_clear(&probe_err);
	}
	if (snap_driver_overlay.probe(s, &probe_err) >= 0)
		return &snap_driver_overlay;
	snprintf(notice, len, "overlay is not usable here (%s); using the native driver",
		 sc_err_msg(&probe_err));
	sc_err_clear(&probe_err);
	return &snap_driver_native;
}

static int
choose_driver(struct snap_txn *t, void *arg)
{
	struct driver_choice *c = arg;
	MDB_val v;
	int r = snap_txn_get(t, SNAP_DB_META, "driver", 6, &v);
	if (r == 0) {
		snprintf(c->recorded, sizeof(c->recorded), "%.*s", (int)v.mv_size,
			 (char *)v.mv_data);
		const char *recorded = c->recorded;
		c->chosen = snap_driver_find(recorded);
		if (!c->chosen)
			return sc_err_set(
				t->err, -EINVAL,
				"store uses driver '%s', which this snapctl does not have",
				recorded);
		if (c->wanted && strcmp(c->wanted, recorded) != 0)
			return sc_err_set(t->err, -EINVAL,
					  "store '%s' uses driver '%s', not '%s'; drop --driver or "
					  "use another --root",
					  c->store->root, recorded, c->wanted);
		return 0;
	}
	if (r != -ENOENT)
		return r;

	/* A new store: choose now, once. */
	if (c->wanted) {
		c->chosen = snap_driver_find(c->wanted);
		if (!c->chosen)
			return sc_err_set(t->err, -EINVAL,
					  "unknown driver '%s'; use overlay, btrfs or native",
					  c->wanted);
		r = c->chosen->probe(c->store, t->err);
		if (r < 0)
			return r;
	} else {
		c->chosen = driver_auto(c->store, c->notice, sizeof(c->notice));
	}
	return snap_txn_put(t, SNAP_DB_META, "driver", 6, c->chosen->name, strlen(c->chosen->name),
			    0);
}

int
snap_store_open(const struct snap_store_opts *opts, struct snap_store **ret, struct sc_err *err)
{
	char root[PATH_MAX];
	int r;
	if (opts && opts->root) {
		if (!*opts->root)
			return sc_err_set(err, -EINVAL, "store root is empty; pass --root DIR");
		if (!realpath(opts->root, root)) {
			/* Not there yet: create it below, then resolve. */
			r = sc_mkdir_p(opts->root, 0711);
			if (r < 0)
				return sc_err_set(
					err, r,
					"cannot create store '%s': %s; pass --root with a "
					"writable folder",
					opts->root, sc_strerror(r));
			if (!realpath(opts->root, root))
				return sc_err_setsys(err, -errno, "cannot resolve store '%s'",
						     opts->root);
		}
	} else {
		char def[PATH_MAX];
		r = snap_store_default_root(def, sizeof(def));
		if (r < 0)
			return sc_err_set(err, r, "no default store; pass --root DIR");
		r = sc_mkdir_p(def, 0711);
		if (r < 0)
			return sc_err_set(err, r,
					  "cannot create store '%s': %s; pass --root DIR or set "
					  "SNAPCTL_ROOT to a writable folder",
					  def, sc_strerror(r));
		if (!realpath(def, root))
			return sc_err_setsys(err, -errno, "cannot resolve store '%s'", def);
	}

	struct snap_store *s = calloc(1, sizeof(*s));
	if (!s)
		return sc_err_set(err, -ENOMEM, "out of memory");
	s->root_fd = -EBADF;
	s->root = strdup(root);
	s->pid = getpid();
	if (!s->root || sc_proc_starttime(s->pid, &s->starttime) < 0) {
		snap_store_close(s);
		return sc_err_set(err, -ENOMEM, "out of memory");
	}

	for (size_t i = 0; i < ARRAY_SIZE(store_dirs); i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", root, store_dirs[i]);
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			r = -errno;
			snap_store_close(s);
			return sc_err_set(err, r,
					  "cannot create '%s': %s; the store needs a writable "
					  "folder (pass --root DIR)",
					  path, sc_strerror(r));
		}
	}
	/* mkdir() above can succeed on a read-only bind of an existing store: check. */
	if (access(root, W_OK) < 0) {
		r = -errno;
		snap_store_close(s);
		return sc_err_set(err, r, "store '%s' is not writable (%s); pass --root DIR", root,
				  sc_strerror(r));
	}

	s->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->root_fd < 0) {
		r = -errno;
		snap_store_close(s);
		return sc_err_setsys(err, r, "cannot open store '%s'", root);
	}

	char meta_dir[PATH_MAX];
	snprintf(meta_dir, sizeof(meta_dir), "%s/meta", root);
	r = snap_meta_open(meta_dir, &s->meta, err);
	if (r < 0) {
		snap_store_close(s);
		return sc_err_prefix(err, r, "store '%s'", root);
	}

	/* Known stores need no writer lock: look in a read transaction first. */
	struct driver_choice choice = {.wanted = opts ? opts->driver : NULL, .store = s};
	struct snap_txn t;
	r = snap_txn_begin_read(s->meta, &t, err);
	if (r >= 0) {
		MDB_val v;
		r = snap_txn_get(&t, SNAP_DB_META, "driver", 6, &v);
		if (r == 0)
			r = choose_driver(&t, &choice);
		else if (r == -ENOENT)
			r = 1;
		snap_txn_end(&t);
	}
	if (r == 1)
		r = snap_meta_write(s->meta, choose_driver, &choice, err);
	if (r < 0) {
		snap_store_close(s);
		return r;
	}
	s->driver = choice.chosen;
	memcpy(s->notice, choice.notice, sizeof(s->notice));
	sc_debug("store %s: driver %s", root, s->driver->name);

	if (!(opts && (opts->flags & SNAP_STORE_NO_CLEANUP))) {
		r = snap_store_cleanup(s, false, err);
		if (r < 0) {
			snap_store_close(s);
			return r;
		}
	}
	*ret = s;
	return 0;
}

struct snap_store *
snap_store_close(struct snap_store *s)
{
	if (!s)
		return NULL;
	snap_meta_close(s->meta);
	free(s->lease);
	if (s->root_fd >= 0)
		close(s->root_fd);
	free(s->root);
	free(s);
	return NULL;
}

int
snap_store_use_lease(struct snap_store *s, const char *id)
{
	char *copy = NULL;
	if (id && !(copy = strdup(id)))
		return -ENOMEM;
	free(s->lease);
	s->lease = copy;
	return 0;
}

int
snap_store_lease_txn(struct snap_store *s, struct snap_txn *t, const char *type, const char *name)
{
	return s->lease ? snap_lease_attach_txn(t, s->lease, type, name) : 0;
}

void
snap_store_set_space_hook(struct snap_store *s, snap_space_hook_fn fn, void *arg)
{
	s->space_hook = fn;
	s->space_hook_arg = arg;
}

void
snap_store_before_write(struct snap_store *s, uint64_t bytes)
{
	if (!s->space_hook || s->in_space_hook)
		return;
	s->in_space_hook = true;
	s->space_hook(s, bytes, s->space_hook_arg);
	s->in_space_hook = false;
}

int
snap_store_mktemp(struct snap_store *s, const char *what, char *path, char *rel, struct sc_err *err)
{
	/* The name carries the owner, so cleanup can tell a live build from a crashed one. */
	snprintf(rel, PATH_MAX, "tmp/%s.%d.%" PRIu64 ".%u", what, (int)s->pid, s->starttime,
		 ++s->seq);
	snprintf(path, PATH_MAX, "%s/%s", s->root, rel);
	if (mkdirat(s->root_fd, rel, 0755) < 0)
		return sc_err_setsys(err, -errno, "cannot create '%s'", path);
	return 0;
}

int
snap_store_trash(struct snap_store *s, const char *rel)
{
	char name[64], dst[PATH_MAX];
	int r = sc_random_hex(name, 8);
	if (r < 0)
		return r;
	const char *base = strrchr(rel, '/');
	snprintf(dst, sizeof(dst), "trash/%s.%s", base ? base + 1 : rel, name);
	if (renameat(s->root_fd, rel, s->root_fd, dst) == 0)
		return 0;
	if (errno == ENOENT)
		return 0;
	if (errno == EBUSY) {
		/* A mount point left by a dead process: detach it, then move it. */
		char abs[PATH_MAX];
		snprintf(abs, sizeof(abs), "%s/%s", s->root, rel);
		umount2(abs, MNT_DETACH);
		if (renameat(s->root_fd, rel, s->root_fd, dst) == 0 || errno == ENOENT)
			return 0;
	}
	return -errno;
}

int
snap_store_empty_trash(struct snap_store *s)
{
	_cleanup_close_ int fd = openat(s->root_fd, "trash", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	_cleanup_closedir_ DIR *d = fdopendir(TAKE_FD(fd));
	if (!d)
		return -errno;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (s->driver && s->driver->remove) {
			char path[PATH_MAX];
			snprintf(path, sizeof(path), "%s/trash/%s", s->root, de->d_name);
			s->driver->remove(s, path, NULL);
		}
		int r = sc_rm_rf_at(dirfd(d), de->d_name);
		if (r < 0)
			sc_debug("cannot delete trash/%s yet: %s", de->d_name, sc_strerror(r));
		else
			n++;
	}
	return n;
}

/* Collects the names of snapshot folders with no record. */
struct orphan_scan {
	uint64_t *ids;
	size_t n, cap;
};

static int
collect_orphans(struct snap_store *s, struct snap_txn *t, struct orphan_scan *o)
{
	_cleanup_close_ int fd =
		openat(s->root_fd, "snapshots", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	_cleanup_closedir_ DIR *d = fdopendir(TAKE_FD(fd));
	if (!d)
		return -errno;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *end;
		errno = 0;
		unsigned long long id = strtoull(de->d_name, &end, 10);
		bool ours = !errno && *end == '\0' && id > 0;
		if (ours) {
			uint8_t k[8];
			sc_put_be64(k, id);
			MDB_val v;
			int r = snap_txn_get(t, SNAP_DB_SNAPSHOT_IDS, k, 8, &v);
			if (r == 0)
				continue;
			if (r != -ENOENT)
				return r;
		}
		if (o->n == o->cap) {
			size_t cap = o->cap ? o->cap * 2 : 16;
			uint64_t *p = realloc(o->ids, cap * sizeof(*p));
			if (!p)
				return -ENOMEM;
			o->ids = p;
			o->cap = cap;
		}
		/* A foreign name is recorded as 0 and handled by name below. */
		o->ids[o->n++] = ours ? id : 0;
	}
	return 0;
}

/* Moves blob files no record names to trash; only under the writer lock. */
static int
trash_blob_orphans(struct snap_store *s, struct snap_txn *t)
{
	_cleanup_close_ int fd =
		openat(s->root_fd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(TAKE_FD(fd)) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char digest[80];
		snprintf(digest, sizeof(digest), "sha256:%.64s", de->d_name);
		MDB_val v;
		if (strlen(de->d_name) != 64 ||
		    snap_txn_get(t, SNAP_DB_BLOBS, digest, strlen(digest), &v) == 0)
			continue; /* named by a record, or not a name snapctl gives */
		char rel[PATH_MAX];
		snprintf(rel, sizeof(rel), "blobs/sha256/%s", de->d_name);
		sc_debug("moving %s to trash: no record (left by a crash)", rel);
		snap_store_trash(s, rel);
	}
	return t->error;
}

struct orphan_sweep {
	struct snap_store *s;
	bool blobs;	   /* also blobs/: a collection was cut short */
	uint8_t owner[12]; /* the collect.owner value that asked for it */
};

static int
trash_orphans(struct snap_txn *t, void *arg)
{
	struct orphan_sweep *sw = arg;
	struct snap_store *s = sw->s;
	struct orphan_scan o = {0};
	int r = collect_orphans(s, t, &o);
	for (size_t i = 0; r >= 0 && i < o.n; i++) {
		if (o.ids[i] == 0)
			continue; /* never delete what snapctl did not name */
		char rel[64];
		snprintf(rel, sizeof(rel), "snapshots/%" PRIu64, o.ids[i]);
		sc_debug("moving %s to trash: no record (left by a crash)", rel);
		r = snap_store_trash(s, rel);
	}
	free(o.ids);
	if (r >= 0 && sw->blobs) {
		r = trash_blob_orphans(s, t);
		/* Done for the collection that asked, unless another one has started since. */
		MDB_val v;
		if (r >= 0 &&
		    snap_txn_get(t, SNAP_DB_META, SNAP_COLLECT_OWNER_KEY,
				 strlen(SNAP_COLLECT_OWNER_KEY), &v) == 0 &&
		    v.mv_size == sizeof(sw->owner) && memcmp(v.mv_data, sw->owner, v.mv_size) == 0)
			r = snap_txn_del(t, SNAP_DB_META, SNAP_COLLECT_OWNER_KEY,
					 strlen(SNAP_COLLECT_OWNER_KEY));
	}
	return r;
}

static bool
tmp_owner_alive(const char *name)
{
	/* WHAT.PID.STARTTIME.SEQ */
	const char *p = strchr(name, '.');
	if (!p)
		return false;
	char *end;
	long pid = strtol(p + 1, &end, 10);
	if (*end != '.')
		return false;
	unsigned long long start = strtoull(end + 1, &end, 10);
	if (*end != '.')
		return false;
	return sc_proc_alive((pid_t)pid, start);
}

/* Interrupted blob commits: ingest files of dead owners that have a second link. */
struct interrupted {
	struct snap_store *s;
	char (*names)[NAME_MAX + 1];
	size_t n;
};

/*
 * A commit killed between linking its blob and committing the record leaves
 * blobs/sha256/HEX that no record names, the same file as its ingest/ name:
 * it goes. A record, or another file under that name, means it is not ours
 * to touch.
 */
static int
trash_interrupted_blobs(struct snap_txn *t, void *arg)
{
	const struct interrupted *in = arg;
	struct snap_store *s = in->s;
	for (size_t i = 0; i < in->n; i++) {
		const char *hex = strstr(in->names[i], SNAP_INGEST_DIGEST_SEP);
		hex += strlen(SNAP_INGEST_DIGEST_SEP);
		char digest[80], blob[PATH_MAX], ingest[PATH_MAX];
		snprintf(digest, sizeof(digest), "sha256:%s", hex);
		MDB_val v;
		if (!sc_digest_valid(digest) ||
		    snap_txn_get(t, SNAP_DB_BLOBS, digest, strlen(digest), &v) == 0)
			continue;
		snap_blob_rel(blob, sizeof(blob), digest);
		snprintf(ingest, sizeof(ingest), "ingest/%s", in->names[i]);
		struct stat a, b;
		if (fstatat(s->root_fd, blob, &a, AT_SYMLINK_NOFOLLOW) == 0 &&
		    fstatat(s->root_fd, ingest, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
		    a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			sc_debug("moving %s to trash: its commit was cut short", blob);
			snap_store_trash(s, blob);
		}
	}
	return t->error;
}

int
snap_store_cleanup(struct snap_store *s, bool full, struct sc_err *err)
{
	/* tmp/ and ingest/: what processes that are gone were building. */
	static const char *const owned[] = {"tmp", "ingest"};
	struct interrupted in = {.s = s};
	for (size_t i = 0; i < ARRAY_SIZE(owned); i++) {
		_cleanup_close_ int fd =
			openat(s->root_fd, owned[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		_cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(TAKE_FD(fd)) : NULL;
		struct dirent *de;
		while (d && (de = readdir(d))) {
			if (de->d_name[0] == '.' || tmp_owner_alive(de->d_name))
				continue;
			struct stat st;
			if (i == 1 && strstr(de->d_name, SNAP_INGEST_DIGEST_SEP) &&
			    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    st.st_nlink > 1) {
				/* Its blob name goes first (if it should), then this one. */
				void *p = realloc(in.names, (in.n + 1) * sizeof(*in.names));
				if (!p)
					continue;
				in.names = p;
				snprintf(in.names[in.n++], NAME_MAX + 1, "%s", de->d_name);
				continue;
			}
			char rel[PATH_MAX];
			snprintf(rel, sizeof(rel), "%s/%s", owned[i], de->d_name);
			sc_debug("moving %s to trash: its process is gone", rel);
			snap_store_trash(s, rel);
		}
	}
	if (in.n) {
		int r = snap_meta_write(s->meta, trash_interrupted_blobs, &in, err);
		for (size_t i = 0; r >= 0 && i < in.n; i++) {
			char rel[PATH_MAX];
			snprintf(rel, sizeof(rel), "ingest/%s", in.names[i]);
			snap_store_trash(s, rel);
		}
		free(in.names);
		if (r < 0)
			return sc_err_prefix(err, r, "cleaning up after a crash");
	}

	/*
	 * A collection that died between its transactions and its file
	 * deletions leaves files without records, blobs among them: its
	 * marker (collect.h) says to sweep blobs/ too, and in full.
	 */
	struct orphan_sweep sw = {.s = s};
	struct snap_txn t;
	int r = snap_txn_begin_read(s->meta, &t, err);
	if (r < 0)
		return r;
	MDB_val v;
	if (snap_txn_get(&t, SNAP_DB_META, SNAP_COLLECT_OWNER_KEY, strlen(SNAP_COLLECT_OWNER_KEY),
			 &v) == 0 &&
	    v.mv_size == sizeof(sw.owner)) {
		memcpy(sw.owner, v.mv_data, sizeof(sw.owner));
		uint32_t pid = (uint32_t)sw.owner[0] << 24 | (uint32_t)sw.owner[1] << 16 |
			       (uint32_t)sw.owner[2] << 8 | sw.owner[3];
		if (!sc_proc_alive((pid_t)pid, sc_get_be64(sw.owner + 4)))
			sw.blobs = full = true;
	}

	/*
	 * snapshots/: a folder per record means no orphans. Where directory
	 * link counts count subfolders (ext4, xfs: 2 + subfolders) that is an
	 * O(1) check; otherwise look in a read transaction first, so the common
	 * case takes no writer lock, and confirm under the lock (invariant 2).
	 */
	struct stat st;
	if (!full && fstatat(s->root_fd, "snapshots", &st, 0) == 0 && st.st_nlink >= 2 &&
	    st.st_nlink - 2 == snap_snapshot_count_txn(&t)) {
		snap_txn_end(&t);
		snap_store_empty_trash(s);
		return 0;
	}
	struct orphan_scan o = {0};
	r = collect_orphans(s, &t, &o);
	snap_txn_end(&t);
	bool any = sw.blobs;
	for (size_t i = 0; i < o.n; i++)
		any |= o.ids[i] != 0;
	free(o.ids);
	if (r < 0)
		return sc_err_setsys(err, r, "cannot scan '%s/snapshots'", s->root);
	if (full && !sw.blobs)
		sw.blobs = true; /* a full sweep (check --repair) covers blobs too */
	if (any || sw.blobs) {
		r = snap_meta_write(s->meta, trash_orphans, &sw, err);
		if (r < 0)
			return sc_err_prefix(err, r, "cleaning up after a crash");
	}

	/* trash/: empty it; whatever cannot go yet (busy mounts) waits for next time. */
	snap_store_empty_trash(s);
	return 0;
}

struct du_link {
	dev_t dev;
	ino_t ino;
	uint64_t bytes;
};

static int
du_link_cmp(const void *a, const void *b)
{
	const struct du_link *x = a, *y = b;
	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return 0;
}

int
snap_du(int at_fd, const char *path, uint64_t *ret_bytes, uint64_t *ret_inodes)
{
	/* Open directories, an iterative walk: a snapshot's folder, fs/, and a layer's depth. */
	DIR *stack[SNAP_LAYER_DEPTH_MAX + 8];
	size_t depth = 0;
	uint64_t bytes = 0, inodes = 0;
	/* Multiply-linked inodes are collected and counted once at the end. */
	struct du_link *links = NULL;
	size_t nlinks = 0, caplinks = 0;
	int r = 0;

	struct stat st;
	if (fstatat(at_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	bytes += (uint64_t)st.st_blocks * 512;
	inodes++;
	if (S_ISDIR(st.st_mode)) {
		int fd = openat(at_fd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		stack[0] = fdopendir(fd);
		if (!stack[0]) {
			close(fd);
			return -errno;
		}
		depth = 1;
	}
	while (depth > 0) {
		DIR *d = stack[depth - 1];
		struct dirent *de = readdir(d);
		if (!de) {
			closedir(d);
			depth--;
			continue;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			r = -errno;
			break;
		}
		if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
			if (nlinks == caplinks) {
				size_t cap = caplinks ? caplinks * 2 : 64;
				void *p = realloc(links, cap * sizeof(*links));
				if (!p) {
					r = -ENOMEM;
					break;
				}
				links = p;
				caplinks = cap;
			}
			links[nlinks++] = (struct du_link){st.st_dev, st.st_ino,
							   (uint64_t)st.st_blocks * 512};
			continue;
		}
		bytes += (uint64_t)st.st_blocks * 512;
		inodes++;
		if (S_ISDIR(st.st_mode)) {
			if (depth == ARRAY_SIZE(stack)) {
				r = -ELOOP;
				break;
			}
			int cfd = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd < 0) {
				r = -errno;
				break;
			}
			stack[depth] = fdopendir(cfd);
			if (!stack[depth]) {
				r = -errno;
				close(cfd);
				break;
			}
			depth++;
		}
	}
	while (depth > 0)
		closedir(stack[--depth]);
	if (r == 0 && nlinks > 0) {
		qsort(links, nlinks, sizeof(*links), du_link_cmp);
		for (size_t i = 0; i < nlinks; i++) {
			if (i > 0 && du_link_cmp(&links[i], &links[i - 1]) == 0)
				continue;
			bytes += links[i].bytes;
			inodes++;
		}
	}
	free(links);
	if (r < 0)
		return r;
	*ret_bytes = bytes;
	*ret_inodes = inodes;
	return 0;
}
