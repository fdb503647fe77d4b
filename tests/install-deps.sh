#!/bin/sh
# Installs the Debian packages that building, `make demo` and `make check` need,
# and only those that are missing. Needs root when something is missing.
# With the argument "deb": also what `make deb` / `make deb-test` need.
set -eu

# Every program and library a test calls, looked up from the tests (`grep -rn subprocess
# tests`): a missing one is a failing test, never a skip. kubectl is not a Debian package;
# the machines this project runs on carry /usr/bin/kubectl (docs/kubernetes.md).
PACKAGES="build-essential pkg-config libpam0g-dev libcurl4-openssl-dev libjson-c-dev libssl-dev
libcmocka-dev libpam-wrapper libnss-wrapper libpam-modules libpam-modules-bin util-linux
openssl ca-certificates curl jq valgrind strace binutils faketime libfaketime
python3 python3-pytest python3-pytest-xdist python3-cryptography python3-jwt python3-kubernetes
openssh-server openssh-client sshpass python3-paramiko sudo pamtester
clang-14 libclang-rt-14-dev"
if [ "${1:-}" = deb ]; then
	PACKAGES="$PACKAGES dpkg-dev debhelper lintian devscripts man-db"
fi

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "installing:$missing"
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: these Debian packages are missing and installing them needs root:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y -q --no-install-recommends $missing
