#!/bin/sh
# seed.sh CHECK PROGRAM - checks the seed example (examples/seed/: PROGRAM
# is the built seed, with event beside it).
#   runs: a small run (its events last long enough for the program's own
#     count, made every 100 ms, to see them) exits 0; each object is processed and finished
#     exactly once, and the summary says so, with 0 processes left and as
#     many descriptors after as before.
#   sigint_leaves_nothing: a long run, interrupted by SIGINT once its
#     events run, exits promptly (status 130) with the summary (0 processes
#     left, descriptors unchanged), and no process it started remains.
#   options: -h prints the usage; a bad option is one line on stderr and
#     exit status 2.
# Every process the program starts carries SEED_TEST_MARK in its
# environment (inherited), so that a /proc scan finds this test's
# processes, and only them, while other tests run beside it.
set -u
check=$1 prog=$2
mark="SEED_TEST_MARK=seed-$$-$(date +%s%N)"
out=$(mktemp) || exit 1
err=$(mktemp) || exit 1
pid=

# The marked processes but the program itself: "pid comm" lines. Zombies
# have an empty environment, and are not found.
marked() {
	for dir in /proc/[0-9]*; do
		p=${dir#/proc/}
		[ "$p" != "$pid" ] || continue
		grep -qzxF "$mark" "$dir/environ" 2>/dev/null || continue
		echo "$p $(cat "$dir/comm" 2>/dev/null)"
	done
}

# Waits up to $1 tenths of a second for the command $2... to succeed.
poll() {
	n=$1
	shift
	while ! "$@"; do
		n=$((n - 1))
		[ $n -gt 0 ] || return 1
		sleep 0.1
	done
}

# The program has exited: it is a zombie until it is waited for, or gone.
gone() {
	state=$(sed 's/.*) \(.\).*/\1/' "/proc/$pid/stat" 2>/dev/null)
	[ -z "$state" ] || [ "$state" = Z ]
}

# On any exit: kill what this test started and is still there. SIGTERM
# first, which herd takes: it ends the program's process trees and
# removes its cgroups before the program dies; SIGKILL if that fails.
cleanup() {
	if [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; then
		poll 50 gone
		kill -KILL "$pid" 2>/dev/null
	fi
	for p in $(marked | cut -d' ' -f1); do
		kill -KILL "$p" 2>/dev/null
	done
	rm -f "$out" "$err" "$err.procs"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
	echo "seed: $*"
	echo "--- the program's output (last lines):"
	tail -n 20 "$out"
	cat "$err"
	exit 1
}

# The summary's lines: descriptors the same before and after, 0 left.
check_summary() {
	grep -qx "Summary:" "$out" || fail "no summary"
	grep -Eq "^  processes: at most [1-9][0-9]* at once .*, 0 left$" "$out" ||
		fail "the summary does not say 0 processes left, or saw none running"
	line=$(grep "^  descriptors: " "$out") || fail "no descriptors in the summary"
	before=$(echo "$line" | sed -n 's/^  descriptors: \([0-9]*\) open before, \([0-9]*\) after$/\1/p')
	after=$(echo "$line" | sed -n 's/^  descriptors: \([0-9]*\) open before, \([0-9]*\) after$/\2/p')
	if [ -z "$before" ] || [ "$before" != "$after" ]; then
		fail "descriptors: $line"
	fi
}

# Under qemu-user (a cross build's tests), the program's event, built for
# the target, cannot be executed by the kernel, and orphans go to init.
if [ -n "${HERD_TEST_EMULATOR:-}" ] && [ "$check" != options ]; then
	echo "seed: skipped: the event program cannot run under an emulator"
	exit 77
fi

case $check in
runs)
	env "$mark" "$prog" -n 12 -j 4 -t 200 >"$out" 2>"$err" ||
		fail "exit status $?"
	i=0
	while [ $i -lt 12 ]; do
		for line in "Processing: object-$i" "Finished: object-$i"; do
			n=$(grep -cx "$line" "$out")
			[ "$n" = 1 ] || fail "\"$line\" printed $n times"
		done
		i=$((i + 1))
	done
	grep -qx "  objects: 12 received, 12 started, 12 finished, each exactly once" "$out" ||
		fail "the summary does not say each object ran exactly once"
	check_summary
	left=$(marked)
	[ -z "$left" ] || fail "left behind: $left"
	echo "seed: 12 objects, each processed and finished once; 0 processes left"
	;;
sigint_leaves_nothing)
	env "$mark" "$prog" -n 200 -j 16 -t 5000 >"$out" 2>"$err" &
	pid=$!
	# The scan must see the program's events and their leftovers while
	# they run, or its "none left" below would prove nothing.
	running() {
		marked >"$err.procs"
		grep -q " event$" "$err.procs" && grep -q " event-leftover$" "$err.procs"
	}
	poll 300 running || { rm -f "$err.procs"; fail "no event and leftover seen running"; }
	seen=$(wc -l <"$err.procs")
	rm -f "$err.procs"
	grep -q "^Processing: " "$out" || fail "events run, but no Processing line"
	# The program counts its processes every 100 ms: let it see them too,
	# or its summary would rightly say it saw none running.
	sleep 0.5
	kill -INT "$pid"
	# Generous: what is checked is that it ends, not how fast.
	poll 200 gone || fail "still running 20 s after SIGINT"
	wait "$pid"
	status=$?
	pid=
	[ $status = 130 ] || fail "exit status $status, not 130"
	grep -qx "Interrupted: canceling the work" "$out" || fail "SIGINT was not reported"
	grep -Eq "^  objects: .*(none more than once|each exactly once)" "$out" ||
		fail "the summary does not say that no object ran twice"
	check_summary
	left=$(marked)
	[ -z "$left" ] || fail "left behind after the exit: $left"
	echo "seed: $seen marked processes seen running; none left after SIGINT"
	;;
options)
	${HERD_TEST_EMULATOR:-} "$prog" -h >"$out" 2>"$err" || fail "-h: exit status $?"
	grep -q "^usage: seed " "$out" || fail "-h printed no usage"
	for args in "-n x" "-n 0" "-j" "-t -1" "-q" "extra"; do
		# shellcheck disable=SC2086 # the words of args are the options
		${HERD_TEST_EMULATOR:-} "$prog" $args >"$out" 2>"$err"
		status=$?
		[ $status = 2 ] || fail "seed $args: exit status $status, not 2"
		[ "$(wc -l <"$err")" = 1 ] || fail "seed $args: not one line on stderr"
		[ ! -s "$out" ] || fail "seed $args: printed on stdout"
	done
	echo "seed: -h prints the usage; bad options exit 2 with one line"
	;;
*)
	echo "usage: $0 runs|sigint_leaves_nothing|options PROGRAM" >&2
	exit 2
	;;
esac
