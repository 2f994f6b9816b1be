#!/bin/sh
# run.sh - runs herd's benchmarks next to their Go twins.
#
# Usage: bench/run.sh <build-dir>
#
# Runs <build-dir>/bench/bench-core, bench-sync and bench-proc and their Go twin
# (bench/go/, built here into <build-dir>/bench/go-bench when `go` is on PATH),
# herd first, benchmark by benchmark, and prints one line per benchmark on
# stdout, nothing else:
#     bench NAME: herd X UNIT, go Y UNIT, ratio R        (R = X / Y)
# with "go -" and "ratio -" when there is no Go figure ("herd -" when the
# herd benchmark failed). A benchmark with a plain C anchor in the herd
# binary (NAME-raw, which runs outside herd) gets a second line, with herd's
# figure of the line before:
#     bench NAME-raw: herd X UNIT, raw Y UNIT, ratio R   (R = X / Y)
# Diagnostics go to stderr. Exits 1 if a herd benchmark failed (the others
# still run), 2 on bad usage. BENCH_TIMEOUT (seconds, default 600) bounds
# each run when timeout(1) is available.
#
# Targets (from the issue); missing one is reported on stderr, not an error:
#     spawn        spawn+join <= 0.5 x Go             (ratio <= 0.50)
#     skynet       <= 0.7 x Go                        (ratio <= 0.70)
#     yield        a task switch <= 20 ns             (herd <= 20 ns/switch)
#     mem-parked   a parked task <= 4.5 KiB of RSS    (herd <= 4608 bytes/task)
#     mem-spawned  a spawned task not yet run <= 512 bytes (herd <= 512)
#     chan-pingpong  unbuffered round trip <= 0.5 x Go    (ratio <= 0.50)
#     chan-buffered  1 producer, 1 consumer <= 0.8 x Go   (ratio <= 0.80)
#     chan-2x2       2 producers, 2 consumers <= 0.8 x Go (ratio <= 0.80)
#     select         2-case select <= 0.6 x Go            (ratio <= 0.60)
#     mutex-uncontended  lock, increment, unlock in one task <= 0.7 x Go's
#                    sync.Mutex                           (ratio <= 0.70)
#     mutex-contended    the same by 2 tasks on 2 workers <= 0.7 x Go
#                                                         (ratio <= 0.70)
#     proc-spawn-raw herd's proc-spawn <= 1.1 x a raw posix_spawn + waitpid
#                    loop in C                            (ratio <= 1.10)
#     typed-chan-raw a typed send+receive <= 1.02 x an untyped one
#                                                         (ratio <= 1.02)
#     net-echo     TCP echo over loopback, 100 connections x 1,000 messages
#                  of 64 bytes, wall time <= 0.8 x Go's    (ratio <= 0.80)
#     timers-p99   100,000 tasks sleeping to random deadlines 1-100 ms
#                  away: p99 wake latency <= Go's         (ratio <= 1.00)
#                  (timers-p50, their median, has no target)
# proc-spawn (2,000 runs of /bin/true in a row, stdout a pipe read to the
# end; us/proc) and proc-spawn-par (the same shared by 8 tasks or goroutines;
# wall time / 2,000) are compared with Go's os/exec, without a target.
set -u

log() {
	printf 'run.sh: %s\n' "$*" >&2
}

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: $0 <build-dir>" >&2
	exit 2
fi
src=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
go_bin=$build/bench/go-bench

# Whether Go can use its cache directory $1 (which it would create anyway).
cache_ok() {
	[ -n "$1" ] && [ "$1" != off ] && mkdir -p "$1" 2>/dev/null && [ -w "$1" ]
}

# Whether directory $1, which a std-only build need not create, could be.
dir_ok() {
	d=$1
	while [ -n "$d" ] && [ ! -e "$d" ]; do
		d=$(dirname "$d")
	done
	[ -n "$d" ] && [ -d "$d" ] && [ -w "$d" ]
}

# Builds the Go twin into $go_bin; fails if go is missing or the build fails.
build_go() {
	if ! command -v go >/dev/null 2>&1; then
		log "go is not on PATH: no Go figures"
		return 1
	fi
	mkdir -p "$build/bench" || return 1
	# Without a writable HOME, Go keeps its caches in the build tree.
	cache_ok "$(go env GOCACHE 2>/dev/null)" ||
		export GOCACHE="$build/bench/go-cache"
	dir_ok "$(go env GOPATH 2>/dev/null)" ||
		export GOPATH="$build/bench/go-path"
	if ! (cd "$src/go" && GOFLAGS=-mod=mod GO111MODULE=on GOPROXY=off \
		GOTOOLCHAIN=local go build -o "$go_bin" .) >&2; then
		log "cannot build the Go twin: no Go figures"
		return 1
	fi
	log "$(go version), $(nproc 2>/dev/null || echo '?') cpus, kernel $(uname -r)"
}

# Runs one benchmark of one binary, bounded in time when timeout(1) exists.
run_limited() {
	if command -v timeout >/dev/null 2>&1; then
		timeout "${BENCH_TIMEOUT:-600}" "$@" </dev/null
	else
		"$@" </dev/null
	fi
}

# measure BIN NAME UNIT: prints the figure of `BIN NAME`, or fails.
measure() {
	if [ ! -x "$1" ]; then
		log "$1: not found"
		return 1
	fi
	out=$(run_limited "$1" "$2") || {
		log "$1 $2 failed (exit status $?)"
		return 1
	}
	value=${out% "$3"}
	case $value in
	"$out" | '' | *[!0-9.-]*)
		log "$1 $2: expected '<number> $3', got: $out"
		return 1
		;;
	esac
	printf '%s\n' "$value"
}

# ratio and target
. "$src/common.sh"

have_go=0
build_go && have_go=1
env | grep -E '^(HERD_[A-Z_]*|GOMAXPROCS|GOGC|GODEBUG|GOMEMLIMIT)=' |
	while read -r v; do log "environment: $v"; done

status=0
x=-
# name, unit, the herd binary (<build-dir>/bench/bench-BIN), what herd's figure
# is compared with (go: the Go twin of NAME; raw: `bench-BIN NAME`, herd's
# figure being that of the line before), what the target bounds (the ratio,
# herd's figure, or - for no target), the bound
while read -r name unit bin against kind limit; do
	log "--- $name"
	herd_bin=$build/bench/bench-$bin
	if [ "$against" = raw ]; then
		# x is herd's figure of the line before
		y=$(measure "$herd_bin" "$name" "$unit") || y=-
	else
		x=$(measure "$herd_bin" "$name" "$unit") || {
			x=-
			status=1
		}
		y=-
		if [ $have_go = 1 ] && [ "$against" = go ]; then
			y=$(measure "$go_bin" "$name" "$unit") || y=-
		fi
	fi
	r=$(ratio "$x" "$y")
	hx="$x $unit"
	[ "$x" = - ] && hx=-
	ay="$y $unit"
	[ "$y" = - ] && ay=-
	echo "bench $name: herd $hx, $against $ay, ratio $r"
	case $kind in
	ratio) target "$name" "$r" "$limit" ;;
	herd) target "$name" "$x" "$limit" ;;
	esac
done <<EOF
spawn ns/task core go ratio 0.50
skynet ms core go ratio 0.70
yield ns/switch core go herd 20
mem-parked bytes/task core go herd 4608
mem-spawned bytes/task core go herd 512
chan-pingpong ns/roundtrip core go ratio 0.50
chan-buffered ns/msg core go ratio 0.80
chan-2x2 ns/msg core go ratio 0.80
select ns/op core go ratio 0.60
mutex-uncontended ns/op sync go ratio 0.70
mutex-contended ns/op sync go ratio 0.70
proc-spawn us/proc proc go - -
proc-spawn-raw us/proc proc raw ratio 1.10
proc-spawn-par us/proc proc go - -
typed-chan ns/op typed - - -
typed-chan-raw ns/op typed raw ratio 1.02
net-echo ms io go ratio 0.80
timers-p99 us io go ratio 1.00
timers-p50 us io go - -
EOF
# The herd command (bench/cli.sh), when it was built.
if [ -x "$build/cli/herd" ]; then
	"$src/cli.sh" "$build" || status=1
fi
exit $status
