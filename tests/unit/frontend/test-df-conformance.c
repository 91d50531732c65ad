/*
 * Runs the BuildKit parser conformance corpus: every testfiles/CASE/Dockerfile
 * must parse and dump exactly to testfiles/CASE/result, and every
 * testfiles-negative/CASE/Dockerfile must fail to parse. One TAP point per
 * case. The corpus is found through $SNAPCTL_CONFORMANCE_DIR (set by meson
 * from the conformance_dir option) or argv[1]; when it is missing the program
 * skips, unless $SNAPCTL_REQUIRE_CONFORMANCE=1, where that is a failure.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "dockerfile.h"
#include "tap.h"
#include "util.h"

static unsigned npoints, nfailed;

static void
point(bool ok, const char *name, const char *diag)
{
	npoints++;
	printf("%s %u - %s\n", ok ? "ok" : "not ok", npoints, name);
	if (!ok) {
		nfailed++;
		if (diag)
			for (const char *l = diag; *l;) {
				const char *nl = strchr(l, '\n');
				int n = nl ? (int)(nl - l) : (int)strlen(l);
				printf("# %.*s\n", n, l);
				l += n + (nl ? 1 : 0);
			}
	}
	fflush(stdout);
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted case names below dir; NULL when dir cannot be opened. */
static char **
list_cases(const char *dir, size_t *ret_n)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	if (!d)
		return NULL;
	char **v = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char **nv = realloc(v, (n + 1) * sizeof(char *));
		if (!nv)
			abort();
		v = nv;
		v[n++] = strdup(de->d_name);
	}
	qsort(v, n, sizeof(char *), cmp_names);
	*ret_n = n;
	return v;
}

static void
run_positive(const char *root, const char *name)
{
	char path[4096], rpath[4096];
	snprintf(path, sizeof(path), "%s/testfiles/%s/Dockerfile", root, name);
	snprintf(rpath, sizeof(rpath), "%s/testfiles/%s/result", root, name);
	_cleanup_free_ char *data = NULL, *want = NULL;
	size_t len = 0, wlen = 0;
	char label[512];
	snprintf(label, sizeof(label), "testfiles/%s", name);
	if (sc_read_file(path, BLD_DF_MAX_SIZE, &data, &len) < 0 ||
	    sc_read_file(rpath, BLD_DF_MAX_SIZE, &want, &wlen) < 0) {
		point(false, label, "cannot read the case's Dockerfile or result");
		return;
	}
	struct sc_err err = SC_ERR_INIT;
	struct bld_dockerfile *df = NULL;
	int r = bld_dockerfile_parse(data, len, "Dockerfile", &df, &err);
	if (r < 0) {
		point(false, label, sc_err_msg(&err));
		return;
	}
	struct sc_buf out = {0};
	r = bld_dockerfile_dump(df, &out);
	bld_dockerfile_free(df);
	bool ok = r >= 0 && out.len == wlen && memcmp(out.data, want, wlen) == 0;
	if (!ok) {
		struct sc_buf diag = {0};
		sc_buf_printf(&diag, "want:\n%s\ngot:\n%.*s", want, (int)out.len,
			      out.data ? (char *)out.data : "");
		sc_buf_put(&diag, "", 1);
		point(false, label, (char *)diag.data);
		sc_buf_free(&diag);
	} else {
		point(true, label, NULL);
	}
	sc_buf_free(&out);
}

static void
run_negative(const char *root, const char *name)
{
	char path[4096], label[512];
	snprintf(path, sizeof(path), "%s/testfiles-negative/%s/Dockerfile", root, name);
	snprintf(label, sizeof(label), "testfiles-negative/%s", name);
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	if (sc_read_file(path, BLD_DF_MAX_SIZE, &data, &len) < 0) {
		point(false, label, "cannot read the case's Dockerfile");
		return;
	}
	struct sc_err err = SC_ERR_INIT;
	struct bld_dockerfile *df = NULL;
	int r = bld_dockerfile_parse(data, len, "Dockerfile", &df, &err);
	if (r >= 0) {
		bld_dockerfile_free(df);
		point(false, label, "parsed, but must fail");
		return;
	}
	/* The error must say where: "Dockerfile:N: ...". */
	bool located = strncmp(sc_err_msg(&err), "Dockerfile:", 11) == 0;
	point(located, label, located ? NULL : sc_err_msg(&err));
	if (located)
		printf("# %s\n", sc_err_msg(&err));
}

int
main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : getenv("SNAPCTL_CONFORMANCE_DIR");
	const char *req = getenv("SNAPCTL_REQUIRE_CONFORMANCE");
	bool required = req && strcmp(req, "1") == 0;
	char root[4096] = "";
	struct stat st;
	if (dir && dir[0]) {
		snprintf(root, sizeof(root), "%s/buildkit-parser", dir);
		if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode))
			snprintf(root, sizeof(root), "%s", dir);
	}
	size_t npos = 0, nneg = 0;
	char tdir[4200], ndir[4200];
	snprintf(tdir, sizeof(tdir), "%s/testfiles", root);
	snprintf(ndir, sizeof(ndir), "%s/testfiles-negative", root);
	char **pos = root[0] ? list_cases(tdir, &npos) : NULL;
	char **neg = root[0] ? list_cases(ndir, &nneg) : NULL;
	if (!pos || !neg || npos == 0) {
		if (required) {
			printf("1..1\nnot ok 1 - conformance corpus not found at '%s'\n",
			       root[0] ? root : "(unset)");
			return 1;
		}
		tap_skip_all("conformance corpus not found (set -Dconformance_dir=)");
	}
	printf("1..%zu\n", npos + nneg);
	for (size_t i = 0; i < npos; i++) {
		run_positive(root, pos[i]);
		free(pos[i]);
	}
	for (size_t i = 0; i < nneg; i++) {
		run_negative(root, neg[i]);
		free(neg[i]);
	}
	free(pos);
	free(neg);
	return nfailed ? 1 : 0;
}
