/*
 * test-cli-ssh.c - the herd command on ssh hosts (-S, --slf, --ssh), with
 * no network: two "hosts" served by an sshd the case starts
 * (test-cli-ssh.h). Outputs, exit statuses and the joblog are checked
 * against a local run; every byte 1-255 of an item reaches the remote
 * command; Ctrl-C, a killed connection and --timeout leave no process of
 * any job; --slf is read again when it changes; an unreachable host is
 * left out; and herd --guard ends its command's tree when its stdout's
 * reader goes away.
 */
#define _GNU_SOURCE
#include "test-cli-ssh.h"

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
	/* All are found before any is killed: a job's client ends by itself
	 * once its master is killed, and herd reaps it at once. */
	DIR *d = opendir("/proc");
	CHECK(d != NULL);
	int found[64], n = 0;
	for (struct dirent *e; (e = readdir(d)) && n < 64;) {
		struct pinfo pi;
		int pid = atoi(e->d_name);
		if (pid > 0 && read_stat(pid, &pi) && pi.ppid == p.pid && !strcmp(pi.comm, "ssh"))
			found[n++] = pid;
	}
	closedir(d);
	CHECK(n >= 4); /* four jobs' clients, and two masters */
	for (int i = 0; i < n; i++)
		CHECK(kill(found[i], SIGKILL) == 0 || errno == ESRCH);
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

/* A herd killed with SIGKILL leaves its control directory; the next herd
 * that uses ssh in the same TMPDIR removes it (its pid is gone), and
 * leaves a live process's alone. */
TEST(stale_control_dir_removed)
{
	herd_only();
	sshd_start();
	/* A pid that is gone: a child's, reaped. */
	pid_t gone = fork();
	CHECK(gone >= 0);
	if (gone == 0)
		_exit(0);
	CHECK(waitpid(gone, NULL, 0) == gone);
	char stale[200], live[200], sock[220];
	snprintf(stale, sizeof stale, "%s/herd-ssh-%d-AbCdEf", dir, (int)gone);
	snprintf(live, sizeof live, "%s/herd-ssh-%d-GhIjKl", dir, (int)getpid());
	CHECK(mkdir(stale, 0700) == 0 && mkdir(live, 0700) == 0);
	snprintf(sock, sizeof sock, "%s/herd-a", stale);
	int fd = open(sock, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	close(fd);
	struct cli_out o;
	cli_run_opts(NULL, 0, (const char *const[]){"herd", "--ssh", ssh_opt, "-S", "1/herd-a",
		     "echo", ":::", "1", NULL}, in_dir(), &o);
	CHECK_OUT(&o, "1\n", 0);
	cli_free(&o);
	struct stat st;
	CHECK(stat(stale, &st) < 0 && errno == ENOENT);
	CHECK(stat(live, &st) == 0);
	CHECK(rmdir(live) == 0);
	CHECK(no_ssh_dir());
	cli_done(0);
}

/* {host} and {sshlogin}: the host a job runs on (the sshlogin's last
 * word; ":" here) and its sshlogin without N/ (the joblog's Host), in the
 * command, in --tagstring and with --dry-run. */
TEST(host_replacement)
{
	herd_only();
	sshd_start();
	char jl[96], jlopt[120], logins[300], own[200];
	cli_temp_name(jl);
	snprintf(jlopt, sizeof jlopt, "--joblog=%s", jl);
	/* herd-a through an ssh command of its own: its sshlogin is that
	 * command and the host, its {host} the host alone. */
	snprintf(own, sizeof own, "%s herd-a", ssh_opt);
	snprintf(logins, sizeof logins, "1/%s,1/herd-b,1/:", own);
	struct cli_out o;
	cli_run_opts(NULL, 0, (const char *const[]){"herd", "--ssh", ssh_opt, "-S", logins, jlopt,
		     "--tagstring", "{host}", "echo {#} = {host} = {sshlogin} = $PARALLEL_SSHHOST", ":::",
		     "1", "2", "3", "4", "5", "6", NULL}, in_dir(), &o);
	CHECK_RUN(&o, cli_exited(&o, 0));
	/* Each line: the tag, then "seq = host = login = PARALLEL_SSHHOST",
	 * the host and login those the joblog gives the job. */
	char *dg = joblog_digest(jl), *save = NULL;
	int n = 0, seen[3] = {0};
	for (char *l = strtok_r(o.out, "\n", &save); l; l = strtok_r(NULL, "\n", &save), n++) {
		char *f[5] = {l};
		int k = 1;
		for (char *p = l; k < 5 && (p = strstr(p, k == 1 ? "\t" : " = ")); k++) {
			*p = 0;
			p += k == 1 ? 1 : 3;
			f[k] = p;
		}
		CHECK_TEXT(l, k == 5 || k == 4);
		const char *tag = f[0], *host = f[2], *login = f[3], *env = k == 5 ? f[4] : "";
		size_t ll = strlen(f[3]);
		if (k == 4 && ll >= 2 && !strcmp(f[3] + ll - 2, " =")) /* no PARALLEL_SSHHOST */
			f[3][ll - 2] = 0;
		CHECK_TEXT(host, !strcmp(tag, host));
		char want[300];
		snprintf(want, sizeof want, "\n%s\t%s\t", f[1], login);
		CHECK_TEXT(dg, strstr(dg, want) || (!strncmp(dg, want + 1, strlen(want) - 1)));
		if (!strcmp(login, own))
			CHECK_TEXT(env, !strcmp(host, "herd-a") && !strcmp(env, "herd-a") && ++seen[0]);
		else if (!strcmp(login, "herd-b"))
			CHECK_TEXT(env, !strcmp(host, "herd-b") && !strcmp(env, "herd-b") && ++seen[1]);
		else
			CHECK_TEXT(env, !strcmp(login, ":") && !strcmp(host, ":") && !env[0] && ++seen[2]);
	}
	CHECK_TEXT(o.out, n == 6);
	CHECK(seen[0] && seen[1] && seen[2]);
	free(dg);
	cli_free(&o);
	/* --dry-run: this machine's. */
	RUN(&o, NULL, "--dry-run", "echo {host} {sshlogin}", ":::", "1");
	CHECK_OUT(&o, "echo ':' ':'\n", 0);
	cli_free(&o);
	CHECK(no_ssh_dir());
	cli_done(0);
}

/* --sshdelay: the ssh clients herd starts (masters, probes, jobs') start
 * that long apart. An ssh command of the test's logs when each starts;
 * from the first to the last of n starts at least (n - 2) delays pass (one
 * spare for a slow first start). */
TEST(sshdelay_spaces_starts)
{
	herd_only();
	sshd_start();
	char log[96], wrapper[96], text[400], sshcmd[120];
	cli_temp_name(log);
	snprintf(text, sizeof text, "#!/bin/sh\ndate +%%s.%%N >>%s\nexec %s \"$@\"\n", log, ssh_opt);
	cli_temp(wrapper, text);
	CHECK(chmod(wrapper, 0700) == 0);
	snprintf(sshcmd, sizeof sshcmd, "%s", wrapper);
	struct cli_out o;
	cli_run_opts(NULL, 0, (const char *const[]){"herd", "--ssh", sshcmd, "--sshdelay", "0.3",
		     "-S", "2/herd-a,2/herd-b", "-k", "echo", ":::", "1", "2", "3", "4", NULL},
		     in_dir(), &o);
	CHECK_OUT(&o, "1\n2\n3\n4\n", 0);
	cli_free(&o);
	char *times = cli_slurp(log);
	CHECK(times != NULL);
	double first = 0, last = 0, t;
	int n = 0;
	for (char *p = times; sscanf(p, "%lf", &t) == 1; p = strchr(p, '\n') + 1, n++) {
		first = n ? (t < first ? t : first) : t;
		last = t > last ? t : last;
		if (!strchr(p, '\n'))
			break;
	}
	/* Two masters, two probes, four jobs. */
	CHECK_TEXT(times, n == 8 && last - first >= (n - 2) * 0.3);
	free(times);
	CHECK(no_ssh_dir());
	cli_done(0);
}

/* --nonall runs the command once on every host; --onall every job on
 * every host, one at a time there (a herd per host, as GNU parallel runs a
 * parallel per host): the output grouped by host (-k: in -S's order), the
 * joblog a line per job and host, the exit status the number of hosts
 * where a job failed. Stdin is read once for all. */
TEST(onall_nonall)
{
	herd_only();
	sshd_start();
	struct cli_out o;
	cli_run_opts(NULL, 0, (const char *const[]){"herd", "--ssh", ssh_opt, "-S",
		     "1/herd-a,herd-b,:", "--nonall", "--tag", "-k", "echo hi {host}", NULL},
		     in_dir(), &o);
	CHECK_OUT(&o, "herd-a\thi herd-a\nherd-b\thi herd-b\n:\thi :\n", 0);
	cli_free(&o);
	char jl[96], jlopt[120];
	cli_temp_name(jl);
	snprintf(jlopt, sizeof jlopt, "--joblog=%s", jl);
	cli_run_opts(NULL, 0, (const char *const[]){"herd", "--ssh", ssh_opt, "-S",
		     "herd-a,herd-b", "--onall", "-k", jlopt, "echo {} {host}; exit {}", ":::", "0",
		     "1", "2", NULL}, in_dir(), &o);
	CHECK_OUT(&o, "0 herd-a\n1 herd-a\n2 herd-a\n0 herd-b\n1 herd-b\n2 herd-b\n", 2);
	char *dg = joblog_digest(jl);
	CHECK_TEXT(dg, !strcmp(dg, "1\therd-a\t0\t0\techo 0 herd-a; exit 0\n"
			      "1\therd-b\t0\t0\techo 0 herd-b; exit 0\n"
			      "2\therd-a\t1\t0\techo 1 herd-a; exit 1\n"
			      "2\therd-b\t1\t0\techo 1 herd-b; exit 1\n"
			      "3\therd-a\t2\t0\techo 2 herd-a; exit 2\n"
			      "3\therd-b\t2\t0\techo 2 herd-b; exit 2\n"));
	free(dg);
	char *text = cli_slurp(jl);
	CHECK_TEXT(text, !strncmp(text, "Seq\tHost\t", 9) && !strstr(text + 1, "Seq\tHost\t"));
	free(text);
	cli_free(&o);
	cli_run_opts("x\ny\n", 4, (const char *const[]){"herd", "--ssh", ssh_opt, "-S",
		     "herd-a,:", "--onall", "-k", "--tag", "echo", NULL}, in_dir(), &o);
	CHECK_OUT(&o, "herd-a\tx\nherd-a\ty\n:\tx\n:\ty\n", 0);
	cli_free(&o);
	/* Usage errors: no hosts; input to --nonall. */
	RUN(&o, NULL, "--nonall", "echo");
	CHECK_RUN(&o, cli_exited(&o, 255) && strstr(o.err, "--nonall: expected hosts"));
	cli_free(&o);
	RUN(&o, NULL, "-S", ":", "--nonall", "echo", ":::", "1");
	CHECK_RUN(&o, cli_exited(&o, 255) && strstr(o.err, "--nonall: the command takes no input"));
	cli_free(&o);
	CHECK(no_ssh_dir());
	cli_done(0);
}

/* Ctrl-C with --onall: each host's herd ends its job there, and nothing of
 * any job is left (-j3: the three hosts at once; -j is hosts at a time). */
TEST(onall_sigint_leaves_nothing)
{
	herd_only();
	sshd_start();
	char cmd[64];
	snprintf(cmd, sizeof cmd, "sleep %s; echo {}", marker);
	struct cli_proc p;
	struct cli_out o;
	cli_start(&p, NULL, 0, (const char *const[]){"herd", "--ssh", ssh_opt, "-S",
		  "herd-a,herd-b,:", "-j3", "--onall", cmd, ":::", "1", "2", NULL}, in_dir(),
		  &o);
	int64_t give_up = cli_now() + 30 * HERD_SEC;
	while (count_marked_sleeps() < 3) {
		if (cli_now() > give_up)
			cli_watchdog(&p);
		cli_pump(&p, 20);
	}
	CHECK(kill(p.pid, SIGINT) == 0);
	cli_finish(&p);
	CHECK_RUN(&o, cli_exited(&o, 255) && o.out_len == 0);
	CHECK(marked_gone());
	CHECK(no_ssh_dir());
	cli_free(&o);
	cli_done(0);
}
