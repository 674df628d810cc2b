/*
 * cmd_console.c - ECHO: the payload's end of the serial console test
 * (docs/console.md).  It reads lines from its 16550 the way a polling
 * driver does (LSR.DR, then RBR, by port I/O, which IOPL=3 allows at
 * CPL3) and writes each back uppercased, so a test that typed a line sees
 * proof that the guest received it.
 */
#include "payload.h"

#define UART_RBR 0
#define UART_LSR 5
#define UART_LSR_DR 0x01    /* data ready */
#define UART_LSR_OE 0x02    /* overrun: a byte was lost */
#define ECHO_LINE_MAX 256   /* longer lines: the rest is counted, not kept */

/* One byte from the receiver, waiting for it; counts overruns seen. */
static uint8_t serial_getc(uint64_t *overruns)
{
	for (;;) {
		uint8_t lsr = inb(FV_SERIAL_PORT + UART_LSR);

		if (lsr & UART_LSR_OE)
			(*overruns)++;
		if (lsr & UART_LSR_DR)
			return inb(FV_SERIAL_PORT + UART_RBR);
		cpu_pause();
	}
}

/* Read arg[0] lines (ended by CR or LF; empty ones are skipped, so CRLF is
 * one end) and answer each with "ECHO: " and the line in upper case.
 * result[0] = lines, [1] = bytes read, [2] = overruns seen,
 * [3] = bytes dropped from lines longer than ECHO_LINE_MAX. */
void cmd_echo(struct vcpu *v)
{
	char line[ECHO_LINE_MAX + 1], out[ECHO_LINE_MAX + 16];
	uint64_t lines = 0, bytes = 0, overruns = 0, dropped = 0;
	struct strbuf sb;

	if (v->index != 0 || v->arg[0] == 0 || v->arg[0] > 1000) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}
	while (lines < v->arg[0]) {
		size_t len = 0;

		serial_puts("echo> ");
		for (;;) {
			uint8_t c = serial_getc(&overruns);

			bytes++;
			if (c == '\r' || c == '\n') {
				if (len)
					break;
				continue;
			}
			if (len < ECHO_LINE_MAX)
				line[len++] = (char)c;
			else
				dropped++;
		}
		line[len] = '\0';
		sb_init(&sb, out, sizeof(out));
		sb_puts(&sb, "\r\nECHO: ");
		for (size_t i = 0; i < len; i++)
			sb_putc(&sb, line[i] >= 'a' && line[i] <= 'z' ?
				(char)(line[i] - 'a' + 'A') : line[i]);
		sb_puts(&sb, "\r\n");
		serial_puts(out);
		lines++;
	}
	v->result[0] = lines;
	v->result[1] = bytes;
	v->result[2] = overruns;
	v->result[3] = dropped;
}
