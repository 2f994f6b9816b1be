#!/bin/bash
# harness.sh - a one-node Slurm cluster inside one directory, for tests.
#
#   harness.sh start DIR   writes a configuration into DIR (created, or
#                          empty), starts munged, slurmctld -D and slurmd -D
#                          in the background, waits until the node is idle,
#                          and prints NAME=value lines on stdout (SLURM_CONF
#                          and HERD_SLURM_*: see harness_env below).
#   harness.sh env DIR     prints those lines again.
#   harness.sh stop DIR    cancels every job, stops the daemons by their
#                          pids, kills any job process or slurmstepd that is
#                          left, removes the node's cgroups and DIR. Exit 1
#                          if something had to be killed or stayed.
#
# Where the cluster cannot start (no packages, not root, a daemon fails or
# the node does not come up in time) start prints one line on stderr
# beginning "harness: skip:", leaves nothing behind, and exits 77 (CTest's
# skip code in this project). Other usage errors exit 2.
#
# Everything lives in DIR: the munge key and socket, the state and spool
# directories, the logs (DIR/log/), the pids (DIR/run/). The ports are two
# free ones picked at random, and the node is named herd<port>, so that two
# clusters on one machine (two build trees tested at once) do not meet: the
# job ids start at port*1000 and Slurm's cgroups are named after the node.
# Each daemon is marked by HERD_SLURM_HARNESS=DIR in its environment.
#
# Environment: HERD_SLURM_START_TIMEOUT (seconds, default 30);
# HERD_SLURM_PROCTRACK=linuxproc forces proctrack/linuxproc (to test the
# fallback where no cgroup is writable); HERD_SLURM_MAX_ARRAY=N sets
# MaxArraySize (Slurm's default: 1001), to test herd's chunks of jobs.
set -u
PATH=$PATH:/usr/sbin:/sbin

cmd=${1:-}
dir=${2:-}
start_timeout=${HERD_SLURM_START_TIMEOUT:-30}
freezer=/sys/fs/cgroup/freezer

usage() {
	echo "usage: harness.sh start|env|stop DIR" >&2
	exit 2
}

skip() {
	echo "harness: skip: $*" >&2
	exit 77
}

# Seconds since the epoch, with fractions (for deadlines).
now() { date +%s.%N; }
# Whether the deadline $1 (from now()) has passed.
past() { awk -v d="$1" -v n="$(now)" 'BEGIN { exit !(n > d) }'; }
deadline() { awk -v s="$1" -v n="$(now)" 'BEGIN { printf "%.3f", n + s }'; }

# Whether file $1 (NUL-separated, as /proc/PID/environ) holds an entry
# containing $2. Bash builtins only, so that the scan starts no process
# that would itself match. (mapfile, not a read loop: a read that fails
# with ESRCH, as a process ends, leaves its variable as it was.)
nul_has() {
	local e a=()
	mapfile -d '' -t a 2>/dev/null <"$1" || return 1
	for e in "${a[@]}"; do
		case $e in *"$2"*) return 0 ;; esac
	done
	return 1
}

# Whether pid $1 lives (a zombie is dead: its reaper is not us).
alive() {
	local st
	[ -r "/proc/$1/stat" ] || return 1
	read -r st 2>/dev/null <"/proc/$1/stat" || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}

# Whether pid $1 is one of our daemons: alive, and marked with DIR (or, for
# one that has not exec'd yet, the harness itself started with DIR on its
# command line). The mark guards against a pid reused after our daemon was
# reaped.
ours() {
	alive "$1" || return 1
	nul_has "/proc/$1/environ" "HERD_SLURM_HARNESS=$dir" 2>/dev/null ||
		nul_has "/proc/$1/cmdline" "$dir" 2>/dev/null
}

# The pids of processes that belong to this cluster, but the daemons
# started with the mark (listed by pidfile): slurmstepd and job processes
# (SLURM_CONF=DIR/slurm.conf and a job id in their environment), and every
# process in the node's freezer cgroups.
strays() {
	local p comm cg
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$p" != $$ ] && alive "$p" || continue
		nul_has "/proc/$p/environ" "SLURM_CONF=$dir/slurm.conf" 2>/dev/null || continue
		read -r comm 2>/dev/null <"/proc/$p/comm" || continue
		if [ "$comm" = slurmstepd ] || nul_has "/proc/$p/environ" SLURM_JOB_ID= 2>/dev/null; then
			echo "$p"
		fi
	done
	[ -n "${node:-}" ] && [ -d "$freezer/slurm_$node" ] || return 0
	for cg in $(find "$freezer/slurm_$node" -name cgroup.procs 2>/dev/null); do
		cat "$cg" 2>/dev/null
	done
}

# Sends signal $1 to the daemon whose pidfile is DIR/run/$2.pid and waits up
# to $3 seconds for it to end, then kills it.
stop_daemon() {
	local sig=$1 name=$2 secs=$3 pid end
	[ -r "$dir/run/$name.pid" ] || return 0
	read -r pid <"$dir/run/$name.pid"
	ours "$pid" || return 0
	kill "-$sig" "$pid" 2>/dev/null
	end=$(deadline "$secs")
	while ours "$pid"; do
		if past "$end"; then
			echo "harness: $name (pid $pid) did not stop in $secs s: killed" >&2
			kill -KILL "$pid" 2>/dev/null
			sleep 0.2
			return 1
		fi
		sleep 0.1
	done
	return 0
}

# The variables a caller needs, NAME=value, one a line.
harness_env() {
	cat <<-EOF
	SLURM_CONF=$dir/slurm.conf
	HERD_SLURM_DIR=$dir
	HERD_SLURM_NODE=$node
	HERD_SLURM_PARTITION=herd
	HERD_SLURM_CPUS=2
	HERD_SLURM_PROCTRACK=$proctrack
	EOF
}

# Two consecutive free TCP ports (slurmctld's and slurmd's), at random in
# 20000..59999: no socket bound there now (/proc/net/tcp{,6}: the local
# port is the hex after the colon of the second field).
pick_ports() {
	local used="" p i sl addr rest
	for i in /proc/net/tcp /proc/net/tcp6; do
		[ -r "$i" ] || continue
		while read -r sl addr rest; do
			case $addr in *:*) used="$used $((16#${addr##*:}))" ;; esac
		done <"$i"
	done
	used=$(printf '%s\n' $used)
	for i in 1 2 3 4 5 6 7 8 9 10; do
		p=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000))
		if ! printf '%s\n' "$used" | grep -qxE "$p|$((p + 1))"; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# proctrack/cgroup where Slurm's cgroup v1 freezer hierarchy is mounted and
# writable (Slurm 22.05's cgroup/v1 plugin; the machine's cgroup v2 is not
# used by it), else proctrack/linuxproc. Sets proctrack and why.
pick_proctrack() {
	proctrack=linuxproc
	if [ "${HERD_SLURM_PROCTRACK:-}" = linuxproc ]; then
		why="HERD_SLURM_PROCTRACK=linuxproc"
	elif ! grep -qE "^[^ ]+ $freezer cgroup .*freezer" /proc/mounts; then
		why="no cgroup v1 freezer mounted at $freezer (Slurm 22.05 needs it for proctrack/cgroup here)"
	elif ! mkdir "$freezer/slurm_$node" 2>/dev/null; then
		why="$freezer is not writable"
	else
		rmdir "$freezer/slurm_$node"
		proctrack=cgroup
		why=""
	fi
}

write_config() {
	local host
	host=$(hostname -s 2>/dev/null || hostname)
	mkdir -p "$dir/run" "$dir/log" "$dir/state" "$dir/spool" || return 1
	# munged wants every directory above its socket searchable by all, and
	# its key readable by its owner only.
	chmod 755 "$dir" "$dir/run"
	mungekey -c -b 1024 -k "$dir/munge.key" 2>"$dir/log/mungekey.log" || return 1
	: >"$dir/plugstack.conf"
	cat >"$dir/slurm.conf" <<-EOF
	# Written by test/slurm/harness.sh: one node, no accounting.
	ClusterName=herd$ctld_port
	SlurmctldHost=$host(127.0.0.1)
	SlurmUser=root
	SlurmdUser=root
	SlurmctldPort=$ctld_port
	SlurmdPort=$((ctld_port + 1))
	AuthType=auth/munge
	CredType=cred/munge
	AuthInfo=socket=$dir/run/munge.socket
	StateSaveLocation=$dir/state
	SlurmdSpoolDir=$dir/spool
	SlurmctldPidFile=$dir/run/slurmctld.pid
	SlurmdPidFile=$dir/run/slurmd.pid
	SlurmctldLogFile=$dir/log/slurmctld.log
	SlurmdLogFile=$dir/log/slurmd.log
	PlugStackConfig=$dir/plugstack.conf
	MailProg=/bin/true
	ProctrackType=proctrack/$proctrack
	TaskPlugin=task/affinity
	SelectType=select/cons_tres
	SelectTypeParameters=CR_CPU
	AccountingStorageType=accounting_storage/none
	JobAcctGatherType=jobacct_gather/none
	JobCompType=jobcomp/none
	MpiDefault=none
	ReturnToService=2
	KillWait=2
	SchedulerParameters=batch_sched_delay=0,sched_interval=1
	FirstJobId=$((ctld_port * 1000))
	${HERD_SLURM_MAX_ARRAY:+MaxArraySize=$HERD_SLURM_MAX_ARRAY}
	NodeName=$node NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
	PartitionName=herd Nodes=$node Default=YES MaxTime=INFINITE State=UP
	EOF
	cat >"$dir/cgroup.conf" <<-EOF
	CgroupPlugin=cgroup/v1
	CgroupAutomount=no
	EOF
	harness_env >"$dir/harness.env"
}

# Starts daemon $1 (its pidfile DIR/run/$1.pid) as the command $2...
launch() {
	local name=$1
	shift
	HERD_SLURM_HARNESS=$dir "$@" </dev/null >"$dir/log/$name.out" 2>&1 &
	echo $! >"$dir/run/$name.pid"
}

# The last error of daemons $1...: "file: line", from their logs (the MPI
# plugins' complaints about a missing PMIx library do not count).
last_error() {
	local f n e line=""
	for n; do
		for f in "$dir/log/$n.out" "$dir/log/$n.log"; do
			[ -s "$f" ] || continue
			e=$(grep -iE 'error|fatal' "$f" | grep -viE 'pmix|mpi' | tail -n 1)
			[ -z "$e" ] || line="${f##*/}: $e"
		done
	done
	echo "$line"
}

# Fails the start: one line saying why (with the last error of daemons
# $2..., if any), cleans up, exits 77.
fail_start() {
	local why=$1 err
	shift
	err=$(last_error "$@")
	echo "harness: skip: $why${err:+ ($err)}" >&2
	do_stop >/dev/null 2>&1
	exit 77
}

# Fails the start if daemon $1 is gone. Not ours(): a daemon just forked
# may not have exec'd yet, and its environment lacks the mark until then;
# it is still this shell's child, so its pid is its own.
check_alive() {
	local pid
	read -r pid <"$dir/run/$1.pid"
	alive "$pid" || fail_start "$1 exited" "$1"
}

do_start() {
	local m end st
	[ "$(id -u)" = 0 ] || skip "not root (slurmd and munged run as root here)"
	for m in munged mungekey slurmctld slurmd sinfo squeue scancel srun sbatch salloc scontrol; do
		command -v "$m" >/dev/null || skip "no $m (apt-get install slurm-wlm munge)"
	done
	[ "$(nproc)" -ge 2 ] || skip "needs 2 CPUs, has $(nproc)"
	mkdir -p "$dir" || usage
	dir=$(cd "$dir" && pwd -P) || usage
	case $dir in *[!A-Za-z0-9_./-]*) echo "harness: $dir: unusual characters" >&2; exit 2 ;; esac
	[ -z "$(ls -A "$dir")" ] || { echo "harness: $dir is not empty" >&2; exit 2; }
	ctld_port=$(pick_ports) || skip "no free ports"
	node=herd$ctld_port
	pick_proctrack
	[ -z "$why" ] || echo "harness: proctrack/linuxproc: $why" >&2
	write_config || fail_start "cannot write the configuration in $dir"

	launch munged munged -F --socket="$dir/run/munge.socket" --key-file="$dir/munge.key" \
		--pid-file="$dir/run/munged.pid.own" --seed-file="$dir/state/munged.seed"
	end=$(deadline 10)
	until [ -S "$dir/run/munge.socket" ]; do
		check_alive munged
		past "$end" && fail_start "munged made no socket in 10 s" munged
		sleep 0.1
	done
	launch slurmctld slurmctld -D -f "$dir/slurm.conf"
	launch slurmd slurmd -D -N "$node" -f "$dir/slurm.conf"
	export SLURM_CONF=$dir/slurm.conf
	end=$(deadline "$start_timeout")
	while :; do
		check_alive slurmctld
		check_alive slurmd
		st=$(sinfo -h -n "$node" -o %t 2>/dev/null)
		[ "$st" = idle ] && break
		past "$end" && fail_start "node $node not idle in $start_timeout s (state '${st:-none}')" slurmctld slurmd
		sleep 0.2
	done
	harness_env
}

# Stops everything; 1 if something had to be killed or could not be.
do_stop() {
	local rc=0 p end left
	if [ -r "$dir/harness.env" ]; then
		node=$(sed -n 's/^HERD_SLURM_NODE=//p' "$dir/harness.env")
	fi
	export SLURM_CONF=$dir/slurm.conf
	if [ -r "$dir/run/slurmctld.pid" ] && ours "$(cat "$dir/run/slurmctld.pid")"; then
		scancel --quiet --partition=herd 2>/dev/null
		end=$(deadline 20)
		while [ -n "$(squeue -h -o %i 2>/dev/null)" ]; do
			if past "$end"; then
				echo "harness: jobs still in the queue after 20 s" >&2
				rc=1
				break
			fi
			sleep 0.2
		done
	fi
	stop_daemon TERM slurmd 10 || rc=1
	stop_daemon TERM slurmctld 10 || rc=1
	# What outlived its job or slurmd: thaw the cgroups (a frozen process
	# does not die), then kill it.
	left=$(strays | sort -u)
	if [ -n "$left" ]; then
		echo "harness: left running, killed:" $left >&2
		rc=1
		find "$freezer/slurm_$node" -name freezer.state -exec sh -c 'echo THAWED >"$1"' _ {} \; 2>/dev/null
		kill -KILL $left 2>/dev/null
		end=$(deadline 5)
		while [ -n "$(strays)" ] && ! past "$end"; do sleep 0.1; done
	fi
	stop_daemon TERM munged 10 || rc=1
	# Slurm leaves its (empty) cgroup directories behind.
	if [ -n "${node:-}" ]; then
		for p in /sys/fs/cgroup/*/slurm_"$node" /sys/fs/cgroup/slurm_"$node"; do
			[ -d "$p" ] && find "$p" -depth -type d -exec rmdir {} + 2>/dev/null
			[ -d "$p" ] && { echo "harness: cannot remove $p" >&2; rc=1; }
		done
	fi
	left=$(strays)
	for p in munged slurmctld slurmd; do
		[ -r "$dir/run/$p.pid" ] && ours "$(cat "$dir/run/$p.pid")" && left="$left $p"
	done
	if [ -n "${left// /}" ]; then
		echo "harness: still running after stop:" $left >&2
		rc=1
	fi
	# DIR goes only if it is ours: it holds our files, or nothing.
	if [ -r "$dir/harness.env" ] || [ -z "$(ls -A "$dir" 2>/dev/null)" ]; then
		rm -rf "$dir"
	fi
	return $rc
}

[ -n "$dir" ] || usage
case $cmd in
start) do_start ;;
env)
	dir=$(cd "$dir" && pwd -P) || exit 2
	cat "$dir/harness.env"
	;;
stop)
	[ -d "$dir" ] || exit 0
	dir=$(cd "$dir" && pwd -P) || exit 2
	do_stop
	;;
*) usage ;;
esac
