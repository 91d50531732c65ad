#!/bin/bash
# The tar framing of layers (snapshotter/layer/tar-write.c), read by GNU
# tar and by our own apply: names and link targets over 100 bytes, owner
# ids over ustar's 2,097,151, a time before 1970, xattrs (SCHILY.xattr),
# hard links, devices and fifos; the tree applied back is the same (times
# in whole seconds), and the same tree diffs to the same bytes.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root
STORE="$TEST_TMP/store"
snap() { "$SNAPCTL" --root "$STORE" --driver native "$@"; }
snap snapshot prepare w >/dev/null
FS=$(ls -d "$STORE"/snapshots/*/fs)
long=$(printf 'd%.0s' $(seq 1 60))
mkdir -p "$FS/$long/$long"
echo deep >"$FS/$long/$long/file-with-a-long-name-$long"
ln -s "/very/long/target/$long/$long/x" "$FS/longlink"
echo x >"$FS/xa"
setfattr -n user.test -v "hello world" "$FS/xa"
setfattr -n security.capability -v 0sAQAAAgAgAAAAAAAAAAAAAAAAAAA= "$FS/xa"
echo h >"$FS/h1"
ln "$FS/h1" "$FS/h2"
mknod "$FS/dev" c 1 3
mkfifo "$FS/fifo"
echo big >"$FS/bigid"
chown 3000000:3000001 "$FS/bigid"
echo old >"$FS/old"
touch -d '1960-01-01 00:00:00 UTC' "$FS/old"
snap snapshot commit c w >/dev/null
d1=$(snap layer diff c --compression uncompressed | cut -d' ' -f1)
B="$STORE/blobs/sha256/${d1#sha256:}"

tar --xattrs --xattrs-include='*' -tvv -f "$B" >"$TEST_TMP/list" 2>"$TEST_TMP/tar.err" || fail "GNU tar cannot list the layer: $(cat "$TEST_TMP/tar.err")"
grep -q " 3000000/3000001 .* bigid$" "$TEST_TMP/list" || fail "big owner ids: $(grep bigid "$TEST_TMP/list")"
grep -q "/file-with-a-long-name-$long$" "$TEST_TMP/list" || fail "long name lost"
grep -q "longlink -> /very/long/target/$long/$long/x$" "$TEST_TMP/list" || fail "long link target lost"
grep -q "^h.* h2 link to h1$" "$TEST_TMP/list" || fail "hard link: $(grep h2 "$TEST_TMP/list")"
grep -q "^c.* 1,3 .* dev$" "$TEST_TMP/list" || fail "device: $(grep dev "$TEST_TMP/list")"
grep -q "^p.* fifo$" "$TEST_TMP/list" || fail "fifo"
grep -q "x: 11 user.test" "$TEST_TMP/list" || fail "xattr user.test: $(cat "$TEST_TMP/list")"
grep -q "x: 20 security.capability" "$TEST_TMP/list" || fail "xattr security.capability"
grep -q " 1960-01-01 .* old$" "$TEST_TMP/list" || fail "time before 1970: $(grep old "$TEST_TMP/list")"
pass "GNU tar reads long names and links, big ids, old times, xattrs, links, devices"

mkdir -p "$TEST_TMP/gnu"
tar --xattrs --xattrs-include='*' -xf "$B" -C "$TEST_TMP/gnu" 2>/dev/null
[ "$(getfattr --only-values -n user.test "$TEST_TMP/gnu/xa" 2>/dev/null)" = "hello world" ] || fail "GNU tar's xattr value"

snap layer apply "$B" back >/dev/null
FS2=$(ls -d "$STORE"/snapshots/*/fs | while read -r d; do [ "$d" != "$FS" ] && [ -e "$d/xa" ] && echo "$d"; done | head -1)
list() { (cd "$1" && find . -mindepth 1 -printf '%p %y %m %U:%G %s %l %TY%Tm%Td%TH%TM%TS\n' | sed 's/\.[0-9]*$//' | LC_ALL=C sort); }
list "$FS" >"$TEST_TMP/a"
list "$FS2" >"$TEST_TMP/b"
diff -u "$TEST_TMP/a" "$TEST_TMP/b" >"$TEST_TMP/d" || fail "applied back, the tree differs: $(head -20 "$TEST_TMP/d")"
[ "$(getfattr --only-values -n security.capability "$FS2/xa" 2>/dev/null | base64)" = \
	"$(getfattr --only-values -n security.capability "$FS/xa" 2>/dev/null | base64)" ] ||
	fail "security.capability differs after apply"
pass "applied back: the same tree, owners, links, devices, xattrs and times"

d2=$(snap layer diff c --compression uncompressed | cut -d' ' -f1)
[ "$d1" = "$d2" ] || fail "the same snapshot diffed to $d1 then $d2"
pass "the same snapshot gives the same layer bytes: $d1"
