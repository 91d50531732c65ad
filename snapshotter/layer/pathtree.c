/*
 * The paths an apply must remember until its end (folders whose times are
 * set last; on native, what the layer created), as a tree of interned
 * components: a path shares its folders with every other path below them,
 * so memory grows with the number of distinct folders and names, not with
 * the length of every path. A node is 16 bytes plus its name; the index is
 * an open-addressing table keyed by (parent, name).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "layer-internal.h"

#define NO_NODE UINT32_MAX

static uint64_t
key_hash(uint32_t parent, const char *name, size_t len)
{
	uint64_t h = 1469598103934665603ull ^ parent;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)name[i]) * 1099511628211ull;
	return h;
}

/* The slot of (parent, name): its node, or the empty slot where it would go. */
static uint32_t *
slot_of(const struct path_tree *t, uint32_t parent, const char *name, size_t len)
{
	size_t i = (size_t)key_hash(parent, name, len) & (t->cap - 1);
	for (;;) {
		uint32_t *s = &t->index[i];
		if (*s == NO_NODE)
			return s;
		const struct path_node *n = &t->nodes[*s];
		if (n->parent == parent && n->name_len == len &&
		    memcmp(t->names + n->name_off, name, len) == 0)
			return s;
		i = (i + 1) & (t->cap - 1);
	}
}

static int
grow_index(struct path_tree *t)
{
	size_t cap = t->cap ? t->cap * 2 : 1024;
	uint32_t *index = malloc(cap * sizeof(*index));
	if (!index)
		return -ENOMEM;
	memset(index, 0xff, cap * sizeof(*index));
	struct path_tree nt = *t;
	nt.index = index;
	nt.cap = cap;
	for (uint32_t i = 0; i < t->n; i++) {
		const struct path_node *n = &t->nodes[i];
		*slot_of(&nt, n->parent, t->names + n->name_off, n->name_len) = i;
	}
	free(t->index);
	t->index = index;
	t->cap = cap;
	return 0;
}

/* The node of one component below parent, made if missing (*made says so). */
static int
child(struct path_tree *t, uint32_t parent, const char *name, size_t len, bool *made)
{
	if ((t->n + 1) * 2 > t->cap && grow_index(t) < 0)
		return -ENOMEM;
	uint32_t *s = slot_of(t, parent, name, len);
	if (*s != NO_NODE)
		return (int)*s;
	if (t->n == t->nodes_cap) {
		size_t cap = t->nodes_cap ? t->nodes_cap * 2 : 1024;
		struct path_node *p = realloc(t->nodes, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		t->nodes = p;
		t->nodes_cap = cap;
	}
	while (t->names_len + len > t->names_cap) {
		size_t cap = t->names_cap ? t->names_cap * 2 : 16384;
		char *p = realloc(t->names, cap);
		if (!p)
			return -ENOMEM;
		t->names = p;
		t->names_cap = cap;
	}
	memcpy(t->names + t->names_len, name, len);
	t->nodes[t->n] = (struct path_node){
		.parent = parent,
		.name_off = (uint32_t)t->names_len,
		.name_len = (uint16_t)len,
	};
	t->names_len += len;
	*s = (uint32_t)t->n;
	*made = true;
	return (int)t->n++;
}

int
path_tree_add(struct path_tree *t, const char *path, size_t *ret_made)
{
	uint32_t node = NO_NODE;
	size_t made = 0;
	for (const char *p = path; *p;) {
		const char *end = strchrnul(p, '/');
		bool m = false;
		int r = child(t, node, p, (size_t)(end - p), &m);
		if (r < 0)
			return r;
		made += m;
		node = (uint32_t)r;
		p = *end ? end + 1 : end;
	}
	if (ret_made)
		*ret_made = made;
	return node == NO_NODE ? -EINVAL : (int)node;
}

int
path_tree_find(const struct path_tree *t, const char *path)
{
	uint32_t node = NO_NODE;
	for (const char *p = path; *p;) {
		const char *end = strchrnul(p, '/');
		if (!t->cap)
			return -ENOENT;
		uint32_t *s = slot_of(t, node, p, (size_t)(end - p));
		if (*s == NO_NODE)
			return -ENOENT;
		node = *s;
		p = *end ? end + 1 : end;
	}
	return node == NO_NODE ? -ENOENT : (int)node;
}

size_t
path_tree_path(const struct path_tree *t, uint32_t node, char *buf, size_t len)
{
	/* Components from the leaf up, written right to left, then moved to the front. */
	size_t pos = len - 1;
	buf[pos] = '\0';
	for (uint32_t i = node; i != NO_NODE; i = t->nodes[i].parent) {
		const struct path_node *n = &t->nodes[i];
		size_t need = n->name_len + (i != node);
		if (need > pos)
			return 0;
		if (i != node)
			buf[--pos] = '/';
		pos -= n->name_len;
		memcpy(buf + pos, t->names + n->name_off, n->name_len);
	}
	size_t plen = len - 1 - pos;
	memmove(buf, buf + pos, plen + 1);
	return plen;
}

void
path_tree_clear(struct path_tree *t)
{
	free(t->nodes);
	free(t->names);
	free(t->index);
	*t = (struct path_tree){0};
}
