#!/bin/sh
# size_limits.sh - files and functions stay small enough to read:
#  - no C source file outside tests/ over 700 lines;
#  - no function outside tests/ over 80 lines.
# A function is what the project's style makes of one: a line that opens
# with "{" in column 0 after its signature, up to the "}" in column 0 that
# closes it; its length counts both braces.  It prints the five longest
# files and functions, then each one over a limit; status 1 if any.
#
# Without TREE it first proves on a scratch tree that it catches both.
#
#   tests/size_limits.sh [TREE]     (default: the source tree)
set -u

FILE_MAX=700
FUNC_MAX=80

# files: the C sources of the current directory's tree, tests/ aside
list_files() {
	{ git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' | sed 's|^\./||'; } |
		grep -v '^tests/'
}

# "LINES FILE" for every file
file_sizes() {
	for f in $files; do
		[ -f "$f" ] && printf '%s %s\n' "$(wc -l <"$f")" "$f"
	done
}

# "LINES FILE:LINE NAME" for every function
func_sizes() {
	for f in $files; do
		[ -f "$f" ] || continue
		awk -v file="$f" '
			/^[A-Za-z_].*\(/ { sig = $0; sigline = NR }
			/^\{/ && sig != "" { start = NR; name = sig; at = sigline; next }
			/^\}/ && start {
				n = NR - start + 1
				sub(/\(.*/, "", name); sub(/.*[ *]/, "", name)
				printf "%d %s:%d %s\n", n, file, at, name
				start = 0; sig = ""
			}
			/^[^ \t{}#\/]/ && !/\(/ && !start { sig = "" }
		' "$f"
	done
}

# check TREE: the five longest of each, then what is over a limit;
# status 1 if anything is.
check() {
	(cd "$1" || exit 1
	files=$(list_files)
	sizes=$(file_sizes | sort -rn)
	funcs=$(func_sizes | sort -rn)
	echo "size_limits: the five longest files (lines):"
	echo "$sizes" | head -5 | sed 's/^/  /'
	echo "size_limits: the five longest functions (lines):"
	echo "$funcs" | head -5 | sed 's/^/  /'
	bad=0
	over=$(echo "$sizes" | awk -v max=$FILE_MAX '$1 > max')
	[ -n "$over" ] && { echo "FAIL: files over $FILE_MAX lines:"; echo "$over" | sed 's/^/  /'; bad=1; }
	over=$(echo "$funcs" | awk -v max=$FUNC_MAX '$1 > max')
	[ -n "$over" ] && { echo "FAIL: functions over $FUNC_MAX lines:"; echo "$over" | sed 's/^/  /'; bad=1; }
	[ $bad = 0 ] && echo "size_limits: no file over $FILE_MAX lines, no function over $FUNC_MAX"
	exit $bad)
}

if [ $# -gt 0 ]; then
	check "$1"
	exit
fi

# The check must catch both: a scratch tree with one function of 81
# lines, then one file of 701.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/size-limits.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/lib"
{ echo "int f(void)"; echo "{"; i=0; while [ $i -lt 78 ]; do echo "	;"; i=$((i + 1)); done
  echo "	return 0;"; echo "}"; } > "$scratch/lib/a.c"
out=$(check "$scratch") && { echo "FAIL: a function of 81 lines was not caught"; exit 1; }
echo "$out" | grep -q '81 lib/a.c:1 f' || { echo "FAIL: wrong report for a long function: $out"; exit 1; }
sed -i '3d' "$scratch/lib/a.c"
check "$scratch" >/dev/null || { echo "FAIL: a function of 80 lines was refused"; exit 1; }
i=0; while [ $i -lt 622 ]; do echo "/* */"; i=$((i + 1)); done >> "$scratch/lib/a.c"
out=$(check "$scratch") && { echo "FAIL: a file of 701 lines was not caught"; exit 1; }
echo "size_limits: a long function and a long file are caught"

check "${FOLDVM_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}"
