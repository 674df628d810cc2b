/*
 * x86_seg.h - the flat 64-bit segments both guest kinds start with (test
 * payloads at CPL3, Linux at CPL0): base 0, 4 GiB limit, page granular.
 */
#ifndef FOLDVM_X86_SEG_H
#define FOLDVM_X86_SEG_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/kvm.h>

static inline struct kvm_segment x86_flat_segment(uint16_t selector, bool code,
						  uint8_t dpl)
{
	return (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = selector,
		.type = code ? 11 : 3, /* execute/read or read/write, accessed */
		.present = 1,
		.dpl = dpl,
		.db = code ? 0 : 1,    /* 64-bit code has D=0, L=1 */
		.s = 1,
		.l = code ? 1 : 0,
		.g = 1,
	};
}

#endif
