/*
 * Word expansion (see shell.h). A recursive-descent reader over the word,
 * one function per construct, mirroring the order in which BuildKit's lexer
 * looks at characters so that both agree on every quirk a user could have
 * come to rely on (for example that "\x" inside double quotes keeps the
 * backslash, or that an empty quoted string makes no word).
 *
 * Pattern matching for # % / works on a token list (literal, '?', '*')
 * simulated as an NFA, so no input makes it backtrack exponentially.
 */
#include "shell.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct words {
	struct bld_str word;
	bool in_word;
	struct bld_strv list; /* heap strings */
};

struct lexer {
	const struct bld_shell *sh;
	const char *in;
	size_t pos, len;
	char esc;
	bool raw_escapes;
	unsigned depth;
	struct sc_err *err;
};

static int process_stop_on(struct lexer *lx, int stop, bool raw_escapes, struct bld_str *out,
			   struct words *w);

static void
words_push(struct words *w)
{
	char *s = strndup(w->word.s ? w->word.s : "", w->word.len);
	if (!s) {
		w->list.oom = true;
		return;
	}
	bld_strv_push(&w->list, s);
	if (w->list.oom)
		free(s);
	bld_str_reset(&w->word);
	w->in_word = false;
}

static void
words_add_raw(struct words *w, const char *s, size_t n)
{
	if (!w)
		return;
	bld_str_putn(&w->word, s, n);
	w->in_word = true;
}

static void
words_add_string(struct words *w, const char *s, size_t n)
{
	if (!w)
		return;
	size_t i = 0;
	while (i < n) {
		size_t cw;
		uint32_t r = bld_utf8_decode(s + i, n - i, &cw);
		bool space = bld_rune_is_space(r) && !(r == BLD_RUNE_ERROR && cw == 1);
		if (space && w->in_word) {
			if (w->word.len != 0)
				words_push(w);
		} else if (!space) {
			words_add_raw(w, s + i, cw);
		}
		i += cw;
	}
}

static void
words_free(struct words *w)
{
	for (size_t i = 0; i < w->list.n; i++)
		free((char *)w->list.v[i]);
	bld_strv_done(&w->list);
	bld_str_done(&w->word);
}

static int
lex_fail(struct lexer *lx, const char *msg)
{
	return sc_err_set(lx->err, -EINVAL, "%s", msg);
}

static size_t
rune_width_at(const struct lexer *lx, size_t pos)
{
	size_t w;
	bld_utf8_decode(lx->in + pos, lx->len - pos, &w);
	return w;
}

static bool
is_special_param(char c)
{
	return strchr("@*#?-$!0", c) != NULL && c != '\0';
}

/* Reads a variable name at the cursor into out (possibly empty). */
static void
process_name(struct lexer *lx, struct bld_str *out)
{
	/* The name is the input text it spans: find its end, then copy it once. */
	size_t start = lx->pos;
	bool first = true;
	while (lx->pos < lx->len) {
		size_t w;
		uint32_t r = bld_utf8_decode(lx->in + lx->pos, lx->len - lx->pos, &w);
		if (first && bld_rune_is_digit(r)) {
			while (lx->pos < lx->len) {
				r = bld_utf8_decode(lx->in + lx->pos, lx->len - lx->pos, &w);
				if (!bld_rune_is_digit(r))
					break;
				lx->pos += w;
			}
			break;
		}
		if (first && r < 0x80 && is_special_param((char)r)) {
			lx->pos++;
			break;
		}
		if (!bld_rune_is_letter(r) && !bld_rune_is_digit(r) && r != '_')
			break;
		lx->pos += w;
		first = false;
	}
	if (lx->pos > start)
		bld_str_putn(out, lx->in + start, lx->pos - start);
}

static const char *
lookup(struct lexer *lx, const char *name)
{
	if (!lx->sh->lookup)
		return NULL;
	return lx->sh->lookup(lx->sh->userdata, name);
}

/* ---- shell patterns ---------------------------------------------------- */

enum ptok_kind { PT_LIT, PT_ANY, PT_STAR };

struct ptok {
	enum ptok_kind kind;
	uint32_t rune;
	size_t off, len; /* literal bytes in the pattern */
};

struct pattern {
	struct ptok *t;
	size_t n;
	const char *src;
};

static int
pattern_compile(const char *p, size_t len, struct pattern *ret, struct sc_err *err)
{
	ret->t = calloc(len + 1, sizeof(struct ptok));
	ret->n = 0;
	ret->src = p;
	if (!ret->t)
		return -ENOMEM;
	size_t i = 0;
	while (i < len) {
		size_t w;
		uint32_t r = bld_utf8_decode(p + i, len - i, &w);
		struct ptok *t = &ret->t[ret->n];
		if (r == '*') {
			t->kind = PT_STAR;
		} else if (r == '?') {
			t->kind = PT_ANY;
		} else if (r == '\\') {
			if (i + 1 < len && (p[i + 1] == '}' || p[i + 1] == '/')) {
				i++;
				continue;
			}
			if (i + 1 >= len ||
			    (p[i + 1] != '*' && p[i + 1] != '?' && p[i + 1] != '\\')) {
				free(ret->t);
				ret->t = NULL;
				return sc_err_set(
					err, -EINVAL,
					"invalid pattern '%.*s' in substitution: invalid escape "
					"'\\%.1s'",
					(int)len, p, i + 1 < len ? p + i + 1 : "");
			}
			i++;
			t->kind = PT_LIT;
			t->rune = (unsigned char)p[i];
			t->off = i;
			t->len = 1;
			ret->n++;
			i++;
			continue;
		} else {
			t->kind = PT_LIT;
			t->rune = r;
			t->off = i;
			t->len = w;
		}
		ret->n++;
		i += w;
	}
	return 0;
}

static void
pattern_reverse(struct pattern *p)
{
	for (size_t i = 0; i < p->n / 2; i++) {
		struct ptok tmp = p->t[i];
		p->t[i] = p->t[p->n - 1 - i];
		p->t[p->n - 1 - i] = tmp;
	}
}

struct nfa {
	const struct pattern *p;
	uint64_t *mem; /* owns cur and next, which swap */
	uint64_t *cur, *next;
	size_t words;
};

static int
nfa_init(struct nfa *m, const struct pattern *p)
{
	m->p = p;
	m->words = (p->n + 1 + 63) / 64;
	m->mem = calloc(m->words * 2, sizeof(uint64_t));
	if (!m->mem)
		return -ENOMEM;
	m->cur = m->mem;
	m->next = m->mem + m->words;
	return 0;
}

static void
nfa_add(struct nfa *m, uint64_t *set, size_t state)
{
	/* Stars match the empty string: following them is free. */
	for (;;) {
		set[state / 64] |= 1ull << (state % 64);
		if (state < m->p->n && m->p->t[state].kind == PT_STAR)
			state++;
		else
			return;
	}
}

static void
nfa_start(struct nfa *m)
{
	memset(m->cur, 0, m->words * sizeof(uint64_t));
	nfa_add(m, m->cur, 0);
}

static bool
nfa_accepts(const struct nfa *m)
{
	size_t s = m->p->n;
	return m->cur[s / 64] & (1ull << (s % 64));
}

/* Advances on one rune (bytes s[0..w)); returns false when no state is left. */
static bool
nfa_step(struct nfa *m, const char *s, size_t w, uint32_t r)
{
	memset(m->next, 0, m->words * sizeof(uint64_t));
	bool any = false;
	for (size_t i = 0; i < m->p->n; i++) {
		if (!(m->cur[i / 64] & (1ull << (i % 64))))
			continue;
		const struct ptok *t = &m->p->t[i];
		switch (t->kind) {
		case PT_STAR:
			if (r != '\n') {
				nfa_add(m, m->next, i);
				any = true;
			}
			break;
		case PT_ANY:
			if (r != '\n') {
				nfa_add(m, m->next, i + 1);
				any = true;
			}
			break;
		case PT_LIT:
			if (t->len == w && memcmp(m->p->src + t->off, s, w) == 0) {
				nfa_add(m, m->next, i + 1);
				any = true;
			}
			break;
		}
	}
	uint64_t *tmp = m->cur;
	m->cur = m->next;
	m->next = tmp;
	return any;
}

/*
 * Length of the shortest (or longest) prefix of s[start..len) the pattern
 * matches, or -1 when none does.
 */
static long
nfa_prefix(struct nfa *m, const char *s, size_t start, size_t len, bool longest)
{
	long found = -1;
	nfa_start(m);
	size_t i = start;
	for (;;) {
		if (nfa_accepts(m)) {
			found = (long)(i - start);
			if (!longest)
				return found;
		}
		if (i >= len)
			break;
		size_t w;
		uint32_t r = bld_utf8_decode(s + i, len - i, &w);
		if (!nfa_step(m, s + i, w, r))
			break;
		i += w;
	}
	return found;
}

/* Reverses s rune by rune (invalid bytes stay single bytes). */
static char *
reverse_runes(const char *s, size_t len)
{
	char *out = malloc(len + 1);
	if (!out)
		return NULL;
	size_t i = 0;
	while (i < len) {
		size_t w;
		bld_utf8_decode(s + i, len - i, &w);
		memcpy(out + len - i - w, s + i, w);
		i += w;
	}
	out[len] = '\0';
	return out;
}

static int
trim_affix(const char *value, const char *pat, bool suffix, bool greedy, struct bld_str *out,
	   struct sc_err *err)
{
	struct pattern p = {0};
	struct nfa m = {0};
	size_t vlen = strlen(value);
	int r = pattern_compile(pat, strlen(pat), &p, err);
	if (r < 0)
		return r;
	r = nfa_init(&m, &p);
	if (r < 0)
		goto out;
	if (!suffix) {
		long n = nfa_prefix(&m, value, 0, vlen, greedy);
		if (n < 0)
			n = 0;
		bld_str_putn(out, value + n, vlen - (size_t)n);
	} else {
		pattern_reverse(&p);
		char *rev = reverse_runes(value, vlen);
		if (!rev) {
			r = -ENOMEM;
			goto out;
		}
		long n = nfa_prefix(&m, rev, 0, vlen, greedy);
		free(rev);
		if (n < 0)
			n = 0;
		bld_str_putn(out, value, vlen - (size_t)n);
	}
out:
	free(m.mem);
	free(p.t);
	return r;
}

static int
replace(const char *value, const char *pat, const char *repl, bool all, struct bld_str *out,
	struct sc_err *err)
{
	struct pattern p = {0};
	struct nfa m = {0};
	size_t vlen = strlen(value);
	int r = pattern_compile(pat, strlen(pat), &p, err);
	if (r < 0)
		return r;
	r = nfa_init(&m, &p);
	if (r < 0)
		goto out;
	bool leading_star = p.n > 0 && p.t[0].kind == PT_STAR;
	size_t search = 0, last_end = 0;
	while (search <= vlen) {
		/* Leftmost match at or after search, longest at that start. */
		long a = -1, b = -1;
		for (size_t st = search; st <= vlen;) {
			long n = nfa_prefix(&m, value, st, vlen, true);
			if (n >= 0) {
				a = (long)st;
				b = (long)st + n;
				break;
			}
			if (leading_star || st == vlen)
				break;
			st += rune_width_at(&(struct lexer){.in = value, .len = vlen}, st);
		}
		if (a < 0)
			break;
		bld_str_putn(out, value + last_end, (size_t)a - last_end);
		if ((size_t)b > last_end || a == 0)
			bld_str_puts(out, repl);
		last_end = (size_t)b;
		if (!all)
			break;
		size_t w = search < vlen ? rune_width_at(&(struct lexer){.in = value, .len = vlen},
							 search)
					 : 1;
		if (search + w > (size_t)b)
			search += w;
		else if (search + 1 > (size_t)b)
			search++;
		else
			search = (size_t)b;
	}
	bld_str_putn(out, value + last_end, vlen - last_end);
out:
	free(m.mem);
	free(p.t);
	return r;
}

/* ---- the lexer --------------------------------------------------------- */

static int
process_dollar(struct lexer *lx, struct bld_str *out)
{
	struct bld_str name = {0}, word = {0}, pat = {0};
	int r = 0;
	lx->pos++; /* '$' */

	if (lx->pos >= lx->len || lx->in[lx->pos] != '{') {
		process_name(lx, &name);
		if (name.len == 0) {
			bld_str_putc(out, '$');
			goto done;
		}
		const char *v = lookup(lx, name.s);
		if (!v && lx->sh->skip_unset) {
			bld_str_putc(out, '$');
			bld_str_putn(out, name.s, name.len);
		} else if (v) {
			bld_str_puts(out, v);
		}
		goto done;
	}

	lx->pos++; /* '{' */
	if (lx->pos >= lx->len) {
		r = lex_fail(lx, "syntax error: missing '}'");
		goto done;
	}
	char c = lx->in[lx->pos];
	if (c == '{' || c == '}' || c == ':') {
		r = lex_fail(lx, "syntax error: bad substitution");
		goto done;
	}
	if (++lx->depth > BLD_SHELL_MAX_DEPTH) {
		r = sc_err_set(lx->err, -EINVAL, "substitutions nested deeper than %d",
			       BLD_SHELL_MAX_DEPTH);
		goto done;
	}
	process_name(lx, &name);
	if (name.oom) {
		r = -ENOMEM;
		goto done;
	}
	const char *nm = name.s ? name.s : "";
	if (lx->pos >= lx->len) {
		r = lex_fail(lx, "syntax error: missing '}'");
		goto done;
	}
	size_t mw = rune_width_at(lx, lx->pos);
	char mod[10] = {0};
	memcpy(mod, lx->in + lx->pos, mw);
	char ch = lx->in[lx->pos];
	lx->pos += mw;
	bool null_is_unset = false;

	if (ch == '}') {
		const char *v = lookup(lx, nm);
		if (!v && lx->sh->skip_unset) {
			bld_str_puts(out, "${");
			bld_str_puts(out, nm);
			bld_str_putc(out, '}');
		} else if (v) {
			bld_str_puts(out, v);
		}
		goto done_depth;
	}
	if (ch == '/') {
		bool all = lx->pos < lx->len && lx->in[lx->pos] == '/';
		if (all)
			lx->pos++;
		r = process_stop_on(lx, '/', true, &pat, NULL);
		if (r < 0) {
			if (lx->pos >= lx->len) {
				sc_err_clear(lx->err);
				r = lex_fail(lx, "syntax error: missing '/' in ${}");
			}
			goto done;
		}
		r = process_stop_on(lx, '}', true, &word, NULL);
		if (r < 0) {
			if (lx->pos >= lx->len) {
				sc_err_clear(lx->err);
				r = lex_fail(lx, "syntax error: missing '}'");
			}
			goto done;
		}
		const char *v = lookup(lx, nm);
		if (!v && lx->sh->skip_unset) {
			bld_str_puts(out, "${");
			bld_str_puts(out, nm);
			bld_str_puts(out, all ? "//" : "/");
			bld_str_puts(out, pat.s ? pat.s : "");
			bld_str_putc(out, '/');
			bld_str_puts(out, word.s ? word.s : "");
			bld_str_putc(out, '}');
			goto done_depth;
		}
		r = replace(v ? v : "", pat.s ? pat.s : "", word.s ? word.s : "", all, out,
			    lx->err);
		goto done_depth;
	}
	if (ch == ':') {
		null_is_unset = true;
		if (lx->pos >= lx->len) {
			r = lex_fail(lx, "syntax error: missing '}'");
			goto done;
		}
		size_t w2 = rune_width_at(lx, lx->pos);
		memcpy(mod + 1, lx->in + lx->pos, w2);
		ch = lx->in[lx->pos];
		lx->pos += w2;
	} else if (ch != '+' && ch != '-' && ch != '?' && ch != '#' && ch != '%') {
		r = sc_err_set(lx->err, -EINVAL, "unsupported modifier (%s) in substitution", mod);
		goto done;
	}

	r = process_stop_on(lx, '}', ch == '#' || ch == '%', &word, NULL);
	if (r < 0) {
		if (lx->pos >= lx->len) {
			sc_err_clear(lx->err);
			r = lex_fail(lx, "syntax error: missing '}'");
		}
		goto done;
	}
	const char *w = word.s ? word.s : "";
	const char *v = lookup(lx, nm);
	if (!v && lx->sh->skip_unset) {
		bld_str_puts(out, "${");
		bld_str_puts(out, nm);
		bld_str_puts(out, mod);
		bld_str_puts(out, w);
		bld_str_putc(out, '}');
		goto done_depth;
	}
	bool unsetish = !v || (null_is_unset && v[0] == '\0');
	switch (ch) {
	case '-':
		bld_str_puts(out, unsetish ? w : v);
		break;
	case '+':
		if (!unsetish)
			bld_str_puts(out, w);
		break;
	case '?':
		if (!v)
			r = sc_err_set(lx->err, -EINVAL, "%s: %s", nm,
				       w[0] ? w : "is not allowed to be unset");
		else if (null_is_unset && v[0] == '\0')
			r = sc_err_set(lx->err, -EINVAL, "%s: %s", nm,
				       w[0] ? w : "is not allowed to be empty");
		else
			bld_str_puts(out, v);
		break;
	case '#':
	case '%': {
		bool greedy = w[0] == ch;
		r = trim_affix(v ? v : "", greedy ? w + 1 : w, ch == '%', greedy, out, lx->err);
		break;
	}
	default:
		r = sc_err_set(lx->err, -EINVAL, "unsupported modifier (%s) in substitution", mod);
	}
done_depth:
	lx->depth--;
done:
	if (r >= 0 && (name.oom || word.oom || pat.oom))
		r = -ENOMEM;
	bld_str_done(&name);
	bld_str_done(&word);
	bld_str_done(&pat);
	return r;
}

static int
process_single_quote(struct lexer *lx, struct bld_str *out)
{
	lx->pos++;
	if (lx->sh->raw_quotes)
		bld_str_putc(out, '\'');
	for (;;) {
		if (lx->pos >= lx->len)
			return lex_fail(lx, "unexpected end of statement while looking for "
					    "matching single-quote");
		char c = lx->in[lx->pos++];
		if (c == '\'') {
			if (lx->sh->raw_quotes)
				bld_str_putc(out, '\'');
			return 0;
		}
		bld_str_putc(out, c);
	}
}

static int
process_double_quote(struct lexer *lx, struct bld_str *out)
{
	lx->pos++;
	if (lx->sh->raw_quotes)
		bld_str_putc(out, '"');
	for (;;) {
		if (lx->pos >= lx->len)
			return lex_fail(lx, "unexpected end of statement while looking for "
					    "matching double-quote");
		char c = lx->in[lx->pos];
		if (c == '"') {
			lx->pos++;
			if (lx->sh->raw_quotes)
				bld_str_putc(out, '"');
			return 0;
		}
		if (c == '$') {
			int r = process_dollar(lx, out);
			if (r < 0)
				return r;
			continue;
		}
		size_t w = rune_width_at(lx, lx->pos);
		const char *chp = lx->in + lx->pos;
		lx->pos += w;
		if (c == lx->esc) {
			if (lx->raw_escapes)
				bld_str_putc(out, c);
			if (lx->pos >= lx->len)
				continue;
			char n = lx->in[lx->pos];
			if (n == '"' || n == '$' || n == lx->esc) {
				chp = lx->in + lx->pos;
				w = 1;
				lx->pos++;
			}
		}
		bld_str_putn(out, chp, w);
		if (out->len > BLD_SHELL_MAX_RESULT)
			return sc_err_set(lx->err, -E2BIG, "expansion longer than %u bytes",
					  BLD_SHELL_MAX_RESULT);
	}
}

/*
 * Byte length of the run of plain runes at the cursor (at least one): runes
 * that are copied as they are because they start no quote, expansion,
 * escape or stop. Copying a run at once instead of rune by rune changes
 * nothing but speed, so the run ends early where the result would first go
 * over room bytes, for the caller to fail at the same rune as always.
 */
static size_t
plain_run(const struct lexer *lx, int stop, size_t room)
{
	size_t end = lx->pos;
	for (;;) {
		end += rune_width_at(lx, end);
		if (end - lx->pos > room || end >= lx->len)
			break;
		char c = lx->in[end];
		if (c == '$' || c == '\'' || c == '"' || c == lx->esc || (stop >= 0 && c == stop))
			break;
	}
	return end - lx->pos;
}

static int
process_stop_on(struct lexer *lx, int stop, bool raw_escapes, struct bld_str *out, struct words *w)
{
	bool saved = lx->raw_escapes;
	lx->raw_escapes = raw_escapes;
	struct bld_str tmp = {0};
	int r = 0;

	while (lx->pos < lx->len) {
		char c = lx->in[lx->pos];
		if (stop >= 0 && c == stop) {
			lx->pos++;
			goto out;
		}
		if (c == '$' || (c == '\'' || c == '"')) {
			bld_str_reset(&tmp);
			if (c == '$')
				r = process_dollar(lx, &tmp);
			else if (c == '\'')
				r = process_single_quote(lx, &tmp);
			else
				r = process_double_quote(lx, &tmp);
			if (r < 0)
				goto out;
			if (tmp.len) {
				bld_str_putn(out, tmp.s, tmp.len);
				if (c == '$')
					words_add_string(w, tmp.s, tmp.len);
				else
					words_add_raw(w, tmp.s, tmp.len);
			} else if (c != '$') {
				words_add_raw(w, "", 0);
			}
		} else if (c == lx->esc) {
			const char *chp = lx->in + lx->pos;
			lx->pos += rune_width_at(lx, lx->pos);
			if (lx->raw_escapes) {
				words_add_raw(w, chp, 1);
				bld_str_putc(out, c);
			}
			if (lx->pos >= lx->len)
				break;
			size_t cw = rune_width_at(lx, lx->pos);
			chp = lx->in + lx->pos;
			lx->pos += cw;
			words_add_raw(w, chp, cw);
			bld_str_putn(out, chp, cw);
		} else {
			size_t n = plain_run(lx, stop, BLD_SHELL_MAX_RESULT - out->len);
			words_add_string(w, lx->in + lx->pos, n);
			bld_str_putn(out, lx->in + lx->pos, n);
			lx->pos += n;
		}
		if (out->len > BLD_SHELL_MAX_RESULT) {
			r = sc_err_set(lx->err, -E2BIG, "expansion longer than %u bytes",
				       BLD_SHELL_MAX_RESULT);
			goto out;
		}
	}
	if (stop >= 0)
		r = sc_err_set(lx->err, -EINVAL,
			       "unexpected end of statement while looking for matching %c", stop);
out:
	if (r >= 0 && (out->oom || tmp.oom))
		r = -ENOMEM;
	bld_str_done(&tmp);
	lx->raw_escapes = saved;
	return r;
}

/*
 * Expands in, appending to out, and splits it into w when w is not NULL
 * (splitting costs more than expanding: only callers that want the words
 * pay for it). On failure err says why; out and w hold partial results.
 */
static int
shell_run(const struct bld_shell *sh, const char *in, struct bld_str *out, struct words *w,
	  struct sc_err *err)
{
	/* Cleared rather than SC_ERR_INIT: zeroing all of msg would cost more than most words. */
	struct sc_err local;
	sc_err_clear(&local);
	struct lexer lx = {
		.sh = sh,
		.in = in,
		.len = strlen(in),
		.esc = sh->escape ? sh->escape : '\\',
		.raw_escapes = sh->raw_escapes,
		.err = &local,
	};
	int r = process_stop_on(&lx, -1, sh->raw_escapes, out, w);
	if (r >= 0 && w && w->word.len > 0)
		words_push(w);
	if (r >= 0 && (out->oom || (w && (w->list.oom || w->word.oom))))
		r = -ENOMEM;
	if (r == -ENOMEM)
		return sc_err_set(err, r, "out of memory expanding '%.64s'", in);
	if (r < 0)
		return sc_err_set(err, r, "failed to process '%.200s': %s", in, sc_err_msg(&local));
	return 0;
}

int
bld_shell_process(const struct bld_shell *sh, const char *in, struct bld_shell_result *ret,
		  struct sc_err *err)
{
	struct bld_str out = {0};
	struct words w = {0};
	int r = shell_run(sh, in, &out, &w, err);
	if (r < 0) {
		bld_str_done(&out);
		words_free(&w);
		return r;
	}
	bld_str_done(&w.word);
	ret->word = out.s ? out.s : strdup("");
	if (!ret->word) {
		words_free(&w);
		return -ENOMEM;
	}
	ret->words = (char **)w.list.v;
	ret->nwords = w.list.n;
	return 0;
}

int
bld_shell_word(const struct bld_shell *sh, const char *in, char **ret, struct sc_err *err)
{
	struct bld_str out = {0};
	int r = shell_run(sh, in, &out, NULL, err);
	if (r < 0) {
		bld_str_done(&out);
		return r;
	}
	*ret = out.s ? out.s : strdup("");
	return *ret ? 0 : -ENOMEM;
}

int
bld_shell_expand(const struct bld_shell *sh, const char *in, struct bld_str *out,
		 struct sc_err *err)
{
	bld_str_reset(out);
	return shell_run(sh, in, out, NULL, err);
}

void
bld_shell_result_free(struct bld_shell_result *r)
{
	if (!r)
		return;
	free(r->word);
	for (size_t i = 0; i < r->nwords; i++)
		free(r->words[i]);
	free(r->words);
	r->word = NULL;
	r->words = NULL;
	r->nwords = 0;
}

/* FNV-1a. */
static size_t
env_hash(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	return (size_t)h;
}

/* The slot holding name, or the free slot where it would go. */
static size_t *
env_slot(const struct bld_env *e, const char *name)
{
	size_t mask = e->nslots - 1;
	for (size_t i = env_hash(name) & mask;; i = (i + 1) & mask) {
		size_t pos = e->slots[i];
		if (pos == 0 || strcmp(e->names[pos - 1], name) == 0)
			return &e->slots[i];
	}
}

static int
env_reindex(struct bld_env *e, size_t nslots)
{
	size_t *slots = calloc(nslots, sizeof(size_t));
	if (!slots)
		return -ENOMEM;
	free(e->slots);
	e->slots = slots;
	e->nslots = nslots;
	for (size_t i = 0; i < e->n; i++)
		*env_slot(e, e->names[i]) = i + 1;
	return 0;
}

int
bld_env_set(struct bld_env *e, const char *name, const char *value)
{
	/* At most half full, so probes stay short and always find a free slot. */
	if (2 * (e->n + 1) > e->nslots && env_reindex(e, e->nslots ? 2 * e->nslots : 16) < 0)
		return -ENOMEM;
	char *v = strdup(value ? value : "");
	if (!v)
		return -ENOMEM;
	size_t *slot = env_slot(e, name);
	if (*slot) {
		free(e->values[*slot - 1]);
		e->values[*slot - 1] = v;
		return 0;
	}
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 8;
		char **nn = realloc(e->names, cap * sizeof(char *));
		if (!nn)
			goto oom;
		e->names = nn;
		char **vv = realloc(e->values, cap * sizeof(char *));
		if (!vv)
			goto oom;
		e->values = vv;
		e->cap = cap;
	}
	e->names[e->n] = strdup(name);
	if (!e->names[e->n])
		goto oom;
	e->values[e->n++] = v;
	*slot = e->n;
	return 0;
oom:
	free(v);
	return -ENOMEM;
}

int
bld_env_find(const struct bld_env *e, const char *name)
{
	if (!e || e->nslots == 0)
		return -ENOENT;
	size_t pos = *env_slot(e, name);
	return pos ? (int)(pos - 1) : -ENOENT;
}

const char *
bld_env_get(const struct bld_env *e, const char *name)
{
	int i = bld_env_find(e, name);
	return i >= 0 ? e->values[i] : NULL;
}

int
bld_env_copy(struct bld_env *dst, const struct bld_env *src)
{
	for (size_t i = 0; i < src->n; i++) {
		int r = bld_env_set(dst, src->names[i], src->values[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

void
bld_env_free(struct bld_env *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->n; i++) {
		free(e->names[i]);
		free(e->values[i]);
	}
	free(e->names);
	free(e->values);
	free(e->slots);
	e->names = e->values = NULL;
	e->slots = NULL;
	e->n = e->cap = e->nslots = 0;
}

const char *
bld_env_lookup(void *userdata, const char *name)
{
	return bld_env_get(userdata, name);
}
