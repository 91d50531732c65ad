#!/bin/bash
# The btrfs driver in one run, against overlay on ext4 and against
# containerd's btrfs snapshotter:
#   snapshots: bench/snapshots/run.sh on a fresh btrfs loop image (snapctl's
#              btrfs driver vs `ctr snapshots --snapshotter btrfs` on the same
#              image), then on a fresh ext4 loop image (snapctl's overlay
#              driver vs ctr's overlayfs snapshotter)
#   build:     bench/build/run.sh's COPY-heavy case (d-tree: 20,000 files,
#              ~200 MiB) cold, no-change and one-file edit, on btrfs and on
#              ext4 (buildah beside snapctl on each)
# then snapctl-on-btrfs against snapctl-overlay-on-ext4 per figure. Each part
# drops caches before every timed run and takes medians with the tools
# alternating (see those scripts).
# Usage: bench/btrfs/run.sh [N] [RUNS] (defaults 1000 snapshots, 3 runs);
# PARTS="snapshots build" (the default) or either alone.
# Needs root, containerd, buildah, runc, btrfs-progs.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000}
RUNS=${2:-3}
out=$(mktemp -d /var/tmp/snapctl-bench-btrfs.XXXXXX)
trap 'rm -rf "$out"' EXIT

PARTS=${PARTS:-snapshots build}
for fs in btrfs ext4; do
	[[ $PARTS == *snapshots* ]] || break
	echo "== snapshots on $fs"
	BENCH_FS=$fs bash bench/snapshots/run.sh "$N" "$RUNS" | tee "$out/snap-$fs"
	echo
done
for fs in btrfs ext4; do
	[[ $PARTS == *build* ]] || break
	echo "== build (d-tree) on $fs"
	BENCH_FS=$fs CASES=d-tree bash bench/build/run.sh "$RUNS" | tee "$out/build-$fs"
	echo
done

echo "== snapctl on btrfs against snapctl's overlay on ext4 (ext4 time / btrfs time; higher: btrfs faster)"
for shape in chain fan; do
	[[ $PARTS == *snapshots* ]] || break
	b=$(awk -v s="$shape" '$1 == s && $2 == "snapctl" {print $5}' "$out/snap-btrfs")
	e=$(awk -v s="$shape" '$1 == s && $2 == "snapctl" {print $5}' "$out/snap-ext4")
	c=$(awk -v s="$shape" '$1 == s && $2 == "ctr" {print $5}' "$out/snap-btrfs")
	printf '  snapshots %-6s btrfs %7.2f ms/op, overlay-ext4 %7.2f ms/op: %.2fx; containerd btrfs %7.2f ms/op: %.2fx\n' \
		"$shape" "$b" "$e" "$(echo "$e / $b" | bc -l)" "$c" "$(echo "$c / $b" | bc -l)"
done
for phase in cold nochange edit; do
	[[ $PARTS == *build* ]] || break
	b=$(awk -v p="$phase" '$1 == "d-tree" && $2 == p && $3 ~ /^[0-9]/ {print $3}' "$out/build-btrfs")
	e=$(awk -v p="$phase" '$1 == "d-tree" && $2 == p && $3 ~ /^[0-9]/ {print $3}' "$out/build-ext4")
	printf '  build d-tree %-9s btrfs %7s s, overlay-ext4 %7s s: %.2fx\n' "$phase" "$b" "$e" \
		"$(echo "${e%%(*} / ${b%%(*}" | bc -l)"
done
