/*
 * Builds a store for the collector's tests quickly, in one process:
 *
 *   gc-fixture ROOT PREFIX NSNAPSHOTS NBLOBS [KIB]
 *
 * makes NSNAPSHOTS committed snapshots in chains of 1 to 5 layers, each
 * holding a file of KIB KiB (default 4), and NBLOBS blobs of about KIB KiB,
 * every other one pointing at a snapshot (a layer and its unpacked
 * snapshot). Nothing holds any of it: all of it is collectable.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "content.h"
#include "refs.h"
#include "store.h"

static int
fill(const char *root, uint64_t id, const char *name, size_t kib)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/snapshots/%" PRIu64 "/fs/%s", root, id, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -errno;
	char buf[1024];
	for (size_t i = 0; i < kib; i++) {
		memset(buf, (int)(i + id), sizeof(buf));
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf)) {
			close(fd);
			return -EIO;
		}
	}
	close(fd);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: gc-fixture ROOT PREFIX NSNAPSHOTS NBLOBS [KIB]\n");
		return 2;
	}
	const char *prefix = argv[2];
	int nsnap = atoi(argv[3]), nblob = atoi(argv[4]);
	size_t kib = argc > 5 ? (size_t)atoi(argv[5]) : 4;
	struct snap_store_opts opts = {.root = argv[1]};
	struct snap_store *s = NULL;
	struct sc_err err = SC_ERR_INIT;
	if (snap_store_open(&opts, &s, &err) < 0) {
		fprintf(stderr, "gc-fixture: %s\n", sc_err_msg(&err));
		return 1;
	}
	char parent[128] = "", key[128], name[128];
	int depth = 0;
	char **committed = calloc((size_t)nsnap + 1, sizeof(char *));
	for (int i = 0; i < nsnap; i++) {
		snprintf(key, sizeof(key), "%s-w%d", prefix, i);
		snprintf(name, sizeof(name), "%s-s%d", prefix, i);
		struct snap_info info = {0};
		if (snap_snapshot_prepare(s, key, depth ? parent : NULL, SNAP_KIND_ACTIVE, NULL,
					  &info, &err) < 0 ||
		    fill(argv[1], info.id, "data", kib) < 0 ||
		    snap_snapshot_commit(s, name, key, NULL, 0, &err) < 0) {
			fprintf(stderr, "gc-fixture: %s\n", sc_err_msg(&err));
			return 1;
		}
		snap_info_clear(&info);
		committed[i] = strdup(name);
		memcpy(parent, name, sizeof(name));
		depth = (depth + 1) % (1 + i % 5);
	}
	char *buf = malloc(kib * 1024 + 64);
	for (int i = 0; i < nblob; i++) {
		int n = snprintf(buf, 64, "%s blob %d\n", prefix, i);
		memset(buf + n, 'b', kib * 1024);
		char digest[SC_DIGEST_STR_LEN + 1];
		if (snap_content_put(s, buf, (size_t)n + kib * 1024, "application/octet-stream",
				     digest, &err) < 0) {
			fprintf(stderr, "gc-fixture: %s\n", sc_err_msg(&err));
			return 1;
		}
		if (i % 2 == 0 && nsnap > 0) {
			char from[SNAP_OBJ_NAME_MAX + 1], to[SNAP_OBJ_NAME_MAX + 1];
			snap_obj_name(from, SNAP_OBJ_BLOB, digest);
			snap_obj_name(to, SNAP_OBJ_SNAPSHOT, committed[i % nsnap]);
			if (snap_ref_add(s, from, to, &err) < 0) {
				fprintf(stderr, "gc-fixture: %s\n", sc_err_msg(&err));
				return 1;
			}
		}
	}
	for (int i = 0; i < nsnap; i++)
		free(committed[i]);
	free(committed);
	free(buf);
	snap_store_close(s);
	return 0;
}
