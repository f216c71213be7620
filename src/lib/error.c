/* error.c - the error object: errno plus a one-line message with context.
 *
 * The message lives in a fixed buffer inside corral_error_t, so reporting an
 * error never allocates (errors happen on OOM paths too). The innermost call
 * writes the message at the failing syscall; callers add context in front with
 * corral__err_wrap() on the way up ("create task cgroup: mkdir `t3-a1`: ...").
 */
#include <stdio.h>

#include "internal.h"

int corral__err(corral_error_t *err, int code, const char *fmt, ...)
{
	if (code <= 0)
		code = EIO;
	if (err) {
		va_list ap;
		int n;

		va_start(ap, fmt);
		n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		if (n < 0)
			n = 0;
		if ((size_t)n < sizeof(err->msg))
			snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s",
			         strerror(code));
		err->code = code;
	}
	return -code;
}

int corral__err_wrap(corral_error_t *err, int rc, const char *fmt, ...)
{
	if (err) {
		char outer[sizeof(err->msg)];
		char inner[sizeof(err->msg)];
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(outer, sizeof(outer), fmt, ap);
		va_end(ap);
		memcpy(inner, err->msg, sizeof(inner));
		snprintf(err->msg, sizeof(err->msg), "%s: %s", outer, inner);
		if (rc < 0)
			err->code = -rc;
	}
	return rc;
}
