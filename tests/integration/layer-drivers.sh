#!/bin/bash
# The same layers give the same tree on every driver: a corpus of whiteout,
# opaque and replace cases, each applied on top of one base layer with the
# overlay and the native driver. The two trees must match; then each
# driver's diff of the case is applied (on the other driver) onto the base
# again and must give that tree once more.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root

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
	file:keep/x:X file:f:F sym:ln:f dir:e
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
)

tree_of() { # STORE SNAPSHOT DIR: mount a view of SNAPSHOT on DIR
	local store=$1 snap=$2 dir=$3
	mkdir -p "$dir"
	"$SNAPCTL" --root "$store" snapshot view "v-$snap" "$snap" >/dev/null
	"$SNAPCTL" --root "$store" snapshot mount "v-$snap" "$dir"
	on_exit "umount $dir 2>/dev/null || true"
}

n=0
for c in $(printf '%s\n' "${!CASES[@]}" | sort); do
	# LAYER_DRIVERS_ONLY=REGEX: only the matching cases (to look at one).
	[[ $c =~ ${LAYER_DRIVERS_ONLY:-.} ]] || continue
	# shellcheck disable=SC2086
	mk "$L/$c.tar" ${CASES[$c]}
	for drv in overlay native; do
		S="$TEST_TMP/$c-$drv"
		"$SNAPCTL" --root "$S" --driver "$drv" layer apply "$L/base.tar" base >/dev/null
		"$SNAPCTL" --root "$S" layer apply "$L/$c.tar" top --parent base >/dev/null 2>"$TEST_TMP/err" ||
			fail "$c on $drv: $(cat "$TEST_TMP/err")"
		tree_of "$S" top "$TEST_TMP/m-$c-$drv"
		listing "$TEST_TMP/m-$c-$drv" >"$TEST_TMP/$c-$drv.list"
	done
	diff -u "$TEST_TMP/$c-native.list" "$TEST_TMP/$c-overlay.list" >"$TEST_TMP/d" ||
		fail "$c: native and overlay trees differ: $(cat "$TEST_TMP/d")"
	# Each driver's diff, applied with the other driver, gives the same tree again.
	for pair in overlay:native native:overlay; do
		from=${pair%:*} to=${pair#*:}
		S="$TEST_TMP/$c-$from"
		digest=$("$SNAPCTL" --root "$S" layer diff top --compression uncompressed --json | json 'd["digest"]')
		"$SNAPCTL" --root "$S" content cat "$digest" >"$L/$c-$from.rediff.tar"
		R="$TEST_TMP/$c-re-$to"
		"$SNAPCTL" --root "$R" --driver "$to" layer apply "$L/base.tar" base >/dev/null
		"$SNAPCTL" --root "$R" layer apply "$L/$c-$from.rediff.tar" top --parent base >/dev/null 2>"$TEST_TMP/err" ||
			fail "$c: $from's diff on $to: $(cat "$TEST_TMP/err")"
		tree_of "$R" top "$TEST_TMP/m-$c-re-$to"
		listing "$TEST_TMP/m-$c-re-$to" >"$TEST_TMP/$c-re-$to.list"
		diff -u "$TEST_TMP/$c-native.list" "$TEST_TMP/$c-re-$to.list" >"$TEST_TMP/d" ||
			fail "$c: $from's diff applied on $to gives another tree: $(cat "$TEST_TMP/d")"
	done
	n=$((n + 1))
	pass "$c: same tree on overlay and native, and from either driver's diff"
done

# A literal 0:0 character device is what overlay means by a whiteout: refused on both.
mk "$L/chr.tar" chr:dev00:0:0
for drv in overlay native; do
	S="$TEST_TMP/chr-$drv"
	"$SNAPCTL" --root "$S" --driver "$drv" layer apply "$L/base.tar" base >/dev/null
	STORE="$S" expect_error 1 "entry 'dev00' is a character device 0:0, which overlay reads as a whiteout" \
		snap layer apply "$L/chr.tar" top --parent base
done
pass "$n cases give the same tree on both drivers; a 0:0 device is refused on both"
