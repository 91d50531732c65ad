#!/bin/bash
# The same layers give the same tree on every driver: a corpus of whiteout,
# opaque and replace cases, each applied on top of one base layer with the
# overlay, the native and the btrfs driver (on a btrfs loop file system). The
# trees must match; then each driver's diff of the case is applied by the
# next driver onto the base again and must give that tree once more.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root

DRIVERS=(overlay native btrfs)
make_loop_fs btrfs 1G "$TEST_TMP/btrfs"
# sdir DRIVER NAME: a store folder on a file system the driver works on.
sdir() { if [ "$1" = btrfs ]; then echo "$TEST_TMP/btrfs/$2"; else echo "$TEST_TMP/$2"; fi; }

L="$TEST_TMP/layers"
mkdir -p "$L"
# mk OUT ENTRY...: ENTRY is dir:NAME, file:NAME:DATA, sym:NAME:TARGET,
# wh:NAME (a .wh. entry for NAME, path included), opq:DIR ("" for the root),
# chr:NAME:MAJOR:MINOR.
mk() {
	python3 - "$@" <<'PY'
import io, sys, tarfile
out, entries = sys.argv[1], sys.argv[2:]
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    for e in entries:
        kind, rest = e.split(":", 1)
        name, _, arg = rest.partition(":")
        if kind == "wh":
            d, _, b = name.rpartition("/")
            name = (d + "/" if d else "") + ".wh." + b
        elif kind == "opq":
            name = (name + "/" if name else "") + ".wh..wh..opq"
        ti = tarfile.TarInfo(name)
        ti.mtime, ti.mode, ti.uid, ti.gid = 1700000000, 0o644, 0, 0
        if kind == "dir":
            ti.type, ti.mode = tarfile.DIRTYPE, 0o750
            t.addfile(ti)
        elif kind == "file":
            data = arg.encode()
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        elif kind == "sym":
            ti.type, ti.linkname = tarfile.SYMTYPE, arg
            t.addfile(ti)
        elif kind == "chr":
            ti.type = tarfile.CHRTYPE
            ti.devmajor, ti.devminor = (int(x) for x in arg.split(":"))
            t.addfile(ti)
        else:
            t.addfile(ti)  # wh, opq: empty files
PY
}

# Everything a tree holds, the root left out: type, mode, owner, size,
# content, symlink target, xattrs (overlay's own left out), and mtimes but
# of folders (one a layer only implies is made "now").
listing() {
	python3 - "$1" <<'PY'
import hashlib, os, stat, sys
root = sys.argv[1]
for dirpath, dirs, files in os.walk(root):
    dirs.sort()
    for n in sorted(dirs + files):
        p = os.path.join(dirpath, n)
        st = os.lstat(p)
        rel = os.path.relpath(p, root)
        line = [rel, oct(st.st_mode), "%d:%d" % (st.st_uid, st.st_gid)]
        if stat.S_ISREG(st.st_mode):
            line += [str(st.st_size), hashlib.sha256(open(p, "rb").read()).hexdigest()]
        if stat.S_ISLNK(st.st_mode):
            line.append("-> " + os.readlink(p))
        if not stat.S_ISDIR(st.st_mode):
            line.append("mtime %d" % st.st_mtime_ns)
        try:
            xs = sorted(x for x in os.listxattr(p, follow_symlinks=False)
                        if not x.startswith("trusted.overlay."))
        except OSError:
            xs = []
        line += xs
        print(" ".join(line))
PY
}

mk "$L/base.tar" dir:od file:od/a:A file:od/b:B dir:od/sub file:od/sub/c:C dir:keep \
	file:keep/x:X file:f:F sym:ln:f dir:e dir:usr dir:usr/bin file:usr/bin/ls:LS \
	sym:bin:usr/bin sym:abs:/usr/bin sym:esc:../../../../../usr/bin sym:loop1:loop2 sym:loop2:loop1
# name: entries
declare -A CASES=(
	[wh-then-dir]="wh:od dir:od file:od/new:N"
	[wh-then-implied]="wh:od file:od/new:N"
	[root-opaque]="opq: file:n:N dir:keep file:keep/y:Y"
	[root-opaque-implied]="opq: file:n:N file:keep/y:Y"
	[sub-opaque]="opq:od file:od/z:Z"
	[wh-file-then-dir]="wh:f dir:f file:f/g:G"
	[dir-then-file]="dir:x file:x/inner:I file:x:now-a-file"
	[dir-then-symlink]="dir:y file:y/inner:I sym:y:f"
	[file-over-lower-dir]="file:keep:K"
	[wh-nested]="wh:od/sub file:od/sub:S"
	[wh-missing]="wh:nothing file:m:M"
	[below-symlink]="file:bin/tool:T"
	[below-absolute-symlink]="file:abs/tool:T dir:abs/sub file:abs/sub/x:X"
	[below-escaping-symlink]="file:esc/tool:T"
	[symlink-replaced-by-dir]="dir:bin file:bin/tool:T"
	[whiteout-below-symlink]="wh:bin/ls"
)

tree_of() { # STORE SNAPSHOT DIR: mount a view of SNAPSHOT on DIR
	local store=$1 snap=$2 dir=$3
	mkdir -p "$dir"
	"$SNAPCTL" --root "$store" snapshot view "v-$snap" "$snap" >/dev/null
	"$SNAPCTL" --root "$store" snapshot mount "v-$snap" "$dir"
	on_exit "umount $dir 2>/dev/null || true"
}

# on_base STORE DRIVER LAYER NAME WHAT: a new store with the base and LAYER
# on it, its tree listed into $TEST_TMP/NAME.list; WHAT names it in a failure.
on_base() {
	local store=$1 drv=$2 layer=$3 name=$4
	"$SNAPCTL" --root "$store" --driver "$drv" layer apply "$L/base.tar" base >/dev/null
	"$SNAPCTL" --root "$store" layer apply "$layer" top --parent base >/dev/null 2>"$TEST_TMP/err" ||
		fail "$5: $(cat "$TEST_TMP/err")"
	tree_of "$store" top "$TEST_TMP/m-$name"
	listing "$TEST_TMP/m-$name" >"$TEST_TMP/$name.list"
}

n=0
for c in $(printf '%s\n' "${!CASES[@]}" | sort); do
	# LAYER_DRIVERS_ONLY=REGEX: only the matching cases (to look at one).
	[[ $c =~ ${LAYER_DRIVERS_ONLY:-.} ]] || continue
	# shellcheck disable=SC2086
	mk "$L/$c.tar" ${CASES[$c]}
	for drv in "${DRIVERS[@]}"; do
		on_base "$(sdir "$drv" "$c-$drv")" "$drv" "$L/$c.tar" "$c-$drv" "$c on $drv"
	done
	for drv in overlay btrfs; do
		diff -u "$TEST_TMP/$c-native.list" "$TEST_TMP/$c-$drv.list" >"$TEST_TMP/d" ||
			fail "$c: native and $drv trees differ: $(cat "$TEST_TMP/d")"
	done
	# Each driver's diff, applied by the next driver, gives the same tree again.
	for pair in overlay:native native:btrfs btrfs:overlay; do
		from=${pair%:*} to=${pair#*:}
		S=$(sdir "$from" "$c-$from")
		digest=$("$SNAPCTL" --root "$S" layer diff top --compression uncompressed --json | json 'd["digest"]')
		"$SNAPCTL" --root "$S" content cat "$digest" >"$L/$c-$from.rediff.tar"
		on_base "$(sdir "$to" "$c-re-$to")" "$to" "$L/$c-$from.rediff.tar" "$c-re-$to" "$c: $from's diff on $to"
		diff -u "$TEST_TMP/$c-native.list" "$TEST_TMP/$c-re-$to.list" >"$TEST_TMP/d" ||
			fail "$c: $from's diff applied on $to gives another tree: $(cat "$TEST_TMP/d")"
	done
	n=$((n + 1))
	pass "$c: same tree on overlay, native and btrfs, and from each driver's diff"
done

# Below an in-root symlink an entry lands where the symlink points, inside
# the root even when the symlink points out, and the symlink stays; as umoci
# unpacks the same two layers.
for c in below-symlink below-absolute-symlink below-escaping-symlink; do
	grep -Ec >/dev/null '^usr/bin/tool ' "$TEST_TMP/$c-native.list" || fail "$c: usr/bin/tool missing: $(cat "$TEST_TMP/$c-native.list")"
	grep -Ec >/dev/null '^(bin|abs|esc) 0o120777 .* -> ' "$TEST_TMP/$c-native.list" || fail "$c: the symlink did not stay"
	python3 - "$TEST_TMP/oci-$c" "$L/base.tar" "$L/$c.tar" <<'PY'
import hashlib, json, os, sys
d, layers = sys.argv[1], sys.argv[2:]
sha = lambda b: "sha256:" + hashlib.sha256(b).hexdigest()
os.makedirs(d + "/blobs/sha256")
def put(b):
    open(d + "/blobs/sha256/" + sha(b)[7:], "wb").write(b)
    return {"digest": sha(b), "size": len(b)}
ls = [open(p, "rb").read() for p in layers]
c = json.dumps({"architecture": "amd64", "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [sha(l) for l in ls]}}).encode()
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": dict(put(c), mediaType="application/vnd.oci.image.config.v1+json"),
     "layers": [dict(put(l), mediaType="application/vnd.oci.image.layer.v1.tar") for l in ls]}).encode()
json.dump({"schemaVersion": 2, "manifests": [dict(put(m), mediaType="application/vnd.oci.image.manifest.v1+json",
           annotations={"org.opencontainers.image.ref.name": "t"})]}, open(d + "/index.json", "w"))
open(d + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
	umoci unpack --image "$TEST_TMP/oci-$c:t" "$TEST_TMP/umoci-$c" >/dev/null 2>&1 || fail "$c: umoci unpack failed"
	listing "$TEST_TMP/umoci-$c/rootfs" >"$TEST_TMP/$c-umoci.list"
	diff -u "$TEST_TMP/$c-umoci.list" "$TEST_TMP/$c-native.list" >"$TEST_TMP/d" ||
		fail "$c: snapctl's tree differs from umoci's: $(cat "$TEST_TMP/d")"
done
pass "below in-root symlinks: entries land where the symlinks point, as umoci unpacks them"

# A symlink loop on the way to an entry's folder: refused on every driver.
mk "$L/loop.tar" file:loop1/x:X
for drv in "${DRIVERS[@]}"; do
	S=$(sdir "$drv" "loop-$drv")
	"$SNAPCTL" --root "$S" --driver "$drv" layer apply "$L/base.tar" base >/dev/null
	STORE="$S" expect_error 1 "entry 'loop1/x': more than 40 symlinks on the way to its folder" \
		snap layer apply "$L/loop.tar" top --parent base
done

# A literal 0:0 character device is what overlay means by a whiteout: refused on every driver.
mk "$L/chr.tar" chr:dev00:0:0
for drv in "${DRIVERS[@]}"; do
	S=$(sdir "$drv" "chr-$drv")
	"$SNAPCTL" --root "$S" --driver "$drv" layer apply "$L/base.tar" base >/dev/null
	STORE="$S" expect_error 1 "entry 'dev00' is a character device 0:0, which overlay reads as a whiteout" \
		snap layer apply "$L/chr.tar" top --parent base
done
pass "$n cases give the same tree on every driver; a 0:0 device is refused on every driver"
