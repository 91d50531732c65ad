/*
 * Benchmark (not a test) of the Dockerfile frontend:
 *  1. parse + instruction building + plan of a generated 10,000-instruction
 *     Dockerfile (goal: under 20 ms);
 *  2. .dockerignore matching over a generated 100,000-path tree with 50
 *     patterns, walking it the way a context sender would: skipping
 *     directories the matcher says to skip (goal: under 100 ms).
 * Prints the best of five runs of each, and of the parse step alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dockerfile.h"
#include "dockerignore.h"
#include "instructions.h"
#include "plan.h"
#include "util.h"

static double
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static char *
gen_dockerfile(size_t ninstr, size_t *ret_len)
{
	struct sc_buf b = {0};
	sc_buf_printf(&b, "# syntax=docker/dockerfile:1\nARG BASE=debian:12\n");
	for (size_t i = 0; i < ninstr - 2; i++) {
		if (i % 1000 == 0) {
			sc_buf_printf(&b, "FROM ${BASE} AS s%zu\n", i / 1000);
			continue;
		}
		switch (i % 10) {
		case 0:
			sc_buf_printf(&b, "ENV V%zu=value-%zu PATH=/opt/bin:$PATH\n", i, i);
			break;
		case 1:
			sc_buf_printf(&b,
				      "RUN --mount=type=cache,target=/var/cache/apt \\\n"
				      "    apt-get update && apt-get install -y pkg%zu \\\n"
				      "    && rm -rf /var/lib/apt/lists/*\n",
				      i);
			break;
		case 2:
			sc_buf_printf(&b,
				      "COPY --chown=1000:1000 --chmod=0644 src/%zu/ /app/%zu/\n", i,
				      i);
			break;
		case 3:
			sc_buf_printf(&b, "WORKDIR /app/${V%zu:-x}\n", i - 3);
			break;
		case 4:
			sc_buf_printf(&b, "LABEL org.example.n%zu=\"%zu\"\n", i, i);
			break;
		case 5:
			sc_buf_printf(&b, "ARG A%zu=${BASE%%%%:*}\n", i);
			break;
		case 6:
			sc_buf_printf(&b, "RUN [\"/bin/sh\", \"-c\", \"echo %zu\"]\n", i);
			break;
		case 7:
			sc_buf_printf(&b, "EXPOSE %zu/tcp\n", 1000 + i % 60000);
			break;
		case 8:
			sc_buf_printf(&b, "RUN <<EOF\necho %zu\nEOF\n", i);
			break;
		default:
			sc_buf_printf(&b, "USER u%zu\n", i % 100);
		}
	}
	*ret_len = b.len;
	sc_buf_put(&b, "", 1);
	return (char *)b.data;
}

static char **
gen_paths(size_t n)
{
	static const char *const top[] = {"src",  "vendor", "node_modules", "build",  "docs",
					  "test", "cmd",    ".git",	    "assets", "tmp"};
	char **v = malloc(n * sizeof(char *));
	char buf[256];
	for (size_t i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), "%s/pkg%zu/sub%zu/file%zu.%s", top[i % 10],
			 (i / 10) % 100, (i / 1000) % 10, i,
			 (i % 3) == 0	? "go"
			 : (i % 3) == 1 ? "md"
					: "o");
		v[i] = strdup(buf);
	}
	return v;
}

int
main(void)
{
	size_t len;
	char *text = gen_dockerfile(10000, &len);
	double best = 1e9, best_parse = 1e9;
	size_t ninstr = 0;
	for (int run = 0; run < 5; run++) {
		struct sc_err err = SC_ERR_INIT;
		double t0 = now_ms();
		struct bld_dockerfile *df = NULL;
		struct bld_plan *plan = NULL;
		if (bld_dockerfile_parse(text, len, "Dockerfile", &df, &err) < 0) {
			fprintf(stderr, "bench: %s\n", sc_err_msg(&err));
			return 1;
		}
		double tp = now_ms() - t0;
		if (bld_plan_new(df, NULL, &plan, &err) < 0) {
			fprintf(stderr, "bench: %s\n", sc_err_msg(&err));
			return 1;
		}
		double t = now_ms() - t0;
		ninstr = df->nnodes;
		if (tp < best_parse)
			best_parse = tp;
		if (t < best)
			best = t;
		bld_plan_free(plan);
		bld_dockerfile_free(df);
	}
	printf("parse alone: %.2f ms\n", best_parse);
	printf("parse+instructions+plan: %zu instructions, %zu bytes: %.2f ms (goal < 20 ms)\n",
	       ninstr, len, best);
	free(text);

	const char *patterns[50];
	char pbuf[50][64];
	static const char *const fixed[] = {"node_modules",   ".git",	     "**/*.o",	   "build",
					    "!build/keep/**", "*.md",	     "!README.md", "tmp/**",
					    "docs/**/*.md",   "!docs/api/**"};
	for (size_t i = 0; i < 50; i++) {
		if (i < 10) {
			patterns[i] = fixed[i];
		} else {
			snprintf(pbuf[i], sizeof(pbuf[i]), "src/pkg%zu/**/*.tmp", i);
			patterns[i] = pbuf[i];
		}
	}
	struct bld_ignore *m = NULL;
	if (bld_ignore_new_patterns(patterns, 50, &m, NULL) < 0)
		return 1;
	size_t npaths = 100000;
	char **paths = gen_paths(npaths);
	best = 1e9;
	size_t excluded = 0;
	for (int run = 0; run < 5; run++) {
		double t0 = now_ms();
		excluded = 0;
		char skip_prefix[256] = "";
		size_t skip_len = 0;
		for (size_t i = 0; i < npaths; i++) {
			const char *p = paths[i];
			/* A walker asks once per top-level directory. */
			const char *slash = strchr(p, '/');
			size_t tl = (size_t)(slash - p);
			if (!(skip_len == tl && !strncmp(skip_prefix, p, tl))) {
				char dir[256];
				snprintf(dir, sizeof(dir), "%.*s", (int)tl, p);
				if (bld_ignore_dir(m, dir) == BLD_IGNORE_DIR_SKIP) {
					snprintf(skip_prefix, sizeof(skip_prefix), "%s", dir);
					skip_len = tl;
					excluded++;
					continue;
				}
				skip_len = 0;
			} else {
				excluded++;
				continue;
			}
			excluded += bld_ignore_match(m, p);
		}
		double t = now_ms() - t0;
		if (t < best)
			best = t;
	}
	printf(".dockerignore: %zu paths, 50 patterns, %zu excluded: %.2f ms (goal < 100 ms)\n",
	       npaths, excluded, best);
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	bld_ignore_free(m);
	return 0;
}
