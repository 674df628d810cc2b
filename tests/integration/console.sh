#!/bin/sh
# The serial console (docs/console.md), through real terminals (ptys):
# foldvm run in the foreground of a terminal gives its one guest that
# terminal (raw mode; what is typed reaches the guest's 16550, ^C
# included, more than its FIFO at once; its output comes back), Ctrl-A h
# and Ctrl-A x, the terminal restored after the run, Ctrl-A x, SIGTERM and
# SIGHUP; --console none leaves it alone; foldctl console on a guest run
# without a terminal: the backlog, a second client refused, Ctrl-] detaches
# and the guest runs on, a second attach, the console's end.  The guest is
# the test payload's echo:N step (it writes each line back uppercased).
. "$(dirname "$0")/lib.sh"
require_kvm
command -v python3 >/dev/null || fail "python3 missing (scripts/setup installs it)"
PY="$(dirname "$0")/console_pty.py"

for v in $VARIANTS; do
	for check in foreground quit signals none foldctl; do
		mkdir -p "$TMP/$v-$check/run" "$TMP/$v-$check/log"
		python3 "$PY" "$check" "$BUILDDIR" "$v" "$TMP/$v-$check/run" \
			"$TMP/$v-$check/log" || fail "$v: console check '$check'"
	done
	# --console stdio without a terminal (scripts): no raw mode, no
	# escape, no control sockets needed; 30 lines of 200 bytes at once,
	# more than the UART's queue (4096) holds, so the worker must stop
	# reading and resume as the guest reads: every line comes back whole.
	i=0; : >"$TMP/in"
	while [ $i -lt 30 ]; do
		printf 'line %03d %s\n' $i "$(printf '%0190d' 0 | tr 0 x)" >>"$TMP/in"
		i=$((i + 1))
	done
	"$BUILDDIR/$v" run --no-control --console stdio --log-dir "$TMP/log-$v" \
		--vm name=p,mem=32M,steps=echo:30+verify <"$TMP/in" >"$TMP/out" 2>&1 ||
		{ cat "$TMP/out"; fail "$v: --console stdio from a pipe"; }
	n=$(grep -c '^ECHO: LINE 0[0-9][0-9] X\{190\}' "$TMP/out")
	[ "$n" -eq 30 ] || { cat "$TMP/out"; fail "$v: $n of 30 lines echoed"; }
	grep -q '^\[p\]' "$TMP/out" && fail "$v: --console stdio output as [p] lines"
	# Bad uses are refused with a sentence, exit 2.
	"$BUILDDIR/$v" run --console stdio --vm name=a,mem=32M --vm name=b,mem=32M \
		>"$TMP/out" 2>&1 </dev/null && fail "$v: --console stdio with two guests"
	expect_in "$TMP/out" 'needs exactly one guest'
	"$BUILDDIR/$v" run --console tty --vm name=a,mem=32M >"$TMP/out" 2>&1 </dev/null &&
		fail "$v: --console tty"
	expect_in "$TMP/out" "none of auto, stdio, none"
done
"$BUILDDIR/foldctl" --run-dir "$TMP" console nosuch >"$TMP/out" 2>&1 &&
	fail "foldctl console of no guest"
expect_in "$TMP/out" "no console for guest 'nosuch'"
echo "console: ok"
