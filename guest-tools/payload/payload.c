/*
 * payload.c - the foldvm test payload: a freestanding CPL3 program that runs
 * on every vCPU of a guest and executes commands the host hands it through
 * the testdev mailbox (see testdev_abi.h for the protocol).
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
#include <stddef.h>
#include <stdint.h>

#include "testdev_abi.h"
#include "content.h"

/* start.S hard-codes these (it cannot include testdev_abi.h). */
_Static_assert(FV_EXIT_PORT == 0x0514u, "start.S exit port");
_Static_assert(FV_EXIT_MAGIC == 0x0e1du, "start.S exit magic");
_Static_assert(FV_PAGE_WORDS * sizeof(uint64_t) == FV_PAGE_SIZE, "page words");

/* Defined in start.S: write FV_EXIT_MAGIC to FV_EXIT_PORT forever. */
_Noreturn void fv_exit_forever(void);

void payload_main(uint64_t vcpu, const struct fv_guest_config *cfg);

/* The compiler may emit calls to these even with -fno-builtin. */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);

/* ------------------------------------------------------------------------
 * Minimal libc replacements.  String instructions rather than C loops, so
 * the compiler cannot "optimise" a loop back into a call to itself.
 */

void *memset(void *dst, int c, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return dst;
}

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;

	if (n == 0 || d == s)
		return dst;
	if (d < s || d - s >= n)
		return memcpy(dst, src, n);     /* forward copy is safe */
	/* Overlap with dst above src: copy backwards (DF=1), then restore DF. */
	d += n - 1;
	s += n - 1;
	__asm__ volatile("std\n\trep movsb\n\tcld"
			 : "+D"(d), "+S"(s), "+c"(n) : : "memory", "cc");
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (size_t i = 0; i < n; i++) {
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	}
	return 0;
}

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
static void tsc_wait(uint64_t cycles)
{
	uint64_t t0;

	if (cycles == 0)
		return;
	t0 = rdtsc();
	while (rdtsc() - t0 < cycles)
		cpu_pause();
}

/* ------------------------------------------------------------------------
 * Small string builder for log lines (no printf in a freestanding world).
 */

struct strbuf {
	char *buf;
	size_t cap;   /* including the terminating NUL */
	size_t len;
};

static void sb_init(struct strbuf *sb, char *buf, size_t cap)
{
	sb->buf = buf;
	sb->cap = cap;
	sb->len = 0;
	buf[0] = '\0';
}

static void sb_putc(struct strbuf *sb, char c)
{
	if (sb->len + 1 < sb->cap) {
		sb->buf[sb->len++] = c;
		sb->buf[sb->len] = '\0';
	}
}

static void sb_puts(struct strbuf *sb, const char *s)
{
	while (*s)
		sb_putc(sb, *s++);
}

static void sb_putu(struct strbuf *sb, uint64_t v)
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

static void sb_putx(struct strbuf *sb, uint64_t v)
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

static void serial_puts(const char *s)
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

static volatile struct fv_mailbox *mailbox_of(uint64_t vcpu)
{
	return (volatile struct fv_mailbox *)(uintptr_t)FV_MAILBOX_GPA(vcpu);
}

/*
 * The vCPU we run on, derived from the stack pointer: the host gives vCPU i
 * the stack [FV_STACK_BASE + i*FV_STACK_SIZE, FV_STACK_TOP(i)).  This lets
 * GUEST_ASSERT and fv_log work anywhere without threading an index through.
 * Returns FV_MAX_VCPUS or more if the stack is not where the ABI says.
 */
static uint64_t this_vcpu(void)
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
static void fv_log(const char *msg)
{
	uint64_t vcpu = this_vcpu();

	if (vcpu >= FV_MAX_VCPUS)
		return;
	mailbox_set_text(mailbox_of(vcpu), msg);
	outl(FV_DOORBELL_PORT, FV_REQ_LOG);
}

/* FV_REQ_ABORT with msg ("file:line: message"), then never run again. */
static _Noreturn void guest_abort(const char *msg)
{
	uint64_t vcpu = this_vcpu();

	if (vcpu < FV_MAX_VCPUS) {
		mailbox_set_text(mailbox_of(vcpu), msg);
		outl(FV_DOORBELL_PORT, FV_REQ_ABORT);
	}
	/* The host should not resume us; if it does, leave for good. */
	fv_exit_forever();
}

#define FV_STR2(x) #x
#define FV_STR(x) FV_STR2(x)
#define FV_WHERE __FILE__ ":" FV_STR(__LINE__) ": "

/* Abort the guest with "file:line: msg" unless cond holds (msg: a literal). */
#define GUEST_ASSERT(cond, msg)                                         \
	do {                                                            \
		if (!(cond))                                            \
			guest_abort(FV_WHERE msg);                      \
	} while (0)

/* ------------------------------------------------------------------------
 * State.
 */

/* Per-vCPU view of the current command. */
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
 * Owned by vCPU 0 (FILL, VERIFY, CHURN and RACE_SETTLE only run there):
 * whether FILL ran (so the checksum table is valid and the blob must be
 * zero), and the total every word w of every race page must hold.
 */
static int data_filled;
static uint64_t race_expected[FV_PAGE_WORDS];

/*
 * MEASURE_WRITE sample buffers, one per vCPU because any vCPU may measure
 * concurrently.  The image must fit in 1 MiB, so vCPU 0 gets a big buffer
 * and the others a small one; the count actually measured is reported in
 * result[5].  Samples are cycles, saturated at UINT32_MAX.
 */
#define MEASURE_MAX_VCPU0 65536u
#define MEASURE_MAX_OTHER 2048u
static uint32_t measure_buf0[MEASURE_MAX_VCPU0];
static uint32_t measure_buf[FV_MAX_VCPUS - 1][MEASURE_MAX_OTHER];

static uint64_t *gpa_ptr(uint64_t gpa)
{
	return (uint64_t *)(uintptr_t)gpa;
}

static uint64_t *data_page(const struct fv_guest_config *cfg, uint64_t pos)
{
	return gpa_ptr(cfg->data_gpa + pos * FV_PAGE_SIZE);
}

/* The checksum table: one uint64_t per data page at the start of meta. */
static uint64_t *csum_table(const struct fv_guest_config *cfg)
{
	return gpa_ptr(cfg->meta_gpa);
}

/* Permutation scratch right after the checksum table (FILL only). */
static uint32_t *perm_scratch(const struct fv_guest_config *cfg)
{
	return (uint32_t *)(csum_table(cfg) + cfg->data_pages);
}

static uint64_t zero_page_checksum(void)
{
	uint64_t zero[FV_PAGE_WORDS];

	memset(zero, 0, sizeof(zero));
	return fv_checksum_page(zero);
}

static int page_is_zero(const uint64_t *page)
{
	for (uint32_t w = 0; w < FV_PAGE_WORDS; w++) {
		if (page[w])
			return 0;
	}
	return 1;
}

/* ------------------------------------------------------------------------
 * Config validation: catch a bad host config with a readable abort rather
 * than a triple fault or a stray MMIO exit.
 */

struct region {
	const char *name;
	uint64_t gpa;
	uint64_t bytes;
};

static _Noreturn void config_abort(const char *what, const char *name)
{
	char buf[256];
	struct strbuf sb;

	sb_init(&sb, buf, sizeof(buf));
	sb_puts(&sb, FV_WHERE "bad config: ");
	sb_puts(&sb, name);
	sb_puts(&sb, " region ");
	sb_puts(&sb, what);
	guest_abort(buf);
}

static void check_config(uint64_t vcpu, const struct fv_guest_config *cfg)
{
	struct region r[6] = {
		{ "meta", cfg->meta_gpa, cfg->meta_size },
		{ "data", cfg->data_gpa, cfg->data_pages * FV_PAGE_SIZE },
		{ "race", cfg->race_gpa, cfg->race_pages * FV_PAGE_SIZE },
		{ "probe", cfg->probe_gpa, cfg->probe_pages * FV_PAGE_SIZE },
		{ "blob", cfg->blob_gpa, cfg->blob_pages * FV_PAGE_SIZE },
		{ "blob-starts", cfg->blob_starts_gpa, cfg->blob_starts_gpa ?
		  fv_blob_starts_pages(cfg->blob_pages) * FV_PAGE_SIZE : 0 },
	};

	GUEST_ASSERT(cfg->magic == FV_CONFIG_MAGIC, "bad config magic");
	GUEST_ASSERT(cfg->abi_version == FV_ABI_VERSION, "bad ABI version");
	GUEST_ASSERT(cfg->nr_vcpus >= 1 && cfg->nr_vcpus <= FV_MAX_VCPUS,
		     "bad nr_vcpus");
	GUEST_ASSERT(vcpu < cfg->nr_vcpus, "vCPU index >= nr_vcpus");
	GUEST_ASSERT(this_vcpu() == vcpu, "RSP is not in this vCPU's stack");
	/* page counts that would overflow the byte sizes above */
	GUEST_ASSERT(cfg->data_pages <= UINT32_MAX, "too many data pages");
	GUEST_ASSERT((cfg->race_pages | cfg->probe_pages | cfg->blob_pages) <=
		     UINT32_MAX, "region too large");
	GUEST_ASSERT(cfg->content.layout <= FV_LAYOUT_CLONES, "unknown layout");
	GUEST_ASSERT(cfg->data_pages == 0 ||
		     cfg->meta_size >= fv_meta_size(cfg->data_pages),
		     "meta region smaller than fv_meta_size(data_pages)");

	for (int i = 0; i < 6; i++) {
		if (r[i].bytes == 0)
			continue;
		if (r[i].gpa & (FV_PAGE_SIZE - 1))
			config_abort("not page aligned", r[i].name);
		if (r[i].gpa < FV_META_GPA)
			config_abort("below FV_META_GPA", r[i].name);
		if (r[i].gpa > cfg->mem_size ||
		    r[i].bytes > cfg->mem_size - r[i].gpa)
			config_abort("beyond guest RAM", r[i].name);
		for (int j = 0; j < i; j++) {
			if (r[j].bytes && r[i].gpa < r[j].gpa + r[j].bytes &&
			    r[j].gpa < r[i].gpa + r[i].bytes)
				config_abort("overlaps another region", r[i].name);
		}
	}
}

/* ------------------------------------------------------------------------
 * Commands.  Each sets v->status (preset to OK) and v->result[].
 */

/* What FILL's placement callback needs. */
struct fill_ctx {
	const struct fv_guest_config *cfg;
	const uint64_t *blob;
	uint64_t *csum;
	uint64_t zero_csum;
};

static void fill_one(void *opaque, uint64_t pos, enum fv_page_kind kind,
		     uint64_t sel)
{
	struct fill_ctx *f = opaque;
	const struct fv_content_spec *spec = &f->cfg->content;
	uint64_t *page = data_page(f->cfg, pos);

	switch (kind) {
	case FV_KIND_ZERO:
		/* Leave it untouched, not even read: the host gave us zeroed
		 * RAM and a never-touched page is exactly what a zero page in
		 * a real guest looks like to the host. */
		f->csum[pos] = f->zero_csum;
		return;
	case FV_KIND_SHARED:
		fv_fill_page(page, spec->shared_seed, sel);
		break;
	case FV_KIND_BLOB:
		memcpy(page, f->blob + sel * FV_PAGE_WORDS, FV_PAGE_SIZE);
		break;
	case FV_KIND_UNIQUE:
		fv_fill_page(page, spec->unique_seed, pos);
		break;
	}
	f->csum[pos] = fv_checksum_page(page);
}

/*
 * FILL: lay out the data region as the content spec says.  fv_place_pages
 * decides, by the spec's layout, which position gets which content: zero,
 * shared (pool selector), blob (blob page selector) or unique (its own
 * position).
 *
 * result[0] = pages filled (data_pages), result[1] = 1 if the blob did not
 * match cfg->blob_checksum (status MISMATCH; filling goes on regardless),
 * result[2..5] = zero/shared/blob/unique page counts.
 *
 * Only once: afterwards the blob is gone (zeroed), so a second FILL could
 * not reproduce the same content; it answers FV_STATUS_BAD_ARGS.
 */
static void cmd_fill(struct vcpu *v)
{
	const struct fv_guest_config *cfg = v->cfg;
	const struct fv_content_spec *spec = &cfg->content;
	uint64_t n = cfg->data_pages;
	uint32_t *perm = perm_scratch(cfg);
	struct fill_ctx f = { cfg, gpa_ptr(cfg->blob_gpa), csum_table(cfg), 0 };
	const uint8_t *starts = cfg->blob_starts_gpa ?
				(const uint8_t *)gpa_ptr(cfg->blob_starts_gpa) : 0;
	struct fv_layout_counts c;
	int blob_bad;

	if (v->index != 0) {
		v->status = FV_STATUS_BAD_COMMAND;
		return;
	}
	if (data_filled) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}

	fv_layout_counts(spec, n, cfg->blob_pages, &c);
	f.zero_csum = zero_page_checksum();

	/* Check the blob before copying from it (it is zeroed afterwards). */
	blob_bad = fv_checksum_pages(f.blob, cfg->blob_pages) != cfg->blob_checksum;
	if (blob_bad) {
		v->status = FV_STATUS_MISMATCH;
		fv_log(FV_WHERE "blob checksum mismatch, filling anyway");
	}

	fv_place_pages(spec, &c, n, starts, perm, fill_one, &f);

	/* The blob plays an initramfs a kernel frees after unpacking, and the
	 * permutation was scratch: all become zero pages. */
	memset((void *)(uintptr_t)cfg->blob_gpa, 0, cfg->blob_pages * FV_PAGE_SIZE);
	if (cfg->blob_starts_gpa)
		memset((void *)(uintptr_t)cfg->blob_starts_gpa, 0,
		       fv_blob_starts_pages(cfg->blob_pages) * FV_PAGE_SIZE);
	memset(perm, 0, n * sizeof(*perm));
	data_filled = 1;

	v->result[0] = n;
	v->result[1] = (uint64_t)blob_bad;
	v->result[2] = c.zero;
	v->result[3] = c.shared;
	v->result[4] = c.blob;
	v->result[5] = c.unique;
}

struct verify_tally {
	uint64_t checked;
	uint64_t bad;
	uint64_t first_bad;
};

static void tally(struct verify_tally *t, uint64_t gpa, int ok)
{
	t->checked++;
	if (!ok) {
		if (t->bad++ == 0)
			t->first_bad = gpa;
	}
}

/*
 * VERIFY: every data page against its recorded checksum (before FILL: must
 * still be all zero), every race page against the totals RACE_SETTLE
 * accumulated, and (after FILL) every blob page and file-start bitmap page
 * (mix layout) must be zero.  Checked in
 * that order; result[2] is the first bad page in that order.
 *
 * result[0] = pages checked (data + race + blob if filled), result[1] = bad
 * pages, result[2] = gpa of the first bad page or ~0; result[3..5] = bad
 * data / race / blob pages.
 */
static void cmd_verify(struct vcpu *v)
{
	const struct fv_guest_config *cfg = v->cfg;
	const uint64_t *csum = csum_table(cfg);
	uint64_t zero_csum = zero_page_checksum();
	struct verify_tally t = { 0, 0, ~0ull };
	uint64_t bad_data, bad_race;

	if (v->index != 0) {
		v->status = FV_STATUS_BAD_COMMAND;
		return;
	}

	for (uint64_t pos = 0; pos < cfg->data_pages; pos++) {
		uint64_t want = data_filled ? csum[pos] : zero_csum;

		tally(&t, cfg->data_gpa + pos * FV_PAGE_SIZE,
		      fv_checksum_page(data_page(cfg, pos)) == want);
	}
	bad_data = t.bad;

	for (uint64_t p = 0; p < cfg->race_pages; p++) {
		uint64_t gpa = cfg->race_gpa + p * FV_PAGE_SIZE;
		uint64_t *page = gpa_ptr(gpa);
		int ok = 1;

		for (uint32_t w = 0; w < FV_PAGE_WORDS; w++) {
			if (__atomic_load_n(&page[w], __ATOMIC_RELAXED) !=
			    race_expected[w])
				ok = 0;
		}
		tally(&t, gpa, ok);
	}
	bad_race = t.bad - bad_data;

	if (data_filled) {
		for (uint64_t p = 0; p < cfg->blob_pages; p++) {
			uint64_t gpa = cfg->blob_gpa + p * FV_PAGE_SIZE;

			tally(&t, gpa, page_is_zero(gpa_ptr(gpa)));
		}
		for (uint64_t p = 0; cfg->blob_starts_gpa &&
		     p < fv_blob_starts_pages(cfg->blob_pages); p++) {
			uint64_t gpa = cfg->blob_starts_gpa + p * FV_PAGE_SIZE;

			tally(&t, gpa, page_is_zero(gpa_ptr(gpa)));
		}
	}

	v->result[0] = t.checked;
	v->result[1] = t.bad;
	v->result[2] = t.first_bad;
	v->result[3] = bad_data;
	v->result[4] = bad_race;
	v->result[5] = t.bad - bad_data - bad_race;
	if (t.bad) {
		char buf[160];
		struct strbuf sb;

		v->status = FV_STATUS_MISMATCH;
		sb_init(&sb, buf, sizeof(buf));
		sb_puts(&sb, "verify: ");
		sb_putu(&sb, t.bad);
		sb_puts(&sb, " of ");
		sb_putu(&sb, t.checked);
		sb_puts(&sb, " pages differ, first at gpa ");
		sb_putx(&sb, t.first_bad);
		fv_log(buf);
	}
}

/*
 * CHURN: rewrite arg[0] pseudo-randomly chosen data pages with new content
 * (seeded by arg[2]), waiting arg[1] TSC cycles between writes, keeping the
 * checksum table current.  Needs FILL first; vCPU 0 only (it owns the
 * checksum table).  result[0] = pages written.
 */
static void cmd_churn(struct vcpu *v)
{
	const struct fv_guest_config *cfg = v->cfg;
	uint64_t *csum = csum_table(cfg);
	uint64_t count = v->arg[0], wait = v->arg[1], seed = v->arg[2];

	if (v->index != 0) {
		v->status = FV_STATUS_BAD_COMMAND;
		return;
	}
	if (!data_filled || (count && cfg->data_pages == 0)) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}

	for (uint64_t i = 0; i < count; i++) {
		uint64_t pos = fv_mix64(seed ^ i) % cfg->data_pages;
		uint64_t *page = data_page(cfg, pos);

		if (i)
			tsc_wait(wait);
		fv_fill_page(page, fv_mix64(seed + i), pos);
		csum[pos] = fv_checksum_page(page);
	}
	v->result[0] = count;
}

/*
 * RACE: iteration j atomically adds 1 to word j % 512 of every race page.
 * Any number of vCPUs run it at once; at rest all race pages are equal.
 * result[0] = iterations done.
 */
static void cmd_race(struct vcpu *v)
{
	const struct fv_guest_config *cfg = v->cfg;
	uint64_t *race = gpa_ptr(cfg->race_gpa);
	uint64_t iters = v->arg[0];

	for (uint64_t j = 0; j < iters; j++) {
		uint64_t w = j % FV_PAGE_WORDS;

		for (uint64_t p = 0; p < cfg->race_pages; p++)
			__atomic_fetch_add(&race[p * FV_PAGE_WORDS + w], 1,
					   __ATOMIC_RELAXED);
	}
	v->result[0] = iters;
}

/*
 * RACE_SETTLE: arg[1] vCPUs each ran arg[0] RACE iterations; add what that
 * put into each word to the totals VERIFY expects.  vCPU 0 only.
 * result[0] = increments added to each race page.
 */
static void cmd_race_settle(struct vcpu *v)
{
	uint64_t iters = v->arg[0], nvcpus = v->arg[1];

	if (v->index != 0) {
		v->status = FV_STATUS_BAD_COMMAND;
		return;
	}
	if (nvcpus > v->cfg->nr_vcpus) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}
	for (uint32_t w = 0; w < FV_PAGE_WORDS; w++)
		race_expected[w] += nvcpus * (iters / FV_PAGE_WORDS +
					      (w < iters % FV_PAGE_WORDS ? 1 : 0));
	v->result[0] = iters * nvcpus;
}

/* In-place heapsort (no recursion, no allocation, O(n log n) worst case). */
static void sift_down(uint32_t *a, size_t root, size_t end)
{
	for (;;) {
		size_t child = 2 * root + 1;
		uint32_t t;

		if (child >= end)
			return;
		if (child + 1 < end && a[child] < a[child + 1])
			child++;
		if (a[root] >= a[child])
			return;
		t = a[root];
		a[root] = a[child];
		a[child] = t;
		root = child;
	}
}

static void heapsort_u32(uint32_t *a, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift_down(a, i, n);
	for (size_t end = n; end-- > 1;) {
		uint32_t t = a[0];

		a[0] = a[end];
		a[end] = t;
		sift_down(a, 0, end);
	}
}

#define MEASURE_PATTERN 0x5a5a5a5a5a5a5a5aull

/* Is [gpa, gpa + (count-1)*stride + 8) inside [lo, hi)? */
static int span_inside(uint64_t gpa, uint64_t count, uint64_t stride,
		       uint64_t lo, uint64_t hi)
{
	uint64_t room;

	if (gpa < lo || hi < lo || hi - lo < 8 || gpa > hi - 8)
		return 0;
	room = hi - 8 - gpa;    /* how far the last word may start past gpa */
	return count <= 1 || stride <= room / (count - 1);
}

/*
 * MEASURE_WRITE: time the first write to arg[1] pages from gpa arg[0],
 * stride arg[2] bytes (0 = one page).  arg[3] picks what is written:
 *
 *   0: store MEASURE_PATTERN without reading first: times a write to a
 *      page the guest never touched (the host's first-write fault path).
 *      It destroys content, so the span must lie in the probe region.
 *   1: read the word, then store the same value back: still a write (so a
 *      write-protected / copy-on-write page faults exactly as for a real
 *      write) but the page content, and so its checksum, is unchanged.
 *      Usable on data pages.  The read happens before the timed window,
 *      but it may itself map the page (e.g. read-only or to the zero page
 *      in the host), so this measures "write after read", which differs
 *      from mode 0 on untouched pages.  Must lie in [FV_META_GPA, mem_size)
 *      and must not race with writers of the same words (it would undo
 *      their increments: do not aim it at the race region during RACE).
 *
 * At most MEASURE_MAX_VCPU0 (vCPU 0) or MEASURE_MAX_OTHER samples are
 * taken; result[5] says how many.  result[0..4] = median, p99 (sorted index
 * n*99/100), mean, min, max in TSC cycles.
 */
static void cmd_measure_write(struct vcpu *v)
{
	const struct fv_guest_config *cfg = v->cfg;
	uint64_t gpa = v->arg[0], count = v->arg[1], stride = v->arg[2];
	uint64_t mode = v->arg[3];
	uint32_t *samples = v->index == 0 ? measure_buf0 : measure_buf[v->index - 1];
	uint64_t cap = v->index == 0 ? MEASURE_MAX_VCPU0 : MEASURE_MAX_OTHER;
	uint64_t lo, hi, sum = 0;

	if (stride == 0)
		stride = FV_PAGE_SIZE;
	if (count > cap)
		count = cap;
	if (mode == 0) {
		lo = cfg->probe_gpa;
		hi = cfg->probe_gpa + cfg->probe_pages * FV_PAGE_SIZE;
	} else {
		lo = FV_META_GPA;
		hi = cfg->mem_size;
	}
	if (mode > 1 || (gpa | stride) % sizeof(uint64_t) ||
	    (count && !span_inside(gpa, count, stride, lo, hi))) {
		v->status = FV_STATUS_BAD_ARGS;
		return;
	}

	for (uint64_t i = 0; i < count; i++) {
		volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)(gpa + i * stride);
		uint64_t val = MEASURE_PATTERN, t0, t1, dt;

		if (mode == 1)
			val = *p;       /* outside the timed window */
		t0 = rdtsc_fenced();
		*p = val;
		t1 = rdtsc_fenced();
		dt = t1 - t0;
		samples[i] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
		sum += samples[i];
	}
	if (count == 0)
		return;

	heapsort_u32(samples, count);
	v->result[0] = samples[count / 2];
	v->result[1] = samples[count * 99 / 100];
	v->result[2] = sum / count;
	v->result[3] = samples[0];
	v->result[4] = samples[count - 1];
	v->result[5] = count;
}

/* FAULT: no IDT, so #UD escalates to a triple fault (shutdown exit). */
static _Noreturn void cmd_fault(void)
{
	__asm__ volatile("ud2");
	__builtin_unreachable();
}

/* ------------------------------------------------------------------------
 * Main loop.
 */

static void announce(const struct fv_guest_config *cfg)
{
	char buf[128];
	struct strbuf sb;

	sb_init(&sb, buf, sizeof(buf));
	sb_puts(&sb, "foldvm payload: vcpu 0 of ");
	sb_putu(&sb, cfg->nr_vcpus);
	sb_puts(&sb, " ready, data ");
	sb_putu(&sb, cfg->data_pages);
	sb_puts(&sb, " pages\n");
	serial_puts(buf);
}

/* Report the last command's result and wait for the next command. */
static void next_command(struct vcpu *v)
{
	volatile struct fv_mailbox *mb = v->mb;

	mb->last_cmd = v->cmd;
	mb->status = v->status;
	for (int i = 0; i < 8; i++)
		mb->result[i] = v->result[i];

	outl(FV_DOORBELL_PORT, FV_REQ_NEXT);

	v->cmd = mb->cmd;
	for (int i = 0; i < 8; i++)
		v->arg[i] = mb->arg[i];
	v->status = FV_STATUS_OK;
	for (int i = 0; i < 8; i++)
		v->result[i] = 0;
}

void payload_main(uint64_t vcpu, const struct fv_guest_config *cfg)
{
	struct vcpu v;

	/* Without a valid index there is no mailbox to complain through. */
	if (vcpu >= FV_MAX_VCPUS)
		fv_exit_forever();
	check_config(vcpu, cfg);

	memset(&v, 0, sizeof(v));
	v.index = vcpu;
	v.cfg = cfg;
	v.mb = mailbox_of(vcpu);

	if (vcpu == 0) {
		/* vCPU 0's shared state; other vCPUs never touch it. */
		data_filled = 0;
		memset(race_expected, 0, sizeof(race_expected));
		announce(cfg);
	}

	for (;;) {
		next_command(&v);
		switch (v.cmd) {
		case FV_CMD_NONE:
			break;  /* nothing to do: report OK and ask again */
		case FV_CMD_FILL:
			cmd_fill(&v);
			break;
		case FV_CMD_VERIFY:
			cmd_verify(&v);
			break;
		case FV_CMD_CHURN:
			cmd_churn(&v);
			break;
		case FV_CMD_RACE:
			cmd_race(&v);
			break;
		case FV_CMD_RACE_SETTLE:
			cmd_race_settle(&v);
			break;
		case FV_CMD_MEASURE_WRITE:
			cmd_measure_write(&v);
			break;
		case FV_CMD_FAULT:
			cmd_fault();
		case FV_CMD_EXIT:
			fv_exit_forever();
		default:
			v.status = FV_STATUS_BAD_COMMAND;
			break;
		}
	}
}
