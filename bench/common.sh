# common.sh - what run.sh and cli.sh share; sourced, after `log` is defined.

# ratio X Y: X / Y to two decimals, or "-".
ratio() {
	awk -v x="$1" -v y="$2" 'BEGIN {
		if (x == "-" || y == "-" || y + 0 == 0) print "-"
		else printf "%.2f\n", x / y
	}'
}

# target NAME FIGURE LIMIT: reports on stderr whether FIGURE <= LIMIT.
target() {
	[ "$2" = - ] && return
	if awk -v v="$2" -v l="$3" 'BEGIN { exit !(v + 0 <= l + 0) }'; then
		log "target $1: $2 <= $3: met"
	else
		log "target $1: $2 > $3: MISSED"
	fi
}
