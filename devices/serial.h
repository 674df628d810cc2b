/*
 * serial.h - 16550A-compatible UART (8 registers at a base port, e.g. 0x3f8).
 *
 * The device is pure state + callbacks, so it is unit-testable without KVM:
 * transmitted bytes go to an output sink (a per-guest log file and,
 * optionally, stdout with a "[name] " prefix per line); the interrupt line is
 * reported through set_irq when the level changes.
 */
#ifndef FOLDVM_SERIAL_H
#define FOLDVM_SERIAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <pthread.h>

#define SERIAL_NR_PORTS 8
#define SERIAL_RX_FIFO 16
#define SERIAL_LINE_MAX 1024

/* Called with the device lock held, only when the level changes; it must not
 * call back into the same device. */
typedef void (*serial_irq_fn)(void *opaque, int level);

struct serial_config {
	const char *name;     /* guest name, used in the stdout prefix */
	int log_fd;           /* every transmitted byte is appended; -1 = none */
	bool echo_stdout;     /* also print complete lines as "[name] line" */
	serial_irq_fn set_irq; /* may be NULL (no interrupt controller) */
	void *irq_opaque;
};

struct serial16550 {
	struct serial_config cfg;
	char name[64];
	pthread_mutex_t lock;
	/* registers */
	uint8_t ier, iir, lcr, mcr, lsr, msr, scr, fcr;
	uint8_t dll, dlm;
	bool thr_ipending;    /* THRE interrupt pending (cleared by IIR read / THR write) */
	uint8_t rx[SERIAL_RX_FIFO];
	unsigned rx_head, rx_count;
	int irq_level;
	/* stdout echo: bytes of the current line */
	char line[SERIAL_LINE_MAX];
	size_t line_len;
	uint64_t tx_bytes;    /* bytes the guest transmitted to the sink */
	int write_errors;     /* failed writes to the log (reported once) */
};

/* Initialise to the 16550 reset state. Never fails. */
void serial_init(struct serial16550 *s, const struct serial_config *cfg);

/* Flush a partial stdout line and release the mutex. Does not close log_fd. */
void serial_destroy(struct serial16550 *s);

/* A port access at base + offset (0..7), one byte.  For reads *data is set. */
void serial_read(struct serial16550 *s, unsigned offset, uint8_t *data);
void serial_write(struct serial16550 *s, unsigned offset, uint8_t data);

/* Queue bytes the host sends to the guest (receive side); returns how many
 * fit in the FIFO.  A byte that does not fit is an overrun: the guest sees
 * LSR.OE, as on a real UART; callers that want lossless input ask
 * serial_rx_room() first and keep the rest for later.  In loopback mode the
 * receiver is disconnected from the line and nothing is accepted (returns 0,
 * no overrun). */
size_t serial_receive(struct serial16550 *s, const uint8_t *buf, size_t len);

/* How many bytes serial_receive() would accept now without an overrun. */
size_t serial_rx_room(struct serial16550 *s);

#endif
