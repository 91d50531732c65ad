#!/bin/bash
# Prune of N records (snapshots and blobs, ~2 GiB) against rm -rf of the same
# folders (the floor), with the longest hold of the LMDB writer lock; and
# snapctl df on N records (active snapshots among them, which df measures)
# beside du -sx of the store. df reads records where du walks every file, so
# that figure is a goal (under 50 ms), not a ratio of equal work.
# Usage: bench/gc/run.sh [N] (default 10000). Root, after ninja -C build.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-10000}
SNAPCTL=${SNAPCTL:-$PWD/build/cli/snapctl}
FIXTURE=${GC_FIXTURE:-$PWD/build/tests/integration/gc-fixture}
[ -x "$SNAPCTL" ] && [ -x "$FIXTURE" ] || { echo "build first: ninja -C build" >&2; exit 1; }

work=$(mktemp -d /var/tmp/snapctl-gc-bench.XXXXXX)
loopdev=""
cleanup() {
	umount "$work/mnt" 2>/dev/null || umount -l "$work/mnt" 2>/dev/null || true
	[ -n "$loopdev" ] && losetup -d "$loopdev"
	rm -rf "$work"
}
trap cleanup EXIT
# Private copies: a rebuild during the run must not swap the binaries under it.
cp "$SNAPCTL" "$work/snapctl" && SNAPCTL="$work/snapctl"
cp "$FIXTURE" "$work/gc-fixture" && FIXTURE="$work/gc-fixture"
# A journaled ext4 image: the host's unjournaled ext4 slows creation after
# large deletes (FACTS.md), which would measure the disk's history.
truncate -s 12G "$work/fs.img"
mkfs.ext4 -q -F "$work/fs.img"
loopdev=$(losetup -f --show "$work/fs.img")
mkdir -p "$work/mnt"
mount "$loopdev" "$work/mnt"
W="$work/mnt"

half=$((N / 2))
kib=$(( 2 * 1024 * 1024 / N ))   # ~2 GiB over N records
echo "building two identical stores of $half snapshots and $half blobs of ~${kib} KiB..."
"$FIXTURE" "$W/a" x "$half" "$half" "$kib"
"$FIXTURE" "$W/b" x "$half" "$half" "$kib"
# Active snapshots too, with data: df measures them (the rest it reads from records).
for i in $(seq 1 20); do
	"$SNAPCTL" --root "$W/a" snapshot prepare "active-$i" x-s0 >/dev/null
	head -c 1M /dev/urandom >"$W/a/snapshots/$("$SNAPCTL" --root "$W/a" snapshot info "active-$i" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')/fs/data"
done
size=$(du -sx -B1 "$W/a" | cut -f1)
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }

# cold: right after dropping caches (binary and libraries included); hot: the next run
drop_caches
t0=$(now); "$SNAPCTL" --root "$W/a" df >/dev/null; t1=$(now)
t4=$(now); "$SNAPCTL" --root "$W/a" df >/dev/null; t5=$(now)
drop_caches
t2=$(now); du -sx "$W/a" >/dev/null; t3=$(now)
t6=$(now); du -sx "$W/a" >/dev/null; t7=$(now)

drop_caches
t8=$(now); rm -rf "$W/b/snapshots" "$W/b/blobs"; t9=$(now)
drop_caches
for i in $(seq 1 20); do "$SNAPCTL" --root "$W/a" snapshot rm "active-$i"; done
drop_caches
t10=$(now); out=$("$SNAPCTL" --root "$W/a" prune --json); t11=$(now)
lock=$(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["longest_lock_ms"], d["transactions"], len(d["removed"]))')
read -r lock_ms txns removed <<<"$lock"
# The prune did the whole job: every record gone, and their folders and files.
[ "$removed" = "$N" ] || { echo "prune removed $removed records, not $N" >&2; exit 1; }
left=$(find "$W/a/snapshots" "$W/a/blobs" -mindepth 1 ! -type d | wc -l)
[ "$left" = 0 ] && [ -z "$(ls -A "$W/a/snapshots")" ] ||
	{ echo "prune left $left files and $(ls "$W/a/snapshots" | wc -l) snapshot folders" >&2; exit 1; }

fs=$(df --output=fstype "$W" | tail -1)
echo
echo "N=$N records, $(numfmt --to=iec "$size") on $fs (loop image), $(uname -r); caches dropped before each cold run"
printf '%-34s %12s %12s %10s\n' "" "snapctl" "baseline" "ratio"
printf '%-34s %10.1f ms %10.1f ms %10s\n' "df, cold (du -sx beside; goal)" \
	"$(echo "($t1 - $t0) * 1000" | bc -l)" "$(echo "($t3 - $t2) * 1000" | bc -l)" "-"
printf '%-34s %10.1f ms %10.1f ms %10s\n' "df, hot (du -sx beside; goal)" \
	"$(echo "($t5 - $t4) * 1000" | bc -l)" "$(echo "($t7 - $t6) * 1000" | bc -l)" "-"
printf '%-34s %10.1f ms %10.1f ms %9.2fx\n' "prune all (vs rm -rf, the floor)" \
	"$(echo "($t11 - $t10) * 1000" | bc -l)" "$(echo "($t9 - $t8) * 1000" | bc -l)" \
	"$(echo "($t11 - $t10) / ($t9 - $t8)" | bc -l)"
echo "prune removed $removed records in $txns write transactions; longest writer-lock hold: $lock_ms ms"
echo "goals: df under 50 ms; prune within 1.2x of rm -rf (the last ratio is snapctl/rm, lower is better); lock hold under 50 ms"
