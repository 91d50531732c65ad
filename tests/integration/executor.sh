#!/bin/bash
# The executor (builder/executor) with the real runtime: exit codes, the
# process's environment, working directory and user, network none and host,
# output lines and the tail, cancel, mount stubs that never stay in the
# rootfs, a missing runtime, and crun on a hybrid cgroup layout when crun is
# installed. Driven through exec-run (tests/integration/exec-run.c); the
# rootfs is a folder with Debian's static busybox.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root

: "${EXEC_RUN:?EXEC_RUN must point at exec-run (meson sets it)}"
command -v runc >/dev/null || fail "runc is not installed (apt-get install runc)"
[ -x /bin/busybox ] || fail "/bin/busybox is missing (apt-get install busybox-static)"
case "$(ldd /bin/busybox 2>&1 || true)" in
*"not a dynamic"*) ;;
*) fail "/bin/busybox is not static (apt-get install busybox-static)" ;;
esac

# make_rootfs DIR [bare]: busybox and its applets; with /etc/passwd and
# /etc/group unless bare. No /proc, /dev, /sys or /etc/hosts: the executor
# has to stub them. Times are fixed so that a changed folder shows.
make_rootfs() {
	local d=$1 a
	mkdir -p "$d/bin"
	cp /bin/busybox "$d/bin/busybox"
	for a in sh ls cat id ip sleep echo env pwd grep stat touch mkdir wc true false printf \
		seq head tr hostname sort; do
		ln -s busybox "$d/bin/$a"
	done
	if [ "${2:-}" != bare ]; then
		mkdir -p "$d/etc" "$d/home/app"
		cat >"$d/etc/passwd" <<-EOF
			root:x:0:0:root:/root:/bin/sh
			app:x:1000:1000::/home/app:/bin/sh
		EOF
		cat >"$d/etc/group" <<-EOF
			root:x:0:
			app:x:1000:
			devs:x:2000:other,app
			audio:x:29:other
		EOF
		chown 1000:1000 "$d/home/app"
	fi
	find "$d" -depth -exec touch -h -d '2020-01-02 03:04:05' {} +
}

# tree_state DIR: every entry with kind, mode, owner, size and mtime.
tree_state() { (cd "$1" && find . -printf '%p %y %m %U:%G %s %T@\n' | LC_ALL=C sort); }

ROOTFS="$TEST_TMP/rootfs"
make_rootfs "$ROOTFS"
ID_PREFIX="snapctl-test-$$"
N=0
# Runtime state of every container this test started goes at exit.
on_exit "for c in \$(runc list -q 2>/dev/null | grep '^$ID_PREFIX-'); do runc delete --force \$c; done"

# xrun [--rootfs DIR] EXEC-RUN-ARGS... -- ARGV...: one run; its stdout in
# $OUT, exit status in $RUN_STATUS, id in $ID, bundle in $BUNDLE.
xrun() {
	local rootfs=$ROOTFS
	if [ "$1" = --rootfs ]; then
		rootfs=$2
		shift 2
	fi
	N=$((N + 1))
	ID="$ID_PREFIX-$N"
	BUNDLE="$TEST_TMP/bundle.$N"
	OUT="$TEST_TMP/out.$N"
	mkdir "$BUNDLE"
	RUN_STATUS=0
	"$EXEC_RUN" --rootfs "$rootfs" --bundle "$BUNDLE" --id "$ID" "$@" >"$OUT" 2>"$OUT.stderr" ||
		RUN_STATUS=$?
	[ -z "$(ls -A "$BUNDLE")" ] || fail "run $N left files in the bundle: $(ls -A "$BUNDLE")"
	if runc list -q 2>/dev/null | grep -qx "$ID"; then
		fail "run $N: container $ID still known to runc"
	fi
}

# expect_exit CODE: the last run returned 0 and reported exit code CODE.
expect_exit() {
	[ "$RUN_STATUS" = 0 ] || fail "run $N ($ID) failed: $(cat "$OUT" "$OUT.stderr")"
	grep -qx "exit: $1" "$OUT" || fail "run $N: expected exit code $1: $(cat "$OUT")"
}

# expect_fail ENAME PATTERN: the last run failed with -ENAME, the message matching PATTERN.
expect_fail() {
	[ "$RUN_STATUS" = 1 ] || fail "run $N: expected failure $1, status $RUN_STATUS: $(cat "$OUT")"
	grep -Eq "^error: $1: .*$2" "$OUT" || fail "run $N: expected '$1: ...$2...': $(cat "$OUT")"
}

stream() { sed -n "s/^$1: //p" "$OUT"; }

state0=$(tree_state "$ROOTFS")
assert_rootfs_unchanged() {
	local now
	now=$(tree_state "$ROOTFS")
	[ "$now" = "$state0" ] || fail "$1: rootfs changed: $(diff <(echo "$state0") <(echo "$now"))"
}

# ---- runtime look-up -------------------------------------------------------

"$EXEC_RUN" --check --runtime runc | grep -qx ok || fail "runtime check for runc"
"$EXEC_RUN" --check | grep -qx ok || fail "runtime check for the default runtime"
out=$(PATH=/nonexistent "$EXEC_RUN" --check --runtime runc || true)
echo "$out" | grep -q "^error: ENOENT: runtime 'runc' not found on PATH; install it with 'apt-get install runc'" ||
	fail "runc off PATH: $out"
xrun --runtime snapctl-no-such-runtime -- /bin/true
expect_fail ENOENT "runtime 'snapctl-no-such-runtime' not found"
xrun --runtime /nonexistent/runc -- /bin/true
expect_fail ENOENT "runtime '/nonexistent/runc' not found"
pass "a missing runtime is -ENOENT with what to install"

# ---- exit codes ------------------------------------------------------------

xrun -- /bin/sh -c 'exit 0'
expect_exit 0
xrun -- /bin/sh -c 'exit 3'
expect_exit 3
xrun -- /bin/false
expect_exit 1
# A fault kills even a pid namespace's init: 128 + SIGSEGV.
xrun -- /bin/sh -c 'ulimit -s 512; f() { f; }; f'
expect_exit 139
pass "exit codes 0, 3, 1 and 128+signal"

# The runtime failing to start the process is an error, not an exit code.
xrun -- /nonexistent-program
expect_fail EIO "/nonexistent-program"
pass "a program missing from the rootfs: -EIO with the runtime's message"

assert_rootfs_unchanged "after the exit-code runs"

# ---- environment, stdin, hostname ------------------------------------------

export SNAPCTL_LEAK_CHECK=leaked
xrun --env FOO=bar --env 'SPACED=a b  c' --env PATH=/bin -- /bin/sh -c 'env; cat; echo stdin-done'
expect_exit 0
stream out | grep -qx 'FOO=bar' || fail "FOO not passed: $(cat "$OUT")"
stream out | grep -qx 'SPACED=a b  c' || fail "SPACED not passed as is: $(cat "$OUT")"
stream out | grep -qx 'PATH=/bin' || fail "PATH not passed: $(cat "$OUT")"
stream out | grep -q SNAPCTL_LEAK_CHECK && fail "the builder's environment leaked in: $(cat "$OUT")"
stream out | grep -qx stdin-done || fail "stdin is not at end of file: $(cat "$OUT")"
unset SNAPCTL_LEAK_CHECK
pass "environment as given, nothing from the builder; stdin is empty"

xrun -- /bin/hostname
expect_exit 0
[ "$(stream out)" = snapctl ] || fail "default hostname: $(cat "$OUT")"
xrun --hostname box7 -- /bin/hostname
[ "$(stream out)" = box7 ] || fail "hostname: $(cat "$OUT")"
pass "hostname"

# Capabilities: Docker's default set for root, none left for another user.
xrun -- /bin/grep -E '^Cap(Eff|Bnd):' /proc/self/status
expect_exit 0
stream out | grep -Eq '^CapEff:\s+00000000a80425fb$' || fail "root's capabilities: $(cat "$OUT")"
xrun --user app -- /bin/grep -E '^Cap(Eff|Bnd):' /proc/self/status
stream out | grep -Eq '^CapEff:\s+0000000000000000$' || fail "app's capabilities: $(cat "$OUT")"
stream out | grep -Eq '^CapBnd:\s+00000000a80425fb$' || fail "app's bounding set: $(cat "$OUT")"
pass "capabilities"

# ---- output ----------------------------------------------------------------

xrun -- /bin/sh -c 'echo one; echo two >&2; echo three; echo four >&2; printf partial'
expect_exit 0
[ "$(stream out | tr '\n' ,)" = "one,three,partial," ] || fail "stdout lines: $(cat "$OUT")"
[ "$(stream err | tr '\n' ,)" = "two,four," ] || fail "stderr lines: $(cat "$OUT")"
pass "lines on their streams, in order, the last one without its newline"

xrun -- /bin/sh -c 'head -c 10000 /dev/zero | tr "\0" a; echo; echo after'
expect_exit 0
[ "$(stream out | awk '{ print length($0) }' | tr '\n' ,)" = "4096,4096,1808,5," ] ||
	fail "long line pieces: $(stream out | awk '{ print length($0) }')"
stream out | tail -n 1 | grep -qx after || fail "line after the long one"
pass "a 10000-byte line comes in pieces of BLD_EXEC_LINE_MAX"

xrun -- /bin/sh -c 'seq 1 25; echo last >&2'
expect_exit 0
[ "$(stream out | wc -l)" = 25 ] || fail "all 25 lines: $(cat "$OUT")"
[ "$(sed -n 's/^tail: //p' "$OUT" | tr '\n' ,)" = "17,18,19,20,21,22,23,24,25,last," ] ||
	fail "tail: $(cat "$OUT")"
pass "the tail holds the last 10 lines of both streams"

# ---- user ------------------------------------------------------------------

# id_of USER: `id` in the container as USER, into $out.
id_of() {
	xrun --user "$1" -- /bin/id
	expect_exit 0
	out=$(stream out)
}
id_of app
echo "$out" | grep -q '^uid=1000(app) gid=1000(app)' || fail "app: $out"
echo "$out" | grep -q '2000(devs)' || fail "app's supplementary group devs: $out"
echo "$out" | grep -q '(audio)' && fail "app is not in audio: $out"
id_of 1000
echo "$out" | grep -q '^uid=1000(app) gid=1000(app).*2000(devs)' || fail "uid 1000 looked up: $out"
id_of app:audio
echo "$out" | grep -q '^uid=1000(app) gid=29(audio)' || fail "app:audio: $out"
echo "$out" | grep -q 'devs' && fail "explicit group: no supplementary groups: $out"
id_of 4242
echo "$out" | grep -q '^uid=4242 gid=0(root)' || fail "numeric uid not in passwd: $out"
id_of 4242:4343
echo "$out" | grep -q '^uid=4242 gid=4343' || fail "uid:gid: $out"
id_of root
echo "$out" | grep -q '^uid=0(root) gid=0(root)' || fail "root: $out"
xrun --user nosuchuser -- /bin/id
expect_fail EINVAL "'nosuchuser'"
xrun --user app:nosuchgroup -- /bin/id
expect_fail EINVAL "'nosuchgroup'"
pass "users by name and number, groups, unknown names"

# The image's user files are untrusted: they never lead out of the rootfs,
# a FIFO does not hang the build, and their size is bounded.
HOSTILE="$TEST_TMP/hostile"
cp -a "$ROOTFS" "$HOSTILE"
echo 'evil:x:4444:4444::/:/bin/sh' >"$TEST_TMP/host-passwd"
rm "$HOSTILE/etc/passwd"
ln -s "../../../../../../../../../../..$TEST_TMP/host-passwd" "$HOSTILE/etc/passwd"
xrun --rootfs "$HOSTILE" --user evil -- /bin/id
expect_fail EINVAL "unable to find user 'evil'"
rm "$HOSTILE/etc/passwd"
mkfifo "$HOSTILE/etc/passwd"
xrun --rootfs "$HOSTILE" --user app -- /bin/id
expect_fail EINVAL "'/etc/passwd' in the root file system is not a regular file"
rm "$HOSTILE/etc/passwd"
head -c $((4 * 1024 * 1024 + 1)) /dev/zero | tr '\0' '#' >"$HOSTILE/etc/passwd"
xrun --rootfs "$HOSTILE" --user app -- /bin/id
expect_fail EFBIG "larger than 4 MiB"
pass "hostile /etc/passwd: a symlink out of the rootfs, a FIFO, 4 MiB"

# ---- working directory -----------------------------------------------------

xrun --user app --cwd /work/sub/dir -- /bin/sh -c 'pwd; touch mine'
expect_exit 0
[ "$(stream out)" = /work/sub/dir ] || fail "cwd: $(cat "$OUT")"
for d in work work/sub work/sub/dir; do
	[ "$(stat -c '%u:%g %a' "$ROOTFS/$d")" = "1000:1000 755" ] ||
		fail "made /$d: $(stat -c '%u:%g %a' "$ROOTFS/$d")"
done
[ -f "$ROOTFS/work/sub/dir/mine" ] || fail "the process could not write in its working directory"
xrun --user app --cwd /etc -- /bin/pwd
expect_exit 0
[ "$(stat -c '%u:%g' "$ROOTFS/etc")" = 0:0 ] || fail "an existing cwd changed owner"
xrun --cwd relative/dir -- /bin/pwd
expect_fail EINVAL "not an absolute path"
xrun --cwd /bin/sh/x -- /bin/pwd
expect_fail ENOTDIR "not a folder"
rm -rf "$ROOTFS/work"
touch -h -d '2020-01-02 03:04:05' "$ROOTFS"
pass "a missing working directory is made 0755 for the user, and kept"

assert_rootfs_unchanged "after the user and cwd runs"

# ---- network ---------------------------------------------------------------

xrun -- /bin/sh -c 'ls /sys/class/net; ip -o link show lo'
expect_exit 0
[ "$(stream out | grep -v ': lo:')" = lo ] || fail "network none shows more than lo: $(cat "$OUT")"
stream out | grep ': lo:' | grep -q '[<,]UP[,>]' || fail "lo is not up: $(cat "$OUT")"
[ "$(stream out | grep -v ': lo:' | wc -l)" = 1 ] || fail "interfaces: $(cat "$OUT")"
pass "network none: loopback only, and up"

xrun --network host -- /bin/sh -c 'ls /sys/class/net'
expect_exit 0
[ "$(stream out | LC_ALL=C sort)" = "$(ls /sys/class/net | LC_ALL=C sort)" ] ||
	fail "network host: $(stream out | tr '\n' ' ') vs host $(ls /sys/class/net | tr '\n' ' ')"
[ "$(ls /sys/class/net | wc -l)" -gt 1 ] || fail "this host has only lo: cannot tell host from none"
if [ -e /etc/resolv.conf ]; then
	xrun --network host -- /bin/cat /etc/resolv.conf
	expect_exit 0
	[ "$(stream out)" = "$(cat /etc/resolv.conf)" ] || fail "resolv.conf is not the host's"
fi
xrun --network host -- /bin/sh -c 'cat /etc/hosts; if (: >>/etc/hosts) 2>/dev/null; then echo writable; fi'
expect_exit 0
[ "$(stream out)" = "$(cat /etc/hosts)" ] || fail "hosts is not the host's: $(cat "$OUT")"
pass "network host: the host's interfaces, resolv.conf and hosts (read-only)"

# ---- mount stubs -----------------------------------------------------------

assert_rootfs_unchanged "after host-network runs (/etc/hosts, /proc, /dev, /sys stubs)"
[ ! -e "$ROOTFS/etc/hosts" ] && [ ! -e "$ROOTFS/proc" ] && [ ! -e "$ROOTFS/dev" ] ||
	fail "stubs left behind: $(ls -A "$ROOTFS" "$ROOTFS/etc")"

mkdir -p "$TEST_TMP/hostdir"
echo from-host >"$TEST_TMP/hostdir/file"
echo single >"$TEST_TMP/hostfile"
xrun --mount "bind:$TEST_TMP/hostdir:/data/in:ro" --mount "bind:$TEST_TMP/hostfile:/opt/one.txt" \
	--mount tmpfs::/mnt/cache -- /bin/sh -c \
	'cat /data/in/file /opt/one.txt; echo t >/mnt/cache/x && cat /mnt/cache/x; echo no >/data/in/w || echo ro-ok'
expect_exit 0
[ "$(stream out | tr '\n' ,)" = "from-host,single,t,ro-ok," ] || fail "extra mounts: $(cat "$OUT")"
[ ! -e "$TEST_TMP/hostdir/w" ] || fail "wrote through a read-only bind"
assert_rootfs_unchanged "after bind and tmpfs mounts (/data/in, /opt/one.txt, /mnt/cache stubs)"
pass "bind and tmpfs mounts; their stubs are gone"

BARE="$TEST_TMP/bare"
make_rootfs "$BARE" bare
bare0=$(tree_state "$BARE")
xrun --rootfs "$BARE" --network host -- /bin/sh -c 'cat /etc/hosts >/dev/null; ls /'
expect_exit 0
[ "$(tree_state "$BARE")" = "$bare0" ] || fail "bare rootfs changed: $(diff <(echo "$bare0") <(tree_state "$BARE"))"
xrun --rootfs "$BARE" --network host -- /bin/sh -c 'echo kept >/etc/new'
expect_exit 0
[ "$(cat "$BARE/etc/new" 2>/dev/null)" = kept ] || fail "a file written to a stub folder is lost"
[ ! -e "$BARE/etc/hosts" ] && [ ! -e "$BARE/etc/resolv.conf" ] && [ ! -e "$BARE/proc" ] ||
	fail "stubs left in the bare rootfs: $(ls -A "$BARE" "$BARE/etc")"
pass "a rootfs without /etc: stubs removed, a folder the step wrote into kept"

# A dangling /etc/resolv.conf symlink (systemd's) is followed in the rootfs,
# as the runtime does, and what was made for it goes again.
LINKED="$TEST_TMP/linked"
cp -a "$ROOTFS" "$LINKED"
ln -s ../run/systemd/resolve/stub-resolv.conf "$LINKED/etc/resolv.conf"
touch -h -d '2020-01-02 03:04:05' "$LINKED/etc/resolv.conf" "$LINKED/etc"
linked0=$(tree_state "$LINKED")
if [ -e /etc/resolv.conf ]; then
	xrun --rootfs "$LINKED" --network host -- /bin/cat /etc/resolv.conf
	expect_exit 0
	[ "$(stream out)" = "$(cat /etc/resolv.conf)" ] || fail "resolv.conf through a symlink"
	[ "$(tree_state "$LINKED")" = "$linked0" ] ||
		fail "stubs behind a symlink left: $(diff <(echo "$linked0") <(tree_state "$LINKED"))"
fi

# /etc a symlink pointing out of the rootfs: it resolves inside the rootfs,
# nothing is made outside it, nothing stays inside.
ESCAPE="$TEST_TMP/escape"
mkdir "$ESCAPE"
rm -rf "$HOSTILE/etc"
ln -s "../../../../../../../../../../..$ESCAPE" "$HOSTILE/etc"
touch -h -d '2020-01-02 03:04:05' "$HOSTILE/etc" "$HOSTILE"
hostile0=$(tree_state "$HOSTILE")
xrun --rootfs "$HOSTILE" --network host -- /bin/true
expect_exit 0
[ -z "$(ls -A "$ESCAPE")" ] || fail "a mount point was made outside the rootfs: $(ls -A "$ESCAPE")"
[ "$(tree_state "$HOSTILE")" = "$hostile0" ] ||
	fail "stubs left: $(diff <(echo "$hostile0") <(tree_state "$HOSTILE"))"
pass "symlinks on the way to a mount point: followed inside the rootfs, stubs removed"

# ---- cancel ----------------------------------------------------------------

container_procs() { grep -l ":/$1\$" /proc/[0-9]*/cgroup 2>/dev/null || true; }

N=$((N + 1))
ID="$ID_PREFIX-$N"
BUNDLE="$TEST_TMP/bundle.$N"
OUT="$TEST_TMP/out.$N"
mkdir "$BUNDLE"
start=$(date +%s%N)
"$EXEC_RUN" --rootfs "$ROOTFS" --bundle "$BUNDLE" --id "$ID" --cancel-after 1500 -- /bin/sleep 30 \
	>"$OUT" 2>&1 &
runner=$!
# While it sleeps: the runtime leads its own session, apart from ours.
for _ in $(seq 1 50); do
	rpid=$(pgrep -f -- "--bundle $BUNDLE $ID" | head -n 1 || true)
	[ -n "$rpid" ] && break
	sleep 0.02
done
[ -n "$rpid" ] || fail "no runtime process seen for $ID"
[ "$(ps -o sid= -p "$rpid" | tr -d ' ')" = "$rpid" ] || fail "the runtime is not in its own session"
[ "$(ps -o sid= -p "$rpid" | tr -d ' ')" != "$(ps -o sid= -p $$ | tr -d ' ')" ] ||
	fail "the runtime shares the test's session"
RUN_STATUS=0
wait $runner || RUN_STATUS=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
expect_fail ECANCELED "canceled"
cancel_ms=$(sed -n 's/^cancel-ms: //p' "$OUT")
[ -n "$cancel_ms" ] && [ "$cancel_ms" -lt 2500 ] || fail "cancel took ${cancel_ms}ms: $(cat "$OUT")"
[ "$elapsed_ms" -lt 10000 ] || fail "canceled run took ${elapsed_ms}ms"
runc list -q | grep -qx "$ID" && fail "runc still lists $ID"
[ -z "$(container_procs "$ID")" ] || fail "processes left in $ID's cgroup: $(container_procs "$ID")"
pgrep -f -- "$ID" >/dev/null && fail "processes naming $ID left: $(pgrep -af -- "$ID")"
[ -z "$(ls -A "$BUNDLE")" ] || fail "canceled run left files in the bundle"
assert_rootfs_unchanged "after the canceled run"
pass "cancel during sleep 30: -ECANCELED in ${cancel_ms}ms, no container or process left"

# Canceled before the runtime could create the container.
xrun --cancel-after 0 -- /bin/sleep 30
expect_fail ECANCELED "canceled"
[ -z "$(container_procs "$ID")" ] || fail "processes left after an immediate cancel"
pgrep -f -- "$ID" >/dev/null && fail "processes naming $ID left: $(pgrep -af -- "$ID")"
# A step that ends by itself before the flag is set is not canceled.
xrun --cancel-after 5000 -- /bin/sh -c 'exit 4'
expect_exit 4
pass "cancel at once, and a cancel that comes too late"

# ---- several at once -------------------------------------------------------

# Six steps at once from threads, each on its own rootfs (its own snapshot).
N=$((N + 1))
BUNDLE="$TEST_TMP/bundle.$N"
OUT="$TEST_TMP/out.$N"
PAR="$TEST_TMP/par"
mkdir "$BUNDLE" "$PAR"
for k in 0 1 2 3 4 5; do
	cp -a "$ROOTFS" "$PAR/$k"
done
RUN_STATUS=0
"$EXEC_RUN" --rootfs "$PAR" --bundle "$BUNDLE" --id "$ID_PREFIX-par" --parallel 6 \
	--network host -- /bin/sh -c 'i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done; exit 5' \
	>"$OUT" 2>&1 || RUN_STATUS=$?
[ "$RUN_STATUS" = 0 ] || fail "parallel runs failed: $(grep error "$OUT")"
for k in 0 1 2 3 4 5; do
	grep -qx "\[$k\] exit: 5" "$OUT" || fail "parallel run $k: $(grep "^\[$k\]" "$OUT" | tail -n 3)"
	[ "$(grep -c "^\[$k\] out: line-" "$OUT")" = 200 ] || fail "parallel run $k lost lines"
	[ "$(grep "^\[$k\] out: " "$OUT" | sed 's/.*line-//' | tr '\n' ,)" = "$(seq -s, 0 199)," ] ||
		fail "parallel run $k: lines out of order"
	[ "$(tree_state "$PAR/$k")" = "$state0" ] || fail "parallel run $k changed its rootfs"
	[ -z "$(ls -A "$BUNDLE/$k")" ] || fail "parallel run $k left files in its bundle"
done
runc list -q | grep -q "^$ID_PREFIX-par" && fail "parallel containers left"
pass "six runs at once from threads"

# ---- crun on a hybrid cgroup layout ------------------------------------------

hybrid=no
if [ "$(stat -fc %T /sys/fs/cgroup)" = tmpfs ] &&
	[ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] &&
	[ -n "$(tr -d ' \n' </sys/fs/cgroup/unified/cgroup.controllers)" ]; then
	hybrid=yes
fi
if ! command -v crun >/dev/null; then
	echo "note: crun is not installed; its checks are not run (apt-get install crun)"
	out=$("$EXEC_RUN" --check --runtime crun || true)
	echo "$out" | grep -q "^error: ENOENT: runtime 'crun' not found on PATH; install it with 'apt-get install crun'" ||
		fail "crun missing: $out"
elif [ $hybrid = yes ]; then
	out=$("$EXEC_RUN" --check --runtime crun || true)
	echo "$out" | grep -q "^error: EOPNOTSUPP: .*hybrid.*use '--runtime runc'" || fail "crun check on hybrid: $out"
	# The run itself maps crun's refusal to the same error.
	xrun --runtime crun -- /bin/true
	expect_fail EOPNOTSUPP "hybrid mode.*use '--runtime runc'"
	assert_rootfs_unchanged "after crun's refusal"
	pass "crun on a hybrid cgroup layout: -EOPNOTSUPP up front and from the run"
else
	"$EXEC_RUN" --check --runtime crun | grep -qx ok || fail "crun check"
	xrun --runtime crun -- /bin/sh -c 'exit 6'
	expect_exit 6
	pass "crun runs steps on this host"
fi

runc list -q | grep -q "^$ID_PREFIX" && fail "containers left: $(runc list -q | grep "^$ID_PREFIX")"
exit 0
