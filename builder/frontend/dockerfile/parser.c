/*
 * Dockerfile text -> instruction nodes (see dockerfile.h).
 *
 * The file is read one physical line at a time, the way BuildKit's scanner
 * does: leading parser directives, then logical lines built by joining
 * continuations, each turned into a node by the line parser its keyword
 * selects, then the heredoc bodies the node announces. Every string lives in
 * the parse's arena.
 *
 * Invariants:
 *  1. Line numbers are 1-based and count physical lines, heredoc bodies
 *     included; a node's end_line is the last line it consumed.
 *  2. The escape character changes only through a directive, which can only
 *     appear before the first instruction, comment or blank line.
 *  3. No physical line is longer than BLD_DF_MAX_LINE and no logical line
 *     than BLD_DF_MAX_LOGICAL_LINE, so every later pass is bounded.
 */
#include "dockerfile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "internal.h"
#include "shell.h"

struct parser {
	struct bld_dockerfile *df;
	struct bld_arena *a;
	const char *data;
	size_t len, pos;
	unsigned line; /* physical lines consumed so far */
	char esc;
	bool directives_done;
	bool seen_syntax, seen_escape, seen_check;
	struct sc_err *err;
	const char *fn;
	struct bld_df_warning *warnings;
	size_t nwarnings, cap_warnings;
	struct bld_str word; /* the word being read by parse_words() or extract_flags() */
};

struct span {
	const char *s;
	size_t len;
};

/* Next physical line including its '\n' (if any); false at end of input. */
static int
next_line(struct parser *p, struct span *ret, bool *ok)
{
	*ok = false;
	if (p->pos >= p->len)
		return 0;
	const char *start = p->data + p->pos;
	const char *nl = memchr(start, '\n', p->len - p->pos);
	size_t n = nl ? (size_t)(nl - start) + 1 : p->len - p->pos;
	size_t content = nl ? n - 1 : n;
	if (content > BLD_DF_MAX_LINE)
		return sc_err_set(p->err, -E2BIG,
				  "%s:%u: line is %zu bytes long, over the limit of %u bytes; "
				  "split it with line continuations",
				  p->fn, p->line + 1, content, BLD_DF_MAX_LINE);
	ret->s = start;
	ret->len = n;
	p->pos += n;
	*ok = true;
	return 0;
}

static struct span
trim_newline(struct span l)
{
	while (l.len > 0 && (l.s[l.len - 1] == '\n' || l.s[l.len - 1] == '\r'))
		l.len--;
	return l;
}

static struct span
trim_left(struct span l)
{
	size_t off = bld_trim_left_off(l.s, l.len);
	l.s += off;
	l.len -= off;
	return l;
}

static bool
is_comment(struct span raw)
{
	struct span t = trim_left(trim_newline(raw));
	return t.len > 0 && t.s[0] == '#';
}

static int
add_warning(struct parser *p, unsigned line, const char *msg)
{
	if (p->nwarnings == p->cap_warnings) {
		size_t cap = p->cap_warnings ? p->cap_warnings * 2 : 4;
		struct bld_df_warning *w = bld_arena_alloc(p->a, cap * sizeof(*w));
		if (!w)
			return -ENOMEM;
		if (p->nwarnings)
			memcpy(w, p->warnings, p->nwarnings * sizeof(*w));
		p->warnings = w;
		p->cap_warnings = cap;
	}
	p->warnings[p->nwarnings].line = line;
	p->warnings[p->nwarnings].msg = msg;
	p->nwarnings++;
	return 0;
}

static bool
is_go_regexp_space(char c)
{
	/* \s in Go's RE2 syntax: no vertical tab. */
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

/*
 * "# name = value" at the top of the file. Anything else ends the directive
 * section for good.
 */
static int
possible_directive(struct parser *p, struct span tok, unsigned lineno)
{
	if (p->directives_done)
		return 0;
	if (tok.len == 0 || tok.s[0] != '#') {
		p->directives_done = true;
		return 0;
	}
	struct span t = trim_left((struct span){tok.s + 1, tok.len - 1});
	size_t i = 0;
	if (i >= t.len || !((t.s[i] | 0x20) >= 'a' && (t.s[i] | 0x20) <= 'z')) {
		p->directives_done = true;
		return 0;
	}
	while (i < t.len && (((t.s[i] | 0x20) >= 'a' && (t.s[i] | 0x20) <= 'z') ||
			     (t.s[i] >= '0' && t.s[i] <= '9')))
		i++;
	size_t name_len = i;
	while (i < t.len && is_go_regexp_space(t.s[i]))
		i++;
	if (i >= t.len || t.s[i] != '=') {
		p->directives_done = true;
		return 0;
	}
	i++;
	while (i < t.len && is_go_regexp_space(t.s[i]))
		i++;
	size_t vend = t.len;
	while (vend > i && is_go_regexp_space(t.s[vend - 1]))
		vend--;
	if (vend <= i) {
		p->directives_done = true;
		return 0;
	}
	char name[16] = {0};
	if (name_len >= sizeof(name)) {
		p->directives_done = true;
		return 0;
	}
	for (size_t k = 0; k < name_len; k++)
		name[k] = (char)(t.s[k] | 0x20);
	bool *seen;
	if (strcmp(name, "syntax") == 0)
		seen = &p->seen_syntax;
	else if (strcmp(name, "escape") == 0)
		seen = &p->seen_escape;
	else if (strcmp(name, "check") == 0)
		seen = &p->seen_check;
	else {
		p->directives_done = true;
		return 0;
	}
	if (*seen)
		return sc_err_set(
			p->err, -EINVAL,
			"%s:%u: only one %s parser directive can be used; remove this one", p->fn,
			lineno, name);
	*seen = true;
	const char *value = bld_arena_strndup(p->a, t.s + i, vend - i);
	if (!value)
		return -ENOMEM;
	if (strcmp(name, "escape") == 0) {
		if (strcmp(value, "`") != 0 && strcmp(value, "\\") != 0)
			return sc_err_set(p->err, -EINVAL,
					  "%s:%u: invalid escape token '%s' does not match ` or \\",
					  p->fn, lineno, value);
		p->esc = value[0];
	} else if (strcmp(name, "syntax") == 0) {
		p->df->syntax = value;
	} else {
		p->df->check = value;
	}
	return 0;
}

/*
 * Removes a line continuation: the escape character as the last non-blank
 * character, not itself escaped (or alone on the line). Returns true when
 * the line ends the instruction (no continuation).
 */
static bool
trim_continuation(const struct parser *p, struct span *l)
{
	size_t end = l->len;
	while (end > 0 && (l->s[end - 1] == ' ' || l->s[end - 1] == '\t'))
		end--;
	if (end == 0 || l->s[end - 1] != p->esc)
		return true;
	if (end == 1) {
		l->len = 0;
		return false;
	}
	if (l->s[end - 2] == p->esc)
		return true;
	l->len = end - 1;
	return false;
}

/* ---- line parsers ------------------------------------------------------- */

struct args {
	struct bld_strv v;
	size_t *lens; /* byte lengths, only from JSON (strings may hold NUL) */
	size_t nlens, cap_lens;
	unsigned attrs;
};

static const char *
adup(struct parser *p, const char *s, size_t n)
{
	return bld_arena_strndup(p->a, s, n);
}

/* BuildKit's parseWords: words with quotes and escapes kept as written. */
static int
parse_words(struct parser *p, const char *rest, size_t len, struct bld_strv *out)
{
	enum { IN_SPACES, IN_WORD, IN_QUOTE } phase = IN_SPACES;
	struct bld_str *word = &p->word;
	uint32_t quote = 0;
	bool blank_ok = false;
	size_t pos = 0, w = 0;
	uint32_t ch = 0;
	bld_str_reset(word);
	for (pos = 0; pos <= len; pos += w) {
		if (pos != len)
			ch = bld_utf8_decode(rest + pos, len - pos, &w);
		else
			w = 1;
		bool space =
			pos != len && bld_rune_is_space(ch) && !(ch == BLD_RUNE_ERROR && w == 1);
		if (phase == IN_SPACES) {
			if (pos == len)
				break;
			if (space)
				continue;
			phase = IN_WORD;
		}
		if (pos == len) {
			if (blank_ok || word->len > 0)
				bld_strv_push(out, adup(p, word->s ? word->s : "", word->len));
			break;
		}
		if (phase == IN_WORD) {
			if (space) {
				phase = IN_SPACES;
				if (blank_ok || word->len > 0)
					bld_strv_push(out,
						      adup(p, word->s ? word->s : "", word->len));
				bld_str_reset(word);
				blank_ok = false;
				continue;
			}
			if (ch == '\'' || ch == '"') {
				quote = ch;
				blank_ok = true;
				phase = IN_QUOTE;
			}
			if (ch == (unsigned char)p->esc) {
				if (pos + w == len)
					continue;
				bld_str_putn(word, rest + pos, w);
				pos += w;
				ch = bld_utf8_decode(rest + pos, len - pos, &w);
			}
			bld_str_putn(word, rest + pos, w);
			continue;
		}
		/* IN_QUOTE */
		if (ch == quote)
			phase = IN_WORD;
		if (ch == (unsigned char)p->esc && quote != '\'') {
			if (pos + w == len) {
				phase = IN_WORD;
				continue;
			}
			bld_str_putn(word, rest + pos, w);
			pos += w;
			ch = bld_utf8_decode(rest + pos, len - pos, &w);
		}
		bld_str_putn(word, rest + pos, w);
	}
	return word->oom || out->oom ? -ENOMEM : 0;
}

/* Splits on runs of [\t\v\f\r ] like Go's regexp.Split; n == 2 stops after the first cut. */
static int
split_ws(struct parser *p, const char *s, size_t len, int n, struct bld_strv *out)
{
	size_t beg = 0, i = 0;
	while (i < len) {
		if (!bld_is_hspace(s[i])) {
			i++;
			continue;
		}
		size_t m0 = i;
		while (i < len && bld_is_hspace(s[i]))
			i++;
		if (n > 0 && out->n == (size_t)n - 1) {
			i = m0;
			break;
		}
		bld_strv_push(out, adup(p, s + beg, m0 - beg));
		beg = i;
		if (n > 0 && out->n == (size_t)n - 1)
			break;
	}
	if (beg != len || out->n == 0 || i == len)
		bld_strv_push(out, adup(p, s + beg, len - beg));
	return out->oom ? -ENOMEM : 0;
}

static int
parse_ws_delimited(struct parser *p, const char *rest, size_t len, struct args *a)
{
	if (len == 0)
		return 0;
	return split_ws(p, rest, len, -1, &a->v);
}

enum json_result { JSON_OK, JSON_INVALID, JSON_NOT_STRINGS };

static size_t
json_ws(const char *s, size_t len, size_t i)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return (c | 0x20) - 'a' + 10;
	return -1;
}

/* Scans a JSON string at s[i] == '"'; decodes into out when out != NULL. Returns end or 0. */
static size_t
json_string(const char *s, size_t len, size_t i, struct bld_str *out)
{
	i++;
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"')
			return i + 1;
		if (c < 0x20)
			return 0;
		if (c == '\\') {
			if (i + 1 >= len)
				return 0;
			char e = s[i + 1];
			i += 2;
			switch (e) {
			case '"':
			case '\\':
			case '/':
				if (out)
					bld_str_putc(out, e);
				break;
			case 'b':
				if (out)
					bld_str_putc(out, '\b');
				break;
			case 'f':
				if (out)
					bld_str_putc(out, '\f');
				break;
			case 'n':
				if (out)
					bld_str_putc(out, '\n');
				break;
			case 'r':
				if (out)
					bld_str_putc(out, '\r');
				break;
			case 't':
				if (out)
					bld_str_putc(out, '\t');
				break;
			case 'u': {
				uint32_t r = 0;
				if (i + 4 > len)
					return 0;
				for (int k = 0; k < 4; k++) {
					int h = hexval(s[i + k]);
					if (h < 0)
						return 0;
					r = r * 16 + (uint32_t)h;
				}
				i += 4;
				if (r >= 0xD800 && r < 0xDC00 && i + 6 <= len && s[i] == '\\' &&
				    s[i + 1] == 'u') {
					uint32_t lo = 0;
					bool okhex = true;
					for (int k = 0; k < 4; k++) {
						int h = hexval(s[i + 2 + k]);
						if (h < 0)
							okhex = false;
						lo = lo * 16 + (uint32_t)(h < 0 ? 0 : h);
					}
					if (okhex && lo >= 0xDC00 && lo < 0xE000) {
						r = 0x10000 + ((r - 0xD800) << 10) + (lo - 0xDC00);
						i += 6;
					}
				}
				if (r >= 0xD800 && r < 0xE000)
					r = BLD_RUNE_ERROR;
				if (out)
					bld_str_put_rune(out, r);
				break;
			}
			default:
				return 0;
			}
			continue;
		}
		size_t w;
		uint32_t r = bld_utf8_decode(s + i, len - i, &w);
		if (out) {
			if (r == BLD_RUNE_ERROR && w == 1)
				bld_str_put_rune(out, BLD_RUNE_ERROR);
			else
				bld_str_putn(out, s + i, w);
		}
		i += w;
	}
	return 0;
}

static size_t
json_number(const char *s, size_t len, size_t i)
{
	if (i < len && s[i] == '-')
		i++;
	if (i >= len)
		return 0;
	if (s[i] == '0')
		i++;
	else if (s[i] >= '1' && s[i] <= '9')
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
	else
		return 0;
	if (i < len && s[i] == '.') {
		i++;
		if (i >= len || s[i] < '0' || s[i] > '9')
			return 0;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= len || s[i] < '0' || s[i] > '9')
			return 0;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	return i;
}

#define JSON_MAX_DEPTH 10000

/* Validates one complete JSON value covering s[0..len) (white space around allowed). */
static bool
json_valid(const char *s, size_t len)
{
	unsigned char stack[JSON_MAX_DEPTH / 8 + 1]; /* bit set: 1 = object */
	size_t depth = 0;
	size_t i = json_ws(s, len, 0);
	/* expect: 0 value, 1 after value, 2 object key */
	int expect = 0;
	for (;;) {
		if (expect == 0) {
			if (i >= len)
				return false;
			char c = s[i];
			if (c == '[' || c == '{') {
				if (depth >= JSON_MAX_DEPTH)
					return false;
				if (c == '{')
					stack[depth / 8] |= (unsigned char)(1u << (depth % 8));
				else
					stack[depth / 8] &= (unsigned char)~(1u << (depth % 8));
				depth++;
				i = json_ws(s, len, i + 1);
				if (i < len && s[i] == (c == '[' ? ']' : '}')) {
					depth--;
					i++;
					expect = 1;
				} else {
					expect = c == '{' ? 2 : 0;
				}
				continue;
			}
			size_t e;
			if (c == '"')
				e = json_string(s, len, i, NULL);
			else if (c == 't')
				e = len - i >= 4 && memcmp(s + i, "true", 4) == 0 ? i + 4 : 0;
			else if (c == 'f')
				e = len - i >= 5 && memcmp(s + i, "false", 5) == 0 ? i + 5 : 0;
			else if (c == 'n')
				e = len - i >= 4 && memcmp(s + i, "null", 4) == 0 ? i + 4 : 0;
			else
				e = json_number(s, len, i);
			if (e == 0)
				return false;
			i = e;
			expect = 1;
		} else if (expect == 2) {
			i = json_ws(s, len, i);
			if (i >= len || s[i] != '"')
				return false;
			size_t e = json_string(s, len, i, NULL);
			if (e == 0)
				return false;
			i = json_ws(s, len, e);
			if (i >= len || s[i] != ':')
				return false;
			i = json_ws(s, len, i + 1);
			expect = 0;
		} else {
			i = json_ws(s, len, i);
			if (depth == 0)
				return i == len;
			bool obj = stack[(depth - 1) / 8] & (1u << ((depth - 1) % 8));
			if (i >= len)
				return false;
			if (s[i] == ',') {
				i = json_ws(s, len, i + 1);
				expect = obj ? 2 : 0;
			} else if (s[i] == (obj ? '}' : ']')) {
				depth--;
				i++;
			} else {
				return false;
			}
		}
	}
}

static int
parse_json(struct parser *p, const char *rest, size_t len, struct args *a, enum json_result *res)
{
	size_t off = bld_trim_left_off(rest, len);
	rest += off;
	len -= off;
	*res = JSON_INVALID;
	if (len == 0 || rest[0] != '[' || !json_valid(rest, len))
		return 0;
	size_t i = json_ws(rest, len, 1);
	struct bld_str s = {0};
	while (i < len && rest[i] != ']') {
		if (rest[i] != '"') {
			*res = JSON_NOT_STRINGS;
			bld_str_done(&s);
			return 0;
		}
		bld_str_reset(&s);
		bld_str_putc(&s, 'x'); /* make sure s.s exists even for "" */
		bld_str_reset(&s);
		i = json_string(rest, len, i, &s);
		bld_strv_push(&a->v, adup(p, s.s ? s.s : "", s.len));
		if (a->nlens == a->cap_lens) {
			size_t cap = a->cap_lens ? 2 * a->cap_lens : 8;
			size_t *nl = realloc(a->lens, cap * sizeof(size_t));
			if (!nl) {
				bld_str_done(&s);
				return -ENOMEM;
			}
			a->lens = nl;
			a->cap_lens = cap;
		}
		a->lens[a->nlens++] = s.len;
		i = json_ws(rest, len, i);
		if (i < len && rest[i] == ',')
			i = json_ws(rest, len, i + 1);
	}
	bool oom = s.oom;
	bld_str_done(&s);
	if (oom || a->v.oom)
		return -ENOMEM;
	a->attrs |= BLD_DF_NODE_JSON;
	*res = JSON_OK;
	return 0;
}

static int
err_not_strings(struct parser *p)
{
	return sc_err_set(p->err, -EINVAL,
			  "when using JSON array syntax, arrays must be comprised of strings only");
}

static int
parse_maybe_json(struct parser *p, const char *rest, size_t len, struct args *a)
{
	if (len == 0)
		return 0;
	enum json_result res;
	int r = parse_json(p, rest, len, a, &res);
	if (r < 0)
		return r;
	if (res == JSON_OK)
		return 0;
	if (res == JSON_NOT_STRINGS)
		return err_not_strings(p);
	bld_strv_push(&a->v, adup(p, rest, len));
	return a->v.oom ? -ENOMEM : 0;
}

static int
parse_maybe_json_to_list(struct parser *p, const char *rest, size_t len, struct args *a)
{
	enum json_result res;
	int r = parse_json(p, rest, len, a, &res);
	if (r < 0)
		return r;
	if (res == JSON_OK)
		return 0;
	if (res == JSON_NOT_STRINGS)
		return err_not_strings(p);
	return parse_ws_delimited(p, rest, len, a);
}

static int
parse_name_val(struct parser *p, const char *rest, size_t len, const char *key, struct args *a)
{
	struct bld_strv words = {0};
	int r = parse_words(p, rest, len, &words);
	if (r < 0 || words.n == 0)
		goto out;
	if (!strchr(words.v[0], '=')) {
		struct bld_strv parts = {0};
		r = split_ws(p, rest, len, 2, &parts);
		if (r >= 0 && parts.n < 2)
			r = sc_err_set(p->err, -EINVAL,
				       "%s must have two arguments ('%s NAME VALUE' or '%s "
				       "NAME=VALUE')",
				       key, key, key);
		if (r >= 0) {
			bld_strv_push(&a->v, parts.v[0]);
			bld_strv_push(&a->v, parts.v[1]);
			bld_strv_push(&a->v, "");
		}
		bld_strv_done(&parts);
		goto out;
	}
	for (size_t i = 0; i < words.n; i++) {
		const char *eq = strchr(words.v[i], '=');
		if (!eq) {
			struct bld_str q = {0};
			bld_go_quote(&q, words.v[i], strlen(words.v[i]));
			r = sc_err_set(p->err, -EINVAL,
				       "Syntax error - can't find = in %s. Must be of the form: "
				       "name=value",
				       q.s ? q.s : "");
			bld_str_done(&q);
			goto out;
		}
		bld_strv_push(&a->v, adup(p, words.v[i], (size_t)(eq - words.v[i])));
		bld_strv_push(&a->v, eq + 1);
		bld_strv_push(&a->v, "=");
	}
out:
	bld_strv_done(&words);
	if (r >= 0 && a->v.oom)
		r = -ENOMEM;
	return r;
}

static int
parse_string(struct parser *p, const char *rest, size_t len, struct args *a)
{
	if (len == 0)
		return 0;
	bld_strv_push(&a->v, adup(p, rest, len));
	return a->v.oom ? -ENOMEM : 0;
}

static int
parse_health(struct parser *p, const char *rest, size_t len, struct args *a)
{
	size_t sep = 0;
	while (sep < len && !bld_is_ascii_space(rest[sep]))
		sep++;
	size_t next = sep;
	while (next < len && bld_is_ascii_space(rest[next]))
		next++;
	if (sep == 0)
		return 0;
	bld_strv_push(&a->v, adup(p, rest, sep));
	if (a->v.oom)
		return -ENOMEM;
	return parse_maybe_json(p, rest + next, len - next, a);
}

/*
 * BuildKit's extractBuilderFlags: leading "--name[=value]" words, quotes and
 * backslashes processed; "--" alone ends the flags. *ret_rest points at the
 * remaining text.
 */
static int
extract_flags(struct parser *p, const char *line, size_t len, struct bld_strv *flags,
	      size_t *ret_rest)
{
	enum { IN_SPACES, IN_WORD, IN_QUOTE } phase = IN_SPACES;
	struct bld_str *word = &p->word;
	char quote = 0;
	bool blank_ok = false;
	int r = 0;
	bld_str_reset(word);
	*ret_rest = len;
	for (size_t pos = 0; pos <= len; pos++) {
		char ch = pos < len ? line[pos] : 0;
		if (phase == IN_SPACES) {
			if (pos == len)
				break;
			if (bld_is_ascii_space(ch))
				continue;
			if (ch != '-' || pos + 1 == len || line[pos + 1] != '-') {
				*ret_rest = pos;
				goto out;
			}
			phase = IN_WORD;
		}
		if (pos == len) {
			bool dashdash = word->len == 2 && memcmp(word->s, "--", 2) == 0;
			if (!dashdash && (blank_ok || word->len > 0))
				bld_strv_push(flags, adup(p, word->s ? word->s : "", word->len));
			break;
		}
		if (phase == IN_WORD) {
			if (bld_is_ascii_space(ch)) {
				phase = IN_SPACES;
				if (word->len == 2 && memcmp(word->s, "--", 2) == 0) {
					*ret_rest = pos;
					goto out;
				}
				if (blank_ok || word->len > 0)
					bld_strv_push(flags,
						      adup(p, word->s ? word->s : "", word->len));
				bld_str_reset(word);
				blank_ok = false;
				continue;
			}
			if (ch == '\'' || ch == '"') {
				quote = ch;
				blank_ok = true;
				phase = IN_QUOTE;
				continue;
			}
			if (ch == '\\') {
				if (pos + 1 == len)
					continue;
				pos++;
				ch = line[pos];
			}
			bld_str_putc(word, ch);
			continue;
		}
		if (ch == quote) {
			phase = IN_WORD;
			continue;
		}
		if (ch == '\\') {
			if (pos + 1 == len) {
				phase = IN_WORD;
				continue;
			}
			pos++;
			ch = line[pos];
		}
		bld_str_putc(word, ch);
	}
out:
	if (word->oom || flags->oom)
		r = -ENOMEM;
	return r;
}

static int new_node(struct parser *p, const char *line, size_t len, unsigned depth,
		    struct bld_df_node *node);

static int
parse_subcommand(struct parser *p, const char *rest, size_t len, unsigned depth,
		 struct bld_df_node *node)
{
	if (len == 0)
		return 0;
	if (depth + 1 > BLD_DF_MAX_ONBUILD)
		return sc_err_set(p->err, -EINVAL, "ONBUILD nested more than %u levels deep",
				  BLD_DF_MAX_ONBUILD);
	struct bld_df_node *child = bld_arena_alloc(p->a, sizeof(*child));
	if (!child)
		return -ENOMEM;
	int r = new_node(p, rest, len, depth + 1, child);
	if (r < 0)
		return r;
	node->sub = child;
	return 0;
}

static bool
kw_is(const char *kw, size_t n, const char *want)
{
	return strlen(want) == n && strncasecmp(kw, want, n) == 0;
}

static int
new_node(struct parser *p, const char *line, size_t len, unsigned depth, struct bld_df_node *node)
{
	/* Trim (Unicode white space, both ends), then cut the keyword at [\t\v\f\r ]+. */
	size_t off = bld_trim_left_off(line, len);
	line += off;
	len -= off;
	len = bld_trim_right_len(line, len);
	node->original = adup(p, line, len);
	if (!node->original)
		return -ENOMEM;

	size_t kw = 0;
	while (kw < len && !bld_is_hspace(line[kw]))
		kw++;
	size_t rest_off = kw;
	while (rest_off < len && bld_is_hspace(line[rest_off]))
		rest_off++;
	node->keyword = adup(p, line, kw);
	if (!node->keyword)
		return -ENOMEM;

	struct bld_strv flags = {0};
	struct args a = {0};
	const char *rest = line + rest_off;
	size_t rlen = len - rest_off;
	int r = 0;
	if (rlen > 0) {
		size_t roff;
		r = extract_flags(p, rest, rlen, &flags, &roff);
		if (r < 0)
			goto out;
		rest += roff;
		rlen -= roff;
	}
	off = bld_trim_left_off(rest, rlen);
	rest += off;
	rlen -= off;
	rlen = bld_trim_right_len(rest, rlen);

	const char *k = line;
	if (kw_is(k, kw, "add") || kw_is(k, kw, "copy") || kw_is(k, kw, "volume"))
		r = parse_maybe_json_to_list(p, rest, rlen, &a);
	else if (kw_is(k, kw, "arg"))
		r = parse_words(p, rest, rlen, &a.v);
	else if (kw_is(k, kw, "cmd") || kw_is(k, kw, "entrypoint") || kw_is(k, kw, "run") ||
		 kw_is(k, kw, "shell"))
		r = parse_maybe_json(p, rest, rlen, &a);
	else if (kw_is(k, kw, "env"))
		r = parse_name_val(p, rest, rlen, "ENV", &a);
	else if (kw_is(k, kw, "label"))
		r = parse_name_val(p, rest, rlen, "LABEL", &a);
	else if (kw_is(k, kw, "expose") || kw_is(k, kw, "from"))
		r = parse_ws_delimited(p, rest, rlen, &a);
	else if (kw_is(k, kw, "healthcheck"))
		r = parse_health(p, rest, rlen, &a);
	else if (kw_is(k, kw, "maintainer") || kw_is(k, kw, "stopsignal") || kw_is(k, kw, "user") ||
		 kw_is(k, kw, "workdir"))
		r = parse_string(p, rest, rlen, &a);
	else if (kw_is(k, kw, "onbuild"))
		r = parse_subcommand(p, rest, rlen, depth, node);
	else
		bld_strv_push(&a.v, ""); /* unknown: BuildKit keeps one empty argument */
	if (r < 0)
		goto out;
	if (a.v.oom || flags.oom) {
		r = -ENOMEM;
		goto out;
	}

	if (flags.n) {
		const char **f = bld_arena_memdup(p->a, flags.v, flags.n * sizeof(char *));
		if (!f) {
			r = -ENOMEM;
			goto out;
		}
		node->flags = f;
		node->nflags = flags.n;
	}
	if (a.v.n) {
		const char **v = bld_arena_memdup(p->a, a.v.v, a.v.n * sizeof(char *));
		if (!v) {
			r = -ENOMEM;
			goto out;
		}
		node->args = v;
		node->nargs = a.v.n;
		size_t *lens = bld_arena_alloc(p->a, a.v.n * sizeof(size_t));
		if (!lens) {
			r = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < a.v.n; i++)
			lens[i] = a.nlens == a.v.n ? a.lens[i] : strlen(v[i]);
		node->arg_lens = lens;
	}
	node->attrs = a.attrs;
out:
	bld_strv_done(&flags);
	bld_strv_done(&a.v);
	free(a.lens);
	return r;
}

/* ---- heredocs ----------------------------------------------------------- */

static size_t
count_quotes(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == '\'' || *s == '"';
	return n;
}

int
bld_df_heredoc_parse(const char *word, struct bld_df_heredoc *ret, struct sc_err *err)
{
	/* ^(\d*)<<(-?)([^<]*)$ */
	const char *s = word;
	unsigned long fd = 0;
	bool fd_overflow = false;
	while (*s >= '0' && *s <= '9') {
		if (fd > 0xFFFFFFFFul / 10)
			fd_overflow = true;
		fd = fd * 10 + (unsigned long)(*s - '0');
		s++;
	}
	if (s[0] != '<' || s[1] != '<')
		return 0;
	s += 2;
	bool chomp = false;
	if (*s == '-') {
		chomp = true;
		s++;
	}
	if (strchr(s, '<') || *s == '\0')
		return 0;

	struct bld_shell sh = {.escape = '\\', .skip_unset = true};
	struct bld_shell_result plain = {0}, raw = {0};
	int r = bld_shell_process(&sh, s, &plain, err);
	if (r < 0)
		return r;
	if (plain.nwords != 1) {
		bld_shell_result_free(&plain);
		return 0;
	}
	sh.raw_quotes = true;
	r = bld_shell_process(&sh, s, &raw, err);
	if (r < 0) {
		bld_shell_result_free(&plain);
		return r;
	}
	if (raw.nwords != plain.nwords) {
		bld_shell_result_free(&plain);
		bld_shell_result_free(&raw);
		return sc_err_set(err, -EINVAL,
				  "internal lexing of heredoc produced inconsistent results: %s",
				  s);
	}
	*ret = (struct bld_df_heredoc){
		.name = plain.words[0],
		.fd = fd_overflow || fd > 0xFFFFFFFFul ? 0 : (unsigned)fd,
		.expand = count_quotes(plain.words[0]) == count_quotes(raw.words[0]),
		.chomp = chomp,
	};
	plain.words[0] = NULL;
	plain.nwords = 0;
	bld_shell_result_free(&plain);
	bld_shell_result_free(&raw);
	return 1;
}

static bool
can_contain_heredoc(const struct bld_df_node *n)
{
	if (bld_strcaseeq(n->keyword, "onbuild") && n->sub)
		n = n->sub;
	if (!bld_strcaseeq(n->keyword, "run") && !bld_strcaseeq(n->keyword, "copy") &&
	    !bld_strcaseeq(n->keyword, "add"))
		return false;
	return !(n->attrs & BLD_DF_NODE_JSON);
}

static int
read_heredocs(struct parser *p, const char *line, struct bld_df_node *node, unsigned start)
{
	struct bld_shell sh = {
		.escape = '\\', .raw_quotes = true, .raw_escapes = true, .skip_unset = true};
	struct bld_shell_result words = {0};
	struct sc_err ignored = SC_ERR_INIT;
	/* BuildKit ignores a line its lexer cannot split: then there is no heredoc. */
	if (bld_shell_process(&sh, line, &words, &ignored) < 0)
		return 0;
	/* Gathered here, then copied to the arena at their exact count. */
	struct bld_df_heredoc docs[BLD_DF_MAX_HEREDOCS];
	size_t ndocs = 0;
	int r = 0;
	for (size_t i = 0; i < words.nwords; i++) {
		struct bld_df_heredoc h;
		r = bld_df_heredoc_parse(words.words[i], &h, p->err);
		if (r < 0)
			goto out;
		if (r == 0)
			continue;
		r = 0;
		if (ndocs == BLD_DF_MAX_HEREDOCS) {
			free((char *)h.name);
			r = sc_err_set(p->err, -E2BIG, "more than %u heredocs in one instruction",
				       BLD_DF_MAX_HEREDOCS);
			goto out;
		}
		const char *name = bld_arena_strdup(p->a, h.name);
		free((char *)h.name);
		if (!name) {
			r = -ENOMEM;
			goto out;
		}
		h.name = name;
		docs[ndocs++] = h;
	}
	for (size_t i = 0; i < ndocs; i++) {
		size_t nlen = strlen(docs[i].name);
		struct bld_str body = {0};
		bool terminated = false;
		for (;;) {
			struct span l;
			bool ok;
			r = next_line(p, &l, &ok);
			if (r < 0 || !ok)
				break;
			p->line++;
			struct span t = trim_newline(l);
			if (docs[i].chomp)
				while (t.len > 0 && t.s[0] == '\t') {
					t.s++;
					t.len--;
				}
			if (t.len == nlen && memcmp(t.s, docs[i].name, nlen) == 0) {
				terminated = true;
				break;
			}
			bld_str_putn(&body, l.s, l.len);
		}
		if (r < 0) {
			bld_str_done(&body);
			goto out;
		}
		if (!terminated) {
			bld_str_done(&body);
			r = sc_err_set(
				p->err, -EINVAL,
				"%s:%u: unterminated heredoc '%s' (started on line %u): add a "
				"line holding only '%s'",
				p->fn, p->line ? p->line : 1, docs[i].name, start, docs[i].name);
			goto out;
		}
		docs[i].content = adup(p, body.s ? body.s : "", body.len);
		bool oom = body.oom || !docs[i].content;
		bld_str_done(&body);
		if (oom) {
			r = -ENOMEM;
			goto out;
		}
	}
	if (ndocs) {
		node->heredocs = bld_arena_memdup(p->a, docs, ndocs * sizeof(*docs));
		if (!node->heredocs) {
			r = -ENOMEM;
			goto out;
		}
		node->nheredocs = ndocs;
	}
out:
	bld_shell_result_free(&words);
	return r;
}

/* ---- driver ------------------------------------------------------------- */

static int
parse_all(struct parser *p)
{
	/* Grown on the heap, then copied to the arena at its exact size. */
	_cleanup_free_ struct bld_df_node *nodes = NULL;
	size_t nnodes = 0, cap = 0;
	struct bld_str line = {0};
	int r = 0;

	for (;;) {
		struct span raw;
		bool ok;
		r = next_line(p, &raw, &ok);
		if (r < 0 || !ok)
			break;
		if (p->line == 0 && raw.len >= 3 && memcmp(raw.s, "\xEF\xBB\xBF", 3) == 0) {
			raw.s += 3;
			raw.len -= 3;
		}
		struct span tok = trim_left(trim_newline(raw));
		r = possible_directive(p, tok, p->line + 1);
		if (r < 0)
			break;
		if (tok.len > 0 && tok.s[0] == '#')
			tok.len = 0;
		p->line++;
		unsigned start = p->line;
		bool eol = trim_continuation(p, &tok);
		if (eol && tok.len == 0)
			continue;

		bld_str_reset(&line);
		bld_str_putn(&line, tok.s, tok.len);
		bool empty_cont = false;
		while (!eol) {
			r = next_line(p, &raw, &ok);
			if (r < 0 || !ok)
				break;
			p->line++;
			if (is_comment(raw))
				continue;
			struct span c = trim_newline(raw);
			if (trim_left(c).len == 0) {
				empty_cont = true;
				continue;
			}
			eol = trim_continuation(p, &c);
			bld_str_putn(&line, c.s, c.len);
			if (line.len > BLD_DF_MAX_LOGICAL_LINE) {
				r = sc_err_set(p->err, -E2BIG,
					       "%s:%u: instruction is over %u bytes long", p->fn,
					       start, BLD_DF_MAX_LOGICAL_LINE);
				break;
			}
		}
		if (r < 0)
			break;
		if (line.oom) {
			r = -ENOMEM;
			break;
		}
		const char *ltext = line.s ? line.s : "";
		if (empty_cont) {
			const char *msg = bld_arena_printf(
				p->a,
				"empty continuation line in the instruction starting on line %u; "
				"empty continuation lines will become errors in a future release",
				start);
			if (!msg || add_warning(p, p->line, msg) < 0) {
				r = -ENOMEM;
				break;
			}
		}
		if (nnodes == BLD_DF_MAX_NODES) {
			r = sc_err_set(p->err, -E2BIG, "%s:%u: more than %u instructions", p->fn,
				       start, BLD_DF_MAX_NODES);
			break;
		}
		if (nnodes == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct bld_df_node *nn = realloc(nodes, ncap * sizeof(*nn));
			if (!nn) {
				r = -ENOMEM;
				break;
			}
			nodes = nn;
			cap = ncap;
		}
		struct bld_df_node *node = &nodes[nnodes];
		memset(node, 0, sizeof(*node));
		r = new_node(p, ltext, line.len, 0, node);
		if (r < 0) {
			if (r != -ENOMEM)
				sc_err_prefix(p->err, r, "%s:%u", p->fn, start);
			break;
		}
		if (strstr(ltext, "<<") && can_contain_heredoc(node)) {
			r = read_heredocs(p, ltext, node, start);
			if (r < 0) {
				if (r != -ENOMEM && !strstr(sc_err_msg(p->err), "unterminated"))
					sc_err_prefix(p->err, r, "%s:%u", p->fn, start);
				break;
			}
		}
		node->start_line = start;
		node->end_line = p->line;
		nnodes++;
	}
	bld_str_done(&line);
	if (r < 0)
		return r;
	if (nnodes == 0)
		return sc_err_set(p->err, -EINVAL,
				  "%s:%u: file with no instructions; a Dockerfile needs at least a "
				  "FROM line",
				  p->fn, p->line ? p->line : 1);
	p->df->nodes = bld_arena_memdup(p->a, nodes, nnodes * sizeof(*nodes));
	if (!p->df->nodes)
		return -ENOMEM;
	p->df->nnodes = nnodes;
	return 0;
}

int
bld_dockerfile_parse(const char *data, size_t len, const char *filename,
		     struct bld_dockerfile **ret, struct sc_err *err)
{
	const char *fn = filename ? filename : "Dockerfile";
	if (len > BLD_DF_MAX_SIZE)
		return sc_err_set(err, -EFBIG, "%s: file is %zu bytes, over the limit of %u bytes",
				  fn, len, BLD_DF_MAX_SIZE);
	struct bld_arena *a = bld_arena_new();
	if (!a)
		return sc_err_set(err, -ENOMEM, "out of memory");
	struct bld_dockerfile *df = bld_arena_alloc(a, sizeof(*df));
	if (!df) {
		bld_arena_free(a);
		return sc_err_set(err, -ENOMEM, "out of memory");
	}
	df->arena = a;
	df->filename = bld_arena_strdup(a, fn);
	struct parser p = {
		.df = df,
		.a = a,
		.data = data ? data : "",
		.len = data ? len : 0,
		.esc = '\\',
		.err = err,
		.fn = fn,
	};
	int r = df->filename ? parse_all(&p) : -ENOMEM;
	bld_str_done(&p.word);
	if (r < 0) {
		if (r == -ENOMEM)
			sc_err_set(err, r, "%s: out of memory", fn);
		bld_arena_free(a);
		return r;
	}
	df->escape = p.esc;
	df->warnings = p.warnings;
	df->nwarnings = p.nwarnings;
	*ret = df;
	return 0;
}

int
bld_dockerfile_load(const char *path, struct bld_dockerfile **ret, struct sc_err *err)
{
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r = sc_read_file(path, BLD_DF_MAX_SIZE, &data, &len);
	if (r == -EFBIG || r == -E2BIG)
		return sc_err_set(err, -EFBIG, "%s: file is over the limit of %u bytes", path,
				  BLD_DF_MAX_SIZE);
	if (r < 0)
		return sc_err_setsys(err, r, "cannot read '%s'", path);
	return bld_dockerfile_parse(data, len, path, ret, err);
}

struct bld_dockerfile *
bld_dockerfile_free(struct bld_dockerfile *df)
{
	if (df)
		bld_arena_free(df->arena);
	return NULL;
}
