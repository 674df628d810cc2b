/*
 * syscall_rules.h - the sandbox's rules, declared beside the code that
 * needs them (as Cloud Hypervisor keeps each device's seccomp rules
 * beside the device): a system call a sandboxed worker may make, with at
 * most one condition on one argument.  Devices (devices/) and the engine
 * (dedup/) each export a table of them; supervisor/sandbox.c composes
 * every table with its own base list into the worker's seccomp filter
 * (docs/sandbox.md).  Data only: no code, no libseccomp.
 */
#ifndef FOLDVM_LIB_SYSCALL_RULES_H
#define FOLDVM_LIB_SYSCALL_RULES_H

#include <stdint.h>

enum syscall_arg_test {
	SYSCALL_ANY_ARGS,               /* any arguments */
	SYSCALL_ARG_EQ,                 /* argument `arg` == value */
	SYSCALL_ARG_MASKED_EQ,          /* (argument `arg` & mask) == value */
};

struct syscall_rule {
	const char *name;               /* libseccomp's name: "ioctl" */
	enum syscall_arg_test test;
	unsigned arg;                   /* 0..5 */
	uint64_t mask, value;
};

/* Who needs them (for the docs and errors) and the rules. */
struct syscall_rules {
	const char *who;
	const struct syscall_rule *rules;
	unsigned n;
};

#define SYSCALL_ANY(call) { (call), SYSCALL_ANY_ARGS, 0, 0, 0 }
#define SYSCALL_EQ(call, a, v) { (call), SYSCALL_ARG_EQ, (a), 0, (v) }
#define SYSCALL_MASKED(call, a, m, v) { (call), SYSCALL_ARG_MASKED_EQ, (a), (m), (v) }
#define SYSCALL_RULES(who_, table) \
	{ .who = (who_), .rules = (table), .n = sizeof(table) / sizeof((table)[0]) }

#endif
