#!/bin/bash
# kill -9 of `image import` spread over its whole duration: what a killed
# import leaves (its apply.* work snapshot, tmp/ folders, ingest/ files) is
# its own work in progress, and the next gc removes it; `check` reports it
# until then and finds the store consistent after. An import killed at any
# moment either finished (status 0, the image whole) or left nothing gc
# keeps.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root

STORE="$TEST_TMP/store"
ROUNDS=${IMPORT_KILL_ROUNDS:-24}
# An image whose import takes a while: one gzip layer of ~48 MiB in 192 files.
python3 - "$TEST_TMP/layer.tar" <<'PY'
import io, os, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    for i in range(192):
        data = os.urandom(256 << 10)
        ti = tarfile.TarInfo("d%02d/f%03d" % (i % 8, i))
        ti.size, ti.mode = len(data), 0o644
        t.addfile(ti, io.BytesIO(data))
PY
gzip -1 "$TEST_TMP/layer.tar"
python3 - "$TEST_TMP/oci" "$TEST_TMP/layer.tar.gz" <<'PY'
import gzip, hashlib, json, os, sys
d, layer = sys.argv[1], sys.argv[2]
sha = lambda b: "sha256:" + hashlib.sha256(b).hexdigest()
os.makedirs(d + "/blobs/sha256")
def put(b):
    open(d + "/blobs/sha256/" + sha(b)[7:], "wb").write(b)
    return {"digest": sha(b), "size": len(b)}
l = open(layer, "rb").read()
c = json.dumps({"architecture": "amd64", "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [sha(gzip.decompress(l))]}}).encode()
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": dict(put(c), mediaType="application/vnd.oci.image.config.v1+json"),
     "layers": [dict(put(l), mediaType="application/vnd.oci.image.layer.v1.tar+gzip")]}).encode()
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

killed=0 finished=0 midway=0
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
		report=$(snap check --json || true)
		echo "$report" | json "[p['kind'] for p in d['problems']]" | grep -c >/dev/null dead-owner ||
			fail "round $i: check did not report the killed import's work snapshot: $report"
	fi
	snap image ls --json | json '[x["name"] for x in d]' | grep -c >/dev/null "big:$i" &&
		fail "round $i: a killed import left an image name"
	snap gc >/dev/null
	[ "$(active_work)" = 0 ] || fail "round $i: gc left the killed import's work snapshot: $(snap snapshot ls --kind active)"
	out=$(snap check) || fail "round $i: check after gc: $out"
	echo "$out" | grep -c >/dev/null "is consistent" || fail "round $i: check after gc: $out"
done
[ "$killed" -ge $((ROUNDS / 3)) ] || fail "only $killed of $ROUNDS imports were killed"
[ "$midway" -ge 3 ] || fail "only $midway kills left a work snapshot behind: the kills did not land mid-import"
# What finished is whole.
for name in $(snap image ls --json | json '" ".join(x["name"] for x in d)'); do
	snap image export "$name" -o type=oci,dest="$TEST_TMP/x-$name",tar=false >/dev/null || fail "finished import $name does not export"
	rm -rf "$TEST_TMP/x-$name"
done
check_store_consistent
pass "$ROUNDS imports killed over [0, $dur_ms ms]: $killed killed ($midway mid-apply), $finished finished; gc removed every leftover, check consistent"
