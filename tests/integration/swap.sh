#!/bin/sh
# Merged memory under swap (docs/dedup.md, "Unmerging on request ..., and
# memory under pressure"): two guests of one domain merge, churn and idle
# in a memory cgroup whose limit comes SQUEEZE_MIB (64) below its use while
# they idle, with a swap file this test makes (and removes).  The kernel
# swaps out private pages and store frames and brings them back; merging,
# unmerging and churn go on; both guests verify every page; the engine's
# books agree with themselves.  Reported: the most private memory and store
# the kernel held in swap (VmSwap; the store memfd's blocks less what
# fincore finds resident) and the pages swapped in meanwhile.  Where no
# swap file can be enabled (no root, a file system that cannot hold one) or
# no memory cgroup made, it SKIPs, loudly.
. "$(dirname "$0")/lib.sh"
require_kvm

skip() {
	echo "##########################################################" >&2
	echo "SKIP: $*: merged memory under swap NOT tested" >&2
	echo "##########################################################" >&2
	exit 77
}
command -v mkswap >/dev/null && command -v swapon >/dev/null &&
	command -v fincore >/dev/null || skip "mkswap, swapon or fincore missing (util-linux)"

SWAP="$TMP/swapfile"
SQUEEZE_MIB=${FOLDVM_SWAP_SQUEEZE_MIB:-64}
CG= FVPID= LIMIT= USAGE=
cleanup() {
	[ -n "$FVPID" ] && kill -9 "$FVPID" 2>/dev/null
	if [ -n "$CG" ]; then
		for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
		wait_for 20 rmdir "$CG"
	fi
	swapoff "$SWAP" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

# 384 MiB of swap, written (a sparse or preallocated file may be refused).
dd if=/dev/zero of="$SWAP" bs=1M count=384 status=none 2>/dev/null &&
	chmod 600 "$SWAP" && mkswap -q "$SWAP" >/dev/null 2>&1 ||
	skip "cannot make a swap file in $TMP"
swapon "$SWAP" 2>"$TMP/swapon.err" || skip "swapon refused: $(cat "$TMP/swapon.err")"

# A memory cgroup of our own; its limit is set once the guests idle.
if [ -d /sys/fs/cgroup/memory ] && mkdir "/sys/fs/cgroup/memory/fv-swap.$$" 2>/dev/null; then
	CG=/sys/fs/cgroup/memory/fv-swap.$$ LIMIT=memory.limit_in_bytes USAGE=memory.usage_in_bytes
	echo 100 > "$CG/memory.swappiness" 2>/dev/null
	# The test wants the kernel to swap, not to kill: with the cgroup's
	# OOM killer off, a task at the limit waits for reclaim (which swap
	# makes possible) instead of being killed when reclaim is slow - as
	# on a loaded host, where it once killed the worker here.
	echo 1 > "$CG/memory.oom_control" ||
		skip "cannot turn off the OOM killer of $CG"
elif grep -qw memory /sys/fs/cgroup/cgroup.controllers 2>/dev/null &&
     mkdir "/sys/fs/cgroup/fv-swap.$$" 2>/dev/null; then
	# memory.high, not memory.max: reclaim and throttling, never the OOM
	# killer (the same reason as oom_control above).
	CG=/sys/fs/cgroup/fv-swap.$$ LIMIT=memory.high USAGE=memory.current
else
	skip "no memory cgroup can be made here (not root, or no memory controller)"
fi

vmstat_of() { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }
swapin0=$(vmstat_of pswpin) swapout0=$(vmstat_of pswpout)

# Fill and merge, churn (writes to merged pages: unmerges, new merges)
# and idle; meanwhile the limit comes down SQUEEZE_MIB below what the
# cgroup uses, so the kernel swaps out what is cold; then churn again and
# verify under it (every page read back: swapped ones come in).  The
# limit comes while the guests idle because this kernel (nested KVM)
# OOM-kills guests that fill their RAM against a limit, dedup or not.
RUN="$TMP/run"
CTL="$BUILDDIR/foldctl --run-dir $RUN"
STEPS=fill+settle:3+churn:4096+settle:3+sleep:60+churn:2048+settle:2+verify
sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$CG" \
	"$BUILDDIR/foldvm" run --dedup --quiet --log-dir "$TMP/logs" --run-dir "$RUN" \
	--vm "name=s1,mem=128M,domain=s,zero=10,shared=40,steps=$STEPS" \
	--vm "name=s2,mem=128M,domain=s,zero=10,shared=40,steps=$STEPS" \
	>"$TMP/fv.out" 2>&1 &
FVPID=$!
sleeping() {
	$CTL raw "$1" '{"execute":"query-status"}' | grep -q '"foldvm-step":"sleep"'
}
wait_for 300 sleeping s1 && wait_for 300 sleeping s2 ||
	{ cat "$TMP/fv.out"; fail "the guests never reached their idle step"; }
usage=$(cat "$CG/$USAGE")
limit=$((usage - (SQUEEZE_MIB << 20)))
echo $limit > "$CG/$LIMIT" 2>/dev/null ||
	{ cat "$TMP/fv.out"; fail "the kernel could not bring $CG from $((usage >> 20)) to $((limit >> 20)) MiB"; }
echo "swap: $CG limited to $((limit >> 20)) MiB (it used $((usage >> 20)) MiB)"

# While it runs: the most swap it holds, private (VmSwap) and store.
max_priv=0 max_store=0 store_seen=0
while kill -0 "$FVPID" 2>/dev/null; do
	priv=0
	for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do
		kb=$(awk '/^VmSwap:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
		priv=$((priv + ${kb:-0} * 1024))
		for fd in /proc/$p/fd/*; do
			case $(readlink "$fd" 2>/dev/null) in
			/memfd:foldvm-store*) ;;
			*) continue ;;
			esac
			blocks=$(stat -L -c %b "$fd" 2>/dev/null) || continue
			res=$(fincore --bytes --noheadings --output RES "$fd" 2>/dev/null) || continue
			store_seen=1
			st=$((blocks * 512 - res))
			[ "$st" -gt "$max_store" ] && max_store=$st
		done
	done
	[ "$priv" -gt "$max_priv" ] && max_priv=$priv
	sleep 0.5
done
wait "$FVPID"
rc=$?
FVPID=
swapin=$(( $(vmstat_of pswpin) - swapin0 )) swapout=$(( $(vmstat_of pswpout) - swapout0 ))
cat "$TMP/fv.out"
[ "$rc" -eq 0 ] || fail "foldvm exit status $rc"
expect_in "$TMP/fv.out" '^s1 .*OK \([0-9]+ pages, 0 bad\)' '^s2 .*OK \([0-9]+ pages, 0 bad\)'
# The books: merges and unmerges happened, and the saving is the engine's
# own count, whatever is resident.
expect_in "$TMP/fv.out" 'host \(engine\): saved [1-9][0-9.]* MiB' \
	'[1-9][0-9]* merges, [1-9][0-9]* unmerges'
[ "$store_seen" = 1 ] || fail "no store memfd found in the worker"
[ "$max_priv" -gt 0 ] || fail "the kernel swapped none of the guests' private pages"
[ "$max_store" -gt 0 ] || fail "the kernel swapped none of the store"
[ "$swapin" -gt 0 ] || fail "nothing was swapped back in"
echo "swap: up to $((max_priv >> 20)) MiB of private pages and $((max_store >> 20)) MiB of the store in swap; $((swapout * 4 >> 10)) MiB out, $((swapin * 4 >> 10)) MiB back in; both guests verified"
