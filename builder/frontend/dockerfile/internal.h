/*
 * Helpers shared by the Dockerfile frontend's files and by nothing else: an
 * arena that owns every string and array of one parse, UTF-8 decoding with
 * the same rules as Go (so text BuildKit sees as one rune we see as one
 * rune), and the Unicode classes BuildKit's parser relies on.
 *
 * Invariant: nothing allocated from an arena is freed on its own; the arena
 * goes away as a whole, which is what makes error paths short and fuzzing
 * leak-free.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct bld_arena;

/* NULL on allocation failure. */
struct bld_arena *bld_arena_new(void);
/* NULL-safe; returns NULL. */
struct bld_arena *bld_arena_free(struct bld_arena *a);
/* Zeroed memory; NULL when out of memory. */
void *bld_arena_alloc(struct bld_arena *a, size_t size);
/* A copy of size bytes at src; NULL when out of memory. */
void *bld_arena_memdup(struct bld_arena *a, const void *src, size_t size);
char *bld_arena_strndup(struct bld_arena *a, const char *s, size_t len);
char *bld_arena_strdup(struct bld_arena *a, const char *s);
char *bld_arena_printf(struct bld_arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A growable string kept in plain heap memory (for building results). */
struct bld_str {
	char *s;
	size_t len, cap;
	bool oom; /* sticky: set once an append failed */
};
void bld_str_puts(struct bld_str *b, const char *s);
void bld_str_put_rune(struct bld_str *b, uint32_t r);
void bld_str_reset(struct bld_str *b);
void bld_str_done(struct bld_str *b);
/* bld_str_putn() when the buffer has to grow first. */
void bld_str_grow_putn(struct bld_str *b, const char *s, size_t n);

/* Inline: most appends are a few bytes into a buffer with room to spare. */
static inline void
bld_str_putn(struct bld_str *b, const char *s, size_t n)
{
	if (b->oom || b->len + n + 1 > b->cap) {
		bld_str_grow_putn(b, s, n);
		return;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static inline void
bld_str_putc(struct bld_str *b, char c)
{
	bld_str_putn(b, &c, 1);
}

/*
 * bld_shell_word() into out, which is reset first: for a caller expanding
 * many words into storage of its own, with one buffer for all of them.
 */
struct bld_shell;
struct sc_err;
int bld_shell_expand(const struct bld_shell *sh, const char *in, struct bld_str *out,
		     struct sc_err *err);

/* A growable array of strings, heap backed; strings are not owned. */
struct bld_strv {
	const char **v;
	size_t n, cap;
	bool oom;
};
void bld_strv_push(struct bld_strv *sv, const char *s);
void bld_strv_done(struct bld_strv *sv);

#define BLD_RUNE_ERROR 0xFFFDu

/* ASCII whitespace as Go's regexp [\t\v\f\r ] sees it (no newline). */
static inline bool
bld_is_hspace(char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

static inline bool
bld_is_ascii_space(char c)
{
	return bld_is_hspace(c) || c == '\n';
}

/* bld_utf8_decode() of a rune that is not ASCII. */
uint32_t bld_utf8_decode_multibyte(const char *s, size_t len, size_t *ret_width);

/*
 * Decodes one rune at s (len > 0) like Go's utf8.DecodeRune: an invalid or
 * truncated sequence yields BLD_RUNE_ERROR with width 1. Inline for ASCII,
 * which is nearly all of a Dockerfile.
 */
static inline uint32_t
bld_utf8_decode(const char *s, size_t len, size_t *ret_width)
{
	if ((unsigned char)s[0] < 0x80) {
		*ret_width = 1;
		return (unsigned char)s[0];
	}
	return bld_utf8_decode_multibyte(s, len, ret_width);
}

/* True when s[0..len) is valid UTF-8; *ret_bad gets the offset of the first bad byte. */
bool bld_utf8_valid(const char *s, size_t len, size_t *ret_bad);

/* bld_rune_is_space() of a rune that is not ASCII. */
bool bld_rune_is_space_multibyte(uint32_t r);

/* Go's unicode.IsSpace, inline for ASCII. */
static inline bool
bld_rune_is_space(uint32_t r)
{
	if (r < 0x80)
		return bld_is_ascii_space((char)r);
	return bld_rune_is_space_multibyte(r);
}

/* Go's unicode.IsLetter, IsDigit, strconv.IsPrint. */
bool bld_rune_is_letter(uint32_t r);
bool bld_rune_is_digit(uint32_t r);
bool bld_rune_is_print(uint32_t r);

/* Length of s after dropping trailing runes for which bld_rune_is_space() holds. */
size_t bld_trim_right_len(const char *s, size_t len);
/* Offset of the first rune that is not a space. */
size_t bld_trim_left_off(const char *s, size_t len);

/* Appends s quoted the way Go's strconv.Quote does. */
void bld_go_quote(struct bld_str *out, const char *s, size_t len);

/* Levenshtein distance, capped at cap + 1 to stay cheap. */
size_t bld_edit_distance(const char *a, const char *b, size_t cap);
/*
 * The candidate closest to word (case-insensitive), or NULL when none is
 * close enough to be a plausible typo.
 */
const char *bld_suggest(const char *word, const char *const *candidates, size_t n);

bool bld_strcaseeq(const char *a, const char *b);
