#!/bin/sh
# typecheck.sh CC INCLUDE_DIR SOURCE - checks that the compiler refuses the
# wrongly typed uses in SOURCE (see typecheck.c): -DCASE=0 must compile
# cleanly with -Wall -Wextra -Werror -Wpedantic, and each case named on a
# "refuse N: PATTERN" line must fail with a message matching PATTERN (an
# extended regular expression). Exits 0 when all hold, 1 otherwise.
set -u
cc=$1 inc=$2 src=$3
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
fail=0
if ! $cc -std=c11 -Wall -Wextra -Werror -Wpedantic -I"$inc" -fsyntax-only -DCASE=0 "$src" >"$out" 2>&1; then
	echo "typecheck: the correct uses (CASE=0) do not compile:"
	cat "$out"
	fail=1
fi
n=0
for line in $(grep -o 'refuse [0-9]*' "$src" | tr ' ' '_'); do
	c=${line#refuse_}
	pat=$(sed -n "s/.*refuse $c: \(.*\) \*\/.*/\1/p" "$src")
	n=$((n + 1))
	if $cc -std=c11 -Wall -Wextra -I"$inc" -fsyntax-only -DCASE="$c" "$src" >"$out" 2>&1; then
		echo "typecheck: case $c compiled, but must be refused"
		fail=1
	elif ! grep -Eq "$pat" "$out"; then
		echo "typecheck: case $c was refused, but not with /$pat/:"
		head -5 "$out"
		fail=1
	fi
done
[ "$n" -gt 0 ] || { echo "typecheck: no case found in $src"; fail=1; }
[ "$fail" -eq 0 ] && echo "typecheck: $n wrong uses refused, the right ones compile"
exit "$fail"
