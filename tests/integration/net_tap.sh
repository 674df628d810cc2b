#!/bin/sh
# net_tap.sh - virtio-net's taps as an operator uses them, in a network
# namespace of the test's own (docs/virtio.md "virtio-net", docs/sandbox.md):
#  1. net=tap:NAME attaches to an existing tap, with the sandbox on and off;
#     the tap is still there afterwards;
#  2. net=tap makes fv-NAME (the worker opens it before it enters its
#     sandbox), with the MAC given; the tap is gone when foldvm ends;
#  3. bad names and MACs are refused with a clear error before anything runs;
#  4. a guest vm-create adds under the sandbox may attach to an existing tap
#     owned by foldvm's uid, and to nothing else: not a tap that does not
#     exist, not one owned by nobody (each refused with what to do).
# The frames themselves: tests/integration/virtio_net.c.
. "$(dirname "$0")/lib.sh"
require_kvm
command -v ip >/dev/null || fail "ip missing (scripts/setup installs iproute2)"

NS=fvtest-$$
FVPID= IPPID=
if ! ip netns add "$NS" 2>"$TMP/ns.err"; then
	echo "##########################################################" >&2
	echo "SKIP: cannot make a network namespace ($(cat "$TMP/ns.err")): net_tap NOT RUN" >&2
	echo "##########################################################" >&2
	exit 77
fi
trap '[ -n "$FVPID" ] && kill -9 "$FVPID" 2>/dev/null; [ -n "$IPPID" ] && wait "$IPPID" 2>/dev/null; ip netns del "$NS" 2>/dev/null; rm -rf "$TMP"' EXIT
in_ns() { ip netns exec "$NS" "$@"; }

in_ns ip tuntap add dev fvtap0 mode tap user 0 || fail "cannot make tap fvtap0"
in_ns ip tuntap add dev fvtap1 mode tap user 0 || fail "cannot make tap fvtap1"
in_ns ip tuntap add dev fvtap2 mode tap || fail "cannot make tap fvtap2"
in_ns ip link set fvtap0 up || fail "cannot bring fvtap0 up"

for bin in $VARIANTS; do
	FV=$BUILDDIR/$bin
	for sb in on off; do
		LOGS=$TMP/logs-$bin-$sb
		# 1. an existing tap
		in_ns "$FV" run --sandbox "$sb" --quiet --log-dir "$LOGS" \
			--vm name=n1,mem=64M,net=tap:fvtap0,steps=fill+verify \
			>"$TMP/out" 2>"$TMP/err" || { cat "$TMP/err"; fail "$bin --sandbox $sb: net=tap:fvtap0"; }
		expect_in "$LOGS/n1.log" 'virtio-net on tap fvtap0 \(attached\), MAC 52:54:00:[0-9a-f:]{8}$'
		in_ns ip link show fvtap0 >/dev/null 2>&1 || fail "$bin: fvtap0 went with the guest"
		# 2. a tap foldvm makes
		in_ns "$FV" run --sandbox "$sb" --quiet --log-dir "$LOGS" \
			--vm name=n2,mem=64M,net=tap,mac=52:54:00:00:00:02,steps=fill+verify \
			>"$TMP/out" 2>"$TMP/err" || { cat "$TMP/err"; fail "$bin --sandbox $sb: net=tap"; }
		expect_in "$LOGS/n2.log" 'virtio-net on tap fv-n2 \(created by foldvm, gone when it ends\), MAC 52:54:00:00:00:02'
		! in_ns ip link show fv-n2 >/dev/null 2>&1 || fail "$bin: fv-n2 outlived foldvm"
		echo "PASS: $bin --sandbox $sb: net=tap:fvtap0 attached (and kept), net=tap made fv-n2 (and gone)"
	done

	# 3. refused before anything runs
	for bad in "net=tap:a/b|--vm net: tap name 'a/b' must be 1-15 of" \
		"net=tap:0123456789abcdef|--vm net: tap name '0123456789abcdef' must be 1-15" \
		"net=bridge|--vm net: 'bridge' is not tap or tap:NAME" \
		"net=tap,mac=01:00:5e:00:00:01|--vm mac: MAC '01:00:5e:00:00:01' is a multicast address" \
		"net=tap,mac=52:54:00:12:34|--vm mac: '52:54:00:12:34' is not a MAC address" \
		"mac=52:54:00:12:34:56|mac= needs net="; do
		rc=0
		in_ns "$FV" run --quiet --vm "name=b,mem=64M,${bad%%|*}" >"$TMP/out" 2>"$TMP/err" || rc=$?
		[ "$rc" = 2 ] || fail "$bin: ${bad%%|*}: exit $rc, not 2"
		expect_in "$TMP/err" "${bad#*|}"
	done
	echo "PASS: $bin: bad tap names and MACs refused, exit 2"

	# 4. vm-create under the sandbox (a guest of the command line has
	# net=, so the workers may open /dev/net/tun)
	RUN=$TMP/run-$bin
	CTL="$BUILDDIR/foldctl --run-dir $RUN"
	# `ip netns exec` waits for its command in a child: foldvm's own pid
	# is what SIGTERM must reach.
	rm -f "$TMP/fv.pid"
	in_ns sh -c 'echo $$ >"$0"; exec "$@"' "$TMP/fv.pid" \
		"$FV" run --persist --quiet --run-dir "$RUN" --log-dir "$TMP/logs-$bin" \
		--vm name=h1,mem=64M,net=tap:fvtap0,steps=fill+wait >"$TMP/fv.out" 2>&1 &
	IPPID=$!
	wait_for 60 test -s "$TMP/fv.pid" || fail "foldvm did not start"
	FVPID=$(cat "$TMP/fv.pid")
	wait_for 60 test -S "$RUN/host.qmp" || { cat "$TMP/fv.out"; fail "no host socket"; }
	$CTL create name=c1,mem=64M,net=tap:fvtap1,steps=fill+wait >"$TMP/o" 2>&1 ||
		{ cat "$TMP/o" "$TMP/fv.out"; fail "$bin: vm-create on a tap owned by uid 0"; }
	wait_for 60 grep -q 'virtio-net on tap fvtap1 (attached)' "$TMP/logs-$bin/c1.log" ||
		fail "$bin: c1 did not attach to fvtap1"
	$CTL create name=c2,mem=64M,net=tap:fvnosuch >"$TMP/o" 2>&1 && fail "$bin: vm-create made a tap under the sandbox"
	expect_in "$TMP/o" "tap 'fvnosuch' does not exist, and a sandboxed worker cannot create one: make it first \\(ip tuntap add dev fvnosuch mode tap user 0"
	$CTL create name=c3,mem=64M,net=tap:fvtap2 >"$TMP/o" 2>&1 && fail "$bin: vm-create attached to a tap of no owner"
	expect_in "$TMP/o" "tap 'fvtap2' is not owned by uid 0, so a sandboxed worker may not attach to it"
	$CTL create name=c4,mem=64M,net=tap:lo >"$TMP/o" 2>&1 && fail "$bin: vm-create took lo for a tap"
	expect_in "$TMP/o" "'lo' is not a tap device"
	$CTL destroy c1 >/dev/null || fail "$bin: destroy c1"
	$CTL destroy h1 >/dev/null || fail "$bin: destroy h1"
	kill -TERM "$FVPID"
	wait "$IPPID" 2>/dev/null
	FVPID=
	in_ns ip link show fvtap1 >/dev/null 2>&1 || fail "$bin: fvtap1 went with its guest"
	echo "PASS: $bin: vm-create under the sandbox: attached to fvtap1 (uid 0's); a tap that does not exist and one of no owner refused, saying how"
done
