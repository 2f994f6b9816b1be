/*
 * test-cli.c - the herd command against GNU parallel: inputs, replacement
 * strings, quoting, exit statuses, --halt, the joblog and errors of use.
 * (test-cli-run.c has running: output, -j, timeouts, signals, limits.)
 *
 * Every expected output is GNU parallel 20221122's: the cases that do not
 * call herd_only() pass against it (see cli.h for how to run them so).
 * Commands are either shell text in one word ("echo {} | tr a b") or
 * words that parallel joins with spaces and hands to the shell as they
 * are (so a word with shell syntax in it is quoted in the C string).
 */
#define _GNU_SOURCE
#include "cli.h"

#include <math.h>

/* Inputs ------------------------------------------------------------- */

/* Items come one per line from stdin (the last line needs no newline;
 * spaces stay in the item). */
TEST(inputs_stdin)
{
	EXPECT("a\nb\nc\n", "a\nb\nc\n", 0, "-k", "echo");
	EXPECT("a\nb", "a\nb\n", 0, "-k", "echo");
	EXPECT("a  b\n", "<a  b>\n", 0, "-k", "printf '<%s>\\n'");
	cli_done(0);
}

/* ::: lists; several sources make every combination, in order; :::+
 * pairs a source with the one before it, item by item, the shorter
 * deciding how many jobs there are. */
TEST(inputs_args)
{
	EXPECT(NULL, "a\nb\nc\n", 0, "-k", "echo", ":::", "a", "b", "c");
	EXPECT(NULL, "a 1\na 2\nb 1\nb 2\n", 0, "-k", "echo", ":::", "a", "b", ":::", "1", "2");
	EXPECT(NULL, "a 1 x\na 2 x\nb 1 x\nb 2 x\n", 0,
	       "-k", "echo", ":::", "a", "b", ":::", "1", "2", ":::", "x");
	EXPECT(NULL, "a 1\nb 2\n", 0, "-k", "echo", ":::", "a", "b", "c", ":::+", "1", "2");
	EXPECT(NULL, "a 1\nb 2\n", 0, "-k", "echo", ":::", "a", "b", ":::+", "1", "2", "3");
	/* With stdin given, ::: wins: stdin is not read. */
	EXPECT("s\n", "a\n", 0, "-k", "echo", ":::", "a");
	cli_done(0);
}

/* Parallel splits ::: items at the item delimiter as it splits input
 * lines: an item with a newline in it is two items, and with -d , an item
 * with a comma too; with -0 the newline stays. */
TEST(inputs_args_split)
{
	EXPECT(NULL, "<a>\n<b>\n<c>\n", 0, "-k", "printf '<%s>\\n'", ":::", "a\nb", "c");
	EXPECT(NULL, "<a\nb>\n<c>\n", 0, "-0", "-k", "printf '<%s>\\n'", ":::", "a\nb", "c");
	EXPECT(NULL, "<a>\n<b>\n<c\nd>\n", 0, "-d", ",", "-k", "printf '<%s>\\n'", ":::",
	       "a,b", "c\nd");
	cli_done(0);
}

/* :::: and -a read files (a line an item); two files after one :::: are
 * two sources; ::::+ links like :::+; files and lists mix. */
TEST(inputs_files)
{
	char f1[96], f2[96];
	cli_temp(f1, "x\ny\n");
	cli_temp(f2, "1\n2\n3\n");
	EXPECT(NULL, "x\ny\n", 0, "-k", "echo", "::::", f1);
	EXPECT(NULL, "x\ny\n", 0, "-k", "-a", f1, "echo");
	EXPECT(NULL, "x 1\nx 2\nx 3\ny 1\ny 2\ny 3\n", 0, "-k", "echo", "::::", f1, f2);
	EXPECT(NULL, "x 1\nx 2\nx 3\ny 1\ny 2\ny 3\n", 0, "-k", "-a", f1, "-a", f2, "echo");
	EXPECT(NULL, "x 1\ny 2\n", 0, "-k", "echo", "::::", f1, "::::+", f2);
	EXPECT(NULL, "x 1\nx 2\ny 1\ny 2\n", 0, "-k", "echo", "::::", f1, ":::", "1", "2");
	EXPECT(NULL, "a x\na y\n", 0, "-k", "echo", ":::", "a", "::::", f1);
	cli_done(0);
}

/* -0 and -d: other item delimiters. -d understands \t and \0 escapes; a
 * final newline is not special with -d (it stays in the last item). */
TEST(inputs_delimiters)
{
	struct cli_out o;
	const char nul[] = "a b\0c\nd\0e";
	cli_run(nul, sizeof nul - 1, (const char *const[]){"herd", "-0", "-k", "printf '<%s>\\n'", NULL}, &o);
	CHECK_OUT(&o, "<a b>\n<c\nd>\n<e>\n", 0);
	cli_free(&o);
	const char nul2[] = "a\0b";
	cli_run(nul2, sizeof nul2 - 1, (const char *const[]){"herd", "-d", "\\0", "-k", "echo", NULL}, &o);
	CHECK_OUT(&o, "a\nb\n", 0);
	cli_free(&o);
	EXPECT("a:b:c", "a\nb\nc\n", 0, "-d", ":", "-k", "echo");
	EXPECT("a:b:c\n", "<a>\n<b>\n<c\n>\n", 0, "-d", ":", "-k", "printf '<%s>\\n'");
	EXPECT("a\tb\tc", "a\nb\nc\n", 0, "-d", "\\t", "-k", "echo");
	EXPECT("a\tb\tc", "a\nb\nc\n", 0, "-d", "\t", "-k", "echo");
	cli_done(0);
}

/* --colsep splits each item into columns {1} {2}...; {} is the columns
 * joined by a space. The separator is a regular expression. */
TEST(inputs_colsep)
{
	EXPECT("a,b\nc,d\n", "b a\nd c\n", 0, "--colsep", ",", "-k", "echo", "{2}", "{1}");
	EXPECT("a,b,c\n", "cba a b c\n", 0, "--colsep", ",", "-k", "echo", "{3}{2}{1}", "{}");
	EXPECT("a,  b\n", "b\n", 0, "--colsep", ", *", "-k", "echo", "{2}");
	EXPECT("a\tb\n", "b\n", 0, "--colsep", "\\t", "-k", "echo", "{2}");
	EXPECT(NULL, "a\nc\n", 0, "--colsep", ",", "-k", "echo", "{1}", ":::", "a,b", "c,d");
	cli_done(0);
}

/* -n N: up to N items a job; -N N the same, {1}..{N} past the last item
 * being empty; -N0: no item, one job per item all the same. */
TEST(inputs_max_args)
{
	EXPECT(NULL, "a b\nc d\ne\n", 0, "-k", "-n", "2", "echo", ":::", "a", "b", "c", "d", "e");
	EXPECT(NULL, "a-b\nc-d\ne-\n", 0, "-k", "-N", "2", "echo", "{1}-{2}", ":::", "a", "b", "c", "d", "e");
	EXPECT(NULL, "a-b\nc-d\ne-\n", 0, "-k", "-n", "2", "echo", "{1}-{2}", ":::", "a", "b", "c", "d", "e");
	EXPECT(NULL, "hi\nhi\nhi\n", 0, "-k", "-N0", "echo", "hi", ":::", "a", "b", "c");
	EXPECT("1\n2\n", "hi\nhi\n", 0, "-k", "-N0", "echo", "hi");
	/* {} in a word with several items: the word holds them all. */
	EXPECT(NULL, "xa by\nxcy\n", 0, "-k", "-n2", "echo", "x{}y", ":::", "a", "b", "c");
	cli_done(0);
}

/* Empty lines are items (an empty {}), unless -r; no input at all runs
 * nothing and exits 0. */
TEST(inputs_empty)
{
	EXPECT("a\n\nb\n", "xay\nxy\nxby\n", 0, "-k", "echo", "x{}y");
	EXPECT("a\n\nb\n", "xay\nxby\n", 0, "-k", "-r", "echo", "x{}y");
	EXPECT("\n\n", "", 0, "-k", "-r", "echo", "x{}y");
	EXPECT("", "", 0, "-k", "echo", "x{}y");
	EXPECT(NULL, "", 0, "-k", "echo", "x{}y");
	EXPECT(NULL, "", 0, "-k", "echo", "x{}y", ":::");
	cli_done(0);
}

/* Replacement strings ------------------------------------------------ */

/* {} {.} {/} {//} {/.}: parallel removes the extension with
 * s:\.[^/.]*$:: (so .hidden has none left, and a.b/ keeps its dot),
 * {/} with s:.*\/:: (empty after a final slash) and {//} is Perl's
 * dirname ("." without a slash; a/b/ gives a). */
TEST(repl_paths)
{
	EXPECT(NULL,
	       "dir/sub/file.tar.gz:dir/sub/file.tar:file.tar.gz:dir/sub:file.tar\n"
	       "file:file:file:.:file\n"
	       ".hidden::.hidden:.:\n"
	       "/x:/x:x:/:x\n"
	       "a/b/:a/b/::a:\n"
	       "a.b/c:a.b/c:c:a.b:c\n"
	       "./f.x:./f:f.x:.:f\n"
	       "../y.z:../y:y.z:..:y\n"
	       "a.b/:a.b/::.:\n"
	       "x.:x:x.:.:x\n",
	       0, "-k", "echo", "{}:{.}:{/}:{//}:{/.}", ":::", "dir/sub/file.tar.gz", "file",
	       ".hidden", "/x", "a/b/", "a.b/c", "./f.x", "../y.z", "a.b/", "x.");
	cli_done(0);
}

/* Positional strings, with the same modifiers. */
TEST(repl_positional)
{
	EXPECT(NULL, "dir/a.x:/p/q.tar.gz:dir/a:q.tar.gz:dir:a:q.tar:/p\n", 0,
	       "-k", "echo", "{1}:{2}:{1.}:{2/}:{1//}:{1/.}:{2/.}:{2//}",
	       ":::", "dir/a.x", ":::", "/p/q.tar.gz");
	EXPECT(NULL, "1 a\n2 a\n1 b\n2 b\n", 0, "-k", "echo", "{2}", "{1}", ":::", "a", "b", ":::", "1", "2");
	cli_done(0);
}

/* {#} is the job's number, {%} its slot (always 1 with -j1). */
TEST(repl_seq_slot)
{
	EXPECT(NULL, "1 1 a\n2 1 b\n3 1 c\n", 0, "-k", "-j1", "echo", "{#}", "{%}", "{}", ":::", "a", "b", "c");
	EXPECT(NULL, "1\n2\n3\n4\n", 0, "-k", "-j2", "echo", "{#}", ":::", "a", "b", "c", "d");
	cli_done(0);
}

/* -I names the replacement string instead of {} (which is then text);
 * with no replacement string in the command the items are appended. */
TEST(repl_custom_and_appended)
{
	EXPECT(NULL, "pre-a-post {}\npre-b-post {}\n", 0, "-k", "-I", "XX", "echo", "pre-XX-post", "{}",
	       ":::", "a", "b");
	EXPECT(NULL, "pre a\npre b\n", 0, "-k", "echo", "pre", ":::", "a", "b");
	EXPECT(NULL, "pre a 1\npre a 2\npre b 1\npre b 2\n", 0, "-k", "echo", "pre", ":::", "a", "b",
	       ":::", "1", "2");
	cli_done(0);
}

/* When the command's first word (up to a space or =) holds a replacement
 * string, parallel quotes none of the values: the item is shell text (as
 * with no command at all, where the items are the commands). A={} is an
 * assignment, not a command word: quoted. */
TEST(repl_unquoted_command)
{
	EXPECT(NULL, "a\nb\n", 0, "-k", "{}", ":::", "echo a;echo b");
	EXPECT(NULL, "a\nb\n", 0, "-k", ":::", "echo a", "echo b");
	EXPECT(NULL, "a b\n", 0, "{1}", "{2}", ":::", "echo", ":::", "a  b");
	EXPECT(NULL, "echo a;b x\n", 0, "--dry-run", "{} x", ":::", "echo a;b");
	EXPECT(NULL, "a;b echo c d\n", 0, "--dry-run", "{1}", "echo", "{2}", ":::", "a;b", ":::", "c d");
	EXPECT(NULL, "a  b\n", 0, "A={}; echo \"$A\"", ":::", "a  b");
	EXPECT(NULL, "A='a  b'; echo \"$A\"\n", 0, "--dry-run", "A={}; echo \"$A\"", ":::", "a  b");
	cli_done(0);
}

/* --tag prefixes each line (stderr's too) with the item(s), joined by
 * spaces, and a tab; --tagstring with what it expands to. A last line
 * without a newline gets none. */
TEST(repl_tag)
{
	EXPECT(NULL, "a\thi a\nb\thi b\n", 0, "-k", "--tag", "echo", "hi", ":::", "a", "b");
	EXPECT(NULL, "a 1\thi a 1\na 2\thi a 2\n", 0, "-k", "--tag", "echo", "hi", ":::", "a", ":::", "1", "2");
	EXPECT(NULL, "<a>\thi a\n<b>\thi b\n", 0, "-k", "--tagstring", "<{}>", "echo", "hi", ":::", "a", "b");
	EXPECT(NULL, "1-a\toa\n1-a\tpa\n2-b\tob\n2-b\tpb\n", 0, "-k", "--tagstring", "{#}-{}",
	       "echo o{}; echo p{}", ":::", "a", "b");
	EXPECT(NULL, "a\txab\txb", 0, "-k", "--tag", "printf x{}", ":::", "a", "b");
	struct cli_out o;
	RUN(&o, NULL, "-k", "--tag", "echo o{}; echo e{} >&2", ":::", "1", "2");
	CHECK_OUT(&o, "1\to1\n2\to2\n", 0);
	CHECK_RUN(&o, strcmp(o.err, "1\te1\n2\te2\n") == 0);
	cli_free(&o);
	cli_done(0);
}

/* Quoting ------------------------------------------------------------ */

/* Items are never interpreted by the shell: every byte but NUL, alone
 * or after another, and all of them in one item, pass through
 * `printf %s {}` intact (items from stdin with -0). */
TEST(quote_bytes_stdin)
{
	char in[1024], want[1024];
	size_t n = 0, w = 0;
	struct cli_out o;
	const char *const argv[] = {"herd", "-0", "-k", "printf", "%s", "{}", NULL};
	for (int b = 1; b < 256; b++) {
		in[n++] = 'x';
		in[n++] = (char)b;
		in[n++] = 0;
		want[w++] = 'x';
		want[w++] = (char)b;
	}
	cli_run(in, n, argv, &o);
	CHECK_OUT_LEN(&o, want, w, 0);
	cli_free(&o);

	for (n = 0, w = 0; n < 255 * 2; n += 2, w++) {
		in[n] = (char)(w + 1);
		in[n + 1] = 0;
		want[w] = (char)(w + 1);
	}
	cli_run(in, n, argv, &o);
	CHECK_OUT_LEN(&o, want, w, 0);
	cli_free(&o);

	for (n = 0; n < 255; n++)
		in[n] = want[n] = (char)(n + 1);
	in[n] = 0;
	cli_run(in, n + 1, argv, &o);
	CHECK_OUT_LEN(&o, want, n, 0);
	cli_free(&o);
	cli_done(0);
}

/* The same with the items on the command line: all 255 bytes in one
 * item (with -0, or without the newline, which would split it). */
TEST(quote_bytes_args)
{
	char all[256], want[256 * 3];
	for (int i = 0; i < 255; i++)
		all[i] = (char)(i + 1);
	all[255] = 0;
	struct cli_out o;
	cli_run(NULL, 0, (const char *const[]){"herd", "-0", "-k", "printf", "%s", "{}", ":::", all, NULL}, &o);
	CHECK_OUT_LEN(&o, all, 255, 0);
	cli_free(&o);

	/* Without -0: "x<b>y" for each byte b but newline, one job each. */
	static char items[255][4];
	const char *argv[300] = {"herd", "-k", "printf", "%s", "{}", ":::"};
	int argc = 6;
	size_t w = 0;
	for (int b = 1; b < 256; b++) {
		if (b == '\n')
			continue;
		snprintf(items[b - 1], 4, "x%cy", b);
		argv[argc++] = items[b - 1];
		memcpy(want + w, items[b - 1], 3);
		w += 3;
	}
	argv[argc] = NULL;
	cli_run(NULL, 0, argv, &o);
	CHECK_OUT_LEN(&o, want, w, 0);
	cli_free(&o);
	cli_done(0);
}

/* Quotes, $, globs, ;, |, &, spaces, command substitutions and (with -0)
 * newlines in items stay text. */
TEST(quote_shell_chars)
{
	EXPECT(NULL, "it's\na\"b\n$HOME\n*\na;b\na|b\na&b\n  two  spaces \n$(echo x)\n`echo y`\n", 0,
	       "-k", "printf '%s\\n'", ":::", "it's", "a\"b", "$HOME", "*", "a;b", "a|b", "a&b",
	       "  two  spaces ", "$(echo x)", "`echo y`");
	const char in[] = "a\nb\0c d\0";
	struct cli_out o;
	cli_run(in, sizeof in - 1, (const char *const[]){"herd", "-0", "-k", "printf '[%s]\\n'", NULL}, &o);
	CHECK_OUT(&o, "[a\nb]\n[c d]\n", 0);
	cli_free(&o);
	cli_done(0);
}

/* The command itself is shell text: pipes, lists, exit (an item appended
 * to `exit 3` makes it `exit 3 x`: too many arguments, status 1). */
TEST(quote_shell_syntax)
{
	EXPECT(NULL, "bbb\n", 0, "-k", "echo {} | tr a b", ":::", "aaa");
	EXPECT(NULL, "bbb\n", 0, "-k", "echo", "{}", "|", "tr", "a", "b", ":::", "aaa");
	EXPECT(NULL, "a\nb x\n", 0, "-k", "echo a; echo b", ":::", "x");
	EXPECT(NULL, "", 1, "exit {}", ":::", "3");
	EXPECT(NULL, "", 1, "exit 3", ":::", "x");
	cli_done(0);
}

/* -q quotes the command's words, so shell syntax in them is text. */
TEST(quote_q)
{
	EXPECT(NULL, "a;b x\n", 0, "-q", "echo", "a;b", ":::", "x");
	EXPECT(NULL, "a b|c'd\na b|$x\n", 0, "-k", "-q", "printf", "%s|%s\\n", "a b", "{}", ":::", "c'd", "$x");
	EXPECT(NULL, "[a  b]\n[*]\n", 0, "-k", "-q", "sh", "-c", "echo \"[$1]\"", "sh", "{}", ":::", "a  b", "*");
	cli_done(0);
}

/* --dry-run prints the commands, items quoted as parallel quotes them:
 * bare if only [-_.+/a-zA-Z0-9], else in '', a ' as '"'"' (and no empty
 * '' left at either end). Nothing runs. */
TEST(quote_dry_run)
{
	EXPECT(NULL,
	       "echo 'a b'\n"
	       "echo 'c'\"'\"'d'\n"
	       "echo e\n"
	       "echo 'f\"g'\n"
	       "echo '$x'\n"
	       "echo 'h*'\n"
	       "echo ''\n"
	       "echo a.b/c-d_e+f\n"
	       "echo '~'\n"
	       "echo 'x=y'\n"
	       "echo '@'\n"
	       "echo ','\n"
	       "echo ':'\n"
	       "echo '%'\n"
	       "echo '#a'\n"
	       "echo \"'\"'a'\n"
	       "echo 'a'\"'\"\n"
	       "echo \"'\"\n"
	       "echo 'a\\b'\n"
	       "echo A-Z_09\n",
	       0, "-k", "--dry-run", "echo", ":::", "a b", "c'd", "e", "f\"g", "$x", "h*", "",
	       "a.b/c-d_e+f", "~", "x=y", "@", ",", ":", "%", "#a", "'a", "a'", "'", "a\\b", "A-Z_09");
	EXPECT(NULL, "echo 'a b' x'a b'y\n", 0, "--dry-run", "echo", "{}", "x{}y", ":::", "a b");
	EXPECT(NULL, "echo 'a b' 'c'\"'\"'d'\n", 0, "--dry-run", "echo", "{1}", "{2}", ":::", "a b", ":::", "c'd");
	EXPECT(NULL, "echo 'a b' | tr a b\n", 0, "--dry-run", "echo {} | tr a b", ":::", "a b");
	EXPECT(NULL, "echo 'a b' 'c d'\necho e\n", 0, "-k", "--dry-run", "-n2", "echo", ":::", "a b", "c d", "e");
	EXPECT(NULL, "echo x'a b' 'c d'y\necho xey\n", 0, "-k", "--dry-run", "-n2", "echo", "x{}y",
	       ":::", "a b", "c d", "e");
	EXPECT(NULL, "echo 'a;b' x\n", 0, "--dry-run", "-q", "echo", "a;b", ":::", "x");
	EXPECT(NULL, "printf '%s|%s\\n' 'a b' 'c'\"'\"'d'\n", 0, "--dry-run", "-q", "printf", "%s|%s\\n",
	       "a b", "{}", ":::", "c'd");
	EXPECT(NULL, "echo 'a\nb'\n", 0, "-0", "--dry-run", "echo", ":::", "a\nb");
	char flag[96], want[128];
	cli_temp_name(flag);
	snprintf(want, sizeof want, "touch %s 1\n", flag);
	EXPECT(NULL, want, 0, "--dry-run", "touch", flag, ":::", "1");
	CHECK(access(flag, F_OK) < 0);
	cli_done(0);
}

/* -t prints each command on stderr as it starts it (with -j1 before the
 * job's own stderr, which comes when the job ends). */
TEST(verbose_t)
{
	struct cli_out o;
	RUN(&o, NULL, "-t", "-k", "echo", ":::", "a b", "c");
	CHECK_OUT(&o, "a b\nc\n", 0);
	CHECK_RUN(&o, strcmp(o.err, "echo 'a b'\necho c\n") == 0);
	cli_free(&o);
	RUN(&o, NULL, "-t", "-j1", "-k", "echo out{} >&2", ":::", "1", "2");
	CHECK_OUT(&o, "", 0);
	CHECK_RUN(&o, strcmp(o.err, "echo out1 >&2\nout1\necho out2 >&2\nout2\n") == 0);
	cli_free(&o);
	cli_done(0);
}

/* Exit status -------------------------------------------------------- */

/* 0 if all jobs succeed, else the number of jobs that failed, 101 for
 * more than 100. One job failing with 3 gives 1, not 3. A job killed by
 * a signal failed. */
TEST(exit_counts)
{
	EXPECT(NULL, "", 0, "true", ":::", "1", "2", "3");
	EXPECT(NULL, "", 1, "exit {}", ":::", "3");
	EXPECT(NULL, "", 2, "-k", "exit {}", ":::", "0", "3", "4", "0");
	EXPECT(NULL, "", 1, "kill -TERM $$ {}", ":::", "1");
	char in[1024] = "";
	for (int i = 1; i <= 150; i++)
		snprintf(in + strlen(in), sizeof in - strlen(in), "%d\n", i);
	EXPECT(in, "", 101, "-j8", "exit 1 {}");
	EXPECT(in, "", 100, "-j8", "test {} -gt 100");
	cli_done(0);
}

/* --halt now,fail=1 and soon,fail=1 stop at the first failure; the exit
 * status is that job's (128 + the signal if a signal killed it). */
TEST(halt_fail_one)
{
	EXPECT(NULL, "0\n0\n3\n", 3, "-j1", "-k", "--halt", "now,fail=1", "echo {}; exit {}",
	       ":::", "0", "0", "3", "4", "0");
	EXPECT(NULL, "0\n0\n3\n", 3, "-j1", "-k", "--halt", "soon,fail=1", "echo {}; exit {}",
	       ":::", "0", "0", "3", "4", "0");
	EXPECT(NULL, "", 143, "-j1", "--halt", "now,fail=1", "kill -TERM $$; echo {}", ":::", "1", "2");
	/* The short forms: 1 is soon,fail=1, 2 now,fail=1. */
	EXPECT(NULL, "0\n3\n", 3, "-j1", "-k", "--halt", "1", "echo {}; exit {}", ":::", "0", "3", "4");
	EXPECT(NULL, "0\n3\n", 3, "-j1", "-k", "--halt", "2", "echo {}; exit {}", ":::", "0", "3", "4");
	cli_done(0);
}

/* success=N stops after N successes, with status 0; done=N after N jobs
 * (the status then counts the failures). */
TEST(halt_success_done)
{
	EXPECT(NULL, "2\n0\n", 0, "-j1", "-k", "--halt", "now,success=1", "echo {}; exit {}",
	       ":::", "2", "0", "3", "4", "0");
	EXPECT(NULL, "2\n5\n0\n", 0, "-j1", "-k", "--halt", "soon,success=1", "echo {}; exit {}",
	       ":::", "2", "5", "0", "3", "4", "0");
	EXPECT(NULL, "0\n3\n", 1, "-j1", "-k", "--halt", "now,done=2", "echo {}; exit {}",
	       ":::", "0", "3", "4");
	cli_done(0);
}

/*
 * fail=N (N > 1) stops after N failures with status N (the failures so
 * far, at most 101). fail=P% stops once the failures reach P% of ALL the
 * jobs (the input is read whole first), with status ceil(100 * failures /
 * jobs); if that threshold is one job, the status is that job's. A run
 * that never reaches the threshold ends with ceil(100 * failures /
 * jobs started), not the count of failures.
 */
TEST(halt_count_and_percent)
{
	EXPECT(NULL, "0\n3\n0\n4\n", 2, "-j1", "-k", "--halt", "soon,fail=2", "echo {}; exit {}",
	       ":::", "0", "3", "0", "4", "0", "5", "0");
	EXPECT(NULL, "0\n3\n0\n4\n", 2, "-j1", "-k", "--halt", "now,fail=2", "echo {}; exit {}",
	       ":::", "0", "3", "0", "4", "0", "5", "0");
	EXPECT(NULL, "0\n3\n0\n4\n", 20, "-j1", "-k", "--halt", "soon,fail=20%", "echo {}; exit {}",
	       ":::", "0", "3", "0", "4", "0", "5", "0", "0", "0", "0");
	EXPECT(NULL, "3\n0\n0\n4\n", 20, "-j1", "-k", "--halt", "now,fail=20%", "echo {}; exit {}",
	       ":::", "3", "0", "0", "4", "0", "5", "0", "0", "0", "0");
	EXPECT(NULL, "0\n3\n0\n4\n0\n5\n0\n0\n0\n0\n", 30, "-j1", "-k", "--halt", "soon,fail=50%",
	       "echo {}; exit {}", ":::", "0", "3", "0", "4", "0", "5", "0", "0", "0", "0");
	EXPECT(NULL, "0\n3\n", 3, "-j1", "-k", "--halt", "soon,fail=10%", "echo {}; exit {}",
	       ":::", "0", "3", "0", "0", "0", "0", "0", "0", "0", "0");
	/* From stdin too: the percentage is of all the lines. */
	EXPECT("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", "1\n2\n", 20, "-j1", "-k", "--halt", "soon,fail=20%",
	       "echo {}; exit $(({} % 3))");
	cli_done(0);
}

/* now kills the running jobs at once (their output is lost, and with -k
 * so is the failed job's, held back for the order); soon lets them end
 * but starts no other. */
TEST(halt_now_and_soon)
{
	struct cli_out o;
	RUN(&o, NULL, "-j2", "--halt", "now,fail=1", "sleep {}; echo {}; exit 2", ":::", "10", "0.2");
	CHECK_OUT(&o, "0.2\n", 2);
	CHECK_RUN(&o, o.secs < 8);
	cli_free(&o);
	RUN(&o, NULL, "-k", "-j2", "--halt", "now,fail=1", "sleep {}; echo {}; exit 2", ":::", "10", "0.2");
	CHECK_OUT(&o, "", 2);
	CHECK_RUN(&o, o.secs < 8);
	cli_free(&o);
	RUN(&o, NULL, "-k", "-j2", "--halt", "soon,fail=1", "sleep {}; echo {}; exit 2", ":::", "1", "0.2", "0.1");
	CHECK_OUT(&o, "1\n0.2\n", 2);
	CHECK_RUN(&o, o.secs >= 0.9);
	cli_free(&o);
	cli_done(2 * HERD_SEC);
}

/* The joblog ----------------------------------------------------------- */

#define JL_HEADER "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"

struct jl_row {
	long seq, send, receive, exitval, sig;
	char host[16], command[256];
	double start, runtime;
};

/* Parses a joblog's lines after the header (if has_header) into rows;
 * fails on a line that is not 9 tab-separated fields with numbers where
 * numbers belong (the times may be padded with spaces). */
static int jl_parse(const char *path, bool has_header, struct jl_row *rows, int max)
{
	char *text = cli_slurp(path);
	if (!text)
		fprintf(stderr, "no joblog %s\n", path);
	CHECK(text != NULL);
	char *p = text;
	if (has_header) {
		if (strncmp(p, JL_HEADER, strlen(JL_HEADER)) != 0)
			cli_show("joblog without its header", text, strlen(text));
		CHECK(strncmp(p, JL_HEADER, strlen(JL_HEADER)) == 0);
		p += strlen(JL_HEADER);
	}
	int n = 0;
	for (char *nl; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		CHECK(nl != NULL);
		*nl = 0;
		CHECK(n < max);
		struct jl_row *r = &rows[n++];
		char *f[9], *save = NULL, *end;
		int k = 0;
		for (char *s = p;; s = save) {
			save = strchr(s, '\t');
			if (k < 9)
				f[k] = s;
			k++;
			if (!save || k == 9)
				break;
			*save++ = 0;
		}
		if (k != 9)
			fprintf(stderr, "joblog line with %d fields: %s\n", k, p);
		CHECK(k == 9);
		long *num[] = {&r->seq, NULL, NULL, NULL, &r->send, &r->receive, &r->exitval, &r->sig};
		for (int i = 0; i < 8; i++) {
			if (i == 1) {
				snprintf(r->host, sizeof r->host, "%s", f[1]);
			} else if (i == 2 || i == 3) {
				double v = strtod(f[i], &end);
				CHECK(end != f[i] && *end == 0 && isfinite(v) && v >= 0);
				*(i == 2 ? &r->start : &r->runtime) = v;
			} else {
				*num[i] = strtol(f[i], &end, 10);
				CHECK(end != f[i] && *end == 0);
			}
		}
		snprintf(r->command, sizeof r->command, "%s", f[8]);
	}
	free(text);
	return n;
}

/* Checks one row: host ":", Send 0, and the given fields. */
static void jl_check(const struct jl_row *r, long seq, long receive, long exitval, long sig,
		     const char *command)
{
	if (r->seq != seq || strcmp(r->host, ":") != 0 || r->send != 0 || r->receive != receive ||
	    r->exitval != exitval || r->sig != sig || strcmp(r->command, command) != 0) {
		fprintf(stderr, "joblog row %ld\t%s\t%ld\t%ld\t%ld\t%ld\t%s\n"
			"expected   %ld\t:\t0\t%ld\t%ld\t%ld\t%s\n", r->seq, r->host, r->send,
			r->receive, r->exitval, r->sig, r->command, seq, receive, exitval, sig, command);
		exit(1);
	}
}

/* --joblog FILE: a header, then a line per job as it ends: Seq, Host
 * ":", Starttime (s.ms), JobRuntime (%10.3f), Send 0, Receive (bytes of
 * stdout, not stderr), Exitval, Signal, the command as --dry-run shows
 * it. A job killed by a signal: Exitval 0, Signal the signal. */
TEST(joblog_format)
{
	char jl[96];
	struct jl_row r[8];
	cli_temp_name(jl);
	EXPECT(NULL, "0\n1\n2\n", 2, "-k", "--joblog", jl, "echo {}; exit {}", ":::", "0", "1", "2");
	CHECK_EQ(jl_parse(jl, true, r, 8), 3);
	/* Sorted by Seq (lines are written in the order jobs end). */
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			if (r[j].seq == i + 1) {
				char cmd[64];
				snprintf(cmd, sizeof cmd, "echo %d; exit %d", i, i);
				jl_check(&r[j], i + 1, 2, i, 0, cmd);
			}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	CHECK(fabs(r[0].start - (double)now.tv_sec) < 60);
	CHECK(r[0].runtime < 30);

	EXPECT(NULL, "12345\n", 0, "--joblog", jl, "echo 12345; echo abc >&2", ":::", "x");
	CHECK_EQ(jl_parse(jl, true, r, 8), 1);
	jl_check(&r[0], 1, 6, 0, 0, "echo 12345; echo abc >&2 x");

	EXPECT(NULL, "", 1, "--joblog", jl, "kill -TERM $$", ":::", "x");
	CHECK_EQ(jl_parse(jl, true, r, 8), 1);
	jl_check(&r[0], 1, 0, 0, 15, "kill -TERM $$ x");

	EXPECT(NULL, "a b\nc'd\n", 0, "-k", "-j1", "--joblog", jl, "echo", ":::", "a b", "c'd");
	CHECK_EQ(jl_parse(jl, true, r, 8), 2);
	jl_check(&r[0], 1, 4, 0, 0, "echo 'a b'");
	jl_check(&r[1], 2, 4, 0, 0, "echo 'c'\"'\"'d'");
	cli_done(0);
}

/* --joblog +FILE appends (no second header); to a file that does not
 * exist yet it writes no header at all. */
TEST(joblog_append)
{
	char jl[96], plus[100];
	struct jl_row r[8];
	cli_temp_name(jl);
	snprintf(plus, sizeof plus, "+%s", jl);
	EXPECT(NULL, "0\n1\n", 1, "-k", "-j1", "--joblog", jl, "echo {}; exit {}", ":::", "0", "1");
	EXPECT(NULL, "0\n3\n", 1, "-k", "-j1", "--joblog", plus, "echo {}; exit {}", ":::", "0", "3");
	CHECK_EQ(jl_parse(jl, true, r, 8), 4);
	jl_check(&r[0], 1, 2, 0, 0, "echo 0; exit 0");
	jl_check(&r[1], 2, 2, 1, 0, "echo 1; exit 1");
	jl_check(&r[2], 1, 2, 0, 0, "echo 0; exit 0");
	jl_check(&r[3], 2, 2, 3, 0, "echo 3; exit 3");
	unlink(jl);
	EXPECT(NULL, "a\n", 0, "--joblog", plus, "echo", ":::", "a");
	CHECK_EQ(jl_parse(jl, false, r, 8), 1);
	jl_check(&r[0], 1, 2, 0, 0, "echo a");
	cli_done(0);
}

/* --resume skips the jobs whose Seq the joblog has, failed or not; the
 * exit status counts the failures of this run only. */
TEST(joblog_resume)
{
	char jl[96];
	struct jl_row r[16];
	cli_temp_name(jl);
	EXPECT(NULL, "0\n1\n2\n0\n", 2, "-k", "-j1", "--joblog", jl, "echo {}; exit {}", ":::", "0", "1", "2", "0");
	EXPECT(NULL, "5\n6\n", 2, "-k", "-j1", "--resume", "--joblog", jl, "echo {}; exit {}",
	       ":::", "0", "1", "2", "0", "5", "6");
	EXPECT(NULL, "", 0, "-k", "-j1", "--resume", "--joblog", jl, "echo {}; exit {}",
	       ":::", "0", "1", "2", "0", "5", "6");
	CHECK_EQ(jl_parse(jl, true, r, 16), 6);
	jl_check(&r[4], 5, 2, 5, 0, "echo 5; exit 5");
	/* Only Seq counts: the command may change. */
	EXPECT(NULL, "new7\n", 0, "-k", "-j1", "--resume", "--joblog", jl, "echo new{}",
	       ":::", "0", "1", "2", "0", "5", "6", "7");
	cli_done(0);
}

/* --resume-failed reruns the jobs the joblog has as failed (by Seq, with
 * today's command and arguments), then the ones it has not. */
TEST(joblog_resume_failed)
{
	char jl[96];
	struct jl_row r[16];
	cli_temp_name(jl);
	EXPECT(NULL, "0\n1\n2\n0\n", 2, "-k", "-j1", "--joblog", jl, "echo {}; exit {}", ":::", "0", "1", "2", "0");
	EXPECT(NULL, "1\n2\n5\n", 3, "-k", "-j1", "--resume-failed", "--joblog", jl, "echo {}; exit {}",
	       ":::", "0", "1", "2", "0", "5");
	CHECK_EQ(jl_parse(jl, true, r, 16), 7);
	jl_check(&r[4], 2, 2, 1, 0, "echo 1; exit 1");
	jl_check(&r[5], 3, 2, 2, 0, "echo 2; exit 2");
	jl_check(&r[6], 5, 2, 5, 0, "echo 5; exit 5");
	/* The last line of a Seq counts: here they all failed again. */
	EXPECT(NULL, "ok1\nok2\nok5\n", 0, "-k", "-j1", "--resume-failed", "--joblog", jl, "echo ok{}",
	       ":::", "0", "1", "2", "0", "5");
	EXPECT(NULL, "", 0, "-k", "-j1", "--resume-failed", "--joblog", jl, "echo ok{}",
	       ":::", "0", "1", "2", "0", "5");
	cli_done(0);
}

/* --retry-failed reruns the failed jobs of the joblog with the command
 * the joblog has: the command line's command and inputs are ignored (and
 * may be absent). A Seq's last line counts. */
TEST(joblog_retry_failed)
{
	char jl[96], flag[96], base[96], cmd[200];
	cli_temp_name(jl);
	cli_temp_name(base);
	cli_flag(flag, base, "2");
	snprintf(cmd, sizeof cmd, "echo {}; test -e %s.{}", base);
	EXPECT(NULL, "1\n2\n3\n", 3, "-k", "-j1", "--joblog", jl, cmd, ":::", "1", "2", "3");
	int fd = open(flag, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	close(fd);
	EXPECT(NULL, "1\n2\n3\n", 2, "-k", "-j1", "--retry-failed", "--joblog", jl);
	EXPECT(NULL, "1\n3\n", 2, "-k", "-j1", "--retry-failed", "--joblog", jl, "this", "part", "is", "ignored");
	struct jl_row r[16];
	CHECK_EQ(jl_parse(jl, true, r, 16), 8);
	char want[200];
	snprintf(want, sizeof want, "echo 2; test -e %s.2", base);
	jl_check(&r[4], 2, 2, 0, 0, want);
	cli_done(0);
}

/* Errors ----------------------------------------------------------------- */

/* A command that cannot be found fails that job with 127 (and a message
 * naming it); the other jobs run. */
TEST(missing_command)
{
	char jl[96];
	struct jl_row r[4];
	struct cli_out o;
	RUN(&o, NULL, "-k", "nonexistent-cmd-xyz", ":::", "1");
	CHECK_OUT(&o, "", 1);
	CHECK_RUN(&o, strstr(o.err, "nonexistent-cmd-xyz") != NULL);
	cli_free(&o);
	cli_temp_name(jl);
	RUN(&o, NULL, "-k", "--joblog", jl, "{1}", "{2}", ":::", "echo", "nonexistent-cmd-xyz", ":::", "1");
	CHECK_OUT(&o, "1\n", 1);
	CHECK_RUN(&o, strstr(o.err, "nonexistent-cmd-xyz") != NULL);
	cli_free(&o);
	CHECK_EQ(jl_parse(jl, true, r, 4), 2);
	for (int i = 0; i < 2; i++)
		if (r[i].seq == 2)
			jl_check(&r[i], 2, 0, 127, 0, "nonexistent-cmd-xyz 1");
	cli_done(0);
}

/* [herd] A usage error: one line on stderr, "herd: ...", nothing on
 * stdout, status 255, and no job started (it would create `flag`). */
static void usage_error(const char *const argv[])
{
	char flag[96];
	cli_temp_name(flag);
	const char *av[32];
	int n = 0;
	for (; argv[n]; n++)
		av[n] = strcmp(argv[n], "FLAG") == 0 ? flag : argv[n];
	av[n] = NULL;
	struct cli_out o;
	cli_run(NULL, 0, av, &o);
	CHECK_OUT(&o, "", 255);
	CHECK_RUN(&o, strncmp(o.err, "herd: ", 6) == 0 && cli_lines(o.err) == 1 &&
		  o.err[o.err_len - 1] == '\n');
	CHECK(access(flag, F_OK) < 0);
	cli_free(&o);
}

TEST(bad_usage)
{
	herd_only();
	usage_error((const char *const[]){"herd", "--frobnicate", "touch", "FLAG", ":::", "1", NULL});
	usage_error((const char *const[]){"herd", "touch", "FLAG", ":::", "1", "::::",
					  "/nonexistent/herd-test-file", NULL});
	usage_error((const char *const[]){"herd", "-j", "abc", "touch", "FLAG", ":::", "1", NULL});
	usage_error((const char *const[]){"herd", "--colsep", "[", "touch", "FLAG", ":::", "1", NULL});
	usage_error((const char *const[]){"herd", "--halt", "bogus", "touch", "FLAG", ":::", "1", NULL});
	cli_done(0);
}

/* [herd] --help: the usage on stdout, status 0; --version: a first line
 * "herd <version>". */
TEST(help_version)
{
	herd_only();
	struct cli_out o;
	RUN(&o, NULL, "--help");
	CHECK_RUN(&o, cli_exited(&o, 0) && o.out_len > 0 && strcasestr(o.out, "usage") != NULL);
	cli_free(&o);
	RUN(&o, NULL, "--version");
	CHECK_RUN(&o, cli_exited(&o, 0) && strncmp(o.out, "herd ", 5) == 0);
	cli_free(&o);
	cli_done(0);
}
