/*
 * Layers: the difference between a snapshot and its parent as an OCI layer
 * tar (diff), and a layer tar turned back into a snapshot (apply).
 *
 * diff walks the snapshot (overlay: its upper directory; native: its tree
 * compared with its parent's) in sorted order and frames the entries as a
 * POSIX pax tar itself (pax headers where a name, size, id or xattr needs
 * them; libarchive is only used to read). The tar stream is
 * hashed (diff id), compressed and hashed again (digest) in one pass, and
 * the compressed bytes go straight into the content store: nothing is read
 * twice. Overlay whiteouts (char device 0/0) become ".wh.NAME", opaque
 * directories ".wh..wh..opq"; trusted.overlay.* xattrs never reach a layer.
 * Times newer than source_date_epoch are clamped to it, owner names are left
 * out and times are whole seconds, so a snapshot always gives the same bytes.
 *
 * apply detects the compression from the first bytes (gzip, zstd or none),
 * decompresses it itself (hashing the tar stream into the diff id), and
 * creates every entry relative to the new snapshot's directory with openat2
 * and RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS: parents
 * are never symlinks, the last component is never followed, absolute names
 * and ".." are refused, hard links only target entries inside the snapshot,
 * device nodes are created only by root. Whiteouts take the driver's form
 * (overlay: whiteout device and opaque xattr; native: deletion). File data
 * goes through the copy engine's batched writer (snap_copy_writer: io_uring
 * with a bounded pool of buffers, or pwrite), so memory does not grow with
 * the layer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "copy.h"
#include "digest.h"
#include "err.h"
#include "store.h"

struct snap_content_writer;

enum snap_compression {
	SNAP_COMPRESSION_NONE,
	SNAP_COMPRESSION_GZIP,
	SNAP_COMPRESSION_ZSTD,
	_SNAP_COMPRESSION_MAX,
};

/* "uncompressed", "gzip", "zstd"; NULL when out of range. */
const char *snap_compression_to_string(enum snap_compression c);
/* The inverse ("none" is accepted for uncompressed); -EINVAL if unknown. */
int snap_compression_from_string(const char *s);
/* The OCI layer media type for c (application/vnd.oci.image.layer.v1.tar[+gzip|+zstd]). */
const char *snap_compression_media_type(enum snap_compression c, bool oci);

/* Compression of a stream from its first bytes (at least 4). */
enum snap_compression snap_compression_detect(const void *head, size_t len);

/* Default compression levels. gzip: 0-3 use ISA-L's igzip, 4-9 zlib. zstd: 1-19. */
#define SNAP_GZIP_LEVEL_DEFAULT 1
#define SNAP_ZSTD_LEVEL_DEFAULT 3

struct snap_layer_diff_opts {
	enum snap_compression compression;
	int level;		   /* -1: the default for the compression */
	int64_t source_date_epoch; /* < 0: no clamping */
	bool oci_media_types;	   /* false: Docker's media types */
};

/* Fills opts with the defaults: gzip, default level, SOURCE_DATE_EPOCH from the environment. */
void snap_layer_diff_opts_init(struct snap_layer_diff_opts *opts);

struct snap_layer_desc {
	char digest[SC_DIGEST_STR_LEN + 1];  /* sha256 of the compressed blob */
	char diff_id[SC_DIGEST_STR_LEN + 1]; /* sha256 of the tar stream */
	uint64_t size;			     /* compressed bytes */
	uint64_t tar_size;		     /* uncompressed bytes */
	uint64_t entries;
	const char *media_type; /* static string */
};

/*
 * Writes the diff of snapshot key (active or committed) against its parent
 * into the content store as a layer blob; ret describes it.
 * Errors: -ENOENT key missing, -EINVAL a view or bad options, -ENOSPC,
 * -ENAMETOOLONG a path over SNAP_LAYER_PATH_MAX, -errno from the walk.
 */
int snap_layer_diff(struct snap_store *s, const char *key, const struct snap_layer_diff_opts *opts,
		    struct snap_layer_desc *ret, struct sc_err *err);

/*
 * Output sink for the lower-level writers: called with each piece of the
 * (compressed) stream in order. Returns >= 0, or -errno to stop.
 */
typedef int (*snap_layer_sink_fn)(void *arg, const void *data, size_t len, struct sc_err *err);

/*
 * Like snap_layer_diff but streams to sink instead of the content store
 * (ret->digest and ret->diff_id are filled as well). parent_dir may be NULL:
 * then the whole tree of dir is written (a rootfs tar). overlay selects the
 * overlay reading of dir (whiteout devices and opaque xattrs).
 */
int snap_layer_write_tree(const char *dir, const char *parent_dir, bool overlay,
			  const struct snap_layer_diff_opts *opts, snap_layer_sink_fn sink,
			  void *sink_arg, struct snap_layer_desc *ret, struct sc_err *err);

/* Limits on what one layer may hold; 0 in a field means the default. */
#define SNAP_LAYER_MAX_ENTRIES_DEFAULT 100000ull
#define SNAP_LAYER_MAX_BYTES_DEFAULT   (64ull << 30)
#define SNAP_LAYER_PATH_MAX	       4000
/* Folders an entry may lie below: what a diff, a copy and a measure walk (1,024). */
#define SNAP_LAYER_DEPTH_MAX 1024

struct snap_layer_limits {
	uint64_t max_entries; /* tar entries, whiteouts included */
	uint64_t max_bytes;   /* sum of the entries' declared sizes */
	uint64_t max_path;    /* bytes in an entry's name (at most SNAP_LAYER_PATH_MAX) */
};

struct snap_layer_apply_opts {
	struct snap_layer_limits limits;
	const char *expected_diff_id; /* NULL: not checked */
	/*
	 * When set, every byte read from the input is also written here and
	 * the writer is committed (digest checked) before the snapshot is; the
	 * writer is consumed whatever the outcome.
	 */
	struct snap_content_writer *tee;
	const char *tee_media_type;
	const struct snap_label *labels; /* on the committed snapshot */
	size_t nlabels;
	/*
	 * Overlay: the lower layers' folders, nearest first. A folder the layer
	 * implies (a parent it does not list) and the upper folder lacks is
	 * looked up there: a symlink is refused as on a full tree, a folder is
	 * made with that folder's owner, mode and times (as overlay's copy-up
	 * does). snap_layer_apply() fills it in.
	 */
	const char *const *lowers;
	size_t nlowers;
	/*
	 * How file data is written (flags and queue_depth; zero: io_uring with
	 * 64 in flight, or pwrite where io_uring is unusable). SNAP_COPY_NO_URING
	 * or SNAPCTL_NO_IO_URING=1 in the environment: pwrite only.
	 */
	struct snap_copy_opts copy;
	/*
	 * Not a layer but an archive to read files from (an image archive on
	 * import): an entry that is a fifo or a device node is refused, never
	 * created.
	 */
	bool files_only;
};

struct snap_layer_apply_result {
	char diff_id[SC_DIGEST_STR_LEN + 1];
	char digest[SC_DIGEST_STR_LEN + 1]; /* the tee's blob, when there was one */
	enum snap_compression compression;
	uint64_t entries;
	uint64_t bytes; /* file data written */
};

/*
 * Reads a layer (tar, tar+gzip or tar+zstd) from fd to its end without
 * unpacking it: its diff id (the sha256 of the uncompressed stream) and
 * compression. Every byte read also goes to tee (may be NULL). At most
 * max_bytes (0: the default limit) uncompressed, trailer included.
 * Errors: -EBADMSG a corrupt or truncated stream; -EFBIG over the limit;
 * -EOPNOTSUPP an unknown compression; the tee's.
 */
int snap_layer_hash(int fd, uint64_t max_bytes, snap_layer_sink_fn tee, void *tee_arg,
		    char diff_id[SC_DIGEST_STR_LEN + 1], enum snap_compression *ret_c,
		    struct sc_err *err);

/*
 * Reads a layer (tar, tar+gzip or tar+zstd) from fd and makes it the
 * committed snapshot name on top of parent (NULL: none). The layer is
 * unpacked into an active snapshot first and committed only when the whole
 * stream was read and every check passed; on failure the active snapshot is
 * removed and the store is as before.
 *
 * Errors: -EEXIST name exists; -ENOENT parent missing; -EBADMSG diff id or
 * digest mismatch, a corrupt or truncated stream, a declared size larger
 * than the data; -EXDEV an entry that would leave the snapshot (absolute
 * name, "..", a hard link outside it); -ELOOP more than 40 symlinks on the
 * way to an entry's folder (which is resolved inside the root), or nesting
 * past SNAP_LAYER_DEPTH_MAX;
 * -E2BIG over the entry limit; -EFBIG over the size limit; -ENAMETOOLONG
 * over the path limit; -EOPNOTSUPP an unknown compression or entry type.
 * err names the entry.
 */
int snap_layer_apply(struct snap_store *s, int fd, const char *parent, const char *name,
		     const struct snap_layer_apply_opts *opts, struct snap_layer_apply_result *ret,
		     struct sc_err *err);

/*
 * snap_layer_apply in steps, so that a caller applying several layers (an
 * image import) can order the work well:
 *
 * - snap_layer_job_new prepares the active snapshot a layer is unpacked
 *   into (this process's work in progress, snap_layer_job_key) on parent,
 *   which may be another job's key. opts is copied; what it points to must
 *   outlive the job. Its tee belongs to the job from here on.
 * - snap_layer_job_unpack unpacks fd into it, then starts syncing it on a
 *   thread. A job on another one is unpacked after it (overlay reads the
 *   lower layers' folders; the other drivers copy the parent's tree when
 *   the job is made, so there the job is made after its parent's unpack).
 * - snap_layer_job_commit waits for that sync, then commits the tee's blob
 *   and the snapshot as name, after the job below it. On success the job
 *   is freed; ret (may be NULL) is filled in either way.
 * - snap_layer_job_cancel removes the snapshot (cancel the jobs on top of
 *   it first) and frees the job; NULL-safe.
 *
 * A metadata transaction waits for the file data written before it (ext4's
 * ordered mode), so the fastest order makes every job first and commits
 * them all after the syncs. Errors: as snap_layer_apply.
 */
struct snap_layer_job;
int snap_layer_job_new(struct snap_store *s, const char *parent, const char *name,
		       const struct snap_layer_apply_opts *opts, struct snap_layer_job **ret,
		       struct sc_err *err);
const char *snap_layer_job_key(const struct snap_layer_job *job);
int snap_layer_job_unpack(struct snap_layer_job *job, int fd, struct sc_err *err);
/* Waits for the job's sync (running it here if it never started). */
int snap_layer_job_synced(struct snap_layer_job *job, struct sc_err *err);
int snap_layer_job_commit(struct snap_layer_job *job, struct snap_layer_apply_result *ret,
			  struct sc_err *err);
void snap_layer_job_cancel(struct snap_layer_job *job);

/*
 * Unpacks a layer from fd into the directory dirfd (the lower-level part of
 * snap_layer_apply). overlay selects the overlay form of whiteouts.
 * tee and tee_media_type in opts are ignored (the caller handles them
 * through tee_fn, which may be NULL).
 */
int snap_layer_unpack(int fd, int dirfd, bool overlay, const struct snap_layer_apply_opts *opts,
		      snap_layer_sink_fn tee_fn, void *tee_arg, struct snap_layer_apply_result *ret,
		      struct sc_err *err);

/*
 * The chain id of a layer on top of parent_chain_id (NULL for the first):
 * its diff id itself, else sha256 of "PARENT DIFFID".
 */
int snap_layer_chain_id(const char *parent_chain_id, const char *diff_id,
			char ret[SC_DIGEST_STR_LEN + 1]);
