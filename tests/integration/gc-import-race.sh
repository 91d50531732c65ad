#!/bin/bash
# Imports, exports and removals of one image racing a gc loop (issue: gc
# deleted a blob file that an import had just written, and an import that
# reused a collectable blob could finish with the blob gone). After every
# import the image must export, every blob of the export must match its
# digest, and `snapctl check` must find the store consistent at the end.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root

STORE="$TEST_TMP/store"
ROUNDS=${GC_RACE_ROUNDS:-150}
LAYOUT="$TEST_TMP/layout"
# An image of many small layers: an import checks and takes each one.
mkdir -p "$TEST_TMP/ctx"
echo "FROM scratch" >"$TEST_TMP/ctx/Dockerfile"
for i in $(seq 1 30); do
	echo "layer $i" >"$TEST_TMP/ctx/f$i"
	echo "COPY f$i /f$i" >>"$TEST_TMP/ctx/Dockerfile"
done
"$SNAPCTL" --root "$TEST_TMP/made" build -q -t race:1 -o type=oci,dest="$LAYOUT",tar=false "$TEST_TMP/ctx" >/dev/null

# Every blob of an exported OCI layout matches its name and size chain.
verify_export() {
	local dir=$1 f
	for f in "$dir"/blobs/sha256/*; do
		[ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$(basename "$f")" ] || return 1
	done
}

worker() {
	local i out
	for i in $(seq 1 "$ROUNDS"); do
		if ! snap image import "$LAYOUT" >/dev/null 2>"$TEST_TMP/import.err"; then
			echo "round $i: import failed: $(cat "$TEST_TMP/import.err")"
			return 1
		fi
		out="$TEST_TMP/export.$i"
		if ! snap image export race:1 -o type=oci,dest="$out",tar=false >/dev/null 2>"$TEST_TMP/export.err"; then
			echo "round $i: export after import failed: $(cat "$TEST_TMP/export.err")"
			return 1
		fi
		verify_export "$out" || { echo "round $i: an exported blob does not match its digest"; return 1; }
		rm -rf "$out"
		snap image rm race:1 >/dev/null || { echo "round $i: rm failed"; return 1; }
	done
}
worker >"$TEST_TMP/worker.log" 2>&1 &
wpid=$!
collector() {
	local n=0
	while kill -0 "$wpid" 2>/dev/null; do
		# Every other round, junk to collect too: the collection's window grows with it.
		if [ $((n % 2)) = 1 ]; then
			"$GC_FIXTURE" "$STORE" "junk$n" 100 100 >/dev/null || { echo "fixture failed"; return 1; }
		fi
		snap gc >/dev/null 2>>"$TEST_TMP/gc.err" || { echo "gc failed: $(tail -n1 "$TEST_TMP/gc.err")"; return 1; }
		n=$((n + 1))
	done
	echo "$n"
}
collector >"$TEST_TMP/gc.log" 2>&1 &
gpid=$!
ws=0; gs=0
wait $wpid || ws=$?
wait $gpid || gs=$?
[ $ws = 0 ] || fail "$(tail -n 3 "$TEST_TMP/worker.log")"
[ $gs = 0 ] || fail "$(tail -n 3 "$TEST_TMP/gc.log")"
gcs=$(tail -n1 "$TEST_TMP/gc.log")
[ "$gcs" -ge 20 ] || fail "only $gcs collections ran during the imports: the race was not exercised"
snap check >"$TEST_TMP/check.out" 2>&1 || fail "check after the race: $(cat "$TEST_TMP/check.out")"
check_store_consistent
pass "$ROUNDS rounds of import/export/rm against $gcs collections: every import exported intact, store consistent"
