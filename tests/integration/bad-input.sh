#!/bin/bash
# Bad input gets a one-line error naming the thing, a non-zero exit status,
# and leaves nothing half-made.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root

STORE="$TEST_TMP/store"
snap snapshot prepare work
snap snapshot commit base work

# Keys
expect_error 1 "key is empty" snap snapshot prepare ""
expect_error 1 "control character" snap snapshot prepare "$(printf 'bad\001key')"
expect_error 1 "control character" snap snapshot prepare "$(printf 'new\nline')"
long=$(head -c 5000 /dev/zero | tr '\0' k)
expect_error 1 "longer than" snap snapshot prepare "$long"
expect_error 1 "longer than" snap snapshot commit "$long" work
# Parents
expect_error 1 "prepare 'k1': parent snapshot 'nope' does not exist" snap snapshot prepare k1 nope
snap snapshot prepare act base
expect_error 1 "'act' is active, not committed" snap snapshot prepare k2 act
expect_error 1 "already exists" snap snapshot prepare act base
expect_error 1 "is committed, not active" snap snapshot commit again base
expect_error 1 "does not exist" snap snapshot rm ghost
expect_error 2 "view takes KEY PARENT" snap snapshot view v1
# Usage errors exit 2
expect_error 2 "prepare takes" snap snapshot prepare
expect_error 2 "unknown snapshot command" snap snapshot frobnicate
expect_error 2 "unknown command" snap frobnicate
expect_error 2 "not a duration" snap lease create --expires soon
expect_error 1 "unknown driver" "$SNAPCTL" --root "$TEST_TMP/other" --driver zfs snapshot ls
"$SNAPCTL" --root "$TEST_TMP/nat" --driver native snapshot ls >/dev/null
expect_error 1 "uses driver 'native', not 'overlay'" "$SNAPCTL" --root "$TEST_TMP/nat" --driver overlay snapshot ls
# Nothing half-made by any of the above.
check_store_consistent
n=$(snap snapshot ls --json | grep -c '"key"')
[ "$n" = 2 ] || fail "expected 2 snapshots after the bad inputs, found $n"

# A ROOT that is not writable: a read-only file system.
mkdir -p "$TEST_TMP/ro"
mount -t tmpfs -o ro,size=1m tmpfs "$TEST_TMP/ro"
on_exit "umount -l $TEST_TMP/ro"
expect_error 1 "cannot create store.*(Read-only|writable)" "$SNAPCTL" --root "$TEST_TMP/ro/store" snapshot ls
# An existing store made read-only.
mkdir -p "$TEST_TMP/ro-store"
mount --bind "$STORE" "$TEST_TMP/ro-store"
mount -o remount,bind,ro "$TEST_TMP/ro-store"
on_exit "umount -l $TEST_TMP/ro-store"
expect_error 1 "not writable|Read-only" "$SNAPCTL" --root "$TEST_TMP/ro-store" snapshot prepare x base

# A disk that fills during a copy: native store on a 40 MiB file system.
make_loop_fs ext4 40M "$TEST_TMP/small"
SMALL="$TEST_TMP/small/store"
"$SNAPCTL" --root "$SMALL" --driver native snapshot prepare fill
mkdir -p "$TEST_TMP/mnt"
"$SNAPCTL" --root "$SMALL" snapshot mount fill "$TEST_TMP/mnt"
head -c 24M /dev/urandom >"$TEST_TMP/mnt/big" || true
umount "$TEST_TMP/mnt"
"$SNAPCTL" --root "$SMALL" snapshot commit filled fill
STORE="$SMALL"
expect_error 1 "No space left on device" snap snapshot prepare copy filled
check_store_consistent
snapshot_absent copy "half-made snapshot 'copy' has a record"
[ -z "$(ls -A "$SMALL/trash")" ] || fail "trash/ holds leftovers: $(ls -A "$SMALL/trash")"
# And the store still works once there is room.
snap snapshot prepare small-ok
pass "bad input rejected cleanly"
