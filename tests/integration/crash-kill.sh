#!/bin/bash
# Crash safety: kill -9 snapctl at random moments while it prepares a large
# native snapshot (copying a big tree) and while it commits; after the next
# open cleans up, every record points at a complete folder and every folder
# under snapshots/ has a record.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root

STORE="$TEST_TMP/store"
"$SNAPCTL" --root "$STORE" --driver native snapshot prepare base-work
mkdir -p "$TEST_TMP/mnt"
snap snapshot mount base-work "$TEST_TMP/mnt"
# A tree big enough that copying it takes a while: 2,000 files, ~60 MiB.
for d in $(seq 1 20); do
	mkdir -p "$TEST_TMP/mnt/d$d"
	for f in $(seq 1 100); do
		head -c $(( (f * 617) % 60000 + 1000 )) /dev/urandom >"$TEST_TMP/mnt/d$d/f$f"
	done
done
umount "$TEST_TMP/mnt"
snap snapshot commit base base-work
base_count=$(find "$STORE/snapshots/1/fs" | wc -l)
[ "$base_count" -gt 2000 ] || fail "base tree has only $base_count entries"

complete_or_absent() {
	local key=$1 id
	id=$(snap snapshot info "$key" 2>/dev/null | grep -o '"id": [0-9]*' | awk '{print $2}') || true
	[ -n "$id" ] || return 0
	local n
	n=$(find "$STORE/snapshots/$id/fs" | wc -l)
	[ "$n" = "$base_count" ] || fail "snapshot '$key' (id $id) is half-made: $n of $base_count entries"
}

killed=0
for i in $(seq 1 20); do
	# Prepare: copying the tree, killed at a random moment within ~0.4 s.
	"$SNAPCTL" --root "$STORE" snapshot prepare "p$i" base &  # the process itself, so kill -9 hits it
	pid=$!
	sleep "0.$(( RANDOM % 400 + 1 ))" 2>/dev/null || sleep 0.1
	kill -9 "$pid" 2>/dev/null && killed=$((killed + 1)) || true
	wait "$pid" 2>/dev/null || true

	# Commit: measuring and writing the record, killed at a random moment.
	snap snapshot prepare "c$i" base
	"$SNAPCTL" --root "$STORE" snapshot commit "c$i-done" "c$i" &
	pid=$!
	sleep "0.0$(( RANDOM % 60 ))"
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true

	# The next open cleans up; then the invariants must hold.
	check_store_consistent
	complete_or_absent "p$i"
	complete_or_absent "c$i"
	complete_or_absent "c$i-done"
	# Exactly one of c$i and c$i-done exists: a commit is all or nothing.
	a=$(snap snapshot info "c$i" >/dev/null 2>&1 && echo 1 || echo 0)
	b=$(snap snapshot info "c$i-done" >/dev/null 2>&1 && echo 1 || echo 0)
	[ "$((a + b))" = 1 ] || fail "commit of c$i torn: active=$a committed=$b"
done
[ -z "$(ls -A "$STORE/trash")" ] || fail "trash/ not emptied: $(ls -A "$STORE/trash")"
pass "20 rounds, $killed prepares killed mid-way; store consistent"
