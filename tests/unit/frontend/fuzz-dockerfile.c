/*
 * libFuzzer target over the whole Dockerfile frontend: parse, dump, typed
 * instructions, the plan (which expands every word), word expansion of the
 * raw input, and .dockerignore compilation and matching. Built only with
 * -Dfuzz=true; run it with tests/unit/frontend/run-fuzz.sh.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dockerfile.h"
#include "dockerignore.h"
#include "instructions.h"
#include "plan.h"
#include "shell.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sc_err err = SC_ERR_INIT;
	struct bld_dockerfile *df = NULL;
	if (bld_dockerfile_parse((const char *)data, size, "Dockerfile", &df, &err) >= 0) {
		struct sc_buf b = {0};
		bld_dockerfile_dump(df, &b);
		sc_buf_free(&b);
		const char *bargs[] = {"A=1", "HTTP_PROXY=http://p", "TAG=x y"};
		struct bld_plan_opts o = {.build_args = bargs,
					  .nbuild_args = 3,
					  .build_platform = "linux/amd64",
					  .target_platform = "linux/arm/v7"};
		struct bld_plan *plan = NULL;
		sc_err_clear(&err);
		if (bld_plan_new(df, &o, &plan, &err) >= 0)
			bld_plan_free(plan);
		bld_dockerfile_free(df);
	}

	/* The raw input as one word, with a few variables set. */
	size_t n = size < 4096 ? size : 4096;
	char *word = malloc(n + 1);
	if (!word)
		return 0;
	memcpy(word, data, n);
	word[n] = '\0';
	struct bld_env env = {0};
	bld_env_set(&env, "A", "value");
	bld_env_set(&env, "E", "");
	bld_env_set(&env, "P", "/usr/local/bin/x.tar.gz");
	struct bld_shell sh = {.lookup = bld_env_lookup, .userdata = &env};
	struct bld_shell_result res = {0};
	sc_err_clear(&err);
	if (bld_shell_process(&sh, word, &res, &err) >= 0)
		bld_shell_result_free(&res);
	sh.escape = '`';
	sh.raw_quotes = sh.raw_escapes = sh.skip_unset = true;
	sc_err_clear(&err);
	if (bld_shell_process(&sh, word, &res, &err) >= 0)
		bld_shell_result_free(&res);
	bld_env_free(&env);

	struct bld_df_heredoc h;
	sc_err_clear(&err);
	if (bld_df_heredoc_parse(word, &h, &err) > 0)
		free((char *)h.name);

	struct bld_ignore *m = NULL;
	sc_err_clear(&err);
	if (bld_ignore_new(word, n, ".dockerignore", &m, &err) >= 0) {
		bld_ignore_match(m, "a/b/c.txt");
		bld_ignore_match(m, word);
		bld_ignore_dir(m, "node_modules");
		bld_ignore_dir(m, "a/b");
		bld_ignore_free(m);
	}
	free(word);
	return 0;
}
