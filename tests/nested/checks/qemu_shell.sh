#!/bin/sh
# The Linux test initramfs without fvtest=: a shell on the serial console.
# Under QEMU microvm (the console on QEMU's stdin and stdout), a command typed
# there runs (its output, not its echo, must come back) and `poweroff -f`
# typed there ends QEMU.  (foldvm's console input is issue 28's console work.)
. "$(dirname "$0")/../lib.sh"
bed_require
linux_images
mkfifo "$TMP/in"
LOG=$TMP/logs/sh.log
mkdir -p "$TMP/logs"
qemu-system-x86_64 -M microvm -accel kvm -cpu host -nodefaults -no-user-config \
	-display none -no-reboot -serial stdio -monitor none -smp 1 -m 256M \
	-kernel "$KERNEL" -initrd "$INITRD" -append "$L2_CMDLINE" \
	<"$TMP/in" >"$LOG" 2>"$TMP/sh.err" &
pid=$!
trap 'kill -9 $pid 2>/dev/null; rm -rf "$TMP"' EXIT
exec 7>"$TMP/in"
wait_marker "$LOG" '^FV: no fvtest=' "$BOOT_TIMEOUT" "$pid" >/dev/null || { show_log "$LOG"; cat "$TMP/sh.err"; fail "no shell was started"; }
sleep 3
a=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
printf 'echo SHELL-OUT-$((%s * 3))\n' "$a" >&7
wait_marker "$LOG" "^SHELL-OUT-$((a * 3))" 120 "$pid" >/dev/null || { show_log "$LOG"; fail "the command typed on the console did not run"; }
printf 'poweroff -f\n' >&7
fv_end "$pid" sh 60 || { show_log "$LOG"; fail "poweroff -f typed on the console did not end QEMU"; }
[ "$FE_ST" = exit=0 ] || fail "QEMU ended with $FE_ST"
echo "PASS qemu_shell: without fvtest= the guest gave a shell on ttyS0; 'echo SHELL-OUT-\$(($a * 3))' typed there printed SHELL-OUT-$((a * 3)); 'poweroff -f' typed there ended QEMU (exit 0)"
