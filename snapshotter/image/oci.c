/*
 * OCI and Docker v2 schema 2 formats: media types, descriptors, bounded
 * reads of layout files. Both families are accepted everywhere.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"
#include "image-internal.h"

enum img_mt_kind
img_media_type_kind(const char *mt)
{
	static const struct {
		const char *mt;
		enum img_mt_kind kind;
	} known[] = {
		{SNAP_MT_OCI_INDEX, IMG_MT_INDEX},
		{SNAP_MT_DOCKER_LIST, IMG_MT_INDEX},
		{SNAP_MT_OCI_MANIFEST, IMG_MT_MANIFEST},
		{SNAP_MT_DOCKER_MANIFEST, IMG_MT_MANIFEST},
		{SNAP_MT_OCI_CONFIG, IMG_MT_CONFIG},
		{SNAP_MT_DOCKER_CONFIG, IMG_MT_CONFIG},
		{"application/vnd.oci.image.layer.v1.tar", IMG_MT_LAYER},
		{"application/vnd.oci.image.layer.v1.tar+gzip", IMG_MT_LAYER},
		{"application/vnd.oci.image.layer.v1.tar+zstd", IMG_MT_LAYER},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar", IMG_MT_LAYER},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", IMG_MT_LAYER},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", IMG_MT_LAYER},
		{"application/vnd.docker.image.rootfs.diff.tar", IMG_MT_LAYER},
		{"application/vnd.docker.image.rootfs.diff.tar.gzip", IMG_MT_LAYER},
		{"application/vnd.docker.image.rootfs.diff.tar.zstd", IMG_MT_LAYER},
		{"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", IMG_MT_LAYER},
	};
	if (!mt)
		return IMG_MT_UNKNOWN;
	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		if (strcmp(mt, known[i].mt) == 0)
			return known[i].kind;
	return IMG_MT_UNKNOWN;
}

bool
img_media_type_is_oci(const char *mt)
{
	return strncmp(mt, "application/vnd.oci.", 20) == 0;
}

int
img_json_parse(const char *buf, size_t len, const char *what, struct json_object **ret,
	       struct sc_err *err)
{
	struct json_tokener *tok = json_tokener_new_ex(64);
	if (!tok)
		return sc_err_set(err, -ENOMEM, "out of memory");
	struct json_object *o = json_tokener_parse_ex(tok, buf, (int)len);
	enum json_tokener_error je = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!o || je != json_tokener_success || used != len) {
		/* Trailing white space is fine; anything else is not. */
		bool trailing_ok = o && je == json_tokener_success;
		for (size_t i = used; trailing_ok && i < len; i++)
			trailing_ok =
				buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t';
		if (!trailing_ok) {
			json_object_put(o);
			return sc_err_set(err, -EINVAL, "%s is not valid JSON (%s)", what,
					  je != json_tokener_success ? json_tokener_error_desc(je)
								     : "trailing data");
		}
	}
	if (!json_object_is_type(o, json_type_object) && !json_object_is_type(o, json_type_array)) {
		json_object_put(o);
		return sc_err_set(err, -EINVAL, "%s is not a JSON object", what);
	}
	*ret = o;
	return 0;
}

const char *
img_json_str(struct json_object *o, const char *key)
{
	struct json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static void
copy_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

int
img_desc_parse(struct json_object *o, const char *what, struct img_desc *ret, struct sc_err *err)
{
	struct img_desc d = {0};
	if (!json_object_is_type(o, json_type_object))
		return sc_err_set(err, -EINVAL, "%s is not a descriptor object", what);
	const char *mt = img_json_str(o, "mediaType");
	const char *digest = img_json_str(o, "digest");
	struct json_object *size;
	if (mt && strlen(mt) >= sizeof(d.media_type))
		return sc_err_set(err, -EINVAL, "%s has an over-long media type", what);
	if (!digest || !sc_digest_valid(digest))
		return sc_err_set(err, -EINVAL, "%s has no sha256 digest ('%.80s')", what,
				  digest ? digest : "");
	if (!json_object_object_get_ex(o, "size", &size) ||
	    !json_object_is_type(size, json_type_int) || json_object_get_int64(size) < 0)
		return sc_err_set(err, -EINVAL, "%s has no valid size", what);
	copy_str(d.media_type, sizeof(d.media_type), mt);
	copy_str(d.digest, sizeof(d.digest), digest);
	d.size = json_object_get_int64(size);
	struct json_object *p;
	if (json_object_object_get_ex(o, "platform", &p)) {
		const char *os = img_json_str(p, "os"), *arch = img_json_str(p, "architecture");
		const char *variant = img_json_str(p, "variant");
		if (os && arch)
			snprintf(d.platform, sizeof(d.platform), "%.40s/%.40s%s%.40s", os, arch,
				 variant ? "/" : "", variant ? variant : "");
	}
	struct json_object *ann;
	if (json_object_object_get_ex(o, "annotations", &ann)) {
		const char *ref = img_json_str(ann, "org.opencontainers.image.ref.name");
		const char *name = img_json_str(ann, "io.containerd.image.name");
		/* A name is refused, never cut: a cut name could be another image's. */
		if ((ref && strlen(ref) > SNAP_IMAGE_NAME_MAX) ||
		    (name && strlen(name) > SNAP_IMAGE_NAME_MAX))
			return sc_err_set(err, -EINVAL,
					  "%s names its image with over %d bytes; give a name with "
					  "--name",
					  what, SNAP_IMAGE_NAME_MAX);
		copy_str(d.ref_name, sizeof(d.ref_name), ref);
		copy_str(d.image_name, sizeof(d.image_name), name);
	}
	*ret = d;
	return 0;
}

struct json_object *
img_desc_json(const struct img_desc *d)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "mediaType", json_object_new_string(d->media_type));
	json_object_object_add(o, "digest", json_object_new_string(d->digest));
	json_object_object_add(o, "size", json_object_new_int64(d->size));
	if (d->ref_name[0] || d->image_name[0]) {
		struct json_object *a = json_object_new_object();
		if (d->image_name[0])
			json_object_object_add(a, "io.containerd.image.name",
					       json_object_new_string(d->image_name));
		if (d->ref_name[0])
			json_object_object_add(a, "org.opencontainers.image.ref.name",
					       json_object_new_string(d->ref_name));
		json_object_object_add(o, "annotations", a);
	}
	return o;
}

static long
openat2_retry(int dirfd, const char *path, struct open_how *how)
{
	long fd;
	do
		fd = syscall(SYS_openat2, dirfd, path, how, sizeof(*how));
	while (fd < 0 && (errno == EINTR || errno == EAGAIN));
	return fd;
}

int
img_open_beneath(int dirfd, const char *path, int flags)
{
	/*
	 * Look before opening: opening a FIFO would wait for a writer forever
	 * and opening a device node reaches its driver. Only a regular file is
	 * opened, and it must still be the file looked at (O_NONBLOCK keeps a
	 * FIFO swapped in meanwhile from blocking the open).
	 */
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	long pfd = openat2_retry(dirfd, path, &how);
	if (pfd < 0)
		return -errno;
	struct stat st, st2;
	int r = fstat((int)pfd, &st) < 0 ? -errno : 0;
	close((int)pfd);
	if (r < 0)
		return r;
	if (!S_ISREG(st.st_mode))
		return -EFTYPE_NOT_FILE;
	how.flags = (uint64_t)flags | O_CLOEXEC | O_NONBLOCK;
	long fd = openat2_retry(dirfd, path, &how);
	if (fd < 0)
		return -errno;
	if (fstat((int)fd, &st2) < 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino ||
	    !S_ISREG(st2.st_mode)) {
		close((int)fd);
		return -EFTYPE_NOT_FILE;
	}
	if (!(flags & O_NONBLOCK))
		(void)fcntl((int)fd, F_SETFL, fcntl((int)fd, F_GETFL) & ~O_NONBLOCK);
	return (int)fd;
}

int
img_read_beneath(int dirfd, const char *path, size_t max, const char *what, char **ret,
		 size_t *ret_len, struct sc_err *err)
{
	_cleanup_close_ int fd = img_open_beneath(dirfd, path, O_RDONLY);
	if (fd < 0) {
		if (fd == -ENOENT)
			return sc_err_set(err, fd, "%s '%s' is missing", what, path);
		if (fd == -EXDEV)
			return sc_err_set(err, fd, "%s '%s' points outside the archive", what,
					  path);
		if (fd == -EFTYPE_NOT_FILE)
			return sc_err_set(err, fd, "%s '%s' is not a regular file", what, path);
		return sc_err_setsys(err, fd, "cannot open %s '%s'", what, path);
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return sc_err_setsys(err, -errno, "cannot stat %s '%s'", what, path);
	if (!S_ISREG(st.st_mode))
		return sc_err_set(err, -EINVAL, "%s '%s' is not a file", what, path);
	if ((uint64_t)st.st_size > max)
		return sc_err_set(err, -EFBIG, "%s '%s' is %lld bytes, over the limit of %zu bytes",
				  what, path, (long long)st.st_size, max);
	char *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return sc_err_set(err, -ENOMEM, "out of memory");
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = SC_RETRY_EINTR(read(fd, buf + got, (size_t)st.st_size - got));
		if (n <= 0) {
			free(buf);
			return sc_err_setsys(err, n < 0 ? -errno : -EIO, "cannot read %s '%s'",
					     what, path);
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	*ret = buf;
	*ret_len = got;
	return 0;
}

int
img_platform_match(const char *want, const char *have)
{
	/* "linux/arm64" matches "linux/arm64/v8"; "linux/amd64" never matches "linux/arm64". */
	size_t wl = strlen(want);
	if (strncmp(want, have, wl) != 0)
		return 0;
	return have[wl] == '\0' ? 2 : have[wl] == '/' ? 1 : 0;
}

void
img_name_split(const char *name, char *repo, size_t rlen, char *tag, size_t tlen)
{
	const char *slash = strrchr(name, '/');
	const char *colon = strrchr(slash ? slash : name, ':');
	const char *at = strchr(name, '@');
	if (at)
		colon = NULL;
	if (colon) {
		snprintf(repo, rlen, "%.*s", (int)(colon - name), name);
		snprintf(tag, tlen, "%s", colon + 1);
	} else {
		snprintf(repo, rlen, "%s", name);
		snprintf(tag, tlen, "latest");
	}
}
