#!/bin/bash
# Layer export and apply, timed against the shell pipelines they replace.
#   export: snapctl layer diff (tar + gzip + both sha256, into the content store,
#           synced) vs tar -c | gzip -1 | tee FILE | sha256sum and the same
#           with pigz -1, each writing its output to a file and syncing it
#   apply:  snapctl layer apply (synced) vs tar -xzf into an empty folder
#           followed by sync -f, with file data through io_uring (the
#           default) and through pwrite (SNAPCTL_NO_IO_URING=1)
# The layer: FILES small files (1-16 KiB) plus two BIG files, half random
# and half text so it compresses like real layers. Caches are dropped before
# every timed run; peak memory comes from /usr/bin/time.
# Runs on a fresh journaled ext4 loop image (BENCH_FS=host for the folder's own
# file system): the host's unjournaled ext4 slows file creation after large
# deletes (FACTS.md).
# Usage: bench/layers/run.sh [FILES] [BIG_MIB] (default 20000 256). Needs root, pigz.
# RUNS=N (default 3; APPLY_RUNS is the old name): every timed command runs N
# times, interleaved with its peers in turn, and each figure is the median
# (a shared machine is noisy).
set -euo pipefail
cd "$(dirname "$0")/../.."
FILES=${1:-20000}
BIG=${2:-256}
RUNS=${RUNS:-${APPLY_RUNS:-3}}
SNAPCTL=${SNAPCTL:-$PWD/build/cli/snapctl}
[ -x "$SNAPCTL" ] || { echo "build snapctl first (ninja -C build)" >&2; exit 1; }
for t in pigz /usr/bin/time; do
	command -v "$t" >/dev/null || { echo "needs $t (scripts/setup.sh installs it)" >&2; exit 1; }
done

top=$(mktemp -d /var/tmp/snapctl-bench-layers.XXXXXX)
work=$top
cleanup() {
	umount "$work/mnt" 2>/dev/null || true
	[ -n "${loopdev:-}" ] && { umount "$top/fs" 2>/dev/null; losetup -d "$loopdev"; }
	rm -rf "$top"
}
trap cleanup EXIT
if [ "${BENCH_FS:-ext4}" = ext4 ]; then
	truncate -s 12G "$top/fs.img"
	mkfs.ext4 -q -F "$top/fs.img"
	loopdev=$(losetup -f --show "$top/fs.img")
	mkdir -p "$top/fs"
	mount "$loopdev" "$top/fs"
	work="$top/fs"
fi
fs=$(df -T "$work" | awk 'NR==2 {print $2}')

S() { "$SNAPCTL" --root "$work/store" "$@"; }
. bench/lib.sh
TIME_FILE=$work/time

echo "layer: $FILES small files + 2 x $BIG MiB on $fs ($(nproc) CPUs)"
S snapshot prepare build >/dev/null
mkdir -p "$work/mnt"
S snapshot mount build "$work/mnt"
python3 - "$work/mnt" "$FILES" "$BIG" <<'PY'
import os, random, sys
root, n, big = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(1)
words = [("".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9)))).encode()
         for _ in range(5000)]
def chunk(size):
    half = size // 2
    text = b" ".join(rnd.choice(words) for _ in range(half // 5 + 1))[:half]
    return text + os.urandom(size - half)
for i in range(n):
    d = os.path.join(root, "d%03d" % (i % 200), "s%02d" % (i % 7))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(chunk(rnd.randint(1024, 16384)))
block = chunk(4 << 20)
for name in ("big1", "big2"):
    with open(os.path.join(root, name), "wb") as f:
        for _ in range(big // 4):
            f.write(block[:1 << 20] + os.urandom(1 << 20) + block[1 << 20:3 << 20])
PY
umount "$work/mnt"
S snapshot commit layer build
upper=$(S snapshot info layer | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
upper="$work/store/snapshots/$upper/fs"
echo "  tree: $(du -sh --apparent-size "$upper" | cut -f1)"

# rotate I WORD...: the words, starting at the I-th (so each goes first in turn).
rotate() {
	local i=$1
	shift
	local n=$#
	local a=("$@")
	for ((k = 0; k < n; k++)); do echo "${a[$(((i + k) % n))]}"; done
}

echo "export (diff + compress + hash, output written and synced; median of $RUNS)"
out="$work/out.gz"
for ((i = 1; i <= RUNS; i++)); do
	for t in $(rotate "$i" snapctl_diff tar_gzip tar_pigz); do
		rm -f "$out"
		case $t in
		snapctl_diff) timed "snapctl_diff_$i" sh -c "\"$SNAPCTL\" --root \"$work/store\" layer diff layer >/dev/null" ;;
		tar_gzip) timed "tar_gzip_$i" sh -c "tar -c -C '$upper' . | gzip -1 | tee '$out' | sha256sum >/dev/null && sync -f '$out'" ;;
		tar_pigz) timed "tar_pigz_$i" sh -c "tar -c -C '$upper' . | pigz -1 | tee '$out' | sha256sum >/dev/null && sync -f '$out'" ;;
		esac
	done
done
median snapctl_diff
median tar_gzip
median tar_pigz
printf '  median: snapctl %.2f s, tar|gzip -1 %.2f s, tar|pigz -1 %.2f s\n' "$T_snapctl_diff" "$T_tar_gzip" "$T_tar_pigz"
digest=$(S layer diff layer --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
S content cat "$digest" >"$work/layer.tgz"
gzip -t "$work/layer.tgz" || { echo "our layer is not a valid gzip" >&2; exit 1; }
echo "  outputs: snapctl (ISA-L igzip level 1) $(stat -c %s "$work/layer.tgz" | numfmt --to=iec)," \
	"gzip -1 (zlib) $(tar -c -C "$upper" . | gzip -1 | wc -c | numfmt --to=iec)," \
	"pigz -1 (zlib) $(tar -c -C "$upper" . | pigz -1 | wc -c | numfmt --to=iec)"

echo "apply (decompress + unpack, synced; median of $RUNS)"
for ((i = 1; i <= RUNS; i++)); do
	for t in $(rotate "$i" snapctl_apply snapctl_apply_pwrite tar_xzf); do
		case $t in
		snapctl_apply)
			S snapshot rm applied >/dev/null 2>&1 || true
			timed "snapctl_apply_$i" sh -c "\"$SNAPCTL\" --root \"$work/store\" layer apply \"$work/layer.tgz\" applied >/dev/null" ;;
		snapctl_apply_pwrite)
			S snapshot rm applied >/dev/null 2>&1 || true
			timed "snapctl_apply_pwrite_$i" sh -c "SNAPCTL_NO_IO_URING=1 \"$SNAPCTL\" --root \"$work/store\" layer apply \"$work/layer.tgz\" applied >/dev/null" ;;
		tar_xzf)
			rm -rf "$work/untar"
			mkdir -p "$work/untar"
			timed "tar_xzf_$i" sh -c "tar -xzf '$work/layer.tgz' -C '$work/untar' && sync -f '$work/untar'" ;;
		esac
	done
done
median snapctl_apply
median snapctl_apply_pwrite
median tar_xzf
printf '  median: io_uring %.2f s, pwrite %.2f s, tar -xzf + sync %.2f s\n' "$T_snapctl_apply" "$T_snapctl_apply_pwrite" "$T_tar_xzf"

echo "ratios (higher is better for snapctl)"
echo "  export vs tar|gzip -1: $(ratio "$T_tar_gzip" "$T_snapctl_diff")x (goal >= 2)"
echo "  export vs tar|pigz -1: $(ratio "$T_tar_pigz" "$T_snapctl_diff")x (goal >= 1)"
echo "  apply vs tar -xzf+sync: $(ratio "$T_tar_xzf" "$T_snapctl_apply")x (goal >= 1.3)"
echo "  apply with pwrite (SNAPCTL_NO_IO_URING=1) vs tar -xzf: $(ratio "$T_tar_xzf" "$T_snapctl_apply_pwrite")x;" \
	"io_uring vs pwrite: $(ratio "$T_snapctl_apply_pwrite" "$T_snapctl_apply")x"
echo "  peak memory: diff $((M_snapctl_diff / 1024)) MiB, apply $((M_snapctl_apply / 1024)) MiB," \
	"apply with pwrite $((M_snapctl_apply_pwrite / 1024)) MiB (goal < 64)"
