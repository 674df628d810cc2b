#!/bin/sh
# Check a) the reference: Debian's kernel and the project's Linux test
# initramfs under QEMU (-M microvm -accel kvm -cpu host -smp 2 -m 256M) with
# virtio-blk, virtio-net and virtio-balloon devices (virtio-mmio, found
# through microvm's ACPI tables): /init runs, nproc is 2, each of the three
# drivers is bound, and `poweroff -f` ends QEMU.  Prints start->init time.
. "$(dirname "$0")/../lib.sh"
bed_require
linux_images
truncate -s 64M "$TMP/disk.img"
qemu_start q -smp 2 -m 256M -kernel "$KERNEL" -initrd "$INITRD" \
	-append "$L2_CMDLINE fvtest=info" \
	-drive "id=d0,file=$TMP/disk.img,format=raw,if=none" -device virtio-blk-device,drive=d0 \
	-netdev user,id=n0 -device virtio-net-device,netdev=n0 \
	-device virtio-balloon-device
LOG=$TMP/logs/q.log
wait_marker "$LOG" '^FV: init ' "$BOOT_TIMEOUT" "$Q_PID" >/dev/null ||
	{ show_log "$LOG"; cat "$TMP/q.out"; fail "QEMU: the guest did not reach /init"; }
t_init=$(( $(now_ms) - Q_T0 ))
wait_marker "$LOG" '^FV: poweroff' 120 "$Q_PID" >/dev/null || { show_log "$LOG"; fail "QEMU: the test did not finish"; }
end=$(( $(date +%s) + 60 ))
while kill -0 "$Q_PID" 2>/dev/null; do
	[ "$(date +%s)" -lt "$end" ] || { show_log "$LOG"; fail "QEMU: poweroff -f did not end QEMU within 60 s"; }
	sleep 0.2
done
wait "$Q_PID"; rc=$?
[ "$rc" -eq 0 ] || { cat "$TMP/q.out"; fail "QEMU exited $rc"; }
expect_in "$LOG" '^FV: ready nproc=2 virtio=3 ' '^FV: info nproc=2 ' \
	'^FV: info driver virtio_blk bound=1' '^FV: info driver virtio_net bound=1' \
	'^FV: info driver virtio_balloon bound=1' '^FV: test info exit=0'
guest_up=$(sed -n 's/^FV: init uptime=\([0-9.]*\).*/\1/p' "$LOG")
echo "PASS qemu_ref: QEMU microvm booted $KVER to /init in $t_init ms (guest uptime ${guest_up} s); $(grep -a '^FV: info nproc' "$LOG" | sed 's/^FV: info //'); drivers: $(grep -a '^FV: virtio ' "$LOG" | sed 's/^FV: virtio //' | tr '\n' ';' | sed 's/;$//'); poweroff -f ended QEMU (exit 0)"
echo "TIME qemu_ref start_to_init_ms=$t_init"
