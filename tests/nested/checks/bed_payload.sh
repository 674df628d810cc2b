#!/bin/sh
# The bed works: foldvm's own test payload guest fills and verifies its
# memory under the bed's real KVM (the CPL3 payload, one vCPU and two).
. "$(dirname "$0")/../lib.sh"
bed_require
t0=$(now_ms)
"$BUILDDIR/foldvm" run --quiet --no-control --log-dir "$TMP/logs" \
	--vm name=p,mem=32M,steps=fill+verify --vm name=p2,mem=32M,vcpus=2,steps=fill+verify \
	>"$TMP/p.out" 2>&1 || { cat "$TMP/p.out"; fail "foldvm's payload guests failed in the bed"; }
t=$(( $(now_ms) - t0 ))
expect_in "$TMP/p.out" '^p +32M +1 +shutdown .*OK \([0-9]+ pages, 0 bad\)' '^p2 +32M +2 +shutdown .*OK \([0-9]+ pages, 0 bad\)'
echo "PASS bed_payload: foldvm fill+verify under the bed's KVM: $(grep -E '^p2? ' "$TMP/p.out" | sed 's/  */ /g' | tr '\n' ';' | sed 's/;$//') ($t ms)"
