/* sha256 digests: see digest.h. */
#include "digest.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sc_sha256 {
	EVP_MD_CTX *ctx;
};

int
sc_sha256_new(struct sc_sha256 **ret)
{
	struct sc_sha256 *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
		sc_sha256_free(h);
		return -ENOMEM;
	}
	*ret = h;
	return 0;
}

int
sc_sha256_update(struct sc_sha256 *h, const void *data, size_t len)
{
	return EVP_DigestUpdate(h->ctx, data, len) == 1 ? 0 : -EIO;
}

int
sc_sha256_final(struct sc_sha256 *h, char out[SC_DIGEST_STR_LEN + 1])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	if (EVP_DigestFinal_ex(h->ctx, md, &mdlen) != 1 || mdlen != 32)
		return -EIO;
	memcpy(out, "sha256:", 7);
	for (int i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
	return 0;
}

struct sc_sha256 *
sc_sha256_free(struct sc_sha256 *h)
{
	if (h) {
		EVP_MD_CTX_free(h->ctx);
		free(h);
	}
	return NULL;
}

int
sc_sha256_buf(const void *data, size_t len, char out[SC_DIGEST_STR_LEN + 1])
{
	struct sc_sha256 *h = NULL;
	int r = sc_sha256_new(&h);
	if (r < 0)
		return r;
	r = sc_sha256_update(h, data, len);
	if (r >= 0)
		r = sc_sha256_final(h, out);
	sc_sha256_free(h);
	return r;
}

bool
sc_digest_valid(const char *s)
{
	if (!s || strncmp(s, "sha256:", 7) != 0 || strlen(s) != SC_DIGEST_STR_LEN)
		return false;
	for (const char *p = s + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}
