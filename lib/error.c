#include <stdio.h>
#include <string.h>
#include "lib/error.h"

static void fv_err_vset(struct fv_error *err, enum fv_errcode code,
			const char *fmt, va_list ap)
{
	err->code = code;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

int fv_err(struct fv_error *err, enum fv_errcode code, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	fv_err_vset(err, code, fmt, ap);
	va_end(ap);
	return -1;
}

int fv_err_errno(struct fv_error *err, enum fv_errcode code, int errnum,
		 const char *fmt, ...)
{
	va_list ap;
	size_t len;

	if (!err)
		return -1;
	va_start(ap, fmt);
	fv_err_vset(err, code, fmt, ap);
	va_end(ap);
	len = strlen(err->msg);
	snprintf(err->msg + len, sizeof(err->msg) - len, ": %s",
		 strerror(errnum));
	return -1;
}

void fv_err_prefix(struct fv_error *err, const char *fmt, ...)
{
	char prefix[256];
	size_t plen, mlen;
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	/* Shift the message right, dropping its tail if it no longer fits. */
	plen = strlen(prefix);
	if (plen >= sizeof(err->msg))
		plen = sizeof(err->msg) - 1;
	mlen = strnlen(err->msg, sizeof(err->msg) - 1);
	if (mlen > sizeof(err->msg) - 1 - plen)
		mlen = sizeof(err->msg) - 1 - plen;
	memmove(err->msg + plen, err->msg, mlen);
	memcpy(err->msg, prefix, plen);
	err->msg[plen + mlen] = '\0';
}

const char *fv_errcode_name(enum fv_errcode code)
{
	switch (code) {
	case FV_OK: return "ok";
	case FV_E_INVAL: return "invalid input";
	case FV_E_RANGE: return "out of range";
	case FV_E_NOMEM: return "out of memory";
	case FV_E_KVM: return "KVM error";
	case FV_E_IO: return "I/O error";
	case FV_E_STATE: return "wrong state";
	case FV_E_GUEST: return "guest error";
	case FV_E_SYS: return "system error";
	}
	return "unknown error";
}
