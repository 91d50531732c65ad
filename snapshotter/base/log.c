/* Debug logging: see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int debug_state = -1; /* -1: not decided yet, read SNAPCTL_DEBUG */

void
sc_log_set_debug(bool on)
{
	debug_state = on;
}

bool
sc_log_debug_enabled(void)
{
	if (debug_state < 0) {
		const char *e = getenv("SNAPCTL_DEBUG");
		debug_state = e && *e && strcmp(e, "0") != 0;
	}
	return debug_state > 0;
}

void
sc_log_debug_impl(const char *file, int line, const char *fmt, ...)
{
	char buf[2048];
	const char *base = strrchr(file, '/');
	int n = snprintf(buf, sizeof(buf), "snapctl[%d] debug %s:%d: ", (int)getpid(),
			 base ? base + 1 : file, line);
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(buf))
		vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", buf);
}
