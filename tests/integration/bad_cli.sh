#!/bin/sh
# Bad command lines: one-line error on stderr, exit status 2, never a crash.
. "$(dirname "$0")/lib.sh"

check_usage_error() {
	bin=$1; shift
	"$BUILDDIR/$bin" "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	[ "$rc" -eq 2 ] || { cat "$TMP/err"; fail "$bin $*: exit $rc, wanted 2"; }
	[ "$(wc -l <"$TMP/err")" -eq 1 ] || { cat "$TMP/err"; fail "$bin $*: error is not one line"; }
	grep -q '^foldvm: ' "$TMP/err" || fail "$bin $*: error lacks 'foldvm:' prefix"
}

for bin in $VARIANTS; do
	check_usage_error "$bin"
	check_usage_error "$bin" frobnicate
	check_usage_error "$bin" run
	check_usage_error "$bin" run --bogus
	check_usage_error "$bin" run --vm name=a --vm name=a
	check_usage_error "$bin" run --vm mem=lots
	check_usage_error "$bin" run --vm mem=12X
	check_usage_error "$bin" run --vm vcpus=0
	check_usage_error "$bin" run --vm payload=/nonexistent/image.bin
	check_usage_error "$bin" run --vm name=../x
	check_usage_error "$bin" run --vm steps=explode
	check_usage_error "$bin" run --vm
	check_usage_error "$bin" run --vm zero=80,shared=80
	check_usage_error "$bin" run --files /nonexistent --vm name=a
	check_usage_error "$bin" demo --guests 99
	check_usage_error "$bin" run --metrics nowhere --vm name=a
	expect_in "$TMP/err" "--metrics wants IPV4:PORT, \\[IPV6\\]:PORT or a socket path, not 'nowhere'"
	check_usage_error "$bin" run --metrics 127.0.0.1:65536 --vm name=a
	check_usage_error "$bin" run --metrics 300.1.1.1:80 --vm name=a
	expect_in "$TMP/err" "'300.1.1.1' is not an IPv4 address"
	check_usage_error "$bin" demo --metrics 127.0.0.1:9745
	grep -q "payload '/nonexistent/image.bin'" "$TMP/err" || true
	"$BUILDDIR/$bin" --version | grep -Eq '^foldvm [0-9]+\.[0-9]+' ||
		fail "$bin --version"
	"$BUILDDIR/$bin" --help | grep -q -- '--vm SPEC' || fail "$bin --help"
	"$BUILDDIR/$bin" --help | grep -q -- '--metrics ADDR' || fail "$bin --help: no --metrics"
done

# These need KVM: they get past parsing and fail creating the guest.
require_kvm
for bin in $VARIANTS; do
	# more memory than the host can map (the overcommit check refuses it)
	check_usage_error "$bin" run --log-dir "$TMP/logs" --vm name=huge,mem=64G \
		--vm name=huge2,mem=64G --vm name=huge3,mem=64G
	expect_in "$TMP/err" "cannot map .* guest memory"
	# a payload file that exists but is not a payload: refused by size
	head -c 2000000 /dev/zero >"$TMP/big.bin"
	check_usage_error "$bin" run --vm payload="$TMP/big.bin"
	expect_in "$TMP/err" "must be 1\.\.1048576"
	# a metrics socket that cannot be bound: the run does not start
	check_usage_error "$bin" run --no-control --metrics /nonexistent/dir/m.sock \
		--log-dir "$TMP/logs" --vm name=m,mem=16M
	expect_in "$TMP/err" "--metrics /nonexistent/dir/m.sock: bind: No such file"
done
echo "bad_cli: all bad command lines refused with exit 2"
