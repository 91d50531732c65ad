/* Loading libarchive on first use: see archive-lib.h. */
#define SNAP_ARCHIVE_NO_REDIRECT
#include "archive-lib.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>

#define LIBARCHIVE_SONAME "libarchive.so.13"

struct snap_archive_lib snap_archive_lib;
bool snap_archive_loaded;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[256];

static void
load(void)
{
	void *h = dlopen(LIBARCHIVE_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(load_error, sizeof(load_error),
			 "cannot load %s (%s); install libarchive13", LIBARCHIVE_SONAME, dlerror());
		return;
	}
	struct snap_archive_lib lib;
#define SNAP_ARCHIVE_RESOLVE(name)                                                                 \
	lib.name = (__typeof__(&name))dlsym(h, #name);                                             \
	if (!lib.name) {                                                                           \
		snprintf(load_error, sizeof(load_error),                                           \
			 "%s has no function %s; install a newer "                                 \
			 "libarchive",                                                             \
			 LIBARCHIVE_SONAME, #name);                                                \
		return;                                                                            \
	}
	SNAP_ARCHIVE_FUNCTIONS(SNAP_ARCHIVE_RESOLVE)
#undef SNAP_ARCHIVE_RESOLVE
	/* The library stays loaded for the life of the process. */
	snap_archive_lib = lib;
	snap_archive_loaded = true;
}

int
snap_archive_load(struct sc_err *err)
{
	pthread_once(&load_once, load);
	if (!snap_archive_loaded)
		return sc_err_set(err, -ELIBACC, "%s", load_error);
	return 0;
}
