#!/bin/bash
# The snapctl CLI as scripts use it: every snapshot and lease verb, its
# output in human and --json form, and its exit status.
. "$SNAPCTL_TESTS_LIB/lib.sh"
require_root

STORE="$TEST_TMP/store"

snap version | grep -Ec >/dev/null '^snapctl [0-9]+\.[0-9]+\.[0-9]+$' || fail "version output"
[ "$(snap version --json | json 'd["version"]')" = "$(snap version | cut -d' ' -f2)" ] || fail "version --json"

# prepare / mount / write / umount / commit, ctr's argument order
snap snapshot prepare a-work
mkdir -p "$TEST_TMP/m"
snap snapshot mount a-work "$TEST_TMP/m"
echo one >"$TEST_TMP/m/one"
snap snapshot umount "$TEST_TMP/m"
snap snapshot commit a a-work --label stage=base
snap snapshot prepare b-work a --label owner=ci
snap snapshot view a-view a

# ls: table with a header, and JSON with the records
snap snapshot ls >"$TEST_TMP/ls"
head -n 1 "$TEST_TMP/ls" | grep -Ec >/dev/null '^KEY +PARENT +KIND' || fail "ls header: $(head -n 1 "$TEST_TMP/ls")"
grep -Eq '^b-work +a +active' "$TEST_TMP/ls" || fail "ls row for b-work: $(cat "$TEST_TMP/ls")"
[ "$(snap snapshot ls --json | json 'len(d)')" = 3 ] || fail "ls --json count"
[ "$(snap snapshot ls --kind view --json | json 'd[0]["key"]')" = a-view ] || fail "ls --kind view"
[ "$(snap snapshot ls --parent a --json | json 'len(d)')" = 2 ] || fail "ls --parent"
[ "$(snap snapshot ls --filter label=owner=ci --json | json 'd[0]["key"]')" = b-work ] || fail "ls --filter label"
[ "$(snap snapshot ls --filter label=owner=cd --json | json 'len(d)')" = 0 ] || fail "ls --filter label mismatch"
expect_error 2 "not label=" snap snapshot ls --filter kind=x
expect_error 2 "not active, view or committed" snap snapshot ls --kind broken

# info is JSON, like ctr
info=$(snap snapshot info a)
[ "$(echo "$info" | json 'd["kind"]')" = committed ] || fail "info kind"
[ "$(echo "$info" | json 'd["labels"]["stage"]')" = base ] || fail "info labels"
[ "$(echo "$info" | json 'd["size"] > 0')" = True ] || fail "info size"

# label: set, show, remove
snap snapshot label a team=infra | grep -c >/dev/null '^team=infra$' || fail "label set"
[ "$(snap snapshot label a --json | json 'd["team"]')" = infra ] || fail "label --json"
snap snapshot label a team= >/dev/null
snap snapshot label a | grep -c >/dev/null '^team=' && fail "label removal"
expect_error 2 "not KEY=VALUE" snap snapshot label a novalue

# usage: committed figures are the stored ones, active are measured
snap snapshot usage a b-work >"$TEST_TMP/usage"
grep -Eq '^a +[0-9.]+ [KMG]?i?B +[0-9]+$' "$TEST_TMP/usage" || fail "usage row: $(cat "$TEST_TMP/usage")"
[ "$(snap snapshot usage --json a | json 'd[0]["size"]')" = "$(echo "$info" | json 'd["size"]')" ] || fail "usage --json"

# mounts: mount(8) commands, or JSON specs
snap snapshot mounts /target b-work | grep -Ec >/dev/null '^mount -t (overlay|none) .* /target -o ' || fail "mounts output"
[ "$(snap snapshot mounts --json b-work | json 'd[0]["type"]')" != "" ] || fail "mounts --json"
expect_error 1 "is committed; mount a view" snap snapshot mounts a
expect_error 1 "not a folder" snap snapshot mount b-work "$TEST_TMP/nowhere"
expect_error 1 "nothing is mounted" snap snapshot umount "$TEST_TMP/m"

# the view is read-only and shows the parent
snap snapshot mount a-view "$TEST_TMP/m"
[ "$(cat "$TEST_TMP/m/one")" = one ] || fail "view content"
err=$(touch "$TEST_TMP/m/new" 2>&1) && fail "view is writable"
[[ $err == *"Read-only file system"* ]] || fail "writing into the view failed, but not as read-only: $err"
snap snapshot umount "$TEST_TMP/m"

# rm: several keys; a failure in one is reported, the others still go
expect_error 1 "has children" snap snapshot rm a
snap snapshot rm a-view b-work
snap snapshot rm a
[ "$(snap snapshot ls --json | json 'len(d)')" = 0 ] || fail "rm left records"

# leases
id=$(snap lease create --expires 1h)
[[ "$id" =~ ^[0-9a-f]{32}$ ]] || fail "lease id '$id'"
snap lease create --id mine --pid $$ >/dev/null
snap snapshot prepare held
snap lease add mine snapshot held
snap lease add mine image example.com/app:1
expect_error 1 "does not exist" snap lease add mine snapshot nothing
expect_error 1 "unknown object type" snap lease add mine widget x
expect_error 1 "lease 'nope' does not exist" snap lease add nope image x
expect_error 1 "already exists" snap lease create --id mine
l=$(snap lease ls --json)
[ "$(echo "$l" | json 'len(d)')" = 2 ] || fail "lease ls count"
[ "$(echo "$l" | json '[x for x in d if x["id"]=="mine"][0]["pid"]')" = $$ ] || fail "lease pid"
[ "$(echo "$l" | json '[x for x in d if x["id"]=="mine"][0]["alive"]')" = True ] || fail "lease alive"
[ "$(echo "$l" | json 'len([x for x in d if x["id"]=="mine"][0]["objects"])')" = 2 ] || fail "lease objects"
snap lease ls | grep -Ec >/dev/null '^mine +.* alive +2$' || fail "lease ls table: $(snap lease ls)"
# A lease held by a process that is gone is dead, and prune deletes it.
sleep 60 &
holder=$!
snap lease create --id gone --pid $holder >/dev/null
kill $holder; wait $holder 2>/dev/null || true
[ "$(snap lease ls --json | json '[x for x in d if x["id"]=="gone"][0]["alive"]')" = False ] || fail "dead holder"
snap lease create --id expired --expires 1s >/dev/null
sleep 1.2
snap lease prune | grep -c >/dev/null '^2 dead leases deleted$' || fail "lease prune"
# A lease holds a snapshot itself, not its name: it follows a commit to the
# new name, and a later snapshot that takes a removed one's name is not held.
snap --lease mine snapshot prepare wip >/dev/null
snap snapshot commit wip-done wip
objs=$(snap lease ls --json | json '[o["name"] for x in d if x["id"]=="mine" for o in x["objects"]]')
echo "$objs" | grep -c >/dev/null "'wip-done'" || fail "the lease did not follow the commit to wip-done: $objs"
echo "$objs" | grep -c >/dev/null "'wip'" && fail "the lease still names the active key wip: $objs"
snap snapshot prepare w1 >/dev/null
snap snapshot commit reused w1
snap lease add mine snapshot reused
snap snapshot rm reused
snap snapshot prepare w2 >/dev/null
snap snapshot commit reused w2
objs=$(snap lease ls --json | json '[o["name"] for x in d if x["id"]=="mine" for o in x["objects"]]')
echo "$objs" | grep -c >/dev/null "'reused'" && fail "a new snapshot named like a removed leased one is held: $objs"
snap gc --dry-run | grep -Ec >/dev/null '^regular +reused ' || fail "gc would keep the new 'reused' as leased: $(snap gc --dry-run)"
snap snapshot rm reused wip-done
snap lease rm "$id" mine
[ "$(snap lease ls --json | json 'len(d)')" = 0 ] || fail "lease rm"
expect_error 1 "does not exist" snap lease rm mine
pass "cli verbs"
