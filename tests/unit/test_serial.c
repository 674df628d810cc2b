/*
 * test_serial.c - CUnit tests for the 16550A model (devices/serial.c).
 *
 * Every test drives the device only through its public API, the way a vCPU
 * thread (port I/O) and the host (serial_receive) would, and checks exact
 * register values, sink output and set_irq calls.
 */
#ifndef _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <CUnit/CUnit.h>
#include "devices/serial.h"

/* Register offsets, spelled out so the tests do not trust serial.c. */
enum { RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2,
       LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

/* ---- helpers ---- */

#define IRQ_HIST 64

struct irq_rec {
	int calls;
	int level;
	int hist[IRQ_HIST];
};

static void rec_irq(void *opaque, int level)
{
	struct irq_rec *r = opaque;

	if (r->calls < IRQ_HIST)
		r->hist[r->calls] = level;
	r->calls++;
	r->level = level;
}

static void dev_init(struct serial16550 *s, const char *name, int log_fd,
		     bool echo, struct irq_rec *rec)
{
	struct serial_config cfg = {
		.name = name,
		.log_fd = log_fd,
		.echo_stdout = echo,
		.set_irq = rec ? rec_irq : NULL,
		.irq_opaque = rec,
	};

	if (rec)
		memset(rec, 0, sizeof(*rec));
	serial_init(s, &cfg);
}

static uint8_t rd(struct serial16550 *s, unsigned off)
{
	uint8_t v = 0x5a; /* must be overwritten */

	serial_read(s, off, &v);
	return v;
}

static void wr_str(struct serial16550 *s, const char *str, size_t len)
{
	for (size_t i = 0; i < len; i++)
		serial_write(s, THR, (uint8_t)str[i]);
}

/* An anonymous (already unlinked) temporary file; returns its fd. */
static int tmp_open(void)
{
	char path[] = "/tmp/foldvm-test-serial-XXXXXX";
	int fd = mkstemp(path);

	if (fd >= 0)
		unlink(path);
	return fd;
}

/* Read the whole file behind fd into buf (NUL-terminated); returns length. */
static size_t tmp_slurp(int fd, char *buf, size_t size)
{
	ssize_t n = pread(fd, buf, size - 1, 0);

	if (n < 0)
		n = 0;
	buf[n] = '\0';
	return (size_t)n;
}

/* Redirect a standard stream (1 or 2) into a temporary file. */
struct capture {
	int target;
	int saved;
	int fd;
};

static void capture_begin(struct capture *c, int target)
{
	fflush(stdout);
	fflush(stderr);
	c->target = target;
	c->fd = tmp_open();
	c->saved = dup(target);
	CU_ASSERT_FATAL(c->fd >= 0 && c->saved >= 0);
	dup2(c->fd, target);
}

static size_t capture_end(struct capture *c, char *buf, size_t size)
{
	size_t n;

	fflush(stdout);
	fflush(stderr);
	dup2(c->saved, c->target);
	close(c->saved);
	n = tmp_slurp(c->fd, buf, size);
	close(c->fd);
	return n;
}

/* ---- register basics ---- */

static void test_reset_values(void)
{
	struct serial16550 s;
	struct irq_rec rec;

	dev_init(&s, "t", -1, false, &rec);
	CU_ASSERT_EQUAL(rd(&s, RBR), 0x00);
	CU_ASSERT_EQUAL(rd(&s, IER), 0x00);
	CU_ASSERT_EQUAL(rd(&s, IIR), 0x01);
	CU_ASSERT_EQUAL(rd(&s, LCR), 0x00);
	CU_ASSERT_EQUAL(rd(&s, MCR), 0x00);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x60);
	CU_ASSERT_EQUAL(rd(&s, MSR), 0xb0);
	CU_ASSERT_EQUAL(rd(&s, SCR), 0x00);
	/* Divisor latch starts at zero too. */
	serial_write(&s, LCR, 0x80);
	CU_ASSERT_EQUAL(rd(&s, DLL), 0x00);
	CU_ASSERT_EQUAL(rd(&s, DLM), 0x00);
	CU_ASSERT_EQUAL(s.irq_level, 0);
	CU_ASSERT_EQUAL(rec.calls, 0);
	CU_ASSERT_EQUAL(s.tx_bytes, 0);
	serial_destroy(&s);
}

static void test_out_of_range(void)
{
	struct serial16550 s;

	dev_init(&s, "t", -1, false, NULL);
	CU_ASSERT_EQUAL(rd(&s, 8), 0xff);
	CU_ASSERT_EQUAL(rd(&s, 0xffff), 0xff);
	serial_write(&s, 8, 0x12);
	serial_write(&s, 15, 0x34);
	CU_ASSERT_EQUAL(rd(&s, SCR), 0x00);
	CU_ASSERT_EQUAL(rd(&s, RBR), 0x00);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x60);
	CU_ASSERT_EQUAL(s.tx_bytes, 0);
	serial_destroy(&s);
}

static void test_dlab(void)
{
	struct serial16550 s;
	int fd = tmp_open();
	char buf[16];

	CU_ASSERT_FATAL(fd >= 0);
	dev_init(&s, "t", fd, false, NULL);
	serial_write(&s, LCR, 0x83);          /* DLAB + 8N1 */
	CU_ASSERT_EQUAL(rd(&s, LCR), 0x83);
	serial_write(&s, DLL, 0x0c);          /* 9600 baud */
	serial_write(&s, DLM, 0xa5);
	CU_ASSERT_EQUAL(rd(&s, DLL), 0x0c);
	CU_ASSERT_EQUAL(rd(&s, DLM), 0xa5);
	serial_write(&s, LCR, 0x03);
	/* Neither a byte nor an IER value came out of the latch writes. */
	CU_ASSERT_EQUAL(s.tx_bytes, 0);
	CU_ASSERT_EQUAL(tmp_slurp(fd, buf, sizeof(buf)), 0);
	CU_ASSERT_EQUAL(rd(&s, IER), 0x00);
	CU_ASSERT_EQUAL(rd(&s, LCR), 0x03);
	/* IER/THR accesses now do not touch the latch. */
	serial_write(&s, IER, 0x05);
	serial_write(&s, THR, 'k');
	CU_ASSERT_EQUAL(rd(&s, IER), 0x05);
	CU_ASSERT_EQUAL(s.tx_bytes, 1);
	serial_write(&s, LCR, 0x80);
	CU_ASSERT_EQUAL(rd(&s, DLL), 0x0c);
	CU_ASSERT_EQUAL(rd(&s, DLM), 0xa5);
	/* With DLAB set, reading offset 0 must not pop received data. */
	CU_ASSERT_EQUAL(serial_receive(&s, (const uint8_t *)"r", 1), 1);
	CU_ASSERT_EQUAL(rd(&s, DLL), 0x0c);
	serial_write(&s, LCR, 0x00);
	CU_ASSERT_EQUAL(rd(&s, RBR), 'r');
	serial_destroy(&s);
	close(fd);
}

static void test_scratch(void)
{
	struct serial16550 s;

	dev_init(&s, "t", -1, false, NULL);
	serial_write(&s, SCR, 0x5a);
	CU_ASSERT_EQUAL(rd(&s, SCR), 0x5a);
	serial_write(&s, SCR, 0xa5);
	CU_ASSERT_EQUAL(rd(&s, SCR), 0xa5);
	serial_write(&s, LCR, 0x80);          /* DLAB does not hide SCR */
	CU_ASSERT_EQUAL(rd(&s, SCR), 0xa5);
	serial_destroy(&s);
}

static void test_register_masks(void)
{
	struct serial16550 s;

	dev_init(&s, "t", -1, false, NULL);
	/* Linux's autoconfig checks that IER bits 3:0 stick, 7:4 do not. */
	serial_write(&s, IER, 0xff);
	CU_ASSERT_EQUAL(rd(&s, IER), 0x0f);
	serial_write(&s, IER, 0x00);
	CU_ASSERT_EQUAL(rd(&s, IER), 0x00);
	serial_write(&s, MCR, 0xe3);
	CU_ASSERT_EQUAL(rd(&s, MCR), 0x03);
	/* LSR and MSR ignore writes. */
	serial_write(&s, MCR, 0x00);
	serial_write(&s, LSR, 0x00);
	serial_write(&s, MSR, 0x00);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x60);
	CU_ASSERT_EQUAL(rd(&s, MSR) & 0xf0, 0xb0);
	serial_destroy(&s);
}

/* ---- transmit sink ---- */

static void test_tx_log_and_echo(void)
{
	struct serial16550 s;
	struct capture cap;
	char out[256], log[256];
	int fd = tmp_open();

	CU_ASSERT_FATAL(fd >= 0);
	capture_begin(&cap, 1);
	dev_init(&s, "vm1", fd, true, NULL);
	wr_str(&s, "hello\r\nworld\n", 13);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x60);   /* transmitter always ready */
	serial_destroy(&s);
	capture_end(&cap, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "[vm1] hello\n[vm1] world\n");
	CU_ASSERT_EQUAL(tmp_slurp(fd, log, sizeof(log)), 13);
	CU_ASSERT_STRING_EQUAL(log, "hello\r\nworld\n");
	CU_ASSERT_EQUAL(s.tx_bytes, 13);
	CU_ASSERT_EQUAL(s.write_errors, 0);
	close(fd);
}

static void test_log_without_echo(void)
{
	struct serial16550 s;
	struct capture cap;
	char out[64], log[64];
	int fd = tmp_open();

	CU_ASSERT_FATAL(fd >= 0);
	capture_begin(&cap, 1);
	dev_init(&s, "quiet", fd, false, NULL);
	wr_str(&s, "abc\ndef", 7);
	serial_destroy(&s);
	CU_ASSERT_EQUAL(capture_end(&cap, out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(tmp_slurp(fd, log, sizeof(log)), 7);
	CU_ASSERT_STRING_EQUAL(log, "abc\ndef");
	close(fd);
}

static void test_partial_line_on_destroy(void)
{
	struct serial16550 s;
	struct capture cap;
	char out[64];

	capture_begin(&cap, 1);
	dev_init(&s, "g", -1, true, NULL);
	wr_str(&s, "done\nabc", 8);
	fflush(stdout);
	CU_ASSERT_EQUAL(tmp_slurp(cap.fd, out, sizeof(out)), 9);
	CU_ASSERT_STRING_EQUAL(out, "[g] done\n");
	serial_destroy(&s);
	capture_end(&cap, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "[g] done\n[g] abc\n");
}

static void test_escape_nonprintable(void)
{
	static const char bytes[] = { 'a', 0x01, '\t', 0x7f, (char)0xff,
				      '\r', 'b', 0x1b, '\n' };
	struct serial16550 s;
	struct capture cap;
	char out[64], log[64];
	int fd = tmp_open();

	CU_ASSERT_FATAL(fd >= 0);
	capture_begin(&cap, 1);
	dev_init(&s, "n", fd, true, NULL);
	wr_str(&s, bytes, sizeof(bytes));
	serial_destroy(&s);
	capture_end(&cap, out, sizeof(out));
	CU_ASSERT_STRING_EQUAL(out, "[n] a\\x01\t\\x7f\\xffb\\x1b\n");
	CU_ASSERT_EQUAL(tmp_slurp(fd, log, sizeof(log)), sizeof(bytes));
	CU_ASSERT_EQUAL(memcmp(log, bytes, sizeof(bytes)), 0);
	close(fd);
}

static void test_long_line_split(void)
{
	static char line[1100], expect[1200];
	struct serial16550 s;
	struct capture cap;
	static char out[1300];
	size_t n;

	memset(line, 'x', sizeof(line));
	capture_begin(&cap, 1);
	dev_init(&s, "L", -1, true, NULL);
	wr_str(&s, line, sizeof(line));
	serial_write(&s, THR, '\n');
	serial_destroy(&s);
	n = capture_end(&cap, out, sizeof(out));
	/* A full buffer is printed as its own line; the rest follows. */
	snprintf(expect, sizeof(expect), "[L] %.*s\n[L] %.*s\n",
		 SERIAL_LINE_MAX, line, (int)(sizeof(line) - SERIAL_LINE_MAX),
		 line);
	CU_ASSERT_EQUAL(n, strlen(expect));
	CU_ASSERT_STRING_EQUAL(out, expect);
}

static void test_name_truncated(void)
{
	char name[200], expect[128];
	struct serial16550 s;
	struct capture cap;
	char out[256];

	memset(name, 'N', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	capture_begin(&cap, 1);
	dev_init(&s, name, -1, true, NULL);
	memset(name, '?', sizeof(name) - 1); /* the device kept a copy */
	CU_ASSERT_EQUAL(strlen(s.name), sizeof(s.name) - 1);
	wr_str(&s, "x\n", 2);
	serial_destroy(&s);
	capture_end(&cap, out, sizeof(out));
	/* "[" + 63 'N' + "] x\n" */
	expect[0] = '[';
	memset(expect + 1, 'N', sizeof(s.name) - 1);
	strcpy(expect + sizeof(s.name), "] x\n");
	CU_ASSERT_STRING_EQUAL(out, expect);
}

static void test_log_write_error(void)
{
	struct serial16550 s;
	struct capture cap;
	char err[512];
	int p[2];
	size_t n, lines = 0;

	CU_ASSERT_FATAL(pipe(p) == 0);
	capture_begin(&cap, 2);
	/* Writing to a pipe's read end fails with EBADF. */
	dev_init(&s, "bad", p[0], false, NULL);
	wr_str(&s, "abc", 3);
	serial_destroy(&s);
	n = capture_end(&cap, err, sizeof(err));
	for (size_t i = 0; i < n; i++)
		lines += err[i] == '\n';
	CU_ASSERT_EQUAL(s.write_errors, 3);
	CU_ASSERT_EQUAL(s.tx_bytes, 3);
	CU_ASSERT_EQUAL(lines, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "bad"));
	close(p[0]);
	close(p[1]);
}

/* ---- receive ---- */

static void test_rx_fifo(void)
{
	struct serial16550 s;

	dev_init(&s, "t", -1, false, NULL);
	CU_ASSERT_EQUAL(serial_rx_room(&s), 16);
	CU_ASSERT_EQUAL(serial_receive(&s, (const uint8_t *)"abc", 3), 3);
	CU_ASSERT_EQUAL(serial_rx_room(&s), 13);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x61);
	CU_ASSERT_EQUAL(rd(&s, RBR), 'a');
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x61);
	CU_ASSERT_EQUAL(rd(&s, RBR), 'b');
	CU_ASSERT_EQUAL(rd(&s, RBR), 'c');
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x60);
	CU_ASSERT_EQUAL(rd(&s, RBR), 0x00);   /* empty */
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x60);
	/* The ring wraps correctly. */
	for (int round = 0; round < 3; round++) {
		CU_ASSERT_EQUAL(serial_receive(&s,
				(const uint8_t *)"0123456789", 10), 10);
		for (int i = 0; i < 10; i++)
			CU_ASSERT_EQUAL(rd(&s, RBR), '0' + i);
	}
	CU_ASSERT_EQUAL(serial_receive(&s, NULL, 0), 0);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x60);
	serial_destroy(&s);
}

static void test_rx_overrun(void)
{
	const uint8_t *in = (const uint8_t *)"ABCDEFGHIJKLMNOPQRST";
	struct serial16550 s;

	dev_init(&s, "t", -1, false, NULL);
	CU_ASSERT_EQUAL(serial_receive(&s, in, 16), 16);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x61);   /* full but no overrun yet */
	CU_ASSERT_EQUAL(serial_rx_room(&s), 0);
	CU_ASSERT_EQUAL(serial_receive(&s, in + 16, 4), 0);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x63);   /* DR | OE */
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x61);   /* OE cleared by the read */
	for (int i = 0; i < 16; i++)
		CU_ASSERT_EQUAL(rd(&s, RBR), 'A' + i);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x60);
	/* A call that only partly fits also reports the overrun. */
	CU_ASSERT_EQUAL(serial_receive(&s, in, 20), 16);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x63);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x61);
	serial_destroy(&s);
}

/* ---- loopback and modem status ---- */

static void test_loopback(void)
{
	struct serial16550 s;
	char log[16];
	int fd = tmp_open();

	CU_ASSERT_FATAL(fd >= 0);
	dev_init(&s, "t", fd, false, NULL);
	/* Linux's autoconfig: LOOP | OUT2 | RTS must read back DCD | CTS. */
	serial_write(&s, MCR, 0x1a);
	CU_ASSERT_EQUAL(rd(&s, MSR) & 0xf0, 0x90);
	serial_write(&s, MCR, 0x15);          /* LOOP | OUT1 | DTR */
	CU_ASSERT_EQUAL(rd(&s, MSR) & 0xf0, 0x60);
	serial_write(&s, MCR, 0x1f);
	CU_ASSERT_EQUAL(rd(&s, MSR) & 0xf0, 0xf0);
	/* Transmitted bytes come back to the receiver, not to the sink. */
	serial_write(&s, THR, 'Z');
	serial_write(&s, THR, 'y');
	CU_ASSERT_EQUAL(tmp_slurp(fd, log, sizeof(log)), 0);
	CU_ASSERT_EQUAL(s.tx_bytes, 0);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x61);
	CU_ASSERT_EQUAL(rd(&s, RBR), 'Z');
	CU_ASSERT_EQUAL(rd(&s, RBR), 'y');
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x60);
	/* The line is disconnected: host input is refused, not overrun. */
	CU_ASSERT_EQUAL(serial_rx_room(&s), 0);
	CU_ASSERT_EQUAL(serial_receive(&s, (const uint8_t *)"h", 1), 0);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x60);
	/* Leaving loopback restores the line inputs and the sink. */
	serial_write(&s, MCR, 0x00);
	CU_ASSERT_EQUAL(rd(&s, MSR) & 0xf0, 0xb0);
	serial_write(&s, THR, 'o');
	CU_ASSERT_EQUAL(tmp_slurp(fd, log, sizeof(log)), 1);
	CU_ASSERT_EQUAL(log[0], 'o');
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x60);
	serial_destroy(&s);
	close(fd);
}

static void test_loopback_overrun(void)
{
	struct serial16550 s;

	dev_init(&s, "t", -1, false, NULL);
	serial_write(&s, MCR, 0x10);
	for (int i = 0; i < 17; i++)
		serial_write(&s, THR, (uint8_t)('a' + i));
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x63);
	CU_ASSERT_EQUAL(rd(&s, RBR), 'a');
	serial_destroy(&s);
}

static void test_msr_deltas(void)
{
	struct serial16550 s;

	dev_init(&s, "t", -1, false, NULL);
	CU_ASSERT_EQUAL(rd(&s, MSR), 0xb0);
	/* Entering loopback with no outputs drops CTS, DSR and DCD. */
	serial_write(&s, MCR, 0x10);
	CU_ASSERT_EQUAL(rd(&s, MSR), 0x0b);
	CU_ASSERT_EQUAL(rd(&s, MSR), 0x00);   /* deltas clear on read */
	serial_write(&s, MCR, 0x14);          /* RI rises: no TERI */
	CU_ASSERT_EQUAL(rd(&s, MSR), 0x40);
	serial_write(&s, MCR, 0x10);          /* RI falls: TERI */
	CU_ASSERT_EQUAL(rd(&s, MSR), 0x04);
	serial_write(&s, MCR, 0x12);          /* CTS rises */
	serial_write(&s, MCR, 0x13);          /* DSR rises; deltas accumulate */
	CU_ASSERT_EQUAL(rd(&s, MSR), 0x33);
	serial_destroy(&s);
}

/* ---- FIFO control ---- */

static void test_fifo_control(void)
{
	struct serial16550 s;

	dev_init(&s, "t", -1, false, NULL);
	serial_write(&s, FCR, 0x01);
	CU_ASSERT_EQUAL(rd(&s, IIR), 0xc1);
	serial_write(&s, FCR, 0xc7);          /* trigger 14, clear both */
	CU_ASSERT_EQUAL(rd(&s, IIR), 0xc1);
	/* FCR bit 1 clears the receive FIFO. */
	CU_ASSERT_EQUAL(serial_receive(&s, (const uint8_t *)"xyz", 3), 3);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x61);
	serial_write(&s, FCR, 0x03);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x60);
	CU_ASSERT_EQUAL(rd(&s, RBR), 0x00);
	/* Clearing TX alone keeps the received data. */
	CU_ASSERT_EQUAL(serial_receive(&s, (const uint8_t *)"q", 1), 1);
	serial_write(&s, FCR, 0x05);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x61);
	/* Leaving FIFO mode empties the FIFO and drops the IIR bits. */
	serial_write(&s, FCR, 0x00);
	CU_ASSERT_EQUAL(rd(&s, IIR), 0x01);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x60);
	/* FCR is reachable with DLAB set, as on a real chip. */
	serial_write(&s, LCR, 0x80);
	serial_write(&s, FCR, 0x01);
	CU_ASSERT_EQUAL(rd(&s, IIR), 0xc1);
	serial_destroy(&s);
}

/* ---- interrupts ---- */

static void test_thre_irq(void)
{
	struct serial16550 s;
	struct irq_rec rec;

	dev_init(&s, "t", -1, false, &rec);
	serial_write(&s, FCR, 0x01);
	serial_write(&s, MCR, 0x08);          /* OUT2: line reaches the PIC */
	CU_ASSERT_EQUAL(rec.calls, 0);
	serial_write(&s, IER, 0x02);          /* ETBEI 0 -> 1 */
	CU_ASSERT_EQUAL(rec.calls, 1);
	CU_ASSERT_EQUAL(rec.level, 1);
	CU_ASSERT_EQUAL(s.irq_level, 1);
	CU_ASSERT_EQUAL(rd(&s, IIR), 0xc2);
	CU_ASSERT_EQUAL(rec.calls, 2);        /* the read acknowledged it */
	CU_ASSERT_EQUAL(rec.level, 0);
	CU_ASSERT_EQUAL(rd(&s, IIR), 0xc1);
	/* Rewriting ETBEI=1 is not a 0 -> 1 edge: nothing new. */
	serial_write(&s, IER, 0x02);
	CU_ASSERT_EQUAL(rd(&s, IIR), 0xc1);
	CU_ASSERT_EQUAL(rec.calls, 2);
	/* A THR write leaves at once, so THR is empty again: THRE re-arms. */
	serial_write(&s, THR, 'a');
	CU_ASSERT_EQUAL(rec.calls, 3);
	CU_ASSERT_EQUAL(rec.level, 1);
	CU_ASSERT_EQUAL(rd(&s, IIR), 0xc2);
	CU_ASSERT_EQUAL(rec.level, 0);
	/* Disabling and re-enabling ETBEI raises it again (Linux probes this). */
	serial_write(&s, IER, 0x00);
	serial_write(&s, IER, 0x02);
	CU_ASSERT_EQUAL(rec.level, 1);
	/* Disabling ETBEI masks a pending THRE. */
	serial_write(&s, IER, 0x00);
	CU_ASSERT_EQUAL(rec.level, 0);
	CU_ASSERT_EQUAL(rd(&s, IIR), 0xc1);
	CU_ASSERT_EQUAL(rec.calls, 6);
	CU_ASSERT_EQUAL(rec.hist[0], 1);
	CU_ASSERT_EQUAL(rec.hist[1], 0);
	CU_ASSERT_EQUAL(rec.hist[2], 1);
	CU_ASSERT_EQUAL(rec.hist[3], 0);
	CU_ASSERT_EQUAL(rec.hist[4], 1);
	CU_ASSERT_EQUAL(rec.hist[5], 0);
	serial_destroy(&s);
}

static void test_thre_irq_no_fifo(void)
{
	struct serial16550 s;
	struct irq_rec rec;

	dev_init(&s, "t", -1, false, &rec);
	serial_write(&s, MCR, 0x0b);          /* what Linux writes: OUT2|RTS|DTR */
	serial_write(&s, IER, 0x02);
	CU_ASSERT_EQUAL(rec.level, 1);
	CU_ASSERT_EQUAL(rd(&s, IIR), 0x02);
	CU_ASSERT_EQUAL(rec.level, 0);
	CU_ASSERT_EQUAL(rd(&s, IIR), 0x01);
	serial_destroy(&s);
}

static void test_rx_irq_priority(void)
{
	struct serial16550 s;
	struct irq_rec rec;

	dev_init(&s, "t", -1, false, &rec);
	serial_write(&s, FCR, 0x01);
	serial_write(&s, MCR, 0x08);
	serial_write(&s, IER, 0x03);          /* ERBFI | ETBEI */
	CU_ASSERT_EQUAL(rec.level, 1);
	CU_ASSERT_EQUAL(serial_receive(&s, (const uint8_t *)"qr", 2), 2);
	/* Received data outranks THRE; reading IIR does not ack either. */
	CU_ASSERT_EQUAL(rd(&s, IIR), 0xc4);
	CU_ASSERT_EQUAL(rd(&s, IIR), 0xc4);
	CU_ASSERT_EQUAL(rec.level, 1);
	CU_ASSERT_EQUAL(rd(&s, RBR), 'q');
	CU_ASSERT_EQUAL(rd(&s, IIR), 0xc4);
	CU_ASSERT_EQUAL(rd(&s, RBR), 'r');
	/* With the FIFO drained the still-pending THRE shows through. */
	CU_ASSERT_EQUAL(rec.level, 1);
	CU_ASSERT_EQUAL(rd(&s, IIR), 0xc2);
	CU_ASSERT_EQUAL(rd(&s, IIR), 0xc1);
	CU_ASSERT_EQUAL(rec.level, 0);
	CU_ASSERT_EQUAL(rec.calls, 2);
	serial_destroy(&s);
}

static void test_rx_irq_only(void)
{
	struct serial16550 s;
	struct irq_rec rec;

	dev_init(&s, "t", -1, false, &rec);
	serial_write(&s, MCR, 0x08);
	serial_write(&s, IER, 0x01);
	CU_ASSERT_EQUAL(rec.calls, 0);
	CU_ASSERT_EQUAL(serial_receive(&s, (const uint8_t *)"k", 1), 1);
	CU_ASSERT_EQUAL(rec.calls, 1);
	CU_ASSERT_EQUAL(rec.level, 1);
	CU_ASSERT_EQUAL(rd(&s, IIR), 0x04);
	CU_ASSERT_EQUAL(rec.level, 1);
	CU_ASSERT_EQUAL(rd(&s, RBR), 'k');
	CU_ASSERT_EQUAL(rec.calls, 2);
	CU_ASSERT_EQUAL(rec.level, 0);
	/* THR writes with ETBEI off never raise the line. */
	serial_write(&s, THR, 'x');
	CU_ASSERT_EQUAL(rec.calls, 2);
	CU_ASSERT_EQUAL(rd(&s, IIR), 0x01);
	serial_destroy(&s);
}

static void test_line_status_irq(void)
{
	const uint8_t *in = (const uint8_t *)"0123456789abcdefg";
	struct serial16550 s;
	struct irq_rec rec;

	dev_init(&s, "t", -1, false, &rec);
	serial_write(&s, MCR, 0x08);
	serial_write(&s, IER, 0x05);          /* ELSI | ERBFI */
	CU_ASSERT_EQUAL(serial_receive(&s, in, 17), 16);
	CU_ASSERT_EQUAL(rd(&s, IIR), 0x06);   /* overrun outranks data */
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x63);
	CU_ASSERT_EQUAL(rd(&s, IIR), 0x04);
	CU_ASSERT_EQUAL(rec.level, 1);
	CU_ASSERT_EQUAL(rec.calls, 1);
	serial_destroy(&s);
}

static void test_modem_status_irq(void)
{
	struct serial16550 s;
	struct irq_rec rec;

	dev_init(&s, "t", -1, false, &rec);
	serial_write(&s, IER, 0x08);          /* EDSSI */
	CU_ASSERT_EQUAL(rd(&s, IIR), 0x01);
	serial_write(&s, MCR, 0x12);          /* loopback, CTS follows RTS */
	CU_ASSERT_EQUAL(rd(&s, IIR), 0x00);
	CU_ASSERT_EQUAL(rd(&s, MSR), 0x1a);   /* CTS kept, DSR/DCD fell */
	CU_ASSERT_EQUAL(rd(&s, IIR), 0x01);
	/* In loopback the OUT2 pin is forced inactive: the line stays low. */
	serial_write(&s, MCR, 0x1a);
	CU_ASSERT_EQUAL(rd(&s, IIR), 0x00);
	CU_ASSERT_EQUAL(rec.calls, 0);
	CU_ASSERT_EQUAL(s.irq_level, 0);
	serial_destroy(&s);
}

static void test_out2_gates_irq(void)
{
	struct serial16550 s;
	struct irq_rec rec;

	dev_init(&s, "t", -1, false, &rec);
	serial_write(&s, IER, 0x03);
	CU_ASSERT_EQUAL(serial_receive(&s, (const uint8_t *)"a", 1), 1);
	serial_write(&s, THR, 'b');
	/* The UART sees an interrupt, but without OUT2 it is not wired. */
	CU_ASSERT_EQUAL(rd(&s, IIR), 0x04);
	CU_ASSERT_EQUAL(rec.calls, 0);
	CU_ASSERT_EQUAL(s.irq_level, 0);
	serial_write(&s, MCR, 0x03);          /* DTR | RTS only */
	CU_ASSERT_EQUAL(rec.calls, 0);
	serial_write(&s, MCR, 0x0b);          /* OUT2 connects the line */
	CU_ASSERT_EQUAL(rec.calls, 1);
	CU_ASSERT_EQUAL(rec.level, 1);
	serial_write(&s, MCR, 0x03);
	CU_ASSERT_EQUAL(rec.calls, 2);
	CU_ASSERT_EQUAL(rec.level, 0);
	/* Loopback disconnects it even with OUT2 set. */
	serial_write(&s, MCR, 0x1b);
	CU_ASSERT_EQUAL(rec.calls, 2);
	CU_ASSERT_EQUAL(s.irq_level, 0);
	serial_destroy(&s);
}

static void test_irq_only_on_change(void)
{
	struct serial16550 s;
	struct irq_rec rec;

	dev_init(&s, "t", -1, false, &rec);
	serial_write(&s, MCR, 0x08);
	serial_write(&s, IER, 0x02);
	CU_ASSERT_EQUAL(rec.calls, 1);
	/* The line stays high across THR writes: no repeated calls. */
	for (int i = 0; i < 10; i++)
		serial_write(&s, THR, 'z');
	serial_write(&s, SCR, 1);
	(void)rd(&s, LSR);
	(void)rd(&s, MSR);
	CU_ASSERT_EQUAL(rec.calls, 1);
	(void)rd(&s, IIR);
	(void)rd(&s, IIR);
	(void)rd(&s, IIR);
	CU_ASSERT_EQUAL(rec.calls, 2);
	for (int i = 1; i < rec.calls && i < IRQ_HIST; i++)
		CU_ASSERT_NOT_EQUAL(rec.hist[i], rec.hist[i - 1]);
	serial_destroy(&s);
}

static void test_null_set_irq(void)
{
	struct serial16550 s;

	dev_init(&s, "t", -1, false, NULL);
	serial_write(&s, MCR, 0x08);
	serial_write(&s, IER, 0x0f);
	CU_ASSERT_EQUAL(s.irq_level, 1);
	CU_ASSERT_EQUAL(rd(&s, IIR), 0x02);
	CU_ASSERT_EQUAL(s.irq_level, 0);
	serial_destroy(&s);
}

/* The register dance of Linux's 8250 autoconfig and startup THRE tests. */
static void test_linux_8250_probe(void)
{
	struct serial16550 s;
	struct irq_rec rec;
	uint8_t iir1, iir2, lsr;

	dev_init(&s, "t", -1, false, &rec);
	/* autoconfig: IER readback */
	serial_write(&s, IER, 0x00);
	CU_ASSERT_EQUAL(rd(&s, IER) & 0x0f, 0x00);
	serial_write(&s, IER, 0x0f);
	CU_ASSERT_EQUAL(rd(&s, IER) & 0x0f, 0x0f);
	serial_write(&s, IER, 0x00);
	/* loopback test */
	serial_write(&s, MCR, 0x1a);
	CU_ASSERT_EQUAL(rd(&s, MSR) & 0xf0, 0x90);
	serial_write(&s, MCR, 0x00);
	/* FIFO type: IIR bits 7:6 == 3 means 16550A */
	serial_write(&s, LCR, 0xbf);
	serial_write(&s, FCR, 0x00);          /* EFR write on other chips */
	serial_write(&s, LCR, 0x00);
	serial_write(&s, FCR, 0x01);
	CU_ASSERT_EQUAL(rd(&s, IIR) >> 6, 3);
	/* 16650 EFR probe: EFR (offset 2) must not read 0 with LCR=0xbf */
	serial_write(&s, LCR, 0xbf);
	CU_ASSERT_NOT_EQUAL(rd(&s, IIR), 0);
	serial_write(&s, LCR, 0x00);
	/* 16750 probe: 64-byte bit must not stick */
	serial_write(&s, FCR, 0x21);
	CU_ASSERT_EQUAL(rd(&s, IIR) >> 5, 6);
	/* startup: OUT2 on, then the UART_BUG_THRE test */
	serial_write(&s, LCR, 0x03);
	serial_write(&s, MCR, 0x0b);
	serial_write(&s, IER, 0x02);
	iir1 = rd(&s, IIR);
	serial_write(&s, IER, 0x00);
	serial_write(&s, IER, 0x02);
	iir2 = rd(&s, IIR);
	serial_write(&s, IER, 0x00);
	CU_ASSERT_EQUAL(iir1 & 0x01, 0);
	CU_ASSERT_EQUAL(iir2 & 0x01, 0);
	/* UART_BUG_TXEN test: THRE must be visible right after enabling */
	serial_write(&s, IER, 0x02);
	lsr = rd(&s, LSR);
	iir1 = rd(&s, IIR);
	serial_write(&s, IER, 0x00);
	CU_ASSERT_EQUAL(lsr & 0x40, 0x40);
	CU_ASSERT_EQUAL(iir1 & 0x0f, 0x02);
	CU_ASSERT_EQUAL(s.irq_level, 0);
	serial_destroy(&s);
}

/* ---- concurrency ---- */

#define CONC_LINES 200
#define CONC_LEN 300

struct conc_arg {
	struct serial16550 *s;
	char c;
};

static void *conc_writer(void *p)
{
	struct conc_arg *a = p;
	char line[CONC_LEN + 1];

	memset(line, a->c, CONC_LEN);
	line[CONC_LEN] = '\n';
	for (int i = 0; i < CONC_LINES; i++)
		wr_str(a->s, line, sizeof(line));
	return NULL;
}

static void test_concurrent_echo(void)
{
	static char out[2 * CONC_LINES * (CONC_LEN + 8) + 64];
	struct serial16550 s[2];
	struct conc_arg args[2] = { { &s[0], 'a' }, { &s[1], 'b' } };
	pthread_t th[2];
	struct capture cap;
	size_t n, lines = 0;
	char *p, *nl;
	bool ok = true;

	capture_begin(&cap, 1);
	dev_init(&s[0], "A", -1, true, NULL);
	dev_init(&s[1], "B", -1, true, NULL);
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, conc_writer, &args[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	serial_destroy(&s[0]);
	serial_destroy(&s[1]);
	n = capture_end(&cap, out, sizeof(out));
	CU_ASSERT_EQUAL(n, 2 * CONC_LINES * (CONC_LEN + 5));
	/* Every line is whole: "[A] " + 300 'a' or "[B] " + 300 'b'. */
	for (p = out; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		char c = p[1] == 'A' ? 'a' : 'b';

		lines++;
		if (nl - p != CONC_LEN + 4 || p[0] != '[' ||
		    (p[1] != 'A' && p[1] != 'B') || p[2] != ']' || p[3] != ' ')
			ok = false;
		for (char *q = p + 4; ok && q < nl; q++)
			if (*q != c)
				ok = false;
	}
	CU_ASSERT_TRUE(ok);
	CU_ASSERT_EQUAL(lines, 2 * CONC_LINES);
}

static void *conc_rx(void *p)
{
	struct serial16550 *s = p;
	const uint8_t b = 'r';
	size_t sent = 0;

	while (sent < 10000)
		if (serial_rx_room(s) > 0)
			sent += serial_receive(s, &b, 1);
	return NULL;
}

/* Host input racing a polling guest: nothing is lost or duplicated. */
static void test_concurrent_rx(void)
{
	struct serial16550 s;
	pthread_t th;
	size_t got = 0;
	bool ok = true;

	dev_init(&s, "t", -1, false, NULL);
	pthread_create(&th, NULL, conc_rx, &s);
	while (got < 10000) {
		if (rd(&s, LSR) & 0x01) {
			if (rd(&s, RBR) != 'r')
				ok = false;
			got++;
		}
	}
	pthread_join(th, NULL);
	CU_ASSERT_TRUE(ok);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x60);   /* no overrun, nothing left */
	serial_destroy(&s);
}


/* ---- lossless host input (serial_input) ---- */

struct host_rec {
	int space_calls;
	uint8_t out[64];
	size_t out_len;
};

static void rec_output(void *opaque, uint8_t c)
{
	struct host_rec *h = opaque;

	if (h->out_len < sizeof(h->out))
		h->out[h->out_len++] = c;
}

static void rec_space(void *opaque)
{
	((struct host_rec *)opaque)->space_calls++;
}

static void host_attach(struct serial16550 *s, struct host_rec *h)
{
	struct serial_host host = {
		.output = rec_output, .rx_space = rec_space, .opaque = h,
	};

	memset(h, 0, sizeof(*h));
	serial_attach(s, &host);
}

/* More than the FIFO holds arrives in order, with no overrun, as the guest
 * reads; the interrupt stays up until the last byte is read. */
static void test_input_queue(void)
{
	uint8_t in[300];
	struct serial16550 s;
	struct irq_rec rec;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 + 1);
	dev_init(&s, "t", -1, false, &rec);
	serial_write(&s, IER, 0x01);
	serial_write(&s, MCR, 0x08);          /* OUT2: the line reaches the PIC */
	CU_ASSERT_EQUAL(serial_input(&s, in, sizeof(in)), sizeof(in));
	CU_ASSERT_EQUAL(serial_input_pending(&s), sizeof(in));
	CU_ASSERT_EQUAL(serial_input_room(&s), SERIAL_INPUT_MAX - (sizeof(in) - 16));
	CU_ASSERT_EQUAL(rec.level, 1);
	for (size_t i = 0; i < sizeof(in); i++) {
		CU_ASSERT_EQUAL(rd(&s, LSR), 0x61);   /* DR, never OE */
		CU_ASSERT_EQUAL(rd(&s, IIR) & 0x0f, 0x04);
		CU_ASSERT_EQUAL(rd(&s, RBR), in[i]);
		if (i + 1 < sizeof(in))
			CU_ASSERT_EQUAL(rec.level, 1);
	}
	CU_ASSERT_EQUAL(rec.level, 0);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x60);
	CU_ASSERT_EQUAL(serial_input_pending(&s), 0);
	CU_ASSERT_EQUAL(serial_input_room(&s), SERIAL_INPUT_MAX);
	serial_destroy(&s);
}

/* The queue is bounded: what does not fit is refused (the caller keeps
 * it), and rx_space says when the guest made room. */
static void test_input_bound(void)
{
	static uint8_t in[SERIAL_INPUT_MAX + 1000];
	struct serial16550 s;
	struct host_rec h;
	size_t got, total = 0;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i % 251);
	dev_init(&s, "t", -1, false, NULL);
	host_attach(&s, &h);
	got = serial_input(&s, in, sizeof(in));
	CU_ASSERT_EQUAL(got, SERIAL_INPUT_MAX);
	/* 16 of them went on into the FIFO at once: room again. */
	CU_ASSERT_EQUAL(h.space_calls, 1);
	total += got;
	got = serial_input(&s, in + total, sizeof(in) - total);
	CU_ASSERT_EQUAL(got, 16);
	total += got;
	CU_ASSERT_EQUAL(serial_input_room(&s), 0);
	CU_ASSERT_EQUAL(serial_input(&s, in + total, 1), 0);
	CU_ASSERT_EQUAL(h.space_calls, 1);
	/* The guest reads one byte: one byte of room, and the host is told. */
	CU_ASSERT_EQUAL(rd(&s, RBR), in[0]);
	CU_ASSERT_EQUAL(h.space_calls, 2);
	CU_ASSERT_EQUAL(serial_input_room(&s), 1);
	/* Told once per refusal, not once per byte read. */
	CU_ASSERT_EQUAL(rd(&s, RBR), in[1]);
	CU_ASSERT_EQUAL(h.space_calls, 2);
	for (size_t i = 2; i < total; i++)
		if (rd(&s, RBR) != in[i]) {
			CU_FAIL("byte out of order");
			break;
		}
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x60);   /* no overrun, nothing left */
	/* Output reaches the host too, and detaching stops it. */
	wr_str(&s, "ok", 2);
	CU_ASSERT_EQUAL(h.out_len, 2);
	CU_ASSERT_EQUAL(memcmp(h.out, "ok", 2), 0);
	serial_attach(&s, NULL);
	wr_str(&s, "x", 1);
	CU_ASSERT_EQUAL(h.out_len, 2);
	serial_destroy(&s);
}

/* In loopback the receiver is off the line: input waits in the queue and
 * arrives when the guest leaves loopback (Linux's probe uses it). */
static void test_input_loopback(void)
{
	struct serial16550 s;

	dev_init(&s, "t", -1, false, NULL);
	serial_write(&s, MCR, 0x10);
	CU_ASSERT_EQUAL(serial_input(&s, (const uint8_t *)"hi", 2), 2);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x60);
	serial_write(&s, THR, 'L');
	CU_ASSERT_EQUAL(rd(&s, RBR), 'L');
	serial_write(&s, MCR, 0x00);
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x61);
	CU_ASSERT_EQUAL(rd(&s, RBR), 'h');
	CU_ASSERT_EQUAL(rd(&s, RBR), 'i');
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x60);
	/* Clearing the FIFO drops what it held; the queue refills it (bytes
	 * still on the line). */
	serial_write(&s, FCR, 0x01);
	CU_ASSERT_EQUAL(serial_input(&s, (const uint8_t *)"0123456789abcdefXY", 18), 18);
	serial_write(&s, FCR, 0x03);
	CU_ASSERT_EQUAL(rd(&s, RBR), 'X');
	CU_ASSERT_EQUAL(rd(&s, RBR), 'Y');
	CU_ASSERT_EQUAL(rd(&s, LSR), 0x60);
	serial_destroy(&s);
}

/* What Linux's 8250 driver does with a burst (FIFO on, IER.RDI, OUT2): its
 * handler reads while LSR.DR is set, at most 256 bytes a call, and calls
 * again while IIR shows an interrupt.  Every byte arrives, in order, the
 * line falls at the end, and the PIC saw one rising edge. */
static void test_input_linux_driver(void)
{
	uint8_t in[1000], got[1000];
	struct serial16550 s;
	struct irq_rec rec;
	size_t n = 0;
	int rises = 0;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)('a' + i % 26);
	dev_init(&s, "t", -1, false, &rec);
	serial_write(&s, FCR, 0xc7);
	serial_write(&s, LCR, 0x03);
	serial_write(&s, MCR, 0x0b);
	serial_write(&s, IER, 0x05);
	CU_ASSERT_EQUAL(serial_input(&s, in, sizeof(in)), sizeof(in));
	for (int i = 0; i < rec.calls && i < IRQ_HIST; i++)
		rises += rec.hist[i] == 1;
	CU_ASSERT_EQUAL(rises, 1);
	while (!(rd(&s, IIR) & 0x01)) {
		int budget = 256;

		while (budget-- > 0 && (rd(&s, LSR) & 0x01) && n < sizeof(got))
			got[n++] = rd(&s, RBR);
	}
	CU_ASSERT_EQUAL(n, sizeof(in));
	CU_ASSERT_EQUAL(memcmp(got, in, sizeof(in)), 0);
	CU_ASSERT_EQUAL(rec.level, 0);
	CU_ASSERT_EQUAL(rd(&s, LSR) & 0x03, 0);
	serial_destroy(&s);
}

void unit_add_serial_suite(void);

void unit_add_serial_suite(void)
{
	static const struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
		{ "reset values", test_reset_values },
		{ "offsets >= 8 ignored", test_out_of_range },
		{ "DLAB divisor latch", test_dlab },
		{ "scratch register", test_scratch },
		{ "IER/MCR masks, read-only LSR/MSR", test_register_masks },
		{ "THR to log and echo", test_tx_log_and_echo },
		{ "log without echo", test_log_without_echo },
		{ "partial line flushed on destroy", test_partial_line_on_destroy },
		{ "non-printables escaped in echo, raw in log",
		  test_escape_nonprintable },
		{ "long line split at buffer size", test_long_line_split },
		{ "name copied and truncated", test_name_truncated },
		{ "log write error reported once", test_log_write_error },
		{ "receive FIFO and LSR.DR", test_rx_fifo },
		{ "overrun sets OE, LSR read clears", test_rx_overrun },
		{ "loopback", test_loopback },
		{ "loopback overrun", test_loopback_overrun },
		{ "MSR delta bits", test_msr_deltas },
		{ "FIFO control and IIR FIFO bits", test_fifo_control },
		{ "THRE interrupt", test_thre_irq },
		{ "THRE interrupt without FIFO", test_thre_irq_no_fifo },
		{ "RX interrupt outranks THRE", test_rx_irq_priority },
		{ "RX interrupt alone", test_rx_irq_only },
		{ "line status interrupt", test_line_status_irq },
		{ "modem status interrupt", test_modem_status_irq },
		{ "OUT2 gates the line", test_out2_gates_irq },
		{ "set_irq only on change", test_irq_only_on_change },
		{ "NULL set_irq", test_null_set_irq },
		{ "Linux 8250 probe sequence", test_linux_8250_probe },
		{ "concurrent echo lines whole", test_concurrent_echo },
		{ "concurrent receive", test_concurrent_rx },
		{ "input queue behind the FIFO", test_input_queue },
		{ "input bounded, rx_space, host output", test_input_bound },
		{ "input waits out loopback and FIFO clear", test_input_loopback },
		{ "input read as Linux's 8250 does", test_input_linux_driver },
	};
	CU_pSuite suite = CU_add_suite("serial", NULL, NULL);

	if (!suite)
		return;
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		if (!CU_add_test(suite, tests[i].name, tests[i].fn))
			return;
}
