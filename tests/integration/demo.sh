#!/bin/sh
# foldvm demo (small): every guest verifies, and the kernel-measured saving
# is there with dedup on and absent with --no-dedup.
. "$(dirname "$0")/lib.sh"
require_kvm

saved_mib() {
	sed -n 's/^host (kernel): .*: saved \([0-9.]*\) MiB.*/\1/p' "$1"
}

for bin in $VARIANTS; do
	# the demo waits for two engine passes before its --seconds: the
	# saving below does not depend on how fast this host is
	"$BUILDDIR/$bin" demo --guests 2 --mem 64M --seconds 0 --quiet \
		--log-dir "$TMP/logs" >"$TMP/out" 2>"$TMP/err" ||
		{ cat "$TMP/out" "$TMP/err"; fail "$bin demo failed"; }
	expect_in "$TMP/out" '^guest1 .* OK \(' '^guest2 .* OK \(' \
		'page-cache content from: /usr/lib /usr/share' \
		'^DEDUP ' '^guest1 +[0-9.]+ +[0-9.]+ +[0-9.]+ ' \
		'^host \(engine\): saved [0-9.]+ MiB'
	[ "$(grep -c ' OK (' "$TMP/out")" -eq 2 ] || fail "not every guest verified"
	saved=$(saved_mib "$TMP/out")
	# two 64 MiB guests share about 10 MiB of content plus zeroed pages
	awk -v s="$saved" 'BEGIN { exit !(s >= 8) }' ||
		{ cat "$TMP/out"; fail "demo saved only '$saved' MiB"; }

	"$BUILDDIR/$bin" demo --no-dedup --guests 2 --mem 64M --seconds 0 --quiet \
		--log-dir "$TMP/logs" >"$TMP/out" 2>"$TMP/err" ||
		{ cat "$TMP/out" "$TMP/err"; fail "$bin demo --no-dedup failed"; }
	! grep -q '^DEDUP ' "$TMP/out" || fail "--no-dedup still merged"
done
echo "demo: guests verified; kernel-measured saving ${saved} MiB with dedup"
