/*
 * suite-left.c - run by CTest after every other test (a fixture's
 * cleanup): fails if the suite left anything behind on the machine.
 *
 *   - a live process whose environment holds HERD_TEST_SUITE with this
 *     build tree's value (CTest gives it to every test, and children
 *     inherit it);
 *   - a cgroup directory herd-<pid>-* under a cgroup2 mount whose process
 *     is gone;
 *   - a file /tmp/herd-test-<pid>-* whose process is gone.
 *
 * What it finds is listed, then removed or killed, so that one failing run
 * does not fail the next.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <fcntl.h>
#include <unistd.h>

static bool alive(long pid)
{
	return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

/* Whether process pid's environment holds `entry` ("NAME=value"). */
static bool has_entry(long pid, const char *entry)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/environ", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	ssize_t n;
	while (buf && len < cap && (n = read(fd, buf + len, cap - len)) > 0)
		len += (size_t)n;
	close(fd);
	bool found = buf && memmem(buf, len, entry, strlen(entry) + 1) != NULL;
	free(buf);
	return found;
}

static int processes(const char *value)
{
	char entry[4200];
	snprintf(entry, sizeof entry, "HERD_TEST_SUITE=%s", value);
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	int left = 0;
	long me = getpid();
	struct dirent *e;
	while ((e = readdir(d))) {
		long pid = atol(e->d_name);
		if (pid <= 0 || pid == me || !has_entry(pid, entry))
			continue;
		char comm[64] = "?", path[64];
		snprintf(path, sizeof path, "/proc/%ld/comm", pid);
		FILE *f = fopen(path, "re");
		if (f) {
			if (fgets(comm, sizeof comm, f))
				comm[strcspn(comm, "\n")] = 0;
			fclose(f);
		}
		fprintf(stderr, "left running: pid %ld (%s)\n", pid, comm);
		kill((pid_t)pid, SIGKILL);
		left++;
	}
	closedir(d);
	return left;
}

/* The pid in "herd-<pid>-..." or "herd-test-<pid>-...", or -1. */
static long owner(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);
	if (strncmp(name, prefix, n) != 0)
		return -1;
	char *end;
	long pid = strtol(name + n, &end, 10);
	return end != name + n && *end == '-' && pid > 0 ? pid : -1;
}

static int cgroups_in(const char *dir, int depth)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int left = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		long pid = owner(e->d_name, "herd-");
		if (pid > 0 && !alive(pid)) {
			fprintf(stderr, "left: cgroup %s\n", path);
			char kill_file[4200];
			snprintf(kill_file, sizeof kill_file, "%s/cgroup.kill", path);
			int fd = open(kill_file, O_WRONLY | O_CLOEXEC);
			if (fd >= 0) {
				ssize_t w = write(fd, "1", 1);
				(void)w;
				close(fd);
			}
			usleep(100000);
			rmdir(path);
			left++;
		} else if (pid < 0 && depth > 0) {
			left += cgroups_in(path, depth - 1);
		}
	}
	closedir(d);
	return left;
}

static int cgroups(void)
{
	FILE *f = fopen("/proc/self/mounts", "re");
	if (!f)
		return 0;
	char dev[256], mnt[4096], type[64];
	int left = 0;
	while (fscanf(f, "%255s %4095s %63s %*[^\n]", dev, mnt, type) == 3)
		if (strcmp(type, "cgroup2") == 0)
			left += cgroups_in(mnt, 2);
	fclose(f);
	return left;
}

static int temp_files(void)
{
	DIR *d = opendir("/tmp");
	if (!d)
		return 0;
	int left = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		long pid = owner(e->d_name, "herd-test-");
		if (pid <= 0 || alive(pid))
			continue;
		char path[4096];
		snprintf(path, sizeof path, "/tmp/%s", e->d_name);
		fprintf(stderr, "left: file %s\n", path);
		unlink(path);
		left++;
	}
	closedir(d);
	return left;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: suite-left BUILD-DIR\n");
		return 2;
	}
	int left = processes(argv[1]) + cgroups() + temp_files();
	if (left)
		fprintf(stderr, "the test suite left %d things behind\n", left);
	return left ? 1 : 0;
}
