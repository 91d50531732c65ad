#!/bin/bash
# The build corpus (tests/data/build/*), on the driver named by $1 (default:
# automatic): each case is built FROM scratch or the offline busybox image, with every export at once; the type=local
# export is checked entry by entry (type, mode, owner, content, link
# target), the config by the case's assertions, the OCI and docker exports
# by skopeo, and umoci's unpack of the OCI export must give the same tree
# as the type=local export.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root
command -v skopeo >/dev/null || fail "skopeo missing (scripts/setup.sh installs it)"
command -v umoci >/dev/null || fail "umoci missing (scripts/setup.sh installs it)"
CORPUS=$(cd "$SNAPCTL_TESTS_LIB/../data/build" && pwd)
STORE="$TEST_TMP/store"
# An argument names the snapshot driver (default: the store's automatic choice, overlay here).
DRIVER=${1:-}
if [ -n "$DRIVER" ]; then
	snap() { "$SNAPCTL" --root "$STORE" --driver "$DRIVER" "$@"; }
fi
import_busybox busybox:latest

tree_list() {
	(cd "$1" && find . -mindepth 1 -printf '%p %y %m %U:%G %s %l\n' | LC_ALL=C sort) >"$2"
	(cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) >>"$2"
}

check_files() { # OUT EXPECT CASE
	local out=$1 expect=$2 case=$3 path type mode owner extra got
	while read -r path type mode owner extra; do
		[ -n "$path" ] || continue
		if [ "${path#!}" != "$path" ]; then
			[ ! -e "$out/${path#!}" ] && [ ! -L "$out/${path#!}" ] ||
				fail "$case: '${path#!}' should not exist"
			continue
		fi
		[ -e "$out/$path" ] || [ -L "$out/$path" ] || fail "$case: '$path' is missing; have: $(cd "$out" && find . | head -30 | tr '\n' ' ')"
		got=$(stat -c '%a %u:%g' "$out/$path")
		[ "$(find "$out/$path" -maxdepth 0 -printf '%y')" = "$type" ] || fail "$case: '$path' is not of type $type"
		if [ "$type" != l ]; then
			[ "$got" = "$mode $owner" ] || fail "$case: '$path' is '$got', expected '$mode $owner'"
		else
			[ "$(stat -c '%u:%g' "$out/$path")" = "$owner" ] || fail "$case: link '$path' owner"
		fi
		if [ -n "$extra" ] && [ "$type" = f ]; then
			[ "$(sha256sum <"$out/$path" | cut -d' ' -f1)" = "$extra" ] ||
				fail "$case: '$path' content differs: $(head -c 200 "$out/$path")"
		elif [ -n "$extra" ] && [ "$type" = l ]; then
			[ "$(readlink "$out/$path")" = "$extra" ] || fail "$case: link '$path' -> $(readlink "$out/$path")"
		fi
	done <"$expect"
}

ncases=0
for dir in "$CORPUS"/*/; do
	case=$(basename "$dir")
	ctx="$TEST_TMP/ctx/$case" out="$TEST_TMP/out/$case"
	mkdir -p "$ctx" "$out"
	# (git keeps no empty folders: a case without context files has no context/)
	[ ! -d "$dir/context" ] || cp -a "$dir/context/." "$ctx/"
	cp "$dir/Dockerfile" "$ctx/Dockerfile"
	if [ -f "$ctx/setup.sh" ]; then (cd "$ctx" && sh ./setup.sh) && rm "$ctx/setup.sh"; fi
	args=()
	[ -f "$dir/args" ] && mapfile -t args <"$dir/args"
	if [ -f "$dir/base.Dockerfile" ]; then
		snap build --progress plain -f "$dir/base.Dockerfile" -t "corpus-base/$case" "$ctx" >"$out/base.log" 2>&1 ||
			fail "$case: base build failed: $(tail -5 "$out/base.log")"
	fi
	snap build --progress plain "${args[@]}" -t "corpus/$case" \
		-o "type=local,dest=$out/local" -o "type=oci,dest=$out/oci.tar" \
		-o "type=docker,dest=$out/docker.tar,name=corpus/$case:latest" \
		-o "type=tar,dest=$out/rootfs.tar" "$ctx" >"$out/log" 2>&1 ||
		fail "$case: build failed: $(tail -5 "$out/log")"
	check_files "$out/local" "$dir/expect.files" "$case"
	snap image inspect "corpus/$case" >"$out/inspect.json"
	python3 - "$out/inspect.json" "$dir/expect.py" <<'PY' || fail "$case: config check failed"
import json, sys
j = json.load(open(sys.argv[1]))
c = j["config_json"]
exec(open(sys.argv[2]).read(), {"c": c})
PY
	skopeo inspect "oci-archive:$out/oci.tar" >/dev/null || fail "$case: skopeo cannot read the OCI export"
	skopeo inspect "docker-archive:$out/docker.tar" >"$out/docker.json" || fail "$case: skopeo cannot read the docker export"
	tar -xOf "$out/docker.tar" manifest.json | grep -q "\"corpus/$case:latest\"" ||
		fail "$case: the docker export's manifest.json lacks its name"
	mkdir -p "$out/oci" && tar -xf "$out/oci.tar" -C "$out/oci"
	umoci unpack --image "$out/oci" "$out/bundle" >/dev/null || fail "$case: umoci unpack failed"
	tree_list "$out/bundle/rootfs" "$out/umoci.list"
	tree_list "$out/local" "$out/local.list"
	diff -u "$out/local.list" "$out/umoci.list" >"$out/tree.diff" ||
		fail "$case: umoci's tree differs from type=local: $(head -20 "$out/tree.diff")"
	mkdir -p "$out/rootfs" && tar -xf "$out/rootfs.tar" -C "$out/rootfs"
	tree_list "$out/rootfs" "$out/rootfs.list"
	diff -u "$out/local.list" "$out/rootfs.list" >"$out/tar.diff" ||
		fail "$case: the rootfs tar differs from type=local: $(head -20 "$out/tar.diff")"
	pass "$case"
	ncases=$((ncases + 1))
done
[ "$ncases" -ge 11 ] || fail "only $ncases corpus cases ran"
check_store_consistent
snap check >/dev/null || fail "check after the corpus: $(snap check)"
if [ "$DRIVER" = native ]; then
	# overlay snapshots have a work/ folder beside fs/; native ones never do
	! ls -d "$STORE"/snapshots/*/work >/dev/null 2>&1 || fail "the store is not on the native driver"
fi
pass "$ncases cases on ${DRIVER:-the default} driver; store consistent"
