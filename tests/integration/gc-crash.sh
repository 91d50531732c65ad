#!/bin/bash
# kill -9 of prune, spread uniformly over an unkilled prune's duration, each
# round on a fresh copy of a store of 2,000 snapshots and blobs: afterwards
# check (without repair) finds no record without its data and counters
# equal to a recount, every blob left matches its digest, and the next open
# clears the leftovers (trash, data without a record).
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root

PRISTINE="$TEST_TMP/pristine"
STORE="$TEST_TMP/store"
"$GC_FIXTURE" "$PRISTINE" base 1000 1000
fresh() { rm -rf "$STORE"; cp -a "$PRISTINE" "$STORE"; }
ms() { date +%s%3N; }

# An unkilled prune: how long, and what it leaves (nothing collectable).
fresh
t0=$(ms)
snap prune >/dev/null
dur=$(($(ms) - t0))
[ "$dur" -ge 50 ] || fail "a prune took only $dur ms: too quick to kill part-way"
[ "$(snap snapshot ls --json | json 'len(d)')" = 0 ] || fail "the unkilled prune left snapshots"

ROUNDS=30
killed=0 finished=0 midway=0
for round in $(seq 1 $ROUNDS); do
	fresh
	"$SNAPCTL" --root "$STORE" prune >/dev/null &  # the process itself, so kill -9 hits it
	pid=$!
	d=$(( (dur * (round - 1) + RANDOM % dur) / ROUNDS ))
	sleep "$(printf '%d.%03d' $((d / 1000)) $((d % 1000)))"
	kill -9 $pid 2>/dev/null || true
	st=0; wait $pid 2>/dev/null || st=$?
	case $st in
	137) killed=$((killed + 1)) ;;
	0) finished=$((finished + 1)) ;;
	*) fail "round $round: prune exited $st, neither killed nor finished" ;;
	esac
	report=$(snap check --json) || true
	# Evidence of a cut: some records gone but not all, or leftovers check sees.
	left=$(snap snapshot ls --json | json 'len(d)')
	if [ "$st" = 137 ] && { [ "$left" -gt 0 ] && [ "$left" -lt 1000 ] ||
		echo "$report" | json '[p["kind"] for p in d["problems"]]' | grep -Eq 'trash|orphan-data'; }; then
		midway=$((midway + 1))
	fi
	bad=$(echo "$report" | json '[p["kind"]+" "+p["what"]+": "+p["detail"] for p in d["problems"] if p["kind"] not in ("trash", "orphan-data", "dead-lease")]')
	[ "$bad" = "[]" ] || fail "round $round: $bad"
	echo "$report" | json 'd["consistent"]' | grep -c >/dev/null True || fail "round $round: check says inconsistent"
	# Every blob still there is whole.
	for f in "$STORE"/blobs/sha256/*; do
		[ -e "$f" ] || continue
		[ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$(basename "$f")" ] || fail "round $round: blob $(basename "$f") does not match its digest"
	done
	# The next open clears the leftovers.
	snap df >/dev/null
	n=$(snap check --json | json 'len(d["problems"])')
	[ "$n" = 0 ] || fail "round $round: $n problems after the next open: $(snap check)"
done
[ "$killed" -ge $((ROUNDS / 3)) ] || fail "only $killed of $ROUNDS prunes were killed"
[ "$midway" -ge 3 ] || fail "only $midway kills left a prune half done: they did not land mid-prune"
pass "$ROUNDS prunes of 2,000 records killed over [0, $dur ms]: $killed killed ($midway mid-prune), $finished finished; never a record without its data, every blob whole, counters exact"
