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
