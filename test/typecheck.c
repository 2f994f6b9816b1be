/*
 * typecheck.c - what the compiler must refuse: a typed task spawned with a
 * value of another type, a variable of another type sent on, received from
 * or ranged over a typed channel, something that is not a channel given as
 * one. typecheck.sh compiles it with -DCASE=0 (every correct use: it must
 * compile, so that the test can fail) and with each CASE below, which must
 * fail with a message matching the pattern of its `refuse` line.
 */
#include <herd.h>

struct object {
	const char *name;
	int n;
};

HERD_TASK(start, struct object, obj) { (void)obj; }
HERD_TASK(take, herd_chan *, ch) { (void)ch; }
HERD_TASK(num, long, v) { (void)v; }
HERD_TASK(text, char *, v) { (void)v; }
HERD_TASK(objects, HERD_CHAN(struct object), ch) { (void)ch; }

static void main_task(void *unused)
{
	(void)unused;
	struct object o = {"a", 1};
	int i = 0;
	long l = 0;
	const char *cs = "x";
	herd_chan *raw = 0;
	HERD_CHAN(struct object) objs = 0;
	HERD_CHAN(int) ints = 0;
	(void)o, (void)i, (void)l, (void)cs, (void)raw, (void)objs, (void)ints;
#if CASE == 1 /* refuse 1: incompatible type|herd__call_start */
	HERD_GO(NULL, start(i));
#elif CASE == 2 /* refuse 2: incompatible pointer type */
	HERD_GO(NULL, take(&o));
#elif CASE == 3 /* refuse 3: int-conversion */
	HERD_GO(NULL, num(&l));
#elif CASE == 4 /* refuse 4: qualifier */
	HERD_GO(NULL, text(cs));
#elif CASE == 5 /* refuse 5: incompatible pointer type */
	HERD_GO(NULL, objects(ints));
#elif CASE == 6 /* refuse 6: the variable's type is not the channel's element type|static.assert */
	HERD_SEND(objs, i, HERD_FOREVER);
#elif CASE == 7 /* refuse 7: the variable's type is not the channel's element type|static.assert */
	HERD_RECV(ints, l, HERD_FOREVER);
#elif CASE == 8 /* refuse 8: the variable's type is not the channel's element type|static.assert */
	HERD_RANGE(l, ints) {}
#elif CASE == 9 /* refuse 9: does not match the channel's element type|static.assert */
	herd_case c[] = {HERD_CASE_RECV(ints, &l)};
	(void)c;
#elif CASE == 10 /* refuse 10: does not match the channel's element type|static.assert */
	herd_chan_send(ints, &o, HERD_NOWAIT);
#elif CASE == 11 /* refuse 11: not a channel|static.assert */
	HERD_SEND(&raw, i, HERD_NOWAIT);
#elif CASE == 12 /* refuse 12: not a channel|static.assert */
	herd_chan_close(&i);
#elif CASE == 13 /* refuse 13: undeclared|implicit|herd__call_nothing */
	HERD_GO(NULL, nothing(o));
#else
	HERD_GO(NULL, start(o));
	HERD_GO(NULL, take(raw));
	HERD_GO(NULL, num(i));
	HERD_GO(NULL, text(0));
	HERD_GO(NULL, objects(objs));
	HERD_SEND(objs, o, HERD_NOWAIT);
	HERD_RECV(ints, i, HERD_NOWAIT);
	HERD_RANGE(i, ints) {}
	herd_chan_send(ints, &i, HERD_NOWAIT);
	herd_chan_close(objs);
	herd_case c[] = {HERD_CASE_RECV(ints, &i), HERD_CASE_RECV(raw, &l),
			 HERD_CASE_SEND(objs, &o), HERD_CASE_RECV(NULL, NULL)};
	(void)c;
#endif
}

int main(void)
{
	return herd_main(main_task, NULL);
}
