# shellcheck shell=sh
# common.sh - what run.sh and cli.sh share; sourced, after `log` is defined.

# rounds X-FILE Y-FILE: the figures of rounds, one per line in each file
# ("-" for a round that gave none), line i of both files being round i.
# Prints five words: the median of the X figures, the median of the Y
# figures, the median of the rounds' ratios X/Y, the worst (largest) of those
# ratios, and the worst (largest) X; "-" for what no round gave. A median of
# an even count is the mean of the middle two; the figures keep the decimals
# they came with, the ratios get two.
rounds() {
	paste "$1" "$2" | awk -F '\t' '
	function sort(a, n,    i, j, t) {
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
				t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
			}
	}
	# The median of a[1..n], with d decimals, or "-".
	function median(a, n, d) {
		if (n == 0) return "-"
		sort(a, n)
		if (n % 2) return sprintf("%.*f", d, a[(n + 1) / 2])
		return sprintf("%.*f", d, (a[n / 2] + a[n / 2 + 1]) / 2)
	}
	function decimals(s) {
		return index(s, ".") ? length(s) - index(s, ".") : 0
	}
	function num(s) { return s != "" && s != "-" }
	{
		if (num($1)) { x[++nx] = $1 + 0; dx = decimals($1) }
		if (num($2)) { y[++ny] = $2 + 0; dy = decimals($2) }
		if (num($1) && num($2) && $2 + 0 != 0) r[++nr] = $1 / $2
	}
	END {
		mx = median(x, nx, dx)
		wx = nx ? sprintf("%.*f", dx, x[nx]) : "-"	# x is sorted now
		my = median(y, ny, dy)
		mr = median(r, nr, 2)
		wr = nr ? sprintf("%.2f", r[nr]) : "-"
		print mx, my, mr, wr, wx
	}'
}

# target NAME FIGURE LIMIT [WHAT]: reports on stderr whether FIGURE <= LIMIT;
# WHAT says which figure it is ("worst").
target() {
	[ "$2" = - ] && return
	what=${4:+$4 }
	if awk -v v="$2" -v l="$3" 'BEGIN { exit !(v + 0 <= l + 0) }'; then
		log "target $1: $what$2 <= $3: met"
	else
		log "target $1: $what$2 > $3: MISSED"
	fi
}
