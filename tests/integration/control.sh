#!/bin/sh
# The control plane, driven from outside like an operator would: a live
# `foldvm run --persist`, foldctl, and a raw QMP client (socat).
# Checks: socket permissions, greeting and negotiation rules, ids, every
# error class, oversized lines, every command, events, runtime create and
# destroy, refusal of another uid, and that the engine's saving agrees with
# the kernel's count of what the guests' memory costs - anonymous pages of
# their RAM plus the store memfd (tolerance: 10% + 2 MiB).
. "$(dirname "$0")/lib.sh"
require_kvm
command -v socat >/dev/null || fail "socat missing (scripts/setup installs it)"

# qmp SOCKET LINE... : negotiate, send each line, print every reply line
qmp() { qmp_talk "$@"; }

# qmp_raw SOCKET LINE... : no negotiation
qmp_raw() { qmp_talk --raw "$@"; }

# listen SOCKET: a negotiated connection on fd 7 that collects events in
# $TMP/ev/out until unlisten
listen() {
	rm -rf "$TMP/ev"
	qmp_open "$1" "$TMP/ev" 7 || fail "no QMP connection to $1"
	qmp_send 7 "$TMP/ev" '{"execute":"qmp_capabilities"}' || fail "no negotiation"
}
unlisten() { qmp_close "$TMP/ev" 7; cp "$TMP/ev/out" "$TMP/events"; }

# heard PATTERN...: each event pattern arrives on the listening connection
heard() {
	for pat in "$@"; do
		wait_for 60 grep -Eq -- "$pat" "$TMP/ev/out" ||
			{ cat "$TMP/ev/out"; fail "no event /$pat/"; }
	done
}

# passes_at_least GUEST N: the engine made N full passes over GUEST
passes_at_least() {
	p=$($CTL --json stats "$1" | tr ',' '\n' |
		sed -n 's/.*"full-passes": *\([0-9]*\).*/\1/p')
	[ "${p:-0}" -ge "$2" ]
}

json_num() { # FILE KEY: the first integer value of "KEY"
	sed -n "s/.*\"$2\": *\([0-9]*\).*/\1/p" "$1" | head -n 1
}

# What the guests' memory costs, from the kernel: the private (anonymous)
# pages in their RAM ranges plus the store memfd's blocks.
guests_mem() {
	store=$($CTL --json stats | tr ',' '\n' | sed -n 's/.*"store-bytes": *\([0-9]*\).*/\1/p')
	$CTL --json list | tr ',' '\n' |
		sed -n 's/.*"anon-bytes": *\([0-9]*\).*/\1/p' |
		awk -v st="${store:-0}" '{ s += $1 } END { print s + st }'
}

for bin in $VARIANTS; do
	RUN="$TMP/run-$bin"
	CTL="$BUILDDIR/foldctl --run-dir $RUN"
	persist_start "$bin" "$RUN"

	# permissions: the run directory 0700, sockets 0600
	[ "$(stat -c %a "$RUN")" = 700 ] || fail "run dir mode $(stat -c %a "$RUN")"
	[ "$(stat -c %a "$RUN/host.qmp")" = 600 ] || fail "socket mode"

	# greeting, negotiation, ids, errors (raw client)
	qmp_raw "$RUN/host.qmp" '{"execute":"query-vms"}' '{"execute":"qmp_capabilities","id":1}' \
		'{"execute":"qmp_capabilities"}' '{"execute":"query-vms","id":"x1"}' >"$TMP/o1"
	expect_in "$TMP/o1" '^\{"QMP": ?\{"version": ?\{"qemu"' '"capabilities": ?\[\]' \
		'"class": ?"CommandNotFound", ?"desc": ?"Expecting capabilities negotiation' \
		'^\{"return": ?\{\}, ?"id": ?1\}' 'negotiation is already complete' \
		'^\{"return": ?\[\], ?"id": ?"x1"\}'
	cr=$(printf '\r')
	[ "$(grep -c "$cr$" "$TMP/o1")" -eq "$(wc -l <"$TMP/o1")" ] || fail "replies not CRLF"
	long=$(head -c 70000 /dev/zero | tr '\000' x)
	qmp "$RUN/host.qmp" '{"execute" 1}' '[1,2]' '{"execute":"fly"}' \
		'{"execute":"vm-destroy","arguments":{"name":"x","bogus":1}}' \
		'{"execute":"vm-destroy","arguments":{"name":5},"id":[1]}' \
		'{"execute":"vm-destroy"}' "{\"execute\":\"$long\"}" \
		'{"execute":"query-commands","id":2}' >"$TMP/o2"
	expect_in "$TMP/o2" '"GenericError", ?"desc": ?"JSON parse error' \
		'QMP input must be a JSON object' \
		'"CommandNotFound", ?"desc": ?"The command fly has not been found' \
		"Parameter 'bogus' is unexpected" "Parameter 'name' expects" \
		"Parameter 'name' is missing" '"desc": ?"Request too long' \
		'"id": ?\[1\]' '"name": ?"vm-create"' '"id": ?2\}'
	# several requests on one line, as QEMU's JSON streamer takes them,
	# answered in order; a bad one among them is answered in its place
	qmp "$RUN/host.qmp" '{"execute":"query-vms","id":"m1"}{"execute":"fly","id":"m2"} {"execute":"query-vms","id":"m3"}' >"$TMP/o2b"
	[ "$(grep -Eo '"id": ?"m[0-9]"' "$TMP/o2b" | tr -d ' "' | paste -sd,)" = "id:m1,id:m2,id:m3" ] ||
		{ cat "$TMP/o2b"; fail "three requests on one line not answered in order"; }
	expect_in "$TMP/o2b" '"CommandNotFound".*"id": ?"m2"'

	# runtime guests, without dedup first: the kernel's baseline
	$CTL create name=a,mem=64M,domain=t,dedup=off,layout=scattered,steps=fill+wait || fail "create a"
	$CTL create name=b,mem=64M,domain=t,dedup=off,steps=fill+wait || fail "create b"
	$CTL create name=a,mem=64M >"$TMP/o3" 2>&1 && fail "duplicate name accepted"
	expect_in "$TMP/o3" "exists already"
	$CTL raw host '{"execute":"vm-create","arguments":{"name":"c","mem":"lots"}}' >"$TMP/o3"
	expect_in "$TMP/o3" '"GenericError".*Parameter .mem.: .lots. is not a size'
	# typed arguments: errors name the parameter
	$CTL raw host '{"execute":"vm-create","arguments":{"name":"c","mem":67108864,"vcpus":0,"dedup":false}}' >"$TMP/o3"
	expect_in "$TMP/o3" "Parameter 'vcpus': 0 is out of range 1..64"
	$CTL raw host '{"execute":"vm-create","arguments":{"name":"c","vcpus":true}}' >"$TMP/o3"
	expect_in "$TMP/o3" "Parameter 'vcpus' expects integer"
	$CTL create name=c,vcpus=65 >"$TMP/o3" 2>&1 && fail "vcpus=65 accepted"
	expect_in "$TMP/o3" "Parameter 'vcpus': 65 is out of range 1..64"
	$CTL raw host '{"execute":"vm-create","arguments":{"name":"c","layout":"tidy"}}' >"$TMP/o3"
	expect_in "$TMP/o3" "Parameter 'layout': 'tidy' is not scattered, mix or clones"
	wait_for 60 test -S "$RUN/b.qmp" || fail "no guest socket"
	for g in a b; do  # until both filled their memory and wait
		wait_for 60 sh -c "$CTL raw $g '{\"execute\":\"query-status\"}' |
			grep -q '\"foldvm-step\": *\"wait\"'" || fail "$g never reached wait"
	done
	mem0=$(guests_mem)
	# the census by kind: its classes add up to the two guests' pages,
	# and the scattered layout's shared content is scattered singletons
	$CTL raw host '{"execute":"query-dedup-census"}' >"$TMP/census"
	python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))["return"]
parts = ["zero-pages", "same-address-pages", "run-1-pages", "run-2-15-pages",
         "run-16-511-pages", "run-512-pages", "unique-pages"]
assert c["pages"] == 2 * 16384, c
assert sum(c[k] for k in parts) == c["pages"], c
assert c["run-1-pages"] > c["run-16-511-pages"] + c["run-512-pages"], c
assert c["unique-pages"] > 0, c' "$TMP/census" || { cat "$TMP/census"; fail "query-dedup-census"; }

	# events on a's socket while it is stopped, resumed and merged
	listen "$RUN/a.qmp"
	$CTL stop a || fail "stop"
	qmp "$RUN/a.qmp" '{"execute":"query-status"}' '{"execute":"query-name"}' >"$TMP/o4"
	expect_in "$TMP/o4" '"status": ?"paused", ?"running": ?false' '"name": ?"a"' \
		'"merging-engine-merges": ?-1' '"merging-wait-ns": ?0'
	$CTL cont a || fail "cont"
	for g in a b; do
		$CTL raw $g '{"execute":"dedup-set","arguments":{"enabled":true}}' >/dev/null ||
			fail "dedup-set $g"
	done
	$CTL raw a '{"execute":"dedup-set","arguments":{"domain":"other"}}' >"$TMP/o5"
	expect_in "$TMP/o5" '"GenericError".*trust domain of a running guest cannot change'
	$CTL raw a '{"execute":"dedup-set","arguments":{"rate":1000000,"cpu-pct":90}}' >"$TMP/o5" ||
		fail "dedup-set limits"
	heard '"event": ?"STOP"' '"event": ?"RESUME"' \
		'"event": ?"DEDUP_PASS_COMPLETE"' \
		'"timestamp": ?\{"seconds": ?[0-9]+, ?"microseconds": ?[0-9]+\}'
	unlisten

	# the engine's saving vs the kernel's Pss drop, once merging settled:
	# three full passes over each idle guest since dedup was switched on
	# (two converge: docs/dedup.md), counted, not timed
	for g in a b; do
		wait_for 300 passes_at_least $g 3 || fail "$g: no 3 full passes"
	done
	$CTL --json stats >"$TMP/h1"
	mem1=$(guests_mem)
	saved=$(json_num "$TMP/h1" saved-bytes)
	awk -v a="$mem0" -v b="$mem1" -v s="$saved" 'BEGIN {
		d = a - b; tol = s * 0.10 + 2 * 1048576
		printf "kernel: guest memory -%.1f MiB; engine saved %.1f MiB\n", d / 1048576, s / 1048576
		exit !(s > 4 * 1048576 && d - s <= tol && s - d <= tol) }' ||
		fail "engine and kernel disagree beyond tolerance"

	# tables and JSON from foldctl
	$CTL list >"$TMP/o6"
	expect_in "$TMP/o6" '^NAME ' '^a +running +64 +1 +on +t ' '^b +running '
	$CTL --json stats a >"$TMP/o6"
	expect_in "$TMP/o6" '"pages-merged": [1-9]' '"bytes-saved"' '"unmerges"' \
		'"volatile-skipped"' '"frames-referenced"' '"full-passes"' '"scanner-cpu-ns"'
	[ "$($CTL watch --interval 0.2 --count 2 | wc -l)" -eq 2 ] || fail "watch"

	# another uid is refused (no greeting)
	if command -v setpriv >/dev/null && [ "$(id -u)" -eq 0 ]; then
		chmod 755 "$RUN"   # let it reach the socket, to test SO_PEERCRED
		chmod 666 "$RUN/host.qmp"
		setpriv --reuid=65534 --regid=65534 --clear-groups \
			socat -t 1 - UNIX-CONNECT:"$RUN/host.qmp" </dev/null >"$TMP/o7" 2>&1
		chmod 700 "$RUN"
		! grep -q QMP "$TMP/o7" || fail "uid 65534 got a greeting"
	fi

	# guests come and go while other clients list them and take the census
	# without pause: neither query-vms nor query-dedup-ideal (which hashes
	# guest RAM without the runner's lock, on guests it holds) may touch a
	# guest that is being freed (foldvm-san turns such a use-after-free
	# into a dead host, which the list after this catches)
	( while [ ! -e "$TMP/churn.done" ]; do $CTL list >/dev/null 2>&1; done ) &
	LISTER=$!
	( while [ ! -e "$TMP/churn.done" ]; do
		qmp_talk "$RUN/host.qmp" '{"execute":"query-dedup-ideal"}' >/dev/null 2>&1
	done ) &
	CENSUS=$!
	for i in 1 2 3 4 5 6; do
		$CTL create name=t$i,mem=16M,dedup=on,steps=fill+wait >/dev/null ||
			{ cat "$TMP/fv.out"; fail "create t$i"; }
		$CTL destroy t$i || { cat "$TMP/fv.out"; fail "destroy t$i"; }
	done
	wait_for 60 sh -c "! $CTL list | grep -q '^t[1-6] '" || fail "t guests stayed"
	touch "$TMP/churn.done"; wait $LISTER $CENSUS
	$CTL list >"$TMP/o9" || { cat "$TMP/fv.out"; fail "host gone while guests came and went"; }

	# destroy and quit
	$CTL destroy b || fail "destroy"
	wait_for 60 sh -c "! test -e $RUN/b.qmp" || fail "b's socket stayed"
	listen "$RUN/a.qmp"
	$CTL quit a || fail "quit"
	heard '"event": ?"SHUTDOWN", ?"data": ?\{"guest": ?false, ?"reason": ?"host-qmp-quit"'
	unlisten
	wait_for 60 sh -c "! test -e $RUN/a.qmp" || fail "a's socket stayed"
	$CTL stats a >"$TMP/o8" 2>&1; [ $? -eq 2 ] || fail "stats of a gone guest"
	expect_in "$TMP/o8" "no guest 'a'"

	# quit --all (foldvm.service's ExecStop): every guest quit, running or
	# done, and foldctl returns only once none is listed; foldvm runs on
	$CTL create name=q1,mem=16M,steps=fill+wait >/dev/null || fail "create q1"
	$CTL create name=q2,mem=16M,steps=fill >/dev/null || fail "create q2"
	wait_for 60 sh -c "$CTL list | grep -q '^q2 *shutdown'" || fail "q2 did not finish its steps"
	$CTL quit --all >"$TMP/o10" 2>&1 || { cat "$TMP/o10" "$TMP/fv.out"; fail "quit --all"; }
	expect_in "$TMP/o10" "^quit 2 guest\\(s\\); none left$"
	$CTL list >"$TMP/o11" || fail "host gone after quit --all"
	[ "$(wc -l <"$TMP/o11")" = 1 ] || { cat "$TMP/o11"; fail "guests listed after quit --all"; }
	ls "$RUN" | grep -q -E '^q[12][.]' && fail "guest sockets left after quit --all: $(ls "$RUN")"
	$CTL quit --all >"$TMP/o10" 2>&1 || fail "quit --all with no guest"
	expect_in "$TMP/o10" "^quit 0 guest\\(s\\); none left$"

	# --persist keeps serving with no guest; SIGTERM ends it cleanly
	$CTL list >/dev/null || { cat "$TMP/fv.out"; fail "host gone with its guests"; }
	kill -TERM $FVPID
	wait $FVPID || { cat "$TMP/fv.out"; fail "$bin exited $?"; }
	[ ! -e "$RUN/host.qmp" ] || fail "host socket left behind"
	trap 'rm -rf "$TMP"' EXIT
done
echo "control: QMP rules, commands, events, foldctl, permissions ok"
