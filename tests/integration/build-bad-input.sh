#!/bin/bash
# Bad input to snapctl build: each gives one line that names the problem,
# exit status 1 (2 for bad usage), and leaves nothing behind (no work
# snapshot, mount, lease or tmp/ folder; check passes). Also the outputs
# and flags a tool relies on: -f -, -o - (a tar on stdout), --iidfile,
# --metadata-file, --network none.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root
STORE="$TEST_TMP/store"
import_busybox busybox:latest
C="$TEST_TMP/ctx"
mkdir -p "$C"
echo data >"$C/a.txt"

nothing_left() {
	! grep -q " $STORE/" /proc/mounts || fail "$1: mounts left: $(grep " $STORE/" /proc/mounts)"
	! snap snapshot ls --json | grep -q '"kind": "active"' || fail "$1: an active snapshot is left"
	! snap lease ls --json | grep -q '"id": "build\.' || fail "$1: a build lease is left"
	snap check >/dev/null || fail "$1: check: $(snap check)"
	check_store_consistent
}
df() { printf "$1" >"$C/Dockerfile"; }

df 'FROM busybox\nRUN echo first; echo second >&2; exit 7\n'
expect_error 1 "#2 RUN echo first; echo second >&2; exit 7: process '/bin/sh -c echo first; echo second >&2; exit 7' exited with code 7; last output: (first \| second|second \| first)$" snap build --progress quiet "$C"
nothing_left "failing RUN"
df 'FROM busybox\nCOPY missing.txt /\n'
expect_error 1 "COPY missing.txt /: COPY failed: 'missing.txt' not found in build context$" snap build --progress quiet "$C"
nothing_left "COPY of a missing file"
df 'FROM nosuch/image:1.0\nRUN true\n'
expect_error 1 "Dockerfile:1: image 'nosuch/image:1.0' is not in the store; add it with 'snapctl image import'" snap build --progress quiet "$C"
df 'FROM busybox AS one\nRUN true\n'
expect_error 1 "target stage 'two' could not be found" snap build --progress quiet --target two "$C"
df 'FROM scratch\nCOPY --from=nowhere /x /x\n'
expect_error 1 "Dockerfile:2: image 'nowhere' is not in the store" snap build --progress quiet "$C"
df 'FROM busybox AS a\nFROM scratch\nCOPY --from=a /not-there /x\n'
expect_error 1 "stage 'a': COPY failed: '/not-there' not found$" snap build --progress quiet "$C"
nothing_left "COPY --from of a missing path"
expect_error 1 "build context '$TEST_TMP/no-such-dir' does not exist" snap build --progress quiet "$TEST_TMP/no-such-dir"
df 'FROM busybox\nRUN true\nCOPY <<EOF /x\n'
expect_error 1 "Dockerfile:3: unterminated heredoc" snap build --progress quiet "$C"
df 'FROM busybox\nRUN true\nBOGUS thing\n'
expect_error 1 "Dockerfile:3: unknown instruction: 'BOGUS'" snap build --progress quiet "$C"
df 'FROM busybox\nARG M\nCOPY --chmod=$M a.txt /\n'
expect_error 1 "invalid --chmod value '9x9'" snap build --progress quiet --build-arg M=9x9 "$C"
expect_error 1 "Dockerfile '$TEST_TMP/none' does not exist; name it with -f" snap build --progress quiet -f "$TEST_TMP/none" "$C"
df 'FROM busybox\nRUN true\n'
expect_error 2 "--runtime 'kata' is not runc or crun" snap build --runtime kata "$C"
expect_error 2 "--progress 'fancy' is not auto, plain, json or quiet" snap build --progress fancy "$C"
expect_error 2 "build needs a CONTEXT folder" snap build
# A runtime that is not installed: runc hidden from PATH.
mkdir -p "$TEST_TMP/emptybin"
expect_error 1 "runtime 'runc' not found on PATH; install it with 'apt-get install runc'" env PATH="$TEST_TMP/emptybin" "$SNAPCTL" --root "$STORE" build --progress quiet --no-cache "$C"
nothing_left "missing runtime"
if command -v crun >/dev/null && grep -q cgroup2 /proc/mounts && [ -d /sys/fs/cgroup/unified ]; then
	expect_error 1 "use '--runtime runc'" snap build --progress quiet --runtime crun --no-cache "$C"
fi

# -f - reads the Dockerfile from stdin; -o - writes a rootfs tar to stdout.
printf 'FROM busybox\nRUN echo from-stdin > /stdin.txt\n' | snap build --progress quiet -f - -o - "$C" >"$TEST_TMP/out.tar" ||
	fail "-f - -o -"
tar -xOf "$TEST_TMP/out.tar" ./stdin.txt 2>/dev/null | grep -q from-stdin || tar -xOf "$TEST_TMP/out.tar" stdin.txt | grep -q from-stdin ||
	fail "-o - tar lacks stdin.txt: $(tar -tf "$TEST_TMP/out.tar" | head)"
pass "-f - and -o - (GNU tar reads the stream)"

# --iidfile and --metadata-file, as buildctl writes them.
df 'FROM busybox\nENV X=1\n'
snap build --progress quiet -t meta:1 --iidfile "$TEST_TMP/iid" --metadata-file "$TEST_TMP/meta.json" "$C" >"$TEST_TMP/q.out"
cfg=$(snap image inspect meta:1 | json_get /dev/stdin "j['config']")
[ "$(cat "$TEST_TMP/iid")" = "$cfg" ] || fail "--iidfile has '$(cat "$TEST_TMP/iid")', config is $cfg"
[ "$(cat "$TEST_TMP/q.out")" = "$cfg" ] || fail "-q printed '$(cat "$TEST_TMP/q.out")'"
man=$(snap image inspect meta:1 | json_get /dev/stdin "j['manifest']")
[ "$(json_get "$TEST_TMP/meta.json" "j['containerimage.digest']")" = "$man" ] || fail "metadata digest: $(cat "$TEST_TMP/meta.json")"
[ "$(json_get "$TEST_TMP/meta.json" "j['containerimage.config.digest']")" = "$cfg" ] || fail "metadata config digest"
pass "--iidfile, --metadata-file and -q name the built image"

# --network none: loopback only; host: the host's interfaces.
df 'FROM busybox\nRUN ls /sys/class/net > /ifaces\n'
snap build --progress quiet --network none --no-cache -o "type=local,dest=$TEST_TMP/none" "$C" >/dev/null || fail "--network none"
[ "$(cat "$TEST_TMP/none/ifaces")" = lo ] || fail "--network none sees $(cat "$TEST_TMP/none/ifaces")"
snap build --progress quiet --network host --no-cache -o "type=local,dest=$TEST_TMP/host" "$C" >/dev/null || fail "--network host"
[ "$(sort "$TEST_TMP/host/ifaces")" = "$(ls /sys/class/net | sort)" ] || fail "--network host sees $(cat "$TEST_TMP/host/ifaces")"
pass "--network none has only lo; host has the host's interfaces"
nothing_left "the end"
