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
