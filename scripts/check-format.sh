#!/bin/sh
# Fails if a tracked C file is not in the house format (.clang-format).
set -eu
cd "$(dirname "$0")/.."
bad=""
for f in $(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*'); do
	clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad="$bad $f"
done
if [ -n "$bad" ]; then
	echo "check-format: not in the house format (run clang-format -i):$bad" >&2
	exit 1
fi
echo "check-format: ok"
