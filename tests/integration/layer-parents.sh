#!/bin/bash
# Folders a layer implies but does not list, on every driver (btrfs when the
# test runs on btrfs, as under tests/lib/on-btrfs.sh): below a
# symlink of a lower layer an entry lands where the symlink points (resolved
# inside the root, as umoci does), and the symlink stays; otherwise the
# merged view keeps the lower folder's owner and mode (overlay copy-up).
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root

mk() { # mk TAR DIR [PATHS...]: a tar of DIR holding PATHS (default: everything)
	local tar=$1 dir=$2
	shift 2
	tar -C "$dir" -cf "$tar" "${@:-.}"
}
W="$TEST_TMP/w"
mkdir -p "$W/base/usr/bin" "$W/base/usr/share" "$W/top/usr/share" "$W/top/bin"
ln -s usr/bin "$W/base/bin"
chmod 0750 "$W/base/usr/share"
chown 12:34 "$W/base/usr/share"
echo y >"$W/top/usr/share/y"
echo x >"$W/top/bin/foo"
mk "$W/base.tar" "$W/base"
mk "$W/implied.tar" "$W/top" ./usr/share/y
mk "$W/through.tar" "$W/top" ./bin/foo

drivers=(overlay native)
[ "$(stat -f -c %T "$TEST_TMP")" = btrfs ] && drivers+=(btrfs)
for driver in "${drivers[@]}"; do
	STORE="$TEST_TMP/store-$driver"
	"$SNAPCTL" --root "$STORE" --driver $driver layer apply "$W/base.tar" base >/dev/null
	snap layer apply "$W/through.tar" through --parent base >/dev/null
	snap snapshot view vt through
	mkdir -p "$TEST_TMP/m"
	snap snapshot mount vt "$TEST_TMP/m"
	[ -L "$TEST_TMP/m/bin" ] || fail "$driver: /bin is no longer a symlink"
	[ "$(cat "$TEST_TMP/m/usr/bin/foo")" = x ] || fail "$driver: bin/foo did not land in usr/bin"
	umount "$TEST_TMP/m"
	snap layer apply "$W/implied.tar" top --parent base >/dev/null
	snap snapshot view v top
	mkdir -p "$TEST_TMP/m"
	snap snapshot mount v "$TEST_TMP/m"
	got=$(stat -c '%a %u:%g' "$TEST_TMP/m/usr/share")
	[ -L "$TEST_TMP/m/bin" ] || fail "$driver: /bin is no longer the lower layer's symlink"
	[ "$(cat "$TEST_TMP/m/usr/share/y")" = y ] || fail "$driver: the new file is missing"
	umount "$TEST_TMP/m"
	[ "$got" = "750 12:34" ] || fail "$driver: usr/share shows '$got', not the lower folder's 750 12:34"
	pass "$driver: implied folders, and below a symlink"
done
