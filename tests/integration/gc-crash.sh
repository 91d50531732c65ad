#!/bin/bash
# kill -9 of prune at random moments, 30 times, over a store of 2,000
# snapshots and blobs: afterwards check (without repair) finds no record
# without its data and counters equal to a recount; only leftovers the next
# open clears (trash, data without a record).
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root

STORE="$TEST_TMP/store"
"$GC_FIXTURE" "$STORE" base 1000 1000

killed=0
for round in $(seq 1 30); do
	"$SNAPCTL" --root "$STORE" prune >/dev/null &  # the process itself, so kill -9 hits it
	pid=$!
	sleep "0.$(printf '%03d' $(( RANDOM % 150 )))"
	kill -9 $pid 2>/dev/null && killed=$((killed + 1)) || true
	wait $pid 2>/dev/null || true
	report=$(snap check --json) || true
	bad=$(echo "$report" | json '[p["kind"]+" "+p["what"]+": "+p["detail"] for p in d["problems"] if p["kind"] not in ("trash", "orphan-data", "dead-lease")]')
	[ "$bad" = "[]" ] || fail "round $round: $bad"
	echo "$report" | json 'd["consistent"]' | grep -c >/dev/null True || fail "round $round: check says inconsistent"
	# The next open clears the leftovers.
	snap df >/dev/null
	left=$(snap check --json | json 'len(d["problems"])')
	[ "$left" = 0 ] || fail "round $round: $left problems after the next open: $(snap check)"
	# Keep material for the next round.
	"$GC_FIXTURE" "$STORE" "r$round" 70 70
done
pass "30 prunes, $killed killed mid-way; never a record without its data, counters exact"
