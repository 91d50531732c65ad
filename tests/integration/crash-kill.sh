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

# What a snapshot must hold, byte for byte: types, modes, sizes and a sha256
# of every file, as the base has them.
tree_sums() { (cd "$1" && find . -printf '%p %y %m %s\n' | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); }
tree_sums "$STORE/snapshots/1/fs" >"$TEST_TMP/base.sums"
complete_or_absent() {
	local key=$1 id
	id=$(snap snapshot info "$key" 2>/dev/null | grep -o '"id": [0-9]*' | awk '{print $2}') || true
	[ -n "$id" ] || return 0
	tree_sums "$STORE/snapshots/$id/fs" >"$TEST_TMP/got.sums"
	cmp -s "$TEST_TMP/base.sums" "$TEST_TMP/got.sums" ||
		fail "snapshot '$key' (id $id) is not the base's tree: $(diff "$TEST_TMP/base.sums" "$TEST_TMP/got.sums" | head -5)"
}
ms() { date +%s%3N; }
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

# How long each takes when nothing stops it (the fastest of three, caches
# warm as in the rounds): kills are spread over that.
prep_ms=999999 commit_ms=999999
for k in 1 2 3; do
	t0=$(ms); snap snapshot prepare m base; t=$(($(ms) - t0)); [ "$t" -lt "$prep_ms" ] && prep_ms=$t
	t0=$(ms); snap snapshot commit m-done m; t=$(($(ms) - t0)); [ "$t" -lt "$commit_ms" ] && commit_ms=$t
	snap snapshot rm m-done
done
[ "$prep_ms" -ge 20 ] || fail "a prepare took only $prep_ms ms: too quick to kill part-way"
[ "$commit_ms" -ge 1 ] || commit_ms=1

# status PID: 137 killed, 0 finished, anything else a failure.
ROUNDS=20
killed=0 finished=0 midway=0 ckilled=0
for i in $(seq 1 $ROUNDS); do
	# Prepare, killed at a moment spread uniformly over its duration.
	"$SNAPCTL" --root "$STORE" snapshot prepare "p$i" base &  # the process itself, so kill -9 hits it
	pid=$!
	delay=$(( (prep_ms * (i - 1) + RANDOM % prep_ms) / ROUNDS ))
	sleep_ms "$delay"
	kill -9 "$pid" 2>/dev/null || true
	st=0; wait "$pid" 2>/dev/null || st=$?
	case $st in
	137) killed=$((killed + 1))
		# Evidence it was cut mid-copy, before anything opens the store again.
		ls "$STORE/tmp" | grep -q '^new\.' && midway=$((midway + 1)) ;;
	0) finished=$((finished + 1))
		# Done within delay: a prepare takes no longer than that now (a
		# machine busy while it was measured made it look slower), so
		# the kills that follow spread over that.
		[ "$delay" -ge 20 ] && [ "$delay" -lt "$prep_ms" ] && prep_ms=$delay ;;
	*) fail "prepare p$i exited $st: neither killed nor finished" ;;
	esac

	# Commit: measuring and writing the record, killed over its duration.
	snap snapshot prepare "c$i" base
	"$SNAPCTL" --root "$STORE" snapshot commit "c$i-done" "c$i" &
	pid=$!
	sleep_ms $(( (commit_ms * 1000 * (i - 1) / ROUNDS + RANDOM % (commit_ms * 1000 / ROUNDS + 1)) / 1000 ))
	kill -9 "$pid" 2>/dev/null || true
	st=0; wait "$pid" 2>/dev/null || st=$?
	case $st in
	137) ckilled=$((ckilled + 1)) ;;
	0) ;;
	*) fail "commit c$i exited $st: neither killed nor finished" ;;
	esac

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
[ "$killed" -ge $((ROUNDS / 3)) ] || fail "only $killed of $ROUNDS prepares were killed"
[ "$midway" -ge 3 ] || fail "only $midway kills left a half-made tmp/new.* copy: they did not land mid-copy"
[ -z "$(ls -A "$STORE/trash")" ] || fail "trash/ not emptied: $(ls -A "$STORE/trash")"
pass "$ROUNDS rounds over ${prep_ms} ms prepares and ${commit_ms} ms commits: $killed prepares killed ($midway mid-copy), $finished finished, $ckilled commits killed; every surviving snapshot is the base's tree, byte for byte"
