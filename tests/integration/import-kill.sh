#!/bin/bash
# kill -9 of `image import` spread over its whole duration: what a killed
# import leaves (its apply.* work snapshot, tmp/ folders, ingest/ files) is
# its own work in progress, and the next gc removes it; `check` reports it
# until then and finds the store consistent after. An import killed at any
# moment either finished (status 0, the image whole) or left nothing gc
# keeps. The image has two layers, and the second is unpacked while the
# first still syncs, on top of it: some kills must land there, leaving two
# work snapshots, one on the other.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root

STORE="$TEST_TMP/store"
ROUNDS=${IMPORT_KILL_ROUNDS:-24}
# An image whose import takes a while: gzip layers of ~48 MiB in 192 files
# and ~24 MiB in 96.
for spec in d:192 e:96; do
	python3 - "$TEST_TMP/layer-${spec%%:*}.tar" "${spec%%:*}" "${spec##*:}" <<'PY'
import io, os, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    for i in range(int(sys.argv[3])):
        data = os.urandom(256 << 10)
        ti = tarfile.TarInfo("%s%02d/f%03d" % (sys.argv[2], i % 8, i))
        ti.size, ti.mode = len(data), 0o644
        t.addfile(ti, io.BytesIO(data))
PY
	gzip -1 "$TEST_TMP/layer-${spec%%:*}.tar"
done
python3 - "$TEST_TMP/oci" "$TEST_TMP/layer-d.tar.gz" "$TEST_TMP/layer-e.tar.gz" <<'PY'
import gzip, hashlib, json, os, sys
d, layers = sys.argv[1], sys.argv[2:]
sha = lambda b: "sha256:" + hashlib.sha256(b).hexdigest()
os.makedirs(d + "/blobs/sha256")
def put(b):
    open(d + "/blobs/sha256/" + sha(b)[7:], "wb").write(b)
    return {"digest": sha(b), "size": len(b)}
ls = [open(p, "rb").read() for p in layers]
c = json.dumps({"architecture": "amd64", "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [sha(gzip.decompress(l)) for l in ls]}}).encode()
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": dict(put(c), mediaType="application/vnd.oci.image.config.v1+json"),
     "layers": [dict(put(l), mediaType="application/vnd.oci.image.layer.v1.tar+gzip") for l in ls]}).encode()
idx = {"schemaVersion": 2, "manifests": [dict(put(m), mediaType="application/vnd.oci.image.manifest.v1+json",
       annotations={"org.opencontainers.image.ref.name": "big"})]}
json.dump(idx, open(d + "/index.json", "w"))
open(d + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY

# How long an import takes when nothing stops it; kills are spread over that.
snap image ls >/dev/null
t0=$(date +%s%N)
snap image import "$TEST_TMP/oci" --name ref:1 >/dev/null
dur_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$dur_ms" -ge 50 ] || fail "an import took only $dur_ms ms: too quick to kill part-way"
snap image rm ref:1 >/dev/null
snap gc >/dev/null

active_work() { snap snapshot ls --kind active --json | json '[s["key"] for s in d]' 2>/dev/null | grep -c "apply\." || true; }
# Work snapshots on work snapshots: the second layer unpacked on the first, still syncing.
stacked_work() {
	snap snapshot ls --kind active --json |
		json 'sum(1 for s in d if s["key"].startswith("apply.") and (s.get("parent") or "").startswith("apply."))'
}

killed=0 finished=0 midway=0 stacked=0 late=0
for i in $(seq 1 "$ROUNDS"); do
	# Uniform over [0, dur]: round i of ROUNDS, plus jitter within its slot.
	delay_ms=$(( (dur_ms * (i - 1) + RANDOM % dur_ms) / ROUNDS ))
	"$SNAPCTL" --root "$STORE" image import "$TEST_TMP/oci" --name "big:$i" >/dev/null 2>"$TEST_TMP/import.err" &
	pid=$!
	sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
	kill -9 "$pid" 2>/dev/null || true
	status=0
	wait "$pid" || status=$?
	case $status in
	137) killed=$((killed + 1)) ;;
	0) finished=$((finished + 1)); continue ;;
	*) fail "round $i: import exited $status (neither killed nor finished): $(cat "$TEST_TMP/import.err")" ;;
	esac
	# Evidence it was cut mid-work: its work snapshot, reported by check as a dead owner's.
	if [ "$(active_work)" -gt 0 ]; then
		midway=$((midway + 1))
		[ "$(stacked_work)" -gt 0 ] && stacked=$((stacked + 1))
		report=$(snap check --json || true)
		echo "$report" | json "[p['kind'] for p in d['problems']]" | grep -c >/dev/null dead-owner ||
			fail "round $i: check did not report the killed import's work snapshot: $report"
	fi
	# The name is the last transaction: a killed import that left it was
	# killed after it (in its lease's release, or its exit, which takes a
	# while under ASan), and its image must be whole.
	if snap image ls --json | json '[x["name"] for x in d]' | grep -c >/dev/null "big:$i"; then
		late=$((late + 1))
		snap image export "big:$i" -o type=oci,dest="$TEST_TMP/late",tar=false >/dev/null ||
			fail "round $i: a killed import left the name of an image that does not export"
		rm -rf "$TEST_TMP/late"
	fi
	snap gc >/dev/null
	[ "$(active_work)" = 0 ] || fail "round $i: gc left the killed import's work snapshot: $(snap snapshot ls --kind active)"
	out=$(snap check) || fail "round $i: check after gc: $out"
	echo "$out" | grep -c >/dev/null "is consistent" || fail "round $i: check after gc: $out"
done
[ "$killed" -ge $((ROUNDS / 3)) ] || fail "only $killed of $ROUNDS imports were killed"
[ "$midway" -ge 3 ] || fail "only $midway kills left a work snapshot behind: the kills did not land mid-import"
[ "$stacked" -ge 1 ] || fail "no kill left the second layer's work snapshot on the first's: the pipelined step was not hit"
# What finished is whole.
for name in $(snap image ls --json | json '" ".join(x["name"] for x in d)'); do
	snap image export "$name" -o type=oci,dest="$TEST_TMP/x-$name",tar=false >/dev/null || fail "finished import $name does not export"
	rm -rf "$TEST_TMP/x-$name"
done
check_store_consistent

# A blob commit cut between linking blobs/sha256/HEX and committing its
# record (a window of one transaction, rarely hit by the kills above): the
# dead writer's ingest/ name, which carries the digest, is a second link to
# the same file. The next open removes both; with a record, the blob stays.
true & dead=$!
wait "$dead"
hex=$(printf 'cut short' | sha256sum | cut -c1-64)
printf 'cut short' >"$STORE/ingest/w.$dead.1.1.sha256-$hex"
ln "$STORE/ingest/w.$dead.1.1.sha256-$hex" "$STORE/blobs/sha256/$hex"
snap image import "$TEST_TMP/oci" --name kept >/dev/null
kept=$(snap image ls --json | json '[x["digest"] for x in d if x["name"] == "kept"][0]')
khex=${kept#sha256:}
ln "$STORE/blobs/sha256/$khex" "$STORE/ingest/w.$dead.1.2.sha256-$khex"
snap df >/dev/null
[ ! -e "$STORE/blobs/sha256/$hex" ] || fail "the open kept the blob of a commit cut short"
[ -z "$(ls "$STORE/ingest")" ] || fail "the open kept a dead writer's ingest file: $(ls "$STORE/ingest")"
[ -f "$STORE/blobs/sha256/$khex" ] || fail "the open removed a blob its record names"
check_store_consistent
pass "$ROUNDS imports killed over [0, $dur_ms ms]: $killed killed ($midway mid-apply, $stacked with the second layer on the first, $late after naming the image), $finished finished; gc removed every leftover, check consistent"

# Two imports of the same image at once: the one that commits a layer
# second finds it stored, drops its own (and what it unpacked on it) and
# applies the layers above again on the other's. Both succeed, and the
# store holds one snapshot per layer.
for name in $(snap image ls --json | json '" ".join(x["name"] for x in d)'); do
	snap image rm "$name" >/dev/null
done
snap gc >/dev/null
[ "$(snap snapshot ls --json | json 'len(d)')" = 0 ] || fail "gc left snapshots before the concurrent imports"
raced=0
for i in $(seq 1 6); do
	SNAPCTL_DEBUG=1 "$SNAPCTL" --root "$STORE" image import "$TEST_TMP/oci" --name "twin-a:$i" >/dev/null 2>"$TEST_TMP/a.err" &
	a=$!
	SNAPCTL_DEBUG=1 "$SNAPCTL" --root "$STORE" image import "$TEST_TMP/oci" --name "twin-b:$i" >/dev/null 2>"$TEST_TMP/b.err" &
	b=$!
	wait "$a" || fail "round $i: the first of two imports failed: $(grep -v debug "$TEST_TMP/a.err")"
	wait "$b" || fail "round $i: the second of two imports failed: $(grep -v debug "$TEST_TMP/b.err")"
	grep -q "committed by another import meanwhile\|stored by another import already" "$TEST_TMP/a.err" "$TEST_TMP/b.err" &&
		raced=$((raced + 1))
	snap image rm "twin-a:$i" "twin-b:$i" >/dev/null
	snap gc >/dev/null
done
[ "$raced" -ge 1 ] || fail "no round had one import find the other's layers: the race was not exercised"
snap image import "$TEST_TMP/oci" --name twin >/dev/null
[ "$(snap snapshot ls --json | json 'len(d)')" = 2 ] || fail "two layers left $(snap snapshot ls --json | json 'len(d)') snapshots"
check_store_consistent
pass "6 rounds of two concurrent imports of one image ($raced where one found the other's layers): both succeed, one snapshot per layer"
