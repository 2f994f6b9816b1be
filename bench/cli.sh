#!/bin/sh
# cli.sh - the herd command against GNU parallel, xargs and a raw
# posix_spawn loop; called by run.sh, prints lines in its format:
#     bench cli-job: herd X ms/job, parallel Y ms/job, ratio R
#     bench cli-job-xargs: herd X ms/job, xargs Y ms/job, ratio R
#     bench cli-job-raw: herd X ms/job, raw Y ms/job, ratio R
#     bench cli-start: herd X ms, parallel Y ms, ratio R
#     bench cli-start-xargs: herd X ms, xargs Y ms, ratio R
#     bench cli-rss: herd X KiB, parallel -, ratio -
# Each figure is the median of BENCH_CLI_RUNS runs (default 5), the tools
# alternating. Targets (issue 11): cli-job-raw <= 1.10, cli-job <= 0.10,
# cli-job-xargs < 1, cli-start < 2 ms.
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
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'; }
. "$(dirname "$0")/common.sh"

# per_job CMD...: milliseconds per job of `seq $jobs | CMD`
per_job() {
	t0=$(now)
	seq $jobs | "$@" >/dev/null 2>&1
	awk -v ms="$(elapsed "$t0")" -v n=$jobs 'BEGIN { printf "%.4f\n", ms / n }'
}

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
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
h=$(median <"$tmp/herd")
p=-
[ $have_parallel = 1 ] && p=$(median <"$tmp/parallel")
x=$(median <"$tmp/xargs")
r=$(median <"$tmp/raw")
log "cli-job runs: herd $(tr '\n' ' ' <"$tmp/herd")| xargs $(tr '\n' ' ' <"$tmp/xargs")| raw $(tr '\n' ' ' <"$tmp/raw")"
echo "bench cli-job: herd $h ms/job, parallel $p ms/job, ratio $(ratio "$h" "$p")"
echo "bench cli-job-xargs: herd $h ms/job, xargs $x ms/job, ratio $(ratio "$h" "$x")"
echo "bench cli-job-raw: herd $h ms/job, raw $r ms/job, ratio $(ratio "$h" "$r")"
target cli-job "$(ratio "$h" "$p")" 0.10
target cli-job-xargs "$(ratio "$h" "$x")" 0.99
target cli-job-raw "$(ratio "$h" "$r")" 1.10

# Start-up: one job that prints one line.
hs=$("$wall" $((runs * 10)) "$herd" echo ::: 1 | sed 's/ ms//')
xs=$("$wall" $((runs * 10)) sh -c 'echo 1 | xargs echo' | sed 's/ ms//')
ss=$("$wall" $((runs * 10)) sh -c 'echo 1' | sed 's/ ms//')
ps=-
[ $have_parallel = 1 ] && ps=$("$wall" "$runs" parallel --will-cite echo ::: 1 | sed 's/ ms//')
log "cli-start: sh -c 'echo 1' alone takes $ss ms (xargs's figure includes it)"
echo "bench cli-start: herd $hs ms, parallel $ps ms, ratio $(ratio "$hs" "$ps")"
echo "bench cli-start-xargs: herd $hs ms, xargs $xs ms, ratio $(ratio "$hs" "$xs")"
target cli-start "$hs" 2

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
