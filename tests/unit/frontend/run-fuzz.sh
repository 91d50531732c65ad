#!/bin/sh
# Fuzzes the Dockerfile frontend with libFuzzer and ASan for DURATION seconds
# (default 60), seeded with the conformance corpus.
#
#   tests/unit/frontend/run-fuzz.sh [DURATION]
#
# Environment: FUZZ_BUILD_DIR (default build-fuzz in the source tree),
# SNAPCTL_CONFORMANCE_DIR (default ../shared/conformance beside the tree),
# CC (default clang). Exits non-zero when the fuzzer finds a crash, a leak or a
# hang; the reproducer is left in the build directory (crash-*, leak-*, timeout-*).
set -eu

src=$(cd "$(dirname "$0")/../../.." && pwd)
build=${FUZZ_BUILD_DIR:-$src/build-fuzz}
duration=${1:-60}
conf=${SNAPCTL_CONFORMANCE_DIR:-$src/../shared/conformance}
[ -d "$conf/buildkit-parser" ] && conf=$conf/buildkit-parser

if [ ! -f "$build/build.ninja" ]; then
	CC=${CC:-clang} meson setup "$build" "$src" -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false \
		-Dc_args="['-fsanitize=fuzzer-no-link', '-Wno-error=format-nonliteral']"
fi
ninja -C "$build" tests/unit/frontend/fuzz-dockerfile

corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
i=0
for f in "$conf"/testfiles/*/Dockerfile "$conf"/testfiles-negative/*/Dockerfile; do
	[ -f "$f" ] || continue
	i=$((i + 1))
	cp "$f" "$corpus/seed-$i"
done
printf 'FROM a\nRUN <<EOF\nx\nEOF\nCOPY --from=0 <<-"A" /d\n\tA\n' >"$corpus/seed-heredoc"
printf 'ARG V=${X:-a}\nFROM b:${V%%%%.*}\nENV P=${V//a/b} Q=${V#?}\n' >"$corpus/seed-expand"
printf '**/*.o\n!keep/**\nbuild\n[a-z]?\n' >"$corpus/seed-ignore"
echo "fuzzing for ${duration}s with $(ls "$corpus" | wc -l) seeds"

cd "$build"
exec "$build/tests/unit/frontend/fuzz-dockerfile" -max_total_time="$duration" \
	-max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$corpus"
