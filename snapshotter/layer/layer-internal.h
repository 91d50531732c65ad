/*
 * What the layer files share: the compressing writer (tar bytes in, hashed
 * before and after compression, compressed bytes out to a sink) and the
 * decompressing reader (compressed bytes from an fd, optionally copied to a
 * tee, tar bytes out, hashed). Both stream through fixed buffers, so memory
 * does not grow with the layer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "digest.h"
#include "err.h"
#include "layer.h"

#define LAYER_BUF_SIZE (1u << 20)

struct layer_zout;

/* What a writer hashes: the tar stream (the diff id), the compressed stream (the digest). */
#define LAYER_HASH_TAR 1u
#define LAYER_HASH_OUT 2u

/*
 * A writer that hashes (as hash says), compresses with c at level (-1:
 * default), hashes again and calls sink. Past the first LAYER_BUF_SIZE
 * bytes, compression and sink run on a thread of their own: sink must
 * not share unlocked state with the caller until the writer finished.
 */
int layer_zout_new(enum snap_compression c, int level, unsigned hash, snap_layer_sink_fn sink,
		   void *sink_arg, struct layer_zout **ret, struct sc_err *err);
int layer_zout_write(struct layer_zout *z, const void *data, size_t len, struct sc_err *err);
/* Ends the stream; fills the digests (empty when not hashed) and sizes. */
int layer_zout_finish(struct layer_zout *z, char diff_id[SC_DIGEST_STR_LEN + 1],
		      char digest[SC_DIGEST_STR_LEN + 1], uint64_t *ret_tar_size,
		      uint64_t *ret_size, struct sc_err *err);
/* NULL-safe; returns NULL. */
struct layer_zout *layer_zout_free(struct layer_zout *z);

struct layer_zin;

/*
 * A reader of fd that detects the compression from the first bytes. Every
 * raw byte read also goes to tee (may be NULL) before it is decompressed.
 */
int layer_zin_new(int fd, snap_layer_sink_fn tee, void *tee_arg, struct layer_zin **ret,
		  struct sc_err *err);
enum snap_compression layer_zin_compression(const struct layer_zin *z);
/*
 * At most limit decompressed bytes (0: any): past it a read fails with
 * -EFBIG, so a layer costs no more work than its limit, whatever follows
 * the tar's end.
 */
void layer_zin_set_limit(struct layer_zin *z, uint64_t limit);
/*
 * From here on a thread reads, tees and decompresses ahead of the caller (a
 * compressed stream only), by at most a few blocks; the caller's thread
 * unpacks and hashes what it takes. tee then runs on that thread. Without a
 * thread (it could not start) reading goes on as before.
 */
int layer_zin_start(struct layer_zin *z, struct sc_err *err);
/*
 * Points *ret at the next decompressed bytes and returns how many (0 at the
 * end of the stream). The bytes stay valid until the next call.
 * Errors: -EBADMSG corrupt or truncated stream, -EIO and other read errors.
 */
ssize_t layer_zin_read(struct layer_zin *z, const void **ret, struct sc_err *err);
/* Reads what is left (hashing it) and returns the diff id of the whole stream. */
int layer_zin_finish(struct layer_zin *z, char diff_id[SC_DIGEST_STR_LEN + 1], struct sc_err *err);
struct layer_zin *layer_zin_free(struct layer_zin *z);

/*
 * The tar framing of layers (tar-write.c): POSIX pax, written into a
 * compressing writer. Entries are written in order: a header, then exactly
 * the entry's size in data (regular files only), then the next.
 */
struct tar_xattr {
	const char *name;
	const void *value;
	size_t len;
};

struct tar_entry {
	const char *path; /* relative, without a leading '/' */
	mode_t mode;	  /* type and permission bits */
	uint64_t uid, gid;
	int64_t mtime;	  /* seconds */
	uint64_t size;	  /* regular files */
	const char *link; /* symlink target, or the path a hard link points at */
	bool hardlink;
	unsigned devmajor, devminor;
	const struct tar_xattr *xattrs;
	size_t nxattrs;
};

struct tar_writer;
int tar_writer_new(struct layer_zout *z, struct tar_writer **ret);
struct tar_writer *tar_writer_free(struct tar_writer *t);
/* Errors: -EINVAL the last entry's data was short, -ENOMEM, and the compressing writer's. */
int tar_write_header(struct tar_writer *t, const struct tar_entry *e, struct sc_err *err);
/* Errors: -EINVAL more data than the entry's size, and the compressing writer's. */
int tar_write_data(struct tar_writer *t, const void *data, size_t len, struct sc_err *err);
/* The two zero blocks that end an archive, and whatever is still buffered. */
int tar_write_end(struct tar_writer *t, struct sc_err *err);

/* libarchive error -> -errno with the message recorded in err. */
struct archive;
int layer_archive_error(struct archive *a, int code, const char *what, struct sc_err *err);

/*
 * A set of paths kept as a tree of interned components (pathtree.c): what
 * an apply remembers until its end, in memory that grows with the distinct
 * folders and names rather than with the length of every path.
 */
enum {
	PATH_CREATED = 1 << 0,	/* made by this layer (native) */
	PATH_DIR_TIME = 1 << 1, /* a folder whose mtime is set at the end */
};

struct path_node {
	uint32_t parent; /* UINT32_MAX at the top */
	uint32_t name_off;
	uint16_t name_len;
	uint8_t flags;
	struct timespec mtime; /* PATH_DIR_TIME */
};

struct path_tree {
	struct path_node *nodes;
	size_t n, nodes_cap;
	char *names; /* every component's bytes, back to back */
	size_t names_len, names_cap;
	uint32_t *index; /* open addressing over (parent, name) */
	size_t cap;
};

/*
 * The node of path (components separated by '/', not empty), made with its
 * missing folders; *ret_made (may be NULL) counts the nodes made.
 * Returns the node index or -ENOMEM.
 */
int path_tree_add(struct path_tree *t, const char *path, size_t *ret_made);
/* The node of path, or -ENOENT. */
int path_tree_find(const struct path_tree *t, const char *path);
/* Writes node's path into buf (len bytes); returns its length, 0 if it does not fit. */
size_t path_tree_path(const struct path_tree *t, uint32_t node, char *buf, size_t len);
void path_tree_clear(struct path_tree *t);
