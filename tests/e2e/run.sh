#!/usr/bin/env bash
# End-to-end test of the Make integration with a real engine and a real registry:
# podman builds (chroot isolation, no daemon) of a fixture project, rebuilds, a push to Debian's
# docker-registry on a free loopback port, and a failing build under `make -k`.
# Needs: podman, docker-registry, busybox (static), curl or python3. Prints `N passed, N failed`.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d /tmp/matriochka-e2e.XXXXXX)
registry_pid=
passed=0
failed=0

small=
cleanup() {
  [ -n "$small" ] && umount "$small" 2>/dev/null
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null
  podman images --filter label=io.matriochka.e2e=1 --format '{{.ID}}' 2>/dev/null | sort -u \
    | xargs -r podman rmi -f >/dev/null 2>&1
  podman images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep -E 'matriochka-e2e|/e2e/|^localhost/e2e/' \
    | xargs -r podman rmi -f >/dev/null 2>&1
  if [ -n "${E2E_KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

pass() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); echo "FAILED: $1"; }
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
equals() { # equals DESCRIPTION EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2], got [$3]"; fi
}

for tool in podman docker-registry busybox; do
  command -v "$tool" >/dev/null || { echo "e2e: $tool is not installed (apt-get install podman docker-registry busybox-static)"; exit 1; }
done

echo "== building matriochka"
(cd "$repo" && cargo build --quiet --locked) || exit 1
tool="$repo/target/debug/matriochka"

echo "== base image from busybox-static (podman import, no network)"
mkdir -p "$work/rootfs/bin"
cp "$(command -v busybox)" "$work/rootfs/bin/busybox"
for applet in sh cat echo true false ls dd; do ln -s busybox "$work/rootfs/bin/$applet"; done
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
podman import --change 'LABEL io.matriochka.e2e=1' "$work/rootfs.tar" localhost/matriochka-e2e/busybox:1 >/dev/null 2>&1 || exit 1

project="$work/project"
cp -r "$here/fixture" "$project"
cd "$project" || exit 1
git init -q -b main . && git add -A && git -c user.name=e2e -c user.email=e2e@example.com commit -qm fixture
commit=$(git rev-parse HEAD)

one="one,x86_64,busybox,1,localhost,matriochka-e2e/busybox,1"
two="two,x86_64,busybox,1,localhost,matriochka-e2e/busybox,1"
bad="bad,x86_64,busybox,1,localhost,matriochka-e2e/busybox,1"
export RELEASE=e2e MATRIOCHKA="$tool"
mk() { make -f "$repo/Makefile" CONTAINER_ENGINE=podman BUILD_ARGS="--isolation chroot" PULL=0 "$@"; }
built() { grep -oE '^\[[0-9]+/[0-9]+\] build [^ ]+: ok$' "$1" | sed -E 's/^\[[0-9]+\/[0-9]+\] build //; s/: ok$//' | sort | tr '\n' ' '; }
label() { podman image inspect --format "{{index .Config.Labels \"$2\"}}" "$1"; }
file_in() { # file_in IMAGE PATH: a file's content, read through podman create + cp (podman run is not available)
  local id; id=$(podman create "$1" /bin/true) || return 1
  podman cp "$id:$2" - | tar -xO; podman rm "$id" >/dev/null
}

echo "== 1. parallel build of two flavors"
mk build.parallel FLAVORS="$one $two" >"$work/build1.log" 2>&1
equals "build.parallel exits 0" 0 $?
equals "all four images built" \
  "ceph/daemon-base:e2e-one-x86_64 ceph/daemon-base:e2e-two-x86_64 ceph/daemon:e2e-one-x86_64 ceph/daemon:e2e-two-x86_64 " \
  "$(built "$work/build1.log")"
for tag in daemon-base:e2e-one-x86_64 daemon:e2e-one-x86_64 daemon-base:e2e-two-x86_64 daemon:e2e-two-x86_64; do
  check "image ceph/$tag exists" podman image exists "ceph/$tag"
done
equals "flavor label" "$one" "$(label ceph/daemon:e2e-one-x86_64 io.matriochka.flavor)"
equals "revision label" "$commit" "$(label ceph/daemon:e2e-one-x86_64 org.opencontainers.image.revision)"
equals "version label" "e2e" "$(label ceph/daemon-base:e2e-two-x86_64 org.opencontainers.image.version)"
equals "created label is the commit date" "$(git show -s --format=%cI HEAD)" \
  "$(label ceph/daemon-base:e2e-two-x86_64 org.opencontainers.image.created)"
equals "context label" "sha256:$(cat staging/one-busybox-1-x86_64/.matriochka/daemon.sha256)" \
  "$(label ceph/daemon:e2e-one-x86_64 io.matriochka.context)"
equals "rendered file in daemon-base" "release one on busybox 1" "$(file_in ceph/daemon-base:e2e-one-x86_64 /etc/release.txt)"
equals "RUN ran in daemon-base" "release two" "$(file_in ceph/daemon-base:e2e-two-x86_64 /etc/copied.txt)"
equals "child holds its rendered file" "app of one, built on ceph/daemon-base:e2e-one-x86_64" \
  "$(file_in ceph/daemon:e2e-one-x86_64 /app.txt)"
equals "child is built on its parent" "release two" "$(file_in ceph/daemon:e2e-two-x86_64 /etc/copied.txt)"
check "build log written" grep -q 'COMMIT ceph/daemon:e2e-two-x86_64' staging/logs/two-busybox-1-x86_64/daemon.log

echo "== 2. nothing to do when nothing changed"
mk build FLAVORS="$one $two" >"$work/build2.log" 2>&1
equals "second build exits 0" 0 $?
equals "no build ran" "" "$(built "$work/build2.log")"

echo "== 3. a template edit rebuilds exactly the affected images"
printf 'app of one, edited\n' > templates/rel/one/daemon/app.txt
mk build FLAVORS="$one $two" >"$work/build3.log" 2>&1
equals "child-only edit rebuilds one child" "ceph/daemon:e2e-one-x86_64 " "$(built "$work/build3.log")"
equals "edited file in the image" "app of one, edited" "$(file_in ceph/daemon:e2e-one-x86_64 /app.txt)"
printf 'release two, edited\n' > templates/rel/two/release.txt
mk build FLAVORS="$one $two" >"$work/build4.log" 2>&1
equals "parent edit rebuilds the parent and its child" \
  "ceph/daemon-base:e2e-two-x86_64 ceph/daemon:e2e-two-x86_64 " "$(built "$work/build4.log")"
podman rmi ceph/daemon:e2e-one-x86_64 >/dev/null
mk build FLAVORS="$one $two" >"$work/build5.log" 2>&1
equals "a removed image is rebuilt" "ceph/daemon:e2e-one-x86_64 " "$(built "$work/build5.log")"
mk build FLAVORS="$one" IMAGES=daemon-base FORCE=1 >"$work/build6.log" 2>&1
equals "FORCE=1 IMAGES=daemon-base rebuilds that image only" "ceph/daemon-base:e2e-one-x86_64 " "$(built "$work/build6.log")"

echo "== 4. docker command lines are the podman ones"
mk -n build FLAVORS="$one" FORCE=1 CONTAINER_ENGINE=podman 2>&1 | grep -E '^podman build' >"$work/podman.n"
mk -n build FLAVORS="$one" FORCE=1 CONTAINER_ENGINE=docker 2>&1 | grep -E '^docker build' >"$work/docker.n"
equals "make -n prints both builds" 2 "$(wc -l <"$work/docker.n")"
equals "docker and podman lines differ only by the engine" "$(sed 's/podman/ENGINE/g' "$work/podman.n")" "$(sed 's/docker/ENGINE/g' "$work/docker.n")"
check "docker lines parse as shell" bash -n "$work/docker.n"
check "docker build line has platform, tag, file, labels" grep -qE \
  "docker build --platform linux/amd64 -t ceph/daemon-base:e2e-one-x86_64 --file staging/one-busybox-1-x86_64/daemon-base/Dockerfile .*--label io.matriochka.flavor=$one" "$work/docker.n"

echo "== 5. push to a real registry"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/registry"
cat >"$work/registry.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/')" 2>/dev/null && break
  sleep 0.2
done
tags() { python3 -c "import json, urllib.request; print(' '.join(sorted(json.load(urllib.request.urlopen('http://127.0.0.1:$port/v2/$1/tags/list'))['tags'])))"; }
mk push FLAVORS="$one $two" TAG_REGISTRY="127.0.0.1:$port/e2e" PUSH_ARGS=--tls-verify=false >"$work/push.log" 2>&1
equals "make push exits 0" 0 $?
check "push progress lines" grep -qE "^\[[0-9]/4\] push '?127.0.0.1:$port/e2e/daemon:e2e-two-x86_64'?: ok$" "$work/push.log"
equals "registry has both daemon-base tags" "e2e-one-x86_64 e2e-two-x86_64" "$(tags e2e/daemon-base)"
equals "registry has both daemon tags" "e2e-one-x86_64 e2e-two-x86_64" "$(tags e2e/daemon)"
kill "$registry_pid"; wait "$registry_pid" 2>/dev/null; registry_pid=
mk push FLAVORS="$one" TAG_REGISTRY="127.0.0.1:$port/e2e" PUSH_ARGS=--tls-verify=false PUSH_RETRIES=1 >"$work/push2.log" 2>&1
equals "push to a stopped registry fails" 2 $?
check "failed push says where the log is" grep -qE "push '?127.0.0.1:$port/e2e/daemon-base:e2e-one-x86_64'?: FAILED \(see staging/logs/one-busybox-1-x86_64/daemon-base.push.log\)" "$work/push2.log"
check "failed push retried once" grep -q 'retry 1 of 1' "$work/push2.log"
check "images survive a failed push" podman image exists "127.0.0.1:$port/e2e/daemon-base:e2e-one-x86_64"

echo "== 6. a failing RUN under make -k"
staged_before=$(cd staging && find one-busybox-1-x86_64 -type f -newer "$work/push2.log" | wc -l)
mk -k build.parallel FLAVORS="$bad $one" FORCE=1 >"$work/bad.log" 2>&1
status=$?
check "make -k build.parallel exits non-zero" test "$status" -ne 0
check "failing image's log holds the error" grep -q boom-marker staging/logs/bad-busybox-1-x86_64/daemon-base.log
check "failure line names the log" grep -qE "build 'ceph/daemon-base:e2e-bad-x86_64'?: FAILED \(see staging/logs/bad-busybox-1-x86_64/daemon-base.log\)|build ceph/daemon-base:e2e-bad-x86_64: FAILED" "$work/bad.log"
check "child of the failed image not attempted" test ! -e staging/logs/bad-busybox-1-x86_64/daemon.log
check "no stamp for the failed image" test ! -e staging/.stamps/bad-busybox-1-x86_64/daemon-base
equals "the other flavor was built" "ceph/daemon-base:e2e-one-x86_64 ceph/daemon:e2e-one-x86_64 " "$(built "$work/bad.log")"
check "no failed image tagged" bash -c '! podman image exists ceph/daemon-base:e2e-bad-x86_64'
equals "staging of the other flavor untouched by the failure" 0 "$staged_before"

echo "== 7. bad input stops make before any build"
mk build FLAVORS="one,x86_64,busy;box,1,_,busybox,1" >"$work/badflavor.log" 2>&1
check "invalid FLAVORS fails" test $? -ne 0
check "invalid FLAVORS: the tool's error" grep -q "error: invalid flavor \`one,x86_64,busy;box,1,_,busybox,1\`: field 3 (os name) \`busy;box\` contains \`;\`" "$work/badflavor.log"
check "invalid FLAVORS: no build" bash -c "! grep -q '] build' '$work/badflavor.log'"
mk build FLAVORS="$one" IMAGES=deamon >"$work/badimage.log" 2>&1
check "unknown IMAGES fails" test $? -ne 0
check "unknown IMAGES: one-line cause" grep -q 'unknown image(s) in IMAGES: deamon; known: daemon-base daemon' "$work/badimage.log"
make -f "$repo/Makefile" build FLAVORS="$one" CONTAINER_ENGINE= >"$work/noengine.log" 2>&1
check "missing engine fails" test $? -ne 0
# shellcheck disable=SC2016 # the backticks are text
check "missing engine: says what to do" grep -q 'no container engine: install docker or podman, or run `make stage`' "$work/noengine.log"

echo "== 8. a full disk during a build"
small="$work/small"
mkdir -p "$small" "$work/small-run"
if mount -t tmpfs -o size=24m tmpfs "$small" 2>/dev/null; then
  big="big,x86_64,busybox,1,localhost,matriochka-e2e/busybox,1"
  small_engine="podman --root $small/root --runroot $work/small-run --storage-driver vfs"
  $small_engine import "$work/rootfs.tar" localhost/matriochka-e2e/busybox:1 >/dev/null 2>&1
  one_staged=$(cd staging/one-busybox-1-x86_64 && find . -type f -exec sha256sum {} + | sort)
  make -f "$repo/Makefile" build FLAVORS="$big" CONTAINER_ENGINE="$small_engine" BUILD_ARGS="--isolation chroot" PULL=0 >"$work/full.log" 2>&1
  check "a build on a full disk fails" test $? -ne 0
  check "full disk: the log holds the cause" grep -qi 'no space left on device' staging/logs/big-busybox-1-x86_64/daemon-base.log
  check "full disk: one FAILED line names the log" grep -q "build ceph/daemon-base:e2e-big-x86_64: FAILED (see staging/logs/big-busybox-1-x86_64/daemon-base.log)" "$work/full.log"
  check "full disk: no stamp" test ! -e staging/.stamps/big-busybox-1-x86_64/daemon-base
  check "full disk: earlier images intact" podman image exists ceph/daemon:e2e-one-x86_64
  equals "full disk: other staging dirs intact" "$one_staged" "$(cd staging/one-busybox-1-x86_64 && find . -type f -exec sha256sum {} + | sort)"
  $small_engine rmi -a -f >/dev/null 2>&1
  umount "$small" && small=
else
  echo "skipped: cannot mount a tmpfs here (the full-disk check needs root)"
fi

echo "== 9. clean removes only matriochka's labelled images"
podman tag localhost/matriochka-e2e/busybox:1 ceph/unlabelled:e2e
mk clean FLAVORS="$two" >"$work/clean.log" 2>&1
equals "make clean exits 0" 0 $?
check "clean removed the flavor's images" bash -c '! podman image exists ceph/daemon:e2e-two-x86_64 && ! podman image exists ceph/daemon-base:e2e-two-x86_64'
check "clean removed the flavor's staging dir" test ! -e staging/two-busybox-1-x86_64
check "clean kept the other flavor" podman image exists ceph/daemon:e2e-one-x86_64
mk clean.all >"$work/cleanall.log" 2>&1
equals "make clean.all exits 0" 0 $?
check "clean.all removed labelled images in TAG_REGISTRY" bash -c '! podman image exists ceph/daemon:e2e-one-x86_64'
check "clean.all kept an unlabelled image" podman image exists ceph/unlabelled:e2e
check "clean.all kept images of another registry" podman image exists "127.0.0.1:$port/e2e/daemon:e2e-one-x86_64"
equals "clean.all emptied the staging root" "" "$(ls staging)"
podman rmi ceph/unlabelled:e2e >/dev/null

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
