/*
 * Driver for bench/copy/run.sh: copies a tree with snap_copy_tree() and
 * prints the wall time and the stats, or makes the benchmark's input.
 *
 *   bench-copy [--no-uring] [--no-reflink] [--no-range] [--no-sync] [--qd N] SRC DST
 *   bench-copy --gen-tree DIR FILES MIN_KIB MAX_KIB
 *   bench-copy --gen-file PATH MIB
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "copy.h"

static int
fill_file(const char *path, uint64_t size, uint32_t seed)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	static uint64_t buf[1 << 17]; /* 1 MiB */
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	while (size > 0) {
		size_t n = size < sizeof(buf) ? (size_t)size : sizeof(buf);
		for (size_t i = 0; i < (n + 7) / 8; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = x;
		}
		if (write(fd, buf, n) != (ssize_t)n) {
			close(fd);
			return -EIO;
		}
		size -= n;
	}
	return close(fd) < 0 ? -errno : 0;
}

/* FILES files of MIN..MAX KiB in directories of 200, like an unpacked image layer. */
static int
gen_tree(const char *dir, unsigned files, unsigned min_kib, unsigned max_kib)
{
	if (mkdir(dir, 0755) < 0)
		return -errno;
	char path[4096];
	uint32_t x = 12345;
	for (unsigned i = 0; i < files; i++) {
		if (i % 200 == 0) {
			snprintf(path, sizeof(path), "%s/d%03u", dir, i / 200);
			if (mkdir(path, 0755) < 0)
				return -errno;
		}
		x = x * 1103515245u + 12345u;
		uint64_t kib = min_kib + (x >> 8) % (max_kib - min_kib + 1);
		snprintf(path, sizeof(path), "%s/d%03u/f%05u", dir, i / 200, i);
		int r = fill_file(path, kib << 10, i);
		if (r < 0)
			return r;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "--gen-tree") == 0) {
		int r = gen_tree(argv[2], (unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]),
				 (unsigned)atoi(argv[5]));
		if (r < 0)
			fprintf(stderr, "bench-copy: %s\n", strerror(-r));
		return r < 0;
	}
	if (argc == 4 && strcmp(argv[1], "--gen-file") == 0) {
		int r = fill_file(argv[2], (uint64_t)atoi(argv[3]) << 20, 1);
		if (r < 0)
			fprintf(stderr, "bench-copy: %s\n", strerror(-r));
		return r < 0;
	}

	struct snap_copy_opts opts = {0};
	int i = 1;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--no-uring") == 0)
			opts.flags |= SNAP_COPY_NO_URING;
		else if (strcmp(argv[i], "--no-reflink") == 0)
			opts.flags |= SNAP_COPY_NO_REFLINK;
		else if (strcmp(argv[i], "--no-range") == 0)
			opts.flags |= SNAP_COPY_NO_RANGE;
		else if (strcmp(argv[i], "--no-sync") == 0)
			opts.flags |= SNAP_COPY_NO_SYNC;
		else if (strcmp(argv[i], "--qd") == 0 && i + 1 < argc)
			opts.queue_depth = (unsigned)atoi(argv[++i]);
		else {
			fprintf(stderr, "bench-copy: unknown option '%s'\n", argv[i]);
			return 2;
		}
	}
	if (argc - i != 2) {
		fprintf(stderr, "usage: bench-copy [--no-uring] [--no-reflink] [--no-range] "
				"[--no-sync] [--qd N] SRC DST\n");
		return 2;
	}

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct snap_copy_stats st = {0};
	struct sc_err err = SC_ERR_INIT;
	int r = snap_copy_tree(AT_FDCWD, argv[i], AT_FDCWD, argv[i + 1], &opts, &st, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r < 0) {
		fprintf(stderr, "bench-copy: %s\n", sc_err_msg(&err));
		return 1;
	}
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%.3f s, %llu files, %llu dirs, %llu bytes", s, (unsigned long long)st.files,
	       (unsigned long long)st.dirs, (unsigned long long)st.bytes);
	for (int m = 0; m < _SNAP_COPY_METHOD_MAX; m++)
		printf(", %s %llu", snap_copy_method_to_string((enum snap_copy_method)m),
		       (unsigned long long)st.by_method[m]);
	printf("\n");
	return 0;
}
