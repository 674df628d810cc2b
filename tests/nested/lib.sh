# tests/nested/lib.sh - helpers for the checks that run inside the nested bed
# (tests/nested/bed; sourced by tests/nested/checks/*.sh).  Builds on
# tests/integration/lib.sh (TMP, fail, expect_in, wait_for, qmp_*).
. "$(dirname "$0")/../../integration/lib.sh"
SRCDIR=${FOLDVM_SRCDIR:-$(cd "$(dirname "$0")/../../.." && pwd)}

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
BOOT_TIMEOUT=${BED_BOOT_TIMEOUT:-240}

# --- foldvm -----------------------------------------------------------------
# fv_start NAME SPEC-KEYS...: `foldvm run` of a Linux guest NAME in the
# background (pid in FV_PID, output in $TMP/NAME.out, console in
# $TMP/logs/NAME.log, sockets in $TMP/run).  SPEC-KEYS are extra --vm keys.
fv_start() {
	n=$1; shift
	spec="name=$n,kernel=$KERNEL,initrd=$INITRD"
	for k in "$@"; do spec="$spec,$k"; done
	mkdir -p "$TMP/logs" "$TMP/run"
	FV_T0=$(now_ms)
	"$BUILDDIR/foldvm" run --quiet --run-dir "$TMP/run" --log-dir "$TMP/logs" \
		--vm "$spec" >"$TMP/$n.out" 2>&1 &
	FV_PID=$!
	FV_PIDS="${FV_PIDS:-} $FV_PID"
	trap 'for p in $FV_PIDS; do kill -9 $p 2>/dev/null; done; rm -rf "$TMP"' EXIT
}

# fv_end PID NAME SECONDS: wait for a foldvm run to end by itself (the guest
# powered off), at most SECONDS, then kill it; prints its exit status.
fv_end() {
	fe_end=$(( $(date +%s) + $3 ))
	while kill -0 "$1" 2>/dev/null; do
		if [ "$(date +%s)" -ge "$fe_end" ]; then
			kill -INT "$1" 2>/dev/null; sleep 3; kill -9 "$1" 2>/dev/null
			wait "$1" 2>/dev/null
			echo "killed"
			return 1
		fi
		sleep 0.2
	done
	wait "$1"
	echo "exit=$?"
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
