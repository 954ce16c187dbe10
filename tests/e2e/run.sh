#!/usr/bin/env bash
# End-to-end test of the Make integration with a real engine and a real registry:
# builds of a fixture project, rebuilds, a push to Debian's docker-registry on a free loopback
# port, a failing build under `make -k`, a full disk (podman only), and clean.
#
#   tests/e2e/run.sh [podman|docker]     (default podman)
#
# podman: chroot isolation, no daemon. Needs podman, docker-registry, busybox (static), python3;
# root for the full-disk part.
# docker: the run starts a dockerd of its own (docker.io, root) on a socket, data root and exec
# root in its temp dir, without bridge nor iptables, reached through DOCKER_HOST, and stops it by
# its pid; builds use the classic builder. Needs dockerd, docker, docker-registry, busybox, python3.
#
# Isolation: podman runs on a private storage root in the run's temp dir (CONTAINERS_STORAGE_CONF),
# docker on the run's own daemon, and every image the run tags is in a namespace of its own
# (TAG_REGISTRY=localhost/mtest-<pid>-<rand>), so the run never sees nor touches another image or
# daemon, two runs at once do not interfere, and the cleanup removes the private store whole.
#
# Counts every check, compares the count with EXPECTED_CHECKS, and prints `N passed, N failed` last.
# A check that cannot run here (no root for a tmpfs) is skipped, and counts as failed when CI is set.
set -uo pipefail
# Nothing of the caller's make or build settings reaches the makes below (`make test.e2e
# TAG_REGISTRY=ceph` would otherwise pass TAG_REGISTRY on through MAKEFLAGS).
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES FLAVORS IMAGES FORCE JOBS PUSH_RETRIES STAGING_ROOT \
  DAEMON_TAG DAEMON_BASE_TAG CONTAINER_ENGINE BUILD_ARGS PUSH_ARGS
# Only the daemon this run starts is ever reached.
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH

engine=${1:-podman}
case "$engine" in
  podman | docker) ;;
  *) echo "usage: tests/e2e/run.sh [podman|docker]" >&2; exit 2 ;;
esac

# The podman run's count; the docker run skips the podman-only sections 4 (5 checks) and 8 (8).
EXPECTED_CHECKS=82
PODMAN_ONLY_CHECKS=13
[ "$engine" = podman ] || EXPECTED_CHECKS=$((EXPECTED_CHECKS - PODMAN_ONLY_CHECKS))

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# Short: the docker run's unix sockets live below it (a socket path has at most 107 bytes).
work=$(mktemp -d /tmp/mte2e.XXXXXX)
registry_pid=
small=
passed=0
failed=0
skipped=0

summary() {
  local total=$((passed + failed + skipped))
  if [ "$total" -ne "$EXPECTED_CHECKS" ]; then
    failed=$((failed + 1))
    echo "FAILED: $total checks ran or were skipped, $EXPECTED_CHECKS expected"
  fi
  [ "$skipped" -eq 0 ] || echo "$skipped skipped (they fail the run when CI is set)"
  echo "$passed passed, $failed failed"
}

cleanup() {
  if [ -n "$small" ]; then umount "$small" 2>/dev/null || umount -l "$small" 2>/dev/null; fi
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null; fi
  [ -z "$dockerd_pid" ] || stop_dockerd
  # The private store holds only what this run created: it goes whole, with the run's temp dir.
  if [ -n "${E2E_KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM # so that an interrupted run cleans up too

pass() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); echo "FAILED: $1"; }
abort() { fail "$1 (aborting)"; summary; exit 1; }
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
equals() { # equals DESCRIPTION EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2], got [$3]"; fi
}
skip() { # skip COUNT REASON: COUNT checks cannot run here
  if [ -n "${CI:-}" ]; then
    failed=$((failed + $1)); echo "FAILED: $1 checks cannot run with CI set: $2"
  else
    skipped=$((skipped + $1)); echo "skipped $1 checks: $2"
  fi
}
re() { printf '%s' "$1" | sed 's/[][\.*^$?+(){}|/]/\\&/g'; } # a fixed string as an extended regex

if [ "$engine" = docker ]; then
  for tool in dockerd docker docker-registry busybox python3; do
    command -v "$tool" >/dev/null || abort "$tool is not installed (apt-get install docker.io docker-registry busybox-static python3)"
  done
else
  for tool in podman docker-registry busybox python3; do
    command -v "$tool" >/dev/null || abort "$tool is not installed (apt-get install podman docker-registry busybox-static python3)"
  done
fi

# shellcheck source=tests/e2e/lib-dockerd.sh
. "$here/lib-dockerd.sh"

if [ "$engine" = docker ]; then
  echo "== a docker daemon of this run's own"
  # The daemon's files in the temp dir, no bridge nor iptables (tests/e2e/lib-dockerd.sh).
  start_dockerd "$work/d" "$work/dockerd.log" || abort "the docker daemon of this run did not start"
  echo "daemon $dockerd_pid on $DOCKER_HOST"
else
  # The docker `make -n` of section 4 lists images: on no daemon at all.
  export DOCKER_HOST="unix://$work/no-docker.sock"
fi

echo "== private podman store and image namespace"
# shellcheck source=tests/e2e/lib-podman.sh
. "$here/lib-podman.sh"
podman_store "$work/store"
export CONTAINERS_STORAGE_CONF="$work/store/storage.conf"
# Nothing below runs unless podman really uses the private store.
[ "$engine" = docker ] || [ "$(podman info --format '{{.Store.GraphRoot}}' 2>&1)" = "$work/store/root" ] \
  || abort "podman does not use the private store $work/store/root"
ns="localhost/mtest-$$-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
export TAG_REGISTRY="$ns"
echo "store $work/store, images in $ns/"

echo "== building matriochka"
(cd "$repo" && cargo build --quiet --locked) || abort "cargo build failed"
tool="$repo/target/debug/matriochka"

echo "== base image from busybox-static ($engine import, no network)"
mkdir -p "$work/rootfs/bin"
cp "$(command -v busybox)" "$work/rootfs/bin/busybox"
for applet in sh cat echo true false ls dd; do ln -s busybox "$work/rootfs/bin/$applet"; done
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
"$engine" import --change 'LABEL io.matriochka.e2e=1' "$work/rootfs.tar" localhost/matriochka-e2e/busybox:1 >/dev/null 2>&1 \
  || abort "$engine import of the base image failed"

project="$work/project"
cp -r "$here/fixture" "$project"
cd "$project" || abort "no project"
git init -q -b main . && git add -A && git -c user.name=e2e -c user.email=e2e@example.com commit -qm fixture
commit=$(git rev-parse HEAD)

one="one,x86_64,busybox,1,localhost,matriochka-e2e/busybox,1"
two="two,x86_64,busybox,1,localhost,matriochka-e2e/busybox,1"
bad="bad,x86_64,busybox,1,localhost,matriochka-e2e/busybox,1"
export RELEASE=e2e MATRIOCHKA="$tool"
# What differs between the engines, here in the test only: podman's builds need chroot isolation
# (no `podman run` here), a push to a plain-http registry needs podman's --tls-verify=false
# (docker treats 127.0.0.0/8 registries as insecure), and each engine logs a build's end its way.
if [ "$engine" = docker ]; then
  build_args="" push_args="" tagged_line="Successfully tagged"
else
  build_args="--isolation chroot" push_args=--tls-verify=false tagged_line=COMMIT
fi
mk() { make -f "$repo/Makefile" CONTAINER_ENGINE="$engine" BUILD_ARGS="$build_args" PULL=0 "$@"; }
built() { grep -oE '^\[[0-9]+/[0-9]+\] build [^ ]+: ok$' "$1" | sed -E 's/^\[[0-9]+\/[0-9]+\] build //; s/: ok$//' | sort | tr '\n' ' '; }
label() { "$engine" image inspect --format "{{index .Config.Labels \"$2\"}}" "$1"; }
file_in() { # file_in IMAGE PATH: a file's content, read through create + cp (podman run is not available)
  local id; id=$("$engine" create "$1" /bin/true) || return 1
  "$engine" cp "$id:$2" - | tar -xO; "$engine" rm "$id" >/dev/null
}
image_exists() { # image_exists REF: the engine has the image
  if [ "$engine" = docker ]; then docker image inspect "$1" >/dev/null 2>&1; else podman image exists "$1"; fi
}
no_image() { # no_image REF...: the engine says each image does not exist; an engine error is not "no image"
  local ref status
  for ref; do
    if [ "$engine" = docker ]; then
      docker image inspect "$ref" >/dev/null 2>"$work/inspect.err"; status=$?
      [ "$status" -eq 1 ] && grep -qi 'no such image' "$work/inspect.err" && continue
      [ "$status" -eq 0 ] || echo "docker image inspect $ref: exit $status: $(cat "$work/inspect.err")"
    else
      podman image exists "$ref"; status=$?
      [ "$status" -eq 1 ] && continue
      [ "$status" -eq 0 ] || echo "podman image exists $ref: exit $status"
    fi
    return 1
  done
}
dangling() { # dangling: the ids of dangling images labelled by matriochka
  "$engine" images --quiet --filter dangling=true --filter label=io.matriochka.flavor
}
actions() { # the report's images, as `id/image=action` words in report order
  python3 -c 'import json; print(" ".join(e["id"] + "/" + e["image"] + "=" + e["action"] for e in json.load(open("staging/report.json"))["images"]))'
}
because() { # because ID/IMAGE: why the last run built the image
  python3 -c 'import json, sys; print(*[e["because"] for e in json.load(open("staging/report.json"))["images"] if e["id"] + "/" + e["image"] == sys.argv[1]])' "$1"
}
snapshot() { # snapshot DIR: every file with its size, mtime and digest
  (cd "$1" && find . -type f -printf '%p %s %T@ ' -exec sha256sum {} \; | sort)
}

echo "== 1. parallel build of two flavors"
mk build.parallel FLAVORS="$one $two" >"$work/build1.log" 2>&1
equals "build.parallel exits 0" 0 $?
equals "all four images built" \
  "$ns/daemon-base:e2e-one-x86_64 $ns/daemon-base:e2e-two-x86_64 $ns/daemon:e2e-one-x86_64 $ns/daemon:e2e-two-x86_64 " \
  "$(built "$work/build1.log")"
for tag in daemon-base:e2e-one-x86_64 daemon:e2e-one-x86_64 daemon-base:e2e-two-x86_64 daemon:e2e-two-x86_64; do
  check "image $ns/$tag exists" image_exists "$ns/$tag"
done
equals "flavor label" "$one" "$(label "$ns/daemon:e2e-one-x86_64" io.matriochka.flavor)"
equals "revision label" "$commit" "$(label "$ns/daemon:e2e-one-x86_64" org.opencontainers.image.revision)"
equals "version label" "e2e" "$(label "$ns/daemon-base:e2e-two-x86_64" org.opencontainers.image.version)"
equals "created label is the commit date" "$(git show -s --format=%cI HEAD)" \
  "$(label "$ns/daemon-base:e2e-two-x86_64" org.opencontainers.image.created)"
equals "context label" "sha256:$(cat staging/one-busybox-1-x86_64/.matriochka/daemon.sha256)" \
  "$(label "$ns/daemon:e2e-one-x86_64" io.matriochka.context)"
equals "rendered file in daemon-base" "release one on busybox 1" "$(file_in "$ns/daemon-base:e2e-one-x86_64" /etc/release.txt)"
equals "RUN ran in daemon-base" "release two" "$(file_in "$ns/daemon-base:e2e-two-x86_64" /etc/copied.txt)"
equals "child holds its rendered file" "app of one, built on $ns/daemon-base:e2e-one-x86_64" \
  "$(file_in "$ns/daemon:e2e-one-x86_64" /app.txt)"
equals "child is built on its parent" "release two" "$(file_in "$ns/daemon:e2e-two-x86_64" /etc/copied.txt)"
check "build log written" grep -q "$tagged_line $ns/daemon:e2e-two-x86_64" staging/logs/two-busybox-1-x86_64/daemon.log
equals "report: every image built" \
  "one-busybox-1-x86_64/daemon-base=built one-busybox-1-x86_64/daemon=built two-busybox-1-x86_64/daemon-base=built two-busybox-1-x86_64/daemon=built" \
  "$(actions)"
equals "report: a child is built because its parent was" "parent rebuilt" "$(because one-busybox-1-x86_64/daemon)"

echo "== 2. nothing to do when nothing changed"
mk build FLAVORS="$one $two" >"$work/build2.log" 2>&1
equals "second build exits 0" 0 $?
equals "no build ran" "" "$(built "$work/build2.log")"
equals "report: every image up-to-date" \
  "one-busybox-1-x86_64/daemon-base=up-to-date one-busybox-1-x86_64/daemon=up-to-date two-busybox-1-x86_64/daemon-base=up-to-date two-busybox-1-x86_64/daemon=up-to-date" \
  "$(actions)"

echo "== 3. a template edit rebuilds exactly the affected images"
printf 'app of one, edited\n' > templates/rel/one/daemon/app.txt
mk build FLAVORS="$one $two" >"$work/build3.log" 2>&1
equals "child-only edit rebuilds one child" "$ns/daemon:e2e-one-x86_64 " "$(built "$work/build3.log")"
equals "edited file in the image" "app of one, edited" "$(file_in "$ns/daemon:e2e-one-x86_64" /app.txt)"
equals "report: the edited file is why" "context changed: app.txt" "$(because one-busybox-1-x86_64/daemon)"
printf 'release two, edited\n' > templates/rel/two/release.txt
mk build FLAVORS="$one $two" >"$work/build4.log" 2>&1
equals "parent edit rebuilds the parent and its child" \
  "$ns/daemon-base:e2e-two-x86_64 $ns/daemon:e2e-two-x86_64 " "$(built "$work/build4.log")"
"$engine" rmi "$ns/daemon:e2e-one-x86_64" >/dev/null
mk build FLAVORS="$one $two" >"$work/build5.log" 2>&1
equals "a removed image is rebuilt" "$ns/daemon:e2e-one-x86_64 " "$(built "$work/build5.log")"
equals "report: a removed image is not in engine" "not in engine" "$(because one-busybox-1-x86_64/daemon)"
mk build FLAVORS="$one" IMAGES=daemon-base FORCE=1 >"$work/build6.log" 2>&1
equals "FORCE=1 IMAGES=daemon-base rebuilds that image only" "$ns/daemon-base:e2e-one-x86_64 " "$(built "$work/build6.log")"
equals "report: FORCE is why" "FORCE" "$(because one-busybox-1-x86_64/daemon-base)"

echo "== 4. docker command lines are the podman ones"
if [ "$engine" = podman ]; then # podman only: it runs both engines' `make -n`
mk -n build FLAVORS="$one" FORCE=1 CONTAINER_ENGINE=podman 2>&1 | grep -E '^podman build' >"$work/podman.n"
mk -n build FLAVORS="$one" FORCE=1 CONTAINER_ENGINE=docker 2>&1 | grep -E '^docker build' >"$work/docker.n"
equals "make -n prints both builds" 2 "$(wc -l <"$work/docker.n")"
# PULL=0 for the outside base and a parent of this run for the child: podman never pulls
# (`--pull=never`); docker's classic builder has no such option. podman builds also take the
# commit's date as their timestamp (`--timestamp`, reproducible images); docker cannot.
equals "podman never pulls under PULL=0, nor a parent of this run" 2 "$(grep -c -- ' --pull=never ' "$work/podman.n")"
equals "docker and podman lines differ only by the engine, the pull option and the timestamp" \
  "$(sed -E 's/podman/ENGINE/g; s/ --pull=never / /; s/ --timestamp [0-9]+ / /' "$work/podman.n")" "$(sed 's/docker/ENGINE/g' "$work/docker.n")"
check "docker lines parse as shell" bash -n "$work/docker.n"
check "docker build line has platform, tag, file, labels" grep -qE \
  "docker build --platform linux/amd64 -t $(re "$ns")/daemon-base:e2e-one-x86_64 --file staging/one-busybox-1-x86_64/daemon-base/Dockerfile .*--label io\.matriochka\.flavor=$(re "$one")" "$work/docker.n"
else
  echo "(podman run only)"
fi

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
# The tags but content tags (mcid-…, pushed beside each image).
tags() { python3 -c "import json, urllib.request; print(' '.join(sorted(t for t in json.load(urllib.request.urlopen('http://127.0.0.1:$port/v2/$1/tags/list'))['tags'] if not t.startswith('mcid-'))))"; }
remote="127.0.0.1:$port/e2e"
mk push FLAVORS="$one $two" TAG_REGISTRY="$remote" PUSH_ARGS="$push_args" >"$work/push.log" 2>&1
equals "make push exits 0" 0 $?
check "push progress lines" grep -qxE "\[[0-9]/4\] push $(re "$remote")/daemon:e2e-two-x86_64: ok" "$work/push.log"
equals "registry has both daemon-base tags" "e2e-one-x86_64 e2e-two-x86_64" "$(tags e2e/daemon-base)"
equals "registry has both daemon tags" "e2e-one-x86_64 e2e-two-x86_64" "$(tags e2e/daemon)"
equals "report: every image pushed" \
  "one-busybox-1-x86_64/daemon-base=pushed one-busybox-1-x86_64/daemon=pushed two-busybox-1-x86_64/daemon-base=pushed two-busybox-1-x86_64/daemon=pushed" \
  "$(actions)"
kill "$registry_pid"; wait "$registry_pid" 2>/dev/null; registry_pid=
mk push FLAVORS="$one" TAG_REGISTRY="$remote" PUSH_ARGS="$push_args" PUSH_RETRIES=1 >"$work/push2.log" 2>&1
equals "push to a stopped registry fails" 2 $?
check "failed push says where the log is" grep -qxE \
  "\[[0-9]/2\] push $(re "$remote")/daemon-base:e2e-one-x86_64: FAILED \(see staging/logs/one-busybox-1-x86_64/daemon-base\.push\.log\)" "$work/push2.log"
check "failed push retried once" grep -q 'retry 1 of 1' "$work/push2.log"
equals "report: a failed push, and the push that never ran" \
  "one-busybox-1-x86_64/daemon-base=push-failed one-busybox-1-x86_64/daemon=skipped" "$(actions)"
check "images survive a failed push" image_exists "$remote/daemon-base:e2e-one-x86_64"

echo "== 6. a failing RUN under make -k"
# Staged first (section 5 staged flavor one for another registry), so that the build below
# stages nothing new and the snapshots around it show what the failure did.
mk stage FLAVORS="$bad $one" >"$work/bad-stage.log" 2>&1
one_before=$(snapshot staging/one-busybox-1-x86_64)
mk -k build.parallel FLAVORS="$bad $one" FORCE=1 >"$work/bad.log" 2>&1
status=$?
one_after=$(snapshot staging/one-busybox-1-x86_64)
check "make -k build.parallel exits non-zero" test "$status" -ne 0
check "failing image's log holds the error" grep -q boom-marker staging/logs/bad-busybox-1-x86_64/daemon-base.log
check "failure line names the log" grep -qxE \
  "\[[0-9]/4\] build $(re "$ns")/daemon-base:e2e-bad-x86_64: FAILED \(see staging/logs/bad-busybox-1-x86_64/daemon-base\.log\)" "$work/bad.log"
check "child of the failed image not attempted" test ! -e staging/logs/bad-busybox-1-x86_64/daemon.log
check "no stamp for the failed image" test ! -e staging/.stamps/bad-busybox-1-x86_64/daemon-base
equals "the other flavor was built" "$ns/daemon-base:e2e-one-x86_64 $ns/daemon:e2e-one-x86_64 " "$(built "$work/bad.log")"
check "no failed image tagged" no_image "$ns/daemon-base:e2e-bad-x86_64"
equals "staging of the other flavor untouched by the failure" "$one_before" "$one_after"
equals "report under make -k covers every image" \
  "bad-busybox-1-x86_64/daemon-base=failed bad-busybox-1-x86_64/daemon=skipped one-busybox-1-x86_64/daemon-base=built one-busybox-1-x86_64/daemon=built" \
  "$(actions)"
check "summary names the failed image's log" grep -qxE \
  "failed bad-busybox-1-x86_64/daemon-base \($(re "$ns")/daemon-base:e2e-bad-x86_64\): see staging/logs/bad-busybox-1-x86_64/daemon-base\.log" "$work/bad.log"
equals "report --failed names the flavor to run again" "$bad" "$("$tool" report --failed)"

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
# A second private store on a small tmpfs: an image of flavor one is built into it first, then a
# build of flavor big fills it. The checks look at that store, where the full disk could do harm.
mkdir -p "$work/small" "$work/small-run"
if [ "$engine" = docker ]; then
  echo "(podman run only: a private store on a small tmpfs)"
elif mount -t tmpfs -o size=48m tmpfs "$work/small" 2>"$work/mount.err"; then
  small="$work/small"
  big="big,x86_64,busybox,1,localhost,matriochka-e2e/busybox,1"
  cat >"$work/small-storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$small/root"
runroot = "$work/small-run"
EOF
  in_small() { CONTAINERS_STORAGE_CONF="$work/small-storage.conf" "$@"; }
  in_small podman import "$work/rootfs.tar" localhost/matriochka-e2e/busybox:1 >/dev/null 2>&1
  in_small mk build FLAVORS="$one" IMAGES=daemon-base FORCE=1 >"$work/small-one.log" 2>&1
  equals "full disk: an image built in the small store first" "$ns/daemon-base:e2e-one-x86_64 " "$(built "$work/small-one.log")"
  one_image=$(in_small podman image inspect --format '{{.Id}}' "$ns/daemon-base:e2e-one-x86_64")
  one_staged=$(snapshot staging/one-busybox-1-x86_64)
  in_small mk build FLAVORS="$big" >"$work/full.log" 2>&1
  check "a build on a full disk fails" test $? -ne 0
  check "full disk: the log holds the cause" grep -qi 'no space left on device' staging/logs/big-busybox-1-x86_64/daemon-base.log
  equals "full disk: one FAILED line names the log" \
    "[1/2] build $ns/daemon-base:e2e-big-x86_64: FAILED (see staging/logs/big-busybox-1-x86_64/daemon-base.log)" \
    "$(grep -F 'FAILED' "$work/full.log")"
  check "full disk: no stamp" test ! -e staging/.stamps/big-busybox-1-x86_64/daemon-base
  equals "full disk: the earlier image in the full store keeps its id" "$one_image" \
    "$(in_small podman image inspect --format '{{.Id}}' "$ns/daemon-base:e2e-one-x86_64")"
  equals "full disk: the earlier image in the full store still reads" "release one on busybox 1" \
    "$(in_small file_in "$ns/daemon-base:e2e-one-x86_64" /etc/copied.txt)"
  equals "full disk: the other flavor's staging dir unchanged" "$one_staged" "$(snapshot staging/one-busybox-1-x86_64)"
  umount "$small" && small=
else
  skip 8 "cannot mount a tmpfs here (the full-disk checks need root): $(head -n 1 "$work/mount.err")"
fi

echo "== 9. clean removes only matriochka's labelled images"
# The rebuilds of section 3 left the images they replaced untagged.
check "rebuilds left dangling labelled images" test -n "$(dangling)"
mk clean.nones >"$work/clean-nones.log" 2>&1
equals "make clean.nones exits 0" 0 $?
equals "clean.nones removed them" "" "$(dangling)"
"$engine" tag localhost/matriochka-e2e/busybox:1 "$ns/unlabelled:e2e"
mk clean FLAVORS="$two" >"$work/clean.log" 2>&1
equals "make clean exits 0" 0 $?
check "clean removed the flavor's images" no_image "$ns/daemon:e2e-two-x86_64" "$ns/daemon-base:e2e-two-x86_64"
check "clean removed the flavor's staging dir" test ! -e staging/two-busybox-1-x86_64
check "clean kept the other flavor" image_exists "$ns/daemon:e2e-one-x86_64"
mk clean.all >"$work/cleanall.log" 2>&1
equals "make clean.all exits 0" 0 $?
check "clean.all removed labelled images in TAG_REGISTRY" no_image "$ns/daemon:e2e-one-x86_64" "$ns/daemon-base:e2e-one-x86_64"
check "clean.all kept an unlabelled image" image_exists "$ns/unlabelled:e2e"
check "clean.all kept images of another registry" image_exists "$remote/daemon:e2e-one-x86_64"
# The staging root may keep its `.gitkeep` and the `.lock` file of the run lock.
equals "clean.all emptied the staging root" "" \
  "$(find staging -mindepth 1 -maxdepth 1 ! -name .gitkeep ! -name .lock -printf '%f\n' | sort)"

summary
[ "$failed" -eq 0 ]
