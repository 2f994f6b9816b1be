# remote-lib.sh - an sshd standing for two hosts, for shell tests of the
# herd command on ssh hosts (sourced, after `set -u`, by
# test/test-cli-remote.sh). It is test-cli-ssh.h's sshd, in shell:
#
#   sshd_start HERD   starts sshd -D on 127.0.0.1 on two free ports, with a
#                     throw-away host key and user key in ssh_dir
#                     (/tmp/herd-test-PID-sshd-XXXXXX), and writes
#                     ssh_dir/ssh_config with two Host aliases: herd-a (the
#                     directory of the herd binary HERD is on its PATH, so
#                     jobs run under `herd --guard`) and herd-b (no herd
#                     there: the perl fallback). Sets ssh_opt, --ssh's value
#                     ("ssh -F ssh_dir/ssh_config"). Where sshd cannot run
#                     (not root, openssh-server, ssh-keygen or rsync not
#                     installed, no /run/sshd) it prints one line beginning
#                     "skip:" and exits 77.
#   sshd_stop         stops it (by its pid) and removes ssh_dir.
#
# sshd gets SIGTERM when the test's shell dies (setpriv --pdeathsig), so
# that a test killed by CTest's timeout leaves no daemon. Jobs on the
# "hosts" get sshd's fresh environment: they carry no mark of the test, and
# a test finds them by their arguments.

SSHD=/usr/sbin/sshd
ssh_dir=""
sshd_pid=""

sshd_skip() {
	echo "skip: $*"
	exit 77
}

# A TCP port on 127.0.0.1 that no socket is bound to now (/proc/net/tcp:
# the local port is the hex after the colon of the second field), at random
# in 20000..59999, and not $1.
sshd_free_port() {
	local used="" f sl addr rest p i
	for f in /proc/net/tcp /proc/net/tcp6; do
		[ -r "$f" ] || continue
		while read -r sl addr rest; do
			case $addr in *:*) used="$used $((16#${addr##*:}))" ;; esac
		done <"$f"
	done
	for i in 1 2 3 4 5 6 7 8 9 10; do
		p=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000))
		case " $used ${1:-} " in *" $p "*) continue ;; esac
		echo "$p"
		return 0
	done
	return 1
}

# Whether something listens on 127.0.0.1 port $1.
sshd_port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

sshd_stop() {
	if [ -n "$sshd_pid" ]; then
		kill -TERM "$sshd_pid" 2>/dev/null
		wait "$sshd_pid" 2>/dev/null
		sshd_pid=""
	fi
	if [ -n "$ssh_dir" ]; then
		rm -rf "$ssh_dir"
		ssh_dir=""
	fi
}

# Writes the configurations for ports $1 (herd-a) and $2 (herd-b).
sshd_config() {
	local herd_dir=$1 pa=$2 pb=$3
	cat >"$ssh_dir/sshd_config" <<-EOF
	ListenAddress 127.0.0.1:$pa
	ListenAddress 127.0.0.1:$pb
	HostKey $ssh_dir/host_key
	PidFile none
	AuthorizedKeysFile $ssh_dir/authorized_keys
	StrictModes no
	UsePAM no
	PasswordAuthentication no
	KbdInteractiveAuthentication no
	PermitRootLogin yes
	MaxSessions 20
	MaxStartups 100
	LogLevel ERROR
	Match LocalPort $pa
	  SetEnv PATH=$herd_dir:/usr/local/bin:/usr/bin:/bin
	EOF
	cat >"$ssh_dir/ssh_config" <<-EOF
	Host herd-a
	  HostName 127.0.0.1
	  Port $pa
	Host herd-b
	  HostName 127.0.0.1
	  Port $pb
	Host *
	  User root
	  IdentityFile $ssh_dir/user_key
	  IdentitiesOnly yes
	  StrictHostKeyChecking no
	  UserKnownHostsFile /dev/null
	  GlobalKnownHostsFile /dev/null
	  BatchMode yes
	  LogLevel ERROR
	EOF
}

# Starts sshd on two free ports: 0 once both listen, 1 if it exited (a
# port taken meanwhile) or did not listen within 10 s.
sshd_try() {
	local herd_dir=$1 pa pb n
	pa=$(sshd_free_port) && pb=$(sshd_free_port "$pa") || return 1
	sshd_config "$herd_dir" "$pa" "$pb"
	setpriv --pdeathsig TERM -- "$SSHD" -D -e -f "$ssh_dir/sshd_config" \
		</dev/null >/dev/null 2>"$ssh_dir/sshd.log" &
	sshd_pid=$!
	n=100
	until sshd_port_open "$pa" && sshd_port_open "$pb"; do
		n=$((n - 1))
		if [ $n = 0 ] || ! kill -0 "$sshd_pid" 2>/dev/null; then
			kill -TERM "$sshd_pid" 2>/dev/null
			wait "$sshd_pid" 2>/dev/null
			sshd_pid=""
			return 1
		fi
		sleep 0.1
	done
}

sshd_start() {
	local herd=$1 m i
	[ "$(id -u)" = 0 ] || sshd_skip "sshd needs root here (its privilege separation)"
	[ -x "$SSHD" ] || sshd_skip "no $SSHD (apt-get install openssh-server)"
	for m in ssh ssh-keygen rsync perl setpriv; do
		command -v "$m" >/dev/null || sshd_skip "no $m (apt-get install openssh-client rsync perl util-linux)"
	done
	mkdir -p /run/sshd 2>/dev/null || sshd_skip "no privilege separation directory /run/sshd, and it cannot be made"
	ssh_dir=$(mktemp -d "/tmp/herd-test-$$-sshd-XXXXXX") || exit 1
	ssh-keygen -q -t ed25519 -N '' -f "$ssh_dir/host_key" >/dev/null 2>&1 &&
		ssh-keygen -q -t ed25519 -N '' -f "$ssh_dir/user_key" >/dev/null 2>&1 &&
		cp "$ssh_dir/user_key.pub" "$ssh_dir/authorized_keys" ||
		{ sshd_stop; echo "FAIL: ssh-keygen failed" >&2; exit 1; }
	for i in 1 2 3; do
		sshd_try "$(dirname "$herd")" && break
	done
	if [ -z "$sshd_pid" ]; then
		echo "sshd's log:" >&2
		cat "$ssh_dir/sshd.log" >&2
		sshd_stop
		sshd_skip "sshd did not start (its log is above)"
	fi
	ssh_opt="ssh -F $ssh_dir/ssh_config"
	if ! $ssh_opt herd-a true </dev/null >/dev/null 2>&1; then
		sshd_stop
		sshd_skip "ssh to the test's sshd fails here"
	fi
}
