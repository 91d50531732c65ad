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
echo "A parent with children cannot go:"
snapctl snapshot rm demo-base || true
step snapshot rm demo-view
echo
echo "Done. The demo's snapshots stay in $(snapctl snapshot info demo-app >/dev/null && echo "the default store") for you to explore:"
echo "  ./build/cli/snapctl snapshot ls"
