#!/bin/sh
# Trust domains are processes (docs/architecture.md, "Processes"):
#  - guests of one domain share a worker process and merge there; guests
#    of another domain run in another; the supervisor holds none;
#  - kill -9 of a worker while it merges ends its own guests only: each is
#    reported with SHUTDOWN (reason host-error) on host.qmp, the other
#    domain's guest runs on and verifies all its memory, the dead domain's
#    guests can be created again, and the run's table reports the lost
#    guests as failed (exit status 1);
#  - every worker is sandboxed (Seccomp: 2, NoNewPrivs, no capability);
#    in the test build, a guest that asks its worker to open a file
#    outside its own is refused and runs on, and one that asks it to
#    execve ends that worker only, reported with the call's name;
#  - a worker whose last guest is destroyed ends (20 domains come and go);
#  - kill -9 of the supervisor takes every worker with it (no orphans);
#  - --cgroup DIR: each domain's worker runs in DIR/DOMAIN from its start,
#    its figures are in the stats, the cgroup goes with the worker; a
#    memory limit is set where cgroup v2 has the memory controller and
#    refused with the reason where it has not.
. "$(dirname "$0")/lib.sh"
require_kvm
command -v socat >/dev/null || fail "socat missing (scripts/setup installs it)"

# the pid of guest NAME's worker, from query-vms
guest_pid() {
	$CTL --json list | python3 -c '
import json, sys
print(next((str(v["pid"]) for v in json.load(sys.stdin) if v["name"] == sys.argv[1]), ""))' "$1"
}

# the merges of DOMAIN's engine so far, from query-dedup-host
domain_merges() {
	$CTL --json stats | python3 -c '
import json, sys
print(next((str(d["merges"]) for d in json.load(sys.stdin)["domains"]
            if d["domain"] == sys.argv[1]), "0"))' "$1"
}

merges_at_least() { [ "$(domain_merges "$1")" -ge "$2" ] 2>/dev/null; }
gone() { ! kill -0 "$1" 2>/dev/null; }
unlisted() { [ -z "$(guest_pid "$1")" ]; }
waiting() { $CTL raw "$1" '{"execute":"query-status"}' | grep -q '"foldvm-step": *"wait"'; }

create() { # NAME DOMAIN STEPS
	$CTL raw host "{\"execute\":\"vm-create\",\"arguments\":{\"name\":\"$1\",\"domain\":\"$2\",\"mem\":\"64M\",\"steps\":\"$3\",\"dedup\":true}}" >"$TMP/c.out" ||
		{ cat "$TMP/c.out"; fail "vm-create $1"; }
	grep -q '"return"' "$TMP/c.out" || { cat "$TMP/c.out"; fail "vm-create $1: $(cat "$TMP/c.out")"; }
}

for bin in $VARIANTS; do
	RUN="$TMP/run-$bin"
	CTL="$BUILDDIR/foldctl --run-dir $RUN"
	persist_start "$bin" "$RUN"
	rm -rf "$TMP/ev"
	qmp_open "$RUN/host.qmp" "$TMP/ev" 7 || fail "no QMP connection"
	qmp_send 7 "$TMP/ev" '{"execute":"qmp_capabilities"}' || fail "no negotiation"

	# a1, a2: domain red (clones: same seed, same layout); b1: blue.
	# They wait until the run is interrupted, then verify everything.
	create a1 red fill+wait+verify
	create a2 red fill+wait+verify
	create b1 blue fill+wait+verify
	pa1=$(guest_pid a1); pa2=$(guest_pid a2); pb1=$(guest_pid b1)
	[ -n "$pa1" ] && [ -n "$pb1" ] || { $CTL --json list; fail "no pid in query-vms"; }
	[ "$pa1" = "$pa2" ] || fail "one domain, two processes: $pa1 $pa2"
	[ "$pa1" != "$pb1" ] || fail "two domains, one process: $pa1"
	[ "$pa1" != "$FVPID" ] && [ "$pb1" != "$FVPID" ] || fail "a guest in the supervisor"
	for p in "$pa1" "$pb1"; do
		ppid=$(awk '{ print $4 }' "/proc/$p/stat")
		[ "$ppid" = "$FVPID" ] || fail "worker $p is not the supervisor's child ($ppid)"
		grep -q '^Name:.*fvw-' "/proc/$p/status" || fail "worker $p is not named fvw-*"
	done
	ls -l "/proc/$FVPID/fd" | grep -q /dev/kvm && fail "the supervisor holds /dev/kvm"
	for p in "$pa1" "$pb1"; do
		st="/proc/$p/status"
		grep -Eq '^Seccomp:[[:space:]]+2$' "$st" || { cat "$st"; fail "worker $p has no seccomp filter"; }
		grep -Eq '^NoNewPrivs:[[:space:]]+1$' "$st" || fail "worker $p may gain privileges"
		for c in CapEff CapPrm CapBnd CapAmb; do
			grep -Eq "^$c:[[:space:]]+0+\$" "$st" || { grep ^Cap "$st"; fail "worker $p keeps capabilities ($c)"; }
		done
	done
	ls -l "/proc/$pb1/fd" | grep -q /dev/kvm || fail "blue's worker holds no /dev/kvm"
	# red's guests share content and merge in their worker
	wait_for 120 merges_at_least red 100 || { $CTL --json stats; fail "red never merged"; }

	# kill -9 red's worker while it runs
	kill -9 "$pa1"
	wait_for 60 gone "$pa1" || fail "worker $pa1 still alive"
	wait_for 60 grep -q '"event": *"SHUTDOWN".*"name": *"a2"' "$TMP/ev/out" ||
		{ cat "$TMP/ev/out"; fail "no SHUTDOWN for a2"; }
	expect_in "$TMP/ev/out" '"event": *"SHUTDOWN".*"reason": *"host-error".*"name": *"a1"' \
		'"detail": *"the worker of domain red \(pid [0-9]+\) killed by signal 9'
	wait_for 60 unlisted a1 || fail "a1 still listed after its worker died"
	kill -0 "$FVPID" || fail "the supervisor died with a worker"
	$CTL raw b1 '{"execute":"query-status"}' >"$TMP/st.out"
	grep -Eq "\"status\": *\"running\"" "$TMP/st.out" || { cat "$TMP/st.out" "$TMP/fv.out"; fail "b1 is not running after red died"; }
	[ "$(guest_pid b1)" = "$pb1" ] || fail "b1 changed process"

	# red again: a new worker, and it merges
	create a1 red fill+wait+verify
	create a2 red fill+wait+verify
	pa1b=$(guest_pid a1)
	[ -n "$pa1b" ] && [ "$pa1b" != "$pa1" ] || fail "red's new worker: '$pa1b'"
	wait_for 120 merges_at_least red 100 || { $CTL --json stats; fail "red never merged again"; }
	qmp_close "$TMP/ev" 7

	# the end: every live guest verifies; the two lost ones failed.  A
	# signal gives the guests 10 s to finish their steps: first every one
	# has filled its memory and waits, so only a verify of 64 MiB (well
	# under a second of CPU) is left to run in them.
	for g in a1 a2 b1; do
		wait_for 300 waiting $g || fail "$g never reached its wait step"
	done
	kill -INT "$FVPID"
	wait "$FVPID"; rc=$?
	[ "$rc" -eq 1 ] || { cat "$TMP/fv.out"; fail "exit status $rc, not 1 (two guests lost)"; }
	expect_in "$TMP/fv.out" '^b1 .* OK \([0-9]+ pages, 0 bad\)' \
		'^a1 .* OK \([0-9]+ pages, 0 bad\)' '^a2 .* OK \([0-9]+ pages, 0 bad\)' \
		"a1: FAILED: its worker \\(domain red, pid $pa1\\) killed by signal 9"
	[ "$(grep -c 'OK (' "$TMP/fv.out")" -eq 3 ] || { cat "$TMP/fv.out"; fail "not 3 verified guests"; }

	# no orphans: kill -9 of the supervisor ends its workers
	persist_start "$bin" "$RUN"
	# more trust domains over a supervisor's life than at once (16): a
	# worker left without guests ends and no longer counts
	for i in $(seq 1 20); do
		create "z$i" "zone$i" wait
		pz=$(guest_pid "z$i")
		$CTL destroy "z$i" >/dev/null || fail "destroy z$i"
		wait_for 60 gone "$pz" || fail "zone$i's worker $pz outlived its last guest"
	done
	create x1 green fill+wait
	create y1 yellow fill+wait
	px=$(guest_pid x1); py=$(guest_pid y1)
	if [ "$bin" = foldvm-san ]; then
		# the device's probes (test build only): open is refused by
		# Landlock and the guest goes on; execve is stopped by the
		# filter, which ends that worker alone, named with the call
		create p1 probe1 fill+sandbox-probe:2+verify+wait
		wait_for 120 grep -q 'guest p1: sandbox probe 2 refused (Permission denied)' "$TMP/fv.out" ||
			{ cat "$TMP/fv.out"; fail "p1: no refused open"; }
		$CTL raw p1 '{"execute":"query-status"}' | grep -Eq '"status": *"running"' ||
			fail "p1 stopped after its refused open"
		# (its worker may be gone before query-vms could name its pid)
		create p2 probe2 sandbox-probe:1+wait
		wait_for 60 grep -q "the worker of domain probe2 (pid [0-9]*) was stopped by its sandbox: execve (59) is not on its list of system calls" "$TMP/fv.out" ||
			{ cat "$TMP/fv.out"; fail "no report of p2's forbidden execve"; }
		wait_for 60 unlisted p2 || fail "p2 still listed after its worker was stopped"
		for p in "$px" "$py" "$(guest_pid p1)"; do
			kill -0 "$p" || fail "worker $p died with p2's"
		done
	fi
	kill -9 "$FVPID"
	wait "$FVPID" 2>/dev/null
	wait_for 60 gone "$px" || fail "worker $px outlived its supervisor"
	wait_for 60 gone "$py" || fail "worker $py outlived its supervisor"
	echo "$bin: isolation OK (red $pa1 -> $pa1b, blue $pb1)"
done

# cgroups (the plain build; the code is the same in both)
CG_ROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
if [ -z "$CG_ROOT" ]; then
	echo "SKIP: cgroups: no cgroup v2 mounted"
	exit 0
fi
CG="$CG_ROOT/foldvm-test-$$"
RUN="$TMP/run-cg"
CTL="$BUILDDIR/foldctl --run-dir $RUN"
persist_start foldvm "$RUN" --cgroup "$CG"
trap 'kill -9 $FVPID 2>/dev/null; rmdir "$CG"/* "$CG" 2>/dev/null; rm -rf "$TMP"' EXIT
create c1 cyan fill+wait
pc=$(guest_pid c1)
grep -q "^0::.*/foldvm-test-$$/cyan\$" "/proc/$pc/cgroup" ||
	{ cat "/proc/$pc/cgroup"; fail "cyan's worker is not in $CG/cyan"; }
$CTL --json stats | python3 -c '
import json, sys
d = next(d for d in json.load(sys.stdin)["domains"] if d["domain"] == "cyan")
cg = d["cgroup"]
assert cg["path"] == sys.argv[1], cg
assert cg["cpu-usec"] > 0, cg' "$CG/cyan" || fail "no cgroup figures for cyan"
$CTL destroy c1 >/dev/null || fail "destroy c1"
wait_for 60 gone "$pc" || fail "cyan's worker outlived its guest"
wait_for 60 test ! -d "$CG/cyan" || fail "cyan's cgroup outlived its worker"
kill -INT "$FVPID"
wait "$FVPID" || fail "the cgroup run did not end cleanly"
if grep -qw memory "$CG_ROOT/cgroup.subtree_control"; then
	persist_start foldvm "$RUN" --cgroup "$CG" --domain-mem-max cyan=256M
	create c1 cyan fill+wait
	[ "$(cat "$CG/cyan/memory.max")" = 268435456 ] || fail "cyan's memory.max is not 256M"
	$CTL --json stats | grep -q '"memory-max-bytes": *268435456' || fail "no memory-max-bytes in the stats"
	wait_for 300 waiting c1 || fail "c1 never reached its wait step"
	kill -INT "$FVPID"
	wait "$FVPID" || fail "the limited run did not end cleanly"
	echo "cgroups: memory.max set"
else
	rc=0
	"$BUILDDIR/foldvm" run --quiet --cgroup "$CG" --domain-mem-max cyan=256M \
		--vm name=c1,domain=cyan,mem=64M >"$TMP/cg.out" 2>&1 || rc=$?
	[ "$rc" = 2 ] || { cat "$TMP/cg.out"; fail "a memory limit without the controller: exit $rc"; }
	expect_in "$TMP/cg.out" "--domain-mem-max needs the memory controller in cgroup v2"
	echo "cgroups: no memory controller in cgroup v2 here; a limit is refused with the reason"
fi
echo "cgroups OK ($CG)"
