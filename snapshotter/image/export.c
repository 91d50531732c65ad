/*
 * Image export. oci: an OCI image layout (tar, or a folder with tar=false);
 * docker: a `docker save` archive (manifest.json and repositories) that is
 * also an OCI layout; tar: the flattened root file system as a tar; local:
 * the flattened root file system as files.
 *
 * Layouts are deterministic: entries in a fixed order, owner 0, mode 0644
 * (folders 0755), and one time for every header (SOURCE_DATE_EPOCH, else
 * 0), so the same image always exports to the same bytes. Blobs are copied
 * from the content store as they are: an image keeps its digests across an
 * import and export, unless the media types have to change family (then the
 * manifest, and only the manifest, is rewritten).
 */
#include "layer/archive-lib.h"
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
#include "copy.h"
#include "image-internal.h"
#include "mount.h"
#include "store-internal.h"
#include "util.h"

const char *
snap_export_type_to_string(enum snap_export_type t)
{
	static const char *const names[] = {"oci", "docker", "tar", "local"};
	return (unsigned)t < ARRAY_SIZE(names) ? names[t] : NULL;
}

int
snap_export_type_from_string(const char *s)
{
	for (int t = 0; t < _SNAP_EXPORT_TYPE_MAX; t++)
		if (strcmp(s, snap_export_type_to_string(t)) == 0)
			return t;
	return -EINVAL;
}

static int
parse_bool(const char *v, bool *ret)
{
	if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
		*ret = true;
	else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
		*ret = false;
	else
		return -EINVAL;
	return 0;
}

int
snap_image_export_opts_parse(const char *spec, struct snap_image_export_opts *ret,
			     struct sc_err *err)
{
	/* dest points into a copy that lives as long as the process: parsed once per command. */
	static char *copy;
	free(copy);
	copy = strdup(spec);
	if (!copy)
		return sc_err_set(err, -ENOMEM, "out of memory");
	struct snap_image_export_opts o = {.type = -1, .tar = true, .oci_media_types = true};
	char *save = NULL;
	for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		if (!eq)
			return sc_err_set(err, -EINVAL, "export option '%s' is not KEY=VALUE", kv);
		*eq = '\0';
		const char *v = eq + 1;
		if (strcmp(kv, "type") == 0) {
			o.type = snap_export_type_from_string(v);
			if ((int)o.type < 0)
				return sc_err_set(
					err, -EINVAL,
					"export type '%s' is not oci, docker, tar or local", v);
		} else if (strcmp(kv, "dest") == 0) {
			o.dest = v;
		} else if (strcmp(kv, "tar") == 0) {
			if (parse_bool(v, &o.tar) < 0)
				return sc_err_set(err, -EINVAL, "tar='%s' is not true or false", v);
		} else if (strcmp(kv, "oci-mediatypes") == 0) {
			if (parse_bool(v, &o.oci_media_types) < 0)
				return sc_err_set(err, -EINVAL,
						  "oci-mediatypes='%s' is not true or false", v);
		} else {
			return sc_err_set(err, -EINVAL,
					  "unknown export option '%s' (type, dest, tar, "
					  "oci-mediatypes)",
					  kv);
		}
	}
	if ((int)o.type < 0)
		return sc_err_set(err, -EINVAL, "export needs type=oci|docker|tar|local");
	if (!o.dest || !*o.dest)
		return sc_err_set(err, -EINVAL, "export needs dest=PATH");
	if (o.type == SNAP_EXPORT_DOCKER)
		o.tar = true;
	if (o.type == SNAP_EXPORT_LOCAL && strcmp(o.dest, "-") == 0)
		return sc_err_set(err, -EINVAL, "type=local writes files: dest must be a folder");
	*ret = o;
	return 0;
}

/* Where a layout goes: a tar (through libarchive) or a folder. */
struct out {
	bool tar;
	int fd;	   /* the tar file */
	int dirfd; /* the folder */
	struct archive *a;
	struct archive_entry *e;
	time_t mtime;
	struct sc_err *err;
	uint8_t *buf;
};

static int
out_archive_error(struct out *o, const char *what)
{
	const char *m = archive_error_string(o->a);
	int e = archive_errno(o->a);
	return sc_err_set(o->err, e > 0 ? -e : -EIO, "%s: %s", what, m ? m : "tar write failed");
}

static void
out_entry(struct out *o, const char *path, mode_t mode, int64_t size)
{
	archive_entry_clear(o->e);
	archive_entry_set_pathname(o->e, path);
	archive_entry_set_mode(o->e, mode);
	archive_entry_set_size(o->e, size);
	archive_entry_set_mtime(o->e, o->mtime, 0);
	archive_entry_set_uid(o->e, 0);
	archive_entry_set_gid(o->e, 0);
}

static int
out_dir(struct out *o, const char *path)
{
	if (!o->tar) {
		if (mkdirat(o->dirfd, path, 0755) < 0 && errno != EEXIST)
			return sc_err_setsys(o->err, -errno, "cannot create '%s'", path);
		return 0;
	}
	out_entry(o, path, S_IFDIR | 0755, 0);
	if (archive_write_header(o->a, o->e) != ARCHIVE_OK)
		return out_archive_error(o, path);
	return 0;
}

/* Writes a file from a buffer (data) or from fd (size bytes). */
static int
out_file(struct out *o, const char *path, const void *data, int fd, uint64_t size)
{
	_cleanup_close_ int dst = -EBADF;
	if (o->tar) {
		out_entry(o, path, S_IFREG | 0644, (int64_t)size);
		if (archive_write_header(o->a, o->e) != ARCHIVE_OK)
			return out_archive_error(o, path);
	} else {
		dst = openat(o->dirfd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (dst < 0)
			return sc_err_setsys(o->err, -errno, "cannot create '%s'", path);
	}
	if (data) {
		if (o->tar) {
			if (archive_write_data(o->a, data, size) != (la_ssize_t)size)
				return out_archive_error(o, path);
			return 0;
		}
		const uint8_t *p = data;
		for (uint64_t left = size; left > 0;) {
			ssize_t n = SC_RETRY_EINTR(write(dst, p, left));
			if (n < 0)
				return sc_err_setsys(o->err, -errno, "cannot write '%s'", path);
			p += n;
			left -= (uint64_t)n;
		}
		return 0;
	}
	uint64_t left = size;
	if (!o->tar) {
		/* Same file system: copy_file_range may share the blocks. */
		while (left > 0) {
			ssize_t n = copy_file_range(fd, NULL, dst, NULL, left, 0);
			if (n <= 0)
				break;
			left -= (uint64_t)n;
		}
	}
	while (left > 0) {
		ssize_t n = SC_RETRY_EINTR(read(fd, o->buf, left < (1u << 20) ? left : (1u << 20)));
		if (n < 0)
			return sc_err_setsys(o->err, -errno, "cannot read blob for '%s'", path);
		if (n == 0)
			return sc_err_set(o->err, -EIO, "blob for '%s' is shorter than its record",
					  path);
		if (o->tar) {
			if (archive_write_data(o->a, o->buf, (size_t)n) != n)
				return out_archive_error(o, path);
		} else {
			const uint8_t *p = o->buf;
			for (ssize_t l = n; l > 0;) {
				ssize_t w = SC_RETRY_EINTR(write(dst, p, (size_t)l));
				if (w < 0)
					return sc_err_setsys(o->err, -errno, "cannot write '%s'",
							     path);
				p += w;
				l -= w;
			}
		}
		left -= (uint64_t)n;
	}
	return 0;
}

static int
out_blob(struct snap_store *s, struct out *o, const char *digest)
{
	char path[128];
	snprintf(path, sizeof(path), "blobs/sha256/%s", digest + 7);
	_cleanup_close_ int fd = -EBADF;
	uint64_t size = 0;
	int r = snap_content_open(s, digest, &fd, &size, o->err);
	if (r < 0)
		return r;
	return out_file(o, path, NULL, fd, size);
}

static time_t
export_mtime(void)
{
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	if (sde && *sde) {
		char *end;
		long long v = strtoll(sde, &end, 10);
		if (!*end && v >= 0)
			return (time_t)v;
	}
	return 0;
}

/* The media type of the other family, or NULL when there is none. */
static const char *
mt_convert(const char *mt, bool to_oci)
{
	static const char *const pairs[][2] = {
		{SNAP_MT_OCI_MANIFEST, SNAP_MT_DOCKER_MANIFEST},
		{SNAP_MT_OCI_INDEX, SNAP_MT_DOCKER_LIST},
		{SNAP_MT_OCI_CONFIG, SNAP_MT_DOCKER_CONFIG},
		{"application/vnd.oci.image.layer.v1.tar+gzip",
		 "application/vnd.docker.image.rootfs.diff.tar.gzip"},
		{"application/vnd.oci.image.layer.v1.tar",
		 "application/vnd.docker.image.rootfs.diff.tar"},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		 "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(pairs); i++) {
		if (strcmp(mt, pairs[i][to_oci ? 0 : 1]) == 0)
			return mt;
		if (strcmp(mt, pairs[i][to_oci ? 1 : 0]) == 0)
			return pairs[i][to_oci ? 0 : 1];
	}
	return NULL;
}

struct exp_image {
	char *manifest_buf;
	size_t manifest_len;
	struct img_desc manifest; /* as exported (rewritten when the family changed) */
	struct img_desc config;
	size_t nlayers;
	struct img_desc layers[SNAP_IMAGE_LAYERS_MAX];
};

/* Reads the manifest and, when the family must change, rewrites it. */
static int
load_for_export(struct snap_store *s, const struct snap_image_info *info, bool oci,
		struct exp_image *x, struct sc_err *err)
{
	int r = snap_content_read_all(s, info->manifest, SNAP_IMAGE_JSON_MAX, &x->manifest_buf,
				      &x->manifest_len, err);
	if (r < 0)
		return r;
	_cleanup_(img_json_putp) struct json_object *m = NULL;
	r = img_json_parse(x->manifest_buf, x->manifest_len, "manifest", &m, err);
	if (r < 0)
		return r;
	struct json_object *cfg, *layers;
	if (!json_object_object_get_ex(m, "config", &cfg) ||
	    !json_object_object_get_ex(m, "layers", &layers) ||
	    !json_object_is_type(layers, json_type_array) ||
	    json_object_array_length(layers) > SNAP_IMAGE_LAYERS_MAX)
		return sc_err_set(err, -EINVAL, "manifest %s is damaged; run 'snapctl check'",
				  info->manifest);
	r = img_desc_parse(cfg, "config", &x->config, err);
	for (size_t i = 0; r >= 0 && i < json_object_array_length(layers); i++) {
		r = img_desc_parse(json_object_array_get_idx(layers, i), "layer", &x->layers[i],
				   err);
		x->nlayers++;
	}
	if (r < 0)
		return r;
	const char *mmt = img_json_str(m, "mediaType");
	snprintf(x->manifest.media_type, sizeof(x->manifest.media_type), "%s",
		 mmt ? mmt : SNAP_MT_OCI_MANIFEST);
	memcpy(x->manifest.digest, info->manifest, sizeof(x->manifest.digest));
	x->manifest.size = (int64_t)x->manifest_len;
	if (img_media_type_is_oci(x->manifest.media_type) == oci)
		return 0;

	/* Rewrite with the other family's media types; the blobs stay the same. */
	struct img_desc *all[SNAP_IMAGE_LAYERS_MAX + 2];
	size_t n = 0;
	all[n++] = &x->manifest;
	all[n++] = &x->config;
	for (size_t i = 0; i < x->nlayers; i++)
		all[n++] = &x->layers[i];
	for (size_t i = 0; i < n; i++) {
		const char *c = mt_convert(all[i]->media_type, oci);
		if (!c)
			return sc_err_set(err, -EOPNOTSUPP,
					  "media type '%s' has no %s equivalent; export with "
					  "oci-mediatypes=%s",
					  all[i]->media_type, oci ? "OCI" : "Docker",
					  oci ? "false" : "true");
		snprintf(all[i]->media_type, sizeof(all[i]->media_type), "%s", c);
	}
	struct json_object *nm = json_object_new_object();
	json_object_object_add(nm, "schemaVersion", json_object_new_int(2));
	json_object_object_add(nm, "mediaType", json_object_new_string(x->manifest.media_type));
	json_object_object_add(nm, "config", img_desc_json(&x->config));
	struct json_object *ls = json_object_new_array();
	for (size_t i = 0; i < x->nlayers; i++)
		json_object_array_add(ls, img_desc_json(&x->layers[i]));
	json_object_object_add(nm, "layers", ls);
	const char *js = json_object_to_json_string_ext(nm, JSON_C_TO_STRING_PLAIN |
								    JSON_C_TO_STRING_NOSLASHESCAPE);
	free(x->manifest_buf);
	x->manifest_buf = js ? strdup(js) : NULL;
	json_object_put(nm);
	if (!x->manifest_buf)
		return sc_err_set(err, -ENOMEM, "out of memory");
	x->manifest_len = strlen(x->manifest_buf);
	x->manifest.size = (int64_t)x->manifest_len;
	sc_sha256_buf(x->manifest_buf, x->manifest_len, x->manifest.digest);
	return 0;
}

static char *
json_dump(struct json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								  JSON_C_TO_STRING_NOSLASHESCAPE);
	char *r = s ? strdup(s) : NULL;
	json_object_put(o);
	return r;
}

static int
write_layout(struct snap_store *s, const struct snap_image_info *info,
	     const struct snap_image_export_opts *opts, struct out *o, struct exp_image *x)
{
	char repo[SNAP_IMAGE_NAME_MAX + 1], tag[SNAP_IMAGE_NAME_MAX + 1];
	img_name_split(info->name, repo, sizeof(repo), tag, sizeof(tag));
	struct img_desc top = x->manifest;
	bool named = info->name && info->name[0]; /* a build's result may have no name */
	if (named) {
		snprintf(top.image_name, sizeof(top.image_name), "%s", info->name);
		snprintf(top.ref_name, sizeof(top.ref_name), "%s", tag);
	}

	struct json_object *idx = json_object_new_object();
	json_object_object_add(idx, "schemaVersion", json_object_new_int(2));
	json_object_object_add(idx, "mediaType", json_object_new_string(SNAP_MT_OCI_INDEX));
	struct json_object *ms = json_object_new_array();
	json_object_array_add(ms, img_desc_json(&top));
	json_object_object_add(idx, "manifests", ms);
	_cleanup_free_ char *index = json_dump(idx);
	static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
	_cleanup_free_ char *manifest_json = NULL, *repositories = NULL;
	if (opts->type == SNAP_EXPORT_DOCKER) {
		char full[SNAP_IMAGE_NAME_MAX + 16];
		snprintf(full, sizeof(full), "%s:%s", repo, tag);
		struct json_object *arr = json_object_new_array(), *e = json_object_new_object();
		char p[128];
		snprintf(p, sizeof(p), "blobs/sha256/%s", x->config.digest + 7);
		json_object_object_add(e, "Config", json_object_new_string(p));
		struct json_object *tags = json_object_new_array();
		if (named)
			json_object_array_add(tags, json_object_new_string(full));
		json_object_object_add(e, "RepoTags", tags);
		struct json_object *ls = json_object_new_array();
		for (size_t i = 0; i < x->nlayers; i++) {
			snprintf(p, sizeof(p), "blobs/sha256/%s", x->layers[i].digest + 7);
			json_object_array_add(ls, json_object_new_string(p));
		}
		json_object_object_add(e, "Layers", ls);
		json_object_array_add(arr, e);
		manifest_json = json_dump(arr);
		struct json_object *rp = json_object_new_object(), *t = json_object_new_object();
		if (x->nlayers)
			json_object_object_add(
				t, tag,
				json_object_new_string(x->layers[x->nlayers - 1].digest + 7));
		json_object_object_add(rp, repo, t);
		repositories = named ? json_dump(rp) : strdup("{}");
		json_object_put(named ? NULL : rp);
		if (!manifest_json || !repositories)
			return sc_err_set(o->err, -ENOMEM, "out of memory");
	}
	if (!index)
		return sc_err_set(o->err, -ENOMEM, "out of memory");
	int r = out_file(o, "oci-layout", layout, -1, strlen(layout));
	if (r >= 0)
		r = out_file(o, "index.json", index, -1, strlen(index));
	if (r >= 0 && manifest_json)
		r = out_file(o, "manifest.json", manifest_json, -1, strlen(manifest_json));
	if (r >= 0 && repositories)
		r = out_file(o, "repositories", repositories, -1, strlen(repositories));
	if (r >= 0)
		r = out_dir(o, "blobs");
	if (r >= 0)
		r = out_dir(o, "blobs/sha256");
	if (r >= 0) {
		char p[128];
		snprintf(p, sizeof(p), "blobs/sha256/%s", x->manifest.digest + 7);
		r = out_file(o, p, x->manifest_buf, -1, x->manifest_len);
	}
	if (r >= 0)
		r = out_blob(s, o, x->config.digest);
	for (size_t i = 0; i < x->nlayers && r >= 0; i++) {
		bool dup = false;
		for (size_t j = 0; j < i; j++)
			dup |= strcmp(x->layers[i].digest, x->layers[j].digest) == 0;
		if (!dup)
			r = out_blob(s, o, x->layers[i].digest);
	}
	return r;
}

/* A folder destination: missing (made here) or empty. */
static int
make_dest_dir(const char *dest, struct sc_err *err)
{
	if (mkdir(dest, 0755) == 0)
		return 0;
	if (errno != EEXIST)
		return sc_err_setsys(err, -errno, "cannot create '%s'", dest);
	_cleanup_closedir_ DIR *d = opendir(dest);
	if (!d)
		return sc_err_setsys(err, -errno, "'%s' exists and is not a readable folder", dest);
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			return sc_err_set(err, -EEXIST,
					  "'%s' is not empty; export into a new or empty folder",
					  dest);
	return 0;
}

static int
open_dest_file(const char *dest, struct sc_err *err)
{
	if (strcmp(dest, "-") == 0)
		return fcntl(1, F_DUPFD_CLOEXEC, 3);
	int fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return sc_err_setsys(err, -errno, "cannot create '%s'", dest);
	return fd;
}

static int
export_layout(struct snap_store *s, const struct snap_image_info *info,
	      const struct snap_image_export_opts *opts, struct sc_err *err)
{
	struct exp_image *x = calloc(1, sizeof(*x));
	if (!x)
		return sc_err_set(err, -ENOMEM, "out of memory");
	struct out o = {.tar = opts->tar,
			.fd = -EBADF,
			.dirfd = -EBADF,
			.mtime = export_mtime(),
			.err = err};
	o.buf = malloc(1u << 20);
	int r = o.buf ? 0 : sc_err_set(err, -ENOMEM, "out of memory");
	if (r >= 0)
		r = load_for_export(s, info,
				    opts->oci_media_types && opts->type != SNAP_EXPORT_DOCKER
					    ? true
					    : opts->oci_media_types,
				    x, err);
	if (r >= 0 && o.tar) {
		o.fd = open_dest_file(opts->dest, err);
		r = o.fd < 0 ? o.fd : 0;
		o.a = archive_write_new();
		o.e = archive_entry_new();
		if (r >= 0 && (!o.a || !o.e))
			r = sc_err_set(err, -ENOMEM, "out of memory");
		if (r >= 0) {
			archive_write_set_format_pax_restricted(o.a);
			archive_write_set_bytes_in_last_block(o.a, 1);
			if (archive_write_open_fd(o.a, o.fd) != ARCHIVE_OK)
				r = out_archive_error(&o, opts->dest);
		}
	} else if (r >= 0) {
		r = make_dest_dir(opts->dest, err);
		if (r >= 0) {
			o.dirfd = open(opts->dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (o.dirfd < 0)
				r = sc_err_setsys(err, -errno, "cannot open '%s'", opts->dest);
		}
	}
	if (r >= 0)
		r = write_layout(s, info, opts, &o, x);
	if (o.a) {
		if (r >= 0 && archive_write_close(o.a) != ARCHIVE_OK)
			r = out_archive_error(&o, opts->dest);
		archive_write_free(o.a);
	}
	if (o.e)
		archive_entry_free(o.e);
	if (r >= 0 && o.fd >= 0 && strcmp(opts->dest, "-") != 0 && fsync(o.fd) < 0)
		r = sc_err_setsys(err, -errno, "cannot sync '%s'", opts->dest);
	if (o.fd >= 0)
		close(o.fd);
	if (o.dirfd >= 0) {
		if (r >= 0 && syncfs(o.dirfd) < 0)
			r = sc_err_setsys(err, -errno, "cannot sync '%s'", opts->dest);
		close(o.dirfd);
	}
	free(o.buf);
	free(x->manifest_buf);
	free(x);
	return r;
}

static int
fd_sink(void *arg, const void *data, size_t len, struct sc_err *err)
{
	int fd = *(int *)arg;
	const uint8_t *p = data;
	while (len > 0) {
		ssize_t n = SC_RETRY_EINTR(write(fd, p, len));
		if (n < 0)
			return sc_err_setsys(err, -errno, "cannot write the tar");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The image's root file system as a folder: native shows it, overlay mounts a view. */
struct rootfs {
	char dir[PATH_MAX];
	char view[96];
	char mnt_rel[PATH_MAX];
	bool mounted;
};

static int
rootfs_open(struct snap_store *s, const struct snap_image_info *info, struct rootfs *rf,
	    struct sc_err *err)
{
	if (!info->snapshot[0]) {
		/* No layers: an empty folder. */
		char abs[PATH_MAX];
		int r = snap_store_mktemp(s, "export", abs, rf->mnt_rel, err);
		if (r >= 0)
			snprintf(rf->dir, sizeof(rf->dir), "%s", abs);
		return r;
	}
	struct snap_info sn = {0};
	int r = snap_snapshot_stat(s, info->snapshot, &sn, err);
	if (r < 0)
		return sc_err_prefix(err, r, "image '%s'", info->name);
	uint64_t id = sn.id;
	snap_info_clear(&sn);
	if (strcmp(snap_store_driver_name(s), "overlay") != 0) {
		snprintf(rf->dir, sizeof(rf->dir), "%s/snapshots/%" PRIu64 "/fs",
			 snap_store_root(s), id);
		return 0;
	}
	char rnd[17];
	sc_random_hex(rnd, 8);
	snprintf(rf->view, sizeof(rf->view), "export.%d.%s", (int)getpid(), rnd);
	const struct snap_prepare_opts po = {.owned = true};
	r = snap_snapshot_prepare(s, rf->view, info->snapshot, SNAP_KIND_VIEW, &po, NULL, err);
	if (r < 0) {
		rf->view[0] = '\0';
		return r;
	}
	r = snap_store_mktemp(s, "export", rf->dir, rf->mnt_rel, err);
	struct snap_mounts m = {0};
	if (r >= 0)
		r = snap_snapshot_mounts(s, rf->view, &m, err);
	if (r >= 0)
		r = snap_mounts_apply(&m, rf->dir, err);
	snap_mounts_clear(&m);
	rf->mounted = r >= 0;
	return r;
}

static void
rootfs_close(struct snap_store *s, struct rootfs *rf)
{
	if (rf->mounted)
		snap_mount_remove(rf->dir, NULL);
	if (rf->view[0])
		snap_snapshot_remove(s, rf->view, NULL);
	if (rf->mnt_rel[0]) {
		snap_store_trash(s, rf->mnt_rel);
		snap_store_empty_trash(s);
	}
}

static int
export_rootfs(struct snap_store *s, const struct snap_image_info *info,
	      const struct snap_image_export_opts *opts, struct sc_err *err)
{
	struct rootfs rf = {0};
	int r = rootfs_open(s, info, &rf, err);
	if (r >= 0 && opts->type == SNAP_EXPORT_TAR) {
		struct snap_layer_diff_opts dopts;
		snap_layer_diff_opts_init(&dopts);
		dopts.compression = SNAP_COMPRESSION_NONE;
		int fd = open_dest_file(opts->dest, err);
		r = fd;
		if (fd >= 0) {
			r = snap_layer_write_tree(rf.dir, NULL, false, &dopts, fd_sink, &fd, NULL,
						  err);
			if (r >= 0 && strcmp(opts->dest, "-") != 0 && fsync(fd) < 0)
				r = sc_err_setsys(err, -errno, "cannot sync '%s'", opts->dest);
			close(fd);
		}
	} else if (r >= 0) {
		struct stat st;
		if (stat(opts->dest, &st) == 0) {
			r = make_dest_dir(opts->dest, err); /* must be empty */
			if (r >= 0 && rmdir(opts->dest) < 0)
				r = sc_err_setsys(err, -errno, "cannot replace '%s'", opts->dest);
		}
		if (r >= 0)
			r = snap_copy_tree(AT_FDCWD, rf.dir, AT_FDCWD, opts->dest, NULL, NULL, err);
	}
	rootfs_close(s, &rf);
	return r;
}

int
snap_image_export_info(struct snap_store *s, const struct snap_image_info *info,
		       const struct snap_image_export_opts *opts, struct sc_err *err)
{
	int r = snap_archive_load(err);
	if (r < 0)
		return r;
	if (opts->type == SNAP_EXPORT_OCI || opts->type == SNAP_EXPORT_DOCKER)
		return export_layout(s, info, opts, err);
	return export_rootfs(s, info, opts, err);
}

int
snap_image_export(struct snap_store *s, const char *name, const struct snap_image_export_opts *opts,
		  struct sc_err *err)
{
	struct snap_image_info info = {0};
	int r = snap_image_get(s, name, &info, err);
	if (r < 0)
		return r;
	r = snap_image_export_info(s, &info, opts, err);
	snap_image_info_clear(&info);
	return r < 0 ? sc_err_prefix(err, r, "export '%s' as %s", name,
				     snap_export_type_to_string(opts->type))
		     : 0;
}
