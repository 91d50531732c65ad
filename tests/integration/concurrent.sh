#!/bin/bash
# Concurrency: two processes each prepare and commit 500 snapshots on one
# store at the same time; all 1,000 are present and consistent afterwards.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root

STORE="$TEST_TMP/store"
snap snapshot prepare base-w
snap snapshot commit base base-w

worker() {
	local w=$1 i
	for i in $(seq 1 500); do
		snap snapshot prepare "w$w-$i-a" base || return 1
		snap snapshot commit "w$w-$i" "w$w-$i-a" || return 1
	done
}
worker 1 >"$TEST_TMP/w1.log" 2>&1 &
p1=$!
worker 2 >"$TEST_TMP/w2.log" 2>&1 &
p2=$!
s1=0 s2=0
wait $p1 || s1=$?
wait $p2 || s2=$?
[ $s1 = 0 ] || fail "worker 1 failed: $(tail -n 3 "$TEST_TMP/w1.log")"
[ $s2 = 0 ] || fail "worker 2 failed: $(tail -n 3 "$TEST_TMP/w2.log")"

n=$(snap snapshot ls --kind committed --parent base --json | grep -c '"key"')
[ "$n" = 1000 ] || fail "expected 1000 committed snapshots, found $n"
n=$(snap snapshot ls --kind active --json | grep -c '"key"' || true)
[ "$n" = 0 ] || fail "expected no active snapshots, found $n"
check_store_consistent
# The parent's child index agrees: it cannot be removed.
expect_error 1 "children" snap snapshot rm base
pass "1000 snapshots from two concurrent writers"
