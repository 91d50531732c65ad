/*
 * Policies: parsing filters and sizes, ROOT/config.json, and the defaults.
 *
 * config.json:
 *   {"gc": {"auto": true,
 *           "policies": [{"filters": ["type=exec.cachemount,source.local"],
 *                         "keep-duration": "48h", "max-used": "512MB",
 *                         "reserved": "1GB", "min-free": "20%", "all": false}]}}
 */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "cleanup.h"
#include "gc.h"
#include "util.h"

#define GC_CONFIG_MAX	(1u << 20)
#define GC_POLICIES_MAX 64
#define GC_FILTERS_MAX	32
#define GB		1000000000ull

static const char *const source_names[_GC_SOURCE_MAX] = {
	[GC_SOURCE_DEFAULT] = "default",
	[GC_SOURCE_CONFIG] = "config",
	[GC_SOURCE_FLAG] = "flag",
};

static const char *const filter_names[_GC_FILTER_KIND_MAX] = {
	[GC_FILTER_TYPE] = "type",
	[GC_FILTER_LABEL] = "label",
	[GC_FILTER_ID] = "id",
};

static const char *const record_types[] = {"regular",  "exec.cachemount", "source.local",
					   "frontend", "image",		  "content"};

const char *
gc_source_to_string(enum gc_source s)
{
	return s < _GC_SOURCE_MAX ? source_names[s] : "unknown";
}

const char *
gc_filter_kind_to_string(enum gc_filter_kind k)
{
	return k < _GC_FILTER_KIND_MAX ? filter_names[k] : "unknown";
}

void
gc_policy_clear(struct gc_policy *p)
{
	for (size_t i = 0; i < p->nfilters; i++)
		free(p->filters[i].value);
	free(p->filters);
	*p = (struct gc_policy){0};
}

void
gc_config_clear(struct gc_config *c)
{
	for (size_t i = 0; i < c->npolicies; i++)
		gc_policy_clear(&c->policies[i]);
	free(c->policies);
	*c = (struct gc_config){0};
}

int
gc_filter_parse(const char *s, struct gc_filter *ret, struct sc_err *err)
{
	const char *eq = strchr(s, '=');
	if (!eq || !eq[1])
		return sc_err_set(err, -EINVAL,
				  "filter '%s' is not KEY=VALUE (type=, label= or id=)", s);
	size_t klen = (size_t)(eq - s);
	for (int k = 0; k < _GC_FILTER_KIND_MAX; k++) {
		if (strlen(filter_names[k]) != klen || strncmp(s, filter_names[k], klen) != 0)
			continue;
		if (k == GC_FILTER_TYPE) {
			/* every listed type must be one we know */
			_cleanup_free_ char *list = strdup(eq + 1);
			if (!list)
				return sc_err_set(err, -ENOMEM, "out of memory");
			char *save = NULL;
			for (char *t = strtok_r(list, ",", &save); t;
			     t = strtok_r(NULL, ",", &save)) {
				bool known = false;
				for (size_t i = 0; i < ARRAY_SIZE(record_types); i++)
					known |= strcmp(t, record_types[i]) == 0;
				if (!known)
					return sc_err_set(
						err, -EINVAL,
						"filter '%s': unknown type '%s'; use regular, "
						"exec.cachemount, source.local, frontend, "
						"image or content",
						s, t);
			}
		}
		ret->kind = (enum gc_filter_kind)k;
		ret->value = strdup(eq + 1);
		return ret->value ? 0 : sc_err_set(err, -ENOMEM, "out of memory");
	}
	return sc_err_set(err, -EINVAL, "filter '%s': unknown key; use type=, label= or id=", s);
}

int
gc_size_parse(const char *s, uint64_t fs_size, uint64_t *ret, struct sc_err *err)
{
	size_t len = s ? strlen(s) : 0;
	if (len > 1 && s[len - 1] == '%') {
		char *end;
		double pct = strtod(s, &end);
		if (end != s + len - 1 || pct < 0 || pct > 100)
			return sc_err_set(err, -EINVAL,
					  "size '%s' is not a percentage from 0%% to 100%%", s);
		*ret = (uint64_t)((double)fs_size * pct / 100.0);
		return 0;
	}
	if (sc_size_parse(s, ret) < 0)
		return sc_err_set(err, -EINVAL,
				  "size '%s' is not a size (e.g. 10GB, 512MiB, 4096, or 20%%)",
				  s ? s : "");
	return 0;
}

uint64_t
gc_fs_size(struct snap_store *s)
{
	struct statvfs st;
	if (statvfs(snap_store_root(s), &st) < 0)
		return 0;
	return (uint64_t)st.f_blocks * st.f_frsize;
}

static int
policy_add_filter(struct gc_policy *p, const char *s, struct sc_err *err)
{
	if (p->nfilters == GC_FILTERS_MAX)
		return sc_err_set(err, -E2BIG, "more than %d filters", GC_FILTERS_MAX);
	struct gc_filter *f = realloc(p->filters, (p->nfilters + 1) * sizeof(*f));
	if (!f)
		return sc_err_set(err, -ENOMEM, "out of memory");
	p->filters = f;
	int r = gc_filter_parse(s, &f[p->nfilters], err);
	if (r >= 0)
		p->nfilters++;
	return r;
}

int
gc_config_defaults(struct snap_store *s, struct gc_config *ret, struct sc_err *err)
{
	uint64_t fs = gc_fs_size(s);
	struct gc_config c = {.auto_gc = true, .source = GC_SOURCE_DEFAULT};
	c.policies = calloc(3, sizeof(*c.policies));
	if (!c.policies)
		return sc_err_set(err, -ENOMEM, "out of memory");
	c.npolicies = 3;
	/* 1: cache mounts and local sources unused for 48 h, once they pass 512 MB */
	struct gc_policy *p = &c.policies[0];
	int r = policy_add_filter(p, "type=exec.cachemount,source.local", err);
	p->keep_duration = 48ull * 3600 * 1000000000ull;
	p->max_used = 512ull * 1000 * 1000;
	/* 2: anything unused for 60 days */
	c.policies[1].keep_duration = 60ull * 86400 * 1000000000ull;
	/* 3: everything unreferenced, down to the caps */
	p = &c.policies[2];
	p->reserved = fs / 10 < 10 * GB ? fs / 10 : 10 * GB;
	p->max_used = fs / 10 * 8 < 100 * GB ? fs / 10 * 8 : 100 * GB;
	p->min_free = fs / 5;
	if (r < 0) {
		gc_config_clear(&c);
		return r;
	}
	*ret = c;
	return 0;
}

static int
json_string_field(struct json_object *o, const char *key, const char *where, const char **ret,
		  struct sc_err *err)
{
	struct json_object *v;
	*ret = NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return sc_err_set(err, -EINVAL, "%s: '%s' must be a string", where, key);
	*ret = json_object_get_string(v);
	return 0;
}

static int
policy_from_json(struct json_object *o, uint64_t fs, const char *where, struct gc_policy *p,
		 struct sc_err *err)
{
	static const char *const known[] = {"filters",	"keep-duration", "max-used",
					    "reserved", "min-free",	 "all"};
	if (!json_object_is_type(o, json_type_object))
		return sc_err_set(err, -EINVAL, "%s must be an object", where);
	json_object_object_foreach(o, key, val)
	{
		(void)val;
		bool ok = false;
		for (size_t i = 0; i < ARRAY_SIZE(known); i++)
			ok |= strcmp(key, known[i]) == 0;
		if (!ok)
			return sc_err_set(err, -EINVAL,
					  "%s: unknown field '%s' (known: filters, keep-duration, "
					  "max-used, reserved, min-free, all)",
					  where, key);
	}
	p->source = GC_SOURCE_CONFIG;
	const char *v;
	int r = json_string_field(o, "keep-duration", where, &v, err);
	if (r >= 0 && v && sc_duration_parse(v, &p->keep_duration) < 0)
		r = sc_err_set(err, -EINVAL,
			       "%s: keep-duration '%s' is not a duration (e.g. 48h, 7d)", where, v);
	static const struct {
		const char *key;
		size_t offset;
	} sizes[] = {
		{"max-used", offsetof(struct gc_policy, max_used)},
		{"reserved", offsetof(struct gc_policy, reserved)},
		{"min-free", offsetof(struct gc_policy, min_free)},
	};
	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(sizes); i++) {
		r = json_string_field(o, sizes[i].key, where, &v, err);
		if (r >= 0 && v) {
			r = gc_size_parse(v, fs, (uint64_t *)((char *)p + sizes[i].offset), err);
			if (r < 0)
				sc_err_prefix(err, r, "%s: %s", where, sizes[i].key);
		}
	}
	struct json_object *jv;
	if (r >= 0 && json_object_object_get_ex(o, "all", &jv)) {
		if (!json_object_is_type(jv, json_type_boolean))
			r = sc_err_set(err, -EINVAL, "%s: 'all' must be true or false", where);
		else
			p->all = json_object_get_boolean(jv);
	}
	if (r >= 0 && json_object_object_get_ex(o, "filters", &jv)) {
		if (!json_object_is_type(jv, json_type_array))
			return sc_err_set(err, -EINVAL, "%s: 'filters' must be a list of strings",
					  where);
		for (size_t i = 0; r >= 0 && i < json_object_array_length(jv); i++) {
			struct json_object *f = json_object_array_get_idx(jv, i);
			if (!json_object_is_type(f, json_type_string))
				return sc_err_set(err, -EINVAL,
						  "%s: 'filters' must be a list of strings", where);
			r = policy_add_filter(p, json_object_get_string(f), err);
			if (r < 0)
				sc_err_prefix(err, r, "%s", where);
		}
	}
	return r;
}

int
gc_config_load(struct snap_store *s, struct gc_config *ret, struct sc_err *err)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/config.json", snap_store_root(s));
	_cleanup_free_ char *data = NULL;
	size_t len = 0;
	int r = sc_read_file(path, GC_CONFIG_MAX, &data, &len);
	if (r == -ENOENT)
		return gc_config_defaults(s, ret, err);
	if (r == -EFBIG)
		return sc_err_set(err, r, "config '%s' is larger than 1 MiB", path);
	if (r < 0)
		return sc_err_set(err, r,
				  "cannot read config '%s': %s; fix its permissions or remove it",
				  path, sc_strerror(r));

	struct json_tokener *tok = json_tokener_new();
	if (!tok)
		return sc_err_set(err, -ENOMEM, "out of memory");
	struct json_object *root = json_tokener_parse_ex(tok, data, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	json_tokener_free(tok);
	if (!root || jerr != json_tokener_success) {
		json_object_put(root);
		return sc_err_set(err, -EINVAL, "config '%s' is not valid JSON: %s", path,
				  jerr == json_tokener_continue ? "it ends too early"
								: json_tokener_error_desc(jerr));
	}

	struct gc_config c = {.auto_gc = true, .source = GC_SOURCE_CONFIG};
	struct json_object *gc = NULL, *v;
	r = 0;
	if (!json_object_is_type(root, json_type_object))
		r = sc_err_set(err, -EINVAL, "config '%s' must hold a JSON object", path);
	if (r >= 0) {
		json_object_object_foreach(root, key, val)
		{
			(void)val;
			if (strcmp(key, "gc") != 0) {
				r = sc_err_set(err, -EINVAL, "config '%s': unknown field '%s'",
					       path, key);
				break;
			}
		}
	}
	if (r >= 0 && json_object_object_get_ex(root, "gc", &gc) &&
	    !json_object_is_type(gc, json_type_object))
		r = sc_err_set(err, -EINVAL, "config '%s': 'gc' must be an object", path);
	if (r >= 0 && gc) {
		json_object_object_foreach(gc, key, val)
		{
			(void)val;
			if (strcmp(key, "auto") != 0 && strcmp(key, "policies") != 0) {
				r = sc_err_set(err, -EINVAL,
					       "config '%s': unknown field 'gc.%s' (known: auto, "
					       "policies)",
					       path, key);
				break;
			}
		}
	}
	if (r >= 0 && gc && json_object_object_get_ex(gc, "auto", &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			r = sc_err_set(err, -EINVAL, "config '%s': 'gc.auto' must be true or false",
				       path);
		else
			c.auto_gc = json_object_get_boolean(v);
	}
	bool have_policies = false;
	if (r >= 0 && gc && json_object_object_get_ex(gc, "policies", &v)) {
		have_policies = true;
		size_t n =
			json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0;
		if (!json_object_is_type(v, json_type_array))
			r = sc_err_set(err, -EINVAL, "config '%s': 'gc.policies' must be a list",
				       path);
		else if (n > GC_POLICIES_MAX)
			r = sc_err_set(err, -E2BIG, "config '%s': more than %d policies", path,
				       GC_POLICIES_MAX);
		else if (n && !(c.policies = calloc(n, sizeof(*c.policies))))
			r = sc_err_set(err, -ENOMEM, "out of memory");
		uint64_t fs = gc_fs_size(s);
		for (size_t i = 0; r >= 0 && i < n; i++) {
			char where[PATH_MAX + 64];
			snprintf(where, sizeof(where), "config '%s': gc.policies[%zu]", path, i);
			c.npolicies++;
			r = policy_from_json(json_object_array_get_idx(v, i), fs, where,
					     &c.policies[i], err);
		}
	}
	json_object_put(root);
	if (r < 0) {
		gc_config_clear(&c);
		return r;
	}
	if (!have_policies) {
		/* A config that only switches auto GC keeps the default policies. */
		bool auto_gc = c.auto_gc;
		gc_config_clear(&c);
		r = gc_config_defaults(s, &c, err);
		if (r < 0)
			return r;
		c.auto_gc = auto_gc;
	}
	*ret = c;
	return 0;
}
