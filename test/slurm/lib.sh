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
