#!/bin/bash
# How builds run: independent stages at the same time (from the JSON
# progress timestamps), SIGINT/SIGTERM during a RUN (no process, mount,
# work snapshot or lease left; check passes; exit 130/143), a prune loop
# racing a build loop (no build breaks; the store stays consistent), a
# kill -9 of a build (its leftovers go with the next build), and a context
# of 100,000 files with bounded memory.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root
STORE="$TEST_TMP/store"
import_busybox busybox:latest

# Concurrency: two stages that sleep 2 s each start before either ends.
C="$TEST_TMP/conc"
mkdir -p "$C"
cat >"$C/Dockerfile" <<'DF'
FROM busybox AS a
RUN sleep 2 && echo a > /a
FROM busybox AS b
RUN sleep 2 && echo b > /b
FROM scratch
COPY --from=a /a /a
COPY --from=b /b /b
DF
snap build --progress json -j 2 "$C" >"$TEST_TMP/conc.json" 2>/dev/null || fail "concurrent build failed"
python3 - "$TEST_TMP/conc.json" <<'PY' || fail "stages did not overlap: $(grep -E '"(start|done)"' "$TEST_TMP/conc.json" | cut -c1-160)"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
runs = {e["vertex"]: e for e in ev if e["type"] == "start" and "sleep 2" in e["name"]}
done = {e["vertex"]: e for e in ev if e["type"] == "done" and "sleep 2" in e["name"]}
assert len(runs) == 2 and len(done) == 2, (runs, done)
last_start = max(e["time"] for e in runs.values())
first_done = min(e["time"] for e in done.values())
assert last_start < first_done, (last_start, first_done)
print("overlap %.2fs" % ((first_done - last_start) / 1e9))
PY
pass "two independent stages ran at the same time"

no_leftovers() { # WHAT
	local what=$1
	! pgrep -f "sleep 3[0-9]" >/dev/null || fail "$what: a container process is left: $(pgrep -af 'sleep 3[0-9]')"
	! grep -q " $STORE/" /proc/mounts || fail "$what: mounts left: $(grep " $STORE/" /proc/mounts)"
	! snap snapshot ls --json | grep -q '"kind": "active"' || fail "$what: an active snapshot is left: $(snap snapshot ls)"
	! snap lease ls --json | grep -q '"id": "build\.' || fail "$what: a build lease is left: $(snap lease ls)"
	[ -z "$(runc list -q 2>/dev/null | grep '^snapctl-' || true)" ] || fail "$what: runc containers left: $(runc list)"
	snap check >"$TEST_TMP/check.log" 2>&1 || fail "$what: check: $(cat "$TEST_TMP/check.log")"
	check_store_consistent
}

# Cancel: SIGINT (130) and SIGTERM (143) while a RUN runs.
K="$TEST_TMP/cancel"
mkdir -p "$K"
for sig in INT TERM; do
	printf 'FROM busybox\nRUN echo started-%s; sleep 31\n' "$sig" >"$K/Dockerfile"
	"$SNAPCTL" --root "$STORE" build --progress plain "$K" >"$TEST_TMP/cancel-$sig.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do grep -q "started-$sig" "$TEST_TMP/cancel-$sig.log" && break; sleep 0.1; done
	grep -q "started-$sig" "$TEST_TMP/cancel-$sig.log" || fail "the RUN never started: $(cat "$TEST_TMP/cancel-$sig.log")"
	kill -$sig $pid
	status=0
	wait $pid || status=$?
	want=$([ $sig = INT ] && echo 130 || echo 143)
	[ "$status" = "$want" ] || fail "SIG$sig: exit $status, expected $want: $(cat "$TEST_TMP/cancel-$sig.log")"
	grep -q "build canceled by SIG$sig" "$TEST_TMP/cancel-$sig.log" || fail "no cancel message: $(tail -3 "$TEST_TMP/cancel-$sig.log")"
	no_leftovers "SIG$sig"
	pass "SIG$sig during a RUN: exit $status, nothing left behind"
done

# kill -9: the build's leftovers (work snapshot, lease, container) go with the next build.
printf 'FROM busybox\nRUN echo started-kill; sleep 32\n' >"$K/Dockerfile"
"$SNAPCTL" --root "$STORE" build --progress plain "$K" >"$TEST_TMP/kill.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q started-kill "$TEST_TMP/kill.log" && break; sleep 0.1; done
kill -9 $pid
status=0
wait $pid || status=$?
[ "$status" = 137 ] || fail "kill -9: exit $status"
snap snapshot ls --json | grep -q '"key": "build\.' || fail "kill -9 left no work snapshot: the kill did not land mid-step"
left=$(runc list -q 2>/dev/null | grep -c '^snapctl-' || true)
echo "after kill -9: $left container state(s) left, $(pgrep -fc 'sleep 32' || true) step process(es) running"
printf 'FROM busybox\nRUN echo after\n' >"$K/Dockerfile"
snap build --progress plain "$K" >/dev/null 2>&1 || fail "build after a kill -9"
snap lease prune >/dev/null
no_leftovers "after kill -9"
pass "a killed build's work snapshot and lease are gone after the next build"

# Prune while building: a prune loop never breaks a build loop.
P="$TEST_TMP/prune"
mkdir -p "$P"
for i in $(seq 20); do echo "file $i" >"$P/f$i"; done
stop="$TEST_TMP/stop"
(while [ ! -e "$stop" ]; do snap prune --quiet >/dev/null 2>&1 || echo "prune failed" >>"$TEST_TMP/prune-errors"; done) &
pruner=$!
for i in $(seq 12); do
	printf 'FROM busybox\nCOPY f* /files/\nRUN ls /files | wc -l > /count && echo %s > /round\nWORKDIR /w%s\n' "$i" "$((i % 3))" >"$P/Dockerfile"
	snap build --progress plain -o "type=local,dest=$TEST_TMP/prune-out$i" "$P" >"$TEST_TMP/prune-build.log" 2>&1 ||
		{ touch "$stop"; wait $pruner; fail "build $i failed while pruning: $(tail -5 "$TEST_TMP/prune-build.log")"; }
	[ "$(cat "$TEST_TMP/prune-out$i/count")" = 20 ] || { touch "$stop"; fail "build $i: wrong result"; }
done
touch "$stop"
wait $pruner
[ ! -e "$TEST_TMP/prune-errors" ] || fail "prune failed during builds"
no_leftovers "prune while building"
pass "12 builds ran while prune looped; store consistent"

# Two builds of the same steps at once, in a loop: both succeed (one may
# commit a step the other is making: each keeps its own), the store stays
# consistent, and afterwards the same steps are cache hits.
D="$TEST_TMP/dup"
mkdir -p "$D"
for round in $(seq 6); do
	echo "round $round" >"$D/round.txt"
	printf 'FROM busybox
COPY round.txt /round.txt
RUN cat /round.txt > /copy && sleep 0.2
' >"$D/Dockerfile"
	snap build --progress quiet -t "dup:a" "$D" >"$TEST_TMP/dup-a.log" 2>&1 &
	a=$!
	snap build --progress quiet -t "dup:b" "$D" >"$TEST_TMP/dup-b.log" 2>&1 &
	b=$!
	wait $a || fail "round $round: build a failed: $(cat "$TEST_TMP/dup-a.log")"
	wait $b || fail "round $round: build b failed: $(cat "$TEST_TMP/dup-b.log")"
done
no_leftovers "concurrent identical builds"
snap build --progress plain -t dup:c "$D" >"$TEST_TMP/dup-c.log" 2>&1 || fail "dup:c"
[ "$(grep -c CACHED "$TEST_TMP/dup-c.log")" = 3 ] || fail "after racing builds, not all cached: $(cat "$TEST_TMP/dup-c.log")"
pass "6 rounds of two identical builds at once; the next build is all cache hits"

# --progress auto on a terminal: the live view (one line per running step).
T="$TEST_TMP/tty"
mkdir -p "$T"
printf 'FROM busybox
RUN echo tick; sleep 1; echo tock
' >"$T/Dockerfile"
script -qec "$SNAPCTL --root $STORE build --no-cache $T" "$TEST_TMP/tty.log" >/dev/null || fail "auto progress on a terminal"
grep -q '=> #2 \[stage-0 2/2\] RUN echo tick; sleep 1; echo tock [0-9.]*s  | tick' "$TEST_TMP/tty.log" ||
	fail "no live line with the step's last output: $(tr -d '\033' <"$TEST_TMP/tty.log" | head -20)"
grep -q $'\033\[1A' "$TEST_TMP/tty.log" || fail "the live view did not redraw in place"
grep -q '^#2 DONE' "$TEST_TMP/tty.log" || fail "no DONE line on the terminal"
pass "--progress auto on a terminal shows running steps with their last output line"

# A context of 100,000 files: works, memory bounded.
B="$TEST_TMP/big"
mkdir -p "$B/ctx"
python3 - "$B/ctx" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(100):
    os.mkdir(f"{root}/d{d}")
    for f in range(1000):
        with open(f"{root}/d{d}/f{f}", "w") as fh:
            fh.write(f"{d}.{f}\n")
PY
printf 'FROM scratch\nCOPY . /ctx/\n' >"$B/ctx/Dockerfile"
/usr/bin/time -f '%M' -o "$B/rss" "$SNAPCTL" --root "$STORE" build --progress quiet "$B/ctx" >/dev/null 2>"$B/err" ||
	fail "100,000-file context: $(cat "$B/err")"
rss=$(tail -1 "$B/rss")
if ldd "$SNAPCTL" | grep -q libasan; then
	# AddressSanitizer's shadow memory and quarantine make RSS meaningless here.
	pass "a 100,000-file context builds ($rss KiB peak RSS under ASan, not checked)"
else
	[ "$rss" -lt 196608 ] || fail "100,000-file context took $rss KiB of memory"
	pass "a 100,000-file context builds in $rss KiB peak RSS"
fi
