#!/bin/bash
# `snapctl build` against `buildah bud` (Debian's buildah, overlay + runc):
# same base image, same machine, same run, same file system, on four
# Dockerfiles (bench/build/cases/):
#   a-scratch  FROM scratch + COPY of a few small files
#   b-busybox  busybox + RUN + COPY + ENV/WORKDIR/CMD
#   c-stages   two independent stages with a small RUN each, and a final
#              stage copying from both
#   d-tree     COPY of a 20,000-file, ~200 MiB tree of random data (1-20 KiB
#              files, generated here once per run)
#   e-cpu      c-stages with CPU-bound RUNs (~0.4 s each). The container work is
#              the same for both tools and bounds the ratio, so the two commands
#              are also timed alone on the host (run concurrently, as both
#              builders run the two stages), and the cold build's goal is judged
#              on each tool's time beyond that
# each in three phases: cold (a fresh store holding only the base image,
# whose import is not timed), rebuild with no change, and rebuild after
# appending a line to one small file the Dockerfile COPYs.
#
# What is measured and how it is kept fair:
# - Each tool has a private store on the bench file system: snapctl
#   --root DIR; buildah --storage-driver overlay --root DIR --runroot DIR, its
#   temporary files (TMPDIR and containers.conf image_copy_tmp_dir) and its
#   blob-info cache (/var/lib/containers, bind-mounted from the bench file
#   system in a private mount namespace) in the same place. Both start from
#   the same OCI layout of busybox (scripts/make-busybox-image.sh), and the
#   script checks that `FROM busybox:latest` resolves to the same manifest in
#   both.
# - buildah bud --layers --isolation oci --runtime runc --network host
#   --pull-never --jobs NCPU --disable-compression=false; snapctl build -j NCPU
#   (RUN's network is the host's by default). With --disable-compression=false
#   buildah gzips every new layer (a temporary blob it hashes, copies once
#   more and unpacks into its overlay store) like snapctl gzips every new
#   layer into its content store; buildah's default (BUILDAH_GZIP=0 here)
#   stores layers uncompressed. Levels differ: snapctl gzip -1 (ISA-L),
#   buildah the Go pgzip default level.
# - Every timed region is `BUILD; sync -f BENCH_FS` (each side's writes reach
#   the disk), after `sync; echo 3 > /proc/sys/vm/drop_caches`.
# - The two tools alternate which goes first, per iteration; each figure is
#   the median of RUNS iterations; cold stores are made afresh per iteration.
# - Wall time comes from bash's $EPOCHREALTIME around `/usr/bin/time -f %M
#   CMD; sync -f`; the fork+exec of /usr/bin/time is included in both sides'
#   figures (printed once as "overhead"). Peak memory is GNU time's %M: the
#   largest resident set of the tool's process or of any descendant it
#   waited for (runc, the container's process) -- a maximum over single
#   processes, not a sum over processes alive at once; the table shows the
#   largest peak over the iterations.
# - Start-up cost of each side (`snapctl version`, `buildah --version`, and
#   opening the store: `snapctl image ls`, `buildah images`) is printed too.
#
# Usage: bench/build/run.sh [RUNS] (default 3). Root, after ninja -C build;
# needs buildah (apt-get install -y buildah), runc, python3, /usr/bin/time.
# Environment:
#   BENCH_FS=ext4 (default: a fresh journaled ext4 loop image) | xfs | btrfs | host
#     (the folder's own file system; the host's ext4 has no journal and slows
#     file creation after large deletes, see FACTS.md)
#   CASES="a-scratch b-busybox c-stages d-tree e-cpu"   TREE_FILES=20000
#   BUILDAH_GZIP=1 (0: buildah's default, uncompressed layers)
#   SNAPCTL=path (default build/cli/snapctl; a private copy is run)
set -euo pipefail

# A private mount namespace: the loop mount, the overlay mounts and the bind
# over /var/lib/containers stay in it and vanish with it.
if [ -z "${SNAPCTL_BUILD_BENCH_NS:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
	exec unshare -m --propagation private env SNAPCTL_BUILD_BENCH_NS=1 "$BASH" "$0" "$@"
fi

cd "$(dirname "$0")/../.."
RUNS=${1:-${RUNS:-3}}
CASES=${CASES:-a-scratch b-busybox c-stages d-tree e-cpu}
TREE_FILES=${TREE_FILES:-20000}
BUILDAH_GZIP=${BUILDAH_GZIP:-1}
SNAPCTL=${SNAPCTL:-$PWD/build/cli/snapctl}
CASEDIR=$PWD/bench/build/cases
JOBS=$(nproc)
[ -x "$SNAPCTL" ] || { echo "build snapctl first (ninja -C build)" >&2; exit 1; }
for t in buildah runc python3 /usr/bin/time unshare; do
	command -v "$t" >/dev/null || { echo "needs $t (apt-get install -y buildah)" >&2; exit 1; }
done
RUNC=$(command -v runc)
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "RUNS must be a positive number" >&2; exit 1; }

top=$(mktemp -d /var/tmp/snapctl-bench-build.XXXXXX)
W=$top
loopdev=""
cleanup() {
	# Anything still mounted below the work folder, deepest first.
	{ findmnt -rn -o TARGET | grep -F "$top/" | sort -r || true; } | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	umount /var/lib/containers 2>/dev/null || true
	[ -n "$loopdev" ] && { umount "$top/fs" 2>/dev/null || umount -l "$top/fs" 2>/dev/null || true; losetup -d "$loopdev"; }
	rm -rf "$top"
}
trap cleanup EXIT

case "${BENCH_FS:-ext4}" in
host) ;;
ext4 | xfs | btrfs)
	truncate -s 16G "$top/fs.img"
	case "${BENCH_FS:-ext4}" in
	ext4) mkfs.ext4 -q -F "$top/fs.img" ;;
	xfs) mkfs.xfs -q -f "$top/fs.img" ;;
	btrfs) mkfs.btrfs -q -f "$top/fs.img" >/dev/null ;;
	esac
	loopdev=$(losetup -f --show "$top/fs.img")
	mkdir -p "$top/fs"
	mount "$loopdev" "$top/fs"
	W="$top/fs"
	;;
*) echo "BENCH_FS is ext4, xfs, btrfs or host" >&2; exit 1 ;;
esac
fs=$(df --output=fstype "$W" | tail -1)
[ -n "$loopdev" ] && fs="$fs (fresh loop image, journaled)" || fs="$fs (the host's own; see FACTS.md)"

# Private copy: a rebuild during the run must not swap the binary under it.
cp "$SNAPCTL" "$top/snapctl" && SNAPCTL="$top/snapctl"
mkdir -p "$W/ctx" "$W/stores" "$W/logs" "$W/tmp" "$W/containers-lib"
# buildah's temporary files and blob-info cache on the bench file system too.
export TMPDIR="$W/tmp"
mkdir -p /var/lib/containers   # buildah's own default folder; the bind below hides its content
mount --bind "$W/containers-lib" /var/lib/containers
conf=/usr/share/containers/containers.conf
{
	if [ -f "$conf" ]; then sed "s|^\[engine\]\$|[engine]\nimage_copy_tmp_dir = \"$W/tmp\"|" "$conf"
	else printf '[engine]\nimage_copy_tmp_dir = "%s"\n' "$W/tmp"; fi
} >"$W/containers.conf"
grep -q image_copy_tmp_dir "$W/containers.conf" || printf '[engine]\nimage_copy_tmp_dir = "%s"\n' "$W/tmp" >>"$W/containers.conf"
export CONTAINERS_CONF="$W/containers.conf"

. bench/lib.sh # drop and rmtree (timed and median below are this script's own)
now_us() { echo "${EPOCHREALTIME/./}"; }

# ---- base image and build contexts (untimed) -------------------------------
scripts/make-busybox-image.sh "$W/base-oci" busybox:latest >/dev/null
for c in $CASES; do
	[ -f "$CASEDIR/$c/Dockerfile" ] || { echo "no case $c in $CASEDIR" >&2; exit 1; }
	mkdir -p "$W/ctx/$c"
	cp "$CASEDIR/$c/Dockerfile" "$W/ctx/$c/"
done
declare -A EDIT=([a-scratch]=files/f3.txt [b-busybox]=app/config.txt [c-stages]=note.txt [e-cpu]=note.txt)
if [ -d "$W/ctx/a-scratch" ]; then
	mkdir -p "$W/ctx/a-scratch/files"
	for i in 1 2 3 4 5 6; do head -c $((i * 700)) /dev/urandom | base64 >"$W/ctx/a-scratch/files/f$i.txt"; done
	echo "hello" >"$W/ctx/a-scratch/hello.txt"
fi
if [ -d "$W/ctx/b-busybox" ]; then
	mkdir -p "$W/ctx/b-busybox/app/lib"
	printf 'name=bench\nlevel=3\n' >"$W/ctx/b-busybox/app/config.txt"
	for i in 1 2 3; do head -c 3000 /dev/urandom | base64 >"$W/ctx/b-busybox/app/lib/part$i.txt"; done
fi
[ -d "$W/ctx/c-stages" ] && echo "two stages" >"$W/ctx/c-stages/note.txt"
[ -d "$W/ctx/e-cpu" ] && echo "sums of two stages" >"$W/ctx/e-cpu/note.txt"
tree_note=""
if [ -d "$W/ctx/d-tree" ]; then
	EDIT[d-tree]=$(python3 - "$W/ctx/d-tree/tree" "$TREE_FILES" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(1)
first = None
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 200))
    if i % 200 == 0:
        os.makedirs(d, exist_ok=True)
    p = os.path.join(d, "f%05d" % i)
    with open(p, "wb") as f:
        f.write(os.urandom(rnd.randint(1024, 20 * 1024)))
    first = first or os.path.relpath(p, os.path.dirname(root))
print(first)
PY
)
	tree_note="d-tree: $(find "$W/ctx/d-tree/tree" -type f | wc -l) files, $(du -s --apparent-size -B1M "$W/ctx/d-tree/tree" | cut -f1) MiB of random data"
fi

# ---- stores ----------------------------------------------------------------
S() { "$SNAPCTL" --root "$W/stores/snapctl" "$@"; }
B() { buildah --storage-driver overlay --root "$W/stores/buildah/root" --runroot "$W/stores/buildah/run" "$@"; }
BASE_SIZE_S=0
BASE_SIZE_B=0
checked_base=""
# fresh_stores: empty stores for both tools holding only the imported base image.
fresh_stores() {
	{ findmnt -rn -o TARGET | grep -F "$W/stores/" | sort -r || true; } | while read -r m; do umount "$m"; done
	rmtree "$W/stores"
	rm -rf "$W/tmp" "$W/containers-lib"/*
	mkdir -p "$W/stores" "$W/tmp"
	S image import "$W/base-oci" >/dev/null
	if command -v skopeo >/dev/null; then
		skopeo copy -q "oci:$W/base-oci:latest" \
			"containers-storage:[overlay@$W/stores/buildah/root+$W/stores/buildah/run]localhost/busybox:latest"
	else
		# buildah pull names the image after the layout's path too; that name stays.
		B pull -q "oci:$W/base-oci:latest" >"$W/base-id"
		B tag "$(cat "$W/base-id")" busybox:latest
	fi
	if [ -z "$checked_base" ]; then
		local ds db
		ds=$(S image inspect busybox:latest | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
		db=$(B inspect --type image --format '{{.FromImageDigest}}' busybox:latest)
		[ "$ds" = "$db" ] || { echo "busybox:latest is $ds in snapctl but $db in buildah" >&2; exit 1; }
		checked_base="$ds"
	fi
	BASE_SIZE_S=$(du -sk "$W/stores/snapctl" | cut -f1)
	BASE_SIZE_B=$(du -sk "$W/stores/buildah" | cut -f1)
}

build_cmd() { # TOOL CASE: the build command into CMD
	local tag="bench-$2:latest" ctx="$W/ctx/$2"
	if [ "$1" = snapctl ]; then
		CMD=("$SNAPCTL" --root "$W/stores/snapctl" build --progress plain -j "$JOBS" -t "$tag" "$ctx")
	else
		local gz=()
		[ "$BUILDAH_GZIP" = 1 ] && gz=(--disable-compression=false)
		CMD=(buildah --storage-driver overlay --root "$W/stores/buildah/root" --runroot "$W/stores/buildah/run"
			bud --layers --isolation oci --runtime "$RUNC" --network host --pull-never --jobs "$JOBS"
			"${gz[@]}" -t "$tag" "$ctx")
	fi
}

# steps_run TOOL LOG: how many build steps ran (were not cache hits).
steps_run() {
	if [ "$1" = snapctl ]; then
		grep -cE '^#[0-9]+ DONE' "$2" || true
	else
		local all from hits
		all=$(grep -cE 'STEP [0-9]+/[0-9]+: ' "$2" || true)
		from=$(grep -cE 'STEP [0-9]+/[0-9]+: FROM ' "$2" || true)
		hits=$(grep -c 'Using cache' "$2" || true)
		echo $((all - from - hits))
	fi
}

# timed LOG CMD...: drop caches; wall µs of `CMD; sync -f` into T, peak RSS KiB into M.
timed() {
	local log=$1 rc=0 t0 t1
	shift
	drop
	t0=$(now_us)
	/usr/bin/time -f '%M' -o "$W/rss" "$@" >"$log" 2>&1 || rc=$?
	sync -f "$W"
	t1=$(now_us)
	T=$((t1 - t0))
	M=$(tail -1 "$W/rss")
	return $rc
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {if (NR == 0) print ""; else print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
maxof() { tr ' ' '\n' | grep . | sort -g | tail -1; }

declare -A TIMES RSS FAILS STEPS
FAILURES=()
FLOOR=""


echo "snapctl build vs buildah bud: RUNS=$RUNS, on $fs, $(uname -r), $(nproc) CPUs"
echo "  snapctl: $("$SNAPCTL" version 2>&1 | head -1) ($(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo ", work tree with uncommitted changes"))"
echo "  peer:    $(buildah --version), $(runc --version | head -1), storage overlay (native diff: $(B info 2>/dev/null | sed -n 's/.*"Native Overlay Diff": "\([a-z]*\)".*/\1/p' || echo '?'))"
fresh_stores
echo "  base image: busybox:latest, manifest $checked_base in both stores"
[ -n "$tree_note" ] && echo "  $tree_note"
if [ "$BUILDAH_GZIP" = 1 ]; then
	echo "  layers: both gzip each new layer (snapctl level 1 via ISA-L into its content store, and keeps the unpacked"
	echo "          snapshot; buildah --disable-compression=false: Go pgzip default level, a temporary blob, stored unpacked)"
else
	echo "  layers: snapctl gzip -1 into its content store; buildah uncompressed (its default, BUILDAH_GZIP=0)"
fi

# ---- start-up cost ---------------------------------------------------------
declare -A SU
for ((i = 1; i <= RUNS; i++)); do
	order="snapctl buildah"
	((i % 2 == 0)) && order="buildah snapctl"
	for tool in $order; do
		if [ "$tool" = snapctl ]; then v=("$SNAPCTL" version); l=("$SNAPCTL" --root "$W/stores/snapctl" image ls)
		else v=(buildah --version); l=(B images); fi
		drop
		t0=$(now_us); "${v[@]}" >/dev/null; t1=$(now_us)
		SU[$tool-cold]+=" $((t1 - t0))"
		t0=$(now_us); "${v[@]}" >/dev/null; t1=$(now_us)
		SU[$tool-warm]+=" $((t1 - t0))"
		"${l[@]}" >/dev/null
		t0=$(now_us); "${l[@]}" >/dev/null; t1=$(now_us)
		SU[$tool-ls]+=" $((t1 - t0))"
	done
	t0=$(now_us); /usr/bin/time -f '%M' -o "$W/rss" true; t1=$(now_us)
	SU[overhead]+=" $((t1 - t0))"
done
ms() { awk -v u="$1" 'BEGIN {printf "%.1f", u / 1000}'; }
echo
echo "start-up cost, wall ms, median of $RUNS (cold: right after dropping caches; warm: run again)"
printf '  %-52s %10s %10s\n' "" snapctl buildah
printf '  %-52s %10s %10s\n' "version (snapctl version / buildah --version), cold" \
	"$(ms "$(echo "${SU[snapctl-cold]}" | median)")" "$(ms "$(echo "${SU[buildah-cold]}" | median)")"
printf '  %-52s %10s %10s\n' "version, warm" \
	"$(ms "$(echo "${SU[snapctl-warm]}" | median)")" "$(ms "$(echo "${SU[buildah-warm]}" | median)")"
printf '  %-52s %10s %10s\n' "open the store and list images, warm" \
	"$(ms "$(echo "${SU[snapctl-ls]}" | median)")" "$(ms "$(echo "${SU[buildah-ls]}" | median)")"
echo "  overhead in every build figure below (/usr/bin/time -f %M true, warm): $(ms "$(echo "${SU[overhead]}" | median)") ms"

# ---- builds ----------------------------------------------------------------
PHASES="cold nochange edit"
declare -A GROWTH
echo
echo "runs (wall s, peak RSS MiB, build steps run):"
for ((i = 1; i <= RUNS; i++)); do
	order="snapctl buildah"
	((i % 2 == 0)) && order="buildah snapctl"
	for c in $CASES; do
		fresh_stores
		if [ "$c" = e-cpu ]; then
			# The floor: e-cpu's two RUN commands alone, concurrently, with the host's busybox.
			drop
			t0=$(now_us)
			busybox sh -c '(dd if=/dev/zero bs=1M count=200 2>/dev/null | md5sum >/dev/null) &
				dd if=/dev/zero bs=1M count=200 2>/dev/null | sha1sum >/dev/null; wait'
			t1=$(now_us)
			FLOOR+=" $((t1 - t0))"
			printf '  %d %-10s %-8s %-8s %8.3f s  (the two RUN commands alone)\n' "$i" "$c" floor host \
				"$(awk -v u="$((t1 - t0))" 'BEGIN {print u / 1e6}')"
		fi
		declare -A dead=()
		for p in $PHASES; do
			if [ "$p" = edit ]; then
				printf 'edit %s %s\n' "$i" "$EPOCHREALTIME" >>"$W/ctx/$c/${EDIT[$c]}"
			fi
			for tool in $order; do
				k="$c|$p|$tool"
				if [ -n "${dead[$tool]:-}" ]; then
					FAILS[$k]=$((${FAILS[$k]:-0} + 1))
					continue
				fi
				build_cmd "$tool" "$c"
				log="$W/logs/$i-$c-$p-$tool.log"
				if timed "$log" "${CMD[@]}"; then
					TIMES[$k]+=" $T"
					RSS[$k]+=" $M"
					n=$(steps_run "$tool" "$log")
					STEPS[$k]+=" $n"
					printf '  %d %-10s %-8s %-8s %8.3f s %7.1f MiB  %s steps run\n' "$i" "$c" "$p" "$tool" \
						"$(awk -v u="$T" 'BEGIN {print u / 1e6}')" "$(awk -v k="$M" 'BEGIN {print k / 1024}')" "$n"
				else
					FAILS[$k]=$((${FAILS[$k]:-0} + 1))
					dead[$tool]=1
					msg="iteration $i, $c, $p, $tool: $(printf '%q ' "${CMD[@]}")"
					FAILURES+=("$msg"$'\n'"$(tail -n 8 "$log" | sed 's/^/      /')")
					printf '  %d %-10s %-8s %-8s FAILED (log below; later phases of this case skipped for %s)\n' "$i" "$c" "$p" "$tool" "$tool"
					tail -n 8 "$log" | sed 's/^/      /'
				fi
			done
		done
		unset dead
		# What the three builds left in each store (du, KiB), kept from the last iteration.
		GROWTH[$c-snapctl]="$(($(du -sk "$W/stores/snapctl" | cut -f1) - BASE_SIZE_S)) snapshots=$(du -sk "$W/stores/snapctl/snapshots" | cut -f1) blobs=$(du -sk "$W/stores/snapctl/blobs" | cut -f1)"
		GROWTH[$c-buildah]="$(($(du -sk "$W/stores/buildah" | cut -f1) - BASE_SIZE_B)) overlay=$(du -sk "$W/stores/buildah/root/overlay" | cut -f1) overlay-layers=$(du -sk "$W/stores/buildah/root/overlay-layers" | cut -f1) overlay-images=$(du -sk "$W/stores/buildah/root/overlay-images" | cut -f1)"
	done
done

# ---- results ---------------------------------------------------------------
echo
echo "snapctl build vs buildah bud on $fs; median of $RUNS runs; caches dropped before each timed run;"
echo "each figure is BUILD; sync -f; ratio = buildah / snapctl (higher is better for snapctl); RSS = largest peak"
printf '%-10s %-9s %11s %11s %8s %12s %12s  %s\n' case phase "snapctl s" "buildah s" ratio "snapctl MiB" "buildah MiB" "goal (time; memory)"
for c in $CASES; do
	for p in $PHASES; do
		ts=$(echo "${TIMES[$c|$p|snapctl]:-}" | median)
		tb=$(echo "${TIMES[$c|$p|buildah]:-}" | median)
		ms_=$(echo "${RSS[$c|$p|snapctl]:-}" | maxof)
		mb=$(echo "${RSS[$c|$p|buildah]:-}" | maxof)
		fs_=${FAILS[$c|$p|snapctl]:-0}
		fb=${FAILS[$c|$p|buildah]:-0}
		goal=5
		[ "$p" = cold ] && goal=3
		# e-cpu's cold build: judged on the time beyond the container work itself.
		floor=0 beyond=""
		if [ "$c" = e-cpu ] && [ "$p" = cold ] && [ -n "$FLOOR" ]; then
			floor=$(echo "$FLOOR" | median)
			beyond=" (beyond the RUN work)"
		fi
		cell() { # MEDIAN FAILS
			if [ -z "$1" ]; then echo FAIL
			elif [ "$2" -gt 0 ]; then awk -v u="$1" -v f="$2" 'BEGIN {printf "%.3f(%df)", u / 1e6, f}'
			else awk -v u="$1" 'BEGIN {printf "%.3f", u / 1e6}'; fi
		}
		mib() { [ -n "$1" ] && awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}' || echo -; }
		if [ -n "$ts" ] && [ -n "$tb" ]; then
			ratio=$(awk -v a="$tb" -v b="$ts" 'BEGIN {printf "%.1fx", a / b}')
			verdict=$(awk -v a="$tb" -v b="$ts" -v f="$floor" -v g="$goal" -v x="$beyond" 'BEGIN {
				r = (b - f > 0) ? (a - f) / (b - f) : 0
				printf "%s%s", (r >= g) ? ">=" g "x met" : ">=" g "x MISSED", x }')
			verdict+="; $(awk -v a="$ms_" -v b="$mb" 'BEGIN {print (a < b) ? "lower: met" : "lower: MISSED"}')"
		else
			ratio=-
			verdict="n/a (a build failed)"
		fi
		printf '%-10s %-9s %11s %11s %8s %12s %12s  %s\n' "$c" "$p" "$(cell "$ts" "$fs_")" "$(cell "$tb" "$fb")" \
			"$ratio" "$(mib "$ms_")" "$(mib "$mb")" "$verdict"
	done
done
echo "(N f) after a figure: N of the $RUNS runs failed or were skipped; the median is of the others."
if [ -n "$FLOOR" ]; then
	f=$(echo "$FLOOR" | median)
	ts=$(echo "${TIMES[e-cpu|cold|snapctl]:-}" | median)
	tb=$(echo "${TIMES[e-cpu|cold|buildah]:-}" | median)
	echo "e-cpu: its two RUN commands alone on the host, concurrently: $(ms "$f") ms (median); a cold build's"
	if [ -n "$ts" ] && [ -n "$tb" ]; then
		echo "  time beyond that: snapctl $(ms $((${ts%.*} - ${f%.*}))) ms, buildah $(ms $((${tb%.*} - ${f%.*}))) ms ($(awk -v a="$tb" -v b="$ts" -v f="$f" 'BEGIN {printf "%.1fx", (a - f) / (b - f)}'))"
	fi
fi
echo
echo "goals (from the issue, for reference): every rebuild (nochange, edit) >= 5x faster than buildah,"
echo "every cold build >= 3x faster, peak memory lower. The goal column compares the medians above."
echo
echo "cache check: build steps run per phase, per iteration (a no-change rebuild should run 0):"
for c in $CASES; do
	for p in $PHASES; do
		printf '  %-10s %-9s snapctl:%-8s buildah:%s\n' "$c" "$p" "$(echo "${STEPS[$c|$p|snapctl]:-}" | sed 's/^ //; s/ /,/g')" \
			"$(echo "${STEPS[$c|$p|buildah]:-}" | sed 's/^ //; s/ /,/g')"
	done
done
echo
echo "what the three builds of a case left in each store (du KiB beyond the imported base; last iteration):"
for c in $CASES; do
	printf '  %-10s snapctl +%s\n' "$c" "${GROWTH[$c-snapctl]:-?}"
	printf '  %-10s buildah +%s\n' "" "${GROWTH[$c-buildah]:-?}"
done
echo "  snapctl keeps each step's committed snapshot (unpacked) and its gzip layer blob; buildah keeps each"
echo "  step's layer unpacked in overlay/ plus a gzip'd tar-split in overlay-layers/ (no compressed blob)."
if [ ${#FAILURES[@]} -gt 0 ]; then
	echo
	echo "FAILED builds (command, then the end of its output):"
	for f in "${FAILURES[@]}"; do echo "  $f"; done
	exit 1
fi
