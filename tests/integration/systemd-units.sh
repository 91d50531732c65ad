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
