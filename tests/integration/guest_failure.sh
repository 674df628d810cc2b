#!/bin/sh
# A guest that triple-faults stops with a reason; the others finish and
# verify; foldvm exits 1 (a guest failed) and never crashes.
. "$(dirname "$0")/lib.sh"
require_kvm

for bin in $VARIANTS; do
	"$BUILDDIR/$bin" run --log-dir "$TMP/logs" --quiet \
		--vm name=good1,mem=64M \
		--vm name=bad,mem=64M,vcpus=2,steps=fill+fault+verify \
		--vm name=good2,mem=64M,steps=fill+sleep:1+verify \
		>"$TMP/out" 2>"$TMP/err"
	rc=$?
	[ "$rc" -eq 1 ] || { cat "$TMP/out" "$TMP/err"; fail "$bin: exit $rc, wanted 1"; }
	expect_in "$TMP/out" \
		'^good1 .* shutdown .* OK \([0-9]+ pages, 0 bad\)' \
		'^good2 .* shutdown .* OK \([0-9]+ pages, 0 bad\)' \
		'^bad .* failed ' \
		'bad: FAILED: .*triple fault \(KVM_EXIT_SHUTDOWN\) on vCPU 0 at rip 0x'
	# a payload that is garbage fails on its own too (no crash, reason given):
	# 0xff 0xff is an undefined opcode, so it faults at its first byte
	# (random bytes would be flaky: they may loop forever instead)
	head -c 8192 /dev/zero | tr '\000' '\377' >"$TMP/junk.bin"
	"$BUILDDIR/$bin" run --log-dir "$TMP/logs" --quiet \
		--vm name=ok,mem=64M --vm name=junk,mem=64M,payload="$TMP/junk.bin" \
		>"$TMP/out" 2>"$TMP/err"
	rc=$?
	[ "$rc" -eq 1 ] || { cat "$TMP/out" "$TMP/err"; fail "$bin junk: exit $rc, wanted 1"; }
	expect_in "$TMP/out" '^ok .* shutdown .* OK ' '^junk .* failed '
done
echo "guest_failure: the failing guest stopped alone"
