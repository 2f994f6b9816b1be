/*
 * count.c - what the seed example counts in /proc to show that nothing was
 * left behind: the processes descended from it, and its open descriptors.
 * Plain reads of /proc, no herd: they take little time, so a task may
 * call them itself.
 */
#include "count.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The processes descended from this one, zombies included, or -1 if
 * /proc cannot be read. herd makes the program a child subreaper, so a
 * process whose parent died (event's leftover) is reparented to this one,
 * not to init, and is still counted. */
int count_descendants(void)
{
	struct proc {
		int pid, parent;
		bool ours;
	} *procs = NULL;
	int n = 0, cap = 0, me = getpid(), count = 0;
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d))) {
		char path[300], stat[512];
		int pid = atoi(e->d_name), parent;
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		FILE *f = pid > 0 ? fopen(path, "re") : NULL;
		if (!f)
			continue; /* not a process, or one that just ended */
		/* The parent follows the state, after the name's last ')'. */
		char *r = fgets(stat, sizeof stat, f) ? strrchr(stat, ')') : NULL;
		fclose(f);
		if (!r || sscanf(r + 1, " %*c %d", &parent) != 1)
			continue;
		if (n == cap) {
			void *more = realloc(procs, sizeof *procs * (cap = cap ? 2 * cap : 256));
			if (!more) {
				count = -1;
				break;
			}
			procs = more;
		}
		procs[n++] = (struct proc){pid, parent, parent == me};
	}
	closedir(d);
	/* Ours are our children, then theirs: a generation per pass. */
	for (bool more = count == 0; more;) {
		more = false;
		for (int i = 0; i < n; i++)
			for (int j = 0; j < n && !procs[i].ours; j++)
				if (procs[j].ours && procs[j].pid == procs[i].parent)
					procs[i].ours = more = true;
	}
	for (int i = 0; i < n && count >= 0; i++)
		count += procs[i].ours;
	free(procs);
	return count;
}

/* The descriptors this process has open, or -1. */
int count_descriptors(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* not the one reading the directory */
}
