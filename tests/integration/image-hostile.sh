#!/bin/bash
# One hostile input per run (the case is the first argument): each must be
# refused with a one-line error, write nothing outside the store, and leave
# the store exactly as it was.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root
CASE=${1:?usage: image-hostile.sh CASE}
STORE="$TEST_TMP/store"
OUT="$TEST_TMP/outside"
mkdir -p "$OUT"
H="$TEST_TMP/h"
mkdir -p "$H"

# A base snapshot, so "unchanged" has something to compare.
snap snapshot prepare w >/dev/null
snap snapshot commit base w
passwd_sum=$(sha256sum /etc/passwd)
state() {
	snap snapshot ls --json | grep -E '"(key|kind|parent)"'
	snap content ls --json | grep '"digest"' || true
	snap image ls --json | grep '"name"' || true
	ls -A "$STORE/snapshots" "$STORE/tmp" "$STORE/ingest" 2>/dev/null
}
state >"$TEST_TMP/before"

# mktar FILE ENTRY...: ENTRY is TYPE:NAME[:ARG] (file:NAME[:DATA], dir:NAME,
# sym:NAME:TARGET, link:NAME:TARGET, short:NAME:DECLARED, empty:COUNT).
mktar() {
	python3 - "$@" <<'PY'
import io, sys, tarfile
out, entries = sys.argv[1], sys.argv[2:]
buf = io.BytesIO()
tar = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)
for e in entries:
    kind, rest = e.split(":", 1)
    name, _, arg = rest.partition(":")
    t = tarfile.TarInfo(name)
    t.mode = 0o644
    if kind == "file":
        data = arg.encode()
        t.size = len(data)
        tar.addfile(t, io.BytesIO(data))
    elif kind == "dir":
        t.type, t.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(t)
    elif kind in ("sym", "link"):
        t.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
        t.linkname = arg
        tar.addfile(t)
    elif kind == "short":
        t.size = int(arg)
        tar.addfile(t, io.BytesIO(b"x" * t.size))
    elif kind == "empty":
        for i in range(int(name)):
            t = tarfile.TarInfo("e/%06d" % i)
            tar.addfile(t)
tar.close()
data = buf.getvalue()
for e in entries:
    if e.startswith("short:"):
        # Cut the data: the header promises more than follows.
        data = data[:512 * 3 + 100]
open(out, "wb").write(data)
PY
}

# An OCI layout holding one layer file; FIX adjusts it (python, with names m/c/l/idx).
mklayout() {
	local dir=$1 layer=$2 fix=${3:-}
	python3 - "$dir" "$layer" "$fix" <<'PY'
import hashlib, json, os, sys, tarfile, io
d, layer_path, fix = sys.argv[1], sys.argv[2], sys.argv[3]
sha = lambda b: "sha256:" + hashlib.sha256(b).hexdigest()
os.makedirs(d + "/blobs/sha256", exist_ok=True)
def put(b):
    open(d + "/blobs/sha256/" + sha(b)[7:], "wb").write(b)
    return {"digest": sha(b), "size": len(b)}
l = open(layer_path, "rb").read()
diff_id = sha(l)
c = json.dumps({"architecture": "amd64", "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": dict(put(c), mediaType="application/vnd.oci.image.config.v1+json"),
     "layers": [dict(put(l), mediaType="application/vnd.oci.image.layer.v1.tar")]}
exec(fix)
mb = json.dumps(m).encode()
md = put(mb)
if "bad_manifest_digest" in fix:
    # The manifest file's bytes change after its digest was taken.
    open(d + "/blobs/sha256/" + md["digest"][7:], "wb").write(mb.replace(b"amd64", b"amd65") + b" ")
idx = {"schemaVersion": 2, "manifests": [dict(md, mediaType="application/vnd.oci.image.manifest.v1+json",
       annotations={"org.opencontainers.image.ref.name": "hostile"})]}
open(d + "/index.json", "w").write(json.dumps(idx))
open(d + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
}

case "$CASE" in
dotdot)
	mktar "$H/l.tar" "file:../../../../../../../../../..$OUT/pwned:x"
	expect_error 1 "climbs out with '\.\.'" snap layer apply "$H/l.tar" hostile --parent base ;;
absolute)
	mktar "$H/l.tar" "file:$OUT/pwned:x"
	expect_error 1 "is an absolute path" snap layer apply "$H/l.tar" hostile --parent base ;;
symlink-write)
	# A symlink pointing out of the layer, then an entry below it: resolved
	# inside the root (as umoci does), so the file lands in the snapshot, at
	# the path the symlink names there, and nothing is written outside.
	mktar "$H/l.tar" "sym:esc:$OUT" "file:esc/pwned:x"
	snap layer apply "$H/l.tar" hostile --parent base >/dev/null
	mktar "$H/l2.tar" "sym:up:../../../../../../../../..$OUT" "file:up/pwned:y"
	snap layer apply "$H/l2.tar" hostile2 --parent base >/dev/null
	for k in hostile hostile2; do
		snap snapshot view "v-$k" "$k" >/dev/null
		mkdir -p "$TEST_TMP/v-$k"
		snap snapshot mount "v-$k" "$TEST_TMP/v-$k"
		on_exit "umount $TEST_TMP/v-$k"
		[ -f "$TEST_TMP/v-$k$OUT/pwned" ] || fail "$k: the file is not inside the snapshot at ${OUT#/}/pwned"
	done
	[ -z "$(ls -A "$OUT")" ] || fail "something was written outside: $(ls -A "$OUT")"
	check_store_consistent
	pass "$CASE: resolved inside the root, nothing written outside"
	exit 0 ;;
hardlink-passwd)
	mktar "$H/l.tar" "link:pw:/etc/passwd"
	expect_error 1 "outside the layer" snap layer apply "$H/l.tar" hostile --parent base
	mktar "$H/l2.tar" "link:pw:../../../../../../../../../etc/passwd"
	expect_error 1 "climbs out" snap layer apply "$H/l2.tar" hostile2 --parent base ;;
symlink-loop)
	mktar "$H/l.tar" "sym:a:b" "sym:b:a" "file:a/f:x"
	expect_error 1 "entry 'a/f': more than 40 symlinks on the way to its folder" \
		snap layer apply "$H/l.tar" hostile --parent base ;;
short-data)
	mktar "$H/l.tar" "file:ok:x" "short:big:100000"
	expect_error 1 "[Tt]runcated|corrupt" snap layer apply "$H/l.tar" hostile --parent base ;;
truncated-gzip)
	mktar "$H/l.tar" "file:a:$(head -c 3000 /dev/urandom | base64 -w0)"
	gzip -c "$H/l.tar" >"$H/full.tgz"
	head -c $(($(stat -c %s "$H/full.tgz") / 2)) "$H/full.tgz" >"$H/l.tgz"
	expect_error 1 "truncated gzip" snap layer apply "$H/l.tgz" hostile --parent base ;;
manifest-digest)
	mktar "$H/l.tar" "file:a:x"
	mklayout "$H/oci" "$H/l.tar" "bad_manifest_digest = 1"
	expect_error 1 "manifest sha256:[0-9a-f]{64} does not match its digest" snap image import "$H/oci" ;;
missing-blob)
	mktar "$H/l.tar" "file:a:x"
	mklayout "$H/oci" "$H/l.tar" 'os.unlink(d + "/blobs/sha256/" + m["layers"][0]["digest"][7:])'
	expect_error 1 "layer sha256:[0-9a-f]{64} is missing from the archive" snap image import "$H/oci" ;;
config-100m)
	mktar "$H/l.tar" "file:a:x"
	mklayout "$H/oci" "$H/l.tar" '
big = b"{\"pad\":\"" + b"a" * (100 << 20) + b"\"}"
m["config"] = dict(put(big), mediaType="application/vnd.oci.image.config.v1+json")'
	expect_error 1 "config sha256:[0-9a-f]{64} is [0-9]+ bytes, over the limit" snap image import "$H/oci" ;;
many-entries)
	mktar "$H/l.tar" "empty:200000"
	gzip -1 "$H/l.tar"
	# Through an image import (the layer path is the same as layer apply's).
	mklayout "$H/oci" "$H/l.tar.gz"
	expect_error 1 "more than 100000 entries" snap image import "$H/oci" ;;
fifo-index | fifo-manifest | fifo-layer)
	# A FIFO where a file is expected: refused before it is opened, never waited on
	# (the timeout turns a wait into exit status 124).
	mktar "$H/l.tar" "file:a:x"
	case "$CASE" in
	fifo-index) fix='' what=index ;;
	fifo-manifest) fix='' what=manifest ;;
	fifo-layer) fix='os.unlink(d + "/blobs/sha256/" + m["layers"][0]["digest"][7:])' what=layer ;;
	esac
	mklayout "$H/oci" "$H/l.tar" "$fix"
	case "$CASE" in
	fifo-index) rm -f "$H/oci/index.json"; mkfifo "$H/oci/index.json" ;;
	fifo-manifest)
		mf=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"][7:])' "$H/oci/index.json")
		rm -f "$H/oci/blobs/sha256/$mf"; mkfifo "$H/oci/blobs/sha256/$mf" ;;
	fifo-layer)
		ld=$(python3 -c 'import json,sys; i=json.load(open(sys.argv[1])); m=json.load(open(sys.argv[2] + "/blobs/sha256/" + i["manifests"][0]["digest"][7:])); print(m["layers"][0]["digest"][7:])' "$H/oci/index.json" "$H/oci")
		mkfifo "$H/oci/blobs/sha256/$ld" ;;
	esac
	expect_error 1 "$what '[^']+' is not a regular file" timeout 20 "$SNAPCTL" --root "$STORE" image import "$H/oci" ;;
sparse-overflow | sparse-far)
	# A pax sparse entry of size 1024 whose map carries 2 MiB of data, or puts
	# 1 KiB at 1 TiB: what is written (and the apparent size) must be what the
	# size limit counted, so the entry is malformed.
	case "$CASE" in
	sparse-overflow) off=0 n=2097152 ;;
	sparse-far) off=1099511627776 n=1024 ;;
	esac
	python3 - "$H/l.tar" $off $n <<'PY'
import io, sys, tarfile
out, off, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
m = ("1\n%d\n%d\n" % (off, n)).encode()
m += b"\0" * (-len(m) % 512)
payload = m + b"s" * n
buf = io.BytesIO()
tar = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)
t = tarfile.TarInfo("GNUSparseFile.0/f")
t.size, t.mode = len(payload), 0o644
t.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                 "GNU.sparse.name": "f", "GNU.sparse.realsize": "1024"}
tar.addfile(t, io.BytesIO(payload))
tar.close()
open(out, "wb").write(buf.getvalue())
PY
	expect_error 1 "malformed entry 'f': its sparse map places data past its size of 1024 bytes" \
		snap layer apply "$H/l.tar" hostile --parent base --max-size 4M ;;
zstd-trailer | gzip-trailer)
	# A 5-byte file, then 4 GiB (zstd) or 256 MiB (gzip) of zeros after the
	# tar's end: every uncompressed byte counts against --max-size.
	mktar "$H/l.tar" "file:a:hello"
	if [ "$CASE" = zstd-trailer ]; then
		{ cat "$H/l.tar"; head -c 4G /dev/zero; } | zstd -q -1 -c >"$H/l.tar.z"
	else
		{ cat "$H/l.tar"; head -c 256M /dev/zero; } | gzip -1 -c >"$H/l.tar.z"
	fi
	expect_error 1 "layer is larger than 1000000 bytes uncompressed; raise the limit \(--max-size\)" \
		snap layer apply "$H/l.tar.z" hostile --parent base --max-size 1M ;;
fifo-docker-layer | fifo-docker-manifest)
	# The docker save form: a FIFO where manifest.json or a layer.tar belongs.
	mktar "$H/l.tar" "file:a:x"
	python3 - "$H/d" "$H/l.tar" <<'PY'
import hashlib, json, os, shutil, sys
d, layer = sys.argv[1], sys.argv[2]
os.makedirs(d + "/abc")
shutil.copy(layer, d + "/abc/layer.tar")
diff_id = "sha256:" + hashlib.sha256(open(layer, "rb").read()).hexdigest()
c = json.dumps({"architecture": "amd64", "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
name = hashlib.sha256(c).hexdigest() + ".json"
open(d + "/" + name, "wb").write(c)
json.dump([{"Config": name, "RepoTags": ["hostile:1"], "Layers": ["abc/layer.tar"]}],
          open(d + "/manifest.json", "w"))
PY
	if [ "$CASE" = fifo-docker-layer ]; then
		rm "$H/d/abc/layer.tar"; mkfifo "$H/d/abc/layer.tar"; what="layer 'abc/layer.tar'"
	else
		rm "$H/d/manifest.json"; mkfifo "$H/d/manifest.json"; what="docker manifest 'manifest.json'"
	fi
	expect_error 1 "$what is not a regular file" timeout 20 "$SNAPCTL" --root "$STORE" image import "$H/d" ;;
archive-fifo | archive-device)
	# An image archive (a tar of an OCI layout) holding a FIFO or a device
	# node: refused by name while unpacking, never created.
	mktar "$H/l.tar" "file:a:x"
	mklayout "$H/oci" "$H/l.tar"
	python3 - "$H/oci" "$H/img.tar" "$CASE" <<'PY'
import os, sys, tarfile
d, out, case = sys.argv[1], sys.argv[2], sys.argv[3]
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    for root, dirs, files in os.walk(d):
        for f in sorted(files):
            p = os.path.join(root, f)
            t.add(p, arcname=os.path.relpath(p, d))
    x = tarfile.TarInfo("blobs/sha256/zz")
    if case == "archive-fifo":
        x.type = tarfile.FIFOTYPE
    else:
        x.type, x.devmajor, x.devminor = tarfile.CHRTYPE, 1, 3
    t.addfile(x)
PY
	if [ "$CASE" = archive-fifo ]; then what=fifo; else what="device node"; fi
	expect_error 1 "entry 'blobs/sha256/zz' is a $what; an image archive holds only files, folders and links" \
		timeout 20 "$SNAPCTL" --root "$STORE" image import "$H/img.tar" ;;
long-ref-name)
	# A ref name over the 255-byte limit is refused, not cut to 255 bytes
	# (which could be another image's name).
	mktar "$H/l.tar" "file:a:x"
	mklayout "$H/oci" "$H/l.tar"
	python3 - "$H/oci/index.json" <<'PY'
import json, sys
i = json.load(open(sys.argv[1]))
i["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] = "n" * 255 + "x"
json.dump(i, open(sys.argv[1], "w"))
PY
	expect_error 1 "names its image with over 255 bytes; give a name with --name" \
		snap image import "$H/oci" ;;
uid-overflow)
	# 2^32 would become 0 (root) if truncated.
	python3 - "$H/l.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    ti = tarfile.TarInfo("f")
    ti.size, ti.pax_headers = 1, {"uid": str(2**32), "gid": "0"}
    t.addfile(ti, io.BytesIO(b"x"))
PY
	expect_error 1 "entry 'f' has owner 4294967296:0; ids are 0 to 4294967294" \
		snap layer apply "$H/l.tar" hostile --parent base ;;
too-deep)
	# 1,100 nested folders: refused while unpacking (the limit the diff and
	# the measure walk share), not after, at commit.
	python3 - "$H/l.tar" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    for i in range(1100):
        ti = tarfile.TarInfo("/".join(["d"] * (i + 1)))
        ti.type, ti.mode = tarfile.DIRTYPE, 0o755
        t.addfile(ti)
PY
	expect_error 1 "entry 'd/d/[d/]*\.\.\.' nests more than 1024 folders deep" \
		snap layer apply "$H/l.tar" hostile --parent base ;;
diff-id-poison | diff-id-poison-stored)
	# Image b's config claims image a's diff id for a layer with other
	# content; a's snapshot is in the store (and, for -stored, b's layer blob
	# too, imported honestly as image c). Its blob must be checked anyway.
	mktar "$H/a.tar" "file:f:from image a"
	mktar "$H/b.tar" "file:f:from image b"
	mklayout "$H/a" "$H/a.tar"
	snap image import "$H/a" --name a:1 >/dev/null
	if [ "$CASE" = diff-id-poison-stored ]; then
		mklayout "$H/c" "$H/b.tar"
		snap image import "$H/c" --name c:1 >/dev/null
	fi
	adiff="sha256:$(sha256sum <"$H/a.tar" | cut -d' ' -f1)"
	mklayout "$H/b" "$H/b.tar" "
c = json.dumps({'architecture': 'amd64', 'os': 'linux',
                'rootfs': {'type': 'layers', 'diff_ids': ['$adiff']}}).encode()
m['config'] = dict(put(c), mediaType='application/vnd.oci.image.config.v1+json')"
	state >"$TEST_TMP/before"
	expect_error 1 "layer content does not match its diff id: expected $adiff, got sha256:" \
		snap image import "$H/b" --name b:1 ;;
*) fail "unknown case '$CASE'" ;;
esac

[ -z "$(ls -A "$OUT")" ] || fail "something was written outside: $(ls -A "$OUT")"
[ "$(sha256sum /etc/passwd)" = "$passwd_sum" ] || fail "/etc/passwd changed"
state >"$TEST_TMP/after"
diff -u "$TEST_TMP/before" "$TEST_TMP/after" || fail "the store changed"
check_store_consistent
pass "$CASE: refused, nothing written outside, store unchanged"
