#!/bin/bash
# test-cli-slurm.sh - CTest's cli-slurm.allocation: the herd command inside
# a Slurm allocation (cli/slurm.c), on the one-node cluster of
# test/slurm/harness.sh. Under `salloc -N1 -n2`:
#   1. herd -k -j2 over five items prints the same stdout, exits with the
#      same status and writes the same joblog as a local run, but for the
#      Host column (the node), and each job ran as a step of the allocation;
#   2. without -j the slots are the allocation's 2 tasks, and two jobs run
#      at once (each waits, up to 30 s, until both have started);
#   3. --timeout 2 on a `sleep 60` job ends it: status 1, the joblog's -1 and
#      signal 15, and no process of the job is left;
#      --halt now,fail=1 and --retries act as locally (the first with
#      nothing left of the step it ended);
#   4. SIGINT to herd while three jobs run (each with a `setsid sleep`
#      child) ends them: herd exits 255 and no process of any job, nor an
#      srun, is left (the setsid child only with proctrack/cgroup: with
#      proctrack/linuxproc the test says so and does not count it);
#   5. --no-slurm runs the jobs here, not as steps; --slurm outside an
#      allocation is one line and exit status 255.
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


trap 'stop; exit 1' INT TERM

# --slurm outside an allocation: before any cluster.
err=$("$herd" --slurm echo ::: 1 2>&1 >/dev/null)
rc=$?
[ $rc = 255 ] || fail "--slurm outside an allocation exited $rc, not 255"
[ "$(echo "$err" | wc -l)" = 1 ] && case $err in *"not inside a Slurm allocation"*) true ;; *) false ;; esac ||
	fail "--slurm outside an allocation said: $err"

cluster_start
echo "cluster: node $HERD_SLURM_NODE, proctrack/$HERD_SLURM_PROCTRACK"
work=$dir/work
mkdir "$work"
cd "$work" || exit 1

# 1. The same as a local run.
cmd='echo out {} $PARALLEL_SEQ; echo err {} >&2; exit {}'
lout=$("$herd" -k -j2 --joblog "$work/jl.local" "$cmd" ::: 0 1 2 0 3 2>/dev/null)
lrc=$?
sout=$(salloc -Q -N1 -n2 "$herd" -k -j2 --joblog "$work/jl.slurm" "$cmd" ::: 0 1 2 0 3 2>"$work/err1")
src=$?
[ $lrc = 3 ] || fail "the local run exited $lrc, not 3"
[ $src = $lrc ] || fail "in the allocation herd exited $src, the local run $lrc: $(cat "$work/err1")"
[ "$sout" = "$lout" ] || fail "stdout in the allocation '$sout', locally '$lout'"
want=$(digest "$work/jl.local" | sed "s/\t:\t/\t$HERD_SLURM_NODE\t/")
got=$(digest "$work/jl.slurm")
[ -n "$want" ] && [ "$got" = "$want" ] || fail "joblog in the allocation:
$got
wanted:
$want"
steps=$(salloc -Q -N1 -n2 "$herd" -j2 'echo step=$SLURM_STEP_ID; : {}' ::: a b c 2>&1 | sort | tr '\n' ' ')
[ "$steps" = "step=0 step=1 step=2 " ] || fail "the jobs' step ids: '$steps'"
lap "same as local"

# 2. The allocation's two tasks are two slots, and two jobs run at once.
cat >"$work/both.sh" <<'EOF'
: >"started.$1"
n=300
while [ "$(ls | grep -c '^started\.')" -lt 2 ]; do
	n=$((n - 1))
	[ $n -gt 0 ] || { echo "job $1 ran alone"; exit 1; }
	sleep 0.1
done
echo "ok $1"
EOF
out=$(salloc -Q -N1 -n2 "$herd" -k sh "$work/both.sh" ::: a b 2>&1)
rc=$?
[ $rc = 0 ] && [ "$out" = "ok a
ok b" ] || fail "two jobs at once: exit $rc, '$out'"
lap "two at once"

# Runs herd with the arguments $2... in an allocation, in the background:
# its pid goes to $1.pid, its stdout and stderr to $1.out and $1.err and,
# once it has exited, its status to $1.rc; the allocation then waits (up to
# 60 s) for $1.go, so that what herd left is looked for before Slurm ends
# the allocation, and everything in it, itself.
in_alloc() {
	local n=$1
	shift
	salloc -Q -N1 -n2 sh -c '
		n=$1; shift
		sh -c "echo \$\$ >$n.pid; exec \"\$@\"" sh "$@" >$n.out 2>$n.err
		echo $? >$n.rc
		k=600; until [ -e $n.go ] || [ $k = 0 ]; do sleep 0.1; k=$((k - 1)); done' \
		sh "$n" "$herd" "$@" &
	alloc_pid=$!
}
# Lets the allocation of in_alloc $1 end.
alloc_end() {
	: >"$1.go"
	wait "$alloc_pid"
}
has_rc() { [ -s "$1.rc" ]; }
# What herd left is looked for for up to 5 s after it exits: srun exits
# when the step's task has, and Slurm's SIGTERM reaches the rest of the
# step's tree (a setsid child) at the same time, not before.

# 3. --timeout ends a step, and nothing of it is left.
in_alloc t3 --joblog "$work/jl.timeout" --timeout 2 'sleep {}; echo done {}' ::: 60
poll 30 has_rc t3 || fail "--timeout: herd still runs after 30 s"
rc=$(cat t3.rc)
[ "$rc" = 1 ] || fail "--timeout: herd exited $rc, not 1: $(cat t3.err)"
[ ! -s t3.out ] || fail "--timeout: stdout '$(cat t3.out)'"
grep -q 'timed out' t3.err || fail "--timeout: no line about it: $(cat t3.err)"
jl=$(digest "$work/jl.timeout")
[ "$jl" = "1	$HERD_SLURM_NODE	-1	15	sleep 60; echo done 60" ] || fail "--timeout's joblog: '$jl'"
poll 5 none_left || fail "--timeout left: $(job_procs)"
alloc_end t3
lap "--timeout"

# --halt now,fail=1 ends the other step at once; --retries runs a failing
# job again (here it fails twice, then succeeds): as locally.
halt_cmd='if [ {} = 1 ]; then sleep 0.5; exit 4; fi; sleep 304'
lout=$("$herd" -j2 --halt now,fail=1 "$halt_cmd" ::: 1 2 2>/dev/null)
lrc=$?
in_alloc t3h -j2 --halt now,fail=1 "$halt_cmd" ::: 1 2
poll 30 has_rc t3h || fail "--halt: herd still runs after 30 s"
rc=$(cat t3h.rc)
[ "$lrc" = 4 ] && [ "$rc" = 4 ] || fail "--halt now,fail=1: herd exited $rc, locally $lrc: $(cat t3h.err)"
[ "$(cat t3h.out)" = "$lout" ] || fail "--halt: stdout '$(cat t3h.out)', locally '$lout'"
poll 5 none_left || fail "--halt left: $(job_procs)"
alloc_end t3h
retry_cmd='n=$(cat {}.n 2>/dev/null || echo 0); echo $((n + 1)) >{}.n; echo try $n; [ $n -ge 2 ]'
lout=$("$herd" --retries 3 "$retry_cmd" ::: local 2>&1)
lrc=$?
sout=$(salloc -Q -N1 -n2 "$herd" --retries 3 "$retry_cmd" ::: slurm 2>&1)
src=$?
[ $lrc = 0 ] && [ $src = 0 ] && [ "$(cat slurm.n)" = 3 ] && [ "$sout" = "$lout" ] ||
	fail "--retries 3: exit $src (locally $lrc), $(cat slurm.n) tries, '$sout' (locally '$lout')"
lap "--halt, --retries"

# 4. SIGINT to herd: nothing of any job is left.
in_alloc t4 'setsid sleep 302 & sleep 303; echo {}' ::: 1 2 3
poll 30 eval '[ "$(count "sleep 303")" -ge 2 ] && [ "$(count "sleep 302")" -ge 2 ]' ||
	fail "no 2 'sleep 303' and 2 'sleep 302' of the jobs in /proc within 30 s: $(job_procs)"
hpid=$(cat t4.pid 2>/dev/null)
[ -n "$hpid" ] && kill -INT "$hpid" || fail "no herd to send SIGINT to"
poll 30 has_rc t4 || fail "herd still runs 30 s after SIGINT"
rc=$(cat t4.rc)
[ "$rc" = 255 ] || fail "SIGINT: herd exited $rc, not 255: $(cat t4.err)"
[ ! -s t4.out ] || fail "SIGINT: stdout '$(cat t4.out)'"
if [ "$HERD_SLURM_PROCTRACK" != cgroup ]; then
	left=$(job_procs "sleep 302")
	echo "proctrack/linuxproc: a job's setsid child outlives its step:" \
		"$(echo $left | wc -w) left (killed here, not counted)"
	[ -z "$left" ] || kill -KILL $left
fi
poll 5 none_left || fail "SIGINT left: $(job_procs)"
alloc_end t4
lap "SIGINT"

# 5. --no-slurm: the jobs run here, in no step.
out=$(salloc -Q -N1 -n2 "$herd" --no-slurm 'echo ${SLURM_STEP_ID:-none}; : {}' ::: 1 2>&1)
[ "$out" = none ] || fail "--no-slurm: '$out'"
lap "--no-slurm"

finish cli-slurm.allocation
