/*
 * An image from snapshots made by hand: each snapshot of the chain is
 * diffed against its parent into a layer, then a config and a manifest
 * describe them. With SOURCE_DATE_EPOCH set the result is reproducible:
 * layer times are clamped and the config's "created" is that time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "cleanup.h"
#include "content.h"
#include "image-internal.h"
#include "util.h"

static const char *
host_arch(void)
{
	struct utsname u;
	if (uname(&u) == 0 && strcmp(u.machine, "aarch64") == 0)
		return "arm64";
	return "amd64";
}

int
snap_image_create(struct snap_store *s, const char *name, const char *key,
		  const struct snap_layer_diff_opts *opts, struct snap_image_info *ret,
		  struct sc_err *err)
{
	int r = snap_image_name_validate(name, err);
	if (r < 0)
		return r;
	struct snap_layer_diff_opts defaults;
	if (!opts) {
		snap_layer_diff_opts_init(&defaults);
		opts = &defaults;
	}
	/* The chain, top first. */
	char *keys[SNAP_IMAGE_LAYERS_MAX];
	size_t n = 0;
	_cleanup_free_ char *next = strdup(key);
	if (!next)
		return sc_err_set(err, -ENOMEM, "out of memory");
	while (next && r >= 0) {
		struct snap_info info = {0};
		r = snap_snapshot_stat(s, next, &info, err);
		if (r >= 0 && info.kind != SNAP_KIND_COMMITTED)
			r = sc_err_set(err, -EINVAL, "snapshot '%s' is %s; commit it first", next,
				       snap_kind_to_string(info.kind));
		if (r >= 0 && n == SNAP_IMAGE_LAYERS_MAX)
			r = sc_err_set(err, -E2BIG, "snapshot '%s' has more than %d layers", key,
				       SNAP_IMAGE_LAYERS_MAX);
		if (r >= 0) {
			keys[n++] = TAKE_PTR(next);
			next = TAKE_PTR(info.parent);
		}
		snap_info_clear(&info);
	}
	struct img_desc *layers = calloc(n ? n : 1, sizeof(*layers));
	char(*diff_ids)[SC_DIGEST_STR_LEN + 1] = calloc(n ? n : 1, sizeof(*diff_ids));
	if (r >= 0 && (!layers || !diff_ids))
		r = sc_err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct snap_layer_desc d;
		const char *k = keys[n - 1 - i];
		r = snap_layer_diff(s, k, opts, &d, err);
		if (r < 0)
			break;
		snprintf(layers[i].media_type, sizeof(layers[i].media_type), "%s", d.media_type);
		memcpy(layers[i].digest, d.digest, sizeof(d.digest));
		layers[i].size = (int64_t)d.size;
		memcpy(diff_ids[i], d.diff_id, sizeof(d.diff_id));
	}
	_cleanup_free_ char *config = NULL, *manifest = NULL;
	struct img_desc cdesc = {0}, mdesc = {0};
	if (r >= 0) {
		time_t t = opts->source_date_epoch >= 0 ? (time_t)opts->source_date_epoch
							: (time_t)(sc_now_ns() / 1000000000ull);
		struct tm tm;
		char created[32];
		gmtime_r(&t, &tm);
		strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
		struct json_object *c = json_object_new_object();
		json_object_object_add(c, "created", json_object_new_string(created));
		json_object_object_add(c, "architecture", json_object_new_string(host_arch()));
		json_object_object_add(c, "os", json_object_new_string("linux"));
		struct json_object *cc = json_object_new_object();
		struct json_object *env = json_object_new_array();
		json_object_array_add(
			env, json_object_new_string("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:"
						    "/usr/bin:/sbin:/bin"));
		json_object_object_add(cc, "Env", env);
		json_object_object_add(c, "config", cc);
		struct json_object *rootfs = json_object_new_object(),
				   *ids = json_object_new_array();
		json_object_object_add(rootfs, "type", json_object_new_string("layers"));
		for (size_t i = 0; i < n; i++)
			json_object_array_add(ids, json_object_new_string(diff_ids[i]));
		json_object_object_add(rootfs, "diff_ids", ids);
		json_object_object_add(c, "rootfs", rootfs);
		const char *js = json_object_to_json_string_ext(
			c, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		config = js ? strdup(js) : NULL;
		json_object_put(c);
		if (!config)
			r = sc_err_set(err, -ENOMEM, "out of memory");
	}
	if (r >= 0) {
		snprintf(cdesc.media_type, sizeof(cdesc.media_type), "%s",
			 opts->oci_media_types ? SNAP_MT_OCI_CONFIG : SNAP_MT_DOCKER_CONFIG);
		cdesc.size = (int64_t)strlen(config);
		r = snap_content_put(s, config, strlen(config), cdesc.media_type, cdesc.digest,
				     err);
	}
	if (r >= 0) {
		struct json_object *m = json_object_new_object();
		snprintf(mdesc.media_type, sizeof(mdesc.media_type), "%s",
			 opts->oci_media_types ? SNAP_MT_OCI_MANIFEST : SNAP_MT_DOCKER_MANIFEST);
		json_object_object_add(m, "schemaVersion", json_object_new_int(2));
		json_object_object_add(m, "mediaType", json_object_new_string(mdesc.media_type));
		json_object_object_add(m, "config", img_desc_json(&cdesc));
		struct json_object *ls = json_object_new_array();
		for (size_t i = 0; i < n; i++)
			json_object_array_add(ls, img_desc_json(&layers[i]));
		json_object_object_add(m, "layers", ls);
		const char *js = json_object_to_json_string_ext(
			m, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		manifest = js ? strdup(js) : NULL;
		json_object_put(m);
		if (!manifest)
			r = sc_err_set(err, -ENOMEM, "out of memory");
	}
	if (r >= 0) {
		mdesc.size = (int64_t)strlen(manifest);
		r = snap_content_put(s, manifest, strlen(manifest), mdesc.media_type, mdesc.digest,
				     err);
	}
	if (r >= 0) {
		const char **ld = calloc(n ? n : 1, sizeof(*ld)),
			   **sk = calloc(n ? n : 1, sizeof(*sk));
		uint64_t size = (uint64_t)(mdesc.size + cdesc.size);
		for (size_t i = 0; ld && sk && i < n; i++) {
			ld[i] = layers[i].digest;
			sk[i] = keys[n - 1 - i];
			size += (uint64_t)layers[i].size;
		}
		char platform[64];
		snprintf(platform, sizeof(platform), "linux/%s", host_arch());
		uint64_t now = sc_now_ns();
		struct img_commit c = {
			.info = {.name = (char *)name,
				 .target_media_type = mdesc.media_type,
				 .platform = platform,
				 .snapshot = (char *)key,
				 .created = now,
				 .updated = now,
				 .size = size,
				 .nlayers = (uint32_t)n},
			.layers = ld,
			.snapshots = sk,
			.nlayers = n,
		};
		memcpy(c.info.target, mdesc.digest, sizeof(c.info.target));
		memcpy(c.info.manifest, mdesc.digest, sizeof(c.info.manifest));
		memcpy(c.info.config, cdesc.digest, sizeof(c.info.config));
		r = ld && sk ? img_commit(s, &c, err) : sc_err_set(err, -ENOMEM, "out of memory");
		free(ld);
		free(sk);
	}
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(layers);
	free(diff_ids);
	if (r >= 0 && ret)
		r = snap_image_get(s, name, ret, err);
	return r < 0 ? sc_err_prefix(err, r, "create image '%s'", name) : 0;
}

void
snap_image_layers_free(struct snap_image_layer *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].snapshot);
	free(v);
}

int
snap_image_layers(struct snap_store *s, const struct snap_image_info *info,
		  struct snap_image_layer **ret, size_t *ret_n, struct sc_err *err)
{
	_cleanup_free_ char *mbuf = NULL, *cbuf = NULL;
	size_t mlen = 0, clen = 0;
	int r = snap_content_read_all(s, info->manifest, SNAP_IMAGE_JSON_MAX, &mbuf, &mlen, err);
	if (r >= 0)
		r = snap_content_read_all(s, info->config, SNAP_IMAGE_CONFIG_MAX, &cbuf, &clen,
					  err);
	if (r < 0)
		return r;
	_cleanup_(img_json_putp) struct json_object *m = NULL, *c = NULL;
	r = img_json_parse(mbuf, mlen, "manifest", &m, err);
	if (r >= 0)
		r = img_json_parse(cbuf, clen, "config", &c, err);
	if (r < 0)
		return r;
	struct json_object *layers, *rootfs, *ids;
	if (!json_object_object_get_ex(m, "layers", &layers) ||
	    !json_object_is_type(layers, json_type_array) ||
	    !json_object_object_get_ex(c, "rootfs", &rootfs) ||
	    !json_object_object_get_ex(rootfs, "diff_ids", &ids) ||
	    !json_object_is_type(ids, json_type_array) ||
	    json_object_array_length(ids) != json_object_array_length(layers) ||
	    json_object_array_length(layers) > SNAP_IMAGE_LAYERS_MAX)
		return sc_err_set(err, -EINVAL,
				  "image '%s': manifest and config disagree on the layers; run "
				  "'snapctl check'",
				  info->name);
	size_t n = json_object_array_length(layers);
	struct snap_image_layer *v = calloc(n + 1, sizeof(*v));
	if (!v)
		return sc_err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct img_desc d;
		r = img_desc_parse(json_object_array_get_idx(layers, i), "layer", &d, err);
		const char *id = json_object_get_string(json_object_array_get_idx(ids, i));
		if (r >= 0 && (!id || !sc_digest_valid(id)))
			r = sc_err_set(err, -EINVAL, "image '%s': bad diff id %zu", info->name, i);
		if (r < 0)
			break;
		memcpy(v[i].digest, d.digest, sizeof(v[i].digest));
		snprintf(v[i].diff_id, sizeof(v[i].diff_id), "%s", id);
		snprintf(v[i].media_type, sizeof(v[i].media_type), "%s", d.media_type);
		v[i].size = (uint64_t)d.size;
	}
	if (r >= 0 && n && info->snapshot && info->snapshot[0]) {
		v[n - 1].snapshot = strdup(info->snapshot);
		if (!v[n - 1].snapshot)
			r = sc_err_set(err, -ENOMEM, "out of memory");
	}
	if (r < 0) {
		snap_image_layers_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int
snap_image_store(struct snap_store *s, const struct snap_image_new *img, const char *const *names,
		 size_t nnames, struct snap_image_info *ret, struct sc_err *err)
{
	if (img->nlayers > SNAP_IMAGE_LAYERS_MAX)
		return sc_err_set(err, -E2BIG, "image has %zu layers, more than %d", img->nlayers,
				  SNAP_IMAGE_LAYERS_MAX);
	for (size_t i = 0; i < nnames; i++) {
		int r = snap_image_name_validate(names[i], err);
		if (r < 0)
			return r;
	}
	struct img_desc cdesc = {0}, mdesc = {0};
	snprintf(cdesc.media_type, sizeof(cdesc.media_type), "%s",
		 img->oci_media_types ? SNAP_MT_OCI_CONFIG : SNAP_MT_DOCKER_CONFIG);
	cdesc.size = (int64_t)img->config_len;
	int r = snap_content_put(s, img->config, img->config_len, cdesc.media_type, cdesc.digest,
				 err);
	if (r < 0)
		return r;
	snprintf(mdesc.media_type, sizeof(mdesc.media_type), "%s",
		 img->oci_media_types ? SNAP_MT_OCI_MANIFEST : SNAP_MT_DOCKER_MANIFEST);
	struct json_object *m = json_object_new_object();
	json_object_object_add(m, "schemaVersion", json_object_new_int(2));
	json_object_object_add(m, "mediaType", json_object_new_string(mdesc.media_type));
	json_object_object_add(m, "config", img_desc_json(&cdesc));
	struct json_object *ls = json_object_new_array();
	uint64_t size = (uint64_t)cdesc.size;
	for (size_t i = 0; i < img->nlayers; i++) {
		struct img_desc d = {0};
		snprintf(d.media_type, sizeof(d.media_type), "%s", img->layers[i].media_type);
		memcpy(d.digest, img->layers[i].digest, sizeof(d.digest));
		d.size = (int64_t)img->layers[i].size;
		size += img->layers[i].size;
		json_object_array_add(ls, img_desc_json(&d));
	}
	json_object_object_add(m, "layers", ls);
	const char *js = json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE);
	_cleanup_free_ char *manifest = js ? strdup(js) : NULL;
	json_object_put(m);
	if (!manifest)
		return sc_err_set(err, -ENOMEM, "out of memory");
	mdesc.size = (int64_t)strlen(manifest);
	size += (uint64_t)mdesc.size;
	r = snap_content_put(s, manifest, strlen(manifest), mdesc.media_type, mdesc.digest, err);
	if (r < 0)
		return r;

	uint64_t now = sc_now_ns();
	struct snap_image_info info = {
		.name = (char *)(nnames ? names[0] : ""),
		.target_media_type = mdesc.media_type,
		.platform = (char *)(img->platform ? img->platform : "linux/amd64"),
		.snapshot = (char *)(img->snapshot ? img->snapshot : ""),
		.created = now,
		.updated = now,
		.size = size,
		.nlayers = (uint32_t)img->nlayers,
	};
	memcpy(info.target, mdesc.digest, sizeof(info.target));
	memcpy(info.manifest, mdesc.digest, sizeof(info.manifest));
	memcpy(info.config, cdesc.digest, sizeof(info.config));
	const char **ld = calloc(img->nlayers + 1, sizeof(*ld));
	const char **sk = calloc(img->nlayers + 1, sizeof(*sk));
	if (!ld || !sk)
		r = sc_err_set(err, -ENOMEM, "out of memory");
	for (size_t i = 0; r >= 0 && i < img->nlayers; i++) {
		ld[i] = img->layers[i].digest;
		sk[i] = img->layers[i].snapshot;
	}
	for (size_t i = 0; r >= 0 && i < nnames; i++) {
		struct img_commit c = {
			.info = info, .layers = ld, .snapshots = sk, .nlayers = img->nlayers};
		c.info.name = (char *)names[i];
		r = img_commit(s, &c, err);
	}
	free(ld);
	free(sk);
	if (r < 0)
		return r;
	if (ret) {
		*ret = (struct snap_image_info){0};
		memcpy(ret->target, info.target, sizeof(ret->target));
		memcpy(ret->manifest, info.manifest, sizeof(ret->manifest));
		memcpy(ret->config, info.config, sizeof(ret->config));
		ret->name = strdup(info.name);
		ret->target_media_type = strdup(info.target_media_type);
		ret->platform = strdup(info.platform);
		ret->snapshot = strdup(info.snapshot);
		ret->created = now;
		ret->updated = now;
		ret->size = size;
		ret->nlayers = info.nlayers;
		if (!ret->name || !ret->target_media_type || !ret->platform || !ret->snapshot) {
			snap_image_info_clear(ret);
			return sc_err_set(err, -ENOMEM, "out of memory");
		}
	}
	return 0;
}
