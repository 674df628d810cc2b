#!/bin/sh
# The benchmark's figures (t50/t90/t99 against the ideal, "not reached",
# efficiency, medians and ranges, target verdicts) on synthetic records:
# no root, no KVM, no clock.  The benchmark itself runs outside make check
# (bench/run), but what it computes from its samples is tested here.
SRC=${FOLDVM_SRCDIR:-$(dirname "$0")/..}
command -v python3 >/dev/null || { echo "FAIL: python3 missing (scripts/setup installs it)" >&2; exit 1; }
exec python3 "$SRC/bench/test_metrics.py" -v
