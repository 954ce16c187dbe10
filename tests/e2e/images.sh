#!/usr/bin/env bash
# End-to-end test of what matriochka does to the images an engine holds: `SQUASH=1` (layer counts
# with and without) and `make prune` (last use, PRUNE_HOURS, PRUNE_KEEP, PRUNE_CURRENT, images a
# container uses, images without matriochka's label), with podman on real images.
# Needs: podman, busybox (static).
#
# Isolation as in run.sh: a private podman store in the run's temp dir (CONTAINERS_STORAGE_CONF)
# and a namespace of its own (TAG_REGISTRY=localhost/mimg-<pid>-<rand>); the cleanup removes the
# store whole. Counts every check and compares the count with EXPECTED_CHECKS.
set -uo pipefail
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES FLAVORS IMAGES FORCE JOBS PUSH_RETRIES STAGING_ROOT \
  DAEMON_TAG DAEMON_BASE_TAG CONTAINER_ENGINE BUILD_ARGS PUSH_ARGS SQUASH PRUNE_HOURS PRUNE_KEEP \
  PRUNE_CURRENT PRUNE_DRY HEADER FOOTER

EXPECTED_CHECKS=8

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/matriochka-images.XXXXXX)
passed=0
failed=0

summary() {
  local total=$((passed + failed))
  if [ "$total" -ne "$EXPECTED_CHECKS" ]; then
    failed=$((failed + 1))
    echo "FAILED: $total checks ran, $EXPECTED_CHECKS expected"
  fi
  echo "$passed passed, $failed failed"
}
cleanup() {
  if [ -n "${E2E_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); echo "FAILED: $1"; }
abort() { fail "$1 (aborting)"; summary; exit 1; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
equals() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2], got [$3]"; fi; }

for tool in podman busybox; do
  command -v "$tool" >/dev/null || abort "$tool is not installed (apt-get install podman busybox-static)"
done

echo "== private podman store and image namespace"
mkdir -p "$work/store/root" "$work/store/run"
cat >"$work/storage.conf" <<CONF
[storage]
driver = "vfs"
graphroot = "$work/store/root"
runroot = "$work/store/run"
CONF
export CONTAINERS_STORAGE_CONF="$work/storage.conf"
[ "$(podman info --format '{{.Store.GraphRoot}}' 2>&1)" = "$work/store/root" ] \
  || abort "podman does not use the private store $work/store/root"
ns="localhost/mimg-$$-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
export TAG_REGISTRY="$ns"

echo "== building matriochka"
(cd "$repo" && cargo build --quiet --locked) || abort "cargo build failed"
tool="$repo/target/debug/matriochka"

echo "== base image from busybox-static (podman import, no network)"
mkdir -p "$work/rootfs/bin"
cp "$(command -v busybox)" "$work/rootfs/bin/busybox"
for applet in sh cat echo true; do ln -s busybox "$work/rootfs/bin/$applet"; done
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
podman import "$work/rootfs.tar" localhost/matriochka-e2e/busybox:1 >/dev/null 2>&1 \
  || abort "podman import of the base image failed"

project="$work/project"
cp -r "$here/fixture" "$project"
cd "$project" || abort "no project"
git init -q -b main . && git add -A && git -c user.name=e2e -c user.email=e2e@example.com commit -qm fixture

one="one,x86_64,busybox,1,localhost,matriochka-e2e/busybox,1"
export MATRIOCHKA="$tool"
mk() { make -f "$repo/Makefile" CONTAINER_ENGINE=podman BUILD_ARGS="--isolation chroot" PULL=0 "$@"; }
layers() { podman image inspect --format '{{len .RootFS.Layers}}' "$1"; }

echo "== 1. squash: the layers of each build merged, its base's kept"
# daemon-base: the base's layer, then COPY, RUN, RUN; daemon: daemon-base's, then COPY.
mk build FLAVORS="$one" RELEASE=layers >"$work/layers.log" 2>&1
equals "build without SQUASH exits 0" 0 $?
equals "daemon-base without SQUASH: base + 3 layers" 4 "$(layers "$ns/daemon-base:layers-one-x86_64")"
equals "daemon without SQUASH: daemon-base's + 1" 5 "$(layers "$ns/daemon:layers-one-x86_64")"
mk build FLAVORS="$one" RELEASE=squashed SQUASH=1 >"$work/squashed.log" 2>&1
equals "build with SQUASH=1 exits 0" 0 $?
check "podman ran with --squash" grep -q -- ' --squash ' staging/logs/one-busybox-1-x86_64/daemon-base.log
equals "daemon-base with SQUASH=1: base + 1 layer" 2 "$(layers "$ns/daemon-base:squashed-one-x86_64")"
equals "daemon with SQUASH=1: daemon-base's + 1" 3 "$(layers "$ns/daemon:squashed-one-x86_64")"
equals "daemon shares daemon-base's layers" \
  "$(podman image inspect --format '{{index .RootFS.Layers 1}}' "$ns/daemon-base:squashed-one-x86_64")" \
  "$(podman image inspect --format '{{index .RootFS.Layers 1}}' "$ns/daemon:squashed-one-x86_64")"

summary
[ "$failed" -eq 0 ]
