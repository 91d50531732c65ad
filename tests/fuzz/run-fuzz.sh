#!/bin/sh
# Fuzzes layer apply (TARGET layer) or image import's JSON side (TARGET
# image) with libFuzzer, ASan and UBSan for DURATION seconds (default 60),
# seeded with small valid inputs made here.
#
#   tests/fuzz/run-fuzz.sh TARGET [DURATION]
#
# Environment: FUZZ_BUILD_DIR (default build-fuzz in the source tree), CC
# (default clang). Exits non-zero when the fuzzer finds a crash, a leak or a
# hang; the reproducer is left in the build directory (crash-*, leak-*,
# timeout-*): add it to the seeds below as a regression case.
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD_DIR:-$src/build-fuzz}
target=${1:?usage: run-fuzz.sh layer|image [DURATION]}
duration=${2:-60}

if [ ! -f "$build/build.ninja" ]; then
	CC=${CC:-clang} meson setup "$build" "$src" -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false \
		-Dc_args="['-fsanitize=fuzzer-no-link', '-Wno-error=format-nonliteral']"
fi
ninja -C "$build" "tests/fuzz/fuzz-$target"

corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
python3 - "$target" "$corpus" <<'PY'
import gzip, io, json, os, sys, tarfile
target, out = sys.argv[1], sys.argv[2]
def tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for kind, name, arg in entries:
            ti = tarfile.TarInfo(name)
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, arg
            elif kind == "link":
                ti.type, ti.linkname = tarfile.LNKTYPE, arg
            elif kind == "sparse":
                m = b"1\n0\n4\n" + b"\0" * 506
                ti.name = "GNUSparseFile.0/" + name
                ti.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                                  "GNU.sparse.name": name, "GNU.sparse.realsize": "64"}
                arg = m + b"abcd"
            if isinstance(arg, str):
                arg = arg.encode()
            if kind in ("file", "sparse"):
                ti.size = len(arg)
                t.addfile(ti, io.BytesIO(arg))
            else:
                t.addfile(ti)
    return buf.getvalue()
seeds = {}
if target == "layer":
    base = tar([("dir", "d", ""), ("file", "d/f", "hello"), ("sym", "s", "d"),
                ("link", "h", "d/f"), ("file", "s/below", "x"), ("file", ".wh.gone", ""),
                ("dir", "o", ""), ("file", "o/.wh..wh..opq", ""), ("sparse", "sp", "")])
    seeds["plain"] = base
    seeds["gzip"] = gzip.compress(base)
    try:
        import subprocess
        seeds["zstd"] = subprocess.run(["zstd", "-q", "-c"], input=base, capture_output=True).stdout
    except OSError:
        pass
else:
    oci_m = "application/vnd.oci.image.manifest.v1+json"
    seeds["index"] = b"\0" + json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": oci_m, "digest": "@MANIFEST@", "size": 0,
         "annotations": {"org.opencontainers.image.ref.name": "x"}}]}).encode().replace(b'"size": 0', b'"size": @MSIZE@')
    seeds["index-nested"] = b"\0" + json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": oci_m, "digest": "@MANIFEST@", "size": 0,
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode().replace(b'"size": 0', b'"size": @MSIZE@')
    seeds["manifest"] = b"\1" + json.dumps({"schemaVersion": 2, "mediaType": oci_m,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "@CONFIG@", "size": 0},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": "@LAYER@", "size": 2048}]}).encode().replace(b'"size": 0', b'"size": @CSIZE@')
    seeds["config"] = b"\2" + json.dumps({"architecture": "amd64", "os": "linux",
        "config": {"Env": ["A=1"], "Entrypoint": ["/f"], "WorkingDir": "/w", "User": "1:2",
                   "OnBuild": ["RUN x"], "Labels": {"a": "b"}},
        "history": [{"created_by": "x"}],
        "rootfs": {"type": "layers", "diff_ids": ["@LAYER@"]}}).encode()
    seeds["docker"] = b"\3" + json.dumps([{"Config": "config.json",
        "RepoTags": ["x:1"], "Layers": ["l/layer.tar"]}]).encode()
for name, data in seeds.items():
    open(os.path.join(out, "seed-" + name), "wb").write(data)
PY
echo "fuzzing $target for ${duration}s with $(ls "$corpus" | wc -l) seeds"

cd "$build"
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
	exec "$build/tests/fuzz/fuzz-$target" -max_total_time="$duration" \
	-max_len=65536 -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 "$corpus"
