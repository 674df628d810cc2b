#!/bin/sh
# Check b) virtio-balloon, under $VMM (foldvm, or the QEMU reference, which
# gives statistics through qom-get and counts no reported pages): QMP
# `balloon` (foldctl raw) 128 MiB then 256 MiB; the guest's MemTotal falls
# and comes back, query-balloon's `actual` follows, the guest's statistics
# arrive (stats-updates, stat-total-memory); after the guest frees 96 MiB,
# free page reporting raises `reported-free-bytes` in query-dedup and the
# guest's resident memory (query-dedup rss-bytes) falls at least 32 MiB
# below its peak.  `poweroff -f` ends it as shutdown.
. "$(dirname "$0")/../lib.sh"
bed_require
linux_images
# foldvm: the guest lingers while the host watches reported-free-bytes.
linger=5; [ "$VMM" = foldvm ] && linger=70
vm_start bl mem=256M vcpus=$FV_VCPUS balloon=on "cmdline=$L2_CMDLINE fvtest=balloon fvwait=300 fvlinger=$linger"
pid=$VM_PID
LOG=$TMP/logs/bl.log
CTL="$BUILDDIR/foldctl --run-dir $TMP/run-bl"
vm_wait_init bl
wait_marker "$LOG" '^FV: balloon start' 120 "$pid" >/dev/null || { show_log "$LOG"; fail "the balloon test did not start"; }
total0=$(sed -n 's/^FV: balloon start total_kb=\([0-9]*\).*/\1/p' "$LOG")
qmp() { $CTL raw bl "$1" 2>&1; }
num() { sed -n "s/.*\"$1\": *\\([0-9]*\\).*/\\1/p"; }

r=$(qmp '{"execute":"balloon","arguments":{"value":134217728}}')
echo "$r" | grep -q '"return"' || fail "balloon 128M: $r"
wait_marker "$LOG" '^FV: balloon inflated' 180 "$pid" >/dev/null || { show_log "$LOG"; qmp '{"execute":"query-balloon"}'; fail "the guest's MemTotal did not fall after balloon 128M"; }
total1=$(sed -n 's/^FV: balloon inflated total_kb=\([0-9]*\).*/\1/p' "$LOG")
# actual = RAM less the balloon: within a few MiB of the target once the
# guest moved it (it may still be moving the last pages).
i=0
while :; do
	qb=$(qmp '{"execute":"query-balloon"}')
	act=$(echo "$qb" | num actual)
	[ -n "$act" ] && [ "$act" -le $((134217728 + 8388608)) ] && break
	i=$((i + 1)); [ $i -lt 60 ] || fail "query-balloon's actual stays at '$act' after balloon 128M: $qb"
	sleep 1
done
act_in=$act
# Statistics. foldvm: each query-balloon hands the buffer back, the next
# shows it. QEMU: the balloon device's guest-stats property, once polled.
[ "$VMM" = qemu ] && qmp '{"execute":"qom-set","arguments":{"path":"/machine/peripheral/balloon0","property":"guest-stats-polling-interval","value":1}}' >/dev/null
i=0
while :; do
	if [ "$VMM" = foldvm ]; then
		qb=$(qmp '{"execute":"query-balloon"}')
		su=$(echo "$qb" | num stats-updates)
	else
		qb=$(qmp '{"execute":"qom-get","arguments":{"path":"/machine/peripheral/balloon0","property":"guest-stats"}}')
		su=$(echo "$qb" | num last-update)
	fi
	stt=$(echo "$qb" | num stat-total-memory)
	[ "${su:-0}" -ge 1 ] && [ -n "$stt" ] && break
	i=$((i + 1)); [ $i -lt 60 ] || fail "no balloon statistics arrived: $qb"
	sleep 1
done
rf0=""
if [ "$VMM" = foldvm ]; then
	rf0=$(qmp '{"execute":"query-dedup"}' | num reported-free-bytes)
	[ -n "$rf0" ] || fail "query-dedup has no reported-free-bytes: $(qmp '{"execute":"query-dedup"}')"
fi

r=$(qmp '{"execute":"balloon","arguments":{"value":268435456}}')
echo "$r" | grep -q '"return"' || fail "balloon 256M: $r"
wait_marker "$LOG" '^FV: balloon deflated' 180 "$pid" >/dev/null || { show_log "$LOG"; fail "the guest's MemTotal did not come back after balloon 256M"; }
total2=$(sed -n 's/^FV: balloon deflated total_kb=\([0-9]*\).*/\1/p' "$LOG")
act_out=$(qmp '{"execute":"query-balloon"}' | num actual)
# foldvm: the guest's resident memory (query-dedup rss-bytes) while it
# holds 96 MiB, at its highest.
rss_max=0 i=0
while ! grep -aq '^FV: balloon freed' "$LOG"; do
	kill -0 "$pid" 2>/dev/null || { show_log "$LOG"; fail "the guest ended before it freed its 96 MiB"; }
	if [ "$VMM" = foldvm ] && grep -aq '^FV: balloon filled' "$LOG"; then
		rss=$(qmp '{"execute":"query-dedup"}' | num rss-bytes)
		[ -n "$rss" ] && [ "$rss" -gt "$rss_max" ] && rss_max=$rss
	fi
	i=$((i + 1)); [ $i -lt 600 ] || { show_log "$LOG"; fail "the guest did not free its 96 MiB"; }
	sleep 0.2
done
rf="QEMU counts no reported pages"
if [ "$VMM" = foldvm ]; then
	# Free page reporting: reported-free-bytes rises, and the pages go back
	# to the host (rss-bytes at least 32 MiB below its peak).
	[ "$rss_max" -gt 0 ] || fail "no rss-bytes from query-dedup while the guest held 96 MiB"
	i=0
	while :; do
		qd=$(qmp '{"execute":"query-dedup"}')
		rf1=$(echo "$qd" | num reported-free-bytes)
		rss1=$(echo "$qd" | num rss-bytes)
		[ -n "$rf1" ] && [ "$rf1" -gt "$rf0" ] && [ -n "$rss1" ] && [ "$rss1" -le $((rss_max - 33554432)) ] && break
		i=$((i + 1)); [ $i -lt 60 ] || fail "after the guest freed 96 MiB: reported-free-bytes ${rf1:-?} (was $rf0), rss-bytes ${rss1:-?} (peak $rss_max)"
		sleep 1
	done
	rf="reported-free-bytes $rf0 -> $rf1 and rss-bytes $((rss_max >> 20)) -> $((rss1 >> 20)) MiB after the guest freed 96 MiB"
fi
vm_finish bl "$pid"
echo "PASS ${VMM}_balloon: MemTotal ${total0} kB -> ${total1} kB (balloon 128M, actual $act_in) -> ${total2} kB (balloon 256M, actual $act_out); statistics (update $su) stat-total-memory $stt; $rf"
