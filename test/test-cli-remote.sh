#!/bin/bash
# test-cli-remote.sh - CTest's cli-remote.three_ways: the same herd command
# line run three ways (issue 16's "done means"):
#   local   herd ARGS
#   ssh     herd --ssh 'ssh -F CONFIG' -S 1/herd-a,1/herd-b ARGS
#           (two "hosts" of one sshd, test/remote-lib.sh: herd-a runs the
#           jobs under herd --guard, herd-b under the perl fallback)
#   slurm   salloc -N1 -n2 herd --slurm ARGS
#           (the one-node cluster of test/slurm/harness.sh)
#   1. For two command lines (a shell command with -k; a command's words,
#      -q, with -k --tag and items with quotes, blanks and an empty one), the
#      three give the same stdout, stderr (but herd-b's line about its
#      fallback), exit status and joblog (but the Host, Starttime and
#      JobRuntime columns); the Host column is ":" here, herd-a and herd-b
#      on ssh (both used), the node in Slurm, as {host} gives it. Each
#      run's stdout, stderr and joblog is printed, for the note.
#   2. Ctrl-C in each: while jobs run `sleep M & sleep M` (M a marker unique
#      to the test), SIGINT to herd; herd exits with 255, and within 5 s no
#      `sleep M` is left anywhere (on the ssh "hosts" nor in the Slurm
#      allocation, whose steps squeue no longer lists), nor herd's ssh
#      control directory.
# The sshd and the cluster start once, and stop on every path. Exit 77
# (skip) with one line where either cannot start (not root, no sshd, rsync,
# perl, slurm-wlm or munge). Needs HERD_CLI (the herd binary).
set -u
here=$(cd "$(dirname "$0")" && pwd)
harness=$here/slurm/harness.sh
herd=${HERD_CLI:?HERD_CLI: the herd binary}
unset SLURM_JOB_ID SLURM_JOBID SLURM_STEP_ID SLURM_NTASKS SLURM_CPUS_PER_TASK
. "$here/slurm/lib.sh"
. "$here/remote-lib.sh"

stopped=0
stop() {
	[ $stopped = 0 ] || return 0
	stopped=1
	sshd_stop
	[ -z "${dir:-}" ] || "$harness" stop "$dir" || fail "harness.sh stop found something left"
}
trap 'stop' EXIT
trap 'stop; exit 1' INT TERM

sshd_start "$herd"
lap "sshd"
# In /var/tmp, not /tmp: see test/slurm/test-harness.sh.
dir=$(mktemp -d "/var/tmp/herd-slurm-$$-XXXXXX") || exit 1
cluster_start
node=$HERD_SLURM_NODE
echo "cluster: node $node, proctrack/$HERD_SLURM_PROCTRACK; ssh hosts herd-a (herd --guard), herd-b (perl)"
work=$dir/work
mkdir "$work"
cd "$work" || exit 1
# herd's ssh control directory goes in ssh_dir, where the test can see
# that herd removed it.
export TMPDIR=$ssh_dir

# The three ways' options before a command line's own.
way_local=()
way_ssh=(--ssh "$ssh_opt" -S 1/herd-a,1/herd-b)
way_slurm=(--slurm)
# Runs herd the way $1 with the arguments $2...
run_way() {
	local way=$1
	shift
	case $way in
	local) "$herd" "$@" ;;
	ssh) "$herd" "${way_ssh[@]}" "$@" ;;
	slurm) salloc -Q -N1 -n2 "$herd" "${way_slurm[@]}" "$@" ;;
	esac
}

# The joblog without Host, Starttime and JobRuntime (Seq, Send, Receive,
# Exitval, Signal, Command), by Seq.
digest() { awk -F'\t' 'NR > 1 { print $1 "\t" $5 "\t" $6 "\t" $7 "\t" $8 "\t" $9 }' "$1" | sort -n; }
# The joblog's Host column, its values sorted and unique.
hosts_of() { awk -F'\t' 'NR > 1 { print $2 }' "$1" | sort -u | tr '\n' ' '; }
# Stderr without herd-b's line about its fallback.
job_err() { grep -v '^herd: herd-b: herd is not installed there' "$1"; }

indent() { sed 's/^/    /' "$1"; }

# Runs the command line $2... the three ways (case $1), prints what each
# gave and checks that all three agree with the local run.
three_ways() {
	local name=$1 way rc
	shift
	echo
	echo "=== $name: herd [WAY] $(printf '%q ' "$@")"
	for way in local ssh slurm; do
		run_way "$way" --joblog "$work/$name.$way.jl" "$@" \
			>"$work/$name.$way.out" 2>"$work/$name.$way.err"
		rc=$?
		echo "$rc" >"$work/$name.$way.rc"
		echo "--- $way: exit status $rc"
		echo "  stdout:"
		indent "$work/$name.$way.out"
		echo "  stderr:"
		indent "$work/$name.$way.err"
		echo "  joblog:"
		indent "$work/$name.$way.jl"
	done
	for way in ssh slurm; do
		[ "$(cat "$work/$name.$way.rc")" = "$(cat "$work/$name.local.rc")" ] ||
			fail "$name: $way exited $(cat "$work/$name.$way.rc"), local $(cat "$work/$name.local.rc")"
		cmp -s "$work/$name.$way.out" "$work/$name.local.out" ||
			fail "$name: $way's stdout differs from the local run's"
		[ "$(job_err "$work/$name.$way.err")" = "$(cat "$work/$name.local.err")" ] ||
			fail "$name: $way's stderr differs from the local run's"
		[ "$(digest "$work/$name.$way.jl")" = "$(digest "$work/$name.local.jl")" ] ||
			fail "$name: $way's joblog differs from the local run's: $(digest "$work/$name.$way.jl")"
	done
	[ -s "$work/$name.local.out" ] && [ "$(digest "$work/$name.local.jl" | wc -l)" = 5 ] ||
		fail "$name: the local run printed nothing or logged other than 5 jobs"
	[ "$(hosts_of "$work/$name.local.jl")" = ": " ] ||
		fail "$name: local Host column '$(hosts_of "$work/$name.local.jl")'"
	[ "$(hosts_of "$work/$name.ssh.jl")" = "herd-a herd-b " ] ||
		fail "$name: ssh Host column '$(hosts_of "$work/$name.ssh.jl")'"
	[ "$(hosts_of "$work/$name.slurm.jl")" = "$node " ] ||
		fail "$name: Slurm Host column '$(hosts_of "$work/$name.slurm.jl")'"
	grep -q '^herd: herd-b: herd is not installed there' "$work/$name.ssh.err" ||
		fail "$name: no line about herd-b's fallback"
}

# 1. The same command lines, three ways.
three_ways shell -k 'echo out {} $PARALLEL_SEQ; echo err {} >&2; exit {}' ::: 0 1 2 0 3
[ "$(cat "$work/shell.local.rc")" = 3 ] || fail "shell: the local run exited $(cat "$work/shell.local.rc"), not 3"
three_ways words -q -k --tag sh -c 'echo "out [$1]"; echo "err [$1]" >&2; exit $((${#1} % 4))' sh \
	::: '' x '\$' 'a b' "it's"
[ "$(cat "$work/words.local.rc")" = 3 ] || fail "words: the local run exited $(cat "$work/words.local.rc"), not 3"
# {host}: the host each way ran the job on.
for way in local ssh slurm; do
	h=$(run_way "$way" -k 'echo {host}' ::: 1 2 2>/dev/null | sort -u | tr '\n' ' ')
	case $way in local) want=": " ;; ssh) want="herd-a herd-b " ;; slurm) want="$node " ;; esac
	[ "$h" = "$want" ] || fail "{host} $way: '$h', not '$want'"
done
echo
lap "three ways"

# 2. Ctrl-C in each.
marker=301.$(printf %07d $(($$ % 10000000)))
# Pids of the live `sleep $marker`s (here, on the "hosts", in the steps).
marked() {
	local p args
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		alive "$p" || continue
		args=()
		mapfile -d '' -t args 2>/dev/null <"/proc/$p/cmdline" || continue
		[ "${args[*]}" = "sleep $marker" ] && echo "$p"
	done
}
n_marked() { marked | wc -l; }
none_marked() { [ -z "$(marked)" ]; }
has_rc() { [ -s "$1.rc" ]; }
# The allocation's steps (squeue's status counts: were slurmctld gone, its
# empty output would pass).
no_step() {
	local q
	q=$(squeue -h -s -j "$1" -o %i 2>/dev/null) && [ -z "$q" ]
}
no_ssh_dir() { ! ls -d "$ssh_dir"/herd-ssh-* >/dev/null 2>&1; }

# Runs herd the way $2 with the arguments $3... in the background (pid in
# $1.pid, stdout and stderr in $1.out and $1.err, then its status in $1.rc).
# In Slurm the allocation (its id in $1.job) then waits, up to 60 s, for
# $1.go, so that what herd left is looked for before Slurm ends the
# allocation and everything in it itself.
start_bg() {
	local n=$1 way=$2
	shift 2
	case $way in
	slurm)
		salloc -Q -N1 -n2 sh -c '
			n=$1; shift
			echo $SLURM_JOB_ID >$n.job
			sh -c "echo \$\$ >$n.pid; exec \"\$@\"" sh "$@" >$n.out 2>$n.err
			echo $? >$n.rc
			k=600; until [ -e $n.go ] || [ $k = 0 ]; do sleep 0.1; k=$((k - 1)); done' \
			sh "$n" "$herd" "${way_slurm[@]}" "$@" &
		;;
	*)
		local opts=()
		[ "$way" = ssh ] && opts=("${way_ssh[@]}")
		sh -c '
			n=$1; shift
			sh -c "echo \$\$ >$n.pid; exec \"\$@\"" sh "$@" >$n.out 2>$n.err
			echo $? >$n.rc' sh "$n" "$herd" "${opts[@]}" "$@" &
		;;
	esac
	bg_pid=$!
}

for way in local ssh slurm; do
	n=int.$way
	start_bg "$n" "$way" -j2 "sleep $marker & sleep $marker; echo {}" ::: 1 2 3
	# Two jobs, each two sleeps.
	poll 30 eval '[ "$(n_marked)" -ge 4 ]' ||
		fail "Ctrl-C $way: no 4 'sleep $marker' in /proc within 30 s: $(marked)"
	poll 10 test -s "$n.pid" || fail "Ctrl-C $way: no herd pid"
	hpid=$(cat "$n.pid" 2>/dev/null)
	[ -n "$hpid" ] && kill -INT "$hpid" || fail "Ctrl-C $way: no herd to send SIGINT to"
	poll 30 has_rc "$n" || fail "Ctrl-C $way: herd still runs 30 s after SIGINT"
	rc=$(cat "$n.rc" 2>/dev/null)
	[ "$rc" = 255 ] || fail "Ctrl-C $way: herd exited '$rc', not 255: $(cat "$n.err")"
	[ ! -s "$n.out" ] || fail "Ctrl-C $way: stdout '$(cat "$n.out")'"
	poll 5 none_marked || fail "Ctrl-C $way: left running: $(marked)"
	if [ "$way" = slurm ]; then
		poll 5 no_step "$(cat "$n.job")" ||
			fail "Ctrl-C slurm: steps left: $(squeue -h -s -j "$(cat "$n.job")")"
		: >"$n.go"
	fi
	[ "$way" != ssh ] || poll 5 no_ssh_dir || fail "Ctrl-C ssh: herd's control directory left"
	wait "$bg_pid"
	echo "Ctrl-C $way: herd exited $rc; left: $(n_marked) 'sleep $marker'"
done
lap "Ctrl-C"

finish cli-remote.three_ways
