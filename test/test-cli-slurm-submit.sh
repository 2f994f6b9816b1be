#!/bin/bash
# test-cli-slurm-submit.sh - CTest's cli-slurm.submit: herd --slurm-submit
# (cli/submit.c), the jobs as one Slurm job array submitted from "a login
# node", on the one-node cluster of test/slurm/harness.sh with
# MaxArraySize=4:
#   1. -k -j2 over five jobs exiting 0..3 prints the same stdout, exits with
#      the same status and writes the same joblog as a local run, but for
#      the Host column (the node) and the times;
#   2. ten jobs in the array's four tasks (jobs i, i+4, i+8 in task i),
#      their output in order with -k;
#   3. --timeout 2 on a `sleep 60` job ends it (status 1, the joblog's -1
#      and 15), and --retries 3 runs a failing job again; a task canceled
#      by someone else (scancel) leaves its job with no status: it counts
#      as killed (SIGKILL) after a line about it;
#   4. SIGINT to herd while two of three jobs run (each with a `setsid
#      sleep` child): herd exits 255, the joblog has the two as ended by
#      SIGTERM, the queue has nothing of the array, and no process of any
#      job is left; SIGTERM as well;
#   5. without sbatch in PATH, when sbatch fails (no such partition), and
#      with an option that makes no sense with it (-u), one line and exit
#      status 255, before any job;
# and after every run no submit directory (.herd-submit-*) is left.
# The cluster is stopped on every path. Exit 77 (skip) when harness.sh
# cannot start it, with its reason. Needs HERD_CLI (the herd binary).
set -u
here=$(cd "$(dirname "$0")" && pwd)
harness=$here/slurm/harness.sh
herd=${HERD_CLI:?HERD_CLI: the herd binary}
unset SLURM_JOB_ID SLURM_JOBID SLURM_STEP_ID SLURM_NTASKS SLURM_CPUS_PER_TASK
# In /var/tmp, not /tmp: see test/slurm/test-harness.sh.
dir=$(mktemp -d "/var/tmp/herd-slurm-$$-XXXXXX") || exit 1
. "$here/slurm/lib.sh"

# Whether a submit directory is left in the current one.
no_submit_dir() {
	local left
	left=$(ls -A | grep '^\.herd-submit-')
	[ -z "$left" ] || { echo "left: $left"; return 1; }
}

trap 'stop; exit 1' INT TERM

# 5. No sbatch, and an option that makes no sense: before any cluster.
mkdir "$dir/pre" && cd "$dir/pre" || exit 1
err=$(PATH=/nonexistent "$herd" --slurm-submit echo ::: 1 2>&1 >/dev/null)
rc=$?
[ $rc = 255 ] || fail "without sbatch herd exited $rc, not 255"
[ "$(echo "$err" | wc -l)" = 1 ] && case $err in *"sbatch is not in PATH"*) true ;; *) false ;; esac ||
	fail "without sbatch herd said: $err"
no_submit_dir || fail "without sbatch a submit directory was left"
err=$("$herd" --slurm-submit -u echo ::: 1 2>&1 >/dev/null)
rc=$?
[ $rc = 255 ] && case $err in *"--slurm-submit: not with -u"*) true ;; *) false ;; esac ||
	fail "--slurm-submit -u: exit $rc, '$err'"
cd "$dir" && rm -r "$dir/pre"

export HERD_SLURM_MAX_ARRAY=4
cluster_start
echo "cluster: node $HERD_SLURM_NODE, proctrack/$HERD_SLURM_PROCTRACK, MaxArraySize=4"
work=$dir/work
mkdir "$work"
cd "$work" || exit 1

# 1. The same as a local run.
cmd='echo out {} $PARALLEL_SEQ; echo err {} >&2; exit {}'
lout=$("$herd" -k -j2 --joblog "$work/jl.local" "$cmd" ::: 0 1 2 0 3 2>/dev/null)
lrc=$?
sout=$("$herd" --slurm-submit -k -j2 --joblog "$work/jl.submit" "$cmd" ::: 0 1 2 0 3 2>"$work/err1")
src=$?
[ $lrc = 3 ] || fail "the local run exited $lrc, not 3"
[ $src = $lrc ] || fail "with --slurm-submit herd exited $src, the local run $lrc: $(cat "$work/err1")"
[ "$sout" = "$lout" ] || fail "stdout with --slurm-submit '$sout', locally '$lout'"
want=$(digest "$work/jl.local" | sed "s/\t:\t/\t$HERD_SLURM_NODE\t/")
got=$(digest "$work/jl.submit")
[ -n "$want" ] && [ "$got" = "$want" ] || fail "joblog with --slurm-submit:
$got
wanted:
$want"
[ "$(sort "$work/err1" | tr '\n' ' ')" = "err 0 err 0 err 1 err 2 err 3 " ] ||
	fail "stderr with --slurm-submit: $(cat "$work/err1")"
no_submit_dir || fail "a submit directory was left"
lap "same as local"

# sbatch fails (no such partition): its line, exit status 255.
err=$(SBATCH_PARTITION=nope "$herd" --slurm-submit echo ::: 1 2>&1 >/dev/null)
rc=$?
[ $rc = 255 ] && [ "$(echo "$err" | wc -l)" = 1 ] &&
	case $err in *"sbatch failed: "*"invalid partition"*) true ;; *) false ;; esac ||
	fail "sbatch failing: exit $rc, '$err'"
no_submit_dir || fail "sbatch failing: a submit directory was left"

# 2. Ten jobs in four tasks: job i in task (i - 1) % 4.
out=$("$herd" --slurm-submit -k 'echo {} $SLURM_ARRAY_TASK_ID $SLURM_ARRAY_TASK_COUNT' ::: $(seq 10) 2>&1)
rc=$?
want=$(for i in $(seq 10); do echo "$i $(((i - 1) % 4)) 4"; done)
[ $rc = 0 ] && [ "$out" = "$want" ] || fail "ten jobs in four tasks: exit $rc, output:
$out
wanted:
$want"
no_submit_dir || fail "a submit directory was left"
lap "chunks"

# 3. --timeout ends a job; --retries runs a failing one again.
out=$("$herd" --slurm-submit --joblog "$work/jl.timeout" --timeout 2 'sleep {}; echo done {}' ::: 60 2>"$work/err3")
rc=$?
[ $rc = 1 ] && [ -z "$out" ] || fail "--timeout: exit $rc, not 1, stdout '$out': $(cat "$work/err3")"
grep -q 'timed out' "$work/err3" || fail "--timeout: no line about it: $(cat "$work/err3")"
jl=$(digest "$work/jl.timeout")
[ "$jl" = "1	$HERD_SLURM_NODE	-1	15	sleep 60; echo done 60" ] || fail "--timeout's joblog: '$jl'"
none_left || fail "--timeout left: $(job_procs)"
retry_cmd='n=$(cat {}.n 2>/dev/null || echo 0); echo $((n + 1)) >{}.n; echo try $n; [ $n -ge 2 ]'
lout=$("$herd" --retries 3 "$retry_cmd" ::: local 2>&1)
lrc=$?
sout=$("$herd" --slurm-submit --retries 3 "$retry_cmd" ::: submit 2>&1)
src=$?
[ $lrc = 0 ] && [ $src = 0 ] && [ "$(cat submit.n)" = 3 ] && [ "$sout" = "$lout" ] ||
	fail "--retries 3: exit $src (locally $lrc), $(cat submit.n) tries, '$sout' (locally '$lout')"
no_submit_dir || fail "a submit directory was left"
lap "--timeout, --retries"

# A task canceled by someone else: its job has no status, and counts as
# killed (SIGKILL), with a line about it; the other job's output is there.
"$herd" --slurm-submit --joblog "$work/jl.gone" 'sleep {}; echo {}' ::: 301 1 >gone.out 2>gone.err &
hpid=$!
poll 30 eval '[ "$(count "sleep 301")" = 1 ]' || fail "no 'sleep 301' of the job within 30 s"
arr=$(squeue -h -o %F | head -n 1)
[ -n "$arr" ] && scancel "${arr}_0" || fail "no array in the queue"
wait "$hpid"
rc=$?
[ $rc = 1 ] && [ "$(cat gone.out)" = 1 ] || fail "a task canceled: exit $rc, not 1, stdout '$(cat gone.out)'"
grep -q 'job 1 ended with no status' gone.err || fail "a task canceled: stderr '$(cat gone.err)'"
jl=$(digest "$work/jl.gone")
[ "$jl" = "1	$HERD_SLURM_NODE	0	9	sleep 301; echo 301
2	$HERD_SLURM_NODE	0	0	sleep 1; echo 1" ] || fail "a task canceled: joblog '$jl'"
no_submit_dir || fail "a submit directory was left"
lap "a task canceled"

# 4. SIGINT (then SIGTERM) to herd: nothing of any job is left, and the
# queue has nothing of the array.
for sig in INT TERM; do
	"$herd" --slurm-submit -j3 --joblog "$work/jl.$sig" 'setsid sleep 302 & sleep 303; echo {}' \
		::: 1 2 3 >"t4.out" 2>"t4.err" &
	hpid=$!
	poll 30 eval '[ "$(count "sleep 303")" -ge 2 ] && [ "$(count "sleep 302")" -ge 2 ]' ||
		fail "$sig: no 2 'sleep 303' and 2 'sleep 302' of the jobs within 30 s: $(job_procs)"
	[ -n "$(squeue -h -o %i)" ] || fail "$sig: the array is not in the queue"
	kill "-$sig" "$hpid"
	wait "$hpid"
	rc=$?
	[ "$rc" = 255 ] || fail "SIG$sig: herd exited $rc, not 255: $(cat t4.err)"
	[ ! -s t4.out ] || fail "SIG$sig: stdout '$(cat t4.out)'"
	# As locally: a line for each job that had started (two: the node
	# has two CPUs), as ended by SIGTERM, on its node.
	jl=$(digest "$work/jl.$sig" | cut -f 2-4 | sort -u)
	[ "$jl" = "$HERD_SLURM_NODE	0	15" ] && [ "$(digest "$work/jl.$sig" | wc -l)" = 2 ] ||
		fail "SIG$sig: joblog '$(digest "$work/jl.$sig")'"
	q=$(squeue -h -o '%i %t')
	[ -z "$q" ] || fail "SIG$sig: the queue still has: $q"
	if [ "$HERD_SLURM_PROCTRACK" != cgroup ]; then
		left=$(job_procs "sleep 302")
		echo "proctrack/linuxproc: a job's setsid child outlives its task:" \
			"$(echo $left | wc -w) left (killed here, not counted)"
		[ -z "$left" ] || kill -KILL $left
	fi
	none_left || fail "SIG$sig left: $(job_procs)"
	no_submit_dir || fail "SIG$sig: a submit directory was left"
	lap "SIG$sig"
done

finish cli-slurm.submit
