/* Word expansion: every modifier with unset, empty and set variables; quotes; escapes. */
#include <stdlib.h>
#include <string.h>

#include "shell.h"
#include "tap.h"

static struct bld_env env;

static void
setup(void)
{
	bld_env_free(&env);
	bld_env_set(&env, "SET", "value");
	bld_env_set(&env, "EMPTY", "");
	bld_env_set(&env, "PATHV", "/usr/local/bin/tool.tar.gz");
	bld_env_set(&env, "SPACED", "a b  c");
}

/* Expands in with env; returns a static copy of the result or "<error: ...>". */
static const char *
ex(const char *in)
{
	static char buf[4096];
	setup();
	struct bld_shell sh = {.lookup = bld_env_lookup, .userdata = &env};
	struct sc_err err = SC_ERR_INIT;
	char *out = NULL;
	if (bld_shell_word(&sh, in, &out, &err) < 0) {
		snprintf(buf, sizeof(buf), "<error: %s>", sc_err_msg(&err));
		return buf;
	}
	snprintf(buf, sizeof(buf), "%s", out);
	free(out);
	return buf;
}

static bool
ex_fails(const char *in, const char *needle)
{
	const char *r = ex(in);
	return strncmp(r, "<error:", 7) == 0 && strstr(r, needle) != NULL;
}

TEST(plain_variables)
{
	ASSERT_STREQ(ex("$SET"), "value");
	ASSERT_STREQ(ex("${SET}"), "value");
	ASSERT_STREQ(ex("x${SET}y"), "xvaluey");
	ASSERT_STREQ(ex("$UNSET"), "");
	ASSERT_STREQ(ex("${UNSET}"), "");
	ASSERT_STREQ(ex("$EMPTY"), "");
	ASSERT_STREQ(ex("$"), "$");
	ASSERT_STREQ(ex("a$ b"), "a$ b");
	ASSERT_STREQ(ex("$SET.x"), "value.x");
}

TEST(default_modifiers)
{
	ASSERT_STREQ(ex("${UNSET:-def}"), "def");
	ASSERT_STREQ(ex("${EMPTY:-def}"), "def");
	ASSERT_STREQ(ex("${SET:-def}"), "value");
	ASSERT_STREQ(ex("${UNSET-def}"), "def");
	ASSERT_STREQ(ex("${EMPTY-def}"), "");
	ASSERT_STREQ(ex("${SET-def}"), "value");
	ASSERT_STREQ(ex("${UNSET:-$SET}"), "value");
	ASSERT_STREQ(ex("${UNSET:-${EMPTY:-nested}}"), "nested");
}

TEST(alternate_modifiers)
{
	ASSERT_STREQ(ex("${UNSET:+alt}"), "");
	ASSERT_STREQ(ex("${EMPTY:+alt}"), "");
	ASSERT_STREQ(ex("${SET:+alt}"), "alt");
	ASSERT_STREQ(ex("${UNSET+alt}"), "");
	ASSERT_STREQ(ex("${EMPTY+alt}"), "alt");
	ASSERT_STREQ(ex("${SET+alt}"), "alt");
}

TEST(required_modifiers)
{
	ASSERT_TRUE(ex_fails("${UNSET:?}", "UNSET: is not allowed to be unset"));
	ASSERT_TRUE(ex_fails("${EMPTY:?}", "EMPTY: is not allowed to be empty"));
	ASSERT_STREQ(ex("${SET:?}"), "value");
	ASSERT_TRUE(ex_fails("${UNSET?need it}", "UNSET: need it"));
	ASSERT_STREQ(ex("${EMPTY?need it}"), "");
	ASSERT_STREQ(ex("${SET?need it}"), "value");
	ASSERT_TRUE(ex_fails("${EMPTY:?custom msg}", "EMPTY: custom msg"));
}

TEST(prefix_removal)
{
	ASSERT_STREQ(ex("${PATHV#*/}"), "usr/local/bin/tool.tar.gz");
	ASSERT_STREQ(ex("${PATHV##*/}"), "tool.tar.gz");
	ASSERT_STREQ(ex("${PATHV#/usr}"), "/local/bin/tool.tar.gz");
	ASSERT_STREQ(ex("${PATHV#nomatch}"), "/usr/local/bin/tool.tar.gz");
	ASSERT_STREQ(ex("${UNSET#*/}"), "");
	ASSERT_STREQ(ex("${EMPTY##*}"), "");
	ASSERT_STREQ(ex("${SET#?}"), "alue");
	ASSERT_STREQ(ex("${SET#\\*}"), "value");
}

TEST(suffix_removal)
{
	ASSERT_STREQ(ex("${PATHV%.*}"), "/usr/local/bin/tool.tar");
	ASSERT_STREQ(ex("${PATHV%%.*}"), "/usr/local/bin/tool");
	ASSERT_STREQ(ex("${PATHV%/*}"), "/usr/local/bin");
	ASSERT_STREQ(ex("${PATHV%%/*}"), "");
	ASSERT_STREQ(ex("${UNSET%x}"), "");
	ASSERT_STREQ(ex("${EMPTY%%x}"), "");
	ASSERT_STREQ(ex("${SET%ue}"), "val");
}

TEST(replacement)
{
	ASSERT_STREQ(ex("${PATHV/\\//:}"), ":usr/local/bin/tool.tar.gz");
	ASSERT_STREQ(ex("${PATHV//\\//:}"), ":usr:local:bin:tool.tar.gz");
	ASSERT_STREQ(ex("${SET/a/A}"), "vAlue");
	ASSERT_STREQ(ex("${SET//[/x}"), "value");
	ASSERT_STREQ(ex("${SET/v*l/V}"), "Vue");
	ASSERT_STREQ(ex("${UNSET/a/b}"), "");
	ASSERT_STREQ(ex("${EMPTY//a/b}"), "");
	ASSERT_STREQ(ex("${SET//?/x}"), "xxxxx");
}

TEST(quotes_and_escapes)
{
	ASSERT_STREQ(ex("'$SET'"), "$SET");
	ASSERT_STREQ(ex("\"$SET\""), "value");
	ASSERT_STREQ(ex("\"a\\\"b\""), "a\"b");
	ASSERT_STREQ(ex("\"a\\xb\""), "a\\xb");
	ASSERT_STREQ(ex("\\$SET"), "$SET");
	ASSERT_STREQ(ex("a\\ b"), "a b");
	ASSERT_STREQ(ex("\"'\""), "'");
	ASSERT_TRUE(ex_fails("'open", "single-quote"));
	ASSERT_TRUE(ex_fails("\"open", "double-quote"));
}

TEST(syntax_errors)
{
	ASSERT_TRUE(ex_fails("${SET", "missing '}'"));
	ASSERT_TRUE(ex_fails("${}", "bad substitution"));
	ASSERT_TRUE(ex_fails("${:-x}", "bad substitution"));
	ASSERT_TRUE(ex_fails("${SET!x}", "unsupported modifier"));
	ASSERT_TRUE(ex_fails("${SET/a", "missing '/'"));
	ASSERT_TRUE(ex_fails("${SET#\\a}", "invalid escape"));
}

TEST(word_splitting)
{
	setup();
	struct bld_shell sh = {.lookup = bld_env_lookup, .userdata = &env};
	struct bld_shell_result r = {0};
	ASSERT_OK(bld_shell_process(&sh, "x $SPACED \"q r\" ''", &r, NULL));
	ASSERT_EQ(r.nwords, 5);
	ASSERT_STREQ(r.words[0], "x");
	ASSERT_STREQ(r.words[1], "a");
	ASSERT_STREQ(r.words[2], "b");
	ASSERT_STREQ(r.words[3], "c");
	ASSERT_STREQ(r.words[4], "q r");
	bld_shell_result_free(&r);
}

TEST(backtick_escape)
{
	setup();
	struct bld_shell sh = {.escape = '`', .lookup = bld_env_lookup, .userdata = &env};
	char *out = NULL;
	ASSERT_OK(bld_shell_word(&sh, "C:\\dir`$SET", &out, NULL));
	ASSERT_STREQ(out, "C:\\dir$SET");
	free(out);
}

TEST(unset_kept_when_asked)
{
	setup();
	struct bld_shell sh = {.skip_unset = true, .lookup = bld_env_lookup, .userdata = &env};
	char *out = NULL;
	ASSERT_OK(bld_shell_word(&sh, "$UNSET ${UNSET:-x} $SET", &out, NULL));
	ASSERT_STREQ(out, "$UNSET ${UNSET:-x} value");
	free(out);
}

TEST(expansion_limit)
{
	setup();
	char *big = malloc(BLD_SHELL_MAX_RESULT / 2 + 1);
	memset(big, 'x', BLD_SHELL_MAX_RESULT / 2);
	big[BLD_SHELL_MAX_RESULT / 2] = '\0';
	bld_env_set(&env, "BIG", big);
	free(big);
	struct bld_shell sh = {.lookup = bld_env_lookup, .userdata = &env};
	char *out = NULL;
	struct sc_err err = SC_ERR_INIT;
	ASSERT_ERRNO(bld_shell_word(&sh, "$BIG$BIG$BIG", &out, &err), -E2BIG);
	bld_env_free(&env);
}

/* The limit counts literal text too, also inside a default value. */
TEST(expansion_limit_literal_text)
{
	size_t max = BLD_SHELL_MAX_RESULT;
	char *in = malloc(max + 16);
	struct bld_shell sh = {0};
	char *out = NULL;

	memset(in, 'x', max);
	in[max] = '\0';
	ASSERT_OK(bld_shell_word(&sh, in, &out, NULL));
	ASSERT_EQ(strlen(out), max);
	free(out);
	out = NULL;

	memset(in, 'x', max + 1);
	in[max + 1] = '\0';
	ASSERT_ERRNO(bld_shell_word(&sh, in, &out, NULL), -E2BIG);

	memcpy(in, "${UNSET:-", 9);
	memset(in + 9, 'x', max + 1);
	memcpy(in + 9 + max + 1, "}", 2);
	ASSERT_ERRNO(bld_shell_word(&sh, in, &out, NULL), -E2BIG);
	free(in);
}

/* Many variables: later sets replace in place, order of first definition is kept. */
TEST(env_many_variables)
{
	struct bld_env e = {0}, copy = {0};
	char name[32], value[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "V%d", i);
		snprintf(value, sizeof(value), "v%d", i);
		ASSERT_OK(bld_env_set(&e, name, value));
	}
	for (int i = 0; i < 5000; i += 7) {
		snprintf(name, sizeof(name), "V%d", i);
		snprintf(value, sizeof(value), "new%d", i);
		ASSERT_OK(bld_env_set(&e, name, value));
	}
	ASSERT_EQ(e.n, 5000);
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "V%d", i);
		snprintf(value, sizeof(value), i % 7 ? "v%d" : "new%d", i);
		ASSERT_STREQ(e.names[i], name);
		ASSERT_EQ(bld_env_find(&e, name), i);
		ASSERT_STREQ(bld_env_get(&e, name), value);
	}
	ASSERT_ERRNO(bld_env_find(&e, "V5000"), -ENOENT);
	ASSERT_TRUE(bld_env_get(&e, "v1") == NULL);
	ASSERT_TRUE(bld_env_get(&copy, "V1") == NULL);
	ASSERT_OK(bld_env_copy(&copy, &e));
	ASSERT_EQ(copy.n, 5000);
	ASSERT_STREQ(copy.names[4999], "V4999");
	ASSERT_STREQ(bld_env_get(&copy, "V4997"), "v4997");
	bld_env_free(&e);
	bld_env_free(&copy);
	ASSERT_TRUE(bld_env_get(&e, "V1") == NULL);
}

int
main(int argc, char **argv)
{
	int r = tap_main(argc, argv);
	bld_env_free(&env);
	return r;
}
