/*
 * Content digests of the files a COPY/ADD selects, and the per-build cache
 * that lets a file selected by several steps be read once.
 *
 * The cache maps (st_dev, st_ino, size, mtime ns, ctime ns) to the file's
 * sha256. Any write to a file moves its mtime or ctime (and a rename or
 * chmod its ctime), so a key that still matches means unchanged content;
 * touching a file gives a new key and one more read, never a wrong digest.
 * A digest is remembered only when the file's stat did not change while it
 * was read. Invariant: one mutex guards the table; digests are computed
 * outside it, so two threads may hash the same file once each, harmlessly.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fileop-internal.h"
#include "util.h"

struct hc_key {
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
};

struct hc_entry {
	struct hc_key key;
	struct hc_entry *next;
	char digest[SC_DIGEST_STR_LEN + 1];
	bool fresh; /* read in this build, and safe to remember beyond it */
};

struct bld_hash_cache {
	pthread_mutex_t lock;
	bld_hash_lookup_fn lookup; /* the longer memory, or NULL */
	void *lookup_arg;
	struct hc_entry **buckets;
	size_t nbuckets; /* a power of two */
	size_t n;
};

int
bld_hash_cache_new(struct bld_hash_cache **ret)
{
	struct bld_hash_cache *hc = calloc(1, sizeof(*hc));
	if (!hc)
		return -ENOMEM;
	hc->nbuckets = 1024;
	hc->buckets = calloc(hc->nbuckets, sizeof(*hc->buckets));
	if (!hc->buckets) {
		free(hc);
		return -ENOMEM;
	}
	pthread_mutex_init(&hc->lock, NULL);
	*ret = hc;
	return 0;
}

struct bld_hash_cache *
bld_hash_cache_free(struct bld_hash_cache *hc)
{
	if (!hc)
		return NULL;
	for (size_t i = 0; i < hc->nbuckets; i++) {
		struct hc_entry *e = hc->buckets[i];
		while (e) {
			struct hc_entry *next = e->next;
			free(e);
			e = next;
		}
	}
	free(hc->buckets);
	pthread_mutex_destroy(&hc->lock);
	free(hc);
	return NULL;
}

static struct hc_key
key_of(const struct stat *st)
{
	return (struct hc_key){
		.dev = st->st_dev,
		.ino = st->st_ino,
		.size = (uint64_t)st->st_size,
		.mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
		.ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec,
	};
}

static size_t
key_hash(const struct hc_key *k)
{
	uint64_t h = k->ino * 0x9e3779b97f4a7c15ull;
	h ^= k->dev + 0x632be59bd9b4e019ull + (h << 6) + (h >> 2);
	h ^= (uint64_t)k->mtime_ns + (h << 6) + (h >> 2);
	return (size_t)(h ^ (h >> 29));
}

static bool
key_eq(const struct hc_key *a, const struct hc_key *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

static bool
cache_get(struct bld_hash_cache *hc, const struct hc_key *k, char out[SC_DIGEST_STR_LEN + 1])
{
	bool found = false;
	pthread_mutex_lock(&hc->lock);
	for (struct hc_entry *e = hc->buckets[key_hash(k) & (hc->nbuckets - 1)]; e; e = e->next)
		if (key_eq(&e->key, k)) {
			memcpy(out, e->digest, SC_DIGEST_STR_LEN + 1);
			found = true;
			break;
		}
	pthread_mutex_unlock(&hc->lock);
	return found;
}

/* Grows the table at load 1 (called with the lock held); failing to grow is harmless. */
static void
cache_grow(struct bld_hash_cache *hc)
{
	size_t nb = hc->nbuckets * 2;
	struct hc_entry **b = calloc(nb, sizeof(*b));
	if (!b)
		return;
	for (size_t i = 0; i < hc->nbuckets; i++) {
		struct hc_entry *e = hc->buckets[i];
		while (e) {
			struct hc_entry *next = e->next;
			size_t j = key_hash(&e->key) & (nb - 1);
			e->next = b[j];
			b[j] = e;
			e = next;
		}
	}
	free(hc->buckets);
	hc->buckets = b;
	hc->nbuckets = nb;
}

static void
cache_put(struct bld_hash_cache *hc, const struct hc_key *k, const char *digest, bool fresh)
{
	struct hc_entry *ne = malloc(sizeof(*ne));
	if (!ne)
		return; /* a cache: forgetting is allowed */
	ne->key = *k;
	ne->fresh = fresh;
	memcpy(ne->digest, digest, SC_DIGEST_STR_LEN + 1);
	pthread_mutex_lock(&hc->lock);
	size_t i = key_hash(k) & (hc->nbuckets - 1);
	for (struct hc_entry *e = hc->buckets[i]; e; e = e->next)
		if (key_eq(&e->key, k)) {
			pthread_mutex_unlock(&hc->lock);
			free(ne);
			return;
		}
	ne->next = hc->buckets[i];
	hc->buckets[i] = ne;
	if (++hc->n > hc->nbuckets)
		cache_grow(hc);
	pthread_mutex_unlock(&hc->lock);
}

static void
key_bytes(const struct hc_key *k, uint8_t out[BLD_FILE_KEY_LEN])
{
	sc_put_be64(out, k->dev);
	sc_put_be64(out + 8, k->ino);
	sc_put_be64(out + 16, k->size);
	sc_put_be64(out + 24, (uint64_t)k->mtime_ns);
	sc_put_be64(out + 32, (uint64_t)k->ctime_ns);
}

void
bld_hash_cache_set_lookup(struct bld_hash_cache *hc, bld_hash_lookup_fn fn, void *arg)
{
	hc->lookup = fn;
	hc->lookup_arg = arg;
}

int
bld_hash_cache_each_new(struct bld_hash_cache *hc, bld_hash_each_fn fn, void *arg)
{
	int r = 0;
	pthread_mutex_lock(&hc->lock);
	for (size_t i = 0; i < hc->nbuckets && r >= 0; i++)
		for (struct hc_entry *e = hc->buckets[i]; e && r >= 0; e = e->next) {
			if (!e->fresh)
				continue;
			uint8_t key[BLD_FILE_KEY_LEN];
			key_bytes(&e->key, key);
			r = fn(arg, key, e->digest);
		}
	pthread_mutex_unlock(&hc->lock);
	return r;
}

bool
fo_file_known(struct bld_hash_cache *hc, const struct stat *st)
{
	if (!hc)
		return false;
	struct hc_key k = key_of(st);
	char d[SC_DIGEST_STR_LEN + 1];
	if (cache_get(hc, &k, d))
		return true;
	uint8_t key[BLD_FILE_KEY_LEN];
	key_bytes(&k, key);
	if (!hc->lookup || !hc->lookup(hc->lookup_arg, key, d))
		return false;
	cache_put(hc, &k, d, false);
	return true;
}

int
fo_file_digest(struct bld_hash_cache *hc, int dirfd, const char *name, const struct stat *st,
	       uint8_t *buf, char ret[SC_DIGEST_STR_LEN + 1], struct sc_err *err)
{
	struct hc_key k = key_of(st);
	if (hc && cache_get(hc, &k, ret))
		return 0;
	if (hc && hc->lookup) {
		uint8_t key[BLD_FILE_KEY_LEN];
		key_bytes(&k, key);
		if (hc->lookup(hc->lookup_arg, key, ret)) {
			cache_put(hc, &k, ret, false);
			return 0;
		}
	}
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return sc_err_setsys(err, -errno, "cannot open '%s'", name);
	struct stat before;
	if (fstat(fd, &before) < 0)
		return sc_err_setsys(err, -errno, "cannot stat '%s'", name);
	if (!S_ISREG(before.st_mode))
		return sc_err_set(err, -EAGAIN, "'%s' changed while it was selected", name);
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	struct sc_sha256 *h = NULL;
	int r = sc_sha256_new(&h);
	if (r < 0)
		return sc_err_set(err, r, "out of memory");
	for (;;) {
		ssize_t n = read(fd, buf, FO_READ_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = sc_err_setsys(err, -errno, "cannot read '%s'", name);
			break;
		}
		if (n == 0)
			break;
		r = sc_sha256_update(h, buf, (size_t)n);
		if (r < 0) {
			r = sc_err_set(err, r, "cannot hash '%s'", name);
			break;
		}
	}
	if (r >= 0)
		r = sc_sha256_final(h, ret);
	sc_sha256_free(h);
	if (r < 0)
		return r;
	struct stat after;
	struct hc_key kb = key_of(&before);
	if (hc && fstat(fd, &after) == 0) {
		struct hc_key ka = key_of(&after);
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		int64_t now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
		if (key_eq(&ka, &kb))
			cache_put(hc, &kb, ret, kb.ctime_ns <= now_ns - 1000000000);
	}
	return 0;
}
