/*
 * test-cli-ssh-files.c - files to and from ssh hosts around jobs
 * (--transferfile, --return, --cleanup, --trc, --basefile, --wd), with
 * rsync, on the two "hosts" of test-cli-ssh.h.
 */
#define _GNU_SOURCE
#include "test-cli-ssh.h"

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
