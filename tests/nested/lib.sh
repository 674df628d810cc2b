# tests/nested/lib.sh - helpers for the checks that run inside the nested bed
# (tests/nested/bed; sourced by tests/nested/checks/*.sh).  Builds on
# tests/integration/lib.sh (TMP, fail, expect_in, wait_for, qmp_*).
. "$(dirname "$0")/../../integration/lib.sh"
SRCDIR=${FOLDVM_SRCDIR:-$(cd "$(dirname "$0")/../../.." && pwd)}
# A check stopped by its time bound (TERM) still cleans up (EXIT trap).
trap 'exit 143' TERM INT
# vCPUs of foldvm's Linux guests (issue 28: a Debian guest with 2 vCPUs).
FV_VCPUS=${BED_FV_VCPUS:-2}

# Check scripts must run in the bed: real KVM, the bed's tmpfs /tmp.
bed_require() {
	[ "${BED:-}" = 1 ] || fail "run me inside the nested bed (tests/nested/bed -- $0)"
	[ -c /dev/kvm ] || fail "no /dev/kvm in the bed (kvm_amd did not load)"
}

# Milliseconds since the epoch.
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# bed_copy_in FILE...: copy FILEs into the bed's tmpfs ($TMP/img) and print
# the copies' paths, one a line.  The host's tree is a 9p mount in the bed,
# where Landlock rules do not hold: foldvm's sandbox (on by default) refuses
# a kernel, initrd or disk read through it ("Permission denied"), a copy on
# tmpfs works.  Disks must be copies anyway: the host tree is read-only.
bed_copy_in() {
	mkdir -p "$TMP/img"
	for f in "$@"; do
		[ -r "$f" ] || fail "bed_copy_in: $f not readable"
		cp "$f" "$TMP/img/" || fail "bed_copy_in: cannot copy $f to $TMP/img"
		echo "$TMP/img/$(basename "$f")"
	done
}

# The L2 kernel (the Debian kernel the bed itself runs) and the project's
# Linux test initramfs (guest-tools/linux-initramfs/mk), both copied in.
linux_images() {
	kver=${BED_L2_KVER:-$(uname -r)}
	[ -r "/boot/vmlinuz-$kver" ] || fail "no /boot/vmlinuz-$kver"
	src=$BUILDDIR/guest-tools/linux-initramfs.cpio
	[ -r "$src" ] || fail "$src not built (make check-linux builds it)"
	got=$(cpio -i --quiet --to-stdout etc/fv-kver <"$src" 2>/dev/null)
	[ "$got" = "$kver" ] || fail "$src holds the modules of '$got', the kernel is $kver: rebuild it (make check-linux)"
	KERNEL=$(bed_copy_in "/boot/vmlinuz-$kver")
	INITRD=$(bed_copy_in "$src")
	KVER=$kver
}

# The kernel command line both VMMs give the test guests.
L2_CMDLINE="console=ttyS0 quiet panic=-1 rdinit=/init"

# mk_ext4 IMAGE SIZE_MB [FILE=CONTENT]: an ext4 image made on the host side
# (e2fsprogs' mke2fs -d), optionally holding FILE.
mk_ext4() {
	d=$TMP/ext4src.$$
	rm -rf "$d"; mkdir -p "$d"
	if [ $# -ge 3 ]; then printf '%s\n' "${3#*=}" >"$d/${3%%=*}"; fi
	rm -f "$1"
	mke2fs -q -t ext4 -F -d "$d" "$1" "${2}M" >"$TMP/mke2fs.out" 2>&1 ||
		{ cat "$TMP/mke2fs.out"; fail "mke2fs of $1"; }
	rm -rf "$d"
}

# wait_marker LOG REGEX SECONDS [PID]: wait until a line of LOG matches REGEX
# (grep -E), at most SECONDS; fails early when PID (the VMM) has ended
# without it.  Prints the first matching line.
wait_marker() {
	wm_log=$1 wm_re=$2 wm_t=$3 wm_pid=${4:-}
	wm_end=$(( $(date +%s) + wm_t ))
	while :; do
		if grep -Eaq -- "$wm_re" "$wm_log" 2>/dev/null; then
			grep -Ea -m 1 -- "$wm_re" "$wm_log"
			return 0
		fi
		if [ -n "$wm_pid" ] && ! kill -0 "$wm_pid" 2>/dev/null; then
			grep -Eaq -- "$wm_re" "$wm_log" 2>/dev/null && { grep -Ea -m 1 -- "$wm_re" "$wm_log"; return 0; }
			echo "wait_marker: the VMM (pid $wm_pid) ended before /$wm_re/ appeared in $wm_log" >&2
			return 1
		fi
		[ "$(date +%s)" -lt "$wm_end" ] || { echo "wait_marker: /$wm_re/ not in $wm_log after ${wm_t}s" >&2; return 1; }
		sleep 0.2
	done
}

# show_log FILE [N]: the last N (40) lines of a guest's console, for failures.
show_log() { echo "--- last lines of $1:"; tail -n "${2:-40}" "$1" 2>/dev/null | sed 's/^/  | /'; }

# How long a Linux guest may take to reach its init (s): emulated, nested.
BOOT_TIMEOUT=${BED_BOOT_TIMEOUT:-300}

# --- foldvm -----------------------------------------------------------------
# fv_start NAME SPEC-KEYS...: `foldvm run` of a Linux guest NAME in the
# background (pid in FV_PID, output in $TMP/NAME.out, console in
# $TMP/logs/NAME.log, sockets in $TMP/run-NAME: one foldvm process each,
# and two cannot share a run directory's host.qmp).  SPEC-KEYS are extra --vm keys.
fv_start() {
	n=$1; shift
	spec="name=$n,kernel=$KERNEL,initrd=$INITRD"
	for k in "$@"; do spec="$spec,$k"; done
	mkdir -p "$TMP/logs" "$TMP/run-$n"
	FV_T0=$(now_ms)
	"$BUILDDIR/foldvm" run --quiet --run-dir "$TMP/run-$n" --log-dir "$TMP/logs" \
		--vm "$spec" >"$TMP/$n.out" 2>&1 &
	FV_PID=$!
	FV_PIDS="${FV_PIDS:-} $FV_PID"
	trap 'for p in $FV_PIDS; do kill -9 $p 2>/dev/null; done; rm -rf "$TMP"' EXIT
}

# fv_end PID NAME SECONDS: wait for a VMM run to end by itself (the guest
# powered off), at most SECONDS, then kill it.  Sets FE_ST to "exit=N" or
# "killed" (returns 1 then).  Not in a subshell: PID must be our child.
fv_end() {
	fe_end=$(( $(date +%s) + $3 ))
	while kill -0 "$1" 2>/dev/null; do
		if [ "$(date +%s)" -ge "$fe_end" ]; then
			kill -INT "$1" 2>/dev/null; sleep 3; kill -9 "$1" 2>/dev/null
			wait "$1" 2>/dev/null
			FE_ST=killed
			return 1
		fi
		sleep 0.2
	done
	wait "$1"
	FE_ST="exit=$?"
}

# --- QEMU -------------------------------------------------------------------
# qemu_start NAME ARGS...: qemu-system-x86_64 -M microvm -accel kvm (console
# to $TMP/logs/NAME.log) in the background; pid in Q_PID.
qemu_start() {
	n=$1; shift
	mkdir -p "$TMP/logs"
	Q_T0=$(now_ms)
	qemu-system-x86_64 -M microvm -accel kvm -cpu host -nodefaults -no-user-config \
		-display none -no-reboot -serial "file:$TMP/logs/$n.log" -monitor none \
		"$@" </dev/null >"$TMP/$n.out" 2>&1 &
	Q_PID=$!
	FV_PIDS="${FV_PIDS:-} $Q_PID"
	trap 'for p in $FV_PIDS; do kill -9 $p 2>/dev/null; done; rm -rf "$TMP"' EXIT
}

# wait_init NAME PID T0 VMM: wait until guest NAME (its VMM's process PID,
# started at T0 ms) runs /init; T_INIT is the wall time since T0, in ms.
wait_init() {
	wait_marker "$TMP/logs/$1.log" '^FV: init ' "$BOOT_TIMEOUT" "$2" >/dev/null || {
		show_log "$TMP/logs/$1.log"; echo "--- $4 said:"; cat "$TMP/$1.out"
		fail "$4: the Linux guest $1 did not reach /init"
	}
	T_INIT=$(( $(now_ms) - $3 ))
}

# fv_wait_init NAME: wait_init for foldvm's guest NAME (started by fv_start).
fv_wait_init() { wait_init "$1" "$FV_PID" "$FV_T0" foldvm; }

# fv_finish NAME PID: the guest's test ran to its end (FV: test NAME exit=0),
# `poweroff -f` ended the guest and foldvm reports it as shutdown, exit 0.
fv_finish() {
	fl=$TMP/logs/$1.log
	wait_marker "$fl" '^FV: test [a-z_]* exit=' "${BED_TEST_TIMEOUT:-300}" "$2" >/dev/null ||
		{ show_log "$fl"; fail "foldvm: the test in guest $1 did not finish"; }
	grep -Eaq '^FV: test [a-z_]* exit=0' "$fl" || { show_log "$fl"; fail "foldvm: the test in guest $1 failed: $(grep -a '^FV: test' "$fl")"; }
	wait_marker "$fl" '^FV: poweroff' 60 "$2" >/dev/null || { show_log "$fl"; fail "foldvm: guest $1 did not get to poweroff"; }
	fv_end "$2" "$1" 60 || { show_log "$fl"; cat "$TMP/$1.out"; fail "foldvm: poweroff -f did not end guest $1 (still running after 60 s; killed)"; }
	[ "$FE_ST" = exit=0 ] || { cat "$TMP/$1.out"; fail "foldvm ended with $FE_ST after guest $1 powered off"; }
	expect_in "$TMP/$1.out" "^$1 +[0-9]+[MG] +[0-9]+ +shutdown"
}

# --- one device check, either VMM ---------------------------------------------
# VMM: foldvm (the default) or qemu (the reference: QEMU -M microvm with the
# same devices), from BED_VMM; the check's name is ${VMM}_CHECK.
VMM=${BED_VMM:-foldvm}
case $VMM in foldvm|qemu) ;; *) fail "BED_VMM=$VMM: foldvm or qemu" ;; esac

# vm_start NAME [mem=M] [vcpus=N] [disk=PATH] [disk-ro=on] [net=tap:TAP]
#          [mac=MAC] [balloon=on] cmdline=TEXT: a Linux guest of linux_images
# under $VMM, in the background: VM_PID, VM_T0 (ms), console in
# $TMP/logs/NAME.log, QMP at $TMP/run-NAME/NAME.qmp (foldctl --run-dir
# $TMP/run-NAME talks to both).
vm_start() {
	vn=$1; shift
	if [ "$VMM" = foldvm ]; then
		fv_start "$vn" "$@"
		VM_PID=$FV_PID VM_T0=$FV_T0
		return
	fi
	vmem=256M vcpus=1 vdisk="" vro="" vtap="" vmac="" vballoon="" vcmd=""
	for kv in "$@"; do
		case $kv in
		mem=*) vmem=${kv#mem=} ;;
		vcpus=*) vcpus=${kv#vcpus=} ;;
		disk=*) vdisk=${kv#disk=} ;;
		disk-ro=on) vro=,readonly=on ;;
		net=tap:*) vtap=${kv#net=tap:} ;;
		mac=*) vmac=,mac=${kv#mac=} ;;
		balloon=on) vballoon=1 ;;
		cmdline=*) vcmd=${kv#cmdline=} ;;
		*) fail "vm_start: $kv?" ;;
		esac
	done
	mkdir -p "$TMP/run-$vn"
	set -- -smp "$vcpus" -m "$vmem" -kernel "$KERNEL" -initrd "$INITRD" -append "$vcmd" \
		-qmp "unix:$TMP/run-$vn/$vn.qmp,server=on,wait=off"
	[ -z "$vdisk" ] || set -- "$@" -drive "id=d0,file=$vdisk,format=raw,if=none$vro" -device virtio-blk-device,drive=d0
	[ -z "$vtap" ] || set -- "$@" -netdev "tap,id=n0,ifname=$vtap,script=no,downscript=no" -device "virtio-net-device,netdev=n0$vmac"
	[ -z "$vballoon" ] || set -- "$@" -device virtio-balloon-device,id=balloon0,free-page-reporting=on
	qemu_start "$vn" "$@"
	VM_PID=$Q_PID VM_T0=$Q_T0
}

# vm_wait_init NAME: wait_init for either VMM's guest (started by vm_start).
vm_wait_init() { wait_init "$1" "$VM_PID" "$VM_T0" "$VMM"; }

# vm_finish NAME PID: the guest's test passed, `poweroff -f` ended the guest:
# foldvm reports it as shutdown (exit 0), QEMU exits 0.
vm_finish() {
	if [ "$VMM" = foldvm ]; then fv_finish "$@"; return; fi
	fl=$TMP/logs/$1.log
	wait_marker "$fl" '^FV: test [a-z_]* exit=' "${BED_TEST_TIMEOUT:-300}" "$2" >/dev/null ||
		{ show_log "$fl"; fail "qemu: the test in guest $1 did not finish"; }
	grep -Eaq '^FV: test [a-z_]* exit=0' "$fl" || { show_log "$fl"; fail "qemu: the test in guest $1 failed: $(grep -a '^FV: test' "$fl")"; }
	wait_marker "$fl" '^FV: poweroff' 60 "$2" >/dev/null || { show_log "$fl"; fail "qemu: guest $1 did not get to poweroff"; }
	fv_end "$2" "$1" 60 || { show_log "$fl"; fail "qemu: poweroff -f did not end guest $1 within 60 s (killed)"; }
	[ "$FE_ST" = exit=0 ] || { cat "$TMP/$1.out"; fail "qemu exited with $FE_ST after guest $1 powered off"; }
}
