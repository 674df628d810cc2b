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
/* Host input waiting behind the receive FIFO (serial_input): bytes the
 * guest has not read yet; the FIFO is refilled from it as the guest reads. */
#define SERIAL_INPUT_MAX 4096

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

/*
 * A console attached to the port (control/console.c): every transmitted
 * byte goes to output() as well; rx_space() says that serial_input() takes
 * bytes again after it refused some.  Both are called with the device lock
 * held, so they must not call back into the device (queue and wake a
 * thread instead).
 */
struct serial_host {
	void (*output)(void *opaque, uint8_t c);
	void (*rx_space)(void *opaque);
	void *opaque;
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
	/* host input not yet in the FIFO (serial_input) */
	uint8_t inq[SERIAL_INPUT_MAX];
	unsigned inq_head, inq_count;
	bool inq_refused;     /* serial_input refused bytes: tell rx_space */
	struct serial_host host; /* output == NULL: none attached */
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

/*
 * Lossless host input, as a terminal types it: bytes go into the receive
 * FIFO while it has room and wait in a queue of SERIAL_INPUT_MAX bytes
 * behind it; each time the guest reads RBR the FIFO is topped up from the
 * queue, so the guest sees LSR.DR and the receive interrupt until it has
 * read everything and never an overrun.  Returns how many bytes were taken
 * (fewer than len when the queue is full: keep the rest, and call again
 * after the host's rx_space()).  While the guest holds the UART in
 * loopback the bytes wait in the queue.
 */
size_t serial_input(struct serial16550 *s, const uint8_t *buf, size_t len);

/* Bytes serial_input() would take now; bytes still waiting for the guest
 * (queued and in the FIFO). */
size_t serial_input_room(struct serial16550 *s);
size_t serial_input_pending(struct serial16550 *s);

/* Attach a console (host != NULL) or detach it (NULL).  Once this returns
 * the old host's callbacks are not running and will not be called. */
void serial_attach(struct serial16550 *s, const struct serial_host *host);

#endif
