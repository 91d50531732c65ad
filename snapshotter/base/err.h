/*
 * Error context carried from where a failure arises up to the CLI.
 *
 * Fallible functions return an int: >= 0 on success, -errno on failure. The
 * caller owns a struct sc_err; the function that first sees the failure writes
 * the message with sc_err_set(), callers on the way up may add context with
 * sc_err_prefix(), and nobody overwrites a message once set. The buffer is
 * fixed so that reporting -ENOMEM never allocates. Every function accepts
 * err == NULL, for callers that only want the code.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>

#define SC_ERR_MSG_MAX 1024

struct sc_err {
	int code; /* -errno of the first failure, 0 while none */
	char msg[SC_ERR_MSG_MAX];
};

#define SC_ERR_INIT                                                                                \
	{                                                                                          \
		0                                                                                  \
	}

/* Records code and message unless err already holds one. Returns code. */
int sc_err_set(struct sc_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Like sc_err_set() but appends ": strerror(-code)". Returns code. */
int sc_err_setsys(struct sc_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Adds "CONTEXT: " in front of the message already held (or, when none is
 * held yet, sets "CONTEXT: strerror(-code)"). Returns code.
 */
int sc_err_prefix(struct sc_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline bool
sc_err_isset(const struct sc_err *err)
{
	return err && err->code != 0;
}

static inline void
sc_err_clear(struct sc_err *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}

/* The message, or strerror of the code when no message was written. */
const char *sc_err_msg(const struct sc_err *err);

/* strerror() for a negative errno, thread-safe, never NULL. */
const char *sc_strerror(int code);
