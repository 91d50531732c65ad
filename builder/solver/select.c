/*
 * What a COPY/ADD copies: its sources expanded (globs), resolved inside
 * the source root, and walked into a list of entries, filtered by the
 * context's .dockerignore and by --exclude; optionally each entry hashed.
 *
 * Visibility follows BuildKit, where the context arrives already filtered:
 *  - a path .dockerignore excludes does not exist for globs, plain paths or
 *    directory walks; a directory it excludes is walked only when an
 *    exception ('!') could match below it, and kept only when something
 *    below it is (the transfer sends the parents of what it sends);
 *  - --exclude patterns match paths relative to what is copied (inside a
 *    directory source: below it; a file source: its name), and a directory
 *    they exclude is walked only when an exception could match below it;
 *  - a glob must match at least one visible entry before --exclude is
 *    applied (BuildKit resolves wildcards first), a plain path must exist.
 * The entry list holds names and stat fields, never file content, so
 * memory grows with the number of entries only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileop-internal.h"
#include "instructions.h"

struct sel_ctx {
	const struct bld_copy_source *src;
	const struct bld_copy_op *op;
	struct bld_ignore *excl; /* --exclude, or NULL */
	struct fo_sel *s;
	bool hash;
	struct bld_hash_cache *hc;
	uint8_t *buf;
	struct sc_err *err;
	bool hidden; /* a lookup met an entry the .dockerignore hides */
	char path[FO_MAX_PATH + NAME_MAX + 2];
};

static const struct bld_ignore *
ignore_of(const struct sel_ctx *c)
{
	return c->src->context ? c->src->ignore : NULL;
}

static bool
visible(void *arg, const char *path, const struct stat *st)
{
	struct sel_ctx *c = arg;
	const struct bld_ignore *ign = ignore_of(c);
	if (!ign)
		return true;
	bool v = S_ISDIR(st->st_mode) ? bld_ignore_dir(ign, path) != BLD_IGNORE_DIR_SKIP
				      : !bld_ignore_match(ign, path);
	if (!v)
		c->hidden = true;
	return v;
}

void
fo_sel_clear(struct fo_sel *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->e[i].path);
		free(s->e[i].rel_heap);
	}
	for (size_t i = 0; i < s->nitems; i++) {
		free(s->items[i].path);
		free(s->items[i].name);
	}
	free(s->e);
	free(s->items);
	free(s->digests);
	*s = (struct fo_sel){0};
}

static int
oom(struct sel_ctx *c)
{
	return sc_err_set(c->err, -ENOMEM, "out of memory");
}

/* Room for one more entry (and its digest). */
static int
grow_entries(struct sel_ctx *c)
{
	struct fo_sel *s = c->s;
	if (s->n >= BLD_COPY_MAX_ENTRIES)
		return sc_err_set(c->err, -E2BIG,
				  "%s selects more than %u entries; copy less at once or exclude "
				  "some (.dockerignore, --exclude)",
				  fo_verb(c->op), BLD_COPY_MAX_ENTRIES);
	if (s->n < s->cap)
		return 0;
	size_t nc = s->cap ? s->cap * 2 : 256;
	struct fo_entry *e = realloc(s->e, nc * sizeof(*e));
	if (!e)
		return oom(c);
	s->e = e;
	if (c->hash) {
		char(*d)[SC_DIGEST_STR_LEN + 1] = realloc(s->digests, nc * sizeof(*d));
		if (!d)
			return oom(c);
		s->digests = d;
	}
	s->cap = nc;
	return 0;
}

static char
type_char(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG:
		return 'f';
	case S_IFDIR:
		return 'd';
	case S_IFLNK:
		return 'l';
	case S_IFCHR:
		return 'c';
	case S_IFBLK:
		return 'b';
	case S_IFIFO:
		return 'p';
	default:
		return 's';
	}
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The xattrs of name below dirfd (not followed), sorted, into h. */
static int
hash_xattrs(struct sel_ctx *c, int dirfd, const char *name, struct sc_sha256 *h)
{
	char p[64 + NAME_MAX];
	snprintf(p, sizeof(p), "/proc/self/fd/%d/%s", dirfd, name);
	ssize_t n = llistxattr(p, NULL, 0);
	if (n <= 0)
		return 0; /* none, or a file system without them */
	_cleanup_free_ char *names = malloc((size_t)n);
	if (!names)
		return oom(c);
	n = llistxattr(p, names, (size_t)n);
	if (n <= 0)
		return 0;
	size_t cnt = 0;
	for (char *q = names; q < names + n; q += strlen(q) + 1)
		cnt++;
	_cleanup_free_ char **v = calloc(cnt, sizeof(*v));
	if (!v)
		return oom(c);
	cnt = 0;
	for (char *q = names; q < names + n; q += strlen(q) + 1)
		if (strncmp(q, "trusted.overlay.", 16) != 0)
			v[cnt++] = q;
	if (cnt > 1)
		qsort(v, cnt, sizeof(*v), cmp_str);
	for (size_t i = 0; i < cnt; i++) {
		ssize_t vl = lgetxattr(p, v[i], NULL, 0);
		if (vl < 0)
			continue; /* removed since listed */
		_cleanup_free_ char *val = malloc((size_t)vl + 1);
		if (!val)
			return oom(c);
		vl = lgetxattr(p, v[i], val, (size_t)vl);
		if (vl < 0)
			continue;
		uint8_t len[4] = {(uint8_t)(vl >> 24), (uint8_t)(vl >> 16), (uint8_t)(vl >> 8),
				  (uint8_t)vl};
		sc_sha256_update(h, "x", 1);
		sc_sha256_update(h, v[i], strlen(v[i]) + 1);
		sc_sha256_update(h, len, sizeof(len));
		sc_sha256_update(h, val, (size_t)vl);
	}
	return 0;
}

/*
 * The record of one entry: what the selection hash covers for it. Owners
 * are what is copied: 0:0 for the context, the source's otherwise.
 */
static int
entry_digest(struct sel_ctx *c, int dirfd, const char *name, const struct stat *st, const char *rel,
	     char out[SC_DIGEST_STR_LEN + 1])
{
	struct sc_sha256 *h = NULL;
	if (sc_sha256_new(&h) < 0)
		return oom(c);
	char hdr[128];
	bool ctx = c->src->context;
	int n = snprintf(hdr, sizeof(hdr), "%c %04o %u %u %" PRIu64, type_char(st->st_mode),
			 (unsigned)(st->st_mode & 07777), ctx ? 0u : (unsigned)st->st_uid,
			 ctx ? 0u : (unsigned)st->st_gid,
			 S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0);
	sc_sha256_update(h, rel, strlen(rel) + 1);
	sc_sha256_update(h, hdr, (size_t)n + 1);
	int r = 0;
	if (S_ISREG(st->st_mode)) {
		char d[SC_DIGEST_STR_LEN + 1];
		r = fo_file_digest(c->hc, dirfd, name, st, c->buf, d, c->err);
		if (r >= 0)
			sc_sha256_update(h, d, sizeof(d));
	} else if (S_ISLNK(st->st_mode)) {
		char t[PATH_MAX];
		ssize_t tl = readlinkat(dirfd, name, t, sizeof(t));
		if (tl < 0)
			r = sc_err_setsys(c->err, -errno, "cannot read symlink '%s'", rel);
		else
			sc_sha256_update(h, t, (size_t)tl);
	} else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
		n = snprintf(hdr, sizeof(hdr), "%u:%u", major(st->st_rdev), minor(st->st_rdev));
		sc_sha256_update(h, hdr, (size_t)n);
	}
	if (r >= 0)
		r = hash_xattrs(c, dirfd, name, h);
	if (r >= 0)
		r = sc_sha256_final(h, out);
	sc_sha256_free(h);
	return r;
}

static int
add_entry(struct sel_ctx *c, uint32_t item, int dirfd, const char *name, const struct stat *st,
	  const char *path, size_t rel_off, const char *rel_heap, unsigned depth)
{
	int r = grow_entries(c);
	if (r < 0)
		return r;
	struct fo_entry *e = &c->s->e[c->s->n];
	*e = (struct fo_entry){
		.item = item,
		.depth = (uint16_t)depth,
		.mode = st->st_mode,
		.uid = st->st_uid,
		.gid = st->st_gid,
		.nlink = st->st_nlink,
		.size = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0,
		.dev = st->st_dev,
		.ino = st->st_ino,
	};
	e->path = strdup(path);
	if (!e->path)
		return oom(c);
	if (rel_heap) {
		e->rel_heap = strdup(rel_heap);
		if (!e->rel_heap) {
			free(e->path);
			return oom(c);
		}
		e->rel = e->rel_heap;
	} else {
		e->rel = e->path + rel_off;
	}
	if (c->hash) {
		r = entry_digest(c, dirfd, name, st, e->rel, c->s->digests[c->s->n]);
		if (r < 0) {
			free(e->path);
			free(e->rel_heap);
			return r;
		}
	}
	c->s->n++;
	return 0;
}

static void
drop_last_entry(struct fo_sel *s)
{
	s->n--;
	free(s->e[s->n].path);
	free(s->e[s->n].rel_heap);
}

/* The names in directory fd (an O_RDONLY fd, not consumed), sorted. */
static int
read_names(struct sel_ctx *c, int fd, const char *what, char ***ret, size_t *ret_n)
{
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		int e = -errno;
		if (dfd >= 0)
			close(dfd);
		return sc_err_setsys(c->err, e, "cannot read directory '%s'", what);
	}
	char **v = NULL;
	size_t n = 0, cap = 0;
	int r = 0;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 32;
			char **nv = realloc(v, nc * sizeof(*nv));
			if (!nv) {
				r = oom(c);
				break;
			}
			v = nv;
			cap = nc;
		}
		if (!(v[n] = strdup(de->d_name))) {
			r = oom(c);
			break;
		}
		n++;
	}
	if (r >= 0 && errno)
		r = sc_err_setsys(c->err, -errno, "cannot read directory '%s'", what);
	closedir(d);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return r;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_str);
	*ret = v;
	*ret_n = n;
	return 0;
}

static void
free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/*
 * How the filters see an entry: 0 left out, 1 kept, 2 kept only if
 * something below it is (a directory excluded but with exceptions below).
 */
static int
filter(const struct bld_ignore *m, const char *path, bool dir)
{
	if (!m)
		return 1;
	if (!dir)
		return bld_ignore_match(m, path) ? 0 : 1;
	switch (bld_ignore_dir(m, path)) {
	case BLD_IGNORE_DIR_SKIP:
		return 0;
	case BLD_IGNORE_DIR_DESCEND:
		return 2;
	default:
		return 1;
	}
}

/*
 * Asks the kernel to start reading the folder's files that will be hashed
 * (those no cache knows), so their reads overlap instead of each waiting
 * for the disk in turn. Advice only: failures are ignored. st[i] is
 * names[i]'s stat, st_nlink 0 when it could not be read.
 */
static void
prefetch(struct sel_ctx *c, int fd, char **names, const struct stat *st, size_t nn)
{
	for (size_t i = 0; i < nn; i++) {
		if (!st[i].st_nlink || !S_ISREG(st[i].st_mode) || st[i].st_size == 0 ||
		    fo_file_known(c->hc, &st[i]))
			continue;
		int f = openat(fd, names[i], O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
		if (f < 0)
			continue;
		(void)posix_fadvise(f, 0, 0, POSIX_FADV_WILLNEED);
		close(f);
	}
}

/*
 * Walks directory fd (O_RDONLY) whose path below the root is c->path[0,
 * plen); entries' rel start at rel_off. *ret_dirty: something was left out.
 */
static int
walk(struct sel_ctx *c, uint32_t item, int fd, size_t plen, size_t rel_off, unsigned depth,
     bool *ret_dirty)
{
	char **names = NULL;
	size_t nn = 0;
	c->path[plen] = '\0';
	int r = read_names(c, fd, plen ? c->path : "/", &names, &nn);
	if (r < 0)
		return r;
	/* Each entry is stat'ed once, here: prefetch and the walk use it. */
	struct stat *sts = calloc(nn ? nn : 1, sizeof(*sts));
	if (!sts) {
		free_names(names, nn);
		return oom(c);
	}
	for (size_t i = 0; i < nn; i++) {
		if (fstatat(fd, names[i], &sts[i], AT_SYMLINK_NOFOLLOW) == 0)
			continue;
		if (errno != ENOENT) {
			r = sc_err_setsys(c->err, -errno, "cannot stat '%s'", names[i]);
			break;
		}
		sts[i].st_nlink = 0; /* gone since listed */
	}
	if (r >= 0 && c->hash)
		prefetch(c, fd, names, sts, nn);
	for (size_t i = 0; i < nn && r >= 0; i++) {
		const char *name = names[i];
		size_t nl = strlen(name), len = plen + (plen ? 1 : 0) + nl;
		if (len > FO_MAX_PATH) {
			c->path[plen] = '\0';
			r = sc_err_set(c->err, -ENAMETOOLONG, "'%.200s/%s...': path too long",
				       c->path, name);
			break;
		}
		const struct stat st = sts[i];
		if (!st.st_nlink)
			continue; /* gone since listed */
		if (plen)
			c->path[plen] = '/';
		memcpy(c->path + plen + (plen ? 1 : 0), name, nl + 1);
		bool dir = S_ISDIR(st.st_mode);
		int fi = filter(ignore_of(c), c->path, dir);
		int fe = fi ? filter(c->excl, c->path + rel_off, dir) : 0;
		if (!fi || !fe) {
			*ret_dirty = true;
			continue;
		}
		r = add_entry(c, item, fd, name, &st, c->path, rel_off, NULL, depth + 1);
		if (r < 0 || !dir)
			continue;
		if (depth + 1 >= FO_MAX_DEPTH) {
			r = sc_err_set(c->err, -ELOOP,
				       "'%.200s': directories nested deeper than %u", c->path,
				       FO_MAX_DEPTH);
			break;
		}
		int cfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cfd < 0) {
			r = sc_err_setsys(c->err, -errno, "cannot open directory '%s'", c->path);
			break;
		}
		size_t idx = c->s->n - 1;
		bool dirty = fi == 2 || fe == 2;
		r = walk(c, item, cfd, len, rel_off, depth + 1, &dirty);
		close(cfd);
		if (r < 0)
			break;
		c->s->e[idx].dirty = dirty;
		if (dirty)
			*ret_dirty = true;
		if ((fi == 2 || fe == 2) && c->s->n == idx + 1)
			drop_last_entry(c->s); /* excluded, and nothing below it is kept */
	}
	free(sts);
	free_names(names, nn);
	return r;
}

static int
grow_items(struct sel_ctx *c)
{
	struct fo_sel *s = c->s;
	if (s->nitems < s->cap_items)
		return 0;
	size_t nc = s->cap_items ? s->cap_items * 2 : 8;
	struct fo_item *v = realloc(s->items, nc * sizeof(*v));
	if (!v)
		return oom(c);
	s->items = v;
	s->cap_items = nc;
	return 0;
}

/*
 * Adds the source at path (followed if a symlink) copied under name.
 * Returns 1 added, 2 left out by --exclude, 0 not there (hidden, or a
 * directory the .dockerignore empties), -errno.
 */
static int
add_item(struct sel_ctx *c, const char *path, const char *name, const char *pattern)
{
	struct fo_path p;
	int r = fo_resolve(c->src->root_dirfd, path, FO_FOLLOW_LAST, 0, 0,
			   ignore_of(c) ? visible : NULL, c, &p);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		char what[FO_MAX_PATH + 2];
		snprintf(what, sizeof(what), "%s", pattern);
		return fo_resolve_error(c->err, r, what);
	}
	bool dir = S_ISDIR(p.st.st_mode);
	if (!dir && c->excl && bld_ignore_match(c->excl, name)) {
		fo_path_clear(&p);
		return 2;
	}
	r = grow_items(c);
	if (r < 0) {
		fo_path_clear(&p);
		return r;
	}
	struct fo_sel *s = c->s;
	uint32_t idx = (uint32_t)s->nitems;
	struct fo_item *it = &s->items[idx];
	*it = (struct fo_item){.pattern = pattern, .dir = dir, .first = s->n};
	it->path = TAKE_PTR(p.path);
	it->name = strdup(name);
	s->nitems++;
	if (!it->name) {
		fo_path_clear(&p);
		return oom(c);
	}
	if (!dir) {
		/* p.name points into the path the item took over: still valid here. */
		r = add_entry(c, idx, p.dirfd, p.name, &p.st, it->path, 0, name, 1);
		fo_path_clear(&p);
		if (r < 0)
			return r;
		s->items[idx].n = s->n - s->items[idx].first;
		return 1;
	}
	int fd = openat(p.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fo_path_clear(&p);
	if (fd < 0)
		return sc_err_setsys(c->err, -errno, "cannot open directory '%s'", pattern);
	size_t plen = strlen(it->path);
	memcpy(c->path, it->path, plen + 1);
	bool dirty = false;
	r = walk(c, idx, fd, plen, plen ? plen + 1 : 0, 0, &dirty);
	close(fd);
	if (r < 0)
		return r;
	it = &s->items[idx];
	it->n = s->n - it->first;
	/* A directory the .dockerignore excludes is there only with something kept below. */
	if (it->n == 0 && ignore_of(c) && *it->path &&
	    bld_ignore_dir(ignore_of(c), it->path) != BLD_IGNORE_DIR_INCLUDE) {
		c->hidden = true;
		free(it->path);
		free(it->name);
		s->nitems--;
		return 0;
	}
	return 1;
}

static int
not_found(struct sel_ctx *c, const char *pattern)
{
	if (c->src->context)
		return sc_err_set(c->err, -ENOENT, "%s failed: '%s' not found in build context%s",
				  fo_verb(c->op), pattern,
				  c->hidden ? " (it is excluded by .dockerignore)" : "");
	return sc_err_set(c->err, -ENOENT, "%s failed: '%s' not found", fo_verb(c->op), pattern);
}

/*
 * Matches comps[0..ncomp) below directory dirfd (O_PATH), whose path below
 * the root is c->path[0, plen). *count: matches found.
 */
static int
glob_dir(struct sel_ctx *c, int dirfd, size_t plen, char **comps, size_t ncomp, const char *pattern,
	 size_t *count)
{
	/* add_item() and deeper calls reuse c->path: keep this directory's own. */
	_cleanup_free_ char *dirpath = strndup(c->path, plen);
	if (!dirpath)
		return oom(c);
	char **names = NULL;
	size_t nn = 0;
	int r = read_names(c, dirfd, plen ? dirpath : "/", &names, &nn);
	if (r < 0)
		return r;
	for (size_t i = 0; i < nn && r >= 0; i++) {
		const char *name = names[i];
		int m = fo_glob_match(comps[0], name);
		if (m < 0) {
			r = sc_err_set(c->err, -EINVAL,
				       "%s failed: '%s' is not a valid pattern (Go filepath.Match "
				       "syntax)",
				       fo_verb(c->op), pattern);
			break;
		}
		if (!m)
			continue;
		size_t nl = strlen(name), len = plen + (plen ? 1 : 0) + nl;
		if (len > FO_MAX_PATH)
			continue;
		struct stat st;
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone since listed */
		memcpy(c->path, dirpath, plen);
		if (plen)
			c->path[plen] = '/';
		memcpy(c->path + plen + (plen ? 1 : 0), name, nl + 1);
		if (!visible(c, c->path, &st))
			continue;
		if (ncomp > 1) {
			/* filepath.Walk does not enter symlinks: neither do globs. */
			if (!S_ISDIR(st.st_mode))
				continue;
			int cfd =
				openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd < 0)
				continue;
			r = glob_dir(c, cfd, len, comps + 1, ncomp - 1, pattern, count);
			close(cfd);
			continue;
		}
		_cleanup_free_ char *mp = strdup(c->path);
		if (!mp) {
			r = oom(c);
			break;
		}
		bool was_hidden = c->hidden;
		c->hidden = false;
		r = add_item(c, mp, name, pattern);
		if (r > 0)
			(*count)++;
		else if (r == 0 && S_ISLNK(st.st_mode) && !c->hidden)
			r = sc_err_set(c->err, -ENOENT,
				       "%s failed: '%s' is a symlink to nothing in the %s",
				       fo_verb(c->op), mp,
				       c->src->context ? "build context" : "source");
		c->hidden = c->hidden || was_hidden;
	}
	free_names(names, nn);
	return r < 0 ? r : 0;
}

static int
expand_source(struct sel_ctx *c, const char *pattern)
{
	_cleanup_free_ char *clean = fo_clean(pattern);
	if (!clean)
		return oom(c);
	c->hidden = false;
	/* Components, split in place. */
	size_t ncomp = 0, cap = 1;
	for (const char *q = clean; *q; q++)
		cap += *q == '/';
	_cleanup_free_ char **comps = calloc(cap, sizeof(*comps));
	if (!comps)
		return oom(c);
	_cleanup_free_ char *split = strdup(clean);
	if (!split)
		return oom(c);
	for (char *q = split; *q;) {
		comps[ncomp++] = q;
		char *sl = strchr(q, '/');
		if (!sl)
			break;
		*sl = '\0';
		q = sl + 1;
	}
	size_t w = 0;
	while (w < ncomp && !fo_glob_has_meta(comps[w]))
		w++;
	if (w == ncomp) {
		const char *name = ncomp ? comps[ncomp - 1] : "";
		int r = add_item(c, clean, name, pattern);
		if (r < 0)
			return r;
		return r == 0 ? not_found(c, pattern) : 0;
	}
	c->s->globbed = true;
	/* The part before the first wildcard resolves like a plain path. */
	_cleanup_free_ char *prefix = strdup(clean);
	if (!prefix)
		return oom(c);
	size_t pl = 0;
	for (size_t i = 0; i < w; i++)
		pl += strlen(comps[i]) + (i ? 1 : 0);
	prefix[pl] = '\0';
	struct fo_path p;
	int r = fo_resolve(c->src->root_dirfd, prefix, FO_FOLLOW_LAST, 0, 0,
			   ignore_of(c) ? visible : NULL, c, &p);
	if (r == -ENOENT || r == -ENOTDIR)
		return not_found(c, pattern);
	if (r < 0)
		return fo_resolve_error(c->err, r, pattern);
	if (!S_ISDIR(p.st.st_mode)) {
		fo_path_clear(&p);
		return not_found(c, pattern);
	}
	size_t plen = strlen(p.path);
	memcpy(c->path, p.path, plen + 1);
	size_t count = 0;
	r = glob_dir(c, p.fd, plen, comps + w, ncomp - w, pattern, &count);
	fo_path_clear(&p);
	if (r < 0)
		return r;
	return count == 0 ? not_found(c, pattern) : 0;
}

int
fo_sel_build(const struct bld_copy_source *src, const struct bld_copy_op *op, bool hash,
	     struct bld_hash_cache *hc, struct fo_sel *ret, struct sc_err *err)
{
	*ret = (struct fo_sel){0};
	for (size_t i = 0; i < op->nsrcs; i++) {
		if (bld_source_is_git(op->srcs[i]))
			return sc_err_set(err, -EOPNOTSUPP,
					  "%s from a git repository is not supported yet ('%s')",
					  fo_verb(op), op->srcs[i]);
		if (bld_source_is_url(op->srcs[i]))
			return sc_err_set(err, -EOPNOTSUPP,
					  "ADD from a URL is not supported yet ('%s'); download it "
					  "in a RUN step instead",
					  op->srcs[i]);
	}
	struct sel_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return sc_err_set(err, -ENOMEM, "out of memory");
	*c = (struct sel_ctx){.src = src, .op = op, .s = ret, .hash = hash, .hc = hc, .err = err};
	int r = 0;
	if (op->nexcludes) {
		r = bld_ignore_new_patterns(op->excludes, op->nexcludes, &c->excl, err);
		if (r < 0)
			r = sc_err_prefix(err, r, "%s --exclude", fo_verb(op));
	}
	if (r >= 0 && hash && !(c->buf = malloc(FO_READ_BUF)))
		r = oom(c);
	for (size_t i = 0; i < op->nsrcs && r >= 0; i++)
		r = expand_source(c, op->srcs[i]);
	if (r >= 0) {
		for (size_t i = 0; i < ret->n; i++)
			if (S_ISREG(ret->e[i].mode))
				ret->bytes += ret->e[i].size;
	}
	bld_ignore_free(c->excl);
	free(c->buf);
	free(c);
	if (r < 0)
		fo_sel_clear(ret);
	return r;
}

/* Path order with '/' before every other byte: a directory, then what is in it. */
static int
path_cmp(const char *a, const char *b)
{
	for (;; a++, b++) {
		int ca = *a == '/' ? 1 : *a ? (unsigned char)*a + 1 : 0;
		int cb = *b == '/' ? 1 : *b ? (unsigned char)*b + 1 : 0;
		if (ca != cb || !ca)
			return ca - cb;
	}
}

static int
cmp_files(const void *a, const void *b)
{
	const struct bld_file_digest *x = a, *y = b;
	int r = path_cmp(x->path, y->path);
	return r ? r : strcmp(x->digest, y->digest);
}

void
bld_copy_selection_clear(struct bld_copy_selection *sel)
{
	if (!sel)
		return;
	for (size_t i = 0; i < sel->nfiles; i++)
		free(sel->files[i].path);
	free(sel->files);
	*sel = (struct bld_copy_selection){0};
}

int
bld_copy_select(const struct bld_copy_source *src, const struct bld_copy_op *op,
		struct bld_hash_cache *hc, struct bld_copy_selection *ret, struct sc_err *err)
{
	*ret = (struct bld_copy_selection){0};
	struct fo_sel s;
	int r = fo_sel_build(src, op, true, hc, &s, err);
	if (r < 0)
		return r;
	struct sc_sha256 *h = NULL;
	struct bld_file_digest *files = NULL;
	if (sc_sha256_new(&h) < 0 || (s.n && !(files = calloc(s.n, sizeof(*files))))) {
		r = sc_err_set(err, -ENOMEM, "out of memory");
		goto out;
	}
	static const char tag[] = "snapctl copy selection v1\n";
	sc_sha256_update(h, tag, sizeof(tag) - 1);
	char line[96];
	for (size_t i = 0; i < s.nitems; i++) {
		const struct fo_item *it = &s.items[i];
		int n = snprintf(line, sizeof(line), "item %zu %s %zu\n", i,
				 it->dir ? "dir" : "file", it->n);
		sc_sha256_update(h, line, (size_t)n);
		for (size_t j = it->first; j < it->first + it->n; j++) {
			sc_sha256_update(h, s.digests[j], SC_DIGEST_STR_LEN);
			sc_sha256_update(h, "\n", 1);
		}
	}
	for (size_t i = 0; i < op->ninline; i++) {
		const struct bld_inline_source *in = &op->inline_srcs[i];
		char d[SC_DIGEST_STR_LEN + 1];
		if (sc_sha256_buf(in->data, strlen(in->data), d) < 0) {
			r = sc_err_set(err, -ENOMEM, "out of memory");
			goto out;
		}
		sc_sha256_update(h, "inline ", 7);
		sc_sha256_update(h, in->name, strlen(in->name) + 1);
		sc_sha256_update(h, d, SC_DIGEST_STR_LEN);
		sc_sha256_update(h, "\n", 1);
	}
	r = sc_sha256_final(h, ret->digest);
	if (r < 0) {
		r = sc_err_set(err, r, "cannot hash the selection");
		goto out;
	}
	for (size_t i = 0; i < s.n; i++) {
		files[i].path = TAKE_PTR(s.e[i].path);
		memcpy(files[i].digest, s.digests[i], SC_DIGEST_STR_LEN + 1);
	}
	if (s.n > 1)
		qsort(files, s.n, sizeof(*files), cmp_files);
	ret->files = TAKE_PTR(files);
	ret->nfiles = s.n;
	ret->bytes = s.bytes;
	r = 0;
out:
	sc_sha256_free(h);
	free(files);
	fo_sel_clear(&s);
	return r;
}
