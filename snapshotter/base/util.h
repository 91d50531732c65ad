/*
 * Small helpers shared by every layer: time, sizes and durations in the forms
 * users type, process identity, random ids, and file system chores done
 * relative to directory fds.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>

#include "err.h"

/* Wall-clock time in nanoseconds since the epoch. */
uint64_t sc_now_ns(void);

/* "10GB", "512MiB", "1.5G", "4096" -> bytes (decimal and binary units). -EINVAL if malformed. */
int sc_size_parse(const char *s, uint64_t *ret);
/* Human size ("1.5 GiB"); writes at most len bytes into buf and returns buf. */
char *sc_size_format(uint64_t bytes, char *buf, size_t len);

/* "90s", "90m", "24h", "7d", "1h30m", plain seconds -> nanoseconds. -EINVAL if malformed. */
int sc_duration_parse(const char *s, uint64_t *ret_ns);
/* "3h ago" style, relative to now; writes into buf and returns buf. */
char *sc_age_format(uint64_t then_ns, uint64_t now_ns, char *buf, size_t len);
/* RFC 3339 UTC timestamp with seconds; returns buf. */
char *sc_time_format(uint64_t ns, char *buf, size_t len);

/*
 * Start time of process pid (field 22 of /proc/PID/stat, clock ticks since
 * boot). Together with the pid it names a process without ambiguity.
 * -ESRCH if the process does not exist.
 */
int sc_proc_starttime(pid_t pid, uint64_t *ret);
/* True while the process pid that started at starttime is still running. */
bool sc_proc_alive(pid_t pid, uint64_t starttime);

/* n random bytes as 2n lowercase hex characters plus NUL into buf (size >= 2n+1). */
int sc_random_hex(char *buf, size_t nbytes);

/* Creates path and missing parents with mode. */
int sc_mkdir_p(const char *path, mode_t mode);
/*
 * Removes name below dirfd and everything under it, without following
 * symlinks and without crossing into other mounts. Missing is success.
 */
int sc_rm_rf_at(int dirfd, const char *name);

/* Reads a whole small file (at most max bytes) into a NUL-terminated buffer the caller frees. */
int sc_read_file(const char *path, size_t max, char **ret, size_t *ret_len);
/* Writes data to path atomically (temp file, fsync, rename). */
int sc_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Appends a copy of s to the vector *v of *n strings, which stays NULL-terminated. -ENOMEM. */
int sc_strv_push(char ***v, size_t *n, const char *s);

/* Growable byte buffer. */
struct sc_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

int sc_buf_reserve(struct sc_buf *b, size_t extra);
int sc_buf_put(struct sc_buf *b, const void *data, size_t len);
int sc_buf_printf(struct sc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sc_buf_free(struct sc_buf *b);

/* Big-endian integers, used in LMDB keys so byte order is numeric order. */
static inline void
sc_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline uint64_t
sc_get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/*
 * pthread_create with every signal blocked in the new thread: signals stay
 * with the caller's threads (a build's SIGINT handler, say). Returns 0 or
 * the positive error pthread_create gave.
 */
int sc_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg);

/*
 * The process's umask, read once (from /proc/self/status, so it is never
 * changed, not even for a moment); -1 where it cannot be read.
 */
int sc_umask(void);
