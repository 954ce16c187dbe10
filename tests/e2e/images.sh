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

EXPECTED_CHECKS=28

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
no_image() { # no_image REF...: podman says each image does not exist (exit 1)
  local ref status
  for ref; do
    podman image exists "$ref"; status=$?
    [ "$status" -eq 1 ] || return 1
  done
}
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

echo "== 2. prune: last use, PRUNE_KEEP, PRUNE_HOURS, PRUNE_CURRENT, containers, unlabelled images"
two="two,x86_64,busybox,1,localhost,matriochka-e2e/busybox,1"
podman rmi "$ns/daemon:layers-one-x86_64" "$ns/daemon-base:layers-one-x86_64" \
  "$ns/daemon:squashed-one-x86_64" "$ns/daemon-base:squashed-one-x86_64" >/dev/null
# Created at the epoch (--timestamp 0), so that the recorded uses alone say how old each one is.
old() { mk "$@" BUILD_ARGS="--isolation chroot --timestamp 0" >>"$work/prune-builds.log" 2>&1; }
old build FLAVORS="$one $two" RELEASE=p1 && old build FLAVORS="$one" RELEASE=p2
equals "the prune images are built" 0 $?
id() { podman image inspect --format '{{.Id}}' "$ns/$1"; }
check "a build records its images' use" test -s "staging/.uses/$(id daemon:p2-one-x86_64)"
now=$(date +%s)
used() { # used IMAGE HOURS-AGO: the recorded last use
  mkdir -p staging/.uses && echo $((now - $2 * 3600)) > "staging/.uses/$(id "$1")"
}
for image in daemon-base:p1-one-x86_64 daemon:p1-one-x86_64 daemon-base:p1-two-x86_64 daemon:p1-two-x86_64; do
  used "$image" 100
done
used daemon:p2-one-x86_64 50
used daemon-base:p2-one-x86_64 10
podman create --name "mimg-$$" "$ns/daemon:p1-two-x86_64" /bin/true >/dev/null
equals "a container uses daemon:p1-two" 0 $?
# The current flavor is one at p2: daemon:p2-one is old enough but current; daemon-base:p2-one is
# the most recent (PRUNE_KEEP=1); daemon:p1-two is used by the container. Its parent
# daemon-base:p1-two is not (podman's `ancestor` filter matches the container's own image): it goes,
# and daemon:p1-two keeps the layers they share.
prune() { mk prune FLAVORS="$one" RELEASE=p2 PRUNE_KEEP=1 "$@" 2>&1; }
prune -n >"$work/prune-dry.log"
equals "make -n prune exits 0" 0 $?
equals "make -n prune lists the old p1 images no container uses" \
  "would remove $(id daemon-base:p1-one-x86_64 | cut -c1-12) $ns/daemon-base:p1-one-x86_64 (flavor $one, last used 100h ago)
would remove $(id daemon-base:p1-two-x86_64 | cut -c1-12) $ns/daemon-base:p1-two-x86_64 (flavor $two, last used 100h ago)
would remove $(id daemon:p1-one-x86_64 | cut -c1-12) $ns/daemon:p1-one-x86_64 (flavor $one, last used 100h ago)" \
  "$(grep '^would remove [0-9a-f]\{12\} ' "$work/prune-dry.log" | sort -k4)"
equals "make -n prune keeps what a container uses" \
  "kept $(id daemon:p1-two-x86_64 | cut -c1-12) $ns/daemon:p1-two-x86_64: a container uses it" \
  "$(grep '^kept' "$work/prune-dry.log")"
equals "make -n prune sums up" "would remove 3 of 6 matriochka images" "$(tail -1 "$work/prune-dry.log")"
check "make -n prune removed nothing" podman image exists "$ns/daemon:p1-one-x86_64"
PRUNE_DRY=1 prune >"$work/prune-dry2.log"
equals "PRUNE_DRY=1 lists the same" "$(tail -n +2 "$work/prune-dry.log")" "$(tail -n +2 "$work/prune-dry2.log")"
prune >"$work/prune1.log"
equals "prune exits 0" 0 $?
check "the old p1 images no container uses are gone" \
  no_image "$ns/daemon:p1-one-x86_64" "$ns/daemon-base:p1-one-x86_64" "$ns/daemon-base:p1-two-x86_64"
check "the images a container uses stay" podman image exists "$ns/daemon:p1-two-x86_64"
check "the current flavor's old image stays" podman image exists "$ns/daemon:p2-one-x86_64"
equals "prune sums up" "removed 3 of 6 matriochka images" "$(tail -1 "$work/prune1.log")"
prune PRUNE_CURRENT=1 >"$work/prune2.log"
check "PRUNE_CURRENT=1 removes the current flavor's old image" no_image "$ns/daemon:p2-one-x86_64"
check "PRUNE_KEEP keeps the most recent" podman image exists "$ns/daemon-base:p2-one-x86_64"
prune PRUNE_CURRENT=1 PRUNE_KEEP=0 >"$work/prune3.log"
check "a recent image stays (PRUNE_HOURS)" podman image exists "$ns/daemon-base:p2-one-x86_64"
prune PRUNE_CURRENT=1 PRUNE_KEEP=0 PRUNE_HOURS=0 >"$work/prune4.log"
check "PRUNE_HOURS=0 removes it" no_image "$ns/daemon-base:p2-one-x86_64"
equals "only the image a container uses is left" "$ns/daemon:p1-two-x86_64" \
  "$(podman images --filter label=io.matriochka.flavor --format '{{.Repository}}:{{.Tag}}')"
check "an image without matriochka's label stays" podman image exists localhost/matriochka-e2e/busybox:1
podman rm "mimg-$$" >/dev/null

summary
[ "$failed" -eq 0 ]
