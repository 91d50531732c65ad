#!/usr/bin/env python3
"""Prints 'N passed, N failed, N skipped' from meson test logs (testlog.json,
one JSON object per test) and --extra NAME=pass|fail|skip checks run outside
meson; exits 1 if any failed, a log is missing, or nothing passed."""
import json
import sys

passed = failed = skipped = 0
missing = []
args = sys.argv[1:]
paths = []
while args:
    arg = args.pop(0)
    if arg == "--extra":
        # NAME=pass|fail|skip: a check run outside meson
        name, _, result = args.pop(0).partition("=")
        if result == "pass":
            passed += 1
        elif result == "skip":
            skipped += 1
        else:
            print(f"test-summary: {name} failed", file=sys.stderr)
            failed += 1
    else:
        paths.append(arg)
for path in paths:
    try:
        with open(path, encoding="utf-8") as f:
            lines = [l for l in f if l.strip()]
    except OSError:
        missing.append(path)
        continue
    for line in lines:
        result = json.loads(line).get("result", "")
        if result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result == "SKIP":
            skipped += 1
        else:
            failed += 1
for path in missing:
    print(f"test-summary: no test log at {path}", file=sys.stderr)
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or missing or passed == 0 else 0)
