/*
 * The post-mortem's program written with herd: objects arrive on a channel,
 * each is started in a task that runs a command and reads its output, and a
 * scope waits for them, running at most `limit` at once. Its Go twin is
 * go/postmortem.go.
 */
#include <herd.h>
#include <stdio.h>

struct object {
	char name[32];
};

HERD_TASK(produce, HERD_CHAN(struct object), ch)
{
	for (int i = 0; i < 20; i++) {
		struct object v;
		snprintf(v.name, sizeof v.name, "object-%d", i);
		HERD_SEND(ch, v, HERD_FOREVER);
	}
	herd_chan_close(ch);
}

static void start(struct object *v)
{
	char *argv[] = {"echo", v->name, NULL};
	herd_output out;
	int rc = herd_proc_output(&out, NULL, &(herd_proc_opts){.argv = argv}, 4096, 0, HERD_FOREVER);
	if (rc < 0)
		printf("%s: %s\n", v->name, herd_strerror(rc));
	else
		printf("%s said: %s", v->name, out.out);
	herd_output_free(&out);
}

HERD_TASK(process, struct object, v)
{
	start(&v);
	printf("Finished: %s\n", v.name);
}

HERD_TASK(run, int, limit)
{
	HERD_CHAN(struct object) objs;
	herd_scope *s;
	if (HERD_CHAN_MAKE(objs, 0) < 0 || herd_scope_open(&s) < 0)
		return;
	herd_scope_limit(s, limit);
	HERD_GO(NULL, produce(objs));
	struct object v;
	HERD_RANGE(v, objs) {
		printf("Processing: %s\n", v.name);
		HERD_GO(s, process(v));
	}
	herd_scope_close(s);
	herd_chan_free(objs);
}

int main(void)
{
	return HERD_MAIN(run(8)) < 0;
}
