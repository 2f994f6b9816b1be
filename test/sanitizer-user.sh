#!/bin/sh
# sanitizer-user.sh CHECK PREFIX [BUILD_DIR CMAKE | CC SOURCE_DIR] - the
# sanitizer builds of the library (libherd-asan, libherd-tsan; see
# cmake/sanitizer-libs.cmake and docs/debugging.md) check a user's program
# as docs/debugging.md says: installed, then found through pkg-config.
#
#   install BUILD_DIR CMAKE    installs the build tree into PREFIX (CTest's
#                              fixture setup; the component install keeps
#                              the build tree's install_manifest.txt as the
#                              user's last `make install` left it)
#   uninstall                  removes PREFIX (the fixture's cleanup)
#   tsan_race_reported         test/user/race.c: TSan reports the race
#                              between its two tasks (status 66)
#   tsan_{chan,wg,scope,mutex}_clean
#                              test/user/handoff.c hands plain data over
#                              through herd: TSan reports nothing
#   asan_overflow_reported     test/user/overflow.c: ASan reports its heap
#                              overflow, and nothing before it
#   asan_handoff_clean         test/user/handoff.c: ASan, UBSan and LSan
#                              report nothing
#
# HERD_USER_SAN_SKIP, when set, says why the check cannot run here (a
# sanitizer build tree, a cross build, a compiler without the sanitizer):
# the check then skips (status 77).
set -u
check=$1 prefix=$2
fail() {
	echo "sanitizer-user: $check: $*"
	exit 1
}
skip() {
	echo "skipped: $*"
	exit 77
}

case $check in
install)
	build=$3 cmake=$4
	rm -rf "$prefix"
	DESTDIR= "$cmake" --install "$build" --prefix "$prefix" --component Unspecified \
		>"$prefix.log" 2>&1 || {
		cat "$prefix.log"
		rm -f "$prefix.log" "$build/install_manifest_Unspecified.txt"
		fail "cmake --install failed"
	}
	rm -f "$prefix.log" "$build/install_manifest_Unspecified.txt"
	echo "sanitizer-user: installed into $prefix"
	exit 0
	;;
uninstall)
	rm -rf "$prefix"
	exit 0
	;;
tsan_*) kind=tsan ;;
asan_*) kind=asan ;;
*)
	echo "usage: $0 install|uninstall|tsan_...|asan_... PREFIX ..." >&2
	exit 2
	;;
esac

cc=$3 src=$4
[ -z "${HERD_USER_SAN_SKIP:-}" ] || skip "$HERD_USER_SAN_SKIP"
command -v pkg-config >/dev/null 2>&1 || skip "no pkg-config"
pc=$(find "$prefix" -name "herd-$kind.pc" | head -n 1)
[ -n "$pc" ] || fail "no herd-$kind.pc under $prefix"
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
flags=$(pkg-config --cflags --libs "herd-$kind") || fail "pkg-config herd-$kind failed"
libdir=$(pkg-config --variable=libdir "herd-$kind") || fail "no libdir in herd-$kind.pc"

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
case $check in
*race*) prog=race ;;
*overflow*) prog=overflow ;;
*) prog=handoff ;;
esac
# shellcheck disable=SC2086 # $flags is a list of words
"$cc" -g -O1 -Wall -Wextra -Werror -o "$tmp/$prog" "$src/test/user/$prog.c" $flags ||
	fail "cannot build $prog.c with: $flags"

# The sanitizers' defaults, whatever the caller's environment says.
unset ASAN_OPTIONS TSAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
run() {
	LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$tmp/$prog" "$@" \
		>"$tmp/out" 2>&1
	status=$?
}
show() {
	cat "$tmp/out"
}
clean() {
	if [ $status -ne 0 ] || grep -Eq 'Sanitizer|runtime error' "$tmp/out"; then
		show
		fail "status $status, or a sanitizer's report, from a program without a bug"
	fi
	show
}

case $check in
tsan_race_reported)
	run
	show
	grep -q "overlapped" "$tmp/out" || echo "sanitizer-user: (the two tasks did not run at once)"
	[ $status -ne 0 ] || fail "status 0: ThreadSanitizer did not fail the program"
	grep -q "WARNING: ThreadSanitizer: data race" "$tmp/out" || fail "no data race reported"
	grep -Eq "SUMMARY: ThreadSanitizer: data race .*race.c:[0-9]+ in bump" "$tmp/out" ||
		fail "the report does not name the racing task function (bump in race.c)"
	echo "sanitizer-user: the race between the two tasks was reported"
	;;
tsan_*_clean)
	mode=${check#tsan_}
	run "${mode%_clean}"
	clean
	;;
asan_overflow_reported)
	run
	show
	[ $status -ne 0 ] || fail "status 0: AddressSanitizer did not stop the program"
	grep -Eq "ERROR: AddressSanitizer: heap-buffer-overflow" "$tmp/out" ||
		fail "no heap-buffer-overflow reported"
	grep -Eq "SUMMARY: AddressSanitizer: heap-buffer-overflow .*overflow.c:[0-9]+ in overflow" \
		"$tmp/out" || fail "the report does not name the task function (overflow in overflow.c)"
	# Nothing reported while the tasks switched stacks, before the bug.
	awk '/the ping-pong is over/ {exit} /Sanitizer|runtime error/ {bad = 1} END {exit bad}' \
		"$tmp/out" || fail "a report before the overflow: a false one"
	grep -q "the ping-pong is over" "$tmp/out" || fail "the ping-pong did not finish"
	echo "sanitizer-user: the overflow in the task was reported, and nothing before it"
	;;
asan_handoff_clean)
	run all
	clean
	;;
*)
	fail "unknown check"
	;;
esac
exit 0
