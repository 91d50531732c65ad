/*
 * Scope-bound cleanup: variables marked with these attributes are released
 * when they leave scope. Initialise every such variable (NULL or -EBADF).
 * TAKE_PTR/TAKE_FD hand ownership out on success.
 */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void
sc_freep(void *p)
{
	free(*(void **)p);
}

static inline void
sc_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

static inline void
sc_fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

static inline void
sc_closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

#define _cleanup_(f)	   __attribute__((cleanup(f)))
#define _cleanup_free_	   _cleanup_(sc_freep)
#define _cleanup_close_	   _cleanup_(sc_closep)
#define _cleanup_fclose_   _cleanup_(sc_fclosep)
#define _cleanup_closedir_ _cleanup_(sc_closedirp)

#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _tp = (p);                                                           \
		(p) = NULL;                                                                        \
		_tp;                                                                               \
	})

#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _tf = (fd);                                                                    \
		(fd) = -EBADF;                                                                     \
		_tf;                                                                               \
	})

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Retries a syscall-style expression while it fails with EINTR. */
#define SC_RETRY_EINTR(expr)                                                                       \
	({                                                                                         \
		__typeof__(expr) _r;                                                               \
		do                                                                                 \
			_r = (expr);                                                               \
		while (_r == -1 && errno == EINTR);                                                \
		_r;                                                                                \
	})
