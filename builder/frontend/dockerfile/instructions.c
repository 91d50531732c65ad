/*
 * Parsed nodes -> typed instructions (see instructions.h). Each instruction
 * declares the flags it takes; a small flag reader (BuildKit's BFlags rules:
 * "--name=value", a bare "--name" for booleans, no repeats except for list
 * flags) checks them and offers a did-you-mean for typos.
 */
#include "instructions.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "internal.h"
#include "util.h"

static const char *const kind_names[BLD_INSTR_MAX] = {
	[BLD_INSTR_FROM] = "FROM",
	[BLD_INSTR_RUN] = "RUN",
	[BLD_INSTR_CMD] = "CMD",
	[BLD_INSTR_ENTRYPOINT] = "ENTRYPOINT",
	[BLD_INSTR_SHELL] = "SHELL",
	[BLD_INSTR_ENV] = "ENV",
	[BLD_INSTR_ARG] = "ARG",
	[BLD_INSTR_LABEL] = "LABEL",
	[BLD_INSTR_EXPOSE] = "EXPOSE",
	[BLD_INSTR_USER] = "USER",
	[BLD_INSTR_WORKDIR] = "WORKDIR",
	[BLD_INSTR_VOLUME] = "VOLUME",
	[BLD_INSTR_COPY] = "COPY",
	[BLD_INSTR_ADD] = "ADD",
	[BLD_INSTR_STOPSIGNAL] = "STOPSIGNAL",
	[BLD_INSTR_HEALTHCHECK] = "HEALTHCHECK",
	[BLD_INSTR_ONBUILD] = "ONBUILD",
	[BLD_INSTR_MAINTAINER] = "MAINTAINER",
};

const char *
bld_instr_kind_to_string(enum bld_instr_kind k)
{
	return (unsigned)k < BLD_INSTR_MAX ? kind_names[k] : NULL;
}

int
bld_instr_kind_from_string(const char *s, enum bld_instr_kind *ret)
{
	/* The first letter rules out most names before a full comparison. */
	for (unsigned i = 0; i < BLD_INSTR_MAX; i++)
		if (toupper((unsigned char)s[0]) == kind_names[i][0] &&
		    strcasecmp(s, kind_names[i]) == 0) {
			*ret = (enum bld_instr_kind)i;
			return 0;
		}
	return -EINVAL;
}

#define ENUM_STRINGS(prefix, type, max, ...)                                                       \
	static const char *const prefix##_names[max] = {__VA_ARGS__};                              \
	const char *bld_##prefix##_to_string(type v)                                               \
	{                                                                                          \
		return (unsigned)v < max ? prefix##_names[v] : NULL;                               \
	}                                                                                          \
	int bld_##prefix##_from_string(const char *s, type *ret)                                   \
	{                                                                                          \
		for (unsigned i = 0; i < max; i++)                                                 \
			if (strcmp(s, prefix##_names[i]) == 0) {                                   \
				*ret = (type)i;                                                    \
				return 0;                                                          \
			}                                                                          \
		return -EINVAL;                                                                    \
	}

ENUM_STRINGS(mount_type, enum bld_mount_type, BLD_MOUNT_TYPE_MAX, "bind", "cache", "tmpfs",
	     "secret", "ssh")
ENUM_STRINGS(mount_sharing, enum bld_mount_sharing, BLD_SHARING_MAX, "shared", "private", "locked")
ENUM_STRINGS(network, enum bld_network, BLD_NETWORK_MAX, "default", "none", "host")
ENUM_STRINGS(security, enum bld_security, BLD_SECURITY_MAX, "sandbox", "insecure")

/* ---- context ------------------------------------------------------------ */

struct ctx {
	const struct bld_dockerfile *df;
	struct bld_arena *a;
	const struct bld_df_node *node;
	const char *kw; /* upper-case keyword */
	struct sc_err *err;
};

static int fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(struct ctx *c, const char *fmt, ...)
{
	char msg[SC_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return sc_err_set(c->err, -EINVAL, "%s:%u: %s", c->df->filename, c->node->start_line, msg);
}

static int
oom(struct ctx *c)
{
	return sc_err_set(c->err, -ENOMEM, "%s:%u: out of memory", c->df->filename,
			  c->node->start_line);
}

/* ---- flags -------------------------------------------------------------- */

enum flag_type { FL_BOOL, FL_STRING, FL_LIST };

struct flag_def {
	const char *name;
	enum flag_type type;
};

struct flag_val {
	bool set;
	const char *value; /* FL_BOOL: "true"/"false" */
	struct bld_strv list;
};

static int
parse_flags(struct ctx *c, const struct flag_def *defs, size_t ndefs, struct flag_val *vals)
{
	for (size_t i = 0; i < c->node->nflags; i++) {
		const char *f = c->node->flags[i];
		if (strncmp(f, "--", 2) != 0)
			return fail(c, "flag '%s' for %s must start with --", f, c->kw);
		const char *name = f + 2;
		const char *eq = strchr(name, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		size_t k;
		for (k = 0; k < ndefs; k++)
			if (strlen(defs[k].name) == nlen && strncmp(defs[k].name, name, nlen) == 0)
				break;
		if (k == ndefs) {
			char nm[128];
			snprintf(nm, sizeof(nm), "%.*s", (int)(nlen < 100 ? nlen : 100), name);
			if (ndefs == 0)
				return fail(c, "unknown flag --%s: %s takes no flags", nm, c->kw);
			const char *cands[16];
			for (size_t j = 0; j < ndefs && j < 16; j++)
				cands[j] = defs[j].name;
			const char *s = bld_suggest(nm, cands, ndefs < 16 ? ndefs : 16);
			if (s)
				return fail(c, "unknown flag --%s for %s (did you mean --%s?)", nm,
					    c->kw, s);
			return fail(c, "unknown flag --%s for %s", nm, c->kw);
		}
		struct flag_val *v = &vals[k];
		if (v->set && defs[k].type != FL_LIST)
			return fail(c, "duplicate flag specified: --%s", defs[k].name);
		v->set = true;
		switch (defs[k].type) {
		case FL_BOOL:
			if (!eq) {
				v->value = "true";
			} else if (strcasecmp(eq + 1, "true") == 0) {
				v->value = "true";
			} else if (strcasecmp(eq + 1, "false") == 0) {
				v->value = "false";
			} else {
				return fail(c, "expecting boolean value for flag --%s, not: '%s'",
					    defs[k].name, eq + 1);
			}
			break;
		case FL_STRING:
		case FL_LIST:
			if (!eq)
				return fail(c, "missing a value on flag --%s (use --%s=VALUE)",
					    defs[k].name, defs[k].name);
			v->value = eq + 1;
			if (defs[k].type == FL_LIST) {
				bld_strv_push(&v->list, eq + 1);
				if (v->list.oom)
					return oom(c);
			}
			break;
		}
	}
	return 0;
}

static void
flags_done(struct flag_val *vals, size_t n)
{
	for (size_t i = 0; i < n; i++)
		bld_strv_done(&vals[i].list);
}

static bool
flag_true(const struct flag_val *v)
{
	return v->set && strcmp(v->value, "true") == 0;
}

static const char *const *
arena_strv(struct ctx *c, const char *const *v, size_t n)
{
	if (n == 0)
		return NULL;
	const char **out = bld_arena_alloc(c->a, n * sizeof(char *));
	if (out)
		memcpy(out, v, n * sizeof(char *));
	return out;
}

/* ---- helpers ------------------------------------------------------------ */

int
bld_duration_parse(const char *s, int64_t *ret_ns)
{
	const char *p = s;
	bool neg = false;
	if (*p == '-' || *p == '+') {
		neg = *p == '-';
		p++;
	}
	if (strcmp(p, "0") == 0) {
		*ret_ns = 0;
		return 0;
	}
	if (*p == '\0')
		return -EINVAL;
	double total = 0;
	while (*p) {
		if (!((*p >= '0' && *p <= '9') || *p == '.'))
			return -EINVAL;
		double v = 0, scale = 1;
		bool digits = false, dot = false;
		while ((*p >= '0' && *p <= '9') || (*p == '.' && !dot)) {
			if (*p == '.') {
				dot = true;
			} else {
				digits = true;
				if (dot) {
					scale /= 10;
					v += (*p - '0') * scale;
				} else {
					v = v * 10 + (*p - '0');
				}
			}
			p++;
		}
		if (!digits)
			return -EINVAL;
		double unit;
		if (strncmp(p, "ns", 2) == 0) {
			unit = 1;
			p += 2;
		} else if (strncmp(p, "us", 2) == 0) {
			unit = 1e3;
			p += 2;
		} else if (strncmp(p, "\xC2\xB5s", 3) == 0 || strncmp(p, "\xCE\xBCs", 3) == 0) {
			unit = 1e3;
			p += 3;
		} else if (strncmp(p, "ms", 2) == 0) {
			unit = 1e6;
			p += 2;
		} else if (*p == 's') {
			unit = 1e9;
			p++;
		} else if (*p == 'm') {
			unit = 60e9;
			p++;
		} else if (*p == 'h') {
			unit = 3600e9;
			p++;
		} else {
			return -EINVAL; /* a missing or unknown unit */
		}
		total += v * unit;
		if (total > 9.2e18)
			return -ERANGE;
	}
	*ret_ns = (int64_t)(neg ? -total : total);
	return 0;
}

bool
bld_source_is_url(const char *src)
{
	return strncasecmp(src, "http://", 7) == 0 || strncasecmp(src, "https://", 8) == 0 ||
	       bld_source_is_git(src);
}

bool
bld_source_is_git(const char *src)
{
	size_t n = strlen(src);
	if (strncmp(src, "git@", 4) == 0 || strncmp(src, "git://", 6) == 0)
		return true;
	if (strncasecmp(src, "http://", 7) != 0 && strncasecmp(src, "https://", 8) != 0)
		return false;
	const char *hash = strchr(src, '#');
	size_t end = hash ? (size_t)(hash - src) : n;
	return end >= 4 && strncmp(src + end - 4, ".git", 4) == 0;
}

static bool
chmod_symbolic_ok(const char *s)
{
	/* [ugoa]*[-+=][rwxXst]* (or [-+=][ugo]) clauses separated by commas. */
	const char *p = s;
	for (;;) {
		while (*p && strchr("ugoa", *p))
			p++;
		if (!*p || !strchr("+-=", *p))
			return false;
		while (*p && strchr("+-=", *p)) {
			p++;
			if (*p && strchr("ugo", *p) && (p[1] == '\0' || p[1] == ',')) {
				p++;
				break;
			}
			while (*p && strchr("rwxXst", *p))
				p++;
		}
		if (*p == '\0')
			return true;
		if (*p != ',')
			return false;
		p++;
	}
}

static int
check_chmod(struct ctx *c, const char *v, bool *ret_octal, unsigned *ret_mode)
{
	size_t n = strlen(v);
	bool octal = n > 0 && n <= 4 && strspn(v, "01234567") == n;
	if (octal) {
		*ret_octal = true;
		*ret_mode = (unsigned)strtoul(v, NULL, 8);
		return 0;
	}
	if (n > 0 && strspn(v, "0123456789") == n)
		return fail(c,
			    "invalid --chmod value '%s': an octal mode has at most four digits 0-7",
			    v);
	if (!chmod_symbolic_ok(v))
		return fail(
			c,
			"invalid --chmod value '%s': use an octal mode (0755) or a symbolic one "
			"(u+x,g-w,o=r)",
			v);
	*ret_octal = false;
	return 0;
}

static int
need_args(struct ctx *c, size_t min, size_t max)
{
	size_t n = c->node->nargs;
	if (n >= min && n <= max)
		return 0;
	if (min == max && min == 1)
		return fail(c, "%s requires exactly one argument", c->kw);
	if (n < min)
		return fail(c, "%s requires at least %zu argument%s", c->kw, min,
			    min == 1 ? "" : "s");
	return fail(c, "%s takes at most %zu argument%s", c->kw, max, max == 1 ? "" : "s");
}

static bool
is_json(const struct ctx *c)
{
	return c->node->attrs & BLD_DF_NODE_JSON;
}

static int
build_cmdline(struct ctx *c, struct bld_cmdline *cl, bool with_files)
{
	cl->shell_form = !is_json(c);
	if (is_json(c)) {
		cl->argv = c->node->args;
		cl->argc = c->node->nargs;
	} else {
		/* Shell form holds at most one string: the text after the keyword and flags. */
		cl->argv = c->node->args;
		cl->argc = c->node->nargs;
		if (cl->argc == 0) {
			static const char *const empty[] = {""};
			cl->argv = empty;
			cl->argc = 1;
		}
	}
	if (with_files) {
		cl->files = c->node->heredocs;
		cl->nfiles = c->node->nheredocs;
	}
	return 0;
}

/* ---- RUN --mount -------------------------------------------------------- */

/* Docker's RAMInBytes: "64m", "1.5g", "512kb"; units are binary. */
static int
parse_ram_size(const char *s, uint64_t *ret)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || v < 0)
		return -EINVAL;
	double mult = 1;
	switch (*end | 0x20) {
	case 'k':
		mult = 1024.0;
		break;
	case 'm':
		mult = 1024.0 * 1024;
		break;
	case 'g':
		mult = 1024.0 * 1024 * 1024;
		break;
	case 't':
		mult = 1024.0 * 1024 * 1024 * 1024;
		break;
	case 'p':
		mult = 1024.0 * 1024 * 1024 * 1024 * 1024;
		break;
	case 'b':
	case ' ':
		break;
	default:
		if (*end)
			return -EINVAL;
	}
	if (*end && (*end | 0x20) != 'b') {
		end++;
		if ((*end | 0x20) == 'i')
			end++;
		if ((*end | 0x20) == 'b')
			end++;
	} else if (*end) {
		end++;
	}
	if (*end || v * mult > 1.8e19)
		return -EINVAL;
	*ret = (uint64_t)(v * mult);
	return 0;
}

static int
parse_bool_value(const char *v, bool *ret)
{
	static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
	for (size_t i = 0; i < 6; i++) {
		if (strcmp(v, t[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcmp(v, f[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* Splits a CSV record (double quotes group, "" is a literal quote) into heap fields. */
static int
csv_split(const char *s, struct bld_strv *out)
{
	struct bld_str f = {0};
	const char *p = s;
	for (;;) {
		bld_str_reset(&f);
		bld_str_putn(&f, "", 0);
		if (*p == '"') {
			p++;
			for (;;) {
				if (*p == '\0') {
					bld_str_done(&f);
					return -EINVAL;
				}
				if (*p == '"') {
					if (p[1] == '"') {
						bld_str_putc(&f, '"');
						p += 2;
						continue;
					}
					p++;
					break;
				}
				bld_str_putc(&f, *p++);
			}
			if (*p != ',' && *p != '\0') {
				bld_str_done(&f);
				return -EINVAL;
			}
		} else {
			const char *e = strchr(p, ',');
			size_t n = e ? (size_t)(e - p) : strlen(p);
			bld_str_putn(&f, p, n);
			p += n;
		}
		char *dup = strdup(f.s ? f.s : "");
		if (!dup || f.oom) {
			free(dup);
			bld_str_done(&f);
			return -ENOMEM;
		}
		bld_strv_push(out, dup);
		if (out->oom) {
			free(dup);
			bld_str_done(&f);
			return -ENOMEM;
		}
		if (*p == '\0')
			break;
		p++; /* ',' */
	}
	bld_str_done(&f);
	return 0;
}

static void
strv_free_all(struct bld_strv *v)
{
	for (size_t i = 0; i < v->n; i++)
		free((char *)v->v[i]);
	bld_strv_done(v);
}

int
bld_mount_parse(const struct bld_dockerfile *df, const char *spec,
		char *(*expand)(void *userdata, const char *value, struct sc_err *err),
		void *userdata, struct bld_mount *ret, struct sc_err *err)
{
	struct bld_arena *a = df->arena;
	struct bld_strv fields = {0};
	int r = csv_split(spec, &fields);
	if (r < 0)
		strv_free_all(&fields);
	if (r == -ENOMEM)
		return sc_err_set(err, r, "out of memory");
	if (r < 0)
		return sc_err_set(err, -EINVAL, "invalid --mount value '%s': unbalanced quotes",
				  spec);
	struct bld_mount m = {.type = BLD_MOUNT_BIND};
	bool ro_set = false, mode_set = false;
	char *tmp = NULL;
	for (size_t i = 0; i < fields.n && r >= 0; i++) {
		const char *fld = fields.v[i];
		const char *eq = strchr(fld, '=');
		char key[32];
		size_t klen = eq ? (size_t)(eq - fld) : strlen(fld);
		if (klen >= sizeof(key)) {
			r = sc_err_set(err, -EINVAL, "unexpected key '%.40s' in '%s'", fld, spec);
			break;
		}
		for (size_t k = 0; k < klen; k++)
			key[k] = (char)((fld[k] >= 'A' && fld[k] <= 'Z') ? fld[k] + 32 : fld[k]);
		key[klen] = '\0';
		bool is_bool_key = !strcmp(key, "readonly") || !strcmp(key, "ro") ||
				   !strcmp(key, "readwrite") || !strcmp(key, "rw") ||
				   !strcmp(key, "required");
		if (!eq && !is_bool_key) {
			r = sc_err_set(
				err, -EINVAL,
				"invalid field '%s' in --mount '%s': must be a key=value pair", fld,
				spec);
			break;
		}
		const char *val = eq ? eq + 1 : "true";
		free(tmp);
		tmp = NULL;
		if (expand && eq && strcmp(key, "type") != 0) {
			tmp = expand(userdata, val, err);
			if (!tmp) {
				r = err && err->code ? err->code : -ENOMEM;
				break;
			}
			val = tmp;
		}
		const char *v = bld_arena_strdup(a, val);
		if (!v) {
			r = -ENOMEM;
			break;
		}
		if (!strcmp(key, "type")) {
			if (bld_mount_type_from_string(v, &m.type) < 0)
				r = sc_err_set(
					err, -EINVAL,
					"unsupported mount type '%s' (use bind, cache, tmpfs, "
					"secret or ssh)",
					v);
		} else if (!strcmp(key, "source") || !strcmp(key, "src")) {
			m.source = v;
		} else if (!strcmp(key, "target") || !strcmp(key, "dst") ||
			   !strcmp(key, "destination")) {
			m.target = v;
		} else if (!strcmp(key, "from")) {
			m.from = v;
		} else if (!strcmp(key, "id")) {
			m.id = v;
		} else if (!strcmp(key, "env")) {
			m.env = v;
		} else if (is_bool_key) {
			bool b;
			if (parse_bool_value(v, &b) < 0) {
				r = sc_err_set(err, -EINVAL, "invalid value for %s: '%s'", key, v);
			} else if (!strcmp(key, "required")) {
				m.required = b;
			} else {
				ro_set = true;
				m.readonly =
					(key[0] == 'r' && key[1] != 'w' && strcmp(key, "readwrite"))
						? b
						: !b;
			}
		} else if (!strcmp(key, "sharing")) {
			if (bld_mount_sharing_from_string(v, &m.sharing) < 0)
				r = sc_err_set(
					err, -EINVAL,
					"unsupported sharing value '%s' (use shared, private or "
					"locked)",
					v);
		} else if (!strcmp(key, "mode")) {
			char *end;
			errno = 0;
			unsigned long mode = strtoul(v, &end, 8);
			if (!*v || *end || errno || mode > 07777)
				r = sc_err_set(err, -EINVAL, "invalid mode '%s': use an octal mode",
					       v);
			m.mode = (unsigned)mode;
			mode_set = true;
		} else if (!strcmp(key, "uid") || !strcmp(key, "gid")) {
			char *end;
			errno = 0;
			unsigned long id = strtoul(v, &end, 10);
			if (!*v || *end || errno || id > 0xFFFFFFFFul || v[0] == '-')
				r = sc_err_set(err, -EINVAL, "invalid %s '%s': use a number", key,
					       v);
			if (key[0] == 'u')
				m.uid = (unsigned)id;
			else
				m.gid = (unsigned)id;
		} else if (!strcmp(key, "size")) {
			uint64_t sz = 0;
			if (parse_ram_size(v, &sz) < 0)
				r = sc_err_set(err, -EINVAL, "invalid size '%s' (use e.g. 64m)", v);
			m.size = sz;
		} else {
			r = sc_err_set(err, -EINVAL, "unexpected key '%s' in '%s'", key, spec);
		}
	}
	free(tmp);
	strv_free_all(&fields);
	if (r < 0)
		return r == -ENOMEM ? sc_err_set(err, r, "out of memory") : r;

	const char *tn = bld_mount_type_to_string(m.type);
	if (m.type == BLD_MOUNT_BIND && !ro_set)
		m.readonly = true;
	if (m.from && m.type != BLD_MOUNT_BIND && m.type != BLD_MOUNT_CACHE)
		return sc_err_set(err, -EINVAL, "'from' is not supported for %s mounts", tn);
	if (m.sharing != BLD_SHARING_SHARED && m.type != BLD_MOUNT_CACHE)
		return sc_err_set(err, -EINVAL, "'sharing' only applies to cache mounts");
	if (m.size && m.type != BLD_MOUNT_TMPFS)
		return sc_err_set(err, -EINVAL, "'size' only applies to tmpfs mounts");
	if (m.source && m.type == BLD_MOUNT_TMPFS)
		return sc_err_set(err, -EINVAL, "'source' is not supported for tmpfs mounts");
	switch (m.type) {
	case BLD_MOUNT_BIND:
	case BLD_MOUNT_CACHE:
	case BLD_MOUNT_TMPFS:
		if (!m.target || !m.target[0])
			return sc_err_set(err, -EINVAL,
					  "%s mount '%s' needs a target (add target=PATH)", tn,
					  spec);
		if (m.type == BLD_MOUNT_CACHE) {
			if (!m.id)
				m.id = m.target;
			if (!mode_set)
				m.mode = 0755;
		}
		break;
	case BLD_MOUNT_SECRET:
		if (!m.id && m.source)
			m.id = m.source;
		if (!m.id && m.target) {
			const char *slash = strrchr(m.target, '/');
			m.id = slash ? slash + 1 : m.target;
		}
		if (!m.id || !m.id[0])
			return sc_err_set(err, -EINVAL,
					  "secret mount '%s' needs an id or a target (add id=NAME)",
					  spec);
		if (!m.target && !m.env) {
			m.target = bld_arena_printf(a, "/run/secrets/%s", m.id);
			if (!m.target)
				return sc_err_set(err, -ENOMEM, "out of memory");
		}
		if (!mode_set)
			m.mode = 0400;
		break;
	case BLD_MOUNT_SSH:
		if (!m.id)
			m.id = "default";
		if (!m.target) {
			/* The plan numbers several ssh mounts of one RUN apart. */
			m.target = bld_arena_strdup(a, "/run/buildkit/ssh_agent.0");
			if (!m.target)
				return sc_err_set(err, -ENOMEM, "out of memory");
		}
		if (!mode_set)
			m.mode = 0600;
		break;
	case BLD_MOUNT_TYPE_MAX:
		break;
	}
	*ret = m;
	return 0;
}

/* ---- instructions ------------------------------------------------------- */

static int build(struct ctx *c, struct bld_instr *in);

static int
build_from(struct ctx *c, struct bld_instr *in)
{
	static const struct flag_def defs[] = {{"platform", FL_STRING}};
	struct flag_val v[1] = {0};
	int r = parse_flags(c, defs, 1, v);
	if (r < 0)
		goto out;
	const struct bld_df_node *n = c->node;
	if (n->nargs == 3 && strcasecmp(n->args[1], "as") == 0) {
		char *name = bld_arena_strdup(c->a, n->args[2]);
		if (!name) {
			r = oom(c);
			goto out;
		}
		for (char *p = name; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p + 32);
		bool ok = name[0] >= 'a' && name[0] <= 'z';
		for (const char *p = name; ok && *p; p++)
			ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
			     *p == '_' || *p == '.';
		if (!ok) {
			r = fail(c,
				 "invalid name for build stage: '%s', name can't start with a "
				 "number "
				 "or contain symbols",
				 n->args[2]);
			goto out;
		}
		in->u.from.name = name;
	} else if (n->nargs != 1) {
		r = fail(c, "FROM requires either one or three arguments (FROM IMAGE [AS NAME])%s",
			 n->nargs == 3 ? "" : "");
		goto out;
	}
	in->u.from.image = n->args[0];
	in->u.from.platform = v[0].set ? v[0].value : NULL;
out:
	flags_done(v, 1);
	return r;
}

static int
build_run(struct ctx *c, struct bld_instr *in)
{
	static const struct flag_def defs[] = {
		{"mount", FL_LIST}, {"network", FL_STRING}, {"security", FL_STRING}};
	struct flag_val v[3] = {0};
	int r = parse_flags(c, defs, 3, v);
	if (r < 0)
		goto out;
	if (c->node->nargs == 0 && c->node->nheredocs == 0 && !is_json(c)) {
		r = fail(c, "RUN requires a command");
		goto out;
	}
	build_cmdline(c, &in->u.run.cmd, true);
	if (v[1].set && bld_network_from_string(v[1].value, &in->u.run.network) < 0) {
		r = fail(c, "network mode '%s' not supported (use default, none or host)",
			 v[1].value);
		goto out;
	}
	if (v[2].set && bld_security_from_string(v[2].value, &in->u.run.security) < 0) {
		r = fail(c, "security mode '%s' not supported (use sandbox or insecure)",
			 v[2].value);
		goto out;
	}
	if (v[0].list.n) {
		struct bld_mount *m = bld_arena_alloc(c->a, v[0].list.n * sizeof(*m));
		if (!m) {
			r = oom(c);
			goto out;
		}
		for (size_t i = 0; i < v[0].list.n; i++) {
			struct sc_err e = SC_ERR_INIT;
			r = bld_mount_parse(c->df, v[0].list.v[i], NULL, NULL, &m[i], &e);
			if (r < 0) {
				r = r == -ENOMEM ? oom(c) : fail(c, "--mount: %s", sc_err_msg(&e));
				goto out;
			}
		}
		in->u.run.mounts = m;
		in->u.run.nmounts = v[0].list.n;
	}
out:
	flags_done(v, 3);
	return r;
}

static int
build_kv(struct ctx *c, struct bld_instr *in)
{
	int r = parse_flags(c, NULL, 0, NULL);
	if (r < 0)
		return r;
	const struct bld_df_node *n = c->node;
	if (n->nargs == 0)
		return fail(c, "%s requires at least one argument", c->kw);
	if (n->nargs % 3 != 0)
		return fail(c, "%s: malformed arguments", c->kw);
	struct bld_kv *kv = bld_arena_alloc(c->a, (n->nargs / 3) * sizeof(*kv));
	if (!kv)
		return oom(c);
	for (size_t i = 0; i < n->nargs / 3; i++) {
		if (n->args[i * 3][0] == '\0')
			return fail(c, "%s names can not be blank", c->kw);
		kv[i].key = n->args[i * 3];
		kv[i].value = n->args[i * 3 + 1];
	}
	in->u.kv.kvs = kv;
	in->u.kv.n = n->nargs / 3;
	return 0;
}

static int
build_arg(struct ctx *c, struct bld_instr *in)
{
	int r = parse_flags(c, NULL, 0, NULL);
	if (r < 0)
		return r;
	const struct bld_df_node *n = c->node;
	if (n->nargs == 0)
		return fail(c, "ARG requires at least one argument (ARG NAME[=DEFAULT])");
	struct bld_kv *kv = bld_arena_alloc(c->a, n->nargs * sizeof(*kv));
	if (!kv)
		return oom(c);
	for (size_t i = 0; i < n->nargs; i++) {
		const char *eq = strchr(n->args[i], '=');
		if (eq) {
			if (eq == n->args[i])
				return fail(c, "ARG names can not be blank ('%s')", n->args[i]);
			kv[i].key = bld_arena_strndup(c->a, n->args[i], (size_t)(eq - n->args[i]));
			kv[i].value = eq + 1;
			if (!kv[i].key)
				return oom(c);
		} else {
			kv[i].key = n->args[i];
		}
	}
	in->u.kv.kvs = kv;
	in->u.kv.n = n->nargs;
	return 0;
}

static int
build_copy(struct ctx *c, struct bld_instr *in, bool add)
{
	static const struct flag_def copy_defs[] = {{"from", FL_STRING},  {"chown", FL_STRING},
						    {"chmod", FL_STRING}, {"link", FL_BOOL},
						    {"parents", FL_BOOL}, {"exclude", FL_LIST}};
	static const struct flag_def add_defs[] = {
		{"chown", FL_STRING},	   {"chmod", FL_STRING},    {"link", FL_BOOL},
		{"keep-git-dir", FL_BOOL}, {"checksum", FL_STRING}, {"exclude", FL_LIST},
		{"parents", FL_BOOL}};
	const struct flag_def *defs = add ? add_defs : copy_defs;
	size_t ndefs = add ? ARRAY_SIZE(add_defs) : ARRAY_SIZE(copy_defs);
	struct flag_val v[8] = {0};
	struct bld_copy *cp = &in->u.copy;
	struct bld_strv srcs = {0};
	int r = parse_flags(c, defs, ndefs, v);
	if (r < 0)
		goto out;
	const struct bld_df_node *n = c->node;
	if (n->nargs < 2) {
		r = fail(c,
			 "%s requires at least two arguments, but only %zu %s provided: the "
			 "destination could not be determined",
			 c->kw, n->nargs, n->nargs == 1 ? "was" : "were");
		goto out;
	}
	for (size_t k = 0; k < ndefs; k++) {
		if (!v[k].set)
			continue;
		const char *nm = defs[k].name, *val = v[k].value;
		if (!strcmp(nm, "from"))
			cp->from = val;
		else if (!strcmp(nm, "chown"))
			cp->chown = val;
		else if (!strcmp(nm, "chmod"))
			cp->chmod = val;
		else if (!strcmp(nm, "checksum"))
			cp->checksum = val;
		else if (!strcmp(nm, "link"))
			cp->link = flag_true(&v[k]);
		else if (!strcmp(nm, "parents"))
			cp->parents = flag_true(&v[k]);
		else if (!strcmp(nm, "keep-git-dir"))
			cp->keep_git_dir = flag_true(&v[k]);
		else if (!strcmp(nm, "exclude")) {
			cp->excludes = arena_strv(c, v[k].list.v, v[k].list.n);
			cp->nexcludes = v[k].list.n;
			if (!cp->excludes) {
				r = oom(c);
				goto out;
			}
		}
	}
	if (cp->from && !cp->from[0]) {
		r = fail(c, "--from needs a stage name, index or image");
		goto out;
	}
	if (cp->chown && !cp->chown[0]) {
		r = fail(c, "--chown needs USER[:GROUP]");
		goto out;
	}
	/*
	 * A value with a variable is checked once expanded (the plan expands
	 * it, bld_copy_flags_validate() checks it), as BuildKit does; until
	 * then it is neither octal nor known to be valid.
	 */
	if (cp->chmod && !strchr(cp->chmod, '$')) {
		r = check_chmod(c, cp->chmod, &cp->chmod_octal, &cp->chmod_mode);
		if (r < 0)
			goto out;
	}
	if (cp->checksum) {
		const char *colon = strchr(cp->checksum, ':');
		size_t hex = colon ? strlen(colon + 1) : 0;
		bool ok = colon &&
			  ((!strncmp(cp->checksum, "sha256:", 7) && hex == 64) ||
			   (!strncmp(cp->checksum, "sha384:", 7) && hex == 96) ||
			   (!strncmp(cp->checksum, "sha512:", 7) && hex == 128)) &&
			  strspn(colon + 1, "0123456789abcdef") == hex;
		if (!ok) {
			r = fail(c, "invalid --checksum '%s': use sha256:<64 hex digits>",
				 cp->checksum);
			goto out;
		}
	}

	const char *dest = n->args[n->nargs - 1];
	struct bld_df_heredoc h;
	struct sc_err e = SC_ERR_INIT;
	r = bld_df_heredoc_parse(dest, &h, &e);
	if (r > 0) {
		free((char *)h.name);
		r = fail(c, "%s cannot use a heredoc as the destination ('%s')", c->kw, dest);
		goto out;
	}
	r = 0;
	struct bld_inline_source *inl = NULL;
	size_t ninl = 0;
	for (size_t i = 0; i + 1 < n->nargs; i++) {
		const char *src = n->args[i];
		sc_err_clear(&e);
		int hr = bld_df_heredoc_parse(src, &h, &e);
		if (hr > 0) {
			if (!inl) {
				inl = bld_arena_alloc(c->a, n->nargs * sizeof(*inl));
				if (!inl) {
					free((char *)h.name);
					r = oom(c);
					goto out;
				}
			}
			const char *data = "";
			for (size_t k = 0; k < n->nheredocs; k++)
				if (!strcmp(n->heredocs[k].name, h.name))
					data = n->heredocs[k].content;
			if (h.chomp) {
				/* Strip leading tabs from every line. */
				struct bld_str s = {0};
				bool bol = true;
				for (const char *p = data; *p; p++) {
					if (bol && *p == '\t')
						continue;
					bol = *p == '\n';
					bld_str_putc(&s, *p);
				}
				data = bld_arena_strndup(c->a, s.s ? s.s : "", s.len);
				bld_str_done(&s);
			}
			inl[ninl].name = bld_arena_strdup(c->a, h.name);
			inl[ninl].data = data;
			inl[ninl].expand = h.expand;
			free((char *)h.name);
			if (!inl[ninl].name || !data) {
				r = oom(c);
				goto out;
			}
			ninl++;
			continue;
		}
		if (!add && bld_source_is_url(src) && !bld_source_is_git(src)) {
			r = fail(c, "COPY cannot fetch URLs ('%s'); use ADD for remote sources",
				 src);
			goto out;
		}
		if (cp->checksum && !bld_source_is_url(src)) {
			r = fail(c, "--checksum needs an HTTP(S) or git source, not '%s'", src);
			goto out;
		}
		bld_strv_push(&srcs, src);
	}
	if (srcs.oom) {
		r = oom(c);
		goto out;
	}
	if (cp->keep_git_dir) {
		bool any_git = false;
		for (size_t i = 0; i < srcs.n; i++)
			any_git |= bld_source_is_git(srcs.v[i]);
		if (!any_git) {
			r = fail(c, "--keep-git-dir only applies to git sources");
			goto out;
		}
	}
	cp->srcs = arena_strv(c, srcs.v, srcs.n);
	cp->nsrcs = srcs.n;
	cp->inline_srcs = inl;
	cp->ninline = ninl;
	cp->dest = dest;
	if (srcs.n && !cp->srcs)
		r = oom(c);
out:
	bld_strv_done(&srcs);
	flags_done(v, ndefs);
	return r;
}

static int
build_health(struct ctx *c, struct bld_instr *in)
{
	static const struct flag_def defs[] = {{"interval", FL_STRING},
					       {"timeout", FL_STRING},
					       {"start-period", FL_STRING},
					       {"start-interval", FL_STRING},
					       {"retries", FL_STRING}};
	struct flag_val v[5] = {0};
	struct bld_healthcheck *h = &in->u.health;
	const struct bld_df_node *n = c->node;
	int r = 0;
	if (n->nargs == 0) {
		r = fail(c, "HEALTHCHECK requires at least one argument (NONE or CMD ...)");
		goto out;
	}
	r = parse_flags(c, defs, 5, v);
	if (r < 0)
		goto out;
	if (strcasecmp(n->args[0], "NONE") == 0) {
		if (n->nargs != 1) {
			r = fail(c, "HEALTHCHECK NONE takes no arguments");
			goto out;
		}
		h->none = true;
		goto out;
	}
	if (strcasecmp(n->args[0], "CMD") != 0) {
		r = fail(c, "unknown type '%s' in HEALTHCHECK (try CMD)", n->args[0]);
		goto out;
	}
	if (n->nargs < 2) {
		r = fail(c, "missing command after HEALTHCHECK CMD");
		goto out;
	}
	const char **t = bld_arena_alloc(c->a, n->nargs * sizeof(char *));
	if (!t) {
		r = oom(c);
		goto out;
	}
	t[0] = is_json(c) ? "CMD" : "CMD-SHELL";
	for (size_t i = 1; i < n->nargs; i++)
		t[i] = n->args[i];
	h->test = t;
	h->ntest = n->nargs;
	uint64_t *dst[4] = {&h->interval_ns, &h->timeout_ns, &h->start_period_ns,
			    &h->start_interval_ns};
	for (int k = 0; k < 4; k++) {
		if (!v[k].set || !v[k].value[0])
			continue;
		int64_t ns;
		if (bld_duration_parse(v[k].value, &ns) < 0) {
			r = fail(c, "invalid duration '%s' for --%s (use e.g. 30s, 1m30s)",
				 v[k].value, defs[k].name);
			goto out;
		}
		if (ns != 0 && ns < 1000000) {
			r = fail(c, "--%s '%s' cannot be less than 1ms", defs[k].name, v[k].value);
			goto out;
		}
		*dst[k] = (uint64_t)ns;
	}
	if (v[4].set && v[4].value[0]) {
		char *end;
		errno = 0;
		long long n2 = strtoll(v[4].value, &end, 10);
		if (*end || errno || n2 > 0x7FFFFFFF || n2 < -0x7FFFFFFF) {
			r = fail(c, "invalid --retries '%s': use a whole number", v[4].value);
			goto out;
		}
		if (n2 < 0) {
			r = fail(c, "--retries cannot be negative (%lld)", n2);
			goto out;
		}
		h->retries = (int)n2;
	}
out:
	flags_done(v, 5);
	return r;
}

static int
build_onbuild(struct ctx *c, struct bld_instr *in)
{
	int r = parse_flags(c, NULL, 0, NULL);
	if (r < 0)
		return r;
	const struct bld_df_node *sub = c->node->sub;
	if (!sub)
		return fail(c, "ONBUILD requires at least one argument (an instruction)");
	if (strcasecmp(sub->keyword, "ONBUILD") == 0)
		return fail(c, "chaining ONBUILD via 'ONBUILD ONBUILD' isn't allowed");
	if (strcasecmp(sub->keyword, "FROM") == 0 || strcasecmp(sub->keyword, "MAINTAINER") == 0)
		return fail(c, "%s isn't allowed as an ONBUILD trigger", sub->keyword);
	struct bld_instr *t = bld_arena_alloc(c->a, sizeof(*t));
	if (!t)
		return oom(c);
	struct ctx sc = *c;
	sc.node = sub;
	/* Line numbers of the trigger are those of the ONBUILD line. */
	struct bld_df_node *subc = bld_arena_alloc(c->a, sizeof(*subc));
	if (!subc)
		return oom(c);
	*subc = *sub;
	subc->start_line = c->node->start_line;
	subc->end_line = c->node->end_line;
	subc->heredocs = c->node->heredocs;
	subc->nheredocs = c->node->nheredocs;
	sc.node = subc;
	r = build(&sc, t);
	if (r < 0)
		return r;
	in->u.onbuild.trigger = t;
	in->u.onbuild.expression = sub->original;
	return 0;
}

static int
build(struct ctx *c, struct bld_instr *in)
{
	const struct bld_df_node *n = c->node;
	memset(in, 0, sizeof(*in));
	in->node = n;
	in->start_line = n->start_line;
	in->end_line = n->end_line;

	size_t bad;
	if (!bld_utf8_valid(n->original, strlen(n->original), &bad)) {
		if (n->start_line == n->end_line && n->nheredocs == 0)
			return sc_err_set(
				c->err, -EINVAL,
				"%s:%u:%zu: invalid UTF-8 (byte 0x%02x); save the file as "
				"UTF-8",
				c->df->filename, n->start_line, bad + 1,
				(unsigned char)n->original[bad]);
		return fail(c,
			    "invalid UTF-8 (byte 0x%02x at offset %zu of the instruction); save "
			    "the file as UTF-8",
			    (unsigned char)n->original[bad], bad);
	}
	for (size_t i = 0; i < n->nargs; i++)
		if (n->arg_lens && n->arg_lens[i] != strlen(n->args[i]))
			return fail(c, "argument %zu contains a NUL character", i + 1);

	enum bld_instr_kind k;
	if (bld_instr_kind_from_string(n->keyword, &k) < 0) {
		const char *s = bld_suggest(n->keyword, kind_names, BLD_INSTR_MAX);
		char kw[80];
		snprintf(kw, sizeof(kw), "%s", n->keyword);
		if (s)
			return fail(c, "unknown instruction: '%s' (did you mean %s?)", kw, s);
		return fail(c, "unknown instruction: '%s'", kw);
	}
	in->kind = k;
	c->kw = kind_names[k];
	int r;
	switch (k) {
	case BLD_INSTR_FROM:
		return build_from(c, in);
	case BLD_INSTR_RUN:
		return build_run(c, in);
	case BLD_INSTR_CMD:
	case BLD_INSTR_ENTRYPOINT:
		r = parse_flags(c, NULL, 0, NULL);
		if (r < 0)
			return r;
		return build_cmdline(c, &in->u.cmd, false);
	case BLD_INSTR_SHELL:
		r = parse_flags(c, NULL, 0, NULL);
		if (r < 0)
			return r;
		if (!is_json(c))
			return fail(c, "SHELL requires the arguments to be in JSON form "
				       "(SHELL [\"/bin/bash\", \"-c\"])");
		if (n->nargs == 0)
			return fail(c, "SHELL requires at least one argument");
		in->u.shell.argv = n->args;
		in->u.shell.argc = n->nargs;
		return 0;
	case BLD_INSTR_ENV:
	case BLD_INSTR_LABEL:
		return build_kv(c, in);
	case BLD_INSTR_ARG:
		return build_arg(c, in);
	case BLD_INSTR_MAINTAINER: {
		r = parse_flags(c, NULL, 0, NULL);
		if (r < 0)
			return r;
		r = need_args(c, 1, 1);
		if (r < 0)
			return r;
		struct bld_kv *kv = bld_arena_alloc(c->a, sizeof(*kv));
		if (!kv)
			return oom(c);
		kv->key = "maintainer";
		kv->value = n->args[0];
		in->u.kv.kvs = kv;
		in->u.kv.n = 1;
		return 0;
	}
	case BLD_INSTR_EXPOSE:
	case BLD_INSTR_VOLUME:
		r = parse_flags(c, NULL, 0, NULL);
		if (r < 0)
			return r;
		r = need_args(c, 1, SIZE_MAX);
		if (r < 0)
			return r;
		if (k == BLD_INSTR_VOLUME)
			for (size_t i = 0; i < n->nargs; i++)
				if (bld_trim_right_len(n->args[i], strlen(n->args[i])) == 0)
					return fail(c,
						    "VOLUME specified can not be an empty string");
		in->u.words.v = n->args;
		in->u.words.n = n->nargs;
		return 0;
	case BLD_INSTR_USER:
	case BLD_INSTR_WORKDIR:
	case BLD_INSTR_STOPSIGNAL:
		r = parse_flags(c, NULL, 0, NULL);
		if (r < 0)
			return r;
		r = need_args(c, 1, 1);
		if (r < 0)
			return r;
		in->u.str = n->args[0];
		return 0;
	case BLD_INSTR_COPY:
		return build_copy(c, in, false);
	case BLD_INSTR_ADD:
		return build_copy(c, in, true);
	case BLD_INSTR_HEALTHCHECK:
		return build_health(c, in);
	case BLD_INSTR_ONBUILD:
		return build_onbuild(c, in);
	case BLD_INSTR_MAX:
		break;
	}
	return fail(c, "internal error");
}

int
bld_instr_build(const struct bld_dockerfile *df, const struct bld_df_node *node,
		struct bld_instr *ret, struct sc_err *err)
{
	struct ctx c = {.df = df, .a = df->arena, .node = node, .kw = node->keyword, .err = err};
	return build(&c, ret);
}

int
bld_dockerfile_instructions(const struct bld_dockerfile *df, const struct bld_instr **ret,
			    size_t *ret_n, struct sc_err *err)
{
	struct bld_instr *v = bld_arena_alloc(df->arena, df->nnodes * sizeof(*v));
	if (!v)
		return sc_err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < df->nnodes; i++) {
		int r = bld_instr_build(df, &df->nodes[i], &v[i], err);
		if (r < 0)
			return r;
	}
	*ret = v;
	*ret_n = df->nnodes;
	return 0;
}
