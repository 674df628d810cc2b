#!/bin/sh
# QMP reads a stream of JSON, as QEMU does, through a real socket (socat)
# on a live `foldvm run --persist`: a request split over lines is one
# request, several share a line, what is not JSON is answered with an
# error and the next request still runs, a request over the size limit
# (spanning lines) or nested too deep is answered once and dropped, and
# the connection stays for the requests after them.  Every reply is
# checked in order: the text of each error, the id of each return.
. "$(dirname "$0")/lib.sh"
require_kvm
command -v socat >/dev/null || fail "socat missing (scripts/setup installs it)"

# what DIR/out says after the greeting, one reply a line: "id:ID" for a
# return, "error:DESC" for an error
replies() {
	sed -n '2,$p' "$1/out" | tr -d '\r' | sed -n \
		-e 's/^{"return":.*"id": *"\([^"]*\)"}$/id:\1/p' \
		-e 's/^{"error":{"class":"[A-Za-z]*","desc":"\([^",]*\).*/error:\1/p' | paste -sd' '
}

for bin in $VARIANTS; do
	RUN="$TMP/run-$bin"
	persist_start "$bin" "$RUN"
	D="$TMP/s-$bin"
	qmp_open "$RUN/host.qmp" "$D" 6 || fail "no QMP connection"
	qmp_send 6 "$D" '{"execute":"qmp_capabilities","id":"c"}' || fail "no negotiation"

	# one request over three lines (as a person types it into socat),
	# then two on one line, then garbage before a request on its line
	printf '{"execute":\n  "query-vms",\r\n"id":"s1"}\n' >&6
	printf '{"execute":"query-vms","id":"s2"}{"execute":"query-vms","id":"s3"}\n' >&6
	printf 'oops {"execute":"query-vms","id":"s4"}\n' >&6
	wait_for 60 qmp_replies_ge "$D/out" 6 || { cat "$D/out"; fail "stream not answered"; }

	# over 65536 bytes, spanning lines; then the next request
	awk 'BEGIN { printf "{\"id\":\"big\",\"execute\":\"query-vms\",\"arguments\":{\"x\":[";
		for (i = 0; i < 30000; i++) printf "1,\n"; print "1]}}" }' >&6
	printf '{"execute":"query-vms","id":"s5"}\n' >&6
	# nested 65 levels deep, over two lines; then the next request
	awk 'BEGIN { for (i = 0; i < 65; i++) printf "["; print "";
		for (i = 0; i < 65; i++) printf "]"; print "" }' >&6
	printf '{"execute":"query-vms","id":"s6"}\n' >&6
	# a string left open at its line's end ends there
	printf '{"execute":"query-vms","id":"s7\n{"execute":"query-vms","id":"s8"}\n' >&6
	wait_for 60 qmp_replies_ge "$D/out" 12 || { cat "$D/out"; fail "limits not answered"; }
	qmp_close "$D" 6

	got=$(replies "$D")
	want="id:c id:s1 id:s2 id:s3 error:JSON parse error id:s4"
	want="$want error:Request too long id:s5"
	want="$want error:Request nested deeper than 64 levels id:s6"
	want="$want error:JSON parse error id:s8"
	[ "$got" = "$want" ] || { cat "$D/out"; fail "replies: '$got', not '$want'"; }
	[ "$(qmp_replies "$D/out")" -eq 12 ] || { cat "$D/out"; fail "more replies than requests"; }

	kill -TERM $FVPID
	wait $FVPID || { cat "$TMP/fv.out"; fail "$bin exited $?"; }
	trap 'rm -rf "$TMP"' EXIT
done
echo "qmp_stream: requests over lines, several per line, garbage, size and depth limits ok"
