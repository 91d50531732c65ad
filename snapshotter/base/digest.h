/*
 * sha256 digests in the OCI form "sha256:<64 hex>", computed with OpenSSL's
 * EVP (SHA-NI where the CPU has it).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SC_DIGEST_HEX_LEN 64
#define SC_DIGEST_STR_LEN (7 + SC_DIGEST_HEX_LEN) /* "sha256:" + hex */

struct sc_sha256; /* opaque streaming state */

int sc_sha256_new(struct sc_sha256 **ret);
int sc_sha256_update(struct sc_sha256 *h, const void *data, size_t len);
/* Writes "sha256:<hex>" and NUL into out (SC_DIGEST_STR_LEN + 1 bytes). */
int sc_sha256_final(struct sc_sha256 *h, char out[SC_DIGEST_STR_LEN + 1]);
/* NULL-safe; returns NULL. */
struct sc_sha256 *sc_sha256_free(struct sc_sha256 *h);

/* One-shot digest of a buffer. */
int sc_sha256_buf(const void *data, size_t len, char out[SC_DIGEST_STR_LEN + 1]);

/* True for "sha256:" followed by exactly 64 lowercase hex characters. */
bool sc_digest_valid(const char *s);
