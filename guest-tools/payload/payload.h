/*
 * payload.h - what the parts of the foldvm test payload share: the
 * per-vCPU command state, the instructions (port I/O, rdtsc), output and
 * abort (log.c), and each command file's entry points.
 *
 *   payload.c      entry, config check, command loop, FAULT
 *   libc.c         memset/memcpy/memmove/memcmp
 *   log.c          strbuf, serial output, LOG and ABORT requests
 *   cmd_data.c     FILL, VERIFY, CHURN, RACE, RACE_SETTLE (vCPU 0's state)
 *   cmd_measure.c  MEASURE_WRITE (per-vCPU sample buffers)
 *
 * Environment (set up by the host, see start.S): 64-bit long mode, CPL3,
 * IOPL=3 (so in/out work), identity-mapped RAM, no IDT (any exception
 * triple-faults the guest), no libc, no FPU/SSE (-mgeneral-regs-only).
 * Only port I/O exits to the host; stores, loops, rdtsc and locked
 * instructions run natively.
 *
 * Shared state: all vCPUs run this same image concurrently.  Globals in it
 * are either owned by vCPU 0 (written and read by vCPU 0 only), or indexed
 * by vCPU, or touched with atomics (the race region).  The .bss is not
 * zeroed by start.S; vCPU 0 initialises its shared state explicitly, so
 * nothing depends on the host having zeroed RAM (though it does).
 */
#ifndef FV_PAYLOAD_H
#define FV_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "testdev_abi.h"
#include "content.h"

/* Defined in start.S: write FV_EXIT_MAGIC to FV_EXIT_PORT forever. */
_Noreturn void fv_exit_forever(void);

/* The compiler may emit calls to these even with -fno-builtin. */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);

/* ------------------------------------------------------------------------
 * Instructions.
 */

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

/*
 * The "memory" clobber makes every outl a compiler barrier: the host reads
 * and writes the mailbox while the vCPU is stopped in this instruction, so
 * the compiler must not keep mailbox (or any other memory) values in
 * registers across it.
 */
static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void cpu_pause(void)
{
	__asm__ volatile("pause" : : : "memory");
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

/*
 * rdtsc fenced on both sides: lfence before keeps earlier instructions
 * (e.g. a faulting store) from still being in flight when the TSC is read;
 * lfence after keeps later instructions from starting before it.
 */
static inline uint64_t rdtsc_fenced(void)
{
	uint32_t lo, hi;

	__asm__ volatile("lfence\n\trdtsc\n\tlfence"
			 : "=a"(lo), "=d"(hi) : : "memory");
	return ((uint64_t)hi << 32) | lo;
}

/* Busy-wait `cycles` TSC ticks (no hlt at CPL3; pause does not exit there). */
static inline void tsc_wait(uint64_t cycles)
{
	uint64_t t0;

	if (cycles == 0)
		return;
	t0 = rdtsc();
	while (rdtsc() - t0 < cycles)
		cpu_pause();
}

/* ------------------------------------------------------------------------
 * Output and abort (log.c).
 */

/* Small string builder for log lines (no printf in a freestanding world). */
struct strbuf {
	char *buf;
	size_t cap;   /* including the terminating NUL */
	size_t len;
};

void sb_init(struct strbuf *sb, char *buf, size_t cap);
void sb_putc(struct strbuf *sb, char c);
void sb_puts(struct strbuf *sb, const char *s);
void sb_putu(struct strbuf *sb, uint64_t v);
void sb_putx(struct strbuf *sb, uint64_t v);

/* Polled output to the 16550 at FV_SERIAL_PORT. */
void serial_puts(const char *s);

static inline volatile struct fv_mailbox *mailbox_of(uint64_t vcpu)
{
	return (volatile struct fv_mailbox *)(uintptr_t)FV_MAILBOX_GPA(vcpu);
}

/* The vCPU we run on, from the stack pointer (see log.c); FV_MAX_VCPUS or
 * more if the stack is not where the ABI says. */
uint64_t this_vcpu(void);

/* FV_REQ_LOG: a NUL-terminated message the host prints/records. */
void fv_log(const char *msg);

/* FV_REQ_ABORT with msg ("file:line: message"), then never run again. */
_Noreturn void guest_abort(const char *msg);

#define FV_STR2(x) #x
#define FV_STR(x) FV_STR2(x)
#define FV_WHERE __FILE__ ":" FV_STR(__LINE__) ": "

/* Abort the guest with "file:line: msg" unless cond holds (msg: a literal). */
#define GUEST_ASSERT(cond, msg)                                         \
	do {                                                            \
		if (!(cond))                                            \
			guest_abort(FV_WHERE msg);                      \
	} while (0)

/* Per-vCPU view of the current command (set up by payload_main). */
struct vcpu {
	uint64_t index;
	const struct fv_guest_config *cfg;
	volatile struct fv_mailbox *mb;
	uint32_t cmd;
	uint64_t arg[8];
	/* reported with the next FV_REQ_NEXT */
	uint32_t status;
	uint64_t result[8];
};

/*
 * Commands (cmd_data.c, cmd_measure.c; FAULT and EXIT are in payload.c).
 * Each sets v->status (preset to OK) and v->result[].
 */
void cmd_data_init(void);
void cmd_fill(struct vcpu *v);
void cmd_verify(struct vcpu *v);
void cmd_churn(struct vcpu *v);
void cmd_race(struct vcpu *v);
void cmd_race_settle(struct vcpu *v);
void cmd_measure_write(struct vcpu *v);
void cmd_virtio_init(struct vcpu *v);
void cmd_blk(struct vcpu *v);
void cmd_blk_bad(struct vcpu *v);
void cmd_balloon_adjust(struct vcpu *v);
void cmd_balloon_report(struct vcpu *v);
void cmd_balloon_stats(struct vcpu *v);
void cmd_net_send(struct vcpu *v);
void cmd_net_recv(struct vcpu *v);
void cmd_echo(struct vcpu *v);

/* Data pages [gpa, gpa + bytes) got new content from outside (a device
 * read): record their checksums for VERIFY.  -1 before FILL, or a range
 * outside the data region. */
int data_adopt(const struct fv_guest_config *cfg, uint64_t gpa, uint64_t bytes);

#endif
