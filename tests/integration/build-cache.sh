#!/bin/bash
# The build cache, as a user meets it: a rebuild with nothing changed is all
# CACHED with the same digest; editing one copied file re-runs exactly the
# steps from that COPY on and the MISS line names the file; touching a file
# (mtime only) or editing an ignored file re-runs nothing; renaming a file a
# wildcard COPY matches re-runs it; a changed build argument is named.
# Two cold builds in empty stores with the same SOURCE_DATE_EPOCH give the
# same digest. Cache records are pruned with --filter type=regular.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root
STORE="$TEST_TMP/store"
import_busybox busybox:latest
CTX="$TEST_TMP/ctx"
mkdir -p "$CTX/src"
cat >"$CTX/Dockerfile" <<'DF'
FROM busybox
ARG VERSION=1
RUN echo "version $VERSION" > /version
COPY src/*.c /src/
RUN cat /src/*.c > /all.c
COPY notes.txt /notes.txt
RUN wc -c /notes.txt > /notes.count
DF
echo 'int main;' >"$CTX/src/main.c"
echo 'int util;' >"$CTX/src/util.c"
echo 'notes' >"$CTX/notes.txt"
echo 'ignored' >"$CTX/ignored.txt"
printf 'ignored.txt\n' >"$CTX/.dockerignore"

build() { # LOG [ARGS...]: builds CTX as cache:test, progress in LOG
	local log=$1
	shift
	snap build --progress plain -t cache:test "$@" "$CTX" >"$log" 2>&1 || fail "build failed: $(tail -5 "$log")"
}
digest() { snap image ls --json | json_get /dev/stdin "[i['digest'] for i in j if i['name']=='cache:test'][0]"; }
# ran LOG: the step numbers that ran (had a DONE line), space separated
ran() { grep -Eo '^#[0-9]+ DONE' "$1" | cut -d' ' -f1 | tr -d '#' | sort -n | tr '\n' ' '; }
cached() { grep -Ec '^#[0-9]+ CACHED' "$1"; }

build "$TEST_TMP/b1.log"
d1=$(digest)
[ "$(ran "$TEST_TMP/b1.log")" = "2 3 4 5 6 " ] || fail "first build ran '$(ran "$TEST_TMP/b1.log")': $(cat "$TEST_TMP/b1.log")"
pass "cold build ran every step: $d1"

build "$TEST_TMP/b2.log"
[ -z "$(ran "$TEST_TMP/b2.log")" ] || fail "rebuild ran steps $(ran "$TEST_TMP/b2.log")"
[ "$(cached "$TEST_TMP/b2.log")" = 6 ] || fail "rebuild: $(cached "$TEST_TMP/b2.log") CACHED lines: $(cat "$TEST_TMP/b2.log")"
[ "$(digest)" = "$d1" ] || fail "rebuild changed the digest: $(digest) vs $d1"
pass "rebuild with nothing changed: every step CACHED, same digest"

touch -d '2001-01-01' "$CTX/src/main.c" "$CTX/notes.txt"
build "$TEST_TMP/b3.log"
[ -z "$(ran "$TEST_TMP/b3.log")" ] || fail "touch re-ran steps $(ran "$TEST_TMP/b3.log")"
[ "$(digest)" = "$d1" ] || fail "touch changed the digest"
pass "touching files (mtime only) re-runs nothing"

echo 'changed' >"$CTX/ignored.txt"
build "$TEST_TMP/b4.log"
[ -z "$(ran "$TEST_TMP/b4.log")" ] || fail "an ignored file re-ran steps $(ran "$TEST_TMP/b4.log")"
pass "editing an ignored file re-runs nothing"

echo 'int main2;' >"$CTX/src/main.c"
build "$TEST_TMP/b5.log"
[ "$(ran "$TEST_TMP/b5.log")" = "3 4 5 6 " ] || fail "edit re-ran '$(ran "$TEST_TMP/b5.log")', expected 3 4 5 6: $(cat "$TEST_TMP/b5.log")"
grep -E '^#3 MISS: COPY src/\*\.c /src/ — changed: src/main\.c$' "$TEST_TMP/b5.log" >/dev/null ||
	fail "no MISS line naming src/main.c: $(grep MISS "$TEST_TMP/b5.log")"
grep -E '^#4 MISS: .*previous step #3 changed' "$TEST_TMP/b5.log" >/dev/null ||
	fail "the RUN after it does not say why: $(grep MISS "$TEST_TMP/b5.log")"
d5=$(digest)
[ "$d5" != "$d1" ] || fail "an edit kept the digest"
pass "editing one copied file re-runs from that COPY on: $(grep '^#3 MISS' "$TEST_TMP/b5.log")"

echo 'int extra;' >"$CTX/src/new.c"
build "$TEST_TMP/b6.log"
grep -E '^#3 MISS: .*added: src/new\.c' "$TEST_TMP/b6.log" >/dev/null || fail "no 'added' MISS: $(grep MISS "$TEST_TMP/b6.log")"
mv "$CTX/src/new.c" "$CTX/src/renamed.c"
build "$TEST_TMP/b7.log"
[ "$(ran "$TEST_TMP/b7.log")" = "3 4 5 6 " ] || fail "rename re-ran '$(ran "$TEST_TMP/b7.log")'"
grep -E '^#3 MISS: .*added: src/renamed\.c; removed: src/new\.c' "$TEST_TMP/b7.log" >/dev/null ||
	fail "rename MISS line: $(grep MISS "$TEST_TMP/b7.log")"
pass "renaming a file a wildcard matches re-runs the COPY: $(grep '^#3 MISS' "$TEST_TMP/b7.log")"

build "$TEST_TMP/b8.log" --build-arg VERSION=2
[ "$(ran "$TEST_TMP/b8.log")" = "2 3 4 5 6 " ] || fail "build-arg re-ran '$(ran "$TEST_TMP/b8.log")'"
grep -E '^#2 MISS: RUN echo .* — build-arg VERSION changed$' "$TEST_TMP/b8.log" >/dev/null ||
	fail "build-arg MISS line: $(grep MISS "$TEST_TMP/b8.log")"
pass "a changed build argument is named: $(grep '^#2 MISS' "$TEST_TMP/b8.log")"

sed -i 's/wc -c/wc -l/' "$CTX/Dockerfile"
build "$TEST_TMP/b9.log" --build-arg VERSION=2
[ "$(ran "$TEST_TMP/b9.log")" = "6 " ] || fail "RUN edit re-ran '$(ran "$TEST_TMP/b9.log")'"
grep -E '^#6 MISS: RUN wc -l /notes.txt > /notes.count — RUN line changed$' "$TEST_TMP/b9.log" >/dev/null ||
	fail "RUN line MISS: $(grep MISS "$TEST_TMP/b9.log")"
pass "an edited RUN line is named"

build "$TEST_TMP/b10.log" --build-arg VERSION=2 --no-cache
[ "$(ran "$TEST_TMP/b10.log")" = "2 3 4 5 6 " ] || fail "--no-cache ran '$(ran "$TEST_TMP/b10.log")'"
pass "--no-cache runs every step"

# The same steps from another folder: all cache hits, and the first miss
# there still says why (a hit notes its position when it has no note yet).
cp -a "$CTX" "$TEST_TMP/ctx2"
snap build --progress plain --build-arg VERSION=2 "$TEST_TMP/ctx2" >"$TEST_TMP/o1.log" 2>&1 || fail "build from a copy"
[ -z "$(ran "$TEST_TMP/o1.log")" ] || fail "a copy of the context re-ran $(ran "$TEST_TMP/o1.log")"
echo 'int other;' >"$TEST_TMP/ctx2/src/util.c"
snap build --progress plain --build-arg VERSION=2 "$TEST_TMP/ctx2" >"$TEST_TMP/o2.log" 2>&1 || fail "edit in the copy"
grep -E '^#3 MISS: COPY src/\*\.c /src/ — changed: src/util\.c$' "$TEST_TMP/o2.log" >/dev/null ||
	fail "no MISS line in a folder first built from the cache: $(grep MISS "$TEST_TMP/o2.log")"
pass "a context first built from the cache still explains its next miss"

# --no-cache-filter STAGE re-runs that stage's steps only.
M="$TEST_TMP/multi"
mkdir -p "$M"
printf 'FROM busybox AS deps\nRUN echo deps > /deps\nFROM busybox AS app\nCOPY --from=deps /deps /deps\nRUN cat /deps > /app\n' >"$M/Dockerfile"
snap build --progress plain "$M" >"$TEST_TMP/m1.log" 2>&1 || fail "multi-stage build"
snap build --progress plain --no-cache-filter app "$M" >"$TEST_TMP/m2.log" 2>&1 || fail "--no-cache-filter build"
grep -q '^#2 CACHED' "$TEST_TMP/m2.log" || fail "--no-cache-filter app re-ran the deps stage: $(cat "$TEST_TMP/m2.log")"
[ "$(grep -c ' DONE' "$TEST_TMP/m2.log")" = 2 ] || fail "--no-cache-filter app: $(cat "$TEST_TMP/m2.log")"
pass "--no-cache-filter app re-runs only the app stage's two steps"

# The JSON progress carries the same MISS reason for tools.
echo 'int main3;' >"$CTX/src/main.c"
snap build --progress json -t cache:test --build-arg VERSION=2 "$CTX" >"$TEST_TMP/b11.json" 2>/dev/null || fail "json build"
python3 - "$TEST_TMP/b11.json" <<'PY' || fail "JSON progress has no miss event naming src/main.c"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
m = [e for e in ev if e["type"] == "miss" and e["vertex"] == 3]
assert m and "changed: src/main.c" in m[0]["reason"], m
assert all({"type", "vertex", "time"} <= set(e) for e in ev)
PY
pass "JSON progress has the miss event"

# df and prune count the records as type regular.
snap df --json >"$TEST_TMP/df.json"
n=$(json_get "$TEST_TMP/df.json" "[r['count'] for r in j['types'] if r['type']=='regular'][0]" 2>/dev/null || echo 0)
[ "$n" -gt 0 ] || fail "df shows no regular records: $(cat "$TEST_TMP/df.json")"
snap image rm cache:test >/dev/null
snap prune --filter type=regular >"$TEST_TMP/prune.log" 2>&1 || fail "prune: $(cat "$TEST_TMP/prune.log")"
left=$(snap snapshot ls --json | grep -c '"cache/' || true)
[ "$left" = 0 ] || fail "$left build snapshots left after prune --filter type=regular"
build "$TEST_TMP/b12.log" --build-arg VERSION=2
[ "$(ran "$TEST_TMP/b12.log")" = "2 3 4 5 6 " ] || fail "after prune, steps ran '$(ran "$TEST_TMP/b12.log")'"
pass "prune --filter type=regular drops the build cache (the next build runs every step)"
check_store_consistent

# Reproducible: two cold builds in empty stores, same SOURCE_DATE_EPOCH.
for i in 1 2; do
	STORE="$TEST_TMP/repro$i"
	import_busybox busybox:latest
	SOURCE_DATE_EPOCH=1700000000 snap build --progress quiet -t repro "$CTX" >/dev/null || fail "repro build $i"
	eval "r$i=\$(snap image ls --json | json_get /dev/stdin \"[i['digest'] for i in j if i['name']=='repro'][0]\")"
	sleep 1
done
[ "$r1" = "$r2" ] || fail "cold builds differ: $r1 vs $r2"
pass "two cold builds with SOURCE_DATE_EPOCH give $r1"
