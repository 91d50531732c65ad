/* Shared helpers: see util.h. */
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

uint64_t
sc_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int
sc_size_parse(const char *s, uint64_t *ret)
{
	static const struct {
		const char *suffix;
		double mult;
	} units[] = {
		{"", 1},
		{"b", 1},
		{"k", 1e3},
		{"kb", 1e3},
		{"kib", 1024.0},
		{"m", 1e6},
		{"mb", 1e6},
		{"mib", 1048576.0},
		{"g", 1e9},
		{"gb", 1e9},
		{"gib", 1073741824.0},
		{"t", 1e12},
		{"tb", 1e12},
		{"tib", 1099511627776.0},
	};
	if (!s || !*s)
		return -EINVAL;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0 || !isfinite(v) || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	while (*end == ' ')
		end++;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		if (strcasecmp(end, units[i].suffix) == 0) {
			double bytes = v * units[i].mult;
			if (bytes >= 18446744073709551615.0)
				return -ERANGE;
			*ret = (uint64_t)bytes;
			return 0;
		}
	}
	return -EINVAL;
}

char *
sc_size_format(uint64_t bytes, char *buf, size_t len)
{
	static const char *const names[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)bytes;
	size_t u = 0;
	while (v >= 1024.0 && u + 1 < ARRAY_SIZE(names)) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " B", bytes);
	else
		snprintf(buf, len, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v, names[u]);
	return buf;
}

int
sc_duration_parse(const char *s, uint64_t *ret_ns)
{
	if (!s || !*s)
		return -EINVAL;
	uint64_t total = 0;
	const char *p = s;
	while (*p) {
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		char *end;
		errno = 0;
		unsigned long long n = strtoull(p, &end, 10);
		if (errno)
			return -ERANGE;
		uint64_t mult;
		switch (*end) {
		case '\0':
			/* Plain number: seconds, only as the whole string. */
			if (p != s)
				return -EINVAL;
			mult = 1000000000ull;
			break;
		case 's':
			mult = 1000000000ull;
			break;
		case 'm':
			mult = 60ull * 1000000000ull;
			break;
		case 'h':
			mult = 3600ull * 1000000000ull;
			break;
		case 'd':
			mult = 86400ull * 1000000000ull;
			break;
		case 'w':
			mult = 7ull * 86400ull * 1000000000ull;
			break;
		default:
			return -EINVAL;
		}
		if (n > UINT64_MAX / mult || total + n * mult < total)
			return -ERANGE;
		total += n * mult;
		p = *end ? end + 1 : end;
	}
	*ret_ns = total;
	return 0;
}

char *
sc_age_format(uint64_t then_ns, uint64_t now_ns, char *buf, size_t len)
{
	if (then_ns == 0) {
		snprintf(buf, len, "never");
		return buf;
	}
	uint64_t s = now_ns > then_ns ? (now_ns - then_ns) / 1000000000ull : 0;
	if (s < 60)
		snprintf(buf, len, "%" PRIu64 "s ago", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m ago", s / 60);
	else if (s < 86400 * 2)
		snprintf(buf, len, "%" PRIu64 "h ago", s / 3600);
	else
		snprintf(buf, len, "%" PRIu64 "d ago", s / 86400);
	return buf;
}

char *
sc_time_format(uint64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000ull);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

int
sc_proc_starttime(pid_t pid, uint64_t *ret)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	_cleanup_free_ char *data = NULL;
	int r = sc_read_file(path, 4096, &data, NULL);
	if (r == -ENOENT)
		return -ESRCH;
	if (r < 0)
		return r;
	/* The command name may hold spaces and parentheses: fields start after the last ')'. */
	char *p = strrchr(data, ')');
	if (!p)
		return -EIO;
	p++;
	/* After ')' comes field 3 (state); starttime is field 22. */
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EIO;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(p + 1, &end, 10);
	if (errno || end == p + 1)
		return -EIO;
	*ret = v;
	return 0;
}

bool
sc_proc_alive(pid_t pid, uint64_t starttime)
{
	if (pid <= 0)
		return false;
	uint64_t now_start;
	if (sc_proc_starttime(pid, &now_start) < 0)
		return false;
	if (now_start != starttime)
		return false; /* the pid was reused by another process */
	/* A zombie has finished: it holds nothing. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	_cleanup_free_ char *data = NULL;
	if (sc_read_file(path, 4096, &data, NULL) < 0)
		return false;
	char *p = strrchr(data, ')');
	return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

int
sc_random_hex(char *buf, size_t nbytes)
{
	uint8_t raw[64];
	if (nbytes > sizeof(raw))
		return -EINVAL;
	size_t got = 0;
	while (got < nbytes) {
		ssize_t n = getrandom(raw + got, nbytes - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < nbytes; i++)
		snprintf(buf + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

int
sc_mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);
	if (len == 0 || len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	struct stat st;
	if (stat(tmp, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* A folder we own but may not write (a layer's 0555 folder, say): its entries could not go. */
static void
make_writable(int fd, const struct stat *st)
{
	if ((st->st_mode & 0700) != 0700 && st->st_uid == geteuid())
		(void)fchmod(fd, (st->st_mode & 07777) | 0700);
}

static int
rm_children(int dfd, dev_t dev, int depth)
{
	if (depth > 4096)
		return -ELOOP;
	_cleanup_closedir_ DIR *d = fdopendir(dfd);
	if (!d) {
		int r = -errno;
		close(dfd);
		return r;
	}
	int first_err = 0;
	struct dirent *de;
	while ((errno = 0, de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		bool is_dir = de->d_type == DT_DIR;
		if (de->d_type == DT_UNKNOWN) {
			struct stat st;
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			is_dir = S_ISDIR(st.st_mode);
		}
		if (is_dir) {
			int cfd = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd < 0) {
				if (!first_err && errno != ENOENT)
					first_err = -errno;
				continue;
			}
			struct stat st;
			if (fstat(cfd, &st) < 0 || st.st_dev != dev) {
				/* Another mount lives here: never delete into it. */
				close(cfd);
				if (!first_err)
					first_err = -EBUSY;
				continue;
			}
			make_writable(cfd, &st);
			int r = rm_children(cfd, dev, depth + 1);
			if (r < 0 && !first_err)
				first_err = r;
		}
		if (unlinkat(dirfd(d), de->d_name, is_dir ? AT_REMOVEDIR : 0) < 0 &&
		    errno != ENOENT && !first_err)
			first_err = -errno;
	}
	return first_err;
}

int
sc_rm_rf_at(int dirfd, const char *name)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	make_writable(fd, &st);
	int r = rm_children(fd, st.st_dev, 0);
	if (r < 0)
		return r;
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int
sc_read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct sc_buf b = {0};
	for (;;) {
		int r = sc_buf_reserve(&b, 4096);
		if (r < 0) {
			sc_buf_free(&b);
			return r;
		}
		ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			sc_buf_free(&b);
			return r;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
		if (b.len > max) {
			sc_buf_free(&b);
			return -EFBIG;
		}
	}
	if (sc_buf_reserve(&b, 1) < 0) {
		sc_buf_free(&b);
		return -ENOMEM;
	}
	b.data[b.len] = '\0';
	if (ret_len)
		*ret_len = b.len;
	*ret = (char *)b.data;
	return 0;
}

int
sc_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= sizeof(tmp))
		return -ENAMETOOLONG;
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	const uint8_t *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int r = -errno;
			unlink(tmp);
			return r;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) < 0 || rename(tmp, path) < 0) {
		int r = -errno;
		unlink(tmp);
		return r;
	}
	return 0;
}

int
sc_buf_reserve(struct sc_buf *b, size_t extra)
{
	if (b->len + extra <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra) {
		if (cap > SIZE_MAX / 2)
			return -ENOMEM;
		cap *= 2;
	}
	uint8_t *p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int
sc_buf_put(struct sc_buf *b, const void *data, size_t len)
{
	int r = sc_buf_reserve(b, len);
	if (r < 0)
		return r;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

int
sc_buf_printf(struct sc_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	int r = sc_buf_reserve(b, (size_t)n + 1);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void
sc_buf_free(struct sc_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int
sc_strv_push(char ***v, size_t *n, const char *s)
{
	char **p = realloc(*v, (*n + 2) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	*v = p;
	p[*n] = strdup(s);
	if (!p[*n])
		return -ENOMEM;
	(*n)++;
	p[*n] = NULL;
	return 0;
}

int
sc_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(thread, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

static int umask_value = -1;

static void
umask_read(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/status", "re");
	char line[128];
	while (f && fgets(line, sizeof(line), f)) {
		unsigned m;
		if (sscanf(line, "Umask: %o", &m) == 1) {
			umask_value = (int)(m & 0777);
			break;
		}
	}
}

int
sc_umask(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, umask_read);
	return umask_value;
}
