#!/bin/sh
# The virtio devices from the outside (docs/virtio.md, docs/qmp.md): disk=
# and balloon=on through vm-create and the command line, a domain XML with
# <disk type='file'> and <memballoon model='virtio'> (<currentMemory> is the
# balloon's first target), QMP balloon / query-balloon with QEMU's names and
# errors, and query-dedup's reported-free-bytes.  What the devices do for a
# guest is tested in virtio_blk.c and virtio_balloon.c.
. "$(dirname "$0")/lib.sh"
require_kvm
command -v socat >/dev/null || fail "socat missing (scripts/setup installs it)"

RUN="$TMP/run"
truncate -s 4M "$TMP/a.img"
persist_start foldvm "$RUN" --vm "name=a,mem=64M,disk=$TMP/a.img,balloon=on,steps=wait"
CTL="$BUILDDIR/foldctl --run-dir $RUN"
wait_for 60 sh -c "$CTL list | grep -q '^a '" || { cat "$TMP/fv.out"; fail "guest a never came up"; }

# balloon and query-balloon on the guest's socket, as QEMU answers them
qmp_talk "$RUN/a.qmp" '{"execute":"balloon","arguments":{"value":33554432}}' \
	'{"execute":"query-balloon"}' '{"execute":"query-dedup"}' \
	'{"execute":"balloon","arguments":{"value":134217728}}' \
	'{"execute":"balloon"}' '{"execute":"balloon","arguments":{"value":-5}}' >"$TMP/q1"
expect_in "$TMP/q1" '"actual": *67108864' '"target": *33554432' '"stats": *\{ *\}' \
	'"reported-free-bytes": *0' \
	'balloon target 134217728 bytes is outside 1 MiB..67108864' \
	"Parameter 'value' is missing" "Parameter 'value' must be a positive number of bytes"

# a guest without a balloon: QEMU's DeviceNotActive
$CTL create "name=b,mem=64M,steps=wait" >/dev/null || fail "create b"
qmp_talk "$RUN/b.qmp" '{"execute":"query-balloon"}' >"$TMP/q2"
expect_in "$TMP/q2" '"class": *"DeviceNotActive"'

# vm-create: a disk the command line did not name is refused under the
# sandbox; the command line's, read-only, is taken
truncate -s 1M "$TMP/other.img"
if $CTL create "name=c,mem=64M,disk=$TMP/other.img" >"$TMP/c.out" 2>&1; then
	fail "vm-create took a disk the sandbox does not allow"
fi
expect_in "$TMP/c.out" "was not given to a guest on the command line"
$CTL create "name=d,mem=64M,disk=$TMP/a.img,disk-ro=on,balloon=on,steps=wait" \
	>"$TMP/d.out" 2>&1 || { cat "$TMP/d.out"; fail "vm-create with the command line's disk"; }
qmp_talk "$RUN/d.qmp" '{"execute":"query-balloon"}' >"$TMP/q3"
expect_in "$TMP/q3" '"actual": *67108864'
kill -INT $FVPID
wait $FVPID || { cat "$TMP/fv.out"; fail "foldvm did not end cleanly"; }
trap 'rm -rf "$TMP"' EXIT
echo "virtio_qmp: balloon/query-balloon, DeviceNotActive, vm-create with disk and balloon, the sandbox's disk rule"

# a domain: <disk type='file'> and <memballoon model='virtio'>, whose
# <currentMemory> is the balloon's first target
cat >"$TMP/dom.xml" <<XML
<domain type='kvm'>
  <name>vq1</name>
  <uuid>f01d0000-0000-4000-8000-0000000000e1</uuid>
  <memory unit='MiB'>64</memory>
  <currentMemory unit='MiB'>48</currentMemory>
  <vcpu>1</vcpu>
  <metadata>
    <foldvm:vm xmlns:foldvm='https://foldvm.dev/xmlns/libvirt/domain/1.0'>
      <foldvm:payload steps='wait'/>
    </foldvm:vm>
  </metadata>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/>
      <source file='$TMP/a.img'/><target dev='vda' bus='virtio'/><readonly/></disk>
    <memballoon model='virtio'/>
  </devices>
</domain>
XML
RUN2="$TMP/run2"
"$BUILDDIR/foldvm" run --strict --no-hooks --quiet --run-dir "$RUN2" --lock-dir "$TMP/locks" \
	--domain-xml "$TMP/dom.xml" >"$TMP/dom.out" 2>&1 &
FVPID=$!
trap 'kill -9 $FVPID 2>/dev/null; rm -rf "$TMP"' EXIT
wait_for 60 test -S "$RUN2/vq1.qmp" || { cat "$TMP/dom.out"; fail "the domain did not start (--strict)"; }
qmp_talk "$RUN2/vq1.qmp" '{"execute":"query-balloon"}' >"$TMP/q4"
expect_in "$TMP/q4" '"target": *50331648'
kill -INT $FVPID
wait $FVPID || { cat "$TMP/dom.out"; fail "the domain run did not end cleanly"; }
trap 'rm -rf "$TMP"' EXIT
echo "virtio_qmp: a domain's <disk> and <memballoon> mapped under --strict; <currentMemory> is the balloon's target"
