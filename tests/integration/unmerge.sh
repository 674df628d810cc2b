#!/bin/sh
# dedup-unmerge (docs/qmp.md, docs/dedup.md "Unmerging on request"), driven
# as an operator would, through foldctl and raw QMP on the sockets:
#  - refused with the figures, and nothing unmerged, when the memory the
#    copies need is not under the run's cgroup limit (a memory cgroup the
#    test makes: v2's memory.max, or v1's memory.limit_in_bytes where the
#    memory controller is on v1; skipped, loudly, where there is neither).
#    Only foldvm is in that cgroup, every guest's merging is paused, and
#    the limit leaves the guests half of what the copies need (24 MiB or
#    more) as headroom: nothing but the refused unmerge can meet it;
#  - one guest (host socket, routed to its domain's worker), one guest
#    from its own socket, a whole domain: merging goes off, every shared
#    page gets a private copy, the progress fields go to zero, the kernel
#    counts the copies (anon-bytes grow), other guests stay as they were;
#    the count the unmerge reports is read while nothing can change it
#    (the guest's merging paused, the guest idle);
#  - merging switched back on merges again;
#  - bad arguments get clear errors.
# That no write is lost while an unmerge races writers is dedup_race's.
. "$(dirname "$0")/lib.sh"
require_kvm
command -v socat >/dev/null || fail "socat missing (scripts/setup installs it)"

RUN="$TMP/run"
CTL="$BUILDDIR/foldctl --run-dir $RUN"

# stat GUEST KEY: a number (or true/false) of the guest's query-dedup
stat() {
	$CTL --json stats "$1" | python3 -c '
import json, sys
v = json.load(sys.stdin).get(sys.argv[1])
print(str(v).lower() if isinstance(v, bool) else v)' "$2"
}
shared() { echo $(( $(stat "$1" pages-merged) + $(stat "$1" pages-zero) )); }
merged_over() { [ "$(stat "$1" pages-merged)" -gt "$2" ] 2>/dev/null; }
shared_at_least() { [ "$(shared "$1")" -ge "$2" ] 2>/dev/null; }
unmerged() {
	[ "$(stat "$1" unmerging)" = false ] && [ "$(shared "$1")" -eq 0 ] 2>/dev/null
}
# set_merging GUEST true|false: dedup-set on the guest's own socket
set_merging() {
	$CTL raw "$1" "{\"execute\":\"dedup-set\",\"arguments\":{\"enabled\":$2}}" \
		>"$TMP/set.out" 2>&1
	grep -q '"return"' "$TMP/set.out" || { cat "$TMP/set.out"; fail "dedup-set $1 enabled=$2"; }
}

# A memory cgroup of our own, for the refusal.  Only foldvm and the
# workers it forks are in it: this shell joins it to start foldvm and
# leaves it at once, so foldctl, python3 and the page cache they read are
# charged elsewhere.
CG= LIMIT= USAGE= NOLIMIT= PEAK=
if grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null &&
   mkdir "/sys/fs/cgroup/fv-unmerge.$$" 2>/dev/null; then
	CG=/sys/fs/cgroup/fv-unmerge.$$ LIMIT=memory.max USAGE=memory.current NOLIMIT=max
	PARENT=/sys/fs/cgroup PEAK=memory.peak
elif [ -d /sys/fs/cgroup/memory ] &&
     mkdir "/sys/fs/cgroup/memory/fv-unmerge.$$" 2>/dev/null; then
	CG=/sys/fs/cgroup/memory/fv-unmerge.$$ LIMIT=memory.limit_in_bytes
	USAGE=memory.usage_in_bytes NOLIMIT=-1 PARENT=/sys/fs/cgroup/memory
	PEAK=memory.max_usage_in_bytes
	# Belt and braces: on v1 a task that met the limit after all would
	# wait for it to rise (as in swap.sh), not be OOM-killed.
	echo 1 > "$CG/memory.oom_control" || fail "cannot turn off the OOM killer of $CG"
else
	echo "##########################################################" >&2
	echo "SKIP (part): no memory cgroup can be made here (not root, or no memory" >&2
	echo "controller): the refusal under a cgroup limit is NOT tested" >&2
	echo "##########################################################" >&2
fi
if [ -n "$CG" ]; then
	echo $$ > "$CG/cgroup.procs" || fail "cannot join $CG"
fi
cleanup() {
	kill -9 ${FVPID:-} 2>/dev/null
	if [ -n "$CG" ]; then
		echo $$ > "$PARENT/cgroup.procs" 2>/dev/null
		echo $NOLIMIT > "$CG/$LIMIT" 2>/dev/null
		wait_for 20 rmdir "$CG"
	fi
	rm -rf "$TMP"
}

persist_start foldvm "$RUN"
trap cleanup EXIT
if [ -n "$CG" ]; then
	echo $$ > "$PARENT/cgroup.procs" || fail "cannot leave $CG"
fi
for g in a1 a2; do
	$CTL create "name=$g,mem=128M,domain=red,zero=20,shared=40,steps=fill+wait" >/dev/null ||
		fail "create $g"
done
for g in b1 b2; do
	$CTL create "name=$g,mem=64M,domain=blue,shared=40,steps=fill+wait" >/dev/null ||
		fail "create $g"
done
# a1 shares about 12,600 of its 32,768 pages (shared=40; its zero pages
# are the home file's holes, never counted): the refusal below wants
# 48 MiB of them shared.
wait_for 120 shared_at_least a1 12288 || { $CTL stats a1; fail "a1 never shared 12288 pages"; }
wait_for 120 merged_over a2 4000 || fail "a2 never merged"
wait_for 120 merged_over b2 1000 || fail "b2 never merged"

# ---- bad requests ----
$CTL unmerge >/dev/null 2>&1 && fail "unmerge without a guest"
$CTL unmerge a1 --rate -5 >/dev/null 2>&1 && fail "a negative rate"
$CTL unmerge --domain nope >"$TMP/out" 2>&1 && fail "an unknown domain"
expect_in "$TMP/out" "no guest of trust domain 'nope'"
$CTL unmerge nope >"$TMP/out" 2>&1 && fail "an unknown guest"
expect_in "$TMP/out" "no guest named 'nope'"
$CTL raw host '{"execute":"dedup-unmerge","arguments":{"vm":"a1","domain":"red"}}' \
	>"$TMP/out" 2>&1
expect_in "$TMP/out" "give one of 'vm' \(a guest\) and 'domain'"
$CTL raw a1 '{"execute":"dedup-unmerge","arguments":{"vm":"a2"}}' >"$TMP/out" 2>&1
expect_in "$TMP/out" '"GenericError"'
[ "$(stat a1 enabled)" = true ] || fail "a bad request switched merging off"

# From here on nothing merges: a paused guest's pages merge no more
# (dedup_guest_set_merging returns under the engine lock, every merge
# path checks paused_merging under it, and its candidates are dropped),
# and the idle guests write nothing, so they unmerge nothing either: the
# counts read below are exact, and the cgroup's use holds still.
for g in a1 a2 b1 b2; do set_merging $g false; done

# ---- refused: the copies would not fit under the cgroup's limit ----
# With use holding still, the room the worker measures is need / 2 (no
# more than a few pages off), so the unmerge is refused every time, and
# the guests keep need / 2 >= 24 MiB of headroom, which nothing in them
# is about to take.
if [ -n "$CG" ]; then
	shared0=$(shared a1)
	need=$(( shared0 * 4096 ))
	[ "$need" -ge $((48 << 20)) ] || fail "a1 shares only $((need >> 20)) MiB"
	usage=$(cat "$CG/$USAGE")
	limit=$(( usage + need / 2 ))
	echo $limit > "$CG/$LIMIT" || fail "cannot set $CG/$LIMIT"
	$CTL unmerge a1 >"$TMP/out" 2>&1
	rc=$?
	after_use=$(cat "$CG/$USAGE")
	echo $NOLIMIT > "$CG/$LIMIT"
	[ "$rc" -ne 0 ] || { cat "$TMP/out"; fail "unmerge not refused"; }
	expect_in "$TMP/out" "unmerging needs up to [0-9]+ MiB and only [0-9]+ MiB is left under the cgroup limit; nothing was unmerged"
	[ "$(stat a1 unmerging)" = false ] && [ "$(stat a1 unmerge-pages-left)" -eq 0 ] &&
		[ "$(shared a1)" -eq "$shared0" ] || fail "a refused unmerge changed the guest"
	echo "unmerge: refused under a cgroup limit ($CG: $((need >> 20)) MiB needed," \
	     "limit $((limit >> 20)) MiB, used $((usage >> 20)) MiB before, $((after_use >> 20)) MiB after)"
fi

# ---- one guest, from the host socket (the domain's worker does it) ----
before=$(stat a1 anon-bytes)
pages=$(shared a1)
a2_merged=$(stat a2 pages-merged)
$CTL unmerge a1 >"$TMP/out" || fail "unmerge a1: $(cat "$TMP/out")"
expect_in "$TMP/out" "^unmerging $pages shared pages"
[ "$(stat a1 enabled)" = false ] || fail "merging on for a1"
wait_for 120 unmerged a1 || { $CTL stats a1; fail "a1 not unmerged"; }
[ "$(stat a1 unmerge-pages-left)" -eq 0 ] && [ "$(stat a1 unmerge-pages-done)" -gt 0 ] ||
	fail "a1's progress fields"
after=$(stat a1 anon-bytes)
# The kernel's count: every shared page (dropped zero pages too) got a
# page of its own; the guest idles, so nothing else changed (10% slack
# for the engine's view of the store, which is not the guest's).
[ $(( after - before )) -ge $(( pages * 4096 * 9 / 10 )) ] ||
	fail "anon-bytes of a1 grew by $(( after - before )), $pages pages were shared"
[ "$(stat a2 unmerging)" = false ] || fail "a2 was touched"
[ "$(stat a2 pages-merged)" -eq "$a2_merged" ] || fail "a2's merged pages changed"

# ---- one guest from its own socket, at no rate limit ----
$CTL raw a2 '{"execute":"dedup-unmerge","arguments":{"rate":0}}' >"$TMP/out"
expect_in "$TMP/out" '"return":\{"pages":[1-9][0-9]*\}'
wait_for 120 unmerged a2 || fail "a2 not unmerged"

# ---- a whole domain, merging on: the unmerge switches it off ----
for g in b1 b2; do set_merging $g true; done
$CTL --json unmerge --domain blue >"$TMP/out" || fail "unmerge --domain blue"
expect_in "$TMP/out" '"pages": *[1-9]'
for g in b1 b2; do
	[ "$(stat $g enabled)" = false ] || fail "merging still on for $g"
	wait_for 120 unmerged $g || fail "$g not unmerged"
done

# ---- merging back on merges again ----
for g in a1 a2; do set_merging $g true; done
wait_for 120 merged_over a1 4000 || fail "a1 did not merge again"
$CTL raw host '{"execute":"query-commands"}' >"$TMP/out"
expect_in "$TMP/out" '"dedup-unmerge"'
echo "unmerge: one guest ($pages pages), from its own socket, a domain; merging again after"
