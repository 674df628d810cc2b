#!/bin/sh
# Three guests at once fill and verify their memory; one of them also runs
# racing writers on two vCPUs, churns and measures first writes.
. "$(dirname "$0")/lib.sh"
require_kvm

for bin in $VARIANTS; do
	"$BUILDDIR/$bin" run --log-dir "$TMP/logs-$bin" --files "$FOLDVM_SRCDIR/vmm" \
		--vm name=alpha,mem=64M \
		--vm name=beta,mem=64M,zero=10,shared=60,blob=0 \
		--vm name=gamma,mem=96M,vcpus=2,blob=30,layout=mix,steps=fill+race:200000+churn:500+measure+verify \
		>"$TMP/out" 2>"$TMP/err" || { cat "$TMP/out" "$TMP/err"; fail "$bin: exit $?"; }
	expect_in "$TMP/out" \
		'^alpha +64M +1 shutdown .* OK \([0-9]+ pages, 0 bad\)' \
		'^beta +64M +1 shutdown .* OK \([0-9]+ pages, 0 bad\)' \
		'^gamma +96M +2 shutdown .* OK \([0-9]+ pages, 0 bad\)' \
		'^\[alpha\] foldvm payload: vcpu 0 of 1 ready' \
		'^\[gamma\] foldvm payload: vcpu 0 of 2 ready'
	# gamma holds file pages from --files; beta has none (blob=0)
	grep -E '^gamma ' "$TMP/out" | awk '{ if ($7 == 0) exit 1 }' ||
		fail "gamma has no file pages"
	grep -E '^beta ' "$TMP/out" | awk '{ if ($7 != 0) exit 1 }' ||
		fail "beta has file pages it did not ask for"
	# a measured first-write cost is shown for gamma
	grep -E '^gamma ' "$TMP/out" | grep -Eq ' [0-9]+\.[0-9]+/[0-9]+\.[0-9]+ ' ||
		fail "gamma has no first-write measurement"
	# the serial log file holds the guest's console output
	expect_in "$TMP/logs-$bin/alpha.log" 'foldvm payload: vcpu 0 of 1 ready'
	# the same with the engine on: two guests in one domain share memory
	# (both filled, then two engine passes: merged however slow the host)
	"$BUILDDIR/$bin" run --dedup --quiet --log-dir "$TMP/logs-$bin" \
		--vm name=d1,mem=32M,domain=t,steps=fill+sync+settle:2+verify+sync \
		--vm name=d2,mem=32M,domain=t,steps=fill+sync+settle:2+churn:200+verify+sync \
		>"$TMP/out" 2>"$TMP/err" || { cat "$TMP/out" "$TMP/err"; fail "$bin --dedup: exit $?"; }
	expect_in "$TMP/out" '^d1 .* OK \(' '^d2 .* OK \(' '^DEDUP ' \
		'^host \(engine\): saved [0-9.]+ MiB; store [1-9][0-9]* frames'
	# two clones (one layout, same content at the same addresses, unique
	# pages their own) in one domain merge and still verify; k1 times
	# first writes to its probe pages as soon as the engine merged them
	"$BUILDDIR/$bin" run --dedup --quiet --log-dir "$TMP/logs-$bin" --files "$FOLDVM_SRCDIR/vmm" \
		--vm name=k1,mem=32M,domain=c,layout=clones,blob=20,steps=fill+measure+sync+measure-merging+settle:2+verify+sync \
		--vm name=k2,mem=32M,domain=c,layout=clones,blob=20,steps=fill+measure+sync+settle:2+verify+sync \
		>"$TMP/out" 2>"$TMP/err" || { cat "$TMP/out" "$TMP/err"; fail "$bin clones: exit $?"; }
	expect_in "$TMP/out" '^k1 .* OK \(' '^k2 .* OK \(' \
		'^host \(engine\): saved [0-9.]+ MiB; store [0-9]+ frames, [0-9.]+ MiB \(home files included\); [1-9][0-9]* pages merged in place' \
		'^k1: first write as soon as merged \(measure-merging\): [0-9.]+/[0-9.]+ us median/p99, merged after [0-9.]+ s; [0-9]+ engine merges during the writes$'
	grep -E '^k2 ' "$TMP/out" | awk '{ if ($7 == 0) exit 1 }' ||
		fail "clone k2 has no file pages"
	awk '$1 == "k2" && $2 !~ /M$/ { n = $5 } END { exit !(n > 0) }' "$TMP/out" ||
		fail "clone k2 has no merged pages"
done
echo "multi_guest: three guests filled and verified (one with layout=mix); two more with dedup, two clones"

