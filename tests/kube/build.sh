#!/bin/sh
# Builds etcd, kube-apiserver and kube-controller-manager of the release pinned in go.mod
# (pin.sh) from the Go module proxy into build/kube/, for the real-cluster tests only. A binary
# newer than go.mod and go.sum is reused. Exits 3 when no Go toolchain is installed.
set -eu
cd "$(dirname "$0")"
out=../../build/kube
export PATH="$PATH:/usr/local/go/bin" GOFLAGS=-mod=readonly
if ! command -v go >/dev/null 2>&1; then
	echo "make kube: no Go toolchain (looked on PATH and in /usr/local/go/bin)" >&2
	exit 3
fi
mkdir -p "$out"
# kube-apiserver's /version reports the release (kubectl picks its version from it)
release=$(sed -n 's|^\s*k8s.io/kubernetes \(v[0-9.]*\)$|\1|p' go.mod)
minor=${release#v*.}; minor=${minor%%.*}
base=k8s.io/component-base/version
ldflags="-X $base.gitVersion=$release -X $base.gitMajor=1 -X $base.gitMinor=$minor -X $base.gitTreeState=clean"
for target in etcd=go.etcd.io/etcd/server/v3 \
	kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
	kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager; do
	name=${target%%=*}
	if [ -x "$out/$name" ] && [ "$out/$name" -nt go.mod ] && [ "$out/$name" -nt go.sum ]; then
		continue
	fi
	echo "building $name (${target#*=})"
	start=$(date +%s)
	go build -trimpath -ldflags "$ldflags" -o "$out/$name.new" "${target#*=}"
	mv "$out/$name.new" "$out/$name"
	echo "built $name in $(( $(date +%s) - start )) s"
done
