/* Error context: see err.h for the contract. */
#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void __attribute__((format(printf, 3, 0)))
vformat(struct sc_err *err, int code, const char *fmt, va_list ap, bool sys)
{
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	if (sys && n >= 0 && (size_t)n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s", sc_strerror(code));
	err->code = code;
}

int
sc_err_set(struct sc_err *err, int code, const char *fmt, ...)
{
	if (!err || err->code != 0)
		return code;
	va_list ap;
	va_start(ap, fmt);
	vformat(err, code, fmt, ap, false);
	va_end(ap);
	return code;
}

int
sc_err_setsys(struct sc_err *err, int code, const char *fmt, ...)
{
	if (!err || err->code != 0)
		return code;
	va_list ap;
	va_start(ap, fmt);
	vformat(err, code, fmt, ap, true);
	va_end(ap);
	return code;
}

int
sc_err_prefix(struct sc_err *err, int code, const char *fmt, ...)
{
	if (!err)
		return code;
	char prefix[SC_ERR_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);

	if (err->code == 0) {
		err->code = code;
		snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, sc_strerror(code));
		return code;
	}
	char old[SC_ERR_MSG_MAX];
	memcpy(old, err->msg, sizeof(old));
	snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
	return code;
}

const char *
sc_err_msg(const struct sc_err *err)
{
	if (!err || err->code == 0)
		return "no error";
	if (err->msg[0])
		return err->msg;
	return sc_strerror(err->code);
}

const char *
sc_strerror(int code)
{
	if (code < 0)
		code = -code;
	/* strerrordesc_np() returns static strings and never allocates. */
	const char *s = strerrordesc_np(code);
	return s ? s : "unknown error";
}
