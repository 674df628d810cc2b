/* The test payload, linked into the foldvm binary so it needs no install
 * path.  PAYLOAD_BIN is the flat image built from guest-tools/payload/. */
	.section .rodata
	.balign 4096
	.globl fv_builtin_payload
	.globl fv_builtin_payload_end
fv_builtin_payload:
	.incbin PAYLOAD_BIN
fv_builtin_payload_end:
	.section .note.GNU-stack,"",@progbits
