/*
 * COPY/ADD file operations: BuildKit's source and destination rules, owners
 * and modes, .dockerignore and --exclude, heredocs, ADD of archives (and a
 * hostile one), the selection hash, and bld_mkdir_p staying in its root.
 * Each test works in its own context and rootfs folders under the TAP temp
 * folder; owner cases need root and skip otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dockerignore.h"
#include "fileop.h"
#include "plan.h"
#include "tap.h"
#include "util.h"

struct env {
	char ctx[PATH_MAX];
	char root[PATH_MAX];
	int ctx_fd;
	int root_fd;
	struct bld_ignore *ign;
};

static void
env_new(struct env *e)
{
	static int n;
	n++;
	*e = (struct env){0};
	snprintf(e->ctx, sizeof(e->ctx), "%s/t%d/ctx", tap_tmpdir(), n);
	snprintf(e->root, sizeof(e->root), "%s/t%d/root", tap_tmpdir(), n);
	ASSERT_OK(sc_mkdir_p(e->ctx, 0755));
	ASSERT_OK(sc_mkdir_p(e->root, 0755));
	e->ctx_fd = open(e->ctx, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	e->root_fd = open(e->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_TRUE(e->ctx_fd >= 0 && e->root_fd >= 0);
}

static void
env_done(struct env *e)
{
	close(e->ctx_fd);
	close(e->root_fd);
	bld_ignore_free(e->ign);
}

static const char *
pathf(char *buf, const char *dir, const char *rel)
{
	snprintf(buf, PATH_MAX, "%s/%s", dir, rel);
	return buf;
}

/* Writes dir/rel (parents made) with content and mode. */
static void
put(const char *dir, const char *rel, const char *content, mode_t mode)
{
	char p[PATH_MAX];
	pathf(p, dir, rel);
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", p);
	*strrchr(parent, '/') = '\0';
	ASSERT_OK(sc_mkdir_p(parent, 0755));
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ASSERT_TRUE(fd >= 0);
	ASSERT_EQ(write(fd, content, strlen(content)), (long long)strlen(content));
	close(fd);
	ASSERT_OK(chmod(p, mode));
}

static void
mkd(const char *dir, const char *rel, mode_t mode)
{
	char p[PATH_MAX];
	ASSERT_OK(sc_mkdir_p(pathf(p, dir, rel), 0755));
	ASSERT_OK(chmod(p, mode));
}

static void
lnk(const char *dir, const char *rel, const char *target)
{
	char p[PATH_MAX];
	ASSERT_OK(symlink(target, pathf(p, dir, rel)));
}

/* Content of dir/rel, or NULL when it cannot be read. */
static const char *
slurp(const char *dir, const char *rel)
{
	static char buf[8][4096];
	static int k;
	char p[PATH_MAX];
	int fd = open(pathf(p, dir, rel), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	char *b = buf[k++ % 8];
	ssize_t n = read(fd, b, 4095);
	close(fd);
	if (n < 0)
		return NULL;
	b[n] = '\0';
	return b;
}

static bool
exists(const char *dir, const char *rel)
{
	char p[PATH_MAX];
	struct stat st;
	return lstat(pathf(p, dir, rel), &st) == 0;
}

static struct stat
lst(const char *dir, const char *rel)
{
	char p[PATH_MAX];
	struct stat st = {0};
	if (lstat(pathf(p, dir, rel), &st) < 0)
		tap_fail(__FILE__, __LINE__, "'%s' missing", p);
	return st;
}

#define MODE(dir, rel) ((unsigned)(lst(dir, rel).st_mode & 07777))

struct cp {
	const char *srcs[8]; /* up to the first NULL */
	const char *dest;
	const char *workdir;
	const char *chown, *chmod;
	bool add;
	bool from; /* the source is another stage's rootfs, not the context */
	const char *excl[4];
	const struct bld_inline_source *inl;
	size_t ninl;
};

static size_t
count(const char *const *v, size_t max)
{
	size_t n = 0;
	while (n < max && v[n])
		n++;
	return n;
}

static struct bld_copy_op
op_of(const struct cp *c)
{
	return (struct bld_copy_op){
		.srcs = c->srcs,
		.nsrcs = count(c->srcs, 8),
		.inline_srcs = c->inl,
		.ninline = c->ninl,
		.dest = c->dest,
		.workdir = c->workdir ? c->workdir : "/",
		.chown = c->chown,
		.chmod = c->chmod,
		.add = c->add,
		.excludes = c->excl,
		.nexcludes = count(c->excl, 4),
	};
}

static struct bld_copy_source
src_of(const struct env *e, const struct cp *c)
{
	return (struct bld_copy_source){
		.root_dirfd = e->ctx_fd, .ignore = c->from ? NULL : e->ign, .context = !c->from};
}

static int
copy(struct env *e, const struct cp *c, struct sc_err *err)
{
	struct bld_copy_op op = op_of(c);
	struct bld_copy_source src = src_of(e, c);
	sc_err_clear(err);
	return bld_copy_apply(&src, &op, e->root_fd, err);
}

#define COPY_OK(e, ...)                                                                            \
	do {                                                                                       \
		struct sc_err _err = SC_ERR_INIT;                                                  \
		if (copy((e), &(struct cp){__VA_ARGS__}, &_err) < 0)                               \
			tap_fail(__FILE__, __LINE__, "copy failed: %s", sc_err_msg(&_err));        \
	} while (0)

/* The selection hash of a copy, into out. */
static int
select_digest(struct env *e, const struct cp *c, struct bld_hash_cache *hc,
	      char out[SC_DIGEST_STR_LEN + 1], struct sc_err *err)
{
	struct bld_copy_op op = op_of(c);
	struct bld_copy_source src = src_of(e, c);
	struct bld_copy_selection sel;
	sc_err_clear(err);
	int r = bld_copy_select(&src, &op, hc, &sel, err);
	if (r >= 0) {
		memcpy(out, sel.digest, SC_DIGEST_STR_LEN + 1);
		bld_copy_selection_clear(&sel);
	}
	return r;
}

static void
ignore(struct env *e, const char *text)
{
	struct sc_err err = SC_ERR_INIT;
	if (bld_ignore_new(text, strlen(text), ".dockerignore", &e->ign, &err) < 0)
		tap_fail(__FILE__, __LINE__, "%s", sc_err_msg(&err));
}

static void
sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		tap_fail(__FILE__, __LINE__, "command failed: %s", cmd);
}

TEST(directory_source_copies_its_contents)
{
	struct env e;
	env_new(&e);
	put(e.ctx, "dir/a.txt", "A", 0644);
	put(e.ctx, "dir/sub/b.txt", "B", 0600);
	mkd(e.ctx, "dir/empty", 0750);
	COPY_OK(&e, .srcs = {"dir"}, .dest = "/dst");
	ASSERT_STREQ(slurp(e.root, "dst/a.txt"), "A");
	ASSERT_STREQ(slurp(e.root, "dst/sub/b.txt"), "B");
	ASSERT_EQ(MODE(e.root, "dst/sub/b.txt"), 0600);
	ASSERT_EQ(MODE(e.root, "dst/empty"), 0750);
	ASSERT_FALSE(exists(e.root, "dst/dir"));
	/* The destination folder made for it is 0755, whatever the source folder's mode. */
	ASSERT_EQ(MODE(e.root, "dst"), 0755);

	/* Into an existing folder: merged, what was there stays. */
	put(e.root, "m/keep.txt", "K", 0644);
	COPY_OK(&e, .srcs = {"dir/"}, .dest = "/m");
	ASSERT_STREQ(slurp(e.root, "m/keep.txt"), "K");
	ASSERT_STREQ(slurp(e.root, "m/sub/b.txt"), "B");

	/* Again over the copy: files are replaced. */
	put(e.ctx, "dir/a.txt", "A2", 0644);
	COPY_OK(&e, .srcs = {"dir"}, .dest = "/dst");
	ASSERT_STREQ(slurp(e.root, "dst/a.txt"), "A2");
	env_done(&e);
}

TEST(file_destination_rules)
{
	struct env e;
	env_new(&e);
	put(e.ctx, "file.txt", "F", 0640);
	/* Trailing slash: a folder, made. */
	COPY_OK(&e, .srcs = {"file.txt"}, .dest = "/out/");
	ASSERT_STREQ(slurp(e.root, "out/file.txt"), "F");
	ASSERT_EQ(MODE(e.root, "out/file.txt"), 0640);
	ASSERT_EQ(MODE(e.root, "out"), 0755);
	/* No slash: exactly that path, parents made. */
	COPY_OK(&e, .srcs = {"file.txt"}, .dest = "/a/b/f");
	ASSERT_STREQ(slurp(e.root, "a/b/f"), "F");
	ASSERT_TRUE(S_ISREG(lst(e.root, "a/b/f").st_mode));
	/* No slash, but an existing folder: into it. */
	mkd(e.root, "existing", 0755);
	COPY_OK(&e, .srcs = {"file.txt"}, .dest = "/existing");
	ASSERT_STREQ(slurp(e.root, "existing/file.txt"), "F");
	/* A symlink to a folder counts as the folder (followed inside the rootfs). */
	lnk(e.root, "tolink", "/existing");
	put(e.ctx, "g.txt", "G", 0644);
	COPY_OK(&e, .srcs = {"g.txt"}, .dest = "/tolink");
	ASSERT_STREQ(slurp(e.root, "existing/g.txt"), "G");
	ASSERT_TRUE(S_ISLNK(lst(e.root, "tolink").st_mode));
	/* An existing file is replaced. */
	put(e.root, "repl", "old", 0600);
	COPY_OK(&e, .srcs = {"file.txt"}, .dest = "/repl");
	ASSERT_STREQ(slurp(e.root, "repl"), "F");
	/* Several sources: the destination is a folder even without a slash. */
	COPY_OK(&e, .srcs = {"file.txt", "g.txt"}, .dest = "/multi");
	ASSERT_STREQ(slurp(e.root, "multi/file.txt"), "F");
	ASSERT_STREQ(slurp(e.root, "multi/g.txt"), "G");
	/* A file where the destination holds a folder of that name fails. */
	mkd(e.root, "d2/file.txt", 0755);
	struct sc_err err = SC_ERR_INIT;
	ASSERT_ERRNO(copy(&e, &(struct cp){.srcs = {"file.txt"}, .dest = "/d2/"}, &err), -EISDIR);
	/* A destination below a file fails. */
	ASSERT_ERRNO(copy(&e, &(struct cp){.srcs = {"file.txt"}, .dest = "/repl/x/"}, &err),
		     -ENOTDIR);
	env_done(&e);
}

TEST(relative_destination_is_against_workdir)
{
	struct env e;
	env_new(&e);
	put(e.ctx, "file.txt", "F", 0644);
	put(e.ctx, "src/x.c", "X", 0644);
	COPY_OK(&e, .srcs = {"file.txt"}, .dest = ".", .workdir = "/app");
	ASSERT_STREQ(slurp(e.root, "app/file.txt"), "F");
	COPY_OK(&e, .srcs = {"file.txt"}, .dest = "rel/", .workdir = "/app");
	ASSERT_STREQ(slurp(e.root, "app/rel/file.txt"), "F");
	COPY_OK(&e, .srcs = {"file.txt"}, .dest = "named", .workdir = "/app");
	ASSERT_STREQ(slurp(e.root, "app/named"), "F");
	COPY_OK(&e, .srcs = {"src"}, .dest = "../up/", .workdir = "/app/deep");
	ASSERT_STREQ(slurp(e.root, "app/up/x.c"), "X");
	/* Sources are relative to the context whatever their form. */
	COPY_OK(&e, .srcs = {"/src/../file.txt"}, .dest = "/abs");
	ASSERT_STREQ(slurp(e.root, "abs"), "F");
	COPY_OK(&e, .srcs = {"../../file.txt"}, .dest = "/clamped");
	ASSERT_STREQ(slurp(e.root, "clamped"), "F");
	env_done(&e);
}

TEST(globs_and_missing_sources)
{
	struct env e;
	env_new(&e);
	put(e.ctx, "a1.txt", "1", 0644);
	put(e.ctx, "a2.txt", "2", 0644);
	put(e.ctx, "b.txt", "b", 0644);
	put(e.ctx, "dir/c.txt", "c", 0644);
	put(e.ctx, "dir2/c.txt", "c2", 0644);
	put(e.ctx, "[x].txt", "bracket", 0644);
	/* A glob makes the destination a folder. */
	COPY_OK(&e, .srcs = {"a*.txt"}, .dest = "/g");
	ASSERT_STREQ(slurp(e.root, "g/a1.txt"), "1");
	ASSERT_STREQ(slurp(e.root, "g/a2.txt"), "2");
	ASSERT_FALSE(exists(e.root, "g/b.txt"));
	COPY_OK(&e, .srcs = {"a?.txt"}, .dest = "/q/");
	ASSERT_TRUE(exists(e.root, "q/a1.txt") && exists(e.root, "q/a2.txt"));
	COPY_OK(&e, .srcs = {"[ab]1.txt"}, .dest = "/c/");
	ASSERT_TRUE(exists(e.root, "c/a1.txt") && !exists(e.root, "c/a2.txt"));
	COPY_OK(&e, .srcs = {"[^a]*.txt"}, .dest = "/n/");
	ASSERT_TRUE(exists(e.root, "n/b.txt") && !exists(e.root, "n/a1.txt"));
	/* Per component: '*' never crosses '/'. */
	COPY_OK(&e, .srcs = {"*/c.txt"}, .dest = "/h/");
	ASSERT_TRUE(exists(e.root, "h/c.txt"));
	ASSERT_FALSE(exists(e.root, "h/dir"));
	/* In a glob, '\\' escapes; a class can hold '['. A path without wildcards is literal. */
	COPY_OK(&e, .srcs = {"\\[x\\].tx?"}, .dest = "/esc/");
	ASSERT_STREQ(slurp(e.root, "esc/[x].txt"), "bracket");
	COPY_OK(&e, .srcs = {"[[]x].txt"}, .dest = "/esc2/");
	ASSERT_STREQ(slurp(e.root, "esc2/[x].txt"), "bracket");

	struct sc_err err = SC_ERR_INIT;
	ASSERT_ERRNO(copy(&e, &(struct cp){.srcs = {"nomatch*"}, .dest = "/x/"}, &err), -ENOENT);
	ASSERT_STREQ(err.msg, "COPY failed: 'nomatch*' not found in build context");
	ASSERT_ERRNO(copy(&e, &(struct cp){.srcs = {"missing.txt"}, .dest = "/x/"}, &err), -ENOENT);
	ASSERT_STREQ(err.msg, "COPY failed: 'missing.txt' not found in build context");
	ASSERT_ERRNO(copy(&e, &(struct cp){.srcs = {"dir/zzz/*"}, .dest = "/x/"}, &err), -ENOENT);
	ASSERT_ERRNO(copy(&e, &(struct cp){.srcs = {"[a-"}, .dest = "/x/"}, &err), -EINVAL);
	ASSERT_TRUE(strstr(err.msg, "not a valid pattern") != NULL);
	/* Other stages: "not found", the caller names the stage. */
	ASSERT_ERRNO(copy(&e,
			  &(struct cp){.srcs = {"nope"}, .dest = "/x/", .from = true, .add = true},
			  &err),
		     -ENOENT);
	ASSERT_STREQ(err.msg, "ADD failed: 'nope' not found");
	ASSERT_FALSE(exists(e.root, "x"));
	/* URLs are not fetched yet. */
	ASSERT_ERRNO(copy(&e,
			  &(struct cp){.srcs = {"https://example.com/a.tar.gz"},
				       .dest = "/x/",
				       .add = true},
			  &err),
		     -EOPNOTSUPP);
	ASSERT_TRUE(strstr(err.msg, "ADD from a URL is not supported yet") != NULL);
	env_done(&e);
}

TEST(symlinks)
{
	struct env e;
	env_new(&e);
	put(e.ctx, "target.txt", "T", 0644);
	lnk(e.ctx, "link", "target.txt");
	mkd(e.ctx, "dir", 0755);
	lnk(e.ctx, "dir/l2", "../target.txt");
	lnk(e.ctx, "dir/abs", "/etc/passwd");
	lnk(e.ctx, "dirlink", "dir");
	lnk(e.ctx, "escape", "/../../../../../../etc/passwd");
	/* Inside a copied folder, symlinks stay symlinks, targets untouched. */
	COPY_OK(&e, .srcs = {"dir"}, .dest = "/d");
	char t[256] = {0};
	char p[PATH_MAX];
	ASSERT_TRUE(S_ISLNK(lst(e.root, "d/l2").st_mode));
	ASSERT_TRUE(readlink(pathf(p, e.root, "d/l2"), t, sizeof(t) - 1) > 0);
	ASSERT_STREQ(t, "../target.txt");
	memset(t, 0, sizeof(t));
	ASSERT_TRUE(readlink(pathf(p, e.root, "d/abs"), t, sizeof(t) - 1) > 0);
	ASSERT_STREQ(t, "/etc/passwd");
	/* A source that is itself a symlink is followed (BuildKit's FollowSymlinks). */
	COPY_OK(&e, .srcs = {"link"}, .dest = "/x");
	ASSERT_TRUE(S_ISREG(lst(e.root, "x").st_mode));
	ASSERT_STREQ(slurp(e.root, "x"), "T");
	COPY_OK(&e, .srcs = {"link"}, .dest = "/y/");
	ASSERT_STREQ(slurp(e.root, "y/link"), "T"); /* named as the source, not the target */
	COPY_OK(&e, .srcs = {"dirlink"}, .dest = "/z");
	ASSERT_TRUE(S_ISLNK(lst(e.root, "z/l2").st_mode));
	/* Symlinks resolve inside the context: this is the context's /etc/passwd. */
	struct sc_err err = SC_ERR_INIT;
	ASSERT_ERRNO(copy(&e, &(struct cp){.srcs = {"escape"}, .dest = "/e"}, &err), -ENOENT);
	ASSERT_FALSE(exists(e.root, "e"));
	put(e.ctx, "etc/passwd", "context passwd", 0644);
	COPY_OK(&e, .srcs = {"escape"}, .dest = "/e");
	ASSERT_STREQ(slurp(e.root, "e"), "context passwd");
	env_done(&e);
}

TEST(dockerignore_hides_paths)
{
	struct env e;
	env_new(&e);
	put(e.ctx, "a.log", "log", 0644);
	put(e.ctx, "b.txt", "b", 0644);
	put(e.ctx, "secret/x", "x", 0644);
	put(e.ctx, "secret/keep.txt", "keep", 0644);
	put(e.ctx, "node_modules/m/index.js", "m", 0644);
	ignore(&e, "*.log\nsecret\n!secret/keep.txt\nnode_modules\n");
	COPY_OK(&e, .srcs = {"."}, .dest = "/c");
	ASSERT_TRUE(exists(e.root, "c/b.txt"));
	ASSERT_FALSE(exists(e.root, "c/a.log"));
	ASSERT_FALSE(exists(e.root, "c/secret/x"));
	ASSERT_STREQ(slurp(e.root, "c/secret/keep.txt"), "keep");
	ASSERT_FALSE(exists(e.root, "c/node_modules"));
	struct sc_err err = SC_ERR_INIT;
	ASSERT_ERRNO(copy(&e, &(struct cp){.srcs = {"a.log"}, .dest = "/z"}, &err), -ENOENT);
	ASSERT_STREQ(err.msg, "COPY failed: 'a.log' not found in build context (it is excluded "
			      "by .dockerignore)");
	ASSERT_ERRNO(copy(&e, &(struct cp){.srcs = {"*.log"}, .dest = "/z/"}, &err), -ENOENT);
	ASSERT_ERRNO(copy(&e, &(struct cp){.srcs = {"node_modules/m"}, .dest = "/z/"}, &err),
		     -ENOENT);
	COPY_OK(&e, .srcs = {"secret"}, .dest = "/s");
	ASSERT_TRUE(exists(e.root, "s/keep.txt"));
	ASSERT_FALSE(exists(e.root, "s/x"));
	/* --from sources are not filtered by the context's .dockerignore. */
	COPY_OK(&e, .srcs = {"a.log"}, .dest = "/fromstage", .from = true);
	ASSERT_STREQ(slurp(e.root, "fromstage"), "log");
	env_done(&e);
}

TEST(exclude_flag)
{
	struct env e;
	env_new(&e);
	put(e.ctx, "app/main.c", "m", 0644);
	put(e.ctx, "app/README.md", "r", 0644);
	put(e.ctx, "app/docs/x.md", "x", 0644);
	put(e.ctx, "app/tmp/cache", "c", 0644);
	put(e.ctx, "homer.txt", "h", 0644);
	put(e.ctx, "home.md", "hm", 0644);
	COPY_OK(&e, .srcs = {"app"}, .dest = "/e", .excl = {"*.md", "tmp"});
	ASSERT_TRUE(exists(e.root, "e/main.c"));
	ASSERT_FALSE(exists(e.root, "e/README.md"));
	ASSERT_TRUE(exists(e.root, "e/docs/x.md")); /* '*' stays in its folder */
	ASSERT_FALSE(exists(e.root, "e/tmp"));
	COPY_OK(&e, .srcs = {"app"}, .dest = "/e2", .excl = {"**/*.md"});
	ASSERT_FALSE(exists(e.root, "e2/docs/x.md"));
	ASSERT_TRUE(exists(e.root, "e2/docs"));
	/* The documented example: files starting with "hom" but no .txt ones. */
	COPY_OK(&e, .srcs = {"hom*"}, .dest = "/mydir/", .excl = {"*.txt"});
	ASSERT_TRUE(exists(e.root, "mydir/home.md"));
	ASSERT_FALSE(exists(e.root, "mydir/homer.txt"));
	env_done(&e);
}

TEST(owners_context_chown_and_from)
{
	if (geteuid() != 0)
		tap_skip("changing owners needs root");
	struct env e;
	env_new(&e);
	put(e.ctx, "dir/f", "f", 04755);
	mkd(e.ctx, "dir/sub", 0755);
	put(e.ctx, "dir/sub/g", "g", 0644);
	lnk(e.ctx, "dir/ln", "f");
	char p[PATH_MAX];
	ASSERT_OK(chown(pathf(p, e.ctx, "dir/f"), 1234, 5678));
	ASSERT_OK(chmod(p, 04755)); /* chown dropped it */
	ASSERT_OK(chown(pathf(p, e.ctx, "dir/sub"), 1234, 5678));
	ASSERT_OK(chown(pathf(p, e.ctx, "dir/sub/g"), 1234, 5678));
	ASSERT_OK(lchown(pathf(p, e.ctx, "dir/ln"), 1234, 5678));

	/* Context: everything 0:0, set-id bits kept. */
	COPY_OK(&e, .srcs = {"dir"}, .dest = "/ctx");
	struct stat st = lst(e.root, "ctx/f");
	ASSERT_TRUE(st.st_uid == 0 && st.st_gid == 0);
	ASSERT_EQ(st.st_mode & 07777, 04755);
	st = lst(e.root, "ctx/sub/g");
	ASSERT_TRUE(st.st_uid == 0 && st.st_gid == 0);
	ASSERT_EQ(lst(e.root, "ctx/sub").st_uid, 0);
	ASSERT_EQ(lst(e.root, "ctx/ln").st_uid, 0);
	/* A single file too (the per-file path). */
	COPY_OK(&e, .srcs = {"dir/f"}, .dest = "/one");
	ASSERT_EQ(lst(e.root, "one").st_uid, 0);

	/* --chown numeric: entries and the folders made for the destination. */
	COPY_OK(&e, .srcs = {"dir"}, .dest = "/made/here", .chown = "42:43");
	st = lst(e.root, "made/here/sub/g");
	ASSERT_TRUE(st.st_uid == 42 && st.st_gid == 43);
	st = lst(e.root, "made/here");
	ASSERT_TRUE(st.st_uid == 42 && st.st_gid == 43);
	st = lst(e.root, "made");
	ASSERT_TRUE(st.st_uid == 42 && st.st_gid == 43);
	ASSERT_EQ(lst(e.root, "made/here/ln").st_uid, 42);
	COPY_OK(&e, .srcs = {"dir/sub/g"}, .dest = "/uid-only", .chown = "77");
	st = lst(e.root, "uid-only");
	ASSERT_TRUE(st.st_uid == 77 && st.st_gid == 77); /* BuildKit: uid without gid is uid:uid */

	/* --from: owners kept. */
	COPY_OK(&e, .srcs = {"dir"}, .dest = "/from", .from = true);
	st = lst(e.root, "from/sub/g");
	ASSERT_TRUE(st.st_uid == 1234 && st.st_gid == 5678);
	st = lst(e.root, "from/f");
	ASSERT_TRUE(st.st_uid == 1234 && st.st_gid == 5678);
	ASSERT_EQ(st.st_mode & 07777, 04755);

	/* Names from the destination's /etc/passwd and /etc/group. */
	put(e.root, "etc/passwd",
	    "root:x:0:0:root:/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n", 0644);
	put(e.root, "etc/group", "root:x:0:\napp:x:1002:\nstaff:x:50:app\n", 0644);
	COPY_OK(&e, .srcs = {"dir/sub/g"}, .dest = "/n1", .chown = "app");
	st = lst(e.root, "n1");
	ASSERT_TRUE(st.st_uid == 1001 && st.st_gid == 1002);
	COPY_OK(&e, .srcs = {"dir/sub/g"}, .dest = "/n2", .chown = "app:staff");
	st = lst(e.root, "n2");
	ASSERT_TRUE(st.st_uid == 1001 && st.st_gid == 50);
	COPY_OK(&e, .srcs = {"dir/sub/g"}, .dest = "/n3", .chown = "1001:staff");
	st = lst(e.root, "n3");
	ASSERT_TRUE(st.st_uid == 1001 && st.st_gid == 50);
	struct sc_err err = SC_ERR_INIT;
	ASSERT_ERRNO(
		copy(&e, &(struct cp){.srcs = {"dir"}, .dest = "/n4", .chown = "nobody"}, &err),
		-EINVAL);
	ASSERT_TRUE(strstr(err.msg, "nobody") != NULL);
	ASSERT_FALSE(exists(e.root, "n4"));
	env_done(&e);
}

TEST(chmod_octal_and_symbolic)
{
	struct env e;
	env_new(&e);
	put(e.ctx, "d/f", "f", 0640);
	put(e.ctx, "d/x", "x", 0700);
	mkd(e.ctx, "d/sub", 0750);
	put(e.ctx, "d/sub/g", "g", 0600);
	COPY_OK(&e, .srcs = {"d"}, .dest = "/oct", .chmod = "0751");
	ASSERT_EQ(MODE(e.root, "oct/f"), 0751);
	ASSERT_EQ(MODE(e.root, "oct/sub"), 0751);
	ASSERT_EQ(MODE(e.root, "oct/sub/g"), 0751);
	/* Relative to each entry's mode; X only for folders and executables. */
	COPY_OK(&e, .srcs = {"d"}, .dest = "/sym", .chmod = "go+rX");
	ASSERT_EQ(MODE(e.root, "sym/f"), 0644);
	ASSERT_EQ(MODE(e.root, "sym/x"), 0755);
	ASSERT_EQ(MODE(e.root, "sym/sub"), 0755);
	ASSERT_EQ(MODE(e.root, "sym/sub/g"), 0644);
	COPY_OK(&e, .srcs = {"d/f"}, .dest = "/s2", .chmod = "u+x,g-w,o=r");
	ASSERT_EQ(MODE(e.root, "s2"), 0744);
	COPY_OK(&e, .srcs = {"d/x"}, .dest = "/s3", .chmod = "g=u,o=");
	ASSERT_EQ(MODE(e.root, "s3"), 0770);
	COPY_OK(&e, .srcs = {"d/f"}, .dest = "/s4", .chmod = "a=r,u+w");
	ASSERT_EQ(MODE(e.root, "s4"), 0644);

	struct sc_err err = SC_ERR_INIT;
	ASSERT_OK(bld_copy_flags_validate("1000:1000", "0755", &err));
	ASSERT_OK(bld_copy_flags_validate("app", "u+x,g-w,o=r", &err));
	ASSERT_OK(bld_copy_flags_validate(NULL, "g=u", &err));
	ASSERT_ERRNO(bld_copy_flags_validate(NULL, "8888", &err), -EINVAL);
	ASSERT_STREQ(err.msg,
		     "invalid --chmod value '8888': an octal mode has at most four digits 0-7");
	sc_err_clear(&err);
	ASSERT_ERRNO(bld_copy_flags_validate(NULL, "u+z", &err), -EINVAL);
	ASSERT_TRUE(strstr(err.msg, "'u+z'") != NULL);
	ASSERT_ERRNO(bld_copy_flags_validate(NULL, "", NULL), -EINVAL);
	ASSERT_ERRNO(bld_copy_flags_validate(NULL, "g=ux", NULL), -EINVAL);
	ASSERT_ERRNO(bld_copy_flags_validate("a:b:c", NULL, NULL), -EINVAL);
	ASSERT_ERRNO(bld_copy_flags_validate(":1", NULL, NULL), -EINVAL);
	ASSERT_ERRNO(bld_copy_flags_validate("1:", NULL, NULL), -EINVAL);
	ASSERT_ERRNO(bld_copy_flags_validate("a b", NULL, NULL), -EINVAL);
	/* Variables: the frontend lets them through, the expanded value is checked here. */
	static const char df_text[] = "FROM scratch\nARG M=u+x\nARG U=1:2\n"
				      "COPY --chmod=$M --chown=${U} a /b\n";
	struct bld_dockerfile *df = NULL;
	struct bld_plan *plan = NULL;
	ASSERT_OK(bld_dockerfile_parse(df_text, strlen(df_text), "Dockerfile", &df, &err));
	ASSERT_OK(bld_plan_new(df, &(struct bld_plan_opts){0}, &plan, &err));
	const struct bld_step *st = &plan->stages[0].steps[plan->stages[0].nsteps - 1];
	ASSERT_STREQ(st->chmod, "u+x");
	ASSERT_STREQ(st->chown, "1:2");
	ASSERT_OK(bld_copy_flags_validate(st->chown, st->chmod, &err));
	plan = bld_plan_free(plan);
	const char *bad[] = {"M=9999"};
	ASSERT_OK(bld_plan_new(df, &(struct bld_plan_opts){.build_args = bad, .nbuild_args = 1},
			       &plan, &err));
	st = &plan->stages[0].steps[plan->stages[0].nsteps - 1];
	ASSERT_STREQ(st->chmod, "9999");
	sc_err_clear(&err);
	ASSERT_ERRNO(bld_copy_flags_validate(st->chown, st->chmod, &err), -EINVAL);
	ASSERT_TRUE(strstr(err.msg, "'9999'") != NULL);
	bld_plan_free(plan);
	bld_dockerfile_free(df);
	sc_err_clear(&err);
	/* apply validates too, before touching anything. */
	ASSERT_ERRNO(copy(&e, &(struct cp){.srcs = {"d"}, .dest = "/bad", .chmod = "rwx"}, &err),
		     -EINVAL);
	ASSERT_FALSE(exists(e.root, "bad"));
	env_done(&e);
}

TEST(heredoc_inline_source)
{
	struct env e;
	env_new(&e);
	const struct bld_inline_source inl[] = {{.name = "hello.sh", .data = "echo hi\n"}};
	COPY_OK(&e, .dest = "/bin/", .inl = inl, .ninl = 1);
	ASSERT_STREQ(slurp(e.root, "bin/hello.sh"), "echo hi\n");
	ASSERT_EQ(MODE(e.root, "bin/hello.sh"), 0644);
	COPY_OK(&e, .dest = "/usr/local/bin/run", .inl = inl, .ninl = 1, .chmod = "0755");
	ASSERT_STREQ(slurp(e.root, "usr/local/bin/run"), "echo hi\n");
	ASSERT_EQ(MODE(e.root, "usr/local/bin/run"), 0755);
	COPY_OK(&e, .dest = "/sym", .inl = inl, .ninl = 1, .chmod = "u+x");
	ASSERT_EQ(MODE(e.root, "sym"), 0744);
	env_done(&e);
}

TEST(hard_links_kept)
{
	struct env e;
	env_new(&e);
	put(e.ctx, "h/a", "same", 0644);
	char p[PATH_MAX], q[PATH_MAX];
	ASSERT_OK(link(pathf(p, e.ctx, "h/a"), pathf(q, e.ctx, "h/b")));
	put(e.ctx, "h/sub/c", "c", 0644);
	ASSERT_OK(link(pathf(p, e.ctx, "h/sub/c"), pathf(q, e.ctx, "h/sub/d")));
	COPY_OK(&e, .srcs = {"h"}, .dest = "/h");
	ASSERT_EQ(lst(e.root, "h/a").st_ino, lst(e.root, "h/b").st_ino);
	ASSERT_EQ(lst(e.root, "h/sub/c").st_ino, lst(e.root, "h/sub/d").st_ino);
	ASSERT_STREQ(slurp(e.root, "h/b"), "same");
	env_done(&e);
}

TEST(add_extracts_local_archives)
{
	struct env e;
	env_new(&e);
	char src[PATH_MAX];
	snprintf(src, sizeof(src), "%s/../tree", e.ctx);
	put(src, "top/a.txt", "archived A", 0640);
	put(src, "top/bin/tool", "#!/bin/sh\n", 0755);
	lnk(src, "top/ln", "a.txt");
	char p[PATH_MAX], q[PATH_MAX];
	ASSERT_OK(link(pathf(p, src, "top/a.txt"), pathf(q, src, "top/hl")));
	sh("tar -C '%s' -cf '%s/plain.tar' top", src, e.ctx);
	sh("tar -C '%s' -czf '%s/a.tar.gz' top", src, e.ctx);
	sh("tar -C '%s' -cf - top | zstd -q -o '%s/a.tar.zst'", src, e.ctx);
	sh("tar -C '%s' -cf - top | bzip2 > '%s/a.tar.bz2'", src, e.ctx);
	sh("tar -C '%s' -cf - top | xz > '%s/noext'", src, e.ctx);
	sh("echo 'just text' | gzip > '%s/notes.txt.gz'", e.ctx);

	const char *names[] = {"plain.tar", "a.tar.gz", "a.tar.zst", "a.tar.bz2", "noext"};
	for (size_t i = 0; i < 5; i++) {
		char dest[64], rel[96];
		snprintf(dest, sizeof(dest), "/x%zu", i);
		/* No trailing slash: an archive still goes into a folder. */
		COPY_OK(&e, .srcs = {names[i]}, .dest = dest, .add = true);
		snprintf(rel, sizeof(rel), "x%zu/top/a.txt", i);
		ASSERT_STREQ(slurp(e.root, rel), "archived A");
		ASSERT_EQ(MODE(e.root, rel), 0640);
		snprintf(rel, sizeof(rel), "x%zu/top/bin/tool", i);
		ASSERT_EQ(MODE(e.root, rel), 0755);
		snprintf(rel, sizeof(rel), "x%zu/top/ln", i);
		ASSERT_TRUE(S_ISLNK(lst(e.root, rel).st_mode));
		char rel2[96];
		snprintf(rel, sizeof(rel), "x%zu/top/hl", i);
		snprintf(rel2, sizeof(rel2), "x%zu/top/a.txt", i);
		ASSERT_EQ(lst(e.root, rel).st_ino, lst(e.root, rel2).st_ino);
	}
	/* "./" members (tar -C dir .) land in the destination itself, which keeps its mode. */
	sh("tar -C '%s/top' -czf '%s/dot.tgz' .", src, e.ctx);
	mkd(e.root, "dot", 0700);
	COPY_OK(&e, .srcs = {"dot.tgz"}, .dest = "/dot/", .add = true);
	ASSERT_STREQ(slurp(e.root, "dot/a.txt"), "archived A");
	ASSERT_EQ(MODE(e.root, "dot"), 0700);
	/* Over existing content: files replaced, a folder kept. */
	put(e.root, "x0/top/a.txt", "old", 0600);
	put(e.root, "x0/top/bin/other", "o", 0644);
	COPY_OK(&e, .srcs = {"plain.tar"}, .dest = "/x0", .add = true);
	ASSERT_STREQ(slurp(e.root, "x0/top/a.txt"), "archived A");
	ASSERT_STREQ(slurp(e.root, "x0/top/bin/other"), "o");
	/* A gzip'd file that is no tar is copied as it is. */
	COPY_OK(&e, .srcs = {"notes.txt.gz"}, .dest = "/notes/", .add = true);
	ASSERT_TRUE(S_ISREG(lst(e.root, "notes/notes.txt.gz").st_mode));
	/* COPY never extracts. */
	COPY_OK(&e, .srcs = {"a.tar.gz"}, .dest = "/copied");
	ASSERT_TRUE(S_ISREG(lst(e.root, "copied").st_mode));
	/* --chown applies to what is extracted (BuildKit's newer rule). */
	if (geteuid() == 0) {
		COPY_OK(&e, .srcs = {"a.tar.gz"}, .dest = "/own", .add = true, .chown = "7:8");
		struct stat st = lst(e.root, "own/top/a.txt");
		ASSERT_TRUE(st.st_uid == 7 && st.st_gid == 8);
	}
	env_done(&e);
}

TEST(add_refuses_archive_leaving_destination)
{
	struct env e;
	env_new(&e);
	char t[PATH_MAX], work[PATH_MAX];
	snprintf(t, sizeof(t), "%s/..", e.ctx);
	snprintf(work, sizeof(work), "%s/work", t);
	put(t, "evil", "original", 0644);
	put(work, "inner/ok", "fine", 0644);
	/* Members "inner/ok" then "../evil": GNU tar keeps ".." with -P. */
	sh("cd '%s' && tar -cPf '%s/evil.tar' inner/ok ../evil 2>/dev/null", work, e.ctx);
	sh("gzip -k '%s/evil.tar'", e.ctx);
	struct sc_err err = SC_ERR_INIT;
	ASSERT_ERRNO(
		copy(&e, &(struct cp){.srcs = {"evil.tar.gz"}, .dest = "/x/y", .add = true}, &err),
		-EXDEV);
	ASSERT_TRUE(strstr(err.msg, "'../evil'") != NULL);
	ASSERT_FALSE(exists(e.root, "x/evil"));
	ASSERT_FALSE(exists(e.root, "x/y/evil"));
	ASSERT_FALSE(exists(e.root, "evil"));
	ASSERT_STREQ(slurp(t, "evil"), "original");

	/*
	 * A symlink in the archive pointing far up, then a file below it: the
	 * file lands inside the destination (its root), never above it.
	 */
	char t2[PATH_MAX];
	snprintf(t2, sizeof(t2), "%s/t2", t);
	mkd(t2, "d", 0755);
	lnk(t2, "d/up", "../../../../../../../..");
	put(t2, "d/upx/escaped", "inside", 0644);
	sh("tar -C '%s' --transform 's,^d/upx/,d/up/,' -cf '%s/link.tar' d/up d/upx/escaped", t2,
	   e.ctx);
	COPY_OK(&e, .srcs = {"link.tar"}, .dest = "/l/", .add = true);
	ASSERT_TRUE(S_ISLNK(lst(e.root, "l/d/up").st_mode));
	ASSERT_STREQ(slurp(e.root, "l/escaped"), "inside");
	ASSERT_FALSE(exists(e.root, "escaped"));
	ASSERT_FALSE(exists(t, "escaped"));
	env_done(&e);
}

TEST(selection_hash)
{
	struct env e;
	env_new(&e);
	put(e.ctx, "app/a.txt", "hello", 0644);
	put(e.ctx, "app/b/c.txt", "world", 0644);
	lnk(e.ctx, "app/ln", "a.txt");
	struct bld_hash_cache *hc = NULL;
	ASSERT_OK(bld_hash_cache_new(&hc));
	struct sc_err err = SC_ERR_INIT;
	char d0[SC_DIGEST_STR_LEN + 1], d1[SC_DIGEST_STR_LEN + 1];
	const struct cp c = {.srcs = {"app"}, .dest = "/app"};
#define DIGEST(out) ASSERT_OK(select_digest(&e, &c, hc, (out), &err))
	DIGEST(d0);
	ASSERT_TRUE(sc_digest_valid(d0));
	/* The selection lists every entry, sorted, with its own digest. */
	struct bld_copy_op op = op_of(&c);
	struct bld_copy_source src = src_of(&e, &c);
	struct bld_copy_selection sel;
	ASSERT_OK(bld_copy_select(&src, &op, NULL, &sel, &err));
	ASSERT_STREQ(sel.digest, d0); /* same without the cache */
	ASSERT_EQ(sel.nfiles, 4);
	ASSERT_STREQ(sel.files[0].path, "app/a.txt");
	ASSERT_STREQ(sel.files[1].path, "app/b");
	ASSERT_STREQ(sel.files[2].path, "app/b/c.txt");
	ASSERT_STREQ(sel.files[3].path, "app/ln");
	ASSERT_EQ(sel.bytes, 10);
	bld_copy_selection_clear(&sel);

	/* Touching changes nothing. */
	char p[PATH_MAX], q[PATH_MAX];
	const struct timespec later[2] = {{.tv_sec = 1700000000}, {.tv_sec = 1700000000}};
	ASSERT_OK(utimensat(AT_FDCWD, pathf(p, e.ctx, "app/a.txt"), later, 0));
	ASSERT_OK(utimensat(AT_FDCWD, pathf(p, e.ctx, "app/b"), later, 0));
	DIGEST(d1);
	ASSERT_STREQ(d1, d0);
	/* Content, same size. */
	put(e.ctx, "app/a.txt", "HELLO", 0644);
	DIGEST(d1);
	ASSERT_FALSE(strcmp(d1, d0) == 0);
	put(e.ctx, "app/a.txt", "hello", 0644);
	DIGEST(d1);
	ASSERT_STREQ(d1, d0);
	/* Mode. */
	ASSERT_OK(chmod(pathf(p, e.ctx, "app/a.txt"), 0600));
	DIGEST(d1);
	ASSERT_FALSE(strcmp(d1, d0) == 0);
	ASSERT_OK(chmod(p, 0644));
	DIGEST(d1);
	ASSERT_STREQ(d1, d0);
	/* Rename. */
	ASSERT_OK(rename(pathf(p, e.ctx, "app/b/c.txt"), pathf(q, e.ctx, "app/b/d.txt")));
	DIGEST(d1);
	ASSERT_FALSE(strcmp(d1, d0) == 0);
	ASSERT_OK(rename(q, p));
	DIGEST(d1);
	ASSERT_STREQ(d1, d0);
	/* Symlink target. */
	ASSERT_OK(unlink(pathf(p, e.ctx, "app/ln")));
	lnk(e.ctx, "app/ln", "b");
	DIGEST(d1);
	ASSERT_FALSE(strcmp(d1, d0) == 0);
	ASSERT_OK(unlink(p));
	lnk(e.ctx, "app/ln", "a.txt");
	/* Added and removed files. */
	put(e.ctx, "app/new", "", 0644);
	DIGEST(d1);
	ASSERT_FALSE(strcmp(d1, d0) == 0);
	ASSERT_OK(unlink(pathf(p, e.ctx, "app/new")));
	DIGEST(d1);
	ASSERT_STREQ(d1, d0);
	/* An ignored file is invisible to the hash. */
	put(e.ctx, "app/debug.log", "noise", 0644);
	ignore(&e, "**/*.log\n");
	DIGEST(d1);
	ASSERT_STREQ(d1, d0);
	/* Owners: the context is copied as 0:0, so they do not count; --from they do. */
	if (geteuid() == 0) {
		ASSERT_OK(chown(pathf(p, e.ctx, "app/a.txt"), 99, 99));
		DIGEST(d1);
		ASSERT_STREQ(d1, d0);
		const struct cp f = {.srcs = {"app"}, .dest = "/app", .from = true};
		char f0[SC_DIGEST_STR_LEN + 1], f1[SC_DIGEST_STR_LEN + 1];
		ASSERT_OK(select_digest(&e, &f, hc, f0, &err));
		ASSERT_OK(chown(p, 0, 0));
		ASSERT_OK(select_digest(&e, &f, hc, f1, &err));
		ASSERT_FALSE(strcmp(f0, f1) == 0);
	}
	/* A file source is hashed under its name: renaming it counts. */
	char s0[SC_DIGEST_STR_LEN + 1], s1[SC_DIGEST_STR_LEN + 1];
	ASSERT_OK(
		select_digest(&e, &(struct cp){.srcs = {"app/*.txt"}, .dest = "/"}, hc, s0, &err));
	ASSERT_OK(rename(pathf(p, e.ctx, "app/a.txt"), pathf(q, e.ctx, "app/z.txt")));
	ASSERT_OK(
		select_digest(&e, &(struct cp){.srcs = {"app/*.txt"}, .dest = "/"}, hc, s1, &err));
	ASSERT_FALSE(strcmp(s0, s1) == 0);
#undef DIGEST
	bld_hash_cache_free(hc);
	env_done(&e);
}

/* Peak RSS (KiB) of a child process that selects and hashes src. */
static long
child_select_rss(struct env *e, size_t want_files)
{
	fflush(stdout);
	pid_t pid = fork();
	ASSERT_TRUE(pid >= 0);
	if (pid == 0) {
		struct bld_copy_op op = op_of(&(struct cp){.srcs = {"big"}, .dest = "/"});
		struct bld_copy_source src = {.root_dirfd = e->ctx_fd, .context = true};
		struct bld_copy_selection sel;
		struct sc_err err = SC_ERR_INIT;
		int r = bld_copy_select(&src, &op, NULL, &sel, &err);
		_exit(r < 0 ? 2 : sel.nfiles == want_files ? 0 : 3);
	}
	int status;
	struct rusage ru;
	ASSERT_EQ(wait4(pid, &status, 0, &ru), pid);
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	return ru.ru_maxrss;
}

TEST(selection_memory_stays_small)
{
	/*
	 * 100,000 entries (hard links to one file, so the tree is cheap to
	 * make) selected and hashed twice, by fresh processes: with the file
	 * empty, then holding 1 KiB. Every entry is read (no cache), so any
	 * content kept would cost 100 MB more the second time. Comparing the
	 * two peaks leaves the allocator (and sanitizers) out of it.
	 */
	struct env e;
	env_new(&e);
	char p[PATH_MAX], q[PATH_MAX], name[32];
	for (int d = 0; d < 100; d++) {
		/* One data file per folder: file systems cap the links of an inode. */
		snprintf(name, sizeof(name), "data%03d", d);
		put(e.ctx, name, "", 0644);
		pathf(p, e.ctx, name);
		snprintf(q, sizeof(q), "%s/big/d%03d", e.ctx, d);
		ASSERT_OK(sc_mkdir_p(q, 0755));
		for (int f = 0; f < 1000; f++) {
			snprintf(q, sizeof(q), "%s/big/d%03d/f%04d", e.ctx, d, f);
			ASSERT_OK(link(p, q));
		}
	}
	long empty = child_select_rss(&e, 100100);
	char block[1025];
	memset(block, 'x', 1024);
	block[1024] = '\0';
	for (int d = 0; d < 100; d++) {
		snprintf(name, sizeof(name), "data%03d", d);
		put(e.ctx, name, block, 0644);
	}
	long full = child_select_rss(&e, 100100);
	printf("# peak RSS selecting 100100 entries: %ld KiB empty, %ld KiB with 100 MB of "
	       "content\n",
	       empty, full);
	ASSERT_TRUE(full - empty < 32 * 1024);
	env_done(&e);
}

TEST(mkdir_p_stays_in_root)
{
	struct env e;
	env_new(&e);
	mkd(e.root, "real", 0755);
	lnk(e.root, "abs", "/real");
	lnk(e.root, "up", "../../../../..");
	put(e.root, "file", "f", 0644);
	struct sc_err err = SC_ERR_INIT;
	ASSERT_ERRNO(bld_mkdir_p(e.root_fd, "/abs/a/b", 0, 0, &err), 1);
	ASSERT_TRUE(S_ISDIR(lst(e.root, "real/a/b").st_mode));
	ASSERT_EQ(MODE(e.root, "real/a/b"), 0755);
	ASSERT_ERRNO(bld_mkdir_p(e.root_fd, "/abs/a/b", 0, 0, &err), 0);
	ASSERT_ERRNO(bld_mkdir_p(e.root_fd, "/up/escaped", 0, 0, &err), 1);
	ASSERT_TRUE(S_ISDIR(lst(e.root, "escaped").st_mode));
	char outside[PATH_MAX];
	snprintf(outside, sizeof(outside), "%s/../../escaped", e.root);
	struct stat st;
	ASSERT_TRUE(lstat(outside, &st) < 0);
	ASSERT_ERRNO(bld_mkdir_p(e.root_fd, "/file/x", 0, 0, &err), -ENOTDIR);
	ASSERT_ERRNO(bld_mkdir_p(e.root_fd, "/../../x/..", 0, 0, &err), 1);
	ASSERT_TRUE(exists(e.root, "x"));
	ASSERT_ERRNO(bld_mkdir_p(e.root_fd, "relative", 0, 0, &err), -EINVAL);
	if (geteuid() == 0) {
		ASSERT_ERRNO(bld_mkdir_p(e.root_fd, "/owned/deep", 5, 6, &err), 1);
		st = lst(e.root, "owned/deep");
		ASSERT_TRUE(st.st_uid == 5 && st.st_gid == 6);
		ASSERT_EQ(lst(e.root, "owned").st_uid, 5);
	}
	env_done(&e);
}

int
main(int argc, char **argv)
{
	umask(022);
	return tap_main(argc, argv);
}
