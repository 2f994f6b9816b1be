#!/bin/sh
# cli.sh - the herd command against GNU parallel, xargs and a raw
# posix_spawn loop; called by run.sh, prints lines in its format:
#     bench cli-job: herd X ms/job, parallel Y ms/job, ratio R (worst W)
#     bench cli-job-xargs: herd X ms/job, xargs Y ms/job, ratio R (worst W)
#     bench cli-job-raw: herd X ms/job, raw Y ms/job, ratio R (worst W)
#     bench cli-start: herd X ms, parallel Y ms, ratio R (worst W)
#     bench cli-start-xargs: herd X ms, xargs Y ms, ratio R (worst W)
#     bench cli-rss: herd X KiB, parallel -, ratio -
# The tools alternate over BENCH_CLI_RUNS rounds (default 5): X and Y are
# the medians of the rounds' figures, R the median of the rounds' ratios, W
# the worst (largest). A cli-job round is one run of 2,000 jobs per tool; a
# cli-start round the median of 10 starts of herd and of xargs, and one of
# parallel. Targets (issue 11), checked against the worst round:
# cli-job-raw <= 1.10, cli-job <= 0.10, cli-job-xargs < 1, cli-start < 2 ms
# (herd's slowest round).
# Usage: bench/cli.sh <build-dir>
set -u
build=$(cd "$1" && pwd)
herd=$build/cli/herd
raw=$build/bench/bench-raw-jobs
wall=$build/bench/bench-wall
runs=${BENCH_CLI_RUNS:-5}
jobs=2000
log() { printf 'cli.sh: %s\n' "$*" >&2; }

[ -x "$herd" ] || { log "$herd: not found"; exit 1; }
have_parallel=0
command -v parallel >/dev/null 2>&1 && have_parallel=1
[ $have_parallel = 1 ] || log "GNU parallel is not installed (apt-get install parallel): no parallel figures"

now() { date +%s.%N; }
# elapsed T0: milliseconds since T0
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }'; }
. "$(dirname "$0")/common.sh"

# line NAME UNIT LABEL X-FILE Y-FILE KIND LIMIT: prints the line of NAME
# from the rounds in the files, and checks its target: KIND ratio bounds the
# worst ratio, herd the worst herd figure, - nothing.
line() {
	# shellcheck disable=SC2046 # the five words of rounds
	set -- "$@" $(rounds "$4" "$5")
	# $8 .. $12: medians of X, Y, the ratios; worst ratio, worst X
	y="$9 $2"
	[ "$9" = - ] && y=-
	echo "bench $1: herd $8 $2, $3 $y, ratio ${10} (worst ${11})"
	case ${6:-} in
	ratio) target "$1" "${11}" "$7" worst ;;
	herd) target "$1" "${12}" "$7" worst ;;
	esac
}

# per_job CMD...: milliseconds per job of `seq $jobs | CMD`
per_job() {
	t0=$(now)
	seq $jobs | "$@" >/dev/null 2>&1
	awk -v ms="$(elapsed "$t0")" -v n=$jobs 'BEGIN { printf "%.4f\n", ms / n }'
}

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
for f in herd xargs raw parallel herd-start xargs-start parallel-start; do
	: >"$tmp/$f"
done
i=0
while [ $i -lt "$runs" ]; do
	per_job "$herd" -j8 /bin/true >>"$tmp/herd"
	per_job xargs -P 8 -n 1 /bin/true >>"$tmp/xargs"
	# The same command line as the others run: /bin/true with an argument
	# (coreutils' true sets its locale up when it has one).
	"$raw" $jobs 8 /bin/true x | sed 's/ ms.job//' >>"$tmp/raw"
	[ $have_parallel = 1 ] && per_job parallel --will-cite -j8 /bin/true >>"$tmp/parallel"
	i=$((i + 1))
done
log "cli-job runs: herd $(tr '\n' ' ' <"$tmp/herd")| xargs $(tr '\n' ' ' <"$tmp/xargs")| raw $(tr '\n' ' ' <"$tmp/raw")| parallel $(tr '\n' ' ' <"$tmp/parallel")"
line cli-job ms/job parallel "$tmp/herd" "$tmp/parallel" ratio 0.10
line cli-job-xargs ms/job xargs "$tmp/herd" "$tmp/xargs" ratio 0.99
line cli-job-raw ms/job raw "$tmp/herd" "$tmp/raw" ratio 1.10

# Start-up: one job that prints one line.
i=0
while [ $i -lt "$runs" ]; do
	"$wall" 10 "$herd" echo ::: 1 | sed 's/ ms//' >>"$tmp/herd-start"
	"$wall" 10 sh -c 'echo 1 | xargs echo' | sed 's/ ms//' >>"$tmp/xargs-start"
	[ $have_parallel = 1 ] &&
		"$wall" 1 parallel --will-cite echo ::: 1 | sed 's/ ms//' >>"$tmp/parallel-start"
	i=$((i + 1))
done
ss=$("$wall" $((runs * 10)) sh -c 'echo 1' | sed 's/ ms//')
log "cli-start: sh -c 'echo 1' alone takes $ss ms (xargs's figure includes it)"
log "cli-start runs: herd $(tr '\n' ' ' <"$tmp/herd-start")| xargs $(tr '\n' ' ' <"$tmp/xargs-start")| parallel $(tr '\n' ' ' <"$tmp/parallel-start")"
line cli-start ms parallel "$tmp/herd-start" "$tmp/parallel-start" herd 2
line cli-start-xargs ms xargs "$tmp/herd-start" "$tmp/xargs-start" - -

# Peak memory over a long input: it grows with the jobs in flight, not the
# input (BENCH_CLI_RSS_JOBS, default 100,000 jobs of true at -j8).
n=${BENCH_CLI_RSS_JOBS:-100000}
if [ -x /usr/bin/time ]; then
	rss=$(seq "$n" | /usr/bin/time -f %M "$herd" -j8 true 2>&1 >/dev/null | tail -n 1)
	log "cli-rss: seq $n | herd -j8 true"
	echo "bench cli-rss: herd $rss KiB, parallel -, ratio -"
else
	log "no /usr/bin/time (apt-get install time): no cli-rss"
fi
