/*
 * The tar framing of layer diffs and rootfs tars, written here rather than
 * through libarchive: loading libarchive pulls in libxml2, ICU and
 * libstdc++, which cost a build ~35 ms from a cold page cache for every
 * layer it writes, and framing a tar is small.
 *
 * The format is POSIX pax: a ustar header per entry, preceded by a pax
 * extended header only for what a ustar field cannot hold (a path or link
 * target over 100 bytes, a size over 8 GiB, an owner id over 2,097,151, a
 * time before 1970 or after 2242) and for xattrs (SCHILY.xattr.NAME, as
 * GNU tar and libarchive write them). Owner names are left out, times are
 * whole seconds, directories end in '/', and the archive ends with two
 * zero blocks and no further padding, so the same entries give the same
 * bytes.
 *
 * Output is gathered in a 64 KiB buffer and handed to the compressing
 * writer in whole buffers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "layer-internal.h"
#include "util.h"

#define BLOCK	    512
#define OUT_BUF	    (64u << 10)
#define NAME_LEN    100
#define MAX_OCTAL7  07777777ull	    /* mode, uid, gid, devices */
#define MAX_OCTAL11 077777777777ull /* size, mtime */

struct tar_writer {
	struct layer_zout *z;
	uint8_t buf[OUT_BUF];
	size_t len;
	uint64_t data_left; /* of the current entry */
	uint64_t data_size;
	struct sc_buf pax;
};

int
tar_writer_new(struct layer_zout *z, struct tar_writer **ret)
{
	struct tar_writer *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->z = z;
	*ret = t;
	return 0;
}

struct tar_writer *
tar_writer_free(struct tar_writer *t)
{
	if (t) {
		sc_buf_free(&t->pax);
		free(t);
	}
	return NULL;
}

static int
flush(struct tar_writer *t, struct sc_err *err)
{
	int r = t->len ? layer_zout_write(t->z, t->buf, t->len, err) : 0;
	t->len = 0;
	return r;
}

static int
put(struct tar_writer *t, const void *data, size_t len, struct sc_err *err)
{
	const uint8_t *p = data;
	while (len > 0) {
		if (t->len == OUT_BUF) {
			int r = flush(t, err);
			if (r < 0)
				return r;
		}
		/* Large pieces with an empty buffer go straight through. */
		if (t->len == 0 && len >= OUT_BUF) {
			size_t n = len - len % OUT_BUF;
			int r = layer_zout_write(t->z, p, n, err);
			if (r < 0)
				return r;
			p += n;
			len -= n;
			continue;
		}
		size_t n = OUT_BUF - t->len < len ? OUT_BUF - t->len : len;
		memcpy(t->buf + t->len, p, n);
		t->len += n;
		p += n;
		len -= n;
	}
	return 0;
}

static int
put_zeros(struct tar_writer *t, size_t n, struct sc_err *err)
{
	static const uint8_t zeros[BLOCK];
	while (n > 0) {
		size_t k = n < BLOCK ? n : BLOCK;
		int r = put(t, zeros, k, err);
		if (r < 0)
			return r;
		n -= k;
	}
	return 0;
}

static size_t
pad_of(uint64_t size)
{
	return (size_t)((BLOCK - size % BLOCK) % BLOCK);
}

/* An octal field of width w (w - 1 digits and a NUL); the value must fit. */
static void
octal(char *field, size_t w, uint64_t v)
{
	snprintf(field, w, "%0*" PRIo64, (int)(w - 1), v);
}

/* Appends "LEN key=value\n", LEN counting the whole record, itself included. */
static int
pax_record(struct sc_buf *b, const char *key, const void *value, size_t vlen)
{
	size_t base = strlen(key) + vlen + 3; /* ' ', '=', '\n' */
	size_t len = base + 1;
	for (;;) {
		char digits[24];
		size_t d = (size_t)snprintf(digits, sizeof(digits), "%zu", len);
		if (base + d == len)
			break;
		len = base + d;
	}
	int r = sc_buf_printf(b, "%zu %s=", len, key);
	if (r >= 0)
		r = sc_buf_put(b, value, vlen);
	if (r >= 0)
		r = sc_buf_put(b, "\n", 1);
	return r;
}

static void
header_fill(uint8_t h[BLOCK], const char *name, size_t nlen, mode_t perm, uint64_t uid,
	    uint64_t gid, uint64_t size, uint64_t mtime, char type, const char *link, size_t llen,
	    unsigned major, unsigned minor)
{
	memset(h, 0, BLOCK);
	char *c = (char *)h;
	memcpy(c, name, nlen);
	octal(c + 100, 8, perm & 07777);
	octal(c + 108, 8, uid);
	octal(c + 116, 8, gid);
	octal(c + 124, 12, size);
	octal(c + 136, 12, mtime);
	c[156] = type;
	if (link)
		memcpy(c + 157, link, llen);
	memcpy(c + 257, "ustar", 6);
	memcpy(c + 263, "00", 2);
	octal(c + 329, 8, major);
	octal(c + 337, 8, minor);
	memset(c + 148, ' ', 8);
	unsigned sum = 0;
	for (size_t i = 0; i < BLOCK; i++)
		sum += h[i];
	snprintf(c + 148, 8, "%06o", sum);
	c[155] = ' ';
}

static char
type_of(const struct tar_entry *e)
{
	if (e->hardlink)
		return '1';
	switch (e->mode & S_IFMT) {
	case S_IFLNK:
		return '2';
	case S_IFCHR:
		return '3';
	case S_IFBLK:
		return '4';
	case S_IFDIR:
		return '5';
	case S_IFIFO:
		return '6';
	default:
		return '0';
	}
}

int
tar_write_header(struct tar_writer *t, const struct tar_entry *e, struct sc_err *err)
{
	if (t->data_left)
		return sc_err_set(err, -EINVAL, "tar: %" PRIu64 " bytes of the last entry missing",
				  t->data_left);
	char type = type_of(e);
	bool dir = type == '5';
	uint64_t size = type == '0' ? e->size : 0;
	/* The name, with a '/' for a folder. */
	size_t plen = strlen(e->path);
	char *name = malloc(plen + 2);
	if (!name)
		return sc_err_set(err, -ENOMEM, "out of memory");
	memcpy(name, e->path, plen);
	if (dir && (plen == 0 || name[plen - 1] != '/'))
		name[plen++] = '/';
	name[plen] = '\0';
	size_t llen = e->link ? strlen(e->link) : 0;

	struct sc_buf *pax = &t->pax;
	pax->len = 0;
	int r = 0;
	if (plen > NAME_LEN)
		r = pax_record(pax, "path", name, plen);
	if (r >= 0 && llen > NAME_LEN)
		r = pax_record(pax, "linkpath", e->link, llen);
	char num[32];
	if (r >= 0 && size > MAX_OCTAL11) {
		snprintf(num, sizeof(num), "%" PRIu64, size);
		r = pax_record(pax, "size", num, strlen(num));
	}
	if (r >= 0 && e->uid > MAX_OCTAL7) {
		snprintf(num, sizeof(num), "%" PRIu64, e->uid);
		r = pax_record(pax, "uid", num, strlen(num));
	}
	if (r >= 0 && e->gid > MAX_OCTAL7) {
		snprintf(num, sizeof(num), "%" PRIu64, e->gid);
		r = pax_record(pax, "gid", num, strlen(num));
	}
	if (r >= 0 && (e->mtime < 0 || (uint64_t)e->mtime > MAX_OCTAL11)) {
		snprintf(num, sizeof(num), "%" PRId64, e->mtime);
		r = pax_record(pax, "mtime", num, strlen(num));
	}
	for (size_t i = 0; r >= 0 && i < e->nxattrs; i++) {
		size_t klen = strlen("SCHILY.xattr.") + strlen(e->xattrs[i].name) + 1;
		char *key = malloc(klen);
		if (!key) {
			r = -ENOMEM;
			break;
		}
		snprintf(key, klen, "SCHILY.xattr.%s", e->xattrs[i].name);
		r = pax_record(pax, key, e->xattrs[i].value, e->xattrs[i].len);
		free(key);
	}
	if (r < 0) {
		free(name);
		return sc_err_set(err, -ENOMEM, "out of memory");
	}
	uint64_t mtime = e->mtime < 0 || (uint64_t)e->mtime > MAX_OCTAL11 ? 0 : (uint64_t)e->mtime;
	uint8_t h[BLOCK];
	if (pax->len) {
		/* The extended header's own name: GNU tar's "DIR/PaxHeaders/BASE", cut to fit. */
		char xname[NAME_LEN + 1];
		const char *base = strrchr(e->path, '/');
		base = base && base[1] ? base + 1 : e->path;
		int n = snprintf(xname, sizeof(xname), "PaxHeaders/%.80s", base);
		header_fill(h, xname, (size_t)(n < NAME_LEN ? n : NAME_LEN), 0644, 0, 0, pax->len,
			    mtime, 'x', NULL, 0, 0, 0);
		r = put(t, h, BLOCK, err);
		if (r >= 0)
			r = put(t, pax->data, pax->len, err);
		if (r >= 0)
			r = put_zeros(t, pad_of(pax->len), err);
	}
	if (r >= 0) {
		header_fill(h, name, plen > NAME_LEN ? NAME_LEN : plen, e->mode,
			    e->uid > MAX_OCTAL7 ? 0 : e->uid, e->gid > MAX_OCTAL7 ? 0 : e->gid,
			    size > MAX_OCTAL11 ? 0 : size, mtime, type, e->link,
			    llen > NAME_LEN ? NAME_LEN : llen, e->devmajor, e->devminor);
		r = put(t, h, BLOCK, err);
	}
	free(name);
	t->data_left = size;
	t->data_size = size;
	return r;
}

int
tar_write_data(struct tar_writer *t, const void *data, size_t len, struct sc_err *err)
{
	if (len > t->data_left)
		return sc_err_set(err, -EINVAL, "tar: more data than the entry's size");
	int r = put(t, data, len, err);
	if (r < 0)
		return r;
	t->data_left -= len;
	if (t->data_left == 0)
		r = put_zeros(t, pad_of(t->data_size), err);
	return r;
}

int
tar_write_end(struct tar_writer *t, struct sc_err *err)
{
	if (t->data_left)
		return sc_err_set(err, -EINVAL, "tar: %" PRIu64 " bytes of the last entry missing",
				  t->data_left);
	int r = put_zeros(t, 2 * BLOCK, err);
	return r < 0 ? r : flush(t, err);
}
