#!/bin/bash
# A prune running while another process holds a lease and keeps preparing
# and committing under it: nothing leased disappears, and the other process
# never finds its parent gone.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root

STORE="$TEST_TMP/store"
"$GC_FIXTURE" "$STORE" junk 200 200

builder() {
	local lease=$1 parent="" i
	for i in $(seq 1 150); do
		"$SNAPCTL" --root "$STORE" --lease "$lease" snapshot prepare "build-$i" $parent || return 1
		"$SNAPCTL" --root "$STORE" --lease "$lease" snapshot commit "layer-$i" "build-$i" || return 1
		parent="layer-$i"
	done
}
# The lease lives as long as its holder process (pid and start time).
sleep 600 &
holder=$!
on_exit "kill $holder"
snap lease create --id build --pid $holder >/dev/null
builder build >"$TEST_TMP/builder.log" 2>&1 &
bpid=$!
pruner() {
	while kill -0 "$bpid" 2>/dev/null; do
		"$GC_FIXTURE" "$STORE" "junk$RANDOM" 5 5 || return 1
		snap prune --quiet || return 1
	done
}
pruner >"$TEST_TMP/pruner.log" 2>&1 &
ppid_=$!
bs=0; ps=0
wait $bpid || bs=$?
wait $ppid_ || ps=$?
[ $bs = 0 ] || fail "the builder failed: $(tail -n 3 "$TEST_TMP/builder.log")"
[ $ps = 0 ] || fail "the pruner failed: $(tail -n 3 "$TEST_TMP/pruner.log")"
for i in $(seq 1 150); do
	snap snapshot info "layer-$i" >/dev/null || fail "leased layer-$i disappeared"
done
# Once the holder is gone, the lease protects nothing: the next prune takes it all.
kill $holder
wait $holder 2>/dev/null || true
snap prune --quiet
n=$(snap snapshot ls --json | grep -c '"key"' || true)
[ "$n" = 0 ] || fail "$n snapshots survived once the lease died"
check_store_consistent
pass "150 layers built under a lease while prunes ran; none lost"
