#!/bin/bash
# A tour of what snapctl does so far, on its default store
# (/var/lib/snapctl for root, or $SNAPCTL_ROOT). Builds snapctl first.
# Rerunnable: it removes what an earlier run left.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d build/meson-info ]; then
	meson setup build >/dev/null
fi
ninja -C build >/dev/null
snapctl() { ./build/cli/snapctl "$@"; }
step() { printf '\n\033[1m$ snapctl %s\033[0m\n' "$*"; snapctl "$@"; }

mnt=$(mktemp -d)
trap 'umount "$mnt" 2>/dev/null || true; rmdir "$mnt"' EXIT

# Clean up an earlier run, children before parents.
snapctl image rm demo/busybox:latest 2>/dev/null || true
for k in demo-view demo-app demo-app-work demo-base demo-base-work; do
	snapctl snapshot rm "$k" 2>/dev/null || true
done
for l in $(snapctl lease ls --json | grep -o '"id": "demo-[^"]*"' | cut -d'"' -f4); do
	snapctl lease rm "$l"
done

step version
echo "A base layer: prepare an active snapshot, mount it, write, commit."
step snapshot prepare demo-base-work
step snapshot mount demo-base-work "$mnt"
mkdir -p "$mnt/etc" && echo "hello from the base layer" >"$mnt/etc/motd"
umount "$mnt"
step snapshot commit demo-base demo-base-work

echo
echo "An app layer on top: the base's files show through; changes stay in the new layer."
step snapshot prepare demo-app-work demo-base --label demo=yes
step snapshot mount demo-app-work "$mnt"
echo "app" >"$mnt/app.txt"
echo "changed by the app layer" >"$mnt/etc/motd"
ls -l "$mnt"
umount "$mnt"
step snapshot commit demo-app demo-app-work

echo
echo "A read-only view of the base: still the original file."
step snapshot view demo-view demo-base
step snapshot mount demo-view "$mnt"
cat "$mnt/etc/motd"
umount "$mnt"

step snapshot ls
step snapshot usage demo-base demo-app
step snapshot mounts /mnt demo-view
step snapshot info demo-app

echo
echo "Leases protect objects from garbage collection while a build runs."
step lease create --id demo-build --expires 1h
step lease add demo-build snapshot demo-app
step lease ls

echo
echo "Images: a busybox image made offline from Debian's busybox-static, imported,"
echo "its layers unpacked into snapshots keyed by chain id, then exported again."
bbdir=$(mktemp -d)
trap 'umount "$mnt" 2>/dev/null || true; rmdir "$mnt"; rm -rf "$bbdir"' EXIT
./scripts/make-busybox-image.sh "$bbdir/layout" demo/busybox:latest >/dev/null
snapctl image rm demo/app:latest 2>/dev/null || true
snapctl image rm demo/busybox:latest 2>/dev/null || true
step image import "$bbdir/layout" --name demo/busybox:latest
step image ls
step image export demo/busybox:latest -o "type=oci,dest=$bbdir/export.tar"
ls -l "$bbdir/export.tar"

echo
echo "Builds: a two-stage Dockerfile on that busybox image (RUN, COPY --from, ENTRYPOINT)."
ctx="$bbdir/app"
mkdir -p "$ctx/src"
cat >"$ctx/Dockerfile" <<'DF'
FROM demo/busybox:latest AS build
WORKDIR /src
COPY src/ .
RUN cat greeting.txt name.txt > message.txt && wc -c message.txt
FROM demo/busybox:latest
COPY --from=build /src/message.txt /message.txt
ENTRYPOINT ["cat", "/message.txt"]
DF
echo "hello from" >"$ctx/src/greeting.txt"
echo "a snapctl build" >"$ctx/src/name.txt"
snapctl image rm demo/app:latest 2>/dev/null || true
step build --progress plain -t demo/app:latest "$ctx"
echo
echo "The same build again: every step comes from the cache."
step build --progress plain -t demo/app:latest "$ctx"
echo
echo "Edit one file: the steps from its COPY on run again, and the MISS line says why."
echo "the demo, edited at $(date +%H:%M:%S.%N)" >"$ctx/src/name.txt"
step build --progress plain -t demo/app:latest -o "type=oci,dest=$bbdir/app.tar" "$ctx"
ls -l "$bbdir/app.tar"
step image ls

echo
echo "Disk use, per type: what is held, and what a prune could free."
step df
echo
echo "A parent with children cannot go:"
snapctl snapshot rm demo-base || true
step snapshot rm demo-view
echo
echo "What a cron job would prune (nothing leased, pinned or named by an image goes):"
step prune --dry-run --verbose
step gc --show-policy
echo
echo "Done. The demo's records stay in the default store for you to explore:"
echo "  ./build/cli/snapctl snapshot ls; ./build/cli/snapctl df -v; ./build/cli/snapctl prune --help"
