/*
 * Debug logging for the libraries. Libraries log at debug level only; what a
 * user sees is decided by cli/. Messages go to stderr when enabled with
 * sc_log_set_debug() (the CLI's --debug) or SNAPCTL_DEBUG=1.
 */
#pragma once

#include <stdbool.h>

void sc_log_set_debug(bool on);
bool sc_log_debug_enabled(void);
void sc_log_debug_impl(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define sc_debug(...)                                                                              \
	do {                                                                                       \
		if (sc_log_debug_enabled())                                                        \
			sc_log_debug_impl(__FILE__, __LINE__, __VA_ARGS__);                        \
	} while (0)
