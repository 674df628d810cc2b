/*
 * error.h - typed errors (Firecracker style): every failure has a class the
 * caller can switch on and a message that says what failed.  Library code
 * never exits; only main() turns an error into an exit status.
 */
#ifndef FOLDVM_ERROR_H
#define FOLDVM_ERROR_H

#include <stdarg.h>

enum fv_errcode {
	FV_OK = 0,
	FV_E_INVAL,   /* bad input from outside (command line, image, guest) */
	FV_E_RANGE,   /* address or size out of bounds */
	FV_E_NOMEM,   /* host could not provide memory */
	FV_E_KVM,     /* a KVM ioctl failed or KVM lacks a capability */
	FV_E_IO,      /* file or device I/O failed */
	FV_E_STATE,   /* operation not allowed in the current state */
	FV_E_GUEST,   /* the guest stopped or misbehaved */
	FV_E_SYS,     /* any other system call failure */
};

struct fv_error {
	enum fv_errcode code;
	char msg[512];
};

/* Record an error (err may be NULL) and return -1, so callers can write
 * `return fv_err(err, FV_E_INVAL, "...")`. */
int fv_err(struct fv_error *err, enum fv_errcode code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Same, appending ": strerror(errnum)". */
int fv_err_errno(struct fv_error *err, enum fv_errcode code, int errnum,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Prefix an existing message with more context ("guest a: " ...). */
void fv_err_prefix(struct fv_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

const char *fv_errcode_name(enum fv_errcode code);

#endif
