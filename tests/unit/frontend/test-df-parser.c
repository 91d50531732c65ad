/*
 * Parser behaviour beyond the conformance corpus: heredocs, directives,
 * BOM and CRLF, line numbers, warnings, and hostile input (empty, comments
 * only, garbage, invalid UTF-8, huge lines, unterminated heredocs, JSON
 * arrays of non-strings, unknown flags), each a located error, never a crash.
 */
#include <stdlib.h>
#include <string.h>

#include "dockerfile.h"
#include "instructions.h"
#include "tap.h"
#include "util.h"

static struct bld_dockerfile *
parse_ok(const char *text)
{
	struct sc_err err = SC_ERR_INIT;
	struct bld_dockerfile *df = NULL;
	int r = bld_dockerfile_parse(text, strlen(text), "Dockerfile", &df, &err);
	if (r < 0)
		tap_fail(__FILE__, __LINE__, "parse failed: %s", sc_err_msg(&err));
	return df;
}

/* Parses and builds instructions; returns the first error message (static) or NULL. */
static const char *
build_err(const char *text, size_t len)
{
	static struct sc_err err;
	sc_err_clear(&err);
	struct bld_dockerfile *df = NULL;
	int r = bld_dockerfile_parse(text, len, "Dockerfile", &df, &err);
	if (r >= 0) {
		const struct bld_instr *ins;
		size_t n;
		r = bld_dockerfile_instructions(df, &ins, &n, &err);
		bld_dockerfile_free(df);
	}
	return r < 0 ? sc_err_msg(&err) : NULL;
}

static char *
dump(const struct bld_dockerfile *df)
{
	struct sc_buf b = {0};
	if (bld_dockerfile_dump(df, &b) < 0 || sc_buf_put(&b, "", 1) < 0)
		return NULL;
	return (char *)b.data;
}

TEST(heredoc_basic)
{
	struct bld_dockerfile *df = parse_ok("FROM alpine\n"
					     "RUN <<EOF\n"
					     "echo hello\n"
					     "echo world\n"
					     "EOF\n"
					     "RUN true\n");
	ASSERT_EQ(df->nnodes, 3);
	const struct bld_df_node *n = &df->nodes[1];
	ASSERT_EQ(n->nheredocs, 1);
	ASSERT_STREQ(n->heredocs[0].name, "EOF");
	ASSERT_STREQ(n->heredocs[0].content, "echo hello\necho world\n");
	ASSERT_TRUE(n->heredocs[0].expand);
	ASSERT_FALSE(n->heredocs[0].chomp);
	ASSERT_EQ(n->start_line, 2);
	ASSERT_EQ(n->end_line, 5);
	ASSERT_EQ(df->nodes[2].start_line, 6);
	bld_dockerfile_free(df);
}

TEST(heredoc_quoted_chomp_fd_several)
{
	struct bld_dockerfile *df = parse_ok("FROM alpine\n"
					     "COPY <<-\"A\" 3<<'B' /dest/\n"
					     "\t\tfirst\n"
					     "\tA\n"
					     "second $X\n"
					     "B\n");
	const struct bld_df_node *n = &df->nodes[1];
	ASSERT_EQ(n->nheredocs, 2);
	ASSERT_STREQ(n->heredocs[0].name, "A");
	ASSERT_TRUE(n->heredocs[0].chomp);
	ASSERT_FALSE(n->heredocs[0].expand);
	ASSERT_STREQ(n->heredocs[0].content, "\t\tfirst\n");
	ASSERT_STREQ(n->heredocs[1].name, "B");
	ASSERT_EQ(n->heredocs[1].fd, 3);
	ASSERT_FALSE(n->heredocs[1].expand);
	ASSERT_STREQ(n->heredocs[1].content, "second $X\n");
	ASSERT_EQ(n->end_line, 6);

	/* The typed COPY gets inline sources with tabs chomped. */
	const struct bld_instr *ins;
	size_t cnt;
	ASSERT_OK(bld_dockerfile_instructions(df, &ins, &cnt, NULL));
	ASSERT_EQ(ins[1].u.copy.ninline, 2);
	ASSERT_EQ(ins[1].u.copy.nsrcs, 0);
	ASSERT_STREQ(ins[1].u.copy.inline_srcs[0].data, "first\n");
	ASSERT_STREQ(ins[1].u.copy.dest, "/dest/");
	bld_dockerfile_free(df);
}

TEST(heredoc_only_for_run_copy_add_and_not_json)
{
	struct bld_dockerfile *df = parse_ok("FROM alpine\n"
					     "ENV A <<EOF\n"
					     "RUN [\"cat\", \"<<EOF\"]\n"
					     "LABEL x=y\n");
	ASSERT_EQ(df->nnodes, 4);
	ASSERT_EQ(df->nodes[1].nheredocs, 0);
	ASSERT_EQ(df->nodes[2].nheredocs, 0);
	bld_dockerfile_free(df);
}

TEST(heredoc_in_onbuild_and_crlf)
{
	struct bld_dockerfile *df = parse_ok("FROM alpine\r\nONBUILD RUN <<EOT\r\nls\r\nEOT\r\n");
	ASSERT_EQ(df->nnodes, 2);
	ASSERT_EQ(df->nodes[1].nheredocs, 1);
	ASSERT_STREQ(df->nodes[1].heredocs[0].content, "ls\r\n");
	char *d = dump(df);
	ASSERT_STREQ(d, "(from \"alpine\")\n(onbuild (run \"<<EOT\"))\n");
	free(d);
	bld_dockerfile_free(df);
}

TEST(heredoc_unterminated)
{
	const char *t = "FROM alpine\nRUN <<EOF\necho hi\n";
	const char *e = build_err(t, strlen(t));
	ASSERT_NOT_NULL(e);
	ASSERT_TRUE(strstr(e, "Dockerfile:3: unterminated heredoc 'EOF' (started on line 2)") !=
		    NULL);
}

TEST(heredoc_unbalanced_quote_means_none)
{
	/* BuildKit looks for heredocs only in lines its lexer can split. */
	struct bld_dockerfile *df = parse_ok("FROM a\nRUN echo \"<<EOF\nRUN x\n");
	ASSERT_EQ(df->nnodes, 3);
	ASSERT_EQ(df->nodes[1].nheredocs, 0);
	bld_dockerfile_free(df);
}

TEST(bom_crlf_and_directives)
{
	struct bld_dockerfile *df =
		parse_ok("\xEF\xBB\xBF# syntax=docker/dockerfile:1\r\n# escape=`\r\n"
			 "FROM a\r\nRUN echo `\r\n  b\r\n");
	ASSERT_EQ(df->escape, '`');
	ASSERT_STREQ(df->syntax, "docker/dockerfile:1");
	char *d = dump(df);
	ASSERT_STREQ(d, "(from \"a\")\n(run \"echo   b\")\n");
	free(d);
	ASSERT_EQ(df->nodes[1].start_line, 4);
	ASSERT_EQ(df->nodes[1].end_line, 5);
	bld_dockerfile_free(df);
}

TEST(repeated_directive_is_error)
{
	const char *t = "# escape=`\n# escape=\\\nFROM a\n";
	const char *e = build_err(t, strlen(t));
	ASSERT_NOT_NULL(e);
	ASSERT_TRUE(strstr(e, "Dockerfile:2: only one escape parser directive") != NULL);
	t = "# escape=x\nFROM a\n";
	e = build_err(t, strlen(t));
	ASSERT_TRUE(e && strstr(e, "invalid escape token 'x'"));
}

TEST(directive_after_instruction_is_comment)
{
	struct bld_dockerfile *df = parse_ok("FROM a\n# escape=`\nRUN x \\\n y\n");
	ASSERT_EQ(df->escape, '\\');
	ASSERT_EQ(df->nnodes, 2);
	bld_dockerfile_free(df);
}

TEST(empty_continuation_warns)
{
	struct bld_dockerfile *df = parse_ok("FROM a\nRUN a \\\n\n b\n");
	ASSERT_EQ(df->nwarnings, 1);
	ASSERT_EQ(df->warnings[0].line, 4);
	ASSERT_TRUE(strstr(df->warnings[0].msg, "empty continuation line") != NULL);
	bld_dockerfile_free(df);
}

TEST(empty_file)
{
	const char *e = build_err("", 0);
	ASSERT_NOT_NULL(e);
	ASSERT_TRUE(strstr(e, "Dockerfile:1: file with no instructions") != NULL);
}

TEST(only_comments)
{
	const char *t = "# one\n\n   # two\n";
	const char *e = build_err(t, strlen(t));
	ASSERT_NOT_NULL(e);
	ASSERT_TRUE(strstr(e, "Dockerfile:3: file with no instructions") != NULL);
}

TEST(garbage_10mib)
{
	size_t len = 10u << 20;
	char *buf = malloc(len);
	ASSERT_NOT_NULL(buf);
	uint32_t x = 12345;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (char)(x >> 16);
		if (buf[i] == '\n' && (i % 7))
			buf[i] = 'x'; /* keep some long-ish lines */
	}
	const char *e = build_err(buf, len);
	free(buf);
	ASSERT_NOT_NULL(e);
	ASSERT_TRUE(strncmp(e, "Dockerfile:", 11) == 0);
	ASSERT_TRUE(e[11] >= '1' && e[11] <= '9');
}

TEST(invalid_utf8)
{
	const char *t = "FROM alpine\nRUN echo \xff\xfe\n";
	const char *e = build_err(t, strlen(t));
	ASSERT_NOT_NULL(e);
	ASSERT_STREQ(e, "Dockerfile:2:10: invalid UTF-8 (byte 0xff); save the file as UTF-8");
}

TEST(line_of_1mib)
{
	size_t len = (1u << 20) + 20;
	char *buf = malloc(len + 1);
	memcpy(buf, "FROM a\nRUN ", 11);
	memset(buf + 11, 'a', len - 12);
	buf[len - 1] = '\n';
	buf[len] = '\0';
	const char *e = build_err(buf, len);
	free(buf);
	ASSERT_NOT_NULL(e);
	ASSERT_TRUE(strstr(e, "Dockerfile:2: line is") != NULL);
	ASSERT_TRUE(strstr(e, "over the limit of 65535 bytes") != NULL);
}

TEST(json_with_non_strings)
{
	const char *t = "FROM a\nCMD [\"a\", 1]\n";
	const char *e = build_err(t, strlen(t));
	ASSERT_NOT_NULL(e);
	ASSERT_STREQ(e, "Dockerfile:2: when using JSON array syntax, arrays must be comprised of "
			"strings only");
	/* Not JSON at all: shell form, no error. */
	struct bld_dockerfile *df = parse_ok("FROM a\nCMD [\"a\", 1\n");
	ASSERT_EQ(df->nodes[1].nargs, 1);
	ASSERT_FALSE(df->nodes[1].attrs & BLD_DF_NODE_JSON);
	bld_dockerfile_free(df);
}

TEST(unknown_flag)
{
	const char *t = "FROM a\nRUN true\n\n\n\n\nCOPY --chwon=1 a b\n";
	const char *e = build_err(t, strlen(t));
	ASSERT_NOT_NULL(e);
	ASSERT_STREQ(e, "Dockerfile:7: unknown flag --chwon for COPY (did you mean --chown?)");
}

TEST(unknown_instruction)
{
	const char *t = "FROM a\nCOPPY a b\n";
	const char *e = build_err(t, strlen(t));
	ASSERT_NOT_NULL(e);
	ASSERT_STREQ(e, "Dockerfile:2: unknown instruction: 'COPPY' (did you mean COPY?)");
	/* The parser alone keeps it, as BuildKit does. */
	struct bld_dockerfile *df = parse_ok("FROM a\nfoo bar\n");
	char *d = dump(df);
	ASSERT_STREQ(d, "(from \"a\")\n(foo \"\")\n");
	free(d);
	bld_dockerfile_free(df);
}

TEST(onbuild_nesting_limit)
{
	const char *t = "FROM a\nONBUILD ONBUILD ONBUILD ONBUILD ONBUILD ONBUILD RUN x\n";
	const char *e = build_err(t, strlen(t));
	ASSERT_NOT_NULL(e);
	ASSERT_TRUE(strstr(e, "Dockerfile:2:") == e);
}

TEST(json_nul_and_unicode)
{
	struct bld_dockerfile *df = parse_ok("CMD [\"\\u00e9\\ud83d\\ude00\", \"a\\u0000b\"]\n");
	char *d = dump(df);
	ASSERT_STREQ(d, "(cmd \"\xc3\xa9\xf0\x9f\x98\x80\" \"a\\x00b\")\n");
	free(d);
	ASSERT_EQ(df->nodes[0].arg_lens[1], 3);
	bld_dockerfile_free(df);
}

TEST(dump_quotes_nonprintable)
{
	struct bld_dockerfile *df = parse_ok("RUN a\x01\xc2\xa0\xe2\x80\x8b\xff\n");
	char *d = dump(df);
	ASSERT_STREQ(d, "(run \"a\\x01\\u00a0\\u200b\\xff\")\n");
	free(d);
	bld_dockerfile_free(df);
}

TEST(flags_and_double_dash)
{
	struct bld_dockerfile *df = parse_ok("COPY --from=\"a b\" --link -- --x y\n");
	ASSERT_EQ(df->nodes[0].nflags, 2);
	ASSERT_STREQ(df->nodes[0].flags[0], "--from=a b");
	ASSERT_STREQ(df->nodes[0].flags[1], "--link");
	ASSERT_EQ(df->nodes[0].nargs, 2);
	ASSERT_STREQ(df->nodes[0].args[0], "--x");
	bld_dockerfile_free(df);
}

TEST(load_missing_file)
{
	struct bld_dockerfile *df = NULL;
	struct sc_err err = SC_ERR_INIT;
	ASSERT_ERRNO(bld_dockerfile_load("/nonexistent/Dockerfile", &df, &err), -ENOENT);
	ASSERT_TRUE(strstr(sc_err_msg(&err), "/nonexistent/Dockerfile") != NULL);
}

int
main(int argc, char **argv)
{
	return tap_main(argc, argv);
}
