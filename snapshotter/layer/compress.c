/*
 * Compression for layers: gzip (ISA-L's igzip for levels 0-3, zlib for
 * 4-9), zstd, or none, with the sha256 of both sides computed as the bytes
 * pass. Decompression detects the format from the magic bytes and fails on
 * a truncated or corrupt stream rather than returning what it had.
 *
 * The writer works in two threads once a layer outgrows one block: the
 * caller's thread reads files, frames the tar and hashes it; a second
 * thread compresses, hashes the compressed bytes and hands them to the
 * sink. Blocks pass between them through a ring of ZOUT_BLOCKS buffers,
 * so memory stays fixed and the caller waits when the compressor falls
 * behind. A layer smaller than one block never starts the thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <isa-l/igzip_lib.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "cleanup.h"
#include "layer-internal.h"
#include "util.h"

const char *
snap_compression_to_string(enum snap_compression c)
{
	static const char *const names[] = {"uncompressed", "gzip", "zstd"};
	return (unsigned)c < ARRAY_SIZE(names) ? names[c] : NULL;
}

int
snap_compression_from_string(const char *s)
{
	if (strcmp(s, "none") == 0)
		return SNAP_COMPRESSION_NONE;
	for (int c = 0; c < _SNAP_COMPRESSION_MAX; c++)
		if (strcmp(s, snap_compression_to_string(c)) == 0)
			return c;
	return -EINVAL;
}

const char *
snap_compression_media_type(enum snap_compression c, bool oci)
{
	switch (c) {
	case SNAP_COMPRESSION_NONE:
		return oci ? "application/vnd.oci.image.layer.v1.tar"
			   : "application/vnd.docker.image.rootfs.diff.tar";
	case SNAP_COMPRESSION_GZIP:
		return oci ? "application/vnd.oci.image.layer.v1.tar+gzip"
			   : "application/vnd.docker.image.rootfs.diff.tar.gzip";
	case SNAP_COMPRESSION_ZSTD:
		return oci ? "application/vnd.oci.image.layer.v1.tar+zstd"
			   : "application/vnd.docker.image.rootfs.diff.tar.zstd";
	default:
		return NULL;
	}
}

enum snap_compression
snap_compression_detect(const void *head, size_t len)
{
	const uint8_t *p = head;
	if (len >= 2 && p[0] == 0x1f && p[1] == 0x8b)
		return SNAP_COMPRESSION_GZIP;
	if (len >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
		return SNAP_COMPRESSION_ZSTD;
	return SNAP_COMPRESSION_NONE;
}

/* Other compressions we recognise only to refuse them by name. */
static const char *
foreign_compression(const uint8_t *p, size_t len)
{
	if (len >= 3 && memcmp(p, "BZh", 3) == 0)
		return "bzip2";
	if (len >= 6 && memcmp(p,
			       "\xfd"
			       "7zXZ\0",
			       6) == 0)
		return "xz";
	return NULL;
}

/* --- writer ------------------------------------------------------------- */

#define ZOUT_BLOCKS 4

struct layer_zout {
	enum snap_compression c;
	snap_layer_sink_fn sink;
	void *sink_arg;
	struct sc_sha256 *hu, *hc;
	uint64_t in, out;
	uint8_t *buf; /* compressed output waiting for the sink */
	struct isal_zstream *isal;
	uint8_t *level_buf;
	z_stream *zs;
	ZSTD_CStream *zstd;

	/* The ring: the caller fills block[fill]; block[next..] wait for the compressor. */
	uint8_t *block[ZOUT_BLOCKS];
	size_t block_len[ZOUT_BLOCKS];
	unsigned fill;	 /* the caller's block */
	unsigned next;	 /* the compressor's next block */
	unsigned queued; /* blocks handed over and not yet compressed */
	bool last;	 /* the block handed over last ends the stream */
	bool quit;	 /* the caller gave up: stop */
	bool failed;	 /* the compressor stopped on thread_err */
	bool started, joined;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct sc_err thread_err;
};

static int zout_run(struct layer_zout *z, const void *data, size_t len, bool end,
		    struct sc_err *err);

/* Joins the compressing thread, if one runs; quit: stop it without finishing the stream. */
static void
zout_join(struct layer_zout *z, bool quit)
{
	if (!z->started || z->joined)
		return;
	if (quit) {
		pthread_mutex_lock(&z->mu);
		z->quit = true;
		pthread_cond_broadcast(&z->cv);
		pthread_mutex_unlock(&z->mu);
	}
	pthread_join(z->thread, NULL);
	z->joined = true;
}

static void *
zout_thread(void *arg)
{
	struct layer_zout *z = arg;
	pthread_mutex_lock(&z->mu);
	for (;;) {
		while (z->queued == 0 && !z->quit)
			pthread_cond_wait(&z->cv, &z->mu);
		if (z->quit)
			break;
		unsigned i = z->next;
		bool end = z->last && z->queued == 1;
		pthread_mutex_unlock(&z->mu);
		int r = zout_run(z, z->block[i], z->block_len[i], end, &z->thread_err);
		pthread_mutex_lock(&z->mu);
		z->next = (i + 1) % ZOUT_BLOCKS;
		z->queued--;
		pthread_cond_broadcast(&z->cv);
		if (r < 0) {
			z->failed = true;
			break;
		}
		if (end)
			break;
	}
	pthread_mutex_unlock(&z->mu);
	return NULL;
}

/* The compressor's error, in the caller's err. */
static int
zout_thread_error(struct layer_zout *z, struct sc_err *err)
{
	return sc_err_set(err, z->thread_err.code ? z->thread_err.code : -EIO, "%s",
			  z->thread_err.msg);
}

/*
 * Hands the caller's block to the compressor (starting it on the first
 * block) and waits for a free one; end: this block ends the stream.
 */
static int
zout_hand_over(struct layer_zout *z, bool end, struct sc_err *err)
{
	if (!z->started) {
		for (unsigned i = 1; i < ZOUT_BLOCKS; i++) {
			z->block[i] = malloc(LAYER_BUF_SIZE);
			if (!z->block[i])
				return sc_err_set(err, -ENOMEM, "out of memory");
		}
		int r = sc_thread_start(&z->thread, zout_thread, z);
		if (r != 0)
			return sc_err_set(err, -r, "cannot start the layer compressor: %s",
					  strerror(r));
		z->started = true;
	}
	pthread_mutex_lock(&z->mu);
	z->last = end;
	z->queued++;
	pthread_cond_broadcast(&z->cv);
	z->fill = (z->fill + 1) % ZOUT_BLOCKS;
	while (z->queued == ZOUT_BLOCKS && !z->failed)
		pthread_cond_wait(&z->cv, &z->mu);
	bool failed = z->failed;
	pthread_mutex_unlock(&z->mu);
	if (failed)
		return zout_thread_error(z, err);
	z->block_len[z->fill] = 0;
	return 0;
}

struct layer_zout *
layer_zout_free(struct layer_zout *z)
{
	if (!z)
		return NULL;
	zout_join(z, true);
	pthread_mutex_destroy(&z->mu);
	pthread_cond_destroy(&z->cv);
	for (unsigned i = 0; i < ZOUT_BLOCKS; i++)
		free(z->block[i]);
	sc_sha256_free(z->hu);
	sc_sha256_free(z->hc);
	free(z->buf);
	free(z->isal);
	free(z->level_buf);
	if (z->zs) {
		deflateEnd(z->zs);
		free(z->zs);
	}
	ZSTD_freeCStream(z->zstd);
	free(z);
	return NULL;
}

static int
zout_emit(struct layer_zout *z, size_t n, struct sc_err *err)
{
	if (n == 0)
		return 0;
	int r = z->hc ? sc_sha256_update(z->hc, z->buf, n) : 0;
	if (r < 0)
		return sc_err_set(err, r, "cannot hash layer");
	z->out += n;
	return z->sink(z->sink_arg, z->buf, n, err);
}

int
layer_zout_new(enum snap_compression c, int level, unsigned hash, snap_layer_sink_fn sink,
	       void *sink_arg, struct layer_zout **ret, struct sc_err *err)
{
	struct layer_zout *z = calloc(1, sizeof(*z));
	if (!z)
		return sc_err_set(err, -ENOMEM, "out of memory");
	z->c = c;
	z->sink = sink;
	z->sink_arg = sink_arg;
	pthread_mutex_init(&z->mu, NULL);
	pthread_cond_init(&z->cv, NULL);
	int r = 0;
	if (hash & LAYER_HASH_TAR)
		r = sc_sha256_new(&z->hu);
	if (r >= 0 && (hash & LAYER_HASH_OUT))
		r = sc_sha256_new(&z->hc);
	z->buf = malloc(LAYER_BUF_SIZE);
	z->block[0] = malloc(LAYER_BUF_SIZE);
	if (r < 0 || !z->buf || !z->block[0]) {
		layer_zout_free(z);
		return sc_err_set(err, -ENOMEM, "out of memory");
	}
	switch (c) {
	case SNAP_COMPRESSION_NONE:
		break;
	case SNAP_COMPRESSION_GZIP:
		if (level < 0)
			level = SNAP_GZIP_LEVEL_DEFAULT;
		if (level > 9) {
			layer_zout_free(z);
			return sc_err_set(err, -EINVAL, "gzip level %d is not 0-9", level);
		}
		if (level <= ISAL_DEF_MAX_LEVEL) {
			static const uint32_t sizes[] = {
				ISAL_DEF_LVL0_DEFAULT, ISAL_DEF_LVL1_DEFAULT, ISAL_DEF_LVL2_DEFAULT,
				ISAL_DEF_LVL3_DEFAULT};
			z->isal = calloc(1, sizeof(*z->isal));
			z->level_buf = malloc(sizes[level]);
			if (!z->isal || !z->level_buf) {
				layer_zout_free(z);
				return sc_err_set(err, -ENOMEM, "out of memory");
			}
			isal_deflate_init(z->isal);
			z->isal->level = (uint32_t)level;
			z->isal->level_buf = z->level_buf;
			z->isal->level_buf_size = sizes[level];
			z->isal->gzip_flag = IGZIP_GZIP;
		} else {
			z->zs = calloc(1, sizeof(*z->zs));
			/* windowBits 16+15: a gzip wrapper with a zero mtime and no name. */
			if (!z->zs || deflateInit2(z->zs, level, Z_DEFLATED, 16 + 15, 8,
						   Z_DEFAULT_STRATEGY) != Z_OK) {
				free(z->zs);
				z->zs = NULL;
				layer_zout_free(z);
				return sc_err_set(err, -ENOMEM, "cannot start zlib");
			}
		}
		break;
	case SNAP_COMPRESSION_ZSTD:
		if (level < 0)
			level = SNAP_ZSTD_LEVEL_DEFAULT;
		if (level < 1 || level > 19) {
			layer_zout_free(z);
			return sc_err_set(err, -EINVAL, "zstd level %d is not 1-19", level);
		}
		z->zstd = ZSTD_createCStream();
		if (!z->zstd || ZSTD_isError(ZSTD_initCStream(z->zstd, level))) {
			layer_zout_free(z);
			return sc_err_set(err, -ENOMEM, "cannot start zstd");
		}
		break;
	default:
		layer_zout_free(z);
		return sc_err_set(err, -EINVAL, "unknown compression %d", (int)c);
	}
	*ret = z;
	return 0;
}

static int
zout_run(struct layer_zout *z, const void *data, size_t len, bool end, struct sc_err *err)
{
	int r;
	switch (z->c) {
	case SNAP_COMPRESSION_NONE:
		if (len == 0)
			return 0;
		r = z->hc ? sc_sha256_update(z->hc, data, len) : 0;
		if (r < 0)
			return sc_err_set(err, r, "cannot hash layer");
		z->out += len;
		return z->sink(z->sink_arg, data, len, err);
	case SNAP_COMPRESSION_GZIP:
		if (z->isal) {
			z->isal->next_in = (uint8_t *)data;
			z->isal->avail_in = (uint32_t)len;
			z->isal->end_of_stream = end;
			do {
				z->isal->next_out = z->buf;
				z->isal->avail_out = LAYER_BUF_SIZE;
				if (isal_deflate(z->isal) != COMP_OK)
					return sc_err_set(err, -EIO, "gzip compression failed");
				r = zout_emit(z, LAYER_BUF_SIZE - z->isal->avail_out, err);
				if (r < 0)
					return r;
			} while (z->isal->avail_in > 0 ||
				 (end && z->isal->internal_state.state != ZSTATE_END));
			return 0;
		}
		z->zs->next_in = (Bytef *)data;
		z->zs->avail_in = (uInt)len;
		for (;;) {
			z->zs->next_out = z->buf;
			z->zs->avail_out = LAYER_BUF_SIZE;
			int zr = deflate(z->zs, end ? Z_FINISH : Z_NO_FLUSH);
			if (zr == Z_STREAM_ERROR)
				return sc_err_set(err, -EIO, "gzip compression failed");
			r = zout_emit(z, LAYER_BUF_SIZE - z->zs->avail_out, err);
			if (r < 0)
				return r;
			if (end ? zr == Z_STREAM_END : z->zs->avail_in == 0)
				return 0;
		}
	case SNAP_COMPRESSION_ZSTD: {
		ZSTD_inBuffer in = {data, len, 0};
		for (;;) {
			ZSTD_outBuffer out = {z->buf, LAYER_BUF_SIZE, 0};
			size_t left = ZSTD_compressStream2(z->zstd, &out, &in,
							   end ? ZSTD_e_end : ZSTD_e_continue);
			if (ZSTD_isError(left))
				return sc_err_set(err, -EIO, "zstd compression failed: %s",
						  ZSTD_getErrorName(left));
			r = zout_emit(z, out.pos, err);
			if (r < 0)
				return r;
			if (end ? left == 0 : in.pos == in.size)
				return 0;
		}
	}
	default:
		return -EINVAL;
	}
}

int
layer_zout_write(struct layer_zout *z, const void *data, size_t len, struct sc_err *err)
{
	if (len == 0)
		return 0;
	int r = z->hu ? sc_sha256_update(z->hu, data, len) : 0;
	if (r < 0)
		return sc_err_set(err, r, "cannot hash layer");
	z->in += len;
	const uint8_t *p = data;
	while (len > 0) {
		size_t have = z->block_len[z->fill];
		size_t n = LAYER_BUF_SIZE - have < len ? LAYER_BUF_SIZE - have : len;
		memcpy(z->block[z->fill] + have, p, n);
		z->block_len[z->fill] = have + n;
		p += n;
		len -= n;
		if (z->block_len[z->fill] == LAYER_BUF_SIZE) {
			r = zout_hand_over(z, false, err);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int
layer_zout_finish(struct layer_zout *z, char diff_id[SC_DIGEST_STR_LEN + 1],
		  char digest[SC_DIGEST_STR_LEN + 1], uint64_t *ret_tar_size, uint64_t *ret_size,
		  struct sc_err *err)
{
	int r;
	if (z->started) {
		r = zout_hand_over(z, true, err);
		zout_join(z, false); /* it stops after the last block, or has stopped on an error */
		if (r >= 0 && z->failed)
			r = zout_thread_error(z, err);
	} else {
		r = zout_run(z, z->block[z->fill], z->block_len[z->fill], true, err);
	}
	if (r < 0)
		return r;
	diff_id[0] = digest[0] = '\0';
	if ((z->hu && sc_sha256_final(z->hu, diff_id) < 0) ||
	    (z->hc && sc_sha256_final(z->hc, digest) < 0))
		return sc_err_set(err, -ENOMEM, "cannot hash layer");
	if (ret_tar_size)
		*ret_tar_size = z->in;
	if (ret_size)
		*ret_size = z->out;
	return 0;
}

/* --- reader ------------------------------------------------------------- */

/* Decompressed blocks the read-ahead thread may be ahead by. */
#define ZIN_RING 4

struct layer_zin {
	int fd;
	enum snap_compression c;
	uint64_t limit; /* decompressed bytes allowed; 0: no limit */
	uint64_t total; /* decompressed bytes so far */
	snap_layer_sink_fn tee;
	void *tee_arg;
	struct sc_sha256 *hu;
	uint8_t *in, *out;
	uint8_t *dst;	     /* where decompression writes: out, or a read-ahead block */
	const uint8_t *outp; /* where the last decompressed bytes are */
	size_t in_pos, in_len;
	bool in_eof;
	bool done; /* the compressed stream ended */
	struct inflate_state *isal;
	ZSTD_DStream *zstd;
	size_t zstd_last; /* last ZSTD_decompressStream() hint: 0 at a frame's end */

	/*
	 * Read-ahead (layer_zin_start): a thread reads, tees, decompresses and
	 * counts into a ring of ZIN_RING blocks; layer_zin_read hands them out
	 * in order and hashes them. Under mu: filled, eof, failed, quit.
	 */
	bool threaded;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint8_t *ring[ZIN_RING];
	size_t ring_len[ZIN_RING];
	unsigned head;	 /* the oldest filled block */
	unsigned filled; /* blocks ready, the one handed out last included */
	bool handed;	 /* the head block is out with the caller */
	bool eof, failed, quit, joined;
	struct sc_err terr;
};

static void zin_join(struct layer_zin *z, bool quit);

struct layer_zin *
layer_zin_free(struct layer_zin *z)
{
	if (!z)
		return NULL;
	zin_join(z, true);
	if (z->threaded) {
		pthread_mutex_destroy(&z->mu);
		pthread_cond_destroy(&z->cv);
	}
	for (unsigned i = 0; i < ZIN_RING; i++)
		free(z->ring[i]);
	sc_sha256_free(z->hu);
	free(z->in);
	free(z->out);
	free(z->isal);
	ZSTD_freeDStream(z->zstd);
	free(z);
	return NULL;
}

/* Refills the input buffer; returns bytes now available, 0 at end of file. */
static ssize_t
zin_fill(struct layer_zin *z, struct sc_err *err)
{
	if (z->in_pos < z->in_len)
		return (ssize_t)(z->in_len - z->in_pos);
	if (z->in_eof)
		return 0;
	ssize_t n = SC_RETRY_EINTR(read(z->fd, z->in, LAYER_BUF_SIZE));
	if (n < 0)
		return sc_err_setsys(err, -errno, "cannot read layer");
	if (n == 0) {
		z->in_eof = true;
		return 0;
	}
	if (z->tee) {
		int r = z->tee(z->tee_arg, z->in, (size_t)n, err);
		if (r < 0)
			return r;
	}
	z->in_pos = 0;
	z->in_len = (size_t)n;
	return n;
}

int
layer_zin_new(int fd, snap_layer_sink_fn tee, void *tee_arg, struct layer_zin **ret,
	      struct sc_err *err)
{
	struct layer_zin *z = calloc(1, sizeof(*z));
	if (!z)
		return sc_err_set(err, -ENOMEM, "out of memory");
	z->fd = fd;
	z->tee = tee;
	z->tee_arg = tee_arg;
	z->in = malloc(LAYER_BUF_SIZE);
	z->out = z->dst = malloc(LAYER_BUF_SIZE);
	if (!z->in || !z->out || sc_sha256_new(&z->hu) < 0) {
		layer_zin_free(z);
		return sc_err_set(err, -ENOMEM, "out of memory");
	}
	/* Enough bytes to recognise the format (a short read is not the end). */
	while (z->in_len < 6 && !z->in_eof) {
		ssize_t n = SC_RETRY_EINTR(read(fd, z->in + z->in_len, LAYER_BUF_SIZE - z->in_len));
		if (n < 0) {
			int r = sc_err_setsys(err, -errno, "cannot read layer");
			layer_zin_free(z);
			return r;
		}
		if (n == 0)
			z->in_eof = true;
		z->in_len += (size_t)n;
	}
	if (tee && z->in_len > 0) {
		int r = tee(tee_arg, z->in, z->in_len, err);
		if (r < 0) {
			layer_zin_free(z);
			return r;
		}
	}
	const char *foreign = foreign_compression(z->in, z->in_len);
	if (foreign) {
		layer_zin_free(z);
		return sc_err_set(err, -EOPNOTSUPP,
				  "layer is %s-compressed; only gzip, zstd and uncompressed tar "
				  "are supported",
				  foreign);
	}
	z->c = snap_compression_detect(z->in, z->in_len);
	if (z->c == SNAP_COMPRESSION_GZIP) {
		z->isal = calloc(1, sizeof(*z->isal));
		if (!z->isal) {
			layer_zin_free(z);
			return sc_err_set(err, -ENOMEM, "out of memory");
		}
		isal_inflate_init(z->isal);
		z->isal->crc_flag = ISAL_GZIP;
	} else if (z->c == SNAP_COMPRESSION_ZSTD) {
		z->zstd = ZSTD_createDStream();
		if (!z->zstd || ZSTD_isError(ZSTD_initDStream(z->zstd))) {
			layer_zin_free(z);
			return sc_err_set(err, -ENOMEM, "cannot start zstd");
		}
		z->zstd_last = 1;
	}
	*ret = z;
	return 0;
}

enum snap_compression
layer_zin_compression(const struct layer_zin *z)
{
	return z->c;
}

static bool
all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* After a gzip member ends: another member, zero padding, or the end. */
static int
gzip_next_member(struct layer_zin *z, struct sc_err *err)
{
	for (;;) {
		ssize_t n = zin_fill(z, err);
		if (n < 0)
			return (int)n;
		if (n == 0) {
			z->done = true;
			return 0;
		}
		const uint8_t *p = z->in + z->in_pos;
		if (p[0] == 0x1f) {
			isal_inflate_reset(z->isal);
			z->isal->crc_flag = ISAL_GZIP;
			return 1;
		}
		if (!all_zero(p, (size_t)n))
			return sc_err_set(err, -EBADMSG, "layer has data after its gzip stream");
		z->in_pos = z->in_len;
	}
}

static ssize_t
zin_decompress(struct layer_zin *z, struct sc_err *err)
{
	for (;;) {
		if (z->done)
			return 0;
		ssize_t n = zin_fill(z, err);
		if (n < 0)
			return n;
		switch (z->c) {
		case SNAP_COMPRESSION_NONE:
			if (n == 0) {
				z->done = true;
				return 0;
			}
			/* Hand out the input buffer itself: no copy. */
			z->outp = z->in + z->in_pos;
			z->in_pos = z->in_len;
			return n;
		case SNAP_COMPRESSION_GZIP: {
			if (n == 0)
				return sc_err_set(err, -EBADMSG,
						  "truncated gzip stream: the layer ends before "
						  "its compressed data does");
			z->isal->next_in = z->in + z->in_pos;
			z->isal->avail_in = (uint32_t)n;
			z->outp = z->dst;
			z->isal->next_out = z->dst;
			z->isal->avail_out = LAYER_BUF_SIZE;
			int ir = isal_inflate(z->isal);
			if (ir != ISAL_DECOMP_OK)
				return sc_err_set(err, -EBADMSG, "corrupt gzip stream (%s)",
						  ir == ISAL_INCORRECT_CHECKSUM ? "bad checksum"
										: "bad data");
			z->in_pos = z->in_len - z->isal->avail_in;
			size_t got = LAYER_BUF_SIZE - z->isal->avail_out;
			if (z->isal->block_state == ISAL_BLOCK_FINISH) {
				int r = gzip_next_member(z, err);
				if (r < 0)
					return r;
			}
			if (got > 0)
				return (ssize_t)got;
			break;
		}
		case SNAP_COMPRESSION_ZSTD: {
			if (n == 0) {
				if (z->zstd_last != 0)
					return sc_err_set(err, -EBADMSG,
							  "truncated zstd stream: the layer ends "
							  "before its compressed data does");
				z->done = true;
				return 0;
			}
			ZSTD_inBuffer in = {z->in + z->in_pos, (size_t)n, 0};
			ZSTD_outBuffer out = {z->dst, LAYER_BUF_SIZE, 0};
			z->outp = z->dst;
			size_t zr = ZSTD_decompressStream(z->zstd, &out, &in);
			if (ZSTD_isError(zr))
				return sc_err_set(err, -EBADMSG, "corrupt zstd stream: %s",
						  ZSTD_getErrorName(zr));
			z->zstd_last = zr;
			z->in_pos += in.pos;
			if (out.pos > 0)
				return (ssize_t)out.pos;
			break;
		}
		default:
			return -EINVAL;
		}
	}
}

void
layer_zin_set_limit(struct layer_zin *z, uint64_t limit)
{
	z->limit = limit;
}

/*
 * One piece of the stream, decompressed and counted on the calling thread,
 * and hashed there when hash (the read-ahead thread leaves that to the
 * reader, which has the time).
 */
static ssize_t
zin_read_piece(struct layer_zin *z, const void **ret, bool hash, struct sc_err *err)
{
	ssize_t n = zin_decompress(z, err);
	if (n > 0 && z->limit && (z->total += (uint64_t)n) > z->limit)
		return sc_err_set(err, -EFBIG,
				  "layer is larger than %" PRIu64
				  " bytes uncompressed; raise the limit (--max-size) if it is "
				  "trusted",
				  z->limit);
	if (n > 0 && hash && sc_sha256_update(z->hu, z->outp, (size_t)n) < 0)
		return sc_err_set(err, -ENOMEM, "cannot hash layer");
	if (n > 0)
		*ret = z->outp;
	return n;
}

static void *
zin_thread(void *arg)
{
	struct layer_zin *z = arg;
	pthread_mutex_lock(&z->mu);
	for (;;) {
		while (z->filled == ZIN_RING && !z->quit)
			pthread_cond_wait(&z->cv, &z->mu);
		if (z->quit)
			break;
		unsigned i = (z->head + z->filled) % ZIN_RING;
		pthread_mutex_unlock(&z->mu);
		/*
		 * Fill block i, outside the lock: the caller only reads blocks
		 * before it. Decompression (only compressed streams are read
		 * ahead) writes into it directly, never more than a block.
		 */
		const void *p;
		z->dst = z->ring[i];
		ssize_t n = zin_read_piece(z, &p, false, &z->terr);
		size_t len = n > 0 ? (size_t)n : 0;
		pthread_mutex_lock(&z->mu);
		z->ring_len[i] = len;
		if (len > 0)
			z->filled++;
		if (n < 0)
			z->failed = true;
		else if (n == 0)
			z->eof = true;
		pthread_cond_broadcast(&z->cv);
		if (n <= 0)
			break;
	}
	pthread_mutex_unlock(&z->mu);
	return NULL;
}

/* Stops the read-ahead thread (at once when quit, else when it ends) and waits for it. */
static void
zin_join(struct layer_zin *z, bool quit)
{
	if (!z->threaded || z->joined)
		return;
	pthread_mutex_lock(&z->mu);
	if (quit)
		z->quit = true;
	pthread_cond_broadcast(&z->cv);
	pthread_mutex_unlock(&z->mu);
	pthread_join(z->thread, NULL);
	z->joined = true;
}

int
layer_zin_start(struct layer_zin *z, struct sc_err *err)
{
	if (z->c == SNAP_COMPRESSION_NONE)
		return 0; /* nothing to overlap: reading is all there is */
	for (unsigned i = 0; i < ZIN_RING; i++) {
		z->ring[i] = malloc(LAYER_BUF_SIZE);
		if (!z->ring[i])
			return sc_err_set(err, -ENOMEM, "out of memory");
	}
	pthread_mutex_init(&z->mu, NULL);
	pthread_cond_init(&z->cv, NULL);
	z->terr = (struct sc_err)SC_ERR_INIT;
	int r = sc_thread_start(&z->thread, zin_thread, z);
	if (r != 0) {
		pthread_mutex_destroy(&z->mu);
		pthread_cond_destroy(&z->cv);
		return 0; /* no thread: read on the caller's, as before */
	}
	z->threaded = true;
	return 0;
}

ssize_t
layer_zin_read(struct layer_zin *z, const void **ret, struct sc_err *err)
{
	if (!z->threaded)
		return zin_read_piece(z, ret, true, err);
	pthread_mutex_lock(&z->mu);
	if (z->handed) {
		/* The caller is done with the block handed out last. */
		z->handed = false;
		z->head = (z->head + 1) % ZIN_RING;
		z->filled--;
		pthread_cond_broadcast(&z->cv);
	}
	while (z->filled == 0 && !z->eof && !z->failed)
		pthread_cond_wait(&z->cv, &z->mu);
	ssize_t n;
	if (z->filled > 0) {
		*ret = z->ring[z->head];
		n = (ssize_t)z->ring_len[z->head];
		z->handed = true;
	} else if (z->failed) {
		n = sc_err_set(err, z->terr.code ? z->terr.code : -EIO, "%s", z->terr.msg);
	} else {
		n = 0;
	}
	pthread_mutex_unlock(&z->mu);
	/* The block is the caller's until the next call: hash it here, in order. */
	if (n > 0 && sc_sha256_update(z->hu, *ret, (size_t)n) < 0)
		return sc_err_set(err, -ENOMEM, "cannot hash layer");
	return n;
}

int
snap_layer_hash(int fd, uint64_t max_bytes, snap_layer_sink_fn tee, void *tee_arg,
		char diff_id[SC_DIGEST_STR_LEN + 1], enum snap_compression *ret_c,
		struct sc_err *err)
{
	struct layer_zin *z = NULL;
	int r = layer_zin_new(fd, tee, tee_arg, &z, err);
	if (r < 0)
		return r;
	layer_zin_set_limit(z, max_bytes ? max_bytes : SNAP_LAYER_MAX_BYTES_DEFAULT);
	if (ret_c)
		*ret_c = layer_zin_compression(z);
	r = layer_zin_finish(z, diff_id, err);
	layer_zin_free(z);
	return r;
}

int
layer_zin_finish(struct layer_zin *z, char diff_id[SC_DIGEST_STR_LEN + 1], struct sc_err *err)
{
	const void *p;
	ssize_t n;
	while ((n = layer_zin_read(z, &p, err)) > 0)
		;
	if (n < 0)
		return (int)n;
	zin_join(z, false); /* at the end, and the reader hashed every block */
	if (sc_sha256_final(z->hu, diff_id) < 0)
		return sc_err_set(err, -ENOMEM, "cannot hash layer");
	return 0;
}
