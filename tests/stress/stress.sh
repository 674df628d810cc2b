#!/bin/sh
# make stress: the long forms of the reliability tests (docs/dedup.md,
# "Unmerging on request ..., and memory under pressure"), outside
# `make check`.  As root, with /dev/kvm.
#  1. racing merges and unmerges: dedup_race until at least
#     STRESS_EVENTS (default 1,000,000) merges + unmerges, with forced
#     compaction and a device writer beside it; every guest verifies, no
#     write lost;
#  2. STRESS_CYCLES (default 100) create/destroy cycles of a guest that
#     merges with a resident one (each cycle waits until its merges are
#     done: two passes without a change): the worker's open files, VMAs, RSS and the store come back to
#     where they were after the first cycle;
#  3. a soak of STRESS_SOAK_MINUTES (default 30): three guests of one
#     domain churn, idle and verify ten times over.
# Prints a summary; exits non-zero on the first failure.
set -u
BUILDDIR=${FOLDVM_BUILDDIR:-$(pwd)}
EVENTS=${STRESS_EVENTS:-1000000}
CYCLES=${STRESS_CYCLES:-100}
SOAK_MINUTES=${STRESS_SOAK_MINUTES:-30}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/foldvm-stress.XXXXXX")
FVPID=
trap '[ -n "$FVPID" ] && kill -9 $FVPID 2>/dev/null; rm -rf "$TMP"' EXIT
SUMMARY="$TMP/summary"
: > "$SUMMARY"

fail() { echo "STRESS FAIL: $*" >&2; cat "$SUMMARY"; exit 1; }
say() { echo "$*" | tee -a "$SUMMARY"; }
now() { date +%s; }
[ "$(id -u)" = 0 ] || fail "run as root (forced compaction, max_map_count)"
[ -c /dev/kvm ] || fail "no /dev/kvm"
case "$EVENTS$CYCLES$SOAK_MINUTES" in *[!0-9]*) fail "counts must be numbers";; esac

# ---- 1. racing merges and unmerges ----
t0=$(now)
FOLDVM_STRESS_EVENTS=$EVENTS "$BUILDDIR/tests/integration/dedup_race" >"$TMP/race.out" 2>&1 ||
	{ cat "$TMP/race.out"; fail "dedup_race"; }
line=$(grep '^dedup_race: [0-9]* rounds x' "$TMP/race.out")
merges=$(echo "$line" | sed -n 's/.* \([0-9]*\) merges (.*/\1/p')
unmerges=$(echo "$line" | sed -n 's/.* \([0-9]*\) unmerges; 0 lost writes.*/\1/p')
say "1. racing: $((merges + unmerges)) merge/unmerge events ($merges merges, $unmerges unmerges), 0 lost writes, $(( $(now) - t0 )) s"
say "   $line"

# ---- 2. create/destroy cycles ----
RUN="$TMP/run"
CTL="$BUILDDIR/foldctl --run-dir $RUN"
"$BUILDDIR/foldvm" run --persist --dedup --quiet --run-dir "$RUN" --log-dir "$TMP/logs" \
	>"$TMP/fv.out" 2>&1 &
FVPID=$!
wait_until() { # SECONDS COMMAND...
	n=$(( $1 * 10 )); shift
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1)); [ "$n" -gt 0 ] || return 1; sleep 0.1
	done
}
wait_until 60 test -S "$RUN/host.qmp" || fail "no host socket"
stat_of() { # GUEST KEY
	$CTL --json stats "$1" | sed -n "s/.*\"$2\": *\([0-9]*\).*/\1/p"
}
host_of() { $CTL --json stats | sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" | head -n 1; }
listed() { $CTL --json list | grep -q "\"name\": *\"$1\""; }
one_guest() { [ "$(host_of guests)" = 1 ]; }
passes_over() { [ "$(stat_of "$1" full-passes)" -ge "$2" ] 2>/dev/null; }
# Converged: its merged pages did not change over two full passes.
converged() {
	m1=$(stat_of cyc pages-merged) p=$(stat_of cyc full-passes)
	wait_until 60 passes_over cyc $((${p:-0} + 2)) || return 1
	[ "${m1:-0}" -gt 2000 ] && [ "$(stat_of cyc pages-merged)" = "$m1" ]
}
merged_over() { [ "$(stat_of "$1" pages-merged)" -gt "$2" ] 2>/dev/null; }
$CTL create "name=anchor,mem=64M,domain=c,shared=50,steps=fill+wait" >/dev/null || fail "create anchor"
pid=$($CTL --json list | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["pid"])')
measure() {
	fds=$(ls "/proc/$pid/fd" | wc -l)
	vmas=$(wc -l < "/proc/$pid/maps")
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
	store=$(host_of store-bytes)
}
t0=$(now)
i=0
while [ "$i" -lt "$CYCLES" ]; do
	$CTL create "name=cyc,mem=64M,domain=c,shared=50,steps=fill+wait" >/dev/null ||
		fail "cycle $i: create"
	# Each cycle ends converged, so each ends in the same state.
	wait_until 120 converged || fail "cycle $i: cyc never converged"
	$CTL destroy cyc >/dev/null || fail "cycle $i: destroy"
	wait_until 60 sh -c "! $CTL --json list | grep -q '\"name\": *\"cyc\"'" ||
		fail "cycle $i: not reaped"
	# what the anchor's engine holds once the guest is gone
	wait_until 30 one_guest || fail "cycle $i: guest still counted"
	i=$((i + 1))
	if [ "$i" = 1 ]; then
		measure; fds1=$fds vmas1=$vmas rss1=$rss store1=$store
	fi
done
measure
say "2. cycles: $CYCLES create/destroy cycles in $(( $(now) - t0 )) s; after cycle 1 -> after cycle $CYCLES: fds $fds1 -> $fds, VMAs $vmas1 -> $vmas, RSS $((rss1 >> 10)) -> $((rss >> 10)) MiB, store $((store1 >> 20)) -> $((store >> 20)) MiB"
[ "$fds" -le "$fds1" ] || fail "open files grew"
[ "$vmas" -le $((vmas1 + 16)) ] || fail "VMAs grew"
[ "$rss" -le $((rss1 + 16384)) ] || fail "RSS grew by more than 16 MiB"
[ "$store" -le $((store1 + 1048576)) ] || fail "the store grew"
[ "$(stat_of anchor pages-merged)" -ge 0 ] || fail "anchor gone"
kill "$FVPID"; wait "$FVPID" 2>/dev/null; FVPID=

# ---- 3. soak ----
sleep_s=$(( SOAK_MINUTES * 60 / 10 ))
steps=fill
k=0
while [ "$k" -lt 10 ]; do steps="$steps+churn:16384+sleep:$sleep_s+verify"; k=$((k + 1)); done
t0=$(now)
"$BUILDDIR/foldvm" run --dedup --quiet --no-control --log-dir "$TMP/logs" \
	--vm "name=k1,mem=128M,domain=k,shared=40,steps=$steps" \
	--vm "name=k2,mem=128M,domain=k,shared=40,steps=$steps" \
	--vm "name=k3,mem=128M,domain=k,shared=40,steps=$steps" >"$TMP/soak.out" 2>&1 ||
	{ cat "$TMP/soak.out"; fail "soak"; }
for g in k1 k2 k3; do
	grep -Eq "^$g .*OK \([0-9]+ pages, 0 bad\)" "$TMP/soak.out" ||
		{ cat "$TMP/soak.out"; fail "soak: $g did not verify"; }
done
say "3. soak: $(( ($(now) - t0) / 60 )) min, 3 guests x 10 rounds of churn (16384 pages), idle, verify: all verified"
say "   $(grep 'merges,' "$TMP/soak.out")"
echo
echo "=== make stress: passed ==="
cat "$SUMMARY"
