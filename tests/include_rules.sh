#!/bin/sh
# Check every #include "..." of the tree against the layer rules below:
# each folder may include its own files and those of the folders its rule
# lists, nothing else.  A violation fails, naming the file and the line.
#   tests/include_rules.sh          the source tree (make check)
#   tests/include_rules.sh DIR      another tree laid out the same way
# The folders' README.md files say the same in words; change both together.
set -u

# folder      may include (besides itself); "*" = anything
RULES='
lib          -
guest-tools  -
memory       lib
devices      memory lib guest-tools
dedup        memory lib
vmm          devices dedup memory lib guest-tools
runner       vmm devices dedup memory lib guest-tools
control      runner vmm devices dedup memory lib guest-tools
supervisor   control runner vmm devices dedup memory lib guest-tools
frontend     supervisor control runner vmm devices dedup memory lib guest-tools
tests        *
'
# Made by configure (not checked itself), allowed everywhere.
GENERATED='config.h'

# check ROOT: print the violations of ROOT; status 1 if there is one.
check() {
	root=$1
	files=$(cd "$root" && find . \( -name .git -o -name autom4te.cache \
		-o -name build-aux \) -prune -o \
		-type f \( -name '*.c' -o -name '*.h' -o -name '*.S' \) \
		! -path ./config.h -print | sed 's|^\./||' | LC_ALL=C sort)
	[ -n "$files" ] || { echo "no sources under $root"; return 1; }
	# awk reads the rules, then every file; "cd" so the names stay
	# relative to the tree (a relative include is resolved against the
	# including file's folder, and must exist there).
	(cd "$root" && printf '%s\n' "$RULES" | awk -v generated="$GENERATED" '
	function top(path) { sub(/\/.*/, "", path); return path }
	function dir(path) { if (path !~ /\//) return ""; sub(/\/[^\/]*$/, "", path); return path }
	function exists(path,   line, r) {
		if (path in seen) return seen[path]
		r = (getline line < path) >= 0; close(path)
		return seen[path] = r
	}
	function fail(msg) { print FILENAME ":" FNR ": " msg; bad = 1 }
	NR == FNR {
		if (NF == 0) next
		for (i = 2; i <= NF; i++) if ($i != "-") allow[$1, $i] = 1
		folders[$1] = 1
		may[$1] = NF > 1 && $2 != "-" ? substr($0, index($0, $2)) : "nothing else"
		next
	}
	FNR == 1 {
		from = FILENAME ~ /\// ? top(FILENAME) : "(top level)"
		if (!(from in folders)) fail("folder " from " has no include rule (tests/include_rules.sh)")
	}
	/^[ \t]*#[ \t]*include[ \t]*"/ {
		inc = $0; sub(/^[^"]*"/, "", inc); sub(/".*$/, "", inc)
		if (inc == generated) next
		d = dir(FILENAME)
		if (d != "" && exists(d "/" inc)) target = d "/" inc
		else if (inc ~ /\// && exists(inc)) target = inc
		else if (exists(from "/" inc)) target = from "/" inc  # guest-tools: -Iguest-tools
		else { fail("#include \"" inc "\": no such file in the tree"); next }
		while (target ~ /(^|\/)\.\.\//) if (!sub(/[^\/]+\/\.\.\//, "", target)) break
		to = top(target)
		if (to == from || allow[from, "*"] || allow[from, to]) next
		fail(from "/ may not include " target " (" from "/ may include " may[from] ")")
	}
	END { exit bad }
	' - $files)
}

# The checker first proves it catches a violation, so a broken rule table
# or awk script cannot pass silently.
selftest() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/foldvm-include.XXXXXX") || return 1
	mkdir "$tmp/lib" "$tmp/vmm"
	printf '#include "vmm/up.h"\n' > "$tmp/lib/down.h"
	: > "$tmp/vmm/up.h"
	out=$(check "$tmp")
	rc=$?
	rm -rf "$tmp"
	if [ "$rc" -eq 0 ] || ! printf '%s\n' "$out" | grep -q '^lib/down.h:1: lib/ may not include vmm/up.h'; then
		echo "FAIL: the checker missed lib/ including vmm/ ($out)"
		return 1
	fi
}

if [ $# -gt 0 ]; then
	check "$1"
	exit $?
fi
SRCDIR=${FOLDVM_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
selftest || exit 1
if ! check "$SRCDIR"; then
	echo "FAIL: includes against the layer rules (tests/include_rules.sh, the folders' README.md)"
	exit 1
fi
echo "includes: every #include \"...\" follows the layer rules"
