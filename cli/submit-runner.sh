# shellcheck disable=SC2034,SC2154 # (the variables come from submit.c)
# submit-runner.sh - the runner of herd --slurm-submit (cli/submit.c): each
# task of the job array runs this, after the lines submit.c writes before
# it (the script is both, in the submit directory, as run.sh):
#   d        the submit directory (shared with the nodes)
#   n, p     the array's tasks, and -j
#   tries    --retries (1: no retry)
#   timeout  --timeout in seconds, or empty
#   herd     this herd's path on the submit host
#   ends()   --term-seq on the job $1 (a pid, or -pgid), then SIGKILL
# Task t runs lines t+1, t+1+n, t+1+2n... of $d/jobs ("SEQ 'word'..."), one
# after another: the job's stdout and stderr into $d/o.SEQ and $d/e.SEQ,
# its start and node into $d/r.SEQ as it starts, and once it has ended,
# "status timedout start end node" into $d/s.SEQ (whole: made under
# another name, then renamed). POSIX sh, awk, date, mv, and a sleep that
# takes fractions (GNU, busybox); setsid if there.
N='
'
t=${SLURM_ARRAY_TASK_ID:?not a task of a job array}
host=${SLURMD_NODENAME:-$(uname -n)}
# Each job under herd --guard (its tree in herd's care) where herd runs here.
guard() { [ -n "$1" ] && "$1" --guard -- true </dev/null >/dev/null 2>&1; }
guard "$herd" || { herd=$(command -v herd 2>/dev/null) && guard "$herd"; } || herd=
# A job in a session of its own, ended as a group, where setsid is there.
grp=
! command -v setsid >/dev/null 2>&1 || grp=setsid
now() {
	s=$(date +%s.%N)
	case $s in *[!0-9.]*) s=$(date +%s) ;; esac
	echo "$s"
}
# Ends the job $1 once it has run for $timeout seconds, and says so in
# $d/x.SEQ; stops at SIGTERM before that.
timer() {
	trap 'kill $w 2>/dev/null; exit 1' TERM
	sleep "$timeout" &
	w=$!
	wait $w
	trap - TERM
	: >"$d/x.$seq"
	ends "$1"
}
# Slurm ends a task (scancel, its time limit) by SIGTERM to this shell
# alone, then SIGKILL to what is left: the job gets the SIGTERM, so that
# herd --guard ends its tree, and is waited for.
pid=
ended() {
	if [ -n "$pid" ]; then
		kill -TERM "$job" 2>/dev/null
		wait "$pid"
	fi
	exit 143
}
trap ended TERM
awk -v t="$t" -v n="$n" '(NR - 1) % n == t' "$d/jobs" >"$d/t.$t" || exit 1
PARALLEL_JOBSLOT=$((t % p + 1))
export PARALLEL_JOBSLOT
while IFS= read -r line; do
	seq=${line%% *}
	eval "set -- ${line#* }"
	[ -z "$herd" ] || set -- "$herd" --guard -- "$@"
	[ -z "$grp" ] || set -- $grp "$@"
	PARALLEL_SEQ=$seq
	export PARALLEL_SEQ
	try=0
	while :; do
		try=$((try + 1))
		to=0
		start=$(now)
		echo "$start $host" >"$d/r.$seq" # for a job killed before its status
		# In the background: a trap runs while the shell waits, not
		# while a command runs in the foreground.
		"$@" </dev/null >"$d/o.$seq" 2>"$d/e.$seq" &
		pid=$!
		job=$pid
		[ -z "$grp" ] || job=-$pid
		[ -z "$timeout" ] || { timer $job & }
		tp=$!
		wait "$pid"
		rc=$?
		pid=
		if [ -z "$timeout" ]; then
			:
		elif [ -e "$d/x.$seq" ]; then
			to=1 # the timer ends what is left of the group
			wait $tp
		else
			kill $tp 2>/dev/null
			wait $tp
		fi
		rm -f "$d/x.$seq"
		end=$(now)
		[ $rc != 0 ] || [ $to != 0 ] || break
		[ $try -lt "$tries" ] || break
	done
	echo "$rc $to $start $end $host" >"$d/s.$seq.new" && mv -f "$d/s.$seq.new" "$d/s.$seq"
done <"$d/t.$t"
rm -f "$d/t.$t"
