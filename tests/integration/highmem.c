/*
 * highmem.c - RAM above the 32-bit hole under KVM (the PC layout of Linux
 * guests, memory/guest_mem.h): two memslots over one host mapping, each
 * guest store on the RAM page its address translates to, each memslot's
 * dirty log on the right RAM page bits (fetched, cleared and re-armed per
 * slot), and the hole no RAM at all (a store there is an MMIO exit).
 *
 * The guest is a few instructions at CPL3 (native speed on PVM), on the
 * test guests' GDT, TSS and identity page tables plus one page directory
 * for the GiB at 4 GiB.  No dedup engine: the guest memory's own dirty
 * log (gmem_dedup_enable with a userfaultfd of the test's) is read here.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include "tests/integration/kvmtest.h"
#include "lib/uffd.h"
#include "vmm/kvm.h"
#include "vmm/x86_cpl3.h"

#define GiB (1ull << 30)
#define MEM (3 * GiB + (64ull << 20))  /* 3 GiB low, 64 MiB from 4 GiB */
#define HIGH_PAGE0 (3 * GiB / 4096)    /* RAM page of guest-physical 4 GiB */
#define LAST_GPA (4 * GiB + (64ull << 20) - 4096)
#define LOW_GPA 0x300000ull
#define HOLE_GPA 0xc0001000ull
#define PORT_A 0x10
#define PORT_B 0x11

/* The CPL3 page tables (vmm/x86_cpl3.c): PML4, PDPT, then a PD per GiB. */
#define PDPT_GPA (FV_PT_GPA + 4096)
#define PD4_GPA (FV_PT_GPA + 2 * 4096 + 4 * 4096)
#define PTE_USER_2M 0x87ull /* present, writable, user, 2 MiB */

static uint8_t *emit_store(uint8_t *p, uint64_t gpa, uint32_t value)
{
	*p++ = 0x48; /* mov rax, imm64 */
	*p++ = 0xb8;
	memcpy(p, &gpa, 8);
	p += 8;
	*p++ = 0xc7; /* mov dword [rax], imm32 */
	*p++ = 0x00;
	memcpy(p, &value, 4);
	return p + 4;
}

static uint8_t *emit_out(uint8_t *p, uint8_t port)
{
	*p++ = 0xba; /* mov edx, port */
	*p++ = port;
	*p++ = 0;
	*p++ = 0;
	*p++ = 0;
	*p++ = 0xee; /* out dx, al */
	return p;
}

static void map_high_gib(struct guest_mem *gm)
{
	struct fv_error err;
	uint64_t e = PD4_GPA | 7; /* present, writable, user */

	KT_ASSERT(PD4_GPA + 4096 <= FV_PT_END, "no room for a 5th PD");
	KT_ASSERT(gmem_fill(gm, PD4_GPA, 0, 4096, &err) == 0, "%s", err.msg);
	KT_ASSERT(gmem_write(gm, PDPT_GPA + 4 * 8, &e, 8, &err) == 0, "%s", err.msg);
	for (uint64_t i = 0; i < 32; i++) {
		e = (4 * GiB + i * (2ull << 20)) | PTE_USER_2M;
		KT_ASSERT(gmem_write(gm, PD4_GPA + i * 8, &e, 8, &err) == 0, "%s", err.msg);
	}
}

static bool bit(const uint64_t *b, uint64_t page)
{
	return (b[page / 64] >> (page % 64)) & 1;
}

static uint64_t count_bits(const uint64_t *b, uint64_t from, uint64_t to)
{
	uint64_t n = 0;

	for (uint64_t p = from; p < to; p++)
		n += bit(b, p);
	return n;
}

/* Run until an exit that is not a signal's. */
static void run(int fd)
{
	int rc;

	do
		rc = ioctl(fd, KVM_RUN, 0);
	while (rc < 0 && (errno == EINTR || errno == EAGAIN));
	KT_ASSERT(rc == 0, "KVM_RUN: %s", strerror(errno));
}

static void expect_out(int fd, struct kvm_run *r, uint16_t port)
{
	run(fd);
	KT_ASSERT(r->exit_reason == KVM_EXIT_IO && r->io.direction == KVM_EXIT_IO_OUT &&
		  r->io.port == port,
		  "exit %u (port 0x%x), not an out to 0x%x", r->exit_reason,
		  r->exit_reason == KVM_EXIT_IO ? r->io.port : 0, port);
}

static uint32_t read32(struct guest_mem *gm, uint64_t gpa)
{
	struct fv_error err;
	uint32_t v = 0;

	KT_ASSERT(gmem_read(gm, gpa, &v, 4, &err) == 0, "%s", err.msg);
	return v;
}

int main(void)
{
	struct kvm_sys kvm;
	struct guest_mem gm;
	struct fv_error err;
	struct kvm_run *r;
	uint8_t code[256], *p = code;
	uint64_t *dirty, page;
	int vm, vcpu, uffd;

	kt_require_kvm("highmem");
	kt_open(&kvm);
	vm = kvm_vm_create(&kvm, &err);
	KT_ASSERT(vm >= 0, "%s", err.msg);
	KT_ASSERT(gmem_create_layout(&gm, vm, MEM, GMEM_LAYOUT_PC, NULL, &err) == 0,
		  "%s", err.msg);
	KT_ASSERT(gm.nr_ranges == 2, "%u RAM ranges", gm.nr_ranges);
	uffd = fv_userfaultfd(O_CLOEXEC | O_NONBLOCK, &err);
	if (uffd < 0) {
		fprintf(stderr, "SKIP: no userfaultfd (%s): highmem NOT RUN\n", err.msg);
		return 77;
	}
	{
		struct uffdio_api api = { .api = UFFD_API };

		KT_ASSERT(ioctl(uffd, UFFDIO_API, &api) == 0, "UFFDIO_API: %s", strerror(errno));
	}
	/* KVM's dirty log on both memslots, manual protect */
	KT_ASSERT(gmem_dedup_enable(&gm, uffd, &err) == 0, "%s", err.msg);
	KT_ASSERT(gm.dirty_log, "no dirty log");
	dirty = calloc(gm.bitmap_words, sizeof(*dirty));
	KT_ASSERT(dirty, "bitmap");

	/* The guest: stores in high RAM, low RAM, the last RAM page; out A;
	 * a store into the hole; a store in high RAM; out B; spin. */
	p = emit_store(p, 4 * GiB + 0x5000, 0x600dcafe);
	p = emit_store(p, LOW_GPA, 0x10ca1);
	p = emit_store(p, LAST_GPA, 0x1a57);
	p = emit_out(p, PORT_A);
	p = emit_store(p, HOLE_GPA, 0xdeadbeef);
	p = emit_store(p, 4 * GiB + 0x6000, 0xa6a1);
	p = emit_out(p, PORT_B);
	*p++ = 0xeb; /* jmp $ */
	*p++ = 0xfe;
	KT_ASSERT(x86_cpl3_setup_memory(&gm, 0, &err) == 0, "%s", err.msg);
	map_high_gib(&gm);
	KT_ASSERT(gmem_write(&gm, FV_PAYLOAD_GPA, code, (uint64_t)(p - code), &err) == 0,
		  "%s", err.msg);
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	KT_ASSERT(vcpu >= 0, "KVM_CREATE_VCPU: %s", strerror(errno));
	r = mmap(NULL, (size_t)kvm.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	KT_ASSERT(r != MAP_FAILED, "mmap kvm_run: %s", strerror(errno));
	KT_ASSERT(x86_cpl3_setup_vcpu(vcpu, kvm.cpuid, 0, FV_PAYLOAD_GPA, FV_STACK_TOP(0),
				      0, &err) == 0, "%s", err.msg);
	/* what the host wrote so far is not what this test looks at */
	KT_ASSERT(gmem_fetch_dirty(&gm, dirty, &err) == 0, "%s", err.msg);

	expect_out(vcpu, r, PORT_A);
	/* the stores landed on the RAM pages their addresses translate to */
	KT_ASSERT(read32(&gm, 4 * GiB + 0x5000) == 0x600dcafe, "high store");
	KT_ASSERT(gmem_gpa_to_page(&gm, 4 * GiB + 0x5000, &page, &err) == 0, "%s", err.msg);
	KT_ASSERT(page == HIGH_PAGE0 + 5, "page %llu", (unsigned long long)page);
	KT_ASSERT(*(const uint32_t *)gmem_page_view(&gm, HIGH_PAGE0 + 5) == 0x600dcafe,
		  "not on RAM page 3 GiB/4 KiB + 5");
	KT_ASSERT(read32(&gm, 0x5000) != 0x600dcafe, "the high store hit low RAM");
	KT_ASSERT(read32(&gm, LOW_GPA) == 0x10ca1, "low store");
	KT_ASSERT(read32(&gm, LAST_GPA) == 0x1a57, "store on the last RAM page");
	KT_ASSERT(*(const uint32_t *)gmem_page_view(&gm, gmem_pages(&gm) - 1) == 0x1a57,
		  "last store not on the last RAM page");

	/* each memslot's log on its own range's bits */
	KT_ASSERT(gmem_fetch_dirty(&gm, dirty, &err) == 0, "%s", err.msg);
	KT_ASSERT(bit(dirty, HIGH_PAGE0 + 5), "high page not dirty");
	KT_ASSERT(bit(dirty, LOW_GPA / 4096), "low page not dirty");
	KT_ASSERT(bit(dirty, gmem_pages(&gm) - 1), "last page not dirty");
	KT_ASSERT(!bit(dirty, 5), "the high slot's bit landed on low page 5");
	KT_ASSERT(count_bits(dirty, HIGH_PAGE0, gmem_pages(&gm)) == 2,
		  "%llu dirty pages above the hole, 2 written",
		  (unsigned long long)count_bits(dirty, HIGH_PAGE0, gmem_pages(&gm)));
	printf("dirty after the first stores: RAM pages %llu (low), %llu and %llu (high slot)\n",
	       (unsigned long long)(LOW_GPA / 4096), (unsigned long long)(HIGH_PAGE0 + 5),
	       (unsigned long long)(gmem_pages(&gm) - 1));

	/* a store into the hole is no RAM: an MMIO exit at its address */
	run(vcpu);
	KT_ASSERT(r->exit_reason == KVM_EXIT_MMIO && r->mmio.is_write &&
		  r->mmio.phys_addr == HOLE_GPA && r->mmio.len == 4,
		  "exit %u at 0x%llx, not an MMIO write at 0x%llx", r->exit_reason,
		  (unsigned long long)r->mmio.phys_addr, (unsigned long long)HOLE_GPA);
	KT_ASSERT(!gmem_range_ok(&gm, HOLE_GPA, 4), "the hole is RAM");
	printf("store at 0x%llx: KVM_EXIT_MMIO (the hole has no memslot)\n",
	       (unsigned long long)HOLE_GPA);

	/* the high slot was re-armed: the next store is logged, the old ones not */
	expect_out(vcpu, r, PORT_B);
	KT_ASSERT(read32(&gm, 4 * GiB + 0x6000) == 0xa6a1, "second high store");
	KT_ASSERT(gmem_fetch_dirty(&gm, dirty, &err) == 0, "%s", err.msg);
	KT_ASSERT(bit(dirty, HIGH_PAGE0 + 6), "re-armed high page not dirty");
	KT_ASSERT(!bit(dirty, HIGH_PAGE0 + 5) && !bit(dirty, gmem_pages(&gm) - 1) &&
		  !bit(dirty, LOW_GPA / 4096), "old pages still dirty: not cleared");
	KT_ASSERT(count_bits(dirty, HIGH_PAGE0, gmem_pages(&gm)) == 1, "other high pages dirty");
	printf("after clear: only RAM page %llu dirty in the high slot\n",
	       (unsigned long long)(HIGH_PAGE0 + 6));

	munmap(r, (size_t)kvm.run_size);
	close(vcpu);
	free(dirty);
	gmem_destroy(&gm);
	close(uffd);
	close(vm);
	kvm_sys_close(&kvm);
	printf("highmem: OK\n");
	return 0;
}
