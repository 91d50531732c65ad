#!/bin/bash
# on-btrfs.sh CMD ARG...: runs CMD with TMPDIR on a btrfs file system made for
# it (a loop device over a sparse file), so the stores a test makes there
# choose the btrfs driver; removes it all afterwards. CMD's exit status is
# ours. Needs root (exit 77 otherwise, as the tests skip).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
	echo "skip: btrfs tests need root"
	exit 77
fi
top=$(mktemp -d "${TMPDIR:-/tmp}/snapctl-btrfs.XXXXXX")
dev=
cleanup() {
	set +e
	grep -o " $top/mnt[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
	[ -n "$dev" ] && losetup -d "$dev"
	rm -rf "$top"
}
trap cleanup EXIT
truncate -s "${BTRFS_SIZE:-4G}" "$top/img"
mkfs.btrfs -q -f "$top/img" >/dev/null
dev=$(losetup -f --show "$top/img")
mkdir "$top/mnt"
mount "$dev" "$top/mnt"
mkdir "$top/mnt/tmp"
status=0
TMPDIR="$top/mnt/tmp" "$@" || status=$?
exit $status
