#!/bin/bash
# Image import of a real two-layer Debian image, timed against the pair of
# tools that does the same work: `skopeo copy` (blobs into an OCI layout,
# digests checked) followed by `umoci unpack` (both layers unpacked into a
# root file system, diff ids checked).
#   snapctl: snapctl image import LAYOUT (blobs into the content store, both
#            layers applied as snapshots, the image recorded), then sync -f
#   peer:    skopeo copy oci:LAYOUT oci:DST && umoci unpack --image DST BUNDLE,
#            then sync -f
# The image: a minbase Debian bookworm made with debootstrap (layer 1) and the
# same with python3-minimal, ca-certificates and curl added and a few files
# removed (layer 2, so it has whiteouts), committed and pushed with buildah
# (gzip layers). It is built once and kept in BENCH_CACHE
# (/var/tmp/snapctl-bench-cache); debootstrap needs Debian's mirror.
# Each timed run starts from an empty store or an empty destination, with the
# page cache dropped; the store is created untimed (a user imports into an
# existing store), and `snapctl version` / `skopeo --version` show each tool's
# start-up beside the figures. Runs on a fresh journaled ext4 loop image
# with direct I/O on the loop device (as bench/copy): otherwise the backing
# file's page cache copies every block written once more, CPU that a real
# disk does not cost (with it, this machine's 2 CPUs spent ~0.3 s of loop
# worker time per snapctl import). BENCH_LOOP_DIO=0 uses a buffered loop.
# Usage: bench/images/run.sh [RUNS] (default 3). Needs root, debootstrap,
# buildah, skopeo, umoci.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-3}
SNAPCTL=${SNAPCTL:-$PWD/build/cli/snapctl}
CACHE=${BENCH_CACHE:-/var/tmp/snapctl-bench-cache}
[ -x "$SNAPCTL" ] || { echo "build snapctl first (ninja -C build)" >&2; exit 1; }
for t in debootstrap buildah skopeo umoci /usr/bin/time; do
	command -v "$t" >/dev/null || { echo "needs $t (apt-get install debootstrap buildah skopeo umoci time)" >&2; exit 1; }
done

top=$(mktemp -d /var/tmp/snapctl-bench-images.XXXXXX)
cleanup() {
	[ -n "${loopdev:-}" ] && { umount -R "$top/fs" 2>/dev/null; losetup -d "$loopdev"; }
	rm -rf "$top"
}
trap cleanup EXIT
truncate -s 8G "$top/fs.img"
mkfs.ext4 -q -F "$top/fs.img"
loopdev=$(losetup -f --show --direct-io="$([ "${BENCH_LOOP_DIO:-1}" = 0 ] && echo off || echo on)" "$top/fs.img")
mkdir -p "$top/fs"
mount "$loopdev" "$top/fs"
work=$top/fs

# The image, built once.
image=$CACHE/debian-2layer
if [ ! -f "$image/index.json" ]; then
	mkdir -p "$CACHE"
	echo "building the image in $image (debootstrap twice, then buildah; a few minutes)"
	rm -rf "$CACHE/r1" "$CACHE/r2" "$image"
	debootstrap --variant=minbase bookworm "$CACHE/r1" >"$CACHE/debootstrap1.log"
	debootstrap --variant=minbase --include=python3-minimal,ca-certificates,curl bookworm \
		"$CACHE/r2" >"$CACHE/debootstrap2.log"
	# As Debian's own images: no package files left in apt's cache.
	find "$CACHE/r1/var/cache/apt/archives" "$CACHE/r2/var/cache/apt/archives" -name '*.deb' -delete
	B() { buildah --root "$work/buildah" --runroot "$work/buildah-run" --storage-driver vfs "$@"; }
	c=$(B from scratch)
	m=$(B mount "$c")
	cp -a "$CACHE/r1/." "$m/"
	B commit -q "$c" deb-base >/dev/null
	c=$(B from deb-base)
	m=$(B mount "$c")
	# Only what the second debootstrap added or changed, as an install would.
	(cd "$CACHE/r2" && python3 - "$CACHE/r1" <<'PY'
import filecmp, os, stat, sys
base = sys.argv[1]
for dirpath, dirs, files in os.walk("."):
    for name in dirs + files:
        p = os.path.join(dirpath, name)
        a = os.lstat(p)
        try:
            b = os.lstat(os.path.join(base, p))
        except FileNotFoundError:
            print(p)
            continue
        if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode) or (a.st_mode, a.st_uid, a.st_gid) != (b.st_mode, b.st_uid, b.st_gid):
            print(p)
        elif stat.S_ISLNK(a.st_mode):
            if os.readlink(p) != os.readlink(os.path.join(base, p)):
                print(p)
        elif stat.S_ISREG(a.st_mode) and not filecmp.cmp(p, os.path.join(base, p), shallow=False):
            print(p)
PY
	) >"$CACHE/changed"
	(cd "$CACHE/r2" && xargs -d '\n' cp -a --no-dereference --parents -t "$m/" <"$CACHE/changed")
	rm -rf "$m/usr/share/doc/libc6" "$m/etc/cron.daily" "$m/usr/share/man/man8"
	B commit -q "$c" deb-app >/dev/null
	B push -q deb-app "oci:$image:latest"
	B rm -a >/dev/null
	B rmi -a -f >/dev/null 2>&1 || true
	rm -rf "$work/buildah" "$work/buildah-run" "$CACHE/r1" "$CACHE/r2"
fi
layers=$(python3 - "$image" <<'PY'
import json, sys
root = sys.argv[1]
idx = json.load(open(root + "/index.json"))
d = idx["manifests"][0]["digest"].split(":")[1]
m = json.load(open(root + "/blobs/sha256/" + d))
print(len(m["layers"]), sum(l["size"] for l in m["layers"]))
PY
)
read -r nlayers lbytes <<<"$layers"
echo "image: $nlayers layers, $((lbytes / 1024 / 1024)) MiB compressed, on $(df -T "$work" | awk 'NR==2 {print $2}')" \
	"(loop, direct I/O $(cat "/sys/block/${loopdev#/dev/}/loop/dio")) ($(nproc) CPUs)"

. bench/lib.sh
TIME_FILE=$top/time
# startup CMD...: the median wall time of 20 runs of a no-op command, in ms.
startup() {
	python3 - "$@" <<'PY'
import statistics, subprocess, sys, time
t = []
for _ in range(20):
    s = time.perf_counter()
    subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
    t.append(time.perf_counter() - s)
print("%.1f" % (statistics.median(t) * 1000))
PY
}

store=$work/store
for ((i = 1; i <= RUNS; i++)); do
	order="snapctl peer"
	((i % 2 == 0)) && order="peer snapctl"
	for t in $order; do
		case $t in
		snapctl)
			rm -rf "$store"
			"$SNAPCTL" --root "$store" df >/dev/null
			timed "snapctl_$i" sh -c "\"$SNAPCTL\" --root '$store' image import '$image' --name deb >/dev/null && sync -f '$store'" ;;
		peer)
			rm -rf "$work/dst" "$work/bundle"
			timed "peer_$i" sh -c "skopeo copy -q 'oci:$image:latest' 'oci:$work/dst:latest' && umoci unpack --image '$work/dst:latest' '$work/bundle' >/dev/null && sync -f '$work'" ;;
		esac
	done
done
median snapctl
median peer

# Both sides made the same tree: compare the image's root as snapctl holds it
# with umoci's, by path, type, mode, owner, size and content.
mkdir -p "$work/view"
"$SNAPCTL" --root "$store" image export deb -o "type=local,dest=$work/view" >/dev/null
listing() { (cd "$1" && find . -printf '%p %y %m %U:%G %l\n' | LC_ALL=C sort); }
if ! cmp -s <(listing "$work/view") <(listing "$work/bundle/rootfs"); then
	echo "the two trees differ:" >&2
	diff <(listing "$work/view") <(listing "$work/bundle/rootfs") | head >&2
	exit 1
fi
if ! cmp -s <(cd "$work/view" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) \
	<(cd "$work/bundle/rootfs" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum); then
	echo "the two trees' file contents differ" >&2
	exit 1
fi
echo "  trees: identical ($(find "$work/view" | wc -l) entries; paths, types, modes, owners, link targets, file contents)"

echo "start-up (no-op command, median of 20): snapctl version $(startup "$SNAPCTL" version) ms," \
	"skopeo --version $(startup skopeo --version) ms, umoci --version $(startup umoci --version) ms"
printf 'median of %d: snapctl import %.2f s (%d MiB peak), skopeo copy + umoci unpack %.2f s (%d MiB peak)\n' \
	"$RUNS" "$T_snapctl" "$((M_snapctl / 1024))" "$T_peer" "$((M_peer / 1024))"
echo "ratio: $(ratio "$T_peer" "$T_snapctl")x (goal >= 5)"
