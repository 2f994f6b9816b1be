/*
 * cli.h - what the files of the `herd` command share. The command is built
 * on the public header only (herd.h), as any program would be.
 *
 * The flow: args.c parses the command line into `struct opts`; input.c
 * turns the input sources into records, one record per job (its arguments);
 * template.c turns the command and a record into what to run (an argv,
 * exec'd directly, or a /bin/sh -c string); run.c runs the jobs, so many at
 * a time, with timeouts, retries and --halt; output.c captures each job's
 * output and prints it whole (or by line, or in input order); joblog.c
 * writes the joblog and reads it back for --resume; trace.c writes the
 * timeline (--trace, --trace-html), and tracepage.c the page that draws it.
 */
#ifndef HERD_CLI_H
#define HERD_CLI_H

#include <herd.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define CLI_NAME "herd"
#define CLI_VERSION "0.1.0"
/* The exit status of an error of the command's own (as GNU parallel). */
#define EXIT_ERROR 255

/* ------------------------------------------------------------------ */
/* Small things (util.c)                                              */
/* ------------------------------------------------------------------ */

/* A growable byte string, always NUL-terminated once anything is added. */
typedef struct strbuf {
	char *s;
	size_t len, cap;
} strbuf;

/* Appending; false if memory ran out (the buffer is then unchanged). */
bool sb_add(strbuf *b, const char *p, size_t n);
bool sb_adds(strbuf *b, const char *s);
bool sb_addc(strbuf *b, char c);
void sb_free(strbuf *b);
/* Takes the string out of the buffer (malloc'd; "" if empty), or NULL. */
char *sb_take(strbuf *b);

/* Appends s quoted for the shell as GNU parallel quotes it (unquoted when
 * it holds only letters, digits and -_.+/, else in single quotes). */
bool sb_add_quoted(strbuf *b, const char *s);

/* One line "herd: ..." on stderr. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, with the hint to --help, and exit(EXIT_ERROR). */
__attribute__((noreturn, format(printf, 1, 2))) void cli_usage_error(const char *fmt, ...);
/* The same without the hint. */
__attribute__((noreturn, format(printf, 1, 2))) void cli_die(const char *fmt, ...);
/* malloc that dies with a message when memory runs out (for the
 * command's own small allocations). */
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* Number parsing: 0 and the value, or -1. */
int parse_long(const char *s, long *out);
/* Seconds with a fraction ("1.5", "30"): nanoseconds. */
int parse_seconds(const char *s, int64_t *ns);
/* A size with an optional k, M, G, T suffix (powers of 1024). */
int parse_size(const char *s, uint64_t *out);

/* ------------------------------------------------------------------ */
/* Options (args.c)                                                   */
/* ------------------------------------------------------------------ */

/* An input source: the items of a ::: list, a file, or stdin. */
struct source {
	char **items;       /* a ::: list, NULL-terminated */
	const char *path;   /* a file (:::: or -a); "-" is stdin */
	bool linked;        /* :::+ or ::::+ : read beside the source before */
};

/* When --halt stops, and on what. */
enum { HALT_NEVER, HALT_SOON, HALT_NOW };
enum { HALT_FAIL, HALT_SUCCESS, HALT_DONE };

struct halt {
	int when;           /* HALT_* */
	int what;
	bool percent;       /* val is a percentage of the jobs */
	double val;
};

/* One step of --term-seq: a signal, then how long to wait for the end. */
struct term_step {
	int sig;
	int64_t wait_ns;
};

enum { OUT_GROUP, OUT_LINE, OUT_UNGROUP };
enum { RESUME_NONE, RESUME, RESUME_FAILED, RETRY_FAILED };

struct opts {
	/* The command and its input. */
	char **cmd;                 /* words; NULL-terminated */
	int ncmd;
	struct source *src;
	int nsrc;
	char delim;                 /* item delimiter: '\n', or -0 / -d */
	const char *colsep;         /* --colsep regex, or NULL */
	long max_args;              /* -n / -N: arguments per job; 0: 1 */
	bool exact_args;            /* -N: {n} past the last is empty */
	bool no_empty;              /* -r */
	const char *replace;        /* -I: the string that stands for {} */
	bool quote;                 /* -q */
	/* --pipe: stdin cut into blocks, each a job's stdin. */
	bool pipe;
	uint64_t block;             /* --block: bytes a block holds at most */
	char *recend, *recstart;    /* records end / start with these */
	/* Running. */
	long jobs;                  /* slots */
	int64_t delay_ns;           /* --delay */
	int64_t timeout_ns;         /* --timeout SECS, 0: none */
	double timeout_pct;         /* --timeout N%, 0: none */
	struct term_step term[16];  /* --term-seq */
	int nterm;
	long retries;               /* tries in all (--retries; 0: no end) */
	struct halt halt;
	/* Output. */
	int output;                 /* OUT_* */
	bool keep_order;            /* -k */
	bool tag;                   /* --tag */
	const char *tagstring;      /* --tagstring */
	int verbose;                /* -t / -v */
	bool dry_run;
	bool progress, eta, bar;    /* drawn on stderr when a terminal */
	double load;                /* --load: start while fewer run, 0: any */
	uint64_t memfree;           /* --memfree: start while this is free */
	/* The joblog. */
	const char *joblog;
	bool joblog_append;         /* +FILE */
	int resume;                 /* RESUME_* */
	/* The timeline. */
	const char *trace;          /* --trace FILE */
	const char *trace_html;     /* --trace-html FILE */
	/* Hosts (hosts.c, ssh.c). */
	bool jobs_set;              /* -j was given: slots per host */
	char **sshlogin;            /* -S values, each [N/]host[,...] */
	int nsshlogin;
	const char *slf;            /* --slf FILE: more, re-read on change */
	const char *ssh;            /* --ssh CMD (or $PARALLEL_SSH, or ssh) */
	int64_t sshdelay_ns;        /* --sshdelay: between two ssh starts */
	/* --onall, --nonall: every job (or the command once) on every host,
	 * by a herd per host (onall_rewrite), which gets host_opts. */
	bool onall, nonall;
	char **host_opts;
	int nhost_opts;
	/* Files to and from ssh hosts, with rsync (transfer.c). */
	char **tf;                  /* --transferfile: templates, as {} */
	int ntf;
	char **ret;                 /* --return: templates */
	int nret;
	char **bf;                  /* --basefile: before the first job */
	int nbf;
	bool cleanup;               /* --cleanup: remove them there after */
	const char *wd;             /* --wd DIR: where jobs run there ("..."
				     * a directory of the job's own) */
	/* A Slurm allocation's steps (slurm.c): --slurm asks for them, and
	 * --no-slurm runs the jobs here all the same. */
	bool slurm, no_slurm;
	/* --slurm-submit: the jobs as one job array (submit.c). */
	bool slurm_submit;
	/* herd --guard -- CMD ...: run one command, ended with its tree when
	 * stdout's reader goes away (guard.c); cmd is then its argv. */
	bool guard;
};

/* --onall, --nonall (hosts.c): turns o, whose command and sources were
 * the words tail[0..n), into the run of one herd per host, each running
 * the jobs there one at a time (-j1) with o->host_opts, as GNU parallel
 * does: o's jobs are then those herds' command lines, -j of them at once.
 * Prints a one-line error and exits with EXIT_ERROR if the options do not
 * go with it. */
void onall_rewrite(struct opts *o, char **tail, int n);

/* The text of --help (usage.c). */
extern const char usage_text[];

/* Parses argv into *o, or prints a one-line error (and the hint) and
 * exits with EXIT_ERROR; prints --help or --version and exits 0. */
void args_parse(int argc, char **argv, struct opts *o);

/* ------------------------------------------------------------------ */
/* Input (input.c)                                                    */
/* ------------------------------------------------------------------ */

/* The arguments of one job: values, in order of the sources. */
struct record {
	char **v;
	size_t n;
};

void record_free(struct record *r);

struct input;
/* Opens the sources (reading all but the first whole): NULL and a message
 * on stderr if a file cannot be read. From a task (reads may block). */
struct input *input_open(const struct opts *o);
/* The next job's record: 1, 0 at the end of the input, or -1 (a message
 * was printed). From a task. */
int input_next(struct input *in, struct record *out);
void input_close(struct input *in);
/* read(2) of the input through herd_blocking (stdin may be a terminal or
 * a pipe, which would hold a worker): bytes, 0 at the end, or -errno after
 * a message. From a task. */
ssize_t read_input(int fd, void *buf, size_t n);

/* --pipe: the blocks of stdin, cut at record boundaries (pipe.c). */
struct blocks;
struct blocks *blocks_open(const struct opts *o);
/* The next block (malloc'd) in *buf, *len: 1, 0 at the end, -1 on an
 * error (a message was printed). From a task. */
int blocks_next(struct blocks *b, char **buf, size_t *len);
void blocks_close(struct blocks *b);

/* ------------------------------------------------------------------ */
/* Templates (template.c)                                             */
/* ------------------------------------------------------------------ */

struct template;
/* Compiles the command words; NULL and a message if a replacement string
 * is malformed. */
struct template *template_compile(const struct opts *o);
void template_free(struct template *t);

/* What to run for one job. */
struct command {
	char **argv;      /* exec'd directly (NULL-terminated), or NULL */
	char *shell;      /* else a /bin/sh -c string */
	char *display;    /* the command as -t, --dry-run and the joblog show it */
};

/* Expands the template for record r, job number seq and slot; 0 or
 * -ENOMEM. */
int template_expand(const struct template *t, const struct record *r, uint64_t seq,
		    long slot, struct command *out);
void command_free(struct command *c);
/* The program a direct command runs, resolved in PATH once (NULL when the
 * name is a field); whether it is nowhere to be found (*name: it). */
const char *template_path(const struct template *t);
bool template_not_found(const struct template *t, const char **name);
/* text with its replacement strings expanded for record r, unquoted (as
 * --transferfile's and --return's file names), malloc'd. */
char *template_text(const struct opts *o, const char *text, const struct record *r,
		    uint64_t seq, long slot);
/* {host} and {sshlogin} (as GNU parallel's with --plus): the host a slot
 * belongs to, its name (login false) or its sshlogin without N/ (the
 * joblog's Host); ":" for this machine. The backend sets the function
 * when it opens, before any job (hosts.c, slurm.c); without one, ":". */
typedef const char *(*slot_host_fn)(void *ctx, long slot, bool login);
void template_hosts(slot_host_fn fn, void *ctx);
/* The tag of a job (--tag: its values joined by spaces; --tagstring:
 * expanded), malloc'd, or NULL without either. */
char *template_tag(const struct template *t, const struct record *r, uint64_t seq,
		   long slot);

/* ------------------------------------------------------------------ */
/* Output (output.c)                                                  */
/* ------------------------------------------------------------------ */

/* What a job printed on one stream: in memory, then (past a limit) in an
 * unlinked temporary file. */
struct capture;
struct capture *capture_new(void);
/* An unnamed temporary file (O_TMPFILE, else one unlinked at once), or -1
 * and errno. */
int cli_temp_file(void);
/* Adds bytes; false if they could not be kept (then they are lost, and a
 * warning says so once). */
bool capture_add(struct capture *c, const char *p, size_t n);
size_t capture_size(const struct capture *c);
void capture_free(struct capture *c);

/* The printer: a task that prints finished jobs' output, in input order
 * with -k. */
struct result {
	uint64_t seq;
	char *tag;                /* prefix of each line, or NULL */
	struct capture *out, *err;
	char *message;            /* a line for stderr after the output */
	bool dropped;             /* ended by --halt now or a signal: its
				   * output is lost, and with -k all after */
	bool immediate;           /* printed as it comes, not in order (-t) */
};

struct printer;
/* Starts the printer in `scope`; should stdout's reader go away (EPIPE),
 * it closes `stop`. */
struct printer *printer_start(const struct opts *o, herd_scope *scope, herd_chan *stop);
/* Whether stdout's reader went away. */
bool output_broken(void);
/* Hands a result over (the printer frees it); a job that printed nothing
 * and has no message may send one all the same, for -k's order. */
void printer_put(struct printer *p, struct result *r);
/* Prints what is left in order and ends the printer. */
void printer_finish(struct printer *p);
/* Prints s and a newline on fd, under the output lock (-t). */
void print_line(int fd, const char *s);
/* --line-buffer: a job's lines. With -k, `hold` keeps them until it is the
 * job's turn (seq is the printer's next); else NULL. */
struct line_job {
	uint64_t seq;
	const char *tag;          /* prefix of each line, or NULL */
	struct capture *hold;
};
/* --line-buffer: prints the complete lines of buf (under the output lock),
 * or keeps them in lj->hold while it is not lj's turn; an incomplete last
 * line waits in *rest, printed at flush_rest. */
void print_lines(const struct line_job *lj, int fd, strbuf *rest, const char *buf, size_t n,
		 bool flush_rest);

/* ------------------------------------------------------------------ */
/* The joblog (joblog.c)                                              */
/* ------------------------------------------------------------------ */

struct joblog;
/* Opens the joblog for writing (and reads it for --resume*): NULL and a
 * message if it cannot be. */
struct joblog *joblog_open(const struct opts *o);
/* One line for a job that ended. */
void joblog_write(struct joblog *j, uint64_t seq, const char *host, double start,
		  double runtime, uint64_t received, int exitval, int sig, const char *command);
/* --resume: whether job seq ran already (--resume-failed: succeeded). */
bool joblog_skip(const struct joblog *j, uint64_t seq);
/* --retry-failed: the jobs whose last line says they failed, their numbers
 * and commands (owned by the joblog); how many. */
size_t joblog_failed(const struct joblog *j, uint64_t **seqs, char ***commands);
void joblog_close(struct joblog *j);

/* ------------------------------------------------------------------ */
/* Progress, --load and --memfree (progress.c)                        */
/* ------------------------------------------------------------------ */

#include <stdatomic.h>

struct progress;
/* Starts the progress line if asked for and stderr is a terminal; NULL
 * otherwise. The counters are read as the line is drawn. */
struct progress *progress_start(const struct opts *o, herd_scope *scope,
				const atomic_ulong *started, const atomic_ulong *done,
				const atomic_ulong *failed);
/* Whether the line would show a percentage if it knew the number of jobs
 * (--bar or --eta, and the input is not only ::: lists); then the run
 * reads its input whole first and tells it with progress_set_total. */
bool progress_wants_total(const struct progress *p);
void progress_set_total(struct progress *p, uint64_t n);
void progress_finish(struct progress *p);
/* Waits while --load or --memfree say the machine has no room for another
 * job: 0, or -1 if `stop` closed meanwhile. */
int wait_for_room(const struct opts *o, herd_chan *stop);

/* ------------------------------------------------------------------ */
/* The timeline (trace.c, tracepage.c)                                */
/* ------------------------------------------------------------------ */

struct trace;
/* Opens --trace's file and --trace-html's (or prints a message and exits
 * with EXIT_ERROR if one cannot be written); NULL without either. Its
 * time 0 is now. */
struct trace *trace_open(const struct opts *o);
/* One run of a job's command (herd_now() times; status as
 * herd_proc_wait stores it, or 127 / 126 when it did not start). */
struct trace_run {
	uint64_t seq;
	long slot;
	long retry;              /* 0: the first run */
	const char *name;        /* the command line */
	int64_t start, end;
	int status;
	bool timed_out, stopped;
	const char *host;        /* the joblog's Host: ":" here */
};
/* A slice on the slot's lane; does nothing to a NULL trace. */
void trace_job(struct trace *t, const struct trace_run *r);
/* Where a job's events go: its trace (or NULL), number and slot. */
struct trace_lane {
	struct trace *t;
	uint64_t seq;
	long slot;
};
/* An instant on the job's lane: signal `sig` sent to its tree, and why
 * ("timeout", "stop", "kill"). */
void trace_signal(const struct trace_lane *l, int sig, const char *why);
/* Writes the page (--trace-html) and closes the files. */
void trace_close(struct trace *t);
/* Appends s (n bytes) as a JSON string: escaped, any byte that is not
 * part of valid UTF-8 as \u00XX (read as Latin-1). */
bool json_add_string(strbuf *b, const char *s, size_t n);

/* The page (tracepage.html, built in). */
extern const char trace_page[];
/* Writes the page with the JSON text (a trace) embedded: 0 or -errno. */
int page_write(int fd, const char *json, size_t len);
/* A trace read from a file, checked as strict JSON (a list of events, or
 * an object with "traceEvents") and made safe to embed; one cut short is
 * cut back to its last complete event and closed (*repaired). The copy
 * (malloc'd, its length in *out_len), or NULL and a message in err. */
char *trace_json_clean(const char *text, size_t len, size_t *out_len, bool *repaired,
		       char *err, size_t errsize);

/* ------------------------------------------------------------------ */
/* Waiting for a job's run, and ending it (jobwait.c)             */
/* ------------------------------------------------------------------ */

/* The running median of the run times of the jobs that succeeded, for
 * --timeout N%; any task may add to it. */
struct median;
struct median *median_new(void);
void median_free(struct median *m);
/* Adds a run time in seconds; does nothing to a NULL median. */
void median_add(struct median *m, double t);

/* What ends a job early: --timeout and --term-seq (o), the run's `stop`
 * and `kill` channels (closed: end the jobs by --term-seq, or kill them
 * at once), and the median, for --timeout N% (else NULL). */
struct job_ends {
	const struct opts *o;
	herd_chan *stop, *kill;
	struct median *median;
};
/* A run on a backend (backend.h): its operations and itself. */
struct backend_ops;
struct job_run;
struct job_proc {
	const struct backend_ops *ops;
	struct job_run *run;
};
/* Waits for the run (started at `start`, herd_now()) to end, ending its
 * tree early on its timeout (*timed_out), `stop` or `kill` (*stopped);
 * its status is then the backend's collect's. Each signal sent to the
 * tree goes on the job's lane of the trace. */
void job_wait(const struct job_ends *e, const struct trace_lane *lane, const struct job_proc *jp,
	      int64_t start, bool *timed_out, bool *stopped);

/* ------------------------------------------------------------------ */
/* Running (run.c)                                                    */
/* ------------------------------------------------------------------ */

/* Runs every job; returns the exit status of the command. From the first
 * task. */
int run_all(const struct opts *o);

/* --slurm-submit: runs every job in one Slurm job array; returns the
 * exit status of the command (submit.c). From the first task. */
int submit_run(const struct opts *o);

/* herd --guard: runs o->cmd; returns the exit status (guard.c). */
int guard_main(const struct opts *o);

#endif
