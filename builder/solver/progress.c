/*
 * Progress printers: BuildKit's plain shape, JSON lines for tools, quiet,
 * and a live view for terminals.
 *
 * plain:  "#5 [build 3/4] RUN make", output lines "#5 0.412 TEXT" (seconds
 *         since the step started), "#5 CACHED", "#5 MISS: ...", "#5 DONE 1.2s",
 *         "#5 ERROR: ..."; lines are never cut.
 * json:   one object per event (docs/build.md).
 * tty:    finished steps scroll as in plain (without their output), and
 *         below them one line per running step with its elapsed time and
 *         last output line, redrawn in place.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "build.h"
#include "cleanup.h"

static const char *const event_names[_BLD_EVENT_MAX] = {
	[BLD_EVENT_START] = "start", [BLD_EVENT_CACHED] = "cached", [BLD_EVENT_MISS] = "miss",
	[BLD_EVENT_LOG] = "log",     [BLD_EVENT_DONE] = "done",	    [BLD_EVENT_ERROR] = "error",
	[BLD_EVENT_INFO] = "info",
};

const char *
bld_event_type_to_string(enum bld_event_type t)
{
	return t < _BLD_EVENT_MAX ? event_names[t] : NULL;
}

static const char *const mode_names[_BLD_PROGRESS_MAX] = {
	[BLD_PROGRESS_AUTO] = "auto", [BLD_PROGRESS_PLAIN] = "plain",
	[BLD_PROGRESS_JSON] = "json", [BLD_PROGRESS_QUIET] = "quiet",
	[BLD_PROGRESS_TTY] = "tty",
};

const char *
bld_progress_mode_to_string(enum bld_progress_mode m)
{
	return m < _BLD_PROGRESS_MAX ? mode_names[m] : NULL;
}

int
bld_progress_mode_from_string(const char *s)
{
	for (int i = 0; i < _BLD_PROGRESS_MAX; i++)
		if (strcmp(s, mode_names[i]) == 0)
			return i;
	return -EINVAL;
}

#define TTY_MAX_RUNNING 64

struct running {
	unsigned vertex;
	char *name;
	char *last; /* last output line */
	uint64_t started;
};

struct bld_printer {
	enum bld_progress_mode mode;
	FILE *out;
	pthread_mutex_t lock;
	/* tty */
	struct running run[TTY_MAX_RUNNING];
	size_t nrun;
	size_t drawn; /* lines of the live block on screen */
	unsigned cols;
};

int
bld_printer_new(enum bld_progress_mode mode, int fd, struct bld_printer **ret)
{
	struct bld_printer *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	if (mode == BLD_PROGRESS_AUTO)
		mode = isatty(fd) ? BLD_PROGRESS_TTY : BLD_PROGRESS_PLAIN;
	p->mode = mode;
	p->out = fd == 1 ? stdout : stderr;
	pthread_mutex_init(&p->lock, NULL);
	struct winsize ws;
	p->cols = ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20 ? ws.ws_col : 80;
	*ret = p;
	return 0;
}

static void
tty_clear(struct bld_printer *p)
{
	for (size_t i = 0; i < p->drawn; i++)
		fputs("\033[1A\033[2K", p->out);
	p->drawn = 0;
}

struct bld_printer *
bld_printer_free(struct bld_printer *p)
{
	if (!p)
		return NULL;
	if (p->mode == BLD_PROGRESS_TTY)
		tty_clear(p);
	for (size_t i = 0; i < p->nrun; i++) {
		free(p->run[i].name);
		free(p->run[i].last);
	}
	fflush(p->out);
	pthread_mutex_destroy(&p->lock);
	free(p);
	return NULL;
}

static double
secs(uint64_t from, uint64_t to)
{
	return to > from ? (double)(to - from) / 1e9 : 0.0;
}

static void
plain_event(struct bld_printer *p, const struct bld_event *ev, bool with_logs)
{
	FILE *o = p->out;
	switch (ev->type) {
	case BLD_EVENT_START:
		fprintf(o, "\n#%u %s\n", ev->vertex, ev->name);
		break;
	case BLD_EVENT_CACHED:
		fprintf(o, "\n#%u %s\n#%u CACHED\n", ev->vertex, ev->name, ev->vertex);
		break;
	case BLD_EVENT_MISS:
		fprintf(o, "#%u MISS: %.*s\n", ev->vertex, (int)ev->len, ev->text);
		break;
	case BLD_EVENT_LOG:
		if (with_logs)
			fprintf(o, "#%u %.3f %.*s\n", ev->vertex, secs(ev->started, ev->time),
				(int)ev->len, ev->text);
		break;
	case BLD_EVENT_DONE:
		fprintf(o, "#%u DONE %.1fs\n", ev->vertex, secs(ev->started, ev->time));
		break;
	case BLD_EVENT_ERROR:
		fprintf(o, "#%u ERROR: %.*s\n", ev->vertex, (int)ev->len, ev->text);
		break;
	case BLD_EVENT_INFO:
		fprintf(o, "#0 %.*s\n", (int)ev->len, ev->text);
		break;
	default:
		break;
	}
}

static void
json_event(struct bld_printer *p, const struct bld_event *ev)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "type",
			       json_object_new_string(bld_event_type_to_string(ev->type)));
	json_object_object_add(o, "vertex", json_object_new_int64(ev->vertex));
	if (ev->digest)
		json_object_object_add(o, "digest", json_object_new_string(ev->digest));
	if (ev->name)
		json_object_object_add(o, "name", json_object_new_string(ev->name));
	json_object_object_add(o, "time", json_object_new_int64((int64_t)ev->time));
	if (ev->started)
		json_object_object_add(o, "started", json_object_new_int64((int64_t)ev->started));
	if (ev->type == BLD_EVENT_LOG)
		json_object_object_add(o, "stream", json_object_new_int(ev->stream));
	if (ev->text)
		json_object_object_add(o,
				       ev->type == BLD_EVENT_LOG    ? "data"
				       : ev->type == BLD_EVENT_MISS ? "reason"
								    : "message",
				       json_object_new_string_len(ev->text, (int)ev->len));
	fprintf(p->out, "%s\n",
		json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							  JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static struct running *
tty_find(struct bld_printer *p, unsigned vertex)
{
	for (size_t i = 0; i < p->nrun; i++)
		if (p->run[i].vertex == vertex)
			return &p->run[i];
	return NULL;
}

static void
tty_draw(struct bld_printer *p, uint64_t now)
{
	for (size_t i = 0; i < p->nrun; i++) {
		const struct running *r = &p->run[i];
		char line[1024];
		int n = snprintf(line, sizeof(line), "=> #%u %s %.1fs%s%s", r->vertex, r->name,
				 secs(r->started, now), r->last ? "  | " : "",
				 r->last ? r->last : "");
		if (n > 0 && (unsigned)n >= p->cols)
			line[p->cols - 1] = '\0';
		fprintf(p->out, "%s\n", line);
	}
	p->drawn = p->nrun;
}

static void
tty_event(struct bld_printer *p, const struct bld_event *ev)
{
	tty_clear(p);
	struct running *r = tty_find(p, ev->vertex);
	switch (ev->type) {
	case BLD_EVENT_START:
		if (!r && p->nrun < TTY_MAX_RUNNING) {
			r = &p->run[p->nrun++];
			*r = (struct running){.vertex = ev->vertex,
					      .name = strdup(ev->name ? ev->name : ""),
					      .started = ev->time};
		}
		break;
	case BLD_EVENT_LOG:
		if (r) {
			free(r->last);
			r->last = strndup(ev->text, ev->len < 200 ? ev->len : 200);
		}
		break;
	case BLD_EVENT_DONE:
	case BLD_EVENT_ERROR:
		fprintf(p->out, "#%u %s\n", ev->vertex, ev->name ? ev->name : "");
		plain_event(p, ev, false);
		if (r) {
			free(r->name);
			free(r->last);
			*r = p->run[--p->nrun];
		}
		break;
	default:
		plain_event(p, ev, false);
		break;
	}
	tty_draw(p, ev->time);
	fflush(p->out);
}

void
bld_printer_event(void *printer, const struct bld_event *ev)
{
	struct bld_printer *p = printer;
	pthread_mutex_lock(&p->lock);
	switch (p->mode) {
	case BLD_PROGRESS_JSON:
		json_event(p, ev);
		break;
	case BLD_PROGRESS_QUIET:
		break;
	case BLD_PROGRESS_TTY:
		tty_event(p, ev);
		break;
	default:
		plain_event(p, ev, true);
		break;
	}
	if (p->mode != BLD_PROGRESS_TTY)
		fflush(p->out);
	pthread_mutex_unlock(&p->lock);
}
