#!/bin/sh
# foldvm against a real libvirtd.  The test starts its own: Debian's
# libvirtd with its QEMU driver, as root, in a private mount namespace
# whose /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt,
# /var/log/libvirt (and an /etc/passwd with libvirt's qemu user) are
# directories of this test, so nothing of the host's libvirt is touched.
# Its hook directory holds foldvm-libvirt-hook as `make install` installs
# it, and a logging hook.
#
# Then, as an operator would: `virsh define` a domain with foldvm metadata;
# `virsh start` is refused by foldvm-libvirt-hook at prepare begin; foldvm
# runs it with --libvirt URI --domain NAME through the read-only socket and
# verifies the guest; metadata set later with `virsh metadata` is read
# through virDomainGetMetadata; the domain stays shut off in libvirt.
. "$(dirname "$0")/lib.sh"
require_kvm
for c in libvirtd virsh qemu-system-x86_64 unshare; do
	command -v $c >/dev/null || fail "$c missing (scripts/setup installs libvirt-daemon, libvirt-clients, qemu-system-x86)"
done
if [ "$(id -u)" != 0 ]; then
	echo "SKIP: the libvirt test starts a system libvirtd in a mount namespace: root only" >&2
	exit 77
fi
NS=https://foldvm.dev/xmlns/libvirt/domain/1.0
L=$TMP/lv
DAEMON=
trap '[ -n "$DAEMON" ] && kill $DAEMON 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT

mkdir -p "$L/etc/hooks/qemu.d" "$L/run" "$L/lib" "$L/cache" "$L/log" "$L/dest"
for d in /etc/libvirt /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt; do
	mkdir -p "$d"   # mount points only; stay empty on the host
done
# The QEMU driver resolves its user at start; Debian's is libvirt-qemu
# (made by libvirt-daemon-system, which the test does not need).
cp /etc/passwd "$L/passwd"; cp /etc/group "$L/group"
grep -q '^libvirt-qemu:' "$L/passwd" ||
	echo 'libvirt-qemu:x:64055:64055:libvirt qemu:/var/lib/libvirt:/usr/sbin/nologin' >>"$L/passwd"
grep -q '^libvirt-qemu:' "$L/group" || echo 'libvirt-qemu:x:64055:' >>"$L/group"
printf 'user = "root"\ngroup = "root"\nswtpm_user = "root"\nswtpm_group = "root"\n' >"$L/etc/qemu.conf"

# foldvm-libvirt-hook where `make install` puts it, then into this
# libvirtd's hook directory; and a hook that logs every call.
make -s -C "$BUILDDIR" install-libvirthookPROGRAMS DESTDIR="$L/dest" >/dev/null ||
	fail "make install of foldvm-libvirt-hook"
installed=$(find "$L/dest" -name foldvm-libvirt-hook -type f)
case "$installed" in
*/etc/libvirt/hooks/qemu.d/foldvm-libvirt-hook) ;;
*) fail "make install put the hook at '$installed', not /etc/libvirt/hooks/qemu.d/" ;;
esac
cp "$installed" "$L/etc/hooks/qemu.d/"
cat >"$L/etc/hooks/qemu.d/50-log" <<SH
#!/bin/sh
cat >/dev/null
echo "\${FOLDVM_VERSION:+foldvm }\$*" >>"$L/hook.log"
SH
chmod +x "$L/etc/hooks/qemu.d/50-log"

unshare --mount --propagation private sh -c "
	mount --bind '$L/passwd' /etc/passwd && mount --bind '$L/group' /etc/group &&
	mount --bind '$L/etc' /etc/libvirt && mount --bind '$L/run' /run/libvirt &&
	mount --bind '$L/lib' /var/lib/libvirt && mount --bind '$L/cache' /var/cache/libvirt &&
	mount --bind '$L/log' /var/log/libvirt &&
	exec libvirtd --pid-file '$L/libvirtd.pid'" >"$L/daemon.log" 2>&1 &
DAEMON=$!
wait_for 60 test -S "$L/run/libvirt-sock" || { cat "$L/daemon.log"; fail "libvirtd did not start"; }
URI="qemu+unix:///system?socket=$L/run/libvirt-sock"
RO="qemu+unix:///system?socket=$L/run/libvirt-sock-ro"
virsh() { command virsh -q -c "$URI" "$@"; }

cat >"$L/lvdom.xml" <<XML
<domain type='kvm'>
  <name>lvdom</name>
  <uuid>f01d0000-0000-4000-8000-0000000000c1</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <metadata>
    <foldvm:vm xmlns:foldvm='$NS'>
      <foldvm:dedup enabled='yes' trust-domain='tenant-a' rate='50000'/>
      <foldvm:payload steps='fill+verify' zero='20' shared='40'/>
    </foldvm:vm>
  </metadata>
  <os><type arch='x86_64'>hvm</type></os>
  <on_reboot>destroy</on_reboot>
  <devices><serial type='pty'/><console type='pty'/><memballoon model='none'/></devices>
</domain>
XML
sed -e 's/lvdom/lvplain/; s/0000000000c1/0000000000c2/' -e '/<metadata>/,/<\/metadata>/d' \
	"$L/lvdom.xml" >"$L/lvplain.xml"
virsh define "$L/lvdom.xml" >/dev/null || { tail "$L/daemon.log"; fail "virsh define"; }
virsh define "$L/lvplain.xml" >/dev/null || fail "virsh define (plain)"
echo "PASS: libvirtd started by the test; domains defined with virsh"

# libvirt's own QEMU driver must not start a foldvm domain
rc=0; virsh start lvdom >"$L/out" 2>"$L/err" || rc=$?
[ "$rc" != 0 ] || fail "libvirt started a foldvm domain under QEMU"
expect_in "$L/err" "domain 'lvdom' runs under foldvm" "foldvm run --libvirt qemu:///system --domain lvdom"
[ "$(virsh domstate lvdom)" = "shut off" ] || fail "lvdom is not shut off after the refusal"
grep -q "^lvdom prepare begin -" "$L/hook.log" || fail "libvirt did not run the hooks"
echo "PASS: virsh start of a foldvm domain refused by foldvm-libvirt-hook at prepare begin"

for v in $VARIANTS; do
	: >"$L/hook.log"
	"$BUILDDIR/$v" run --quiet --libvirt "$RO" --domain lvdom \
		--hooks-dir "$L/etc/hooks" --lock-dir "$TMP/locks" --log-dir "$TMP/log" \
		>"$L/out" 2>"$L/err" || { cat "$L/out" "$L/err"; fail "$v: --libvirt run"; }
	# dedup on from <foldvm:dedup enabled='yes'> (no --dedup given): a DEDUP row
	expect_in "$L/out" "^lvdom +64M +1 +shutdown .*OK \\(" "^DEDUP " "^lvdom +- +[0-9.]+ +[0-9.]+"
	# libvirt filled in a boot device and USB/input defaults: listed
	expect_in "$L/err" "domain lvdom \\(qemu\\+unix:///system.* domain lvdom\\): not honoured.*<os><boot>"
	for op in "prepare begin" "start begin" "started begin" "stopped end" "release end"; do
		grep -q "^foldvm lvdom $op -" "$L/hook.log" || fail "$v: hook not run at $op"
	done
	[ "$(virsh domstate lvdom)" = "shut off" ] || fail "$v: libvirt's view of lvdom changed"
	echo "PASS: $v: --libvirt ran lvdom from libvirt's definition (hooks included, its own hook let foldvm through)"
done

# metadata set through libvirt's API lands where foldvm reads it
rc=0; "$BUILDDIR/foldvm" run --quiet --libvirt "$RO" --domain lvplain --no-hooks \
	--lock-dir "$TMP/locks" >"$L/out" 2>"$L/err" || rc=$?
[ "$rc" = 2 ] || fail "a domain with nothing to run ran"
expect_in "$L/err" "nothing to run"
virsh metadata lvplain "$NS" --key foldvm --config \
	--set "<vm><payload steps='fill+verify'/></vm>" >/dev/null || fail "virsh metadata --set"
"$BUILDDIR/foldvm" run --quiet --libvirt "$RO" --domain lvplain --no-hooks \
	--lock-dir "$TMP/locks" >"$L/out" 2>"$L/err" || { cat "$L/err"; fail "lvplain after virsh metadata"; }
expect_in "$L/out" "^lvplain .*OK \\("
rc=0; "$BUILDDIR/foldvm" run --libvirt "$RO" --domain nosuch >"$L/out" 2>"$L/err" || rc=$?
[ "$rc" = 2 ] || fail "an unknown domain: exit $rc"
expect_in "$L/err" "no domain nosuch"
echo "PASS: metadata set with virsh metadata is read via virDomainGetMetadata; unknown domains refused"
virsh undefine lvdom >/dev/null && virsh undefine lvplain >/dev/null || fail "virsh undefine"
