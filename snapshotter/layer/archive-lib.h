/*
 * libarchive, loaded when a command first needs tar framing.
 *
 * libarchive links libxml2 and through it ICU and libstdc++: loading them
 * costs every snapctl process about 1.4 ms, several times what a snapshot
 * operation costs otherwise, although only layer diff, apply and image
 * export read or write tar. Those entry points call snap_archive_load();
 * the rest of the program never maps the library.
 *
 * Include this header instead of <archive.h> and <archive_entry.h>; calls
 * keep their libarchive names and go through the loaded table, loading it
 * on first use if an entry point has not.
 */
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <assert.h>

#include "err.h"

/* The libarchive functions snapctl uses; X(name) per function. */
#define SNAP_ARCHIVE_FUNCTIONS(X)                                                                  \
	X(archive_entry_atime)                                                                     \
	X(archive_entry_atime_is_set)                                                              \
	X(archive_entry_atime_nsec)                                                                \
	X(archive_entry_clear)                                                                     \
	X(archive_entry_filetype)                                                                  \
	X(archive_entry_free)                                                                      \
	X(archive_entry_gid)                                                                       \
	X(archive_entry_hardlink)                                                                  \
	X(archive_entry_mtime)                                                                     \
	X(archive_entry_mtime_nsec)                                                                \
	X(archive_entry_new)                                                                       \
	X(archive_entry_pathname)                                                                  \
	X(archive_entry_perm)                                                                      \
	X(archive_entry_rdev)                                                                      \
	X(archive_entry_rdevmajor)                                                                 \
	X(archive_entry_rdevminor)                                                                 \
	X(archive_entry_set_gid)                                                                   \
	X(archive_entry_set_hardlink)                                                              \
	X(archive_entry_set_mode)                                                                  \
	X(archive_entry_set_mtime)                                                                 \
	X(archive_entry_set_pathname)                                                              \
	X(archive_entry_set_rdevmajor)                                                             \
	X(archive_entry_set_rdevminor)                                                             \
	X(archive_entry_set_size)                                                                  \
	X(archive_entry_set_symlink)                                                               \
	X(archive_entry_set_uid)                                                                   \
	X(archive_entry_size)                                                                      \
	X(archive_entry_size_is_set)                                                               \
	X(archive_entry_symlink)                                                                   \
	X(archive_entry_uid)                                                                       \
	X(archive_entry_xattr_add_entry)                                                           \
	X(archive_entry_xattr_next)                                                                \
	X(archive_entry_xattr_reset)                                                               \
	X(archive_errno)                                                                           \
	X(archive_error_string)                                                                    \
	X(archive_read_data_block)                                                                 \
	X(archive_read_free)                                                                       \
	X(archive_read_new)                                                                        \
	X(archive_read_next_header)                                                                \
	X(archive_read_open)                                                                       \
	X(archive_read_support_filter_bzip2)                                                       \
	X(archive_read_support_filter_gzip)                                                        \
	X(archive_read_support_filter_xz)                                                          \
	X(archive_read_support_filter_zstd)                                                        \
	X(archive_read_support_format_tar)                                                         \
	X(archive_set_error)                                                                       \
	X(archive_write_close)                                                                     \
	X(archive_write_data)                                                                      \
	X(archive_write_free)                                                                      \
	X(archive_write_header)                                                                    \
	X(archive_write_new)                                                                       \
	X(archive_write_open)                                                                      \
	X(archive_write_open_fd)                                                                   \
	X(archive_write_set_bytes_in_last_block)                                                   \
	X(archive_write_set_bytes_per_block)                                                       \
	X(archive_write_set_format_option)                                                         \
	X(archive_write_set_format_pax_restricted)

struct snap_archive_lib {
#define SNAP_ARCHIVE_FIELD(name) __typeof__(&name) name;
	SNAP_ARCHIVE_FUNCTIONS(SNAP_ARCHIVE_FIELD)
#undef SNAP_ARCHIVE_FIELD
};

extern struct snap_archive_lib snap_archive_lib;
extern bool snap_archive_loaded;

/*
 * Loads libarchive once per process (thread-safe). Errors: -ELIBACC when the
 * library or one of its functions cannot be found (err says which).
 */
int snap_archive_load(struct sc_err *err);

static inline const struct snap_archive_lib *
snap_archive(void)
{
	/*
	 * Entry points load it first so a missing library is a clean error;
	 * helpers they share load it on demand. Reaching a call with the
	 * library missing means an entry point forgot to check.
	 */
	if (!snap_archive_loaded)
		snap_archive_load(NULL);
	assert(snap_archive_loaded);
	return &snap_archive_lib;
}

#ifndef SNAP_ARCHIVE_NO_REDIRECT
/* Each use of a libarchive function goes through the loaded table. */
#define archive_entry_atime		(snap_archive()->archive_entry_atime)
#define archive_entry_atime_is_set	(snap_archive()->archive_entry_atime_is_set)
#define archive_entry_atime_nsec	(snap_archive()->archive_entry_atime_nsec)
#define archive_entry_clear		(snap_archive()->archive_entry_clear)
#define archive_entry_filetype		(snap_archive()->archive_entry_filetype)
#define archive_entry_free		(snap_archive()->archive_entry_free)
#define archive_entry_gid		(snap_archive()->archive_entry_gid)
#define archive_entry_hardlink		(snap_archive()->archive_entry_hardlink)
#define archive_entry_mtime		(snap_archive()->archive_entry_mtime)
#define archive_entry_mtime_nsec	(snap_archive()->archive_entry_mtime_nsec)
#define archive_entry_new		(snap_archive()->archive_entry_new)
#define archive_entry_pathname		(snap_archive()->archive_entry_pathname)
#define archive_entry_perm		(snap_archive()->archive_entry_perm)
#define archive_entry_rdev		(snap_archive()->archive_entry_rdev)
#define archive_entry_rdevmajor		(snap_archive()->archive_entry_rdevmajor)
#define archive_entry_rdevminor		(snap_archive()->archive_entry_rdevminor)
#define archive_entry_set_gid		(snap_archive()->archive_entry_set_gid)
#define archive_entry_set_hardlink	(snap_archive()->archive_entry_set_hardlink)
#define archive_entry_set_mode		(snap_archive()->archive_entry_set_mode)
#define archive_entry_set_mtime		(snap_archive()->archive_entry_set_mtime)
#define archive_entry_set_pathname	(snap_archive()->archive_entry_set_pathname)
#define archive_entry_set_rdevmajor	(snap_archive()->archive_entry_set_rdevmajor)
#define archive_entry_set_rdevminor	(snap_archive()->archive_entry_set_rdevminor)
#define archive_entry_set_size		(snap_archive()->archive_entry_set_size)
#define archive_entry_set_symlink	(snap_archive()->archive_entry_set_symlink)
#define archive_entry_set_uid		(snap_archive()->archive_entry_set_uid)
#define archive_entry_size		(snap_archive()->archive_entry_size)
#define archive_entry_size_is_set	(snap_archive()->archive_entry_size_is_set)
#define archive_entry_symlink		(snap_archive()->archive_entry_symlink)
#define archive_entry_uid		(snap_archive()->archive_entry_uid)
#define archive_entry_xattr_add_entry	(snap_archive()->archive_entry_xattr_add_entry)
#define archive_entry_xattr_next	(snap_archive()->archive_entry_xattr_next)
#define archive_entry_xattr_reset	(snap_archive()->archive_entry_xattr_reset)
#define archive_errno			(snap_archive()->archive_errno)
#define archive_error_string		(snap_archive()->archive_error_string)
#define archive_read_data_block		(snap_archive()->archive_read_data_block)
#define archive_read_free		(snap_archive()->archive_read_free)
#define archive_read_new		(snap_archive()->archive_read_new)
#define archive_read_next_header	(snap_archive()->archive_read_next_header)
#define archive_read_open		(snap_archive()->archive_read_open)
#define archive_read_support_format_tar (snap_archive()->archive_read_support_format_tar)
#define archive_set_error		(snap_archive()->archive_set_error)
#define archive_write_close		(snap_archive()->archive_write_close)
#define archive_write_data		(snap_archive()->archive_write_data)
#define archive_write_free		(snap_archive()->archive_write_free)
#define archive_write_header		(snap_archive()->archive_write_header)
#define archive_write_new		(snap_archive()->archive_write_new)
#define archive_write_open		(snap_archive()->archive_write_open)
#define archive_write_open_fd		(snap_archive()->archive_write_open_fd)
#define archive_write_set_bytes_in_last_block                                                      \
	(snap_archive()->archive_write_set_bytes_in_last_block)
#define archive_write_set_bytes_per_block (snap_archive()->archive_write_set_bytes_per_block)
#define archive_write_set_format_option	  (snap_archive()->archive_write_set_format_option)
#define archive_write_set_format_pax_restricted                                                    \
	(snap_archive()->archive_write_set_format_pax_restricted)

/* Decompression filters, for the builder's ADD of local archives. */
#define archive_read_support_filter_bzip2 (snap_archive()->archive_read_support_filter_bzip2)
#define archive_read_support_filter_gzip  (snap_archive()->archive_read_support_filter_gzip)
#define archive_read_support_filter_xz	  (snap_archive()->archive_read_support_filter_xz)
#define archive_read_support_filter_zstd  (snap_archive()->archive_read_support_filter_zstd)
#endif
