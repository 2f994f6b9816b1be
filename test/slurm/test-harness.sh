#!/bin/bash
# test-harness.sh - CTest's slurm.harness: the one-node cluster of
# harness.sh starts, runs what a Slurm backend of `herd` will run, and stops
# leaving nothing behind.
#   1. srun -N1 -n1 hostname prints this machine's name.
#   2. Inside salloc -N1 -n2, two `srun --exact -N1 -n1 -c1` steps run at
#      the same time: each waits (up to 30 s) until both have started, and
#      each prints its own step id (0 and 1).
#   3. sbatch --array=0-3%2: each task writes its index to a file and exits
#      with it; the four files hold 0..3 and `scontrol show job` gives each
#      task's exit code (no accounting here, so no sacct).
#   4. A long array (sleep 300, and a process that leaves the job's process
#      tree with setsid) is cancelled with scancel: none of its processes is
#      left (the setsid one only where proctrack/cgroup is in use; with
#      proctrack/linuxproc the test says so and does not count it).
#   5. harness.sh stop leaves no daemon, slurmstepd or job process.
# Each step's time is printed. Exit 77 (skip) when harness.sh cannot start
# the cluster, with its reason.
set -u
here=$(cd "$(dirname "$0")" && pwd)
harness=$here/harness.sh
# The cluster's directory is in /var/tmp, not /tmp: cli-run.kill9_leaves_no_files,
# run beside this test, counts every new /tmp/herd-* entry as herd's, and
# any deleted /tmp file that a process holds open with the inode number of
# one herd freed (ext4 reuses them; the cluster makes and removes many
# files) as one of herd's. Beside a cluster in /tmp it failed 6 times in 6.
dir=$(mktemp -d "/var/tmp/herd-slurm-$$-XXXXXX") || exit 1
. "$here/lib.sh"

# Pids of live processes of this cluster's jobs whose command line is
# exactly "sleep" $1 (found by SLURM_CONF in their environment, so that
# another test's sleeps do not count).
job_sleeps() {
	local p st e args
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		read -r st 2>/dev/null <"/proc/$p/stat" || continue
		st=${st##*) }
		[ "${st%% *}" != Z ] || continue
		args=()
		mapfile -d '' -t args 2>/dev/null <"/proc/$p/cmdline" || continue
		[ "${args[*]}" = "sleep $1" ] || continue
		nul_has "/proc/$p/environ" "SLURM_CONF=$SLURM_CONF" 2>/dev/null && echo "$p"
	done
}

# Pids of live processes that mention the cluster's directory in their
# command line or environment (daemons, slurmstepd, jobs).
cluster_procs() {
	local p st e f a
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$p" != $$ ] || continue
		read -r st 2>/dev/null <"/proc/$p/stat" || continue
		st=${st##*) }
		[ "${st%% *}" != Z ] || continue
		for f in cmdline environ; do
			a=()
			mapfile -d '' -t a 2>/dev/null <"/proc/$p/$f" || continue
			for e in "${a[@]}"; do
				case $e in *"$dir"*) echo "$p $(cat "/proc/$p/comm" 2>/dev/null)"; continue 3 ;; esac
			done
		done
	done
}

no_job_sleeps() { [ -z "$(job_sleeps "$1")" ]; }
# (squeue's status counts: were slurmctld gone, its empty output would pass.)
queue_empty() {
	local q
	q=$(squeue -h -o %i 2>/dev/null) && [ -z "$q" ]
}
n_running() { squeue -h -t R -o %i 2>/dev/null | wc -l; }
two_running() { [ "$(n_running)" -ge 2 ]; }

stopped=0
stop() {
	[ $stopped = 0 ] || return 0
	stopped=1
	"$harness" stop "$dir" || fail "harness.sh stop found something left"
}
trap 'stop; exit 1' INT TERM

# Start.
cluster_start
echo "cluster: node $HERD_SLURM_NODE, proctrack/$HERD_SLURM_PROCTRACK, $(sinfo --version)"
work=$dir/work
mkdir "$work"

# 1. One step.
out=$(srun -N1 -n1 hostname 2>&1)
[ "$out" = "$(hostname)" ] || fail "srun hostname printed '$out', not '$(hostname)'"
lap "srun hostname"

# 2. Two --exact steps at once in a 2-CPU allocation. Each step records that
# it started, then waits for the other: were they run one after the other,
# the first would give up after 30 s and fail.
cat >"$work/step.sh" <<'EOF'
: >"$1/started.$SLURM_STEP_ID"
n=300
while [ "$(ls "$1" | grep -c '^started\.')" -lt 2 ]; do
	n=$((n - 1))
	[ $n -gt 0 ] || { echo "step $SLURM_STEP_ID ran alone"; exit 1; }
	sleep 0.1
done
echo "$SLURM_STEP_ID"
EOF
out=$(salloc -N1 -n2 --job-name=exact sh -c '
	echo "alloc cpus=$SLURM_JOB_CPUS_PER_NODE ntasks=$SLURM_NTASKS"
	srun --exact -N1 -n1 -c1 sh "$1/step.sh" "$1" >"$1/step.a" 2>&1 &
	srun --exact -N1 -n1 -c1 sh "$1/step.sh" "$1" >"$1/step.b" 2>&1 &
	wait %1 && wait %2 && echo both-ok' sh "$work" 2>&1)
ids=$(cat "$work/step.a" "$work/step.b" 2>/dev/null | sort | tr '\n' ' ')
case $out in
*both-ok*) ;;
*) fail "the two --exact steps: $out / $ids" ;;
esac
[ "$ids" = "0 1 " ] || fail "step ids '$ids', not '0 1 '"
echo "$out" | grep '^alloc' | grep -qx 'alloc cpus=2 ntasks=2' ||
	fail "allocation: $(echo "$out" | grep '^alloc')"
lap "salloc, 2 steps at once"

# 3. A job array, at most 2 tasks at a time; task i exits with status i.
job=$(sbatch --parsable --array=0-3%2 -o /dev/null \
	--wrap "echo \$SLURM_ARRAY_TASK_ID >$work/out.\$SLURM_ARRAY_TASK_ID; exit \$SLURM_ARRAY_TASK_ID")
if [ -z "$job" ]; then
	fail "sbatch printed no job id"
elif ! poll 60 queue_empty; then
	fail "array $job still queued after 60 s: $(squeue -h)"
fi
for i in 0 1 2 3; do
	[ "$(cat "$work/out.$i" 2>/dev/null)" = "$i" ] || fail "out.$i: '$(cat "$work/out.$i" 2>/dev/null)'"
done
codes=$(scontrol -o show job "$job" 2>/dev/null |
	sed -n 's/.*ArrayTaskId=\([0-9]*\) .*ExitCode=\([0-9]*:[0-9]*\).*/\1=\2/p' | sort | tr '\n' ' ')
[ "$codes" = "0=0:0 1=1:0 2=2:0 3=3:0 " ] || fail "array exit codes '$codes'"
lap "array 0-3%2 done"

# 4. scancel ends a running array, the processes of its tasks with it.
job=$(sbatch --parsable --array=0-9%2 -o /dev/null --wrap 'setsid sh -c "sleep 301 &"; sleep 300')
poll 30 two_running || fail "the long array did not start 2 tasks in 30 s: $(squeue -h)"
poll 10 eval '[ "$(job_sleeps 300 | wc -l)" -ge 2 ] && [ "$(job_sleeps 301 | wc -l)" -ge 2 ]' ||
	fail "no 2 'sleep 300' and 2 'sleep 301' of the array in /proc: the check could not see them"
lap "long array running"
scancel "$job" || fail "scancel $job"
poll 30 queue_empty || fail "array $job still queued 30 s after scancel: $(squeue -h)"
poll 5 no_job_sleeps 300 || fail "sleep 300 left after scancel: $(job_sleeps 300)"
if [ "$HERD_SLURM_PROCTRACK" = cgroup ]; then
	poll 5 no_job_sleeps 301 || fail "the setsid sleep 301 left after scancel: $(job_sleeps 301)"
else
	left=$(job_sleeps 301)
	echo "proctrack/linuxproc: a process that left the job's tree (setsid) outlives scancel:" \
		"$(echo $left | wc -w) left (killed here, not counted)"
	[ -z "$left" ] || kill -KILL $left
	poll 5 no_job_sleeps 301 || fail "the setsid sleep 301 outlived SIGKILL: $(job_sleeps 301)"
fi
lap "scancel, nothing left"

# 5. Stop, and look for anything of the cluster.
trap - EXIT
stop
lap "stop"
unset SLURM_CONF HERD_SLURM_DIR
left=$(cluster_procs)
[ -z "$left" ] || fail "left after stop: $left"
[ ! -e "$dir" ] || fail "$dir left after stop"

if [ $fails = 0 ]; then
	echo "slurm.harness: passed"
	exit 0
fi
echo "slurm.harness: $fails failure(s)"
exit 1
