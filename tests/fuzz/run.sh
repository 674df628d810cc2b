#!/bin/sh
# Run each fuzz harness for a bounded number of inputs (make check), or
# longer: FUZZ_RUNS=1000000 tests/fuzz/run.sh
set -u
BUILDDIR=${FOLDVM_BUILDDIR:-$(pwd)}
SRCDIR=${FOLDVM_SRCDIR:-$(pwd)}
RUNS=${FUZZ_RUNS:-20000}
if [ ! -x "$BUILDDIR/tests/fuzz/fuzz-cli" ]; then
	echo "SKIP: fuzz harnesses not built (configure found no clang with libFuzzer)" >&2
	exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/foldvm-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
for name in cli qmp procstat kernel domxml virtio balloon virtio-net metrics; do
	cp -r "$SRCDIR/tests/fuzz/corpus/$name" "$work/$name"
	"$BUILDDIR/tests/fuzz/fuzz-$name" -runs="$RUNS" -max_len=4096 \
		-print_final_stats=1 "$work/$name" >"$work/$name.out" 2>&1 ||
		{ tail -n 60 "$work/$name.out"; echo "FAIL: fuzz-$name crashed"; exit 1; }
	grep -E 'stat::number_of_executed_units' "$work/$name.out"
done
echo "fuzz: $RUNS inputs per harness, no crash"
