#!/bin/sh
# examples.sh CHECK PROGRAM SOURCE_DIR - checks the examples.
#   postmortem_runs: PROGRAM (examples/postmortem, built) prints, for each of its 20 objects,
#     "Processing", what the child said and "Finished", each exactly once,
#     and exits 0.
#   postmortem_is_short: examples/postmortem.c has no cast and at most 1.3
#     times the lines of code of its Go twin (examples/go/postmortem.go;
#     blank and comment lines not counted), and docs/guide.md shows it
#     verbatim.
set -u
check=$1 prog=$2 src=$3
fail() {
	echo "examples: $*"
	exit 1
}
case $check in
postmortem_runs)
	out=$(mktemp) || exit 1
	trap 'rm -f "$out"' EXIT
	${HERD_TEST_EMULATOR:-} "$prog" >"$out" || fail "exit status $?"
	i=0
	while [ $i -lt 20 ]; do
		for line in "Processing: object-$i" "object-$i said: object-$i" "Finished: object-$i"; do
			n=$(grep -cx "$line" "$out")
			[ "$n" = 1 ] || fail "\"$line\" printed $n times"
		done
		i=$((i + 1))
	done
	[ "$(wc -l <"$out")" -eq 60 ] || fail "$(wc -l <"$out") lines, not 60"
	echo "examples: 20 objects, each processed, started and finished once"
	;;
postmortem_is_short)
	c=$src/examples/postmortem.c go=$src/examples/go/postmortem.go
	# Lines of code: not blank, not only a comment.
	loc() {
		sed -e '/^[[:space:]]*\/\*/,/\*\//d' -e '/^[[:space:]]*\/\//d' \
			-e '/^[[:space:]]*$/d' "$1" | wc -l
	}
	nc=$(loc "$c") ngo=$(loc "$go")
	[ "$ngo" -gt 0 ] || fail "no Go lines"
	[ $((nc * 10)) -le $((ngo * 13)) ] || fail "$nc lines of C for $ngo of Go: more than 1.3 times"
	# A cast: a parenthesised type followed by an operand, e.g.
	# (struct object *)p, (char *)s, (int)x, (void)x.
	if grep -En '(^|[^A-Za-z0-9_])\((const |struct |unsigned )*[a-z_][a-z0-9_]*( \*+|\*+)?\)[[:space:]]*[a-z_&*(0-9]' "$c" |
		grep -Ev '(if|while|for|switch|return|sizeof) *\(' | grep .; then
		fail "a cast in $c"
	fi
	# The guide shows the file as it is.
	shown=$(mktemp) || exit 1
	trap 'rm -f "$shown"' EXIT
	awk '/^```c postmortem.c$/ {on = 1; next} on && /^```$/ {exit} on' \
		"$src/docs/guide.md" >"$shown"
	cmp -s "$shown" "$c" || fail "docs/guide.md does not show examples/postmortem.c as it is"
	echo "examples: postmortem.c has $nc lines of code, its Go twin $ngo, no cast"
	;;
*)
	echo "usage: $0 postmortem_runs|postmortem_is_short PROGRAM SOURCE_DIR" >&2
	exit 2
	;;
esac
