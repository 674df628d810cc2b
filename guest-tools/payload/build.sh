#!/bin/sh
# build.sh - build the foldvm payload exactly as the project Makefile does,
# then sanity-check the result.  For development only; the Makefile is the
# real build.  Usage: guest-tools/payload/build.sh [outdir]   (run from the
# repository root; CC defaults to cc; outputs go to outdir, default /tmp).
set -eu

CC=${CC:-cc}
OUT=${1:-/tmp/foldvm-payload-$(basename "$CC")}
PAYLOAD_CFLAGS="-std=c11 -O2 -g0 -ffreestanding -fno-builtin -nostdlib -fno-pic -fno-pie -mno-red-zone -mgeneral-regs-only -fno-stack-protector -fcf-protection=none -fno-asynchronous-unwind-tables -Wall -Wextra -Werror -Iguest-tools"

# The Makefile's original line used "-static -no-pie"; clang 14 rejects that
# pair under -Werror ("argument unused during compilation: '-no-pie'").
# Either flag alone gives the same non-PIE static ET_EXEC with gcc and clang
# (byte-identical payload.bin), so the default here is "-static".
PAYLOAD_LDFLAGS=${PAYLOAD_LDFLAGS:--static}

# The sources: the Makefile's PAYLOAD_SRCS, read from Makefile.am so that
# this list cannot drift from the real one.
SRCS=$(sed -n '/^PAYLOAD_SRCS = /,/[^\\]$/p' Makefile.am |
	sed 's/^PAYLOAD_SRCS = //; s/\\$//')
[ -n "$SRCS" ] || { echo "build.sh: no PAYLOAD_SRCS in Makefile.am (run from the repository root)" >&2; exit 1; }

mkdir -p "$OUT"
# shellcheck disable=SC2086
$CC $PAYLOAD_CFLAGS $PAYLOAD_LDFLAGS -Wl,-T,guest-tools/payload/payload.ld \
	-Wl,--build-id=none -o "$OUT/payload.elf" $SRCS
objcopy -O binary "$OUT/payload.elf" "$OUT/payload.bin"

fail() { echo "build.sh: $*" >&2; exit 1; }

# _start is the first byte of the image, at FV_PAYLOAD_GPA.
[ "$(nm "$OUT/payload.elf" | awk '$3 == "_start" { print $1 }')" = \
	"0000000000100000" ] || fail "_start is not at 0x100000"
[ "$(objdump -f "$OUT/payload.elf" | awk '/start address/ { print $3 }')" = \
	"0x0000000000100000" ] || fail "ELF entry is not 0x100000"
# no undefined symbols
! nm -u "$OUT/payload.elf" | grep -q . || fail "undefined symbols"
# no SSE/AVX, nothing privileged at CPL3
objdump -d "$OUT/payload.elf" > "$OUT/payload.dis"
! grep -Eq 'xmm|ymm|zmm' "$OUT/payload.dis" || fail "SSE registers used"
! grep -Eqw 'hlt|cli|sti|lgdt|lidt|wrmsr|rdmsr|invlpg' "$OUT/payload.dis" ||
	fail "privileged instruction"
# image span including .bss within FV_PAYLOAD_MAX
end=$(nm "$OUT/payload.elf" | awk '$3 == "__payload_end" { print $1 }')
[ $((0x$end)) -le $((0x200000)) ] || fail "image span exceeds 1 MiB"

size=$(wc -c < "$OUT/payload.bin")
echo "payload: $OUT/payload.bin $size bytes, span $((0x$end - 0x100000)) bytes with .bss"
