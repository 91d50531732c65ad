/*
 * A small TAP harness. Each TEST() is one test point; an ASSERT_* that fails
 * prints a diagnostic and ends that test point as "not ok", and the run goes
 * on with the next one. tap_main() runs them in file order and exits non-zero
 * if any failed. tap_skip_all() skips the whole program (plan 1..0, exit 77),
 * for tests that need root when not root.
 */
#pragma once

#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef void (*tap_fn)(void);

void tap_register(const char *name, tap_fn fn);
int tap_main(int argc, char **argv);
/*
 * Leaves the test points for which keep() is false out of this run: not
 * planned, not run, not reported (for points that do not apply, such as one
 * driver's own limits when another driver is under test).
 */
void tap_filter(bool (*keep)(const char *name));
void tap_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));
void tap_skip_all(const char *reason) __attribute__((noreturn));
/* Skips the current test point with a reason. */
void tap_skip(const char *reason) __attribute__((noreturn));
/* Calls tap_skip_all() unless running as root. */
void tap_require_root(void);
/* A fresh empty directory under $TMPDIR for this test program; removed at exit. */
const char *tap_tmpdir(void);

#define TEST(name)                                                                                 \
	static void test_##name(void);                                                             \
	__attribute__((constructor)) static void tap_reg_##name(void)                              \
	{                                                                                          \
		tap_register(#name, test_##name);                                                  \
	}                                                                                          \
	static void test_##name(void)

#define ASSERT_TRUE(expr)                                                                          \
	do {                                                                                       \
		if (!(expr))                                                                       \
			tap_fail(__FILE__, __LINE__, "expected true: %s", #expr);                  \
	} while (0)

#define ASSERT_FALSE(expr) ASSERT_TRUE(!(expr))

/* expr returns >= 0 on success, -errno on failure. */
#define ASSERT_OK(expr)                                                                            \
	do {                                                                                       \
		long long _r = (long long)(expr);                                                  \
		if (_r < 0)                                                                        \
			tap_fail(__FILE__, __LINE__, "%s failed: %lld (%s)", #expr, _r,            \
				 strerror((int)-_r));                                              \
	} while (0)

#define ASSERT_ERRNO(expr, want)                                                                   \
	do {                                                                                       \
		long long _r = (long long)(expr);                                                  \
		if (_r != (long long)(want))                                                       \
			tap_fail(__FILE__, __LINE__, "%s returned %lld (%s), expected %s", #expr,  \
				 _r, _r < 0 ? strerror((int)-_r) : "success", #want);              \
	} while (0)

#define ASSERT_EQ(a, b)                                                                            \
	do {                                                                                       \
		long long _a = (long long)(a), _b = (long long)(b);                                \
		if (_a != _b)                                                                      \
			tap_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, _a, _b);    \
	} while (0)

#define ASSERT_STREQ(a, b)                                                                         \
	do {                                                                                       \
		const char *_a = (a), *_b = (b);                                                   \
		if (!_a || !_b || strcmp(_a, _b) != 0)                                             \
			tap_fail(__FILE__, __LINE__, "%s == %s: '%s' != '%s'", #a, #b,             \
				 _a ? _a : "(null)", _b ? _b : "(null)");                          \
	} while (0)

#define ASSERT_NOT_NULL(p)                                                                         \
	do {                                                                                       \
		if ((p) == NULL)                                                                   \
			tap_fail(__FILE__, __LINE__, "%s is NULL", #p);                            \
	} while (0)
