/*
 * The parse tree in BuildKit's dump format, byte for byte: the format the
 * conformance corpus is written in, and what "snapctl dockerfile parse
 * --dump" prints.
 */
#include <errno.h>
#include <string.h>

#include "dockerfile.h"
#include "internal.h"

static void
dump_node(const struct bld_df_node *n, struct bld_str *out)
{
	for (const char *k = n->keyword; *k; k++)
		bld_str_putc(out, (*k >= 'A' && *k <= 'Z') ? (char)(*k + 32) : *k);
	if (n->nflags) {
		bld_str_puts(out, " [");
		for (size_t i = 0; i < n->nflags; i++) {
			if (i)
				bld_str_putc(out, ' ');
			bld_go_quote(out, n->flags[i], strlen(n->flags[i]));
		}
		bld_str_putc(out, ']');
	}
	for (size_t i = 0; i < n->nargs; i++) {
		bld_str_putc(out, ' ');
		bld_go_quote(out, n->args[i], n->arg_lens[i]);
	}
	if (n->sub) {
		bld_str_puts(out, " (");
		dump_node(n->sub, out);
		bld_str_putc(out, ')');
	}
}

static int
put_trimmed(struct bld_str *s, struct sc_buf *out)
{
	if (s->oom)
		return -ENOMEM;
	const char *p = s->s ? s->s : "";
	size_t len = s->len;
	size_t off = bld_trim_left_off(p, len);
	p += off;
	len = bld_trim_right_len(p, len - off);
	return sc_buf_put(out, p, len);
}

int
bld_df_node_dump(const struct bld_df_node *node, struct sc_buf *out)
{
	struct bld_str s = {0};
	dump_node(node, &s);
	int r = put_trimmed(&s, out);
	bld_str_done(&s);
	return r;
}

int
bld_dockerfile_dump(const struct bld_dockerfile *df, struct sc_buf *out)
{
	for (size_t i = 0; i < df->nnodes; i++) {
		int r = sc_buf_put(out, "(", 1);
		if (r < 0)
			return r;
		r = bld_df_node_dump(&df->nodes[i], out);
		if (r < 0)
			return r;
		r = sc_buf_put(out, ")\n", 2);
		if (r < 0)
			return r;
	}
	return 0;
}
