/*
 * serial.c - 16550A-compatible UART model.
 *
 * The model is a pure state machine: port accesses come in through
 * serial_read()/serial_write(), host input through serial_receive(), and
 * everything that leaves the device goes through the output sink (log fd,
 * stdout echo) or the set_irq callback.  It never touches KVM.
 *
 * Deliberate simplifications, chosen so Linux's 8250 driver, earlyprintk and
 * simple polling payloads all work:
 *  - The transmitter is infinitely fast: a THR write leaves at once, so
 *    LSR.THRE and LSR.TEMT are always set.
 *  - The receive FIFO is always 16 bytes deep, whether or not FCR enabled the
 *    FIFOs (a real chip in 16450 mode holds one byte).  Only the IIR FIFO bits
 *    follow FCR.
 *  - "Received data available" is raised as soon as one byte is queued; the
 *    FCR trigger level and the character-timeout interrupt (IIR=0x0c) are not
 *    modelled.  Linux treats 0x04 and 0x0c identically.
 *  - No parity/framing/break errors: the only line-status error is overrun.
 *  - The modem inputs are fixed at DCD|DSR|CTS (a line is present).  In
 *    loopback they follow the MCR outputs, with the delta bits a real chip
 *    produces, and a modem-status interrupt when IER.EDSSI is set.
 *  - Reading RBR with an empty FIFO returns 0 (a real chip repeats the last
 *    byte); nobody reads RBR without LSR.DR.
 *  - The interrupt line is pending && OUT2 && !loopback: PC wiring, where
 *    the OUT2 pin (forced inactive in loopback) enables the IRQ buffer.
 *  - tx_bytes counts bytes that reached the sink; looped-back bytes do not.
 *  - Host input comes in two ways: serial_receive() is the line (a byte
 *    that finds the FIFO full is an overrun), serial_input() is a console
 *    (control/console.c): its bytes wait in a bounded queue behind the FIFO
 *    and move in as the guest reads, so typing fast never overruns a guest
 *    that reads slowly; the console stops reading its client while the
 *    queue is full and is woken (rx_space) when it is not.
 *
 * Locking: one mutex per device; every entry point takes it.  set_irq is
 * called with the lock held (so level changes are reported in order); the
 * callback must therefore not call back into this device.  The stdout echo
 * takes a process-wide mutex after the device lock, never the other way
 * round.
 */
#ifndef _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "devices/serial.h"

/* Register offsets. */
#define UART_RBR 0 /* read, DLAB=0 */
#define UART_THR 0 /* write, DLAB=0 */
#define UART_DLL 0 /* DLAB=1 */
#define UART_IER 1 /* DLAB=0 */
#define UART_DLM 1 /* DLAB=1 */
#define UART_IIR 2 /* read */
#define UART_FCR 2 /* write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define IER_ERBFI 0x01 /* received data available */
#define IER_ETBEI 0x02 /* THR empty */
#define IER_ELSI  0x04 /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */
#define IER_MASK  0x0f /* bits 7:4 read as zero on a 16550A */

#define IIR_NO_INT 0x01
#define IIR_MSI    0x00
#define IIR_THRI   0x02
#define IIR_RDI    0x04
#define IIR_RLSI   0x06
#define IIR_FIFO   0xc0 /* FIFOs enabled */

#define FCR_ENABLE     0x01
#define FCR_CLEAR_RX   0x02
#define FCR_CLEAR_TX   0x04
#define FCR_KEEP       0xc9 /* trigger level, DMA mode, enable */

#define LCR_DLAB 0x80

#define MCR_DTR  0x01
#define MCR_RTS  0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f /* bits 7:5 read as zero on a 16550A */

#define LSR_DR   0x01
#define LSR_OE   0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_ERRORS 0x1e /* OE, PE, FE, BI: the line-status interrupt sources */

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS  0x10
#define MSR_DSR  0x20
#define MSR_RI   0x40
#define MSR_DCD  0x80
#define MSR_DELTAS 0x0f
/* Modem inputs outside loopback: a line is present, no ring. */
#define MSR_LINE (MSR_DCD | MSR_DSR | MSR_CTS)

/* Serialises stdout among all devices so guests' lines never interleave. */
static pthread_mutex_t stdout_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- output sink ---- */

static void log_error(struct serial16550 *s, int errnum)
{
	if (s->write_errors == 0)
		fprintf(stderr, "serial %s: writing the console log failed: %s\n",
			s->name, errnum ? strerror(errnum) : "no progress");
	/* Saturate: a long-lived guest must not overflow the counter. */
	if (s->write_errors < INT_MAX)
		s->write_errors++;
}

/* Write the whole buffer to the log fd; give up on the first hard error. */
static void log_write(struct serial16550 *s, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(s->cfg.log_fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_error(s, n < 0 ? errno : 0);
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* Print the pending echo line as "[name] line\n" in a single fwrite. */
static void echo_flush(struct serial16550 *s)
{
	char out[sizeof(s->name) + 3 + SERIAL_LINE_MAX + 1];
	int n;

	n = snprintf(out, sizeof(out), "[%s] %.*s\n", s->name,
		     (int)s->line_len, s->line);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(out))
		n = sizeof(out) - 1;
	pthread_mutex_lock(&stdout_lock);
	fwrite(out, 1, (size_t)n, stdout);
	fflush(stdout);
	pthread_mutex_unlock(&stdout_lock);
	s->line_len = 0;
}

static void echo_append(struct serial16550 *s, const char *text, size_t len)
{
	if (s->line_len + len > sizeof(s->line))
		echo_flush(s);
	memcpy(s->line + s->line_len, text, len);
	s->line_len += len;
}

/* Feed one transmitted byte to the stdout echo. */
static void echo_byte(struct serial16550 *s, uint8_t c)
{
	char esc[5];

	if (c == '\n') {
		echo_flush(s);
	} else if (c == '\r') {
		/* CRLF line ends: the '\n' alone ends the line. */
	} else if (c == '\t' || (c >= 0x20 && c < 0x7f)) {
		esc[0] = (char)c;
		echo_append(s, esc, 1);
	} else {
		/* Keep control and 8-bit bytes from garbling the terminal. */
		snprintf(esc, sizeof(esc), "\\x%02x", c);
		echo_append(s, esc, 4);
	}
}

static void transmit(struct serial16550 *s, uint8_t c)
{
	s->tx_bytes++;
	if (s->cfg.log_fd >= 0)
		log_write(s, &c, 1);
	if (s->cfg.echo_stdout)
		echo_byte(s, c);
	if (s->host.output)
		s->host.output(s->host.opaque, c);
}

/* ---- receive FIFO ---- */

/* Queue one byte; on a full FIFO the byte is lost and LSR.OE set. */
static bool rx_push(struct serial16550 *s, uint8_t c)
{
	if (s->rx_count == SERIAL_RX_FIFO) {
		s->lsr |= LSR_OE;
		return false;
	}
	s->rx[(s->rx_head + s->rx_count) % SERIAL_RX_FIFO] = c;
	s->rx_count++;
	s->lsr |= LSR_DR;
	return true;
}

static uint8_t rx_pop(struct serial16550 *s)
{
	uint8_t c;

	if (s->rx_count == 0)
		return 0;
	c = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_RX_FIFO;
	if (--s->rx_count == 0)
		s->lsr &= (uint8_t)~LSR_DR;
	return c;
}

static void rx_clear(struct serial16550 *s)
{
	s->rx_head = 0;
	s->rx_count = 0;
	s->lsr &= (uint8_t)~LSR_DR;
}

/*
 * Move queued host input into the FIFO while it has room (not in loopback,
 * where the receiver is off the line), and tell the console once the queue
 * that refused bytes has room again.  Called after every register access,
 * so a byte leaves the queue as soon as the guest made room for it.
 */
static void rx_refill(struct serial16550 *s)
{
	while (s->inq_count && s->rx_count < SERIAL_RX_FIFO &&
	       !(s->mcr & MCR_LOOP)) {
		rx_push(s, s->inq[s->inq_head]);
		s->inq_head = (s->inq_head + 1) % SERIAL_INPUT_MAX;
		s->inq_count--;
	}
	if (s->inq_refused && s->inq_count < SERIAL_INPUT_MAX) {
		s->inq_refused = false;
		if (s->host.rx_space)
			s->host.rx_space(s->host.opaque);
	}
}

/* ---- interrupts and modem status ---- */

/* The interrupt identification, highest priority source first. */
static uint8_t iir_compute(const struct serial16550 *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;

	if ((s->ier & IER_ELSI) && (s->lsr & LSR_ERRORS))
		return fifo | IIR_RLSI;
	if ((s->ier & IER_ERBFI) && s->rx_count)
		return fifo | IIR_RDI;
	if ((s->ier & IER_ETBEI) && s->thr_ipending)
		return fifo | IIR_THRI;
	if ((s->ier & IER_EDSSI) && (s->msr & MSR_DELTAS))
		return fifo | IIR_MSI;
	return fifo | IIR_NO_INT;
}

/*
 * Recompute IIR and the interrupt line.  On a PC the UART's INTR pin reaches
 * the PIC only through a buffer enabled by OUT2, and in loopback the OUT2 pin
 * is forced inactive, so both gate the line.  set_irq is called only when
 * the level changes.
 */
static void update_irq(struct serial16550 *s)
{
	int level;

	s->iir = iir_compute(s);
	level = !(s->iir & IIR_NO_INT) &&
		(s->mcr & (MCR_OUT2 | MCR_LOOP)) == MCR_OUT2;
	if (level == s->irq_level)
		return;
	s->irq_level = level;
	if (s->cfg.set_irq)
		s->cfg.set_irq(s->cfg.irq_opaque, level);
}

/* The modem input bits (7:4) for the current MCR. */
static uint8_t msr_inputs(uint8_t mcr)
{
	uint8_t in = 0;

	if (!(mcr & MCR_LOOP))
		return MSR_LINE;
	if (mcr & MCR_RTS)
		in |= MSR_CTS;
	if (mcr & MCR_DTR)
		in |= MSR_DSR;
	if (mcr & MCR_OUT1)
		in |= MSR_RI;
	if (mcr & MCR_OUT2)
		in |= MSR_DCD;
	return in;
}

/* Latch new modem inputs, accumulating the delta bits as a 16550 does. */
static void msr_update(struct serial16550 *s)
{
	uint8_t old = s->msr & (uint8_t)~MSR_DELTAS;
	uint8_t in = msr_inputs(s->mcr);
	uint8_t delta = s->msr & MSR_DELTAS;
	uint8_t changed = old ^ in;

	if (changed & MSR_CTS)
		delta |= MSR_DCTS;
	if (changed & MSR_DSR)
		delta |= MSR_DDSR;
	if (changed & MSR_DCD)
		delta |= MSR_DDCD;
	if ((old & MSR_RI) && !(in & MSR_RI))
		delta |= MSR_TERI; /* trailing edge only */
	s->msr = in | delta;
}

/* ---- register accesses ---- */

static void write_thr(struct serial16550 *s, uint8_t data)
{
	if (s->mcr & MCR_LOOP)
		rx_push(s, data);
	else
		transmit(s, data);
	/* The byte left at once, so THR is empty again: THRE re-arms. */
	s->thr_ipending = true;
}

static void write_ier(struct serial16550 *s, uint8_t data)
{
	uint8_t old = s->ier;

	s->ier = data & IER_MASK;
	/*
	 * Enabling ETBEI while THR is empty (it always is) raises THRE at
	 * once; Linux's 8250 driver relies on this to start transmitting and
	 * probes for it at startup (UART_BUG_TXEN / UART_BUG_THRE).
	 */
	if (!(old & IER_ETBEI) && (s->ier & IER_ETBEI))
		s->thr_ipending = true;
}

static void write_fcr(struct serial16550 *s, uint8_t data)
{
	/* Switching between FIFO and 16450 mode empties the FIFOs. */
	if ((s->fcr ^ data) & FCR_ENABLE)
		rx_clear(s);
	/* With FCR0 clear the other bits are not programmed. */
	if (!(data & FCR_ENABLE)) {
		s->fcr = 0;
		return;
	}
	if (data & FCR_CLEAR_RX)
		rx_clear(s);
	/* FCR_CLEAR_TX: the transmit FIFO is always empty. */
	s->fcr = data & FCR_KEEP;
}

static void write_reg(struct serial16550 *s, unsigned offset, uint8_t data)
{
	bool dlab = s->lcr & LCR_DLAB;

	switch (offset) {
	case UART_THR:
		if (dlab)
			s->dll = data;
		else
			write_thr(s, data);
		break;
	case UART_IER:
		if (dlab)
			s->dlm = data;
		else
			write_ier(s, data);
		break;
	case UART_FCR:
		write_fcr(s, data);
		break;
	case UART_LCR:
		s->lcr = data;
		break;
	case UART_MCR:
		s->mcr = data & MCR_MASK;
		msr_update(s);
		break;
	case UART_SCR:
		s->scr = data;
		break;
	default:
		/* LSR and MSR are read-only here (factory test on real chips). */
		break;
	}
}

static uint8_t read_reg(struct serial16550 *s, unsigned offset)
{
	bool dlab = s->lcr & LCR_DLAB;
	uint8_t v;

	switch (offset) {
	case UART_RBR:
		return dlab ? s->dll : rx_pop(s);
	case UART_IER:
		return dlab ? s->dlm : s->ier;
	case UART_IIR:
		v = iir_compute(s);
		/* Reading IIR acknowledges THRE only when it is reported. */
		if ((v & 0x0f) == IIR_THRI)
			s->thr_ipending = false;
		return v;
	case UART_LCR:
		return s->lcr;
	case UART_MCR:
		return s->mcr;
	case UART_LSR:
		v = s->lsr;
		s->lsr &= (uint8_t)~LSR_OE; /* errors clear on read */
		return v;
	case UART_MSR:
		v = s->msr;
		s->msr &= (uint8_t)~MSR_DELTAS;
		return v;
	default:
		return s->scr;
	}
}

/* ---- public API ---- */

void serial_init(struct serial16550 *s, const struct serial_config *cfg)
{
	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	snprintf(s->name, sizeof(s->name), "%s", cfg->name ? cfg->name : "");
	/* Do not keep the caller's string: it may not outlive the device. */
	s->cfg.name = s->name;
	pthread_mutex_init(&s->lock, NULL);
	/*
	 * Reset values of a 16550A.  MCR is 0 as on real hardware: firmware or
	 * the driver sets OUT2 when it wants interrupts delivered.
	 */
	s->iir = IIR_NO_INT;
	s->lsr = LSR_THRE | LSR_TEMT;
	s->msr = MSR_LINE;
}

void serial_destroy(struct serial16550 *s)
{
	pthread_mutex_lock(&s->lock);
	if (s->cfg.echo_stdout && s->line_len > 0)
		echo_flush(s);
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_destroy(&s->lock);
}

void serial_read(struct serial16550 *s, unsigned offset, uint8_t *data)
{
	if (offset >= SERIAL_NR_PORTS) {
		*data = 0xff;
		return;
	}
	pthread_mutex_lock(&s->lock);
	*data = read_reg(s, offset);
	rx_refill(s);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

void serial_write(struct serial16550 *s, unsigned offset, uint8_t data)
{
	if (offset >= SERIAL_NR_PORTS)
		return;
	pthread_mutex_lock(&s->lock);
	write_reg(s, offset, data);
	rx_refill(s);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

size_t serial_receive(struct serial16550 *s, const uint8_t *buf, size_t len)
{
	size_t i;

	pthread_mutex_lock(&s->lock);
	/*
	 * In loopback the receiver is disconnected from the line, so host
	 * input is dropped like on real hardware; nothing "fits".
	 */
	if (s->mcr & MCR_LOOP)
		len = 0;
	for (i = 0; i < len; i++)
		if (!rx_push(s, buf[i]))
			break;
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return i;
}

size_t serial_rx_room(struct serial16550 *s)
{
	size_t room;

	pthread_mutex_lock(&s->lock);
	room = (s->mcr & MCR_LOOP) ? 0 : SERIAL_RX_FIFO - s->rx_count;
	pthread_mutex_unlock(&s->lock);
	return room;
}

size_t serial_input(struct serial16550 *s, const uint8_t *buf, size_t len)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = SERIAL_INPUT_MAX - s->inq_count;
	if (n > len)
		n = len;
	for (size_t i = 0; i < n; i++)
		s->inq[(s->inq_head + s->inq_count++) % SERIAL_INPUT_MAX] = buf[i];
	if (n < len)
		s->inq_refused = true;
	rx_refill(s);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t serial_input_room(struct serial16550 *s)
{
	size_t room;

	pthread_mutex_lock(&s->lock);
	room = SERIAL_INPUT_MAX - s->inq_count;
	pthread_mutex_unlock(&s->lock);
	return room;
}

size_t serial_input_pending(struct serial16550 *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->inq_count + s->rx_count;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void serial_attach(struct serial16550 *s, const struct serial_host *host)
{
	pthread_mutex_lock(&s->lock);
	if (host)
		s->host = *host;
	else
		memset(&s->host, 0, sizeof(s->host));
	pthread_mutex_unlock(&s->lock);
}
