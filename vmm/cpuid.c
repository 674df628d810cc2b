/*
 * cpuid.c - a Linux guest vCPU's CPUID (cpuid.h says what and why).
 *
 * The topology is one package, nr_vcpus cores, one thread per core, APIC
 * id = vCPU index: the MADT (vmm/acpi.c) announces the same ids.
 */
#include <string.h>
#include "vmm/cpuid.h"

/* Leaf 0xB/0x1F level types (ECX[15:8]). */
#define TOPO_TYPE_SMT  1u
#define TOPO_TYPE_CORE 2u

#define LEAF4_TYPE_MASK   0x1fu
#define LEAF4_LEVEL(eax)  (((eax) >> 5) & 7u)
#define LEAF4_KEEP        0x00003fffu /* type, level, flags: kept */

static const char kvm_signature[12] = { 'K', 'V', 'M', 'K', 'V', 'M', 'K', 'V',
					'M', 0, 0, 0 };

unsigned cpuid_order(unsigned n)
{
	unsigned s = 0;

	while (s < 31 && (1u << s) < n)
		s++;
	return s;
}

const struct kvm_cpuid_entry2 *cpuid_find(const struct kvm_cpuid_entry2 *e,
					  unsigned n, uint32_t function,
					  uint32_t index)
{
	for (unsigned i = 0; i < n; i++) {
		bool indexed = e[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX;

		if (e[i].function == function && (!indexed || e[i].index == index))
			return &e[i];
	}
	return NULL;
}

static bool has_kvm_signature(const struct kvm_cpuid_entry2 *e)
{
	char sig[12];

	memcpy(sig, &e->ebx, 4);
	memcpy(sig + 4, &e->ecx, 4);
	memcpy(sig + 8, &e->edx, 4);
	return !memcmp(sig, kvm_signature, sizeof(sig)) &&
	       e->eax >= CPUID_HYPERVISOR_LEAF + 1;
}

/* "AuthenticAMD" or "HygonGenuine": the vendors whose 0x80000008 ECX and
 * 0x8000001E describe cores. */
static bool vendor_is_amd(const struct kvm_cpuid_entry2 *leaf0)
{
	return leaf0 && ((leaf0->ebx == 0x68747541u && leaf0->edx == 0x69746e65u &&
			  leaf0->ecx == 0x444d4163u) ||
			 (leaf0->ebx == 0x6f677948u && leaf0->edx == 0x6e65476eu &&
			  leaf0->ecx == 0x656e6975u));
}

struct topo {
	unsigned apic_id, nr, shift;
	bool amd;
};

/* Leaf 4 EAX[31:26]: core ids in the package - 1, six bits. */
static uint32_t leaf4_cores(const struct topo *t)
{
	uint32_t ids = (1u << t->shift) - 1;

	return ids > 0x3f ? 0x3f : ids;
}

static void fix_entry(struct kvm_cpuid_entry2 *e, const struct topo *t)
{
	switch (e->function) {
	case 1:
		e->ebx = (e->ebx & 0x0000ffffu) | t->apic_id << 24 |
			 (t->nr > 1 ? t->nr : 1) << 16;
		e->ecx |= CPUID_ECX_HYPERVISOR;
		if (t->nr > 1)
			e->edx |= CPUID_EDX_HTT;
		else
			e->edx &= ~CPUID_EDX_HTT;
		break;
	case 4:
		if (!(e->eax & LEAF4_TYPE_MASK))
			break;          /* the terminating subleaf */
		/* EAX[31:26]: core ids in the package - 1; EAX[25:14]:
		 * threads sharing the cache - 1 (L3: the package). */
		e->eax = (e->eax & LEAF4_KEEP) | leaf4_cores(t) << 26 |
			 (LEAF4_LEVEL(e->eax) >= 3 ? (1u << t->shift) - 1 : 0) << 14;
		break;
	case 0x80000008:
		if (t->amd)
			e->ecx = (e->ecx & ~0xf0ffu) | t->shift << 12 | (t->nr - 1);
		break;
	case 0x8000001e:
		if (t->amd) {
			e->eax = t->apic_id;
			e->ebx = t->apic_id & 0xffu;    /* core id, 1 thread */
			e->ecx = 0;                     /* node 0 of 1 */
		}
		break;
	}
}

/* Subleaves 0 (SMT), 1 (core), 2 (end) of an extended-topology leaf. */
static void topo_leaf(struct kvm_cpuid_entry2 *out, uint32_t function,
		      const struct topo *t)
{
	for (uint32_t i = 0; i < 3; i++) {
		struct kvm_cpuid_entry2 *e = &out[i];

		memset(e, 0, sizeof(*e));
		e->function = function;
		e->index = i;
		e->flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		e->edx = t->apic_id;
		e->ecx = i;
		if (i == 0) {
			e->ebx = 1;
			e->ecx |= TOPO_TYPE_SMT << 8;
		} else if (i == 1) {
			e->eax = t->shift;
			e->ebx = t->nr;
			e->ecx |= TOPO_TYPE_CORE << 8;
		}
	}
}

int cpuid_build(const struct kvm_cpuid_entry2 *sup, unsigned nsup,
		unsigned index, unsigned nr_vcpus,
		struct kvm_cpuid_entry2 *out, unsigned max, unsigned *nout,
		struct fv_error *err)
{
	const struct kvm_cpuid_entry2 *leaf0 = cpuid_find(sup, nsup, 0, 0);
	const struct kvm_cpuid_entry2 *hv = cpuid_find(sup, nsup, CPUID_HYPERVISOR_LEAF, 0);
	struct topo t = { .apic_id = index, .nr = nr_vcpus,
			  .shift = cpuid_order(nr_vcpus), .amd = vendor_is_amd(leaf0) };
	uint32_t max_basic = leaf0 ? leaf0->eax : 0;
	unsigned n = 0;

	*nout = 0;
	if (nr_vcpus == 0 || nr_vcpus > CPUID_MAX_VCPUS || index >= nr_vcpus)
		return fv_err(err, FV_E_INVAL, "CPUID for vCPU %u of %u: want 1..%u vCPUs",
			      index, nr_vcpus, CPUID_MAX_VCPUS);
	if (!leaf0 || !cpuid_find(sup, nsup, 1, 0))
		return fv_err(err, FV_E_KVM, "KVM's supported CPUID has no leaf 0 or 1");
	if (!hv || !has_kvm_signature(hv) ||
	    !cpuid_find(sup, nsup, CPUID_HYPERVISOR_LEAF + 1, 0))
		return fv_err(err, FV_E_KVM,
			      "KVM's supported CPUID has no paravirtual leaves (0x40000000 \"KVMKVMKVM\", 0x40000001)");
	for (unsigned i = 0; i < nsup; i++) {
		/* The topology leaves are written whole below. */
		if (sup[i].function == 0xb || sup[i].function == 0x1f)
			continue;
		if (n == max)
			return fv_err(err, FV_E_RANGE, "CPUID table over %u entries", max);
		out[n] = sup[i];
		fix_entry(&out[n++], &t);
	}
	for (uint32_t f = 0xb; f <= 0x1f; f += 0x1f - 0xb) {
		if (max_basic < f)
			continue;
		if (max - n < 3)
			return fv_err(err, FV_E_RANGE, "CPUID table over %u entries", max);
		topo_leaf(&out[n], f, &t);
		n += 3;
	}
	*nout = n;
	return 0;
}
