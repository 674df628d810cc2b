#!/bin/sh
# Memory pressure pauses merging (docs/dedup.md, "Unmerging on request ...,
# and memory under pressure"), with real pressure: a writer in a 32 MiB
# memory cgroup of its own walks 96 MiB of its memory over and over, with a
# swap file this test makes, so it swaps all the time and the kernel's PSI
# counts it stalled on memory (host-wide, /proc/pressure/memory; about 20%
# "some" on this project's machines):
#  - foldvm (--dedup-pressure 2) pauses new merges once PSI's "some avg10"
#    reaches 2%: MEMORY_PRESSURE with paused true on host.qmp, the figures
#    in query-dedup-host;
#  - guests created while it is paused merge nothing (checked between two
#    reads that both say paused, with no pause counted in between);
#  - once the reader stops and pressure falls below half the threshold:
#    MEMORY_PRESSURE with paused false, and the guests merge.
# Where no swap file or memory cgroup can be made, or the writer makes no pressure
# (another kernel), or foldvm reads a cgroup's pressure the reader is not
# in, the test says so and SKIPs, loudly.  (Reading a file through a
# small cgroup's page cache made no pressure here: clean pages go cheaply.)  Waits are bounded polls on
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

# Swap for the writer.
SWAP="$TMP/swapfile"
dd if=/dev/zero of="$SWAP" bs=1M count=256 status=none 2>/dev/null &&
	chmod 600 "$SWAP" && mkswap -q "$SWAP" >/dev/null 2>&1 ||
	skip "cannot make a swap file in $TMP"
swapon "$SWAP" 2>"$TMP/swapon.err" || { rm -f "$SWAP"; skip "swapon refused: $(cat "$TMP/swapon.err")"; }

# A memory cgroup for the writer only.  The writer must stall on memory,
# never die: on a loaded host reclaim can be slow enough for the OOM
# killer to take it (it did in unmerge.sh and swap.sh), and a writer
# killed makes no pressure.  So v1's OOM killer is off for the cgroup (a
# task at the limit waits for reclaim, which the swap file makes
# possible), and v2 limits with memory.high (reclaim and throttling,
# which PSI counts as stalls, never the OOM killer).
if [ -d /sys/fs/cgroup/memory ] && mkdir "/sys/fs/cgroup/memory/fv-pressure.$$" 2>/dev/null; then
	CG=/sys/fs/cgroup/memory/fv-pressure.$$
	echo $((32 << 20)) > "$CG/memory.limit_in_bytes" || skip "cannot limit $CG"
	echo 1 > "$CG/memory.oom_control" || skip "cannot turn off the OOM killer of $CG"
elif grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null &&
     mkdir "/sys/fs/cgroup/fv-pressure.$$" 2>/dev/null; then
	CG=/sys/fs/cgroup/fv-pressure.$$
	echo $((32 << 20)) > "$CG/memory.high" || skip "cannot limit $CG"
else
	skip "no memory cgroup can be made here (not root, or no memory controller)"
fi
READER=
cleanup() {
	[ -n "$READER" ] && kill "$READER" 2>/dev/null
	# the writer may wait at its limit: a signal still ends it
	for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	kill -9 ${FVPID:-} 2>/dev/null
	wait_for 20 rmdir "$CG"
	swapoff "$SWAP" 2>/dev/null
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
# For wait_for, which re-runs a command (an argument's $(...) would be
# read once): PSI below / at least N hundredths, a host figure's value,
# a guest's merged pages above N.
psi_below() { [ "$(psi_some)" -lt "$1" ]; }
psi_at_least() { [ "$(psi_some)" -ge "$1" ]; }
hostfig_is() { [ "$(hostfig "$1")" = "$2" ]; }
merged_over() { [ "$(merged "$1")" -gt "$2" ] 2>/dev/null; }

"$BUILDDIR/foldvm" run --persist --dedup --quiet --run-dir "$RUN" --log-dir "$TMP/logs" \
	--dedup-pressure 2 >"$TMP/fv.out" 2>&1 &
FVPID=$!
wait_for 60 test -S "$RUN/host.qmp" || { cat "$TMP/fv.out"; fail "no host socket"; }
# Events from the start: a pause is never missed.
qmp_open "$RUN/host.qmp" "$TMP/ev" 7 || fail "no QMP connection"
qmp_send 7 "$TMP/ev" '{"execute":"qmp_capabilities"}' || fail "no negotiation"
# Pressure left by whatever ran before (another test) must be gone first,
# so that the engine starts unpaused.
wait_for 300 psi_below 100 ||
	skip "memory pressure on this host stayed at $(psi_some)/100 % for 5 minutes"
$CTL create "name=w,mem=64M,domain=w,steps=fill+wait" >/dev/null || fail "create w"
wait_for 60 hostfig_is memory-pressure-known true ||
	{ cat "$TMP/fv.out"; skip "foldvm cannot read the pressure figures"; }
[ "$(hostfig memory-pressure-cgroup)" = false ] ||
	skip "foldvm reads its own cgroup's pressure, which the writer does not share"
[ "$(hostfig memory-pressure-threshold)" -eq 200 ] || fail "threshold not 2%"
if [ "$(hostfig memory-pressure-paused)" = true ]; then
	# it rose again meanwhile: start from its end
	wait_for 300 grep -q '"MEMORY_PRESSURE".*"memory-pressure-paused": *false' "$TMP/ev/out" ||
		skip "memory pressure on this host would not stay below 2%"
	: > "$TMP/ev/out"
fi

# The writer: three times its cgroup's limit, a byte a page, over and over.
sh -c 'echo $$ > "$1/cgroup.procs" && exec python3 -c "
b = bytearray(96 << 20)
while True:
    for i in range(0, len(b), 4096):
        b[i] = (b[i] + 1) & 255
"' sh "$CG" &
READER=$!

# Pressure rises (PSI's own figure), then foldvm pauses.
wait_for 120 psi_at_least 400 ||
	skip "the writer raised memory pressure to only $(psi_some)/100 % in 120 s"
wait_for 60 grep -q '"MEMORY_PRESSURE".*"memory-pressure-paused": *true' "$TMP/ev/out" ||
	{ grep -v PASS_COMPLETE "$TMP/ev/out"; $CTL --json stats | grep pressure;
	  fail "PSI at $(psi_some)/100 %, no MEMORY_PRESSURE paused event"; }
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

# The writer stops; pressure falls below 1%; merging goes on.
kill "$READER"; wait "$READER" 2>/dev/null; READER=
wait_for 300 grep -q '"MEMORY_PRESSURE".*"memory-pressure-paused": *false' "$TMP/ev/out" ||
	{ cat "$TMP/ev/out"; fail "pressure at $(psi_some)/100 %, no MEMORY_PRESSURE resume event"; }
qmp_close "$TMP/ev" 7
wait_for 120 merged_over p1 1000 || fail "p1 did not merge after the pressure"
echo "pressure: paused at PSI >= 2% ($pauses pause(s)), guests made meanwhile merged nothing ($still), merging went on after"
