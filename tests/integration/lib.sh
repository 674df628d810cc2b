# lib.sh - shared helpers for foldvm's integration tests (sourced).
set -u

BUILDDIR=${FOLDVM_BUILDDIR:-$(pwd)}
VARIANTS=${FOLDVM_VARIANTS:-foldvm}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/foldvm-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
# Tests run in parallel: each gets its own control-socket directory.
FOLDVM_RUN_DIR="$TMP/run"
export FOLDVM_RUN_DIR

fail() { echo "FAIL: $*" >&2; exit 1; }

# Tests that boot guests need /dev/kvm; without it they SKIP, loudly.
require_kvm() {
	if [ ! -c /dev/kvm ] || [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
		echo "##########################################################" >&2
		echo "SKIP: /dev/kvm is missing or not accessible: KVM tests NOT RUN" >&2
		echo "##########################################################" >&2
		exit 77
	fi
}

# expect_in FILE PATTERN...: every extended regex must match a line.
expect_in() {
	file=$1; shift
	for pat in "$@"; do
		grep -Eq -- "$pat" "$file" || { echo "--- $file:"; cat "$file"; fail "no match for /$pat/ in $file"; }
	done
}

# wait_for SECONDS COMMAND...: poll every 0.1 s until COMMAND succeeds.
wait_for() { # SECONDS COMMAND...
	t=$1; shift
	i=0
	while ! "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ "$i" -le $((t * 10)) ] || return 1
		sleep 0.1
	done
}

# QMP from shell tests, paced by the replies, never by sleeps: a line is
# sent only once the previous one was answered, and a connection closes
# only once every answer is in, however slowly a loaded host runs foldvm.

# qmp_replies FILE: how many replies (return or error) FILE holds.
qmp_replies() { grep -Ec '^\{"(return|error)"' "$1"; }

# qmp_replies_ge FILE N: FILE holds at least N replies.
qmp_replies_ge() { [ "$(qmp_replies "$1")" -ge "$2" ]; }

# qmp_open SOCKET DIR FD: a connection that stays open; lines written to FD
# reach foldvm, all it says (greeting, replies, events) lands in DIR/out.
qmp_open() {
	mkdir -p "$2" && mkfifo "$2/in" && : >"$2/out" || return 1
	socat -t 60 - UNIX-CONNECT:"$1" <"$2/in" >"$2/out" 2>"$2/err" &
	echo $! >"$2/pid"
	eval "exec $3>\"\$2/in\""
	wait_for 60 grep -q '"QMP"' "$2/out"
}

# qmp_send FD DIR LINE: send one line and wait for its reply.
qmp_send() {
	n=$(( $(qmp_replies "$2/out") + 1 ))
	printf '%s\r\n' "$3" >&"$1"
	wait_for 60 qmp_replies_ge "$2/out" "$n"
}

# qmp_close DIR FD: end of input; foldvm answers what is left and hangs up.
qmp_close() {
	eval "exec $2>&-"
	wait "$(cat "$1/pid")" 2>/dev/null || true
}

# qmp_talk [--raw] SOCKET LINE...: negotiate (unless --raw), send each line
# once the one before it was answered, print everything foldvm said.
qmp_talk() {
	neg=1
	[ "$1" = --raw ] && { neg=0; shift; }
	qd=$(mktemp -d "$TMP/qmp.XXXXXX")
	qmp_open "$1" "$qd" 8 || { cat "$qd/out" "$qd/err"; return 1; }
	shift
	[ "$neg" = 0 ] || qmp_send 8 "$qd" '{"execute":"qmp_capabilities"}'
	for l in "$@"; do
		qmp_send 8 "$qd" "$l" || break
	done
	qmp_close "$qd" 8
	cat "$qd/out"
}

# persist_start BIN RUNDIR [OPTION...]: a `BIN run --persist --dedup
# --quiet` serving RUNDIR, its pid in FVPID, killed when the test ends;
# returns once its host socket is up.
persist_start() {
	pbin=$1 prun=$2
	shift 2
	"$BUILDDIR/$pbin" run --persist --dedup --quiet --run-dir "$prun" \
		--log-dir "$TMP/logs" "$@" >"$TMP/fv.out" 2>&1 &
	FVPID=$!
	trap 'kill -9 $FVPID 2>/dev/null; rm -rf "$TMP"' EXIT
	wait_for 60 test -S "$prun/host.qmp" || { cat "$TMP/fv.out"; fail "no host socket"; }
}
