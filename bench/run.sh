#!/bin/sh
# run.sh - runs herd's benchmarks next to their Go twins and other anchors.
#
# Usage: bench/run.sh <build-dir>
#
# Runs the benchmarks of <build-dir>/bench/ (bench-core, bench-sync,
# bench-proc, bench-typed, bench-io, and the peer benchmarks bench-peer-*)
# and their Go twin (bench/go/, built here into <build-dir>/bench/go-bench
# when `go` is on PATH), and prints one line per comparison on stdout, nothing else:
#     bench NAME: herd X UNIT, ANCHOR Y UNIT, ratio R (worst W)
# Each benchmark runs in BENCH_ROUNDS fresh processes (default 5), its
# anchors alternating with it: herd, go, herd, go, ... (herd, go, raw, herd,
# go, raw, ... when it has two), since within one process herd settles into
# a fast or a slow mode that the median of that process's timings cannot
# show. X and Y are the medians of the processes' figures, R the median of
# the rounds' ratios X/Y and W the worst (largest) of them. Each process
# prints the median of BENCH_REPS timings after a warm-up: run.sh sets 3, 1
# for the process benchmarks (see the table), unless BENCH_REPS is set; run
# by hand, the programs take 5. A figure that no round gave is "-" ("herd
# -": the herd benchmark failed; "go -": no Go).
# The anchors, ANCHOR:
#     go       the Go twin of NAME (bench/go/)
#     raw      NAME-raw: a plain C loop without herd, in the herd binary
#              (proc-spawn-raw: posix_spawn + waitpid; typed-chan-raw: the
#              untyped channel calls); herd's figure is that of NAME
#     libdill, neco
#              peer-libdill-W, peer-neco-W: the peer benchmark W (spawn,
#              pingpong, buffered, select, yield; bench/peers/peer.h) on
#              that C coroutine library, herd running the same work with one
#              worker (bench-peer-herd); libdill has no buffered channel.
#              They are built only when CMake finds the peers' sources
#              (HERD_PEERS_DIR, default ../shared/peers): without them run.sh
#              says so once on stderr and prints no peer line.
# Then the herd command's lines (bench/cli.sh), when it was built.
# Diagnostics go to stderr, every round's figures among them. Exits 1 if a
# herd benchmark failed (the others still run), 2 on bad usage.
# BENCH_TIMEOUT (seconds, default 600) bounds each process when timeout(1)
# is available. BENCH_ONLY, an extended regular expression, runs only the
# lines whose NAME it matches (cli.sh's lines when it matches "cli").
#
# Targets (issue 15), checked against the WORST round (a herd figure's
# target against the largest herd figure); missing one is reported on
# stderr, not an error:
#     spawn          spawn+join <= 0.5 x Go               (ratio <= 0.50)
#     skynet         <= 0.5 x Go                          (ratio <= 0.50)
#     yield          a task switch <= 20 ns               (herd <= 20 ns/switch)
#     mem-parked     a parked task <= 4.5 KiB of RSS      (herd <= 4608 bytes/task)
#     mem-spawned    a spawned task not yet run <= 512 bytes (herd <= 512)
#     chan-pingpong  unbuffered round trip <= 0.5 x Go    (ratio <= 0.50)
#     chan-buffered  1 producer, 1 consumer <= 0.6 x Go   (ratio <= 0.60)
#     chan-2x2       2 producers, 2 consumers <= 0.7 x Go (ratio <= 0.70)
#     select         2-case select <= 0.6 x Go            (ratio <= 0.60)
#     mutex-uncontended  lock, increment, unlock in one task <= 0.7 x Go's
#                    sync.Mutex                           (ratio <= 0.70)
#     mutex-contended    the same by 2 tasks on 2 workers <= 0.7 x Go
#                                                         (ratio <= 0.70)
#     proc-spawn-raw herd's proc-spawn <= 1.05 x a raw posix_spawn + waitpid
#                    loop in C                            (ratio <= 1.05)
#     proc-spawn-par the same shared by 8 tasks <= 0.8 x Go (ratio <= 0.80)
#     typed-chan-raw a typed send+receive <= 1.02 x an untyped one
#                                                         (ratio <= 1.02)
#     peer-libdill-W herd (one worker) <= 1.0 x libdill on spawn, pingpong,
#                    select, yield                        (ratio <= 1.00)
#     peer-neco-W    herd (one worker) <= 0.8 x neco on every W
#                                                         (ratio <= 0.80)
#     net-echo     TCP echo over loopback, 100 connections x 1,000 messages
#                  of 64 bytes, wall time <= 0.8 x Go's    (ratio <= 0.80)
#     timers-p99   100,000 tasks sleeping to random deadlines 1-100 ms
#                  away: p99 wake latency <= Go's         (ratio <= 1.00)
#                  (timers-p50, their median, has no target)
# proc-spawn (2,000 runs of /bin/true in a row, stdout a pipe read to the
# end; us/proc) is compared with Go's os/exec without a target;
# proc-spawn-par is the same shared by 8 tasks or goroutines (wall time /
# 2,000).
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
rounds_n=${BENCH_ROUNDS:-5}
case $rounds_n in
'' | *[!0-9]* | 0)
	log "BENCH_ROUNDS=$rounds_n: expected a positive integer"
	exit 2
	;;
esac
# The timed runs per process: BENCH_REPS if set, else the table's.
reps_all=${BENCH_REPS:-}
case $reps_all in
*[!0-9]* | 0)
	log "BENCH_REPS=$reps_all: expected a positive integer"
	exit 2
	;;
esac
reps_now=3

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
# It gets BENCH_REPS=$reps_now.
run_limited() {
	if command -v timeout >/dev/null 2>&1; then
		BENCH_REPS=$reps_now timeout "${BENCH_TIMEOUT:-600}" "$@" </dev/null
	else
		BENCH_REPS=$reps_now "$@" </dev/null
	fi
}

# The program of a command BIN:ARG of the table: the Go twin for "go",
# <build-dir>/bench/bench-BIN otherwise.
program() {
	case ${1%%:*} in
	go) echo "$go_bin" ;;
	*) echo "$build/bench/bench-${1%%:*}" ;;
	esac
}

# measure CMD UNIT: prints the figure of command CMD (BIN:ARG), or fails.
measure() {
	bin=$(program "$1")
	if [ ! -x "$bin" ]; then
		log "$bin: not found"
		return 1
	fi
	out=$(run_limited "$bin" "${1#*:}") || {
		log "$bin ${1#*:} failed (exit status $?)"
		return 1
	}
	value=${out% "$2"}
	case $value in
	"$out" | '' | *[!0-9.-]*)
		log "$bin ${1#*:}: expected '<number> $2', got: $out"
		return 1
		;;
	esac
	printf '%s\n' "$value"
}

# rounds and target
. "$src/common.sh"

have_go=0
build_go && have_go=1
env | grep -E '^(HERD_[A-Z_]*|GOMAXPROCS|GOGC|GODEBUG|GOMEMLIMIT|BENCH_[A-Z_]*)=' |
	while read -r v; do log "environment: $v"; done

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
status=0

# Whether the anchor command $1 can run: "-" cannot, nor go without Go.
anchor_ok() {
	case $1 in
	-) return 1 ;;
	go:*) [ $have_go = 1 ] ;;
	*) return 0 ;;
	esac
}

# Runs the group of lines in $tmp/group (the table's lines that share one
# herd command) in rounds, and prints their lines. Its variables are g_*, as
# the table's loop that calls it holds the others.
run_group() {
	[ -s "$tmp/group" ] || return 0
	read -r _ g_unit g_herd _ _ _ _ g_reps <"$tmp/group"
	reps_now=${reps_all:-${g_reps:-3}}
	g_names=$(awk '{ printf("%s%s", (NR > 1 ? ", " : ""), $1) }' "$tmp/group")
	g_t0=$(date +%s)
	log "--- $g_names ($rounds_n rounds, BENCH_REPS=$reps_now)"
	: >"$tmp/x"
	g_k=0
	while read -r _; do
		g_k=$((g_k + 1))
		: >"$tmp/y$g_k"
	done <"$tmp/group"
	g_r=0
	while [ $g_r -lt "$rounds_n" ]; do
		g_r=$((g_r + 1))
		g_x=$(measure "$g_herd" "$g_unit") || {
			# A broken benchmark: its other rounds would fail too.
			status=1
			echo - >"$tmp/x"
			break
		}
		echo "$g_x" >>"$tmp/x"
		g_k=0
		while read -r _ _ _ _ g_anchor _; do
			g_k=$((g_k + 1))
			g_y=-
			if anchor_ok "$g_anchor"; then
				g_y=$(measure "$g_anchor" "$g_unit") || g_y=-
			fi
			echo "$g_y" >>"$tmp/y$g_k"
		done <"$tmp/group"
	done
	g_k=0
	while read -r g_name _ _ g_label _ g_kind g_limit _; do
		g_k=$((g_k + 1))
		# shellcheck disable=SC2046 # the five words of rounds
		set -- $(rounds "$tmp/x" "$tmp/y$g_k")
		g_hx="$1 $g_unit"
		[ "$1" = - ] && g_hx=-
		g_ay="$2 $g_unit"
		[ "$2" = - ] && g_ay=-
		log "$g_name rounds: herd $(tr '\n' ' ' <"$tmp/x")| $g_label $(tr '\n' ' ' <"$tmp/y$g_k")"
		echo "bench $g_name: herd $g_hx, $g_label $g_ay, ratio $3 (worst $4)"
		case $g_kind in
		ratio) target "$g_name" "$4" "$g_limit" worst ;;
		herd) target "$g_name" "$5" "$g_limit" worst ;;
		esac
	done <"$tmp/group"
	log "--- $g_names: $(($(date +%s) - g_t0)) s"
	: >"$tmp/group"
}

# The peers that were built (bench/CMakeLists.txt builds only those whose
# sources it found).
peers=
for p in libdill neco; do
	[ -x "$build/bench/bench-peer-$p" ] && peers="$peers $p"
done
if [ -z "$peers" ]; then
	log "no peer benchmarks: neither neco nor libdill was built (CMake's HERD_PEERS_DIR, default ../shared/peers, does not hold their sources)"
elif [ "$peers" != " libdill neco" ]; then
	log "peer benchmarks for$peers only: the other peer's sources were not found"
fi

# One line per line printed: its name, unit, the herd command, the anchor's
# label and command, what the target bounds (ratio: the ratio; herd: herd's
# figure; -: no target), the bound, and optionally the timed runs per
# process (BENCH_REPS; 3 when absent: a median that a moment's load on the
# machine does not move; 1 for the process benchmarks, each of whose runs
# starts 2,000 processes and lasts a second or more). A command is BIN:ARG,
# run as <build-dir>/bench/bench-BIN ARG (BIN go: the Go twin); "-" for
# none. Consecutive lines with the same herd command share its rounds (the
# first line's BENCH_REPS).
: >"$tmp/group"
last=
while read -r name unit herd label anchor kind limit reps; do
	case $name in
	peer-*)
		case " $peers " in
		*" $label "*) ;;
		*) continue ;;
		esac
		;;
	esac
	if [ -n "${BENCH_ONLY:-}" ]; then
		echo "$name" | grep -Eq -- "$BENCH_ONLY" || continue
	fi
	[ "$herd" = "$last" ] || run_group
	last=$herd
	echo "$name $unit $herd $label $anchor $kind $limit $reps" >>"$tmp/group"
done <<EOF
spawn ns/task core:spawn go go:spawn ratio 0.50
skynet ms core:skynet go go:skynet ratio 0.50
yield ns/switch core:yield go go:yield herd 20
mem-parked bytes/task core:mem-parked go go:mem-parked herd 4608
mem-spawned bytes/task core:mem-spawned go go:mem-spawned herd 512
chan-pingpong ns/roundtrip core:chan-pingpong go go:chan-pingpong ratio 0.50
chan-buffered ns/msg core:chan-buffered go go:chan-buffered ratio 0.60
chan-2x2 ns/msg core:chan-2x2 go go:chan-2x2 ratio 0.70
select ns/op core:select go go:select ratio 0.60
mutex-uncontended ns/op sync:mutex-uncontended go go:mutex-uncontended ratio 0.70
mutex-contended ns/op sync:mutex-contended go go:mutex-contended ratio 0.70
proc-spawn us/proc proc:proc-spawn go go:proc-spawn - - 1
proc-spawn-raw us/proc proc:proc-spawn raw proc:proc-spawn-raw ratio 1.05
proc-spawn-par us/proc proc:proc-spawn-par go go:proc-spawn-par ratio 0.80 1
typed-chan ns/op typed:typed-chan - - - -
typed-chan-raw ns/op typed:typed-chan raw typed:typed-chan-raw ratio 1.02
peer-libdill-spawn ns peer-herd:spawn libdill peer-libdill:spawn ratio 1.00
peer-neco-spawn ns peer-herd:spawn neco peer-neco:spawn ratio 0.80
peer-libdill-pingpong ns peer-herd:pingpong libdill peer-libdill:pingpong ratio 1.00
peer-neco-pingpong ns peer-herd:pingpong neco peer-neco:pingpong ratio 0.80
peer-neco-buffered ns peer-herd:buffered neco peer-neco:buffered ratio 0.80
peer-libdill-select ns peer-herd:select libdill peer-libdill:select ratio 1.00
peer-neco-select ns peer-herd:select neco peer-neco:select ratio 0.80
peer-libdill-yield ns peer-herd:yield libdill peer-libdill:yield ratio 1.00
peer-neco-yield ns peer-herd:yield neco peer-neco:yield ratio 0.80
net-echo ms io:net-echo go go:net-echo ratio 0.80 3
timers-p99 us io:timers-p99 go go:timers-p99 ratio 1.00 1
timers-p50 us io:timers-p50 go go:timers-p50 - - 1
EOF
run_group
# The herd command (bench/cli.sh), when it was built.
if [ -n "${BENCH_ONLY:-}" ] && ! echo cli | grep -Eq -- "$BENCH_ONLY"; then
	:
elif [ -x "$build/cli/herd" ]; then
	"$src/cli.sh" "$build" || status=1
fi
exit $status
