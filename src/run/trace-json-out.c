/*
 * trace-json-out.c - the JSON writer of HERD_TRACE's converter
 * (trace-json.c): one function per kind of event of the Chrome
 * trace-event format that the converter writes, each formatting straight
 * into a buffer through a cursor, after reserve() has made room for its
 * longest form (these run for every event, millions of them), and the
 * buffer handed to the converter's output when full. Standalone (the C
 * library only), as the converter is.
 *
 * Nothing is shared: a writer belongs to its converter.
 */
#include "run/trace-json.h"

#include <string.h>

int herd__jw_flush(herd__jw *j)
{
	if (j->n && !j->err)
		j->err = j->out(j->ctx, j->buf, j->n);
	j->n = 0;
	return j->err;
}

static char *reserve(herd__jw *j, size_t n)
{
	if (j->n + n > sizeof j->buf)
		herd__jw_flush(j);
	return j->buf + j->n;
}

static void commit(herd__jw *j, char *w)
{
	j->n = (size_t)(w - j->buf);
}

#define PUT_LIT(w, s) (memcpy((w), "" s, sizeof(s) - 1), (w) + sizeof(s) - 1)

static char *put_u64(char *w, uint64_t v)
{
	char tmp[20];
	size_t i = sizeof tmp;
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	memcpy(w, tmp + i, sizeof tmp - i);
	return w + sizeof tmp - i;
}

/* A quoted hexadecimal string: "0x7f3a...". */
static char *put_hex(char *w, uint64_t v)
{
	char tmp[16];
	size_t i = sizeof tmp;
	do {
		tmp[--i] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	w = PUT_LIT(w, "\"0x");
	memcpy(w, tmp + i, sizeof tmp - i);
	w += sizeof tmp - i;
	*w++ = '"';
	return w;
}

/* Nanoseconds as microseconds: 12.345. */
static char *put_us(char *w, int64_t ns)
{
	if (ns < 0)
		ns = 0;
	w = put_u64(w, (uint64_t)ns / 1000);
	*w++ = '.';
	*w++ = (char)('0' + ns / 100 % 10);
	*w++ = (char)('0' + ns / 10 % 10);
	*w++ = (char)('0' + ns % 10);
	return w;
}

static char *put_text(char *w, const char *s)
{
	size_t n = strlen(s);
	memcpy(w, s, n);
	return w + n;
}

/* The length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len = s[0] < 0xc2 ? 0 : s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : s[0] < 0xf5 ? 4 : 0;
	if (!len || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* Overlong forms, surrogates and code points past U+10FFFF. */
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
		return 0;
	return len;
}

/* The room a string of len bytes may take, quoted and escaped. */
#define STR_ROOM(len) (6 * (len) + 2)

/* A JSON string of len bytes of s: any byte may come in (a command line);
 * what is not valid UTF-8 goes out as U+FFFD. */
static char *put_str(char *w, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	*w++ = '"';
	for (size_t i = 0; i < len;) {
		unsigned char c = u[i];
		size_t k = 1;
		if (c == '"' || c == '\\') {
			*w++ = '\\';
			*w++ = (char)c;
		} else if (c < 0x20) {
			w = PUT_LIT(w, "\\u00");
			*w++ = "0123456789abcdef"[c >> 4];
			*w++ = "0123456789abcdef"[c & 15];
		} else if (c < 0x80) {
			*w++ = (char)c;
		} else if ((k = utf8_len(u + i, len - i))) {
			memcpy(w, s + i, k);
			w += k;
		} else {
			w = PUT_LIT(w, "\\ufffd");
			k = 1;
		}
		i += k;
	}
	*w++ = '"';
	return w;
}

/* The start of an event of the program: {"ph":"P","pid":1,"tid":L,"ts":T */
static char *put_head(char *w, char ph, unsigned lane, int64_t ns)
{
	w = PUT_LIT(w, "{\"ph\":\"");
	*w++ = ph;
	w = PUT_LIT(w, "\",\"pid\":1,\"tid\":");
	w = put_u64(w, lane);
	w = PUT_LIT(w, ",\"ts\":");
	return put_us(w, ns);
}

/* {"ph":"M","pid":P,"tid":T,"name":"WHAT","args":{"name":" */
static char *put_meta(char *w, unsigned pid, unsigned tid, const char *what)
{
	w = PUT_LIT(w, "{\"ph\":\"M\",\"pid\":");
	w = put_u64(w, pid);
	w = PUT_LIT(w, ",\"tid\":");
	w = put_u64(w, tid);
	w = PUT_LIT(w, ",\"name\":\"");
	w = put_text(w, what);
	return PUT_LIT(w, "\",\"args\":{\"name\":\"");
}

void herd__jw_header(herd__jw *j, const herd__trf_meta *m)
{
	char *w = reserve(j, 512);
	w = PUT_LIT(w, "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"version\":\"herd ");
	w = put_u64(w, m->version >> 16);
	*w++ = '.';
	w = put_u64(w, m->version >> 8 & 255);
	*w++ = '.';
	w = put_u64(w, m->version & 255);
	w = PUT_LIT(w, "\",\"workers\":");
	w = put_u64(w, m->nworkers);
	w = PUT_LIT(w, ",\"seed\":\"");
	w = put_u64(w, m->seed);
	w = PUT_LIT(w, "\"},\"traceEvents\":[\n");
	w = put_meta(w, 1, 0, "process_name");
	w = PUT_LIT(w, "herd (pid ");
	w = put_u64(w, (uint32_t)m->pid);
	w = PUT_LIT(w, ")\"}},\n");
	w = put_meta(w, 1, 0, "thread_name");
	commit(j, PUT_LIT(w, "supervisor and other threads\"}},\n"));
	for (unsigned i = 0; i < m->nworkers; i++) {
		w = put_meta(reserve(j, 256), 1, i + 1, "thread_name");
		w = PUT_LIT(w, "worker ");
		w = put_u64(w, i);
		commit(j, PUT_LIT(w, "\"}},\n"));
	}
	w = put_meta(reserve(j, 256), 2, 0, "process_name");
	commit(j, PUT_LIT(w, "child processes\"}},\n"));
}

void herd__jw_slice(herd__jw *j, unsigned lane, int64_t ns, int64_t end, const char *name,
		    uint64_t task, const char *stop, uint64_t obj)
{
	size_t nlen = strnlen(name, HERD__JW_NAME_MAX), slen = strnlen(stop, 64);
	char *w = reserve(j, 256 + STR_ROOM(nlen) + STR_ROOM(slen));
	w = put_head(w, 'X', lane, ns);
	w = PUT_LIT(w, ",\"dur\":");
	w = put_us(w, end - ns);
	w = PUT_LIT(w, ",\"name\":");
	w = put_str(w, name, nlen);
	w = PUT_LIT(w, ",\"args\":{\"task\":");
	w = put_u64(w, task);
	w = PUT_LIT(w, ",\"stop\":");
	w = put_str(w, stop, slen);
	if (obj) {
		w = PUT_LIT(w, ",\"on\":");
		w = put_hex(w, obj);
	}
	commit(j, PUT_LIT(w, "}},\n"));
}

void herd__jw_flow(herd__jw *j, char ph, unsigned lane, int64_t ns, uint64_t id)
{
	char *w = reserve(j, 256);
	w = put_head(w, ph, lane, ns);
	w = ph == 'f' ? PUT_LIT(w, ",\"bp\":\"e\",\"cat\":\"ready\",\"name\":\"ready\",\"id\":")
		      : PUT_LIT(w, ",\"cat\":\"ready\",\"name\":\"ready\",\"id\":");
	w = put_hex(w, id);
	commit(j, PUT_LIT(w, "},\n"));
}

void herd__jw_mark(herd__jw *j, unsigned lane, int64_t ns, const char *name)
{
	char *w = reserve(j, 256);
	w = put_head(w, 'X', lane, ns);
	w = PUT_LIT(w, ",\"dur\":0,\"name\":\"");
	w = put_text(w, name);
	commit(j, PUT_LIT(w, "\",\"args\":{}},\n"));
}

void herd__jw_proc(herd__jw *j, int64_t start, int64_t end, uint64_t pid, int st,
		   const char *text, size_t len)
{
	char *w = reserve(j, 512 + STR_ROOM(len));
	w = PUT_LIT(w, "{\"ph\":\"M\",\"pid\":2,\"tid\":");
	w = put_u64(w, pid);
	w = PUT_LIT(w, ",\"name\":\"thread_name\",\"args\":{\"name\":\"pid ");
	w = put_u64(w, pid);
	w = PUT_LIT(w, "\"}},\n{\"ph\":\"X\",\"pid\":2,\"tid\":");
	w = put_u64(w, pid);
	w = PUT_LIT(w, ",\"ts\":");
	w = put_us(w, start);
	w = PUT_LIT(w, ",\"dur\":");
	w = put_us(w, end > start ? end - start : 0);
	w = st == 0 ? PUT_LIT(w, ",\"cname\":\"good\"") : PUT_LIT(w, ",\"cname\":\"bad\"");
	w = PUT_LIT(w, ",\"name\":");
	w = put_str(w, text, len);
	w = PUT_LIT(w, ",\"args\":{\"pid\":");
	w = put_u64(w, pid);
	/* The status as herd.h's HERD_PROC_EXITED and _SIGNALED read it. */
	if (st >= 0 && st < 256) {
		w = PUT_LIT(w, ",\"status\":\"exit ");
		w = put_u64(w, (unsigned)st);
	} else if (st >= 256) {
		w = PUT_LIT(w, ",\"status\":\"signal ");
		w = put_u64(w, (unsigned)(st - 256));
	} else {
		w = PUT_LIT(w, ",\"status\":\"unknown (-");
		w = put_u64(w, (unsigned)-st);
		*w++ = ')';
	}
	commit(j, PUT_LIT(w, "\"}},\n"));
}

void herd__jw_instant(herd__jw *j, unsigned lane, int64_t ns, bool global, const char *name,
		      const char *key, uint64_t value, bool hex)
{
	char *w = reserve(j, 256);
	w = put_head(w, 'i', lane, ns);
	w = global ? PUT_LIT(w, ",\"s\":\"g\",\"name\":\"") : PUT_LIT(w, ",\"s\":\"t\",\"name\":\"");
	w = put_text(w, name);
	w = PUT_LIT(w, "\",\"args\":{\"");
	w = put_text(w, key);
	w = PUT_LIT(w, "\":");
	w = hex ? put_hex(w, value) : put_u64(w, value);
	commit(j, PUT_LIT(w, "}},\n"));
}

int herd__jw_end(herd__jw *j, int64_t ns, uint64_t lost)
{
	/* The last event has no comma after it: the array closes here. */
	char *w = reserve(j, 256);
	w = put_head(w, 'i', 0, ns);
	w = PUT_LIT(w, ",\"s\":\"g\",\"name\":\"end\",\"args\":{\"lost_events\":");
	w = put_u64(w, lost);
	commit(j, PUT_LIT(w, "}}\n]}\n"));
	return herd__jw_flush(j);
}
