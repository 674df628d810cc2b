#!/bin/sh
# Check: the interactive serial console of a real Linux guest (issue 28's
# proof; docs/console.md).  Debian's kernel with the Linux test initramfs and
# no fvtest= on the command line (its /init runs a login shell on ttyS0,
# `setsid cttyhack sh -l`), run as a newcomer types it, from the build
# directory:
#   ./foldvm run --vm name=l,mem=256M,vcpus=2,kernel=...,initrd=...,disk=...
# (kernel, initrd and a small ext4 disk copied to the bed's tmpfs: the
# sandbox cannot read them over 9p).  Through ptys (checks/console.py):
# 1. foldvm in the foreground of a terminal: the shell's prompt comes, a
#    typed command runs (echo $((6*7)), the CPUs in /proc/cpuinfo), ^C ends
#    a guest `sleep`, Ctrl-A x quits, the terminal is restored;
# 2. the same guest under `foldvm run --console none` reached by
#    `foldctl console l`: the prompt in the backlog, a typed command runs,
#    Ctrl-] detaches and the guest runs on; attached again, `poweroff -f`
#    ends the guest as shutdown.
. "$(dirname "$0")/../lib.sh"
bed_require
command -v python3 >/dev/null || fail "python3 missing (scripts/setup installs it)"
linux_images
mk_ext4 "$TMP/img/disk.ext4" 16 hello=console
PY=$(dirname "$0")/console.py
trap 'rm -rf "$TMP"' EXIT
for part in ${BED_CONSOLE_PARTS:-foreground foldctl}; do
	python3 "$PY" "$part" "$BUILDDIR" "$KERNEL" "$INITRD" "$TMP/img/disk.ext4" "$FV_VCPUS" \
		"$TMP/$part.seen" || fail "console: the $part part"
done
echo "PASS console: $KVER, vcpus=$FV_VCPUS, mem=256M, an ext4 disk; 1) $(cat "$TMP/foreground.seen"); 2) $(cat "$TMP/foldctl.seen")"
