#!/bin/sh
# Check c) side by side: the same kernel and initramfs with the same devices
# (virtio-blk, virtio-net, virtio-balloon; 2 vCPUs, 256 MiB) under QEMU
# microvm and under foldvm, one after the other in the same bed: both reach
# /init and find the same devices (virtio device ids and bound drivers) and
# CPUs.  Prints start->init of both and foldvm's time as a ratio of QEMU's.
. "$(dirname "$0")/../lib.sh"
bed_require
linux_images
truncate -s 64M "$TMP/qd.img"
truncate -s 64M "$TMP/fd.img"
ip tuntap add dev fvsbs$$ mode tap user 0 || fail "cannot make a tap"
ip link set fvsbs$$ up
qemu_start q -smp 2 -m 256M -kernel "$KERNEL" -initrd "$INITRD" \
	-append "$L2_CMDLINE fvtest=info" \
	-drive "id=d0,file=$TMP/qd.img,format=raw,if=none" -device virtio-blk-device,drive=d0 \
	-netdev user,id=n0 -device virtio-net-device,netdev=n0 -device virtio-balloon-device
wait_marker "$TMP/logs/q.log" '^FV: init ' "$BOOT_TIMEOUT" "$Q_PID" >/dev/null ||
	{ show_log "$TMP/logs/q.log"; fail "QEMU: no /init"; }
tq=$(( $(now_ms) - Q_T0 ))
wait_marker "$TMP/logs/q.log" '^FV: poweroff' 120 "$Q_PID" >/dev/null || fail "QEMU: the test did not finish"
i=0; while kill -0 "$Q_PID" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.2; i=$((i + 1)); done
kill -9 "$Q_PID" 2>/dev/null
fv_start s mem=256M vcpus=2 "disk=$TMP/fd.img" "net=tap:fvsbs$$" balloon=on "cmdline=$L2_CMDLINE fvtest=info"
trap 'for p in $FV_PIDS; do kill -9 $p 2>/dev/null; done; ip link del fvsbs$$ 2>/dev/null; rm -rf "$TMP"' EXIT
fv_wait_init s
tf=$T_INIT
fv_finish s "$FV_PID"
devs() { grep -a '^FV: virtio ' "$1" | sed 's/^FV: virtio [^ ]* //' | sort | tr '\n' ';'; }
dq=$(devs "$TMP/logs/q.log") df=$(devs "$TMP/logs/s.log")
[ -n "$dq" ] || fail "QEMU's guest found no virtio device"
[ "$dq" = "$df" ] || fail "the guests found different devices: QEMU $dq, foldvm $df"
cq=$(sed -n 's/^FV: ready nproc=\([0-9]*\).*/\1/p' "$TMP/logs/q.log")
cf=$(sed -n 's/^FV: ready nproc=\([0-9]*\).*/\1/p' "$TMP/logs/s.log")
[ "$cq" = "$cf" ] || fail "QEMU's guest has $cq CPUs, foldvm's $cf"
ratio=$(awk -v f="$tf" -v q="$tq" 'BEGIN { printf "%.2f", f / q }')
echo "PASS side_by_side: same devices ($dq) and $cq CPUs; start->init QEMU microvm $tq ms, foldvm $tf ms: foldvm/QEMU = $ratio"
echo "TIME side_by_side qemu_ms=$tq foldvm_ms=$tf ratio=$ratio"
