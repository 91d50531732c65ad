/* TAP harness: see tap.h. */
#include "tap.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "util.h"

struct tap_test {
	const char *name;
	tap_fn fn;
};

static struct tap_test tests[512];
static size_t ntests;
static jmp_buf jump;
static char tmpdir[4096];
static const char *skip_reason;

void
tap_register(const char *name, tap_fn fn)
{
	if (ntests >= (sizeof(tests) / sizeof(tests[0])))
		abort();
	tests[ntests].name = name;
	tests[ntests].fn = fn;
	ntests++;
}

void
tap_fail(const char *file, int line, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	printf("# %s:%d: %s\n", file, line, buf);
	fflush(stdout);
	longjmp(jump, 1);
}

void
tap_skip(const char *reason)
{
	skip_reason = reason;
	longjmp(jump, 2);
}

void
tap_skip_all(const char *reason)
{
	printf("1..0 # SKIP %s\n", reason);
	fflush(stdout);
	exit(77);
}

void
tap_require_root(void)
{
	if (geteuid() != 0)
		tap_skip_all("needs root");
}

static void
remove_tmpdir(void)
{
	if (tmpdir[0])
		sc_rm_rf_at(AT_FDCWD, tmpdir);
}

const char *
tap_tmpdir(void)
{
	if (!tmpdir[0]) {
		const char *base = getenv("TMPDIR");
		snprintf(tmpdir, sizeof(tmpdir), "%s/snapctl-test-XXXXXX", base ? base : "/tmp");
		if (!mkdtemp(tmpdir)) {
			perror("mkdtemp");
			abort();
		}
		atexit(remove_tmpdir);
	}
	return tmpdir;
}

static bool (*keep_fn)(const char *name);

void
tap_filter(bool (*keep)(const char *name))
{
	keep_fn = keep;
}

static bool
selected(const char *only, const char *name)
{
	return (!only || strcmp(only, name) == 0) && (!keep_fn || keep_fn(name));
}

int
tap_main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	size_t planned = 0;
	for (size_t i = 0; i < ntests; i++)
		if (selected(only, tests[i].name))
			planned++;
	printf("1..%zu\n", planned);
	fflush(stdout);
	int failed = 0, n = 0;
	for (size_t i = 0; i < ntests; i++) {
		if (!selected(only, tests[i].name))
			continue;
		n++;
		skip_reason = NULL;
		int state = setjmp(jump);
		if (state == 0) {
			tests[i].fn();
			printf("ok %d - %s\n", n, tests[i].name);
		} else if (state == 2) {
			printf("ok %d - %s # SKIP %s\n", n, tests[i].name, skip_reason);
		} else {
			printf("not ok %d - %s\n", n, tests[i].name);
			failed++;
		}
		fflush(stdout);
	}
	return failed ? 1 : 0;
}
