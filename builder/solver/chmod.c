/*
 * --chown and --chmod of COPY/ADD: their syntax once variables are
 * expanded, owner names resolved in the destination rootfs, and modes
 * applied to each copied entry.
 *
 * --chmod is octal (at most four digits, as the frontend accepts
 * literally) or symbolic as chmod(1) takes it: comma-separated clauses
 * [ugoa]*([-+=]([rwxXst]*|[ugo]))+. A clause without u, g, o or a means
 * "a" with no umask involved (a build must not depend on the builder's
 * umask). X adds execute only for directories and for entries that already
 * have an execute bit; '=' keeps a directory's set-id bits, as chmod(1)
 * does. Symbolic modes apply to each entry's own mode, so "u+x" keeps
 * what else the source had.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "executor.h"
#include "fileop-internal.h"

static bool
is_octal(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && n <= 4 && strspn(s, "01234567") == n;
}

/*
 * Applies the symbolic mode s to st_mode; *ret gets the permission bits.
 * -EINVAL when s is malformed (the grammar is the frontend's
 * chmod_symbolic_ok(), so literal and expanded values agree).
 */
static int
sym_apply(const char *s, mode_t st_mode, mode_t *ret)
{
	bool dir = S_ISDIR(st_mode);
	mode_t m = st_mode & 07777;
	const char *p = s;
	for (;;) {
		mode_t who = 0;
		for (; *p && strchr("ugoa", *p); p++)
			who |= *p == 'u' ? 04700 : *p == 'g' ? 02070 : *p == 'o' ? 01007 : 07777;
		if (who == 0)
			who = 07777;
		if (!*p || !strchr("+-=", *p))
			return -EINVAL;
		while (*p && strchr("+-=", *p)) {
			char op = *p++;
			mode_t bits = 0;
			if (*p && strchr("ugo", *p) && (p[1] == '\0' || p[1] == ',')) {
				/* Copy another class's current bits: "g=u". */
				unsigned shift = *p == 'u' ? 6 : *p == 'g' ? 3 : 0;
				mode_t v = (m >> shift) & 7;
				bits = (v << 6) | (v << 3) | v;
				p++;
			} else {
				for (; *p && strchr("rwxXst", *p); p++) {
					switch (*p) {
					case 'r':
						bits |= 0444;
						break;
					case 'w':
						bits |= 0222;
						break;
					case 'x':
						bits |= 0111;
						break;
					case 'X':
						if (dir || (m & 0111))
							bits |= 0111;
						break;
					case 's':
						bits |= 06000;
						break;
					case 't':
						bits |= 01000;
						break;
					}
				}
			}
			bits &= who;
			if (op == '+') {
				m |= bits;
			} else if (op == '-') {
				m &= ~bits;
			} else {
				mode_t clear = dir ? who & ~(mode_t)06000 : who;
				m = (m & ~clear) | bits;
			}
		}
		if (!*p)
			break;
		if (*p != ',')
			return -EINVAL;
		p++;
	}
	*ret = m;
	return 0;
}

int
fo_chmod_parse(const char *s, struct fo_chmod *ret, struct sc_err *err)
{
	*ret = (struct fo_chmod){0};
	if (!s)
		return 0;
	if (is_octal(s)) {
		*ret = (struct fo_chmod){.set = true, .octal = true, .mode = strtoul(s, NULL, 8)};
		return 0;
	}
	size_t n = strlen(s);
	if (n > 0 && strspn(s, "0123456789") == n)
		return sc_err_set(
			err, -EINVAL,
			"invalid --chmod value '%s': an octal mode has at most four digits 0-7", s);
	mode_t m;
	if (n == 0 || sym_apply(s, S_IFREG | 0644, &m) < 0)
		return sc_err_set(err, -EINVAL,
				  "invalid --chmod value '%s': use an octal mode (0755) or a "
				  "symbolic one (u+x,g-w,o=r)",
				  s);
	*ret = (struct fo_chmod){.set = true, .sym = s};
	return 0;
}

mode_t
fo_chmod_apply(const struct fo_chmod *c, mode_t st_mode)
{
	if (!c->set)
		return st_mode & 07777;
	if (c->octal)
		return c->mode & 07777;
	mode_t m = st_mode & 07777;
	(void)sym_apply(c->sym, st_mode, &m); /* checked by fo_chmod_parse */
	return m;
}

int
fo_chown_check(const char *s, struct sc_err *err)
{
	if (!s)
		return 0;
	const char *colon = strchr(s, ':');
	bool bad = !*s || *s == ':' || (colon && (!colon[1] || strchr(colon + 1, ':')));
	for (const char *p = s; *p && !bad; p++)
		bad = iscntrl((unsigned char)*p) || isspace((unsigned char)*p) || *p == '/';
	if (bad)
		return sc_err_set(err, -EINVAL,
				  "invalid --chown value '%s': use USER[:GROUP], names or numeric "
				  "ids (1000:1000, app:app)",
				  s);
	return 0;
}

/* A numeric id (not the reserved -1); false for names. */
static bool
parse_id(const char *s, size_t len, uint32_t *ret)
{
	if (len == 0 || len > 10)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v >= UINT32_MAX)
		return false;
	*ret = (uint32_t)v;
	return true;
}

int
fo_chown_resolve(int root_fd, const char *s, uid_t *ret_uid, gid_t *ret_gid, struct sc_err *err)
{
	int r = fo_chown_check(s, err);
	if (r < 0)
		return r;
	const char *colon = strchr(s, ':');
	size_t ul = colon ? (size_t)(colon - s) : strlen(s);
	uint32_t uid, gid;
	if (parse_id(s, ul, &uid)) {
		/* BuildKit: "--chown=1000" is 1000:1000, no passwd lookup. */
		if (!colon) {
			*ret_uid = uid;
			*ret_gid = uid;
			return 0;
		}
		if (parse_id(colon + 1, strlen(colon + 1), &gid)) {
			*ret_uid = uid;
			*ret_gid = gid;
			return 0;
		}
	}
	uid_t u;
	gid_t g;
	r = bld_user_resolve(root_fd, s, &u, &g, NULL, NULL, err);
	if (r < 0)
		return sc_err_prefix(err, r, "--chown=%s", s);
	*ret_uid = u;
	*ret_gid = g;
	return 0;
}

int
bld_copy_flags_validate(const char *chown, const char *chmod, struct sc_err *err)
{
	int r = fo_chown_check(chown, err);
	if (r < 0)
		return r;
	struct fo_chmod c;
	return fo_chmod_parse(chmod, &c, err);
}
