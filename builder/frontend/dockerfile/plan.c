/*
 * Typed instructions -> stages, scopes and the stage graph (see plan.h).
 *
 * Passes, in order:
 *  1. global ARGs and the FROM lines, expanded in the global scope;
 *  2. stage names (no duplicates) and FROM bases resolved to stages;
 *  3. stages walked so that a base comes before the stages built on it
 *     (a cycle through FROM is an error), expanding every step with the
 *     scope at that point and resolving --from / from= references;
 *  4. depth-first search from the target: reachable set, build order, and
 *     cycles through COPY --from or mounts.
 */
#include "plan.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>

#include "cleanup.h"
#include "internal.h"
#include "shell.h"

struct words_out {
	struct bld_strv v;
};

struct pctx {
	const struct bld_dockerfile *df;
	struct bld_plan *plan;
	struct bld_arena *a;
	const struct bld_plan_opts *opts;
	struct sc_err *err;
	char escape;
	struct bld_str scratch;	 /* expand()'s result before it is copied to the arena */
	struct words_out words;	 /* process_step()'s words before they are copied to the arena */
	struct bld_env platform; /* automatic platform ARGs */
	struct bld_env global;	 /* global ARGs with values */
	struct bld_env declared; /* global ARGs by name, value or "\x01unset" */
	struct bld_kv proxy_env[10]; /* what the proxy build arguments add to every RUN */
	size_t nproxy_env;
	/* per stage (indexed by stage) */
	struct bld_env *envs; /* ENV only: the image's environment */
	struct bld_env *vars; /* ENV and ARGs with values, the later of one name winning */
	struct kvl *vars_kv;  /* same content as vars, arena strings, for snapshots */
	const char **workdirs;
	const char **users;
	struct {
		unsigned to, line;
	} * *edges;
	size_t *nedges;
};

static const char UNSET[] = "\x01unset";

/*
 * Variables as arena key/value pairs; a RUN step's environment is a copy of
 * the pointers. A stage's list holds the same names as its struct bld_env,
 * at the same positions, so the env's index finds them in both.
 */
struct kvl {
	struct bld_kv *v;
	size_t n, cap;
	const struct bld_kv *snap; /* last snapshot, valid while !dirty */
	size_t nsnap;
	bool dirty;
};

/* Sets the variable at pos, which is either an existing one or the next. */
static int
kvl_set_at(struct bld_arena *a, struct kvl *l, size_t pos, const char *k, const char *v)
{
	assert(pos <= l->n);
	const char *vv = bld_arena_strdup(a, v);
	if (!vv)
		return -ENOMEM;
	l->dirty = true;
	if (pos < l->n) {
		l->v[pos].value = vv;
		return 0;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		void *p = realloc(l->v, cap * sizeof(*l->v));
		if (!p)
			return -ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n].key = bld_arena_strdup(a, k);
	l->v[l->n].value = vv;
	if (!l->v[l->n].key)
		return -ENOMEM;
	l->n++;
	return 0;
}

/* A variable of a stage: its struct bld_env for lookups, its kvl for snapshots. */
static int
stage_var_set(struct pctx *c, unsigned stage, const char *k, const char *v)
{
	int r = bld_env_set(&c->vars[stage], k, v);
	if (r < 0)
		return r;
	int pos = bld_env_find(&c->vars[stage], k);
	assert(pos >= 0);
	return kvl_set_at(c->a, &c->vars_kv[stage], (size_t)pos, k, v);
}

static int pfail(struct pctx *c, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
pfail(struct pctx *c, unsigned line, const char *fmt, ...)
{
	char msg[SC_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return sc_err_set(c->err, -EINVAL, "%s:%u: %s", c->df->filename, line, msg);
}

static const char *
build_arg(const struct pctx *c, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = c->opts->nbuild_args; i-- > 0;) {
		const char *ba = c->opts->build_args[i];
		if (strncmp(ba, name, n) == 0 && ba[n] == '=')
			return ba + n + 1;
	}
	return NULL;
}

/* Expands word with vars into the plan arena; NULL with err set on failure. */
static const char *
expand(struct pctx *c, const struct bld_env *vars, const char *word, unsigned line)
{
	struct bld_shell sh = {
		.escape = c->escape, .lookup = bld_env_lookup, .userdata = (void *)vars};
	/* Cleared rather than SC_ERR_INIT: zeroing all of msg would cost more than most words. */
	struct sc_err e;
	sc_err_clear(&e);
	int r = bld_shell_expand(&sh, word, &c->scratch, &e);
	if (r < 0) {
		pfail(c, line, "%s", sc_err_msg(&e));
		return NULL;
	}
	const char *res = bld_arena_strndup(c->a, c->scratch.s ? c->scratch.s : "", c->scratch.len);
	if (!res)
		sc_err_set(c->err, -ENOMEM, "out of memory");
	return res;
}

static const char *
host_platform(char *buf, size_t len)
{
	struct utsname u;
	const char *arch = "amd64", *variant = NULL;
	if (uname(&u) == 0) {
		const char *m = u.machine;
		if (!strcmp(m, "aarch64") || !strcmp(m, "arm64"))
			arch = "arm64";
		else if (!strncmp(m, "armv7", 5)) {
			arch = "arm";
			variant = "v7";
		} else if (!strncmp(m, "armv6", 5)) {
			arch = "arm";
			variant = "v6";
		} else if (!strcmp(m, "i686") || !strcmp(m, "i386"))
			arch = "386";
		else if (!strcmp(m, "ppc64le") || !strcmp(m, "s390x") || !strcmp(m, "riscv64"))
			arch = m;
	}
	snprintf(buf, len, "linux/%s%s%s", arch, variant ? "/" : "", variant ? variant : "");
	return buf;
}

static int
set_platform(struct pctx *c, const char *prefix, const char *plat)
{
	char os[64] = "", arch[64] = "", variant[64] = "";
	const char *s1 = strchr(plat, '/');
	if (!s1 || s1 == plat || strlen(plat) > 150)
		return sc_err_set(c->err, -EINVAL,
				  "invalid platform '%s': use OS/ARCH[/VARIANT] (linux/amd64)",
				  plat);
	snprintf(os, sizeof(os), "%.*s", (int)(s1 - plat), plat);
	const char *s2 = strchr(s1 + 1, '/');
	snprintf(arch, sizeof(arch), "%.*s", (int)(s2 ? s2 - s1 - 1 : (long)strlen(s1 + 1)),
		 s1 + 1);
	if (s2)
		snprintf(variant, sizeof(variant), "%s", s2 + 1);
	if (!arch[0])
		return sc_err_set(c->err, -EINVAL, "invalid platform '%s': missing architecture",
				  plat);
	char name[64];
	const char *vals[4] = {plat, os, arch, variant};
	const char *suffix[4] = {"PLATFORM", "OS", "ARCH", "VARIANT"};
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "%s%s", prefix, suffix[i]);
		if (bld_env_set(&c->platform, name, vals[i]) < 0)
			return -ENOMEM;
	}
	return 0;
}

/*
 * The proxy build arguments, as BuildKit passes them to every RUN: a build
 * argument named like one of them in any case, with a non-empty value, sets
 * both spellings. Its executor appends them after the ENV and ARG values and
 * the runtime keeps the last value of a name, so they win over those.
 */
static int
proxy_env_init(struct pctx *c)
{
	static const char *const names[][2] = {{"HTTP_PROXY", "http_proxy"},
					       {"HTTPS_PROXY", "https_proxy"},
					       {"FTP_PROXY", "ftp_proxy"},
					       {"NO_PROXY", "no_proxy"},
					       {"ALL_PROXY", "all_proxy"}};
	static_assert(2 * ARRAY_SIZE(names) == ARRAY_SIZE(c->proxy_env), "one slot per name");
	for (size_t k = 0; k < ARRAY_SIZE(names); k++) {
		size_t n = strlen(names[k][0]);
		const char *given = NULL;
		for (size_t i = 0; i < c->opts->nbuild_args; i++) {
			const char *ba = c->opts->build_args[i];
			if (strncasecmp(ba, names[k][0], n) != 0 || ba[n] != '=')
				continue;
			/* Two spellings: the later in byte order wins; one twice: the last. */
			if (!given || strncmp(ba, given, n) >= 0)
				given = ba;
		}
		if (!given || !given[n + 1])
			continue;
		const char *v = bld_arena_strdup(c->a, given + n + 1);
		if (!v)
			return -ENOMEM;
		c->proxy_env[c->nproxy_env++] = (struct bld_kv){names[k][0], v};
		c->proxy_env[c->nproxy_env++] = (struct bld_kv){names[k][1], v};
	}
	return 0;
}

static bool
is_proxy_env(const struct pctx *c, const char *name)
{
	for (size_t i = 0; i < c->nproxy_env; i++)
		if (strcmp(c->proxy_env[i].key, name) == 0)
			return true;
	return false;
}

static int
add_edge(struct pctx *c, unsigned from, unsigned to, unsigned line)
{
	size_t n = c->nedges[from];
	void *p = realloc(c->edges[from], (n + 1) * sizeof(c->edges[from][0]));
	if (!p)
		return -ENOMEM;
	c->edges[from] = p;
	c->edges[from][n].to = to;
	c->edges[from][n].line = line;
	c->nedges[from] = n + 1;
	return 0;
}

/* A --from / from= value: a stage by name or index, else an image. Returns stage or -1. */
static int
resolve_from(struct pctx *c, const char *from, unsigned stage, unsigned line, int *ret)
{
	*ret = -1;
	const struct bld_stage *st = bld_plan_stage_by_name(c->plan, from);
	if (st) {
		*ret = (int)st->index;
	} else if (from[0] && strspn(from, "0123456789") == strlen(from)) {
		unsigned long idx = strtoul(from, NULL, 10);
		if (strlen(from) > 6 || idx >= c->plan->nstages)
			return pfail(
				c, line,
				"--from=%s: there is no stage %s (stages are numbered 0 to %zu)",
				from, from, c->plan->nstages - 1);
		*ret = (int)idx;
	} else {
		return 0;
	}
	return add_edge(c, stage, (unsigned)*ret, line) < 0 ? -ENOMEM : 0;
}

static char *
mount_expand(void *userdata, const char *value, struct sc_err *err)
{
	void **ud = userdata;
	struct pctx *c = ud[0];
	const struct bld_env *vars = ud[1];
	struct bld_shell sh = {
		.escape = c->escape, .lookup = bld_env_lookup, .userdata = (void *)vars};
	char *out = NULL;
	if (bld_shell_word(&sh, value, &out, err) < 0)
		return NULL;
	return out;
}

static const char *
path_join_clean(struct pctx *c, const char *base, const char *p)
{
	/* path.Join(base, p) when p is relative, then cleaned; always absolute. */
	struct bld_str in = {0}, out = {0};
	if (p[0] != '/') {
		bld_str_puts(&in, base);
		bld_str_putc(&in, '/');
	}
	bld_str_puts(&in, p);
	const char *s = in.s ? in.s : "/";
	size_t *stack = NULL, depth = 0;
	stack = malloc((strlen(s) + 1) * sizeof(size_t));
	bld_str_putc(&out, '/');
	while (stack && *s) {
		while (*s == '/')
			s++;
		if (!*s)
			break;
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		if (n == 1 && s[0] == '.') {
		} else if (n == 2 && s[0] == '.' && s[1] == '.') {
			if (depth > 0) {
				out.len = stack[--depth];
				out.s[out.len] = '\0';
			}
		} else {
			stack[depth++] = out.len;
			if (out.len > 1)
				bld_str_putc(&out, '/');
			bld_str_putn(&out, s, n);
		}
		s += n;
	}
	const char *res = (stack && !out.oom) ? bld_arena_strdup(c->a, out.s) : NULL;
	free(stack);
	bld_str_done(&in);
	bld_str_done(&out);
	return res;
}

static bool
valid_port_spec(const char *p)
{
	/* [ip:][host:]port[-port][/proto]: the container part is what counts. */
	const char *colon = strrchr(p, ':');
	if (colon)
		p = colon + 1;
	const char *slash = strchr(p, '/');
	if (slash) {
		const char *proto = slash + 1;
		if (strcasecmp(proto, "tcp") && strcasecmp(proto, "udp") &&
		    strcasecmp(proto, "sctp"))
			return false;
	}
	size_t n = slash ? (size_t)(slash - p) : strlen(p);
	char buf[32];
	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, p, n);
	buf[n] = '\0';
	char *dash = strchr(buf, '-');
	if (dash)
		*dash = '\0';
	const char *parts[2] = {buf, dash ? dash + 1 : NULL};
	unsigned long v[2] = {0, 0};
	for (int i = 0; i < 2 && parts[i]; i++) {
		if (!parts[i][0] || strspn(parts[i], "0123456789") != strlen(parts[i]) ||
		    strlen(parts[i]) > 5)
			return false;
		v[i] = strtoul(parts[i], NULL, 10);
		if (v[i] > 65535)
			return false;
	}
	return !dash || v[0] <= v[1];
}

static bool
valid_signal(const char *s)
{
	static const char *const names[] = {
		"HUP",	"INT",	 "QUIT", "ILL",	 "TRAP", "ABRT", "IOT",	  "BUS",    "FPE",
		"KILL", "USR1",	 "SEGV", "USR2", "PIPE", "ALRM", "TERM",  "STKFLT", "CHLD",
		"CONT", "STOP",	 "TSTP", "TTIN", "TTOU", "URG",	 "XCPU",  "XFSZ",   "VTALRM",
		"PROF", "WINCH", "IO",	 "POLL", "PWR",	 "SYS",	 "RTMIN", "RTMAX"};
	if (s[0] && strspn(s, "0123456789") == strlen(s))
		return strlen(s) <= 2 && atoi(s) >= 1 && atoi(s) <= 64;
	const char *n = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcasecmp(n, names[i]) == 0)
			return true;
	/* RTMIN+N / RTMAX-N */
	return (strncasecmp(n, "RTMIN+", 6) == 0 || strncasecmp(n, "RTMAX-", 6) == 0) && n[6];
}

static int
push(struct pctx *c, struct words_out *w, const char *s)
{
	if (!s)
		return c->err && c->err->code ? c->err->code : -ENOMEM;
	bld_strv_push(&w->v, s);
	return w->v.oom ? sc_err_set(c->err, -ENOMEM, "out of memory") : 0;
}

/* ARGs BuildKit keeps out of the environment: they only configure the build. */
static bool
is_non_env_arg(const char *name)
{
	return strcmp(name, "BUILDKIT_SBOM_SCAN_CONTEXT") == 0 ||
	       strcmp(name, "BUILDKIT_SBOM_SCAN_STAGE") == 0;
}

static int
process_step(struct pctx *c, struct bld_stage *st, struct bld_step *step)
{
	const struct bld_instr *in = step->instr;
	const struct bld_env *vars = &c->vars[st->index];
	unsigned line = in->start_line;
	struct words_out *w = &c->words;
	int r = 0;
	step->from_stage = -1;
	w->v.n = 0;

	switch (in->kind) {
	case BLD_INSTR_ARG:
		for (size_t i = 0; i < in->u.kv.n && r >= 0; i++) {
			const struct bld_kv *kv = &in->u.kv.kvs[i];
			const char *v = build_arg(c, kv->key);
			if (!v && kv->value)
				v = expand(c, vars, kv->value, line);
			else if (!v) {
				const char *g = bld_env_get(&c->declared, kv->key);
				if (g && strcmp(g, UNSET) != 0)
					v = g;
				else
					v = bld_env_get(&c->platform, kv->key);
			}
			if (!v && kv->value) {
				r = c->err->code ? c->err->code : -ENOMEM;
				break;
			}
			if (v) {
				/* Like ENV, so a later ENV or ARG of the name replaces it. */
				if (!is_non_env_arg(kv->key))
					r = stage_var_set(c, st->index, kv->key, v);
				if (r < 0)
					r = sc_err_set(c->err, r, "out of memory");
				else
					r = push(c, w, bld_arena_printf(c->a, "%s=%s", kv->key, v));
			} else {
				r = push(c, w, kv->key);
			}
		}
		break;
	case BLD_INSTR_ENV:
	case BLD_INSTR_LABEL:
		for (size_t i = 0; i < in->u.kv.n && r >= 0; i++) {
			const char *k = expand(c, vars, in->u.kv.kvs[i].key, line);
			const char *v = k ? expand(c, vars, in->u.kv.kvs[i].value, line) : NULL;
			if (!k || !v) {
				r = c->err->code ? c->err->code : -ENOMEM;
				break;
			}
			if (!k[0]) {
				r = pfail(c, line, "%s name '%s' expands to nothing",
					  bld_instr_kind_to_string(in->kind), in->u.kv.kvs[i].key);
				break;
			}
			r = push(c, w, k);
			if (r >= 0)
				r = push(c, w, v);
			if (r >= 0 && in->kind == BLD_INSTR_ENV) {
				r = bld_env_set(&c->envs[st->index], k, v);
				if (r >= 0)
					r = stage_var_set(c, st->index, k, v);
				if (r < 0)
					r = sc_err_set(c->err, r, "out of memory");
			}
		}
		break;
	case BLD_INSTR_MAINTAINER:
		r = push(c, w, "maintainer");
		if (r >= 0)
			r = push(c, w, in->u.kv.kvs[0].value);
		break;
	case BLD_INSTR_COPY:
	case BLD_INSTR_ADD: {
		const struct bld_copy *cp = &in->u.copy;
		for (size_t i = 0; i < cp->nsrcs && r >= 0; i++)
			r = push(c, w, expand(c, vars, cp->srcs[i], line));
		if (r >= 0)
			r = push(c, w, expand(c, vars, cp->dest, line));
		if (r >= 0 && cp->chown && !(step->chown = expand(c, vars, cp->chown, line)))
			r = c->err->code;
		if (r >= 0 && cp->chmod && !(step->chmod = expand(c, vars, cp->chmod, line)))
			r = c->err->code;
		if (r >= 0 && cp->from) {
			step->from = expand(c, vars, cp->from, line);
			if (!step->from)
				r = c->err->code;
			else if (!step->from[0])
				r = pfail(c, line, "--from='%s' expands to nothing", cp->from);
			else
				r = resolve_from(c, step->from, st->index, line, &step->from_stage);
		}
		break;
	}
	case BLD_INSTR_WORKDIR: {
		const char *v = expand(c, vars, in->u.str, line);
		if (!v) {
			r = c->err->code;
			break;
		}
		if (!v[0]) {
			r = pfail(c, line, "WORKDIR '%s' expands to nothing", in->u.str);
			break;
		}
		const char *abs = path_join_clean(c, c->workdirs[st->index], v);
		if (!abs) {
			r = sc_err_set(c->err, -ENOMEM, "out of memory");
			break;
		}
		c->workdirs[st->index] = abs;
		r = push(c, w, abs);
		break;
	}
	case BLD_INSTR_USER:
	case BLD_INSTR_STOPSIGNAL: {
		const char *v = expand(c, vars, in->u.str, line);
		if (!v) {
			r = c->err->code;
			break;
		}
		if (in->kind == BLD_INSTR_STOPSIGNAL && !valid_signal(v)) {
			r = pfail(c, line,
				  "invalid STOPSIGNAL '%s': use a signal name (SIGTERM) or "
				  "number",
				  v);
			break;
		}
		if (in->kind == BLD_INSTR_USER) {
			if (!v[0]) {
				r = pfail(c, line, "USER '%s' expands to nothing", in->u.str);
				break;
			}
			c->users[st->index] = v;
		}
		r = push(c, w, v);
		break;
	}
	case BLD_INSTR_EXPOSE:
		for (size_t i = 0; i < in->u.words.n && r >= 0; i++) {
			struct bld_shell sh = {.escape = c->escape,
					       .lookup = bld_env_lookup,
					       .userdata = (void *)vars};
			struct bld_shell_result res = {0};
			struct sc_err e = SC_ERR_INIT;
			r = bld_shell_process(&sh, in->u.words.v[i], &res, &e);
			if (r < 0) {
				r = pfail(c, line, "%s", sc_err_msg(&e));
				break;
			}
			for (size_t k = 0; k < res.nwords && r >= 0; k++) {
				if (!valid_port_spec(res.words[k])) {
					r = pfail(c, line,
						  "invalid port '%s' in EXPOSE: use "
						  "PORT[-PORT][/tcp|udp|"
						  "sctp]",
						  res.words[k]);
					break;
				}
				const char *p = res.words[k];
				bool has_proto = strchr(p, '/') != NULL;
				r = push(
					c, w,
					bld_arena_printf(c->a, "%s%s", p, has_proto ? "" : "/tcp"));
			}
			bld_shell_result_free(&res);
		}
		break;
	case BLD_INSTR_VOLUME:
		for (size_t i = 0; i < in->u.words.n && r >= 0; i++) {
			const char *v = expand(c, vars, in->u.words.v[i], line);
			r = push(c, w, v);
			if (r >= 0 && !v[0])
				r = pfail(c, line, "VOLUME '%s' expands to nothing",
					  in->u.words.v[i]);
		}
		break;
	case BLD_INSTR_RUN: {
		size_t nm = in->u.run.nmounts;
		if (nm) {
			struct bld_mount *m = bld_arena_alloc(c->a, nm * sizeof(*m));
			if (!m) {
				r = sc_err_set(c->err, -ENOMEM, "out of memory");
				break;
			}
			void *ud[2] = {c, (void *)vars};
			unsigned nssh = 0;
			for (size_t i = 0; i < nm && r >= 0; i++) {
				struct sc_err e = SC_ERR_INIT;
				const char *spec = NULL;
				/* Find the i-th --mount flag text again to expand it. */
				size_t seen = 0;
				for (size_t f = 0; f < in->node->nflags; f++)
					if (!strncmp(in->node->flags[f], "--mount=", 8) &&
					    seen++ == i)
						spec = in->node->flags[f] + 8;
				r = bld_mount_parse(c->df, spec ? spec : "", mount_expand, ud,
						    &m[i], &e);
				if (r < 0) {
					r = pfail(c, line, "--mount: %s", sc_err_msg(&e));
					break;
				}
				if (m[i].type == BLD_MOUNT_SSH &&
				    !strcmp(m[i].target, "/run/buildkit/ssh_agent.0"))
					m[i].target = bld_arena_printf(
						c->a, "/run/buildkit/ssh_agent.%u", nssh);
				if (m[i].type == BLD_MOUNT_SSH)
					nssh++;
				if (m[i].from) {
					int fs;
					r = resolve_from(c, m[i].from, st->index, line, &fs);
					if (step->from_stage < 0)
						step->from_stage = fs;
				}
			}
			step->mounts = m;
			step->nmounts = nm;
		}
		if (r < 0)
			break;
		/* Consecutive RUNs with no ENV or ARG between them share one list. */
		struct kvl *vk = &c->vars_kv[st->index];
		if (vk->dirty || !vk->snap) {
			size_t max = vk->n + c->nproxy_env;
			struct bld_kv *snap =
				bld_arena_alloc(c->a, (max ? max : 1) * sizeof(*snap));
			if (!snap) {
				r = sc_err_set(c->err, -ENOMEM, "out of memory");
				break;
			}
			size_t ns = 0;
			for (size_t i = 0; i < vk->n; i++)
				if (!c->nproxy_env || !is_proxy_env(c, vk->v[i].key))
					snap[ns++] = vk->v[i];
			for (size_t i = 0; i < c->nproxy_env; i++)
				snap[ns++] = c->proxy_env[i];
			vk->snap = snap;
			vk->nsnap = ns;
			vk->dirty = false;
		}
		step->run_env = vk->snap;
		step->nrun_env = vk->nsnap;
		if (r >= 0) {
			step->words = in->node->args;
			step->nwords = in->node->nargs;
		}
		break;
	}
	default:
		step->words = in->node->args;
		step->nwords = in->node->nargs;
		break;
	}
	if (r >= 0 && w->v.n) {
		const char **v = bld_arena_memdup(c->a, w->v.v, w->v.n * sizeof(char *));
		if (!v)
			r = sc_err_set(c->err, -ENOMEM, "out of memory");
		else {
			step->words = v;
			step->nwords = w->v.n;
		}
	}
	step->workdir = c->workdirs[st->index];
	step->user = c->users[st->index];
	return r;
}

const struct bld_stage *
bld_plan_stage_by_name(const struct bld_plan *plan, const char *name)
{
	for (size_t i = 0; i < plan->nstages; i++)
		if (plan->stages[i].name && strcasecmp(plan->stages[i].name, name) == 0)
			return &plan->stages[i];
	return NULL;
}

static int
process_stage(struct pctx *c, unsigned idx)
{
	struct bld_stage *st = &c->plan->stages[idx];
	int r = 0;
	if (st->base_stage < 0 && strcmp(st->base, "scratch") != 0 && c->opts->base_config) {
		/* An image: its ENV is in scope and its WorkingDir and User are where steps start.
		 */
		const struct bld_kv *env = NULL;
		size_t nenv = 0;
		const char *wd = NULL, *user = NULL;
		r = c->opts->base_config(c->opts->userdata, st->base, &env, &nenv, &wd, &user,
					 c->err);
		if (r < 0)
			return r;
		for (size_t i = 0; r >= 0 && i < nenv; i++) {
			const char *k = bld_arena_strdup(c->a, env[i].key);
			const char *v = bld_arena_strdup(c->a, env[i].value ? env[i].value : "");
			r = k && v ? bld_env_set(&c->envs[idx], k, v) : -ENOMEM;
			if (r >= 0)
				r = stage_var_set(c, idx, k, v);
		}
		if (r >= 0 && wd && wd[0] == '/' &&
		    !(c->workdirs[idx] = bld_arena_strdup(c->a, wd)))
			r = -ENOMEM;
		if (r >= 0 && user && user[0] && !(c->users[idx] = bld_arena_strdup(c->a, user)))
			r = -ENOMEM;
		if (r < 0)
			return sc_err_set(c->err, r, "out of memory");
	} else if (st->base_stage >= 0) {
		/* BuildKit starts from the base stage's state: its ENV and its ARGs. */
		unsigned b = (unsigned)st->base_stage;
		r = bld_env_copy(&c->envs[idx], &c->envs[b]);
		for (size_t i = 0; r >= 0 && i < c->vars_kv[b].n; i++)
			r = stage_var_set(c, idx, c->vars_kv[b].v[i].key, c->vars_kv[b].v[i].value);
		c->workdirs[idx] = c->workdirs[b];
		c->users[idx] = c->users[b];
		if (r < 0)
			return sc_err_set(c->err, r, "out of memory");
	}
	for (size_t i = 0; i < st->nsteps && r >= 0; i++)
		r = process_step(c, st, &st->steps[i]);
	if (r < 0)
		return r;
	struct bld_env *env = &c->envs[idx];
	if (env->n) {
		struct bld_kv *kv = bld_arena_alloc(c->a, env->n * sizeof(*kv));
		if (!kv)
			return sc_err_set(c->err, -ENOMEM, "out of memory");
		for (size_t i = 0; i < env->n; i++) {
			kv[i].key = bld_arena_strdup(c->a, env->names[i]);
			kv[i].value = bld_arena_strdup(c->a, env->values[i]);
			if (!kv[i].key || !kv[i].value)
				return sc_err_set(c->err, -ENOMEM, "out of memory");
		}
		st->env = kv;
		st->nenv = env->n;
	}
	return 0;
}

/* Visits stages depth-first along FROM bases; state: 0 new, 1 on stack, 2 done. */
static int
visit_base(struct pctx *c, unsigned idx, unsigned char *state)
{
	if (state[idx] == 2)
		return 0;
	struct bld_stage *st = &c->plan->stages[idx];
	if (state[idx] == 1)
		return pfail(c, st->from->start_line,
			     "circular dependency detected on stage '%s' (FROM %s)",
			     st->name ? st->name : "?", st->base);
	state[idx] = 1;
	if (st->base_stage >= 0) {
		int r = visit_base(c, (unsigned)st->base_stage, state);
		if (r < 0)
			return r;
	}
	state[idx] = 2;
	return process_stage(c, idx);
}

static int
visit_deps(struct pctx *c, unsigned idx, unsigned char *state, unsigned *order, size_t *norder)
{
	if (state[idx] == 2)
		return 0;
	struct bld_stage *st = &c->plan->stages[idx];
	state[idx] = 1;
	st->reachable = true;
	for (size_t i = 0; i < c->nedges[idx]; i++) {
		unsigned to = c->edges[idx][i].to;
		if (state[to] == 1) {
			const struct bld_stage *t = &c->plan->stages[to];
			char tn[32];
			snprintf(tn, sizeof(tn), "%u", to);
			return pfail(c, c->edges[idx][i].line,
				     "circular dependency detected on stage '%s': it is needed by "
				     "stage '%s', which it needs",
				     t->name ? t->name : tn, st->name ? st->name : "(unnamed)");
		}
		int r = visit_deps(c, to, state, order, norder);
		if (r < 0)
			return r;
	}
	state[idx] = 2;
	order[(*norder)++] = idx;
	return 0;
}

static int
plan_build(struct pctx *c, const struct bld_instr *ins, size_t n)
{
	struct bld_plan *plan = c->plan;
	int r;
	char hb[64];
	const char *bp =
		c->opts->build_platform ? c->opts->build_platform : host_platform(hb, sizeof(hb));
	const char *tp = c->opts->target_platform ? c->opts->target_platform : bp;
	if ((r = set_platform(c, "BUILD", bp)) < 0 || (r = set_platform(c, "TARGET", tp)) < 0)
		return r == -ENOMEM ? sc_err_set(c->err, r, "out of memory") : r;
	if ((r = bld_env_copy(&c->global, &c->platform)) < 0 || (r = proxy_env_init(c)) < 0)
		return sc_err_set(c->err, r, "out of memory");

	/* Count stages; global ARGs. */
	size_t nstages = 0, nmeta = 0;
	for (size_t i = 0; i < n; i++) {
		if (ins[i].kind == BLD_INSTR_FROM)
			nstages++;
		else if (nstages == 0 && ins[i].kind == BLD_INSTR_ARG)
			nmeta += ins[i].u.kv.n;
		else if (nstages == 0)
			return pfail(c, ins[i].start_line,
				     "%s before the first FROM: only ARG may come before FROM",
				     bld_instr_kind_to_string(ins[i].kind));
	}
	if (nstages == 0)
		return sc_err_set(c->err, -EINVAL,
				  "%s: no FROM instruction; a Dockerfile needs at least one stage",
				  c->df->filename);
	if (nstages > BLD_PLAN_MAX_STAGES)
		return sc_err_set(c->err, -E2BIG, "%s: more than %u stages", c->df->filename,
				  BLD_PLAN_MAX_STAGES);
	plan->stages = bld_arena_alloc(c->a, nstages * sizeof(struct bld_stage));
	struct bld_kv *meta = bld_arena_alloc(c->a, (nmeta ? nmeta : 1) * sizeof(*meta));
	c->envs = calloc(nstages, sizeof(struct bld_env));
	c->vars = calloc(nstages, sizeof(struct bld_env));
	c->vars_kv = calloc(nstages, sizeof(struct kvl));
	c->workdirs = calloc(nstages, sizeof(char *));
	c->users = calloc(nstages, sizeof(char *));
	c->edges = calloc(nstages, sizeof(*c->edges));
	c->nedges = calloc(nstages, sizeof(size_t));
	if (!plan->stages || !meta || !c->envs || !c->vars || !c->vars_kv || !c->workdirs ||
	    !c->users || !c->edges || !c->nedges)
		return sc_err_set(c->err, -ENOMEM, "out of memory");
	plan->nstages = nstages;

	/* Pass 1: global ARGs, then each FROM expanded in the global scope. */
	const struct bld_env *gs = &c->global;
	size_t si = 0, mi = 0;
	for (size_t i = 0; i < n; i++) {
		const struct bld_instr *in = &ins[i];
		if (in->kind == BLD_INSTR_ARG && si == 0) {
			for (size_t k = 0; k < in->u.kv.n; k++) {
				const struct bld_kv *kv = &in->u.kv.kvs[k];
				const char *v = build_arg(c, kv->key);
				if (!v && kv->value &&
				    !(v = expand(c, gs, kv->value, in->start_line)))
					return c->err->code;
				if (v && (r = bld_env_set(&c->global, kv->key, v)) < 0)
					return sc_err_set(c->err, r, "out of memory");
				if ((r = bld_env_set(&c->declared, kv->key, v ? v : UNSET)) < 0)
					return sc_err_set(c->err, r, "out of memory");
				meta[mi].key = kv->key;
				meta[mi].value = v ? bld_arena_strdup(c->a, v) : NULL;
				mi++;
			}
			continue;
		}
		if (in->kind != BLD_INSTR_FROM) {
			plan->stages[si - 1].nsteps++;
			continue;
		}
		struct bld_stage *st = &plan->stages[si];
		st->index = (unsigned)si++;
		st->from = in;
		st->name = in->u.from.name;
		st->base_stage = -1;
		st->base = expand(c, gs, in->u.from.image, in->start_line);
		if (!st->base)
			return c->err->code;
		if (!st->base[0])
			return pfail(c, in->start_line, "base name (%s) should not be blank",
				     in->u.from.image);
		if (in->u.from.platform &&
		    !(st->platform = expand(c, gs, in->u.from.platform, in->start_line)))
			return c->err->code;
		c->workdirs[st->index] = "/";
	}
	plan->meta_args = meta;
	plan->nmeta_args = mi;

	/* Pass 2: names, bases, steps. */
	for (size_t i = 0; i < nstages; i++) {
		struct bld_stage *st = &plan->stages[i];
		for (size_t k = 0; k < i && st->name; k++)
			if (plan->stages[k].name && !strcmp(plan->stages[k].name, st->name))
				return pfail(c, st->from->start_line,
					     "duplicate stage name '%s' (first used on line %u)",
					     st->name, plan->stages[k].from->start_line);
		st->steps = st->nsteps ? bld_arena_alloc(c->a, st->nsteps * sizeof(struct bld_step))
				       : NULL;
		if (st->nsteps && !st->steps)
			return sc_err_set(c->err, -ENOMEM, "out of memory");
		st->nsteps = 0;
	}
	si = 0;
	for (size_t i = 0; i < n; i++) {
		if (ins[i].kind == BLD_INSTR_FROM) {
			si++;
			continue;
		}
		if (si == 0)
			continue;
		struct bld_stage *st = &plan->stages[si - 1];
		st->steps[st->nsteps++].instr = &ins[i];
	}
	for (size_t i = 0; i < nstages; i++) {
		struct bld_stage *st = &plan->stages[i];
		const struct bld_stage *b = bld_plan_stage_by_name(plan, st->base);
		if (b) {
			st->base_stage = (int)b->index;
			if ((r = add_edge(c, st->index, b->index, st->from->start_line)) < 0)
				return sc_err_set(c->err, r, "out of memory");
		}
	}

	/* Pass 3: stages in base-first order. */
	unsigned char *state = calloc(nstages, 1);
	unsigned *order = bld_arena_alloc(c->a, nstages * sizeof(unsigned));
	if (!state || !order) {
		free(state);
		return sc_err_set(c->err, -ENOMEM, "out of memory");
	}
	for (unsigned i = 0; i < nstages && r >= 0; i++)
		r = visit_base(c, i, state);
	if (r < 0) {
		free(state);
		return r;
	}

	/* Pass 4: target, reachability, order. */
	plan->target = (unsigned)nstages - 1;
	if (c->opts->target && c->opts->target[0]) {
		const struct bld_stage *t = bld_plan_stage_by_name(plan, c->opts->target);
		if (!t) {
			const char *names[64];
			size_t nn = 0;
			for (size_t i = 0; i < nstages && nn < 64; i++)
				if (plan->stages[i].name)
					names[nn++] = plan->stages[i].name;
			const char *s = bld_suggest(c->opts->target, names, nn);
			free(state);
			if (s)
				return sc_err_set(
					c->err, -EINVAL,
					"%s: target stage '%s' could not be found (did you "
					"mean '%s'?)",
					c->df->filename, c->opts->target, s);
			return sc_err_set(c->err, -EINVAL,
					  "%s: target stage '%s' could not be found",
					  c->df->filename, c->opts->target);
		}
		plan->target = t->index;
	}
	memset(state, 0, nstages);
	size_t norder = 0;
	r = visit_deps(c, plan->target, state, order, &norder);
	/* Every stage's own cycles are errors too, even when the target does not need it. */
	for (unsigned i = 0; i < nstages && r >= 0; i++)
		if (!state[i]) {
			unsigned char *st2 = calloc(nstages, 1);
			unsigned *o2 = calloc(nstages, sizeof(unsigned));
			size_t n2 = 0;
			bool reach[BLD_PLAN_MAX_STAGES];
			for (size_t k = 0; k < nstages; k++)
				reach[k] = plan->stages[k].reachable;
			r = st2 && o2 ? visit_deps(c, i, st2, o2, &n2) : -ENOMEM;
			for (size_t k = 0; k < nstages; k++)
				plan->stages[k].reachable = reach[k];
			free(st2);
			free(o2);
			if (r == -ENOMEM)
				sc_err_set(c->err, r, "out of memory");
		}
	free(state);
	if (r < 0)
		return r;
	plan->order = order;
	plan->norder = norder;

	for (size_t i = 0; i < nstages; i++) {
		struct bld_stage *st = &plan->stages[i];
		unsigned *deps = bld_arena_alloc(c->a, (c->nedges[i] + 1) * sizeof(unsigned));
		if (!deps)
			return sc_err_set(c->err, -ENOMEM, "out of memory");
		size_t nd = 0;
		for (size_t e = 0; e < c->nedges[i]; e++) {
			bool dup = false;
			for (size_t k = 0; k < nd; k++)
				dup |= deps[k] == c->edges[i][e].to;
			if (!dup)
				deps[nd++] = c->edges[i][e].to;
		}
		st->deps = deps;
		st->ndeps = nd;
	}
	return 0;
}

int
bld_plan_new(const struct bld_dockerfile *df, const struct bld_plan_opts *opts,
	     struct bld_plan **ret, struct sc_err *err)
{
	static const struct bld_plan_opts defaults = {0};
	const struct bld_instr *ins = NULL;
	size_t n = 0;
	int r = bld_dockerfile_instructions(df, &ins, &n, err);
	if (r < 0)
		return r;
	struct bld_arena *a = bld_arena_new();
	struct bld_plan *plan = a ? bld_arena_alloc(a, sizeof(*plan)) : NULL;
	if (!plan) {
		bld_arena_free(a);
		return sc_err_set(err, -ENOMEM, "out of memory");
	}
	plan->arena = a;
	struct pctx c = {
		.df = df,
		.plan = plan,
		.a = a,
		.opts = opts ? opts : &defaults,
		.err = err,
		.escape = df->escape,
	};
	r = plan_build(&c, ins, n);
	bld_str_done(&c.scratch);
	bld_strv_done(&c.words.v);
	bld_env_free(&c.platform);
	bld_env_free(&c.global);
	bld_env_free(&c.declared);
	for (size_t i = 0; c.envs && i < plan->nstages; i++)
		bld_env_free(&c.envs[i]);
	for (size_t i = 0; c.vars && i < plan->nstages; i++)
		bld_env_free(&c.vars[i]);
	for (size_t i = 0; c.vars_kv && i < plan->nstages; i++)
		free(c.vars_kv[i].v);
	free(c.vars);
	free(c.vars_kv);
	for (size_t i = 0; c.edges && i < plan->nstages; i++)
		free(c.edges[i]);
	free(c.envs);
	free(c.workdirs);
	free(c.users);
	free(c.edges);
	free(c.nedges);
	if (r < 0) {
		if (!sc_err_isset(err))
			sc_err_set(err, r, "%s: out of memory", df->filename);
		bld_arena_free(a);
		return r;
	}
	*ret = plan;
	return 0;
}

struct bld_plan *
bld_plan_free(struct bld_plan *plan)
{
	if (plan)
		bld_arena_free(plan->arena);
	return NULL;
}
