#!/bin/bash
# Copy engine benchmark (on demand, root): snapctl's copy engine against
# `cp -a`, for a 20,000-file tree (1-64 KiB files, ~640 MiB) and one 1 GiB
# file, hot and cold page cache, on the host file system (ext4 here) and on
# btrfs and xfs loop images. Both sides end with a sync of the destination
# file system (`cp -a` + `sync -f`; snapctl's own syncfs), as a snapshot must
# be durable. Caches are dropped before every timed run (ext4 without a
# journal is slow to create files right after a large delete until then);
# "hot" runs read the source back in after the drop.
#
#   bench/copy/run.sh [BENCH_COPY_BINARY]     default: build/bench/copy/bench-copy
#   env: WORKDIR (default /var/tmp, on the host file system), FILES (20000), BIG_MIB (1024),
#        FS_LIST ("host btrfs xfs"), REPEAT (2: each figure is the best of REPEAT runs,
#        the three tools interleaved, since a shared machine is noisy)
set -euo pipefail

BIN=${1:-build/bench/copy/bench-copy}
FILES=${FILES:-20000}
BIG_MIB=${BIG_MIB:-1024}
FS_LIST=${FS_LIST:-host btrfs xfs}
REPEAT=${REPEAT:-2}
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (drop_caches, loop mounts)" >&2; exit 1; }
[ -x "$BIN" ] || { echo "run.sh: no '$BIN'; build it: ninja -C build bench/copy/bench-copy" >&2; exit 1; }
BIN=$(realpath "$BIN")

WORK=$(mktemp -d "${WORKDIR:-/var/tmp}/snapctl-copy-bench.XXXXXX")
LOOPS=()
MOUNTS=()
cleanup() {
	for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
	for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }

# mkloop TYPE MKFS... -> sets root (not in a subshell: cleanup needs LOOPS and MOUNTS)
mkloop() {
	local type=$1; shift
	truncate -s 6G "$WORK/$type.img"
	"$@" "$WORK/$type.img" >/dev/null
	local dev
	dev=$(losetup -f --show --direct-io=on "$WORK/$type.img")
	LOOPS+=("$dev")
	mkdir -p "$WORK/$type"
	mount "$dev" "$WORK/$type"
	MOUNTS+=("$WORK/$type")
	root="$WORK/$type"
}

# timed ROOT CASE CACHE TOOL -> seconds
timed() {
	local root=$1 case=$2 cache=$3 tool=$4 t0 t1
	rm -rf "$root/dst"
	drop
	if [ "$cache" = hot ]; then tar -C "$root" -cf - "$case" | cat >/dev/null; fi
	t0=$(now)
	case $tool in
	cp) cp -a "$root/$case" "$root/dst" && sync -f "$root/dst" ;;
	snapctl) "$BIN" "$root/$case" "$root/dst" >"$WORK/last.out" ;;
	snapctl-nouring) "$BIN" --no-uring "$root/$case" "$root/dst" >"$WORK/last.out" ;;
	esac
	t1=$(now)
	echo "$t0 $t1" | awk '{ printf "%.3f", $2 - $1 }'
}

min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b < a) ? b : a }'; }

printf '%-7s %-5s %-5s %8s %9s %8s %15s %s\n' fs data cache "cp -a" snapctl ratio "snapctl-nouring" "snapctl methods"
for fs in $FS_LIST; do
	case $fs in
	host) root="$WORK/host"; mkdir -p "$root"; fsname=$(findmnt -no FSTYPE --target "$root") ;;
	btrfs) mkloop btrfs mkfs.btrfs -q -f; fsname=btrfs ;;
	xfs) mkloop xfs mkfs.xfs -q -f -m reflink=1; fsname=xfs ;;
	esac
	"$BIN" --gen-tree "$root/tree" "$FILES" 1 64
	mkdir "$root/big"
	"$BIN" --gen-file "$root/big/file" "$BIG_MIB"
	for case in tree big; do
		for cache in cold hot; do
			tc= ts= tn=
			for _ in $(seq "$REPEAT"); do
				tc=$(min "$tc" "$(timed "$root" "$case" "$cache" cp)")
				ts=$(min "$ts" "$(timed "$root" "$case" "$cache" snapctl)")
				methods=$(sed 's/.*bytes, //' "$WORK/last.out")
				tn=$(min "$tn" "$(timed "$root" "$case" "$cache" snapctl-nouring)")
			done
			ratio=$(echo "$tc $ts" | awk '{ printf "%.2fx", $1 / $2 }')
			printf '%-7s %-5s %-5s %7.3fs %8.3fs %8s %14.3fs %s\n' "$fsname" "$case" "$cache" "$tc" "$ts" "$ratio" "$tn" "$methods"
		done
	done
	rm -rf "$root/dst" "$root/tree" "$root/big"
done
