/*
 * start.S - entry point of the foldvm test payload (64-bit, CPL3).
 *
 * The host enters every vCPU here, at the first byte of the flat image
 * (FV_PAYLOAD_GPA), already in long mode at CPL3 with:
 *   RDI = vCPU index, RSI = FV_CONFIG_GPA, RSP = FV_STACK_TOP(index).
 *
 * .bss is NOT zeroed here: all vCPUs start concurrently, so a zeroing pass
 * by one of them could wipe what another one has just written, and it would
 * also dirty every .bss page for nothing.  The host zeroes guest RAM before
 * loading the image, and the C code does not rely on .bss starting out zero
 * anyway (vCPU 0 explicitly initialises the little shared state there is).
 *
 * There is no IDT: any exception triple-faults the guest.  hlt/cli/sti are
 * privileged at CPL3, so the "park forever" path writes to the exit port.
 */

	.section .text.start, "ax", @progbits
	.globl _start
	.type _start, @function
_start:
	cld                       /* the SysV ABI wants DF=0 on calls */
	xorl	%ebp, %ebp        /* terminate frame-pointer chains */
	andq	$-16, %rsp        /* FV_STACK_TOP is aligned; be safe anyway */
	/* rdi = vCPU index, rsi = config gpa: already payload_main's args */
	call	payload_main

	/*
	 * payload_main returned: signal exit, forever (no hlt at CPL3).
	 * The constants are checked against testdev_abi.h by _Static_assert
	 * in payload.c (the header cannot be included here: it pulls in
	 * <stdint.h> and C enums).
	 */
	.globl fv_exit_forever
fv_exit_forever:
	movl	$0x0514, %edx     /* FV_EXIT_PORT = FV_DOORBELL_PORT + 4 */
	movl	$0x0e1d, %eax     /* FV_EXIT_MAGIC */
1:	outl	%eax, %dx
	pause
	jmp	1b
	.size _start, . - _start

	/* no executable stack wanted */
	.section .note.GNU-stack, "", @progbits
