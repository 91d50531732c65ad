#!/usr/bin/env python3
"""Prints 'N passed, N failed, N skipped' from meson test logs and --extra
checks run outside meson; exits 1 if any failed, a log is missing, or
nothing passed.

  test-summary.py [--extra NAME=pass|fail|skip]... [--expect LIST] LOG ...

LOG is a meson testlog.json (one JSON object per test). A TAP test's
subtests that say '# SKIP' count as skipped (the test itself as passed, if
it passed). --expect LIST (the output of 'meson test --list', one name per
line) applies to the LOG after it: a test it names that the log lacks did
not run, and counts as failed."""
import json
import re
import sys

passed = failed = skipped = 0
missing = []
args = sys.argv[1:]
logs = []  # (path, expected list path or None)
expect = None
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
    elif arg == "--expect":
        expect = args.pop(0)
    else:
        logs.append((arg, expect))
        expect = None
tap_skip = re.compile(r"^ok \d+\b.*#\s*SKIP", re.IGNORECASE | re.MULTILINE)
for path, expected in logs:
    try:
        with open(path, encoding="utf-8") as f:
            entries = [json.loads(l) for l in f if l.strip()]
    except OSError:
        missing.append(path)
        continue
    ran = set()
    for e in entries:
        ran.add(e.get("name", ""))
        result = e.get("result", "")
        if result in ("OK", "EXPECTEDFAIL"):
            passed += 1
            skipped += len(tap_skip.findall(e.get("stdout") or ""))
        elif result == "SKIP":
            skipped += 1
        else:
            failed += 1
    if expected:
        try:
            with open(expected, encoding="utf-8") as f:
                want = [l.strip() for l in f if l.strip()]
        except OSError:
            missing.append(expected)
            continue
        for name in want:
            if name not in ran:
                print(f"test-summary: {name} is listed but did not run", file=sys.stderr)
                failed += 1
for path in missing:
    print(f"test-summary: no test log at {path}", file=sys.stderr)
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or missing or passed == 0 else 0)
