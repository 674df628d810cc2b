#!/bin/sh
# repeat.sh - the flake hunt: run integration tests many times, optionally
# beside a CPU hog on every core, and count what passed.
#
#   tests/repeat.sh [-n N] [--load] [--keep-going] [TEST...]
#
# TEST is a path as `make check` names it (tests/integration/unmerge.sh,
# tests/integration/dedup_race, tests/integration/virtio_blk-san) or just
# its name (unmerge.sh, dedup_race); default: every integration test of
# tests/integration/ (the shell tests and the C tests, not the -san
# builds).  Each runs N times (default 10) in the environment `make check`
# gives it, one at a time, from the build directory (the current
# directory, or FOLDVM_BUILDDIR); it builds what the tests need first.
# --load starts one busy loop per online CPU for the whole hunt (as on a
# loaded CI machine).  A failed run's output is kept in
# repeat-logs/NAME.RUN.log; the summary is one line a test and, last,
# "N passed, N failed, N skipped".  Exit status 1 if any run failed.
# --keep-going is the default; -x stops at the first failure.
set -u

usage() {
	sed -n '2,/^set -u/p' "$0" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//'
	exit "${1:-0}"
}

# All of it in one function, read whole before it runs: the script may
# be edited (a checkout changing) while a long hunt runs.
main() {
	N=10 LOAD=0 STOP=0
	while [ $# -gt 0 ]; do
		case $1 in
		-n) [ $# -ge 2 ] || usage 2; N=$2; shift 2 ;;
		-n*) N=${1#-n}; shift ;;
		--load) LOAD=1; shift ;;
		--keep-going) STOP=0; shift ;;
		-x) STOP=1; shift ;;
		-h|--help) usage 0 ;;
		--) shift; break ;;
		-*) echo "repeat.sh: unknown option '$1'" >&2; usage 2 ;;
		*) break ;;
		esac
	done
	case $N in
	''|*[!0-9]*|0) echo "repeat.sh: -n wants a count of 1 or more, not '$N'" >&2; exit 2 ;;
	esac

	SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
	BUILDDIR=${FOLDVM_BUILDDIR:-$(pwd)}
	[ -f "$BUILDDIR/Makefile" ] || {
		echo "repeat.sh: no Makefile in $BUILDDIR: run it from the build directory" \
		     "(after ./scripts/setup) or set FOLDVM_BUILDDIR" >&2
		exit 2
	}

	# The tests: named ones, or every integration test.
	if [ $# -eq 0 ]; then
		for f in "$SRCDIR"/tests/integration/*.sh "$SRCDIR"/tests/integration/*.c; do
			n=$(basename "$f")
			case $n in lib.sh) continue ;; esac
			case $n in *.c) n=${n%.c} ;; esac
			set -- "$@" "tests/integration/$n"
		done
	fi
	TESTS=
	for t in "$@"; do
		case $t in */*) ;; *) t=tests/integration/$t ;; esac
		case $t in
		*.sh) [ -f "$SRCDIR/$t" ] || { echo "repeat.sh: no test $SRCDIR/$t" >&2; exit 2; } ;;
		*) [ -f "$SRCDIR/${t%-san}.c" ] || { echo "repeat.sh: no test $t" >&2; exit 2; } ;;
		esac
		TESTS="$TESTS $t"
	done

	# Build what they need (`make check` with no test to run builds the
	# check programs, foldvm-san included).
	make -s -C "$BUILDDIR" check TESTS= >/dev/null || { echo "repeat.sh: the build failed" >&2; exit 2; }

	# The environment `make check` gives a test (AM_TESTS_ENVIRONMENT).
	FOLDVM_BUILDDIR=$BUILDDIR FOLDVM_SRCDIR=$SRCDIR
	FOLDVM_VARIANTS=$(printf 'repeat-print-variants:\n\t@echo $(FOLDVM_VARIANTS)\n' |
		make -s -C "$BUILDDIR" -f Makefile -f - repeat-print-variants)
	ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
	export FOLDVM_BUILDDIR FOLDVM_SRCDIR FOLDVM_VARIANTS ASAN_OPTIONS UBSAN_OPTIONS

	HOGS=
	stop_hogs() {
		for p in $HOGS; do kill "$p" 2>/dev/null; done
		HOGS=
	}
	trap 'stop_hogs' EXIT
	trap 'stop_hogs; exit 130' INT TERM
	if [ "$LOAD" = 1 ]; then
		cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
		i=0
		while [ "$i" -lt "$cpus" ]; do
			sh -c 'while :; do :; done' &
			HOGS="$HOGS $!"
			i=$((i + 1))
		done
		echo "repeat.sh: $cpus busy loops beside the tests"
	fi

	LOGS=$BUILDDIR/repeat-logs
	mkdir -p "$LOGS"
	cd "$BUILDDIR" || exit 2
	tp=0 tf=0 ts=0
	SUMMARY=
	for t in $TESTS; do
		p=0 f=0 s=0 secs=0
		name=$(basename "$t")
		run=1
		while [ "$run" -le "$N" ]; do
			log="$LOGS/$name.$run.log"
			t0=$(date +%s)
			case $t in
			*.sh) sh "$SRCDIR/$t" >"$log" 2>&1 ;;
			*) "./$t" >"$log" 2>&1 ;;
			esac
			rc=$?
			secs=$((secs + $(date +%s) - t0))
			case $rc in
			0) p=$((p + 1)); rm -f "$log"; r=pass ;;
			77) s=$((s + 1)); rm -f "$log"; r=skip ;;
			*) f=$((f + 1)); r="FAIL (exit $rc, $log: $(grep -m1 -E 'FAIL|Assert|ERROR' "$log" | cut -c1-120))" ;;
			esac
			echo "$name run $run/$N: $r"
			[ "$r" != "${r#FAIL}" ] && [ "$STOP" = 1 ] && break
			run=$((run + 1))
		done
		line=$(printf '%-28s %3d passed, %3d failed, %3d skipped  (%d s)' "$name" "$p" "$f" "$s" "$secs")
		SUMMARY="$SUMMARY$line
"
		tp=$((tp + p)) tf=$((tf + f)) ts=$((ts + s))
		[ "$f" -gt 0 ] && [ "$STOP" = 1 ] && break
	done
	stop_hogs
	echo "--- repeat.sh: $N run(s) each$( [ "$LOAD" = 1 ] && echo ', all CPUs loaded')"
	printf '%s' "$SUMMARY"
	echo "$tp passed, $tf failed, $ts skipped"
	[ "$tf" -eq 0 ]
}

main "$@"
