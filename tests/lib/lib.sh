# Shell test helpers: sourced by tests/integration/*.sh. Tests exit 0 on
# success, 1 on failure, 77 to skip (only when not root).
set -euo pipefail

: "${SNAPCTL:?SNAPCTL must point at the snapctl binary (meson sets it)}"

TEST_NAME=$(basename "$0" .sh)
TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/snapctl-$TEST_NAME.XXXXXX")
CLEANUPS=()

cleanup() {
	local rc=$? i
	set +e
	for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do
		eval "${CLEANUPS[$i]}" >/dev/null 2>&1 || true
	done
	# Mounts under the test folder must go before the folder does.
	grep -o " $TEST_TMP[^ ]*" /proc/self/mounts 2>/dev/null | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null || true
	done
	rm_tree "$TEST_TMP" 2>/dev/null
	exit $rc
}
trap cleanup EXIT

# rm_tree DIR: rm -rf, but btrfs subvolumes inside (read-only ones too) are
# deleted whole first, as rm cannot.
rm_tree() {
	if [ "$(stat -f -c %T "$1" 2>/dev/null)" = btrfs ]; then
		find "$1" -type d -inum 256 -prune -exec btrfs -q subvolume delete {} + >/dev/null
	fi
	rm -rf "$1"
}

on_exit() { CLEANUPS+=("$*"); }

require_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "skip: $TEST_NAME needs root"
		exit 77
	fi
}

fail() {
	echo "FAIL: $TEST_NAME: $*" >&2
	exit 1
}

pass() { echo "ok: $*"; }

# snap ARGS...: snapctl on the test's store.
snap() { "$SNAPCTL" --root "$STORE" "$@"; }

# expect_error WANT_STATUS PATTERN CMD...: the command must fail with that exit
# status and print exactly one line on stderr, starting with "snapctl: " and
# matching PATTERN (an extended regex).
expect_error() {
	local want=$1 pattern=$2
	shift 2
	local out="$TEST_TMP/stderr.$$" status=0
	"$@" >/dev/null 2>"$out" || status=$?
	[ "$status" = "$want" ] || fail "'$*' exited $status, expected $want; stderr: $(cat "$out")"
	local lines
	lines=$(grep -c '' "$out" || true)
	if [ "$want" = 1 ] && [ "$lines" != 1 ]; then
		fail "'$*' printed $lines lines on stderr, expected one: $(cat "$out")"
	fi
	head -n 1 "$out" | grep -Eq "^snapctl: " || fail "'$*': error does not start with 'snapctl: ': $(cat "$out")"
	grep -Eq -- "$pattern" "$out" || fail "'$*': error '$(cat "$out")' does not match '$pattern'"
	pass "$(printf '%s' "$*" | cut -c1-100) -> $(head -n 1 "$out" | cut -c1-200)"
}

# snapshot_absent KEY WHY: `snapshot info KEY` must fail with exit status 1
# and say the snapshot does not exist (not fail some other way).
snapshot_absent() {
	local key=$1 why=$2 out status=0
	out=$(snap snapshot info "$key" 2>&1 >/dev/null) || status=$?
	[ "$status" = 1 ] && [[ $out == "snapctl: snapshot '$key' does not exist"* ]] ||
		fail "$why (snapshot info $key: exit $status: $out)"
}

# A loop device over a new file of SIZE with file system FS, mounted at DIR.
make_loop_fs() {
	local fs=$1 size=$2 dir=$3 img dev
	img="$TEST_TMP/$(basename "$dir").img"
	truncate -s "$size" "$img"
	case "$fs" in
	ext4) mkfs.ext4 -q -F "$img" ;;
	xfs) mkfs.xfs -q -f "$img" ;;
	btrfs) mkfs.btrfs -q -f "$img" >/dev/null ;;
	*) fail "unknown file system $fs" ;;
	esac
	dev=$(losetup -f --show "$img")
	on_exit "losetup -d $dev"
	mkdir -p "$dir"
	mount "$dev" "$dir"
	on_exit "umount -l $dir"
}

# Checks store invariants: every record has its folder, every folder a
# record, nothing left in tmp/.
check_store_consistent() {
	local ids folders
	ids=$(snap snapshot ls --json | { grep -o '"id": [0-9]*' || true; } | awk '{print $2}' | sort -n)
	folders=$(ls "$STORE/snapshots" | sort -n)
	[ "$ids" = "$folders" ] || fail "records and folders disagree: records [$(echo $ids)] folders [$(echo $folders)]"
	[ -z "$(ls -A "$STORE/tmp")" ] || fail "tmp/ not empty: $(ls -A "$STORE/tmp")"
}

# Imports the offline busybox image (scripts/make-busybox-image.sh) into
# $STORE as NAME (default busybox:latest).
import_busybox() {
	local name=${1:-busybox:latest} dir
	dir="$TEST_TMP/busybox-layout.$RANDOM"
	"$SNAPCTL_TESTS_LIB/../../scripts/make-busybox-image.sh" "$dir" "$name" >/dev/null
	snap image import "$dir" >/dev/null
	rm -rf "$dir"
}

# json EXPR: a Python expression over the JSON document on stdin, d.
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }

# json_get FILE EXPR: a Python expression over the JSON document j.
json_get() {
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
