# lib.sh - shell helpers the Slurm tests share (sourced by
# test/slurm/test-harness.sh and test/test-cli-slurm.sh, after `set -u`):
# failures counted, timed laps, polling with a deadline, and /proc reads
# made with bash builtins only (a scan starts no process); and the
# cluster's start.

fails=0

fail() {
	echo "FAIL: $*" >&2
	fails=$((fails + 1))
}

now() { date +%s.%N; }
t_mark=$(now)
# Prints the time since the last lap, labelled $1.
lap() {
	local t
	t=$(now)
	awk -v a="$t_mark" -v b="$t" -v l="$1" 'BEGIN { printf "time: %-28s %6.2f s\n", l, b - a }'
	t_mark=$t
}

# Waits up to $1 seconds for the command $2... to succeed.
poll() {
	local n=$(($1 * 10))
	shift
	until "$@"; do
		n=$((n - 1))
		[ $n -gt 0 ] || return 1
		sleep 0.1
	done
}

# Whether the NUL-separated file $1 holds an entry equal to $2, or (with
# $3 = prefix) one starting with $2.
nul_has() {
	local e a=()
	mapfile -d '' -t a 2>/dev/null <"$1" || return 1
	for e in "${a[@]}"; do
		case $e in "$2") return 0 ;; "$2"*) [ "${3:-}" = prefix ] && return 0 ;; esac
	done
	return 1
}

# Whether process $1 lives (and is not a zombie).
alive() {
	local st
	read -r st 2>/dev/null <"/proc/$1/stat" || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}

# Starts the cluster in $dir with $harness and exports what it prints
# (SLURM_CONF=...); then the caller's stop() runs at exit. Exits 77 (skip)
# when the harness cannot start it, 1 when it fails otherwise.
cluster_start() {
	local env rc
	env=$("$harness" start "$dir")
	rc=$?
	if [ $rc = 77 ]; then
		rmdir "$dir" 2>/dev/null
		echo "skip: the Slurm cluster cannot start here (reason above)"
		exit 77
	elif [ $rc != 0 ]; then
		rm -rf "$dir"
		echo "FAIL: harness.sh start exited $rc" >&2
		exit 1
	fi
	trap 'stop' EXIT
	set -a
	eval "$env"
	set +a
	lap "start"
}

# The shell tests of the herd command on the cluster (test-cli-slurm.sh,
# test-cli-slurm-submit.sh) share what follows; a file may define its own
# stop or digest after sourcing this one.

# Pids of the live processes that herd started on this cluster (srun, and
# the jobs' processes: they carry herd's PARALLEL_SEQ and this cluster's
# SLURM_CONF), or, with $1, only those whose command line is "$1".
job_procs() {
	local p args
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$p" != $$ ] && alive "$p" || continue
		if [ -n "${1:-}" ]; then
			args=()
			mapfile -d '' -t args 2>/dev/null <"/proc/$p/cmdline" || continue
			[ "${args[*]}" = "$1" ] || continue
		fi
		nul_has "/proc/$p/environ" "SLURM_CONF=$SLURM_CONF" &&
			nul_has "/proc/$p/environ" "PARALLEL_SEQ=" prefix && echo "$p"
	done
}
none_left() { [ -z "$(job_procs "${1:-}")" ]; }
count() { job_procs "$1" | wc -l; }

# Stops the cluster once (cluster_start makes it the EXIT trap); a
# process of a job left behind fails the test.
stopped=0
stop() {
	[ $stopped = 0 ] || return 0
	stopped=1
	"$harness" stop "$dir" || fail "harness.sh stop found something left"
}

# The joblog without its times (Seq, Host, Exitval, Signal, Command), by Seq.
digest() { awk -F'\t' 'NR > 1 { print $1 "\t" $2 "\t" $7 "\t" $8 "\t" $9 }' "$1" | sort -n; }

# The end of a test file: stops the cluster (and whatever else its stop
# stops), checks that the directory went with it, says how the case named
# $1 ended and exits 0 or 1.
finish() {
	cd / || exit 1
	trap - EXIT
	stop
	lap "stop"
	[ ! -e "$dir" ] || fail "$dir left after stop"
	if [ $fails = 0 ]; then
		echo "$1: passed"
		exit 0
	fi
	echo "$1: $fails failure(s)"
	exit 1
}
