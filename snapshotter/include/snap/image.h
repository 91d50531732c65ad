/*
 * Images: a name -> a manifest (or index) digest in the images table, whose
 * config, manifests and layer blobs live in the content store and whose
 * layers are unpacked into a snapshot chain keyed by chain id
 * ("sha256:<chain id>"), so images that share base layers share snapshots.
 *
 * Edges recorded for the collector (refs.h):
 *   image:NAME -> blob:<target>          (the manifest or index)
 *   blob:<index> -> blob:<manifest>      (the platform that was imported)
 *   blob:<manifest> -> blob:<config>, blob:<layer>...
 *   blob:<layer> -> snapshot:<its snapshot>
 * Removing an image drops only its name and its edge; the collector frees
 * what nothing reaches any more.
 *
 * Every input a user controls is bounded: JSON documents (index, manifest,
 * docker manifest.json) at SNAP_IMAGE_JSON_MAX, configs at
 * SNAP_IMAGE_CONFIG_MAX, layers per image at SNAP_IMAGE_LAYERS_MAX, and
 * each layer by struct snap_layer_limits.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"
#include "err.h"
#include "layer.h"
#include "store.h"

#define SNAP_IMAGE_NAME_MAX   255
#define SNAP_IMAGE_JSON_MAX   (4u << 20)
#define SNAP_IMAGE_CONFIG_MAX (8u << 20)
#define SNAP_IMAGE_LAYERS_MAX 256

#define SNAP_MT_OCI_INDEX	"application/vnd.oci.image.index.v1+json"
#define SNAP_MT_OCI_MANIFEST	"application/vnd.oci.image.manifest.v1+json"
#define SNAP_MT_OCI_CONFIG	"application/vnd.oci.image.config.v1+json"
#define SNAP_MT_DOCKER_LIST	"application/vnd.docker.distribution.manifest.list.v2+json"
#define SNAP_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define SNAP_MT_DOCKER_CONFIG	"application/vnd.docker.container.image.v1+json"

struct snap_image_info {
	char *name;
	char target[SC_DIGEST_STR_LEN + 1]; /* what the name points at: manifest or index */
	char *target_media_type;
	char manifest[SC_DIGEST_STR_LEN +
		      1]; /* the platform's manifest (== target without index) */
	char config[SC_DIGEST_STR_LEN + 1];
	char *platform;	  /* "os/arch[/variant]" */
	char *snapshot;	  /* key of the top layer's snapshot ("" for an image without layers) */
	uint64_t created; /* ns since the epoch */
	uint64_t updated;
	uint64_t size; /* bytes of manifest, config and layer blobs */
	uint32_t nlayers;
	/* Set by an import that moved an existing name: what it pointed at ("" otherwise). */
	char moved_from[SC_DIGEST_STR_LEN + 1];
};

void snap_image_info_clear(struct snap_image_info *info);

/* Checks an image name: 1-255 bytes, no control characters or spaces. -EINVAL. */
int snap_image_name_validate(const char *name, struct sc_err *err);

/* Reads one image's record. -ENOENT if there is no such image. */
int snap_image_get(struct snap_store *s, const char *name, struct snap_image_info *ret,
		   struct sc_err *err);

typedef int (*snap_image_walk_fn)(const struct snap_image_info *info, void *arg);
/* Calls fn for every image in name order; fn returns < 0 to stop. */
int snap_image_walk(struct snap_store *s, snap_image_walk_fn fn, void *arg, struct sc_err *err);

/* Gives the image src a second name dst (replacing what dst named). -ENOENT src missing. */
int snap_image_tag(struct snap_store *s, const char *src, const char *dst, struct sc_err *err);

/* Drops the name and its edge. -ENOENT if missing. */
int snap_image_remove(struct snap_store *s, const char *name, struct sc_err *err);

struct snap_image_import_opts {
	const char *name;     /* NULL: the name the archive carries */
	const char *platform; /* NULL: linux/amd64 */
	struct snap_layer_limits limits;
};

/*
 * Imports path: an OCI image layout (folder or tar, optionally compressed)
 * or a `docker save` archive (legacy or combined form, folder or tar),
 * recognised by content. ret (may be NULL) receives the new record.
 *
 * Errors: -ENOENT path or a blob it names is missing; -EBADMSG a blob does
 * not match its digest or a layer its diff id; -EFBIG a document over its
 * limit; -E2BIG too many layers or entries; -EINVAL malformed JSON, unknown
 * media type, no name; -ENOEXEC no image for the platform; and the layer
 * errors of snap_layer_apply(). On failure no name is recorded; blobs and
 * snapshots already stored are left to the collector.
 */
int snap_image_import(struct snap_store *s, const char *path,
		      const struct snap_image_import_opts *opts, struct snap_image_info *ret,
		      struct sc_err *err);

/*
 * Makes an image NAME from the committed snapshot key and its ancestors:
 * each snapshot is diffed against its parent into a layer blob, a config
 * and a manifest are written. Times in the config follow SOURCE_DATE_EPOCH.
 */
int snap_image_create(struct snap_store *s, const char *name, const char *key,
		      const struct snap_layer_diff_opts *opts, struct snap_image_info *ret,
		      struct sc_err *err);

/* One layer of an image: its blob and the snapshot it unpacks to. */
struct snap_image_layer {
	char digest[SC_DIGEST_STR_LEN + 1];
	char diff_id[SC_DIGEST_STR_LEN + 1];
	uint64_t size;
	char media_type[128];
	char *snapshot; /* key of the snapshot holding this layer and those below it */
};

/*
 * The layers of a stored image (from its manifest and config), bottom
 * first, with the chain snapshots an import made for them. *ret is an
 * array the caller frees with snap_image_layers_free().
 * Errors: -ENOENT a blob missing, -EINVAL a damaged manifest or config.
 */
int snap_image_layers(struct snap_store *s, const struct snap_image_info *info,
		      struct snap_image_layer **ret, size_t *ret_n, struct sc_err *err);
void snap_image_layers_free(struct snap_image_layer *v, size_t n);

struct snap_image_new {
	const char *config; /* the whole config JSON, written as given */
	size_t config_len;
	const struct snap_image_layer *layers; /* bottom first; blobs already stored */
	size_t nlayers;
	const char *snapshot; /* the top snapshot (the image's rootfs), "" for none */
	const char *platform; /* "os/arch" */
	bool oci_media_types;
};

/*
 * Stores an assembled image: the config and a manifest listing layers go
 * into the content store (attached to the handle's lease), then each name
 * of names (may be none) is recorded, with its edges, in one transaction.
 * ret receives the description (name: names[0] or "") for
 * snap_image_export_info(). Errors: -EINVAL a bad name, -E2BIG too many layers.
 */
int snap_image_store(struct snap_store *s, const struct snap_image_new *img,
		     const char *const *names, size_t nnames, struct snap_image_info *ret,
		     struct sc_err *err);

enum snap_export_type {
	SNAP_EXPORT_OCI,
	SNAP_EXPORT_DOCKER,
	SNAP_EXPORT_TAR,
	SNAP_EXPORT_LOCAL,
	_SNAP_EXPORT_TYPE_MAX,
};

const char *snap_export_type_to_string(enum snap_export_type t);
int snap_export_type_from_string(const char *s); /* -EINVAL if unknown */

struct snap_image_export_opts {
	enum snap_export_type type;
	const char *dest; /* a file, or a folder for local and oci with tar=false; "-": stdout */
	bool tar;	  /* oci: a tar (true) or a layout folder */
	bool oci_media_types; /* false: Docker's media types (the manifest is rewritten) */
};

/* Parses "type=oci,dest=PATH[,tar=false][,oci-mediatypes=false]" into ret. -EINVAL with a message.
 */
int snap_image_export_opts_parse(const char *spec, struct snap_image_export_opts *ret,
				 struct sc_err *err);

/*
 * Exports image name. oci and docker are deterministic: the same image gives
 * the same bytes (tar headers use SOURCE_DATE_EPOCH, else 0, as their time).
 * Errors: -ENOENT no such image or a blob missing (run 'snapctl check'),
 * -EEXIST dest exists (a folder must be missing or empty), -EOPNOTSUPP a
 * layer type Docker's media types cannot express.
 */
int snap_image_export(struct snap_store *s, const char *name,
		      const struct snap_image_export_opts *opts, struct sc_err *err);
/* The same for an image described by info (from snap_image_store; need not be named). */
int snap_image_export_info(struct snap_store *s, const struct snap_image_info *info,
			   const struct snap_image_export_opts *opts, struct sc_err *err);
