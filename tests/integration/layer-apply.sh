#!/bin/bash
# Layer apply writes file data through the copy engine's batched writer:
# io_uring by default, pwrite with SNAPCTL_NO_IO_URING=1. Both must give the
# same tree, equal to the one the layer was made from (contents, holes, modes
# with set-id bits, owners, nanosecond times, xattrs with a file capability
# that a write would drop, hard links, a path replaced later in the stream);
# a full disk must fail with one line naming the file and leave the store as
# it was; and memory must not grow with the layer.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root
command -v /usr/bin/time >/dev/null || fail "/usr/bin/time missing (scripts/setup.sh installs it)"
STORE="$TEST_TMP/store"

# Whether this machine lets a process use io_uring at all (then the default
# run must use it).
uring_allowed=1
if [ "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)" != 0 ]; then
	uring_allowed=0
	# In CI a green run must mean the io_uring paths ran.
	[ -z "${CI:-}" ] || fail "io_uring is disabled on this machine (kernel.io_uring_disabled), and CI must run its paths"
	echo "note: io_uring is disabled on this machine (kernel.io_uring_disabled)"
fi

# apply_both LAYER NAME: applies LAYER as NAME-uring and NAME-rw, checking
# which way each wrote its data.
apply_both() {
	SNAPCTL_DEBUG=1 snap layer apply "$1" "$2-uring" >/dev/null 2>"$TEST_TMP/uring.log" ||
		fail "apply with io_uring: $(grep -v ' debug ' "$TEST_TMP/uring.log")"
	SNAPCTL_NO_IO_URING=1 SNAPCTL_DEBUG=1 snap layer apply "$1" "$2-rw" >/dev/null \
		2>"$TEST_TMP/rw.log" || fail "apply with pwrite: $(grep -v ' debug ' "$TEST_TMP/rw.log")"
	grep -q "writer uses read_write" "$TEST_TMP/rw.log" ||
		fail "SNAPCTL_NO_IO_URING=1 did not select pwrite: $(grep writer "$TEST_TMP/rw.log")"
	if [ "$uring_allowed" = 1 ]; then
		grep -q "writer uses io_uring" "$TEST_TMP/uring.log" ||
			fail "the default apply did not use io_uring: $(grep -i uring "$TEST_TMP/uring.log")"
	fi
}
fs_of() { echo "$STORE/snapshots/$(snap snapshot info "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')/fs"; }

# A listing of everything a layer carries, the root itself left out: atimes
# of non-folders first (reading a symlink or a file moves them), then type,
# mode, owner, size, link count, mtime (ns), symlink target, xattrs,
# contents and which files keep holes.
tree_list() {
	(
		cd "$1"
		[ "${2:-}" = no-atime ] || find . -mindepth 1 ! -type d -printf '%p atime %A@\n' | LC_ALL=C sort
		find . -mindepth 1 -printf '%p %y %m %U:%G %s %n %T@ %l\n' | LC_ALL=C sort
		find . -mindepth 1 | LC_ALL=C sort | tr '\n' '\0' |
			xargs -0 getfattr -h -d -m - --absolute-names 2>/dev/null | grep -v '^trusted.overlay' || true
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
		find . -type f -printf '%p %S\n' | awk '$2 < 0.5 {print $1, "sparse"}' | LC_ALL=C sort
	)
}
same_tree() {
	tree_list "$1" "${4:-}" >"$TEST_TMP/a.list"
	tree_list "$2" "${4:-}" >"$TEST_TMP/b.list"
	diff -u "$TEST_TMP/a.list" "$TEST_TMP/b.list" >"$TEST_TMP/tree.diff" ||
		fail "$3: trees differ: $(head -40 "$TEST_TMP/tree.diff")"
	pass "$3: trees are the same ($(grep -c '' "$TEST_TMP/a.list") lines compared)"
}

# The source tree: more small files than the queue has slots, files on both
# sides of the 128 KiB chunk, one spanning several 8 MiB writeback windows,
# sparse ones (one ending in a hole), set-id bits, owners, times with
# nanoseconds, xattrs, a file capability, hard links, symlinks, empty files.
SRC="$TEST_TMP/src"
python3 - "$SRC" <<'PY'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(4)
def put(rel, data, mode=0o644, uid=0, gid=0):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    os.chown(p, uid, gid)
    os.chmod(p, mode)
for i in range(1500):
    put("small/d%02d/f%04d" % (i % 30, i), rnd.randbytes(rnd.randint(0, 20000)),
        rnd.choice([0o644, 0o600, 0o755, 0o444]), rnd.choice([0, 1000, 65534]), rnd.choice([0, 100]))
for n in (131071, 131072, 131073, 262144):
    put("edge/%d" % n, rnd.randbytes(n))
put("big/blob", rnd.randbytes(37 << 20) + b"end")
put("modes/setuid", b"#!/bin/sh\n" * 50, 0o4755)
put("modes/setgid", b"data" * 4000, 0o2711, 0, 100)
put("modes/sticky-ro", b"x" * 300000, 0o1444, 1234, 5678)
put("empty/zero", b"")
put("empty/also", b"", 0o600, 1000, 1000)
put("caps/ping", b"\x7fELF" + rnd.randbytes(70000), 0o755)
put("x/attrs", rnd.randbytes(5000))
os.setxattr(os.path.join(root, "x/attrs"), "user.note", b"kept after the data")
os.setxattr(os.path.join(root, "x/attrs"), "user.empty", b"")
for name, holes in (("sparse/middle", [(5 << 20, 1000), (12 << 20, 100000)]), ("sparse/tail", [(0, 4096)])):
    p = os.path.join(root, name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        for off, n in holes:
            f.seek(off)
            f.write(rnd.randbytes(n))
        f.truncate(20 << 20)
os.link(os.path.join(root, "edge/131073"), os.path.join(root, "edge/hardlink"))
os.symlink("../edge/131072", os.path.join(root, "x/sym"))
os.symlink("/nowhere", os.path.join(root, "x/dangling"))
os.makedirs(os.path.join(root, "x/emptydir"))
os.chmod(os.path.join(root, "x/emptydir"), 0o700)
# Times with nanoseconds on everything, folders last (deepest first).
for dirpath, dirs, files in sorted(os.walk(root), key=lambda w: -w[0].count("/")):
    for n in files + dirs:
        p = os.path.join(dirpath, n)
        t = 1500000000 + rnd.randint(0, 10**8)
        os.utime(p, ns=(t * 10**9 + rnd.randint(0, 10**9 - 1), t * 10**9 + rnd.randint(0, 10**9 - 1)),
                 follow_symlinks=False)
PY
setcap cap_net_raw+ep "$SRC/caps/ping" || fail "setcap"
touch -h -d @1600000000.123456789 "$SRC/caps/ping"
getfattr -n security.capability "$SRC/caps/ping" >/dev/null 2>&1 || fail "no capability on the source file"

# GNU tar makes the layer: pax headers with nanosecond times, xattrs and
# sparse maps; then a second version of one file appended, replacing the
# first in the same stream.
tar --format=pax --xattrs --xattrs-include='*' --sparse --numeric-owner \
	-cf "$TEST_TMP/layer.tar" -C "$SRC" .
cp -a "$SRC/edge/131072" "$TEST_TMP/orig-131072"
head -c 70000 /dev/urandom >"$SRC/edge/131072"
touch -d @1600000001.5 "$SRC/edge/131072"
tar --format=pax --numeric-owner -rf "$TEST_TMP/layer.tar" -C "$SRC" ./edge/131072
gzip -1 "$TEST_TMP/layer.tar"
LAYER="$TEST_TMP/layer.tar.gz"

apply_both "$LAYER" t
U=$(fs_of t-uring)
R=$(fs_of t-rw)
same_tree "$U" "$R" "io_uring vs pwrite"
same_tree "$SRC" "$U" "source vs io_uring apply" no-atime
getfattr -n security.capability "$U/caps/ping" >/dev/null 2>&1 || fail "the file capability was lost"
[ "$(stat -c %a "$U/modes/setuid")" = 4755 ] || fail "setuid bit lost: $(stat -c %a "$U/modes/setuid")"
[ "$(stat -c %h "$U/edge/hardlink")" = 2 ] || fail "hard link lost"
cmp -s "$U/edge/131072" "$TEST_TMP/orig-131072" && fail "the later entry did not replace the first"
[ "$(stat -c %b "$U/sparse/tail")" -lt 1000 ] || fail "holes not kept: $(stat -c '%s bytes %b blocks' "$U/sparse/tail")"
check_store_consistent
pass "apply through io_uring and through pwrite give the source tree"

# Memory does not grow with the layer: 256 MiB of data, both ways.
mkdir -p "$TEST_TMP/bigsrc"
head -c 256M /dev/zero >"$TEST_TMP/bigsrc/zeros"
tar -czf "$TEST_TMP/big.tgz" -C "$TEST_TMP/bigsrc" .
rm -rf "$TEST_TMP/bigsrc"
for mode in uring rw; do
	env=()
	[ $mode = rw ] && env=(SNAPCTL_NO_IO_URING=1)
	env "${env[@]}" /usr/bin/time -f %M -o "$TEST_TMP/rss" \
		"$SNAPCTL" --root "$STORE" layer apply "$TEST_TMP/big.tgz" "big-$mode" >/dev/null
	kib=$(cat "$TEST_TMP/rss")
	[ "$kib" -lt $((64 * 1024)) ] || fail "$mode: peak memory $kib KiB for a 256 MiB layer"
	pass "$mode: peak memory $((kib / 1024)) MiB applying 256 MiB"
done
[ "$(stat -c %s "$(fs_of big-uring)/zeros")" = $((256 << 20)) ] || fail "big file incomplete"
cmp -s "$(fs_of big-uring)/zeros" "$(fs_of big-rw)/zeros" || fail "big files differ"

# A disk that fills: one line naming the file, nothing left behind, both ways.
make_loop_fs ext4 40M "$TEST_TMP/small"
STORE="$TEST_TMP/small/store"
snap snapshot prepare w >/dev/null
snap snapshot commit base w
mkdir -p "$TEST_TMP/fill"
for i in 1 2 3; do head -c 20M /dev/urandom >"$TEST_TMP/fill/f$i"; done
tar -czf "$TEST_TMP/fill.tgz" -C "$TEST_TMP/fill" .
state() {
	snap snapshot ls --json | grep -E '"(key|kind|parent)"'
	ls -A "$STORE/snapshots" "$STORE/tmp" 2>/dev/null
}
state >"$TEST_TMP/before"
expect_error 1 "cannot write '(\./)?f[123]': No space left on device" \
	snap layer apply "$TEST_TMP/fill.tgz" full --parent base
SNAPCTL_NO_IO_URING=1 expect_error 1 "cannot write '(\./)?f[123]': No space left on device" \
	snap layer apply "$TEST_TMP/fill.tgz" full --parent base
# ...and that second run really wrote with pwrite, and failed the same way.
st=0
SNAPCTL_NO_IO_URING=1 SNAPCTL_DEBUG=1 snap layer apply "$TEST_TMP/fill.tgz" full --parent base \
	>/dev/null 2>"$TEST_TMP/full-rw.log" || st=$?
[ "$st" = 1 ] || fail "the pwrite apply on a full disk exited $st"
grep -q "writer uses read_write" "$TEST_TMP/full-rw.log" ||
	fail "the full-disk apply did not use pwrite: $(grep writer "$TEST_TMP/full-rw.log")"
grep -Eq "cannot write '(\./)?f[123]': No space left on device" "$TEST_TMP/full-rw.log" ||
	fail "the pwrite apply failed otherwise: $(grep -v ' debug ' "$TEST_TMP/full-rw.log")"
state >"$TEST_TMP/after"
diff -u "$TEST_TMP/before" "$TEST_TMP/after" || fail "a failed apply changed the store"
check_store_consistent
expect_error 1 "No space left on device" snap layer apply "$LAYER" fits --parent base
snap snapshot prepare still-works base >/dev/null
pass "a full disk fails cleanly both ways"

# Metadata that cannot grow on a full disk: LMDB's short write (EIO) reads as
# what it is, a full disk, naming the command, the key and what to do.
M="$TEST_TMP/meta-full"
make_loop_fs ext4 40M "$M"
STORE="$M/store"
snap snapshot prepare first >/dev/null
head -c 64M /dev/zero >"$M/fill" 2>/dev/null || true
sync
avail=$(df -k --output=avail "$M" | tail -n1)
[ "$avail" -gt 12 ] && { head -c $(((avail - 12) * 1024)) /dev/zero >"$M/fill2" 2>/dev/null || true; sync; }
big=$(head -c 4000 /dev/zero | tr '\0' x)
state() { snap snapshot ls --json | grep -E '"(key|kind)"'; }
state >"$TEST_TMP/before"
for i in 1 2 3; do
	expect_error 1 "prepare 'k$i': cannot commit metadata: no space left on device under '.*'; free some \(snapctl prune" \
		snap snapshot prepare "k$i" --label "a=$big" --label "b=$big" --label "c=$big"
done
state >"$TEST_TMP/after"
diff -u "$TEST_TMP/before" "$TEST_TMP/after" || fail "a failed metadata write changed the store"
rm -f "$M/fill" "$M/fill2"
snap snapshot prepare k1 --label "a=$big" >/dev/null || fail "prepare after freeing space"
pass "metadata on a full disk: one line saying so, nothing changed, works again once space is free"

# Owners and modes are the tar's, whatever the kernel would give a new file:
# files are created with their final mode and not chowned or chmodded where
# the kernel gives that anyway, so a set-group-id folder, the umask and a
# default ACL must each still come out as the tar says.
python3 - "$TEST_TMP/own.tar" "$TEST_TMP/own.want" <<'PY'
import io, sys, tarfile
want = []
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    def add(name, kind, mode, uid=0, gid=0):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = kind, mode, uid, gid, 1000000000
        data = None
        if kind == tarfile.REGTYPE:
            ti.size, data = 1, io.BytesIO(b"x")
        if kind == tarfile.SYMTYPE:
            ti.linkname = "elsewhere"
        t.addfile(ti, data)
        want.append("%s %s %d %d" % (name, "-" if kind == tarfile.SYMTYPE else "%o" % mode, uid, gid))
    add("sg", tarfile.DIRTYPE, 0o2775, 0, 5)
    add("sg/root-group", tarfile.REGTYPE, 0o644)
    add("sg/its-group", tarfile.REGTYPE, 0o644, 0, 5)
    add("sg/link", tarfile.SYMTYPE, 0o777)
    add("plain", tarfile.DIRTYPE, 0o755)
    for m in (0o644, 0o666, 0o777, 0o600, 0o444, 0o4755, 0o2755, 0o1755, 0o0):
        add("plain/m%o" % m, tarfile.REGTYPE, m)
    add("plain/user", tarfile.REGTYPE, 0o644, 1000, 1000)
    add("plain/user-link", tarfile.SYMTYPE, 0o777, 1000, 1000)
open(sys.argv[2], "w").write("\n".join(sorted(want)) + "\n")
PY
owners() { (cd "$1" && find . -mindepth 1 -printf '%P %y %m %U %G\n' | LC_ALL=C sort |
	awk '{print $1, ($2 == "l" ? "-" : $3), $4, $5}'); }
STORE0=$STORE
for how in "umask 022" "umask 077" "umask 000" "default ACL"; do
	STORE="$TEST_TMP/own-${how// /-}"
	mkdir -p "$STORE"
	[ "$how" = "default ACL" ] && setfacl -d -m u::rwx,g::---,o::--- "$STORE"
	( umask "${how#umask }" 2>/dev/null || umask 022; snap layer apply "$TEST_TMP/own.tar" own >/dev/null ) ||
		fail "$how: apply failed"
	diff -u "$TEST_TMP/own.want" <(owners "$(fs_of own)") ||
		fail "$how: owners or modes differ from the tar's"
done
STORE=$STORE0
pass "owners and modes as the tar says under umask 022, 077 and 000 and a default ACL, in a set-group-id folder too"
