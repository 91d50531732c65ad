#!/bin/sh
# Installs every Debian package that building, testing and the demo need.
# Idempotent and non-interactive; run as root on Debian 12.
set -eu

PACKAGES="
	build-essential meson ninja-build pkg-config python3
	liblmdb-dev lmdb-utils liburing-dev libbtrfsutil-dev libssl-dev libcurl4-openssl-dev
	libjson-c-dev libarchive-dev zlib1g-dev libzstd-dev libisal-dev
	clang libclang-rt-14-dev clang-format
	btrfs-progs xfsprogs e2fsprogs util-linux attr acl kmod
	runc skopeo umoci busybox-static containerd docker-registry pigz time
	zstd bzip2 xz-utils strace
"

if [ "$(id -u)" != 0 ]; then
	echo "setup.sh: run as root (it installs Debian packages)" >&2
	exit 1
fi

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -n "$missing" ]; then
	echo "setup.sh: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# Packages never start services on this platform; nothing here needs one running.
echo "setup.sh: all packages present"
