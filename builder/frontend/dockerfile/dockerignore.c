/*
 * .dockerignore patterns (see dockerignore.h). A pattern compiles to a list
 * of tokens matched by a small backtracking matcher; patterns with more than
 * one star remember failed (token, offset) pairs so no input makes matching
 * exponential.
 */
#include "dockerignore.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cleanup.h"
#include "internal.h"
#include "util.h"

enum tok_kind {
	T_LIT,	 /* one byte */
	T_ANY,	 /* ? : one byte but '/' */
	T_STAR,	 /* * : any run without '/' */
	T_DSTAR, /* ** followed by more: "" or anything ending in '/' */
	T_ALL,	 /* ** at the end: anything */
	T_CLASS, /* [...] */
};

struct tok {
	enum tok_kind kind;
	unsigned char c;
	bool negate;
	uint8_t set[32]; /* T_CLASS: bytes in the class */
};

struct pattern {
	struct tok *t;
	size_t n;
	unsigned nstars;
	bool exclusion;
	char *text;
	/* Quick rejects: literal bytes every match starts / ends with, and its least length. */
	size_t prefix_len, suffix_len, min_len;
	char *prefix, *suffix;
};

struct bld_ignore {
	struct pattern *p;
	size_t n;
	bool any_exception;
};

/* Go's path.Clean. Returns a heap string. */
static char *
clean_path(const char *s, size_t len)
{
	bool rooted = len > 0 && s[0] == '/';
	char *out = malloc(len + 2);
	if (!out)
		return NULL;
	size_t o = 0, i = 0, dotdot = 0;
	if (rooted) {
		out[o++] = '/';
		i = 1;
		dotdot = 1;
	}
	while (i < len) {
		if (s[i] == '/') {
			i++;
		} else if (s[i] == '.' && (i + 1 == len || s[i + 1] == '/')) {
			i++;
		} else if (s[i] == '.' && s[i + 1] == '.' && (i + 2 == len || s[i + 2] == '/')) {
			i += 2;
			if (o > dotdot) {
				o--;
				while (o > dotdot && out[o] != '/')
					o--;
			} else if (!rooted) {
				if (o > 0)
					out[o++] = '/';
				out[o++] = '.';
				out[o++] = '.';
				dotdot = o;
			}
		} else {
			if ((rooted && o != 1) || (!rooted && o != 0))
				out[o++] = '/';
			for (; i < len && s[i] != '/'; i++)
				out[o++] = s[i];
		}
	}
	if (o == 0)
		out[o++] = '.';
	out[o] = '\0';
	return out;
}

static int
compile(struct pattern *p, const char *text, struct sc_err *err)
{
	size_t len = strlen(text);
	p->t = calloc(len + 1, sizeof(struct tok));
	if (!p->t)
		return -ENOMEM;
	size_t i = 0;
	while (i < len) {
		struct tok *t = &p->t[p->n];
		char c = text[i];
		if (c == '*') {
			if (i + 1 < len && text[i + 1] == '*') {
				i += 2;
				if (i < len && text[i] == '/')
					i++;
				t->kind = i >= len ? T_ALL : T_DSTAR;
			} else {
				t->kind = T_STAR;
				i++;
			}
			p->nstars++;
		} else if (c == '?') {
			t->kind = T_ANY;
			i++;
		} else if (c == '[') {
			t->kind = T_CLASS;
			i++;
			if (i < len && (text[i] == '^' || text[i] == '!')) {
				t->negate = true;
				i++;
			}
			bool first = true, closed = false;
			while (i < len) {
				unsigned char lo = (unsigned char)text[i];
				if (lo == ']' && !first) {
					closed = true;
					i++;
					break;
				}
				first = false;
				if (lo == '\\' && i + 1 < len)
					lo = (unsigned char)text[++i];
				i++;
				unsigned char hi = lo;
				if (i + 1 < len && text[i] == '-' && text[i + 1] != ']') {
					hi = (unsigned char)text[i + 1];
					if (hi == '\\' && i + 2 < len) {
						hi = (unsigned char)text[i + 2];
						i++;
					}
					i += 2;
				}
				if (hi < lo)
					return sc_err_set(err, -EINVAL,
							  "bad range in pattern '%s': %c-%c", text,
							  lo, hi);
				for (unsigned b = lo; b <= hi; b++)
					t->set[b / 8] |= (uint8_t)(1u << (b % 8));
			}
			if (!closed)
				return sc_err_set(
					err, -EINVAL,
					"unterminated '[' in pattern '%s': close it with ']' "
					"or write '\\['",
					text);
		} else if (c == '\\') {
			if (i + 1 >= len)
				return sc_err_set(err, -EINVAL,
						  "pattern '%s' ends with an escape character",
						  text);
			t->kind = T_LIT;
			t->c = (unsigned char)text[i + 1];
			i += 2;
		} else {
			t->kind = T_LIT;
			t->c = (unsigned char)c;
			i++;
		}
		p->n++;
	}
	return 0;
}

struct mstate {
	const struct pattern *p;
	const char *s;
	size_t len;
	bool prefix;   /* succeed when the input runs out */
	uint8_t *memo; /* failed (token, offset) pairs, or NULL */
};

static bool
memo_test_set(struct mstate *m, size_t ti, size_t si)
{
	if (!m->memo)
		return false;
	size_t bit = ti * (m->len + 1) + si;
	if (m->memo[bit / 8] & (1u << (bit % 8)))
		return true;
	m->memo[bit / 8] |= (uint8_t)(1u << (bit % 8));
	return false;
}

static bool
match_at(struct mstate *m, size_t ti, size_t si)
{
	for (;;) {
		if (m->prefix && si == m->len)
			return true;
		if (ti == m->p->n)
			return si == m->len;
		const struct tok *t = &m->p->t[ti];
		switch (t->kind) {
		case T_LIT:
			if (si >= m->len || (unsigned char)m->s[si] != t->c)
				return false;
			ti++;
			si++;
			continue;
		case T_ANY:
			if (si >= m->len || m->s[si] == '/')
				return false;
			ti++;
			si++;
			continue;
		case T_CLASS: {
			if (si >= m->len || m->s[si] == '/')
				return false;
			unsigned char c = (unsigned char)m->s[si];
			bool in = t->set[c / 8] & (1u << (c % 8));
			if (in == t->negate)
				return false;
			ti++;
			si++;
			continue;
		}
		case T_ALL:
			return true;
		case T_STAR:
			if (memo_test_set(m, ti, si))
				return false;
			for (size_t k = si;; k++) {
				if (match_at(m, ti + 1, k))
					return true;
				if (k >= m->len || m->s[k] == '/')
					return false;
			}
		case T_DSTAR:
			if (memo_test_set(m, ti, si))
				return false;
			if (match_at(m, ti + 1, si))
				return true;
			for (size_t k = si; k < m->len; k++)
				if (m->s[k] == '/' && match_at(m, ti + 1, k + 1))
					return true;
			return m->prefix;
		}
		return false;
	}
}

static bool
pattern_match(const struct pattern *p, const char *s, size_t len, bool prefix)
{
	if (!prefix) {
		if (len < p->min_len)
			return false;
		if (p->suffix_len && memcmp(s + len - p->suffix_len, p->suffix, p->suffix_len) != 0)
			return false;
		if (p->prefix_len && memcmp(s, p->prefix, p->prefix_len) != 0)
			return false;
	}
	struct mstate m = {.p = p, .s = s, .len = len, .prefix = prefix};
	uint8_t small[512];
	size_t bits = (p->n + 1) * (len + 1);
	if (p->nstars > 1) {
		if (bits <= sizeof(small) * 8) {
			memset(small, 0, (bits + 7) / 8);
			m.memo = small;
		} else {
			m.memo = calloc((bits + 7) / 8, 1);
		}
	}
	bool r = match_at(&m, 0, 0);
	if (m.memo != small)
		free(m.memo);
	return r;
}

/* The pattern matches path or one of its parent directories. */
static bool
match_or_parent(const struct pattern *p, const char *path, size_t len)
{
	/* Every candidate (path or a parent) starts like path: one prefix test covers all. */
	if (p->prefix_len && (len < p->prefix_len || memcmp(path, p->prefix, p->prefix_len) != 0))
		return false;
	if (pattern_match(p, path, len, false))
		return true;
	for (size_t i = 0; i < len; i++)
		if (path[i] == '/' && pattern_match(p, path, i, false))
			return true;
	return false;
}

static int
add_pattern(struct bld_ignore *m, const char *line, size_t len, struct sc_err *err)
{
	size_t off = bld_trim_left_off(line, len);
	line += off;
	len = bld_trim_right_len(line, len - off);
	if (len == 0 || line[0] == '#')
		return 0;
	if (len > BLD_IGNORE_MAX_PATTERN)
		return sc_err_set(err, -E2BIG, "pattern longer than %u bytes",
				  BLD_IGNORE_MAX_PATTERN);
	if (m->n == BLD_IGNORE_MAX_PATTERNS)
		return sc_err_set(err, -E2BIG, "more than %u patterns", BLD_IGNORE_MAX_PATTERNS);
	bool excl = false;
	if (line[0] == '!') {
		excl = true;
		line++;
		len--;
		off = bld_trim_left_off(line, len);
		line += off;
		len -= off;
	}
	char *text = NULL;
	if (len > 0) {
		text = clean_path(line, len);
		if (text && strlen(text) > 1 && text[0] == '/')
			memmove(text, text + 1, strlen(text));
	} else {
		text = strdup("");
	}
	if (!text)
		return -ENOMEM;
	struct pattern *np = realloc(m->p, (m->n + 1) * sizeof(*np));
	if (!np) {
		free(text);
		return -ENOMEM;
	}
	m->p = np;
	struct pattern *p = &m->p[m->n];
	memset(p, 0, sizeof(*p));
	p->exclusion = excl;
	p->text = text;
	m->n++;
	int r = compile(p, text, err);
	if (r < 0)
		return r;
	m->any_exception |= excl;
	/* Literal runs at both ends (escapes already resolved into T_LIT tokens). */
	size_t k = 0;
	while (k < p->n && p->t[k].kind == T_LIT)
		k++;
	p->prefix = malloc(k + 1);
	size_t e = p->n;
	while (e > k && p->t[e - 1].kind == T_LIT)
		e--;
	p->suffix = malloc(p->n - e + 1);
	if (!p->prefix || !p->suffix)
		return -ENOMEM;
	for (size_t i = 0; i < k; i++)
		p->prefix[i] = (char)p->t[i].c;
	p->prefix_len = k;
	for (size_t i = e; i < p->n; i++)
		p->suffix[i - e] = (char)p->t[i].c;
	p->suffix_len = k == p->n ? 0 : p->n - e;
	for (size_t i = 0; i < p->n; i++)
		p->min_len +=
			p->t[i].kind == T_LIT || p->t[i].kind == T_ANY || p->t[i].kind == T_CLASS;
	return 0;
}

int
bld_ignore_new(const char *data, size_t len, const char *name, struct bld_ignore **ret,
	       struct sc_err *err)
{
	if (len > BLD_IGNORE_MAX_SIZE)
		return sc_err_set(err, -E2BIG, "%s: file is over %u bytes", name,
				  BLD_IGNORE_MAX_SIZE);
	struct bld_ignore *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
		data += 3;
		len -= 3;
	}
	size_t pos = 0;
	unsigned line = 0;
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (data + pos)) : len - pos;
		line++;
		struct sc_err e = SC_ERR_INIT;
		int r = add_pattern(m, data + pos, n, &e);
		if (r < 0) {
			bld_ignore_free(m);
			if (r == -ENOMEM)
				return sc_err_set(err, r, "out of memory");
			return sc_err_set(err, r, "%s:%u: %s", name, line, sc_err_msg(&e));
		}
		pos += n + (nl ? 1 : 0);
	}
	*ret = m;
	return 0;
}

int
bld_ignore_new_patterns(const char *const *patterns, size_t n, struct bld_ignore **ret,
			struct sc_err *err)
{
	struct bld_ignore *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int r = add_pattern(m, patterns[i], strlen(patterns[i]), err);
		if (r < 0) {
			bld_ignore_free(m);
			return r;
		}
	}
	*ret = m;
	return 0;
}

int
bld_ignore_load(const char *context_dir, const char *dockerfile_path, struct bld_ignore **ret,
		char **ret_path, struct sc_err *err)
{
	char path[4096];
	struct stat st;
	bool found = false;
	if (dockerfile_path) {
		snprintf(path, sizeof(path), "%s.dockerignore", dockerfile_path);
		found = stat(path, &st) == 0 && S_ISREG(st.st_mode);
	}
	if (!found) {
		snprintf(path, sizeof(path), "%s/.dockerignore", context_dir);
		found = stat(path, &st) == 0 && S_ISREG(st.st_mode);
	}
	if (ret_path)
		*ret_path = NULL;
	if (!found)
		return bld_ignore_new("", 0, ".dockerignore", ret, err);
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r = sc_read_file(path, BLD_IGNORE_MAX_SIZE, &data, &len);
	if (r == -EFBIG)
		return sc_err_set(err, -E2BIG, "%s: file is over %u bytes", path,
				  BLD_IGNORE_MAX_SIZE);
	if (r < 0)
		return sc_err_setsys(err, r, "cannot read '%s'", path);
	r = bld_ignore_new(data, len, path, ret, err);
	if (r >= 0 && ret_path) {
		*ret_path = strdup(path);
		if (!*ret_path) {
			*ret = bld_ignore_free(*ret);
			return -ENOMEM;
		}
	}
	return r;
}

struct bld_ignore *
bld_ignore_free(struct bld_ignore *m)
{
	if (!m)
		return NULL;
	for (size_t i = 0; i < m->n; i++) {
		free(m->p[i].t);
		free(m->p[i].text);
		free(m->p[i].prefix);
		free(m->p[i].suffix);
	}
	free(m->p);
	free(m);
	return NULL;
}

size_t
bld_ignore_count(const struct bld_ignore *m)
{
	return m ? m->n : 0;
}

static bool
match_clean(const struct bld_ignore *m, const char *path, size_t len)
{
	bool matched = false;
	for (size_t i = 0; i < m->n; i++) {
		const struct pattern *p = &m->p[i];
		if (p->exclusion != matched)
			continue;
		if (match_or_parent(p, path, len))
			matched = !p->exclusion;
	}
	return matched;
}

bool
bld_ignore_match(const struct bld_ignore *m, const char *path)
{
	if (!m || m->n == 0)
		return false;
	char *c = clean_path(path, strlen(path));
	if (!c)
		return false;
	const char *p = c;
	while (*p == '/')
		p++;
	bool r = match_clean(m, p, strlen(p));
	free(c);
	return r;
}

enum bld_ignore_dir_action
bld_ignore_dir(const struct bld_ignore *m, const char *dir)
{
	if (!m || m->n == 0)
		return BLD_IGNORE_DIR_INCLUDE;
	char *c = clean_path(dir, strlen(dir));
	if (!c)
		return BLD_IGNORE_DIR_DESCEND;
	const char *p = c;
	while (*p == '/')
		p++;
	size_t len = strlen(p);
	enum bld_ignore_dir_action act = BLD_IGNORE_DIR_INCLUDE;
	if (match_clean(m, p, len)) {
		act = BLD_IGNORE_DIR_SKIP;
		char *under = malloc(len + 2);
		if (!under) {
			free(c);
			return BLD_IGNORE_DIR_DESCEND;
		}
		memcpy(under, p, len);
		under[len] = '/';
		under[len + 1] = '\0';
		for (size_t i = 0; i < m->n && act == BLD_IGNORE_DIR_SKIP; i++)
			if (m->p[i].exclusion && pattern_match(&m->p[i], under, len + 1, true))
				act = BLD_IGNORE_DIR_DESCEND;
		free(under);
	}
	free(c);
	return act;
}
