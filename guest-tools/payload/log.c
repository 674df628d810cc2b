/*
 * log.c - the payload's output: a small string builder for log lines,
 * polled serial output, and the mailbox LOG and ABORT requests.
 */
#include "payload.h"

/* ------------------------------------------------------------------------
 * Small string builder for log lines (no printf in a freestanding world).
 */

void sb_init(struct strbuf *sb, char *buf, size_t cap)
{
	sb->buf = buf;
	sb->cap = cap;
	sb->len = 0;
	buf[0] = '\0';
}

void sb_putc(struct strbuf *sb, char c)
{
	if (sb->len + 1 < sb->cap) {
		sb->buf[sb->len++] = c;
		sb->buf[sb->len] = '\0';
	}
}

void sb_puts(struct strbuf *sb, const char *s)
{
	while (*s)
		sb_putc(sb, *s++);
}

void sb_putu(struct strbuf *sb, uint64_t v)
{
	char tmp[20];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		sb_putc(sb, tmp[--n]);
}

void sb_putx(struct strbuf *sb, uint64_t v)
{
	static const char hex[] = "0123456789abcdef";
	int shift = 60;

	sb_puts(sb, "0x");
	while (shift > 0 && ((v >> shift) & 0xf) == 0)
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		sb_putc(sb, hex[(v >> shift) & 0xf]);
}

/* ------------------------------------------------------------------------
 * Serial output (16550 at FV_SERIAL_PORT, polled, no interrupts).
 */

#define UART_THR 0          /* transmit holding register */
#define UART_LSR 5          /* line status register */
#define UART_LSR_THRE 0x20  /* transmit holding register empty */
#define UART_POLL_MAX 1000  /* LSR reads before giving up on THRE */

void serial_puts(const char *s)
{
	/* Each LSR read is a port exit; if THRE never shows up (a UART that
	 * does not model LSR) stop polling rather than stall on every byte. */
	int poll = 1;

	for (; *s; s++) {
		if (poll) {
			int i = 0;

			while (!(inb(FV_SERIAL_PORT + UART_LSR) & UART_LSR_THRE)) {
				if (++i >= UART_POLL_MAX) {
					poll = 0;
					break;
				}
				cpu_pause();
			}
		}
		outb(FV_SERIAL_PORT + UART_THR, (uint8_t)*s);
	}
}

/* ------------------------------------------------------------------------
 * Mailbox requests: LOG and ABORT.
 */

/*
 * The vCPU we run on, derived from the stack pointer: the host gives vCPU i
 * the stack [FV_STACK_BASE + i*FV_STACK_SIZE, FV_STACK_TOP(i)).  This lets
 * GUEST_ASSERT and fv_log work anywhere without threading an index through.
 * Returns FV_MAX_VCPUS or more if the stack is not where the ABI says.
 */
uint64_t this_vcpu(void)
{
	uintptr_t sp;

	__asm__ volatile("mov %%rsp, %0" : "=r"(sp));
	if (sp < FV_STACK_BASE)
		return FV_MAX_VCPUS;
	return (sp - FV_STACK_BASE) / FV_STACK_SIZE;
}

static void mailbox_set_text(volatile struct fv_mailbox *mb, const char *s)
{
	size_t i = 0;

	for (; s[i] && i < sizeof(mb->text) - 1; i++)
		mb->text[i] = s[i];
	mb->text[i] = '\0';
}

/* FV_REQ_LOG: a NUL-terminated message the host prints/records. */
void fv_log(const char *msg)
{
	uint64_t vcpu = this_vcpu();

	if (vcpu >= FV_MAX_VCPUS)
		return;
	mailbox_set_text(mailbox_of(vcpu), msg);
	outl(FV_DOORBELL_PORT, FV_REQ_LOG);
}

/* FV_REQ_ABORT with msg ("file:line: message"), then never run again. */
_Noreturn void guest_abort(const char *msg)
{
	uint64_t vcpu = this_vcpu();

	if (vcpu < FV_MAX_VCPUS) {
		mailbox_set_text(mailbox_of(vcpu), msg);
		outl(FV_DOORBELL_PORT, FV_REQ_ABORT);
	}
	/* The host should not resume us; if it does, leave for good. */
	fv_exit_forever();
}
