/*
 * What the image files share: descriptor and JSON helpers (oci.c), safe
 * reads from a layout folder, and the one write transaction that records
 * an image with its edges (image.c).
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "err.h"
#include "image.h"

struct img_desc {
	char media_type[256];
	char digest[SC_DIGEST_STR_LEN + 1];
	int64_t size;
	char platform[128];   /* "os/arch[/variant]" or "" */
	char ref_name[256];   /* org.opencontainers.image.ref.name or "" */
	char image_name[256]; /* io.containerd.image.name or "" */
};

static inline void
img_json_putp(struct json_object **o)
{
	if (*o)
		json_object_put(*o);
}

enum img_mt_kind {
	IMG_MT_UNKNOWN,
	IMG_MT_INDEX,
	IMG_MT_MANIFEST,
	IMG_MT_CONFIG,
	IMG_MT_LAYER,
};

enum img_mt_kind img_media_type_kind(const char *mt);
bool img_media_type_is_oci(const char *mt);

/* Parses a JSON document (what names it in errors). -EINVAL if malformed or not an object. */
int img_json_parse(const char *buf, size_t len, const char *what, struct json_object **ret,
		   struct sc_err *err);
/* Parses a descriptor object. -EINVAL with a message when a field is missing or malformed. */
int img_desc_parse(struct json_object *o, const char *what, struct img_desc *ret,
		   struct sc_err *err);
/* A descriptor as a new JSON object (annotations added when the names are set). */
struct json_object *img_desc_json(const struct img_desc *d);
/* A JSON string member, or NULL. */
const char *img_json_str(struct json_object *o, const char *key);

/* What img_open_beneath returns for anything but a regular file (a FIFO, a device, a folder). */
#define EFTYPE_NOT_FILE EINVAL

/*
 * Opens the regular file path under dirfd without leaving it (symlinks
 * inside are followed). Anything else is refused before it is opened:
 * -EFTYPE_NOT_FILE.
 */
int img_open_beneath(int dirfd, const char *path, int flags);
/* Reads a whole file under dirfd of at most max bytes. -EFBIG over it. */
int img_read_beneath(int dirfd, const char *path, size_t max, const char *what, char **ret,
		     size_t *ret_len, struct sc_err *err);

/* The current platform string for matching ("linux/amd64"). */
int img_platform_match(const char *want, const char *have);

/* Everything one image record holds, written with its edges in one transaction. */
struct img_commit {
	struct snap_image_info info;
	const char *index;	/* digest or NULL */
	const char **layers;	/* layer blob digests */
	const char **snapshots; /* and their snapshots */
	size_t nlayers;
	char moved_from[SC_DIGEST_STR_LEN + 1]; /* out: the name's old target, if it moved */
};

int img_commit(struct snap_store *s, struct img_commit *c, struct sc_err *err);

/* The tag part of a name ("latest" when it has none) and the name without it. */
void img_name_split(const char *name, char *repo, size_t rlen, char *tag, size_t tlen);
