#!/bin/bash
# Snapshot prepare+commit+remove, one process per operation: snapctl's CLI
# against containerd's overlayfs snapshotter driven by `ctr snapshots`
# (Debian's containerd, started here on its own socket and temporary root).
# Two shapes: N in a chain, and N fanned out from one parent.
# Usage: bench/snapshots/run.sh [N] [RUNS] (defaults 1000, 3). Needs root and a
# build in ./build. Each figure is the median of RUNS runs; the tools take
# turns going first; each tool's no-op start (`ctr version`, `snapctl
# version`) is measured the same way and shown beside the per-op figures.
# Runs on a fresh journaled ext4 loop image (BENCH_FS=xfs for xfs; BENCH_FS=btrfs
# for btrfs, where snapctl uses its btrfs driver and ctr containerd's btrfs
# snapshotter; BENCH_FS=host for the folder's own file system): the host's
# unjournaled ext4 slows file
# creation after large deletes (FACTS.md), which would measure the disk's
# history rather than the tools.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000}
RUNS=${2:-3}
SNAPCTL=${SNAPCTL:-$PWD/build/cli/snapctl}
[ -x "$SNAPCTL" ] || { echo "build snapctl first (ninja -C build)" >&2; exit 1; }
command -v containerd >/dev/null || { echo "needs containerd (scripts/setup.sh installs it)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/snapctl-bench.XXXXXX)
top=$work
cleanup() {
	[ -n "${cpid:-}" ] && kill "$cpid" 2>/dev/null && wait "$cpid" 2>/dev/null
	umount -R "$top/mnt" 2>/dev/null || umount -l "$top/mnt" 2>/dev/null || true
	[ -n "${loopdev:-}" ] && losetup -d "$loopdev"
	rm -rf "$top"
}
trap cleanup EXIT

case "${BENCH_FS:-ext4}" in
host) ;;
ext4 | xfs | btrfs)
	truncate -s 8G "$work/fs.img"
	case "${BENCH_FS:-ext4}" in
	ext4) mkfs.ext4 -q -F "$work/fs.img" ;;
	xfs) mkfs.xfs -q -f "$work/fs.img" ;;
	btrfs) mkfs.btrfs -q -f "$work/fs.img" >/dev/null ;;
	esac
	loopdev=$(losetup -f --show "$work/fs.img")
	mkdir -p "$work/mnt"
	mount "$loopdev" "$work/mnt"
	work="$work/mnt"
	;;
*) echo "BENCH_FS is ext4, xfs, btrfs or host" >&2; exit 1 ;;
esac

cat >"$work/containerd.toml" <<TOML
version = 2
root = "$work/containerd-root"
state = "$work/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/containerd.sock"
TOML
containerd -c "$work/containerd.toml" >"$work/containerd.log" 2>&1 &
cpid=$!
for _ in $(seq 1 100); do [ -S "$work/containerd.sock" ] && break; sleep 0.1; done
[ -S "$work/containerd.sock" ] || { echo "containerd did not start: $(tail -3 "$work/containerd.log")" >&2; exit 1; }

SNAPSHOTTER=overlayfs
[ "${BENCH_FS:-ext4}" = btrfs ] && SNAPSHOTTER=btrfs
ctr_snap() { ctr --address "$work/containerd.sock" -n bench snapshots --snapshotter $SNAPSHOTTER "$@"; }
snap() { "$SNAPCTL" --root "$work/snapctl" "$@"; }

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

now() { date +%s.%N; }

# run TOOL SHAPE: prints seconds for N prepare+commit pairs and for N removes.
# (op_* rather than rm and friends: a function named rm would shadow the command.)
run() {
	local tool=$1 shape=$2 parent="" i t0 t1 t1b t2
	if [ "$tool" = ctr ]; then
		op_prep() { ctr_snap prepare "$@" >/dev/null; }
		op_commit() { ctr_snap commit "$@"; }
		op_rm() { ctr_snap rm "$@"; }
	else
		op_prep() { snap snapshot prepare "$@"; }
		op_commit() { snap snapshot commit "$@"; }
		op_rm() { snap snapshot rm "$@"; }
	fi
	if [ "$shape" = fan ]; then
		op_prep "$shape-base-a"
		op_commit "$shape-base" "$shape-base-a"
	fi
	drop_caches
	t0=$(now)
	for i in $(seq 1 "$N"); do
		if [ "$shape" = chain ]; then
			op_prep "$shape-$i-a" ${parent:+"$parent"}
			op_commit "$shape-$i" "$shape-$i-a"
			parent="$shape-$i"
		else
			op_prep "$shape-$i-a" "$shape-base"
			op_commit "$shape-$i" "$shape-$i-a"
		fi
	done
	t1=$(now)
	drop_caches
	t1b=$(now)
	# Children before parents.
	for i in $(seq "$N" -1 1); do op_rm "$shape-$i"; done
	t2=$(now)
	if [ "$shape" = fan ]; then op_rm "$shape-base"; fi
	echo "$(echo "$t1 - $t0" | bc) $(echo "$t2 - $t1b" | bc)"
}

# startup TOOL: seconds for 100 no-op runs.
startup() {
	local t0
	t0=$(now)
	for _ in $(seq 1 100); do
		if [ "$1" = ctr ]; then ctr --address "$work/containerd.sock" version >/dev/null; else snap version >/dev/null; fi
	done
	echo "$(now) - $t0" | bc
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

fs=$(df --output=fstype "$work" | tail -1)
[ -n "${loopdev:-}" ] && fs="$fs loop image"
echo "snapshot operations, one process each, N=$N, on $fs ($(uname -r)); snapctl's $(snap df --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["driver"])') driver, containerd's $SNAPSHOTTER snapshotter; caches dropped before each timed run"
printf '%-8s %-10s %14s %14s %10s %12s\n' shape tool "prep+commit ms" "remove ms" "total ms" "no-op ms"
declare -A res
declare -A samples
for tool in ctr snapctl; do samples[start-$tool]=""; done
for shape in chain fan; do
	for tool in ctr snapctl; do samples[$shape-$tool-pc]="" samples[$shape-$tool-rm]=""; done
	for r in $(seq 1 "$RUNS"); do
		# Alternate which tool goes first.
		if [ $((r % 2)) = 1 ]; then order="ctr snapctl"; else order="snapctl ctr"; fi
		for tool in $order; do
			read -r pc rmv < <(run "$tool" "$shape")
			samples[$shape-$tool-pc]+=" $pc"
			samples[$shape-$tool-rm]+=" $rmv"
			[ "$shape" = chain ] && samples[start-$tool]+=" $(startup "$tool")"
		done
	done
	for tool in ctr snapctl; do
		# shellcheck disable=SC2086
		pc=$(median ${samples[$shape-$tool-pc]})
		# shellcheck disable=SC2086
		rmv=$(median ${samples[$shape-$tool-rm]})
		# shellcheck disable=SC2086
		st=$(median ${samples[start-$tool]})
		res[$shape-$tool-pc]=$pc
		res[$shape-$tool-rm]=$rmv
		printf '%-8s %-10s %14.2f %14.2f %10.2f %12.2f\n' "$shape" "$tool" \
			"$(echo "$pc * 1000 / $N" | bc -l)" "$(echo "$rmv * 1000 / $N" | bc -l)" \
			"$(echo "($pc + $rmv) * 1000 / $N" | bc -l)" "$(echo "$st * 1000 / 100" | bc -l)"
	done
done
echo "(medians of $RUNS runs, tools alternating first; no-op: one '... version' process)"
echo
echo "ratio (ctr time / snapctl time; higher is better for snapctl):"
for shape in chain fan; do
	printf '  %-6s prepare+commit %.1fx   remove %.1fx   all %.1fx\n' "$shape" \
		"$(echo "${res[$shape-ctr-pc]} / ${res[$shape-snapctl-pc]}" | bc -l)" \
		"$(echo "${res[$shape-ctr-rm]} / ${res[$shape-snapctl-rm]}" | bc -l)" \
		"$(echo "(${res[$shape-ctr-pc]} + ${res[$shape-ctr-rm]}) / (${res[$shape-snapctl-pc]} + ${res[$shape-snapctl-rm]})" | bc -l)"
done
