#!/usr/bin/env bash
# End-to-end test of what matriochka does to the images an engine holds: `SQUASH=1` (layer counts
# with and without) and `make prune` (last use, PRUNE_HOURS, PRUNE_KEEP, PRUNE_CURRENT, images a
# container uses, images without matriochka's label), on real images of either engine.
#
#   tests/e2e/images.sh [podman|docker]     (default podman)
#
# podman: needs podman, busybox (static).
# docker: needs dockerd (docker.io, root), docker, busybox, python3. The run starts a dockerd of
# its own (tests/e2e/lib-dockerd.sh: data root, exec root, pid file, socket and client config in
# its temp dir, reached through DOCKER_HOST, stopped by its pid): with `--experimental` for the
# squashed builds (docker's classic builder squashes only there), then restarted without it, where
# `SQUASH=1` must fail before any build. Docker's classic builder cannot date an image, so the
# prune images are saved, given the epoch as creation time, and loaded back.
#
# Isolation as in run.sh: a private podman store in the run's temp dir (CONTAINERS_STORAGE_CONF)
# or the run's own daemon, and a namespace of its own (TAG_REGISTRY=localhost/mimg-<pid>-<rand>);
# the cleanup removes the store whole. Counts every check and compares the count with the
# engine's EXPECTED_CHECKS; prints `N passed, N failed` last.
set -uo pipefail
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES FLAVORS IMAGES FORCE JOBS PUSH_RETRIES STAGING_ROOT \
  DAEMON_TAG DAEMON_BASE_TAG CONTAINER_ENGINE BUILD_ARGS PUSH_ARGS SQUASH PRUNE_HOURS PRUNE_KEEP \
  PRUNE_CURRENT PRUNE_DRY HEADER FOOTER
# Only the daemon this run starts is ever reached.
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_CONFIG

engine=${1:-podman}
case "$engine" in
  podman) EXPECTED_CHECKS=32 ;;
  docker) EXPECTED_CHECKS=37 ;; # and the 5 of section 1b
  *) echo "usage: tests/e2e/images.sh [podman|docker]" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# Short: the docker run's unix sockets live below it (a socket path has at most 107 bytes).
work=$(mktemp -d /tmp/mimg.XXXXXX)
# shellcheck source=tests/e2e/lib-dockerd.sh
. "$here/lib-dockerd.sh"
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
  stop_dockerd
  if [ -n "${E2E_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); echo "FAILED: $1"; }
abort() { fail "$1 (aborting)"; summary; exit 1; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
equals() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2], got [$3]"; fi; }

if [ "$engine" = docker ]; then needs="dockerd docker busybox python3"; else needs="podman busybox"; fi
for tool in $needs; do
  command -v "$tool" >/dev/null || abort "$tool is not installed (apt-get install ${engine/docker/docker.io} busybox-static python3)"
done

if [ "$engine" = docker ]; then
  echo "== a docker daemon of this run's own, experimental (it can squash)"
  start_dockerd "$work/d" "$work/dockerd.log" --experimental || abort "the docker daemon of this run did not start"
  echo "daemon $dockerd_pid on $DOCKER_HOST"
fi

echo "== private podman store and image namespace"
# shellcheck source=tests/e2e/lib-podman.sh
. "$here/lib-podman.sh"
podman_store "$work/store"
export CONTAINERS_STORAGE_CONF="$work/store/storage.conf"
[ "$engine" = docker ] || [ "$(podman info --format '{{.Store.GraphRoot}}' 2>&1)" = "$work/store/root" ] \
  || abort "podman does not use the private store $work/store/root"
ns="localhost/mimg-$$-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
export TAG_REGISTRY="$ns"

echo "== building matriochka"
(cd "$repo" && cargo build --quiet --locked) || abort "cargo build failed"
tool="$repo/target/debug/matriochka"

echo "== base image from busybox-static ($engine import, no network)"
mkdir -p "$work/rootfs/bin"
cp "$(command -v busybox)" "$work/rootfs/bin/busybox"
for applet in sh cat echo true; do ln -s busybox "$work/rootfs/bin/$applet"; done
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
"$engine" import "$work/rootfs.tar" localhost/matriochka-e2e/busybox:1 >/dev/null 2>&1 \
  || abort "$engine import of the base image failed"

project="$work/project"
cp -r "$here/fixture" "$project"
cd "$project" || abort "no project"
git init -q -b main . && git add -A && git -c user.name=e2e -c user.email=e2e@example.com commit -qm fixture

one="one,x86_64,busybox,1,localhost,matriochka-e2e/busybox,1"
export MATRIOCHKA="$tool"
# What differs between the engines, here in the test only: podman's builds need chroot isolation.
if [ "$engine" = docker ]; then build_args=""; else build_args="--isolation chroot"; fi
mk() { make -f "$repo/Makefile" CONTAINER_ENGINE="$engine" BUILD_ARGS="$build_args" PULL=0 "$@"; }
image_exists() { # image_exists REF: the engine has the image
  if [ "$engine" = docker ]; then docker image inspect "$1" >/dev/null 2>&1; else podman image exists "$1"; fi
}
no_image() { # no_image REF...: the engine says each image does not exist; an engine error is not "no image"
  local ref status
  for ref; do
    if [ "$engine" = docker ]; then
      docker image inspect "$ref" >/dev/null 2>"$work/inspect.err"; status=$?
      [ "$status" -eq 1 ] && grep -qi 'no such image' "$work/inspect.err" && continue
    else
      podman image exists "$ref"; status=$?
      [ "$status" -eq 1 ] && continue
    fi
    echo "$ref: exit $status"
    return 1
  done
}
inspect() { "$engine" image inspect --format "$1" "$2"; }
layers() { inspect '{{len .RootFS.Layers}}' "$1"; }

echo "== 1. squash: the layers of each build merged, its base's kept"
# daemon-base: the base's layer, then COPY, RUN, RUN; daemon: daemon-base's, then COPY.
mk build FLAVORS="$one" RELEASE=layers >"$work/layers.log" 2>&1
equals "build without SQUASH exits 0" 0 $?
# docker keeps no layer for a step that changes no file (the fixture's `RUN true`); podman does.
if [ "$engine" = docker ]; then steps=2; else steps=3; fi
equals "daemon-base without SQUASH: base + $steps layers" $((1 + steps)) "$(layers "$ns/daemon-base:layers-one-x86_64")"
equals "daemon without SQUASH: daemon-base's + 1" $((2 + steps)) "$(layers "$ns/daemon:layers-one-x86_64")"
mk build FLAVORS="$one" RELEASE=squashed SQUASH=1 >"$work/squashed.log" 2>&1
equals "build with SQUASH=1 exits 0" 0 $?
check "$engine ran with --squash" grep -q -- ' --squash ' staging/logs/one-busybox-1-x86_64/daemon-base.log
equals "daemon-base with SQUASH=1: base + 1 layer" 2 "$(layers "$ns/daemon-base:squashed-one-x86_64")"
equals "daemon with SQUASH=1: daemon-base's + 1" 3 "$(layers "$ns/daemon:squashed-one-x86_64")"
equals "daemon shares daemon-base's layers" \
  "$(inspect '{{index .RootFS.Layers 1}}' "$ns/daemon-base:squashed-one-x86_64")" \
  "$(inspect '{{index .RootFS.Layers 1}}' "$ns/daemon:squashed-one-x86_64")"

if [ "$engine" = docker ]; then
  echo "== 1b. squash on a docker daemon without --experimental: one line, before any build"
  stop_dockerd
  start_dockerd "$work/d" "$work/dockerd2.log" || abort "the docker daemon of this run did not restart"
  equals "the restarted daemon is not experimental" false "$(docker info --format '{{.ExperimentalBuild}}')"
  mk build FLAVORS="$one" RELEASE=nosquash SQUASH=1 >"$work/nosquash.log" 2>&1
  check "build with SQUASH=1 fails" test $? -ne 0
  # shellcheck disable=SC2016 # the backticks are text
  equals "the tool's one line" \
    'error: SQUASH=1 needs docker'"'"'s experimental daemon (ExperimentalBuild is `false`): set `"experimental": true` in /etc/docker/daemon.json and restart docker, or use podman' \
    "$(grep '^error' "$work/nosquash.log")"
  check "no build ran" bash -c "! grep -q '] build' '$work/nosquash.log'"
  check "no image was tagged" no_image "$ns/daemon-base:nosquash-one-x86_64"
fi

echo "== 1c. prune: a container of a child image keeps that image, not its parent"
# Built by the engine's own builder (docker's classic builder links daemon to daemon-base), not
# current (RELEASE=other), every image old enough (PRUNE_HOURS=0) and none kept for being recent.
"$engine" create --name "mimg-$$-c" "$ns/daemon:layers-one-x86_64" /bin/true >/dev/null
mk -n prune FLAVORS="$one" RELEASE=other PRUNE_KEEP=0 PRUNE_HOURS=0 >"$work/prune-chain.log" 2>&1
equals "the container's own image is kept" \
  "kept $(inspect '{{.Id}}' "$ns/daemon:layers-one-x86_64" | sed 's/^sha256://' | cut -c1-12) $ns/daemon:layers-one-x86_64: a container uses it" \
  "$(grep '^kept' "$work/prune-chain.log")"
check "its parent would go" grep -q "^would remove [0-9a-f]\{12\} $ns/daemon-base:layers-one-x86_64 " "$work/prune-chain.log"
"$engine" rm "mimg-$$-c" >/dev/null

echo "== 2. prune: last use, PRUNE_KEEP, PRUNE_HOURS, PRUNE_CURRENT, containers, unlabelled images"
two="two,x86_64,busybox,1,localhost,matriochka-e2e/busybox,1"
"$engine" rmi "$ns/daemon:layers-one-x86_64" "$ns/daemon-base:layers-one-x86_64" \
  "$ns/daemon:squashed-one-x86_64" "$ns/daemon-base:squashed-one-x86_64" >/dev/null
mk clean.nones >>"$work/prune-builds.log" 2>&1
equals "no matriochka image is left" "" "$("$engine" images --quiet --filter label=io.matriochka.flavor)"
id() { inspect '{{.Id}}' "$ns/$1" | sed 's/^sha256://'; }
if [ "$engine" = podman ]; then
  # Created at the epoch (--timestamp 0), so that the recorded uses alone say how old each one is.
  old() {
    mk "$@" BUILD_ARGS="--isolation chroot --timestamp 0" >>"$work/prune-builds.log" 2>&1 || return 1
    p2=$(id daemon:p2-one-x86_64 2>/dev/null) || true # built by the second call
  }
else
  # Docker's classic builder cannot date an image: each one built is saved, its configuration
  # given the epoch as creation time, and loaded back under its tags; the built ones are removed.
  old() {
    mk "$@" >>"$work/prune-builds.log" 2>&1 || return 1
    p2=$(id daemon:p2-one-x86_64 2>/dev/null) || true # built by the second call
    local refs built
    refs=$(docker images --filter label=io.matriochka.flavor --filter dangling=false \
      --format '{{.Repository}}:{{.Tag}} {{.CreatedAt}}' | grep -v ' 1970-' | cut -d' ' -f1 | sort)
    # shellcheck disable=SC2086 # one word per reference
    built=$(docker image inspect --format '{{.Id}}' $refs | sort -u)
    # shellcheck disable=SC2086 # one word per reference
    docker save -o "$work/save.tar" $refs && rm -rf "$work/save" && mkdir "$work/save" \
      && tar -C "$work/save" -xf "$work/save.tar" && python3 "$here/epoch_images.py" "$work/save" \
      && tar -C "$work/save" -cf "$work/load.tar" . && docker load -i "$work/load.tar" >/dev/null \
      || return 1
    # shellcheck disable=SC2046,SC2086 # one word per id; children first, so that docker removes each
    docker rmi $(printf '%s\n' $built | tac) >/dev/null 2>&1
    [ -z "$(docker images --quiet --filter label=io.matriochka.flavor --filter dangling=true)" ]
  }
fi
old build FLAVORS="$one $two" RELEASE=p1 && old build FLAVORS="$one" RELEASE=p2
equals "the prune images are built" 0 $?
equals "the prune images were created at the epoch" "1970-01-01" \
  "$(inspect '{{.Created}}' "$ns/daemon:p2-one-x86_64" | cut -c1-10)"
check "a build records its images' use" test -s "staging/.uses/$p2"
now=$(date +%s)
used() { # used IMAGE HOURS-AGO: the recorded last use, as a build records it (what matriochka
  # built: the image's content id and its tag), so that prune takes it for one of its own.
  mkdir -p staging/.uses && {
    echo $((now - $2 * 3600))
    echo "content-id $(inspect '{{index .Config.Labels "io.matriochka.content-id"}}' "$ns/$1")"
    echo "tag $ns/$1"
  } >"staging/.uses/$(id "$1")"
}
for image in daemon-base:p1-one-x86_64 daemon:p1-one-x86_64 daemon-base:p1-two-x86_64 daemon:p1-two-x86_64; do
  used "$image" 100
done
used daemon:p2-one-x86_64 50
used daemon-base:p2-one-x86_64 10
"$engine" create --name "mimg-$$" "$ns/daemon:p1-two-x86_64" /bin/true >/dev/null
equals "a container uses daemon:p1-two" 0 $?
# The current flavor is one at p2: daemon:p2-one is old enough but current; daemon-base:p2-one is
# the most recent (PRUNE_KEEP=1); daemon:p1-two is used by the container. Its parent
# daemon-base:p1-two is not (a container's own image only counts): it goes,
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
check "make -n prune removed nothing" image_exists "$ns/daemon:p1-one-x86_64"
PRUNE_DRY=1 prune >"$work/prune-dry2.log"
equals "PRUNE_DRY=1 lists the same" "$(tail -n +2 "$work/prune-dry.log")" "$(tail -n +2 "$work/prune-dry2.log")"
prune >"$work/prune1.log"
equals "prune exits 0" 0 $?
check "the old p1 images no container uses are gone" \
  no_image "$ns/daemon:p1-one-x86_64" "$ns/daemon-base:p1-one-x86_64" "$ns/daemon-base:p1-two-x86_64"
check "the images a container uses stay" image_exists "$ns/daemon:p1-two-x86_64"
check "the current flavor's old image stays" image_exists "$ns/daemon:p2-one-x86_64"
equals "prune sums up" "removed 3 of 6 matriochka images" "$(tail -1 "$work/prune1.log")"
prune PRUNE_CURRENT=1 >"$work/prune2.log"
check "PRUNE_CURRENT=1 removes the current flavor's old image" no_image "$ns/daemon:p2-one-x86_64"
check "PRUNE_KEEP keeps the most recent" image_exists "$ns/daemon-base:p2-one-x86_64"
prune PRUNE_CURRENT=1 PRUNE_KEEP=0 >"$work/prune3.log"
check "a recent image stays (PRUNE_HOURS)" image_exists "$ns/daemon-base:p2-one-x86_64"
prune PRUNE_CURRENT=1 PRUNE_KEEP=0 PRUNE_HOURS=0 >"$work/prune4.log"
check "PRUNE_HOURS=0 removes it" no_image "$ns/daemon-base:p2-one-x86_64"
equals "only the image a container uses is left" "$ns/daemon:p1-two-x86_64" \
  "$("$engine" images --filter label=io.matriochka.flavor --format '{{.Repository}}:{{.Tag}}')"
check "an image without matriochka's label stays" image_exists localhost/matriochka-e2e/busybox:1
"$engine" rm "mimg-$$" >/dev/null

summary
[ "$failed" -eq 0 ]
