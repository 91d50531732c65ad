/*
 * The layer writer (snapshotter/layer/compress.c): every compression, sizes
 * around its block size, any write pattern. What it wrote is checked with
 * what the writer does not use itself: zlib's and zstd's own one-shot
 * decoders and OpenSSL's sha256. Also the failures: a sink that fails
 * before and after the compressing thread started, and a writer freed
 * halfway.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "layer-internal.h"
#include "tap.h"

#define MIB (1u << 20)

struct mem_sink {
	uint8_t *data;
	size_t len, cap;
	size_t fail_after; /* fail a call that would pass this many bytes; 0: never */
	unsigned calls;
};

static int
mem_sink(void *arg, const void *data, size_t len, struct sc_err *err)
{
	struct mem_sink *m = arg;
	m->calls++;
	if (m->fail_after && m->len + len > m->fail_after)
		return sc_err_set(err, -ENOSPC, "test sink is full at %zu bytes", m->len);
	if (m->len + len > m->cap) {
		size_t cap = m->cap ? m->cap : 4096;
		while (cap < m->len + len)
			cap *= 2;
		uint8_t *p = realloc(m->data, cap);
		if (!p)
			return sc_err_set(err, -ENOMEM, "out of memory");
		m->data = p;
		m->cap = cap;
	}
	memcpy(m->data + m->len, data, len);
	m->len += len;
	return 0;
}

/* Pseudo-random bytes, with runs of a repeated pattern so compression has something to do. */
static uint8_t *
test_data(size_t len, uint32_t seed)
{
	uint8_t *p = malloc(len ? len : 1);
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < len; i++) {
		if ((i / 4096) % 3 == 0) {
			p[i] = (uint8_t)(i % 61);
			continue;
		}
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
	return p;
}

static void
openssl_sha256(const void *data, size_t len, char out[SC_DIGEST_STR_LEN + 1])
{
	unsigned char md[32];
	unsigned int n = 0;
	ASSERT_TRUE(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) == 1);
	int o = snprintf(out, SC_DIGEST_STR_LEN + 1, "sha256:");
	for (unsigned i = 0; i < n; i++)
		o += snprintf(out + o, (size_t)(SC_DIGEST_STR_LEN + 1 - o), "%02x", md[i]);
}

/* The stream decoded by zlib or zstd themselves (or taken as it is). */
static uint8_t *
decode(enum snap_compression c, const struct mem_sink *m, size_t want)
{
	uint8_t *out = malloc(want + 1);
	ASSERT_NOT_NULL(out);
	if (c == SNAP_COMPRESSION_NONE) {
		ASSERT_EQ(m->len, want);
		if (want)
			memcpy(out, m->data, want);
	} else if (c == SNAP_COMPRESSION_GZIP) {
		z_stream zs = {0};
		ASSERT_EQ(inflateInit2(&zs, 16 + 15), Z_OK);
		zs.next_in = m->data;
		zs.avail_in = (uInt)m->len;
		zs.next_out = out;
		zs.avail_out = (uInt)want + 1;
		ASSERT_EQ(inflate(&zs, Z_FINISH), Z_STREAM_END);
		ASSERT_EQ(zs.total_out, want);
		ASSERT_EQ(zs.avail_in, 0); /* one gzip member, nothing after it */
		inflateEnd(&zs);
	} else {
		size_t n = ZSTD_decompress(out, want + 1, m->data, m->len);
		ASSERT_FALSE(ZSTD_isError(n));
		ASSERT_EQ(n, want);
	}
	return out;
}

struct zcase {
	enum snap_compression c;
	int level;
	const char *name;
};

static const struct zcase cases[] = {
	{SNAP_COMPRESSION_NONE, -1, "none"},
	{SNAP_COMPRESSION_GZIP, 1, "gzip-1"},
	{SNAP_COMPRESSION_GZIP, 6, "gzip-6"},
	{SNAP_COMPRESSION_ZSTD, 3, "zstd-3"},
};

/* Writes data in pieces of step bytes (0: pieces of varying size); returns what the sink got. */
static void
write_through(const struct zcase *zc, const uint8_t *data, size_t len, size_t step,
	      struct mem_sink *m, char diff_id[SC_DIGEST_STR_LEN + 1],
	      char digest[SC_DIGEST_STR_LEN + 1])
{
	struct layer_zout *z = NULL;
	struct sc_err err = SC_ERR_INIT;
	ASSERT_OK(layer_zout_new(zc->c, zc->level, LAYER_HASH_TAR | LAYER_HASH_OUT, mem_sink, m, &z,
				 &err));
	size_t off = 0, k = 0;
	while (off < len) {
		size_t n = step ? step : (size_t)(1 + (k * 7919) % 300000);
		if (n > len - off)
			n = len - off;
		if (layer_zout_write(z, data + off, n, &err) < 0)
			tap_fail(__FILE__, __LINE__, "%s write: %s", zc->name, sc_err_msg(&err));
		off += n;
		k++;
	}
	uint64_t tar_size = 0, size = 0;
	if (layer_zout_finish(z, diff_id, digest, &tar_size, &size, &err) < 0)
		tap_fail(__FILE__, __LINE__, "%s finish: %s", zc->name, sc_err_msg(&err));
	ASSERT_EQ(tar_size, len);
	ASSERT_EQ(size, m->len);
	layer_zout_free(z);
}

/* Sizes below, at and past one block and past the ring of blocks; both hashes and the bytes. */
TEST(round_trip)
{
	const size_t sizes[] = {0, 1, 511, MIB - 1, MIB, MIB + 1, 3 * MIB + 17, 9 * MIB + 4095};
	for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
		for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
			size_t len = sizes[si];
			uint8_t *data = test_data(len, (uint32_t)(si + 1));
			struct mem_sink m = {0};
			char diff_id[SC_DIGEST_STR_LEN + 1], digest[SC_DIGEST_STR_LEN + 1];
			write_through(&cases[ci], data, len, 0, &m, diff_id, digest);
			char want_u[SC_DIGEST_STR_LEN + 1], want_c[SC_DIGEST_STR_LEN + 1];
			openssl_sha256(data, len, want_u);
			openssl_sha256(m.data, m.len, want_c);
			ASSERT_STREQ(diff_id, want_u);
			ASSERT_STREQ(digest, want_c);
			uint8_t *back = decode(cases[ci].c, &m, len);
			ASSERT_TRUE(memcmp(back, data, len) == 0);
			printf("# %s %zu bytes -> %zu in %u sink calls\n", cases[ci].name, len,
			       m.len, m.calls);
			free(back);
			free(m.data);
			free(data);
		}
	}
}

/* The compressed bytes do not depend on how the caller cut its writes. */
TEST(same_bytes_for_any_write_pattern)
{
	size_t len = 5 * MIB + 333;
	uint8_t *data = test_data(len, 42);
	for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
		const size_t steps[] = {0, 512, 65536, MIB, len};
		char first[SC_DIGEST_STR_LEN + 1] = "";
		for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
			struct mem_sink m = {0};
			char diff_id[SC_DIGEST_STR_LEN + 1], digest[SC_DIGEST_STR_LEN + 1];
			write_through(&cases[ci], data, len, steps[k], &m, diff_id, digest);
			if (k == 0)
				memcpy(first, digest, sizeof(first));
			else
				ASSERT_STREQ(digest, first);
			free(m.data);
		}
	}
	free(data);
}

/* Hashing only what was asked: no digest of the compressed side when the sink keeps its own. */
TEST(hash_only_the_tar)
{
	uint8_t *data = test_data(2 * MIB, 3);
	struct mem_sink m = {0};
	struct layer_zout *z = NULL;
	struct sc_err err = SC_ERR_INIT;
	ASSERT_OK(layer_zout_new(SNAP_COMPRESSION_GZIP, 1, LAYER_HASH_TAR, mem_sink, &m, &z, &err));
	ASSERT_OK(layer_zout_write(z, data, 2 * MIB, &err));
	char diff_id[SC_DIGEST_STR_LEN + 1], digest[SC_DIGEST_STR_LEN + 1],
		want[SC_DIGEST_STR_LEN + 1];
	ASSERT_OK(layer_zout_finish(z, diff_id, digest, NULL, NULL, &err));
	openssl_sha256(data, 2 * MIB, want);
	ASSERT_STREQ(diff_id, want);
	ASSERT_STREQ(digest, "");
	layer_zout_free(z);
	free(m.data);
	free(data);
}

/*
 * A sink that fails: before the thread started (a small layer, at finish),
 * and on the thread (past the first blocks); the sink's own message comes
 * back, the writer stops taking data and frees cleanly.
 */
TEST(sink_failure)
{
	const size_t fail_at[] = {100, 3 * MIB};
	const size_t lens[] = {4096, 12 * MIB};
	for (size_t i = 0; i < 2; i++) {
		uint8_t *data = test_data(lens[i], 9);
		struct mem_sink m = {.fail_after = fail_at[i]};
		struct layer_zout *z = NULL;
		struct sc_err err = SC_ERR_INIT;
		ASSERT_OK(layer_zout_new(SNAP_COMPRESSION_NONE, -1, LAYER_HASH_TAR | LAYER_HASH_OUT,
					 mem_sink, &m, &z, &err));
		int r = 0;
		size_t off = 0;
		while (r >= 0 && off < lens[i]) {
			size_t n = lens[i] - off < 65536 ? lens[i] - off : 65536;
			r = layer_zout_write(z, data + off, n, &err);
			off += n;
		}
		char diff_id[SC_DIGEST_STR_LEN + 1], digest[SC_DIGEST_STR_LEN + 1];
		if (r >= 0)
			r = layer_zout_finish(z, diff_id, digest, NULL, NULL, &err);
		ASSERT_ERRNO(r, -ENOSPC);
		ASSERT_TRUE(strstr(sc_err_msg(&err), "test sink is full") != NULL);
		ASSERT_TRUE(m.len <= fail_at[i]);
		if (i == 1)
			ASSERT_TRUE(off < lens[i]); /* the caller heard of it before the end */
		layer_zout_free(z);
		free(m.data);
		free(data);
	}
}

/* Freed halfway with the thread busy: it stops, nothing hangs or leaks. */
TEST(free_halfway)
{
	uint8_t *data = test_data(6 * MIB, 5);
	for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
		struct mem_sink m = {0};
		struct layer_zout *z = NULL;
		struct sc_err err = SC_ERR_INIT;
		ASSERT_OK(layer_zout_new(cases[ci].c, cases[ci].level, LAYER_HASH_TAR, mem_sink, &m,
					 &z, &err));
		ASSERT_OK(layer_zout_write(z, data, 6 * MIB, &err));
		layer_zout_free(z);
		free(m.data);
	}
	free(data);
}

int
main(int argc, char **argv)
{
	return tap_main(argc, argv);
}
