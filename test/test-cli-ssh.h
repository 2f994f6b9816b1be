/*
 * test-cli-ssh.h - what the tests of herd on ssh hosts share
 * (test-cli-ssh.c, test-cli-ssh-files.c): each case starts its own sshd
 * (-D -f CONFIG) on 127.0.0.1, on two free ports, with a throw-away host
 * key and user key in a temporary directory, and writes an ssh config with
 * three Host aliases: herd-a (port 1: herd's directory is on its PATH, so
 * jobs run under `herd --guard`), herd-b (port 2: no herd there, so jobs
 * run under the perl fallback) and herd-c (a closed port: unreachable).
 * herd runs with --ssh 'ssh -F CONFIG'.
 *
 * Remote jobs do not inherit the test's mark (sshd gives them a fresh
 * environment), so they are found by a marker in their arguments (a
 * `sleep 300.NNNNNNN` unique to the test). sshd itself dies with the test
 * (its parent-death signal) and is stopped, and its directory removed, at
 * the end.
 *
 * Where sshd cannot run (not root, openssh-server not installed, no
 * privilege separation directory, an emulator), the cases skip and say
 * why.
 */
#ifndef HERD_TEST_CLI_SSH_H
#define HERD_TEST_CLI_SSH_H

#include "cli.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#define SSHD "/usr/sbin/sshd"

static char dir[96];          /* the sshd's temporary directory */
static char ssh_opt[160];     /* --ssh's value: ssh -F DIR/ssh_config */
static pid_t sshd_pid;
static char marker[32];       /* 300.NNNNNNN: a sleep's argument */

static inline void sshd_stop(void)
{
	if (sshd_pid > 0) {
		kill(sshd_pid, SIGTERM);
		waitpid(sshd_pid, NULL, 0);
		sshd_pid = 0;
	}
	if (dir[0]) {
		char cmd[160];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
		dir[0] = 0;
	}
}

/* A free port on 127.0.0.1 (free when asked: sshd binds it next). */
static inline int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
	close(fd);
	return ntohs(a.sin_port);
}

static inline bool port_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

static inline void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");
	CHECK(f != NULL);
	CHECK(fputs(text, f) >= 0);
	CHECK(fclose(f) == 0);
}

static inline void quiet(const char *cmd)
{
	char full[600];
	snprintf(full, sizeof full, "%s >/dev/null 2>&1", cmd);
	CHECK(system(full) == 0);
}

/* Starts sshd for herd-a and herd-b (and names herd-c, unreachable), or
 * skips the case. */
static inline void sshd_start(void)
{
	cli_setup();
	snprintf(marker, sizeof marker, "300.%07d", (int)getpid() % 10000000);
	if (test_emulator())
		TEST_SKIP("under an emulator: the hosts could not run this build's herd --guard");
	if (geteuid() != 0)
		TEST_SKIP("sshd needs root here (its privilege separation)");
	if (access(SSHD, X_OK) != 0 || system("command -v ssh-keygen >/dev/null 2>&1") != 0 ||
	    system("command -v ssh >/dev/null 2>&1") != 0)
		TEST_SKIP("openssh-server or openssh-client is not installed "
			  "(apt-get install openssh-server)");
	if (mkdir("/run/sshd", 0755) != 0 && errno != EEXIST)
		TEST_SKIP("no privilege separation directory /run/sshd, and it cannot be made");
	snprintf(dir, sizeof dir, "/tmp/herd-test-%d-sshd-XXXXXX", (int)getpid());
	CHECK(mkdtemp(dir) != NULL);
	atexit(sshd_stop);
	char cmd[512], path[160], text[2048], herd_dir[256];
	snprintf(cmd, sizeof cmd, "ssh-keygen -q -t ed25519 -N '' -f %s/host_key && "
		 "ssh-keygen -q -t ed25519 -N '' -f %s/user_key && "
		 "cp %s/user_key.pub %s/authorized_keys", dir, dir, dir, dir);
	quiet(cmd);
	snprintf(herd_dir, sizeof herd_dir, "%s", cli_path());
	*strrchr(herd_dir, '/') = 0;
	int pa = free_port(), pb = free_port(), pc = free_port();
	snprintf(text, sizeof text,
		 "ListenAddress 127.0.0.1:%d\nListenAddress 127.0.0.1:%d\n"
		 "HostKey %s/host_key\nPidFile none\nAuthorizedKeysFile %s/authorized_keys\n"
		 "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
		 "KbdInteractiveAuthentication no\nPermitRootLogin yes\nMaxSessions 20\n"
		 "MaxStartups 100\nLogLevel ERROR\n"
		 "Match LocalPort %d\n  SetEnv PATH=%s:/usr/local/bin:/usr/bin:/bin\n",
		 pa, pb, dir, dir, pa, herd_dir);
	snprintf(path, sizeof path, "%s/sshd_config", dir);
	write_file(path, text);
	snprintf(text, sizeof text,
		 "Host herd-a\n  HostName 127.0.0.1\n  Port %d\n"
		 "Host herd-b\n  HostName 127.0.0.1\n  Port %d\n"
		 "Host herd-c\n  HostName 127.0.0.1\n  Port %d\n"
		 "Host *\n  User root\n  IdentityFile %s/user_key\n  IdentitiesOnly yes\n"
		 "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
		 "  GlobalKnownHostsFile /dev/null\n  BatchMode yes\n  LogLevel ERROR\n",
		 pa, pb, pc, dir);
	snprintf(path, sizeof path, "%s/ssh_config", dir);
	write_file(path, text);
	snprintf(ssh_opt, sizeof ssh_opt, "ssh -F %s/ssh_config", dir);
	char log[160];
	snprintf(log, sizeof log, "%s/sshd.log", dir);
	fflush(NULL);
	sshd_pid = fork();
	CHECK(sshd_pid >= 0);
	if (sshd_pid == 0) {
		/* Not marked: the cases' checks are of the jobs. It dies with
		 * the test. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		unsetenv("HERD_TEST_MARK");
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || dup2(fd, 2) < 0)
			_exit(126);
		snprintf(path, sizeof path, "%s/sshd_config", dir);
		execl(SSHD, SSHD, "-D", "-e", "-f", path, (char *)NULL);
		_exit(127);
	}
	int64_t give_up = cli_now() + 10 * HERD_SEC;
	while (!port_open(pa) || !port_open(pb)) {
		if (waitpid(sshd_pid, NULL, WNOHANG) == sshd_pid || cli_now() > give_up) {
			char *l = cli_slurp(log);
			fprintf(stderr, "sshd's log:\n%s\n", l ? l : "");
			free(l);
			sshd_pid = 0;
			TEST_SKIP("sshd did not start (its log is above)");
		}
		cli_sleep_ms(10);
	}
	snprintf(cmd, sizeof cmd, "%s herd-a true", ssh_opt);
	if (system(cmd) != 0)
		TEST_SKIP("ssh to the test's sshd fails here");
}

/* herd's environment in the cases: TMPDIR in the sshd's directory, so
 * that no_ssh_dir() can see that herd removed its own. */
static inline struct cli_opts *in_dir(void)
{
	static char tmpdir[120];
	static const char *env[2];
	static struct cli_opts opts;
	snprintf(tmpdir, sizeof tmpdir, "TMPDIR=%s", dir);
	env[0] = tmpdir;
	opts.env = env;
	return &opts;
}

/* Live processes whose arguments hold the marker. */
static inline int count_marked_args(void)
{
	DIR *d = opendir("/proc");
	CHECK(d != NULL);
	int n = 0, me = getpid();
	struct dirent *e;
	while ((e = readdir(d))) {
		int pid = atoi(e->d_name);
		struct pinfo pi;
		char path[64], buf[8192];
		if (pid <= 0 || pid == me || !read_stat(pid, &pi) || pi.state == 'Z')
			continue;
		snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t len = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (len <= 0)
			continue;
		for (ssize_t i = 0; i < len; i++)
			buf[i] = buf[i] ? buf[i] : ' ';
		buf[len] = 0;
		n += strstr(buf, marker) != NULL;
	}
	closedir(d);
	return n;
}

/* Live `sleep ARG`s, here or on a "host" (where they have no mark). */
static inline int count_sleeps_of(const char *arg)
{
	DIR *d = opendir("/proc");
	CHECK(d != NULL);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));) {
		struct pinfo pi;
		char path[64], cmdline[256];
		int pid = atoi(e->d_name);
		if (pid <= 0 || !read_stat(pid, &pi) || pi.state == 'Z' || strcmp(pi.comm, "sleep"))
			continue;
		snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
		if (!read_small(path, cmdline, sizeof cmdline))
			continue;
		n += strcmp(cmdline + strlen(cmdline) + 1, arg) == 0;
	}
	closedir(d);
	return n;
}

static inline int count_marked_sleeps(void)
{
	return count_sleeps_of(marker);
}

/* Waits (up to 20 s) until no process holds the marker: true, or false
 * after listing them. */
static inline bool marked_gone(void)
{
	int64_t give_up = cli_now() + 20 * HERD_SEC;
	while (count_marked_args()) {
		if (cli_now() > give_up) {
			char cmd[128];
			snprintf(cmd, sizeof cmd, "ps -eo pid,ppid,pgid,args | grep -F %s | grep -v grep >&2",
				 marker);
			if (system(cmd) < 0)
				fprintf(stderr, "cannot list them\n");
			return false;
		}
		cli_sleep_ms(20);
	}
	return true;
}

/* The joblog's lines after the header, each as "Seq Host Exitval Signal
 * Command" (tabs), sorted. */
static inline char *joblog_digest(const char *path)
{
	char *text = cli_slurp(path);
	CHECK(text != NULL);
	size_t cap = strlen(text) + 1, len = 0;
	char *out = malloc(cap);
	CHECK(out != NULL);
	out[0] = 0;
	char *save = NULL;
	bool header = true;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (header) {
			header = false;
			continue;
		}
		char *f[9];
		char *p = l;
		for (int k = 0; k < 9; k++) {
			f[k] = p;
			char *tab = k < 8 ? strchr(p, '\t') : NULL;
			CHECK(k == 8 || tab);
			if (tab) {
				*tab = 0;
				p = tab + 1;
			}
		}
		len += (size_t)snprintf(out + len, cap - len, "%s\t%s\t%s\t%s\t%s\n", f[0], f[1],
					f[6], f[7], f[8]);
	}
	free(text);
	char *sorted = cli_sorted_lines(out);
	free(out);
	return sorted;
}

/* Whether the herd run's ssh directory (TMPDIR=dir) is gone. */
static inline bool no_ssh_dir(void)
{
	char cmd[160];
	snprintf(cmd, sizeof cmd, "ls -d %s/herd-ssh-* >/dev/null 2>&1", dir);
	return system(cmd) != 0;
}

#endif
