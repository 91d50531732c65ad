/*
 * Image import: an OCI image layout or a `docker save` archive, as a
 * folder or a tar, recognised by what it holds (index.json: OCI layout,
 * which the combined docker form also is; manifest.json alone: the legacy
 * docker form). A tar is unpacked first into a private folder under tmp/
 * by the layer unpacker, with its limits and its refusal to leave the
 * folder, so both inputs are then read the same way: every file opened
 * beneath the folder.
 *
 * Order, so that a bad archive leaves the store as it was: all JSON is read,
 * bounded and checked against its digest, and every blob is found, before
 * anything is stored. Layers are then unpacked (each read once: the bytes go
 * to the content store and the unpacker together) into snapshots keyed by
 * chain id; configs and manifests are stored; the name and its edges are
 * written last, in one transaction. A lease held by this process protects
 * what was stored until the edges do.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "content.h"
#include "image-internal.h"
#include "lease.h"
#include "log.h"
#include "store-internal.h"
#include "util.h"

#define PLATFORM_DEFAULT "linux/amd64"

struct importer {
	struct snap_store *s;
	const struct snap_image_import_opts *opts;
	struct sc_err *err;
	int dirfd;
	const char *platform;
	char name[SNAP_IMAGE_NAME_MAX + 1];
	bool docker;
	/* The name points at target; with an index, manifest is the platform's. */
	struct img_desc target;
	char *index_buf;
	size_t index_len;
	struct img_desc manifest;
	char *manifest_buf;
	size_t manifest_len;
	struct img_desc config;
	char *config_buf;
	size_t config_len;
	char cfg_platform[128];
	size_t nlayers;
	struct img_desc layers[SNAP_IMAGE_LAYERS_MAX];
	char *layer_paths[SNAP_IMAGE_LAYERS_MAX];
	char diff_ids[SNAP_IMAGE_LAYERS_MAX][SC_DIGEST_STR_LEN + 1];
	char chain[SNAP_IMAGE_LAYERS_MAX][SC_DIGEST_STR_LEN + 1];
	struct snap_lease lease;
};

static void
importer_clear(struct importer *im)
{
	free(im->index_buf);
	free(im->manifest_buf);
	free(im->config_buf);
	for (size_t i = 0; i < im->nlayers; i++)
		free(im->layer_paths[i]);
	if (im->lease.id) {
		snap_store_use_lease(im->s, NULL);
		snap_lease_delete(im->s, im->lease.id, NULL);
	}
	snap_lease_clear(&im->lease);
}

static void
blob_path(char *buf, size_t len, const char *digest)
{
	snprintf(buf, len, "blobs/sha256/%s", digest + 7);
}

/* Reads a blob of the layout by descriptor, bounded, checked against its size and digest. */
static int
read_blob(struct importer *im, const struct img_desc *d, size_t max, const char *what, char **ret,
	  size_t *ret_len)
{
	if ((uint64_t)d->size > max)
		return sc_err_set(im->err, -EFBIG,
				  "%s %s is %" PRId64 " bytes, over the limit of %zu bytes", what,
				  d->digest, d->size, max);
	char path[128];
	blob_path(path, sizeof(path), d->digest);
	char *buf = NULL;
	size_t len = 0;
	int r = img_read_beneath(im->dirfd, path, max, what, &buf, &len, im->err);
	if (r == -ENOENT) {
		/* Not in the archive: the store may have it (a layout that shares blobs). */
		sc_err_clear(im->err);
		r = snap_content_read_all(im->s, d->digest, max, &buf, &len, NULL);
		if (r < 0)
			return sc_err_set(im->err, -ENOENT, "%s %s is missing from the archive",
					  what, d->digest);
	} else if (r < 0) {
		return r;
	}
	char got[SC_DIGEST_STR_LEN + 1];
	sc_sha256_buf(buf, len, got);
	if (strcmp(got, d->digest) != 0 || (int64_t)len != d->size) {
		free(buf);
		return sc_err_set(im->err, -EBADMSG,
				  "%s %s does not match its digest (its content is %s, %zu bytes)",
				  what, d->digest, got, len);
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

static const char *
mt_sniff(struct json_object *o)
{
	const char *mt = img_json_str(o, "mediaType");
	if (mt)
		return mt;
	struct json_object *v;
	if (json_object_object_get_ex(o, "manifests", &v))
		return SNAP_MT_OCI_INDEX;
	if (json_object_object_get_ex(o, "layers", &v))
		return SNAP_MT_OCI_MANIFEST;
	return "";
}

/* Picks the descriptor for the platform from an index's manifests array. */
static int
pick_platform(struct importer *im, struct json_object *arr, const char *what, struct img_desc *ret)
{
	size_t n = json_object_array_length(arr);
	int best = 0;
	struct img_desc d;
	char seen[256] = "";
	for (size_t i = 0; i < n; i++) {
		int r = img_desc_parse(json_object_array_get_idx(arr, i), what, &d, im->err);
		if (r < 0)
			return r;
		int m = d.platform[0] ? img_platform_match(im->platform, d.platform) : 0;
		if (d.platform[0] && strlen(seen) + strlen(d.platform) + 2 < sizeof(seen))
			snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "%s%s",
				 seen[0] ? " " : "", d.platform);
		if (m > best) {
			best = m;
			*ret = d;
		}
	}
	if (!best)
		return sc_err_set(im->err, -ENOEXEC,
				  "%s has no image for %s (it has: %s); pick one with --platform",
				  what, im->platform, seen[0] ? seen : "none");
	return 0;
}

static int
load_config(struct importer *im)
{
	if (img_media_type_kind(im->config.media_type) != IMG_MT_CONFIG)
		return sc_err_set(im->err, -EINVAL,
				  "config %s has media type '%s', not a container image config",
				  im->config.digest, im->config.media_type);
	int r = 0;
	if (!im->config_buf)
		r = read_blob(im, &im->config, SNAP_IMAGE_CONFIG_MAX, "config", &im->config_buf,
			      &im->config_len);
	if (r < 0)
		return r;
	_cleanup_(img_json_putp) struct json_object *cfg = NULL;
	r = img_json_parse(im->config_buf, im->config_len, "config", &cfg, im->err);
	if (r < 0)
		return r;
	const char *os = img_json_str(cfg, "os"), *arch = img_json_str(cfg, "architecture");
	const char *variant = img_json_str(cfg, "variant");
	snprintf(im->cfg_platform, sizeof(im->cfg_platform), "%.40s/%.40s%s%.40s",
		 os ? os : "unknown", arch ? arch : "unknown", variant ? "/" : "",
		 variant ? variant : "");
	struct json_object *rootfs, *ids;
	if (!json_object_object_get_ex(cfg, "rootfs", &rootfs) ||
	    !json_object_object_get_ex(rootfs, "diff_ids", &ids) ||
	    !json_object_is_type(ids, json_type_array))
		return sc_err_set(im->err, -EINVAL, "config %s has no rootfs.diff_ids",
				  im->config.digest);
	if (json_object_array_length(ids) != im->nlayers)
		return sc_err_set(im->err, -EINVAL, "config %s lists %zu diff ids for %zu layers",
				  im->config.digest, json_object_array_length(ids), im->nlayers);
	for (size_t i = 0; i < im->nlayers; i++) {
		struct json_object *v = json_object_array_get_idx(ids, i);
		const char *id =
			json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
		if (!id || !sc_digest_valid(id))
			return sc_err_set(im->err, -EINVAL,
					  "config %s: diff id %zu is not a digest",
					  im->config.digest, i);
		memcpy(im->diff_ids[i], id, SC_DIGEST_STR_LEN + 1);
		snap_layer_chain_id(i ? im->chain[i - 1] : NULL, id, im->chain[i]);
	}
	return 0;
}

static int
load_manifest(struct importer *im)
{
	int r = read_blob(im, &im->manifest, SNAP_IMAGE_JSON_MAX, "manifest", &im->manifest_buf,
			  &im->manifest_len);
	if (r < 0)
		return r;
	_cleanup_(img_json_putp) struct json_object *m = NULL;
	r = img_json_parse(im->manifest_buf, im->manifest_len, "manifest", &m, im->err);
	if (r < 0)
		return r;
	struct json_object *cfg, *layers;
	if (!json_object_object_get_ex(m, "config", &cfg) ||
	    !json_object_object_get_ex(m, "layers", &layers) ||
	    !json_object_is_type(layers, json_type_array))
		return sc_err_set(im->err, -EINVAL, "manifest %s has no config or layers",
				  im->manifest.digest);
	r = img_desc_parse(cfg, "manifest config", &im->config, im->err);
	if (r < 0)
		return r;
	size_t n = json_object_array_length(layers);
	if (n > SNAP_IMAGE_LAYERS_MAX)
		return sc_err_set(im->err, -E2BIG,
				  "manifest %s has %zu layers, over the limit of %d",
				  im->manifest.digest, n, SNAP_IMAGE_LAYERS_MAX);
	for (size_t i = 0; i < n; i++) {
		r = img_desc_parse(json_object_array_get_idx(layers, i), "layer", &im->layers[i],
				   im->err);
		if (r < 0)
			return r;
		if (img_media_type_kind(im->layers[i].media_type) != IMG_MT_LAYER)
			return sc_err_set(im->err, -EINVAL, "layer %s has unknown media type '%s'",
					  im->layers[i].digest, im->layers[i].media_type);
		char p[128];
		blob_path(p, sizeof(p), im->layers[i].digest);
		im->layer_paths[i] = strdup(p);
		if (!im->layer_paths[i])
			return sc_err_set(im->err, -ENOMEM, "out of memory");
		im->nlayers++;
	}
	return load_config(im);
}

static int
load_oci(struct importer *im)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = img_read_beneath(im->dirfd, "index.json", SNAP_IMAGE_JSON_MAX, "index", &buf, &len,
				 im->err);
	if (r < 0)
		return r;
	_cleanup_(img_json_putp) struct json_object *idx = NULL;
	r = img_json_parse(buf, len, "index.json", &idx, im->err);
	if (r < 0)
		return r;
	struct json_object *arr;
	if (!json_object_object_get_ex(idx, "manifests", &arr) ||
	    !json_object_is_type(arr, json_type_array) || json_object_array_length(arr) == 0)
		return sc_err_set(im->err, -EINVAL, "index.json lists no images");
	size_t n = json_object_array_length(arr);
	struct img_desc d;
	bool found = false;
	bool platforms = false;
	for (size_t i = 0; i < n && !found; i++) {
		r = img_desc_parse(json_object_array_get_idx(arr, i), "index.json entry", &d,
				   im->err);
		if (r < 0)
			return r;
		platforms |= d.platform[0] != '\0';
		const char *want = im->opts->name;
		if (n == 1 ||
		    (want && (strcmp(want, d.image_name) == 0 || strcmp(want, d.ref_name) == 0)))
			found = true;
	}
	if (found) {
		im->target = d;
	} else if (platforms) {
		/* index.json is itself the image's index (one image, several platforms). */
		im->index_buf = TAKE_PTR(buf);
		im->index_len = len;
		snprintf(im->target.media_type, sizeof(im->target.media_type), SNAP_MT_OCI_INDEX);
		sc_sha256_buf(im->index_buf, len, im->target.digest);
		im->target.size = (int64_t)len;
	} else {
		return sc_err_set(im->err, -EINVAL,
				  "the layout holds %zu images; choose one with --name (its "
				  "org.opencontainers.image.ref.name)",
				  n);
	}
	if (!im->opts->name) {
		const char *nm =
			im->target.image_name[0] ? im->target.image_name : im->target.ref_name;
		snprintf(im->name, sizeof(im->name), "%s", nm); /* "": named by its id below */
	}

	/* Down through indexes (at most two levels) to the platform's manifest. */
	struct img_desc cur = im->target;
	for (int depth = 0;; depth++) {
		_cleanup_free_ char *b = NULL;
		size_t bl = 0;
		if (depth == 0 && im->index_buf) {
			b = strdup(im->index_buf);
			bl = im->index_len;
			if (!b)
				return sc_err_set(im->err, -ENOMEM, "out of memory");
		} else {
			enum img_mt_kind k = img_media_type_kind(cur.media_type);
			if (k == IMG_MT_MANIFEST) {
				im->manifest = cur;
				return load_manifest(im);
			}
			if (k != IMG_MT_INDEX && cur.media_type[0])
				return sc_err_set(
					im->err, -EINVAL,
					"%s has media type '%s', not an image manifest or "
					"index",
					cur.digest, cur.media_type);
			r = read_blob(im, &cur, SNAP_IMAGE_JSON_MAX, "index", &b, &bl);
			if (r < 0)
				return r;
		}
		_cleanup_(img_json_putp) struct json_object *o = NULL;
		r = img_json_parse(b, bl, "index", &o, im->err);
		if (r < 0)
			return r;
		const char *mt = mt_sniff(o);
		if (img_media_type_kind(mt) == IMG_MT_MANIFEST) {
			snprintf(cur.media_type, sizeof(cur.media_type), "%s", mt);
			if (depth == 0)
				im->target = cur;
			im->manifest = cur;
			return load_manifest(im);
		}
		if (depth >= 2)
			return sc_err_set(im->err, -EINVAL, "indexes nested more than two deep");
		if (depth == 0 && !im->index_buf) {
			snprintf(im->target.media_type, sizeof(im->target.media_type), "%s", mt);
			im->index_buf = TAKE_PTR(b);
			im->index_len = bl;
		}
		struct json_object *ms;
		if (!json_object_object_get_ex(o, "manifests", &ms) ||
		    !json_object_is_type(ms, json_type_array))
			return sc_err_set(im->err, -EINVAL, "index %s lists no manifests",
					  cur.digest);
		r = pick_platform(im, ms, "the image index", &cur);
		if (r < 0)
			return r;
	}
}

/* The legacy docker form: manifest.json, config and layer files by path. */
static int
load_docker(struct importer *im)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r = img_read_beneath(im->dirfd, "manifest.json", SNAP_IMAGE_JSON_MAX, "docker manifest",
				 &buf, &len, im->err);
	if (r < 0)
		return r;
	_cleanup_(img_json_putp) struct json_object *arr = NULL;
	r = img_json_parse(buf, len, "manifest.json", &arr, im->err);
	if (r < 0)
		return r;
	if (!json_object_is_type(arr, json_type_array) || json_object_array_length(arr) == 0)
		return sc_err_set(im->err, -EINVAL, "manifest.json lists no images");
	size_t n = json_object_array_length(arr);
	struct json_object *entry = NULL;
	for (size_t i = 0; i < n && !entry; i++) {
		struct json_object *e = json_object_array_get_idx(arr, i), *tags;
		if (n == 1)
			entry = e;
		if (im->opts->name && json_object_object_get_ex(e, "RepoTags", &tags) &&
		    json_object_is_type(tags, json_type_array))
			for (size_t j = 0; j < json_object_array_length(tags); j++) {
				const char *t =
					json_object_get_string(json_object_array_get_idx(tags, j));
				if (t && strcmp(t, im->opts->name) == 0)
					entry = e;
			}
	}
	if (!entry)
		return sc_err_set(im->err, -EINVAL,
				  "manifest.json holds %zu images; choose one with --name (one of "
				  "its RepoTags)",
				  n);
	struct json_object *tags, *layers;
	if (!im->opts->name) {
		const char *t = NULL;
		if (json_object_object_get_ex(entry, "RepoTags", &tags) &&
		    json_object_is_type(tags, json_type_array) && json_object_array_length(tags))
			t = json_object_get_string(json_object_array_get_idx(tags, 0));
		if (!t)
			t = ""; /* named by its id below */
		if (strlen(t) > SNAP_IMAGE_NAME_MAX)
			return sc_err_set(
				im->err, -EINVAL,
				"manifest.json names its image with over %d bytes; give a "
				"name with --name",
				SNAP_IMAGE_NAME_MAX);
		snprintf(im->name, sizeof(im->name), "%s", t);
	}
	const char *cfg = img_json_str(entry, "Config");
	if (!cfg || !json_object_object_get_ex(entry, "Layers", &layers) ||
	    !json_object_is_type(layers, json_type_array))
		return sc_err_set(im->err, -EINVAL, "manifest.json entry has no Config or Layers");
	r = img_read_beneath(im->dirfd, cfg, SNAP_IMAGE_CONFIG_MAX, "config", &im->config_buf,
			     &im->config_len, im->err);
	if (r < 0)
		return r;
	snprintf(im->config.media_type, sizeof(im->config.media_type), SNAP_MT_OCI_CONFIG);
	sc_sha256_buf(im->config_buf, im->config_len, im->config.digest);
	im->config.size = (int64_t)im->config_len;
	/* A config named by its digest must match it. */
	const char *base = strrchr(cfg, '/') ? strrchr(cfg, '/') + 1 : cfg;
	if (strlen(base) >= SC_DIGEST_HEX_LEN &&
	    strspn(base, "0123456789abcdef") == SC_DIGEST_HEX_LEN &&
	    strncmp(base, im->config.digest + 7, SC_DIGEST_HEX_LEN) != 0)
		return sc_err_set(im->err, -EBADMSG,
				  "config '%s' does not match its digest (it is %s)", cfg,
				  im->config.digest);
	size_t nl = json_object_array_length(layers);
	if (nl > SNAP_IMAGE_LAYERS_MAX)
		return sc_err_set(im->err, -E2BIG,
				  "manifest.json lists %zu layers, over the limit of %d", nl,
				  SNAP_IMAGE_LAYERS_MAX);
	for (size_t i = 0; i < nl; i++) {
		const char *p = json_object_get_string(json_object_array_get_idx(layers, i));
		if (!p || !*p)
			return sc_err_set(im->err, -EINVAL, "manifest.json: layer %zu has no path",
					  i);
		im->layer_paths[i] = strdup(p);
		if (!im->layer_paths[i])
			return sc_err_set(im->err, -ENOMEM, "out of memory");
		im->nlayers++;
	}
	im->docker = true;
	return load_config(im);
}

static bool
blob_exists(struct snap_store *s, const char *digest)
{
	struct snap_blob_info bi = {0};
	int r = snap_content_stat(s, digest, &bi, NULL);
	snap_blob_info_clear(&bi);
	return r == 0;
}

/* Every layer must be somewhere before anything is stored. */
static int
check_layers(struct importer *im)
{
	for (size_t i = 0; i < im->nlayers; i++) {
		if (!im->docker && blob_exists(im->s, im->layers[i].digest))
			continue;
		_cleanup_close_ int fd = img_open_beneath(im->dirfd, im->layer_paths[i], O_RDONLY);
		if (fd < 0)
			return fd == -ENOENT ? sc_err_set(im->err, fd,
							  "layer %s is missing from the archive",
							  im->docker ? im->layer_paths[i]
								     : im->layers[i].digest)
			       : fd == -EFTYPE_NOT_FILE
				       ? sc_err_set(im->err, fd, "layer '%s' is not a regular file",
						    im->layer_paths[i])
				       : sc_err_setsys(im->err, fd, "cannot open layer '%s'",
						       im->layer_paths[i]);
		struct stat st;
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
			return sc_err_set(im->err, -EINVAL, "layer '%s' is not a file",
					  im->layer_paths[i]);
		if (!im->docker && st.st_size != im->layers[i].size)
			return sc_err_set(
				im->err, -EBADMSG,
				"layer %s is %lld bytes, not the %" PRId64 " its manifest declares",
				im->layers[i].digest, (long long)st.st_size, im->layers[i].size);
	}
	return 0;
}

static int
content_sink(void *arg, const void *data, size_t len, struct sc_err *err)
{
	return snap_content_write(arg, data, len, err);
}

static int
diff_id_check(const char *want, const char *got, struct sc_err *err)
{
	if (strcmp(want, got) == 0)
		return 0;
	return sc_err_set(err, -EBADMSG,
			  "layer content does not match its diff id: expected %s, got %s", want,
			  got);
}

/*
 * Stores a layer file whose snapshot is here already, without unpacking it:
 * digest and size checked by the content store, the uncompressed stream
 * hashed (within the size limit) and checked against the config's diff id.
 */
static int
store_layer(struct importer *im, size_t i, int fd, enum snap_compression *ret_c)
{
	struct img_desc *d = &im->layers[i];
	struct snap_content_writer *w = NULL;
	int r = snap_content_writer_new(im->s, im->docker ? NULL : d->digest,
					im->docker ? -1 : d->size, &w, im->err);
	if (r < 0)
		return r;
	char got[SC_DIGEST_STR_LEN + 1];
	r = snap_layer_hash(fd, im->opts->limits.max_bytes, content_sink, w, got, ret_c, im->err);
	if (r >= 0)
		r = diff_id_check(im->diff_ids[i], got, im->err);
	if (r < 0) {
		snap_content_abort(w);
		return r;
	}
	const char *mt = im->docker ? snap_compression_media_type(*ret_c, true) : d->media_type;
	return snap_content_commit(w, mt, d->digest, im->err);
}

/*
 * A layer whose blob and snapshot are both here: the blob may still not be
 * what this image's config says (another image's layer under this diff id),
 * so its uncompressed stream is hashed again.
 */
static int
verify_stored_layer(struct importer *im, size_t i)
{
	_cleanup_close_ int fd = -EBADF;
	int r = snap_content_open(im->s, im->layers[i].digest, &fd, NULL, im->err);
	char got[SC_DIGEST_STR_LEN + 1];
	if (r >= 0)
		r = snap_layer_hash(fd, im->opts->limits.max_bytes, NULL, NULL, got, NULL, im->err);
	if (r >= 0)
		r = diff_id_check(im->diff_ids[i], got, im->err);
	return r;
}

/* A layer is stored: the docker form learns its blob's size (and digest, from res). */
static int
layer_stored(struct importer *im, size_t i, const struct snap_layer_apply_result *res)
{
	struct img_desc *d = &im->layers[i];
	if (!im->docker)
		return 0;
	if (res) {
		memcpy(d->digest, res->digest, sizeof(d->digest));
		snprintf(d->media_type, sizeof(d->media_type), "%s",
			 snap_compression_media_type(res->compression, true));
	}
	struct snap_blob_info bi = {0};
	int r = snap_content_stat(im->s, d->digest, &bi, im->err);
	d->size = (int64_t)bi.size;
	snap_blob_info_clear(&bi);
	return r;
}

static int
layer_error(struct importer *im, size_t i, int r)
{
	return sc_err_prefix(im->err, r, "layer %zu of %zu (%s)", i + 1, im->nlayers,
			     im->docker ? im->layer_paths[i] : im->layers[i].digest);
}

/* Another import made snapshot key meanwhile: fine, if it joins our lease. */
static bool
made_meanwhile(struct importer *im, const char *key)
{
	const char *types[] = {"snapshot"}, *names[] = {key};
	bool have = false;
	struct sc_err e2 = {0};
	if (snap_lease_attach_present(im->s, im->lease.id, types, names, 1, &have, &e2) < 0 ||
	    !have)
		return false;
	sc_err_clear(im->err);
	return true;
}

/* One pass over the layers (apply_layers). */
struct layer_pass {
	struct snap_layer_job *job[SNAP_IMAGE_LAYERS_MAX]; /* NULL: its snapshot is here */
	int fd[SNAP_IMAGE_LAYERS_MAX];
	bool have_snap[SNAP_IMAGE_LAYERS_MAX], have_blob[SNAP_IMAGE_LAYERS_MAX];
};

/* The job for layer i, on layer i - 1's (its job's while that is in progress). */
static int
new_job(struct importer *im, struct layer_pass *p, size_t i)
{
	struct img_desc *d = &im->layers[i];
	struct snap_layer_apply_opts ao = {
		.limits = im->opts->limits,
		.expected_diff_id = im->diff_ids[i],
		.tee_media_type = im->docker ? NULL : d->media_type,
	};
	int r = 0;
	if (!p->have_blob[i])
		r = snap_content_writer_new(im->s, im->docker ? NULL : d->digest,
					    im->docker ? -1 : d->size, &ao.tee, im->err);
	const char *parent = i == 0	     ? NULL
			     : p->job[i - 1] ? snap_layer_job_key(p->job[i - 1])
					     : im->chain[i - 1];
	if (r >= 0)
		r = snap_layer_job_new(im->s, parent, im->chain[i], &ao, &p->job[i], im->err);
	if (r == -EEXIST && made_meanwhile(im, im->chain[i])) {
		/* Stored without its blob (the tee was dropped): that is read below. */
		sc_debug("import: layer %zu is stored by another import already", i + 1);
		p->job[i] = NULL;
		r = 0;
	}
	return r;
}

/*
 * Every layer whose snapshot is missing is applied as a job (snap_layer_job_new):
 * first every job is made (on overlay; the other drivers copy the parent's
 * tree when a job is made, so there each is made after the one below is
 * unpacked), then each is unpacked, its sync starting as the next one
 * unpacks, and only once all are synced are they committed, in order. So
 * no metadata transaction waits for file data (ext4's ordered mode makes a
 * transaction's sync write the data before it). If another import commits
 * one of our layers first, ours goes with the jobs above it, and *again
 * asks for another pass.
 */
static int
apply_layers(struct importer *im, bool *again)
{
	struct layer_pass p;
	for (size_t i = 0; i < im->nlayers; i++) {
		p.job[i] = NULL;
		p.fd[i] = -EBADF;
	}
	bool overlay = strcmp(snap_store_driver_name(im->s), "overlay") == 0;
	size_t i = 0, failed = 0;
	/*
	 * What is here already joins the lease in the same transaction that
	 * finds it, so no collection can take it from under us; what is not
	 * is made below, joining the lease as it is made. One transaction for
	 * every layer's snapshot and blob (the docker form's blob digests are
	 * not known yet).
	 */
	const char *types[2 * SNAP_IMAGE_LAYERS_MAX], *names[2 * SNAP_IMAGE_LAYERS_MAX];
	bool present[2 * SNAP_IMAGE_LAYERS_MAX] = {false};
	size_t n = 0;
	for (i = 0; i < im->nlayers; i++) {
		types[n] = "snapshot";
		names[n++] = im->chain[i];
		if (!im->docker) {
			types[n] = "blob";
			names[n++] = im->layers[i].digest;
		}
	}
	int r = snap_lease_attach_present(im->s, im->lease.id, types, names, n, present, im->err);
	if (r < 0)
		return r;
	for (i = 0; r >= 0 && i < im->nlayers; i++) {
		failed = i;
		struct img_desc *d = &im->layers[i];
		size_t k = im->docker ? i : 2 * i;
		p.have_snap[i] = present[k];
		p.have_blob[i] = !im->docker && present[k + 1];
		if (!p.have_snap[i] || !p.have_blob[i]) {
			if (p.have_blob[i])
				r = snap_content_open(im->s, d->digest, &p.fd[i], NULL, im->err);
			else if ((p.fd[i] = img_open_beneath(im->dirfd, im->layer_paths[i],
							     O_RDONLY)) < 0)
				r = sc_err_setsys(im->err, p.fd[i], "cannot open layer '%s'",
						  im->layer_paths[i]);
		}
		if (r >= 0 && !p.have_snap[i] && overlay)
			r = new_job(im, &p, i);
	}
	for (i = 0; r >= 0 && i < im->nlayers; i++) {
		failed = i;
		if (!p.have_snap[i] && !overlay)
			r = new_job(im, &p, i);
		if (r >= 0 && p.job[i])
			r = snap_layer_job_unpack(p.job[i], p.fd[i], im->err);
	}
	for (i = 0; r >= 0 && i < im->nlayers; i++) {
		failed = i;
		if (p.job[i])
			r = snap_layer_job_synced(p.job[i], im->err);
	}
	for (i = 0; r >= 0 && i < im->nlayers; i++) {
		failed = i;
		struct img_desc *d = &im->layers[i];
		if (p.job[i]) {
			struct snap_layer_apply_result res = {0};
			r = snap_layer_job_commit(p.job[i], &res, im->err);
			if (r >= 0)
				p.job[i] = NULL;
			else if (r == -EEXIST && made_meanwhile(im, im->chain[i])) {
				sc_debug("import: layer %zu was committed by another import "
					 "meanwhile; ours goes, the layers above are applied again",
					 i + 1);
				*again = true; /* ours goes below, with what is on it */
			}
			/* The blob is stored: our tee's, also when the commit found the other. */
			if (r >= 0 || *again)
				r = layer_stored(im, i, &res);
			if (*again)
				break;
			continue;
		}
		if (!p.have_blob[i]) {
			enum snap_compression c = SNAP_COMPRESSION_NONE;
			r = store_layer(im, i, p.fd[i], &c);
			if (r >= 0 && im->docker)
				snprintf(d->media_type, sizeof(d->media_type), "%s",
					 snap_compression_media_type(c, true));
		} else {
			r = verify_stored_layer(im, i);
		}
		if (r >= 0)
			r = layer_stored(im, i, NULL);
	}
	/* What was not committed goes, the jobs on top first. */
	for (i = im->nlayers; i-- > 0;) {
		snap_layer_job_cancel(p.job[i]);
		if (p.fd[i] >= 0)
			close(p.fd[i]);
	}
	return r < 0 ? layer_error(im, failed, r) : 0;
}

static int
unpack_layers(struct importer *im)
{
	/* Each pass that must start again has one more layer stored by another import. */
	for (size_t pass = 0; pass <= im->nlayers; pass++) {
		bool again = false;
		int r = apply_layers(im, &again);
		if (r < 0 || !again)
			return r;
	}
	return sc_err_set(im->err, -EAGAIN,
			  "other imports kept storing this image's layers first; try again");
}

/* The docker form has no manifest: write the OCI one it implies. */
static int
make_manifest(struct importer *im)
{
	struct json_object *m = json_object_new_object();
	json_object_object_add(m, "schemaVersion", json_object_new_int(2));
	json_object_object_add(m, "mediaType", json_object_new_string(SNAP_MT_OCI_MANIFEST));
	json_object_object_add(m, "config", img_desc_json(&im->config));
	struct json_object *ls = json_object_new_array();
	for (size_t i = 0; i < im->nlayers; i++)
		json_object_array_add(ls, img_desc_json(&im->layers[i]));
	json_object_object_add(m, "layers", ls);
	const char *js = json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN |
								   JSON_C_TO_STRING_NOSLASHESCAPE);
	im->manifest_buf = js ? strdup(js) : NULL;
	json_object_put(m);
	if (!im->manifest_buf)
		return sc_err_set(im->err, -ENOMEM, "out of memory");
	im->manifest_len = strlen(im->manifest_buf);
	snprintf(im->manifest.media_type, sizeof(im->manifest.media_type), SNAP_MT_OCI_MANIFEST);
	sc_sha256_buf(im->manifest_buf, im->manifest_len, im->manifest.digest);
	im->manifest.size = (int64_t)im->manifest_len;
	im->target = im->manifest;
	return 0;
}

static int
put_doc(struct importer *im, const char *buf, size_t len, const struct img_desc *d)
{
	char got[SC_DIGEST_STR_LEN + 1];
	int r = snap_content_put(im->s, buf, len, d->media_type, got, im->err);
	if (r < 0)
		return r;
	if (strcmp(got, d->digest) != 0)
		return sc_err_set(im->err, -EBADMSG, "%s stored as %s", d->digest, got);
	return snap_lease_add(im->s, im->lease.id, "blob", got, im->err);
}

static int
import_dir(struct importer *im, struct snap_image_info *ret)
{
	int r;
	if (faccessat(im->dirfd, "index.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		r = load_oci(im);
	else if (faccessat(im->dirfd, "manifest.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		r = load_docker(im);
	else
		r = sc_err_set(im->err, -EINVAL,
			       "neither an OCI image layout (no index.json) nor a docker save "
			       "archive (no manifest.json)");
	if (r >= 0 && im->opts->name)
		snprintf(im->name, sizeof(im->name), "%s", im->opts->name);
	/* An archive that names no image: its id (the config's digest) names it, as docker load
	 * does. */
	if (r >= 0 && !im->name[0])
		snprintf(im->name, sizeof(im->name), "%s", im->config.digest);
	if (r >= 0)
		r = snap_image_name_validate(im->name, im->err);
	if (r >= 0)
		r = check_layers(im);
	if (r >= 0)
		r = snap_lease_create(im->s, NULL, 0, getpid(), &im->lease, im->err);
	/* Everything made from here on joins the lease in the transaction that makes it. */
	if (r >= 0)
		r = snap_store_use_lease(im->s, im->lease.id);
	if (r >= 0)
		r = unpack_layers(im);
	if (r >= 0 && im->docker)
		r = make_manifest(im);
	if (r >= 0)
		r = put_doc(im, im->config_buf, im->config_len, &im->config);
	if (r >= 0)
		r = put_doc(im, im->manifest_buf, im->manifest_len, &im->manifest);
	if (r >= 0 && im->index_buf)
		r = put_doc(im, im->index_buf, im->index_len, &im->target);
	if (r < 0)
		return r;

	const char *layers[SNAP_IMAGE_LAYERS_MAX], *snaps[SNAP_IMAGE_LAYERS_MAX];
	uint64_t size = (uint64_t)im->manifest.size + (uint64_t)im->config.size;
	for (size_t i = 0; i < im->nlayers; i++) {
		layers[i] = im->layers[i].digest;
		snaps[i] = im->chain[i];
		size += (uint64_t)im->layers[i].size;
	}
	uint64_t now = sc_now_ns();
	struct img_commit c = {
		.info =
			{
				.name = im->name,
				.target_media_type = im->target.media_type,
				.platform = im->cfg_platform,
				.snapshot = im->nlayers ? im->chain[im->nlayers - 1] : "",
				.created = now,
				.updated = now,
				.size = size,
				.nlayers = (uint32_t)im->nlayers,
			},
		.index = im->index_buf ? im->target.digest : NULL,
		.layers = layers,
		.snapshots = snaps,
		.nlayers = im->nlayers,
	};
	memcpy(c.info.target, im->target.digest, sizeof(c.info.target));
	memcpy(c.info.manifest, im->manifest.digest, sizeof(c.info.manifest));
	memcpy(c.info.config, im->config.digest, sizeof(c.info.config));
	r = img_commit(im->s, &c, im->err);
	if (r >= 0 && ret) {
		r = snap_image_get(im->s, im->name, ret, im->err);
		memcpy(ret->moved_from, c.moved_from, sizeof(ret->moved_from));
	}
	return r;
}

int
snap_image_import(struct snap_store *s, const char *path, const struct snap_image_import_opts *opts,
		  struct snap_image_info *ret, struct sc_err *err)
{
	struct snap_image_import_opts none = {0};
	if (!opts)
		opts = &none;
	if (opts->name) {
		int r = snap_image_name_validate(opts->name, err);
		if (r < 0)
			return r;
	}
	struct importer *im = calloc(1, sizeof(*im));
	if (!im)
		return sc_err_set(err, -ENOMEM, "out of memory");
	im->s = s;
	im->opts = opts;
	im->err = err;
	im->platform = opts->platform ? opts->platform : PLATFORM_DEFAULT;
	im->dirfd = -EBADF;
	char tmp_abs[PATH_MAX] = "", tmp_rel[PATH_MAX] = "";
	int r = 0;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = sc_err_setsys(err, -errno, "cannot open '%s'", path);
	} else if (S_ISDIR(st.st_mode)) {
		im->dirfd = TAKE_FD(fd);
	} else {
		/* An archive: unpack it privately, under the same limits as a layer. */
		r = snap_store_mktemp(s, "import", tmp_abs, tmp_rel, err);
		if (r >= 0) {
			im->dirfd = open(tmp_abs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (im->dirfd < 0)
				r = sc_err_setsys(err, -errno, "cannot open '%s'", tmp_abs);
		}
		if (r >= 0) {
			struct snap_layer_apply_opts ao = {.limits = opts->limits,
							   .files_only = true};
			r = snap_layer_unpack(fd, im->dirfd, false, &ao, NULL, NULL, NULL, err);
			if (r < 0)
				sc_err_prefix(err, r, "cannot unpack the archive");
		}
	}
	if (r >= 0)
		r = import_dir(im, ret);
	if (im->dirfd >= 0)
		close(im->dirfd);
	importer_clear(im);
	free(im);
	if (tmp_rel[0]) {
		snap_store_trash(s, tmp_rel);
		snap_store_empty_trash(s);
	}
	return r < 0 ? sc_err_prefix(err, r, "import '%s'", path) : 0;
}
