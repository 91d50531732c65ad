#!/bin/bash
# Quotas, checked with btrfs-progs: a btrfs qgroup limit per snapshot (a write
# past it fails with EDQUOT; data shared with the parent does not count;
# removal frees the qgroup, and check finds no leaked one), build --quota
# on RUN steps, the overlay driver's xfs project quotas (or, where the kernel
# cannot enforce them, the error that says what would), and bad input.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root

BT="$TEST_TMP/bt"
make_loop_fs btrfs 1G "$BT"
STORE="$BT/store"
qid() { echo "0/$(btrfs subvolume show "$1" | awk '$1 == "Subvolume" && $2 == "ID:" {print $3}')"; }
# qgroup_line QGROUPID: btrfs-progs' line for it ("" when there is none).
qgroup_line() { btrfs qgroup show -re --raw "$BT" 2>/dev/null | awk -v q="$1" '$1 == q'; }
fsdir() { echo "$STORE/snapshots/$(snap snapshot info "$1" | json 'd["id"]')/fs"; }
M="$TEST_TMP/m"
mkdir -p "$M"

# Bad input.
snap snapshot prepare base >/dev/null
expect_error 2 "quota '0' is not a size above 0" snap snapshot prepare z --quota 0
expect_error 2 "quota '-5M' is not a size above 0" snap snapshot prepare z --quota -5M
expect_error 2 "quota '12bananas' is not a size above 0" snap snapshot prepare z --quota 12bananas
expect_error 2 "build: --quota '0' is not a size above 0" snap build --quota 0 "$TEST_TMP"
snap snapshot mount base "$M"
head -c $((50 << 20)) /dev/urandom >"$M/big"
umount "$M"
snap snapshot commit parent base
expect_error 1 "view 'v' is read-only: a quota limits an active snapshot" \
	snap snapshot view v parent --quota 1M
snapshot_absent z "a refused prepare left a snapshot"
pass "bad quotas are refused: 0, negative, malformed, on a view"

# A 10 MiB limit on a new snapshot stops a write at about 10 MiB.
snap snapshot prepare lone --quota 10MiB >/dev/null
q=$(qid "$(fsdir lone)")
line=$(qgroup_line "$q")
[ "$(echo "$line" | awk '{print $5}')" = $((10 << 20)) ] || fail "btrfs-progs does not show a 10 MiB exclusive limit on $q: '$line'"
snap snapshot mount lone "$M"
status=0
dd if=/dev/urandom of="$M/f" bs=1M count=20 conv=fsync 2>"$TEST_TMP/dd" || status=$?
umount "$M"
[ $status != 0 ] && grep -q "Disk quota exceeded" "$TEST_TMP/dd" || fail "a 20 MiB write under a 10 MiB quota did not fail with EDQUOT: $(cat "$TEST_TMP/dd")"
size=$(stat -c %s "$(fsdir lone)/f")
[ "$size" -ge $((9 << 20)) ] && [ "$size" -le $((10 << 20)) ] || fail "the write stopped at $size bytes, not at about 10 MiB"
pass "a 10 MiB quota stops a write with EDQUOT at $size bytes ($q)"

# The parent's 50 MiB are shared, not counted: 9 MiB more fit under 10 MiB.
snap snapshot prepare child parent --quota 10MiB >/dev/null
snap snapshot mount child "$M"
dd if=/dev/urandom of="$M/nine" bs=1M count=9 conv=fsync 2>"$TEST_TMP/dd" || fail "9 MiB did not fit under a 10 MiB quota over a 50 MiB parent: $(cat "$TEST_TMP/dd")"
umount "$M"
sync
info=$(snap snapshot info child)
[ "$(echo "$info" | json 'd["quota"]')" = $((10 << 20)) ] || fail "info does not show the quota: $info"
used=$(echo "$info" | json 'd["quota_used"]')
[ "$used" -ge $((9 << 20)) ] && [ "$used" -lt $((10 << 20)) ] || fail "info's quota_used $used is not the 9 MiB written: $info"
cq=$(qid "$(fsdir child)")
[ "$(qgroup_line "$cq" | awk '{print $3}')" = "$used" ] || fail "quota_used $used is not btrfs-progs' exclusive bytes: $(qgroup_line "$cq")"
snap df -v | grep -E "^child .* 9\.[0-9]+ MiB of 10\.0 MiB" >/dev/null || fail "df -v does not show the quota's use: $(snap df -v)"
pass "over a 50 MiB parent, 9 MiB fit under 10 MiB; info, df -v and btrfs-progs agree on $used bytes"

# Removal frees the qgroup once btrfs has dropped the subvolume.
snap snapshot rm child lone >/dev/null
btrfs filesystem sync "$BT" # a commit wakes the cleaner, which drops deleted subvolumes
btrfs subvolume sync "$BT" >/dev/null
[ -z "$(qgroup_line "$cq")" ] && [ -z "$(qgroup_line "$q")" ] || fail "qgroups left after removal: $(btrfs qgroup show -re "$BT")"
out=$(snap check --json) || fail "check after removal: $out"
echo "$out" | json '[p for p in d["problems"] if p["kind"] == "leaked-quota"]' | grep -qx '\[\]' || fail "check reports leaked quotas: $out"
pass "removing the snapshots freed qgroups $q and $cq; check finds no leaked quota"

# build --quota: a RUN step past it fails and says which snapshot hit which limit.
import_busybox
mkdir -p "$TEST_TMP/ctx"
printf 'FROM busybox:latest\nRUN dd if=/dev/zero of=/big bs=1M count=20\n' >"$TEST_TMP/ctx/Dockerfile"
expect_error 1 "exited with code 1; last output: .*Disk quota exceeded.*snapshot 'build\.[0-9.]+' is at its quota \([0-9.]+ MiB of --quota 5\.00 MiB: EDQUOT\)" \
	snap build --quota 5MiB --progress quiet "$TEST_TMP/ctx"
printf 'FROM busybox:latest\nRUN dd if=/dev/zero of=/small bs=1M count=3\n' >"$TEST_TMP/ctx/Dockerfile"
snap build --quota 5MiB --progress quiet -t small "$TEST_TMP/ctx" >/dev/null || fail "a 3 MiB RUN failed under a 5 MiB quota"
pass "build --quota: a RUN step past it fails naming the snapshot and the limit; one under it builds"

# Overlay: project quotas on xfs mounted with pquota, where the kernel has them.
XI="$TEST_TMP/xfs.img"
truncate -s 300M "$XI"
mkfs.xfs -q -f "$XI"
XD=$(losetup -f --show "$XI")
on_exit "losetup -d $XD"
mkdir -p "$TEST_TMP/xfs"
if mount -o pquota "$XD" "$TEST_TMP/xfs" 2>/dev/null; then
	on_exit "umount -l $TEST_TMP/xfs"
	echo "case: this kernel enforces xfs project quotas"
	STORE="$TEST_TMP/xfs/store"
	snap --driver overlay snapshot prepare ob >/dev/null
	snap snapshot commit obase ob
	snap snapshot prepare ow obase --quota 10MiB >/dev/null
	snap snapshot mount ow "$M"
	status=0
	dd if=/dev/zero of="$M/f" bs=1M count=20 conv=fsync 2>"$TEST_TMP/dd" || status=$?
	umount "$M"
	[ $status != 0 ] && grep -q "Disk quota exceeded" "$TEST_TMP/dd" || fail "overlay: a 20 MiB write under a 10 MiB quota did not fail with EDQUOT: $(cat "$TEST_TMP/dd")"
	snap snapshot rm ow >/dev/null
	out=$(snap check) || fail "check after removal: $out"
	pass "overlay on xfs with pquota: EDQUOT at the limit, and removal frees the project"
else
	echo "case: this kernel has no xfs project quotas; checking the error instead"
	mount "$XD" "$TEST_TMP/xfs"
	on_exit "umount -l $TEST_TMP/xfs"
	STORE="$TEST_TMP/xfs/store"
	snap --driver overlay snapshot prepare ob >/dev/null
	snap snapshot commit obase ob
	expect_error 1 "(this kernel has no quota support \(CONFIG_QUOTA, CONFIG_XFS_QUOTA\)|project quotas are off on the xfs under .*; mount it with -o pquota)" \
		snap snapshot prepare ow obase --quota 10MiB
	snapshot_absent ow "a refused quota left a snapshot"
	pass "overlay on xfs without project quotas: --quota fails saying what would make it work"
fi
STORE="$TEST_TMP/ext4-store"
[ "$(stat -f -c %T "$TEST_TMP")" = ext2/ext3 ] && {
	snap --driver overlay snapshot prepare e >/dev/null
	snap snapshot commit ebase e
	expect_error 1 "quotas on overlay need xfs: ext4 project quotas do not hold for overlay mounts made by root" \
		snap snapshot prepare ew ebase --quota 10MiB
	pass "overlay on ext4: --quota fails, saying why and what to use"
}
STORE="$TEST_TMP/native-store"
snap --driver native snapshot prepare n >/dev/null
expect_error 1 "the native driver has no quotas; use a store on btrfs, or the overlay driver on xfs mounted with -o pquota" \
	snap snapshot prepare n2 --quota 10MiB
pass "native: --quota fails naming what has quotas"
