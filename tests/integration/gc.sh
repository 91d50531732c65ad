#!/bin/bash
# snapctl df, prune, gc, pin and check on stores built by the test: totals
# against du, dry runs that change nothing, leases and pins that protect,
# cron-friendly output, and bad input.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root

STORE="$TEST_TMP/store"
"$GC_FIXTURE" "$STORE" a 300 300 8

# df totals against du -sx, within the metadata file's size
df_total=$(snap df --json | json 'd["total"]')
meta=$(snap df --json | json 'd["metadata"]')
# (on btrfs every snapshot is a subvolume, which du -x would not enter)
dux=-x
[ "$(stat -f -c %T "$STORE")" = btrfs ] && dux=
du_total=$(du -s $dux -B1 "$STORE" | cut -f1)
diff=$(( df_total > du_total ? df_total - du_total : du_total - df_total ))
[ "$diff" -le "$meta" ] || fail "df total $df_total vs du $du_total: off by $diff, more than the metadata ($meta)"
pass "df total $df_total within $diff bytes of du $du_total"
[ "$(snap df --json | json '[t for t in d["types"] if t["type"]=="regular"][0]["count"]')" = 300 ] || fail "df count"
snap df -v | grep -c >/dev/null 'unreferenced (reclaimable)' || fail "df -v does not say what is reclaimable"

# --dry-run changes nothing, byte for byte (the reader table in lock.mdb aside)
snapshot_store() { (cd "$STORE" && find . -path ./meta/lock.mdb -prune -o -print0 | sort -z | xargs -0 stat -c '%n %s %Y %a' && find . -type f ! -name lock.mdb -print0 | sort -z | xargs -0 sha256sum); }
before=$(snapshot_store)
out=$(snap prune --dry-run)
echo "$out" | grep -c >/dev/null '^Would free: ' || fail "dry run output: $out"
snap prune --dry-run --all --json >/dev/null
snap gc --dry-run >/dev/null
after=$(snapshot_store)
[ "$before" = "$after" ] || fail "a dry run changed the store: $(diff <(echo "$before") <(echo "$after") | head -5)"
pass "dry runs leave the store byte-for-byte equal"

# Leases: a live lease protects; an expired one and one whose holder died do not.
snap lease create --id live --pid $$ >/dev/null
snap lease add live snapshot a-s10
sleep 300 &
holder=$!
snap lease create --id doomed --pid $holder >/dev/null
snap lease add doomed snapshot a-s20
kill $holder; wait $holder 2>/dev/null || true
snap lease create --id short --expires 1s >/dev/null
snap lease add short snapshot a-s30
sleep 1.2
snap pin a-s40
# pin takes snapshot names, image names and digests; unknown names are an error
expect_error 1 "no snapshot, image or blob is named 'nothing'" snap pin nothing
snap prune --verbose >"$TEST_TMP/prune.out"
grep -Eq 'a-s10 .*leased by live' "$TEST_TMP/prune.out" || fail "--verbose does not say a-s10 is leased: $(grep a-s10 "$TEST_TMP/prune.out")"
grep -Eq 'a-s40 .*pinned' "$TEST_TMP/prune.out" || fail "--verbose does not say a-s40 is pinned"
snap snapshot info a-s10 >/dev/null || fail "a leased snapshot was pruned"
snap snapshot info a-s40 >/dev/null || fail "a pinned snapshot was pruned"
snapshot_absent a-s20 "a lease whose holder died still protected a-s20"
snapshot_absent a-s30 "an expired lease still protected a-s30"
# what a kept snapshot stands on stays too
parent=$(snap snapshot info a-s10 | json 'd["parent"]')
if [ "$parent" != None ]; then snap snapshot info "$parent" >/dev/null || fail "parent of a leased snapshot went"; fi
snap unpin a-s40
expect_error 1 "is not pinned" snap unpin a-s40
snap prune --quiet
snapshot_absent a-s40 "unpinned a-s40 survived a prune"
pass "leases and pins"

# Nothing to do: exit 0; --quiet prints nothing at all
out=$(snap prune --quiet 2>&1) || fail "prune with nothing to do exited non-zero"
[ -z "$out" ] || fail "--quiet printed: $out"
# A second prune waits; with --no-wait it leaves at once with a note and exit 0
"$GC_FIXTURE" "$STORE" b 20 0
flock "$STORE/prune.lock" sleep 3 &
locker=$!
sleep 0.3
t0=$(date +%s.%N)
out=$(snap prune --no-wait 2>&1) || fail "--no-wait exited non-zero"
echo "$out" | grep -c >/dev/null 'another prune is running' || fail "--no-wait note: $out"
snap snapshot info b-s0 >/dev/null || fail "--no-wait pruned anyway"
snap prune --quiet   # waits for the lock
t1=$(date +%s.%N)
wait $locker
python3 -c "import sys; sys.exit(0 if $t1 - $t0 >= 2 else 1)" || fail "the second prune did not wait for the first"
snapshot_absent b-s0 "the waiting prune did nothing"
pass "cron behaviour"

# Policies from the command line: --until, --filter, --max-used, --reserved
"$GC_FIXTURE" "$STORE" c 10 10 64
snap prune --until 1h --quiet
[ "$(snap snapshot ls --json | json 'len([x for x in d if x["key"].startswith("c-")])')" = 10 ] || fail "--until 1h removed fresh records"
snap prune --filter type=content --quiet
[ "$(snap df --json | json '[t for t in d["types"] if t["type"]=="content"][0]["count"]')" = 0 ] || fail "--filter type=content left blobs"
[ "$(snap snapshot ls --json | json 'len([x for x in d if x["key"].startswith("c-")])')" = 10 ] || fail "--filter type=content took snapshots"
snap prune --reserved 100GB --quiet
[ "$(snap snapshot ls --json | json 'len([x for x in d if x["key"].startswith("c-")])')" = 10 ] || fail "--reserved 100GB removed records"
snap prune --max-used 400KiB --quiet
used=$(snap df --json | json '[t for t in d["types"] if t["type"]=="regular"][0]["size"]')
[ "$used" -le 409600 ] || fail "--max-used 400KiB left $used bytes"
[ "$used" -gt 0 ] || fail "--max-used removed more than it needed"
# ...and the other direction: each takes what it should.
count_c() { snap snapshot ls --json | json 'len([x for x in d if x["key"].startswith("'"$1"'")])'; }
"$GC_FIXTURE" "$STORE" r 10 0 64
snap prune --reserved 300KiB --filter id=r- --quiet
n=$(count_c r-)
[ "$n" -lt 10 ] || fail "--reserved 300KiB removed nothing"
[ "$n" -gt 0 ] || fail "--reserved 300KiB removed everything"
sleep 1.1
snap prune --until 1s --quiet
[ "$(count_c c-)" = 0 ] && [ "$(count_c r-)" = 0 ] || fail "--until 1s left $(count_c c-) c- and $(count_c r-) r- records"
"$GC_FIXTURE" "$STORE" auto 5 5
echo '{"gc": {"policies": [{"keep-duration": "1s"}]}}' >"$STORE/config.json"
snap gc --auto >/dev/null
[ "$(count_c auto-)" = 5 ] || fail "gc --auto took records used in the last second"
sleep 1.1
snap gc --auto >/dev/null
[ "$(count_c auto-)" = 0 ] || fail "gc --auto left $(count_c auto-) records older than its keep-duration"
rm "$STORE/config.json"
pass "policy options, both ways"

# Bad input: one line naming the bad value, exit 2 for flags, 1 for config
expect_error 2 "10XB" snap prune --max-used 10XB
expect_error 2 "lots" snap prune --reserved lots
expect_error 2 "150%" snap prune --min-free 150%
expect_error 2 "'soon' is not a duration" snap prune --until soon
expect_error 2 "unknown type 'bogus'" snap prune --filter type=bogus
expect_error 2 "not KEY=VALUE" snap prune --filter nonsense
expect_error 2 "unknown key" snap prune --filter colour=red
expect_error 2 "takes no arguments" snap prune extra
echo '{"gc": {"policies": [{"keep-duration": "forever"}]}}' >"$STORE/config.json"
expect_error 1 "config.*keep-duration 'forever' is not a duration" snap gc --auto
echo '{"gc": {"policies": [{"max-used": "5 bananas"}]}}' >"$STORE/config.json"
expect_error 1 "max-used: size '5 bananas'" snap gc --show-policy
echo '{"gc": {"policies": [{"max_used": "5GB"}]}}' >"$STORE/config.json"
expect_error 1 "unknown field 'max_used'" snap gc --auto
echo '{"gc": {"policies": [{"filters": ["type=nope"]}]}}' >"$STORE/config.json"
expect_error 1 "unknown type 'nope'" snap gc --auto
echo '{"gc": {"auto": "yes"}}' >"$STORE/config.json"
expect_error 1 "'gc.auto' must be true or false" snap gc --auto
echo '{"gc": ' >"$STORE/config.json"
expect_error 1 "not valid JSON" snap gc --auto
rm "$STORE/config.json"; mkdir "$STORE/config.json"
expect_error 1 "cannot read config" snap gc --auto
rmdir "$STORE/config.json"

# A config's policies show with their source; flags replace them
echo '{"gc": {"auto": false, "policies": [{"keep-duration": "7d", "max-used": "10GB"}]}}' >"$STORE/config.json"
out=$(snap gc --show-policy)
echo "$out" | grep -c >/dev/null '^automatic gc: off$' || fail "show-policy auto: $out"
echo "$out" | grep -Ec >/dev/null '^policy 1 \(config\): keep-duration=168h max-used=9.31 GiB' || fail "show-policy config: $out"
snap gc --show-policy --max-used 1GB | grep -c >/dev/null '^policy 1 (flag):' || fail "show-policy flag"
rm "$STORE/config.json"
snap gc --show-policy | grep -Ec >/dev/null '^policy 3 \(default\): max-used=.* reserved=.* min-free=' || fail "default policies"

# gc: only the unreachable; check agrees the store is consistent afterwards
"$GC_FIXTURE" "$STORE" d 30 30
snap snapshot prepare d-work d-s0
snap gc --quiet
snap snapshot info d-s0 >/dev/null || fail "gc took the parent of an active snapshot"
snapshot_absent d-s1 "gc left an unreachable snapshot"
snap check --json | json 'd["consistent"]' | grep -c >/dev/null True || fail "check after gc: $(snap check)"
check_store_consistent
pass "gc"

# check finds damage, --repair fixes it and says so, and the store is consistent after
R="$TEST_TMP/repair"
"$GC_FIXTURE" "$R" r 10 10
STORE="$R"
victim_id=$(snap snapshot info r-s2 | json 'd["id"]')
rm_tree "$R/snapshots/$victim_id"
blob=$(ls "$R/blobs/sha256" | head -n 1)
echo damage >>"$R/blobs/sha256/$blob"
mkdir "$R/snapshots/999999"
sleep 300 &
gone=$!
snap lease create --id stale --pid $gone >/dev/null
kill $gone; wait $gone 2>/dev/null || true
expect_error 1 "inconsistent; run 'snapctl check --repair'" snap check
report=$(snap check --json || true)
kinds="missing-data damaged-blob orphan-data dead-lease"
# Where folders' link counts do not count subfolders (btrfs), every open scans
# snapshots/ and moves an orphan to trash before check could report it.
if [ "$(stat -f -c %T "$R")" = btrfs ]; then
	kinds="missing-data damaged-blob dead-lease"
	[ ! -e "$R/snapshots/999999" ] || fail "the open before check left the orphan folder"
fi
for kind in $kinds; do
	echo "$report" | json "[p['kind'] for p in d['problems']]" | grep -c >/dev/null "$kind" || fail "check did not report $kind: $report"
done
echo "$report" | json 'd["problems"]' | grep -c >/dev/null "snapshot:r-s2" || fail "check did not name r-s2"
snap check --repair --json | json 'all(p["repaired"] for p in d["problems"])' | grep -c >/dev/null True || fail "check --repair left problems"
out=$(snap check) || fail "check after repair: $out"
echo "$out" | grep -c >/dev/null "is consistent" || fail "check after repair: $out"
[ -e "$R/snapshots/999999" ] && fail "orphan folder survived --repair"
snapshot_absent r-s2 "record without data survived --repair"
check_store_consistent
pass "check and check --repair"

# An image whose blob has no record (what an import racing gc could leave):
# check names the image and the blob, exits 1, and --repair does not pretend
# to fix it; importing the image again does.
I="$TEST_TMP/images"
STORE="$I"
import_busybox bb:1
config=$(snap image inspect bb:1 | json 'd["config"]')
snap content rm "$config" >/dev/null
expect_error 1 "has images whose data is gone; import or build them again" snap check
report=$(snap check --json || true)
echo "$report" | json "[(p['kind'], p['detail']) for p in d['problems']]" | grep -c >/dev/null "missing-target.*blob:$config" ||
	fail "check did not report the missing config $config: $report"
echo "$report" | json 'd["consistent"]' | grep -c >/dev/null False || fail "check called it consistent: $report"
report=$(snap check --repair --json || true)
echo "$report" | json '[p["repaired"] for p in d["problems"] if p["kind"] == "missing-target"]' | grep -c >/dev/null '\[False\]' ||
	fail "check --repair claimed to repair a missing target: $report"
echo "$report" | json '[p["detail"] for p in d["problems"]]' | grep -c >/dev/null "image bb:1" ||
	fail "check did not name the image: $report"
import_busybox bb:1
out=$(snap check) || fail "check after the import again: $out"
pass "check names an image whose config blob is gone"

# df -v names every image that keeps a shared layer, not only the first.
snap image tag bb:1 bb:2
import_busybox other:1
layer=$(snap image inspect bb:1 | json 'd["manifest_json"]["layers"][0]["digest"]')
line=$(snap df -v | grep "^${layer:0:19} ")
echo "$line" | grep -Ec >/dev/null 'image (bb:1|bb:2|other:1) and 2 more images$' ||
	fail "df -v does not count the three images sharing the layer: $line"
snap image rm bb:2 other:1 >/dev/null
line=$(snap df -v | grep "^${layer:0:19} ")
echo "$line" | grep -Ec >/dev/null 'image bb:1$' || fail "df -v after two names went: $line"
pass "df -v: a layer kept by three image names says so"
