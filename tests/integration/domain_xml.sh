#!/bin/sh
# Guests defined by libvirt domain XML (--domain-xml): the host's libvirt
# qemu hooks run around them as libvirtd runs them (order, arguments, the
# XML on stdin, abort at prepare/start, timeout, a dead worker's guest
# finished), the per-domain lock, the
# control socket by uuid, --strict, bad documents, and foldvm-libvirt-hook.
. "$(dirname "$0")/lib.sh"
require_kvm
command -v socat >/dev/null || fail "socat missing (scripts/setup installs it)"
NS=https://foldvm.dev/xmlns/libvirt/domain/1.0
HOOK=$BUILDDIR/foldvm-libvirt-hook

# write_domain FILE NAME UUID STEPS [DEVICES]
write_domain() {
	cat >"$1" <<XML
<domain type='kvm'>
  <name>$2</name>
  <uuid>$3</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <metadata>
    <foldvm:vm xmlns:foldvm='$NS'>
      <foldvm:dedup enabled='yes' trust-domain='tenant-a'/>
      <foldvm:payload steps='$4' zero='20' shared='30'/>
    </foldvm:vm>
  </metadata>
  <os><type arch='x86_64'>hvm</type></os>
  <on_reboot>destroy</on_reboot>
  <devices><serial type='pty'/>${5:-}</devices>
</domain>
XML
}

# make_hook DIR/NAME [FAIL_AT_OP [STDERR [SLEEP]]]: a hook that logs its
# name and arguments, keeps its stdin, and fails (or hangs) at one op.
make_hook() {
	cat >"$1" <<SH
#!/bin/sh
me=\$(basename "\$0")
cat >"$TMP/stdin.\$me.\$2"
echo "\$me \$*" >>"$TMP/hook.log"
if [ "\$2" = "${2:-none}" ]; then
	[ -n "${4:-}" ] && sleep ${4:-0}
	echo "${3:-}" >&2
	exit 3
fi
exit 0
SH
	chmod +x "$1"
}

# A hooks directory the way operators have one: qemu, qemu.d/* (one not
# executable: skipped, as libvirt skips it), and foldvm's own hook, which
# must let foldvm's own runs through.
mkdir -p "$TMP/hooks/qemu.d"
make_hook "$TMP/hooks/qemu"
make_hook "$TMP/hooks/qemu.d/20-second"
make_hook "$TMP/hooks/qemu.d/10-first"
make_hook "$TMP/hooks/qemu.d/15-notexec"
chmod -x "$TMP/hooks/qemu.d/15-notexec"
cp "$HOOK" "$TMP/hooks/qemu.d/90-foldvm-libvirt-hook"

n=0
for v in $VARIANTS; do
	n=$((n + 1))
	uuid="f01d0000-0000-4000-8000-00000000000$n"
	name="dom$n"
	run() { "$BUILDDIR/$v" run --quiet --lock-dir "$TMP/locks" --log-dir "$TMP/log" "$@"; }
	write_domain "$TMP/$name.xml" "$name" "$uuid" "fill+verify"

	# 1. every lifecycle point, every script in order, the XML on stdin
	rm -f "$TMP/hook.log" "$TMP"/stdin.*
	run --dedup --domain-xml "$TMP/$name.xml" --hooks-dir "$TMP/hooks" \
		>"$TMP/out" 2>"$TMP/err" || { cat "$TMP/err"; fail "$v: domain run"; }
	expect_in "$TMP/out" "^$name +64M +1 +shutdown .*OK"
	for op in "prepare begin" "start begin" "started begin" "stopped end" "release end"; do
		for s in qemu 10-first 20-second; do
			echo "$s $name $op -"
		done
	done >"$TMP/hook.want"
	cmp -s "$TMP/hook.want" "$TMP/hook.log" ||
		{ diff "$TMP/hook.want" "$TMP/hook.log"; fail "$v: hook order or arguments"; }
	for s in qemu 10-first 20-second; do
		for op in prepare start started stopped release; do
			cmp -s "$TMP/$name.xml" "$TMP/stdin.$s.$op" ||
				fail "$v: $s $op did not get the domain XML on stdin"
		done
	done
	[ ! -e "$TMP/stdin.15-notexec.prepare" ] || fail "$v: a non-executable hook ran"
	echo "PASS: $v: 5 lifecycle points x 3 hooks in libvirt's order, XML on stdin"

	# 2. a hook refusing 'prepare begin' aborts the start with its stderr;
	#    the cleanup points still run, as libvirt runs them
	for op in prepare start; do
		rm -rf "$TMP/h2" "$TMP/hook.log"; mkdir -p "$TMP/h2/qemu.d"
		make_hook "$TMP/h2/qemu.d/10-net" "$op" "no bridge br-tenant-a"
		rc=0; run --domain-xml "$TMP/$name.xml" --hooks-dir "$TMP/h2" \
			>"$TMP/out" 2>"$TMP/err" || rc=$?
		[ "$rc" = 2 ] || { cat "$TMP/err"; fail "$v: $op refusal exit $rc, not 2"; }
		expect_in "$TMP/err" "10-net" "$op begin" "exited with status 3" "no bridge br-tenant-a"
		[ "$op" = prepare ] && want="prepare begin|stopped end|release end" ||
			want="prepare begin|start begin|stopped end|release end"
		got=$(sed "s/^10-net $name //; s/ -\$//" "$TMP/hook.log" | paste -sd'|')
		[ "$got" = "$want" ] || fail "$v: after a refused $op: hooks $got, not $want"
	done
	echo "PASS: $v: a hook's refusal at prepare and at start aborts the guest, with its stderr"

	# 3. a hook that hangs is killed after --hook-timeout
	rm -rf "$TMP/h3"; mkdir -p "$TMP/h3/qemu.d"
	# (the hook sleeps 600 s; a run that waited for it would take that
	# long, one that kills it takes about a second: 120 s tells them apart
	# on any machine that can run this suite at all)
	make_hook "$TMP/h3/qemu.d/10-slow" prepare "never seen" 600
	start=$(date +%s); rc=0
	run --domain-xml "$TMP/$name.xml" --hooks-dir "$TMP/h3" --hook-timeout 1 \
		>"$TMP/out" 2>"$TMP/err" || rc=$?
	[ "$rc" = 2 ] || { cat "$TMP/err"; fail "$v: hanging hook: exit $rc"; }
	[ $(( $(date +%s) - start )) -lt 120 ] || fail "$v: the hook timeout did not end it"
	expect_in "$TMP/err" "10-slow" "timed out"
	echo "PASS: $v: a hanging hook is killed after --hook-timeout"

	# 4. one domain runs once: the lock by uuid; its socket by uuid
	write_domain "$TMP/$name-wait.xml" "$name" "$uuid" "fill+wait"
	"$BUILDDIR/$v" run --quiet --lock-dir "$TMP/locks" --log-dir "$TMP/log" \
		--domain-xml "$TMP/$name-wait.xml" --no-hooks --run-dir "$TMP/r1" \
		>"$TMP/out1" 2>"$TMP/err1" &
	pid=$!
	trap 'kill $pid 2>/dev/null; rm -rf "$TMP"' EXIT
	wait_for 60 test -S "$TMP/r1/by-uuid/$uuid.qmp" || { cat "$TMP/err1"; fail "$v: no socket by uuid"; }
	qmp_talk "$TMP/r1/by-uuid/$uuid.qmp" '{"execute":"query-uuid"}' \
		'{"execute":"query-name"}' >"$TMP/qmp"
	expect_in "$TMP/qmp" "\"UUID\": *\"$uuid\"" "\"name\": *\"$name\""
	rc=0; run --domain-xml "$TMP/$name.xml" --no-hooks --run-dir "$TMP/r2" \
		>"$TMP/out" 2>"$TMP/err" || rc=$?
	[ "$rc" = 2 ] || fail "$v: the same domain started twice (exit $rc)"
	expect_in "$TMP/err" "already runs under another foldvm \\(pid $pid, domain $name"
	kill -TERM $pid; wait $pid || fail "$v: the waiting domain did not end cleanly"
	trap 'rm -rf "$TMP"' EXIT
	[ ! -e "$TMP/r1/by-uuid/$uuid.qmp" ] || fail "$v: the uuid link outlived the guest"
	[ ! -e "$TMP/locks/$uuid.lock" ] || fail "$v: the lock file outlived the guest"
	echo "PASS: $v: one domain runs once (lock by uuid); its socket by uuid answers query-uuid"

	# 4b. its worker killed: the supervisor finishes the guest as libvirt
	#     finishes a QEMU that died ('stopped end', 'release end' hooks),
	#     and drops its lock
	rm -f "$TMP/hook.log"
	"$BUILDDIR/$v" run --quiet --lock-dir "$TMP/locks" --log-dir "$TMP/log" \
		--domain-xml "$TMP/$name-wait.xml" --hooks-dir "$TMP/hooks" --run-dir "$TMP/r3" \
		>"$TMP/out3" 2>"$TMP/err3" &
	pid=$!
	trap 'kill $pid 2>/dev/null; rm -rf "$TMP"' EXIT
	wait_for 60 grep -q "^20-second $name started begin" "$TMP/hook.log" ||
		{ cat "$TMP/err3"; fail "$v: the waiting domain never started"; }
	wpid=$(pgrep -P $pid -x fvw-tenant-a)
	[ -n "$wpid" ] || fail "$v: no worker for domain tenant-a"
	kill -9 "$wpid"
	rc=0; wait $pid || rc=$?
	trap 'rm -rf "$TMP"' EXIT
	[ "$rc" = 1 ] || { cat "$TMP/err3"; fail "$v: a killed worker's run exited $rc, not 1"; }
	for op in "stopped end" "release end"; do
		for s in qemu 10-first 20-second; do
			echo "$s $name $op -"
		done
	done >"$TMP/hook.want"
	tail -n 6 "$TMP/hook.log" | cmp -s "$TMP/hook.want" - ||
		{ cat "$TMP/hook.log"; fail "$v: a dead worker's guest did not get its cleanup hooks"; }
	[ ! -e "$TMP/locks/$uuid.lock" ] || fail "$v: the lock outlived the dead worker's guest"
	echo "PASS: $v: a dead worker's domain guest gets 'stopped end', 'release end'; its lock goes"

	# 5. what foldvm cannot honour: listed, or refused with --strict
	write_domain "$TMP/$name-disk.xml" "$name" "$uuid" "fill+verify" \
		"<disk type='block' device='disk'><source dev='/dev/sdz'/><target dev='vda'/></disk><interface type='network'><source network='default'/></interface>"
	rc=0; run --strict --domain-xml "$TMP/$name-disk.xml" --no-hooks >"$TMP/out" 2>"$TMP/err" || rc=$?
	[ "$rc" = 2 ] || fail "$v: --strict ran a domain with a disk"
	expect_in "$TMP/err" "--strict: foldvm cannot honour 2 settings: <disk type='block'> \\(one virtio disk backed by a file, at most\\); <interface type='network'> \\(one virtio interface on a tap \\(type='ethernet'\\), at most\\)"
	run --domain-xml "$TMP/$name-disk.xml" --no-hooks >"$TMP/out" 2>"$TMP/err" ||
		fail "$v: a domain with a disk did not run without --strict"
	expect_in "$TMP/err" "domain $name .*not honoured, running without: <disk type='block'>"
	echo "PASS: $v: unsupported settings listed in one message; --strict refuses"

	# 6. bad documents: one clear sentence, exit 2, nothing runs
	printf '<domain type="kvm"><name>x</name>' >"$TMP/bad1.xml"
	sed 's/unit=.MiB./unit="MegaBytes"/' "$TMP/$name.xml" >"$TMP/bad2.xml"
	sed '/<uuid>/d' "$TMP/$name.xml" >"$TMP/bad3.xml"
	for f in bad1:"malformed XML at line" bad2:"unit 'MegaBytes' is not one libvirt knows" \
		 bad3:"has no <uuid>" missing:"missing.xml"; do
		rc=0; run --domain-xml "$TMP/${f%%:*}.xml" >"$TMP/out" 2>"$TMP/err" || rc=$?
		[ "$rc" = 2 ] || fail "$v: ${f%%:*}: exit $rc"
		expect_in "$TMP/err" "${f#*:}"
	done
	echo "PASS: $v: malformed XML, wrong units, missing elements and files refused"
done

# foldvm-libvirt-hook, as libvirtd calls it
write_domain "$TMP/fv.xml" web1 "f01d0000-0000-4000-8000-0000000000aa" "fill"
sed "/<metadata>/,/<\\/metadata>/d" "$TMP/fv.xml" >"$TMP/plain.xml"
rc=0; "$HOOK" web1 prepare begin - <"$TMP/fv.xml" 2>"$TMP/err" || rc=$?
[ "$rc" = 1 ] || fail "foldvm-libvirt-hook let libvirt start a foldvm domain (exit $rc)"
expect_in "$TMP/err" "domain 'web1' runs under foldvm" \
	"foldvm run --libvirt qemu:///system --domain web1"
"$HOOK" web1 prepare begin - <"$TMP/plain.xml" || fail "hook refused a plain domain"
for op in "start begin" "started begin" "stopped end" "release end" "migrate begin"; do
	# shellcheck disable=SC2086
	"$HOOK" web1 $op - <"$TMP/fv.xml" || fail "hook failed at $op"
done
FOLDVM_VERSION=test "$HOOK" web1 prepare begin - <"$TMP/fv.xml" ||
	fail "hook refused foldvm's own start"
head -c 100000 /dev/urandom | "$HOOK" x prepare begin - 2>/dev/null ||
	fail "hook refused a domain it could not read"
rc=0; "$HOOK" 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "hook without arguments: exit $rc"
! ldd "$HOOK" | grep -q libvirt || fail "foldvm-libvirt-hook links libvirt"
echo "PASS: foldvm-libvirt-hook refuses foldvm domains at prepare only, passes the rest"
