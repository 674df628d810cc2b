#!/bin/sh
# --metrics for real: a `foldvm run --persist --dedup --metrics` with three
# guests in two trust domains serves /metrics, which Debian's promtool
# accepts without a complaint; a Prometheus server of the test's own
# (temporary config and storage, scrape interval 1 s, a free port)
# scrapes it, and its HTTP API answers foldvm_vm_saved_bytes for a guest
# with exactly what that guest's query-dedup says, at rest (merging
# paused with dedup-set and two more full passes seen, so the figure no
# longer moves: checked before and after).  Hostile clients: a wrong
# path is 404, another method 405, junk 400, a head over 4 KiB 431,
# clients that connect and send nothing neither stop a scrape nor
# host.qmp, and one whose request comes in two halves with a whole
# scrape between them gets its answer.  Also on a UNIX socket.  Every
# wait is a bounded poll.
. "$(dirname "$0")/lib.sh"
require_kvm
for t in promtool prometheus curl python3 socat; do
	command -v $t >/dev/null || fail "$t missing (scripts/setup installs it)"
done

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# merging: both domains' engines have merged something
merging() {
	$CTL raw host '{"execute":"query-dedup-host"}' >"$TMP/h" 2>/dev/null &&
		python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["return"]["domains"]
sys.exit(0 if len(d) == 2 and all(x.get("merges", 0) > 0 for x in d) else 1)' "$TMP/h"
}

# dedup_field GUEST KEY: KEY of GUEST's query-dedup
dedup_field() {
	$CTL raw "$1" '{"execute":"query-dedup"}' |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["return"][sys.argv[1]])' "$2"
}

# passes_past GUEST N: GUEST's full passes are more than N
passes_past() { [ "$(dedup_field "$1" full-passes)" -gt "$2" ]; }

# status URL [CURL ARGS]: the HTTP status foldvm answers
status() {
	u=$1; shift
	curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$@" "$u"
}

# prom_value QUERY: the value Prometheus gives for QUERY ("" if none)
prom_value() {
	curl -s --max-time 10 "http://127.0.0.1:$PPORT/api/v1/query" \
		--data-urlencode "query=$1" | python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if len(r) == 1 else "")'
}
prom_is() { [ "$(prom_value "$1")" = "$2" ]; }

for bin in $VARIANTS; do
	RUN="$TMP/run-$bin"
	CTL="$BUILDDIR/foldctl --run-dir $RUN"
	MPORT=$(free_port)
	URL="http://127.0.0.1:$MPORT/metrics"
	persist_start "$bin" "$RUN" --metrics "127.0.0.1:$MPORT"
	$CTL create name=r1,mem=32M,domain=red,steps=fill+wait || fail "create r1"
	$CTL create name=r2,mem=32M,domain=red,steps=fill+wait || fail "create r2"
	$CTL create name=b1,mem=32M,domain=blue,balloon=on,steps=fill+wait || fail "create b1"
	wait_for 120 merging || { cat "$TMP/h"; fail "the two engines did not merge"; }

	# the exposition: promtool has nothing to say about it
	curl -sf --max-time 30 "$URL" >"$TMP/m1" || fail "GET /metrics"
	promtool check metrics <"$TMP/m1" >"$TMP/lint" 2>&1 ||
		{ cat "$TMP/lint"; fail "promtool check metrics failed"; }
	[ ! -s "$TMP/lint" ] || { cat "$TMP/lint"; fail "promtool complains"; }
	expect_in "$TMP/m1" '^# TYPE foldvm_vm_saved_bytes gauge$' \
		'^# TYPE foldvm_vm_unmerges_total counter$' \
		'^foldvm_vm_saved_bytes\{vm="r1",domain="red"\} [0-9]+$' \
		'^foldvm_vm_balloon_inflated_bytes\{vm="b1",domain="blue"\} 0$' \
		'^foldvm_domain_merges_total\{domain="red"\} [1-9][0-9]*$' \
		'^foldvm_host_scanner_cpu_seconds_total [0-9]+\.[0-9]{9}$' \
		'^foldvm_host_memory_pressure_paused [01]$' '^foldvm_domains 2$'
	curl -s -D "$TMP/head" -o /dev/null --max-time 30 "$URL"
	expect_in "$TMP/head" '^HTTP/1.1 200 OK' \
		'^Content-Type: text/plain; version=0.0.4; charset=utf-8'

	# hostile clients: two that connect and say nothing, then the rest
	socat -u OPEN:/dev/null,ignoreeof TCP:127.0.0.1:$MPORT >/dev/null 2>&1 &
	S1=$!
	socat -u OPEN:/dev/null,ignoreeof TCP:127.0.0.1:$MPORT >/dev/null 2>&1 &
	S2=$!
	[ "$(status "$URL")" = 200 ] || fail "a scrape waited for idle clients"
	$CTL list >/dev/null || fail "host.qmp waited for idle clients"
	kill $S1 $S2 2>/dev/null; wait $S1 $S2 2>/dev/null
	# a client that sent half its request is still served once the rest
	# comes, after another client's whole scrape: nobody waited for it
	# (a server that blocked on it would have answered the scrape only
	# after giving up on it)
	mkfifo "$TMP/half-$bin.in"
	socat -t 30 - TCP:127.0.0.1:$MPORT <"$TMP/half-$bin.in" >"$TMP/half.out" 2>&1 &
	S3=$!
	exec 5>"$TMP/half-$bin.in"
	printf 'GET /metr' >&5
	# connected (so queued before the scrape's connection) before it
	wait_for 30 sh -c "ss -tnp state established '( dport = :$MPORT )' | grep -q 'pid=$S3,'" ||
		fail "the half request's client did not connect"
	[ "$(status "$URL")" = 200 ] || fail "a scrape waited for a half request"
	printf 'ics HTTP/1.1\r\n\r\n' >&5
	exec 5>&-
	wait $S3
	expect_in "$TMP/half.out" '^HTTP/1.1 200 OK' '^foldvm_domains 2'
	[ "$(status "http://127.0.0.1:$MPORT/")" = 404 ] || fail "GET / not 404"
	[ "$(status "http://127.0.0.1:$MPORT/metricsx")" = 404 ] || fail "GET /metricsx not 404"
	[ "$(status "$URL" -X POST -d x=1)" = 405 ] || fail "POST not 405"
	[ "$(status "$URL" -I)" = 405 ] || fail "HEAD not 405"
	printf 'HELLO\r\n\r\n' | socat -t 30 - TCP:127.0.0.1:$MPORT >"$TMP/junk"
	expect_in "$TMP/junk" '^HTTP/1.1 400 Bad Request'
	python3 -c 'import sys; sys.stdout.write("GET /metrics HTTP/1.1\r\nX: " + "a" * 5000)' |
		socat -t 30 - TCP:127.0.0.1:$MPORT >"$TMP/big"
	expect_in "$TMP/big" '^HTTP/1.1 431 '
	[ "$(status "$URL")" = 200 ] || fail "no scrape after the hostile clients"

	# at rest: merging paused, then two more full passes of every guest
	for g in r1 r2 b1; do
		$CTL raw $g '{"execute":"dedup-set","arguments":{"enabled":false}}' >/dev/null ||
			fail "dedup-set $g"
	done
	for g in r1 r2 b1; do
		p=$(dedup_field $g full-passes)
		wait_for 120 passes_past $g $((p + 1)) || fail "$g: no passes after the pause"
	done
	want_r1=$(dedup_field r1 bytes-saved)
	want_b1=$(dedup_field b1 bytes-saved)
	[ "$want_r1" -gt 0 ] || fail "r1 saved nothing"

	# a Prometheus server of our own scrapes it (a fresh storage for each
	# run; a scrape that times out on a loaded host marks the series
	# stale, so the polls below wait for a scrape that went through)
	PPORT=$(free_port)
	P="$TMP/prom-$bin"
	mkdir -p "$P"
	cat >"$P/prometheus.yml" <<-EOC
	global:
	  scrape_interval: 1s
	  evaluation_interval: 1s
	scrape_configs:
	  - job_name: foldvm
	    static_configs:
	      - targets: ['127.0.0.1:$MPORT']
	EOC
	prometheus --config.file="$P/prometheus.yml" --storage.tsdb.path="$P/data" \
		--web.listen-address="127.0.0.1:$PPORT" --log.level=warn >"$P/log" 2>&1 &
	PROMPID=$!
	trap 'kill -9 $FVPID $PROMPID 2>/dev/null; rm -rf "$TMP"' EXIT
	at="instance=\"127.0.0.1:$MPORT\",job=\"foldvm\""
	wait_for 120 prom_is "foldvm_vm_saved_bytes{vm=\"r1\",$at}" "$want_r1" || {
		cat "$P/log"; curl -s "http://127.0.0.1:$PPORT/api/v1/targets"; echo
		fail "Prometheus says '$(prom_value "foldvm_vm_saved_bytes{vm=\"r1\",$at}")' for r1, QMP $want_r1"
	}
	wait_for 120 prom_is "foldvm_vm_saved_bytes{vm=\"b1\",domain=\"blue\",$at}" "$want_b1" ||
		fail "Prometheus says '$(prom_value "foldvm_vm_saved_bytes{vm=\"b1\",$at}")' for b1, QMP $want_b1"
	wait_for 120 prom_is "up{$at}" 1 || fail "Prometheus: foldvm not up"
	[ "$(dedup_field r1 bytes-saved)" = "$want_r1" ] || fail "r1's saving moved at rest"
	kill $PROMPID; wait $PROMPID 2>/dev/null

	kill -TERM "$FVPID"
	wait "$FVPID" || { cat "$TMP/fv.out"; fail "$bin exited $?"; }

	# on a UNIX socket, and the socket goes with foldvm
	SOCK="$TMP/metrics-$bin.sock"
	persist_start "$bin" "$RUN" --metrics "$SOCK"
	[ "$(stat -c %a "$SOCK")" = 600 ] || fail "metrics socket mode"
	curl -sf --max-time 30 --unix-socket "$SOCK" http://x/metrics >"$TMP/m2" || fail "GET over $SOCK"
	promtool check metrics <"$TMP/m2" >"$TMP/lint" 2>&1 && [ ! -s "$TMP/lint" ] ||
		{ cat "$TMP/lint"; fail "promtool on the UNIX socket's metrics"; }
	expect_in "$TMP/m2" '^foldvm_domains 0$' '^foldvm_host_process_rss_bytes [1-9]'
	kill -TERM "$FVPID"
	wait "$FVPID" || { cat "$TMP/fv.out"; fail "$bin exited $?"; }
	[ ! -e "$SOCK" ] || fail "metrics socket left behind"
	trap 'rm -rf "$TMP"' EXIT
done
echo "metrics: promtool clean, Prometheus scraped foldvm and agrees with query-dedup; hostile clients answered"
