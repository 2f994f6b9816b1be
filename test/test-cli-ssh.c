/*
 * test-cli-ssh.c - the herd command on ssh hosts (-S, --slf, --ssh), with
 * no network: each case starts its own sshd (-D -f CONFIG) on 127.0.0.1,
 * on two free ports, with a throw-away host key and user key in a
 * temporary directory, and writes an ssh config with three Host aliases:
 * herd-a (port 1: herd's directory is on its PATH, so jobs run under
 * `herd --guard`), herd-b (port 2: no herd there, so jobs run under the
 * perl fallback) and herd-c (a closed port: unreachable). herd runs with
 * --ssh 'ssh -F CONFIG'.
 *
 * Outputs, exit statuses and the joblog are checked against a local run;
 * every byte 1-255 of an item reaches the remote command; Ctrl-C and a
 * killed connection leave no process of any job. Remote jobs do not
 * inherit the test's mark (sshd gives them a fresh environment), so they
 * are found by a marker in their arguments (a `sleep 300.NNNNNNN` unique to
 * the test). sshd itself dies with the test (its parent-death signal) and
 * is stopped, and its directory removed, at the end.
 *
 * Where sshd cannot run (not root, openssh-server not installed, no
 * privilege separation directory), the cases skip and say why.
 */
#define _GNU_SOURCE
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

static void sshd_stop(void)
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
static int free_port(void)
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

static bool port_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");
	CHECK(f != NULL);
	CHECK(fputs(text, f) >= 0);
	CHECK(fclose(f) == 0);
}

static void quiet(const char *cmd)
{
	char full[600];
	snprintf(full, sizeof full, "%s >/dev/null 2>&1", cmd);
	CHECK(system(full) == 0);
}

/* Starts sshd for herd-a and herd-b (and names herd-c, unreachable), or
 * skips the case. */
static void sshd_start(void)
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
static struct cli_opts *in_dir(void)
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
static int count_marked_args(void)
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
static int count_sleeps_of(const char *arg)
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

static int count_marked_sleeps(void)
{
	return count_sleeps_of(marker);
}

/* Waits (up to 20 s) until no process holds the marker: true, or false
 * after listing them. */
static bool marked_gone(void)
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
static char *joblog_digest(const char *path)
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
static bool no_ssh_dir(void)
{
	char cmd[160];
	snprintf(cmd, sizeof cmd, "ls -d %s/herd-ssh-* >/dev/null 2>&1", dir);
	return system(cmd) != 0;
}

/* The same command line, here and on two hosts: the same output (in
 * order, -k), stderr, exit status and joblog, but for the Host column. */
TEST(same_as_local)
{
	herd_only();
	sshd_start();
	char jl_local[96], jl_remote[96];
	cli_temp_name(jl_local);
	cli_temp_name(jl_remote);
	const char *cmd = "echo out {} $PARALLEL_SEQ; echo err {} >&2; exit {}";
	struct cli_out lo, re;
	char jl1[120], jl2[120];
	snprintf(jl1, sizeof jl1, "--joblog=%s", jl_local);
	snprintf(jl2, sizeof jl2, "--joblog=%s", jl_remote);
	RUN(&lo, NULL, "-k", jl1, cmd, ":::", "0", "1", "2", "0", "3");
	cli_run_opts(NULL, 0, (const char *const[]){"herd", "--ssh", ssh_opt, "-S",
		     "1/herd-a,1/herd-b", "-k", jl2, cmd, ":::", "0", "1", "2", "0", "3", NULL},
		     in_dir(), &re);
	CHECK_OUT(&lo, "out 0 1\nout 1 2\nout 2 3\nout 0 4\nout 3 5\n", 3);
	CHECK_OUT_LEN(&re, lo.out, lo.out_len, 3);
	/* stderr: the jobs' lines, and herd-b's one line about its fallback. */
	CHECK_RUN(&re, strstr(re.err, "err 0\nerr 1\nerr 2\nerr 0\nerr 3\n") != NULL);
	CHECK_RUN(&re, strstr(re.err, "herd-b: herd is not installed there") != NULL);
	CHECK_RUN(&re, !strstr(re.err, "herd-a:"));
	char *dl = joblog_digest(jl_local), *dr = joblog_digest(jl_remote);
	CHECK_TEXT(dl, strcmp(dl, "1\t:\t0\t0\techo out 0 $PARALLEL_SEQ; echo err 0 >&2; exit 0\n"
			      "2\t:\t1\t0\techo out 1 $PARALLEL_SEQ; echo err 1 >&2; exit 1\n"
			      "3\t:\t2\t0\techo out 2 $PARALLEL_SEQ; echo err 2 >&2; exit 2\n"
			      "4\t:\t0\t0\techo out 0 $PARALLEL_SEQ; echo err 0 >&2; exit 0\n"
			      "5\t:\t3\t0\techo out 3 $PARALLEL_SEQ; echo err 3 >&2; exit 3\n") == 0);
	/* Each host line as the local one, ":" being herd-a or herd-b. */
	for (char *l = dl, *r = dr; *l; l = strchr(l, '\n') + 1, r = strchr(r, '\n') + 1) {
		CHECK_TEXT(dr, !strncmp(r, "1\t", 2) || strncmp(r, l, 2) == 0);
		const char *host = strchr(r, '\t') + 1;
		CHECK_TEXT(dr, !strncmp(host, "herd-a\t", 7) || !strncmp(host, "herd-b\t", 7));
		size_t rest = strcspn(strchr(host, '\t'), "\n");
		CHECK_TEXT(dr, strncmp(strchr(host, '\t'), strchr(strchr(l, '\t') + 1, '\t'), rest) == 0);
	}
	CHECK_TEXT(dr, strstr(dr, "\therd-a\t") && strstr(dr, "\therd-b\t"));
	free(dl);
	free(dr);
	CHECK(no_ssh_dir());
	cli_free(&lo);
	cli_free(&re);
	cli_done(0);
}

/* Every byte 1-255 of an item reaches the remote command intact, through
 * a command run directly (its words) and one run by the shell. The items
 * come from stdin, NUL-separated (-0): a ::: item is cut at newlines, as
 * GNU parallel cuts it. */
TEST(quoting_every_byte)
{
	herd_only();
	sshd_start();
	char in[300], want[300];
	size_t n = 0;
	for (int c = 1; c < 256; c++) {
		in[n++] = (char)c;
		if (c % 85 == 0)
			in[n++] = 0; /* three items */
	}
	for (int c = 1; c < 256; c++)
		want[c - 1] = (char)c;
	const char *forms[] = {"printf %s {}", "printf '%s' {} | cat"};
	const char *hosts[] = {"herd-a", "herd-b", ":"};
	for (size_t f = 0; f < 2; f++)
		for (size_t h = 0; h < 3; h++) {
			struct cli_out o;
			cli_run_opts(in, n, (const char *const[]){"herd", "--ssh", ssh_opt, "-S",
				     hosts[h], "-0", "-k", forms[f], NULL}, in_dir(), &o);
			if (o.out_len != 255 || memcmp(o.out, want, 255) != 0)
				fprintf(stderr, "form '%s' on %s\n", forms[f], hosts[h]);
			CHECK_OUT_LEN(&o, want, 255, 0);
			cli_free(&o);
		}
	cli_done(0);
}

/* Starts herd with sleeps on `hosts` (n jobs), and waits until all run. */
static void start_sleeps(struct cli_proc *p, struct cli_out *o, const char *jl,
			 const char *hosts, int n)
{
	static char sleep_cmd[64], jlopt[120];
	snprintf(sleep_cmd, sizeof sleep_cmd, "sleep %s; echo {}", marker);
	snprintf(jlopt, sizeof jlopt, "--joblog=%s", jl);
	const char *argv[16] = {"herd", "--ssh", ssh_opt, "-S", hosts, jlopt, sleep_cmd, ":::"};
	static const char *const items[] = {"1", "2", "3", "4", "5", "6"};
	for (int i = 0; i < n; i++)
		argv[8 + i] = items[i];
	cli_start(p, NULL, 0, argv, in_dir(), o);
	int64_t give_up = cli_now() + 30 * HERD_SEC;
	while (count_marked_sleeps() < n) {
		if (cli_now() > give_up) {
			fprintf(stderr, "%d sleeps run\n", count_marked_sleeps());
			cli_watchdog(p);
		}
		cli_pump(p, 20);
	}
}

/* Ctrl-C: herd ends the local job and the ssh clients, and the remote
 * trees end with them (under herd --guard on herd-a, the perl fallback on
 * herd-b): nothing of any job is left. */
TEST(sigint_leaves_nothing)
{
	herd_only();
	sshd_start();
	char jl[96];
	cli_temp_name(jl);
	struct cli_proc p;
	struct cli_out o;
	start_sleeps(&p, &o, jl, "2/herd-a,2/herd-b,1/:", 5);
	CHECK(kill(p.pid, SIGINT) == 0);
	cli_finish(&p);
	CHECK_RUN(&o, cli_exited(&o, 255));
	CHECK_RUN(&o, o.out_len == 0);
	CHECK(marked_gone());
	CHECK(no_ssh_dir());
	cli_free(&o);
	cli_done(0);
}

/* The ssh connections are killed (every ssh process herd started gets
 * SIGKILL, as a network cut would end them): the jobs fail, and nothing
 * of them is left on the hosts. */
TEST(connection_killed_leaves_nothing)
{
	herd_only();
	sshd_start();
	char jl[96];
	cli_temp_name(jl);
	struct cli_proc p;
	struct cli_out o;
	start_sleeps(&p, &o, jl, "2/herd-a,2/herd-b", 4);
	DIR *d = opendir("/proc");
	CHECK(d != NULL);
	int killed = 0;
	for (struct dirent *e; (e = readdir(d));) {
		struct pinfo pi;
		int pid = atoi(e->d_name);
		if (pid > 0 && read_stat(pid, &pi) && pi.ppid == p.pid && !strcmp(pi.comm, "ssh"))
			killed += kill(pid, SIGKILL) == 0;
	}
	closedir(d);
	CHECK(killed >= 4); /* four jobs' clients, and two masters */
	cli_finish(&p);
	CHECK(marked_gone());
	/* The four jobs failed. */
	CHECK_RUN(&o, o.out_len == 0 && cli_exited(&o, 4));
	char *dg = joblog_digest(jl);
	CHECK_TEXT(dg, strstr(dg, "\therd-a\t") && strstr(dg, "\therd-b\t"));
	free(dg);
	CHECK(no_ssh_dir());
	cli_free(&o);
	cli_done(0);
}

/* --slf: a host added to the file while herd runs gets jobs; one taken
 * out gets no new job. Job 1 holds herd-a's one slot until the test lets
 * it go; meanwhile the file names herd-b instead, which runs jobs 2 and 3. */
TEST(slf_reread)
{
	herd_only();
	sshd_start();
	char slf[96], base[96], flag[96], cmd[400], slfopt[120];
	cli_temp(slf, "1/herd-a\n");
	cli_temp_name(base);
	cli_flag(flag, base, "go");
	snprintf(cmd, sizeof cmd, "if [ {} = 1 ]; then i=0; while [ ! -e %s ] && [ $i -lt 2000 ]; "
		 "do sleep 0.01; i=$((i+1)); done; fi; echo {} $PARALLEL_SSHHOST", flag);
	snprintf(slfopt, sizeof slfopt, "--slf=%s", slf);
	struct cli_proc p;
	struct cli_out o;
	cli_start(&p, NULL, 0, (const char *const[]){"herd", "--ssh", ssh_opt, slfopt, cmd, ":::",
		  "1", "2", "3", NULL}, in_dir(), &o);
	/* Job 1 runs (its loop's sleeps show), alone. */
	int64_t give_up = cli_now() + 30 * HERD_SEC;
	while (count_sleeps_of("0.01") == 0) {
		CHECK(cli_now() < give_up);
		cli_pump(&p, 10);
	}
	char text[64];
	snprintf(text, sizeof text, "# herd-a went away\n1/herd-b\n");
	write_file(slf, text);
	while (!strstr(o.out, "3 herd-b"))
		CHECK(!cli_pump(&p, 50));
	int fd = open(flag, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	close(fd);
	cli_finish(&p);
	char *sorted = cli_sorted_lines(o.out);
	CHECK_TEXT(o.out, strcmp(sorted, "1 herd-a\n2 herd-b\n3 herd-b\n") == 0);
	CHECK_RUN(&o, cli_exited(&o, 0));
	free(sorted);
	CHECK(no_ssh_dir());
	cli_free(&o);
	cli_done(0);
}

/* A host that cannot be reached is said so and left out; the jobs run
 * on the others. */
TEST(unreachable_host_left_out)
{
	herd_only();
	sshd_start();
	struct cli_out o;
	cli_run_opts(NULL, 0, (const char *const[]){"herd", "--ssh", ssh_opt, "-S",
		     "herd-c,1/herd-a", "-k", "echo {} $PARALLEL_SSHHOST", ":::", "1", "2", NULL},
		     in_dir(), &o);
	CHECK_OUT(&o, "1 herd-a\n2 herd-a\n", 0);
	CHECK_RUN(&o, strstr(o.err, "herd-c: cannot run commands there") != NULL);
	cli_free(&o);
	/* No host at all: an error of herd's own. */
	cli_run_opts(NULL, 0, (const char *const[]){"herd", "--ssh", ssh_opt, "-S", "herd-c",
		     "echo", ":::", "1", NULL}, in_dir(), &o);
	CHECK_RUN(&o, cli_exited(&o, 255) && strstr(o.err, "no host can run the jobs"));
	CHECK(no_ssh_dir());
	cli_free(&o);
	cli_done(0);
}

/* herd --guard, here (no ssh): the command's tree ends when its stdout's
 * reader goes away, and herd exits with 255; otherwise herd exits with
 * the command's status. */
TEST(guard_ends_tree_when_reader_goes)
{
	herd_only();
	cli_setup();
	snprintf(marker, sizeof marker, "300.%07d", (int)getpid() % 10000000);
	struct cli_out o;
	RUN(&o, NULL, "--guard", "--", "sh", "-c", "echo hi; exit 7");
	CHECK_OUT(&o, "hi\n", 7);
	cli_free(&o);
	RUN(&o, NULL, "--guard", "sh", "-c", "kill -TERM $$");
	CHECK_OUT(&o, "", 128 + SIGTERM);
	cli_free(&o);
	char script[128];
	snprintf(script, sizeof script, "(sleep %s &); sleep %s; echo late", marker, marker);
	struct cli_proc p;
	cli_start(&p, NULL, 0, (const char *const[]){"herd", "--guard", "--", "sh", "-c", script,
		  NULL}, NULL, &o);
	int64_t give_up = cli_now() + 20 * HERD_SEC;
	while (count_marked_sleeps() < 2) {
		CHECK(cli_now() < give_up);
		cli_pump(&p, 10);
	}
	close(p.out_fd);
	p.out_fd = -1;
	cli_finish(&p);
	CHECK_RUN(&o, cli_exited(&o, 255));
	CHECK(marked_gone());
	cli_free(&o);
	cli_done(0);
}

/* --transferfile, --return, --cleanup (--trc), --basefile and --wd: the
 * files go to the host, the results come back, and nothing of them is left
 * there; with --wd ... each job has a directory of its own, removed. */
TEST(transfer_return_cleanup)
{
	herd_only();
	sshd_start();
	char work[160], path[200], remote[160], wdopt[200];
	snprintf(work, sizeof work, "%s/work", dir);
	CHECK(mkdir(work, 0755) == 0);
	snprintf(remote, sizeof remote, "%s/remote", dir);
	for (int i = 1; i <= 3; i++) {
		snprintf(path, sizeof path, "%s/in%d.txt", work, i);
		write_file(path, i == 1 ? "one\n" : i == 2 ? "two\n" : "three\n");
	}
	snprintf(path, sizeof path, "%s/base.cfg", work);
	write_file(path, "base\n");
	char old_cwd[4096];
	CHECK(getcwd(old_cwd, sizeof old_cwd) != NULL);
	CHECK(chdir(work) == 0); /* herd runs here: the files' paths are relative */
	/* A fixed directory there: the basefile is there too. */
	snprintf(wdopt, sizeof wdopt, "--wd=%s", remote);
	struct cli_out o;
	cli_run_opts(NULL, 0, (const char *const[]){"herd", "--ssh", ssh_opt, "-S",
		     "1/herd-a,1/herd-b", "-k", wdopt, "--basefile", "base.cfg", "--trc", "{}.up",
		     "tr a-z A-Z < {} > {}.up; cat base.cfg; pwd", ":::", "in1.txt", "in2.txt",
		     "in3.txt", NULL}, in_dir(), &o);
	char want[600];
	snprintf(want, sizeof want, "base\n%s\nbase\n%s\nbase\n%s\n", remote, remote, remote);
	CHECK_OUT(&o, want, 0);
	cli_free(&o);
	const char *ups[] = {"ONE\n", "TWO\n", "THREE\n"};
	for (int i = 1; i <= 3; i++) {
		snprintf(path, sizeof path, "%s/in%d.txt.up", work, i);
		char *text = cli_slurp(path);
		CHECK(text != NULL && strcmp(text, ups[i - 1]) == 0);
		free(text);
		CHECK(unlink(path) == 0);
	}
	/* --cleanup: the directory there is empty (it stays, as --wd named it). */
	DIR *d = opendir(remote);
	CHECK(d != NULL);
	int entries = 0;
	for (struct dirent *e; (e = readdir(d));)
		entries += e->d_name[0] != '.';
	closedir(d);
	CHECK_EQ(entries, 0);
	/* --wd ...: a directory per job under .herd/tmp there, removed. */
	struct cli_proc p;
	cli_start(&p, NULL, 0, (const char *const[]){"herd", "--ssh", ssh_opt, "-S", "herd-a",
		  "-k", "--wd", "...", "--trc", "{}.up", "tr a-z A-Z < {} > {}.up; pwd", ":::",
		  "in1.txt", "in2.txt", NULL}, in_dir(), &o);
	cli_finish(&p);
	CHECK_RUN(&o, cli_exited(&o, 0) && strstr(o.out, "/.herd/tmp/") != NULL);
	char pattern[64];
	snprintf(pattern, sizeof pattern, "-%d-1\n", (int)p.pid);
	CHECK_RUN(&o, strstr(o.out, pattern) != NULL);
	char *line = strndup(o.out, strcspn(o.out, "\n"));
	struct stat st;
	CHECK_TEXT(line, stat(line, &st) != 0); /* removed */
	free(line);
	cli_free(&o);
	for (int i = 1; i <= 2; i++) {
		snprintf(path, sizeof path, "%s/in%d.txt.up", work, i);
		CHECK(access(path, F_OK) == 0);
	}
	/* rsync missing here: a clear error before any job. */
	char ssh_abs[200];
	snprintf(ssh_abs, sizeof ssh_abs, "/usr/bin/%s", ssh_opt);
	cli_run_opts(NULL, 0, (const char *const[]){"herd", "--ssh", ssh_abs, "-S", "herd-a",
		     "--transfer", "cat", ":::", "in1.txt", NULL},
		     &(struct cli_opts){.env = (const char *const[]){"PATH=/nonexistent", NULL}}, &o);
	CHECK_RUN(&o, cli_exited(&o, 255) && strstr(o.err, "need rsync, which is not installed"));
	cli_free(&o);
	CHECK(chdir(old_cwd) == 0);
	/* .herd/tmp in root's home, if this made it and it is empty. */
	if (rmdir("/root/.herd/tmp") == 0)
		rmdir("/root/.herd");
	cli_done(0);
}

/* --timeout on the hosts: the jobs are ended there (nothing left), and the
 * joblog says so as for a local job ended by its timeout (-1, SIGTERM),
 * not ssh's 255. */
TEST(timeout_as_local)
{
	herd_only();
	sshd_start();
	char jl[96], jlopt[120], cmd[64];
	cli_temp_name(jl);
	snprintf(jlopt, sizeof jlopt, "--joblog=%s", jl);
	snprintf(cmd, sizeof cmd, "sleep %s", marker);
	struct cli_out o;
	cli_run_opts(NULL, 0, (const char *const[]){"herd", "--ssh", ssh_opt, "-S",
		     "1/herd-a,1/herd-b,1/:", "--timeout", "2", jlopt, cmd, ":::", "1", "2", "3",
		     NULL}, in_dir(), &o);
	CHECK_RUN(&o, cli_exited(&o, 3) && o.out_len == 0);
	CHECK(marked_gone());
	char *dg = joblog_digest(jl);
	CHECK_TEXT(dg, strstr(dg, "\therd-a\t-1\t15\t") && strstr(dg, "\therd-b\t-1\t15\t") &&
		       strstr(dg, "\t:\t-1\t15\t"));
	free(dg);
	cli_free(&o);
	cli_done(0);
}
