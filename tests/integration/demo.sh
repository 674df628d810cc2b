#!/bin/sh
# foldvm demo (small): prints its table with every guest verified.
. "$(dirname "$0")/lib.sh"
require_kvm

for bin in $VARIANTS; do
	"$BUILDDIR/$bin" demo --guests 2 --mem 64M --seconds 0 --quiet \
		--log-dir "$TMP/logs" >"$TMP/out" 2>"$TMP/err" ||
		{ cat "$TMP/out" "$TMP/err"; fail "$bin demo failed"; }
	expect_in "$TMP/out" '^guest1 .* OK \(' '^guest2 .* OK \(' \
		'page-cache content from: /usr/lib /usr/share'
	[ "$(grep -c ' OK (' "$TMP/out")" -eq 2 ] || fail "not every guest verified"
done
echo "demo: ok"
