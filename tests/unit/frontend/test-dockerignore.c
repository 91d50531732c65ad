/* .dockerignore matching: BuildKit's rules, exceptions, ** and directory skipping. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dockerignore.h"
#include "tap.h"
#include "util.h"

static struct bld_ignore *
mk(const char *text)
{
	struct bld_ignore *m = NULL;
	struct sc_err err = SC_ERR_INIT;
	if (bld_ignore_new(text, strlen(text), ".dockerignore", &m, &err) < 0)
		tap_fail(__FILE__, __LINE__, "%s", sc_err_msg(&err));
	return m;
}

TEST(basic_and_comments)
{
	struct bld_ignore *m = mk("# comment\n\n  *.log  \nbuild\n/tmp/\n./docs/../secret\n");
	ASSERT_EQ(bld_ignore_count(m), 4);
	ASSERT_TRUE(bld_ignore_match(m, "a.log"));
	ASSERT_FALSE(bld_ignore_match(m, "dir/a.log")); /* '*' stops at '/' */
	ASSERT_TRUE(bld_ignore_match(m, "build"));
	ASSERT_TRUE(bld_ignore_match(m, "build/x/y.o")); /* parent directory matched */
	ASSERT_TRUE(bld_ignore_match(m, "tmp/a"));
	ASSERT_TRUE(bld_ignore_match(m, "secret"));
	ASSERT_FALSE(bld_ignore_match(m, "docs/secret"));
	ASSERT_FALSE(bld_ignore_match(m, "# comment"));
	ASSERT_TRUE(bld_ignore_match(m, "./build/../a.log")); /* paths are cleaned */
	bld_ignore_free(m);
}

TEST(double_star_start_middle_end)
{
	struct bld_ignore *m = mk("**/*.tmp\nsrc/**/gen\nvendor/**\n");
	ASSERT_TRUE(bld_ignore_match(m, "x.tmp"));
	ASSERT_TRUE(bld_ignore_match(m, "a/b/c/x.tmp"));
	ASSERT_TRUE(bld_ignore_match(m, "src/gen"));
	ASSERT_TRUE(bld_ignore_match(m, "src/a/b/gen"));
	ASSERT_TRUE(bld_ignore_match(m, "src/a/gen/file.c"));
	ASSERT_FALSE(bld_ignore_match(m, "src/a/generated"));
	ASSERT_TRUE(bld_ignore_match(m, "vendor/a"));
	ASSERT_TRUE(bld_ignore_match(m, "vendor/a/b/c"));
	ASSERT_FALSE(bld_ignore_match(m, "vendor")); // "vendor/**" needs something below
	ASSERT_FALSE(bld_ignore_match(m, "other/file"));
	bld_ignore_free(m);
}

TEST(exceptions_last_match_wins)
{
	struct bld_ignore *m = mk("*.md\n!README.md\nREADME*.md\n!README-keep.md\n");
	ASSERT_TRUE(bld_ignore_match(m, "CHANGES.md"));
	ASSERT_TRUE(bld_ignore_match(m, "README.md")); /* re-excluded by line 3 */
	ASSERT_FALSE(bld_ignore_match(m, "README-keep.md"));
	bld_ignore_free(m);
}

TEST(exception_under_excluded_dir)
{
	struct bld_ignore *m = mk("node_modules\nbuild\n!build/keep/**\n!build/keep\n");
	ASSERT_TRUE(bld_ignore_match(m, "build/out.o"));
	ASSERT_FALSE(bld_ignore_match(m, "build/keep"));
	ASSERT_FALSE(bld_ignore_match(m, "build/keep/a.txt"));
	ASSERT_EQ(bld_ignore_dir(m, "node_modules"), BLD_IGNORE_DIR_SKIP);
	ASSERT_EQ(bld_ignore_dir(m, "build"), BLD_IGNORE_DIR_DESCEND);
	ASSERT_EQ(bld_ignore_dir(m, "build/keep"), BLD_IGNORE_DIR_INCLUDE);
	ASSERT_EQ(bld_ignore_dir(m, "build/other"), BLD_IGNORE_DIR_SKIP);
	ASSERT_EQ(bld_ignore_dir(m, "src"), BLD_IGNORE_DIR_INCLUDE);
	bld_ignore_free(m);

	/* An exception with a wildcard directory part may match inside any directory. */
	m = mk("*\n!*/important.txt\n");
	ASSERT_EQ(bld_ignore_dir(m, "a"), BLD_IGNORE_DIR_DESCEND);
	ASSERT_EQ(bld_ignore_dir(m, "a/b"), BLD_IGNORE_DIR_SKIP);
	ASSERT_FALSE(bld_ignore_match(m, "a/important.txt"));
	ASSERT_TRUE(bld_ignore_match(m, "a/b/important.txt"));
	bld_ignore_free(m);
	m = mk("docs\n!**/*.go\n");
	ASSERT_EQ(bld_ignore_dir(m, "docs"), BLD_IGNORE_DIR_DESCEND);
	bld_ignore_free(m);
}

TEST(classes_and_escapes)
{
	struct bld_ignore *m = mk("file[0-9].txt\n[^a]x\nlit\\*\n?.c\n");
	ASSERT_TRUE(bld_ignore_match(m, "file3.txt"));
	ASSERT_FALSE(bld_ignore_match(m, "fileA.txt"));
	ASSERT_TRUE(bld_ignore_match(m, "bx"));
	ASSERT_FALSE(bld_ignore_match(m, "ax"));
	ASSERT_TRUE(bld_ignore_match(m, "lit*"));
	ASSERT_FALSE(bld_ignore_match(m, "litx"));
	ASSERT_TRUE(bld_ignore_match(m, "a.c"));
	ASSERT_FALSE(bld_ignore_match(m, "ab.c"));
	bld_ignore_free(m);
	struct bld_ignore *bad = NULL;
	struct sc_err err = SC_ERR_INIT;
	ASSERT_ERRNO(bld_ignore_new("ok\n[abc\n", 8, ".dockerignore", &bad, &err), -EINVAL);
	ASSERT_TRUE(strstr(sc_err_msg(&err), ".dockerignore:2: unterminated '['") != NULL);
}

TEST(many_stars_stay_fast)
{
	struct bld_ignore *m = mk("*a*a*a*a*a*a*a*a*a*a*a*a*b\n");
	char path[200];
	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	ASSERT_FALSE(bld_ignore_match(m, path));
	bld_ignore_free(m);
}

TEST(per_dockerfile_ignore_file)
{
	const char *dir = tap_tmpdir();
	char p[4096];
	snprintf(p, sizeof(p), "%s/.dockerignore", dir);
	ASSERT_OK(sc_write_file_atomic(p, "a\n", 2, 0644));
	snprintf(p, sizeof(p), "%s/app.Dockerfile.dockerignore", dir);
	ASSERT_OK(sc_write_file_atomic(p, "b\n", 2, 0644));
	snprintf(p, sizeof(p), "%s/app.Dockerfile", dir);
	struct bld_ignore *m = NULL;
	char *used = NULL;
	ASSERT_OK(bld_ignore_load(dir, p, &m, &used, NULL));
	ASSERT_TRUE(strstr(used, "app.Dockerfile.dockerignore") != NULL);
	ASSERT_TRUE(bld_ignore_match(m, "b"));
	ASSERT_FALSE(bld_ignore_match(m, "a"));
	free(used);
	bld_ignore_free(m);
	snprintf(p, sizeof(p), "%s/Dockerfile", dir);
	ASSERT_OK(bld_ignore_load(dir, p, &m, &used, NULL));
	ASSERT_TRUE(bld_ignore_match(m, "a"));
	free(used);
	bld_ignore_free(m);
}

int
main(int argc, char **argv)
{
	return tap_main(argc, argv);
}
