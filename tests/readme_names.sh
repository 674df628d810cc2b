#!/bin/sh
# readme_names.sh - the folders' READMEs stay true about what is in them:
#  - every source file (C, headers, assembly, linker scripts, shell and
#    Python, and the extensionless scripts) that git tracks in a folder
#    with a README.md - or below it, up to the next folder with one of its
#    own - is named in that README.md (a .c file may be named by its .h
#    and the other way round: a module is one name);
#  - every document in docs/ is named in docs/README.md.
# Seed inputs of the fuzzers (tests/fuzz/corpus/) are data, not sources.
# It first proves on a scratch copy that it catches a name left out.
#
#   tests/readme_names.sh [TREE]     (default: the source tree)
set -u

SRC=${FOLDVM_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}

# check TREE: print each file its README leaves out; status 1 if any.
check() {
	tree=$1 bad=0
	files=$(cd "$tree" && { git ls-files 2>/dev/null || find . -type f | sed 's|^\./||'; })
	for f in $files; do
		case $f in
		tests/fuzz/corpus/*|*/README.md|README.md) continue ;;
		docs/*)
			[ -f "$tree/$f" ] || continue
			grep -qF -- "$(basename "$f")" "$tree/docs/README.md" ||
				{ echo "docs/README.md does not name $f"; bad=1; }
			continue ;;
		*.c|*.h|*.S|*.ld|*.sh|*.py) ;;
		*/*.*) continue ;;
		*/*) [ -x "$tree/$f" ] || continue ;;   # a script without extension
		*) continue ;;
		esac
		[ -f "$tree/$f" ] || continue
		r=$(dirname "$f")
		while [ "$r" != . ] && [ ! -f "$tree/$r/README.md" ]; do r=$(dirname "$r"); done
		[ "$r" = . ] && continue
		b=$(basename "$f")
		case $b in
		*.c) alt=${b%.c}.h ;;
		*.h) alt=${b%.h}.c ;;
		*) alt=$b ;;
		esac
		grep -qF -e "$b" -e "$alt" "$tree/$r/README.md" ||
			{ echo "$r/README.md does not name $f"; bad=1; }
	done
	return $bad
}

if [ $# -gt 0 ]; then
	check "$1"
	exit
fi

# The check must catch a name left out: a scratch copy of two folders
# whose README loses one file's name.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/readme-names.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/lib" "$scratch/docs"
cp "$SRC/lib/README.md" "$SRC/lib/uffd.c" "$SRC/lib/uffd.h" "$SRC/lib/error.c" "$scratch/lib/"
cp "$SRC/docs/README.md" "$SRC/docs/qmp.md" "$scratch/docs/"
check "$scratch" >/dev/null || { echo "FAIL: the scratch tree should pass as copied"; check "$scratch"; exit 1; }
sed 's/uffd\.[ch]//g' "$SRC/lib/README.md" > "$scratch/lib/README.md"
out=$(check "$scratch") && { echo "FAIL: a README missing uffd.c was not caught"; exit 1; }
echo "$out" | grep -q 'lib/README.md does not name lib/uffd' ||
	{ echo "FAIL: wrong report for a missing name: $out"; exit 1; }
sed 's/qmp\.md//g' "$SRC/docs/README.md" > "$scratch/docs/README.md"
cp "$SRC/lib/README.md" "$scratch/lib/README.md"
out=$(check "$scratch") && { echo "FAIL: docs/README.md missing qmp.md was not caught"; exit 1; }
echo "readme_names: a left-out name is caught ($out)"

check "$SRC" || { echo "FAIL: name these files in their folder's README.md (or docs/README.md)"; exit 1; }
echo "readme_names: every source file is named in its folder's README.md, every doc in docs/README.md"
