#!/bin/bash
# The btrfs driver, checked from outside with btrfs-progs and e2fsprogs'
# filefrag: chosen on btrfs, one subvolume per snapshot (a snapshot of the
# parent's, read-only once committed and for views), extents shared with the
# parent, subvolumes gone after removal; its layer diff is the overlay diff of
# the same change, and it never looks at unchanged folders.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root

BT="$TEST_TMP/bt"
make_loop_fs btrfs 1G "$BT"
STORE="$BT/store"

[ "$(snap df --json | json 'd["driver"]')" = btrfs ] || fail "a store on btrfs did not choose the btrfs driver: $(snap df --json)"
snap df | head -n 1 | grep -q "btrfs driver" || fail "df does not name the driver: $(snap df | head -n 1)"
pass "a new store on btrfs uses the btrfs driver, and df says so"

# The base layer: nested folders, a hard link, a symlink, xattrs, and one big
# folder of small files that no change below touches.
python3 - "$TEST_TMP/base.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    def add(name, kind="file", data=b"", **kw):
        ti = tarfile.TarInfo(name)
        ti.mtime, ti.mode = 1700000000, 0o755 if kind == "dir" else 0o644
        for k, v in kw.items():
            setattr(ti, k, v)
        if kind == "dir":
            ti.type = tarfile.DIRTYPE
            t.addfile(ti)
        elif kind == "sym":
            ti.type = tarfile.SYMTYPE
            t.addfile(ti)
        elif kind == "link":
            ti.type = tarfile.LNKTYPE
            t.addfile(ti)
        else:
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    for d in ["d1", "d1/sub", "d2", "d3", "d3/deep", "d4", "d5", "d6", "d6/in", "many"]:
        add(d, "dir")
    for f in ["d1/a", "d1/c", "d1/x", "d1/same", "d1/sub/s", "d2/b", "d2/keep", "d3/deep/z",
              "d4/r", "d5/old", "d6/in/f", "other", "target"]:
        add(f, data=(f * 50).encode())
    add("d4/hard", "link", linkname="d4/r")
    add("lnk", "sym", linkname="target")
    add("big", data=bytes(range(256)) * 512)  # past btrfs's inline limit: an extent
    for i in range(3000):
        add("many/f%04d" % i, data=b"%d" % i)
PY

# The change, made the same way on both drivers in a mounted active snapshot.
change() {
	local m=$1
	echo new >"$m/d1/sub/new.txt"
	echo modified >"$m/d1/a"
	rm "$m/d2/b"
	rm -r "$m/d3"
	mkdir -p "$m/n1/n2" && echo x >"$m/n1/n2/f"
	chmod 600 "$m/d1/c"
	cat "$m/d4/r" >/dev/null # an access only: no change
	mv "$m/d5/old" "$m/d5/new"
	ln -sfn other "$m/lnk"
	setfattr -n user.k -v v "$m/d1/x"
	mv "$m/d6" "$m/d6moved"
	# Same size, other bytes, mtime put back: only the ctime tells. And the
	# same again as a new file renamed over the old: only the inode tells.
	python3 - "$m/d1/same" "$m/d1/sub/s" <<'PY'
import os, sys
for i, p in enumerate(sys.argv[1:]):
    st = os.stat(p)
    data = bytes(reversed(open(p, "rb").read()))
    tmp = p + ".new" if i else p
    open(tmp, "wb").write(data)
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    if i:
        os.rename(tmp, p)
PY
}

# tar_listing FILE: every entry of a layer tar but times, sorted.
tar_listing() {
	python3 - "$1" <<'PY'
import hashlib, sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    out = []
    for m in t.getmembers():
        line = [m.name, str(m.type), oct(m.mode), "%d:%d" % (m.uid, m.gid), m.linkname]
        if m.isfile():
            line.append(hashlib.sha256(t.extractfile(m).read()).hexdigest())
        line += sorted("%s=%s" % kv for kv in m.pax_headers.items() if kv[0].startswith("SCHILY.xattr."))
        out.append(" ".join(line))
print("\n".join(sorted(out)))
PY
}

# The overlay store lives on the test's own file system, the btrfs one on btrfs.
OV="$TEST_TMP/ov"
for drv in overlay btrfs; do
	S=$STORE
	[ $drv = overlay ] && S=$OV
	"$SNAPCTL" --root "$S" --driver $drv layer apply "$TEST_TMP/base.tar" base >/dev/null
	"$SNAPCTL" --root "$S" snapshot prepare work base >/dev/null
	mkdir -p "$TEST_TMP/m-$drv"
	"$SNAPCTL" --root "$S" snapshot mount work "$TEST_TMP/m-$drv"
	change "$TEST_TMP/m-$drv"
	umount "$TEST_TMP/m-$drv"
done

# Subvolumes, as btrfs-progs sees them.
fsdir() { echo "$STORE/snapshots/$(snap snapshot info "$1" | json 'd["id"]')/fs"; }
uuid() { btrfs subvolume show "$1" | awk '$1 == "UUID:" {print $2}'; }
puuid() { btrfs subvolume show "$1" | awk '$1 == "Parent" && $2 == "UUID:" {print $3}'; }
ro() { btrfs property get -ts "$1" ro; }
base_fs=$(fsdir base) work_fs=$(fsdir work)
[ "$(ro "$base_fs")" = "ro=true" ] || fail "committed base is not a read-only subvolume: $(ro "$base_fs")"
[ "$(ro "$work_fs")" = "ro=false" ] || fail "active work is not a writable subvolume: $(ro "$work_fs")"
[ "$(puuid "$work_fs")" = "$(uuid "$base_fs")" ] || fail "work is not a snapshot of base: parent uuid '$(puuid "$work_fs")', base '$(uuid "$base_fs")'"
snap snapshot view v base >/dev/null
v_fs=$(fsdir v)
[ "$(ro "$v_fs")" = "ro=true" ] && [ "$(puuid "$v_fs")" = "$(uuid "$base_fs")" ] ||
	fail "the view is not a read-only snapshot of base: $(ro "$v_fs"), parent $(puuid "$v_fs")"
filefrag -v "$work_fs/big" | grep -q shared || fail "an untouched file does not share its extent with the parent: $(filefrag -v "$work_fs/big")"
pass "snapshots are subvolumes: work and the view are snapshots of base, base and the view read-only, extents shared"

# The diffs: the same entries (times aside) on both drivers.
for drv in overlay btrfs; do
	S=$STORE
	[ $drv = overlay ] && S=$OV
	digest=$("$SNAPCTL" --root "$S" layer diff work --compression uncompressed --json | json 'd["digest"]')
	"$SNAPCTL" --root "$S" content cat "$digest" >"$TEST_TMP/$drv.tar"
	tar_listing "$TEST_TMP/$drv.tar" >"$TEST_TMP/$drv.list"
done
diff -u "$TEST_TMP/overlay.list" "$TEST_TMP/btrfs.list" >"$TEST_TMP/d" ||
	fail "the btrfs diff differs from the overlay diff of the same change: $(cat "$TEST_TMP/d")"
for want in d1/same d1/sub/s d1/c d1/x .wh.d3 d2/.wh.b d5/new d5/.wh.old n1/n2/f .wh.d6 d6moved/in/f; do
	grep -q "^$want " "$TEST_TMP/btrfs.list" || fail "the diff misses $want: $(cat "$TEST_TMP/btrfs.list")"
done
! grep -Eq "^(many|d4/r|d4/hard) " "$TEST_TMP/btrfs.list" || fail "the diff holds untouched entries: $(cat "$TEST_TMP/btrfs.list")"
pass "the btrfs diff equals the overlay diff of the same change ($(wc -l <"$TEST_TMP/btrfs.list") entries)"

# Unchanged folders are never read: a full comparison would stat each of the
# 6,000 entries of many/ (both sides). (LeakSanitizer cannot run under ptrace.)
stats=$(ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -c -e trace=newfstatat,statx,fstatat64 "$SNAPCTL" --root "$STORE" layer diff work 2>&1 >/dev/null |
	awk '$NF ~ /stat/ {n += $4} END {print n + 0}')
[ "$stats" -gt 0 ] && [ "$stats" -lt 500 ] || fail "the diff made $stats stat calls; an unchanged folder was walked"
pass "the diff made $stats stat calls for a 3,000-file folder it did not need to open"

# Removal deletes the subvolumes, and nothing stays in trash/.
snap snapshot rm v work >/dev/null
snap snapshot rm base >/dev/null
left=$(btrfs subvolume list "$BT" | grep -c "store/" || true)
[ "$left" = 0 ] || fail "subvolumes left after removal: $(btrfs subvolume list "$BT")"
[ -z "$(ls -A "$STORE/trash")" ] || fail "trash/ not empty: $(ls -A "$STORE/trash")"
pass "removed snapshots leave no subvolume behind"
