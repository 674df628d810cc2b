#!/bin/sh
# Memory pressure pauses merging (docs/dedup.md, "Memory pressure"), with
# real pressure: a reader in a small memory cgroup of its own re-reads a
# file four times its limit, so its page cache thrashes and the kernel's
# PSI counts it stalled on memory (host-wide, /proc/pressure/memory):
#  - foldvm (--dedup-pressure 2) pauses new merges once PSI's "some avg10"
#    reaches 2%: MEMORY_PRESSURE with paused true on host.qmp, the figures
#    in query-dedup-host;
#  - guests created while it is paused merge nothing (checked between two
#    reads that both say paused, with no pause counted in between);
#  - once the reader stops and pressure falls below half the threshold:
#    MEMORY_PRESSURE with paused false, and the guests merge.
# Where no memory cgroup can be made, or the reader makes no pressure
# (another kernel), or foldvm reads a cgroup's pressure the reader is not
# in, the test says so and SKIPs, loudly.  Waits are bounded polls on
# PSI's own figures and events, never a sleep that must be long enough.
. "$(dirname "$0")/lib.sh"
require_kvm
command -v socat >/dev/null || fail "socat missing (scripts/setup installs it)"

skip() {
	echo "##########################################################" >&2
	echo "SKIP: $*: memory-pressure pausing NOT tested" >&2
	echo "##########################################################" >&2
	exit 77
}
[ -r /proc/pressure/memory ] && grep -q '^some avg10=' /proc/pressure/memory 2>/dev/null ||
	skip "this kernel reports no memory pressure (PSI)"

RUN="$TMP/run"
CTL="$BUILDDIR/foldctl --run-dir $RUN"

# A memory cgroup for the reader only.
if [ -d /sys/fs/cgroup/memory ] && mkdir "/sys/fs/cgroup/memory/fv-pressure.$$" 2>/dev/null; then
	CG=/sys/fs/cgroup/memory/fv-pressure.$$
	echo $((32 << 20)) > "$CG/memory.limit_in_bytes" || skip "cannot limit $CG"
elif grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null &&
     mkdir "/sys/fs/cgroup/fv-pressure.$$" 2>/dev/null; then
	CG=/sys/fs/cgroup/fv-pressure.$$
	echo $((32 << 20)) > "$CG/memory.max" || skip "cannot limit $CG"
else
	skip "no memory cgroup can be made here (not root, or no memory controller)"
fi
READER=
cleanup() {
	[ -n "$READER" ] && kill "$READER" 2>/dev/null
	kill -9 ${FVPID:-} 2>/dev/null
	wait_for 20 rmdir "$CG"
	rm -rf "$TMP"
}
trap cleanup EXIT

# some avg10 now, in hundredths of a percent
psi_some() {
	sed -n 's/^some avg10=\([0-9]*\)\.\([0-9][0-9]\).*/\1\2/p' /proc/pressure/memory |
		sed 's/^0*\([0-9]\)/\1/'
}
# host.qmp figure KEY
hostfig() {
	$CTL --json stats | python3 -c '
import json, sys
v = json.load(sys.stdin).get(sys.argv[1])
print(str(v).lower() if isinstance(v, bool) else v)' "$1"
}
merged() { $CTL --json stats "$1" | sed -n 's/.*"pages-merged": *\([0-9]*\).*/\1/p'; }

"$BUILDDIR/foldvm" run --persist --dedup --quiet --run-dir "$RUN" --log-dir "$TMP/logs" \
	--dedup-pressure 2 >"$TMP/fv.out" 2>&1 &
FVPID=$!
wait_for 60 test -S "$RUN/host.qmp" || { cat "$TMP/fv.out"; fail "no host socket"; }
$CTL create "name=w,mem=64M,domain=w,steps=fill+wait" >/dev/null || fail "create w"
wait_for 60 test "$(hostfig memory-pressure-known)" = true ||
	{ cat "$TMP/fv.out"; skip "foldvm cannot read the pressure figures"; }
[ "$(hostfig memory-pressure-cgroup)" = false ] ||
	skip "foldvm reads its own cgroup's pressure, which the reader does not share"
[ "$(hostfig memory-pressure-threshold)" -eq 200 ] || fail "threshold not 2%"

# Events from here on.
qmp_open "$RUN/host.qmp" "$TMP/ev" 7 || fail "no QMP connection"
qmp_send 7 "$TMP/ev" '{"execute":"qmp_capabilities"}' || fail "no negotiation"

# The reader: a file four times its cgroup's limit, read over and over.
dd if=/dev/urandom of="$TMP/big" bs=1M count=128 status=none || fail "no file to read"
sh -c 'echo $$ > "$1/cgroup.procs" && exec sh -c "while :; do cat \"\$0\" >/dev/null; done" "$2"' \
	sh "$CG" "$TMP/big" &
READER=$!

# Pressure rises (PSI's own figure), then foldvm pauses.
wait_for 120 test "$(psi_some)" -ge 400 ||
	skip "the reader raised memory pressure to only $(psi_some)/100 % in 120 s"
wait_for 60 grep -q '"MEMORY_PRESSURE".*"memory-pressure-paused": *true' "$TMP/ev/out" ||
	{ cat "$TMP/ev/out"; fail "PSI at $(psi_some)/100 %, no MEMORY_PRESSURE paused event"; }
grep '"MEMORY_PRESSURE"' "$TMP/ev/out" | head -n 1 |
	grep -Eq '"memory-pressure-some-avg10": *[0-9]+' || fail "the event has no figures"
pauses=$(hostfig memory-pressure-pauses)
[ "$(hostfig memory-pressure-paused)" = true ] && [ "$pauses" -ge 1 ] ||
	fail "query-dedup-host does not say paused"

# Guests made while paused merge nothing (in w's domain: the engine that
# paused, whose pause count is the proof that it never resumed meanwhile).
for g in p1 p2; do
	$CTL create "name=$g,mem=64M,domain=w,shared=60,steps=fill+wait" >/dev/null ||
		fail "create $g"
done
# (Filled once the engine has passed over them at least twice.)
wait_for 120 sh -c "$CTL --json stats p2 | grep -q '\"full-passes\": *[2-9]'" ||
	fail "no passes over p2"
still=unknown
if [ "$(hostfig memory-pressure-paused)" = true ]; then
	m1=$(merged p1) m2=$(merged p2)
	if [ "$(hostfig memory-pressure-paused)" = true ] &&
	   [ "$(hostfig memory-pressure-pauses)" -eq "$pauses" ]; then
		[ "$m1" -eq 0 ] && [ "$m2" -eq 0 ] ||
			fail "merged while paused: p1 $m1, p2 $m2 pages"
		still=yes
	fi
fi
[ "$still" = yes ] || echo "pressure: (pressure fell before the paused guests could be checked)"

# The reader stops; pressure falls below 1%; merging goes on.
kill "$READER"; wait "$READER" 2>/dev/null; READER=
wait_for 300 grep -q '"MEMORY_PRESSURE".*"memory-pressure-paused": *false' "$TMP/ev/out" ||
	{ cat "$TMP/ev/out"; fail "pressure at $(psi_some)/100 %, no MEMORY_PRESSURE resume event"; }
qmp_close "$TMP/ev" 7
wait_for 120 test "$(merged p1)" -gt 1000 || fail "p1 did not merge after the pressure"
echo "pressure: paused at PSI >= 2% ($pauses pause(s)), guests made meanwhile merged nothing ($still), merging went on after"
