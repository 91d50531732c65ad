#!/bin/bash
# Images and layers end to end: import of our busybox layout and of forms
# other tools made (skopeo oci: and docker-archive:), export in every form
# checked by tools nobody here wrote (skopeo inspect/copy, umoci unpack),
# round trips with identical digests, an image made from snapshots by hand,
# whiteouts and opaque folders through diff and apply on both drivers, and
# reproducible exports under SOURCE_DATE_EPOCH.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root
command -v skopeo >/dev/null || fail "skopeo missing (scripts/setup.sh installs it)"
command -v umoci >/dev/null || fail "umoci missing (scripts/setup.sh installs it)"
SRC=$(cd "$SNAPCTL_TESTS_LIB/../.." && pwd)
export SOURCE_DATE_EPOCH=1700000000

# A listing of a tree that covers what a layer carries: type, mode, owner,
# size, link target, content hash (mtimes of the root excluded).
tree_list() {
	(cd "$1" && find . -mindepth 1 -printf '%p %y %m %U:%G %s %l\n' | LC_ALL=C sort) >"$2"
	(cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) >>"$2"
}
same_tree() {
	tree_list "$1" "$TEST_TMP/a.list"
	tree_list "$2" "$TEST_TMP/b.list"
	diff -u "$TEST_TMP/a.list" "$TEST_TMP/b.list" >"$TEST_TMP/tree.diff" ||
		fail "$3: trees differ: $(head -20 "$TEST_TMP/tree.diff")"
	pass "$3: trees are the same"
}
digest_of() { snap image ls --json | python3 -c "import json,sys; print([i['digest'] for i in json.load(sys.stdin) if i['name']=='$1'][0])"; }

BB="$TEST_TMP/bb"
"$SRC/scripts/make-busybox-image.sh" "$BB" busybox:latest >/dev/null
STORE="$TEST_TMP/store"
snap image import "$BB" >/dev/null
d0=$(digest_of busybox:latest)
pass "import of the busybox layout: $d0"

# Every export form, checked by skopeo and umoci.
E="$TEST_TMP/exp"
mkdir -p "$E"
snap image export busybox:latest -o "type=oci,dest=$E/oci,tar=false"
snap image export busybox:latest -o "type=oci,dest=$E/oci.tar"
snap image export busybox:latest -o "type=docker,dest=$E/docker.tar"
snap image export busybox:latest -o "type=tar,dest=$E/rootfs.tar"
snap image export busybox:latest -o "type=local,dest=$E/local"
for ref in "oci:$E/oci:latest" "oci-archive:$E/oci.tar:latest" "docker-archive:$E/docker.tar"; do
	skopeo inspect "$ref" >"$E/inspect.json" || fail "skopeo inspect $ref"
	grep -q '"Architecture": "amd64"' "$E/inspect.json" || fail "skopeo inspect $ref: $(cat "$E/inspect.json")"
	pass "skopeo inspect $ref"
	rm -rf "$E/copy"
	skopeo copy -q "$ref" "oci:$E/copy:latest" || fail "skopeo copy $ref"
	pass "skopeo copy $ref -> oci:"
done
# The docker archive is also an OCI layout.
mkdir -p "$E/docker-dir" && tar -xf "$E/docker.tar" -C "$E/docker-dir"
skopeo inspect "oci:$E/docker-dir:latest" >/dev/null || fail "docker export is not an OCI layout"
pass "the docker archive is also an OCI layout"
umoci unpack --rootless --image "$E/oci:latest" "$E/bundle" >/dev/null 2>&1 ||
	umoci unpack --image "$E/oci:latest" "$E/bundle" >/dev/null || fail "umoci unpack"
same_tree "$E/bundle/rootfs" "$E/local" "umoci unpack vs type=local"
mkdir -p "$E/rootfs" && tar -xf "$E/rootfs.tar" -C "$E/rootfs"
same_tree "$E/rootfs" "$E/local" "type=tar vs type=local"
"$E/local/bin/busybox" true || fail "busybox from type=local does not run"

# Round trips keep digests.
snap image import --name rt1 "$E/oci" >/dev/null
snap image import --name rt2 "$E/oci.tar" >/dev/null
snap image import --name rt3 "$E/docker.tar" >/dev/null
for n in rt1 rt2 rt3; do
	[ "$(digest_of $n)" = "$d0" ] || fail "round trip $n: digest $(digest_of $n), expected $d0"
done
pass "import -> export (oci dir, oci tar, docker) -> import keeps digest $d0"
n=$(snap snapshot ls --json | grep -c '"key"')
[ "$n" = 1 ] || fail "round trips should share one snapshot, found $n"
pass "images sharing layers share snapshots"

# Forms made by skopeo.
skopeo copy -q "oci:$BB:latest" "oci:$TEST_TMP/sk-oci:busybox"
skopeo copy -q "oci:$BB:latest" "docker-archive:$TEST_TMP/sk-docker.tar:busybox:latest"
snap image import --name sk-oci "$TEST_TMP/sk-oci" >/dev/null
snap image import "$TEST_TMP/sk-docker.tar" >/dev/null
snap image ls | grep -q '^busybox:latest' || fail "docker-archive import lost its RepoTags name"
snap image export sk-oci -o "type=local,dest=$TEST_TMP/sk-oci-local"
same_tree "$TEST_TMP/sk-oci-local" "$E/local" "skopeo oci: import"
snap image import --name sk-docker "$TEST_TMP/sk-docker.tar" >/dev/null
snap image export sk-docker -o "type=local,dest=$TEST_TMP/sk-docker-local"
same_tree "$TEST_TMP/sk-docker-local" "$E/local" "skopeo docker-archive: import"

# Docker media types on request (with type=docker: skopeo's oci: transport only
# reads OCI-typed index entries).
snap image export busybox:latest -o "type=docker,dest=$E/dmt.tar,oci-mediatypes=false"
mkdir -p "$E/dmt" && tar -xf "$E/dmt.tar" -C "$E/dmt"
mdig=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"][7:])' "$E/dmt/index.json")
grep -q 'vnd.docker.distribution.manifest.v2' "$E/dmt/blobs/sha256/$mdig" ||
	fail "oci-mediatypes=false did not give Docker media types: $(cat "$E/dmt/blobs/sha256/$mdig")"
grep -q 'vnd.docker.image.rootfs.diff.tar.gzip' "$E/dmt/blobs/sha256/$mdig" || fail "layer media type not Docker's"
skopeo inspect "docker-archive:$E/dmt.tar" >/dev/null || fail "skopeo inspect of docker media types"
snap image import --name dmt "$E/dmt.tar" >/dev/null
[ "$(snap image inspect dmt | grep -c 'vnd.docker.distribution.manifest.v2')" -ge 1 ] || fail "import of docker media types"
pass "oci-mediatypes=false"

# An image made by layering snapshots by hand.
M="$TEST_TMP/mnt"
mkdir -p "$M"
snap snapshot prepare h1
snap snapshot mount h1 "$M"
mkdir -p "$M/etc" "$M/app/data"
echo hello >"$M/app/hello.txt"
head -c 300000 /dev/urandom >"$M/app/data/blob"
ln "$M/app/hello.txt" "$M/app/hardlink.txt"
ln -s hello.txt "$M/app/sym"
setfattr -n user.note -v kept "$M/app/hello.txt"
umount "$M"
snap snapshot commit h1c h1
snap snapshot prepare h2 h1c
snap snapshot mount h2 "$M"
rm "$M/app/data/blob"
echo more >"$M/app/more.txt"
long="$M/app/$(printf 'd%.0s' {1..120})/$(printf 'e%.0s' {1..120})"
mkdir -p "$long" && echo deep >"$long/$(printf 'f%.0s' {1..120})"
umount "$M"
snap snapshot commit h2c h2
snap image create handmade h2c >/dev/null
snap image export handmade -o "type=oci,dest=$E/hand,tar=false"
skopeo inspect "oci:$E/hand:latest" | grep -q '"Layers"' || fail "skopeo inspect of handmade"
umoci unpack --image "$E/hand:latest" "$E/hand-bundle" >/dev/null || fail "umoci unpack handmade"
snap image export handmade -o "type=local,dest=$E/hand-local"
same_tree "$E/hand-bundle/rootfs" "$E/hand-local" "handmade: umoci vs type=local"
# On the image's own layers, as umoci unpacked them (not on a copy snapctl made).
U="$E/hand-bundle/rootfs"
[ "$(getfattr --only-values -n user.note "$U/app/hello.txt")" = kept ] || fail "xattr lost in the layers"
[ "$(stat -c %i "$U/app/hello.txt")" = "$(stat -c %i "$U/app/hardlink.txt")" ] ||
	fail "hard link lost in the layers: $(stat -c '%n %i %h' "$U/app/hello.txt" "$U/app/hardlink.txt")"
[ "$(stat -c %h "$U/app/hello.txt")" = 2 ] || fail "hello.txt has $(stat -c %h "$U/app/hello.txt") links"
pass "handmade image keeps xattrs and hard links"

# Reproducible: the same snapshots give the same image, byte for byte.
touch "$E" # (nothing to do with the image; times in snapshots newer than the epoch are clamped)
snap image create handmade2 h2c >/dev/null
[ "$(digest_of handmade)" = "$(digest_of handmade2)" ] || fail "two creates differ"
snap image export handmade -o "type=oci,dest=$E/r1.tar"
snap image export handmade -o "type=oci,dest=$E/r2.tar"
cmp "$E/r1.tar" "$E/r2.tar" || fail "two oci exports differ"
snap image export handmade -o "type=docker,dest=$E/r3.tar"
snap image export handmade -o "type=docker,dest=$E/r4.tar"
cmp "$E/r3.tar" "$E/r4.tar" || fail "two docker exports differ"
snap image export handmade -o "type=tar,dest=$E/r5.tar"
snap image export handmade -o "type=tar,dest=$E/r6.tar"
cmp "$E/r5.tar" "$E/r6.tar" || fail "two rootfs exports differ"
# The epoch itself: the config's created time, and no layer entry newer.
python3 - "$E/r1.tar" "$SOURCE_DATE_EPOCH" <<'PY' || fail "SOURCE_DATE_EPOCH not applied"
import io, json, sys, tarfile
out, epoch = tarfile.open(sys.argv[1]), int(sys.argv[2])
blob = lambda d: out.extractfile("blobs/sha256/" + d.split(":")[1]).read()
idx = json.loads(out.extractfile("index.json").read())
m = json.loads(blob(idx["manifests"][0]["digest"]))
c = json.loads(blob(m["config"]["digest"]))
want = "2023-11-14T22:13:20Z"  # 1700000000
assert c["created"] == want, "config created %s, not %s" % (c["created"], want)
for l in m["layers"]:
    with tarfile.open(fileobj=io.BytesIO(blob(l["digest"]))) as t:
        for e in t:
            assert e.mtime <= epoch, "%s has mtime %d, after the epoch" % (e.name, e.mtime)
PY
pass "exports with SOURCE_DATE_EPOCH are byte-identical, created at the epoch, no entry newer"

# ls/inspect/tag/rm.
snap image tag handmade handmade:v2
[ "$(digest_of handmade:v2)" = "$(digest_of handmade)" ] || fail "tag"
snap image inspect handmade | grep -q '"diff_ids"' || fail "inspect shows no config"
snap image rm handmade:v2
snap image ls --json | grep -q '"handmade:v2"' && fail "rm left the name"
expect_error 1 "image 'handmade:v2' does not exist" snap image inspect handmade:v2
expect_error 1 "image 'nope' does not exist" snap image rm nope
n=$(snap content ls --json | grep -c '"digest"')
[ "$n" -ge 6 ] || fail "rm should not free blobs (the collector does), $n left"
pass "image tag, inspect, rm"

# Whiteouts and opaque folders: delete a file and a folder, replace a folder,
# diff, apply onto the parent, compare with the original (both drivers).
whiteouts() {
	local drv=$1
	STORE="$TEST_TMP/wh-$drv"
	"$SNAPCTL" --root "$STORE" --driver "$drv" snapshot prepare w0 >/dev/null
	snap snapshot mount w0 "$M"
	mkdir -p "$M/gone/sub" "$M/opaque/old" "$M/keep"
	echo 1 >"$M/gone/sub/f"; echo 2 >"$M/opaque/old/f"; echo 3 >"$M/opaque/f"
	echo 4 >"$M/file-gone"; echo 5 >"$M/keep/f"
	umount "$M"
	snap snapshot commit base w0
	snap snapshot prepare w1 base
	snap snapshot mount w1 "$M"
	rm -rf "$M/gone" "$M/file-gone" "$M/opaque"
	mkdir "$M/opaque" && echo new >"$M/opaque/new"
	echo changed >"$M/keep/f"
	umount "$M"
	snap snapshot commit upper w1
	out=$(snap layer diff upper --json)
	digest=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
	snap content cat "$digest" >"$TEST_TMP/wh.tgz"
	tar -tzf "$TEST_TMP/wh.tgz" >"$TEST_TMP/wh.list"
	for want in .wh.gone .wh.file-gone; do
		grep -q "^$want\$" "$TEST_TMP/wh.list" || fail "$drv: no $want in $(cat "$TEST_TMP/wh.list")"
	done
	grep -q "^opaque/.wh..wh..opq\$\|^opaque/.wh.old\$" "$TEST_TMP/wh.list" ||
		fail "$drv: replaced folder has neither opaque marker nor whiteout: $(cat "$TEST_TMP/wh.list")"
	# Xattrs travel in pax records, which tar -t does not list: read them.
	python3 - "$TEST_TMP/wh.tgz" <<'PY' || fail "$drv: overlay xattr in the layer"
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    for e in t:
        bad = [k for k in e.pax_headers if "trusted.overlay" in k]
        assert not bad, "%s carries %s" % (e.name, bad)
PY
	snap layer apply "$TEST_TMP/wh.tgz" again --parent base >/dev/null
	for k in upper again; do
		snap snapshot view "v-$k" "$k"
		mkdir -p "$TEST_TMP/v-$k-$drv"
		snap snapshot mount "v-$k" "$TEST_TMP/v-$k-$drv"
	done
	same_tree "$TEST_TMP/v-upper-$drv" "$TEST_TMP/v-again-$drv" "$drv whiteouts and opaque folders"
	[ ! -e "$TEST_TMP/v-again-$drv/opaque/old" ] || fail "$drv: opaque folder shows lower content"
	umount "$TEST_TMP/v-upper-$drv" "$TEST_TMP/v-again-$drv"
	check_store_consistent
}
whiteouts overlay
whiteouts native

# An archive that names no image (what `buildah push oci-archive:` writes) is
# imported under its id, as docker load does, and says how to name it; an
# import that moves a name to another image says so.
tiny_layout() { # DIR FILE-CONTENT [REF]
	python3 - "$@" <<'PY'
import hashlib, io, json, os, sys, tarfile
d, content = sys.argv[1], sys.argv[2].encode()
ref = sys.argv[3] if len(sys.argv) > 3 else None
sha = lambda b: "sha256:" + hashlib.sha256(b).hexdigest()
os.makedirs(d + "/blobs/sha256")
def put(b):
    open(d + "/blobs/sha256/" + sha(b)[7:], "wb").write(b)
    return {"digest": sha(b), "size": len(b)}
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    ti = tarfile.TarInfo("f"); ti.size = len(content); t.addfile(ti, io.BytesIO(content))
l = buf.getvalue()
c = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha(l)]}}).encode()
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": dict(put(c), mediaType="application/vnd.oci.image.config.v1+json"),
                "layers": [dict(put(l), mediaType="application/vnd.oci.image.layer.v1.tar")]}).encode()
desc = dict(put(m), mediaType="application/vnd.oci.image.manifest.v1+json")
if ref:
    desc["annotations"] = {"org.opencontainers.image.ref.name": ref}
json.dump({"schemaVersion": 2, "manifests": [desc]}, open(d + "/index.json", "w"))
open(d + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
print(sha(c))
PY
}
STORE="$TEST_TMP/names"
id=$(tiny_layout "$TEST_TMP/anon" "no name")
tar -cf "$TEST_TMP/anon.tar" -C "$TEST_TMP/anon" .
snap image import "$TEST_TMP/anon.tar" >"$TEST_TMP/out" 2>"$TEST_TMP/err" || fail "import of an unnamed archive: $(cat "$TEST_TMP/err")"
grep -c >/dev/null "names no image: imported as its id $id; name it with 'snapctl image tag $id NAME'" "$TEST_TMP/err" ||
	fail "unnamed import did not say how to name it: $(cat "$TEST_TMP/err")"
[ "$(cut -d' ' -f1 "$TEST_TMP/out")" = "$id" ] || fail "unnamed import printed $(cat "$TEST_TMP/out"), not its id $id"
snap image tag "$id" anon:1
snap image export anon:1 -o type=oci,dest="$TEST_TMP/anon-out",tar=false >/dev/null
skopeo inspect --raw "oci:$TEST_TMP/anon-out" >/dev/null || fail "the tagged image does not read back with skopeo"
a=$(tiny_layout "$TEST_TMP/one" "first" app:1 >/dev/null; python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$TEST_TMP/one/index.json")
b=$(tiny_layout "$TEST_TMP/two" "second" app:1 >/dev/null; python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$TEST_TMP/two/index.json")
snap image import "$TEST_TMP/one" 2>"$TEST_TMP/err" >/dev/null
[ -s "$TEST_TMP/err" ] && fail "a first import printed: $(cat "$TEST_TMP/err")"
snap image import "$TEST_TMP/two" 2>"$TEST_TMP/err" >/dev/null
grep -c >/dev/null "^snapctl: moved 'app:1' from $a to $b$" "$TEST_TMP/err" || fail "moving app:1 was not reported: $(cat "$TEST_TMP/err")"
snap image import "$TEST_TMP/two" 2>"$TEST_TMP/err" >/dev/null
[ -s "$TEST_TMP/err" ] && fail "importing the same image again printed: $(cat "$TEST_TMP/err")"
pass "an unnamed archive imports under its id; a moved name is reported"
