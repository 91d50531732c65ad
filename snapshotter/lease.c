/*
 * Leases: see lease.h. A lease record holds its expiry and holder; the
 * objects it protects are keys "ID\0TYPE\0NAME" in lease_refs, so attaching
 * one is a single put and listing a lease's objects is a prefix scan.
 */
#include "lease.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "content.h"
#include "log.h"
#include "store-internal.h"
#include "util.h"

#define LEASE_RECORD_V1 1
#define COUNTER_LEASES	"leases"

static const char *const ref_types[] = {"snapshot", "blob", "image", "cache"};

void
snap_lease_clear(struct snap_lease *l)
{
	if (!l)
		return;
	free(l->id);
	for (size_t i = 0; i < l->nrefs; i++) {
		free(l->refs[i].type);
		free(l->refs[i].name);
	}
	free(l->refs);
	*l = (struct snap_lease){0};
}

bool
snap_lease_alive(const struct snap_lease *l, uint64_t now_ns)
{
	if (l->expires && now_ns >= l->expires)
		return false;
	if (l->pid && !sc_proc_alive(l->pid, l->starttime))
		return false;
	return true;
}

static int
lease_id_validate(const char *id, struct sc_err *err)
{
	if (!id || !*id)
		return sc_err_set(err, -EINVAL, "lease id is empty");
	if (strlen(id) > SNAP_LEASE_ID_MAX)
		return sc_err_set(err, -EINVAL, "lease id is longer than %d bytes",
				  SNAP_LEASE_ID_MAX);
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return sc_err_set(err, -EINVAL,
					  "lease id has a space or control character");
	return 0;
}

static int
lease_encode(const struct snap_lease *l, struct sc_buf *b)
{
	int r = 0;
	r |= snap_rec_put_u8(b, LEASE_RECORD_V1);
	r |= snap_rec_put_u64(b, l->created);
	r |= snap_rec_put_u64(b, l->expires);
	r |= snap_rec_put_u32(b, (uint32_t)l->pid);
	r |= snap_rec_put_u64(b, l->starttime);
	return r < 0 ? -ENOMEM : 0;
}

static int
lease_decode(const MDB_val *k, const MDB_val *v, struct snap_lease *ret)
{
	struct snap_rec_reader rd = {.p = v->mv_data, .left = v->mv_size};
	struct snap_lease l = {0};
	if (snap_rec_get_u8(&rd) != LEASE_RECORD_V1)
		return -EUCLEAN;
	l.created = snap_rec_get_u64(&rd);
	l.expires = snap_rec_get_u64(&rd);
	l.pid = (pid_t)snap_rec_get_u32(&rd);
	l.starttime = snap_rec_get_u64(&rd);
	if (rd.bad)
		return -EUCLEAN;
	l.id = strndup(k->mv_data, k->mv_size);
	if (!l.id)
		return -ENOMEM;
	*ret = l;
	return 0;
}

struct create_op {
	struct snap_lease lease;
};

static int
create_write(struct snap_txn *t, void *arg)
{
	struct create_op *op = arg;
	MDB_val v;
	int r = snap_txn_get(t, SNAP_DB_LEASES, op->lease.id, strlen(op->lease.id), &v);
	if (r == 0)
		return sc_err_set(t->err, -EEXIST, "lease '%s' already exists", op->lease.id);
	if (r != -ENOENT)
		return r;
	struct sc_buf b = {0};
	r = lease_encode(&op->lease, &b);
	if (r >= 0)
		r = snap_txn_put(t, SNAP_DB_LEASES, op->lease.id, strlen(op->lease.id), b.data,
				 b.len, 0);
	else
		snap_txn_fail(t, r);
	sc_buf_free(&b);
	if (r >= 0)
		r = snap_txn_counter_add(t, COUNTER_LEASES, 1);
	return r;
}

int
snap_lease_create(struct snap_store *s, const char *id, uint64_t ttl_ns, pid_t pid,
		  struct snap_lease *ret, struct sc_err *err)
{
	char gen[33];
	if (!id) {
		int r = sc_random_hex(gen, 16);
		if (r < 0)
			return sc_err_setsys(err, r, "cannot make a lease id");
		id = gen;
	}
	int r = lease_id_validate(id, err);
	if (r < 0)
		return r;
	struct create_op op = {0};
	op.lease.created = sc_now_ns();
	op.lease.expires = ttl_ns ? op.lease.created + ttl_ns : 0;
	if (pid > 0) {
		r = sc_proc_starttime(pid, &op.lease.starttime);
		if (r < 0)
			return sc_err_set(err, r, "lease holder %d is not a running process",
					  (int)pid);
		op.lease.pid = pid;
	}
	op.lease.id = strdup(id);
	if (!op.lease.id)
		return sc_err_set(err, -ENOMEM, "out of memory");
	r = snap_meta_write(s->meta, create_write, &op, err);
	if (r >= 0 && ret)
		*ret = op.lease;
	else
		snap_lease_clear(&op.lease);
	return r;
}

static int
ref_key(struct sc_buf *b, const char *id, const char *type, const char *name)
{
	int r = sc_buf_put(b, id, strlen(id) + 1);
	if (type && r >= 0)
		r = sc_buf_put(b, type, strlen(type) + 1);
	if (name && r >= 0)
		r = sc_buf_put(b, name, strlen(name));
	return r;
}

/* "TYPE:NAME\0ID": the reverse entry, which leases hold an object. */
static int
obj_key(struct sc_buf *b, const char *type, const char *name, const char *id)
{
	int r = sc_buf_printf(b, "%s:%s", type, name);
	if (r >= 0)
		r = sc_buf_put(b, "", 1);
	if (id && r >= 0)
		r = sc_buf_put(b, id, strlen(id));
	return r;
}

static int
ref_type_validate(const char *type, struct sc_err *err)
{
	for (size_t i = 0; i < ARRAY_SIZE(ref_types); i++)
		if (strcmp(type, ref_types[i]) == 0)
			return 0;
	return sc_err_set(err, -EINVAL,
			  "unknown object type '%s'; use snapshot, blob, image or cache", type);
}

/*
 * A snapshot is held by its id ("#ID"), not its key: the reference follows
 * it when it is committed under another name and dies with it, and a later
 * snapshot that takes the same key is not held by it. -ENOENT: no snapshot
 * has that key.
 */
static int
stored_name(struct snap_txn *t, const char *type, const char *name, char *out, size_t len)
{
	if (strcmp(type, "snapshot") != 0) {
		snprintf(out, len, "%s", name);
		return 0;
	}
	struct snap_info info = {0};
	int r = snap_snapshot_get_txn(t, name, &info);
	if (r >= 0)
		snprintf(out, len, "#%" PRIu64, info.id);
	snap_info_clear(&info);
	return r;
}

/* The key a stored snapshot reference ("#ID") names now; NULL when it is gone. */
static char *
current_name(struct snap_txn *t, const char *type, const char *stored)
{
	if (strcmp(type, "snapshot") != 0 || stored[0] != '#')
		return strdup(stored); /* other objects, and references made before ids */
	char *end;
	uint64_t id = strtoull(stored + 1, &end, 10);
	uint8_t k[8];
	sc_put_be64(k, id);
	MDB_val v;
	if (*end || snap_txn_get(t, SNAP_DB_SNAPSHOT_IDS, k, 8, &v) < 0)
		return NULL;
	return strndup(v.mv_data, v.mv_size);
}

struct ref_op {
	const char *id, *type, *name;
	bool add;
};

/* Writes or deletes the lease's entry for an object and its reverse entry together. */
static int
ref_change_txn(struct snap_txn *t, const char *id, const char *type, const char *key, bool add)
{
	char name[SNAP_KEY_MAX + 32];
	int r = stored_name(t, type, key, name, sizeof(name));
	if (r == -ENOENT)
		return sc_err_set(t->err, r, "snapshot '%s' does not exist", key);
	if (r < 0)
		return snap_txn_fail(t, r);
	struct sc_buf k = {0}, ok = {0};
	r = ref_key(&k, id, type, name);
	if (r >= 0)
		r = obj_key(&ok, type, name, id);
	if (r < 0) {
		sc_buf_free(&k);
		sc_buf_free(&ok);
		return snap_txn_fail(t, r);
	}
	if (add) {
		r = snap_txn_put(t, SNAP_DB_LEASE_REFS, k.data, k.len, "", 0, 0);
		if (r >= 0)
			r = snap_txn_put(t, SNAP_DB_LEASE_OBJS, ok.data, ok.len, "", 0, 0);
	} else {
		r = snap_txn_del(t, SNAP_DB_LEASE_REFS, k.data, k.len);
		if (r == -ENOENT)
			r = sc_err_set(t->err, r, "%s '%s' is not attached to lease '%s'", type,
				       key, id);
		else if (r >= 0 && snap_txn_del(t, SNAP_DB_LEASE_OBJS, ok.data, ok.len) == -ENOENT)
			r = 0;
	}
	sc_buf_free(&k);
	sc_buf_free(&ok);
	return r;
}

/* 0 if lease id exists; -ENOENT (saying so) if not. */
static int
lease_exists_txn(struct snap_txn *t, const char *id)
{
	MDB_val v;
	int r = snap_txn_get(t, SNAP_DB_LEASES, id, strlen(id), &v);
	if (r == -ENOENT)
		return snap_txn_fail(t, sc_err_set(t->err, r, "lease '%s' does not exist", id));
	return r;
}

int
snap_lease_attach_txn(struct snap_txn *t, const char *id, const char *type, const char *name)
{
	int r = lease_exists_txn(t, id);
	return r < 0 ? r : ref_change_txn(t, id, type, name, true);
}

static int
ref_write(struct snap_txn *t, void *arg)
{
	struct ref_op *op = arg;
	/* A snapshot that does not exist is refused by ref_change_txn (it holds it by id). */
	int r = lease_exists_txn(t, op->id);
	return r < 0 ? r : ref_change_txn(t, op->id, op->type, op->name, op->add);
}

static int
ref_change(struct snap_store *s, const char *id, const char *type, const char *name, bool add,
	   struct sc_err *err)
{
	int r = lease_id_validate(id, err);
	if (r >= 0)
		r = ref_type_validate(type, err);
	if (r >= 0 && (!name || !*name))
		r = sc_err_set(err, -EINVAL, "object name is empty");
	if (r >= 0 && strlen(name) > SNAP_KEY_MAX)
		r = sc_err_set(err, -EINVAL, "object name is longer than %d bytes", SNAP_KEY_MAX);
	if (r < 0)
		return r;
	struct ref_op op = {.id = id, .type = type, .name = name, .add = add};
	return snap_meta_write(s->meta, ref_write, &op, err);
}

struct present_op {
	const char *id;
	const char *const *types, *const *names;
	size_t n;
	bool *present;
};

static int
present_write(struct snap_txn *t, void *arg)
{
	struct present_op *op = arg;
	int r = lease_exists_txn(t, op->id);
	for (size_t i = 0; r >= 0 && i < op->n; i++) {
		if (strcmp(op->types[i], "snapshot") == 0) {
			struct snap_info info = {0};
			r = snap_snapshot_get_txn(t, op->names[i], &info);
			op->present[i] = r == 0 && info.kind == SNAP_KIND_COMMITTED;
			snap_info_clear(&info);
		} else if (strcmp(op->types[i], "blob") == 0) {
			struct snap_blob_info info = {0};
			r = snap_blob_get_txn(t, op->names[i], &info);
			op->present[i] = r == 0;
			snap_blob_info_clear(&info);
		} else {
			return sc_err_set(t->err, -EINVAL, "cannot attach a '%s' if present",
					  op->types[i]);
		}
		if (r == -ENOENT)
			r = 0;
		if (r >= 0 && op->present[i])
			r = ref_change_txn(t, op->id, op->types[i], op->names[i], true);
	}
	return r;
}

int
snap_lease_attach_present(struct snap_store *s, const char *id, const char *const *types,
			  const char *const *names, size_t n, bool *present, struct sc_err *err)
{
	int r = lease_id_validate(id, err);
	for (size_t i = 0; r >= 0 && i < n; i++)
		if (strlen(names[i]) > SNAP_KEY_MAX)
			r = sc_err_set(err, -EINVAL, "object name is longer than %d bytes",
				       SNAP_KEY_MAX);
	if (r < 0)
		return r;
	struct present_op op = {
		.id = id, .types = types, .names = names, .n = n, .present = present};
	return snap_meta_write(s->meta, present_write, &op, err);
}

int
snap_lease_add(struct snap_store *s, const char *id, const char *type, const char *name,
	       struct sc_err *err)
{
	return ref_change(s, id, type, name, true, err);
}

int
snap_lease_remove_ref(struct snap_store *s, const char *id, const char *type, const char *name,
		      struct sc_err *err)
{
	return ref_change(s, id, type, name, false, err);
}

/* Collects keys under a prefix, so they can be deleted after the scan. */
struct key_list {
	MDB_val *v;
	size_t n, cap;
};

static int
collect_key(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct key_list *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		MDB_val *p = realloc(l->v, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n].mv_data = malloc(k->mv_size);
	if (!l->v[l->n].mv_data)
		return -ENOMEM;
	memcpy(l->v[l->n].mv_data, k->mv_data, k->mv_size);
	l->v[l->n].mv_size = k->mv_size;
	l->n++;
	return 0;
}

static void
key_list_free(struct key_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].mv_data);
	free(l->v);
	*l = (struct key_list){0};
}

static int
lease_delete_txn(struct snap_txn *t, const char *id)
{
	int r = snap_txn_del(t, SNAP_DB_LEASES, id, strlen(id));
	if (r < 0)
		return r;
	struct key_list keys = {0};
	size_t idlen = strlen(id) + 1;
	r = snap_txn_scan(t, SNAP_DB_LEASE_REFS, id, idlen, collect_key, &keys);
	for (size_t i = 0; r >= 0 && i < keys.n; i++) {
		r = snap_txn_del(t, SNAP_DB_LEASE_REFS, keys.v[i].mv_data, keys.v[i].mv_size);
		/* ID\0TYPE\0NAME -> TYPE:NAME\0ID */
		const char *type = (const char *)keys.v[i].mv_data + idlen;
		size_t rest = keys.v[i].mv_size - idlen;
		const char *nul = memchr(type, '\0', rest);
		if (r < 0 || !nul)
			continue;
		struct sc_buf ok = {0};
		_cleanup_free_ char *name = strndup(nul + 1, rest - (size_t)(nul + 1 - type));
		r = name ? obj_key(&ok, type, name, id) : -ENOMEM;
		if (r >= 0 && snap_txn_del(t, SNAP_DB_LEASE_OBJS, ok.data, ok.len) == -ENOENT)
			r = 0;
		sc_buf_free(&ok);
	}
	key_list_free(&keys);
	if (r >= 0)
		r = snap_txn_counter_add(t, COUNTER_LEASES, -1);
	return r < 0 ? snap_txn_fail(t, r) : r;
}

static int
delete_write(struct snap_txn *t, void *arg)
{
	const char *id = arg;
	int r = lease_delete_txn(t, id);
	if (r == -ENOENT)
		return sc_err_set(t->err, r, "lease '%s' does not exist", id);
	return r;
}

int
snap_lease_delete(struct snap_store *s, const char *id, struct sc_err *err)
{
	int r = lease_id_validate(id, err);
	if (r < 0)
		return r;
	return snap_meta_write(s->meta, delete_write, (void *)id, err);
}

struct ref_scan {
	struct snap_txn *t;
	struct snap_lease *l;
};

static int
add_ref(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct ref_scan *rs = arg;
	struct snap_lease *l = rs->l;
	/* ID\0TYPE\0NAME */
	const char *p = k->mv_data;
	size_t idlen = strlen(l->id) + 1;
	const char *type = p + idlen;
	size_t left = k->mv_size - idlen;
	const char *nul = memchr(type, '\0', left);
	if (!nul)
		return -EUCLEAN;
	struct snap_lease_ref *refs = realloc(l->refs, (l->nrefs + 1) * sizeof(*refs));
	if (!refs)
		return -ENOMEM;
	l->refs = refs;
	_cleanup_free_ char *stored = strndup(nul + 1, left - (size_t)(nul + 1 - type));
	if (!stored)
		return -ENOMEM;
	char *name = current_name(rs->t, type, stored);
	if (!name)
		return strcmp(type, "snapshot") == 0 ? 0 : -ENOMEM; /* a snapshot gone since */
	refs[l->nrefs].type = strdup(type);
	refs[l->nrefs].name = name;
	l->nrefs++;
	if (!refs[l->nrefs - 1].type)
		return -ENOMEM;
	return 0;
}

static int
lease_load_refs(struct snap_txn *t, struct snap_lease *l)
{
	struct ref_scan rs = {.t = t, .l = l};
	return snap_txn_scan(t, SNAP_DB_LEASE_REFS, l->id, strlen(l->id) + 1, add_ref, &rs);
}

int
snap_lease_get(struct snap_store *s, const char *id, struct snap_lease *ret, struct sc_err *err)
{
	int r = lease_id_validate(id, err);
	if (r < 0)
		return r;
	struct snap_txn t;
	r = snap_txn_begin_read(s->meta, &t, err);
	if (r < 0)
		return r;
	MDB_val v;
	MDB_val k = {.mv_size = strlen(id), .mv_data = (void *)id};
	r = snap_txn_get(&t, SNAP_DB_LEASES, id, strlen(id), &v);
	if (r == -ENOENT)
		sc_err_set(err, r, "lease '%s' does not exist", id);
	struct snap_lease l = {0};
	if (r >= 0)
		r = lease_decode(&k, &v, &l);
	if (r >= 0)
		r = lease_load_refs(&t, &l);
	snap_txn_end(&t);
	if (r < 0) {
		snap_lease_clear(&l);
		return r;
	}
	*ret = l;
	return 0;
}

struct lease_list {
	struct snap_lease *v;
	size_t n, cap;
};

static int
collect_lease(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct lease_list *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct snap_lease *p = realloc(l->v, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	int r = lease_decode(k, v, &l->v[l->n]);
	if (r < 0)
		return r;
	l->n++;
	return 0;
}

static void
lease_list_free(struct lease_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		snap_lease_clear(&l->v[i]);
	free(l->v);
}

static int
lease_list_load(struct snap_txn *t, struct lease_list *l)
{
	int r = snap_txn_scan(t, SNAP_DB_LEASES, NULL, 0, collect_lease, l);
	for (size_t i = 0; r >= 0 && i < l->n; i++)
		r = lease_load_refs(t, &l->v[i]);
	return r;
}

int
snap_lease_walk(struct snap_store *s, snap_lease_walk_fn fn, void *arg, struct sc_err *err)
{
	struct snap_txn t;
	int r = snap_txn_begin_read(s->meta, &t, err);
	if (r < 0)
		return r;
	struct lease_list l = {0};
	r = lease_list_load(&t, &l);
	snap_txn_end(&t);
	if (r < 0)
		sc_err_setsys(err, r, "cannot list leases");
	for (size_t i = 0; r >= 0 && i < l.n; i++)
		r = fn(&l.v[i], arg);
	lease_list_free(&l);
	return r;
}

static int
prune_write(struct snap_txn *t, void *arg)
{
	int *count = arg;
	struct lease_list l = {0};
	*count = 0;
	int r = snap_txn_scan(t, SNAP_DB_LEASES, NULL, 0, collect_lease, &l);
	uint64_t now = sc_now_ns();
	for (size_t i = 0; r >= 0 && i < l.n; i++) {
		if (snap_lease_alive(&l.v[i], now))
			continue;
		sc_debug("lease %s is dead: deleting it", l.v[i].id);
		r = lease_delete_txn(t, l.v[i].id);
		(*count)++;
	}
	lease_list_free(&l);
	return r;
}

int
snap_lease_prune_dead(struct snap_store *s, struct sc_err *err)
{
	int count = 0;
	int r = snap_meta_write(s->meta, prune_write, &count, err);
	return r < 0 ? r : count;
}

struct leased_scan {
	struct snap_txn *t;
	size_t plen;
	uint64_t now;
	bool alive;
};

static int
leased_visit(const MDB_val *k, const MDB_val *v, void *arg)
{
	struct leased_scan *ls = arg;
	MDB_val lk = {.mv_size = k->mv_size - ls->plen, .mv_data = (char *)k->mv_data + ls->plen};
	MDB_val lv;
	if (snap_txn_get(ls->t, SNAP_DB_LEASES, lk.mv_data, lk.mv_size, &lv) < 0)
		return 0; /* a reverse entry of a deleted lease protects nothing */
	struct snap_lease l = {0};
	if (lease_decode(&lk, &lv, &l) < 0)
		return 0;
	ls->alive = snap_lease_alive(&l, ls->now);
	snap_lease_clear(&l);
	return ls->alive ? 1 : 0;
}

static bool
obj_leased(struct snap_txn *t, const char *obj, uint64_t now_ns)
{
	size_t len = strlen(obj);
	/* The scan prefix is "TYPE:NAME\0", NUL included. */
	struct leased_scan ls = {.t = t, .plen = len + 1, .now = now_ns};
	int r = snap_txn_scan(t, SNAP_DB_LEASE_OBJS, obj, len + 1, leased_visit, &ls);
	return r < 0 || ls.alive; /* when in doubt, keep */
}

bool
snap_obj_leased_txn(struct snap_txn *t, const char *obj, uint64_t now_ns)
{
	if (strncmp(obj, "snapshot:", 9) != 0)
		return obj_leased(t, obj, now_ns);
	/* Held by its id; or, by a reference from before ids, by its key. */
	char byid[SNAP_KEY_MAX + 48];
	int r = stored_name(t, "snapshot", obj + 9, byid + 9, sizeof(byid) - 9);
	if (r == -ENOENT)
		return false;
	memcpy(byid, "snapshot:", 9);
	return r < 0 || obj_leased(t, byid, now_ns) || obj_leased(t, obj, now_ns);
}
