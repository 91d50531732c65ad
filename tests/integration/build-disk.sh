#!/bin/bash
# Full disks during builds, on a 256 MB ext4 loop file system with a 60 MB
# min-free policy: a COPY whose files and layer do not fit next to an old
# build cache succeeds because the collector, told what the step will write,
# makes room before the step; with
# automatic collection off, the same build fails with one line naming
# ENOSPC and leaves no work snapshot, mount, lease or half record behind.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root
FS="$TEST_TMP/fs"
make_loop_fs ext4 256M "$FS"
C="$TEST_TMP/ctx"
mkdir -p "$C"
head -c 70M /dev/urandom >"$C/one.bin"
head -c 70M /dev/urandom >"$C/two.bin"

nothing_left() {
	! grep -q " $STORE/" /proc/mounts || fail "$1: mounts left"
	! snap snapshot ls --json | grep -q '"kind": "active"' || fail "$1: an active snapshot is left"
	! snap lease ls --json | grep -q '"id": "build\.' || fail "$1: a build lease is left"
	snap check >/dev/null || fail "$1: check: $(snap check)"
	check_store_consistent
}
avail_mb() { df --output=avail -m "$FS" | tail -1 | tr -d ' '; }

for mode in on off; do
	STORE="$FS/store-$mode"
	import_busybox busybox:latest
	auto=$([ $mode = on ] && echo true || echo false)
	printf '{"gc": {"auto": %s, "policies": [{"min-free": "60MB"}]}}\n' "$auto" >"$STORE/config.json"
	printf 'FROM busybox\nCOPY one.bin /data.bin\n' >"$C/Dockerfile"
	snap build --progress plain "$C" >"$TEST_TMP/first-$mode.log" 2>&1 || fail "$mode: first build: $(tail -3 "$TEST_TMP/first-$mode.log")"
	before=$(avail_mb)
	# Room for the first build's cache, not for a second one beside it (70 MB of files + a 70 MB layer).
	[ "$before" -gt 60 ] && [ "$before" -lt 140 ] || fail "$mode: the first build left ${before} MB free; the test needs 60-140"
	[ "$(snap snapshot ls --json | grep -c '"key": "cache/')" -ge 1 ] || fail "$mode: the first build's cache is gone already"
	printf 'FROM busybox\nCOPY two.bin /data.bin\n' >"$C/Dockerfile"
	if [ $mode = on ]; then
		snap build --progress plain "$C" >"$TEST_TMP/second.log" 2>&1 ||
			fail "the build failed although the old cache could go: $(tail -3 "$TEST_TMP/second.log")"
		pass "min-free on: ${before} MB free before, the collector made room, the build succeeded ($(avail_mb) MB free after)"
	else
		expect_error 1 "No space left on device; free space with .snapctl prune." snap build --progress quiet "$C"
		pass "min-free off: the same build fails with ENOSPC (${before} MB free)"
	fi
	nothing_left "$mode"
	snap image ls >/dev/null || fail "$mode: the store is unreadable"
	rm -rf "$STORE"
done
