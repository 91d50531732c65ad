/*
 * Disk usage by record type. Committed snapshots and blobs are summed from
 * their records (sizes measured once, when they were made); active
 * snapshots and views are measured now, since they change; the metadata file
 * and trash/, tmp/ and ingest/ are added so the total is what the store
 * takes on disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "gc.h"
#include "store-internal.h"
#include "util.h"

static const char *const row_types[] = {"regular",  "exec.cachemount", "source.local",
					"frontend", "content",	       "image"};

void
gc_usage_clear(struct gc_usage *u)
{
	snap_gc_graph_clear(&u->graph);
	free(u->active_size);
	*u = (struct gc_usage){0};
}

static struct gc_usage_row *
row_for(struct gc_usage *u, const char *type)
{
	for (size_t i = 0; i < u->nrows; i++)
		if (strcmp(u->rows[i].type, type) == 0)
			return &u->rows[i];
	return NULL;
}

int
gc_usage(struct snap_store *s, struct gc_usage *ret, struct sc_err *err)
{
	struct gc_usage u = {0};
	for (size_t i = 0; i < sizeof(row_types) / sizeof(row_types[0]); i++)
		u.rows[u.nrows++].type = row_types[i];

	int r = snap_gc_graph_load(s, &u.graph, err);
	if (r >= 0)
		r = gc_prune_note_get(s, &u.last_prune, err);
	if (r < 0) {
		gc_usage_clear(&u);
		return r;
	}
	struct statvfs vfs;
	if (statvfs(snap_store_root(s), &vfs) == 0) {
		u.fs_size = (uint64_t)vfs.f_blocks * vfs.f_frsize;
		u.fs_avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	}
	struct snap_gc_graph *g = &u.graph;
	snap_gc_graph_mark(g, NULL);
	u.active_size = calloc(g->n + 1, sizeof(uint64_t));
	if (!u.active_size) {
		gc_usage_clear(&u);
		return sc_err_set(err, -ENOMEM, "out of memory");
	}

	bool *held_by_image = calloc(g->n + 1, sizeof(bool));
	bool *dropped = calloc(g->n + 1, sizeof(bool));
	if (!held_by_image || !dropped) {
		free(held_by_image);
		free(dropped);
		gc_usage_clear(&u);
		return sc_err_set(err, -ENOMEM, "out of memory");
	}

	for (size_t i = 0; i < g->n; i++) {
		const struct snap_gc_node *n = &g->v[i];
		struct gc_usage_row *row = row_for(&u, gc_node_type(g, i));
		if (!row)
			continue;
		row->count++;
		uint64_t size = n->size;
		if (n->kind == SNAP_KIND_ACTIVE || n->kind == SNAP_KIND_VIEW) {
			struct snap_info info = {0};
			if (snap_snapshot_stat(s, n->id, &info, NULL) >= 0) {
				char rel[64];
				uint64_t inodes;
				snap_snapshot_rel(rel, sizeof(rel), info.id);
				if (snap_du(s->root_fd, rel, &size, &inodes) < 0)
					size = 0;
			}
			snap_info_clear(&info);
			u.active_size[i] = size;
		}
		row->size += size;
		if (!n->reached && n->type != SNAP_OBJ_IMAGE)
			row->reclaimable += size;
		if (n->nin >= 2)
			row->shared += size;
		if (n->type == SNAP_OBJ_IMAGE)
			dropped[i] = true;
	}

	/* Images: what they hold (counted once), and what dropping them all would free. */
	struct gc_usage_row *img = row_for(&u, "image");
	for (size_t i = 0; i < g->n; i++)
		held_by_image[i] = g->v[i].reached;
	snap_gc_graph_mark(g, dropped);
	for (size_t i = 0; i < g->n; i++) {
		bool only_images = held_by_image[i] && !g->v[i].reached;
		if (only_images) {
			img->size += g->v[i].size;
			img->reclaimable += g->v[i].size;
		}
	}
	snap_gc_graph_mark(g, NULL);
	/* Held by an image and by something else too: shared, not freed with the images. */
	bool *image_ref = dropped; /* reused: one flag per node */
	memset(image_ref, 0, (g->n + 1) * sizeof(bool));
	for (size_t j = 0; j < g->n; j++)
		if (g->v[j].type == SNAP_OBJ_IMAGE)
			for (size_t k = 0; k < g->v[j].nout; k++)
				image_ref[g->v[j].out[k]] = true;
	for (size_t i = 0; i < g->n; i++)
		if (image_ref[i] && g->v[i].nin >= 2)
			img->shared += g->v[i].size;
	free(held_by_image);
	free(dropped);

	u.metadata = snap_meta_file_size(s->meta);
	static const char *const scratch[] = {"trash", "tmp", "ingest"};
	for (size_t i = 0; i < sizeof(scratch) / sizeof(scratch[0]); i++) {
		uint64_t bytes = 0, inodes = 0;
		if (snap_du(s->root_fd, scratch[i], &bytes, &inodes) >= 0)
			u.other += bytes;
	}
	for (size_t i = 0; i < u.nrows; i++)
		if (strcmp(u.rows[i].type, "image") != 0) /* images' bytes are in the other rows */
			u.total += u.rows[i].size;
	u.total += u.metadata + u.other;
	*ret = u;
	return 0;
}
