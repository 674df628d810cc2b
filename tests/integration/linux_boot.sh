#!/bin/sh
# A real Debian kernel under foldvm, next to a test guest.
#
# The kernel is /boot/vmlinuz-* from Debian's linux-image-amd64 (installed
# by scripts/setup); its ELF vmlinux is extracted with scripts/extract-vmlinux
# (the bzImage's xz payload) and booted through the 64-bit entry with
# foldvm's test initramfs.  On this platform (nested PVM) the kernel runs in
# KVM's instruction emulator, so the test asks for what that allows: the
# "Linux version" banner and early boot lines on the serial console (about
# 20 s here).  Then the Linux guest is stopped on request (foldctl quit) while the
# test guest keeps running and afterwards verifies all its memory.  If the
# emulator gives up first, foldvm must report that as the Linux guest's
# error, and the other guest must still finish cleanly.  The loaders'
# refusals of bad images are checked end to end too (exit 2, nothing runs),
# and the real bzImage is loaded and started through its own path.
. "$(dirname "$0")/lib.sh"
require_kvm
SRCDIR=${FOLDVM_SRCDIR:-$(pwd)}
KERNEL=${FOLDVM_TEST_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)}
if [ -z "$KERNEL" ] || [ ! -r "$KERNEL" ]; then
	echo "SKIP: no Debian kernel in /boot (scripts/setup installs linux-image-amd64)" >&2
	exit 77
fi
INITRD="$BUILDDIR/guest-tools/initramfs.cpio"
[ -r "$INITRD" ] || fail "$INITRD not built (make check builds it)"
VMLINUX="$TMP/vmlinux"
"$SRCDIR/scripts/extract-vmlinux" "$KERNEL" "$VMLINUX" || fail "cannot extract vmlinux from $KERNEL"

# The options that keep a stock kernel clear of what KVM's emulator lacks
# here (docs/linux.md); ",," is a literal comma inside a --vm value.
CMDLINE="console=ttyS0 earlyprintk=serial,,ttyS0,,115200 noxsave nofsgsbase"
CMDLINE="$CMDLINE clearcpuid=141,,308,,151,,534,,137,,147,,148,,129,,153"
CMDLINE="$CMDLINE pci=off acpi=off nowatchdog nosoftlockup cryptomgr.notests"
CMDLINE="$CMDLINE reboot=k panic=1 rdinit=/init"

# --- refusals, before any vCPU runs: exit 2 and a precise message --------
refuse() { # PATTERN SPEC...
	pat=$1; shift
	if "$BUILDDIR/foldvm" run --no-control --log-dir "$TMP/logs" "$@" >"$TMP/refuse.out" 2>&1; then
		fail "foldvm accepted $*"
	else
		rc=$?
	fi
	[ "$rc" -eq 2 ] || { cat "$TMP/refuse.out"; fail "exit $rc, not 2, for $*"; }
	expect_in "$TMP/refuse.out" "$pat"
	if grep -q "Linux version" "$TMP/refuse.out"; then fail "a refused kernel ran"; fi
}
head -c 100 /dev/urandom >"$TMP/garbage"
head -c 1048576 "$VMLINUX" >"$TMP/truncated"
truncate -s 300M "$TMP/huge-initrd"
refuse "not a Linux kernel" --vm "name=l,kernel=$TMP/garbage"
refuse "runs past the end" --vm "name=l,kernel=$TMP/truncated"
refuse "kernel too large" --vm "name=l,mem=32M,kernel=$VMLINUX"
refuse "initrd.*does not fit|initrd.*must be 1\\.\\." --vm "name=l,mem=256M,kernel=$VMLINUX,initrd=$TMP/huge-initrd"
refuse "only sleep, settle, wait and sync" --vm "name=l,kernel=$VMLINUX,steps=fill"
refuse "vcpus: 65 is out of range 1\\.\\.64" --vm "name=l,kernel=$VMLINUX,vcpus=65"
refuse "virtio-cmdline= needs kernel=" --vm "name=l,virtio-cmdline=on"
refuse "initrd= needs kernel=" --vm "name=l,initrd=$INITRD"
echo "refusals: OK"

# --- the bzImage path with the real image: accepted, loaded, started -----
# (Its decompressor would take minutes under emulation here: the guest runs
# for 3 s and is stopped when its steps are done.)  Two vCPUs: the second
# waits for the INIT/SIPI the kernel never gets to send here.  The ACPI
# tables name both vCPUs and the devices; the command line names no
# device unless virtio-cmdline=on asks for it (docs/linux.md).
truncate -s 1M "$TMP/disk.img"
"$BUILDDIR/foldvm" run --quiet --no-control --log-dir "$TMP/logs-bz" \
	--vm "name=bz,mem=256M,vcpus=2,kernel=$KERNEL,initrd=$INITRD,disk=$TMP/disk.img,balloon=on,steps=sleep:3" \
	>"$TMP/bz.out" 2>&1 || { cat "$TMP/bz.out"; fail "bzImage guest did not run and stop cleanly"; }
expect_in "$TMP/logs-bz/bz.log" "foldvm: booting .*bzImage, boot protocol 2\.[0-9]+, loads at 0x1000000" \
	'command line "console=ttyS0 earlyprintk=serial,ttyS0,115200 reboot=k panic=1 pci=off"$' \
	'foldvm: ACPI RSDP at 0xe0000, MADT: 2 CPUs, DSDT: COM1 and 2 virtio-mmio devices' \
	'virtio-blk: IRQ 5 through (an irqfd|KVM_IRQ_LINE \(no irqfd\))' \
	'virtio-balloon: IRQ 6 through'
if grep -q "virtio_mmio.device" "$TMP/logs-bz/bz.log"; then
	fail "virtio_mmio.device= entries on a command line that did not ask for them"
fi
echo "bzImage: its disk's interrupt:$(sed -n 's/.*virtio-blk: IRQ 5 through \(.*\)/ \1/p' "$TMP/logs-bz/bz.log")"
expect_in "$TMP/bz.out" "^bz .* 2 stopped .*its steps are done"
# Stopped by a signal (as by Ctrl-A x on its console): its reason says so.
"$BUILDDIR/foldvm" run --quiet --no-control --log-dir "$TMP/logs-bzi" \
	--vm "name=bzi,mem=256M,kernel=$KERNEL" >"$TMP/bzi.out" 2>&1 &
bzi=$!
sleep 2
kill -INT $bzi
wait $bzi; rc=$?
[ $rc -eq 0 ] || { cat "$TMP/bzi.out"; fail "a kernel guest stopped by SIGINT: foldvm exit $rc"; }
expect_in "$TMP/bzi.out" "^bzi .* stopped .*stopped by foldvm: it was interrupted \\(a signal or Ctrl-A x\\)"
"$BUILDDIR/foldvm" run --quiet --no-control --log-dir "$TMP/logs-bz2" \
	--vm "name=bz2,mem=256M,kernel=$KERNEL,disk=$TMP/disk.img,balloon=on,virtio-cmdline=on,steps=sleep:1" \
	>"$TMP/bz2.out" 2>&1 || { cat "$TMP/bz2.out"; fail "bzImage guest with virtio-cmdline=on"; }
expect_in "$TMP/logs-bz2/bz2.log" \
	'command line ".* virtio_mmio\.device=4K@0xd0000000:5 virtio_mmio\.device=4K@0xd0001000:6"$'
echo "bzImage: $(sed -n 's/.*\(bzImage, boot protocol [^,]*\).*/\1/p' "$TMP/logs-bz/bz.log"): loaded and started with 2 vCPUs and ACPI tables"

# --- RAM above the 32-bit hole: a 5 GiB guest's e820 map -------------------
# RAM [0, 3 GiB) and [4 GiB, 6 GiB), the hole between them for the device
# windows, IOAPIC and LAPIC (two memslots).  The kernel prints the map it
# read from the zero page right after its banner; that is as far as the
# emulator needs to go.  With dedup on, the engine reads both memslots'
# dirty logs meanwhile (the kernel's early allocations are top-down, in
# the high one) and must still be making passes when the guest is stopped.
refuse "above the maximum of 64 GiB" --vm "name=l,mem=65G,kernel=$VMLINUX"
"$BUILDDIR/foldvm" run --quiet --no-control --log-dir "$TMP/logs-5g" \
	--vm "name=big,mem=5G,dedup=on,kernel=$VMLINUX,initrd=$INITRD,cmdline=$CMDLINE" \
	>"$TMP/5g.out" 2>&1 &
BIGPID=$!
trap 'kill -9 $BIGPID 2>/dev/null; rm -rf "$TMP"' EXIT
start=$(date +%s)
wait_for 600 grep -q 'BIOS-e820: \[mem 0x0000000100000000-0x000000017fffffff\] usable' "$TMP/logs-5g/big.log" ||
	{ cat "$TMP/5g.out" "$TMP/logs-5g/big.log"; fail "5 GiB guest: no e820 entry for RAM above 4 GiB"; }
expect_in "$TMP/logs-5g/big.log" \
	'BIOS-e820: \[mem 0x0000000000100000-0x00000000bfffffff\] usable' \
	'BIOS-e820: \[mem 0x000000000009fc00-0x00000000000fffff\] reserved'
if grep -q 'BIOS-e820: \[mem 0x00000000c' "$TMP/logs-5g/big.log"; then
	fail "5 GiB guest: an e820 entry in the 32-bit hole"
fi
kill -INT $BIGPID
wait $BIGPID
rc=$?
trap 'rm -rf "$TMP"' EXIT
# Stopped on request, or the emulator gave up after the map (as above).
[ "$rc" -eq 0 ] || expect_in "$TMP/5g.out" "^big .*failed .*(emulator gave up|triple fault|KVM)"
expect_in "$TMP/5g.out" '^host \(engine\): .* [1-9][0-9]* passes$'
if grep -Eqi "dirty log|KVM_GET_DIRTY_LOG|KVM_CLEAR_DIRTY_LOG" "$TMP/5g.out" "$TMP/logs-5g/big.log"; then
	cat "$TMP/5g.out"; fail "5 GiB guest: the engine's dirty log failed"
fi
echo "5 GiB guest: e820 map with RAM at [4 GiB, 6 GiB) after $(( $(date +%s) - start )) s; dedup: $(sed -n 's/^host (engine): \(saved [0-9.]* MiB\);.*/\1/p' "$TMP/5g.out" | head -n 1), $(grep -Eo '[0-9]+ merges, [0-9]+ unmerges, [0-9]+ passes' "$TMP/5g.out" | head -n 1)"

# --- a Linux guest and a test guest side by side --------------------------
for bin in $VARIANTS; do
	RUN="$TMP/run-$bin" LOGS="$TMP/logs-$bin"
	CTL="$BUILDDIR/foldctl --run-dir $RUN"
	"$BUILDDIR/$bin" run --quiet --run-dir "$RUN" --log-dir "$LOGS" \
		--vm "name=linux,mem=256M,kernel=$VMLINUX,initrd=$INITRD,disk=$TMP/disk.img,virtio-cmdline=on,cmdline=$CMDLINE" \
		--vm "name=tg,mem=64M,dedup=on,steps=fill+verify+wait+verify" \
		>"$TMP/fv.out" 2>&1 &
	FVPID=$!
	trap 'kill -9 $FVPID 2>/dev/null; rm -rf "$TMP"' EXIT
	start=$(date +%s)
	# (about 20 s here; the bounds only catch a boot that went nowhere,
	# since an emulated kernel on a loaded host can be many times slower)
	wait_for 600 grep -q "Linux version" "$LOGS/linux.log" ||
		{ cat "$TMP/fv.out" "$LOGS/linux.log"; fail "$bin: no Linux banner within 600 s"; }
	# A few early boot lines: the kernel read foldvm's command line and
	# e820 map from the zero page.
	wait_for 300 grep -q "BIOS-e820: .*usable" "$LOGS/linux.log" ||
		{ cat "$LOGS/linux.log"; fail "$bin: no e820 map on the console"; }
	echo "$bin: banner and e820 map after $(( $(date +%s) - start )) s"
	expect_in "$LOGS/linux.log" "Command line: .*clearcpuid=141,308.* virtio_mmio\.device=4K@0xd0000000:5" \
		"foldvm: booting .*ELF vmlinux"
	# The test guest is past its fill and verify, waiting.
	wait_for 300 sh -c "$CTL raw tg '{\"execute\":\"query-status\"}' | grep -q '\"foldvm-step\": *\"wait\"'" ||
		{ cat "$TMP/fv.out"; fail "$bin: test guest never reached its wait step"; }

	# Stop the Linux guest on request.  The emulator may give up on it at
	# any moment, before or after the request: the final report says which
	# happened, and either way only the Linux guest is affected.
	$CTL quit linux >"$TMP/quit.out" 2>&1 || { cat "$TMP/quit.out"; fail "$bin: quit linux"; }
	wait_for 120 sh -c "! $CTL list | grep -q '^linux '" ||
		{ $CTL list; fail "$bin: the Linux guest did not go away"; }
	$CTL list >"$TMP/list2" 2>&1
	grep -Eq "^tg +running" "$TMP/list2" || { cat "$TMP/list2" "$TMP/fv.out"; fail "$bin: the test guest is not running after the Linux guest went"; }
	# Kernel guests at runtime (vm-create): the command line's commas
	# survive, a bad image is refused with the loader's message.
	$CTL create "name=k2,mem=128M,kernel=$VMLINUX,cmdline=console=ttyS0 clearcpuid=141,,308" \
		>"$TMP/create.out" 2>&1 || { cat "$TMP/create.out"; fail "$bin: create k2"; }
	expect_in "$LOGS/k2.log" 'foldvm: booting .*command line "console=ttyS0 clearcpuid=141,308"'
	$CTL quit k2 >/dev/null 2>&1 || fail "$bin: quit k2"
	if $CTL create "name=bad,kernel=$TMP/garbage" >"$TMP/create.out" 2>&1; then
		fail "$bin: vm-create accepted a garbage kernel"
	fi
	expect_in "$TMP/create.out" "not a Linux kernel"
	# The test guest is still alive: let it finish and verify everything.
	kill -INT $FVPID
	wait $FVPID
	rc=$?
	trap 'rm -rf "$TMP"' EXIT
	expect_in "$TMP/fv.out" "^tg .*shutdown .*OK \\([0-9]+ pages, 0 bad\\)"
	if grep -Eq "^linux .*failed " "$TMP/fv.out"; then
		outcome="emulation failure reported"
		expect_in "$TMP/fv.out" "^linux .*failed .*(emulator gave up|triple fault|KVM)"
		[ "$rc" -eq 1 ] || { cat "$TMP/fv.out"; fail "$bin: exit $rc after a guest failure"; }
	else
		outcome="stopped on request"
		[ "$rc" -eq 0 ] || { cat "$TMP/fv.out"; fail "$bin: exit $rc"; }
	fi
	echo "$bin: Linux guest $outcome; test guest verified its memory; $(grep -c '' "$LOGS/linux.log") console lines"
done
