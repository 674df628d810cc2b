#!/bin/sh
# The engine on a kernel without UFFD_FEATURE_WP_UNPOPULATED (Linux < 6.4,
# such as the nested bed's Debian 6.1; issue 29): it opens its userfaultfd
# without the feature and reads a page in before it write-protects it for a
# merge (memory/guest_mem.c, gmem_protect).  FOLDVM_UFFD_NO_WP_UNPOPULATED=1
# asks for that way on this kernel; dedup_race (racing vCPUs and a device
# thread on pages being merged, onto store frames and in place) and
# dedup_in_place must still lose no write, and the engine says which way it
# runs.
. "$(dirname "$0")/lib.sh"
require_kvm
for t in dedup_race dedup_in_place; do
	[ -x "$BUILDDIR/tests/integration/$t" ] || fail "$t not built"
	FOLDVM_UFFD_NO_WP_UNPOPULATED=1 timeout 900 "$BUILDDIR/tests/integration/$t" >"$TMP/$t.out" 2>&1 ||
		{ cat "$TMP/$t.out"; fail "$t without WP_UNPOPULATED: exit $?"; }
	expect_in "$TMP/$t.out" 'no WP_UNPOPULATED \(Linux < 6\.4\): pages are read in before'
done
expect_in "$TMP/dedup_race.out" '; 0 lost writes$' 'pacing: .*0 lost writes' 'unmerge on request: .*0 lost writes'
echo "uffd_fallback: $(grep -o '[0-9]* merge attempts, [0-9]* merges ([0-9]* in place)' "$TMP/dedup_race.out"), 0 lost writes; dedup_in_place passed"
