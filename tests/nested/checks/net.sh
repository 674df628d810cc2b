#!/bin/sh
# Check b) virtio-net: two Linux guests under $VMM (foldvm, or the QEMU reference) on taps bridged in the
# bed (br-fv, 10.99.0.1/24) ping each other, and one pings the bridge (the
# bed's host side).
. "$(dirname "$0")/../lib.sh"
bed_require
linux_images
br=br-fv$$
ip link add "$br" type bridge || fail "cannot make bridge $br (the bridge module)"
cleanup_net() { ip link del "$br" 2>/dev/null; ip link del fvta$$ 2>/dev/null; ip link del fvtb$$ 2>/dev/null; }
ip addr add 10.99.0.1/24 dev "$br" && ip link set "$br" up || fail "cannot set up $br"
for t in fvta$$ fvtb$$; do
	ip tuntap add dev "$t" mode tap user 0 || fail "cannot make tap $t"
	ip link set "$t" master "$br" && ip link set "$t" up || fail "cannot bridge $t"
done
vm_start na mem=256M vcpus=$FV_VCPUS "net=tap:fvta$$" mac=52:54:00:99:00:02 \
	"cmdline=$L2_CMDLINE fvtest=net fvip=10.99.0.2/24 fvpeer=10.99.0.3 fvhost=10.99.0.1"
pa=$VM_PID
vm_start nb mem=256M vcpus=$FV_VCPUS "net=tap:fvtb$$" mac=52:54:00:99:00:03 \
	"cmdline=$L2_CMDLINE fvtest=net fvip=10.99.0.3/24 fvpeer=10.99.0.2"
pb=$VM_PID
trap 'for p in $FV_PIDS; do kill -9 $p 2>/dev/null; done; cleanup_net; rm -rf "$TMP"' EXIT
VM_PID=$pa; vm_wait_init na
VM_PID=$pb; vm_wait_init nb
vm_finish na "$pa"
vm_finish nb "$pb"
expect_in "$TMP/logs/na.log" '^FV: net ping 10.99.0.3 ok' '^FV: net ping 10.99.0.1 ok' '^FV: net pinged by peer'
expect_in "$TMP/logs/nb.log" '^FV: net ping 10.99.0.2 ok' '^FV: net pinged by peer'
echo "PASS ${VMM}_net: guests na (10.99.0.2) and nb (10.99.0.3) on bridged taps: na->nb $(sed -n 's/^FV: net ping 10.99.0.3 ok //p' "$TMP/logs/na.log"), nb->na $(sed -n 's/^FV: net ping 10.99.0.2 ok //p' "$TMP/logs/nb.log"), na->bridge 10.99.0.1 $(sed -n 's/^FV: net ping 10.99.0.1 ok //p' "$TMP/logs/na.log")"
