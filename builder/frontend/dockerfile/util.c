/*
 * Arena, string builders, UTF-8 and Unicode classes, Go-style quoting and
 * did-you-mean suggestions for the Dockerfile frontend (see internal.h).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "unicode-tables.h"

#define ARENA_CHUNK (64u * 1024u)

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, size;
	_Alignas(max_align_t) unsigned char data[];
};

struct bld_arena {
	struct arena_chunk *head;
};

struct bld_arena *
bld_arena_new(void)
{
	return calloc(1, sizeof(struct bld_arena));
}

struct bld_arena *
bld_arena_free(struct bld_arena *a)
{
	if (!a)
		return NULL;
	struct arena_chunk *c = a->head;
	while (c) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	free(a);
	return NULL;
}

/* Uninitialised memory, for callers that write all of it right away (strings, copies). */
static void *
arena_alloc_raw(struct bld_arena *a, size_t size)
{
	const size_t align = _Alignof(max_align_t);
	size = (size + align - 1) & ~(align - 1);
	if (size == 0)
		size = align;
	struct arena_chunk *c = a->head;
	if (!c || c->size - c->used < size) {
		size_t want = size > ARENA_CHUNK / 4 ? size : ARENA_CHUNK;
		c = malloc(sizeof(*c) + want);
		if (!c)
			return NULL;
		c->size = want;
		c->used = 0;
		if (size > ARENA_CHUNK / 4 && a->head) {
			/* A big block gets its own chunk behind the current one. */
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = a->head;
			a->head = c;
		}
	}
	void *p = c->data + c->used;
	c->used += size;
	return p;
}

void *
bld_arena_alloc(struct bld_arena *a, size_t size)
{
	void *p = arena_alloc_raw(a, size);
	if (p)
		memset(p, 0, size);
	return p;
}

void *
bld_arena_memdup(struct bld_arena *a, const void *src, size_t size)
{
	void *p = arena_alloc_raw(a, size);
	if (p && size)
		memcpy(p, src, size);
	return p;
}

char *
bld_arena_strndup(struct bld_arena *a, const char *s, size_t len)
{
	char *p = arena_alloc_raw(a, len + 1);
	if (!p)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *
bld_arena_strdup(struct bld_arena *a, const char *s)
{
	return bld_arena_strndup(a, s, strlen(s));
}

char *
bld_arena_printf(struct bld_arena *a, const char *fmt, ...)
{
	/* Most results are short: format once into a stack buffer, again only when it is not. */
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	if ((size_t)n < sizeof(buf))
		return bld_arena_strndup(a, buf, (size_t)n);
	char *p = arena_alloc_raw(a, (size_t)n + 1);
	if (!p)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void
bld_str_grow_putn(struct bld_str *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->s, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void
bld_str_puts(struct bld_str *b, const char *s)
{
	bld_str_putn(b, s, strlen(s));
}

void
bld_str_put_rune(struct bld_str *b, uint32_t r)
{
	char buf[4];
	size_t n;
	if (r < 0x80) {
		buf[0] = (char)r;
		n = 1;
	} else if (r < 0x800) {
		buf[0] = (char)(0xC0 | (r >> 6));
		buf[1] = (char)(0x80 | (r & 0x3F));
		n = 2;
	} else if (r < 0x10000) {
		if (r >= 0xD800 && r <= 0xDFFF)
			r = BLD_RUNE_ERROR;
		buf[0] = (char)(0xE0 | (r >> 12));
		buf[1] = (char)(0x80 | ((r >> 6) & 0x3F));
		buf[2] = (char)(0x80 | (r & 0x3F));
		n = 3;
	} else {
		if (r > 0x10FFFF) {
			bld_str_put_rune(b, BLD_RUNE_ERROR);
			return;
		}
		buf[0] = (char)(0xF0 | (r >> 18));
		buf[1] = (char)(0x80 | ((r >> 12) & 0x3F));
		buf[2] = (char)(0x80 | ((r >> 6) & 0x3F));
		buf[3] = (char)(0x80 | (r & 0x3F));
		n = 4;
	}
	bld_str_putn(b, buf, n);
}

void
bld_str_reset(struct bld_str *b)
{
	b->len = 0;
	if (b->s)
		b->s[0] = '\0';
}

void
bld_str_done(struct bld_str *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
}

void
bld_strv_push(struct bld_strv *sv, const char *s)
{
	if (sv->oom)
		return;
	if (!s) {
		sv->oom = true;
		return;
	}
	if (sv->n == sv->cap) {
		size_t cap = sv->cap ? sv->cap * 2 : 8;
		const char **p = realloc(sv->v, cap * sizeof(*p));
		if (!p) {
			sv->oom = true;
			return;
		}
		sv->v = p;
		sv->cap = cap;
	}
	sv->v[sv->n++] = s;
}

void
bld_strv_done(struct bld_strv *sv)
{
	free(sv->v);
	sv->v = NULL;
	sv->n = sv->cap = 0;
}

uint32_t
bld_utf8_decode_multibyte(const char *str, size_t len, size_t *ret_width)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char c = s[0];
	*ret_width = 1;
	if (c < 0x80)
		return c;
	size_t need;
	uint32_t r, min;
	unsigned char lo = 0x80, hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF) {
		need = 1;
		r = c & 0x1F;
		min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		r = c & 0x0F;
		min = 0x800;
		if (c == 0xE0)
			lo = 0xA0;
		if (c == 0xED)
			hi = 0x9F; /* no surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		r = c & 0x07;
		min = 0x10000;
		if (c == 0xF0)
			lo = 0x90;
		if (c == 0xF4)
			hi = 0x8F;
	} else {
		return BLD_RUNE_ERROR;
	}
	if (len < need + 1)
		return BLD_RUNE_ERROR;
	for (size_t i = 1; i <= need; i++) {
		unsigned char cc = s[i];
		unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
		if (cc < l || cc > h)
			return BLD_RUNE_ERROR;
		r = (r << 6) | (cc & 0x3F);
	}
	if (r < min)
		return BLD_RUNE_ERROR;
	*ret_width = need + 1;
	return r;
}

bool
bld_utf8_valid(const char *s, size_t len, size_t *ret_bad)
{
	size_t i = 0;
	while (i < len) {
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		size_t w;
		uint32_t r = bld_utf8_decode(s + i, len - i, &w);
		if (r == BLD_RUNE_ERROR && w == 1) {
			if (ret_bad)
				*ret_bad = i;
			return false;
		}
		i += w;
	}
	return true;
}

static bool
in_table(const struct bld_urange *t, size_t n, uint32_t r)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r < t[mid].lo)
			hi = mid;
		else if (r > t[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

bool
bld_rune_is_space_multibyte(uint32_t r)
{
	switch (r) {
	case 0x85:
	case 0xA0:
	case 0x1680:
	case 0x2028:
	case 0x2029:
	case 0x202F:
	case 0x205F:
	case 0x3000:
		return true;
	}
	return r >= 0x2000 && r <= 0x200A;
}

bool
bld_rune_is_letter(uint32_t r)
{
	if (r < 0x80)
		return (r | 0x20) >= 'a' && (r | 0x20) <= 'z';
	return in_table(bld_unicode_letter,
			sizeof(bld_unicode_letter) / sizeof(bld_unicode_letter[0]), r);
}

bool
bld_rune_is_digit(uint32_t r)
{
	if (r < 0x80)
		return r >= '0' && r <= '9';
	return in_table(bld_unicode_digit, sizeof(bld_unicode_digit) / sizeof(bld_unicode_digit[0]),
			r);
}

bool
bld_rune_is_print(uint32_t r)
{
	if (r < 0x80)
		return r >= 0x20 && r < 0x7F;
	return in_table(bld_unicode_print, sizeof(bld_unicode_print) / sizeof(bld_unicode_print[0]),
			r);
}

size_t
bld_trim_right_len(const char *s, size_t len)
{
	/*
	 * An ASCII byte is never part of a multi-byte sequence, so trailing ASCII
	 * is judged from the end without decoding the rest of the string.
	 */
	while (len > 0 && (unsigned char)s[len - 1] < 0x80) {
		if (!bld_is_ascii_space(s[len - 1]))
			return len;
		len--;
	}
	/* Walk forward so multi-byte spaces are recognised, remembering the last non-space end. */
	size_t end = 0, i = 0;
	while (i < len) {
		size_t w;
		uint32_t r = bld_utf8_decode(s + i, len - i, &w);
		i += w;
		if (!bld_rune_is_space(r) || (r == BLD_RUNE_ERROR && w == 1))
			end = i;
	}
	return end;
}

size_t
bld_trim_left_off(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t w;
		uint32_t r = bld_utf8_decode(s + i, len - i, &w);
		if (!bld_rune_is_space(r) || (r == BLD_RUNE_ERROR && w == 1))
			break;
		i += w;
	}
	return i;
}

void
bld_go_quote(struct bld_str *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	bld_str_putc(out, '"');
	size_t i = 0;
	while (i < len) {
		size_t w;
		uint32_t r = bld_utf8_decode(s + i, len - i, &w);
		if (r == BLD_RUNE_ERROR && w == 1) {
			unsigned char c = (unsigned char)s[i];
			char buf[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
			bld_str_putn(out, buf, 4);
			i++;
			continue;
		}
		if (r == '"' || r == '\\') {
			bld_str_putc(out, '\\');
			bld_str_putc(out, (char)r);
		} else if (bld_rune_is_print(r)) {
			bld_str_putn(out, s + i, w);
		} else {
			char buf[12];
			switch (r) {
			case '\a':
				bld_str_puts(out, "\\a");
				break;
			case '\b':
				bld_str_puts(out, "\\b");
				break;
			case '\f':
				bld_str_puts(out, "\\f");
				break;
			case '\n':
				bld_str_puts(out, "\\n");
				break;
			case '\r':
				bld_str_puts(out, "\\r");
				break;
			case '\t':
				bld_str_puts(out, "\\t");
				break;
			case '\v':
				bld_str_puts(out, "\\v");
				break;
			default:
				if (r < ' ' || r == 0x7F)
					snprintf(buf, sizeof(buf), "\\x%02x", (unsigned)r);
				else if (r < 0x10000)
					snprintf(buf, sizeof(buf), "\\u%04x", (unsigned)r);
				else
					snprintf(buf, sizeof(buf), "\\U%08x", (unsigned)r);
				bld_str_puts(out, buf);
			}
		}
		i += w;
	}
	bld_str_putc(out, '"');
}

size_t
bld_edit_distance(const char *a, const char *b, size_t cap)
{
	/* Optimal string alignment: a swap of neighbours ("chwon") counts as one edit. */
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return cap + 1;
	size_t d[65][65];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			char ca = a[i - 1], cb = b[j - 1];
			if (ca >= 'A' && ca <= 'Z')
				ca = (char)(ca + 32);
			if (cb >= 'A' && cb <= 'Z')
				cb = (char)(cb + 32);
			size_t best = d[i - 1][j - 1] + (ca != cb);
			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1) {
				char pa = a[i - 2], pb = b[j - 2];
				if (pa >= 'A' && pa <= 'Z')
					pa = (char)(pa + 32);
				if (pb >= 'A' && pb <= 'Z')
					pb = (char)(pb + 32);
				if (ca == pb && pa == cb && d[i - 2][j - 2] + 1 < best)
					best = d[i - 2][j - 2] + 1;
			}
			d[i][j] = best;
		}
	}
	return d[la][lb] > cap ? cap + 1 : d[la][lb];
}

const char *
bld_suggest(const char *word, const char *const *candidates, size_t n)
{
	size_t wl = strlen(word);
	/* Allow about one edit per three characters, at least one, at most three. */
	size_t cap = wl / 3;
	if (cap < 1)
		cap = 1;
	if (cap > 3)
		cap = 3;
	const char *best = NULL;
	size_t best_d = cap + 1;
	for (size_t i = 0; i < n; i++) {
		size_t d = bld_edit_distance(word, candidates[i], cap);
		if (d < best_d) {
			best_d = d;
			best = candidates[i];
		}
	}
	return best;
}

bool
bld_strcaseeq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}
