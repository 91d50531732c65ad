/*
 * libFuzzer target for the JSON side of image import. The first input byte
 * chooses the document the rest replaces in an otherwise valid image:
 *   0  index.json of an OCI layout
 *   1  the manifest (index.json points at it, digest and size right)
 *   2  the config (index and manifest point at it)
 *   3  manifest.json of a docker save archive
 * In the document, @LAYER@, @CONFIG@ and @MANIFEST@ become the digests of
 * the valid layer, config and manifest, and @CSIZE@ and @MSIZE@ their
 * sizes, so seeds (and their mutations) can reach past the digest checks.
 * The layout is written to a scratch folder and imported into a store kept
 * for the whole run; whatever was imported is removed again. Built only
 * with -Dfuzz=true; run it with tests/fuzz/run-fuzz.sh image.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"
#include "image.h"
#include "store.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct snap_store *store;
static char store_dir[] = "/tmp/fuzz-image-store.XXXXXX";

/* A one-file layer: an uncompressed tar of "f" holding "x". */
static uint8_t layer[2048];

static void
put_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		abort();
	close(fd);
}

/* Stores data as a blob of the layout; digest receives "sha256:HEX". */
static void
put_blob(const char *dir, const void *data, size_t len, char digest[SC_DIGEST_STR_LEN + 1])
{
	sc_sha256_buf(data, len, digest);
	char name[128];
	snprintf(name, sizeof(name), "blobs/sha256/%s", digest + 7);
	put_file(dir, name, data, len);
}

/* doc with every placeholder replaced, in a malloc-ed buffer (*ret_len bytes). */
static char *
substitute(const char *doc, size_t len, const char *const subst[][2], size_t n, size_t *ret_len)
{
	size_t cap = len + 1, out = 0;
	for (size_t i = 0; i < len; i++)
		if (doc[i] == '@')
			cap += 80; /* a digest is longer than its placeholder */
	char *buf = malloc(cap);
	if (!buf)
		abort();
	for (size_t i = 0; i < len;) {
		size_t k = 0;
		for (; k < n; k++) {
			size_t pl = strlen(subst[k][0]);
			if (i + pl <= len && memcmp(doc + i, subst[k][0], pl) == 0) {
				size_t vl = strlen(subst[k][1]);
				memcpy(buf + out, subst[k][1], vl);
				out += vl;
				i += pl;
				break;
			}
		}
		if (k == n)
			buf[out++] = doc[i++];
	}
	*ret_len = out;
	return buf;
}

static void
remove_store(void)
{
	store = snap_store_close(store);
	sc_rm_rf_at(AT_FDCWD, store_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (!mkdtemp(store_dir))
		abort();
	atexit(remove_store);
	struct snap_store_opts o = {.root = store_dir, .driver = "native"};
	struct sc_err err = SC_ERR_INIT;
	if (snap_store_open(&o, &store, &err) < 0) {
		fprintf(stderr, "fuzz-image: %s\n", sc_err_msg(&err));
		abort();
	}
	/* ustar header for "f", size 1, then its data block and two zero blocks. */
	memcpy(layer, "f", 1);
	memcpy(layer + 100, "0000644", 7);
	memcpy(layer + 108, "0000000", 7);
	memcpy(layer + 116, "0000000", 7);
	memcpy(layer + 124, "00000000001", 11);
	memcpy(layer + 136, "00000000000", 11);
	layer[156] = '0';
	memcpy(layer + 257, "ustar", 6);
	memcpy(layer + 263, "00", 2);
	memset(layer + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += layer[i];
	snprintf((char *)layer + 148, 8, "%06o", sum);
	layer[512] = 'x';
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int mode = data[0] & 3;
	char dir[] = "/tmp/fuzz-image.XXXXXX";
	if (!mkdtemp(dir))
		abort();
	char sub[600];
	snprintf(sub, sizeof(sub), "%s/blobs", dir);
	mkdir(sub, 0755);
	snprintf(sub, sizeof(sub), "%s/blobs/sha256", dir);
	mkdir(sub, 0755);
	char ld[SC_DIGEST_STR_LEN + 1], cd[SC_DIGEST_STR_LEN + 1], md[SC_DIGEST_STR_LEN + 1];
	put_blob(dir, layer, sizeof(layer), ld);
	char config[512], manifest[1024], index[1024];
	int clen = snprintf(config, sizeof(config),
			    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":"
			    "\"layers\",\"diff_ids\":[\"%s\"]}}",
			    ld);
	/* The valid manifest, for the placeholders of an index. */
	char vcd[SC_DIGEST_STR_LEN + 1], vmd[SC_DIGEST_STR_LEN + 1], csize[24], msize[24];
	sc_sha256_buf(config, (size_t)clen, vcd);
	int vmlen = snprintf(
		manifest, sizeof(manifest),
		"{\"schemaVersion\":2,\"mediaType\":\"application/"
		"vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/"
		"vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%d},\"layers\":[{"
		"\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\","
		"\"size\":%zu}]}",
		vcd, clen, ld, sizeof(layer));
	sc_sha256_buf(manifest, (size_t)vmlen, vmd);
	snprintf(csize, sizeof(csize), "%d", clen);
	snprintf(msize, sizeof(msize), "%d", vmlen);
	const char *const subst[][2] = {{"@LAYER@", ld},
					{"@CONFIG@", vcd},
					{"@MANIFEST@", vmd},
					{"@CSIZE@", csize},
					{"@MSIZE@", msize}};
	size_t len;
	char *doc = substitute((const char *)data + 1, size - 1, subst, 5, &len);
	if (mode == 3) {
		/* docker save: the config and the layer under fixed names the seeds use. */
		put_file(dir, "config.json", config, (size_t)clen);
		snprintf(sub, sizeof(sub), "%s/l", dir);
		mkdir(sub, 0755);
		put_file(dir, "l/layer.tar", layer, sizeof(layer));
		put_file(dir, "manifest.json", doc, len);
	} else {
		const char *cfg = config;
		size_t cfg_len = (size_t)clen;
		if (mode == 2) {
			cfg = doc;
			cfg_len = len;
		}
		put_blob(dir, cfg, cfg_len, cd);
		const char *man = manifest;
		size_t man_len = (size_t)snprintf(
			manifest, sizeof(manifest),
			"{\"schemaVersion\":2,\"mediaType\":\"application/"
			"vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/"
			"vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},\"layers\":"
			"[{"
			"\"mediaType\":\"application/"
			"vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\","
			"\"size\":%zu}]}",
			cd, cfg_len, ld, sizeof(layer));
		if (mode == 1) {
			man = doc;
			man_len = len;
		}
		put_blob(dir, man, man_len, md);
		if (mode == 0) {
			put_file(dir, "index.json", doc, len);
		} else {
			int n = snprintf(
				index, sizeof(index),
				"{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
				"\"application/vnd.oci.image.manifest.v1+json\",\"digest\":"
				"\"%s\",\"size\":%zu}]}",
				md, man_len);
			put_file(dir, "index.json", index, (size_t)n);
		}
		put_file(dir, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
	}
	struct snap_image_import_opts o = {
		.name = "fuzz:1",
		.limits = {.max_entries = 64, .max_bytes = 1 << 20},
	};
	struct snap_image_info info = {0};
	struct sc_err err = SC_ERR_INIT;
	if (snap_image_import(store, dir, &o, &info, &err) >= 0) {
		snap_image_info_clear(&info);
		snap_image_remove(store, "fuzz:1", NULL);
	} else if (getenv("FUZZ_VERBOSE")) {
		fprintf(stderr, "fuzz-image: mode %d: %s\n", mode, sc_err_msg(&err));
	}
	free(doc);
	if (sc_rm_rf_at(AT_FDCWD, dir) < 0)
		abort();
	return 0;
}
