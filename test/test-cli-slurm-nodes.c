/*
 * test-cli-slurm-nodes.c - the herd command in a Slurm allocation of
 * several nodes, without Slurm: an allocation's environment
 * (SLURM_JOB_ID, SLURM_JOB_NODELIST, SLURM_TASKS_PER_NODE) and an `srun`
 * of the test's, first in PATH, that prints the node it was given (-w)
 * and runs the command with FAKE_NODE set to it. Each slot is pinned to
 * one node of the allocation (its task's), so the joblog's Host names the
 * node the step ran on.
 * The one-node cluster of test/slurm/harness.sh cannot show this
 * (test-cli-slurm.sh and test-cli-remote.sh run herd in it).
 */
#define _GNU_SOURCE
#include "cli.h"

/* The fake srun: the node after -w, then the command after --, run. */
static const char fake_srun[] =
	"#!/bin/sh\n"
	"node=none\n"
	"while [ $# -gt 0 ] && [ \"$1\" != -- ]; do\n"
	"  [ \"$1\" = -w ] && { node=$2; shift; }\n"
	"  shift\n"
	"done\n"
	"shift\n"
	"echo \"srun -w $node\" >&2\n"
	"FAKE_NODE=$node exec \"$@\"\n";

/* Runs herd --slurm with -j jobs over 1..n in a fake allocation of the
 * node list and tasks per node given; its joblog's digest (Seq, Host,
 * Exitval, Signal, Command, sorted) in *digest. */
static char dir[96], path[200]; /* the fake srun's */

static void fake_run(struct cli_out *o, const char *nodelist, const char *tasks, const char *j,
		     char **digest)
{
	static char env_path[300], env_nodes[120], env_tasks[120];
	if (!dir[0]) {
		cli_setup();
		snprintf(dir, sizeof dir, "/tmp/herd-test-%d-srun-XXXXXX", (int)getpid());
		CHECK(mkdtemp(dir) != NULL);
		snprintf(path, sizeof path, "%s/srun", dir);
		FILE *f = fopen(path, "we");
		CHECK(f && fputs(fake_srun, f) >= 0 && fclose(f) == 0);
		CHECK(chmod(path, 0700) == 0);
		snprintf(env_path, sizeof env_path, "PATH=%s:/usr/bin:/bin", dir);
	}
	snprintf(env_nodes, sizeof env_nodes, "SLURM_JOB_NODELIST=%s", nodelist);
	snprintf(env_tasks, sizeof env_tasks, "SLURM_TASKS_PER_NODE=%s", tasks);
	const char *env[] = {env_path, env_nodes, env_tasks, "SLURM_JOB_ID=42", "SLURM_STEP_ID",
			     "SLURM_NTASKS", "SLURM_CPUS_PER_TASK", "SLURM_JOB_CPUS_PER_NODE",
			     "SLURM_NODELIST", NULL};
	struct cli_opts opts = {.env = env};
	char jl[96], jlopt[120];
	cli_temp_name(jl);
	snprintf(jlopt, sizeof jlopt, "--joblog=%s", jl);
	cli_run_opts(NULL, 0, (const char *const[]){"herd", "--slurm", "-k", "-j", j, jlopt,
		     "echo {} $FAKE_NODE", ":::", "1", "2", "3", "4", "5", NULL}, &opts, o);
	char *text = cli_slurp(jl);
	CHECK(text != NULL);
	/* Seq and Host of each line, sorted by Seq. */
	char *save = NULL, lines[5][64] = {{0}};
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		unsigned seq;
		char host[40];
		if (sscanf(l, "%u\t%39[^\t]", &seq, host) == 2 && seq >= 1 && seq <= 5)
			snprintf(lines[seq - 1], sizeof lines[0], "%u %s\n", seq, host);
	}
	free(text);
	CHECK(asprintf(digest, "%s%s%s%s%s", lines[0], lines[1], lines[2], lines[3], lines[4]) > 0);
}

/* Two nodes, n01 with two tasks and n02 with one: three slots, pinned to
 * n01, n01, n02. Each job's line and joblog Host name the node srun was
 * given (-w), and the nodes are those of the slots. */
TEST(host_is_steps_node)
{
	herd_only();
	cli_setup();
	struct cli_out o;
	char *dg;
	fake_run(&o, "n[01-02]", "2,1", "3", &dg);
	CHECK_RUN(&o, cli_exited(&o, 0));
	/* The node each job ran on ("i $FAKE_NODE") is its joblog Host. */
	CHECK_TEXT(dg, !strcmp(o.out, dg) || (fprintf(stderr, "out:\n%s", o.out), false));
	/* The nodes srun was given: n01 for two slots, n02 for one. */
	int n01 = 0, n02 = 0;
	for (const char *p = o.err; (p = strstr(p, "srun -w ")); p += 8) {
		n01 += !strncmp(p + 8, "n01\n", 4);
		n02 += !strncmp(p + 8, "n02\n", 4);
	}
	CHECK_TEXT(o.err, n01 + n02 == 5 && n01 >= 2 && n02 >= 1);
	free(dg);
	cli_free(&o);
	/* One node: no -w, the node as the Host. */
	fake_run(&o, "solo", "2", "2", &dg);
	CHECK_TEXT(dg, !strcmp(dg, "1 solo\n2 solo\n3 solo\n4 solo\n5 solo\n"));
	CHECK_TEXT(o.err, !strstr(o.err, "srun -w n0") && strstr(o.err, "srun -w none"));
	free(dg);
	cli_free(&o);
	/* A list and tasks that disagree: no pinning, the list as the Host. */
	fake_run(&o, "a,b[7-8]", "2", "2", &dg);
	CHECK_TEXT(dg, !strcmp(dg, "1 a,b[7-8]\n2 a,b[7-8]\n3 a,b[7-8]\n4 a,b[7-8]\n"
			      "5 a,b[7-8]\n"));
	free(dg);
	cli_free(&o);
	CHECK(unlink(path) == 0 && rmdir(dir) == 0);
	cli_done(0);
}
