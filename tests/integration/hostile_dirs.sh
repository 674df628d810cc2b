#!/bin/sh
# Hostile run, lock and log directories (lib/fileutil.c fv_private_dir,
# control/qmp_endpoint.c): a directory another user owns or may write, or
# a symlink in its place, is refused with the reason; a socket path that
# is a directory or a planted symlink is refused and what it points to is
# left alone; a planted symlink at a serial log's name is not followed; a
# stale socket left by a killed foldvm is replaced.  Each refusal is a
# start that fails (exit 2) with one clear sentence.
. "$(dirname "$0")/lib.sh"
require_kvm
command -v socat >/dev/null || fail "socat missing (scripts/setup installs it)"
command -v python3 >/dev/null || fail "python3 missing (scripts/setup installs it)"

VM="name=a,mem=64M,steps=fill+verify"
fv() { "$BUILDDIR/foldvm" run --quiet "$@"; }

# refused DESC PATTERN ARGS...: foldvm run ARGS exits 2, saying PATTERN
refused() {
	desc=$1 pat=$2
	shift 2
	rc=0
	fv "$@" >"$TMP/out" 2>&1 || rc=$?
	[ "$rc" = 2 ] || { cat "$TMP/out"; fail "$desc: exit $rc, not 2"; }
	expect_in "$TMP/out" "$pat"
	echo "refused: $desc"
}

good() { mkdir -p "$1" && chmod 0700 "$1"; }

echo "secret" >"$TMP/victim"

# run directories
good "$TMP/r1"; chown 65534 "$TMP/r1"
refused "run dir owned by another user" "run directory $TMP/r1 belongs to uid 65534, not to foldvm's user" \
	--run-dir "$TMP/r1" --vm "$VM"
good "$TMP/r2"; chmod 0777 "$TMP/r2"
refused "run dir writable by others" "run directory $TMP/r2 may be written by others \\(mode 0777\\)" \
	--run-dir "$TMP/r2" --vm "$VM"
good "$TMP/r3real"; ln -s "$TMP/r3real" "$TMP/r3"
refused "run dir that is a symlink" "run directory $TMP/r3 is a symbolic link" \
	--run-dir "$TMP/r3" --vm "$VM"

# socket paths: a directory, a planted symlink
good "$TMP/r4"; mkdir "$TMP/r4/a.qmp"
refused "socket path that is a directory" "$TMP/r4/a.qmp exists and is not a socket" \
	--run-dir "$TMP/r4" --vm "$VM"
good "$TMP/r5"; ln -s "$TMP/victim" "$TMP/r5/host.qmp"
refused "socket path that is a planted symlink" "$TMP/r5/host.qmp exists and is not a socket" \
	--run-dir "$TMP/r5" --vm "$VM"
[ "$(cat "$TMP/victim")" = secret ] || fail "the symlink's target was touched"
[ -L "$TMP/r5/host.qmp" ] || fail "the planted symlink was removed"

# log directories and files
ln -s "$TMP/r3real" "$TMP/l1"
refused "log dir that is a symlink" "log directory $TMP/l1 is a symbolic link" \
	--log-dir "$TMP/l1" --vm "$VM"
good "$TMP/l2"; ln -s "$TMP/victim" "$TMP/l2/a.log"
refused "a planted symlink at a log's name" "cannot open $TMP/l2/a.log: Too many levels of symbolic links" \
	--log-dir "$TMP/l2" --vm "$VM"
[ "$(cat "$TMP/victim")" = secret ] || fail "the log symlink's target was written"

# lock directories (locks are taken for domain guests)
cat >"$TMP/d.xml" <<XML
<domain type='kvm'>
  <name>d1</name>
  <uuid>f01d0000-0000-4000-8000-0000000000d1</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <metadata>
    <foldvm:vm xmlns:foldvm='https://foldvm.dev/xmlns/libvirt/domain/1.0'>
      <foldvm:payload steps='fill'/>
    </foldvm:vm>
  </metadata>
  <os><type arch='x86_64'>hvm</type></os>
</domain>
XML
good "$TMP/k1"; chmod 0770 "$TMP/k1"
# The refusal comes from the supervisor while the worker is starting, and
# the worker ends with its reason; a supervisor that killed it at once
# lost the reason about once in 50 starts ("killed by signal 9"), so the
# refusal is asked for 25 times.
for i in $(seq 25); do
	refused "lock dir writable by its group ($i)" "lock directory $TMP/k1 may be written by others \\(mode 0770\\)" \
		--no-hooks --lock-dir "$TMP/k1" --domain-xml "$TMP/d.xml"
done

# a stale socket, as a killed foldvm leaves it, is replaced
good "$TMP/r6"
python3 -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$TMP/r6/host.qmp"
[ -S "$TMP/r6/host.qmp" ] || fail "no stale socket made"
"$BUILDDIR/foldvm" run --quiet --run-dir "$TMP/r6" --vm "name=a,mem=64M,steps=fill+wait" \
	>"$TMP/out6" 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null; rm -rf "$TMP"' EXIT
wait_for 60 sh -c "'$BUILDDIR/foldctl' --run-dir '$TMP/r6' list | grep -q '^a '" ||
	{ cat "$TMP/out6"; fail "a stale host socket was not replaced"; }
# (a signal leaves a guest 10 s to end its steps: it has filled first)
wait_for 300 sh -c "'$BUILDDIR/foldctl' --run-dir '$TMP/r6' raw a '{\"execute\":\"query-status\"}' |
	grep -q '\"foldvm-step\": *\"wait\"'" || fail "a never reached its wait step"
kill -INT $pid
wait $pid || { cat "$TMP/out6"; fail "the run over a stale socket did not end cleanly"; }
trap 'rm -rf "$TMP"' EXIT
echo "replaced: a stale socket"
echo "hostile directories OK"
