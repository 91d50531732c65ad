#!/bin/bash
# Builds snapctl and runs the whole test suite (unit, integration, slow),
# then the unit suite again under AddressSanitizer and UBSan, then the
# format check. Run as root: integration tests mount file systems.
# Ends with one line "N passed, N failed, N skipped" and a non-zero exit
# status if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD_DIR:-build}
ASAN_BUILD=${ASAN_BUILD_DIR:-build-asan}
conformance_opts=()
# In CI the parser conformance corpus must be there: missing is a failure.
if [ -n "${CI:-}" ]; then
	conformance_opts=(-Drequire_conformance=true -Dconformance_dir="$(cd .. && pwd)/shared/conformance")
fi

configure() {
	local dir=$1
	shift
	if [ -d "$dir/meson-info" ]; then
		meson configure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
}

status=0
configure "$BUILD" -Dwerror=true "${conformance_opts[@]}" || exit 1
ninja -C "$BUILD" || exit 1
# What each run should run: a test meson lists but did not run counts as failed.
meson test -C "$BUILD" --list 2>/dev/null | grep '^snapctl:' >"$BUILD/meson-logs/expected.list"
meson test -C "$BUILD" --print-errorlogs --num-processes 2 || status=1

configure "$ASAN_BUILD" -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
	"${conformance_opts[@]}" || exit 1
ninja -C "$ASAN_BUILD" || exit 1
# Every test again on the sanitizer build (but the one measuring memory, and
# the btrfs reruns of the kill and race loops, which it runs on overlay), in
# one run so that one log holds them; the two loop tests take fewer rounds.
asan_skip=(--no-suite memory --no-suite btrfs-rerun-loops)
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	GC_RACE_ROUNDS=50 IMPORT_KILL_ROUNDS=12 \
	meson test -C "$ASAN_BUILD" "${asan_skip[@]}" --print-errorlogs --num-processes 2 \
	--timeout-multiplier 3 || status=1
meson test -C "$ASAN_BUILD" "${asan_skip[@]}" --list 2>/dev/null | grep '^snapctl:' \
	>"$ASAN_BUILD/meson-logs/expected.list"

# Checks outside meson count in the summary as one test each.
extra=()
if ./scripts/check-format.sh; then extra+=(--extra format=pass); else extra+=(--extra format=fail); fi
# The Dockerfile frontend fuzzer: 60 s under ASan, seeded with the conformance corpus.
fuzz_log="$BUILD/meson-logs/fuzz-dockerfile.log"
if SNAPCTL_CONFORMANCE_DIR="$(cd .. && pwd)/shared/conformance" \
	tests/unit/frontend/run-fuzz.sh "${FUZZ_SECONDS:-60}" >"$fuzz_log" 2>&1; then
	echo "fuzz-dockerfile: ok ($(grep -c . "$fuzz_log") log lines in $fuzz_log)"
	extra+=(--extra fuzz-dockerfile=pass)
else
	tail -n 40 "$fuzz_log"
	extra+=(--extra fuzz-dockerfile=fail)
fi

# Layer apply and image import's JSON side: 60 s each, the same way.
for t in layer image; do
	log="$BUILD/meson-logs/fuzz-$t.log"
	if tests/fuzz/run-fuzz.sh "$t" "${FUZZ_SECONDS:-60}" >"$log" 2>&1; then
		echo "fuzz-$t: ok ($(grep -c . "$log") log lines in $log)"
		extra+=(--extra "fuzz-$t=pass")
	else
		tail -n 40 "$log"
		extra+=(--extra "fuzz-$t=fail")
	fi
done

python3 scripts/test-summary.py "${extra[@]}" \
	--expect "$BUILD/meson-logs/expected.list" "$BUILD/meson-logs/testlog.json" \
	--expect "$ASAN_BUILD/meson-logs/expected.list" "$ASAN_BUILD/meson-logs/testlog.json" || status=1
exit $status
