#!/bin/bash
# contrib/systemd: both units pass `systemd-analyze verify`, and the
# service's own command line, run against a store with garbage in it,
# prunes it and prints exactly one line (what the journal gets per run).
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root
command -v systemd-analyze >/dev/null || fail "needs systemd-analyze (apt-get install systemd)"

src="$SNAPCTL_TESTS_LIB/../../contrib/systemd"
STORE="$TEST_TMP/store"
mkdir -p "$TEST_TMP/units"
# The units as installed, snapctl where this build has it.
sed "s|/usr/local/bin/snapctl|$SNAPCTL|" "$src/snapctl-prune.service" >"$TEST_TMP/units/snapctl-prune.service"
cp "$src/snapctl-prune.timer" "$TEST_TMP/units/"
systemd-analyze verify "$TEST_TMP/units/snapctl-prune.service" "$TEST_TMP/units/snapctl-prune.timer" \
	>"$TEST_TMP/verify" 2>&1 || fail "systemd-analyze verify: $(cat "$TEST_TMP/verify")"
grep -Eq '^Persistent=true$' "$src/snapctl-prune.timer" || fail "the timer is not persistent"
grep -Eq '^IOSchedulingClass=idle$' "$src/snapctl-prune.service" || fail "the service is not idle-class I/O"

# Its ExecStart, on the test's store: the fixture's records are unused
# (their last use is now), so the age limit keeps them; with --until 0s and
# a 1 KB cap added (later flags win) they go.
cmd=$(sed -n 's/^ExecStart=//p' "$TEST_TMP/units/snapctl-prune.service")
"$GC_FIXTURE" "$STORE" old 4 4
# shellcheck disable=SC2086
out=$(set -- $cmd; "$1" --root "$STORE" "${@:2}")
[ "$(echo "$out" | grep -c '')" = 1 ] || fail "a run printed $(echo "$out" | grep -c '') lines: $out"
echo "$out" | grep -Eq '^prune freed 0 B in 0 records \(0 snapshots, 0 blobs, 0 images, 0 cache\) in [0-9.]+ s$' ||
	fail "unexpected line: $out"
# shellcheck disable=SC2086
out=$(set -- $cmd; "$1" --root "$STORE" "${@:2}" --until 0s --max-used 1KB)
echo "$out" | grep -Eq '^prune freed [0-9.]+ [KM]iB in 8 records \(4 snapshots, 4 blobs, 0 images, 0 cache\) in [0-9.]+ s$' ||
	fail "unexpected line after the records aged: $out"
[ -z "$(ls -A "$STORE/snapshots")" ] || fail "snapshots left: $(ls "$STORE/snapshots")"
pass "units verify; the service's command prunes and logs one line: $out"

# The metrics the unit writes after a run: the text format node_exporter
# reads, the same figures df --json gives, and the last prune's.
prom=$(snap df --format prometheus)
json=$(snap df --json)
python3 - "$prom" "$json" "$STORE" <<'PY' || fail "df --format prometheus: $prom"
import json, re, sys
prom, d, root = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
line = re.compile(r'^([a-z_]+)\{root="((?:[^"\\]|\\.)*)"(?:,type="([^"]*)")?\} (\S+)$')
seen, declared = {}, set()
for l in prom.splitlines():
    if l.startswith("# HELP ") or l.startswith("# TYPE "):
        declared.add(l.split()[2])
        continue
    m = line.match(l)
    assert m, "not a sample line: %r" % l
    name, r, typ, v = m.groups()
    assert name in declared, "%s has no HELP/TYPE" % name
    assert r == root, "root label %r" % r
    seen[(name, typ)] = float(v)
for t in d["types"]:
    assert seen[("snapctl_store_bytes", t["type"])] == t["size"], t
    assert seen[("snapctl_store_reclaimable_bytes", t["type"])] == t["reclaimable"], t
    assert seen[("snapctl_store_records", t["type"])] == t["count"], t
assert seen[("snapctl_store_total_bytes", None)] == d["total"]
assert seen[("snapctl_last_prune_records", None)] == 8, seen
assert seen[("snapctl_last_prune_freed_bytes", None)] > 0
assert seen[("snapctl_filesystem_avail_bytes", None)] > 0
PY
# And the unit's ExecStartPost writes it where the collector reads.
post=$(sed -n 's/^ExecStartPost=-//p' "$TEST_TMP/units/snapctl-prune.service" |
	sed "s|/var/lib/prometheus/node-exporter|$TEST_TMP/textfile|; s|$SNAPCTL df|$SNAPCTL --root $STORE df|; s/\\$\\$/\\$/g")
[ -n "$post" ] || fail "the unit writes no metrics"
eval "$post" || fail "the unit's metrics command failed without the collector's folder: $post"
mkdir -p "$TEST_TMP/textfile"
eval "$post" || fail "the unit's metrics command failed: $post"
grep -q '^snapctl_last_prune_records{root=' "$TEST_TMP/textfile/snapctl.prom" ||
	fail "no metrics in the textfile: $(ls "$TEST_TMP/textfile")"
expect_error 2 "unknown format 'yaml'" snap df --format yaml
pass "df --format prometheus matches df --json and carries the last prune"
